//! A window join (two window aggregates joined on their window end, Nexmark q8's shape)
//! runs as an interval join bounded to [0 ms, 0 ms] — each side's rows freed once the
//! other side's watermark passes their window — and gives the rows of joining the two
//! aggregates' own results, over out-of-order watermarked files, at 1 and 3 workers.

use sluice_tests::{sluice, stderr, stdout};
use std::collections::BTreeMap;
use std::path::Path;

/// `n` rows `k,ts` of keys 0..7, times 20 ms apart from 2026-03-01 with up to 2 s of
/// disorder (the watermark allows 5 s).
fn write_rows(path: &Path, seed: u64, n: u64) {
    let mut x = seed;
    let mut out = String::new();
    for i in 0..n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = 1_772_323_200_000i64 + (i as i64) * 20 - (x % 2_000) as i64;
        let secs = t / 1000;
        let ms = t % 1000;
        let dt = chrono::DateTime::from_timestamp(secs, 0)
            .unwrap()
            .naive_utc();
        out.push_str(&format!(
            "{},{}.{ms:03}\n",
            (x >> 20) % 7,
            dt.format("%Y-%m-%d %H:%M:%S")
        ));
    }
    std::fs::write(path, out).unwrap();
}

fn ddl(dir: &Path) -> String {
    let table = |name: &str| {
        format!(
            "CREATE TABLE {name} (k INT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts - INTERVAL '5' SECOND) \
             WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv');\n",
            dir.join(format!("{name}.csv")).display()
        )
    };
    table("events") + &table("clicks")
}

fn agg(table: &str) -> String {
    format!(
        "SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE {table}, \
         DESCRIPTOR(ts), INTERVAL '10' SECOND)) GROUP BY window_start, window_end, k"
    )
}

fn run(dir: &Path, name: &str, sql: &str, workers: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, sql).unwrap();
    let out = sluice(
        dir,
        &[
            "run",
            path.to_str().unwrap(),
            "-w",
            workers,
            "-f",
            "csv",
            "-q",
            "--batch-size",
            "40",
        ],
    );
    assert!(out.status.success(), "{sql}\n{}", stderr(&out));
    stdout(&out)
}

fn lines(text: &str) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for l in text.lines().skip(1) {
        *m.entry(l.to_string()).or_default() += 1;
    }
    m
}

#[test]
fn a_window_join_frees_closed_windows_and_equals_joining_the_aggregates() {
    let dir = tempfile::tempdir().unwrap();
    write_rows(&dir.path().join("events.csv"), 0x9e37_79b9, 6_000);
    write_rows(&dir.path().join("clicks.csv"), 0x7f4a_7c15, 4_000);
    let tables = ddl(dir.path());
    let join = format!(
        "SELECT e.window_end, e.k, e.c, c.c AS n FROM ({}) e JOIN ({}) c \
         ON e.k = c.k AND e.window_end = c.window_end",
        agg("events"),
        agg("clicks")
    );
    let explained = run(
        dir.path(),
        "explain.sql",
        &format!("{tables}EXPLAIN PHYSICAL {join};\n"),
        "1",
    );
    assert!(
        explained.contains("strategy=interval(window_end - window_end in [0ms, 0ms]"),
        "{explained}"
    );
    // The oracle: each aggregate's own rows, joined here.
    let side = |table: &str| -> Vec<Vec<String>> {
        run(
            dir.path(),
            &format!("{table}.sql"),
            &format!("{tables}{};\n", agg(table)),
            "1",
        )
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
    };
    let (events, clicks) = (side("events"), side("clicks"));
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for e in &events {
        for c in &clicks {
            // window_start, window_end, k, c
            if e[1] == c[1] && e[2] == c[2] {
                *want
                    .entry(format!("{},{},{},{}", e[1], e[2], e[3], c[3]))
                    .or_default() += 1;
            }
        }
    }
    assert!(want.len() > 40, "{} joined rows", want.len());
    for workers in ["1", "3"] {
        let got = lines(&run(
            dir.path(),
            "join.sql",
            &format!("{tables}{join};\n"),
            workers,
        ));
        assert_eq!(got, want, "{workers} workers");
    }
}

/// Nexmark q5's shape: per key and HOP window its count, joined on the window with the
/// window's largest count (an aggregate grouped by the window columns of another window
/// aggregate: time-keyed, emitted once per window) where the count reaches it. The
/// rows equal the per-key aggregate's own result filtered by its per-window maximum.
#[test]
fn hot_keys_per_window_like_nexmark_q5_equal_the_aggregate_filtered_by_its_maximum() {
    let dir = tempfile::tempdir().unwrap();
    write_rows(&dir.path().join("events.csv"), 0x2545_f491, 8_000);
    write_rows(&dir.path().join("clicks.csv"), 0x1234_5678, 10);
    let tables = ddl(dir.path());
    let per_key = "SELECT k, COUNT(*) AS num, window_start AS starttime, window_end AS endtime \
         FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) \
         GROUP BY k, window_start, window_end";
    let hot = format!(
        "SELECT a.k, a.num, a.endtime FROM ({per_key}) a JOIN (\
           SELECT MAX(num) AS maxn, starttime, endtime FROM ({per_key}) GROUP BY starttime, endtime) b \
         ON a.starttime = b.starttime AND a.endtime = b.endtime AND a.num >= b.maxn"
    );
    let explained = run(
        dir.path(),
        "explain.sql",
        &format!("{tables}EXPLAIN PHYSICAL {hot};\n"),
        "1",
    );
    assert!(
        explained.contains("strategy=time-keyed(")
            && explained.contains("strategy=interval(endtime - endtime in [0ms, 0ms]")
            && !explained.contains("Reduce"),
        "{explained}"
    );
    // The oracle: the per-key counts, filtered here by each window's maximum.
    let rows: Vec<Vec<String>> = run(
        dir.path(),
        "per_key.sql",
        &format!("{tables}{per_key};\n"),
        "1",
    )
    .lines()
    .skip(1)
    .map(|l| l.split(',').map(String::from).collect())
    .collect();
    let mut max: BTreeMap<&str, i64> = BTreeMap::new();
    for r in &rows {
        let n: i64 = r[1].parse().unwrap();
        let m = max.entry(r[3].as_str()).or_insert(n);
        *m = (*m).max(n);
    }
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        if r[1].parse::<i64>().unwrap() >= max[r[3].as_str()] {
            *want
                .entry(format!("{},{},{}", r[0], r[1], r[3]))
                .or_default() += 1;
        }
    }
    assert!(want.len() > 50, "{} rows", want.len());
    for workers in ["1", "3"] {
        let got = lines(&run(
            dir.path(),
            "hot.sql",
            &format!("{tables}{hot};\n"),
            workers,
        ));
        assert_eq!(got, want, "{workers} workers");
    }
}
