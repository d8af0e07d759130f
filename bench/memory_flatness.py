#!/usr/bin/env python3
"""Memory flatness of Sluice's event-time operators over an unbounded-style generator.

Each query reads the `nexmark` connector in-process (no files: the input never sits in
memory or on disk) for N events, at several N, and reports the peak RSS of the worker
process tree. A query whose state the watermark frees (a window, an interval join, a
session) must show a peak RSS that does not grow with N; a query that keeps per-key
state forever (q4's auctions, q17's per-day groups) is listed beside them as the
contrast. Figures are measured, never asserted; see bench/README.md.

    python3 bench/memory_flatness.py --sluice target/release/sluice \
        [--events 1000000,2000000,4000000] [--queries q5,q7,q11,q8] [--workers 2]
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nexmark  # noqa: E402  (the harness: DDL, query texts, the process-tree meter)

KINDS = {
    "q5": "HOP by pane (windows freed at the watermark)",
    "q7": "interval join + tumble (rows freed at the watermark)",
    "q8": "tumble window join (closed windows)",
    "q11": "SESSION (sessions freed at the watermark)",
    "q12": "PROCTIME tumble (contrast: closes at end of input)",
    "q4": "regular join + group (contrast: state per auction)",
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sluice", default="target/release/sluice")
    ap.add_argument("--events", default="1000000,2000000,4000000")
    ap.add_argument("--queries", default="q5,q7,q8,q11,q4")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--md", help="write the markdown table here")
    ap.add_argument("--json", help="write the measurements here")
    args = ap.parse_args()
    sluice = os.path.abspath(args.sluice)
    sizes = [int(x) for x in args.events.split(",")]
    queries = args.queries.split(",")
    rows = []
    with tempfile.TemporaryDirectory(prefix="sluice-flat-") as work:
        nexmark.write_side_input(work)
        for q in queries:
            for n in sizes:
                script = os.path.join(work, f"{q}-{n}.sql")
                with open(script, "w") as f:
                    f.write(nexmark.generator_ddl(n) + nexmark.query_text(q, "sluice"))
                m = nexmark.measured([sluice, "run", script, "--workers", str(args.workers), "--quiet"],
                                     timeout=args.timeout)
                status = "ok" if m["rc"] == 0 else ("timeout" if m.get("timed_out") else "failed")
                row = {"query": q, "events": n, "status": status, "wall_s": round(m["wall_s"], 2),
                       "cpu_s": round(m["cpu_s"], 2), "peak_rss_mib": round(m["peak_rss_mib"])}
                rows.append(row)
                print(f"{q} {n:>10,} events: {status}, {row['peak_rss_mib']} MiB peak RSS, "
                      f"{row['cpu_s']} CPU s", flush=True)
                if status == "failed":
                    print(m["stderr"][-2000:], file=sys.stderr)
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [f"# Memory flatness: peak RSS against events ({datetime.date.today()}, Sluice {rev}, "
             f"{args.workers} workers, in-process nexmark generator)", "",
             "| query | what it keeps | " + " | ".join(f"{n:,} events" for n in sizes) + " | growth, last ÷ first |",
             "|---|---|" + "---|" * (len(sizes) + 1)]
    for q in queries:
        rs = [r for r in rows if r["query"] == q]
        cells = [f"{r['peak_rss_mib']} MiB" if r["status"] == "ok" else r["status"] for r in rs]
        ok = [r["peak_rss_mib"] for r in rs if r["status"] == "ok"]
        growth = f"{ok[-1] / ok[0]:.2f}" if len(ok) == len(rs) and ok and ok[0] else "-"
        lines.append(f"| {q} | {KINDS.get(q, '')} | " + " | ".join(cells) + f" | {growth} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.md:
        open(args.md, "w").write(text)
    if args.json:
        json.dump(rows, open(args.json, "w"), indent=1)


if __name__ == "__main__":
    main()
