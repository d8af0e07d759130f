//! The `filesystem` connector over the S3 protocol: the real `sluice` binary writes
//! Parquet into an S3 bucket served by moto's S3 server (from PyPI; `.ci/test` installs
//! it and sets `SLUICE_MOTO_SERVER`), then reads it back. Credentials are given as
//! table options and one of them is a canary that must never be printed.

use sluice_tests::{sluice, stderr, stdout, Moto};
use std::path::Path;

const CANARY: &str = "CANARY-7f3a9c2e-s3-secret";

fn s3_options(endpoint: &str) -> String {
    format!(
        "'s3.endpoint' = '{endpoint}', 's3.region' = 'us-east-1', 's3.access-key-id' = 'test-key-id', \
         's3.secret-access-key' = '{CANARY}', 's3.allow-http' = 'true'"
    )
}

fn run(dir: &Path, script: &str) -> std::process::Output {
    let path = dir.join(format!("job-{}.sql", script.len()));
    std::fs::write(&path, script).unwrap();
    sluice(dir, &["run", "--format", "csv", path.to_str().unwrap()])
}

#[test]
fn parquet_round_trip_through_s3_with_credentials_never_printed() {
    let moto = Moto::start();
    moto.create_bucket("lake");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    let mut csv = String::from("id,amount\n");
    for i in 1..=2000 {
        csv.push_str(&format!("{i},{}\n", i % 97));
    }
    std::fs::write(&input, csv).unwrap();
    let opts = s3_options(&moto.endpoint);

    let write = format!(
        "CREATE TABLE src (id BIGINT, amount BIGINT) WITH ('connector' = 'filesystem', 'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         CREATE TABLE dst (id BIGINT, amount BIGINT) WITH ('connector' = 'filesystem', 'path' = 's3://lake/orders', 'format' = 'parquet', {opts});\n\
         INSERT INTO dst SELECT id, amount FROM src WHERE amount >= 50;\n",
        input.display()
    );
    let o = run(dir.path(), &write);
    assert!(o.status.success(), "write failed: {}", stderr(&o));
    for text in [stdout(&o), stderr(&o)] {
        assert!(!text.contains(CANARY), "the secret was printed: {text}");
    }
    let keys = moto.keys("lake");
    assert!(!keys.is_empty());
    assert!(
        keys.iter()
            .all(|k| k.starts_with("orders/part-") && k.ends_with(".parquet")),
        "only committed part files are visible: {keys:?}"
    );

    let read = format!(
        "CREATE TABLE orders (id BIGINT, amount BIGINT) WITH ('connector' = 'filesystem', 'path' = 's3://lake/orders', 'format' = 'parquet', {opts});\n\
         SELECT COUNT(*) AS n, SUM(amount) AS total, MIN(id) AS lo, MAX(id) AS hi FROM orders;\n"
    );
    let o = run(dir.path(), &read);
    assert!(o.status.success(), "read failed: {}", stderr(&o));
    let expected: Vec<i64> = (1..=2000).filter(|i| i % 97 >= 50).collect();
    let n = expected.len();
    let total: i64 = expected.iter().map(|i| i % 97).sum();
    let line = stdout(&o).lines().nth(1).unwrap_or_default().to_string();
    assert_eq!(
        line,
        format!("{n},{total},{},{}", expected[0], expected[n - 1]),
        "{}",
        stdout(&o)
    );

    // A failure (no such bucket) explains itself without the secret.
    let bad = format!(
        "CREATE TABLE t (id BIGINT) WITH ('connector' = 'filesystem', 'path' = 's3://no-such-bucket/x', 'format' = 'csv', {opts});\n\
         SELECT COUNT(*) FROM t;\n"
    );
    let o = run(dir.path(), &bad);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(!err.contains(CANARY), "the secret was printed: {err}");
    assert!(
        err.contains("no-such-bucket") || err.contains("NoSuchBucket"),
        "{err}"
    );

    // EXPLAIN shows no secret either.
    let path = dir.path().join("explain.sql");
    std::fs::write(&path, &read).unwrap();
    let o = sluice(dir.path(), &["explain", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains(CANARY));
}

#[test]
fn unknown_storage_options_are_rejected_with_the_valid_ones() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        "CREATE TABLE t (id BIGINT) WITH ('connector' = 'filesystem', 'path' = 's3://b/x', 'format' = 'csv', 's3.secret' = 'CANARY-x');\nSELECT * FROM t;\n",
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("s3.secret-access-key"), "{err}");
    assert!(!err.contains("CANARY-x"), "{err}");
}

#[test]
fn s3_credentials_come_from_the_table_or_with_ambient_from_the_workers_environment() {
    let moto = Moto::start();
    moto.create_bucket("amb");
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!(
        "'s3.endpoint' = '{}', 's3.region' = 'us-east-1', 's3.allow-http' = 'true'",
        moto.endpoint
    );
    let script = |auth: &str| {
        format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');\n\
             CREATE TABLE dst (id BIGINT) WITH ('connector' = 'filesystem', 'path' = 's3://amb/t', 'format' = 'csv', {endpoint}{auth});\n\
             INSERT INTO dst SELECT id FROM src;\n"
        )
    };
    // The process has AWS_* credentials, but the table neither names keys nor asks for
    // ambient ones: a clear compile error, never a fall-through to instance metadata.
    let run_env = |sql: &str| {
        let path = dir.path().join("amb.sql");
        std::fs::write(&path, sql).unwrap();
        std::process::Command::new(sluice_tests::sluice_bin())
            .args(["run", path.to_str().unwrap()])
            .current_dir(dir.path())
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", CANARY)
            .output()
            .unwrap()
    };
    let o = run_env(&script(""));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("no S3 credentials for path 's3://amb/t'"),
        "{err}"
    );
    assert!(err.contains("'s3.auth' = 'ambient'"), "{err}");
    assert!(moto.keys("amb").is_empty());
    // 'ambient': the worker's own environment.
    let o = run_env(&script(", 's3.auth' = 'ambient'"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stderr(&o).contains(CANARY));
    assert!(!moto.keys("amb").is_empty());
}
