//! `sluice agent`: runs on each host of a `hosts` cluster. It registers with the
//! master, then every heartbeat reports the worker processes it runs (as a
//! [`LocalCluster`] over its directory observes them) and carries out the orders in the
//! answer: launch, stop, kill, forget (`crate::cluster::hosts` is the master's side).
//!
//! ```text
//! master ◀──register / heartbeat (processes)── sluice agent ──LocalCluster──▶ sluice-worker processes (DIR/processes/<instance>@p<k>/)
//!        ───────────── orders ─────────────▶
//! ```
//!
//! **Lease.** Without an answer from the master for the lease it was given at
//! registration (half the master's agent timeout), the agent kills every process it
//! runs: the master is about to declare this host lost and start the instances
//! elsewhere, and two runs of a job must not both be writing. (A master that is merely
//! restarting loses the instances on this host the same way; the watchdog restarts
//! them from their checkpoints.) An agent whose id the master does not know (it
//! restarted) registers again; the master adopts the processes it reports.
//!
//! The agent's token is an admin token (`--token-file`), never logged.

use crate::cluster::hosts::{
    AgentHeartbeat, AgentOrders, AgentProcess, AgentRegistered, RegisterAgent,
};
use crate::cluster::{Cluster, LaunchSpec, LocalCluster, LocalClusterConfig};
use crate::model::Resources;
use clap::Args;
use sluice_compiler::instance::WorkerRequest;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Arguments of `sluice agent`.
#[derive(Args, Debug, Clone)]
pub struct AgentArgs {
    /// The master's URL (`http://master:8080`).
    #[arg(long)]
    pub master: String,
    /// Worker threads this host offers.
    #[arg(long, default_value_t = 4)]
    pub slots: u32,
    /// Labels, `KEY=VALUE` (repeatable or comma-separated): a `hosts` cluster is the
    /// agents with one of them.
    #[arg(long, value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Where the processes' directories live (`<this>/processes/`).
    #[arg(long, default_value = "./sluice-agent")]
    pub dir: PathBuf,
    /// The address other hosts reach this one at (default: the host name).
    #[arg(long)]
    pub advertise: Option<String>,
    /// The ports worker processes listen on, `FROM-TO`.
    #[arg(long, default_value = "7100-7999")]
    pub ports: String,
    /// Memory (MiB) this host offers its worker processes; the master places a process
    /// only where its `memory_mb` is free (default: the host's total memory; `0`: not
    /// limited).
    #[arg(long)]
    pub memory_mb: Option<u64>,
    /// GPUs this host offers (a process asking for GPUs goes only where they are free).
    #[arg(long, default_value_t = 0)]
    pub gpus: u32,
    /// A file holding an API token of the master of role `agent` (or `admin`).
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// This host's name for people (default: the host name).
    #[arg(long)]
    pub name: Option<String>,
}

/// The agent's failures (before it runs; once running it retries).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A flag is wrong.
    #[error("{0}")]
    Usage(String),
    /// Its directory or executable.
    #[error("{0}")]
    Setup(String),
}

struct Master {
    base: String,
    http: ureq::Agent,
    token: Option<String>,
}

enum CallError {
    /// The master answered 404: register again.
    Unknown,
    /// Anything else (unreachable, 5xx…), in words.
    Other(String),
}

impl Master {
    fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, CallError> {
        let mut req = self.http.post(&format!("{}{path}", self.base));
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        match req.send_json(body) {
            Ok(r) => r
                .into_json::<T>()
                .map_err(|e| CallError::Other(format!("unreadable answer: {e}"))),
            Err(ureq::Error::Status(404, _)) => Err(CallError::Unknown),
            Err(ureq::Error::Status(code, r)) => Err(CallError::Other(format!(
                "{code}: {}",
                r.into_string().unwrap_or_default()
            ))),
            Err(e) => Err(CallError::Other(e.to_string())),
        }
    }
}

fn parse_ports(s: &str) -> Result<(u16, u16), AgentError> {
    let bad = || AgentError::Usage(format!("--ports '{s}': expected FROM-TO, e.g. 7100-7999"));
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b) = (
        a.trim().parse::<u16>().map_err(|_| bad())?,
        b.trim().parse::<u16>().map_err(|_| bad())?,
    );
    if a == 0 || b < a {
        return Err(bad());
    }
    Ok((a, b))
}

fn parse_labels(labels: &[String]) -> Result<BTreeMap<String, String>, AgentError> {
    labels
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| AgentError::Usage(format!("--labels '{l}': expected KEY=VALUE")))
        })
        .collect()
}

/// Splits a local id `<instance>@p<k>` into the instance id and `k`.
fn split_local_id(local: &str) -> Option<(&str, usize)> {
    let (instance, p) = local.rsplit_once("@p")?;
    Some((instance, p.parse().ok()?))
}

/// Runs the agent until the process is killed.
pub fn run(args: AgentArgs) -> Result<(), AgentError> {
    let ports = parse_ports(&args.ports)?;
    let labels = parse_labels(&args.labels)?;
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".to_string());
    let token = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| AgentError::Setup(format!("cannot read {}: {e}", path.display())))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let exe = std::env::current_exe()
        .map_err(|e| AgentError::Setup(format!("cannot locate the sluice executable: {e}")))?;
    std::fs::create_dir_all(&args.dir)
        .map_err(|e| AgentError::Setup(format!("cannot create {}: {e}", args.dir.display())))?;
    let mut config = LocalClusterConfig::new(args.dir.join("processes"), exe);
    config.name = "agent".to_string();
    let local = LocalCluster::new(config).map_err(|e| AgentError::Setup(e.to_string()))?;
    let master = Master {
        base: args.master.trim_end_matches('/').to_string(),
        http: ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(3))
            .build(),
        token,
    };
    let registration = RegisterAgent {
        name: args.name.clone().unwrap_or_else(|| host.clone()),
        slots: args.slots,
        labels,
        advertise: args.advertise.clone().unwrap_or(host),
        ports_from: ports.0,
        ports_to: ports.1,
        memory_mb: match args.memory_mb {
            Some(0) => None,
            Some(m) => Some(m),
            None => host_memory_mb(),
        },
        gpus: args.gpus,
    };
    let local = std::sync::Arc::new(local);
    // The lease is watched by a thread of its own: a heartbeat blocked on a dead link
    // must not delay the fence.
    let lease = std::sync::Arc::new(Lease {
        state: std::sync::Mutex::new((Instant::now(), Duration::from_secs(5), false)),
    });
    {
        let (lease, local) = (lease.clone(), local.clone());
        std::thread::Builder::new()
            .name("agent-lease".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(50));
                lease.fence_if_expired(&local);
            })
            .map_err(|e| AgentError::Setup(format!("cannot start the lease thread: {e}")))?;
    }
    loop {
        // Register (again, after the master forgot this agent).
        let registered: AgentRegistered = loop {
            match master.post("/api/v1/agents", &registration) {
                Ok(r) => break r,
                Err(CallError::Unknown) => {
                    tracing::warn!("agent: the master has no agents API (404); retrying")
                }
                Err(CallError::Other(e)) => tracing::warn!("agent: cannot register: {e}; retrying"),
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        tracing::info!(
            "agent: registered as {} with {} slots at {} (heartbeat every {} ms, lease {} ms)",
            registered.id,
            registration.slots,
            registration.advertise,
            registered.heartbeat_interval_ms,
            registered.lease_ms
        );
        let interval = Duration::from_millis(registered.heartbeat_interval_ms.max(50));
        lease.renew(Some(Duration::from_millis(registered.lease_ms.max(100))));
        // Log tails the master asked for, sent with the next heartbeat.
        let mut logs = BTreeMap::new();
        loop {
            let heartbeat = AgentHeartbeat {
                processes: observe(&local),
                logs: std::mem::take(&mut logs),
            };
            let path = format!("/api/v1/agents/{}/heartbeat", registered.id);
            match master.post::<AgentOrders>(&path, &heartbeat) {
                Ok(orders) => {
                    lease.renew(None);
                    logs = log_tails(&local, &orders.logs);
                    execute(&local, orders);
                    if !logs.is_empty() {
                        // Someone is waiting for them: no pause.
                        continue;
                    }
                }
                Err(CallError::Unknown) => {
                    tracing::warn!("agent: the master does not know this agent: registering again");
                    break;
                }
                Err(CallError::Other(e)) => {
                    tracing::warn!("agent: heartbeat failed: {e}");
                }
            }
            std::thread::sleep(interval);
        }
    }
}

/// The agent's lease: when the master last answered, for how long that counts, and
/// whether the processes were killed since.
struct Lease {
    state: std::sync::Mutex<(Instant, Duration, bool)>,
}

impl Lease {
    /// The master answered (and, at a registration, gave this lease).
    fn renew(&self, lease: Option<Duration>) {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if g.2 {
            tracing::info!("agent: the master answers again");
        }
        g.0 = Instant::now();
        g.2 = false;
        if let Some(l) = lease {
            g.1 = l;
        }
    }

    /// The lease ran out: kills every live process (once per outage).
    fn fence_if_expired(&self, local: &LocalCluster) {
        let since = {
            let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if g.2 || g.0.elapsed() < g.1 {
                return;
            }
            g.2 = true;
            g.0.elapsed()
        };
        let live: Vec<String> = local
            .observe()
            .unwrap_or_default()
            .into_iter()
            .filter(|i| i.state.is_live())
            .map(|i| i.instance_id)
            .collect();
        tracing::warn!(
            "agent: no answer from the master for {} ms (the lease): killing its {} processes here, it may start them elsewhere",
            since.as_millis(),
            live.len()
        );
        for id in live {
            if let Err(e) = local.kill(&id) {
                tracing::warn!("agent: cannot kill {id}: {e}");
            }
        }
    }
}

/// Most bytes of one process's log one heartbeat carries.
const MAX_LOG_TAIL: u64 = 1 << 20;

/// The log tails the master asked for (`local id → bytes`), by local id; a log that
/// cannot be read says why in its place.
fn log_tails(local: &LocalCluster, wanted: &BTreeMap<String, u64>) -> BTreeMap<String, String> {
    wanted
        .iter()
        .map(|(id, bytes)| {
            let text = local
                .logs(id, (*bytes).clamp(1, MAX_LOG_TAIL))
                .unwrap_or_else(|e| format!("(this agent cannot read the log: {e})\n"));
            (id.clone(), text)
        })
        .collect()
}

/// The processes this agent runs, as the master's heartbeat wants them.
fn observe(local: &LocalCluster) -> Vec<AgentProcess> {
    let observed = match local.observe() {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!("agent: cannot observe its processes: {e}");
            return Vec::new();
        }
    };
    observed
        .into_iter()
        .filter_map(|o| {
            let (instance, process) = split_local_id(&o.instance_id)?;
            Some(AgentProcess {
                instance_id: instance.to_string(),
                process,
                processes: local.run_processes(&o.instance_id).unwrap_or(1),
                observed: o,
            })
        })
        .collect()
}

/// Carries out the master's orders (stops and kills in the background: they wait for
/// the processes to end).
fn execute(local: &std::sync::Arc<LocalCluster>, orders: AgentOrders) {
    for order in orders.launch {
        let order = order.0;
        let worker: WorkerRequest = match serde_json::from_value(order.worker) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!("agent: cannot read the launch of {}: {e}", order.local_id);
                continue;
            }
        };
        let spec = LaunchSpec {
            instance_id: order.local_id.clone(),
            owner: order.owner,
            job_id: order.job_id,
            job_name: order.job_name,
            job_version: order.job_version,
            resources: Resources {
                parallelism: u32::try_from(worker.workers).unwrap_or(1),
                memory_mb: order.memory_mb,
                gpus: order.gpus,
                processes: 1,
            },
            worker,
        };
        match local.launch(&spec) {
            Ok(()) => tracing::info!("agent: started {}", order.local_id),
            Err(e) => tracing::warn!("agent: cannot start {}: {e}", order.local_id),
        }
    }
    for id in orders.kill {
        let local = local.clone();
        std::thread::spawn(move || {
            if let Err(e) = local.kill(&id) {
                tracing::warn!("agent: cannot kill {id}: {e}");
            }
        });
    }
    for id in orders.stop {
        let local = local.clone();
        std::thread::spawn(move || {
            if let Err(e) = local.stop(&id) {
                tracing::warn!("agent: cannot stop {id}: {e}");
            }
        });
    }
    for id in orders.forget {
        if let Err(e) = local.retire(&id).and_then(|()| local.forget(&id)) {
            tracing::warn!("agent: cannot forget {id}: {e}");
        }
    }
}

/// The host's total memory (MiB), from `/proc/meminfo`; none where that is unreadable.
fn host_memory_mb() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024).filter(|m| *m > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_say_why() {
        assert_eq!(parse_ports("7100-7199").unwrap(), (7100, 7199));
        assert!(parse_ports("7199-7100").is_err());
        assert!(parse_ports("x").is_err());
        let labels = parse_labels(&["pool=a".into(), "zone=b".into()]).unwrap();
        assert_eq!(labels["pool"], "a");
        assert!(parse_labels(&["pool".into()]).is_err());
        assert_eq!(split_local_id("job-v1-x@p3"), Some(("job-v1-x", 3)));
        assert_eq!(split_local_id("job-v1-x"), None);
        // This Linux host's memory, as the agent offers it by default.
        assert!(host_memory_mb().is_some_and(|m| m >= 64));
    }
}
