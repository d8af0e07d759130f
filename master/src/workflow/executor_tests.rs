//! The scheduler end to end in memory: a fake cluster, the in-memory stores and an
//! injected clock (no processes, no sleeping). A "master restart" is a new `Master`
//! over the same stores and cluster.

use super::*;
use crate::cluster::{Cluster, ClusterError};
use crate::core::Core;
use crate::master::Master;
use crate::model::{Capacity, InstanceState, Resources};
use crate::store::MemoryStore;
use crate::watchdog::Policy;
use crate::workflow::service::SchedulerConfig;
use crate::workflow::{
    CatchupPolicy, ConcurrencyPolicy, MemoryWorkflowStore, RunState, ScheduleSpec, TaskSpec,
    TaskState, Workflow, WorkflowSpec, WorkflowStore,
};
use std::sync::Arc;
use std::sync::Mutex;

const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z, an even second

/// Instances in memory; the test decides when they finish or fail.
#[derive(Default)]
struct FakeCluster {
    instances: Mutex<BTreeMap<String, ObservedInstance>>,
    launches: Mutex<Vec<String>>,
}

impl FakeCluster {
    fn set(&self, id: &str, state: InstanceState) {
        let mut all = self.instances.lock().unwrap();
        let i = all
            .get_mut(id)
            .unwrap_or_else(|| panic!("no instance {id}"));
        i.state = state;
        i.rows_in = 7;
        i.rows_out = 3;
    }

    fn live(&self) -> Vec<String> {
        self.instances
            .lock()
            .unwrap()
            .values()
            .filter(|i| i.state.is_live())
            .map(|i| i.instance_id.clone())
            .collect()
    }

    fn finish_all(&self) {
        for id in self.live() {
            self.set(&id, InstanceState::Finished);
        }
    }

    fn launches(&self) -> Vec<String> {
        self.launches.lock().unwrap().clone()
    }
}

impl Cluster for FakeCluster {
    fn name(&self) -> &str {
        "local"
    }
    fn kind(&self) -> &'static str {
        "fake"
    }
    fn capacity(&self) -> Capacity {
        Capacity {
            workers: 64,
            memory_mb: 1 << 20,
            gpus: 0,
        }
    }
    fn launch(&self, spec: &LaunchSpec) -> Result<(), ClusterError> {
        let mut all = self.instances.lock().unwrap();
        if all.contains_key(&spec.instance_id) {
            return Err(ClusterError::Io(format!(
                "instance {} already exists",
                spec.instance_id
            )));
        }
        assert!(spec.job_id.starts_with("wf:"));
        assert!(!spec.worker.plan.outputs.is_empty());
        all.insert(
            spec.instance_id.clone(),
            ObservedInstance {
                job_id: spec.job_id.clone(),
                job_name: spec.job_name.clone(),
                job_version: spec.job_version,
                parallelism: spec.resources.parallelism,
                memory_mb: spec.resources.memory_mb,
                gpus: spec.resources.gpus,
                pids: vec![1],
                ..ObservedInstance::of(
                    &spec.instance_id,
                    spec.owner.clone(),
                    InstanceState::Running,
                )
            },
        );
        self.launches.lock().unwrap().push(spec.instance_id.clone());
        Ok(())
    }
    fn stop(&self, id: &str) -> Result<(), ClusterError> {
        let mut all = self.instances.lock().unwrap();
        let i = all
            .get_mut(id)
            .ok_or_else(|| ClusterError::NotFound(id.into()))?;
        i.stop_requested = true;
        if i.state.is_live() {
            i.state = InstanceState::Stopped;
        }
        Ok(())
    }
    fn kill(&self, id: &str) -> Result<(), ClusterError> {
        self.set(id, InstanceState::Crashed);
        Ok(())
    }
    fn observe(&self) -> Result<Vec<ObservedInstance>, ClusterError> {
        Ok(self.instances.lock().unwrap().values().cloned().collect())
    }
    fn retire(&self, id: &str) -> Result<(), ClusterError> {
        let mut all = self.instances.lock().unwrap();
        let i = all
            .get_mut(id)
            .ok_or_else(|| ClusterError::NotFound(id.into()))?;
        i.retired = true;
        Ok(())
    }
    fn forget(&self, id: &str) -> Result<(), ClusterError> {
        let mut all = self.instances.lock().unwrap();
        match all.get(id) {
            None => Err(ClusterError::NotFound(id.into())),
            Some(i) if i.state.is_live() => Err(ClusterError::Io(format!("{id} is live"))),
            Some(_) => {
                all.remove(id);
                Ok(())
            }
        }
    }
    fn logs(&self, _: &str, _: u64) -> Result<String, ClusterError> {
        Ok(String::new())
    }
}

/// A master over these stores and this cluster (a restart is another call).
fn master(
    store: &Arc<MemoryStore>,
    workflows: &Arc<MemoryWorkflowStore>,
    cluster: &Arc<FakeCluster>,
) -> Master {
    let mut clusters: BTreeMap<String, Arc<dyn Cluster>> = BTreeMap::new();
    clusters.insert("local".into(), cluster.clone());
    let core = Core::new(
        store.clone(),
        clusters,
        crate::checkpoints::CheckpointStore::private(
            &std::env::temp_dir().join("sluice-unused-checkpoints"),
        ),
    );
    Master::new(
        Arc::new(core),
        Policy::default(),
        workflows.clone(),
        SchedulerConfig::default(),
    )
}

struct Harness {
    store: Arc<MemoryStore>,
    workflows: Arc<MemoryWorkflowStore>,
    cluster: Arc<FakeCluster>,
    m: Master,
}

impl Harness {
    fn new() -> Harness {
        let store = Arc::new(MemoryStore::new());
        let workflows = Arc::new(MemoryWorkflowStore::new());
        let cluster = Arc::new(FakeCluster::default());
        let m = master(&store, &workflows, &cluster);
        Harness {
            store,
            workflows,
            cluster,
            m,
        }
    }

    /// kill -9 and start again: a new master over the same stores and instances.
    fn restart(&mut self) {
        self.m = master(&self.store, &self.workflows, &self.cluster);
    }

    fn cycle(&self, now: i64) -> Vec<String> {
        cycle(&self.m.workflows, now).unwrap_or_else(|e| panic!("cycle at {now}: {e}"))
    }

    /// Stores a workflow created at `T0` (its schedule starts there).
    fn add(&self, spec: WorkflowSpec) -> Workflow {
        self.m
            .workflows
            .validate_workflow("nightly", &spec)
            .unwrap();
        let wf = Workflow {
            format_version: FORMAT_VERSION,
            id: "w000001".into(),
            name: "nightly".into(),
            version: 1,
            spec,
            created_at_ms: T0,
            updated_at_ms: T0,
            // No key: run ids in the plain `<id>-<tick>` form keep the expected
            // instance ids below readable (runs_tests checks the keyed form).
            run_key: String::new(),
        };
        self.workflows
            .create_workflow(
                &wf,
                &SchedulerState {
                    format_version: FORMAT_VERSION,
                    workflow_id: wf.id.clone(),
                    last_tick_ms: T0,
                },
            )
            .unwrap();
        wf
    }

    fn runs(&self) -> Vec<WorkflowRun> {
        self.workflows.list_runs("w000001").unwrap()
    }

    fn run_states(&self) -> Vec<(i64, RunState)> {
        self.runs()
            .iter()
            .map(|r| ((r.logical_time_ms - T0) / 1000, r.state))
            .collect()
    }
}

fn sql(name: &str) -> String {
    format!(
        "CREATE TABLE src_{name} (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10', 'fields.id.kind' = 'sequence', 'fields.id.min' = '1');\n\
         CREATE TABLE dst_{name} (id BIGINT, ds VARCHAR) WITH ('connector' = 'blackhole');\n\
         INSERT INTO dst_{name} SELECT id, '{{{{ ds_nodash }}}}-{{{{ region }}}}' FROM src_{name};\n"
    )
}

fn task(id: &str, deps: &[&str]) -> TaskSpec {
    TaskSpec {
        id: id.into(),
        sql: sql(id),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        retries: 0,
        retry_backoff_ms: 0,
        timeout_ms: None,
        resources: Resources::default(),
    }
}

fn spec(concurrency: ConcurrencyPolicy, catchup: CatchupPolicy) -> WorkflowSpec {
    WorkflowSpec {
        schedule: ScheduleSpec {
            cron: "*/2 * * * * *".into(),
            timezone: "UTC".into(),
        },
        tasks: vec![
            task("extract", &[]),
            task("aggregate", &["extract"]),
            task("export", &["aggregate"]),
        ],
        parameters: BTreeMap::from([("region".to_string(), "eu".to_string())]),
        concurrency,
        catchup,
        enabled: true,
        cluster: "local".into(),
    }
}

#[test]
fn workflow_scheduler_runs_each_tick_once_through_a_restart() {
    let mut h = Harness::new();
    h.add(spec(ConcurrencyPolicy::Allow, CatchupPolicy::All));
    assert!(h.cycle(T0 + 1500).iter().all(|l| !l.contains("created")));
    assert!(h.runs().is_empty());
    h.cycle(T0 + 2100);
    assert_eq!(h.run_states(), [(2, RunState::Running)]);
    assert_eq!(h.cluster.launches(), ["w000001-1704067202.extract.1"]);
    // Run it to the end, a task per cycle.
    for (i, t) in [2200, 2300, 2400].into_iter().enumerate() {
        h.cluster.finish_all();
        h.cycle(T0 + t);
        assert_eq!(h.cluster.launches().len(), (i + 2).min(3));
    }
    assert_eq!(h.run_states(), [(2, RunState::Succeeded)]);
    let run = &h.runs()[0];
    assert_eq!(run.parameters["ds_nodash"], "20240101");
    assert_eq!(run.task("export").unwrap().attempts[0].rows_out, 3);
    // The next tick starts; the master dies while its first task runs.
    h.cycle(T0 + 4050);
    assert_eq!(h.cluster.live(), ["w000001-1704067204.extract.1"]);
    h.restart();
    // Down for 5 s: ticks 6, 8 fall due while it is down; on restart all are caught
    // up, the running instance is adopted (never launched again).
    h.cycle(T0 + 9000);
    assert_eq!(
        h.run_states(),
        [
            (2, RunState::Succeeded),
            (4, RunState::Running),
            (6, RunState::Running),
            (8, RunState::Running)
        ]
    );
    // The same cycle again after another restart creates nothing new.
    h.restart();
    h.cycle(T0 + 9001);
    assert_eq!(h.runs().len(), 4);
    for t in 0..6 {
        h.cluster.finish_all();
        h.cycle(T0 + 9100 + t);
    }
    assert!(h.runs().iter().all(|r| r.state == RunState::Succeeded));
    let launches = h.cluster.launches();
    let unique: BTreeSet<&String> = launches.iter().collect();
    assert_eq!(unique.len(), launches.len(), "{launches:?}");
    assert_eq!(launches.len(), 12);
    // Everything ended is retired.
    assert!(h
        .cluster
        .observe()
        .unwrap()
        .iter()
        .all(|i| i.retired || i.state.is_live()));
}

#[test]
fn workflow_scheduler_a_crash_between_record_and_launch_launches_once() {
    let mut h = Harness::new();
    h.add(spec(ConcurrencyPolicy::Allow, CatchupPolicy::All));
    // Record the run and its first attempt as a cycle would, without launching.
    h.cycle(T0 + 2000);
    let run = h.runs().remove(0);
    let instance = "w000001-1704067202.extract.1".to_string();
    // Forget the instance as if the launch never happened (the master died first).
    h.cluster.instances.lock().unwrap().remove(&instance);
    h.cluster.launches.lock().unwrap().clear();
    assert_eq!(run.task("extract").unwrap().state, TaskState::Running);
    h.restart();
    h.cycle(T0 + 2500);
    assert_eq!(h.cluster.launches(), std::slice::from_ref(&instance));
    h.cycle(T0 + 2600);
    assert_eq!(h.cluster.launches(), [instance]);
}

#[test]
fn workflow_scheduler_concurrency_skip_records_skipped_ticks() {
    let h = Harness::new();
    h.add(spec(ConcurrencyPolicy::Skip, CatchupPolicy::All));
    h.cycle(T0 + 2000);
    h.cycle(T0 + 4000);
    h.cycle(T0 + 6000);
    assert_eq!(
        h.run_states(),
        [
            (2, RunState::Running),
            (4, RunState::Skipped),
            (6, RunState::Skipped)
        ]
    );
    for t in 0..3 {
        h.cluster.finish_all();
        h.cycle(T0 + 6100 + t);
    }
    h.cycle(T0 + 8000);
    assert_eq!(h.run_states()[0].1, RunState::Succeeded);
    assert_eq!(h.run_states()[3], (8, RunState::Running));
}

#[test]
fn workflow_scheduler_concurrency_queue_runs_one_after_another() {
    let h = Harness::new();
    h.add(spec(ConcurrencyPolicy::Queue, CatchupPolicy::All));
    h.cycle(T0 + 2000);
    h.cycle(T0 + 4000);
    assert_eq!(
        h.run_states(),
        [(2, RunState::Running), (4, RunState::Queued)]
    );
    for t in 0..3 {
        h.cluster.finish_all();
        h.cycle(T0 + 4100 + t);
    }
    h.cycle(T0 + 4200);
    assert_eq!(
        h.run_states(),
        [(2, RunState::Succeeded), (4, RunState::Running)]
    );
    assert_eq!(h.cluster.live(), ["w000001-1704067204.extract.1"]);
}

#[test]
fn workflow_scheduler_concurrency_allow_overlaps_runs() {
    let h = Harness::new();
    h.add(spec(ConcurrencyPolicy::Allow, CatchupPolicy::All));
    h.cycle(T0 + 2000);
    h.cycle(T0 + 4000);
    assert_eq!(
        h.cluster.live(),
        [
            "w000001-1704067202.extract.1",
            "w000001-1704067204.extract.1"
        ]
    );
}

#[test]
fn workflow_scheduler_catchup_policies_after_downtime() {
    let all: Vec<i64> = (1..=20).map(|i| i * 2).collect();
    // `none` runs the tick that just fell due, not the 19 missed before it (the pure
    // schedule tests cover a latest tick older than the grace period).
    for (policy, expected) in [
        (CatchupPolicy::All, all),
        (CatchupPolicy::Latest, vec![40]),
        (CatchupPolicy::None, vec![40]),
    ] {
        let h = Harness::new();
        h.add(spec(ConcurrencyPolicy::Allow, policy));
        // The master was down from T0 to T0 + 40.5 s.
        let log = h.cycle(T0 + 40_500);
        let ticks: Vec<i64> = h.run_states().iter().map(|(t, _)| *t).collect();
        assert_eq!(ticks, expected, "{policy:?}");
        if policy != CatchupPolicy::All {
            assert!(
                log.iter()
                    .any(|l| l.contains("19 missed tick(s) passed over")),
                "{log:?}"
            );
        }
        // On time from then on, whatever the policy.
        h.cycle(T0 + 42_100);
        assert_eq!(h.run_states().last().map(|r| r.0), Some(42), "{policy:?}");
    }
}

#[test]
fn workflow_scheduler_cancel_stops_instances_and_retires_them() {
    let h = Harness::new();
    h.add(spec(ConcurrencyPolicy::Allow, CatchupPolicy::All));
    h.cycle(T0 + 2000);
    let run = h.runs().remove(0);
    let cancelled =
        h.m.workflows
            .cancel_workflow_run("nightly", &run.run_id)
            .unwrap();
    assert!(cancelled.cancel_requested);
    h.cycle(T0 + 2100);
    let run = h.runs().remove(0);
    assert_eq!(run.state, RunState::Cancelled);
    assert_eq!(
        run.tasks.iter().map(|t| t.state).collect::<Vec<_>>(),
        [TaskState::Cancelled, TaskState::Skipped, TaskState::Skipped]
    );
    assert!(h.cluster.live().is_empty());
    // The stopped instance is retired by the next cycle (its run is no longer active).
    h.cycle(T0 + 2200);
    assert!(h.cluster.observe().unwrap().iter().all(|i| i.retired));
    // An ended run cannot be cancelled.
    assert!(matches!(
        h.m.workflows.cancel_workflow_run("nightly", &run.run_id),
        Err(ServiceError::Conflict(_))
    ));
}

#[test]
fn workflow_scheduler_retries_failed_tasks_after_the_backoff() {
    let h = Harness::new();
    let mut s = spec(ConcurrencyPolicy::Allow, CatchupPolicy::All);
    s.tasks[0].retries = 1;
    s.tasks[0].retry_backoff_ms = 3000;
    h.add(s);
    h.cycle(T0 + 2000);
    h.cluster
        .set("w000001-1704067202.extract.1", InstanceState::Crashed);
    h.cycle(T0 + 2100);
    h.cycle(T0 + 5099);
    let second = "w000001-1704067202.extract.2".to_string();
    assert!(!h.cluster.launches().contains(&second));
    h.cycle(T0 + 5100);
    assert!(h.cluster.launches().contains(&second));
}

#[test]
fn workflow_manual_runs_and_backfills() {
    let h = Harness::new();
    let mut s = spec(ConcurrencyPolicy::Queue, CatchupPolicy::All);
    s.enabled = false;
    let wf = h.add(s);
    let manual =
        h.m.workflows
            .trigger_workflow(
                "nightly",
                BTreeMap::from([("region".to_string(), "us".to_string())]),
                Some(T0 - 60_000),
            )
            .unwrap();
    assert_eq!(manual.parameters["region"], "us");
    assert!(manual.run_id.starts_with("w000001-manual-"));
    assert!(matches!(
        h.m.workflows.trigger_workflow(
            "nightly",
            BTreeMap::from([("nope".to_string(), "x".to_string())]),
            None
        ),
        Err(ServiceError::Invalid { .. })
    ));
    // Backfill 6 s: ticks 0, 2, 4, 6 (both ends included).
    let b =
        h.m.workflows
            .backfill_workflow("nightly", T0, T0 + 6000)
            .unwrap();
    assert_eq!(b.created.len(), 4);
    assert!(b.existing.is_empty());
    let again =
        h.m.workflows
            .backfill_workflow("nightly", T0 + 4000, T0 + 8000)
            .unwrap();
    assert_eq!(again.created.len(), 1);
    assert_eq!(
        again.existing,
        [run_id(&wf, T0 + 4000), run_id(&wf, T0 + 6000)]
    );
    assert!(matches!(
        h.m.workflows.backfill_workflow("nightly", T0 + 1, T0),
        Err(ServiceError::Invalid { .. })
    ));
    // Disabled: nothing scheduled; queue: one run at a time, the oldest (the manual
    // one, created with the earliest logical time) first.
    h.cycle(T0 + 20_000);
    let running: Vec<String> = h
        .runs()
        .into_iter()
        .filter(|r| r.state == RunState::Running)
        .map(|r| r.run_id)
        .collect();
    assert_eq!(running, std::slice::from_ref(&manual.run_id));
    assert_eq!(h.runs().len(), 6);
}

#[test]
fn workflow_validation_names_the_task_and_position() {
    let h = Harness::new();
    let mut s = spec(ConcurrencyPolicy::Allow, CatchupPolicy::All);
    s.tasks[1].sql = "CREATE TABLE t (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');\nINSERT INTO t SELECT nope FROM t;".into();
    match h.m.workflows.validate_workflow("nightly", &s) {
        Err(ServiceError::TaskSql {
            task, line, column, ..
        }) => {
            assert_eq!(task, "aggregate");
            assert_eq!(line, Some(2));
            assert!(column.is_some());
        }
        other => panic!("{other:?}"),
    }
    let mut s = spec(ConcurrencyPolicy::Allow, CatchupPolicy::All);
    s.tasks[2].sql = "SELECT '{{ missing }}'".into();
    match h.m.workflows.validate_workflow("nightly", &s) {
        Err(ServiceError::TaskSql { task, kind, .. }) => {
            assert_eq!((task.as_str(), kind.as_str()), ("export", "template"))
        }
        other => panic!("{other:?}"),
    }
    let invalid = |mutate: &dyn Fn(&mut WorkflowSpec), needle: &str| {
        let mut s = spec(ConcurrencyPolicy::Allow, CatchupPolicy::All);
        mutate(&mut s);
        match h.m.workflows.validate_workflow("nightly", &s) {
            Err(ServiceError::Invalid { message }) => {
                assert!(message.contains(needle), "{message} lacks {needle}")
            }
            other => panic!("expected Invalid({needle}), got {other:?}"),
        }
    };
    invalid(&|s| s.tasks[0].depends_on = vec!["export".into()], "cycle");
    invalid(
        &|s| s.tasks[1].depends_on = vec!["nope".into()],
        "unknown task 'nope'",
    );
    invalid(&|s| s.tasks[1].id = "extract".into(), "used twice");
    invalid(&|s| s.schedule.cron = "99 * * * *".into(), "invalid cron");
    invalid(
        &|s| s.schedule.timezone = "Nowhere/City".into(),
        "unknown time zone",
    );
    invalid(&|s| s.tasks.clear(), "at least one task");
    invalid(
        &|s| s.cluster = "far".into(),
        "cluster 'far' does not exist",
    );
    invalid(
        &|s| {
            s.parameters.insert("ds".into(), "x".into());
        },
        "invalid parameter name",
    );
    invalid(
        &|s| {
            s.tasks[0].sql = "CREATE TABLE g (id BIGINT) WITH ('connector' = 'datagen');\nCREATE TABLE o (id BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO o SELECT id FROM g;".into()
        },
        "unbounded",
    );
}
