//! Hive-style partitioned tables (`PARTITIONED BY (dt, region)`): the filesystem sink
//! writes `dt=…/region=…/part-*.parquet` without the partition columns in the files;
//! Sluice reads the table back (all rows, and with a filter on a partition column that
//! skips whole directories); DuckDB reads the same directory with `hive_partitioning`
//! and sees the same rows.

use sluice_catalogs::MemoryCatalog;
use sluice_compiler::Datum;
use sluice_connectors::Registry;
use sluice_dataflow::{run, Progress, RunOptions};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const ROWS: i64 = 5000;

fn ddl(out: &Path, format: &str) -> String {
    let header = if format == "csv" {
        ", 'csv.header' = 'true'"
    } else {
        ""
    };
    format!(
        "CREATE TABLE sales (id BIGINT, amount BIGINT, dt DATE, region VARCHAR) \
           PARTITIONED BY (dt, region) \
           WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = '{format}'{header});\n",
        out.display()
    )
}

fn collect(sql: &str, workers: usize) -> (Vec<Vec<Datum>>, u64) {
    let plan = sluice_compiler::compile(sql, &MemoryCatalog::new(), &Registry::builtin())
        .unwrap_or_else(|e| panic!("{e}"))
        .plan;
    let progress = Arc::new(Progress::new());
    let out = run(
        &plan,
        RunOptions::new(Registry::builtin()).with_workers(workers),
        progress.clone(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut rows = out.collected.into_iter().next().unwrap().rows;
    rows.sort();
    (rows, progress.snapshot().rows_in)
}

/// Writes ROWS rows from datagen: id 1.., amount id % 97, dt one of three days, region
/// one of four (one of them NULL).
fn write(out: &Path, format: &str) {
    let sql = format!(
        "CREATE TABLE gen (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '{ROWS}', \
           'fields.id.kind' = 'sequence', 'fields.id.min' = '1', 'fields.id.max' = '{ROWS}');\n{}\
         INSERT INTO sales SELECT id, id % 97, CAST(DATE '2026-11-19' + CAST(id % 3 AS INT) AS DATE), \
           CASE id % 4 WHEN 0 THEN 'eu' WHEN 1 THEN 'us/west' WHEN 2 THEN 'apac:1' ELSE NULL END FROM gen;\n",
        ddl(out, format)
    );
    let plan = sluice_compiler::compile(&sql, &MemoryCatalog::new(), &Registry::builtin())
        .unwrap_or_else(|e| panic!("{e}"))
        .plan;
    run(
        &plan,
        RunOptions::new(Registry::builtin()).with_workers(2),
        Arc::new(Progress::new()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
}

fn expected(filter: impl Fn(i64) -> bool) -> Vec<Vec<Datum>> {
    let day0 = 20776; // 2026-11-19 in days since 1970-01-01
    let mut rows: Vec<Vec<Datum>> = (1..=ROWS)
        .filter(|i| filter(*i))
        .map(|i| {
            let region = match i % 4 {
                0 => Datum::Str("eu".into()),
                1 => Datum::Str("us/west".into()),
                2 => Datum::Str("apac:1".into()),
                _ => Datum::Null,
            };
            vec![
                Datum::Int(i),
                Datum::Int(i % 97),
                Datum::Date(day0 + (i % 3) as i32),
                region,
            ]
        })
        .collect();
    rows.sort();
    rows
}

/// Asserts equal row lists, printing the first difference only.
fn same(got: &[Vec<Datum>], want: &[Vec<Datum>], what: &str) {
    let first = got.iter().zip(want).position(|(g, w)| g != w);
    assert!(
        got.len() == want.len() && first.is_none(),
        "{what}: {} rows, {} expected; first difference at {first:?}: {:?} vs {:?}",
        got.len(),
        want.len(),
        first.and_then(|i| got.get(i)),
        first.and_then(|i| want.get(i)),
    );
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_partitioned_table_is_written_hive_style_and_read_back_with_pruning() {
    for format in ["parquet", "csv", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("sales");
        write(&out, format);

        // Layout: 3 days × 4 regions, escaped, NULL as Hive's default partition.
        let mut dirs: Vec<String> = files(&out)
            .iter()
            .map(|f| {
                let rel = f.strip_prefix(&out).unwrap().parent().unwrap();
                rel.to_string_lossy().into_owned()
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        assert_eq!(dirs.len(), 12, "{format}: {dirs:?}");
        assert!(
            dirs.contains(&"dt=2026-11-20/region=us%2Fwest".to_string()),
            "{dirs:?}"
        );
        assert!(
            dirs.contains(&"dt=2026-11-21/region=apac%3A1".to_string()),
            "{dirs:?}"
        );
        assert!(
            dirs.contains(&"dt=2026-11-19/region=__HIVE_DEFAULT_PARTITION__".to_string()),
            "{dirs:?}"
        );
        if format == "csv" {
            // The files hold the data columns only.
            let f = files(&out).into_iter().next().unwrap();
            let header = std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_string();
            assert_eq!(header, "id,amount");
        }

        // Read back: everything, and the NULL partition.
        let (all, read_all) = collect(&format!("{}SELECT * FROM sales;\n", ddl(&out, format)), 2);
        same(&all, &expected(|_| true), format);
        assert_eq!(read_all, ROWS as u64);
        let (nulls, _) = collect(
            &format!(
                "{}SELECT * FROM sales WHERE region IS NULL;\n",
                ddl(&out, format)
            ),
            2,
        );
        same(&nulls, &expected(|i| i % 4 == 3), format);

        // One day and one region: the other directories are never opened — a corrupt
        // file in one of them does not matter (while a query that reads it fails).
        let junk = out
            .join("dt=2026-11-19/region=eu")
            .join(format!("part-junk.{format}"));
        std::fs::write(&junk, b"not a data file {\n1,2,3,4\n").unwrap();
        let (some, _) = collect(
            &format!(
                "{}SELECT * FROM sales WHERE dt = DATE '2026-11-20' AND region = 'us/west';\n",
                ddl(&out, format)
            ),
            1,
        );
        same(&some, &expected(|i| i % 3 == 1 && i % 4 == 1), format);
        let plan = sluice_compiler::compile(
            &format!("{}SELECT * FROM sales WHERE id > 0;\n", ddl(&out, format)),
            &MemoryCatalog::new(),
            &Registry::builtin(),
        )
        .unwrap()
        .plan;
        let err = run(
            &plan,
            RunOptions::new(Registry::builtin()),
            Arc::new(Progress::new()),
        );
        assert!(err.is_err(), "{format}: the corrupt file was not noticed");
    }
}

#[test]
fn a_partition_column_the_table_lacks_is_a_clear_error() {
    let sql = "CREATE TABLE s (a BIGINT, dt DATE) PARTITIONED BY (day) \
               WITH ('connector' = 'filesystem', 'path' = '/tmp/x', 'format' = 'csv');\n\
               SELECT a FROM s;\n";
    let err = match sluice_compiler::compile(sql, &MemoryCatalog::new(), &Registry::builtin()) {
        Ok(_) => panic!("an unknown partition column is an error"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("partition column 'day' is not a column"),
        "{err}"
    );
}

/// DuckDB (the oracle) reads the Parquet layout with `hive_partitioning` and finds the
/// same rows, partition values included.
#[test]
fn duckdb_reads_the_partitioned_parquet_layout() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sales");
    write(&out, "parquet");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let python = std::env::var_os("SLUICE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python3"));
    let script = format!(
        "import duckdb\n\
         r = duckdb.sql(\"SELECT count(*), sum(id), sum(amount), count(DISTINCT dt), \
           count(*) FILTER (WHERE region = 'us/west'), count(*) FILTER (WHERE region = '__HIVE_DEFAULT_PARTITION__' OR region IS NULL) \
           FROM read_parquet('{}/**/*.parquet', hive_partitioning = true)\").fetchone()\n\
         print(','.join(str(x) for x in r))\n",
        out.display()
    );
    let o = Command::new(&python)
        .args(["-c", &script])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e} (set SLUICE_PYTHON)", python.display()));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let got = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let sum_id: i64 = (1..=ROWS).sum();
    let sum_amount: i64 = (1..=ROWS).map(|i| i % 97).sum();
    let west = (1..=ROWS).filter(|i| i % 4 == 1).count();
    let null = (1..=ROWS).filter(|i| i % 4 == 3).count();
    assert_eq!(got, format!("{ROWS},{sum_id},{sum_amount},3,{west},{null}"));
}
