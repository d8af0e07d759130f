//! The `local` cluster driver: each instance is a `sluice worker --instance-dir DIR`
//! process on this machine (it replaces itself with `sluice-worker`, same pid), and
//! everything about it lives in its directory `instances_dir/<instance id>/`:
//!
//! | file | written by | what |
//! |------|------------|------|
//! | `request.json` | launch | the [`InstanceRequest`] (job, version, plan, memory cap, heartbeat interval) |
//! | `launch.json` | launch | `{"pid": …, "launched_at_ms": …}` |
//! | `worker.log` | the instance | its standard output and error (appended; rotated by observe) |
//! | `worker.log.1` | observe | the last `log_max_bytes` of `worker.log` before it was last emptied |
//! | `status.json` | the instance | its [`InstanceStatus`], replaced every heartbeat and once at its end |
//! | `stop_requested` | stop | marker: the master asked it to stop |
//! | `exit_status` | observe | how the process ended, when this master reaped it (`killed by signal SIGKILL`) |
//! | `ended_at` | observe | ms since the epoch, written the first time the process is seen dead |
//! | `retired` | retire | marker: the watchdog accounted for its end |
//!
//! Instances run in their own process group, so they survive the master (and the
//! signals sent to the master's terminal). A new master over the same directory finds
//! (adopts) them simply by scanning it. A pid is taken as the instance's only if
//! `/proc/<pid>` is a live (non-zombie) process whose command line has the instance
//! directory as an argument, which guards against pid reuse. This master reaps the
//! processes it started itself (no zombies); adopted ones were reparented to init,
//! which reaps them.
//!
//! Every `observe` also keeps instances in bounds: a `worker.log` over `log_max_bytes`
//! is rotated (its last `log_max_bytes` go to `worker.log.1`, then it is emptied in
//! place; the worker appends, so it writes on at the start of the emptied file; bytes
//! written in the instant between the copy and the truncation are lost), and a
//! stop-requested instance still alive `stop_grace` after the request (its `stop`
//! was interrupted, e.g. by a master restart, or it ignores SIGTERM) gets SIGKILL.

use super::{Cluster, ClusterError, LaunchSpec};
use crate::model::{
    legacy_owner, now_ms, Capacity, InstanceOwner, InstanceState, ObservedInstance,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sluice_compiler::instance::{
    InstanceRequest, InstanceRunState, InstanceStatus, ProgressSnapshot,
};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

const REQUEST: &str = "request.json";
const LAUNCH: &str = "launch.json";
const STATUS: &str = "status.json";
const LOG: &str = "worker.log";
const STOP_REQUESTED: &str = "stop_requested";
const RETIRED: &str = "retired";
const ENDED_AT: &str = "ended_at";
const EXIT_STATUS: &str = "exit_status";
const LOG_ROTATED: &str = "worker.log.1";

/// How often `stop` and `kill` look whether the process is gone.
const POLL: Duration = Duration::from_millis(50);
/// How long `stop` and `kill` wait for a SIGKILLed process to disappear.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How long an instance directory without a pid (launch in progress, or a master that
/// died while launching) counts as starting; after that it is a crash.
const LAUNCH_WINDOW: Duration = Duration::from_secs(30);

/// The message of an instance whose process is gone without a final status.
pub const CRASH_MESSAGE: &str =
    "the process ended without a final report (killed, crashed or out of memory)";

/// Local cluster settings.
#[derive(Clone, Debug)]
pub struct LocalClusterConfig {
    /// The cluster's name (`local`).
    pub name: String,
    /// Where instance directories are (created if missing).
    pub instances_dir: PathBuf,
    /// The executable started as `<sluice_exe> worker --instance-dir DIR` (the master
    /// passes its own `current_exe`); it finds `sluice-worker` beside itself or through
    /// `$SLUICE_WORKER_BIN`, which instances inherit from the master's environment.
    pub sluice_exe: PathBuf,
    /// What the cluster can hold.
    pub capacity: Capacity,
    /// How long `stop` waits after SIGTERM before SIGKILL.
    pub stop_grace: Duration,
    /// How often instances write `status.json` (milliseconds).
    pub heartbeat_interval_ms: u64,
    /// Retired instance directories kept per job (older ones are deleted on retire).
    pub keep_retired_per_job: usize,
    /// `worker.log` is rotated once it is larger than this (bytes); it and
    /// `worker.log.1` are each about this size at most.
    pub log_max_bytes: u64,
    /// The most worker threads one process may run (`None`: the whole capacity).
    pub threads_per_process: Option<u64>,
}

impl LocalClusterConfig {
    /// Defaults: name `local`, [`default_capacity`], a 3 s stop grace, a 500 ms
    /// heartbeat, 10 retired instances kept per job, logs rotated at 16 MiB.
    pub fn new(instances_dir: impl Into<PathBuf>, sluice_exe: impl Into<PathBuf>) -> Self {
        LocalClusterConfig {
            name: "local".to_string(),
            instances_dir: instances_dir.into(),
            sluice_exe: sluice_exe.into(),
            capacity: default_capacity(),
            stop_grace: Duration::from_secs(3),
            heartbeat_interval_ms: 500,
            keep_retired_per_job: 10,
            log_max_bytes: 16 << 20,
            threads_per_process: None,
        }
    }
}

/// This machine's default capacity: 4 worker threads per available core (at least 8),
/// the total memory from `/proc/meminfo` (16 GiB when unknown), no GPUs.
pub fn default_capacity() -> Capacity {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    Capacity {
        workers: (4 * cores).max(8),
        memory_mb: total_memory_mb().unwrap_or(16_384),
        gpus: 0,
    }
}

/// `MemTotal` from `/proc/meminfo`, in MiB.
fn total_memory_mb() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}

/// `launch.json`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct LaunchRecord {
    pid: u32,
    launched_at_ms: i64,
}

/// The parts of `request.json` the driver reads (the plan is skipped).
#[derive(Debug, Deserialize)]
struct RequestHead {
    instance_id: String,
    job_id: String,
    job_name: String,
    job_version: u64,
    memory_mb: u64,
    #[serde(default)]
    gpus: u32,
    worker: WorkerHead,
    #[serde(default)]
    owner: Option<InstanceOwner>,
}

#[derive(Debug, Deserialize)]
struct WorkerHead {
    workers: usize,
    #[serde(default)]
    peers: Vec<String>,
}

impl WorkerHead {
    fn processes(&self) -> usize {
        self.peers.len().max(1)
    }
}

/// The directory of process `p` (≥ 1) of a multi-process instance, inside the
/// instance's: `p<N>/`, with its own request, launch record, status and log. Process 0
/// uses the instance directory itself.
fn peer_key(instance_id: &str, process: usize) -> String {
    format!("{instance_id}/p{process}")
}

/// What one process of an instance shows.
struct ProcessView {
    key: String,
    pid: Option<u32>,
    alive: bool,
    status: Option<InstanceStatus>,
}

/// How an ended process ended: state, message, user error, superseded.
pub(super) type Outcome = (InstanceState, Option<String>, bool, bool);

/// The message a process writes when another process of its run failed: it says
/// nothing of the cause, so another process's message is preferred.
const ECHO: &str = "another process of this run failed";

/// How an ended process ended, from its final status (or the lack of one).
fn ended_outcome(
    status: Option<&InstanceStatus>,
    stop_requested: bool,
    dir: &Path,
    pid: Option<u32>,
) -> Outcome {
    match status.map(|s| &s.run) {
        Some(InstanceRunState::Finished) => (InstanceState::Finished, None, false, false),
        Some(InstanceRunState::Failed {
            user_error,
            message,
            superseded,
        }) => (
            InstanceState::Failed,
            Some(message.clone()),
            *user_error,
            *superseded,
        ),
        _ if stop_requested => (InstanceState::Stopped, None, false, false),
        _ => {
            let message = match std::fs::read_to_string(dir.join(EXIT_STATUS)) {
                Ok(how) if !how.trim().is_empty() => {
                    format!("{CRASH_MESSAGE}: {}", how.trim())
                }
                _ if pid.is_none() => {
                    "the process was never started (its launch did not complete)".to_string()
                }
                _ => CRASH_MESSAGE.to_string(),
            };
            (InstanceState::Crashed, Some(message), false, false)
        }
    }
}

/// Adds `more`'s counters to `into` (the processes of one instance).
fn add_progress(into: &mut ProgressSnapshot, more: &ProgressSnapshot) {
    into.rows_read += more.rows_read;
    into.rows_in += more.rows_in;
    into.rows_out += more.rows_out;
    into.late_rows += more.late_rows;
    into.bad_records += more.bad_records;
    into.dead_lettered += more.dead_lettered;
    into.rows_cpu += more.rows_cpu;
    into.rows_gpu += more.rows_gpu;
    into.gpu_fallbacks += more.gpu_fallbacks;
    for (k, v) in &more.operators {
        *into.operators.entry(k.clone()).or_default() += v;
    }
}

/// Addresses for `processes` processes on loopback: ports the OS hands out now,
/// released just before the processes bind them (a port taken in between fails the
/// launch's instance, which the watchdog restarts on new ports).
fn loopback_peers(processes: usize) -> std::io::Result<Vec<String>> {
    let listeners = (0..processes)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.to_string()))
        .collect()
}

/// The instance's outcome from its processes' (process 0 first): a failure that says
/// why before a crash, a crash before a failure that only echoes another's, then a
/// stop; finished only when every process finished.
pub(super) fn combine_outcomes(outcomes: Vec<Outcome>) -> Outcome {
    let rank = |o: &Outcome| match o.0 {
        InstanceState::Failed if !o.1.as_deref().is_some_and(|m| m.contains(ECHO)) => 0,
        InstanceState::Crashed => 1,
        InstanceState::Failed => 2,
        InstanceState::Stopped => 3,
        _ => 4,
    };
    outcomes.into_iter().min_by_key(|o| rank(o)).unwrap_or((
        InstanceState::Crashed,
        Some(CRASH_MESSAGE.to_string()),
        false,
        false,
    ))
}

/// Runs instances as processes on this machine.
#[derive(Debug)]
pub struct LocalCluster {
    config: LocalClusterConfig,
    /// The processes this master started and has not reaped yet, by instance id.
    children: Mutex<BTreeMap<String, Child>>,
}

fn io(context: impl std::fmt::Display, e: impl std::fmt::Display) -> ClusterError {
    ClusterError::Io(format!("{context}: {e}"))
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let body = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    sluice_compiler::instance::plan_from_json(&body)
        .map_err(|e| format!("cannot decode {}: {e}", path.display()))
}

/// Writes `path` atomically (a temporary file beside it, then a rename).
fn write_atomic(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, body)?;
    std::fs::rename(&tmp, path)
}

/// Writes a `failed` status into an instance directory on behalf of a process that
/// could not become a worker (`sluice worker` when `sluice-worker` cannot be started),
/// so the master reports why instead of a bare crash. Best effort.
pub fn write_failed_status(instance_dir: &Path, message: &str) {
    let now = now_ms();
    let status = InstanceStatus {
        pid: std::process::id(),
        instance_id: instance_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        run: InstanceRunState::Failed {
            user_error: false,
            message: message.to_string(),
            superseded: false,
        },
        started_at_ms: now,
        heartbeat_at_ms: now,
        progress_at_ms: now,
        input_waiting: false,
        stepped_at_ms: None,
        progress: ProgressSnapshot::default(),
    };
    if let Ok(body) = serde_json::to_vec(&status) {
        let _ = write_atomic(&instance_dir.join(STATUS), &body);
    }
}

/// Rotates `dir/worker.log` when it is larger than `max` bytes: its last `max` bytes
/// replace `worker.log.1`, then it is emptied in place (the worker holds it open for
/// appending, so it writes on from the start). Returns whether it rotated.
fn rotate_log(dir: &Path, max: u64) -> std::io::Result<bool> {
    let path = dir.join(LOG);
    let len = match std::fs::metadata(&path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= max {
        return Ok(false);
    }
    let mut file = std::fs::File::open(&path)?;
    file.seek(SeekFrom::Start(len - max))?;
    let mut tail = Vec::new();
    // To the end as it is now (it may have grown since `len`), then empty it at once:
    // what the worker writes between the two is lost.
    file.read_to_end(&mut tail)?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)?
        .set_len(0)?;
    let keep = usize::try_from(max).unwrap_or(usize::MAX);
    let from = tail.len().saturating_sub(keep);
    write_atomic(&dir.join(LOG_ROTATED), &tail[from..])?;
    Ok(true)
}

/// How a reaped process ended, in words.
fn describe_exit(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with code {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(s) => format!("killed by signal {}", s.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        },
        (None, None) => status.to_string(),
    }
}

/// The pid as a signal target: never 0 or negative (those address process groups).
fn target(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|&p| p > 0)
        .map(Pid::from_raw)
}

/// True when `pid` is a live, non-zombie process whose command line has `dir` as an
/// argument (so a reused pid is not mistaken for the instance).
fn process_alive(pid: u32, dir: &Path) -> bool {
    if target(pid).is_none() {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) S …`: the state follows the last ')' (comm may contain anything).
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next());
    if matches!(state, None | Some('Z' | 'X' | 'x')) {
        return false;
    }
    // The command line reads empty for an instant while the process execs (`sluice
    // worker` becoming `sluice-worker`) and while it exits: look again before deciding.
    let dir = dir.as_os_str().as_bytes();
    for attempt in 0..4 {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        if !cmdline.is_empty() {
            return cmdline.split(|&b| b == 0).any(|arg| arg == dir);
        }
        if attempt < 3 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    false
}

/// The last `tail_bytes` of `path` (nothing when it does not exist), and the offset
/// they start at.
fn read_tail(path: &Path, tail_bytes: u64) -> Result<(Vec<u8>, u64), ClusterError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => return Err(io(format!("cannot open {}", path.display()), e)),
    };
    let len = file
        .metadata()
        .map_err(|e| io(format!("cannot read {}", path.display()), e))?
        .len();
    let start = len.saturating_sub(tail_bytes);
    file.seek(SeekFrom::Start(start))
        .map_err(|e| io(format!("cannot read {}", path.display()), e))?;
    let mut bytes = Vec::new();
    file.take(tail_bytes)
        .read_to_end(&mut bytes)
        .map_err(|e| io(format!("cannot read {}", path.display()), e))?;
    Ok((bytes, start))
}

/// Instance ids are directory names: no separators, no leading dot.
fn valid_id(id: &str) -> bool {
    !id.is_empty() && !id.starts_with('.') && !id.contains(['/', '\0'])
}

impl LocalCluster {
    /// A driver over `config.instances_dir` (created if missing). Instances already
    /// there, live or ended, are observed (adopted) from the first `observe`.
    pub fn new(mut config: LocalClusterConfig) -> Result<Self, ClusterError> {
        let dir = &config.instances_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| io(format!("cannot create {}", dir.display()), e))?;
        // One spelling of every instance path, whatever the caller's: liveness checks
        // compare it with the processes' command lines.
        config.instances_dir = dir
            .canonicalize()
            .map_err(|e| io(format!("cannot resolve {}", dir.display()), e))?;
        Ok(LocalCluster {
            config,
            children: Mutex::new(BTreeMap::new()),
        })
    }

    /// The settings (with `instances_dir` made absolute).
    pub fn config(&self) -> &LocalClusterConfig {
        &self.config
    }

    /// The directory of an instance (whether or not it exists).
    pub fn instance_dir(&self, instance_id: &str) -> PathBuf {
        self.config.instances_dir.join(instance_id)
    }

    fn children(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Child>> {
        self.children.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// For a process this master started and has not reaped: whether it is still
    /// running (reaping it, and recording how it ended, if not). `None` for others.
    fn own_child_alive(&self, instance_id: &str) -> Option<bool> {
        let mut children = self.children();
        let child = children.get_mut(instance_id)?;
        match child.try_wait() {
            // Ours and not reaped: its pid cannot have been reused.
            Ok(None) => Some(true),
            Ok(Some(status)) => {
                children.remove(instance_id);
                let dir = self.instance_dir(instance_id);
                let _ = std::fs::write(dir.join(EXIT_STATUS), describe_exit(status));
                Some(false)
            }
            Err(e) => {
                tracing::warn!("local cluster: cannot wait for instance {instance_id}: {e}");
                children.remove(instance_id);
                None
            }
        }
    }

    /// Reaps every ended process this master started.
    fn reap_all(&self) {
        let ids: Vec<String> = self.children().keys().cloned().collect();
        for id in ids {
            self.own_child_alive(&id);
        }
    }

    /// Whether the instance's process (`pid`) is alive: this master's own children by
    /// waiting on them, others through `/proc` (see [`process_alive`]).
    fn is_alive(&self, instance_id: &str, pid: u32) -> bool {
        match self.own_child_alive(instance_id) {
            Some(alive) => alive,
            None => process_alive(pid, &self.instance_dir(instance_id)),
        }
    }

    /// The pid of an existing instance (`None` while its launch is in progress);
    /// `NotFound` when there is no such instance.
    fn locate(&self, instance_id: &str) -> Result<Option<u32>, ClusterError> {
        let dir = self.instance_dir(instance_id);
        if !valid_id(instance_id) || !dir.join(REQUEST).is_file() {
            return Err(ClusterError::NotFound(instance_id.to_string()));
        }
        Ok(self.pid_of(&dir))
    }

    fn pid_of(&self, dir: &Path) -> Option<u32> {
        read_json::<LaunchRecord>(&dir.join(LAUNCH))
            .map(|l| l.pid)
            .or_else(|_| read_json::<InstanceStatus>(&dir.join(STATUS)).map(|s| s.pid))
            .ok()
    }

    /// Waits until the process is gone; false if it is still there after `limit`.
    fn wait_gone(&self, instance_id: &str, pid: u32, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if !self.is_alive(instance_id, pid) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Sends `signal` to the instance's process if it is still the instance's.
    fn signal(&self, instance_id: &str, pid: u32, signal: Signal) -> Result<(), ClusterError> {
        let Some(target) = target(pid) else {
            return Ok(());
        };
        if !self.is_alive(instance_id, pid) {
            return Ok(());
        }
        match kill(target, signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(io(
                format!(
                    "cannot send {} to instance {instance_id} (pid {pid})",
                    signal.as_str()
                ),
                e,
            )),
        }
    }

    /// SIGKILL, then waits until the process is gone.
    fn kill_and_wait(&self, instance_id: &str, pid: u32) -> Result<(), ClusterError> {
        self.signal(instance_id, pid, Signal::SIGKILL)?;
        if self.wait_gone(instance_id, pid, KILL_WAIT) {
            Ok(())
        } else {
            Err(ClusterError::Io(format!(
                "instance {instance_id} (pid {pid}) is still there {}s after SIGKILL",
                KILL_WAIT.as_secs()
            )))
        }
    }

    /// SIGKILL for a live instance whose stop was requested more than `stop_grace`
    /// ago: its `stop` did not end it (interrupted by a master restart, or it ignores
    /// SIGTERM). The next observation sees it stopped.
    fn escalate_stop(&self, instance_id: &str, dir: &Path, pid: u32) {
        let marker = dir.join(STOP_REQUESTED);
        let requested_at = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .or_else(|| {
                let modified = std::fs::metadata(&marker).and_then(|m| m.modified()).ok()?;
                let since = modified.duration_since(SystemTime::UNIX_EPOCH).ok()?;
                i64::try_from(since.as_millis()).ok()
            });
        let grace = i64::try_from(self.config.stop_grace.as_millis()).unwrap_or(i64::MAX);
        let overdue = requested_at.is_some_and(|at| now_ms().saturating_sub(at) > grace);
        if !overdue {
            return;
        }
        tracing::warn!(
            "local cluster: instance {instance_id} (pid {pid}) is still alive {} s after its stop was requested: SIGKILL",
            self.config.stop_grace.as_secs_f64()
        );
        if let Err(e) = self.signal(instance_id, pid, Signal::SIGKILL) {
            tracing::warn!("local cluster: {e}");
        }
    }

    /// How many processes the run of `instance_id` has in all (on any host), from its
    /// request.
    pub fn run_processes(&self, instance_id: &str) -> Option<usize> {
        let dir = self.instance_dir(instance_id);
        read_json::<RequestHead>(&dir.join(REQUEST))
            .ok()
            .map(|r| r.worker.processes())
    }

    /// Process `process` (≥ 1) of a multi-process instance.
    fn observe_peer(&self, instance_id: &str, process: usize) -> ProcessView {
        let key = peer_key(instance_id, process);
        let dir = self.instance_dir(&key);
        let pid = self.pid_of(&dir);
        let alive = match pid {
            Some(pid) => self.is_alive(&key, pid),
            // Its launch is in progress (process 0 is started first).
            None => std::fs::metadata(dir.join(REQUEST))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age < LAUNCH_WINDOW),
        };
        // After the liveness check, as for process 0.
        let status = read_json::<InstanceStatus>(&dir.join(STATUS)).ok();
        ProcessView {
            key,
            pid,
            alive,
            status,
        }
    }

    /// Every process of an instance this cluster runs (its key and pid): process 0's first.
    fn processes_of(&self, instance_id: &str) -> Result<Vec<(String, Option<u32>)>, ClusterError> {
        let first = self.locate(instance_id)?;
        let dir = self.instance_dir(instance_id);
        let processes = read_json::<RequestHead>(&dir.join(REQUEST))
            .map(|r| r.worker.processes())
            .unwrap_or(1);
        let mut all = vec![(instance_id.to_string(), first)];
        for p in 1..processes {
            let key = peer_key(instance_id, p);
            let dir = self.instance_dir(&key);
            // Only the processes this cluster runs: an agent's process of a run over
            // several hosts has its peers elsewhere.
            if dir.exists() {
                let pid = self.pid_of(&dir);
                all.push((key, pid));
            }
        }
        Ok(all)
    }

    /// Observes one instance directory; `None` (with a warning) when its request is
    /// unreadable.
    fn observe_one(&self, instance_id: &str, dir: &Path) -> Option<ObservedInstance> {
        let request = match read_json::<RequestHead>(&dir.join(REQUEST)) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(
                    "local cluster: skipping instance directory {}: {e}",
                    dir.display()
                );
                return None;
            }
        };
        if request.instance_id != instance_id {
            tracing::warn!(
                "local cluster: note: {} holds instance {} (observed under its directory name)",
                dir.display(),
                request.instance_id
            );
        }
        let launch = read_json::<LaunchRecord>(&dir.join(LAUNCH)).ok();
        let created_at_ms = std::fs::metadata(dir.join(REQUEST))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        let pid = launch.map(|l| l.pid).or_else(|| {
            read_json::<InstanceStatus>(&dir.join(STATUS))
                .ok()
                .map(|s| s.pid)
        });
        let alive = match pid {
            Some(pid) => self.is_alive(instance_id, pid),
            // Launch in progress (or a master that died while launching).
            None => now_ms().saturating_sub(created_at_ms) < LAUNCH_WINDOW.as_millis() as i64,
        };
        // Read after the liveness check: a process seen dead wrote its final status
        // before it ended, so a `running` status here really means it died.
        let status = read_json::<InstanceStatus>(&dir.join(STATUS)).ok();
        let stop_requested = dir.join(STOP_REQUESTED).exists();
        if let (true, true, Some(pid)) = (alive, stop_requested, pid) {
            self.escalate_stop(instance_id, dir, pid);
        }
        if let Err(e) = rotate_log(dir, self.config.log_max_bytes) {
            tracing::warn!(
                "local cluster: cannot rotate {}: {e}",
                dir.join(LOG).display()
            );
        }
        let retired = dir.join(RETIRED).exists();

        // The other processes of a multi-process instance: any one that ended ends
        // the instance (the others are killed), and it is running only while all run.
        // (Only those this driver started here: a process an agent runs for a `hosts`
        // cluster names its peers too, but they run on other hosts.)
        let mut peers: Vec<ProcessView> = (1..request.worker.processes())
            .filter(|p| dir.join(format!("p{p}")).is_dir())
            .map(|p| self.observe_peer(instance_id, p))
            .collect();
        if stop_requested {
            for peer in peers.iter().filter(|p| p.alive) {
                if let Some(pid) = peer.pid {
                    self.escalate_stop(&peer.key, dir, pid);
                }
            }
        }
        let mut alive = alive;
        let any_alive = alive || peers.iter().any(|p| p.alive);
        let all_alive = alive && peers.iter().all(|p| p.alive);
        if any_alive && !all_alive {
            let mut all = vec![(instance_id.to_string(), pid, alive)];
            all.extend(peers.iter().map(|p| (p.key.clone(), p.pid, p.alive)));
            for (key, pid, live) in all {
                if let (true, Some(pid)) = (live, pid) {
                    tracing::warn!(
                        "local cluster: instance {instance_id}: another of its processes ended: killing {key} (pid {pid})"
                    );
                    if let Err(e) = self.kill_and_wait(&key, pid) {
                        tracing::warn!("local cluster: {e}");
                    }
                }
            }
            alive = false;
            for peer in &mut peers {
                peer.alive = false;
            }
        }

        let (state, message, user_error, superseded) = if alive {
            let state = if status.is_some() && peers.iter().all(|p| p.status.is_some()) {
                InstanceState::Running
            } else {
                InstanceState::Starting
            };
            (state, None, false, false)
        } else {
            let mut outcomes = vec![ended_outcome(status.as_ref(), stop_requested, dir, pid)];
            for peer in &peers {
                let peer_dir = self.instance_dir(&peer.key);
                outcomes.push(ended_outcome(
                    peer.status.as_ref(),
                    stop_requested,
                    &peer_dir,
                    peer.pid,
                ));
            }
            combine_outcomes(outcomes)
        };

        let ended_at_ms = if alive {
            None
        } else {
            let marker = dir.join(ENDED_AT);
            match std::fs::read_to_string(&marker)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
            {
                Some(at) => Some(at),
                None => {
                    let at = match status.as_ref() {
                        Some(s) if s.run != InstanceRunState::Running => s.heartbeat_at_ms,
                        _ => now_ms(),
                    };
                    if let Err(e) = write_atomic(&marker, at.to_string().as_bytes()) {
                        tracing::warn!("local cluster: cannot write {}: {e}", marker.display());
                    }
                    Some(at)
                }
            }
        };

        let mut progress = status
            .as_ref()
            .map(|s| s.progress.clone())
            .unwrap_or_default();
        let mut heartbeat_at_ms = status.as_ref().map(|s| s.heartbeat_at_ms);
        let mut progress_at_ms = status.as_ref().map(|s| s.progress_at_ms);
        let mut input_waiting = alive && status.as_ref().is_some_and(|s| s.input_waiting);
        let mut stepped_at_ms = status.as_ref().and_then(|s| s.stepped_at_ms);
        let mut pids: Vec<u32> = pid.into_iter().collect();
        for peer in &peers {
            pids.extend(peer.pid);
            let Some(s) = &peer.status else {
                heartbeat_at_ms = None;
                stepped_at_ms = None;
                input_waiting = false;
                continue;
            };
            heartbeat_at_ms = heartbeat_at_ms.map(|h| h.min(s.heartbeat_at_ms));
            progress_at_ms = progress_at_ms.map(|p| p.max(s.progress_at_ms));
            input_waiting &= s.input_waiting;
            stepped_at_ms = stepped_at_ms.zip(s.stepped_at_ms).map(|(a, b)| a.min(b));
            add_progress(&mut progress, &s.progress);
        }
        let owner = request
            .owner
            .unwrap_or_else(|| legacy_owner(&request.job_id, request.job_version, instance_id));
        Some(ObservedInstance {
            instance_id: instance_id.to_string(),
            owner,
            job_id: request.job_id,
            job_name: request.job_name,
            job_version: request.job_version,
            cluster: self.config.name.clone(),
            parallelism: u32::try_from(request.worker.workers * request.worker.processes())
                .unwrap_or(u32::MAX),
            memory_mb: request
                .memory_mb
                .saturating_mul(request.worker.processes() as u64),
            gpus: request.gpus,
            state,
            message,
            user_error,
            superseded,
            stop_requested,
            retired,
            pids,
            started_at_ms: launch
                .map(|l| l.launched_at_ms)
                .or(status.as_ref().map(|s| s.started_at_ms))
                .unwrap_or(created_at_ms),
            ended_at_ms,
            heartbeat_at_ms,
            progress_at_ms,
            input_waiting,
            stepped_at_ms,
            rows_read: progress.rows_read,
            rows_in: progress.rows_in,
            rows_out: progress.rows_out,
            bad_records: progress.bad_records,
            late_rows: progress.late_rows,
            operators: progress.operators,
        })
    }

    /// Instance directories (valid ids only), sorted by id.
    fn instance_dirs(&self) -> Result<Vec<(String, PathBuf)>, ClusterError> {
        let root = &self.config.instances_dir;
        let entries = std::fs::read_dir(root)
            .map_err(|e| io(format!("cannot list {}", root.display()), e))?;
        let mut dirs = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io(format!("cannot list {}", root.display()), e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if valid_id(&name) && entry.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push((name, entry.path()));
            }
        }
        dirs.sort();
        Ok(dirs)
    }

    /// Deletes the oldest retired, ended instance directories of `job_id` beyond
    /// `keep_retired_per_job`.
    fn collect_garbage(&self, job_id: &str) -> Result<(), ClusterError> {
        let mut retired: Vec<ObservedInstance> = self
            .observe()?
            .into_iter()
            .filter(|i| i.job_id == job_id && i.retired && !i.state.is_live())
            .collect();
        // Newest first.
        retired
            .sort_by(|a, b| (b.ended_at_ms, &b.instance_id).cmp(&(a.ended_at_ms, &a.instance_id)));
        for old in retired.iter().skip(self.config.keep_retired_per_job) {
            let dir = self.instance_dir(&old.instance_id);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!("local cluster: cannot delete {}: {e}", dir.display());
            }
        }
        Ok(())
    }
}

impl Cluster for LocalCluster {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn kind(&self) -> &'static str {
        "local"
    }

    fn capacity(&self) -> Capacity {
        self.config.capacity
    }

    fn threads_per_process(&self) -> u64 {
        let all = self.config.capacity.workers;
        self.config.threads_per_process.map_or(all, |t| t.min(all))
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<(), ClusterError> {
        let id = &spec.instance_id;
        if !valid_id(id) {
            return Err(ClusterError::Io(format!(
                "invalid instance id '{id}': it must be a non-empty directory name not starting with '.'"
            )));
        }
        let dir = self.instance_dir(id);
        if dir.exists() {
            return Err(ClusterError::Io(format!("instance {id} already exists")));
        }
        let processes = spec.resources.processes.max(1) as usize;
        let mut worker = spec.worker.clone();
        if processes > 1 {
            worker.workers = (spec.resources.parallelism as usize / processes).max(1);
            worker.peers = loopback_peers(processes)
                .map_err(|e| io(format!("cannot find ports for instance {id}"), e))?;
        }
        let request = InstanceRequest {
            instance_id: id.clone(),
            job_id: spec.job_id.clone(),
            job_name: spec.job_name.clone(),
            job_version: spec.job_version,
            memory_mb: spec.resources.memory_mb,
            gpus: spec.resources.gpus,
            heartbeat_interval_ms: self.config.heartbeat_interval_ms,
            worker,
            owner: Some(spec.owner.clone()),
        };
        // Prepared under a hidden name, then renamed: a scan never sees a half-made dir.
        let tmp = self.config.instances_dir.join(format!(".{id}.tmp"));
        let _ = std::fs::remove_dir_all(&tmp);
        let prepared = (|| -> Result<(), ClusterError> {
            std::fs::create_dir(&tmp)
                .map_err(|e| io(format!("cannot create {}", tmp.display()), e))?;
            for process in 0..processes {
                let mut request = request.clone();
                if processes > 1 {
                    request.worker.process = process;
                }
                // (One process here: the request says which of its run's processes it is
                // — an agent runs one process of an instance spread over hosts.)
                let body = sluice_compiler::instance::plan_to_json(&request)
                    .map_err(|e| io(format!("cannot encode the request of instance {id}"), e))?;
                let at = if process == 0 {
                    tmp.clone()
                } else {
                    let sub = tmp.join(format!("p{process}"));
                    std::fs::create_dir(&sub)
                        .map_err(|e| io(format!("cannot create {}", sub.display()), e))?;
                    sub
                };
                std::fs::write(at.join(REQUEST), &body)
                    .map_err(|e| io(format!("cannot prepare {}", dir.display()), e))?;
            }
            std::fs::rename(&tmp, &dir)
                .map_err(|e| io(format!("cannot prepare {}", dir.display()), e))
        })();
        if let Err(e) = prepared {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        for process in 0..processes {
            let key = if process == 0 {
                id.clone()
            } else {
                peer_key(id, process)
            };
            let at = self.instance_dir(&key);
            let spawned = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(at.join(LOG))
                .and_then(|log| Ok((log.try_clone()?, log)))
                .and_then(|(out, err)| {
                    Command::new(&self.config.sluice_exe)
                        .arg("worker")
                        .arg("--instance-dir")
                        .arg(&at)
                        .stdin(Stdio::null())
                        .stdout(out)
                        .stderr(err)
                        .process_group(0)
                        .spawn()
                });
            let child = match spawned {
                Ok(child) => child,
                Err(e) => {
                    // The processes already started cannot run without this one.
                    if let Ok(started) = self.processes_of(id) {
                        for (key, pid) in started {
                            if let Some(pid) = pid {
                                let _ = self.kill_and_wait(&key, pid);
                            }
                        }
                    }
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(io(
                        format!(
                            "cannot start instance {id} ({} worker)",
                            self.config.sluice_exe.display()
                        ),
                        e,
                    ));
                }
            };
            let record = LaunchRecord {
                pid: child.id(),
                launched_at_ms: now_ms(),
            };
            self.children().insert(key.clone(), child);
            let written = serde_json::to_vec(&record)
                .map_err(std::io::Error::other)
                .and_then(|body| write_atomic(&at.join(LAUNCH), &body));
            if let Err(e) = written {
                // The process runs; its status.json will name its pid.
                tracing::warn!(
                    "local cluster: cannot write {}: {e}",
                    at.join(LAUNCH).display()
                );
            }
        }
        Ok(())
    }

    fn stop(&self, instance_id: &str) -> Result<(), ClusterError> {
        let processes = self.processes_of(instance_id)?;
        let marker = self.instance_dir(instance_id).join(STOP_REQUESTED);
        std::fs::write(&marker, now_ms().to_string())
            .map_err(|e| io(format!("cannot write {}", marker.display()), e))?;
        for (key, pid) in &processes {
            if let Some(pid) = pid {
                self.signal(key, *pid, Signal::SIGTERM)?;
            }
        }
        for (key, pid) in &processes {
            let Some(pid) = *pid else { continue };
            if !self.wait_gone(key, pid, self.config.stop_grace) {
                self.kill_and_wait(key, pid)?;
            }
        }
        Ok(())
    }

    fn kill(&self, instance_id: &str) -> Result<(), ClusterError> {
        for (key, pid) in self.processes_of(instance_id)? {
            if let Some(pid) = pid {
                self.kill_and_wait(&key, pid)?;
            }
        }
        Ok(())
    }

    fn observe(&self) -> Result<Vec<ObservedInstance>, ClusterError> {
        self.reap_all();
        Ok(self
            .instance_dirs()?
            .into_iter()
            .filter_map(|(id, dir)| self.observe_one(&id, &dir))
            .collect())
    }

    fn retire(&self, instance_id: &str) -> Result<(), ClusterError> {
        self.locate(instance_id)?;
        let dir = self.instance_dir(instance_id);
        let request = read_json::<RequestHead>(&dir.join(REQUEST)).map_err(ClusterError::Io)?;
        let marker = dir.join(RETIRED);
        std::fs::write(&marker, now_ms().to_string())
            .map_err(|e| io(format!("cannot write {}", marker.display()), e))?;
        self.collect_garbage(&request.job_id)
    }

    fn forget(&self, instance_id: &str) -> Result<(), ClusterError> {
        self.locate(instance_id)?;
        let dir = self.instance_dir(instance_id);
        let live = self
            .observe_one(instance_id, &dir)
            .is_none_or(|i| i.state.is_live());
        if live {
            return Err(ClusterError::Io(format!(
                "instance {instance_id} is still running: stop it before forgetting it"
            )));
        }
        // Out of the scan first (a hidden name), so nobody observes it half-deleted.
        let doomed = self
            .config
            .instances_dir
            .join(format!(".{instance_id}.forgotten"));
        std::fs::rename(&dir, &doomed)
            .map_err(|e| io(format!("cannot forget {}", dir.display()), e))?;
        std::fs::remove_dir_all(&doomed)
            .map_err(|e| io(format!("cannot delete {}", doomed.display()), e))
    }

    fn logs(&self, instance_id: &str, tail_bytes: u64) -> Result<String, ClusterError> {
        let processes = self.processes_of(instance_id)?;
        if processes.len() > 1 {
            // Each process's tail, headed by its name, sharing the budget.
            let share = (tail_bytes / processes.len() as u64).max(1);
            let mut text = String::new();
            for (key, _) in &processes {
                text.push_str(&format!("==> process {key} <==\n"));
                text.push_str(&self.log_tail(key, share)?);
                if !text.ends_with('\n') {
                    text.push('\n');
                }
            }
            return Ok(text);
        }
        self.log_tail(instance_id, tail_bytes)
    }
}

impl LocalCluster {
    /// The last `tail_bytes` of one process's log (`key`: an instance id, or
    /// `<instance>/p<N>`).
    fn log_tail(&self, instance_id: &str, tail_bytes: u64) -> Result<String, ClusterError> {
        let dir = self.instance_dir(instance_id);
        // The current log's tail, preceded by the rotated one's when that is not enough.
        let (mut bytes, mut start) = read_tail(&dir.join(LOG), tail_bytes)?;
        if start == 0 && (bytes.len() as u64) < tail_bytes {
            let more = tail_bytes - bytes.len() as u64;
            let (mut older, older_start) = read_tail(&dir.join(LOG_ROTATED), more)?;
            if !older.is_empty() {
                older.append(&mut bytes);
                bytes = older;
                start = older_start;
            }
        }
        // Do not start in the middle of a UTF-8 character.
        let skip = if start > 0 {
            bytes
                .iter()
                .take(3)
                .take_while(|&&b| b & 0xC0 == 0x80)
                .count()
        } else {
            0
        };
        Ok(String::from_utf8_lossy(&bytes[skip..]).into_owned())
    }
}
