//! Event-time windows: TUMBLE/HOP assignment, WindowAggregate over out-of-order input
//! with a watermark (late rows counted, everything else equal to a batch
//! recomputation) and SESSION assignment.

mod common;

use common::*;
use sluice_catalogs::{SqlType, Watermark};
use sluice_compiler::{
    AggFunc, AggregateCall, Datum, PhysicalPlan, Row, WindowKind, WindowStrategy,
};
use sluice_dataflow::{run, Progress, RunOptions};
use std::collections::BTreeMap;
use std::sync::Arc;

const DELAY: i64 = 300;

/// Out-of-order events: (ts, key, value); ts drifts forward with jitter up to ±800ms.
fn events() -> Vec<Row> {
    let mut rng = Rng(0xdead_beef);
    (0..400)
        .map(|i| {
            let t = 1_000 + i * 25 + rng.next(1_600) as i64 - 800;
            vec![
                ts(t),
                s(["k1", "k2", "k3"][rng.next(3) as usize]),
                int(rng.next(100) as i64),
            ]
        })
        .collect()
}

fn table(env: &Env, rows: Vec<Row>) -> sluice_catalogs::TableDescriptor {
    env.table_with(
        "events",
        &[
            ("ts", SqlType::Timestamp),
            ("k", SqlType::Varchar),
            ("v", SqlType::BigInt),
        ],
        rows,
        vec![],
        Some(Watermark {
            column: 0,
            delay_ms: DELAY,
        }),
        &[],
    )
}

fn windowed(t: &sluice_catalogs::TableDescriptor, kind: WindowKind) -> PhysicalPlan {
    PhysicalPlan::WindowAggregate {
        // Derived by the dataflow, as for a plan serialized before strategies.
        strategies: Vec::new(),
        input: Box::new(PhysicalPlan::WindowAssign {
            input: Box::new(scan(t)),
            kind,
            time_col: 0,
        }),
        // k, window_start, window_end
        group_by: vec![1, 3, 4],
        aggs: vec![
            AggregateCall {
                func: AggFunc::Count,
                arg: None,
                distinct: false,
                ty: SqlType::BigInt,
            },
            AggregateCall {
                func: AggFunc::Sum,
                arg: Some(2),
                distinct: false,
                ty: SqlType::BigInt,
            },
            AggregateCall {
                func: AggFunc::Max,
                arg: Some(2),
                distinct: false,
                ty: SqlType::BigInt,
            },
        ],
        window_end_col: 4,
        strategy: sluice_compiler::WindowStrategy::Generic,
        preaggregate: false,
    }
}

/// `plan` (a window aggregate) with each input batch pre-aggregated before the
/// exchange (`sluice_compiler::partial`), as `lower` plans it for running states.
fn preaggregated(mut plan: PhysicalPlan) -> PhysicalPlan {
    if let PhysicalPlan::WindowAggregate { preaggregate, .. } = &mut plan {
        *preaggregate = true;
    }
    plan
}

/// `windowed` for a HOP run by pane: the assignment is a TUMBLE of gcd(size, slide)
/// and the aggregate assembles windows from panes, as `lower` plans it.
fn windowed_by_pane(
    t: &sluice_catalogs::TableDescriptor,
    slide_ms: i64,
    size_ms: i64,
) -> PhysicalPlan {
    fn gcd(a: i64, b: i64) -> i64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let pane_ms = gcd(size_ms, slide_ms);
    let PhysicalPlan::WindowAggregate {
        group_by,
        aggs,
        window_end_col,
        ..
    } = windowed(t, WindowKind::Tumble { size_ms: pane_ms })
    else {
        unreachable!()
    };
    PhysicalPlan::WindowAggregate {
        // Derived by the dataflow, as for a plan serialized before strategies.
        strategies: Vec::new(),
        input: Box::new(PhysicalPlan::WindowAssign {
            input: Box::new(scan(t)),
            kind: WindowKind::Tumble { size_ms: pane_ms },
            time_col: 0,
        }),
        group_by,
        aggs,
        window_end_col,
        strategy: WindowStrategy::HopByPane {
            slide_ms,
            size_ms,
            pane_ms,
            start_col: 3,
            time_col: None,
        },
        preaggregate: false,
    }
}

fn windows(kind: WindowKind, t: i64) -> Vec<(i64, i64)> {
    match kind {
        WindowKind::Tumble { size_ms } => {
            let start = t.div_euclid(size_ms) * size_ms;
            vec![(start, start + size_ms)]
        }
        WindowKind::Hop { slide_ms, size_ms } => {
            // Every start k*slide with start <= t < start + size, by brute force.
            let lo = (t - size_ms).div_euclid(slide_ms) - 1;
            let hi = t.div_euclid(slide_ms) + 1;
            (lo..=hi)
                .map(|k| (k * slide_ms, k * slide_ms + size_ms))
                .filter(|(s, e)| *s <= t && t < *e)
                .collect()
        }
        WindowKind::Session { .. } => unreachable!(),
    }
}

/// Batch recomputation. The test source gives worker `w` of `n` rows `i % n == w` in
/// polls of `batch` rows; a poll is emitted at that worker's watermark (max event time
/// of its earlier polls − delay, at least 0), and a window row is late when its window
/// end is not after that time.
fn oracle(rows: &[Row], kind: WindowKind, workers: usize, batch: usize) -> (Vec<Row>, u64) {
    let mut late = 0;
    let mut groups: BTreeMap<(Datum, i64, i64), Vec<i64>> = BTreeMap::new();
    for w in 0..workers {
        let mine: Vec<&Row> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| i % workers == w)
            .map(|(_, r)| r)
            .collect();
        let mut max: Option<i64> = None;
        for chunk in mine.chunks(batch) {
            let time = max.map_or(0, |m| (m - DELAY).max(0));
            for r in chunk {
                let (Datum::Timestamp(t), Datum::Int(v)) = (&r[0], &r[2]) else {
                    unreachable!()
                };
                for (start, end) in windows(kind, *t) {
                    if end <= time {
                        late += 1;
                    } else {
                        groups
                            .entry((r[1].clone(), start, end))
                            .or_default()
                            .push(*v);
                    }
                }
            }
            for r in chunk {
                if let Datum::Timestamp(t) = r[0] {
                    max = Some(max.map_or(t, |m| m.max(t)));
                }
            }
        }
    }
    let rows = groups
        .into_iter()
        .map(|((k, start, end), vs)| {
            vec![
                k,
                ts(start),
                ts(end),
                int(vs.len() as i64),
                int(vs.iter().sum()),
                int(*vs.iter().max().unwrap()),
            ]
        })
        .collect();
    (rows, late)
}

#[test]
fn window_aggregate_matches_batch_recomputation_and_counts_late_rows() {
    let env = Env::new();
    let rows = events();
    let t = table(&env, rows.clone());
    for kind in [
        WindowKind::Tumble { size_ms: 1_000 },
        WindowKind::Hop {
            slide_ms: 500,
            size_ms: 1_500,
        },
    ] {
        let mut total_late = 0;
        // Row by row, and pre-aggregated per batch (a late partial row counts the rows
        // it stands for).
        for plan in [windowed(&t, kind), preaggregated(windowed(&t, kind))] {
            let plan = collect(plan);
            for (workers, batch) in [(1, 7), (4, 7), (2, 1), (3, 50)] {
                let out = env.run_with(&plan, workers, batch).unwrap();
                let (expected, late) = oracle(&rows, kind, workers, batch);
                assert_eq!(
                    out.collected[0].rows, expected,
                    "{kind:?} at {workers} workers, batch {batch}"
                );
                assert_eq!(
                    out.metrics.late_rows, late,
                    "{kind:?} late rows at {workers} workers, batch {batch}"
                );
                assert_eq!(out.metrics.rows_in, rows.len() as u64);
                total_late += late;
            }
        }
        // The jitter is larger than the delay: some rows must have been late.
        assert!(
            total_late > 0,
            "{kind:?}: the test data produced no late rows"
        );
    }
}

#[test]
fn window_aggregate_in_order_input_is_identical_at_1_and_4_workers() {
    let env = Env::new();
    let mut rows = events();
    rows.sort();
    // One poll per worker holding everything: nothing can be late.
    let t = table(&env, rows.clone());
    let kind = WindowKind::Tumble { size_ms: 1_000 };
    let plan = collect(windowed(&t, kind));
    let one = env.run_with(&plan, 1, 10_000).unwrap();
    let four = env.run_with(&plan, 4, 10_000).unwrap();
    assert_eq!(one.collected, four.collected);
    assert_eq!(one.metrics.late_rows, 0);
    assert_eq!(one.collected[0].rows, oracle(&rows, kind, 1, 10_000).0);
}

#[test]
fn window_assign_tumble_and_hop() {
    let env = Env::new();
    let rows = vec![
        vec![ts(-1)],
        vec![ts(0)],
        vec![ts(1_999)],
        vec![Datum::Null],
    ];
    let t = env.table("w", &[("ts", SqlType::Timestamp)], rows);
    let tumble = PhysicalPlan::WindowAssign {
        input: Box::new(scan(&t)),
        kind: WindowKind::Tumble { size_ms: 1_000 },
        time_col: 0,
    };
    let w = |t: i64, s: i64, e: i64| vec![ts(t), ts(s), ts(e), ts(e - 1)];
    assert_eq!(
        env.collect_1_and_4(&collect(tumble)),
        vec![w(-1, -1_000, 0), w(0, 0, 1_000), w(1_999, 1_000, 2_000)]
    );
    let hop = PhysicalPlan::WindowAssign {
        input: Box::new(scan(&t)),
        kind: WindowKind::Hop {
            slide_ms: 500,
            size_ms: 1_000,
        },
        time_col: 0,
    };
    assert_eq!(
        env.collect_1_and_4(&collect(hop)),
        vec![
            w(-1, -1_000, 0),
            w(-1, -500, 500),
            w(0, -500, 500),
            w(0, 0, 1_000),
            w(1_999, 1_000, 2_000),
            w(1_999, 1_500, 2_500),
        ]
    );
}

#[test]
fn session_assign_matches_oracle() {
    let env = Env::new();
    let mut rng = Rng(99);
    let rows: Vec<Row> = (0..120)
        .map(|_| {
            vec![
                s(["a", "b"][rng.next(2) as usize]),
                ts(rng.next(5_000) as i64),
            ]
        })
        .collect();
    let t = env.table(
        "s",
        &[("k", SqlType::Varchar), ("ts", SqlType::Timestamp)],
        rows.clone(),
    );
    let gap = 150;
    let plan = PhysicalPlan::SessionAssign {
        input: Box::new(scan(&t)),
        partition_by: vec![0],
        time_col: 1,
        gap_ms: gap,
    };
    let got = env.collect_1_and_4(&collect(plan));

    let mut by_key: BTreeMap<Datum, Vec<i64>> = BTreeMap::new();
    for r in &rows {
        if let Datum::Timestamp(t) = r[1] {
            by_key.entry(r[0].clone()).or_default().push(t);
        }
    }
    let mut expected = Vec::new();
    for (k, mut times) in by_key {
        times.sort();
        let mut session: Vec<i64> = Vec::new();
        let flush = |session: &mut Vec<i64>, expected: &mut Vec<Row>| {
            if let (Some(first), Some(last)) = (session.first(), session.last()) {
                for t in session.iter() {
                    expected.push(vec![
                        k.clone(),
                        ts(*t),
                        ts(*first),
                        ts(last + gap),
                        ts(last + gap - 1),
                    ]);
                }
            }
            session.clear();
        };
        for t in times {
            if session.last().is_some_and(|l| t - l >= gap) {
                flush(&mut session, &mut expected);
            }
            session.push(t);
        }
        flush(&mut session, &mut expected);
    }
    assert_eq!(got, sorted(expected));
}

#[test]
fn window_assign_on_rows_equals_window_assign_on_batches() {
    let env = Env::new();
    let rows = events();
    let t = table(&env, rows);
    for kind in [
        WindowKind::Tumble { size_ms: 700 },
        WindowKind::Hop {
            slide_ms: 300,
            size_ms: 900,
        },
    ] {
        let on_batches = PhysicalPlan::WindowAssign {
            input: Box::new(scan(&t)),
            kind,
            time_col: 0,
        };
        // A one-input Union is rendered on rows, so the assignment after it is too.
        let on_rows = PhysicalPlan::WindowAssign {
            input: Box::new(PhysicalPlan::Union {
                inputs: vec![scan(&t)],
            }),
            kind,
            time_col: 0,
        };
        let a = env.collect_1_and_4(&collect(on_batches));
        let b = env.collect_1_and_4(&collect(on_rows));
        assert!(a.len() >= 400);
        assert_eq!(a, b, "{kind:?}");
    }
}

#[test]
fn window_aggregate_without_watermark_keeps_windows_before_1970() {
    // No watermark: everything is at time 0 and nothing is late, including windows
    // ending at or before the epoch.
    let env = Env::new();
    let rows: Vec<Row> = [-2_500, -1_000, -1, 0, 999, 1_000, -1]
        .iter()
        .map(|t| vec![ts(*t), s("k"), int(1)])
        .collect();
    let t = env.table(
        "old",
        &[
            ("ts", SqlType::Timestamp),
            ("k", SqlType::Varchar),
            ("v", SqlType::BigInt),
        ],
        rows,
    );
    let plan = collect(windowed(&t, WindowKind::Tumble { size_ms: 1_000 }));
    let out = env.run_with(&plan, 4, 2).unwrap();
    assert_eq!(out.metrics.late_rows, 0);
    let w = |start: i64, n: i64| vec![s("k"), ts(start), ts(start + 1_000), int(n), int(n), int(1)];
    assert_eq!(
        out.collected[0].rows,
        vec![w(-3_000, 1), w(-1_000, 3), w(0, 2), w(1_000, 1)]
    );
    assert_eq!(env.collect_1_and_4(&plan), out.collected[0].rows);
}

#[test]
fn hop_by_pane_matches_batch_recomputation_and_counts_late_rows() {
    // Out-of-order input (jitter beyond the delay, so some rows are late for some of
    // their windows only); sizes that are, are not, and are less than a multiple of the
    // slide. The per-window path is checked against the same oracle above.
    let env = Env::new();
    let rows = events();
    let t = table(&env, rows.clone());
    for (slide_ms, size_ms) in [(500, 1_500), (400, 1_000), (700, 500), (250, 250)] {
        let kind = WindowKind::Hop { slide_ms, size_ms };
        let mut total_late = 0;
        for plan in [
            windowed_by_pane(&t, slide_ms, size_ms),
            preaggregated(windowed_by_pane(&t, slide_ms, size_ms)),
        ] {
            let plan = collect(plan);
            for (workers, batch) in [(1, 7), (4, 7), (2, 1), (3, 50)] {
                let out = env.run_with(&plan, workers, batch).unwrap();
                let (expected, late) = oracle(&rows, kind, workers, batch);
                assert_eq!(
                    out.collected[0].rows, expected,
                    "{kind:?} by pane at {workers} workers, batch {batch}"
                );
                assert_eq!(
                    out.metrics.late_rows, late,
                    "{kind:?} by pane: late rows at {workers} workers, batch {batch}"
                );
                total_late += late;
            }
        }
        assert!(
            total_late > 0,
            "{kind:?}: the test data produced no late rows"
        );
    }
}

#[test]
fn hop_by_pane_in_order_input_is_identical_at_1_and_4_workers() {
    let env = Env::new();
    let mut rows = events();
    rows.sort();
    let t = table(&env, rows.clone());
    let plan = collect(windowed_by_pane(&t, 300, 1_200));
    let one = env.run_with(&plan, 1, 10_000).unwrap();
    let four = env.run_with(&plan, 4, 10_000).unwrap();
    assert_eq!(one.collected, four.collected);
    assert_eq!(one.metrics.late_rows, 0);
    let kind = WindowKind::Hop {
        slide_ms: 300,
        size_ms: 1_200,
    };
    assert_eq!(one.collected[0].rows, oracle(&rows, kind, 1, 10_000).0);
}

#[test]
fn hop_by_pane_without_watermark_keeps_windows_before_1970() {
    let env = Env::new();
    let rows: Vec<Row> = [-2_500, -1_000, -1, 0, 999, 1_000, -1]
        .iter()
        .map(|t| vec![ts(*t), s("k"), int(1)])
        .collect();
    let t = env.table(
        "old",
        &[
            ("ts", SqlType::Timestamp),
            ("k", SqlType::Varchar),
            ("v", SqlType::BigInt),
        ],
        rows.clone(),
    );
    let generic = collect(windowed(
        &t,
        WindowKind::Hop {
            slide_ms: 500,
            size_ms: 1_000,
        },
    ));
    let by_pane = collect(windowed_by_pane(&t, 500, 1_000));
    let want = env.collect_1_and_4(&generic);
    assert!(want.len() > 4);
    assert_eq!(env.collect_1_and_4(&by_pane), want);
}

#[test]
fn hop_by_pane_state_stays_bounded_over_a_long_input() {
    // 20,000 rows over 200 s of event time, 10 keys, in order: the open (pane, group)
    // accumulators the operator reports must stay near (panes between the oldest open
    // window and the newest row) × keys, not grow with the input (400 panes × 10 keys).
    // One worker: with several, a worker's source may run ahead of another's, holding
    // the frontier back, which bounds nothing about the operator.
    let env = Env::new();
    let rows: Vec<Row> = (0..20_000i64)
        .map(|i| vec![ts(i * 10), s(&format!("k{}", i % 10)), int(i % 7)])
        .collect();
    let t = table(&env, rows.clone());
    let plan = collect(windowed_by_pane(&t, 500, 2_000));
    {
        let workers = 1;
        let progress = Arc::new(Progress::new());
        let options = RunOptions::new(env.registry.clone())
            .with_workers(workers)
            .with_batch_size(100);
        let out = run(&plan, options, progress.clone()).unwrap();
        assert_eq!(out.metrics.late_rows, 0);
        // 20 s / 0.5 s slide windows, 10 keys each (the first windows are partial).
        assert_eq!(out.collected[0].rows.len(), (200_000 / 500 + 3) * 10);
        // Panes of 500 ms: a window needs 4; the watermark trails by DELAY and a poll of
        // 100 rows spans 1 s of event time.
        let bound = (4 + 2 + 2 * workers as u64 + 2) * 10;
        assert!(
            progress.window_state_peak() <= bound,
            "{workers} workers: peak {} open (pane, group) states, bound {bound}",
            progress.window_state_peak()
        );
        assert!(progress.window_state_peak() >= 40);
        assert_eq!(progress.window_state(), 0, "all panes freed at the end");
    }
}

/// A session window aggregate as `lower` plans it: a `Calc` giving each row of `t`
/// (ts, k, v) its proto-session `[ts, ts + gap)`, then COUNT(*), SUM(v), MAX(v) per
/// (k, window_start, window_end) merged incrementally.
fn session_aggregate(t: &sluice_catalogs::TableDescriptor, gap: i64) -> PhysicalPlan {
    use sluice_compiler::BinaryOp;
    use sluice_compiler::ScalarExpr;
    let plus = |ms: i64| {
        ScalarExpr::binary(
            BinaryOp::Add,
            ScalarExpr::col(0),
            ScalarExpr::lit(Datum::Interval(ms), SqlType::Interval),
        )
    };
    let PhysicalPlan::WindowAggregate { aggs, .. } = windowed(t, WindowKind::Tumble { size_ms: 1 })
    else {
        unreachable!()
    };
    PhysicalPlan::WindowAggregate {
        // Derived by the dataflow, as for a plan serialized before strategies.
        strategies: Vec::new(),
        input: Box::new(PhysicalPlan::Calc {
            input: Box::new(scan(t)),
            predicate: Some(ScalarExpr::IsNull {
                expr: Box::new(ScalarExpr::col(0)),
                negated: true,
            }),
            project: Some(vec![
                ScalarExpr::col(0),
                ScalarExpr::col(1),
                ScalarExpr::col(2),
                ScalarExpr::col(0),
                plus(gap),
                plus(gap - 1),
            ]),
            names: ["ts", "k", "v", "window_start", "window_end", "window_time"]
                .map(String::from)
                .to_vec(),
        }),
        group_by: vec![1, 3, 4],
        aggs,
        window_end_col: 4,
        strategy: WindowStrategy::Session {
            gap_ms: gap,
            start_col: 3,
            time_col: None,
        },
        preaggregate: false,
    }
}

/// Batch recomputation of [`session_aggregate`]: per key, times sorted, a new session
/// where the distance to the previous row is at least `gap`.
fn session_oracle(rows: &[Row], gap: i64) -> Vec<Row> {
    let mut by_key: BTreeMap<Datum, Vec<(i64, i64)>> = BTreeMap::new();
    for r in rows {
        if let (Datum::Timestamp(t), Datum::Int(v)) = (&r[0], &r[2]) {
            by_key.entry(r[1].clone()).or_default().push((*t, *v));
        }
    }
    let mut out = Vec::new();
    for (k, mut rows) in by_key {
        rows.sort();
        let mut i = 0;
        while i < rows.len() {
            let mut j = i + 1;
            while j < rows.len() && rows[j].0 - rows[j - 1].0 < gap {
                j += 1;
            }
            let vs: Vec<i64> = rows[i..j].iter().map(|r| r.1).collect();
            out.push(vec![
                k.clone(),
                ts(rows[i].0),
                ts(rows[j - 1].0 + gap),
                int(vs.len() as i64),
                int(vs.iter().sum()),
                int(*vs.iter().max().unwrap()),
            ]);
            i = j;
        }
    }
    sorted(out)
}

#[test]
fn session_aggregate_matches_batch_recomputation_over_out_of_order_input() {
    // Bursts per key with pauses, shuffled within less than the watermark delay: no
    // row is late, rows arrive out of order and bridge sessions already open.
    let env = Env::new();
    let mut rng = Rng(0x5e55);
    let mut rows: Vec<Row> = Vec::new();
    let mut clock = 1_000i64;
    for i in 0..600 {
        clock += if i % 40 == 39 {
            900
        } else {
            rng.next(60) as i64
        };
        rows.push(vec![
            ts(clock),
            s(["a", "b", "c"][rng.next(3) as usize]),
            int(rng.next(50) as i64),
        ]);
    }
    // Local shuffle: swap rows whose times differ by less than DELAY / 2.
    for i in 1..rows.len() {
        let j = i - (rng.next(3) as usize).min(i);
        if let (Datum::Timestamp(a), Datum::Timestamp(b)) = (&rows[i][0], &rows[j][0]) {
            if (a - b).abs() < DELAY / 2 {
                rows.swap(i, j);
            }
        }
    }
    let t = table(&env, rows.clone());
    for gap in [100, 250] {
        let plan = collect(session_aggregate(&t, gap));
        let expected = session_oracle(&rows, gap);
        assert!(
            expected.len() > 20,
            "gap {gap}: {} sessions",
            expected.len()
        );
        for (workers, batch) in [(1, 7), (4, 7), (2, 1), (3, 64)] {
            let out = env.run_with(&plan, workers, batch).unwrap();
            assert_eq!(out.metrics.late_rows, 0, "gap {gap} at {workers} workers");
            assert_eq!(
                sorted(out.collected[0].rows.clone()),
                expected,
                "gap {gap} at {workers} workers, batch {batch}"
            );
        }
    }
}

#[test]
fn session_aggregate_drops_and_counts_late_rows() {
    // The last row's proto-session [100, 200) ended before the watermark (5,000 - 300).
    let env = Env::new();
    let rows: Vec<Row> = [1_000, 1_050, 5_000, 100]
        .iter()
        .map(|t| vec![ts(*t), s("k"), int(1)])
        .collect();
    let t = table(&env, rows);
    let plan = collect(session_aggregate(&t, 100));
    let out = env.run_with(&plan, 1, 1).unwrap();
    assert_eq!(out.metrics.late_rows, 1);
    let w = |start: i64, end: i64, n: i64| vec![s("k"), ts(start), ts(end), int(n), int(n), int(1)];
    assert_eq!(
        out.collected[0].rows,
        vec![w(1_000, 1_150, 2), w(5_000, 5_100, 1)]
    );
}

#[test]
fn session_aggregate_state_stays_bounded_over_a_long_input() {
    // 20,000 rows, 10 keys, a session per key every ~2 s: open sessions stay a few per
    // key although 1,000 sessions are emitted.
    let env = Env::new();
    let rows: Vec<Row> = (0..20_000i64)
        .map(|i| {
            let t = (i / 200) * 2_000 + (i % 200) * 5;
            vec![ts(t), s(&format!("k{}", i % 10)), int(1)]
        })
        .collect();
    let t = table(&env, rows);
    let plan = collect(session_aggregate(&t, 500));
    let progress = Arc::new(Progress::new());
    let options = RunOptions::new(env.registry.clone())
        .with_workers(1)
        .with_batch_size(100);
    let out = run(&plan, options, progress.clone()).unwrap();
    assert_eq!(out.metrics.late_rows, 0);
    assert_eq!(out.collected[0].rows.len(), 100 * 10);
    assert!(
        progress.window_state_peak() <= 3 * 10,
        "peak {} open sessions",
        progress.window_state_peak()
    );
    assert_eq!(progress.window_state(), 0, "all sessions freed at the end");
}
