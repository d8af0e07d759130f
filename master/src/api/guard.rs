//! Authentication, authorization and audit of every API route, in one middleware.
//!
//! Each route declares its access where it is registered: `secured(Role::Editor,
//! routes!(create_job))` or `public(routes!(healthz))`. The declaration is written into
//! the route's OpenAPI operation (`security: [{"bearer": ["editor"]}]`, plus its 401 and
//! 403 responses), and [`Guard`] enforces exactly what the document says: it looks the
//! matched route and method up in a table built from the document. A route registered
//! without a declaration has no `security` in the document and is refused (403) for
//! everybody — a forgotten declaration fails closed, and `api::tests` fails on it.
//!
//! Every mutation (any method but GET/HEAD) and every denied request is written to the
//! audit log, flushed, before the response leaves — except an anonymous one's, which is
//! not flushed on its own and, beyond the anonymous budget, only counted (see
//! `auth::audit`).

use super::error::ApiError;
use crate::auth::audit::{AuditEntry, Outcome};
use crate::auth::{AuthError, Principal, Role, Security};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa::openapi::{Content, OpenApi, Ref, ResponseBuilder};
use utoipa_axum::router::UtoipaMethodRouter;

/// The name of the bearer security scheme in the OpenAPI document.
pub const SCHEME: &str = "bearer";

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
    ]
    .into_iter()
    .flatten()
}

fn error_response(description: String) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("ErrorBody"))),
        )
        .build()
}

/// Declares the routes of `r` as needing a bearer token of at least `role`.
pub fn secured<S>(role: Role, r: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S> {
    let (schemas, mut paths, method_router) = r;
    for item in paths.paths.values_mut() {
        for op in operations_mut(item) {
            op.security = Some(vec![SecurityRequirement::new(SCHEME, [role.as_str()])]);
            op.responses.responses.insert(
                "401".into(),
                error_response(
                    "No valid bearer token (missing, malformed, unknown, revoked or expired)"
                        .into(),
                )
                .into(),
            );
            op.responses.responses.insert(
                "403".into(),
                error_response(match role {
                    Role::Agent => "The token is neither an agent's nor an admin's".to_string(),
                    _ => format!("The token's role is below `{role}`"),
                })
                .into(),
            );
            op.responses.responses.insert(
                "429".into(),
                error_response("Too many requests from this token (see `Retry-After`)".into())
                    .into(),
            );
            let note = match role {
                Role::Agent => {
                    "Needs the role `agent` (a `sluice agent`'s token) or `admin`.".to_string()
                }
                _ => format!("Needs the role `{role}` or higher."),
            };
            op.description = Some(match op.description.take() {
                Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
                _ => note,
            });
        }
    }
    (schemas, paths, method_router)
}

/// Declares the routes of `r` as open to anybody (no token).
pub fn public<S>(r: UtoipaMethodRouter<S>) -> UtoipaMethodRouter<S> {
    let (schemas, mut paths, method_router) = r;
    for item in paths.paths.values_mut() {
        for op in operations_mut(item) {
            // `[{}]`: the empty requirement, i.e. anonymous access.
            op.security = Some(vec![SecurityRequirement::default()]);
        }
    }
    (schemas, paths, method_router)
}

/// What a route needs, as its OpenAPI operation declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anybody.
    Public,
    /// A token of at least this role.
    Role(Role),
}

/// Reads each operation's declared access from the document; `None` for an operation
/// without a declaration (refused at run time).
pub fn access_table(api: &OpenApi) -> HashMap<(String, String), Option<Access>> {
    let mut table = HashMap::new();
    for (path, item) in &api.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
            ("PATCH", &item.patch),
        ];
        for (method, op) in ops {
            let Some(op) = op else { continue };
            table.insert((method.to_string(), path.clone()), access_of(op));
        }
    }
    table
}

fn access_of(op: &Operation) -> Option<Access> {
    let reqs = op.security.as_ref()?;
    let v = serde_json::to_value(reqs).ok()?;
    let first = v.as_array()?.first()?.as_object()?;
    if first.is_empty() {
        return Some(Access::Public);
    }
    let roles = first.get(SCHEME)?.as_array()?;
    let role = roles.first()?.as_str().and_then(Role::parse)?;
    Some(Access::Role(role))
}

/// The guard's state: the security stores and the access table.
pub struct Guard {
    /// Tokens and the audit log.
    pub security: Arc<Security>,
    /// (method, route template) → declared access.
    pub table: HashMap<(String, String), Option<Access>>,
}

fn request_id() -> String {
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The concrete values of a template's `{params}`, `/`-joined.
fn path_target(template: &str, path: &str) -> Option<String> {
    let values: Vec<&str> = template
        .split('/')
        .zip(path.split('/'))
        .filter(|(t, _)| t.starts_with('{'))
        .map(|(_, v)| v)
        .collect();
    (!values.is_empty()).then(|| values.join("/"))
}

fn bearer(req: &Request) -> Result<String, AuthError> {
    let Some(h) = req.headers().get(header::AUTHORIZATION) else {
        return Err(AuthError::Missing);
    };
    let h = h.to_str().map_err(|_| AuthError::Malformed)?;
    let (scheme, value) = h.split_once(' ').ok_or(AuthError::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") || value.trim().is_empty() {
        return Err(AuthError::Malformed);
    }
    Ok(value.trim().to_string())
}

fn unauthorized(e: &AuthError) -> Response {
    let mut r =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", e.to_string()).into_response();
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}

fn too_many(who: &str, wait: std::time::Duration) -> Response {
    let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        format!("too many requests from '{who}': retry in {secs} s"),
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

/// The middleware: authenticate, authorize, run, audit.
pub async fn guard(State(g): State<Arc<Guard>>, mut req: Request, next: Next) -> Response {
    let rid = request_id();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let lookup = if method == Method::HEAD {
        "GET".to_string()
    } else {
        method.as_str().to_string()
    };
    let declared = g.table.get(&(lookup, route.clone())).copied();
    let mut allowed: Vec<&str> = g
        .table
        .keys()
        .filter(|(_, p)| *p == route)
        .map(|(m, _)| m.as_str())
        .collect();
    let mut not_allowed: Option<Response> = None;
    let access = match declared {
        Some(a) => a,
        None if !allowed.is_empty() => {
            // A known route without this method: 405, without running anything.
            allowed.sort_unstable();
            let mut r = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not accept that method",
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&allowed.join(",")) {
                r.headers_mut().insert(header::ALLOW, v);
            }
            not_allowed = Some(r);
            Some(Access::Public)
        }
        None => None,
    };
    let access = match access {
        Some(Access::Role(_)) if route == "/metrics" && g.security.metrics_public => {
            Some(Access::Public)
        }
        a => a,
    };
    let mutation = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let mut target = path_target(&route, req.uri().path());

    let mut principal: Option<Principal> = None;
    let denial: Option<Response> = match access {
        Some(Access::Public) => None,
        None => {
            tracing::error!(%method, %route, "route without a declared role: refused (a bug)");
            Some(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "this route declares no role, so nobody may call it",
                )
                .into_response(),
            )
        }
        Some(Access::Role(needed)) => {
            match bearer(&req).and_then(|v| g.security.authenticate(&v)) {
                Err(e) => Some(unauthorized(&e)),
                Ok(p) => {
                    let deny = match g.security.rate_limit.as_ref().map(|l| l.check(&p.name)) {
                        Some(Err(wait)) => Some(too_many(&p.name, wait)),
                        _ => (!p.role.allows(needed)).then(|| {
                            let why = match needed {
                                Role::Agent => format!(
                                    "this route is for agents (role agent, or admin); the token has {}",
                                    p.role
                                ),
                                _ => format!(
                                    "this route needs the role {needed}; the token has {}",
                                    p.role
                                ),
                            };
                            ApiError::new(StatusCode::FORBIDDEN, "forbidden", why)
                            .into_response()
                        }),
                    };
                    principal = Some(p);
                    deny
                }
            }
        }
    };

    let mut resp = match denial.or(not_allowed) {
        Some(r) => r,
        None => {
            if let Some(p) = &principal {
                req.extensions_mut().insert(p.clone());
            }
            let who = principal.as_ref().map(|p| p.name.clone());
            crate::auth::ACTOR.scope(who, next.run(req)).await
        }
    };
    let status = resp.status();
    if mutation || Outcome::of(status.as_u16()) == Outcome::Denied {
        if target.is_none() && status.is_success() && mutation {
            let (parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, 16 << 20)
                .await
                .unwrap_or_default();
            target = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string));
            resp = Response::from_parts(parts, Body::from(bytes));
        }
        let entry = AuditEntry {
            seq: 0,
            at: String::new(),
            at_ms: 0,
            who: principal.as_ref().map(|p| p.name.clone()),
            role: principal.as_ref().map(|p| p.role.to_string()),
            method: method.to_string(),
            route: route.clone(),
            target,
            status: status.as_u16(),
            outcome: Outcome::of(status.as_u16()),
            request_id: rid.clone(),
            suppressed: None,
        };
        if let Err(e) = g.security.audit.record(entry) {
            // No durable record, no success: the caller learns the change may have
            // happened but was not audited.
            tracing::error!(error = %e, %route, "cannot write the audit log");
            resp = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the audit log cannot be written",
            )
            .into_response();
        }
    }
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_come_from_the_path_parameters() {
        assert_eq!(
            path_target("/api/v1/jobs/{name}", "/api/v1/jobs/a").as_deref(),
            Some("a")
        );
        assert_eq!(
            path_target(
                "/api/v1/workflows/{name}/runs/{run}",
                "/api/v1/workflows/w/runs/3"
            )
            .as_deref(),
            Some("w/3")
        );
        assert_eq!(path_target("/api/v1/jobs", "/api/v1/jobs"), None);
    }
}
