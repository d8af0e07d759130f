//! The sled-backed [`Store`]: one tree per kind of record, JSON values, multi-tree
//! transactions where a method touches more than one tree, and a `flush()` (fsync)
//! before every write returns `Ok`.
//!
//! | tree      | key                                   | value        |
//! |-----------|---------------------------------------|--------------|
//! | `jobs`    | job name                              | [`Job`]      |
//! | `job_ids` | job id (live jobs only)               | job name     |
//! | `status`  | job id                                | [`JobStatus`]|
//! | `events`  | job id, `0x00`, seq (8 bytes, BE)     | [`JobEvent`] |
//! | `tables`  | lower-cased table name                | [`StoredTable`] |
//!
//! Records are read and written through the typed record layer
//! ([`record`](super::record)), shared with the workflow store.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use sled::Transactional;

use super::memory::{check_update, stored_event};
use super::record::{abort, decode, encode, io, tx_error, Records};
use super::{job_id_what, job_what, table_what, NewEvent, Store, StoreError};
use crate::model::{Job, JobEvent, JobStatus, StoredTable};

/// On-disk store (sled). Only one process may open a directory at a time (sled locks
/// it); within the process the value is shared (`&self` methods, `Send + Sync`).
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    jobs: Records<Job>,
    job_ids: sled::Tree,
    status: Records<JobStatus>,
    events: Records<JobEvent>,
    tables: Records<StoredTable>,
    /// Serializes appends, so two appends to one job never get the same seq.
    append_lock: Mutex<()>,
}

impl SledStore {
    /// Opens (or creates) the store in directory `path`.
    pub fn open(path: &Path) -> Result<SledStore, StoreError> {
        let db = sled::Config::new().path(path).open().map_err(io)?;
        Ok(SledStore {
            jobs: Records::open(&db, "jobs")?,
            job_ids: db.open_tree("job_ids").map_err(io)?,
            status: Records::open(&db, "status")?,
            events: Records::open(&db, "events")?,
            tables: Records::open(&db, "tables")?,
            db,
            append_lock: Mutex::new(()),
        })
    }

    /// The sled database, so other stores can keep their own trees in it (the
    /// workflow store does): one directory, one lock, one flush.
    pub fn db(&self) -> &sled::Db {
        &self.db
    }

    /// Makes every write so far durable.
    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(io)
    }

    fn lock_appends(&self) -> MutexGuard<'_, ()> {
        // The lock guards no data, so a poisoned one is as good as any.
        self.append_lock.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The key prefix of a job's events.
fn event_prefix(job_id: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(job_id.len() + 1);
    prefix.extend_from_slice(job_id.as_bytes());
    prefix.push(0);
    prefix
}

/// The key of a job's event.
fn event_key(job_id: &str, seq: u64) -> Vec<u8> {
    let mut key = event_prefix(job_id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The seq of an event key under `prefix`, when the key is one of that job's (an id
/// holding `0x00` can make another job's keys share the prefix, never the length).
fn event_seq(prefix: &[u8], key: &[u8]) -> Option<u64> {
    if key.len() != prefix.len() + 8 || !key.starts_with(prefix) {
        return None;
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&key[prefix.len()..]);
    Some(u64::from_be_bytes(seq))
}

impl Store for SledStore {
    fn create_job(&self, job: &Job, status: &JobStatus) -> Result<(), StoreError> {
        let job_bytes = encode(job)?;
        let status_bytes = encode(status)?;
        (self.jobs.tree(), &self.job_ids, self.status.tree())
            .transaction(|(jobs, job_ids, statuses)| {
                if jobs.get(job.name.as_bytes())?.is_some() {
                    return Err(abort(StoreError::Conflict(job_what(&job.name))));
                }
                if job_ids.get(job.id.as_bytes())?.is_some() {
                    return Err(abort(StoreError::Conflict(job_id_what(&job.id))));
                }
                jobs.insert(job.name.as_bytes(), job_bytes.as_slice())?;
                job_ids.insert(job.id.as_bytes(), job.name.as_bytes())?;
                statuses.insert(job.id.as_bytes(), status_bytes.as_slice())?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.flush()
    }

    fn update_job(&self, job: &Job, expected_version: u64) -> Result<(), StoreError> {
        let job_bytes = encode(job)?;
        self.jobs
            .transaction(|jobs| {
                let Some(bytes) = jobs.get(job.name.as_bytes())? else {
                    return Err(abort(StoreError::NotFound(job_what(&job.name))));
                };
                let stored = self
                    .jobs
                    .decode(job.name.as_bytes(), &bytes)
                    .map_err(abort)?;
                check_update(&stored, job, expected_version).map_err(abort)?;
                jobs.insert(job.name.as_bytes(), job_bytes.as_slice())?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.flush()
    }

    fn get_job(&self, name: &str) -> Result<Option<Job>, StoreError> {
        self.jobs.read(name.as_bytes())
    }

    fn list_jobs(&self) -> Result<Vec<Job>, StoreError> {
        self.jobs.read_all()
    }

    fn delete_job(&self, name: &str) -> Result<Option<Job>, StoreError> {
        let deleted = (self.jobs.tree(), &self.job_ids, self.status.tree())
            .transaction(|(jobs, job_ids, statuses)| {
                let Some(bytes) = jobs.get(name.as_bytes())? else {
                    return Ok(None);
                };
                let job = self.jobs.decode(name.as_bytes(), &bytes).map_err(abort)?;
                jobs.remove(name.as_bytes())?;
                job_ids.remove(job.id.as_bytes())?;
                statuses.remove(job.id.as_bytes())?;
                Ok(Some(job))
            })
            .map_err(tx_error)?;
        if deleted.is_some() {
            self.flush()?;
        }
        Ok(deleted)
    }

    fn get_status(&self, job_id: &str) -> Result<Option<JobStatus>, StoreError> {
        self.status.read(job_id.as_bytes())
    }

    fn put_status(&self, status: &JobStatus) -> Result<(), StoreError> {
        let status_bytes = encode(status)?;
        let id = status.job_id.as_bytes();
        (&self.job_ids, self.status.tree())
            .transaction(|(job_ids, statuses)| {
                if job_ids.get(id)?.is_none() {
                    return Err(abort(StoreError::NotFound(job_id_what(&status.job_id))));
                }
                statuses.insert(id, status_bytes.as_slice())?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.flush()
    }

    fn append_event(&self, job_id: &str, event: NewEvent) -> Result<JobEvent, StoreError> {
        let _appending = self.lock_appends();
        let prefix = event_prefix(job_id);
        let mut last = 0;
        for entry in self.events.scan_prefix(&prefix).rev() {
            let (key, _) = entry.map_err(io)?;
            if let Some(seq) = event_seq(&prefix, &key) {
                last = seq;
                break;
            }
        }
        let stored = stored_event(last + 1, event);
        self.events.put(&event_key(job_id, stored.seq), &stored)?;
        self.flush()?;
        Ok(stored)
    }

    fn list_events(
        &self,
        job_id: &str,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<JobEvent>, StoreError> {
        let Some(first) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let prefix = event_prefix(job_id);
        let mut events = Vec::new();
        for entry in self.events.range(event_key(job_id, first)..) {
            if events.len() >= limit {
                break;
            }
            let (key, value) = entry.map_err(io)?;
            if !key.starts_with(&prefix) {
                break;
            }
            let Some(seq) = event_seq(&prefix, &key) else {
                continue;
            };
            let event: JobEvent = decode(&format!("events/{job_id}/{seq}"), &value)?;
            events.push(event);
        }
        Ok(events)
    }

    fn create_table(&self, table: &StoredTable) -> Result<(), StoreError> {
        let key = table.descriptor.name.to_lowercase();
        if !self.tables.create(key.as_bytes(), table)? {
            return Err(StoreError::Conflict(table_what(&table.descriptor.name)));
        }
        self.flush()
    }

    fn get_table(&self, name: &str) -> Result<Option<StoredTable>, StoreError> {
        self.tables.read(name.to_lowercase().as_bytes())
    }

    fn list_tables(&self) -> Result<Vec<StoredTable>, StoreError> {
        self.tables.read_all()
    }

    fn delete_table(&self, name: &str) -> Result<bool, StoreError> {
        let removed = self
            .tables
            .remove(name.to_lowercase().as_bytes())
            .map_err(io)?
            .is_some();
        if removed {
            self.flush()?;
        }
        Ok(removed)
    }

    fn next_id(&self) -> Result<u64, StoreError> {
        // No flush needed: sled persists its id counter itself (with a blocking fsync
        // every `idgen_persist_interval` ids, and it skips ahead 2x that on recovery),
        // so an id is never handed out twice, across crashes included.
        Ok(self.db.generate_id().map_err(io)? + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::SledStore;
    use crate::model::{Job, JobEvent, JobState, JobStatus, StoredTable};
    use crate::store::fixtures::{self, event, job, status, table};
    use crate::store::{MemoryStore, Store, StoreError};
    use proptest::prelude::*;

    /// Opens the store; right after a drop, sled's background flusher may still hold
    /// the directory lock for a moment, so a reopen retries briefly.
    fn open(dir: &tempfile::TempDir) -> SledStore {
        let mut last = None;
        for _ in 0..100 {
            match SledStore::open(dir.path()) {
                Ok(s) => return s,
                Err(e) => last = Some(e),
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("cannot open the store: {last:?}")
    }

    #[test]
    fn sled_store_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        fixtures::check_conflicts(&open(&dir));
    }

    #[test]
    fn sled_store_basics() {
        let dir = tempfile::tempdir().unwrap();
        fixtures::check_basics(&open(&dir));
    }

    #[test]
    fn sled_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let last_id;
        {
            let store = open(&dir);
            store
                .create_job(
                    &job("a", "j1", 1, "s1"),
                    &status("j1", JobState::Pending, 0),
                )
                .unwrap();
            store
                .create_job(&job("b", "j2", 1, "s"), &status("j2", JobState::Pending, 0))
                .unwrap();
            store.update_job(&job("a", "j1", 2, "s2"), 1).unwrap();
            store
                .put_status(&status("j1", JobState::Running, 2))
                .unwrap();
            store.delete_job("b").unwrap();
            store.append_event("j1", event("created", 1)).unwrap();
            store.append_event("j1", event("updated", 2)).unwrap();
            store.append_event("j2", event("created", 1)).unwrap();
            store.create_table(&table("Orders")).unwrap();
            store.create_table(&table("gone")).unwrap();
            store.delete_table("GONE").unwrap();
            store.next_id().unwrap();
            last_id = store.next_id().unwrap();
        }
        let store = open(&dir);
        assert_eq!(store.list_jobs().unwrap(), vec![job("a", "j1", 2, "s2")]);
        assert_eq!(
            store.get_status("j1").unwrap(),
            Some(status("j1", JobState::Running, 2))
        );
        assert_eq!(store.get_status("j2").unwrap(), None);
        let seqs = |id| -> Vec<u64> {
            store
                .list_events(id, 0, 100)
                .unwrap()
                .iter()
                .map(|e| e.seq)
                .collect()
        };
        assert_eq!(seqs("j1"), [1, 2]);
        assert_eq!(seqs("j2"), [1]);
        assert_eq!(store.append_event("j1", event("state", 2)).unwrap().seq, 3);
        assert_eq!(store.append_event("j2", event("state", 1)).unwrap().seq, 2);
        assert_eq!(store.list_tables().unwrap(), vec![table("Orders")]);
        assert_eq!(store.get_table("orders").unwrap(), Some(table("Orders")));
        assert!(store.next_id().unwrap() > last_id);
        // The deleted job's id is free again; its name too.
        store
            .create_job(
                &job("b", "j2", 1, "again"),
                &status("j2", JobState::Pending, 0),
            )
            .unwrap();
    }

    /// A record as JSON with another `format_version`.
    fn with_format<T: serde::Serialize>(record: &T, format: u64) -> Vec<u8> {
        let mut value = serde_json::to_value(record).unwrap();
        value["format_version"] = format.into();
        serde_json::to_vec(&value).unwrap()
    }

    fn corrupt_key(result: Result<impl std::fmt::Debug, StoreError>) -> (String, String) {
        match result {
            Err(StoreError::Corrupt { key, message }) => (key, message),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn sled_store_reports_unreadable_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        let newer = "written by a newer master (format 99)";

        // A job from a newer master.
        store
            .jobs
            .insert("a", with_format(&job("a", "j1", 1, "s"), 99))
            .unwrap();
        store.job_ids.insert("j1", "a").unwrap();
        assert_eq!(
            corrupt_key(store.get_job("a")),
            ("jobs/a".into(), newer.into())
        );
        assert_eq!(
            corrupt_key(store.list_jobs()),
            ("jobs/a".into(), newer.into())
        );
        assert_eq!(
            corrupt_key(store.update_job(&job("a", "j1", 2, "s"), 1)),
            ("jobs/a".into(), newer.into())
        );
        assert_eq!(
            corrupt_key(store.delete_job("a")),
            ("jobs/a".into(), newer.into())
        );
        // Nothing was removed by the failed delete.
        assert!(store.jobs.get("a").unwrap().is_some());

        // Garbage bytes: the JSON error.
        store.status.insert("j1", &b"\x00\xffnot json"[..]).unwrap();
        let (key, message) = corrupt_key(store.get_status("j1"));
        assert_eq!(key, "status/j1");
        assert!(message.contains("line 1"), "{message}");

        // Valid JSON of the wrong shape.
        store
            .tables
            .insert("t", &br#"{"format_version": 1, "ddl": 3}"#[..])
            .unwrap();
        let (key, message) = corrupt_key(store.get_table("T"));
        assert_eq!(key, "tables/t");
        assert!(message.contains("invalid type"), "{message}");
        assert_eq!(corrupt_key(store.list_tables()).0, "tables/t");

        // An event from a newer master.
        let future: JobEvent = crate::store::memory::stored_event(1, event("created", 1));
        store
            .events
            .insert(super::event_key("j1", 1), with_format(&future, 99))
            .unwrap();
        assert_eq!(
            corrupt_key(store.list_events("j1", 0, 10)),
            ("events/j1/1".into(), newer.into())
        );
        // Past it, the list is readable; appends continue after it.
        assert_eq!(store.list_events("j1", 1, 10).unwrap(), vec![]);
        assert_eq!(store.append_event("j1", event("state", 1)).unwrap().seq, 2);
    }

    #[test]
    fn sled_store_event_ids_sharing_a_prefix_stay_apart() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir);
        // "j"'s key prefix ("j\0") is also a prefix of every key of "j\u{0}1".
        for _ in 0..3 {
            store.append_event("j\u{0}1", event("created", 1)).unwrap();
        }
        assert_eq!(store.append_event("j", event("created", 1)).unwrap().seq, 1);
        assert_eq!(store.list_events("j", 0, 10).unwrap().len(), 1);
        assert_eq!(store.list_events("j\u{0}1", 0, 10).unwrap().len(), 3);
    }

    // ---- model check: the sled store behaves exactly like the memory store ----

    const NAMES: [&str; 3] = ["a", "b", "c"];
    const IDS: [&str; 4] = ["j1", "j2", "j", "j\u{0}1"];
    const TABLES: [&str; 5] = ["t", "T", "u", "Orders", "ORDERS"];
    const STATES: [JobState; 4] = [
        JobState::Pending,
        JobState::Running,
        JobState::Failed,
        JobState::Stopped,
    ];

    /// An operation as generated; `None` fields are resolved against the model's
    /// current state (the stored id, the stored version) so updates often succeed.
    #[derive(Clone, Debug)]
    enum Op {
        CreateJob {
            name: usize,
            id: usize,
            sql: u8,
        },
        UpdateJob {
            name: usize,
            id: Option<usize>,
            expected: Option<u64>,
            sql: u8,
        },
        GetJob(usize),
        ListJobs,
        DeleteJob(usize),
        GetStatus(usize),
        PutStatus {
            id: usize,
            state: usize,
            restarts: u64,
        },
        AppendEvent {
            id: usize,
            kind: u8,
        },
        ListEvents {
            id: usize,
            after: u64,
            limit: usize,
        },
        CreateTable(usize),
        GetTable(usize),
        ListTables,
        DeleteTable(usize),
        NextId,
    }

    fn op() -> impl Strategy<Value = Op> {
        let name = 0..NAMES.len();
        let id = 0..IDS.len();
        let tbl = 0..TABLES.len();
        prop_oneof![
            3 => (name.clone(), id.clone(), any::<u8>())
                .prop_map(|(name, id, sql)| Op::CreateJob { name, id, sql }),
            3 => (
                name.clone(),
                prop::option::weighted(0.2, id.clone()),
                prop::option::weighted(0.3, 0..4u64),
                any::<u8>()
            )
                .prop_map(|(name, id, expected, sql)| Op::UpdateJob { name, id, expected, sql }),
            1 => name.clone().prop_map(Op::GetJob),
            1 => Just(Op::ListJobs),
            1 => name.prop_map(Op::DeleteJob),
            1 => id.clone().prop_map(Op::GetStatus),
            2 => (id.clone(), 0..STATES.len(), 0..5u64)
                .prop_map(|(id, state, restarts)| Op::PutStatus { id, state, restarts }),
            3 => (id.clone(), any::<u8>()).prop_map(|(id, kind)| Op::AppendEvent { id, kind }),
            2 => (id, 0..5u64, 0..5usize)
                .prop_map(|(id, after, limit)| Op::ListEvents { id, after, limit }),
            2 => tbl.clone().prop_map(Op::CreateTable),
            1 => tbl.clone().prop_map(Op::GetTable),
            1 => Just(Op::ListTables),
            1 => tbl.prop_map(Op::DeleteTable),
            1 => Just(Op::NextId),
        ]
    }

    /// What an operation returned.
    #[derive(Debug, PartialEq)]
    enum Outcome {
        Unit(Result<(), StoreError>),
        Job(Result<Option<Job>, StoreError>),
        Jobs(Result<Vec<Job>, StoreError>),
        Status(Result<Option<JobStatus>, StoreError>),
        Event(Result<JobEvent, StoreError>),
        Events(Result<Vec<JobEvent>, StoreError>),
        Table(Result<Option<StoredTable>, StoreError>),
        Tables(Result<Vec<StoredTable>, StoreError>),
        Deleted(Result<bool, StoreError>),
        /// `next_id` (compared for monotonicity only).
        Id(Result<u64, StoreError>),
    }

    /// An operation with everything resolved: applied verbatim to both stores.
    #[derive(Debug)]
    enum Concrete {
        CreateJob(Job, JobStatus),
        UpdateJob(Job, u64),
        Op(Op),
    }

    fn resolve(op: Op, model: &MemoryStore) -> Concrete {
        match op {
            Op::CreateJob { name, id, sql } => Concrete::CreateJob(
                job(NAMES[name], IDS[id], 1, &format!("sql {sql}")),
                JobStatus::new(IDS[id], 1, 0),
            ),
            Op::UpdateJob {
                name,
                id,
                expected,
                sql,
            } => {
                let stored = model.get_job(NAMES[name]).unwrap();
                let id = match (id, &stored) {
                    (Some(i), _) => IDS[i].to_string(),
                    (None, Some(job)) => job.id.clone(),
                    (None, None) => IDS[0].to_string(),
                };
                let expected =
                    expected.unwrap_or_else(|| stored.as_ref().map_or(1, |job| job.version));
                Concrete::UpdateJob(
                    job(NAMES[name], &id, expected + 1, &format!("sql {sql}")),
                    expected,
                )
            }
            other => Concrete::Op(other),
        }
    }

    fn apply(store: &dyn Store, op: &Concrete) -> Outcome {
        match op {
            Concrete::CreateJob(job, status) => Outcome::Unit(store.create_job(job, status)),
            Concrete::UpdateJob(job, expected) => Outcome::Unit(store.update_job(job, *expected)),
            Concrete::Op(op) => match op {
                Op::CreateJob { .. } | Op::UpdateJob { .. } => unreachable!("resolved"),
                Op::GetJob(n) => Outcome::Job(store.get_job(NAMES[*n])),
                Op::ListJobs => Outcome::Jobs(store.list_jobs()),
                Op::DeleteJob(n) => Outcome::Job(store.delete_job(NAMES[*n])),
                Op::GetStatus(i) => Outcome::Status(store.get_status(IDS[*i])),
                Op::PutStatus {
                    id,
                    state,
                    restarts,
                } => Outcome::Unit(store.put_status(&status(IDS[*id], STATES[*state], *restarts))),
                Op::AppendEvent { id, kind } => {
                    Outcome::Event(store.append_event(IDS[*id], event(&format!("k{kind}"), 1)))
                }
                Op::ListEvents { id, after, limit } => {
                    Outcome::Events(store.list_events(IDS[*id], *after, *limit))
                }
                Op::CreateTable(t) => Outcome::Unit(store.create_table(&table(TABLES[*t]))),
                Op::GetTable(t) => Outcome::Table(store.get_table(TABLES[*t])),
                Op::ListTables => Outcome::Tables(store.list_tables()),
                Op::DeleteTable(t) => Outcome::Deleted(store.delete_table(TABLES[*t])),
                Op::NextId => Outcome::Id(store.next_id()),
            },
        }
    }

    /// Everything a store holds, as far as the generated ops can reach it.
    fn snapshot(store: &dyn Store) -> Vec<Outcome> {
        let mut all = vec![
            Outcome::Jobs(store.list_jobs()),
            Outcome::Tables(store.list_tables()),
        ];
        for id in IDS {
            all.push(Outcome::Status(store.get_status(id)));
            all.push(Outcome::Events(store.list_events(id, 0, usize::MAX)));
        }
        all
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn sled_store_matches_memory_model(ops in prop::collection::vec(op(), 1..40)) {
            let dir = tempfile::tempdir().unwrap();
            let model = MemoryStore::new();
            let sled = open(&dir);
            let (mut model_id, mut sled_id) = (0, 0);
            for (step, op) in ops.into_iter().enumerate() {
                let op = resolve(op, &model);
                let expected = apply(&model, &op);
                let actual = apply(&sled, &op);
                match (expected, actual) {
                    (Outcome::Id(Ok(m)), Outcome::Id(Ok(s))) => {
                        prop_assert!(m > model_id && s > sled_id, "ids not increasing at step {step}");
                        (model_id, sled_id) = (m, s);
                    }
                    (expected, actual) => {
                        prop_assert_eq!(expected, actual, "step {}: {:?}", step, op);
                    }
                }
            }
            prop_assert_eq!(snapshot(&model), snapshot(&sled));
            // And all of it is still there after a restart.
            drop(sled);
            let sled = open(&dir);
            prop_assert_eq!(snapshot(&model), snapshot(&sled));
            prop_assert!(sled.next_id().unwrap() > sled_id);
        }
    }
}
