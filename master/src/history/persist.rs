//! The history on disk: one sled tree, `metrics_history`, in the master's store (so it
//! survives a master restart and shares the store's directory, lock and flush).
//!
//! | key | value |
//! |-----|-------|
//! | job, `0x00`, metric, `0x00`, operator (empty but for per-operator metrics) | `u32` coarse count (LE), then `(i64 t, f64 v)` LE pairs: coarse points, then raw |
//!
//! 16 bytes a point (what [`super::Usage::bytes`] counts), plus 4 bytes and the key a
//! series. A value that does not decode is skipped (and replaced on the next write).

use super::{HistoryState, Series, SeriesKey, Stepped, POINT_BYTES};

/// The tree's name.
pub const TREE: &str = "metrics_history";

/// The history's tree in a sled database.
#[derive(Clone, Debug)]
pub struct HistoryTree {
    tree: sled::Tree,
}

/// A sled failure.
#[derive(Debug, thiserror::Error)]
#[error("metrics history store: {0}")]
pub struct PersistError(#[from] sled::Error);

fn key_bytes(k: &SeriesKey) -> Vec<u8> {
    let mut b = Vec::with_capacity(k.job.len() + k.metric.len() + k.operator.len() + 2);
    b.extend_from_slice(k.job.as_bytes());
    b.push(0);
    b.extend_from_slice(k.metric.as_bytes());
    b.push(0);
    b.extend_from_slice(k.operator.as_bytes());
    b
}

fn parse_key(b: &[u8]) -> Option<SeriesKey> {
    let mut parts = b.splitn(3, |&c| c == 0);
    let mut next = || String::from_utf8(parts.next()?.to_vec()).ok();
    Some(SeriesKey {
        job: next()?,
        metric: next()?,
        operator: next()?,
    })
}

/// Encodes a series (see the module docs).
pub fn encode(s: &Series) -> Vec<u8> {
    let mut b = Vec::with_capacity(4 + s.len() * POINT_BYTES);
    b.extend_from_slice(&(s.coarse.len() as u32).to_le_bytes());
    for (t, v) in s.points() {
        b.extend_from_slice(&t.to_le_bytes());
        b.extend_from_slice(&v.to_le_bytes());
    }
    b
}

/// Decodes what [`encode`] wrote.
pub fn decode(b: &[u8]) -> Option<Series> {
    let coarse = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
    let body = &b[4..];
    if !body.len().is_multiple_of(POINT_BYTES) || coarse > body.len() / POINT_BYTES {
        return None;
    }
    let mut points = body.chunks_exact(POINT_BYTES).map(|c| {
        let (t, v) = c.split_at(8);
        (
            i64::from_le_bytes(t.try_into().unwrap_or_default()),
            f64::from_le_bytes(v.try_into().unwrap_or_default()),
        )
    });
    let coarse_points: Vec<_> = points.by_ref().take(coarse).collect();
    Some(Series {
        coarse: coarse_points,
        raw: points.collect(),
    })
}

impl HistoryTree {
    /// Opens (or creates) the tree in `db`.
    pub fn open(db: &sled::Db) -> Result<Self, PersistError> {
        Ok(HistoryTree {
            tree: db.open_tree(TREE)?,
        })
    }

    /// Everything stored.
    pub fn load(&self) -> Result<HistoryState, PersistError> {
        let mut state = HistoryState::default();
        for kv in self.tree.iter() {
            let (k, v) = kv?;
            if let (Some(key), Some(series)) = (parse_key(&k), decode(&v)) {
                state.series.insert(key, series);
            }
        }
        Ok(state)
    }

    /// Writes the series a step touched and deletes those it removed, in one batch.
    pub fn save(&self, stepped: &Stepped) -> Result<(), PersistError> {
        let mut batch = sled::Batch::default();
        for key in &stepped.removed {
            batch.remove(key_bytes(key));
        }
        for key in &stepped.touched {
            if let Some(s) = stepped.state.series.get(key) {
                batch.insert(key_bytes(key), encode(s));
            }
        }
        self.tree.apply_batch(batch)?;
        Ok(())
    }

    /// Makes the writes so far durable.
    pub fn flush(&self) -> Result<(), PersistError> {
        self.tree.flush()?;
        Ok(())
    }
}
