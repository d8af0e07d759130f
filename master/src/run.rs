//! `sluice run` and `sluice explain`: compile a script, run its dataflow in this
//! process, print what a final `SELECT` returns.

use crate::output::{print_result, Format};
use clap::Args;
use sluice_catalogs::MemoryCatalog;
use sluice_compiler::{compile, Compiled, ExplainStage};
use sluice_connectors::{ConnectorError, Registry};

/// How a `ConnectorError::Config` renders, so configuration failures at run time map to exit code 2.
static CONFIG_ERROR_PREFIX: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| ConnectorError::Config(String::new()).to_string());
use sluice_dataflow::{ExecutionError, Progress, RunOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A failure of a subcommand: the one line to print and the exit code.
pub struct Failure {
    /// Exit code: 1 runtime failure, 2 user mistake.
    pub code: u8,
    /// One line, no trailing newline.
    pub message: String,
}

impl Failure {
    fn user(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
    fn runtime(message: impl Into<String>) -> Self {
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
    /// Worker threads (results are identical for any count).
    #[arg(long, short = 'w', default_value_t = 1)]
    pub workers: usize,
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

    let progress = Arc::new(Progress::default());
    let show_progress = !args.quiet && std::io::stderr().is_terminal();
    let done = Arc::new(AtomicBool::new(false));
    let reporter = show_progress.then(|| spawn_progress_reporter(progress.clone(), done.clone()));

    let options = RunOptions {
        workers: args.workers,
        registry,
        batch_size: args.batch_size,
        kernels: Arc::new(sluice_gpu::CpuKernels),
    };
    let started = Instant::now();
    let result = sluice_dataflow::run(&compiled.plan, options, progress.clone());
    done.store(true, Ordering::SeqCst);
    if let Some(handle) = reporter {
        let _ = handle.join();
    }
    let output = result.map_err(execution_failure)?;
    if show_progress {
        let m = progress.snapshot();
        eprintln!(
            "done in {:.2}s: {} rows in, {} rows out{}{}",
            started.elapsed().as_secs_f64(),
            m.rows_in,
            m.rows_out,
            if m.late_rows > 0 {
                format!(", {} late rows dropped", m.late_rows)
            } else {
                String::new()
            },
            if m.bad_records > 0 {
                format!(", {} bad records", m.bad_records)
            } else {
                String::new()
            },
        );
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for result in &output.collected {
        print_result(&mut out, result, format)
            .map_err(|e| Failure::runtime(format!("cannot write output: {e}")))?;
    }
    out.flush()
        .map_err(|e| Failure::runtime(format!("cannot write output: {e}")))?;
    if args.metrics {
        let m = progress.snapshot();
        eprintln!(
            "{{\"rows_in\":{},\"rows_out\":{},\"late_rows\":{},\"bad_records\":{},\"dead_lettered\":{},\"elapsed_ms\":{}}}",
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

fn execution_failure(e: ExecutionError) -> Failure {
    match &e {
        // Bad options only a running source can see (a missing path…) are user mistakes.
        ExecutionError::Connector { message, .. }
            if message.starts_with(CONFIG_ERROR_PREFIX.as_str()) =>
        {
            Failure::user(format!("error: {e}"))
        }
        _ => Failure::runtime(format!("job failed: {e}")),
    }
}

fn spawn_progress_reporter(
    progress: Arc<Progress>,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut last_in = 0u64;
        let mut last = Instant::now();
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(200));
            if last.elapsed() < Duration::from_millis(500) {
                continue;
            }
            let m = progress.snapshot();
            let rate = (m.rows_in.saturating_sub(last_in)) as f64 / last.elapsed().as_secs_f64();
            last_in = m.rows_in;
            last = Instant::now();
            eprint!(
                "\r\x1b[2K[{:>6.1}s] rows in {} ({:.0}/s), rows out {}",
                start.elapsed().as_secs_f64(),
                m.rows_in,
                rate,
                m.rows_out
            );
        }
        eprint!("\r\x1b[2K");
    })
}
