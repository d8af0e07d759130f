//! Tests of the pure history step and its queries: bounds hold for any number of jobs,
//! downsampling keeps counters' totals, rates come out of counters.

use super::query::{job_series, Range};
use super::*;

fn obs(at_ms: i64, jobs: usize, v: f64) -> Observation {
    Observation {
        at_ms,
        jobs: (0..jobs)
            .map(|j| JobSample {
                job: format!("job{j:03}"),
                values: [("rows_in".to_string(), v), ("rss_bytes".to_string(), 1e6)].into(),
                operator_state: [("reduce-1".to_string(), 4096.0)].into(),
                operator_rows: Default::default(),
            })
            .collect(),
    }
}

fn cfg() -> HistoryConfig {
    HistoryConfig {
        sample_interval_ms: 1_000,
        raw_window_ms: 10_000,
        coarse_step_ms: 5_000,
        retention_ms: 60_000,
        max_points_per_series: 20,
        max_series: 50,
    }
}

#[test]
fn a_hundred_jobs_stay_within_the_bounds() {
    let cfg = cfg();
    let mut state = HistoryState::default();
    for i in 0..300 {
        let stepped = step(state, &obs(i * 1_000, 100, i as f64 * 10.0), &cfg);
        state = stepped.state;
        let u = state.usage(&cfg);
        assert!(u.series <= cfg.max_series, "{u:?}");
        assert!(u.points <= cfg.max_points(), "{u:?}");
        assert!(u.bytes <= u.max_bytes, "{u:?}");
        assert!(state
            .series
            .values()
            .all(|s| s.len() <= cfg.max_points_per_series));
    }
    // The bound was reached (200 series offered), not merely respected, and the series
    // held kept their history rather than giving way to newcomers every sample.
    assert_eq!(state.usage(&cfg).series, cfg.max_series);
    assert_eq!(state.usage(&cfg).points, cfg.max_points());
}

#[test]
fn old_points_fold_into_coarse_buckets_and_expire() {
    let cfg = HistoryConfig {
        max_points_per_series: 1_000,
        ..cfg()
    };
    let mut state = HistoryState::default();
    for i in 0..100 {
        state = step(state, &obs(i * 1_000, 1, i as f64), &cfg).state;
    }
    let s = &state.series[&SeriesKey {
        job: "job000".into(),
        metric: "rows_in".into(),
        operator: String::new(),
    }];
    // Raw: the last 10 s; coarse: 5 s buckets back to 60 s.
    assert!(s.raw.iter().all(|p| p.0 >= 99_000 - 10_000));
    assert!(s.coarse.iter().all(|p| p.0 >= 99_000 - 60_000));
    assert!(s.coarse.len() <= 60_000 / 5_000 + 1, "{:?}", s.coarse);
    // The last sample of each bucket is kept: counters stay exact at bucket ends.
    assert!(s.coarse.iter().all(|(t, v)| *v == (*t / 1_000) as f64));
    assert!(s.coarse.windows(2).all(|w| w[0].0 / 5_000 < w[1].0 / 5_000));
}

#[test]
fn counters_become_rates_and_resets_count_from_zero() {
    let cfg = cfg();
    let mut state = HistoryState::default();
    // 100 rows/s for 5 s, then a new process restarts the count at 50.
    for (i, v) in [0.0, 100.0, 200.0, 300.0, 400.0, 50.0].iter().enumerate() {
        state = step(state, &obs(i as i64 * 1_000, 1, *v), &cfg).state;
    }
    let range = Range::new(Some(0), Some(5_000), Some(1_000), 5_000, 1_000).unwrap();
    let series = job_series(&state, "job000", range);
    let rows_in = series.iter().find(|s| s.name == "rows_in").unwrap();
    assert_eq!(rows_in.kind, Kind::Counter);
    assert_eq!(
        rows_in.points,
        vec![
            (1_000, 100.0),
            (2_000, 100.0),
            (3_000, 100.0),
            (4_000, 100.0),
            (5_000, 50.0)
        ]
    );
    let rss = series.iter().find(|s| s.name == "rss_bytes").unwrap();
    assert_eq!(rss.points.len(), 6);
    let op = series
        .iter()
        .find(|s| s.name == OPERATOR_STATE_BYTES)
        .unwrap();
    assert_eq!(op.labels["operator"], "reduce-1");
    assert_eq!(op.labels["job"], "job000");
    assert_eq!(op.points.last(), Some(&(5_000, 4096.0)));
    assert!(!rss.labels.contains_key("operator"));
    assert!(job_series(&state, "job001", range).is_empty());
}

#[test]
fn bad_ranges_are_refused() {
    assert!(Range::new(Some(10), Some(5), None, 0, 1).is_err());
    assert!(Range::new(Some(0), Some(5), Some(0), 0, 1).is_err());
    assert!(Range::new(Some(0), Some(1_000_000_000), Some(1), 0, 1).is_err());
    assert!(Range::new(Some(-5), Some(5), None, 0, 1).is_err());
    let r = Range::new(None, None, None, 1_000_000, 1_000).unwrap();
    assert_eq!((r.from, r.to, r.step), (100_000, 1_000_000, 3_000));
}

#[test]
fn series_round_trip_through_the_encoding() {
    let s = Series {
        coarse: vec![(1, 2.5), (5, -1.0)],
        raw: vec![(7, 1e9)],
    };
    assert_eq!(persist::decode(&persist::encode(&s)), Some(s));
    assert_eq!(persist::decode(&[1, 0, 0, 0]), None);
}

#[test]
fn at_the_series_bound_newcomers_give_way_to_series_with_history() {
    let cfg = HistoryConfig {
        max_series: 2,
        ..cfg()
    };
    let sample = |at_ms: i64, jobs: &[&str]| Observation {
        at_ms,
        jobs: jobs
            .iter()
            .map(|j| JobSample {
                job: j.to_string(),
                values: [("rows_in".to_string(), 1.0)].into(),
                operator_state: Default::default(),
                operator_rows: Default::default(),
            })
            .collect(),
    };
    let mut state = HistoryState::default();
    for t in 0..5 {
        state = step(state, &sample(t * 1_000, &["a"]), &cfg).state;
    }
    let stepped = step(state, &sample(5_000, &["a", "b", "c"]), &cfg);
    let held: Vec<(&str, usize)> = stepped
        .state
        .series
        .iter()
        .map(|(k, s)| (k.job.as_str(), s.len()))
        .collect();
    assert_eq!(held, vec![("a", 6), ("c", 1)]);
    assert_eq!(stepped.removed.len(), 1);
}

#[test]
fn the_history_survives_a_reopen_of_its_store() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cfg();
    let state = {
        let db = sled::open(dir.path()).unwrap();
        let tree = persist::HistoryTree::open(&db).unwrap();
        let mut state = HistoryState::default();
        for i in 0..30 {
            let stepped = step(state, &obs(i * 1_000, 3, i as f64), &cfg);
            tree.save(&stepped).unwrap();
            state = stepped.state;
        }
        tree.flush().unwrap();
        state
    };
    let db = sled::open(dir.path()).unwrap();
    assert_eq!(
        persist::HistoryTree::open(&db).unwrap().load().unwrap(),
        state
    );
}
