//! `/api/v1/tokens` (mint, list, revoke API tokens) and `/api/v1/audit` (read the audit
//! log). Admin only.

use super::error::{ApiError, ApiJson, ApiPath, ApiQuery, ErrorBody};
use super::guard::secured;
use super::AppState;
use crate::auth::audit::{AuditEntry, AuditQuery};
use crate::auth::tokens::TokenRecord;
use crate::auth::{now_ms, parse_duration_ms, rfc3339, Principal, Role, Security, SecurityError};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this resource.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(secured(Role::Admin, routes!(list_tokens)))
        .routes(secured(Role::Admin, routes!(create_token)))
        .routes(secured(Role::Admin, routes!(revoke_token)))
        .routes(secured(Role::Admin, routes!(list_audit)))
}

impl From<SecurityError> for ApiError {
    fn from(e: SecurityError) -> Self {
        match e {
            SecurityError::Invalid(m) => ApiError::invalid(m),
            SecurityError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            SecurityError::NotFound(m) => ApiError::not_found(m),
            SecurityError::Store(m) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
            }
        }
    }
}

/// `POST /api/v1/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// Unique among active tokens; the audit log names the caller by it.
    #[schema(example = "ci-deployer")]
    pub name: String,
    /// `viewer`, `editor` or `admin`.
    pub role: Role,
    /// Lifetime, e.g. `90d`, `12h`, `30m` (none: until revoked).
    #[schema(example = "90d")]
    pub expires_in: Option<String>,
}

/// A token as listed (never its value).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The public part of its value (`sluice_<id>_…`).
    pub id: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// When it expires (RFC 3339); none: never.
    pub expires_at: Option<String>,
    /// When it was revoked (RFC 3339).
    pub revoked_at: Option<String>,
    /// When it last authenticated a request (RFC 3339, to the second).
    pub last_used_at: Option<String>,
    /// Neither revoked nor expired.
    pub active: bool,
}

impl From<&TokenRecord> for TokenView {
    fn from(t: &TokenRecord) -> Self {
        TokenView {
            name: t.name.clone(),
            role: t.role,
            id: t.id.clone(),
            created_at: rfc3339(t.created_at),
            created_by: t.created_by.clone(),
            expires_at: t.expires_at.map(rfc3339),
            revoked_at: t.revoked_at.map(rfc3339),
            last_used_at: t.last_used_at.map(rfc3339),
            active: t.is_active(now_ms()),
        }
    }
}

/// A newly created token: the only response that ever carries its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The bearer token (`Authorization: Bearer <token>`). Shown once: the master keeps
    /// only a salted hash of it.
    pub token: String,
    /// When it expires (RFC 3339); none: never.
    pub expires_at: Option<String>,
}

/// API tokens, active and not (never their values).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "security",
    responses(
        (status = 200, description = "Tokens by name", body = Vec<TokenView>),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn list_tokens(
    Extension(s): Extension<Arc<Security>>,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(s.tokens.list()?.iter().map(TokenView::from).collect()))
}

/// Mints an API token. Its value is in this response and nowhere else.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "security",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, description = "Created", body = CreatedToken),
        (status = 400, description = "Invalid name or expiry", body = ErrorBody),
        (status = 409, description = "An active token has that name", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "The body does not match the schema", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn create_token(
    Extension(s): Extension<Arc<Security>>,
    Extension(caller): Extension<Principal>,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let ttl = req
        .expires_in
        .as_deref()
        .map(parse_duration_ms)
        .transpose()?;
    let m = s.tokens.create(&req.name, req.role, ttl, &caller.name)?;
    tracing::info!(name = %m.record.name, role = %m.record.role, by = %caller.name, "API token created");
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            name: m.record.name.clone(),
            role: m.record.role,
            token: m.value.clone(),
            expires_at: m.record.expires_at.map(rfc3339),
        }),
    ))
}

/// Revokes the active token with this name: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{name}", tag = "security",
    params(("name" = String, Path, description = "The token's name")),
    responses(
        (status = 200, description = "Revoked", body = TokenView),
        (status = 400, description = "Invalid path", body = ErrorBody),
        (status = 404, description = "No unrevoked token has that name", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn revoke_token(
    Extension(s): Extension<Arc<Security>>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<TokenView>, ApiError> {
    let t = s.tokens.revoke(&name)?;
    tracing::info!(name = %t.name, "API token revoked");
    Ok(Json(TokenView::from(&t)))
}

/// The audit log, newest first: every mutation and every denied request, with who,
/// when, route, target, status and request id.
#[utoipa::path(get, path = "/api/v1/audit", tag = "security",
    params(AuditQuery),
    responses(
        (status = 200, description = "Entries, newest first", body = Vec<AuditEntry>),
        (status = 400, description = "Invalid filter", body = ErrorBody),
        (status = 503, description = "The store failed", body = ErrorBody),
    ))]
async fn list_audit(
    Extension(s): Extension<Arc<Security>>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, ApiError> {
    Ok(Json(s.audit.query(&q)?))
}
