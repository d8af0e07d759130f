//! The `hosts` cluster driver: instances run as worker processes on other machines,
//! each started by a `sluice agent` there (`crate::agent`).
//!
//! ```text
//! sluice agent ──register / heartbeat (its processes, as its local cluster observes them)──▶ master
//! master ──the heartbeat's answer: orders (launch, stop, kill, forget)──▶ sluice agent ──▶ sluice-worker processes
//! ```
//!
//! An [`AgentRegistry`] holds what the agents said and what they were told; it is soft
//! state, like the `local` cluster's directory scan: a restarted master learns the
//! processes again from the agents' next heartbeats (each report names its instance,
//! process index and process count) and adopts them. A [`HostsCluster`] is the agents
//! with one label (`--hosts-cluster NAME:KEY=VALUE`).
//!
//! **Placement** spreads an instance's processes (`resources.processes`, each
//! `parallelism / processes` threads, `memory_mb` and `gpus`) over the agents with the
//! most free slots that also have the memory and GPUs free (an agent offers what its
//! `--memory-mb` and `--gpus` say); the processes find each other at `advertise:port`, a
//! port from each agent's range.
//!
//! **Failure.** An instance runs while all its processes run; when one ends, the others
//! are told to die, and the instance ends once none is left (a process on a host whose
//! agent has not been heard of for the registry's `timeout` counts as gone: "host
//! lost"). The watchdog then restarts it from its checkpoint on whatever capacity is
//! left. **Fencing.** An agent that cannot reach the master for its `lease` (half the
//! timeout) kills its processes itself, so a host cut off from the master stops its
//! processes before the master declares it lost and starts the instance elsewhere; a
//! process the master no longer knows, reported by an agent back from a partition, is
//! told to die; and the checkpoint store lets only one run of a job write each epoch
//! (a second one stops as superseded, committing nothing).

use super::local::{combine_outcomes, Outcome, CRASH_MESSAGE};
use super::{Cluster, ClusterError, LaunchSpec};
use crate::model::{now_ms, Capacity, InstanceOwner, InstanceState, ObservedInstance};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use utoipa::ToSchema;

/// How long a launched process may go unreported before it counts as never started.
const LAUNCH_WINDOW: Duration = Duration::from_secs(30);
/// How often `stop` and `kill` look whether the processes are gone.
const POLL: Duration = Duration::from_millis(100);

/// `POST /api/v1/agents`: an agent introduces itself.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    /// The host's name (for people; need not be unique).
    pub name: String,
    /// Worker threads it offers.
    #[schema(minimum = 1, maximum = 4096)]
    pub slots: u32,
    /// Its labels (a `hosts` cluster is the agents with one of them).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The address other hosts reach it at (an IP or DNS name).
    pub advertise: String,
    /// The ports its worker processes may listen on (inclusive).
    pub ports_from: u16,
    /// The last such port.
    pub ports_to: u16,
    /// Memory it offers its worker processes (MiB); absent: not limited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub memory_mb: Option<u64>,
    /// GPUs it offers.
    #[serde(default)]
    pub gpus: u32,
}

/// The answer to a registration.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentRegistered {
    /// The agent's id for its heartbeats.
    pub id: String,
    /// How often to send a heartbeat (ms).
    pub heartbeat_interval_ms: u64,
    /// Without an answer from the master for this long (ms), the agent kills its
    /// processes: the master may have started them elsewhere.
    pub lease_ms: u64,
}

/// One process an agent runs, as its local cluster observes it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentProcess {
    /// The master's instance id.
    pub instance_id: String,
    /// The process's index in its instance.
    pub process: usize,
    /// How many processes the instance has.
    pub processes: usize,
    /// The process as observed on its host (its `instance_id` is the local one).
    pub observed: ObservedInstance,
}

/// `POST /api/v1/agents/{id}/heartbeat`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentHeartbeat {
    /// Every process the agent knows, live or ended and not yet forgotten.
    #[serde(default)]
    pub processes: Vec<AgentProcess>,
    /// The log tails the previous answer asked for (`AgentOrders::logs`), by local id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub logs: BTreeMap<String, String>,
}

/// Start one process.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LaunchOrder {
    /// The local instance id to run it under (`<instance id>@p<process>`).
    pub local_id: String,
    /// Who the instance belongs to.
    #[schema(value_type = Object)]
    pub owner: InstanceOwner,
    /// The job's id.
    pub job_id: String,
    /// The job's name.
    pub job_name: String,
    /// The job version.
    pub job_version: u64,
    /// Memory cap of the process (MiB).
    pub memory_mb: u64,
    /// GPUs of the process.
    pub gpus: u32,
    /// The `WorkerRequest` (plan, threads, peers, this process's index), as JSON.
    #[schema(value_type = Object)]
    pub worker: serde_json::Value,
}

/// What an agent is to do now (the answer to a heartbeat).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentOrders {
    /// Processes to start.
    #[serde(default)]
    pub launch: Vec<LaunchOrderEq>,
    /// Local ids to stop (SIGTERM, then SIGKILL after the grace).
    #[serde(default)]
    pub stop: Vec<String>,
    /// Local ids to kill at once.
    #[serde(default)]
    pub kill: Vec<String>,
    /// Local ids to delete (ended, accounted for).
    #[serde(default)]
    pub forget: Vec<String>,
    /// Local ids whose log tails (at most this many bytes) the next heartbeat carries.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub logs: BTreeMap<String, u64>,
}

/// A [`LaunchOrder`] compared by its local id.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct LaunchOrderEq(pub LaunchOrder);

impl PartialEq for LaunchOrderEq {
    fn eq(&self, other: &Self) -> bool {
        self.0.local_id == other.0.local_id
    }
}

/// An agent as the master sees it (`GET /api/v1/agents`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentView {
    /// Its id.
    pub id: String,
    /// Its host's name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The address other hosts reach it at.
    pub advertise: String,
    /// Worker threads it offers.
    pub slots: u32,
    /// Worker threads its live processes use.
    pub used: u32,
    /// Memory it offers (MiB); absent: not limited.
    pub memory_mb: Option<u64>,
    /// Memory its live processes were placed with (MiB).
    pub memory_used_mb: u64,
    /// GPUs it offers.
    pub gpus: u32,
    /// GPUs its live processes were placed with.
    pub gpus_used: u32,
    /// Live processes.
    pub processes: usize,
    /// Heard of within the timeout.
    pub alive: bool,
    /// Since its last heartbeat (ms).
    pub last_seen_ms_ago: u64,
}

/// The local id of process `process` of `instance_id` on its agent.
pub fn local_id(instance_id: &str, process: usize) -> String {
    format!("{instance_id}@p{process}")
}

struct Agent {
    name: String,
    labels: BTreeMap<String, String>,
    slots: u32,
    memory_mb: Option<u64>,
    gpus: u32,
    advertise: String,
    ports: (u16, u16),
    last_seen: Instant,
    /// Its processes at its last heartbeat, by local id.
    reported: BTreeMap<String, AgentProcess>,
    orders: AgentOrders,
}

impl Agent {
    fn alive(&self, timeout: Duration) -> bool {
        self.last_seen.elapsed() <= timeout
    }
}

/// Where one process of an instance runs.
#[derive(Clone, Debug)]
struct Placement {
    agent: String,
    local_id: String,
    threads: u32,
    memory_mb: u64,
    gpus: u32,
    port: u16,
}

struct HostInstance {
    cluster: String,
    owner: InstanceOwner,
    job_id: String,
    job_name: String,
    job_version: u64,
    parallelism: u32,
    memory_mb: u64,
    gpus: u32,
    processes: Vec<Placement>,
    launched: Instant,
    launched_at_ms: i64,
    stop_requested: bool,
    retired: bool,
    /// Told to kill its remaining processes (one of them ended).
    killing: bool,
    ended_at_ms: Option<i64>,
    /// The last message of a lost host, per process (kept once the agent is gone).
    lost: BTreeMap<usize, String>,
}

#[derive(Default)]
struct Registry {
    agents: BTreeMap<String, Agent>,
    /// Log tails agents sent, by local id, with when they arrived.
    log_tails: BTreeMap<String, (Instant, String)>,
    instances: BTreeMap<String, HostInstance>,
    seq: u64,
    /// Each `hosts` cluster's name and label (an adopted process joins the first
    /// cluster whose label its agent has).
    clusters: Vec<(String, (String, String))>,
    /// Instances forgotten lately (oldest first): a live process of one of them,
    /// reported by an agent back from a partition, is killed, not adopted.
    forgotten: std::collections::VecDeque<String>,
}

/// How many forgotten instance ids the registry remembers.
const FORGOTTEN_KEPT: usize = 10_000;

/// The agents and the processes placed on them (shared by every `hosts` cluster).
pub struct AgentRegistry {
    inner: Mutex<Registry>,
    /// An agent not heard of for this long is lost.
    pub timeout: Duration,
    /// How often agents send heartbeats.
    pub heartbeat_interval: Duration,
    /// How long `stop` waits for the processes' SIGTERM before killing them.
    pub stop_grace: Duration,
}

impl AgentRegistry {
    /// A registry declaring agents lost after `timeout` without a heartbeat.
    pub fn new(timeout: Duration, heartbeat_interval: Duration, stop_grace: Duration) -> Self {
        AgentRegistry {
            inner: Mutex::new(Registry::default()),
            timeout,
            heartbeat_interval,
            stop_grace,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers an agent; returns its id.
    pub fn register(&self, r: RegisterAgent) -> Result<AgentRegistered, String> {
        if r.slots == 0 {
            return Err("slots must be at least 1".into());
        }
        if r.memory_mb == Some(0) {
            return Err("memory_mb must be at least 1 (or absent: not limited)".into());
        }
        if r.ports_from == 0 || r.ports_to < r.ports_from {
            return Err(format!(
                "the port range {}-{} is empty",
                r.ports_from, r.ports_to
            ));
        }
        if r.advertise.trim().is_empty() {
            return Err("advertise must name an address".into());
        }
        let mut g = self.lock();
        g.seq += 1;
        let id = format!("a{:04}-{:08x}", g.seq, rand::random::<u32>());
        tracing::info!(
            "hosts: agent {id} ({}, {}) registered with {} slots, labels {:?}",
            r.name,
            r.advertise,
            r.slots,
            r.labels
        );
        g.agents.insert(
            id.clone(),
            Agent {
                name: r.name,
                labels: r.labels,
                slots: r.slots,
                memory_mb: r.memory_mb,
                gpus: r.gpus,
                advertise: r.advertise,
                ports: (r.ports_from, r.ports_to),
                last_seen: Instant::now(),
                reported: BTreeMap::new(),
                orders: AgentOrders::default(),
            },
        );
        Ok(AgentRegistered {
            id,
            heartbeat_interval_ms: self.heartbeat_interval.as_millis() as u64,
            lease_ms: (self.timeout / 2).as_millis() as u64,
        })
    }

    /// An agent's heartbeat: records its processes, adopts those of instances this
    /// master does not know (started by an earlier one), tells it to kill those of
    /// instances that ended or were replaced, and hands it its orders. `None`: no such
    /// agent (it registers again).
    pub fn heartbeat(&self, id: &str, hb: AgentHeartbeat) -> Option<AgentOrders> {
        let mut g = self.lock();
        let g = &mut *g;
        let agent = g.agents.get_mut(id)?;
        agent.last_seen = Instant::now();
        for (local, tail) in hb.logs {
            g.log_tails.insert(local, (Instant::now(), tail));
        }
        // (Kept for a later request of a host that is lost meanwhile; not for ever.)
        g.log_tails
            .retain(|_, (at, _)| at.elapsed() < Duration::from_secs(600));
        agent.reported = hb
            .processes
            .into_iter()
            .map(|p| (p.observed.instance_id.clone(), p))
            .collect();
        let mut kill = Vec::new();
        for (local, p) in &agent.reported {
            let known = g.instances.get(&p.instance_id);
            match known {
                Some(inst) => {
                    let placed_here = inst
                        .processes
                        .iter()
                        .any(|pl| pl.agent == id && &pl.local_id == local);
                    // A process of a known instance placed elsewhere (it came back after
                    // a partition and was replaced), or of an instance that ended.
                    if p.observed.state.is_live() && (!placed_here || inst.ended_at_ms.is_some()) {
                        kill.push(local.clone());
                    }
                }
                None if p.observed.state.is_live() && g.forgotten.contains(&p.instance_id) => {
                    kill.push(local.clone());
                }
                None if p.observed.state.is_live() => {
                    // Adopted: this master starts with no memory of its instances.
                    let Some(cluster) = g
                        .clusters
                        .iter()
                        .find(|(_, (k, v))| agent.labels.get(k) == Some(v))
                        .map(|(name, _)| name.clone())
                    else {
                        kill.push(local.clone());
                        continue;
                    };
                    let entry =
                        g.instances
                            .entry(p.instance_id.clone())
                            .or_insert_with(|| HostInstance {
                                cluster,
                                owner: p.observed.owner.clone(),
                                job_id: p.observed.job_id.clone(),
                                job_name: p.observed.job_name.clone(),
                                job_version: p.observed.job_version,
                                parallelism: p.observed.parallelism,
                                // The local view already counts every process of the run.
                                memory_mb: p.observed.memory_mb,
                                gpus: p.observed.gpus,
                                processes: Vec::new(),
                                launched: Instant::now(),
                                launched_at_ms: p.observed.started_at_ms,
                                stop_requested: false,
                                retired: false,
                                killing: false,
                                ended_at_ms: None,
                                lost: BTreeMap::new(),
                            });
                    if !entry.processes.iter().any(|pl| &pl.local_id == local) {
                        entry.processes.push(Placement {
                            agent: id.to_string(),
                            local_id: local.clone(),
                            threads: p.observed.parallelism / p.processes.max(1) as u32,
                            // (The local view counts every process of the run.)
                            memory_mb: p.observed.memory_mb / p.processes.max(1) as u64,
                            gpus: p.observed.gpus,
                            port: 0,
                        });
                    }
                }
                None => {}
            }
        }
        for k in kill {
            if !agent.orders.kill.contains(&k) {
                tracing::warn!("hosts: agent {id} runs {k}, which is not the instance's now: kill");
                agent.orders.kill.push(k);
            }
        }
        Some(std::mem::take(&mut agent.orders))
    }

    /// Every agent.
    pub fn agents(&self) -> Vec<AgentView> {
        let g = self.lock();
        g.agents
            .iter()
            .map(|(id, a)| {
                let live: Vec<&AgentProcess> = a
                    .reported
                    .values()
                    .filter(|p| p.observed.state.is_live())
                    .collect();
                AgentView {
                    id: id.clone(),
                    name: a.name.clone(),
                    labels: a.labels.clone(),
                    advertise: a.advertise.clone(),
                    slots: a.slots,
                    used: used_slots(&g, id),
                    memory_mb: a.memory_mb,
                    memory_used_mb: placed_on(&g, id).memory_mb,
                    gpus: a.gpus,
                    gpus_used: placed_on(&g, id).gpus,
                    // A lost agent's last report is stale: its processes count as gone.
                    processes: if a.alive(self.timeout) { live.len() } else { 0 },
                    alive: a.alive(self.timeout),
                    last_seen_ms_ago: a.last_seen.elapsed().as_millis() as u64,
                }
            })
            .collect()
    }
}

/// Worker threads placed on agent `id` by instances that have not ended.
fn used_slots(g: &Registry, id: &str) -> u32 {
    placed_on(g, id).threads
}

/// What the processes of instances that have not ended were placed with on agent `id`.
fn placed_on(g: &Registry, id: &str) -> Need {
    g.instances
        .values()
        .filter(|i| i.ended_at_ms.is_none())
        .flat_map(|i| i.processes.iter())
        .filter(|p| p.agent == id)
        .fold(Need::default(), |n, p| Need {
            threads: n.threads + p.threads,
            memory_mb: n.memory_mb.saturating_add(p.memory_mb),
            gpus: n.gpus + p.gpus,
        })
}

/// What one process needs of its agent, or what an agent has free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Need {
    threads: u32,
    memory_mb: u64,
    gpus: u32,
}

/// What agent `a` (id `id`) has free now (memory not limited: `u64::MAX`).
fn free_on(g: &Registry, id: &str, a: &Agent) -> Need {
    let used = placed_on(g, id);
    Need {
        threads: a.slots.saturating_sub(used.threads),
        memory_mb: a
            .memory_mb
            .map_or(u64::MAX, |m| m.saturating_sub(used.memory_mb)),
        gpus: a.gpus.saturating_sub(used.gpus),
    }
}

/// Where one process needing `need` goes: of the agents with that much free, the one
/// with the most free slots (ties: the first id).
fn decide_agent(free: &BTreeMap<String, Need>, need: Need) -> Option<String> {
    free.iter()
        .filter(|(_, f)| {
            f.threads >= need.threads && f.memory_mb >= need.memory_mb && f.gpus >= need.gpus
        })
        .max_by(|a, b| a.1.threads.cmp(&b.1.threads).then(b.0.cmp(a.0)))
        .map(|(id, _)| id.clone())
}

/// A cluster of the agents labelled `key=value`.
pub struct HostsCluster {
    name: String,
    label: (String, String),
    registry: Arc<AgentRegistry>,
}

impl HostsCluster {
    /// The cluster `name` of the agents labelled `key=value` in `registry`.
    pub fn new(name: &str, label: (String, String), registry: Arc<AgentRegistry>) -> Self {
        registry
            .lock()
            .clusters
            .push((name.to_string(), label.clone()));
        HostsCluster {
            name: name.to_string(),
            label,
            registry,
        }
    }

    /// Parses `NAME:KEY=VALUE` (the `--hosts-cluster` flag).
    pub fn parse_flag(flag: &str) -> Result<(String, (String, String)), String> {
        let (name, label) = flag
            .split_once(':')
            .ok_or_else(|| format!("'{flag}': expected NAME:KEY=VALUE"))?;
        let (k, v) = label
            .split_once('=')
            .ok_or_else(|| format!("'{flag}': expected NAME:KEY=VALUE"))?;
        if name.is_empty() || k.is_empty() || name == "local" {
            return Err(format!(
                "'{flag}': the cluster needs a name other than 'local' and a label key"
            ));
        }
        Ok((name.to_string(), (k.to_string(), v.to_string())))
    }

    fn member(&self, a: &Agent) -> bool {
        a.labels.get(&self.label.0) == Some(&self.label.1)
    }

    /// The instance's processes' views, and whether they are live.
    fn view(&self, g: &mut Registry, id: &str) -> Option<ObservedInstance> {
        let timeout = self.registry.timeout;
        let inst = g.instances.get(id)?;
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut live = Vec::new();
        let mut reports: Vec<&AgentProcess> = Vec::new();
        let mut lost_now: Vec<(usize, String)> = Vec::new();
        for (i, pl) in inst.processes.iter().enumerate() {
            let agent = g.agents.get(&pl.agent);
            let lost = agent.is_none_or(|a| !a.alive(timeout));
            let report = agent.and_then(|a| a.reported.get(&pl.local_id));
            if let Some(msg) = inst.lost.get(&i) {
                live.push(false);
                outcomes.push((InstanceState::Crashed, Some(msg.clone()), false, false));
                continue;
            }
            if lost {
                let msg = format!(
                    "{CRASH_MESSAGE}: host {} ({}) lost: no heartbeat from its agent for {} s",
                    agent.map_or("?", |a| a.name.as_str()),
                    agent.map_or("?", |a| a.advertise.as_str()),
                    timeout.as_secs()
                );
                lost_now.push((i, msg.clone()));
                live.push(false);
                outcomes.push((InstanceState::Crashed, Some(msg), false, false));
                continue;
            }
            match report {
                Some(r) => {
                    live.push(r.observed.state.is_live());
                    reports.push(r);
                    if !r.observed.state.is_live() {
                        outcomes.push((
                            r.observed.state.clone(),
                            r.observed.message.clone(),
                            r.observed.user_error,
                            r.observed.superseded,
                        ));
                    }
                }
                None if inst.launched.elapsed() < LAUNCH_WINDOW && inst.ended_at_ms.is_none() => {
                    live.push(true)
                }
                None => {
                    live.push(false);
                    outcomes.push((
                        InstanceState::Crashed,
                        Some("the process was never started on its host".into()),
                        false,
                        false,
                    ));
                }
            }
        }
        let all_live = live.iter().all(|l| *l);
        let any_live = live.iter().any(|l| *l);
        let mut state = if all_live {
            if reports.len() == inst.processes.len()
                && reports
                    .iter()
                    .all(|r| r.observed.state == InstanceState::Running)
            {
                InstanceState::Running
            } else {
                InstanceState::Starting
            }
        } else if any_live {
            // One ended: the others are told to die; the instance ends with them.
            InstanceState::Running
        } else {
            InstanceState::Crashed
        };
        let (mut message, mut user_error, mut superseded) = (None, false, false);
        if !any_live {
            let (s, m, u, sup) = combine_outcomes(outcomes);
            state = if inst.stop_requested && s == InstanceState::Crashed {
                InstanceState::Stopped
            } else {
                s
            };
            (message, user_error, superseded) = (m, u, sup);
        }
        let mut o = ObservedInstance {
            instance_id: id.to_string(),
            owner: inst.owner.clone(),
            job_id: inst.job_id.clone(),
            job_name: inst.job_name.clone(),
            job_version: inst.job_version,
            cluster: inst.cluster.clone(),
            parallelism: inst.parallelism,
            memory_mb: inst.memory_mb,
            gpus: inst.gpus,
            state,
            message,
            user_error,
            superseded,
            stop_requested: inst.stop_requested,
            retired: inst.retired,
            pids: reports
                .iter()
                .flat_map(|r| r.observed.pids.iter().copied())
                .collect(),
            started_at_ms: inst.launched_at_ms,
            ended_at_ms: inst.ended_at_ms,
            heartbeat_at_ms: None,
            progress_at_ms: None,
            input_waiting: all_live && !reports.is_empty(),
            stepped_at_ms: None,
            rows_read: 0,
            rows_in: 0,
            rows_out: 0,
            bad_records: 0,
            late_rows: 0,
            operators: BTreeMap::new(),
        };
        let mut first = true;
        for r in &reports {
            let p = &r.observed;
            o.rows_read += p.rows_read;
            o.rows_in += p.rows_in;
            o.rows_out += p.rows_out;
            o.bad_records += p.bad_records;
            o.late_rows += p.late_rows;
            for (k, v) in &p.operators {
                *o.operators.entry(k.clone()).or_default() += v;
            }
            o.input_waiting &= p.input_waiting;
            if first {
                o.heartbeat_at_ms = p.heartbeat_at_ms;
                o.progress_at_ms = p.progress_at_ms;
                o.stepped_at_ms = p.stepped_at_ms;
                first = false;
            } else {
                o.heartbeat_at_ms = o
                    .heartbeat_at_ms
                    .zip(p.heartbeat_at_ms)
                    .map(|(a, b)| a.min(b));
                o.progress_at_ms = o.progress_at_ms.max(p.progress_at_ms);
                o.stepped_at_ms = o.stepped_at_ms.zip(p.stepped_at_ms).map(|(a, b)| a.min(b));
            }
        }
        if reports.len() < inst.processes.len() {
            o.heartbeat_at_ms = None;
            o.stepped_at_ms = None;
        }
        let kill_rest = any_live && !all_live && !inst.killing;
        let ended = !any_live && inst.ended_at_ms.is_none();
        let placements = inst.processes.clone();
        let inst = g.instances.get_mut(id)?;
        for (i, msg) in lost_now {
            inst.lost.insert(i, msg);
        }
        if ended {
            let at = now_ms();
            inst.ended_at_ms = Some(at);
            o.ended_at_ms = Some(at);
        }
        if kill_rest {
            inst.killing = true;
            tracing::warn!("hosts: instance {id}: a process ended: killing the others");
            for pl in &placements {
                if let Some(a) = g.agents.get_mut(&pl.agent) {
                    a.orders.kill.push(pl.local_id.clone());
                }
            }
        }
        Some(o)
    }

    /// Orders every process of `id` with `order`, then waits until none is live
    /// (or its host is lost) for up to `limit`.
    fn order_and_wait(
        &self,
        id: &str,
        order: fn(&mut AgentOrders) -> &mut Vec<String>,
        limit: Duration,
    ) -> Result<bool, ClusterError> {
        {
            let mut g = self.registry.lock();
            let g = &mut *g;
            let inst = g
                .instances
                .get(id)
                .ok_or_else(|| ClusterError::NotFound(id.to_string()))?;
            for pl in inst.processes.clone() {
                if let Some(a) = g.agents.get_mut(&pl.agent) {
                    order(&mut a.orders).push(pl.local_id.clone());
                }
            }
        }
        let deadline = Instant::now() + limit;
        loop {
            let live = {
                let mut g = self.registry.lock();
                self.view(&mut g, id).is_some_and(|o| o.state.is_live())
            };
            if !live {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Cluster for HostsCluster {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "hosts"
    }

    fn capacity(&self) -> Capacity {
        let g = self.registry.lock();
        let live: Vec<&Agent> = g
            .agents
            .values()
            .filter(|a| self.member(a) && a.alive(self.registry.timeout))
            .collect();
        Capacity {
            workers: live.iter().map(|a| u64::from(a.slots)).sum(),
            // An agent that declares no memory does not limit it.
            memory_mb: live
                .iter()
                .try_fold(0u64, |sum, a| a.memory_mb.map(|m| sum.saturating_add(m)))
                .unwrap_or(u64::MAX / 4),
            gpus: live.iter().map(|a| u64::from(a.gpus)).sum(),
        }
    }

    /// A process runs on one agent: the most slots a live member offers.
    fn threads_per_process(&self) -> u64 {
        let g = self.registry.lock();
        g.agents
            .values()
            .filter(|a| self.member(a) && a.alive(self.registry.timeout))
            .map(|a| u64::from(a.slots))
            .max()
            .unwrap_or(0)
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<(), ClusterError> {
        let processes = spec.resources.processes.max(1) as usize;
        let threads = (spec.resources.parallelism / processes as u32).max(1);
        let mut g = self.registry.lock();
        let g = &mut *g;
        if g.instances.contains_key(&spec.instance_id) {
            return Err(ClusterError::Io(format!(
                "instance {} already exists",
                spec.instance_id
            )));
        }
        // Each process's needs, and what each live member agent has free.
        let need = Need {
            threads,
            memory_mb: spec.resources.memory_mb,
            gpus: spec.resources.gpus,
        };
        let mut free: BTreeMap<String, Need> = g
            .agents
            .iter()
            .filter(|(_, a)| self.member(a) && a.alive(self.registry.timeout))
            .map(|(id, a)| (id.clone(), free_on(g, id, a)))
            .collect();
        let mut placements = Vec::new();
        for p in 0..processes {
            let best = decide_agent(&free, need);
            let Some(agent_id) = best else {
                let offered = free
                    .iter()
                    .map(|(id, f)| {
                        let memory = match f.memory_mb {
                            u64::MAX => "memory not limited".to_string(),
                            m => format!("{m} MiB"),
                        };
                        format!("{id}: {} slots, {memory}, {} GPUs", f.threads, f.gpus)
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(ClusterError::Io(format!(
                    "cluster {}: no agent has {threads} slots, {} MiB and {} GPUs free for process {p} of {processes} (free: {})",
                    self.name,
                    need.memory_mb,
                    need.gpus,
                    if offered.is_empty() { "no live agent".to_string() } else { offered }
                )));
            };
            if let Some(f) = free.get_mut(&agent_id) {
                f.threads -= need.threads;
                f.memory_mb = f.memory_mb.saturating_sub(need.memory_mb);
                f.gpus -= need.gpus;
            }
            placements.push(Placement {
                agent: agent_id,
                local_id: local_id(&spec.instance_id, p),
                threads,
                memory_mb: need.memory_mb,
                gpus: need.gpus,
                port: 0,
            });
        }
        // A port per process from its agent's range, not used by a live process there.
        let used_ports: BTreeSet<(String, u16)> = g
            .instances
            .values()
            .filter(|i| i.ended_at_ms.is_none())
            .flat_map(|i| i.processes.iter().map(|p| (p.agent.clone(), p.port)))
            .collect();
        let mut peers = Vec::new();
        for pl in &mut placements {
            let a = &g.agents[&pl.agent];
            let port = (a.ports.0..=a.ports.1)
                .find(|port| {
                    !used_ports.contains(&(pl.agent.clone(), *port))
                        && !peers.contains(&format!("{}:{port}", a.advertise))
                })
                .ok_or_else(|| {
                    ClusterError::Io(format!("agent {} ({}) has no free port", a.name, pl.agent))
                })?;
            pl.port = port;
            peers.push(format!("{}:{port}", a.advertise));
        }
        let mut worker = spec.worker.clone();
        worker.workers = threads as usize;
        worker.peers = if processes > 1 { peers } else { Vec::new() };
        for (p, pl) in placements.iter().enumerate() {
            let mut w = worker.clone();
            w.process = p;
            let body = serde_json::to_value(&w)
                .map_err(|e| ClusterError::Io(format!("cannot encode the request: {e}")))?;
            let order = LaunchOrder {
                local_id: pl.local_id.clone(),
                owner: spec.owner.clone(),
                job_id: spec.job_id.clone(),
                job_name: spec.job_name.clone(),
                job_version: spec.job_version,
                memory_mb: spec.resources.memory_mb,
                gpus: spec.resources.gpus,
                worker: body,
            };
            if let Some(a) = g.agents.get_mut(&pl.agent) {
                a.orders.launch.push(LaunchOrderEq(order));
            }
        }
        tracing::info!(
            "hosts: instance {} placed: {}",
            spec.instance_id,
            placements
                .iter()
                .map(|p| format!(
                    "{} on {} ({} threads, port {})",
                    p.local_id, p.agent, p.threads, p.port
                ))
                .collect::<Vec<_>>()
                .join(", ")
        );
        g.instances.insert(
            spec.instance_id.clone(),
            HostInstance {
                cluster: self.name.clone(),
                owner: spec.owner.clone(),
                job_id: spec.job_id.clone(),
                job_name: spec.job_name.clone(),
                job_version: spec.job_version,
                parallelism: spec.resources.parallelism,
                memory_mb: spec.resources.memory_mb * processes as u64,
                gpus: spec.resources.gpus,
                processes: placements,
                launched: Instant::now(),
                launched_at_ms: now_ms(),
                stop_requested: false,
                retired: false,
                killing: false,
                ended_at_ms: None,
                lost: BTreeMap::new(),
            },
        );
        Ok(())
    }

    fn stop(&self, instance_id: &str) -> Result<(), ClusterError> {
        {
            let mut g = self.registry.lock();
            let inst = g
                .instances
                .get_mut(instance_id)
                .ok_or_else(|| ClusterError::NotFound(instance_id.to_string()))?;
            inst.stop_requested = true;
        }
        let limit = self.registry.stop_grace + self.registry.heartbeat_interval * 4;
        if self.order_and_wait(instance_id, |o| &mut o.stop, limit)? {
            return Ok(());
        }
        self.kill(instance_id)
    }

    fn kill(&self, instance_id: &str) -> Result<(), ClusterError> {
        let limit = self.registry.timeout + self.registry.heartbeat_interval * 4;
        if self.order_and_wait(instance_id, |o| &mut o.kill, limit)? {
            Ok(())
        } else {
            Err(ClusterError::Io(format!(
                "instance {instance_id}: its processes are still reported alive {} s after the kill order",
                limit.as_secs()
            )))
        }
    }

    fn observe(&self) -> Result<Vec<ObservedInstance>, ClusterError> {
        let mut g = self.registry.lock();
        let ids: Vec<String> = g
            .instances
            .iter()
            .filter(|(_, i)| i.cluster == self.name)
            .map(|(id, _)| id.clone())
            .collect();
        Ok(ids.iter().filter_map(|id| self.view(&mut g, id)).collect())
    }

    fn retire(&self, instance_id: &str) -> Result<(), ClusterError> {
        let mut g = self.registry.lock();
        let inst = g
            .instances
            .get_mut(instance_id)
            .ok_or_else(|| ClusterError::NotFound(instance_id.to_string()))?;
        inst.retired = true;
        Ok(())
    }

    fn forget(&self, instance_id: &str) -> Result<(), ClusterError> {
        let mut g = self.registry.lock();
        let live = self
            .view(&mut g, instance_id)
            .ok_or_else(|| ClusterError::NotFound(instance_id.to_string()))?
            .state
            .is_live();
        if live {
            return Err(ClusterError::Io(format!(
                "instance {instance_id} is still running: stop it before forgetting it"
            )));
        }
        if let Some(inst) = g.instances.remove(instance_id) {
            g.forgotten.push_back(instance_id.to_string());
            while g.forgotten.len() > FORGOTTEN_KEPT {
                g.forgotten.pop_front();
            }
            for pl in inst.processes {
                if let Some(a) = g.agents.get_mut(&pl.agent) {
                    a.orders.forget.push(pl.local_id);
                }
            }
        }
        Ok(())
    }

    fn logs(&self, instance_id: &str, tail_bytes: u64) -> Result<String, ClusterError> {
        // Ask each live process's agent for its tail (the next heartbeat's answer carries
        // the request, the heartbeat after it the text), then wait for them a while.
        let asked = Instant::now();
        let places: Vec<(String, String, bool)> = {
            let mut g = self.registry.lock();
            let g = &mut *g;
            let inst = g
                .instances
                .get(instance_id)
                .ok_or_else(|| ClusterError::NotFound(instance_id.to_string()))?;
            let share = (tail_bytes / inst.processes.len().max(1) as u64).max(1);
            let mut places = Vec::new();
            for pl in &inst.processes {
                let alive = match g.agents.get_mut(&pl.agent) {
                    Some(a) if a.alive(self.registry.timeout) => {
                        a.orders.logs.insert(pl.local_id.clone(), share);
                        true
                    }
                    _ => false,
                };
                let host = g.agents.get(&pl.agent).map_or_else(
                    || "a host no longer known".to_string(),
                    |a| format!("{} ({})", a.name, a.advertise),
                );
                places.push((pl.local_id.clone(), host, alive));
            }
            places
        };
        let wait = (self.registry.heartbeat_interval * 3)
            .clamp(Duration::from_millis(500), Duration::from_secs(5));
        let fresh =
            |g: &Registry, id: &str| g.log_tails.get(id).is_some_and(|(at, _)| *at >= asked);
        while asked.elapsed() < wait {
            let done = {
                let g = self.registry.lock();
                places.iter().all(|(id, _, alive)| !alive || fresh(&g, id))
            };
            if done {
                break;
            }
            std::thread::sleep(POLL / 5);
        }
        let g = self.registry.lock();
        let mut text = String::new();
        for (id, host, alive) in &places {
            if places.len() > 1 {
                text.push_str(&format!("==> process {id} on {host} <==\n"));
            }
            match g.log_tails.get(id) {
                Some((at, tail)) if *at >= asked => text.push_str(tail),
                other => {
                    let why = if *alive {
                        format!("did not arrive within {} ms", wait.as_millis())
                    } else {
                        "cannot be fetched: its host is lost".to_string()
                    };
                    text.push_str(&format!(
                        "(the log of process {id} on {host} {why}; it is <agent dir>/processes/{id}/worker.log there)\n"
                    ));
                    if let Some((at, tail)) = other {
                        text.push_str(&format!(
                            "(its tail as received {} s ago:)\n{tail}",
                            at.elapsed().as_secs()
                        ));
                    }
                }
            }
            if !text.ends_with('\n') {
                text.push('\n');
            }
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_compiler::instance::WorkerRequest;

    fn registry(timeout_ms: u64) -> Arc<AgentRegistry> {
        Arc::new(AgentRegistry::new(
            Duration::from_millis(timeout_ms),
            Duration::from_millis(20),
            Duration::from_millis(50),
        ))
    }

    fn register(r: &AgentRegistry, name: &str, slots: u32, pool: &str) -> String {
        r.register(RegisterAgent {
            name: name.into(),
            slots,
            labels: [("pool".to_string(), pool.to_string())].into(),
            advertise: format!("{name}.example"),
            ports_from: 7100,
            ports_to: 7101,
            memory_mb: None,
            gpus: 0,
        })
        .unwrap()
        .id
    }

    fn spec(id: &str, parallelism: u32, processes: u32) -> LaunchSpec {
        let compiled = sluice_compiler::compile(
            "CREATE TABLE s (x BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '1');\n\
             CREATE TABLE t (x BIGINT) WITH ('connector' = 'blackhole');\n\
             INSERT INTO t SELECT x FROM s;",
            &sluice_catalogs::MemoryCatalog::new(),
            &sluice_connectors::Registry::builtin(),
        )
        .unwrap();
        LaunchSpec {
            instance_id: id.into(),
            owner: InstanceOwner::Job {
                id: "j1".into(),
                version: 1,
            },
            job_id: "j1".into(),
            job_name: "job".into(),
            job_version: 1,
            resources: Resources {
                parallelism,
                memory_mb: 256,
                gpus: 0,
                processes,
            },
            worker: WorkerRequest {
                plan: compiled.plan,
                workers: parallelism as usize,
                batch_size: 1024,
                progress_interval_ms: None,
                checkpoint: None,
                secret_key_file: None,
                peers: Vec::new(),
                process: 0,
            },
        }
    }

    /// What the agent's local cluster would report for a launch order.
    fn running(order: &LaunchOrder, state: InstanceState) -> AgentProcess {
        let worker: WorkerRequest = serde_json::from_value(order.worker.clone()).unwrap();
        let (instance, process) = order.local_id.rsplit_once("@p").unwrap();
        AgentProcess {
            instance_id: instance.into(),
            process: process.parse().unwrap(),
            processes: worker.processes(),
            observed: ObservedInstance {
                job_id: order.job_id.clone(),
                job_name: order.job_name.clone(),
                job_version: order.job_version,
                cluster: "agent".into(),
                parallelism: worker.total_workers() as u32,
                memory_mb: order.memory_mb,
                pids: vec![1000 + process.parse::<u32>().unwrap()],
                heartbeat_at_ms: Some(1),
                progress_at_ms: Some(1),
                stepped_at_ms: Some(1),
                rows_read: 10,
                rows_in: 10,
                rows_out: 5,
                ..ObservedInstance::of(&order.local_id, order.owner.clone(), state)
            },
        }
    }

    use crate::model::Resources;

    /// An instance's logs come from its agents: the request rides on a heartbeat's
    /// answer, the tails on the next heartbeat; a lost host's process says where its log
    /// stays.
    #[test]
    fn logs_are_fetched_from_the_agents_and_a_lost_hosts_say_where_they_are() {
        let r = registry(300);
        let a = register(&r, "a", 4, "x");
        let b = register(&r, "b", 4, "x");
        let cluster = Arc::new(HostsCluster::new(
            "hosts",
            ("pool".into(), "x".into()),
            r.clone(),
        ));
        cluster.launch(&spec("i1", 4, 2)).unwrap();
        r.heartbeat(&a, AgentHeartbeat::default()).unwrap();
        r.heartbeat(&b, AgentHeartbeat::default()).unwrap();
        // The two agents: answer each request with a tail of their own.
        let agent = |id: String, name: &'static str| {
            let r = r.clone();
            std::thread::spawn(move || {
                let mut logs = BTreeMap::new();
                for _ in 0..100 {
                    let orders = r
                        .heartbeat(
                            &id,
                            AgentHeartbeat {
                                logs: std::mem::take(&mut logs),
                                ..Default::default()
                            },
                        )
                        .unwrap();
                    for (local, bytes) in orders.logs {
                        assert!(bytes >= 1000, "each process gets a share of the budget");
                        logs.insert(local.clone(), format!("{name}: the log of {local}\n"));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        let (ta, tb) = (agent(a.clone(), "a"), agent(b.clone(), "b"));
        let text = cluster.logs("i1", 4096).unwrap();
        assert!(
            text.contains("==> process i1@p0 on a (a.example) <==\na: the log of i1@p0"),
            "{text}"
        );
        assert!(
            text.contains("==> process i1@p1 on b (b.example) <==\nb: the log of i1@p1"),
            "{text}"
        );
        ta.join().unwrap();
        tb.join().unwrap();
        // `b` goes quiet past the timeout: lost. Its last tail is shown as such.
        std::thread::sleep(Duration::from_millis(400));
        r.heartbeat(&a, AgentHeartbeat::default()).unwrap();
        let text = cluster.logs("i1", 4096).unwrap();
        assert!(
            text.contains("i1@p1 on b (b.example) cannot be fetched: its host is lost")
                && text.contains("b: the log of i1@p1"),
            "{text}"
        );
        assert!(matches!(
            cluster.logs("nope", 10),
            Err(ClusterError::NotFound(_))
        ));
    }

    /// A process goes only where its memory and GPUs are free, even when another agent
    /// has more free slots; the refusal says what each agent has free.
    #[test]
    fn placement_counts_memory_and_gpus_as_well_as_slots() {
        let r = registry(10_000);
        let with = |name: &str, slots: u32, memory_mb: Option<u64>, gpus: u32| {
            r.register(RegisterAgent {
                name: name.into(),
                slots,
                labels: [("pool".to_string(), "x".to_string())].into(),
                advertise: format!("{name}.example"),
                ports_from: 7100,
                ports_to: 7101,
                memory_mb,
                gpus,
            })
            .unwrap()
            .id
        };
        let big = with("big", 8, Some(1000), 0);
        let small = with("small", 4, None, 1);
        let cluster = HostsCluster::new("hosts", ("pool".into(), "x".into()), r.clone());
        let cap = cluster.capacity();
        assert_eq!((cap.workers, cap.gpus), (12, 1));
        // One process runs on one agent: at most the biggest agent's slots.
        assert_eq!(cluster.threads_per_process(), 8);
        assert_eq!(
            cap.memory_mb,
            u64::MAX / 4,
            "one agent does not limit memory"
        );
        let placed = |id: &str| {
            let orders = r.heartbeat(id, AgentHeartbeat::default()).unwrap();
            orders
                .launch
                .iter()
                .map(|o| o.0.local_id.clone())
                .collect::<Vec<_>>()
        };
        let with_memory = |id: &str, memory_mb: u64, gpus: u32| {
            let mut s = spec(id, 1, 1);
            s.resources.memory_mb = memory_mb;
            s.resources.gpus = gpus;
            s
        };
        // The most free slots: `big`.
        cluster.launch(&with_memory("i1", 600, 0)).unwrap();
        assert_eq!(placed(&big), vec!["i1@p0"]);
        // `big` still has more free slots, but only 400 MiB.
        cluster.launch(&with_memory("i2", 600, 0)).unwrap();
        assert_eq!(placed(&small), vec!["i2@p0"]);
        // A GPU: only `small` has one; then none is left.
        cluster.launch(&with_memory("i3", 100, 1)).unwrap();
        assert_eq!(placed(&small), vec!["i3@p0"]);
        let e = cluster
            .launch(&with_memory("i4", 100, 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 GPUs free") && e.contains("400 MiB"), "{e}");
        let views = r.agents();
        let b = views.iter().find(|v| v.id == big).unwrap();
        assert_eq!(
            (b.memory_mb, b.memory_used_mb, b.gpus_used),
            (Some(1000), 600, 0)
        );
        // A declared memory of 0 is refused (absent means not limited).
        let mut bad = RegisterAgent {
            name: "z".into(),
            slots: 1,
            labels: BTreeMap::new(),
            advertise: "z".into(),
            ports_from: 1,
            ports_to: 2,
            memory_mb: Some(0),
            gpus: 0,
        };
        assert!(r.register(bad.clone()).is_err());
        bad.memory_mb = None;
        assert!(r.register(bad).is_ok());
    }

    #[test]
    fn an_instance_spreads_over_the_agents_and_runs_while_all_its_processes_do() {
        let r = registry(10_000);
        let a = register(&r, "a", 4, "x");
        let b = register(&r, "b", 4, "x");
        let _other = register(&r, "c", 16, "y");
        let cluster = HostsCluster::new("hosts", ("pool".into(), "x".into()), r.clone());
        assert_eq!(
            cluster.capacity().workers,
            8,
            "only the labelled agents count"
        );
        cluster.launch(&spec("i1", 4, 2)).unwrap();
        let oa = r.heartbeat(&a, AgentHeartbeat::default()).unwrap();
        let ob = r.heartbeat(&b, AgentHeartbeat::default()).unwrap();
        assert_eq!(
            (oa.launch.len(), ob.launch.len()),
            (1, 1),
            "one process on each"
        );
        let (la, lb) = (oa.launch[0].0.clone(), ob.launch[0].0.clone());
        let wa: WorkerRequest = serde_json::from_value(la.worker.clone()).unwrap();
        let wb: WorkerRequest = serde_json::from_value(lb.worker.clone()).unwrap();
        assert_eq!(wa.peers, vec!["a.example:7100", "b.example:7100"]);
        assert_eq!((wa.process, wb.process, wa.workers), (0, 1, 2));
        // Launched, not yet reported: starting.
        assert_eq!(cluster.observe().unwrap()[0].state, InstanceState::Starting);
        r.heartbeat(
            &a,
            AgentHeartbeat {
                processes: vec![running(&la, InstanceState::Running)],
                ..Default::default()
            },
        );
        r.heartbeat(
            &b,
            AgentHeartbeat {
                processes: vec![running(&lb, InstanceState::Running)],
                ..Default::default()
            },
        );
        let o = &cluster.observe().unwrap()[0];
        assert_eq!(o.state, InstanceState::Running);
        assert_eq!((o.parallelism, o.rows_in, o.pids.len()), (4, 20, 2));
        // No room for another 4 x 1 process... of 4 threads.
        assert!(cluster.launch(&spec("i2", 4, 1)).is_err());
    }

    #[test]
    fn a_process_ending_ends_the_instance_and_the_others_are_told_to_die() {
        let r = registry(10_000);
        let a = register(&r, "a", 4, "x");
        let b = register(&r, "b", 4, "x");
        let cluster = HostsCluster::new("hosts", ("pool".into(), "x".into()), r.clone());
        cluster.launch(&spec("i1", 4, 2)).unwrap();
        let la = r.heartbeat(&a, AgentHeartbeat::default()).unwrap().launch[0]
            .0
            .clone();
        let lb = r.heartbeat(&b, AgentHeartbeat::default()).unwrap().launch[0]
            .0
            .clone();
        r.heartbeat(
            &a,
            AgentHeartbeat {
                processes: vec![running(&la, InstanceState::Running)],
                ..Default::default()
            },
        );
        let mut failed = running(&lb, InstanceState::Failed);
        failed.observed.message = Some("boom".into());
        r.heartbeat(
            &b,
            AgentHeartbeat {
                processes: vec![failed.clone()],
                ..Default::default()
            },
        );
        // Still one live process: the instance has not ended; a is told to kill it.
        assert!(cluster.observe().unwrap()[0].state.is_live());
        let orders = r
            .heartbeat(
                &a,
                AgentHeartbeat {
                    processes: vec![running(&la, InstanceState::Running)],
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(orders.kill, vec![la.local_id.clone()]);
        r.heartbeat(
            &a,
            AgentHeartbeat {
                processes: vec![running(&la, InstanceState::Crashed)],
                ..Default::default()
            },
        );
        let o = &cluster.observe().unwrap()[0];
        assert_eq!(o.state, InstanceState::Failed);
        assert_eq!(
            o.message.as_deref(),
            Some("boom"),
            "the cause, not the kill"
        );
    }

    #[test]
    fn a_lost_host_ends_its_processes_and_a_process_back_from_a_partition_is_killed() {
        let r = registry(150);
        let a = register(&r, "a", 4, "x");
        let b = register(&r, "b", 4, "x");
        let cluster = HostsCluster::new("hosts", ("pool".into(), "x".into()), r.clone());
        cluster.launch(&spec("i1", 2, 1)).unwrap();
        let oa = r.heartbeat(&a, AgentHeartbeat::default()).unwrap();
        let ob = r.heartbeat(&b, AgentHeartbeat::default()).unwrap();
        let (host, order) = match (oa.launch.first(), ob.launch.first()) {
            (Some(o), None) => (a.clone(), o.0.clone()),
            (None, Some(o)) => (b.clone(), o.0.clone()),
            other => panic!("one launch expected: {other:?}"),
        };
        let other = if host == a { b.clone() } else { a.clone() };
        r.heartbeat(
            &host,
            AgentHeartbeat {
                processes: vec![running(&order, InstanceState::Running)],
                ..Default::default()
            },
        );
        assert_eq!(cluster.observe().unwrap()[0].state, InstanceState::Running);
        // The host goes silent; the other agent keeps beating.
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(50));
            r.heartbeat(&other, AgentHeartbeat::default());
        }
        let o = &cluster.observe().unwrap()[0];
        assert_eq!(o.state, InstanceState::Crashed, "{o:?}");
        assert!(o.message.as_deref().unwrap_or("").contains("lost"), "{o:?}");
        assert_eq!(
            cluster.capacity().workers,
            4,
            "the lost host's slots are gone"
        );
        // It comes back with the process still running: it is told to kill it, and the
        // instance stays ended.
        let back = r
            .heartbeat(
                &host,
                AgentHeartbeat {
                    processes: vec![running(&order, InstanceState::Running)],
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(back.kill, vec![order.local_id.clone()]);
        assert_eq!(cluster.observe().unwrap()[0].state, InstanceState::Crashed);
    }

    #[test]
    fn a_live_process_of_a_forgotten_instance_is_killed_not_adopted() {
        let r = registry(150);
        let a = register(&r, "a", 4, "x");
        let cluster = HostsCluster::new("hosts", ("pool".into(), "x".into()), r.clone());
        cluster.launch(&spec("i1", 2, 1)).unwrap();
        let order = r.heartbeat(&a, AgentHeartbeat::default()).unwrap().launch[0]
            .0
            .clone();
        r.heartbeat(
            &a,
            AgentHeartbeat {
                processes: vec![running(&order, InstanceState::Running)],
                ..Default::default()
            },
        );
        // The host goes silent: lost; the watchdog accounts for the end and forgets it.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(cluster.observe().unwrap()[0].state, InstanceState::Crashed);
        cluster.retire("i1").unwrap();
        cluster.forget("i1").unwrap();
        assert!(cluster.observe().unwrap().is_empty());
        // Back, its process still running: killed, and not adopted.
        let back = r
            .heartbeat(
                &a,
                AgentHeartbeat {
                    processes: vec![running(&order, InstanceState::Running)],
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(back.kill, vec![order.local_id.clone()]);
        assert!(cluster.observe().unwrap().is_empty());
    }

    #[test]
    fn a_new_master_adopts_the_processes_agents_report() {
        let r = registry(10_000);
        let a = register(&r, "a", 4, "x");
        let cluster = HostsCluster::new("hosts", ("pool".into(), "x".into()), r.clone());
        cluster.launch(&spec("i1", 2, 1)).unwrap();
        let order = r.heartbeat(&a, AgentHeartbeat::default()).unwrap().launch[0]
            .0
            .clone();
        // A fresh registry (the master restarted) hears of the process first.
        let fresh = registry(10_000);
        let cluster2 = HostsCluster::new("hosts", ("pool".into(), "x".into()), fresh.clone());
        let a2 = register(&fresh, "a", 4, "x");
        let orders = fresh
            .heartbeat(
                &a2,
                AgentHeartbeat {
                    processes: vec![running(&order, InstanceState::Running)],
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(orders.kill.is_empty(), "{orders:?}");
        let o = &cluster2.observe().unwrap()[0];
        assert_eq!(
            (o.instance_id.as_str(), o.state.clone(), o.cluster.as_str()),
            ("i1", InstanceState::Running, "hosts")
        );
    }

    #[test]
    fn the_cluster_flag_parses_and_bad_ones_say_why() {
        assert_eq!(
            HostsCluster::parse_flag("hosts:pool=a").unwrap(),
            ("hosts".to_string(), ("pool".to_string(), "a".to_string()))
        );
        assert!(HostsCluster::parse_flag("hosts").is_err());
        assert!(HostsCluster::parse_flag("local:pool=a").is_err());
        assert!(HostsCluster::parse_flag("hosts:pool").is_err());
    }
}
