//! Plan and expression helpers shared by the optimizer rules and lowering.

use crate::error::CompileError;
use crate::plan::LogicalPlan;
use sluice_expr::expr::ScalarExpr;

/// Rebuilds `plan` with each direct input replaced by `f(input)`, in input order.
pub fn map_inputs(
    plan: LogicalPlan,
    f: &mut impl FnMut(LogicalPlan) -> Result<LogicalPlan, CompileError>,
) -> Result<LogicalPlan, CompileError> {
    Ok(match plan {
        LogicalPlan::Scan { .. } | LogicalPlan::Values { .. } => plan,
        LogicalPlan::Filter { input, predicate } => LogicalPlan::Filter {
            input: Box::new(f(*input)?),
            predicate,
        },
        LogicalPlan::Project {
            input,
            exprs,
            names,
        } => LogicalPlan::Project {
            input: Box::new(f(*input)?),
            exprs,
            names,
        },
        LogicalPlan::Join {
            left,
            right,
            kind,
            on,
            filter,
        } => LogicalPlan::Join {
            left: Box::new(f(*left)?),
            right: Box::new(f(*right)?),
            kind,
            on,
            filter,
        },
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
        } => LogicalPlan::Aggregate {
            input: Box::new(f(*input)?),
            group_by,
            aggs,
        },
        LogicalPlan::Window {
            input,
            kind,
            time_col,
            partition_by,
        } => LogicalPlan::Window {
            input: Box::new(f(*input)?),
            kind,
            time_col,
            partition_by,
        },
        LogicalPlan::Union { inputs } => LogicalPlan::Union {
            inputs: inputs.into_iter().map(&mut *f).collect::<Result<_, _>>()?,
        },
        LogicalPlan::Sort {
            input,
            keys,
            limit,
            offset,
        } => LogicalPlan::Sort {
            input: Box::new(f(*input)?),
            keys,
            limit,
            offset,
        },
        LogicalPlan::TopK {
            input,
            partition_by,
            order_by,
            limit,
            rank_column,
            position,
        } => LogicalPlan::TopK {
            input: Box::new(f(*input)?),
            partition_by,
            order_by,
            limit,
            rank_column,
            position,
        },
        LogicalPlan::Over {
            input,
            partition_by,
            order_by,
            aggs,
            preceding,
        } => LogicalPlan::Over {
            input: Box::new(f(*input)?),
            partition_by,
            order_by,
            aggs,
            preceding,
        },
    })
}

/// Applies `f` to every node bottom-up (inputs first, then the node built from the
/// rewritten inputs).
pub fn transform_up(
    plan: LogicalPlan,
    f: &mut impl FnMut(LogicalPlan) -> Result<LogicalPlan, CompileError>,
) -> Result<LogicalPlan, CompileError> {
    let plan = map_inputs(plan, &mut |input| transform_up(input, f))?;
    f(plan)
}

/// Replaces every `Column(i)` in `expr` by `exprs[i]` (the expression an underlying
/// projection computes for column `i`). A column with no entry is an internal error.
pub fn substitute(expr: &ScalarExpr, exprs: &[ScalarExpr]) -> Result<ScalarExpr, CompileError> {
    let mut missing = None;
    let out = substitute_inner(expr, exprs, &mut missing);
    match missing {
        Some(i) => Err(CompileError::internal(format!(
            "column #{i} is out of range for a projection of {} expressions",
            exprs.len()
        ))),
        None => Ok(out),
    }
}

fn substitute_inner(
    expr: &ScalarExpr,
    exprs: &[ScalarExpr],
    missing: &mut Option<usize>,
) -> ScalarExpr {
    let mut sub = |e: &ScalarExpr| substitute_inner(e, exprs, missing);
    match expr {
        ScalarExpr::Column(i) => match exprs.get(*i) {
            Some(e) => e.clone(),
            None => {
                *missing = Some(*i);
                expr.clone()
            }
        },
        ScalarExpr::Literal(..) => expr.clone(),
        ScalarExpr::Binary { op, left, right } => ScalarExpr::Binary {
            op: *op,
            left: Box::new(sub(left)),
            right: Box::new(sub(right)),
        },
        ScalarExpr::Not(e) => ScalarExpr::Not(Box::new(sub(e))),
        ScalarExpr::Negate(e) => ScalarExpr::Negate(Box::new(sub(e))),
        ScalarExpr::IsNull { expr, negated } => ScalarExpr::IsNull {
            expr: Box::new(sub(expr)),
            negated: *negated,
        },
        ScalarExpr::Cast { expr, to } => ScalarExpr::Cast {
            expr: Box::new(sub(expr)),
            to: *to,
        },
        ScalarExpr::Case { whens, else_ } => ScalarExpr::Case {
            whens: whens.iter().map(|(c, r)| (sub(c), sub(r))).collect(),
            else_: else_.as_ref().map(|e| Box::new(sub(e))),
        },
        ScalarExpr::Coalesce(args) => ScalarExpr::Coalesce(args.iter().map(&mut sub).collect()),
        ScalarExpr::InList {
            expr,
            list,
            negated,
        } => ScalarExpr::InList {
            expr: Box::new(sub(expr)),
            list: list.iter().map(&mut sub).collect(),
            negated: *negated,
        },
        ScalarExpr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => ScalarExpr::Like {
            expr: Box::new(sub(expr)),
            pattern: Box::new(sub(pattern)),
            negated: *negated,
            case_insensitive: *case_insensitive,
        },
        ScalarExpr::Call { func, args } => ScalarExpr::Call {
            func: *func,
            args: args.iter().map(&mut sub).collect(),
        },
    }
}

/// True for expressions that cost nothing to evaluate twice (columns and literals).
pub fn is_trivial(expr: &ScalarExpr) -> bool {
    matches!(expr, ScalarExpr::Column(_) | ScalarExpr::Literal(..))
}

/// True when substituting `inner` into `outer` duplicates no non-trivial computation:
/// every non-trivial inner expression is referenced at most once by all of `outer`.
pub fn substitution_is_cheap(outer: &[&ScalarExpr], inner: &[ScalarExpr]) -> bool {
    let mut uses = vec![0usize; inner.len()];
    for e in outer {
        e.visit_columns(&mut |c| {
            if let Some(u) = uses.get_mut(c) {
                *u += 1;
            }
        });
    }
    inner
        .iter()
        .zip(&uses)
        .all(|(e, &n)| n <= 1 || is_trivial(e))
}

/// Column index `i` shifted down by `by` (for re-indexing right-side expressions of a join).
pub fn shift_down(expr: &ScalarExpr, by: usize) -> ScalarExpr {
    expr.remap_columns(&|i| i.saturating_sub(by))
}

/// Column index `i` shifted up by `by`.
pub fn shift_up(expr: &ScalarExpr, by: usize) -> ScalarExpr {
    expr.remap_columns(&|i| i + by)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::test_util::*;

    #[test]
    fn substitute_replaces_columns() {
        let e = add(col(0), col(1));
        let out = substitute(&e, &[mul(col(2), int(2)), col(5)]).unwrap();
        assert_eq!(out, add(mul(col(2), int(2)), col(5)));
        assert!(substitute(&col(3), &[col(0)]).is_err());
    }

    #[test]
    fn cheapness() {
        let inner = vec![col(0), add(col(1), int(1))];
        let a = add(col(0), col(0));
        let b = add(col(1), col(1));
        assert!(substitution_is_cheap(&[&a], &inner));
        assert!(!substitution_is_cheap(&[&b], &inner));
        assert!(!substitution_is_cheap(&[&col(1), &col(1)], &inner));
        assert!(substitution_is_cheap(&[&col(1), &col(0)], &inner));
    }
}
