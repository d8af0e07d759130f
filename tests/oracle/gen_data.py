#!/usr/bin/env python3
"""Deterministic data generator for the Sluice oracle suite.

Writes every table in three formats under OUT_DIR:

    OUT_DIR/<format>/<table>/part-<n>.<ext>     format in csv, json, parquet
    OUT_DIR/schema.json                          column names and SQL types

The rows are produced by a seeded Python RNG, so the output is byte-for-byte
identical between runs of the same version of this file.  CSV and JSON Lines
files are written by hand (so their encoding is exactly the one Sluice's
readers are specified for); the parquet files are produced by DuckDB from the
CSV files with the declared column types, and finally every format is read back
through DuckDB and compared with the generated rows.

CSV encoding: a header line; NULL = an empty unquoted field; an empty string is
written as "" ; fields containing a comma, a quote or leading/trailing spaces
are quoted with "" doubling; booleans are true/false; DATE is YYYY-MM-DD;
TIMESTAMP(3) is YYYY-MM-DD HH:MM:SS.mmm; DECIMAL is written with exactly its
scale.

JSON Lines: one object per row, every column present (NULL = null), DECIMAL as
a JSON number with exactly its scale, DATE/TIMESTAMP as strings like in CSV.

Usage: gen_data.py OUT_DIR
"""

import datetime as dt
import json
import os
import random
import shutil
import sys
from decimal import Decimal

SEED = 20240310

# ---------------------------------------------------------------------------
# Schemas (order matters: it is the column order of the files and of the DDL)
# ---------------------------------------------------------------------------

SCHEMAS = {
    "region": [
        ("r_regionkey", "INT"),
        ("r_name", "VARCHAR"),
        ("r_comment", "VARCHAR"),
    ],
    "nation": [
        ("n_nationkey", "INT"),
        ("n_name", "VARCHAR"),
        ("n_regionkey", "INT"),
        ("n_comment", "VARCHAR"),
    ],
    "customer": [
        ("c_custkey", "INT"),
        ("c_name", "VARCHAR"),
        ("c_nationkey", "INT"),
        ("c_acctbal", "DECIMAL(12,2)"),
        ("c_mktsegment", "VARCHAR"),
        ("c_phone", "VARCHAR"),
        ("c_comment", "VARCHAR"),
    ],
    "orders": [
        ("o_orderkey", "BIGINT"),
        ("o_custkey", "INT"),
        ("o_orderstatus", "VARCHAR"),
        ("o_totalprice", "DECIMAL(12,2)"),
        ("o_orderdate", "DATE"),
        ("o_orderpriority", "VARCHAR"),
        ("o_shippriority", "INT"),
        ("o_comment", "VARCHAR"),
        ("o_ts", "TIMESTAMP(3)"),
    ],
    "lineitem": [
        ("l_orderkey", "BIGINT"),
        ("l_partkey", "INT"),
        ("l_suppkey", "INT"),
        ("l_linenumber", "INT"),
        ("l_quantity", "INT"),
        ("l_extendedprice", "DECIMAL(12,2)"),
        ("l_discount", "DECIMAL(4,2)"),
        ("l_tax", "DECIMAL(4,2)"),
        ("l_returnflag", "VARCHAR"),
        ("l_linestatus", "VARCHAR"),
        ("l_shipdate", "DATE"),
        ("l_commitdate", "DATE"),
        ("l_receiptdate", "DATE"),
        ("l_shipinstruct", "VARCHAR"),
        ("l_shipmode", "VARCHAR"),
        ("l_comment", "VARCHAR"),
    ],
    "events": [
        ("id", "BIGINT"),
        ("k", "INT"),
        ("v", "DOUBLE"),
        ("amount", "DECIMAL(10,2)"),
        ("name", "VARCHAR"),
        ("flag", "BOOLEAN"),
        ("ts", "TIMESTAMP(3)"),
    ],
    "clicks": [
        ("cid", "BIGINT"),
        ("k", "INT"),
        ("url", "VARCHAR"),
        ("ts", "TIMESTAMP(3)"),
    ],
    "dims": [
        ("k", "INT"),
        ("label", "VARCHAR"),
        ("weight", "INT"),
    ],
    "empty_events": [
        ("id", "BIGINT"),
        ("k", "INT"),
        ("v", "DOUBLE"),
        ("amount", "DECIMAL(10,2)"),
        ("name", "VARCHAR"),
        ("flag", "BOOLEAN"),
        ("ts", "TIMESTAMP(3)"),
    ],
}

# How many part files each table is split into (exercises multi-file reads).
PARTS = {"orders": 2, "lineitem": 2, "events": 2, "clicks": 2}

NATIONS = [
    ("ALGERIA", 0), ("ARGENTINA", 1), ("BRAZIL", 1), ("CANADA", 1), ("EGYPT", 4),
    ("ETHIOPIA", 0), ("FRANCE", 3), ("GERMANY", 3), ("INDIA", 2), ("INDONESIA", 2),
    ("IRAN", 4), ("IRAQ", 4), ("JAPAN", 2), ("JORDAN", 4), ("KENYA", 0),
    ("MOROCCO", 0), ("MOZAMBIQUE", 0), ("PERU", 1), ("CHINA", 2), ("ROMANIA", 3),
    ("SAUDI ARABIA", 4), ("VIETNAM", 2), ("RUSSIA", 3), ("UNITED KINGDOM", 3),
    ("UNITED STATES", 1),
]
REGIONS = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
SEGMENTS = ["AUTOMOBILE", "BUILDING", "FURNITURE", "HOUSEHOLD", "MACHINERY"]
PRIORITIES = ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED", "5-LOW"]
SHIPMODES = ["AIR", "FOB", "MAIL", "RAIL", "REG AIR", "SHIP", "TRUCK"]
INSTRUCTS = ["DELIVER IN PERSON", "COLLECT COD", "NONE", "TAKE BACK RETURN"]
WORDS = [
    "furiously", "special", "requests", "pending", "deposits", "carefully",
    "final", "ironic", "packages", "blithely", "regular", "accounts", "express",
    "quickly", "bold", "foxes", "sleep", "theodolites", "unusual", "dependencies",
]
NAME_POOL = [
    "alice", "Bob", "CAROL", "dave", "Eve", "frank", "Grace Hopper", "  padded  ",
    "50% off", "100%", "under_score", "a_b_c", "Zoë", "naïve café", "日本語",
    "Ünïcödé", "a,b", 'say "hi"', "", "x", "MiXeD CaSe", "tab\tsep", "O'Brien",
    "trailing ", " leading",
]
URLS = ["/home", "/cart", "/checkout", "/search?q=a", "/item/1", "/item/2", "/help", "/Login"]
DIM_LABELS = ["red", "Green", "BLUE", "yellow", "purple", "orange", "Cyan", "black"]


def maybe_null(rng, p, value):
    return None if rng.random() < p else value


def money(rng, lo, hi):
    """A Decimal with exactly two fractional digits in [lo, hi)."""
    cents = rng.randrange(int(lo * 100), int(hi * 100))
    return Decimal(cents).scaleb(-2)


def comment(rng, n_lo=2, n_hi=6):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(n_lo, n_hi)))


def gen_tables():
    rng = random.Random(SEED)
    t = {}

    t["region"] = [(i, name, maybe_null(rng, 0.2, comment(rng))) for i, name in enumerate(REGIONS)]

    t["nation"] = [
        (i, name, reg, maybe_null(rng, 0.1, comment(rng)))
        for i, (name, reg) in enumerate(NATIONS)
    ]

    customers = []
    for ck in range(1, 501):
        customers.append((
            ck,
            "Customer#%09d" % ck,
            maybe_null(rng, 0.05, rng.randrange(0, 25)),
            maybe_null(rng, 0.05, money(rng, -999.99, 9999.99)),
            maybe_null(rng, 0.05, rng.choice(SEGMENTS)),
            "%02d-%03d-%04d" % (rng.randrange(10, 35), rng.randrange(100, 1000), rng.randrange(1000, 10000)),
            maybe_null(rng, 0.07, comment(rng)),
        ))
    t["customer"] = customers

    orders = []
    base_date = dt.date(1995, 1, 1)
    for ok in range(1, 3001):
        if rng.random() < 0.05:
            custkey = None
        elif rng.random() < 0.03:
            custkey = rng.randrange(501, 521)  # dangling foreign key
        else:
            # skewed: low customer keys get more orders
            custkey = min(500, int(rng.paretovariate(1.2) * 3)) if rng.random() < 0.3 else rng.randrange(1, 501)
        odate = base_date + dt.timedelta(days=rng.randrange(0, 4 * 365))
        ots = dt.datetime.combine(odate, dt.time()) + dt.timedelta(milliseconds=rng.randrange(0, 86400000))
        orders.append((
            ok,
            custkey,
            rng.choice(["O", "F", "P"]),
            money(rng, 850, 450000),
            maybe_null(rng, 0.03, odate),
            rng.choice(PRIORITIES),
            rng.choice([0, 0, 0, 1]),
            maybe_null(rng, 0.08, comment(rng)),
            maybe_null(rng, 0.03, ots),
        ))
    t["orders"] = orders

    lineitems = []
    ok = 0
    while len(lineitems) < 10000:
        ok += 1
        if ok > 3000:
            ok = 1
        nlines = rng.randint(1, 7)
        for ln in range(1, nlines + 1):
            if len(lineitems) >= 10000:
                break
            if rng.random() < 0.02:
                lok = None
            elif rng.random() < 0.01:
                lok = rng.randrange(3001, 3051)  # dangling
            else:
                lok = ok
            ship = base_date + dt.timedelta(days=rng.randrange(0, 4 * 365 + 120))
            commit = ship + dt.timedelta(days=rng.randrange(-30, 60))
            receipt = ship + dt.timedelta(days=rng.randrange(1, 30))
            qty = rng.randint(1, 50)
            price = Decimal(rng.randrange(90000, 200000)).scaleb(-2) * qty
            lineitems.append((
                lok,
                rng.randrange(1, 201),
                rng.randrange(1, 11),
                ln,
                maybe_null(rng, 0.03, qty),
                price.quantize(Decimal("0.01")),
                Decimal(rng.randrange(0, 11)).scaleb(-2),
                Decimal(rng.randrange(0, 9)).scaleb(-2),
                rng.choice(["A", "N", "R"]),
                rng.choice(["O", "F"]),
                maybe_null(rng, 0.03, ship),
                commit,
                receipt,
                rng.choice(INSTRUCTS),
                maybe_null(rng, 0.05, rng.choice(SHIPMODES)),
                maybe_null(rng, 0.05, comment(rng)),
            ))
    t["lineitem"] = lineitems

    day = dt.datetime(2024, 3, 10)
    events = []
    hot = [7, 3, 42]
    for i in range(1, 2001):
        r = rng.random()
        if r < 0.05:
            k = None
        elif r < 0.25:
            k = hot[0]
        elif r < 0.38:
            k = hot[1]
        elif r < 0.46:
            k = hot[2]
        else:
            k = int(rng.paretovariate(1.0)) % 60 + (rng.randrange(0, 3) * 60)
        v = rng.uniform(0.5, 1000.0) if rng.random() > 0.03 else -rng.uniform(0.5, 50.0)
        v = round(v, 6)
        nm = rng.choice(NAME_POOL)
        if rng.random() < 0.4 and nm:
            nm = nm + str(rng.randrange(0, 20))
        ts = day + dt.timedelta(milliseconds=rng.randrange(0, 86400000))
        events.append((
            i,
            k,
            maybe_null(rng, 0.07, v),
            maybe_null(rng, 0.05, money(rng, -100, 5000)),
            maybe_null(rng, 0.07, nm),
            maybe_null(rng, 0.08, rng.random() < 0.5),
            ts,
        ))
    # a little burst of events so that some session windows are long and dense
    for j in range(60):
        i = 2001 + j
        ts = day + dt.timedelta(hours=13, milliseconds=j * 45000 + rng.randrange(0, 5000))
        events.append((i, hot[0] if j % 3 else 99, round(rng.uniform(1, 100), 6),
                       money(rng, 1, 100), "burst%d" % (j % 5), j % 2 == 0, ts))
    rng.shuffle(events)  # out of order in the files
    t["events"] = events

    clicks = []
    for i in range(1, 801):
        k = None if rng.random() < 0.05 else (rng.choice(hot) if rng.random() < 0.5 else rng.randrange(0, 180))
        ts = day + dt.timedelta(milliseconds=rng.randrange(0, 86400000))
        clicks.append((i, k, maybe_null(rng, 0.05, rng.choice(URLS)), ts))
    rng.shuffle(clicks)
    t["clicks"] = clicks

    dims = []
    for k in list(range(0, 20)) + [7, 7, 3, 42, 42, 42, 99, 150]:
        dims.append((k, maybe_null(rng, 0.08, rng.choice(DIM_LABELS)), rng.randrange(1, 10)))
    dims.append((None, "nullkey", 1))
    dims.append((None, "nullkey2", 2))
    rng.shuffle(dims)
    t["dims"] = dims

    t["empty_events"] = []
    return t


# ---------------------------------------------------------------------------
# Encoders
# ---------------------------------------------------------------------------

def scale_of(sql_type):
    if sql_type.startswith("DECIMAL"):
        return int(sql_type[sql_type.index(",") + 1:sql_type.index(")")])
    return None


def text_value(value, sql_type):
    """The textual form of a non-NULL value (CSV field or JSON string)."""
    if sql_type == "BOOLEAN":
        return "true" if value else "false"
    if sql_type.startswith("DECIMAL"):
        return str(value.quantize(Decimal(1).scaleb(-scale_of(sql_type))))
    if sql_type == "DATE":
        return value.strftime("%Y-%m-%d")
    if sql_type.startswith("TIMESTAMP"):
        return value.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (value.microsecond // 1000)
    if sql_type == "DOUBLE":
        return repr(float(value))
    return str(value)


def csv_field(value, sql_type):
    if value is None:
        return ""
    s = text_value(value, sql_type)
    if sql_type == "VARCHAR":
        if s == "" or any(c in s for c in ',"\n\r') or s != s.strip():
            return '"' + s.replace('"', '""') + '"'
    return s


def json_field(value, sql_type):
    if value is None:
        return "null"
    if sql_type == "BOOLEAN":
        return "true" if value else "false"
    if sql_type in ("INT", "BIGINT") or sql_type.startswith("DECIMAL") or sql_type == "DOUBLE":
        return text_value(value, sql_type)
    return json.dumps(text_value(value, sql_type), ensure_ascii=False)


def duck_type(sql_type):
    if sql_type.startswith("TIMESTAMP"):
        return "TIMESTAMP"
    return sql_type


def split_parts(rows, n):
    size = (len(rows) + n - 1) // n if rows else 0
    return [rows[i * size:(i + 1) * size] for i in range(n)] if rows else [[]]


def write_all(out_dir):
    import duckdb

    tables = gen_tables()
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    for fmt in ("csv", "json", "parquet"):
        os.makedirs(os.path.join(out_dir, fmt))
    con = duckdb.connect()
    con.execute("SET threads = 1")
    con.execute("SET TimeZone = 'UTC'")

    for name, schema in SCHEMAS.items():
        rows = tables[name]
        parts = split_parts(rows, PARTS.get(name, 1))
        for fmt in ("csv", "json", "parquet"):
            os.makedirs(os.path.join(out_dir, fmt, name))
        for pi, part in enumerate(parts):
            csv_path = os.path.join(out_dir, "csv", name, "part-%d.csv" % pi)
            with open(csv_path, "w", encoding="utf-8", newline="") as f:
                f.write(",".join(c for c, _ in schema) + "\n")
                for row in part:
                    f.write(",".join(csv_field(v, t) for v, (_, t) in zip(row, schema)) + "\n")
            json_path = os.path.join(out_dir, "json", name, "part-%d.json" % pi)
            with open(json_path, "w", encoding="utf-8", newline="") as f:
                for row in part:
                    f.write("{" + ",".join(
                        json.dumps(c) + ":" + json_field(v, t) for v, (c, t) in zip(row, schema)
                    ) + "}\n")
            pq_path = os.path.join(out_dir, "parquet", name, "part-%d.parquet" % pi)
            cols = ", ".join("CAST(%s AS %s) AS %s" % (c, "TIMESTAMP_MS" if t.startswith("TIMESTAMP") else t, c)
                             for c, t in schema)
            con.execute(
                "COPY (SELECT %s FROM %s) TO '%s' (FORMAT parquet)"
                % (cols, csv_reader(csv_path, schema), pq_path)
            )

    with open(os.path.join(out_dir, "schema.json"), "w") as f:
        json.dump({"tables": {n: {"columns": [[c, t] for c, t in s],
                                  "rows": len(tables[n])}
                              for n, s in SCHEMAS.items()}}, f, indent=1)

    verify(con, out_dir, tables)


def csv_reader(path, schema):
    cols = "{" + ", ".join("'%s': '%s'" % (c, duck_type(t)) for c, t in schema) + "}"
    return ("read_csv('%s', header=true, columns=%s, nullstr='', allow_quoted_nulls=false, "
            "quote='\"', escape='\"', delim=',', auto_detect=false)" % (path, cols))


def json_reader(path, schema):
    cols = "{" + ", ".join("'%s': '%s'" % (c, duck_type(t)) for c, t in schema) + "}"
    return "read_json('%s', columns=%s, format='newline_delimited')" % (path, cols)


def parquet_reader(path, schema):
    return "(SELECT %s FROM read_parquet('%s'))" % (
        ", ".join("CAST(%s AS %s) AS %s" % (c, duck_type(t), c) for c, t in schema), path)


def table_source(data_dir, fmt, name, schema):
    """A DuckDB FROM-clause expression reading table `name` in format `fmt` with declared types."""
    d = os.path.join(data_dir, fmt, name)
    nrows_hint = None
    if fmt == "csv":
        return csv_reader(os.path.join(d, "*.csv"), schema)
    if fmt == "json":
        # read_json on only-empty files cannot infer anything; columns= fixes the schema
        if all(os.path.getsize(os.path.join(d, f)) == 0 for f in os.listdir(d)):
            return "(SELECT %s WHERE false)" % ", ".join(
                "CAST(NULL AS %s) AS %s" % (duck_type(t), c) for c, t in schema)
        return json_reader(os.path.join(d, "*.json"), schema)
    del nrows_hint
    return parquet_reader(os.path.join(d, "*.parquet"), schema)


def verify(con, out_dir, tables):
    """Read every table back in every format and check it equals the generated rows."""
    for name, schema in SCHEMAS.items():
        expected = sorted((tuple(norm(v) for v in r) for r in tables[name]), key=repr)
        for fmt in ("csv", "json", "parquet"):
            got = con.execute("SELECT * FROM %s" % table_source(out_dir, fmt, name, schema)).fetchall()
            got = sorted((tuple(norm(v) for v in r) for r in got), key=repr)
            if got != expected:
                for a, b in zip(got, expected):
                    if a != b:
                        raise SystemExit("verify %s/%s: %r != %r" % (fmt, name, a, b))
                raise SystemExit("verify %s/%s: %d rows != %d" % (fmt, name, len(got), len(expected)))


def norm(v):
    if isinstance(v, float):
        return round(v, 9)
    if isinstance(v, Decimal):
        return Decimal(v).normalize()
    return v


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: gen_data.py OUT_DIR")
    write_all(sys.argv[1])
    print("wrote", sys.argv[1])
