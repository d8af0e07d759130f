//! The rule-based optimizer: `LogicalPlan ──optimize──▶ LogicalPlan'`.
//!
//! Each rule lives in its own file and implements [`Rule`]. The driver
//! ([`optimize`]) applies the rules in order, each once per pass, for a bounded
//! number of passes until the plan stops changing, and checks after every rule that
//! the output schema (column types) is unchanged: a rule that changes it is a bug
//! and fails compilation with an internal error naming the rule.
//!
//! The rules, in order (see [`rules`]):
//!
//! 1. [`simplify::Simplify`]: drop identity projections, TRUE filters, empty subtrees;
//! 2. [`filter_pushdown::FilterPushdown`]: filters towards and into the sources;
//! 3. [`join_key_extraction::JoinKeyExtraction`]: equalities of join conditions → hash keys;
//! 4. [`projection_pruning::ProjectionPruning`]: read and carry only used columns.
//!
//! [`optimize_traced`] records the plan after every rule that changed it, for
//! `EXPLAIN`-style tracing.

use crate::error::CompileError;
use crate::plan::LogicalPlan;

pub mod constant_folding;
#[cfg(test)]
mod equivalence_tests;
pub mod filter_pushdown;
pub mod join_key_extraction;
pub mod projection_pruning;
pub mod simplify;
#[cfg(test)]
pub(crate) mod test_util;
pub mod util;

/// One rewrite of the logical plan.
pub trait Rule {
    /// The rule's name, as `EXPLAIN` and error messages show it.
    fn name(&self) -> &'static str;
    /// Rewrite the plan; return it unchanged when the rule does not apply.
    fn rewrite(&self, plan: LogicalPlan) -> Result<LogicalPlan, CompileError>;
}

/// The rules, in the order they run. Simplify first (cheap, and it exposes more to
/// the rest), then pushdown, which moves WHERE equalities into inner joins before key
/// extraction looks at them; pruning last, once filters (which read columns) are in
/// their final place.
pub fn rules() -> Vec<Box<dyn Rule>> {
    vec![
        // Constant folding first, so that the rules below see folded literals.
        Box::new(constant_folding::ConstantFolding),
        Box::new(simplify::Simplify),
        Box::new(filter_pushdown::FilterPushdown),
        Box::new(join_key_extraction::JoinKeyExtraction),
        Box::new(projection_pruning::ProjectionPruning),
    ]
}

/// Most passes over the rule list before giving up on reaching a fixed point.
pub const MAX_PASSES: usize = 8;

/// Optimize a plan with [`rules`].
pub fn optimize(plan: LogicalPlan) -> Result<LogicalPlan, CompileError> {
    optimize_with(plan, &rules())
}

/// Optimize a plan with the given rules (tests use single rules).
pub fn optimize_with(
    plan: LogicalPlan,
    rules: &[Box<dyn Rule>],
) -> Result<LogicalPlan, CompileError> {
    run(plan, rules, &mut |_, _| {})
}

/// `(rule name, plan after the rule as EXPLAIN text)` for each rule application that
/// changed the plan, in order.
pub type Trace = Vec<(&'static str, String)>;

/// Optimize a plan with [`rules`], also returning, for every rule application that
/// changed the plan, the rule's name and the plan it produced (as
/// [`crate::explain::explain_logical`] prints it), in the order they ran.
pub fn optimize_traced(plan: LogicalPlan) -> Result<(LogicalPlan, Trace), CompileError> {
    let mut trace = Vec::new();
    let plan = run(plan, &rules(), &mut |name, plan| {
        trace.push((name, crate::explain::explain_logical(plan)))
    })?;
    Ok((plan, trace))
}

/// The driver: passes over `rules` until a fixed point or [`MAX_PASSES`]; `changed`
/// is called after each rule application that changed the plan.
fn run(
    mut plan: LogicalPlan,
    rules: &[Box<dyn Rule>],
    changed: &mut dyn FnMut(&'static str, &LogicalPlan),
) -> Result<LogicalPlan, CompileError> {
    let types = plan.schema().types();
    for _ in 0..MAX_PASSES {
        let before = plan.clone();
        for rule in rules {
            let previous = plan.clone();
            plan = rule.rewrite(plan)?;
            if plan.schema().types() != types {
                return Err(CompileError::internal(format!(
                    "optimizer rule '{}' changed the output schema",
                    rule.name()
                )));
            }
            if plan != previous {
                changed(rule.name(), &plan);
            }
        }
        if plan == before {
            break;
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::{explain_logical, explain_physical};
    use crate::lower::{is_updating, lower};
    use crate::plan::{JoinKind, WindowKind};
    use test_util::*;

    /// SELECT c_name, window_start, SUM(o_price) FROM TUMBLE(orders) JOIN customers
    /// WHERE o_custkey = c_custkey AND o_price > 1.00 AND c_name <> 'x' GROUP BY …
    fn query() -> LogicalPlan {
        let w = window(
            scan(&orders_table()),
            WindowKind::Tumble { size_ms: 60_000 },
            3,
        );
        // o_orderkey, o_custkey, o_price, o_ts, window_start, window_end, window_time,
        // c_custkey, c_name, c_ts
        let j = join(w, scan(&customers_table()), JoinKind::Inner, None);
        let f = filter(
            j,
            and(
                and(eq(col(1), col(7)), gt(col(2), dec(100, 2))),
                not(eq(col(8), str_lit("x"))),
            ),
        );
        let p = project(
            f,
            vec![
                (col(8), "c_name"),
                (col(4), "window_start"),
                (col(5), "window_end"),
                (col(2), "o_price"),
                (col(0), "o_orderkey"),
            ],
        );
        let agg = aggregate(p, vec![0, 1, 2], vec![sum(3, dec_ty(10, 2)), count_star()]);
        project(
            agg,
            vec![
                (col(0), "c_name"),
                (col(1), "window_start"),
                (col(3), "total"),
            ],
        )
    }

    #[test]
    fn all_rules_end_to_end() {
        let optimized = optimize(query()).unwrap();
        insta::assert_snapshot!(explain_logical(&optimized), @r"
        Project: c_name, window_start, $agg0 AS total
          Aggregate: group_by=[c_name, window_start, window_end] aggs=[SUM(o_price)]
            Project: c_name, window_start, window_end, o_price
              Join: Inner on=[o_custkey = c_custkey]
                Window: TUMBLE(time_col=o_ts, size=INTERVAL '60000' MILLISECOND)
                  Scan: orders projection=[o_custkey, o_price, o_ts] filters=[o_price > 1.00]
                Filter: NOT (c_name = 'x')
                  Scan: customers projection=[c_custkey, c_name]
        ");
        let physical = lower(&optimized).unwrap();
        insta::assert_snapshot!(explain_physical(&physical), @r"
        Calc: project=[c_name, window_start, $agg0 AS total] device=cpu(row stage) [stateless]
          Reduce: group_by=[c_name, window_start, window_end] aggs=[SUM(o_price)] strategies=[accumulate] device=cpu(stateful) [state: one running state per group]
            Calc: project=[c_name, window_start, window_end, o_price] device=cpu(row stage) [stateless]
              HashJoin: Inner keys=[o_custkey = c_custkey] strategy=append-only(symmetric hash; a side's rows freed when the other input completes) device=cpu(stateful; join-probe kernel eligible) [state: each side's rows by key until the other input completes]
                WindowAssign: TUMBLE(time_col=o_ts, size=INTERVAL '60000' MILLISECOND) [stateless]
                  Source: orders projection=[o_custkey, o_price, o_ts] filters=[o_price > 1.00] [stateless]
                Calc: predicate=NOT (c_name = 'x') device=cpu(VARCHAR = VARCHAR) [stateless]
                  Source: customers projection=[c_custkey, c_name] [stateless]
        ");
        // Window lineage is not traced through joins: the aggregate is a (retracting)
        // Reduce, conservatively.
        assert!(is_updating(&physical));
        // A fixed point: optimizing again changes nothing.
        assert_eq!(optimize(optimized.clone()).unwrap(), optimized);
    }

    #[test]
    fn traced_optimization_records_each_change() {
        let (plan, trace) = optimize_traced(query()).unwrap();
        assert_eq!(plan, optimize(query()).unwrap());
        let names: Vec<&str> = trace.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "filter_pushdown",
                "join_key_extraction",
                "projection_pruning"
            ]
        );
        assert_eq!(
            trace.last().map(|(_, t)| t.clone()),
            Some(explain_logical(&plan))
        );
    }

    struct DropColumn;
    impl Rule for DropColumn {
        fn name(&self) -> &'static str {
            "drop_column"
        }
        fn rewrite(&self, plan: LogicalPlan) -> Result<LogicalPlan, CompileError> {
            Ok(project(plan, vec![(col(0), "only")]))
        }
    }

    #[test]
    fn a_rule_that_changes_the_schema_is_an_internal_error() {
        let err = optimize_with(scan(&customers_table()), &[Box::new(DropColumn)]).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::Internal);
        assert!(err.message.contains("drop_column"), "{}", err.message);
    }
}
