//! How a table sink takes its rows (`Output::sink`), decided at compile time: append,
//! final (an updating result of bounded sources into files), upsert by the sink's key
//! (stateless when the key contains the result's unique key), changelog; and the
//! error, with its position, for an updating result of an unbounded source into a
//! table that only appends.

mod common;

use common::AnyConnector;
use sluice_catalogs::MemoryCatalog;
use sluice_compiler::physical::SinkMode;
use sluice_compiler::{compile, CompileError, ExplainStage};

const TABLES: &str = "CREATE TABLE clicks (uid BIGINT, amount BIGINT) WITH ('connector' = 'kafka', \
    'topic' = 'clicks', 'properties.bootstrap.servers' = 'k:9092', 'format' = 'json');\n\
    CREATE TABLE files (uid BIGINT, amount BIGINT) WITH ('connector' = 'filesystem', 'path' = '/in', 'format' = 'csv');\n\
    CREATE TABLE out_files (uid BIGINT, n BIGINT) WITH ('connector' = 'filesystem', 'path' = '/out', 'format' = 'csv');\n\
    CREATE TABLE by_uid (uid BIGINT, n BIGINT) WITH ('connector' = 'kafka', 'topic' = 'o', \
    'properties.bootstrap.servers' = 'k:9092', 'format' = 'json', 'sink.key.fields' = 'uid');\n\
    CREATE TABLE by_n (uid BIGINT, n BIGINT) WITH ('connector' = 'kafka', 'topic' = 'o', \
    'properties.bootstrap.servers' = 'k:9092', 'format' = 'json', 'sink.key.fields' = 'n');\n\
    CREATE TABLE by_pk (uid BIGINT, n BIGINT, PRIMARY KEY (uid) NOT ENFORCED) WITH ('connector' = 'kafka', \
    'topic' = 'o', 'properties.bootstrap.servers' = 'k:9092', 'format' = 'json');\n";

fn mode(insert: &str) -> Result<SinkMode, CompileError> {
    let c = compile(
        &format!("{TABLES}{insert}"),
        &MemoryCatalog::new(),
        &AnyConnector,
    )?;
    Ok(c.plan.outputs[0].sink.clone())
}

#[test]
fn each_sink_takes_the_result_as_its_kind_allows() {
    let agg = "SELECT uid, COUNT(*) FROM clicks GROUP BY uid";
    assert_eq!(
        mode("INSERT INTO out_files SELECT uid, amount FROM clicks;"),
        Ok(SinkMode::Append)
    );
    assert_eq!(
        mode("INSERT INTO out_files SELECT uid, COUNT(*) FROM files GROUP BY uid;"),
        Ok(SinkMode::Final)
    );
    assert_eq!(
        mode(&format!("INSERT INTO by_uid {agg};")),
        Ok(SinkMode::Upsert {
            key: vec![0],
            unique: true
        })
    );
    // Keyed by the table's PRIMARY KEY (the compiler passes it as an option).
    assert_eq!(
        mode(&format!("INSERT INTO by_pk {agg};")),
        Ok(SinkMode::Upsert {
            key: vec![0],
            unique: true
        })
    );
    // Keyed by a column that repeats: the sink keeps each key's live rows.
    assert_eq!(
        mode(&format!("INSERT INTO by_n {agg};")),
        Ok(SinkMode::Upsert {
            key: vec![1],
            unique: false
        })
    );
    // A filter and a reordering projection keep the unique key.
    assert_eq!(
        mode("INSERT INTO by_uid SELECT uid, n FROM (SELECT COUNT(*) AS n, uid FROM clicks GROUP BY uid) WHERE n > 2;"),
        Ok(SinkMode::Upsert { key: vec![0], unique: true })
    );
}

#[test]
fn an_unbounded_updating_result_into_a_table_that_only_appends_is_an_error_at_the_table() {
    let e =
        mode("INSERT INTO out_files SELECT uid, COUNT(*) FROM clicks GROUP BY uid;").unwrap_err();
    assert_eq!(e.position.map(|p| (p.line, p.column)), Some((7, 13)), "{e}");
    assert!(
        e.message
            .contains("table 'out_files' (connector 'filesystem') only appends rows")
            && e.message.contains("source 'clicks' is unbounded")
            && e.message.contains("'sink.key.fields'"),
        "{e}"
    );
}

#[test]
fn explain_physical_says_how_the_sink_writes_an_updating_result() {
    let c = compile(
        &format!("{TABLES}INSERT INTO by_n SELECT uid, COUNT(*) FROM clicks GROUP BY uid;"),
        &MemoryCatalog::new(),
        &AnyConnector,
    )
    .unwrap();
    let text = c.explain(ExplainStage::Physical);
    assert!(
        text.contains("Sink: by_n mode=upsert(key=[n]; per changed key its latest live row or a delete, as each time completes) [state: each key's live rows]\nCalc"),
        "{text}"
    );
}
