//! `sluice-worker`: runs one compiled job's dataflow in this process.
//!
//! ```text
//! sluice (compile) ──WorkerRequest (JSON, stdin)──▶ sluice-worker ──WorkerMessage lines (stdout)──▶ sluice
//! ```
//!
//! Started by `sluice run` (and, later, by the master's cluster driver for each
//! instance), so that the `sluice` binary itself never links timely. Exit code 0 after
//! `Done`, 1 after `Failed`, 2 when the request itself cannot be read.

use sluice_compiler::instance::{WorkerMessage, WorkerRequest};
use sluice_connectors::{ConnectorError, Registry};
use sluice_dataflow::{ExecutionError, Progress, RunOptions};
use std::io::{Read, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Writes one message as one line; lines from several threads never interleave.
fn send(out: &Mutex<std::io::Stdout>, message: &WorkerMessage) {
    let line = match serde_json::to_string(message) {
        Ok(line) => line,
        Err(e) => format!(
            "{{\"failed\":{{\"user_error\":false,\"message\":{}}}}}",
            serde_json::Value::String(format!(
                "internal error: cannot encode a worker message: {e}"
            ))
        ),
    };
    if let Ok(out) = out.lock() {
        let mut out = out.lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn is_user_error(e: &ExecutionError) -> bool {
    let config = ConnectorError::Config(String::new()).to_string();
    matches!(e, ExecutionError::Connector { message, .. } if message.starts_with(&config))
}

fn main() -> ExitCode {
    let out = Arc::new(Mutex::new(std::io::stdout()));
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("sluice-worker: cannot read the request from standard input: {e}");
        return ExitCode::from(2);
    }
    let request: WorkerRequest = match serde_json::from_str(&input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sluice-worker: the request on standard input is not a WorkerRequest: {e}");
            return ExitCode::from(2);
        }
    };

    let progress = Arc::new(Progress::default());
    let finished = Arc::new(AtomicBool::new(false));
    let reporter = request.progress_interval_ms.map(|ms| {
        let (progress, finished, out) = (progress.clone(), finished.clone(), out.clone());
        std::thread::spawn(move || {
            let tick = Duration::from_millis(ms.clamp(10, 60_000));
            while !finished.load(Ordering::SeqCst) {
                std::thread::sleep(tick);
                send(&out, &WorkerMessage::Progress(progress.snapshot()));
            }
        })
    });

    let options = RunOptions::new(Registry::builtin())
        .with_workers(request.workers)
        .with_batch_size(request.batch_size);
    let result = sluice_dataflow::run(&request.plan, options, progress.clone());
    finished.store(true, Ordering::SeqCst);
    if let Some(handle) = reporter {
        let _ = handle.join();
    }
    match result {
        Ok(output) => {
            for collected in output.collected {
                send(&out, &WorkerMessage::Result(collected));
            }
            send(&out, &WorkerMessage::Done(progress.snapshot()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            send(
                &out,
                &WorkerMessage::Failed {
                    user_error: is_user_error(&e),
                    message: e.to_string(),
                },
            );
            ExitCode::from(1)
        }
    }
}
