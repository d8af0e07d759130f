//! Interval joins (an inner `HashJoin` with an `IntervalJoin` bound, decided by
//! `lower::interval_bound`) over watermarked, out-of-order input: the rows equal a
//! nested-loop oracle and the unbounded join's at 1 and 4 workers, and the rows the join
//! holds stay bounded over a long input (the `join_state_peak` counter). The append-only
//! (symmetric hash) strategy gives the same rows, and a stream joined with a bounded
//! table holds only the table once the table is complete. Also: a sub-plan that occurs
//! twice is rendered once (its source rows are read once).

mod common;

use common::*;
use sluice_catalogs::{SqlType, Watermark};
use sluice_compiler::lower::interval_bound;
use sluice_compiler::{
    AggFunc, AggregateCall, BinaryOp, Datum, JoinKind, PhysicalPlan, Row, ScalarExpr, WindowKind,
};
use sluice_dataflow::{run, Progress, RunOptions};
use std::sync::Arc;

/// The watermark delay; every row is at most this much behind an earlier row.
const DELAY: i64 = 100;

fn interval(ms: i64) -> ScalarExpr {
    ScalarExpr::Literal(Datum::Interval(ms), SqlType::Interval)
}

fn cmp(op: BinaryOp, a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(op, a, b)
}

/// `n` rows `(k, t, v)`: times rising by `step` with jitter below `DELAY` (out of
/// order, never late), keys in `0..keys`, a few NULL keys and times.
fn rows(seed: u64, n: usize, step: i64, keys: u64) -> Vec<Row> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let k = if rng.next(17) == 0 {
                Datum::Null
            } else {
                int(rng.next(keys) as i64)
            };
            let t = if rng.next(29) == 0 {
                Datum::Null
            } else {
                ts(i as i64 * step + rng.next(DELAY as u64) as i64)
            };
            vec![k, t, int(rng.next(10) as i64)]
        })
        .collect()
}

fn table(env: &Env, name: &str, rows: Vec<Row>) -> sluice_catalogs::TableDescriptor {
    env.table_with(
        name,
        &[
            ("k", SqlType::BigInt),
            ("t", SqlType::Timestamp),
            ("v", SqlType::BigInt),
        ],
        rows,
        vec![],
        Some(Watermark {
            column: 1,
            delay_ms: DELAY,
        }),
        &[],
    )
}

/// The strategy a test join runs with.
#[derive(Clone, Copy, PartialEq)]
enum Strategy {
    /// Differential's arranged join.
    Arranged,
    /// Symmetric hash join, rows held until the other input completes.
    AppendOnly,
    /// Symmetric hash join, rows freed by the watermark.
    Interval,
}

/// `l.k = r.k AND l.t >= r.t - 50ms AND l.t < r.t + 20ms AND l.v <= r.v`, with the bound
/// `lower` decides (it must find one).
fn join(l: PhysicalPlan, r: PhysicalPlan, strategy: Strategy) -> PhysicalPlan {
    let residual = ScalarExpr::binary(
        BinaryOp::And,
        ScalarExpr::binary(
            BinaryOp::And,
            cmp(
                BinaryOp::GtEq,
                ScalarExpr::col(1),
                cmp(BinaryOp::Sub, ScalarExpr::col(4), interval(50)),
            ),
            cmp(
                BinaryOp::Lt,
                ScalarExpr::col(1),
                cmp(BinaryOp::Add, ScalarExpr::col(4), interval(20)),
            ),
        ),
        cmp(BinaryOp::LtEq, ScalarExpr::col(2), ScalarExpr::col(5)),
    );
    let bound = interval_bound(&l, &r, &residual).expect("an interval bound");
    assert_eq!((bound.lower_ms, bound.upper_ms), (-50, 20));
    PhysicalPlan::HashJoin {
        left: Box::new(l),
        right: Box::new(r),
        kind: JoinKind::Inner,
        left_keys: vec![ScalarExpr::col(0)],
        right_keys: vec![ScalarExpr::col(0)],
        residual: Some(residual),
        interval: (strategy == Strategy::Interval).then_some(bound),
        append_only: strategy == Strategy::AppendOnly,
    }
}

fn nested_loops(left: &[Row], right: &[Row]) -> Vec<Row> {
    let mut out = Vec::new();
    for l in left {
        for r in right {
            let (Datum::Timestamp(lt), Datum::Timestamp(rt)) = (&l[1], &r[1]) else {
                continue;
            };
            if !l[0].is_null() && l[0] == r[0] && *lt >= rt - 50 && *lt < rt + 20 && l[2] <= r[2] {
                out.push(l.iter().chain(r.iter()).cloned().collect());
            }
        }
    }
    sorted(out)
}

#[test]
fn interval_join_equals_the_oracle_and_the_unbounded_join() {
    let env = Env::new();
    let left = rows(1, 300, 7, 4);
    let right = rows(2, 200, 11, 4);
    let l = table(&env, "l", left.clone());
    let r = table(&env, "r", right.clone());
    let expected = nested_loops(&left, &right);
    assert!(expected.len() > 50, "a test that joins something");
    for strategy in [Strategy::Interval, Strategy::Arranged, Strategy::AppendOnly] {
        let got = sorted(env.collect_1_and_4(&collect(join(scan(&l), scan(&r), strategy))));
        assert_eq!(got, expected);
    }
}

/// A long stream joined (append-only strategy) with a 12-row table: once the table is
/// complete the stream's rows are no longer held, so the join holds about the table,
/// never the stream (6,000 rows); the rows equal the oracle's at 1 and 3 workers.
#[test]
fn append_only_join_frees_a_side_once_the_other_is_complete() {
    let env = Env::new();
    let left = rows(5, 6_000, 5, 8);
    let right = rows(6, 12, 5, 8);
    let l = table(&env, "l", left.clone());
    let r = table(&env, "r", right.clone());
    let expected = nested_loops(&left, &right);
    for workers in [1, 3] {
        let (got, progress) = run_counted(
            &env,
            join(scan(&l), scan(&r), Strategy::AppendOnly),
            workers,
        );
        assert_eq!(got, expected, "{workers} workers");
        let peak = progress.join_state_peak();
        assert!(peak > 0 && peak < 600, "peak {peak} at {workers} workers");
        assert_eq!(progress.join_state_rows(), 0, "everything freed at the end");
    }
    // In a process that exits after the run, state is left to the OS at the end: the
    // same rows.
    let options = RunOptions::new(env.registry.clone())
        .with_workers(2)
        .with_batch_size(3)
        .with_exit_after_run();
    let plan = collect(join(scan(&l), scan(&r), Strategy::AppendOnly));
    let out = run(&plan, options, Arc::new(Progress::new())).expect("run");
    assert_eq!(sorted(out.collected[0].rows.clone()), expected);
}

/// Runs `plan` on `workers` workers (batch 3) and returns the rows and the counters.
fn run_counted(env: &Env, plan: PhysicalPlan, workers: usize) -> (Vec<Row>, Arc<Progress>) {
    let progress = Arc::new(Progress::new());
    let options = RunOptions::new(env.registry.clone())
        .with_workers(workers)
        .with_batch_size(3);
    let out = run(&collect(plan), options, progress.clone()).expect("run");
    (sorted(out.collected[0].rows.clone()), progress)
}

#[test]
fn interval_join_state_stays_bounded_over_a_long_input() {
    let env = Env::new();
    let n = 6_000;
    let left = rows(3, n, 5, 8);
    let right = rows(4, n, 5, 8);
    let l = table(&env, "l", left.clone());
    let r = table(&env, "r", right.clone());
    let expected = nested_loops(&left, &right);
    // One worker: both sources advance one poll per step, so the watermarks move in
    // step (with several worker threads, one may run ahead of another and the frontier
    // waits for the slowest: the bound then depends on scheduling).
    let (got, progress) = run_counted(&env, join(scan(&l), scan(&r), Strategy::Interval), 1);
    assert_eq!(got, expected);
    // Rows within the bound (70 ms), the watermark delay (100 ms) and the jitter
    // (100 ms), 5 ms apart: about a hundred rows, never the whole input (12,000 rows).
    let peak = progress.join_state_peak();
    assert!(peak > 0 && peak < 400, "peak {peak}");
    assert_eq!(progress.join_state_rows(), 0, "everything freed at the end");
}

/// Nexmark q7's shape: bids joined with the highest price of each 10 ms tumbling window,
/// `B.t BETWEEN B1.window_end - 10ms AND B1.window_end`.
#[test]
fn q7_shape_over_a_window_aggregate_is_bounded_and_exact() {
    let env = Env::new();
    let bids = rows(5, 2_000, 3, 50);
    let b = table(&env, "bid", bids.clone());
    let max_per_window = PhysicalPlan::Calc {
        input: Box::new(PhysicalPlan::WindowAggregate {
            // Derived by the dataflow, as for a plan serialized before strategies.
            strategies: Vec::new(),
            input: Box::new(PhysicalPlan::WindowAssign {
                input: Box::new(scan(&b)),
                kind: WindowKind::Tumble { size_ms: 10 },
                time_col: 1,
            }),
            group_by: vec![3, 4],
            aggs: vec![AggregateCall {
                func: AggFunc::Max,
                arg: Some(2),
                distinct: false,
                ty: SqlType::BigInt,
            }],
            window_end_col: 4,
            strategy: sluice_compiler::WindowStrategy::Generic,
            // q7's MAX per window is pre-aggregated per batch, as `lower` plans it.
            preaggregate: true,
        }),
        predicate: None,
        project: Some(vec![ScalarExpr::col(2), ScalarExpr::col(1)]),
        names: vec!["maxv".into(), "wend".into()],
    };
    let residual = ScalarExpr::binary(
        BinaryOp::And,
        cmp(
            BinaryOp::GtEq,
            ScalarExpr::col(1),
            cmp(BinaryOp::Sub, ScalarExpr::col(4), interval(10)),
        ),
        cmp(BinaryOp::LtEq, ScalarExpr::col(1), ScalarExpr::col(4)),
    );
    let bound = interval_bound(&scan(&b), &max_per_window, &residual).expect("a bound");
    assert_eq!((bound.lower_ms, bound.upper_ms), (-10, 0));
    let plan = |interval| PhysicalPlan::HashJoin {
        left: Box::new(scan(&b)),
        right: Box::new(max_per_window.clone()),
        kind: JoinKind::Inner,
        left_keys: vec![ScalarExpr::col(2)],
        right_keys: vec![ScalarExpr::col(0)],
        residual: Some(residual.clone()),
        interval,
        append_only: false,
    };
    // Oracle: per window [s, s + 10), the bids whose value is the window's max, joined
    // with every window end e where e - 10 <= t <= e.
    let mut max: std::collections::BTreeMap<i64, i64> = Default::default();
    for r in &bids {
        if let (Datum::Timestamp(t), Datum::Int(v)) = (&r[1], &r[2]) {
            let end = t - t.rem_euclid(10) + 10;
            let m = max.entry(end).or_insert(*v);
            *m = (*m).max(*v);
        }
    }
    let mut expected = Vec::new();
    for r in &bids {
        let (Datum::Timestamp(t), Datum::Int(v)) = (&r[1], &r[2]) else {
            continue;
        };
        for (end, m) in &max {
            if m == v && end - 10 <= *t && t <= end {
                let mut row = r.clone();
                row.extend([int(*m), ts(*end)]);
                expected.push(row);
            }
        }
    }
    let expected = sorted(expected);
    assert!(!expected.is_empty());
    for workers in [1, 3] {
        let (got, progress) = run_counted(&env, plan(Some(bound)), workers);
        assert_eq!(got, expected, "{workers} workers");
        if workers == 1 {
            // The bids of about the last 10 ms, the watermark delay and the jitter (3 ms
            // apart), and a window maximum or two: never all 2,000 bids.
            let peak = progress.join_state_peak();
            assert!(peak > 0 && peak < 300, "peak {peak}");
        }
        let (unbounded, _) = run_counted(&env, plan(None), workers);
        assert_eq!(unbounded, expected, "{workers} workers, regular join");
    }
}

#[test]
fn a_shared_sub_plan_is_rendered_once() {
    let env = Env::new();
    let input = rows(6, 500, 4, 5);
    let t = table(&env, "t", input.clone());
    let count = PhysicalPlan::WindowAggregate {
        strategies: Vec::new(),
        input: Box::new(PhysicalPlan::WindowAssign {
            input: Box::new(scan(&t)),
            kind: WindowKind::Tumble { size_ms: 100 },
            time_col: 1,
        }),
        group_by: vec![0, 3, 4],
        aggs: vec![AggregateCall {
            func: AggFunc::Count,
            arg: None,
            distinct: false,
            ty: SqlType::BigInt,
        }],
        window_end_col: 4,
        strategy: sluice_compiler::WindowStrategy::Generic,
        preaggregate: false,
    };
    // The counts joined with themselves on (k, window_start).
    let plan = PhysicalPlan::HashJoin {
        left: Box::new(count.clone()),
        right: Box::new(count.clone()),
        kind: JoinKind::Inner,
        left_keys: vec![ScalarExpr::col(0), ScalarExpr::col(1)],
        right_keys: vec![ScalarExpr::col(0), ScalarExpr::col(1)],
        residual: None,
        interval: None,
        append_only: false,
    };
    assert_eq!(plan.shared_subplans(), vec![(&count, 2)]);
    let (alone, _) = run_counted(&env, count.clone(), 2);
    let expected: Vec<Row> = sorted(
        alone
            .iter()
            .filter(|r| !r[0].is_null())
            .map(|r| r.iter().chain(r.iter()).cloned().collect())
            .collect(),
    );
    for workers in [1, 2] {
        let (got, progress) = run_counted(&env, plan.clone(), workers);
        assert_eq!(got, expected, "{workers} workers");
        // Read once: the source rows, not twice as many.
        assert_eq!(
            progress.snapshot().rows_read,
            input.len() as u64,
            "{workers} workers"
        );
    }
}
