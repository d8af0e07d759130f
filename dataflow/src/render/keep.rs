//! `Keep`: the checkpoint of an operator whose own state is not snapshotted — the
//! arranged `HashJoin` (outer joins and joins of updating inputs), the retracting
//! `TopK` and `TopN` — kept as its inputs. It sits on each input of such an operator,
//! in a checkpointed run only, and passes every update through unchanged, on the same
//! worker (no exchange).
//!
//! State: the input's net collection so far on this worker, one count per packed row
//! (rows whose count returns to 0 are dropped). At each barrier `w` it snapshots the
//! updates of the times below `w` (those at or above `w` are folded in after the
//! snapshot) — incrementally, the rows whose count changed since the last snapshot,
//! while they are few (`super::keyed_snapshots`).
//! A restore replays the snapshot's rows into the operator at time 0, so the operator
//! rebuilds its state — and re-emits its whole output, which only a sink may receive
//! (the compiler checks: `sluice_compiler::state::checkpoint_mode`). Any worker may
//! replay any rows: the operator exchanges them by its own key.

use super::keyed_snapshots::KeyedSnapshots;
use super::{Context, Diff, PackedMap, Rows, Time};
use differential_dataflow::AsCollection;
use hashbrown::hash_map::EntryRef;
use sluice_compiler::Row;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

/// Version of the snapshot encoding (bincode of `(version, Vec<(row, count)>)`).
const SNAPSHOT_VERSION: u32 = 1;

/// Folds `(row, diff)` into the net collection (`probe`: a reused buffer), reporting
/// the changed row to `snapshots`.
fn fold(
    net: &mut PackedMap<Diff>,
    snapshots: &mut KeyedSnapshots,
    probe: &mut Vec<u8>,
    row: &Row,
    d: Diff,
) {
    if d == 0 {
        return;
    }
    probe.clear();
    for datum in row {
        sluice_compiler::packed::pack_datum(datum, probe);
    }
    snapshots.changed(probe);
    match net.entry_ref(probe.as_slice()) {
        EntryRef::Occupied(mut e) => {
            *e.get_mut() += d;
            if *e.get() == 0 {
                e.remove();
            }
        }
        EntryRef::Vacant(e) => {
            e.insert(d);
        }
    }
}

/// Keeps `rows` (input `input` of the operator whose checkpoint key is `state_key`)
/// for checkpoints; returns them unchanged, after the restored rows. Without
/// checkpoints, `rows` itself.
pub(crate) fn render_keep<'s>(
    ctx: &mut Context<'s>,
    state_key: &str,
    input: usize,
    rows: Rows<'s>,
) -> Rows<'s> {
    let Some(ckpt) = ctx.ckpt.clone() else {
        return rows;
    };
    let key = sluice_compiler::state::input_key(state_key, input);
    let worker = ctx.worker;
    // This worker's share of the restored rows (any share will do: see the module docs).
    let (seq, snapshots): (usize, Vec<Vec<(Row, Diff)>>) =
        ctx.stateful_chains(&key, false, |chain| {
            crate::checkpoint::decode_keyed_chain("Keep", SNAPSHOT_VERSION, chain)
        });
    let restored: Vec<(Row, Diff)> = snapshots.into_iter().flatten().collect();
    let errors = ctx.errors.clone();
    type Out = (Row, Time, Diff);
    rows.inner
        .unary_frontier::<CapacityContainerBuilder<Vec<Out>>, _, _, _>(
            Pipeline,
            "Keep",
            move |cap, _info| {
                let mut net: PackedMap<Diff> = PackedMap::default();
                let mut snapshots = KeyedSnapshots::default();
                let mut probe: Vec<u8> = Vec::new();
                let mut initial: Vec<Out> = Vec::with_capacity(restored.len());
                for (row, d) in restored {
                    fold(&mut net, &mut snapshots, &mut probe, &row, d);
                    initial.push((row, 0, d));
                }
                let mut initial = Some((cap, initial));
                let mut saved_through = ckpt.completed();
                // Updates at or above a requested barrier, folded in after its snapshot.
                let mut later: Vec<(Row, Time, Diff)> = Vec::new();
                move |(input, frontier), output| {
                    if let Some((cap, rows)) = initial.take() {
                        if !rows.is_empty() {
                            output.session(&cap).give_iterator(rows.into_iter());
                        }
                    }
                    // Drain first, then look for a barrier: an update emitted after the
                    // barrier was chosen is then always seen with it.
                    let mut arrived: Vec<(Row, Time, Diff)> = Vec::new();
                    input.for_each(|cap, data| {
                        arrived.extend(data.iter().cloned());
                        output.session(&cap).give_container(data);
                    });
                    let due = ckpt.state_due(saved_through);
                    for (row, t, d) in arrived {
                        match due {
                            Some((_, w)) if t >= w => later.push((row, t, d)),
                            _ => fold(&mut net, &mut snapshots, &mut probe, &row, d),
                        }
                    }
                    let Some((epoch, w)) = due else {
                        // No barrier requested: what waited is folded in.
                        for (row, _, d) in later.drain(..) {
                            fold(&mut net, &mut snapshots, &mut probe, &row, d);
                        }
                        return;
                    };
                    if !frontier.frontier().iter().all(|t| *t >= w) {
                        return;
                    }
                    match snapshots
                        .take("Keep", SNAPSHOT_VERSION, &net, |d| *d)
                        .and_then(|(b, delta)| {
                            ckpt.save_state(epoch, &key, seq, worker.worker, b, delta)
                        }) {
                        Ok(()) => saved_through = epoch,
                        Err(e) => errors.raise(e),
                    }
                    // Updates of later epochs wait for their own barrier.
                    let next = ckpt.state_due(saved_through).map(|(_, w)| w);
                    let (now, still): (Vec<_>, Vec<_>) = std::mem::take(&mut later)
                        .into_iter()
                        .partition(|(_, t, _)| next.is_none_or(|w| *t < w));
                    later = still;
                    for (row, _, d) in now {
                        fold(&mut net, &mut snapshots, &mut probe, &row, d);
                    }
                }
            },
        )
        .as_collection()
}
