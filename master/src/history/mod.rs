//! The metrics history: what the console's charts read. The master samples every job's
//! counters and its processes' CPU and memory every few seconds ([`sampler`], the
//! executor loop), folds each observation into a bounded [`HistoryState`] with the pure
//! [`step`] (state + observation → new state, as the watchdog's `decide`), persists the
//! series it touched in the master's sled store ([`persist`]), and serves them as JSON
//! at `GET /api/v1/jobs/{name}/metrics` (counters as per-second rates).
//!
//! Shape of one series (one job, one metric):
//!
//! ```text
//!   coarse: one point per `coarse_step_ms` bucket (last sample of the bucket) ── up to `retention_ms` old
//!   raw:    every sample                                                      ── the last `raw_window_ms`
//! ```
//!
//! Invariants, after every [`step`]:
//! - `len(raw) + len(coarse) <= max_points_per_series` for every series;
//! - `len(series) <= max_series` (the series sampled longest ago are evicted first,
//!   and among series sampled together the shortest, so held series keep their history);
//! - no point is older than `now - retention_ms`.
//!
//! So the points held are at most `max_series × max_points_per_series`, whatever the
//! number of jobs; [`HistoryState::usage`] reports them (and `GET /api/v1/metrics/usage`).

pub mod persist;
pub mod query;
pub mod sampler;

use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

/// What a metric's samples mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A monotonic total (rows, CPU seconds); served as a per-second rate. A drop (a new
    /// instance's process) is a reset: the rate counts from zero again.
    Counter,
    /// A level (resident memory, live instances); served as sampled.
    Gauge,
}

/// The metrics sampled per job: name, kind, unit of the served values.
pub const METRICS: [(&str, Kind, &str); 14] = [
    ("rows_read", Kind::Counter, "rows/s"),
    ("rows_in", Kind::Counter, "rows/s"),
    ("rows_out", Kind::Counter, "rows/s"),
    ("bad_records", Kind::Counter, "rows/s"),
    ("late_rows", Kind::Counter, "rows/s"),
    ("restarts", Kind::Counter, "1/s"),
    ("cpu_seconds", Kind::Counter, "cores"),
    ("rss_bytes", Kind::Gauge, "bytes"),
    ("instances_up", Kind::Gauge, "instances"),
    ("checkpoint_epoch", Kind::Gauge, "epoch"),
    ("checkpoint_duration_ms", Kind::Gauge, "ms"),
    ("state_bytes", Kind::Gauge, "bytes"),
    ("operator_state_bytes", Kind::Gauge, "bytes"),
    ("operator_rows", Kind::Counter, "rows/s"),
];

/// The per-operator metric: one series per stateful operator (label `operator`: its
/// stable id in the checkpoints, as `POST /api/v1/jobs/{name}/plan` names it).
pub const OPERATOR_STATE_BYTES: &str = "operator_state_bytes";

/// The per-operator rate: one series per plan operator (label `operator`:
/// `<query>.<node>`, the query's index in the job's SQL and the operator's line in its
/// EXPLAIN PHYSICAL, as the instances' `operators` counters are keyed), the rows it
/// emitted per second.
pub const OPERATOR_ROWS: &str = "operator_rows";

/// The kind of a metric by name (gauge when unknown).
pub fn kind_of(metric: &str) -> Kind {
    METRICS
        .iter()
        .find(|(n, _, _)| *n == metric)
        .map(|(_, k, _)| *k)
        .unwrap_or(Kind::Gauge)
}

/// The unit of a metric's served values.
pub fn unit_of(metric: &str) -> &'static str {
    METRICS
        .iter()
        .find(|(n, _, _)| *n == metric)
        .map(|(_, _, u)| *u)
        .unwrap_or("")
}

/// The bounds and resolution of the history (`sluice serve --metrics-*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct HistoryConfig {
    /// Time between samples (ms).
    pub sample_interval_ms: u64,
    /// Every sample is kept this long (ms); older ones are folded into coarse buckets.
    pub raw_window_ms: u64,
    /// The width of a coarse bucket (ms).
    pub coarse_step_ms: u64,
    /// Nothing older than this is kept (ms).
    pub retention_ms: u64,
    /// Most points one series holds (raw and coarse together).
    pub max_points_per_series: usize,
    /// Most series held (one per job and metric).
    pub max_series: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            sample_interval_ms: 5_000,
            raw_window_ms: 10 * 60_000,
            coarse_step_ms: 60_000,
            retention_ms: 60 * 60_000,
            max_points_per_series: 240,
            max_series: 20_000,
        }
    }
}

/// Bytes one stored point takes (an `i64` time and an `f64` value), in memory and on
/// disk ([`persist`]).
pub const POINT_BYTES: usize = 16;

impl HistoryConfig {
    /// Checks the settings make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.sample_interval_ms == 0 || self.coarse_step_ms == 0 || self.retention_ms == 0 {
            return Err("the metrics interval, coarse step and retention must be positive".into());
        }
        if self.max_points_per_series < 2 || self.max_series == 0 {
            return Err("metrics bounds: at least 2 points per series and 1 series".into());
        }
        Ok(())
    }

    /// The most points held in all.
    pub fn max_points(&self) -> usize {
        self.max_series.saturating_mul(self.max_points_per_series)
    }
}

/// A series' identity: the job, the metric, and the operator for per-operator ones.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// The job's name.
    pub job: String,
    /// The metric ([`METRICS`]).
    pub metric: String,
    /// The operator (per-operator metrics), else empty.
    pub operator: String,
}

/// The points of one series, oldest first; `(ms since the epoch, value)`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Coarse points (one per bucket), older than the raw ones.
    pub coarse: Vec<(i64, f64)>,
    /// Every sample of the last raw window.
    pub raw: Vec<(i64, f64)>,
}

impl Series {
    /// Points held.
    pub fn len(&self) -> usize {
        self.coarse.len() + self.raw.len()
    }

    /// True when it holds no point.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest point's time.
    pub fn last_t(&self) -> Option<i64> {
        self.raw.last().or(self.coarse.last()).map(|p| p.0)
    }

    /// Every point, oldest first.
    pub fn points(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        self.coarse.iter().chain(self.raw.iter()).copied()
    }
}

/// The history: every series.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryState {
    /// Series by key.
    pub series: BTreeMap<SeriesKey, Series>,
}

/// One sample of one job: metric → value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JobSample {
    /// The job's name.
    pub job: String,
    /// Values by metric name.
    pub values: BTreeMap<String, f64>,
    /// [`OPERATOR_STATE_BYTES`] by operator.
    pub operator_state: BTreeMap<String, f64>,
    /// [`OPERATOR_ROWS`] (a counter) by plan operator.
    pub operator_rows: BTreeMap<String, f64>,
}

/// One sampling of every job, at one time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// One sample per job.
    pub jobs: Vec<JobSample>,
}

/// How much the history holds, against its bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Usage {
    /// Series held.
    pub series: usize,
    /// Points held (all series).
    pub points: usize,
    /// Bytes the points take ([`POINT_BYTES`] each).
    pub bytes: usize,
    /// The bound on series.
    pub max_series: usize,
    /// The bound on points per series.
    pub max_points_per_series: usize,
    /// The bound on points in all (`max_series × max_points_per_series`).
    pub max_points: usize,
    /// The bound on bytes (`max_points × 16`).
    pub max_bytes: usize,
}

impl HistoryState {
    /// What it holds, against `cfg`'s bounds.
    pub fn usage(&self, cfg: &HistoryConfig) -> Usage {
        let points: usize = self.series.values().map(Series::len).sum();
        Usage {
            series: self.series.len(),
            points,
            bytes: points * POINT_BYTES,
            max_series: cfg.max_series,
            max_points_per_series: cfg.max_points_per_series,
            max_points: cfg.max_points(),
            max_bytes: cfg.max_points().saturating_mul(POINT_BYTES),
        }
    }
}

/// The result of a [`step`]: the new state, and which series changed or went (what
/// [`persist`] writes and deletes).
#[derive(Debug, Default)]
pub struct Stepped {
    /// The new state.
    pub state: HistoryState,
    /// Series that changed.
    pub touched: BTreeSet<SeriesKey>,
    /// Series that were dropped (expired or evicted).
    pub removed: BTreeSet<SeriesKey>,
}

/// Folds one observation into the history: appends each job's values, moves raw
/// points older than the raw window into coarse buckets (the last sample of a bucket
/// wins: exact for counters, a sample for gauges), drops what is older than the
/// retention, cuts each series to its point bound (oldest first) and the series to
/// theirs (least recently sampled first). Pure: no clock, no I/O.
pub fn step(mut state: HistoryState, obs: &Observation, cfg: &HistoryConfig) -> Stepped {
    let now = obs.at_ms;
    let mut touched = BTreeSet::new();
    let mut removed = BTreeSet::new();
    for sample in &obs.jobs {
        let job_values = sample.values.iter().map(|(m, v)| (m.as_str(), "", v));
        let operator_values = sample
            .operator_state
            .iter()
            .map(|(op, v)| (OPERATOR_STATE_BYTES, op.as_str(), v))
            .chain(
                sample
                    .operator_rows
                    .iter()
                    .map(|(op, v)| (OPERATOR_ROWS, op.as_str(), v)),
            );
        for (metric, operator, value) in job_values.chain(operator_values) {
            if !value.is_finite() {
                continue;
            }
            let key = SeriesKey {
                job: sample.job.clone(),
                metric: metric.to_string(),
                operator: operator.to_string(),
            };
            let s = state.series.entry(key.clone()).or_default();
            // Time only moves forward within a series (a clock step back is skipped).
            if s.last_t().is_some_and(|t| t >= now) {
                continue;
            }
            s.raw.push((now, *value));
            touched.insert(key);
        }
    }
    let raw_from = now.saturating_sub(cfg.raw_window_ms as i64);
    let keep_from = now.saturating_sub(cfg.retention_ms as i64);
    let step_ms = cfg.coarse_step_ms.max(1) as i64;
    for (key, s) in state.series.iter_mut() {
        let before = (s.coarse.len(), s.raw.len(), s.coarse.first().copied());
        let aged = s.raw.iter().take_while(|p| p.0 < raw_from).count();
        for p in s.raw.drain(..aged) {
            let bucket = p.0.div_euclid(step_ms) * step_ms;
            match s.coarse.last_mut() {
                Some(last) if last.0.div_euclid(step_ms) * step_ms == bucket => *last = p,
                _ => s.coarse.push(p),
            }
        }
        let old = s.coarse.iter().take_while(|p| p.0 < keep_from).count();
        s.coarse.drain(..old);
        let old = s.raw.iter().take_while(|p| p.0 < keep_from).count();
        s.raw.drain(..old);
        let over = s.len().saturating_sub(cfg.max_points_per_series);
        let from_coarse = over.min(s.coarse.len());
        s.coarse.drain(..from_coarse);
        s.raw.drain(..over - from_coarse);
        if (s.coarse.len(), s.raw.len(), s.coarse.first().copied()) != before {
            touched.insert(key.clone());
        }
    }
    state.series.retain(|key, s| {
        let keep = !s.is_empty();
        if !keep {
            removed.insert(key.clone());
        }
        keep
    });
    if state.series.len() > cfg.max_series {
        // Least recently sampled first; among those sampled together, the shortest
        // (newest) first, so the series held keep their history.
        let mut by_age: Vec<(i64, usize, SeriesKey)> = state
            .series
            .iter()
            .map(|(k, s)| (s.last_t().unwrap_or(i64::MIN), s.len(), k.clone()))
            .collect();
        by_age.sort();
        let excess = state.series.len() - cfg.max_series;
        for (_, _, key) in by_age.into_iter().take(excess) {
            state.series.remove(&key);
            removed.insert(key);
        }
    }
    touched.retain(|k| !removed.contains(k));
    Stepped {
        state,
        touched,
        removed,
    }
}

#[cfg(test)]
mod tests;
