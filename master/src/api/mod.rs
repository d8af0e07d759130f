//! The REST API under `/api/v1`, plus `/healthz`, `/metrics`, `/api-docs/openapi.json`
//! and `/swagger-ui`. Handlers are thin (one file per resource) and registered through
//! utoipa-axum's `routes!`, so the routes served and the OpenAPI document cannot drift.
//! Every error is one JSON body `{code, message, details}` ([`error::ErrorBody`]).
//! Every route declares who may call it where it is registered ([`guard::secured`],
//! [`guard::public`]); [`guard::guard`] enforces it and writes the audit log.
//! `/healthz`, `/swagger-ui`, `/api-docs/openapi.json` and the web console's static
//! files (`/`, `/console`, [`console`]) are open; `/metrics` needs a
//! viewer token unless `--metrics-public` (or it is served on `--metrics-listen`).

pub mod agents;
pub mod body;
pub mod clusters;
pub mod console;
pub mod error;
pub mod guard;
pub mod history;
pub mod instances;
pub mod jobs;
pub mod origin;
pub mod queries;
pub mod security;
pub mod system;
pub mod tables;
pub mod views;
pub mod workflows;

use crate::auth::Security;
use crate::master::Master;
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
        (name = "agents", description = "The hosts of the `hosts` clusters"),
        (name = "tables", description = "The persisted catalog"),
        (name = "queries", description = "Query previews: run a SELECT now and get its first rows"),
        (name = "workflows", description = "Scheduled workflows: cron-driven DAGs of SQL tasks, their runs, triggers, backfills"),
        (name = "system", description = "Health and metrics"),
        (name = "security", description = "API tokens and the audit log (admin)"),
    ),
    modifiers(&BearerScheme)
)]
struct ApiDoc;

/// Declares the `bearer` security scheme (API tokens), so Swagger UI can authorize.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi
            .components
            .get_or_insert_with(utoipa::openapi::Components::new);
        components.add_security_scheme(
            guard::SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token (`sluice token create`; `sluice serve` writes the first \
                         admin token to `<data dir>/admin.token`). Each operation's required \
                         role is the scope listed in its security requirement.",
                    ))
                    .build(),
            ),
        );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(jobs::router())
        .merge(history::router())
        .merge(queries::router())
        .merge(instances::router())
        .merge(clusters::router())
        .merge(agents::router())
        .merge(tables::router())
        .merge(workflows::router())
        .merge(system::router())
        .merge(security::router())
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
pub fn app(master: AppState, security: Arc<Security>) -> Router {
    let (router, api) = api_router().split_for_parts();
    let g = Arc::new(guard::Guard {
        security: security.clone(),
        table: guard::access_table(&api),
    });
    let limits = body::BodyLimits {
        timeout: security.body_timeout,
        max_bytes: MAX_BODY_BYTES,
    };
    router
        .route_layer(axum::middleware::from_fn_with_state(
            limits,
            body::read_body,
        ))
        .route_layer(axum::middleware::from_fn_with_state(g, guard::guard))
        .merge(SwaggerUi::new("/swagger-ui").url("/api-docs/openapi.json", api))
        .merge(console::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(method_not_allowed))
        .layer(axum::Extension(security))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(master)
}

/// `/metrics` alone, unauthenticated: what `--metrics-listen` serves.
pub fn metrics_app(master: AppState) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(system::metrics))
        .fallback(not_found)
        .with_state(master)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation declares its access; secured ones list 401 and 403. A route
    /// registered without `secured`/`public` fails here (and is refused at run time).
    #[test]
    fn every_route_declares_its_access() {
        let api = openapi();
        let table = guard::access_table(&api);
        assert!(table.len() > 30, "{}", table.len());
        for ((method, path), access) in &table {
            let access = access.unwrap_or_else(|| panic!("{method} {path} declares no role"));
            if access == guard::Access::Public {
                assert_eq!(path, "/healthz", "only /healthz is public");
            }
        }
        let doc = serde_json::to_value(&api).unwrap();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if path == "/healthz" {
                    continue;
                }
                for code in ["401", "403"] {
                    assert!(
                        op["responses"].get(code).is_some(),
                        "{method} {path} lacks {code}"
                    );
                }
            }
        }
        assert_eq!(
            table[&("POST".to_string(), "/api/v1/tokens".to_string())],
            Some(guard::Access::Role(crate::auth::Role::Admin))
        );
    }

    #[test]
    fn a_route_without_a_declaration_has_no_access() {
        use utoipa_axum::routes;
        /// A test route.
        #[utoipa::path(get, path = "/undeclared", responses((status = 200, description = "x")))]
        async fn undeclared() {}
        let (_, api) = OpenApiRouter::<()>::new()
            .routes(routes!(undeclared))
            .split_for_parts();
        let table = guard::access_table(&api);
        assert_eq!(table[&("GET".to_string(), "/undeclared".to_string())], None);
    }
}
