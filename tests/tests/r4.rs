//! R4 (`shared/design/reliability.md`): a windowed aggregate over Kafka (librdkafka's
//! mock cluster, six partitions) runs at parallelism 2 with checkpoints, is stopped in
//! the middle, restored at parallelism 3, stopped again, restored at parallelism 1 and
//! run to the end. Its committed output equals an uninterrupted run's, row for row, and
//! the checkpoints it restored from held open windows (so state, not only positions,
//! was snapshotted and redistributed).

use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use sluice_catalogs::MemoryCatalog;
use sluice_compiler::instance::{is_record_name, CheckpointConfig, CheckpointRecord};
use sluice_connectors::{ObjectDir, Registry};
use sluice_dataflow::checkpoint::{all_records, barriers, Barriers};
use sluice_dataflow::{run, ExecutionError, Progress, RunOptions};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TOPIC: &str = "clicks";
const PARTITIONS: i32 = 6;
const RECORDS: u64 = 90_000;
const USERS: u64 = 37;

/// Record `i`: partition `i % 6`; event time 4 ms per record of its partition, so each
/// partition's times increase and the partitions advance together (the watermark
/// delay of 30 s is far more than the skew between partitions: no record is late).
fn produce(bootstrap: &str) {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let base = chrono::NaiveDate::from_ymd_opt(2026, 3, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap();
    for i in 0..RECORDS {
        let ts = base + chrono::Duration::milliseconds((i / PARTITIONS as u64 * 4) as i64);
        let value = format!(
            r#"{{"id":{i},"uid":{},"amount":{},"ts":"{}"}}"#,
            i % USERS,
            (i * 7919) % 1000,
            ts.format("%Y-%m-%d %H:%M:%S%.3f")
        );
        let mut record = BaseRecord::<[u8], [u8]>::to(TOPIC)
            .payload(value.as_bytes())
            .partition((i % PARTITIONS as u64) as i32);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn plan(bootstrap: &str, out: &Path) -> sluice_compiler::DataflowPlan {
    let sql = format!(
        "CREATE TABLE clicks (id BIGINT, uid BIGINT, amount BIGINT, ts TIMESTAMP(3), \
           WATERMARK FOR ts AS ts - INTERVAL '30' SECOND) WITH ('connector' = 'kafka', \
           'topic' = '{TOPIC}', 'properties.bootstrap.servers' = '{bootstrap}', \
           'properties.max.partition.fetch.bytes' = '2048', \
           'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', \
           'format' = 'json');\n\
         CREATE TABLE per_user (window_start TIMESTAMP(3), window_end TIMESTAMP(3), uid BIGINT, \
           clicks BIGINT, total BIGINT, top BIGINT) WITH ('connector' = 'filesystem', \
           'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO per_user SELECT window_start, window_end, uid, COUNT(*), SUM(amount), MAX(amount) \
           FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '2' SECOND)) \
           WHERE amount > 10 GROUP BY window_start, window_end, uid;\n",
        out.display()
    );
    sluice_compiler::compile(&sql, &MemoryCatalog::new(), &Registry::builtin())
        .unwrap_or_else(|e| panic!("{e}"))
        .plan
}

fn options(workers: usize, chk: &Path) -> RunOptions {
    RunOptions::new(Registry::builtin())
        .with_workers(workers)
        .with_batch_size(200)
        .with_checkpoint(CheckpointConfig {
            dir: chk.display().to_string(),
            interval_ms: 40,
        })
}

/// Every committed output line (the CSV header skipped), counted.
fn committed(dir: &Path) -> BTreeMap<String, usize> {
    let mut rows = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return rows;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(e.path()).unwrap().lines().skip(1) {
            *rows.entry(line.to_string()).or_default() += 1;
        }
    }
    rows
}

/// The newest record's epoch and how many snapshot objects it names.
fn newest(chk: &Path) -> Option<(u64, usize)> {
    let dir = ObjectDir::open(chk.to_str().unwrap()).ok()?;
    let name = dir
        .list()
        .ok()?
        .into_iter()
        .filter(|n| is_record_name(n))
        .max()?;
    let r: CheckpointRecord = serde_json::from_slice(&dir.get(&name).ok()??).ok()?;
    Some((r.epoch, r.state.values().map(Vec::len).sum()))
}

/// Runs at `workers` until a checkpoint after `after` holds window state and more than
/// `rows` result rows are committed, then stops the run (cancelled: its open epoch is
/// never committed). Returns that checkpoint's epoch, or `None` when the run ended
/// before the stopper saw such a checkpoint (a busy machine).
fn run_until_checkpoint(
    p: &sluice_compiler::DataflowPlan,
    workers: usize,
    chk: &Path,
    out: &Path,
    after: u64,
    rows: usize,
) -> Option<u64> {
    let progress = Arc::new(Progress::new());
    let ended = Arc::new(AtomicBool::new(false));
    let stopper = {
        let (progress, chk, out) = (progress.clone(), chk.to_path_buf(), out.to_path_buf());
        let ended = ended.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline && !ended.load(Ordering::SeqCst) {
                if let Some((epoch, states)) = newest(&chk) {
                    if epoch >= after + 2 && states > 0 && committed(&out).len() > rows {
                        progress.cancel();
                        return Some(epoch);
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            None
        })
    };
    let result = run(
        p,
        options(workers, chk).with_batch_size(50),
        progress.clone(),
    );
    ended.store(true, Ordering::SeqCst);
    let stopped_at = stopper.join().unwrap();
    if result.is_ok() && stopped_at.is_none() {
        return None;
    }
    assert!(
        matches!(result, Err(ExecutionError::Cancelled)),
        "the run at {workers} workers was to be stopped after checkpoint {after} + 2 with state \
         and over {rows} rows out, but ended with {result:?} (stopped at {stopped_at:?})"
    );
    assert_eq!(
        progress.snapshot().late_rows,
        0,
        "late rows would make runs differ"
    );
    stopped_at
}

#[test]
fn r4_windowed_aggregate_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    let cluster = MockCluster::new(2).unwrap();
    cluster.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    produce(&bootstrap);
    let dir = tempfile::tempdir().unwrap();

    // Uninterrupted, at parallelism 2 with checkpoints.
    let (out_a, chk_a) = (dir.path().join("a"), dir.path().join("chk-a"));
    let p = plan(&bootstrap, &out_a);
    assert_eq!(barriers(&p), Ok(Barriers::EventTime));
    let progress = Arc::new(Progress::new());
    run(&p, options(2, &chk_a), progress.clone()).unwrap();
    assert_eq!(progress.snapshot().late_rows, 0);
    let expected = committed(&out_a);
    let windows = RECORDS / PARTITIONS as u64 * 4 / 2000;
    assert!(
        expected.len() as u64 >= windows * USERS,
        "{} result rows for {windows} windows of {USERS} users",
        expected.len()
    );
    assert!(expected.values().all(|n| *n == 1));

    // Interrupted: 2 workers → stop → 3 workers → stop → 1 worker to the end. On a busy
    // machine a run may end before the stopper sees its checkpoint: try again afresh.
    let mut outcome = None;
    for attempt in 0..4 {
        let (out_b, chk_b) = (
            dir.path().join(format!("b{attempt}")),
            dir.path().join(format!("chk-b{attempt}")),
        );
        let p = plan(&bootstrap, &out_b);
        let Some(first) = run_until_checkpoint(&p, 2, &chk_b, &out_b, 0, 0) else {
            continue;
        };
        let partial = committed(&out_b).len();
        assert!(
            partial < expected.len(),
            "everything was committed before the stop"
        );
        // The second stop comes after the restored run emitted (and committed) windows,
        // so a snapshot taken after windows closed is restored too.
        let Some(second) = run_until_checkpoint(&p, 3, &chk_b, &out_b, first, partial) else {
            continue;
        };
        assert!(second > first && committed(&out_b).len() < expected.len());
        let progress = Arc::new(Progress::new());
        run(&p, options(1, &chk_b), progress.clone()).unwrap();
        assert_eq!(progress.snapshot().late_rows, 0);
        outcome = Some((out_b, chk_b));
        break;
    }
    let (out_b, chk_b) = outcome.expect("no attempt was stopped twice: the runs ended first");
    let got = committed(&out_b);
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<(&String, &usize)> = got
        .iter()
        .filter(|(k, n)| **n != 1 || !expected.contains_key(*k))
        .take(5)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "restored output differs: missing {missing:?}, extra or duplicated {extra:?}"
    );
    assert_eq!(got, expected);
    // Nothing staged remains; the last record (the input ended) holds no state, and
    // only the snapshots of the two newest checkpoints with state remain.
    assert_eq!(
        std::fs::read_dir(out_b.join("_staging"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    let dir = ObjectDir::open(chk_b.to_str().unwrap()).unwrap();
    let records = all_records(&dir).unwrap();
    let last = records.last().unwrap();
    assert!(last.state.is_empty() && last.barrier_time.is_none());
    let snapshots: Vec<String> = dir
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("state-"))
        .collect();
    let oldest_kept = records[records.len() - 3].epoch;
    assert!(
        snapshots
            .iter()
            .all(|n| n[6..26].parse::<u64>().unwrap() >= oldest_kept),
        "stale snapshots: {snapshots:?}"
    );
}
