//! [`Progress`]: live counters of a run, readable from any thread while it runs, and
//! the handle to cancel it.

use sluice_gpu::DeviceMetrics;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters updated by the operators of a running dataflow (all workers add to the
/// same atomics). Share it with an `Arc` and call [`Progress::snapshot`] at any time.
#[derive(Debug, Default)]
pub struct Progress {
    rows_in: AtomicU64,
    rows_out: AtomicU64,
    late_rows: AtomicU64,
    bad_records: AtomicU64,
    dead_lettered: AtomicU64,
    /// Source operators (one per source table per worker) started and not yet
    /// exhausted (finished, failed or cancelled).
    sources_waiting: AtomicU64,
    cancelled: AtomicBool,
    /// Rows per device and GPU fallbacks of the batch `Calc` stages.
    device: DeviceMetrics,
}

pub use sluice_compiler::instance::ProgressSnapshot;

impl Progress {
    /// All counters at zero.
    pub fn new() -> Self {
        Progress::default()
    }

    /// The current values.
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            rows_in: self.rows_in.load(Ordering::Relaxed),
            rows_out: self.rows_out.load(Ordering::Relaxed),
            late_rows: self.late_rows.load(Ordering::Relaxed),
            bad_records: self.bad_records.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            rows_cpu: self.device.rows_cpu(),
            rows_gpu: self.device.rows_gpu(),
            gpu_fallbacks: self.device.fallbacks(),
        }
    }

    /// The per-device counters the columnar kernels add to (fallback reasons included).
    pub fn device_metrics(&self) -> &DeviceMetrics {
        &self.device
    }

    /// Asks the run to stop: sources stop reading, the dataflow drains, nothing is
    /// committed and [`crate::run`] returns [`crate::ExecutionError::Cancelled`]. The only
    /// way to end a run over unbounded input.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// True once [`Progress::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// True while some source operator has started and is not exhausted yet: the run
    /// still has input to read (always true for a running unbounded source). A run
    /// whose counters stop moving while this is true is hung, not done.
    pub fn input_waiting(&self) -> bool {
        self.sources_waiting.load(Ordering::SeqCst) > 0
    }

    /// Source operators started and not yet exhausted (over all workers).
    pub fn sources_waiting(&self) -> u64 {
        self.sources_waiting.load(Ordering::SeqCst)
    }

    /// A source operator started (call [`Progress::source_exhausted`] once when it ends).
    pub(crate) fn source_started(&self) {
        self.sources_waiting.fetch_add(1, Ordering::SeqCst);
    }
    /// A source operator ended (exhausted, failed or cancelled).
    pub(crate) fn source_exhausted(&self) {
        // Never below zero, whatever the call order.
        let _ = self
            .sources_waiting
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    pub(crate) fn add_rows_in(&self, n: u64) {
        self.rows_in.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_rows_out(&self, n: u64) {
        self.rows_out.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_late_rows(&self, n: u64) {
        self.late_rows.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_bad_records(&self, n: u64) {
        self.bad_records.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_dead_lettered(&self, n: u64) {
        self.dead_lettered.fetch_add(n, Ordering::Relaxed);
    }
}
