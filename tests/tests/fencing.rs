//! Fencing: two masters over copies of one data directory run the same job against the
//! same checkpoint store (`--checkpoint-store`), as after a stale standby is started
//! from a backup or a partitioned host comes back. Each checkpoint epoch is decided by
//! one instance only (its record is created only if the epoch is free), so the other
//! instance stops without committing, its master marks the job failed with the reason
//! and does not restart it, and the output holds every row exactly once. The real
//! `sluice serve` (twice), real worker processes, files on disk.

use serde_json::{json, Value};
use sluice_tests::{committed_ids, MasterProcess};
use std::path::Path;

const ROWS: i64 = 30_000;

fn job_sql(out: &Path) -> String {
    format!(
        "SET 'execution.checkpointing.interval' = '100ms';\n\
         CREATE TABLE src (id BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '{ROWS}', \
           'rows-per-second' = '3000', 'fields.id.kind' = 'sequence', 'fields.id.min' = '1', \
           'fields.v.min' = '0', 'fields.v.max' = '9');\n\
         CREATE TABLE dst (id BIGINT, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO dst SELECT id, v FROM src;\n",
        out.display()
    )
}

fn copy_dir(from: &Path, to: &Path) {
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_second_master_over_a_copied_data_directory_never_duplicates_output() {
    let dir = tempfile::tempdir().unwrap();
    let (out, chk) = (dir.path().join("out"), dir.path().join("checkpoints"));
    let (d1, d2) = (dir.path().join("a"), dir.path().join("b"));
    let chk_flag = chk.to_str().unwrap().to_string();
    let flags = [
        "--checkpoint-store",
        chk_flag.as_str(),
        "--restart-backoff-ms",
        "200",
    ];
    let mut a = MasterProcess::start(&d1, &flags);
    let (s, v) = a.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "fenced", "sql": job_sql(&out), "resources": {"parallelism": 2}})),
    );
    assert_eq!(s, 201, "{v}");
    let job_id = a.get("/api/v1/jobs/fenced")["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Running, with a few checkpoints in the shared store.
    // In a shared store, `<data directory id>-<job id>`.
    let suffix = format!("-{job_id}");
    a.wait_for(60, "three checkpoints", || {
        let job_dir = std::fs::read_dir(&chk)
            .ok()?
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(&suffix))?
            .path();
        let n = std::fs::read_dir(job_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("chk-"))
                    .count()
            })
            .unwrap_or(0);
        (n >= 3).then_some(())
    });
    // The master dies (its instance runs on); its data directory is copied; both
    // masters start, each over its own copy.
    a.kill9();
    copy_dir(&d1, &d2);
    let a = MasterProcess::start(&d1, &flags);
    let b = MasterProcess::start(&d2, &flags);
    let state = |m: &MasterProcess| m.get("/api/v1/jobs/fenced");
    let (ja, jb) = a.wait_for(120, "both masters to settle the job", || {
        let (ja, jb) = (state(&a), state(&b));
        let done = |j: &Value| j["state"] == "finished" || j["state"] == "failed";
        (done(&ja) && done(&jb)).then_some((ja, jb))
    });
    let states = [ja["state"].as_str().unwrap(), jb["state"].as_str().unwrap()];
    assert!(
        states.contains(&"finished") && states.contains(&"failed"),
        "a: {ja}\nb: {jb}"
    );
    let failed = if ja["state"] == "failed" { &ja } else { &jb };
    let reason = failed["state_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("superseded") && reason.contains("another instance"),
        "{failed}"
    );
    // The fenced master did not restart its instance.
    let loser = if ja["state"] == "failed" { &a } else { &b };
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(state(loser)["state"], "failed");
    let instances = loser.get("/api/v1/jobs/fenced/instances");
    let live = instances
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["state"] == "running" || i["state"] == "starting")
        .count();
    assert_eq!(live, 0, "{instances}");
    // Every row exactly once.
    let ids = committed_ids(&out);
    let missing = (1..=ROWS).filter(|i| !ids.contains_key(i)).count();
    let dup: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(dup.is_empty(), "duplicates {dup:?}");
    assert_eq!(missing, 0, "{missing} ids lost");
}
