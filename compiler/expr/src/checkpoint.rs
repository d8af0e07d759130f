//! What a checkpoint leaves in its directory: the [`CheckpointRecord`] of each complete
//! checkpoint (`chk-<epoch>.json`), the [`Savepoint`]s that pin one
//! (`savepoint-<epoch>.json`) and the operator state snapshots the records name
//! (`state-<epoch>-….bin`), with the object names of each.
//!
//! The dataflow runtime writes them and restores from them, the filesystem connectors'
//! checkpoint store reads and lists them, and the master shows them; this module is
//! their one definition. Plain data: reading and writing the objects is the caller's.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
/// sources and operator states keyed by stable ids (`sluice_compiler::state`), so that a changed
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
    /// Source (its stable key, `sluice_compiler::state::source_key`; `<n>:<table>` in render order
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
    /// Stateful operator (its stable id, `sluice_compiler::state::operator_id`; `<n>:<operator>`
    /// in render order in format 2) → the object (in the checkpoint directory) holding
    /// each worker's snapshot of its state at the barrier.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub state: BTreeMap<String, Vec<String>>,
    /// Incremental snapshots: stateful operator → for each worker, the objects a
    /// restore reads before the one `state` names, oldest first (a full snapshot, then
    /// the deltas after it; the object `state` names is then a delta too). Operators
    /// and workers whose `state` object is a full snapshot have none (an empty list, or
    /// no entry). See [`CheckpointRecord::state_chain`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub state_chains: BTreeMap<String, Vec<Vec<String>>>,
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

impl CheckpointRecord {
    /// The objects a restore of operator `key` reads for each worker, oldest first: the
    /// worker's chain (a full snapshot and the deltas after it) ending with its `state`
    /// object; one object when that is a full snapshot.
    pub fn state_chain(&self, key: &str) -> Vec<Vec<&String>> {
        let chains = self.state_chains.get(key);
        self.state
            .get(key)
            .map(|newest| {
                newest
                    .iter()
                    .enumerate()
                    .map(|(w, name)| {
                        let mut chain: Vec<&String> = chains
                            .and_then(|c| c.get(w))
                            .map(|c| c.iter().collect())
                            .unwrap_or_default();
                        chain.push(name);
                        chain
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every state object a restore from this record may read (each operator's and
    /// worker's whole chain, each pending commit's write-ahead copy): what must be kept
    /// while the record is.
    pub fn state_objects(&self) -> impl Iterator<Item = &String> {
        self.state
            .values()
            .flatten()
            .chain(self.state_chains.values().flatten().flatten())
            .chain(
                self.sinks
                    .values()
                    .flatten()
                    .filter_map(|p| match p.get(WRITE_AHEAD_FIELD) {
                        Some(serde_json::Value::String(name)) => Some(name),
                        _ => None,
                    }),
            )
    }
}

/// The field of a pending commit (in [`CheckpointRecord::sinks`]) naming the object
/// that holds its write-ahead copy (the sink's `write_ahead`), beside the records.
pub const WRITE_AHEAD_FIELD: &str = "write_ahead_object";

/// The object name of a sink's write-ahead copy of `epoch`: a state object (kept,
/// pinned and pruned with the records naming it) of the output `output` (its index in
/// the plan) and `worker`, by the run writing it.
pub fn write_ahead_object_name(epoch: u64, output: usize, worker: usize, run: &str) -> String {
    format!("state-{epoch:020}-sink{output}-{worker}-{run}.bin")
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
