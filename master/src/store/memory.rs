//! The in-memory model of [`Store`]: the reference semantics the sled store is checked
//! against (and a store for tests that need no disk).

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::{job_id_what, job_what, table_what, NewEvent, Store, StoreError};
use crate::model::{Job, JobEvent, JobStatus, StoredTable, FORMAT_VERSION};

/// The state behind the lock.
#[derive(Debug, Default)]
struct Inner {
    /// Jobs by name.
    jobs: BTreeMap<String, Job>,
    /// Live job ids → names.
    job_ids: BTreeMap<String, String>,
    /// Statuses by job id.
    status: BTreeMap<String, JobStatus>,
    /// Events by job id, in `seq` order.
    events: BTreeMap<String, Vec<JobEvent>>,
    /// Tables by lower-cased name.
    tables: BTreeMap<String, StoredTable>,
    /// The last id handed out.
    last_id: u64,
}

/// In-memory store: every method runs under one lock, so it is atomic; nothing is
/// durable (the state goes with the value).
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic under the lock leaves no half-done write (every method checks before
        // it changes anything), so a poisoned lock is still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Store for MemoryStore {
    fn create_job(&self, job: &Job, status: &JobStatus) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if inner.jobs.contains_key(&job.name) {
            return Err(StoreError::Conflict(job_what(&job.name)));
        }
        if inner.job_ids.contains_key(&job.id) {
            return Err(StoreError::Conflict(job_id_what(&job.id)));
        }
        inner.jobs.insert(job.name.clone(), job.clone());
        inner.job_ids.insert(job.id.clone(), job.name.clone());
        inner.status.insert(job.id.clone(), status.clone());
        Ok(())
    }

    fn update_job(&self, job: &Job, expected_version: u64) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let stored = inner
            .jobs
            .get_mut(&job.name)
            .ok_or_else(|| StoreError::NotFound(job_what(&job.name)))?;
        check_update(stored, job, expected_version)?;
        *stored = job.clone();
        Ok(())
    }

    fn get_job(&self, name: &str) -> Result<Option<Job>, StoreError> {
        Ok(self.lock().jobs.get(name).cloned())
    }

    fn list_jobs(&self) -> Result<Vec<Job>, StoreError> {
        Ok(self.lock().jobs.values().cloned().collect())
    }

    fn delete_job(&self, name: &str) -> Result<Option<Job>, StoreError> {
        let mut inner = self.lock();
        let Some(job) = inner.jobs.remove(name) else {
            return Ok(None);
        };
        inner.job_ids.remove(&job.id);
        inner.status.remove(&job.id);
        Ok(Some(job))
    }

    fn get_status(&self, job_id: &str) -> Result<Option<JobStatus>, StoreError> {
        Ok(self.lock().status.get(job_id).cloned())
    }

    fn put_status(&self, status: &JobStatus) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if !inner.job_ids.contains_key(&status.job_id) {
            return Err(StoreError::NotFound(job_id_what(&status.job_id)));
        }
        inner.status.insert(status.job_id.clone(), status.clone());
        Ok(())
    }

    fn append_event(&self, job_id: &str, event: NewEvent) -> Result<JobEvent, StoreError> {
        let mut inner = self.lock();
        let events = inner.events.entry(job_id.to_string()).or_default();
        let seq = events.last().map_or(0, |e| e.seq) + 1;
        let stored = stored_event(seq, event);
        events.push(stored.clone());
        Ok(stored)
    }

    fn list_events(
        &self,
        job_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<JobEvent>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .events
            .get(job_id)
            .map(|events| {
                events
                    .iter()
                    .filter(|e| e.seq > after_seq)
                    .take(limit)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    fn create_table(&self, table: &StoredTable) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let key = table.descriptor.name.to_lowercase();
        if inner.tables.contains_key(&key) {
            return Err(StoreError::Conflict(table_what(&table.descriptor.name)));
        }
        inner.tables.insert(key, table.clone());
        Ok(())
    }

    fn get_table(&self, name: &str) -> Result<Option<StoredTable>, StoreError> {
        Ok(self.lock().tables.get(&name.to_lowercase()).cloned())
    }

    fn list_tables(&self) -> Result<Vec<StoredTable>, StoreError> {
        Ok(self.lock().tables.values().cloned().collect())
    }

    fn delete_table(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.lock().tables.remove(&name.to_lowercase()).is_some())
    }

    fn next_id(&self) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        inner.last_id += 1;
        Ok(inner.last_id)
    }
}

/// Checks that `stored` may be replaced by `job` (same id, version as expected).
pub(super) fn check_update(
    stored: &Job,
    job: &Job,
    expected_version: u64,
) -> Result<(), StoreError> {
    if stored.id != job.id {
        return Err(StoreError::NotFound(format!(
            "{} with id '{}'",
            job_what(&job.name),
            job.id
        )));
    }
    if stored.version != expected_version {
        return Err(StoreError::VersionMismatch {
            what: job_what(&job.name),
            expected: expected_version,
            found: stored.version,
        });
    }
    Ok(())
}

/// The stored form of an appended event.
pub(super) fn stored_event(seq: u64, event: NewEvent) -> JobEvent {
    JobEvent {
        format_version: FORMAT_VERSION,
        seq,
        at_ms: event.at_ms,
        kind: event.kind,
        version: event.version,
        state: event.state,
        message: event.message,
        by: event.by,
    }
}

#[cfg(test)]
mod tests {
    use super::MemoryStore;
    use crate::store::fixtures;

    #[test]
    fn memory_store_conflicts() {
        fixtures::check_conflicts(&MemoryStore::new());
    }

    #[test]
    fn memory_store_basics() {
        fixtures::check_basics(&MemoryStore::new());
    }
}
