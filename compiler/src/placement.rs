//! GPU eligibility: which physical operators the CUDA kernels of `sluice-gpu` can run.
//!
//! This is the compiler's half of placement, and it is a pure function of the plan:
//! [`gpu_eligibility`] says, for one node, whether every expression and type in it is
//! one the GPU kernels implement with exactly the row evaluator's semantics, and if
//! not, why. The runtime's half (`sluice_gpu::placement`) then places each eligible
//! operator on the GPU or the CPU by GPU availability, batch size, the job's
//! `resources.gpus` and `SLUICE_GPU`. `EXPLAIN PHYSICAL` prints the compiler's answer
//! as `device=gpu-eligible` or `device=cpu(<reason>)`.
//!
//! What the GPU supports, expression by expression, is decided in
//! [`sluice_expr::gpu_support`] (re-exported here), which the GPU kernels ask too. The
//! stateful operators themselves run on rows; what the runtime places is each batch
//! `Calc` stage and each batch's pre-aggregation below a `Reduce` marked `preaggregate`
//! (`device=cpu(stateful; pre-aggregation group-by kernel eligible)` when the group-by
//! kernel can compute its partial states).

use crate::physical::PhysicalPlan;
pub use sluice_expr::gpu_support::{
    aggregate_gpu_support, calc_gpu_support, expr_gpu_support, gpu_key_type, gpu_type,
    join_gpu_support,
};

/// The compiler's placement answer for one operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GpuEligibility {
    /// Every expression and type is supported; the runtime may place it on the GPU.
    Eligible,
    /// It runs on the CPU, for this reason (short, for EXPLAIN).
    Cpu(String),
    /// The operator is not one that placement concerns (sources, unions, …).
    NotApplicable,
}

impl GpuEligibility {
    /// The EXPLAIN text: `device=gpu-eligible` or `device=cpu(<reason>)`; `None` when
    /// not applicable.
    pub fn explain(&self) -> Option<String> {
        match self {
            GpuEligibility::Eligible => Some("device=gpu-eligible".to_string()),
            GpuEligibility::Cpu(reason) => Some(format!("device=cpu({reason})")),
            GpuEligibility::NotApplicable => None,
        }
    }
}

/// True when the renderer runs `plan` on Arrow batches (a source and the stateless
/// stages right after it), the only place the columnar kernels see data.
pub fn is_columnar(plan: &PhysicalPlan) -> bool {
    match plan {
        PhysicalPlan::Source { .. } => true,
        PhysicalPlan::Calc { input, .. } | PhysicalPlan::WindowAssign { input, .. } => {
            is_columnar(input)
        }
        _ => false,
    }
}

/// The compiler's placement answer for one node (see the module docs).
pub fn gpu_eligibility(plan: &PhysicalPlan) -> GpuEligibility {
    let to = |r: Result<(), String>| match r {
        Ok(()) => GpuEligibility::Eligible,
        Err(reason) => GpuEligibility::Cpu(reason),
    };
    match plan {
        PhysicalPlan::Calc {
            input,
            predicate,
            project,
            ..
        } => {
            if !is_columnar(input) {
                return GpuEligibility::Cpu("row stage".to_string());
            }
            let types = input.schema().types();
            to(calc_gpu_support(
                predicate.as_ref(),
                project.as_deref(),
                &types,
            ))
        }
        PhysicalPlan::Reduce {
            input,
            group_by,
            aggs,
            preaggregate: true,
            ..
        }
        | PhysicalPlan::WindowAggregate {
            input,
            group_by,
            aggs,
            preaggregate: true,
            ..
        } => {
            let types = input.schema().types();
            match aggregate_gpu_support(group_by, aggs, &types) {
                Ok(()) => GpuEligibility::Cpu(
                    "stateful; pre-aggregation group-by kernel eligible".to_string(),
                ),
                Err(_) => GpuEligibility::Cpu("stateful".to_string()),
            }
        }
        PhysicalPlan::Reduce {
            input,
            group_by,
            aggs,
            ..
        }
        | PhysicalPlan::WindowAggregate {
            input,
            group_by,
            aggs,
            ..
        } => {
            let types = input.schema().types();
            match aggregate_gpu_support(group_by, aggs, &types) {
                Ok(()) => GpuEligibility::Cpu("stateful; group-by kernel eligible".to_string()),
                Err(_) => GpuEligibility::Cpu("stateful".to_string()),
            }
        }
        PhysicalPlan::HashJoin {
            left,
            right,
            left_keys,
            right_keys,
            ..
        } => {
            let (l, r) = (left.schema().types(), right.schema().types());
            match join_gpu_support(left_keys, right_keys, &l, &r) {
                Ok(()) => GpuEligibility::Cpu("stateful; join-probe kernel eligible".to_string()),
                Err(_) => GpuEligibility::Cpu("stateful".to_string()),
            }
        }
        _ => GpuEligibility::NotApplicable,
    }
}
