//! The contract between `sluice` (which compiles a job) and `sluice-worker` (the process
//! that runs its dataflow): a [`WorkerRequest`] as one JSON document on the worker's
//! standard input, then [`WorkerMessage`]s as JSON Lines on its standard output.
//!
//! Keeping the runtime in its own process is what lets the `sluice` binary (the master
//! and its CLI) stay free of timely and CUDA, and is how the master will run instances.

use crate::datum::Row;
use crate::physical::DataflowPlan;
use serde::{Deserialize, Serialize};
use sluice_catalogs::Schema;
use std::collections::BTreeMap;

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

/// A checkpoint pinned as a savepoint (`savepoint-<epoch>.json` beside the records):
/// never pruned, with every snapshot it names, and a job can start from it later, in
/// any version (what a changed plan keeps follows its stable ids).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Savepoint {
    /// When it was taken (ms since the Unix epoch).
    pub taken_at_ms: i64,
    /// The job's spec version when it was taken (the version that was running, when
    /// taking it stopped the job).
    pub job_version: u64,
    /// The checkpoint.
    pub record: CheckpointRecord,
}

/// The object name of the savepoint of epoch `epoch`.
pub fn savepoint_name(epoch: u64) -> String {
    format!("savepoint-{epoch:020}.json")
}

/// True for the name of a savepoint.
pub fn is_savepoint_name(name: &str) -> bool {
    name.starts_with("savepoint-") && name.ends_with(".json")
}

/// Format of [`CheckpointRecord`] (2: event-time barriers and operator state; 3:
/// sources and operator states keyed by stable ids (`crate::state`), so that a changed
/// plan keeps what it did not change. Readers skip records of a newer format rather
/// than restore them wrongly; format-2 records still restore their own plan).
pub const CHECKPOINT_FORMAT: u32 = 3;

/// One complete checkpoint: the commit decision for its epoch and a manifest entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// [`CHECKPOINT_FORMAT`].
    pub format_version: u32,
    /// The checkpoint's epoch (1, 2, …; continues across restores).
    pub epoch: u64,
    /// When it completed (ms since the Unix epoch).
    pub completed_at_ms: i64,
    /// Workers of the run that wrote it.
    pub workers: usize,
    /// Fingerprint of the plan it belongs to: a changed plan does not seek to it.
    pub plan_fingerprint: String,
    /// Source (its stable key, `crate::state::source_key`; `<n>:<table>` in render order
    /// in format 2) → each worker's position at the barrier.
    pub sources: BTreeMap<String, Vec<serde_json::Value>>,
    /// The same at the previous checkpoint (`null` entries: the beginning): with
    /// `sources`, the input range this checkpoint's commit covers.
    pub from: BTreeMap<String, Vec<serde_json::Value>>,
    /// Output (`<output index>:<table>`) → the pending commits of every worker for the
    /// epochs this record decides (what becomes visible).
    pub sinks: BTreeMap<String, Vec<serde_json::Value>>,
    /// Event-time checkpoints (every source has a watermark): the barrier's event time.
    /// Data before the barrier carried a watermark below it; restored sources start
    /// their watermark here. `None` for processing-time epochs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barrier_time: Option<u64>,
    /// Stateful operator (its stable id, `crate::state::operator_id`; `<n>:<operator>`
    /// in render order in format 2) → the object (in the checkpoint directory) holding
    /// each worker's snapshot of its state at the barrier.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub state: BTreeMap<String, Vec<String>>,
    /// The run (one start of an instance) that wrote it. A record is written only if
    /// no record of its epoch exists, so exactly one run decides each epoch: a second
    /// instance of the job (a stale master's) finds the epoch taken by another run and
    /// stops without committing. Empty in records written before runs had ids.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run: String,
    /// When the checkpoint was requested (ms since the Unix epoch): with
    /// `completed_at_ms`, how long it took (barrier alignment, snapshots, sink staging
    /// and the record). `None` for the final record of a run whose input ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at_ms: Option<i64>,
}

/// The object name of a stateful operator's snapshot: epoch, operator sequence, worker
/// and the run writing it (two instances of a job racing for one epoch never write over
/// each other's snapshots; the record that wins names its own).
pub fn state_object_name(epoch: u64, operator: usize, worker: usize, run: &str) -> String {
    format!("state-{epoch:020}-{operator}-{worker}-{run}.bin")
}

/// True for the name of an operator state snapshot.
pub fn is_state_object_name(name: &str) -> bool {
    name.starts_with("state-") && name.ends_with(".bin")
}

/// The epoch of a state snapshot's name.
pub fn state_object_epoch(name: &str) -> Option<u64> {
    name.strip_prefix("state-")?.get(..20)?.parse().ok()
}

/// The object name of epoch `epoch`'s record.
pub fn record_name(epoch: u64) -> String {
    format!("chk-{epoch:020}.json")
}

/// True for the name of a checkpoint record.
pub fn is_record_name(name: &str) -> bool {
    name.starts_with("chk-") && name.ends_with(".json")
}

/// Reads a duration as Flink writes one: `500ms`, `10s`, `10 s`, `2min`, `1h`, or a
/// number of milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (e.g. '500ms', '10s', '2min')"))?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "milliseconds" => 1,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000,
        "h" | "hour" | "hours" => 3_600_000,
        _ => {
            return Err(format!(
                "'{text}' is not a duration (e.g. '500ms', '10s', '2min')"
            ))
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("duration '{text}' is too long"))
}

/// Counters of a run (live while it runs, final at the end).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
