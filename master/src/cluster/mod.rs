//! Clusters run instances. A [`Cluster`] driver starts, stops and observes instances;
//! the watchdog only ever talks to this trait, so a cluster of hosts or a Kubernetes
//! cluster is another implementation, not a watchdog change. [`LocalCluster`] runs each
//! instance as a `sluice worker` process on this machine.

pub mod hosts;
mod local;

pub use hosts::{AgentRegistry, HostsCluster};
pub use local::{
    default_capacity, write_failed_status, LocalCluster, LocalClusterConfig, CRASH_MESSAGE,
};

use crate::model::{Capacity, InstanceOwner, ObservedInstance, Resources};
use sluice_compiler::instance::WorkerRequest;

/// A cluster driver failure.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No instance with this id.
    #[error("instance {0} does not exist")]
    NotFound(String),
    /// Starting, signalling or reading an instance failed.
    #[error("{0}")]
    Io(String),
}

/// What to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchSpec {
    /// The new instance's id (unique; decided by the watchdog).
    pub instance_id: String,
    /// Who it belongs to (recorded with the instance, observed back).
    pub owner: InstanceOwner,
    /// The job's id.
    pub job_id: String,
    /// The job's name.
    pub job_name: String,
    /// The job version.
    pub job_version: u64,
    /// Parallelism, memory cap, GPUs.
    pub resources: Resources,
    /// The plan and run options for the worker.
    pub worker: WorkerRequest,
}

/// A place where instances run.
pub trait Cluster: Send + Sync {
    /// The cluster's name (`local`).
    fn name(&self) -> &str;
    /// The driver kind (`local`).
    fn kind(&self) -> &'static str;
    /// What it can hold in all.
    fn capacity(&self) -> Capacity;
    /// The most worker threads one process of an instance may run here: a job that
    /// names no `processes` runs as the fewest that keep each within it, and one that
    /// names more threads per process can never be placed.
    fn threads_per_process(&self) -> u64 {
        self.capacity().workers
    }
    /// Starts an instance; returns once the process exists.
    fn launch(&self, spec: &LaunchSpec) -> Result<(), ClusterError>;
    /// Stops an instance on the master's request: marks it stop-requested, asks it to
    /// end (SIGTERM), kills it after a grace period, and returns once it is gone.
    fn stop(&self, instance_id: &str) -> Result<(), ClusterError>;
    /// Kills an instance abruptly (SIGKILL) without marking it stop-requested: to the
    /// watchdog this is a crash, as `kill -9` by hand would be.
    fn kill(&self, instance_id: &str) -> Result<(), ClusterError>;
    /// Every instance it knows, live or ended and not yet forgotten, by id. Live
    /// processes started by an earlier master are found and adopted here.
    fn observe(&self) -> Result<Vec<ObservedInstance>, ClusterError>;
    /// Marks an ended instance as accounted for (the watchdog saw its end); keeps its
    /// logs for a while.
    fn retire(&self, instance_id: &str) -> Result<(), ClusterError>;
    /// Deletes everything kept of an ended instance (its directory and logs): it is no
    /// longer observed, and its logs are gone. Refused while it is live.
    fn forget(&self, instance_id: &str) -> Result<(), ClusterError>;
    /// The last `tail_bytes` of an instance's log.
    fn logs(&self, instance_id: &str, tail_bytes: u64) -> Result<String, ClusterError>;
}
