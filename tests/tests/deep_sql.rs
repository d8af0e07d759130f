//! Deep SQL through the real binaries (issue 12): a few kilobytes of `a + a + …` used to
//! overflow a tokio worker's stack and abort the whole master, and `sluice run` with it.
//! Now such input is a positioned error (4xx, exit 2), and a query at the compiler's
//! depth limit runs end to end: its plan, nested deeper than serde_json's default
//! 128 levels, reaches the worker process and is evaluated on timely's threads.

use serde_json::{json, Value};
use sluice_tests::{sluice, stderr, stdout, MasterProcess};
use std::path::Path;

/// `a + a + … + a`, `n` terms.
fn sum(n: usize) -> String {
    vec!["a"; n].join(" + ")
}

/// Three rows, `a` = 1, 2, 3.
const SRC: &str =
    "CREATE TABLE src (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '3', \
     'fields.a.kind' = 'sequence', 'fields.a.min' = '1');\n";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn a_deep_expression_is_a_4xx_and_the_master_survives() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    let deep = format!(
        "{SRC}CREATE TABLE sink (x BIGINT) WITH ('connector' = 'blackhole');\n\
         INSERT INTO sink SELECT {} FROM src;\n",
        sum(3000)
    );
    let (s, v) = m.request("POST", "/api/v1/jobs/validate", Some(json!({"sql": deep})));
    assert_eq!(s, 200, "validate answers SQL errors in its body: {v}");
    assert_eq!(v["valid"], false, "{v}");
    let err = &v["errors"][0];
    assert!(
        err["message"]
            .as_str()
            .unwrap_or("")
            .contains("nested too deeply"),
        "{v}"
    );
    assert_eq!(
        (err["line"].as_u64(), err["column"].as_u64()),
        (Some(3), Some(25))
    );

    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "deep", "sql": deep, "resources": {"parallelism": 1, "memory_mb": 1024, "gpus": 0}})),
    );
    assert_eq!((s, v["code"].as_str()), (422, Some("invalid_sql")), "{v}");
    assert_eq!(v["details"]["line"], 3, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("nested too deeply"),
        "{v}"
    );

    for (what, sql) in [
        (
            "AND",
            format!(
                "{SRC}SELECT a FROM src WHERE {}",
                vec!["a > 0"; 5000].join(" AND ")
            ),
        ),
        (
            "OR",
            format!(
                "{SRC}SELECT a FROM src WHERE {}",
                vec!["a = 1"; 20_000].join(" OR ")
            ),
        ),
        (
            "||",
            format!("{SRC}SELECT {} FROM src", vec!["'x'"; 20_000].join(" || ")),
        ),
    ] {
        let (s, v) = m.request("POST", "/api/v1/jobs/validate", Some(json!({"sql": sql})));
        assert_eq!((s, &v["valid"]), (200, &Value::Bool(false)), "{what}: {v}");
        assert_eq!(v["errors"][0]["line"], 2, "{what}: {v}");
    }
    // A generated 2,000-branch UNION ALL is fine.
    let union = format!(
        "{SRC}{}",
        vec!["SELECT a FROM src"; 2000].join(" UNION ALL ")
    );
    let (s, v) = m.request("POST", "/api/v1/jobs/validate", Some(json!({"sql": union})));
    assert_eq!((s, &v["valid"]), (200, &Value::Bool(true)), "{v}");
    // Still alive.
    assert_eq!(m.get("/healthz")["status"], "ok");
}

#[test]
fn sluice_run_refuses_a_deep_expression_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (sql, column) in [
        (format!("SELECT {} FROM src;", sum(3000)), 8),
        (
            format!(
                "SELECT a FROM src WHERE {};",
                vec!["a = 1"; 20_000].join(" OR ")
            ),
            25,
        ),
    ] {
        let script = write(dir.path(), "job.sql", &format!("{SRC}{sql}\n"));
        for cmd in ["run", "explain"] {
            let out = sluice(dir.path(), &[cmd, &script]);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{cmd}: {err}");
            assert!(
                err.contains(&format!("line 2, column {column}")),
                "{cmd}: {err}"
            );
            assert!(err.contains("nested too deeply"), "{cmd}: {err}");
        }
    }
}

#[test]
fn sluice_run_runs_an_expression_at_the_depth_limit() {
    let dir = tempfile::tempdir().unwrap();
    let n = sluice_compiler::MAX_EXPR_DEPTH;
    let script = write(
        dir.path(),
        "job.sql",
        &format!("{SRC}SELECT a, {} AS s FROM src ORDER BY a;\n", sum(n)),
    );
    let out = sluice(dir.path(), &["run", &script, "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let n = n as i64;
    assert_eq!(
        stdout(&out),
        format!("a,s\n1,{n}\n2,{}\n3,{}\n", 2 * n, 3 * n)
    );
}
