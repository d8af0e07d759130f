//! The watchdog (`reconcile_once`, `run_loop`) over the `local` cluster with real
//! `sluice worker` processes, racing the API's job deletes: the job lifecycle end to
//! end, below HTTP.
//!
//! Like `local_cluster.rs`, these tests need the `sluice-worker` executable beside
//! `sluice` (`cargo build -p sluice-dataflow --bin sluice-worker`) or
//! `SLUICE_WORKER_BIN`.

use sluice_master::cluster::{Cluster, ClusterError, LaunchSpec, LocalCluster, LocalClusterConfig};
use sluice_master::core::Core;
use sluice_master::jobs::NewJob;
use sluice_master::master::Master;
use sluice_master::model::{Capacity, DesiredState, JobState, ObservedInstance, Resources};
use sluice_master::service::ServiceError;
use sluice_master::store::{MemoryStore, NewEvent, Store, StoreError};
use sluice_master::watchdog::executor::{reconcile_once, run_loop};
use sluice_master::watchdog::Policy;
use sluice_master::workflow::service::SchedulerConfig;
use sluice_master::workflow::MemoryWorkflowStore;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const WAIT: Duration = Duration::from_secs(60);

fn require_worker() {
    if std::env::var_os("SLUICE_WORKER_BIN").is_some() {
        return;
    }
    let worker = Path::new(SLUICE).with_file_name("sluice-worker");
    assert!(
        worker.is_file(),
        "{} is missing: build it with `cargo build -p sluice-dataflow --bin sluice-worker`",
        worker.display()
    );
}

/// The local cluster, recording every launch (job id, instance id, when).
struct Recording {
    local: LocalCluster,
    launches: Mutex<Vec<(String, String, Instant)>>,
}

impl Recording {
    fn launches(&self) -> Vec<(String, String, Instant)> {
        self.launches.lock().unwrap().clone()
    }
}

impl Cluster for Recording {
    fn name(&self) -> &str {
        self.local.name()
    }
    fn kind(&self) -> &'static str {
        self.local.kind()
    }
    fn capacity(&self) -> Capacity {
        self.local.capacity()
    }
    fn launch(&self, spec: &LaunchSpec) -> Result<(), ClusterError> {
        self.launches.lock().unwrap().push((
            spec.job_id.clone(),
            spec.instance_id.clone(),
            Instant::now(),
        ));
        self.local.launch(spec)
    }
    fn stop(&self, id: &str) -> Result<(), ClusterError> {
        self.local.stop(id)
    }
    fn kill(&self, id: &str) -> Result<(), ClusterError> {
        self.local.kill(id)
    }
    fn observe(&self) -> Result<Vec<ObservedInstance>, ClusterError> {
        self.local.observe()
    }
    fn retire(&self, id: &str) -> Result<(), ClusterError> {
        self.local.retire(id)
    }
    fn forget(&self, id: &str) -> Result<(), ClusterError> {
        self.local.forget(id)
    }
    fn logs(&self, id: &str, tail: u64) -> Result<String, ClusterError> {
        self.local.logs(id, tail)
    }
}

/// The in-memory store, with reads of statuses slowed down: it widens the windows in
/// which an API write lands in the middle of a watchdog cycle, as a busy disk does.
struct SlowStatusReads {
    inner: MemoryStore,
    delay: Duration,
}

impl Store for SlowStatusReads {
    fn create_job(
        &self,
        job: &sluice_master::model::Job,
        status: &sluice_master::model::JobStatus,
    ) -> Result<(), StoreError> {
        self.inner.create_job(job, status)
    }
    fn update_job(
        &self,
        job: &sluice_master::model::Job,
        expected_version: u64,
    ) -> Result<(), StoreError> {
        self.inner.update_job(job, expected_version)
    }
    fn get_job(&self, name: &str) -> Result<Option<sluice_master::model::Job>, StoreError> {
        self.inner.get_job(name)
    }
    fn list_jobs(&self) -> Result<Vec<sluice_master::model::Job>, StoreError> {
        self.inner.list_jobs()
    }
    fn delete_job(&self, name: &str) -> Result<Option<sluice_master::model::Job>, StoreError> {
        self.inner.delete_job(name)
    }
    fn get_status(
        &self,
        job_id: &str,
    ) -> Result<Option<sluice_master::model::JobStatus>, StoreError> {
        std::thread::sleep(self.delay);
        self.inner.get_status(job_id)
    }
    fn put_status(&self, status: &sluice_master::model::JobStatus) -> Result<(), StoreError> {
        self.inner.put_status(status)
    }
    fn append_event(
        &self,
        job_id: &str,
        event: NewEvent,
    ) -> Result<sluice_master::model::JobEvent, StoreError> {
        self.inner.append_event(job_id, event)
    }
    fn list_events(
        &self,
        job_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<sluice_master::model::JobEvent>, StoreError> {
        self.inner.list_events(job_id, after_seq, limit)
    }
    fn create_table(&self, table: &sluice_master::model::StoredTable) -> Result<(), StoreError> {
        self.inner.create_table(table)
    }
    fn get_table(
        &self,
        name: &str,
    ) -> Result<Option<sluice_master::model::StoredTable>, StoreError> {
        self.inner.get_table(name)
    }
    fn list_tables(&self) -> Result<Vec<sluice_master::model::StoredTable>, StoreError> {
        self.inner.list_tables()
    }
    fn delete_table(&self, name: &str) -> Result<bool, StoreError> {
        self.inner.delete_table(name)
    }
    fn next_id(&self) -> Result<u64, StoreError> {
        self.inner.next_id()
    }
}

/// A master over a temporary directory: the local cluster (recorded), a store whose
/// status reads take `status_delay`, checkpoints under `<tmp>/checkpoints`.
struct World {
    tmp: tempfile::TempDir,
    m: Arc<Master>,
    cluster: Arc<Recording>,
}

impl World {
    fn new(
        status_delay: Duration,
        policy: Policy,
        adjust: impl FnOnce(&mut LocalClusterConfig),
    ) -> World {
        require_worker();
        let tmp = tempfile::tempdir().unwrap();
        let mut config = LocalClusterConfig::new(tmp.path().join("instances"), SLUICE);
        config.heartbeat_interval_ms = 100;
        config.capacity.workers = 256;
        config.capacity.memory_mb = 1 << 20;
        adjust(&mut config);
        let cluster = Arc::new(Recording {
            local: LocalCluster::new(config).unwrap(),
            launches: Mutex::new(Vec::new()),
        });
        let mut clusters: BTreeMap<String, Arc<dyn Cluster>> = BTreeMap::new();
        clusters.insert("local".to_string(), cluster.clone());
        let core = Core::new(
            Arc::new(SlowStatusReads {
                inner: MemoryStore::new(),
                delay: status_delay,
            }),
            clusters,
            sluice_master::checkpoints::CheckpointStore::private(&tmp.path().join("checkpoints")),
        );
        let m = Arc::new(Master::new(
            Arc::new(core),
            policy,
            Arc::new(MemoryWorkflowStore::new()),
            SchedulerConfig::default(),
        ));
        World { tmp, m, cluster }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    fn create(&self, name: &str, sql: &str) -> String {
        let job = self
            .m
            .jobs
            .create_job(NewJob {
                name: name.to_string(),
                sql: sql.to_string(),
                resources: Resources {
                    parallelism: 1,
                    memory_mb: 256,
                    gpus: 0,
                    processes: 1,
                },
                cluster: "local".to_string(),
                desired_state: DesiredState::Running,
            })
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
        job.id
    }

    fn state(&self, job_id: &str) -> Option<JobState> {
        self.m
            .core
            .store
            .get_status(job_id)
            .unwrap()
            .map(|s| s.state)
    }

    fn events(&self, job_id: &str) -> Vec<(String, String)> {
        self.m
            .core
            .store
            .list_events(job_id, 0, 1000)
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, e.message))
            .collect()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Ok(instances) = self.cluster.local.observe() {
            for i in instances.iter().filter(|i| i.state.is_live()) {
                let _ = self.cluster.local.kill(&i.instance_id);
            }
        }
    }
}

/// Polls `done` with a deadline; `what` names it in the failure.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A bounded job: a few generated rows into CSV files under `out`.
fn bounded_sql(out: &Path) -> String {
    format!(
        "CREATE TABLE src (id BIGINT) WITH (
            'connector' = 'datagen', 'number-of-rows' = '20', 'fields.id.kind' = 'sequence');
         CREATE TABLE dst (id BIGINT) WITH (
            'connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
         INSERT INTO dst SELECT id FROM src;",
        out.display()
    )
}

/// Issue 12: jobs deleted while the watchdog runs — some right after their creation,
/// the others once they finished — never get an instance started after their delete,
/// and a finished job never gets a second instance.
#[test]
fn deletes_racing_the_watchdog_never_start_a_deleted_or_finished_job() {
    let w = World::new(Duration::from_millis(3), Policy::default(), |_| {});
    let (tx, rx) = std::sync::mpsc::channel();
    *w.m.core.wake.lock().unwrap() = Some(tx);
    let wd = w.m.clone();
    let watchdog = std::thread::spawn(move || run_loop(wd, rx, Duration::from_millis(10)));

    const JOBS: usize = 36;
    let mut jobs = Vec::new();
    let mut deleted_at: BTreeMap<String, Instant> = BTreeMap::new();
    for n in 0..JOBS {
        let name = format!("job{n:02}");
        let id = w.create(&name, &bounded_sql(&w.path(&format!("out/{name}"))));
        if n % 3 == 0 {
            // Deleted at once: it may or may not have been started before.
            std::thread::sleep(Duration::from_millis(n as u64 % 7));
            w.m.jobs.delete_job(&name).unwrap();
            deleted_at.insert(id.clone(), Instant::now());
        } else {
            jobs.push((name, id));
        }
    }
    // The others once finished, the last named first (the watchdog reads statuses in
    // name order, so these deletes tend to land between its listing and its reads).
    for (name, id) in jobs.iter().rev() {
        wait_until(&format!("{name} finished"), || {
            w.state(id) == Some(JobState::Finished)
        });
    }
    for (name, id) in jobs.iter().rev() {
        w.m.jobs.delete_job(name).unwrap();
        deleted_at.insert(id.clone(), Instant::now());
        std::thread::sleep(Duration::from_millis(15));
    }
    // Let the watchdog act on every delete, then stop it.
    wait_until("every instance forgotten", || {
        w.cluster.local.observe().unwrap().is_empty()
    });
    w.m.core.wake.lock().unwrap().take();
    watchdog.join().unwrap();

    let launches = w.cluster.launches();
    let mut per_job: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (job_id, instance_id, at) in &launches {
        per_job.entry(job_id).or_default().push(instance_id);
        let deleted = deleted_at[job_id.as_str()];
        assert!(
            *at < deleted,
            "instance {instance_id} started {:?} after its job {job_id} was deleted",
            at.duration_since(deleted)
        );
    }
    for (_, id) in &jobs {
        let started = per_job.get(id.as_str()).cloned().unwrap_or_default();
        assert_eq!(
            started.len(),
            1,
            "job {id} (finished) had instances {started:?}"
        );
    }
}

/// Issue 12: a start that fails (here the worker executable does not exist) counts as
/// a failure — backed off, and the job ends failed with the reason in its events —
/// instead of being retried forever with `restarts: 0`.
#[test]
fn a_start_that_fails_is_counted_until_the_job_fails() {
    let policy = Policy {
        backoff_initial_ms: 10,
        backoff_max_ms: 40,
        max_restarts: 3,
        ..Policy::default()
    };
    let w = World::new(Duration::ZERO, policy, |c| {
        c.sluice_exe = PathBuf::from("/nonexistent/sluice");
    });
    let id = w.create("doomed", &bounded_sql(&w.path("out")));
    wait_until("the job failed", || {
        let _ = reconcile_once(&w.m);
        w.state(&id) == Some(JobState::Failed)
    });
    let status = w.m.core.store.get_status(&id).unwrap().unwrap();
    assert_eq!(status.restarts, 4, "{status:#?}");
    assert!(
        status
            .reason
            .starts_with("4 failures within 600 s: last: instance doomed-v1-")
            && status.reason.contains("could not start")
            && status.reason.contains("/nonexistent/sluice"),
        "{}",
        status.reason
    );
    let events = w.events(&id);
    let scheduled = events
        .iter()
        .filter(|(k, _)| k == "restart_scheduled")
        .count();
    assert_eq!(scheduled, 3, "{events:#?}");
    assert_eq!(
        events.last().map(|(k, _)| k.as_str()),
        Some("instance_failed"),
        "{events:#?}"
    );
    assert_eq!(w.cluster.launches().len(), 4);
    // Failed: never tried again.
    for _ in 0..5 {
        reconcile_once(&w.m).unwrap();
    }
    assert_eq!(w.cluster.launches().len(), 4);
}

/// Issue 12: once a deleted job's instance has ended, its instance directory (logs
/// included) and its checkpoint directory are deleted, and its logs are no longer
/// served (404).
#[test]
fn a_deleted_jobs_directories_are_collected_and_its_logs_are_gone() {
    let w = World::new(Duration::ZERO, Policy::default(), |_| {});
    let sql = "SET 'execution.checkpointing.interval' = '50ms';
        CREATE TABLE bid (auction BIGINT, price BIGINT) WITH (
            'connector' = 'nexmark', 'nexmark.table' = 'bid');
        CREATE TABLE sink (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');
        INSERT INTO sink SELECT auction, price FROM bid;";
    let id = w.create("stream", sql);
    let keep = w.create("other", &bounded_sql(&w.path("out")));
    let checkpoints = std::path::PathBuf::from(w.m.core.checkpoints.job_dir(&id));
    // The epochs of the checkpoint records kept.
    let records = || -> Vec<u64> {
        std::fs::read_dir(&checkpoints)
            .map(|d| {
                d.flatten()
                    .filter_map(|e| {
                        let name = e.file_name().into_string().ok()?;
                        name.strip_prefix("chk-")?
                            .strip_suffix(".json")?
                            .parse()
                            .ok()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    // Past the 50 records a job keeps (`sluice_dataflow::checkpoint::KEEP_RECORDS`):
    // older ones are pruned, so the directory does not grow with the job's age.
    wait_until("checkpoint 60", || {
        reconcile_once(&w.m).unwrap();
        records().iter().any(|&e| e >= 60)
    });
    let kept = records();
    assert!(kept.len() <= 51, "{} records kept: {kept:?}", kept.len());
    assert!(!kept.contains(&1), "{kept:?}");
    let instance = w
        .cluster
        .local
        .observe()
        .unwrap()
        .into_iter()
        .find(|i| i.job_id == id)
        .expect("the stream's instance");
    let dir = w.cluster.local.instance_dir(&instance.instance_id);
    assert!(w.cluster.logs(&instance.instance_id, 1 << 16).is_ok());

    w.m.jobs.delete_job("stream").unwrap();
    wait_until("the directories collected", || {
        reconcile_once(&w.m).unwrap();
        !dir.exists() && !checkpoints.exists()
    });
    match w.m.core.instance(&instance.instance_id) {
        Err(ServiceError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {:?}", other.map(|(i, _)| i)),
    }
    assert!(matches!(
        w.cluster.logs(&instance.instance_id, 1 << 16),
        Err(ClusterError::NotFound(_))
    ));
    // Another job's things are kept.
    wait_until("the other job finished", || {
        reconcile_once(&w.m).unwrap();
        w.state(&keep) == Some(JobState::Finished)
    });
    assert_eq!(
        w.cluster
            .local
            .observe()
            .unwrap()
            .iter()
            .filter(|i| i.job_id == keep)
            .count(),
        1
    );
}
