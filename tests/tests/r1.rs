//! R1: exactly-once Kafka → SQL → S3 Parquet through worker crashes. 1,000,000 JSON
//! records with unique ids in a 32-partition topic (librdkafka's mock cluster, the real
//! Kafka protocol) are read by a job under the real master, filtered and projected, and
//! written as Parquet to an S3 bucket (moto's server, the real S3 protocol). The job's
//! worker process is kill -9'd at 10 seeded random moments (`SLUICE_R1_KILLS` for
//! more); the master restarts it from its last checkpoint each time. Afterwards the
//! bucket holds every surviving id exactly once and no staged object, and the test
//! prints the recovery times (kill → the new instance running).
//!
//! `SLUICE_R1_RECORDS` and `SLUICE_R1_SEED` change the size and the kill schedule.

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::{json, Value};
use sluice_tests::{sluice, stderr, stdout, KafkaMock, MasterProcess, Moto};
use std::time::{Duration, Instant};

const CANARY: &str = "CANARY-r1-5be0d1c7-secret";

/// Partitions of the topic. librdkafka's mock broker keeps about 5 MB per partition
/// and drops older segments beyond that, so 1M records need more than 4 partitions
/// to all stay readable (the test checks that they do).
const PARTITIONS: i64 = 32;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift64*), so a failing schedule replays.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn live_instance(m: &MasterProcess) -> Option<Value> {
    m.get("/api/v1/jobs/r1/instances")
        .as_array()?
        .iter()
        .find(|i| i["state"] == "running")
        .cloned()
}

/// What one kill of job r1's running instance came to.
enum Kill {
    /// Refused: the instance ended on its own just now.
    Refused,
    /// Killed; a successor ran after this many ms (none: the job finished first, or
    /// none came within a minute).
    Done(Option<u128>),
}

/// Kills job r1's running instance, if any, and times its successor's arrival.
fn kill_running(m: &MasterProcess, what: &str) -> Option<Kill> {
    let inst = live_instance(m)?;
    let id = inst["id"].as_str().unwrap().to_string();
    let (s, v) = m.request("POST", &format!("/api/v1/instances/{id}/kill"), None);
    if s != 200 && s != 202 {
        eprintln!("{what}: kill of {id} refused: {s} {v}");
        return Some(Kill::Refused);
    }
    let at = Instant::now();
    let next = m.wait_for(60, "a new instance after a kill", || {
        if m.get("/api/v1/jobs/r1")["state"] == "finished" {
            return Some(None);
        }
        live_instance(m)
            .filter(|i| i["id"] != id.as_str())
            .map(Some)
    });
    Some(Kill::Done(next.map(|_| at.elapsed().as_millis())))
}

fn percentile(sorted: &[u128], p: f64) -> u128 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[test]
fn r1_kafka_to_s3_parquet_exactly_once_through_worker_kills() {
    let records = env_or("SLUICE_R1_RECORDS", 1_000_000) as i64;
    let kills = env_or("SLUICE_R1_KILLS", 10);
    let seed = env_or("SLUICE_R1_SEED", 0x5eed_0001);
    let mut rng = Rng(seed | 1);

    let mock = KafkaMock::start(
        env!("CARGO_BIN_EXE_kafka-mock"),
        &[&format!("events:{PARTITIONS}")],
    );
    let moto = Moto::start();
    moto.create_bucket("lake");

    // Produce: id i in partition i % PARTITIONS; amount = i % 100.
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &mock.bootstrap)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let started = Instant::now();
    for i in 0..records {
        let value = format!(
            r#"{{"id":{i},"amount":{},"note":"event number {i}"}}"#,
            i % 100
        );
        let mut record = BaseRecord::<str, str>::to("events")
            .partition((i % PARTITIONS) as i32)
            .payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(format!("{e}").contains("Queue full"), "produce failed: {e}");
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
    eprintln!("r1: produced {records} records in {:?}", started.elapsed());
    {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &mock.bootstrap)
            .create()
            .unwrap();
        let mut total = 0;
        for p in 0..PARTITIONS as i32 {
            let (lo, hi) = c
                .fetch_watermarks("events", p, Duration::from_secs(10))
                .unwrap();
            assert_eq!(lo, 0, "the mock broker dropped records of partition {p}");
            total += hi;
        }
        assert_eq!(total, records);
    }

    // `SLUICE_R1_KEEP=1` keeps the data directory (master and worker logs, checkpoints).
    let dir = tempfile::tempdir().unwrap();
    let dir = if std::env::var("SLUICE_R1_KEEP").is_ok() {
        let kept = tempfile::Builder::new().prefix("r1-").tempdir().unwrap();
        eprintln!("r1: keeping {}", kept.path().display());
        std::mem::forget(dir);
        kept.keep()
    } else {
        dir.keep()
    };
    let _cleanup = RemoveOnDrop((std::env::var("SLUICE_R1_KEEP").is_err()).then(|| dir.clone()));
    let s3 = format!(
        "'s3.endpoint' = '{}', 's3.region' = 'us-east-1', 's3.access-key-id' = 'test', \
         's3.secret-access-key' = '{CANARY}', 's3.allow-http' = 'true'",
        moto.endpoint
    );
    let sql = format!(
        "SET 'execution.checkpointing.interval' = '200ms';\n\
         CREATE TABLE events (id BIGINT, amount BIGINT, note VARCHAR) WITH (\n\
           'connector' = 'kafka', 'topic' = 'events', 'format' = 'json',\n\
           'properties.bootstrap.servers' = '{}', 'scan.startup.mode' = 'earliest-offset',\n\
           'scan.bounded.mode' = 'latest-offset');\n\
         CREATE TABLE lake (id BIGINT, doubled BIGINT) WITH (\n\
           'connector' = 'filesystem', 'path' = 's3://lake/events', 'format' = 'parquet', {s3});\n\
         INSERT INTO lake SELECT id, amount * 2 FROM events WHERE amount % 10 <> 3;\n",
        mock.bootstrap
    );
    let data = dir.as_path().join("data");
    let m = MasterProcess::start(
        &data,
        &[
            "--restart-backoff-ms",
            "100",
            "--restart-backoff-max-ms",
            "400",
            "--max-restarts",
            "1000",
            "--allow-endpoint",
            &moto.endpoint,
        ],
    );
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "r1", "sql": sql, "resources": {"parallelism": 2}})),
    );
    assert_eq!(s, 201, "{v}");

    // Kill the running worker at seeded moments; time each recovery.
    let mut recoveries: Vec<u128> = Vec::new();
    let mut killed = 0;
    while killed < kills {
        let wait = rng.between(100, 700);
        std::thread::sleep(Duration::from_millis(wait));
        let job = m.get("/api/v1/jobs/r1");
        if job["state"] == "finished" {
            break;
        }
        match kill_running(&m, "r1") {
            None | Some(Kill::Refused) => continue,
            Some(Kill::Done(recovered)) => {
                killed += 1;
                recoveries.extend(recovered);
            }
        }
    }
    let job = m.wait_for(600, "the job to finish", || {
        let j = m.get("/api/v1/jobs/r1");
        (j["state"] == "finished" || j["state"] == "failed").then_some(j)
    });
    assert_eq!(job["state"], "finished", "{job}");
    assert!(
        killed >= kills.min(10),
        "only {killed} kills happened before the job finished (make the input larger)"
    );

    let keys = moto.keys("lake");
    assert!(
        keys.iter().all(|k| k.starts_with("events/part-")),
        "a staged or stray object is visible: {:?}",
        keys.iter()
            .filter(|k| !k.starts_with("events/part-"))
            .collect::<Vec<_>>()
    );
    assert_eq!(moto.open_multipart_uploads("lake"), 0);
    if std::env::var("SLUICE_R1_KEEP").is_ok() {
        std::fs::write(dir.join("keys.txt"), keys.join("\n")).unwrap();
    }
    // Every surviving id exactly once.
    let expected: Vec<i64> = (0..records).filter(|i| (i % 100) % 10 != 3).collect();
    let n = expected.len() as i64;
    let sum: i64 = expected.iter().sum();
    let doubled: i64 = expected.iter().map(|i| (i % 100) * 2).sum();
    let read = format!(
        "CREATE TABLE lake (id BIGINT, doubled BIGINT) WITH ('connector' = 'filesystem', 'path' = 's3://lake/events', 'format' = 'parquet', {s3});\n\
         SELECT COUNT(*) AS n, COUNT(DISTINCT id) AS ids, SUM(id) AS s, SUM(doubled) AS d, MIN(id) AS lo, MAX(id) AS hi FROM lake;\n"
    );
    let path = dir.as_path().join("read.sql");
    std::fs::write(&path, read).unwrap();
    let o = sluice(
        dir.as_path(),
        &["run", "--format", "csv", "--quiet", path.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o).lines().nth(1).unwrap_or_default().to_string();
    assert_eq!(
        line,
        format!(
            "{n},{n},{sum},{doubled},{},{}",
            expected[0],
            expected[expected.len() - 1]
        ),
        "count, distinct ids, sums, min, max"
    );

    // The manifest covers every partition up to its end.
    let commits = m.get("/api/v1/jobs/r1/commits");
    let last = commits["commits"].as_array().unwrap().last().unwrap();
    let mut ends = serde_json::Map::new();
    // The one source, under its stable id (`events@<options hash>#0`).
    let (key, events) = last["sources"].as_object().unwrap().iter().next().unwrap();
    assert!(key.starts_with("events@"), "{key}");
    for p in events["to"].as_array().unwrap() {
        ends.extend(p.as_object().unwrap().clone());
    }
    let total: i64 = ends.values().map(|v| v.as_i64().unwrap()).sum();
    assert_eq!(total, records, "{ends:?}");

    // R12, in part: the canary is in no API response or log.
    let job_text = m.get("/api/v1/jobs/r1").to_string();
    assert!(!job_text.contains(CANARY));
    assert!(!m.log().contains(CANARY), "the master log holds the secret");
    for inst in m.get("/api/v1/jobs/r1/instances").as_array().unwrap() {
        let id = inst["id"].as_str().unwrap();
        let (_, log) = m.request("GET", &format!("/api/v1/instances/{id}/logs"), None);
        assert!(
            !log.to_string().contains(CANARY),
            "a worker log holds the secret"
        );
    }
    // R12: nor in any file of the data directory — sled's files (the secret is sealed
    // at rest), instance requests, status files, logs, checkpoints.
    let files = walk(&data);
    assert!(files.iter().any(|f| f.starts_with(data.join("store"))));
    for e in files {
        let bytes = std::fs::read(&e).unwrap();
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "{e:?} holds the secret"
        );
    }
    // The job still shows where the secret is, redacted.
    assert!(
        job_text.contains("'s3.secret-access-key' = '******'"),
        "{job_text}"
    );

    recoveries.sort();
    if !recoveries.is_empty() {
        eprintln!(
            "r1: {records} records, {killed} kills (seed {seed:#x}), recovery p50 {} ms, p99 {} ms, max {} ms",
            percentile(&recoveries, 0.5),
            percentile(&recoveries, 0.99),
            recoveries[recoveries.len() - 1]
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Removes a directory when dropped (when there is one).
struct RemoveOnDrop(Option<std::path::PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// The README's Kafka → S3 example (`examples/kafka_to_s3.sql`) as a user runs it:
/// submitted to the master, with only the two addresses (and a shorter checkpoint
/// interval) replaced. Good records land in S3 once each with their partition and
/// offset; poison records (bad JSON, wrong types, invalid UTF-8) go to the dead-letter
/// files with their positions, without a restart.
#[test]
fn the_kafka_to_s3_example_runs_and_dead_letters_poison_records() {
    let mock = KafkaMock::start(env!("CARGO_BIN_EXE_kafka-mock"), &["clicks:4"]);
    let moto = Moto::start();
    moto.create_bucket("lake");
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &mock.bootstrap)
        .create()
        .unwrap();
    let good = 2000i64;
    let mut poison = 0;
    for i in 0..good {
        let url = if i % 10 == 0 { "/health" } else { "/page" };
        let value = format!(
            r#"{{"user_id": {i}, "url": "{url}/{i}", "ts": "2026-11-21 10:{:02}:{:02}.000"}}"#,
            (i / 60) % 60,
            i % 60
        );
        producer
            .send(
                BaseRecord::<str, str>::to("clicks")
                    .partition((i % 4) as i32)
                    .payload(&value),
            )
            .map_err(|(e, _)| e)
            .unwrap();
        if i % 100 == 7 {
            // 1 in 100: broken JSON, a wrong type, invalid UTF-8, in turn.
            let bad: Vec<u8> = match poison % 3 {
                0 => b"{\"user_id\": 1, \"url\": ".to_vec(),
                1 => br#"{"user_id": "not a number", "url": "/x", "ts": "2026-11-21 10:00:00"}"#
                    .to_vec(),
                _ => b"{\"user_id\": 5, \"url\": \"\xff\xfe\", \"ts\": \"2026-11-21 10:00:00\"}"
                    .to_vec(),
            };
            poison += 1;
            producer
                .send(
                    BaseRecord::<str, [u8]>::to("clicks")
                        .partition((i % 4) as i32)
                        .payload(&bad[..]),
                )
                .map_err(|(e, _)| e)
                .unwrap();
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let example =
        std::fs::read_to_string(sluice_tests::workspace_root().join("examples/kafka_to_s3.sql"))
            .unwrap();
    let sql = example
        .replace("127.0.0.1:9092", &mock.bootstrap)
        .replace("http://127.0.0.1:5055", &moto.endpoint)
        .replace("'5s'", "'200ms'");
    let m = MasterProcess::start_with_env(
        &dir.path().join("data"),
        &[
            "--allow-endpoint",
            &moto.endpoint,
            "--allow-ambient-credentials",
            &moto.endpoint,
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", CANARY),
        ],
    );
    // Relative paths in the SQL resolve against the master's directory: make the
    // dead-letter path absolute here.
    let dead = dir.path().join("dead");
    let sql = sql.replace(
        "'files/clicks-dead-letter'",
        &format!("'{}'", dead.display()),
    );
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "clicks-to-lake", "sql": sql, "resources": {"parallelism": 2}})),
    );
    assert_eq!(s, 201, "{v}");
    let expected = (0..good).filter(|i| i % 10 != 0).count() as u64;
    // Unbounded: wait until the commits cover every good record.
    m.wait_for(60, "every good record committed", || {
        let c = m.get("/api/v1/jobs/clicks-to-lake/commits");
        let last = c["commits"].as_array()?.last()?.clone();
        let mut total = 0;
        let clicks = last["sources"].as_object()?.values().next()?.clone();
        for p in clicks["to"].as_array()? {
            total += p
                .as_object()?
                .values()
                .filter_map(Value::as_i64)
                .sum::<i64>();
        }
        (total == good + poison).then_some(())
    });
    let job = m.wait_for(30, "the job to be running", || {
        let j = m.get("/api/v1/jobs/clicks-to-lake");
        (j["state"] == "running").then_some(j)
    });
    assert_eq!(job["restarts"], 0, "{job}");
    let job_text = job.to_string();
    assert!(!job_text.contains(CANARY));

    let read = format!(
        "CREATE TABLE lake (user_id BIGINT, url VARCHAR, ts TIMESTAMP(3), part INT, off BIGINT) WITH \
           ('connector' = 'filesystem', 'path' = 's3://lake/clicks', 'format' = 'parquet', \
            's3.endpoint' = '{}', 's3.region' = 'us-east-1', 's3.allow-http' = 'true', \
            's3.access-key-id' = 'test', 's3.secret-access-key' = 'x');\n\
         SELECT COUNT(*) AS n, COUNT(DISTINCT user_id) AS users, COUNT(DISTINCT part) AS parts, \
                SUM(CASE WHEN url LIKE '%/health%' THEN 1 ELSE 0 END) AS health FROM lake;\n",
        moto.endpoint
    );
    let path = dir.path().join("read.sql");
    std::fs::write(&path, read).unwrap();
    let o = sluice(
        dir.path(),
        &["run", "--format", "csv", "--quiet", path.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o).lines().nth(1).unwrap_or_default().to_string();
    assert_eq!(line, format!("{expected},{expected},4,0"));

    // Each poison record once in the dead-letter files, with its position.
    let mut lines = Vec::new();
    for e in std::fs::read_dir(&dead).unwrap().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap();
        lines.extend(text.lines().map(str::to_string));
    }
    assert_eq!(lines.len() as i64, poison, "{lines:?}");
    let mut positions: Vec<String> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
            v["position"].as_str().unwrap().to_string()
        })
        .collect();
    positions.sort();
    positions.dedup();
    assert_eq!(positions.len() as i64, poison);
    assert!(
        positions.iter().all(|p| p.starts_with("clicks/")),
        "{positions:?}"
    );
    // The instance's counters reach the master with its next heartbeat (every 500 ms):
    // the job may have committed everything before its first one.
    let inst = m.wait_for(
        10,
        "the instance's counters to include the poison records",
        || {
            let status = m.get("/api/v1/jobs/clicks-to-lake/instances");
            let inst = status.as_array()?.first()?.clone();
            (inst["rows_in"].as_i64()? >= good - good / 10).then_some(inst)
        },
    );
    assert_eq!(inst["bad_records"], poison, "{inst}");
    let (s, _) = m.request("DELETE", "/api/v1/jobs/clicks-to-lake", None);
    assert!(s == 200 || s == 204);
}

/// Produces `records` JSON records to `topic`, record `i` to partition `i % partitions`
/// with the value `value(i)`.
fn produce_json(bootstrap: &str, topic: &str, records: i64, value: impl Fn(i64) -> String) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    for i in 0..records {
        let value = value(i);
        let mut record = BaseRecord::<str, str>::to(topic)
            .partition((i % JOIN_PARTITIONS) as i32)
            .payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((e, r)) => {
                    assert!(format!("{e}").contains("Queue full"), "produce failed: {e}");
                    record = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).unwrap();
}

/// Partitions of each topic of the join job. (librdkafka's mock cluster keeps about
/// 5 MB a partition and drops the oldest records beyond: past about 60,000 of these
/// records a partition, i.e. ~950,000 in all, the recomputation no longer matches.)
const JOIN_PARTITIONS: i64 = 16;

/// R1 for a stateful job: an interval join of two Kafka streams (orders and their
/// payments, up to 2 s later in event time) feeding an unbounded aggregate per
/// customer, written to files. The worker is kill -9'd at 10 seeded moments
/// (`SLUICE_R1_KILLS`); each restart restores the join's held rows and the aggregate's
/// groups from the last checkpoint and the sources from its positions. The result
/// equals the recomputation (every order matched with its payment exactly once), and
/// the test prints the recovery times. `SLUICE_R1_JOIN_RECORDS` (orders; 450,000 by
/// default) and `SLUICE_R1_SEED` change the size and the schedule.
#[test]
fn r1_join_and_aggregate_recover_their_state_through_worker_kills() {
    join_and_aggregate_through_kills(
        env_or("SLUICE_R1_JOIN_RECORDS", 450_000) as i64,
        env_or("SLUICE_R1_KILLS", 10),
        2,
        1,
    );
}

/// The same over two processes of two workers (timely's cluster mode): event-time
/// barriers chosen from both processes' candidates, process 1's reports carried to
/// process 0, which writes the records; each kill takes the whole instance down.
#[test]
fn r1_join_and_aggregate_across_two_processes_recover_through_kills() {
    // (SLUICE_R1_MP_PROCESSES runs it over more processes, of 2 workers each.)
    let processes = env_or("SLUICE_R1_MP_PROCESSES", 2) as u32;
    join_and_aggregate_through_kills(
        env_or("SLUICE_R1_MP_RECORDS", 450_000) as i64,
        env_or("SLUICE_R1_MP_KILLS", 4),
        2 * processes,
        processes,
    );
}

fn join_and_aggregate_through_kills(records: i64, kills: u64, parallelism: u32, processes: u32) {
    let seed = env_or("SLUICE_R1_SEED", 0x5eed_0002);
    let mut rng = Rng(seed | 1);
    const CUSTOMERS: i64 = 101;
    let mock = KafkaMock::start(
        env!("CARGO_BIN_EXE_kafka-mock"),
        &[
            &format!("orders:{JOIN_PARTITIONS}"),
            &format!("payments:{JOIN_PARTITIONS}"),
        ],
    );
    // Order i at i ms of event time; its payment up to 499 ms later (out of order
    // within a partition by less than the 1 s watermark delay).
    let ts = |ms: i64| {
        (chrono::NaiveDate::from_ymd_opt(2026, 3, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            + chrono::Duration::milliseconds(ms))
        .format("%Y-%m-%d %H:%M:%S%.3f")
        .to_string()
    };
    produce_json(&mock.bootstrap, "orders", records, |i| {
        format!(
            r#"{{"id":{i},"customer":{},"amount":{},"ts":"{}"}}"#,
            i % CUSTOMERS,
            i % 1000,
            ts(i)
        )
    });
    produce_json(&mock.bootstrap, "payments", records, |i| {
        format!(
            r#"{{"order_id":{i},"paid":{},"ts":"{}"}}"#,
            i % 7,
            ts(i + (i * 7919) % 500)
        )
    });

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("totals");
    let kafka = |topic: &str| {
        format!(
            "'connector' = 'kafka', 'topic' = '{topic}', 'format' = 'json', \
             'properties.bootstrap.servers' = '{}', 'scan.startup.mode' = 'earliest-offset', \
             'properties.max.partition.fetch.bytes' = '4096', 'scan.bounded.mode' = 'latest-offset'",
            mock.bootstrap
        )
    };
    let sql = format!(
        "SET 'execution.checkpointing.interval' = '100ms';\n\
         CREATE TABLE orders (id BIGINT, customer BIGINT, amount BIGINT, ts TIMESTAMP(3),\n\
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ({});\n\
         CREATE TABLE payments (order_id BIGINT, paid BIGINT, ts TIMESTAMP(3),\n\
           WATERMARK FOR ts AS ts - INTERVAL '1' SECOND) WITH ({});\n\
         CREATE TABLE totals (customer BIGINT, orders BIGINT, amount BIGINT, paid BIGINT) WITH (\n\
           'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO totals SELECT o.customer, COUNT(*), SUM(o.amount), SUM(p.paid)\n\
           FROM orders o JOIN payments p ON o.id = p.order_id\n\
             AND p.ts BETWEEN o.ts AND o.ts + INTERVAL '2' SECOND\n\
           GROUP BY o.customer;\n",
        kafka("orders"),
        kafka("payments"),
        out.display()
    );
    let data = dir.path().join("data");
    let m = MasterProcess::start(
        &data,
        &[
            "--restart-backoff-ms",
            "100",
            "--restart-backoff-max-ms",
            "400",
            "--max-restarts",
            "1000",
        ],
    );
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "r1", "sql": sql,
                    "resources": {"parallelism": parallelism, "processes": processes}})),
    );
    assert_eq!(s, 201, "{v}");

    // Kill the running worker at seeded moments, once it has a checkpoint to restore
    // from; time each recovery.
    let mut recoveries: Vec<u128> = Vec::new();
    let mut killed = 0;
    let commits = || {
        m.get("/api/v1/jobs/r1/commits")["commits"]
            .as_array()
            .map_or(0, Vec::len)
    };
    let mut seen = 0;
    while killed < kills {
        // Once the running instance has written a checkpoint of its own, at a seeded
        // moment up to 200 ms later.
        let Some(()) = m.wait_for(60, "a checkpoint of the running instance", || {
            if m.get("/api/v1/jobs/r1")["state"] == "finished" {
                return Some(None);
            }
            (commits() > seen).then_some(Some(()))
        }) else {
            break;
        };
        std::thread::sleep(Duration::from_millis(rng.between(0, 200)));
        match kill_running(&m, "r1 join") {
            None | Some(Kill::Refused) => continue,
            Some(Kill::Done(recovered)) => {
                killed += 1;
                recoveries.extend(recovered);
            }
        }
        // The killed instance writes nothing more: the next commit is its successor's
        // (one its successor made before this point only delays the next kill).
        seen = commits();
    }
    let job = m.wait_for(600, "the job to finish", || {
        let j = m.get("/api/v1/jobs/r1");
        (j["state"] == "finished" || j["state"] == "failed").then_some(j)
    });
    assert_eq!(job["state"], "finished", "{job}");
    assert!(
        killed >= kills.min(10),
        "only {killed} kills happened before the job finished (make the input larger)"
    );
    // Checkpoints held state: the join's and the aggregate's snapshots.
    let commits = m.get("/api/v1/jobs/r1/commits");
    let runs: std::collections::BTreeSet<&str> = commits["commits"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["run"].as_str())
        .collect();
    assert!(
        runs.len() > kills.min(10) as usize,
        "checkpoints by {} runs only",
        runs.len()
    );
    assert!(
        commits["commits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["state"].as_object().is_some_and(|s| s.len() == 2)),
        "no checkpoint held operator state: {commits}"
    );

    // The recomputation: every order matches its own payment.
    let mut expected: std::collections::BTreeMap<i64, (i64, i64, i64)> = Default::default();
    for i in 0..records {
        let e = expected.entry(i % CUSTOMERS).or_default();
        e.0 += 1;
        e.1 += i % 1000;
        e.2 += i % 7;
    }
    let mut got: std::collections::BTreeMap<i64, (i64, i64, i64)> = Default::default();
    for e in std::fs::read_dir(&out).unwrap().flatten() {
        if !e.file_name().to_string_lossy().starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(e.path()).unwrap().lines().skip(1) {
            let v: Vec<i64> = line.split(',').map(|x| x.parse().unwrap()).collect();
            assert!(
                got.insert(v[0], (v[1], v[2], v[3])).is_none(),
                "customer {} written twice",
                v[0]
            );
        }
    }
    assert_eq!(got, expected, "the result differs from the recomputation");

    recoveries.sort();
    if !recoveries.is_empty() {
        eprintln!(
            "r1 join: {records} orders and payments, {killed} kills (seed {seed:#x}), recovery p50 {} ms, p99 {} ms, max {} ms",
            percentile(&recoveries, 0.5),
            percentile(&recoveries, 0.99),
            recoveries[recoveries.len() - 1]
        );
    }
}
