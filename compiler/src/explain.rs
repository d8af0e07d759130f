//! EXPLAIN text for logical and physical plans (SKELETON — owned by the optimizer/lowering work; replace).

use crate::physical::PhysicalPlan;
use crate::plan::LogicalPlan;

/// Indented tree text of a logical plan, one node per line, expressions with column names.
pub fn explain_logical(plan: &LogicalPlan) -> String {
    format!("{plan:?}")
}

/// Indented tree text of a physical plan.
pub fn explain_physical(plan: &PhysicalPlan) -> String {
    format!("{plan:?}")
}
