//! HTTP hardening of the real `sluice serve`: a cross-origin form POST cannot kill an
//! instance, a foreign `Host` is not answered (DNS rebinding), same-origin requests and
//! the CLI still work; half-open connections are closed after the header timeout and a
//! connection cap leaves the master serving.

use serde_json::json;
use sluice_tests::MasterProcess;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn addr(m: &MasterProcess) -> String {
    m.base.trim_start_matches("http://").to_string()
}

/// Sends `head` (request line and headers, without the blank line) and `body` on a
/// fresh connection; returns the status and the response text.
fn raw(m: &MasterProcess, head: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr(m)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let text = format!(
        "{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(text.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[test]
fn cross_origin_kills_and_foreign_hosts_are_refused_while_same_origin_and_the_cli_work() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    let sql = "CREATE TABLE g (a BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '10');\n\
               CREATE TABLE b (a BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO b SELECT a FROM g;\n";
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "victim", "sql": sql,
            "resources": {"parallelism": 1, "memory_mb": 512, "gpus": 0}})),
    );
    assert_eq!(s, 201, "{v}");
    let id = m.wait_for(30, "a running instance", || {
        let list = m.get("/api/v1/jobs/victim/instances");
        list.as_array()?
            .iter()
            .find(|i| i["state"] == "running")
            .map(|i| i["id"].as_str().unwrap().to_string())
    });
    // Instance ids end in 128 random bits: nobody can guess one to kill.
    let random = id.rsplit('-').next().unwrap();
    assert!(
        random.len() == 32 && random.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    let host = addr(&m);
    // With the admin token: the Origin check refuses even an authorized request from a
    // foreign page (and comes before authentication).
    let token = m.admin_token();
    let kill = format!(
        "POST /api/v1/instances/{id}/kill HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}"
    );
    let form = "Content-Type: application/x-www-form-urlencoded";

    // A form on another site posting to the master.
    let (status, text) = raw(
        &m,
        &format!("{kill}\r\nOrigin: http://evil.example\r\n{form}"),
        "x=1",
    );
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("\"cross_origin\""), "{text}");
    let (status, text) = raw(
        &m,
        &format!("{kill}\r\nSec-Fetch-Site: cross-site\r\n{form}"),
        "x=1",
    );
    assert_eq!(status, 403, "{text}");
    let state = |m: &MasterProcess| m.get(&format!("/api/v1/instances/{id}"))["state"].clone();
    assert_eq!(state(&m), "running");

    // A page served from a name that resolves to the master (DNS rebinding).
    let (status, text) = raw(
        &m,
        "GET /api/v1/jobs HTTP/1.1\r\nHost: evil.example:8080",
        "",
    );
    assert_eq!(status, 421, "{text}");
    assert!(text.contains("\"misdirected_request\""), "{text}");

    // The CLI (no Origin) and a same-origin page still work.
    let o = m.cli(&["job", "list"]);
    assert!(o.status.success(), "{}", sluice_tests::stderr(&o));
    assert!(sluice_tests::stdout(&o).contains("victim"));
    let (status, text) = raw(&m, &format!("{kill}\r\nOrigin: http://{host}"), "");
    assert!((200..300).contains(&status), "{text}");
    m.wait_for(30, "the instance to be killed", || {
        (state(&m) != "running").then_some(())
    });
}

/// Whether the master closed `s` (EOF or reset) within `secs`; false when it still
/// holds the connection open.
fn closed_within(s: &mut TcpStream, secs: u64) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // A 408 or similar before the close is fine.
            Ok(_) => continue,
            Err(e) => {
                return !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                )
            }
        }
    }
}

#[test]
fn half_open_connections_are_closed_after_the_header_timeout_and_the_cap_leaves_room() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(
        &dir.path().join("data"),
        &["--header-timeout-ms", "1500", "--max-connections", "16"],
    );
    // Fifteen slow clients: some send nothing, some half a request head.
    let mut held: Vec<TcpStream> = (0..15)
        .map(|i| {
            let mut s = TcpStream::connect(addr(&m)).unwrap();
            if i % 2 == 0 {
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    .unwrap();
            }
            s
        })
        .collect();
    // At the cap's boundary the master still answers a normal request (`get` asserts
    // its 200).
    m.get("/healthz");
    let started = Instant::now();
    for (i, s) in held.iter_mut().enumerate() {
        assert!(closed_within(s, 10), "connection {i} is still held open");
    }
    assert!(started.elapsed() < Duration::from_secs(10));

    // A full house: a connection beyond the cap is closed unanswered, and once the
    // slow ones time out the master serves again.
    let mut full: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(addr(&m)).unwrap())
        .collect();
    let mut extra = TcpStream::connect(addr(&m)).unwrap();
    extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = String::new();
    let _ = extra.read_to_string(&mut answer);
    assert!(!answer.contains("200"), "served beyond the cap: {answer}");
    for s in full.iter_mut() {
        assert!(closed_within(s, 10));
    }
    m.get("/healthz");
}

/// Reads what the master sends on `s` until it closes the connection or `secs` pass;
/// the text, and whether it closed.
fn read_until_closed(s: &mut TcpStream, secs: u64) -> (String, bool) {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&out).into_owned(), true),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&out).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), false)
}

#[test]
fn a_stalled_or_trickled_body_gets_408_and_a_huge_one_413() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &["--body-timeout-ms", "1000"]);
    let token = m.admin_token();
    let host = addr(&m);
    let head = |len: usize| {
        format!(
            "POST /api/v1/jobs HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        )
    };

    // Headers, 10 of the 100 bytes announced, then nothing.
    let mut stalled = TcpStream::connect(&host).unwrap();
    stalled.write_all(head(100).as_bytes()).unwrap();
    stalled.write_all(b"{\"name\": \"").unwrap();
    let started = Instant::now();
    let (text, closed) = read_until_closed(&mut stalled, 10);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"request_timeout\""), "{text}");
    assert!(closed, "the stalled connection is still open: {text}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A body trickled a byte every 100 ms: the deadline is for the whole body.
    let mut trickle = TcpStream::connect(&host).unwrap();
    trickle.write_all(head(200).as_bytes()).unwrap();
    trickle
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    for _ in 0..100 {
        if trickle.write_all(b" ").is_err() {
            break;
        }
        match trickle.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                answer.extend_from_slice(&buf[..n]);
                break;
            }
            Err(_) => {}
        }
    }
    let (rest, _) = read_until_closed(&mut trickle, 5);
    let text = String::from_utf8_lossy(&answer).into_owned() + &rest;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );

    // A body announced beyond the limit is refused before it is read.
    let mut huge = TcpStream::connect(&host).unwrap();
    huge.write_all(head(64 << 20).as_bytes()).unwrap();
    let (text, closed) = read_until_closed(&mut huge, 10);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("\"payload_too_large\""), "{text}");
    assert!(closed, "{text}");

    // A body that arrives in time is served as before.
    let (s, v) = m.request("POST", "/api/v1/jobs", Some(json!({"name": "x"})));
    assert_eq!(s, 422, "{v}");
}
