//! Binding `ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)` into a per-partition Top-N
//! ([`LogicalPlan::TopK`]): the front end of Flink's Top-N and deduplication patterns.
//!
//! The pattern spans two query levels, as in Flink:
//!
//! ```sql
//! SELECT * FROM (
//!   SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rn FROM bid
//! ) WHERE rn <= 10
//! ```
//!
//! 1. The inner SELECT binds the `ROW_NUMBER()` item ([`bind_row_number`]) to a `TopK`
//!    over its FROM (after its WHERE) with `limit: None`; the row number is a new
//!    column that the select item refers to.
//! 2. The enclosing WHERE ([`fold_rank_filter`]) finds conjuncts `rn <= N`, `rn < N`,
//!    `rn = 1` (or mirrored) whose column traces, through column-passing projections
//!    and filters, to such a row number, and folds them into the node's `limit`:
//!    `σ(rn ≤ N)(ROW_NUMBER(x)) = TopK_N(x)`. The folded conjunct is dropped.
//! 3. Once a whole statement is bound, [`check_filtered`] refuses any `TopK` still
//!    without a limit, at the `ROW_NUMBER()` call's position: an unbounded numbering of
//!    an unbounded stream would keep and renumber every row, which Sluice does not run.
//!
//! Aggregates OVER a frame of rows are bound by `bind/over.rs`. Other window functions
//! (RANK, DENSE_RANK, …) and a `ROW_NUMBER()` or an OVER aggregate anywhere but as a
//! whole select item are refused where the expression binder meets them.

use super::expr::{function_name, pos_of, ExprBinder};
use super::scope::Scope;
use crate::error::{CompileError, Position};
use crate::plan::LogicalPlan;
use sluice_expr::datum::Datum;
use sluice_expr::expr::{BinaryOp, ScalarExpr, SortKey};
use sqlparser::ast::{Expr, Function, FunctionArguments, OrderBySort, WindowSpec, WindowType};

/// The hint every refusal of a window function ends with.
pub const SUPPORTED: &str = "only ROW_NUMBER() OVER (PARTITION BY … ORDER BY …) as a select \
     item, filtered by the enclosing query (WHERE rn <= N, rn < N or rn = 1), and \
     COUNT/SUM/AVG/MIN/MAX(column) OVER (PARTITION BY … ORDER BY … ROWS BETWEEN n PRECEDING \
     AND CURRENT ROW) as select items are supported";

/// `e` when it is a `ROW_NUMBER() OVER (…)` call.
pub fn row_number_call(e: &Expr) -> Option<&Function> {
    match e {
        Expr::Function(f) if f.over.is_some() && function_name(f) == "ROW_NUMBER" => Some(f),
        Expr::Nested(inner) => row_number_call(inner),
        _ => None,
    }
}

/// Binds `ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)` over `input` (whose columns
/// `scope` names): a `TopK` without a limit whose last column is the row number.
pub fn bind_row_number(
    f: &Function,
    scope: &Scope,
    input: LogicalPlan,
    pos: Option<Position>,
) -> Result<LogicalPlan, CompileError> {
    let has_args = match &f.args {
        FunctionArguments::None => false,
        FunctionArguments::List(l) => !l.args.is_empty(),
        FunctionArguments::Subquery(_) => true,
    };
    if has_args || f.filter.is_some() || !f.within_group.is_empty() {
        return Err(CompileError::plan("ROW_NUMBER() takes no arguments", pos));
    }
    let spec = match &f.over {
        Some(WindowType::WindowSpec(spec)) => spec,
        _ => {
            return Err(CompileError::unsupported(
                "named windows (OVER w) are not supported",
                pos,
            ))
        }
    };
    if spec.window_frame.is_some() || spec.window_name.is_some() {
        return Err(CompileError::unsupported(
            "ROW_NUMBER() OVER (…) with a window frame or name is not supported",
            pos,
        ));
    }
    if spec.order_by.is_empty() {
        return Err(CompileError::plan(
            "ROW_NUMBER() OVER (…) needs an ORDER BY (the order that numbers the rows)",
            pos,
        ));
    }
    let (partition_by, order_by) = partition_and_order(spec, scope, "ROW_NUMBER()")?;
    Ok(LogicalPlan::TopK {
        input: Box::new(input),
        partition_by,
        order_by,
        limit: None,
        rank_column: true,
        position: pos,
    })
}

/// The `PARTITION BY` columns and `ORDER BY` keys of a window specification over the
/// columns `scope` names (`what` names the call, for errors): both must list columns.
pub fn partition_and_order(
    spec: &WindowSpec,
    scope: &Scope,
    what: &str,
) -> Result<(Vec<usize>, Vec<SortKey>), CompileError> {
    let mut partition_by = Vec::new();
    for e in &spec.partition_by {
        match ExprBinder::new(scope, "PARTITION BY").bind(e)? {
            (ScalarExpr::Column(i), _) => partition_by.push(i),
            _ => {
                return Err(CompileError::unsupported(
                    format!(
                        "PARTITION BY of {what} must list columns (compute expressions \
                         in a subquery first)"
                    ),
                    pos_of(e),
                ))
            }
        }
    }
    let mut order_by = Vec::new();
    for o in &spec.order_by {
        let column = match ExprBinder::new(scope, "ORDER BY").bind(&o.expr)? {
            (ScalarExpr::Column(i), _) => i,
            _ => {
                return Err(CompileError::unsupported(
                    format!(
                        "ORDER BY of {what} must list columns (compute expressions in a \
                         subquery first)"
                    ),
                    pos_of(&o.expr),
                ))
            }
        };
        let descending = match &o.options.sort {
            None | Some(OrderBySort::Asc) => false,
            Some(OrderBySort::Desc) => true,
            Some(OrderBySort::Using(_)) => {
                return Err(CompileError::unsupported(
                    "ORDER BY … USING is not supported",
                    pos_of(&o.expr),
                ))
            }
        };
        order_by.push(SortKey {
            column,
            descending,
            nulls_first: o.options.nulls_first.unwrap_or(false),
        });
    }
    Ok((partition_by, order_by))
}

/// An integer literal (possibly cast).
fn int_literal(e: &ScalarExpr) -> Option<i64> {
    match e {
        ScalarExpr::Literal(Datum::Int(n), _) => Some(*n),
        ScalarExpr::Cast { expr, .. } => int_literal(expr),
        _ => None,
    }
}

/// `(column, limit)` when `conjunct` bounds a column from above as a row-number filter
/// does: `c <= n`, `c < n`, `c = 1`, or the same mirrored.
fn rank_bound(conjunct: &ScalarExpr) -> Option<(usize, u64)> {
    let ScalarExpr::Binary { op, left, right } = conjunct else {
        return None;
    };
    let (col, n, op) = match (left.as_ref(), right.as_ref()) {
        (ScalarExpr::Column(c), lit) => (*c, int_literal(lit)?, *op),
        (lit, ScalarExpr::Column(c)) => {
            let mirrored = match op {
                BinaryOp::GtEq => BinaryOp::LtEq,
                BinaryOp::Gt => BinaryOp::Lt,
                BinaryOp::Eq => BinaryOp::Eq,
                _ => return None,
            };
            (*c, int_literal(lit)?, mirrored)
        }
        _ => return None,
    };
    let limit = match op {
        BinaryOp::LtEq => n,
        BinaryOp::Lt => n.saturating_sub(1),
        BinaryOp::Eq if n == 1 => 1,
        _ => return None,
    };
    Some((col, u64::try_from(limit).unwrap_or(0)))
}

/// Sets the limit of the `TopK` whose row number is column `col` of `plan`, traced
/// through column-passing projections and filters (both commute with a filter on the
/// row number). False when `col` is not such a row number.
fn set_limit(plan: &mut LogicalPlan, col: usize, n: u64) -> bool {
    match plan {
        LogicalPlan::Project { input, exprs, .. } => match exprs.get(col) {
            Some(ScalarExpr::Column(c)) => {
                let c = *c;
                set_limit(input, c, n)
            }
            _ => false,
        },
        LogicalPlan::Filter { input, .. } => set_limit(input, col, n),
        LogicalPlan::TopK {
            input,
            limit,
            rank_column: true,
            ..
        } if col == input.schema().len() => {
            *limit = Some(limit.map_or(n, |l| l.min(n)));
            true
        }
        _ => false,
    }
}

/// Folds the row-number conjuncts of a WHERE `predicate` over `plan` into the `TopK`
/// they filter (see the module docs); returns the plan and what is left of the
/// predicate.
pub fn fold_rank_filter(
    mut plan: LogicalPlan,
    predicate: ScalarExpr,
) -> (LogicalPlan, Option<ScalarExpr>) {
    let mut rest = Vec::new();
    for c in predicate.conjuncts() {
        if let Some((col, n)) = rank_bound(&c) {
            if set_limit(&mut plan, col, n) {
                continue;
            }
        }
        rest.push(c);
    }
    (plan, ScalarExpr::and_all(rest))
}

/// Refuses a bound statement's plan that still holds a `ROW_NUMBER()` without a
/// filter on it (at the call's position, else at `fallback`).
pub fn check_filtered(plan: &LogicalPlan, fallback: Option<Position>) -> Result<(), CompileError> {
    let mut stack = vec![plan];
    while let Some(node) = stack.pop() {
        if let LogicalPlan::TopK {
            limit: None,
            position,
            ..
        } = node
        {
            return Err(CompileError::unsupported(
                format!(
                    "ROW_NUMBER() OVER (…) without a filter on it in the enclosing query: \
                     {SUPPORTED}"
                ),
                position.or(fallback),
            ));
        }
        stack.extend(node.inputs());
    }
    Ok(())
}
