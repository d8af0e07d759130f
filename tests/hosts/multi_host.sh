#!/usr/bin/env bash
# Multi-host test of the `hosts` cluster on one machine: three network namespaces
# (a master and two agents, joined by veth pairs on a bridge inside the master's
# namespace; their addresses exist only inside them) run the real `sluice serve` and
# two `sluice agent`s. It checks, in order:
#   1. a job of parallelism 4 as 2 processes spreads over both agents;
#   2. host loss: every process of one agent is killed (the agent too); the instance is
#      restarted on the surviving agent from its checkpoint and the output holds every
#      row exactly once (a join feeding an aggregate of two Kafka topics: the golden
#      totals). Kafka is librdkafka's mock cluster (in the master's namespace, reached
#      from the agents' through forwarders: tests/hosts/forward.py); checkpoints and
#      output live on an S3 server (moto, also in the master's namespace), the store
#      every host reaches;
#   3. partition: an agent whose link goes down while its process runs is fenced (its
#      lease runs out: it kills the process) and the job moves to the other agent; its
#      output again equals the golden result (no duplicates); when the link comes back
#      the master does not let the old process run.
# Needs root and `ip` (iproute2); prints "SKIP: <reason>" and exits 77 when the machine
# cannot create namespaces; moto's S3 server (SLUICE_MOTO_SERVER, as .ci/test sets it) and
# the tests' kafka-mock binary (SLUICE_KAFKA_MOCK; default: beside SLUICE_BIN).
# Usage: SLUICE_BIN=target/debug/sluice SLUICE_MOTO_SERVER=.venv/bin/moto_server bash tests/hosts/multi_host.sh
set -euo pipefail

BIN=$(readlink -f "${SLUICE_BIN:-target/debug/sluice}" || true)
[ -x "$BIN" ] || { echo "no sluice binary at ${SLUICE_BIN:-target/debug/sluice} (build it, or set SLUICE_BIN)"; exit 1; }
MOTO=$(readlink -f "${SLUICE_MOTO_SERVER:-.venv/bin/moto_server}" || true)
[ -x "$MOTO" ] || { echo "no moto server at ${SLUICE_MOTO_SERVER:-.venv/bin/moto_server} (set SLUICE_MOTO_SERVER)"; exit 1; }
KAFKA_MOCK=$(readlink -f "${SLUICE_KAFKA_MOCK:-$(dirname "$BIN")/kafka-mock}" || true)
[ -x "$KAFKA_MOCK" ] || { echo "no kafka-mock at $KAFKA_MOCK (cargo build -p sluice-tests, or set SLUICE_KAFKA_MOCK)"; exit 1; }
FORWARD=$(readlink -f "$(dirname "$0")/forward.py")
if [ "$(id -u)" != 0 ] || ! command -v ip > /dev/null; then
  echo "SKIP: multi-host test needs root and iproute2 to create network namespaces"; exit 77
fi
tag=$$
probe="slp$tag"
if ! ip netns add "$probe" 2> /dev/null; then
  echo "SKIP: this machine cannot create network namespaces (ip netns add failed)"; exit 77
fi
ip netns del "$probe"

M="slm$tag"; A1="sla$tag"; A2="slb$tag"
NET="10.$(( (tag / 250) % 250 + 1 )).$(( tag % 250 )).0"
base=${NET%.0}
MIP="$base.1"; A1IP="$base.2"; A2IP="$base.3"
WORK=$(mktemp -d /tmp/sluice-hosts.XXXXXX)
PIDS=()

cleanup() {
  set +e
  exec 2> /dev/null # (not bash's "Killed" line for each process it started)
  for ns in "$A1" "$A2" "$M"; do
    for p in $(ip netns pids "$ns" 2> /dev/null); do kill -9 "$p" 2> /dev/null; done
  done
  sleep 0.3
  for ns in "$A1" "$A2" "$M"; do ip netns del "$ns" 2> /dev/null; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
# A command that fails outside a check (set -e) says where, instead of ending the run silently.
trap 'fail "line $LINENO exited $?: $BASH_COMMAND"' ERR

log() { echo "[$(date +%H:%M:%S)] $*"; }
fail() { echo "FAIL: $*"; echo "--- master log"; tail -n 60 "$WORK/master.log"; for a in a1 a2; do echo "--- agent $a"; tail -n 30 "$WORK/$a.log" 2>/dev/null; done; exit 1; }

# --- the network: a bridge in the master's namespace, a veth pair per agent
for ns in "$M" "$A1" "$A2"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip -n "$M" link add br0 type bridge
ip -n "$M" addr add "$MIP/24" dev br0
ip -n "$M" link set br0 up
i=0
for pair in "$A1:$A1IP" "$A2:$A2IP"; do
  ns=${pair%%:*}; addr=${pair##*:}; i=$((i + 1))
  ip link add "sv$i$tag" type veth peer name "sb$i$tag"
  ip link set "sv$i$tag" netns "$ns"
  ip link set "sb$i$tag" netns "$M"
  ip -n "$ns" link set "sv$i$tag" name eth0
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$M" link set "sb$i$tag" master br0
  ip -n "$M" link set "sb$i$tag" up
done
# (reachability is checked by the agents registering and the processes connecting)

# --- the S3 server (checkpoints and output), in the master's namespace
S3="http://$MIP:5055"
ip netns exec "$M" "$MOTO" -H "$MIP" -p 5055 > "$WORK/moto.log" 2>&1 &
for _ in $(seq 100); do ip netns exec "$M" curl -s -o /dev/null "$S3/" && break; sleep 0.2; done
for bucket in ckpt lake; do ip netns exec "$M" curl -sf -X PUT "$S3/$bucket" > /dev/null || fail "cannot create bucket $bucket"; done
# The checkpoint store's credentials come from the environment (every host's: the
# workers inherit their agent's); the output table names its own.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test-secret AWS_REGION=us-east-1 AWS_ENDPOINT="$S3" AWS_ALLOW_HTTP=true

# --- Kafka (librdkafka's mock cluster) in the master's namespace: it listens and
# advertises on its loopback; a forwarder on the bridge address and one on each agent's
# loopback make that address lead to it from every host
# (It serves until its standard input closes: a sleep in the namespace holds it open.)
ip netns exec "$M" bash -c 'sleep 100000 2> /dev/null | exec "$0" a:4 b:4' "$KAFKA_MOCK" \
  > "$WORK/kafka.out" 2> "$WORK/kafka.log" &
for _ in $(seq 100); do grep -q bootstrap= "$WORK/kafka.out" && break; sleep 0.1; done
KAFKA=$(sed -n 's/^bootstrap=//p' "$WORK/kafka.out")
[ -n "$KAFKA" ] || fail "the Kafka mock did not start: $(cat "$WORK/kafka.log")"
KPORT=${KAFKA##*:}
ip netns exec "$M" python3 "$FORWARD" "$MIP" "$KPORT" 127.0.0.1 > "$WORK/fwd-m.log" 2>&1 &
forward_from() { # NS: the agent namespace's loopback Kafka port -> the master's
  ip netns exec "$1" python3 "$FORWARD" 127.0.0.1 "$KPORT" "$MIP" >> "$WORK/fwd-$1.log" 2>&1 &
}
forward_from "$A1"
forward_from "$A2"

# --- the master and two agents
DATA="$WORK/data"; OUT1="s3://lake/out1"; OUT2="s3://lake/out2"
ip netns exec "$M" "$BIN" serve --listen "$MIP:8080" --data-dir "$DATA" --allow-path "$WORK" \
  --checkpoint-store s3://ckpt/jobs --allow-endpoint "$S3" \
  --hosts-cluster hosts:pool=test --agent-timeout-ms 3000 --agent-heartbeat-ms 200 \
  --restart-backoff-ms 200 --watchdog-interval-ms 200 > "$WORK/master.log" 2>&1 &
for _ in $(seq 100); do [ -s "$DATA/admin.token" ] && break; sleep 0.1; done
[ -s "$DATA/admin.token" ] || fail "the master did not start"
TOKEN=$(cat "$DATA/admin.token")
api() { # METHOD PATH [BODY]
  local body=${3:-}
  ip netns exec "$M" curl -sS -X "$1" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    ${body:+--data "$body"} "http://$MIP:8080$2"
}
for _ in $(seq 50); do api GET /api/v1/clusters > /dev/null 2>&1 && break; sleep 0.1; done
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# The agents hold a token of role agent: it reaches the agent routes and nothing else.
AGENT_TOKEN="$WORK/agent.token"
api POST /api/v1/tokens '{"name":"agents","role":"agent"}' | json "d['token']" > "$AGENT_TOKEN" \
  || fail "cannot create the agents' token"
code=$(ip netns exec "$M" curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$AGENT_TOKEN")" \
  "http://$MIP:8080/api/v1/jobs")
[ "$code" = 403 ] || fail "an agent's token listed the jobs (HTTP $code)"

start_agent() { # NAME NS IP
  ip netns exec "$2" "$BIN" agent --master "http://$MIP:8080" --slots 4 --labels pool=test \
    --dir "$WORK/$1" --advertise "$3" --ports 7100-7199 --name "$1" --token-file "$AGENT_TOKEN" \
    >> "$WORK/$1.log" 2>&1 &
}
start_agent a1 "$A1" "$A1IP"
start_agent a2 "$A2" "$A2IP"

wait_for() { # SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  while [ $SECONDS -lt $end ]; do
    if "$@" > /dev/null 2>&1; then return 0; fi
    sleep 0.3
  done
  fail "timed out after ${secs}s waiting for $what"
}
alive_agents() { [ "$(api GET /api/v1/agents | json "sum(1 for a in d if a['alive'])")" = "$1" ]; }
wait_for 20 "two agents" alive_agents 2
log "two agents registered"

ROWS=20000 KAFKA_ROWS=200000
# Topics a and b hold ids 1..KAFKA_ROWS each, as JSON (written by a bounded job in the master's
# namespace; small batches, so that the job reading them takes a while).
cat > "$WORK/produce.sql" << EOF
CREATE TABLE g (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '$KAFKA_ROWS', 'fields.id.kind' = 'sequence', 'fields.id.min' = '1');
CREATE TABLE a (id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'a', 'format' = 'json', 'properties.bootstrap.servers' = '$KAFKA', 'properties.linger.ms' = '0', 'properties.batch.num.messages' = '20');
CREATE TABLE b (id BIGINT) WITH ('connector' = 'kafka', 'topic' = 'b', 'format' = 'json', 'properties.bootstrap.servers' = '$KAFKA', 'properties.linger.ms' = '0', 'properties.batch.num.messages' = '20');
INSERT INTO a SELECT id FROM g;
INSERT INTO b SELECT id FROM g;
EOF
ip netns exec "$M" "$BIN" run "$WORK/produce.sql" > "$WORK/produce.log" 2>&1 || fail "producing into Kafka: $(tail -5 "$WORK/produce.log")"
job_sql() { # OUT SOURCE (kafka: the topics; datagen: ROWS generated at 1500 a second)
  python3 - "$1" "$ROWS" "$S3" "$2" "$KAFKA" << 'EOF'
import json, sys
out, rows, s3, kind, kafka = sys.argv[1:6]
def src(n):
    if kind == "kafka":
        return (f"CREATE TABLE {n} (id BIGINT) WITH ('connector' = 'kafka', 'topic' = '{n}', 'format' = 'json', "
                f"'properties.bootstrap.servers' = '{kafka}', 'scan.startup.mode' = 'earliest-offset', "
                "'scan.bounded.mode' = 'latest-offset', 'properties.max.partition.fetch.bytes' = '1024');\n")
    return (f"CREATE TABLE {n} (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '{rows}', "
            f"'rows-per-second' = '1500', 'fields.id.kind' = 'sequence', 'fields.id.min' = '1');\n")
sql = ("SET 'execution.checkpointing.interval' = '200ms';\n" + src("a") + src("b") +
       f"CREATE TABLE totals (k BIGINT, n BIGINT, s BIGINT) WITH ('connector' = 'filesystem', 'path' = '{out}', "
       f"'format' = 'csv', 'csv.header' = 'true', 's3.endpoint' = '{s3}', 's3.region' = 'us-east-1', "
       "'s3.access-key-id' = 'test', 's3.secret-access-key' = 'test-secret', 's3.allow-http' = 'true');\n"
       "INSERT INTO totals SELECT a.id % 10, COUNT(*), SUM(b.id) FROM a JOIN b ON a.id = b.id GROUP BY a.id % 10;\n")
print(json.dumps(sql))
EOF
}
golden() { # ROWS
  python3 - "$1" << 'EOF'
import sys
rows = int(sys.argv[1])
for k in sorted(range(10), key=str):
    ids = [i for i in range(1, rows + 1) if i % 10 == k]
    print(f"{k},{len(ids)},{sum(ids)}")
EOF
}
committed() { # s3://BUCKET/PREFIX: every committed part's rows (headers skipped), sorted
  # (boto3 comes with moto, beside it)
  ip netns exec "$M" "$(dirname "$MOTO")/python3" - "$1" "$S3" << 'EOF'
import sys, boto3
bucket, _, prefix = sys.argv[1][len("s3://"):].partition("/")
s3 = boto3.client("s3", endpoint_url=sys.argv[2], region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test-secret")
lines = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
    for c in page.get("Contents", []):
        if c["Key"].rsplit("/", 1)[-1].startswith("part-"):
            body = s3.get_object(Bucket=bucket, Key=c["Key"])["Body"].read().decode()
            lines += body.splitlines()[1:]
for l in sorted(lines):
    print(l)
EOF
}
job_state() { api GET "/api/v1/jobs/$1" | json "d['state']"; }
is_state() { [ "$(job_state "$1")" = "$2" ]; }
has_state_checkpoint() {
  api GET "/api/v1/jobs/$1/commits" | python3 -c "
import json,sys
d=json.load(sys.stdin)
sys.exit(0 if any(any((b or 0)>100 for b in (c.get('state') or {}).values()) for c in d.get('commits',[])) else 1)"
}

# --- 1. spread over both agents
body=$(printf '{"name":"spread","sql":%s,"cluster":"hosts","resources":{"parallelism":4,"processes":2}}' "$(job_sql "$OUT1" kafka)")
created=$(api POST /api/v1/jobs "$body")
echo "$created" | json "d['name']" > /dev/null || fail "job not created: $created"
spread() { [ "$(api GET /api/v1/agents | json "sorted(a['processes'] for a in d if a['alive'])")" = "[1, 1]" ]; }
wait_for 30 "one process on each agent" spread
is_state spread running || wait_for 20 "the job running" is_state spread running
log "job 'spread' runs as 2 processes, one on each agent"
# Its log: each process's tail, fetched from its agent through the heartbeats.
first=$(api GET /api/v1/jobs/spread/instances | json "[i['id'] for i in d if i['state']=='running'][0]")
remote_logs() { # INSTANCE PATTERN: its logs name both hosts, all arrived, and match PATTERN
  api GET "/api/v1/instances/$1/logs" > "$WORK/logs.txt" && grep -q "^==> process $1@p0 on " "$WORK/logs.txt" \
    && grep -q "^==> process $1@p1 on " "$WORK/logs.txt" && ! grep -q "did not arrive" "$WORK/logs.txt" \
    && grep -q "$2" "$WORK/logs.txt"
}
wait_for 20 "the logs of both processes from their agents" remote_logs "$first" " on a1 (.*"
remote_logs "$first" " on a2 (" || fail "the logs lack a2's process: $(cat "$WORK/logs.txt")"
log "logs: both processes' tails came from their agents"

# --- 2. host loss: kill everything in a1's namespace once a checkpoint holds state
wait_for 40 "a checkpoint holding state" has_state_checkpoint spread
victims=$(ip netns pids "$A1")
log "host a1 lost: killing its processes $(echo $victims | tr '\n' ' ')"
kill -9 $victims
# The restarted instance's log, from the surviving agent, says it restored.
restarted() { api GET /api/v1/jobs/spread/instances | json "[i['id'] for i in d if i['id'] != '$first' and i['state'] in ('running', 'finished')][0]"; }
wait_for 30 "the restarted instance" restarted
second=$(restarted)
wait_for 20 "the restarted instance's log saying it restored" remote_logs "$second" "restored from checkpoint"
log "logs: the restarted instance ($second) restored from its checkpoint, as its agent's log says"
wait_for 90 "job 'spread' to finish after the host loss" is_state spread finished
restarts=$(api GET /api/v1/jobs/spread | json "d['restarts']")
[ "$restarts" -ge 1 ] || fail "the job was not restarted after the host loss (restarts $restarts)"
diff <(golden "$KAFKA_ROWS") <(committed "$OUT1") > "$WORK/diff1" || { cat "$WORK/diff1"; fail "output after the host loss differs from the golden result"; }
log "host loss: restarted $restarts time(s) on the surviving agent, every row of Kafka exactly once"

# --- 3. partition: a fresh a1 (and its Kafka forwarder); the job goes to one agent; cut
# that agent's link
forward_from "$A1"
start_agent a1 "$A1" "$A1IP"
wait_for 20 "a1 back" alive_agents 2
body=$(printf '{"name":"part","sql":%s,"cluster":"hosts","resources":{"parallelism":4,"processes":1}}' "$(job_sql "$OUT2" datagen)")
api POST /api/v1/jobs "$body" > /dev/null
placed() { api GET /api/v1/agents | json "[a['name'] for a in d if a['alive'] and a['processes']==1][0]"; }
wait_for 30 "job 'part' placed" placed
host=$(placed)
wait_for 40 "a checkpoint of 'part' holding state" has_state_checkpoint part
case $host in a1) ns=$A1 ;; a2) ns=$A2 ;; *) fail "placed on '$host'" ;; esac
worker_pids() { # NS: its sluice-worker processes (a function that succeeds whatever order the
  # namespace lists its processes in: pids wrap around on a busy machine)
  local p
  for p in $(ip netns pids "$1"); do
    if grep -q sluice-worker "/proc/$p/cmdline" 2> /dev/null; then echo "$p"; fi
  done
}
old=$(worker_pids "$ns")
[ -n "$old" ] || fail "no worker process in $host's namespace"
log "partition: cutting $host's link (worker pid $old)"
ip -n "$ns" link set eth0 down
# The agent's lease (half the master's 3 s timeout) runs out: it kills the process
# before the master declares the host lost and starts the job elsewhere.
gone() { for p in $old; do [ -e "/proc/$p" ] && ! grep -q '^State:.*Z' "/proc/$p/status" && return 1; done; return 0; }
wait_for 10 "the cut-off worker to be fenced" gone
wait_for 90 "job 'part' to finish elsewhere" is_state part finished
ip -n "$ns" link set eth0 up
diff <(golden "$ROWS") <(committed "$OUT2") > "$WORK/diff2" || { cat "$WORK/diff2"; fail "output after the partition differs from the golden result"; }
grep -q "lease" "$WORK/$host.log" || fail "the cut-off agent did not report its lease running out"
log "partition: $host fenced itself, the job finished on the other agent, 0 duplicates"
echo "multi-host: ok"
