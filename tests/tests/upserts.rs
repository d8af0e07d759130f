//! Updating results of unbounded sources, through the real binary: an unwindowed
//! `GROUP BY` over a Kafka topic (librdkafka's mock cluster) written to a Kafka table
//! keyed by its `PRIMARY KEY` as upserts and tombstones while the job runs, and to `print` as a changelog;
//! and the same result refused, with its position, for a table that only appends.

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::Message;
use sluice_tests::{sluice, sluice_bin, stderr, KafkaMock};
use std::collections::BTreeMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn produce(bootstrap: &str, topic: &str, records: &[(&str, i64)]) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    for (i, (user, n)) in records.iter().enumerate() {
        let value = format!(r#"{{"user_id": "{user}", "n": {n}}}"#);
        producer
            .send(
                BaseRecord::<str, str>::to(topic)
                    .partition((i % 2) as i32)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

/// What a compacted topic holds: each key's last value (a tombstone removes the key),
/// and every message read so far.
#[derive(Default)]
struct Compacted {
    view: BTreeMap<String, String>,
    tombstones: Vec<String>,
    messages: usize,
}

impl Compacted {
    fn poll(&mut self, consumer: &BaseConsumer) {
        while let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.unwrap();
            let key = String::from_utf8(m.key().expect("a keyed message").to_vec()).unwrap();
            self.messages += 1;
            match m.payload() {
                Some(v) => {
                    self.view
                        .insert(key, String::from_utf8(v.to_vec()).unwrap());
                }
                None => {
                    self.view.remove(&key);
                    self.tombstones.push(key);
                }
            }
        }
    }
}

fn key(user: &str) -> String {
    format!(r#"{{"user_id":"{user}"}}"#)
}

fn value(user: &str, clicks: i64, total: i64) -> String {
    format!(r#"{{"user_id":"{user}","clicks":{clicks},"total":{total}}}"#)
}

#[test]
fn an_unbounded_group_by_is_written_as_upserts_and_tombstones_while_it_runs() {
    let mock = KafkaMock::start(env!("CARGO_BIN_EXE_kafka-mock"), &["clicks:2", "counts:2"]);
    let bs = mock.bootstrap.clone();
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "CREATE TABLE clicks (user_id VARCHAR, n BIGINT) WITH ('connector' = 'kafka', 'topic' = 'clicks', \
           'format' = 'json', 'properties.bootstrap.servers' = '{bs}', 'scan.startup.mode' = 'earliest-offset');\n\
         CREATE TABLE counts (user_id VARCHAR, clicks BIGINT, total BIGINT, PRIMARY KEY (user_id) NOT ENFORCED) \
           WITH ('connector' = 'kafka', 'topic' = 'counts', 'format' = 'json', 'properties.bootstrap.servers' = '{bs}');\n\
         CREATE TABLE changes (user_id VARCHAR, total BIGINT) WITH ('connector' = 'print');\n\
         INSERT INTO counts SELECT user_id, COUNT(*), SUM(n) FROM clicks GROUP BY user_id HAVING SUM(n) < 100;\n\
         INSERT INTO changes SELECT user_id, SUM(n) FROM clicks GROUP BY user_id;\n"
    );
    let path = dir.path().join("job.sql");
    std::fs::write(&path, &script).unwrap();

    // The plan says how the sinks take the updating result.
    let explain = dir.path().join("explain.sql");
    std::fs::write(&explain, format!("{script}EXPLAIN PHYSICAL INSERT INTO counts SELECT user_id, COUNT(*), SUM(n) FROM clicks GROUP BY user_id;\n")).unwrap();
    let out = sluice(dir.path(), &["run", explain.to_str().unwrap(), "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = sluice_tests::stdout(&out);
    assert!(
        text.contains("Sink: counts mode=upsert(key=[user_id]")
            && text.contains("[state: none, rows are unique by the key]"),
        "{text}"
    );

    let mut job = Command::new(sluice_bin())
        .args(["run", path.to_str().unwrap(), "-w", "2", "-q"])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("group.id", "upserts-test")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["counts"]).unwrap();
    let mut topic = Compacted::default();
    let wait =
        |topic: &mut Compacted, want: &BTreeMap<String, String>, job: &mut std::process::Child| {
            let until = Instant::now() + Duration::from_secs(60);
            while Instant::now() < until {
                topic.poll(&consumer);
                if &topic.view == want {
                    return;
                }
                if let Some(status) = job.try_wait().unwrap() {
                    let mut err = String::new();
                    job.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                    panic!("the job ended ({status}): {err}");
                }
            }
            panic!("the topic holds {:?}, want {:?}", topic.view, want);
        };

    // First records: every user below 100.
    produce(&bs, "clicks", &[("a", 10), ("b", 20), ("a", 5), ("c", 1)]);
    let mut want: BTreeMap<String, String> = [
        (key("a"), value("a", 2, 15)),
        (key("b"), value("b", 1, 20)),
        (key("c"), value("c", 1, 1)),
    ]
    .into_iter()
    .collect();
    wait(&mut topic, &want, &mut job);
    assert!(topic.tombstones.is_empty(), "{:?}", topic.tombstones);

    // More: `a` passes 100 and leaves the result (a tombstone), `b` changes, `d` is new.
    produce(&bs, "clicks", &[("a", 200), ("b", 2), ("d", 7)]);
    want.remove(&key("a"));
    want.insert(key("b"), value("b", 2, 22));
    want.insert(key("d"), value("d", 1, 7));
    wait(&mut topic, &want, &mut job);
    assert_eq!(topic.tombstones, vec![key("a")]);
    // One message per change of a key, not the whole result again each time.
    assert!(topic.messages <= 8, "{} messages", topic.messages);

    job.kill().unwrap();
    let _ = job.wait();
    let mut printed = String::new();
    job.stdout
        .take()
        .unwrap()
        .read_to_string(&mut printed)
        .unwrap();
    // The changelog shows the retraction of `a`'s old total before its new one.
    let lines: Vec<&str> = printed.lines().collect();
    let pos = |l: &str| lines.iter().position(|x| *x == l);
    let (old, gone, new) = (
        pos("changes> +I[a, 15]"),
        pos("changes> -D[a, 15]"),
        pos("changes> +I[a, 215]"),
    );
    assert!(
        old.is_some() && gone.is_some() && new.is_some() && old < gone,
        "{printed}"
    );
}

#[test]
fn an_unbounded_updating_result_into_files_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "CREATE TABLE clicks (user_id VARCHAR, n BIGINT) WITH ('connector' = 'kafka', 'topic' = 'clicks', \
           'format' = 'json', 'properties.bootstrap.servers' = 'localhost:1');\n\
         CREATE TABLE totals (user_id VARCHAR, total BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n\
         INSERT INTO totals SELECT user_id, SUM(n) FROM clicks GROUP BY user_id;\n",
        out.display()
    );
    let path = dir.path().join("job.sql");
    std::fs::write(&path, script).unwrap();
    let run = sluice(dir.path(), &["run", path.to_str().unwrap(), "-q"]);
    assert!(!run.status.success());
    let err = stderr(&run);
    assert!(
        err.contains("line 3, column 13")
            && err.contains("table 'totals' (connector 'filesystem') only appends rows")
            && err.contains("source 'clicks' is unbounded"),
        "{err}"
    );
    assert!(!out.exists(), "nothing was written");
}

/// `sluice run` of a job with a `print` table shows its rows on stdout. (Before, the
/// worker process printed them on the stdout that carries its protocol to `sluice run`,
/// which failed with "unreadable worker message".)
#[test]
fn sluice_run_prints_a_print_tables_rows_and_retractions_on_its_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "a,1\nb,2\na,3\n").unwrap();
    let script = format!(
        "CREATE TABLE clicks (user_id VARCHAR, n BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n\
         CREATE TABLE shown (user_id VARCHAR, total BIGINT) WITH ('connector' = 'print');\n\
         INSERT INTO shown SELECT user_id, SUM(n) FROM clicks GROUP BY user_id;\n",
        input.display()
    );
    let path = dir.path().join("job.sql");
    std::fs::write(&path, script).unwrap();
    for workers in ["1", "2"] {
        let run = sluice(
            dir.path(),
            &["run", path.to_str().unwrap(), "-w", workers, "-q"],
        );
        assert!(run.status.success(), "{}", stderr(&run));
        let mut lines: Vec<String> = sluice_tests::stdout(&run)
            .lines()
            .map(String::from)
            .collect();
        lines.sort();
        assert_eq!(lines, vec!["shown> +I[a, 4]", "shown> +I[b, 2]"]);
    }
}
