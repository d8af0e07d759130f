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

use super::calc::RowExpr;
use super::join::{key_side, JoinSides};
use super::{release, split_results, Context, Diff, Rows, Time};
use crate::errors::ExecutionError;
use crate::progress::Progress;
use differential_dataflow::Hashable;
use rustc_hash::FxHashMap;
use sluice_compiler::{Datum, IntervalJoin, Row, ScalarExpr};
use std::collections::BTreeMap;
use std::sync::Arc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

type Keyed = ((Option<Row>, Row), Time, Diff);
type Out = (Result<Row, ExecutionError>, Time, Diff);

/// The rows one side holds, by key, and when each may be freed.
struct Side {
    /// key → (row, time, diff, expiry).
    rows: FxHashMap<Row, Vec<(Row, Time, Diff, i64)>>,
    /// expiry → keys holding a row that expires then (interval joins only).
    expiry: BTreeMap<i64, Vec<Row>>,
    /// The time column (`None`: append-only, rows expire only with the other input).
    time_col: Option<usize>,
    /// Rows held.
    held: u64,
}

impl Side {
    fn new(time_col: Option<usize>) -> Self {
        Side {
            rows: FxHashMap::default(),
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

    fn hold(&mut self, key: Row, row: Row, t: Time, d: Diff, expiry: i64) {
        if self.time_col.is_some() {
            self.expiry.entry(expiry).or_default().push(key.clone());
        }
        self.rows.entry(key).or_default().push((row, t, d, expiry));
        self.held += 1;
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

/// Renders an inner `HashJoin` with an interval bound, or (`bound` `None`) of two
/// append-only inputs.
pub(crate) fn render_symmetric_join<'s>(
    ctx: &mut Context<'s>,
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
    let mut joined_types = sides.left_types.clone();
    joined_types.extend(sides.right_types.iter().copied());
    let residual = residual.map(|p| RowExpr::new(p, &joined_types));
    let progress: Arc<Progress> = ctx.progress.clone();
    let exit_after_run = ctx.exit_after_run;
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
                let mut held_left = Side::new(bound.map(|b| b.left_time));
                let mut held_right = Side::new(bound.map(|b| b.right_time));
                let left_offset = bound.map_or(0, |b| -i128::from(b.lower_ms));
                let right_offset = bound.map_or(0, |b| i128::from(b.upper_ms));
                let mut out: Vec<Out> = Vec::new();
                // Whether a side's input was complete (drained, frontier empty) at the
                // end of an earlier activation: rows of the other side then need not be
                // held at all, as no row can come to match them.
                let (mut left_done, mut right_done) = (false, false);
                move |(left_input, left_frontier), (right_input, right_frontier), output| {
                    let mut added = 0;
                    // A matched pair, `l ++ r`, through the residual.
                    let pair = |l: &Row, r: &Row, t: Time, d: Diff, out: &mut Vec<Out>| {
                        let mut joined = l.clone();
                        joined.extend(r.iter().cloned());
                        match residual.as_ref().map(|p| p.holds(&joined, "HashJoin")) {
                            None | Some(Ok(true)) => out.push((Ok(joined), t, d)),
                            Some(Ok(false)) => {}
                            Some(Err(e)) => out.push((Err(e), t, d)),
                        }
                    };
                    left_input.for_each(|cap, data| {
                        for ((key, row), t, d) in data.drain(..) {
                            let Some(key) = key else { continue };
                            if let Some(others) = held_right.rows.get(&key) {
                                for (r, rt, rd, _) in others {
                                    pair(&row, r, t.max(*rt), d.saturating_mul(*rd), &mut out);
                                }
                            }
                            match held_left.time_of(&row) {
                                Ok(Some(_)) if right_done => {}
                                Ok(Some(v)) => {
                                    held_left.hold(key, row, t, d, expiry(v, left_offset));
                                    added += 1;
                                }
                                Ok(None) => {}
                                Err(e) => out.push((Err(e), t, d)),
                            }
                        }
                        if !out.is_empty() {
                            output.session(&cap).give_iterator(out.drain(..));
                        }
                    });
                    right_input.for_each(|cap, data| {
                        for ((key, row), t, d) in data.drain(..) {
                            let Some(key) = key else { continue };
                            if let Some(others) = held_left.rows.get(&key) {
                                for (l, lt, ld, _) in others {
                                    pair(l, &row, t.max(*lt), d.saturating_mul(*ld), &mut out);
                                }
                            }
                            match held_right.time_of(&row) {
                                Ok(Some(_)) if left_done => {}
                                Ok(Some(v)) => {
                                    held_right.hold(key, row, t, d, expiry(v, right_offset));
                                    added += 1;
                                }
                                Ok(None) => {}
                                Err(e) => out.push((Err(e), t, d)),
                            }
                        }
                        if !out.is_empty() {
                            output.session(&cap).give_iterator(out.drain(..));
                        }
                    });
                    let frontier = |f: timely::progress::frontier::AntichainRef<'_, Time>| {
                        f.iter().min().copied()
                    };
                    left_done = left_frontier.frontier().is_empty();
                    right_done = right_frontier.frontier().is_empty();
                    let leak = exit_after_run
                        && left_frontier.frontier().is_empty()
                        && right_frontier.frontier().is_empty();
                    let freed = held_left.free(frontier(right_frontier.frontier()), leak)
                        + held_right.free(frontier(left_frontier.frontier()), leak);
                    progress.join_state_changed(added, freed);
                }
            },
        );
    let (oks, errs) = split_results(results, "HashJoin: symmetric: split errors");
    ctx.errs.push(errs);
    oks
}
