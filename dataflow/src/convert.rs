//! The boundary between the columnar part of a dataflow (Arrow batches, evaluated by
//! [`ColumnarKernels`](sluice_gpu::ColumnarKernels)) and its row part: conversions
//! (from `sluice-gpu`, so both sides agree on the Arrow form of every SQL type) and
//! the mapping of kernel errors to [`ExecutionError`]s.

use crate::errors::ExecutionError;
use arrow::record_batch::RecordBatch;
use sluice_catalogs::{Schema, SqlType};
use sluice_compiler::Row;
use sluice_gpu::KernelError;

/// A kernel error raised in `operator`: data-dependent ones are evaluation errors.
pub(crate) fn kernel_error(operator: &str, e: KernelError) -> ExecutionError {
    match e {
        KernelError::Execution(message) => ExecutionError::eval(operator, message),
        KernelError::Internal(message) => {
            ExecutionError::Internal(format!("{operator}: {message}"))
        }
    }
}

/// The rows of `batch`, whose columns have `types`.
pub(crate) fn batch_to_rows(
    batch: &RecordBatch,
    types: &[SqlType],
    operator: &str,
) -> Result<Vec<Row>, ExecutionError> {
    sluice_gpu::batch_to_rows(batch, types).map_err(|e| kernel_error(operator, e))
}

/// A batch of `schema` holding `rows`.
pub(crate) fn rows_to_batch(
    rows: &[Row],
    schema: &Schema,
    operator: &str,
) -> Result<RecordBatch, ExecutionError> {
    sluice_gpu::rows_to_batch(rows, schema).map_err(|e| kernel_error(operator, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_errors_map_to_eval_or_internal() {
        assert_eq!(
            kernel_error("Calc", KernelError::Execution("overflow".into())),
            ExecutionError::eval("Calc", "overflow")
        );
        assert!(matches!(
            kernel_error("Calc", KernelError::Internal("bug".into())),
            ExecutionError::Internal(m) if m == "Calc: bug"
        ));
    }
}
