//! The symmetric hash join: the stateful stage between both inputs' exchange by key
//! hash and the rest of the plan, for the two inner `HashJoin` strategies `lower`
//! decides besides the arranged one:
//!
//! * **interval** ([`IntervalJoin`]): the residual bounds the left side's event time by
//!   the right's, so each side's rows are held only while a future row of the other
//!   side could match;
//! * **append-only** (both inputs append-only, no bound): each side's rows are held
//!   until the other input is complete — a stream joined with a bounded table ends up
//!   holding only the table, and nothing is ever sorted or merged.
//!
//! Interval joins, additionally:
//!
//! Invariants (`l`, `r`: the rows' time-column values; `F_L`, `F_R`: the input
//! frontiers, i.e. the watermarks; on-time rows have a value at least their timely time):
//!
//! ```text
//! a pair (L, R) can match  ⇔  r + lower ≤ l ≤ r + upper   (implied by the residual)
//! left row held   while  F_R ≤ max(l − lower, 0)   (a future right row has r ≥ F_R)
//! right row held  while  F_L ≤ max(r + upper, 0)
//! ```
//!
//! Every pair is produced once, by whichever row arrives second, at the later of the
//! two rows' times and with the product of their diffs (the join is bilinear, as
//! differential's). The residual decides the match; the bound only decides freeing. A
//! row with a NULL time can match nothing and is not held; a late row (behind the
//! watermark) probes only what is still held.
//!
//! **Checkpoints.** In a checkpointed run the held rows of both sides are snapshotted at
//! each barrier `w`: rows at or above a requested barrier are parked until both inputs
//! have passed it (every row below it probed and held, none above it), and nothing is
//! freed on the strength of a frontier beyond `w` until then — a row at or above `w`
//! is replayed after a restore and must find what it matched before. A restore holds
//! the snapshot's rows again (each worker keeps the keys it owns at the new worker
//! count, by the exchange's own routing) and emits nothing: every pair of restored rows
//! was emitted before the barrier. So the output stays append-only, and any operator
//! may consume it.
//!
//! **Incremental snapshots.** Each held row carries the snapshot generation it was held
//! in, and each side remembers what it freed since the last snapshot (below an expiry
//! bound, or all when the other input ended). While the rows held since are at most
//! half of those held, a snapshot is a delta — those frees, then the new rows — which a
//! restore applies to the snapshot before it (`apply_delta`); a full snapshot starts
//! each run's chain and compacts it as for `Reduce`.

use super::calc::RowExpr;
use super::join::{key_side, JoinSides};
use super::{release, split_results, Context, Diff, PackedMap, Rows, Time};
use crate::errors::ExecutionError;
use crate::progress::Progress;
use differential_dataflow::Hashable;
use serde::{Deserialize, Serialize};
use sluice_compiler::{Datum, IntervalJoin, PackedRow, Row, ScalarExpr};
use std::collections::BTreeMap;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::progress::frontier::AntichainRef;

type Keyed = ((Option<Row>, Row), Time, Diff);
type Out = (Result<Row, ExecutionError>, Time, Diff);

/// One held row in a snapshot: `(key, row, time, diff)`.
type HeldEntry = (Row, Row, Time, Diff);

/// A snapshot: the left side's held rows, then the right side's.
type Snapshot = (Vec<HeldEntry>, Vec<HeldEntry>);

/// What changed on one side since the snapshot before (an incremental snapshot): rows
/// were freed below `freed_below` (by expiry) or all (`cleared`: the other input
/// ended), and `added` were held after that.
#[derive(Serialize, Deserialize)]
struct SideDelta {
    added: Vec<HeldEntry>,
    freed_below: Option<i64>,
    cleared: bool,
}

/// An incremental snapshot: the left side's changes, then the right side's.
type Delta = (SideDelta, SideDelta);

/// Incremental snapshots after a full one: at most this many deltas in a chain.
const MAX_DELTAS: usize = 16;

/// Version of the snapshot encoding (bincode of `(version, Snapshot)`).
const SNAPSHOT_VERSION: u32 = 1;

/// Rows of one input message: its capability, whether they are left rows, the rows.
type Message = (Capability<Time>, bool, Vec<Keyed>);

/// The rows one side holds, by key, and when each may be freed. Keys and rows are
/// packed ([`PackedRow`]: one allocation each, keys hashed as bytes); a held row is
/// unpacked only when it matches.
/// One held row: (row, time, diff, expiry, the snapshot generation it was held in).
type Held = (PackedRow, Time, Diff, i64, u32);

struct Side {
    /// key → its held rows.
    rows: PackedMap<Vec<Held>>,
    /// expiry → keys holding a row that expires then (interval joins only).
    expiry: BTreeMap<i64, Vec<PackedRow>>,
    /// The time column (`None`: append-only, rows expire only with the other input).
    time_col: Option<usize>,
    /// Rows held.
    held: u64,
    /// The snapshot generation: rows held since the last snapshot carry it.
    generation: u32,
    /// Rows held since the last snapshot (some may be freed since).
    added: u64,
    /// Since the last snapshot: rows freed below this expiry, and whether all were.
    freed_below: Option<i64>,
    cleared: bool,
}

impl Side {
    fn new(time_col: Option<usize>) -> Self {
        Side {
            rows: PackedMap::default(),
            expiry: BTreeMap::new(),
            time_col,
            held: 0,
            generation: 0,
            added: 0,
            freed_below: None,
            cleared: false,
        }
    }

    /// The row's time value (`None` for NULL); `i64::MAX` (never expires by time)
    /// without a time column.
    fn time_of(&self, row: &Row) -> Result<Option<i64>, ExecutionError> {
        let Some(time_col) = self.time_col else {
            return Ok(Some(i64::MAX));
        };
        match row.get(time_col) {
            Some(Datum::Timestamp(t)) => Ok(Some(*t)),
            Some(Datum::Null) => Ok(None),
            other => Err(ExecutionError::Internal(format!(
                "HashJoin (interval): time column holds {other:?}"
            ))),
        }
    }

    fn hold(&mut self, key: PackedRow, row: &Row, t: Time, d: Diff, expiry: i64) {
        if self.time_col.is_some() {
            self.expiry.entry(expiry).or_default().push(key.clone());
        }
        self.rows.entry(key).or_default().push((
            PackedRow::pack(row),
            t,
            d,
            expiry,
            self.generation,
        ));
        self.held += 1;
        self.added += 1;
    }

    /// This side's held rows as snapshot entries.
    fn entries(&self) -> Vec<HeldEntry> {
        self.rows
            .iter()
            .flat_map(|(key, held)| {
                let key = key.unpack();
                held.iter()
                    .map(move |(row, t, d, _, _)| (key.clone(), row.unpack(), *t, *d))
            })
            .collect()
    }

    /// What changed since the last snapshot, as a delta.
    fn delta(&self) -> SideDelta {
        let generation = self.generation;
        SideDelta {
            added: self
                .rows
                .iter()
                .flat_map(|(key, held)| {
                    held.iter()
                        .filter(move |h| h.4 == generation)
                        .map(move |(row, t, d, _, _)| (key.unpack(), row.unpack(), *t, *d))
                })
                .collect(),
            freed_below: self.freed_below,
            cleared: self.cleared,
        }
    }

    /// A snapshot was taken: what follows is the next generation.
    fn snapshotted(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        self.added = 0;
        self.freed_below = None;
        self.cleared = false;
    }

    /// Frees the rows no future row of the other side can match, given that side's
    /// frontier (`None`: that side is complete). Returns how many were freed. `leak`:
    /// both inputs are complete and the process exits after the run, so the rows are
    /// left to the OS (see `release`).
    fn free(&mut self, other: Option<Time>, leak: bool) -> u64 {
        let before = self.held;
        match other {
            None => {
                release(std::mem::take(&mut self.rows), leak);
                release(std::mem::take(&mut self.expiry), leak);
                self.held = 0;
                self.cleared = true;
            }
            Some(0) => {}
            Some(_) if self.time_col.is_none() => {}
            Some(f) => {
                let f = i64::try_from(f).unwrap_or(i64::MAX);
                self.freed_below = self.freed_below.max(Some(f));
                let rest = self.expiry.split_off(&f);
                let due = std::mem::replace(&mut self.expiry, rest);
                for key in due.into_values().flatten() {
                    if let Some(held) = self.rows.get_mut(&key) {
                        let n = held.len();
                        held.retain(|h| h.3 >= f);
                        self.held -= (n - held.len()) as u64;
                        if held.is_empty() {
                            self.rows.remove(&key);
                        }
                    }
                }
            }
        }
        before - self.held
    }
}

/// `l - lower` (left rows) or `r + upper` (right rows), saturated.
fn expiry(value: i64, offset: i128) -> i64 {
    let e = i128::from(value) + offset;
    i64::try_from(e).unwrap_or(if e < 0 { i64::MIN } else { i64::MAX })
}

/// Both sides of one worker's join, and the rule that turns an arriving row into
/// pairs and held state.
struct Joiner {
    left: Side,
    right: Side,
    /// Expiry offsets: `-lower` for left rows, `upper` for right rows (0 without bound).
    left_offset: i128,
    right_offset: i128,
    residual: Option<RowExpr>,
    /// Whether a side's input was complete at the end of an earlier activation: rows
    /// of the other side then need not be held at all, as no row can come to match them.
    left_done: bool,
    right_done: bool,
    /// Incremental snapshots: the deltas written since the last full snapshot (`None`:
    /// none yet in this run, so the next is full) and the rows they added. A snapshot
    /// is a delta while the rows held since the last one are at most half of those held
    /// and the chain's deltas together added no more rows than are held.
    deltas: Option<usize>,
    delta_rows: u64,
}

impl Joiner {
    /// A matched pair of an arriving row and a held one, `l ++ r`, through the residual.
    fn pair(
        &self,
        arriving: &Row,
        held: &PackedRow,
        from_left: bool,
        t: Time,
        d: Diff,
        out: &mut Vec<Out>,
    ) {
        let mut joined = Vec::with_capacity(arriving.len() + held.as_bytes().len() / 9 + 1);
        if from_left {
            joined.extend_from_slice(arriving);
            joined.extend(held.iter());
        } else {
            joined.extend(held.iter());
            joined.extend_from_slice(arriving);
        }
        match self.residual.as_ref().map(|p| p.holds(&joined, "HashJoin")) {
            None | Some(Ok(true)) => out.push((Ok(joined), t, d)),
            Some(Ok(false)) => {}
            Some(Err(e)) => out.push((Err(e), t, d)),
        }
    }

    /// Rows of one side arrive: each probes the other side's held rows, then is held.
    /// Returns how many were held.
    fn arrive(&mut self, from_left: bool, rows: Vec<Keyed>, out: &mut Vec<Out>) -> u64 {
        let mut added = 0;
        for ((key, row), t, d) in rows {
            let Some(key) = key else { continue };
            let key = PackedRow::pack(&key);
            let others = if from_left { &self.right } else { &self.left };
            if let Some(others) = others.rows.get(&key) {
                for (o, ot, od, _, _) in others {
                    self.pair(&row, o, from_left, t.max(*ot), d.saturating_mul(*od), out);
                }
            }
            let (side, offset, other_done) = if from_left {
                (&mut self.left, self.left_offset, self.right_done)
            } else {
                (&mut self.right, self.right_offset, self.left_done)
            };
            match side.time_of(&row) {
                Ok(Some(_)) if other_done => {}
                Ok(Some(v)) => {
                    side.hold(key, &row, t, d, expiry(v, offset));
                    added += 1;
                }
                Ok(None) => {}
                Err(e) => out.push((Err(e), t, d)),
            }
        }
        added
    }

    /// Holds a restored row again (it probes nothing: its pairs were emitted before).
    fn restore(
        &mut self,
        from_left: bool,
        (key, row, t, d): HeldEntry,
    ) -> Result<(), ExecutionError> {
        let (side, offset) = if from_left {
            (&mut self.left, self.left_offset)
        } else {
            (&mut self.right, self.right_offset)
        };
        if let Some(v) = side.time_of(&row)? {
            side.hold(PackedRow::pack(&key), &row, t, d, expiry(v, offset));
        }
        Ok(())
    }

    /// The next snapshot's bytes and whether it is a delta (see [`Joiner::deltas`]).
    fn snapshot(&mut self) -> Result<(Vec<u8>, bool), ExecutionError> {
        let held = self.left.held + self.right.held;
        let added = self.left.added + self.right.added;
        let is_delta = self.deltas.is_some_and(|n| n < MAX_DELTAS)
            && added * 2 <= held
            && self.delta_rows + added <= held;
        let bytes = if is_delta {
            let delta: Delta = (self.left.delta(), self.right.delta());
            crate::checkpoint::encode_delta_of("HashJoin", SNAPSHOT_VERSION, &delta)?
        } else {
            let snapshot: Snapshot = (self.left.entries(), self.right.entries());
            crate::checkpoint::encode_snapshot("HashJoin", SNAPSHOT_VERSION, &snapshot)?
        };
        if is_delta {
            self.deltas = self.deltas.map(|n| n + 1);
            self.delta_rows += added;
        } else {
            self.deltas = Some(0);
            self.delta_rows = 0;
        }
        self.left.snapshotted();
        self.right.snapshotted();
        Ok((bytes, is_delta))
    }
}

/// Applies one side's delta to a decoded snapshot's rows of that side (`time_col` and
/// `offset` give a row's expiry, as the join computed it): frees, then additions.
fn apply_delta(rows: &mut Vec<HeldEntry>, delta: SideDelta, time_col: Option<usize>, offset: i128) {
    if delta.cleared {
        rows.clear();
    }
    if let (Some(f), Some(c)) = (delta.freed_below, time_col) {
        rows.retain(|(_, row, _, _)| match row.get(c) {
            Some(Datum::Timestamp(t)) => expiry(*t, offset) >= f,
            _ => false,
        });
    }
    rows.extend(delta.added);
}

/// The worker that owns `key` among `workers`: the route of the join's exchange
/// (timely sends a record to `hash % peers`; `Some(&key)` hashes as `Some(key)`).
fn owner(key: &Row, workers: usize) -> usize {
    (Some(key).hashed() % workers.max(1) as u64) as usize
}

/// Renders an inner `HashJoin` with an interval bound, or (`bound` `None`) of two
/// append-only inputs; `state_key` names its snapshots.
pub(crate) fn render_symmetric_join<'s>(
    ctx: &mut Context<'s>,
    state_key: &str,
    sides: JoinSides<'s>,
    left_keys: &[ScalarExpr],
    right_keys: &[ScalarExpr],
    residual: Option<&ScalarExpr>,
    bound: Option<IntervalJoin>,
) -> Rows<'s> {
    let left = key_side(
        ctx,
        sides.left,
        left_keys,
        &sides.left_types,
        "HashJoin: left key",
    );
    let right = key_side(
        ctx,
        sides.right,
        right_keys,
        &sides.right_types,
        "HashJoin: right key",
    );
    let (left_flow, right_flow) = sides.flows;
    let mut joined_types = sides.left_types.clone();
    joined_types.extend(sides.right_types.iter().copied());
    let mut joiner = Joiner {
        left: Side::new(bound.map(|b| b.left_time)),
        right: Side::new(bound.map(|b| b.right_time)),
        left_offset: bound.map_or(0, |b| -i128::from(b.lower_ms)),
        right_offset: bound.map_or(0, |b| i128::from(b.upper_ms)),
        residual: residual.map(|p| RowExpr::new(p, &joined_types)),
        left_done: false,
        right_done: false,
        deltas: None,
        delta_rows: 0,
    };
    let progress: Arc<Progress> = ctx.progress.clone();
    let exit_after_run = ctx.exit_after_run;
    // Checkpoints: register, and hold again the restored rows whose key this worker
    // owns (whichever worker snapshotted them).
    let worker = ctx.worker;
    let state_key = state_key.to_string();
    let (left_time, right_time) = (joiner.left.time_col, joiner.right.time_col);
    let (left_offset, right_offset) = (joiner.left_offset, joiner.right_offset);
    let (seq, restored): (usize, Vec<Snapshot>) = ctx.stateful_chains(&state_key, true, |chain| {
        crate::checkpoint::decode_chain(
            "HashJoin",
            SNAPSHOT_VERSION,
            chain,
            |(l, r): &mut Snapshot, (dl, dr): Delta| {
                apply_delta(l, dl, left_time, left_offset);
                apply_delta(r, dr, right_time, right_offset);
            },
        )
    });
    let ckpt = ctx.ckpt.clone();
    let errors = ctx.errors.clone();
    let mine = |e: &HeldEntry| owner(&e.0, worker.workers) == worker.worker;
    for (l, r) in restored {
        let entries = l
            .into_iter()
            .filter(mine)
            .map(|e| (true, e))
            .chain(r.into_iter().filter(mine).map(|e| (false, e)));
        for (from_left, entry) in entries {
            if let Err(e) = joiner.restore(from_left, entry) {
                errors.raise(e);
            }
        }
    }
    if ctx.restored.is_some() {
        progress.join_state_changed(joiner.left.held + joiner.right.held, 0);
    }
    let exchange_left = Exchange::new(|((k, _), _, _): &Keyed| k.hashed());
    let exchange_right = Exchange::new(|((k, _), _, _): &Keyed| k.hashed());
    let results = left
        .inner
        .binary_frontier::<_, CapacityContainerBuilder<Vec<Out>>, _, _, _, _>(
            right.inner,
            exchange_left,
            exchange_right,
            if bound.is_some() {
                "HashJoin: interval"
            } else {
                "HashJoin: append-only"
            },
            move |_cap, _info| {
                let mut joiner = joiner;
                let mut out: Vec<Out> = Vec::new();
                let mut saved_through = ckpt.as_ref().map_or(0, |c| c.completed());
                let restored_through = saved_through;
                // Rows at or above a requested barrier, parked until its snapshot.
                let mut parked: Vec<Message> = Vec::new();
                move |(left_input, left_frontier), (right_input, right_frontier), output| {
                    // Drain first, then look for a barrier: a row emitted after the
                    // barrier was chosen is then always seen with it.
                    let mut arrived: Vec<Message> = Vec::new();
                    left_input.for_each(|cap, data| {
                        if let Some(c) = cap.retain_least(0) {
                            arrived.push((c, true, std::mem::take(data)));
                        }
                    });
                    right_input.for_each(|cap, data| {
                        if let Some(c) = cap.retain_least(0) {
                            arrived.push((c, false, std::mem::take(data)));
                        }
                    });
                    super::flow::observe(&left_flow, left_frontier.frontier());
                    super::flow::observe(&right_flow, right_frontier.frontier());
                    if !arrived.is_empty() && saved_through > restored_through {
                        sluice_connectors::failpoint("join.step");
                    }
                    let mut due = ckpt.as_ref().and_then(|c| c.state_due(saved_through));
                    let mut added = 0;
                    for (cap, from_left, rows) in arrived {
                        let (now, later): (Vec<Keyed>, Vec<Keyed>) = match due {
                            Some((_, w)) => rows.into_iter().partition(|(_, t, _)| *t < w),
                            None => (rows, Vec::new()),
                        };
                        added += joiner.arrive(from_left, now, &mut out);
                        if !out.is_empty() {
                            output.session(&cap).give_iterator(out.drain(..));
                        }
                        if !later.is_empty() {
                            parked.push((cap, from_left, later));
                        }
                    }
                    let passed = |f: AntichainRef<'_, Time>, w: Time| f.iter().all(|t| *t >= w);
                    if let (Some(c), Some((epoch, w))) = (&ckpt, due) {
                        if passed(left_frontier.frontier(), w)
                            && passed(right_frontier.frontier(), w)
                        {
                            // Every row below the barrier is in, none at or above it.
                            match joiner.snapshot().and_then(|(b, delta)| {
                                c.save_state(epoch, &state_key, seq, worker.worker, b, delta)
                            }) {
                                Ok(()) => {
                                    saved_through = epoch;
                                    due = None;
                                }
                                Err(e) => errors.raise(e),
                            }
                        }
                    }
                    if due.is_none() {
                        for (cap, from_left, rows) in std::mem::take(&mut parked) {
                            added += joiner.arrive(from_left, rows, &mut out);
                            if !out.is_empty() {
                                output.session(&cap).give_iterator(out.drain(..));
                            }
                        }
                    }
                    // What a side's frontier promises about its future rows, no further
                    // than an unsaved barrier (rows at or above it are still to come
                    // after a restore); `None`: complete.
                    let limit = due.map(|(_, w)| w);
                    let bound = |f: AntichainRef<'_, Time>| match (f.iter().min().copied(), limit) {
                        (Some(f), Some(w)) => Some(f.min(w)),
                        (f, w) => f.or(w),
                    };
                    let parked_from = |left: bool| parked.iter().any(|(_, l, _)| *l == left);
                    joiner.left_done = left_frontier.frontier().is_empty() && !parked_from(true);
                    joiner.right_done = right_frontier.frontier().is_empty() && !parked_from(false);
                    let leak = exit_after_run && joiner.left_done && joiner.right_done;
                    let freed = joiner.left.free(bound(right_frontier.frontier()), leak)
                        + joiner.right.free(bound(left_frontier.frontier()), leak);
                    progress.join_state_changed(added, freed);
                }
            },
        );
    let (oks, errs) = split_results(results, "HashJoin: symmetric: split errors");
    ctx.errs.push(errs);
    oks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(key: i64, ts: i64) -> HeldEntry {
        (
            vec![Datum::Int(key)],
            vec![Datum::Int(key), Datum::Timestamp(ts)],
            0,
            1,
        )
    }

    /// A delta applied to the snapshot before it gives the side a full snapshot would
    /// hold: rows freed by expiry (time + offset below the bound) dropped, then the
    /// rows held since added; a cleared side keeps only what was held after.
    #[test]
    fn a_delta_frees_by_expiry_then_adds() {
        let base = vec![held(1, 100), held(2, 200), held(3, 300)];
        let mut rows = base.clone();
        // Offset 50: expiries 150, 250, 350; freed below 260 drops the first two.
        let delta = SideDelta {
            added: vec![held(4, 400), held(5, 120)],
            freed_below: Some(260),
            cleared: false,
        };
        apply_delta(&mut rows, delta, Some(1), 50);
        assert_eq!(rows, vec![held(3, 300), held(4, 400), held(5, 120)]);
        // Without a time column nothing expires.
        let mut rows = base.clone();
        let delta = SideDelta {
            added: vec![],
            freed_below: Some(i64::MAX),
            cleared: false,
        };
        apply_delta(&mut rows, delta, None, 0);
        assert_eq!(rows, base);
        let mut rows = base;
        let delta = SideDelta {
            added: vec![held(9, 900)],
            freed_below: None,
            cleared: true,
        };
        apply_delta(&mut rows, delta, Some(1), 0);
        assert_eq!(rows, vec![held(9, 900)]);
    }
}
