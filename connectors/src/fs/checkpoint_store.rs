//! Reading a job's checkpoint directory ([`ObjectDir`]): the records and savepoints the
//! worker writes (`sluice_dataflow::checkpoint`), read back by the worker at a restore
//! and by the master for its commit list, change plans and savepoints.

use super::ObjectDir;
use crate::Result;
use sluice_expr::checkpoint::{
    is_record_name, is_savepoint_name, CheckpointRecord, Savepoint, CHECKPOINT_FORMAT,
};

/// The newest readable record in `dir` (a record that cannot be read, or of a newer
/// format, is skipped: the one before it is still whole).
pub fn latest_record(dir: &ObjectDir) -> Result<Option<CheckpointRecord>> {
    let mut names: Vec<String> = dir
        .list()?
        .into_iter()
        .filter(|n| is_record_name(n))
        .collect();
    names.sort();
    while let Some(name) = names.pop() {
        let Some(bytes) = dir.get(&name)? else {
            continue;
        };
        match serde_json::from_slice::<CheckpointRecord>(&bytes) {
            Ok(r) if r.format_version <= CHECKPOINT_FORMAT => return Ok(Some(r)),
            _ => tracing::warn!(
                "checkpoint {name} in {} is unreadable: skipped",
                dir.display()
            ),
        }
    }
    Ok(None)
}

/// Every readable record in `dir` with the size of its object (bytes), oldest first.
pub fn all_records(dir: &ObjectDir) -> Result<Vec<(CheckpointRecord, u64)>> {
    let mut out = Vec::new();
    for name in dir.list()? {
        if !is_record_name(&name) {
            continue;
        }
        if let Some(bytes) = dir.get(&name)? {
            if let Ok(r) = serde_json::from_slice::<CheckpointRecord>(&bytes) {
                out.push((r, bytes.len() as u64));
            }
        }
    }
    out.sort_by_key(|(r, _)| r.epoch);
    Ok(out)
}

/// Every readable savepoint in `dir`, oldest first.
pub fn all_savepoints(dir: &ObjectDir) -> Result<Vec<Savepoint>> {
    let mut out = Vec::new();
    for name in dir.list()? {
        if !is_savepoint_name(&name) {
            continue;
        }
        if let Some(bytes) = dir.get(&name)? {
            if let Ok(s) = serde_json::from_slice::<Savepoint>(&bytes) {
                out.push(s);
            }
        }
    }
    out.sort_by_key(|s| s.record.epoch);
    Ok(out)
}
