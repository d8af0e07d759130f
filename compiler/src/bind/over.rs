//! Binding aggregates over a frame of rows — `AVG(x) OVER (PARTITION BY … ORDER BY …
//! ROWS BETWEEN n PRECEDING AND CURRENT ROW)` — into a [`LogicalPlan::Over`] (Flink's
//! OVER aggregate; Nexmark q6).
//!
//! Like `ROW_NUMBER()`, each such call must be a whole select item of a SELECT without
//! GROUP BY: the SELECT's FROM (after its WHERE) becomes the node's input, and the item
//! reads the aggregate column the node appends. Every OVER aggregate of one SELECT
//! shares one window (the same PARTITION BY, ORDER BY and frame). The frame must be
//! given in ROWS, bounded: `ROWS BETWEEN n PRECEDING AND CURRENT ROW` or `ROWS n
//! PRECEDING` (the SQL default frame, `RANGE UNBOUNDED PRECEDING`, counts ties in the
//! ORDER BY as one row and grows without bound: not supported). Arguments are
//! columns; `COUNT(*)` counts the frame's rows.

use super::expr::{function_name, pos_of, ExprBinder};
use super::scope::Scope;
use crate::error::{CompileError, Position};
use crate::plan::LogicalPlan;
use sluice_catalogs::SqlType;
use sluice_expr::expr::{AggFunc, AggregateCall, ScalarExpr, SortKey};
use sqlparser::ast::{
    Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments, Value, WindowFrameBound,
    WindowFrameUnits, WindowSpec, WindowType,
};

/// `e` when it is an aggregate call with an OVER clause (`SUM(x) OVER (…)`).
pub fn over_call(e: &Expr) -> Option<&Function> {
    match e {
        Expr::Function(f)
            if f.over.is_some()
                && ["COUNT", "SUM", "AVG", "MIN", "MAX"].contains(&function_name(f).as_str()) =>
        {
            Some(f)
        }
        Expr::Nested(inner) => over_call(inner),
        _ => None,
    }
}

/// The window every OVER aggregate of a SELECT shares.
#[derive(PartialEq)]
struct Window {
    partition_by: Vec<usize>,
    order_by: Vec<SortKey>,
    preceding: Option<u64>,
}

/// Binds the OVER aggregate `calls` (each with its position) of one SELECT over
/// `input` (whose columns `scope` names): an [`LogicalPlan::Over`] whose last
/// `calls.len()` columns are their values, in order.
pub fn bind_over(
    calls: &[(&Function, Option<Position>)],
    scope: &Scope,
    input: LogicalPlan,
) -> Result<LogicalPlan, CompileError> {
    let mut window: Option<Window> = None;
    let mut aggs = Vec::with_capacity(calls.len());
    for (f, pos) in calls {
        let name = function_name(f);
        let spec = match &f.over {
            Some(WindowType::WindowSpec(spec)) if spec.window_name.is_none() => spec,
            _ => {
                return Err(CompileError::unsupported(
                    "named windows (OVER w) are not supported",
                    *pos,
                ))
            }
        };
        let w = window_of(spec, scope, &name, *pos)?;
        match &window {
            Some(first) if *first != w => {
                return Err(CompileError::unsupported(
                    "every OVER aggregate of a SELECT must use the same window (PARTITION BY, \
                     ORDER BY and frame); compute the others in another subquery",
                    *pos,
                ))
            }
            Some(_) => {}
            None => window = Some(w),
        }
        aggs.push(aggregate_of(f, &name, scope, *pos)?);
    }
    let Some(w) = window else {
        return Err(CompileError::internal("no OVER aggregate to bind"));
    };
    Ok(LogicalPlan::Over {
        input: Box::new(input),
        partition_by: w.partition_by,
        order_by: w.order_by,
        aggs,
        preceding: w.preceding,
    })
}

/// The partition, order and frame of one call's window.
fn window_of(
    spec: &WindowSpec,
    scope: &Scope,
    name: &str,
    pos: Option<Position>,
) -> Result<Window, CompileError> {
    let what = format!("{name}(…) OVER");
    if spec.order_by.is_empty() {
        return Err(CompileError::plan(
            format!("{what} needs an ORDER BY (the order its frames follow)"),
            pos,
        ));
    }
    let (partition_by, order_by) = super::rank::partition_and_order(spec, scope, &what)?;
    let Some(frame) = &spec.window_frame else {
        return Err(CompileError::unsupported(
            format!(
                "{what} needs a ROWS frame, e.g. ROWS BETWEEN 10 PRECEDING AND CURRENT ROW \
                 (the default frame, RANGE UNBOUNDED PRECEDING, is not supported)"
            ),
            pos,
        ));
    };
    if frame.units != WindowFrameUnits::Rows {
        return Err(CompileError::unsupported(
            format!(
                "{what}: only ROWS frames are supported, not {}",
                frame.units
            ),
            pos,
        ));
    }
    if !matches!(frame.end_bound, None | Some(WindowFrameBound::CurrentRow)) {
        return Err(CompileError::unsupported(
            format!("{what}: a frame must end at the CURRENT ROW"),
            pos,
        ));
    }
    let preceding = match &frame.start_bound {
        WindowFrameBound::CurrentRow => Some(0),
        WindowFrameBound::Preceding(None) => {
            return Err(CompileError::unsupported(
                format!(
                    "{what}: UNBOUNDED PRECEDING is not supported (every change would \
                     recompute the whole partition's history); bound the frame: ROWS \
                     BETWEEN n PRECEDING AND CURRENT ROW"
                ),
                pos,
            ))
        }
        WindowFrameBound::Preceding(Some(n)) => match n.as_ref() {
            Expr::Value(v) => match &v.value {
                Value::Number(text, _) => text.parse::<u64>().ok(),
                _ => None,
            },
            _ => None,
        }
        .map(Some)
        .ok_or_else(|| {
            CompileError::plan(
                format!("{what}: the rows PRECEDING must be a non-negative integer"),
                pos_of(n.as_ref()).or(pos),
            )
        })?,
        WindowFrameBound::Following(_) => {
            return Err(CompileError::unsupported(
                format!("{what}: a frame must start at or before the CURRENT ROW"),
                pos,
            ))
        }
    };
    Ok(Window {
        partition_by,
        order_by,
        preceding,
    })
}

/// The aggregate of one call: its function, its argument column, its type.
fn aggregate_of(
    f: &Function,
    name: &str,
    scope: &Scope,
    pos: Option<Position>,
) -> Result<AggregateCall, CompileError> {
    if f.filter.is_some() || !f.within_group.is_empty() || f.null_treatment.is_some() {
        return Err(CompileError::unsupported(
            format!("FILTER / WITHIN GROUP on {name}(…) OVER is not supported"),
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
    let list = match &f.args {
        FunctionArguments::List(l) => l,
        _ => {
            return Err(CompileError::plan(
                format!("{name} takes exactly one argument"),
                pos,
            ))
        }
    };
    if list.duplicate_treatment.is_some() {
        return Err(CompileError::unsupported(
            format!("{name}(DISTINCT …) OVER is not supported"),
            pos,
        ));
    }
    let (arg, arg_ty) = match list.args.as_slice() {
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)] if func == AggFunc::Count => (None, None),
        [FunctionArg::Unnamed(FunctionArgExpr::Expr(e))] => {
            match ExprBinder::new(scope, "an OVER aggregate argument").bind(e)? {
                (ScalarExpr::Column(c), t) => {
                    if matches!(func, AggFunc::Sum | AggFunc::Avg) && !t.is_numeric() {
                        return Err(CompileError::plan(
                            format!("{name} expects a number, got {t}"),
                            pos_of(e),
                        ));
                    }
                    (Some(c), Some(t))
                }
                _ => {
                    return Err(CompileError::unsupported(
                        format!(
                            "the argument of {name}(…) OVER must be a column (compute \
                             expressions in a subquery first)"
                        ),
                        pos_of(e),
                    ))
                }
            }
        }
        _ => {
            return Err(CompileError::plan(
                format!("{name} takes exactly one argument"),
                pos,
            ))
        }
    };
    let ty = func.return_type(arg_ty.filter(|t| *t != SqlType::Null));
    Ok(AggregateCall {
        func,
        arg,
        distinct: false,
        ty,
    })
}
