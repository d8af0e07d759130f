//! `Reduce`: a differential reduce per group key recomputing every aggregate from the
//! group's whole multiset of argument rows (see [`crate::accum`]). A global aggregate
//! (no group columns) gets one sentinel value (`None`) on worker 0 so that its single
//! group exists — and its row is produced — even for empty input.

use super::{constant, map_updates, split_results, Context, Diff, Rows, Time};
use crate::accum::Aggregates;
use crate::errors::ExecutionError;
use sluice_catalogs::SqlType;
use sluice_compiler::{AggregateCall, Datum, Row};

/// Renders `Reduce`.
pub(crate) fn render_reduce<'s>(
    ctx: &mut Context<'s>,
    rows: Rows<'s>,
    group_by: Vec<usize>,
    aggs: &[AggregateCall],
    types: &[SqlType],
) -> Rows<'s> {
    let aggregates = Aggregates::new(aggs, types);
    let global = group_by.is_empty();
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
