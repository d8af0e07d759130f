//! `sluice run` as a user drives it: exit codes, output formats, files written and
//! read back, event-time windows against a batch recomputation, worker counts.

use sluice_tests::{metrics, sluice, stderr, stdout};
use std::collections::BTreeMap;
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

fn people_csv(dir: &Path) -> String {
    let data = dir.join("people");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("a.csv"),
        "id,name,score\n1,ann,10.5\n2,bob,\n3,\"c, d\",7.25\n",
    )
    .unwrap();
    format!(
        "CREATE TABLE people (id INT, name VARCHAR, score DOUBLE) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n",
        data.display()
    )
}

#[test]
fn user_errors_are_one_line_with_position_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let ddl = people_csv(dir.path());
    let cases = [
        ("SELECT nme FROM people;", "column"),
        ("SELECT * FROM nowhere;", "nowhere"),
        ("SELECT id + name FROM people;", ""),
        ("SELEC id FROM people;", ""),
    ];
    for (query, needle) in cases {
        let script = write(dir.path(), "bad.sql", &format!("{ddl}\n{query}\n"));
        let out = sluice(dir.path(), &["run", &script]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{query}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "{query}: not one line: {err}"
        );
        assert!(
            err.contains("line 3, column"),
            "{query}: no position: {err}"
        );
        assert!(err.to_lowercase().contains(needle), "{query}: {err}");
    }
    let out = sluice(dir.path(), &["run", "/no/such/file.sql"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn select_prints_csv_json_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let ddl = people_csv(dir.path());
    let script = write(
        dir.path(),
        "q.sql",
        &format!("{ddl}SELECT id, name, score FROM people ORDER BY id;\n"),
    );

    let out = sluice(dir.path(), &["run", &script, "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "id,name,score\n1,ann,10.5\n2,bob,\n3,\"c, d\",7.25\n"
    );

    let out = sluice(dir.path(), &["run", &script, "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "{\"id\":1,\"name\":\"ann\",\"score\":10.5}\n{\"id\":2,\"name\":\"bob\",\"score\":null}\n{\"id\":3,\"name\":\"c, d\",\"score\":7.25}\n"
    );

    let out = sluice(dir.path(), &["run", &script, "--format", "table"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("| id | name | score |"), "{text}");
    assert!(text.ends_with("3 rows\n"), "{text}");
}

fn nexmark_bid_ddl(
    name: &str,
    events: u64,
    out_of_order_ms: u64,
    watermark_delay_ms: Option<u64>,
) -> String {
    let watermark = watermark_delay_ms
        .map(|d| {
            format!(
                ",\n  WATERMARK FOR dateTime AS dateTime - INTERVAL '{}' SECOND",
                d as f64 / 1000.0
            )
        })
        .unwrap_or_default();
    format!(
        "CREATE TABLE {name} (auction BIGINT, bidder BIGINT, price BIGINT, dateTime TIMESTAMP(3){watermark}) WITH (\n  'connector' = 'nexmark', 'nexmark.table' = 'bid', 'nexmark.events' = '{events}',\n  'nexmark.seed' = '7', 'nexmark.max-out-of-order' = '{out_of_order_ms}');\n"
    )
}

const WINDOW_QUERY: &str = "SELECT window_start, window_end, auction % 10 AS bucket, COUNT(*) AS n, SUM(price) AS total, MAX(price) AS top
FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '1' SECOND))
GROUP BY window_start, window_end, auction % 10";

fn csv_rows(text: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for line in text.lines().skip(1) {
        *m.entry(line.to_string()).or_insert(0) += 1;
    }
    m
}

#[test]
fn event_time_windows_equal_batch_recomputation_and_count_late_rows() {
    let dir = tempfile::tempdir().unwrap();
    // Streaming: watermark 3 s behind, input up to 2 s out of order: nothing is late.
    let streaming = write(
        dir.path(),
        "streaming.sql",
        &format!(
            "{}{WINDOW_QUERY};\n",
            nexmark_bid_ddl("bid", 20_000, 2_000, Some(3_000))
        ),
    );
    // Batch: the same events with no watermark: a plain bounded aggregation.
    let batch = write(
        dir.path(),
        "batch.sql",
        &format!(
            "{}{WINDOW_QUERY};\n",
            nexmark_bid_ddl("bid", 20_000, 2_000, None)
        ),
    );
    let explain = sluice(dir.path(), &["explain", &streaming, "--stage", "physical"]);
    assert!(
        stdout(&explain).contains("WindowAggregate"),
        "{}",
        stdout(&explain)
    );
    let explain = sluice(dir.path(), &["explain", &batch, "--stage", "physical"]);
    assert!(
        !stdout(&explain).contains("WindowAggregate"),
        "{}",
        stdout(&explain)
    );

    let s = sluice(
        dir.path(),
        &["run", &streaming, "--format", "csv", "--metrics"],
    );
    assert!(s.status.success(), "{}", stderr(&s));
    let b = sluice(dir.path(), &["run", &batch, "--format", "csv", "--metrics"]);
    assert!(b.status.success(), "{}", stderr(&b));
    let (srows, brows) = (csv_rows(&stdout(&s)), csv_rows(&stdout(&b)));
    assert!(brows.len() > 20, "too few windows: {}", brows.len());
    assert_eq!(srows, brows);
    assert_eq!(metrics(&s)["late_rows"], 0);

    // A watermark with no slack on out-of-order input: some rows are late. They are
    // counted, and everything not late is in the windows.
    let total_late = write(
        dir.path(),
        "late_total.sql",
        &format!(
            "{}SELECT window_start, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '1' SECOND)) GROUP BY window_start, window_end;\n",
            nexmark_bid_ddl("bid", 20_000, 2_000, Some(0))
        ),
    );
    let l = sluice(
        dir.path(),
        &["run", &total_late, "--format", "csv", "--metrics"],
    );
    assert!(l.status.success(), "{}", stderr(&l));
    let counted: u64 = stdout(&l)
        .lines()
        .skip(1)
        .map(|line| line.rsplit(',').next().unwrap().parse::<u64>().unwrap())
        .sum();
    let late_rows = metrics(&l)["late_rows"].as_u64().unwrap();
    assert!(
        late_rows > 0,
        "expected late rows with a zero-delay watermark"
    );
    // 20,000 events hold 18,400 bids (46 of every 50 events).
    assert_eq!(counted + late_rows, 18_400);
}

#[test]
fn results_are_identical_for_any_worker_count() {
    let dir = tempfile::tempdir().unwrap();
    let script = write(
        dir.path(),
        "w.sql",
        &format!(
            "{}{WINDOW_QUERY};\n",
            nexmark_bid_ddl("bid", 20_000, 2_000, Some(3_000))
        ),
    );
    let one = sluice(
        dir.path(),
        &["run", &script, "--format", "csv", "--workers", "1"],
    );
    assert!(one.status.success(), "{}", stderr(&one));
    for workers in ["2", "4"] {
        let many = sluice(
            dir.path(),
            &["run", &script, "--format", "csv", "--workers", workers],
        );
        assert!(many.status.success(), "{}", stderr(&many));
        assert_eq!(
            csv_rows(&stdout(&one)),
            csv_rows(&stdout(&many)),
            "workers {workers}"
        );
    }
}

#[test]
fn insert_into_parquet_then_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let quickstart =
        std::fs::read_to_string(sluice_tests::workspace_root().join("examples/quickstart.sql"))
            .unwrap();
    let small = quickstart.replace("'nexmark.events' = '1000000'", "'nexmark.events' = '50000'");
    assert_ne!(small, quickstart, "the quickstart example changed shape");
    let script = write(dir.path(), "quickstart.sql", &small);
    let out = sluice(dir.path(), &["run", &script, "--workers", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let files: Vec<_> = std::fs::read_dir(dir.path().join("files/bid_stats"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    assert!(!files.is_empty(), "no parquet files written");

    let top =
        std::fs::read_to_string(sluice_tests::workspace_root().join("examples/top_auctions.sql"))
            .unwrap();
    let script = write(dir.path(), "top.sql", &top);
    let out = sluice(dir.path(), &["run", &script, "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(text.lines().count(), 11, "{text}");

    // The windows' bid counts add up to the bids over 100 the generator produced.
    let check = write(
        dir.path(),
        "check.sql",
        &format!(
            "{}{}",
            &top[top.find("CREATE TABLE").unwrap()..top.find("SELECT").unwrap()],
            "SELECT SUM(bids) AS bids FROM bid_stats;\n"
        ),
    );
    let direct = write(
        dir.path(),
        "direct.sql",
        &format!(
            "{}SELECT COUNT(*) AS bids FROM bid WHERE price > 100;\n",
            nexmark_like_quickstart(&small)
        ),
    );
    let a = sluice(dir.path(), &["run", &check, "--format", "csv"]);
    let b = sluice(dir.path(), &["run", &direct, "--format", "csv"]);
    assert!(
        a.status.success() && b.status.success(),
        "{} {}",
        stderr(&a),
        stderr(&b)
    );
    assert_eq!(stdout(&a), stdout(&b));
}

/// The quickstart's `bid` table DDL, without the watermark (a bounded batch read).
fn nexmark_like_quickstart(script: &str) -> String {
    let start = script.find("CREATE TABLE bid (").unwrap();
    let end = start + script[start..].find(");").unwrap() + 2;
    let ddl = &script[start..end];
    let wm_start = ddl.find(",\n    WATERMARK").unwrap();
    let wm_end = wm_start + ddl[wm_start..].find("\n)").unwrap();
    format!("{}{}\n", &ddl[..wm_start], &ddl[wm_end..])
}

#[test]
fn bad_records_follow_the_table_policy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("events");
    std::fs::create_dir_all(&data).unwrap();
    let mut text = Vec::new();
    for i in 0..100 {
        match i % 10 {
            3 => text.extend_from_slice(b"{\"id\": \"not a number\", \"name\": \"x\"}\n"),
            7 => text.extend_from_slice(b"{\"id\": 7, \"name\": \n"),
            9 => text.extend_from_slice(b"{\"id\": 9, \"name\": \"\xff\xfe\"}\n"),
            _ => {
                text.extend_from_slice(format!("{{\"id\": {i}, \"name\": \"n{i}\"}}\n").as_bytes())
            }
        }
    }
    std::fs::write(data.join("part-0.json"), &text).unwrap();
    let table = |policy: &str| {
        format!(
            "CREATE TABLE events (id BIGINT, name VARCHAR) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'json', 'format.on-error' = '{policy}'{});\nSELECT COUNT(*) AS n, SUM(id) AS s FROM events;\n",
            data.display(),
            if policy == "dead-letter" {
                format!(", 'dead-letter.path' = '{}'", dir.path().join("dlq").display())
            } else {
                String::new()
            }
        )
    };
    let good_sum: u64 = (0..100u64).filter(|i| ![3, 7, 9].contains(&(i % 10))).sum();

    let fail = write(dir.path(), "fail.sql", &table("fail"));
    let out = sluice(dir.path(), &["run", &fail]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("part-0.json:4"), "{}", stderr(&out));

    let skip = write(dir.path(), "skip.sql", &table("skip"));
    let out = sluice(dir.path(), &["run", &skip, "--format", "csv", "--metrics"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("n,s\n70,{good_sum}\n"));
    assert_eq!(metrics(&out)["bad_records"], 30);

    let dl = write(dir.path(), "dl.sql", &table("dead-letter"));
    let out = sluice(dir.path(), &["run", &dl, "--format", "csv", "--metrics"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("n,s\n70,{good_sum}\n"));
    assert_eq!(metrics(&out)["dead_lettered"], 30);
    let mut lines = 0;
    for entry in std::fs::read_dir(dir.path().join("dlq")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert!(
                v["position"].as_str().unwrap().contains("part-0.json:"),
                "{line}"
            );
            assert!(!v["error"].as_str().unwrap().is_empty());
            lines += 1;
        }
    }
    assert_eq!(lines, 30);
}

/// Counters tell rows read by a source from rows that passed the filter pushed into it,
/// and `sluice run` prints one summary line on stderr even when nothing is a terminal
/// (here, with stdout and stderr captured): rows read, in and out, and where they went.
#[test]
fn run_reports_rows_read_and_filtered_apart_and_always_prints_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = write(
        dir.path(),
        "filtered.sql",
        &format!(
            "CREATE TABLE gen (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '100',
               'fields.id.kind' = 'sequence', 'fields.id.min' = '1', 'fields.id.max' = '100');
             CREATE TABLE sink (id BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');
             INSERT INTO sink SELECT id FROM gen WHERE id % 20 = 0;",
            out.display()
        ),
    );
    let r = sluice(dir.path(), &["run", &script, "--metrics"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let m = metrics(&r);
    assert_eq!(m["rows_read"], 100, "{m}");
    assert_eq!(m["rows_in"], 5, "{m}");
    assert_eq!(m["rows_out"], 5, "{m}");
    let err = stderr(&r);
    let summary = err
        .lines()
        .find(|l| l.starts_with("done in "))
        .unwrap_or_else(|| panic!("no summary line on stderr: {err}"));
    assert!(
        summary.contains("100 rows read, 5 rows in, 5 rows out")
            && summary.contains(&format!("sink (filesystem {})", out.display())),
        "{summary}"
    );
    // --quiet drops it.
    let q = sluice(dir.path(), &["run", &script, "--quiet"]);
    assert!(q.status.success(), "{}", stderr(&q));
    assert!(!stderr(&q).contains("done in "), "{}", stderr(&q));
}
