//! The contract between `sluice` (which compiles a job) and `sluice-worker` (the process
//! that runs its dataflow): a [`WorkerRequest`] as one JSON document on the worker's
//! standard input, then [`WorkerMessage`]s as JSON Lines on its standard output.
//!
//! Keeping the runtime in its own process is what lets the `sluice` binary (the master
//! and its CLI) stay free of timely and CUDA, and is how the master will run instances.

use crate::physical::DataflowPlan;
use serde::{Deserialize, Serialize};
use sluice_catalogs::Schema;
pub use sluice_expr::checkpoint::{
    is_record_name, is_savepoint_name, is_state_object_name, record_name, savepoint_name,
    state_object_epoch, state_object_name, write_ahead_object_name, CheckpointRecord, Savepoint,
    CHECKPOINT_FORMAT, WRITE_AHEAD_FIELD,
};
use sluice_expr::datum::Row;
pub use sluice_expr::options::parse_duration_ms;

/// What a worker process is asked to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerRequest {
    /// The compiled job.
    pub plan: DataflowPlan,
    /// Worker threads.
    pub workers: usize,
    /// Rows per source poll.
    pub batch_size: usize,
    /// Send a [`WorkerMessage::Progress`] this often (milliseconds); never when `None`.
    pub progress_interval_ms: Option<u64>,
    /// Periodic checkpoints (restored from at start when one exists); none when `None`.
    #[serde(default)]
    pub checkpoint: Option<CheckpointConfig>,
    /// The key file that opens the plan's sealed secret option values
    /// (`sluice_catalogs::sealed`); none: the plan holds no sealed value.
    #[serde(default)]
    pub secret_key_file: Option<String>,
    /// Multi-process runs: the address (`host:port`) of every process of the run, in
    /// process order; `workers` threads run in each, so the run has
    /// `workers × peers.len()` workers. Empty: one process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// This process's index among `peers` (0 for a one-process run). Process 0 leads
    /// the run's checkpoints.
    #[serde(default)]
    pub process: usize,
}

impl WorkerRequest {
    /// Processes of the run (1 without peers).
    pub fn processes(&self) -> usize {
        self.peers.len().max(1)
    }

    /// Workers of the run in all: threads per process × processes.
    pub fn total_workers(&self) -> usize {
        self.workers.max(1) * self.processes()
    }
}

/// The `SET` key of the checkpoint interval (Flink's name).
pub const CHECKPOINT_INTERVAL_KEY: &str = "execution.checkpointing.interval";

/// The `SET` key of how many of the newest checkpoints stay restorable (Flink's
/// `state.checkpoints.num-retained`).
pub const CHECKPOINTS_RETAINED_KEY: &str = "state.checkpoints.num-retained";

/// Checkpoints kept restorable by default (the newest and the one before it).
pub const DEFAULT_CHECKPOINTS_RETAINED: u32 = 2;

/// Where and how often a run checkpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointConfig {
    /// A local directory or an object-store URL (`s3://bucket/prefix`, credentials from
    /// the environment) holding this job's checkpoints, across its instances.
    pub dir: String,
    /// Time between the end of one checkpoint and the start of the next (ms).
    pub interval_ms: u64,
    /// Start from a savepoint rather than the latest checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<RestoreFrom>,
    /// How many of the newest checkpoints stay restorable (their snapshots are kept;
    /// older ones are deleted, savepoints never). At least 1.
    #[serde(default = "default_retained")]
    pub retained: u32,
}

fn default_retained() -> u32 {
    DEFAULT_CHECKPOINTS_RETAINED
}

/// A start from a savepoint (`sluice job start --from-savepoint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreFrom {
    /// The savepoint: the epoch of the checkpoint it pinned.
    pub savepoint: u64,
    /// The newest checkpoint epoch when the start was asked for: once a run has written
    /// a newer one, restarts continue from the latest checkpoint as usual.
    pub unless_newer_than: u64,
}

/// Counters of a run (live while it runs, final at the end).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressSnapshot {
    /// Rows read by sources, before pushed-down filters (`rows_in` plus the rows those
    /// filters dropped inside the source).
    #[serde(default)]
    pub rows_read: u64,
    /// Rows emitted by sources (after pushed-down filters).
    pub rows_in: u64,
    /// Rows written to sinks or collected for the client.
    pub rows_out: u64,
    /// Rows dropped by window aggregates because their window had already closed.
    pub late_rows: u64,
    /// Undecodable source records (every policy).
    pub bad_records: u64,
    /// Bad records written to a dead-letter file.
    pub dead_lettered: u64,
    /// Rows the batch `Calc` stages evaluated on the CPU kernels.
    #[serde(default)]
    pub rows_cpu: u64,
    /// Rows the batch `Calc` stages evaluated on the GPU kernels.
    #[serde(default)]
    pub rows_gpu: u64,
    /// Batches placed on the GPU that fell back to the CPU (driver, device, compile or
    /// launch failure, or an overflow the CPU had to report exactly); the reasons are
    /// logged by the worker.
    #[serde(default)]
    pub gpu_fallbacks: u64,
    /// Rows (updates) each operator of the plan emitted so far, all workers together,
    /// by [`operator_key`]: what the console turns into per-operator rates.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub operators: std::collections::BTreeMap<String, u64>,
}

/// The key of a plan operator's counters: `<output>.<node>`, the output's index in the
/// plan and the node's position in that output's EXPLAIN PHYSICAL tree (one line per
/// node, in pre-order, from 0; a shared sub-plan counts where it is first printed).
pub fn operator_key(output: usize, node: usize) -> String {
    format!("{output}.{node}")
}

/// The rows of one `SinkTarget::Collect` output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectedResult {
    /// The output schema.
    pub schema: Schema,
    /// Consolidated rows (a row with net multiplicity n appears n times), sorted by the
    /// output's ORDER BY (then by the whole row), OFFSET and LIMIT applied.
    pub rows: Vec<Row>,
}

/// One line a worker writes on its standard output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerMessage {
    /// Counters so far.
    Progress(ProgressSnapshot),
    /// One collected output (in output order), once the run succeeded.
    Result(CollectedResult),
    /// Lines a `print` sink wrote (the worker's stdout carries these messages, so the
    /// rows travel inside one; `sluice run` writes them to its stdout as they come).
    Printed(String),
    /// The run succeeded; the final counters. Always the last message of a success.
    Done(ProgressSnapshot),
    /// The run failed; always the last message of a failure.
    Failed {
        /// True when the failure is the user's to fix (a bad option seen only at run
        /// time, a missing input path); false for runtime and internal failures.
        user_error: bool,
        /// One line.
        message: String,
    },
}

/// Who an instance belongs to: a version of a job, or an attempt of a workflow task.
/// The master tells its two kinds of instance apart by this, never by their ids.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InstanceOwner {
    /// An instance of a job, realizing one spec version.
    Job {
        /// The job's unique id.
        id: String,
        /// The spec version.
        version: u64,
    },
    /// An attempt of one task of a workflow run.
    Task {
        /// The workflow's id.
        workflow: String,
        /// The run's id.
        run: String,
        /// The task's id within the workflow.
        task: String,
        /// The attempt (1, 2, …).
        attempt: u32,
    },
}

/// What the master's `local` cluster writes to `<instance dir>/request.json` before it
/// starts `sluice worker --instance-dir <dir>`: the job to run plus who it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRequest {
    /// Unique id of this instance (also its directory name).
    pub instance_id: String,
    /// The job's unique id (not its name: a re-created job gets a new id).
    pub job_id: String,
    /// The job's name, for logs.
    pub job_name: String,
    /// The job spec version this instance realizes.
    pub job_version: u64,
    /// Memory cap in MiB applied to the worker process where the OS allows (0: none).
    /// `sluice-worker` enforces it on its resident memory, with an allowance for the
    /// runtime on top, and fails the instance with a message beyond it (see its
    /// documentation).
    pub memory_mb: u64,
    /// GPUs the instance may use (0: none). Recorded so that a cluster driver can
    /// report an adopted instance's resources; absent (0) in requests written before
    /// it existed.
    #[serde(default)]
    pub gpus: u32,
    /// Write `status.json` this often (milliseconds).
    pub heartbeat_interval_ms: u64,
    /// The plan, worker threads (the job's parallelism) and batch size.
    pub worker: WorkerRequest,
    /// Who the instance belongs to. Absent in requests written by a master older than
    /// the typed owner: the master then derives it from `job_id` (see
    /// `sluice_master::model::legacy_owner`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<InstanceOwner>,
}

/// The run state an instance reports in its `status.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum InstanceRunState {
    /// The dataflow is running.
    Running,
    /// Every source is exhausted and every sink committed (bounded jobs).
    Finished,
    /// The run failed; the process exits right after writing this.
    Failed {
        /// True when the failure is the user's to fix.
        user_error: bool,
        /// One line.
        message: String,
        /// True when another instance of the same job took over its checkpoints (a
        /// second master over a copy of the data directory, a partitioned host): this
        /// one stopped without committing, and restarting it would only take the job
        /// back from the other.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        superseded: bool,
    },
}

/// What a running instance writes (atomically: temp file + rename) to
/// `<instance dir>/status.json` every heartbeat, and once more at its end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// The worker's process id.
    pub pid: u32,
    /// The instance id (from the request).
    pub instance_id: String,
    /// Running, finished or failed.
    #[serde(flatten)]
    pub run: InstanceRunState,
    /// When the process started (ms since the Unix epoch).
    pub started_at_ms: i64,
    /// When this file was written (ms since the Unix epoch).
    pub heartbeat_at_ms: i64,
    /// When a counter last moved (ms since the Unix epoch).
    pub progress_at_ms: i64,
    /// True while some source has input available that it has not read yet (an
    /// instance that makes no progress while this is true is hung; one whose sources
    /// are caught up is idle).
    pub input_waiting: bool,
    /// The worker threads' own liveness: the latest time (ms since the Unix epoch) by
    /// which every worker thread had stepped its dataflow loop since the previous
    /// status. A worker thread stuck inside an operator holds it back while the
    /// heartbeat (written by another thread) goes on. Absent from workers that
    /// predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stepped_at_ms: Option<i64>,
    /// Counters so far.
    pub progress: ProgressSnapshot,
}

/// Encodes a value that holds a plan (a [`WorkerRequest`], a stored job) as JSON. A plan
/// nests one JSON level or two per expression and plan level (up to
/// [`crate::limits::MAX_EXPR_DEPTH`] and [`crate::limits::MAX_PLAN_DEPTH`]), so the
/// encoder grows its stack as it goes rather than trusting the calling thread's.
pub fn plan_to_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    value.serialize(serde_stacker::Serializer::new(&mut ser))?;
    Ok(out)
}

/// Decodes JSON written by [`plan_to_json`]. serde_json refuses documents nested more
/// than 128 levels, which a plan at the compiler's limits exceeds: this decoder lifts
/// that limit and grows its stack as it goes instead.
pub fn plan_from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value = T::deserialize(serde_stacker::Deserializer::new(&mut de))?;
    de.end()?;
    Ok(value)
}
