//! Query preview (`POST /api/v1/queries`): runs one final `SELECT` (after any DDL) as a
//! short-lived `sluice-worker` process, as `sluice run` does, and returns its schema and
//! first rows. It sits beside the jobs on the data path: compiled against the stored
//! catalog and the sandbox like a job, but never stored and never watched.
//!
//! ```text
//! SQL ─compile─▶ plan: Collect output (exact, ordered; arrives when the input ends)
//!                   + a copy into a `print` sink with JSON cells (streams as rows come)
//!      ─▶ sluice-worker (stdin: WorkerRequest, stdout: WorkerMessage lines)
//!      ─▶ rows until: Done (bounded input: the Collect rows) | max_rows | timeout_ms
//!         | cancelled (DELETE /api/v1/queries/{id}, or the client went away)
//!      ─▶ the process is killed and reaped before the response is written
//! ```
//!
//! Limits: at most `--max-previews` running at once (429 beyond), `max_rows` ≤
//! [`MAX_ROWS`], `timeout_ms` ≤ [`MAX_TIMEOUT_MS`], and the
//! worker's resident memory ≤ `memory_mb` plus the runtime allowance that instances get
//! (checked every [`POLL`]; past it the preview is killed and refused). A query with
//! `ORDER BY` or `OFFSET` shows rows only once its input ends (its order is known only
//! then): on an unbounded source it returns no rows, `truncated`.

use crate::core::Core;
use crate::history::sampler::process_usage;
use crate::model::now_ms;
use crate::service::{invalid, ServiceError, MEMORY_MB_RANGE};
use serde::{Deserialize, Serialize};
use sluice_catalogs::{SinkKind, SourceCapabilities, SqlType, TableDescriptor};
use sluice_compiler::eval::format_datum;
use sluice_compiler::instance::{plan_to_json, WorkerMessage, WorkerRequest};
use sluice_compiler::physical::SinkMode;
use sluice_compiler::{CompileError, Datum, SinkTarget};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// Most rows a preview returns.
pub const MAX_ROWS: u64 = 10_000;
/// Rows returned when the request does not say.
pub const DEFAULT_ROWS: u64 = 100;
/// Longest a preview runs (ms).
pub const MAX_TIMEOUT_MS: u64 = 60_000;
/// How long a preview runs when the request does not say (ms).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The worker's memory cap when the request does not say (MiB).
pub const DEFAULT_MEMORY_MB: u64 = 512;
/// How often the limits and the cancel flag are checked.
pub const POLL: Duration = Duration::from_millis(50);
/// Resident memory allowed beyond `memory_mb` for the runtime (MiB), as for instances.
const RUNTIME_ALLOWANCE_MIB: u64 = 64 + 16;
/// The `print-identifier` of the streaming copy.
const PREFIX: &str = "preview> ";

/// `POST /api/v1/queries`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    /// DDL (`CREATE TABLE …;`) if needed, then one `SELECT`.
    #[schema(example = "SELECT 1 AS x")]
    pub sql: String,
    /// Most rows to return (1..=10000, default 100): more makes `truncated` true.
    #[schema(minimum = 1, maximum = 10000)]
    pub max_rows: Option<u64>,
    /// Longest to run (ms, 1..=60000, default 10000): an unbounded source's rows so far.
    #[schema(minimum = 1, maximum = 60000)]
    pub timeout_ms: Option<u64>,
    /// The worker's memory cap (MiB, 64..=1048576, default 512), as a job's
    /// `resources.memory_mb`.
    #[schema(minimum = 64, maximum = 1048576)]
    pub memory_mb: Option<u64>,
    /// An id to cancel it by (`DELETE /api/v1/queries/{id}`): 1..=64 letters, digits,
    /// `_` or `-`, unique among running previews; default: a random one.
    pub id: Option<String>,
}

/// One output column.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its SQL type (`BIGINT`, `VARCHAR`, …).
    #[serde(rename = "type")]
    pub ty: String,
}

/// What a preview returns.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Preview {
    /// The preview's id.
    pub id: String,
    /// The result's columns.
    pub schema: Vec<Column>,
    /// Rows, as JSON values in column order (numbers stay numbers, temporal values are
    /// strings, NULL is null).
    #[schema(value_type = Vec<Vec<serde_json::Value>>)]
    pub rows: Vec<Vec<serde_json::Value>>,
    /// True when there may be more rows: `max_rows` was reached, the time ran out on
    /// an unbounded source, or it was cancelled.
    pub truncated: bool,
    /// True when it was cancelled.
    pub cancelled: bool,
    /// How long it ran (ms).
    pub elapsed_ms: u64,
}

/// A running preview, as `GET /api/v1/queries` lists it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RunningPreview {
    /// Its id.
    pub id: String,
    /// When it started (ms since the Unix epoch).
    pub started_at_ms: i64,
    /// Its worker's process id, once started.
    pub pid: Option<u32>,
    #[serde(skip)]
    cancel: Arc<AtomicBool>,
}

/// Previews that may run at once when not configured (`sluice serve --max-previews`).
pub const DEFAULT_MAX_RUNNING: usize = 4;

/// The previews running now.
pub struct Previews {
    running: Mutex<BTreeMap<String, RunningPreview>>,
    max_running: usize,
}

impl Default for Previews {
    fn default() -> Self {
        Previews::with_limit(DEFAULT_MAX_RUNNING)
    }
}

impl Previews {
    /// At most `max_running` previews at once (more get 429).
    pub fn with_limit(max_running: usize) -> Self {
        Previews {
            running: Mutex::new(BTreeMap::new()),
            max_running,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, RunningPreview>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The running previews.
    pub fn list(&self) -> Vec<RunningPreview> {
        self.lock().values().cloned().collect()
    }

    /// Asks a running preview to stop (it returns its rows so far, `cancelled`).
    pub fn cancel(&self, id: &str) -> Result<(), ServiceError> {
        match self.lock().get(id) {
            Some(p) => {
                p.cancel.store(true, Ordering::SeqCst);
                Ok(())
            }
            None => Err(ServiceError::NotFound(format!(
                "no preview '{id}' is running"
            ))),
        }
    }
}

/// Unregisters a preview when it ends, however it ends.
struct Registered<'a> {
    previews: &'a Previews,
    id: String,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.previews.lock().remove(&self.id);
    }
}

/// Kills and reaps the worker when the preview ends, however it ends.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Sets a preview's cancel flag when dropped: the REST handler holds one, so a client
/// that goes away (the handler's future is dropped) cancels its preview.
pub struct CancelOnDrop(pub Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A checked request.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The id.
    pub id: String,
    sql: String,
    max_rows: u64,
    timeout: Duration,
    memory_mb: u64,
}

/// Checks a request's limits and id.
pub fn check(req: PreviewRequest) -> Result<Checked, ServiceError> {
    let max_rows = req.max_rows.unwrap_or(DEFAULT_ROWS);
    if !(1..=MAX_ROWS).contains(&max_rows) {
        return Err(invalid(format!(
            "max_rows must be between 1 and {MAX_ROWS}, not {max_rows}"
        )));
    }
    let timeout_ms = req.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
        return Err(invalid(format!(
            "timeout_ms must be between 1 and {MAX_TIMEOUT_MS}, not {timeout_ms}"
        )));
    }
    let memory_mb = req.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
    if !(MEMORY_MB_RANGE.0..=MEMORY_MB_RANGE.1).contains(&memory_mb) {
        return Err(invalid(format!(
            "memory_mb must be between {} and {}, not {memory_mb}",
            MEMORY_MB_RANGE.0, MEMORY_MB_RANGE.1
        )));
    }
    let id = match req.id {
        Some(id) => {
            let ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                return Err(invalid(
                    "id: 1 to 64 letters, digits, '_' or '-'".to_string(),
                ));
            }
            id
        }
        None => format!("q-{:016x}", rand::random::<u64>()),
    };
    Ok(Checked {
        id,
        sql: req.sql,
        max_rows,
        timeout: Duration::from_millis(timeout_ms),
        memory_mb,
    })
}

/// One datum as JSON: numbers stay numbers (DECIMAL with its exact scale), temporal
/// values are strings (the rendering of `sluice run --format json`).
fn json_value(d: &Datum, ty: SqlType) -> serde_json::Value {
    match d {
        Datum::Null => serde_json::Value::Null,
        Datum::Bool(b) => (*b).into(),
        Datum::Int(i) => (*i).into(),
        Datum::Float(f) if f.0.is_finite() => f.0.into(),
        Datum::Decimal(_) => {
            let text = format_datum(d, ty);
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        }
        _ => serde_json::Value::String(format_datum(d, ty)),
    }
}

impl Previews {
    /// Runs a preview, compiled against `core`'s tables within its sandbox, to its end
    /// (blocking: call it off the async runtime). `cancel` stops it early with the rows
    /// so far.
    pub fn run(
        &self,
        core: &Core,
        req: Checked,
        cancel: Arc<AtomicBool>,
    ) -> Result<Preview, ServiceError> {
        let started = Instant::now();
        // Compiled against the stored tables, within the sandbox, as a job's SQL is
        // (then checked to be one final SELECT).
        let compiled = core.validate(&req.sql)?;
        if compiled.explain.is_some() {
            return Err(invalid(
                "a preview cannot run EXPLAIN: use POST /api/v1/jobs/validate to see the plans",
            ));
        }
        let outputs = &compiled.plan.outputs;
        if outputs
            .iter()
            .any(|o| matches!(o.target, SinkTarget::Table(_)))
        {
            return Err(ServiceError::Sql(CompileError::plan(
                "a preview runs a SELECT, and INSERT INTO writes to a table: preview its \
                 SELECT alone, or submit the script as a job",
                None,
            )));
        }
        let [output] = outputs.as_slice() else {
            return Err(ServiceError::Sql(CompileError::plan(
                "a preview runs one SELECT: the script has none (only DDL) or several",
                None,
            )));
        };
        let SinkTarget::Collect {
            order,
            limit,
            offset,
        } = &output.target
        else {
            return Err(invalid("a preview runs one final SELECT"));
        };
        let schema: Vec<Column> = output
            .schema
            .fields
            .iter()
            .map(|f| Column {
                name: f.name.clone(),
                ty: f.ty.to_string(),
            })
            .collect();
        let types: Vec<SqlType> = output.schema.fields.iter().map(|f| f.ty).collect();
        let stream_cap = limit.map_or(req.max_rows, |l| l.min(req.max_rows));
        let mut plan = compiled.plan.clone();
        // The streaming copy: rows as they come, unless their order or offset is
        // known only at the end.
        if order.is_empty() && *offset == 0 {
            let mut copy = output.clone();
            copy.target = SinkTarget::Table(TableDescriptor {
                name: "preview".to_string(),
                schema: output.schema.clone(),
                connector: "print".to_string(),
                options: [
                    ("print-identifier".to_string(), "preview".to_string()),
                    ("print-format".to_string(), "json".to_string()),
                ]
                .into(),
                watermark: None,
                capabilities: SourceCapabilities {
                    sink: SinkKind::Changelog,
                    ..Default::default()
                },
            });
            copy.sink = if output.updating {
                SinkMode::Changelog
            } else {
                SinkMode::Append
            };
            plan.outputs.push(copy);
        }

        let _registered = {
            let mut running = self.lock();
            if running.contains_key(&req.id) {
                return Err(ServiceError::Conflict(format!(
                    "a preview '{}' is running already",
                    req.id
                )));
            }
            if running.len() >= self.max_running {
                return Err(ServiceError::Busy(format!(
                    "{} previews are running, the most this master runs at once \
                     (--max-previews {}): wait for one, or cancel one",
                    running.len(),
                    self.max_running
                )));
            }
            running.insert(
                req.id.clone(),
                RunningPreview {
                    id: req.id.clone(),
                    started_at_ms: now_ms(),
                    pid: None,
                    cancel: cancel.clone(),
                },
            );
            Registered {
                previews: self,
                id: req.id.clone(),
            }
        };

        let request = WorkerRequest {
            plan,
            workers: 1,
            batch_size: 1024,
            progress_interval_ms: None,
            checkpoint: None,
            secret_key_file: core.seal_key_path.as_ref().map(|p| p.display().to_string()),
            peers: Vec::new(),
            process: 0,
        };
        let body = plan_to_json(&request)
            .map_err(|e| ServiceError::Cluster(format!("cannot encode the preview's plan: {e}")))?;
        let exe =
            crate::worker_bin::worker_binary().map_err(|e| ServiceError::Cluster(e.to_string()))?;
        let child = Command::new(&exe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ServiceError::Cluster(format!("cannot start {}: {e}", exe.display())))?;
        let mut worker = Worker(child);
        let pid = worker.0.id();
        if let Some(p) = self.lock().get_mut(&req.id) {
            p.pid = Some(pid);
        }
        if let Some(mut stdin) = worker.0.stdin.take() {
            std::thread::spawn(move || {
                let _ = stdin.write_all(&body);
            });
        }
        let (tx, rx) = mpsc::channel::<String>();
        if let Some(stdout) = worker.0.stdout.take() {
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }

        let cap_bytes = (req.memory_mb + RUNTIME_ALLOWANCE_MIB) << 20;
        let deadline = started + req.timeout;
        let mut rows: Vec<Vec<serde_json::Value>> = Vec::new();
        let mut collected = None;
        let mut truncated = false;
        let mut cancelled = false;
        loop {
            if cancel.load(Ordering::SeqCst) {
                cancelled = true;
                truncated = true;
                break;
            }
            if Instant::now() >= deadline {
                truncated = true;
                break;
            }
            if process_usage(pid).is_some_and(|(_, rss)| rss > cap_bytes as f64) {
                return Err(invalid(format!(
                    "the preview exceeded its memory limit (memory_mb = {} MiB plus {RUNTIME_ALLOWANCE_MIB} MiB for the runtime): give it more memory_mb, or preview less",
                    req.memory_mb
                )));
            }
            let line = match rx.recv_timeout(POLL) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(ServiceError::Cluster(
                        "the preview's worker ended without finishing".to_string(),
                    ))
                }
            };
            match serde_json::from_str::<WorkerMessage>(&line) {
                Ok(WorkerMessage::Printed(text)) => {
                    for l in text.lines() {
                        apply_printed(&mut rows, l);
                    }
                    let n = rows.len() as u64;
                    // Any rows answer a LIMIT without ORDER BY: the result is complete.
                    if limit.is_some_and(|l| l <= req.max_rows) && n >= stream_cap {
                        rows.truncate(stream_cap as usize);
                        break;
                    }
                    // More rows than max_rows came: cut, and say there are more.
                    if n > req.max_rows {
                        rows.truncate(req.max_rows as usize);
                        truncated = true;
                        break;
                    }
                }
                Ok(WorkerMessage::Result(r)) => collected = Some(r),
                Ok(WorkerMessage::Done(_)) => break,
                Ok(WorkerMessage::Failed {
                    user_error,
                    message,
                }) => {
                    return Err(if user_error {
                        invalid(message)
                    } else {
                        ServiceError::Cluster(format!("the preview failed: {message}"))
                    })
                }
                Ok(WorkerMessage::Progress(_)) => {}
                Err(e) => {
                    return Err(ServiceError::Cluster(format!(
                        "unreadable worker message: {e}"
                    )))
                }
            }
        }
        drop(worker);
        if let Some(result) = collected {
            truncated = result.rows.len() as u64 > req.max_rows;
            rows = result
                .rows
                .iter()
                .take(req.max_rows as usize)
                .map(|row| {
                    row.iter()
                        .zip(&types)
                        .map(|(d, ty)| json_value(d, *ty))
                        .collect()
                })
                .collect();
        }
        Ok(Preview {
            id: req.id,
            schema,
            rows,
            truncated,
            cancelled,
            elapsed_ms: started.elapsed().as_millis() as u64,
        })
    }
}

/// Applies one line of the streaming copy: `preview> +I[…]` adds a row, `-D[…]`
/// retracts one equal row.
fn apply_printed(rows: &mut Vec<Vec<serde_json::Value>>, line: &str) {
    let Some(rest) = line.strip_prefix(PREFIX) else {
        return;
    };
    let (op, cells) = rest.split_at(rest.len().min(2));
    let Ok(row) = serde_json::from_str::<Vec<serde_json::Value>>(cells) else {
        return;
    };
    match op {
        "+I" => rows.push(row),
        "-D" => {
            if let Some(i) = rows.iter().rposition(|r| *r == row) {
                rows.remove(i);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_lines_add_and_retract_rows() {
        let mut rows = Vec::new();
        apply_printed(&mut rows, "preview> +I[1, \"a, b\", null]");
        apply_printed(&mut rows, "preview> +I[2, \"c\", 1.5]");
        apply_printed(&mut rows, "preview> -D[1, \"a, b\", null]");
        apply_printed(&mut rows, "other> +I[3]");
        assert_eq!(
            rows,
            vec![vec![serde_json::json!(2), "c".into(), 1.5.into()]]
        );
    }

    #[test]
    fn limits_are_checked() {
        let req = |max_rows, timeout_ms| PreviewRequest {
            sql: "SELECT 1".into(),
            max_rows,
            timeout_ms,
            memory_mb: None,
            id: None,
        };
        assert!(check(req(Some(0), None)).is_err());
        assert!(check(req(Some(MAX_ROWS + 1), None)).is_err());
        assert!(check(req(None, Some(MAX_TIMEOUT_MS + 1))).is_err());
        let ok = check(req(None, None)).unwrap();
        assert_eq!(
            (ok.max_rows, ok.timeout),
            (DEFAULT_ROWS, Duration::from_millis(DEFAULT_TIMEOUT_MS))
        );
    }
}
