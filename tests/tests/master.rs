//! End-to-end tests of the master: the real `sluice serve` binary over HTTP, real
//! worker processes, sled on disk. Each test has its own data directory and port.

use serde_json::{json, Value};
use sluice_tests::{stderr, stdout, MasterProcess};
use std::path::Path;
use std::time::{Duration, Instant};

/// An unbounded job: a throttled generator into a blackhole.
fn unbounded_sql() -> String {
    "CREATE TABLE bids (auction BIGINT, price BIGINT) \
       WITH ('connector' = 'datagen', 'rows-per-second' = '2000', 'fields.price.min' = '0', 'fields.price.max' = '100');\n\
     CREATE TABLE sink (auction BIGINT, price BIGINT) WITH ('connector' = 'blackhole');\n\
     INSERT INTO sink SELECT auction, price FROM bids WHERE price > 10;\n"
        .to_string()
}

/// A bounded job: ids 1..=1000 from datagen, multiples of 3 to CSV under `out`.
fn bounded_sql(out: &Path) -> String {
    format!(
        "CREATE TABLE src (id BIGINT, v BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1000', \
           'fields.id.kind' = 'sequence', 'fields.id.min' = '1', 'fields.v.min' = '0', 'fields.v.max' = '9');\n\
         CREATE TABLE dst (id BIGINT, twice BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO dst SELECT id, id * 2 FROM src WHERE id % 3 = 0;\n",
        out.display()
    )
}

fn submit(m: &MasterProcess, name: &str, sql: &str, parallelism: u32) -> Value {
    let (status, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": name, "sql": sql, "resources": {"parallelism": parallelism, "memory_mb": 1024, "gpus": 0}})),
    );
    assert_eq!(status, 201, "submit {name}: {v}");
    v
}

fn job(m: &MasterProcess, name: &str) -> Value {
    m.get(&format!("/api/v1/jobs/{name}"))
}

fn live_instances(m: &MasterProcess, name: &str) -> Vec<Value> {
    let v = m.get(&format!("/api/v1/jobs/{name}/instances"));
    v.as_array()
        .expect("array")
        .iter()
        .filter(|i| i["state"] == "running" || i["state"] == "starting")
        .cloned()
        .collect()
}

fn wait_state(m: &MasterProcess, name: &str, state: &str, secs: u64) -> Value {
    m.wait_for(secs, &format!("job {name} to be {state}"), || {
        let j = job(m, name);
        (j["state"] == state).then_some(j)
    })
}

fn events(m: &MasterProcess, name: &str) -> Vec<Value> {
    m.get(&format!("/api/v1/jobs/{name}/events?limit=1000"))
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn kill9(pid: u64) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

fn read_csv_rows(dir: &Path) -> Vec<(i64, i64)> {
    let mut rows = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read output dir").flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("read output file");
            for line in text.lines().skip(1) {
                let mut parts = line.split(',');
                let a: i64 = parts.next().unwrap().parse().unwrap();
                let b: i64 = parts.next().unwrap().parse().unwrap();
                rows.push((a, b));
            }
        }
    }
    rows.sort();
    rows
}

#[test]
fn submitted_job_runs_within_5s_and_a_bounded_job_finishes_with_correct_output() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &[]);

    let started = Instant::now();
    submit(&m, "stream", &unbounded_sql(), 1);
    wait_state(&m, "stream", "running", 5);
    assert!(started.elapsed() < Duration::from_secs(5));
    let inst = live_instances(&m, "stream");
    assert_eq!(inst.len(), 1);
    assert!(inst[0]["pids"][0].as_u64().unwrap() > 0);
    // Rows flow and heartbeats arrive.
    m.wait_for(10, "rows to flow", || {
        let j = job(&m, "stream");
        (j["rows_in"].as_u64().unwrap_or(0) > 0).then_some(())
    });

    let out = dir.path().join("out");
    submit(&m, "batch", &bounded_sql(&out), 2);
    wait_state(&m, "batch", "finished", 30);
    let rows = read_csv_rows(&out);
    let expected: Vec<(i64, i64)> = (1..=1000)
        .filter(|i| i % 3 == 0)
        .map(|i| (i, i * 2))
        .collect();
    assert_eq!(rows, expected);
    // A finished job is not restarted.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(job(&m, "batch")["state"], "finished");
    assert!(live_instances(&m, "batch").is_empty());
    assert_eq!(job(&m, "batch")["restarts"], 0);

    // Metrics name the jobs.
    let (status, text) = m.request("GET", "/metrics", None);
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_string();
    assert!(
        text.contains("sluice_job_instances_up{job=\"stream\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sluice_job_state{job=\"batch\",state=\"finished\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("sluice_watchdog_actions_total{action=\"start\"}"),
        "{text}"
    );
}

#[test]
fn killed_worker_is_replaced_within_5s_with_the_restart_counted() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &["--restart-backoff-ms", "200"]);
    submit(&m, "victim", &unbounded_sql(), 1);
    wait_state(&m, "victim", "running", 5);
    let first = live_instances(&m, "victim").remove(0);
    let pid = first["pids"][0].as_u64().unwrap();
    let killed_at = Instant::now();
    kill9(pid);
    let second = m.wait_for(5, "a new instance", || {
        live_instances(&m, "victim")
            .into_iter()
            .find(|i| i["id"] != first["id"] && i["state"] == "running")
    });
    assert!(killed_at.elapsed() < Duration::from_secs(5));
    assert_ne!(second["pids"][0], first["pids"][0]);
    let j = wait_state(&m, "victim", "running", 5);
    assert_eq!(j["restarts"], 1);
    let ev = events(&m, "victim");
    assert!(
        ev.iter().any(|e| e["kind"] == "restart_scheduled"
            && e["message"]
                .as_str()
                .unwrap()
                .contains(first["id"].as_str().unwrap())),
        "{ev:?}"
    );
    // The old instance is history, with its end recorded.
    let old = m.get(&format!(
        "/api/v1/instances/{}",
        first["id"].as_str().unwrap()
    ));
    assert_eq!(old["state"], "crashed");
}

#[test]
fn a_job_that_always_crashes_is_backed_off_and_marked_failed() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // A bad record with 'format.on-error' = 'fail' fails every run.
    std::fs::write(input.join("a.csv"), "id,v\n1,2\nnot-a-number,3\n").unwrap();
    let sql = format!(
        "CREATE TABLE src (id BIGINT, v BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true', 'format.on-error' = 'fail');\n\
         CREATE TABLE dst (id BIGINT) WITH ('connector' = 'blackhole');\n\
         INSERT INTO dst SELECT id FROM src;\n",
        input.display()
    );
    let m = MasterProcess::start(
        &dir.path().join("data"),
        &[
            "--restart-backoff-ms",
            "300",
            "--max-restarts",
            "3",
            "--restart-window-s",
            "120",
        ],
    );
    // Another, healthy job must be unaffected.
    submit(&m, "healthy", &unbounded_sql(), 1);
    submit(&m, "crasher", &sql, 1);
    let j = wait_state(&m, "crasher", "failed", 40);
    assert_eq!(j["restarts"], 4, "{j}");
    assert!(
        j["state_reason"]
            .as_str()
            .unwrap()
            .contains("failures within"),
        "{j}"
    );
    let ev = events(&m, "crasher");
    let starts: Vec<i64> = ev
        .iter()
        .filter(|e| e["kind"] == "instance_started")
        .map(|e| chrono_ms(e["at"].as_str().unwrap()))
        .collect();
    assert_eq!(starts.len(), 4, "{ev:#?}");
    // The scheduled delays grow (exponential backoff with jitter; the event says
    // "restart N in X s"), and no restart came before its delay was up. Wall-clock gaps
    // also hold the time a crash takes to be seen, which a loaded machine stretches.
    let delays: Vec<f64> = ev
        .iter()
        .filter(|e| e["kind"] == "restart_scheduled")
        .filter_map(|e| {
            let m = e["message"].as_str()?;
            let after = m.rsplit(" in ").next()?;
            after.strip_suffix(" s")?.parse::<f64>().ok()
        })
        .collect();
    assert_eq!(delays.len(), 3, "{ev:#?}");
    assert!(
        delays.windows(2).all(|d| d[1] > d[0]),
        "restart delays must grow: {delays:?}"
    );
    let gaps: Vec<i64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    for (gap, delay) in gaps.iter().zip(&delays) {
        assert!(
            *gap as f64 >= delay * 1000.0 - 100.0,
            "a restart came before its delay: gaps {gaps:?}, delays {delays:?}"
        );
    }
    // Failed stays failed: nothing restarts it.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(job(&m, "crasher")["state"], "failed");
    assert!(live_instances(&m, "crasher").is_empty());
    let healthy = job(&m, "healthy");
    assert_eq!(healthy["state"], "running");
    assert_eq!(healthy["restarts"], 0);
    // Starting it again (a spec change) gives it a fresh history.
    let (s, v) = m.request(
        "PATCH",
        "/api/v1/jobs/crasher",
        Some(json!({"desired_state": "stopped"})),
    );
    assert_eq!(s, 200, "{v}");
    wait_state(&m, "crasher", "stopped", 5);
}

/// Milliseconds of an RFC 3339 UTC timestamp as the API writes it
/// (`YYYY-MM-DDTHH:MM:SS.mmmZ`), enough to compare times within a day.
fn chrono_ms(s: &str) -> i64 {
    let t = &s[11..23];
    let h: i64 = t[0..2].parse().unwrap();
    let mi: i64 = t[3..5].parse().unwrap();
    let se: i64 = t[6..8].parse().unwrap();
    let ms: i64 = t[9..12].parse().unwrap();
    let day: i64 = s[8..10].parse().unwrap();
    (((day * 24 + h) * 60 + mi) * 60 + se) * 1000 + ms
}

#[test]
fn rescale_from_1_to_3_replaces_the_instance_and_never_runs_two() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    submit(&m, "scaled", &unbounded_sql(), 1);
    wait_state(&m, "scaled", "running", 5);
    let old = live_instances(&m, "scaled").remove(0);
    assert_eq!(old["parallelism"], 1);

    let (s, v) = m.request(
        "PATCH",
        "/api/v1/jobs/scaled",
        Some(json!({"resources": {"parallelism": 3}})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["version"], 2);
    let new = m.wait_for(10, "an instance with 3 workers", || {
        let live = live_instances(&m, "scaled");
        assert!(live.len() <= 1, "two live instances of one job: {live:?}");
        live.into_iter()
            .find(|i| i["parallelism"] == 3 && i["job_version"] == 2 && i["state"] == "running")
    });
    assert_ne!(new["id"], old["id"]);
    let old_now = m.get(&format!(
        "/api/v1/instances/{}",
        old["id"].as_str().unwrap()
    ));
    assert_eq!(old_now["state"], "stopped");
    // Its pid is gone.
    let pid = old["pids"][0].as_u64().unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z "),
        "old worker still alive"
    );
    // Rescaling is not a failure.
    assert_eq!(job(&m, "scaled")["restarts"], 0);
}

#[test]
fn restarted_master_keeps_jobs_versions_tables_and_adopts_live_instances() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut m = MasterProcess::start(&data, &[]);
    let (s, v) = m.request(
        "POST",
        "/api/v1/tables",
        Some(json!({"ddl": "CREATE TABLE people (id BIGINT, name VARCHAR) WITH ('connector' = 'datagen', 'number-of-rows' = '10')"})),
    );
    assert_eq!(s, 201, "{v}");
    submit(&m, "survivor", &unbounded_sql(), 1);
    let (s, _) = m.request(
        "PATCH",
        "/api/v1/jobs/survivor",
        Some(json!({"resources": {"parallelism": 2}})),
    );
    assert_eq!(s, 200);
    let before = m.wait_for(10, "version 2 running", || {
        live_instances(&m, "survivor")
            .into_iter()
            .find(|i| i["job_version"] == 2 && i["state"] == "running")
    });

    m.kill9();
    // The instance outlives the master.
    let pid = before["pids"][0].as_u64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());

    let m2 = MasterProcess::start(&data, &[]);
    let j = job(&m2, "survivor");
    assert_eq!(j["version"], 2);
    let tables = m2.get("/api/v1/tables");
    assert_eq!(tables[0]["name"], "people");
    // Adopted: the same instance, the same pid; never a second one.
    for _ in 0..20 {
        let live = live_instances(&m2, "survivor");
        assert_eq!(live.len(), 1, "{live:?}");
        assert_eq!(live[0]["id"], before["id"]);
        assert_eq!(live[0]["pids"], before["pids"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_state(&m2, "survivor", "running", 5);
    assert_eq!(job(&m2, "survivor")["restarts"], 0);
    drop(m);
}

#[test]
fn errors_are_one_json_body_and_user_mistakes_are_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    // SQL errors carry line and column.
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "bad", "sql": "CREATE TABLE t (a INT) WITH ('connector' = 'datagen');\nINSERT INTO t SELECT nope FROM t;"})),
    );
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["code"], "invalid_sql");
    assert_eq!(v["details"]["line"], 2);
    assert!(v["details"]["column"].as_u64().unwrap() > 0);
    // A job ending in a bare SELECT would discard its rows: refused, with the position.
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "lost", "sql": "CREATE TABLE t (a INT) WITH ('connector' = 'datagen');\n\n  SELECT a FROM t;"})),
    );
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["code"], "invalid_sql");
    assert!(
        v["message"].as_str().unwrap().contains("bare SELECT"),
        "{v}"
    );
    assert_eq!(
        (
            v["details"]["line"].as_u64(),
            v["details"]["column"].as_u64()
        ),
        (Some(3), Some(3)),
        "{v}"
    );
    // Validate returns the plans, or the errors.
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs/validate",
        Some(json!({"sql": unbounded_sql()})),
    );
    assert_eq!(s, 200);
    assert_eq!(v["valid"], true);
    assert!(
        v["queries"][0]["physical"]
            .as_str()
            .unwrap()
            .contains("Source"),
        "{v}"
    );
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs/validate",
        Some(json!({"sql": "SELEC 1"})),
    );
    assert_eq!(s, 200);
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"][0]["line"], 1);
    // Unknown things are 404 with the error body.
    let (s, v) = m.request("GET", "/api/v1/jobs/nope", None);
    assert_eq!((s, v["code"].as_str()), (404, Some("not_found")));
    let (s, v) = m.request("GET", "/no/such/route", None);
    assert_eq!((s, v["code"].as_str()), (404, Some("not_found")));
    // Limits.
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "big", "sql": unbounded_sql(), "resources": {"parallelism": 100000}})),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (400, Some("invalid_request")),
        "{v}"
    );
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "../etc", "sql": unbounded_sql()})),
    );
    assert_eq!(s, 400, "{v}");
    // Just over the 1 MiB limit: the master answers 413 after reading 1 MiB, and the
    // rest fits in the socket buffers, so the client can finish sending and read it.
    let huge = "x".repeat(1024 * 1024 + 1024);
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "huge", "sql": huge})),
    );
    assert_eq!(
        (s, v["code"].as_str()),
        (413, Some("payload_too_large")),
        "{v}"
    );
    let (s, v) = m.request("POST", "/api/v1/jobs", Some(json!({"name": 5})));
    assert_eq!((s, v["code"].as_str()), (422, Some("invalid_json")), "{v}");
    let resp = ureq::post(&format!("{}/api/v1/jobs", m.base))
        .set("Authorization", &format!("Bearer {}", m.admin_token()))
        .set("Content-Type", "application/json")
        .send_string("{not json");
    match resp {
        Err(ureq::Error::Status(400, r)) => {
            let v: Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
            assert_eq!(v["code"], "invalid_json");
        }
        other => panic!("expected 400, got {other:?}"),
    }
    let (s, v) = m.request("DELETE", "/api/v1/clusters", None);
    assert_eq!(
        (s, v["code"].as_str()),
        (405, Some("method_not_allowed")),
        "{v}"
    );
    // Duplicate names conflict.
    submit(&m, "dup", &unbounded_sql(), 1);
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": "dup", "sql": unbounded_sql()})),
    );
    assert_eq!((s, v["code"].as_str()), (409, Some("conflict")));
    // No 5xx anywhere above, and the master is healthy.
    assert_eq!(m.get("/healthz")["status"], "ok");
}

#[test]
fn swagger_ui_and_its_assets_load_offline() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    let (s, page) = m.request("GET", "/swagger-ui/", None);
    assert_eq!(s, 200);
    let page = page.as_str().unwrap().to_string();
    assert!(page.contains("swagger-ui"), "{page}");
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-initializer.js",
    ] {
        let (s, body) = m.request("GET", &format!("/swagger-ui/{asset}"), None);
        assert_eq!(s, 200, "{asset}");
        assert!(
            body.as_str().map(|b| b.len() > 100).unwrap_or(false),
            "{asset} is empty"
        );
    }
    let (_, init) = m.request("GET", "/swagger-ui/swagger-initializer.js", None);
    assert!(init.as_str().unwrap().contains("/api-docs/openapi.json"));
    let spec = m.get("/api-docs/openapi.json");
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(sluice_tests::workspace_root().join("openapi/openapi.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        spec, checked_in,
        "the served document is the checked-in one"
    );
}

#[test]
fn cli_drives_jobs_and_tables() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    let script = dir.path().join("job.sql");
    std::fs::write(&script, unbounded_sql()).unwrap();
    let ddl = dir.path().join("tables.sql");
    std::fs::write(
        &ddl,
        "CREATE TABLE people (id BIGINT, name VARCHAR) WITH ('connector' = 'datagen', 'number-of-rows' = '10');",
    )
    .unwrap();

    let o = m.cli(&["table", "create", ddl.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = m.cli(&["table", "list"]);
    assert!(stdout(&o).contains("people"), "{}", stdout(&o));

    let o = m.cli(&[
        "job",
        "submit",
        "cli-job",
        script.to_str().unwrap(),
        "--parallelism",
        "1",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("submitted job cli-job"));
    wait_state(&m, "cli-job", "running", 5);
    let o = m.cli(&["job", "list"]);
    let out = stdout(&o);
    assert!(out.contains("cli-job") && out.contains("running"), "{out}");
    let o = m.cli(&["job", "list", "--json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["name"], "cli-job");

    let o = m.cli(&["job", "scale", "cli-job", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    m.wait_for(10, "rescaled instance", || {
        live_instances(&m, "cli-job")
            .into_iter()
            .find(|i| i["parallelism"] == 2 && i["state"] == "running")
    });
    let o = m.cli(&["job", "logs", "cli-job"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).is_empty());
    let o = m.cli(&["job", "get", "cli-job"]);
    assert!(stdout(&o).contains("parallelism 1 → 2"), "{}", stdout(&o));

    let o = m.cli(&["job", "stop", "cli-job"]);
    assert!(o.status.success());
    wait_state(&m, "cli-job", "stopped", 10);
    assert!(live_instances(&m, "cli-job").is_empty());
    let o = m.cli(&["job", "start", "cli-job"]);
    assert!(o.status.success());
    wait_state(&m, "cli-job", "running", 10);
    let o = m.cli(&["job", "delete", "cli-job"]);
    assert!(o.status.success());
    let o = m.cli(&["job", "get", "cli-job"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));

    // A compile error comes back with its position.
    let bad = dir.path().join("bad.sql");
    std::fs::write(
        &bad,
        "CREATE TABLE t (a INT) WITH ('connector' = 'datagen');\nINSERT INTO t SELEC a FROM t;",
    )
    .unwrap();
    let o = m.cli(&["job", "submit", "bad", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));

    let o = m.cli(&["table", "drop", "people"]);
    assert!(o.status.success());
    let o = m.cli(&["table", "list", "--json"]);
    assert_eq!(
        serde_json::from_slice::<Value>(&o.stdout).unwrap(),
        json!([])
    );
}

#[test]
fn a_stopped_worker_is_hung_and_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(
        &dir.path().join("data"),
        &["--heartbeat-timeout-s", "2", "--restart-backoff-ms", "200"],
    );
    submit(&m, "sleepy", &unbounded_sql(), 1);
    wait_state(&m, "sleepy", "running", 5);
    let first = live_instances(&m, "sleepy").remove(0);
    let pid = first["pids"][0].as_u64().unwrap();
    // SIGSTOP: the process is alive but neither heartbeats nor makes progress.
    let st = std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let second = m.wait_for(15, "a replacement for the hung instance", || {
        live_instances(&m, "sleepy")
            .into_iter()
            .find(|i| i["id"] != first["id"] && i["state"] == "running")
    });
    assert_ne!(second["pids"], first["pids"]);
    let ev = events(&m, "sleepy");
    assert!(
        ev.iter()
            .any(|e| e["message"].as_str().unwrap().contains("hung")),
        "{ev:#?}"
    );
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}

#[test]
fn acknowledged_writes_survive_kill9_of_the_master_during_writes() {
    // R8: a writer creates tables as fast as it can; the master is killed at a seeded
    // moment; every write that got a 201 must be there after a restart, exactly once.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // As fast as it can: beyond any per-token rate limit.
    let mut m = MasterProcess::start(&data, &["--rate-limit-per-s", "0"]);
    let base = m.base.clone();
    let auth = format!("Bearer {}", m.admin_token());
    let writer = std::thread::spawn(move || {
        let mut acknowledged = Vec::new();
        for i in 0..100_000 {
            let name = format!("t{i}");
            let ddl = format!("CREATE TABLE {name} (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1')");
            let r = ureq::post(&format!("{base}/api/v1/tables"))
                .set("Authorization", &auth)
                .timeout(Duration::from_secs(5))
                .send_json(json!({"ddl": ddl}));
            match r {
                Ok(resp) if resp.status() == 201 => acknowledged.push(name),
                Ok(resp) => panic!("unexpected status {}", resp.status()),
                Err(ureq::Error::Status(s, r)) => {
                    panic!(
                        "unexpected status {s}: {}",
                        r.into_string().unwrap_or_default()
                    )
                }
                Err(_) => break, // the master is gone
            }
        }
        acknowledged
    });
    // A seeded moment between 300 and 800 ms into the burst.
    let seed: u64 = 0x5eed;
    let delay = 300 + (seed.wrapping_mul(6364136223846793005) >> 33) % 500;
    std::thread::sleep(Duration::from_millis(delay));
    m.kill9();
    let acknowledged = writer.join().unwrap();
    assert!(
        acknowledged.len() > 5,
        "too few writes before the kill: {}",
        acknowledged.len()
    );

    let m2 = MasterProcess::start(&data, &[]);
    let tables = m2.get("/api/v1/tables");
    let names: Vec<String> = tables
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "duplicate tables");
    let lost: Vec<&String> = acknowledged.iter().filter(|n| !names.contains(n)).collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost: {lost:?} of {}",
        acknowledged.len()
    );
    // At most the one write in flight at the kill may have landed unacknowledged.
    assert!(names.len() <= acknowledged.len() + 1);
    drop(m);
}

#[test]
fn a_rogue_second_instance_of_a_job_is_stopped() {
    // R6: something (an operator, a bug elsewhere) starts a second instance of a running
    // job; the watchdog stops the extra one and keeps the original.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let m = MasterProcess::start(&data, &[]);
    submit(&m, "single", &unbounded_sql(), 1);
    wait_state(&m, "single", "running", 5);
    let original = live_instances(&m, "single").remove(0);
    let id = original["id"].as_str().unwrap();

    // Clone the instance directory under a new id and start it the way the local
    // cluster does, behind the master's back.
    let instances = data.join("instances");
    let rogue_id = format!("{id}-rogue");
    let rogue_dir = instances.join(&rogue_id);
    std::fs::create_dir_all(&rogue_dir).unwrap();
    let mut request: Value = serde_json::from_str(
        &std::fs::read_to_string(instances.join(id).join("request.json")).unwrap(),
    )
    .unwrap();
    request["instance_id"] = json!(rogue_id);
    std::fs::write(rogue_dir.join("request.json"), request.to_string()).unwrap();
    let log = std::fs::File::create(rogue_dir.join("worker.log")).unwrap();
    let child = std::process::Command::new(sluice_tests::sluice_bin())
        .args(["worker", "--instance-dir", rogue_dir.to_str().unwrap()])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let launch = json!({"pid": child.id(), "launched_at_ms": 4_102_444_800_000i64});
    std::fs::write(rogue_dir.join("launch.json"), launch.to_string()).unwrap();

    let mut last = Value::Null;
    let stopped = (0..100).any(|_| {
        let (_, v) = m.request("GET", &format!("/api/v1/instances/{rogue_id}"), None);
        last = v;
        std::thread::sleep(Duration::from_millis(100));
        last["state"] == "stopped"
    });
    assert!(
        stopped,
        "the rogue instance was not stopped: {last}\n{}",
        m.log()
    );
    let live = live_instances(&m, "single");
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0]["id"], original["id"]);
    // The stop is recorded once the process is gone.
    m.wait_for(10, "the duplicate's stop event", || {
        events(&m, "single")
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("duplicate"))
            .then_some(())
    });
    drop(child);
}

/// Tables created by one request each keep their own `CREATE TABLE` text: after one is
/// dropped, its neighbour's DDL no longer shows it (it used to hold the whole request).
#[test]
fn each_table_keeps_its_own_ddl() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    let ddl = "CREATE TABLE people (id BIGINT, name VARCHAR) WITH ('connector' = 'datagen', 'number-of-rows' = '10');\n\
               -- the second one\n\
               CREATE TABLE shout (line VARCHAR) WITH ('connector' = 'print');\n";
    let (s, v) = m.request("POST", "/api/v1/tables", Some(json!({ "ddl": ddl })));
    assert_eq!(s, 201, "{v}");
    let (s, v) = m.request("DELETE", "/api/v1/tables/people", None);
    assert!(s == 200 || s == 204, "{s} {v}");
    let shout = m.get("/api/v1/tables/shout");
    let text = shout["ddl"].as_str().unwrap();
    assert!(text.contains("CREATE TABLE shout"), "{shout}");
    assert!(
        !text.contains("people"),
        "a dropped table lives on: {shout}"
    );
    assert!(!text.trim_end().ends_with(';'), "{shout}");
}

/// The CLI finds its master and its token in the profile (`SLUICE_CONFIG`, else
/// `~/.config/sluice/config.toml`) when neither `--server` nor `SLUICE_SERVER` says;
/// a typo in the profile is a clear error (exit 2).
#[test]
fn cli_takes_its_server_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".config/sluice")).unwrap();
    std::fs::write(
        home.join(".config/sluice/config.toml"),
        format!("server = \"{}\"\ntoken = \"{}\"\n", m.base, m.admin_token()),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(sluice_tests::sluice_bin())
            .args(args)
            .current_dir(dir.path())
            .env_remove("SLUICE_SERVER")
            .env_remove("SLUICE_TOKEN")
            .env_remove("SLUICE_DATA_DIR")
            .env_remove("SLUICE_CONFIG")
            .env_remove("XDG_CONFIG_HOME")
            .env("HOME", &home)
            .output()
            .unwrap()
    };
    let out = run(&["table", "list", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(home.join(".config/sluice/config.toml"), "sever = 'x'\n").unwrap();
    let out = run(&["table", "list"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("config.toml") && err.contains("sever"),
        "{err}"
    );
}

/// `sluice job logs --tail N` counts lines, as `tail -n` does, and `--follow` prints the
/// log as the instance writes it and returns once the instance has ended.
#[test]
fn job_logs_tail_counts_lines_and_follow_ends_with_the_instance() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    let sql = "CREATE TABLE gen (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '40',
                 'rows-per-second' = '20', 'fields.id.kind' = 'sequence', 'fields.id.min' = '1');
               CREATE TABLE out (id BIGINT) WITH ('connector' = 'print');
               INSERT INTO out SELECT id FROM gen;";
    submit(&m, "printer", sql, 1);
    m.wait_for(30, "an instance", || {
        live_instances(&m, "printer").first().cloned()
    });
    let out = m.cli(&["job", "logs", "printer", "--follow"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for i in 1..=40 {
        let row = format!("+I[{i}]");
        assert_eq!(
            text.lines()
                .filter(|l| l.trim_end().ends_with(&row))
                .count(),
            1,
            "row {i} printed once by --follow:\n{text}"
        );
    }
    assert_eq!(job(&m, "printer")["state"], "finished");
    let tail = m.cli(&["job", "logs", "printer", "--tail", "3"]);
    assert!(tail.status.success());
    let tail = String::from_utf8_lossy(&tail.stdout).into_owned();
    assert_eq!(tail.lines().count(), 3, "{tail}");
    assert!(
        text.ends_with(&tail),
        "the last 3 lines:\n{tail}\nof:\n{text}"
    );
}

/// Counters are per job and monotonic: a worker killed and replaced does not reset the
/// job's totals, and a finished job's totals stay in the API and in `/metrics` (they
/// used to read 0 once its instance was gone).
#[test]
fn job_totals_survive_restarts_and_stay_after_the_job_finished() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &["--restart-backoff-ms", "100"]);
    submit(&m, "stream", &unbounded_sql(), 1);
    let first = m.wait_for(30, "rows flowing", || {
        live_instances(&m, "stream")
            .into_iter()
            .find(|i| i["rows_in"].as_u64().unwrap_or(0) > 0)
    });
    kill9(first["pids"][0].as_u64().unwrap());
    m.wait_for(30, "a replacement instance", || {
        live_instances(&m, "stream")
            .into_iter()
            .find(|i| i["id"] != first["id"] && i["state"] == "running")
    });
    // The killed instance's rows are in the totals, beside the new instance's.
    let j = m.wait_for(30, "totals beyond the killed instance's", || {
        let j = job(&m, "stream");
        (j["totals"]["rows_in"].as_u64()? > first["rows_in"].as_u64()?
            && j["totals"]["rows_in"].as_u64()? > j["rows_in"].as_u64()?)
        .then_some(j)
    });
    assert!(
        j["totals"]["rows_read"].as_u64() >= j["totals"]["rows_in"].as_u64(),
        "{j}"
    );

    // A bounded job: its totals remain once it finished.
    let out = dir.path().join("out");
    submit(&m, "bounded", &bounded_sql(&out), 1);
    let done = wait_state(&m, "bounded", "finished", 60);
    let rows_out = done["rows_out"].as_u64().unwrap();
    assert!(rows_out > 0, "{done}");
    let done = m.wait_for(30, "the finished instance retired into the totals", || {
        let j = job(&m, "bounded");
        (j["totals"]["rows_out"].as_u64() == Some(rows_out)).then_some(j)
    });
    let (_, metrics) = m.request("GET", "/metrics", None);
    let text = metrics
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| metrics.to_string());
    let line = format!("sluice_job_rows_out_total{{job=\"bounded\"}} {rows_out}");
    assert!(
        text.contains(&line),
        "no `{line}` in /metrics:\n{text}\n{done}"
    );
}
