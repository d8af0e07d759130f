//! `/healthz` and `/metrics`.

use super::error::{ApiError, ErrorBody};
use super::guard::{public, secured};
use super::views::Health;
use super::AppState;
use crate::auth::Role;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(public(routes!(healthz)))
        .routes(secured(Role::Viewer, routes!(metrics)))
}

/// Liveness: 200 while the master serves requests and its store answers.
#[utoipa::path(get, path = "/healthz", tag = "system",
    responses(
        (status = 200, description = "Healthy", body = Health),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn healthz(State(m): State<AppState>) -> Result<Json<Health>, ApiError> {
    m.core
        .store
        .list_tables()
        .map_err(crate::service::ServiceError::from)?;
    Ok(Json(Health {
        status: "ok".to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    }))
}

/// Prometheus metrics (text exposition format 0.0.4): per-job rows in/out, restarts,
/// instances up and state; watchdog cycles and actions.
#[utoipa::path(get, path = "/metrics", tag = "system",
    responses(
        (status = 200, description = "Metrics", body = String, content_type = "text/plain"),
    ))]
pub(crate) async fn metrics(State(m): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::metrics::render(&m),
    )
}
