#!/usr/bin/env bash
# R13 (hostile REST input): schemathesis, from PyPI, fuzzes the master's API from its
# own OpenAPI document for a bounded number of cases and checks that no response is a
# 5xx and every response conforms to the document (status codes, content types,
# headers, schemas). Usage: tests/api/schemathesis.sh SLUICE_BIN SCHEMATHESIS_BIN [MAX_EXAMPLES]
#
# It runs authenticated with the admin token `sluice serve` writes on first start;
# `ignored_auth` checks that every secured operation refuses a request without it.
# Excluded check, and why: positive_data_acceptance (a schema-valid body may still be
# refused: SQL that does not compile is a 422 by design, and the schema cannot express
# "compiles").
set -euo pipefail
sluice="$1"
st="$2"
max_examples="${3:-20}"
work=$(mktemp -d)
cleanup() {
  if [[ -n "${pid:-}" ]]; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
# Instances outlive the master by design: kill this run's too.
kill_instances() {
  for f in "$work"/data/instances/*/launch.json; do
    [[ -f "$f" ]] || continue
    p=$(sed -n 's/.*"pid":[[:space:]]*\([0-9]*\).*/\1/p' "$f")
    [[ -n "$p" ]] && kill -9 "$p" 2>/dev/null || true
  done
}
trap 'kill_instances; cleanup' EXIT

"$sluice" serve --data-dir "$work/data" --allow-path "$work/files" --listen 127.0.0.1:0 >"$work/master.log" 2>&1 &
pid=$!
base=""
for _ in $(seq 1 300); do
  base=$(grep -o 'listening on http://[0-9.:]*' "$work/master.log" | head -1 | sed 's/listening on //' || true)
  [[ -n "$base" ]] && break
  sleep 0.1
done
if [[ -z "$base" ]]; then
  echo "sluice serve did not start:"; cat "$work/master.log"; exit 1
fi
# The admin token (written before the master listens); the CLI seeds below use it too.
SLUICE_TOKEN=$(cat "$work/data/admin.token")
export SLUICE_TOKEN
# Seed data, so operations on an existing job and table are exercised too (the names
# are the examples in the document).
cat >"$work/job.sql" <<'SQL'
CREATE TABLE bids (auction BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '10');
CREATE TABLE out (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO out SELECT auction, price FROM bids WHERE price > 10;
SQL
"$sluice" job submit bid-stats "$work/job.sql" --server "$base" >/dev/null
echo "CREATE TABLE bids (auction BIGINT, price BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10')" >"$work/table.sql"
"$sluice" table create "$work/table.sql" --server "$base" >/dev/null
# A workflow (disabled, so only the fuzzer's own triggers launch anything).
cat >"$work/workflow.json" <<'JSON'
{"schedule": {"cron": "0 30 2 * * *", "timezone": "Europe/Berlin"}, "enabled": false,
 "tasks": [{"id": "extract", "sql": "CREATE TABLE g (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');\nCREATE TABLE b (a BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO b SELECT a FROM g;"}]}
JSON
"$sluice" workflow create nightly "$work/workflow.json" --server "$base" >/dev/null
echo "schemathesis against $base (max $max_examples examples per operation)"
run_st() {
  "$st" run "$base/api-docs/openapi.json" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    -H "Authorization: Bearer $SLUICE_TOKEN" \
    --max-examples "$max_examples" \
    --phases "$1" \
    --workers 2 \
    --seed 42 \
    --suppress-health-check all \
    --no-color
}
status=0
run_st examples,coverage,fuzzing 2>&1 | tee "$work/st.log" || status=${PIPESTATUS[0]}
# schemathesis 4.32.5's coverage phase sometimes crashes inside its own generator
# (an internal KeyError, reported as an "error", not a failure of our API). Then run
# the examples and fuzzing phases again; any failure of our API still fails the test.
if [[ $status -ne 0 ]] && ! grep -q "^Failures:" "$work/st.log" && grep -q "Runtime Error" "$work/st.log"; then
  echo "schemathesis crashed internally (not an API failure); running examples and fuzzing again"
  status=0
  run_st examples,fuzzing || status=$?
fi
if ! kill -0 "$pid" 2>/dev/null; then
  echo "the master died during the run:"; tail -50 "$work/master.log"; exit 1
fi
if grep -q "panicked" "$work/master.log"; then
  echo "the master panicked:"; grep -B2 -A10 panicked "$work/master.log"; exit 1
fi
exit "$status"
