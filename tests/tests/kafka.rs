//! The kafka connector through the real binary: a `kafka-mock` process (librdkafka's
//! mock cluster), records produced to it, and `sluice run` reading the topic in
//! bounded mode with a filter, a projection and a metadata column into CSV files.

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use sluice_tests::{sluice, stderr, KafkaMock};
use std::path::Path;
use std::time::Duration;

/// The data rows of every CSV part file under `dir` (headers dropped), sorted.
fn csv_rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        rows.extend(text.lines().skip(1).map(str::to_string));
    }
    rows.sort();
    rows
}

#[test]
fn sluice_run_reads_a_kafka_topic_into_csv_files() {
    let mock = KafkaMock::start(env!("CARGO_BIN_EXE_kafka-mock"), &["orders:4"]);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &mock.bootstrap)
        .create()
        .unwrap();
    let n = 500i64;
    for i in 0..n {
        let value = format!(
            r#"{{"id": {i}, "customer": "c{}", "amount": {}}}"#,
            i % 7,
            i as f64 * 1.25
        );
        let p = (i % 4) as i32;
        producer
            .send(
                BaseRecord::<str, str>::to("orders")
                    .partition(p)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    // Not valid JSON: skipped by 'format.on-error'.
    producer
        .send(
            BaseRecord::<str, str>::to("orders")
                .partition(0)
                .payload("{oops"),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    producer.flush(Duration::from_secs(30)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "CREATE TABLE orders (\n\
           id BIGINT,\n\
           customer VARCHAR,\n\
           amount DOUBLE,\n\
           part INT METADATA FROM 'partition' VIRTUAL\n\
         ) WITH (\n\
           'connector' = 'kafka',\n\
           'topic' = 'orders',\n\
           'format' = 'json',\n\
           'format.on-error' = 'skip',\n\
           'properties.bootstrap.servers' = '{}',\n\
           'scan.bounded.mode' = 'latest-offset'\n\
         );\n\
         CREATE TABLE big (id BIGINT, amount DOUBLE, part INT)\n\
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO big SELECT id, amount, part FROM orders WHERE amount > 400 AND customer <> 'c3';\n",
        mock.bootstrap,
        out.display()
    );
    let script_path = dir.path().join("job.sql");
    std::fs::write(&script_path, script).unwrap();
    let run = sluice(
        dir.path(),
        &[
            "run",
            script_path.to_str().unwrap(),
            "--workers",
            "3",
            "--quiet",
        ],
    );
    assert!(run.status.success(), "sluice run failed: {}", stderr(&run));

    let mut want: Vec<String> = (0..n)
        .filter(|i| *i as f64 * 1.25 > 400.0 && i % 7 != 3)
        .map(|i| format!("{i},{},{}", i as f64 * 1.25, i % 4))
        .collect();
    want.sort();
    assert!(want.len() > 100);
    assert_eq!(csv_rows(&out), want);
}

#[test]
fn sluice_run_writes_a_kafka_topic_in_a_transaction_and_reads_it_back() {
    let mock = KafkaMock::start(env!("CARGO_BIN_EXE_kafka-mock"), &["src:2", "dst:3"]);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &mock.bootstrap)
        .create()
        .unwrap();
    for i in 0..50 {
        let line = format!("{i},w{}", i % 5);
        producer
            .send(
                BaseRecord::<str, str>::to("src")
                    .partition(i % 2)
                    .payload(&line),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bs = &mock.bootstrap;
    let write = format!(
        "CREATE TABLE src (n INT, word VARCHAR) WITH ('connector' = 'kafka', 'topic' = 'src', 'format' = 'csv', 'properties.bootstrap.servers' = '{bs}', 'scan.bounded.mode' = 'latest-offset');\n\
         CREATE TABLE dst (word VARCHAR, n INT) WITH ('connector' = 'kafka', 'topic' = 'dst', 'format' = 'json', 'properties.bootstrap.servers' = '{bs}', 'sink.key.fields' = 'word', 'sink.delivery-guarantee' = 'exactly-once', 'sink.transactional-id-prefix' = 'e2e');\n\
         INSERT INTO dst SELECT word, n FROM src WHERE n % 2 = 0;\n"
    );
    let path = dir.path().join("write.sql");
    std::fs::write(&path, write).unwrap();
    let run = sluice(
        dir.path(),
        &["run", path.to_str().unwrap(), "-w", "2", "-q"],
    );
    assert!(run.status.success(), "{}", stderr(&run));

    let read = format!(
        "CREATE TABLE dst (word VARCHAR, n INT, k VARCHAR METADATA FROM 'key') WITH ('connector' = 'kafka', 'topic' = 'dst', 'format' = 'json', 'properties.bootstrap.servers' = '{bs}', 'scan.bounded.mode' = 'latest-offset', 'properties.isolation.level' = 'read_committed');\n\
         SELECT n, word, k FROM dst ORDER BY n;\n"
    );
    let path = dir.path().join("read.sql");
    std::fs::write(&path, read).unwrap();
    let run = sluice(
        dir.path(),
        &["run", path.to_str().unwrap(), "-f", "csv", "-q"],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let mut want = String::from("n,word,k\n");
    for i in (0..50).step_by(2) {
        want.push_str(&format!(
            "{i},w{},\"{{\"\"word\"\":\"\"w{}\"\"}}\"\n",
            i % 5,
            i % 5
        ));
    }
    assert_eq!(sluice_tests::stdout(&run), want);
}

#[test]
fn metadata_columns_on_other_connectors_are_positioned_errors() {
    let dir = tempfile::tempdir().unwrap();
    let script_path = dir.path().join("bad.sql");
    std::fs::write(
        &script_path,
        "CREATE TABLE f (\n  a INT,\n  ts TIMESTAMP(3) METADATA FROM 'timestamp'\n) WITH ('connector' = 'filesystem', 'path' = 'x', 'format' = 'csv');\nSELECT a FROM f;\n",
    )
    .unwrap();
    let run = sluice(dir.path(), &["run", script_path.to_str().unwrap()]);
    let err = stderr(&run);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(err.contains("line 3, column 19"), "{err}");
    assert!(err.contains("does not support METADATA columns"), "{err}");
}
