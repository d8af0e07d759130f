//! `PROCTIME()`: a processing-time attribute as the time column of a TUMBLE. Its values
//! depend on the wall clock, so this checks what does not: the job finishes, every
//! window is closed and well formed, lies within the run's wall-clock span, and the
//! window counts add up to the input.

mod common;

use common::*;
use sluice_catalogs::SqlType;
use sluice_compiler::{AggFunc, AggregateCall, Datum, Func, PhysicalPlan, ScalarExpr, WindowKind};
use std::time::{SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[test]
fn processing_time_tumble_counts_every_row_once() {
    let env = Env::new();
    let rows: Vec<_> = (0..1_000).map(|i| vec![int(i % 7), int(i)]).collect();
    let t = env.table(
        "bids",
        &[("bidder", SqlType::BigInt), ("price", SqlType::BigInt)],
        rows.clone(),
    );
    // bidder, price, PROCTIME() AS p
    let with_p = PhysicalPlan::Calc {
        input: Box::new(scan(&t)),
        predicate: None,
        project: Some(vec![
            ScalarExpr::Column(0),
            ScalarExpr::Column(1),
            ScalarExpr::Call {
                func: Func::ProcTime,
                args: vec![],
            },
        ]),
        names: vec!["bidder".into(), "price".into(), "p".into()],
    };
    let size = 1_000;
    let windowed = PhysicalPlan::WindowAssign {
        input: Box::new(with_p),
        kind: WindowKind::Tumble { size_ms: size },
        time_col: 2,
    };
    // bidder, window_start, window_end, COUNT(*)
    let plan = collect(sluice_compiler::lower::reduce(
        windowed,
        vec![0, 3, 4],
        vec![AggregateCall {
            func: AggFunc::Count,
            arg: None,
            distinct: false,
            ty: SqlType::BigInt,
        }],
    ));
    for workers in [1, 4] {
        let before = now_ms();
        let out = env.run_with(&plan, workers, 64).unwrap();
        let after = now_ms();
        let mut total = 0;
        for r in &out.collected[0].rows {
            let (Datum::Timestamp(start), Datum::Timestamp(end), Datum::Int(n)) =
                (&r[1], &r[2], &r[3])
            else {
                panic!("unexpected row {r:?}");
            };
            assert_eq!(end - start, size, "{r:?}");
            assert_eq!(start.rem_euclid(size), 0, "{r:?}");
            assert!(
                *end > before && *start <= after,
                "window {r:?} outside the run [{before}, {after}]"
            );
            total += n;
        }
        assert_eq!(total, rows.len() as i64, "{workers} workers");
    }
}
