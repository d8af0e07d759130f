#!/usr/bin/env bash
# Kafka → SQL → Parquet on S3, end to end, with the real protocols on both sides:
# librdkafka's mock cluster (`kafka-mock`) and moto's S3 server (from .venv, see
# .ci/test). Reports records/s and MB/s (JSON bytes read), per wall second and per CPU
# second of the worker process, beside a single-core JSON-parse ceiling measured by the
# same harness on the same records (`sluice run` from a local JSON-lines copy to the
# blackhole sink, 1 worker).
#
#   bench/kafka_s3.sh [--records N] [--workers W] [--partitions P]
#
# Defaults: 2,000,000 records, 2 workers, 64 partitions (the mock broker keeps about
# 5 MB per partition). Figures go to bench/results/kafka_s3-<date>.md. Never run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
records=2000000
workers=2
parts=64
while [[ $# -gt 0 ]]; do
  case "$1" in
    --records) records="$2"; shift 2 ;;
    --workers) workers="$2"; shift 2 ;;
    --partitions) parts="$2"; shift 2 ;;
    *) echo "unknown argument $1"; exit 2 ;;
  esac
done
[[ -x .venv/bin/moto_server ]] || { echo "no .venv/bin/moto_server: run bash .ci/test once"; exit 2; }
echo "building release binaries…"
cargo build --release -q -p sluice-master -p sluice-dataflow -p sluice-tests --bins
bin="$PWD/target/release"
work=$(mktemp -d)
cleanup() {
  [[ -n "${mock_pid:-}" ]] && kill "$mock_pid" 2>/dev/null || true
  [[ -n "${moto_pid:-}" ]] && kill "$moto_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkfifo "$work/mock.in"
"$bin/kafka-mock" --brokers 1 "events:$parts" <"$work/mock.in" >"$work/mock.out" &
mock_pid=$!
exec 3>"$work/mock.in"
for _ in $(seq 1 100); do grep -q bootstrap= "$work/mock.out" 2>/dev/null && break; sleep 0.1; done
bootstrap=$(sed -n 's/^bootstrap=//p' "$work/mock.out")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
.venv/bin/moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 &
moto_pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.2; done
curl -sf -X PUT "http://127.0.0.1:$port/lake" >/dev/null

# 1. Records: a generator → JSON lines (also the parse-ceiling input) → Kafka.
cat >"$work/gen.sql" <<SQL
CREATE TABLE g (id BIGINT, user_id BIGINT, amount BIGINT, url VARCHAR) WITH (
  'connector' = 'datagen', 'number-of-rows' = '$records', 'fields.id.kind' = 'sequence',
  'fields.id.min' = '1', 'fields.user_id.min' = '1', 'fields.user_id.max' = '100000',
  'fields.amount.min' = '0', 'fields.amount.max' = '1000',
  'fields.url.length' = '24');
CREATE TABLE j (id BIGINT, user_id BIGINT, amount BIGINT, url VARCHAR) WITH (
  'connector' = 'filesystem', 'path' = '$work/json', 'format' = 'json');
INSERT INTO j SELECT * FROM g;
SQL
"$bin/sluice" run --quiet --workers 2 "$work/gen.sql"
cat >"$work/produce.sql" <<SQL
CREATE TABLE j (id BIGINT, user_id BIGINT, amount BIGINT, url VARCHAR) WITH (
  'connector' = 'filesystem', 'path' = '$work/json', 'format' = 'json');
CREATE TABLE k (id BIGINT, user_id BIGINT, amount BIGINT, url VARCHAR) WITH (
  'connector' = 'kafka', 'topic' = 'events', 'format' = 'json',
  'properties.bootstrap.servers' = '$bootstrap');
INSERT INTO k SELECT * FROM j;
SQL
"$bin/sluice" run --quiet --workers 2 "$work/produce.sql"
bytes=$(cat "$work"/json/part-* | wc -c)

# 2. The pipeline: Kafka → filter + projection → Parquet on S3 (bounded read).
cat >"$work/pipeline.sql" <<SQL
CREATE TABLE events (id BIGINT, user_id BIGINT, amount BIGINT, url VARCHAR) WITH (
  'connector' = 'kafka', 'topic' = 'events', 'format' = 'json',
  'properties.bootstrap.servers' = '$bootstrap', 'scan.bounded.mode' = 'latest-offset');
CREATE TABLE lake (id BIGINT, user_id BIGINT, cents BIGINT) WITH (
  'connector' = 'filesystem', 'path' = 's3://lake/events', 'format' = 'parquet',
  's3.endpoint' = 'http://127.0.0.1:$port', 's3.region' = 'us-east-1', 's3.allow-http' = 'true',
  's3.access-key-id' = 'bench', 's3.secret-access-key' = 'bench');
INSERT INTO lake SELECT id, user_id, amount * 100 FROM events WHERE amount % 10 <> 3;
SQL
measure() { # label, workers, script → "wall user sys maxrss_kb"
  /usr/bin/time -f "%e %U %S %M" -o "$work/time" "$bin/sluice" run --quiet --workers "$2" "$3" >/dev/null
  cat "$work/time"
}
read -r wall user sys rss < <(measure pipeline "$workers" "$work/pipeline.sql")

# 3. The ceiling: the same JSON, parsed by one worker from local files, discarded.
cat >"$work/parse.sql" <<SQL
CREATE TABLE j (id BIGINT, user_id BIGINT, amount BIGINT, url VARCHAR) WITH (
  'connector' = 'filesystem', 'path' = '$work/json', 'format' = 'json');
CREATE TABLE b (id BIGINT, user_id BIGINT, amount BIGINT, url VARCHAR) WITH ('connector' = 'blackhole');
INSERT INTO b SELECT * FROM j;
SQL
read -r pwall puser psys prss < <(measure parse 1 "$work/parse.sql")

report=$(python3 - "$records" "$bytes" "$wall" "$user" "$sys" "$rss" "$pwall" "$puser" "$psys" "$workers" "$parts" <<'PY'
import sys
n, b = int(sys.argv[1]), int(sys.argv[2])
wall, user, sys_, rss = map(float, sys.argv[3:7])
pwall, puser, psys = map(float, sys.argv[7:10])
workers, parts = sys.argv[10], sys.argv[11]
cpu = user + sys_
pcpu = puser + psys
mb = b / 1e6
print(f"| measure | pipeline (Kafka → S3 Parquet, {workers} workers) | JSON-parse ceiling (1 worker, local file → blackhole) |")
print("|---|---|---|")
print(f"| records | {n:,} | {n:,} |")
print(f"| wall s | {wall:.2f} | {pwall:.2f} |")
print(f"| CPU s (worker process) | {cpu:.2f} | {pcpu:.2f} |")
print(f"| records/s | {n/wall:,.0f} | {n/pwall:,.0f} |")
print(f"| records/s per CPU-second | {n/cpu:,.0f} | {n/pcpu:,.0f} |")
print(f"| MB/s of JSON | {mb/wall:.1f} | {mb/pwall:.1f} |")
print(f"| MB/s per CPU-second | {mb/cpu:.1f} | {mb/pcpu:.1f} |")
print(f"| peak RSS MB | {rss/1024:.0f} | - |")
print(f"| pipeline / ceiling, per CPU-second | {(n/cpu)/(n/pcpu):.2f} | 1 |")
print()
print(f"{n:,} records, {mb:.1f} MB of JSON, {parts} partitions; the S3 server is moto (Python) on the same machine and its CPU is not counted above.")
PY
)
host="$(nproc) cores, $(awk '/model name/{$1=$2=$3="";print;exit}' /proc/cpuinfo | sed 's/^ *//'), $(free -g | awk '/Mem:/{print $2}') GiB"
mkdir -p bench/results
out="bench/results/kafka_s3-$(date -u +%Y-%m-%d).md"
{
  echo "# Kafka → S3 Parquet throughput ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "Machine: $host. Command: \`bench/kafka_s3.sh --records $records --workers $workers --partitions $parts\`."
  echo
  echo "$report"
} >"$out"
cat "$out"
