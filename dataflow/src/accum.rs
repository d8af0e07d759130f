//! Aggregate accumulators: [`AggregateCall`]s computed from a group's value multiset.
//!
//! Both `Reduce` (differential reduce, which hands its logic the group's whole
//! accumulated input) and `WindowAggregate` (which keeps a multiset per open window)
//! feed [`Aggregates::compute`] a multiset of *argument rows*: one datum per aggregate
//! (its argument, or NULL for `COUNT(*)`), each with a positive multiplicity. Values
//! are visited in sorted order, so DOUBLE sums do not depend on arrival order or on
//! the number of workers; `DISTINCT` drops repeated values; `MIN`/`MAX` survive
//! retractions because nothing is ever "subtracted".

use sluice_catalogs::SqlType;
use sluice_compiler::{AggFunc, AggregateCall, Datum, Row, F64};

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
                if call.distinct {
                    vals.dedup_by(|a, b| a.0 == b.0);
                    vals.iter_mut().for_each(|v| v.1 = 1);
                }
                aggregate(call, self.arg_types[i], &vals)
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
}
