#!/usr/bin/env python3
"""Bounded scans and a tumbling-window aggregate: Sluice beside DuckDB, one run.

Generates N Nexmark bids once (with Sluice's own generator) into Parquet and into CSV
(all seven bid columns, no header), then runs two queries on each format:

  * `q0`, a pass-through: every column of every bid read and decoded (Sluice: into a
    blackhole sink; DuckDB: MIN of every column, the cheapest way to make it decode them
    all without handing rows to Python),
  * `tumble`, bids with price > 100 counted/summed/maxed per auction bucket in 10-second
    tumbling windows,

with Sluice (workers 1 and 2) and DuckDB (threads 1 and 2) on the same files, plus Sluice
generating the bids in-process for the tumble; and reports events/s, events/s per
CPU-second (per core), CPU seconds and peak RSS of each, plus Sluice/DuckDB ratios at
the same parallelism, as a markdown table (and JSON with --json).

Usage: bench/window_bench.py [--events N] [--formats csv,parquet] [--sluice PATH] [--json OUT]
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

BID_COLUMNS = ("auction BIGINT, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, dateTime TIMESTAMP(3), "
               "extra VARCHAR")
DUCKDB_CSV_COLUMNS = ("{'auction': 'BIGINT', 'bidder': 'BIGINT', 'price': 'BIGINT', 'channel': 'VARCHAR', "
                      "'url': 'VARCHAR', 'dateTime': 'TIMESTAMP', 'extra': 'VARCHAR'}")

QUERY = """SELECT window_start, window_end, auction % 100 AS bucket, COUNT(*) AS bids, SUM(price) AS volume, MAX(price) AS top
FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
WHERE price > 100
GROUP BY window_start, window_end, auction % 100"""

DUCKDB_QUERY = """SELECT make_timestamp((epoch_ms(dateTime) // 10000) * 10000 * 1000) AS window_start, auction % 100 AS bucket,
       COUNT(*) AS bids, SUM(price) AS volume, MAX(price) AS top
FROM {scan}
WHERE price > 100
GROUP BY ALL"""

DUCKDB_Q0 = """SELECT MIN(auction), MIN(bidder), MIN(price), MIN(channel), MIN(url), MIN(dateTime), MIN(extra)
FROM {scan}"""


def duckdb_scan(fmt, path):
    if fmt == "parquet":
        return f"read_parquet('{path}/*.parquet')"
    return f"read_csv('{path}/*.csv', header = false, columns = {DUCKDB_CSV_COLUMNS})"


def nexmark_ddl(events, watermark=True):
    wm = ",\n  WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND" if watermark else ""
    return (f"CREATE TABLE bid ({BID_COLUMNS}{wm}) WITH ('connector' = 'nexmark', 'nexmark.table' = 'bid', "
            f"'nexmark.events' = '{events}', 'nexmark.seed' = '1', 'nexmark.max-out-of-order' = '1000');\n")


def files_ddl(fmt, path, watermark=True):
    wm = ",\n  WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND" if watermark else ""
    return (f"CREATE TABLE bid ({BID_COLUMNS}{wm}) WITH ('connector' = 'filesystem', 'path' = '{path}', "
            f"'format' = '{fmt}');\n")


SINK = ("CREATE TABLE sink (window_start TIMESTAMP(3), window_end TIMESTAMP(3), bucket BIGINT, bids BIGINT, "
        "volume BIGINT, top BIGINT) WITH ('connector' = 'blackhole');\n")
Q0_SINK = f"CREATE TABLE sink ({BID_COLUMNS}) WITH ('connector' = 'blackhole');\n"
SLUICE = {"tumble": SINK + "INSERT INTO sink " + QUERY + ";\n",
          "q0": Q0_SINK + "INSERT INTO sink SELECT * FROM bid;\n"}
DUCK = {"tumble": DUCKDB_QUERY, "q0": DUCKDB_Q0}


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
    ap.add_argument("--formats", default="csv,parquet")
    args = ap.parse_args()
    formats = args.formats.split(",")

    sluice = args.sluice
    if sluice is None:
        subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "sluice", "--bin", "sluice-worker"], cwd=ROOT, check=True)
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        sluice = os.path.join(target, "release", "sluice")

    import duckdb  # noqa: E402  (after the build, so a missing package fails fast but late)

    work = tempfile.mkdtemp(prefix="sluice-bench-")
    gen = os.path.join(work, "gen.sql")
    with open(gen, "w") as f:
        f.write(nexmark_ddl(args.events, watermark=False))
        for fmt in formats:
            f.write(f"CREATE TABLE out_{fmt} ({BID_COLUMNS}) WITH ('connector' = 'filesystem', "
                    f"'path' = '{work}/{fmt}', 'format' = '{fmt}');\nINSERT INTO out_{fmt} SELECT * FROM bid;\n")
    subprocess.run([sluice, "run", gen, "--workers", "2", "--quiet"], check=True)
    bids = duckdb.sql(f"SELECT COUNT(*) FROM {duckdb_scan(formats[0], os.path.join(work, formats[0]))}").fetchone()[0]

    rows = []

    def sluice_case(query, name, ddl, workers):
        script = os.path.join(work, f"{query}-{name}-{workers}.sql")
        with open(script, "w") as f:
            f.write(ddl + SLUICE[query])
        wall, cpu, rss, _ = measured([sluice, "run", script, "--workers", str(workers), "--quiet"])
        rows.append(dict(engine="sluice", query=query, case=name, parallelism=workers, events=bids, wall_s=wall,
                         cpu_s=cpu, peak_rss_mib=rss))

    def duckdb_case(query, fmt, threads):
        sql = DUCK[query].format(scan=duckdb_scan(fmt, os.path.join(work, fmt)))
        code = (
            "import duckdb,sys\n"
            f"con = duckdb.connect(); con.execute('SET threads={threads}')\n"
            f"con.execute({sql!r}).fetchall()\n"
        )
        wall, cpu, rss, _ = measured([sys.executable, "-c", code])
        rows.append(dict(engine="duckdb", query=query, case=fmt, parallelism=threads, events=bids, wall_s=wall,
                         cpu_s=cpu, peak_rss_mib=rss))

    # Startup, subtracted from each engine's CPU seconds (the brief: per CPU-second net of
    # each engine's startup): DuckDB's is Python + `import duckdb` + a trivial query,
    # Sluice's is q0 over an empty directory.
    empty = os.path.join(work, "empty")
    os.makedirs(empty)
    _, duck_start, _, _ = measured([sys.executable, "-c",
                                    "import duckdb; duckdb.connect().execute('SELECT 1').fetchall()"])
    script = os.path.join(work, "startup.sql")
    with open(script, "w") as f:
        f.write(files_ddl("csv", empty) + SLUICE["q0"])
    _, sluice_start, _, _ = measured([sluice, "run", script, "--workers", "2", "--quiet"])
    startup = {"duckdb": duck_start, "sluice": sluice_start}

    for query in ("q0", "tumble"):
        for fmt in formats:
            for w in (1, 2):
                sluice_case(query, fmt, files_ddl(fmt, os.path.join(work, fmt)), w)
                duckdb_case(query, fmt, w)
        for w in (1, 2):
            sluice_case(query, "nexmark-generator", nexmark_ddl(args.events), w)

    for r in rows:
        r["events_per_s"] = r["events"] / r["wall_s"]
        r["startup_cpu_s"] = startup[r["engine"]]
        r["events_per_cpu_s"] = r["events"] / max(r["cpu_s"] - startup[r["engine"]], 1e-3)
    duck = {(r["query"], r["case"], r["parallelism"]): r for r in rows if r["engine"] == "duckdb"}
    for r in rows:
        peer = duck.get((r["query"], r["case"], r["parallelism"]))
        r["ratio_vs_duckdb_per_core"] = r["events_per_cpu_s"] / peer["events_per_cpu_s"] if peer else None

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(f"# Scan and window benchmark: {bids} bids ({args.events} Nexmark events), Sluice {rev.strip()} beside "
          f"DuckDB {duckdb.__version__}\n")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores. events/s per core = bids / (CPU s of the "
          f"process − the engine's startup CPU s: DuckDB {duck_start:.2f}, Sluice {sluice_start:.2f})\n")
    print("| query | engine | input | parallelism | events/s | events/s per core | CPU s | peak RSS MiB "
          "| per-core ratio vs DuckDB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = f"{r['ratio_vs_duckdb_per_core']:.2f}" if r["ratio_vs_duckdb_per_core"] else "-"
        print(f"| {r['query']} | {r['engine']} | {r['case']} | {r['parallelism']} | {r['events_per_s']:,.0f} | "
              f"{r['events_per_cpu_s']:,.0f} | {r['cpu_s']:.2f} | {r['peak_rss_mib']:.0f} | {ratio} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(events=args.events, bids=bids, machine=platform.platform(), rows=rows), f, indent=2)


if __name__ == "__main__":
    main()
