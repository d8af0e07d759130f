//! Lowering: `LogicalPlan' ──lower──▶ PhysicalPlan` (SKELETON — owned by the optimizer/lowering work; replace).

use crate::error::CompileError;
use crate::physical::PhysicalPlan;
use crate::plan::LogicalPlan;

/// Lower an optimized logical plan to a dataflow operator tree.
pub fn lower(plan: &LogicalPlan) -> Result<PhysicalPlan, CompileError> {
    let _ = plan;
    Err(CompileError::internal("lowering is not implemented yet"))
}

/// True when the physical plan may retract rows it has emitted (see `Output::updating`).
pub fn is_updating(plan: &PhysicalPlan) -> bool {
    let _ = plan;
    true
}
