//! Compile errors: each asserts the class and the exact "line L, column C".

mod common;

use common::{bind, err};
use sluice_compiler::ErrorKind;

fn kind(sql: &str) -> ErrorKind {
    match bind(sql) {
        Ok(_) => panic!("expected an error for {sql}"),
        Err(e) => e.kind,
    }
}

fn assert_err(sql: &str, expected_kind: ErrorKind, at: &str, fragment: &str) {
    let text = err(sql);
    assert_eq!(kind(sql), expected_kind, "{sql}: {text}");
    assert!(text.contains(at), "{sql}: expected '{at}' in: {text}");
    assert!(
        text.contains(fragment),
        "{sql}: expected '{fragment}' in: {text}"
    );
}

#[test]
fn syntax_errors_carry_the_parser_position() {
    assert_err(
        "SELECT a FROM t WHERE",
        ErrorKind::Syntax,
        "line 1, column 22",
        "expression",
    );
    assert_err(
        "SELECT a\nFROM t\nWHERE a >> ) 1",
        ErrorKind::Syntax,
        "line 3",
        "",
    );
    assert_err(
        "SELECT 'unterminated",
        ErrorKind::Syntax,
        "line 1, column 8",
        "",
    );
}

#[test]
fn unknown_table() {
    assert_err(
        "SELECT a FROM nosuch",
        ErrorKind::Plan,
        "line 1, column 15",
        "unknown table 'nosuch'",
    );
    assert_err(
        "INSERT INTO nosink SELECT a FROM t",
        ErrorKind::Plan,
        "line 1, column 13",
        "unknown table 'nosink'",
    );
}

#[test]
fn unknown_column_on_a_later_line() {
    assert_err(
        "SELECT a,\n  zz FROM t",
        ErrorKind::Plan,
        "line 2, column 3",
        "unknown column 'zz'",
    );
    assert_err(
        "SELECT x.a FROM t",
        ErrorKind::Plan,
        "line 1, column 8",
        "unknown table or alias 'x'",
    );
}

#[test]
fn ambiguous_column() {
    assert_err(
        "SELECT a FROM t, u",
        ErrorKind::Plan,
        "line 1, column 8",
        "column reference 'a' is ambiguous",
    );
    assert_err(
        "SELECT id FROM bid JOIN person ON bidder = id WHERE dateTime > TIMESTAMP '2020-01-01 00:00:00'",
        ErrorKind::Plan,
        "line 1, column 53",
        "'dateTime' is ambiguous",
    );
}

#[test]
fn type_mismatches() {
    assert_err(
        "SELECT a FROM t WHERE s + 1 > 2",
        ErrorKind::Plan,
        "line 1, column 23",
        "cannot apply '+' to VARCHAR and INT",
    );
    assert_err(
        "SELECT 'a' + 1",
        ErrorKind::Plan,
        "line 1, column 8",
        "cannot apply '+'",
    );
    assert_err(
        "SELECT SUM(s) FROM t",
        ErrorKind::Plan,
        "line 1, column 12",
        "SUM expects a number, got VARCHAR",
    );
    assert_err(
        "SELECT a FROM t WHERE a",
        ErrorKind::Plan,
        "line 1, column 23",
        "WHERE must be BOOLEAN, not INT",
    );
    assert_err(
        "SELECT CAST(dt AS INT) FROM t",
        ErrorKind::Plan,
        "line 1, column 13",
        "cannot cast DATE to INT",
    );
    assert_err(
        "SELECT a FROM t WHERE a = 1.5 AND dt = flag",
        ErrorKind::Plan,
        "line 1, column 35",
        "cannot compare DATE with BOOLEAN",
    );
    assert_err(
        "SELECT a FROM t WHERE s = 1.5",
        ErrorKind::Plan,
        "line 1, column 23",
        "cannot compare VARCHAR with DECIMAL(2, 1)",
    );
    assert_err(
        "SELECT CASE WHEN a > 1 THEN s ELSE a END FROM t",
        ErrorKind::Plan,
        "line 1, column 36",
        "CASE branches have incompatible types",
    );
    assert_err(
        "INSERT INTO sink2 SELECT b,\n   s FROM t",
        ErrorKind::Plan,
        "line 2, column 4",
        "cannot insert VARCHAR into column 'v' of type BIGINT",
    );
    assert_err(
        "INSERT INTO sink2 SELECT a FROM t",
        ErrorKind::Plan,
        "line 1, column 19",
        "has 2 columns but the query produces 1",
    );
}

#[test]
fn aggregate_misuse() {
    assert_err(
        "SELECT a, COUNT(*) FROM t",
        ErrorKind::Plan,
        "line 1, column 8",
        "column 'a' must appear in the GROUP BY clause",
    );
    assert_err(
        "SELECT a FROM t WHERE COUNT(*) > 1",
        ErrorKind::Plan,
        "line 1, column 23",
        "aggregate function COUNT is not allowed in WHERE",
    );
    assert_err(
        "SELECT s, b FROM t GROUP BY s",
        ErrorKind::Plan,
        "line 1, column 11",
        "column 'b' must appear in the GROUP BY clause",
    );
    assert_err(
        "SELECT SUM(COUNT(*)) FROM t",
        ErrorKind::Plan,
        "line 1, column 12",
        "not allowed in an aggregate argument",
    );
}

#[test]
fn unsupported_features() {
    assert_err(
        "SELECT ROW_NUMBER() OVER (ORDER BY a) FROM t",
        ErrorKind::Unsupported,
        "line 1, column 8",
        "OVER",
    );
    assert_err(
        "SELECT a FROM t WHERE a IN (SELECT a FROM u)",
        ErrorKind::Unsupported,
        "line 1, column 23",
        "subqueries",
    );
    assert_err(
        "SELECT a FROM t\nWHERE EXISTS (SELECT 1)",
        ErrorKind::Unsupported,
        "line 2, column 15",
        "subqueries",
    );
    assert_err(
        "SELECT INTERVAL '1' YEAR",
        ErrorKind::Unsupported,
        "line 1, column 17",
        "year-month intervals",
    );
    assert_err(
        "SELECT * FROM t EXCEPT SELECT * FROM t",
        ErrorKind::Unsupported,
        "line 1, column 1",
        "EXCEPT",
    );
    assert_err(
        "SELECT * FROM CUMULATE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '1' SECOND, INTERVAL '5' SECOND)",
        ErrorKind::Unsupported,
        "line 1, column 15",
        "CUMULATE",
    );
}

#[test]
fn ddl_errors() {
    // PRIMARY KEY: a column it lacks, a column twice, two keys, other constraints.
    assert_err(
        "CREATE TABLE x (a INT, b INT,\n  PRIMARY KEY (a, c) NOT ENFORCED) WITH ('connector' = 'm');\nSELECT * FROM x",
        ErrorKind::Plan,
        "line 2, column 19",
        "unknown column 'c' in PRIMARY KEY",
    );
    assert_err(
        "CREATE TABLE x (a INT, b INT, PRIMARY KEY (a, A) NOT ENFORCED) WITH ('connector' = 'm');\nSELECT * FROM x",
        ErrorKind::Plan,
        "line 1, column 47",
        "column 'a' is in the PRIMARY KEY twice",
    );
    assert_err(
        "CREATE TABLE x (a INT PRIMARY KEY NOT ENFORCED, b INT, PRIMARY KEY (b) NOT ENFORCED) WITH ('connector' = 'm');\nSELECT * FROM x",
        ErrorKind::Plan,
        "line 1, column 1",
        "declares its PRIMARY KEY twice",
    );
    assert_err(
        "CREATE TABLE x (a INT, b INT, UNIQUE (a)) WITH ('connector' = 'm');\nSELECT * FROM x",
        ErrorKind::Unsupported,
        "line 1, column 1",
        "only PRIMARY KEY (…) NOT ENFORCED",
    );
    assert_err(
        "CREATE TABLE x (a INT, PRIMARY KEY (a) NOT ENFORCED) WITH ('connector' = 'm', 'primary-key' = 'a');\nSELECT * FROM x",
        ErrorKind::Plan,
        "line 1, column 79",
        "written by the compiler",
    );
    assert_err(
        "CREATE TABLE x (a INT) WITH ('topic' = 'q');\nSELECT * FROM x",
        ErrorKind::Plan,
        "line 1, column 1",
        "needs a 'connector' option",
    );
    assert_err(
        "CREATE TABLE y (a INT) WITH ('connector' = 'm');\nCREATE TABLE x (a INT) WITH ('connector' = 'broken');\nSELECT * FROM x",
        ErrorKind::Plan,
        "line 2, column 1",
        "connector 'broken' is unknown",
    );
    // A connector's error naming an option points at that option's key.
    assert_err(
        "CREATE TABLE x (a INT) WITH (\n  'connector' = 'm',\n    'refused' = 'x');\nSELECT * FROM x",
        ErrorKind::Plan,
        "line 3, column 5",
        "option 'refused' is not allowed",
    );
    assert_err(
        "CREATE TABLE x (a INT, WATERMARK FOR a AS a) WITH ('connector' = 'm'); SELECT * FROM x",
        ErrorKind::Plan,
        "line 1, column 24",
        "must be TIMESTAMP(3)",
    );
    assert_err(
        "CREATE TABLE bid (a INT) WITH ('connector' = 'm'); SELECT * FROM bid",
        ErrorKind::Plan,
        "line 1, column 1",
        "already exists",
    );
}

#[test]
fn metadata_column_errors() {
    assert_err(
        "CREATE TABLE f (\n  a INT,\n  ts TIMESTAMP(3) METADATA FROM 'timestamp'\n) WITH ('connector' = 'filesystem');\nSELECT * FROM f",
        ErrorKind::Plan,
        "line 3, column 19",
        "does not support METADATA columns",
    );
    assert_err(
        "CREATE TABLE f (a INT, ts TIMESTAMP(3) METADATA FROM timestamp) WITH ('connector' = 'kafka'); SELECT * FROM f",
        ErrorKind::Syntax,
        "line 1, column 54",
        "quoted metadata key",
    );
    assert_err(
        "CREATE TABLE f (a INT, ts TIMESTAMP(3) METADATA) WITH ('connector' = 'kafka', 'metadata.ts' = 'x'); SELECT * FROM f",
        ErrorKind::Plan,
        "line 1, column 40",
        "also has a 'metadata.ts' option",
    );
}

#[test]
fn script_structure_errors() {
    assert_err(
        "SELECT 1;\n  SELECT 2",
        ErrorKind::Plan,
        "line 2, column 3",
        "must be the last statement",
    );
    let text = err("SET 'table.exec.mini-batch.enabled' = 'true'");
    assert!(text.contains("no INSERT INTO, SELECT or EXPLAIN"), "{text}");
    assert_err(
        "DROP TABLE t",
        ErrorKind::Unsupported,
        "line 1, column 1",
        "not supported",
    );
}

#[test]
fn window_errors() {
    assert_err(
        "SELECT TUMBLE_START(ts, INTERVAL '1' SECOND) FROM t GROUP BY a",
        ErrorKind::Plan,
        "line 1, column 8",
        "requires a GROUP BY with the matching group window",
    );
    assert_err(
        "SELECT COUNT(*) FROM t GROUP BY TUMBLE(a, INTERVAL '1' SECOND)",
        ErrorKind::Plan,
        "line 1, column 40",
        "must be a TIMESTAMP(3) column, not INT",
    );
    assert_err(
        "SELECT * FROM TUMBLE(TABLE t, DESCRIPTOR(s), INTERVAL '1' SECOND)",
        ErrorKind::Plan,
        "line 1, column 42",
        "must be TIMESTAMP(3), not VARCHAR",
    );
    assert_err(
        "SELECT * FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), 5))",
        ErrorKind::Plan,
        "line 1, column 61",
        "must be an INTERVAL literal",
    );
}

#[test]
fn order_and_limit_errors() {
    assert_err(
        "SELECT a FROM t ORDER BY 5",
        ErrorKind::Plan,
        "line 1, column 26",
        "ordinal 5 is out of range",
    );
    assert_err(
        "SELECT a FROM t LIMIT -1",
        ErrorKind::Plan,
        "line 1, column 24",
        "LIMIT must be a non-negative integer literal",
    );
    assert_err(
        "SELECT DISTINCT a FROM t ORDER BY b",
        ErrorKind::Plan,
        "line 1, column 35",
        "SELECT DISTINCT",
    );
}

#[test]
fn compile_reports_binder_errors_with_positions() {
    let cat = common::catalog();
    let c: &dyn sluice_catalogs::Catalog = &cat;
    let e = sluice_compiler::compile("SELECT a\nFROM t\nWHERE zz > 1", c, &common::AnyConnector)
        .expect_err("unknown column");
    assert_eq!(e.kind, ErrorKind::Plan);
    assert_eq!(
        e.to_string(),
        "error at line 3, column 7: unknown column 'zz'"
    );
}

#[test]
fn partitioned_by_errors_carry_their_position() {
    let ddl = |clause: &str| {
        format!(
            "CREATE TABLE s (a BIGINT, dt DATE)\n{clause} WITH ('connector' = 'filesystem', 'path' = '/tmp/x', 'format' = 'csv')"
        )
    };
    assert_err(
        &ddl("PARTITIONED BY ()"),
        ErrorKind::Syntax,
        "line 2, column 1",
        "at least one column",
    );
    assert_err(
        &ddl("PARTITIONED BY (dt,)"),
        ErrorKind::Syntax,
        "line 2",
        "column names",
    );
    assert_err(
        &ddl("PARTITIONED (dt)"),
        ErrorKind::Syntax,
        "line 2, column 1",
        "PARTITIONED BY",
    );
    // Accepted: becomes the 'partition.columns' option.
    assert!(bind(&format!("{};\nSELECT a FROM s", ddl("PARTITIONED BY (dt)"))).is_ok());
}

#[test]
fn insert_overwrite_binds_for_filesystem_and_is_refused_elsewhere() {
    let ddl = "CREATE TABLE fs_out (a INT) WITH ('connector' = 'filesystem', 'path' = '/tmp/x', 'format' = 'csv');\n\
               CREATE TABLE k_out (a INT) WITH ('connector' = 'kafka', 'topic' = 'x');\n";
    // Flink's syntax (and Hive's, with TABLE): the sink's copy of the table carries the flag.
    for insert in [
        "INSERT OVERWRITE fs_out SELECT a FROM t",
        "INSERT OVERWRITE TABLE fs_out SELECT a FROM t",
    ] {
        let script = bind(&format!("{ddl}{insert}")).unwrap_or_else(|e| panic!("{insert}: {e}"));
        let out = script.outputs.last().unwrap();
        let sluice_compiler::SinkTarget::Table(t) = &out.target else {
            panic!("{insert}: not a table target");
        };
        assert_eq!(t.option("sink.overwrite"), Some("true"), "{insert}");
        assert_eq!(out.label, "INSERT OVERWRITE fs_out");
    }
    // A plain INSERT leaves the table's options as declared.
    let script = bind(&format!("{ddl}INSERT INTO fs_out SELECT a FROM t")).unwrap();
    let sluice_compiler::SinkTarget::Table(t) = &script.outputs[0].target else {
        panic!("not a table target");
    };
    assert_eq!(t.option("sink.overwrite"), None);
    // A sink that can only append: refused at the table's name.
    assert_err(
        &format!("{ddl}INSERT OVERWRITE k_out SELECT a FROM t"),
        ErrorKind::Plan,
        "line 3, column 18",
        "connector 'kafka' can only be appended to",
    );
}

#[test]
fn date_format_and_regexp_extract_check_their_literal_patterns() {
    assert_err(
        "SELECT DATE_FORMAT(ts, 'yyyy-QQ') FROM t",
        ErrorKind::Plan,
        "line 1, column 24",
        "unsupported pattern letter 'Q'",
    );
    assert_err(
        "SELECT DATE_FORMAT(ts, 'yyyy ''at') FROM t",
        ErrorKind::Plan,
        "line 1, column 24",
        "unclosed quote",
    );
    assert_err(
        "SELECT DATE_FORMAT(flag, 'yyyy') FROM t",
        ErrorKind::Plan,
        "line 1, column 20",
        "DATE_FORMAT expects a TIMESTAMP, DATE or VARCHAR, got BOOLEAN",
    );
    assert_err(
        "SELECT REGEXP_EXTRACT(s, '(a') FROM t",
        ErrorKind::Plan,
        "line 1, column 26",
        "invalid regular expression",
    );
    assert_err(
        "SELECT REGEXP_EXTRACT(s, '(a)(b)', 3) FROM t",
        ErrorKind::Plan,
        "line 1, column 36",
        "group 3 does not exist (the expression has 2 group(s))",
    );
    assert!(bind(
        "SELECT DATE_FORMAT(ts, 'yyyy-MM-dd''T''HH:mm'), REGEXP_EXTRACT(s, 'a(b)?', 1) FROM t"
    )
    .is_ok());
}
