//! Reads every request body before its handler runs, within a deadline and a size
//! limit: a client that sends its headers and then trickles or stalls the body gets
//! `408 request_timeout` once `--body-timeout-ms` has passed since the head arrived,
//! and a body over [`super::MAX_BODY_BYTES`] gets `413 payload_too_large`. Both close
//! the connection. (The header timeout in `server::serve_one` covers the head; this
//! covers what follows it.)
//!
//! It runs inside the guard (see [`super::app`]): an unauthenticated request is
//! answered 401 without its body being read, so only callers with a token can make
//! the master buffer a body.

use super::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use std::time::Duration;

/// A declared body up to this many times the limit is read and dropped before the 413
/// (a lingering close); a larger one is refused without reading it.
const DRAIN_FACTOR: u64 = 4;

/// How long a request body may take to arrive, and how large it may be.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// From the end of the head to the end of the body.
    pub timeout: Duration,
    /// Bytes.
    pub max_bytes: usize,
}

fn closing(err: ApiError) -> Response {
    let mut r = err.into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn too_large(max: usize) -> Response {
    closing(ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than {max} bytes"),
    ))
}

/// The middleware: buffers the body (bounded in time and size), then runs the handler
/// on the buffered request.
pub async fn read_body(State(limits): State<BodyLimits>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > limits.max_bytes as u64) {
        // A body somewhat over the limit is read and dropped (within the body timeout)
        // before the answer, so a client still sending it reads the 413 instead of a
        // reset connection; a far larger one is answered at once.
        if n <= DRAIN_FACTOR * limits.max_bytes as u64 {
            let drain = async {
                let mut body =
                    Limited::new(req.into_body(), DRAIN_FACTOR as usize * limits.max_bytes);
                while let Some(Ok(_)) = body.frame().await {}
            };
            let _ = tokio::time::timeout(limits.timeout, drain).await;
        }
        return too_large(limits.max_bytes);
    }
    let (parts, body) = req.into_parts();
    let read = Limited::new(body, limits.max_bytes).collect();
    let bytes = match tokio::time::timeout(limits.timeout, read).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return too_large(limits.max_bytes)
        }
        Ok(Err(e)) => {
            return closing(ApiError::invalid(format!(
                "cannot read the request body: {e}"
            )))
        }
        Err(_) => {
            return closing(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!(
                    "the request body did not arrive within {} ms",
                    limits.timeout.as_millis()
                ),
            ))
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
