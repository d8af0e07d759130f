//! OVER aggregates (`AGG(x) OVER (PARTITION BY … ORDER BY … ROWS BETWEEN n PRECEDING
//! AND CURRENT ROW)`) against a from-scratch recomputation: out-of-order input from a
//! watermarked source arrives at many timestamps, so rows land before rows already
//! emitted and the frames after them must be retracted and emitted again; over an
//! updating aggregate, rows also leave their partition. At 1, 2 and 4 workers.

mod common;

use common::*;
use sluice_catalogs::{SqlType, Watermark};
use sluice_compiler::{AggFunc, AggregateCall, Datum, PhysicalPlan, Row, SortKey};
use std::collections::BTreeMap;

/// (ts, k, v, id): ts jitters ±800 ms around a drifting clock; `id` is unique.
fn events() -> Vec<Row> {
    let mut rng = Rng(0x0e7e_5eed);
    (0..400)
        .map(|i| {
            let t = 1_000 + i * 20 + rng.next(1_600) as i64 - 800;
            vec![
                ts(t),
                s(["a", "b", "c"][rng.next(3) as usize]),
                int(rng.next(50) as i64),
                int(i),
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
            ("id", SqlType::BigInt),
        ],
        rows,
        vec![],
        Some(Watermark {
            column: 0,
            delay_ms: 100,
        }),
        &[],
    )
}

fn asc(column: usize) -> SortKey {
    SortKey {
        column,
        descending: false,
        nulls_first: false,
    }
}

fn agg(func: AggFunc, arg: Option<usize>) -> AggregateCall {
    AggregateCall {
        func,
        arg,
        distinct: false,
        ty: SqlType::BigInt,
    }
}

/// Per partition (column `p`), rows sorted by column `o` (then the whole row), each
/// followed by SUM(v), COUNT(*) and MAX(v) over itself and the `n` rows before it.
fn recompute(rows: &[Row], p: usize, o: usize, v: usize, n: usize) -> Vec<Row> {
    let mut parts: BTreeMap<Datum, Vec<Row>> = BTreeMap::new();
    for r in rows {
        parts.entry(r[p].clone()).or_default().push(r.clone());
    }
    let mut out = Vec::new();
    for (_, mut part) in parts {
        part.sort_by(|a, b| a[o].cmp(&b[o]).then_with(|| a.cmp(b)));
        for i in 0..part.len() {
            let frame = &part[i.saturating_sub(n)..=i];
            let value = |r: &Row| match r[v] {
                Datum::Int(x) => x,
                _ => panic!("not an integer"),
            };
            let mut row = part[i].clone();
            row.push(int(frame.iter().map(value).sum()));
            row.push(int(frame.len() as i64));
            row.push(int(frame.iter().map(value).max().unwrap()));
            out.push(row);
        }
    }
    out.sort();
    out
}

fn over(input: PhysicalPlan, p: usize, o: usize, v: usize, n: u64) -> PhysicalPlan {
    PhysicalPlan::Over {
        input: Box::new(input),
        partition_by: vec![p],
        order_by: vec![asc(o)],
        aggs: vec![
            agg(AggFunc::Sum, Some(v)),
            agg(AggFunc::Count, None),
            agg(AggFunc::Max, Some(v)),
        ],
        preceding: Some(n),
    }
}

#[test]
fn frames_over_out_of_order_input_equal_a_recomputation() {
    let env = Env::new();
    let rows = events();
    let t = table(&env, rows.clone());
    for n in [0, 1, 4] {
        // Per k, ordered by id: rows arrive out of id order across times.
        let plan = collect(over(scan(&t), 1, 3, 2, n));
        let expected = recompute(&rows, 1, 3, 2, n as usize);
        for (workers, batch) in [(1, 1), (2, 7), (4, 3)] {
            let out = env.run_with(&plan, workers, batch).unwrap();
            assert_eq!(
                sorted(out.collected[0].rows.clone()),
                expected,
                "{n} preceding, {workers} workers, batch {batch}"
            );
        }
    }
}

#[test]
fn frames_over_an_updating_aggregate_equal_a_recomputation() {
    // (k, v % 7, count): the counts grow time after time, so the aggregate retracts
    // rows of the OVER's partitions and each frame after them changes.
    let env = Env::new();
    let rows = events();
    let t = table(&env, rows.clone());
    let modded = PhysicalPlan::Calc {
        input: Box::new(scan(&t)),
        predicate: None,
        project: Some(vec![
            sluice_compiler::ScalarExpr::Column(1),
            sluice_compiler::ScalarExpr::binary(
                sluice_compiler::expr::BinaryOp::Mod,
                sluice_compiler::ScalarExpr::Column(2),
                sluice_compiler::ScalarExpr::Literal(int(7), SqlType::BigInt),
            ),
        ]),
        names: vec!["k".into(), "m".into()],
    };
    let counts =
        sluice_compiler::lower::reduce(modded, vec![0, 1], vec![agg(AggFunc::Count, None)]);
    // Partition by k, order by the count, frames of 2 preceding over the counts.
    let plan = collect(over(counts, 0, 2, 2, 2));
    let mut n: BTreeMap<(Datum, i64), i64> = BTreeMap::new();
    for r in &rows {
        let Datum::Int(v) = r[2] else { unreachable!() };
        *n.entry((r[1].clone(), v % 7)).or_default() += 1;
    }
    let grouped: Vec<Row> = n
        .into_iter()
        .map(|((k, m), c)| vec![k, int(m), int(c)])
        .collect();
    let expected = recompute(&grouped, 0, 2, 2, 2);
    for (workers, batch) in [(1, 1), (4, 3)] {
        let out = env.run_with(&plan, workers, batch).unwrap();
        assert_eq!(
            sorted(out.collected[0].rows.clone()),
            expected,
            "{workers} workers"
        );
    }
}
