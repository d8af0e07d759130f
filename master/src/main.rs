//! # `sluice`: the command-line entry point
//!
//! ```text
//! SQL text ─▶ compile (sluice-compiler) ─▶ DataflowPlan ─▶ sluice-worker process ─▶ results
//! ```
//!
//! `sluice run job.sql` compiles a SQL script and runs it in the foreground on this
//! machine, in a `sluice-worker` process (this binary never links timely).
//! `sluice serve` starts the REST master (store, watchdog, local cluster);
//! `sluice job …`/`sluice table …`/`sluice workflow …` are its command-line clients.
//! `sluice worker --instance-dir DIR` is how the master's `local` cluster starts an
//! instance: it replaces this process with `sluice-worker --instance-dir DIR` (same
//! pid).
//! Exit codes: 0 success, 1 runtime failure, 2 user mistake (bad SQL, bad options,
//! missing file) — always with one line on stderr.

mod output;
mod run;

use clap::{Args, CommandFactory, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Sluice: streaming SQL jobs on timely/differential dataflow.
#[derive(Parser, Debug)]
#[command(name = "sluice", version, about)]
struct Cli {
    /// Log lines as text or as JSON objects (one per line); `RUST_LOG` sets the levels
    /// (default `info`).
    #[arg(long, global = true, value_enum, env = "SLUICE_LOG_FORMAT", default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

/// `--log-format`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    /// `2026-12-04T10:00:00.000Z  INFO message`.
    Text,
    /// `{"timestamp":…,"level":"INFO","fields":{"message":…},…}`.
    Json,
}

/// Logs (the master's, and the library crates' `tracing` events) go to stderr. The
/// format travels to worker processes in `SLUICE_LOG_FORMAT`.
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    std::env::set_var(
        "SLUICE_LOG_FORMAT",
        if format == LogFormat::Json {
            "json"
        } else {
            "text"
        },
    );
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compile a SQL script and run it in the foreground until its sources are exhausted.
    Run(run::RunArgs),
    /// Print the plans of a SQL script's queries without running them.
    Explain(run::ExplainArgs),
    /// Start the master: REST API, Swagger UI, watchdog and the local cluster.
    Serve(Box<sluice_master::server::ServeArgs>),
    /// Print the OpenAPI document of the REST API.
    Openapi,
    /// Manage jobs on a master (submit, list, get, stop, start, scale, delete, logs…).
    Job(sluice_master::client::JobArgs),
    /// Manage the master's catalog tables (create, list, get, drop).
    Table(sluice_master::client::TableArgs),
    /// Manage scheduled workflows (create, list, get, runs, trigger, backfill, cancel…).
    Workflow(sluice_master::client::WorkflowArgs),
    /// Manage API tokens (create, list, revoke; admin).
    Token(sluice_master::client_security::TokenArgs),
    /// Read the master's audit log (admin).
    Audit(sluice_master::client_security::AuditArgs),
    /// Run one instance of a job (started by the master's local cluster, not by hand).
    Worker(WorkerArgs),
    /// Run worker processes on this host for a master's `hosts` cluster (registers,
    /// heartbeats, starts and stops what the master places here).
    Agent(sluice_master::agent::AgentArgs),
    /// Print a shell completion script (`sluice completions bash > /etc/bash_completion.d/sluice`).
    Completions {
        /// The shell: bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Arguments of `sluice worker`.
#[derive(Args, Debug)]
struct WorkerArgs {
    /// The instance directory: `request.json` in, `status.json` out.
    #[arg(long)]
    instance_dir: PathBuf,
}

/// `sluice worker`: becomes `sluice-worker --instance-dir DIR` (same process id, so the
/// pid the launcher recorded stays the instance's) under umask 077; returns only on
/// failure, after writing a `failed` status into DIR so the master sees why.
fn worker(args: WorkerArgs) -> Result<(), run::Failure> {
    use std::os::unix::process::CommandExt;
    // Files a job writes under a master are its owner's only (0600, directories 0700).
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    let message = match sluice_master::worker_bin::worker_binary() {
        Ok(worker) => {
            let error = std::process::Command::new(&worker)
                .arg("--instance-dir")
                .arg(&args.instance_dir)
                .exec();
            format!("cannot start {}: {error}", worker.display())
        }
        Err(e) => e.to_string(),
    };
    sluice_master::cluster::write_failed_status(&args.instance_dir, &message);
    Err(run::Failure { code: 1, message })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Explain(args) => run::explain(args),
        Command::Serve(args) => sluice_master::server::serve(*args).map_err(|e| run::Failure {
            code: 1,
            message: format!("error: {e:#}"),
        }),
        Command::Job(args) => sluice_master::client::job(args).map_err(|e| run::Failure {
            code: e.code,
            message: e.message,
        }),
        Command::Table(args) => sluice_master::client::table_cmd(args).map_err(|e| run::Failure {
            code: e.code,
            message: e.message,
        }),
        Command::Workflow(args) => {
            sluice_master::client::workflow_cmd(args).map_err(|e| run::Failure {
                code: e.code,
                message: e.message,
            })
        }
        Command::Token(args) => {
            sluice_master::client_security::token_cmd(args).map_err(|e| run::Failure {
                code: e.code,
                message: e.message,
            })
        }
        Command::Audit(args) => {
            sluice_master::client_security::audit_cmd(args).map_err(|e| run::Failure {
                code: e.code,
                message: e.message,
            })
        }
        Command::Openapi => {
            print!("{}", sluice_master::api::openapi_json());
            Ok(())
        }
        Command::Worker(args) => worker(args),
        Command::Agent(args) => sluice_master::agent::run(args).map_err(|e| run::Failure {
            code: 2,
            message: format!("error: {e}"),
        }),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "sluice", &mut std::io::stdout());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", e.message);
            ExitCode::from(e.code)
        }
    }
}
