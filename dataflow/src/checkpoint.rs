//! Periodic consistent checkpoints of a run, and restore.
//!
//! ```text
//! worker 0 ─ request epoch e ─▶ every source: record position, move its time to ≥ barrier(e)
//!                               every sink: when its input frontier passes barrier(e),
//!                                           prepare_commit(e) (staged, invisible)
//! worker 0 ─ all positions and prepares of e are in ─▶ write chk-<e>.json (the decision)
//! every worker ─ sees e completed ─▶ commit(e) on its sinks (the staged parts appear)
//! ```
//!
//! **Epochs in time.** In a checkpointed run, the data a source reads before it
//! records its position for checkpoint `e` carries a timestamp below
//! [`barrier`]`(e)` and everything after at or above it: timestamps are
//! `(epoch - 1) << 40 | ms since the run started`. A sink therefore knows that its
//! share of epoch `e` is complete when its input frontier reaches `barrier(e)`: timely's
//! progress tracking is the barrier alignment.
//!
//! **The record is the commit decision.** `chk-<e>.json` holds every source position at
//! the barrier and every sink's pending commit (what `commit` will rename). Sinks make
//! their parts visible only after the record is durable; a restore finishes the pending
//! commits of the record it restores from (idempotently), seeks the sources to the
//! record's positions, and aborts whatever else was staged once its own first record is
//! written. So every input record is in exactly one committed epoch: exactly-once
//! output across crashes.
//!
//! **One writer per epoch (fencing).** A record is created only if its epoch has none
//! yet, and names the run that wrote it: when two instances of a job share the store
//! (a stale master's and a new one), one decides each epoch and the other stops with
//! [`ExecutionError::Superseded`] before committing anything (see [`Coordinator`]).
//!
//! **Lineage.** Each record also keeps the positions of the checkpoint before it, so a
//! record maps a range of source positions (Kafka offsets per partition, …) to the
//! objects its commit made visible: the job's manifest (`GET /api/v1/jobs/{name}/commits`).
//!
//! **Event time.** When every source has a watermark, timestamps are event times
//! (watermarks) instead: checkpoint `e`'s barrier is an event time `W` chosen, when it
//! is requested, above every time any source has emitted ([`Barriers::EventTime`]). A
//! source records its position just before it first emits at a time `≥ W`, so again
//! data before the barrier is below it and data after at or above it.
//!
//! **Operator state.** A `WindowAggregate` snapshots its open windows when its input
//! frontier passes the barrier: rows at or above `W` that arrive earlier are held
//! back until then, windows ending before `W` (whose results belong to the epoch) are
//! emitted first, and the rest is written to `state-<epoch>-<operator>-<worker>-<run>.bin`
//! beside the record, which names it. A restore sends each snapshot's groups through
//! the operator's own exchange, so the state is redistributed by key over any new
//! worker count; restored sources start their watermark at `W`. Every other stateful
//! operator does the same with its own state (see each operator's docs).
//!
//! **Incremental snapshots.** A keyed operator may write a *delta* — the entries changed
//! since its previous snapshot in the run and the keys removed ([`encode_delta`]) —
//! instead of its whole state. The record then names, per operator and worker, the
//! object written at its epoch (`state`) and the chain before it (`state_chains`: the
//! full snapshot and the earlier deltas); a restore reads the chain in order
//! ([`decode_keyed_chain`]), and pruning keeps every object a retained record's chain
//! names. Each run starts its chains with a full snapshot.
//!
//! **Across SQL changes.** Positions and snapshots are keyed by stable ids
//! ([`sluice_compiler::state`]): a source by its table and options, an operator by its
//! whole sub-plan. A restore of a changed plan resumes the sources and keeps the
//! operator states whose ids it still has; the rest start from scratch (what
//! `POST /api/v1/jobs/{name}/plan` reports before the change).
//!
//! **Scope.** Every stateful operator snapshots its state or is checkpointed as its
//! inputs (`render/keep.rs`); [`checkpointable`] says when a plan cannot be
//! checkpointed (an operator that re-emits its result at a restore feeding another
//! stateful operator) and the run then reads its sources from the start after a
//! restart.

use crate::errors::ExecutionError;
use crate::render::Time;
use sluice_compiler::instance::CheckpointConfig;
pub use sluice_compiler::instance::{
    is_record_name, is_savepoint_name, is_state_object_name, record_name, savepoint_name,
    state_object_epoch, state_object_name, write_ahead_object_name, CheckpointRecord, RestoreFrom,
    Savepoint, CHECKPOINT_FORMAT, WRITE_AHEAD_FIELD,
};
use sluice_compiler::{DataflowPlan, SinkTarget};
use sluice_connectors::{ObjectDir, PendingCommit, Registry, WorkerContext};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Checkpoint records kept (older ones are deleted; the newest is restored from).
pub const KEEP_RECORDS: usize = 50;

const SHIFT: u32 = 40;

/// The first timestamp of epoch `e + 1`: data before checkpoint `e`'s barrier is below it.
pub(crate) fn barrier(epoch: u64) -> Time {
    epoch << SHIFT
}

/// The timestamp of data read during `epoch` (≥ 1), `ms` after the run started.
pub(crate) fn epoch_time(epoch: u64, ms: u64) -> Time {
    ((epoch.max(1) - 1) << SHIFT) | (ms & ((1 << SHIFT) - 1))
}

/// A stable fingerprint of a plan (FNV-1a of its JSON).
pub fn plan_fingerprint(plan: &DataflowPlan) -> String {
    sluice_compiler::state::fnv(&serde_json::to_vec(plan).unwrap_or_default())
}

pub use sluice_compiler::state::Barriers;

/// How `plan` checkpoints, or why it cannot (decided by the compiler:
/// [`sluice_compiler::state::checkpoint_mode`]).
pub fn barriers(plan: &DataflowPlan) -> Result<Barriers, String> {
    sluice_compiler::state::checkpoint_mode(plan)
}

/// Why `plan` cannot checkpoint, or `None` when it can.
pub fn checkpointable(plan: &DataflowPlan) -> Option<String> {
    barriers(plan).err()
}

/// Reads the newest readable record in `dir`.
pub fn latest_record(dir: &ObjectDir) -> Result<Option<CheckpointRecord>, ExecutionError> {
    sluice_connectors::checkpoint_store::latest_record(dir).map_err(|e| store_error(dir, e))
}

/// Every record in `dir`, oldest first (the job's manifest).
pub fn all_records(dir: &ObjectDir) -> Result<Vec<CheckpointRecord>, ExecutionError> {
    Ok(sluice_connectors::checkpoint_store::all_records(dir)
        .map_err(|e| store_error(dir, e))?
        .into_iter()
        .map(|(r, _)| r)
        .collect())
}

fn store_error(dir: &ObjectDir, e: sluice_connectors::ConnectorError) -> ExecutionError {
    ExecutionError::Internal(format!("checkpoint store {}: {e}", dir.display()))
}

/// Where the run restores from.
pub(crate) struct Restored {
    /// The record (the latest checkpoint's, or a savepoint's).
    pub(crate) record: CheckpointRecord,
    /// The newest epoch in the store: the run's epochs continue after it (a savepoint
    /// can be older than the latest checkpoint).
    pub(crate) base_epoch: u64,
    /// The record is a savepoint's.
    pub(crate) from_savepoint: bool,
    /// A record of format 2, keyed by render order: it applies as a whole, and only to
    /// the very plan it was written for (`fingerprint_match`).
    legacy: bool,
    /// The plan is the one the record was written for.
    fingerprint_match: bool,
    /// Source reads of the plan that resume from the record (when some do, its
    /// event-time barrier applies), and all of them.
    resumed_sources: usize,
    plan_sources: usize,
    /// Operator key → every old worker's state snapshots (of the operators the plan
    /// still has): its chain, oldest first — one full snapshot, or a full snapshot and
    /// the deltas after it ([`encode_delta`]).
    pub(crate) states: BTreeMap<String, Vec<Vec<Vec<u8>>>>,
}

impl Restored {
    /// The key a lookup uses: the stable id, or the render-order key of a legacy record
    /// (`None`: a legacy record of another plan, which applies to nothing).
    fn key<'k>(&self, key: &'k str, legacy_key: &'k str) -> Option<&'k str> {
        match (self.legacy, self.fingerprint_match) {
            (false, _) => Some(key),
            (true, true) => Some(legacy_key),
            (true, false) => None,
        }
    }

    /// The snapshot chains of operator `key` (`legacy_key` in a legacy record) this
    /// worker restores: those of the old workers `j` with `j % workers == worker` (the
    /// operator re-exchanges their groups by key), each oldest first.
    pub(crate) fn state_for(
        &self,
        key: &str,
        legacy_key: &str,
        worker: WorkerContext,
    ) -> Vec<Vec<&[u8]>> {
        self.key(key, legacy_key)
            .and_then(|k| self.states.get(k))
            .map(|all| {
                all.iter()
                    .enumerate()
                    .filter(|(j, _)| j % worker.workers.max(1) == worker.worker)
                    .map(|(_, chain)| chain.iter().map(Vec::as_slice).collect())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The event-time barrier the record was taken at, when some source resumes from it.
    pub(crate) fn barrier_time(&self) -> Option<Time> {
        self.record
            .barrier_time
            .filter(|_| self.resumed_sources > 0)
    }

    /// How much of the record the run takes over: `(source reads resumed, source
    /// reads of the plan, operator states kept)`.
    pub(crate) fn summary(&self) -> (usize, usize, usize) {
        (self.resumed_sources, self.plan_sources, self.states.len())
    }
}

/// What a restored run deletes once it owns the job: the parts earlier runs left staged
/// and the state snapshots no record names. Listed at restore, before the run writes
/// anything, and deleted only after the run's first record is written: until then they
/// may belong to another instance of the job that is still running (see [`Coordinator`],
/// *Fencing*), and a record it writes could name them.
#[derive(Default)]
pub(crate) struct Cleanup {
    /// Snapshots savepoints name: never deleted (also not by pruning).
    pinned: std::collections::BTreeSet<String>,
    /// Each table output's sink and what [`sluice_connectors::Sink::leftovers`] listed.
    sinks: Vec<(Box<dyn sluice_connectors::Sink>, serde_json::Value)>,
    /// State snapshot objects no record names.
    states: Vec<String>,
}

impl Cleanup {
    /// Deletes everything listed (best effort: what stays is invisible, and the next
    /// restore lists it again).
    fn run(self, dir: &ObjectDir) {
        for (mut sink, leftovers) in self.sinks {
            if let Err(e) = sink.abort_leftovers(&leftovers) {
                tracing::warn!("cannot delete parts staged by an earlier run: {e}");
            }
        }
        for name in self.states {
            if let Err(e) = dir.delete(&name) {
                tracing::warn!("cannot delete the stale state snapshot {name}: {e}");
            }
        }
    }
}

/// Before a checkpointed run: finishes the pending commits of the newest record (and
/// loads its operator snapshots); with `recover` false (a follower process of a run
/// over several) only loads, the leader having finished them. Returns the record, and the [`Cleanup`] of what the
/// run deletes once it owns the job.
pub(crate) fn restore(
    plan: &DataflowPlan,
    dir: &ObjectDir,
    registry: &Registry,
    restore_from: Option<RestoreFrom>,
    recover: bool,
) -> Result<(Option<Restored>, Cleanup), ExecutionError> {
    let latest = latest_record(dir)?;
    let base_epoch = latest.as_ref().map_or(0, |r| r.epoch);
    let (record, from_savepoint) = match restore_from {
        // A start from a savepoint, until this job has checkpointed since.
        Some(rf) if base_epoch <= rf.unless_newer_than => {
            (Some(savepoint(dir, rf.savepoint)?.record), true)
        }
        _ => (latest, false),
    };
    let fingerprint = plan_fingerprint(plan);
    let one = WorkerContext {
        worker: 0,
        workers: 1,
    };
    let mut cleanup = Cleanup::default();
    for (i, output) in plan.outputs.iter().enumerate() {
        let SinkTarget::Table(table) = &output.target else {
            continue;
        };
        if !recover {
            // A follower process: the leader finishes the commits and cleans up.
            continue;
        }
        // The commits of this table pending in the record: under its output's key, or
        // (the plan's outputs changed order) under any key of the same table.
        let key = sink_key(i, &table.name);
        let pending_values: Vec<serde_json::Value> = record
            .as_ref()
            .and_then(|r| {
                r.sinks.get(&key).cloned().or_else(|| {
                    let suffix = format!(":{}", table.name);
                    r.sinks
                        .iter()
                        .find(|(k, _)| k.ends_with(&suffix))
                        .map(|(_, v)| v.clone())
                })
            })
            .unwrap_or_default();
        let connector = |e: sluice_connectors::ConnectorError| ExecutionError::Connector {
            table: table.name.clone(),
            message: match &record {
                Some(r) => format!("restoring from checkpoint {}: {e}", r.epoch),
                // A first start: there is no checkpoint, only staged leftovers.
                None => format!("cleaning up staged files before the first checkpoint: {e}"),
            },
        };
        let mut pending = Vec::new();
        for commit in pending_values {
            let write_ahead = match commit.get(WRITE_AHEAD_FIELD) {
                Some(serde_json::Value::String(name)) => {
                    let bytes = dir.get(name).map_err(|e| {
                        ExecutionError::Internal(format!("checkpoint store {}: {e}", dir.display()))
                    })?;
                    Some(bytes.ok_or_else(|| {
                        ExecutionError::Internal(format!(
                            "the checkpoint names the write-ahead copy {name} of table '{}', which is missing from {}",
                            table.name,
                            dir.display()
                        ))
                    })?)
                }
                _ => None,
            };
            pending.push(PendingCommit {
                commit,
                write_ahead,
            });
        }
        let mut sink = registry.create_sink(table, one).map_err(connector)?;
        sink.recover(&pending).map_err(connector)?;
        let leftovers = sink.leftovers().map_err(connector)?;
        if !leftovers.is_null() {
            cleanup.sinks.push((sink, leftovers));
        }
    }
    // Operator snapshots: load those of the operators the plan still has; the others
    // (of operators no longer in the plan, of checkpoints that never completed, or
    // older than the record) are deleted with the cleanup.
    let io = |e: sluice_connectors::ConnectorError| {
        ExecutionError::Internal(format!("checkpoint store {}: {e}", dir.display()))
    };
    let layout = sluice_compiler::state::layout(plan);
    let legacy = record.as_ref().is_some_and(|r| r.format_version < 3);
    let fingerprint_match = record
        .as_ref()
        .is_some_and(|r| r.plan_fingerprint == fingerprint);
    let wanted = |key: &str| {
        if legacy {
            fingerprint_match
        } else {
            let op = sluice_compiler::state::operator_of(key);
            layout.operators.iter().any(|o| o.key == op)
        }
    };
    let mut states: BTreeMap<String, Vec<Vec<Vec<u8>>>> = BTreeMap::new();
    let mut keep: Vec<&String> = Vec::new();
    if let Some(r) = &record {
        for key in r.state.keys().filter(|k| wanted(k)) {
            let mut all = Vec::new();
            for names in r.state_chain(key) {
                let mut chain = Vec::new();
                for name in names {
                    sluice_connectors::failpoint("state.restore");
                    let bytes = dir.get(name).map_err(io)?.ok_or_else(|| {
                        ExecutionError::Internal(format!(
                            "checkpoint {} names the state snapshot {name}, which is missing from {}",
                            r.epoch,
                            dir.display()
                        ))
                    })?;
                    chain.push(bytes);
                }
                all.push(chain);
            }
            states.insert(key.clone(), all);
        }
        // Every snapshot the record names stays (a restore from it needs them all).
        keep.extend(r.state_objects());
    }
    for sp in sluice_connectors::checkpoint_store::all_savepoints(dir).map_err(io)? {
        cleanup.pinned.extend(sp.record.state_objects().cloned());
    }
    cleanup.states = dir
        .list()
        .map_err(io)?
        .into_iter()
        .filter(|name| {
            is_state_object_name(name) && !keep.contains(&name) && !cleanup.pinned.contains(name)
        })
        .collect();
    let restored = record.map(|record| Restored {
        base_epoch: base_epoch.max(record.epoch),
        from_savepoint,
        resumed_sources: match (legacy, fingerprint_match) {
            (true, true) => layout.sources.len(),
            (true, false) => 0,
            (false, _) => layout
                .sources
                .iter()
                .filter(|s| record.sources.contains_key(&s.key))
                .count(),
        },
        plan_sources: layout.sources.len(),
        legacy,
        fingerprint_match,
        record,
        states,
    });
    Ok((restored, cleanup))
}

/// The savepoint of epoch `epoch` in `dir`.
pub fn savepoint(dir: &ObjectDir, epoch: u64) -> Result<Savepoint, ExecutionError> {
    let name = savepoint_name(epoch);
    let bytes = dir
        .get(&name)
        .map_err(|e| ExecutionError::Internal(format!("checkpoint store {}: {e}", dir.display())))?
        .ok_or_else(|| ExecutionError::Connector {
            table: "(checkpoints)".into(),
            message: format!("there is no savepoint {epoch} in {}", dir.display()),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ExecutionError::Internal(format!(
            "savepoint {epoch} in {} is unreadable: {e}",
            dir.display()
        ))
    })
}

/// Encodes an operator's snapshot: bincode of `(version, entries)`.
pub(crate) fn encode_snapshot<T: serde::Serialize>(
    operator: &str,
    version: u32,
    entries: &T,
) -> Result<Vec<u8>, ExecutionError> {
    bincode::serialize(&(version, entries))
        .map_err(|e| ExecutionError::Internal(format!("{operator} snapshot: {e}")))
}

/// Decodes a snapshot written by [`encode_snapshot`] with the same `version`.
pub(crate) fn decode_snapshot<T: serde::de::DeserializeOwned>(
    operator: &str,
    version: u32,
    bytes: &[u8],
) -> Result<T, ExecutionError> {
    let (found, entries): (u32, T) = bincode::deserialize(bytes).map_err(|e| {
        ExecutionError::Internal(format!("{operator}: unreadable state snapshot: {e}"))
    })?;
    if found != version {
        return Err(ExecutionError::Internal(format!(
            "{operator}: state snapshot version {found} (this build reads {version})"
        )));
    }
    Ok(entries)
}

/// What a keyed state's snapshot after another one holds: the entries whose key changed
/// since (their values now) and the keys removed since.
#[derive(serde::Serialize, serde::Deserialize)]
struct Delta<K, V> {
    upserts: Vec<(K, V)>,
    deletes: Vec<K>,
}

/// The version tag of an incremental snapshot of an operator whose full snapshots are
/// tagged `version`: the two can never be mistaken for each other.
fn delta_version(version: u32) -> u32 {
    version | 1 << 31
}

/// Encodes an incremental snapshot of a keyed state ([`decode_keyed_chain`] applies it
/// to the snapshot before it): bincode of `(version | 1 << 31, upserts, deletes)`.
pub(crate) fn encode_delta<K: serde::Serialize, V: serde::Serialize>(
    operator: &str,
    version: u32,
    upserts: Vec<(K, V)>,
    deletes: Vec<K>,
) -> Result<Vec<u8>, ExecutionError> {
    encode_delta_of(operator, version, &Delta { upserts, deletes })
}

/// Encodes an incremental snapshot of the operator's own shape (`delta`), which
/// [`decode_chain`] hands to the operator's rule for applying it.
pub(crate) fn encode_delta_of<D: serde::Serialize>(
    operator: &str,
    version: u32,
    delta: &D,
) -> Result<Vec<u8>, ExecutionError> {
    encode_snapshot(operator, delta_version(version), delta)
}

/// Decodes a snapshot chain: the full snapshot (of type `S`), then each delta (of type
/// `D`, written by [`encode_delta_of`]) applied to it in order by `apply`.
pub(crate) fn decode_chain<S, D>(
    operator: &str,
    version: u32,
    chain: &[&[u8]],
    mut apply: impl FnMut(&mut S, D),
) -> Result<S, ExecutionError>
where
    S: serde::de::DeserializeOwned,
    D: serde::de::DeserializeOwned,
{
    let Some((full, deltas)) = chain.split_first() else {
        return Err(ExecutionError::Internal(format!(
            "{operator}: an empty chain of state snapshots"
        )));
    };
    let mut state: S = decode_snapshot(operator, version, full)?;
    for bytes in deltas {
        apply(
            &mut state,
            decode_snapshot(operator, delta_version(version), bytes)?,
        );
    }
    Ok(state)
}

/// Decodes the snapshot chain of a keyed state (entries `(key, value)`, keys unique):
/// a full snapshot written by [`encode_snapshot`], then the deltas written after it by
/// [`encode_delta`], applied in order.
pub(crate) fn decode_keyed_chain<K, V>(
    operator: &str,
    version: u32,
    chain: &[&[u8]],
) -> Result<Vec<(K, V)>, ExecutionError>
where
    K: Ord + serde::de::DeserializeOwned,
    V: serde::de::DeserializeOwned,
{
    let Some((full, deltas)) = chain.split_first() else {
        return Ok(Vec::new());
    };
    let entries: Vec<(K, V)> = decode_snapshot(operator, version, full)?;
    if deltas.is_empty() {
        return Ok(entries);
    }
    let mut state: BTreeMap<K, V> = entries.into_iter().collect();
    for bytes in deltas {
        let delta: Delta<K, V> = decode_snapshot(operator, delta_version(version), bytes)?;
        for k in delta.deletes {
            state.remove(&k);
        }
        state.extend(delta.upserts);
    }
    Ok(state.into_iter().collect())
}

/// Decodes the snapshot of an operator that writes only full snapshots (a chain of
/// one).
pub(crate) fn decode_whole<T: serde::de::DeserializeOwned>(
    operator: &str,
    version: u32,
    chain: &[&[u8]],
) -> Result<T, ExecutionError> {
    match chain {
        [bytes] => decode_snapshot(operator, version, bytes),
        _ => Err(ExecutionError::Internal(format!(
            "{operator}: a chain of {} state snapshots where one full snapshot was written",
            chain.len()
        ))),
    }
}

/// The key a format-2 record gave a source operator: its render order on a worker, and
/// its table (records of format 3 use stable ids: [`sluice_compiler::state::source_key`]).
pub(crate) fn legacy_source_key(seq: usize, table: &str) -> String {
    format!("{seq}:{table}")
}

/// The key of a table output.
pub(crate) fn sink_key(output: usize, table: &str) -> String {
    format!("{output}:{table}")
}

/// Where a restored source of this worker seeks, if anywhere: its own position when the
/// worker count is unchanged; the union of every worker's (keyed) position otherwise.
/// `Err` when positions cannot be redistributed.
pub(crate) fn restored_position(
    restored: &Restored,
    key: &str,
    legacy_key: &str,
    worker: WorkerContext,
) -> Result<Option<serde_json::Value>, String> {
    let Some(key) = restored.key(key, legacy_key) else {
        return Ok(None);
    };
    let Some(positions) = restored.record.sources.get(key) else {
        return Ok(None);
    };
    if positions.len() == worker.workers {
        return Ok(positions.get(worker.worker).cloned());
    }
    // Positions keyed by partition (Kafka's `topic/partition`, a file's path) merge
    // into one map each new worker takes its share of. A position that names the worker
    // count it counts for (a generator's, `{"next": n, "workers": W}`), or a key in two
    // workers' positions, is per worker: no new worker could tell which rows were read,
    // so it is not merged into a position that would lose or repeat rows.
    if let Some(w) = positions.iter().find_map(|p| p.get("workers")) {
        return Err(format!(
            "its positions count the rows of each of {w} workers, so they cannot be \
             redistributed over {}",
            worker.workers
        ));
    }
    let mut merged = serde_json::Map::new();
    for p in positions {
        match p {
            serde_json::Value::Object(o) => {
                for (k, v) in o {
                    if merged.insert(k.clone(), v.clone()).is_some() {
                        return Err(format!(
                            "its positions from {} workers are per worker (`{k}` in each), \
                             so they cannot be redistributed over {}: run it at {} workers, \
                             or start it without its checkpoint",
                            positions.len(),
                            worker.workers,
                            positions.len()
                        ));
                    }
                }
            }
            _ => {
                return Err(format!(
                    "its positions from {} workers cannot be redistributed over {}",
                    positions.len(),
                    worker.workers
                ))
            }
        }
    }
    Ok(Some(serde_json::Value::Object(merged)))
}

#[derive(Default)]
struct Inner {
    /// Source operators (key, worker) and sink operators (key, worker) of the run.
    sources: Vec<(String, usize)>,
    sinks: Vec<(String, usize)>,
    /// Positions recorded per epoch.
    positions: BTreeMap<u64, BTreeMap<(String, usize), serde_json::Value>>,
    /// Final positions of finished sources.
    finished: BTreeMap<(String, usize), serde_json::Value>,
    /// Pending commits per epoch.
    prepared: BTreeMap<u64, BTreeMap<(String, usize), serde_json::Value>>,
    /// Positions of the last complete checkpoint.
    last_sources: BTreeMap<String, Vec<serde_json::Value>>,
    last_completed: Option<Instant>,
    /// When the checkpoint in flight was requested (ms since the Unix epoch).
    requested_at_ms: Option<i64>,
    /// Event time: each requested epoch's barrier.
    barriers: BTreeMap<u64, Time>,
    /// Event time: the newest time each source has emitted at (or is about to).
    source_times: BTreeMap<(String, usize), Time>,
    /// Event time: the newest epoch each source has recorded its position for.
    recorded: BTreeMap<(String, usize), u64>,
    /// Stateful operators (key, worker) of the run.
    states: Vec<(String, usize)>,
    /// Snapshot chains (object names, oldest first; the last written at the epoch) per
    /// epoch.
    saved: BTreeMap<u64, BTreeMap<(String, usize), Vec<String>>>,
    /// Each stateful operator's chain as of its newest snapshot: a full snapshot and
    /// the deltas written after it.
    chains: BTreeMap<(String, usize), Vec<String>>,
    /// The newest complete epochs, oldest first, with the state objects their records
    /// name: those of the newest `retained` are kept.
    recent: std::collections::VecDeque<(u64, Vec<String>)>,
    /// What to delete once this run's first record is written.
    cleanup: Option<Cleanup>,
    /// Across processes: an epoch whose barrier not every process knows yet, and the
    /// time at and above which this process's sources emit nothing until then (event
    /// time: its candidate while the barrier is chosen, then the barrier; epochs: the
    /// barrier). Rows at or above a barrier must not reach a stateful operator that does
    /// not know it, or they land in the epoch's snapshot and are read again after a
    /// restore from it.
    hold: Option<(u64, Time)>,
    /// The leader, event time across processes: the epoch being armed and the
    /// candidates received for it, by process.
    arming: Option<(u64, BTreeMap<usize, Time>)>,
    /// The leader, across processes: the requested epoch and the followers that have
    /// applied it (every process's sources hold until all have).
    applying: Option<(u64, std::collections::BTreeSet<usize>)>,
    /// Across processes: the newest epoch whose barrier every process knows (the
    /// leader's count; a follower's copy of it).
    released: u64,
}

/// What a follower process's coordinator forwards to the leader's (process 0's): every
/// report its workers make. Positions and pending commits travel as JSON text (the
/// control stream is encoded as JSON).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Report {
    Source {
        key: String,
        worker: usize,
    },
    Sink {
        key: String,
        worker: usize,
    },
    State {
        key: String,
        worker: usize,
    },
    Position {
        epoch: u64,
        key: String,
        worker: usize,
        position: serde_json::Value,
    },
    Finished {
        key: String,
        worker: usize,
        position: serde_json::Value,
    },
    Prepared {
        epoch: u64,
        key: String,
        worker: usize,
        pending: serde_json::Value,
    },
    Saved {
        epoch: u64,
        key: String,
        worker: usize,
        chain: Vec<String>,
    },
    Committed {
        worker: usize,
        epoch: u64,
    },
    /// Event time: process `process`'s candidate barrier for `epoch`.
    Candidate {
        epoch: u64,
        process: usize,
        time: Time,
    },
    /// Event time: process `process` knows the barrier of `epoch` (its operators
    /// keep what arrives at or above it out of the epoch's snapshots).
    Applied {
        epoch: u64,
        process: usize,
    },
}

/// What the leader tells the followers, whenever it changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Decision {
    /// The newest requested epoch, and (event time) its barrier.
    pub(crate) requested: u64,
    pub(crate) barrier: Option<Time>,
    /// The newest epoch whose record is durable.
    pub(crate) completed: u64,
    /// Event time: the epoch whose barrier is being chosen (candidates wanted).
    pub(crate) arm: Option<u64>,
    /// The newest epoch whose barrier every process knows: sources may pass it.
    pub(crate) released: u64,
}

/// Where a run's coordinator sits among its processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A one-process run.
    Alone,
    /// Process 0 of `processes`: completes the records.
    Leader { processes: usize },
    /// Any other process: forwards its reports to the leader, applies its decisions.
    Follower { process: usize },
}

/// The checkpoint coordinator of one run, shared by its worker threads.
///
/// **Fencing.** Each record is created only if no record of its epoch exists
/// ([`ObjectDir::create`]), and carries the id of the run that wrote it. Two instances
/// of one job over the same checkpoint store (a second master on a copy of the data
/// directory, a host cut off and restarted elsewhere) both continue from the newest
/// record `L`; whichever writes `L + 1` first owns the job, and the other finds the
/// epoch taken, stops with [`ExecutionError::Superseded`] and commits nothing. Until a
/// run has written its first record it deletes nothing that another run could still
/// need ([`Cleanup`]); operator snapshots carry the run's id in their names.
pub(crate) struct Coordinator {
    dir: ObjectDir,
    /// This run's id (in its records and snapshot names).
    run: String,
    /// Snapshots savepoints name (never pruned).
    pinned: std::collections::BTreeSet<String>,
    /// Checkpoints kept restorable (`CheckpointConfig::retained`).
    retained: usize,
    mode: Barriers,
    /// Event time: the barrier of the record restored from (sources start there).
    restored_barrier: Time,
    interval: Duration,
    workers: usize,
    fingerprint: String,
    requested: AtomicU64,
    completed: AtomicU64,
    /// The newest epoch each worker has committed its sinks through.
    worker_committed: Vec<AtomicU64>,
    inner: Mutex<Inner>,
    role: Role,
    /// A follower's reports not yet sent to the leader.
    outbox: Mutex<Vec<Report>>,
}

impl Coordinator {
    /// A coordinator continuing after `restored` (epoch 0 without one), of a run of
    /// `workers` workers in all where this process plays `role`.
    pub(crate) fn new(
        cfg: &CheckpointConfig,
        dir: ObjectDir,
        plan: &DataflowPlan,
        (workers, role): (usize, Role),
        restored: Option<&Restored>,
        cleanup: Cleanup,
        mode: Barriers,
    ) -> Coordinator {
        let base = restored.map_or(0, |r| r.base_epoch);
        let last_sources = restored
            .filter(|r| !r.legacy)
            .map(|r| r.record.sources.clone())
            .unwrap_or_default();
        let restored_barrier = restored.and_then(Restored::barrier_time).unwrap_or(0);
        Coordinator {
            dir,
            run: sluice_connectors::unique_id(),
            pinned: cleanup.pinned.clone(),
            retained: cfg.retained.max(1) as usize,
            mode,
            restored_barrier,
            interval: Duration::from_millis(cfg.interval_ms.max(1)),
            workers,
            fingerprint: plan_fingerprint(plan),
            requested: AtomicU64::new(base),
            completed: AtomicU64::new(base),
            worker_committed: (0..workers.max(1)).map(|_| AtomicU64::new(base)).collect(),
            inner: Mutex::new(Inner {
                last_sources,
                last_completed: Some(Instant::now()),
                recent: std::collections::VecDeque::from([(
                    base,
                    restored
                        .map(|r| r.record.state_objects().cloned().collect())
                        .unwrap_or_default(),
                )]),
                cleanup: Some(cleanup),
                ..Inner::default()
            }),
            role,
            outbox: Mutex::new(Vec::new()),
        }
    }

    /// Where this coordinator sits among the run's processes.
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    /// A follower: queues `report` for the leader.
    fn forward(&self, report: impl FnOnce() -> Report) {
        if let Role::Follower { .. } = self.role {
            self.outbox
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(report());
        }
    }

    /// A follower: the reports to send to the leader now.
    pub(crate) fn take_outbox(&self) -> Vec<Report> {
        std::mem::take(&mut *self.outbox.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The leader: a follower's report, recorded as if made here.
    pub(crate) fn apply(&self, report: Report) {
        match report {
            Report::Source { key, worker } => self.register_source(&key, worker),
            Report::Sink { key, worker } => self.register_sink(&key, worker),
            Report::State { key, worker } => self.register_state(&key, worker),
            Report::Position {
                epoch,
                key,
                worker,
                position,
            } => self.source_position(epoch, &key, worker, position),
            Report::Finished {
                key,
                worker,
                position,
            } => self.source_finished(&key, worker, position),
            Report::Prepared {
                epoch,
                key,
                worker,
                pending,
            } => {
                self.lock()
                    .prepared
                    .entry(epoch)
                    .or_default()
                    .insert((key, worker), pending);
            }
            Report::Saved {
                epoch,
                key,
                worker,
                chain,
            } => {
                let mut inner = self.lock();
                inner.chains.insert((key.clone(), worker), chain.clone());
                inner
                    .saved
                    .entry(epoch)
                    .or_default()
                    .insert((key, worker), chain);
            }
            Report::Committed { worker, epoch } => self.worker_committed(worker, epoch),
            Report::Candidate {
                epoch,
                process,
                time,
            } => self.candidate(epoch, process, time),
            Report::Applied { epoch, process } => self.applied(epoch, process),
        }
    }

    /// The leader: what the followers must know now.
    pub(crate) fn decision(&self) -> Decision {
        let requested = self.requested();
        let inner = self.lock();
        Decision {
            requested,
            barrier: match self.mode {
                Barriers::EventTime => inner.barriers.get(&requested).copied(),
                Barriers::Epochs => None,
            },
            completed: self.completed(),
            arm: inner.arming.as_ref().map(|(e, _)| *e),
            released: inner.released,
        }
    }

    /// A follower: applies the leader's decision. A requested epoch's barrier is known
    /// here (to this process's operators) from now on; this process's sources go on
    /// holding below it until the leader says every process knows it (`released`),
    /// having heard from each (`Report::Applied`).
    pub(crate) fn apply_decision(&self, d: &Decision) {
        if d.requested > self.requested() {
            let mut inner = self.lock();
            if let Some(b) = d.barrier {
                inner.barriers.insert(d.requested, b);
            }
            self.requested.fetch_max(d.requested, Ordering::SeqCst);
            // Hold at the barrier itself now (event time: rows between this process's
            // candidate and the barrier belong to the epoch and may go).
            let from = match self.mode {
                Barriers::EventTime => d.barrier.unwrap_or(Time::MAX),
                Barriers::Epochs => barrier(d.requested),
            };
            inner.hold = Some((d.requested, from));
            drop(inner);
            if let Role::Follower { process } = self.role {
                self.forward(|| Report::Applied {
                    epoch: d.requested,
                    process,
                });
            }
        }
        {
            let mut inner = self.lock();
            inner.released = inner.released.max(d.released);
            let released = inner.released;
            if inner.hold.is_some_and(|(e, _)| e <= released) {
                inner.hold = None;
            }
        }
        if let Some(epoch) = d.arm {
            if epoch > self.requested() && self.lock().hold.is_none_or(|(e, _)| e != epoch) {
                let time = self.arm(epoch);
                if let Role::Follower { process } = self.role {
                    self.forward(|| Report::Candidate {
                        epoch,
                        process,
                        time,
                    });
                }
            }
        }
        if d.completed > self.completed() {
            let mut inner = self.lock();
            inner.positions = inner.positions.split_off(&(d.completed + 1));
            inner.saved = inner.saved.split_off(&(d.completed + 1));
            let keep = inner
                .prepared
                .split_off(&(d.completed.saturating_sub(64) + 1));
            inner.prepared = keep;
            inner.barriers = inner.barriers.split_off(&d.completed);
            drop(inner);
            self.completed.fetch_max(d.completed, Ordering::SeqCst);
        }
    }

    /// Event time across processes: `epoch`'s barrier is being chosen; from now until
    /// this process knows it (and, on the leader, every follower does), its sources
    /// emit nothing at or above the returned candidate (above every time they emitted
    /// so far).
    fn arm(&self, epoch: u64) -> Time {
        let mut inner = self.lock();
        let candidate = self.above_every_source(&inner);
        inner.hold = Some((epoch, candidate));
        candidate
    }

    /// Event time: the first time above every time this process's sources emitted (and
    /// above the restored barrier).
    fn above_every_source(&self, inner: &Inner) -> Time {
        inner
            .source_times
            .values()
            .copied()
            .max()
            .unwrap_or(0)
            .max(self.restored_barrier)
            .saturating_add(1)
    }

    /// The leader: a process's candidate; once every process's is in, the barrier is
    /// the highest and the epoch is requested.
    fn candidate(&self, epoch: u64, process: usize, time: Time) {
        let Role::Leader { processes } = self.role else {
            return;
        };
        let mut inner = self.lock();
        let Some((arming, candidates)) = inner.arming.as_mut() else {
            return;
        };
        if *arming != epoch {
            return;
        }
        candidates.insert(process, time);
        if candidates.len() < processes {
            return;
        }
        // The highest: above every time any process's sources emitted before they
        // armed, and none has emitted at or above its own candidate since.
        let barrier = candidates.values().copied().max().unwrap_or(0);
        inner.arming = None;
        inner.barriers.insert(epoch, barrier);
        self.requested.store(epoch, Ordering::SeqCst);
        // This process's operators know the barrier now; its sources wait for the
        // followers' (data sent to their operators must not overtake it).
        inner.applying = Some((epoch, Default::default()));
    }

    /// The leader: follower `process` knows the barrier of `epoch`; once every one
    /// does, every process's sources may emit at or above it (the next decision says
    /// so to the followers).
    fn applied(&self, epoch: u64, process: usize) {
        let Role::Leader { processes } = self.role else {
            return;
        };
        let mut inner = self.lock();
        let Some((applying, done)) = inner.applying.as_mut() else {
            return;
        };
        if *applying != epoch {
            return;
        }
        done.insert(process);
        if done.len() + 1 < processes {
            return;
        }
        inner.applying = None;
        inner.released = inner.released.max(epoch);
        if inner.hold.is_some_and(|(e, _)| e <= epoch) {
            inner.hold = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How this run's epochs are cut.
    pub(crate) fn mode(&self) -> Barriers {
        self.mode
    }

    /// Event time: where restored sources start their time (0 without a restore).
    pub(crate) fn restored_barrier(&self) -> Time {
        self.restored_barrier
    }

    /// The barrier of a requested `epoch`: data of the epoch is below it.
    pub(crate) fn barrier_of(&self, epoch: u64) -> Time {
        match self.mode {
            Barriers::Epochs => barrier(epoch),
            Barriers::EventTime => self
                .lock()
                .barriers
                .get(&epoch)
                .copied()
                .unwrap_or(Time::MAX),
        }
    }

    /// Event time, a source about to emit at `time`: records `position` (where it
    /// is now, before that data) for every requested epoch whose barrier `time`
    /// reaches, then publishes `time` (a later barrier is chosen above it). Returns
    /// whether the source may emit at `time` now: not while a barrier that may lie
    /// at or below it is being chosen across processes (it asks again shortly).
    #[must_use]
    pub(crate) fn event_source_step(
        &self,
        key: &str,
        worker: usize,
        time: Time,
        position: impl FnOnce() -> serde_json::Value,
    ) -> bool {
        let mut inner = self.lock();
        let k = (key.to_string(), worker);
        let requested = self.requested();
        let through = inner
            .recorded
            .get(&k)
            .copied()
            .unwrap_or_else(|| self.completed());
        let crossed: Vec<u64> = (through + 1..=requested)
            .filter(|e| inner.barriers.get(e).is_some_and(|b| *b <= time))
            .collect();
        if let Some(&last) = crossed.last() {
            let p = position();
            for e in crossed {
                self.forward(|| Report::Position {
                    epoch: e,
                    key: key.to_string(),
                    worker,
                    position: p.clone(),
                });
                inner
                    .positions
                    .entry(e)
                    .or_default()
                    .insert(k.clone(), p.clone());
            }
            inner.recorded.insert(k.clone(), last);
        }
        let t = inner.source_times.entry(k).or_insert(time);
        *t = (*t).max(time);
        inner.hold.is_none_or(|(_, from)| time < from)
    }

    /// Whether a source of this process may emit at `time` now (see [`Inner::hold`]).
    /// (Called at every activation of every source: a one-process run never holds, so
    /// it does not take the coordinator's lock for it.)
    pub(crate) fn may_emit(&self, time: Time) -> bool {
        self.role == Role::Alone || self.lock().hold.is_none_or(|(_, from)| time < from)
    }

    /// A stateful operator of the run (its snapshots are part of every record).
    pub(crate) fn register_state(&self, key: &str, worker: usize) {
        self.forward(|| Report::State {
            key: key.to_string(),
            worker,
        });
        self.lock().states.push((key.to_string(), worker));
    }

    /// The epoch (and its barrier) a stateful operator that has snapshotted through
    /// `saved_through` must snapshot next, if one is requested.
    pub(crate) fn state_due(&self, saved_through: u64) -> Option<(u64, Time)> {
        let epoch = saved_through + 1;
        (epoch <= self.requested()).then(|| (epoch, self.barrier_of(epoch)))
    }

    /// Writes an operator's snapshot for `epoch` beside the records: a full snapshot,
    /// or (`delta`) the changes since the operator's previous snapshot in this run, which
    /// a restore applies after the chain before it.
    pub(crate) fn save_state(
        &self,
        epoch: u64,
        key: &str,
        seq: usize,
        worker: usize,
        bytes: Vec<u8>,
        delta: bool,
    ) -> Result<(), ExecutionError> {
        let name = state_object_name(epoch, seq, worker, &self.run);
        sluice_connectors::failpoint("state.snapshot");
        self.dir
            .put(&name, bytes)
            .map_err(|e| ExecutionError::Internal(format!("writing state snapshot {name}: {e}")))?;
        let mut inner = self.lock();
        let id = (key.to_string(), worker);
        let chain = inner.chains.entry(id.clone()).or_default();
        if !delta || chain.is_empty() {
            chain.clear();
        }
        chain.push(name);
        let chain = chain.clone();
        self.forward(|| Report::Saved {
            epoch,
            key: key.to_string(),
            worker,
            chain: chain.clone(),
        });
        inner.saved.entry(epoch).or_default().insert(id, chain);
        Ok(())
    }

    /// The newest epoch whose barrier was requested.
    pub(crate) fn requested(&self) -> u64 {
        self.requested.load(Ordering::SeqCst)
    }

    /// The newest epoch whose record is durable.
    pub(crate) fn completed(&self) -> u64 {
        self.completed.load(Ordering::SeqCst)
    }

    /// Worker `worker` has committed its sinks through `epoch`.
    pub(crate) fn worker_committed(&self, worker: usize, epoch: u64) {
        self.forward(|| Report::Committed { worker, epoch });
        if let Some(c) = self.worker_committed.get(worker) {
            c.fetch_max(epoch, Ordering::SeqCst);
        }
    }

    /// The newest epoch every worker has committed through.
    fn all_committed(&self) -> u64 {
        self.worker_committed
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .min()
            .unwrap_or(0)
    }

    /// The epoch data read now belongs to, for a source that has passed every barrier.
    pub(crate) fn first_epoch(&self) -> u64 {
        self.completed() + 1
    }

    pub(crate) fn register_source(&self, key: &str, worker: usize) {
        self.forward(|| Report::Source {
            key: key.to_string(),
            worker,
        });
        self.lock().sources.push((key.to_string(), worker));
    }

    pub(crate) fn register_sink(&self, key: &str, worker: usize) {
        self.forward(|| Report::Sink {
            key: key.to_string(),
            worker,
        });
        self.lock().sinks.push((key.to_string(), worker));
    }

    /// A source's position at the barrier of `epoch`.
    pub(crate) fn source_position(
        &self,
        epoch: u64,
        key: &str,
        worker: usize,
        position: serde_json::Value,
    ) {
        self.forward(|| Report::Position {
            epoch,
            key: key.to_string(),
            worker,
            position: position.clone(),
        });
        self.lock()
            .positions
            .entry(epoch)
            .or_default()
            .insert((key.to_string(), worker), position);
    }

    /// A source has read all its input; `position` is its last.
    pub(crate) fn source_finished(&self, key: &str, worker: usize, position: serde_json::Value) {
        self.forward(|| Report::Finished {
            key: key.to_string(),
            worker,
            position: position.clone(),
        });
        self.lock()
            .finished
            .insert((key.to_string(), worker), position);
    }

    /// A sink prepared `epoch`; `pending` is what its commit will do, `write_ahead`
    /// (if any) the copy of what it will make visible: written beside the records now
    /// (before the record that decides the epoch) and named in the pending commit.
    pub(crate) fn sink_prepared(
        &self,
        epoch: u64,
        key: &str,
        worker: usize,
        mut pending: serde_json::Value,
        write_ahead: Option<Vec<u8>>,
    ) -> Result<(), ExecutionError> {
        if let (Some(bytes), serde_json::Value::Object(fields)) = (write_ahead, &mut pending) {
            let output = key
                .split_once(':')
                .and_then(|(i, _)| i.parse().ok())
                .unwrap_or(0);
            let name = write_ahead_object_name(epoch, output, worker, &self.run);
            self.dir.put(&name, bytes).map_err(|e| {
                ExecutionError::Internal(format!("writing the sink's write-ahead copy {name}: {e}"))
            })?;
            fields.insert(WRITE_AHEAD_FIELD.into(), serde_json::Value::String(name));
        }
        self.forward(|| Report::Prepared {
            epoch,
            key: key.to_string(),
            worker,
            pending: pending.clone(),
        });
        self.lock()
            .prepared
            .entry(epoch)
            .or_default()
            .insert((key.to_string(), worker), pending);
        Ok(())
    }

    /// Worker 0, between steps: starts the next checkpoint when the interval has passed
    /// since the last one completed, none is in flight and every worker has committed
    /// the last one (so a record never has to carry more than its own epoch's commits
    /// and those of the epochs not yet committed everywhere).
    pub(crate) fn maybe_request(&self) {
        let (req, done) = (self.requested(), self.completed());
        let choosing = {
            let inner = self.lock();
            inner.arming.is_some() || inner.applying.is_some()
        };
        if req != done || self.all_committed() < done || choosing {
            return;
        }
        let due = self
            .lock()
            .last_completed
            .is_none_or(|t| t.elapsed() >= self.interval);
        if due {
            sluice_connectors::failpoint("checkpoint.start");
            if let (Barriers::EventTime, Role::Leader { .. }) = (self.mode, self.role) {
                // Across processes the barrier must be above every time any process's
                // sources emitted: each process proposes one (`arm`), the highest wins.
                let own = self.arm(done + 1);
                let mut inner = self.lock();
                inner.requested_at_ms = Some(now_ms());
                inner.arming = Some((done + 1, BTreeMap::new()));
                drop(inner);
                self.candidate(done + 1, 0, own);
                return;
            }
            let mut inner = self.lock();
            if self.mode == Barriers::EventTime {
                // Above every time emitted so far: whatever is emitted at or above it
                // comes after its source recorded its position.
                let barrier = self.above_every_source(&inner);
                inner.barriers.insert(done + 1, barrier);
            }
            if let Role::Leader { .. } = self.role {
                // The followers' operators learn of the epoch from the next decision:
                // this process's sources stay below its barrier until they have.
                inner.hold = Some((done + 1, barrier(done + 1)));
                inner.applying = Some((done + 1, Default::default()));
            }
            inner.requested_at_ms = Some(now_ms());
            self.requested.store(done + 1, Ordering::SeqCst);
            drop(inner);
        }
    }

    /// Makes `epoch` the requested one (the final checkpoint of a run whose input ended).
    pub(crate) fn request(&self, epoch: u64) {
        self.requested.fetch_max(epoch, Ordering::SeqCst);
    }

    /// Worker 0, between steps: writes the record of the requested epoch once every
    /// source and sink has reported for it. Returns whether it completed one.
    pub(crate) fn try_complete(&self) -> Result<bool, ExecutionError> {
        self.complete(false)
    }

    /// Worker 0, after the input ended and every sink staged everything: writes the
    /// last record, with every source's final position (data read after a source's
    /// last barrier is in this record's commits too).
    pub(crate) fn complete_final(&self) -> Result<bool, ExecutionError> {
        self.complete(true)
    }

    fn complete(&self, last: bool) -> Result<bool, ExecutionError> {
        let epoch = self.requested();
        if epoch <= self.completed() {
            return Ok(false);
        }
        let mut inner = self.lock();
        let here = inner.positions.get(&epoch);
        let mut sources: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for (key, worker) in &inner.sources {
            let k = (key.clone(), *worker);
            let at_barrier = here.and_then(|m| m.get(&k));
            let finished = inner.finished.get(&k);
            let position = if last {
                finished.or(at_barrier)
            } else {
                at_barrier.or(finished)
            };
            let Some(p) = position else {
                return Ok(false);
            };
            let slot = sources.entry(key.clone()).or_default();
            if slot.len() <= *worker {
                slot.resize(*worker + 1, serde_json::Value::Null);
            }
            slot[*worker] = p.clone();
        }
        let prepared_here = inner.prepared.get(&epoch);
        if inner
            .sinks
            .iter()
            .any(|k| prepared_here.is_none_or(|m| !m.contains_key(k)))
        {
            return Ok(false);
        }
        // Every stateful operator's snapshot (none in the last record: the input ended,
        // so every window was emitted).
        let mut state: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut state_chains: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
        if !last {
            let saved_here = inner.saved.get(&epoch);
            for (key, worker) in &inner.states {
                let Some((name, before)) = saved_here
                    .and_then(|m| m.get(&(key.clone(), *worker)))
                    .and_then(|chain| chain.split_last())
                else {
                    return Ok(false);
                };
                let slot = state.entry(key.clone()).or_default();
                if slot.len() <= *worker {
                    slot.resize(*worker + 1, String::new());
                }
                slot[*worker] = name.clone();
                if !before.is_empty() {
                    let slot = state_chains.entry(key.clone()).or_default();
                    if slot.len() <= *worker {
                        slot.resize(*worker + 1, Vec::new());
                    }
                    slot[*worker] = before.to_vec();
                }
            }
        }
        let barrier_time = match self.mode {
            Barriers::EventTime if !last => inner.barriers.get(&epoch).copied(),
            _ => None,
        };
        // Every pending commit some worker may not have done yet: a restore from this
        // record must finish them all.
        let committed = self.all_committed();
        let mut sinks: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
        for (_, m) in inner.prepared.range(committed + 1..=epoch) {
            for ((key, _), pending) in m {
                if !pending.is_null() {
                    sinks.entry(key.clone()).or_default().push(pending.clone());
                }
            }
        }
        let from = inner.last_sources.clone();
        let record = CheckpointRecord {
            format_version: CHECKPOINT_FORMAT,
            epoch,
            completed_at_ms: now_ms(),
            workers: self.workers,
            plan_fingerprint: self.fingerprint.clone(),
            sources: sources.clone(),
            from,
            sinks,
            barrier_time,
            state,
            state_chains,
            run: self.run.clone(),
            requested_at_ms: inner.requested_at_ms.filter(|_| !last),
        };
        let bytes = serde_json::to_vec_pretty(&record)
            .map_err(|e| ExecutionError::Internal(format!("checkpoint record: {e}")))?;
        let name = record_name(epoch);
        let write = |e: sluice_connectors::ConnectorError| {
            ExecutionError::Internal(format!("writing checkpoint {epoch}: {e}"))
        };
        if !self.dir.create(&name, bytes).map_err(write)? {
            // Taken: by another run, or by this one in a try whose answer was lost.
            let theirs = self
                .dir
                .get(&name)
                .map_err(write)?
                .and_then(|b| serde_json::from_slice::<CheckpointRecord>(&b).ok());
            match theirs {
                Some(r) if r.run == self.run && r.epoch == epoch => {}
                other => {
                    let by = match other {
                        Some(r) if !r.run.is_empty() => format!(
                            "run {}, record written at {} ms since the epoch",
                            r.run, r.completed_at_ms
                        ),
                        _ => "its record is unreadable or predates run ids".to_string(),
                    };
                    return Err(ExecutionError::Superseded { epoch, by });
                }
            }
        }
        sluice_connectors::failpoint("checkpoint.before_commit");
        inner.last_sources = sources;
        inner.last_completed = Some(Instant::now());
        inner.requested_at_ms = None;
        inner.positions = inner.positions.split_off(&(epoch + 1));
        inner.prepared = inner.prepared.split_off(&(committed + 1));
        inner.saved = inner.saved.split_off(&(epoch + 1));
        inner.barriers = inner.barriers.split_off(&epoch);
        inner
            .recent
            .push_back((epoch, record.state_objects().cloned().collect()));
        while inner.recent.len() > self.retained.max(1) {
            inner.recent.pop_front();
        }
        let keep_from = inner.recent.front().map_or(epoch, |(e, _)| *e);
        // The chains of the records kept: older than `keep_from` but still read by a
        // restore from them.
        let chained: std::collections::BTreeSet<String> = inner
            .recent
            .iter()
            .flat_map(|(_, names)| names.iter().cloned())
            .collect();
        let cleanup = inner.cleanup.take();
        drop(inner);
        // This run owns the job now: what earlier runs left is garbage.
        if let Some(c) = cleanup {
            c.run(&self.dir);
        }
        self.completed.store(epoch, Ordering::SeqCst);
        self.prune(keep_from, &chained);
        Ok(true)
    }

    /// Deletes records beyond the newest [`KEEP_RECORDS`], and state snapshots older
    /// than the oldest retained checkpoint (`keep_from`) but those the retained records'
    /// chains (`chained`) and savepoints name (best effort).
    fn prune(&self, keep_from: u64, chained: &std::collections::BTreeSet<String>) {
        let Ok(names) = self.dir.list() else {
            return;
        };
        if !self.lock().states.is_empty() || names.iter().any(|n| is_state_object_name(n)) {
            // Savepoints taken while this run goes on (`POST …/savepoints?stop=false`)
            // pin their snapshots as those that existed when it started do.
            let mut pinned = self.pinned.clone();
            if names
                .iter()
                .any(|n| sluice_compiler::instance::is_savepoint_name(n))
            {
                match sluice_connectors::checkpoint_store::all_savepoints(&self.dir) {
                    Ok(all) => {
                        pinned.extend(all.iter().flat_map(|sp| sp.record.state_objects().cloned()));
                    }
                    // Unreadable now: delete nothing this time.
                    Err(_) => return,
                }
            }
            for n in names.iter().filter(|n| is_state_object_name(n)) {
                if state_object_epoch(n).is_some_and(|e| e < keep_from)
                    && !pinned.contains(n)
                    && !chained.contains(n)
                {
                    let _ = self.dir.delete(n);
                }
            }
        }
        let records: Vec<&String> = names.iter().filter(|n| is_record_name(n)).collect();
        if records.len() > KEEP_RECORDS {
            for n in &records[..records.len() - KEEP_RECORDS] {
                let _ = self.dir.delete(n);
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_times_order_below_their_barrier() {
        assert!(epoch_time(1, 0) < barrier(1));
        assert!(epoch_time(1, (1 << 40) - 1) < barrier(1));
        assert!(epoch_time(2, 0) >= barrier(1));
        assert!(epoch_time(2, 5) < barrier(2));
        assert_eq!(epoch_time(0, 7), epoch_time(1, 7));
    }

    #[test]
    fn durations_parse_like_flink() {
        use sluice_compiler::instance::parse_duration_ms;
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("10s"), Ok(10_000));
        assert_eq!(parse_duration_ms("10 s"), Ok(10_000));
        assert_eq!(parse_duration_ms("2min"), Ok(120_000));
        assert_eq!(parse_duration_ms("250"), Ok(250));
        assert!(parse_duration_ms("soon").is_err());
        assert!(parse_duration_ms("5 fortnights").is_err());
    }

    #[test]
    fn keyed_positions_are_merged_when_the_worker_count_changes() {
        let record = CheckpointRecord {
            format_version: 3,
            epoch: 3,
            completed_at_ms: 0,
            workers: 2,
            plan_fingerprint: "x".into(),
            sources: BTreeMap::from([
                (
                    "k@1#0".to_string(),
                    vec![
                        serde_json::json!({"t/0": 5, "t/2": 7}),
                        serde_json::json!({"t/1": 6, "t/3": 8}),
                    ],
                ),
                (
                    "g@2#0".to_string(),
                    vec![serde_json::json!(1), serde_json::json!(2)],
                ),
                (
                    "d@4#0".to_string(),
                    vec![
                        serde_json::json!({"next": 5, "workers": 2}),
                        serde_json::json!({"next": 6, "workers": 2}),
                    ],
                ),
                (
                    "c@5#0".to_string(),
                    vec![
                        serde_json::json!({"next": 5}),
                        serde_json::json!({"next": 6}),
                    ],
                ),
            ]),
            from: BTreeMap::new(),
            sinks: BTreeMap::new(),
            barrier_time: None,
            state: BTreeMap::new(),
            state_chains: BTreeMap::new(),
            run: String::new(),
            requested_at_ms: None,
        };
        let r = Restored {
            record,
            base_epoch: 3,
            from_savepoint: false,
            legacy: false,
            fingerprint_match: false,
            resumed_sources: 1,
            plan_sources: 1,
            states: BTreeMap::new(),
        };
        let w = |worker, workers| WorkerContext { worker, workers };
        assert_eq!(
            restored_position(&r, "k@1#0", "0:k", w(1, 2)).unwrap(),
            Some(serde_json::json!({"t/1": 6, "t/3": 8}))
        );
        assert_eq!(
            restored_position(&r, "k@1#0", "0:k", w(0, 3)).unwrap(),
            Some(serde_json::json!({"t/0": 5, "t/1": 6, "t/2": 7, "t/3": 8}))
        );
        assert!(restored_position(&r, "g@2#0", "1:g", w(0, 3)).is_err());
        // A generator's per-worker row counters are never merged into one position.
        let why = restored_position(&r, "d@4#0", "3:d", w(0, 3)).unwrap_err();
        assert!(why.contains("each of 2 workers"), "{why}");
        let why = restored_position(&r, "c@5#0", "4:c", w(0, 3)).unwrap_err();
        assert!(why.contains("per worker (`next` in each)"), "{why}");
        assert_eq!(
            restored_position(&r, "d@4#0", "3:d", w(1, 2)).unwrap(),
            Some(serde_json::json!({"next": 6, "workers": 2}))
        );
        assert_eq!(
            restored_position(&r, "none@3#0", "2:none", w(0, 3)).unwrap(),
            None
        );
        // A format-2 record is keyed by render order, and applies only to its own plan.
        let mut legacy = r.record.clone();
        legacy.format_version = 2;
        legacy.sources = BTreeMap::from([("0:k".to_string(), vec![serde_json::json!(1)])]);
        let same = Restored {
            record: legacy.clone(),
            base_epoch: 3,
            from_savepoint: false,
            legacy: true,
            fingerprint_match: true,
            resumed_sources: 1,
            plan_sources: 1,
            states: BTreeMap::new(),
        };
        assert_eq!(
            restored_position(&same, "k@1#0", "0:k", w(0, 1)).unwrap(),
            Some(serde_json::json!(1))
        );
        let stale = Restored {
            fingerprint_match: false,
            ..same
        };
        assert_eq!(
            restored_position(&stale, "k@1#0", "0:k", w(0, 1)).unwrap(),
            None
        );
    }
}

/// The checkpoint protocol across processes, with the control stream played by hand.
#[cfg(test)]
mod across_processes {
    use super::*;

    /// Process 0 (the leader) and the followers of one run, all in event time or all
    /// in epochs.
    fn run(processes: usize, mode: Barriers) -> (tempfile::TempDir, Vec<Coordinator>) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = CheckpointConfig {
            dir: dir.path().display().to_string(),
            interval_ms: 1,
            restore_from: None,
            retained: 1,
        };
        let plan = DataflowPlan { outputs: vec![] };
        let all = (0..processes)
            .map(|p| {
                let role = match p {
                    0 => Role::Leader { processes },
                    p => Role::Follower { process: p },
                };
                Coordinator::new(
                    &cfg,
                    ObjectDir::open(&cfg.dir).unwrap(),
                    &plan,
                    (processes, role),
                    None,
                    Cleanup::default(),
                    mode,
                )
            })
            .collect();
        (dir, all)
    }

    /// The leader's decision to follower `p`.
    fn decide(all: &[Coordinator], p: usize) {
        all[p].apply_decision(&all[0].decision());
    }

    /// Follower `p`'s reports to the leader.
    fn report(all: &[Coordinator], p: usize) {
        for r in all[p].take_outbox() {
            all[0].apply(r);
        }
    }

    /// Source `s` of process `p` (worker `p`) about to emit at `time`: whether it may,
    /// checking that no process's operators are left not knowing a barrier the
    /// emission reaches (the rule whose breach duplicated rows after a restore).
    fn emit(all: &[Coordinator], p: usize, time: Time) -> bool {
        let may = all[p].event_source_step("s", p, time, || serde_json::json!(time));
        if may {
            let known: Vec<Time> = all.iter().map(|c| c.barrier_of(1)).collect();
            if let Some(b) = known.iter().copied().filter(|b| *b != Time::MAX).min() {
                assert!(
                    time < b || known.iter().all(|k| *k == b),
                    "process {p} emitted at {time}, at or above the barrier {b}, while the processes knew {known:?}"
                );
            }
        }
        may
    }

    /// Every emission at or above an epoch's barrier happens only once every process
    /// knows that barrier: otherwise a row from one process reaches another's stateful
    /// operator before it knows the barrier, lands in that epoch's snapshot, and is
    /// read again after a restore (the duplicates CI found at 2 processes). With three
    /// processes, a follower that knows the barrier still waits for the other one.
    #[test]
    fn no_source_emits_at_or_above_a_barrier_before_every_process_knows_it() {
        let (_d, all) = run(3, Barriers::EventTime);
        for (p, c) in all.iter().enumerate() {
            c.register_source("s", p);
        }
        report(&all, 1);
        report(&all, 2);
        assert!(emit(&all, 0, 10) && emit(&all, 1, 15) && emit(&all, 2, 12));
        std::thread::sleep(Duration::from_millis(5));
        all[0].maybe_request();
        assert_eq!(
            all[0].requested(),
            0,
            "the barrier waits for every candidate"
        );
        // Armed: the leader holds at or above its candidate (11); below it, it goes on.
        assert!(!emit(&all, 0, 20));
        decide(&all, 1);
        decide(&all, 2);
        assert!(!emit(&all, 1, 30), "follower 1 is armed at 16");
        assert!(
            emit(&all, 2, 12),
            "below its candidate (13) follower 2 goes on"
        );
        report(&all, 1);
        assert_eq!(all[0].requested(), 0, "follower 2's candidate is missing");
        report(&all, 2);
        // The highest candidate wins; the leader knows it, the followers not yet.
        assert_eq!((all[0].requested(), all[0].barrier_of(1)), (1, 16));
        assert!(!emit(&all, 0, 20), "the followers do not know 16");
        decide(&all, 1);
        assert_eq!(all[1].barrier_of(1), 16);
        assert!(emit(&all, 1, 15), "below the barrier: the epoch's rows");
        assert!(!emit(&all, 1, 30), "follower 2 does not know 16");
        report(&all, 1);
        assert!(!emit(&all, 0, 20), "follower 2 does not know 16");
        decide(&all, 2);
        assert!(!emit(&all, 2, 17), "not released yet");
        report(&all, 2);
        // Everyone knows: the leader goes on, then each follower once it hears so.
        assert!(emit(&all, 0, 20));
        assert!(!emit(&all, 1, 30));
        decide(&all, 1);
        decide(&all, 2);
        assert!(emit(&all, 1, 30) && emit(&all, 2, 17));
        // The positions are those before each source's first emission at or above 16.
        report(&all, 1);
        report(&all, 2);
        let positions = all[0].lock().positions.get(&1).cloned().unwrap();
        let at = |w: usize| positions[&("s".to_string(), w)].clone();
        assert_eq!(
            (at(0), at(1), at(2)),
            (
                serde_json::json!(20),
                serde_json::json!(30),
                serde_json::json!(17)
            )
        );
    }

    /// Processing-time epochs: no process's sources move past a requested epoch's
    /// barrier until every process's operators know the epoch is requested.
    #[test]
    fn in_epochs_no_source_passes_a_barrier_before_every_process_knows_the_epoch() {
        let (_d, all) = run(3, Barriers::Epochs);
        assert!(all[0].may_emit(epoch_time(1, 5)));
        std::thread::sleep(Duration::from_millis(5));
        all[0].maybe_request();
        assert_eq!(all[0].requested(), 1);
        // Still in epoch 1: below its barrier.
        assert!(all[0].may_emit(epoch_time(1, 7)));
        assert!(
            !all[0].may_emit(epoch_time(2, 0)),
            "the followers do not know epoch 1"
        );
        assert_eq!(all[1].state_due(0), None);
        decide(&all, 1);
        assert_eq!(all[1].state_due(0), Some((1, barrier(1))));
        assert!(
            !all[1].may_emit(epoch_time(2, 0)),
            "follower 2 does not know epoch 1"
        );
        report(&all, 1);
        assert!(
            !all[0].may_emit(epoch_time(2, 0)),
            "follower 2 does not know epoch 1"
        );
        decide(&all, 2);
        report(&all, 2);
        assert!(all[0].may_emit(epoch_time(2, 0)));
        assert!(!all[2].may_emit(epoch_time(2, 0)), "not told yet");
        decide(&all, 1);
        decide(&all, 2);
        assert!(all[1].may_emit(epoch_time(2, 0)) && all[2].may_emit(epoch_time(2, 0)));
    }
}
