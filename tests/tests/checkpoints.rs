//! R2: a worker process that dies at each named point of the checkpoint and commit
//! protocol — after a sink write, at a checkpoint's start, after the checkpoint record
//! is written but before any commit, in the middle of the commit, after the commit —
//! is restarted by the master from its last checkpoint, and the output holds every row
//! exactly once with nothing left staged. R3: a stateful job (a join feeding an
//! aggregate) whose worker dies while processing, while writing a state snapshot, or
//! whose restore fails once, ends with the golden result. The real `sluice serve`,
//! real processes, files on disk.

use serde_json::{json, Value};
use sluice_tests::{
    committed_csv_lines, committed_ids, golden_group_totals, join_aggregate_sql, MasterProcess,
};
use std::path::Path;
use std::time::Duration;

const ROWS: i64 = 12_000;

fn job_sql(out: &Path) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '100ms';\n\
         CREATE TABLE src (id BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '{ROWS}', \
           'rows-per-second' = '6000', 'fields.id.kind' = 'sequence', 'fields.id.min' = '1', \
           'fields.v.min' = '0', 'fields.v.max' = '9');\n\
         CREATE TABLE dst (id BIGINT, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO dst SELECT id, v FROM src;\n",
        out.display()
    )
}

fn crash_at(point: &str, skip: u32) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let marker = dir.path().join("fired");
    let skip = skip.to_string();
    let m = MasterProcess::start_with_env(
        &dir.path().join("data"),
        &["--restart-backoff-ms", "200"],
        &[
            ("SLUICE_FAILPOINT", point),
            ("SLUICE_FAILPOINT_ONCE", marker.to_str().unwrap()),
            ("SLUICE_FAILPOINT_SKIP", &skip),
        ],
    );
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "r2", "sql": job_sql(&out), "resources": {"parallelism": 2}})),
    );
    assert_eq!(s, 201, "{v}");
    let job: Value = m.wait_for(90, &format!("the job to finish ({point})"), || {
        let j = m.get("/api/v1/jobs/r2");
        (j["state"] == "finished" || j["state"] == "failed").then_some(j)
    });
    assert_eq!(job["state"], "finished", "{point}: {job}");
    assert!(marker.exists(), "{point}: the failpoint never fired");
    assert_eq!(job["restarts"], 1, "{point}: {job}");
    let ids = committed_ids(&out);
    let missing = (1..=ROWS).filter(|i| !ids.contains_key(i)).count();
    let dup: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert_eq!(missing, 0, "{point}: {missing} ids lost");
    assert!(dup.is_empty(), "{point}: duplicates {dup:?}");
    assert_eq!(ids.len() as i64, ROWS);
    let staged = std::fs::read_dir(out.join("_staging"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(staged, 0, "{point}: staged parts left behind");
    // The instance that crashed says where it was restored from.
    let log = m.newest_instance_log("r2");
    assert!(
        log.contains("restored from checkpoint") || point == "sink.after_write",
        "{point}: {log}"
    );
    // The manifest: one entry per checkpoint, epochs consecutive from 1.
    let commits = m.get("/api/v1/jobs/r2/commits");
    let epochs: Vec<u64> = commits["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["epoch"].as_u64().unwrap())
        .collect();
    assert!(!epochs.is_empty());
    assert!(
        epochs.windows(2).all(|w| w[1] == w[0] + 1),
        "{point}: {epochs:?}"
    );
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn r2_crash_after_a_sink_write() {
    crash_at("sink.after_write", 5);
}

#[test]
fn r2_crash_at_checkpoint_start() {
    crash_at("checkpoint.start", 3);
}

#[test]
fn r2_crash_after_the_checkpoint_before_the_commit() {
    crash_at("checkpoint.before_commit", 3);
}

#[test]
fn r2_crash_in_the_middle_of_a_commit() {
    crash_at("commit.mid", 4);
}

#[test]
fn r2_crash_after_the_commit_before_it_is_acknowledged() {
    crash_at("commit.after", 4);
}

/// R3: the stateful job with the failpoint `point` (passed `skip` times, then fired
/// once); with `kill_first`, the instance is first killed after a checkpoint holding
/// state, so that the next one restores (and `point` can fail the restore). The
/// output equals the golden result and the job restarted as often as it failed.
fn stateful_failure_at(point: &str, skip: u32, kill_first: bool) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let marker = dir.path().join("fired");
    let skip = skip.to_string();
    let m = MasterProcess::start_with_env(
        &dir.path().join("data"),
        &["--restart-backoff-ms", "200"],
        &[
            ("SLUICE_FAILPOINT", point),
            ("SLUICE_FAILPOINT_ONCE", marker.to_str().unwrap()),
            ("SLUICE_FAILPOINT_SKIP", &skip),
        ],
    );
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "r3", "sql": join_aggregate_sql(&out, ROWS, 6000), "resources": {"parallelism": 2}})),
    );
    assert_eq!(s, 201, "{v}");
    if kill_first {
        let id: String = m.wait_for(60, "a checkpoint holding state", || {
            let commits = m.get("/api/v1/jobs/r3/commits");
            let stateful = commits["commits"].as_array()?.iter().any(|c| {
                c["state"]
                    .as_object()
                    .is_some_and(|s| s.values().any(|b| b.as_u64() > Some(100)))
            });
            let instances = m.get("/api/v1/jobs/r3/instances");
            let live = instances
                .as_array()?
                .iter()
                .find(|i| i["state"] == "running")?;
            stateful.then(|| live["id"].as_str().unwrap().to_string())
        });
        let (s, v) = m.request("POST", &format!("/api/v1/instances/{id}/kill"), None);
        assert!(s == 200 || s == 202, "{s} {v}");
    }
    let job: Value = m.wait_for(120, &format!("the job to finish ({point})"), || {
        let j = m.get("/api/v1/jobs/r3");
        (j["state"] == "finished" || j["state"] == "failed").then_some(j)
    });
    assert_eq!(job["state"], "finished", "{point}: {job}");
    assert!(marker.exists(), "{point}: the failpoint never fired");
    let restarts = if kill_first { 2 } else { 1 };
    assert_eq!(job["restarts"], restarts, "{point}: {job}");
    let log = m.newest_instance_log("r3");
    assert!(log.contains("restored from checkpoint"), "{point}: {log}");
    assert_eq!(
        committed_csv_lines(&out),
        golden_group_totals(ROWS, 10),
        "{point}"
    );
}

#[test]
fn r3_failure_while_processing_a_stateful_job() {
    stateful_failure_at("join.step", 300, false);
}

#[test]
fn r3_failure_during_a_state_snapshot() {
    stateful_failure_at("state.snapshot", 6, false);
}

#[test]
fn r3_a_restore_that_fails_once() {
    stateful_failure_at("state.restore", 0, true);
}

/// Incremental snapshots through the master: an unbounded GROUP BY over 3,000 keys,
/// once every key exists, touches a tenth of them per checkpoint interval and writes
/// deltas (only the changed groups, so smaller than the full snapshot starting their
/// chain). Once a record names such a chain the worker is killed: the restarted
/// instance restores each worker's chain (the full snapshot, then each delta in order)
/// and the result equals the golden one. (R4 restores chains at other worker counts.)
#[test]
fn incremental_snapshots_restore_through_their_chain_after_a_kill() {
    const KEYS: i64 = 3_000;
    const ROWS: i64 = 30_000;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("out");
    let m = MasterProcess::start(&data, &["--restart-backoff-ms", "200"]);
    let sql = format!(
        "SET 'execution.checkpointing.interval' = '100ms';\n\
         CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', \
           'number-of-rows' = '{ROWS}', 'rows-per-second' = '3000', \
           'fields.id.kind' = 'sequence', 'fields.id.min' = '1');\n\
         CREATE TABLE totals (k BIGINT, n BIGINT, s BIGINT) WITH ('connector' = 'filesystem', \
           'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO totals SELECT id % {KEYS}, COUNT(*), SUM(id) FROM src GROUP BY id % {KEYS};\n",
        out.display()
    );
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "inc", "sql": sql, "resources": {"parallelism": 2}})),
    );
    assert_eq!(s, 201, "{v}");
    // A record whose state is a chain of a full snapshot and deltas after it, each
    // delta smaller than the full snapshot.
    m.wait_for(
        60,
        "a checkpoint record naming a chain of smaller deltas",
        || {
            walk(&data).into_iter().find(|p| {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                if !(name.starts_with("chk-") && name.ends_with(".json")) {
                    return false;
                }
                let Some(r) = std::fs::read(p)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                else {
                    return false;
                };
                let size = |name: &Value| {
                    name.as_str()
                        .and_then(|n| std::fs::metadata(p.with_file_name(n)).ok())
                        .map_or(u64::MAX, |m| m.len())
                };
                let Some(chains) = r["state_chains"].as_object() else {
                    return false;
                };
                chains.iter().any(|(op, workers)| {
                    workers
                        .as_array()
                        .into_iter()
                        .flatten()
                        .enumerate()
                        .any(|(w, chain)| {
                            let chain = chain.as_array().cloned().unwrap_or_default();
                            chain.len() >= 2 && {
                                let full = size(&chain[0]);
                                chain[1..]
                                    .iter()
                                    .chain([&r["state"][op][w]])
                                    .all(|d| size(d) < full)
                            }
                        })
                })
            })
        },
    );
    let id: String = m.wait_for(10, "the running instance", || {
        let instances = m.get("/api/v1/jobs/inc/instances");
        let live = instances
            .as_array()?
            .iter()
            .find(|i| i["state"] == "running")?;
        live["id"].as_str().map(str::to_string)
    });
    let (s, v) = m.request("POST", &format!("/api/v1/instances/{id}/kill"), None);
    assert!(s == 200 || s == 202, "{s} {v}");
    let job: Value = m.wait_for(120, "the restarted job to finish", || {
        let j = m.get("/api/v1/jobs/inc");
        (j["state"] == "finished" || j["state"] == "failed").then_some(j)
    });
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(job["restarts"], 1, "{job}");
    let log = m.newest_instance_log("inc");
    assert!(log.contains("restored from checkpoint"), "{log}");
    let expected = golden_group_totals(ROWS, KEYS);
    let got = committed_csv_lines(&out);
    let missing: Vec<&String> = expected
        .iter()
        .filter(|e| !got.contains(e))
        .take(5)
        .collect();
    let extra: Vec<&String> = got
        .iter()
        .filter(|g| !expected.contains(g))
        .take(5)
        .collect();
    assert!(
        got == expected,
        "the restored result differs from the golden one: {} rows for {} keys; missing {missing:?}, unexpected {extra:?}",
        got.len(),
        expected.len()
    );
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
