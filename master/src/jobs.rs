//! The jobs service, between the thin REST handlers (`api/jobs.rs`) and the shared
//! [`Core`]: a job's validation, compilation, versioning, change plans and events, each
//! written durably before it is acknowledged, then a wake-up for the reconcile loop
//! (whose watchdog half starts, stops and restarts the job's instances).

use crate::core::Core;
use crate::model::{now_ms, DesiredState, Job, JobEvent, JobStatus, Resources, FORMAT_VERSION};
use crate::service::{
    check_name, check_resources, checkpoint_interval, checkpoints_retained, plan_is_bounded,
    ServiceError,
};
use crate::store::NewEvent;
use crate::watchdog::Policy;
use std::sync::{Arc, Mutex};

/// A request to create a job.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// Its name.
    pub name: String,
    /// The SQL script.
    pub sql: String,
    /// Resources (defaults when absent).
    pub resources: Resources,
    /// Cluster (default `local`).
    pub cluster: String,
    /// Desired state (default running).
    pub desired_state: DesiredState,
}

/// A change to a job's spec; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct JobPatch {
    /// New SQL.
    pub sql: Option<String>,
    /// New parallelism.
    pub parallelism: Option<u32>,
    /// New memory cap.
    pub memory_mb: Option<u64>,
    /// New GPU count.
    pub gpus: Option<u32>,
    /// New process count.
    pub processes: Option<u32>,
    /// New cluster.
    pub cluster: Option<String>,
    /// New desired state.
    pub desired_state: Option<DesiredState>,
    /// Start from this savepoint (the epoch of the checkpoint it pinned).
    pub from_savepoint: Option<u64>,
}

/// A job after a patch (see `JobsService::patched`).
struct Patched {
    job: Job,
    changes: Vec<String>,
    plan: Option<sluice_compiler::DataflowPlan>,
}

/// What a change of a job would do ([`JobsService::plan_job_change`]).
#[derive(Debug)]
pub struct JobPlan {
    /// The plan's id: the job's version and a hash of the change; an update guarded
    /// by it is refused once either differs.
    pub plan_id: String,
    /// The job now.
    pub old: Job,
    /// The job after the change (version not yet bumped).
    pub new: Job,
    /// The changes in words (empty: nothing changes).
    pub changes: Vec<String>,
    /// Per source, stateful operator and sink.
    pub state: sluice_compiler::state::ChangePlan,
    /// The checkpoint a restart would restore from.
    pub latest: Option<crate::checkpoints::LatestCheckpoint>,
}

/// The id of the plan of `patch` against `job` as it is now.
pub fn plan_id_of(job: &Job, patch: &JobPatch) -> String {
    let key = serde_json::json!([
        patch.sql,
        patch.parallelism,
        patch.memory_mb,
        patch.gpus,
        patch.processes,
        patch.cluster,
        patch.desired_state,
        patch.from_savepoint,
    ]);
    format!(
        "v{}-{}",
        job.version,
        sluice_compiler::state::fnv(key.to_string().as_bytes())
    )
}

/// The jobs service: the core, and what only jobs have (the watchdog's policy and the
/// lock that keeps a start from racing a delete or a change).
pub struct JobsService {
    /// What it shares with the workflows service.
    pub core: Arc<Core>,
    /// The watchdog's policy.
    pub policy: Policy,
    /// Held by job deletes and spec changes while they write, and by the watchdog from
    /// its last check of a job to the launch of its instance: so no instance starts
    /// for a job deleted or changed after the watchdog decided to start it.
    starts: Mutex<()>,
}

impl JobsService {
    /// The jobs service over `core`, restarting by `policy`.
    pub fn new(core: Arc<Core>, policy: Policy) -> JobsService {
        JobsService {
            core,
            policy,
            starts: Mutex::new(()),
        }
    }

    /// Takes [`JobsService`]'s start lock (a panic while it was held leaves nothing half-done).
    pub fn lock_starts(&self) -> std::sync::MutexGuard<'_, ()> {
        self.starts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn event(&self, job: &Job, kind: &str, message: String) -> Result<JobEvent, ServiceError> {
        Ok(self.core.store.append_event(
            &job.id,
            NewEvent {
                at_ms: now_ms(),
                kind: kind.to_string(),
                version: job.version,
                state: None,
                message,
                by: crate::auth::current_actor(),
            },
        )?)
    }

    /// Creates a job: validates, compiles, stores (durably), wakes the watchdog.
    pub fn create_job(&self, new: NewJob) -> Result<Job, ServiceError> {
        check_name("job", &new.name)?;
        check_resources(&new.resources)?;
        self.core.check_cluster(&new.cluster, &new.resources)?;
        let compiled = self.core.compile_job_sql(&new.sql)?;
        if self.core.store.get_job(&new.name)?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "job '{}' already exists",
                new.name
            )));
        }
        let now = now_ms();
        let id = format!("j{:06}", self.core.store.next_id()?);
        let bounded = plan_is_bounded(&compiled.plan);
        let job = Job {
            format_version: FORMAT_VERSION,
            id,
            name: new.name,
            version: 1,
            sql: self.core.seal_sql(&new.sql),
            resources: new.resources,
            cluster: new.cluster,
            desired_state: new.desired_state,
            checkpoint_interval_ms: checkpoint_interval(&compiled, bounded)?,
            checkpoints_retained: checkpoints_retained(&compiled)?,
            plan: self.core.seal_plan(compiled.plan),
            bounded,
            created_at_ms: now,
            updated_at_ms: now,
            owner: crate::auth::current_actor(),
            restore_from: None,
        };
        let status = JobStatus::new(&job.id, 1, now);
        self.core.store.create_job(&job, &status)?;
        self.event(
            &job,
            "created",
            format!(
                "created at version 1: parallelism {}, {} MiB, {} GPUs on cluster {}",
                job.resources.parallelism, job.resources.memory_mb, job.resources.gpus, job.cluster
            ),
        )?;
        self.core.wake();
        Ok(job)
    }

    /// Changes a job's spec; bumps its version when anything changed.
    pub fn update_job(&self, name: &str, patch: JobPatch) -> Result<Job, ServiceError> {
        self.update_job_planned(name, patch, None)
    }

    /// [`Master::update_job`], refused with 409 when `plan_id` is given and is not the
    /// id of the plan this change has now ([`JobsService::plan_job_change`]): the plan the
    /// caller reviewed was computed against another version, or for another change.
    pub fn update_job_planned(
        &self,
        name: &str,
        patch: JobPatch,
        plan_id: Option<&str>,
    ) -> Result<Job, ServiceError> {
        let Some(old) = self.core.store.get_job(name)? else {
            return Err(ServiceError::NotFound(format!(
                "job '{name}' does not exist"
            )));
        };
        if let Some(wanted) = plan_id {
            let now = plan_id_of(&old, &patch);
            if wanted != now {
                return Err(ServiceError::Conflict(format!(
                    "plan '{wanted}' is outdated: job '{name}' is at version {} and this change's plan is '{now}'; review the plan again (POST /api/v1/jobs/{name}/plan)",
                    old.version
                )));
            }
        }
        let Patched {
            mut job, changes, ..
        } = self.patched(&old, patch)?;
        if changes.is_empty() {
            return Ok(old);
        }
        job.version += 1;
        job.updated_at_ms = now_ms();
        {
            let _starts = self.lock_starts();
            self.core.store.update_job(&job, old.version)?;
        }
        self.event(
            &job,
            "updated",
            format!(
                "version {} → {}: {}",
                old.version,
                job.version,
                changes.join(", ")
            ),
        )?;
        self.core.wake();
        Ok(job)
    }

    /// `old` with `patch` applied (checked and compiled), the changes in words, and the
    /// new plan (unsealed) when the SQL changed.
    fn patched(&self, old: &Job, patch: JobPatch) -> Result<Patched, ServiceError> {
        let mut job = old.clone();
        let mut changes = Vec::new();
        let mut plan = None;
        if let Some(p) = patch.parallelism {
            if p != job.resources.parallelism {
                changes.push(format!("parallelism {} → {p}", job.resources.parallelism));
                job.resources.parallelism = p;
            }
        }
        if let Some(m) = patch.memory_mb {
            if m != job.resources.memory_mb {
                changes.push(format!("memory_mb {} → {m}", job.resources.memory_mb));
                job.resources.memory_mb = m;
            }
        }
        if let Some(g) = patch.gpus {
            if g != job.resources.gpus {
                changes.push(format!("gpus {} → {g}", job.resources.gpus));
                job.resources.gpus = g;
            }
        }
        if let Some(c) = patch.cluster {
            if c != job.cluster {
                changes.push(format!("cluster {} → {c}", job.cluster));
                job.cluster = c;
            }
        }
        // A change of parallelism or cluster that names no process count keeps the
        // job's while it still fits them; else the cluster chooses again.
        let reshaped =
            job.resources.parallelism != old.resources.parallelism || job.cluster != old.cluster;
        let processes = patch.processes.unwrap_or_else(|| {
            if !reshaped || self.core.processes_fit(&job.cluster, &job.resources) {
                job.resources.processes
            } else {
                self.core
                    .processes_for(&job.cluster, job.resources.parallelism)
            }
        });
        if processes != job.resources.processes {
            changes.push(format!(
                "processes {} → {processes}",
                job.resources.processes
            ));
            job.resources.processes = processes;
        }
        check_resources(&job.resources)?;
        self.core.check_cluster(&job.cluster, &job.resources)?;
        if let Some(d) = patch.desired_state {
            if d != job.desired_state {
                changes
                    .push(format!("desired state {:?} → {d:?}", job.desired_state).to_lowercase());
                job.desired_state = d;
            }
        }
        if let Some(n) = patch.from_savepoint {
            let dir = self.core.checkpoints.job_dir(&job.id);
            let known =
                crate::checkpoints::savepoints(&dir).map_err(ServiceError::CheckpointStore)?;
            if !known.iter().any(|s| s.record.epoch == n) {
                return Err(ServiceError::NotFound(format!(
                    "job '{}' has no savepoint {n} (GET /api/v1/jobs/{}/savepoints lists them)",
                    job.name, job.name
                )));
            }
            let latest = crate::checkpoints::latest(&dir).map_or(0, |l| l.epoch);
            job.restore_from = Some(sluice_compiler::instance::RestoreFrom {
                savepoint: n,
                unless_newer_than: latest,
            });
            changes.push(format!("start from savepoint {n}"));
        }
        if let Some(sql) = patch.sql {
            let compiled = self.core.compile_job_sql(&sql)?;
            if sql != job.sql {
                changes.push("SQL changed".to_string());
                job.bounded = plan_is_bounded(&compiled.plan);
                job.checkpoint_interval_ms = checkpoint_interval(&compiled, job.bounded)?;
                job.checkpoints_retained = checkpoints_retained(&compiled)?;
                plan = Some(compiled.plan.clone());
                job.plan = self.core.seal_plan(compiled.plan);
                job.sql = self.core.seal_sql(&sql);
            }
        }
        Ok(Patched { job, changes, plan })
    }

    /// What applying `patch` to job `name` would do, without doing it: the changes, the
    /// restart, and per source, stateful operator and sink whether it is kept, reset,
    /// new or dropped, and why (`sluice_compiler::state::change_plan`).
    pub fn plan_job_change(&self, name: &str, patch: JobPatch) -> Result<JobPlan, ServiceError> {
        let Some(old) = self.core.store.get_job(name)? else {
            return Err(ServiceError::NotFound(format!(
                "job '{name}' does not exist"
            )));
        };
        let plan_id = plan_id_of(&old, &patch);
        let Patched { job, changes, plan } = self.patched(&old, patch)?;
        let new_plan = plan.as_ref().unwrap_or(&old.plan);
        let state = sluice_compiler::state::change_plan(&old.plan, new_plan);
        let latest = match old.checkpoint_interval_ms {
            Some(_) => crate::checkpoints::latest(&self.core.checkpoints.job_dir(&old.id)),
            None => None,
        };
        Ok(JobPlan {
            plan_id,
            old,
            new: job,
            changes,
            state,
            latest,
        })
    }

    /// Deletes a job; the watchdog stops its instances.
    pub fn delete_job(&self, name: &str) -> Result<Job, ServiceError> {
        let deleted = {
            let _starts = self.lock_starts();
            self.core.store.delete_job(name)?
        };
        let Some(job) = deleted else {
            return Err(ServiceError::NotFound(format!(
                "job '{name}' does not exist"
            )));
        };
        let _ = self.event(&job, "deleted", "deleted".to_string());
        self.core.wake();
        Ok(job)
    }

    /// A job by name.
    pub fn job(&self, name: &str) -> Result<Job, ServiceError> {
        self.core
            .store
            .get_job(name)?
            .ok_or_else(|| ServiceError::NotFound(format!("job '{name}' does not exist")))
    }

    /// Every job with its status (a job whose status is missing gets a fresh one). A
    /// job deleted between the listing and the read of its status is left out (its
    /// status is gone with it; a fresh one would look like a job never run).
    pub fn jobs_with_status(&self) -> Result<Vec<(Job, JobStatus)>, ServiceError> {
        let mut out = Vec::new();
        for job in self.core.store.list_jobs()? {
            let status = match self.core.store.get_status(&job.id)? {
                Some(status) => status,
                None => match self.core.store.get_job(&job.name)? {
                    Some(now) if now.id == job.id => {
                        JobStatus::new(&job.id, job.version, job.created_at_ms)
                    }
                    _ => continue,
                },
            };
            out.push((job, status));
        }
        Ok(out)
    }

    /// A job's status.
    pub fn status_of(&self, job: &Job) -> Result<JobStatus, ServiceError> {
        Ok(self
            .core
            .store
            .get_status(&job.id)?
            .unwrap_or_else(|| JobStatus::new(&job.id, job.version, job.created_at_ms)))
    }
}
