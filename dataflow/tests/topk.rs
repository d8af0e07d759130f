//! Per-partition Top-N (`TopK`) against a from-scratch recomputation: out-of-order input
//! from a watermarked source arrives at many timestamps (so partitions' tops change
//! again and again, and displaced or renumbered rows must be retracted), with ties in
//! the ORDER BY, for both strategies, with and without the row number, at 1, 2 and 4
//! workers. The consolidated output must equal sorting everything and cutting.

mod common;

use common::*;
use sluice_catalogs::{SqlType, Watermark};
use sluice_compiler::physical::TopKStrategy;
use sluice_compiler::{AggFunc, AggregateCall, Datum, PhysicalPlan, Row, SortKey};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// (ts, k, v, id): ts jitters ±800 ms around a drifting clock; v has many ties.
fn events() -> Vec<Row> {
    let mut rng = Rng(0x5eed_70b5);
    (0..500)
        .map(|i| {
            let t = 1_000 + i * 20 + rng.next(1_600) as i64 - 800;
            vec![
                ts(t),
                s(["a", "b", "c", "d"][rng.next(4) as usize]),
                int(rng.next(12) as i64),
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

fn key(column: usize, descending: bool) -> SortKey {
    SortKey {
        column,
        descending,
        nulls_first: false,
    }
}

/// The Top-N by sorting each whole partition (ties broken by the whole row).
fn recompute(
    rows: &[Row],
    partition_by: &[usize],
    order_by: &[SortKey],
    limit: usize,
    rank_column: bool,
) -> Vec<Row> {
    let mut parts: BTreeMap<Row, Vec<Row>> = BTreeMap::new();
    for r in rows {
        let k: Row = partition_by.iter().map(|&c| r[c].clone()).collect();
        parts.entry(k).or_default().push(r.clone());
    }
    let mut out = Vec::new();
    for (_, mut part) in parts {
        part.sort_by(|a, b| {
            for k in order_by {
                let o = a[k.column].cmp(&b[k.column]);
                let o = if k.descending { o.reverse() } else { o };
                if o != Ordering::Equal {
                    return o;
                }
            }
            a.cmp(b)
        });
        for (i, mut r) in part.into_iter().take(limit).enumerate() {
            if rank_column {
                r.push(int(i as i64 + 1));
            }
            out.push(r);
        }
    }
    sorted(out)
}

fn topk(
    input: PhysicalPlan,
    limit: u64,
    rank_column: bool,
    strategy: TopKStrategy,
) -> PhysicalPlan {
    PhysicalPlan::TopK {
        input: Box::new(input),
        partition_by: vec![1],
        order_by: vec![key(2, true)],
        limit,
        rank_column,
        strategy,
    }
}

#[test]
fn monotonic_top_n_over_out_of_order_input_equals_recomputation() {
    let env = Env::new();
    let rows = events();
    let t = table(&env, rows.clone());
    for (limit, rank_column) in [(1, false), (1, true), (3, true), (5, false), (0, true)] {
        let plan = collect(topk(scan(&t), limit, rank_column, TopKStrategy::Monotonic));
        let expected = recompute(&rows, &[1], &[key(2, true)], limit as usize, rank_column);
        for (workers, batch) in [(1, 1), (2, 7), (4, 3)] {
            let out = env.run_with(&plan, workers, batch).unwrap();
            assert_eq!(
                sorted(out.collected[0].rows.clone()),
                expected,
                "limit {limit}, rank column {rank_column}, {workers} workers, batch {batch}"
            );
        }
    }
}

#[test]
fn retracting_top_n_equals_the_monotonic_one_on_append_only_input() {
    let env = Env::new();
    let rows = events();
    let t = table(&env, rows.clone());
    let expected = recompute(&rows, &[1], &[key(2, true)], 4, true);
    let plan = collect(topk(scan(&t), 4, true, TopKStrategy::Retracting));
    for (workers, batch) in [(1, 5), (4, 3)] {
        let out = env.run_with(&plan, workers, batch).unwrap();
        assert_eq!(sorted(out.collected[0].rows.clone()), expected);
    }
}

#[test]
fn retracting_top_n_over_an_updating_aggregate() {
    // Per k, the two values of v with the most rows: the counts grow time after time
    // (the Reduce retracts its old rows), so the Top-N sees retractions of rows in its
    // top and must promote the next best.
    let env = Env::new();
    let rows = events();
    let t = table(&env, rows.clone());
    let counts = sluice_compiler::lower::reduce(
        scan(&t),
        vec![1, 2],
        vec![AggregateCall {
            func: AggFunc::Count,
            arg: None,
            distinct: false,
            ty: SqlType::BigInt,
        }],
    );
    // (k, v, count): partition by k, order by count DESC, then v.
    let plan = collect(PhysicalPlan::TopK {
        input: Box::new(counts),
        partition_by: vec![0],
        order_by: vec![key(2, true), key(1, false)],
        limit: 2,
        rank_column: true,
        strategy: TopKStrategy::Retracting,
    });
    let mut n: BTreeMap<(Datum, Datum), i64> = BTreeMap::new();
    for r in &rows {
        *n.entry((r[1].clone(), r[2].clone())).or_default() += 1;
    }
    let grouped: Vec<Row> = n
        .into_iter()
        .map(|((k, v), c)| vec![k, v, int(c)])
        .collect();
    let expected = recompute(&grouped, &[0], &[key(2, true), key(1, false)], 2, true);
    for (workers, batch) in [(1, 1), (4, 3)] {
        let out = env.run_with(&plan, workers, batch).unwrap();
        assert_eq!(sorted(out.collected[0].rows.clone()), expected);
    }
}
