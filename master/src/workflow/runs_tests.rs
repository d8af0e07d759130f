//! Table tests of the pure run state machine: no processes, no clock, no sleeping.

use super::*;
use crate::model::{InstanceState, ObservedInstance, Resources};
use crate::workflow::{
    manual_run_id, run_id, CatchupPolicy, ConcurrencyPolicy, RunState, RunTrigger, ScheduleSpec,
    TaskSpec, TaskState, Workflow, WorkflowRun, WorkflowSpec,
};
use std::collections::{BTreeMap, BTreeSet};

const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

fn task(id: &str, deps: &[&str]) -> TaskSpec {
    TaskSpec {
        id: id.into(),
        sql: format!("-- {id}"),
        depends_on: deps.iter().map(|d| d.to_string()).collect(),
        retries: 0,
        retry_backoff_ms: 1000,
        timeout_ms: None,
        resources: Resources::default(),
    }
}

fn workflow(tasks: Vec<TaskSpec>) -> Workflow {
    Workflow {
        format_version: FORMAT_VERSION,
        id: "w000001".into(),
        name: "nightly".into(),
        version: 3,
        spec: WorkflowSpec {
            schedule: ScheduleSpec {
                cron: "*/2 * * * * *".into(),
                timezone: "UTC".into(),
            },
            tasks,
            parameters: BTreeMap::from([("region".to_string(), "eu".to_string())]),
            concurrency: ConcurrencyPolicy::Allow,
            catchup: CatchupPolicy::All,
            enabled: true,
            cluster: "local".into(),
        },
        created_at_ms: T0,
        updated_at_ms: T0,
        run_key: "k".into(),
    }
}

fn running(wf: &Workflow) -> WorkflowRun {
    let run = new_run(
        wf,
        run_id(wf, T0),
        RunTrigger::Scheduled,
        T0,
        &BTreeMap::new(),
        RunState::Queued,
        T0,
    );
    start(&run, T0)
}

fn inst(id: &str, state: InstanceState) -> ObservedInstance {
    ObservedInstance {
        job_id: "wf:w000001".into(),
        job_name: "nightly".into(),
        job_version: 3,
        message: match state {
            InstanceState::Failed => Some("boom".into()),
            InstanceState::Crashed => Some("the process ended without a final report".into()),
            _ => None,
        },
        pids: vec![42],
        started_at_ms: T0,
        rows_in: 10,
        rows_out: 4,
        ..ObservedInstance::of(id, crate::model::legacy_owner("wf:w000001", 3, id), state)
    }
}

/// A world of observed instances the tests change between cycles.
#[derive(Default)]
struct World {
    instances: BTreeMap<String, ObservedInstance>,
}

impl World {
    fn set(&mut self, id: &str, state: InstanceState) {
        self.instances.insert(id.to_string(), inst(id, state));
    }

    /// One decide at `now` with plenty of capacity; launches become running instances,
    /// stops become stopped ones, retires mark them retired.
    fn step(&mut self, run: &WorkflowRun, now: i64) -> (WorkflowRun, Vec<RunAction>) {
        let mut free = Capacity {
            workers: 100,
            memory_mb: 1 << 20,
            gpus: 0,
        };
        let d = decide(run, &self.instances, &mut free, now);
        for a in &d.actions {
            match a {
                RunAction::Launch { instance_id, .. } => {
                    self.set(instance_id, InstanceState::Running)
                }
                RunAction::Stop { instance_id, .. } => {
                    self.set(instance_id, InstanceState::Stopped)
                }
                RunAction::Retire { instance_id } => {
                    if let Some(i) = self.instances.get_mut(instance_id) {
                        i.retired = true;
                    }
                }
            }
        }
        let mut new = d.run.unwrap_or_else(|| run.clone());
        new.rev += 1;
        (new, d.actions)
    }
}

fn states(run: &WorkflowRun) -> Vec<(String, TaskState)> {
    run.tasks
        .iter()
        .map(|t| (t.spec.id.clone(), t.state))
        .collect()
}

fn launches(actions: &[RunAction]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            RunAction::Launch { instance_id, .. } => Some(instance_id.clone()),
            _ => None,
        })
        .collect()
}

fn id(task: &str, attempt: u32) -> String {
    instance_id(&run_id(&workflow(vec![]), T0), task, attempt)
}

#[test]
fn workflow_run_ids_are_deterministic_per_tick_but_unguessable() {
    let wf = workflow(vec![task("a", &[])]);
    let id = run_id(&wf, T0);
    // One id per tick, so a tick is never run twice.
    assert_eq!(run_id(&wf, T0 + 999), id);
    // `<workflow id>-<tick>-<128 bits keyed with the workflow's run key>`.
    let hash = id
        .strip_prefix("w000001-1704067200-")
        .unwrap_or_else(|| panic!("{id}"));
    assert!(
        hash.len() == 32 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let next = run_id(&wf, T0 + 1000);
    let next_hash = next.rsplit('-').next().unwrap();
    assert_eq!(next.strip_suffix(next_hash), Some("w000001-1704067201-"));
    // The hash is not derivable from the previous tick's, nor from another key's.
    let differing = hash
        .bytes()
        .zip(next_hash.bytes())
        .filter(|(a, b)| a != b)
        .count();
    assert!(differing > 16, "{hash} vs {next_hash}");
    let other = Workflow {
        run_key: "another key".into(),
        ..wf.clone()
    };
    assert_ne!(run_id(&other, T0), id);
    // Workflows stored before run keys existed keep the plain form.
    let legacy = Workflow {
        run_key: String::new(),
        ..wf.clone()
    };
    assert_eq!(run_id(&legacy, T0), "w000001-1704067200");
    // Manual runs: 128 random bits.
    let (m1, m2) = (manual_run_id(&wf), manual_run_id(&wf));
    assert_ne!(m1, m2);
    let bits = m1.strip_prefix("w000001-manual-").unwrap();
    assert!(bits.len() == 32 && bits.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(instance_id(&id, "extract", 2), format!("{id}.extract.2"));
    let a = running(&wf);
    let b = running(&wf);
    assert_eq!(a, b);
    assert_eq!(a.parameters["ds_nodash"], "20240101");
    assert_eq!(a.parameters["region"], "eu");
    assert_eq!(a.parameters["run_id"], id);
}

#[test]
fn workflow_dag_runs_in_dependency_order_and_succeeds() {
    let wf = workflow(vec![
        task("export", &["aggregate"]),
        task("extract", &[]),
        task("aggregate", &["extract"]),
    ]);
    let mut w = World::default();
    let run = running(&wf);
    let (run, actions) = w.step(&run, T0);
    assert_eq!(launches(&actions), [id("extract", 1)]);
    // Nothing changes while it runs.
    let (same, actions) = w.step(&run, T0 + 100);
    assert!(actions.is_empty());
    assert_eq!(states(&same), states(&run));
    w.set(&id("extract", 1), InstanceState::Finished);
    let (run, actions) = w.step(&run, T0 + 500);
    assert_eq!(
        actions,
        [
            RunAction::Retire {
                instance_id: id("extract", 1)
            },
            RunAction::Launch {
                run_id: run.run_id.clone(),
                task_id: "aggregate".into(),
                attempt: 1,
                instance_id: id("aggregate", 1)
            }
        ]
    );
    let extract = run.task("extract").unwrap();
    assert_eq!(extract.state, TaskState::Succeeded);
    assert_eq!(extract.attempts[0].rows_in, 10);
    assert_eq!(extract.attempts[0].rows_out, 4);
    w.set(&id("aggregate", 1), InstanceState::Finished);
    let (run, actions) = w.step(&run, T0 + 900);
    assert_eq!(launches(&actions), [id("export", 1)]);
    w.set(&id("export", 1), InstanceState::Finished);
    let (run, _) = w.step(&run, T0 + 1200);
    assert_eq!(run.state, RunState::Succeeded);
    assert_eq!(run.ended_at_ms, Some(T0 + 1200));
    assert!(run.tasks.iter().all(|t| t.state == TaskState::Succeeded));
    // The last instance is retired on the way out; then nothing is left to do.
    let (_, actions) = w.step(&run, T0 + 1300);
    assert!(actions.is_empty(), "{actions:?}");
}

#[test]
fn workflow_retries_wait_for_the_backoff_then_fail_and_propagate() {
    let mut a = task("a", &[]);
    a.retries = 2;
    a.retry_backoff_ms = 1000;
    let wf = workflow(vec![a, task("b", &["a"]), task("c", &["b"])]);
    let mut w = World::default();
    let (run, _) = w.step(&running(&wf), T0);
    w.set(&id("a", 1), InstanceState::Crashed);
    let (run, actions) = w.step(&run, T0 + 10);
    assert_eq!(run.task("a").unwrap().state, TaskState::Retrying);
    assert_eq!(run.task("a").unwrap().next_attempt_at_ms, Some(T0 + 1010));
    assert_eq!(
        actions,
        [RunAction::Retire {
            instance_id: id("a", 1)
        }]
    );
    // Not before the backoff.
    let (run, actions) = w.step(&run, T0 + 1009);
    assert!(launches(&actions).is_empty());
    let (run, actions) = w.step(&run, T0 + 1010);
    assert_eq!(launches(&actions), [id("a", 2)]);
    assert_eq!(run.task("a").unwrap().state, TaskState::Running);
    w.set(&id("a", 2), InstanceState::Failed);
    let (run, _) = w.step(&run, T0 + 2000);
    let (run, actions) = w.step(&run, T0 + 3000);
    assert_eq!(launches(&actions), [id("a", 3)]);
    w.set(&id("a", 3), InstanceState::Failed);
    let (run, _) = w.step(&run, T0 + 4000);
    let a = run.task("a").unwrap();
    assert_eq!(a.state, TaskState::Failed);
    assert_eq!(a.attempts.len(), 3);
    assert_eq!(a.attempts[1].message.as_deref(), Some("boom"));
    assert!(a.message.as_deref().unwrap().contains("attempt 3 failed"));
    assert_eq!(
        states(&run),
        [
            ("a".to_string(), TaskState::Failed),
            ("b".to_string(), TaskState::UpstreamFailed),
            ("c".to_string(), TaskState::UpstreamFailed),
        ]
    );
    assert_eq!(run.state, RunState::Failed);
    assert_eq!(run.message.as_deref(), Some("failed tasks: a"));
}

#[test]
fn workflow_upstream_failure_spares_independent_branches() {
    // a → (b, c) → d, and e on its own; b fails.
    let wf = workflow(vec![
        task("a", &[]),
        task("b", &["a"]),
        task("c", &["a"]),
        task("d", &["b", "c"]),
        task("e", &[]),
    ]);
    let mut w = World::default();
    let (run, actions) = w.step(&running(&wf), T0);
    assert_eq!(launches(&actions), [id("a", 1), id("e", 1)]);
    w.set(&id("a", 1), InstanceState::Finished);
    let (run, actions) = w.step(&run, T0 + 1);
    assert_eq!(launches(&actions), [id("b", 1), id("c", 1)]);
    w.set(&id("b", 1), InstanceState::Failed);
    let (run, _) = w.step(&run, T0 + 2);
    // d cannot run any more; c and e go on.
    assert_eq!(run.task("d").unwrap().state, TaskState::UpstreamFailed);
    assert_eq!(run.task("c").unwrap().state, TaskState::Running);
    assert_eq!(run.state, RunState::Running);
    w.set(&id("c", 1), InstanceState::Finished);
    w.set(&id("e", 1), InstanceState::Finished);
    let (run, _) = w.step(&run, T0 + 3);
    assert_eq!(
        states(&run),
        [
            ("a".to_string(), TaskState::Succeeded),
            ("b".to_string(), TaskState::Failed),
            ("c".to_string(), TaskState::Succeeded),
            ("d".to_string(), TaskState::UpstreamFailed),
            ("e".to_string(), TaskState::Succeeded),
        ]
    );
    assert_eq!(run.state, RunState::Failed);
}

#[test]
fn workflow_timeout_stops_the_instance_and_counts_as_a_failed_attempt() {
    let mut a = task("a", &[]);
    a.timeout_ms = Some(5000);
    a.retries = 1;
    a.retry_backoff_ms = 0;
    let wf = workflow(vec![a]);
    let mut w = World::default();
    let (run, _) = w.step(&running(&wf), T0);
    let (run, actions) = w.step(&run, T0 + 4999);
    assert!(actions.is_empty());
    let (run, actions) = w.step(&run, T0 + 5000);
    // Stopped, and (backoff 0) the retry starts in the same cycle.
    assert_eq!(
        actions,
        [
            RunAction::Stop {
                instance_id: id("a", 1),
                reason: "timed out after 5000 ms".into()
            },
            RunAction::Launch {
                run_id: run.run_id.clone(),
                task_id: "a".into(),
                attempt: 2,
                instance_id: id("a", 2)
            }
        ]
    );
    let a = run.task("a").unwrap();
    assert_eq!(a.attempts[0].outcome, Some(AttemptOutcome::TimedOut));
    // The stopped instance is retired next cycle; the second attempt times out too.
    let (run, actions) = w.step(&run, T0 + 6000);
    assert_eq!(
        actions,
        [RunAction::Retire {
            instance_id: id("a", 1)
        }]
    );
    let (run, actions) = w.step(&run, T0 + 10_000);
    assert_eq!(
        actions,
        [RunAction::Stop {
            instance_id: id("a", 2),
            reason: "timed out after 5000 ms".into()
        }]
    );
    assert_eq!(run.task("a").unwrap().state, TaskState::Failed);
    assert_eq!(run.state, RunState::Failed);
}

#[test]
fn workflow_cancel_stops_running_tasks_and_skips_the_rest() {
    let mut b = task("b", &[]);
    b.retries = 3;
    let wf = workflow(vec![task("a", &[]), b, task("c", &["a"])]);
    let mut w = World::default();
    let (run, _) = w.step(&running(&wf), T0);
    w.set(&id("b", 1), InstanceState::Failed);
    let (run, _) = w.step(&run, T0 + 1);
    assert_eq!(run.task("b").unwrap().state, TaskState::Retrying);
    let (run, actions) = w.step(&request_cancel(&run), T0 + 2);
    assert_eq!(
        actions,
        [RunAction::Stop {
            instance_id: id("a", 1),
            reason: "the run was cancelled".into()
        }]
    );
    assert_eq!(
        states(&run),
        [
            ("a".to_string(), TaskState::Cancelled),
            ("b".to_string(), TaskState::Skipped),
            ("c".to_string(), TaskState::Skipped),
        ]
    );
    assert_eq!(run.state, RunState::Cancelled);
    // A queued run is cancelled without running anything.
    let queued = new_run(
        &wf,
        run_id(&wf, T0 + 2000),
        RunTrigger::Scheduled,
        T0 + 2000,
        &BTreeMap::new(),
        RunState::Queued,
        T0,
    );
    let (q, actions) = World::default().step(&request_cancel(&queued), T0 + 3);
    assert!(actions.is_empty());
    assert_eq!(q.state, RunState::Cancelled);
    assert!(q.tasks.iter().all(|t| t.state == TaskState::Skipped));
}

#[test]
fn workflow_a_recorded_attempt_without_instance_is_launched_under_the_same_id() {
    // The master recorded attempt 1 and died before launching it.
    let wf = workflow(vec![task("a", &[])]);
    let mut w = World::default();
    let mut free = Capacity {
        workers: 8,
        memory_mb: 1 << 20,
        gpus: 0,
    };
    let recorded = decide(&running(&wf), &BTreeMap::new(), &mut free, T0)
        .run
        .unwrap();
    let (after, actions) = w.step(&recorded, T0 + 60_000);
    assert_eq!(launches(&actions), [id("a", 1)]);
    assert_eq!(after.task("a").unwrap().attempts.len(), 1);
    // Once it exists it is never launched again.
    let (_, actions) = w.step(&after, T0 + 61_000);
    assert!(actions.is_empty());
}

#[test]
fn workflow_stray_instances_are_stopped_or_retired() {
    let wf = workflow(vec![task("a", &[])]);
    let mut w = World::default();
    let (run, _) = w.step(&running(&wf), T0);
    // An old attempt still alive (say, adopted after a restart), one ended, one retired,
    // and an instance of another run (left alone here).
    w.set(&id("a", 7), InstanceState::Running);
    w.set(&id("a", 8), InstanceState::Crashed);
    w.set(&id("a", 9), InstanceState::Finished);
    w.instances.get_mut(&id("a", 9)).unwrap().retired = true;
    w.set("w000001-99.a.1", InstanceState::Running);
    let (_, actions) = w.step(&run, T0 + 1);
    assert_eq!(
        actions,
        [
            RunAction::Stop {
                instance_id: id("a", 7),
                reason: "not a current attempt of its run".into()
            },
            RunAction::Retire {
                instance_id: id("a", 8)
            }
        ]
    );
    let active = BTreeSet::from([run.run_id.clone()]);
    assert_eq!(
        orphan_actions(&w.instances, &active),
        [RunAction::Stop {
            instance_id: "w000001-99.a.1".into(),
            reason: "its run has ended".into()
        }]
    );
}

#[test]
fn workflow_tasks_wait_for_cluster_capacity() {
    let wf = workflow(vec![task("a", &[]), task("b", &[])]);
    let mut free = Capacity {
        workers: 1,
        memory_mb: 1 << 20,
        gpus: 0,
    };
    let d = decide(&running(&wf), &BTreeMap::new(), &mut free, T0);
    assert_eq!(launches(&d.actions), [id("a", 1)]);
    let run = d.run.unwrap();
    assert_eq!(run.task("b").unwrap().state, TaskState::Pending);
    assert_eq!(
        run.task("b").unwrap().message.as_deref(),
        Some("waiting for cluster capacity")
    );
    assert_eq!(free.workers, 0);
}

#[test]
fn workflow_concurrency_policies_skip_queue_allow() {
    let wf = workflow(vec![task("a", &[])]);
    let mk = |tick: i64, created: i64| {
        new_run(
            &wf,
            run_id(&wf, tick),
            RunTrigger::Scheduled,
            tick,
            &BTreeMap::new(),
            RunState::Queued,
            created,
        )
    };
    let active = start(&mk(T0, T0), T0);
    let q1 = mk(T0 + 2000, T0 + 2000);
    let q2 = mk(T0 + 4000, T0 + 4000);
    // A tick while a run is active: skipped under skip, queued otherwise.
    assert_eq!(tick_state(ConcurrencyPolicy::Skip, 1), RunState::Skipped);
    assert_eq!(tick_state(ConcurrencyPolicy::Skip, 0), RunState::Queued);
    assert_eq!(tick_state(ConcurrencyPolicy::Queue, 1), RunState::Queued);
    assert_eq!(tick_state(ConcurrencyPolicy::Allow, 5), RunState::Queued);
    let skipped = new_run(
        &wf,
        run_id(&wf, T0 + 2000),
        RunTrigger::Scheduled,
        T0 + 2000,
        &BTreeMap::new(),
        RunState::Skipped,
        T0 + 2000,
    );
    assert!(skipped.tasks.iter().all(|t| t.state == TaskState::Skipped));
    assert!(skipped.state.is_terminal());
    // Queue: nothing starts while one runs; then the oldest.
    assert!(promote(ConcurrencyPolicy::Queue, &[&active, &q2, &q1]).is_empty());
    assert_eq!(
        promote(ConcurrencyPolicy::Queue, &[&q2, &q1]),
        std::slice::from_ref(&q1.run_id)
    );
    assert_eq!(
        promote(ConcurrencyPolicy::Skip, &[&q2, &q1]),
        std::slice::from_ref(&q1.run_id)
    );
    // Allow: everything queued starts.
    assert_eq!(
        promote(ConcurrencyPolicy::Allow, &[&active, &q2, &q1]),
        [q1.run_id.clone(), q2.run_id.clone()]
    );
    // A run being cancelled is not started.
    assert!(promote(ConcurrencyPolicy::Allow, &[&request_cancel(&q1)]).is_empty());
}

#[test]
fn workflow_launch_failures_are_recorded() {
    let mut a = task("a", &[]);
    a.retries = 1;
    let wf = workflow(vec![a]);
    let mut free = Capacity {
        workers: 8,
        memory_mb: 1 << 20,
        gpus: 0,
    };
    let run = decide(&running(&wf), &BTreeMap::new(), &mut free, T0)
        .run
        .unwrap();
    // The cluster refused: a failed attempt, retried.
    let retried = launch_failed(&run, "a", &id("a", 1), "no room".into(), true, T0).unwrap();
    assert_eq!(retried.task("a").unwrap().state, TaskState::Retrying);
    // The SQL no longer compiles: failed at once.
    let failed = launch_failed(&run, "a", &id("a", 1), "bad SQL".into(), false, T0).unwrap();
    assert_eq!(failed.task("a").unwrap().state, TaskState::Failed);
    assert_eq!(failed.state, RunState::Failed);
    // Not the current attempt: nothing to record.
    assert_eq!(
        launch_failed(&run, "a", &id("a", 2), "x".into(), true, T0),
        None
    );
}

/// Instances are matched to runs by their typed owner, not by parsing their ids: a
/// task instance whose id names another run still belongs to its owner's run, and a
/// job's instance is never the scheduler's to stop, even with a task-like id.
#[test]
fn workflow_instances_belong_to_the_run_their_owner_names() {
    let wf = workflow(vec![task("a", &[])]);
    let run = running(&wf);
    let mut stray = inst("w000001-99.a.1", InstanceState::Running);
    stray.owner = crate::model::InstanceOwner::Task {
        workflow: "w000001".into(),
        run: run.run_id.clone(),
        task: "a".into(),
        attempt: 1,
    };
    let mut job = inst("w000001-98.a.1", InstanceState::Running);
    job.owner = crate::model::InstanceOwner::Job {
        id: "j".into(),
        version: 1,
    };
    let observed = BTreeMap::from([
        (stray.instance_id.clone(), stray.clone()),
        (job.instance_id.clone(), job),
    ]);
    let active = BTreeSet::from([run.run_id.clone()]);
    assert_eq!(orphan_actions(&observed, &active), []);
    assert_eq!(
        orphan_actions(&observed, &BTreeSet::new()),
        [RunAction::Stop {
            instance_id: stray.instance_id.clone(),
            reason: "its run has ended".into()
        }]
    );
    // Its run sees it as its own (not a current attempt: stopped).
    let mut free = Capacity {
        workers: 64,
        memory_mb: 1 << 20,
        gpus: 0,
    };
    let d = decide(&run, &observed, &mut free, T0);
    assert!(
        d.actions
            .iter()
            .any(|a| matches!(a, RunAction::Stop { instance_id, .. }
            if *instance_id == stray.instance_id)),
        "{:?}",
        d.actions
    );
}
