//! Parsing of Flink-flavoured scripts: statement splitting, comments, quoting, DDL
//! extensions (WATERMARK, WITH options, NOT ENFORCED), EXPLAIN and SET.

mod common;

use common::{bind, err, out_types};
use sluice_catalogs::SqlType::*;
use sluice_compiler::ExplainStage;

#[test]
fn statements_comments_and_quoting() {
    let s = bind(
        "-- a comment; with a semicolon\n\
         /* block ; comment */\n\
         ;;\n\
         SELECT `a`, \"s\", 'x;y' AS lit FROM t -- trailing\n\
         ;",
    )
    .unwrap();
    assert_eq!(s.outputs.len(), 1);
    assert_eq!(s.outputs[0].schema.types(), vec![Int, Varchar, Varchar]);
}

#[test]
fn create_table_forms() {
    let s = bind(
        "CREATE TEMPORARY TABLE IF NOT EXISTS e1 (\n\
           id BIGINT PRIMARY KEY NOT ENFORCED,\n\
           ts TIMESTAMP(3),\n\
           WATERMARK FOR ts AS ts - INTERVAL '1.5' SECOND\n\
         ) WITH (connector = 'datagen', 'rows-per-second' = '10', fields.id.kind = 'sequence');\n\
         CREATE TABLE IF NOT EXISTS e1 (x INT) WITH ('connector' = 'other');\n\
         CREATE TABLE e2 (WATERMARK FOR ts AS ts - INTERVAL '2' MINUTE, ts TIMESTAMP) WITH ('connector' = 'k');\n\
         SELECT * FROM e1",
    )
    .unwrap();
    assert_eq!(s.tables.len(), 2, "IF NOT EXISTS skips an existing table");
    let e1 = &s.tables[0];
    assert_eq!(e1.schema.types(), vec![BigInt, Timestamp]);
    assert!(!e1.schema.fields[0].nullable);
    assert_eq!(
        e1.watermark.as_ref().map(|w| (w.column, w.delay_ms)),
        Some((1, 1500))
    );
    assert_eq!(e1.connector, "datagen");
    assert_eq!(e1.option("fields.id.kind"), Some("sequence"));
    assert_eq!(e1.option("rows-per-second"), Some("10"));
    let e2 = &s.tables[1];
    assert_eq!(
        e2.watermark.as_ref().map(|w| (w.column, w.delay_ms)),
        Some((0, 120_000))
    );
}

#[test]
fn ddl_syntax_errors_point_into_the_original_text() {
    // A missing comma between two columns.
    let text =
        err("CREATE TABLE x (k INT label VARCHAR) WITH ('connector' = 'c');\nSELECT k FROM x");
    assert!(
        text.starts_with("syntax error at line 1, column 23"),
        "{text}"
    );
    // An unknown type.
    let text =
        err("CREATE TABLE x (a INT, b NOSUCHTYPE) WITH ('connector' = 'c');\nSELECT a FROM x");
    assert!(
        text.starts_with("error at line 1, column 24: unknown type NOSUCHTYPE"),
        "{text}"
    );
    // A broken WITH list.
    let text = err("CREATE TABLE x (a INT) WITH ('connector' 'c'); SELECT a FROM x");
    assert!(
        text.starts_with("syntax error at line 1, column 42"),
        "{text}"
    );
    // A malformed watermark.
    let text = err("CREATE TABLE x (ts TIMESTAMP(3),\n  WATERMARK ts) WITH ('connector' = 'c'); SELECT * FROM x");
    assert!(
        text.starts_with("syntax error at line 2, column 3"),
        "{text}"
    );
    // An unknown watermark column.
    let text = err("CREATE TABLE x (ts TIMESTAMP(3), WATERMARK FOR nope AS nope) WITH ('connector' = 'c'); SELECT * FROM x");
    assert!(
        text.contains("line 1, column 34") && text.contains("unknown watermark column"),
        "{text}"
    );
}

#[test]
fn explain_and_set() {
    let s = bind(
        "SET 'a' = 'b';\nSET x = 1;\nRESET 'a';\nEXPLAIN PHYSICAL SELECT a FROM t;\nSET 'c' = 'd'",
    )
    .unwrap();
    assert_eq!(s.explain.map(|e| e.0), Some(ExplainStage::Physical));
    let text = err("EXPLAIN SELECT a FROM t;\nINSERT INTO sink2 SELECT b, b FROM t");
    assert!(
        text.contains("line 2, column 1") && text.contains("EXPLAIN must be the last"),
        "{text}"
    );
    let text = err("EXPLAIN");
    assert!(
        text.starts_with("syntax error at line 1, column 1"),
        "{text}"
    );
}

#[test]
fn intervals() {
    assert_eq!(
        out_types("SELECT INTERVAL '5' SECOND, INTERVAL '10' MINUTE, INTERVAL '1' HOUR, INTERVAL '2' DAY, INTERVAL '5 seconds', INTERVAL '250' MILLISECOND"),
        vec![Interval; 6]
    );
    let text = err("SELECT INTERVAL '3' MONTH");
    assert!(
        text.starts_with("unsupported at line 1, column 17"),
        "{text}"
    );
    let text = err("SELECT INTERVAL 'x' SECOND");
    assert!(text.contains("invalid interval value"), "{text}");
}

#[test]
fn flink_statement_sets() {
    let s = bind(
        "EXECUTE STATEMENT SET BEGIN\n\
           INSERT INTO sink2 SELECT b, b FROM t;\n\
           INSERT INTO sink2 SELECT b, a FROM t;\n\
         END;",
    )
    .unwrap();
    assert_eq!(s.outputs.len(), 2);
    let s = bind(
        "BEGIN STATEMENT SET;\nINSERT INTO sink2 SELECT b, b FROM t;\nINSERT INTO sink2 SELECT b, a FROM t;\nEND;",
    )
    .unwrap();
    assert_eq!(s.outputs.len(), 2);
    // Positions inside a statement set still point into the original text.
    let text = err("EXECUTE STATEMENT SET BEGIN\n  INSERT INTO nosink SELECT b, b FROM t;\nEND;");
    assert!(
        text.starts_with("error at line 2, column 15: unknown table 'nosink'"),
        "{text}"
    );
}

#[test]
fn metadata_columns_become_options() {
    let s = bind(
        "CREATE TABLE k (\n\
           id BIGINT,\n\
           ts TIMESTAMP(3) METADATA FROM 'timestamp',\n\
           `partition` INT METADATA VIRTUAL,\n\
           \"Off\" BIGINT NOT NULL METADATA FROM 'offset' VIRTUAL,\n\
           price DECIMAL(10, 2),\n\
           metadata VARCHAR,\n\
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND\n\
         ) WITH ('connector' = 'kafka', 'topic' = 't');\n\
         SELECT id, ts, `partition`, \"Off\", metadata FROM k",
    )
    .unwrap();
    let k = &s.tables[0];
    assert_eq!(
        k.schema.types(),
        vec![
            BigInt,
            Timestamp,
            Int,
            BigInt,
            Decimal {
                precision: 10,
                scale: 2
            },
            Varchar
        ]
    );
    assert!(!k.schema.fields[3].nullable);
    assert_eq!(k.option("metadata.ts"), Some("timestamp"));
    assert_eq!(k.option("metadata.partition"), Some("partition"));
    assert_eq!(k.option("metadata.Off"), Some("offset"));
    assert_eq!(k.option("metadata.metadata"), None);
    assert_eq!(k.options.len(), 5);
    assert_eq!(k.watermark.as_ref().map(|w| w.column), Some(1));
}

/// Nexmark q13's side input names a column `key` unquoted, as Flink allows; sqlparser
/// read it as a MySQL `KEY` constraint ("Expected: a list of columns in parentheses").
#[test]
fn columns_named_key_and_index_need_no_quotes() {
    let s = bind(
        "CREATE TABLE side_input (\n  key BIGINT,\n  index INT,\n  `value` VARCHAR\n) WITH ('connector' = 'filesystem');\n\
         SELECT key, index, `value` FROM side_input WHERE key > 1",
    )
    .unwrap();
    let t = &s.tables[0];
    let names: Vec<&str> = t.schema.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["key", "index", "value"]);
    assert_eq!(s.outputs[0].schema.types(), vec![BigInt, Int, Varchar]);
}
