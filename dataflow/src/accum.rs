//! Aggregate accumulators: [`AggregateCall`]s computed from a group's value multiset.
//!
//! Both `Reduce` (differential reduce, which hands its logic the group's whole
//! accumulated input) and `WindowAggregate` (which keeps a multiset per open window)
//! feed [`Aggregates::compute`] a multiset of *argument rows*: one datum per aggregate
//! (its argument, or NULL for `COUNT(*)`), each with a positive multiplicity. Values
//! are visited in sorted order, so DOUBLE sums do not depend on arrival order or on
//! the number of workers; `DISTINCT` drops repeated values; `MIN`/`MAX` survive
//! retractions because nothing is ever "subtracted".

use rustc_hash::FxHashMap;
use sluice_catalogs::SqlType;
use sluice_compiler::{AggFunc, AggStrategy, AggregateCall, Datum, Row, F64};
use std::collections::BTreeMap;

/// The aggregates of one operator, ready to evaluate.
#[derive(Clone, Debug)]
pub(crate) struct Aggregates {
    calls: Vec<AggregateCall>,
    /// Type of each call's argument (`None` for `COUNT(*)`).
    arg_types: Vec<Option<SqlType>>,
}

impl Aggregates {
    /// Aggregates `calls` over an input whose columns have `input_types`.
    pub(crate) fn new(calls: &[AggregateCall], input_types: &[SqlType]) -> Self {
        Aggregates {
            calls: calls.to_vec(),
            arg_types: calls
                .iter()
                .map(|c| c.arg.and_then(|a| input_types.get(a).copied()))
                .collect(),
        }
    }

    /// The argument row of one input row: one datum per aggregate.
    pub(crate) fn arguments(&self, row: &[Datum]) -> Row {
        self.calls
            .iter()
            .map(|c| match c.arg {
                Some(a) => row.get(a).cloned().unwrap_or(Datum::Null),
                None => Datum::Null,
            })
            .collect()
    }

    /// The aggregate values over a multiset of argument rows (as made by
    /// [`Aggregates::arguments`]); entries with a non-positive count are ignored.
    pub(crate) fn compute<'a>(
        &self,
        values: impl Iterator<Item = (&'a Row, isize)> + Clone,
    ) -> Result<Row, String> {
        self.calls
            .iter()
            .enumerate()
            .map(|(i, call)| {
                let mut vals: Vec<(&Datum, i128)> = values
                    .clone()
                    .filter(|(_, n)| *n > 0)
                    .filter_map(|(row, n)| row.get(i).map(|d| (d, n as i128)))
                    .filter(|(d, _)| call.arg.is_none() || !d.is_null())
                    .collect();
                vals.sort_by(|a, b| a.0.cmp(b.0));
                // One entry per value (with its total count), so that a DOUBLE sum
                // depends only on the multiset of values: the same as the `Ordered`
                // state's.
                vals.dedup_by(|next, kept| {
                    let same = next.0 == kept.0;
                    if same {
                        kept.1 += next.1;
                    }
                    same
                });
                if call.distinct {
                    vals.iter_mut().for_each(|v| v.1 = 1);
                }
                aggregate(call, self.arg_types[i], &vals)
            })
            .collect()
    }
}

/// The running state of one aggregate for an operator that sees its input row by row
/// (`WindowAggregate`) and never needs the values again: O(1) per row instead of a
/// multiset entry. Only order-independent, exact states exist, so the result equals
/// [`Aggregates::compute`] over the same multiset (for aggregates whose `AggStrategy` is `Accumulate`).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum Running {
    /// `COUNT(*)` / `COUNT(x)`: rows (non-NULL x) seen, net of retractions.
    Count(i128),
    /// `SUM`/`AVG` of integers, intervals or DECIMALs: the exact sum and how many
    /// non-NULL values it holds.
    Sum {
        /// Exact sum (unscaled for DECIMAL).
        sum: i128,
        /// Non-NULL values summed.
        n: i128,
    },
    /// `MIN` over an append-only input.
    Min(Option<Datum>),
    /// `MAX` over an append-only input.
    Max(Option<Datum>),
}

impl Aggregates {
    /// Fresh running states, one per aggregate (only meaningful when every aggregate's
    /// `AggStrategy` is `Accumulate`).
    pub(crate) fn running(&self) -> Vec<Running> {
        self.calls
            .iter()
            .map(|c| match c.func {
                AggFunc::Count => Running::Count(0),
                AggFunc::Sum | AggFunc::Avg => Running::Sum { sum: 0, n: 0 },
                AggFunc::Min => Running::Min(None),
                AggFunc::Max => Running::Max(None),
            })
            .collect()
    }

    /// Fold one input row (with multiplicity `diff`) into the running states.
    pub(crate) fn update(
        &self,
        states: &mut [Running],
        row: &[Datum],
        diff: isize,
    ) -> Result<(), String> {
        for (call, state) in self.calls.iter().zip(states.iter_mut()) {
            let value = call.arg.and_then(|a| row.get(a)).unwrap_or(&Datum::Null);
            if call.arg.is_some() && value.is_null() {
                continue;
            }
            state.apply(value, diff as i128)?;
        }
        Ok(())
    }

    /// Merges the running states `other` into `states` (of the same aggregates): the
    /// states of the union of both inputs, as if `update` had seen every row of both.
    pub(crate) fn merge(&self, states: &mut [Running], other: &[Running]) -> Result<(), String> {
        if states.len() != other.len() {
            return Err("merging running states of different aggregates".to_string());
        }
        for (state, o) in states.iter_mut().zip(other) {
            match (state, o) {
                (Running::Count(a), Running::Count(b)) => *a += b,
                (Running::Sum { sum, n }, Running::Sum { sum: s, n: m }) => {
                    *sum = sum.checked_add(*s).ok_or("overflow in SUM")?;
                    *n += m;
                }
                (Running::Min(a), Running::Min(Some(b))) => {
                    if a.as_ref().is_none_or(|cur| b < cur) {
                        *a = Some(b.clone());
                    }
                }
                (Running::Max(a), Running::Max(Some(b))) => {
                    if a.as_ref().is_none_or(|cur| b > cur) {
                        *a = Some(b.clone());
                    }
                }
                (Running::Min(_), Running::Min(None)) | (Running::Max(_), Running::Max(None)) => {}
                _ => return Err("merging running states of different aggregates".to_string()),
            }
        }
        Ok(())
    }

    /// The aggregate values of running states.
    pub(crate) fn finish(&self, states: &[Running]) -> Result<Row, String> {
        self.calls
            .iter()
            .zip(&self.arg_types)
            .zip(states)
            .map(|((call, ty), state)| state.value(call, *ty))
            .collect()
    }
}

impl Running {
    /// Fold one value (non-NULL, or any for `COUNT(*)`) with multiplicity `n`.
    pub(crate) fn apply(&mut self, value: &Datum, n: i128) -> Result<(), String> {
        if n < 0 && matches!(self, Running::Min(_) | Running::Max(_)) {
            return Err("a MIN/MAX running state received a retraction".to_string());
        }
        match self {
            Running::Count(c) => *c += n,
            Running::Sum { sum, n: count } => {
                let v = match value {
                    Datum::Int(v) | Datum::Interval(v) => i128::from(*v),
                    Datum::Decimal(v) => *v,
                    other => return Err(format!("cannot sum the value {other}")),
                };
                *sum = v
                    .checked_mul(n)
                    .and_then(|d| sum.checked_add(d))
                    .ok_or("overflow in SUM")?;
                *count += n;
            }
            Running::Min(m) => {
                if m.as_ref().is_none_or(|cur| value < cur) {
                    *m = Some(value.clone());
                }
            }
            Running::Max(m) => {
                if m.as_ref().is_none_or(|cur| value > cur) {
                    *m = Some(value.clone());
                }
            }
        }
        Ok(())
    }

    /// The aggregate value of `call` (argument type `ty`) this state holds.
    pub(crate) fn value(&self, call: &AggregateCall, ty: Option<SqlType>) -> Result<Datum, String> {
        match self {
            Running::Count(c) => i64::try_from(*c)
                .map(Datum::Int)
                .map_err(|_| "COUNT overflow".to_string()),
            Running::Min(m) | Running::Max(m) => Ok(m.clone().unwrap_or(Datum::Null)),
            Running::Sum { n, .. } if *n <= 0 => Ok(Datum::Null),
            Running::Sum { sum, n } => match (call.func, ty) {
                (AggFunc::Avg, Some(SqlType::Decimal { scale, .. })) => Ok(Datum::Float(F64(*sum
                    as f64
                    / 10f64.powi(i32::from(scale))
                    / *n as f64))),
                (AggFunc::Avg, _) => Ok(Datum::Float(F64(*sum as f64 / *n as f64))),
                (_, Some(SqlType::Decimal { .. })) => {
                    if sum.abs() < DECIMAL_LIMIT {
                        Ok(Datum::Decimal(*sum))
                    } else {
                        Err("DECIMAL overflow in SUM".to_string())
                    }
                }
                (_, Some(SqlType::Interval)) => i64::try_from(*sum)
                    .map(Datum::Interval)
                    .map_err(|_| "INTERVAL overflow in SUM".to_string()),
                _ => i64::try_from(*sum)
                    .map(Datum::Int)
                    .map_err(|_| "BIGINT overflow in SUM".to_string()),
            },
        }
    }
}

impl Aggregates {
    /// The partial row of one input row (`sluice_compiler::partial`): its group
    /// columns, one row, and per aggregate the partial state of the row's value alone.
    /// What a pre-aggregation of a batch holding only this row would produce.
    pub(crate) fn partial_of_row(&self, row: &[Datum], group_by: &[usize]) -> Row {
        let mut out: Row = group_by
            .iter()
            .map(|&c| row.get(c).cloned().unwrap_or(Datum::Null))
            .collect();
        out.push(Datum::Int(1));
        for call in &self.calls {
            let value = call.arg.and_then(|a| row.get(a)).unwrap_or(&Datum::Null);
            let present = call.arg.is_none() || !value.is_null();
            match call.func {
                AggFunc::Count => out.push(Datum::Int(i64::from(present))),
                AggFunc::Sum | AggFunc::Avg => {
                    let sum = match value {
                        Datum::Int(v) | Datum::Interval(v) => i128::from(*v),
                        Datum::Decimal(v) => *v,
                        _ => 0,
                    };
                    out.push(Datum::Decimal(sum));
                    out.push(Datum::Int(i64::from(present)));
                }
                AggFunc::Min | AggFunc::Max => out.push(value.clone()),
            }
        }
        out
    }

    /// Folds a partial row's aggregate columns (`partial`: everything after its group
    /// columns and row count), with multiplicity `diff`, into running states: the
    /// states as if `update_states` had seen each row the partial row stands for.
    pub(crate) fn merge_partial(
        &self,
        states: &mut [AggState],
        partial: &[Datum],
        diff: isize,
    ) -> Result<(), String> {
        let mut cols = partial.iter();
        for (call, state) in self.calls.iter().zip(states.iter_mut()) {
            let AggState::Running(running) = state else {
                return Err("a pre-aggregated Reduce keeps only running states".to_string());
            };
            merge_one(call, running, &mut cols, diff as i128)?;
        }
        Ok(())
    }

    /// [`Aggregates::merge_partial`] into the running states of a window aggregate.
    pub(crate) fn merge_partial_running(
        &self,
        states: &mut [Running],
        partial: &[Datum],
        diff: isize,
    ) -> Result<(), String> {
        let mut cols = partial.iter();
        for (call, running) in self.calls.iter().zip(states.iter_mut()) {
            merge_one(call, running, &mut cols, diff as i128)?;
        }
        Ok(())
    }
}

/// Folds one aggregate's partial columns (taken from `cols`) into its running state.
fn merge_one(
    call: &AggregateCall,
    running: &mut Running,
    cols: &mut std::slice::Iter<'_, Datum>,
    n: i128,
) -> Result<(), String> {
    let int = |d: Option<&Datum>| match d {
        Some(Datum::Int(v)) => Ok(i128::from(*v)),
        other => Err(format!("a partial row holds {other:?} for a count")),
    };
    match (call.func, running) {
        (AggFunc::Count, Running::Count(c)) => *c += int(cols.next())? * n,
        (AggFunc::Sum | AggFunc::Avg, Running::Sum { sum, n: count }) => {
            let s = match cols.next() {
                Some(Datum::Decimal(v)) => *v,
                other => return Err(format!("a partial row holds {other:?} for a sum")),
            };
            *sum = s
                .checked_mul(n)
                .and_then(|d| sum.checked_add(d))
                .ok_or("overflow in SUM")?;
            *count += int(cols.next())? * n;
        }
        (AggFunc::Min | AggFunc::Max, running) => match cols.next() {
            Some(Datum::Null) => {}
            Some(v) => running.apply(v, n)?,
            None => return Err("a partial row is too short".to_string()),
        },
        _ => return Err("a partial row does not match its aggregates".to_string()),
    }
    Ok(())
}

/// How an operator's input rows reach its running states: one input row each, or one
/// partial row (`sluice_compiler::partial`) standing for a batch's rows of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fold {
    /// Rows as they are.
    Rows,
    /// Partial rows with `width` group columns.
    Partial {
        /// Group columns before the row count.
        width: usize,
    },
}

impl Fold {
    /// How many input rows `row` stands for.
    pub(crate) fn rows(self, row: &[Datum]) -> Result<isize, String> {
        match self {
            Fold::Rows => Ok(1),
            Fold::Partial { width } => match row.get(width) {
                Some(Datum::Int(n)) => Ok(*n as isize),
                other => Err(format!("a partial row holds {other:?} for its row count")),
            },
        }
    }

    /// Folds `row` (with multiplicity `diff`) into running states.
    pub(crate) fn fold(
        self,
        aggregates: &Aggregates,
        states: &mut [Running],
        row: &[Datum],
        diff: isize,
    ) -> Result<(), String> {
        match self {
            Fold::Rows => aggregates.update(states, row, diff),
            Fold::Partial { width } => aggregates.merge_partial_running(
                states,
                row.get(width + 1..).unwrap_or_default(),
                diff,
            ),
        }
    }
}

/// The state of one aggregate of a `Reduce`, of the kind its [`AggStrategy`] names.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) enum AggState {
    /// [`AggStrategy::Accumulate`].
    Running(Running),
    /// [`AggStrategy::Distinct`]: the net count of each distinct value, and the running
    /// state over the values whose count is positive.
    Distinct {
        /// Value → net count (entries at zero are removed). Fx-hashed: values are
        /// hashed once per input row, and SipHash was a tenth of Nexmark q16's CPU.
        /// Boxed, so that every `AggState` (most are running states) is 64 bytes, not 80.
        counts: Box<FxHashMap<Datum, i128>>,
        /// Over the values present.
        running: Running,
    },
    /// [`AggStrategy::Ordered`]: value → net count, in value order.
    Ordered(BTreeMap<Datum, i128>),
}

impl Aggregates {
    /// Fresh states for `strategies` (one per aggregate).
    pub(crate) fn states(&self, strategies: &[AggStrategy]) -> Vec<AggState> {
        self.running()
            .into_iter()
            .zip(strategies)
            .map(|(running, strategy)| match strategy {
                AggStrategy::Accumulate => AggState::Running(running),
                AggStrategy::Distinct => AggState::Distinct {
                    counts: Box::default(),
                    running,
                },
                AggStrategy::Ordered => AggState::Ordered(BTreeMap::new()),
            })
            .collect()
    }

    /// Fold one input row (with multiplicity `diff`) into `states`.
    pub(crate) fn update_states(
        &self,
        states: &mut [AggState],
        row: &[Datum],
        diff: isize,
    ) -> Result<(), String> {
        let n = diff as i128;
        for (call, state) in self.calls.iter().zip(states.iter_mut()) {
            let value = call.arg.and_then(|a| row.get(a)).unwrap_or(&Datum::Null);
            if call.arg.is_some() && value.is_null() {
                continue;
            }
            match state {
                AggState::Running(running) => running.apply(value, n)?,
                AggState::Distinct { counts, running } => {
                    // A value seen before is found without cloning it.
                    let (before, after) = match counts.get_mut(value) {
                        Some(count) => {
                            let before = *count;
                            *count += n;
                            (before, *count)
                        }
                        None => {
                            counts.insert(value.clone(), n);
                            (0, n)
                        }
                    };
                    if after == 0 {
                        counts.remove(value);
                    }
                    if before <= 0 && after > 0 {
                        running.apply(value, 1)?;
                    } else if before > 0 && after <= 0 {
                        running.apply(value, -1)?;
                    }
                }
                AggState::Ordered(values) => {
                    let count = values.entry(value.clone()).or_insert(0);
                    *count += n;
                    if *count == 0 {
                        values.remove(value);
                    }
                }
            }
        }
        Ok(())
    }

    /// The aggregate values of `states`: equal to [`Aggregates::compute`] over the
    /// multiset the states were folded from.
    pub(crate) fn finish_states(&self, states: &[AggState]) -> Result<Row, String> {
        self.calls
            .iter()
            .zip(&self.arg_types)
            .zip(states)
            .map(|((call, ty), state)| match state {
                AggState::Running(running) | AggState::Distinct { running, .. } => {
                    running.value(call, *ty)
                }
                AggState::Ordered(values) => {
                    let vals: Vec<(&Datum, i128)> = values
                        .iter()
                        .filter(|(_, n)| **n > 0)
                        .map(|(d, n)| (d, if call.distinct { 1 } else { *n }))
                        .collect();
                    aggregate(call, *ty, &vals)
                }
            })
            .collect()
    }
}

const DECIMAL_LIMIT: i128 = 10i128.pow(38);

fn aggregate(
    call: &AggregateCall,
    arg_ty: Option<SqlType>,
    vals: &[(&Datum, i128)],
) -> Result<Datum, String> {
    let count: i128 = vals.iter().map(|(_, n)| n).sum();
    match call.func {
        AggFunc::Count => i64::try_from(count)
            .map(Datum::Int)
            .map_err(|_| "COUNT overflow".to_string()),
        AggFunc::Min => Ok(vals
            .first()
            .map(|(d, _)| (*d).clone())
            .unwrap_or(Datum::Null)),
        AggFunc::Max => Ok(vals
            .last()
            .map(|(d, _)| (*d).clone())
            .unwrap_or(Datum::Null)),
        AggFunc::Sum | AggFunc::Avg if vals.is_empty() => Ok(Datum::Null),
        AggFunc::Sum => match sum(vals)? {
            Sum::Int(s) => i64::try_from(s)
                .map(|v| match arg_ty {
                    Some(SqlType::Interval) => Datum::Interval(v),
                    _ => Datum::Int(v),
                })
                .map_err(|_| "BIGINT overflow in SUM".to_string()),
            Sum::Decimal(s) => Ok(Datum::Decimal(s)),
            Sum::Float(f) => Ok(Datum::Float(F64(f))),
        },
        AggFunc::Avg => {
            let total = match sum(vals)? {
                Sum::Int(s) => s as f64,
                Sum::Float(f) => f,
                Sum::Decimal(s) => {
                    let scale = match arg_ty {
                        Some(SqlType::Decimal { scale, .. }) => i32::from(scale),
                        _ => 0,
                    };
                    s as f64 / 10f64.powi(scale)
                }
            };
            Ok(Datum::Float(F64(total / count as f64)))
        }
    }
}

enum Sum {
    Int(i128),
    Decimal(i128),
    Float(f64),
}

fn sum(vals: &[(&Datum, i128)]) -> Result<Sum, String> {
    let mut acc: Option<Sum> = None;
    for (d, n) in vals {
        acc = Some(match (acc, d) {
            (None, Datum::Int(v) | Datum::Interval(v)) => Sum::Int(i128::from(*v) * n),
            (Some(Sum::Int(a)), Datum::Int(v) | Datum::Interval(v)) => {
                Sum::Int(a + i128::from(*v) * n)
            }
            (None, Datum::Decimal(v)) => Sum::Decimal(mul_decimal(*v, *n)?),
            (Some(Sum::Decimal(a)), Datum::Decimal(v)) => Sum::Decimal(
                a.checked_add(mul_decimal(*v, *n)?)
                    .filter(|s| s.abs() < DECIMAL_LIMIT)
                    .ok_or("DECIMAL overflow in SUM")?,
            ),
            (None, Datum::Float(v)) => Sum::Float(v.0 * *n as f64),
            (Some(Sum::Float(a)), Datum::Float(v)) => Sum::Float(a + v.0 * *n as f64),
            (_, other) => return Err(format!("cannot sum the value {other}")),
        });
    }
    acc.ok_or_else(|| "empty sum".to_string())
}

fn mul_decimal(v: i128, n: i128) -> Result<i128, String> {
    v.checked_mul(n)
        .filter(|s| s.abs() < DECIMAL_LIMIT)
        .ok_or_else(|| "DECIMAL overflow in SUM".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(func: AggFunc, arg: Option<usize>, distinct: bool, ty: SqlType) -> AggregateCall {
        AggregateCall {
            func,
            arg,
            distinct,
            ty,
        }
    }

    #[test]
    fn all_functions_with_nulls_distinct_and_multiplicities() {
        let types = [SqlType::BigInt];
        let aggs = Aggregates::new(
            &[
                call(AggFunc::Count, None, false, SqlType::BigInt),
                call(AggFunc::Count, Some(0), false, SqlType::BigInt),
                call(AggFunc::Count, Some(0), true, SqlType::BigInt),
                call(AggFunc::Sum, Some(0), false, SqlType::BigInt),
                call(AggFunc::Sum, Some(0), true, SqlType::BigInt),
                call(AggFunc::Avg, Some(0), false, SqlType::Double),
                call(AggFunc::Min, Some(0), false, SqlType::BigInt),
                call(AggFunc::Max, Some(0), false, SqlType::BigInt),
            ],
            &types,
        );
        let a = aggs.arguments(&[Datum::Int(2)]);
        let b = aggs.arguments(&[Datum::Int(5)]);
        let n = aggs.arguments(&[Datum::Null]);
        let retracted = aggs.arguments(&[Datum::Int(100)]);
        let out = aggs
            .compute([(&a, 2), (&b, 1), (&n, 1), (&retracted, 0)].into_iter())
            .unwrap();
        assert_eq!(
            out,
            vec![
                Datum::Int(4),
                Datum::Int(3),
                Datum::Int(2),
                Datum::Int(9),
                Datum::Int(7),
                Datum::Float(F64(3.0)),
                Datum::Int(2),
                Datum::Int(5),
            ]
        );
        // Only NULLs: SUM/AVG/MIN/MAX are NULL, COUNT(x) is 0, COUNT(*) counts rows.
        let out = aggs.compute([(&n, 3)].into_iter()).unwrap();
        assert_eq!(out[0], Datum::Int(3));
        assert_eq!(out[1], Datum::Int(0));
        assert!(out[3..].iter().all(Datum::is_null));
    }

    #[test]
    fn decimal_sum_is_exact_and_overflow_is_an_error() {
        let dec = SqlType::Decimal {
            precision: 38,
            scale: 2,
        };
        let aggs = Aggregates::new(
            &[
                call(AggFunc::Sum, Some(0), false, dec),
                call(AggFunc::Avg, Some(0), false, SqlType::Double),
            ],
            &[dec],
        );
        let a = aggs.arguments(&[Datum::Decimal(10)]);
        let b = aggs.arguments(&[Datum::Decimal(25)]);
        let out = aggs.compute([(&a, 1), (&b, 1)].into_iter()).unwrap();
        assert_eq!(out, vec![Datum::Decimal(35), Datum::Float(F64(0.175))]);
        let big = aggs.arguments(&[Datum::Decimal(DECIMAL_LIMIT - 1)]);
        assert!(aggs.compute([(&big, 2)].into_iter()).is_err());
        let ints = Aggregates::new(
            &[call(AggFunc::Sum, Some(0), false, SqlType::BigInt)],
            &[SqlType::BigInt],
        );
        let m = ints.arguments(&[Datum::Int(i64::MAX)]);
        assert!(ints.compute([(&m, 2)].into_iter()).is_err());
    }

    #[test]
    fn running_states_equal_the_multiset_computation() {
        let types = [
            SqlType::BigInt,
            SqlType::Decimal {
                precision: 10,
                scale: 2,
            },
        ];
        let calls = [
            call(AggFunc::Count, None, false, SqlType::BigInt),
            call(AggFunc::Count, Some(0), false, SqlType::BigInt),
            call(AggFunc::Sum, Some(0), false, SqlType::BigInt),
            call(AggFunc::Avg, Some(0), false, SqlType::Double),
            call(
                AggFunc::Sum,
                Some(1),
                false,
                SqlType::Decimal {
                    precision: 38,
                    scale: 2,
                },
            ),
            call(AggFunc::Avg, Some(1), false, SqlType::Double),
            call(AggFunc::Min, Some(0), false, SqlType::BigInt),
            call(
                AggFunc::Max,
                Some(1),
                false,
                SqlType::Decimal {
                    precision: 10,
                    scale: 2,
                },
            ),
        ];
        let aggs = Aggregates::new(&calls, &types);
        let all_accumulate = |append_only| {
            sluice_compiler::lower::agg_strategies(&calls, &types, append_only)
                .iter()
                .all(|s| *s == sluice_compiler::AggStrategy::Accumulate)
        };
        assert!(all_accumulate(true));
        assert!(!all_accumulate(false), "MIN/MAX need an append-only input");
        let inputs: Vec<Row> = (0..50i64)
            .map(|i| {
                vec![
                    if i % 7 == 0 {
                        Datum::Null
                    } else {
                        Datum::Int((i * 37) % 11 - 5)
                    },
                    if i % 5 == 0 {
                        Datum::Null
                    } else {
                        Datum::Decimal(i128::from(i) * 125 - 900)
                    },
                ]
            })
            .collect();
        let mut states = aggs.running();
        let mut multiset: std::collections::BTreeMap<Row, isize> = Default::default();
        for row in &inputs {
            aggs.update(&mut states, row, 1).unwrap();
            *multiset.entry(aggs.arguments(row)).or_default() += 1;
        }
        let want = aggs.compute(multiset.iter().map(|(r, n)| (r, *n))).unwrap();
        assert_eq!(aggs.finish(&states).unwrap(), want);
        // Merging the states of any split of the input gives the same result.
        for split in [0, 1, 17, 49, 50] {
            let (mut left, mut right) = (aggs.running(), aggs.running());
            for row in &inputs[..split] {
                aggs.update(&mut left, row, 1).unwrap();
            }
            for row in &inputs[split..] {
                aggs.update(&mut right, row, 1).unwrap();
            }
            aggs.merge(&mut right, &left).unwrap();
            assert_eq!(aggs.finish(&right).unwrap(), want, "split at {split}");
        }
        // All-NULL input: SUM/AVG/MIN/MAX are NULL, COUNT(x) is 0, as in the multiset path.
        let mut states = aggs.running();
        aggs.update(&mut states, &[Datum::Null, Datum::Null], 1)
            .unwrap();
        let mut multiset: std::collections::BTreeMap<Row, isize> = Default::default();
        multiset.insert(aggs.arguments(&[Datum::Null, Datum::Null]), 1);
        assert_eq!(
            aggs.finish(&states).unwrap(),
            aggs.compute(multiset.iter().map(|(r, n)| (r, *n))).unwrap()
        );
        // Double sums are order-dependent: never a running state.
        assert_eq!(
            sluice_compiler::lower::agg_strategies(
                &[call(AggFunc::Sum, Some(0), false, SqlType::Double)],
                &[SqlType::Double],
                true
            ),
            [sluice_compiler::AggStrategy::Ordered]
        );
    }

    /// Every strategy, folded update by update (insertions and retractions in any
    /// order), equals the from-scratch multiset computation after every update.
    #[test]
    fn strategy_states_equal_the_multiset_computation_after_every_update() {
        use proptest::prelude::*;
        let types = [SqlType::BigInt, SqlType::Double];
        let mut calls = Vec::new();
        for distinct in [false, true] {
            for (arg, ty) in [(0, SqlType::BigInt), (1, SqlType::Double)] {
                calls.push(call(AggFunc::Count, Some(arg), distinct, SqlType::BigInt));
                calls.push(call(AggFunc::Sum, Some(arg), distinct, ty));
                calls.push(call(AggFunc::Avg, Some(arg), distinct, SqlType::Double));
                calls.push(call(AggFunc::Min, Some(arg), distinct, ty));
                calls.push(call(AggFunc::Max, Some(arg), distinct, ty));
            }
        }
        calls.push(call(AggFunc::Count, None, false, SqlType::BigInt));
        let aggs = Aggregates::new(&calls, &types);
        let value = prop_oneof![Just(Datum::Null), (-4i64..4).prop_map(Datum::Int),];
        let double = prop_oneof![
            Just(Datum::Null),
            (-4i64..4).prop_map(|v| Datum::Float(F64(v as f64 * 0.1))),
        ];
        let update = (value, double, prop_oneof![Just(1isize), Just(-1), Just(2)]);
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 64,
            ..ProptestConfig::default()
        });
        runner
            .run(&proptest::collection::vec(update, 1..40), |updates| {
                for append_only in [false, true] {
                    let strategies =
                        sluice_compiler::lower::agg_strategies(&calls, &types, append_only);
                    let mut states = aggs.states(&strategies);
                    let mut multiset: BTreeMap<Row, isize> = BTreeMap::new();
                    for (a, b, diff) in &updates {
                        // An append-only input never retracts.
                        let diff = if append_only { diff.abs() } else { *diff };
                        let row = vec![a.clone(), b.clone()];
                        // Only what is there can be retracted.
                        let present = multiset.get(&aggs.arguments(&row)).copied();
                        if diff < 0 && present.unwrap_or(0) < -diff {
                            continue;
                        }
                        aggs.update_states(&mut states, &row, diff).unwrap();
                        *multiset.entry(aggs.arguments(&row)).or_insert(0) += diff;
                        let expected = aggs.compute(multiset.iter().map(|(r, n)| (r, *n)));
                        let got = aggs.finish_states(&states);
                        prop_assert_eq!(got, expected);
                    }
                }
                Ok(())
            })
            .unwrap();
    }
}

#[cfg(test)]
mod size {
    /// A group keeps one state per aggregate: the common running state is not padded
    /// to the size of the rarer distinct one.
    #[test]
    fn an_aggregate_state_is_64_bytes() {
        assert_eq!(std::mem::size_of::<super::AggState>(), 64);
    }
}
