//! Row-at-a-time evaluation of [`ScalarExpr`]: the reference semantics.
//!
//! [`Evaluator::new`] prepares an expression once for rows of known column types
//! (resolving operand types and compiling `LIKE` patterns); [`Evaluator::eval`] then
//! evaluates it on one row. The columnar kernels in `sluice-gpu` must give the same
//! results; where they have no kernel they call this evaluator.
//!
//! Semantics (DuckDB's): NULL propagates through operators and functions (except
//! Kleene `AND`/`OR`, `IS [NOT] NULL`, `CASE`, `COALESCE`, `CONCAT`); integer overflow
//! is an error; integer `/` truncates; `/` and `%` by zero are NULL; DECIMAL arithmetic
//! is exact on i128 with the result type of [`crate::expr::arithmetic_type`]; DOUBLE
//! arithmetic is IEEE. `AND`, `OR`, `CASE` and `COALESCE` evaluate lazily: a branch that
//! is not needed is not evaluated (so it cannot raise an error).

mod cast;
mod func;
mod like;

#[cfg(test)]
mod tests;

pub use cast::{cast_datum, decimal_to_f64, format_datum, parse_datum};
pub use func::{extract_time_ms, fixed_unit_ms, sql_lower, sql_upper, trunc_ms, with_regex};
pub use like::LikePattern;

use crate::datum::{Datum, F64};
use crate::expr::{arithmetic_type, BinaryOp, Func, ScalarExpr};
use cast::{check_precision, rescale};
use sluice_catalogs::SqlType;
use std::cmp::Ordering;

/// Whether DOUBLE `/` and `%` by zero (and DECIMAL `/`, which is DOUBLE division) give
/// NULL, as the [`BinaryOp::Div`] contract says, rather than IEEE infinities and NaN
/// (DuckDB's behavior under its default `ieee_floating_point_ops`). Integer division by
/// zero is NULL either way. The columnar kernels follow the same switch.
pub const FLOAT_DIVISION_BY_ZERO_IS_NULL: bool = true;

/// A runtime evaluation error (bad cast, overflow…).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// What went wrong, one line.
    pub message: String,
}

impl EvalError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> EvalError {
        EvalError {
            message: message.into(),
        }
    }
}

/// A `LIKE` pattern operand: compiled once when it is a literal.
#[derive(Clone, Debug)]
enum Pattern {
    Compiled(Result<LikePattern, EvalError>),
    Dynamic(Box<Node>),
}

/// A prepared expression node: operand types resolved, patterns compiled.
#[derive(Clone, Debug)]
enum Node {
    Column(usize),
    Literal(Datum),
    Binary {
        op: BinaryOp,
        left: Box<Node>,
        right: Box<Node>,
        lt: SqlType,
        rt: SqlType,
        out: SqlType,
    },
    Not(Box<Node>),
    Negate(Box<Node>, SqlType),
    IsNull(Box<Node>, bool),
    Cast(Box<Node>, SqlType, SqlType),
    Case(Vec<(Node, Node)>, Option<Box<Node>>),
    Coalesce(Vec<Node>),
    InList {
        expr: Box<Node>,
        ty: SqlType,
        list: Vec<(Node, SqlType)>,
        negated: bool,
    },
    Like {
        expr: Box<Node>,
        pattern: Pattern,
        negated: bool,
        case_insensitive: bool,
    },
    Call {
        func: Func,
        args: Vec<Node>,
        types: Vec<SqlType>,
    },
}

fn prepare(e: &ScalarExpr, input: &[SqlType]) -> Node {
    let b = |e: &ScalarExpr| Box::new(prepare(e, input));
    match e {
        ScalarExpr::Column(i) => Node::Column(*i),
        ScalarExpr::Literal(d, _) => Node::Literal(d.clone()),
        ScalarExpr::Binary { op, left, right } => {
            let (lt, rt) = (left.ty(input), right.ty(input));
            Node::Binary {
                op: *op,
                left: b(left),
                right: b(right),
                lt,
                rt,
                out: arithmetic_type(*op, lt, rt),
            }
        }
        ScalarExpr::Not(e) => Node::Not(b(e)),
        ScalarExpr::Negate(e) => Node::Negate(b(e), e.ty(input)),
        ScalarExpr::IsNull { expr, negated } => Node::IsNull(b(expr), *negated),
        ScalarExpr::Cast { expr, to } => Node::Cast(b(expr), expr.ty(input), *to),
        ScalarExpr::Case { whens, else_ } => Node::Case(
            whens
                .iter()
                .map(|(c, r)| (prepare(c, input), prepare(r, input)))
                .collect(),
            else_.as_ref().map(|e| b(e)),
        ),
        ScalarExpr::Coalesce(args) => {
            Node::Coalesce(args.iter().map(|a| prepare(a, input)).collect())
        }
        ScalarExpr::InList {
            expr,
            list,
            negated,
        } => Node::InList {
            expr: b(expr),
            ty: expr.ty(input),
            list: list
                .iter()
                .map(|a| (prepare(a, input), a.ty(input)))
                .collect(),
            negated: *negated,
        },
        ScalarExpr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => {
            let pattern = match pattern.as_ref() {
                ScalarExpr::Literal(Datum::Str(p), _) => {
                    Pattern::Compiled(LikePattern::compile(p, *case_insensitive))
                }
                other => Pattern::Dynamic(b(other)),
            };
            Node::Like {
                expr: b(expr),
                pattern,
                negated: *negated,
                case_insensitive: *case_insensitive,
            }
        }
        ScalarExpr::Call { func, args } => Node::Call {
            func: *func,
            args: args.iter().map(|a| prepare(a, input)).collect(),
            types: args.iter().map(|a| a.ty(input)).collect(),
        },
    }
}

/// An expression prepared for evaluation against rows of known column types.
#[derive(Clone, Debug)]
pub struct Evaluator {
    node: Node,
}

impl Evaluator {
    /// Prepare `expr` for rows whose columns have `input_types`.
    pub fn new(expr: &ScalarExpr, input_types: &[SqlType]) -> Evaluator {
        Evaluator {
            node: prepare(expr, input_types),
        }
    }

    /// Evaluate on one row.
    pub fn eval(&self, row: &[Datum]) -> Result<Datum, EvalError> {
        eval_node(&self.node, row)
    }
}

fn type_error(what: &str, d: &Datum) -> EvalError {
    EvalError::new(format!("internal error: {what} got unexpected value {d:?}"))
}

fn as_bool(d: &Datum, what: &str) -> Result<Option<bool>, EvalError> {
    match d {
        Datum::Null => Ok(None),
        Datum::Bool(b) => Ok(Some(*b)),
        other => Err(type_error(what, other)),
    }
}

fn eval_node(n: &Node, row: &[Datum]) -> Result<Datum, EvalError> {
    match n {
        Node::Column(i) => row.get(*i).cloned().ok_or_else(|| {
            EvalError::new(format!(
                "internal error: column {i} out of range for a row of {} columns",
                row.len()
            ))
        }),
        Node::Literal(d) => Ok(d.clone()),
        Node::Binary {
            op: BinaryOp::And,
            left,
            right,
            ..
        } => {
            let l = as_bool(&eval_node(left, row)?, "AND")?;
            if l == Some(false) {
                return Ok(Datum::Bool(false));
            }
            let r = as_bool(&eval_node(right, row)?, "AND")?;
            Ok(match (l, r) {
                (_, Some(false)) => Datum::Bool(false),
                (Some(true), Some(true)) => Datum::Bool(true),
                _ => Datum::Null,
            })
        }
        Node::Binary {
            op: BinaryOp::Or,
            left,
            right,
            ..
        } => {
            let l = as_bool(&eval_node(left, row)?, "OR")?;
            if l == Some(true) {
                return Ok(Datum::Bool(true));
            }
            let r = as_bool(&eval_node(right, row)?, "OR")?;
            Ok(match (l, r) {
                (_, Some(true)) => Datum::Bool(true),
                (Some(false), Some(false)) => Datum::Bool(false),
                _ => Datum::Null,
            })
        }
        Node::Binary {
            op,
            left,
            right,
            lt,
            rt,
            out,
        } => {
            let l = eval_node(left, row)?;
            let r = eval_node(right, row)?;
            if l.is_null() || r.is_null() {
                return Ok(Datum::Null);
            }
            if op.is_comparison() {
                let ord = compare(&l, *lt, &r, *rt)?;
                return Ok(Datum::Bool(match op {
                    BinaryOp::Eq => ord == Ordering::Equal,
                    BinaryOp::NotEq => ord != Ordering::Equal,
                    BinaryOp::Lt => ord == Ordering::Less,
                    BinaryOp::LtEq => ord != Ordering::Greater,
                    BinaryOp::Gt => ord == Ordering::Greater,
                    _ => ord != Ordering::Less,
                }));
            }
            if *op == BinaryOp::Concat {
                return match (l, r) {
                    (Datum::Str(a), Datum::Str(b)) => Ok(Datum::Str(a + &b)),
                    (a, _) => Err(type_error("||", &a)),
                };
            }
            arithmetic(*op, &l, *lt, &r, *rt, *out)
        }
        Node::Not(e) => Ok(match as_bool(&eval_node(e, row)?, "NOT")? {
            Some(b) => Datum::Bool(!b),
            None => Datum::Null,
        }),
        Node::Negate(e, ty) => negate(&eval_node(e, row)?, *ty),
        Node::IsNull(e, negated) => Ok(Datum::Bool(eval_node(e, row)?.is_null() != *negated)),
        Node::Cast(e, from, to) => cast_datum(&eval_node(e, row)?, *from, *to),
        Node::Case(whens, else_) => {
            for (c, r) in whens {
                if as_bool(&eval_node(c, row)?, "CASE")? == Some(true) {
                    return eval_node(r, row);
                }
            }
            match else_ {
                Some(e) => eval_node(e, row),
                None => Ok(Datum::Null),
            }
        }
        Node::Coalesce(args) => {
            for a in args {
                let v = eval_node(a, row)?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            Ok(Datum::Null)
        }
        Node::InList {
            expr,
            ty,
            list,
            negated,
        } => {
            let probe = eval_node(expr, row)?;
            if probe.is_null() {
                return Ok(Datum::Null);
            }
            let mut saw_null = false;
            for (item, ity) in list {
                let v = eval_node(item, row)?;
                if v.is_null() {
                    saw_null = true;
                } else if compare(&probe, *ty, &v, *ity)? == Ordering::Equal {
                    return Ok(Datum::Bool(!negated));
                }
            }
            Ok(if saw_null {
                Datum::Null
            } else {
                Datum::Bool(*negated)
            })
        }
        Node::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => {
            let s = eval_node(expr, row)?;
            let s = match s {
                Datum::Null => return Ok(Datum::Null),
                Datum::Str(s) => s,
                other => return Err(type_error("LIKE", &other)),
            };
            let matched = match pattern {
                Pattern::Compiled(Ok(p)) => p.matches(&s),
                Pattern::Compiled(Err(e)) => return Err(e.clone()),
                Pattern::Dynamic(p) => match eval_node(p, row)? {
                    Datum::Null => return Ok(Datum::Null),
                    Datum::Str(p) => LikePattern::compile(&p, *case_insensitive)?.matches(&s),
                    other => return Err(type_error("LIKE", &other)),
                },
            };
            Ok(Datum::Bool(matched != *negated))
        }
        Node::Call { func, args, types } => {
            let vals = args
                .iter()
                .map(|a| eval_node(a, row))
                .collect::<Result<Vec<_>, _>>()?;
            func::call(*func, &vals, types)
        }
    }
}

fn scale_of(t: SqlType) -> u8 {
    match t {
        SqlType::Decimal { scale, .. } => scale,
        _ => 0,
    }
}

/// Compare two non-NULL values of (compatible) types `lt` and `rt`: DECIMALs of different
/// scales compare by value, DOUBLEs by IEEE total order with NaN largest and
/// `-0.0 = 0.0`, strings bytewise.
pub fn compare(l: &Datum, lt: SqlType, r: &Datum, rt: SqlType) -> Result<Ordering, EvalError> {
    match (l, r) {
        (Datum::Decimal(a), Datum::Decimal(b)) => {
            Ok(compare_decimals(*a, scale_of(lt), *b, scale_of(rt)))
        }
        (Datum::Decimal(a), Datum::Int(b)) => {
            Ok(compare_decimals(*a, scale_of(lt), i128::from(*b), 0))
        }
        (Datum::Int(a), Datum::Decimal(b)) => {
            Ok(compare_decimals(i128::from(*a), 0, *b, scale_of(rt)))
        }
        (Datum::Float(a), Datum::Float(b)) => Ok(a.cmp(b)),
        (Datum::Float(a), Datum::Int(b)) => Ok(a.cmp(&F64(*b as f64))),
        (Datum::Int(a), Datum::Float(b)) => Ok(F64(*a as f64).cmp(b)),
        (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => Ok(a.cmp(b)),
        (a, b) => Err(EvalError::new(format!(
            "internal error: cannot compare {a:?} with {b:?}"
        ))),
    }
}

/// Compare unscaled decimals of different scales exactly (no overflow).
fn compare_decimals(a: i128, sa: u8, b: i128, sb: u8) -> Ordering {
    if sa == sb {
        return a.cmp(&b);
    }
    let pa = cast::pow10(u32::from(sa)).unwrap_or(i128::MAX);
    let pb = cast::pow10(u32::from(sb)).unwrap_or(i128::MAX);
    let (qa, ra) = (a.div_euclid(pa), a.rem_euclid(pa));
    let (qb, rb) = (b.div_euclid(pb), b.rem_euclid(pb));
    match qa.cmp(&qb) {
        Ordering::Equal => {
            let s = sa.max(sb);
            // ra < 10^sa so ra * 10^(s - sa) < 10^s <= 10^38: no overflow.
            let fa = rescale(ra, sa, s).unwrap_or(i128::MAX);
            let fb = rescale(rb, sb, s).unwrap_or(i128::MAX);
            fa.cmp(&fb)
        }
        o => o,
    }
}

fn overflow(op: BinaryOp, l: &Datum, lt: SqlType, r: &Datum, rt: SqlType) -> EvalError {
    EvalError::new(format!(
        "overflow in {} {} {} ({lt} {} {rt})",
        format_datum(l, lt),
        op.symbol(),
        format_datum(r, rt),
        op.symbol()
    ))
}

fn fit_int(v: Option<i64>, out: SqlType) -> Option<i64> {
    v.filter(|v| out != SqlType::Int || i32::try_from(*v).is_ok())
}

/// Arithmetic on two non-NULL operands.
fn arithmetic(
    op: BinaryOp,
    l: &Datum,
    lt: SqlType,
    r: &Datum,
    rt: SqlType,
    out: SqlType,
) -> Result<Datum, EvalError> {
    use BinaryOp as B;
    let ovf = || overflow(op, l, lt, r, rt);
    Ok(match (l, r) {
        (Datum::Int(a), Datum::Int(b)) => {
            let (a, b) = (*a, *b);
            let v = match op {
                B::Add => a.checked_add(b),
                B::Sub => a.checked_sub(b),
                B::Mul => a.checked_mul(b),
                B::Div | B::Mod if b == 0 => return Ok(Datum::Null),
                B::Div => a.checked_div(b),
                // MIN % -1 is 0 (not an overflow), as in DuckDB and Arrow.
                B::Mod => Some(a.wrapping_rem(b)),
                _ => return Err(type_error(op.symbol(), l)),
            };
            Datum::Int(fit_int(v, out).ok_or_else(ovf)?)
        }
        (Datum::Float(a), Datum::Float(b)) => {
            let (a, b) = (a.0, b.0);
            Datum::Float(F64(match op {
                B::Add => a + b,
                B::Sub => a - b,
                B::Mul => a * b,
                B::Div | B::Mod if b == 0.0 && FLOAT_DIVISION_BY_ZERO_IS_NULL => {
                    return Ok(Datum::Null)
                }
                B::Div => a / b,
                B::Mod => a % b,
                _ => return Err(type_error(op.symbol(), l)),
            }))
        }
        (Datum::Decimal(a), Datum::Decimal(b)) => {
            let (sa, sb) = (scale_of(lt), scale_of(rt));
            match op {
                B::Div => {
                    let d = decimal_to_f64(*b, sb);
                    if d == 0.0 && FLOAT_DIVISION_BY_ZERO_IS_NULL {
                        return Ok(Datum::Null);
                    }
                    Datum::Float(F64(decimal_to_f64(*a, sa) / d))
                }
                B::Mul => {
                    let v = a.checked_mul(*b).ok_or_else(ovf)?;
                    let v = rescale(v, sa + sb, scale_of(out)).ok_or_else(ovf)?;
                    Datum::Decimal(check_precision(v, out).map_err(|_| ovf())?)
                }
                B::Add | B::Sub | B::Mod => {
                    let s = scale_of(out);
                    let a = rescale(*a, sa, s).ok_or_else(ovf)?;
                    let b = rescale(*b, sb, s).ok_or_else(ovf)?;
                    let v = match op {
                        B::Add => a.checked_add(b),
                        B::Sub => a.checked_sub(b),
                        _ if b == 0 => return Ok(Datum::Null),
                        _ => a.checked_rem(b),
                    }
                    .ok_or_else(ovf)?;
                    Datum::Decimal(check_precision(v, out).map_err(|_| ovf())?)
                }
                _ => return Err(type_error(op.symbol(), l)),
            }
        }
        // Temporal arithmetic.
        (Datum::Timestamp(t), Datum::Interval(i)) | (Datum::Interval(i), Datum::Timestamp(t)) => {
            let v = match op {
                B::Add => t.checked_add(*i),
                B::Sub if matches!(l, Datum::Timestamp(_)) => t.checked_sub(*i),
                _ => return Err(type_error(op.symbol(), l)),
            };
            Datum::Timestamp(v.ok_or_else(ovf)?)
        }
        (Datum::Timestamp(a), Datum::Timestamp(b)) if op == B::Sub => {
            Datum::Interval(a.checked_sub(*b).ok_or_else(ovf)?)
        }
        (Datum::Date(d), Datum::Int(n)) | (Datum::Int(n), Datum::Date(d)) => {
            let v = match op {
                B::Add => i64::from(*d).checked_add(*n),
                B::Sub if matches!(l, Datum::Date(_)) => i64::from(*d).checked_sub(*n),
                _ => return Err(type_error(op.symbol(), l)),
            };
            let v = v.and_then(|v| i32::try_from(v).ok()).ok_or_else(ovf)?;
            Datum::Date(v)
        }
        (Datum::Date(a), Datum::Date(b)) if op == B::Sub => {
            Datum::Int(i64::from(*a) - i64::from(*b))
        }
        (Datum::Interval(a), Datum::Interval(b)) => Datum::Interval(
            match op {
                B::Add => a.checked_add(*b),
                B::Sub => a.checked_sub(*b),
                _ => return Err(type_error(op.symbol(), l)),
            }
            .ok_or_else(ovf)?,
        ),
        (Datum::Interval(a), Datum::Int(n)) | (Datum::Int(n), Datum::Interval(a))
            if op == B::Mul =>
        {
            Datum::Interval(a.checked_mul(*n).ok_or_else(ovf)?)
        }
        (Datum::Interval(a), Datum::Int(n)) if op == B::Div => {
            if *n == 0 {
                return Ok(Datum::Null);
            }
            Datum::Interval(a.checked_div(*n).ok_or_else(ovf)?)
        }
        _ => {
            return Err(EvalError::new(format!(
                "internal error: unsupported operands {lt} {} {rt}",
                op.symbol()
            )))
        }
    })
}

fn negate(v: &Datum, ty: SqlType) -> Result<Datum, EvalError> {
    let ovf = || EvalError::new(format!("overflow in -({})", format_datum(v, ty)));
    Ok(match v {
        Datum::Null => Datum::Null,
        Datum::Int(i) => Datum::Int(fit_int(i.checked_neg(), ty).ok_or_else(ovf)?),
        Datum::Float(x) => Datum::Float(F64(-x.0)),
        Datum::Decimal(d) => Datum::Decimal(d.checked_neg().ok_or_else(ovf)?),
        Datum::Interval(i) => Datum::Interval(i.checked_neg().ok_or_else(ovf)?),
        other => return Err(type_error("unary -", other)),
    })
}
