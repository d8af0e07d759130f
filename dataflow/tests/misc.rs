//! TopN, Union, Values, collect ordering, table sinks and bad-record policies.

mod common;

use common::*;
use sluice_catalogs::SqlType;
use sluice_compiler::{
    AggFunc, AggregateCall, DataflowPlan, Datum, Output, PhysicalPlan, Row, SinkTarget, SortKey,
};
use sluice_connectors::BadRecord;
use sluice_dataflow::ExecutionError;

fn numbers(env: &Env) -> (sluice_catalogs::TableDescriptor, Vec<Row>) {
    let mut rng = Rng(5);
    let rows: Vec<Row> = (0..50)
        .map(|_| {
            let v = if rng.next(6) == 0 {
                Datum::Null
            } else {
                int(rng.next(20) as i64)
            };
            vec![v, s(["p", "q"][rng.next(2) as usize])]
        })
        .collect();
    (
        env.table(
            "n",
            &[("v", SqlType::BigInt), ("g", SqlType::Varchar)],
            rows.clone(),
        ),
        rows,
    )
}

fn key(column: usize, descending: bool, nulls_first: bool) -> SortKey {
    SortKey {
        column,
        descending,
        nulls_first,
    }
}

/// Sorts by column 0 with SQL NULL placement, ties by the whole row.
fn oracle_sort(mut rows: Vec<Row>, descending: bool, nulls_first: bool) -> Vec<Row> {
    rows.sort_by(|a, b| {
        let o = match (a[0].is_null(), b[0].is_null()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => {
                if nulls_first {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                }
            }
            (false, true) => {
                if nulls_first {
                    std::cmp::Ordering::Greater
                } else {
                    std::cmp::Ordering::Less
                }
            }
            (false, false) => {
                if descending {
                    b[0].cmp(&a[0])
                } else {
                    a[0].cmp(&b[0])
                }
            }
        };
        o.then_with(|| a.cmp(b))
    });
    rows
}

#[test]
fn topn_keeps_offset_and_limit_in_sql_order() {
    let env = Env::new();
    let (t, rows) = numbers(&env);
    for (descending, nulls_first) in [(false, false), (true, false), (false, true), (true, true)] {
        let plan = PhysicalPlan::TopN {
            input: Box::new(scan(&t)),
            keys: vec![key(0, descending, nulls_first)],
            limit: Some(7),
            offset: 3,
        };
        // Collected in the same order so the comparison is of sequences.
        let got = env.collect_1_and_4(&collect_ordered(
            plan,
            vec![key(0, descending, nulls_first)],
            None,
            0,
        ));
        let expected: Vec<Row> = oracle_sort(rows.clone(), descending, nulls_first)
            .into_iter()
            .skip(3)
            .take(7)
            .collect();
        assert_eq!(got, expected, "desc={descending} nulls_first={nulls_first}");
    }
}

#[test]
fn collect_sorts_and_cuts() {
    let env = Env::new();
    let (t, rows) = numbers(&env);
    let plan = collect_ordered(scan(&t), vec![key(0, true, true)], Some(10), 5);
    let got = env.collect_1_and_4(&plan);
    let expected: Vec<Row> = oracle_sort(rows, true, true)
        .into_iter()
        .skip(5)
        .take(10)
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn union_and_values() {
    let env = Env::new();
    let (t, rows) = numbers(&env);
    let values = vec![vec![int(100), s("v")], vec![Datum::Null, s("v")]];
    let plan = PhysicalPlan::Union {
        inputs: vec![
            scan(&t),
            PhysicalPlan::Values {
                schema: t.schema.clone(),
                rows: values.clone(),
            },
            scan(&t),
        ],
    };
    let got = env.collect_1_and_4(&collect(plan));
    let mut expected = rows.clone();
    expected.extend(values);
    expected.extend(rows);
    assert_eq!(got, sorted(expected));
}

#[test]
fn table_sinks_write_and_commit() {
    let env = Env::new();
    let (t, rows) = numbers(&env);
    let out = env.table(
        "out",
        &[("v", SqlType::BigInt), ("g", SqlType::Varchar)],
        vec![],
    );
    let counts = env.table(
        "counts",
        &[("g", SqlType::Varchar), ("n", SqlType::BigInt)],
        vec![],
    );
    let reduce = sluice_compiler::lower::reduce(
        scan(&t),
        vec![1],
        vec![AggregateCall {
            func: AggFunc::Count,
            arg: None,
            distinct: false,
            ty: SqlType::BigInt,
        }],
    );
    let plan = DataflowPlan {
        outputs: vec![
            Output {
                target: SinkTarget::Table(out.clone()),
                plan: scan(&t),
                schema: out.schema.clone(),
                updating: false,
            },
            Output {
                target: SinkTarget::Table(counts.clone()),
                plan: reduce,
                schema: counts.schema.clone(),
                updating: true,
            },
        ],
    };
    for workers in [1, 4] {
        env.memory.committed.lock().unwrap().clear();
        let result = env.run_with(&plan, workers, 4).unwrap();
        assert!(result.collected.is_empty());
        assert_eq!(env.memory.committed("out"), sorted(rows.clone()));
        let p = rows.iter().filter(|r| r[1] == s("p")).count() as i64;
        assert_eq!(
            env.memory.committed("counts"),
            vec![
                vec![s("p"), int(p)],
                vec![s("q"), int(rows.len() as i64 - p)]
            ]
        );
        assert_eq!(result.metrics.rows_out, rows.len() as u64 + 2);
        // Two outputs, two scans of the table.
        assert_eq!(result.metrics.rows_in, 2 * rows.len() as u64);
    }
}

/// A `blackhole` sink keeps no state and builds no batches (it discards), yet counts
/// exactly the rows a real sink would hold: every appended row, and the net size of an
/// updating result (a count per group whose changelog retracts and re-inserts rows).
#[test]
fn blackhole_sinks_count_the_net_result_without_materializing_it() {
    let mut env = Env::new();
    let blackhole = sluice_connectors::BlackholeConnector::default();
    env.registry
        .register(std::sync::Arc::new(blackhole.clone()));
    let (t, rows) = numbers(&env);
    let table = |name: &str, fields: &[(&str, SqlType)]| {
        let mut d = env.table(name, fields, vec![]);
        d.connector = "blackhole".into();
        d.options = [("connector".to_string(), "blackhole".to_string())].into();
        d
    };
    let out = table("out", &[("v", SqlType::BigInt), ("g", SqlType::Varchar)]);
    let counts = table("counts", &[("v", SqlType::BigInt), ("n", SqlType::BigInt)]);
    // COUNT(*) per v: 21 groups at most (NULL and 0..20), with retractions on the way.
    let reduce = sluice_compiler::lower::reduce(
        scan(&t),
        vec![0],
        vec![AggregateCall {
            func: AggFunc::Count,
            arg: None,
            distinct: false,
            ty: SqlType::BigInt,
        }],
    );
    let groups = rows
        .iter()
        .map(|r| r[0].clone())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    let plan = DataflowPlan {
        outputs: vec![
            Output {
                target: SinkTarget::Table(out.clone()),
                plan: scan(&t),
                schema: out.schema.clone(),
                updating: false,
            },
            Output {
                target: SinkTarget::Table(counts.clone()),
                plan: reduce,
                schema: counts.schema.clone(),
                updating: true,
            },
        ],
    };
    let mut before = 0;
    for workers in [1, 3] {
        // Batches of 1: each group's count is retracted and re-inserted many times.
        let result = env.run_with(&plan, workers, 1).unwrap();
        assert_eq!(result.metrics.rows_out, rows.len() as u64 + groups);
        assert_eq!(
            blackhole.rows_written() - before,
            rows.len() as u64 + groups
        );
        before = blackhole.rows_written();
    }
}

#[test]
fn failed_run_commits_nothing() {
    let env = Env::new();
    let t = env.table_with(
        "bad",
        &[("v", SqlType::BigInt)],
        vec![vec![int(1)], vec![int(2)]],
        vec![BadRecord {
            position: "mem:7".into(),
            error: "not a number".into(),
            raw: b"x".to_vec(),
        }],
        None,
        &[],
    );
    let out = env.table("sinked", &[("v", SqlType::BigInt)], vec![]);
    let plan = DataflowPlan {
        outputs: vec![Output {
            target: SinkTarget::Table(out.clone()),
            plan: scan(&t),
            schema: out.schema.clone(),
            updating: false,
        }],
    };
    for workers in [1, 4] {
        let err = env.run_with(&plan, workers, 1).unwrap_err();
        assert!(matches!(err, ExecutionError::BadRecord { .. }), "{err:?}");
        assert!(env.memory.committed("sinked").is_empty());
    }
}

#[test]
fn bad_record_policies() {
    let env = Env::new();
    let bad = vec![
        BadRecord {
            position: "mem:3".into(),
            error: "bad int".into(),
            raw: b"x".to_vec(),
        },
        BadRecord {
            position: "mem:9".into(),
            error: "bad int".into(),
            raw: b"y".to_vec(),
        },
    ];
    let rows = vec![vec![int(1)], vec![int(2)], vec![int(3)]];
    let fail = env.table_with(
        "f",
        &[("v", SqlType::BigInt)],
        rows.clone(),
        bad.clone(),
        None,
        &[],
    );
    for workers in [1, 4] {
        let err = env.run_with(&collect(scan(&fail)), workers, 2).unwrap_err();
        assert_eq!(
            err,
            ExecutionError::BadRecord {
                table: "f".into(),
                position: "mem:3".into(),
                error: "bad int".into()
            }
        );
    }
    let skip = env.table_with(
        "s",
        &[("v", SqlType::BigInt)],
        rows.clone(),
        bad,
        None,
        &[("format.on-error", "skip")],
    );
    for workers in [1, 4] {
        let out = env.run_with(&collect(scan(&skip)), workers, 2).unwrap();
        assert_eq!(out.collected[0].rows, rows);
        assert_eq!(out.metrics.bad_records, 2);
        assert_eq!(out.metrics.rows_out, 3);
    }
    let unknown = env.table_with(
        "u",
        &[("v", SqlType::BigInt)],
        rows,
        vec![],
        None,
        &[("format.on-error", "explode")],
    );
    let err = env.run_with(&collect(scan(&unknown)), 2, 2).unwrap_err();
    assert!(matches!(err, ExecutionError::Connector { .. }), "{err:?}");
}

#[test]
fn unknown_connector_is_a_connector_error() {
    let env = Env::new();
    let mut t = env.table("x", &[("v", SqlType::BigInt)], vec![]);
    t.connector = "nope".into();
    let err = env.run_with(&collect(scan(&t)), 2, 2).unwrap_err();
    assert!(
        matches!(&err, ExecutionError::Connector { table, .. } if table == "x"),
        "{err:?}"
    );
}

#[test]
fn append_only_sink_keeps_duplicates() {
    let env = Env::new();
    let (t, rows) = numbers(&env);
    let out = env.table(
        "ao",
        &[("v", SqlType::BigInt), ("g", SqlType::Varchar)],
        vec![],
    );
    let plan = DataflowPlan {
        outputs: vec![Output {
            target: SinkTarget::Table(out.clone()),
            plan: PhysicalPlan::Union {
                inputs: vec![scan(&t), scan(&t)],
            },
            schema: out.schema.clone(),
            updating: false,
        }],
    };
    env.run_with(&plan, 3, 5).unwrap();
    let mut expected = rows.clone();
    expected.extend(rows);
    assert_eq!(env.memory.committed("ao"), sorted(expected));
}

#[test]
fn retraction_into_append_only_sink_is_internal_error() {
    // A non-windowed count over a watermarked source changes as the watermark (the
    // timely time) advances: its earlier count is retracted. The compiler marks such
    // an output `updating`; declared append-only, the sink must refuse the retraction.
    let env = Env::new();
    let rows: Vec<Row> = (0..10).map(|i| vec![ts(i * 1_000)]).collect();
    let t = env.table_with(
        "wm",
        &[("ts", SqlType::Timestamp)],
        rows,
        vec![],
        Some(sluice_catalogs::Watermark {
            column: 0,
            delay_ms: 0,
        }),
        &[],
    );
    let out = env.table("counts_ao", &[("n", SqlType::BigInt)], vec![]);
    let reduce = sluice_compiler::lower::reduce(
        scan(&t),
        vec![],
        vec![AggregateCall {
            func: AggFunc::Count,
            arg: None,
            distinct: false,
            ty: SqlType::BigInt,
        }],
    );
    let mut plan = DataflowPlan {
        outputs: vec![Output {
            target: SinkTarget::Table(out.clone()),
            plan: reduce,
            schema: out.schema.clone(),
            updating: false,
        }],
    };
    let err = env.run_with(&plan, 1, 1).unwrap_err();
    assert!(matches!(err, ExecutionError::Internal(_)), "{err:?}");
    assert!(env.memory.committed("counts_ao").is_empty());
    // Declared updating, the same plan writes the final count once.
    plan.outputs[0].updating = true;
    env.run_with(&plan, 1, 1).unwrap();
    assert_eq!(env.memory.committed("counts_ao"), vec![vec![int(10)]]);
}
