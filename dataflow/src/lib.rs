//! # sluice-dataflow: running a dataflow plan
//!
//! ```text
//! SQL text ─▶ … ─▶ DataflowPlan ──**render + run**──▶ timely/differential dataflow ─▶ sinks / client
//! ```
//!
//! [`run`] takes the serializable [`DataflowPlan`] the compiler produced, starts
//! `workers` timely worker threads, renders the plan into the same dataflow on each
//! (sources read their share of the splits; stateful operators exchange rows by key
//! hash), steps every worker until the input is complete, commits table sinks and
//! returns the rows of `Collect` outputs with the run's counters.
//!
//! Inside: `render` turns each [`sluice_compiler::PhysicalPlan`] node into named
//! operators (`source`, `calc`, `window`, `reduce`, `join`, `topn`, `sink`). A source
//! and the stateless stages right after it (`Calc`, TUMBLE/HOP `WindowAssign`) run on
//! Arrow batches with [`RunOptions::kernels`]; the first stateful operator (or sink)
//! turns batches into a differential collection of rows (time `u64`, diff `isize`),
//! exchanged between workers by key hash. `accum` computes aggregates from value
//! multisets; `run` drives timely; [`errors`] and [`progress`] hold the error type and
//! the live counters (and the cancel handle).
//!
//! Errors never panic a worker: they travel as data in "errs" collections and end the
//! run with an [`ExecutionError`].

#![forbid(unsafe_code)]

mod accum;
pub mod checkpoint;
mod cluster_net;
mod control;
mod convert;
pub mod errors;
pub mod progress;
mod render;
mod run;

pub use errors::ExecutionError;
pub use progress::{Progress, ProgressSnapshot};
pub use sluice_compiler::instance::CollectedResult;

use sluice_compiler::DataflowPlan;
use sluice_connectors::Registry;
use sluice_gpu::{ColumnarKernels, CpuKernels, GpuConfig, GpuKernels};
use std::sync::Arc;

/// The columnar kernels of a job asking for `job_gpus` GPUs (`resources.gpus`):
/// [`GpuKernels`] placing each eligible batch by `SLUICE_GPU` (`off`, `auto` — the
/// default — or `force`), `SLUICE_GPU_MIN_ROWS` and GPU availability, with the CPU
/// kernels as fallback. An unreadable `SLUICE_GPU` is logged and read as `auto`.
pub fn kernels_for_job(job_gpus: u32) -> Arc<dyn ColumnarKernels> {
    let config = GpuConfig::from_env(job_gpus).unwrap_or_else(|e| {
        tracing::warn!("sluice-gpu: {e}; using auto");
        GpuConfig {
            job_gpus,
            ..GpuConfig::default()
        }
    });
    Arc::new(GpuKernels::new(config))
}

/// Rows per source poll unless told otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// How to run a plan.
#[derive(Clone)]
pub struct RunOptions {
    /// Worker threads (at least 1).
    pub workers: usize,
    /// Connectors sources and sinks are created from.
    pub registry: Registry,
    /// Rows per source poll.
    pub batch_size: usize,
    /// Kernels evaluating the stateless stages that run on Arrow batches.
    pub kernels: Arc<dyn ColumnarKernels>,
    /// Periodic checkpoints, restored from at start ([`checkpoint`]); none when `None`.
    pub checkpoint: Option<sluice_compiler::instance::CheckpointConfig>,
    /// The process exits when the run ends (a worker process): stateful operators whose
    /// input is complete then leave their state to the OS rather than freeing it entry
    /// by entry (which costs as much CPU as building it: millions of rows). Off by
    /// default (a library caller runs again in the same process).
    pub exit_after_run: bool,
    /// A run over several processes: this process's index and every process's address
    /// (`host:port`, in process order); `workers` threads run in each. `None`: this
    /// process alone.
    pub cluster: Option<(usize, Vec<String>)>,
}

impl RunOptions {
    /// One worker, the default batch size, the CPU kernels, these connectors.
    pub fn new(registry: Registry) -> Self {
        RunOptions {
            workers: 1,
            registry,
            batch_size: DEFAULT_BATCH_SIZE,
            kernels: Arc::new(CpuKernels),
            checkpoint: None,
            exit_after_run: false,
            cluster: None,
        }
    }

    /// The same options for process `process` of a run over the processes at `peers`
    /// (timely's cluster mode; one process when `peers` has at most one address).
    pub fn with_cluster(mut self, process: usize, peers: Vec<String>) -> Self {
        self.cluster = (peers.len() > 1).then_some((process, peers));
        self
    }

    /// The same options for a process that exits when the run ends
    /// ([`RunOptions::exit_after_run`]).
    pub fn with_exit_after_run(mut self) -> Self {
        self.exit_after_run = true;
        self
    }

    /// The same options with periodic checkpoints.
    pub fn with_checkpoint(mut self, cfg: sluice_compiler::instance::CheckpointConfig) -> Self {
        self.checkpoint = Some(cfg);
        self
    }

    /// The same options with other columnar kernels.
    pub fn with_kernels(mut self, kernels: Arc<dyn ColumnarKernels>) -> Self {
        self.kernels = kernels;
        self
    }

    /// The same options with `workers` workers.
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// The same options with `batch_size` rows per source poll.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }
}

/// Opens the sealed secret option values of `plan` (see `sluice_catalogs::sealed`)
/// with the key in `key_file`; nothing to do without one. Errors never contain a value.
pub fn open_secrets(plan: &mut DataflowPlan, key_file: Option<&str>) -> Result<(), ExecutionError> {
    let Some(path) = key_file else {
        return Ok(());
    };
    let key = sluice_catalogs::sealed::SealKey::load(std::path::Path::new(path))
        .map_err(|e| ExecutionError::Internal(e.to_string()))?;
    let mut failed = None;
    plan.for_each_table_mut(&mut |t| {
        if failed.is_none() {
            if let Err(e) = key.open_options(&mut t.options) {
                failed = Some(ExecutionError::Connector {
                    table: t.name.clone(),
                    message: e.to_string(),
                });
            }
        }
    });
    failed.map_or(Ok(()), Err)
}

/// What a finished run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutput {
    /// One entry per `SinkTarget::Collect` output, in output order.
    pub collected: Vec<CollectedResult>,
    /// The counters at the end of the run.
    pub metrics: ProgressSnapshot,
}

/// Renders `plan` and runs it to completion (every source finished) on
/// `options.workers` threads. `progress` is updated while it runs.
pub fn run(
    plan: &DataflowPlan,
    options: RunOptions,
    progress: Arc<Progress>,
) -> Result<RunOutput, ExecutionError> {
    run::execute(plan, options, progress)
}
