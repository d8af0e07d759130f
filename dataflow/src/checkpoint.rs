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
//! commits of the record it restores from (idempotently) and aborts whatever else was
//! staged, then seeks the sources to the record's positions. So every input record is
//! in exactly one committed epoch: exactly-once output across crashes.
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
//! emitted first, and the rest is written to `state-<epoch>-<operator>-<worker>.bin`
//! beside the record, which names it. A restore sends each snapshot's groups through
//! the operator's own exchange, so the state is redistributed by key over any new
//! worker count; restored sources start their watermark at `W`.
//!
//! **Scope.** Stateless plans (`Calc`, `Union`) over any sources, and windowed
//! aggregates (`WindowAssign`, `WindowAggregate`) over sources with watermarks,
//! checkpoint. Plans with other stateful operators (joins, unbounded aggregates,
//! sessions, Top-N) run without checkpoints and read their sources from the start
//! after a restart — see [`barriers`].

use crate::errors::ExecutionError;
use crate::render::Time;
use sluice_compiler::instance::CheckpointConfig;
pub use sluice_compiler::instance::{
    is_record_name, is_state_object_name, record_name, state_object_epoch, state_object_name,
    CheckpointRecord, CHECKPOINT_FORMAT,
};
use sluice_compiler::{DataflowPlan, PhysicalPlan, SinkTarget};
use sluice_connectors::{ObjectDir, Registry, WorkerContext};
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
    let json = serde_json::to_vec(plan).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// How a checkpointed run cuts its data into epochs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Barriers {
    /// No source has a watermark: processing-time epochs in the timestamps' high bits
    /// ([`epoch_time`]); the barrier of epoch `e` is [`barrier`]`(e)`.
    Epochs,
    /// Every source has a watermark: timestamps are event times and each barrier is an
    /// event time chosen when the checkpoint is requested.
    EventTime,
}

/// How `plan` checkpoints, or why it cannot.
pub fn barriers(plan: &DataflowPlan) -> Result<Barriers, String> {
    #[derive(Default)]
    struct Seen {
        watermarked: bool,
        plain: bool,
        windows: bool,
    }
    fn walk(p: &PhysicalPlan, seen: &mut Seen) -> Result<(), String> {
        match p {
            PhysicalPlan::Source { table, .. } => {
                if table.watermark.is_some() {
                    seen.watermarked = true;
                } else {
                    seen.plain = true;
                }
                Ok(())
            }
            PhysicalPlan::Calc { input, .. } => walk(input, seen),
            PhysicalPlan::Union { inputs } => inputs.iter().try_for_each(|i| walk(i, seen)),
            PhysicalPlan::WindowAssign { input, .. } => walk(input, seen),
            PhysicalPlan::WindowAggregate { input, .. } => {
                seen.windows = true;
                walk(input, seen)
            }
            PhysicalPlan::Values { .. } => Err("the plan has a VALUES input".into()),
            other => {
                let name = match other {
                    PhysicalPlan::SessionAssign { .. } => "SessionAssign",
                    PhysicalPlan::Reduce { .. } => "Reduce",
                    PhysicalPlan::HashJoin { .. } => "HashJoin",
                    PhysicalPlan::TopK { .. } => "TopK",
                    _ => "TopN",
                };
                Err(format!(
                    "the plan has a stateful operator ({name}) whose state is not snapshotted yet"
                ))
            }
        }
    }
    let mut seen = Seen::default();
    for o in &plan.outputs {
        if !matches!(o.target, SinkTarget::Table(_)) {
            return Err("the job collects rows for a client".into());
        }
        walk(&o.plan, &mut seen)?;
    }
    match (seen.watermarked, seen.plain) {
        (true, true) => Err("some sources have a watermark and some do not".into()),
        (true, false) => Ok(Barriers::EventTime),
        _ if seen.windows => Err("a window aggregate over sources without watermarks".into()),
        _ => Ok(Barriers::Epochs),
    }
}

/// Why `plan` cannot checkpoint, or `None` when it can.
pub fn checkpointable(plan: &DataflowPlan) -> Option<String> {
    barriers(plan).err()
}

/// Reads the newest readable record in `dir`.
pub fn latest_record(dir: &ObjectDir) -> Result<Option<CheckpointRecord>, ExecutionError> {
    let io = |e: sluice_connectors::ConnectorError| {
        ExecutionError::Internal(format!("checkpoint store {}: {e}", dir.display()))
    };
    let mut names: Vec<String> = dir
        .list()
        .map_err(io)?
        .into_iter()
        .filter(|n| is_record_name(n))
        .collect();
    names.sort();
    while let Some(name) = names.pop() {
        let Some(bytes) = dir.get(&name).map_err(io)? else {
            continue;
        };
        match serde_json::from_slice::<CheckpointRecord>(&bytes) {
            Ok(r) if r.format_version <= CHECKPOINT_FORMAT => return Ok(Some(r)),
            // A record we cannot read is skipped (the previous one is still whole).
            _ => tracing::warn!(
                "checkpoint {name} in {} is unreadable: skipped",
                dir.display()
            ),
        }
    }
    Ok(None)
}

/// Every record in `dir`, oldest first (the job's manifest).
pub fn all_records(dir: &ObjectDir) -> Result<Vec<CheckpointRecord>, ExecutionError> {
    let io = |e: sluice_connectors::ConnectorError| {
        ExecutionError::Internal(format!("checkpoint store {}: {e}", dir.display()))
    };
    let mut out = Vec::new();
    for name in dir.list().map_err(io)? {
        if !is_record_name(&name) {
            continue;
        }
        if let Some(bytes) = dir.get(&name).map_err(io)? {
            if let Ok(r) = serde_json::from_slice::<CheckpointRecord>(&bytes) {
                out.push(r);
            }
        }
    }
    out.sort_by_key(|r| r.epoch);
    Ok(out)
}

/// Where the run restores from.
pub(crate) struct Restored {
    /// The record (its positions apply only when `positions_apply`).
    pub(crate) record: CheckpointRecord,
    /// The plan is the one the record was written for.
    pub(crate) positions_apply: bool,
    /// Operator key → every old worker's state snapshot (when `positions_apply`).
    pub(crate) states: BTreeMap<String, Vec<Vec<u8>>>,
}

impl Restored {
    /// The snapshots of operator `key` this worker restores: those of the old workers
    /// `j` with `j % workers == worker` (the operator re-exchanges their groups by key).
    pub(crate) fn state_for(&self, key: &str, worker: WorkerContext) -> Vec<&[u8]> {
        self.states
            .get(key)
            .map(|all| {
                all.iter()
                    .enumerate()
                    .filter(|(j, _)| j % worker.workers.max(1) == worker.worker)
                    .map(|(_, b)| b.as_slice())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The event-time barrier the record was taken at (event-time checkpoints).
    pub(crate) fn barrier_time(&self) -> Option<Time> {
        self.record.barrier_time.filter(|_| self.positions_apply)
    }
}

/// Before a checkpointed run: finishes the pending commits of the newest record and
/// aborts every other staged part of the plan's sinks. Returns the record.
pub(crate) fn restore(
    plan: &DataflowPlan,
    dir: &ObjectDir,
    registry: &Registry,
) -> Result<Option<Restored>, ExecutionError> {
    let record = latest_record(dir)?;
    let fingerprint = plan_fingerprint(plan);
    let one = WorkerContext {
        worker: 0,
        workers: 1,
    };
    for (i, output) in plan.outputs.iter().enumerate() {
        let SinkTarget::Table(table) = &output.target else {
            continue;
        };
        let key = sink_key(i, &table.name);
        let pending: Vec<serde_json::Value> = record
            .as_ref()
            .and_then(|r| r.sinks.get(&key).cloned())
            .unwrap_or_default();
        let mut sink = registry
            .create_sink(table, one)
            .map_err(|e| ExecutionError::Connector {
                table: table.name.clone(),
                message: e.to_string(),
            })?;
        sink.recover(&pending)
            .map_err(|e| ExecutionError::Connector {
                table: table.name.clone(),
                message: match &record {
                    Some(r) => format!("restoring from checkpoint {}: {e}", r.epoch),
                    // A first start: there is no checkpoint, only staged leftovers.
                    None => format!("cleaning up staged files before the first checkpoint: {e}"),
                },
            })?;
    }
    // Operator snapshots: load the record's; delete the others (of checkpoints that
    // never completed, or older than the record).
    let io = |e: sluice_connectors::ConnectorError| {
        ExecutionError::Internal(format!("checkpoint store {}: {e}", dir.display()))
    };
    let mut states: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    let positions_apply = record
        .as_ref()
        .is_some_and(|r| r.plan_fingerprint == fingerprint);
    let mut keep: Vec<&String> = Vec::new();
    if let (Some(r), true) = (&record, positions_apply) {
        for (key, names) in &r.state {
            let mut all = Vec::new();
            for name in names {
                let bytes = dir.get(name).map_err(io)?.ok_or_else(|| {
                    ExecutionError::Internal(format!(
                        "checkpoint {} names the state snapshot {name}, which is missing from {}",
                        r.epoch,
                        dir.display()
                    ))
                })?;
                all.push(bytes);
                keep.push(name);
            }
            states.insert(key.clone(), all);
        }
    }
    for name in dir.list().map_err(io)? {
        if is_state_object_name(&name) && !keep.contains(&&name) {
            dir.delete(&name).map_err(io)?;
        }
    }
    Ok(record.map(|record| Restored {
        positions_apply,
        record,
        states,
    }))
}

/// The key of a source operator: its render order on a worker, and its table.
pub(crate) fn source_key(seq: usize, table: &str) -> String {
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
    worker: WorkerContext,
) -> Result<Option<serde_json::Value>, String> {
    if !restored.positions_apply {
        return Ok(None);
    }
    let Some(positions) = restored.record.sources.get(key) else {
        return Ok(None);
    };
    if positions.len() == worker.workers {
        return Ok(positions.get(worker.worker).cloned());
    }
    let mut merged = serde_json::Map::new();
    for p in positions {
        match p {
            serde_json::Value::Object(o) => {
                merged.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
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
    /// Event time: each requested epoch's barrier.
    barriers: BTreeMap<u64, Time>,
    /// Event time: the newest time each source has emitted at (or is about to).
    source_times: BTreeMap<(String, usize), Time>,
    /// Event time: the newest epoch each source has recorded its position for.
    recorded: BTreeMap<(String, usize), u64>,
    /// Stateful operators (key, worker) of the run.
    states: Vec<(String, usize)>,
    /// Snapshot object names per epoch.
    saved: BTreeMap<u64, BTreeMap<(String, usize), String>>,
    /// The epoch of the record before the last complete one (its snapshots are kept).
    previous_completed: u64,
}

/// The checkpoint coordinator of one run, shared by its worker threads.
pub(crate) struct Coordinator {
    dir: ObjectDir,
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
}

impl Coordinator {
    /// A coordinator continuing after `restored` (epoch 0 without one).
    pub(crate) fn new(
        cfg: &CheckpointConfig,
        dir: ObjectDir,
        plan: &DataflowPlan,
        workers: usize,
        restored: Option<&Restored>,
        mode: Barriers,
    ) -> Coordinator {
        let base = restored.map_or(0, |r| r.record.epoch);
        let last_sources = restored
            .filter(|r| r.positions_apply)
            .map(|r| r.record.sources.clone())
            .unwrap_or_default();
        let restored_barrier = restored.and_then(Restored::barrier_time).unwrap_or(0);
        Coordinator {
            dir,
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
                previous_completed: base,
                ..Inner::default()
            }),
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
    /// reaches, then publishes `time` (a later barrier is chosen above it).
    pub(crate) fn event_source_step(
        &self,
        key: &str,
        worker: usize,
        time: Time,
        position: impl FnOnce() -> serde_json::Value,
    ) {
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
    }

    /// A stateful operator of the run (its snapshots are part of every record).
    pub(crate) fn register_state(&self, key: &str, worker: usize) {
        self.lock().states.push((key.to_string(), worker));
    }

    /// The epoch (and its barrier) a stateful operator that has snapshotted through
    /// `saved_through` must snapshot next, if one is requested.
    pub(crate) fn state_due(&self, saved_through: u64) -> Option<(u64, Time)> {
        let epoch = saved_through + 1;
        (epoch <= self.requested()).then(|| (epoch, self.barrier_of(epoch)))
    }

    /// Writes an operator's snapshot for `epoch` beside the records.
    pub(crate) fn save_state(
        &self,
        epoch: u64,
        key: &str,
        seq: usize,
        worker: usize,
        bytes: Vec<u8>,
    ) -> Result<(), ExecutionError> {
        let name = state_object_name(epoch, seq, worker);
        self.dir
            .put(&name, bytes)
            .map_err(|e| ExecutionError::Internal(format!("writing state snapshot {name}: {e}")))?;
        self.lock()
            .saved
            .entry(epoch)
            .or_default()
            .insert((key.to_string(), worker), name);
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
        self.lock().sources.push((key.to_string(), worker));
    }

    pub(crate) fn register_sink(&self, key: &str, worker: usize) {
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
        self.lock()
            .positions
            .entry(epoch)
            .or_default()
            .insert((key.to_string(), worker), position);
    }

    /// A source has read all its input; `position` is its last.
    pub(crate) fn source_finished(&self, key: &str, worker: usize, position: serde_json::Value) {
        self.lock()
            .finished
            .insert((key.to_string(), worker), position);
    }

    /// A sink prepared `epoch`; `pending` is what its commit will do.
    pub(crate) fn sink_prepared(
        &self,
        epoch: u64,
        key: &str,
        worker: usize,
        pending: serde_json::Value,
    ) {
        self.lock()
            .prepared
            .entry(epoch)
            .or_default()
            .insert((key.to_string(), worker), pending);
    }

    /// Worker 0, between steps: starts the next checkpoint when the interval has passed
    /// since the last one completed, none is in flight and every worker has committed
    /// the last one (so a record never has to carry more than its own epoch's commits
    /// and those of the epochs not yet committed everywhere).
    pub(crate) fn maybe_request(&self) {
        let (req, done) = (self.requested(), self.completed());
        if req != done || self.all_committed() < done {
            return;
        }
        let due = self
            .lock()
            .last_completed
            .is_none_or(|t| t.elapsed() >= self.interval);
        if due {
            sluice_connectors::failpoint("checkpoint.start");
            let mut inner = self.lock();
            if self.mode == Barriers::EventTime {
                // Above every time emitted so far: whatever is emitted at or above it
                // comes after its source recorded its position.
                let top = inner
                    .source_times
                    .values()
                    .copied()
                    .max()
                    .unwrap_or(0)
                    .max(self.restored_barrier);
                inner.barriers.insert(done + 1, top.saturating_add(1));
            }
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
        if !last {
            let saved_here = inner.saved.get(&epoch);
            for (key, worker) in &inner.states {
                let Some(name) = saved_here.and_then(|m| m.get(&(key.clone(), *worker))) else {
                    return Ok(false);
                };
                let slot = state.entry(key.clone()).or_default();
                if slot.len() <= *worker {
                    slot.resize(*worker + 1, String::new());
                }
                slot[*worker] = name.clone();
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
        };
        let bytes = serde_json::to_vec_pretty(&record)
            .map_err(|e| ExecutionError::Internal(format!("checkpoint record: {e}")))?;
        self.dir
            .put(&record_name(epoch), bytes)
            .map_err(|e| ExecutionError::Internal(format!("writing checkpoint {epoch}: {e}")))?;
        sluice_connectors::failpoint("checkpoint.before_commit");
        inner.last_sources = sources;
        inner.last_completed = Some(Instant::now());
        inner.positions = inner.positions.split_off(&(epoch + 1));
        inner.prepared = inner.prepared.split_off(&(committed + 1));
        inner.saved = inner.saved.split_off(&(epoch + 1));
        inner.barriers = inner.barriers.split_off(&epoch);
        let keep_from = inner.previous_completed;
        inner.previous_completed = epoch;
        drop(inner);
        self.completed.store(epoch, Ordering::SeqCst);
        self.prune(keep_from);
        Ok(true)
    }

    /// Deletes records beyond the newest [`KEEP_RECORDS`], and state snapshots older
    /// than the record before the newest (`keep_from`) (best effort).
    fn prune(&self, keep_from: u64) {
        let Ok(names) = self.dir.list() else {
            return;
        };
        if !self.lock().states.is_empty() {
            for n in names.iter().filter(|n| is_state_object_name(n)) {
                if state_object_epoch(n).is_some_and(|e| e < keep_from) {
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
            format_version: 1,
            epoch: 3,
            completed_at_ms: 0,
            workers: 2,
            plan_fingerprint: "x".into(),
            sources: BTreeMap::from([
                (
                    "0:k".to_string(),
                    vec![
                        serde_json::json!({"t/0": 5, "t/2": 7}),
                        serde_json::json!({"t/1": 6, "t/3": 8}),
                    ],
                ),
                (
                    "1:g".to_string(),
                    vec![serde_json::json!(1), serde_json::json!(2)],
                ),
            ]),
            from: BTreeMap::new(),
            sinks: BTreeMap::new(),
            barrier_time: None,
            state: BTreeMap::new(),
        };
        let r = Restored {
            record,
            positions_apply: true,
            states: BTreeMap::new(),
        };
        let w = |worker, workers| WorkerContext { worker, workers };
        assert_eq!(
            restored_position(&r, "0:k", w(1, 2)).unwrap(),
            Some(serde_json::json!({"t/1": 6, "t/3": 8}))
        );
        assert_eq!(
            restored_position(&r, "0:k", w(0, 3)).unwrap(),
            Some(serde_json::json!({"t/0": 5, "t/1": 6, "t/2": 7, "t/3": 8}))
        );
        assert!(restored_position(&r, "1:g", w(0, 3)).is_err());
        assert_eq!(restored_position(&r, "2:none", w(0, 3)).unwrap(), None);
        let stale = Restored {
            positions_apply: false,
            ..r
        };
        assert_eq!(restored_position(&stale, "0:k", w(0, 2)).unwrap(), None);
    }
}
