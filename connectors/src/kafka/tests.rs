//! Tests of the kafka connector against librdkafka's mock cluster (the real Kafka
//! protocol, in process).

use super::*;
use crate::test_util::table;
use crate::values::{write_cell, TextStyle};
use crate::{BadRecord, Registry, SourcePoll};
use arrow::array::{Int64Array, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{Field as ArrowField, Schema as ArrowSchema};
use arrow::record_batch::RecordBatch;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use sluice_catalogs::{ConnectorValidator, Field, SqlType};
use sluice_expr::{BinaryOp, Datum};
use std::sync::Arc;
use std::time::Instant;

type Row = Vec<Option<String>>;

/// A mock cluster with these topics (name, partitions).
struct Mock {
    _cluster: MockCluster<'static, DefaultProducerContext>,
    bootstrap: String,
    producer: ThreadedProducer<DefaultProducerContext>,
}

fn mock(topics: &[(&str, i32)]) -> Mock {
    let cluster = MockCluster::new(3).unwrap();
    for (t, n) in topics {
        cluster.create_topic(t, *n, 1).unwrap();
    }
    let bootstrap = cluster.bootstrap_servers();
    let producer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "0")
        .create()
        .unwrap();
    Mock {
        _cluster: cluster,
        bootstrap,
        producer,
    }
}

/// One message to produce.
#[derive(Default)]
struct Msg<'a> {
    partition: Option<i32>,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    timestamp: Option<i64>,
    headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

impl Mock {
    fn send(&self, topic: &str, m: Msg<'_>) {
        let mut r = BaseRecord::<[u8], [u8]>::to(topic);
        if let Some(p) = m.partition {
            r = r.partition(p);
        }
        if let Some(k) = m.key {
            r = r.key(k);
        }
        if let Some(v) = m.value {
            r = r.payload(v);
        }
        if let Some(ts) = m.timestamp {
            r = r.timestamp(ts);
        }
        if !m.headers.is_empty() {
            let mut h = OwnedHeaders::new();
            for (key, value) in m.headers {
                h = h.insert(Header { key, value });
            }
            r = r.headers(h);
        }
        self.producer.send(r).map_err(|(e, _)| e).unwrap();
    }

    /// Send values to explicit partitions, then wait until they are acknowledged.
    fn send_values(&self, topic: &str, values: &[(i32, String)]) {
        for (p, v) in values {
            self.send(
                topic,
                Msg {
                    partition: Some(*p),
                    value: Some(v.as_bytes()),
                    ..Msg::default()
                },
            );
        }
        self.flush();
    }

    fn flush(&self) {
        self.producer.flush(Duration::from_secs(10)).unwrap();
    }

    fn options<'a>(&'a self, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
        let mut o = vec![("properties.bootstrap.servers", self.bootstrap.as_str())];
        o.extend_from_slice(extra);
        o
    }
}

fn schema(cols: &[(&str, SqlType)]) -> Schema {
    Schema::new(cols.iter().map(|(n, t)| Field::new(*n, *t)).collect())
}

fn kafka_table(schema: Schema, options: &[(&str, &str)]) -> TableDescriptor {
    let mut t = table("kafka", schema, options);
    t.capabilities = Registry::builtin()
        .validate("kafka", &t.options, &t.schema)
        .unwrap();
    t
}

fn ctx(worker: usize, workers: usize) -> WorkerContext {
    WorkerContext { worker, workers }
}

fn source(t: &TableDescriptor, projection: &[usize], c: WorkerContext) -> Box<dyn Source> {
    Registry::builtin()
        .create_source(t, projection, &[], c)
        .unwrap()
}

fn rows_of(batch: &RecordBatch) -> Vec<Row> {
    (0..batch.num_rows())
        .map(|r| {
            batch
                .columns()
                .iter()
                .map(|c| {
                    let mut s = String::new();
                    write_cell(&mut s, c.as_ref(), r, TextStyle::Plain).then_some(s)
                })
                .collect()
        })
        .collect()
}

/// Poll until the source finishes (bounded) or `want` rows and bad records came
/// (unbounded); fails after 20 s.
fn read(src: &mut dyn Source, max_rows: usize, want: Option<usize>) -> (Vec<Row>, Vec<BadRecord>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut rows, mut bad) = (Vec::new(), Vec::new());
    loop {
        if want.is_some_and(|w| rows.len() + bad.len() >= w) {
            return (rows, bad);
        }
        assert!(
            Instant::now() < deadline,
            "timed out with {} rows, {} bad",
            rows.len(),
            bad.len()
        );
        match src.poll(max_rows).unwrap() {
            SourcePoll::Batch { batch, bad: b } => {
                assert!(batch.num_rows() <= max_rows);
                rows.extend(rows_of(&batch));
                bad.extend(b);
            }
            SourcePoll::Idle => {}
            SourcePoll::Finished => {
                assert!(want.is_none(), "finished early with {} rows", rows.len());
                return (rows, bad);
            }
        }
    }
}

fn text(v: &[Option<&str>]) -> Row {
    v.iter().map(|s| s.map(str::to_string)).collect()
}

fn json_events(n: i64) -> Vec<(i32, String)> {
    (0..n)
        .map(|i| {
            (
                (i % 4) as i32,
                format!(r#"{{"id": {i}, "name": "n{i}", "amount": {}.5}}"#, i * 2),
            )
        })
        .collect()
}

fn event_schema() -> Schema {
    schema(&[
        ("id", SqlType::BigInt),
        ("name", SqlType::Varchar),
        ("amount", SqlType::Double),
    ])
}

fn expected_events(n: i64) -> Vec<Row> {
    let mut v: Vec<Row> = (0..n)
        .map(|i| {
            vec![
                Some(i.to_string()),
                Some(format!("n{i}")),
                Some(format!("{}.5", i * 2)),
            ]
        })
        .collect();
    v.sort();
    v
}

#[test]
fn kafka_reads_json_with_one_and_three_workers() {
    let m = mock(&[("events", 4)]);
    m.send_values("events", &json_events(100));
    let t = kafka_table(
        event_schema(),
        &m.options(&[
            ("topic", "events"),
            ("format", "json"),
            ("scan.bounded.mode", "latest-offset"),
        ]),
    );
    assert_eq!(
        t.capabilities,
        sluice_catalogs::SourceCapabilities {
            filter_pushdown: true,
            projection_pushdown: true,
            bounded: true,
            sink: sluice_catalogs::SinkKind::Append,
        }
    );
    for workers in [1, 3] {
        let mut all = Vec::new();
        let mut partitions = Vec::new();
        for w in 0..workers {
            let mut src = source(&t, &[0, 1, 2], ctx(w, workers));
            let (rows, bad) = read(src.as_mut(), 7, None);
            assert!(bad.is_empty());
            all.extend(rows);
            let pos = src.position();
            partitions.push(pos.as_object().unwrap().keys().cloned().collect::<Vec<_>>());
        }
        all.sort();
        assert_eq!(all, expected_events(100), "{workers} workers");
        if workers == 3 {
            // Partitions dealt in (topic, partition) order: i goes to worker i % 3.
            assert_eq!(
                partitions,
                vec![
                    vec!["events/0".to_string(), "events/3".to_string()],
                    vec!["events/1".to_string()],
                    vec!["events/2".to_string()],
                ]
            );
        }
    }
    // A projection reads only the asked columns, in the asked order.
    let mut src = source(&t, &[2, 0], ctx(0, 1));
    let (mut rows, _) = read(src.as_mut(), 1000, None);
    rows.sort();
    assert_eq!(rows.len(), 100);
    assert!(rows.contains(&text(&[Some("6.5"), Some("3")])));
}

#[test]
fn kafka_applies_pushed_down_filters() {
    let m = mock(&[("events", 4)]);
    m.send_values("events", &json_events(40));
    let t = kafka_table(
        event_schema(),
        &m.options(&[
            ("topic", "events"),
            ("format", "json"),
            ("scan.bounded.mode", "latest-offset"),
        ]),
    );
    // Projection (name, id); id > 30 over the projected columns.
    let filters = vec![ScalarExpr::binary(
        BinaryOp::Gt,
        ScalarExpr::col(1),
        ScalarExpr::lit(Datum::Int(30), SqlType::BigInt),
    )];
    let mut src = Registry::builtin()
        .create_source(&t, &[1, 0], &filters, ctx(0, 1))
        .unwrap();
    let (mut rows, _) = read(src.as_mut(), 1000, None);
    rows.sort();
    let want: Vec<Row> = {
        let mut w: Vec<Row> = (31..40)
            .map(|i| vec![Some(format!("n{i}")), Some(i.to_string())])
            .collect();
        w.sort();
        w
    };
    assert_eq!(rows, want);
}

#[test]
fn kafka_metadata_columns() {
    let m = mock(&[("meta", 2)]);
    m.send(
        "meta",
        Msg {
            partition: Some(1),
            key: Some(b"k1"),
            value: Some(br#"{"v": 1}"#),
            timestamp: Some(1_700_000_000_123),
            headers: vec![("b", Some(b"2")), ("a", Some(b"x")), ("n", None)],
        },
    );
    m.send(
        "meta",
        Msg {
            partition: Some(1),
            value: Some(br#"{"v": 2}"#),
            timestamp: Some(1_700_000_000_124),
            ..Msg::default()
        },
    );
    m.flush();
    let s = schema(&[
        ("v", SqlType::Int),
        ("t", SqlType::Varchar),
        ("p", SqlType::Int),
        ("o", SqlType::BigInt),
        ("ts", SqlType::Timestamp),
        ("key", SqlType::Varchar),
        ("h", SqlType::Varchar),
    ]);
    let t = kafka_table(
        s,
        &m.options(&[
            ("topic", "meta"),
            ("format", "json"),
            ("scan.bounded.mode", "latest-offset"),
            ("metadata.t", "topic"),
            ("metadata.p", "partition"),
            ("metadata.o", "offset"),
            ("metadata.ts", "timestamp"),
            ("metadata.key", "key"),
            ("metadata.h", "headers"),
        ]),
    );
    let mut src = source(&t, &[0, 1, 2, 3, 4, 5, 6], ctx(0, 1));
    let (rows, bad) = read(src.as_mut(), 100, None);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(
        rows,
        vec![
            text(&[
                Some("1"),
                Some("meta"),
                Some("1"),
                Some("0"),
                Some("2023-11-14 22:13:20.123"),
                Some("k1"),
                Some(r#"{"a":"x","b":"2","n":null}"#),
            ]),
            text(&[
                Some("2"),
                Some("meta"),
                Some("1"),
                Some("1"),
                Some("2023-11-14 22:13:20.124"),
                None,
                None,
            ]),
        ]
    );
    // Only metadata columns projected.
    let mut src = source(&t, &[3, 2], ctx(0, 1));
    let (rows, _) = read(src.as_mut(), 100, None);
    assert_eq!(
        rows,
        vec![text(&[Some("0"), Some("1")]), text(&[Some("1"), Some("1")])]
    );
    // The timestamp column is a TIMESTAMP(3) usable as event time.
    let mut src = source(&t, &[4], ctx(0, 1));
    match src.poll(100).unwrap() {
        SourcePoll::Batch { batch, .. } => {
            assert!(batch
                .column(0)
                .as_any()
                .downcast_ref::<TimestampMillisecondArray>()
                .is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn kafka_csv_and_raw_formats() {
    let m = mock(&[("c", 1), ("r", 1)]);
    m.send_values(
        "c",
        &[
            (0, "1,\"a,b\",2.5".to_string()),
            (0, "2,,".to_string()),
            (0, "3|NULL|x".to_string()),
        ],
    );
    let t = kafka_table(
        schema(&[
            ("id", SqlType::Int),
            ("s", SqlType::Varchar),
            ("d", SqlType::Double),
        ]),
        &m.options(&[
            ("topic", "c"),
            ("format", "csv"),
            ("scan.bounded.mode", "latest-offset"),
        ]),
    );
    let mut src = source(&t, &[0, 1, 2], ctx(0, 1));
    let (rows, bad) = read(src.as_mut(), 100, None);
    assert_eq!(
        rows,
        vec![
            text(&[Some("1"), Some("a,b"), Some("2.5")]),
            text(&[Some("2"), None, None]),
        ]
    );
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].position, "c/0@2");
    assert!(
        bad[0].error.contains("expected 3 fields"),
        "{}",
        bad[0].error
    );
    // Another delimiter and a NULL literal.
    let t2 = kafka_table(
        schema(&[
            ("id", SqlType::Int),
            ("s", SqlType::Varchar),
            ("d", SqlType::Varchar),
        ]),
        &m.options(&[
            ("topic", "c"),
            ("format", "csv"),
            ("csv.field-delimiter", "|"),
            ("csv.null-literal", "NULL"),
            ("scan.bounded.mode", "latest-offset"),
        ]),
    );
    let mut src = source(&t2, &[0, 1, 2], ctx(0, 1));
    let (rows, _) = read(src.as_mut(), 100, None);
    assert_eq!(rows, vec![text(&[Some("3"), None, Some("x")])]);

    // Raw: the value as text, a tombstone as NULL.
    m.send_values("r", &[(0, "hello, world".into()), (0, "{not json".into())]);
    m.send(
        "r",
        Msg {
            partition: Some(0),
            ..Msg::default()
        },
    );
    m.flush();
    let t = kafka_table(
        schema(&[("line", SqlType::Varchar), ("o", SqlType::BigInt)]),
        &m.options(&[
            ("topic", "r"),
            ("format", "raw"),
            ("metadata.o", "offset"),
            ("scan.bounded.mode", "latest-offset"),
        ]),
    );
    let mut src = source(&t, &[0, 1], ctx(0, 1));
    let (rows, bad) = read(src.as_mut(), 100, None);
    assert!(bad.is_empty());
    assert_eq!(
        rows,
        vec![
            text(&[Some("hello, world"), Some("0")]),
            text(&[Some("{not json"), Some("1")]),
            text(&[None, Some("2")]),
        ]
    );
}

#[test]
fn kafka_bad_records_have_positions_and_good_ones_flow() {
    let m = mock(&[("bad", 2)]);
    m.send_values(
        "bad",
        &[
            (0, r#"{"id": 1, "name": "a", "amount": 1.5}"#.into()),
            (0, r#"{"id": 2, "name": "#.into()),
            (0, r#"{"id": "two", "name": "b"}"#.into()),
            (1, r#"[1, 2]"#.into()),
            (1, r#"{"id": 3, "name": "c"}"#.into()),
        ],
    );
    m.send(
        "bad",
        Msg {
            partition: Some(1),
            value: Some(b"{\"id\": 4, \"name\": \"\xff\xfe\"}"),
            ..Msg::default()
        },
    );
    // A tombstone is skipped, not bad.
    m.send(
        "bad",
        Msg {
            partition: Some(1),
            ..Msg::default()
        },
    );
    let big = format!(r#"{{"id": 5, "name": "{}""#, "x".repeat(200_000));
    m.send(
        "bad",
        Msg {
            partition: Some(0),
            value: Some(big.as_bytes()),
            ..Msg::default()
        },
    );
    m.flush();
    let t = kafka_table(
        event_schema(),
        &m.options(&[
            ("topic", "bad"),
            ("format", "json"),
            ("format.on-error", "skip"),
            ("scan.bounded.mode", "latest-offset"),
        ]),
    );
    let mut src = source(&t, &[0, 1], ctx(0, 1));
    let (mut rows, mut bad) = read(src.as_mut(), 100, None);
    rows.sort();
    assert_eq!(
        rows,
        vec![text(&[Some("1"), Some("a")]), text(&[Some("3"), Some("c")])]
    );
    bad.sort_by(|a, b| a.position.cmp(&b.position));
    let positions: Vec<&str> = bad.iter().map(|b| b.position.as_str()).collect();
    assert_eq!(
        positions,
        ["bad/0@1", "bad/0@2", "bad/0@3", "bad/1@0", "bad/1@2"]
    );
    assert!(bad[0].error.contains("invalid JSON"), "{}", bad[0].error);
    assert_eq!(bad[0].raw, br#"{"id": 2, "name": "#);
    assert!(bad[1].error.contains("column 'id'"), "{}", bad[1].error);
    assert!(bad[2].raw.len() <= crate::format::MAX_RAW_BYTES);
    assert!(
        bad[3].error.contains("expected a JSON object"),
        "{}",
        bad[3].error
    );
    assert!(bad[4].error.contains("UTF-8"), "{}", bad[4].error);
}

#[test]
fn kafka_position_and_seek_resume_exactly() {
    let m = mock(&[("p", 4)]);
    m.send_values("p", &json_events(60));
    let t = kafka_table(
        event_schema(),
        &m.options(&[("topic", "p"), ("format", "json")]),
    );
    assert!(!t.capabilities.bounded);
    let mut first = Vec::new();
    let mut positions = Vec::new();
    for w in 0..2 {
        let mut src = source(&t, &[0, 1, 2], ctx(w, 2));
        let before = src.position();
        assert_eq!(before.as_object().unwrap().len(), 2);
        let (rows, _) = read(src.as_mut(), 5, Some(20));
        first.extend(rows);
        positions.push(src.position());
    }
    assert_eq!(first.len(), 40);
    // More arrives while "down".
    m.send_values(
        "p",
        &json_events(80).into_iter().skip(60).collect::<Vec<_>>(),
    );
    // Resume from the merged positions (any worker may get any map).
    let mut merged = serde_json::Map::new();
    for p in &positions {
        merged.extend(p.as_object().unwrap().clone());
    }
    let merged = serde_json::Value::Object(merged);
    let mut rest = Vec::new();
    for w in 0..2 {
        let mut src = source(&t, &[0, 1, 2], ctx(w, 2));
        src.seek(&merged).unwrap();
        let want: i64 = src
            .position()
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let p: i32 = k.rsplit('/').next().unwrap().parse().unwrap();
                let total = (0..80).filter(|i| i % 4 == i64::from(p)).count() as i64;
                total - v.as_i64().unwrap()
            })
            .sum();
        let (rows, _) = read(src.as_mut(), 7, Some(want as usize));
        rest.extend(rows);
        // Nothing more.
        for _ in 0..3 {
            assert!(matches!(src.poll(100).unwrap(), SourcePoll::Idle));
        }
    }
    let mut all = first;
    all.extend(rest);
    all.sort();
    assert_eq!(all, expected_events(80));

    // Seek after reading started: re-reads from the given offsets.
    let mut src = source(&t, &[0], ctx(0, 1));
    let (rows, _) = read(src.as_mut(), 1000, Some(80));
    assert_eq!(rows.len(), 80);
    let back = serde_json::json!({"p/0": 19, "p/1": 20, "p/2": 20, "p/3": 19});
    src.seek(&back).unwrap();
    assert_eq!(src.position(), back);
    let (mut rows, _) = read(src.as_mut(), 1000, Some(2));
    rows.sort();
    assert_eq!(rows, vec![text(&[Some("76")]), text(&[Some("79")])]);
    assert!(src.seek(&serde_json::json!({"p/0": "x"})).is_err());
    assert!(src.seek(&serde_json::json!([1])).is_err());
}

#[test]
fn kafka_startup_modes() {
    let m = mock(&[("s", 2)]);
    for i in 0..10i64 {
        let v = format!(r#"{{"id": {i}}}"#);
        m.send(
            "s",
            Msg {
                partition: Some((i % 2) as i32),
                value: Some(v.as_bytes()),
                timestamp: Some(1_000 + i),
                ..Msg::default()
            },
        );
    }
    m.flush();
    let s = || schema(&[("id", SqlType::BigInt)]);
    let ids = |rows: Vec<Row>| {
        let mut v: Vec<i64> = rows
            .into_iter()
            .map(|r| r[0].as_deref().unwrap().parse().unwrap())
            .collect();
        v.sort();
        v
    };
    let bounded = ("scan.bounded.mode", "latest-offset");
    // earliest (the default)
    let t = kafka_table(
        s(),
        &m.options(&[("topic", "s"), ("format", "json"), bounded]),
    );
    let (rows, _) = read(source(&t, &[0], ctx(0, 1)).as_mut(), 100, None);
    assert_eq!(ids(rows), (0..10).collect::<Vec<_>>());
    // timestamp: the mock cluster answers every offsets-for-times lookup with "no such
    // message" (librdkafka's mock ListOffsets has a FIXME there), so what the broker's
    // answer turns into is tested in `kafka_start_offsets` and the lookup itself
    // against a real broker.
    // a timestamp after every message: nothing
    let t = kafka_table(
        s(),
        &m.options(&[
            ("topic", "s"),
            ("format", "json"),
            ("scan.startup.mode", "timestamp"),
            ("scan.startup.timestamp-millis", "99999"),
            bounded,
        ]),
    );
    let (rows, _) = read(source(&t, &[0], ctx(0, 1)).as_mut(), 100, None);
    assert!(rows.is_empty());
    // latest: only what arrives after the source started
    let t = kafka_table(
        s(),
        &m.options(&[
            ("topic", "s"),
            ("format", "json"),
            ("scan.startup.mode", "latest-offset"),
        ]),
    );
    let mut src = source(&t, &[0], ctx(0, 1));
    assert!(matches!(src.poll(100).unwrap(), SourcePoll::Idle));
    m.send_values(
        "s",
        &[(0, r#"{"id": 100}"#.into()), (1, r#"{"id": 101}"#.into())],
    );
    let (rows, _) = read(src.as_mut(), 100, Some(2));
    assert_eq!(ids(rows), vec![100, 101]);

    // group-offsets: what the group committed; without a commit, auto.offset.reset.
    let committer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &m.bootstrap)
        .set("group.id", "g1")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("s", 0, Offset::Offset(3)).unwrap();
    committer
        .commit(&tpl, rdkafka::consumer::CommitMode::Sync)
        .unwrap();
    let group = |extra: &[(&'static str, &'static str)]| {
        let mut o = vec![
            ("topic", "s"),
            ("format", "json"),
            ("scan.startup.mode", "group-offsets"),
            ("properties.group.id", "g1"),
            bounded,
        ];
        o.extend_from_slice(extra);
        kafka_table(s(), &m.options(&o))
    };
    let Err(e) = Registry::builtin().create_source(&group(&[]), &[0], &[], ctx(0, 1)) else {
        panic!("partition 1 has no committed offset")
    };
    assert!(e.to_string().contains("no committed offset for s/1"), "{e}");
    let t = group(&[("properties.auto.offset.reset", "earliest")]);
    let (rows, _) = read(source(&t, &[0], ctx(0, 1)).as_mut(), 100, None);
    // Partition 0 holds 0, 2, 4, 6, 8, 100 (offsets 0..6): from offset 3 on; partition 1 all.
    assert_eq!(ids(rows), vec![1, 3, 5, 6, 7, 8, 9, 100, 101]);
    // Sources never commit on their own.
    let committed = committer
        .committed_offsets(
            {
                let mut l = TopicPartitionList::new();
                l.add_partition("s", 0);
                l.add_partition("s", 1);
                l
            },
            Duration::from_secs(10),
        )
        .unwrap();
    assert_eq!(
        committed.find_partition("s", 0).unwrap().offset(),
        Offset::Offset(3)
    );
    assert_eq!(
        committed.find_partition("s", 1).unwrap().offset(),
        Offset::Invalid
    );
    // ... but report a completed checkpoint's position when asked.
    let mut src = source(&t, &[0], ctx(0, 1));
    let (rows, _) = read(src.as_mut(), 100, None);
    assert_eq!(rows.len(), 9);
    let pos = src.position();
    assert_eq!(pos, serde_json::json!({"s/0": 6, "s/1": 6}));
    src.commit_position(&pos).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // Serve the asynchronous commit.
        let _ = src.poll(1);
        let mut l = TopicPartitionList::new();
        l.add_partition("s", 0);
        l.add_partition("s", 1);
        let c = committer
            .committed_offsets(l, Duration::from_secs(10))
            .unwrap();
        let got: Vec<Offset> = c.elements().iter().map(|e| e.offset()).collect();
        if got == [Offset::Offset(6), Offset::Offset(6)] {
            break;
        }
        assert!(Instant::now() < deadline, "not committed: {got:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kafka_start_offsets() {
    use super::source::start_offset;
    let ts = StartupMode::Timestamp(1005);
    let off = |n| Some(Offset::Offset(n));
    assert_eq!(
        start_offset(StartupMode::Earliest, None, 3, 10, None),
        Some(3)
    );
    assert_eq!(
        start_offset(StartupMode::Latest, None, 3, 10, None),
        Some(10)
    );
    assert_eq!(start_offset(ts, off(7), 3, 10, None), Some(7));
    assert_eq!(start_offset(ts, Some(Offset::End), 3, 10, None), Some(10));
    assert_eq!(start_offset(ts, None, 3, 10, None), Some(10));
    let g = StartupMode::GroupOffsets;
    assert_eq!(start_offset(g, off(5), 3, 10, None), Some(5));
    // A committed offset that retention removed: the earliest still there.
    assert_eq!(start_offset(g, off(1), 3, 10, None), Some(3));
    assert_eq!(start_offset(g, Some(Offset::Invalid), 3, 10, None), None);
    assert_eq!(
        start_offset(g, Some(Offset::Invalid), 3, 10, Some("earliest")),
        Some(3)
    );
    assert_eq!(
        start_offset(g, Some(Offset::Invalid), 3, 10, Some("latest")),
        Some(10)
    );
    assert_eq!(
        start_offset(g, Some(Offset::Invalid), 3, 10, Some("error")),
        None
    );
}

#[test]
fn kafka_bounded_mode_finishes_at_the_start_offsets() {
    let m = mock(&[("b1", 2), ("b2", 1), ("other", 1), ("empty", 3)]);
    m.send_values(
        "b1",
        &[(0, r#"{"id": 1}"#.into()), (1, r#"{"id": 2}"#.into())],
    );
    m.send_values("b2", &[(0, r#"{"id": 3}"#.into())]);
    m.send_values("other", &[(0, r#"{"id": 4}"#.into())]);
    let s = || schema(&[("id", SqlType::BigInt), ("t", SqlType::Varchar)]);
    let opts = |topic: (&'static str, &'static str)| {
        m.options(&[
            topic,
            ("format", "json"),
            ("scan.bounded.mode", "latest-offset"),
            ("metadata.t", "topic"),
        ])
    };
    let t = kafka_table(s(), &opts(("topic", "b1;b2")));
    let mut src = source(&t, &[0, 1], ctx(0, 1));
    assert_eq!(
        src.position(),
        serde_json::json!({"b1/0": 0, "b1/1": 0, "b2/0": 0})
    );
    // Arrives after the start: not read.
    m.send_values("b2", &[(0, r#"{"id": 99}"#.into())]);
    let (mut rows, _) = read(src.as_mut(), 100, None);
    rows.sort();
    assert_eq!(
        rows,
        vec![
            text(&[Some("1"), Some("b1")]),
            text(&[Some("2"), Some("b1")]),
            text(&[Some("3"), Some("b2")]),
        ]
    );
    assert!(matches!(src.poll(100).unwrap(), SourcePoll::Finished));
    assert_eq!(
        src.position(),
        serde_json::json!({"b1/0": 1, "b1/1": 1, "b2/0": 1})
    );
    // A pattern (matching whole names: not "other").
    let t = kafka_table(s(), &opts(("topic-pattern", "b[0-9]+|oth")));
    let (mut rows, _) = read(source(&t, &[1, 0], ctx(0, 1)).as_mut(), 100, None);
    rows.sort();
    assert_eq!(
        rows,
        vec![
            text(&[Some("b1"), Some("1")]),
            text(&[Some("b1"), Some("2")]),
            text(&[Some("b2"), Some("3")]),
            text(&[Some("b2"), Some("99")]),
        ]
    );
    // Empty partitions finish at once; more workers than partitions too.
    let t = kafka_table(s(), &opts(("topic", "empty")));
    for w in 0..5 {
        let mut src = source(&t, &[0], ctx(w, 5));
        assert!(matches!(src.poll(10).unwrap(), SourcePoll::Finished));
    }
    // A topic that does not exist.
    let t = kafka_table(s(), &opts(("topic", "nope")));
    let Err(e) = Registry::builtin().create_source(&t, &[0], &[], ctx(0, 1)) else {
        panic!("expected an error");
    };
    assert!(e.to_string().contains("'nope'"), "{e}");
}

/// A sink batch of (id BIGINT, name VARCHAR, ts TIMESTAMP(3)).
fn sink_batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let schema = Arc::new(ArrowSchema::new(vec![
        ArrowField::new("id", SqlType::BigInt.to_arrow(), true),
        ArrowField::new("name", SqlType::Varchar.to_arrow(), true),
        ArrowField::new("ts", SqlType::Timestamp.to_arrow(), true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(ids.clone().collect::<Vec<_>>())),
            Arc::new(StringArray::from(
                ids.clone()
                    .map(|i| (i % 3 != 0).then(|| format!("n,{i}")))
                    .collect::<Vec<_>>(),
            )),
            Arc::new(TimestampMillisecondArray::from(
                ids.map(|i| 5_000 + i).collect::<Vec<_>>(),
            )),
        ],
    )
    .unwrap()
}

fn sink_schema() -> Schema {
    schema(&[
        ("id", SqlType::BigInt),
        ("name", SqlType::Varchar),
        ("ts", SqlType::Timestamp),
    ])
}

/// (key, value, timestamp) of every message of a one-partition topic.
fn dump(
    bootstrap: &str,
    topic: &str,
    isolation: &str,
) -> Vec<(Option<String>, Option<String>, i64)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "dump")
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push((
                m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                m.payload().map(|v| String::from_utf8_lossy(v).into_owned()),
                m.timestamp().to_millis().unwrap_or(-1),
            )),
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return out,
            _ => {}
        }
    }
    panic!("no end of partition in 20 s");
}

#[test]
fn kafka_sink_at_least_once_json_and_csv() {
    let m = mock(&[("out", 1), ("csv", 1)]);
    let t = kafka_table(
        sink_schema(),
        &m.options(&[
            ("topic", "out"),
            ("format", "json"),
            ("sink.key.fields", "id"),
            ("metadata.ts", "timestamp"),
        ]),
    );
    let mut sink = Registry::builtin().create_sink(&t, ctx(0, 1)).unwrap();
    sink.write(&sink_batch(0..3)).unwrap();
    sink.prepare_commit(1).unwrap();
    sink.commit(1).unwrap();
    sink.commit(1).unwrap();
    assert_eq!(
        dump(&m.bootstrap, "out", "read_committed"),
        vec![
            (
                Some(r#"{"id":0}"#.into()),
                Some(r#"{"id":0,"name":null}"#.into()),
                5_000
            ),
            (
                Some(r#"{"id":1}"#.into()),
                Some(r#"{"id":1,"name":"n,1"}"#.into()),
                5_001
            ),
            (
                Some(r#"{"id":2}"#.into()),
                Some(r#"{"id":2,"name":"n,2"}"#.into()),
                5_002
            ),
        ]
    );
    // What the sink wrote reads back through the source, metadata included.
    let mut src = source(&t, &[0, 1, 2], ctx(0, 1));
    let (rows, _) = read(src.as_mut(), 100, Some(3));
    assert_eq!(
        rows[1],
        text(&[Some("1"), Some("n,1"), Some("1970-01-01 00:00:05.001")])
    );

    let t = kafka_table(
        sink_schema(),
        &m.options(&[
            ("topic", "csv"),
            ("format", "csv"),
            ("sink.key.fields", "name;id"),
        ]),
    );
    let mut sink = Registry::builtin().create_sink(&t, ctx(0, 1)).unwrap();
    sink.write(&sink_batch(0..2)).unwrap();
    sink.prepare_commit(1).unwrap();
    let got = dump(&m.bootstrap, "csv", "read_committed");
    assert_eq!(got[0].0.as_deref(), Some(",0"));
    assert_eq!(got[0].1.as_deref(), Some("0,,1970-01-01 00:00:05.000"));
    assert_eq!(got[1].0.as_deref(), Some("\"n,1\",1"));
    assert_eq!(
        got[1].1.as_deref(),
        Some("1,\"n,1\",1970-01-01 00:00:05.001")
    );
}

fn exactly_once_table(bootstrap: &str, topic: &str) -> TableDescriptor {
    kafka_table(
        sink_schema(),
        &[
            ("properties.bootstrap.servers", bootstrap),
            ("topic", topic),
            ("format", "json"),
            ("sink.delivery-guarantee", "exactly-once"),
            ("sink.transactional-id-prefix", "sluice-test"),
        ],
    )
}

fn ids_in(messages: &[(Option<String>, Option<String>, i64)]) -> Vec<i64> {
    messages
        .iter()
        .map(|(_, v, _)| {
            let v: serde_json::Value = serde_json::from_str(v.as_deref().unwrap()).unwrap();
            v["id"].as_i64().unwrap()
        })
        .collect()
}

#[test]
fn kafka_sink_exactly_once_transactions() {
    // The mock cluster runs the transaction protocol (InitProducerId, AddPartitionsToTxn,
    // EndTxn) but does not isolate: what it shows is what was *sent*, which is what this
    // test checks. Visibility is checked against a real broker by the ignored test below.
    let m = mock(&[("eos", 1)]);
    let t = exactly_once_table(&m.bootstrap, "eos");
    let mut sink = Registry::builtin().create_sink(&t, ctx(0, 1)).unwrap();
    sink.write(&sink_batch(0..3)).unwrap();
    sink.prepare_commit(1).unwrap();
    // Rows of the next epoch wait for the commit of this one.
    sink.write(&sink_batch(3..5)).unwrap();
    assert_eq!(
        ids_in(&dump(&m.bootstrap, "eos", "read_uncommitted")),
        vec![0, 1, 2]
    );
    sink.commit(1).unwrap();
    assert_eq!(
        ids_in(&dump(&m.bootstrap, "eos", "read_uncommitted")),
        vec![0, 1, 2, 3, 4]
    );
    sink.commit(1).unwrap(); // idempotent
    sink.prepare_commit(2).unwrap();
    sink.commit(2).unwrap();
    sink.commit(2).unwrap();
    // Two epochs prepared before the first commit: both commit in order.
    sink.write(&sink_batch(5..6)).unwrap();
    sink.prepare_commit(3).unwrap();
    sink.write(&sink_batch(6..7)).unwrap();
    sink.prepare_commit(4).unwrap();
    sink.commit(4).unwrap();
    assert_eq!(
        ids_in(&dump(&m.bootstrap, "eos", "read_uncommitted")),
        (0..7).collect::<Vec<_>>()
    );
    // Nothing prepared: commit is a no-op.
    sink.commit(9).unwrap();
    drop(sink);
    // A new producer of the same id starts (and fences the old one).
    let mut again = Registry::builtin().create_sink(&t, ctx(0, 1)).unwrap();
    again.write(&sink_batch(7..8)).unwrap();
    again.prepare_commit(5).unwrap();
    again.commit(5).unwrap();
}

#[test]
fn mock_cluster_does_not_isolate_transactions() {
    // Documents a limit of librdkafka's mock cluster (why exactly-once visibility is
    // tested against a real broker): read_committed consumers see open transactions.
    let m = mock(&[("iso", 1)]);
    let t = exactly_once_table(&m.bootstrap, "iso");
    let mut sink = Registry::builtin().create_sink(&t, ctx(0, 1)).unwrap();
    sink.write(&sink_batch(0..2)).unwrap();
    sink.prepare_commit(1).unwrap();
    assert_eq!(dump(&m.bootstrap, "iso", "read_committed").len(), 2);
}

/// Exactly-once visibility against a real broker that isolates transactions (Apache
/// Kafka, Redpanda; not nisshi 0.7, whose `read_committed` fetches return open and aborted
/// transactions): `SLUICE_KAFKA_BOOTSTRAP=host:port cargo test -p sluice-connectors
/// kafka_exactly_once_visibility -- --ignored`.
#[test]
#[ignore = "needs a Kafka broker that isolates transactions in SLUICE_KAFKA_BOOTSTRAP"]
fn kafka_exactly_once_visibility_on_a_real_broker() {
    let Ok(bootstrap) = std::env::var("SLUICE_KAFKA_BOOTSTRAP") else {
        panic!("set SLUICE_KAFKA_BOOTSTRAP");
    };
    let topic = format!(
        "sluice-eos-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    // Auto-created on the first send (or create it beforehand with one partition).
    let t = exactly_once_table(&bootstrap, &topic);
    let mut sink = Registry::builtin().create_sink(&t, ctx(0, 1)).unwrap();
    sink.write(&sink_batch(0..3)).unwrap();
    sink.prepare_commit(1).unwrap();
    assert!(dump(&bootstrap, &topic, "read_committed").is_empty());
    sink.commit(1).unwrap();
    assert_eq!(
        ids_in(&dump(&bootstrap, &topic, "read_committed")),
        vec![0, 1, 2]
    );
    // Left open, then fenced by a new producer of the same id: never visible.
    sink.write(&sink_batch(3..5)).unwrap();
    sink.prepare_commit(2).unwrap();
    let mut again = Registry::builtin().create_sink(&t, ctx(0, 1)).unwrap();
    again.write(&sink_batch(5..6)).unwrap();
    again.prepare_commit(3).unwrap();
    again.commit(3).unwrap();
    assert_eq!(
        ids_in(&dump(&bootstrap, &topic, "read_committed")),
        vec![0, 1, 2, 5]
    );
    assert!(sink.commit(2).is_err());
    // Startup by timestamp (the sink wrote timestamps 5000 + id; committed: 0, 1, 2, 5).
    let t = kafka_table(
        schema(&[("id", SqlType::BigInt)]),
        &[
            ("properties.bootstrap.servers", bootstrap.as_str()),
            ("topic", topic.as_str()),
            ("format", "json"),
            ("scan.startup.mode", "timestamp"),
            ("scan.startup.timestamp-millis", "5002"),
            ("scan.bounded.mode", "latest-offset"),
        ],
    );
    let (rows, _) = read(source(&t, &[0], ctx(0, 1)).as_mut(), 100, None);
    assert_eq!(rows, vec![text(&[Some("2")]), text(&[Some("5")])]);
}

/// A topic of `partitions` on the real broker of `SLUICE_KAFKA_BOOTSTRAP`, new for each
/// call.
fn real_topic(bootstrap: &str, name: &str, partitions: i32) -> String {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let topic = format!(
        "sluice-{name}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let new = NewTopic::new(&topic, partitions, TopicReplication::Fixed(1));
    let created =
        futures::executor::block_on(admin.create_topics([&new], &AdminOptions::new())).unwrap();
    for r in created {
        r.unwrap();
    }
    topic
}

/// The epoch marker of a pending commit's run, as a restore reads it.
fn marker_of(bootstrap: &str, topic: &str, pending: &crate::PendingCommit) -> Option<i64> {
    let group = format!(
        "{}.sluice-epochs.{}",
        pending.commit["transactional_id"].as_str().unwrap(),
        pending.commit["token"].as_str().unwrap()
    );
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let got = c.committed_offsets(tpl, Duration::from_secs(20)).unwrap();
    match got.find_partition(topic, 0).unwrap().offset() {
        Offset::Offset(n) => Some(n),
        _ => None,
    }
}

/// The exactly-once sink's restore against a real Kafka-protocol broker (`.ci/test` runs
/// it beside one: `tests/kafka/with-broker.sh`): an epoch whose checkpoint record was
/// written but whose transaction died with its producer is sent again from its
/// write-ahead copy, once; an epoch that committed is not; a second restore sends
/// nothing. Checked through what was sent (`read_uncommitted`, the same on every broker:
/// it shows aborted messages too) and the epoch markers, which only a real broker stores
/// (the mock cluster drops transactional offsets). `SLUICE_KAFKA_BOOTSTRAP=host:port cargo
/// test -p sluice-connectors kafka_exactly_once -- --ignored`.
#[test]
#[ignore = "needs a real Kafka broker in SLUICE_KAFKA_BOOTSTRAP"]
fn kafka_exactly_once_restore_resends_only_lost_epochs_on_a_real_broker() {
    let Ok(bootstrap) = std::env::var("SLUICE_KAFKA_BOOTSTRAP") else {
        panic!("set SLUICE_KAFKA_BOOTSTRAP");
    };
    let topic = real_topic(&bootstrap, "eos-restore", 1);
    let t = exactly_once_table(&bootstrap, &topic);
    let sent = || ids_in(&dump(&bootstrap, &topic, "read_uncommitted"));
    let staged = |sink: &mut Box<dyn crate::Sink>, epoch: u64| crate::PendingCommit {
        commit: sink.pending_commit(epoch),
        write_ahead: sink.write_ahead(epoch),
    };
    // Epoch 1 commits; epoch 2 is prepared (its record written), then the worker dies.
    let mut sink = Registry::builtin().create_sink(&t, ctx(0, 1)).unwrap();
    sink.write(&sink_batch(0..3)).unwrap();
    sink.prepare_commit(1).unwrap();
    let one = staged(&mut sink, 1);
    sink.commit(1).unwrap();
    assert_eq!(marker_of(&bootstrap, &topic, &one), Some(1));
    sink.write(&sink_batch(3..6)).unwrap();
    sink.prepare_commit(2).unwrap();
    let two = staged(&mut sink, 2);
    assert!(two.write_ahead.as_ref().is_some_and(|w| !w.is_empty()));
    // Rows of epoch 3, held while epoch 2 waits: never part of a recorded epoch.
    sink.write(&sink_batch(6..7)).unwrap();
    drop(sink);
    // The marker moves only with a commit.
    assert_eq!(marker_of(&bootstrap, &topic, &two), Some(1));
    assert_eq!(sent(), vec![0, 1, 2, 3, 4, 5]);
    // The restore (a new run's first worker): epoch 1 committed, epoch 2 did not (its
    // transaction is aborted by the restore's producer): only epoch 2 is sent again.
    let mut restorer = Registry::builtin().create_sink(&t, ctx(0, 1)).unwrap();
    restorer.recover(&[one.clone(), two.clone()]).unwrap();
    assert_eq!(sent(), vec![0, 1, 2, 3, 4, 5, 3, 4, 5]);
    assert_eq!(marker_of(&bootstrap, &topic, &two), Some(2));
    // Again (a crash during or after the restore): nothing more.
    let mut again = Registry::builtin().create_sink(&t, ctx(0, 1)).unwrap();
    again.recover(&[one, two]).unwrap();
    assert_eq!(sent(), vec![0, 1, 2, 3, 4, 5, 3, 4, 5]);
    // The new run's worker (created after the restore, as a run's are) goes on with the
    // same transactional id, under its own marker.
    let mut run = Registry::builtin().create_sink(&t, ctx(0, 1)).unwrap();
    run.write(&sink_batch(9..10)).unwrap();
    run.prepare_commit(3).unwrap();
    let three = staged(&mut run, 3);
    run.commit(3).unwrap();
    assert_eq!(marker_of(&bootstrap, &topic, &three), Some(3));
    assert_eq!(sent(), vec![0, 1, 2, 3, 4, 5, 3, 4, 5, 9]);
}

fn validate(
    connector: &str,
    options: &[(&str, &str)],
    s: &Schema,
) -> std::result::Result<SourceCapabilities, String> {
    let t = table(connector, s.clone(), options);
    Registry::builtin().validate(connector, &t.options, s)
}

#[test]
fn kafka_option_errors() {
    let s = event_schema();
    let bs = ("properties.bootstrap.servers", "localhost:1");
    let ok = [bs, ("topic", "a"), ("format", "json")];
    assert!(!validate("kafka", &ok, &s).unwrap().bounded);
    let err = |o: &[(&str, &str)], s: &Schema| match validate("kafka", o, s) {
        Err(e) => e,
        Ok(_) => panic!("{o:?} is valid"),
    };
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (
            vec![("topic", "a"), ("format", "json")],
            "'properties.bootstrap.servers'",
        ),
        (vec![bs, ("format", "json")], "'topic'"),
        (
            vec![
                bs,
                ("topic", "a"),
                ("topic-pattern", "a.*"),
                ("format", "json"),
            ],
            "exclude each other",
        ),
        (
            vec![bs, ("topic-pattern", "a("), ("format", "json")],
            "'topic-pattern' is invalid",
        ),
        (
            vec![bs, ("topic", "a b"), ("format", "json")],
            "not a valid topic name",
        ),
        (vec![bs, ("topic", "a")], "'format'"),
        (vec![bs, ("topic", "a"), ("format", "avro")], "'format'"),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("properties.enable.auto.commit", "true"),
            ],
            "offsets",
        ),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("properties.transactional.id", "x"),
            ],
            "sink.transactional-id-prefix",
        ),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("properties.no.such.thing", "1"),
            ],
            "no.such.thing",
        ),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("scan.startup.mode", "timestamp"),
            ],
            "'scan.startup.timestamp-millis'",
        ),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("scan.startup.mode", "group-offsets"),
            ],
            "'properties.group.id'",
        ),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("scan.startup.timestamp-millis", "5"),
            ],
            "needs 'scan.startup.mode'",
        ),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("scan.bounded.mode", "forever"),
            ],
            "'scan.bounded.mode'",
        ),
        (
            vec![bs, ("topic", "a"), ("format", "raw")],
            "exactly one value column",
        ),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("metadata.name", "offset"),
            ],
            "kafka metadata 'offset' is BIGINT, the column is VARCHAR",
        ),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("metadata.name", "color"),
            ],
            "unknown kafka metadata key 'color'",
        ),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("metadata.zz", "key"),
            ],
            "names no column",
        ),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("sink.key.fields", "nope"),
            ],
            "unknown column 'nope'",
        ),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("sink.delivery-guarantee", "exactly-once"),
            ],
            "'sink.transactional-id-prefix'",
        ),
        (
            vec![
                bs,
                ("topic", "a"),
                ("format", "json"),
                ("format.on-error", "dead-letter"),
            ],
            "'dead-letter.path'",
        ),
        (
            vec![bs, ("topic", "a"), ("format", "json"), ("bogus", "1")],
            "'bogus'",
        ),
    ];
    for (o, want) in cases {
        let e = err(&o, &s);
        assert!(e.contains(want), "{o:?}: {e}");
    }
    // raw with one VARCHAR value column beside metadata columns is fine.
    let raw = schema(&[("line", SqlType::Varchar), ("k", SqlType::Varchar)]);
    assert!(validate(
        "kafka",
        &[bs, ("topic", "a"), ("format", "raw"), ("metadata.k", "key")],
        &raw
    )
    .is_ok());
    // A sink needs one topic.
    let t = kafka_table(s.clone(), &[bs, ("topic", "a;b"), ("format", "json")]);
    let Err(e) = Registry::builtin().create_sink(&t, ctx(0, 1)) else {
        panic!("a sink of two topics")
    };
    assert!(e.to_string().contains("one 'topic'"), "{e}");
}

#[test]
fn kafka_secrets_never_appear_in_errors() {
    let s = event_schema();
    let secret = "hunter2-very-secret";
    let jaas = format!("org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"{secret}\";");
    // librdkafka does not know this Java client setting: its error names the value.
    let e = validate(
        "kafka",
        &[
            ("properties.bootstrap.servers", "localhost:1"),
            ("topic", "a"),
            ("format", "json"),
            ("properties.sasl.jaas.config", &jaas),
        ],
        &s,
    )
    .unwrap_err();
    assert!(e.contains("sasl.jaas.config"), "{e}");
    assert!(!e.contains(secret), "{e}");
    // A bad value of a secret property.
    let e = validate(
        "kafka",
        &[
            ("properties.bootstrap.servers", "localhost:1"),
            ("topic", "a"),
            ("format", "json"),
            ("properties.ssl.key.password", secret),
            ("properties.security.protocol", secret),
        ],
        &s,
    )
    .unwrap_err();
    assert!(!e.contains(secret), "{e}");
    assert!(e.contains(sluice_catalogs::REDACTED), "{e}");
}

#[test]
fn other_connectors_reject_metadata_columns() {
    let s = schema(&[("x", SqlType::BigInt), ("ts", SqlType::Timestamp)]);
    let meta = ("metadata.ts", "timestamp");
    for (connector, options) in [
        (
            "filesystem",
            vec![("path", "/tmp/x"), ("format", "csv"), meta],
        ),
        ("datagen", vec![meta]),
        ("nexmark", vec![("nexmark.table", "bid"), meta]),
        ("print", vec![meta]),
        ("blackhole", vec![meta]),
    ] {
        let e = validate(connector, &options, &s).unwrap_err();
        assert!(
            e.contains(&format!(
                "connector '{connector}' does not support METADATA columns"
            )) && e.contains("'ts'"),
            "{connector}: {e}"
        );
    }
}

#[test]
fn kafka_context_drops_partition_eof_in_both_forms_and_scrubs_the_rest() {
    let ctx = KafkaContext::new("t", &["s3cr3t".to_string()]);
    // The consumer event, and the main queue's global error ("Global error: PartitionEOF").
    assert_eq!(ctx.error_line(&KafkaError::PartitionEOF(3), ""), None);
    assert_eq!(
        ctx.error_line(
            &KafkaError::Global(RDKafkaErrorCode::PartitionEOF),
            "Fetch from broker 1 reached end of partition"
        ),
        None
    );
    let line = ctx
        .error_line(
            &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "sasl.password=s3cr3t rejected",
        )
        .expect("a real error is printed");
    assert!(line.starts_with("kafka (table 't'): "), "{line}");
    assert!(
        line.contains("AllBrokersDown") || line.contains("brokers"),
        "{line}"
    );
    assert!(!line.contains("s3cr3t"), "{line}");
}

/// Idle is not hung: the source says it is caught up only once every partition
/// reported its end, and is behind again as soon as a message arrives.
#[test]
fn kafka_source_is_caught_up_only_at_the_end_of_every_partition() {
    let m = mock(&[("q", 4)]);
    m.send_values("q", &json_events(30));
    let t = kafka_table(
        event_schema(),
        &m.options(&[("topic", "q"), ("format", "json")]),
    );
    let mut src = source(&t, &[0, 1, 2], ctx(0, 1));
    assert!(!src.caught_up(), "nothing read yet");
    let (rows, _) = read(src.as_mut(), 1000, Some(30));
    assert_eq!(rows.len(), 30);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !src.caught_up() {
        assert!(std::time::Instant::now() < deadline, "never caught up");
        assert!(matches!(src.poll(100).unwrap(), SourcePoll::Idle));
    }
    // New records: not caught up until they are read.
    m.send_values(
        "q",
        &json_events(33).into_iter().skip(30).collect::<Vec<_>>(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut got = 0;
    while got < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the new records never came"
        );
        if let SourcePoll::Batch { batch, .. } = src.poll(100).unwrap() {
            got += batch.num_rows();
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !src.caught_up() {
        assert!(
            std::time::Instant::now() < deadline,
            "never caught up again"
        );
        let _ = src.poll(100).unwrap();
    }
}
