//! The request guard `sluice serve` puts in front of every route (see
//! `server::serve`): the `Host` a request names must be one of the master's own names
//! (DNS rebinding), and a state-changing request a browser sends from another origin is
//! refused (a cross-site form POST to `/kill`). Clients that send no `Origin` (the CLI,
//! curl) are not affected.
//!
//! - `Host` (or the HTTP/2 authority) must be in the allowed hosts — by default the
//!   loopback names, the listen address and the machine's host name; `*` allows any —
//!   else `421 misdirected_request`.
//! - A request other than GET/HEAD/OPTIONS with an `Origin` whose `host[:port]` is not
//!   the request's `Host` nor an allowed origin, or with `Sec-Fetch-Site: cross-site`,
//!   gets `403 cross_origin`.

use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

/// Which hosts and origins the master answers.
#[derive(Clone, Debug)]
pub struct Guard {
    /// Host names (lower case, no port); none: any.
    hosts: Option<Vec<String>>,
    /// Extra origins allowed to change state, as `scheme://host[:port]`.
    origins: Vec<String>,
}

impl Guard {
    /// `hosts` as given by `--allowed-hosts` (empty: the defaults for `listen`; `*`:
    /// any) and `origins` by `--allowed-origins`.
    pub fn new(hosts: &[String], origins: &[String], listen: SocketAddr) -> Guard {
        let hosts = if hosts.iter().any(|h| h == "*") {
            None
        } else if hosts.is_empty() {
            let mut d: Vec<String> = ["localhost", "127.0.0.1", "::1"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            if !listen.ip().is_unspecified() {
                d.push(listen.ip().to_string());
            }
            if let Ok(name) = nix::unistd::gethostname() {
                if let Some(name) = name.to_str() {
                    d.push(name.to_ascii_lowercase());
                }
            }
            Some(d)
        } else {
            Some(
                hosts
                    .iter()
                    .map(|h| strip_port(h).to_ascii_lowercase())
                    .collect(),
            )
        };
        let origins = origins
            .iter()
            .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
            .collect();
        Guard { hosts, origins }
    }

    fn host_allowed(&self, host: &str) -> bool {
        match &self.hosts {
            None => true,
            Some(hosts) => {
                let name = strip_port(host).to_ascii_lowercase();
                hosts.contains(&name)
            }
        }
    }

    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        if self.origins.contains(&origin) {
            return true;
        }
        let authority = origin.split_once("://").map(|(_, a)| a);
        matches!((authority, host), (Some(a), Some(h)) if a == h.to_ascii_lowercase())
    }
}

/// `host` without its `:port` (`[::1]:8080` → `::1`).
fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

/// The middleware (`axum::middleware::from_fn_with_state`).
pub async fn check(State(guard): State<Arc<Guard>>, req: Request, next: Next) -> Response {
    if let Some(refusal) = refusal(&guard, &req) {
        return refusal.into_response();
    }
    next.run(req).await
}

/// Why `req` is refused, if it is.
fn refusal(guard: &Guard, req: &Request) -> Option<ApiError> {
    let header_text = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let host = header_text(header::HOST).or_else(|| req.uri().authority().map(|a| a.to_string()));
    if host.as_deref().is_some_and(|h| !guard.host_allowed(h)) {
        return Some(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected_request",
            "this master does not answer to that Host (its operator lists names with --allowed-hosts)",
        ));
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let cross_site = header_text(header::HeaderName::from_static("sec-fetch-site"))
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"));
    let origin_refused =
        header_text(header::ORIGIN).is_some_and(|o| !guard.origin_allowed(&o, host.as_deref()));
    (cross_site || origin_refused).then(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "a state-changing request from another origin is refused (its operator lists origins with --allowed-origins)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_origins() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let g = Guard::new(&[], &["https://ui.example".into()], listen);
        assert!(g.host_allowed("127.0.0.1:8080") && g.host_allowed("LOCALHOST:1"));
        assert!(g.host_allowed("[::1]:8080"));
        assert!(!g.host_allowed("evil.example:8080"));
        assert!(g.origin_allowed("http://127.0.0.1:8080", Some("127.0.0.1:8080")));
        assert!(!g.origin_allowed("http://127.0.0.1:9999", Some("127.0.0.1:8080")));
        assert!(!g.origin_allowed("null", Some("127.0.0.1:8080")));
        assert!(g.origin_allowed("https://ui.example/", Some("127.0.0.1:8080")));
        let any = Guard::new(&["*".into()], &[], listen);
        assert!(any.host_allowed("anything"));
        let listed = Guard::new(&["sluice.internal:8080".into()], &[], listen);
        assert!(listed.host_allowed("sluice.internal") && !listed.host_allowed("localhost"));
    }
}
