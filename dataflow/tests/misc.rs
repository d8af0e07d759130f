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
                sink: Default::default(),
            },
            Output {
                target: SinkTarget::Table(counts.clone()),
                plan: reduce,
                schema: counts.schema.clone(),
                updating: true,
                sink: Default::default(),
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
                sink: Default::default(),
            },
            Output {
                target: SinkTarget::Table(counts.clone()),
                plan: reduce,
                schema: counts.schema.clone(),
                updating: true,
                sink: Default::default(),
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
            sink: Default::default(),
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
            sink: Default::default(),
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
            sink: Default::default(),
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

/// `'scan.late-records' = 'dead-letter'`: a record whose event time is behind the
/// source's watermark when it is read is written to the dead letters (as a JSON object
/// of its columns, with the watermark it missed) and not processed; the others flow on.
#[test]
fn late_records_go_to_the_dead_letters_when_the_table_says_so() {
    let env = Env::new();
    let dir = tempfile::tempdir().unwrap();
    // Seconds 0..10 in order, then one record from second 0.5 and one at second 12.
    let mut rows: Vec<Row> = (0..10).map(|i| vec![int(i), ts(i * 1_000)]).collect();
    rows.push(vec![int(100), ts(500)]);
    rows.push(vec![int(101), ts(12_000)]);
    let dead = dir.path().join("dead");
    let dead_path = dead.display().to_string();
    let t = env.table_with(
        "events",
        &[("id", SqlType::BigInt), ("ts", SqlType::Timestamp)],
        rows.clone(),
        vec![],
        Some(sluice_catalogs::Watermark {
            column: 1,
            delay_ms: 2_000,
        }),
        &[
            ("scan.late-records", "dead-letter"),
            ("dead-letter.path", &dead_path),
        ],
    );
    let got = env.run_with(&collect(scan(&t)), 1, 1).unwrap();
    let ids: Vec<i64> = got.collected[0]
        .rows
        .iter()
        .map(|r| match r[0] {
            Datum::Int(i) => i,
            _ => unreachable!(),
        })
        .collect();
    let mut expected: Vec<i64> = (0..10).collect();
    expected.push(101);
    assert_eq!(sorted_ids(ids), expected);
    assert_eq!(got.metrics.late_rows, 1);
    assert_eq!(got.metrics.dead_lettered, 1);
    let letters: String = std::fs::read_dir(&dead)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    let letter: serde_json::Value = serde_json::from_str(letters.trim()).unwrap();
    assert_eq!(letter["table"], "events");
    assert_eq!(
        letter["raw"],
        r#"{"id":100,"ts":"1970-01-01 00:00:00.500"}"#
    );
    assert!(
        letter["error"]
            .as_str()
            .unwrap()
            .contains("behind the watermark 1970-01-01 00:00:07"),
        "{letter}"
    );
    // Without a WATERMARK the option is refused with a clear message.
    let plain = env.table_with(
        "plain",
        &[("id", SqlType::BigInt)],
        vec![],
        vec![],
        None,
        &[
            ("scan.late-records", "dead-letter"),
            ("dead-letter.path", &dead_path),
        ],
    );
    let err = env.run_with(&collect(scan(&plain)), 1, 1).unwrap_err();
    assert!(err.to_string().contains("needs a WATERMARK"), "{err}");
    // A value it does not know, or no dead-letter target, is refused at compile time.
    for (options, why) in [
        (
            "'scan.late-records' = 'sometimes'",
            "expected one of 'process', 'dead-letter'",
        ),
        (
            "'scan.late-records' = 'dead-letter'",
            "needs option 'dead-letter.path' or 'dead-letter.topic'",
        ),
    ] {
        let sql = format!(
            "CREATE TABLE k (id BIGINT, ts TIMESTAMP(3), WATERMARK FOR ts AS ts) WITH (\
               'connector' = 'kafka', 'topic' = 't', 'properties.bootstrap.servers' = 'x:1', \
               'format' = 'json', {options});\n\
             SELECT id FROM k;\n"
        );
        let err = sluice_compiler::compile(
            &sql,
            &sluice_catalogs::MemoryCatalog::new(),
            &sluice_connectors::Registry::builtin(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(why) && err.contains("line 1"), "{err}");
    }
}

fn sorted_ids(mut ids: Vec<i64>) -> Vec<i64> {
    ids.sort();
    ids
}
