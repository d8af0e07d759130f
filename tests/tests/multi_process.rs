//! One job over several processes (`resources.processes`): the real `sluice serve`
//! starts an instance of parallelism 4 as 2 `sluice-worker` processes of 2 threads
//! connected by timely's cluster mode; process 0 leads the checkpoints. Killing the
//! *other* process (as a crash would) fails the whole instance, the watchdog restarts it
//! from its checkpoint, and the output holds the golden result: every row once. A job
//! that names no process count gets the fewest within `--local-threads-per-process`.

use serde_json::{json, Value};
use sluice_tests::{committed_csv_lines, golden_group_totals, join_aggregate_sql, MasterProcess};
use std::path::Path;

const ROWS: i64 = 12_000;

/// The logs of every instance's processes other than process 0.
fn peer_logs(data: &Path) -> String {
    let mut text = String::new();
    for e in std::fs::read_dir(data.join("instances"))
        .into_iter()
        .flatten()
        .flatten()
    {
        for p in std::fs::read_dir(e.path()).into_iter().flatten().flatten() {
            if let Ok(log) = std::fs::read_to_string(p.path().join("worker.log")) {
                text.push_str(&format!("--- {}\n{log}", p.path().display()));
            }
        }
    }
    text
}

#[test]
fn a_job_over_two_processes_restores_after_one_is_killed_with_every_row_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let m = MasterProcess::start(&dir.path().join("data"), &["--restart-backoff-ms", "200"]);
    // The processes must divide the parallelism.
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(
            json!({"name": "bad", "sql": join_aggregate_sql(&out, ROWS, 2000),
                    "resources": {"parallelism": 3, "processes": 2}}),
        ),
    );
    assert_eq!(s, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("multiple"),
        "{v}"
    );

    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(
            json!({"name": "mp", "sql": join_aggregate_sql(&out, ROWS, 2000),
                    "resources": {"parallelism": 4, "processes": 2}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    // A checkpoint holding state, written while both processes run.
    let pids: Vec<u64> = m.wait_for(60, "a checkpoint holding state", || {
        let commits = m.get("/api/v1/jobs/mp/commits");
        if m.get("/api/v1/jobs/mp")["state"] == "finished" {
            panic!(
                "the job finished before a checkpoint held state: {commits}\n{}\n{}",
                m.newest_instance_log("mp"),
                peer_logs(&dir.path().join("data"))
            );
        }
        let stateful = commits["commits"].as_array()?.iter().any(|c| {
            c["state"]
                .as_object()
                .is_some_and(|s| s.values().any(|b| b.as_u64() > Some(100)))
        });
        let instances = m.get("/api/v1/jobs/mp/instances");
        let live = instances
            .as_array()?
            .iter()
            .find(|i| i["state"] == "running")?;
        let pids: Vec<u64> = live["pids"]
            .as_array()?
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        (stateful && pids.len() == 2).then_some(pids)
    });
    let instances = m.get("/api/v1/jobs/mp/instances");
    assert_eq!(instances[0]["parallelism"], 4, "{instances}");
    // Its log holds both processes' tails.
    let id = instances[0]["id"].as_str().unwrap().to_string();
    let (s, logs) = m.request("GET", &format!("/api/v1/instances/{id}/logs"), None);
    let logs = logs
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| logs.to_string());
    assert_eq!(s, 200, "{logs}");
    assert!(
        logs.contains("process 0 of 2")
            && logs.contains("process 1 of 2")
            && logs.contains("/p1 <=="),
        "{logs}"
    );
    // The second process dies as a crash would: the instance fails as a whole.
    let killed = std::process::Command::new("kill")
        .args(["-9", &pids[1].to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let job: Value = m.wait_for(120, "the restarted job to finish", || {
        let j = m.get("/api/v1/jobs/mp");
        (j["state"] == "finished" || j["state"] == "failed").then_some(j)
    });
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(job["restarts"], 1, "{job}");
    let log = m.newest_instance_log("mp");
    assert!(log.contains("restored from checkpoint"), "{log}");
    assert!(log.contains("process 0 of 2"), "{log}");
    assert_eq!(committed_csv_lines(&out), golden_group_totals(ROWS, 10));
    // Nothing of the first instance is left running.
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z")),
            "process {pid} of the killed instance is still alive"
        );
    }
}

/// A job that names no `resources.processes` runs as the fewest processes that keep
/// each within the cluster's threads per process (`--local-threads-per-process`); one
/// that names too few is refused saying what fits; a change of parallelism that names
/// none keeps the job's count while it fits, else chooses again; a workflow's tasks get
/// theirs the same way.
#[test]
fn a_job_that_names_no_process_count_runs_as_the_fewest_within_the_threads_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let m = MasterProcess::start(
        &dir.path().join("data"),
        &["--local-threads-per-process", "2"],
    );
    let clusters = m.get("/api/v1/clusters");
    assert_eq!(clusters[0]["name"], "local", "{clusters}");
    assert_eq!(clusters[0]["threads_per_process"], 2, "{clusters}");

    let sql = join_aggregate_sql(&out, 3000, 3000);
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "one", "sql": sql, "resources": {"parallelism": 4, "processes": 1}})),
    );
    assert_eq!(s, 400, "{v}");
    let message = v["message"].as_str().unwrap_or("");
    assert!(
        message.contains("runs at most 2") && message.contains("ask for 2"),
        "{v}"
    );

    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "chosen", "sql": sql, "resources": {"parallelism": 4}})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["resources"]["processes"], 2, "{v}");
    let job: Value = m.wait_for(120, "the job to finish", || {
        let j = m.get("/api/v1/jobs/chosen");
        (j["state"] == "finished" || j["state"] == "failed").then_some(j)
    });
    assert_eq!(job["state"], "finished", "{job}");
    let log = m.newest_instance_log("chosen");
    assert!(log.contains("process 0 of 2"), "{log}");
    assert_eq!(committed_csv_lines(&out), golden_group_totals(3000, 10));

    // Changes of a stopped job's parallelism.
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(
            json!({"name": "held", "sql": join_aggregate_sql(&dir.path().join("held"), 10, 10),
                    "resources": {"parallelism": 2}, "desired_state": "stopped"}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["resources"]["processes"], 1, "{v}");
    let patch = |resources: Value| {
        let (s, v) = m.request(
            "PATCH",
            "/api/v1/jobs/held",
            Some(json!({ "resources": resources })),
        );
        assert_eq!(s, 200, "{v}");
        (
            v["resources"]["parallelism"].as_u64().unwrap(),
            v["resources"]["processes"].as_u64().unwrap(),
        )
    };
    // 8 threads in 1 process no longer fit: chosen again.
    assert_eq!(patch(json!({"parallelism": 8})), (8, 4));
    // 4 processes still fit 4 workers (one thread each): kept.
    assert_eq!(patch(json!({"parallelism": 4})), (4, 4));
    // Named, it is taken as named.
    assert_eq!(patch(json!({"parallelism": 4, "processes": 2})), (4, 2));
    // A change that is not of parallelism or cluster leaves it alone.
    assert_eq!(patch(json!({"memory_mb": 512})), (4, 2));

    // A workflow's tasks get theirs the same way, on the workflow's cluster.
    let task = |id: &str, resources: Value| json!({"id": id, "sql": join_aggregate_sql(&dir.path().join(id), 10, 10), "resources": resources});
    let (s, v) = m.request(
        "POST",
        "/api/v1/workflows",
        Some(
            json!({"name": "nightly", "schedule": {"cron": "@yearly"}, "enabled": false,
                    "tasks": [task("wide", json!({"parallelism": 4}))]}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["tasks"][0]["resources"]["processes"], 2, "{v}");
    let (s, v) = m.request(
        "PATCH",
        "/api/v1/workflows/nightly",
        Some(json!({"tasks": [task("wider", json!({"parallelism": 6}))]})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["tasks"][0]["resources"]["processes"], 3, "{v}");
    let (s, v) = m.request(
        "PATCH",
        "/api/v1/workflows/nightly",
        Some(json!({"tasks": [task("narrow", json!({"parallelism": 4, "processes": 1}))]})),
    );
    assert_eq!(s, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("runs at most 2"),
        "{v}"
    );
}
