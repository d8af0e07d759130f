//! Applies the watchdog's actions to the clusters and the store, and runs the
//! reconcile loop: observe → [`decide`](super::decide) → apply, every tick or as soon as
//! the API signals a change.

use super::{decide, Action, ClusterView, DesiredJob};
use crate::cluster::LaunchSpec;
use crate::model::{now_ms, Job, JobState, ObservedInstance};
use crate::service::Master;
use crate::store::NewEvent;
use sluice_compiler::instance::WorkerRequest;
use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

/// Rows per source batch for instances.
const BATCH_SIZE: usize = 8192;

/// True for instances that run a workflow task (their job id starts with
/// [`WORKFLOW_JOB_PREFIX`]); the job watchdog leaves them alone.
pub fn is_workflow_instance(i: &ObservedInstance) -> bool {
    i.job_id.starts_with(WORKFLOW_JOB_PREFIX)
}

/// The job-id prefix of workflow task instances.
pub const WORKFLOW_JOB_PREFIX: &str = "wf:";

/// One reconcile cycle: observe every cluster, decide, apply. Returns the actions
/// applied (for tests and logs).
pub fn reconcile_once(m: &Master) -> Result<Vec<Action>, String> {
    let now = now_ms();
    let jobs = m.jobs_with_status().map_err(|e| e.to_string())?;
    let mut observed: Vec<ObservedInstance> = Vec::new();
    let mut clusters = Vec::new();
    for c in m.clusters.values() {
        // Instances of workflow tasks (job ids starting with `wf:`) belong to the
        // workflow scheduler, not to this watchdog.
        observed.extend(
            c.observe()
                .map_err(|e| e.to_string())?
                .into_iter()
                .filter(|i| !is_workflow_instance(i)),
        );
        clusters.push(ClusterView {
            name: c.name().to_string(),
            capacity: c.capacity(),
        });
    }
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
        })
        .collect();
    let actions = decide(&desired, &observed, &clusters, &m.policy, now);
    let by_id: BTreeMap<&str, &Job> = jobs.iter().map(|(j, _)| (j.id.as_str(), j)).collect();
    let instances: BTreeMap<&str, &ObservedInstance> = observed
        .iter()
        .map(|i| (i.instance_id.as_str(), i))
        .collect();
    let mut errors = Vec::new();
    for action in &actions {
        if let Err(e) = apply(m, action, &by_id, &instances) {
            errors.push(e);
        }
        if let Ok(mut c) = m.counters.lock() {
            let kind = match action {
                Action::Start { .. } => "start",
                Action::Stop { .. } => "stop",
                Action::Retire { .. } => "retire",
                Action::SetStatus { .. } => "set_status",
            };
            *c.actions.entry(kind.to_string()).or_default() += 1;
        }
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
    let _ = m.store.append_event(
        job_id,
        NewEvent {
            at_ms: now_ms(),
            kind: kind.to_string(),
            version,
            state,
            message,
        },
    );
}

fn apply(
    m: &Master,
    action: &Action,
    jobs: &BTreeMap<&str, &Job>,
    instances: &BTreeMap<&str, &ObservedInstance>,
) -> Result<(), String> {
    match action {
        Action::SetStatus { status, event: ev } => {
            match m.store.put_status(status) {
                Ok(()) => {}
                // The job was deleted since this cycle read it: nothing to record.
                Err(crate::store::StoreError::NotFound(_)) => return Ok(()),
                Err(e) => return Err(e.to_string()),
            }
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
        } => {
            let Some(job) = jobs.get(job_id.as_str()) else {
                return Ok(());
            };
            if job.version != *version {
                return Ok(());
            }
            let Some(cluster) = m.clusters.get(&job.cluster) else {
                return Err(format!("cluster '{}' does not exist", job.cluster));
            };
            let spec = LaunchSpec {
                instance_id: instance_id.clone(),
                job_id: job.id.clone(),
                job_name: job.name.clone(),
                job_version: job.version,
                resources: job.resources,
                worker: WorkerRequest {
                    plan: job.plan.clone(),
                    workers: job.resources.parallelism as usize,
                    batch_size: BATCH_SIZE,
                    progress_interval_ms: None,
                    secret_key_file: m.seal_key_file(),
                    checkpoint: job.checkpoint_interval_ms.map(|interval_ms| {
                        sluice_compiler::instance::CheckpointConfig {
                            dir: m.checkpoint_root.join(&job.id).display().to_string(),
                            interval_ms,
                        }
                    }),
                },
            };
            if let Err(e) = cluster.launch(&spec) {
                // Count it as a failure of this version so a launch that always fails is
                // backed off like a crash loop, and retry after the initial backoff.
                if let Ok(Some(mut st)) = m.store.get_status(&job.id) {
                    let now = now_ms();
                    st.state = JobState::Restarting;
                    st.reason = format!("cannot start instance {instance_id}: {e}");
                    st.since_ms = now;
                    st.next_start_at_ms = Some(now + m.policy.backoff_initial_ms);
                    let _ = m.store.put_status(&st);
                    event(
                        m,
                        &job.id,
                        job.version,
                        "instance_failed",
                        Some(st.state),
                        st.reason.clone(),
                    );
                }
                return Err(format!("cannot start {instance_id}: {e}"));
            }
            Ok(())
        }
        Action::Stop {
            instance_id,
            reason,
        } => {
            let Some(inst) = instances.get(instance_id.as_str()) else {
                return Ok(());
            };
            let Some(cluster) = m.clusters.get(&inst.cluster) else {
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
        Action::Retire { instance_id } => {
            let Some(inst) = instances.get(instance_id.as_str()) else {
                return Ok(());
            };
            let Some(cluster) = m.clusters.get(&inst.cluster) else {
                return Ok(());
            };
            cluster.retire(instance_id).map_err(|e| e.to_string())
        }
    }
}

/// Runs the reconcile loop until `wake` is disconnected: a cycle every `interval`, or
/// right away when the API sends on the channel.
pub fn run_loop(m: Arc<Master>, wake: Receiver<()>, interval: Duration) {
    loop {
        let result = reconcile_once(&m);
        if let Ok(mut c) = m.counters.lock() {
            c.cycles += 1;
            if result.is_err() {
                c.cycle_errors += 1;
            }
        }
        match result {
            Ok(actions) => {
                for a in actions {
                    if !matches!(a, Action::Retire { .. }) {
                        eprintln!("watchdog: {}", describe(&a));
                    }
                }
            }
            Err(e) => eprintln!("watchdog: cycle error: {e}"),
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
