//! The master's durable state: jobs, their runtime status, their event history and the
//! catalog's tables. [`Store`] is the interface; [`SledStore`] keeps it on disk (every
//! write is flushed before it returns, so an acknowledged write survives `kill -9`),
//! [`MemoryStore`] is the in-memory model the sled store is checked against.

mod memory;
pub(crate) mod record;
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
    /// Who caused it (a token's name), when a request did.
    pub by: Option<String>,
}

/// Durable master state. Every method is atomic; a method that returns `Ok` after a
/// write has made it durable.
pub trait Store: Send + Sync {
    /// Creates a job (keyed by name) with its initial status (stored under `job.id`).
    /// `Conflict` when a job of that name exists, or a live job already has its id.
    fn create_job(&self, job: &Job, status: &JobStatus) -> Result<(), StoreError>;
    /// Replaces a job's spec if the stored version is still `expected_version`
    /// (`VersionMismatch` otherwise, `NotFound` when absent). Keys on `job.name`; a job's
    /// id never changes (`NotFound` when the stored job of that name has another id).
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

/// What names a job in errors.
fn job_what(name: &str) -> String {
    format!("job '{name}'")
}

/// What names a job id in errors.
fn job_id_what(id: &str) -> String {
    format!("job id '{id}'")
}

/// What names a table in errors.
fn table_what(name: &str) -> String {
    format!("table '{name}'")
}

/// Records for the store tests, and checks every implementation must pass.
#[cfg(test)]
mod fixtures {
    use super::{NewEvent, Store, StoreError};
    use crate::model::FORMAT_VERSION;
    use crate::model::{DesiredState, Job, JobState, JobStatus, Resources, StoredTable};
    use sluice_catalogs::{Field, Schema, SourceCapabilities, SqlType, TableDescriptor};
    use std::collections::BTreeMap;

    /// A job.
    pub(super) fn job(name: &str, id: &str, version: u64, sql: &str) -> Job {
        Job {
            format_version: FORMAT_VERSION,
            id: id.to_string(),
            name: name.to_string(),
            version,
            sql: sql.to_string(),
            resources: Resources::default(),
            cluster: "local".to_string(),
            desired_state: DesiredState::Running,
            plan: sluice_compiler::DataflowPlan { outputs: vec![] },
            checkpoint_interval_ms: None,
            checkpoints_retained: None,
            bounded: false,
            created_at_ms: 1_000,
            updated_at_ms: 1_000 + version as i64,
            owner: None,
            restore_from: None,
        }
    }

    /// A status of job `id` in `state`.
    pub(super) fn status(id: &str, state: JobState, restarts: u64) -> JobStatus {
        JobStatus {
            state,
            restarts,
            reason: format!("{state:?}"),
            ..JobStatus::new(id, 1, 2_000)
        }
    }

    /// A table named `name` (case as given).
    pub(super) fn table(name: &str) -> StoredTable {
        StoredTable {
            format_version: FORMAT_VERSION,
            ddl: format!("CREATE TABLE {name} (x INT) WITH ('connector' = 'datagen')"),
            descriptor: TableDescriptor {
                name: name.to_string(),
                schema: Schema::new(vec![Field::new("x", SqlType::Int)]),
                connector: "datagen".to_string(),
                options: BTreeMap::from([("connector".to_string(), "datagen".to_string())]),
                watermark: None,
                capabilities: SourceCapabilities::default(),
            },
            created_at_ms: 3_000,
        }
    }

    /// An event to append.
    pub(super) fn event(kind: &str, version: u64) -> NewEvent {
        NewEvent {
            at_ms: 4_000,
            kind: kind.to_string(),
            version,
            state: Some(JobState::Running),
            message: format!("{kind} v{version}"),
            by: None,
        }
    }

    /// The conflict cases every store reports the same way.
    pub(super) fn check_conflicts(store: &dyn Store) {
        let a = job("a", "j1", 1, "select 1");
        store.create_job(&a, &JobStatus::new("j1", 1, 0)).unwrap();
        // Same name, other id.
        assert_eq!(
            store.create_job(&job("a", "j2", 1, "x"), &JobStatus::new("j2", 1, 0)),
            Err(StoreError::Conflict("job 'a'".to_string()))
        );
        // Other name, same id as a live job.
        assert_eq!(
            store.create_job(&job("b", "j1", 1, "x"), &JobStatus::new("j1", 1, 0)),
            Err(StoreError::Conflict("job id 'j1'".to_string()))
        );
        // Stale version.
        store.update_job(&job("a", "j1", 2, "select 2"), 1).unwrap();
        assert_eq!(
            store.update_job(&job("a", "j1", 2, "select 3"), 1),
            Err(StoreError::VersionMismatch {
                what: "job 'a'".to_string(),
                expected: 1,
                found: 2
            })
        );
        // Absent job, and a job whose id is not the stored one.
        assert_eq!(
            store.update_job(&job("zz", "j9", 2, "x"), 1),
            Err(StoreError::NotFound("job 'zz'".to_string()))
        );
        assert_eq!(
            store.update_job(&job("a", "j9", 3, "x"), 2),
            Err(StoreError::NotFound("job 'a' with id 'j9'".to_string()))
        );
        assert_eq!(store.get_job("a").unwrap().unwrap().sql, "select 2");
        // Status of an unknown id, and of a deleted job.
        assert_eq!(
            store.put_status(&JobStatus::new("nope", 1, 0)),
            Err(StoreError::NotFound("job id 'nope'".to_string()))
        );
        assert_eq!(store.delete_job("a").unwrap().map(|j| j.version), Some(2));
        assert_eq!(
            store.put_status(&JobStatus::new("j1", 2, 0)),
            Err(StoreError::NotFound("job id 'j1'".to_string()))
        );
        assert_eq!(store.get_status("j1").unwrap(), None);
        assert_eq!(store.delete_job("a").unwrap(), None);
        // Tables, case-insensitively.
        store.create_table(&table("Orders")).unwrap();
        assert_eq!(
            store.create_table(&table("ORDERS")),
            Err(StoreError::Conflict("table 'ORDERS'".to_string()))
        );
        assert_eq!(store.get_table("orders").unwrap(), Some(table("Orders")));
        assert!(store.delete_table("oRdErS").unwrap());
        assert!(!store.delete_table("orders").unwrap());
    }

    /// The ordinary life of a job, events and tables.
    pub(super) fn check_basics(store: &dyn Store) {
        store
            .create_job(&job("b", "j2", 1, "s"), &status("j2", JobState::Pending, 0))
            .unwrap();
        store
            .create_job(&job("a", "j1", 1, "s"), &status("j1", JobState::Pending, 0))
            .unwrap();
        let names: Vec<String> = store
            .list_jobs()
            .unwrap()
            .into_iter()
            .map(|j| j.name)
            .collect();
        assert_eq!(names, ["a", "b"]);
        store
            .put_status(&status("j1", JobState::Running, 3))
            .unwrap();
        assert_eq!(
            store.get_status("j1").unwrap(),
            Some(status("j1", JobState::Running, 3))
        );
        for (i, kind) in ["created", "state", "updated"].into_iter().enumerate() {
            let stored = store.append_event("j1", event(kind, 1)).unwrap();
            assert_eq!(stored.seq, i as u64 + 1);
            assert_eq!(stored.format_version, FORMAT_VERSION);
            assert_eq!(stored.kind, kind);
        }
        assert_eq!(
            store.append_event("j2", event("created", 1)).unwrap().seq,
            1
        );
        let seqs = |after, limit| -> Vec<u64> {
            store
                .list_events("j1", after, limit)
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect()
        };
        assert_eq!(seqs(0, 10), [1, 2, 3]);
        assert_eq!(seqs(1, 1), [2]);
        assert_eq!(seqs(3, 10), Vec::<u64>::new());
        assert_eq!(seqs(0, 0), Vec::<u64>::new());
        assert_eq!(seqs(u64::MAX, 10), Vec::<u64>::new());
        // Events outlive their job.
        store.delete_job("a").unwrap();
        assert_eq!(seqs(0, 10), [1, 2, 3]);
        store.create_table(&table("b_t")).unwrap();
        store.create_table(&table("A_t")).unwrap();
        let tables: Vec<String> = store
            .list_tables()
            .unwrap()
            .into_iter()
            .map(|t| t.descriptor.name)
            .collect();
        assert_eq!(tables, ["A_t", "b_t"]);
        let first = store.next_id().unwrap();
        assert!(first > 0);
        assert!(store.next_id().unwrap() > first);
    }
}
