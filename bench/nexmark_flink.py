#!/usr/bin/env python3
"""Run one Nexmark SQL script on Apache Flink (PyFlink, local mini-cluster).

Called by bench/nexmark.py with bench/.venv-flink/bin/python; not meant to be run by
hand (but it can be). The script is the source DDL followed by the query file: CREATE
TABLE / CREATE VIEW statements and one final INSERT INTO.

  --parallelism N   parallelism.default of the job (the mini-cluster gets N slots)
  --output DIR      for the correctness comparison: the INSERT goes into a CSV
                    filesystem table at DIR (same columns) instead of the blackhole.
                    A query whose result updates (a non-windowed aggregate) cannot go
                    to a file in streaming mode; with --batch-fallback it is then run
                    in batch mode, whose result on bounded input is the streaming
                    run's final result. Prints "mode": "streaming" or "batch".

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


def error_text(e):
    """The Java exception's first line (and its innermost cause), or the Python message."""
    msg = str(e)
    exc = re.compile(r"^\s*(?::\s*|Caused by:\s*)?((?:[\w$]+\.)+[\w$]*(?:Exception|Error)\b.*)$")
    found = [m.group(1).strip() for m in map(exc.match, msg.splitlines()) if m]
    if not found:
        lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
        return lines[0] if lines else repr(e)
    text = found[0] if len(found) == 1 or found[-1] == found[0] else f"{found[0]} (caused by {found[-1]})"
    return text[:400]


def to_file(stmts, out_dir):
    """The statements with the INSERT's target replaced by a CSV table at out_dir."""
    insert = stmts[-1]
    target = re.match(r"\s*INSERT\s+INTO\s+(\S+)", insert, flags=re.I).group(1)
    out = []
    for s in stmts[:-1]:
        m = re.match(r"\s*CREATE\s+TABLE\s+(\S+)\s*\((.*)\)\s*WITH\s*\(.*\)\s*$", s, flags=re.I | re.S)
        if m and m.group(1) == target:
            s = (f"CREATE TABLE {target} ({m.group(2)}) WITH ('connector' = 'filesystem', "
                 f"'path' = 'file://{out_dir}', 'format' = 'csv')")
        out.append(s)
    return out + [insert]


def run(stmts, parallelism, batch):
    from pyflink.table import EnvironmentSettings, TableEnvironment

    settings = EnvironmentSettings.in_batch_mode() if batch else EnvironmentSettings.in_streaming_mode()
    t_env = TableEnvironment.create(settings)
    conf = t_env.get_config()
    conf.set("parallelism.default", str(parallelism))
    conf.set("taskmanager.numberOfTaskSlots", str(parallelism))
    # The table options of the Nexmark repository's Flink configuration (conf/config.yaml).
    # Its RocksDB backend and 3-minute checkpoints are left out: Sluice does not checkpoint
    # operator state, so both engines keep state in memory and take no checkpoints.
    conf.set("table.exec.mini-batch.enabled", "true")
    conf.set("table.exec.mini-batch.allow-latency", "2s")
    conf.set("table.exec.mini-batch.size", "50000")
    conf.set("table.optimizer.distinct-agg.split.enabled", "true")
    t_ready = time.time()
    for s in stmts[:-1]:
        t_env.execute_sql(s)
    t_env.execute_sql(stmts[-1]).wait()
    return t_ready


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("script")
    ap.add_argument("--parallelism", type=int, default=1)
    ap.add_argument("--output", default=None)
    ap.add_argument("--batch-fallback", action="store_true")
    args = ap.parse_args()

    with open(args.script) as f:
        stmts = statements(f.read())
    if args.output:
        stmts = to_file(stmts, args.output)
    mode = "streaming"
    try:
        try:
            t_ready = run(stmts, args.parallelism, batch=False)
        except Exception as e:  # noqa: BLE001
            if not (args.batch_fallback and "update" in str(e).lower()):
                raise
            mode = "batch"
            t_ready = run(stmts, args.parallelism, batch=True)
    except Exception as e:  # noqa: BLE001 (reported to the harness as the run's status)
        print(json.dumps({"error": error_text(e)}))
        sys.exit(1)
    print(json.dumps({"t_start": T_START, "t_ready": t_ready, "t_done": time.time(), "mode": mode}))


if __name__ == "__main__":
    main()
