//! Durable workflow state: workflows, the scheduler's last tick per workflow, and runs.
//! [`WorkflowStore`] is the interface; [`SledWorkflowStore`] keeps its trees in the
//! master's sled database (beside the job store's, flushed before every write returns
//! `Ok`), [`MemoryWorkflowStore`] is the in-memory model it is checked against.
//!
//! | tree            | key                          | value              |
//! |-----------------|------------------------------|--------------------|
//! | `workflows`     | workflow name                | [`Workflow`]       |
//! | `workflow_ids`  | workflow id (live ones)      | workflow name      |
//! | `wf_schedule`   | workflow id                  | [`SchedulerState`] |
//! | `wf_runs`       | workflow id, `0x00`, run id  | [`WorkflowRun`]    |
//! | `wf_active`     | workflow id, `0x00`, run id  | empty: the run is queued or running |
//!
//! Runs are created by compare-and-set insert (an existing run id is left alone and
//! reported), in one transaction with the scheduler's new last tick, so a tick's run is
//! created once whatever crashes in between. Records are read and written through the
//! typed record layer ([`record`](crate::store::record)) shared with the job store.

use super::{SchedulerState, Workflow, WorkflowRun};
use crate::store::record::{abort, encode, io, tx_error, Records};
use crate::store::{SledStore, StoreError};
use sled::Transactional;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// Durable workflow state. Every method is atomic; one that returns `Ok` after a write
/// has made it durable.
pub trait WorkflowStore: Send + Sync {
    /// Creates a workflow (keyed by name) with its scheduler state. `Conflict` when a
    /// workflow of that name, or a live one with that id, exists.
    fn create_workflow(&self, wf: &Workflow, state: &SchedulerState) -> Result<(), StoreError>;
    /// Replaces a workflow if its stored version is still `expected_version`
    /// (`VersionMismatch` otherwise, `NotFound` when absent or of another id), and its
    /// scheduler state when `state` is given.
    fn update_workflow(
        &self,
        wf: &Workflow,
        expected_version: u64,
        state: Option<&SchedulerState>,
    ) -> Result<(), StoreError>;
    /// The workflow of that name.
    fn get_workflow(&self, name: &str) -> Result<Option<Workflow>, StoreError>;
    /// Every workflow, by name.
    fn list_workflows(&self) -> Result<Vec<Workflow>, StoreError>;
    /// Deletes a workflow and its scheduler state (its runs stay, keyed by its id).
    fn delete_workflow(&self, name: &str) -> Result<Option<Workflow>, StoreError>;
    /// The scheduler state of the workflow with this id.
    fn get_scheduler_state(&self, workflow_id: &str) -> Result<Option<SchedulerState>, StoreError>;
    /// Inserts every run whose id is new (an existing one is left as it is) and writes
    /// `state` when given, atomically; returns the ids inserted. `NotFound` when no live
    /// workflow has a run's (or the state's) workflow id.
    fn create_runs(
        &self,
        runs: &[WorkflowRun],
        state: Option<&SchedulerState>,
    ) -> Result<Vec<String>, StoreError>;
    /// One run.
    fn get_run(&self, workflow_id: &str, run_id: &str) -> Result<Option<WorkflowRun>, StoreError>;
    /// A workflow's runs, by logical time then run id.
    fn list_runs(&self, workflow_id: &str) -> Result<Vec<WorkflowRun>, StoreError>;
    /// Every queued or running run, by workflow id then run id.
    fn active_runs(&self) -> Result<Vec<WorkflowRun>, StoreError>;
    /// Replaces a run if its stored `rev` is still `run.rev` (`VersionMismatch`
    /// otherwise, `NotFound` when absent); returns it as stored, with `rev` bumped.
    fn update_run(&self, run: &WorkflowRun) -> Result<WorkflowRun, StoreError>;
}

fn workflow_what(name: &str) -> String {
    format!("workflow '{name}'")
}

fn workflow_id_what(id: &str) -> String {
    format!("workflow id '{id}'")
}

fn run_what(run_id: &str) -> String {
    format!("run '{run_id}'")
}

/// The version checks of `update_workflow`, shared by both stores.
fn check_update(stored: &Workflow, new: &Workflow, expected: u64) -> Result<(), StoreError> {
    if stored.id != new.id {
        return Err(StoreError::NotFound(format!(
            "workflow '{}' with id '{}'",
            new.name, new.id
        )));
    }
    if stored.version != expected {
        return Err(StoreError::VersionMismatch {
            what: workflow_what(&new.name),
            expected,
            found: stored.version,
        });
    }
    Ok(())
}

/// The rev check of `update_run`, shared by both stores; returns the record to store.
fn next_rev(stored: &WorkflowRun, new: &WorkflowRun) -> Result<WorkflowRun, StoreError> {
    if stored.rev != new.rev {
        return Err(StoreError::VersionMismatch {
            what: run_what(&new.run_id),
            expected: new.rev,
            found: stored.rev,
        });
    }
    let mut out = new.clone();
    out.rev = new.rev + 1;
    Ok(out)
}

fn sort_runs(runs: &mut [WorkflowRun]) {
    runs.sort_by(|a, b| (a.logical_time_ms, &a.run_id).cmp(&(b.logical_time_ms, &b.run_id)));
}

// ---------------------------------------------------------------- in memory

#[derive(Debug, Default)]
struct Memory {
    workflows: BTreeMap<String, Workflow>,
    ids: BTreeMap<String, String>,
    schedule: BTreeMap<String, SchedulerState>,
    runs: BTreeMap<(String, String), WorkflowRun>,
}

/// The in-memory model of the workflow store (for tests, and the reference the sled
/// store is checked against).
#[derive(Debug, Default)]
pub struct MemoryWorkflowStore {
    inner: Mutex<Memory>,
}

impl MemoryWorkflowStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Memory> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl WorkflowStore for MemoryWorkflowStore {
    fn create_workflow(&self, wf: &Workflow, state: &SchedulerState) -> Result<(), StoreError> {
        let mut m = self.lock();
        if m.workflows.contains_key(&wf.name) {
            return Err(StoreError::Conflict(workflow_what(&wf.name)));
        }
        if m.ids.contains_key(&wf.id) {
            return Err(StoreError::Conflict(workflow_id_what(&wf.id)));
        }
        m.workflows.insert(wf.name.clone(), wf.clone());
        m.ids.insert(wf.id.clone(), wf.name.clone());
        m.schedule.insert(wf.id.clone(), state.clone());
        Ok(())
    }

    fn update_workflow(
        &self,
        wf: &Workflow,
        expected_version: u64,
        state: Option<&SchedulerState>,
    ) -> Result<(), StoreError> {
        let mut m = self.lock();
        let Some(stored) = m.workflows.get(&wf.name) else {
            return Err(StoreError::NotFound(workflow_what(&wf.name)));
        };
        check_update(stored, wf, expected_version)?;
        m.workflows.insert(wf.name.clone(), wf.clone());
        if let Some(s) = state {
            m.schedule.insert(wf.id.clone(), s.clone());
        }
        Ok(())
    }

    fn get_workflow(&self, name: &str) -> Result<Option<Workflow>, StoreError> {
        Ok(self.lock().workflows.get(name).cloned())
    }

    fn list_workflows(&self) -> Result<Vec<Workflow>, StoreError> {
        Ok(self.lock().workflows.values().cloned().collect())
    }

    fn delete_workflow(&self, name: &str) -> Result<Option<Workflow>, StoreError> {
        let mut m = self.lock();
        let Some(wf) = m.workflows.remove(name) else {
            return Ok(None);
        };
        m.ids.remove(&wf.id);
        m.schedule.remove(&wf.id);
        Ok(Some(wf))
    }

    fn get_scheduler_state(&self, workflow_id: &str) -> Result<Option<SchedulerState>, StoreError> {
        Ok(self.lock().schedule.get(workflow_id).cloned())
    }

    fn create_runs(
        &self,
        runs: &[WorkflowRun],
        state: Option<&SchedulerState>,
    ) -> Result<Vec<String>, StoreError> {
        let mut m = self.lock();
        for id in runs
            .iter()
            .map(|r| &r.workflow_id)
            .chain(state.map(|s| &s.workflow_id))
        {
            if !m.ids.contains_key(id) {
                return Err(StoreError::NotFound(workflow_id_what(id)));
            }
        }
        let mut inserted = Vec::new();
        for r in runs {
            let key = (r.workflow_id.clone(), r.run_id.clone());
            if let std::collections::btree_map::Entry::Vacant(e) = m.runs.entry(key) {
                e.insert(r.clone());
                inserted.push(r.run_id.clone());
            }
        }
        if let Some(s) = state {
            m.schedule.insert(s.workflow_id.clone(), s.clone());
        }
        Ok(inserted)
    }

    fn get_run(&self, workflow_id: &str, run_id: &str) -> Result<Option<WorkflowRun>, StoreError> {
        Ok(self
            .lock()
            .runs
            .get(&(workflow_id.to_string(), run_id.to_string()))
            .cloned())
    }

    fn list_runs(&self, workflow_id: &str) -> Result<Vec<WorkflowRun>, StoreError> {
        let mut runs: Vec<WorkflowRun> = self
            .lock()
            .runs
            .values()
            .filter(|r| r.workflow_id == workflow_id)
            .cloned()
            .collect();
        sort_runs(&mut runs);
        Ok(runs)
    }

    fn active_runs(&self) -> Result<Vec<WorkflowRun>, StoreError> {
        Ok(self
            .lock()
            .runs
            .values()
            .filter(|r| !r.state.is_terminal())
            .cloned()
            .collect())
    }

    fn update_run(&self, run: &WorkflowRun) -> Result<WorkflowRun, StoreError> {
        let mut m = self.lock();
        let key = (run.workflow_id.clone(), run.run_id.clone());
        let Some(stored) = m.runs.get(&key) else {
            return Err(StoreError::NotFound(run_what(&run.run_id)));
        };
        let out = next_rev(stored, run)?;
        m.runs.insert(key, out.clone());
        Ok(out)
    }
}

// ---------------------------------------------------------------- sled

/// The workflow store in the master's sled database.
#[derive(Debug)]
pub struct SledWorkflowStore {
    db: sled::Db,
    workflows: Records<Workflow>,
    workflow_ids: sled::Tree,
    schedule: Records<SchedulerState>,
    runs: Records<WorkflowRun>,
    active: sled::Tree,
}

fn run_prefix(workflow_id: &str) -> Vec<u8> {
    let mut k = workflow_id.as_bytes().to_vec();
    k.push(0);
    k
}

fn run_key(workflow_id: &str, run_id: &str) -> Vec<u8> {
    let mut k = run_prefix(workflow_id);
    k.extend_from_slice(run_id.as_bytes());
    k
}

impl SledWorkflowStore {
    /// Opens (or creates) the workflow trees in `store`'s database.
    pub fn open(store: &SledStore) -> Result<SledWorkflowStore, StoreError> {
        let db = store.db().clone();
        let tree = |name: &str| db.open_tree(name).map_err(io);
        Ok(SledWorkflowStore {
            workflows: Records::open(&db, "workflows")?,
            workflow_ids: tree("workflow_ids")?,
            schedule: Records::open(&db, "wf_schedule")?,
            runs: Records::open(&db, "wf_runs")?,
            active: tree("wf_active")?,
            db,
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(io)
    }
}

impl WorkflowStore for SledWorkflowStore {
    fn create_workflow(&self, wf: &Workflow, state: &SchedulerState) -> Result<(), StoreError> {
        let wf_bytes = encode(wf)?;
        let state_bytes = encode(state)?;
        (
            self.workflows.tree(),
            &self.workflow_ids,
            self.schedule.tree(),
        )
            .transaction(|(workflows, ids, schedule)| {
                if workflows.get(wf.name.as_bytes())?.is_some() {
                    return Err(abort(StoreError::Conflict(workflow_what(&wf.name))));
                }
                if ids.get(wf.id.as_bytes())?.is_some() {
                    return Err(abort(StoreError::Conflict(workflow_id_what(&wf.id))));
                }
                workflows.insert(wf.name.as_bytes(), wf_bytes.as_slice())?;
                ids.insert(wf.id.as_bytes(), wf.name.as_bytes())?;
                schedule.insert(wf.id.as_bytes(), state_bytes.as_slice())?;
                Ok(())
            })
            .map_err(tx_error)?;
        self.flush()
    }

    fn update_workflow(
        &self,
        wf: &Workflow,
        expected_version: u64,
        state: Option<&SchedulerState>,
    ) -> Result<(), StoreError> {
        let wf_bytes = encode(wf)?;
        let state_bytes = state.map(encode).transpose()?;
        (self.workflows.tree(), self.schedule.tree())
            .transaction(|(workflows, schedule)| {
                let Some(bytes) = workflows.get(wf.name.as_bytes())? else {
                    return Err(abort(StoreError::NotFound(workflow_what(&wf.name))));
                };
                let stored = self
                    .workflows
                    .decode(wf.name.as_bytes(), &bytes)
                    .map_err(abort)?;
                check_update(&stored, wf, expected_version).map_err(abort)?;
                workflows.insert(wf.name.as_bytes(), wf_bytes.as_slice())?;
                if let Some(s) = &state_bytes {
                    schedule.insert(wf.id.as_bytes(), s.as_slice())?;
                }
                Ok(())
            })
            .map_err(tx_error)?;
        self.flush()
    }

    fn get_workflow(&self, name: &str) -> Result<Option<Workflow>, StoreError> {
        self.workflows.read(name.as_bytes())
    }

    fn list_workflows(&self) -> Result<Vec<Workflow>, StoreError> {
        self.workflows.read_all()
    }

    fn delete_workflow(&self, name: &str) -> Result<Option<Workflow>, StoreError> {
        let deleted = (
            self.workflows.tree(),
            &self.workflow_ids,
            self.schedule.tree(),
        )
            .transaction(|(workflows, ids, schedule)| {
                let Some(bytes) = workflows.get(name.as_bytes())? else {
                    return Ok(None);
                };
                let wf = self
                    .workflows
                    .decode(name.as_bytes(), &bytes)
                    .map_err(abort)?;
                workflows.remove(name.as_bytes())?;
                ids.remove(wf.id.as_bytes())?;
                schedule.remove(wf.id.as_bytes())?;
                Ok(Some(wf))
            })
            .map_err(tx_error)?;
        if deleted.is_some() {
            self.flush()?;
        }
        Ok(deleted)
    }

    fn get_scheduler_state(&self, workflow_id: &str) -> Result<Option<SchedulerState>, StoreError> {
        self.schedule.read(workflow_id.as_bytes())
    }

    fn create_runs(
        &self,
        runs: &[WorkflowRun],
        state: Option<&SchedulerState>,
    ) -> Result<Vec<String>, StoreError> {
        let encoded: Vec<(Vec<u8>, Vec<u8>, bool)> = runs
            .iter()
            .map(|r| {
                Ok((
                    run_key(&r.workflow_id, &r.run_id),
                    encode(r)?,
                    !r.state.is_terminal(),
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        let state_bytes = state.map(encode).transpose()?;
        let inserted = (
            &self.workflow_ids,
            self.schedule.tree(),
            self.runs.tree(),
            &self.active,
        )
            .transaction(|(ids, schedule, stored_runs, active)| {
                for id in runs
                    .iter()
                    .map(|r| &r.workflow_id)
                    .chain(state.map(|s| &s.workflow_id))
                {
                    if ids.get(id.as_bytes())?.is_none() {
                        return Err(abort(StoreError::NotFound(workflow_id_what(id))));
                    }
                }
                let mut inserted = Vec::new();
                for (r, (key, bytes, is_active)) in runs.iter().zip(&encoded) {
                    if stored_runs.get(key.as_slice())?.is_some() {
                        continue;
                    }
                    stored_runs.insert(key.as_slice(), bytes.as_slice())?;
                    if *is_active {
                        active.insert(key.as_slice(), &[] as &[u8])?;
                    }
                    inserted.push(r.run_id.clone());
                }
                if let (Some(s), Some(bytes)) = (state, &state_bytes) {
                    schedule.insert(s.workflow_id.as_bytes(), bytes.as_slice())?;
                }
                Ok(inserted)
            })
            .map_err(tx_error)?;
        self.flush()?;
        Ok(inserted)
    }

    fn get_run(&self, workflow_id: &str, run_id: &str) -> Result<Option<WorkflowRun>, StoreError> {
        self.runs.read(&run_key(workflow_id, run_id))
    }

    fn list_runs(&self, workflow_id: &str) -> Result<Vec<WorkflowRun>, StoreError> {
        let mut runs = Vec::new();
        for (_, run) in self.runs.read_prefix(&run_prefix(workflow_id))? {
            // An id holding `0x00` could share the prefix: keep this workflow's only.
            if run.workflow_id == workflow_id {
                runs.push(run);
            }
        }
        sort_runs(&mut runs);
        Ok(runs)
    }

    fn active_runs(&self) -> Result<Vec<WorkflowRun>, StoreError> {
        let mut runs = Vec::new();
        for e in self.active.iter() {
            let (k, _) = e.map_err(io)?;
            runs.extend(self.runs.read(&k)?);
        }
        Ok(runs)
    }

    fn update_run(&self, run: &WorkflowRun) -> Result<WorkflowRun, StoreError> {
        let key = run_key(&run.workflow_id, &run.run_id);
        let out = (self.runs.tree(), &self.active)
            .transaction(|(runs, active)| {
                let Some(bytes) = runs.get(key.as_slice())? else {
                    return Err(abort(StoreError::NotFound(run_what(&run.run_id))));
                };
                let stored = self.runs.decode(&key, &bytes).map_err(abort)?;
                let out = next_rev(&stored, run).map_err(abort)?;
                let body = encode(&out).map_err(abort)?;
                runs.insert(key.as_slice(), body)?;
                if out.state.is_terminal() {
                    active.remove(key.as_slice())?;
                } else {
                    active.insert(key.as_slice(), &[] as &[u8])?;
                }
                Ok(out)
            })
            .map_err(tx_error)?;
        self.flush()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Resources, FORMAT_VERSION};
    use crate::workflow::runs::new_run;
    use crate::workflow::{
        CatchupPolicy, ConcurrencyPolicy, RunState, RunTrigger, ScheduleSpec, TaskSpec,
        WorkflowSpec,
    };

    fn wf(name: &str, id: &str, version: u64) -> Workflow {
        Workflow {
            format_version: FORMAT_VERSION,
            id: id.to_string(),
            name: name.to_string(),
            version,
            spec: WorkflowSpec {
                schedule: ScheduleSpec {
                    cron: "* * * * *".into(),
                    timezone: "UTC".into(),
                },
                tasks: vec![TaskSpec {
                    id: "t".into(),
                    sql: "x".into(),
                    depends_on: vec![],
                    retries: 0,
                    retry_backoff_ms: 0,
                    timeout_ms: None,
                    resources: Resources::default(),
                }],
                parameters: BTreeMap::new(),
                concurrency: ConcurrencyPolicy::Skip,
                catchup: CatchupPolicy::All,
                enabled: true,
                cluster: "local".into(),
            },
            created_at_ms: 1,
            updated_at_ms: 1,
            run_key: "k".into(),
        }
    }

    fn state(id: &str, last: i64) -> SchedulerState {
        SchedulerState {
            format_version: FORMAT_VERSION,
            workflow_id: id.to_string(),
            last_tick_ms: last,
        }
    }

    fn run(w: &Workflow, tick: i64) -> WorkflowRun {
        new_run(
            w,
            crate::workflow::run_id(w, tick),
            RunTrigger::Scheduled,
            tick,
            &BTreeMap::new(),
            RunState::Queued,
            tick,
        )
    }

    /// The same checks for both stores.
    fn check(store: &dyn WorkflowStore) {
        let a = wf("a", "w1", 1);
        store.create_workflow(&a, &state("w1", 0)).unwrap();
        assert_eq!(
            store.create_workflow(&wf("a", "w2", 1), &state("w2", 0)),
            Err(StoreError::Conflict("workflow 'a'".into()))
        );
        assert_eq!(
            store.create_workflow(&wf("b", "w1", 1), &state("w1", 0)),
            Err(StoreError::Conflict("workflow id 'w1'".into()))
        );
        store.update_workflow(&wf("a", "w1", 2), 1, None).unwrap();
        assert!(matches!(
            store.update_workflow(&wf("a", "w1", 3), 1, None),
            Err(StoreError::VersionMismatch { .. })
        ));
        assert_eq!(store.get_workflow("a").unwrap().unwrap().version, 2);
        // Runs: compare-and-set insert with the new last tick, atomically.
        let r1 = run(&a, 60_000);
        let r2 = run(&a, 120_000);
        assert_eq!(
            store
                .create_runs(&[r1.clone(), r2.clone()], Some(&state("w1", 120_000)))
                .unwrap(),
            [r1.run_id.clone(), r2.run_id.clone()]
        );
        let again = run(&a, 120_000);
        assert_eq!(
            store
                .create_runs(&[again], Some(&state("w1", 120_000)))
                .unwrap(),
            Vec::<String>::new()
        );
        assert_eq!(
            store.get_scheduler_state("w1").unwrap(),
            Some(state("w1", 120_000))
        );
        assert_eq!(
            store.create_runs(&[run(&wf("z", "w9", 1), 1000)], None),
            Err(StoreError::NotFound("workflow id 'w9'".into()))
        );
        // Updates by rev; terminal runs leave the active set.
        let stored = store.update_run(&r1).unwrap();
        assert_eq!(stored.rev, 1);
        assert!(matches!(
            store.update_run(&r1),
            Err(StoreError::VersionMismatch { .. })
        ));
        let mut done = stored.clone();
        done.state = RunState::Succeeded;
        store.update_run(&done).unwrap();
        let active: Vec<String> = store
            .active_runs()
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        assert_eq!(active, std::slice::from_ref(&r2.run_id));
        let listed: Vec<(String, u64)> = store
            .list_runs("w1")
            .unwrap()
            .into_iter()
            .map(|r| (r.run_id, r.rev))
            .collect();
        assert_eq!(listed, [(r1.run_id.clone(), 2), (r2.run_id.clone(), 0)]);
        assert_eq!(store.get_run("w1", &r2.run_id).unwrap(), Some(r2.clone()));
        assert_eq!(store.get_run("w1", "nope").unwrap(), None);
        // Deleting keeps the runs, drops the state.
        assert_eq!(
            store.delete_workflow("a").unwrap().map(|w| w.version),
            Some(2)
        );
        assert_eq!(store.get_scheduler_state("w1").unwrap(), None);
        assert_eq!(store.list_runs("w1").unwrap().len(), 2);
        assert_eq!(store.delete_workflow("a").unwrap(), None);
        assert!(store.list_workflows().unwrap().is_empty());
    }

    #[test]
    fn workflow_memory_store_behaves() {
        check(&MemoryWorkflowStore::new());
    }

    #[test]
    fn workflow_sled_store_behaves_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let sled = SledStore::open(dir.path()).unwrap();
            check(&SledWorkflowStore::open(&sled).unwrap());
        }
        let sled = SledStore::open(dir.path()).unwrap();
        let store = SledWorkflowStore::open(&sled).unwrap();
        let runs = store.list_runs("w1").unwrap();
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].state, RunState::Succeeded);
        assert_eq!(store.active_runs().unwrap().len(), 1);
        // A new workflow, its state and runs, after a reopen.
        let b = wf("b", "w2", 1);
        store.create_workflow(&b, &state("w2", 5)).unwrap();
        store
            .create_runs(&[run(&b, 1000)], Some(&state("w2", 1000)))
            .unwrap();
        drop(store);
        drop(sled);
        let sled = SledStore::open(dir.path()).unwrap();
        let store = SledWorkflowStore::open(&sled).unwrap();
        assert_eq!(store.get_workflow("b").unwrap(), Some(b));
        assert_eq!(
            store.get_scheduler_state("w2").unwrap(),
            Some(state("w2", 1000))
        );
        assert_eq!(store.list_runs("w2").unwrap().len(), 1);
    }
}
