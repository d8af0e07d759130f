//! End-to-end tests of query preview (`POST /api/v1/queries`): the real `sluice serve`
//! runs each preview as a real `sluice-worker` process. Bounded results are exact,
//! `max_rows` truncates, an unbounded source stops at the time limit, non-SELECT
//! scripts and SQL errors get 4xx, and a cancelled preview leaves no process behind.

use serde_json::{json, Value};
use sluice_tests::MasterProcess;

const SRC: &str = "CREATE TABLE src (id BIGINT, v BIGINT) WITH ('connector' = 'datagen', \
     'number-of-rows' = '1000', 'fields.id.kind' = 'sequence', 'fields.id.min' = '1', \
     'fields.v.min' = '0', 'fields.v.max' = '9');\n";

const STREAM: &str = "CREATE TABLE bids (auction BIGINT, price BIGINT) \
     WITH ('connector' = 'datagen', 'rows-per-second' = '200');\n";

fn preview(m: &MasterProcess, body: Value) -> (u16, Value) {
    m.request("POST", "/api/v1/queries", Some(body))
}

/// Processes whose parent is `pid`.
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = rest.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            out.push(p);
        }
    }
    out
}

#[test]
fn previews_return_rows_truncate_stop_at_the_time_limit_and_refuse_non_selects() {
    let tmp = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&tmp.path().join("data"), &[]);

    // Bounded: the exact result, in order.
    let (status, v) = preview(
        &m,
        json!({"sql": format!("{SRC}SELECT id, id * 2 AS twice, 'x' AS s FROM src WHERE id % 300 = 0")}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["schema"],
        json!([{"name": "id", "type": "BIGINT"}, {"name": "twice", "type": "BIGINT"}, {"name": "s", "type": "VARCHAR"}])
    );
    assert_eq!(
        v["rows"],
        json!([[300, 600, "x"], [600, 1200, "x"], [900, 1800, "x"]])
    );
    assert_eq!(v["truncated"], false);
    assert_eq!(v["cancelled"], false);

    // max_rows truncates.
    let (status, v) = preview(
        &m,
        json!({"sql": format!("{SRC}SELECT id FROM src"), "max_rows": 5}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"].as_array().unwrap().len(), 5, "{v}");
    assert_eq!(v["truncated"], true);

    // A result that fits exactly is not truncated.
    let (status, v) = preview(&m, json!({"sql": "SELECT 1 AS x", "max_rows": 1}));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["rows"], &v["truncated"]),
        (&json!([[1]]), &json!(false))
    );
    // An unbounded source under a LIMIT (no ORDER BY): the first rows are the answer.
    let (status, v) = preview(
        &m,
        json!({"sql": format!("{STREAM}SELECT auction FROM bids LIMIT 4"), "timeout_ms": 60000}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"].as_array().unwrap().len(), 4, "{v}");
    assert_eq!(v["truncated"], false, "{v}");

    // Unbounded: stops at the time limit with the rows so far.
    let (status, v) = preview(
        &m,
        json!({"sql": format!("{STREAM}SELECT auction, price FROM bids"), "timeout_ms": 1500, "max_rows": 10000}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["truncated"], true, "{v}");
    assert!(v["elapsed_ms"].as_u64().unwrap() >= 1500, "{v}");
    assert!(v["rows"].as_array().unwrap().len() < 10000, "{v}");
    // … and at max_rows, once that many rows came.
    let (status, v) = preview(
        &m,
        json!({"sql": format!("{STREAM}SELECT auction FROM bids"), "timeout_ms": 60000, "max_rows": 3}),
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["rows"].as_array().unwrap().len(), 3, "{v}");
    assert_eq!(v["truncated"], true);

    // Not a SELECT, or not SQL: 422 with the error body (and a position when known).
    for sql in [
        format!("{SRC}CREATE TABLE out (id BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO out SELECT id FROM src"),
        SRC.to_string(),
    ] {
        let (status, v) = preview(&m, json!({ "sql": sql }));
        assert_eq!(status, 422, "{v}");
        assert_eq!(v["code"], "invalid_sql", "{v}");
    }
    let (status, v) = preview(&m, json!({"sql": format!("{SRC}SELECT id FROM src WHERE")}));
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["details"]["line"], 2, "{v}");
    assert!(v["details"]["column"].as_u64().is_some(), "{v}");
    // Limits out of range: 400.
    for body in [
        json!({"sql": "SELECT 1", "max_rows": 0}),
        json!({"sql": "SELECT 1", "max_rows": 1_000_000}),
        json!({"sql": "SELECT 1", "timeout_ms": 3_600_000}),
        json!({"sql": "SELECT 1", "id": "no spaces"}),
    ] {
        let (status, v) = preview(&m, body.clone());
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["code"], "invalid_request");
    }
    // No preview process is left behind.
    assert_eq!(children_of(m.child.id()), Vec::<u32>::new());
    assert_eq!(m.get("/api/v1/queries"), json!([]));
}

#[test]
fn a_cancelled_preview_returns_its_rows_so_far_and_leaves_no_process() {
    let tmp = tempfile::tempdir().unwrap();
    let m = std::sync::Arc::new(MasterProcess::start(
        &tmp.path().join("data"),
        &["--max-previews", "1"],
    ));
    let bg = m.clone();
    let running = std::thread::spawn(move || {
        preview(
            &bg,
            json!({"sql": format!("{STREAM}SELECT auction FROM bids"), "timeout_ms": 60000,
                   "max_rows": 10000, "id": "cancel-me"}),
        )
    });
    let pid = m.wait_for(30, "the preview to run", || {
        let list = m.get("/api/v1/queries");
        list.as_array()?.iter().find(|q| q["id"] == "cancel-me")?["pid"].as_u64()
    }) as u32;
    assert!(children_of(m.child.id()).contains(&pid));
    // One preview at a time here: a second one is refused while it runs.
    let (status, v) = preview(&m, json!({"sql": "SELECT 1 AS x"}));
    assert_eq!(status, 429, "{v}");
    assert_eq!(v["code"], "quota_exceeded");
    let (status, v) = m.request("DELETE", "/api/v1/queries/cancel-me", None);
    assert_eq!(status, 204, "{v}");
    let (status, v) = running.join().unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["cancelled"], true, "{v}");
    assert_eq!(v["truncated"], true, "{v}");
    assert_eq!(v["id"], "cancel-me");
    // Gone (killed and reaped) before the response was sent.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(children_of(m.child.id()), Vec::<u32>::new());
    assert_eq!(m.get("/api/v1/queries"), json!([]));
    let (status, v) = m.request("DELETE", "/api/v1/queries/cancel-me", None);
    assert_eq!(status, 404, "{v}");
    assert_eq!(v["code"], "not_found");
}

#[test]
fn a_client_that_goes_away_cancels_its_preview() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&tmp.path().join("data"), &[]);
    let body = json!({"sql": format!("{STREAM}SELECT auction FROM bids"), "timeout_ms": 60000,
                      "max_rows": 10000, "id": "walk-away"})
    .to_string();
    let addr = m.base.trim_start_matches("http://").to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /api/v1/queries HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        m.admin_token(),
        body.len()
    )
    .unwrap();
    let pid = m.wait_for(30, "the preview to run", || {
        let list = m.get("/api/v1/queries");
        list.as_array()?.iter().find(|q| q["id"] == "walk-away")?["pid"].as_u64()
    }) as u32;
    assert!(children_of(m.child.id()).contains(&pid));
    drop(conn);
    // Well before its 60 s limit, the preview is gone, and its process with it.
    m.wait_for(30, "the preview to be cancelled", || {
        (m.get("/api/v1/queries") == json!([])).then_some(())
    });
    m.wait_for(30, "its process to be gone", || {
        (!std::path::Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert_eq!(children_of(m.child.id()), Vec::<u32>::new());
}

#[test]
fn a_preview_over_its_memory_limit_is_stopped_and_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&tmp.path().join("data"), &[]);
    // An aggregate over ever new keys, shown only when its (endless) input ends: its
    // state grows until the worker passes 64 MiB plus the runtime allowance.
    let sql = "CREATE TABLE bids (auction BIGINT, price BIGINT) WITH ('connector' = 'datagen');\n\
               SELECT auction, COUNT(*) AS n FROM bids GROUP BY auction ORDER BY n";
    let (status, v) = preview(
        &m,
        json!({"sql": sql, "memory_mb": 64, "timeout_ms": 60000}),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("memory limit"),
        "{v}"
    );
    assert_eq!(children_of(m.child.id()), Vec::<u32>::new());
}
