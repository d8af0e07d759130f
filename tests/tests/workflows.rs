//! End to end: a scheduled three-task workflow (extract → aggregate → export) over files,
//! run by the real `sluice serve` on a fast cron schedule. The master is kill -9'd while
//! a run is in flight and started again: every tick of the schedule gets exactly one
//! run, every run's output is right, and the run history survives.

use serde_json::{json, Value};
use sluice_tests::MasterProcess;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Orders: id 1..=150000, region r0..r4, amount 0..99 (deterministic).
fn write_orders(path: &Path) -> BTreeMap<String, (i64, i64)> {
    let mut text = String::from("id,region,amount\n");
    let mut expected: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for id in 1..=150_000i64 {
        let region = format!("r{}", (id * 7) % 5);
        let amount = (id * 37) % 100;
        text.push_str(&format!("{id},{region},{amount}\n"));
        // The extract task keeps amounts >= the `min_amount` parameter (20).
        if amount >= 20 {
            let e = expected.entry(region).or_insert((0, 0));
            e.0 += 1;
            e.1 += amount;
        }
    }
    std::fs::write(path, text).unwrap();
    expected
}

/// The rows of every committed CSV part file under `dir` (header skipped).
fn read_export(dir: &Path) -> BTreeMap<String, (i64, i64)> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with('_') || !name.ends_with(".csv") {
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 3, "bad export line {line:?} in {name}");
            let prev = out.insert(
                f[0].to_string(),
                (f[1].parse().unwrap(), f[2].parse().unwrap()),
            );
            assert!(prev.is_none(), "region {} exported twice in {dir:?}", f[0]);
        }
    }
    out
}

fn workflow_body(input: &Path, work: &Path) -> Value {
    let w = work.display();
    json!({
        "name": "nightly",
        // Every 4 seconds: a tick falls due while the master is down.
        "schedule": {"cron": "*/4 * * * * *", "timezone": "Europe/Berlin"},
        "concurrency": "queue",
        "catchup": "all",
        "parameters": {"min_amount": "0"},
        "tasks": [
            {"id": "extract", "sql": format!(
                "CREATE TABLE orders (id BIGINT, region VARCHAR, amount BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
                 CREATE TABLE staged (id BIGINT, region VARCHAR, amount BIGINT) WITH ('connector' = 'filesystem', 'path' = '{w}/{{{{ ts_nodash }}}}/staged', 'format' = 'parquet');\n\
                 INSERT INTO staged SELECT id, region, amount FROM orders WHERE amount >= {{{{ min_amount }}}};\n",
                input.display())},
            {"id": "aggregate", "depends_on": ["extract"], "sql": format!(
                "CREATE TABLE staged (id BIGINT, region VARCHAR, amount BIGINT) WITH ('connector' = 'filesystem', 'path' = '{w}/{{{{ ts_nodash }}}}/staged', 'format' = 'parquet');\n\
                 CREATE TABLE totals (region VARCHAR, n BIGINT, total BIGINT) WITH ('connector' = 'filesystem', 'path' = '{w}/{{{{ ts_nodash }}}}/totals', 'format' = 'parquet');\n\
                 INSERT INTO totals SELECT region, COUNT(*), SUM(amount) FROM staged GROUP BY region;\n")},
            {"id": "export", "depends_on": ["aggregate"], "retries": 1, "retry_backoff_ms": 200, "sql": format!(
                "CREATE TABLE totals (region VARCHAR, n BIGINT, total BIGINT) WITH ('connector' = 'filesystem', 'path' = '{w}/{{{{ ts_nodash }}}}/totals', 'format' = 'parquet');\n\
                 CREATE TABLE report (region VARCHAR, n BIGINT, total BIGINT) WITH ('connector' = 'filesystem', 'path' = '{w}/{{{{ ts_nodash }}}}/export', 'format' = 'csv', 'csv.header' = 'true');\n\
                 INSERT INTO report SELECT region, n, total FROM totals;\n")}
        ]
    })
}

fn runs(m: &MasterProcess) -> Vec<Value> {
    let v = m.get("/api/v1/workflows/nightly/runs");
    v.as_array().cloned().unwrap_or_default()
}

fn live_workflow_instances(m: &MasterProcess) -> Vec<Value> {
    m.get("/api/v1/instances?live=true")
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i["job_id"].as_str().unwrap_or("").starts_with("wf:"))
        .collect()
}

#[test]
fn a_scheduled_dag_survives_kill9_of_the_master_with_one_run_per_tick() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.csv");
    let work = dir.path().join("work");
    let expected = write_orders(&input);
    let data = dir.path().join("data");
    let mut m = MasterProcess::start(&data, &[]);

    // Validation: a cycle and a bad cron are 4xx naming what is wrong.
    let mut bad = workflow_body(&input, &work);
    bad["tasks"][0]["depends_on"] = json!(["export"]);
    let (s, v) = m.request("POST", "/api/v1/workflows", Some(bad));
    assert_eq!(s, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("cycle"), "{v}");
    let mut bad = workflow_body(&input, &work);
    bad["schedule"]["cron"] = json!("*/4 * * *");
    let (s, v) = m.request("POST", "/api/v1/workflows", Some(bad));
    assert!((400..500).contains(&s), "{s} {v}");
    let mut bad = workflow_body(&input, &work);
    bad["tasks"][1]["sql"] = json!("INSERT INTO nowhere SELECT 1;");
    let (s, v) = m.request("POST", "/api/v1/workflows", Some(bad));
    assert_eq!(s, 422, "{v}");
    assert!(v["message"].as_str().unwrap().contains("aggregate"), "{v}");
    assert_eq!(v["details"]["task"], "aggregate", "{v}");
    assert_eq!(v["details"]["line"], 1, "{v}");
    assert!(v["details"]["column"].as_u64().unwrap() > 0, "{v}");

    // The real one; the user parameter is overridden to 20.
    let mut body = workflow_body(&input, &work);
    body["parameters"]["min_amount"] = json!("20");
    let (s, v) = m.request("POST", "/api/v1/workflows", Some(body));
    assert_eq!(s, 201, "{v}");

    // Wait for a run whose aggregate (or export) task is running, then kill -9 the
    // master in the middle of it.
    let in_flight = m.wait_for(60, "a run with a task in flight", || {
        runs(&m).into_iter().find(|r| {
            r["state"] == "running"
                && r["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|t| t["state"] == "running" && t["id"] != "extract")
        })
    });
    let in_flight_id = in_flight["run_id"].as_str().unwrap().to_string();
    let before: BTreeSet<String> = runs(&m)
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    m.kill9();
    // Down long enough for at least two ticks to be missed.
    std::thread::sleep(std::time::Duration::from_secs(9));
    let m = MasterProcess::start(&data, &[]);

    // History intact: every run known before is still there.
    let after: BTreeSet<String> = runs(&m)
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    assert!(before.is_subset(&after), "{before:?} vs {after:?}");

    // Let a few more ticks run, then stop the schedule and wait for the queue to drain.
    let first_after_restart = after.len();
    m.wait_for(90, "three more runs after the restart", || {
        (runs(&m).len() >= first_after_restart + 3).then_some(())
    });
    let (s, v) = m.request(
        "PATCH",
        "/api/v1/workflows/nightly",
        Some(json!({"enabled": false})),
    );
    assert_eq!(s, 200, "{v}");
    let all = m.wait_for(180, "every run to end", || {
        let rs = runs(&m);
        rs.iter()
            .all(|r| r["state"] != "running" && r["state"] != "queued")
            .then_some(rs)
    });

    // Exactly one run per tick: the logical times are the schedule's 4-second ticks,
    // consecutive, with no gap (catch-up `all`) and no duplicate.
    let mut ticks: Vec<i64> = all
        .iter()
        .map(|r| {
            assert_eq!(r["trigger"], "scheduled", "{r}");
            chrono::DateTime::parse_from_rfc3339(r["logical_time"].as_str().unwrap())
                .unwrap()
                .timestamp()
        })
        .collect();
    ticks.sort();
    let n = ticks.len();
    ticks.dedup();
    assert_eq!(ticks.len(), n, "two runs for one tick: {ticks:?}");
    for w in ticks.windows(2) {
        assert_eq!(w[1] - w[0], 4, "a tick without a run between {w:?}");
    }
    assert!(ticks.iter().all(|t| t % 4 == 0), "{ticks:?}");
    assert!(n >= 5, "only {n} runs");

    // Every run succeeded, each task with one attempt (the in-flight task's instance
    // was adopted, not relaunched), and every export is right.
    for r in &all {
        assert_eq!(r["state"], "succeeded", "{r}");
        for t in r["tasks"].as_array().unwrap() {
            assert_eq!(t["state"], "succeeded", "{r}");
            assert_eq!(t["attempts"], 1, "{r}");
            assert!(t["logs"]
                .as_str()
                .unwrap()
                .starts_with("/api/v1/instances/"));
        }
        let ts = &r["parameters"]["ts_nodash"];
        let got = read_export(&work.join(ts.as_str().unwrap()).join("export"));
        assert_eq!(got, expected, "run {}", r["run_id"]);
        assert_eq!(r["parameters"]["min_amount"], "20");
    }
    let killed = all.iter().find(|r| r["run_id"] == in_flight_id.as_str());
    assert!(killed.is_some(), "the in-flight run is gone");

    // One instance per task per run, none still live.
    let instances: Vec<Value> = m
        .get("/api/v1/instances")
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| i["job_id"].as_str().unwrap_or("").starts_with("wf:"))
        .collect();
    assert!(
        instances.len() <= 3 * n,
        "{} instances for {n} runs",
        instances.len()
    );
    assert!(live_workflow_instances(&m).is_empty());

    // The CLI sees the same history.
    let o = m.cli(&["workflow", "runs", "nightly", "--json"]);
    assert!(o.status.success(), "{}", sluice_tests::stderr(&o));
    let cli: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(cli.as_array().unwrap().len(), n);
}

#[test]
fn manual_trigger_backfill_and_cancel_over_the_api_and_cli() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.csv");
    let work = dir.path().join("work");
    let expected = write_orders(&input);
    // The README's example workflow (created at the end) names paths relative to the
    // master's directory: allow it besides the test's own.
    let cwd = std::env::current_dir().unwrap();
    let m = MasterProcess::start(
        &dir.path().join("data"),
        &[
            "--allow-path",
            dir.path().to_str().unwrap(),
            "--allow-path",
            cwd.to_str().unwrap(),
        ],
    );
    let mut body = workflow_body(&input, &work);
    body["enabled"] = json!(false);
    body["schedule"] = json!({"cron": "0 0 3 * * *", "timezone": "America/New_York"});
    let (s, v) = m.request("POST", "/api/v1/workflows", Some(body));
    assert_eq!(s, 201, "{v}");

    // Manual trigger with a parameter.
    let (s, run) = m.request(
        "POST",
        "/api/v1/workflows/nightly/runs",
        Some(json!({"parameters": {"min_amount": "20"}})),
    );
    assert!(s == 201 || s == 202, "{s} {run}");
    let run_id = run["run_id"].as_str().unwrap().to_string();
    let done = m.wait_for(60, "the manual run to end", || {
        let r = m.get(&format!("/api/v1/workflows/nightly/runs/{run_id}"));
        (r["state"] != "running" && r["state"] != "queued").then_some(r)
    });
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["trigger"], "manual");
    let ts = done["parameters"]["ts_nodash"].as_str().unwrap();
    assert_eq!(read_export(&work.join(ts).join("export")), expected);

    // Backfill three days through the CLI: one run per daily tick at 03:00 New York.
    let o = m.cli(&[
        "workflow",
        "backfill",
        "nightly",
        "--start",
        "2026-03-07T00:00:00Z",
        "--end",
        "2026-03-10T00:00:00Z",
    ]);
    assert!(o.status.success(), "{}", sluice_tests::stderr(&o));
    let backfilled = m.wait_for(120, "the backfill to end", || {
        let rs: Vec<Value> = m
            .get("/api/v1/workflows/nightly/runs")
            .as_array()
            .cloned()
            .unwrap()
            .into_iter()
            .filter(|r| r["trigger"] == "backfill")
            .collect();
        (rs.len() == 3 && rs.iter().all(|r| r["state"] == "succeeded")).then_some(rs)
    });
    let mut times: Vec<String> = backfilled
        .iter()
        .map(|r| r["logical_time"].as_str().unwrap().to_string())
        .collect();
    times.sort();
    // 2026-03-08 is the US spring-forward day: 03:00 EST, then EDT.
    assert_eq!(
        times,
        [
            "2026-03-07T08:00:00.000Z",
            "2026-03-08T07:00:00.000Z",
            "2026-03-09T07:00:00.000Z"
        ],
        "{backfilled:?}"
    );
    let mut ds: Vec<&str> = backfilled
        .iter()
        .map(|r| r["parameters"]["ds"].as_str().unwrap())
        .collect();
    ds.sort();
    assert_eq!(ds, ["2026-03-07", "2026-03-08", "2026-03-09"]);
    // Run ids cannot be guessed: each ends in 128 bits (32 hex digits) that differ from
    // run to run, the manual run's random, the scheduled ones' keyed with a secret of
    // the workflow — knowing one run's id and the next tick does not give the next id.
    let mut tails: Vec<String> = backfilled
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .chain([run_id.clone()])
        .map(|id| {
            let tail = id.rsplit('-').next().unwrap().to_string();
            assert!(
                tail.len() == 32 && tail.bytes().all(|b| b.is_ascii_hexdigit()),
                "{id}"
            );
            tail
        })
        .collect();
    tails.sort();
    tails.dedup();
    assert_eq!(tails.len(), 4, "{tails:?}");

    // Cancel: a run whose first task cannot finish (an unbounded source) is cancelled;
    // its task ends cancelled and the rest are skipped.
    let (s, v) = m.request(
        "PATCH",
        "/api/v1/workflows/nightly",
        Some(json!({"tasks": [
            {"id": "forever", "sql": "CREATE TABLE g (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '100000000000', 'rows-per-second' = '10');\nCREATE TABLE b (a BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO b SELECT a FROM g;\n"},
            {"id": "after", "depends_on": ["forever"], "sql": "CREATE TABLE g (a BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');\nCREATE TABLE b (a BIGINT) WITH ('connector' = 'blackhole');\nINSERT INTO b SELECT a FROM g;\n"}
        ]})),
    );
    assert_eq!(s, 200, "{v}");
    let o = m.cli(&["workflow", "trigger", "nightly", "--json"]);
    assert!(o.status.success(), "{}", sluice_tests::stderr(&o));
    let run: Value = serde_json::from_slice(&o.stdout).unwrap();
    let run_id = run["run_id"].as_str().unwrap().to_string();
    m.wait_for(30, "the forever task to run", || {
        let r = m.get(&format!("/api/v1/workflows/nightly/runs/{run_id}"));
        (r["tasks"][0]["state"] == "running").then_some(())
    });
    let o = m.cli(&["workflow", "cancel", "nightly", &run_id]);
    assert!(o.status.success(), "{}", sluice_tests::stderr(&o));
    let r = m.wait_for(30, "the cancel to take", || {
        let r = m.get(&format!("/api/v1/workflows/nightly/runs/{run_id}"));
        (r["state"] == "cancelled").then_some(r)
    });
    assert_eq!(r["tasks"][0]["state"], "cancelled", "{r}");
    assert_eq!(r["tasks"][1]["state"], "skipped", "{r}");
    m.wait_for(15, "no live workflow instance", || {
        live_workflow_instances(&m).is_empty().then_some(())
    });

    // The README's example workflow is accepted as it is.
    let example = sluice_tests::workspace_root().join("examples/nightly_workflow.json");
    let o = m.cli(&["workflow", "create", "example", example.to_str().unwrap()]);
    assert!(o.status.success(), "{}", sluice_tests::stderr(&o));
    let o = m.cli(&["workflow", "list"]);
    assert!(sluice_tests::stdout(&o).contains("Europe/Berlin"));
}

/// A parameter is a value, never SQL: one that closes its string literal and adds a
/// `CREATE TABLE … INSERT INTO` stays a string (the run writes nothing anywhere else),
/// and so does one that adds statements after a number.
#[test]
fn a_triggered_parameter_stays_a_value_and_cannot_add_statements() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("orders.csv");
    std::fs::write(&input, "id,region,amount\n1,r1,10\n2,r2,20\n3,r1,30\n").unwrap();
    let work = dir.path().join("work");
    let evil = dir.path().join("evil");
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    let (s, v) = m.request(
        "POST",
        "/api/v1/workflows",
        Some(json!({
            "name": "params",
            "enabled": false,
            "schedule": {"cron": "0 0 3 * * *", "timezone": "UTC"},
            "parameters": {"region": "r1", "min_amount": "0"},
            "tasks": [{"id": "pick", "sql": format!(
                "CREATE TABLE orders (id BIGINT, region VARCHAR, amount BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
                 CREATE TABLE picked (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}/{{{{ run_id }}}}', 'format' = 'csv');\n\
                 INSERT INTO picked SELECT id FROM orders WHERE region = '{{{{ region }}}}' AND amount >= {{{{ min_amount }}}};\n",
                input.display(), work.display())}]
        })),
    );
    assert_eq!(s, 201, "{v}");
    let trigger = |params: Value| {
        m.request(
            "POST",
            "/api/v1/workflows/params/runs",
            Some(json!({ "parameters": params })),
        )
    };
    let finished = |run: &Value| {
        let run_id = run["run_id"].as_str().unwrap().to_string();
        m.wait_for(60, "the run to end", || {
            let r = m.get(&format!("/api/v1/workflows/params/runs/{run_id}"));
            (r["state"] != "running" && r["state"] != "queued").then_some(r)
        })
    };
    let rows = |run: &Value| -> Vec<String> {
        let dir = work.join(run["run_id"].as_str().unwrap());
        let mut out: Vec<String> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".csv"))
            .flat_map(|e| {
                std::fs::read_to_string(e.path())
                    .unwrap()
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    };
    // The defaults: the rows of region r1.
    let (s, run) = trigger(json!({}));
    assert_eq!(s, 201, "{run}");
    let done = finished(&run);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(rows(&run), ["1", "3"]);

    // Closing the literal and adding statements: the value is compared as a string.
    let injected = format!(
        "r1'; CREATE TABLE evil (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'); INSERT INTO evil SELECT id FROM orders; --",
        evil.display()
    );
    let (s, run) = trigger(json!({ "region": injected }));
    assert_eq!(s, 201, "{run}");
    let done = finished(&run);
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(rows(&run).is_empty(), "no region is named that");
    assert!(!evil.exists(), "the injected INSERT ran");

    // Statements after a number: the value becomes one string literal, which is no
    // number (the trigger is refused, or the run fails on it), and adds nothing.
    let evil2 = dir.path().join("evil2");
    let injected = format!(
        "0; CREATE TABLE evil2 (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv'); INSERT INTO evil2 SELECT id FROM orders; --",
        evil2.display()
    );
    let (s, v) = trigger(json!({ "min_amount": injected }));
    match s {
        422 => assert_eq!(v["details"]["task"], "pick", "{v}"),
        201 => {
            let done = finished(&v);
            assert_eq!(done["state"], "failed", "{done}");
        }
        other => panic!("{other}: {v}"),
    }
    assert!(!evil2.exists(), "the injected INSERT ran");
}
