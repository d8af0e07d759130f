//! R2: a worker process that dies at each named point of the checkpoint and commit
//! protocol — after a sink write, at a checkpoint's start, after the checkpoint record
//! is written but before any commit, in the middle of the commit, after the commit —
//! is restarted by the master from its last checkpoint, and the output holds every row
//! exactly once with nothing left staged. The real `sluice serve`, real processes,
//! files on disk.

use serde_json::{json, Value};
use sluice_tests::{committed_ids, MasterProcess};
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
