//! The real `filesystem` connector end to end: CSV files → Calc → Reduce → CSV sink,
//! read back by a second run; bad records dead-lettered.

mod common;

use common::{int, s, schema, sorted};
use sluice_catalogs::{SqlType, TableDescriptor};
use sluice_compiler::{
    AggFunc, AggregateCall, BinaryOp, DataflowPlan, Datum, Output, PhysicalPlan, Row, ScalarExpr,
    SinkTarget,
};
use sluice_connectors::Registry;
use sluice_dataflow::{run, ExecutionError, Progress, RunOptions, RunOutput};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

fn fs_table(
    name: &str,
    dir: &Path,
    fields: &[(&str, SqlType)],
    extra: &[(&str, &str)],
) -> TableDescriptor {
    let registry = Registry::builtin();
    let mut options: BTreeMap<String, String> = [
        ("connector", "filesystem"),
        ("format", "csv"),
        ("csv.header", "true"),
        ("path", dir.to_str().unwrap()),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    options.insert("connector".into(), "filesystem".into());
    let schema = schema(fields);
    let capabilities = registry
        .get("filesystem")
        .unwrap()
        .validate(&options, &schema)
        .expect("valid options");
    TableDescriptor {
        name: name.into(),
        schema,
        connector: "filesystem".into(),
        options,
        watermark: None,
        capabilities,
    }
}

fn go(plan: &DataflowPlan, workers: usize) -> Result<RunOutput, ExecutionError> {
    let options = RunOptions::new(Registry::builtin())
        .with_workers(workers)
        .with_batch_size(2);
    run(plan, options, Arc::new(Progress::new()))
}

const FIELDS: &[(&str, SqlType)] = &[
    ("id", SqlType::BigInt),
    ("g", SqlType::Varchar),
    ("v", SqlType::BigInt),
];

fn write_inputs(dir: &Path) -> Vec<Row> {
    std::fs::create_dir_all(dir).unwrap();
    let mut rows = Vec::new();
    for f in 0..3 {
        let mut text = String::from("id,g,v\n");
        for i in 0..10 {
            let id = f * 10 + i;
            let g = ["a", "b"][(id % 2) as usize];
            text.push_str(&format!("{id},{g},{}\n", id * 3 % 7));
            rows.push(vec![int(id), s(g), int(id * 3 % 7)]);
        }
        std::fs::write(dir.join(format!("part-{f}.csv")), text).unwrap();
    }
    rows
}

#[test]
fn csv_to_reduce_to_csv_sink_and_back() {
    let tmp = tempfile::tempdir().unwrap();
    let input_dir = tmp.path().join("in");
    let rows = write_inputs(&input_dir);
    let input = fs_table("input", &input_dir, FIELDS, &[]);
    let out_fields = &[
        ("g", SqlType::Varchar),
        ("n", SqlType::BigInt),
        ("total", SqlType::BigInt),
    ];

    let mut expected: BTreeMap<Datum, (i64, i64)> = BTreeMap::new();
    for r in &rows {
        if let (Datum::Int(v), g) = (&r[2], &r[1]) {
            if *v > 1 {
                let e = expected.entry(g.clone()).or_default();
                e.0 += 1;
                e.1 += v;
            }
        }
    }
    let expected: Vec<Row> = expected
        .into_iter()
        .map(|(g, (n, t))| vec![g, int(n), int(t)])
        .collect();

    for workers in [1, 4] {
        let out_dir = tmp.path().join(format!("out-{workers}"));
        let output = fs_table("output", &out_dir, out_fields, &[]);
        let plan = DataflowPlan {
            outputs: vec![Output {
                target: SinkTarget::Table(output.clone()),
                plan: sluice_compiler::lower::reduce(
                    PhysicalPlan::Calc {
                        input: Box::new(PhysicalPlan::Source {
                            table: input.clone(),
                            projection: vec![1, 2],
                            filters: vec![],
                        }),
                        predicate: Some(ScalarExpr::binary(
                            BinaryOp::Gt,
                            ScalarExpr::col(1),
                            ScalarExpr::lit(int(1), SqlType::BigInt),
                        )),
                        project: None,
                        names: vec![],
                    },
                    vec![0],
                    vec![
                        AggregateCall {
                            func: AggFunc::Count,
                            arg: None,
                            distinct: false,
                            ty: SqlType::BigInt,
                        },
                        AggregateCall {
                            func: AggFunc::Sum,
                            arg: Some(1),
                            distinct: false,
                            ty: SqlType::BigInt,
                        },
                    ],
                ),
                schema: output.schema.clone(),
                updating: true,
                sink: Default::default(),
            }],
        };
        let result = go(&plan, workers).unwrap();
        assert_eq!(result.metrics.rows_in, rows.len() as u64);
        assert_eq!(result.metrics.rows_out, expected.len() as u64);

        let back = common::collect(common::scan(&output));
        let read = go(&back, 2).unwrap();
        assert_eq!(
            sorted(read.collected[0].rows.clone()),
            expected,
            "{workers} workers"
        );
    }
}

#[test]
fn bad_csv_lines_fail_skip_or_go_to_the_dead_letter_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("in");
    let mut rows = write_inputs(&dir);
    std::fs::write(
        dir.join("part-9.csv"),
        "id,g,v\n100,c,1\nnot-a-number,c,2\n101,c,3\n",
    )
    .unwrap();
    rows.push(vec![int(100), s("c"), int(1)]);
    rows.push(vec![int(101), s("c"), int(3)]);

    let fail = fs_table("input", &dir, FIELDS, &[]);
    for workers in [1, 4] {
        let err = go(&common::collect(common::scan(&fail)), workers).unwrap_err();
        assert!(
            matches!(&err, ExecutionError::BadRecord { table, .. } if table == "input"),
            "{err:?}"
        );
    }

    let skip = fs_table("input", &dir, FIELDS, &[("format.on-error", "skip")]);
    let out = go(&common::collect(common::scan(&skip)), 4).unwrap();
    assert_eq!(out.collected[0].rows, sorted(rows.clone()));
    assert_eq!((out.metrics.bad_records, out.metrics.dead_lettered), (1, 0));

    let dl_dir = tmp.path().join("dead");
    let dead = fs_table(
        "input",
        &dir,
        FIELDS,
        &[
            ("format.on-error", "dead-letter"),
            ("dead-letter.path", dl_dir.to_str().unwrap()),
        ],
    );
    let out = go(&common::collect(common::scan(&dead)), 4).unwrap();
    assert_eq!(out.collected[0].rows, sorted(rows));
    assert_eq!((out.metrics.bad_records, out.metrics.dead_lettered), (1, 1));
    let mut letters = String::new();
    for entry in std::fs::read_dir(&dl_dir).unwrap() {
        letters.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert_eq!(letters.lines().count(), 1, "{letters}");
    assert!(
        letters.contains("not-a-number") && letters.contains("\"table\":\"input\""),
        "{letters}"
    );
}
