//! Tests of the filesystem connector against local temporary directories.

use super::*;
use crate::format::{on_error_policy, OnError};
use crate::{BadRecord, Registry, SourcePoll};
use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, DurationMillisecondArray,
    Float64Array, Int32Array, Int64Array, StringArray, TimestampMillisecondArray,
};
use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use sluice_catalogs::{Field, Schema, SqlType};

fn table(schema: Schema, options: &[(&str, &str)]) -> TableDescriptor {
    let mut o: BTreeMap<String, String> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    o.insert("connector".into(), "filesystem".into());
    TableDescriptor {
        name: "t".into(),
        schema,
        connector: "filesystem".into(),
        options: o,
        watermark: None,
        capabilities: SourceCapabilities::default(),
    }
}

/// The committed part files directly in `dir`, sorted.
fn part_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part-")
        })
        .collect();
    v.sort();
    v
}

/// A part's name without the sink's unique token: `part-<worker>-<epoch>-<seq>.<ext>`.
fn without_token(name: &str) -> String {
    let (stem, ext) = name.rsplit_once('.').unwrap();
    let (head, token) = stem.rsplit_once('-').unwrap();
    assert!(
        !token.is_empty() && token.chars().all(|c| c.is_ascii_hexdigit()),
        "{name}"
    );
    format!("{head}.{ext}")
}

/// The names of the committed parts in `dir`, tokens left out, sorted.
fn part_names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = part_files(dir)
        .iter()
        .map(|p| without_token(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    v.sort();
    v
}

fn all_types() -> Schema {
    Schema::new(vec![
        Field::new("b", SqlType::Boolean),
        Field::new("i", SqlType::Int),
        Field::new("l", SqlType::BigInt),
        Field::new("d", SqlType::Double),
        Field::new(
            "m",
            SqlType::Decimal {
                precision: 10,
                scale: 2,
            },
        ),
        Field::new("s", SqlType::Varchar),
        Field::new("dt", SqlType::Date),
        Field::new("ts", SqlType::Timestamp),
        Field::new("iv", SqlType::Interval),
    ])
}

fn sample(schema: &Schema) -> RecordBatch {
    let cols: Vec<ArrayRef> = vec![
        Arc::new(BooleanArray::from(vec![
            Some(true),
            None,
            Some(false),
            Some(true),
        ])),
        Arc::new(Int32Array::from(vec![
            Some(1),
            Some(i32::MIN),
            None,
            Some(i32::MAX),
        ])),
        Arc::new(Int64Array::from(vec![
            Some(-7),
            None,
            Some(i64::MAX),
            Some(0),
        ])),
        Arc::new(Float64Array::from(vec![
            Some(1.5),
            Some(-0.1),
            None,
            Some(1e300),
        ])),
        Arc::new(
            Decimal128Array::from(vec![Some(12345), Some(-5), Some(0), None])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        ),
        Arc::new(StringArray::from(vec![
            Some("plain"),
            Some(""),
            Some("a,\"quoted\"\nline and ünïcode"),
            None,
        ])),
        Arc::new(Date32Array::from(vec![
            Some(0),
            Some(-1),
            None,
            Some(16631),
        ])),
        Arc::new(TimestampMillisecondArray::from(vec![
            Some(1_436_918_400_123),
            None,
            Some(-1),
            Some(0),
        ])),
        Arc::new(DurationMillisecondArray::from(vec![
            Some(1000),
            Some(-3),
            None,
            Some(0),
        ])),
    ];
    RecordBatch::try_new(
        Arc::new(arrow::datatypes::Schema::new(
            schema
                .fields
                .iter()
                .map(|f| arrow::datatypes::Field::new(&f.name, f.ty.to_arrow(), true))
                .collect::<Vec<_>>(),
        )),
        cols,
    )
    .unwrap()
}

fn ctx(worker: usize, workers: usize) -> WorkerContext {
    WorkerContext { worker, workers }
}

/// Everything one worker's source yields.
fn read(
    t: &TableDescriptor,
    projection: &[usize],
    c: WorkerContext,
    max_rows: usize,
) -> (Option<RecordBatch>, Vec<BadRecord>) {
    read_chunked(t, projection, c, max_rows, None)
}

/// Like [`read`], fetching text files `chunk` bytes at a time.
fn read_chunked(
    t: &TableDescriptor,
    projection: &[usize],
    c: WorkerContext,
    max_rows: usize,
    chunk: Option<usize>,
) -> (Option<RecordBatch>, Vec<BadRecord>) {
    let mut src = source::FileSource::new(t, projection, &[], c).unwrap();
    if let Some(chunk) = chunk {
        src.chunk = chunk;
    }
    let mut batches = Vec::new();
    let mut bad = Vec::new();
    loop {
        match src.poll(max_rows).unwrap() {
            SourcePoll::Batch { batch, bad: b } => {
                assert!(batch.num_rows() <= max_rows);
                batches.push(batch);
                bad.extend(b);
            }
            SourcePoll::Idle => panic!("a file source is never idle"),
            SourcePoll::Finished => break,
        }
    }
    let batch = batches
        .first()
        .map(|b| concat_batches(&b.schema(), &batches).unwrap());
    (batch, bad)
}

fn rows(b: &Option<RecordBatch>) -> usize {
    b.as_ref().map_or(0, RecordBatch::num_rows)
}

fn round_trip(format: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    let schema = all_types();
    let t = table(
        schema.clone(),
        &[("path", path.to_str().unwrap()), ("format", format)],
    );
    FilesystemConnector.validate(&t.options, &schema).unwrap();
    let data = sample(&schema);
    let mut sink = FilesystemConnector.create_sink(&t, ctx(0, 1)).unwrap();
    sink.write(&data).unwrap();
    sink.write(&data.slice(1, 2)).unwrap();
    sink.prepare_commit(1).unwrap();
    // Staged, not visible.
    assert_eq!(rows(&read(&t, &[0], ctx(0, 1), 100).0), 0);
    sink.commit(1).unwrap();
    sink.commit(1).unwrap();
    let ext = FileSink_ext(format);
    assert_eq!(part_names(&path), vec![format!("part-0-1-0.{ext}")]);
    let (got, bad) = read(&t, &(0..schema.len()).collect::<Vec<_>>(), ctx(0, 1), 3);
    assert!(bad.is_empty(), "{bad:?}");
    let want = concat_batches(&data.schema(), &[data.clone(), data.slice(1, 2)]).unwrap();
    let got = got.unwrap();
    assert_eq!(got.num_rows(), 6);
    for c in 0..schema.len() {
        assert_eq!(
            got.column(c).as_ref(),
            want.column(c).as_ref(),
            "{format}: column {}",
            schema.fields[c].name
        );
    }
    // Projection: only these columns, in this order.
    let (got, _) = read(&t, &[7, 5], ctx(0, 1), 100);
    let got = got.unwrap();
    assert_eq!(got.num_columns(), 2);
    assert_eq!(got.schema().field(0).name(), "ts");
    assert_eq!(got.column(0).as_ref(), want.column(7).as_ref());
    assert_eq!(got.column(1).as_ref(), want.column(5).as_ref());
    // An empty projection still counts rows.
    assert_eq!(rows(&read(&t, &[], ctx(0, 1), 100).0), 6);
}

#[allow(non_snake_case)]
fn FileSink_ext(format: &str) -> &'static str {
    match format {
        "csv" => "csv",
        "json" => "json",
        _ => "parquet",
    }
}

#[test]
fn csv_round_trip_all_types() {
    round_trip("csv");
}

#[test]
fn json_round_trip_all_types() {
    round_trip("json");
}

#[test]
fn parquet_round_trip_all_types() {
    round_trip("parquet");
}

#[test]
fn json_text_forms() {
    let dir = tempfile::tempdir().unwrap();
    let schema = all_types();
    let t = table(
        schema.clone(),
        &[("path", dir.path().to_str().unwrap()), ("format", "json")],
    );
    let mut sink = FilesystemConnector.create_sink(&t, ctx(2, 3)).unwrap();
    sink.write(&sample(&schema).slice(0, 1)).unwrap();
    sink.prepare_commit(7).unwrap();
    sink.commit(7).unwrap();
    assert_eq!(part_names(dir.path()), vec!["part-2-7-0.json"]);
    let text = std::fs::read_to_string(&part_files(dir.path())[0]).unwrap();
    assert_eq!(
        text,
        "{\"b\":true,\"i\":1,\"l\":-7,\"d\":1.5,\"m\":123.45,\"s\":\"plain\",\"dt\":\"1970-01-01\",\"ts\":\"2015-07-15 00:00:00.123\",\"iv\":1000}\n"
    );
}

#[test]
fn csv_text_forms_and_header() {
    let dir = tempfile::tempdir().unwrap();
    let schema = all_types();
    let t = table(
        schema.clone(),
        &[
            ("path", dir.path().to_str().unwrap()),
            ("format", "csv"),
            ("csv.header", "true"),
        ],
    );
    let mut sink = FilesystemConnector.create_sink(&t, ctx(0, 1)).unwrap();
    sink.write(&sample(&schema).slice(0, 2)).unwrap();
    sink.prepare_commit(0).unwrap();
    sink.commit(0).unwrap();
    assert_eq!(part_names(dir.path()), vec!["part-0-0-0.csv"]);
    let text = std::fs::read_to_string(&part_files(dir.path())[0]).unwrap();
    assert_eq!(
        text,
        "b,i,l,d,m,s,dt,ts,iv\n\
         true,1,-7,1.5,123.45,plain,1970-01-01,2015-07-15 00:00:00.123,1000\n\
         ,-2147483648,,-0.1,-0.05,\"\",1969-12-31,,-3\n"
    );
}

#[test]
fn a_headerless_csv_read_with_no_option_gives_every_row() {
    // Flink's `csv` format has no header: a job written for it must not lose line 1.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "1,a\n2,b\n3,c\n").unwrap();
    let schema = Schema::new(vec![
        Field::new("id", SqlType::BigInt),
        Field::new("name", SqlType::Varchar),
    ]);
    let t = table(
        schema.clone(),
        &[("path", dir.path().to_str().unwrap()), ("format", "csv")],
    );
    let (got, bad) = read(&t, &[0, 1], ctx(0, 1), 100);
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(
        got.unwrap().column(0).as_ref(),
        &Int64Array::from(vec![1_i64, 2, 3]) as &dyn Array
    );
    // The sink agrees: no header by default, so what it writes reads back whole.
    let out = dir.path().join("out");
    let t = table(
        schema.clone(),
        &[("path", out.to_str().unwrap()), ("format", "csv")],
    );
    let batch = RecordBatch::try_new(
        schema.to_arrow(),
        vec![
            Arc::new(Int64Array::from(vec![7_i64, 8])),
            Arc::new(StringArray::from(vec!["x", "y"])),
        ],
    )
    .unwrap();
    let mut sink = FilesystemConnector.create_sink(&t, ctx(0, 1)).unwrap();
    sink.write(&batch).unwrap();
    sink.prepare_commit(1).unwrap();
    sink.commit(1).unwrap();
    let texts: Vec<String> = part_files(&out)
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert_eq!(texts, vec!["7,x\n8,y\n".to_string()]);
    assert_eq!(rows(&read(&t, &[0], ctx(0, 1), 100).0), 2);
}

#[test]
fn a_part_older_than_the_rollover_interval_is_rolled() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::new(vec![Field::new("x", SqlType::BigInt)]);
    let t = table(
        schema.clone(),
        &[
            ("path", dir.path().to_str().unwrap()),
            ("format", "csv"),
            ("sink.rolling-policy.rollover-interval", "150ms"),
        ],
    );
    let batch = RecordBatch::try_new(
        schema.to_arrow(),
        vec![Arc::new(Int64Array::from(vec![1_i64, 2]))],
    )
    .unwrap();
    let mut sink = FilesystemConnector.create_sink(&t, ctx(0, 1)).unwrap();
    sink.write(&batch).unwrap();
    sink.write(&batch).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    // This write finds its part too old: it goes in, then the part rolls.
    sink.write(&batch).unwrap();
    sink.write(&batch).unwrap();
    sink.prepare_commit(1).unwrap();
    sink.commit(1).unwrap();
    assert_eq!(
        part_names(dir.path()),
        vec!["part-0-1-0.csv", "part-0-1-1.csv"]
    );
    assert_eq!(rows(&read(&t, &[0], ctx(0, 1), 100).0), 8);
    // A bad interval is refused with the option's name.
    let bad = FsOptions::parse(
        &[
            ("path", "/tmp/x"),
            ("format", "csv"),
            ("sink.rolling-policy.rollover-interval", "soon"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    )
    .unwrap_err()
    .to_string();
    assert!(bad.contains("rollover-interval"), "{bad}");
}

#[test]
fn staged_files_are_invisible_until_commit_and_rolling_splits_parts() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::new(vec![Field::new("x", SqlType::BigInt)]);
    let t = table(
        schema.clone(),
        &[
            ("path", dir.path().to_str().unwrap()),
            ("format", "csv"),
            ("sink.rolling-policy.file-size", "10"),
        ],
    );
    let batch = RecordBatch::try_new(
        schema.to_arrow(),
        vec![Arc::new(Int64Array::from(vec![1_000_000_000_i64, 2]))],
    )
    .unwrap();
    let mut sink = FilesystemConnector.create_sink(&t, ctx(1, 2)).unwrap();
    sink.write(&batch).unwrap();
    sink.write(&batch).unwrap();
    let visible = |d: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('_'))
            .map(|n| without_token(&n))
            .collect();
        v.sort();
        v
    };
    assert!(visible(dir.path()).is_empty());
    sink.prepare_commit(3).unwrap();
    assert!(visible(dir.path()).is_empty());
    assert!(dir.path().join("_staging").is_dir());
    assert_eq!(rows(&read(&t, &[0], ctx(0, 1), 10).0), 0);
    sink.commit(3).unwrap();
    assert_eq!(
        visible(dir.path()),
        vec!["part-1-3-0.csv", "part-1-3-1.csv"]
    );
    assert_eq!(rows(&read(&t, &[0], ctx(0, 1), 10).0), 4);
    // Nothing is left staged: no empty `_staging/` after the commit.
    assert!(!dir.path().join("_staging").exists());
    // Nothing new: committing again and an empty epoch change nothing.
    sink.commit(3).unwrap();
    sink.prepare_commit(4).unwrap();
    sink.commit(4).unwrap();
    assert_eq!(visible(dir.path()).len(), 2);
}

fn bad_positions(bad: &[BadRecord]) -> Vec<String> {
    bad.iter()
        .map(|b| b.position.rsplit('/').next().unwrap().to_string())
        .collect()
}

#[test]
fn bad_json_records_are_reported_and_good_rows_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = Vec::new();
    data.extend_from_slice(b"{\"id\": 1, \"name\": \"a\", \"extra\": [1]}\n");
    data.extend_from_slice(b"{\"id\": 2, \"name\": \n");
    data.extend_from_slice(b"{\"id\": \"two\", \"name\": \"b\"}\n");
    data.extend_from_slice(b"{\"id\": 3, \"name\": \"\xff\xfe\"}\n");
    data.extend_from_slice(b"\n");
    let big = format!("{{\"id\": 4, \"name\": \"{}\"}}\n", "x".repeat(1 << 20));
    data.extend_from_slice(big.as_bytes());
    data.extend_from_slice(b"[1, 2]\r\n");
    data.extend_from_slice(b"{\"ID\": 5}");
    std::fs::write(dir.path().join("x.json"), &data).unwrap();
    let schema = Schema::new(vec![
        Field::new("id", SqlType::BigInt),
        Field::new("name", SqlType::Varchar),
    ]);
    let t = table(
        schema,
        &[("path", dir.path().to_str().unwrap()), ("format", "json")],
    );
    let (got, bad) = read(&t, &[0, 1], ctx(0, 1), 100);
    let got = got.unwrap();
    assert_eq!(
        got.column(0).as_ref(),
        &Int64Array::from(vec![1, 5]) as &dyn Array
    );
    assert_eq!(
        got.column(1).as_ref(),
        &StringArray::from(vec![Some("a"), None]) as &dyn Array
    );
    assert_eq!(
        bad_positions(&bad),
        vec!["x.json:2", "x.json:3", "x.json:4", "x.json:6", "x.json:7"]
    );
    assert!(bad[0].error.contains("invalid JSON"), "{}", bad[0].error);
    assert!(bad[1].error.contains("column 'id'"), "{}", bad[1].error);
    assert!(bad[2].error.contains("UTF-8"), "{}", bad[2].error);
    assert!(bad[3].error.contains("larger than"), "{}", bad[3].error);
    assert!(bad[4].error.contains("object"), "{}", bad[4].error);
    assert_eq!(bad[1].raw, b"{\"id\": \"two\", \"name\": \"b\"}".to_vec());
    assert!(bad[0].position.starts_with("file:///"));
}

#[test]
fn bad_csv_records_are_reported_and_good_rows_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = Vec::new();
    data.extend_from_slice(b"id;name;day\n");
    data.extend_from_slice(b"1;a;2020-01-01\n");
    data.extend_from_slice(b"2;b\n");
    data.extend_from_slice(b"x;c;2020-01-01\n");
    data.extend_from_slice(b"3;\xff;2020-01-01\n");
    data.extend_from_slice(b"4;d;2020-02-30\n");
    let big = format!("5;{};2020-01-01\n", "y".repeat(1 << 20));
    data.extend_from_slice(big.as_bytes());
    data.extend_from_slice(b"\"6\";\"multi\nline\";\n");
    data.extend_from_slice(b"\"7\"x;e;\n");
    data.extend_from_slice(b"8;\\N;");
    std::fs::write(dir.path().join("x.csv"), &data).unwrap();
    let schema = Schema::new(vec![
        Field::new("id", SqlType::Int),
        Field::new("name", SqlType::Varchar),
        Field::new("day", SqlType::Date),
    ]);
    let t = table(
        schema,
        &[
            ("path", dir.path().to_str().unwrap()),
            ("format", "csv"),
            ("csv.header", "true"),
            ("csv.field-delimiter", ";"),
            ("csv.null-literal", "\\N"),
        ],
    );
    let (got, bad) = read(&t, &[0, 1, 2], ctx(0, 1), 100);
    let got = got.unwrap();
    assert_eq!(
        got.column(0).as_ref(),
        &Int32Array::from(vec![1, 6, 8]) as &dyn Array
    );
    assert_eq!(
        got.column(1).as_ref(),
        &StringArray::from(vec![Some("a"), Some("multi\nline"), None]) as &dyn Array
    );
    assert_eq!(
        got.column(2).as_ref(),
        &Date32Array::from(vec![Some(18262), None, None]) as &dyn Array
    );
    assert_eq!(
        bad_positions(&bad),
        vec!["x.csv:3", "x.csv:4", "x.csv:5", "x.csv:6", "x.csv:7", "x.csv:10"]
    );
    assert!(
        bad[0].error.contains("expected 3 fields"),
        "{}",
        bad[0].error
    );
    assert!(bad[1].error.contains("column 'id'"), "{}", bad[1].error);
    assert!(bad[2].error.contains("UTF-8"), "{}", bad[2].error);
    assert!(bad[3].error.contains("column 'day'"), "{}", bad[3].error);
    assert!(bad[4].error.contains("larger than"), "{}", bad[4].error);
    assert!(bad[5].error.contains("closing quote"), "{}", bad[5].error);
}

fn write_files(dir: &std::path::Path, n: usize) {
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::create_dir_all(dir.join("_staging")).unwrap();
    std::fs::create_dir_all(dir.join(".hidden")).unwrap();
    for i in 0..n {
        let sub = if i % 2 == 0 { "" } else { "sub/" };
        let body: String = (0..3).map(|r| format!("{}\n", i * 10 + r)).collect();
        std::fs::write(dir.join(format!("{sub}f{i}.csv")), body).unwrap();
    }
    std::fs::write(dir.join("_SUCCESS"), "999\n").unwrap();
    std::fs::write(dir.join(".crc"), "999\n").unwrap();
    std::fs::write(dir.join("_staging/x.csv"), "999\n").unwrap();
    std::fs::write(dir.join(".hidden/y.csv"), "999\n").unwrap();
}

#[test]
fn files_are_split_across_workers_and_hidden_names_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), 5);
    let schema = Schema::new(vec![Field::new("x", SqlType::BigInt)]);
    let t = table(
        schema,
        &[
            ("path", dir.path().to_str().unwrap()),
            ("format", "csv"),
            ("csv.header", "false"),
        ],
    );
    let whole: Vec<i64> = (0..5)
        .flat_map(|i| (0..3).map(move |r| i * 10 + r))
        .collect();
    for workers in 1..=4 {
        let mut union = Vec::new();
        for w in 0..workers {
            let (got, bad) = read(&t, &[0], ctx(w, workers), 2);
            assert!(bad.is_empty());
            if let Some(b) = got {
                let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                union.extend(a.values().iter().copied());
            }
        }
        union.sort();
        assert_eq!(union, whole, "{workers} workers");
    }
    // A single file as the path.
    let one = table(
        Schema::new(vec![Field::new("x", SqlType::BigInt)]),
        &[
            ("path", dir.path().join("sub/f1.csv").to_str().unwrap()),
            ("format", "csv"),
            ("csv.header", "false"),
        ],
    );
    assert_eq!(rows(&read(&one, &[0], ctx(0, 1), 100).0), 3);
    // A file:// URL.
    let url = format!("file://{}", dir.path().display());
    let by_url = table(
        Schema::new(vec![Field::new("x", SqlType::BigInt)]),
        &[("path", &url), ("format", "csv"), ("csv.header", "false")],
    );
    assert_eq!(rows(&read(&by_url, &[0], ctx(0, 1), 100).0), 15);
}

#[test]
fn a_missing_path_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let t = table(
        Schema::new(vec![Field::new("x", SqlType::BigInt)]),
        &[
            ("path", dir.path().join("nope").to_str().unwrap()),
            ("format", "csv"),
        ],
    );
    let e = FilesystemConnector
        .create_source(&t, &[0], &[], ctx(0, 1))
        .err()
        .unwrap();
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn seek_resumes_where_position_was_taken() {
    for format in ["csv", "json", "parquet"] {
        let dir = tempfile::tempdir().unwrap();
        let schema = all_types();
        let t = table(
            schema.clone(),
            &[("path", dir.path().to_str().unwrap()), ("format", format)],
        );
        let mut sink = FilesystemConnector.create_sink(&t, ctx(0, 1)).unwrap();
        for e in 0..3 {
            sink.write(&sample(&schema)).unwrap();
            sink.prepare_commit(e).unwrap();
            sink.commit(e).unwrap();
        }
        let proj = [1usize, 5];
        let (whole, _) = read(&t, &proj, ctx(0, 1), 100);
        let whole = whole.unwrap();
        assert_eq!(whole.num_rows(), 12);
        let mut src = FilesystemConnector
            .create_source(&t, &proj, &[], ctx(0, 1))
            .unwrap();
        let mut first = 0;
        while first < 6 {
            match src.poll(3).unwrap() {
                SourcePoll::Batch { batch, .. } => first += batch.num_rows(),
                _ => panic!("ended early"),
            }
        }
        let pos = src.position();
        let mut again = source::FileSource::new(&t, &proj, &[], ctx(0, 1)).unwrap();
        again.chunk = 5;
        again.seek(&pos).unwrap();
        let mut rest = Vec::new();
        while let SourcePoll::Batch { batch, .. } = again.poll(3).unwrap() {
            assert!(batch.num_rows() <= 3);
            rest.push(batch);
        }
        let rest = concat_batches(&whole.schema(), &rest).unwrap();
        assert_eq!(rest, whole.slice(first, 12 - first), "{format}");
    }
}

#[test]
fn parquet_columns_are_cast_but_never_lossily() {
    let dir = tempfile::tempdir().unwrap();
    let file_schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("A", arrow::datatypes::DataType::Int64, true),
        arrow::datatypes::Field::new("s", arrow::datatypes::DataType::Utf8, true),
    ]));
    let write = |name: &str, vals: Vec<i64>| {
        let n = vals.len();
        let batch = RecordBatch::try_new(
            file_schema.clone(),
            vec![
                Arc::new(Int64Array::from(vals)),
                Arc::new(StringArray::from(vec!["x"; n])),
            ],
        )
        .unwrap();
        let f = std::fs::File::create(dir.path().join(name)).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(f, file_schema.clone(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    };
    write("a.parquet", vec![1, -2, 3]);
    let t = |ty: SqlType, path: &std::path::Path| {
        table(
            Schema::new(vec![Field::new("a", ty), Field::new("s", SqlType::Varchar)]),
            &[("path", path.to_str().unwrap()), ("format", "parquet")],
        )
    };
    let (got, _) = read(&t(SqlType::Int, dir.path()), &[0], ctx(0, 1), 100);
    assert_eq!(
        got.unwrap().column(0).as_ref(),
        &Int32Array::from(vec![1, -2, 3]) as &dyn Array
    );
    // Text as a number: refused.
    let mut src = FilesystemConnector
        .create_source(
            &table(
                Schema::new(vec![Field::new("s", SqlType::BigInt)]),
                &[
                    ("path", dir.path().to_str().unwrap()),
                    ("format", "parquet"),
                ],
            ),
            &[0],
            &[],
            ctx(0, 1),
        )
        .unwrap();
    let e = src.poll(10).unwrap_err();
    assert!(matches!(e, ConnectorError::Format(_)), "{e}");
    // A value that does not fit: refused.
    write("b.parquet", vec![i64::from(i32::MAX) + 1]);
    let mut src = FilesystemConnector
        .create_source(&t(SqlType::Int, dir.path()), &[0], &[], ctx(0, 1))
        .unwrap();
    assert!(matches!(src.poll(10), Ok(SourcePoll::Batch { .. })));
    let e = src.poll(10).unwrap_err();
    assert!(e.to_string().contains("b.parquet"), "{e}");
    // A corrupt file.
    std::fs::write(dir.path().join("c.parquet"), b"not parquet").unwrap();
    std::fs::remove_file(dir.path().join("b.parquet")).unwrap();
    let e = FilesystemConnector
        .create_source(&t(SqlType::BigInt, dir.path()), &[0], &[], ctx(0, 1))
        .err()
        .unwrap();
    assert!(matches!(e, ConnectorError::Format(_)), "{e}");
    assert!(e.to_string().contains("c.parquet"), "{e}");
}

#[test]
fn options_are_validated() {
    let schema = Schema::new(vec![Field::new("x", SqlType::BigInt)]);
    let check = |opts: &[(&str, &str)]| {
        let t = table(schema.clone(), opts);
        Registry::builtin()
            .get("filesystem")
            .unwrap()
            .validate(&t.options, &schema)
            .map_err(|e| e.to_string())
    };
    let caps = check(&[("path", "/tmp/x"), ("format", "CSV")]).unwrap();
    assert_eq!(
        caps,
        sluice_catalogs::SourceCapabilities {
            filter_pushdown: true,
            projection_pushdown: true,
            bounded: true,
            sink: sluice_catalogs::SinkKind::Append,
        }
    );
    let e = check(&[("path", "/tmp/x"), ("format", "csv"), ("fromat", "x")]).unwrap_err();
    assert!(e.contains("'fromat'") && e.contains("'csv.header'"), "{e}");
    assert!(check(&[("format", "csv")]).unwrap_err().contains("'path'"));
    assert!(check(&[("path", "/x")]).unwrap_err().contains("'format'"));
    assert!(check(&[("path", "/x"), ("format", "xml")])
        .unwrap_err()
        .contains("'parquet'"));
    assert!(check(&[
        ("path", "/x"),
        ("format", "csv"),
        ("csv.field-delimiter", ";;")
    ])
    .is_err());
    assert!(check(&[("path", "/x"), ("format", "csv"), ("csv.header", "maybe")]).is_err());
    assert!(check(&[
        ("path", "/x"),
        ("format", "csv"),
        ("sink.rolling-policy.file-size", "lots")
    ])
    .is_err());
    assert!(check(&[
        ("path", "/x"),
        ("format", "parquet"),
        ("parquet.compression", "lz5")
    ])
    .is_err());
    let e = check(&[
        ("path", "/x"),
        ("format", "csv"),
        ("format.on-error", "dead-letter"),
    ])
    .unwrap_err();
    assert!(e.contains("dead-letter.path"), "{e}");
    assert!(check(&[
        ("path", "/x"),
        ("format", "csv"),
        ("format.on-error", "dead-letter"),
        ("dead-letter.path", "/tmp/dl")
    ])
    .is_ok());
    // Cloud URLs resolve; unknown schemes do not.
    assert!(check(&[
        ("path", "s3://bucket/x"),
        ("format", "csv"),
        ("s3.access-key-id", "k"),
        ("s3.secret-access-key", "s")
    ])
    .is_ok());
    assert!(check(&[("path", "ftp://host/x"), ("format", "csv")]).is_err());
    assert!(check(&[
        ("path", "s3://bucket/x"),
        ("format", "csv"),
        ("s3.nope", "1")
    ])
    .is_err());
    let t = table(
        schema.clone(),
        &[
            ("path", "/x"),
            ("format", "csv"),
            ("format.on-error", "skip"),
        ],
    );
    assert_eq!(on_error_policy(&t).unwrap(), (OnError::Skip, None));
}

#[test]
fn dead_letters_are_appended_as_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let dl = dir.path().join("dl");
    let rec = BadRecord {
        position: "file:///x.json:3".into(),
        error: "invalid JSON".into(),
        raw: b"{\xff".to_vec(),
    };
    let mut w = DeadLetterWriter::open(dl.to_str().unwrap(), 1).unwrap();
    w.write("t", &rec).unwrap();
    w.flush().unwrap();
    w.flush().unwrap();
    w.write("t", &rec).unwrap();
    w.flush().unwrap();
    drop(w);
    let mut w = DeadLetterWriter::open(dl.to_str().unwrap(), 1).unwrap();
    w.write("u", &rec).unwrap();
    w.flush().unwrap();
    let first = std::fs::read_to_string(dl.join("dead-letter-1-000000.json")).unwrap();
    let second = std::fs::read_to_string(dl.join("dead-letter-1-000001.json")).unwrap();
    assert_eq!(first.lines().count(), 2);
    assert_eq!(std::fs::read_dir(&dl).unwrap().count(), 2);
    let v: serde_json::Value = serde_json::from_str(second.trim()).unwrap();
    assert_eq!(v["table"], "u");
    assert_eq!(v["position"], "file:///x.json:3");
    assert_eq!(v["error"], "invalid JSON");
    assert_eq!(v["raw"], "{\u{fffd}");
    assert_eq!(v["raw_base64"], "e/8=");
}

#[test]
fn json_decimals_keep_all_their_digits() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("d.json"),
        "{\"m\": 12345678901234567890123456.785, \"x\": {\"nested\": [1, \"}\"]}}\n{\"m\": \"-0.5\"}\n{\"m\": 1e2}\n",
    )
    .unwrap();
    let t = table(
        Schema::new(vec![Field::new(
            "m",
            SqlType::Decimal {
                precision: 38,
                scale: 2,
            },
        )]),
        &[("path", dir.path().to_str().unwrap()), ("format", "json")],
    );
    let (got, bad) = read(&t, &[0], ctx(0, 1), 10);
    assert!(bad.is_empty(), "{bad:?}");
    let got = got.unwrap();
    let m = got
        .column(0)
        .as_any()
        .downcast_ref::<Decimal128Array>()
        .unwrap();
    assert_eq!(
        m.values().to_vec(),
        vec![1_234_567_890_123_456_789_012_345_679, -50, 10000]
    );
}

#[test]
fn parquet_row_groups_are_split_across_workers() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::new(vec![Field::new("x", SqlType::BigInt)]);
    let arrow_schema = schema.to_arrow();
    for (f, n) in [("a.parquet", 95i64), ("b.parquet", 7)] {
        let file = std::fs::File::create(dir.path().join(f)).unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(10))
            .build();
        let mut w =
            parquet::arrow::ArrowWriter::try_new(file, arrow_schema.clone(), Some(props)).unwrap();
        let vals: Vec<i64> = (0..n)
            .map(|i| i + if f == "a.parquet" { 0 } else { 1000 })
            .collect();
        w.write(
            &RecordBatch::try_new(arrow_schema.clone(), vec![Arc::new(Int64Array::from(vals))])
                .unwrap(),
        )
        .unwrap();
        w.close().unwrap();
    }
    let t = table(
        schema,
        &[
            ("path", dir.path().to_str().unwrap()),
            ("format", "parquet"),
        ],
    );
    let mut whole: Vec<i64> = (0..95).chain(1000..1007).collect();
    whole.sort();
    for workers in 1..=4 {
        let mut union = Vec::new();
        for w in 0..workers {
            let (got, _) = read(&t, &[0], ctx(w, workers), 4);
            let got = got.unwrap();
            let a = got.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            // 11 row groups: every worker gets some.
            assert!(a.len() >= 7, "worker {w} of {workers} read {}", a.len());
            union.extend(a.values().iter().copied());
        }
        union.sort();
        assert_eq!(union, whole, "{workers} workers");
    }
}

#[test]
fn works_when_called_inside_another_tokio_runtime() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.csv"), "x\n1\n2\n").unwrap();
    let t = table(
        Schema::new(vec![Field::new("x", SqlType::BigInt)]),
        &[
            ("path", dir.path().to_str().unwrap()),
            ("format", "csv"),
            ("csv.header", "true"),
        ],
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let n = rt.block_on(async { rows(&read(&t, &[0], ctx(0, 1), 10).0) });
    assert_eq!(n, 2);
}

#[test]
fn reading_in_small_chunks_gives_the_same_rows_and_bad_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut json = Vec::new();
    let mut csv = b"id,name\n".to_vec();
    for i in 0..40 {
        match i % 7 {
            2 => json.extend_from_slice(b"{\"id\": 1, \"name\": \n"),
            4 => json.extend_from_slice(
                format!(
                    "{{\"id\": {i}, \"name\": \"{}\"}}\n",
                    "z".repeat((1 << 20) + 5)
                )
                .as_bytes(),
            ),
            _ => json
                .extend_from_slice(format!("{{\"id\": {i}, \"name\": \"n\\n{i}\"}}\n").as_bytes()),
        }
        match i % 5 {
            1 => csv.extend_from_slice(format!("{i},\"multi\nline, {i}\"\n").as_bytes()),
            2 => csv.extend_from_slice(b"x,bad\n"),
            3 if i == 13 => {
                csv.extend_from_slice(format!("{i},\"{}\"\n", "q".repeat((1 << 20) + 1)).as_bytes())
            }
            _ => csv.extend_from_slice(format!("{i},n{i}\r\n").as_bytes()),
        }
    }
    std::fs::create_dir_all(dir.path().join("j")).unwrap();
    std::fs::create_dir_all(dir.path().join("c")).unwrap();
    std::fs::write(dir.path().join("j/a.json"), &json).unwrap();
    std::fs::write(dir.path().join("c/a.csv"), &csv).unwrap();
    let schema = Schema::new(vec![
        Field::new("id", SqlType::BigInt),
        Field::new("name", SqlType::Varchar),
    ]);
    for (sub, format) in [("j", "json"), ("c", "csv")] {
        let t = table(
            schema.clone(),
            &[
                ("path", dir.path().join(sub).to_str().unwrap()),
                ("format", format),
                ("csv.header", "true"),
            ],
        );
        let (whole, whole_bad) = read(&t, &[0, 1], ctx(0, 1), 1000);
        let whole = whole.unwrap();
        assert!(whole.num_rows() > 20, "{format}");
        assert!(whole_bad.len() >= 6, "{format}: {whole_bad:?}");
        for chunk in [1, 7, 64, 1000] {
            let (got, bad) = read_chunked(&t, &[0, 1], ctx(0, 1), 1000, Some(chunk));
            assert_eq!(got.unwrap(), whole, "{format}, chunk {chunk}");
            let pos = |b: &[BadRecord]| b.iter().map(|r| r.position.clone()).collect::<Vec<_>>();
            assert_eq!(pos(&bad), pos(&whole_bad), "{format}, chunk {chunk}");
            for b in &bad {
                assert!(b.raw.len() <= 64 << 10);
            }
        }
    }
}

#[test]
fn pushed_down_filters_are_applied_inside_the_source() {
    use sluice_expr::{BinaryOp, Datum, ScalarExpr};
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), 5);
    let schema = Schema::new(vec![Field::new("x", SqlType::BigInt)]);
    let t = table(
        schema,
        &[
            ("path", dir.path().to_str().unwrap()),
            ("format", "csv"),
            ("csv.header", "false"),
        ],
    );
    // x % 10 = 1 AND x > 10: one row of each file but the first.
    let filters = vec![
        ScalarExpr::binary(
            BinaryOp::Eq,
            ScalarExpr::binary(
                BinaryOp::Mod,
                ScalarExpr::col(0),
                ScalarExpr::lit(Datum::Int(10), SqlType::BigInt),
            ),
            ScalarExpr::lit(Datum::Int(1), SqlType::BigInt),
        ),
        ScalarExpr::binary(
            BinaryOp::Gt,
            ScalarExpr::col(0),
            ScalarExpr::lit(Datum::Int(10), SqlType::BigInt),
        ),
    ];
    let mut got = Vec::new();
    for w in 0..2 {
        let mut src = Registry::builtin()
            .create_source(&t, &[0], &filters, ctx(w, 2))
            .unwrap();
        loop {
            match src.poll(2).unwrap() {
                SourcePoll::Batch { batch, bad } => {
                    assert!(bad.is_empty());
                    let a = batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .unwrap();
                    got.extend(a.values().iter().copied());
                }
                SourcePoll::Idle => panic!("a file source is never idle"),
                SourcePoll::Finished => break,
            }
        }
    }
    got.sort_unstable();
    assert_eq!(got, vec![11, 21, 31, 41]);
}

#[test]
fn parquet_row_groups_excluded_by_pushed_down_filters_are_never_read() {
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;
    use sluice_expr::{BinaryOp, Datum, ScalarExpr};
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::new(vec![
        Field::new("x", SqlType::BigInt),
        Field::new("s", SqlType::Varchar),
    ]);
    let batch = RecordBatch::try_new(
        schema.to_arrow(),
        vec![
            std::sync::Arc::new(Int64Array::from_iter_values(0..40)),
            std::sync::Arc::new(arrow::array::StringArray::from_iter_values(
                (0..40).map(|i| format!("k{:02}", i)),
            )),
        ],
    )
    .unwrap();
    let file = std::fs::File::create(dir.path().join("data.parquet")).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(10))
        .build();
    let mut w = ArrowWriter::try_new(file, schema.to_arrow(), Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let t = table(
        schema,
        &[
            ("path", dir.path().to_str().unwrap()),
            ("format", "parquet"),
        ],
    );
    let lit = |v| ScalarExpr::lit(Datum::Int(v), SqlType::BigInt);
    let str_lit = |v: &str| ScalarExpr::lit(Datum::Str(v.into()), SqlType::Varchar);
    let cases: Vec<(Vec<ScalarExpr>, usize, Vec<i64>)> = vec![
        // 25 <= x < 31: row groups [20, 30) and [30, 40).
        (
            vec![
                ScalarExpr::binary(BinaryOp::GtEq, ScalarExpr::col(0), lit(25)),
                ScalarExpr::binary(BinaryOp::Gt, lit(31), ScalarExpr::col(0)),
            ],
            2,
            (25..31).collect(),
        ),
        // s = 'k07': only the first row group.
        (
            vec![ScalarExpr::binary(
                BinaryOp::Eq,
                ScalarExpr::col(1),
                str_lit("k07"),
            )],
            1,
            vec![7],
        ),
        // x > 100: nothing is read at all.
        (
            vec![ScalarExpr::binary(
                BinaryOp::Gt,
                ScalarExpr::col(0),
                lit(100),
            )],
            0,
            vec![],
        ),
        // x <> 5 cannot prune: every row group is read.
        (
            vec![ScalarExpr::binary(
                BinaryOp::NotEq,
                ScalarExpr::col(0),
                lit(5),
            )],
            4,
            (0..40).filter(|&i| i != 5).collect(),
        ),
    ];
    for (filters, groups, want) in cases {
        let src = source::FileSource::new(&t, &[0, 1], &filters, ctx(0, 1)).unwrap();
        assert_eq!(src.files.len(), groups, "{filters:?}");
        let mut src = Registry::builtin()
            .create_source(&t, &[0, 1], &filters, ctx(0, 1))
            .unwrap();
        let mut got = Vec::new();
        while let SourcePoll::Batch { batch, .. } = src.poll(7).unwrap() {
            let a = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            got.extend(a.values().iter().copied());
        }
        assert_eq!(got, want, "{filters:?}");
    }
}

/// One bounded run of `workers` sinks into `t`: worker `w` writes the rows `rows[w]`
/// (`(x, p)` pairs) and everything commits epoch 1, as a bounded job does.
fn bounded_run(t: &TableDescriptor, rows: &[Vec<(i64, &str)>]) {
    let schema = t.schema.clone();
    let mut sinks: Vec<_> = (0..rows.len())
        .map(|w| {
            FilesystemConnector
                .create_sink(t, ctx(w, rows.len()))
                .unwrap()
        })
        .collect();
    for (sink, rows) in sinks.iter_mut().zip(rows) {
        let batch = RecordBatch::try_new(
            schema.to_arrow(),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap();
        sink.write(&batch).unwrap();
    }
    // Every worker prepares before any commits (the dataflow's barrier).
    for sink in &mut sinks {
        sink.prepare_commit(1).unwrap();
    }
    for sink in &mut sinks {
        sink.commit(1).unwrap();
    }
}

/// Every `x` the table holds, sorted.
fn xs(t: &TableDescriptor) -> Vec<i64> {
    let (got, bad) = read(t, &[0], ctx(0, 1), 1000);
    assert!(bad.is_empty(), "{bad:?}");
    let mut v: Vec<i64> = got.map_or(Vec::new(), |b| {
        b.column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec()
    });
    v.sort_unstable();
    v
}

fn xp_schema() -> Schema {
    Schema::new(vec![
        Field::new("x", SqlType::BigInt),
        Field::new("p", SqlType::Varchar),
    ])
}

#[test]
fn a_second_run_at_fewer_workers_never_replaces_a_file_of_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let t = table(
        xp_schema(),
        &[("path", dir.path().to_str().unwrap()), ("format", "csv")],
    );
    bounded_run(&t, &[vec![(1, "a")], vec![(2, "a")], vec![(3, "a")]]);
    let first = part_files(dir.path());
    assert_eq!(first.len(), 3);
    bounded_run(&t, &[vec![(10, "a")], vec![(20, "a")]]);
    // Plain INSERT appends: both runs' files, under distinct names, none rewritten.
    let all = part_files(dir.path());
    assert_eq!(all.len(), 5, "{all:?}");
    assert!(first.iter().all(|f| all.contains(f)));
    assert_eq!(
        part_names(dir.path()),
        vec![
            "part-0-1-0.csv",
            "part-0-1-0.csv",
            "part-1-1-0.csv",
            "part-1-1-0.csv",
            "part-2-1-0.csv"
        ]
    );
    assert_eq!(xs(&t), vec![1, 2, 3, 10, 20]);
    assert!(!dir.path().join("_staging").exists());
}

#[test]
fn insert_overwrite_replaces_the_tables_files_at_the_first_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let plain = table(xp_schema(), &[("path", path), ("format", "csv")]);
    let over = table(
        xp_schema(),
        &[
            ("path", path),
            ("format", "csv"),
            ("sink.overwrite", "true"),
        ],
    );
    bounded_run(&plain, &[vec![(1, "a")], vec![(2, "a")], vec![(3, "a")]]);
    // A file in a subdirectory is the table's too; `_`/`.` names are not.
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/old.csv"), "4,a\n").unwrap();
    std::fs::write(dir.path().join("_SUCCESS"), "").unwrap();
    assert_eq!(xs(&plain), vec![1, 2, 3, 4]);
    bounded_run(&over, &[vec![(10, "a")], vec![(20, "a")]]);
    assert_eq!(xs(&plain), vec![10, 20]);
    assert!(dir.path().join("_SUCCESS").exists());
    assert!(!dir.path().join("_staging").exists());
    // An empty result empties the table (worker 0 deletes even when it wrote nothing).
    bounded_run(&over, &[vec![], vec![]]);
    assert_eq!(xs(&plain), Vec::<i64>::new());
    // Only the job's first epoch overwrites: a job restored from a checkpoint goes on
    // at later epochs and keeps what it committed.
    bounded_run(&plain, &[vec![(5, "a")]]);
    let mut sink = FilesystemConnector.create_sink(&over, ctx(0, 1)).unwrap();
    let batch = RecordBatch::try_new(
        xp_schema().to_arrow(),
        vec![
            Arc::new(Int64Array::from(vec![6_i64])),
            Arc::new(StringArray::from(vec!["a"])),
        ],
    )
    .unwrap();
    sink.write(&batch).unwrap();
    sink.prepare_commit(2).unwrap();
    sink.commit(2).unwrap();
    assert_eq!(xs(&plain), vec![5, 6]);
    // DDL cannot set the option: it is INSERT OVERWRITE's.
    let e = FilesystemConnector
        .validate(&over.options, &over.schema)
        .unwrap_err()
        .to_string();
    assert!(e.contains("INSERT OVERWRITE"), "{e}");
}

#[test]
fn insert_overwrite_deletes_are_recorded_and_a_restore_finishes_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let plain = table(xp_schema(), &[("path", path), ("format", "csv")]);
    let over = table(
        xp_schema(),
        &[
            ("path", path),
            ("format", "csv"),
            ("sink.overwrite", "true"),
        ],
    );
    bounded_run(&plain, &[vec![(1, "a")], vec![(2, "a")]]);
    let mut sink = FilesystemConnector.create_sink(&over, ctx(0, 1)).unwrap();
    let batch = RecordBatch::try_new(
        xp_schema().to_arrow(),
        vec![
            Arc::new(Int64Array::from(vec![7_i64])),
            Arc::new(StringArray::from(vec!["a"])),
        ],
    )
    .unwrap();
    sink.write(&batch).unwrap();
    sink.prepare_commit(1).unwrap();
    let pending = sink.pending_commit(1);
    let entries = pending.as_array().unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.as_array().unwrap().len() == 2)
            .count(),
        1
    );
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.as_array().unwrap().len() == 1)
            .count(),
        2
    );
    // The worker dies after the checkpoint record: a restore finishes the commit.
    drop(sink);
    assert_eq!(xs(&plain), vec![1, 2]);
    let mut restorer = FilesystemConnector.create_sink(&over, ctx(0, 1)).unwrap();
    restorer
        .recover(&[crate::PendingCommit {
            commit: pending,
            write_ahead: None,
        }])
        .unwrap();
    assert_eq!(xs(&plain), vec![7]);
    assert!(!dir.path().join("_staging").exists());
}

#[test]
fn insert_overwrite_of_a_partitioned_table_replaces_only_the_partitions_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let plain = table(
        xp_schema(),
        &[
            ("path", path),
            ("format", "csv"),
            ("partition.columns", "p"),
        ],
    );
    let over = table(
        xp_schema(),
        &[
            ("path", path),
            ("format", "csv"),
            ("partition.columns", "p"),
            ("sink.overwrite", "true"),
        ],
    );
    bounded_run(
        &plain,
        &[vec![(1, "a"), (2, "b")], vec![(3, "c"), (4, "a")]],
    );
    assert_eq!(xs(&plain), vec![1, 2, 3, 4]);
    // Worker 0 writes partition a, worker 1 partition b; c is not written and stays.
    bounded_run(&over, &[vec![(10, "a")], vec![(20, "b")]]);
    assert_eq!(xs(&plain), vec![3, 10, 20]);
}

#[test]
fn an_unterminated_quote_is_one_bad_record_and_reading_resumes_at_the_next_line() {
    let dir = tempfile::tempdir().unwrap();
    let schema = xp_schema();
    // 1000 lines; line 2 opens a quote it never closes.
    let mut small = String::new();
    for i in 1..=1000 {
        if i == 2 {
            small.push_str("2,\"never closed\n");
        } else {
            small.push_str(&format!("{i},n{i}\n"));
        }
    }
    // The same past the record size limit, so that a reader in chunks gives up on the
    // quote before the end of the file: 200,000 lines.
    let mut big = small.clone();
    for i in 1001..=200_000 {
        big.push_str(&format!("{i},n{i}\n"));
    }
    assert!(big.len() > 2 * MAX_RECORD_BYTES_FOR_TESTS);
    for (sub, text, lines) in [("small", &small, 1000), ("big", &big, 200_000)] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        std::fs::write(dir.path().join(sub).join("x.csv"), text).unwrap();
        let t = table(
            schema.clone(),
            &[
                ("path", dir.path().join(sub).to_str().unwrap()),
                ("format", "csv"),
                ("format.on-error", "skip"),
            ],
        );
        for chunk in [None, Some(64 << 10)] {
            let (got, bad) = read_chunked(&t, &[0], ctx(0, 1), 1 << 20, chunk);
            assert_eq!(rows(&got), lines - 1, "{sub}, chunk {chunk:?}");
            assert_eq!(
                bad_positions(&bad),
                vec!["x.csv:2"],
                "{sub}, chunk {chunk:?}"
            );
            assert_eq!(bad[0].raw, b"2,\"never closed", "{sub}, chunk {chunk:?}");
            let got = got.unwrap();
            let x = got.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            assert_eq!((x.value(0), x.value(1)), (1, 3), "{sub}, chunk {chunk:?}");
        }
    }
}

const MAX_RECORD_BYTES_FOR_TESTS: usize = crate::format::csv::MAX_RECORD_BYTES;

#[test]
fn s3_credentials_come_from_the_options_or_from_the_process_only_when_ambient() {
    let schema = Schema::new(vec![Field::new("x", SqlType::BigInt)]);
    let check = |extra: &[(&str, &str)]| {
        let mut o: Vec<(&str, &str)> = vec![("path", "s3://bucket/x"), ("format", "csv")];
        o.extend_from_slice(extra);
        let t = table(schema.clone(), &o);
        FilesystemConnector
            .validate(&t.options, &t.schema)
            .map_err(|e| e.to_string())
    };
    // Neither keys nor 'ambient': a clear refusal, not a call to the instance metadata
    // endpoint when the first object is read (whatever AWS_* this process has).
    for extra in [&[][..], &[("s3.access-key-id", "k")][..]] {
        let e = check(extra).unwrap_err();
        assert!(
            e.contains("no S3 credentials for path 's3://bucket/x'"),
            "{e}"
        );
        assert!(e.contains("'s3.auth' = 'ambient'"), "{e}");
        assert!(e.contains("'s3.secret-access-key'"), "{e}");
    }
    assert!(check(&[("s3.access-key-id", "k"), ("s3.secret-access-key", "s")]).is_ok());
    assert!(check(&[("s3.auth", "ambient")]).is_ok());
    assert!(check(&[
        ("s3.auth", "options"),
        ("s3.access-key-id", "k"),
        ("s3.secret-access-key", "s")
    ])
    .is_ok());
    let e = check(&[("s3.auth", "env")]).unwrap_err();
    assert!(
        e.contains("'s3.auth' must be 'options' or 'ambient'"),
        "{e}"
    );
    // Local paths need none.
    let t = table(schema.clone(), &[("path", "/tmp/x"), ("format", "csv")]);
    assert!(FilesystemConnector.validate(&t.options, &t.schema).is_ok());
}
