//! The REST API under `/api/v1`, plus `/healthz`, `/metrics`, `/api-docs/openapi.json`
//! and `/swagger-ui`. Handlers are thin (one file per resource) and registered through
//! utoipa-axum's `routes!`, so the routes served and the OpenAPI document cannot drift.
//! Every error is one JSON body `{code, message, details}` ([`error::ErrorBody`]).

pub mod clusters;
pub mod error;
pub mod guard;
pub mod instances;
pub mod jobs;
pub mod system;
pub mod tables;
pub mod views;
pub mod workflows;

use crate::service::Master;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Router;
use error::ApiError;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

/// The state every handler gets.
pub type AppState = Arc<Master>;

/// Largest request body accepted (bytes).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sluice",
        description = "Streaming SQL jobs: submit SQL with resources, and the master keeps \
                       them running as worker instances (restarts with backoff, rescales, \
                       adopts live instances after its own restart).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    tags(
        (name = "jobs", description = "SQL jobs: submit, change, stop, delete, validate"),
        (name = "instances", description = "Running realizations of jobs"),
        (name = "clusters", description = "Where instances run"),
        (name = "tables", description = "The persisted catalog"),
        (name = "workflows", description = "Scheduled workflows: cron-driven DAGs of SQL tasks, their runs, triggers, backfills"),
        (name = "system", description = "Health and metrics"),
    )
)]
struct ApiDoc;

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(jobs::router())
        .merge(instances::router())
        .merge(clusters::router())
        .merge(tables::router())
        .merge(workflows::router())
        .merge(system::router())
}

/// The OpenAPI document (what `openapi/openapi.json` holds).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, api) = api_router().split_for_parts();
    api
}

/// The OpenAPI document as checked in: pretty JSON with a trailing newline.
pub fn openapi_json() -> String {
    let mut s = openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such route: see /swagger-ui or /api-docs/openapi.json")
}

async fn method_not_allowed(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let resp = next.run(req).await;
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = resp.headers().get(axum::http::header::ALLOW).cloned();
        let mut r = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        )
        .into_response();
        if let Some(a) = allow {
            r.headers_mut().insert(axum::http::header::ALLOW, a);
        }
        return r;
    }
    resp
}

/// The whole HTTP application.
pub fn app(master: AppState) -> Router {
    let (router, api) = api_router().split_for_parts();
    router
        .merge(SwaggerUi::new("/swagger-ui").url("/api-docs/openapi.json", api))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(method_not_allowed))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(master)
}
