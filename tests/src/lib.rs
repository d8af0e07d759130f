//! Helpers for Sluice's end-to-end tests (in `tests/tests/`): they drive the real
//! `sluice` binary as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The `sluice` binary: `$SLUICE_BIN`, else `$CARGO_TARGET_DIR/debug/sluice`, else
/// `<workspace>/target/debug/sluice`. Panics with instructions when it is missing.
pub fn sluice_bin() -> PathBuf {
    let candidates: Vec<PathBuf> = [
        std::env::var_os("SLUICE_BIN").map(PathBuf::from),
        std::env::var_os("CARGO_TARGET_DIR").map(|d| workspace_root().join(d).join("debug/sluice")),
        Some(workspace_root().join("target/debug/sluice")),
    ]
    .into_iter()
    .flatten()
    .collect();
    for c in &candidates {
        if c.is_file() {
            return c.clone();
        }
    }
    panic!("the sluice binary was not found (looked at {candidates:?}): run `cargo build --bin sluice` first, or use `bash .ci/test`");
}

/// Run `sluice` with these arguments in `dir`.
pub fn sluice(dir: &Path, args: &[&str]) -> Output {
    Command::new(sluice_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("failed to start the sluice binary")
}

/// Standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The metrics JSON line `sluice run --metrics` prints last on standard error.
pub fn metrics(o: &Output) -> serde_json::Value {
    let err = stderr(o);
    let line = err
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no metrics line in: {err}"));
    serde_json::from_str(line).expect("metrics line is not JSON")
}

/// A `sluice serve` process for a test: its own data directory, a free port, stderr in
/// `<data>/master.log`. Killed (SIGKILL) when dropped; its instances are killed too.
pub struct MasterProcess {
    /// The child process.
    pub child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The data directory (`--data-dir`).
    pub data_dir: PathBuf,
    /// Extra flags it was started with.
    pub flags: Vec<String>,
}

impl MasterProcess {
    /// Starts `sluice serve --data-dir data_dir --listen 127.0.0.1:0 flags…` and waits
    /// until it listens. Without an `--allow-path` in `flags`, jobs may use files under
    /// the data directory's parent (a test's temporary directory; the data directory
    /// itself stays out of reach).
    // The child is moved into the returned value, whose `Drop` kills and waits for it.
    #[allow(clippy::zombie_processes)]
    pub fn start(data_dir: &Path, flags: &[&str]) -> MasterProcess {
        Self::start_with_env(data_dir, flags, &[])
    }

    /// [`MasterProcess::start`] with extra environment variables (its instances inherit
    /// them).
    #[allow(clippy::zombie_processes)]
    pub fn start_with_env(data_dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> MasterProcess {
        std::fs::create_dir_all(data_dir).expect("create data dir");
        let log_path = data_dir.join("master.log");
        // Keep earlier masters' logs: append.
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("open master log");
        let before = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
        let mut default_root = Vec::new();
        if !flags.contains(&"--allow-path") {
            let parent = data_dir.parent().unwrap_or(data_dir);
            default_root.push("--allow-path".into());
            default_root.push(parent.as_os_str().to_owned());
        }
        let mut child = Command::new(sluice_bin())
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0"])
            .args(&default_root)
            .args(flags)
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("start sluice serve");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let text = std::fs::read(&log_path).unwrap_or_default();
            let text = String::from_utf8_lossy(&text[before as usize..]).into_owned();
            // Only a whole line: the log may be read while the line is half written.
            let line = text
                .find("listening on http") // http:// or https://
                .map(|pos| &text[pos + "listening on ".len()..])
                .filter(|rest| rest.contains('\n'));
            if let Some(rest) = line {
                let url: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                return MasterProcess {
                    child,
                    base: url,
                    data_dir: data_dir.to_path_buf(),
                    flags: flags.iter().map(|s| s.to_string()).collect(),
                };
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("sluice serve did not start listening within 30 s; log:\n{text}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// The master's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("master.log")).unwrap_or_default()
    }

    /// kill -9 the master (its instances keep running).
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The admin token `sluice serve` wrote on first start (`<data>/admin.token`).
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("admin.token"))
            .expect("read admin.token")
            .trim()
            .to_string()
    }

    /// A request with the admin token: returns (status, body as JSON, or as a string
    /// when not JSON).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.request_as(Some(&self.admin_token()), method, path, body)
    }

    /// A request presenting `token` (none: no `Authorization` header).
    pub fn request_as(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let (status, _, value) = self.request_full(
            token.map(|t| format!("Bearer {t}")).as_deref(),
            method,
            path,
            body,
        );
        (status, value)
    }

    /// A request with this `Authorization` header value (none: no header): returns
    /// (status, headers, body).
    pub fn request_full(
        &self,
        authorization: Option<&str>,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, Vec<(String, String)>, serde_json::Value) {
        let url = format!("{}{path}", self.base);
        let mut req = ureq::request(method, &url).timeout(std::time::Duration::from_secs(60));
        if let Some(a) = authorization {
            req = req.set("Authorization", a);
        }
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {url}: {e}"),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
            .collect();
        let text = resp.into_string().unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, headers, value)
    }

    /// GET, expecting 200.
    pub fn get(&self, path: &str) -> serde_json::Value {
        let (status, v) = self.request("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {v}");
        v
    }

    /// Runs `sluice <args> --server BASE` and returns its output. The CLI finds the
    /// admin token in the data directory (`SLUICE_DATA_DIR`), as it does for a local
    /// master.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(sluice_bin())
            .args(args)
            .args(["--server", &self.base])
            .env_remove("SLUICE_TOKEN")
            .env("SLUICE_DATA_DIR", &self.data_dir)
            .output()
            .expect("run the sluice CLI")
    }

    /// The log of job `job`'s most recently started instance.
    pub fn newest_instance_log(&self, job: &str) -> String {
        let instances = self.get(&format!("/api/v1/jobs/{job}/instances"));
        let newest = instances
            .as_array()
            .expect("instances")
            .iter()
            .max_by_key(|i| i["started_at"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("job {job} has no instance"))
            .clone();
        let id = newest["id"].as_str().expect("instance id");
        let (_, log) = self.request("GET", &format!("/api/v1/instances/{id}/logs"), None);
        log.as_str().map(str::to_string).unwrap_or(log.to_string())
    }

    /// Polls `f` every 100 ms until it returns `Some`, or panics after `secs` with `what`
    /// and the master's log.
    pub fn wait_for<T>(&self, secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(v) = f() {
                return v;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "timed out after {secs} s waiting for {what}; master log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for MasterProcess {
    fn drop(&mut self) {
        self.kill9();
        kill_instances(&self.data_dir);
    }
}

/// id → occurrences over the committed CSV part files (`part-*`, header skipped) of a
/// filesystem sink whose first column is an integer id; staged parts are not counted.
pub fn committed_ids(dir: &Path) -> std::collections::BTreeMap<i64, usize> {
    let mut ids = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return ids;
    };
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(e.path()).unwrap().lines().skip(1) {
            let id: i64 = line.split(',').next().unwrap().parse().unwrap();
            *ids.entry(id).or_default() += 1;
        }
    }
    ids
}

/// SIGKILLs every instance process whose `launch.json` is under `data_dir/instances`
/// (test cleanup: instances outlive the master by design).
pub fn kill_instances(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir.join("instances")) else {
        return;
    };
    // Process 0 of an instance in its directory, the others in `p<N>/` inside it.
    let dirs = entries.flatten().flat_map(|e| {
        let mut dirs = vec![e.path()];
        if let Ok(inner) = std::fs::read_dir(e.path()) {
            dirs.extend(inner.flatten().map(|i| i.path()).filter(|p| p.is_dir()));
        }
        dirs
    });
    for path in dirs {
        let Ok(text) = std::fs::read_to_string(path.join("launch.json")) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if let Some(pid) = v["pid"].as_u64() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let dir = path.to_string_lossy().into_owned();
            if String::from_utf8_lossy(&cmdline).contains(&dir) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
        }
    }
}

/// A `kafka-mock` process (librdkafka's mock cluster; `bin` is
/// `env!("CARGO_BIN_EXE_kafka-mock")`), killed when dropped. `topics` are `name:partitions`.
pub struct KafkaMock {
    child: std::process::Child,
    /// `host:port,…` of its brokers.
    pub bootstrap: String,
}

impl KafkaMock {
    /// Starts it with two brokers and waits for its address.
    pub fn start(bin: &str, topics: &[&str]) -> KafkaMock {
        use std::io::BufRead;
        let mut child = Command::new(bin)
            .args(["--brokers", "2"])
            .args(topics)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start kafka-mock");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read kafka-mock's address");
        let bootstrap = line
            .trim()
            .strip_prefix("bootstrap=")
            .unwrap_or_else(|| panic!("unexpected kafka-mock output: {line}"))
            .to_string();
        KafkaMock { child, bootstrap }
    }
}

impl Drop for KafkaMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `fault-proxy` process in front of `upstream` (`bin` is
/// `env!("CARGO_BIN_EXE_fault-proxy")`), killed when dropped.
pub struct FaultProxy {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl FaultProxy {
    /// Starts it and waits for its address.
    pub fn start(bin: &str, upstream: &str) -> FaultProxy {
        use std::io::BufRead;
        let mut child = Command::new(bin)
            .arg(upstream)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start fault-proxy");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read fault-proxy's address");
        let endpoint = line
            .trim()
            .strip_prefix("endpoint=")
            .unwrap_or_else(|| panic!("unexpected fault-proxy output: {line}"))
            .to_string();
        FaultProxy { child, endpoint }
    }

    /// From now on: each request delayed by up to `delay_ms`, a fraction `error_rate`
    /// answered 503, and every request for the next `outage_ms`.
    pub fn set(&self, delay_ms: u64, error_rate: f64, outage_ms: u64) {
        ureq::put(&format!("{}/__fault", self.endpoint))
            .send_json(serde_json::json!({
                "delay_ms": delay_ms, "error_rate": error_rate, "outage_ms": outage_ms
            }))
            .expect("set faults");
    }

    /// What the faults did: `requests`, `delayed`, `errors`, `outage`.
    pub fn stats(&self) -> serde_json::Value {
        ureq::get(&format!("{}/__fault", self.endpoint))
            .call()
            .expect("fault stats")
            .into_json()
            .expect("fault stats JSON")
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto S3 server (`SLUICE_MOTO_SERVER`, set by `.ci/test`) on a free port, killed on
/// drop.
pub struct Moto {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl Moto {
    /// Starts it and waits until it answers.
    pub fn start() -> Moto {
        use std::time::{Duration, Instant};
        let bin = std::env::var("SLUICE_MOTO_SERVER").unwrap_or_else(|_| {
            panic!(
                "SLUICE_MOTO_SERVER is not set: run the tests with `bash .ci/test`, or \
                 `python3 -m venv .venv && .venv/bin/pip install 'moto[server]'` and set \
                 SLUICE_MOTO_SERVER=.venv/bin/moto_server"
            )
        });
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while ureq::get(&format!("{endpoint}/")).call().is_err() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("moto did not start on {endpoint}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Moto { child, endpoint }
    }

    /// Creates a bucket.
    pub fn create_bucket(&self, bucket: &str) {
        ureq::put(&format!("{}/{bucket}", self.endpoint))
            .call()
            .expect("create bucket");
    }

    /// Every key in the bucket (ListObjectsV2, following continuation tokens).
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!("{}/{bucket}?list-type=2", self.endpoint);
            if let Some(t) = &token {
                url.push_str("&continuation-token=");
                url.push_str(
                    &t.replace('+', "%2B")
                        .replace('/', "%2F")
                        .replace('=', "%3D"),
                );
            }
            let body = ureq::get(&url).call().expect("list").into_string().unwrap();
            keys.extend(
                body.split("<Key>")
                    .skip(1)
                    .map(|s| s.split("</Key>").next().unwrap_or("").to_string()),
            );
            token = body
                .split("<NextContinuationToken>")
                .nth(1)
                .and_then(|s| s.split("</NextContinuationToken>").next())
                .map(str::to_string);
            if token.is_none() {
                return keys;
            }
        }
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn open_multipart_uploads(&self, bucket: &str) -> usize {
        let body = ureq::get(&format!("{}/{bucket}?uploads", self.endpoint))
            .call()
            .expect("list multipart uploads")
            .into_string()
            .unwrap();
        body.matches("<Upload>").count()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stateful job — two generated sequences `1..=rows` (at `rows_per_second` each)
/// joined by id (a symmetric hash join) feeding an aggregate per `id % 10` — writing CSV
/// under `out`, checkpointed every 100 ms. Its golden result is
/// [`golden_group_totals`]`(rows, 10)`.
pub fn join_aggregate_sql(out: &Path, rows: i64, rows_per_second: u32) -> String {
    let src = |name: &str| {
        format!(
            "CREATE TABLE {name} (id BIGINT) WITH ('connector' = 'datagen', \
               'number-of-rows' = '{rows}', 'rows-per-second' = '{rows_per_second}', \
               'fields.id.kind' = 'sequence', 'fields.id.min' = '1');\n"
        )
    };
    format!(
        "SET 'execution.checkpointing.interval' = '100ms';\n{}{}\
         CREATE TABLE totals (k BIGINT, n BIGINT, s BIGINT) WITH ('connector' = 'filesystem', \
           'path' = '{}', 'format' = 'csv', 'csv.header' = 'true');\n\
         INSERT INTO totals SELECT a.id % 10, COUNT(*), SUM(b.id) FROM a JOIN b ON a.id = b.id \
           GROUP BY a.id % 10;\n",
        src("a"),
        src("b"),
        out.display()
    )
}

/// The golden result of `SELECT id % keys, COUNT(*), SUM(id) … GROUP BY id % keys` over
/// the ids `1..=rows`, as sorted CSV lines.
pub fn golden_group_totals(rows: i64, keys: i64) -> Vec<String> {
    let mut expected: Vec<String> = (0..keys)
        .map(|k| {
            let ids: Vec<i64> = (1..=rows).filter(|i| i % keys == k).collect();
            format!("{k},{},{}", ids.len(), ids.iter().sum::<i64>())
        })
        .collect();
    expected.sort();
    expected
}

/// The committed CSV lines of the `part-*` files under `out` (headers skipped), sorted.
pub fn committed_csv_lines(out: &Path) -> Vec<String> {
    let mut got: Vec<String> = Vec::new();
    for e in std::fs::read_dir(out).unwrap().flatten() {
        if e.file_name().to_string_lossy().starts_with("part-") {
            let text = std::fs::read_to_string(e.path()).unwrap();
            got.extend(text.lines().skip(1).map(str::to_string));
        }
    }
    got.sort();
    got
}
