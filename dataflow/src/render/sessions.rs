//! Incremental SESSION windows: the state of a `WindowAggregate` with
//! [`sluice_compiler::WindowStrategy::Session`], on the data path right after the
//! exchange by partition key inside [`super::window::render_window_aggregate`].
//!
//! Each input row carries its proto-session `[ts, ts + gap)` in its window columns.
//! Invariants, per key:
//!
//! - the open sessions are disjoint intervals `[start, end)`; a row's proto-session
//!   merges with every open session it overlaps (`ts < end && ts + gap > start`, the
//!   rule of `SessionAssign`: rows less than `gap` apart share a session), so a row
//!   bridging two sessions merges them, their running states merged;
//! - a session is emitted once, at time `end`, when the frontier (watermark) passes
//!   `end`, and then freed: no retractions;
//! - a row whose proto-session ends at or before the watermark (`ts + gap <= t`) is
//!   late: counted and dropped. (A row older than the watermark that touches an
//!   already emitted session starts a new one.)

use super::window::{GroupState, OpenWindows, Out, SnapshotEntry};
use super::{Diff, PackedMap, Time};
use crate::accum::{Aggregates, Running};
use crate::errors::ExecutionError;
use crate::progress::Progress;
use sluice_compiler::packed::pack_columns;
use sluice_compiler::{Datum, PackedRow, Row};
use std::collections::BTreeMap;
use std::sync::Arc;
use timely::dataflow::operators::Capability;

/// Where the window columns are.
pub(crate) struct SessionLayout {
    /// Group columns of the input, in output order.
    pub(crate) group_by: Vec<usize>,
    /// Input column of the proto-session start (the row's time).
    pub(crate) start_col: usize,
    /// Input column of the proto-session end.
    pub(crate) end_col: usize,
    /// Input column of `window_time`, when grouped by.
    pub(crate) time_col: Option<usize>,
}

/// One open session of one key.
#[derive(Clone, Debug)]
struct Session {
    end: i64,
    rows: Diff,
    states: Vec<Running>,
}

/// One worker's open sessions (see the module docs).
pub(crate) struct Sessions {
    layout: SessionLayout,
    aggregates: Aggregates,
    mergeable: bool,
    progress: Arc<Progress>,
    key_cols: Vec<usize>,
    /// Per packed key, per session start, the session (keys hashed: a lookup per row).
    open: PackedMap<BTreeMap<i64, Session>>,
    /// Per session end (as a time): its capability and the (key, start) of the
    /// sessions ending there.
    ends: BTreeMap<Time, Ending>,
    /// The packed key of the row being applied (reused).
    probe: Vec<u8>,
}

/// The capability of one session end and the (key, start) of the sessions ending there
/// (some may since have merged into later sessions).
type Ending = (Capability<Time>, Vec<(PackedRow, i64)>);

impl Sessions {
    pub(crate) fn new(
        layout: SessionLayout,
        aggregates: Aggregates,
        mergeable: bool,
        progress: Arc<Progress>,
    ) -> Self {
        let key_cols = layout
            .group_by
            .iter()
            .copied()
            .filter(|&c| c != layout.start_col && c != layout.end_col && Some(c) != layout.time_col)
            .collect();
        Sessions {
            layout,
            aggregates,
            mergeable,
            progress,
            key_cols,
            open: PackedMap::default(),
            ends: BTreeMap::new(),
            probe: Vec::new(),
        }
    }

    /// The group columns that are not window columns: the key rows are exchanged by.
    pub(crate) fn key_cols(&self) -> Vec<usize> {
        self.key_cols.clone()
    }

    /// Adds a session (merging it with the open sessions of the packed `key` it
    /// overlaps).
    fn add(
        &mut self,
        key: &[u8],
        start: i64,
        mut session: Session,
        cap: &dyn Fn(Time) -> Capability<Time>,
    ) -> Option<ExecutionError> {
        let sessions = self.open.entry_ref(key).or_default();
        let mut start = start;
        let mut error = None;
        // Overlapping: start' < end and end' > start. Open sessions are disjoint, so
        // they are the ones starting before `end` whose end is after `start`, a run
        // ending at the last one starting before `end`.
        let overlapping: Vec<i64> = sessions
            .range(..session.end)
            .rev()
            .take_while(|(_, s)| s.end > start)
            .map(|(s, _)| *s)
            .collect();
        let mut freed = 0u64;
        for s in overlapping {
            let Some(other) = sessions.remove(&s) else {
                continue;
            };
            freed += 1;
            start = start.min(s);
            session.end = session.end.max(other.end);
            session.rows += other.rows;
            if let Err(m) = self.aggregates.merge(&mut session.states, &other.states) {
                error = Some(ExecutionError::eval("WindowAggregate", m));
            }
            // Its end entry is dropped lazily: `close` skips (key, start) pairs whose
            // session is gone or ends elsewhere.
        }
        let end = session.end;
        sessions.insert(start, session);
        self.progress.window_state_changed(1, freed);
        let t = end.max(0) as Time;
        self.ends
            .entry(t)
            .or_insert_with(|| (cap(t), Vec::new()))
            .1
            .push((PackedRow::from_bytes(key), start));
        error
    }
}

impl OpenWindows for Sessions {
    fn apply(
        &mut self,
        cap: &Capability<Time>,
        row: &Row,
        t: Time,
        diff: Diff,
    ) -> Option<ExecutionError> {
        if !self.mergeable {
            return Some(ExecutionError::Internal(
                "WindowAggregate: a session strategy for aggregates without mergeable states"
                    .into(),
            ));
        }
        let (start, end) = match (row.get(self.layout.start_col), row.get(self.layout.end_col)) {
            (Some(Datum::Timestamp(s)), Some(Datum::Timestamp(e))) => (*s, *e),
            (Some(Datum::Null), _) | (_, Some(Datum::Null)) => return None,
            other => {
                return Some(ExecutionError::Internal(format!(
                    "WindowAggregate: session columns hold {other:?}"
                )))
            }
        };
        if t > 0 && end <= t as i64 {
            self.progress.add_late_rows(diff.unsigned_abs() as u64);
            return None;
        }
        let mut states = self.aggregates.running();
        if let Err(m) = self.aggregates.update(&mut states, row, diff) {
            return Some(ExecutionError::eval("WindowAggregate", m));
        }
        let session = Session {
            end,
            rows: diff,
            states,
        };
        let mut key = std::mem::take(&mut self.probe);
        pack_columns(row, &self.key_cols, &mut key);
        let error = self.add(&key, start, session, &|e| cap.delayed(&e));
        self.probe = key;
        error
    }

    fn close(&mut self, closed: &dyn Fn(Time) -> bool) -> Vec<(Capability<Time>, Vec<Out>)> {
        let due: Vec<Time> = self
            .ends
            .keys()
            .copied()
            .take_while(|e| closed(*e))
            .collect();
        let mut out = Vec::new();
        let mut freed = 0u64;
        let l = &self.layout;
        for t in due {
            let Some((cap, members)) = self.ends.remove(&t) else {
                continue;
            };
            let mut results: Vec<Out> = Vec::new();
            for (key, start) in members {
                let Some(sessions) = self.open.get_mut(key.as_bytes()) else {
                    continue;
                };
                // Still open and still ending here (not merged into a later session).
                if sessions
                    .get(&start)
                    .is_none_or(|s| s.end.max(0) as Time != t)
                {
                    continue;
                }
                let Some(session) = sessions.remove(&start) else {
                    continue;
                };
                if sessions.is_empty() {
                    self.open.remove(key.as_bytes());
                }
                freed += 1;
                if session.rows <= 0 {
                    continue;
                }
                let end = session.end;
                let result = self.aggregates.finish(&session.states).map(|aggs| {
                    let mut rest = key.iter();
                    let mut row: Row = Vec::with_capacity(l.group_by.len() + aggs.len());
                    for &c in &l.group_by {
                        row.push(if c == l.start_col {
                            Datum::Timestamp(start)
                        } else if c == l.end_col {
                            Datum::Timestamp(end)
                        } else if Some(c) == l.time_col {
                            Datum::Timestamp(end.saturating_sub(1))
                        } else {
                            rest.next().unwrap_or(Datum::Null)
                        });
                    }
                    row.extend(aggs);
                    row
                });
                results.push((
                    result.map_err(|m| ExecutionError::eval("WindowAggregate", m)),
                    t,
                    1,
                ));
            }
            out.push((cap, results));
        }
        self.progress.window_state_changed(0, freed);
        out
    }

    fn entries(&self) -> Vec<SnapshotEntry> {
        // In key order, so that a snapshot does not depend on the hash map's layout.
        let mut keys: Vec<(&PackedRow, &BTreeMap<i64, Session>)> = self.open.iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        keys.into_iter()
            .flat_map(|(key, sessions)| {
                sessions.iter().map(move |(start, s)| {
                    (
                        key.unpack(),
                        s.end,
                        GroupState::Pane {
                            start: *start,
                            rows: s.rows,
                            states: s.states.clone(),
                        },
                    )
                })
            })
            .collect()
    }

    fn restore(
        &mut self,
        (key, end, group): SnapshotEntry,
        cap: &dyn Fn(Time) -> Capability<Time>,
    ) -> Option<ExecutionError> {
        let GroupState::Pane {
            start,
            rows,
            states,
        } = group
        else {
            return Some(ExecutionError::Internal(
                "WindowAggregate: restored a per-window state into a session aggregate".into(),
            ));
        };
        let key = PackedRow::pack(&key);
        self.add(key.as_bytes(), start, Session { end, rows, states }, cap)
    }
}
