#!/usr/bin/env python3
"""A stand-in for `sluice run FILE --workers N --format json`, built on DuckDB, to test the
oracle harness itself (DDL handling, JSON Lines output format, comparison, error reporting).

It understands the DDL the harness writes, runs the final SELECT on DuckDB (no Flink window
functions, so those queries fail, as they should) and prints rows in Sluice's JSON format.
With FAKE_SLUICE_CORRUPT=1 it perturbs some outputs, so that the harness must report failures.
"""
import datetime as dt
import json
import os
import re
import sys
from decimal import Decimal

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import gen_data  # noqa: E402


def main():
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "run":
        print("usage: fake_sluice.py run FILE --workers N --format json", file=sys.stderr)
        return 2
    script = open(args[1], encoding="utf-8").read()
    import duckdb
    con = duckdb.connect()
    stmts = [s.strip() for s in split_statements(script) if s.strip()]
    query = None
    for s in stmts:
        m = re.match(r"^CREATE TABLE (\w+) \((.*)\) WITH \((.*)\)$", s, re.S)
        if m:
            name, cols, opts = m.groups()
            try:
                schema = [tuple(c.strip().split(" ", 1)) for c in cols.split(", ")]
                o = dict(re.findall(r"'([^']*)' = '([^']*)'", opts))
                path = o["path"]
                fmt, table = path.rstrip("/").split("/")[-2:]
                data_dir = "/".join(path.rstrip("/").split("/")[:-2])
                con.execute("CREATE VIEW %s AS SELECT * FROM %s"
                            % (name, gen_data.table_source(data_dir, o["format"], table, schema)))
            except Exception as e:
                print("line 1, column 1: %s" % e, file=sys.stderr)
                return 2
        else:
            query = s
    try:
        cur = con.execute(query)
    except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException) as e:
        print("line 1, column 1: %s" % str(e).splitlines()[0], file=sys.stderr)
        return 2
    except Exception as e:
        print("runtime error: %s" % e, file=sys.stderr)
        return 1
    names = [d[0] for d in cur.description]
    corrupt = os.environ.get("FAKE_SLUICE_CORRUPT") == "1"
    out = sys.stdout
    for i, row in enumerate(cur.fetchall()):
        vals = [enc(v) for v in row]
        if corrupt and i == 0 and vals and vals[-1] not in ("null",):
            vals[-1] = "null"
        out.write("{" + ",".join(json.dumps(n) + ":" + v for n, v in zip(names, vals)) + "}\n")
    return 0


def enc(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, Decimal)):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dt.datetime):
        return json.dumps(v.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (v.microsecond // 1000))
    if isinstance(v, dt.date):
        return json.dumps(v.strftime("%Y-%m-%d"))
    return json.dumps(str(v), ensure_ascii=False)


def split_statements(text):
    out, cur, q = [], [], None
    for ch in text:
        if q:
            cur.append(ch)
            if ch == q:
                q = None
        elif ch in "'\"":
            q = ch
            cur.append(ch)
        elif ch == ";":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    # drop full-line comments
    return ["\n".join(l for l in s.splitlines() if not l.strip().startswith("--")) for s in out]


if __name__ == "__main__":
    sys.exit(main())
