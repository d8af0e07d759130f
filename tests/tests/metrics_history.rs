//! End-to-end tests of the metrics history (`GET /api/v1/jobs/{name}/metrics`,
//! `GET /api/v1/metrics/usage`): the real `sluice serve`, real worker processes, sled on
//! disk. A running job's series grow with non-zero rates and survive a master restart;
//! a hundred jobs stay within the configured bound; bad parameters get 400.

use serde_json::{json, Value};
use sluice_tests::MasterProcess;

const FAST: &[&str] = &["--metrics-interval", "200ms"];

fn unbounded_sql() -> &'static str {
    "SET 'execution.checkpointing.interval' = '300ms';\n\
     CREATE TABLE bids (auction BIGINT, price BIGINT) \
       WITH ('connector' = 'datagen', 'rows-per-second' = '2000');\n\
     CREATE TABLE sink (a BIGINT, n BIGINT) WITH ('connector' = 'blackhole');\n\
     INSERT INTO sink SELECT auction % 10, COUNT(*) FROM bids GROUP BY auction % 10;\n"
}

fn submit(m: &MasterProcess, name: &str, desired: &str) {
    let (status, v) = m.request(
        "POST",
        "/api/v1/jobs",
        Some(
            json!({"name": name, "sql": unbounded_sql(), "desired_state": desired,
                    "resources": {"parallelism": 1, "memory_mb": 256, "gpus": 0}}),
        ),
    );
    assert_eq!(status, 201, "submit {name}: {v}");
}

fn series<'a>(v: &'a Value, name: &str) -> Option<&'a Vec<Value>> {
    v["series"].as_array()?.iter().find(|s| s["name"] == name)?["points"].as_array()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn a_running_jobs_series_grow_with_rates_and_survive_a_master_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut m = MasterProcess::start(&data, FAST);
    submit(&m, "clicks", "running");
    let from = now_ms() - 60_000;
    // Rates of rows in are positive while it runs; the series keep growing.
    let first = m.wait_for(60, "rows_in rates above zero", || {
        let v = m.get(&format!("/api/v1/jobs/clicks/metrics?from={from}&step=200"));
        let pts = series(&v, "rows_in")?;
        (pts.iter().filter(|p| p[1].as_f64() > Some(0.0)).count() >= 3).then_some(pts.len())
    });
    m.wait_for(60, "more points", || {
        let v = m.get(&format!("/api/v1/jobs/clicks/metrics?from={from}&step=200"));
        (series(&v, "rows_in")?.len() > first).then_some(())
    });
    let v = m.get(&format!("/api/v1/jobs/clicks/metrics?from={from}&step=200"));
    assert_eq!(v["series"][0]["labels"]["job"], "clicks");
    let up = series(&v, "instances_up").expect("instances_up");
    assert!(up.iter().any(|p| p[1] == 1.0), "{up:?}");
    let rss = series(&v, "rss_bytes").expect("rss_bytes");
    assert!(rss.iter().any(|p| p[1].as_f64() > Some(0.0)), "{rss:?}");
    assert!(series(&v, "cpu_seconds").is_some());
    // The newest checkpoint's epoch moves on while it runs.
    m.wait_for(60, "a checkpoint in the history", || {
        let v = m.get(&format!("/api/v1/jobs/clicks/metrics?from={from}&step=200"));
        let epochs = series(&v, "checkpoint_epoch")?;
        assert!(
            series(&v, "state_bytes").is_some() && series(&v, "checkpoint_duration_ms").is_some()
        );
        epochs
            .iter()
            .any(|p| p[1].as_f64() >= Some(1.0))
            .then_some(())
    });
    // … and the aggregate's state, per operator.
    m.wait_for(60, "the aggregate's state size", || {
        let v = m.get(&format!("/api/v1/jobs/clicks/metrics?from={from}&step=200"));
        let s = v["series"]
            .as_array()?
            .iter()
            .find(|s| s["name"] == "operator_state_bytes")?
            .clone();
        assert!(s["labels"]["operator"].is_string(), "{s}");
        let pts = s["points"].as_array()?;
        pts.iter().any(|p| p[1].as_f64() > Some(0.0)).then_some(())
    });

    // … and each plan operator's rate, labelled with its EXPLAIN PHYSICAL line: every
    // operator of the query (the aggregate, line 0, and its input) moves.
    m.wait_for(60, "every operator's rate", || {
        let v = m.get(&format!("/api/v1/jobs/clicks/metrics?from={from}&step=200"));
        let ops: Vec<&Value> = v["series"]
            .as_array()?
            .iter()
            .filter(|s| s["name"] == "operator_rows")
            .collect();
        let moving = |s: &&Value| {
            s["points"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p[1].as_f64() > Some(0.0)))
        };
        (ops.len() >= 2
            && ops.iter().any(|s| s["labels"]["operator"] == "0.0")
            && ops.iter().all(moving))
        .then_some(())
    });

    // Points older than a second are on disk (each sample is flushed as it is taken).
    let to = now_ms() - 1_000;
    let q = format!("/api/v1/jobs/clicks/metrics?from={from}&to={to}&step=200");
    let before = m.get(&q);
    let before_points = series(&before, "rows_in").expect("rows_in").clone();
    assert!(!before_points.is_empty());
    m.kill9();
    let m = MasterProcess::start(&data, FAST);
    let after = m.get(&q);
    assert_eq!(
        series(&after, "rows_in").expect("rows_in after the restart"),
        &before_points
    );
}

#[test]
fn a_hundred_jobs_stay_within_the_bound_and_bad_parameters_get_400() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let m = MasterProcess::start(
        &data,
        &[
            "--metrics-interval",
            "100ms",
            "--metrics-max-series",
            "50",
            "--metrics-max-points",
            "10",
            "--max-jobs-per-owner",
            "0",
        ],
    );
    for i in 0..100 {
        submit(&m, &format!("job{i:03}"), "stopped");
    }
    // 100 jobs × 9 metrics are offered; the history holds its bound, and fills it.
    let usage = m.wait_for(60, "the history to fill its bound", || {
        let u = m.get("/api/v1/metrics/usage")["usage"].clone();
        let (points, max_points) = (u["points"].as_u64()?, u["max_points"].as_u64()?);
        assert!(points <= max_points, "{u}");
        assert!(u["series"].as_u64()? <= u["max_series"].as_u64()?, "{u}");
        assert!(u["bytes"].as_u64()? <= u["max_bytes"].as_u64()?, "{u}");
        (points == max_points).then_some(u)
    });
    assert_eq!(usage["max_series"], 50);
    assert_eq!(usage["max_points"], 500);
    assert_eq!(usage["series"], 50);
    let v = m.get("/api/v1/jobs/job099/metrics");
    assert!(v["usage"]["points"].as_u64().unwrap() <= 500, "{v}");

    // Bad parameters: 400 with the one error body; an unknown job: 404.
    for q in [
        "from=10&to=5",
        "step=0",
        "step=abc",
        "from=-5&to=10",
        "from=0&to=100000000&step=1",
    ] {
        let (status, body) = m.request("GET", &format!("/api/v1/jobs/job000/metrics?{q}"), None);
        assert_eq!(status, 400, "{q}: {body}");
        assert!(
            body["code"].is_string() && body["message"].is_string(),
            "{body}"
        );
        assert!(body.get("details").is_some(), "{body}");
    }
    let (status, body) = m.request("GET", "/api/v1/jobs/nope/metrics", None);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "not_found");
}
