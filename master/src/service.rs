//! The master's operations, between the thin REST handlers and the store, compiler and
//! clusters: validation, compilation, versioning, and waking the watchdog.

use crate::cluster::Cluster;
use crate::model::{
    now_ms, DesiredState, Job, JobEvent, JobStatus, ObservedInstance, Resources, StoredTable,
    FORMAT_VERSION,
};
use crate::store::{NewEvent, Store, StoreError};
use crate::watchdog::Policy;
use sluice_catalogs::{scrub_secrets, Catalog, CatalogError, MemoryCatalog, TableDescriptor};
use sluice_compiler::{compile, compile_tables, CompileError, Compiled, PhysicalPlan};
use sluice_connectors::Registry;
use std::collections::BTreeMap;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

/// Longest SQL text accepted (bytes).
pub const MAX_SQL_BYTES: usize = 256 * 1024;
/// Most worker threads one job may ask for.
pub const MAX_PARALLELISM: u32 = 256;

/// The most processes one instance may run as.
pub const MAX_PROCESSES: u32 = 64;
/// Smallest and largest memory cap (MiB).
pub const MEMORY_MB_RANGE: (u64, u64) = (64, 1 << 20);
/// Most GPUs one job may ask for.
pub const MAX_GPUS: u32 = 64;

/// Why an operation failed, in terms the REST layer maps to a status and error code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The request is malformed or violates a limit (400).
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// The SQL does not compile (422), with its position.
    #[error("{0}")]
    Sql(CompileError),
    /// A workflow task's SQL does not render or compile (422): the task, and the
    /// position in its (rendered) SQL.
    #[error("task '{task}': {message}")]
    TaskSql {
        /// The task's id.
        task: String,
        /// `syntax`, `plan`, `unsupported`, `catalog`, `internal` or `template`.
        kind: String,
        /// What is wrong.
        message: String,
        /// Line (from 1), when known.
        line: Option<u64>,
        /// Column (from 1), when known.
        column: Option<u64>,
    },
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// It exists already, or changed concurrently (409).
    #[error("{0}")]
    Conflict(String),
    /// The master's storage failed (500/503).
    #[error("{0}")]
    Store(StoreError),
    /// A cluster driver failed (500).
    #[error("{0}")]
    Cluster(String),
    /// The checkpoint store could not be read or written (503).
    #[error("{0}")]
    CheckpointStore(String),
    /// As many as allowed run already (429, `quota_exceeded`): query previews.
    #[error("{0}")]
    Busy(String),
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ServiceError::Conflict(format!("{m} already exists")),
            StoreError::NotFound(m) => ServiceError::NotFound(format!("{m} does not exist")),
            e @ StoreError::VersionMismatch { .. } => ServiceError::Conflict(e.to_string()),
            e => ServiceError::Store(e),
        }
    }
}

/// A 400 error with this message.
pub fn invalid(message: impl Into<String>) -> ServiceError {
    ServiceError::Invalid {
        message: message.into(),
    }
}

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

/// A job after a patch (see `Master::patched`).
struct Patched {
    job: Job,
    changes: Vec<String>,
    plan: Option<sluice_compiler::DataflowPlan>,
}

/// What a change of a job would do ([`Master::plan_job_change`]).
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

/// Counters the watchdog and API keep for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Watchdog actions applied, by kind (`start`, `stop`, `retire`, `set_status`).
    pub actions: BTreeMap<String, u64>,
    /// Watchdog cycles run.
    pub cycles: u64,
    /// Watchdog cycles that hit an error.
    pub cycle_errors: u64,
}

/// The master: the store, the clusters, the connector registry and the watchdog's
/// wake-up line. Shared by the REST handlers and the watchdog thread.
pub struct Master {
    /// Durable state.
    pub store: Arc<dyn Store>,
    /// Clusters by name.
    pub clusters: BTreeMap<String, Arc<dyn Cluster>>,
    /// Connectors (for compiling).
    pub registry: Registry,
    /// The watchdog's policy.
    pub policy: Policy,
    /// Wakes the watchdog up early (after a change).
    pub wake: Mutex<Option<Sender<()>>>,
    /// Metrics counters.
    pub counters: Mutex<Counters>,
    /// Workflows, the scheduler's last ticks and the run history.
    pub workflows: Arc<dyn crate::workflow::WorkflowStore>,
    /// Wakes the workflow scheduler up early (after a change).
    pub scheduler_wake: Mutex<Option<Sender<()>>>,
    /// The workflow scheduler's settings.
    pub scheduler: crate::workflow::executor::SchedulerConfig,
    /// Jobs checkpoint under `<this>/<job id>/` (`<data dir>/checkpoints`, or
    /// `--checkpoint-store`).
    pub checkpoints: crate::checkpoints::CheckpointStore,
    /// Seals secret option values at rest (`<data dir>/secret.key`); none: stored plain.
    pub seal_key: Option<sluice_catalogs::sealed::SealKey>,
    /// Where that key is, for the worker processes that open the values.
    pub seal_key_path: Option<std::path::PathBuf>,
    /// Held by job deletes and spec changes while they write, and by the watchdog from
    /// its last check of a job to the launch of its instance: so no instance starts
    /// for a job deleted or changed after the watchdog decided to start it.
    pub starts: Mutex<()>,
    /// What jobs' tables may touch (paths, endpoints, credentials); none: anything
    /// (a master built by a test). `sluice serve` always has one.
    pub sandbox: Option<crate::sandbox::Sandbox>,
    /// The metrics history (`sluice serve` samples into it); none: not kept.
    pub history: Option<Arc<crate::history::sampler::History>>,
    /// Query previews running now (`POST /api/v1/queries`).
    pub previews: crate::preview::Previews,
    /// The agents of the `hosts` clusters (`sluice agent`); none: no such cluster.
    pub agents: Option<Arc<crate::cluster::AgentRegistry>>,
}

/// A catalog over the store's tables.
struct StoreCatalog<'a> {
    store: &'a dyn Store,
}

impl Catalog for StoreCatalog<'_> {
    fn table(&self, name: &str) -> Result<Option<TableDescriptor>, CatalogError> {
        self.store
            .get_table(name)
            .map(|t| t.map(|t| t.descriptor))
            .map_err(|e| CatalogError::Unavailable(e.to_string()))
    }
    fn table_names(&self) -> Result<Vec<String>, CatalogError> {
        self.store
            .list_tables()
            .map(|ts| ts.into_iter().map(|t| t.descriptor.name).collect())
            .map_err(|e| CatalogError::Unavailable(e.to_string()))
    }
}

/// Job and table names: a letter, then letters, digits, `_` or `-`; at most 63.
pub fn check_name(what: &str, name: &str) -> Result<(), ServiceError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid {what} name '{}': use a letter, then letters, digits, '_' or '-' (at most 63)",
            name.chars().take(80).collect::<String>()
        )))
    }
}

/// Checks a SQL text's size and that it is not empty.
pub fn check_sql(sql: &str) -> Result<(), ServiceError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(invalid(format!(
            "the SQL is {} bytes; at most {MAX_SQL_BYTES} are accepted",
            sql.len()
        )));
    }
    if sql.trim().is_empty() {
        return Err(invalid("the SQL is empty"));
    }
    Ok(())
}

/// Checks resources against the limits.
pub fn check_resources(r: &Resources) -> Result<(), ServiceError> {
    if r.parallelism == 0 || r.parallelism > MAX_PARALLELISM {
        return Err(invalid(format!(
            "resources.parallelism must be between 1 and {MAX_PARALLELISM} (got {})",
            r.parallelism
        )));
    }
    if r.memory_mb < MEMORY_MB_RANGE.0 || r.memory_mb > MEMORY_MB_RANGE.1 {
        return Err(invalid(format!(
            "resources.memory_mb must be between {} and {} (got {})",
            MEMORY_MB_RANGE.0, MEMORY_MB_RANGE.1, r.memory_mb
        )));
    }
    if r.gpus > MAX_GPUS {
        return Err(invalid(format!(
            "resources.gpus must be between 0 and {MAX_GPUS} (got {})",
            r.gpus
        )));
    }
    if r.processes == 0 || r.processes > MAX_PROCESSES {
        return Err(invalid(format!(
            "resources.processes must be between 1 and {MAX_PROCESSES} (got {})",
            r.processes
        )));
    }
    if !r.parallelism.is_multiple_of(r.processes) {
        return Err(invalid(format!(
            "resources.parallelism ({}) must be a multiple of resources.processes ({}): each process runs the same number of worker threads",
            r.parallelism, r.processes
        )));
    }
    Ok(())
}

/// Checkpoint interval of an unbounded job that sets none (ms).
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 10_000;

/// The job's checkpoint interval: `SET 'execution.checkpointing.interval' = '…'` (at
/// least 50 ms), else [`DEFAULT_CHECKPOINT_INTERVAL_MS`] when unbounded, else none (a
/// bounded job commits once, at its end).
pub fn checkpoint_interval(c: &Compiled, bounded: bool) -> Result<Option<u64>, ServiceError> {
    use sluice_compiler::instance::{parse_duration_ms, CHECKPOINT_INTERVAL_KEY};
    match c.settings.get(CHECKPOINT_INTERVAL_KEY) {
        Some(text) => {
            let ms = parse_duration_ms(text)
                .map_err(|e| invalid(format!("SET '{CHECKPOINT_INTERVAL_KEY}': {e}")))?;
            if ms < 50 {
                return Err(invalid(format!(
                    "SET '{CHECKPOINT_INTERVAL_KEY}': at least 50ms, got '{text}'"
                )));
            }
            Ok(Some(ms))
        }
        None if bounded => Ok(None),
        None => Ok(Some(DEFAULT_CHECKPOINT_INTERVAL_MS)),
    }
}

/// How many checkpoints stay restorable: `SET 'state.checkpoints.num-retained' = 'N'`
/// (1 to 100), else `None` (the default, 2).
pub fn checkpoints_retained(c: &Compiled) -> Result<Option<u32>, ServiceError> {
    use sluice_compiler::instance::CHECKPOINTS_RETAINED_KEY;
    let Some(text) = c.settings.get(CHECKPOINTS_RETAINED_KEY) else {
        return Ok(None);
    };
    match text.trim().parse::<u32>() {
        Ok(n) if (1..=100).contains(&n) => Ok(Some(n)),
        _ => Err(invalid(format!(
            "SET '{CHECKPOINTS_RETAINED_KEY}': a number of checkpoints from 1 to 100, got '{text}'"
        ))),
    }
}

/// True when every source of the plan is bounded.
pub fn plan_is_bounded(plan: &sluice_compiler::DataflowPlan) -> bool {
    fn walk(p: &PhysicalPlan) -> bool {
        match p {
            PhysicalPlan::Source { table, .. } => table.capabilities.bounded,
            other => other.inputs().into_iter().all(walk),
        }
    }
    plan.outputs.iter().all(|o| walk(&o.plan))
}

/// The secret option values of every table a compiled script declares or reads.
pub fn secrets_of(compiled: &Compiled) -> Vec<String> {
    fn walk(p: &PhysicalPlan, out: &mut Vec<String>) {
        if let PhysicalPlan::Source { table, .. } = p {
            out.extend(table.secret_values().into_iter().map(str::to_string));
        }
        for i in p.inputs() {
            walk(i, out);
        }
    }
    let mut out: Vec<String> = compiled
        .tables
        .iter()
        .flat_map(|t| t.secret_values().into_iter().map(str::to_string))
        .collect();
    for o in &compiled.plan.outputs {
        walk(&o.plan, &mut out);
        if let sluice_compiler::SinkTarget::Table(t) = &o.target {
            out.extend(t.secret_values().into_iter().map(str::to_string));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The job's SQL with the values of secret connector options replaced.
pub fn redacted_sql(job: &Job) -> String {
    let mut secrets: Vec<String> = Vec::new();
    for o in &job.plan.outputs {
        collect_plan_secrets(&o.plan, &mut secrets);
        if let sluice_compiler::SinkTarget::Table(t) = &o.target {
            secrets.extend(t.secret_values().into_iter().map(str::to_string));
        }
    }
    let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
    sluice_catalogs::sealed::redact_sealed(&scrub_secrets(&job.sql, &refs))
}

fn collect_plan_secrets(p: &PhysicalPlan, out: &mut Vec<String>) {
    if let PhysicalPlan::Source { table, .. } = p {
        out.extend(table.secret_values().into_iter().map(str::to_string));
    }
    for i in p.inputs() {
        collect_plan_secrets(i, out);
    }
}

impl Master {
    /// `sql` with its secret option values sealed (as stored).
    pub fn seal_sql(&self, sql: &str) -> String {
        match &self.seal_key {
            Some(key) => key.seal_sql_options(sql, rand::random),
            None => sql.to_string(),
        }
    }

    /// `plan` with the secret option values of its tables sealed (as stored and sent to
    /// instances, which open them with the key file).
    pub fn seal_plan(
        &self,
        mut plan: sluice_compiler::DataflowPlan,
    ) -> sluice_compiler::DataflowPlan {
        if let Some(key) = &self.seal_key {
            plan.for_each_table_mut(&mut |t| {
                key.seal_options(&mut t.options, rand::random);
            });
        }
        plan
    }

    /// The key file instances open sealed values with.
    pub fn seal_key_file(&self) -> Option<String> {
        self.seal_key_path.as_ref().map(|p| p.display().to_string())
    }

    /// Takes [`Master::starts`] (a panic while it was held leaves nothing half-done).
    pub fn lock_starts(&self) -> std::sync::MutexGuard<'_, ()> {
        self.starts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes the watchdog up so a change takes effect now rather than at the next tick.
    pub fn wake_watchdog(&self) {
        if let Ok(guard) = self.wake.lock() {
            if let Some(tx) = guard.as_ref() {
                let _ = tx.send(());
            }
        }
    }

    /// The connector registry behind the sandbox's checks.
    fn validator(&self) -> crate::sandbox::SandboxedValidator<'_> {
        crate::sandbox::SandboxedValidator {
            registry: &self.registry,
            sandbox: self.sandbox.as_ref(),
        }
    }

    /// Checks every table a compiled script uses against the sandbox: the script's own
    /// tables were checked (with positions) as they were bound; this catches catalog
    /// tables stored before the sandbox's roots changed.
    fn check_sandbox(&self, compiled: &Compiled) -> Result<(), ServiceError> {
        let Some(sandbox) = &self.sandbox else {
            return Ok(());
        };
        let mut result = Ok(());
        let mut check = |t: &TableDescriptor| {
            if result.is_ok() {
                if let Err(m) = sandbox.check(&t.options) {
                    result = Err(ServiceError::Sql(CompileError::plan(
                        format!("table '{}': {m}", t.name),
                        None,
                    )));
                }
            }
        };
        fn walk(p: &PhysicalPlan, check: &mut dyn FnMut(&TableDescriptor)) {
            if let PhysicalPlan::Source { table, .. } = p {
                check(table);
            }
            for i in p.inputs() {
                walk(i, check);
            }
        }
        for o in &compiled.plan.outputs {
            walk(&o.plan, &mut check);
            if let sluice_compiler::SinkTarget::Table(t) = &o.target {
                check(t);
            }
        }
        result
    }

    /// Compiles a job's SQL against the stored tables.
    pub fn compile_job_sql(&self, sql: &str) -> Result<Compiled, ServiceError> {
        check_sql(sql)?;
        let catalog = StoreCatalog {
            store: self.store.as_ref(),
        };
        let compiled = compile(sql, &catalog, &self.validator()).map_err(ServiceError::Sql)?;
        self.check_sandbox(&compiled)?;
        if compiled.explain.is_some() {
            return Err(invalid(
                "a job cannot contain EXPLAIN: use POST /api/v1/jobs/validate to see its plans",
            ));
        }
        let collects = compiled
            .plan
            .outputs
            .iter()
            .any(|o| matches!(o.target, sluice_compiler::SinkTarget::Collect { .. }));
        if collects {
            // A job runs without a client: the rows of a bare SELECT would go nowhere.
            return Err(ServiceError::Sql(CompileError::plan(
                "a job cannot end in a bare SELECT (its rows would be discarded): write them \
                 with INSERT INTO a sink table, or preview its rows with POST /api/v1/queries (`sluice run`)",
                sluice_compiler::parse::bare_query_position(sql),
            )));
        }
        Ok(compiled)
    }

    /// Checks that cluster `name` exists and could ever hold `resources`.
    pub fn check_cluster(&self, name: &str, resources: &Resources) -> Result<(), ServiceError> {
        let Some(cluster) = self.clusters.get(name) else {
            return Err(invalid(format!(
                "cluster '{name}' does not exist (clusters: {})",
                self.clusters.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        };
        let cap = cluster.capacity();
        if u64::from(resources.parallelism) > cap.workers
            || resources.memory_mb > cap.memory_mb
            || u64::from(resources.gpus) > cap.gpus
        {
            return Err(invalid(format!(
                "cluster '{name}' can never hold this job: it asks for {} workers, {} MiB, {} GPUs; the cluster has {} workers, {} MiB, {} GPUs in all",
                resources.parallelism, resources.memory_mb, resources.gpus, cap.workers, cap.memory_mb, cap.gpus
            )));
        }
        Ok(())
    }

    fn event(&self, job: &Job, kind: &str, message: String) -> Result<JobEvent, ServiceError> {
        Ok(self.store.append_event(
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
        self.check_cluster(&new.cluster, &new.resources)?;
        let compiled = self.compile_job_sql(&new.sql)?;
        if self.store.get_job(&new.name)?.is_some() {
            return Err(ServiceError::Conflict(format!(
                "job '{}' already exists",
                new.name
            )));
        }
        let now = now_ms();
        let id = format!("j{:06}", self.store.next_id()?);
        let bounded = plan_is_bounded(&compiled.plan);
        let job = Job {
            format_version: FORMAT_VERSION,
            id,
            name: new.name,
            version: 1,
            sql: self.seal_sql(&new.sql),
            resources: new.resources,
            cluster: new.cluster,
            desired_state: new.desired_state,
            checkpoint_interval_ms: checkpoint_interval(&compiled, bounded)?,
            checkpoints_retained: checkpoints_retained(&compiled)?,
            plan: self.seal_plan(compiled.plan),
            bounded,
            created_at_ms: now,
            updated_at_ms: now,
            owner: crate::auth::current_actor(),
            restore_from: None,
        };
        let status = JobStatus::new(&job.id, 1, now);
        self.store.create_job(&job, &status)?;
        self.event(
            &job,
            "created",
            format!(
                "created at version 1: parallelism {}, {} MiB, {} GPUs on cluster {}",
                job.resources.parallelism, job.resources.memory_mb, job.resources.gpus, job.cluster
            ),
        )?;
        self.wake_watchdog();
        Ok(job)
    }

    /// Changes a job's spec; bumps its version when anything changed.
    pub fn update_job(&self, name: &str, patch: JobPatch) -> Result<Job, ServiceError> {
        self.update_job_planned(name, patch, None)
    }

    /// [`Master::update_job`], refused with 409 when `plan_id` is given and is not the
    /// id of the plan this change has now ([`Master::plan_job_change`]): the plan the
    /// caller reviewed was computed against another version, or for another change.
    pub fn update_job_planned(
        &self,
        name: &str,
        patch: JobPatch,
        plan_id: Option<&str>,
    ) -> Result<Job, ServiceError> {
        let Some(old) = self.store.get_job(name)? else {
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
            self.store.update_job(&job, old.version)?;
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
        self.wake_watchdog();
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
        if let Some(n) = patch.processes {
            if n != job.resources.processes {
                changes.push(format!("processes {} → {n}", job.resources.processes));
                job.resources.processes = n;
            }
        }
        check_resources(&job.resources)?;
        if let Some(c) = patch.cluster {
            if c != job.cluster {
                changes.push(format!("cluster {} → {c}", job.cluster));
                job.cluster = c;
            }
        }
        self.check_cluster(&job.cluster, &job.resources)?;
        if let Some(d) = patch.desired_state {
            if d != job.desired_state {
                changes
                    .push(format!("desired state {:?} → {d:?}", job.desired_state).to_lowercase());
                job.desired_state = d;
            }
        }
        if let Some(n) = patch.from_savepoint {
            let dir = self.checkpoints.job_dir(&job.id);
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
            let compiled = self.compile_job_sql(&sql)?;
            if sql != job.sql {
                changes.push("SQL changed".to_string());
                job.bounded = plan_is_bounded(&compiled.plan);
                job.checkpoint_interval_ms = checkpoint_interval(&compiled, job.bounded)?;
                job.checkpoints_retained = checkpoints_retained(&compiled)?;
                plan = Some(compiled.plan.clone());
                job.plan = self.seal_plan(compiled.plan);
                job.sql = self.seal_sql(&sql);
            }
        }
        Ok(Patched { job, changes, plan })
    }

    /// What applying `patch` to job `name` would do, without doing it: the changes, the
    /// restart, and per source, stateful operator and sink whether it is kept, reset,
    /// new or dropped, and why (`sluice_compiler::state::change_plan`).
    pub fn plan_job_change(&self, name: &str, patch: JobPatch) -> Result<JobPlan, ServiceError> {
        let Some(old) = self.store.get_job(name)? else {
            return Err(ServiceError::NotFound(format!(
                "job '{name}' does not exist"
            )));
        };
        let plan_id = plan_id_of(&old, &patch);
        let Patched { job, changes, plan } = self.patched(&old, patch)?;
        let new_plan = plan.as_ref().unwrap_or(&old.plan);
        let state = sluice_compiler::state::change_plan(&old.plan, new_plan);
        let latest = match old.checkpoint_interval_ms {
            Some(_) => crate::checkpoints::latest(&self.checkpoints.job_dir(&old.id)),
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
            self.store.delete_job(name)?
        };
        let Some(job) = deleted else {
            return Err(ServiceError::NotFound(format!(
                "job '{name}' does not exist"
            )));
        };
        let _ = self.event(&job, "deleted", "deleted".to_string());
        self.wake_watchdog();
        Ok(job)
    }

    /// A job by name.
    pub fn job(&self, name: &str) -> Result<Job, ServiceError> {
        self.store
            .get_job(name)?
            .ok_or_else(|| ServiceError::NotFound(format!("job '{name}' does not exist")))
    }

    /// Every job with its status (a job whose status is missing gets a fresh one). A
    /// job deleted between the listing and the read of its status is left out (its
    /// status is gone with it; a fresh one would look like a job never run).
    pub fn jobs_with_status(&self) -> Result<Vec<(Job, JobStatus)>, ServiceError> {
        let mut out = Vec::new();
        for job in self.store.list_jobs()? {
            let status = match self.store.get_status(&job.id)? {
                Some(status) => status,
                None => match self.store.get_job(&job.name)? {
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
            .store
            .get_status(&job.id)?
            .unwrap_or_else(|| JobStatus::new(&job.id, job.version, job.created_at_ms)))
    }

    /// Every instance on every cluster, by id.
    pub fn instances(&self) -> Result<Vec<ObservedInstance>, ServiceError> {
        let mut out = Vec::new();
        for c in self.clusters.values() {
            out.extend(
                c.observe()
                    .map_err(|e| ServiceError::Cluster(e.to_string()))?,
            );
        }
        out.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
        Ok(out)
    }

    /// One instance.
    pub fn instance(&self, id: &str) -> Result<(ObservedInstance, Arc<dyn Cluster>), ServiceError> {
        for c in self.clusters.values() {
            let found = c
                .observe()
                .map_err(|e| ServiceError::Cluster(e.to_string()))?
                .into_iter()
                .find(|i| i.instance_id == id);
            if let Some(i) = found {
                return Ok((i, c.clone()));
            }
        }
        Err(ServiceError::NotFound(format!(
            "instance '{id}' does not exist"
        )))
    }

    /// Validates SQL without storing anything.
    pub fn validate(&self, sql: &str) -> Result<Compiled, ServiceError> {
        check_sql(sql)?;
        let catalog = StoreCatalog {
            store: self.store.as_ref(),
        };
        let compiled = compile(sql, &catalog, &self.validator()).map_err(ServiceError::Sql)?;
        self.check_sandbox(&compiled)?;
        Ok(compiled)
    }

    /// Creates catalog tables from `CREATE TABLE` statements.
    pub fn create_tables(&self, ddl: &str) -> Result<Vec<StoredTable>, ServiceError> {
        check_sql(ddl)?;
        let catalog = StoreCatalog {
            store: self.store.as_ref(),
        };
        // Bind against the stored tables, so a name clash is reported with its position.
        let layered = MemoryCatalog::layered(&catalog);
        let tables = compile_tables(ddl, &layered, &self.validator()).map_err(ServiceError::Sql)?;
        for t in &tables {
            check_name("table", &t.name)?;
        }
        let now = now_ms();
        let mut out = Vec::new();
        // Each table keeps its own `CREATE TABLE` text, not the whole request's: a
        // table dropped later must not live on in its neighbours' DDL.
        let texts: Vec<String> = sluice_compiler::parse::statement_texts(ddl)
            .map_err(ServiceError::Sql)?
            .into_iter()
            .filter(|t| is_create_table(t))
            .collect();
        let whole = (texts.len() != tables.len()).then(|| self.seal_sql(ddl.trim()));
        for (i, mut t) in tables.into_iter().enumerate() {
            let own_ddl = match &whole {
                Some(w) => w.clone(),
                None => self.seal_sql(&texts[i]),
            };
            if let Some(key) = &self.seal_key {
                key.seal_options(&mut t.options, rand::random);
            }
            let stored = StoredTable {
                format_version: FORMAT_VERSION,
                ddl: own_ddl,
                descriptor: t,
                created_at_ms: now,
            };
            self.store.create_table(&stored)?;
            out.push(stored);
        }
        Ok(out)
    }
}

/// True when a statement's text (comments allowed before it) is a `CREATE TABLE`.
fn is_create_table(text: &str) -> bool {
    let code: String = text
        .lines()
        .map(|l| l.split("--").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join(" ");
    let mut words = code.split_whitespace().map(str::to_ascii_uppercase);
    matches!(
        (words.next().as_deref(), words.next().as_deref()),
        (Some("CREATE"), Some("TABLE"))
    )
}
