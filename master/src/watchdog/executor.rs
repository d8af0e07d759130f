//! Applies the watchdog's actions to the clusters and the store, and runs the
//! reconcile loop: observe → [`decide`](super::decide) → apply, every tick or as soon as
//! the API signals a change.
//!
//! A cycle acts on a snapshot, and the API changes jobs meanwhile. A `Start` is
//! therefore checked again right before the launch, under [`JobsService::lock_starts`](crate::jobs::JobsService::lock_starts) (which job
//! deletes and spec changes hold while they write): the job must still exist at the
//! decided version, desired running, and its stored status must still be the one the
//! decision wrote. Otherwise the start is dropped and the next cycle decides afresh; so
//! no instance starts for a deleted job, and a finished one is not run again.
//!
//! After the actions, the checkpoint directories of jobs that no longer exist and have
//! no live instance are deleted (their instances' directories are forgotten by
//! `decide`'s `Forget`s).

use super::{decide, start_failed, Action, DesiredJob};
use crate::cluster::LaunchSpec;
use crate::master::Master;
use crate::model::{
    now_ms, DesiredState, InstanceOwner, Job, JobState, JobStatus, ObservedInstance,
};
use crate::observe::Observation;
use crate::store::{NewEvent, StoreError};
use sluice_compiler::instance::WorkerRequest;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// Rows per source batch for instances.
const BATCH_SIZE: usize = 8192;

/// One reconcile cycle: observe every cluster, decide, apply. Returns the actions
/// applied (for tests and logs).
pub fn reconcile_once(m: &Master) -> Result<Vec<Action>, String> {
    let seen = Observation::of(&m.core.clusters).map_err(|e| e.error.to_string())?;
    reconcile_with(m, &seen)
}

/// One cycle over an observation made by the caller ([`crate::reconcile`]'s loop, which
/// hands the same one to the workflow scheduler): decide, apply.
pub fn reconcile_with(m: &Master, seen: &Observation) -> Result<Vec<Action>, String> {
    let now = now_ms();
    let jobs = m.jobs.jobs_with_status().map_err(|e| e.to_string())?;
    // Instances of workflow tasks belong to the workflow scheduler, not to this watchdog.
    let observed: Vec<ObservedInstance> = seen.job_instances().cloned().collect();
    let clusters = seen.clusters.clone();
    let desired: Vec<DesiredJob> = jobs
        .iter()
        .map(|(j, s)| DesiredJob {
            job_id: j.id.clone(),
            name: j.name.clone(),
            version: j.version,
            desired_state: j.desired_state,
            resources: j.resources,
            cluster: j.cluster.clone(),
            status: s.clone(),
            id_suffix: format!("-{:032x}", rand::random::<u128>()),
        })
        .collect();
    let actions = decide(&desired, &observed, &clusters, &m.jobs.policy, now);
    let mut cycle = Cycle {
        m,
        jobs: jobs.iter().map(|(j, s)| (j.id.as_str(), (j, s))).collect(),
        instances: observed
            .iter()
            .map(|i| (i.instance_id.as_str(), i))
            .collect(),
        written: BTreeMap::new(),
    };
    let mut errors = Vec::new();
    for action in &actions {
        if let Err(e) = cycle.apply(action) {
            errors.push(e);
        }
        if let Ok(mut c) = m.core.counters.lock() {
            let kind = match action {
                Action::Start { .. } => "start",
                Action::Stop { .. } => "stop",
                Action::Retire { .. } => "retire",
                Action::Forget { .. } => "forget",
                Action::SetStatus { .. } => "set_status",
            };
            *c.actions.entry(kind.to_string()).or_default() += 1;
        }
    }
    if let Err(e) = collect_checkpoints(m, &observed) {
        errors.push(e);
    }
    if errors.is_empty() {
        Ok(actions)
    } else {
        Err(errors.join("; "))
    }
}

fn event(
    m: &Master,
    job_id: &str,
    version: u64,
    kind: &str,
    state: Option<JobState>,
    message: String,
) {
    let _ = m.core.store.append_event(
        job_id,
        NewEvent {
            at_ms: now_ms(),
            kind: kind.to_string(),
            version,
            state,
            message,
            by: None,
        },
    );
}

/// One cycle's snapshot, and what it wrote so far.
struct Cycle<'a> {
    m: &'a Master,
    /// The jobs and statuses the decision was made from, by job id.
    jobs: BTreeMap<&'a str, (&'a Job, &'a JobStatus)>,
    /// The observed instances, by id.
    instances: BTreeMap<&'a str, &'a ObservedInstance>,
    /// The statuses this cycle wrote, by job id.
    written: BTreeMap<String, JobStatus>,
}

impl Cycle<'_> {
    fn apply(&mut self, action: &Action) -> Result<(), String> {
        let m = self.m;
        match action {
            Action::SetStatus { status, event: ev } => {
                match m.core.store.put_status(status) {
                    Ok(()) => {}
                    // The job was deleted since this cycle read it: nothing to record.
                    Err(StoreError::NotFound(_)) => return Ok(()),
                    Err(e) => return Err(e.to_string()),
                }
                self.written.insert(status.job_id.clone(), status.clone());
                if let Some((kind, message)) = ev {
                    event(
                        m,
                        &status.job_id,
                        status.version,
                        kind,
                        Some(status.state),
                        message.clone(),
                    );
                }
                Ok(())
            }
            Action::Start {
                job_id,
                version,
                instance_id,
            } => self.start(job_id, *version, instance_id),
            Action::Stop {
                instance_id,
                reason,
            } => {
                let Some(inst) = self.instances.get(instance_id.as_str()) else {
                    return Ok(());
                };
                let Some(cluster) = m.core.clusters.get(&inst.cluster) else {
                    return Err(format!("cluster '{}' does not exist", inst.cluster));
                };
                cluster.stop(instance_id).map_err(|e| e.to_string())?;
                event(
                    m,
                    &inst.job_id,
                    inst.job_version,
                    "instance_stopped",
                    None,
                    format!("stopped instance {instance_id}: {reason}"),
                );
                Ok(())
            }
            Action::Retire { instance_id } | Action::Forget { instance_id } => {
                let Some(inst) = self.instances.get(instance_id.as_str()) else {
                    return Ok(());
                };
                let Some(cluster) = m.core.clusters.get(&inst.cluster) else {
                    return Ok(());
                };
                let done = match action {
                    Action::Retire { .. } => cluster.retire(instance_id),
                    _ => cluster.forget(instance_id),
                };
                done.map_err(|e| e.to_string())
            }
        }
    }

    /// Launches `instance_id` of `job_id` at `version` if, under [`JobsService::lock_starts`](crate::jobs::JobsService::lock_starts), the
    /// job is still as decided (see the module documentation); a failed launch counts
    /// as a failure of the job ([`start_failed`]).
    fn start(&self, job_id: &str, version: u64, instance_id: &str) -> Result<(), String> {
        let m = self.m;
        let Some(&(job, decided_from)) = self.jobs.get(job_id) else {
            return Ok(());
        };
        // The status the decision wrote (or, had it nothing to write, the one it read).
        let expected = self.written.get(job_id).unwrap_or(decided_from);
        let _starts = m.jobs.lock_starts();
        let current = m.core.store.get_job(&job.name).map_err(|e| e.to_string())?;
        let still_wanted = current.is_some_and(|j| {
            j.id == job.id && j.version == version && j.desired_state == DesiredState::Running
        });
        let stored = m.core.store.get_status(job_id).map_err(|e| e.to_string())?;
        if !still_wanted || stored.as_ref() != Some(expected) {
            // Deleted, changed or accounted for since the decision: the next cycle
            // decides again from what is stored now.
            return Ok(());
        }
        let Some(cluster) = m.core.clusters.get(&job.cluster) else {
            return Err(format!("cluster '{}' does not exist", job.cluster));
        };
        let Err(e) = cluster.launch(&launch_spec(m, job, instance_id)) else {
            return Ok(());
        };
        let error = e.to_string();
        let (status, ev) = start_failed(expected, instance_id, &error, &m.jobs.policy, now_ms());
        match m.core.store.put_status(&status) {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => return Err(format!("cannot start {instance_id}: {error}; {e}")),
        }
        if let Some((kind, message)) = ev {
            event(m, job_id, version, &kind, Some(status.state), message);
        }
        Err(format!("cannot start {instance_id}: {error}"))
    }
}

/// What the cluster is asked to launch for `job`.
fn launch_spec(m: &Master, job: &Job, instance_id: &str) -> LaunchSpec {
    LaunchSpec {
        instance_id: instance_id.to_string(),
        owner: InstanceOwner::Job {
            id: job.id.clone(),
            version: job.version,
        },
        job_id: job.id.clone(),
        job_name: job.name.clone(),
        job_version: job.version,
        resources: job.resources,
        worker: WorkerRequest {
            plan: job.plan.clone(),
            workers: job.resources.parallelism as usize,
            batch_size: BATCH_SIZE,
            progress_interval_ms: None,
            secret_key_file: m.core.seal_key_file(),
            peers: Vec::new(),
            process: 0,
            checkpoint: job.checkpoint_interval_ms.map(|interval_ms| {
                sluice_compiler::instance::CheckpointConfig {
                    dir: m.core.checkpoints.job_dir(&job.id),
                    interval_ms,
                    restore_from: job.restore_from,
                    retained: job
                        .checkpoints_retained
                        .unwrap_or(sluice_compiler::instance::DEFAULT_CHECKPOINTS_RETAINED),
                }
            }),
        },
    }
}

/// Deletes the checkpoint directories (`<checkpoint root>/<job id>`) of jobs that no
/// longer exist and have no live instance in `observed` (in a shared store, only of
/// jobs this master ran: see [`crate::checkpoints::CheckpointStore::collect`]). The job
/// ids are read under [`JobsService::lock_starts`](crate::jobs::JobsService::lock_starts), so a job created meanwhile cannot have
/// started an instance that writes there yet.
fn collect_checkpoints(m: &Master, observed: &[ObservedInstance]) -> Result<(), String> {
    let _starts = m.jobs.lock_starts();
    let jobs: BTreeSet<String> = m
        .core
        .store
        .list_jobs()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|j| j.id)
        .collect();
    let live: BTreeSet<String> = observed
        .iter()
        .filter(|i| i.state.is_live())
        .map(|i| i.job_id.clone())
        .collect();
    let seen: BTreeSet<String> = observed.iter().map(|i| i.job_id.clone()).collect();
    m.core.checkpoints.collect(&jobs, &live, &seen)
}

/// Runs the reconcile loop until `wake` is disconnected: a cycle every `interval`, or
/// right away when the API sends on the channel.
pub fn run_loop(m: Arc<Master>, wake: Receiver<()>, interval: Duration) {
    loop {
        let result = reconcile_once(&m);
        if let Ok(mut c) = m.core.counters.lock() {
            c.cycles += 1;
            if result.is_err() {
                c.cycle_errors += 1;
            }
        }
        match result {
            Ok(actions) => {
                for a in actions {
                    if !matches!(a, Action::Retire { .. } | Action::Forget { .. }) {
                        tracing::info!("watchdog: {}", describe(&a));
                    }
                }
            }
            Err(e) => tracing::error!("watchdog: cycle error: {e}"),
        }
        match wake.recv_timeout(interval) {
            Ok(()) => {
                // Coalesce a burst of wake-ups into one cycle.
                while wake.try_recv().is_ok() {}
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// One line describing an action (for the master's log).
pub fn describe(a: &Action) -> String {
    match a {
        Action::Start {
            job_id,
            version,
            instance_id,
        } => format!("start {instance_id} (job {job_id} v{version})"),
        Action::Stop {
            instance_id,
            reason,
        } => format!("stop {instance_id}: {reason}"),
        Action::Retire { instance_id } => format!("retire {instance_id}"),
        Action::Forget { instance_id } => format!("forget {instance_id}"),
        Action::SetStatus { status, event } => format!(
            "job {} v{} → {:?}: {}",
            status.job_id,
            status.version,
            status.state,
            event
                .as_ref()
                .map(|(_, m)| m.as_str())
                .unwrap_or(status.reason.as_str())
        ),
    }
}
