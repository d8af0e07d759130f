//! `sluice-worker`: runs one compiled job's dataflow in this process.
//!
//! Two modes:
//!
//! * **stdin mode** (the default, used by `sluice run`):
//!   ```text
//!   sluice (compile) ──WorkerRequest (JSON, stdin)──▶ sluice-worker ──WorkerMessage lines (stdout)──▶ sluice
//!   ```
//!   Exit code 0 after `Done`, 1 after `Failed`, 2 when the request itself cannot be
//!   read.
//! * **instance mode** (`sluice-worker --instance-dir DIR`, what `sluice worker
//!   --instance-dir DIR` hands over to for the master's `local` cluster): reads
//!   `DIR/request.json` (an `InstanceRequest`), runs the plan and, every
//!   `heartbeat_interval_ms`, replaces `DIR/status.json` (an `InstanceStatus`, written to
//!   `status.json.tmp` then renamed, so readers never see a partial file) with the
//!   state `running`, a fresh heartbeat and the counters; at the end it writes the final
//!   status (`finished`, or `failed` with the message) and exits 0 (finished), 1
//!   (failed) or 2 (unreadable request; a `failed` status is still written). Human
//!   readable lines go to standard error (the launcher sends it to `DIR/worker.log`): the
//!   start, a progress line about every 10 seconds, the end. SIGTERM and SIGKILL end the
//!   process at once, without a final status: the launcher knows it asked for the
//!   stop.
//!
//!   Memory: when `memory_mb > 0` a watcher thread reads the process's resident set
//!   ([`resident_bytes`], `/proc/self/status`) every [`MEMORY_POLL`] and, once it is
//!   above `memory_mb` MiB plus an allowance for the runtime
//!   ([`RUNTIME_ALLOWANCE_MIB`] MiB plus [`PER_WORKER_ALLOWANCE_MIB`] MiB per worker
//!   thread), ends the instance with a `failed` status (a user error: the job's state
//!   does not fit its `resources.memory_mb`) whose message says how much was resident
//!   and what to change — a clear failure instead of the kernel's OOM kill. Resident
//!   memory, not address space: `RLIMIT_AS`, the earlier cap, counted the allocator's
//!   reservations and thread stacks, which ruled out allocators that reserve large
//!   arenas. Where `/proc` is missing the cap is logged as not enforced.
//!
//! Either way, the `sluice` binary itself never links timely.
//!
//! Allocator: mimalloc (stateful operators allocate per row and per key; it takes
//! 0.5–0.9× the CPU of the system allocator on them, `bench/README.md`); build with
//! `--no-default-features` for the system allocator.

use sluice_compiler::instance::{
    plan_from_json, InstanceRequest, InstanceRunState, InstanceStatus, WorkerMessage, WorkerRequest,
};
use sluice_connectors::{ConnectorError, PrintConnector, Registry};
use sluice_dataflow::{ExecutionError, Progress, ProgressSnapshot, RunOptions, RunOutput};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The resident memory (MiB) allowed beyond an instance's `memory_mb` for the
/// runtime: the executable and its libraries, the main and I/O threads.
const RUNTIME_ALLOWANCE_MIB: u64 = 64;
/// The resident memory (MiB) allowed beyond `memory_mb` per worker thread: its stack,
/// its allocator pages and exchange buffers.
const PER_WORKER_ALLOWANCE_MIB: u64 = 16;
/// How often the memory watcher reads the resident set.
const MEMORY_POLL: Duration = Duration::from_millis(50);
/// How often instance mode logs a progress line.
const PROGRESS_LOG_EVERY: Duration = Duration::from_secs(10);

/// Where the stdin mode's messages go: the standard output the process was given, moved
/// to a descriptor of its own, while descriptor 1 becomes a copy of standard error. So
/// nothing else printed on standard output (timely's cluster mode reports connection
/// attempts there) can break the message protocol.
type Protocol = Mutex<std::io::BufWriter<std::fs::File>>;

fn protocol_stream() -> std::io::Result<Protocol> {
    use std::os::fd::AsFd;
    let own = std::io::stdout().as_fd().try_clone_to_owned()?;
    nix::unistd::dup2_stdout(std::io::stderr()).map_err(std::io::Error::from)?;
    Ok(Mutex::new(std::io::BufWriter::new(std::fs::File::from(
        own,
    ))))
}

/// Writes one message as one line; lines from several threads never interleave.
fn send(out: &Protocol, message: &WorkerMessage) {
    let line = match serde_json::to_string(message) {
        Ok(line) => line,
        Err(e) => format!(
            "{{\"failed\":{{\"user_error\":false,\"message\":{}}}}}",
            serde_json::Value::String(format!(
                "internal error: cannot encode a worker message: {e}"
            ))
        ),
    };
    if let Ok(mut out) = out.lock() {
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

fn is_user_error(e: &ExecutionError) -> bool {
    let config = ConnectorError::Config(String::new()).to_string();
    matches!(e, ExecutionError::Connector { message, .. } if message.starts_with(&config))
}

const USAGE: &str = "usage: sluice-worker                       (a WorkerRequest on standard input)\n       sluice-worker --instance-dir DIR    (DIR/request.json; status in DIR/status.json)";

/// The library crates' `tracing` events go to stderr (the instance's `worker.log`), as
/// text or, with `SLUICE_LOG_FORMAT=json`, JSON lines; `RUST_LOG` sets the levels.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let _ = if std::env::var("SLUICE_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    init_logging();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let as_str: Vec<Option<&str>> = args.iter().map(|a| a.to_str()).collect();
    match as_str.as_slice() {
        [] => stdin_main(),
        [Some("--instance-dir"), _] => instance_main(PathBuf::from(&args[1])),
        [Some(arg)] if arg.starts_with("--instance-dir=") => {
            instance_main(PathBuf::from(&arg["--instance-dir=".len()..]))
        }
        [Some("--help" | "-h")] => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("sluice-worker: unexpected arguments {args:?}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Turns transparent huge pages off for this process (Linux). mimalloc asks for huge
/// pages on its arenas; with keyed state growing and shrinking, the kernel then zeroes
/// 2 MiB pages that are used sparsely and split when freed: on Nexmark q18 (10M
/// events) that was 1.5–2.5 CPU-s of kernel time out of about 15 (bench/README.md).
fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        log(format_args!(
            "warning: cannot turn transparent huge pages off ({e}); running with them"
        ));
    }
}

/// The stdin mode's `print` output: each write becomes a `WorkerMessage::Printed`.
struct PrintedLines {
    out: Arc<Protocol>,
}

impl std::io::Write for PrintedLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        send(
            &self.out,
            &WorkerMessage::Printed(String::from_utf8_lossy(buf).into_owned()),
        );
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The stdin mode: a `WorkerRequest` in, `WorkerMessage` lines out.
fn stdin_main() -> ExitCode {
    let out = match protocol_stream() {
        Ok(out) => Arc::new(out),
        Err(e) => {
            eprintln!("sluice-worker: cannot set up the message stream on standard output: {e}");
            return ExitCode::from(2);
        }
    };
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("sluice-worker: cannot read the request from standard input: {e}");
        return ExitCode::from(2);
    }
    let mut request: WorkerRequest = match plan_from_json(input.as_bytes()) {
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

    // A `print` sink's rows travel as messages: stdout is the protocol.
    let mut registry = Registry::builtin();
    registry.register(Arc::new(PrintConnector::to_writer(PrintedLines {
        out: out.clone(),
    })));
    let mut options = RunOptions::new(registry)
        .with_workers(request.workers)
        .with_cluster(request.process, request.peers.clone())
        .with_batch_size(request.batch_size)
        .with_kernels(sluice_dataflow::kernels_for_job(0))
        .with_exit_after_run();
    options.checkpoint = request.checkpoint.clone();
    let result =
        sluice_dataflow::open_secrets(&mut request.plan, request.secret_key_file.as_deref())
            .and_then(|()| sluice_dataflow::run(&request.plan, options, progress.clone()));
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

/// Milliseconds since the Unix epoch, now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Writes one human-readable line to standard error (the instance's log), timestamped.
fn log(line: impl std::fmt::Display) {
    let at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    eprintln!("{at} {line}");
}

/// Replaces `dir/status.json` atomically: writes `status.json.tmp`, then renames it.
fn write_status(dir: &Path, status: &InstanceStatus) -> std::io::Result<()> {
    let body = serde_json::to_vec(status).map_err(std::io::Error::other)?;
    let tmp = dir.join("status.json.tmp");
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, dir.join("status.json"))
}

/// Reads and decodes `dir/request.json`.
fn read_request(dir: &Path) -> Result<InstanceRequest, String> {
    let path = dir.join("request.json");
    let body = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    plan_from_json(&body).map_err(|e| format!("{} is not an InstanceRequest: {e}", path.display()))
}

/// This process's resident set in bytes (`VmRSS` of `/proc/self/status`), `None`
/// where unreadable.
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line["VmRSS:".len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib.saturating_mul(1024))
}

/// The resident-memory cap (bytes) of an instance asking for `memory_mb` with
/// `workers` worker threads: `None` when it asked for none.
fn memory_cap_bytes(memory_mb: u64, workers: usize) -> Option<u64> {
    (memory_mb > 0).then(|| {
        memory_mb
            .saturating_add(RUNTIME_ALLOWANCE_MIB)
            .saturating_add(PER_WORKER_ALLOWANCE_MIB.saturating_mul(workers as u64))
            .saturating_mul(1 << 20)
    })
}

/// What the instance's main loop waits for: the run's result, or the memory
/// watcher's verdict.
enum Event {
    Ran(Result<RunOutput, ExecutionError>),
    OverMemory(String),
}

/// Starts the memory watcher (see the crate documentation) when `memory_mb > 0`;
/// logs the cap.
fn watch_memory(memory_mb: u64, workers: usize, events: mpsc::Sender<Event>) {
    let Some(cap) = memory_cap_bytes(memory_mb, workers) else {
        return;
    };
    if resident_bytes().is_none() {
        log(format_args!(
            "warning: memory cap of {} MiB not enforced: the resident set is unreadable here (no /proc/self/status)",
            cap >> 20
        ));
        return;
    }
    log(format_args!(
        "memory cap: {} MiB resident ({memory_mb} MiB asked + {RUNTIME_ALLOWANCE_MIB} MiB + {PER_WORKER_ALLOWANCE_MIB} MiB per worker thread for the runtime)",
        cap >> 20
    ));
    let watcher = std::thread::Builder::new()
        .name("sluice-memory".to_string())
        .spawn(move || loop {
            std::thread::sleep(MEMORY_POLL);
            let Some(resident) = resident_bytes() else {
                continue;
            };
            if resident > cap {
                let message = format!(
                    "the instance exceeded its memory limit: {} MiB resident, above resources.memory_mb = {memory_mb} MiB plus {} MiB for the runtime; give the job more memory (resources.memory_mb), more parallelism, or less state (window the aggregation, bound the join in time)",
                    resident >> 20,
                    (cap >> 20) - memory_mb
                );
                let _ = events.send(Event::OverMemory(message));
                return;
            }
        });
    if let Err(e) = watcher {
        log(format_args!(
            "warning: memory cap not enforced: cannot start its watcher thread: {e}"
        ));
    }
}

/// Keeps the status file current and says when the counters last moved.
struct StatusWriter {
    dir: PathBuf,
    pid: u32,
    instance_id: String,
    started_at_ms: i64,
    progress_at_ms: i64,
    last: ProgressSnapshot,
    failing: bool,
    /// Worker threads of the run (0 until the request is read).
    workers: usize,
    /// Per worker thread: its loop count at the last status, and when it last moved.
    steps: Vec<(u64, i64)>,
}

impl StatusWriter {
    /// Writes the status `run` with `progress`'s counters now.
    fn write(&mut self, run: InstanceRunState, progress: &Progress) {
        let snapshot = progress.snapshot();
        let now = now_ms();
        if snapshot != self.last {
            self.last = snapshot.clone();
            self.progress_at_ms = now;
        }
        let stepped_at_ms = self.stepped_at(progress, now);
        let status = InstanceStatus {
            pid: self.pid,
            instance_id: self.instance_id.clone(),
            run,
            started_at_ms: self.started_at_ms,
            heartbeat_at_ms: now,
            progress_at_ms: self.progress_at_ms,
            input_waiting: progress.input_waiting(),
            stepped_at_ms,
            progress: snapshot,
        };
        match write_status(&self.dir, &status) {
            Ok(()) if self.failing => {
                self.failing = false;
                log("status.json is written again");
            }
            Ok(()) => {}
            // Logged once per failure streak: a full disk must not fill the log too.
            Err(e) if !self.failing => {
                self.failing = true;
                log(format_args!(
                    "warning: cannot write {}: {e}",
                    self.dir.join("status.json").display()
                ));
            }
            Err(_) => {}
        }
    }
}

impl StatusWriter {
    /// The latest time by which every worker thread had stepped its loop; `None` until
    /// each has stepped once (the dataflow is still being built or restored).
    fn stepped_at(&mut self, progress: &Progress, now: i64) -> Option<i64> {
        if self.workers == 0 {
            return None;
        }
        let steps = progress.worker_steps(self.workers);
        if self.steps.len() != steps.len() {
            self.steps = steps.iter().map(|&n| (n, now)).collect();
        }
        for ((last, at), n) in self.steps.iter_mut().zip(steps) {
            if n != *last {
                *last = n;
                *at = now;
            }
        }
        if self.steps.iter().any(|&(n, _)| n == 0) {
            return None;
        }
        self.steps.iter().map(|&(_, at)| at).min()
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// The instance mode (see the crate documentation).
fn instance_main(dir: PathBuf) -> ExitCode {
    let started_at_ms = now_ms();
    let started = Instant::now();
    let pid = std::process::id();
    let progress = Arc::new(Progress::new());
    let fallback_id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut status = StatusWriter {
        dir: dir.clone(),
        pid,
        instance_id: fallback_id,
        started_at_ms,
        progress_at_ms: started_at_ms,
        last: ProgressSnapshot::default(),
        failing: false,
        workers: 0,
        steps: Vec::new(),
    };
    let request = match read_request(&dir) {
        Ok(request) => request,
        Err(message) => {
            log(format_args!("sluice-worker (pid {pid}): {message}"));
            status.write(
                InstanceRunState::Failed {
                    user_error: false,
                    message,
                    superseded: false,
                },
                &progress,
            );
            return ExitCode::from(2);
        }
    };
    status.instance_id = request.instance_id.clone();
    let workers = request.worker.workers.max(1);
    status.workers = workers;
    log(format_args!(
        "instance {} starting: job {} ({}) version {}, process {} of {}, worker threads {workers}, batch size {}, memory {} MiB, pid {pid}",
        request.instance_id,
        request.job_name,
        request.job_id,
        request.job_version,
        request.worker.process,
        request.worker.processes(),
        request.worker.batch_size,
        request.memory_mb,
    ));
    let (done_tx, done_rx) = mpsc::channel::<Event>();
    watch_memory(request.memory_mb, workers, done_tx.clone());
    let run_progress = progress.clone();
    let mut worker = request.worker.clone();
    let gpus = request.gpus;
    let runner = std::thread::Builder::new()
        .name("sluice-run".to_string())
        .spawn(move || {
            let mut options = RunOptions::new(Registry::builtin())
                .with_workers(worker.workers.max(1))
                .with_cluster(worker.process, worker.peers.clone())
                .with_batch_size(worker.batch_size.max(1))
                .with_kernels(sluice_dataflow::kernels_for_job(gpus))
                .with_exit_after_run();
            options.checkpoint = worker.checkpoint.clone();
            let result =
                sluice_dataflow::open_secrets(&mut worker.plan, worker.secret_key_file.as_deref())
                    .and_then(|()| sluice_dataflow::run(&worker.plan, options, run_progress));
            let _ = done_tx.send(Event::Ran(result));
        });
    let runner = match runner {
        Ok(handle) => handle,
        Err(e) => {
            let message = format!("internal error: cannot start the run thread: {e}");
            log(&message);
            status.write(
                InstanceRunState::Failed {
                    user_error: false,
                    message,
                    superseded: false,
                },
                &progress,
            );
            return ExitCode::from(1);
        }
    };

    let heartbeat = Duration::from_millis(request.heartbeat_interval_ms.clamp(10, 60_000));
    let mut last_log = Instant::now();
    let mut logged = ProgressSnapshot::default();
    let outcome = loop {
        status.write(InstanceRunState::Running, &progress);
        if last_log.elapsed() >= PROGRESS_LOG_EVERY {
            let p = progress.snapshot();
            let rate =
                p.rows_in.saturating_sub(logged.rows_in) as f64 / last_log.elapsed().as_secs_f64();
            log(format_args!(
                "running {:.0}s: rows in {} ({rate:.0}/s), rows out {}, late rows {}, bad records {}{}",
                started.elapsed().as_secs_f64(),
                p.rows_in,
                p.rows_out,
                p.late_rows,
                p.bad_records,
                match (progress.sources_waiting() > 0, progress.input_waiting()) {
                    (false, _) => ", sources done",
                    (true, false) => ", sources idle (caught up)",
                    (true, true) => "",
                },
            ));
            logged = p;
            last_log = Instant::now();
        }
        match done_rx.recv_timeout(heartbeat) {
            Ok(Event::Ran(result)) => break Some(result),
            Ok(Event::OverMemory(message)) => {
                // The run thread is still going: end the process without joining it.
                log(format_args!(
                    "instance {} failed after {:.2}s (user error): {message}",
                    request.instance_id,
                    started.elapsed().as_secs_f64()
                ));
                status.write(
                    InstanceRunState::Failed {
                        user_error: true,
                        message,
                        superseded: false,
                    },
                    &progress,
                );
                return ExitCode::from(1);
            }
            // The memory watcher holds a sender too: a run thread that ended without
            // sending (it panicked) is seen here.
            Err(mpsc::RecvTimeoutError::Timeout) if runner.is_finished() => {
                match done_rx.try_recv() {
                    Ok(Event::Ran(result)) => break Some(result),
                    _ => break None,
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break None,
        }
    };
    let joined = runner.join();
    let outcome = match (outcome, joined) {
        (Some(result), _) => result,
        (None, Err(payload)) => Err(ExecutionError::Internal(format!(
            "the run panicked: {}",
            panic_message(payload.as_ref())
        ))),
        (None, Ok(())) => Err(ExecutionError::Internal(
            "the run ended without a result".to_string(),
        )),
    };
    let elapsed = started.elapsed().as_secs_f64();
    match outcome {
        // The last log line comes before the final status: whoever sees the instance
        // ended (`sluice job logs --follow`) finds its log complete.
        Ok(output) => {
            let m = output.metrics;
            log(format_args!(
                "instance {} finished in {elapsed:.2}s: rows in {}, rows out {}, late rows {}, bad records {}, dead-lettered {}{}",
                request.instance_id,
                m.rows_in,
                m.rows_out,
                m.late_rows,
                m.bad_records,
                m.dead_lettered,
                if output.collected.is_empty() {
                    String::new()
                } else {
                    format!(
                        " ({} collected result(s) discarded: an instance has no client)",
                        output.collected.len()
                    )
                },
            ));
            status.write(InstanceRunState::Finished, &progress);
            ExitCode::SUCCESS
        }
        Err(e) => {
            let user_error = is_user_error(&e);
            let message = e.to_string();
            log(format_args!(
                "instance {} failed after {elapsed:.2}s{}: {message}",
                request.instance_id,
                if user_error { " (user error)" } else { "" },
            ));
            status.write(
                InstanceRunState::Failed {
                    user_error,
                    message: message.clone(),
                    superseded: matches!(e, ExecutionError::Superseded { .. }),
                },
                &progress,
            );
            ExitCode::from(1)
        }
    }
}
