//! The `local` cluster driver against real `sluice worker` processes.
//!
//! These tests start `sluice` (this crate's binary, `CARGO_BIN_EXE_sluice`), which
//! hands over to the `sluice-worker` executable beside it. Cargo does not build another
//! crate's binary for this crate's tests: build it first with
//! `cargo build -p sluice-dataflow --bin sluice-worker` (`.ci/test` builds it before
//! running the tests), or point `SLUICE_WORKER_BIN` at one.
//!
//! Every test kills what it started (the [`Fixture`]'s drop), even when it fails.

use sluice_compiler::instance::{
    InstanceRequest, InstanceRunState, InstanceStatus, ProgressSnapshot, WorkerRequest,
};
use sluice_master::cluster::{
    Cluster, ClusterError, LaunchSpec, LocalCluster, LocalClusterConfig, CRASH_MESSAGE,
};
use sluice_master::model::{InstanceOwner, InstanceState, ObservedInstance, Resources};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);

/// Fails clearly when `sluice-worker` was not built.
fn require_worker() {
    if std::env::var_os("SLUICE_WORKER_BIN").is_some() {
        return;
    }
    let worker = Path::new(SLUICE).with_file_name("sluice-worker");
    assert!(
        worker.is_file(),
        "{} is missing: build it first with `cargo build -p sluice-dataflow --bin sluice-worker` \
         (.ci/test does), or set SLUICE_WORKER_BIN",
        worker.display()
    );
}

/// A temporary directory, a cluster over `<tmp>/instances`, and a guard that kills
/// every live instance found there when dropped.
struct Fixture {
    tmp: tempfile::TempDir,
    cluster: LocalCluster,
}

impl Fixture {
    fn new() -> Self {
        Fixture::with(|_| {})
    }

    fn with(adjust: impl FnOnce(&mut LocalClusterConfig)) -> Self {
        require_worker();
        let tmp = tempfile::tempdir().unwrap();
        let mut config = LocalClusterConfig::new(tmp.path().join("instances"), SLUICE);
        config.heartbeat_interval_ms = 100;
        adjust(&mut config);
        let cluster = LocalCluster::new(config).unwrap();
        Fixture { tmp, cluster }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn instances_dir(&self) -> PathBuf {
        self.cluster.config().instances_dir.clone()
    }

    /// Compiles `sql` and launches it as `id` of job `job`.
    fn launch(&self, id: &str, job: &str, sql: &str) {
        self.cluster.launch(&spec(id, job, sql)).unwrap();
    }

    fn observe(&self, id: &str) -> ObservedInstance {
        observe(&self.cluster, id)
    }

    /// Polls until `id` satisfies `done`; panics with its last state and log otherwise.
    fn wait_for(
        &self,
        id: &str,
        what: &str,
        done: impl Fn(&ObservedInstance) -> bool,
    ) -> ObservedInstance {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = self.observe(id);
            if done(&seen) {
                return seen;
            }
            if Instant::now() > deadline {
                panic!(
                    "instance {id}: timed out waiting for {what}; last seen {seen:#?}\nlog:\n{}",
                    self.cluster.logs(id, 4096).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Ok(instances) = self.cluster.observe() {
            for i in instances.iter().filter(|i| i.state.is_live()) {
                let _ = self.cluster.kill(&i.instance_id);
            }
        }
    }
}

fn observe(cluster: &LocalCluster, id: &str) -> ObservedInstance {
    cluster
        .observe()
        .unwrap()
        .into_iter()
        .find(|i| i.instance_id == id)
        .unwrap_or_else(|| panic!("instance {id} is not observed"))
}

fn spec(id: &str, job: &str, sql: &str) -> LaunchSpec {
    let compiled = sluice_compiler::compile(
        sql,
        &sluice_catalogs::MemoryCatalog::new(),
        &sluice_connectors::Registry::builtin(),
    )
    .unwrap_or_else(|e| panic!("{e}\n{sql}"));
    LaunchSpec {
        instance_id: id.to_string(),
        owner: InstanceOwner::Job {
            id: format!("{job}-id"),
            version: 1,
        },
        job_id: format!("{job}-id"),
        job_name: job.to_string(),
        job_version: 1,
        resources: Resources {
            parallelism: 2,
            memory_mb: 1024,
            gpus: 0,
            processes: 1,
        },
        worker: WorkerRequest {
            plan: compiled.plan,
            workers: 2,
            batch_size: 1024,
            progress_interval_ms: None,
            checkpoint: None,
            secret_key_file: None,
            peers: Vec::new(),
            process: 0,
        },
    }
}

/// A bounded job: `rows` generated rows into CSV files under `out`.
fn bounded_sql(rows: u64, out: &Path) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, name VARCHAR) WITH (
            'connector' = 'datagen', 'number-of-rows' = '{rows}', 'fields.id.kind' = 'sequence');
         CREATE TABLE dst (id BIGINT, name VARCHAR) WITH (
            'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');
         INSERT INTO dst SELECT id, name FROM src;",
        out.display()
    )
}

/// An unbounded job: Nexmark bids forever, into a blackhole.
const UNBOUNDED_SQL: &str = "
    CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT) WITH (
        'connector' = 'nexmark', 'nexmark.table' = 'bid');
    CREATE TABLE sink (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');
    INSERT INTO sink SELECT auction, price FROM bid WHERE price > 10;";

fn is_running(i: &ObservedInstance) -> bool {
    i.state == InstanceState::Running && i.heartbeat_at_ms.is_some()
}

/// Is `pid` a process (any state) right now?
fn pid_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn bounded_job_finishes_and_writes_its_output() {
    let f = Fixture::new();
    let out = f.path("out");
    f.launch("bounded-1", "bounded", &bounded_sql(5_000, &out));
    let first = f.observe("bounded-1");
    assert!(
        matches!(
            first.state,
            InstanceState::Starting | InstanceState::Running | InstanceState::Finished
        ),
        "{first:#?}"
    );
    assert_eq!(first.job_id, "bounded-id");
    assert_eq!(first.job_name, "bounded");
    assert_eq!((first.parallelism, first.memory_mb), (2, 1024));
    assert_eq!(first.cluster, "local");
    assert_eq!(first.pids.len(), 1);

    let done = f.wait_for("bounded-1", "finished", |i| !i.state.is_live());
    assert_eq!(done.state, InstanceState::Finished, "{done:#?}");
    assert_eq!((done.rows_in, done.rows_out), (5_000, 5_000));
    assert!(!done.input_waiting);
    assert!(done.message.is_none());
    let ended = done.ended_at_ms.expect("ended_at");
    assert!(ended >= done.started_at_ms);
    assert!(done.heartbeat_at_ms.is_some() && done.progress_at_ms.is_some());
    assert!(!pid_exists(done.pids[0]), "the master reaps its children");
    // Stable from now on.
    assert_eq!(f.observe("bounded-1").ended_at_ms, Some(ended));

    let mut lines = 0;
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            // Minus the header.
            lines += std::fs::read_to_string(&path).unwrap().lines().count() - 1;
        }
    }
    assert_eq!(lines, 5_000);

    let log = f.cluster.logs("bounded-1", 1 << 20).unwrap();
    assert!(log.contains("instance bounded-1 starting"), "{log}");
    assert!(log.contains("instance bounded-1 finished"), "{log}");
    assert!(
        log.contains("memory cap: 1120 MiB resident"),
        "the memory cap is applied: {log}"
    );
}

/// A job whose state outgrows `memory_mb` ends as a failed instance with a message
/// that says so (a user error: restarting it would fail the same way), instead of
/// being killed by the kernel or taking the machine's memory.
#[test]
fn state_beyond_memory_mb_is_a_clear_failure() {
    let f = Fixture::new();
    // Unbounded distinct ids: the GROUP BY keeps a row of state per id, forever.
    let sql = "
        CREATE TABLE src (id BIGINT, name VARCHAR) WITH (
            'connector' = 'datagen', 'fields.id.kind' = 'sequence');
        CREATE TABLE sink (id BIGINT, n BIGINT) WITH ('connector' = 'blackhole');
        INSERT INTO sink SELECT id, COUNT(*) FROM src GROUP BY id;";
    // The control: a stateless job under the same cap keeps running.
    let mut control = spec("lean-1", "lean", UNBOUNDED_SQL);
    control.resources.memory_mb = 32;
    f.cluster.launch(&control).unwrap();
    let mut launch = spec("hungry-1", "hungry", sql);
    launch.resources.memory_mb = 32;
    f.cluster.launch(&launch).unwrap();
    let done = f.wait_for("hungry-1", "failed", |i| !i.state.is_live());
    assert_eq!(done.state, InstanceState::Failed, "{done:#?}");
    assert!(done.user_error, "{done:#?}");
    let message = done.message.clone().unwrap_or_default();
    assert!(
        message.contains("exceeded its memory limit")
            && message.contains("resources.memory_mb = 32 MiB plus 96 MiB"),
        "{message}"
    );
    assert!(done.rows_in > 0, "it ran before it failed: {done:#?}");
    assert!(!pid_exists(done.pids[0]), "the process is gone");
    let log = f.cluster.logs("hungry-1", 1 << 20).unwrap();
    assert!(log.contains("exceeded its memory limit"), "{log}");

    let lean = f.wait_for("lean-1", "rows under the cap", |i| {
        is_running(i) && i.rows_in > 1_000_000
    });
    assert!(lean.message.is_none(), "{lean:#?}");
}

#[test]
fn unbounded_job_heartbeats_then_kill_is_a_crash() {
    let f = Fixture::new();
    f.launch("stream-1", "stream", UNBOUNDED_SQL);
    let running = f.wait_for("stream-1", "running with rows", |i| {
        is_running(i) && i.rows_in > 0
    });
    assert!(running.input_waiting, "{running:#?}");
    assert!(running.ended_at_ms.is_none());
    let later = f.wait_for("stream-1", "more rows and a newer heartbeat", |i| {
        i.rows_in > running.rows_in && i.heartbeat_at_ms > running.heartbeat_at_ms
    });
    assert_eq!(later.state, InstanceState::Running);
    assert_eq!(later.pids, running.pids);

    let log = f.cluster.logs("stream-1", 1 << 20).unwrap();
    assert!(
        log.contains("instance stream-1 starting: job stream"),
        "{log}"
    );
    let tail = f.cluster.logs("stream-1", 10).unwrap();
    assert!(tail.len() <= 10, "{tail:?}");

    f.cluster.kill("stream-1").unwrap();
    let crashed = f.observe("stream-1");
    assert_eq!(crashed.state, InstanceState::Crashed, "{crashed:#?}");
    assert!(!crashed.stop_requested);
    assert!(!crashed.input_waiting);
    let message = crashed.message.clone().unwrap();
    assert!(message.starts_with(CRASH_MESSAGE), "{message}");
    assert!(message.contains("SIGKILL"), "{message}");
    assert!(!pid_exists(crashed.pids[0]));
    let ended = crashed.ended_at_ms.expect("ended_at");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(f.observe("stream-1").ended_at_ms, Some(ended));
    // Killing or stopping what already ended is fine.
    f.cluster.kill("stream-1").unwrap();
}

#[test]
fn stop_ends_an_instance_as_stopped() {
    let f = Fixture::new();
    f.launch("stream-2", "stream", UNBOUNDED_SQL);
    f.wait_for("stream-2", "running", is_running);
    let started = Instant::now();
    f.cluster.stop("stream-2").unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "SIGTERM ends it at once"
    );
    let stopped = f.observe("stream-2");
    assert_eq!(stopped.state, InstanceState::Stopped, "{stopped:#?}");
    assert!(stopped.stop_requested);
    assert!(stopped.message.is_none());
    assert!(stopped.ended_at_ms.is_some());
    assert!(!pid_exists(stopped.pids[0]));
    f.cluster.stop("stream-2").unwrap();
    assert_eq!(f.observe("stream-2").state, InstanceState::Stopped);
}

#[test]
fn unknown_instances_are_not_found() {
    let f = Fixture::new();
    for result in [
        f.cluster.stop("nope"),
        f.cluster.kill("nope"),
        f.cluster.retire("nope"),
        f.cluster.logs("nope", 10).map(|_| ()),
        f.cluster.stop("../instances"),
    ] {
        assert!(
            matches!(result, Err(ClusterError::NotFound(_))),
            "{result:?}"
        );
    }
    assert!(f.cluster.observe().unwrap().is_empty());
}

#[test]
fn a_new_master_adopts_live_instances() {
    let f = Fixture::new();
    f.launch("stream-3", "stream", UNBOUNDED_SQL);
    let running = f.wait_for("stream-3", "running", is_running);

    // A second driver over the same directory, spelled differently, as a restarted
    // master would open it. It did not start the process and cannot reap it.
    let other = f.tmp.path().join(".").join("instances");
    let mut config = LocalClusterConfig::new(other, SLUICE);
    config.heartbeat_interval_ms = 100;
    let second = LocalCluster::new(config).unwrap();
    let adopted = observe(&second, "stream-3");
    assert_eq!(adopted.state, InstanceState::Running, "{adopted:#?}");
    assert_eq!(adopted.pids, running.pids);
    assert_eq!(adopted.started_at_ms, running.started_at_ms);
    assert_eq!(adopted.job_id, "stream-id");

    second.stop("stream-3").unwrap();
    assert_eq!(observe(&second, "stream-3").state, InstanceState::Stopped);
    // Its parent (the first driver) reaps it once it has fully exited.
    f.wait_for("stream-3", "stopped", |i| i.state == InstanceState::Stopped);
    assert!(!pid_exists(running.pids[0]), "reaped by its parent");
}

/// Writes an instance directory by hand, as if launched earlier.
fn fake_instance(
    root: &Path,
    id: &str,
    job: &str,
    pid: u32,
    run: Option<InstanceRunState>,
    ended_at: Option<i64>,
) -> PathBuf {
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    let plan = sluice_compiler::compile(
        UNBOUNDED_SQL,
        &sluice_catalogs::MemoryCatalog::new(),
        &sluice_connectors::Registry::builtin(),
    )
    .unwrap()
    .plan;
    let request = InstanceRequest {
        instance_id: id.to_string(),
        job_id: job.to_string(),
        job_name: job.to_string(),
        job_version: 3,
        memory_mb: 256,
        gpus: 1,
        heartbeat_interval_ms: 100,
        worker: WorkerRequest {
            plan,
            workers: 1,
            batch_size: 10,
            progress_interval_ms: None,
            checkpoint: None,
            secret_key_file: None,
            peers: Vec::new(),
            process: 0,
        },
        // As written by a master older than the typed owner.
        owner: None,
    };
    std::fs::write(
        dir.join("request.json"),
        serde_json::to_vec(&request).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("launch.json"),
        format!("{{\"pid\":{pid},\"launched_at_ms\":1000}}"),
    )
    .unwrap();
    if let Some(run) = run {
        let status = InstanceStatus {
            pid,
            instance_id: id.to_string(),
            run,
            started_at_ms: 1000,
            heartbeat_at_ms: 2000,
            progress_at_ms: 1500,
            input_waiting: true,
            stepped_at_ms: None,
            progress: ProgressSnapshot {
                rows_in: 7,
                ..ProgressSnapshot::default()
            },
        };
        std::fs::write(
            dir.join("status.json"),
            serde_json::to_vec(&status).unwrap(),
        )
        .unwrap();
    }
    if let Some(at) = ended_at {
        std::fs::write(dir.join("ended_at"), at.to_string()).unwrap();
    }
    dir
}

#[test]
fn a_reused_pid_is_not_taken_for_the_instance() {
    let f = Fixture::new();
    let me = std::process::id();
    fake_instance(
        &f.instances_dir(),
        "ghost",
        "old",
        me,
        Some(InstanceRunState::Running),
        None,
    );
    let ghost = f.observe("ghost");
    assert_eq!(ghost.state, InstanceState::Crashed, "{ghost:#?}");
    assert_eq!(ghost.pids, vec![me]);
    assert_eq!(
        (ghost.job_version, ghost.memory_mb, ghost.gpus),
        (3, 256, 1)
    );
    assert_eq!((ghost.rows_in, ghost.heartbeat_at_ms), (7, Some(2000)));
    assert!(!ghost.input_waiting, "a dead instance waits for nothing");
    // Neither signals this (unrelated, live) process.
    f.cluster.stop("ghost").unwrap();
    f.cluster.kill("ghost").unwrap();
    assert_eq!(f.observe("ghost").state, InstanceState::Stopped);
}

#[test]
fn unreadable_instance_directories_are_skipped() {
    let f = Fixture::new();
    let root = f.instances_dir();
    std::fs::create_dir_all(root.join("garbage")).unwrap();
    std::fs::write(root.join("garbage/request.json"), b"{ not json").unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    std::fs::write(root.join("stray-file"), b"").unwrap();
    fake_instance(
        &root,
        "ok",
        "job",
        u32::MAX,
        Some(InstanceRunState::Finished),
        None,
    );
    let seen = f.cluster.observe().unwrap();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(seen[0].state, InstanceState::Finished);
    // A finished instance ends when its final status was written.
    assert_eq!(seen[0].ended_at_ms, Some(2000));
}

/// The driver records who an instance belongs to in its `request.json` and observes it
/// back; an instance launched by an older master (no owner recorded) gets the owner its
/// job id and instance id imply.
#[test]
fn the_owner_is_recorded_at_launch_and_derived_for_older_instances() {
    let f = Fixture::new();
    let out = f.path("out");
    f.launch("bounded-1", "bounded", &bounded_sql(10, &out));
    let want = InstanceOwner::Job {
        id: "bounded-id".to_string(),
        version: 1,
    };
    assert_eq!(f.observe("bounded-1").owner, want);
    let request: serde_json::Value = serde_json::from_slice(
        &std::fs::read(f.instances_dir().join("bounded-1/request.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        request["owner"],
        serde_json::json!({"kind": "job", "id": "bounded-id", "version": 1})
    );
    f.wait_for("bounded-1", "finished", |i| !i.state.is_live());

    let root = f.instances_dir();
    let finished = Some(InstanceRunState::Finished);
    fake_instance(
        &root,
        "old-job-1",
        "old-id",
        u32::MAX,
        finished.clone(),
        Some(5),
    );
    fake_instance(
        &root,
        "w1-60-ab.load.2",
        "wf:w1",
        u32::MAX,
        finished,
        Some(5),
    );
    assert_eq!(
        f.observe("old-job-1").owner,
        InstanceOwner::Job {
            id: "old-id".to_string(),
            version: 3
        }
    );
    let task = f.observe("w1-60-ab.load.2");
    assert_eq!(
        task.owner,
        InstanceOwner::Task {
            workflow: "w1".to_string(),
            run: "w1-60-ab".to_string(),
            task: "load".to_string(),
            attempt: 2
        }
    );
    // The REST views still show the job id it was launched with.
    assert_eq!(task.job_id, "wf:w1");
}

#[test]
fn retire_keeps_the_newest_retired_instances_per_job() {
    let f = Fixture::with(|c| c.keep_retired_per_job = 2);
    let root = f.instances_dir();
    let finished = Some(InstanceRunState::Finished);
    for (id, at) in [("a1", 400), ("a2", 100), ("a3", 300), ("a4", 200)] {
        fake_instance(&root, id, "a", u32::MAX, finished.clone(), Some(at));
    }
    fake_instance(&root, "a5", "a", u32::MAX, finished.clone(), Some(50));
    fake_instance(&root, "b1", "b", u32::MAX, finished.clone(), Some(10));
    for id in ["b1", "a1", "a2", "a3", "a4"] {
        f.cluster.retire(id).unwrap();
    }
    let left: Vec<(String, bool)> = f
        .cluster
        .observe()
        .unwrap()
        .into_iter()
        .map(|i| (i.instance_id, i.retired))
        .collect();
    assert_eq!(
        left,
        [
            ("a1".to_string(), true),
            ("a3".to_string(), true),
            ("a5".to_string(), false),
            ("b1".to_string(), true),
        ]
    );
    assert!(!root.join("a2").exists() && !root.join("a4").exists());
}

#[test]
fn a_job_failing_at_run_time_ends_failed_with_its_message() {
    let f = Fixture::new();
    let missing = f.path("no-such-input");
    let sql = format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');
         CREATE TABLE dst (id BIGINT) WITH ('connector' = 'blackhole');
         INSERT INTO dst SELECT id FROM src;",
        missing.display()
    );
    f.launch("missing-1", "missing", &sql);

    let bad = f.path("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("in.csv"), "id,name\n1,a\nnot-a-number,b\n3,c\n").unwrap();
    let sql = format!(
        "CREATE TABLE src (id BIGINT, name VARCHAR) WITH ('connector' = 'filesystem',
            'path' = '{}', 'format' = 'csv', 'csv.header' = 'true', 'format.on-error' = 'fail');
         CREATE TABLE dst (id BIGINT, name VARCHAR) WITH ('connector' = 'blackhole');
         INSERT INTO dst SELECT id, name FROM src;",
        bad.display()
    );
    f.launch("bad-1", "bad", &sql);

    let missing_end = f.wait_for("missing-1", "the end", |i| !i.state.is_live());
    assert_eq!(missing_end.state, InstanceState::Failed, "{missing_end:#?}");
    let message = missing_end.message.clone().unwrap();
    assert!(message.contains("no-such-input"), "{message}");

    let bad_end = f.wait_for("bad-1", "the end", |i| !i.state.is_live());
    assert_eq!(bad_end.state, InstanceState::Failed, "{bad_end:#?}");
    let message = bad_end.message.clone().unwrap();
    assert!(message.contains("not-a-number"), "{message}");
    assert!(bad_end.bad_records >= 1);

    let log = f.cluster.logs("bad-1", 1 << 20).unwrap();
    assert!(log.contains("instance bad-1 failed"), "{log}");
}

#[test]
fn sluice_worker_reports_why_it_cannot_run() {
    require_worker();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("i1");
    std::fs::create_dir_all(&dir).unwrap();
    let read_status = |dir: &Path| -> InstanceStatus {
        serde_json::from_slice(&std::fs::read(dir.join("status.json")).unwrap()).unwrap()
    };

    // No request.json: the worker itself says so.
    let status = std::process::Command::new(SLUICE)
        .args(["worker", "--instance-dir"])
        .arg(&dir)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let written = read_status(&dir);
    assert_eq!(written.instance_id, "i1");
    let InstanceRunState::Failed { message, .. } = &written.run else {
        panic!("{written:?}")
    };
    assert!(message.contains("request.json"), "{message}");

    // No worker executable: `sluice worker` says so.
    let status = std::process::Command::new(SLUICE)
        .args(["worker", "--instance-dir"])
        .arg(&dir)
        .env("SLUICE_WORKER_BIN", tmp.path().join("no-such-worker"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let InstanceRunState::Failed { message, .. } = read_status(&dir).run else {
        panic!()
    };
    assert!(message.contains("no-such-worker"), "{message}");
}

/// An unbounded job printing every row to stdout, i.e. into `worker.log`.
const PRINT_SQL: &str = "
    CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT) WITH (
        'connector' = 'nexmark', 'nexmark.table' = 'bid');
    CREATE TABLE out (auction BIGINT, bidder BIGINT, price BIGINT) WITH ('connector' = 'print');
    INSERT INTO out SELECT auction, bidder, price FROM bid;";

/// A `sluice` that starts its workers with SIGTERM ignored (an ignored signal stays
/// ignored across `exec`), as a worker stuck where it cannot act on the signal would.
fn sigterm_ignoring_sluice(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("sluice-ignoring-sigterm");
    std::fs::write(
        &path,
        format!("#!/bin/sh\ntrap '' TERM\nexec '{SLUICE}' \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Issue 12: a worker that ignores SIGTERM is killed with SIGKILL once the stop grace
/// has passed.
#[test]
fn stop_kills_an_instance_that_ignores_sigterm_after_the_grace() {
    let scripts = tempfile::tempdir().unwrap();
    let exe = sigterm_ignoring_sluice(scripts.path());
    let f = Fixture::with(|c| {
        c.sluice_exe = exe;
        c.stop_grace = Duration::from_millis(500);
    });
    f.launch("frozen-1", "frozen", UNBOUNDED_SQL);
    let running = f.wait_for("frozen-1", "running", is_running);
    let started = Instant::now();
    f.cluster.stop("frozen-1").unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "it ignores SIGTERM: only SIGKILL after the grace ends it"
    );
    let stopped = f.observe("frozen-1");
    assert_eq!(stopped.state, InstanceState::Stopped, "{stopped:#?}");
    assert!(!pid_exists(running.pids[0]));
}

/// Issue 12: an instance whose stop was requested but that is still alive after the
/// grace (the master that asked died before its SIGKILL, and the process ignores
/// SIGTERM) is killed by the next master's observation.
#[test]
fn observe_kills_a_stop_requested_instance_still_alive_after_the_grace() {
    let scripts = tempfile::tempdir().unwrap();
    let exe = sigterm_ignoring_sluice(scripts.path());
    let f = Fixture::with(|c| c.sluice_exe = exe);
    f.launch("frozen-2", "frozen", UNBOUNDED_SQL);
    let running = f.wait_for("frozen-2", "running", is_running);
    let pid = nix::unistd::Pid::from_raw(running.pids[0] as i32);
    // What a master that died in the middle of `stop` leaves: the marker, a SIGTERM
    // (ignored), no SIGKILL.
    let dir = f.instances_dir().join("frozen-2");
    let asked = sluice_master::model::now_ms() - 1_000;
    std::fs::write(dir.join("stop_requested"), asked.to_string()).unwrap();
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();

    let mut config = LocalClusterConfig::new(f.instances_dir(), SLUICE);
    config.stop_grace = Duration::from_millis(200);
    let next = LocalCluster::new(config).unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let seen = observe(&next, "frozen-2");
        if !seen.state.is_live() {
            assert_eq!(seen.state, InstanceState::Stopped, "{seen:#?}");
            break;
        }
        assert!(Instant::now() < deadline, "never killed: {seen:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    f.wait_for("frozen-2", "reaped", |i| !i.state.is_live());
    assert!(!pid_exists(running.pids[0]));
}

/// Issue 12: `worker.log` of an instance that prints a lot is rotated at its cap:
/// `worker.log` and `worker.log.1` each stay about the cap, and the log tail spans both.
#[test]
fn worker_log_is_rotated_at_its_size_cap() {
    const CAP: u64 = 64 * 1024;
    let f = Fixture::with(|c| c.log_max_bytes = CAP);
    f.launch("chatty-1", "chatty", PRINT_SQL);
    let dir = f.instances_dir().join("chatty-1");
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
    // Observing rotates; wait until it rotated three times (worker.log shrank).
    let mut rotations = 0;
    let deadline = Instant::now() + WAIT;
    while rotations < 3 {
        let before = size("worker.log");
        f.observe("chatty-1");
        if size("worker.log") < before {
            rotations += 1;
        }
        let rotated = size("worker.log.1");
        assert!(rotated <= CAP, "worker.log.1 is {rotated} bytes");
        assert!(
            Instant::now() < deadline,
            "rotated {rotations} times: {before} bytes"
        );
        std::thread::sleep(Duration::from_millis(30));
    }
    f.cluster.stop("chatty-1").unwrap();
    f.observe("chatty-1");
    assert!(
        size("worker.log") <= CAP,
        "worker.log is {} bytes",
        size("worker.log")
    );
    assert!(size("worker.log.1") <= CAP);
    assert!(
        size("worker.log.1") > CAP / 2,
        "the rotated copy keeps the last cap bytes"
    );
    let tail = f.cluster.logs("chatty-1", 2 * CAP).unwrap();
    assert!(
        tail.len() as u64 > size("worker.log"),
        "the tail reaches into worker.log.1"
    );
    assert!(
        tail.contains("out> +I["),
        "{}",
        &tail[..tail.len().min(500)]
    );
}

/// Issue 12: `forget` deletes an ended instance's directory (it is no longer observed,
/// its logs are not found) and refuses a live one.
#[test]
fn forget_deletes_an_ended_instance_and_refuses_a_live_one() {
    let f = Fixture::new();
    f.launch("gone-1", "gone", UNBOUNDED_SQL);
    f.wait_for("gone-1", "running", is_running);
    let refused = f.cluster.forget("gone-1");
    assert!(matches!(refused, Err(ClusterError::Io(_))), "{refused:?}");
    f.cluster.stop("gone-1").unwrap();
    f.cluster.forget("gone-1").unwrap();
    assert!(!f.instances_dir().join("gone-1").exists());
    assert!(f.cluster.observe().unwrap().is_empty());
    assert!(matches!(
        f.cluster.logs("gone-1", 10),
        Err(ClusterError::NotFound(_))
    ));
    assert!(matches!(
        f.cluster.forget("gone-1"),
        Err(ClusterError::NotFound(_))
    ));
}
