//! HOP by pane: the state of a `WindowAggregate` with
//! [`sluice_compiler::WindowStrategy::HopByPane`], on the data path right after the
//! exchange by group key inside [`super::window::render_window_aggregate`].
//!
//! Its input rows were assigned to one pane each (a TUMBLE of `pane` = gcd(size,
//! slide)), so their window columns hold the pane `[p, p + pane)`. Invariants:
//!
//! - pane `p` lies in exactly the windows `[s, s + size)` with `s ≡ 0 (mod slide)` and
//!   `p + pane - size ≤ s ≤ p` (those of every time in the pane);
//! - `result(window s, group g) = finish(merge{ partial(q, g, m) : s ≤ q < s + size,
//!   m ≤ s + size })`, where `partial(q, g, m)` holds the rows of group `g` in pane `q`
//!   that were on time for the windows ending at or after `m` (a row at time `t` is
//!   late for, and left out of, its windows ending at or before `t`);
//! - a pane is freed once its last window (`s = p - p mod slide`) has closed, so the
//!   state is one accumulator per (pane, group) for the panes between the oldest open
//!   window's start and the newest row.

use super::window::{GroupState, OpenWindows, Out, SnapshotEntry};
use super::{Diff, PackedMap, Time};
use crate::accum::{Aggregates, Fold, Running};
use crate::errors::ExecutionError;
use crate::progress::Progress;
use rustc_hash::FxBuildHasher;
use sluice_compiler::packed::pack_columns;
use sluice_compiler::{Datum, PackedRow, Row};
use std::collections::BTreeMap;
use std::sync::Arc;
use timely::dataflow::operators::Capability;

/// Where the window columns are and the HOP's shape.
pub(crate) struct PaneLayout {
    pub(crate) slide_ms: i64,
    pub(crate) size_ms: i64,
    pub(crate) pane_ms: i64,
    /// Group columns of the input, in output order.
    pub(crate) group_by: Vec<usize>,
    /// Input column of the pane start.
    pub(crate) start_col: usize,
    /// Input column of the pane end.
    pub(crate) end_col: usize,
    /// Input column of the pane's `window_time`, when grouped by.
    pub(crate) time_col: Option<usize>,
}

/// Rows of one group in one pane, on time for the windows ending at or after `min_end`.
#[derive(Clone, Debug)]
struct Partial {
    min_end: i64,
    rows: Diff,
    states: Vec<Running>,
}

/// One worker's panes (see the module docs).
pub(crate) struct Panes {
    layout: PaneLayout,
    aggregates: Aggregates,
    /// False when an aggregate has no mergeable running state: a plan error, reported
    /// on every row.
    mergeable: bool,
    progress: Arc<Progress>,
    /// The group columns that are not window columns.
    key_cols: Vec<usize>,
    /// Rows or pre-aggregated partial rows.
    fold: Fold,
    /// Per pane start, per packed group key (the non-window group columns), the
    /// partials.
    panes: BTreeMap<i64, PackedMap<Vec<Partial>>>,
    /// Capabilities of the window ends some partial contributes to.
    windows: BTreeMap<Time, Capability<Time>>,
    /// The newest window end closed (emitted) so far: a snapshot's partials are on time
    /// only for the windows after it, so a restore does not emit a closed window again.
    closed_through: Option<i64>,
    /// The packed group key of the row being applied (reused).
    probe: Vec<u8>,
}

impl Panes {
    pub(crate) fn new(
        layout: PaneLayout,
        aggregates: Aggregates,
        mergeable: bool,
        progress: Arc<Progress>,
        fold: Fold,
    ) -> Self {
        let key_cols = layout
            .group_by
            .iter()
            .copied()
            .filter(|&c| c != layout.start_col && c != layout.end_col && Some(c) != layout.time_col)
            .collect();
        Panes {
            layout,
            aggregates,
            mergeable,
            progress,
            key_cols,
            fold,
            panes: BTreeMap::new(),
            windows: BTreeMap::new(),
            closed_through: None,
            probe: Vec::new(),
        }
    }

    /// The group columns that are not window columns: the key rows are exchanged by.
    pub(crate) fn key_cols(&self) -> Vec<usize> {
        self.key_cols.clone()
    }

    /// The ends of the windows pane `p` lies in, ascending.
    fn window_ends(&self, p: i64) -> impl Iterator<Item = i64> {
        let (slide, size, pane) = (
            self.layout.slide_ms,
            self.layout.size_ms,
            self.layout.pane_ms,
        );
        let last = p.saturating_sub(p.rem_euclid(slide));
        let lowest = p.saturating_add(pane).saturating_sub(size);
        // The least multiple of `slide` at or above `lowest`.
        let first = lowest.saturating_add((slide - lowest.rem_euclid(slide)) % slide);
        let count = if first > last {
            0
        } else {
            (last - first) / slide + 1
        };
        (0..count).map(move |i| first + i * slide + size)
    }

    /// The end of the last window of pane `p`.
    fn last_end(&self, p: i64) -> i64 {
        p.saturating_sub(p.rem_euclid(self.layout.slide_ms))
            .saturating_add(self.layout.size_ms)
    }

    /// Assembles the window ending at `end` from its panes.
    fn assemble(&self, end: i64) -> Vec<Out> {
        let start = end.saturating_sub(self.layout.size_ms);
        let mut groups: hashbrown::HashMap<&PackedRow, (Diff, Vec<Running>), FxBuildHasher> =
            hashbrown::HashMap::default();
        let mut out = Vec::new();
        let time = end.max(0) as Time;
        for (_, keys) in self.panes.range(start..end) {
            for (key, partials) in keys {
                for partial in partials.iter().filter(|p| p.min_end <= end) {
                    match groups.get_mut(key) {
                        Some((rows, states)) => {
                            *rows += partial.rows;
                            if let Err(m) = self.aggregates.merge(states, &partial.states) {
                                out.push((
                                    Err(ExecutionError::eval("WindowAggregate", m)),
                                    time,
                                    1,
                                ));
                            }
                        }
                        None => {
                            groups.insert(key, (partial.rows, partial.states.clone()));
                        }
                    }
                }
            }
        }
        let l = &self.layout;
        // Packed keys order as rows do: results come out sorted by group key.
        let mut groups: Vec<(&PackedRow, (Diff, Vec<Running>))> = groups.into_iter().collect();
        groups.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (key, (rows, states)) in groups {
            if rows <= 0 {
                continue;
            }
            let result = self.aggregates.finish(&states).map(|aggs| {
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
            out.push((
                result.map_err(|m| ExecutionError::eval("WindowAggregate", m)),
                time,
                1,
            ));
        }
        out
    }

    /// The partial of pane `p` for the packed `key` on time from `min_end`, created (and
    /// its windows' capabilities taken) when new.
    fn partial_mut(
        &mut self,
        p: i64,
        key: &[u8],
        min_end: i64,
        cap: &dyn Fn(Time) -> Capability<Time>,
    ) -> (&Aggregates, &mut Partial) {
        let ends: Vec<i64> = self.window_ends(p).filter(|e| *e >= min_end).collect();
        let Panes {
            aggregates,
            progress,
            panes,
            windows,
            ..
        } = self;
        let keys = panes.entry(p).or_default();
        let partials = keys.entry_ref(key).or_default();
        let i = match partials.iter().position(|x| x.min_end == min_end) {
            Some(i) => i,
            None => {
                partials.push(Partial {
                    min_end,
                    rows: 0,
                    states: aggregates.running(),
                });
                progress.window_state_changed(1, 0);
                for e in ends {
                    let t = e.max(0) as Time;
                    windows.entry(t).or_insert_with(|| cap(t));
                }
                partials.len() - 1
            }
        };
        (aggregates, &mut partials[i])
    }
}

impl OpenWindows for Panes {
    fn apply(
        &mut self,
        cap: &Capability<Time>,
        row: &Row,
        t: Time,
        diff: Diff,
    ) -> Option<ExecutionError> {
        if !self.mergeable {
            return Some(ExecutionError::Internal(
                "WindowAggregate: HOP-by-pane planned for aggregates without mergeable states"
                    .into(),
            ));
        }
        let p = match row.get(self.layout.start_col) {
            Some(Datum::Timestamp(p)) => *p,
            Some(Datum::Null) => return None,
            other => {
                return Some(ExecutionError::Internal(format!(
                    "WindowAggregate: pane start column holds {other:?}"
                )))
            }
        };
        // Late for its windows ending at or before the watermark (`t`; time 0 means no
        // watermark yet), as in the per-window path, counted once per such window.
        let stands_for = match self.fold.rows(row) {
            Ok(n) => n,
            Err(m) => return Some(ExecutionError::Internal(format!("WindowAggregate: {m}"))),
        };
        let mut min_end = None;
        let mut late = 0u64;
        for e in self.window_ends(p) {
            if t > 0 && e <= t as i64 {
                late += 1;
            } else if min_end.is_none() {
                min_end = Some(e);
            }
        }
        if late > 0 {
            self.progress.add_late_rows(
                late.saturating_mul(diff.unsigned_abs() as u64)
                    .saturating_mul(stands_for.unsigned_abs() as u64),
            );
        }
        let min_end = min_end?;
        let mut probe = std::mem::take(&mut self.probe);
        pack_columns(row, &self.key_cols, &mut probe);
        let fold = self.fold;
        let (aggregates, partial) = self.partial_mut(p, &probe, min_end, &|e| cap.delayed(&e));
        partial.rows += stands_for * diff;
        let folded = fold.fold(aggregates, &mut partial.states, row, diff);
        self.probe = probe;
        folded
            .err()
            .map(|m| ExecutionError::eval("WindowAggregate", m))
    }

    fn close(&mut self, closed: &dyn Fn(Time) -> bool) -> Vec<(Capability<Time>, Vec<Out>)> {
        let ends: Vec<Time> = self
            .windows
            .keys()
            .copied()
            .take_while(|e| closed(*e))
            .collect();
        let mut out = Vec::new();
        for end in ends {
            let Some(cap) = self.windows.remove(&end) else {
                continue;
            };
            let closed_end = i64::try_from(end).unwrap_or(i64::MAX);
            self.closed_through = self.closed_through.max(Some(closed_end));
            // A window ending at or before 0 closes with time 0; several share it.
            let results: Vec<Out> = if end == 0 {
                let mut r = Vec::new();
                for e in self.zero_ends() {
                    r.extend(self.assemble(e));
                }
                r
            } else {
                self.assemble(end as i64)
            };
            out.push((cap, results));
        }
        // Free the panes whose last window has closed.
        let mut freed = 0u64;
        while let Some((&p, _)) = self.panes.first_key_value() {
            if !closed(self.last_end(p).max(0) as Time) {
                break;
            }
            if let Some(keys) = self.panes.remove(&p) {
                freed += keys.values().map(|v| v.len() as u64).sum::<u64>();
            }
        }
        self.progress.window_state_changed(0, freed);
        out
    }

    fn entries(&self) -> Vec<SnapshotEntry> {
        self.panes
            .iter()
            .flat_map(|(p, keys)| {
                let mut keys: Vec<(&PackedRow, &Vec<Partial>)> = keys.iter().collect();
                keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
                keys.into_iter().flat_map(move |(key, partials)| {
                    partials.iter().map(move |x| {
                        (
                            key.unpack(),
                            // Windows up to `closed_through` were emitted before the
                            // barrier: the restored partial is on time for later ones only.
                            self.closed_through
                                .map_or(x.min_end, |c| x.min_end.max(c.saturating_add(1))),
                            GroupState::Pane {
                                start: *p,
                                rows: x.rows,
                                states: x.states.clone(),
                            },
                        )
                    })
                })
            })
            .collect()
    }

    fn restore(
        &mut self,
        (key, min_end, group): SnapshotEntry,
        cap: &dyn Fn(Time) -> Capability<Time>,
    ) -> Option<ExecutionError> {
        let GroupState::Pane {
            start,
            rows,
            states,
        } = group
        else {
            return Some(ExecutionError::Internal(
                "WindowAggregate: restored a per-window state into a HOP-by-pane aggregate".into(),
            ));
        };
        // Partials once on time from different windows may now share `min_end`: merged.
        let key = PackedRow::pack(&key);
        let (aggregates, partial) = self.partial_mut(start, key.as_bytes(), min_end, cap);
        partial.rows += rows;
        aggregates
            .merge(&mut partial.states, &states)
            .err()
            .map(|m| ExecutionError::eval("WindowAggregate", m))
    }
}

impl Panes {
    /// The distinct window ends at or below 0 that open panes contribute to.
    fn zero_ends(&self) -> Vec<i64> {
        let mut ends: Vec<i64> = self
            .panes
            .keys()
            .flat_map(|&p| self.window_ends(p).filter(|e| *e <= 0).collect::<Vec<_>>())
            .collect();
        ends.sort_unstable();
        ends.dedup();
        ends
    }
}
