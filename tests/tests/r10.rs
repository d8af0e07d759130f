//! R10 (`shared/design/reliability.md`): object-store faults. A Kafka → S3 Parquet job
//! (librdkafka's mock cluster; moto's S3 server behind `fault-proxy`, the real S3
//! protocol) runs while the proxy delays every request by up to 40 ms and answers one
//! in five with `503 SlowDown`, and, once the job has committed, cuts the store off
//! for 2.5 s (every request 503) — in the middle of its staging and commits. The job
//! survives (the object store client retries; a commit that still fails restarts the
//! instance from its last checkpoint), finishes, and the bucket holds every id
//! exactly once with nothing staged.

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::json;
use sluice_tests::{sluice, stderr, stdout, FaultProxy, KafkaMock, MasterProcess, Moto};
use std::time::Duration;

const PARTITIONS: i64 = 8;
const RECORDS: i64 = 400_000;

#[test]
fn r10_object_store_faults_lose_and_duplicate_nothing() {
    let mock = KafkaMock::start(
        env!("CARGO_BIN_EXE_kafka-mock"),
        &[&format!("events:{PARTITIONS}")],
    );
    let moto = Moto::start();
    moto.create_bucket("lake");
    let proxy = FaultProxy::start(env!("CARGO_BIN_EXE_fault-proxy"), &moto.endpoint);
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &mock.bootstrap)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for i in 0..RECORDS {
        let value = format!(r#"{{"id":{i},"amount":{}}}"#, i % 100);
        let mut record = BaseRecord::<str, str>::to("events")
            .partition((i % PARTITIONS) as i32)
            .payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(60)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let s3 = |endpoint: &str| {
        format!(
            "'s3.endpoint' = '{endpoint}', 's3.region' = 'us-east-1', \
             's3.access-key-id' = 'test', 's3.secret-access-key' = 'test', 's3.allow-http' = 'true'"
        )
    };
    let sql = format!(
        "SET 'execution.checkpointing.interval' = '200ms';\n\
         CREATE TABLE events (id BIGINT, amount BIGINT) WITH (\n\
           'connector' = 'kafka', 'topic' = 'events', 'format' = 'json',\n\
           'properties.bootstrap.servers' = '{}', 'scan.startup.mode' = 'earliest-offset',\n\
           'properties.max.partition.fetch.bytes' = '2048', 'scan.bounded.mode' = 'latest-offset');\n\
         CREATE TABLE lake (id BIGINT, amount BIGINT) WITH (\n\
           'connector' = 'filesystem', 'path' = 's3://lake/events', 'format' = 'parquet', {});\n\
         INSERT INTO lake SELECT id, amount FROM events;\n",
        mock.bootstrap,
        s3(&proxy.endpoint)
    );
    let m = MasterProcess::start(
        &dir.path().join("data"),
        &[
            "--restart-backoff-ms",
            "100",
            "--restart-backoff-max-ms",
            "400",
            "--max-restarts",
            "100",
            "--allow-endpoint",
            &proxy.endpoint,
        ],
    );
    // Slow and flaky from the start.
    proxy.set(40, 0.2, 0);
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "r10", "sql": sql, "resources": {"parallelism": 2}})),
    );
    assert_eq!(s, 201, "{v}");
    let commits = || {
        m.get("/api/v1/jobs/r10/commits")["commits"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let before = m.wait_for(60, "a first commit", || {
        let n = commits();
        (n > 0).then_some(n)
    });
    // A 2.5 s outage in the middle of the run; the job commits again after it.
    proxy.set(40, 0.2, 2_500);
    std::thread::sleep(Duration::from_millis(2_500));
    let finished_early = m.get("/api/v1/jobs/r10")["state"] == "finished";
    m.wait_for(60, "a commit after the outage", || {
        (commits() > before || m.get("/api/v1/jobs/r10")["state"] == "finished").then_some(())
    });
    let job = m.wait_for(300, "the job to finish", || {
        let j = m.get("/api/v1/jobs/r10");
        (j["state"] == "finished" || j["state"] == "failed").then_some(j)
    });
    assert_eq!(job["state"], "finished", "{job}");
    assert!(
        !finished_early,
        "the job finished before the outage ended (make the input larger)"
    );
    let stats = proxy.stats();
    eprintln!(
        "r10: {RECORDS} records; store requests {}, 503s injected {}, refused during the outage {}; \
         instance restarts {}, commits {}",
        stats["requests"],
        stats["errors"],
        stats["outage"],
        job["restarts"],
        commits()
    );
    assert!(stats["errors"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["outage"].as_u64().unwrap() > 0, "{stats}");

    // Nothing staged is visible or left open, and every id is there once.
    proxy.set(0, 0.0, 0);
    let keys = moto.keys("lake");
    assert!(
        keys.iter().all(|k| k.starts_with("events/part-")),
        "a staged or stray object is visible: {:?}",
        keys.iter()
            .filter(|k| !k.starts_with("events/part-"))
            .collect::<Vec<_>>()
    );
    assert_eq!(moto.open_multipart_uploads("lake"), 0);
    let read = format!(
        "CREATE TABLE lake (id BIGINT, amount BIGINT) WITH ('connector' = 'filesystem', \
           'path' = 's3://lake/events', 'format' = 'parquet', {});\n\
         SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids, SUM(id) AS s, SUM(amount) AS a FROM lake;\n",
        s3(&moto.endpoint)
    );
    let path = dir.path().join("read.sql");
    std::fs::write(&path, read).unwrap();
    let o = sluice(
        dir.path(),
        &["run", "--format", "csv", "--quiet", path.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o).lines().nth(1).unwrap_or_default().to_string();
    let sum: i64 = (0..RECORDS).sum();
    let amounts: i64 = (0..RECORDS).map(|i| i % 100).sum();
    assert_eq!(
        line,
        format!("{RECORDS},{RECORDS},{sum},{amounts}"),
        "count, distinct ids, sums"
    );
}
