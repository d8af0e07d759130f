//! The watchdog keeps every job's instances matching its desired state.
//!
//! It is split the way reconcilers should be: [`decide`] is a pure function from
//! (desired jobs, observed instances, clusters, policy, now) to a list of [`Action`]s,
//! tested without processes; [`executor`] applies actions to clusters and the store.
//! Instances are matched to jobs by job id and spec version — never by comparing
//! observed resources, which is how AthenaX could loop killing and restarting.

mod decide;
pub mod executor;

pub use decide::{decide, start_failed};

use crate::model::{Capacity, DesiredState, JobStatus, Resources};

/// Restart and health policy (`sluice serve` flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The first restart delay after a failure (ms).
    pub backoff_initial_ms: i64,
    /// The delay grows by this factor per failure within the window.
    pub backoff_multiplier: u32,
    /// The delay never exceeds this (ms).
    pub backoff_max_ms: i64,
    /// A job is marked failed after this many failures within `restart_window_ms`.
    pub max_restarts: u32,
    /// The window over which failures are counted (ms).
    pub restart_window_ms: i64,
    /// A live instance whose last heartbeat is older than this is hung (ms).
    pub heartbeat_timeout_ms: i64,
    /// A live instance whose counters have not moved for this long while input waits
    /// is hung (ms).
    pub progress_timeout_ms: i64,
    /// A started instance that has not reported within this time is hung (ms).
    pub start_timeout_ms: i64,
    /// A live instance one of whose worker threads has not stepped its dataflow loop
    /// for this long is hung (ms): a thread stuck inside an operator, while the
    /// heartbeat thread goes on. Generous, since one step may process a large batch.
    pub stall_timeout_ms: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            backoff_initial_ms: 1_000,
            backoff_multiplier: 2,
            backoff_max_ms: 60_000,
            max_restarts: 5,
            restart_window_ms: 10 * 60_000,
            heartbeat_timeout_ms: 15_000,
            progress_timeout_ms: 60_000,
            start_timeout_ms: 30_000,
            stall_timeout_ms: 300_000,
        }
    }
}

/// One job as the watchdog sees it: its spec (current version) and its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredJob {
    /// The job's id.
    pub job_id: String,
    /// The job's name.
    pub name: String,
    /// The current spec version.
    pub version: u64,
    /// Running or stopped.
    pub desired_state: DesiredState,
    /// What it asks for.
    pub resources: Resources,
    /// Where it runs.
    pub cluster: String,
    /// The watchdog's memory of it (possibly of an older version).
    pub status: JobStatus,
    /// Appended to the id of an instance started for it: random (128 bits) from the
    /// executor, so instance ids cannot be guessed; empty in tests.
    pub id_suffix: String,
}

/// One cluster as the watchdog sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterView {
    /// Its name.
    pub name: String,
    /// What it can hold.
    pub capacity: Capacity,
}

/// One thing to do. The executor applies a cycle's actions in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start an instance of `job_id` at `version` with id `instance_id`.
    Start {
        /// The job.
        job_id: String,
        /// The version to run.
        version: u64,
        /// The new instance's id.
        instance_id: String,
    },
    /// Stop a live instance (it is then stop-requested; its end is not a failure).
    Stop {
        /// Which.
        instance_id: String,
        /// Why (recorded as an event).
        reason: String,
    },
    /// Mark an ended instance as accounted for.
    Retire {
        /// Which.
        instance_id: String,
    },
    /// Forget an ended instance of a job that no longer exists: the cluster deletes
    /// everything it kept of it (its directory and logs).
    Forget {
        /// Which.
        instance_id: String,
    },
    /// Write a job's new status, and record an event when `event` is set.
    SetStatus {
        /// The new status.
        status: JobStatus,
        /// `(kind, message)` of the event to record.
        event: Option<(String, String)>,
    },
}
