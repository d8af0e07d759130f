#!/usr/bin/env python3
"""Nexmark-style filter + tumbling-window aggregate: Sluice beside DuckDB, one run.

Generates N Nexmark bids once (with Sluice's own generator) into Parquet, then runs the
same query -- bids with price > 100, counted/summed/maxed per auction bucket in
10-second tumbling windows -- with:

  * Sluice reading the Parquet files (workers 1 and 2),
  * Sluice generating the bids in-process (workers 1 and 2),
  * DuckDB reading the same Parquet files (threads 1 and 2),

and reports events/s, events/s per CPU-second (per core), CPU seconds and peak RSS of
each, plus Sluice/DuckDB ratios, as a markdown table (and JSON with --json).

Usage: bench/window_bench.py [--events N] [--sluice PATH] [--json OUT]
Needs the `duckdb` Python package (.ci/test installs it into .venv).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BID_COLUMNS = "auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, dateTime TIMESTAMP(3)"

QUERY = """SELECT window_start, window_end, auction % 100 AS bucket, COUNT(*) AS bids, SUM(price) AS volume, MAX(price) AS top
FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
WHERE price > 100
GROUP BY window_start, window_end, auction % 100"""

DUCKDB_QUERY = """SELECT make_timestamp((epoch_ms(dateTime) // 10000) * 10000 * 1000) AS window_start, auction % 100 AS bucket,
       COUNT(*) AS bids, SUM(price) AS volume, MAX(price) AS top
FROM read_parquet('{path}/*.parquet')
WHERE price > 100
GROUP BY ALL"""


def nexmark_ddl(events, watermark=True):
    wm = ",\n  WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND" if watermark else ""
    return (f"CREATE TABLE bid ({BID_COLUMNS}{wm}) WITH ('connector' = 'nexmark', 'nexmark.table' = 'bid', "
            f"'nexmark.events' = '{events}', 'nexmark.seed' = '1', 'nexmark.max-out-of-order' = '1000');\n")


def parquet_ddl(path, watermark=True):
    wm = ",\n  WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND" if watermark else ""
    return (f"CREATE TABLE bid ({BID_COLUMNS}{wm}) WITH ('connector' = 'filesystem', 'path' = '{path}', "
            f"'format' = 'parquet');\n")


SINK = ("CREATE TABLE sink (window_start TIMESTAMP(3), window_end TIMESTAMP(3), bucket BIGINT, bids BIGINT, "
        "volume BIGINT, top BIGINT) WITH ('connector' = 'blackhole');\n")


def measured(cmd, **kw):
    """Run cmd under /usr/bin/time; return (wall s, cpu s, peak RSS MiB, stdout)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        out = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", "-o", t.name] + cmd,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        if out.returncode != 0:
            sys.exit(f"command failed ({out.returncode}): {' '.join(cmd)}\n{out.stderr}")
        wall, user, system, rss_kib = t.read().split()[-4:]
    return float(wall), float(user) + float(system), int(rss_kib) / 1024.0, out.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=5_000_000)
    ap.add_argument("--sluice", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    sluice = args.sluice
    if sluice is None:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "sluice", "--bin", "sluice-worker"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        sluice = os.path.join(target, "release", "sluice")

    import duckdb  # noqa: E402  (after the build, so a missing package fails fast but late)

    work = tempfile.mkdtemp(prefix="sluice-bench-")
    data = os.path.join(work, "bids")
    gen = os.path.join(work, "gen.sql")
    with open(gen, "w") as f:
        f.write(nexmark_ddl(args.events, watermark=False))
        f.write(f"CREATE TABLE out ({BID_COLUMNS}) WITH ('connector' = 'filesystem', 'path' = '{data}', "
                "'format' = 'parquet');\nINSERT INTO out SELECT * FROM bid;\n")
    subprocess.run([sluice, "run", gen, "--workers", "2", "--quiet"], check=True)
    bids = duckdb.sql(f"SELECT COUNT(*) FROM read_parquet('{data}/*.parquet')").fetchone()[0]

    rows = []

    def sluice_case(name, ddl, workers):
        script = os.path.join(work, f"{name}-{workers}.sql")
        with open(script, "w") as f:
            f.write(ddl + SINK + "INSERT INTO sink " + QUERY + ";\n")
        wall, cpu, rss, _ = measured([sluice, "run", script, "--workers", str(workers), "--quiet"])
        rows.append(dict(engine="sluice", case=name, parallelism=workers, events=bids, wall_s=wall, cpu_s=cpu,
                         peak_rss_mib=rss))

    for w in (1, 2):
        sluice_case("parquet", parquet_ddl(data), w)
        sluice_case("nexmark-generator", nexmark_ddl(args.events), w)

    for threads in (1, 2):
        code = (
            "import duckdb,sys\n"
            f"con = duckdb.connect(); con.execute('SET threads={threads}')\n"
            f"con.execute({DUCKDB_QUERY.format(path=data)!r}).fetchall()\n"
        )
        wall, cpu, rss, _ = measured([sys.executable, "-c", code])
        rows.append(dict(engine="duckdb", case="parquet", parallelism=threads, events=bids, wall_s=wall, cpu_s=cpu,
                         peak_rss_mib=rss))

    for r in rows:
        r["events_per_s"] = r["events"] / r["wall_s"]
        r["events_per_cpu_s"] = r["events"] / max(r["cpu_s"], 1e-9)
    duck = {r["parallelism"]: r for r in rows if r["engine"] == "duckdb"}
    for r in rows:
        peer = duck.get(r["parallelism"])
        r["ratio_vs_duckdb_per_core"] = r["events_per_cpu_s"] / peer["events_per_cpu_s"] if peer else None

    print(f"# Window benchmark: {bids} bids ({args.events} Nexmark events), filter + 10 s tumbling window\n")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores\n")
    print("| engine | input | parallelism | events/s | events/s per core | CPU s | peak RSS MiB | per-core ratio vs DuckDB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['ratio_vs_duckdb_per_core']:.2f}" if r["ratio_vs_duckdb_per_core"] else "-"
        print(f"| {r['engine']} | {r['case']} | {r['parallelism']} | {r['events_per_s']:,.0f} | "
              f"{r['events_per_cpu_s']:,.0f} | {r['cpu_s']:.2f} | {r['peak_rss_mib']:.0f} | {ratio} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(events=args.events, bids=bids, machine=platform.platform(), rows=rows), f, indent=2)


if __name__ == "__main__":
    main()
