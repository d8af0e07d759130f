//! `sluice job …`, `sluice table …` and `sluice workflow …`: command-line clients of the
//! REST API.
//! Human-readable tables by default, the API's JSON with `--json`. Exit codes: 0 ok,
//! 2 the server refused the request (4xx: the message says why), 1 anything else.

use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::io::Read;
use std::path::PathBuf;

/// Options every client command takes.
#[derive(Args, Debug, Clone)]
pub struct ClientOpts {
    /// The master's base URL (else the `server` of `~/.config/sluice/config.toml`,
    /// else http://127.0.0.1:8080).
    #[arg(long, global = true, env = "SLUICE_SERVER")]
    pub server: Option<String>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// The API token (else the `token` of the profile, else — for a master on this
    /// machine — `<data dir>/admin.token`).
    #[arg(long, global = true, env = "SLUICE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The data directory of a local master, where its admin token is (default
    /// ./sluice-data).
    #[arg(long, global = true, env = "SLUICE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Trust this CA certificate (PEM) for an https:// master, instead of the public
    /// roots (else the profile's `ca_cert`).
    #[arg(long, global = true, env = "SLUICE_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

/// `sluice job …`.
#[derive(Args, Debug)]
pub struct JobArgs {
    #[command(subcommand)]
    command: JobCommand,
    #[command(flatten)]
    opts: ClientOpts,
}

#[derive(Subcommand, Debug)]
enum JobCommand {
    /// Submit a SQL script as a job (compiled by the master first).
    Submit {
        /// The job's name.
        name: String,
        /// The SQL script (`-` reads standard input).
        script: PathBuf,
        /// Worker threads.
        #[arg(long, short = 'p', default_value_t = 1)]
        parallelism: u32,
        /// Memory cap (MiB).
        #[arg(long, default_value_t = 1024)]
        memory_mb: u64,
        /// GPUs.
        #[arg(long, default_value_t = 0)]
        gpus: u32,
        /// Cluster.
        #[arg(long, default_value = "local")]
        cluster: String,
        /// Create it stopped.
        #[arg(long)]
        stopped: bool,
    },
    /// List jobs.
    List {
        /// Only jobs in this state (pending, starting, running, restarting, stopped,
        /// finished, failed).
        #[arg(long)]
        state: Option<String>,
    },
    /// Show a job and its recent events.
    Get {
        /// The job's name.
        name: String,
    },
    /// Stop a job (its instance is stopped; the job stays).
    Stop {
        /// The job's name.
        name: String,
        /// Keep its latest checkpoint as a savepoint once it stopped (to start from
        /// later with `start --from-savepoint`).
        #[arg(long)]
        savepoint: bool,
    },
    /// Start a stopped (or failed) job.
    Start {
        /// The job's name.
        name: String,
        /// Start from this savepoint (its epoch: `sluice job savepoints NAME`) instead
        /// of the latest checkpoint.
        #[arg(long, value_name = "EPOCH")]
        from_savepoint: Option<u64>,
    },
    /// Keep a running job's latest checkpoint as a savepoint; the job goes on (to stop
    /// it with one: `stop --savepoint`).
    Savepoint {
        /// The job's name.
        name: String,
    },
    /// List a job's savepoints.
    Savepoints {
        /// The job's name.
        name: String,
    },
    /// Change a job's parallelism (a rescale: a new version replaces the instance).
    Scale {
        /// The job's name.
        name: String,
        /// The new parallelism.
        parallelism: u32,
    },
    /// Replace a job's SQL.
    Update {
        /// The job's name.
        name: String,
        /// The new SQL script (`-` reads standard input).
        script: PathBuf,
        /// Apply only if this is still the change's plan (from `sluice job plan`):
        /// refused when the job changed since.
        #[arg(long)]
        plan_id: Option<String>,
    },
    /// Show what replacing a job's SQL would do, without changing anything: per
    /// source, stateful operator and sink whether it is kept, reset, new or dropped,
    /// and why; the restart; the plan id to apply exactly this with `update --plan-id`.
    Plan {
        /// The job's name.
        name: String,
        /// The new SQL script (`-` reads standard input).
        script: PathBuf,
        /// Also change the parallelism.
        #[arg(long, short = 'p')]
        parallelism: Option<u32>,
    },
    /// Delete a job (its instance is stopped).
    Delete {
        /// The job's name.
        name: String,
    },
    /// Print the log of a job's instance (the live one, else the latest).
    Logs {
        /// The job's name.
        name: String,
        /// Lines from the end (as `tail -n`).
        #[arg(long, short = 'n', default_value_t = 100)]
        tail: u64,
        /// Keep printing what the instance writes until it ends (Ctrl-C to stop).
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Print a job's history.
    Events {
        /// The job's name.
        name: String,
    },
    /// Compile a script on the master and print its plans or errors.
    Validate {
        /// The SQL script (`-` reads standard input).
        script: PathBuf,
    },
}

/// `sluice table …`.
#[derive(Args, Debug)]
pub struct TableArgs {
    #[command(subcommand)]
    command: TableCommand,
    #[command(flatten)]
    opts: ClientOpts,
}

#[derive(Subcommand, Debug)]
enum TableCommand {
    /// Create catalog tables from a file of `CREATE TABLE` statements.
    Create {
        /// The DDL file (`-` reads standard input).
        script: PathBuf,
    },
    /// List catalog tables.
    List,
    /// Show one table.
    Get {
        /// The table's name.
        name: String,
    },
    /// Drop a table.
    Drop {
        /// The table's name.
        name: String,
    },
}

/// `sluice workflow …`.
#[derive(Args, Debug)]
pub struct WorkflowArgs {
    #[command(subcommand)]
    command: WorkflowCommand,
    #[command(flatten)]
    opts: ClientOpts,
}

#[derive(Subcommand, Debug)]
enum WorkflowCommand {
    /// Create a workflow from a JSON spec (the API's body; its `name` is NAME).
    Create {
        /// The workflow's name.
        name: String,
        /// The JSON spec (`-` reads standard input).
        file: PathBuf,
    },
    /// Replace a workflow's spec from a JSON file (fields present are changed).
    Update {
        /// The workflow's name.
        name: String,
        /// The JSON spec (`-` reads standard input).
        file: PathBuf,
    },
    /// List workflows.
    List,
    /// Show a workflow and its recent runs.
    Get {
        /// The workflow's name.
        name: String,
    },
    /// List a workflow's runs.
    Runs {
        /// The workflow's name.
        name: String,
        /// The newest this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Show one run: each task's state, attempts, instance and rows.
    Run {
        /// The workflow's name.
        name: String,
        /// The run's id.
        run_id: String,
    },
    /// Start a run now.
    Trigger {
        /// The workflow's name.
        name: String,
        /// A parameter value, `KEY=VALUE` (repeatable).
        #[arg(long = "param", value_name = "KEY=VALUE")]
        params: Vec<String>,
        /// The logical time the run stands for (RFC 3339; default now).
        #[arg(long)]
        logical_time: Option<String>,
    },
    /// Create one run per tick in [START, END].
    Backfill {
        /// The workflow's name.
        name: String,
        /// First instant (RFC 3339).
        #[arg(long)]
        start: String,
        /// Last instant (RFC 3339).
        #[arg(long)]
        end: String,
    },
    /// Cancel a run (its running tasks are stopped).
    Cancel {
        /// The workflow's name.
        name: String,
        /// The run's id.
        run_id: String,
    },
    /// Enable the schedule (ticks start from now).
    Enable {
        /// The workflow's name.
        name: String,
    },
    /// Disable the schedule (manual runs and backfills still work).
    Disable {
        /// The workflow's name.
        name: String,
    },
    /// Delete a workflow (its active runs are cancelled).
    Delete {
        /// The workflow's name.
        name: String,
    },
}

/// A client failure: exit code and one line.
pub struct ClientError {
    /// 1 or 2.
    pub code: u8,
    /// The line to print.
    pub message: String,
}

pub(crate) fn fail(code: u8, message: impl Into<String>) -> ClientError {
    ClientError {
        code,
        message: message.into(),
    }
}

fn read_script(path: &PathBuf) -> Result<String, ClientError> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| fail(2, format!("cannot read standard input: {e}")))?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| fail(2, format!("cannot read {}: {e}", path.display())))
}

pub(crate) struct Api {
    base: String,
    agent: ureq::Agent,
    token: Option<String>,
}

pub(crate) enum Body {
    Json(Value),
    Text(String),
    Empty,
}

impl Api {
    pub(crate) fn new(opts: &ClientOpts) -> Result<Self, ClientError> {
        let profile = crate::config::profile().map_err(|e| fail(2, format!("error: {e}")))?;
        let server = match &opts.server {
            Some(s) => s.clone(),
            None => profile
                .server
                .clone()
                .unwrap_or_else(|| crate::config::DEFAULT_SERVER.to_string()),
        };
        let token = crate::config::resolve_token(
            opts.token.as_deref(),
            &profile,
            &server,
            opts.data_dir.as_deref(),
        );
        let mut agent = ureq::AgentBuilder::new().timeout(std::time::Duration::from_secs(60));
        if let Some(ca) = opts.ca_cert.as_ref().or(profile.ca_cert.as_ref()) {
            let tls = crate::tls::client_config(ca).map_err(|e| fail(2, format!("error: {e}")))?;
            agent = agent.tls_config(tls);
        }
        Ok(Api {
            base: server.trim_end_matches('/').to_string(),
            agent: agent.build(),
            token,
        })
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Body, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.agent.request(method, &url);
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let result = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let text = r.into_string().unwrap_or_default();
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or(text);
                let hint = match status {
                    401 => " (pass --token, set SLUICE_TOKEN or the profile's `token`; a local master's admin token is <data dir>/admin.token)",
                    _ => "",
                };
                return Err(fail(
                    if (400..500).contains(&status) { 2 } else { 1 },
                    format!("error: {message}{hint}"),
                ));
            }
            Err(e) => {
                return Err(fail(
                    1,
                    format!(
                    "cannot reach the master at {}: {e} (is `sluice serve` running? see --server)",
                    self.base
                ),
                ))
            }
        };
        let is_json = resp.content_type() == "application/json";
        let text = resp
            .into_string()
            .map_err(|e| fail(1, format!("cannot read the response: {e}")))?;
        if text.is_empty() {
            return Ok(Body::Empty);
        }
        if is_json {
            serde_json::from_str(&text)
                .map(Body::Json)
                .map_err(|e| fail(1, format!("unreadable response: {e}")))
        } else {
            Ok(Body::Text(text))
        }
    }

    pub(crate) fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        match self.call(method, path, body)? {
            Body::Json(v) => Ok(v),
            Body::Text(t) => Ok(Value::String(t)),
            Body::Empty => Ok(Value::Null),
        }
    }

    /// `GET path` as text (a log).
    fn text(&self, path: &str) -> Result<String, ClientError> {
        match self.call("GET", path, None)? {
            Body::Text(t) => Ok(t),
            Body::Json(v) => Ok(v.to_string()),
            Body::Empty => Ok(String::new()),
        }
    }
}

/// Window of the log each `--follow` poll reads (bytes from the end).
const FOLLOW_WINDOW: u64 = 1 << 20;
/// How much of what was printed last anchors the next poll's new part.
const FOLLOW_ANCHOR: usize = 4096;

/// The part of `now` (a log's tail) that follows `printed` (the tail printed so far):
/// found by the last occurrence of `printed`'s final bytes in `now`. `None` when they
/// are not there any more (the log was rotated, or more than the window was written).
fn new_part<'a>(printed: &str, now: &'a str) -> Option<&'a str> {
    if printed.is_empty() {
        return Some(now);
    }
    let mut from = printed.len().saturating_sub(FOLLOW_ANCHOR);
    while !printed.is_char_boundary(from) {
        from += 1;
    }
    let anchor = &printed[from..];
    now.rfind(anchor).map(|at| &now[at + anchor.len()..])
}

/// `sluice job logs --follow`: polls the instance's log every half second and prints
/// what is new, until the instance has ended and its last lines are out.
fn follow_log(api: &Api, id: &str, mut printed: String) -> Result<(), ClientError> {
    use std::io::Write;
    loop {
        let ended = {
            let v = api.json("GET", &format!("/api/v1/instances/{}", seg(id)), None)?;
            !(v["state"] == json!("running") || v["state"] == json!("starting"))
        };
        let now = api.text(&format!(
            "/api/v1/instances/{}/logs?tail_bytes={FOLLOW_WINDOW}",
            seg(id)
        ))?;
        match new_part(&printed, &now) {
            Some(part) => print!("{part}"),
            None => print!("[… part of the log was rotated away or skipped …]\n{now}"),
        }
        let _ = std::io::stdout().flush();
        printed = now;
        if ended {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

/// Percent-encodes a path segment.
pub(crate) fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints rows as an aligned table.
pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_uppercase()).collect());
    for r in rows {
        line(r);
    }
}

fn print_jobs(jobs: &[Value]) {
    table(
        &[
            "name",
            "state",
            "version",
            "parallelism",
            "restarts",
            "rows in",
            "rows out",
            "reason",
        ],
        jobs.iter()
            .map(|j| {
                vec![
                    s(&j["name"]),
                    s(&j["state"]),
                    s(&j["version"]),
                    s(&j["resources"]["parallelism"]),
                    s(&j["restarts"]),
                    s(&j["rows_in"]),
                    s(&j["rows_out"]),
                    s(&j["state_reason"]),
                ]
            })
            .collect(),
    );
}

/// Prints a savepoint `v` just taken of job `name`: `what` then where to start from it.
fn print_savepoint(v: &serde_json::Value, json_out: bool, what: &str, name: &str) {
    if json_out {
        print_json(v);
    } else {
        let epoch = s(&v["epoch"]);
        println!(
            "{what} savepoint {epoch} (start from it: sluice job start {name} --from-savepoint {epoch})"
        );
    }
}

fn print_events(events: &[Value]) {
    table(
        &["seq", "at", "version", "kind", "message"],
        events
            .iter()
            .map(|e| {
                vec![
                    s(&e["seq"]),
                    s(&e["at"]),
                    s(&e["version"]),
                    s(&e["kind"]),
                    s(&e["message"]),
                ]
            })
            .collect(),
    );
}

fn print_tables(tables: &[Value]) {
    table(
        &["name", "connector", "columns"],
        tables
            .iter()
            .map(|t| {
                let cols: Vec<String> = t["columns"]
                    .as_array()
                    .map(|cs| {
                        cs.iter()
                            .map(|c| format!("{} {}", s(&c["name"]), s(&c["type"])))
                            .collect()
                    })
                    .unwrap_or_default();
                vec![s(&t["name"]), s(&t["connector"]), cols.join(", ")]
            })
            .collect(),
    );
}

pub(crate) fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

pub(crate) fn as_list(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

/// `sluice job …`.
pub fn job(args: JobArgs) -> Result<(), ClientError> {
    let api = Api::new(&args.opts)?;
    let json_out = args.opts.json;
    match args.command {
        JobCommand::Submit {
            name,
            script,
            parallelism,
            memory_mb,
            gpus,
            cluster,
            stopped,
        } => {
            let sql = read_script(&script)?;
            let v = api.json(
                "POST",
                "/api/v1/jobs",
                Some(json!({
                    "name": name,
                    "sql": sql,
                    "resources": {"parallelism": parallelism, "memory_mb": memory_mb, "gpus": gpus},
                    "cluster": cluster,
                    "desired_state": if stopped { "stopped" } else { "running" },
                })),
            )?;
            if json_out {
                print_json(&v);
            } else {
                println!(
                    "submitted job {} (id {}, version {}, {})",
                    s(&v["name"]),
                    s(&v["id"]),
                    s(&v["version"]),
                    if v["bounded"] == json!(true) {
                        "bounded"
                    } else {
                        "unbounded"
                    }
                );
            }
        }
        JobCommand::List { state } => {
            let path = match state {
                Some(st) => format!("/api/v1/jobs?state={}", seg(&st)),
                None => "/api/v1/jobs".to_string(),
            };
            let v = api.json("GET", &path, None)?;
            if json_out {
                print_json(&v);
            } else {
                print_jobs(&as_list(&v));
            }
        }
        JobCommand::Get { name } => {
            let v = api.json("GET", &format!("/api/v1/jobs/{}", seg(&name)), None)?;
            if json_out {
                print_json(&v);
            } else {
                print_jobs(std::slice::from_ref(&v));
                println!();
                println!("instances: {}", s(&v["instances"]));
                let ev = api.json(
                    "GET",
                    &format!("/api/v1/jobs/{}/events?limit=1000", seg(&name)),
                    None,
                )?;
                let events = as_list(&ev);
                let recent = &events[events.len().saturating_sub(10)..];
                println!("recent events:");
                print_events(recent);
            }
        }
        JobCommand::Stop { name, savepoint } if savepoint => {
            let v = api.json(
                "POST",
                &format!("/api/v1/jobs/{}/savepoints", seg(&name)),
                None,
            )?;
            print_savepoint(&v, json_out, &format!("stopped job {name} with"), &name);
        }
        JobCommand::Savepoint { name } => {
            let v = api.json(
                "POST",
                &format!("/api/v1/jobs/{}/savepoints?stop=false", seg(&name)),
                None,
            )?;
            print_savepoint(&v, json_out, &format!("job {name} goes on;"), &name);
        }
        JobCommand::Stop { name, .. } => patch(
            &api,
            &name,
            json!({"desired_state": "stopped"}),
            json_out,
            "stopping",
        )?,
        JobCommand::Start {
            name,
            from_savepoint,
        } => {
            let mut body = json!({"desired_state": "running"});
            if let Some(n) = from_savepoint {
                body["from_savepoint"] = json!(n);
            }
            patch(&api, &name, body, json_out, "starting")?
        }
        JobCommand::Savepoints { name } => {
            let v = api.json(
                "GET",
                &format!("/api/v1/jobs/{}/savepoints", seg(&name)),
                None,
            )?;
            if json_out {
                print_json(&v);
            } else {
                println!("{:<8} {:<26} {:<8} OPERATORS", "EPOCH", "TAKEN", "VERSION");
                for sp in as_list(&v) {
                    println!(
                        "{:<8} {:<26} {:<8} {}",
                        s(&sp["epoch"]),
                        s(&sp["taken_at"]),
                        s(&sp["job_version"]),
                        sp["operators"].as_array().map_or(0, Vec::len)
                    );
                }
            }
        }
        JobCommand::Scale { name, parallelism } => patch(
            &api,
            &name,
            json!({"resources": {"parallelism": parallelism}}),
            json_out,
            "rescaling",
        )?,
        JobCommand::Update {
            name,
            script,
            plan_id,
        } => {
            let sql = read_script(&script)?;
            let mut body = json!({"sql": sql});
            if let Some(id) = plan_id {
                body["plan_id"] = json!(id);
            }
            patch(&api, &name, body, json_out, "updating")?
        }
        JobCommand::Plan {
            name,
            script,
            parallelism,
        } => {
            let sql = read_script(&script)?;
            let mut body = json!({"sql": sql});
            if let Some(p) = parallelism {
                body["resources"] = json!({"parallelism": p});
            }
            let v = api.json(
                "POST",
                &format!("/api/v1/jobs/{}/plan", seg(&name)),
                Some(body),
            )?;
            if json_out {
                print_json(&v);
            } else {
                print_plan(&v, &name, &script);
            }
        }
        JobCommand::Delete { name } => {
            api.call("DELETE", &format!("/api/v1/jobs/{}", seg(&name)), None)?;
            if !json_out {
                println!("deleted job {name}");
            }
        }
        JobCommand::Logs { name, tail, follow } => {
            let v = api.json(
                "GET",
                &format!("/api/v1/jobs/{}/instances", seg(&name)),
                None,
            )?;
            let instances = as_list(&v);
            let live = instances
                .iter()
                .find(|i| i["state"] == json!("running") || i["state"] == json!("starting"));
            let latest = instances.iter().max_by_key(|i| s(&i["started_at"]));
            let Some(inst) = live.or(latest) else {
                return Err(fail(2, format!("error: job '{name}' has no instance")));
            };
            let id = s(&inst["id"]);
            let text = api.text(&format!(
                "/api/v1/instances/{}/logs?tail_lines={tail}",
                seg(&id)
            ))?;
            print!("{text}");
            if follow {
                follow_log(&api, &id, text)?;
            }
        }
        JobCommand::Events { name } => {
            let v = api.json(
                "GET",
                &format!("/api/v1/jobs/{}/events?limit=1000", seg(&name)),
                None,
            )?;
            if json_out {
                print_json(&v);
            } else {
                print_events(&as_list(&v));
            }
        }
        JobCommand::Validate { script } => {
            let sql = read_script(&script)?;
            let v = api.json("POST", "/api/v1/jobs/validate", Some(json!({"sql": sql})))?;
            if json_out {
                print_json(&v);
            } else if v["valid"] == json!(true) {
                for q in as_list(&v["queries"]) {
                    println!("-- {}", s(&q["target"]));
                    println!("== Logical Plan ==\n{}", s(&q["logical"]));
                    println!("== Optimized Logical Plan ==\n{}", s(&q["optimized"]));
                    println!("== Physical Plan ==\n{}", s(&q["physical"]));
                }
            } else {
                let first = as_list(&v["errors"]).first().map(|e| s(&e["message"]));
                return Err(fail(2, first.unwrap_or_else(|| "invalid".to_string())));
            }
        }
    }
    Ok(())
}

/// A change's plan (`POST /api/v1/jobs/{name}/plan`) for a terminal.
fn print_plan(v: &Value, name: &str, script: &std::path::Path) {
    let changes: Vec<String> = as_list(&v["changes"]).iter().map(s).collect();
    println!(
        "plan {} for job {} (version {}): {}",
        s(&v["plan_id"]),
        s(&v["job"]),
        s(&v["version"]),
        if changes.is_empty() {
            "no change".to_string()
        } else {
            changes.join(", ")
        }
    );
    println!("restart: {}", s(&v["restart"]));
    for key in ["old_not_checkpointed", "new_not_checkpointed"] {
        if let Some(why) = v[key].as_str() {
            let when = if key.starts_with("old") {
                "now"
            } else {
                "after the change"
            };
            println!("checkpoints {when}: none ({why})");
        }
    }
    for (title, key) in [
        ("sources", "sources"),
        ("stateful operators", "operators"),
        ("sinks", "sinks"),
    ] {
        let items = as_list(&v[key]);
        if items.is_empty() {
            continue;
        }
        println!("{title}:");
        for i in items {
            let size = i["state_bytes"]
                .as_u64()
                .map(|b| format!(" [{b} bytes of state]"))
                .unwrap_or_default();
            println!(
                "  {:<8} {} ({}): {}{size}",
                s(&i["outcome"]),
                s(&i["name"]),
                s(&i["detail"]),
                s(&i["reason"]),
            );
        }
    }
    println!(
        "apply exactly this plan: sluice job update {name} {} --plan-id {}",
        script.display(),
        s(&v["plan_id"])
    );
}

fn patch(
    api: &Api,
    name: &str,
    body: Value,
    json_out: bool,
    verb: &str,
) -> Result<(), ClientError> {
    let v = api.json("PATCH", &format!("/api/v1/jobs/{}", seg(name)), Some(body))?;
    if json_out {
        print_json(&v);
    } else {
        println!(
            "{verb} job {} (version {})",
            s(&v["name"]),
            s(&v["version"])
        );
    }
    Ok(())
}

/// `sluice table …`.
pub fn table_cmd(args: TableArgs) -> Result<(), ClientError> {
    let api = Api::new(&args.opts)?;
    let json_out = args.opts.json;
    match args.command {
        TableCommand::Create { script } => {
            let ddl = read_script(&script)?;
            let v = api.json("POST", "/api/v1/tables", Some(json!({"ddl": ddl})))?;
            if json_out {
                print_json(&v);
            } else {
                for t in as_list(&v) {
                    println!("created table {}", s(&t["name"]));
                }
            }
        }
        TableCommand::List => {
            let v = api.json("GET", "/api/v1/tables", None)?;
            if json_out {
                print_json(&v);
            } else {
                print_tables(&as_list(&v));
            }
        }
        TableCommand::Get { name } => {
            let v = api.json("GET", &format!("/api/v1/tables/{}", seg(&name)), None)?;
            if json_out {
                print_json(&v);
            } else {
                print_tables(std::slice::from_ref(&v));
                println!("\n{}", s(&v["ddl"]));
            }
        }
        TableCommand::Drop { name } => {
            api.call("DELETE", &format!("/api/v1/tables/{}", seg(&name)), None)?;
            if !json_out {
                println!("dropped table {name}");
            }
        }
    }
    Ok(())
}

fn print_workflows(workflows: &[Value]) {
    table(
        &[
            "name",
            "enabled",
            "schedule",
            "timezone",
            "tasks",
            "active",
            "next tick",
        ],
        workflows
            .iter()
            .map(|w| {
                vec![
                    s(&w["name"]),
                    s(&w["enabled"]),
                    s(&w["schedule"]["cron"]),
                    s(&w["schedule"]["timezone"]),
                    as_list(&w["tasks"]).len().to_string(),
                    s(&w["active_runs"]),
                    s(&w["next_tick"]),
                ]
            })
            .collect(),
    );
}

fn task_summary(run: &Value) -> String {
    as_list(&run["tasks"])
        .iter()
        .map(|t| format!("{}:{}", s(&t["id"]), s(&t["state"])))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_runs(runs: &[Value]) {
    table(
        &[
            "run id",
            "logical time",
            "trigger",
            "state",
            "duration ms",
            "tasks",
        ],
        runs.iter()
            .map(|r| {
                vec![
                    s(&r["run_id"]),
                    s(&r["logical_time"]),
                    s(&r["trigger"]),
                    s(&r["state"]),
                    s(&r["duration_ms"]),
                    task_summary(r),
                ]
            })
            .collect(),
    );
}

fn print_run(run: &Value) {
    print_runs(std::slice::from_ref(run));
    if let Some(m) = run["message"].as_str() {
        println!("message: {m}");
    }
    println!();
    table(
        &[
            "task",
            "state",
            "attempts",
            "instance",
            "duration ms",
            "rows in",
            "rows out",
            "message",
        ],
        as_list(&run["tasks"])
            .iter()
            .map(|t| {
                vec![
                    s(&t["id"]),
                    s(&t["state"]),
                    format!("{}/{}", s(&t["attempts"]), s(&t["max_attempts"])),
                    s(&t["instance_id"]),
                    s(&t["duration_ms"]),
                    s(&t["rows_in"]),
                    s(&t["rows_out"]),
                    s(&t["message"]),
                ]
            })
            .collect(),
    );
}

fn read_json_file(path: &PathBuf) -> Result<Value, ClientError> {
    let text = read_script(path)?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| fail(2, format!("{} is not valid JSON: {e}", path.display())))?;
    if !v.is_object() {
        return Err(fail(
            2,
            format!(
                "{} must hold a JSON object (the workflow spec)",
                path.display()
            ),
        ));
    }
    Ok(v)
}

/// `sluice workflow …`.
pub fn workflow_cmd(args: WorkflowArgs) -> Result<(), ClientError> {
    let api = Api::new(&args.opts)?;
    let json_out = args.opts.json;
    let path = |name: &str| format!("/api/v1/workflows/{}", seg(name));
    match args.command {
        WorkflowCommand::Create { name, file } => {
            let mut body = read_json_file(&file)?;
            body["name"] = json!(name);
            let v = api.json("POST", "/api/v1/workflows", Some(body))?;
            if json_out {
                print_json(&v);
            } else {
                println!(
                    "created workflow {} (id {}, version {}, next tick {})",
                    s(&v["name"]),
                    s(&v["id"]),
                    s(&v["version"]),
                    s(&v["next_tick"])
                );
            }
        }
        WorkflowCommand::Update { name, file } => {
            let mut body = read_json_file(&file)?;
            if let Some(o) = body.as_object_mut() {
                o.remove("name");
            }
            let v = api.json("PATCH", &path(&name), Some(body))?;
            if json_out {
                print_json(&v);
            } else {
                println!(
                    "updated workflow {} (version {})",
                    s(&v["name"]),
                    s(&v["version"])
                );
            }
        }
        WorkflowCommand::Enable { name } => set_enabled(&api, &name, true, json_out)?,
        WorkflowCommand::Disable { name } => set_enabled(&api, &name, false, json_out)?,
        WorkflowCommand::List => {
            let v = api.json("GET", "/api/v1/workflows", None)?;
            if json_out {
                print_json(&v);
            } else {
                print_workflows(&as_list(&v));
            }
        }
        WorkflowCommand::Get { name } => {
            let v = api.json("GET", &path(&name), None)?;
            if json_out {
                print_json(&v);
            } else {
                print_workflows(std::slice::from_ref(&v));
                println!();
                println!(
                    "concurrency: {}, catch-up: {}, cluster: {}, version {}",
                    s(&v["concurrency"]),
                    s(&v["catchup"]),
                    s(&v["cluster"]),
                    s(&v["version"])
                );
                table(
                    &["task", "depends on", "retries", "timeout ms"],
                    as_list(&v["tasks"])
                        .iter()
                        .map(|t| {
                            let deps: Vec<String> =
                                as_list(&t["depends_on"]).iter().map(s).collect();
                            vec![
                                s(&t["id"]),
                                if deps.is_empty() {
                                    "-".into()
                                } else {
                                    deps.join(", ")
                                },
                                s(&t["retries"]),
                                s(&t["timeout_ms"]),
                            ]
                        })
                        .collect(),
                );
                let runs = api.json("GET", &format!("{}/runs?limit=10", path(&name)), None)?;
                println!("\nrecent runs:");
                print_runs(&as_list(&runs));
            }
        }
        WorkflowCommand::Runs { name, limit } => {
            let v = api.json("GET", &format!("{}/runs?limit={limit}", path(&name)), None)?;
            if json_out {
                print_json(&v);
            } else {
                print_runs(&as_list(&v));
            }
        }
        WorkflowCommand::Run { name, run_id } => {
            let v = api.json(
                "GET",
                &format!("{}/runs/{}", path(&name), seg(&run_id)),
                None,
            )?;
            if json_out {
                print_json(&v);
            } else {
                print_run(&v);
            }
        }
        WorkflowCommand::Trigger {
            name,
            params,
            logical_time,
        } => {
            let mut parameters = serde_json::Map::new();
            for p in params {
                let Some((k, val)) = p.split_once('=') else {
                    return Err(fail(2, format!("--param {p}: expected KEY=VALUE")));
                };
                parameters.insert(k.to_string(), json!(val));
            }
            let mut body = json!({"parameters": parameters});
            if let Some(t) = logical_time {
                body["logical_time"] = json!(t);
            }
            let v = api.json("POST", &format!("{}/runs", path(&name)), Some(body))?;
            if json_out {
                print_json(&v);
            } else {
                println!("triggered run {} ({})", s(&v["run_id"]), s(&v["state"]));
            }
        }
        WorkflowCommand::Backfill { name, start, end } => {
            let v = api.json(
                "POST",
                &format!("{}/backfill", path(&name)),
                Some(json!({"start": start, "end": end})),
            )?;
            if json_out {
                print_json(&v);
            } else {
                let created = as_list(&v["created"]);
                println!(
                    "backfill: {} run(s) created, {} tick(s) already had one",
                    created.len(),
                    as_list(&v["existing"]).len()
                );
                print_runs(&created);
            }
        }
        WorkflowCommand::Cancel { name, run_id } => {
            let v = api.json(
                "POST",
                &format!("{}/runs/{}/cancel", path(&name), seg(&run_id)),
                None,
            )?;
            if json_out {
                print_json(&v);
            } else {
                println!("cancelling run {}", s(&v["run_id"]));
            }
        }
        WorkflowCommand::Delete { name } => {
            api.call("DELETE", &path(&name), None)?;
            if !json_out {
                println!("deleted workflow {name}");
            }
        }
    }
    Ok(())
}

fn set_enabled(api: &Api, name: &str, enabled: bool, json_out: bool) -> Result<(), ClientError> {
    let v = api.json(
        "PATCH",
        &format!("/api/v1/workflows/{}", seg(name)),
        Some(json!({"enabled": enabled})),
    )?;
    if json_out {
        print_json(&v);
    } else {
        println!(
            "{} workflow {} (version {}, next tick {})",
            if enabled { "enabled" } else { "disabled" },
            s(&v["name"]),
            s(&v["version"]),
            s(&v["next_tick"])
        );
    }
    Ok(())
}

#[cfg(test)]
mod follow_tests {
    use super::new_part;

    #[test]
    fn the_new_part_follows_the_last_printed_bytes() {
        assert_eq!(new_part("", "a\nb\n"), Some("a\nb\n"));
        assert_eq!(new_part("a\nb\n", "a\nb\nc\n"), Some("c\n"));
        assert_eq!(new_part("a\nb\n", "b\nc\n"), None);
        assert_eq!(new_part("a\nb\n", "a\nb\n"), Some(""));
        assert_eq!(new_part("a\nb\n", "x\n"), None);
    }
}
