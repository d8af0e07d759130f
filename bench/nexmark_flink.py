#!/usr/bin/env python3
"""Run one Nexmark SQL script on Apache Flink (PyFlink, local mini-cluster).

Called by bench/nexmark.py with bench/.venv-flink/bin/python; not meant to be run by
hand (but it can be). The script is the source DDL followed by the query file: CREATE
TABLE / CREATE VIEW statements and one final INSERT INTO.

  --parallelism N   parallelism.default of the job (the mini-cluster gets N slots)
  --collect OUT     instead of running the INSERT, run its SELECT and write the final
                    result (the changelog consolidated: +I/+U add a row, -U/-D remove
                    one) as JSON lines to OUT, for the correctness comparison

Prints one JSON line: {"t_start", "t_ready", "t_done"} (epoch seconds): process start
(before importing PyFlink), table environment ready (JVM up, DDL not yet run) and job
finished. On failure prints {"error": "..."} and exits 1.
"""
import argparse
import json
import re
import sys
import time

T_START = time.time()


def statements(text):
    """The script's statements (no semicolons inside literals in these scripts)."""
    text = re.sub(r"--[^\n]*", "", text)
    return [s.strip() for s in text.split(";") if s.strip()]


def canonical(v):
    """A value as the comparison writes it (the same spelling nexmark.py gives Sluice's)."""
    import datetime
    import decimal
    if v is None:
        return None
    if isinstance(v, datetime.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S.") + f"{v.microsecond // 1000:03d}"
    if isinstance(v, datetime.date):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def error_text(e):
    """The first line of the innermost Java cause, or the Python message."""
    msg = str(e)
    causes = [line.strip() for line in msg.splitlines() if line.strip().startswith("Caused by:")]
    line = causes[-1][len("Caused by:"):].strip() if causes else msg.strip().splitlines()[0] if msg.strip() else repr(e)
    return line


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("script")
    ap.add_argument("--parallelism", type=int, default=1)
    ap.add_argument("--collect", default=None)
    args = ap.parse_args()

    from pyflink.table import EnvironmentSettings, TableEnvironment

    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    conf.set("parallelism.default", str(args.parallelism))
    conf.set("taskmanager.numberOfTaskSlots", str(args.parallelism))
    # The table options of the Nexmark repository's Flink configuration (conf/config.yaml).
    # Its RocksDB backend and 3-minute checkpoints are left out: Sluice does not checkpoint
    # operator state, so both engines keep state in memory and take no checkpoints.
    conf.set("table.exec.mini-batch.enabled", "true")
    conf.set("table.exec.mini-batch.allow-latency", "2s")
    conf.set("table.exec.mini-batch.size", "50000")
    conf.set("table.optimizer.distinct-agg.split.enabled", "true")
    t_ready = time.time()

    with open(args.script) as f:
        stmts = statements(f.read())
    try:
        for s in stmts[:-1]:
            t_env.execute_sql(s)
        insert = stmts[-1]
        if args.collect is None:
            t_env.execute_sql(insert).wait()
        else:
            select = re.sub(r"^\s*INSERT\s+INTO\s+\S+\s*", "", insert, flags=re.I)
            from collections import Counter
            from pyflink.common import RowKind
            rows = Counter()
            with t_env.execute_sql(select).collect() as results:
                for row in results:
                    key = json.dumps([canonical(v) for v in row])
                    kind = row.get_row_kind()
                    rows[key] += 1 if kind in (RowKind.INSERT, RowKind.UPDATE_AFTER) else -1
            with open(args.collect, "w") as out:
                for key, n in sorted(rows.items()):
                    for _ in range(n):
                        out.write(key + "\n")
    except Exception as e:  # noqa: BLE001 (reported to the harness as the run's status)
        print(json.dumps({"error": error_text(e)}))
        sys.exit(1)
    print(json.dumps({"t_start": T_START, "t_ready": t_ready, "t_done": time.time()}))


if __name__ == "__main__":
    main()
