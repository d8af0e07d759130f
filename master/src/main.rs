//! # `sluice`: the command-line entry point
//!
//! ```text
//! SQL text ─▶ compile (sluice-compiler) ─▶ DataflowPlan ─▶ sluice-worker process ─▶ results
//! ```
//!
//! `sluice run job.sql` compiles a SQL script and runs it in the foreground on this
//! machine, in a `sluice-worker` process (this binary never links timely); the REST
//! master (`serve`), worker instances (`worker`) and client subcommands come next.
//! Exit codes: 0 success, 1 runtime failure, 2 user mistake (bad SQL, bad options,
//! missing file) — always with one line on stderr.

mod output;
mod run;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Sluice: streaming SQL jobs on timely/differential dataflow.
#[derive(Parser, Debug)]
#[command(name = "sluice", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compile a SQL script and run it in the foreground until its sources are exhausted.
    Run(run::RunArgs),
    /// Print the plans of a SQL script's queries without running them.
    Explain(run::ExplainArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Explain(args) => run::explain(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{}", e.message);
            ExitCode::from(e.code)
        }
    }
}
