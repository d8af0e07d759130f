//! # sluice-gpu: CUDA kernels for the batch-heavy stateless operators
//!
//! ```text
//! source ─▶ Arrow batches ─▶ fused Calc stage (filter + project) ─▶ rows ─▶ stateful stages …
//!                                   │
//!                          GpuKernels (this crate): per batch, placement picks
//!                          the GPU (NVRTC kernel over Arrow columns) or CpuKernels
//! ```
//!
//! Where it sits: the dataflow's first stage after a source runs on Arrow
//! [`RecordBatch`](arrow::array::RecordBatch)es through the [`ColumnarKernels`] seam
//! (defined with the CPU kernels in `sluice-columnar`, which has no CUDA so that the
//! connectors and the `sluice` master binary never link cudarc). [`GpuKernels`]
//! implements that seam on the GPU and falls back to [`CpuKernels`].
//!
//! Read in this order:
//!
//! 1. [`placement`]: `SLUICE_GPU=off|auto|force`, the batch-size threshold and the job's
//!    `resources.gpus` decide each batch (the compiler's half, eligibility, is
//!    `sluice_compiler::placement`, printed by `EXPLAIN PHYSICAL`; it and the kernels
//!    ask the same `sluice_expr::gpu_support`);
//! 2. [`codegen`]: a `Calc`'s expressions become one CUDA C kernel (NULLs, Kleene
//!    logic, `IN`, checked integer arithmetic with an overflow flag);
//! 3. [`cuda`]: the fixed kernels (hash group-by, hash-join probe);
//! 4. [`groupby`]: their CPU twins and the shared host-side finalization;
//! 5. [`device`]: cudarc with dynamic loading — guarded library probes, the context,
//!    NVRTC modules cached per device by source hash, a pooled device allocator,
//!    pinned staging buffers, the launches;
//! 6. [`kernels`]: [`GpuKernels`], the fallback rules and the metrics.
//!
//! Without a CUDA driver the crate builds, links and runs: [`gpu_available`] reports
//! why there is no GPU and every batch runs on the CPU kernels.

pub mod codegen;
pub mod cuda;
pub mod device;
pub mod groupby;
pub mod kernels;
pub mod placement;

pub use device::{GpuDevice, GpuError};
pub use groupby::{
    group_by_cpu, join_probe_cpu, partial_aggregate_twin, AggInput, AggState, GroupByOutput,
    JoinMatches,
};
pub use kernels::{device as gpu_device, gpu_available, gpu_name, GpuKernels};
pub use placement::{place, Decision, GpuConfig, GpuMode, GPU_MIN_BATCH_ROWS};
pub use sluice_columnar::{
    array_value, batch_to_rows, datums_to_array, normalize, rows_to_batch, ColumnarKernels,
    CpuKernels, Device, DeviceMetrics, KernelError,
};
