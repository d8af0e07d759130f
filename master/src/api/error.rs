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
    /// A stable, machine-readable code: `invalid_request`, `invalid_json`,
    /// `unsupported_media_type`, `payload_too_large`, `invalid_sql`, `not_found`,
    /// `conflict`, `method_not_allowed`, `unauthorized` (no valid bearer token),
    /// `forbidden` (the token's role is too low), `too_many_requests`, `quota_exceeded`,
    /// `internal`, `unavailable`.
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
