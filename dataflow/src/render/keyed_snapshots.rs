//! Incremental snapshots of a keyed state held in a [`PackedMap`]: the rule and the
//! encoding that `Reduce` (groups) and `Keep` (an input's net rows) share, on the
//! checkpoint path beside their operators (see `crate::checkpoint`, *Incremental
//! snapshots*).
//!
//! The operator reports each key it changes ([`KeyedSnapshots::changed`]); at a barrier
//! [`KeyedSnapshots::take`] writes either the whole state — entries `(key row, saved
//! value)` sorted by key, the operator's full snapshot format — or a delta of the keys
//! changed since the last snapshot (their entries, and the keys no longer present),
//! which [`crate::checkpoint::decode_keyed_chain`] applies at a restore. A delta is
//! written while the changed keys are at most half of the state and the deltas since
//! the last full snapshot hold no more entries than the state (so a restore reads at
//! most about twice the state), at most [`MAX_DELTAS`] in a row; a run's first
//! snapshot is full.

use super::PackedMap;
use crate::errors::ExecutionError;
use sluice_compiler::{PackedRow, Row};

/// Incremental snapshots after a full one: at most this many deltas in a chain.
pub(crate) const MAX_DELTAS: usize = 16;

/// The keys changed since the last snapshot, and the shape of the chain so far.
#[derive(Default)]
pub(crate) struct KeyedSnapshots {
    dirty: hashbrown::HashSet<PackedRow, rustc_hash::FxBuildHasher>,
    /// Deltas written since the last full snapshot (`None`: none written in this run).
    deltas: Option<usize>,
    /// Entries the deltas since the last full snapshot held.
    delta_entries: usize,
}

impl KeyedSnapshots {
    /// The entry of packed `key` changed (was created, updated or removed).
    pub(crate) fn changed(&mut self, key: &[u8]) {
        if !self.dirty.contains(key) {
            self.dirty.insert(PackedRow::from_bytes(key));
        }
    }

    /// Whether the next snapshot of a state of `len` entries is a delta.
    fn next_is_delta(&self, len: usize) -> bool {
        self.deltas.is_some_and(|n| n < MAX_DELTAS)
            && self.dirty.len() * 2 <= len
            && self.delta_entries + self.dirty.len() <= len
    }

    /// The next snapshot of `state` (each entry saved as `save` says) for `operator`'s
    /// snapshot `version`, and whether it is a delta; the changes are then forgotten
    /// (the snapshot is written, or the run fails).
    pub(crate) fn take<V, S: serde::Serialize>(
        &mut self,
        operator: &str,
        version: u32,
        state: &PackedMap<V>,
        save: impl Fn(&V) -> S,
    ) -> Result<(Vec<u8>, bool), ExecutionError> {
        let is_delta = self.next_is_delta(state.len());
        let bytes = if is_delta {
            let mut keys: Vec<&PackedRow> = self.dirty.iter().collect();
            keys.sort();
            let (mut upserts, mut deletes): (Vec<(Row, S)>, Vec<Row>) = (Vec::new(), Vec::new());
            for key in keys {
                match state.get(key) {
                    Some(v) => upserts.push((key.unpack(), save(v))),
                    None => deletes.push(key.unpack()),
                }
            }
            crate::checkpoint::encode_delta(operator, version, upserts, deletes)?
        } else {
            // Packed keys order as rows do: the entries come out sorted by key.
            let mut entries: Vec<(&PackedRow, &V)> = state.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<(Row, S)> = entries
                .into_iter()
                .map(|(k, v)| (k.unpack(), save(v)))
                .collect();
            crate::checkpoint::encode_snapshot(operator, version, &entries)?
        };
        if is_delta {
            self.deltas = self.deltas.map(|n| n + 1);
            self.delta_entries += self.dirty.len();
        } else {
            self.deltas = Some(0);
            self.delta_entries = 0;
        }
        self.dirty.clear();
        Ok((bytes, is_delta))
    }
}
