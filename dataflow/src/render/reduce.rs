//! `Reduce`: grouped aggregation.
//!
//! * **Incremental** (grouped, and every aggregate has a running state: COUNT, SUM/AVG of
//!   exact numbers, MIN/MAX over an append-only input — [`Aggregates::incremental`]):
//!   a keyed operator keeps, per group, the running states and the row it last emitted;
//!   each complete time applies its updates in O(1) per row and emits, per changed
//!   group, the retraction of the old row and the new one. State: one entry per group.
//! * **Otherwise** (DISTINCT, DOUBLE sums, MIN/MAX under retractions, global aggregates):
//!   a differential reduce per group key recomputing every aggregate from the group's
//!   whole multiset of argument rows (see [`crate::accum`]). A global aggregate (no group
//!   columns) gets one sentinel value (`None`) on worker 0 so that its single group
//!   exists — and its row is produced — even for empty input. State: the multiset.

use super::{constant, map_updates, split_results, Context, Diff, Rows, Time};
use crate::accum::{Aggregates, Running};
use crate::errors::ExecutionError;
use differential_dataflow::Hashable;
use sluice_catalogs::SqlType;
use sluice_compiler::{AggregateCall, Datum, Row};
use std::collections::{BTreeMap, HashMap};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// Renders `Reduce` (`append_only`: the input never retracts).
pub(crate) fn render_reduce<'s>(
    ctx: &mut Context<'s>,
    rows: Rows<'s>,
    group_by: Vec<usize>,
    aggs: &[AggregateCall],
    types: &[SqlType],
    append_only: bool,
) -> Rows<'s> {
    let aggregates = Aggregates::new(aggs, types);
    let global = group_by.is_empty();
    if !global && aggregates.incremental(append_only) {
        return render_incremental(ctx, rows, group_by, aggregates);
    }
    let args = aggregates.clone();
    let mut keyed = map_updates(rows, "Reduce: key", move |row: Row, t, r, out| {
        let key: Row = group_by
            .iter()
            .map(|&c| row.get(c).cloned().unwrap_or(Datum::Null))
            .collect();
        out.push(((key, Some(args.arguments(&row))), t, r));
    });
    if global {
        let sentinel = map_updates(
            constant(ctx.scope, "Reduce: global sentinel", vec![Vec::new()]),
            "Reduce: sentinel key",
            |key: Row, t, r, out| out.push(((key, None), t, r)),
        );
        keyed = keyed.concat(sentinel);
    }
    let reduced = keyed.reduce_named(
        "Reduce",
        move |key: &Row,
              input: &[(&Option<Row>, Diff)],
              output: &mut Vec<(Result<Row, ExecutionError>, Diff)>| {
            let values = input
                .iter()
                .filter_map(|(v, n)| v.as_ref().map(|row| (row, *n)));
            if !global && values.clone().all(|(_, n)| n <= 0) {
                return;
            }
            let result = aggregates
                .compute(values)
                .map(|aggs| key.iter().cloned().chain(aggs).collect())
                .map_err(|m| ExecutionError::eval("Reduce", m));
            output.push((result, 1));
        },
    );
    let results = map_updates(
        reduced,
        "Reduce: unkey",
        |(_k, v): (Row, Result<Row, ExecutionError>), t: Time, r, out| out.push((v, t, r)),
    );
    let (oks, errs) = split_results(results.inner, "Reduce: split errors");
    ctx.errs.push(errs);
    oks
}

/// Updates of one time, with a capability at it.
type Pending = (Capability<Time>, Vec<(Row, Diff)>);

/// One group of the incremental reduce.
struct Group {
    /// Net rows in the group.
    rows: Diff,
    states: Vec<Running>,
    /// The row last emitted for the group (with a positive count), if any.
    emitted: Option<Result<Row, ExecutionError>>,
}

/// The incremental `Reduce` (see the module docs).
fn render_incremental<'s>(
    ctx: &mut Context<'s>,
    rows: Rows<'s>,
    group_by: Vec<usize>,
    aggregates: Aggregates,
) -> Rows<'s> {
    type Out = (Result<Row, ExecutionError>, Time, Diff);
    let key_of = {
        let group_by = group_by.clone();
        move |row: &Row| -> Row {
            group_by
                .iter()
                .map(|&c| row.get(c).cloned().unwrap_or(Datum::Null))
                .collect()
        }
    };
    let route = key_of.clone();
    let exchange = Exchange::new(move |(row, _, _): &(Row, Time, Diff)| route(row).hashed());
    let results = rows
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<Out>>, _, _, _>(
            exchange,
            "Reduce (incremental)",
            move |_cap, _info| {
                let mut groups: HashMap<Row, Group> = HashMap::new();
                let mut pending: BTreeMap<Time, Pending> = BTreeMap::new();
                move |(input, frontier), output| {
                    input.for_each(|cap, data| {
                        for (row, t, d) in data.drain(..) {
                            pending
                                .entry(t)
                                .or_insert_with(|| (cap.delayed(&t, 0), Vec::new()))
                                .1
                                .push((row, d));
                        }
                    });
                    // Times in order, once complete: the output at `t` reflects exactly
                    // the input up to `t`.
                    let ready: Vec<Time> = pending
                        .keys()
                        .copied()
                        .take_while(|t| !frontier.frontier().less_equal(t))
                        .collect();
                    for t in ready {
                        let Some((cap, updates)) = pending.remove(&t) else {
                            continue;
                        };
                        let mut out: Vec<Out> = Vec::new();
                        let mut changed: Vec<Row> = Vec::new();
                        for (row, d) in updates {
                            let key = key_of(&row);
                            let group = groups.entry(key.clone()).or_insert_with(|| Group {
                                rows: 0,
                                states: aggregates.running(),
                                emitted: None,
                            });
                            group.rows += d;
                            if let Err(m) = aggregates.update(&mut group.states, &row, d) {
                                out.push((Err(ExecutionError::eval("Reduce", m)), t, 1));
                            }
                            changed.push(key);
                        }
                        changed.sort();
                        changed.dedup();
                        for key in changed {
                            let Some(group) = groups.get_mut(&key) else {
                                continue;
                            };
                            let new = (group.rows > 0).then(|| {
                                aggregates
                                    .finish(&group.states)
                                    .map(|aggs| key.iter().cloned().chain(aggs).collect())
                                    .map_err(|m| ExecutionError::eval("Reduce", m))
                            });
                            if new == group.emitted {
                                continue;
                            }
                            if let Some(old) = group.emitted.take() {
                                out.push((old, t, -1));
                            }
                            if let Some(new) = new {
                                group.emitted = Some(new.clone());
                                out.push((new, t, 1));
                            }
                            if group.rows <= 0 && group.emitted.is_none() {
                                groups.remove(&key);
                            }
                        }
                        output.session(&cap).give_iterator(out.into_iter());
                    }
                }
            },
        );
    let (oks, errs) = split_results(results, "Reduce: split errors");
    ctx.errs.push(errs);
    oks
}
