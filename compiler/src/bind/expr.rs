//! Expression binding: sqlparser [`Expr`] to typed [`ScalarExpr`] over a [`Scope`],
//! with implicit coercions (see [`super::types`]) and, in aggregate mode, grouping
//! and aggregate-call extraction.

use super::scope::Scope;
use super::types::{
    can_cast, coerce, coerce_arithmetic, coerce_comparison, common_type, numeric_literal,
    sql_type_of,
};
use crate::error::{CompileError, Position};
use crate::parse::{interval_ms, span_pos};
use sluice_catalogs::SqlType;
use sluice_expr::datum::{Datum, F64};
use sluice_expr::expr::{AggFunc, AggregateCall, BinaryOp, Func, ScalarExpr, TimeUnit};
use sqlparser::ast::{
    BinaryOperator, CastKind, CeilFloorKind, DateTimeField, DuplicateTreatment, Expr, Function,
    FunctionArg, FunctionArgExpr, FunctionArguments, ObjectNamePart, Spanned, TrimWhereField,
    UnaryOperator, Value,
};

/// The names of the aggregate functions.
const AGGREGATES: [&str; 5] = ["COUNT", "SUM", "AVG", "MIN", "MAX"];

/// A legacy group window (`GROUP BY TUMBLE(ts, …)`) as the aggregate sees it.
#[derive(Clone, Debug)]
pub struct LegacyWindow {
    /// `TUMBLE`, `HOP` or `SESSION`.
    pub name: &'static str,
    /// Group index of `window_start`.
    pub start_group: usize,
    /// Group index of `window_end`.
    pub end_group: usize,
}

/// Aggregation state collected while binding the SELECT list, HAVING and ORDER BY of
/// an aggregating query.
#[derive(Clone, Debug, Default)]
pub struct AggState {
    /// Group expressions over the input scope.
    pub groups: Vec<ScalarExpr>,
    /// Types of the group expressions.
    pub group_types: Vec<SqlType>,
    /// Aggregate arguments over the input scope (pre-projection columns after the groups).
    pub args: Vec<ScalarExpr>,
    /// The aggregate calls; `arg` indexes the pre-projection (groups, then args).
    pub aggs: Vec<AggregateCall>,
    /// The legacy group window, if any.
    pub window: Option<LegacyWindow>,
}

/// Binds expressions against one scope.
pub struct ExprBinder<'s> {
    /// The input columns.
    pub scope: &'s Scope,
    /// Aggregate mode: results are over the aggregate's output.
    pub agg: Option<&'s mut AggState>,
    /// The clause being bound, for error messages ("WHERE", "ON"…).
    pub clause: &'static str,
    /// Current nesting depth of [`ExprBinder::bind`] calls (bounded by [`MAX_EXPR_DEPTH`]).
    pub depth: usize,
}

pub use crate::limits::MAX_EXPR_DEPTH;

/// The start position of an AST node. Computing a span recurses through the whole
/// subtree, so it runs with stack to spare (see [`crate::bind::bind_script`]).
#[recursive::recursive]
pub fn pos_of(e: &dyn Spanned) -> Option<Position> {
    span_pos(e.span())
}

/// The upper-cased last part of a function name.
pub fn function_name(f: &Function) -> String {
    match f.name.0.last() {
        Some(ObjectNamePart::Identifier(id)) => id.value.to_uppercase(),
        Some(other) => other.to_string().to_uppercase(),
        None => String::new(),
    }
}

/// True if the function name is one of the legacy window auxiliary functions.
pub fn is_window_aux(name: &str) -> bool {
    ["TUMBLE_", "HOP_", "SESSION_"]
        .iter()
        .any(|p| name.starts_with(p))
}

/// The plain expression arguments of a call.
fn plain_args(f: &Function) -> Vec<&Expr> {
    match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                FunctionArg::Named {
                    arg: FunctionArgExpr::Expr(e),
                    ..
                } => Some(e),
                FunctionArg::ExprNamed {
                    arg: FunctionArgExpr::Expr(e),
                    ..
                } => Some(e),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

/// The direct sub-expressions of an expression (for the analyses below).
pub fn children(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::IsFalse(x)
        | Expr::IsNotFalse(x)
        | Expr::IsTrue(x)
        | Expr::IsNotTrue(x)
        | Expr::IsNull(x)
        | Expr::IsNotNull(x)
        | Expr::IsUnknown(x)
        | Expr::IsNotUnknown(x)
        | Expr::Nested(x) => vec![x],
        Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => vec![a, b],
        Expr::InList { expr, list, .. } => {
            let mut v = vec![expr.as_ref()];
            v.extend(list.iter());
            v
        }
        Expr::Between {
            expr, low, high, ..
        } => vec![expr, low, high],
        Expr::BinaryOp { left, right, .. } => vec![left, right],
        Expr::Like { expr, pattern, .. } | Expr::ILike { expr, pattern, .. } => {
            vec![expr, pattern]
        }
        Expr::UnaryOp { expr, .. } => vec![expr],
        Expr::Cast { expr, .. } => vec![expr],
        Expr::Extract { expr, .. } => vec![expr],
        Expr::Ceil { expr, .. } | Expr::Floor { expr, .. } => vec![expr],
        Expr::Position { expr, r#in } => vec![expr, r#in],
        Expr::Substring {
            expr,
            substring_from,
            substring_for,
            ..
        } => {
            let mut v = vec![expr.as_ref()];
            v.extend(substring_from.as_deref());
            v.extend(substring_for.as_deref());
            v
        }
        Expr::Trim {
            expr,
            trim_what,
            trim_characters,
            ..
        } => {
            let mut v = vec![expr.as_ref()];
            v.extend(trim_what.as_deref());
            if let Some(c) = trim_characters {
                v.extend(c.iter());
            }
            v
        }
        Expr::Function(f) => plain_args(f),
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let mut v: Vec<&Expr> = operand.iter().map(|b| b.as_ref()).collect();
            for c in conditions {
                v.push(&c.condition);
                v.push(&c.result);
            }
            v.extend(else_result.as_deref());
            v
        }
        _ => vec![],
    }
}

/// True if the expression tree is deeper than `limit` (iterative: safe on any depth).
pub fn too_deep(e: &Expr, limit: usize) -> bool {
    let mut stack = vec![(e, 1usize)];
    while let Some((cur, d)) = stack.pop() {
        if d > limit {
            return true;
        }
        stack.extend(children(cur).into_iter().map(|c| (c, d + 1)));
    }
    false
}

/// The position of the leftmost leaf of an expression (iterative: safe on any depth).
pub fn leftmost_pos(e: &Expr) -> Option<Position> {
    let mut cur = e;
    while let Some(first) = children(cur).first() {
        cur = first;
    }
    span_pos(cur.span())
}

/// True if `pred` holds for a node of the expression tree (iterative: safe on any
/// depth; does not look into subqueries).
fn any_node(e: &Expr, pred: impl Fn(&Expr) -> bool) -> bool {
    let mut stack = vec![e];
    while let Some(cur) = stack.pop() {
        if pred(cur) {
            return true;
        }
        stack.extend(children(cur));
    }
    false
}

/// True if the expression contains an aggregate call (not looking into subqueries).
pub fn contains_aggregate(e: &Expr) -> bool {
    any_node(e, |n| {
        matches!(n, Expr::Function(f)
            if f.over.is_none() && AGGREGATES.contains(&function_name(f).as_str()))
    })
}

/// True if the expression contains a legacy window auxiliary call (`TUMBLE_START`…).
fn contains_window_aux(e: &Expr) -> bool {
    any_node(
        e,
        |n| matches!(n, Expr::Function(f) if is_window_aux(&function_name(f))),
    )
}

fn str_lit(s: impl Into<String>) -> ScalarExpr {
    ScalarExpr::Literal(Datum::Str(s.into()), SqlType::Varchar)
}

pub use sluice_expr::temporal::{parse_date, parse_timestamp};

/// The TimeUnit of an EXTRACT / FLOOR … TO field.
fn time_unit_of_field(f: &DateTimeField) -> Option<TimeUnit> {
    Some(match f {
        DateTimeField::Year | DateTimeField::Years => TimeUnit::Year,
        DateTimeField::Quarter => TimeUnit::Quarter,
        DateTimeField::Month | DateTimeField::Months => TimeUnit::Month,
        DateTimeField::Week(_) | DateTimeField::Weeks | DateTimeField::IsoWeek => TimeUnit::Week,
        DateTimeField::Day | DateTimeField::Days => TimeUnit::Day,
        DateTimeField::DayOfWeek | DateTimeField::Dow => TimeUnit::DayOfWeek,
        DateTimeField::DayOfYear | DateTimeField::Doy => TimeUnit::DayOfYear,
        DateTimeField::Hour | DateTimeField::Hours => TimeUnit::Hour,
        DateTimeField::Minute | DateTimeField::Minutes => TimeUnit::Minute,
        DateTimeField::Second | DateTimeField::Seconds => TimeUnit::Second,
        DateTimeField::Millisecond | DateTimeField::Milliseconds => TimeUnit::Millisecond,
        DateTimeField::Epoch => TimeUnit::Epoch,
        DateTimeField::Custom(id) => return time_unit_of_name(&id.value),
        _ => return None,
    })
}

/// The TimeUnit of a unit name (`'day'`, `'DOW'`…).
fn time_unit_of_name(n: &str) -> Option<TimeUnit> {
    Some(match n.to_ascii_lowercase().as_str() {
        "year" | "years" => TimeUnit::Year,
        "quarter" | "quarters" => TimeUnit::Quarter,
        "month" | "months" => TimeUnit::Month,
        "week" | "weeks" => TimeUnit::Week,
        "day" | "days" => TimeUnit::Day,
        "dow" | "dayofweek" => TimeUnit::DayOfWeek,
        "doy" | "dayofyear" => TimeUnit::DayOfYear,
        "hour" | "hours" => TimeUnit::Hour,
        "minute" | "minutes" => TimeUnit::Minute,
        "second" | "seconds" => TimeUnit::Second,
        "millisecond" | "milliseconds" => TimeUnit::Millisecond,
        "epoch" => TimeUnit::Epoch,
        _ => return None,
    })
}

fn truncatable(u: TimeUnit) -> bool {
    !matches!(
        u,
        TimeUnit::DayOfWeek | TimeUnit::DayOfYear | TimeUnit::Epoch
    )
}

type Bound = (ScalarExpr, SqlType);

impl ExprBinder<'_> {
    /// A binder in plain (non-aggregating) mode.
    pub fn new<'a>(scope: &'a Scope, clause: &'static str) -> ExprBinder<'a> {
        ExprBinder {
            scope,
            agg: None,
            clause,
            depth: 0,
        }
    }

    /// Bind a BOOLEAN expression (a predicate).
    pub fn bind_bool(&mut self, e: &Expr) -> Result<ScalarExpr, CompileError> {
        let (x, t) = self.bind(e)?;
        match t {
            SqlType::Boolean => Ok(x),
            SqlType::Null => Ok(coerce(x, t, SqlType::Boolean)),
            other => Err(CompileError::plan(
                format!("{} must be BOOLEAN, not {other}", self.clause),
                pos_of(e),
            )),
        }
    }

    /// Bind an expression; returns it with its type.
    #[recursive::recursive]
    pub fn bind(&mut self, e: &Expr) -> Result<Bound, CompileError> {
        // Check the whole tree once, without recursion, before anything recurses on it
        // (spans, binding, the later stages).
        if self.depth >= MAX_EXPR_DEPTH || (self.depth == 0 && too_deep(e, MAX_EXPR_DEPTH)) {
            return Err(CompileError::unsupported(
                format!("expression is nested too deeply (more than {MAX_EXPR_DEPTH} levels)"),
                leftmost_pos(e),
            ));
        }
        self.depth += 1;
        let r = self.bind_at_depth(e);
        self.depth -= 1;
        r
    }

    fn bind_at_depth(&mut self, e: &Expr) -> Result<Bound, CompileError> {
        if self.agg.is_some() && !contains_aggregate(e) && !contains_window_aux(e) {
            let saved = self.agg.take();
            let plain = self.bind_inner(e);
            self.agg = saved;
            let (x, t) = plain?;
            if let Some(agg) = self.agg.as_deref() {
                if let Some(k) = agg.groups.iter().position(|g| *g == x) {
                    let ty = agg.group_types.get(k).copied().unwrap_or(t);
                    return Ok((ScalarExpr::Column(k), ty));
                }
            }
            if x.columns().is_empty() {
                return Ok((x, t));
            }
            if let Some(name) = column_name(e) {
                return Err(CompileError::plan(
                    format!(
                        "column '{name}' must appear in the GROUP BY clause or be used in an aggregate function"
                    ),
                    pos_of(e),
                ));
            }
        }
        self.bind_inner(e)
    }

    fn bind_inner(&mut self, e: &Expr) -> Result<Bound, CompileError> {
        let pos = pos_of(e);
        match e {
            Expr::Identifier(id) => {
                let i = self.scope.resolve(None, &id.value, span_pos(id.span))?;
                Ok((ScalarExpr::Column(i), self.col_ty(i)))
            }
            Expr::CompoundIdentifier(parts) => {
                let n = parts.len();
                let (q, name) = match (parts.get(n.wrapping_sub(2)), parts.last()) {
                    (Some(q), Some(c)) => (q, c),
                    _ => return Err(CompileError::plan("invalid column reference", pos)),
                };
                let i = self.scope.resolve(Some(&q.value), &name.value, pos)?;
                Ok((ScalarExpr::Column(i), self.col_ty(i)))
            }
            Expr::Nested(x) => self.bind(x),
            Expr::Value(v) => literal(&v.value, pos),
            Expr::TypedString(ts) => {
                let s = match &ts.value.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                    other => {
                        return Err(CompileError::plan(
                            format!("invalid typed literal {other}"),
                            pos,
                        ))
                    }
                };
                let ty = sql_type_of(&ts.data_type, pos)?;
                match ty {
                    SqlType::Date => parse_date(&s)
                        .map(|d| (ScalarExpr::Literal(Datum::Date(d), ty), ty))
                        .ok_or_else(|| {
                            CompileError::plan(format!("invalid DATE literal '{s}'"), pos)
                        }),
                    SqlType::Timestamp => parse_timestamp(&s)
                        .map(|t| (ScalarExpr::Literal(Datum::Timestamp(t), ty), ty))
                        .ok_or_else(|| {
                            CompileError::plan(format!("invalid TIMESTAMP literal '{s}'"), pos)
                        }),
                    SqlType::Varchar => Ok((str_lit(s), ty)),
                    _ => Ok((
                        ScalarExpr::Cast {
                            expr: Box::new(str_lit(s)),
                            to: ty,
                        },
                        ty,
                    )),
                }
            }
            Expr::Interval(iv) => Ok((
                ScalarExpr::Literal(Datum::Interval(interval_ms(iv, pos)?), SqlType::Interval),
                SqlType::Interval,
            )),
            Expr::BinaryOp { left, op, right } => self.bind_binary(left, op, right, pos),
            Expr::UnaryOp { op, expr } => match op {
                UnaryOperator::Plus => {
                    let (x, t) = self.bind(expr)?;
                    if !t.is_numeric() && t != SqlType::Interval && t != SqlType::Null {
                        return Err(CompileError::plan(format!("cannot apply '+' to {t}"), pos));
                    }
                    Ok((x, t))
                }
                UnaryOperator::Minus => {
                    let (x, t) = self.bind(expr)?;
                    match x {
                        ScalarExpr::Literal(Datum::Int(v), ty) if v != i64::MIN => {
                            Ok((ScalarExpr::Literal(Datum::Int(-v), ty), t))
                        }
                        ScalarExpr::Literal(Datum::Decimal(v), ty) => {
                            Ok((ScalarExpr::Literal(Datum::Decimal(-v), ty), t))
                        }
                        ScalarExpr::Literal(Datum::Float(v), ty) => {
                            Ok((ScalarExpr::Literal(Datum::Float(F64(-v.0)), ty), t))
                        }
                        ScalarExpr::Literal(Datum::Interval(v), ty) if v != i64::MIN => {
                            Ok((ScalarExpr::Literal(Datum::Interval(-v), ty), t))
                        }
                        x if t.is_numeric() || t == SqlType::Interval => {
                            Ok((ScalarExpr::Negate(Box::new(x)), t))
                        }
                        x if t == SqlType::Null => Ok((coerce(x, t, SqlType::Int), SqlType::Int)),
                        _ => Err(CompileError::plan(format!("cannot negate {t}"), pos)),
                    }
                }
                UnaryOperator::Not => {
                    let x = self.bind_bool(expr)?;
                    Ok((ScalarExpr::Not(Box::new(x)), SqlType::Boolean))
                }
                other => Err(CompileError::unsupported(
                    format!("operator {other} is not supported"),
                    pos,
                )),
            },
            Expr::IsNull(x) | Expr::IsNotNull(x) => {
                let (b, _) = self.bind(x)?;
                Ok((
                    ScalarExpr::IsNull {
                        expr: Box::new(b),
                        negated: matches!(e, Expr::IsNotNull(_)),
                    },
                    SqlType::Boolean,
                ))
            }
            Expr::IsTrue(x) | Expr::IsNotTrue(x) | Expr::IsFalse(x) | Expr::IsNotFalse(x) => {
                let b = self.bind_bool(x)?;
                let f = ScalarExpr::Literal(Datum::Bool(false), SqlType::Boolean);
                let tested = match e {
                    Expr::IsTrue(_) | Expr::IsNotTrue(_) => b,
                    _ => ScalarExpr::Not(Box::new(b)),
                };
                let c = ScalarExpr::Coalesce(vec![tested, f]);
                let out = match e {
                    Expr::IsTrue(_) | Expr::IsFalse(_) => c,
                    _ => ScalarExpr::Not(Box::new(c)),
                };
                Ok((out, SqlType::Boolean))
            }
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let (x, xt) = self.bind(expr)?;
                let mut items = Vec::with_capacity(list.len());
                let mut target = xt;
                for item in list {
                    let (b, bt) = self.bind(item)?;
                    if !super::types::is_string_literal(&b)
                        || matches!(target, SqlType::Varchar | SqlType::Null)
                    {
                        target = common_type(target, bt).ok_or_else(|| {
                            CompileError::plan(
                                format!("IN list item of type {bt} does not match {target}"),
                                pos_of(item),
                            )
                        })?;
                    }
                    items.push((b, bt));
                }
                let list = items
                    .into_iter()
                    .map(|(b, bt)| coerce(b, bt, target))
                    .collect();
                Ok((
                    ScalarExpr::InList {
                        expr: Box::new(coerce(x, xt, target)),
                        list,
                        negated: *negated,
                    },
                    SqlType::Boolean,
                ))
            }
            Expr::Between {
                expr,
                negated,
                low,
                high,
            } => {
                let x = self.bind(expr)?;
                let lo = self.bind(low)?;
                let hi = self.bind(high)?;
                let (op1, op2, join) = if *negated {
                    (BinaryOp::Lt, BinaryOp::Gt, BinaryOp::Or)
                } else {
                    (BinaryOp::GtEq, BinaryOp::LtEq, BinaryOp::And)
                };
                let (a, b) = coerce_comparison(x.0.clone(), x.1, lo.0, lo.1, pos)?;
                let (c, d) = coerce_comparison(x.0, x.1, hi.0, hi.1, pos)?;
                Ok((
                    ScalarExpr::binary(
                        join,
                        ScalarExpr::binary(op1, a, b),
                        ScalarExpr::binary(op2, c, d),
                    ),
                    SqlType::Boolean,
                ))
            }
            Expr::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            }
            | Expr::ILike {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any || escape_char.is_some() {
                    return Err(CompileError::unsupported(
                        "LIKE ANY / LIKE … ESCAPE is not supported",
                        pos,
                    ));
                }
                let x = self.string_arg(expr, "LIKE")?;
                let p = self.string_arg(pattern, "LIKE")?;
                Ok((
                    ScalarExpr::Like {
                        expr: Box::new(x),
                        pattern: Box::new(p),
                        negated: *negated,
                        case_insensitive: matches!(e, Expr::ILike { .. }),
                    },
                    SqlType::Boolean,
                ))
            }
            Expr::Cast {
                kind,
                expr,
                data_type,
                format,
            } => {
                if !matches!(kind, CastKind::Cast | CastKind::DoubleColon) || format.is_some() {
                    return Err(CompileError::unsupported(
                        "only CAST(expr AS type) is supported",
                        pos,
                    ));
                }
                let to = sql_type_of(data_type, pos)?;
                let (x, t) = self.bind(expr)?;
                if !can_cast(t, to) {
                    return Err(CompileError::plan(format!("cannot cast {t} to {to}"), pos));
                }
                if to.is_integer() && matches!(t, SqlType::Double | SqlType::Decimal { .. }) {
                    return Ok((truncating_cast(x, t, to), to));
                }
                Ok((coerce(x, t, to), to))
            }
            Expr::Extract { field, expr, .. } => {
                let unit = time_unit_of_field(field).ok_or_else(|| {
                    CompileError::unsupported(format!("EXTRACT({field}) is not supported"), pos)
                })?;
                let x = self.temporal_arg(expr, "EXTRACT")?;
                Ok((
                    ScalarExpr::Call {
                        func: Func::Extract(unit),
                        args: vec![x.0],
                    },
                    SqlType::BigInt,
                ))
            }
            Expr::Floor { expr, field } | Expr::Ceil { expr, field } => {
                let is_floor = matches!(e, Expr::Floor { .. });
                match field {
                    CeilFloorKind::DateTimeField(DateTimeField::NoDateTime) => {
                        let (x, t) =
                            self.numeric_arg(expr, if is_floor { "FLOOR" } else { "CEIL" })?;
                        let func = if is_floor { Func::Floor } else { Func::Ceil };
                        let rt = func.return_type(&[t]);
                        Ok((
                            ScalarExpr::Call {
                                func,
                                args: vec![x],
                            },
                            rt,
                        ))
                    }
                    CeilFloorKind::DateTimeField(f) => {
                        let unit = time_unit_of_field(f)
                            .filter(|u| truncatable(*u))
                            .ok_or_else(|| {
                                CompileError::unsupported(
                                    format!("FLOOR/CEIL to {f} is not supported"),
                                    pos,
                                )
                            })?;
                        let (x, t) = self.temporal_arg(expr, "FLOOR/CEIL")?;
                        let func = if is_floor {
                            Func::DateTrunc(unit)
                        } else {
                            Func::DateCeil(unit)
                        };
                        Ok((
                            ScalarExpr::Call {
                                func,
                                args: vec![x],
                            },
                            t,
                        ))
                    }
                    CeilFloorKind::Scale(_) => Err(CompileError::unsupported(
                        "FLOOR/CEIL with a scale is not supported",
                        pos,
                    )),
                }
            }
            Expr::Position { expr, r#in } => {
                let needle = self.string_arg(expr, "POSITION")?;
                let hay = self.string_arg(r#in, "POSITION")?;
                Ok((
                    ScalarExpr::Call {
                        func: Func::Position,
                        args: vec![needle, hay],
                    },
                    SqlType::BigInt,
                ))
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let s = self.string_arg(expr, "SUBSTRING")?;
                let from = match substring_from {
                    Some(f) => self.int_arg(f, "SUBSTRING")?,
                    None => ScalarExpr::Literal(Datum::Int(1), SqlType::BigInt),
                };
                let mut args = vec![s, from];
                if let Some(f) = substring_for {
                    args.push(self.int_arg(f, "SUBSTRING")?);
                }
                Ok((
                    ScalarExpr::Call {
                        func: Func::Substring,
                        args,
                    },
                    SqlType::Varchar,
                ))
            }
            Expr::Trim {
                trim_where,
                trim_what,
                expr,
                trim_characters,
            } => {
                let func = match trim_where {
                    None | Some(TrimWhereField::Both) => Func::Trim,
                    Some(TrimWhereField::Leading) => Func::LTrim,
                    Some(TrimWhereField::Trailing) => Func::RTrim,
                };
                let s = self.string_arg(expr, "TRIM")?;
                let mut args = vec![s];
                let chars = trim_what
                    .as_deref()
                    .or(trim_characters.as_ref().and_then(|c| c.first()));
                if let Some(c) = chars {
                    args.push(self.string_arg(c, "TRIM")?);
                }
                Ok((ScalarExpr::Call { func, args }, SqlType::Varchar))
            }
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let probe = match operand {
                    Some(o) => Some(self.bind(o)?),
                    None => None,
                };
                let mut conds = Vec::with_capacity(conditions.len());
                let mut results = Vec::with_capacity(conditions.len() + 1);
                for w in conditions {
                    let c = match &probe {
                        Some((x, xt)) => {
                            let (v, vt) = self.bind(&w.condition)?;
                            let (a, b) =
                                coerce_comparison(x.clone(), *xt, v, vt, pos_of(&w.condition))?;
                            ScalarExpr::binary(BinaryOp::Eq, a, b)
                        }
                        None => self.bind_bool(&w.condition)?,
                    };
                    conds.push(c);
                    results.push((self.bind(&w.result)?, pos_of(&w.result)));
                }
                let else_ = match else_result {
                    Some(e) => Some((self.bind(e)?, pos_of(e.as_ref()))),
                    None => None,
                };
                let all: Vec<&(Bound, Option<Position>)> =
                    results.iter().chain(else_.iter()).collect();
                let ty = unify(all.iter().map(|(b, p)| (b.1, *p)), "CASE")?;
                let whens = conds
                    .into_iter()
                    .zip(results)
                    .map(|(c, ((r, rt), _))| (c, coerce(r, rt, ty)))
                    .collect();
                let else_ = else_.map(|((x, t), _)| Box::new(coerce(x, t, ty)));
                Ok((ScalarExpr::Case { whens, else_ }, ty))
            }
            Expr::Function(f) => self.bind_function(f, pos),
            Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => {
                Err(CompileError::unsupported(
                    "subqueries in expressions (scalar, IN, EXISTS) are not supported",
                    pos,
                ))
            }
            Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
                // a IS DISTINCT FROM b =
                //   CASE WHEN a IS NULL THEN b IS NOT NULL
                //        WHEN b IS NULL THEN TRUE
                //        ELSE a <> b END
                let (x, xt) = self.bind(a)?;
                let (y, yt) = self.bind(b)?;
                let (x, y) = coerce_comparison(x, xt, y, yt, pos)?;
                let is_null = |e: &ScalarExpr, negated: bool| ScalarExpr::IsNull {
                    expr: Box::new(e.clone()),
                    negated,
                };
                let distinct = ScalarExpr::Case {
                    whens: vec![
                        (is_null(&x, false), is_null(&y, true)),
                        (
                            is_null(&y, false),
                            ScalarExpr::Literal(Datum::Bool(true), SqlType::Boolean),
                        ),
                    ],
                    else_: Some(Box::new(ScalarExpr::binary(BinaryOp::NotEq, x, y))),
                };
                let out = if matches!(e, Expr::IsDistinctFrom(..)) {
                    distinct
                } else {
                    ScalarExpr::Not(Box::new(distinct))
                };
                Ok((out, SqlType::Boolean))
            }
            Expr::Wildcard(_) | Expr::QualifiedWildcard(..) => Err(CompileError::plan(
                "'*' is not allowed in this position",
                pos,
            )),
            other => Err(CompileError::unsupported(
                format!("expression '{other}' is not supported"),
                pos,
            )),
        }
    }

    fn col_ty(&self, i: usize) -> SqlType {
        self.scope
            .cols
            .get(i)
            .map(|c| c.ty)
            .unwrap_or(SqlType::Null)
    }

    fn bind_binary(
        &mut self,
        left: &Expr,
        op: &BinaryOperator,
        right: &Expr,
        pos: Option<Position>,
    ) -> Result<Bound, CompileError> {
        let bop = match op {
            BinaryOperator::Plus => BinaryOp::Add,
            BinaryOperator::Minus => BinaryOp::Sub,
            BinaryOperator::Multiply => BinaryOp::Mul,
            BinaryOperator::Divide => BinaryOp::Div,
            BinaryOperator::Modulo => BinaryOp::Mod,
            BinaryOperator::StringConcat => BinaryOp::Concat,
            BinaryOperator::Gt => BinaryOp::Gt,
            BinaryOperator::Lt => BinaryOp::Lt,
            BinaryOperator::GtEq => BinaryOp::GtEq,
            BinaryOperator::LtEq => BinaryOp::LtEq,
            BinaryOperator::Eq => BinaryOp::Eq,
            BinaryOperator::NotEq => BinaryOp::NotEq,
            BinaryOperator::And => BinaryOp::And,
            BinaryOperator::Or => BinaryOp::Or,
            other => {
                return Err(CompileError::unsupported(
                    format!("operator {other} is not supported"),
                    pos,
                ))
            }
        };
        if matches!(bop, BinaryOp::And | BinaryOp::Or) {
            let l = self.bind_bool(left)?;
            let r = self.bind_bool(right)?;
            return Ok((ScalarExpr::binary(bop, l, r), SqlType::Boolean));
        }
        let (l, lt) = self.bind(left)?;
        let (r, rt) = self.bind(right)?;
        match bop {
            BinaryOp::Concat => {
                let l = coerce(l, lt, SqlType::Varchar);
                let r = coerce(r, rt, SqlType::Varchar);
                Ok((ScalarExpr::binary(bop, l, r), SqlType::Varchar))
            }
            op if op.is_comparison() => {
                let (l, r) = coerce_comparison(l, lt, r, rt, pos)?;
                Ok((ScalarExpr::binary(op, l, r), SqlType::Boolean))
            }
            op => {
                let x = coerce_arithmetic(op, l, lt, r, rt, pos)?;
                let ty = x.ty(&self.pseudo_types(&x));
                Ok((x, ty))
            }
        }
    }

    /// Input types for computing the type of an expression built from bound parts: the
    /// operands of `x` carry explicit casts or literal types except for column refs,
    /// whose types come from the scope or the aggregate output.
    fn pseudo_types(&self, x: &ScalarExpr) -> Vec<SqlType> {
        let n = x.columns().last().map(|c| c + 1).unwrap_or(0);
        (0..n).map(|i| self.output_col_ty(i)).collect()
    }

    fn output_col_ty(&self, i: usize) -> SqlType {
        match self.agg.as_deref() {
            Some(agg) => {
                let ng = agg.groups.len();
                if i < ng {
                    agg.group_types.get(i).copied().unwrap_or(SqlType::Null)
                } else {
                    agg.aggs.get(i - ng).map(|a| a.ty).unwrap_or(SqlType::Null)
                }
            }
            None => self.col_ty(i),
        }
    }

    fn string_arg(&mut self, e: &Expr, func: &str) -> Result<ScalarExpr, CompileError> {
        let (x, t) = self.bind(e)?;
        match t {
            SqlType::Varchar => Ok(x),
            SqlType::Null => Ok(coerce(x, t, SqlType::Varchar)),
            other => Err(CompileError::plan(
                format!("{func} expects VARCHAR, got {other}"),
                pos_of(e),
            )),
        }
    }

    fn int_arg(&mut self, e: &Expr, func: &str) -> Result<ScalarExpr, CompileError> {
        let (x, t) = self.bind(e)?;
        match t {
            SqlType::Int | SqlType::BigInt | SqlType::Null => Ok(coerce(x, t, SqlType::BigInt)),
            other => Err(CompileError::plan(
                format!("{func} expects an integer, got {other}"),
                pos_of(e),
            )),
        }
    }

    fn numeric_arg(&mut self, e: &Expr, func: &str) -> Result<Bound, CompileError> {
        let (x, t) = self.bind(e)?;
        match t {
            t if t.is_numeric() => Ok((x, t)),
            SqlType::Null => Ok((coerce(x, t, SqlType::Double), SqlType::Double)),
            other => Err(CompileError::plan(
                format!("{func} expects a number, got {other}"),
                pos_of(e),
            )),
        }
    }

    fn double_arg(&mut self, e: &Expr, func: &str) -> Result<ScalarExpr, CompileError> {
        let (x, t) = self.numeric_arg(e, func)?;
        Ok(coerce(x, t, SqlType::Double))
    }

    fn temporal_arg(&mut self, e: &Expr, func: &str) -> Result<Bound, CompileError> {
        let (x, t) = self.bind(e)?;
        match t {
            SqlType::Date | SqlType::Timestamp => Ok((x, t)),
            SqlType::Null => Ok((coerce(x, t, SqlType::Timestamp), SqlType::Timestamp)),
            SqlType::Varchar if super::types::is_string_literal(&x) => {
                Ok((coerce(x, t, SqlType::Timestamp), SqlType::Timestamp))
            }
            other => Err(CompileError::plan(
                format!("{func} expects a DATE or TIMESTAMP, got {other}"),
                pos_of(e),
            )),
        }
    }

    fn bind_function(
        &mut self,
        f: &Function,
        pos: Option<Position>,
    ) -> Result<Bound, CompileError> {
        let name = function_name(f);
        if f.over.is_some() {
            let message = if name == "ROW_NUMBER" {
                format!(
                    "ROW_NUMBER() OVER (…) inside an expression or an aggregating SELECT is \
                     not supported: {}",
                    super::rank::SUPPORTED
                )
            } else {
                format!(
                    "window function {name}(...) OVER (...) is not supported: {}",
                    super::rank::SUPPORTED
                )
            };
            return Err(CompileError::unsupported(message, pos));
        }
        if !f.within_group.is_empty() || f.null_treatment.is_some() {
            return Err(CompileError::unsupported(
                format!("WITHIN GROUP / null treatment on {name} is not supported"),
                pos,
            ));
        }
        if f.filter.is_some() && !AGGREGATES.contains(&name.as_str()) {
            return Err(CompileError::plan(
                format!("FILTER is only allowed on aggregate functions, not {name}"),
                pos,
            ));
        }
        let mut args: Vec<&Expr> = Vec::new();
        let mut distinct = false;
        let mut star = false;
        match &f.args {
            FunctionArguments::None => {}
            FunctionArguments::Subquery(_) => {
                return Err(CompileError::unsupported(
                    "subqueries as function arguments are not supported",
                    pos,
                ))
            }
            FunctionArguments::List(l) => {
                if !l.clauses.is_empty() {
                    return Err(CompileError::unsupported(
                        format!("clauses inside {name}(...) are not supported"),
                        pos,
                    ));
                }
                distinct = matches!(l.duplicate_treatment, Some(DuplicateTreatment::Distinct));
                for a in &l.args {
                    match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
                        FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                        _ => {
                            return Err(CompileError::unsupported(
                                format!("named or wildcard arguments to {name} are not supported"),
                                pos,
                            ))
                        }
                    }
                }
            }
        }
        if AGGREGATES.contains(&name.as_str()) {
            return self.bind_aggregate(&name, &args, distinct, star, f.filter.as_deref(), pos);
        }
        if distinct || star {
            return Err(CompileError::plan(
                format!("DISTINCT or * is only allowed in aggregate functions, not {name}"),
                pos,
            ));
        }
        if is_window_aux(&name) {
            return self.bind_window_aux(&name, pos);
        }
        let arity = |min: usize, max: usize| -> Result<(), CompileError> {
            if args.len() < min || args.len() > max {
                let expected = if min == max {
                    format!("{min}")
                } else if max == usize::MAX {
                    format!("at least {min}")
                } else {
                    format!("{min} to {max}")
                };
                Err(CompileError::plan(
                    format!("{name} takes {expected} argument(s), got {}", args.len()),
                    pos,
                ))
            } else {
                Ok(())
            }
        };
        let arg = |i: usize| -> Result<&Expr, CompileError> {
            args.get(i)
                .copied()
                .ok_or_else(|| CompileError::plan(format!("{name}: missing argument"), pos))
        };
        let call = |func: Func, args: Vec<ScalarExpr>, ty: SqlType| -> Bound {
            (ScalarExpr::Call { func, args }, ty)
        };
        match name.as_str() {
            "UPPER" | "LOWER" | "CHAR_LENGTH" | "CHARACTER_LENGTH" | "LENGTH" | "LEN" => {
                arity(1, 1)?;
                let s = self.string_arg(arg(0)?, &name)?;
                Ok(match name.as_str() {
                    "UPPER" => call(Func::Upper, vec![s], SqlType::Varchar),
                    "LOWER" => call(Func::Lower, vec![s], SqlType::Varchar),
                    _ => call(Func::CharLength, vec![s], SqlType::BigInt),
                })
            }
            "SUBSTRING" | "SUBSTR" => {
                arity(2, 3)?;
                let mut a = vec![
                    self.string_arg(arg(0)?, &name)?,
                    self.int_arg(arg(1)?, &name)?,
                ];
                if let Some(l) = args.get(2) {
                    a.push(self.int_arg(l, &name)?);
                }
                Ok(call(Func::Substring, a, SqlType::Varchar))
            }
            "CONCAT" => {
                arity(1, usize::MAX)?;
                // Flink's CONCAT is NULL when any argument is NULL: bind it as `a || b || …`
                // (the `||` operator has exactly that semantics).
                let mut acc: Option<ScalarExpr> = None;
                for e in &args {
                    let (x, t) = self.bind(e)?;
                    let x = coerce(x, t, SqlType::Varchar);
                    acc = Some(match acc {
                        None => x,
                        Some(prev) => ScalarExpr::binary(BinaryOp::Concat, prev, x),
                    });
                }
                let out = acc.unwrap_or_else(|| str_lit(""));
                Ok((out, SqlType::Varchar))
            }
            "TRIM" | "LTRIM" | "RTRIM" | "BTRIM" => {
                arity(1, 2)?;
                let mut a = vec![self.string_arg(arg(0)?, &name)?];
                if let Some(c) = args.get(1) {
                    a.push(self.string_arg(c, &name)?);
                }
                let func = match name.as_str() {
                    "LTRIM" => Func::LTrim,
                    "RTRIM" => Func::RTrim,
                    _ => Func::Trim,
                };
                Ok(call(func, a, SqlType::Varchar))
            }
            "DATE_FORMAT" => {
                arity(2, 2)?;
                let (t_expr, t) = self.bind(arg(0)?)?;
                let t_expr = match t {
                    SqlType::Timestamp => t_expr,
                    SqlType::Date | SqlType::Varchar | SqlType::Null => {
                        coerce(t_expr, t, SqlType::Timestamp)
                    }
                    other => {
                        return Err(CompileError::plan(
                            format!(
                                "DATE_FORMAT expects a TIMESTAMP, DATE or VARCHAR, got {other}"
                            ),
                            pos_of(arg(0)?),
                        ))
                    }
                };
                let pattern = self.string_arg(arg(1)?, &name)?;
                if let ScalarExpr::Literal(Datum::Str(p), _) = &pattern {
                    let at = pos_of(arg(1)?);
                    sluice_expr::temporal::check_java_pattern(p)
                        .map_err(|m| CompileError::plan(m, at))?;
                }
                Ok(call(
                    Func::DateFormat,
                    vec![t_expr, pattern],
                    SqlType::Varchar,
                ))
            }
            "SPLIT_INDEX" => {
                arity(3, 3)?;
                let a = vec![
                    self.string_arg(arg(0)?, &name)?,
                    self.string_arg(arg(1)?, &name)?,
                    self.int_arg(arg(2)?, &name)?,
                ];
                Ok(call(Func::SplitIndex, a, SqlType::Varchar))
            }
            "REGEXP_EXTRACT" => {
                arity(2, 3)?;
                let mut a = vec![
                    self.string_arg(arg(0)?, &name)?,
                    self.string_arg(arg(1)?, &name)?,
                ];
                if let Some(g) = args.get(2) {
                    a.push(self.int_arg(g, &name)?);
                }
                if let ScalarExpr::Literal(Datum::Str(p), _) = &a[1] {
                    let at = pos_of(arg(1)?);
                    let re = regex::Regex::new(p).map_err(|e| {
                        CompileError::plan(
                            format!("REGEXP_EXTRACT: invalid regular expression: {e}"),
                            at,
                        )
                    })?;
                    if let Some(ScalarExpr::Literal(Datum::Int(g), _)) = a.get(2) {
                        let groups = re.captures_len() - 1;
                        if *g < 0 || *g as u64 > groups as u64 {
                            return Err(CompileError::plan(
                                format!(
                                    "REGEXP_EXTRACT: group {g} does not exist (the expression has {groups} group(s))"
                                ),
                                pos_of(arg(2)?),
                            ));
                        }
                    }
                }
                Ok(call(Func::RegexpExtract, a, SqlType::Varchar))
            }
            "REPLACE" => {
                arity(3, 3)?;
                let a = vec![
                    self.string_arg(arg(0)?, &name)?,
                    self.string_arg(arg(1)?, &name)?,
                    self.string_arg(arg(2)?, &name)?,
                ];
                Ok(call(Func::Replace, a, SqlType::Varchar))
            }
            "ABS" => {
                arity(1, 1)?;
                let (x, t) = self.numeric_arg(arg(0)?, &name)?;
                Ok(call(Func::Abs, vec![x], t))
            }
            "ROUND" => {
                arity(1, 2)?;
                let (x, t) = self.numeric_arg(arg(0)?, &name)?;
                let mut a = vec![x];
                if let Some(d) = args.get(1) {
                    let (dx, dt) = self.bind(d)?;
                    if !matches!(dt, SqlType::Int | SqlType::BigInt | SqlType::Null) {
                        return Err(CompileError::plan(
                            format!("ROUND digits must be an integer, got {dt}"),
                            pos_of(*d),
                        ));
                    }
                    a.push(coerce(dx, dt, SqlType::Int));
                }
                Ok(call(Func::Round, a, t))
            }
            "FLOOR" | "CEIL" | "CEILING" => {
                arity(1, 1)?;
                let (x, t) = self.numeric_arg(arg(0)?, &name)?;
                let func = if name == "FLOOR" {
                    Func::Floor
                } else {
                    Func::Ceil
                };
                Ok(call(func, vec![x], func.return_type(&[t])))
            }
            "MOD" => {
                arity(2, 2)?;
                let (l, lt) = self.bind(arg(0)?)?;
                let (r, rt) = self.bind(arg(1)?)?;
                if !(lt.is_numeric() || lt == SqlType::Null)
                    || !(rt.is_numeric() || rt == SqlType::Null)
                {
                    return Err(CompileError::plan(
                        format!("MOD expects numbers, got {lt} and {rt}"),
                        pos,
                    ));
                }
                let x = coerce_arithmetic(BinaryOp::Mod, l, lt, r, rt, pos)?;
                let ty = x.ty(&self.pseudo_types(&x));
                Ok((x, ty))
            }
            "POWER" | "POW" => {
                arity(2, 2)?;
                let a = vec![
                    self.double_arg(arg(0)?, &name)?,
                    self.double_arg(arg(1)?, &name)?,
                ];
                Ok(call(Func::Power, a, SqlType::Double))
            }
            "SQRT" | "LN" | "EXP" => {
                arity(1, 1)?;
                let a = vec![self.double_arg(arg(0)?, &name)?];
                let func = match name.as_str() {
                    "SQRT" => Func::Sqrt,
                    "LN" => Func::Ln,
                    _ => Func::Exp,
                };
                Ok(call(func, a, SqlType::Double))
            }
            "YEAR" | "QUARTER" | "MONTH" | "WEEK" | "DAYOFMONTH" | "DAYOFYEAR" | "HOUR"
            | "MINUTE" | "SECOND" => {
                // Flink's shorthands for EXTRACT(unit FROM t).
                arity(1, 1)?;
                let unit = match name.as_str() {
                    "YEAR" => TimeUnit::Year,
                    "QUARTER" => TimeUnit::Quarter,
                    "MONTH" => TimeUnit::Month,
                    "WEEK" => TimeUnit::Week,
                    "DAYOFMONTH" => TimeUnit::Day,
                    "DAYOFYEAR" => TimeUnit::DayOfYear,
                    "HOUR" => TimeUnit::Hour,
                    "MINUTE" => TimeUnit::Minute,
                    _ => TimeUnit::Second,
                };
                let (x, _) = self.temporal_arg(arg(0)?, &name)?;
                Ok(call(Func::Extract(unit), vec![x], SqlType::BigInt))
            }
            "DATE_TRUNC" => {
                arity(2, 2)?;
                let unit_expr = arg(0)?;
                let unit = match unit_expr {
                    Expr::Value(v) => match &v.value {
                        Value::SingleQuotedString(s) => time_unit_of_name(s),
                        _ => None,
                    },
                    _ => None,
                }
                .filter(|u| truncatable(*u))
                .ok_or_else(|| {
                    CompileError::plan(
                        "DATE_TRUNC expects a unit string such as 'day' or 'hour'",
                        pos_of(unit_expr),
                    )
                })?;
                // DuckDB's date_trunc returns a TIMESTAMP, also for a DATE.
                let (x, t) = self.temporal_arg(arg(1)?, &name)?;
                let x = coerce(x, t, SqlType::Timestamp);
                Ok(call(Func::DateTrunc(unit), vec![x], SqlType::Timestamp))
            }
            "COALESCE" => {
                arity(1, usize::MAX)?;
                let mut bound = Vec::with_capacity(args.len());
                for e in &args {
                    bound.push((self.bind(e)?, pos_of(*e)));
                }
                let ty = unify(bound.iter().map(|(b, p)| (b.1, *p)), "COALESCE")?;
                Ok((
                    ScalarExpr::Coalesce(
                        bound
                            .into_iter()
                            .map(|((x, t), _)| coerce(x, t, ty))
                            .collect(),
                    ),
                    ty,
                ))
            }
            "NULLIF" => {
                arity(2, 2)?;
                let (a, at) = self.bind(arg(0)?)?;
                let (b, bt) = self.bind(arg(1)?)?;
                let (ca, cb) = coerce_comparison(a.clone(), at, b, bt, pos)?;
                Ok((
                    ScalarExpr::Case {
                        whens: vec![(
                            ScalarExpr::binary(BinaryOp::Eq, ca, cb),
                            ScalarExpr::Literal(Datum::Null, at),
                        )],
                        else_: Some(Box::new(a)),
                    },
                    at,
                ))
            }
            "IF" | "IFF" => {
                arity(3, 3)?;
                let c = self.bind_bool(arg(0)?)?;
                let (a, at) = self.bind(arg(1)?)?;
                let (b, bt) = self.bind(arg(2)?)?;
                let ty = unify(
                    [(at, pos_of(arg(1)?)), (bt, pos_of(arg(2)?))].into_iter(),
                    "IF",
                )?;
                Ok((
                    ScalarExpr::Case {
                        whens: vec![(c, coerce(a, at, ty))],
                        else_: Some(Box::new(coerce(b, bt, ty))),
                    },
                    ty,
                ))
            }
            "TUMBLE" | "HOP" | "SESSION" | "CUMULATE" => Err(CompileError::plan(
                format!("{name}(...) is only allowed in GROUP BY or as a table function in FROM"),
                pos,
            )),
            "PROCTIME" => {
                if !args.is_empty() {
                    return Err(CompileError::plan("PROCTIME() takes no arguments", pos));
                }
                Ok((
                    ScalarExpr::Call {
                        func: Func::ProcTime,
                        args: vec![],
                    },
                    SqlType::Timestamp,
                ))
            }
            "NOW" | "CURRENT_TIMESTAMP" | "CURRENT_DATE" | "LOCALTIMESTAMP" | "RAND" | "RANDOM"
            | "UUID" => Err(CompileError::unsupported(
                format!("non-deterministic function {name} is not supported"),
                pos,
            )),
            _ => Err(CompileError::plan(format!("unknown function {name}"), pos)),
        }
    }

    fn bind_aggregate(
        &mut self,
        name: &str,
        args: &[&Expr],
        distinct: bool,
        star: bool,
        filter: Option<&Expr>,
        pos: Option<Position>,
    ) -> Result<Bound, CompileError> {
        if self.agg.is_none() {
            return Err(CompileError::plan(
                format!(
                    "aggregate function {name} is not allowed in {}",
                    self.clause
                ),
                pos,
            ));
        }
        let func = match name {
            "COUNT" => AggFunc::Count,
            "SUM" => AggFunc::Sum,
            "AVG" => AggFunc::Avg,
            "MIN" => AggFunc::Min,
            _ => AggFunc::Max,
        };
        let arg = if star {
            if func != AggFunc::Count || !args.is_empty() || distinct {
                return Err(CompileError::plan(
                    format!("{name}(*) is not valid; only COUNT(*) is"),
                    pos,
                ));
            }
            None
        } else {
            let [a] = args else {
                return Err(CompileError::plan(
                    format!("{name} takes exactly one argument"),
                    pos,
                ));
            };
            let saved = self.agg.take();
            let clause = std::mem::replace(&mut self.clause, "an aggregate argument");
            let r = self.bind(a);
            self.agg = saved;
            self.clause = clause;
            let (x, t) = r?;
            let (x, t) = match (func, t) {
                (AggFunc::Sum | AggFunc::Avg, t) if t.is_numeric() => (x, t),
                (AggFunc::Sum | AggFunc::Avg, SqlType::Null) => {
                    (coerce(x, t, SqlType::Int), SqlType::Int)
                }
                (AggFunc::Sum | AggFunc::Avg, t) => {
                    return Err(CompileError::plan(
                        format!("{name} expects a number, got {t}"),
                        pos_of(*a),
                    ))
                }
                (_, SqlType::Null) => (coerce(x, t, SqlType::Int), SqlType::Int),
                (_, t) => (x, t),
            };
            Some((x, t))
        };
        // `agg(x) FILTER (WHERE c)` = `agg(CASE WHEN c THEN x END)` (aggregates skip
        // NULLs); `COUNT(*) FILTER (WHERE c)` = `COUNT(CASE WHEN c THEN 1 END)`.
        let arg = match filter {
            None => arg,
            Some(c) => {
                let saved = self.agg.take();
                let clause = std::mem::replace(&mut self.clause, "FILTER");
                let r = self.bind_bool(c);
                self.agg = saved;
                self.clause = clause;
                let cond = r?;
                let (x, t) = arg.unwrap_or((
                    ScalarExpr::Literal(Datum::Int(1), SqlType::Int),
                    SqlType::Int,
                ));
                Some((
                    ScalarExpr::Case {
                        whens: vec![(cond, x)],
                        else_: None,
                    },
                    t,
                ))
            }
        };
        let Some(agg) = self.agg.as_deref_mut() else {
            return Err(CompileError::internal("aggregate state vanished"));
        };
        let ng = agg.groups.len();
        let (arg_idx, arg_ty) = match arg {
            None => (None, None),
            Some((x, t)) => {
                let i = match agg.args.iter().position(|a| *a == x) {
                    Some(i) => i,
                    None => {
                        agg.args.push(x);
                        agg.args.len() - 1
                    }
                };
                (Some(ng + i), Some(t))
            }
        };
        let call = AggregateCall {
            func,
            arg: arg_idx,
            distinct,
            ty: func.return_type(arg_ty),
        };
        let ty = call.ty;
        let j = match agg.aggs.iter().position(|c| *c == call) {
            Some(j) => j,
            None => {
                agg.aggs.push(call);
                agg.aggs.len() - 1
            }
        };
        Ok((ScalarExpr::Column(ng + j), ty))
    }

    fn bind_window_aux(
        &mut self,
        name: &str,
        pos: Option<Position>,
    ) -> Result<Bound, CompileError> {
        let Some(w) = self.agg.as_deref().and_then(|a| a.window.clone()) else {
            return Err(CompileError::plan(
                format!("{name} requires a GROUP BY with the matching group window"),
                pos,
            ));
        };
        let (prefix, suffix) = name.split_once('_').unwrap_or((name, ""));
        if prefix != w.name {
            return Err(CompileError::plan(
                format!("{name} does not match the group window {}(...)", w.name),
                pos,
            ));
        }
        let start = ScalarExpr::Column(w.start_group);
        let end = ScalarExpr::Column(w.end_group);
        match suffix {
            "START" => Ok((start, SqlType::Timestamp)),
            "END" => Ok((end, SqlType::Timestamp)),
            "ROWTIME" => Ok((
                ScalarExpr::binary(
                    BinaryOp::Sub,
                    end,
                    ScalarExpr::Literal(Datum::Interval(1), SqlType::Interval),
                ),
                SqlType::Timestamp,
            )),
            _ => Err(CompileError::unsupported(
                format!("{name} is not supported"),
                pos,
            )),
        }
    }
}

/// `CAST(x AS <integer>)` for a DOUBLE or DECIMAL `x`, truncating toward zero as Flink
/// does: `CAST(CASE WHEN x >= 0 THEN FLOOR(x) ELSE CEIL(x) END AS to)`, whose final cast
/// is exact whatever rounding the evaluator's cast uses.
fn truncating_cast(x: ScalarExpr, t: SqlType, to: SqlType) -> ScalarExpr {
    let zero = match t {
        SqlType::Double => Datum::Float(F64(0.0)),
        _ => Datum::Decimal(0),
    };
    let truncated = ScalarExpr::Case {
        whens: vec![(
            ScalarExpr::binary(BinaryOp::GtEq, x.clone(), ScalarExpr::Literal(zero, t)),
            ScalarExpr::Call {
                func: Func::Floor,
                args: vec![x.clone()],
            },
        )],
        else_: Some(Box::new(ScalarExpr::Call {
            func: Func::Ceil,
            args: vec![x],
        })),
    };
    coerce(truncated, Func::Floor.return_type(&[t]), to)
}

/// The column name of a plain column reference expression.
fn column_name(e: &Expr) -> Option<String> {
    match e {
        Expr::Identifier(id) => Some(id.value.clone()),
        Expr::CompoundIdentifier(parts) => Some(
            parts
                .iter()
                .map(|p| p.value.as_str())
                .collect::<Vec<_>>()
                .join("."),
        ),
        Expr::Nested(x) => column_name(x),
        _ => None,
    }
}

/// The common type of several branch types (CASE, COALESCE, IF).
pub fn unify(
    types: impl Iterator<Item = (SqlType, Option<Position>)>,
    what: &str,
) -> Result<SqlType, CompileError> {
    let mut acc = SqlType::Null;
    for (t, p) in types {
        acc = common_type(acc, t).ok_or_else(|| {
            CompileError::plan(
                format!("{what} branches have incompatible types {acc} and {t}"),
                p,
            )
        })?;
    }
    Ok(acc)
}

/// A literal value.
fn literal(v: &Value, pos: Option<Position>) -> Result<Bound, CompileError> {
    Ok(match v {
        Value::Number(n, _) => {
            let text = n.to_string();
            let (d, t) = numeric_literal(&text)
                .ok_or_else(|| CompileError::plan(format!("invalid number {text}"), pos))?;
            (ScalarExpr::Literal(d, t), t)
        }
        Value::SingleQuotedString(s)
        | Value::EscapedStringLiteral(s)
        | Value::NationalStringLiteral(s)
        | Value::TripleSingleQuotedString(s) => (str_lit(s.clone()), SqlType::Varchar),
        Value::Boolean(b) => (
            ScalarExpr::Literal(Datum::Bool(*b), SqlType::Boolean),
            SqlType::Boolean,
        ),
        Value::Null => (
            ScalarExpr::Literal(Datum::Null, SqlType::Null),
            SqlType::Null,
        ),
        other => {
            return Err(CompileError::unsupported(
                format!("literal {other} is not supported"),
                pos,
            ))
        }
    })
}

/// A bound constant INTERVAL (window sizes, gaps): its length in ms, which must be > 0.
pub fn constant_interval(e: &Expr, what: &'static str) -> Result<i64, CompileError> {
    let scope = Scope::default();
    let mut b = ExprBinder::new(&scope, what);
    let (x, _) = b.bind(e)?;
    match x {
        ScalarExpr::Literal(Datum::Interval(ms), _) if ms > 0 => Ok(ms),
        ScalarExpr::Literal(Datum::Interval(_), _) => Err(CompileError::plan(
            format!("{what} must be a positive interval"),
            pos_of(e),
        )),
        _ => Err(CompileError::plan(
            format!("{what} must be an INTERVAL literal"),
            pos_of(e),
        )),
    }
}
