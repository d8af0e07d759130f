//! Parquet row-group pruning: the part of filter push-down that saves I/O.
//!
//! A pushed-down conjunct of the form `column op literal` (op one of `= < <= > >=`, either
//! side) is checked against each row group's column statistics before the row group
//! becomes a split; a row group whose min/max prove that no row can satisfy it is never
//! fetched. Only statistics whose meaning is unambiguous are used: BIGINT/INT/DATE from
//! integer statistics, VARCHAR from byte-array statistics (UTF-8 orders bytewise, as
//! Sluice compares strings), TIMESTAMP(3) from millisecond timestamps. DOUBLE is not
//! used (NaN is not in Parquet's statistics but is the largest DOUBLE in SQL order), nor
//! DECIMAL. Rows that survive pruning are still filtered exactly, batch by batch.

use parquet::basic::{LogicalType, TimeUnit};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::statistics::Statistics;
use sluice_catalogs::SqlType;
use sluice_expr::{BinaryOp, Datum, ScalarExpr};

/// One prunable conjunct: `column op value` (the column on the left).
#[derive(Clone, Debug)]
struct Bound {
    /// Projected column name.
    name: String,
    ty: SqlType,
    op: BinaryOp,
    value: Datum,
}

/// The prunable conjuncts of a source's pushed-down filters.
#[derive(Clone, Debug, Default)]
pub(crate) struct Pruner {
    bounds: Vec<Bound>,
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::LtEq => BinaryOp::GtEq,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::GtEq => BinaryOp::LtEq,
        other => other,
    }
}

impl Pruner {
    /// The prunable conjuncts of `filters`, which are over columns `names`/`types`.
    pub(crate) fn new(filters: &[ScalarExpr], names: &[String], types: &[SqlType]) -> Pruner {
        let mut bounds = Vec::new();
        for f in filters.iter().flat_map(|f| f.clone().conjuncts()) {
            let ScalarExpr::Binary { op, left, right } = f else {
                continue;
            };
            if !matches!(
                op,
                BinaryOp::Eq | BinaryOp::Lt | BinaryOp::LtEq | BinaryOp::Gt | BinaryOp::GtEq
            ) {
                continue;
            }
            let (col, value, op) = match (*left, *right) {
                (ScalarExpr::Column(c), ScalarExpr::Literal(v, _)) => (c, v, op),
                (ScalarExpr::Literal(v, _), ScalarExpr::Column(c)) => (c, v, flip(op)),
                _ => continue,
            };
            let (Some(name), Some(&ty)) = (names.get(col), types.get(col)) else {
                continue;
            };
            if value.is_null()
                || !matches!(
                    ty,
                    SqlType::Int
                        | SqlType::BigInt
                        | SqlType::Date
                        | SqlType::Varchar
                        | SqlType::Timestamp
                )
            {
                continue;
            }
            bounds.push(Bound {
                name: name.clone(),
                ty,
                op,
                value,
            });
        }
        Pruner { bounds }
    }

    /// False when row group `rg` of the file provably holds no row satisfying every
    /// conjunct; true when it may.
    pub(crate) fn may_match(&self, meta: &ParquetMetaData, rg: usize) -> bool {
        let Some(group) = meta.row_groups().get(rg) else {
            return true;
        };
        self.bounds.iter().all(|b| {
            let column = group.columns().iter().find(|c| {
                c.column_path().parts().len() == 1
                    && c.column_path().string().eq_ignore_ascii_case(&b.name)
            });
            let Some(column) = column else { return true };
            let millis = matches!(
                column.column_descr().logical_type_ref(),
                Some(LogicalType::Timestamp(t)) if t.unit == TimeUnit::MILLIS
            );
            match column.statistics().and_then(|s| min_max(s, b.ty, millis)) {
                Some((min, max)) => satisfiable(b.op, &min, &max, &b.value),
                None => true,
            }
        })
    }
}

/// The statistics' min and max as datums of `ty`, when they mean that.
fn min_max(stats: &Statistics, ty: SqlType, millis: bool) -> Option<(Datum, Datum)> {
    match (stats, ty) {
        (Statistics::Int32(s), SqlType::Int) => Some((
            Datum::Int((*s.min_opt()?).into()),
            Datum::Int((*s.max_opt()?).into()),
        )),
        (Statistics::Int32(s), SqlType::Date) => {
            Some((Datum::Date(*s.min_opt()?), Datum::Date(*s.max_opt()?)))
        }
        (Statistics::Int64(s), SqlType::BigInt) => {
            Some((Datum::Int(*s.min_opt()?), Datum::Int(*s.max_opt()?)))
        }
        (Statistics::Int64(s), SqlType::Timestamp) if millis => Some((
            Datum::Timestamp(*s.min_opt()?),
            Datum::Timestamp(*s.max_opt()?),
        )),
        (Statistics::ByteArray(s), SqlType::Varchar) => {
            let min = s.min_opt()?.as_utf8().ok()?.to_string();
            let max = s.max_opt()?.as_utf8().ok()?.to_string();
            Some((Datum::Str(min), Datum::Str(max)))
        }
        _ => None,
    }
}

/// Whether some value in `[min, max]` satisfies `value_in_column op v`.
fn satisfiable(op: BinaryOp, min: &Datum, max: &Datum, v: &Datum) -> bool {
    match op {
        BinaryOp::Eq => min <= v && v <= max,
        BinaryOp::Lt => min < v,
        BinaryOp::LtEq => min <= v,
        BinaryOp::Gt => max > v,
        BinaryOp::GtEq => max >= v,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_decide_satisfiability() {
        let (min, max) = (Datum::Int(10), Datum::Int(20));
        assert!(satisfiable(BinaryOp::Eq, &min, &max, &Datum::Int(10)));
        assert!(!satisfiable(BinaryOp::Eq, &min, &max, &Datum::Int(21)));
        assert!(!satisfiable(BinaryOp::Lt, &min, &max, &Datum::Int(10)));
        assert!(satisfiable(BinaryOp::LtEq, &min, &max, &Datum::Int(10)));
        assert!(!satisfiable(BinaryOp::Gt, &min, &max, &Datum::Int(20)));
        assert!(satisfiable(BinaryOp::GtEq, &min, &max, &Datum::Int(20)));
    }

    #[test]
    fn only_column_literal_comparisons_on_exact_types_prune() {
        let names = vec!["a".to_string(), "d".to_string()];
        let types = vec![SqlType::BigInt, SqlType::Double];
        let lit = |v| ScalarExpr::lit(Datum::Int(v), SqlType::BigInt);
        let filters = vec![
            // 5 < a, flipped to a > 5
            ScalarExpr::binary(BinaryOp::Lt, lit(5), ScalarExpr::col(0)),
            // DOUBLE column: not used
            ScalarExpr::binary(
                BinaryOp::Gt,
                ScalarExpr::col(1),
                ScalarExpr::lit(Datum::Float(sluice_expr::F64(1.0)), SqlType::Double),
            ),
            // not a column-literal comparison
            ScalarExpr::binary(BinaryOp::NotEq, ScalarExpr::col(0), lit(3)),
        ];
        let p = Pruner::new(&filters, &names, &types);
        assert_eq!(p.bounds.len(), 1);
        assert_eq!(p.bounds[0].op, BinaryOp::Gt);
    }
}
