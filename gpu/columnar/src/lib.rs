//! # sluice-columnar: columnar kernels for stateless stages
//!
//! A Sluice dataflow keeps rows ([`sluice_expr::Row`]) in its stateful,
//! differential part, but a chain of stateless operators right after a source — filters
//! and projections — runs as one fused stage on Arrow [`RecordBatch`]es: the source's
//! batches go through [`ColumnarKernels::calc`] (predicate, then projection) and only
//! the surviving, projected rows are turned into datums ([`batch_to_rows`]).
//!
//! [`ColumnarKernels`] is the seam between that stage and the hardware. [`CpuKernels`]
//! is the CPU implementation: Arrow compute kernels where their semantics are SQL's
//! (comparisons, Kleene logic, checked arithmetic, `LIKE`, `CASE` via `zip`, …) and the
//! row evaluator ([`sluice_expr::eval::Evaluator`]) for everything else, so that
//! the results are the row evaluator's by construction. The CUDA implementation
//! (`sluice-gpu`'s `GpuKernels`) sits behind the same trait and falls back to
//! [`CpuKernels`].
//!
//! This crate never links CUDA: the connectors (pushed-down filters) and so the
//! `sluice` master binary depend on it, and the master must not link cudarc. Only
//! `sluice-gpu` (and through it the dataflow and the worker) does.
//!
//! Conversions between the two worlds: [`array_value`], [`batch_to_rows`],
//! [`rows_to_batch`].

#![forbid(unsafe_code)]

mod convert;
mod cpu;
mod metrics;
mod partial;

pub use convert::{array_value, batch_to_rows, datums_to_array, normalize, rows_to_batch};
pub use cpu::CpuKernels;
pub use metrics::{Device, DeviceMetrics};
pub use partial::{partial_aggregate_cpu, partial_schema, sum_array};

use arrow::array::{ArrayRef, RecordBatch};
use sluice_catalogs::{Schema, SqlType};
use sluice_expr::{AggregateCall, ScalarExpr};

/// A kernel failure.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// A data-dependent error (bad cast, overflow…): the query is wrong for this data.
    #[error("{0}")]
    Execution(String),
    /// A bug: the batch or expression does not have the shape the caller promised.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<sluice_expr::eval::EvalError> for KernelError {
    fn from(e: sluice_expr::eval::EvalError) -> Self {
        KernelError::Execution(e.message)
    }
}

/// Columnar evaluation of bound expressions over Arrow batches.
///
/// Expressions are bound against the batch's columns: `ScalarExpr::Column(i)` is column
/// `i`, of SQL type `input_types[i]`. Results follow the row evaluator's semantics
/// exactly (values, NULLs, and whether an error is raised).
pub trait ColumnarKernels: Send + Sync {
    /// A short name for logs and EXPLAIN (`"cpu"`).
    fn name(&self) -> &'static str;

    /// One value per row of `batch`, as an array of the canonical Arrow type of the
    /// expression's SQL type.
    fn evaluate(
        &self,
        expr: &ScalarExpr,
        batch: &RecordBatch,
        input_types: &[SqlType],
    ) -> Result<ArrayRef, KernelError>;

    /// The rows of `batch` for which the BOOLEAN `predicate` is TRUE (NULL and FALSE
    /// drop the row).
    fn filter(
        &self,
        predicate: &ScalarExpr,
        batch: &RecordBatch,
        input_types: &[SqlType],
    ) -> Result<RecordBatch, KernelError>;

    /// A fused stateless stage: keep the rows where `predicate` holds (all rows without
    /// one), then compute `project` over them (the input columns without one). The
    /// result has the `output` schema; expressions are over `input`.
    fn calc(
        &self,
        predicate: Option<&ScalarExpr>,
        project: Option<&[ScalarExpr]>,
        batch: &RecordBatch,
        input: &Schema,
        output: &Schema,
    ) -> Result<RecordBatch, KernelError>;

    /// [`ColumnarKernels::calc`], counting the batch's rows in `metrics` under the
    /// device that evaluated it (and any GPU fallback). The default counts the CPU.
    fn calc_metered(
        &self,
        predicate: Option<&ScalarExpr>,
        project: Option<&[ScalarExpr]>,
        batch: &RecordBatch,
        input: &Schema,
        output: &Schema,
        metrics: &DeviceMetrics,
    ) -> Result<RecordBatch, KernelError> {
        let out = self.calc(predicate, project, batch, input, output);
        metrics.add_rows(Device::Cpu, batch.num_rows() as u64);
        out
    }

    /// The pre-aggregation of one batch below a `Reduce` (columns of SQL types
    /// `input_types`): one partial row per group of `group_by`, laid out as
    /// `sluice_expr::partial` says, groups in order of their first row. Partial
    /// rows merge exactly, so any device's grouping gives the same final result. The
    /// default is the CPU's ([`partial_aggregate_cpu`]), counted in `metrics`.
    fn partial_aggregate(
        &self,
        batch: &RecordBatch,
        group_by: &[usize],
        aggs: &[AggregateCall],
        input_types: &[SqlType],
        metrics: &DeviceMetrics,
    ) -> Result<RecordBatch, KernelError> {
        metrics.add_rows(Device::Cpu, batch.num_rows() as u64);
        partial_aggregate_cpu(batch, group_by, aggs, input_types)
    }
}
