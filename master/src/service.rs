//! What the master's services share below their [`crate::core::Core`]: the one error
//! type the REST layer maps to its JSON error body, the checks of a request (names,
//! SQL, resources, checkpoint settings), secret scrubbing, and the watchdog's counters.

use crate::model::{Job, Resources};
use crate::store::StoreError;
use sluice_catalogs::scrub_secrets;
use sluice_compiler::{CompileError, Compiled, PhysicalPlan};
use std::collections::BTreeMap;

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

/// The processes an instance of `parallelism` worker threads runs as when its request
/// names none: the fewest (up to [`MAX_PROCESSES`]) that divide `parallelism` with at
/// most `threads_per_process` threads each; `None` when no such count exists.
pub fn derive_processes(parallelism: u32, threads_per_process: u64) -> Option<u32> {
    (1..=MAX_PROCESSES.min(parallelism)).find(|&n| fits(parallelism, n, threads_per_process))
}

/// Whether `processes` divide `parallelism` with at most `threads_per_process` each.
pub fn fits(parallelism: u32, processes: u32, threads_per_process: u64) -> bool {
    processes >= 1
        && parallelism.is_multiple_of(processes)
        && u64::from(parallelism / processes) <= threads_per_process
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

#[cfg(test)]
mod tests {
    use super::{derive_processes, MAX_PROCESSES};

    #[test]
    fn the_fewest_processes_that_divide_the_parallelism_within_the_threads_per_process() {
        // (parallelism, threads per process) → processes
        let table = [
            ((4, u64::MAX), Some(1)),
            ((4, 4), Some(1)),
            ((4, 3), Some(2)),
            ((4, 2), Some(2)),
            ((4, 1), Some(4)),
            ((6, 4), Some(2)),
            ((6, 2), Some(3)),
            ((7, 4), Some(7)), // a prime: one thread per process
            ((12, 5), Some(3)),
            ((1, 1), Some(1)),
            ((4, 0), None), // a cluster with no agents
            ((0, 4), None),
            ((256, 2), None), // 128 processes would exceed MAX_PROCESSES
        ];
        for ((parallelism, most), want) in table {
            let got = derive_processes(parallelism, most);
            assert_eq!(
                got, want,
                "parallelism {parallelism}, at most {most} threads"
            );
            if let Some(n) = got {
                assert!(parallelism % n == 0 && u64::from(parallelism / n) <= most);
                assert!(n <= MAX_PROCESSES);
            }
        }
        assert_eq!(derive_processes(256, 4), Some(64));
    }
}
