//! HashJoin of every kind, with NULL keys, duplicates and a residual, against a
//! nested-loop oracle, at 1 and 4 workers.

mod common;

use common::*;
use sluice_catalogs::SqlType;
use sluice_compiler::{BinaryOp, Datum, JoinKind, PhysicalPlan, Row, ScalarExpr};

fn sides(env: &Env, seed: u64) -> (PhysicalPlan, Vec<Row>, PhysicalPlan, Vec<Row>) {
    let mut rng = Rng(seed);
    let key = |rng: &mut Rng| {
        if rng.next(6) == 0 {
            Datum::Null
        } else {
            int(rng.next(5) as i64)
        }
    };
    // Duplicated rows on purpose: values drawn from small domains.
    let left: Vec<Row> = (0..60)
        .map(|_| vec![key(&mut rng), int(rng.next(3) as i64)])
        .collect();
    let right: Vec<Row> = (0..40)
        .map(|_| {
            vec![
                key(&mut rng),
                s(["x", "y"][rng.next(2) as usize]),
                int(rng.next(3) as i64),
            ]
        })
        .collect();
    let l = env.table(
        "l",
        &[("k", SqlType::BigInt), ("a", SqlType::BigInt)],
        left.clone(),
    );
    let r = env.table(
        "r",
        &[
            ("k", SqlType::BigInt),
            ("b", SqlType::Varchar),
            ("c", SqlType::BigInt),
        ],
        right.clone(),
    );
    (scan(&l), left, scan(&r), right)
}

/// Nested loops: equal non-NULL keys, then `a <= c` when `residual`.
fn oracle(kind: JoinKind, left: &[Row], right: &[Row], residual: bool) -> Vec<Row> {
    let matches = |l: &Row, r: &Row| !l[0].is_null() && l[0] == r[0] && (!residual || l[1] <= r[2]);
    let mut out = Vec::new();
    for l in left {
        for r in right {
            if matches(l, r) {
                out.push(l.iter().chain(r.iter()).cloned().collect());
            }
        }
    }
    if matches!(kind, JoinKind::Left | JoinKind::Full) {
        for l in left {
            if !right.iter().any(|r| matches(l, r)) {
                out.push(l.iter().cloned().chain(vec![Datum::Null; 3]).collect());
            }
        }
    }
    if matches!(kind, JoinKind::Right | JoinKind::Full) {
        for r in right {
            if !left.iter().any(|l| matches(l, r)) {
                out.push(
                    vec![Datum::Null; 2]
                        .into_iter()
                        .chain(r.iter().cloned())
                        .collect(),
                );
            }
        }
    }
    sorted(out)
}

fn join(
    kind: JoinKind,
    l: PhysicalPlan,
    r: PhysicalPlan,
    residual: bool,
    append_only: bool,
) -> PhysicalPlan {
    PhysicalPlan::HashJoin {
        left: Box::new(l),
        right: Box::new(r),
        kind,
        left_keys: vec![ScalarExpr::col(0)],
        right_keys: vec![ScalarExpr::col(0)],
        residual: residual
            .then(|| ScalarExpr::binary(BinaryOp::LtEq, ScalarExpr::col(1), ScalarExpr::col(4))),
        interval: None,
        append_only,
    }
}

#[test]
fn every_join_kind_matches_nested_loops() {
    for seed in [42, 7, 1234] {
        let env = Env::new();
        let (l, left, r, right) = sides(&env, seed);
        for kind in [
            JoinKind::Inner,
            JoinKind::Left,
            JoinKind::Right,
            JoinKind::Full,
        ] {
            for residual in [false, true] {
                // Inner joins of these append-only tables: both the arranged and the
                // symmetric hash (append-only) strategy.
                let strategies: &[bool] = if kind == JoinKind::Inner {
                    &[false, true]
                } else {
                    &[false]
                };
                for &append_only in strategies {
                    let plan = collect(join(kind, l.clone(), r.clone(), residual, append_only));
                    let expected = oracle(kind, &left, &right, residual);
                    let got = env.collect_1_and_4(&plan);
                    assert_eq!(
                        got, expected,
                        "seed {seed} {kind:?} residual={residual} append_only={append_only}"
                    );
                }
            }
        }
    }
}

#[test]
fn join_without_keys_is_a_cross_product() {
    let env = Env::new();
    let a = env.table(
        "a",
        &[("x", SqlType::BigInt)],
        (0..5).map(|i| vec![int(i)]).collect(),
    );
    let b = env.table(
        "b",
        &[("y", SqlType::BigInt)],
        (0..4).map(|i| vec![int(i)]).collect(),
    );
    let plan = PhysicalPlan::HashJoin {
        left: Box::new(scan(&a)),
        right: Box::new(scan(&b)),
        kind: JoinKind::Inner,
        left_keys: vec![],
        right_keys: vec![],
        residual: Some(ScalarExpr::binary(
            BinaryOp::Lt,
            ScalarExpr::col(0),
            ScalarExpr::col(1),
        )),
        interval: None,
        append_only: false,
    };
    let got = env.collect_1_and_4(&collect(plan));
    let mut expected = Vec::new();
    for x in 0..5 {
        for y in 0..4 {
            if x < y {
                expected.push(vec![int(x), int(y)]);
            }
        }
    }
    assert_eq!(got, expected);
}

/// Outer joins into a table sink (an updating result, consolidated by the sink) equal
/// the oracle at 1 and 4 workers. An unmatched row's insertion and its retraction once
/// matched can be emitted on different workers (differential's `antijoin` keeps its
/// input's rows where they are); the sink must bring them together. Before it did, a
/// worker's sink saw the retraction alone and the run failed with "retraction …
/// reached the append-only sink".
#[test]
fn outer_joins_into_a_table_sink_equal_the_oracle_at_any_worker_count() {
    for seed in [42, 7] {
        let env = Env::new();
        let (l, left, r, right) = sides(&env, seed);
        for kind in [JoinKind::Left, JoinKind::Right, JoinKind::Full] {
            let plan = join(kind, l.clone(), r.clone(), false, false);
            let out = env.table(
                "out",
                &[
                    ("k", SqlType::BigInt),
                    ("a", SqlType::BigInt),
                    ("k2", SqlType::BigInt),
                    ("b", SqlType::Varchar),
                    ("c", SqlType::BigInt),
                ],
                vec![],
            );
            let plan = sluice_compiler::DataflowPlan {
                outputs: vec![sluice_compiler::physical::Output {
                    target: sluice_compiler::physical::SinkTarget::Table(out.clone()),
                    plan,
                    schema: out.schema.clone(),
                    updating: true,
                    sink: Default::default(),
                }],
            };
            let expected = oracle(kind, &left, &right, false);
            for workers in [1, 4] {
                env.memory.committed.lock().unwrap().clear();
                env.run_with(&plan, workers, 3)
                    .unwrap_or_else(|e| panic!("seed {seed} {kind:?} at {workers}: {e}"));
                assert_eq!(
                    env.memory.committed("out"),
                    expected,
                    "seed {seed} {kind:?} at {workers} workers"
                );
            }
        }
    }
}
