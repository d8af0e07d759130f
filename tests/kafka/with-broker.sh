#!/usr/bin/env bash
# Runs a command beside a real Kafka-protocol broker, for the tests that librdkafka's
# mock cluster cannot serve (it stores no transactional offsets: the exactly-once Kafka
# sink's restore test). The broker is nisshi 0.7.0-pre.2 (a Kafka-compatible broker from
# crates.io, the newest that builds with this toolchain; memory storage), on a free
# loopback port; the command sees its address in SLUICE_KAFKA_BOOTSTRAP. The first use
# installs it into .tools/ (about 10 minutes of compiling on 2 cores).
#   bash tests/kafka/with-broker.sh cargo test -p sluice-connectors kafka_exactly_once_restore -- --ignored
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$root/.tools/bin/nisshi"
if [[ ! -x "$bin" ]]; then
  echo "installing nisshi 0.7.0-pre.2 (a Kafka-protocol broker) into .tools/"
  cargo install nisshi --version 0.7.0-pre.2 --locked --features dynostore --quiet \
    --root "$root/.tools" --target-dir "$root/.tools/target"
  rm -rf "$root/.tools/target"
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$(mktemp)"
"$bin" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://sluice-tests/ >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 200); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "the broker did not start:"; cat "$log"; exit 1; fi
  sleep 0.1
done
export SLUICE_KAFKA_BOOTSTRAP="127.0.0.1:$port"
echo "a Kafka-protocol broker (nisshi) at $SLUICE_KAFKA_BOOTSTRAP"
"$@"
