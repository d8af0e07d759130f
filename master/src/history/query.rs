//! Reading the history for `GET /api/v1/jobs/{name}/metrics`: one job's series between
//! `from` and `to`, resampled to `step` (the last point of each step bucket), with
//! counters turned into per-second rates.
//!
//! A counter's rate at bucket `b` is `(v_b − v_a) / (t_b − t_a)` × 1000 over the previous
//! bucket `a` that has a point; when `v_b < v_a` (a new process started counting from
//! zero) it is `v_b / (t_b − t_a)` × 1000. The first bucket of a counter has no rate.

use super::{kind_of, unit_of, HistoryState, Kind, SeriesKey};
use serde::Serialize;
use utoipa::ToSchema;

/// Most points one served series may have (`(to − from) / step`).
pub const MAX_POINTS_PER_QUERY: i64 = 11_000;

/// A validated query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// From (ms since the epoch, inclusive).
    pub from: i64,
    /// To (ms since the epoch, inclusive).
    pub to: i64,
    /// Bucket width (ms).
    pub step: i64,
}

impl Range {
    /// Checks and completes `from`/`to`/`step` (defaults: the last 15 minutes, a step
    /// giving at most 300 points, never finer than `min_step`).
    pub fn new(
        from: Option<i64>,
        to: Option<i64>,
        step: Option<i64>,
        now: i64,
        min_step: i64,
    ) -> Result<Range, String> {
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(to.saturating_sub(15 * 60_000).max(0));
        if from < 0 || to < 0 {
            return Err("'from' and 'to' are milliseconds since the Unix epoch (≥ 0)".into());
        }
        if from >= to {
            return Err(format!("'from' ({from}) must be before 'to' ({to})"));
        }
        let span = to - from;
        let step = match step {
            Some(s) if s <= 0 => {
                return Err(format!(
                    "'step' ({s}) must be a positive number of milliseconds"
                ))
            }
            Some(s) => s,
            None => (span / 300).max(min_step.max(1)),
        };
        if span / step > MAX_POINTS_PER_QUERY {
            return Err(format!(
                "'step' ({step} ms) is too fine for the range: at most {MAX_POINTS_PER_QUERY} points per series"
            ));
        }
        Ok(Range { from, to, step })
    }
}

/// One served series.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct SeriesView {
    /// The metric: `rows_read`, `rows_in`, `rows_out`, `bad_records`, `late_rows`,
    /// `restarts`, `cpu_seconds` (rates of these counters), `rss_bytes`,
    /// `instances_up`, `checkpoint_epoch`, `checkpoint_duration_ms`, `state_bytes`,
    /// `operator_state_bytes` (one per stateful operator; gauges), `operator_rows` (one
    /// per plan operator; the rate of its output).
    #[schema(example = "rows_in")]
    pub name: String,
    /// `counter` (the points are per-second rates) or `gauge` (sampled values).
    pub kind: Kind,
    /// The unit of the points' values (`rows/s`, `cores`, `bytes`, …).
    #[schema(example = "rows/s")]
    pub unit: String,
    /// Labels: `job`, and `operator` for `operator_state_bytes` and `operator_rows`.
    #[schema(value_type = Object, example = json!({"job": "clicks"}))]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `[t, v]` pairs: t in ms since the Unix epoch (the sample's time), v the value.
    #[schema(value_type = Vec<Vec<f64>>, example = json!([[1764950400000i64, 1250.0]]))]
    pub points: Vec<(i64, f64)>,
}

/// Every series of `job` over `range`.
pub fn job_series(state: &HistoryState, job: &str, range: Range) -> Vec<SeriesView> {
    let start = SeriesKey {
        job: job.to_string(),
        metric: String::new(),
        operator: String::new(),
    };
    state
        .series
        .range(start..)
        .take_while(|(k, _)| k.job == job)
        .map(|(k, s)| {
            let kind = kind_of(&k.metric);
            // The last point of each bucket; one bucket before `from` too, so the
            // first rate in range has a predecessor.
            let mut buckets: Vec<(i64, f64)> = Vec::new();
            let lo = range.from - range.step;
            for (t, v) in s.points().filter(|p| p.0 >= lo && p.0 <= range.to) {
                let b = (t - range.from).div_euclid(range.step);
                match buckets.last_mut() {
                    Some(last) if (last.0 - range.from).div_euclid(range.step) == b => {
                        *last = (t, v)
                    }
                    _ => buckets.push((t, v)),
                }
            }
            let points = match kind {
                Kind::Gauge => buckets.into_iter().filter(|p| p.0 >= range.from).collect(),
                Kind::Counter => buckets
                    .windows(2)
                    .filter(|w| w[1].0 >= range.from && w[1].0 > w[0].0)
                    .map(|w| {
                        let dt = (w[1].0 - w[0].0) as f64 / 1000.0;
                        let dv = if w[1].1 >= w[0].1 {
                            w[1].1 - w[0].1
                        } else {
                            w[1].1
                        };
                        (w[1].0, dv / dt)
                    })
                    .collect(),
            };
            SeriesView {
                name: k.metric.clone(),
                kind,
                unit: unit_of(&k.metric).to_string(),
                labels: std::iter::once(("job".to_string(), job.to_string()))
                    .chain(
                        (!k.operator.is_empty())
                            .then(|| ("operator".to_string(), k.operator.clone())),
                    )
                    .collect(),
                points,
            }
        })
        .collect()
}
