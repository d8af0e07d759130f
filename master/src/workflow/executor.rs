//! The workflow scheduler: one [`cycle`] observes the clusters, creates the runs of the
//! ticks that fell due (compare-and-set, with the new last tick, in one durable write),
//! starts queued runs the concurrency policy allows, moves every active run forward
//! with [`runs::decide`](super::runs::decide), persists each run's new record and only
//! then applies its actions (launch, stop, retire) through the
//! [`Cluster`](crate::cluster::Cluster) trait. `sluice serve`'s one reconcile loop
//! ([`crate::reconcile`]) runs it after the watchdog, on the same observation
//! ([`cycle_with`]). `now` is a parameter, so tests drive cycles with a fake clock.

use super::runs::{self, launch_failed, promote, tick_state, RunAction};
use super::schedule::{due_ticks, Schedule};
use super::service::WorkflowsService;
use super::template::render;
use super::{run_id, workflow_job_id, RunTrigger, SchedulerState, WorkflowRun};
use crate::cluster::LaunchSpec;
use crate::model::{InstanceOwner, ObservedInstance, FORMAT_VERSION};
use crate::observe::Observation;
use crate::service::ServiceError;
use crate::store::StoreError;
use sluice_compiler::instance::WorkerRequest;
use std::collections::{BTreeMap, BTreeSet};

/// Rows per source batch for task instances.
const BATCH_SIZE: usize = 8192;

/// One cycle at time `now_ms`. Returns what it did, one line each (for the log).
pub fn cycle(m: &WorkflowsService, now_ms: i64) -> Result<Vec<String>, String> {
    let seen = Observation::of(&m.core.clusters).map_err(|e| e.to_string())?;
    cycle_with(m, &seen, now_ms)
}

/// One cycle over an observation made by the caller ([`crate::reconcile`]'s loop, which
/// hands the same one to the watchdog).
pub fn cycle_with(
    m: &WorkflowsService,
    seen: &Observation,
    now_ms: i64,
) -> Result<Vec<String>, String> {
    let mut log = Vec::new();
    let mut errors = Vec::new();

    // Observe: workflow instances by id, and what each cluster has left.
    let observed: BTreeMap<String, ObservedInstance> = seen
        .task_instances()
        .map(|i| (i.instance_id.clone(), i.clone()))
        .collect();
    let mut free = seen.free.clone();

    // Ticks that fell due.
    let workflows = m.store.list_workflows().map_err(|e| e.to_string())?;
    let active = m.store.active_runs().map_err(|e| e.to_string())?;
    for wf in workflows.iter().filter(|w| w.spec.enabled) {
        let schedule = match Schedule::parse(&wf.spec.schedule.cron, &wf.spec.schedule.timezone) {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("workflow {}: {e}", wf.name));
                continue;
            }
        };
        let last = match m.store.get_scheduler_state(&wf.id) {
            Ok(s) => s.map_or(wf.created_at_ms, |s| s.last_tick_ms),
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        let due = due_ticks(
            &schedule,
            wf.spec.catchup,
            last,
            now_ms,
            m.scheduler.misfire_grace_ms,
        );
        let Some(advance_to) = due.advance_to else {
            continue;
        };
        let busy = active.iter().filter(|r| r.workflow_id == wf.id).count();
        let state = tick_state(wf.spec.concurrency, busy);
        let new: Vec<WorkflowRun> = due
            .run
            .iter()
            .map(|&t| {
                runs::new_run(
                    wf,
                    run_id(wf, t),
                    RunTrigger::Scheduled,
                    t,
                    &BTreeMap::new(),
                    state,
                    now_ms,
                )
            })
            .collect();
        let next = SchedulerState {
            format_version: FORMAT_VERSION,
            workflow_id: wf.id.clone(),
            last_tick_ms: advance_to,
        };
        match m.store.create_runs(&new, Some(&next)) {
            Ok(inserted) => {
                for id in inserted {
                    log.push(
                        format!("workflow {}: run {id} created ({state:?})", wf.name)
                            .to_lowercase(),
                    );
                }
                if due.passed_over > 0 {
                    log.push(format!(
                        "workflow {}: {} missed tick(s) passed over (catch-up {:?})",
                        wf.name, due.passed_over, wf.spec.catchup
                    ));
                }
            }
            // Deleted since it was listed.
            Err(StoreError::NotFound(_)) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }

    // Start what the concurrency policies allow.
    let mut active = m.store.active_runs().map_err(|e| e.to_string())?;
    let policies: BTreeMap<&str, _> = workflows
        .iter()
        .map(|w| (w.id.as_str(), w.spec.concurrency))
        .collect();
    let mut by_workflow: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in active.iter().enumerate() {
        by_workflow
            .entry(r.workflow_id.clone())
            .or_default()
            .push(i);
    }
    for (wid, idx) in &by_workflow {
        // A deleted workflow's runs are being cancelled: none starts.
        let Some(policy) = policies.get(wid.as_str()) else {
            continue;
        };
        let runs_of: Vec<&WorkflowRun> = idx.iter().map(|&i| &active[i]).collect();
        for id in promote(*policy, &runs_of) {
            let Some(&i) = idx.iter().find(|&&i| active[i].run_id == id) else {
                continue;
            };
            match m.store.update_run(&runs::start(&active[i], now_ms)) {
                Ok(stored) => {
                    log.push(format!("run {id} started"));
                    active[i] = stored;
                }
                Err(StoreError::VersionMismatch { .. }) => {}
                Err(e) => errors.push(e.to_string()),
            }
        }
    }

    // Move every active run forward: persist first, then act.
    let active_ids: BTreeSet<String> = active.iter().map(|r| r.run_id.clone()).collect();
    for run in &active {
        let free = free.entry(run.cluster.clone()).or_default();
        let decision = runs::decide(run, &observed, free, now_ms);
        let mut stored = match decision.run {
            Some(new) => match m.store.update_run(&new) {
                Ok(s) => {
                    describe_changes(run, &s, &mut log);
                    s
                }
                // Changed under us (a cancel): decide again next cycle.
                Err(StoreError::VersionMismatch { .. }) => continue,
                Err(e) => {
                    errors.push(e.to_string());
                    continue;
                }
            },
            None => run.clone(),
        };
        for action in decision.actions {
            match apply(m, &mut stored, &action, &observed, now_ms) {
                Ok(line) => log.push(line),
                Err(e) => errors.push(e),
            }
        }
    }

    // Instances whose run is no longer active.
    for action in runs::orphan_actions(&observed, &active_ids) {
        match apply_instance(m, &action, &observed) {
            Ok(line) => log.push(line),
            Err(e) => errors.push(e),
        }
    }

    if errors.is_empty() {
        Ok(log)
    } else {
        for line in log {
            tracing::info!("scheduler: {line}");
        }
        Err(errors.join("; "))
    }
}

/// Log lines for a run's state changes.
fn describe_changes(old: &WorkflowRun, new: &WorkflowRun, log: &mut Vec<String>) {
    for (a, b) in old.tasks.iter().zip(&new.tasks) {
        if a.state != b.state || a.attempts.len() != b.attempts.len() {
            log.push(
                format!(
                    "run {} task {}: {:?} → {:?}{}",
                    new.run_id,
                    b.spec.id,
                    a.state,
                    b.state,
                    b.message
                        .as_ref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                )
                .replace("UpstreamFailed", "upstream_failed"),
            );
        }
    }
    if old.state != new.state {
        log.push(format!("run {}: {:?} → {:?}", new.run_id, old.state, new.state).to_lowercase());
    }
}

/// Applies one action of a run. A launch that cannot happen is recorded in the run
/// (its SQL no longer compiles: the task fails; the cluster refused: a failed attempt).
fn apply(
    m: &WorkflowsService,
    run: &mut WorkflowRun,
    action: &RunAction,
    observed: &BTreeMap<String, ObservedInstance>,
    now_ms: i64,
) -> Result<String, String> {
    let RunAction::Launch {
        task_id,
        instance_id,
        attempt,
        ..
    } = action
    else {
        return apply_instance(m, action, observed);
    };
    let Some(task) = run.task(task_id).cloned() else {
        return Err(format!("run {} has no task {task_id}", run.run_id));
    };
    let failure = |run: &mut WorkflowRun, message: String, retryable: bool| {
        let Some(new) = launch_failed(
            run,
            task_id,
            instance_id,
            message.clone(),
            retryable,
            now_ms,
        ) else {
            return Ok(String::new());
        };
        match m.store.update_run(&new) {
            Ok(stored) => {
                *run = stored;
                Ok(format!("cannot launch {instance_id}: {message}"))
            }
            Err(e) => Err(format!(
                "cannot launch {instance_id}: {message} (and cannot record it: {e})"
            )),
        }
    };
    let rendered = match render(&task.spec.sql, &run.parameters) {
        Ok(sql) => sql,
        Err(e) => return failure(run, format!("its SQL does not render: {e}"), false),
    };
    let compiled = match m.core.compile_job_sql(&rendered) {
        Ok(c) => c,
        Err(ServiceError::Store(e)) => return Err(format!("cannot compile {instance_id}: {e}")),
        Err(e) => return failure(run, format!("its SQL does not compile: {e}"), false),
    };
    let Some(cluster) = m.core.clusters.get(&run.cluster) else {
        return failure(
            run,
            format!("cluster '{}' does not exist", run.cluster),
            false,
        );
    };
    let spec = LaunchSpec {
        instance_id: instance_id.clone(),
        owner: InstanceOwner::Task {
            workflow: run.workflow_id.clone(),
            run: run.run_id.clone(),
            task: task_id.to_string(),
            attempt: *attempt,
        },
        job_id: workflow_job_id(&run.workflow_id),
        job_name: run.workflow_name.clone(),
        job_version: run.workflow_version,
        resources: task.spec.resources,
        worker: WorkerRequest {
            plan: compiled.plan,
            workers: task.spec.resources.parallelism as usize,
            batch_size: BATCH_SIZE,
            progress_interval_ms: None,
            checkpoint: None,
            secret_key_file: m.core.seal_key_file(),
            peers: Vec::new(),
            process: 0,
        },
    };
    match cluster.launch(&spec) {
        Ok(()) => Ok(format!(
            "run {} task {task_id}: launched attempt {attempt} as {instance_id}",
            run.run_id
        )),
        Err(e) => failure(run, format!("the cluster refused it: {e}"), true),
    }
}

/// Stops or retires an instance.
fn apply_instance(
    m: &WorkflowsService,
    action: &RunAction,
    observed: &BTreeMap<String, ObservedInstance>,
) -> Result<String, String> {
    let (id, stop, reason) = match action {
        RunAction::Stop {
            instance_id,
            reason,
        } => (instance_id, true, reason.as_str()),
        RunAction::Retire { instance_id } => (instance_id, false, ""),
        RunAction::Launch { instance_id, .. } => {
            return Err(format!("launch of {instance_id} without its run"))
        }
    };
    let Some(inst) = observed.get(id) else {
        return Ok(String::new());
    };
    let Some(cluster) = m.core.clusters.get(&inst.cluster) else {
        return Err(format!("cluster '{}' does not exist", inst.cluster));
    };
    if stop {
        cluster
            .stop(id)
            .map_err(|e| format!("cannot stop {id}: {e}"))?;
        Ok(format!("stopped {id}: {reason}"))
    } else {
        cluster
            .retire(id)
            .map_err(|e| format!("cannot retire {id}: {e}"))?;
        Ok(String::new())
    }
}

#[cfg(test)]
#[path = "executor_tests.rs"]
mod tests;
