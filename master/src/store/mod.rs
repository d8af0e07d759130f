//! The master's durable state: jobs, their runtime status, their event history and the
//! catalog's tables. [`Store`] is the interface; [`SledStore`] keeps it on disk (every
//! write is flushed before it returns, so an acknowledged write survives `kill -9`),
//! [`MemoryStore`] is the in-memory model the sled store is checked against.

mod memory;
mod sled_store;

pub use memory::MemoryStore;
pub use sled_store::SledStore;

use crate::model::{Job, JobEvent, JobState, JobStatus, StoredTable};

/// A store failure.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// A record with this key already exists.
    #[error("{0} already exists")]
    Conflict(String),
    /// The record to change does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// A compare-and-set saw another version than the caller expected.
    #[error("{what} changed concurrently (expected version {expected}, found {found})")]
    VersionMismatch {
        /// Which record.
        what: String,
        /// The version the caller read.
        expected: u64,
        /// The version in the store.
        found: u64,
    },
    /// A stored record cannot be read (corrupt, or written by a newer master).
    #[error("stored record {key} is unreadable: {message}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// Why.
        message: String,
    },
    /// The storage itself failed (disk full, I/O error).
    #[error("storage failure: {0}")]
    Io(String),
}

/// An event to append (the store assigns `seq` and `format_version`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// When (ms).
    pub at_ms: i64,
    /// What kind (see [`JobEvent::kind`]).
    pub kind: String,
    /// The job version.
    pub version: u64,
    /// The state after the event, if it changed.
    pub state: Option<JobState>,
    /// Detail.
    pub message: String,
}

/// Durable master state. Every method is atomic; a method that returns `Ok` after a
/// write has made it durable.
pub trait Store: Send + Sync {
    /// Creates a job (keyed by name) with its initial status.
    /// `Conflict` when a job of that name exists.
    fn create_job(&self, job: &Job, status: &JobStatus) -> Result<(), StoreError>;
    /// Replaces a job's spec if the stored version is still `expected_version`
    /// (`VersionMismatch` otherwise, `NotFound` when absent). Keys on `job.name`.
    fn update_job(&self, job: &Job, expected_version: u64) -> Result<(), StoreError>;
    /// The job of that name.
    fn get_job(&self, name: &str) -> Result<Option<Job>, StoreError>;
    /// Every job, by name.
    fn list_jobs(&self) -> Result<Vec<Job>, StoreError>;
    /// Deletes the job of that name and its status (its events stay, keyed by id);
    /// returns it, or `None` when absent.
    fn delete_job(&self, name: &str) -> Result<Option<Job>, StoreError>;
    /// The status of the job with this id.
    fn get_status(&self, job_id: &str) -> Result<Option<JobStatus>, StoreError>;
    /// Writes a job's status (keyed by `status.job_id`); `NotFound` when no live job has
    /// that id (a deleted job's status is not resurrected).
    fn put_status(&self, status: &JobStatus) -> Result<(), StoreError>;
    /// Appends to a job's history; returns the stored event with its sequence number
    /// (1, 2, … per job id).
    fn append_event(&self, job_id: &str, event: NewEvent) -> Result<JobEvent, StoreError>;
    /// A job's events with `seq > after_seq`, oldest first, at most `limit`.
    fn list_events(
        &self,
        job_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<JobEvent>, StoreError>;
    /// Stores a table (keyed by its lower-cased name); `Conflict` when it exists.
    fn create_table(&self, table: &StoredTable) -> Result<(), StoreError>;
    /// The table of that name (case-insensitive).
    fn get_table(&self, name: &str) -> Result<Option<StoredTable>, StoreError>;
    /// Every table, by lower-cased name.
    fn list_tables(&self) -> Result<Vec<StoredTable>, StoreError>;
    /// Drops a table; false when absent.
    fn delete_table(&self, name: &str) -> Result<bool, StoreError>;
    /// A number never returned before by this store (survives restarts); for ids.
    fn next_id(&self) -> Result<u64, StoreError>;
}
