//! SQL type names to [`SqlType`], and the implicit coercion rules the binder applies so
//! that bound expressions satisfy the operand contract documented in [`sluice_expr::expr`].

use crate::error::{CompileError, Position};
use sluice_catalogs::SqlType;
use sluice_expr::datum::Datum;
use sluice_expr::expr::{BinaryOp, ScalarExpr};
use sqlparser::ast::{DataType, ExactNumberInfo};

/// The [`SqlType`] of a declared SQL type.
pub fn sql_type_of(dt: &DataType, pos: Option<Position>) -> Result<SqlType, CompileError> {
    let decimal = |info: &ExactNumberInfo| -> Result<SqlType, CompileError> {
        let (p, s) = match info {
            ExactNumberInfo::None => (10, 0),
            ExactNumberInfo::Precision(p) => (*p, 0),
            ExactNumberInfo::PrecisionAndScale(p, s) => {
                if *s < 0 {
                    return Err(CompileError::plan(
                        "DECIMAL scale must not be negative",
                        pos,
                    ));
                }
                (*p, *s as u64)
            }
        };
        if p == 0 || p > 38 || s > p {
            return Err(CompileError::plan(
                format!(
                    "invalid DECIMAL({p}, {s}): need 1 <= precision <= 38 and scale <= precision"
                ),
                pos,
            ));
        }
        Ok(SqlType::Decimal {
            precision: p as u8,
            scale: s as u8,
        })
    };
    Ok(match dt {
        DataType::Boolean | DataType::Bool => SqlType::Boolean,
        DataType::TinyInt(_)
        | DataType::SmallInt(_)
        | DataType::Int(_)
        | DataType::Integer(_)
        | DataType::Int32 => SqlType::Int,
        DataType::BigInt(_) | DataType::Int64 => SqlType::BigInt,
        DataType::Double(_) | DataType::Float(_) | DataType::Real | DataType::Float64 => {
            SqlType::Double
        }
        DataType::DoublePrecision => SqlType::Double,
        DataType::Decimal(info) | DataType::Numeric(info) | DataType::Dec(info) => decimal(info)?,
        DataType::Varchar(_)
        | DataType::Char(_)
        | DataType::Character(_)
        | DataType::CharVarying(_)
        | DataType::CharacterVarying(_)
        | DataType::Text
        | DataType::String(_) => SqlType::Varchar,
        DataType::Date => SqlType::Date,
        DataType::Timestamp(_, tz) => {
            if *tz != sqlparser::ast::TimezoneInfo::None
                && *tz != sqlparser::ast::TimezoneInfo::WithoutTimeZone
            {
                return Err(CompileError::unsupported(
                    format!("type {dt} is not supported (use TIMESTAMP(3))"),
                    pos,
                ));
            }
            SqlType::Timestamp
        }
        DataType::Datetime(_) => SqlType::Timestamp,
        DataType::Custom(name, _) => {
            return Err(CompileError::plan(format!("unknown type {name}"), pos))
        }
        other => {
            return Err(CompileError::unsupported(
                format!("type {other} is not supported"),
                pos,
            ))
        }
    })
}

/// The DECIMAL an integer type widens to.
pub fn int_as_decimal(t: SqlType) -> SqlType {
    match t {
        SqlType::Int => SqlType::Decimal {
            precision: 10,
            scale: 0,
        },
        SqlType::BigInt => SqlType::Decimal {
            precision: 19,
            scale: 0,
        },
        t => t,
    }
}

fn decimal_union(a: SqlType, b: SqlType) -> SqlType {
    match (int_as_decimal(a), int_as_decimal(b)) {
        (
            SqlType::Decimal {
                precision: p1,
                scale: s1,
            },
            SqlType::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => {
            let scale = s1.max(s2);
            let int_digits = p1.saturating_sub(s1).max(p2.saturating_sub(s2));
            let precision = (int_digits as u16 + scale as u16).min(38) as u8;
            SqlType::Decimal {
                precision: precision.max(scale),
                scale,
            }
        }
        _ => SqlType::Double,
    }
}

/// The smallest type both `a` and `b` implicitly convert to, if any.
pub fn common_type(a: SqlType, b: SqlType) -> Option<SqlType> {
    use SqlType::*;
    Some(match (a, b) {
        _ if a == b => a,
        (Null, t) | (t, Null) => t,
        (Int, BigInt) | (BigInt, Int) => BigInt,
        (Double, t) | (t, Double) if t.is_numeric() => Double,
        (Decimal { .. }, t) | (t, Decimal { .. }) if t.is_numeric() => decimal_union(a, b),
        (Date, Timestamp) | (Timestamp, Date) => Timestamp,
        _ => return None,
    })
}

/// True if a value of type `from` may be converted with `CAST(… AS to)`.
pub fn can_cast(from: SqlType, to: SqlType) -> bool {
    use SqlType::*;
    if from == to || from == Null || from == Varchar || to == Varchar {
        return true;
    }
    match (from, to) {
        (f, t) if f.is_numeric() && t.is_numeric() => true,
        (Boolean, t) | (t, Boolean) if t.is_integer() => true,
        (Date, Timestamp) | (Timestamp, Date) => true,
        _ => false,
    }
}

/// True if a value of type `from` may be stored in a column of type `to` implicitly
/// (INSERT).
pub fn can_assign(from: SqlType, to: SqlType) -> bool {
    use SqlType::*;
    if from == to || from == Null {
        return true;
    }
    match (from, to) {
        (f, t) if f.is_numeric() && t.is_numeric() => true,
        (_, Varchar) => true,
        (Date, Timestamp) | (Timestamp, Date) => true,
        _ => false,
    }
}

/// True for a string literal (which converts implicitly to the type it is compared with).
pub fn is_string_literal(e: &ScalarExpr) -> bool {
    matches!(e, ScalarExpr::Literal(Datum::Str(_), SqlType::Varchar))
}

/// `e` (of type `from`) converted to `to`: unchanged when equal, a typed NULL for an
/// untyped NULL literal, a cast otherwise.
pub fn coerce(e: ScalarExpr, from: SqlType, to: SqlType) -> ScalarExpr {
    if from == to {
        return e;
    }
    match e {
        ScalarExpr::Literal(Datum::Null, _) => ScalarExpr::Literal(Datum::Null, to),
        ScalarExpr::Literal(d, from_ty) => match fold_literal_cast(&d, from_ty, to) {
            Some(folded) => ScalarExpr::Literal(folded, to),
            None => ScalarExpr::Cast {
                expr: Box::new(ScalarExpr::Literal(d, from_ty)),
                to,
            },
        },
        e => ScalarExpr::Cast {
            expr: Box::new(e),
            to,
        },
    }
}

fn pow10(n: u8) -> Option<i128> {
    10i128.checked_pow(n as u32)
}

fn fits(v: i128, precision: u8) -> bool {
    pow10(precision).is_some_and(|limit| v.abs() < limit)
}

/// Exact, lossless conversions of a literal, done at bind time.
fn fold_literal_cast(d: &Datum, from: SqlType, to: SqlType) -> Option<Datum> {
    use SqlType::*;
    match (d, from, to) {
        (Datum::Int(v), Int | BigInt, BigInt) => Some(Datum::Int(*v)),
        (Datum::Int(v), Int | BigInt, Int) if i32::try_from(*v).is_ok() => Some(Datum::Int(*v)),
        (Datum::Int(v), Int | BigInt, Double) if v.unsigned_abs() < (1 << 53) => {
            Some(Datum::Float(sluice_expr::datum::F64(*v as f64)))
        }
        (Datum::Int(v), Int | BigInt, Decimal { precision, scale }) => {
            let x = (*v as i128).checked_mul(pow10(scale)?)?;
            fits(x, precision).then_some(Datum::Decimal(x))
        }
        (
            Datum::Decimal(v),
            Decimal { scale: s1, .. },
            Decimal {
                precision,
                scale: s2,
            },
        ) if s2 >= s1 => {
            let x = v.checked_mul(pow10(s2.checked_sub(s1)?)?)?;
            fits(x, precision).then_some(Datum::Decimal(x))
        }
        (Datum::Str(s), Varchar, Date) => super::expr::parse_date(s).map(Datum::Date),
        (Datum::Str(s), Varchar, Timestamp) => {
            super::expr::parse_timestamp(s).map(Datum::Timestamp)
        }
        (Datum::Date(days), Date, Timestamp) => Some(Datum::Timestamp(*days as i64 * 86_400_000)),
        _ => None,
    }
}

/// Coerce two comparison operands to one type (DECIMALs may keep different scales).
pub fn coerce_comparison(
    l: ScalarExpr,
    lt: SqlType,
    r: ScalarExpr,
    rt: SqlType,
    pos: Option<Position>,
) -> Result<(ScalarExpr, ScalarExpr), CompileError> {
    use SqlType::*;
    if let (Decimal { .. }, Decimal { .. }) = (lt, rt) {
        return Ok((l, r));
    }
    // A string literal takes the other side's type.
    if lt == Varchar && rt != Varchar && rt != Null && is_string_literal(&l) && rt != Interval {
        return Ok((coerce(l, lt, rt), r));
    }
    if rt == Varchar && lt != Varchar && lt != Null && is_string_literal(&r) && lt != Interval {
        return Ok((l, coerce(r, rt, lt)));
    }
    // A string column compared with a temporal value converts to it.
    if lt == Varchar && matches!(rt, Date | Timestamp) {
        return Ok((coerce(l, lt, rt), r));
    }
    if rt == Varchar && matches!(lt, Date | Timestamp) {
        return Ok((l, coerce(r, rt, lt)));
    }
    let Some(t) = common_type(lt, rt) else {
        return Err(CompileError::plan(
            format!("cannot compare {lt} with {rt}"),
            pos,
        ));
    };
    let t = if t == Null { Boolean } else { t };
    // DECIMAL vs integer: widen the integer to DECIMAL, keep the decimal's own type.
    if let Decimal { .. } = t {
        let lt2 = int_as_decimal(lt);
        let rt2 = int_as_decimal(rt);
        let lt2 = if lt2 == Null { rt2 } else { lt2 };
        let rt2 = if rt2 == Null { lt2 } else { rt2 };
        return Ok((coerce(l, lt, lt2), coerce(r, rt, rt2)));
    }
    Ok((coerce(l, lt, t), coerce(r, rt, t)))
}

/// Bind an arithmetic operator: coerce operands and check the combination.
pub fn coerce_arithmetic(
    op: BinaryOp,
    l: ScalarExpr,
    lt: SqlType,
    r: ScalarExpr,
    rt: SqlType,
    pos: Option<Position>,
) -> Result<ScalarExpr, CompileError> {
    use SqlType::*;
    let err = || {
        CompileError::plan(
            format!("cannot apply '{}' to {lt} and {rt}", op.symbol()),
            pos,
        )
    };
    // NULL takes the other side's type (INT when both are NULL).
    let (lt_eff, rt_eff) = match (lt, rt) {
        (Null, Null) => (Int, Int),
        (Null, t) => (
            if t == Interval && op == BinaryOp::Mul {
                BigInt
            } else {
                t
            },
            t,
        ),
        (t, Null) => (
            t,
            if t == Interval && op == BinaryOp::Mul {
                BigInt
            } else {
                t
            },
        ),
        _ => (lt, rt),
    };
    let (l, r) = (coerce(l, lt, lt_eff), coerce(r, rt, rt_eff));
    let (lt, rt) = (lt_eff, rt_eff);
    let bin = |l, r| ScalarExpr::binary(op, l, r);
    if lt.is_numeric() && rt.is_numeric() {
        if op == BinaryOp::Div && lt.is_integer() && rt.is_integer() {
            // SQL `/` on integers is true division in DuckDB.
            return Ok(bin(coerce(l, lt, Double), coerce(r, rt, Double)));
        }
        if lt == Double || rt == Double {
            return Ok(bin(coerce(l, lt, Double), coerce(r, rt, Double)));
        }
        if matches!(lt, Decimal { .. }) || matches!(rt, Decimal { .. }) {
            return Ok(bin(
                coerce(l, lt, int_as_decimal(lt)),
                coerce(r, rt, int_as_decimal(rt)),
            ));
        }
        let t = common_type(lt, rt).ok_or_else(err)?;
        return Ok(bin(coerce(l, lt, t), coerce(r, rt, t)));
    }
    use BinaryOp::*;
    Ok(match (op, lt, rt) {
        (Add | Sub, Timestamp, Interval) | (Add, Interval, Timestamp) => bin(l, r),
        (Sub, Timestamp, Timestamp) => bin(l, r),
        (Sub, Timestamp, Date) => bin(l, coerce(r, Date, Timestamp)),
        (Sub, Date, Timestamp) => bin(coerce(l, Date, Timestamp), r),
        (Add | Sub, Date, Int | BigInt) | (Add, Int | BigInt, Date) => bin(l, r),
        (Sub, Date, Date) => bin(l, r),
        (Add | Sub, Date, Interval) => bin(coerce(l, Date, Timestamp), r),
        (Add, Interval, Date) => bin(l, coerce(r, Date, Timestamp)),
        (Add | Sub, Interval, Interval) => bin(l, r),
        (Mul, Interval, Int | BigInt) => bin(l, coerce(r, rt, BigInt)),
        (Mul, Int | BigInt, Interval) => bin(r, coerce(l, lt, BigInt)),
        _ => return Err(err()),
    })
}

/// The type of an integer literal: INT if it fits, else BIGINT, else DECIMAL(38,0)/DOUBLE.
pub fn integer_literal(text: &str) -> Option<(Datum, SqlType)> {
    if let Ok(v) = text.parse::<i64>() {
        let ty = if i32::try_from(v).is_ok() {
            SqlType::Int
        } else {
            SqlType::BigInt
        };
        return Some((Datum::Int(v), ty));
    }
    if text.len() <= 38 {
        if let Ok(v) = text.parse::<i128>() {
            return Some((
                Datum::Decimal(v),
                SqlType::Decimal {
                    precision: 38,
                    scale: 0,
                },
            ));
        }
    }
    text.parse::<f64>()
        .ok()
        .map(|f| (Datum::Float(sluice_expr::datum::F64(f)), SqlType::Double))
}

/// The value and type of a numeric literal, as DuckDB types it.
pub fn numeric_literal(text: &str) -> Option<(Datum, SqlType)> {
    if text.contains(['e', 'E']) {
        return text
            .parse::<f64>()
            .ok()
            .map(|f| (Datum::Float(sluice_expr::datum::F64(f)), SqlType::Double));
    }
    let Some((int_part, frac_part)) = text.split_once('.') else {
        return integer_literal(text);
    };
    if !int_part.chars().all(|c| c.is_ascii_digit())
        || !frac_part.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    // DuckDB counts every digit written: `0.05` is DECIMAL(3,2), `.5` DECIMAL(1,1).
    let scale = frac_part.len();
    let precision = (int_part.len() + scale).max(1);
    if precision > 38 {
        return text
            .parse::<f64>()
            .ok()
            .map(|f| (Datum::Float(sluice_expr::datum::F64(f)), SqlType::Double));
    }
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let v: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    Some((
        Datum::Decimal(v),
        SqlType::Decimal {
            precision: precision as u8,
            scale: scale as u8,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_literals_are_typed_like_duckdb() {
        assert_eq!(
            numeric_literal("1.5"),
            Some((
                Datum::Decimal(15),
                SqlType::Decimal {
                    precision: 2,
                    scale: 1
                }
            ))
        );
        assert_eq!(
            numeric_literal("0.05").map(|x| x.1),
            Some(SqlType::Decimal {
                precision: 3,
                scale: 2
            })
        );
        assert_eq!(
            numeric_literal(".5").map(|x| x.1),
            Some(SqlType::Decimal {
                precision: 1,
                scale: 1
            })
        );
        assert_eq!(numeric_literal("1e3").map(|x| x.1), Some(SqlType::Double));
        assert_eq!(numeric_literal("7").map(|x| x.1), Some(SqlType::Int));
        assert_eq!(
            numeric_literal("3000000000").map(|x| x.1),
            Some(SqlType::BigInt)
        );
    }

    #[test]
    fn common_types() {
        assert_eq!(
            common_type(SqlType::Int, SqlType::BigInt),
            Some(SqlType::BigInt)
        );
        assert_eq!(
            common_type(
                SqlType::Int,
                SqlType::Decimal {
                    precision: 5,
                    scale: 2
                }
            ),
            Some(SqlType::Decimal {
                precision: 12,
                scale: 2
            })
        );
        assert_eq!(common_type(SqlType::Varchar, SqlType::Int), None);
        assert_eq!(
            common_type(SqlType::Date, SqlType::Timestamp),
            Some(SqlType::Timestamp)
        );
    }
}
