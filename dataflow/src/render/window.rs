//! Event-time windows: `WindowAssign` (TUMBLE/HOP, stateless: on batches right after a
//! source, else on rows), `SessionAssign`
//! (differential reduce per partition) and `WindowAggregate` (a custom operator that
//! holds one multiset per open window and emits it when the frontier passes the
//! window end).

use super::{
    fallible_operator, map_fallible, map_updates, split_results, Batches, Context, Diff, PackedMap,
    Rows, Time, TimedBatch,
};
use crate::accum::{Aggregates, Fold, Running};
use crate::errors::ExecutionError;
use crate::progress::Progress;
use arrow::array::{Array, ArrayRef, AsArray, TimestampMillisecondArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::TimestampMillisecondType;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use differential_dataflow::Hashable;
use serde::{Deserialize, Serialize};
use sluice_catalogs::{Schema, SqlType};
use sluice_compiler::packed::pack_columns;
use sluice_compiler::{
    AggStrategy, AggregateCall, Datum, PackedRow, Row, WindowKind, WindowStrategy,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::ToStream;

/// The `[start, end)` windows of `kind` containing `ts`, in ascending start order.
pub(crate) fn windows_of(kind: WindowKind, ts: i64) -> Vec<(i64, i64)> {
    match kind {
        WindowKind::Tumble { size_ms } if size_ms > 0 => {
            let start = ts - ts.rem_euclid(size_ms);
            vec![(start, start + size_ms)]
        }
        WindowKind::Hop { slide_ms, size_ms } if slide_ms > 0 && size_ms > 0 => {
            let mut out = Vec::new();
            let mut start = ts - ts.rem_euclid(slide_ms);
            while start + size_ms > ts {
                out.push((start, start + size_ms));
                start -= slide_ms;
            }
            out.reverse();
            out
        }
        _ => Vec::new(),
    }
}

/// Renders `WindowAssign`: appends `window_start`, `window_end`, `window_time`. Rows
/// with a NULL time belong to no window and are dropped.
pub(crate) fn render_window_assign<'s>(
    ctx: &mut Context<'s>,
    rows: Rows<'s>,
    kind: WindowKind,
    time_col: usize,
) -> Rows<'s> {
    if matches!(kind, WindowKind::Session { .. }) {
        let err = ExecutionError::Internal("WindowAssign with a SESSION window".into());
        return map_fallible(ctx, rows, "WindowAssign", move |_row: Row, t, r, out| {
            out.push((Err(err.clone()), t, r))
        });
    }
    map_fallible(
        ctx,
        rows,
        "WindowAssign",
        move |row: Row, t, r, out| match row.get(time_col) {
            Some(Datum::Timestamp(ts)) => {
                for (start, end) in windows_of(kind, *ts) {
                    let mut w = row.clone();
                    w.push(Datum::Timestamp(start));
                    w.push(Datum::Timestamp(end));
                    w.push(Datum::Timestamp(end - 1));
                    out.push((Ok(w), t, r));
                }
            }
            Some(Datum::Null) => {}
            other => out.push((
                Err(ExecutionError::Internal(format!(
                    "WindowAssign: time column {time_col} holds {other:?}"
                ))),
                t,
                r,
            )),
        },
    )
}

/// Renders `SessionAssign`: per partition, rows sorted by time; a gap ≥ `gap_ms`
/// starts a new session `[first ts, last ts + gap)`. Rows with a NULL time are dropped.
pub(crate) fn render_session_assign<'s>(
    rows: Rows<'s>,
    partition_by: Vec<usize>,
    time_col: usize,
    gap_ms: i64,
) -> Rows<'s> {
    let keyed = map_updates(rows, "SessionAssign: key", move |row: Row, t, r, out| {
        if let Some(Datum::Timestamp(_)) = row.get(time_col) {
            let key: Row = super::key_row(&row, &partition_by);
            out.push(((key, row), t, r));
        }
    });
    let sessions = keyed.reduce_named(
        "SessionAssign",
        move |_key: &Row, input: &[(&Row, Diff)], output: &mut Vec<(Row, Diff)>| {
            let mut rows: Vec<(i64, &Row, Diff)> = input
                .iter()
                .filter(|(_, n)| *n > 0)
                .filter_map(|(row, n)| match row.get(time_col) {
                    Some(Datum::Timestamp(ts)) => Some((*ts, *row, *n)),
                    _ => None,
                })
                .collect();
            rows.sort();
            let mut i = 0;
            while i < rows.len() {
                let first = rows[i].0;
                let mut last = first;
                let mut j = i + 1;
                while j < rows.len() && rows[j].0 - last < gap_ms {
                    last = rows[j].0;
                    j += 1;
                }
                let end = last.saturating_add(gap_ms);
                for (_, row, n) in &rows[i..j] {
                    let mut w = (*row).clone();
                    w.push(Datum::Timestamp(first));
                    w.push(Datum::Timestamp(end));
                    w.push(Datum::Timestamp(end - 1));
                    output.push((w, *n));
                }
                i = j;
            }
        },
    );
    map_updates(
        sessions,
        "SessionAssign: unkey",
        |(_k, row): (Row, Row), t, r, out| out.push((row, t, r)),
    )
}

/// What one open (window, group) holds.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) enum GroupState {
    /// Running aggregate states (when every `AggStrategy` is `Accumulate`) and the net
    /// number of rows, so a group whose rows were all retracted emits nothing.
    Running { rows: Diff, states: Vec<Running> },
    /// The multiset of aggregate argument rows (DISTINCT, DOUBLE sums, MIN/MAX under
    /// retractions).
    Values(BTreeMap<Row, Diff>),
    /// A partial state of one pane of a HOP-by-pane aggregate (see
    /// [`super::hop_panes`]), valid for its windows ending at or after the snapshot
    /// entry's end.
    Pane {
        /// Pane start (ms).
        start: i64,
        /// Net rows.
        rows: Diff,
        /// Running states.
        states: Vec<Running>,
    },
}

/// Open windows of one worker: per window end, per packed group key, the group's state.
type WindowState = BTreeMap<Time, (Capability<Time>, PackedMap<GroupState>)>;

/// One group of one open window in a checkpoint snapshot: (group key, window end, state).
pub(crate) type SnapshotEntry = (Row, i64, GroupState);

/// Version of the snapshot encoding (bincode of `(version, Vec<SnapshotEntry>)`).
const SNAPSHOT_VERSION: u32 = 1;

pub(crate) type Out = (Result<Row, ExecutionError>, Time, Diff);

/// Rows not applied yet, with a capability at their message's time.
type Waiting = (Capability<Time>, Vec<(Row, Time, Diff)>);

/// What `WindowAggregate` needs to add one row to its state.
struct Applier {
    group_by: Vec<usize>,
    window_end_col: usize,
    aggregates: Aggregates,
    incremental: bool,
    progress: Arc<Progress>,
    /// [`WindowStrategy::TimeKeyed`]: rows arrive at their window's end, so a row is late
    /// only once the watermark is past the end, not at it.
    rows_at_end: bool,
    /// Rows or pre-aggregated partial rows.
    fold: Fold,
    /// The packed group key of the row being applied (reused).
    probe: Vec<u8>,
}

impl Applier {
    /// Adds `row` (at `t`) to its window's group; an error row is returned to be emitted.
    fn apply(
        &mut self,
        state: &mut WindowState,
        cap: &Capability<Time>,
        row: &Row,
        t: Time,
        diff: Diff,
    ) -> Option<ExecutionError> {
        let end = match row.get(self.window_end_col) {
            Some(Datum::Timestamp(end)) => *end,
            Some(Datum::Null) => return None,
            other => {
                return Some(ExecutionError::Internal(format!(
                    "WindowAggregate: window end column holds {other:?}"
                )))
            }
        };
        // Late: the watermark (this row's time) has passed the end (a time-keyed row
        // comes at its end). Time 0 means "no
        // watermark yet" (watermarks below 0 are clamped to 0), so nothing is late at
        // time 0; windows that end at or before 0 then close with time 0.
        let stands_for = match self.fold.rows(row) {
            Ok(n) => n,
            Err(m) => return Some(ExecutionError::Internal(format!("WindowAggregate: {m}"))),
        };
        if t > 0 && (end < t as i64 || (end == t as i64 && !self.rows_at_end)) {
            self.progress
                .add_late_rows(stands_for.unsigned_abs() as u64 * diff.unsigned_abs() as u64);
            return None;
        }
        let end = end.max(0) as Time;
        pack_columns(row, &self.group_by, &mut self.probe);
        let (_, groups) = state
            .entry(end)
            .or_insert_with(|| (cap.delayed(&end), PackedMap::default()));
        let (aggregates, incremental) = (&self.aggregates, self.incremental);
        let group = groups.entry_ref(self.probe.as_slice()).or_insert_with(|| {
            if incremental {
                GroupState::Running {
                    rows: 0,
                    states: aggregates.running(),
                }
            } else {
                GroupState::Values(BTreeMap::new())
            }
        });
        match group {
            GroupState::Running { rows, states } => {
                *rows += stands_for * diff;
                if let Err(m) = self.fold.fold(&self.aggregates, states, row, diff) {
                    return Some(ExecutionError::eval("WindowAggregate", m));
                }
            }
            GroupState::Values(_) if self.fold != Fold::Rows => {
                return Some(ExecutionError::Internal(
                    "WindowAggregate: partial rows for an aggregate without running states".into(),
                ))
            }
            GroupState::Values(values) => {
                *values.entry(self.aggregates.arguments(row)).or_default() += diff;
            }
            GroupState::Pane { .. } => {
                return Some(ExecutionError::Internal(
                    "WindowAggregate: a pane state in a per-window aggregate".into(),
                ))
            }
        }
        None
    }

    /// Removes the windows whose end satisfies `closed` (ascending) and computes
    /// their results, each with the window's capability.
    fn close(
        &self,
        state: &mut WindowState,
        closed: &dyn Fn(Time) -> bool,
    ) -> Vec<(Capability<Time>, Vec<Out>)> {
        let ends: Vec<Time> = state.keys().copied().take_while(|e| closed(*e)).collect();
        let mut out = Vec::new();
        for end in ends {
            let Some((cap, groups)) = state.remove(&end) else {
                continue;
            };
            // Packed keys order as rows do: results come out sorted by group key.
            let mut groups: Vec<(PackedRow, GroupState)> = groups.into_iter().collect();
            groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let mut results = Vec::new();
            for (key, group) in groups {
                let result = match &group {
                    GroupState::Running { rows, .. } if *rows <= 0 => continue,
                    GroupState::Running { states, .. } => self.aggregates.finish(states),
                    GroupState::Values(values) if values.values().all(|n| *n <= 0) => continue,
                    GroupState::Values(values) => {
                        self.aggregates.compute(values.iter().map(|(v, n)| (v, *n)))
                    }
                    GroupState::Pane { .. } => {
                        results.push((
                            Err(ExecutionError::Internal(
                                "WindowAggregate: a pane state in a per-window aggregate".into(),
                            )),
                            end,
                            1,
                        ));
                        continue;
                    }
                };
                let result = result
                    .map(|aggs| key.iter().chain(aggs).collect())
                    .map_err(|m| ExecutionError::eval("WindowAggregate", m));
                results.push((result, end, 1));
            }
            out.push((cap, results));
        }
        out
    }
}

/// The open state of one worker's window aggregate: what the operator of
/// [`render_window_aggregate`] applies rows to, closes windows of, and snapshots.
pub(crate) trait OpenWindows: 'static {
    /// Adds `row` (at `t`, in a message whose capability is `cap`); an error row is
    /// returned to be emitted.
    fn apply(
        &mut self,
        cap: &Capability<Time>,
        row: &Row,
        t: Time,
        diff: Diff,
    ) -> Option<ExecutionError>;
    /// Removes the windows whose end satisfies `closed` (monotone: true up to some
    /// end) and computes their results, each with the window's capability.
    fn close(&mut self, closed: &dyn Fn(Time) -> bool) -> Vec<(Capability<Time>, Vec<Out>)>;
    /// The open state as snapshot entries.
    fn entries(&self) -> Vec<SnapshotEntry>;
    /// Takes back one entry of a restored snapshot; `cap` gives a capability at a time.
    fn restore(
        &mut self,
        entry: SnapshotEntry,
        cap: &dyn Fn(Time) -> Capability<Time>,
    ) -> Option<ExecutionError>;
}

/// [`WindowStrategy::Tumble`]/[`WindowStrategy::Generic`]: one state per (window, group).
struct PerWindow {
    applier: Applier,
    state: WindowState,
}

impl OpenWindows for PerWindow {
    fn apply(
        &mut self,
        cap: &Capability<Time>,
        row: &Row,
        t: Time,
        diff: Diff,
    ) -> Option<ExecutionError> {
        self.applier.apply(&mut self.state, cap, row, t, diff)
    }

    fn close(&mut self, closed: &dyn Fn(Time) -> bool) -> Vec<(Capability<Time>, Vec<Out>)> {
        self.applier.close(&mut self.state, closed)
    }

    fn entries(&self) -> Vec<SnapshotEntry> {
        self.state
            .iter()
            .flat_map(|(end, (_, groups))| {
                let mut groups: Vec<(&PackedRow, &GroupState)> = groups.iter().collect();
                groups.sort_unstable_by(|a, b| a.0.cmp(b.0));
                groups
                    .into_iter()
                    .map(move |(key, g)| (key.unpack(), *end as i64, g.clone()))
            })
            .collect()
    }

    fn restore(
        &mut self,
        (key, end, group): SnapshotEntry,
        cap: &dyn Fn(Time) -> Capability<Time>,
    ) -> Option<ExecutionError> {
        if matches!(group, GroupState::Pane { .. }) {
            return Some(ExecutionError::Internal(
                "WindowAggregate: restored a pane state into a per-window aggregate".into(),
            ));
        }
        let end = end.max(0) as Time;
        let (_, groups) = self
            .state
            .entry(end)
            .or_insert_with(|| (cap(end), PackedMap::default()));
        groups.insert(PackedRow::pack(&key), group);
        None
    }
}

/// Encodes the open windows for a checkpoint.
fn snapshot(open: &dyn OpenWindows) -> Result<Vec<u8>, ExecutionError> {
    crate::checkpoint::encode_snapshot("WindowAggregate", SNAPSHOT_VERSION, &open.entries())
}

/// Decodes a snapshot written by [`snapshot`].
fn restore_snapshot(chain: &[&[u8]]) -> Result<Vec<SnapshotEntry>, ExecutionError> {
    crate::checkpoint::decode_whole("WindowAggregate", SNAPSHOT_VERSION, chain)
}

/// Renders `WindowAggregate` (see the module docs). In a checkpointed run it snapshots
/// its open windows at each barrier and starts from the restored snapshots, whose
/// groups it receives through the same exchange as its rows (so they land on the
/// worker that owns their key at any worker count); see [`crate::checkpoint`].
#[allow(clippy::too_many_arguments)] // the plan node's fields, as `render` reads them
pub(crate) fn render_window_aggregate<'s>(
    ctx: &mut Context<'s>,
    state_key: &str,
    rows: Rows<'s>,
    flow: Option<super::flow::FlowConsumer>,
    group_by: Vec<usize>,
    aggs: &[AggregateCall],
    window_end_col: usize,
    types: &[SqlType],
    strategies: &[AggStrategy],
    strategy: WindowStrategy,
    fold: Fold,
) -> Rows<'s> {
    let aggregates = Aggregates::new(aggs, types);
    let incremental = strategies.iter().all(|s| *s == AggStrategy::Accumulate);
    let (open, key_cols): (Box<dyn OpenWindows>, Vec<usize>) = match strategy {
        WindowStrategy::HopByPane {
            slide_ms,
            size_ms,
            pane_ms,
            start_col,
            time_col,
        } => {
            let panes = super::hop_panes::Panes::new(
                super::hop_panes::PaneLayout {
                    slide_ms,
                    size_ms,
                    pane_ms,
                    group_by: group_by.clone(),
                    start_col,
                    end_col: window_end_col,
                    time_col,
                },
                aggregates,
                incremental,
                ctx.progress.clone(),
                fold,
            );
            let key_cols = panes.key_cols();
            (Box::new(panes), key_cols)
        }
        WindowStrategy::Session {
            start_col,
            time_col,
            ..
        } => {
            let sessions = super::sessions::Sessions::new(
                super::sessions::SessionLayout {
                    group_by: group_by.clone(),
                    start_col,
                    end_col: window_end_col,
                    time_col,
                },
                aggregates,
                incremental,
                ctx.progress.clone(),
            );
            let key_cols = sessions.key_cols();
            (Box::new(sessions), key_cols)
        }
        WindowStrategy::Tumble | WindowStrategy::Generic | WindowStrategy::TimeKeyed => (
            Box::new(PerWindow {
                applier: Applier {
                    group_by: group_by.clone(),
                    window_end_col,
                    aggregates,
                    incremental,
                    progress: ctx.progress.clone(),
                    rows_at_end: strategy == WindowStrategy::TimeKeyed,
                    fold,
                    probe: Vec::new(),
                },
                state: BTreeMap::new(),
            }),
            group_by.clone(),
        ),
    };
    let seq = ctx.state_seq;
    ctx.state_seq += 1;
    let legacy_key = format!("{seq}:WindowAggregate");
    let state_key = state_key.to_string();
    let worker = ctx.worker;
    let ckpt = ctx.ckpt.clone();
    if let Some(c) = &ckpt {
        c.register_state(&state_key, worker.worker);
    }
    let errors = ctx.errors.clone();
    // This worker's share of the restored snapshots.
    let mut restored: Vec<SnapshotEntry> = Vec::new();
    if let Some(r) = &ctx.restored {
        for bytes in r.state_for(&state_key, &legacy_key, worker) {
            match restore_snapshot(&bytes) {
                Ok(entries) => restored.extend(entries),
                Err(e) => errors.raise(e),
            }
        }
    }
    let restored_stream = restored.to_stream(ctx.scope);
    let exchange =
        Exchange::new(move |(row, _, _): &(Row, Time, Diff)| super::key_hash(row, &key_cols));
    let exchange_restored = Exchange::new(|(key, _, _): &SnapshotEntry| key.hashed());
    let results = rows
        .inner
        .binary_frontier::<_, CapacityContainerBuilder<Vec<Out>>, _, _, _, _>(
            restored_stream,
            exchange,
            exchange_restored,
            "WindowAggregate",
            move |_cap, _info| {
                let mut open = open;
                let mut saved_through = ckpt.as_ref().map_or(0, |c| c.completed());
                // Rows at or above a requested barrier, held until the snapshot.
                let mut held: Vec<Waiting> = Vec::new();
                move |(input, frontier), (restored_input, restored_frontier), output| {
                    restored_input.for_each(|cap, data| {
                        for entry in data.drain(..) {
                            if let Some(e) = open.restore(entry, &|t| cap.delayed(&t, 0)) {
                                errors.raise(e);
                            }
                        }
                    });
                    // Drain first, then look for a barrier: a row emitted after the
                    // barrier was chosen is then always seen with it.
                    let mut arrived: Vec<Waiting> = Vec::new();
                    input.for_each(|cap, data| {
                        if let Some(c) = cap.retain_least(0) {
                            arrived.push((c, std::mem::take(data)));
                        }
                    });
                    super::flow::observe(&flow, frontier.frontier());
                    let due = ckpt.as_ref().and_then(|c| c.state_due(saved_through));
                    // Rows wait while restored groups are still arriving (a group must be
                    // restored before rows add to it), and rows at or above a requested
                    // barrier wait for its snapshot.
                    let restoring = !restored_frontier.frontier().is_empty();
                    let limit = if restoring {
                        Some(0)
                    } else {
                        due.map(|(_, w)| w)
                    };
                    let mut failed: Vec<(Capability<Time>, ExecutionError, Time)> = Vec::new();
                    let waiting = std::mem::take(&mut held);
                    for (cap, data) in waiting.into_iter().chain(arrived) {
                        let (now, later): (Vec<_>, Vec<_>) = match limit {
                            Some(w) => data.into_iter().partition(|(_, t, _)| *t < w),
                            None => (data, Vec::new()),
                        };
                        for (row, t, diff) in now {
                            if let Some(e) = open.apply(&cap, &row, t, diff) {
                                failed.push((cap.clone(), e, t));
                            }
                        }
                        if !later.is_empty() {
                            held.push((cap, later));
                        }
                    }
                    let passed = |w: Time| {
                        frontier.frontier().iter().all(|t| *t >= w)
                            && restored_frontier.frontier().iter().all(|t| *t >= w)
                    };
                    let mut closed = Vec::new();
                    if let (Some(c), Some((epoch, w))) = (&ckpt, due) {
                        if !restoring && passed(w) {
                            // Everything below the barrier is in: emit the windows ending
                            // before it (their results belong to this epoch), snapshot the
                            // rest, then take the held rows.
                            closed.extend(open.close(&|end| end < w));
                            match snapshot(open.as_ref()).and_then(|bytes| {
                                c.save_state(epoch, &state_key, seq, worker.worker, bytes, false)
                            }) {
                                Ok(()) => saved_through = epoch,
                                Err(e) => errors.raise(e),
                            }
                            for (cap, data) in std::mem::take(&mut held) {
                                for (row, t, diff) in data {
                                    if let Some(e) = open.apply(&cap, &row, t, diff) {
                                        failed.push((cap.clone(), e, t));
                                    }
                                }
                            }
                        }
                    }
                    // Windows the frontier has passed are complete (held rows are at or
                    // above the barrier, which the frontier has not passed yet).
                    let bound = held.iter().map(|(c, _)| *c.time()).min();
                    closed.extend(open.close(&|end| {
                        !frontier.frontier().less_equal(&end)
                            && !restored_frontier.frontier().less_equal(&end)
                            && bound.is_none_or(|b| end < b)
                    }));
                    for (cap, e, t) in failed {
                        output.session(&cap).give((Err(e), t, 1));
                    }
                    for (cap, results) in closed {
                        output.session(&cap).give_iterator(results.into_iter());
                    }
                }
            },
        );
    let (oks, errs) = split_results(results, "WindowAggregate: split errors");
    ctx.errs.push(errs);
    oks
}

/// `WindowAssign` on one batch: each row repeated once per window containing its time
/// (rows with a NULL time dropped), with the three window columns appended.
fn assign_batch(
    batch: &RecordBatch,
    kind: WindowKind,
    time_col: usize,
    output: &Schema,
) -> Result<RecordBatch, ExecutionError> {
    let internal = |m: String| ExecutionError::Internal(format!("WindowAssign: {m}"));
    let times = batch
        .columns()
        .get(time_col)
        .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        .ok_or_else(|| internal(format!("column {time_col} is not a TIMESTAMP(3) column")))?;
    let mut indices: Vec<u32> = Vec::with_capacity(times.len());
    let mut starts: Vec<i64> = Vec::with_capacity(times.len());
    let mut ends: Vec<i64> = Vec::with_capacity(times.len());
    for i in 0..times.len() {
        if times.is_valid(i) {
            for (start, end) in windows_of(kind, times.value(i)) {
                indices.push(i as u32);
                starts.push(start);
                ends.push(end);
            }
        }
    }
    let indices = UInt32Array::from(indices);
    let mut columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .map(|c| take(c.as_ref(), &indices, None))
        .collect::<Result<_, _>>()
        .map_err(|e| internal(e.to_string()))?;
    let window_time: Vec<i64> = ends.iter().map(|e| e - 1).collect();
    columns.push(Arc::new(TimestampMillisecondArray::from(starts)));
    columns.push(Arc::new(TimestampMillisecondArray::from(ends)));
    columns.push(Arc::new(TimestampMillisecondArray::from(window_time)));
    RecordBatch::try_new_with_options(
        output.to_arrow(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(indices.len())),
    )
    .map_err(|e| internal(e.to_string()))
}

/// Renders `WindowAssign` (TUMBLE/HOP) on batches.
pub(crate) fn render_window_assign_batches<'s>(
    ctx: &mut Context<'s>,
    batches: Batches<'s>,
    kind: WindowKind,
    time_col: usize,
    output: Schema,
) -> Batches<'s> {
    let (out, errs) =
        fallible_operator(batches, "WindowAssign", move |b: TimedBatch, oks, errs| {
            if matches!(kind, WindowKind::Session { .. }) {
                let e = ExecutionError::Internal("WindowAssign with a SESSION window".into());
                errs.push((e, b.time, 1));
                return;
            }
            match assign_batch(&b.batch, kind, time_col, &output) {
                Ok(batch) if batch.num_rows() == 0 => {}
                Ok(batch) => oks.push(TimedBatch {
                    batch,
                    time: b.time,
                }),
                Err(e) => errs.push((e, b.time, 1)),
            }
        });
    ctx.errs.push(errs);
    out
}
