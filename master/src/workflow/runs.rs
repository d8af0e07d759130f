//! The run state machine, as pure functions (like the job watchdog's `decide`):
//! [`new_run`] builds a run's record, [`promote`] picks the queued runs that may start
//! under the workflow's concurrency policy, and [`decide`] moves one run forward from
//! the instances observed and `now`, returning the updated record and the
//! [`RunAction`]s the executor applies after persisting it.
//!
//! Task states: `pending` → `running` (attempt N's instance launched) → `succeeded`
//! (the instance finished) | `retrying` (it failed, crashed or timed out and retries
//! are left; the next attempt starts `retry_backoff_ms` later) | `failed` (none left,
//! and every task downstream becomes `upstream_failed`). A cancelled run stops what
//! runs (`cancelled`) and marks what never started `skipped`.
//!
//! Instances are matched to attempts by id (`<run>.<task>.<attempt>`), never by
//! resources. Any live instance of the run that is not a running task's current
//! attempt is stopped, any ended one is retired once its end is recorded, and a
//! current attempt with no instance (the master died between recording the launch and
//! making it) is launched under the same id, so an attempt never runs twice.

use super::template::run_parameters;
use super::{
    instance_id, Attempt, AttemptOutcome, ConcurrencyPolicy, RunState, RunTrigger, TaskRun,
    TaskState, Workflow, WorkflowRun,
};
use crate::model::{
    Capacity, InstanceOwner, InstanceState, ObservedInstance, Resources, FORMAT_VERSION,
};
use std::collections::{BTreeMap, BTreeSet};

/// Something the executor does for a run, after persisting the run's new record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunAction {
    /// Render and compile the task's SQL and launch attempt `attempt` as `instance_id`.
    Launch {
        /// The run.
        run_id: String,
        /// The task.
        task_id: String,
        /// The attempt (from 1).
        attempt: u32,
        /// The instance id to launch it as.
        instance_id: String,
    },
    /// Stop a live instance.
    Stop {
        /// Which.
        instance_id: String,
        /// Why (for the log).
        reason: String,
    },
    /// Mark an ended instance as accounted for.
    Retire {
        /// Which.
        instance_id: String,
    },
}

/// The outcome of [`decide`] for one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The run's new record, when it changed (to be written before the actions).
    pub run: Option<WorkflowRun>,
    /// What to do, in order.
    pub actions: Vec<RunAction>,
}

/// A new run of `workflow` for tick `logical_time_ms` in `state` (`queued`, or
/// `skipped` for a tick dropped by the concurrency policy).
pub fn new_run(
    workflow: &Workflow,
    run_id: String,
    trigger: RunTrigger,
    logical_time_ms: i64,
    overrides: &BTreeMap<String, String>,
    state: RunState,
    now_ms: i64,
) -> WorkflowRun {
    let tz = workflow
        .spec
        .schedule
        .timezone
        .parse()
        .unwrap_or(chrono_tz::UTC);
    let parameters = run_parameters(
        logical_time_ms,
        tz,
        &run_id,
        &workflow.spec.parameters,
        overrides,
    );
    let skipped = state == RunState::Skipped;
    WorkflowRun {
        format_version: FORMAT_VERSION,
        run_id,
        workflow_id: workflow.id.clone(),
        workflow_name: workflow.name.clone(),
        workflow_version: workflow.version,
        trigger,
        logical_time_ms,
        parameters,
        state,
        message: skipped.then(|| "the tick came while another run was active".to_string()),
        tasks: workflow
            .spec
            .tasks
            .iter()
            .map(|t| {
                let mut task = TaskRun::new(t.clone());
                if skipped {
                    task.state = TaskState::Skipped;
                    task.ended_at_ms = Some(now_ms);
                }
                task
            })
            .collect(),
        cluster: workflow.spec.cluster.clone(),
        cancel_requested: false,
        rev: 0,
        created_at_ms: now_ms,
        started_at_ms: None,
        ended_at_ms: skipped.then_some(now_ms),
    }
}

/// The state of a scheduled tick's new run: `skipped` under the `skip` policy when a
/// run of the workflow is active, `queued` otherwise ([`promote`] starts it).
pub fn tick_state(policy: ConcurrencyPolicy, active_runs: usize) -> RunState {
    if policy == ConcurrencyPolicy::Skip && active_runs > 0 {
        RunState::Skipped
    } else {
        RunState::Queued
    }
}

/// The queued runs (of one workflow) that may start now: all of them under `allow`;
/// under `skip` and `queue` the oldest one (by creation, then tick), and only when no
/// run is running. Runs being cancelled are left to [`decide`].
pub fn promote(policy: ConcurrencyPolicy, runs: &[&WorkflowRun]) -> Vec<String> {
    let mut queued: Vec<&&WorkflowRun> = runs
        .iter()
        .filter(|r| r.state == RunState::Queued && !r.cancel_requested)
        .collect();
    queued.sort_by(|a, b| {
        (a.created_at_ms, a.logical_time_ms, &a.run_id).cmp(&(
            b.created_at_ms,
            b.logical_time_ms,
            &b.run_id,
        ))
    });
    match policy {
        ConcurrencyPolicy::Allow => queued.iter().map(|r| r.run_id.clone()).collect(),
        ConcurrencyPolicy::Skip | ConcurrencyPolicy::Queue => {
            if runs.iter().any(|r| r.state == RunState::Running) {
                Vec::new()
            } else {
                queued
                    .first()
                    .map(|r| vec![r.run_id.clone()])
                    .unwrap_or_default()
            }
        }
    }
}

/// Starts a queued run (its tasks then become eligible in [`decide`]).
pub fn start(run: &WorkflowRun, now_ms: i64) -> WorkflowRun {
    let mut r = run.clone();
    r.state = RunState::Running;
    r.started_at_ms = Some(now_ms);
    r
}

/// Marks a cancel request on a run.
pub fn request_cancel(run: &WorkflowRun) -> WorkflowRun {
    let mut r = run.clone();
    r.cancel_requested = true;
    r
}

/// True when `free` can hold `r`.
fn fits(free: &Capacity, r: &Resources) -> bool {
    u64::from(r.parallelism) <= free.workers
        && r.memory_mb <= free.memory_mb
        && u64::from(r.gpus) <= free.gpus
}

fn take(free: &mut Capacity, r: &Resources) {
    free.workers = free.workers.saturating_sub(u64::from(r.parallelism));
    free.memory_mb = free.memory_mb.saturating_sub(r.memory_mb);
    free.gpus = free.gpus.saturating_sub(u64::from(r.gpus));
}

/// Task indices in dependency order (Kahn's algorithm, ties in spec order). Tasks on a
/// cycle (validation rejects those) come last, in spec order.
pub fn topological_order(tasks: &[TaskRun]) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.spec.id.as_str(), i))
        .collect();
    let mut placed = vec![false; tasks.len()];
    let mut order = Vec::with_capacity(tasks.len());
    loop {
        let next = (0..tasks.len()).find(|&i| {
            !placed[i]
                && tasks[i]
                    .spec
                    .depends_on
                    .iter()
                    .all(|d| index.get(d.as_str()).is_none_or(|&j| placed[j]))
        });
        match next {
            Some(i) => {
                placed[i] = true;
                order.push(i);
            }
            None => break,
        }
    }
    order.extend((0..tasks.len()).filter(|&i| !placed[i]));
    order
}

/// Records the end of a task's current attempt as a failure; the task retries (after
/// its backoff) while retries are left, else fails. `retryable: false` fails it now.
fn fail_attempt(
    task: &mut TaskRun,
    outcome: AttemptOutcome,
    message: String,
    retryable: bool,
    now_ms: i64,
) {
    let attempts = task.attempts.len() as u32;
    if let Some(a) = task.attempts.last_mut() {
        a.outcome = Some(outcome);
        a.ended_at_ms = Some(now_ms);
        a.message = Some(message.clone());
    }
    if retryable && attempts <= task.spec.retries {
        let at =
            now_ms.saturating_add(i64::try_from(task.spec.retry_backoff_ms).unwrap_or(i64::MAX));
        task.state = TaskState::Retrying;
        task.next_attempt_at_ms = Some(at);
        task.message = Some(format!(
            "attempt {attempts} failed ({message}); attempt {} after {} ms",
            attempts + 1,
            task.spec.retry_backoff_ms
        ));
    } else {
        task.state = TaskState::Failed;
        task.next_attempt_at_ms = None;
        task.ended_at_ms = Some(now_ms);
        task.message = Some(format!("attempt {attempts} failed: {message}"));
    }
}

/// Records that a launch of the current attempt of `task_id` failed before any
/// instance ran (its SQL no longer compiles: not retryable; the cluster refused it:
/// retryable). Returns `None` when that attempt is no longer current.
pub fn launch_failed(
    run: &WorkflowRun,
    task_id: &str,
    instance_id: &str,
    message: String,
    retryable: bool,
    now_ms: i64,
) -> Option<WorkflowRun> {
    let mut r = run.clone();
    let task = r.tasks.iter_mut().find(|t| t.spec.id == task_id)?;
    if task.current().map(|a| a.instance_id.as_str()) != Some(instance_id) {
        return None;
    }
    fail_attempt(task, AttemptOutcome::Failed, message, retryable, now_ms);
    finish_if_done(&mut r, now_ms);
    Some(r)
}

/// Starts attempt `attempts + 1` of `task` if the cluster has room.
fn try_launch(run_id: &str, task: &mut TaskRun, free: &mut Capacity, now_ms: i64) -> bool {
    if !fits(free, &task.spec.resources) {
        task.message = Some("waiting for cluster capacity".to_string());
        return false;
    }
    take(free, &task.spec.resources);
    let attempt = task.attempts.len() as u32 + 1;
    task.attempts.push(Attempt {
        attempt,
        instance_id: instance_id(run_id, &task.spec.id, attempt),
        started_at_ms: now_ms,
        ended_at_ms: None,
        outcome: None,
        message: None,
        rows_in: 0,
        rows_out: 0,
    });
    task.state = TaskState::Running;
    task.next_attempt_at_ms = None;
    task.message = None;
    true
}

/// Ends the run when every task has ended.
fn finish_if_done(r: &mut WorkflowRun, now_ms: i64) {
    if r.state != RunState::Running || !r.tasks.iter().all(|t| t.state.is_terminal()) {
        return;
    }
    let failed: Vec<&str> = r
        .tasks
        .iter()
        .filter(|t| t.state == TaskState::Failed)
        .map(|t| t.spec.id.as_str())
        .collect();
    if r.tasks.iter().all(|t| t.state == TaskState::Succeeded) {
        r.state = RunState::Succeeded;
        r.message = None;
    } else {
        r.state = RunState::Failed;
        r.message = Some(format!("failed tasks: {}", failed.join(", ")));
    }
    r.ended_at_ms = Some(now_ms);
}

/// Cancels a run: what runs is stopped (`cancelled`), what has not started is
/// `skipped`.
fn cancel(r: &mut WorkflowRun, now_ms: i64) {
    for task in &mut r.tasks {
        match task.state {
            TaskState::Running => {
                if let Some(a) = task.attempts.last_mut() {
                    a.outcome = Some(AttemptOutcome::Cancelled);
                    a.ended_at_ms = Some(now_ms);
                }
                task.state = TaskState::Cancelled;
                task.ended_at_ms = Some(now_ms);
                task.message = Some("the run was cancelled while it ran".to_string());
            }
            TaskState::Pending | TaskState::Retrying => {
                task.state = TaskState::Skipped;
                task.next_attempt_at_ms = None;
                task.ended_at_ms = Some(now_ms);
                task.message = Some("the run was cancelled".to_string());
            }
            _ => {}
        }
    }
    r.state = RunState::Cancelled;
    r.message = Some("cancelled on request".to_string());
    r.ended_at_ms = Some(now_ms);
}

/// Moves one run forward. `observed` holds the instances of workflow tasks (any run;
/// only this run's are looked at), `free` what the run's cluster can still hold this
/// cycle (launches take from it), `now_ms` the time.
pub fn decide(
    run: &WorkflowRun,
    observed: &BTreeMap<String, ObservedInstance>,
    free: &mut Capacity,
    now_ms: i64,
) -> Decision {
    let mut r = run.clone();
    let mine: Vec<&ObservedInstance> = observed
        .values()
        .filter(|i| run_of(i) == Some(run.run_id.as_str()))
        .collect();
    let mut reasons: BTreeMap<String, String> = BTreeMap::new();

    if r.cancel_requested && !r.state.is_terminal() {
        cancel(&mut r, now_ms);
    }
    if r.state == RunState::Running {
        let order = topological_order(&r.tasks);
        for i in order {
            let deps: Vec<TaskState> = r.tasks[i]
                .spec
                .depends_on
                .iter()
                .filter_map(|d| r.task(d).map(|t| t.state))
                .collect();
            let task = &mut r.tasks[i];
            match task.state {
                TaskState::Pending => {
                    if deps.iter().any(|s| {
                        matches!(
                            s,
                            TaskState::Failed
                                | TaskState::UpstreamFailed
                                | TaskState::Skipped
                                | TaskState::Cancelled
                        )
                    }) {
                        task.state = TaskState::UpstreamFailed;
                        task.ended_at_ms = Some(now_ms);
                        task.message = Some("a task it depends on did not succeed".to_string());
                    } else if deps.iter().all(|s| *s == TaskState::Succeeded) {
                        try_launch(&run.run_id, task, free, now_ms);
                    }
                }
                TaskState::Retrying if task.next_attempt_at_ms.is_none_or(|at| now_ms >= at) => {
                    try_launch(&run.run_id, task, free, now_ms);
                }
                TaskState::Running => {
                    let Some(current) = task.attempts.last().cloned() else {
                        continue;
                    };
                    let inst = observed.get(&current.instance_id);
                    let timed_out = task.spec.timeout_ms.is_some_and(|t| {
                        now_ms.saturating_sub(current.started_at_ms)
                            >= i64::try_from(t).unwrap_or(i64::MAX)
                    });
                    match inst {
                        Some(i) if i.state == InstanceState::Finished => {
                            if let Some(a) = task.attempts.last_mut() {
                                a.outcome = Some(AttemptOutcome::Succeeded);
                                a.ended_at_ms = Some(i.ended_at_ms.unwrap_or(now_ms));
                                a.rows_in = i.rows_in;
                                a.rows_out = i.rows_out;
                            }
                            task.state = TaskState::Succeeded;
                            task.ended_at_ms = Some(i.ended_at_ms.unwrap_or(now_ms));
                            task.message = None;
                        }
                        Some(i) if !i.state.is_live() => {
                            let message = i.message.clone().unwrap_or_else(|| {
                                format!("instance {} ended {:?}", i.instance_id, i.state)
                                    .to_lowercase()
                            });
                            if let Some(a) = task.attempts.last_mut() {
                                a.rows_in = i.rows_in;
                                a.rows_out = i.rows_out;
                            }
                            fail_attempt(task, AttemptOutcome::Failed, message, true, now_ms);
                        }
                        _ if timed_out => {
                            let message = format!(
                                "timed out after {} ms",
                                task.spec.timeout_ms.unwrap_or_default()
                            );
                            if let Some(i) = inst {
                                if let Some(a) = task.attempts.last_mut() {
                                    a.rows_in = i.rows_in;
                                    a.rows_out = i.rows_out;
                                }
                            }
                            reasons.insert(current.instance_id.clone(), message.clone());
                            fail_attempt(task, AttemptOutcome::TimedOut, message, true, now_ms);
                        }
                        _ => {}
                    }
                    // A retry whose backoff is zero starts in the same cycle.
                    if task.state == TaskState::Retrying
                        && task.next_attempt_at_ms.is_none_or(|at| now_ms >= at)
                    {
                        try_launch(&run.run_id, task, free, now_ms);
                    }
                }
                _ => {}
            }
        }
        finish_if_done(&mut r, now_ms);
    }

    // Instances, from the new record: current attempts without an instance are
    // launched, everything else of this run that lives is stopped, and what ended is
    // retired (its end is in the record by now).
    let current: BTreeSet<String> = r
        .tasks
        .iter()
        .filter_map(|t| t.current().map(|a| a.instance_id.clone()))
        .collect();
    let mut actions = Vec::new();
    for i in &mine {
        if current.contains(&i.instance_id) || i.retired {
            continue;
        }
        if i.state.is_live() {
            let reason = reasons
                .get(&i.instance_id)
                .cloned()
                .unwrap_or_else(|| match r.state {
                    RunState::Cancelled => "the run was cancelled".to_string(),
                    _ => "not a current attempt of its run".to_string(),
                });
            actions.push(RunAction::Stop {
                instance_id: i.instance_id.clone(),
                reason,
            });
        } else {
            actions.push(RunAction::Retire {
                instance_id: i.instance_id.clone(),
            });
        }
    }
    for t in &r.tasks {
        if let Some(a) = t.current() {
            if !observed.contains_key(&a.instance_id) {
                actions.push(RunAction::Launch {
                    run_id: r.run_id.clone(),
                    task_id: t.spec.id.clone(),
                    attempt: a.attempt,
                    instance_id: a.instance_id.clone(),
                });
            }
        }
    }
    let changed = r != *run;
    Decision {
        run: changed.then_some(r),
        actions,
    }
}

/// The run a task instance belongs to, as its owner says (none for a job's instance:
/// the scheduler never acts on those).
fn run_of(i: &ObservedInstance) -> Option<&str> {
    match &i.owner {
        InstanceOwner::Task { run, .. } => Some(run),
        InstanceOwner::Job { .. } => None,
    }
}

/// Actions for instances of workflow tasks whose run is not active (ended, or gone
/// with its workflow): stop the live ones, retire the ended ones.
pub fn orphan_actions(
    observed: &BTreeMap<String, ObservedInstance>,
    active_runs: &BTreeSet<String>,
) -> Vec<RunAction> {
    observed
        .values()
        .filter(|i| !i.retired && run_of(i).is_some_and(|run| !active_runs.contains(run)))
        .map(|i| {
            if i.state.is_live() {
                RunAction::Stop {
                    instance_id: i.instance_id.clone(),
                    reason: "its run has ended".to_string(),
                }
            } else {
                RunAction::Retire {
                    instance_id: i.instance_id.clone(),
                }
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "runs_tests.rs"]
mod tests;
