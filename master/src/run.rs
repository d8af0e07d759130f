//! `sluice run` and `sluice explain`: compile a script, run its dataflow in a
//! `sluice-worker` process (see `sluice_compiler::instance`), print what a final
//! `SELECT` returns.

use crate::output::{print_result, Format};
use clap::Args;
use sluice_catalogs::MemoryCatalog;
use sluice_compiler::instance::{ProgressSnapshot, WorkerMessage, WorkerRequest};
use sluice_compiler::{compile, Compiled, ExplainStage};
use sluice_connectors::Registry;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A failure of a subcommand: the one line to print and the exit code.
pub struct Failure {
    /// Exit code: 1 runtime failure, 2 user mistake.
    pub code: u8,
    /// One line, no trailing newline.
    pub message: String,
}

impl Failure {
    pub fn user(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
    pub fn runtime(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

/// Arguments of `sluice run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// The SQL script (`-` reads standard input).
    pub script: PathBuf,
    /// Worker threads (in each process; results are identical for any count).
    #[arg(long, short = 'w', default_value_t = 1)]
    pub workers: usize,
    /// Worker processes on this machine, connected over loopback TCP (timely's cluster
    /// mode): the run has `processes × workers` workers; results are identical.
    #[arg(long, short = 'p', default_value_t = 1)]
    pub processes: usize,
    /// How to print a final SELECT's rows: table, csv or json (JSON Lines).
    /// Default: table on a terminal, csv otherwise.
    #[arg(long, short = 'f')]
    pub format: Option<Format>,
    /// Rows per source batch.
    #[arg(long, default_value_t = 8192)]
    pub batch_size: usize,
    /// Never print progress, even on a terminal.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Print the run's final metrics as one JSON line on standard error.
    #[arg(long)]
    pub metrics: bool,
}

/// Arguments of `sluice explain`.
#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// The SQL script (`-` reads standard input).
    pub script: PathBuf,
    /// Which stage: logical, optimized, physical or all.
    #[arg(long, default_value = "all")]
    pub stage: String,
}

const MAX_WORKERS: usize = 256;

fn read_script(path: &PathBuf) -> Result<String, Failure> {
    if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s).map_err(|e| {
            Failure::user(format!("cannot read the script from standard input: {e}"))
        })?;
        return Ok(s);
    }
    std::fs::read_to_string(path)
        .map_err(|e| Failure::user(format!("cannot read {}: {e}", path.display())))
}

fn compile_script(path: &PathBuf, registry: &Registry) -> Result<Compiled, Failure> {
    let sql = read_script(path)?;
    let catalog = MemoryCatalog::new();
    compile(&sql, &catalog, registry).map_err(|e| Failure::user(format!("{}: {e}", path.display())))
}

/// `sluice explain`.
pub fn explain(args: ExplainArgs) -> Result<(), Failure> {
    let stage = match args.stage.to_ascii_lowercase().as_str() {
        "logical" => ExplainStage::Logical,
        "optimized" => ExplainStage::Optimized,
        "physical" => ExplainStage::Physical,
        "all" => ExplainStage::All,
        other => {
            return Err(Failure::user(format!(
                "unknown stage '{other}' (logical, optimized, physical, all)"
            )))
        }
    };
    let registry = Registry::builtin();
    let compiled = compile_script(&args.script, &registry)?;
    println!("{}", compiled.explain(stage));
    Ok(())
}

/// `sluice run`.
pub fn run(args: RunArgs) -> Result<(), Failure> {
    if args.workers == 0 || args.workers > MAX_WORKERS {
        return Err(Failure::user(format!(
            "--workers must be between 1 and {MAX_WORKERS}"
        )));
    }
    if args.processes == 0 || args.processes > MAX_PROCESSES {
        return Err(Failure::user(format!(
            "--processes must be between 1 and {MAX_PROCESSES}"
        )));
    }
    if args.batch_size == 0 {
        return Err(Failure::user("--batch-size must be at least 1"));
    }
    let registry = Registry::builtin();
    let compiled = compile_script(&args.script, &registry)?;
    if let Some(text) = &compiled.explain {
        println!("{text}");
        return Ok(());
    }
    let format = args.format.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Csv
    });

    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let written_to = outputs_summary(&compiled.plan);
    let request = WorkerRequest {
        plan: compiled.plan,
        workers: args.workers,
        batch_size: args.batch_size,
        progress_interval_ms: show_progress.then_some(500),
        checkpoint: None,
        secret_key_file: None,
        peers: loopback_peers(args.processes)?,
        process: 0,
    };
    let started = Instant::now();
    let mut collected = Vec::new();
    let mut metrics = ProgressSnapshot::default();
    let mut last_shown = ProgressSnapshot::default();
    let mut last_time = Instant::now();
    run_worker(&request, |message| match message {
        WorkerMessage::Progress(p) => {
            if show_progress {
                let rate = p.rows_in.saturating_sub(last_shown.rows_in) as f64
                    / last_time.elapsed().as_secs_f64();
                eprint!(
                    "\r\x1b[2K[{:>6.1}s] rows in {} ({:.0}/s), rows out {}",
                    started.elapsed().as_secs_f64(),
                    p.rows_in,
                    rate,
                    p.rows_out
                );
                last_shown = p;
                last_time = Instant::now();
            }
        }
        WorkerMessage::Result(r) => collected.push(r),
        WorkerMessage::Printed(text) => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
        }
        WorkerMessage::Done(m) => metrics = m,
        WorkerMessage::Failed { .. } => {}
    })?;
    if show_progress {
        eprint!("\r\x1b[2K");
    }
    // One summary line, on a terminal or not (`--quiet` drops it).
    if !args.quiet {
        eprintln!("{}", summary_line(&metrics, started.elapsed(), &written_to));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for result in &collected {
        print_result(&mut out, result, format)
            .map_err(|e| Failure::runtime(format!("cannot write output: {e}")))?;
    }
    out.flush()
        .map_err(|e| Failure::runtime(format!("cannot write output: {e}")))?;
    if args.metrics {
        let m = metrics;
        eprintln!(
            "{{\"rows_read\":{},\"rows_in\":{},\"rows_out\":{},\"late_rows\":{},\"bad_records\":{},\"dead_lettered\":{},\"elapsed_ms\":{}}}",
            m.rows_read,
            m.rows_in,
            m.rows_out,
            m.late_rows,
            m.bad_records,
            m.dead_lettered,
            started.elapsed().as_millis()
        );
    }
    Ok(())
}

/// Where a plan's rows go, for the summary line: `table (path)` per `INSERT`,
/// `stdout` for a final `SELECT`.
fn outputs_summary(plan: &sluice_compiler::DataflowPlan) -> Vec<String> {
    use sluice_compiler::SinkTarget;
    plan.outputs
        .iter()
        .map(|o| match &o.target {
            SinkTarget::Table(t) => match t.option("path").or_else(|| t.option("topic")) {
                Some(at) => format!("{} ({} {at})", t.name, t.connector),
                None => format!("{} ({})", t.name, t.connector),
            },
            SinkTarget::Collect { .. } => "stdout".to_string(),
        })
        .collect()
}

/// `done in 1.20s: 1000 rows read, 1000 rows in, 12 rows out → sink (filesystem ./out)`.
fn summary_line(m: &ProgressSnapshot, elapsed: std::time::Duration, outputs: &[String]) -> String {
    let mut line = format!(
        "done in {:.2}s: {} rows read, {} rows in, {} rows out",
        elapsed.as_secs_f64(),
        m.rows_read,
        m.rows_in,
        m.rows_out
    );
    if m.late_rows > 0 {
        line.push_str(&format!(", {} late rows dropped", m.late_rows));
    }
    if m.bad_records > 0 {
        line.push_str(&format!(", {} bad records", m.bad_records));
    }
    if !outputs.is_empty() {
        line.push_str(" -> ");
        line.push_str(&outputs.join(", "));
    }
    line
}

/// The most processes `sluice run --processes` starts.
const MAX_PROCESSES: usize = 64;

/// Addresses for `processes` worker processes on loopback (none for one process): ports
/// the OS hands out now, released just before the workers bind them.
fn loopback_peers(processes: usize) -> Result<Vec<String>, Failure> {
    if processes <= 1 {
        return Ok(Vec::new());
    }
    let listeners = (0..processes)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::runtime(format!("cannot find free loopback ports: {e}")))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Failure::runtime(format!("cannot find free loopback ports: {e}")))
}

/// How long the other processes of a run get to end after one of them failed, before
/// they are killed.
const PEER_FAILURE_GRACE: Duration = Duration::from_secs(5);

/// Runs `request` in `sluice-worker` processes (one per peer, or one), handing each
/// message process 0 sends to `on_message` (and every process's printed rows); a
/// `Failed` message or an abnormal exit of any process becomes the returned failure.
fn run_worker(
    request: &WorkerRequest,
    mut on_message: impl FnMut(WorkerMessage),
) -> Result<(), Failure> {
    let worker =
        sluice_master::worker_bin::worker_binary().map_err(|e| Failure::runtime(e.to_string()))?;
    let (tx, rx) = std::sync::mpsc::channel::<(usize, String)>();
    let mut children = Vec::new();
    let mut readers = Vec::new();
    for process in 0..request.processes() {
        let mut request = request.clone();
        request.process = process;
        let body = sluice_compiler::instance::plan_to_json(&request).map_err(|e| {
            Failure::runtime(format!("internal error: cannot encode the plan: {e}"))
        })?;
        let mut child = match Command::new(&worker)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
        {
            Ok(child) => child,
            Err(e) => {
                for c in &mut children {
                    let _ = Child::kill(c);
                    let _ = Child::wait(c);
                }
                return Err(Failure::runtime(format!(
                    "cannot start {}: {e}",
                    worker.display()
                )));
            }
        };
        if let Some(mut stdin) = child.stdin.take() {
            readers.push(std::thread::spawn(move || {
                let _ = stdin.write_all(&body);
            }));
        }
        if let Some(stdout) = child.stdout.take() {
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send((process, line)).is_err() {
                        break;
                    }
                }
            }));
        }
        children.push(child);
    }
    drop(tx);
    let mut failure = None;
    let mut done = false;
    let mut ended: Vec<Option<std::process::ExitStatus>> = vec![None; children.len()];
    let mut first_failure_at: Option<Instant> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok((process, line)) => match serde_json::from_str::<WorkerMessage>(&line) {
                Ok(WorkerMessage::Failed {
                    user_error,
                    message,
                }) => {
                    // The first failure says why; the other processes then stop too.
                    if failure.is_none() {
                        failure = Some(if user_error {
                            Failure::user(format!("error: {message}"))
                        } else {
                            Failure::runtime(format!("job failed: {message}"))
                        });
                    }
                }
                Ok(WorkerMessage::Printed(text)) => on_message(WorkerMessage::Printed(text)),
                Ok(message) if process == 0 => {
                    done |= matches!(message, WorkerMessage::Done(_));
                    on_message(message);
                }
                // The other processes' results are empty (rows are gathered on worker
                // 0) and their counters partial.
                Ok(_) => {}
                Err(e) => {
                    failure.get_or_insert(Failure::runtime(format!(
                        "internal error: unreadable worker message ({e}): {line}"
                    )));
                }
            },
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        // A process that ended badly ends the run: the others get a grace period.
        for (i, child) in children.iter_mut().enumerate() {
            if ended[i].is_none() {
                if let Ok(Some(status)) = child.try_wait() {
                    ended[i] = Some(status);
                    if !status.success() {
                        first_failure_at.get_or_insert_with(Instant::now);
                    }
                }
            }
        }
        if first_failure_at.is_some_and(|at| at.elapsed() > PEER_FAILURE_GRACE) {
            for (i, child) in children.iter_mut().enumerate() {
                if ended[i].is_none() {
                    let _ = child.kill();
                }
            }
        }
    }
    for reader in readers {
        let _ = reader.join();
    }
    let mut bad = None;
    for (i, child) in children.iter_mut().enumerate() {
        let status = match ended[i] {
            Some(status) => status,
            None => child
                .wait()
                .map_err(|e| Failure::runtime(format!("cannot wait for the worker: {e}")))?,
        };
        if !status.success() && bad.is_none() {
            bad = Some((i, status));
        }
    }
    if let Some(f) = failure {
        return Err(f);
    }
    if let Some((i, status)) = bad {
        return Err(Failure::runtime(format!(
            "job failed: worker process {i} ended without finishing ({status})"
        )));
    }
    if !done {
        return Err(Failure::runtime(
            "job failed: the worker process ended without finishing".to_string(),
        ));
    }
    Ok(())
}
