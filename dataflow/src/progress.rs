//! [`Progress`]: live counters of a run, readable from any thread while it runs, and
//! the handle to cancel it.

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
    cancelled: AtomicBool,
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
        }
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
