#!/usr/bin/env python3
"""Checkpoint cost and recovery of a stateful job, against the size of its state.

For each number of groups K, a job `SELECT k, COUNT(*), SUM(v), COUNT(DISTINCT v % 100)
FROM datagen GROUP BY k` (K distinct keys, 200k rows/s, checkpoints every 2 s, 2
workers) runs under a real `sluice serve`. Once its groups are all present, the bench
reads the job's checkpoints (`GET /api/v1/jobs/{name}/commits`): the state a restore
reads, the bytes each checkpoint wrote (incremental snapshots write only the groups
changed since the one before) and the duration (request to record), averaged over the
last three. Then it kills the worker process
(`kill -9`) and measures recovery: from the kill to the first checkpoint written by the
restarted instance (watchdog detection, backoff, process start, restore, one
checkpoint interval), and the restore itself as the new instance logs it. Figures are
measured, never asserted; see bench/README.md.

    python3 bench/checkpoints.py --sluice target/release/sluice [--keys 1000,100000,1000000]

`--job join` measures the symmetric hash join instead: two generated sequences joined
on their ids (`SELECT a.id, b.v FROM a JOIN b ON a.id = b.id`, each side at the rate),
whose state is every row read (an append-only join frees a side's rows only when the
other input ends); `--keys` then lists the held rows to measure at.
"""
import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request


def api(base, token, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read().decode()
        return json.loads(text) if text.startswith(("{", "[")) else text


def wait(what, seconds, f):
    deadline = time.time() + seconds
    while time.time() < deadline:
        v = f()
        if v:
            return v
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", default="target/release/sluice")
    ap.add_argument("--keys", default="1000,100000,1000000")
    ap.add_argument("--rate", type=int, default=200000)
    ap.add_argument("--job", choices=["aggregate", "join"], default="aggregate")
    args = ap.parse_args()
    sluice = os.path.abspath(args.sluice)
    work = tempfile.mkdtemp(prefix="sluice-chk-bench-")
    data = os.path.join(work, "data")
    log = open(os.path.join(work, "master.log"), "w")
    master = subprocess.Popen(
        [sluice, "serve", "--data-dir", data, "--listen", "127.0.0.1:0",
         "--restart-backoff-ms", "100"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        def listening():
            for line in open(os.path.join(work, "master.log")):
                if "listening on http://" in line:
                    return line.split("listening on ")[1].split()[0]
            return None
        base = wait("the master", 30, listening)
        token = wait("the admin token", 10,
                     lambda: os.path.exists(os.path.join(data, "admin.token"))
                     and open(os.path.join(data, "admin.token")).read().strip())
        rows = []
        for k in [int(x) for x in args.keys.split(",")]:
            name = f"{args.job}-{k}"
            join_sql = (
                "SET 'execution.checkpointing.interval' = '2s';\n"
                + "".join(
                    f"CREATE TABLE {t} (id BIGINT, v BIGINT) WITH ('connector' = 'datagen', "
                    f"'rows-per-second' = '{args.rate}', 'fields.id.kind' = 'sequence', "
                    "'fields.id.min' = '1', 'fields.v.min' = '0', 'fields.v.max' = '1000000');\n"
                    for t in ("a", "b"))
                + "CREATE TABLE dst (id BIGINT, v BIGINT) WITH ('connector' = 'blackhole');\n"
                "INSERT INTO dst SELECT a.id, b.v FROM a JOIN b ON a.id = b.id;\n")
            sql = join_sql if args.job == "join" else (
                "SET 'execution.checkpointing.interval' = '2s';\n"
                f"CREATE TABLE src (k BIGINT, v BIGINT) WITH ('connector' = 'datagen', "
                f"'rows-per-second' = '{args.rate}', 'fields.k.min' = '1', 'fields.k.max' = '{k}', "
                "'fields.v.min' = '0', 'fields.v.max' = '1000000');\n"
                "CREATE TABLE dst (k BIGINT, n BIGINT, total BIGINT, kinds BIGINT) "
                "WITH ('connector' = 'blackhole');\n"
                "INSERT INTO dst SELECT k, COUNT(*), SUM(v), COUNT(DISTINCT v % 100) "
                "FROM src GROUP BY k;\n")
            api(base, token, "POST", "/api/v1/jobs",
                {"name": name, "sql": sql, "resources": {"parallelism": 2, "memory_mb": 8192}})
            # Enough rows for (nearly) every key, then three more checkpoints.
            need = k if args.job == "join" else max(5 * k, 400000)
            wait("the groups", 900, lambda: api(base, token, "GET", f"/api/v1/jobs/{name}")
                 .get("rows_in", 0) >= need)
            first = len(api(base, token, "GET", f"/api/v1/jobs/{name}/commits")["commits"])
            commits = wait("three more checkpoints", 120, lambda: (
                lambda c: c if len(c) >= first + 3 else None)(
                api(base, token, "GET", f"/api/v1/jobs/{name}/commits")["commits"]))
            last3 = commits[-3:]
            state = sum(sum(c["state"].values()) for c in last3) / 3
            written = sum(c.get("written_bytes", 0) for c in last3) / 3
            duration = sum(c["duration_ms"] or 0 for c in last3) / 3
            # Kill the worker; recovery ends with the new instance's first checkpoint.
            inst = [i for i in api(base, token, "GET", f"/api/v1/jobs/{name}/instances")
                    if i["state"] == "running"][0]
            pid = json.load(open(os.path.join(data, "instances", inst["id"], "launch.json")))["pid"]
            old_run = commits[-1]["run"]
            killed = time.time()
            os.kill(pid, signal.SIGKILL)
            new = wait("a checkpoint of the restarted instance", 300, lambda: [
                c for c in api(base, token, "GET", f"/api/v1/jobs/{name}/commits")["commits"]
                if c["run"] not in ("", old_run) and c["epoch"] > commits[-1]["epoch"]])
            completed = datetime.datetime.fromisoformat(
                new[0]["completed_at"].replace("Z", "+00:00")).timestamp()
            recovery = completed - killed
            newest = [i for i in api(base, token, "GET", f"/api/v1/jobs/{name}/instances")
                      if i["id"] != inst["id"]]
            restore_ms = "?"
            if newest:
                text = api(base, token, "GET", f"/api/v1/instances/{newest[-1]['id']}/logs")
                for line in str(text).splitlines():
                    if "restored from checkpoint" in line and " in " in line:
                        restore_ms = line.split(" in ")[1].split(" ms")[0]
            rows.append((k, state, written, duration, restore_ms, recovery))
            api(base, token, "DELETE", f"/api/v1/jobs/{name}")
        unit = "held rows" if args.job == "join" else "groups"
        print(f"| {unit} | state bytes a restore reads (all workers) | bytes written per checkpoint | checkpoint duration ms | restore read ms | kill -9 → first checkpoint after recovery, s |")
        print("|---:|---:|---:|---:|---:|---:|")
        for k, state, written, duration, restore_ms, recovery in rows:
            print(f"| {k:,} | {state:,.0f} | {written:,.0f} | {duration:,.0f} | {restore_ms} | {recovery:.2f} |")
    finally:
        master.send_signal(signal.SIGKILL)
        master.wait()
        subprocess.run(["pkill", "-9", "-f", os.path.join(data, "instances")], check=False)


if __name__ == "__main__":
    main()
