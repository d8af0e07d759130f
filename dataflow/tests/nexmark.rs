//! The real `nexmark` connector with a watermark: a tumbling-window count per auction
//! (Nexmark-q5-like) must be identical at 1 and 4 workers, lose no rows and match a
//! batch recomputation from an unwindowed run. Nexmark q3, compiled from its SQL, finds
//! rows (the generator spells states as the standard one does).

mod common;

use common::{collect, int, schema, ts};
use sluice_catalogs::{SqlType, TableDescriptor, Watermark};
use sluice_compiler::{AggFunc, AggregateCall, Datum, PhysicalPlan, Row, WindowKind};
use sluice_connectors::Registry;
use sluice_dataflow::{run, Progress, RunOptions, RunOutput};
use std::collections::BTreeMap;
use std::sync::Arc;

const EVENTS: u64 = 5_000;

fn bids() -> TableDescriptor {
    let registry = Registry::builtin();
    let options: BTreeMap<String, String> = [
        ("connector", "nexmark"),
        ("nexmark.table", "bid"),
        ("nexmark.events", "5000"),
        ("nexmark.rate", "1000"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let schema = schema(&[
        ("auction", SqlType::BigInt),
        ("price", SqlType::BigInt),
        ("dateTime", SqlType::Timestamp),
    ]);
    let capabilities = registry
        .get("nexmark")
        .unwrap()
        .validate(&options, &schema)
        .unwrap();
    assert!(capabilities.bounded);
    TableDescriptor {
        name: "bid".into(),
        schema,
        connector: "nexmark".into(),
        options,
        watermark: Some(Watermark {
            column: 2,
            delay_ms: 0,
        }),
        capabilities,
    }
}

fn go(plan: &PhysicalPlan, workers: usize) -> RunOutput {
    let options = RunOptions::new(Registry::builtin())
        .with_workers(workers)
        .with_batch_size(100);
    run(&collect(plan.clone()), options, Arc::new(Progress::new())).unwrap()
}

#[test]
fn tumbling_count_per_auction_is_exact_and_worker_independent() {
    let t = bids();
    let scan = PhysicalPlan::Source {
        table: t.clone(),
        projection: vec![0, 1, 2],
        filters: vec![],
    };
    let plan = PhysicalPlan::WindowAggregate {
        strategies: Vec::new(),
        input: Box::new(PhysicalPlan::WindowAssign {
            input: Box::new(scan.clone()),
            kind: WindowKind::Tumble { size_ms: 1_000 },
            time_col: 2,
        }),
        group_by: vec![0, 3, 4],
        aggs: vec![
            AggregateCall {
                func: AggFunc::Count,
                arg: None,
                distinct: false,
                ty: SqlType::BigInt,
            },
            AggregateCall {
                func: AggFunc::Max,
                arg: Some(1),
                distinct: false,
                ty: SqlType::BigInt,
            },
        ],
        window_end_col: 4,
        strategy: sluice_compiler::WindowStrategy::Tumble,
        // Each batch grouped by (auction, window) before the exchange, as `lower`
        // plans it (an integer key beside the window columns: the packed-key path).
        preaggregate: true,
    };
    let one = go(&plan, 1);
    let four = go(&plan, 4);
    assert_eq!(one.collected, four.collected);
    assert_eq!(one.metrics.late_rows, 0);
    assert_eq!(four.metrics.late_rows, 0);

    // Batch recomputation from the raw bids.
    let raw = go(&scan, 2).collected[0].rows.clone();
    assert_eq!(raw.len() as u64, EVENTS / 50 * 46);
    let mut groups: BTreeMap<(Datum, i64), (i64, i64)> = BTreeMap::new();
    for r in &raw {
        let (Datum::Int(price), Datum::Timestamp(t)) = (&r[1], &r[2]) else {
            panic!("{r:?}")
        };
        let start = t - t.rem_euclid(1_000);
        let g = groups.entry((r[0].clone(), start)).or_insert((0, i64::MIN));
        g.0 += 1;
        g.1 = g.1.max(*price);
    }
    let expected: Vec<Row> = groups
        .into_iter()
        .map(|((auction, start), (n, max))| {
            vec![auction, ts(start), ts(start + 1_000), int(n), int(max)]
        })
        .collect();
    assert_eq!(one.collected[0].rows, expected);
}

#[test]
fn unbounded_source_runs_until_cancelled() {
    let mut t = bids();
    t.options.remove("nexmark.events");
    t.watermark = None;
    t.capabilities = Registry::builtin()
        .get("nexmark")
        .unwrap()
        .validate(&t.options, &t.schema)
        .unwrap();
    assert!(!t.capabilities.bounded);
    let plan = collect(sluice_compiler::lower::reduce(
        PhysicalPlan::Source {
            table: t,
            projection: vec![0],
            filters: vec![],
        },
        vec![],
        vec![AggregateCall {
            func: AggFunc::Count,
            arg: None,
            distinct: false,
            ty: SqlType::BigInt,
        }],
    ));
    for workers in [1, 4] {
        let progress = Arc::new(Progress::new());
        let watcher = progress.clone();
        let mut seen_waiting = 0;
        let result = std::thread::scope(|scope| {
            let seen = &mut seen_waiting;
            scope.spawn(move || {
                // Every worker's source operator is running and never exhausted: once
                // 5,000 rows are in, all of them are seen waiting on input (within
                // 30 s). The run is cancelled either way, so that a failure is
                // reported, not a hang.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while std::time::Instant::now() < deadline {
                    if watcher.snapshot().rows_in >= 5_000 && watcher.input_waiting() {
                        *seen = watcher.sources_waiting();
                        if *seen == workers as u64 {
                            break;
                        }
                    }
                    std::thread::yield_now();
                }
                watcher.cancel();
            });
            let options = RunOptions::new(Registry::builtin())
                .with_workers(workers)
                .with_batch_size(500);
            run(&plan, options, progress.clone())
        });
        assert_eq!(
            result.unwrap_err(),
            sluice_dataflow::ExecutionError::Cancelled
        );
        assert_eq!(
            seen_waiting, workers as u64,
            "sources waiting at {workers} workers"
        );
        assert!(progress.snapshot().rows_in >= 5_000);
        assert!(
            !progress.input_waiting(),
            "cancelled sources are not waiting"
        );
    }
}

/// Nexmark q3 filters `P.state IN ('OR', 'ID', 'CA')`: with the standard generator's
/// upper-case states it finds sellers (it found none while states were lower case).
#[test]
fn q3_finds_local_sellers() {
    let registry = Registry::builtin();
    let ddl = |t: &str, cols: &str| {
        format!(
            "CREATE TABLE {t} ({cols}) WITH ('connector' = 'nexmark', 'nexmark.table' = '{t}', \
             'nexmark.events' = '20000');\n"
        )
    };
    let sql = format!(
        "{}{}SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P \
         ON A.seller = P.id \
         WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')",
        ddl(
            "person",
            "id BIGINT, name VARCHAR, emailAddress VARCHAR, creditCard VARCHAR, city VARCHAR, \
             state VARCHAR, dateTime TIMESTAMP(3), extra VARCHAR"
        ),
        ddl(
            "auction",
            "id BIGINT, itemName VARCHAR, description VARCHAR, initialBid BIGINT, \
             reserve BIGINT, dateTime TIMESTAMP(3), expires TIMESTAMP(3), seller BIGINT, \
             category BIGINT, extra VARCHAR"
        ),
    );
    let catalog = sluice_catalogs::MemoryCatalog::new();
    let compiled = sluice_compiler::compile(&sql, &catalog, &registry).unwrap();
    let options = RunOptions::new(registry).with_workers(2);
    let out = run(&compiled.plan, options, Arc::new(Progress::new())).unwrap();
    let rows = &out.collected[0].rows;
    assert!(!rows.is_empty(), "q3 found no rows");
    for r in rows {
        assert!(
            matches!(&r[2], Datum::Str(s) if ["OR", "ID", "CA"].contains(&s.as_str())),
            "{r:?}"
        );
    }
}
