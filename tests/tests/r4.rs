//! R4 (`shared/design/reliability.md`): a stateful job over Kafka (librdkafka's mock
//! cluster, six partitions) runs at parallelism 2 with checkpoints, is stopped in the
//! middle, restored at parallelism 3, stopped again, restored at parallelism 1 and run
//! to the end. Its committed output equals an uninterrupted run's, row for row, and the
//! checkpoints it restored from held operator state (so state, not only positions, was
//! snapshotted and redistributed) — for every snapshotted strategy: tumbling, hopping
//! (by pane) and session window aggregates (also over partitions far apart in event
//! time), the unbounded GROUP BY with COUNT(DISTINCT), the monotonic Top-N, the OVER
//! aggregate, and the symmetric hash join, unbounded and interval; and an updating
//! result written as
//! upserts into a keyed Kafka topic, whose compacted view equals an uninterrupted run's.

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
/// partition's times increase and the partitions advance together. The watermark delay
/// is 1 s: the event time is tracked per partition, so no record is late even when a
/// worker reads partitions at different paces (or after a rescale).
fn produce(bootstrap: &str) {
    produce_to(bootstrap, TOPIC, 0);
}

/// As [`produce`], into `topic`, with partition `p`'s event times `p * skew_ms` later.
fn produce_to(bootstrap: &str, topic: &str, skew_ms: i64) {
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
        let partition = (i % PARTITIONS as u64) as i64;
        let ts = base
            + chrono::Duration::milliseconds(
                (i / PARTITIONS as u64 * 4) as i64 + partition * skew_ms,
            );
        let value = format!(
            r#"{{"id":{i},"uid":{},"amount":{},"ts":"{}"}}"#,
            i % USERS,
            (i * 7919) % 1000,
            ts.format("%Y-%m-%d %H:%M:%S%.3f")
        );
        let mut record = BaseRecord::<[u8], [u8]>::to(topic)
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
    plan_with(bootstrap, out, "")
}

/// The job's plan, with `extra` statements after its own.
fn plan_with(bootstrap: &str, out: &Path, extra: &str) -> sluice_compiler::DataflowPlan {
    plan_of(bootstrap, TOPIC, "1", out, extra)
}

/// The job over `topic` with a watermark delay of `delay_s` seconds.
fn plan_of(
    bootstrap: &str,
    topic: &str,
    delay_s: &str,
    out: &Path,
    extra: &str,
) -> sluice_compiler::DataflowPlan {
    windowed_plan(bootstrap, topic, delay_s, TUMBLE, out, extra)
}

/// The 2-second tumbling window of the job.
const TUMBLE: &str = "TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '2' SECOND)";

/// The job with `window` (a window table function over `clicks`) for its window.
fn windowed_plan(
    bootstrap: &str,
    topic: &str,
    delay_s: &str,
    window: &str,
    out: &Path,
    extra: &str,
) -> sluice_compiler::DataflowPlan {
    let sql = format!(
        "{}\
         CREATE TABLE per_user (window_start TIMESTAMP(3), window_end TIMESTAMP(3), uid BIGINT, \
           clicks BIGINT, total BIGINT, top BIGINT) WITH ('connector' = 'filesystem', \
           'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO per_user SELECT window_start, window_end, uid, COUNT(*), SUM(amount), MAX(amount) \
           FROM TABLE({window}) \
           WHERE amount > 10 GROUP BY window_start, window_end, uid;\n{extra}",
        clicks_table(bootstrap, topic, delay_s),
        out.display()
    );
    sluice_compiler::compile(&sql, &MemoryCatalog::new(), &Registry::builtin())
        .unwrap_or_else(|e| panic!("{e}"))
        .plan
}

/// The `clicks` table over `topic`, event time `ts` with a watermark `delay_s` seconds
/// behind it.
fn clicks_table(bootstrap: &str, topic: &str, delay_s: &str) -> String {
    format!(
        "CREATE TABLE clicks (id BIGINT, uid BIGINT, amount BIGINT, ts TIMESTAMP(3), \
           WATERMARK FOR ts AS ts - INTERVAL '{delay_s}' SECOND) WITH ('connector' = 'kafka', \
           'topic' = '{topic}', 'properties.bootstrap.servers' = '{bootstrap}', \
           'properties.max.partition.fetch.bytes' = '2048', \
           'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', \
           'format' = 'json');\n"
    )
}

fn options(workers: usize, chk: &Path) -> RunOptions {
    RunOptions::new(Registry::builtin())
        .with_workers(workers)
        .with_batch_size(200)
        .with_checkpoint(CheckpointConfig {
            dir: chk.display().to_string(),
            interval_ms: 40,
            restore_from: None,
            retained: 2,
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

/// The newest record's epoch, how many snapshot objects it names, and whether some
/// operator's snapshot there is a chain (a full snapshot and deltas after it).
fn newest(chk: &Path) -> Option<(u64, usize, bool)> {
    let dir = ObjectDir::open(chk.to_str().unwrap()).ok()?;
    let name = dir
        .list()
        .ok()?
        .into_iter()
        .filter(|n| is_record_name(n))
        .max()?;
    let r: CheckpointRecord = serde_json::from_slice(&dir.get(&name).ok()??).ok()?;
    let chained = r.state_chains.values().flatten().any(|c| !c.is_empty());
    Some((r.epoch, r.state.values().map(Vec::len).sum(), chained))
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
    run_until(p, workers, chk, out, after, Some(rows), false)
}

/// [`run_until_checkpoint`]; with `rows` `None`, committed rows are not awaited (an
/// updating result is written once, at the end of the input); with `chained`, only a
/// checkpoint whose state is a chain of incremental snapshots stops the run.
fn run_until(
    p: &sluice_compiler::DataflowPlan,
    workers: usize,
    chk: &Path,
    out: &Path,
    after: u64,
    rows: Option<usize>,
    chained: bool,
) -> Option<u64> {
    let progress = Arc::new(Progress::new());
    let ended = Arc::new(AtomicBool::new(false));
    let stopper = {
        let (progress, chk, out) = (progress.clone(), chk.to_path_buf(), out.to_path_buf());
        let ended = ended.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline && !ended.load(Ordering::SeqCst) {
                if let Some((epoch, states, chain)) = newest(&chk) {
                    let enough = rows.is_none_or(|rows| committed(&out).len() > rows);
                    if epoch >= after + 2 && states > 0 && enough && (chain || !chained) {
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
    // The run ended before the stop took effect (the stopper may have fired just as it
    // finished): the caller tries again.
    if result.is_ok() {
        return None;
    }
    assert!(
        matches!(result, Err(ExecutionError::Cancelled)),
        "the run at {workers} workers was to be stopped after checkpoint {after} + 2 with state \
         and over {rows:?} rows out, but ended with {result:?} (stopped at {stopped_at:?})"
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
    // Each user clicks in every 2-second window.
    let windows = RECORDS / PARTITIONS as u64 * 4 / 2000;
    r4_windowed(TUMBLE, "tumble", windows * USERS);
}

/// As above over partitions 3 s apart in event time (more than the watermark delay):
/// a source worker's watermark is its slowest partition's, so a barrier is passed with
/// rows of later epochs in flight. (It once committed a window twice, one run in about
/// ten: a sink wrote rows past a barrier into the epoch before it.)
#[test]
fn r4_windowed_aggregate_over_partitions_far_apart_restores_and_equals_an_uninterrupted_run() {
    let windows = RECORDS / PARTITIONS as u64 * 4 / 2000;
    r4_windowed_skewed(TUMBLE, "tumble", windows * USERS, 3_000);
}

#[test]
fn r4_hop_window_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    // 2-second windows every second: each user in about twice as many windows.
    let windows = RECORDS / PARTITIONS as u64 * 4 / 1000;
    r4_windowed(
        "HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' SECOND, INTERVAL '2' SECOND)",
        "hop-by-pane",
        windows * USERS,
    );
}

#[test]
fn r4_session_window_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    // A user clicks every 24–28 ms; a session ends where a click was filtered out
    // (`amount > 10`: about 1 in 90), so each user has many sessions.
    r4_windowed(
        "SESSION(TABLE clicks PARTITION BY uid, DESCRIPTOR(ts), INTERVAL '40' MILLISECOND)",
        "session(",
        USERS * 5,
    );
}

/// R4 for a window aggregate over `window` (EXPLAIN PHYSICAL names `strategy`): an
/// uninterrupted run at 2 workers with at least `min_rows` result rows, and a run
/// stopped at 2, restored at 3, stopped, restored at 1 — the same rows, each once.
fn r4_windowed(window: &str, strategy: &str, min_rows: u64) {
    r4_windowed_skewed(window, strategy, min_rows, 0);
}

/// [`r4_windowed`] over partitions whose event times are `skew_ms` apart (partition
/// `p` runs `p * skew_ms` ahead).
fn r4_windowed_skewed(window: &str, strategy: &str, min_rows: u64, skew_ms: i64) {
    let cluster = MockCluster::new(2).unwrap();
    cluster.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    produce_to(&bootstrap, TOPIC, skew_ms);
    let dir = tempfile::tempdir().unwrap();
    let plan = |out: &Path| windowed_plan(&bootstrap, TOPIC, "1", window, out, "");

    // Uninterrupted, at parallelism 2 with checkpoints.
    let (out_a, chk_a) = (dir.path().join("a"), dir.path().join("chk-a"));
    let p = plan(&out_a);
    assert_eq!(barriers(&p), Ok(Barriers::EventTime));
    let explained = sluice_compiler::explain::explain_physical(&p.outputs[0].plan);
    assert!(explained.contains(strategy), "{explained}");
    let progress = Arc::new(Progress::new());
    run(&p, options(2, &chk_a), progress.clone()).unwrap();
    assert_eq!(progress.snapshot().late_rows, 0);
    let expected = committed(&out_a);
    assert!(
        expected.len() as u64 >= min_rows,
        "{} result rows, fewer than {min_rows}",
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
        let p = plan(&out_b);
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

/// State across a SQL change: the job is stopped after a checkpoint holding open
/// windows, its SQL gains a second statement (a new output reading the same topic), and
/// the changed job runs to the end. The plan says the window aggregate is kept and the
/// new read starts from the beginning — and so it runs: the aggregate's output equals
/// an uninterrupted run's row for row (no window lost the rows read before the change),
/// and the new output holds every matching record.
#[test]
fn a_sql_change_above_a_windowed_aggregate_keeps_its_state() {
    use sluice_compiler::state::{change_plan, Outcome};
    let cluster = MockCluster::new(2).unwrap();
    cluster.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    produce(&bootstrap);
    let dir = tempfile::tempdir().unwrap();
    let (out_a, chk_a) = (dir.path().join("a"), dir.path().join("chk-a"));
    run(
        &plan(&bootstrap, &out_a),
        options(2, &chk_a),
        Arc::new(Progress::new()),
    )
    .unwrap();
    let expected = committed(&out_a);
    let big_expected = (0..RECORDS).filter(|i| (i * 7919) % 1000 > 990).count();

    for attempt in 0..4 {
        let (out_b, chk_b, big) = (
            dir.path().join(format!("b{attempt}")),
            dir.path().join(format!("chk-b{attempt}")),
            dir.path().join(format!("big{attempt}")),
        );
        let before = plan(&bootstrap, &out_b);
        if run_until_checkpoint(&before, 2, &chk_b, &out_b, 0, 0).is_none() {
            continue;
        }
        assert!(committed(&out_b).len() < expected.len());
        let extra = format!(
            "CREATE TABLE big (id BIGINT, amount BIGINT) WITH ('connector' = 'filesystem', \
               'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
             INSERT INTO big SELECT id, amount FROM clicks WHERE amount > 990;\n",
            big.display()
        );
        let after = plan_with(&bootstrap, &out_b, &extra);
        let change = change_plan(&before, &after);
        let outcomes = |c: &[sluice_compiler::state::Change]| -> Vec<Outcome> {
            c.iter().map(|x| x.outcome).collect()
        };
        assert_eq!(outcomes(&change.operators), vec![Outcome::Kept]);
        assert_eq!(outcomes(&change.sources), vec![Outcome::Kept, Outcome::New]);
        let progress = Arc::new(Progress::new());
        run(&after, options(2, &chk_b), progress.clone()).unwrap();
        assert_eq!(progress.snapshot().late_rows, 0);
        let got = committed(&out_b);
        let differ: Vec<_> = expected
            .iter()
            .filter(|(k, n)| got.get(*k) != Some(*n))
            .take(5)
            .collect();
        assert!(
            differ.is_empty() && got.len() == expected.len(),
            "the kept aggregate's output differs from an uninterrupted run: {differ:?}"
        );
        let big_rows: usize = committed(&big).values().sum();
        assert_eq!(big_rows, big_expected);
        return;
    }
    panic!("no attempt was stopped after a checkpoint: the runs ended first");
}

/// Per-partition watermarks: partition `p`'s event times run `3p` seconds ahead of
/// partition 0's, more than the 1 s watermark delay. A source worker reading several
/// partitions tracks the event time per partition and takes the smallest, so no record
/// is late at 1, 2 or 3 workers (each deals the six partitions differently), and every
/// worker count gives the same output. (With one event time per worker, 59,078 rows
/// were dropped as late at 2 workers.)
#[test]
fn partitions_far_apart_in_event_time_make_no_record_late_at_any_worker_count() {
    const SKEWED: &str = "skewed";
    let cluster = MockCluster::new(2).unwrap();
    cluster.create_topic(SKEWED, PARTITIONS, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    produce_to(&bootstrap, SKEWED, 3_000);
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    for workers in [2, 1, 3] {
        let (out, chk) = (
            dir.path().join(format!("out{workers}")),
            dir.path().join(format!("chk{workers}")),
        );
        let p = plan_of(&bootstrap, SKEWED, "1", &out, "");
        let progress = Arc::new(Progress::new());
        run(&p, options(workers, &chk), progress.clone()).unwrap();
        assert_eq!(progress.snapshot().late_rows, 0, "at {workers} workers");
        let rows = committed(&out);
        assert!(!rows.is_empty() && rows.values().all(|n| *n == 1));
        outputs.push(rows);
    }
    assert_eq!(outputs[0], outputs[1], "2 workers vs 1");
    assert_eq!(outputs[0], outputs[2], "2 workers vs 3");
}

/// R4 for an unbounded aggregate (`GROUP BY` without a window, `COUNT(DISTINCT)`
/// included) over a table without a watermark (processing-time epochs): stopped after
/// checkpoints holding its groups at 2 workers, restored at 3, stopped again, restored
/// at 1 and run to the end, its committed result equals an uninterrupted run's.
#[test]
fn r4_unbounded_aggregate_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    r4_updating(
        "uid BIGINT, clicks BIGINT, total BIGINT, kinds BIGINT, top BIGINT",
        "SELECT uid, COUNT(*), SUM(amount), COUNT(DISTINCT amount % 7), MAX(amount) \
           FROM clicks WHERE amount > 10 GROUP BY uid",
        USERS,
    );
}

#[test]
fn r4_top_n_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    r4_updating(
        "uid BIGINT, amount BIGINT, id BIGINT",
        "SELECT uid, amount, id FROM (SELECT uid, amount, id, ROW_NUMBER() OVER \
           (PARTITION BY uid ORDER BY amount DESC, id) AS rn FROM clicks) WHERE rn <= 3",
        USERS * 3,
    );
}

#[test]
fn r4_outer_join_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    // Arranged (an outer join), checkpointed as its inputs and replayed at a restore.
    r4_updating(
        "a BIGINT, b BIGINT, total BIGINT",
        "SELECT a.id, b.id, a.amount + b.amount FROM clicks a LEFT JOIN clicks b ON a.id = b.id + 6",
        RECORDS,
    );
}

#[test]
fn r4_global_top_n_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    r4_updating(
        "id BIGINT, amount BIGINT",
        "SELECT id, amount FROM clicks ORDER BY amount DESC, id LIMIT 50",
        50,
    );
}

#[test]
fn r4_over_aggregate_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    // Checkpointed as its input, replayed at a restore.
    r4_updating(
        "uid BIGINT, id BIGINT, total BIGINT, n BIGINT",
        "SELECT uid, id, \
           SUM(amount) OVER (PARTITION BY uid ORDER BY id ROWS BETWEEN 3 PRECEDING AND CURRENT ROW), \
           COUNT(*) OVER (PARTITION BY uid ORDER BY id ROWS BETWEEN 3 PRECEDING AND CURRENT ROW) \
         FROM clicks WHERE id % 10 = 0",
        RECORDS / 10,
    );
}

/// R4 for operators rebuilt at a restore (`sluice_compiler::state::rebuilt_operators`):
/// a Top-N over an aggregate — the aggregate restores and re-emits its groups, the Top-N
/// keeps no checkpoint of its own and rebuilds its partitions from them.
#[test]
fn r4_top_n_over_an_aggregate_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    r4_updating(
        "uid BIGINT, total BIGINT",
        "SELECT uid, total FROM (SELECT uid, total, ROW_NUMBER() OVER \
           (PARTITION BY g ORDER BY total DESC, uid) AS rn FROM \
           (SELECT uid, uid % 5 AS g, SUM(amount) AS total FROM clicks GROUP BY uid)) \
           WHERE rn <= 2",
        10,
    );
}

/// R4 for an aggregate over an aggregate (the outer one rebuilt at a restore).
#[test]
fn r4_aggregate_over_an_aggregate_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    r4_updating(
        "k BIGINT, users BIGINT, total BIGINT",
        "SELECT uid % 7, COUNT(*), SUM(total) FROM \
           (SELECT uid, SUM(amount) AS total FROM clicks GROUP BY uid) GROUP BY uid % 7",
        7,
    );
}

/// R4 for an aggregate over an outer join: the join is checkpointed as its inputs and
/// re-emits its pairs at a restore, the aggregate rebuilds its groups from them.
#[test]
fn r4_aggregate_over_an_outer_join_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    r4_updating(
        "uid BIGINT, n BIGINT, matched BIGINT",
        "SELECT a.uid, COUNT(*), COUNT(b.id) FROM clicks a LEFT JOIN clicks b \
           ON a.id = b.id + 6 GROUP BY a.uid",
        USERS,
    );
}

/// R4 for incremental snapshots: an unbounded GROUP BY over 20,000 keys, of which each
/// checkpoint interval changes a few, snapshots deltas (the changed groups) after a full
/// snapshot; each stop waits for a record naming such a chain, so the restores at 3 and
/// at 1 worker read every old worker's full snapshot and deltas in order.
#[test]
fn r4_incremental_snapshots_restore_at_other_parallelism_and_equal_an_uninterrupted_run() {
    r4_updating_with(
        "k BIGINT, n BIGINT, total BIGINT",
        "SELECT id % 20000, COUNT(*), SUM(amount) FROM clicks GROUP BY id % 20000",
        20_000,
        true,
    );
}

/// R4 for a job with an updating result (written once, at the end of the input):
/// `INSERT INTO result <query>` over an unwatermarked clicks topic, with `columns` the
/// result table's; the uninterrupted result has `rows` rows.
fn r4_updating(columns: &str, query: &str, rows: u64) {
    r4_updating_with(columns, query, rows, false)
}

/// [`r4_updating`]; with `chained`, each stop waits for a checkpoint whose state is a
/// chain of incremental snapshots.
fn r4_updating_with(columns: &str, query: &str, rows: u64, chained: bool) {
    const PLAIN: &str = "plain";
    let cluster = MockCluster::new(2).unwrap();
    cluster.create_topic(PLAIN, PARTITIONS, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    produce_to(&bootstrap, PLAIN, 0);
    let plan = |out: &Path| {
        let sql = format!(
            "CREATE TABLE clicks (id BIGINT, uid BIGINT, amount BIGINT, ts TIMESTAMP(3)) \
               WITH ('connector' = 'kafka', 'topic' = '{PLAIN}', \
               'properties.bootstrap.servers' = '{bootstrap}', \
               'properties.max.partition.fetch.bytes' = '2048', \
               'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', \
               'format' = 'json');\n\
             CREATE TABLE result ({columns}) \
               WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
             INSERT INTO result {query};\n",
            out.display()
        );
        sluice_compiler::compile(&sql, &MemoryCatalog::new(), &Registry::builtin())
            .unwrap_or_else(|e| panic!("{e}"))
            .plan
    };
    let dir = tempfile::tempdir().unwrap();
    let (out_a, chk_a) = (dir.path().join("a"), dir.path().join("chk-a"));
    let p = plan(&out_a);
    assert_eq!(barriers(&p), Ok(Barriers::Epochs));
    run(&p, options(2, &chk_a), Arc::new(Progress::new())).unwrap();
    let expected = committed(&out_a);
    assert_eq!(expected.len() as u64, rows);
    for attempt in 0..4 {
        let (out_b, chk_b) = (
            dir.path().join(format!("b{attempt}")),
            dir.path().join(format!("chk-b{attempt}")),
        );
        let p = plan(&out_b);
        let Some(first) = run_until(&p, 2, &chk_b, &out_b, 0, None, chained) else {
            continue;
        };
        let Some(_) = run_until(&p, 3, &chk_b, &out_b, first, None, chained) else {
            continue;
        };
        run(&p, options(1, &chk_b), Arc::new(Progress::new())).unwrap();
        let got = committed(&out_b);
        // The first differences only: results have up to 90,000 rows.
        let missing: Vec<_> = expected
            .iter()
            .filter(|(r, n)| got.get(*r) != Some(n))
            .take(5)
            .collect();
        let extra: Vec<_> = got
            .iter()
            .filter(|(r, n)| expected.get(*r) != Some(n))
            .take(5)
            .collect();
        assert!(
            got == expected,
            "restored result differs from an uninterrupted run's: {} rows, {} expected; \
             expected but not so: {missing:?}; got instead: {extra:?}",
            got.len(),
            expected.len()
        );
        return;
    }
    panic!("no attempt was stopped twice: the runs ended first");
}

/// A self-join of the clicks stream, record `i` with record `i + 6` (the same
/// partition's next record, 4 ms later), under `on` besides the key: `INSERT INTO
/// pairs SELECT …` as a plan writing to `out`.
fn join_plan(bootstrap: &str, out: &Path, on: &str) -> sluice_compiler::DataflowPlan {
    let sql = format!(
        "{}\
         CREATE TABLE pairs (a BIGINT, b BIGINT, total BIGINT, ts TIMESTAMP(3)) WITH ( \
           'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO pairs SELECT a.id, b.id, a.amount + b.amount, a.ts FROM clicks a JOIN clicks b \
           ON a.id = b.id + 6{on};\n",
        clicks_table(bootstrap, TOPIC, "1"),
        out.display()
    );
    sluice_compiler::compile(&sql, &MemoryCatalog::new(), &Registry::builtin())
        .unwrap_or_else(|e| panic!("{e}"))
        .plan
}

/// R4 for a symmetric hash join (`on`: more of the join condition): an uninterrupted
/// run at 2 workers, then 2 → stop → 3 → stop → 1 over checkpoints holding both sides'
/// rows; the committed pairs are equal, each exactly once.
/// R4 for the symmetric join; with `chained`, each stop waits for a checkpoint whose
/// state is a chain of incremental snapshots (a full snapshot and deltas after it).
fn r4_join(on: &str, strategy: &str, chained: bool) {
    let cluster = MockCluster::new(2).unwrap();
    cluster.create_topic(TOPIC, PARTITIONS, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    produce(&bootstrap);
    let dir = tempfile::tempdir().unwrap();
    let (out_a, chk_a) = (dir.path().join("a"), dir.path().join("chk-a"));
    let p = join_plan(&bootstrap, &out_a, on);
    assert_eq!(barriers(&p), Ok(Barriers::EventTime));
    let explained = sluice_compiler::explain::explain_physical(&p.outputs[0].plan);
    assert!(explained.contains(strategy), "{explained}");
    run(&p, options(2, &chk_a), Arc::new(Progress::new())).unwrap();
    let expected = committed(&out_a);
    assert_eq!(expected.len() as u64, RECORDS - 6);
    assert!(expected.values().all(|n| *n == 1));
    for attempt in 0..4 {
        let (out_b, chk_b) = (
            dir.path().join(format!("b{attempt}")),
            dir.path().join(format!("chk-b{attempt}")),
        );
        let p = join_plan(&bootstrap, &out_b, on);
        let Some(first) = run_until(&p, 2, &chk_b, &out_b, 0, Some(0), chained) else {
            continue;
        };
        let partial = committed(&out_b).len();
        let Some(_) = run_until(&p, 3, &chk_b, &out_b, first, Some(partial), chained) else {
            continue;
        };
        assert!(committed(&out_b).len() < expected.len());
        run(&p, options(1, &chk_b), Arc::new(Progress::new())).unwrap();
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
        return;
    }
    panic!("no attempt was stopped twice: the runs ended first");
}

#[test]
fn r4_regular_join_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    r4_join("", "strategy=append-only", false);
}

/// The append-only join holds every row, so after a full snapshot it writes deltas
/// (the rows held since): restored through those chains at 3 and at 1 worker.
#[test]
fn r4_regular_join_restores_through_incremental_snapshots() {
    r4_join("", "strategy=append-only", true);
}

#[test]
fn r4_interval_join_restores_at_other_parallelism_and_equals_an_uninterrupted_run() {
    r4_join(
        " AND a.ts BETWEEN b.ts AND b.ts + INTERVAL '1' SECOND",
        "strategy=interval",
        false,
    );
}

/// The compacted view of `topic` (each key's last value; a tombstone removes the key)
/// and how many tombstones it held, read from the start to its end.
fn compacted(bootstrap: &str, topic: &str) -> (BTreeMap<String, String>, usize) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Message, Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("r4-read-{topic}"))
        .create()
        .unwrap();
    let meta = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in meta.topics()[0].partitions() {
        let (_, high) = consumer
            .fetch_watermarks(topic, p.id(), Duration::from_secs(10))
            .unwrap();
        assignment
            .add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
        ends.insert(p.id(), high);
    }
    consumer.assign(&assignment).unwrap();
    let (mut view, mut tombstones) = (BTreeMap::new(), 0);
    let mut read: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while ends
        .iter()
        .any(|(p, high)| read.get(p).copied().unwrap_or(0) < *high)
    {
        assert!(
            Instant::now() < deadline,
            "could not read {topic} to its end"
        );
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m.unwrap();
        read.insert(m.partition(), m.offset() + 1);
        let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
        match m.payload() {
            Some(v) => {
                view.insert(key, String::from_utf8(v.to_vec()).unwrap());
            }
            None => {
                view.remove(&key);
                tombstones += 1;
            }
        }
    }
    (view, tombstones)
}

/// R4 for an updating result written as upserts into a keyed Kafka topic (at least
/// once): stopped and restored 2 → 3 → 1 as above, the topic's compacted view (each
/// key's last message, tombstones deleting keys) equals an uninterrupted run's — the
/// restored aggregate state and the source positions agree, and a restore that writes
/// every live key again converges to the same rows.
#[test]
fn r4_upserts_into_kafka_restore_at_other_parallelism_and_equal_an_uninterrupted_run() {
    const PLAIN: &str = "plain";
    let cluster = MockCluster::new(2).unwrap();
    cluster.create_topic(PLAIN, PARTITIONS, 1).unwrap();
    let bootstrap = cluster.bootstrap_servers();
    produce_to(&bootstrap, PLAIN, 0);
    let plan = |topic: &str| {
        cluster.create_topic(topic, 3, 1).unwrap();
        let sql = format!(
            "CREATE TABLE clicks (id BIGINT, uid BIGINT, amount BIGINT, ts TIMESTAMP(3)) \
               WITH ('connector' = 'kafka', 'topic' = '{PLAIN}', \
               'properties.bootstrap.servers' = '{bootstrap}', \
               'properties.max.partition.fetch.bytes' = '2048', \
               'scan.startup.mode' = 'earliest-offset', 'scan.bounded.mode' = 'latest-offset', \
               'format' = 'json');\n\
             CREATE TABLE per_user (uid BIGINT, clicks BIGINT, total BIGINT) \
               WITH ('connector' = 'kafka', 'topic' = '{topic}', 'format' = 'json', \
               'properties.bootstrap.servers' = '{bootstrap}', 'sink.key.fields' = 'uid');\n\
             INSERT INTO per_user SELECT uid, COUNT(*), SUM(amount) FROM clicks \
               WHERE amount > 10 GROUP BY uid HAVING COUNT(*) % 3 <> 0;\n"
        );
        sluice_compiler::compile(&sql, &MemoryCatalog::new(), &Registry::builtin())
            .unwrap_or_else(|e| panic!("{e}"))
            .plan
    };
    let dir = tempfile::tempdir().unwrap();
    let p = plan("out-a");
    assert_eq!(barriers(&p), Ok(Barriers::Epochs));
    run(
        &p,
        options(2, &dir.path().join("chk-a")),
        Arc::new(Progress::new()),
    )
    .unwrap();
    let (expected, tombstones) = compacted(&bootstrap, "out-a");
    assert!(!expected.is_empty() && (expected.len() as u64) < USERS);
    assert!(tombstones > 0, "keys left the result on the way");
    for attempt in 0..4 {
        let topic = format!("out-b{attempt}");
        let chk = dir.path().join(format!("chk-b{attempt}"));
        let p = plan(&topic);
        let unused = dir.path().join("unused");
        let Some(first) = run_until(&p, 2, &chk, &unused, 0, None, false) else {
            continue;
        };
        let Some(_) = run_until(&p, 3, &chk, &unused, first, None, false) else {
            continue;
        };
        run(&p, options(1, &chk), Arc::new(Progress::new())).unwrap();
        let (got, _) = compacted(&bootstrap, &topic);
        assert_eq!(
            got, expected,
            "the restored job's topic differs from an uninterrupted run's"
        );
        return;
    }
    panic!("no attempt was stopped twice: the runs ended first");
}
