//! `Reduce`: grouped aggregation with retractions, one keyed operator per worker.
//!
//! Rows are exchanged by the hash of their group key (a global aggregate, with no
//! group columns, sends every row to worker 0). Per group the operator keeps one
//! state per aggregate, of the kind the compiler chose ([`AggStrategy`], see
//! `sluice_compiler::lower::agg_strategies`), and the row it last emitted. Updates are
//! buffered per timely time; once a time is complete (the input frontier passed it)
//! its updates are folded in and each changed group retracts its old row and emits its
//! new one at that time, so that, for every time `t`,
//!
//! > output up to `t` = `Aggregates::compute` over the input up to `t`, per group
//!
//! (the oracle `dataflow/tests/calc_reduce.rs` checks). A group whose net row count
//! drops to zero emits nothing and is freed; a global aggregate's single group always
//! exists, so its row is produced at time 0 even for empty input.
//!
//! State: per group, the last emitted row and the aggregate states — O(1) for
//! `Accumulate`, O(distinct values) for `Distinct` and `Ordered`.

use super::{key_hash, release, split_results, Context, Diff, Rows, Time};
use crate::accum::{AggState, Aggregates};
use crate::errors::ExecutionError;
use rustc_hash::FxHashMap;
use sluice_catalogs::SqlType;
use sluice_compiler::{AggStrategy, AggregateCall, Datum, Row};
use std::collections::BTreeMap;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// What `render_reduce` needs of the plan node.
pub(crate) struct ReduceSpec<'a> {
    /// Group columns.
    pub(crate) group_by: Vec<usize>,
    /// Aggregates.
    pub(crate) aggs: &'a [AggregateCall],
    /// One per aggregate.
    pub(crate) strategies: &'a [AggStrategy],
    /// The input's column types.
    pub(crate) types: &'a [SqlType],
}

/// Updates of one time, with a capability at it.
type Pending = (Capability<Time>, Vec<(Row, Diff)>);

/// One group.
struct Group {
    /// Net rows in the group.
    rows: Diff,
    states: Vec<AggState>,
    /// The row last emitted for the group, if any.
    emitted: Option<Result<Row, ExecutionError>>,
}

/// Renders `Reduce` (see the module docs).
pub(crate) fn render_reduce<'s>(
    ctx: &mut Context<'s>,
    rows: Rows<'s>,
    spec: ReduceSpec<'_>,
) -> Rows<'s> {
    type Out = (Result<Row, ExecutionError>, Time, Diff);
    let aggregates = Aggregates::new(spec.aggs, spec.types);
    let strategies = spec.strategies.to_vec();
    let group_by = spec.group_by.clone();
    let global = group_by.is_empty();
    let exit_after_run = ctx.exit_after_run;
    let key_of = move |row: &Row| -> Row {
        group_by
            .iter()
            .map(|&c| row.get(c).cloned().unwrap_or(Datum::Null))
            .collect()
    };
    let route = spec.group_by.clone();
    // Without group columns every row goes to worker 0, which owns the one group.
    let exchange = Exchange::new(
        move |(row, _, _): &(Row, Time, Diff)| {
            if global {
                0
            } else {
                key_hash(row, &route)
            }
        },
    );
    let worker = ctx.worker.worker;
    let results = rows
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<Out>>, _, _, _>(
            exchange,
            "Reduce",
            move |cap, _info| {
                let mut groups: FxHashMap<Row, Group> = FxHashMap::default();
                let mut pending: BTreeMap<Time, Pending> = BTreeMap::new();
                // The global group exists from time 0, on the worker that owns it.
                let mut create_global = global && worker == 0;
                if create_global {
                    pending.insert(0, (cap, Vec::new()));
                }
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
                        if std::mem::take(&mut create_global) {
                            groups.insert(
                                Vec::new(),
                                Group {
                                    rows: 0,
                                    states: aggregates.states(&strategies),
                                    emitted: None,
                                },
                            );
                            changed.push(Vec::new());
                        }
                        for (row, d) in updates {
                            let key = key_of(&row);
                            let group = match groups.get_mut(&key) {
                                Some(group) => group,
                                None => groups.entry(key.clone()).or_insert_with(|| Group {
                                    rows: 0,
                                    states: aggregates.states(&strategies),
                                    emitted: None,
                                }),
                            };
                            group.rows += d;
                            if let Err(m) = aggregates.update_states(&mut group.states, &row, d) {
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
                            let new = (global || group.rows > 0).then(|| {
                                aggregates
                                    .finish_states(&group.states)
                                    .map(|aggs| key.iter().cloned().chain(aggs).collect())
                                    .map_err(|m| ExecutionError::eval("Reduce", m))
                            });
                            if new != group.emitted {
                                if let Some(old) = group.emitted.take() {
                                    out.push((old, t, -1));
                                }
                                if let Some(new) = new {
                                    group.emitted = Some(new.clone());
                                    out.push((new, t, 1));
                                }
                            }
                            if !global && group.rows <= 0 && group.emitted.is_none() {
                                groups.remove(&key);
                            }
                        }
                        if !out.is_empty() {
                            output.session(&cap).give_iterator(out.into_iter());
                        }
                    }
                    if frontier.frontier().is_empty() && pending.is_empty() {
                        release(std::mem::take(&mut groups), exit_after_run);
                    }
                }
            },
        );
    let (oks, errs) = split_results(results, "Reduce: split errors");
    ctx.errs.push(errs);
    oks
}
