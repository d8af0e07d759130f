//! `PROCTIME()`: the processing-time attribute, in a SELECT (Nexmark q12's view) and as
//! a `col AS PROCTIME()` computed column of a CREATE TABLE; usable as a window's time
//! column; never folded to a constant nor duplicated by a pushed-down filter.

mod common;

use common::{bind, compiled, err, out_schema};
use sluice_catalogs::SqlType::*;
use sluice_compiler::ExplainStage;

const DDL: &str = "CREATE TABLE clicks (user_id BIGINT, p AS PROCTIME(), url VARCHAR) \
                   WITH ('connector' = 'memory');\n";

#[test]
fn a_computed_column_is_a_timestamp_at_its_declared_place() {
    let schema = out_schema(&format!("{DDL}SELECT * FROM clicks"));
    assert_eq!(
        schema,
        vec![
            ("user_id".to_string(), BigInt),
            ("p".to_string(), Timestamp),
            ("url".to_string(), Varchar),
        ]
    );
    // The connector never sees the column: the table's own schema lacks it.
    let s = bind(&format!("{DDL}SELECT user_id FROM clicks")).unwrap();
    assert_eq!(s.tables[0].schema.len(), 2);
}

#[test]
fn a_processing_time_tumble_binds_and_is_not_folded() {
    let sql = format!(
        "{DDL}SELECT user_id, COUNT(*) AS n, window_start, window_end \
         FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(p), INTERVAL '10' SECOND)) \
         GROUP BY user_id, window_start, window_end"
    );
    insta::assert_snapshot!(compiled(&sql).explain(ExplainStage::Physical), @r"
    -- query 1: SELECT
    Calc: project=[user_id, $agg0 AS n, window_start, window_end] device=cpu(row stage) [stateless]
      Reduce: group_by=[user_id, window_start, window_end] aggs=[COUNT(*)] strategies=[accumulate] preaggregate=per-batch device=cpu(stateful) [state: one running state per group]
        Calc: project=[user_id, window_start, window_end] device=cpu(columns only) [stateless]
          WindowAssign: TUMBLE(time_col=p, size=INTERVAL '10000' MILLISECOND) [stateless]
            Calc: project=[user_id, PROCTIME() AS p] device=cpu(PROCTIME) [stateless]
              Source: clicks projection=[user_id] [stateless]
    ");
}

#[test]
fn nexmark_q12_view_form_binds() {
    let sql = "CREATE VIEW B AS SELECT *, PROCTIME() as p_time FROM bid;\n\
               SELECT bidder, count(*) as bid_count, window_start AS starttime, window_end AS endtime \
               FROM TABLE(TUMBLE(TABLE B, DESCRIPTOR(p_time), INTERVAL '10' SECOND)) \
               GROUP BY bidder, window_start, window_end";
    assert_eq!(
        out_schema(sql).iter().map(|(_, t)| *t).collect::<Vec<_>>(),
        vec![BigInt, BigInt, Timestamp, Timestamp]
    );
}

#[test]
fn a_filter_on_proctime_is_evaluated_on_the_projected_value() {
    let sql = format!("{DDL}SELECT url FROM clicks WHERE p > TIMESTAMP '2020-01-01 00:00:00'");
    insta::assert_snapshot!(compiled(&sql).explain(ExplainStage::Optimized), @r"
    -- query 1: SELECT
    Project: url
      Filter: p > TIMESTAMP '2020-01-01 00:00:00.000'
        Project: PROCTIME() AS p, url
          Scan: clicks projection=[url]
    ");
}

#[test]
fn misuses_fail_with_positions() {
    let text = err("SELECT PROCTIME(1) FROM bid");
    assert!(
        text.starts_with("error at line 1, column 8: PROCTIME() takes no arguments"),
        "{text}"
    );
    let text = err("CREATE TABLE c (a BIGINT, p AS PROCTIME(), q AS PROCTIME()) WITH ('connector' = 'memory');\nSELECT a FROM c");
    assert!(
        text.starts_with("error at line 1, column 44: a table can have at most one PROCTIME()"),
        "{text}"
    );
    let text = err("CREATE TABLE c (a BIGINT, a AS PROCTIME()) WITH ('connector' = 'memory');\nSELECT a FROM c");
    assert!(
        text.starts_with("error at line 1, column 27: duplicate column 'a'"),
        "{text}"
    );
    let text =
        err("CREATE TABLE c (p AS PROCTIME()) WITH ('connector' = 'memory');\nSELECT p FROM c");
    assert!(text.contains("at least one column besides"), "{text}");
}
