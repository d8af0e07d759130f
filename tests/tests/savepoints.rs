//! R5, stop with a savepoint: a job checkpointing every 100 ms (so a checkpoint is
//! nearly always in flight) is stopped with `sluice job stop --savepoint`, its savepoint
//! is listed over REST, and `sluice job start --from-savepoint` resumes it there: no
//! record is written twice and none is lost. The real `sluice serve`, its CLI, real
//! worker processes, files on disk.

use serde_json::json;
use sluice_tests::{committed_ids, stdout, MasterProcess};

#[test]
fn stop_with_a_savepoint_then_start_from_it_writes_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    let sql = format!(
        "SET 'execution.checkpointing.interval' = '100ms';\n\
         CREATE TABLE src (id BIGINT, v BIGINT) WITH ('connector' = 'datagen', \
           'rows-per-second' = '500', 'fields.id.kind' = 'sequence', 'fields.id.min' = '1', \
           'fields.v.min' = '0', 'fields.v.max' = '9');\n\
         CREATE TABLE dst (id BIGINT, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', \
           'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO dst SELECT id, v FROM src;\n",
        out.display()
    );
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "sp", "sql": sql, "resources": {"parallelism": 2}})),
    );
    assert_eq!(s, 201, "{v}");
    m.wait_for(60, "committed output", || {
        (committed_ids(&out).len() > 300).then_some(())
    });

    let o = m.cli(&["job", "stop", "sp", "--savepoint"]);
    let text = stdout(&o);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let epoch: u64 = text
        .split("with savepoint ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no savepoint epoch in: {text}"));
    let job = m.get("/api/v1/jobs/sp");
    assert_eq!(job["desired_state"], "stopped", "{job}");
    let listed = m.get("/api/v1/jobs/sp/savepoints");
    let sp = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["epoch"] == epoch)
        .unwrap_or_else(|| panic!("savepoint {epoch} not listed: {listed}"))
        .clone();
    assert_eq!(sp["job_version"], 1, "{sp}");
    // Stopped at the savepoint: what is committed is exactly what it covers.
    let at_stop = committed_ids(&out);
    assert!(at_stop.values().all(|n| *n == 1));
    let last = *at_stop.keys().max().unwrap();

    // An unknown savepoint is refused.
    let (s, v) = m.request(
        "PATCH",
        "/api/v1/jobs/sp",
        Some(json!({"desired_state": "running", "from_savepoint": 999_999})),
    );
    assert_eq!(s, 404, "{v}");

    let o = m.cli(&["job", "start", "sp", "--from-savepoint", &epoch.to_string()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    m.wait_for(60, "output after the restart", || {
        let ids = committed_ids(&out);
        (ids.keys().filter(|id| **id > last + 500).count() > 100).then_some(())
    });
    let ids = committed_ids(&out);
    let twice: Vec<_> = ids.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "written twice: {twice:?}");
    let missing: Vec<i64> = (1..=last + 500)
        .filter(|i| !ids.contains_key(i))
        .take(5)
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    // The new instance says where it started.
    let log = m.newest_instance_log("sp");
    assert!(
        log.contains(&format!("restored from savepoint {epoch}")),
        "{log}"
    );

    // A savepoint is deleted on request; once only.
    let path = format!("/api/v1/jobs/sp/savepoints/{epoch}");
    assert_eq!(m.request("DELETE", &path, None).0, 204);
    assert_eq!(m.get("/api/v1/jobs/sp/savepoints"), json!([]));
    assert_eq!(m.request("DELETE", &path, None).0, 404);

    // A job without a checkpoint yet is not stopped: there would be nothing to keep.
    let slow = sql.replace("'100ms'", "'1h'").replace(
        &out.display().to_string(),
        &dir.path().join("out2").display().to_string(),
    );
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "fresh", "sql": slow})),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = m.request("POST", "/api/v1/jobs/fresh/savepoints", None);
    assert_eq!(s, 409, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("no checkpoint yet"),
        "{v}"
    );
    assert_eq!(m.get("/api/v1/jobs/fresh")["desired_state"], "running");

    // Both jobs deleted, no worker process outlives the test.
    for job in ["fresh", "sp"] {
        let (s, v) = m.request("DELETE", &format!("/api/v1/jobs/{job}"), None);
        assert!(s == 200 || s == 202 || s == 204, "{s} {v}");
    }
    m.wait_for(60, "every instance to stop", || {
        m.get("/api/v1/instances?live=true")
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    });
}

/// A savepoint of a running job (`sluice job savepoint`): the job goes on, its instance
/// no longer prunes the savepoint's snapshots (before, they were deleted two
/// checkpoints later and the savepoint could not be restored), and a new version of the
/// job started from it keeps the aggregate's state: its result equals the golden one.
#[test]
fn a_savepoint_of_a_running_job_keeps_its_snapshots_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let (out, out2) = (dir.path().join("out"), dir.path().join("out2"));
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    let sql = |out: &std::path::Path| {
        format!(
            "SET 'execution.checkpointing.interval' = '100ms';\n\
             CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', \
               'number-of-rows' = '6000', 'rows-per-second' = '1500', \
               'fields.id.kind' = 'sequence', 'fields.id.min' = '1');\n\
             CREATE TABLE dst (k BIGINT, n BIGINT, s BIGINT) WITH ('connector' = 'filesystem', \
               'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
             INSERT INTO dst SELECT id % 10, COUNT(*), SUM(id) FROM src GROUP BY id % 10;\n",
            out.display()
        )
    };
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "live", "sql": sql(&out), "resources": {"parallelism": 2}})),
    );
    assert_eq!(s, 201, "{v}");
    let commits = || m.get("/api/v1/jobs/live/commits");
    m.wait_for(60, "a checkpoint holding state", || {
        commits()["commits"]
            .as_array()?
            .iter()
            .any(|c| c["state"].as_object().is_some_and(|s| !s.is_empty()))
            .then_some(())
    });
    let o = m.cli(&["job", "savepoint", "live"]);
    let text = stdout(&o);
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let epoch: u64 = text
        .split("savepoint ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no savepoint epoch in: {text}"));
    assert_eq!(m.get("/api/v1/jobs/live")["desired_state"], "running");
    // Four more checkpoints: beyond the two retained, so a prune has passed it.
    m.wait_for(60, "four more checkpoints", || {
        let c = commits();
        let newest = c["commits"].as_array()?.last()?["epoch"].as_u64()?;
        (newest >= epoch + 4 || m.get("/api/v1/jobs/live")["state"] == "finished").then_some(())
    });
    let job = m.wait_for(120, "the job to finish", || {
        let j = m.get("/api/v1/jobs/live");
        (j["state"] == "finished" || j["state"] == "failed").then_some(j)
    });
    assert_eq!(job["state"], "finished", "{job}");
    let newest = commits()["commits"].as_array().unwrap().last().unwrap()["epoch"]
        .as_u64()
        .unwrap();
    assert!(
        newest >= epoch + 4,
        "the job ended too soon after the savepoint"
    );
    let golden: Vec<String> = {
        let mut g: Vec<String> = (0..10)
            .map(|k| {
                let ids: Vec<i64> = (1..=6000).filter(|i| i % 10 == k).collect();
                format!("{k},{},{}", ids.len(), ids.iter().sum::<i64>())
            })
            .collect();
        g.sort();
        g
    };
    let result = |dir: &std::path::Path| {
        let mut rows: Vec<String> = Vec::new();
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_name().to_string_lossy().starts_with("part-") {
                let text = std::fs::read_to_string(e.path()).unwrap();
                rows.extend(text.lines().skip(1).map(str::to_string));
            }
        }
        rows.sort();
        rows
    };
    assert_eq!(result(&out), golden);
    // A new version writing elsewhere, from the savepoint: the aggregate's groups as
    // they were there, the rest of the input after it.
    let (s, v) = m.request(
        "PATCH",
        "/api/v1/jobs/live",
        Some(json!({"sql": sql(&out2), "desired_state": "running", "from_savepoint": epoch})),
    );
    assert_eq!(s, 200, "{v}");
    let job = m.wait_for(120, "the new version to finish", || {
        let j = m.get("/api/v1/jobs/live");
        (j["version"].as_u64() > Some(1) && (j["state"] == "finished" || j["state"] == "failed"))
            .then_some(j)
    });
    assert_eq!(job["state"], "finished", "{job}");
    let log = m.newest_instance_log("live");
    assert!(
        log.contains(&format!("restored from savepoint {epoch}")),
        "{log}"
    );
    assert_eq!(result(&out2), golden);
    let (s, v) = m.request("DELETE", "/api/v1/jobs/live", None);
    assert!(s == 200 || s == 202 || s == 204, "{s} {v}");
}
