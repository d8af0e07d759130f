//! Where jobs' checkpoints live: `<root>/<job id>/`, under the master's data directory
//! by default (`<data dir>/checkpoints`, private to this master) or under a store given
//! with `sluice serve --checkpoint-store DIR|URL` (a shared directory or an object-store
//! URL), which several masters may share. In a shared store a job's directory is
//! `<root>/<data directory id>-<job id>`: job ids count from 1 in every data directory,
//! so the id of the data directory (a random id written when it is created, and kept by
//! copies of it) tells different masters' jobs apart, while a copy of a data directory
//! (a standby) finds its jobs' checkpoints. The master names each job's directory in the
//! worker request and reads its records for `GET /api/v1/jobs/{name}/commits`; the
//! worker writes them (`sluice_dataflow::checkpoint`).

use sluice_connectors::checkpoint_store::{all_savepoints, latest_record};
use sluice_connectors::ObjectDir;
use std::collections::BTreeSet;

/// The root of the jobs' checkpoint directories.
#[derive(Clone, Debug)]
pub struct CheckpointStore {
    /// A local directory or an object-store URL, without a trailing `/`.
    root: String,
    /// `None` when the root is this master's own (under its data directory): every
    /// directory in it belongs to one of its jobs. In a shared root, the data
    /// directory's id, which prefixes its jobs' directories.
    owner: Option<String>,
}

impl CheckpointStore {
    /// The default: a directory only this master uses.
    pub fn private(dir: &std::path::Path) -> CheckpointStore {
        CheckpointStore {
            root: dir.display().to_string(),
            owner: None,
        }
    }

    /// A store given by the operator (a local directory or a `s3://`, `gs://`, `az://`
    /// or `file://` URL), possibly shared with other masters; `data_dir_id` is the id
    /// of this master's data directory.
    pub fn shared(root: &str, data_dir_id: &str) -> CheckpointStore {
        let trimmed = root.trim_end_matches('/');
        CheckpointStore {
            root: if trimmed.is_empty() { root } else { trimmed }.to_string(),
            owner: Some(data_dir_id.to_string()),
        }
    }

    /// The root as given.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The name of job `job_id`'s directory in the root.
    fn dir_name(&self, job_id: &str) -> String {
        match &self.owner {
            None => job_id.to_string(),
            Some(owner) => format!("{owner}-{job_id}"),
        }
    }

    /// The directory of job `job_id`'s checkpoints.
    pub fn job_dir(&self, job_id: &str) -> String {
        format!("{}/{}", self.root, self.dir_name(job_id))
    }

    /// Deletes the directories of jobs that are gone: ids not in `jobs` and not in
    /// `live` (a job with a live instance still writes there). In a private root every
    /// such directory goes; in a shared one only those of this data directory's jobs
    /// that are in `seen` (jobs this master ran instances of: a copy of the data
    /// directory may have jobs that this one deleted and the copy still runs).
    pub fn collect(
        &self,
        jobs: &BTreeSet<String>,
        live: &BTreeSet<String>,
        seen: &BTreeSet<String>,
    ) -> Result<(), String> {
        let dir = ObjectDir::open(&self.root).map_err(|e| format!("{}: {e}", self.root))?;
        let children = dir
            .children()
            .map_err(|e| format!("cannot list {}: {e}", self.root))?;
        let mut errors = Vec::new();
        for name in children {
            let job_id = match &self.owner {
                None => name.as_str(),
                Some(owner) => match name
                    .strip_prefix(owner.as_str())
                    .and_then(|r| r.strip_prefix('-'))
                {
                    Some(id) if seen.contains(id) => id,
                    _ => continue,
                },
            };
            if jobs.contains(job_id) || live.contains(job_id) {
                continue;
            }
            if let Err(e) = dir.delete_dir(&name) {
                errors.push(format!("cannot delete {}: {e}", self.job_dir(job_id)));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// The newest checkpoint of a job, as a plan-before-apply shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LatestCheckpoint {
    /// Its epoch.
    pub epoch: u64,
    /// When it completed (ms since the Unix epoch).
    pub completed_at_ms: i64,
    /// When it was requested (ms since the Unix epoch); none for a run's final record.
    pub requested_at_ms: Option<i64>,
    /// Workers of the run that wrote it.
    pub workers: usize,
    /// Source key → its position there (per worker).
    pub sources: std::collections::BTreeMap<String, Vec<serde_json::Value>>,
    /// Operator key → the size of its snapshots there (bytes, all workers).
    pub state_bytes: std::collections::BTreeMap<String, u64>,
}

/// The size of each operator's snapshots in `record` (bytes, all workers, incremental
/// chains whole: what a restore reads), and whether every snapshot it names is still
/// there (the record can be restored).
pub fn state_sizes(
    d: &ObjectDir,
    record: &sluice_compiler::instance::CheckpointRecord,
) -> sluice_connectors::Result<(std::collections::BTreeMap<String, u64>, bool)> {
    let mut restorable = true;
    let mut sizes = std::collections::BTreeMap::new();
    for op in record.state.keys() {
        let mut total = 0;
        // Incremental snapshots: a restore reads each worker's whole chain.
        for o in record.state_chain(op).into_iter().flatten() {
            match d.size(o)? {
                Some(n) => total += n,
                None => restorable = false,
            }
        }
        // An operator checkpointed as its inputs: their snapshots together.
        *sizes
            .entry(sluice_compiler::state::operator_of(op).to_string())
            .or_insert(0) += total;
    }
    Ok((sizes, restorable))
}

/// The newest readable checkpoint record in `dir`, if any (best effort: a store that
/// cannot be read gives `None`).
pub fn latest(dir: &str) -> Option<LatestCheckpoint> {
    let d = ObjectDir::open(dir).ok()?;
    let r = latest_record(&d).ok()??;
    let (state_bytes, _) = state_sizes(&d, &r).ok()?;
    Some(LatestCheckpoint {
        epoch: r.epoch,
        completed_at_ms: r.completed_at_ms,
        requested_at_ms: r.requested_at_ms,
        workers: r.workers,
        sources: r.sources,
        state_bytes,
    })
}

/// The savepoints in a job's checkpoint directory, oldest first.
pub fn savepoints(dir: &str) -> Result<Vec<sluice_compiler::instance::Savepoint>, String> {
    let d = ObjectDir::open(dir).map_err(|e| e.to_string())?;
    all_savepoints(&d).map_err(|e| e.to_string())
}

/// Deletes the savepoint of `epoch`; false when there is none.
pub fn delete_savepoint(dir: &str, epoch: u64) -> Result<bool, String> {
    let name = sluice_compiler::instance::savepoint_name(epoch);
    let d = ObjectDir::open(dir).map_err(|e| e.to_string())?;
    if d.size(&name).map_err(|e| e.to_string())?.is_none() {
        return Ok(false);
    }
    d.delete(&name).map_err(|e| e.to_string())?;
    Ok(true)
}

/// Why a savepoint could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum SavepointError {
    /// The job has no checkpoint yet.
    #[error("the job has no checkpoint yet to keep as a savepoint")]
    NoCheckpoint,
    /// The checkpoint store failed.
    #[error("checkpoint store: {0}")]
    Store(String),
}

/// Pins the job's latest checkpoint as a savepoint (`savepoint-<epoch>.json`; the same
/// one again when it is pinned already). Only while no instance of the job runs: a
/// running instance prunes snapshots it does not know to be pinned.
pub fn pin_latest(
    dir: &str,
    job_version: u64,
) -> Result<sluice_compiler::instance::Savepoint, SavepointError> {
    use sluice_compiler::instance::{savepoint_name, Savepoint};
    let store = |e: sluice_connectors::ConnectorError| SavepointError::Store(e.to_string());
    let d = ObjectDir::open(dir).map_err(store)?;
    let record = latest_record(&d)
        .map_err(store)?
        .ok_or(SavepointError::NoCheckpoint)?;
    let name = savepoint_name(record.epoch);
    let sp = Savepoint {
        taken_at_ms: crate::model::now_ms(),
        job_version,
        record,
    };
    let bytes = serde_json::to_vec_pretty(&sp).map_err(|e| SavepointError::Store(e.to_string()))?;
    if d.create(&name, bytes).map_err(store)? {
        return Ok(sp);
    }
    d.get(&name)
        .map_err(store)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| SavepointError::Store(format!("savepoint {name} is unreadable")))
}

/// [`pin_latest`] while the job runs: its instance prunes snapshots behind its newest
/// checkpoints, but never those a savepoint names once the savepoint is written. A
/// prune between reading the latest record and writing the savepoint may have taken
/// some of its snapshots: then the savepoint is withdrawn and taken again from the
/// newer latest record (at most five times).
pub fn pin_running(
    dir: &str,
    job_version: u64,
) -> Result<sluice_compiler::instance::Savepoint, SavepointError> {
    let store = |e: sluice_connectors::ConnectorError| SavepointError::Store(e.to_string());
    let d = ObjectDir::open(dir).map_err(store)?;
    for _ in 0..5 {
        let sp = pin_latest(dir, job_version)?;
        let mut complete = true;
        for name in sp.record.state_objects() {
            if d.size(name).map_err(store)?.is_none() {
                complete = false;
            }
        }
        if complete {
            return Ok(sp);
        }
        let _ = d.delete(&sluice_compiler::instance::savepoint_name(sp.record.epoch));
    }
    Err(SavepointError::Store(
        "the job's checkpoints moved on faster than a savepoint could pin one: try again".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_store_collects_only_the_jobs_this_master_ran() {
        let tmp = tempfile::tempdir().unwrap();
        for id in [
            "d1-kept",
            "d1-gone",
            "d2-gone",
            "d1-theirs",
            "d1-running",
            "gone",
        ] {
            std::fs::create_dir_all(tmp.path().join(id)).unwrap();
            std::fs::write(tmp.path().join(id).join("chk-1.json"), "{}").unwrap();
        }
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let jobs = set(&["kept"]);
        let live = set(&["running"]);
        let seen = set(&["gone", "running"]);
        let shared = CheckpointStore::shared(&format!("{}/", tmp.path().display()), "d1");
        assert_eq!(
            shared.job_dir("x"),
            format!("{}/d1-x", tmp.path().display())
        );
        shared.collect(&jobs, &live, &seen).unwrap();
        let left = |p: &std::path::Path| {
            let mut v: Vec<String> = std::fs::read_dir(p)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        // Only this data directory's deleted job that it ran ("gone") goes: not another
        // data directory's ("d2-gone"), nor one it never ran ("theirs").
        assert_eq!(
            left(tmp.path()),
            vec!["d1-kept", "d1-running", "d1-theirs", "d2-gone", "gone"]
        );
        std::fs::create_dir_all(tmp.path().join("kept")).unwrap();
        CheckpointStore::private(tmp.path())
            .collect(&jobs, &live, &seen)
            .unwrap();
        assert_eq!(left(tmp.path()), vec!["kept"]);
    }
}
