//! `'format.on-error' = 'dead-letter'` with `'dead-letter.topic'`: bad records of a Kafka
//! source (invalid JSON, wrong types, invalid UTF-8) go to a Kafka topic of the same
//! (mock) cluster, once each, with their position and error; the good records reach the
//! sink exactly once and the run does not fail.

use base64::Engine as _;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Message, Offset, TopicPartitionList};
use sluice_catalogs::MemoryCatalog;
use sluice_connectors::Registry;
use sluice_dataflow::{run, Progress, RunOptions};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const GOOD: i64 = 3000;

/// The bad payloads: every 100th record is one of these.
fn poison(i: i64) -> Vec<u8> {
    match i % 3 {
        0 => b"{not json".to_vec(),
        1 => format!(r#"{{"id": "x{i}", "v": 1}}"#).into_bytes(),
        _ => vec![b'{', 0xff, 0xfe, b'}'],
    }
}

#[test]
fn bad_records_go_to_the_dead_letter_topic_once_each_with_their_position() {
    let cluster = MockCluster::new(2).unwrap();
    cluster.create_topic("events", 3, 1).unwrap();
    cluster.create_topic("events-dlq", 1, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    // Sent in order to one partition each, so each bad record's offset is known.
    let mut bad: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut offsets = [0i64; 3];
    let mut n = 0i64;
    for i in 0..GOOD {
        let p = (i % 3) as usize;
        if i % 100 == 0 {
            let payload = poison(n);
            n += 1;
            bad.insert(format!("events/{p}@{}", offsets[p]), payload.clone());
            producer
                .send(
                    BaseRecord::<[u8], [u8]>::to("events")
                        .partition(p as i32)
                        .payload(&payload),
                )
                .map_err(|(e, _)| e)
                .unwrap();
            offsets[p] += 1;
        }
        let value = format!(r#"{{"id": {i}, "v": {}}}"#, i % 10);
        producer
            .send(
                BaseRecord::<str, str>::to("events")
                    .partition(p as i32)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .unwrap();
        offsets[p] += 1;
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let sql = format!(
        "CREATE TABLE events (id BIGINT, v BIGINT) WITH ('connector' = 'kafka', 'topic' = 'events', \
           'properties.bootstrap.servers' = '{bootstrap}', 'scan.bounded.mode' = 'latest-offset', \
           'format' = 'json', 'format.on-error' = 'dead-letter', 'dead-letter.topic' = 'events-dlq');\n\
         CREATE TABLE good (id BIGINT, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO good SELECT id, v FROM events;\n",
        out.display()
    );
    let plan = sluice_compiler::compile(&sql, &MemoryCatalog::new(), &Registry::builtin())
        .unwrap_or_else(|e| panic!("{e}"))
        .plan;
    let progress = Arc::new(Progress::new());
    run(
        &plan,
        RunOptions::new(Registry::builtin()).with_workers(2),
        progress.clone(),
    )
    .unwrap();
    let metrics = progress.snapshot();
    assert_eq!(metrics.dead_lettered, bad.len() as u64);

    // The good records, exactly once.
    let mut ids: BTreeMap<i64, usize> = BTreeMap::new();
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        if !e.file_name().to_string_lossy().starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(e.path()).unwrap().lines().skip(1) {
            *ids.entry(line.split(',').next().unwrap().parse().unwrap())
                .or_default() += 1;
        }
    }
    assert_eq!(ids.len() as i64, GOOD);
    assert!(ids.values().all(|n| *n == 1));

    // Each bad record once on the dead-letter topic, keyed and labelled by its position.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "dlq-check")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("events-dlq", 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut letters: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut received = 0;
    while received < bad.len() && Instant::now() < deadline {
        let Some(m) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.unwrap();
        received += 1;
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        let json: serde_json::Value = serde_json::from_slice(m.payload().unwrap()).unwrap();
        assert_eq!(json["position"], key.as_str());
        assert!(letters.insert(key, json).is_none(), "a dead letter twice");
    }
    assert!(
        consumer.poll(Duration::from_millis(500)).is_none(),
        "more dead letters than bad records"
    );
    assert_eq!(
        letters.keys().collect::<Vec<_>>(),
        bad.keys().collect::<Vec<_>>()
    );
    for (position, json) in &letters {
        assert_eq!(json["table"], "events");
        assert!(!json["error"].as_str().unwrap().is_empty(), "{json}");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(json["raw_base64"].as_str().unwrap())
            .unwrap();
        assert_eq!(&raw, &bad[position]);
    }
}

#[test]
fn a_dead_letter_topic_without_a_cluster_is_a_clear_error() {
    let sql =
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '5', \
                 'format.on-error' = 'dead-letter', 'dead-letter.topic' = 'dlq');\n\
               CREATE TABLE dst (id BIGINT) WITH ('connector' = 'blackhole');\n\
               INSERT INTO dst SELECT id FROM src;\n";
    let plan = sluice_compiler::compile(sql, &MemoryCatalog::new(), &Registry::builtin())
        .unwrap()
        .plan;
    let err = run(
        &plan,
        RunOptions::new(Registry::builtin()),
        Arc::new(Progress::new()),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("dead-letter.properties.bootstrap.servers"),
        "{err}"
    );
}
