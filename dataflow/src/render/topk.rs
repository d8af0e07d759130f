//! `TopK`: per-partition Top-N (`ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)` kept
//! where the row number is at most `limit`), a stateful stage: rows arrive exchanged by
//! the hash of their partition key, and the output is an updating collection.
//!
//! Invariant, for every partition `p` and time `t` (both strategies): the output
//! accumulated up to `t` equals `number(top_limit(sort(input_p up to t)))`, where the
//! sort is by the ORDER BY keys with ties broken by the whole row (so the numbering,
//! and which of several tied rows is kept, is deterministic and the same at any worker
//! count), and `number` appends 1, 2, … when the row number is an output column.
//!
//! * **Monotonic** (append-only input, decided by lowering): a keyed operator applies
//!   each time once the frontier has passed it. Per partition it keeps only the current
//!   top rows (at most `limit`); an arriving row is inserted at its place when that is
//!   within the top, evicting the last row, and forgotten otherwise. Per changed
//!   partition the operator emits the difference between the old and new numbered
//!   top: the evicted row, and, with the row number, every row whose number shifted.
//!   A retraction reaching it (a planning bug) is reported in the errs collection.
//!   In a checkpointed run the partitions' tops are snapshotted at each barrier (the
//!   times below it applied, none at or above it), as `Reduce` does; a restore holds
//!   each partition on the worker that owns its key at the new worker count and
//!   re-emits its numbered top, which only a sink may receive (the compiler checks).
//! * **Retracting**: a differential reduce keyed by the partition, recomputing the
//!   numbered top from the partition's whole multiset whenever it changes (a retracted
//!   top row is replaced by the next best). State: every live input row.

use super::topn::{compare_key, compare_rows};
use super::{key_hash, map_updates, release, split_results, Context, Diff, PackedMap, Rows, Time};
use crate::errors::ExecutionError;
use differential_dataflow::Hashable;
use sluice_compiler::packed::pack_columns;
use sluice_compiler::physical::TopKStrategy;
use sluice_compiler::{Datum, PackedRow, Row, SortKey};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::rc::Rc;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// What a `TopK` node computes (its physical parameters).
#[derive(Clone, Debug)]
pub(crate) struct TopKSpec {
    /// Partition columns.
    pub(crate) partition_by: Vec<usize>,
    /// Order within a partition.
    pub(crate) order_by: Vec<SortKey>,
    /// Rows kept per partition.
    pub(crate) limit: u64,
    /// Whether the row number is appended.
    pub(crate) rank_column: bool,
}

impl TopKSpec {
    fn key(&self, row: &Row) -> Row {
        super::key_row(row, &self.partition_by)
    }

    /// The output rows of a partition whose sorted top is `top` (one entry per copy).
    fn numbered<'a>(
        &'a self,
        top: impl Iterator<Item = &'a Row> + 'a,
    ) -> impl Iterator<Item = Row> + 'a {
        top.enumerate().map(move |(i, row)| {
            let mut out = row.clone();
            if self.rank_column {
                out.push(Datum::Int(i as i64 + 1));
            }
            out
        })
    }
}

/// Renders `TopK` with the strategy lowering chose.
/// (`state_key` names the monotonic strategy's snapshots.)
pub(crate) fn render_topk<'s>(
    ctx: &mut Context<'s>,
    state_key: &str,
    rows: Rows<'s>,
    flow: Option<super::flow::FlowConsumer>,
    spec: TopKSpec,
    strategy: TopKStrategy,
) -> Rows<'s> {
    match strategy {
        TopKStrategy::Monotonic => render_monotonic(ctx, state_key, rows, flow, spec),
        TopKStrategy::Retracting => render_retracting(rows, spec),
    }
}

/// The sorted top of a multiset given as `(row, count)`: one entry per copy, at most
/// `limit` entries.
fn sorted_top<'a>(rows: impl Iterator<Item = (&'a Row, Diff)>, spec: &TopKSpec) -> Vec<&'a Row> {
    let mut live: Vec<(&Row, Diff)> = rows.filter(|(_, n)| *n > 0).collect();
    live.sort_by(|a, b| compare_rows(&spec.order_by, a.0, b.0));
    let limit = usize::try_from(spec.limit).unwrap_or(usize::MAX);
    let mut top = Vec::new();
    for (row, n) in live {
        for _ in 0..n {
            if top.len() >= limit {
                return top;
            }
            top.push(row);
        }
    }
    top
}

/// The general strategy: a differential reduce per partition.
fn render_retracting<'s>(rows: Rows<'s>, spec: TopKSpec) -> Rows<'s> {
    let key_spec = spec.clone();
    // Partition keys packed (compared as bytes in the arrangement); rows stay rows,
    // sorted in place at every recomputation.
    let keyed = map_updates(rows, "TopK: key", move |row: Row, t, r, out| {
        out.push(((PackedRow::pack(&key_spec.key(&row)), row), t, r))
    });
    let top = keyed.reduce_named(
        "TopK (retracting)",
        move |_key: &PackedRow, input: &[(&Row, Diff)], output: &mut Vec<(Row, Diff)>| {
            let top = sorted_top(input.iter().map(|(r, n)| (*r, *n)), &spec);
            let mut merged: BTreeMap<Row, Diff> = BTreeMap::new();
            for row in spec.numbered(top.into_iter()) {
                *merged.entry(row).or_default() += 1;
            }
            output.extend(merged);
        },
    );
    map_updates(
        top,
        "TopK: unkey",
        |(_k, row): (PackedRow, Row), t, r, out| out.push((row, t, r)),
    )
}

/// Updates of one time, with a capability at it.
type Pending = (Capability<Time>, Vec<(Row, Diff)>);

/// A row the monotonic strategy holds: its ORDER BY values, compared by the sort keys,
/// and the whole row packed ([`PackedRow`]: one allocation; the tie-break, compared as
/// bytes in row order; unpacked only when emitted).
#[derive(Clone, Debug, PartialEq, Eq)]
struct HeldRow {
    /// The values of `order_by`'s columns, in key order.
    order: Row,
    /// The row.
    row: PackedRow,
}

impl HeldRow {
    fn new(spec: &TopKSpec, row: &Row) -> Self {
        HeldRow {
            order: spec
                .order_by
                .iter()
                .map(|k| row.get(k.column).cloned().unwrap_or(Datum::Null))
                .collect(),
            row: PackedRow::pack(row),
        }
    }
}

/// Held rows are shared, so that keeping a partition's old top while a time is applied
/// copies pointers, not rows.
type Held = Rc<HeldRow>;

/// [`compare_rows`] of two held rows.
fn compare_held(spec: &TopKSpec, a: &HeldRow, b: &HeldRow) -> Ordering {
    for (i, k) in spec.order_by.iter().enumerate() {
        let ord = compare_key(k, a.order.get(i), b.order.get(i));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.row.cmp(&b.row)
}

/// [`compare_rows`] of an arriving row and a held one (the row is packed only for a
/// tie on every sort key).
fn compare_arriving(spec: &TopKSpec, row: &Row, held: &HeldRow) -> Ordering {
    for (i, k) in spec.order_by.iter().enumerate() {
        let ord = compare_key(k, row.get(k.column), held.order.get(i));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    PackedRow::pack(row).cmp(&held.row)
}

/// Inserts `copies` copies of `row` into the sorted `top` (at most `limit` long),
/// after any equal rows; rows pushed past `limit` are dropped.
fn insert_sorted(top: &mut Vec<Held>, row: Held, copies: Diff, spec: &TopKSpec) {
    let limit = usize::try_from(spec.limit).unwrap_or(usize::MAX);
    for _ in 0..copies {
        let at = top.partition_point(|x| compare_held(spec, x, &row) != Ordering::Greater);
        if at >= limit {
            return;
        }
        top.insert(at, row.clone());
        top.truncate(limit);
    }
}

/// The output changes of a partition whose sorted top went from `old` to `new` by
/// insertions only (the monotonic strategy), one `(row, ±1)` per copy. With the row
/// number, every row from the first position where the tops differ is renumbered
/// (retracted at its old number, inserted at its new one); without it, only the evicted
/// and the inserted rows change, found by one merge of the two sorted tops.
fn top_changes(spec: &TopKSpec, old: &[Held], new: &[Held], mut emit: impl FnMut(Row, Diff)) {
    if spec.rank_column {
        let same = old
            .iter()
            .zip(new)
            .take_while(|(a, b)| Rc::ptr_eq(a, b) || a == b)
            .count();
        let numbered = |i: usize, row: &HeldRow| {
            let mut out = row.row.unpack();
            out.push(Datum::Int(i as i64 + 1));
            out
        };
        for (i, row) in old.iter().enumerate().skip(same) {
            emit(numbered(i, row), -1);
        }
        for (i, row) in new.iter().enumerate().skip(same) {
            emit(numbered(i, row), 1);
        }
        return;
    }
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        match compare_held(spec, &old[i], &new[j]) {
            Ordering::Equal => {
                i += 1;
                j += 1;
            }
            Ordering::Less => {
                emit(old[i].row.unpack(), -1);
                i += 1;
            }
            Ordering::Greater => {
                emit(new[j].row.unpack(), 1);
                j += 1;
            }
        }
    }
    for row in &old[i..] {
        emit(row.row.unpack(), -1);
    }
    for row in &new[j..] {
        emit(row.row.unpack(), 1);
    }
}

/// One partition in a snapshot: its key and its sorted top rows.
type Partition = (Row, Vec<Row>);

/// Version of the monotonic strategy's snapshot encoding (bincode of `(version,
/// Vec<(partition key, sorted top)>)`).
const SNAPSHOT_VERSION: u32 = 1;

/// The partitions' tops, encoded for a checkpoint.
fn snapshot(partitions: &PackedMap<Vec<Held>>) -> Result<Vec<u8>, ExecutionError> {
    let entries: Vec<Partition> = partitions
        .iter()
        .map(|(key, top)| (key.unpack(), top.iter().map(|r| r.row.unpack()).collect()))
        .collect();
    crate::checkpoint::encode_snapshot("TopK", SNAPSHOT_VERSION, &entries)
}

/// The monotonic strategy: a keyed operator keeping only the top rows (module docs).
fn render_monotonic<'s>(
    ctx: &mut Context<'s>,
    state_key: &str,
    rows: Rows<'s>,
    flow: Option<super::flow::FlowConsumer>,
    spec: TopKSpec,
) -> Rows<'s> {
    let exit_after_run = ctx.exit_after_run;
    type Out = (Result<Row, ExecutionError>, Time, Diff);
    let route = spec.clone();
    let exchange =
        Exchange::new(move |(row, _, _): &(Row, Time, Diff)| key_hash(row, &route.partition_by));
    // Checkpoints: register, and take the restored partitions whose key this worker
    // owns (the exchange routes a key to `hash % workers`).
    let worker = ctx.worker;
    let state_key = state_key.to_string();
    let (seq, snapshots): (usize, Vec<Vec<Partition>>) =
        ctx.stateful(&state_key, "TopK", SNAPSHOT_VERSION, true);
    let restored: Vec<Partition> = snapshots
        .into_iter()
        .flatten()
        .filter(|(key, _)| (key.hashed() % worker.workers.max(1) as u64) as usize == worker.worker)
        .collect();
    let ckpt = ctx.ckpt.clone();
    let errors = ctx.errors.clone();
    let results = rows
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<Out>>, _, _, _>(
            exchange,
            "TopK (monotonic)",
            move |cap, _info| {
                let mut partitions: PackedMap<Vec<Held>> = PackedMap::default();
                // The packed partition key of the row being applied (reused).
                let mut probe: Vec<u8> = Vec::new();
                let mut pending: BTreeMap<Time, Pending> = BTreeMap::new();
                // Restored partitions re-emit their numbered tops (see the module docs).
                let mut initial: Vec<Out> = Vec::new();
                for (key, top) in restored {
                    initial.extend(spec.numbered(top.iter()).map(|r| (Ok(r), 0, 1)));
                    let top: Vec<Held> = top
                        .iter()
                        .map(|r| Rc::new(HeldRow::new(&spec, r)))
                        .collect();
                    partitions.insert(PackedRow::pack(&key), top);
                }
                let mut initial = Some((cap, initial));
                let mut saved_through = ckpt.as_ref().map_or(0, |c| c.completed());
                move |(input, frontier), output| {
                    if let Some((cap, rows)) = initial.take() {
                        if !rows.is_empty() {
                            output.session(&cap).give_iterator(rows.into_iter());
                        }
                    }
                    // Snapshots the partitions for `epoch`; false when that failed (the
                    // error is raised).
                    let save = |epoch: u64, partitions: &PackedMap<Vec<Held>>| -> bool {
                        let Some(c) = &ckpt else { return false };
                        match snapshot(partitions).and_then(|bytes| {
                            c.save_state(epoch, &state_key, seq, worker.worker, bytes, false)
                        }) {
                            Ok(()) => true,
                            Err(e) => {
                                errors.raise(e);
                                false
                            }
                        }
                    };
                    let due = |saved: u64| ckpt.as_ref().and_then(|c| c.state_due(saved));
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
                    // Times in order, once complete: the output at `t` reflects exactly
                    // the input up to `t`.
                    let ready: Vec<Time> = pending
                        .keys()
                        .copied()
                        .take_while(|t| !frontier.frontier().less_equal(t))
                        .collect();
                    for t in ready {
                        // A barrier at or below `t`: every time below it is applied,
                        // none at or above it — snapshot now.
                        while let Some((epoch, w)) = due(saved_through) {
                            if t < w || !save(epoch, &partitions) {
                                break;
                            }
                            saved_through = epoch;
                        }
                        let Some((cap, updates)) = pending.remove(&t) else {
                            continue;
                        };
                        let mut out: Vec<Out> = Vec::new();
                        // The top of each partition this time changed, as it was before.
                        let mut before: PackedMap<Vec<Held>> = PackedMap::default();
                        for (row, d) in updates {
                            if d < 0 {
                                out.push((
                                    Err(ExecutionError::eval(
                                        "TopK",
                                        "a retraction reached the append-only Top-N \
                                         (a planning bug; please report it)",
                                    )),
                                    t,
                                    1,
                                ));
                                continue;
                            }
                            if spec.limit == 0 {
                                continue;
                            }
                            pack_columns(&row, &spec.partition_by, &mut probe);
                            let limit = usize::try_from(spec.limit).unwrap_or(usize::MAX);
                            let top = match partitions.get_mut(probe.as_slice()) {
                                Some(top) => {
                                    let enters = top.len() < limit
                                        || top.last().is_some_and(|last| {
                                            compare_arriving(&spec, &row, last) == Ordering::Less
                                        });
                                    if !enters {
                                        continue;
                                    }
                                    if !before.contains_key(probe.as_slice()) {
                                        before.insert(PackedRow::from_bytes(&probe), top.clone());
                                    }
                                    top
                                }
                                None => {
                                    let key = PackedRow::from_bytes(&probe);
                                    before.insert(key.clone(), Vec::new());
                                    partitions.entry(key).or_default()
                                }
                            };
                            insert_sorted(top, Rc::new(HeldRow::new(&spec, &row)), d, &spec);
                        }
                        for (key, old) in before {
                            let new = partitions.get(&key).map(Vec::as_slice).unwrap_or(&[]);
                            top_changes(&spec, &old, new, |row, d| out.push((Ok(row), t, d)));
                        }
                        if !out.is_empty() {
                            output.session(&cap).give_iterator(out.into_iter());
                        }
                    }
                    // Barriers the input has passed with nothing at or above them applied.
                    while let Some((epoch, w)) = due(saved_through) {
                        let passed = frontier.frontier().iter().all(|f| *f >= w)
                            && pending.keys().next().is_none_or(|t| *t >= w);
                        if !passed || !save(epoch, &partitions) {
                            break;
                        }
                        saved_through = epoch;
                    }
                    // A checkpointed run keeps its partitions to the end: a checkpoint
                    // taken after the input ended still restores them.
                    if frontier.frontier().is_empty() && pending.is_empty() && ckpt.is_none() {
                        release(std::mem::take(&mut partitions), exit_after_run);
                    }
                }
            },
        );
    let (oks, errs) = split_results(results, "TopK: split errors");
    ctx.errs.push(errs);
    oks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(limit: u64, rank_column: bool) -> TopKSpec {
        TopKSpec {
            partition_by: vec![0],
            order_by: vec![SortKey {
                column: 1,
                descending: true,
                nulls_first: false,
            }],
            limit,
            rank_column,
        }
    }

    fn row(k: i64, v: i64) -> Row {
        vec![Datum::Int(k), Datum::Int(v)]
    }

    /// The monotonic insertion keeps exactly what sorting everything and cutting keeps.
    #[test]
    fn insert_sorted_matches_sort_and_cut() {
        let values = [5, 1, 9, 9, 3, 7, 9, 2, 8, 5, 0, 6];
        for limit in 0..6 {
            let s = spec(limit, true);
            let mut top = Vec::new();
            let mut all = Vec::new();
            for (i, v) in values.iter().enumerate() {
                let r = row(1, *v);
                insert_sorted(
                    &mut top,
                    Rc::new(HeldRow::new(&s, &r)),
                    1 + (i % 2) as Diff,
                    &s,
                );
                all.push((r, 1 + (i % 2) as Diff));
                let expected: Vec<Row> = sorted_top(all.iter().map(|(r, n)| (r, *n)), &s)
                    .into_iter()
                    .cloned()
                    .collect();
                let held: Vec<Row> = top.iter().map(|r| r.row.unpack()).collect();
                assert_eq!(held, expected, "limit {limit} after {} rows", i + 1);
            }
        }
    }

    /// The changes of a partition equal the difference of its numbered tops, computed
    /// the slow way (a multiset difference), for every insertion sequence tried.
    #[test]
    fn top_changes_equal_the_difference_of_the_numbered_tops() {
        let values = [5, 1, 9, 9, 3, 7, 9, 2, 8, 5, 0, 6, 9, 4];
        for rank_column in [false, true] {
            for limit in 1..5 {
                let s = spec(limit, rank_column);
                let mut top = Vec::new();
                for (i, v) in values.iter().enumerate() {
                    let old = top.clone();
                    insert_sorted(&mut top, Rc::new(HeldRow::new(&s, &row(1, *v))), 1, &s);
                    if i % 3 == 0 {
                        insert_sorted(&mut top, Rc::new(HeldRow::new(&s, &row(1, v - 1))), 1, &s);
                    }
                    let mut got: BTreeMap<Row, Diff> = BTreeMap::new();
                    top_changes(&s, &old, &top, |r, d| *got.entry(r).or_default() += d);
                    got.retain(|_, d| *d != 0);
                    let mut expected: BTreeMap<Row, Diff> = BTreeMap::new();
                    let (old_rows, top_rows): (Vec<Row>, Vec<Row>) = (
                        old.iter().map(|r| r.row.unpack()).collect(),
                        top.iter().map(|r| r.row.unpack()).collect(),
                    );
                    for r in s.numbered(old_rows.iter()) {
                        *expected.entry(r).or_default() -= 1;
                    }
                    for r in s.numbered(top_rows.iter()) {
                        *expected.entry(r).or_default() += 1;
                    }
                    expected.retain(|_, d| *d != 0);
                    assert_eq!(got, expected, "limit {limit} rank {rank_column} step {i}");
                }
            }
        }
    }

    #[test]
    fn numbering_appends_the_row_number() {
        let s = spec(3, true);
        let top = [row(1, 9), row(1, 7)];
        let numbered: Vec<Row> = s.numbered(top.iter()).collect();
        assert_eq!(
            numbered[1],
            vec![Datum::Int(1), Datum::Int(7), Datum::Int(2)]
        );
        let s = spec(3, false);
        assert_eq!(s.numbered(top.iter()).next(), Some(row(1, 9)));
    }
}
