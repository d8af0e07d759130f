//! GPU support of expressions and aggregates: what the CUDA kernels of `sluice-gpu`
//! compute with exactly the row evaluator's ([`crate::eval`]) semantics, and, for what
//! they do not, why (a short reason, for EXPLAIN).
//!
//! Two places ask the same functions, so that they always agree: the compiler's
//! placement (`sluice_compiler::placement`, printed by `EXPLAIN PHYSICAL` as
//! `device=gpu-eligible` or `device=cpu(<reason>)`) and the GPU kernels themselves
//! (`sluice-gpu`), which take a stage only when these say it is supported.
//!
//! What the GPU supports (everything else runs on the CPU kernels):
//!
//! * types `BOOLEAN`, `INT`, `BIGINT`, `DOUBLE`, `DATE`, `TIMESTAMP(3)` (fixed-width
//!   Arrow columns with validity bitmaps; no strings, decimals or intervals);
//! * column references and literals; comparisons between operands of one type;
//!   `AND`, `OR`, `NOT` (Kleene logic); `IS [NOT] NULL`; `[NOT] IN (list)`;
//! * `+ - * / %` and unary `-` on `INT`, `BIGINT` or `DOUBLE` operands of one type
//!   (integer overflow raises an error flag and the batch is recomputed on the CPU,
//!   which then raises the exact error); the widening casts `INT → BIGINT`,
//!   `INT → DOUBLE`, `BIGINT → DOUBLE`.
//!
//! Aggregates: group-by with `COUNT`, `SUM`, `MIN`, `MAX`, `AVG` (not `DISTINCT`) on
//! `INT`/`BIGINT`/`DATE`/`TIMESTAMP` keys (one key column) or a `VARCHAR` key (through
//! dictionary codes) and integer arguments. Joins: the probe of an equi-join on one
//! integer key.

use crate::expr::{AggFunc, AggregateCall, BinaryOp, ScalarExpr};
use sluice_catalogs::SqlType;

/// True for a SQL type the GPU kernels hold in a fixed-width column.
pub fn gpu_type(t: SqlType) -> bool {
    matches!(
        t,
        SqlType::Boolean
            | SqlType::Int
            | SqlType::BigInt
            | SqlType::Double
            | SqlType::Date
            | SqlType::Timestamp
    )
}

/// True for a type the GPU does arithmetic on.
fn gpu_numeric(t: SqlType) -> bool {
    matches!(t, SqlType::Int | SqlType::BigInt | SqlType::Double)
}

/// `Ok(())` when the GPU kernels evaluate `e` (over columns of `types`) exactly as the
/// row evaluator does; otherwise the first unsupported construct, for EXPLAIN.
pub fn expr_gpu_support(e: &ScalarExpr, types: &[SqlType]) -> Result<(), String> {
    let ty = e.ty(types);
    if !gpu_type(ty) {
        return Err(format!("type {ty}"));
    }
    match e {
        ScalarExpr::Column(i) => match types.get(*i) {
            Some(t) if gpu_type(*t) => Ok(()),
            Some(t) => Err(format!("type {t}")),
            None => Err("bad column".to_string()),
        },
        ScalarExpr::Literal(..) => Ok(()),
        ScalarExpr::Binary { op, left, right } => {
            let (lt, rt) = (left.ty(types), right.ty(types));
            match op {
                BinaryOp::And | BinaryOp::Or => {
                    if lt != SqlType::Boolean || rt != SqlType::Boolean {
                        return Err(format!("{} on {lt}, {rt}", op.symbol()));
                    }
                }
                op if op.is_comparison() => {
                    if lt != rt || !gpu_type(lt) {
                        return Err(format!("{lt} {} {rt}", op.symbol()));
                    }
                }
                BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => {
                    if lt != rt || !gpu_numeric(lt) || ty != lt {
                        return Err(format!("{lt} {} {rt}", op.symbol()));
                    }
                }
                other => return Err(format!("operator {}", other.symbol())),
            }
            expr_gpu_support(left, types)?;
            expr_gpu_support(right, types)
        }
        ScalarExpr::Not(x) => {
            if x.ty(types) != SqlType::Boolean {
                return Err("NOT on a non-boolean".to_string());
            }
            expr_gpu_support(x, types)
        }
        ScalarExpr::Negate(x) => {
            if !gpu_numeric(x.ty(types)) {
                return Err(format!("-{}", x.ty(types)));
            }
            expr_gpu_support(x, types)
        }
        ScalarExpr::IsNull { expr, .. } => expr_gpu_support(expr, types),
        ScalarExpr::Cast { expr, to } => {
            let from = expr.ty(types);
            let ok = from == *to
                || matches!(
                    (from, *to),
                    (SqlType::Int, SqlType::BigInt | SqlType::Double)
                        | (SqlType::BigInt, SqlType::Double)
                );
            if !ok {
                return Err(format!("CAST({from} AS {to})"));
            }
            expr_gpu_support(expr, types)
        }
        ScalarExpr::InList { expr, list, .. } => {
            let t = expr.ty(types);
            if list.iter().any(|x| x.ty(types) != t) {
                return Err("IN list of mixed types".to_string());
            }
            expr_gpu_support(expr, types)?;
            list.iter().try_for_each(|x| expr_gpu_support(x, types))
        }
        ScalarExpr::Case { .. } => Err("CASE".to_string()),
        ScalarExpr::Coalesce(_) => Err("COALESCE".to_string()),
        ScalarExpr::Like { .. } => Err("LIKE".to_string()),
        ScalarExpr::Call { func, .. } => Err(format!("{func:?}").to_uppercase()),
    }
}

/// Eligibility of a fused `Calc` (predicate, then projection) over `types`: the
/// predicate, if any, must be supported, and the GPU must have something to compute
/// (the predicate or a supported computed projection). Plain column references are
/// passed through on the host; unsupported projections are evaluated by the CPU
/// kernels over the kept rows (delegation per expression). The runtime uses this same
/// function, so EXPLAIN and placement agree.
pub fn calc_gpu_support(
    predicate: Option<&ScalarExpr>,
    project: Option<&[ScalarExpr]>,
    types: &[SqlType],
) -> Result<(), String> {
    if let Some(p) = predicate {
        return expr_gpu_support(p, types);
    }
    let mut first_err = None;
    for e in project.unwrap_or_default() {
        if matches!(e, ScalarExpr::Column(_)) {
            continue;
        }
        match expr_gpu_support(e, types) {
            Ok(()) => return Ok(()),
            Err(why) => {
                first_err.get_or_insert(why);
            }
        }
    }
    Err(first_err.unwrap_or_else(|| "columns only".to_string()))
}

/// True for a type the GPU group-by takes as a key (integers, or strings through
/// dictionary codes).
pub fn gpu_key_type(t: SqlType) -> bool {
    matches!(
        t,
        SqlType::Int | SqlType::BigInt | SqlType::Date | SqlType::Timestamp | SqlType::Varchar
    )
}

/// Eligibility of a hash group-by with these aggregates over columns of `types`.
pub fn aggregate_gpu_support(
    group_by: &[usize],
    aggs: &[AggregateCall],
    types: &[SqlType],
) -> Result<(), String> {
    if group_by.len() != 1 {
        return Err(format!("{} group keys", group_by.len()));
    }
    let key = types.get(group_by[0]).copied().unwrap_or(SqlType::Null);
    if !gpu_key_type(key) {
        return Err(format!("key type {key}"));
    }
    for a in aggs {
        if a.distinct {
            return Err("DISTINCT".to_string());
        }
        let Some(arg) = a.arg else {
            continue;
        };
        let t = types.get(arg).copied().unwrap_or(SqlType::Null);
        let ok = match a.func {
            AggFunc::Count => true,
            AggFunc::Sum | AggFunc::Avg => matches!(t, SqlType::Int | SqlType::BigInt),
            AggFunc::Min | AggFunc::Max => matches!(
                t,
                SqlType::Int | SqlType::BigInt | SqlType::Date | SqlType::Timestamp
            ),
        };
        if !ok {
            return Err(format!("{:?}({t})", a.func).to_uppercase());
        }
    }
    Ok(())
}

/// Eligibility of a join probe on these keys.
pub fn join_gpu_support(
    left_keys: &[ScalarExpr],
    right_keys: &[ScalarExpr],
    left: &[SqlType],
    right: &[SqlType],
) -> Result<(), String> {
    if left_keys.len() != 1 || right_keys.len() != 1 {
        return Err(format!("{} join keys", left_keys.len()));
    }
    let (l, r) = (left_keys[0].ty(left), right_keys[0].ty(right));
    let int = |t| {
        matches!(
            t,
            SqlType::Int | SqlType::BigInt | SqlType::Date | SqlType::Timestamp
        )
    };
    if l != r || !int(l) {
        return Err(format!("key type {l}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::Datum;

    fn col(i: usize) -> ScalarExpr {
        ScalarExpr::Column(i)
    }

    #[test]
    fn supported_and_unsupported_expressions() {
        let types = [
            SqlType::BigInt,
            SqlType::Int,
            SqlType::Varchar,
            SqlType::Double,
        ];
        let gt = ScalarExpr::binary(
            BinaryOp::Gt,
            col(0),
            ScalarExpr::Literal(Datum::Int(5), SqlType::BigInt),
        );
        assert_eq!(expr_gpu_support(&gt, &types), Ok(()));
        let and = ScalarExpr::binary(BinaryOp::And, gt.clone(), ScalarExpr::Not(Box::new(gt)));
        assert_eq!(expr_gpu_support(&and, &types), Ok(()));
        let s = ScalarExpr::binary(BinaryOp::Eq, col(2), col(2));
        assert_eq!(
            expr_gpu_support(&s, &types),
            Err("VARCHAR = VARCHAR".into())
        );
        let mixed = ScalarExpr::binary(BinaryOp::Add, col(0), col(1));
        assert!(expr_gpu_support(&mixed, &types).is_err());
        // Passed-through columns of any type do not block a Calc, but give it no work.
        let g = ScalarExpr::binary(BinaryOp::Gt, col(0), col(0));
        assert_eq!(calc_gpu_support(Some(&g), Some(&[col(2)]), &types), Ok(()));
        assert_eq!(
            calc_gpu_support(None, Some(&[col(2)]), &types),
            Err("columns only".into())
        );
        let s2 = ScalarExpr::binary(BinaryOp::Eq, col(2), col(2));
        assert_eq!(calc_gpu_support(None, Some(&[s2, g]), &types), Ok(()));
    }

    #[test]
    fn aggregate_and_join_support() {
        let types = [SqlType::Varchar, SqlType::BigInt, SqlType::Double];
        let call = |func, arg| AggregateCall {
            func,
            arg,
            distinct: false,
            ty: SqlType::BigInt,
        };
        assert_eq!(
            aggregate_gpu_support(
                &[0],
                &[call(AggFunc::Sum, Some(1)), call(AggFunc::Count, None)],
                &types
            ),
            Ok(())
        );
        assert!(aggregate_gpu_support(&[0], &[call(AggFunc::Sum, Some(2))], &types).is_err());
        assert!(aggregate_gpu_support(&[0, 1], &[], &types).is_err());
        assert_eq!(
            join_gpu_support(&[col(1)], &[col(1)], &types, &types),
            Ok(())
        );
        assert!(join_gpu_support(&[col(0)], &[col(0)], &types, &types).is_err());
    }
}
