//! `/api/v1/jobs/{name}/metrics` and `/api/v1/metrics/usage`: the stored metrics
//! history (see [`crate::history`]) as JSON series, and how much of its bound it holds.

use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use super::guard::secured;
use super::AppState;
use crate::auth::Role;
use crate::history::query::{job_series, Range, SeriesView};
use crate::history::{HistoryConfig, Usage};
use crate::model::now_ms;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(secured(Role::Viewer, routes!(job_metrics)))
        .routes(secured(Role::Viewer, routes!(metrics_usage)))
}

/// `GET /api/v1/jobs/{name}/metrics`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MetricsQuery {
    /// From (ms since the Unix epoch; default: 15 minutes before `to`).
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// To (ms since the Unix epoch; default: now).
    #[param(minimum = 0)]
    pub to: Option<i64>,
    /// Resolution (ms; default: about 300 points over the range, never finer than the
    /// sample interval). At most 11000 points per series.
    #[param(minimum = 1)]
    pub step: Option<i64>,
}

/// A job's metrics history.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobMetrics {
    /// The job.
    pub job: String,
    /// The range served (ms since the Unix epoch) and its step (ms).
    pub from: i64,
    /// End of the range.
    pub to: i64,
    /// Resolution.
    pub step: i64,
    /// One series per metric (empty before the first sample).
    pub series: Vec<SeriesView>,
    /// How much the whole history holds against its bounds.
    pub usage: Usage,
}

/// The history's settings and how much it holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryUsage {
    /// Settings (`sluice serve --metrics-*`).
    pub config: HistoryConfig,
    /// What it holds.
    pub usage: Usage,
}

fn history(m: &AppState) -> Result<&crate::history::sampler::History, ApiError> {
    m.history.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this master keeps no metrics history",
        )
    })
}

/// A job's metrics history: rows read/in/out, bad and late rows, restarts and CPU as
/// per-second rates of their counters; resident memory, live instances and the newest
/// checkpoint's epoch, duration and state size as sampled.
#[utoipa::path(get, path = "/api/v1/jobs/{name}/metrics", tag = "jobs",
    params(("name" = String, Path, description = "The job's name"), MetricsQuery),
    responses(
        (status = 200, description = "The job's series", body = JobMetrics),
        (status = 400, description = "Invalid range or step", body = ErrorBody,
            example = json!({"code": "invalid_request", "message": "'from' (10) must be before 'to' (5)", "details": {}})),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 503, description = "No history kept", body = ErrorBody),
    ))]
async fn job_metrics(
    State(m): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiQuery(q): ApiQuery<MetricsQuery>,
) -> Result<Json<JobMetrics>, ApiError> {
    let h = history(&m)?;
    let range = Range::new(
        q.from,
        q.to,
        q.step,
        now_ms(),
        h.config.sample_interval_ms as i64,
    )
    .map_err(ApiError::invalid)?;
    m.jobs.job(&name)?;
    let series = h.read(|s| job_series(s, &name, range));
    Ok(Json(JobMetrics {
        job: name,
        from: range.from,
        to: range.to,
        step: range.step,
        series,
        usage: h.usage(),
    }))
}

/// The metrics history's settings, and the series, points and bytes it holds against
/// its bounds.
#[utoipa::path(get, path = "/api/v1/metrics/usage", tag = "system",
    responses(
        (status = 200, description = "Settings and usage", body = HistoryUsage),
        (status = 503, description = "No history kept", body = ErrorBody),
    ))]
async fn metrics_usage(State(m): State<AppState>) -> Result<Json<HistoryUsage>, ApiError> {
    let h = history(&m)?;
    Ok(Json(HistoryUsage {
        config: h.config,
        usage: h.usage(),
    }))
}
