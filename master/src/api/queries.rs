//! `/api/v1/queries`: query previews (run a SELECT now, get its first rows; see
//! [`crate::preview`]), the running ones, and cancelling one.

use super::error::{ApiError, ApiJson, ApiPath, ErrorBody};
use super::guard::secured;
use super::AppState;
use crate::auth::Role;
use crate::preview::{self, CancelOnDrop, Preview, PreviewRequest, RunningPreview};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(secured(Role::Editor, routes!(run_query)))
        .routes(secured(Role::Viewer, routes!(list_queries)))
        .routes(secured(Role::Editor, routes!(cancel_query)))
}

/// Preview a query: run DDL (if any) and one SELECT as a short-lived worker process and
/// return its schema and first rows. It stops at `max_rows`, at `timeout_ms` (an
/// unbounded source's rows so far), when its input ends, or when cancelled
/// (`DELETE /api/v1/queries/{id}`, or the client closing the connection); its process
/// is gone before the response is sent.
#[utoipa::path(post, path = "/api/v1/queries", tag = "queries",
    request_body = PreviewRequest,
    responses(
        (status = 200, description = "The rows", body = Preview),
        (status = 400, description = "A limit out of range, a bad id, a run-time error or the memory limit exceeded", body = ErrorBody,
            example = json!({"code": "invalid_request", "message": "max_rows must be between 1 and 10000, not 0", "details": {}})),
        (status = 409, description = "A preview with this id is running", body = ErrorBody),
        (status = 429, description = "As many previews run as the master allows (`quota_exceeded`, --max-previews), or too many requests", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "The SQL does not compile, or is not one SELECT (INSERT, only DDL)", body = ErrorBody,
            example = json!({"code": "invalid_sql", "message": "syntax error at line 1, column 8: expected an expression", "details": {"line": 1, "column": 8, "kind": "syntax"}})),
        (status = 500, description = "The worker could not be started or failed", body = ErrorBody),
    ))]
async fn run_query(
    State(m): State<AppState>,
    ApiJson(req): ApiJson<PreviewRequest>,
) -> Result<Json<Preview>, ApiError> {
    let checked = preview::check(req)?;
    let cancel = Arc::new(AtomicBool::new(false));
    // Dropped with this future: a client that goes away cancels the preview.
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    let preview = tokio::task::spawn_blocking(move || m.previews.run(&m.core, checked, cancel))
        .await
        .map_err(|e| {
            ApiError::internal(format!(
                "internal error (a bug): the preview task failed: {e}"
            ))
        })??;
    Ok(Json(preview))
}

/// The previews running now.
#[utoipa::path(get, path = "/api/v1/queries", tag = "queries",
    responses(
        (status = 200, description = "Running previews", body = Vec<RunningPreview>),
    ))]
async fn list_queries(State(m): State<AppState>) -> Json<Vec<RunningPreview>> {
    Json(m.previews.list())
}

/// Cancel a running preview: it stops within moments and its `POST` returns the rows
/// so far with `cancelled` and `truncated` true.
#[utoipa::path(delete, path = "/api/v1/queries/{id}", tag = "queries",
    params(("id" = String, Path, description = "The preview's id")),
    responses(
        (status = 204, description = "Cancelled"),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No such preview running", body = ErrorBody),
    ))]
async fn cancel_query(
    State(m): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    m.previews.cancel(&id)?;
    Ok(StatusCode::NO_CONTENT)
}
