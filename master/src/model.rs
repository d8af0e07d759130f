//! The master's data model: what the store persists (jobs, their runtime status,
//! events, tables) and what the watchdog observes (instances, clusters).
//!
//! Stored types carry `format_version` so a later master can read (and migrate) what an
//! earlier one wrote. Times are milliseconds since the Unix epoch (`i64`).

pub mod transitions;

use serde::{Deserialize, Serialize};
use sluice_catalogs::TableDescriptor;
use sluice_compiler::DataflowPlan;
use utoipa::ToSchema;

/// The format version written into every stored record by this master.
pub const FORMAT_VERSION: u32 = 1;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What a job asks of its cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Worker threads of the job's instance (1..=256).
    #[schema(minimum = 1, maximum = 256, example = 2)]
    pub parallelism: u32,
    /// Memory cap of the instance process in MiB (64..=1048576): its resident memory
    /// may exceed it by a runtime allowance (64 MiB + 16 MiB per worker thread); past
    /// that the instance fails with a message saying so (a user error: the job is not
    /// restarted into the same failure).
    #[schema(minimum = 64, maximum = 1048576, example = 1024)]
    pub memory_mb: u64,
    /// GPUs the instance may use (0..=64).
    #[schema(minimum = 0, maximum = 64, example = 0)]
    pub gpus: u32,
    /// Processes the instance runs as (1..=64, dividing `parallelism`): each runs
    /// `parallelism / processes` worker threads, and they exchange data over TCP
    /// (timely's cluster mode). `memory_mb` and `gpus` are per process.
    #[serde(default = "one_process")]
    #[schema(minimum = 1, maximum = 64, example = 1)]
    pub processes: u32,
}

fn one_process() -> u32 {
    1
}

impl Resources {
    /// Worker threads in each of the instance's processes.
    pub fn threads_per_process(&self) -> u32 {
        self.parallelism / self.processes.max(1)
    }
}

impl Default for Resources {
    fn default() -> Self {
        Resources {
            parallelism: 1,
            memory_mb: 1024,
            gpus: 0,
            processes: 1,
        }
    }
}

/// What the user wants a job to be doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DesiredState {
    /// Keep an instance of the current version running (until it finishes, if bounded).
    Running,
    /// No instance.
    Stopped,
}

/// A job as stored: the user's spec at its current version plus the compiled plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Format of this record ([`FORMAT_VERSION`] when written).
    pub format_version: u32,
    /// Unique forever (a job deleted and created again under the same name gets a new id).
    pub id: String,
    /// Unique among live jobs; the key in the API.
    pub name: String,
    /// The spec version: 1 at creation, bumped by every change of the spec.
    pub version: u64,
    /// The SQL script (DDL, then `INSERT INTO … SELECT …`).
    pub sql: String,
    /// What the job asks of its cluster.
    pub resources: Resources,
    /// The cluster the job runs on.
    pub cluster: String,
    /// Running or stopped.
    pub desired_state: DesiredState,
    /// The plan compiled from `sql` at this version (what instances run).
    pub plan: DataflowPlan,
    /// True when every source is bounded: an instance finishes by itself.
    pub bounded: bool,
    /// Checkpoint interval (ms): from `SET 'execution.checkpointing.interval'`, else
    /// 10 s for unbounded jobs; `None`: the job does not checkpoint.
    #[serde(default)]
    pub checkpoint_interval_ms: Option<u64>,
    /// Checkpoints kept restorable: `SET 'state.checkpoints.num-retained'`; `None`: 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoints_retained: Option<u32>,
    /// Creation time.
    pub created_at_ms: i64,
    /// Time of the last spec change.
    pub updated_at_ms: i64,
    /// Who submitted it (a token's name); none: before authentication, or a workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Instances of this version start from a savepoint (until they checkpoint
    /// themselves) rather than from the latest checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<sluice_compiler::instance::RestoreFrom>,
}

// Which state may follow which, and why, is written down in `transitions` (a plain
// comment: the doc comment below is the OpenAPI description).
/// Where a job is in its life, as the watchdog last decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Desired running; no instance yet (just submitted, or waiting for capacity).
    Pending,
    /// An instance was started and has not reported yet.
    Starting,
    /// An instance of the current version is running.
    Running,
    /// The instance failed; a new one starts after a backoff.
    Restarting,
    /// Desired stopped and no instance is running.
    Stopped,
    /// A bounded job's instance finished successfully.
    Finished,
    /// Too many restarts within the window, or a failure that restarting cannot fix;
    /// nothing runs until the spec changes.
    Failed,
}

/// The watchdog's persistent memory of a job: state, restart history, backoff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    /// Format of this record.
    pub format_version: u32,
    /// The job id this status belongs to.
    pub job_id: String,
    /// The spec version this status describes (a new version starts from a clean history).
    pub version: u64,
    /// The state.
    pub state: JobState,
    /// Why the job is in this state (one line).
    pub reason: String,
    /// Since when (ms).
    pub since_ms: i64,
    /// Restarts of this job after failures, over all versions.
    pub restarts: u64,
    /// Times (ms) of the failures of this version, oldest first, pruned to the window.
    pub recent_failures: Vec<i64>,
    /// No instance may start before this time (ms): the backoff.
    pub next_start_at_ms: Option<i64>,
    /// The instance whose end was last accounted for (so one failure is counted once).
    pub last_accounted_instance: Option<String>,
    /// Counters of the job's ended instances, all versions, added up when each is
    /// retired: with the live instances' own, the job's monotonic totals.
    #[serde(default)]
    pub totals: Counters,
    /// The ended instances most recently added to `totals` (at most
    /// [`COUNTED_KEPT`]), so that a cycle interrupted between writing this status and
    /// retiring them does not add them twice.
    #[serde(default)]
    pub counted_instances: Vec<String>,
}

/// How many added-up instance ids a status remembers (a retire follows the status
/// write in the same cycle, so only the latest few can be pending).
pub const COUNTED_KEPT: usize = 16;

/// Row counters of a job or an instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Counters {
    /// Rows read by sources, before the filters pushed into them.
    pub rows_read: u64,
    /// Rows emitted by sources (after those filters).
    pub rows_in: u64,
    /// Rows written to sinks.
    pub rows_out: u64,
    /// Undecodable records.
    pub bad_records: u64,
}

impl Counters {
    /// An instance's counters.
    pub fn of(i: &ObservedInstance) -> Self {
        Counters {
            rows_read: i.rows_read,
            rows_in: i.rows_in,
            rows_out: i.rows_out,
            bad_records: i.bad_records,
        }
    }

    /// `self + other`, saturating.
    pub fn plus(self, other: Counters) -> Self {
        Counters {
            rows_read: self.rows_read.saturating_add(other.rows_read),
            rows_in: self.rows_in.saturating_add(other.rows_in),
            rows_out: self.rows_out.saturating_add(other.rows_out),
            bad_records: self.bad_records.saturating_add(other.bad_records),
        }
    }
}

impl JobStatus {
    /// The job's totals over every instance, all versions: the ended ones added up in
    /// `totals`, plus `instances` of this job not yet added (live, or ended and not
    /// retired yet). Monotonic while the job exists (Prometheus counters).
    pub fn job_totals(&self, instances: &[ObservedInstance]) -> Counters {
        instances
            .iter()
            .filter(|i| i.job_id == self.job_id && !i.retired)
            .filter(|i| !self.counted_instances.contains(&i.instance_id))
            .fold(self.totals, |acc, i| acc.plus(Counters::of(i)))
    }
}

impl JobStatus {
    /// The status of a job version that has not run yet.
    pub fn new(job_id: &str, version: u64, now_ms: i64) -> Self {
        JobStatus {
            format_version: FORMAT_VERSION,
            job_id: job_id.to_string(),
            version,
            state: JobState::Pending,
            reason: "submitted".to_string(),
            since_ms: now_ms,
            restarts: 0,
            recent_failures: Vec::new(),
            next_start_at_ms: None,
            last_accounted_instance: None,
            totals: Counters::default(),
            counted_instances: Vec::new(),
        }
    }
}

/// One entry of a job's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    /// Format of this record.
    #[schema(example = 1)]
    pub format_version: u32,
    /// Position in the job's history (1, 2, …).
    pub seq: u64,
    /// When (ms since the Unix epoch).
    pub at_ms: i64,
    /// What happened: `created`, `updated`, `state`, `instance_started`,
    /// `instance_stopped`, `instance_failed`, `instance_finished`, `restart_scheduled`…
    pub kind: String,
    /// The job version it concerns.
    pub version: u64,
    /// The state after the event, when it changed one.
    pub state: Option<JobState>,
    /// Human-readable detail (the reason).
    pub message: String,
    /// Who caused it (a token's name), when a request did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// A table stored in the catalog, usable by any job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTable {
    /// Format of this record.
    pub format_version: u32,
    /// The `CREATE TABLE` statement it was declared with.
    pub ddl: String,
    /// The bound descriptor.
    pub descriptor: TableDescriptor,
    /// Creation time.
    pub created_at_ms: i64,
}

/// An instance's life as observed by a cluster driver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// The process is alive but has not reported yet.
    Starting,
    /// The process is alive and reporting.
    Running,
    /// The process ended after finishing its (bounded) work.
    Finished,
    /// The process reported a failure and ended.
    Failed,
    /// The process is gone without a final report (killed, crashed, OOM).
    Crashed,
    /// The process was stopped on the master's request.
    Stopped,
}

impl InstanceState {
    /// True while the process may still be alive.
    pub fn is_live(&self) -> bool {
        matches!(self, InstanceState::Starting | InstanceState::Running)
    }
}

pub use sluice_compiler::instance::InstanceOwner;

/// The job id under which a workflow's task instances run is `wf:<workflow id>`: what
/// the REST views show as their `job_id`. The master tells instances apart by their
/// [`InstanceOwner`]; only [`legacy_owner`] reads this prefix.
pub const WORKFLOW_JOB_PREFIX: &str = "wf:";

/// Compatibility with instances launched by a master older than the typed owner (their
/// `request.json` has none): the owner derived from the job id, job version and
/// instance id they were launched with. This is the one place that parses the `wf:`
/// prefix; a workflow task's instance id is `<run id>.<task id>.<attempt>`
/// ([`crate::workflow::instance_id`]).
pub fn legacy_owner(job_id: &str, job_version: u64, instance_id: &str) -> InstanceOwner {
    let Some(workflow) = job_id.strip_prefix(WORKFLOW_JOB_PREFIX) else {
        return InstanceOwner::Job {
            id: job_id.to_string(),
            version: job_version,
        };
    };
    let (run, rest) = instance_id.split_once('.').unwrap_or((instance_id, ""));
    let (task, attempt) = match rest.rsplit_once('.') {
        Some((task, attempt)) => match attempt.parse::<u32>() {
            Ok(n) => (task, n),
            Err(_) => (rest, 0),
        },
        None => (rest, 0),
    };
    InstanceOwner::Task {
        workflow: workflow.to_string(),
        run: run.to_string(),
        task: task.to_string(),
        attempt,
    }
}

/// One instance as a cluster driver sees it now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ObservedInstance {
    /// Unique instance id.
    pub instance_id: String,
    /// Who it belongs to: a job's version or a workflow task's attempt.
    #[schema(value_type = Object)]
    pub owner: InstanceOwner,
    /// The job's id (`wf:<workflow id>` for a workflow task: what the REST views show).
    pub job_id: String,
    /// The job's name (the workflow's, for a task).
    pub job_name: String,
    /// The job version it realizes (the workflow's version, for a task).
    pub job_version: u64,
    /// The cluster it runs on.
    pub cluster: String,
    /// Worker threads.
    pub parallelism: u32,
    /// Memory cap (MiB).
    pub memory_mb: u64,
    /// GPUs.
    pub gpus: u32,
    /// Life state.
    pub state: InstanceState,
    /// The failure message, when `Failed` (or why it is `Crashed`).
    pub message: Option<String>,
    /// True when the failure is the user's to fix (restarting will not help).
    pub user_error: bool,
    /// True when another instance of the job took over its checkpoints (fencing): it
    /// stopped without committing, and restarting it would take the job back.
    #[serde(default)]
    pub superseded: bool,
    /// True once the master asked it to stop (its end is then not a failure).
    pub stop_requested: bool,
    /// True once the watchdog accounted for its end (it is history now).
    pub retired: bool,
    /// Process ids (one process per instance on the `local` cluster).
    pub pids: Vec<u32>,
    /// When it was started (ms).
    pub started_at_ms: i64,
    /// When it ended, if it did (ms).
    pub ended_at_ms: Option<i64>,
    /// Its last heartbeat (ms), if any.
    pub heartbeat_at_ms: Option<i64>,
    /// When its counters last moved (ms), if ever.
    pub progress_at_ms: Option<i64>,
    /// True while some source has input available that it has not read (false for a
    /// job whose sources are caught up: idle, not hung).
    pub input_waiting: bool,
    /// The latest time (ms) by which every worker thread had stepped its dataflow
    /// loop, once each has (the worker's own liveness; see `InstanceStatus`).
    #[serde(default)]
    pub stepped_at_ms: Option<i64>,
    /// Rows read by sources, before the filters pushed into them.
    #[serde(default)]
    pub rows_read: u64,
    /// Rows emitted by sources (after the filters pushed into them).
    pub rows_in: u64,
    /// Rows written to sinks.
    pub rows_out: u64,
    /// Undecodable records seen.
    pub bad_records: u64,
    /// Rows dropped by window aggregates because their window had already closed.
    #[serde(default)]
    pub late_rows: u64,
    /// Rows each plan operator emitted, all workers (`<output>.<node>`: see
    /// `sluice_compiler::instance::operator_key`).
    #[serde(default)]
    pub operators: std::collections::BTreeMap<String, u64>,
}

#[cfg(test)]
impl ObservedInstance {
    /// A test's instance `instance_id` of `owner`, in `state`, with nothing reported
    /// yet (job `""` version 1, 1 worker, 1024 MiB, on `local`): a test sets the rest
    /// with struct update syntax.
    pub(crate) fn of(instance_id: &str, owner: InstanceOwner, state: InstanceState) -> Self {
        ObservedInstance {
            instance_id: instance_id.to_string(),
            owner,
            job_id: String::new(),
            job_name: String::new(),
            job_version: 1,
            cluster: "local".to_string(),
            parallelism: 1,
            memory_mb: 1024,
            gpus: 0,
            state,
            message: None,
            user_error: false,
            superseded: false,
            stop_requested: false,
            retired: false,
            pids: Vec::new(),
            started_at_ms: 0,
            ended_at_ms: None,
            heartbeat_at_ms: None,
            progress_at_ms: None,
            input_waiting: false,
            stepped_at_ms: None,
            rows_read: 0,
            rows_in: 0,
            rows_out: 0,
            bad_records: 0,
            late_rows: 0,
            operators: Default::default(),
        }
    }
}

#[cfg(test)]
mod owner_tests {
    use super::{legacy_owner, InstanceOwner};

    #[test]
    fn legacy_owners_are_derived_from_job_and_instance_ids() {
        assert_eq!(
            legacy_owner("j-1", 4, "etl-v4-abc"),
            InstanceOwner::Job {
                id: "j-1".to_string(),
                version: 4
            }
        );
        let task = |run: &str, task: &str, attempt| InstanceOwner::Task {
            workflow: "w7".to_string(),
            run: run.to_string(),
            task: task.to_string(),
            attempt,
        };
        assert_eq!(
            legacy_owner(
                "wf:w7",
                2,
                &crate::workflow::instance_id("w7-60-ff", "load", 3)
            ),
            task("w7-60-ff", "load", 3)
        );
        // A task id with dots keeps them; an id that is not `<run>.<task>.<n>` still
        // names the workflow.
        assert_eq!(legacy_owner("wf:w7", 2, "r.a.b.1"), task("r", "a.b", 1));
        assert_eq!(legacy_owner("wf:w7", 2, "r.t.x"), task("r", "t.x", 0));
        assert_eq!(legacy_owner("wf:w7", 2, "r"), task("r", "", 0));
    }

    #[test]
    fn the_owner_is_optional_in_a_request_and_tagged_when_written() {
        use sluice_compiler::instance::InstanceRequest;
        let owner = InstanceOwner::Task {
            workflow: "w".to_string(),
            run: "r".to_string(),
            task: "t".to_string(),
            attempt: 1,
        };
        let json = serde_json::to_value(&owner).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "task", "workflow": "w", "run": "r", "task": "t",
                "attempt": 1})
        );
        let plan = sluice_compiler::compile(
            "CREATE TABLE s (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');
             CREATE TABLE d (a BIGINT) WITH ('connector' = 'blackhole');
             INSERT INTO d SELECT a FROM s;",
            &sluice_catalogs::MemoryCatalog::new(),
            &sluice_connectors::Registry::builtin(),
        )
        .unwrap()
        .plan;
        let mut request = InstanceRequest {
            instance_id: "i".to_string(),
            job_id: "j".to_string(),
            job_name: "j".to_string(),
            job_version: 1,
            memory_mb: 64,
            gpus: 0,
            heartbeat_interval_ms: 100,
            worker: sluice_compiler::instance::WorkerRequest {
                plan,
                workers: 1,
                batch_size: 1,
                progress_interval_ms: None,
                checkpoint: None,
                secret_key_file: None,
                peers: Vec::new(),
                process: 0,
            },
            owner: None,
        };
        // Without an owner the request is written as an older master wrote it.
        let old = serde_json::to_value(&request).unwrap();
        assert!(old.get("owner").is_none());
        let back: InstanceRequest = serde_json::from_value(old).unwrap();
        assert_eq!(back.owner, None);
        request.owner = Some(owner.clone());
        let new = serde_json::to_value(&request).unwrap();
        assert_eq!(new["owner"], json);
        let back: InstanceRequest = serde_json::from_value(new).unwrap();
        assert_eq!(back.owner, Some(owner));
    }
}

/// What a cluster can hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Capacity {
    /// Worker threads (the sum of running instances' parallelism).
    pub workers: u64,
    /// Memory in MiB (the sum of running instances' caps).
    pub memory_mb: u64,
    /// GPUs.
    pub gpus: u64,
}
