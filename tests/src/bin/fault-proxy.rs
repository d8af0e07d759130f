//! `fault-proxy UPSTREAM`: an HTTP proxy in front of an S3 server (moto) that injects
//! object-store faults on request, for R10 (`tests/tests/r10.rs`). Prints
//! `endpoint=http://127.0.0.1:PORT` on standard output and serves until standard input
//! closes or it is killed. Every request but the control ones is forwarded to
//! `UPSTREAM` unchanged (the `Host` header too, so signatures still match), unless a
//! fault answers it first:
//!
//! * `PUT /__fault` with `{"delay_ms": D, "error_rate": R, "outage_ms": O}`: from now
//!   on each request waits a pseudo-random 0..D ms, a fraction R (0..1) is answered
//!   `503 SlowDown`, and for the next O ms every request is (an outage);
//! * `GET /__fault`: what happened: `{"requests", "delayed", "errors", "outage"}`.
//!
//! ```text
//! $ fault-proxy http://127.0.0.1:5000
//! endpoint=http://127.0.0.1:41233
//! ```

use axum::body::Body;
use axum::extract::State;
use axum::http::{Request, Response, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The faults in force and what they did.
#[derive(Default)]
struct Faults {
    delay_ms: u64,
    error_rate: f64,
    outage_until: Option<Instant>,
    rng: u64,
    requests: u64,
    delayed: u64,
    errors: u64,
    outage: u64,
}

impl Faults {
    /// xorshift64*: a deterministic sequence.
    fn next(&mut self) -> u64 {
        let mut x = self.rng.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

struct Proxy {
    upstream: String,
    client: Client<HttpConnector, Body>,
    faults: Mutex<Faults>,
}

fn main() -> ExitCode {
    let Some(upstream) = std::env::args().nth(1) else {
        eprintln!("usage: fault-proxy UPSTREAM (http://host:port)");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fault-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let proxy = Arc::new(Proxy {
        upstream: upstream.trim_end_matches('/').to_string(),
        client: Client::builder(TokioExecutor::new()).build_http(),
        faults: Mutex::new(Faults {
            rng: 0x5eed_0010,
            ..Faults::default()
        }),
    });
    let listener = match runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("fault-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let app = axum::Router::new()
        .route("/__fault", axum::routing::put(set_faults).get(stats))
        .fallback(forward)
        .with_state(proxy);
    runtime.spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            eprintln!("fault-proxy: {e}");
        }
    });
    println!("endpoint=http://127.0.0.1:{port}");
    let _ = std::io::stdout().flush();
    // Serve until standard input closes.
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    ExitCode::SUCCESS
}

async fn set_faults(
    State(p): State<Arc<Proxy>>,
    axum::Json(v): axum::Json<serde_json::Value>,
) -> StatusCode {
    let mut f = p.faults.lock().unwrap_or_else(|e| e.into_inner());
    f.delay_ms = v["delay_ms"].as_u64().unwrap_or(0);
    f.error_rate = v["error_rate"].as_f64().unwrap_or(0.0);
    f.outage_until = v["outage_ms"]
        .as_u64()
        .filter(|ms| *ms > 0)
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    StatusCode::NO_CONTENT
}

async fn stats(State(p): State<Arc<Proxy>>) -> axum::Json<serde_json::Value> {
    let f = p.faults.lock().unwrap_or_else(|e| e.into_inner());
    axum::Json(serde_json::json!({
        "requests": f.requests,
        "delayed": f.delayed,
        "errors": f.errors,
        "outage": f.outage,
    }))
}

/// S3's answer to a request it cannot serve now.
fn slow_down() -> Response<Body> {
    let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>\
                <Message>Please reduce your request rate.</Message></Error>";
    Response::builder()
        .status(StatusCode::SERVICE_UNAVAILABLE)
        .header("content-type", "application/xml")
        .body(Body::from(body))
        .unwrap_or_default()
}

async fn forward(State(p): State<Arc<Proxy>>, req: Request<Body>) -> Response<Body> {
    let (delay, fail) = {
        let mut f = p.faults.lock().unwrap_or_else(|e| e.into_inner());
        f.requests += 1;
        let now = Instant::now();
        if f.outage_until.is_some_and(|t| now < t) {
            f.outage += 1;
            (0, true)
        } else {
            let delay = if f.delay_ms > 0 {
                f.delayed += 1;
                f.next() % f.delay_ms
            } else {
                0
            };
            let fail =
                f.error_rate > 0.0 && (f.next() % 1_000_000) as f64 / 1_000_000.0 < f.error_rate;
            if fail {
                f.errors += 1;
            }
            (delay, fail)
        }
    };
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    if fail {
        return slow_down();
    }
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    parts.uri = match format!("{}{path}", p.upstream).parse() {
        Ok(uri) => uri,
        Err(_) => return slow_down(),
    };
    match p.client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => resp.map(Body::new),
        Err(e) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::from(format!("fault-proxy: {e}")))
            .unwrap_or_default(),
    }
}
