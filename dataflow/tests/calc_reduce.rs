//! Source → Calc → Reduce → collect, against from-scratch oracles, at 1 and 4 workers.

mod common;

use common::*;
use sluice_catalogs::SqlType;
use sluice_compiler::{
    AggFunc, AggregateCall, BinaryOp, Datum, PhysicalPlan, Row, ScalarExpr, F64,
};
use sluice_dataflow::ExecutionError;
use std::collections::BTreeMap;

fn people(env: &Env, n: usize) -> (sluice_catalogs::TableDescriptor, Vec<Row>) {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let rows: Vec<Row> = (0..n)
        .map(|i| {
            let group = s(["a", "b", "c"][rng.next(3) as usize]);
            let v = if rng.next(5) == 0 {
                Datum::Null
            } else {
                int(rng.next(10) as i64 - 3)
            };
            vec![int(i as i64), group, v]
        })
        .collect();
    let t = env.table(
        "people",
        &[
            ("id", SqlType::BigInt),
            ("g", SqlType::Varchar),
            ("v", SqlType::BigInt),
        ],
        rows.clone(),
    );
    (t, rows)
}

fn agg(func: AggFunc, arg: Option<usize>, distinct: bool, ty: SqlType) -> AggregateCall {
    AggregateCall {
        func,
        arg,
        distinct,
        ty,
    }
}

fn all_aggs(arg: usize) -> Vec<AggregateCall> {
    vec![
        agg(AggFunc::Count, None, false, SqlType::BigInt),
        agg(AggFunc::Count, Some(arg), false, SqlType::BigInt),
        agg(AggFunc::Count, Some(arg), true, SqlType::BigInt),
        agg(AggFunc::Sum, Some(arg), false, SqlType::BigInt),
        agg(AggFunc::Sum, Some(arg), true, SqlType::BigInt),
        agg(AggFunc::Avg, Some(arg), false, SqlType::Double),
        agg(AggFunc::Min, Some(arg), false, SqlType::BigInt),
        agg(AggFunc::Max, Some(arg), false, SqlType::BigInt),
    ]
}

/// The aggregates of `all_aggs` over values, computed from scratch.
fn oracle_aggs(values: &[Datum]) -> Row {
    let nn: Vec<i64> = values
        .iter()
        .filter_map(|d| match d {
            Datum::Int(i) => Some(*i),
            _ => None,
        })
        .collect();
    let mut distinct = nn.clone();
    distinct.sort();
    distinct.dedup();
    let null_if_empty = |v: Datum| if nn.is_empty() { Datum::Null } else { v };
    vec![
        int(values.len() as i64),
        int(nn.len() as i64),
        int(distinct.len() as i64),
        null_if_empty(int(nn.iter().sum())),
        null_if_empty(int(distinct.iter().sum())),
        null_if_empty(Datum::Float(F64(
            nn.iter().sum::<i64>() as f64 / nn.len() as f64
        ))),
        nn.iter().min().map(|m| int(*m)).unwrap_or(Datum::Null),
        nn.iter().max().map(|m| int(*m)).unwrap_or(Datum::Null),
    ]
}

#[test]
fn calc_filters_and_projects() {
    let env = Env::new();
    let (t, rows) = people(&env, 100);
    // WHERE v > 2  SELECT id, v * 10
    let plan = PhysicalPlan::Calc {
        input: Box::new(scan(&t)),
        predicate: Some(ScalarExpr::binary(
            BinaryOp::Gt,
            ScalarExpr::col(2),
            ScalarExpr::lit(int(2), SqlType::BigInt),
        )),
        project: Some(vec![
            ScalarExpr::col(0),
            ScalarExpr::binary(
                BinaryOp::Mul,
                ScalarExpr::col(2),
                ScalarExpr::lit(int(10), SqlType::BigInt),
            ),
        ]),
        names: vec!["id".into(), "v10".into()],
    };
    let got = env.collect_1_and_4(&collect(plan));
    let expected: Vec<Row> = rows
        .iter()
        .filter_map(|r| match r[2] {
            Datum::Int(v) if v > 2 => Some(vec![r[0].clone(), int(v * 10)]),
            _ => None,
        })
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, sorted(expected));
}

/// The batch Calc through `GpuKernels` with `SLUICE_GPU=force`: the same rows as the
/// CPU kernels, and the run's counters say where the rows went (on a machine without
/// a GPU: every row on the CPU and one fallback per batch).
#[test]
fn forced_gpu_calc_gives_cpu_results_and_counts_devices() {
    use sluice_dataflow::{run, Progress, RunOptions};
    use sluice_gpu::{gpu_available, GpuConfig, GpuKernels, GpuMode};
    use std::sync::Arc;
    let env = Env::new();
    let (t, _) = people(&env, 100);
    let plan = collect(PhysicalPlan::Calc {
        input: Box::new(scan(&t)),
        predicate: Some(ScalarExpr::binary(
            BinaryOp::Gt,
            ScalarExpr::col(2),
            ScalarExpr::lit(int(2), SqlType::BigInt),
        )),
        project: Some(vec![
            ScalarExpr::col(0),
            ScalarExpr::binary(
                BinaryOp::Mul,
                ScalarExpr::col(2),
                ScalarExpr::lit(int(10), SqlType::BigInt),
            ),
        ]),
        names: vec!["id".into(), "v10".into()],
    });
    let cpu = env.run_with(&plan, 1, 10).unwrap();
    assert_eq!((cpu.metrics.rows_cpu, cpu.metrics.rows_gpu), (100, 0));
    let kernels = Arc::new(GpuKernels::new(GpuConfig {
        mode: GpuMode::Force,
        min_batch_rows: 0,
        job_gpus: 1,
    }));
    let options = RunOptions::new(env.registry.clone())
        .with_batch_size(10)
        .with_kernels(kernels);
    let gpu = run(&plan, options, Arc::new(Progress::new())).unwrap();
    assert_eq!(gpu.collected, cpu.collected);
    let m = gpu.metrics;
    assert_eq!(m.rows_cpu + m.rows_gpu, 100);
    match gpu_available() {
        Err(why) => {
            eprintln!("SKIPPED: GPU launches in the dataflow ({why}); checked the fallback");
            assert_eq!((m.rows_cpu, m.gpu_fallbacks), (100, 10));
        }
        Ok(()) => assert_eq!((m.rows_gpu, m.gpu_fallbacks), (100, 0)),
    }
}

#[test]
fn reduce_grouped_matches_oracle() {
    let env = Env::new();
    let (t, rows) = people(&env, 200);
    let plan = sluice_compiler::lower::reduce(scan(&t), vec![1], all_aggs(2));
    let got = env.collect_1_and_4(&collect(plan));
    let mut groups: BTreeMap<Datum, Vec<Datum>> = BTreeMap::new();
    for r in &rows {
        groups.entry(r[1].clone()).or_default().push(r[2].clone());
    }
    let expected: Vec<Row> = groups
        .into_iter()
        .map(|(g, vals)| std::iter::once(g).chain(oracle_aggs(&vals)).collect())
        .collect();
    assert_eq!(got, expected);
}

/// `GROUP BY g` with every aggregate of `v` over `(ts, g, v)` rows from a watermarked
/// source (each batch its own time), run at each `(workers, batch size)`, against the
/// oracle.
fn watermarked_reduce_matches_oracle(rows: Vec<Row>, runs: &[(usize, usize)]) {
    let env = Env::new();
    let t = env.table_with(
        "timed",
        &[
            ("ts", SqlType::Timestamp),
            ("g", SqlType::Varchar),
            ("v", SqlType::BigInt),
        ],
        rows.clone(),
        vec![],
        Some(sluice_catalogs::Watermark {
            column: 0,
            delay_ms: 0,
        }),
        &[],
    );
    let plan = collect(sluice_compiler::lower::reduce(
        scan(&t),
        vec![1],
        all_aggs(2),
    ));
    let mut groups: BTreeMap<Datum, Vec<Datum>> = BTreeMap::new();
    for r in &rows {
        groups.entry(r[1].clone()).or_default().push(r[2].clone());
    }
    let expected: Vec<Row> = groups
        .into_iter()
        .map(|(g, vals)| std::iter::once(g).chain(oracle_aggs(&vals)).collect())
        .collect();
    for &(workers, batch) in runs {
        let out = env.run_with(&plan, workers, batch).unwrap();
        assert_eq!(
            sorted(out.collected[0].rows.clone()),
            expected,
            "{workers} workers, batches of {batch}"
        );
    }
}

/// Updates over many times: the groups a time changes are re-emitted at that time,
/// again at every later time that changes them, so the consolidated output equals the
/// oracle.
#[test]
fn reduce_over_many_times_matches_oracle() {
    let mut rng = Rng(0x005e_ed0f_7135);
    let rows: Vec<Row> = (0..300)
        .map(|i| {
            vec![
                ts(1_000 + i * 10),
                s(["a", "b", "c", "d"][rng.next(4) as usize]),
                if rng.next(6) == 0 {
                    Datum::Null
                } else {
                    int(rng.next(20) as i64 - 5)
                },
            ]
        })
        .collect();
    watermarked_reduce_matches_oracle(rows, &[(1, 1), (1, 7), (4, 3)]);
}

/// Flow control (`render/flow.rs`) under skew: almost every row goes to one worker's
/// `Reduce`, so the other workers' sources run ahead of it by far more than the flow
/// bound (the rows span 400 s of event time) and wait for it; the run neither stalls
/// nor changes the result.
#[test]
fn a_skewed_aggregate_with_sources_waiting_matches_oracle() {
    let mut rng = Rng(0x00f1_0c0d);
    let rows: Vec<Row> = (0..40_000)
        .map(|i| {
            let key = if rng.next(10) == 0 {
                s(["a", "b", "c"][rng.next(3) as usize])
            } else {
                s("hot")
            };
            vec![ts(i * 10), key, int(rng.next(100) as i64)]
        })
        .collect();
    watermarked_reduce_matches_oracle(rows, &[(2, 64), (4, 64)]);
}

#[test]
fn global_reduce_on_empty_and_all_null_input_gives_one_row() {
    let env = Env::new();
    let (t, _) = people(&env, 50);
    // WHERE FALSE-ish: v > 100 keeps nothing.
    let empty = PhysicalPlan::Calc {
        input: Box::new(scan(&t)),
        predicate: Some(ScalarExpr::binary(
            BinaryOp::Gt,
            ScalarExpr::col(2),
            ScalarExpr::lit(int(100), SqlType::BigInt),
        )),
        project: None,
        names: vec![],
    };
    let plan = sluice_compiler::lower::reduce(empty, vec![], all_aggs(2));
    let got = env.collect_1_and_4(&collect(plan));
    assert_eq!(got, vec![oracle_aggs(&[])]);
    assert_eq!(got[0][0], int(0));
    assert!(got[0][3].is_null());

    let nulls = env.table(
        "nulls",
        &[("v", SqlType::BigInt)],
        vec![vec![Datum::Null]; 5],
    );
    let plan = sluice_compiler::lower::reduce(scan(&nulls), vec![], all_aggs(0));
    let got = env.collect_1_and_4(&collect(plan));
    assert_eq!(got, vec![oracle_aggs(&vec![Datum::Null; 5])]);

    // A grouped reduce over empty input has no rows at all.
    let empty = env.table(
        "empty",
        &[("g", SqlType::BigInt), ("v", SqlType::BigInt)],
        vec![],
    );
    let plan = sluice_compiler::lower::reduce(scan(&empty), vec![0], all_aggs(1));
    assert!(env.collect_1_and_4(&collect(plan)).is_empty());
}

#[test]
fn double_sums_do_not_depend_on_worker_count() {
    let env = Env::new();
    let mut rng = Rng(7);
    let rows: Vec<Row> = (0..300)
        .map(|_| {
            vec![Datum::Float(F64(
                (rng.next(1_000_000) as f64) / 7.0 * 1e-3 + 1e10 * (rng.next(3) as f64)
            ))]
        })
        .collect();
    let t = env.table("d", &[("x", SqlType::Double)], rows);
    let plan = sluice_compiler::lower::reduce(
        scan(&t),
        vec![],
        vec![
            agg(AggFunc::Sum, Some(0), false, SqlType::Double),
            agg(AggFunc::Avg, Some(0), false, SqlType::Double),
        ],
    );
    // collect_1_and_4 asserts bit-identical results.
    let got = env.collect_1_and_4(&collect(plan));
    assert_eq!(got.len(), 1);
}

#[test]
fn decimal_sum_overflow_fails_the_run_with_an_eval_error() {
    let env = Env::new();
    let dec = SqlType::Decimal {
        precision: 38,
        scale: 0,
    };
    let big = 10i128.pow(37) * 6;
    let t = env.table(
        "dec",
        &[("x", dec)],
        vec![vec![Datum::Decimal(big)], vec![Datum::Decimal(big)]],
    );
    let plan = sluice_compiler::lower::reduce(
        scan(&t),
        vec![],
        vec![agg(AggFunc::Sum, Some(0), false, dec)],
    );
    for workers in [1, 4] {
        let err = env
            .run_with(&collect(plan.clone()), workers, 3)
            .unwrap_err();
        assert!(
            matches!(&err, ExecutionError::Eval { operator, .. } if operator == "Reduce"),
            "{err:?}"
        );
    }
}

#[test]
fn expression_error_fails_the_run_naming_the_operator() {
    let env = Env::new();
    let t = env.table(
        "strs",
        &[("x", SqlType::Varchar)],
        vec![vec![s("1")], vec![s("nope")]],
    );
    let plan = PhysicalPlan::Calc {
        input: Box::new(scan(&t)),
        predicate: None,
        project: Some(vec![ScalarExpr::Cast {
            expr: Box::new(ScalarExpr::col(0)),
            to: SqlType::BigInt,
        }]),
        names: vec!["x".into()],
    };
    for workers in [1, 4] {
        let err = env
            .run_with(&collect(plan.clone()), workers, 1)
            .unwrap_err();
        assert!(
            matches!(&err, ExecutionError::Eval { operator, .. } if operator == "Calc"),
            "{err:?}"
        );
    }
}

#[test]
fn calc_after_a_stateful_operator_runs_on_rows() {
    let env = Env::new();
    let (t, rows) = people(&env, 120);
    let reduce = sluice_compiler::lower::reduce(
        scan(&t),
        vec![1],
        vec![agg(AggFunc::Count, None, false, SqlType::BigInt)],
    );
    // HAVING count > 35, SELECT g, count * 2
    let plan = PhysicalPlan::Calc {
        input: Box::new(reduce),
        predicate: Some(ScalarExpr::binary(
            BinaryOp::Gt,
            ScalarExpr::col(1),
            ScalarExpr::lit(int(35), SqlType::BigInt),
        )),
        project: Some(vec![
            ScalarExpr::col(0),
            ScalarExpr::binary(
                BinaryOp::Mul,
                ScalarExpr::col(1),
                ScalarExpr::lit(int(2), SqlType::BigInt),
            ),
        ]),
        names: vec!["g".into(), "c2".into()],
    };
    let got = env.collect_1_and_4(&collect(plan));
    let mut counts: BTreeMap<Datum, i64> = BTreeMap::new();
    for r in &rows {
        *counts.entry(r[1].clone()).or_default() += 1;
    }
    let expected: Vec<Row> = counts
        .into_iter()
        .filter(|(_, c)| *c > 35)
        .map(|(g, c)| vec![g, int(c * 2)])
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(got, expected);

    // An evaluation error on the row path fails the run too.
    let bad = PhysicalPlan::Calc {
        input: Box::new(sluice_compiler::lower::reduce(
            scan(&t),
            vec![1],
            vec![agg(AggFunc::Count, None, false, SqlType::BigInt)],
        )),
        predicate: None,
        project: Some(vec![ScalarExpr::Cast {
            expr: Box::new(ScalarExpr::col(0)),
            to: SqlType::BigInt,
        }]),
        names: vec!["x".into()],
    };
    let err = env.run_with(&collect(bad), 2, 3).unwrap_err();
    assert!(
        matches!(&err, ExecutionError::Eval { operator, .. } if operator == "Calc"),
        "{err:?}"
    );
}

/// Every aggregate that keeps a running state, over column `arg` (and `MAX` of `time`).
fn running_aggs(arg: usize, time: usize) -> Vec<AggregateCall> {
    vec![
        agg(AggFunc::Count, None, false, SqlType::BigInt),
        agg(AggFunc::Count, Some(arg), false, SqlType::BigInt),
        agg(AggFunc::Sum, Some(arg), false, SqlType::BigInt),
        agg(AggFunc::Avg, Some(arg), false, SqlType::Double),
        agg(AggFunc::Min, Some(arg), false, SqlType::BigInt),
        agg(AggFunc::Max, Some(arg), false, SqlType::BigInt),
        agg(AggFunc::Max, Some(time), false, SqlType::Timestamp),
    ]
}

/// Pre-aggregation (`sluice_compiler::partial`): a `Reduce` whose aggregates all keep
/// running states over a source is planned `preaggregate`, each batch grouped by the
/// columnar kernels and merged as partial rows. Grouped by a string, by an integer
/// with NULL keys (the fixed-width path), by both (the packed-row path) and by nothing,
/// at several worker counts and batch sizes (each batch its own time), its result is
/// the row-by-row `Reduce`'s, and for the string key the from-scratch oracle's.
#[test]
fn a_preaggregated_reduce_matches_the_row_by_row_one_and_the_oracle() {
    let env = Env::new();
    let mut rng = Rng(0x0bad_cafe_f00d);
    let rows: Vec<Row> = (0..2_000)
        .map(|i| {
            let k = if rng.next(9) == 0 {
                Datum::Null
            } else {
                int(rng.next(5) as i64 - 2)
            };
            let v = if rng.next(6) == 0 {
                Datum::Null
            } else {
                int(rng.next(1_000) as i64 - 400)
            };
            vec![
                ts(i * 7),
                s(["a", "b", "c", "d"][rng.next(4) as usize]),
                k,
                v,
            ]
        })
        .collect();
    let t = env.table_with(
        "timed",
        &[
            ("ts", SqlType::Timestamp),
            ("g", SqlType::Varchar),
            ("k", SqlType::BigInt),
            ("v", SqlType::BigInt),
        ],
        rows.clone(),
        vec![],
        Some(sluice_catalogs::Watermark {
            column: 0,
            delay_ms: 0,
        }),
        &[],
    );
    for group_by in [vec![1], vec![2], vec![2, 1], vec![]] {
        let plan = sluice_compiler::lower::reduce(scan(&t), group_by.clone(), running_aggs(3, 0));
        let PhysicalPlan::Reduce {
            preaggregate: true, ..
        } = &plan
        else {
            panic!("not pre-aggregated: {plan:?}");
        };
        let mut by_rows = plan.clone();
        if let PhysicalPlan::Reduce { preaggregate, .. } = &mut by_rows {
            *preaggregate = false;
        }
        let expected = sorted(
            env.run_with(&collect(by_rows), 1, 1).unwrap().collected[0]
                .rows
                .clone(),
        );
        assert!(!expected.is_empty());
        for (workers, batch) in [(1, 1), (1, 64), (2, 7), (4, 500)] {
            let out = env
                .run_with(&collect(plan.clone()), workers, batch)
                .unwrap();
            assert_eq!(
                sorted(out.collected[0].rows.clone()),
                expected,
                "group by {group_by:?}, {workers} workers, batches of {batch}"
            );
        }
        if group_by == [1] {
            let mut groups: BTreeMap<Datum, Vec<&Row>> = BTreeMap::new();
            for r in &rows {
                groups.entry(r[1].clone()).or_default().push(r);
            }
            let oracle: Vec<Row> = groups
                .into_iter()
                .map(|(g, rs)| {
                    let vals: Vec<Datum> = rs.iter().map(|r| r[3].clone()).collect();
                    let all = oracle_aggs(&vals);
                    let last = rs.iter().map(|r| r[0].clone()).max().unwrap_or(Datum::Null);
                    // `oracle_aggs` is COUNT(*), COUNT, COUNT(DISTINCT), SUM,
                    // SUM(DISTINCT), AVG, MIN, MAX.
                    vec![
                        g,
                        all[0].clone(),
                        all[1].clone(),
                        all[3].clone(),
                        all[5].clone(),
                        all[6].clone(),
                        all[7].clone(),
                        last,
                    ]
                })
                .collect();
            assert_eq!(expected, oracle);
        }
    }
}
