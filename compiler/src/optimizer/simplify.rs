//! [`Simplify`]: remove nodes and conditions that do nothing.
//!
//! Bottom-up, node by node:
//!
//! - an identity `Project` (every input column, in order, under the same names) is
//!   replaced by its input; names are compared too, because the root's names are the
//!   query's column names;
//! - `Filter TRUE` is replaced by its input, and a constant-TRUE conjunct is dropped
//!   from `Scan.filters` and `Join.filter`;
//! - `Filter FALSE` / `Filter NULL` and `LIMIT 0` become an empty `Values` of the same
//!   schema (nothing below them can produce a row that survives);
//! - a `Union` of one input is that input.
//!
//! Constant *expressions* (`1 = 1`) are the constant-folding rule's business; this rule
//! only recognises literals, so it runs after folding.

use super::util::transform_up;
use super::Rule;
use crate::error::CompileError;
use crate::plan::LogicalPlan;
use sluice_expr::datum::Datum;
use sluice_expr::expr::ScalarExpr;

/// Removes identity projections, trivially true filters and provably empty subtrees.
pub struct Simplify;

impl Rule for Simplify {
    fn name(&self) -> &'static str {
        "simplify"
    }

    fn rewrite(&self, plan: LogicalPlan) -> Result<LogicalPlan, CompileError> {
        transform_up(plan, &mut |node| Ok(simplify(node)))
    }
}

fn is_true(e: &ScalarExpr) -> bool {
    matches!(e, ScalarExpr::Literal(Datum::Bool(true), _))
}

/// FALSE or NULL: a filter on it keeps no row.
fn keeps_nothing(e: &ScalarExpr) -> bool {
    matches!(e, ScalarExpr::Literal(Datum::Bool(false) | Datum::Null, _))
}

fn empty(plan: &LogicalPlan) -> LogicalPlan {
    LogicalPlan::Values {
        schema: plan.schema(),
        rows: vec![],
    }
}

/// Drops constant-TRUE conjuncts; `None` when none is left.
fn without_true(e: ScalarExpr) -> Option<ScalarExpr> {
    if !e.clone().conjuncts().iter().any(is_true) {
        return Some(e);
    }
    ScalarExpr::and_all(e.conjuncts().into_iter().filter(|c| !is_true(c)).collect())
}

fn simplify(node: LogicalPlan) -> LogicalPlan {
    match node {
        LogicalPlan::Project {
            input,
            exprs,
            names,
        } => {
            let input_schema = input.schema();
            let identity = exprs.len() == input_schema.len()
                && exprs
                    .iter()
                    .enumerate()
                    .all(|(i, e)| *e == ScalarExpr::Column(i))
                && names
                    .iter()
                    .zip(&input_schema.fields)
                    .all(|(n, f)| *n == f.name);
            if identity {
                *input
            } else {
                LogicalPlan::Project {
                    input,
                    exprs,
                    names,
                }
            }
        }
        LogicalPlan::Filter { input, predicate } => {
            if keeps_nothing(&predicate) {
                return empty(&input);
            }
            match without_true(predicate) {
                Some(predicate) => LogicalPlan::Filter { input, predicate },
                None => *input,
            }
        }
        LogicalPlan::Scan {
            table,
            projection,
            filters,
        } => LogicalPlan::Scan {
            table,
            projection,
            filters: filters.into_iter().filter(|f| !is_true(f)).collect(),
        },
        LogicalPlan::Join {
            left,
            right,
            kind,
            on,
            filter,
        } => LogicalPlan::Join {
            left,
            right,
            kind,
            on,
            filter: filter.and_then(without_true),
        },
        sort @ LogicalPlan::Sort { limit: Some(0), .. } => empty(&sort),
        LogicalPlan::Union { mut inputs } if inputs.len() == 1 => inputs.remove(0),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::explain_logical;
    use crate::optimizer::optimize_with;
    use crate::optimizer::test_util::*;
    use crate::plan::JoinKind;
    use sluice_catalogs::SqlType;

    fn run(plan: LogicalPlan) -> String {
        let out = optimize_with(plan, &[Box::new(Simplify)]).unwrap();
        explain_logical(&out)
    }

    #[test]
    fn removes_identity_projects_and_true_filters() {
        let p = project(
            scan(&customers_table()),
            vec![(col(0), "c_custkey"), (col(1), "c_name"), (col(2), "c_ts")],
        );
        let plan = filter(
            filter(p, boolean(true)),
            and(boolean(true), gt(col(0), bigint(1))),
        );
        insta::assert_snapshot!(explain_logical(&plan), @r"
        Filter: TRUE AND c_custkey > 1
          Filter: TRUE
            Project: c_custkey, c_name, c_ts
              Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
        insta::assert_snapshot!(run(plan), @r"
        Filter: c_custkey > 1
          Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
    }

    #[test]
    fn does_not_remove_renaming_or_reordering_projects() {
        let renaming = project(
            scan(&customers_table()),
            vec![(col(0), "id"), (col(1), "c_name"), (col(2), "c_ts")],
        );
        let reordering = project(
            scan(&customers_table()),
            vec![(col(1), "c_name"), (col(0), "c_custkey"), (col(2), "c_ts")],
        );
        for plan in [renaming, reordering] {
            let before = explain_logical(&plan);
            assert_eq!(run(plan), before);
        }
        insta::assert_snapshot!(run(project(scan(&customers_table()), vec![(col(0), "id"), (col(1), "c_name"), (col(2), "c_ts")])), @r"
        Project: c_custkey AS id, c_name, c_ts
          Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
    }

    #[test]
    fn false_filters_and_limit_zero_become_empty_values() {
        let plan = project(
            filter(scan(&customers_table()), boolean(false)),
            vec![(col(1), "c_name")],
        );
        insta::assert_snapshot!(run(plan), @r"
        Project: c_name
          Values: 0 rows [c_custkey, c_name, c_ts]
        ");
        let null_filter = filter(
            scan(&customers_table()),
            ScalarExpr::Literal(Datum::Null, SqlType::Boolean),
        );
        insta::assert_snapshot!(run(null_filter), @"Values: 0 rows [c_custkey, c_name, c_ts]");
        let limit0 = LogicalPlan::Sort {
            input: Box::new(scan(&customers_table())),
            keys: vec![],
            limit: Some(0),
            offset: 0,
        };
        insta::assert_snapshot!(run(limit0), @"Values: 0 rows [c_custkey, c_name, c_ts]");
    }

    #[test]
    fn cleans_scan_and_join_conditions_and_single_unions() {
        let s = LogicalPlan::Scan {
            table: orders_table(),
            projection: vec![0, 3],
            filters: vec![boolean(true), gt(col(0), bigint(2))],
        };
        let j = join(
            s,
            scan(&customers_table()),
            JoinKind::Left,
            Some(boolean(true)),
        );
        let plan = LogicalPlan::Union { inputs: vec![j] };
        insta::assert_snapshot!(run(plan), @r"
        Join: Left
          Scan: orders projection=[o_orderkey, o_ts] filters=[o_orderkey > 2]
          Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
    }
}
