//! Pre-aggregation of a `Reduce`'s input: the layout of *partial rows*.
//!
//! ```text
//! source ─▶ Arrow batches ─▶ Calc ─▶ PartialAggregate (per batch, columnar) ─▶ exchange by group ─▶ Reduce (merges partials)
//! ```
//!
//! The same holds for a TUMBLE or HOP `PhysicalPlan::WindowAggregate` whose
//! window columns are among its group columns: a partial row is then per (batch,
//! window or pane, group), and a late one counts as the rows it stands for.
//!
//! When every aggregate of a `PhysicalPlan::Reduce` keeps a running state
//! ([`AggStrategy::Accumulate`]: `COUNT`, exact `SUM`/`AVG`, `MIN`/`MAX` over an input
//! that never retracts) and its input is still columnar (a source and stateless stages),
//! the compiler's `lower` marks it `preaggregate`: each Arrow batch is grouped on the
//! worker that read it — by the columnar kernels, so on the GPU where placement says
//! so — and only one partial row per (batch, group) is exchanged, instead of one row
//! per input row.
//! Running states merge exactly (integer and DECIMAL sums are exact, `MIN`/`MAX` are
//! order-free), so the result equals the row-by-row `Reduce`'s.
//!
//! A partial row is the group columns, then the number of input rows, then per
//! aggregate ([`partial_columns`]):
//!
//! | aggregate | columns |
//! |---|---|
//! | `COUNT(*)`, `COUNT(x)` | rows (non-NULL `x`) counted — `BIGINT` |
//! | `SUM(x)`, `AVG(x)` | exact sum — `DECIMAL(38, 0)` (unscaled); non-NULL `x` summed — `BIGINT` |
//! | `MIN(x)`, `MAX(x)` | the least/greatest non-NULL `x`, NULL when none — `x`'s type |
//!
//! This module is the contract between the producer (`sluice_columnar`'s
//! `ColumnarKernels::partial_aggregate`) and the consumer (`sluice-dataflow`'s `Reduce`).

use crate::expr::{AggFunc, AggStrategy, AggregateCall};
use sluice_catalogs::SqlType;

/// The type of a partial sum: an exact, unscaled 128-bit integer.
pub const SUM_TYPE: SqlType = SqlType::Decimal {
    precision: 38,
    scale: 0,
};

/// The partial columns of one aggregate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartialColumns {
    /// `COUNT`: one count column.
    Count,
    /// `SUM`/`AVG`: the exact sum, then how many values it holds.
    Sum,
    /// `MIN`: the least value.
    Min,
    /// `MAX`: the greatest value.
    Max,
}

impl PartialColumns {
    /// How many columns of a partial row it takes.
    pub fn width(self) -> usize {
        match self {
            PartialColumns::Sum => 2,
            _ => 1,
        }
    }
}

/// The partial columns of each aggregate, in order.
pub fn partial_columns(aggs: &[AggregateCall]) -> Vec<PartialColumns> {
    aggs.iter()
        .map(|a| match a.func {
            AggFunc::Count => PartialColumns::Count,
            AggFunc::Sum | AggFunc::Avg => PartialColumns::Sum,
            AggFunc::Min => PartialColumns::Min,
            AggFunc::Max => PartialColumns::Max,
        })
        .collect()
}

/// The column types of a partial row (see the module docs).
pub fn partial_types(
    input_types: &[SqlType],
    group_by: &[usize],
    aggs: &[AggregateCall],
) -> Vec<SqlType> {
    let ty = |c: usize| input_types.get(c).copied().unwrap_or(SqlType::Null);
    let mut out: Vec<SqlType> = group_by.iter().map(|&c| ty(c)).collect();
    out.push(SqlType::BigInt);
    for (call, cols) in aggs.iter().zip(partial_columns(aggs)) {
        match cols {
            PartialColumns::Count => out.push(SqlType::BigInt),
            PartialColumns::Sum => {
                out.push(SUM_TYPE);
                out.push(SqlType::BigInt);
            }
            PartialColumns::Min | PartialColumns::Max => {
                out.push(call.arg.map_or(SqlType::Null, ty));
            }
        }
    }
    out
}

/// Whether a `Reduce` with these aggregates and strategies over an input of
/// `input_types` can merge pre-aggregated partial rows: every strategy is
/// `Accumulate`, no aggregate is `DISTINCT`, and no `MIN`/`MAX` is over a `DOUBLE` (the
/// columnar order of doubles tells `-0.0` from `0.0`, SQL's does not).
pub fn preaggregable(
    aggs: &[AggregateCall],
    strategies: &[AggStrategy],
    input_types: &[SqlType],
) -> bool {
    strategies.len() == aggs.len()
        && strategies.iter().all(|s| *s == AggStrategy::Accumulate)
        && aggs.iter().all(|a| {
            let ty = a.arg.and_then(|c| input_types.get(c).copied());
            !a.distinct
                && match a.func {
                    AggFunc::Count => true,
                    AggFunc::Sum | AggFunc::Avg => matches!(
                        ty,
                        Some(
                            SqlType::Int
                                | SqlType::BigInt
                                | SqlType::Interval
                                | SqlType::Decimal { .. }
                        )
                    ),
                    AggFunc::Min | AggFunc::Max => {
                        ty.is_some_and(|t| !matches!(t, SqlType::Double | SqlType::Null))
                    }
                }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(func: AggFunc, arg: Option<usize>) -> AggregateCall {
        AggregateCall {
            func,
            arg,
            distinct: false,
            ty: SqlType::BigInt,
        }
    }

    #[test]
    fn a_partial_row_is_keys_rows_then_each_aggregates_columns() {
        let types = [SqlType::BigInt, SqlType::Varchar, SqlType::Timestamp];
        let aggs = [
            call(AggFunc::Count, None),
            call(AggFunc::Avg, Some(0)),
            call(AggFunc::Max, Some(2)),
        ];
        assert_eq!(
            partial_types(&types, &[1], &aggs),
            vec![
                SqlType::Varchar,
                SqlType::BigInt,
                SqlType::BigInt,
                SUM_TYPE,
                SqlType::BigInt,
                SqlType::Timestamp
            ]
        );
    }

    #[test]
    fn only_running_states_without_double_extremes_merge() {
        let types = [SqlType::BigInt, SqlType::Double];
        let acc = [AggStrategy::Accumulate];
        assert!(preaggregable(&[call(AggFunc::Sum, Some(0))], &acc, &types));
        assert!(preaggregable(
            &[call(AggFunc::Count, Some(1))],
            &acc,
            &types
        ));
        assert!(!preaggregable(&[call(AggFunc::Max, Some(1))], &acc, &types));
        assert!(!preaggregable(
            &[call(AggFunc::Min, Some(0))],
            &[AggStrategy::Ordered],
            &types
        ));
        let distinct = AggregateCall {
            distinct: true,
            ..call(AggFunc::Count, Some(0))
        };
        assert!(!preaggregable(&[distinct], &acc, &types));
    }
}
