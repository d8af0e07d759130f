//! The job sandbox of the real `sluice serve` over HTTP: a job's tables may reach local
//! files only under `--allow-path` (never the data directory, not by `..` nor a
//! symlink), custom object-store endpoints (and, with `--allow-bucket`, buckets) only
//! when listed, and the master's own cloud credentials only when lent. A violation is a 422 at submit with the offending
//! option's line and column; an allowed job runs and its files are its owner's only.

use serde_json::{json, Value};
use sluice_tests::MasterProcess;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A job reading `path` into a print sink.
fn reader(path: &str) -> String {
    format!(
        "CREATE TABLE src (line VARCHAR) WITH (\n  'connector' = 'filesystem',\n  'format' = 'csv',\n  'path' = '{path}'\n);\n\
         CREATE TABLE out (line VARCHAR) WITH ('connector' = 'print');\n\
         INSERT INTO out SELECT line FROM src;\n"
    )
}

/// A job writing ten rows to `path`.
fn writer(path: &str) -> String {
    format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');\n\
         CREATE TABLE dst (id BIGINT) WITH ('connector' = 'filesystem', 'format' = 'csv',\n  'path' = '{path}');\n\
         INSERT INTO dst SELECT id FROM src;\n"
    )
}

fn submit(m: &MasterProcess, name: &str, sql: &str) -> (u16, Value) {
    m.request(
        "POST",
        "/api/v1/jobs",
        Some(json!({"name": name, "sql": sql,
            "resources": {"parallelism": 1, "memory_mb": 512, "gpus": 0}})),
    )
}

/// The line and column (from 1) where `'option' =` is written in `sql`.
fn position_of(sql: &str, option: &str) -> (u64, u64) {
    let needle = format!("'{option}' =");
    let at = sql
        .find(&needle)
        .unwrap_or_else(|| panic!("no {needle} in {sql}"));
    let before = &sql[..at];
    let line = before.matches('\n').count() as u64 + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
    (line, column)
}

/// Submits `sql` and expects a 422 at the line and column of `option`, whose message
/// names it and says `why`; the job must not exist afterwards.
fn refused(m: &MasterProcess, sql: &str, option: &str, why: &str) -> String {
    let at = position_of(sql, option);
    let (status, v) = submit(m, "probe", sql);
    assert_eq!(status, 422, "{sql}\n→ {v}");
    assert_eq!(v["code"], "invalid_sql", "{v}");
    assert_eq!(
        (
            v["details"]["line"].as_u64(),
            v["details"]["column"].as_u64()
        ),
        (Some(at.0), Some(at.1)),
        "{v}"
    );
    let message = v["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains(&format!("'{option}'")), "{message}");
    assert!(message.contains(why), "expected '{why}' in: {message}");
    let (status, _) = m.request("GET", "/api/v1/jobs/probe", None);
    assert_eq!(status, 404, "a refused job must not exist");
    message
}

fn wait_finished(m: &MasterProcess, name: &str) {
    m.wait_for(60, &format!("job {name} to finish"), || {
        let j = m.get(&format!("/api/v1/jobs/{name}"));
        assert_ne!(j["state"], "failed", "{j}");
        (j["state"] == "finished").then_some(())
    });
}

/// Every regular file under `dir` (recursively), with its mode.
fn files_with_modes(dir: &Path) -> Vec<(String, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                out.push((
                    e.path().display().to_string(),
                    meta.permissions().mode() & 0o777,
                ));
            }
        }
    }
    out
}

#[test]
fn jobs_reaching_outside_the_allowed_paths_are_refused_at_submit_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let outside = tempfile::tempdir().unwrap();
    // The allowed root holds the data directory: it stays out of reach all the same.
    let m = MasterProcess::start(&data, &["--allow-path", root.to_str().unwrap()]);
    let r = root.display();
    let d = data.display();

    refused(&m, &reader("/etc/passwd"), "path", "outside");
    refused(
        &m,
        &reader(&format!("{d}/secret.key")),
        "path",
        "data directory",
    );
    refused(
        &m,
        &reader(&format!("file://{d}/instances/probe-v1-x/request.json")),
        "path",
        "data directory",
    );
    // A directory above the data directory would list it.
    refused(&m, &reader(&r.to_string()), "path", "data directory");
    refused(
        &m,
        &writer(&format!("{}/out", outside.path().display())),
        "path",
        "outside",
    );
    refused(
        &m,
        &writer(&format!("{r}/a/../../escaped")),
        "path",
        "outside",
    );
    refused(
        &m,
        &writer(&format!("{r}/x/../data/store")),
        "path",
        "data directory",
    );
    // A symlink inside the root pointing out of it.
    std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();
    refused(
        &m,
        &reader(&format!("{r}/etc-link/passwd")),
        "path",
        "outside",
    );
    std::os::unix::fs::symlink(&data, root.join("data-link")).unwrap();
    refused(
        &m,
        &reader(&format!("{r}/data-link/secret.key")),
        "path",
        "data directory",
    );
    // The dead-letter path too.
    let bad_records = format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'filesystem', 'format' = 'csv', 'path' = '{r}/in',\n  'format.on-error' = 'dead-letter',\n    'dead-letter.path' = '{d}');\n\
         CREATE TABLE out (id BIGINT) WITH ('connector' = 'print');\nINSERT INTO out SELECT id FROM src;\n"
    );
    refused(&m, &bad_records, "dead-letter.path", "data directory");
    // Catalog tables and /jobs/validate are checked the same way.
    let (status, v) = m.request(
        "POST",
        "/api/v1/tables",
        Some(json!({"ddl": "CREATE TABLE p (line VARCHAR) WITH ('connector' = 'filesystem', 'format' = 'csv', 'path' = '/etc/passwd')"})),
    );
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["details"]["column"], 83, "{v}");
    let (status, v) = m.request(
        "POST",
        "/api/v1/jobs/validate",
        Some(json!({"sql": reader("/etc/passwd")})),
    );
    assert!(status == 422 || v["valid"] == false, "{status} {v}");
    assert!(v.to_string().contains("outside"), "{v}");
    // Nothing in the master's log or responses revealed the key file.
    assert!(!m.log().contains("BEGIN") && !m.log().contains("sealed"));
}

#[test]
fn an_allowed_job_runs_and_its_files_and_dead_letters_are_not_world_readable() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(&dir.path().join("data"), &[]);
    let out = dir.path().join("out");
    let (status, v) = submit(&m, "writer", &writer(&out.display().to_string()));
    assert_eq!(status, 201, "{v}");
    wait_finished(&m, "writer");
    let files = files_with_modes(&out);
    assert!(files.iter().any(|(p, _)| p.ends_with(".csv")), "{files:?}");
    for (p, mode) in &files {
        assert_eq!(mode & 0o077, 0, "{p} has mode {mode:o}");
    }
    // A bad record goes to the dead-letter directory, also owner-only.
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("a.csv"), "1\nnot-a-number\n3\n").unwrap();
    let dead = dir.path().join("dead");
    let sql = format!(
        "CREATE TABLE src (id BIGINT) WITH ('connector' = 'filesystem', 'format' = 'csv', 'path' = '{}', \
           'format.on-error' = 'dead-letter', 'dead-letter.path' = '{}');\n\
         CREATE TABLE dst (id BIGINT) WITH ('connector' = 'filesystem', 'format' = 'csv', 'path' = '{}');\n\
         INSERT INTO dst SELECT id FROM src;\n",
        input.display(),
        dead.display(),
        dir.path().join("good").display()
    );
    let (status, v) = submit(&m, "dlq", &sql);
    assert_eq!(status, 201, "{v}");
    wait_finished(&m, "dlq");
    let dead_files = files_with_modes(&dead);
    assert!(!dead_files.is_empty(), "no dead-letter file");
    for (p, mode) in &dead_files {
        assert_eq!(mode & 0o077, 0, "{p} has mode {mode:o}");
    }
}

/// A TCP server that records every byte sent to it.
struct Recorder {
    endpoint: String,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Recorder {
    fn start() -> Recorder {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, c) = (seen.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut stream = stream;
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
                let mut buf = [0u8; 4096];
                if let Ok(n) = stream.read(&mut buf) {
                    s.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            }
        });
        Recorder {
            endpoint,
            seen,
            connections,
        }
    }
}

#[test]
fn unlisted_endpoints_and_unlent_ambient_credentials_are_refused_before_anything_is_sent() {
    const CANARY: &str = "CANARY-ambient-secret-4711";
    let fake = Recorder::start();
    let dir = tempfile::tempdir().unwrap();
    let s3_job = |auth: &str| {
        format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');\n\
             CREATE TABLE dst (id BIGINT) WITH ('connector' = 'filesystem', 'format' = 'csv', 'path' = 's3://bucket/t',\n\
               's3.endpoint' = '{}', 's3.region' = 'us-east-1', 's3.allow-http' = 'true',\n\
               {auth});\n\
             INSERT INTO dst SELECT id FROM src;\n",
            fake.endpoint
        )
    };
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIA-canary"),
        ("AWS_SECRET_ACCESS_KEY", CANARY),
        ("AWS_SESSION_TOKEN", CANARY),
    ];
    // The endpoint is not listed: refused, whatever the credentials.
    let m = MasterProcess::start_with_env(&dir.path().join("data"), &[], &env);
    refused(
        &m,
        &s3_job("'s3.auth' = 'ambient'"),
        "s3.endpoint",
        "--allow-endpoint",
    );
    refused(
        &m,
        &s3_job("'s3.access-key-id' = 'k', 's3.secret-access-key' = 's'"),
        "s3.endpoint",
        "--allow-endpoint",
    );
    drop(m);
    // Listed, but the master's own credentials are not lent to it.
    let m = MasterProcess::start_with_env(
        &dir.path().join("data"),
        &["--allow-endpoint", &fake.endpoint],
        &env,
    );
    refused(
        &m,
        &s3_job("'s3.auth' = 'ambient'"),
        "s3.auth",
        "--allow-ambient-credentials",
    );
    // Nothing ever reached the fake server (every job was refused before it started).
    assert_eq!(
        fake.connections.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    let seen = String::from_utf8_lossy(&fake.seen.lock().unwrap()).into_owned();
    assert!(!seen.contains(CANARY) && !seen.contains("AKIA-canary"));
    assert!(!m.log().contains(CANARY));
}

/// `--allow-bucket`: with buckets listed, a job's `s3://`/`gs://` location in another
/// bucket is refused at submit with the option's line and column; a listed bucket
/// compiles. Nothing runs, so no object store is needed.
#[test]
fn with_buckets_listed_a_job_in_another_bucket_is_refused_at_submit() {
    let dir = tempfile::tempdir().unwrap();
    let m = MasterProcess::start(
        &dir.path().join("data"),
        &[
            "--allow-bucket",
            "s3://lake",
            "--allow-bucket",
            "gs://exports",
        ],
    );
    let job = |path: &str| {
        format!(
            "CREATE TABLE src (id BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '10');\n\
             CREATE TABLE dst (id BIGINT) WITH ('connector' = 'filesystem', 'format' = 'csv',\n  \
               'path' = '{path}',\n  's3.region' = 'us-east-1', 's3.access-key-id' = 'k', 's3.secret-access-key' = 's');\n\
             INSERT INTO dst SELECT id FROM src;\n"
        )
    };
    let message = refused(&m, &job("s3://elsewhere/t"), "path", "--allow-bucket");
    assert!(message.contains("s3://elsewhere"), "{message}");
    refused(&m, &job("s3a://lake-2/t"), "path", "--allow-bucket");
    let (s, v) = m.request(
        "POST",
        "/api/v1/jobs/validate",
        Some(json!({"sql": job("s3://lake/t")})),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["valid"], true, "{v}");
}
