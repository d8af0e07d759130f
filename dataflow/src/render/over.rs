//! `Over`: aggregates over a frame of rows (`AVG(x) OVER (PARTITION BY … ORDER BY …
//! ROWS BETWEEN n PRECEDING AND CURRENT ROW)`), a stateful stage: rows are keyed by
//! their partition and a differential reduce recomputes a partition's output whenever
//! its rows change; differential emits only the output rows that changed.
//!
//! Invariant, for every partition `p` and time `t`: the output accumulated up to `t`
//! equals `frames(sort(input_p up to t))`: the partition's rows sorted by the ORDER BY
//! keys with ties broken by the whole row (deterministic at any worker count), one
//! entry per copy, each followed by the aggregates over itself and the `preceding`
//! entries before it. State: every live input row and the last output, per partition
//! (in a checkpointed run the input is kept by `render/keep.rs` and replayed at a
//! restore). A changed partition costs O(rows × frame) to recompute.

use super::topn::compare_rows;
use super::{map_updates, split_results, Context, Diff, Rows};
use crate::accum::Aggregates;
use crate::errors::ExecutionError;
use sluice_catalogs::SqlType;
use sluice_compiler::{AggregateCall, PackedRow, Row, SortKey};
use std::collections::BTreeMap;

/// What an `Over` node computes (its physical parameters).
#[derive(Clone, Debug)]
pub(crate) struct OverSpec {
    /// Partition columns.
    pub(crate) partition_by: Vec<usize>,
    /// Order within a partition.
    pub(crate) order_by: Vec<SortKey>,
    /// The aggregates.
    pub(crate) aggs: Vec<AggregateCall>,
    /// Rows before the current one in a frame.
    pub(crate) preceding: u64,
    /// The input's column types.
    pub(crate) input_types: Vec<SqlType>,
}

impl OverSpec {
    fn key(&self, row: &Row) -> Row {
        super::key_row(row, &self.partition_by)
    }
}

/// The output of one partition given its live rows as `(row, count)`: each copy of
/// each row in frame order, followed by its frame's aggregates, consolidated.
pub(crate) fn partition_output(
    rows: impl Iterator<Item = (Row, Diff)>,
    spec: &OverSpec,
    aggregates: &Aggregates,
) -> Result<BTreeMap<Row, Diff>, String> {
    let mut live: Vec<(Row, Diff)> = rows.filter(|(_, n)| *n > 0).collect();
    // Stable: tied rows stay in row order (the caller's input is sorted by row).
    live.sort_by(|a, b| compare_rows(&spec.order_by, &a.0, &b.0).then_with(|| a.0.cmp(&b.0)));
    let copies: Vec<&Row> = live
        .iter()
        .flat_map(|(row, n)| std::iter::repeat_n(row, usize::try_from(*n).unwrap_or(0)))
        .collect();
    let args: Vec<Row> = copies.iter().map(|r| aggregates.arguments(r)).collect();
    let width = usize::try_from(spec.preceding)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut out: BTreeMap<Row, Diff> = BTreeMap::new();
    for (i, row) in copies.iter().enumerate() {
        let first = (i + 1).saturating_sub(width);
        let frame = args[first..=i].iter().map(|a| (a, 1isize));
        let values = aggregates.compute(frame)?;
        let mut o = (*row).clone();
        o.extend(values);
        *out.entry(o).or_default() += 1;
    }
    Ok(out)
}

/// Renders `Over` over `rows` (already kept for checkpoints by the caller).
pub(crate) fn render_over<'s>(ctx: &mut Context<'s>, rows: Rows<'s>, spec: OverSpec) -> Rows<'s> {
    let key_spec = spec.clone();
    // Partition keys and rows packed: the arrangement holds one allocation per row, and
    // a recomputation decodes each row once (where it cloned it before).
    let keyed = map_updates(rows, "Over: key", move |row: Row, t, r, out| {
        out.push((
            (PackedRow::pack(&key_spec.key(&row)), PackedRow::pack(&row)),
            t,
            r,
        ))
    });
    let aggregates = Aggregates::new(&spec.aggs, &spec.input_types);
    let computed = keyed.reduce_named(
        "Over",
        move |_key: &PackedRow,
              input: &[(&PackedRow, Diff)],
              output: &mut Vec<(Result<Row, String>, Diff)>| {
            match partition_output(
                input.iter().map(|(r, n)| (r.unpack(), *n)),
                &spec,
                &aggregates,
            ) {
                Ok(rows) => output.extend(rows.into_iter().map(|(r, n)| (Ok(r), n))),
                Err(m) => output.push((Err(m), 1)),
            }
        },
    );
    let results = map_updates(
        computed,
        "Over: unkey",
        |(_k, row): (PackedRow, Result<Row, String>), t, r, out| {
            out.push((row.map_err(|m| ExecutionError::eval("Over", m)), t, r))
        },
    );
    let (oks, errs) = split_results(results.inner, "Over: split errors");
    ctx.errs.push(errs);
    oks
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_compiler::{AggFunc, Datum};

    fn spec(preceding: u64) -> OverSpec {
        OverSpec {
            partition_by: vec![0],
            order_by: vec![SortKey {
                column: 1,
                descending: false,
                nulls_first: false,
            }],
            aggs: vec![
                AggregateCall {
                    func: AggFunc::Sum,
                    arg: Some(2),
                    distinct: false,
                    ty: SqlType::BigInt,
                },
                AggregateCall {
                    func: AggFunc::Count,
                    arg: None,
                    distinct: false,
                    ty: SqlType::BigInt,
                },
            ],
            preceding,
            input_types: vec![SqlType::BigInt; 3],
        }
    }

    fn row(p: i64, o: i64, v: i64) -> Row {
        vec![Datum::Int(p), Datum::Int(o), Datum::Int(v)]
    }

    #[test]
    fn each_row_gets_the_aggregates_of_itself_and_the_rows_before_it() {
        let s = spec(1);
        let a = Aggregates::new(&s.aggs, &s.input_types);
        // Out of order, one row twice: frames follow the ORDER BY, copies count apart.
        let input = vec![(row(1, 3, 30), 1), (row(1, 1, 10), 2), (row(1, 2, 20), 1)];
        let out = partition_output(input.into_iter(), &s, &a).unwrap();
        let with = |r: Row, sum: i64, n: i64| {
            let mut r = r;
            r.extend([Datum::Int(sum), Datum::Int(n)]);
            r
        };
        let want: BTreeMap<Row, Diff> = [
            (with(row(1, 1, 10), 10, 1), 1),
            (with(row(1, 1, 10), 20, 2), 1),
            (with(row(1, 2, 20), 30, 2), 1),
            (with(row(1, 3, 30), 50, 2), 1),
        ]
        .into_iter()
        .collect();
        assert_eq!(out, want);
    }
}
