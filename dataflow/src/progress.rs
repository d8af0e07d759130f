//! [`Progress`]: live counters of a run, readable from any thread while it runs, and
//! the handle to cancel it.

use sluice_gpu::DeviceMetrics;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Worker threads whose loop iterations [`Progress`] counts (the job's parallelism is
/// at most 256; higher indices share the last slot).
const STEP_SLOTS: usize = 256;

/// Counters updated by the operators of a running dataflow (all workers add to the
/// same atomics). Share it with an `Arc` and call [`Progress::snapshot`] at any time.
#[derive(Debug)]
pub struct Progress {
    rows_in: AtomicU64,
    rows_out: AtomicU64,
    late_rows: AtomicU64,
    bad_records: AtomicU64,
    dead_lettered: AtomicU64,
    /// Rows read by sources and dropped there by pushed-down filters.
    rows_filtered: AtomicU64,
    /// Source operators (one per source table per worker) started and not yet
    /// exhausted (finished, failed or cancelled).
    sources_waiting: AtomicU64,
    /// Source operators that have input available and not yet read: their last poll
    /// gave rows, or nothing while the source was not caught up (see
    /// `Source::caught_up`). Zero for a job whose sources are idle.
    sources_backlogged: AtomicU64,
    /// Per worker thread: loop iterations so far (the worker's own liveness; a worker
    /// steps at least every millisecond while it runs).
    steps: Vec<AtomicU64>,
    cancelled: AtomicBool,
    /// Entries of open window-aggregate state held now, all workers together: (pane,
    /// group) accumulators of HOP-by-pane window aggregates.
    window_state: AtomicU64,
    /// The most `window_state` has been.
    window_state_peak: AtomicU64,
    /// Rows of both sides held by interval joins now (all operators, all workers).
    join_state_rows: AtomicU64,
    /// The most `join_state_rows` has been.
    join_state_peak: AtomicU64,
    /// Rows per device and GPU fallbacks of the batch `Calc` stages.
    device: DeviceMetrics,
    /// Rows each plan operator emitted (`instance::operator_key` → count), shared by
    /// the workers.
    operators: std::sync::Mutex<std::collections::BTreeMap<String, Arc<AtomicU64>>>,
}

pub use sluice_compiler::instance::ProgressSnapshot;

impl Default for Progress {
    fn default() -> Self {
        Progress {
            rows_in: AtomicU64::new(0),
            rows_out: AtomicU64::new(0),
            late_rows: AtomicU64::new(0),
            bad_records: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            rows_filtered: AtomicU64::new(0),
            sources_waiting: AtomicU64::new(0),
            sources_backlogged: AtomicU64::new(0),
            steps: (0..STEP_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            cancelled: AtomicBool::new(false),
            window_state: AtomicU64::new(0),
            window_state_peak: AtomicU64::new(0),
            join_state_rows: AtomicU64::new(0),
            join_state_peak: AtomicU64::new(0),
            device: DeviceMetrics::default(),
            operators: Default::default(),
        }
    }
}

impl Progress {
    /// All counters at zero.
    pub fn new() -> Self {
        Progress::default()
    }

    /// The current values.
    pub fn snapshot(&self) -> ProgressSnapshot {
        ProgressSnapshot {
            rows_in: self.rows_in.load(Ordering::Relaxed),
            rows_read: self.rows_in.load(Ordering::Relaxed)
                + self.rows_filtered.load(Ordering::Relaxed),
            rows_out: self.rows_out.load(Ordering::Relaxed),
            late_rows: self.late_rows.load(Ordering::Relaxed),
            bad_records: self.bad_records.load(Ordering::Relaxed),
            dead_lettered: self.dead_lettered.load(Ordering::Relaxed),
            rows_cpu: self.device.rows_cpu(),
            rows_gpu: self.device.rows_gpu(),
            gpu_fallbacks: self.device.fallbacks(),
            operators: self
                .operators
                .lock()
                .map(|m| {
                    m.iter()
                        .map(|(k, c)| (k.clone(), c.load(Ordering::Relaxed)))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The counter of the rows the plan operator `key` emits (one per operator, shared
    /// by the workers that render it).
    pub(crate) fn operator_counter(&self, key: String) -> Arc<AtomicU64> {
        match self.operators.lock() {
            Ok(mut m) => m.entry(key).or_default().clone(),
            Err(_) => Arc::new(AtomicU64::new(0)),
        }
    }

    /// The per-device counters the columnar kernels add to (fallback reasons included).
    pub fn device_metrics(&self) -> &DeviceMetrics {
        &self.device
    }

    /// Rows held by the interval joins of the run now (both sides, all workers): the
    /// state the watermark bounds (see `render/interval_join.rs`).
    pub fn join_state_rows(&self) -> u64 {
        self.join_state_rows.load(Ordering::SeqCst)
    }

    /// The most rows the interval joins of the run have held at once.
    pub fn join_state_peak(&self) -> u64 {
        self.join_state_peak.load(Ordering::SeqCst)
    }

    /// An interval join stored `added` rows and freed `freed`.
    pub(crate) fn join_state_changed(&self, added: u64, freed: u64) {
        if added > 0 {
            let now = self.join_state_rows.fetch_add(added, Ordering::SeqCst) + added;
            self.join_state_peak.fetch_max(now, Ordering::SeqCst);
        }
        if freed > 0 {
            let _ = self
                .join_state_rows
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    Some(n.saturating_sub(freed))
                });
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

    /// True while some source has input available that it has not read yet. A run
    /// whose counters stop moving while this is true is hung; a run whose sources are
    /// all caught up (an idle Kafka topic, a quiet directory) is idle, however long.
    pub fn input_waiting(&self) -> bool {
        self.sources_backlogged.load(Ordering::SeqCst) > 0
    }

    /// Loop iterations of each worker thread so far, indexed by worker (`workers`
    /// entries): the worker's own liveness signal.
    pub fn worker_steps(&self, workers: usize) -> Vec<u64> {
        self.steps
            .iter()
            .take(workers.clamp(1, STEP_SLOTS))
            .map(|s| s.load(Ordering::Relaxed))
            .collect()
    }

    /// Worker `index` finished one iteration of its loop.
    pub(crate) fn worker_stepped(&self, index: usize) {
        self.steps[index.min(STEP_SLOTS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// A source operator's input became available (`true`) or caught up (`false`);
    /// called on changes only (see `render/source.rs`).
    pub(crate) fn source_backlogged(&self, backlogged: bool) {
        if backlogged {
            self.sources_backlogged.fetch_add(1, Ordering::SeqCst);
        } else {
            let _ = self
                .sources_backlogged
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        }
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
    pub(crate) fn add_rows_filtered(&self, n: u64) {
        self.rows_filtered.fetch_add(n, Ordering::Relaxed);
    }
    pub(crate) fn add_rows_out(&self, n: u64) {
        self.rows_out.fetch_add(n, Ordering::Relaxed);
    }
    /// Open window-state entries now (see the field docs): the operators' state size.
    pub fn window_state(&self) -> u64 {
        self.window_state.load(Ordering::Relaxed)
    }

    /// The most open window-state entries held at once during the run.
    pub fn window_state_peak(&self) -> u64 {
        self.window_state_peak.load(Ordering::Relaxed)
    }

    /// Window-state entries were created (`added`) and freed (`freed`).
    pub(crate) fn window_state_changed(&self, added: u64, freed: u64) {
        if added > 0 {
            let now = self.window_state.fetch_add(added, Ordering::Relaxed) + added;
            self.window_state_peak.fetch_max(now, Ordering::Relaxed);
        }
        if freed > 0 {
            let _ = self
                .window_state
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(freed))
                });
        }
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
