//! The one JSON error body every failing request gets, and the extractors that turn
//! axum's own rejections (bad JSON, wrong content type, too large) into it.

use crate::service::ServiceError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code: `invalid_request` (400), `invalid_json` (400,
    /// 422), `unsupported_media_type` (415), `payload_too_large` (413, the body is over
    /// 1 MiB), `request_timeout` (408, the body did not arrive in time), `invalid_sql`
    /// (422), `not_found` (404), `conflict` (409), `method_not_allowed` (405),
    /// `misdirected_request` (421, a `Host` the master does not answer to),
    /// `cross_origin` (403, a state-changing request from another site's page),
    /// `unauthorized` (401, no valid bearer token), `forbidden` (403, the token's role
    /// is too low), `too_many_requests` (429), `quota_exceeded` (429: an owner's jobs,
    /// running query previews), `invalid_agent` (400, an agent's registration),
    /// `no_hosts_cluster` (409, the agents API of a master without a `hosts` cluster),
    /// `internal` (500), `unavailable` (503).
    #[schema(example = "invalid_sql")]
    pub code: String,
    /// One human-readable line.
    #[schema(example = "syntax error at line 3, column 8: expected an expression")]
    pub message: String,
    /// Structured detail; for `invalid_sql`: `{"line": 3, "column": 8, "kind": "syntax"}`
    /// (a workflow task's also names the `task`).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// An error response: status + body.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

impl ApiError {
    /// An error with no details.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                code: code.to_string(),
                message: message.into(),
                details: serde_json::Value::Object(Default::default()),
            },
        }
    }

    /// 400 invalid_request.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404 not_found.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 500 internal.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid { message } => ApiError::invalid(message),
            ServiceError::Sql(c) => {
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_sql",
                    c.to_string(),
                );
                let kind = format!("{:?}", c.kind).to_lowercase();
                err.body.details = match c.position {
                    Some(p) => {
                        serde_json::json!({"line": p.line, "column": p.column, "kind": kind})
                    }
                    None => serde_json::json!({"kind": kind}),
                };
                err
            }
            ServiceError::TaskSql {
                task,
                kind,
                message,
                line,
                column,
            } => {
                let mut err = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_sql",
                    format!("task '{task}': {message}"),
                );
                err.body.details =
                    serde_json::json!({"task": task, "line": line, "column": column, "kind": kind});
                err
            }
            ServiceError::NotFound(m) => ApiError::not_found(m),
            ServiceError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ServiceError::Store(e) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("the master's store failed: {e}"),
            ),
            ServiceError::Cluster(m) => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("cluster driver failure: {m}"),
            ),
            ServiceError::Busy(m) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "quota_exceeded", m)
            }
            ServiceError::CheckpointStore(m) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("the checkpoint store failed: {m}"),
            ),
        }
    }
}

/// `Json<T>` whose rejections are [`ApiError`]s.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected a request body with Content-Type: application/json",
        ),
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_json",
            format!(
                "the request body does not match the schema: {}",
                e.body_text()
            ),
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("the request body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::BytesRejection(e) => {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!(
                        "the request body is larger than {} bytes",
                        super::MAX_BODY_BYTES
                    ),
                )
            } else {
                ApiError::invalid(format!("cannot read the request body: {}", e.body_text()))
            }
        }
        other => ApiError::invalid(other.body_text()),
    }
}

/// `Query<T>` whose rejections are [`ApiError`]s.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::invalid(
                format!("invalid query string: {}", e.body_text()),
            )),
            Err(e) => Err(ApiError::invalid(e.body_text())),
        }
    }
}

/// `Path<T>` whose rejections are [`ApiError`]s.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(ApiError::invalid(format!(
                "invalid path: {}",
                e.body_text()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every code the master emits (the literal code of each `ApiError` built in its
    /// sources) is listed in the OpenAPI description of `ErrorBody.code`, so a client
    /// can rely on the documented list.
    #[test]
    fn every_emitted_error_code_is_documented() {
        fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    sources(&p, out);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        sources(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let needle = ["ApiError", "::new("].concat();
        let mut codes = std::collections::BTreeSet::new();
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            for (at, _) in text.match_indices(&needle) {
                let rest = &text[at + needle.len()..];
                let arg = rest
                    .split_once(',')
                    .map(|(_, a)| a.trim_start())
                    .unwrap_or_default();
                let code = arg
                    .strip_prefix('"')
                    .and_then(|a| a.split_once('"'))
                    .map(|(c, _)| c)
                    .unwrap_or_else(|| {
                        panic!(
                            "{}: the code of an ApiError must be a string literal: {}",
                            f.display(),
                            &rest[..rest.len().min(120)]
                        )
                    });
                codes.insert(code.to_string());
            }
        }
        assert!(codes.len() >= 15, "{codes:?}");
        let doc = serde_json::to_value(super::super::openapi()).unwrap();
        let listed = doc["components"]["schemas"]["ErrorBody"]["properties"]["code"]["description"]
            .as_str()
            .unwrap()
            .to_string();
        let missing: Vec<&String> = codes
            .iter()
            .filter(|c| !listed.contains(&format!("`{c}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "emitted but not listed in ErrorBody.code: {missing:?}"
        );
    }
}
