#!/usr/bin/env bash
# Nexmark q0-q22 (a subset): Sluice beside Apache Flink on the same generated events.
# Installs PyFlink (apache-flink from PyPI) into bench/.venv-flink on first use (it runs
# on the machine's Java 17), then runs bench/nexmark.py with the given arguments:
#   bash bench/nexmark.sh                        # 10M events, all queries, results/
#   bash bench/nexmark.sh --events 20000 --smoke # a quick check that everything runs
#   bash bench/nexmark.sh --no-flink ...         # Sluice only (no Java, no install)
# See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
FLINK_VERSION=2.3.0
if [[ " $* " != *" --no-flink "* ]]; then
  command -v java >/dev/null || { echo "bench/nexmark.sh: Flink needs java (17) on PATH, or pass --no-flink" >&2; exit 1; }
  if ! bench/.venv-flink/bin/python -c "import sys, pyflink.version as v; sys.exit(v.__version__ != '$FLINK_VERSION')" 2>/dev/null; then
    echo "installing apache-flink==$FLINK_VERSION into bench/.venv-flink" >&2
    python3 -m venv bench/.venv-flink
    for attempt in 1 2 3; do
      bench/.venv-flink/bin/pip install --quiet --disable-pip-version-check "apache-flink==$FLINK_VERSION" && break
      [[ $attempt == 3 ]] && { echo "bench/nexmark.sh: could not install apache-flink" >&2; exit 1; }
      echo "pip install failed (attempt $attempt); retrying" >&2
      sleep 10
    done
  fi
fi
exec python3 bench/nexmark.py "$@"
