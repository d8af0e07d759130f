//! `/api/v1/instances`: list, get, kill, logs.

use super::error::{ApiError, ApiPath, ApiQuery, ErrorBody};
use super::guard::secured;
use super::views::{InstanceListQuery, InstanceView, LogsQuery};
use super::AppState;
use crate::auth::Role;
use crate::service::ServiceError;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use std::collections::BTreeMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(secured(Role::Viewer, routes!(list_instances)))
        .routes(secured(Role::Viewer, routes!(get_instance)))
        .routes(secured(Role::Editor, routes!(kill_instance)))
        .routes(secured(Role::Viewer, routes!(instance_logs)))
}

fn restarts_by_job(m: &AppState) -> BTreeMap<String, u64> {
    m.jobs
        .jobs_with_status()
        .unwrap_or_default()
        .into_iter()
        .map(|(j, s)| (j.id, s.restarts))
        .collect()
}

/// Every instance on every cluster (live, and ended ones kept for their logs).
#[utoipa::path(get, path = "/api/v1/instances", tag = "instances",
    params(InstanceListQuery),
    responses(
        (status = 200, description = "Instances by id", body = Vec<InstanceView>),
        (status = 400, description = "Invalid query", body = ErrorBody),
        (status = 500, description = "A cluster driver failed", body = ErrorBody),
    ))]
async fn list_instances(
    State(m): State<AppState>,
    ApiQuery(q): ApiQuery<InstanceListQuery>,
) -> Result<Json<Vec<InstanceView>>, ApiError> {
    let restarts = restarts_by_job(&m);
    let views = m
        .core
        .instances()?
        .iter()
        .filter(|i| q.job.as_ref().is_none_or(|j| &i.job_name == j))
        .filter(|i| q.live.is_none_or(|l| i.state.is_live() == l))
        .map(|i| InstanceView::new(i, restarts.get(&i.job_id).copied().unwrap_or(0)))
        .collect();
    Ok(Json(views))
}

/// One instance: state, pids, start time, restarts, last heartbeat, rows in/out.
#[utoipa::path(get, path = "/api/v1/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "The instance id")),
    responses(
        (status = 200, description = "The instance", body = InstanceView),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 500, description = "A cluster driver failed", body = ErrorBody),
    ))]
async fn get_instance(
    State(m): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<InstanceView>, ApiError> {
    let (i, _) = m.core.instance(&id)?;
    let restarts = restarts_by_job(&m);
    Ok(Json(InstanceView::new(
        &i,
        restarts.get(&i.job_id).copied().unwrap_or(0),
    )))
}

/// Kill an instance abruptly (SIGKILL): to the watchdog this is a crash, so a job that
/// should be running gets a new instance (with a restart counted).
#[utoipa::path(post, path = "/api/v1/instances/{id}/kill", tag = "instances",
    params(("id" = String, Path, description = "The instance id")),
    responses(
        (status = 202, description = "Killed; the watchdog reacts", body = InstanceView),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 409, description = "The instance has already ended", body = ErrorBody),
        (status = 500, description = "A cluster driver failed", body = ErrorBody),
    ))]
async fn kill_instance(
    State(m): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<InstanceView>), ApiError> {
    let (i, cluster) = m.core.instance(&id)?;
    if !i.state.is_live() {
        return Err(ServiceError::Conflict(format!("instance '{id}' has already ended")).into());
    }
    let kill_id = id.clone();
    tokio::task::spawn_blocking(move || cluster.kill(&kill_id))
        .await
        .map_err(|e| ServiceError::Cluster(e.to_string()))?
        .map_err(|e| ServiceError::Cluster(e.to_string()))?;
    m.core.wake();
    let (after, _) = m.core.instance(&id)?;
    let restarts = restarts_by_job(&m);
    Ok((
        StatusCode::ACCEPTED,
        Json(InstanceView::new(
            &after,
            restarts.get(&after.job_id).copied().unwrap_or(0),
        )),
    ))
}

/// The end of an instance's log (its worker's standard output and error).
#[utoipa::path(get, path = "/api/v1/instances/{id}/logs", tag = "instances",
    params(("id" = String, Path, description = "The instance id"), LogsQuery),
    responses(
        (status = 200, description = "Log text", body = String, content_type = "text/plain"),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 404, description = "No such instance", body = ErrorBody),
        (status = 500, description = "A cluster driver failed", body = ErrorBody),
    ))]
async fn instance_logs(
    State(m): State<AppState>,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<LogsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let default_bytes = if q.tail_lines.is_some() {
        1 << 20
    } else {
        65536
    };
    let tail = q.tail_bytes.unwrap_or(default_bytes);
    if tail == 0 || tail > 16 * 1024 * 1024 {
        return Err(ApiError::invalid(
            "tail_bytes must be between 1 and 16777216",
        ));
    }
    if q.tail_lines.is_some_and(|n| n == 0 || n > 1_000_000) {
        return Err(ApiError::invalid(
            "tail_lines must be between 1 and 1000000",
        ));
    }
    let (_, cluster) = m.core.instance(&id)?;
    // (A `hosts` cluster waits for the agents' heartbeats to bring the tails.)
    let asked = id.clone();
    let text = tokio::task::spawn_blocking(move || cluster.logs(&asked, tail))
        .await
        .map_err(|e| {
            ApiError::internal(format!("internal error (a bug): reading logs failed: {e}"))
        })?
        .map_err(|e| match e {
            // Forgotten (its job was deleted) since it was looked up.
            crate::cluster::ClusterError::NotFound(_) => {
                ServiceError::NotFound(format!("instance '{id}' does not exist"))
            }
            e => ServiceError::Cluster(e.to_string()),
        })?;
    let text = match q.tail_lines {
        Some(n) => crate::api::views::last_lines(&text, n).to_string(),
        None => text,
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}
