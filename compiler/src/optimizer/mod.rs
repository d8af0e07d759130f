//! The rule-based optimizer: `LogicalPlan ──optimize──▶ LogicalPlan'`.
//!
//! Each rule lives in its own file and implements [`Rule`]. The driver
//! ([`optimize`]) applies the rules in order, each once per pass, for a bounded
//! number of passes until the plan stops changing, and checks after every rule that
//! the output schema (column types) is unchanged: a rule that changes it is a bug
//! and fails compilation with an internal error naming the rule.

use crate::error::CompileError;
use crate::plan::LogicalPlan;

pub mod constant_folding;

/// One rewrite of the logical plan.
pub trait Rule {
    /// The rule's name, as `EXPLAIN` and error messages show it.
    fn name(&self) -> &'static str;
    /// Rewrite the plan; return it unchanged when the rule does not apply.
    fn rewrite(&self, plan: LogicalPlan) -> Result<LogicalPlan, CompileError>;
}

/// The rules, in the order they run.
pub fn rules() -> Vec<Box<dyn Rule>> {
    vec![]
}

/// Most passes over the rule list before giving up on reaching a fixed point.
pub const MAX_PASSES: usize = 8;

/// Optimize a plan with [`rules`].
pub fn optimize(plan: LogicalPlan) -> Result<LogicalPlan, CompileError> {
    optimize_with(plan, &rules())
}

/// Optimize a plan with the given rules (tests use single rules).
pub fn optimize_with(
    mut plan: LogicalPlan,
    rules: &[Box<dyn Rule>],
) -> Result<LogicalPlan, CompileError> {
    let types = plan.schema().types();
    for _ in 0..MAX_PASSES {
        let before = plan.clone();
        for rule in rules {
            plan = rule.rewrite(plan)?;
            if plan.schema().types() != types {
                return Err(CompileError::internal(format!(
                    "optimizer rule '{}' changed the output schema",
                    rule.name()
                )));
            }
        }
        if plan == before {
            break;
        }
    }
    Ok(plan)
}
