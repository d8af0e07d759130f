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

use super::calc::RowExpr;
use super::join::{key_side, JoinSides};
use super::{release, split_results, Context, Diff, PackedMap, Rows, Time};
use crate::errors::ExecutionError;
use crate::progress::Progress;
use differential_dataflow::Hashable;
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

/// Version of the snapshot encoding (bincode of `(version, Snapshot)`).
const SNAPSHOT_VERSION: u32 = 1;

/// Rows of one input message: its capability, whether they are left rows, the rows.
type Message = (Capability<Time>, bool, Vec<Keyed>);

/// The rows one side holds, by key, and when each may be freed. Keys and rows are
/// packed ([`PackedRow`]: one allocation each, keys hashed as bytes); a held row is
/// unpacked only when it matches.
struct Side {
    /// key → (row, time, diff, expiry).
    rows: PackedMap<Vec<(PackedRow, Time, Diff, i64)>>,
    /// expiry → keys holding a row that expires then (interval joins only).
    expiry: BTreeMap<i64, Vec<PackedRow>>,
    /// The time column (`None`: append-only, rows expire only with the other input).
    time_col: Option<usize>,
    /// Rows held.
    held: u64,
}

impl Side {
    fn new(time_col: Option<usize>) -> Self {
        Side {
            rows: PackedMap::default(),
            expiry: BTreeMap::new(),
            time_col,
            held: 0,
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
        self.rows
            .entry(key)
            .or_default()
            .push((PackedRow::pack(row), t, d, expiry));
        self.held += 1;
    }

    /// This side's held rows as snapshot entries.
    fn entries(&self) -> Vec<HeldEntry> {
        self.rows
            .iter()
            .flat_map(|(key, held)| {
                let key = key.unpack();
                held.iter()
                    .map(move |(row, t, d, _)| (key.clone(), row.unpack(), *t, *d))
            })
            .collect()
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
            }
            Some(0) => {}
            Some(_) if self.time_col.is_none() => {}
            Some(f) => {
                let f = i64::try_from(f).unwrap_or(i64::MAX);
                let rest = self.expiry.split_off(&f);
                let due = std::mem::replace(&mut self.expiry, rest);
                for key in due.into_values().flatten() {
                    if let Some(held) = self.rows.get_mut(&key) {
                        let n = held.len();
                        held.retain(|(_, _, _, e)| *e >= f);
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
                for (o, ot, od, _) in others {
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

    fn snapshot(&self) -> Result<Vec<u8>, ExecutionError> {
        let snapshot: Snapshot = (self.left.entries(), self.right.entries());
        crate::checkpoint::encode_snapshot("HashJoin", SNAPSHOT_VERSION, &snapshot)
    }
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
    };
    let progress: Arc<Progress> = ctx.progress.clone();
    let exit_after_run = ctx.exit_after_run;
    // Checkpoints: register, and hold again the restored rows whose key this worker
    // owns (whichever worker snapshotted them).
    let worker = ctx.worker;
    let state_key = state_key.to_string();
    let (seq, restored): (usize, Vec<Snapshot>) =
        ctx.stateful(&state_key, "HashJoin", SNAPSHOT_VERSION, true);
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
                            match joiner.snapshot().and_then(|b| {
                                c.save_state(epoch, &state_key, seq, worker.worker, b, false)
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
