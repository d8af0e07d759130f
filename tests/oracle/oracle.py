#!/usr/bin/env python3
"""Sluice correctness oracle: runs every query of queries/*.sql on Sluice and on
DuckDB over the same generated files and compares the results.

    python3 oracle.py --sluice target/debug/sluice --workers 1 4
    python3 oracle.py --duckdb-only            # validate the suite itself

See README.md in this directory for the query file format.
"""

import argparse
import concurrent.futures
import datetime as dt
import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from decimal import Decimal, InvalidOperation

HERE = os.path.dirname(os.path.abspath(__file__))
FORMATS = ("parquet", "csv", "json")
REL_TOL = 1e-9
ABS_TOL = 1e-9


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------

def gen_hash():
    with open(os.path.join(HERE, "gen_data.py"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def ensure_data(data_dir):
    """Generate the data into data_dir unless it is already there for this gen_data.py."""
    data_dir = os.path.abspath(data_dir)
    h = gen_hash()
    stamp = os.path.join(data_dir, "GEN_HASH")
    if os.path.exists(stamp) and open(stamp).read().strip() == h and \
            os.path.exists(os.path.join(data_dir, "schema.json")):
        return data_dir
    sys.path.insert(0, HERE)
    import gen_data  # noqa: E402  (needs duckdb)
    tmp = data_dir + ".tmp-%d" % os.getpid()
    gen_data.write_all(tmp)
    with open(os.path.join(tmp, "GEN_HASH"), "w") as f:
        f.write(h + "\n")
    if os.path.exists(data_dir):
        shutil.rmtree(data_dir)
    os.replace(tmp, data_dir)
    return data_dir


def load_schema(data_dir):
    with open(os.path.join(data_dir, "schema.json")) as f:
        return {n: [tuple(c) for c in t["columns"]] for n, t in json.load(f)["tables"].items()}


# ---------------------------------------------------------------------------
# Query files
# ---------------------------------------------------------------------------

class Query:
    def __init__(self, name, file, line):
        self.name = name
        self.file = file
        self.line = line
        self.sql_lines = []
        self.duck_lines = []
        self.format = None
        self.ordered = False
        self.expect_empty = False

    @property
    def sql(self):
        return clean_sql(self.sql_lines)

    @property
    def duck_sql(self):
        return clean_sql(self.duck_lines) if any(l.strip() for l in self.duck_lines) else self.sql


def clean_sql(lines):
    text = "\n".join(lines).strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


DIRECTIVE = re.compile(r"^--\s*(name|format|ordered|empty|duckdb)\s*(?::\s*(.*?))?\s*$", re.I)


def parse_query_file(path):
    queries = []
    cur = None
    in_duck = False
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            m = DIRECTIVE.match(line.strip())
            if m:
                key, val = m.group(1).lower(), (m.group(2) or "").strip()
                if key == "name":
                    if not val:
                        raise SystemExit("%s:%d: empty query name" % (path, lineno))
                    cur = Query(val, path, lineno)
                    queries.append(cur)
                    in_duck = False
                    continue
                if cur is None:
                    raise SystemExit("%s:%d: directive before the first '-- name:'" % (path, lineno))
                if key == "format":
                    if val not in FORMATS:
                        raise SystemExit("%s:%d: unknown format %r" % (path, lineno, val))
                    cur.format = val
                elif key == "ordered":
                    cur.ordered = True
                elif key == "empty":
                    cur.expect_empty = True
                elif key == "duckdb":
                    in_duck = True
                continue
            if cur is None:
                continue  # file header comments
            (cur.duck_lines if in_duck else cur.sql_lines).append(line)
    for q in queries:
        if not q.sql.strip():
            raise SystemExit("%s:%d: query %s has no SQL" % (q.file, q.line, q.name))
        if q.format is None:
            q.format = FORMATS[zlib.crc32(q.name.encode()) % 3]
        if has_top_level_order_by(q.sql):
            q.ordered = True
    return queries


def load_queries(qdir):
    queries = []
    for fn in sorted(os.listdir(qdir)):
        if fn.endswith(".sql"):
            queries.extend(parse_query_file(os.path.join(qdir, fn)))
    seen = {}
    for q in queries:
        if q.name in seen:
            raise SystemExit("duplicate query name %s (%s and %s)" % (q.name, seen[q.name], q.file))
        seen[q.name] = q.file
    return queries


def strip_comments_and_strings(sql):
    out = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        elif c in "'\"`":
            j = i + 1
            while j < n:
                if sql[j] == c:
                    if j + 1 < n and sql[j + 1] == c:
                        j += 2
                        continue
                    break
                j += 1
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def has_top_level_order_by(sql):
    s = strip_comments_and_strings(sql)
    depth = 0
    tokens = re.finditer(r"\(|\)|[A-Za-z_][A-Za-z_0-9]*", s)
    prev = None
    for m in tokens:
        t = m.group(0)
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
        elif depth == 0:
            u = t.upper()
            if prev == "ORDER" and u == "BY":
                return True
            prev = u
            continue
        prev = None
    return False


def tables_mentioned(sql, schema):
    s = strip_comments_and_strings(sql).lower()
    words = set(re.findall(r"[a-z_][a-z_0-9]*", s))
    return [t for t in schema if t in words]


# ---------------------------------------------------------------------------
# Scripts and DDL
# ---------------------------------------------------------------------------

def ddl_line(table, columns, data_dir, fmt):
    cols = ", ".join("%s %s" % (c, t) for c, t in columns)
    path = os.path.join(data_dir, fmt, table)
    header = ", 'csv.header' = 'true'" if fmt == "csv" else ""  # gen_data.py writes one
    return ("CREATE TABLE %s (%s) WITH ('connector' = 'filesystem', 'path' = '%s', 'format' = '%s'%s);"
            % (table, cols, path, fmt, header))


def preamble(sql, schema, data_dir, fmt):
    return [ddl_line(t, schema[t], data_dir, fmt) for t in tables_mentioned(sql, schema)]


# ---------------------------------------------------------------------------
# DuckDB side
# ---------------------------------------------------------------------------

class Duck:
    def __init__(self, data_dir, schema):
        import duckdb
        sys.path.insert(0, HERE)
        import gen_data
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        # helpers for the DuckDB variants of window queries (epoch-aligned, like Flink)
        self.con.execute("CREATE MACRO win_floor(ts, ms) AS "
                         "make_timestamp((epoch_ms(ts) // ms) * ms * 1000)")
        for fmt in FORMATS:
            self.con.execute("CREATE SCHEMA %s_tables" % fmt)
            for t, cols in schema.items():
                src = gen_data.table_source(data_dir, fmt, t, cols)
                self.con.execute("CREATE VIEW %s_tables.%s AS SELECT * FROM %s" % (fmt, t, src))

    def run(self, sql, fmt, threads=None):
        self.con.execute("SET search_path = '%s_tables'" % fmt)
        if threads:
            self.con.execute("SET threads = %d" % threads)
        else:
            self.con.execute("RESET threads")
        cur = self.con.execute(sql)
        names = [d[0] for d in cur.description]
        types = [str(d[1]).upper() for d in cur.description]
        return names, types, cur.fetchall()


# ---------------------------------------------------------------------------
# Normalization and comparison
# ---------------------------------------------------------------------------

TS_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d+))?$")


class Num:
    """A number compared with tolerance."""
    __slots__ = ("f", "text")

    def __init__(self, f, text):
        self.f = f
        self.text = text

    def __repr__(self):
        return self.text


def norm_ts_text(s):
    m = TS_RE.match(s.strip())
    if not m:
        return None
    frac = (m.group(3) or "")
    frac = (frac + "000")[:3]
    return "%s %s.%s" % (m.group(1), m.group(2), frac)


def norm_duck(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float, Decimal)):
        return Num(float(v), str(v))
    if isinstance(v, dt.datetime):
        return "%s.%03d" % (v.strftime("%Y-%m-%d %H:%M:%S"), v.microsecond // 1000)
    if isinstance(v, dt.date):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, str):
        return v
    return repr(v)


def norm_sluice(v, duck_type):
    """Normalize one JSON value from Sluice, guided by DuckDB's column type."""
    if v is None:
        return None
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, Decimal)):
        return Num(float(v), str(v))
    if isinstance(v, float):
        return Num(v, repr(v))
    if isinstance(v, str):
        if duck_type.startswith("TIMESTAMP"):
            t = norm_ts_text(v)
            return t if t is not None else v
        return v
    return json.dumps(v)


def values_equal(a, b):
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, Num) or isinstance(b, Num):
        if not (isinstance(a, Num) and isinstance(b, Num)):
            return False
        x, y = a.f, b.f
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        if math.isinf(x) or math.isinf(y):
            return x == y
        return abs(x - y) <= max(ABS_TOL, REL_TOL * max(abs(x), abs(y)))
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def rows_equal(r1, r2):
    return len(r1) == len(r2) and all(values_equal(a, b) for a, b in zip(r1, r2))


def sort_key(row):
    key = []
    for v in row:
        if v is None:
            key.append((0, 0, ""))
        elif isinstance(v, bool):
            key.append((1, int(v), ""))
        elif isinstance(v, Num):
            f = v.f
            key.append((2, float("%.6g" % f) if math.isfinite(f) else f, ""))
        else:
            key.append((3, 0, str(v)))
    return key


def coarse_key(row):
    return tuple(None if isinstance(v, Num) else (type(v).__name__, v) for v in row)


def compare_rows(expected, got, ordered):
    """Returns None when equal, else a list of human-readable diff lines."""
    if ordered:
        if len(expected) == len(got) and all(rows_equal(a, b) for a, b in zip(expected, got)):
            return None
        diff = ["ordered comparison: expected %d rows, got %d" % (len(expected), len(got))]
        shown = 0
        for i in range(max(len(expected), len(got))):
            a = expected[i] if i < len(expected) else "<none>"
            b = got[i] if i < len(got) else "<none>"
            if a == "<none>" or b == "<none>" or not rows_equal(a, b):
                diff.append("  row %d: expected %s" % (i, fmt_row(a)))
                diff.append("  row %d:      got %s" % (i, fmt_row(b)))
                shown += 1
                if shown >= 5:
                    break
        return diff
    e = sorted(expected, key=sort_key)
    g = sorted(got, key=sort_key)
    if len(e) == len(g) and all(rows_equal(a, b) for a, b in zip(e, g)):
        return None
    # slow path: tolerant multiset matching within buckets of equal non-numeric parts
    buckets = {}
    for i, r in enumerate(g):
        buckets.setdefault(coarse_key(r), []).append(i)
    used = [False] * len(g)
    missing = []
    for r in e:
        found = False
        for i in buckets.get(coarse_key(r), []):
            if not used[i] and rows_equal(r, g[i]):
                used[i] = True
                found = True
                break
        if not found:
            missing.append(r)
    extra = [g[i] for i in range(len(g)) if not used[i]]
    if not missing and not extra:
        return None
    diff = ["multiset comparison: expected %d rows, got %d; %d expected rows missing, %d unexpected rows"
            % (len(e), len(g), len(missing), len(extra))]
    for r in missing[:5]:
        diff.append("  - missing   %s" % fmt_row(r))
    for r in extra[:5]:
        diff.append("  + unexpected %s" % fmt_row(r))
    return diff


def fmt_row(r):
    if isinstance(r, str):
        return r
    return "(" + ", ".join("NULL" if v is None else (repr(v) if not isinstance(v, Num) else v.text)
                           for v in r) + ")"


# ---------------------------------------------------------------------------
# Sluice side
# ---------------------------------------------------------------------------

def worker_args(workers):
    """`4` is 4 worker threads in one process; `2x2` is 2 processes of 2 threads each."""
    procs, _, threads = str(workers).rpartition("x")
    args = ["--workers", threads]
    if procs:
        args += ["--processes", procs]
    return args


def run_sluice(binary, script, workers, timeout):
    # a .py "binary" (the harness self-test's fake sluice) runs under this interpreter
    prefix = [sys.executable] if binary.endswith(".py") else []
    cmd = prefix + [binary, "run", script] + worker_args(workers) + ["--format", "json"]
    t0 = time.time()
    try:
        # own session: on a timeout the whole process group (workers included) is killed
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    except OSError as e:
        return {"rc": None, "stdout": b"", "stderr": str(e).encode(), "secs": time.time() - t0,
                "timeout": False, "cmd": cmd}
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            p.kill()
        out, err = p.communicate()
        return {"rc": None, "stdout": out or b"", "stderr": err or b"", "secs": time.time() - t0,
                "timeout": True, "cmd": cmd}
    return {"rc": p.returncode, "stdout": out, "stderr": err, "secs": time.time() - t0,
            "timeout": False, "cmd": cmd}


def parse_sluice_output(stdout, ncols, types):
    rows = []
    for i, line in enumerate(stdout.decode("utf-8", "replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line, object_pairs_hook=list, parse_float=Decimal)
        except ValueError as e:
            raise ValueError("stdout line %d is not JSON (%s): %s" % (i, e, line[:200]))
        if not isinstance(obj, list):
            raise ValueError("stdout line %d is not a JSON object: %s" % (i, line[:200]))
        if len(obj) != ncols:
            raise ValueError("stdout line %d has %d columns, DuckDB has %d: %s"
                             % (i, len(obj), ncols, line[:200]))
        rows.append(tuple(norm_sluice(v, t) for (_, v), t in zip(obj, types)))
    return rows


def tail(b, n=1500):
    s = b.decode("utf-8", "replace") if isinstance(b, bytes) else str(b)
    return s if len(s) <= n else "..." + s[-n:]


# ---------------------------------------------------------------------------
# Error cases
# ---------------------------------------------------------------------------

class ErrorCase:
    def __init__(self, path):
        self.path = path
        self.name = "errors/" + os.path.basename(path)[:-4]
        self.expect = []
        self.raw = False
        self.format = "parquet"
        with open(path, encoding="utf-8") as f:
            self.text = f.read()
        for line in self.text.splitlines():
            m = re.match(r"^--\s*expect:\s*(.*)$", line.strip(), re.I)
            if m:
                for alt in m.group(1).split("|"):
                    mm = re.match(r"^\s*(\d+)\s*:\s*(\d+)\s*$", alt)
                    if not mm:
                        raise SystemExit("%s: bad '-- expect:' %r (want L:C[ | L:C])" % (path, alt))
                    self.expect.append((int(mm.group(1)), int(mm.group(2))))
            elif re.match(r"^--\s*raw\s*$", line.strip(), re.I):
                self.raw = True
            elif re.match(r"^--\s*format:", line.strip(), re.I):
                self.format = line.split(":", 1)[1].strip()
        if not self.expect:
            raise SystemExit("%s: missing '-- expect: LINE:COLUMN'" % path)

    def script(self, schema, data_dir):
        if self.raw:
            return self.text.replace("@DATA@", data_dir), 0
        pre = preamble(self.text, schema, data_dir, self.format)
        return "".join(line + "\n" for line in pre) + self.text, len(pre)


POS_RES = [re.compile(r"line\s+(\d+)\s*,\s*column\s+(\d+)", re.I), re.compile(r"(?<![\d.])(\d+):(\d+)(?![\d.])")]


def check_error_case(case, res, shift):
    want = [(l + shift, c) for l, c in case.expect]
    problems = []
    if res["timeout"]:
        problems.append("timed out")
    elif res["rc"] != 2:
        problems.append("exit code %r, want 2" % res["rc"])
    err = res["stderr"].decode("utf-8", "replace")
    found = []
    for r in POS_RES:
        found += [(int(a), int(b)) for a, b in r.findall(err)]
    if not any(p in found for p in want):
        problems.append("stderr has no position %s (positions found: %s)"
                        % (" or ".join("line %d, column %d" % p for p in want), found or "none"))
    return problems


# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sluice", help="path to the sluice binary")
    ap.add_argument("--workers", nargs="+", default=["1"],
                    help="worker counts to run at: N threads, or PxN (P processes of N threads)")
    ap.add_argument("--filter", action="append", default=[],
                    help="only queries whose name (or file name) contains this substring (repeatable)")
    ap.add_argument("--data", default=os.path.join(HERE, ".data"), help="generated data directory (cached)")
    ap.add_argument("--work", default=os.path.join(HERE, ".work"), help="where the generated scripts go")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per sluice run")
    ap.add_argument("--duckdb-only", action="store_true",
                    help="validate the suite: every query runs on DuckDB over every format, formats agree")
    ap.add_argument("--no-errors", action="store_true", help="skip the error cases")
    ap.add_argument("--list", action="store_true", help="list the queries and exit")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()

    queries = load_queries(os.path.join(HERE, "queries"))
    edir = os.path.join(HERE, "errors")
    errors = [ErrorCase(os.path.join(edir, f)) for f in sorted(os.listdir(edir)) if f.endswith(".sql")] \
        if os.path.isdir(edir) and not args.no_errors else []
    if args.filter:
        def keep(name, path):
            return any(f in name or f in os.path.basename(path) for f in args.filter)
        queries = [q for q in queries if keep(q.name, q.file)]
        errors = [e for e in errors if keep(e.name, e.path)]
    if args.list:
        for q in queries:
            print("%-40s %-8s %-8s %s" % (q.name, q.format, "ordered" if q.ordered else "", os.path.basename(q.file)))
        for e in errors:
            print(e.name)
        return 0

    total = len(queries) + (0 if args.duckdb_only else len(errors))
    if not args.duckdb_only:
        if not args.sluice:
            print("oracle: ERROR: --sluice PATH is required (or use --duckdb-only)", file=sys.stderr)
            print("oracle: 0 passed, %d failed" % total)
            return 1
        if not (os.path.isfile(args.sluice) and (os.access(args.sluice, os.X_OK) or args.sluice.endswith(".py"))):
            print("oracle: ERROR: sluice binary not found or not executable: %s "
                  "(build it with `cargo build --bin sluice`)" % args.sluice, file=sys.stderr)
            print("oracle: 0 passed, %d failed" % total)
            return 1
        args.sluice = os.path.abspath(args.sluice)

    try:
        import duckdb  # noqa: F401
    except ImportError:
        print("oracle: ERROR: the python `duckdb` package is missing (pip install duckdb)", file=sys.stderr)
        print("oracle: 0 passed, %d failed" % total)
        return 1

    data_dir = ensure_data(args.data)
    schema = load_schema(data_dir)
    duck = Duck(data_dir, schema)

    if args.duckdb_only:
        return duckdb_only(duck, queries, args)

    # 1. expected results from DuckDB
    failures = []
    expected = {}
    for q in queries:
        try:
            names, types, rows = duck.run(q.duck_sql, q.format)
            expected[q.name] = (names, types, [tuple(norm_duck(v) for v in r) for r in rows])
        except Exception as e:  # the suite itself is broken: count as failure, loudly
            failures.append((q.name, ["DuckDB failed on this query (suite bug): %s" % e]))

    # 2. scripts
    sdir = os.path.join(os.path.abspath(args.work), "scripts")
    os.makedirs(sdir, exist_ok=True)
    jobs = []
    for q in queries:
        if q.name not in expected:
            continue
        pre = preamble(q.sql, schema, data_dir, q.format)
        path = os.path.join(sdir, q.name + ".sql")
        write_file(path, "\n".join(pre + [q.sql + ";"]) + "\n")
        for w in args.workers:
            jobs.append(("q", q, path, w))
    error_shift = {}
    for e in errors:
        text, shift = e.script(schema, data_dir)
        path = os.path.join(sdir, e.name.replace("/", "__") + ".sql")
        write_file(path, text)
        error_shift[e.name] = shift
        jobs.append(("e", e, path, args.workers[0]))

    # 3. run sluice
    results = {}
    lock = threading.Lock()
    done = [0]

    def work(job):
        kind, item, path, w = job
        res = run_sluice(args.sluice, path, w, args.timeout)
        with lock:
            results[(item.name, w)] = res
            done[0] += 1
            if args.verbose:
                print("  [%d/%d] %s workers=%s rc=%s %.2fs" % (done[0], len(jobs), item.name, w, res["rc"],
                                                             res["secs"]), flush=True)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        list(ex.map(work, jobs))

    # 4. compare
    passed = 0
    slow = []
    for q in queries:
        if q.name not in expected:
            continue
        names, types, exp_rows = expected[q.name]
        problems = []
        outputs = {}
        for w in args.workers:
            res = results[(q.name, w)]
            slow.append((res["secs"], q.name, w))
            where = "workers=%s" % w
            if res["timeout"]:
                problems.append("%s: timed out after %.0fs" % (where, args.timeout))
                continue
            if res["rc"] != 0:
                problems.append("%s: exit code %r; stderr: %s" % (where, res["rc"], tail(res["stderr"])))
                continue
            try:
                got = parse_sluice_output(res["stdout"], len(names), types)
            except ValueError as e:
                problems.append("%s: %s" % (where, e))
                continue
            outputs[w] = got
            diff = compare_rows(exp_rows, got, q.ordered)
            if diff:
                problems.append("%s: result differs from DuckDB" % where)
                problems.extend("    " + d for d in diff)
        ws = [w for w in args.workers if w in outputs]
        for w in ws[1:]:
            diff = compare_rows(outputs[ws[0]], outputs[w], q.ordered)
            if diff:
                problems.append("workers=%s and workers=%s disagree" % (ws[0], w))
                problems.extend("    " + d for d in diff)
        if problems:
            head = ["%s:%d  format=%s%s  script=%s" % (os.path.relpath(q.file, HERE), q.line, q.format,
                                                        " ordered" if q.ordered else "",
                                                        os.path.join(sdir, q.name + ".sql")),
                    "    columns: %s" % ", ".join("%s %s" % nt for nt in zip(names, types))]
            failures.append((q.name, head + problems))
        else:
            passed += 1

    for e in errors:
        res = results[(e.name, args.workers[0])]
        problems = check_error_case(e, res, error_shift[e.name])
        if problems:
            failures.append((e.name, ["%s (expected positions are file lines + %d preamble lines)"
                                      % (os.path.relpath(e.path, HERE), error_shift[e.name])] + problems
                             + ["    stderr: %s" % tail(res["stderr"], 500).strip()]))
        else:
            passed += 1

    for name, lines in failures:
        print("FAIL %s" % name)
        for l in lines:
            print("    " + l)
    if args.verbose:
        slow.sort(reverse=True)
        print("slowest runs:")
        for secs, name, w in slow[:10]:
            print("  %6.2fs  %s workers=%s" % (secs, name, w))
    print("oracle: %d passed, %d failed" % (passed, len(failures)))
    return 1 if failures else 0


def write_file(path, text):
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=d, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def duckdb_only(duck, queries, args):
    """Check every query runs on DuckDB in every format, gives the same result in every format and
    with 1 or 4 threads (catches ORDER BY ties and formats that read differently), and returns rows
    unless marked '-- empty'."""
    failures = []
    empties = []
    passed = 0
    for q in queries:
        problems = []
        base = None
        for fmt in FORMATS:
            for threads in (1, 4):
                try:
                    names, types, rows = duck.run(q.duck_sql, fmt, threads)
                except Exception as e:
                    problems.append("%s threads=%d: %s" % (fmt, threads, str(e).splitlines()[0]))
                    continue
                rows = [tuple(norm_duck(v) for v in r) for r in rows]
                if base is None:
                    base = (fmt, threads, rows)
                    if not rows and not q.expect_empty:
                        problems.append("returns no rows (mark it '-- empty' if intended)")
                    if rows and q.expect_empty:
                        problems.append("marked '-- empty' but returns %d rows" % len(rows))
                    if rows and all(all(v is None for v in r) for r in rows) and not q.expect_empty:
                        problems.append("returns only NULLs")
                else:
                    diff = compare_rows(base[2], rows, q.ordered)
                    if diff:
                        problems.append("%s threads=%d differs from %s threads=%d" % (fmt, threads, base[0], base[1]))
                        problems.extend("    " + d for d in diff)
        if q.sql != q.duck_sql and has_top_level_order_by(q.sql) != has_top_level_order_by(q.duck_sql):
            problems.append("the Sluice SQL and the DuckDB variant disagree on top-level ORDER BY")
        if problems:
            failures.append((q.name, ["%s:%d" % (os.path.relpath(q.file, HERE), q.line)] + problems))
        else:
            passed += 1
            if q.expect_empty:
                empties.append(q.name)
            if args.verbose:
                print("  ok %-40s %s rows=%d" % (q.name, q.format, len(base[2]) if base else -1))
    for name, lines in failures:
        print("FAIL %s" % name)
        for l in lines:
            print("    " + l)
    print("intentionally empty: %s" % (", ".join(empties) or "none"))
    print("oracle: %d passed, %d failed" % (passed, len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
