//! `Reduce`: grouped aggregation with retractions, one keyed operator per worker.
//!
//! Rows are exchanged by the hash of their group key (a global aggregate, with no
//! group columns, sends every row to worker 0). Per group the operator keeps one
//! state per aggregate, of the kind the compiler chose ([`AggStrategy`], see
//! `sluice_compiler::lower::agg_strategies`), and the row it last emitted. Updates are
//! buffered per timely time; once a time is complete (the input frontier passed it)
//! its updates are folded in and each changed group retracts its old row and emits its
//! new one at that time, so that, for every time `t`,
//!
//! > output up to `t` = `Aggregates::compute` over the input up to `t`, per group
//!
//! (the oracle `dataflow/tests/calc_reduce.rs` checks). A group whose net row count
//! drops to zero emits nothing and is freed; a global aggregate's single group always
//! exists, so its row is produced at time 0 even for empty input.
//!
//! **Pre-aggregation.** When the plan marks the `Reduce` `preaggregate` (every state a
//! running one, the input columnar), each input batch is grouped where it was read by
//! the columnar kernels (`ColumnarKernels::partial_aggregate`, on the GPU where
//! placement says so) and the operator receives one *partial row* per (batch, group) —
//! the group columns, the batch's row count and each aggregate's partial state
//! (`sluice_compiler::partial`) — which it merges into the group's states: the same
//! states, from far fewer exchanged rows and hash probes.
//!
//! State: per group, the last emitted row and the aggregate states — O(1) for
//! `Accumulate`, O(distinct values) for `Distinct` and `Ordered`.
//!
//! **Checkpoints.** In a checkpointed run the groups are snapshotted at each barrier:
//! the updates of every time below it are folded in, none at or above it (a time at
//! or above a due barrier waits for the snapshot). A restore sends each snapshot's
//! groups through the operator's own exchange (at any worker count) and re-emits each
//! group's last row at the restore: the compiler checkpoints a `Reduce` only when no
//! stateful operator is above it, so what consumes it is a sink, which writes an
//! updating result once, at the end of the input, from what it received (nothing of it
//! was written before).
//!
//! **Incremental snapshots.** The operator keeps the keys of the groups changed since
//! its last snapshot; while they are at most half the groups, a snapshot is a *delta*
//! (those groups' states, and the keys of those removed) that a restore applies after
//! the snapshot before it (`checkpoint::decode_keyed_chain`). A full snapshot starts
//! each run's chain and compacts it once the deltas since the last one would together
//! hold more groups than the state has, or after `MAX_DELTAS` deltas: a checkpoint
//! writes what changed, and a restore reads at most about twice the state.

use super::keyed_snapshots::KeyedSnapshots;
use super::{key_hash, release, split_results, Context, Diff, PackedMap, Rows, Time};
use crate::accum::{AggState, Aggregates};
use crate::errors::ExecutionError;
use differential_dataflow::Hashable;
use serde::{Deserialize, Serialize};
use sluice_catalogs::SqlType;
use sluice_compiler::packed::pack_columns;
use sluice_compiler::{AggStrategy, AggregateCall, Datum, PackedRow, Row};
use std::collections::BTreeMap;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::ToStream;

/// What `render_reduce` needs of the plan node.
pub(crate) struct ReduceSpec<'a> {
    /// Group columns.
    pub(crate) group_by: Vec<usize>,
    /// Aggregates.
    pub(crate) aggs: &'a [AggregateCall],
    /// One per aggregate.
    pub(crate) strategies: &'a [AggStrategy],
    /// The input's column types.
    pub(crate) types: &'a [SqlType],
    /// The input rows are partial rows (`sluice_compiler::partial`) whose group columns
    /// are `group_by`, which is then `0..k`: merged instead of folded row by row.
    pub(crate) partial: bool,
}

/// Updates of one time, with a capability at it.
type Pending = (Capability<Time>, Vec<(Row, Diff)>);

/// One group, as held: its key and the row it last emitted packed
/// ([`PackedRow`]: one allocation each, hashed and compared as bytes).
#[derive(Clone, Debug)]
struct Group {
    /// Net rows in the group.
    rows: Diff,
    states: Vec<AggState>,
    /// The row last emitted for the group, if any.
    emitted: Option<Result<PackedRow, ExecutionError>>,
    /// Whether the time being applied changed the group (false between times).
    changed: bool,
}

/// One group as snapshotted (the encoding of snapshot version 1).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SavedGroup {
    /// Net rows in the group.
    rows: Diff,
    states: Vec<AggState>,
    /// The row last emitted for the group, if any.
    emitted: Option<Result<Row, ExecutionError>>,
}

/// One group in a checkpoint snapshot: its key and state.
type SnapshotEntry = (Row, SavedGroup);

/// Version of the snapshot encoding (bincode of `(version, Vec<SnapshotEntry>)`).
const SNAPSHOT_VERSION: u32 = 1;

/// Groups keyed by their packed group key.
type Groups = PackedMap<Group>;

/// A group as its snapshot entry's value.
fn saved(g: &Group) -> SavedGroup {
    SavedGroup {
        rows: g.rows,
        states: g.states.clone(),
        emitted: g.emitted.clone().map(|e| e.map(|r| r.unpack())),
    }
}

fn restore_snapshot(chain: &[&[u8]]) -> Result<Vec<SnapshotEntry>, ExecutionError> {
    crate::checkpoint::decode_keyed_chain("Reduce", SNAPSHOT_VERSION, chain)
}

/// Renders `Reduce` (see the module docs).
pub(crate) fn render_reduce<'s>(
    ctx: &mut Context<'s>,
    state_key: &str,
    rows: Rows<'s>,
    flow: Option<super::flow::FlowConsumer>,
    spec: ReduceSpec<'_>,
) -> Rows<'s> {
    type Out = (Result<Row, ExecutionError>, Time, Diff);
    let aggregates = Aggregates::new(spec.aggs, spec.types);
    let strategies = spec.strategies.to_vec();
    let group_by = spec.group_by.clone();
    let global = group_by.is_empty();
    let partial = spec.partial;
    let width = group_by.len();
    let exit_after_run = ctx.exit_after_run;
    let route = spec.group_by.clone();
    // Without group columns every row goes to worker 0, which owns the one group.
    let exchange = Exchange::new(
        move |(row, _, _): &(Row, Time, Diff)| {
            if global {
                0
            } else {
                key_hash(row, &route)
            }
        },
    );
    let worker = ctx.worker.worker;
    // Checkpoints: register, and take this worker's share of the restored snapshots.
    let seq = ctx.state_seq;
    ctx.state_seq += 1;
    let state_key = state_key.to_string();
    let ckpt = ctx.ckpt.clone();
    if let Some(c) = &ckpt {
        c.register_state(&state_key, worker);
    }
    let errors = ctx.errors.clone();
    let mut restored: Vec<SnapshotEntry> = Vec::new();
    let mut was_restored = false;
    if let Some(r) = &ctx.restored {
        let everyone = sluice_connectors::WorkerContext {
            worker: 0,
            workers: 1,
        };
        was_restored = !r.state_for(&state_key, "", everyone).is_empty();
        for chain in r.state_for(&state_key, "", ctx.worker) {
            match restore_snapshot(&chain) {
                Ok(entries) => restored.extend(entries),
                Err(e) => errors.raise(e),
            }
        }
    }
    let restored_stream = restored.to_stream(ctx.scope);
    let exchange_restored = Exchange::new(
        move |(key, _): &SnapshotEntry| {
            if global {
                0
            } else {
                key.hashed()
            }
        },
    );
    let results = rows
        .inner
        .binary_frontier::<_, CapacityContainerBuilder<Vec<Out>>, _, _, _, _>(
            restored_stream,
            exchange,
            exchange_restored,
            "Reduce",
            move |cap, _info| {
                let mut groups: Groups = Groups::default();
                // The packed key of the row being applied (reused).
                let mut probe: Vec<u8> = Vec::new();
                let mut pending: BTreeMap<Time, Pending> = BTreeMap::new();
                let mut saved_through = ckpt.as_ref().map_or(0, |c| c.completed());
                let mut snapshots = KeyedSnapshots::default();
                let track = ckpt.is_some();
                // The global group exists from time 0, on the worker that owns it
                // (restored from a snapshot when there is one).
                let mut create_global = global && worker == 0 && !was_restored;
                if create_global {
                    pending.insert(0, (cap, Vec::new()));
                }
                move |(input, frontier), (restored_input, restored_frontier), output| {
                    // Restored groups, with the rows they had emitted (see the module
                    // docs: the sink consuming them rebuilds its result from them).
                    restored_input.for_each(|cap, data| {
                        let Some(cap) = cap.retain_least(0) else {
                            return;
                        };
                        let t = *cap.time();
                        let mut out: Vec<Out> = Vec::new();
                        for (key, saved) in data.drain(..) {
                            if let Some(Ok(row)) = &saved.emitted {
                                out.push((Ok(row.clone()), t, 1));
                            }
                            let group = Group {
                                rows: saved.rows,
                                states: saved.states,
                                emitted: saved.emitted.map(|e| e.map(|r| PackedRow::pack(&r))),
                                changed: false,
                            };
                            groups.insert(PackedRow::pack(&key), group);
                        }
                        if !out.is_empty() {
                            output.session(&cap).give_iterator(out.into_iter());
                        }
                    });
                    input.for_each(|cap, data| {
                        for (row, t, d) in data.drain(..) {
                            pending
                                .entry(t)
                                .or_insert_with(|| (cap.delayed(&t, 0), Vec::new()))
                                .1
                                .push((row, d));
                        }
                    });
                    super::flow::observe(&flow, frontier.frontier());
                    // Updates wait until every restored group is in.
                    if !restored_frontier.frontier().is_empty() {
                        return;
                    }
                    // Snapshots `groups` for `epoch`; false when that failed (the error
                    // is raised).
                    let save =
                        |epoch: u64, groups: &Groups, snapshots: &mut KeyedSnapshots| -> bool {
                            let Some(c) = &ckpt else { return false };
                            match snapshots
                                .take("Reduce", SNAPSHOT_VERSION, groups, saved)
                                .and_then(|(bytes, delta)| {
                                    c.save_state(epoch, &state_key, seq, worker, bytes, delta)
                                }) {
                                Ok(()) => true,
                                Err(e) => {
                                    errors.raise(e);
                                    false
                                }
                            }
                        };
                    let due = |saved: u64| ckpt.as_ref().and_then(|c| c.state_due(saved));
                    // Times in order, once complete: the output at `t` reflects exactly
                    // the input up to `t`.
                    let ready: Vec<Time> = pending
                        .keys()
                        .copied()
                        .take_while(|t| !frontier.frontier().less_equal(t))
                        .collect();
                    for t in ready {
                        // A barrier at or below `t`: everything below it is folded in,
                        // nothing at or above it yet — snapshot now.
                        while let Some((epoch, w)) = due(saved_through) {
                            if t < w {
                                break;
                            }
                            if !save(epoch, &groups, &mut snapshots) {
                                break;
                            }
                            saved_through = epoch;
                        }
                        let Some((cap, updates)) = pending.remove(&t) else {
                            continue;
                        };
                        let mut out: Vec<Out> = Vec::new();
                        // The groups this time changed, each once, in the order first
                        // changed.
                        let mut changed: Vec<PackedRow> = Vec::new();
                        if std::mem::take(&mut create_global) {
                            let key = PackedRow::pack(&[]);
                            groups.insert(
                                key.clone(),
                                Group {
                                    rows: 0,
                                    states: aggregates.states(&strategies),
                                    emitted: None,
                                    changed: true,
                                },
                            );
                            changed.push(key);
                        }
                        for (row, d) in updates {
                            pack_columns(&row, &group_by, &mut probe);
                            let group = match groups.get_mut(probe.as_slice()) {
                                Some(group) => {
                                    if !group.changed {
                                        group.changed = true;
                                        changed.push(PackedRow::from_bytes(&probe));
                                    }
                                    group
                                }
                                None => {
                                    let key = PackedRow::from_bytes(&probe);
                                    changed.push(key.clone());
                                    groups.entry(key).or_insert(Group {
                                        rows: 0,
                                        states: aggregates.states(&strategies),
                                        emitted: None,
                                        changed: true,
                                    })
                                }
                            };
                            let folded = if partial {
                                // Group columns, the row count, the partial states.
                                match row.get(width) {
                                    Some(Datum::Int(n)) => {
                                        group.rows += *n as Diff * d;
                                        aggregates.merge_partial(
                                            &mut group.states,
                                            &row[width + 1..],
                                            d,
                                        )
                                    }
                                    other => Err(format!(
                                        "a partial row holds {other:?} for its row count"
                                    )),
                                }
                            } else {
                                group.rows += d;
                                aggregates.update_states(&mut group.states, &row, d)
                            };
                            if let Err(m) = folded {
                                out.push((Err(ExecutionError::eval("Reduce", m)), t, 1));
                            }
                        }
                        for key in changed {
                            if track {
                                snapshots.changed(key.as_bytes());
                            }
                            let Some(group) = groups.get_mut(&key) else {
                                continue;
                            };
                            group.changed = false;
                            let new: Option<Result<Row, ExecutionError>> =
                                (global || group.rows > 0).then(|| {
                                    aggregates
                                        .finish_states(&group.states)
                                        .map(|aggs| key.iter().chain(aggs).collect())
                                        .map_err(|m| ExecutionError::eval("Reduce", m))
                                });
                            let packed = new
                                .as_ref()
                                .map(|r| r.as_ref().map(PackedRow::pack).map_err(Clone::clone));
                            if packed != group.emitted {
                                if let Some(old) = group.emitted.take() {
                                    out.push((old.map(|r| r.unpack()), t, -1));
                                }
                                if let Some(new) = new {
                                    group.emitted = packed;
                                    out.push((new, t, 1));
                                }
                            }
                            if !global && group.rows <= 0 && group.emitted.is_none() {
                                groups.remove(&key);
                            }
                        }
                        if !out.is_empty() {
                            output.session(&cap).give_iterator(out.into_iter());
                        }
                    }
                    // Barriers the input has passed with nothing at or above them folded.
                    while let Some((epoch, w)) = due(saved_through) {
                        let passed = frontier.frontier().iter().all(|f| *f >= w)
                            && pending.keys().next().is_none_or(|t| *t >= w);
                        if !passed {
                            break;
                        }
                        if !save(epoch, &groups, &mut snapshots) {
                            break;
                        }
                        saved_through = epoch;
                    }
                    // A checkpointed run keeps its groups to the end: a checkpoint taken
                    // after the input ended still restores them.
                    if frontier.frontier().is_empty() && pending.is_empty() && ckpt.is_none() {
                        release(std::mem::take(&mut groups), exit_after_run);
                    }
                }
            },
        );
    let (oks, errs) = split_results(results, "Reduce: split errors");
    ctx.errs.push(errs);
    oks
}
