//! Terminal operators: table sinks, the collect sink (rows gathered on worker 0) and
//! the error sink. Each sets a `done` flag once its input is complete and its last
//! work is finished; the worker steps until every flag is set.

use super::{key_hash, key_row, Batches, Diff, Errs, PackedMap, Rows, Time};
use crate::convert::rows_to_batch;
use crate::errors::{ErrorSlot, ExecutionError};
use crate::progress::Progress;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use differential_dataflow::Hashable;
use hashbrown::hash_map::Entry;
use sluice_catalogs::{Schema, TableDescriptor};
use sluice_compiler::packed::pack_columns;
use sluice_compiler::physical::SinkMode;
use sluice_compiler::{PackedRow, Row};
use sluice_connectors::Registry;
use sluice_connectors::{Sink, WorkerContext};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use timely::dataflow::channels::pact::{Exchange, Pipeline};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Exchange as _;

/// Set by a terminal operator when it has seen and handled its whole input.
pub(crate) type DoneFlag = Rc<Cell<bool>>;

/// One worker's sink of one table output, kept for the commit after the run.
pub(crate) struct TableSinkHandle {
    table: String,
    /// Its checkpoint key (`<output>:<table>`).
    pub(crate) key: String,
    sink: Rc<RefCell<Option<Box<dyn Sink>>>>,
}

/// Phase one of `epoch` on every sink of this worker, outside the dataflow (the final
/// epoch of a checkpointed run): `(key, pending commit, write-ahead copy)` per sink.
pub(crate) fn prepare_epoch(
    sinks: &[TableSinkHandle],
    epoch: u64,
) -> Result<PreparedSinks, ExecutionError> {
    let mut out = Vec::new();
    for handle in sinks {
        if let Some(sink) = handle.sink.borrow_mut().as_mut() {
            sink.prepare_commit(epoch)
                .map_err(|e| ExecutionError::Connector {
                    table: handle.table.clone(),
                    message: e.to_string(),
                })?;
            let pending = sink.pending_commit(epoch);
            out.push((handle.key.clone(), pending, sink.write_ahead(epoch)));
        }
    }
    Ok(out)
}

/// What [`prepare_epoch`] returns: `(key, pending commit, write-ahead copy)` per sink.
pub(crate) type PreparedSinks = Vec<(String, serde_json::Value, Option<Vec<u8>>)>;

/// The epoch a bounded run commits (checkpointed runs will commit one per checkpoint).
pub(crate) const BOUNDED_EPOCH: u64 = 1;

/// Phase two of the commit of `epoch` on every sink of this worker: makes what
/// `prepare_commit(epoch)` staged visible. Called only when the run had no error.
pub(crate) fn commit_epoch(sinks: &[TableSinkHandle], epoch: u64) -> Result<(), ExecutionError> {
    for handle in sinks {
        if let Some(sink) = handle.sink.borrow_mut().as_mut() {
            sink.commit(epoch).map_err(|e| ExecutionError::Connector {
                table: handle.table.clone(),
                message: e.to_string(),
            })?;
        }
    }
    Ok(())
}

/// Removes and returns, in time order, the pending entries of every time `frontier`
/// has passed (complete: nothing more arrives at them).
fn take_complete<V>(
    pending: &mut BTreeMap<Time, V>,
    frontier: timely::progress::frontier::AntichainRef<'_, Time>,
) -> Vec<(Time, V)> {
    let mut out = Vec::new();
    while let Some(entry) = pending.first_entry() {
        if frontier.less_equal(entry.key()) {
            break;
        }
        out.push(entry.remove_entry());
    }
    out
}

/// Consolidates updates; a net retraction is reported as `Err(row)`.
fn consolidate(updates: impl IntoIterator<Item = (Row, Diff)>) -> Result<Vec<(Row, Diff)>, Row> {
    let mut acc: BTreeMap<Row, Diff> = BTreeMap::new();
    for (row, d) in updates {
        *acc.entry(row).or_default() += d;
    }
    let mut out = Vec::new();
    for (row, d) in acc {
        match d {
            0 => {}
            d if d < 0 => return Err(row),
            d => out.push((row, d)),
        }
    }
    Ok(out)
}

struct TableWriter {
    table: String,
    schema: Schema,
    sink: Rc<RefCell<Option<Box<dyn Sink>>>>,
    errors: ErrorSlot,
    progress: Arc<Progress>,
}

impl TableWriter {
    /// The writer of `sink`, the table `table` of `spec`.
    fn new(spec: &TableSinkSpec<'_>, table: &str, sink: &SharedSink) -> TableWriter {
        TableWriter {
            table: table.to_string(),
            schema: spec.schema.clone(),
            sink: sink.clone(),
            errors: spec.errors.clone(),
            progress: spec.progress.clone(),
        }
    }

    fn write(&self, updates: Vec<(Row, Diff)>) {
        if self.errors.is_cancelled() || self.progress.is_cancelled() {
            return;
        }
        let rows = match consolidate(updates) {
            Ok(rows) => rows,
            Err(row) => {
                self.errors.raise(ExecutionError::Internal(format!(
                    "retraction of {row:?} reached the append-only sink of table '{}'",
                    self.table
                )));
                return;
            }
        };
        let expanded: Vec<Row> = rows
            .into_iter()
            .flat_map(|(row, n)| std::iter::repeat_n(row, n as usize))
            .collect();
        if expanded.is_empty() {
            return;
        }
        let result = rows_to_batch(&expanded, &self.schema, "Sink").and_then(|batch| {
            match self.sink.borrow_mut().as_mut() {
                Some(sink) => sink.write(&batch).map_err(|e| self.connector(e)),
                None => Ok(()),
            }
        });
        match result {
            Ok(()) => self.progress.add_rows_out(expanded.len() as u64),
            Err(e) => self.errors.raise(e),
        }
    }

    /// Writes one time's changes of an updating result: `deletes` (rows whose key is
    /// deleted, or rows shown retracted), then `upserts` (each row once).
    fn write_changes(&self, deletes: Vec<Row>, upserts: Vec<Row>) {
        if self.errors.is_cancelled() || self.progress.is_cancelled() {
            return;
        }
        for (rows, delete) in [(deletes, true), (upserts, false)] {
            if rows.is_empty() {
                continue;
            }
            let result = rows_to_batch(&rows, &self.schema, "Sink").and_then(|batch| {
                match self.sink.borrow_mut().as_mut() {
                    Some(sink) if delete => sink.write_deletes(&batch),
                    Some(sink) => sink.write(&batch),
                    None => Ok(()),
                }
                .map_err(|e| self.connector(e))
            });
            match result {
                Ok(()) => self.progress.add_rows_out(rows.len() as u64),
                Err(e) => {
                    self.errors.raise(e);
                    return;
                }
            }
        }
    }

    /// Whether the sink drops what it is given ([`sluice_connectors::Sink::discards`]).
    fn discards(&self) -> bool {
        self.sink.borrow().as_ref().is_some_and(|s| s.discards())
    }

    /// Counts `rows` rows written to a discarding sink.
    fn count(&self, rows: Diff) {
        if rows <= 0 || self.errors.is_cancelled() || self.progress.is_cancelled() {
            return;
        }
        if let Some(sink) = self.sink.borrow_mut().as_mut() {
            sink.count(rows as u64);
        }
        self.progress.add_rows_out(rows as u64);
    }

    /// Writes one append-only batch of the table's schema.
    fn write_batch(&self, batch: &RecordBatch) {
        if self.errors.is_cancelled() || self.progress.is_cancelled() {
            return;
        }
        let result = match self.sink.borrow_mut().as_mut() {
            Some(sink) => sink.write(batch).map_err(|e| self.connector(e)),
            None => Ok(()),
        };
        match result {
            Ok(()) => self.progress.add_rows_out(batch.num_rows() as u64),
            Err(e) => self.errors.raise(e),
        }
    }

    fn connector(&self, e: sluice_connectors::ConnectorError) -> ExecutionError {
        ExecutionError::Connector {
            table: self.table.clone(),
            message: e.to_string(),
        }
    }

    fn prepare(&self, epoch: u64) {
        if self.errors.is_cancelled() || self.progress.is_cancelled() {
            return;
        }
        let result = match self.sink.borrow_mut().as_mut() {
            Some(sink) => sink.prepare_commit(epoch).map_err(|e| self.connector(e)),
            None => Ok(()),
        };
        if let Err(e) = result {
            self.errors.raise(e);
        }
    }

    /// Stages `epoch` (`prepare_commit`) and reports it, with what its commit will do
    /// and its write-ahead copy, to the coordinator.
    fn stage(&self, c: &crate::checkpoint::Coordinator, epoch: u64, key: &str, worker: usize) {
        self.prepare(epoch);
        let (pending, write_ahead) = match self.sink.borrow_mut().as_mut() {
            Some(s) => (s.pending_commit(epoch), s.write_ahead(epoch)),
            None => (serde_json::Value::Null, None),
        };
        if let Err(e) = c.sink_prepared(epoch, key, worker, pending, write_ahead) {
            self.errors.raise(e);
        }
    }
}

/// Everything a table sink needs besides its input.
pub(crate) struct TableSinkSpec<'a> {
    /// The table written.
    pub(crate) table: &'a TableDescriptor,
    /// The output schema (the table's).
    pub(crate) schema: &'a Schema,
    /// How the rows are written (an updating input: `Final`, `Upsert` or `Changelog`).
    pub(crate) mode: SinkMode,
    /// Connectors.
    pub(crate) registry: &'a Registry,
    /// This worker.
    pub(crate) worker: WorkerContext,
    /// Error slot.
    pub(crate) errors: ErrorSlot,
    /// Counters.
    pub(crate) progress: Arc<Progress>,
    /// The output's index in the plan.
    pub(crate) output: usize,
    /// The run's checkpoint coordinator (checkpointed runs only).
    pub(crate) ckpt: Option<Arc<crate::checkpoint::Coordinator>>,
}

/// Opens the table's sink on this worker (an open error is raised and leaves no sink)
/// and registers it with the checkpoint coordinator: `(checkpoint key, sink, stager)`.
fn open_sink(spec: &TableSinkSpec<'_>, table: &str) -> (String, SharedSink, EpochStager) {
    let key = crate::checkpoint::sink_key(spec.output, table);
    let worker = spec.worker.worker;
    if let Some(c) = &spec.ckpt {
        c.register_sink(&key, worker);
    }
    let sink = match spec.registry.create_sink(spec.table, spec.worker) {
        Ok(sink) => Some(sink),
        Err(e) => {
            spec.errors.raise(ExecutionError::Connector {
                table: table.to_string(),
                message: e.to_string(),
            });
            None
        }
    };
    let stager = EpochStager {
        prepared_through: spec.ckpt.as_ref().map_or(0, |c| c.completed()),
        ckpt: spec.ckpt.clone(),
        key: key.clone(),
        worker,
    };
    (key, Rc::new(RefCell::new(sink)), stager)
}

/// One worker's sink of a table, shared by its operator and the commit after the run.
type SharedSink = Rc<RefCell<Option<Box<dyn Sink>>>>;

/// The worker half of a checkpointed sink's two-phase commit: once the input frontier
/// passes a requested barrier, this worker's share of that epoch is written, so it is
/// staged (`prepare_commit`) and reported to the coordinator.
struct EpochStager {
    ckpt: Option<Arc<crate::checkpoint::Coordinator>>,
    key: String,
    worker: usize,
    prepared_through: u64,
}

impl EpochStager {
    /// True in a checkpointed run (else the run commits `BOUNDED_EPOCH` at its end).
    fn checkpointed(&self) -> bool {
        self.ckpt.is_some()
    }

    /// Before the rows of time `t` are written (the frontier has passed `t`): stages
    /// every requested epoch whose barrier is at or below `t`, so that those rows land
    /// in the epoch after — when the frontier jumps past a barrier and past later times
    /// at once, writing first would put rows of the next epoch into this one's files
    /// (committed again after a restore from this epoch's checkpoint).
    fn stage_through(&mut self, t: Time, writer: &TableWriter) {
        let Some(c) = &self.ckpt else {
            return;
        };
        loop {
            let epoch = self.prepared_through + 1;
            if epoch > c.requested() || c.barrier_of(epoch) > t {
                break;
            }
            writer.stage(c, epoch, &self.key, self.worker);
            self.prepared_through = epoch;
        }
    }

    /// Stages every requested epoch whose barrier `frontier` has passed.
    fn stage_passed(
        &mut self,
        frontier: timely::progress::frontier::AntichainRef<'_, Time>,
        writer: &TableWriter,
    ) {
        let Some(c) = &self.ckpt else {
            return;
        };
        loop {
            let epoch = self.prepared_through + 1;
            if epoch > c.requested() {
                break;
            }
            let b = c.barrier_of(epoch);
            if frontier.iter().any(|t| *t < b) {
                break;
            }
            writer.stage(c, epoch, &self.key, self.worker);
            self.prepared_through = epoch;
        }
    }
}

/// A table sink on this worker's share of `rows`. Append-only inputs are written time
/// by time as the frontier passes each time; updating inputs are consolidated as they
/// arrive (state: one count per row of the current result) and written once, when the
/// input is complete. Then `prepare_commit(1)`. A discarding sink (`blackhole`) keeps
/// no state: it counts the rows (the sum of the diffs, which is the net result's size)
/// as they arrive.
pub(crate) fn render_table_sink(
    rows: Rows<'_>,
    spec: TableSinkSpec<'_>,
) -> (DoneFlag, TableSinkHandle) {
    let table = spec.table.name.clone();
    let (key, sink, mut stager) = open_sink(&spec, &table);
    let writer = TableWriter::new(&spec, &table, &sink);
    let updating = spec.mode == SinkMode::Final;
    let done: DoneFlag = Rc::new(Cell::new(false));
    let flag = done.clone();
    let mut pending: BTreeMap<Time, Vec<(Row, Diff)>> = BTreeMap::new();
    // An updating input's net result so far: each row's multiplicity, updated in place
    // as its changelog arrives (rows whose count returns to 0 are dropped), so memory is
    // the size of the result, not of the changelog. Rows are held packed.
    let mut net: PackedMap<Diff> = PackedMap::default();
    let discards = writer.discards();
    let mut discarded: Diff = 0;
    // An updating input is consolidated per row, so every update of a row must reach
    // the same worker: operators may emit a row's insertion and its retraction on
    // different workers (differential's `antijoin` keeps its input's rows where they
    // are and retracts the matched ones where their key lives).
    let stream = if updating && !discards {
        rows.inner
            .exchange(|(row, _, _): &(Row, Time, Diff)| row.hashed())
    } else {
        rows.inner
    };
    stream.sink(
        Pipeline,
        &format!("Sink({table})"),
        move |(input, frontier)| {
            input.for_each(|_cap, data| {
                for (row, t, d) in data.drain(..) {
                    if discards {
                        discarded += d;
                    } else if updating {
                        match net.entry(PackedRow::pack(&row)) {
                            Entry::Occupied(mut e) => {
                                *e.get_mut() += d;
                                if *e.get() == 0 {
                                    e.remove();
                                }
                            }
                            Entry::Vacant(e) => {
                                if d != 0 {
                                    e.insert(d);
                                }
                            }
                        }
                    } else {
                        pending.entry(t).or_default().push((row, d));
                    }
                }
            });
            if discards && !updating {
                writer.count(std::mem::take(&mut discarded));
            }
            if !updating {
                for (t, updates) in take_complete(&mut pending, frontier.frontier()) {
                    stager.stage_through(t, &writer);
                    writer.write(updates);
                }
            }
            // Checkpointed: once the input frontier passes a requested barrier, this
            // worker's share of the epoch is written: stage it.
            stager.stage_passed(frontier.frontier(), &writer);
            if frontier.frontier().is_empty() && !flag.get() {
                let rest: Vec<(Row, Diff)> = std::mem::take(&mut pending)
                    .into_values()
                    .flatten()
                    .chain(
                        std::mem::take(&mut net)
                            .into_iter()
                            .map(|(r, d)| (r.unpack(), d)),
                    )
                    .collect();
                writer.write(rest);
                writer.count(std::mem::take(&mut discarded));
                if !stager.checkpointed() {
                    writer.prepare(BOUNDED_EPOCH);
                }
                flag.set(true);
            }
        },
    );
    (done, TableSinkHandle { table, key, sink })
}

/// A table sink of an updating result that is written as it changes
/// ([`SinkMode::Upsert`] or [`SinkMode::Changelog`]): rows are exchanged by the sink's
/// key (changelog: by the whole row), and once the frontier passes a time, that time's
/// updates are consolidated and written — staged into checkpoint epochs like appended
/// rows. Upsert: per changed key, its new row, or a delete when it has none left
/// (`unique`: the time's insertion of a key is its new row; else the live rows of
/// each key are kept and the latest still live is written). Changelog: the time's
/// retracted rows as deletes, then its inserted rows. State: pending times' updates,
/// plus (upsert, not unique) each key's live rows. After a restore, the operator above
/// re-emits its whole result, so every live key is written again (an upsert of the
/// row it already has).
pub(crate) fn render_change_sink(
    rows: Rows<'_>,
    spec: TableSinkSpec<'_>,
) -> (DoneFlag, TableSinkHandle) {
    let table = spec.table.name.clone();
    let (key, sink, mut stager) = open_sink(&spec, &table);
    let writer = TableWriter::new(&spec, &table, &sink);
    let (cols, unique) = match spec.mode {
        SinkMode::Upsert { key, unique } => (Some(key), unique),
        _ => (None, true),
    };
    let stream = match cols.clone() {
        Some(cols) => rows
            .inner
            .exchange(move |(row, _, _): &(Row, Time, Diff)| key_hash(row, &cols)),
        None => rows
            .inner
            .exchange(|(row, _, _): &(Row, Time, Diff)| row.hashed()),
    };
    let done: DoneFlag = Rc::new(Cell::new(false));
    let flag = done.clone();
    let mut pending: BTreeMap<Time, Vec<(Row, Diff)>> = BTreeMap::new();
    let mut live: PackedMap<Vec<PackedRow>> = PackedMap::default();
    stream.sink(
        Pipeline,
        &format!("Sink({table})"),
        move |(input, frontier)| {
            input.for_each(|_cap, data| {
                for (row, t, d) in data.drain(..) {
                    pending.entry(t).or_default().push((row, d));
                }
            });
            for (t, updates) in take_complete(&mut pending, frontier.frontier()) {
                stager.stage_through(t, &writer);
                let changes = net_changes(updates);
                let (deletes, upserts) = match &cols {
                    None => changelog(changes),
                    Some(cols) if unique => upserts_of_unique(changes, cols),
                    Some(cols) => upserts_of_live(changes, cols, &mut live),
                };
                writer.write_changes(deletes, upserts);
            }
            stager.stage_passed(frontier.frontier(), &writer);
            if frontier.frontier().is_empty() && !flag.get() {
                if !stager.checkpointed() {
                    writer.prepare(BOUNDED_EPOCH);
                }
                flag.set(true);
            }
        },
    );
    (done, TableSinkHandle { table, key, sink })
}

/// One time's updates, consolidated: each changed row once, with its net count (never
/// 0), in row order.
fn net_changes(updates: Vec<(Row, Diff)>) -> Vec<(Row, Diff)> {
    let mut acc: BTreeMap<Row, Diff> = BTreeMap::new();
    for (row, d) in updates {
        *acc.entry(row).or_default() += d;
    }
    acc.into_iter().filter(|(_, d)| *d != 0).collect()
}

/// Changelog: retracted rows (as often as retracted) and inserted rows.
fn changelog(changes: Vec<(Row, Diff)>) -> (Vec<Row>, Vec<Row>) {
    let (mut deletes, mut inserts) = (Vec::new(), Vec::new());
    for (row, d) in changes {
        let into = if d < 0 { &mut deletes } else { &mut inserts };
        into.extend(std::iter::repeat_n(row, d.unsigned_abs()));
    }
    (deletes, inserts)
}

/// Upserts of a result unique by its key: a key with an inserted row gets it; a key
/// with only retractions is deleted (the retracted row carries the key).
fn upserts_of_unique(changes: Vec<(Row, Diff)>, cols: &[usize]) -> (Vec<Row>, Vec<Row>) {
    let mut by_key: BTreeMap<Row, (Option<Row>, Option<Row>)> = BTreeMap::new();
    for (row, d) in changes {
        let entry = by_key.entry(key_row(&row, cols)).or_default();
        if d > 0 {
            entry.0 = Some(row);
        } else {
            entry.1 = Some(row);
        }
    }
    let (mut deletes, mut upserts) = (Vec::new(), Vec::new());
    for (_, (new, old)) in by_key {
        match (new, old) {
            (Some(new), _) => upserts.push(new),
            (None, Some(old)) => deletes.push(old),
            (None, None) => {}
        }
    }
    (deletes, upserts)
}

/// Upserts of a result that may repeat a key: `live` holds each key's live rows
/// (packed), oldest first; a key whose latest live row changed gets it, a key left with
/// none is deleted.
fn upserts_of_live(
    changes: Vec<(Row, Diff)>,
    cols: &[usize],
    live: &mut PackedMap<Vec<PackedRow>>,
) -> (Vec<Row>, Vec<Row>) {
    let mut before: BTreeMap<PackedRow, Option<PackedRow>> = BTreeMap::new();
    let mut key = Vec::new();
    for (row, d) in changes {
        pack_columns(&row, cols, &mut key);
        let rows = live.entry_ref(key.as_slice()).or_default();
        if !before.contains_key(key.as_slice()) {
            before.insert(PackedRow::from_bytes(&key), rows.last().cloned());
        }
        let row = PackedRow::pack(&row);
        if d > 0 {
            rows.extend(std::iter::repeat_n(row, d as usize));
        } else {
            for _ in 0..d.unsigned_abs() {
                if let Some(i) = rows.iter().rposition(|r| *r == row) {
                    rows.remove(i);
                }
            }
        }
    }
    let (mut deletes, mut upserts) = (Vec::new(), Vec::new());
    for (key, old) in before {
        let now = live.get(&key).and_then(|rows| rows.last().cloned());
        if now.is_none() {
            live.remove(&key);
        }
        match (now, old) {
            (Some(now), old) if old.as_ref() != Some(&now) => upserts.push(now.unpack()),
            (None, Some(old)) => deletes.push(old.unpack()),
            _ => {}
        }
    }
    (deletes, upserts)
}

/// A table sink of an append-only output still in Arrow batches (a source and the
/// stateless stages after it): batches are written as they are, time by time as the
/// frontier passes each time (so that a checkpoint barrier splits epochs exactly as
/// for rows), each re-labelled with the table's Arrow schema; no row round-trip and no
/// consolidation (nothing is ever retracted). The plan's column types must be the
/// table's (`run` checks, else it renders rows).
pub(crate) fn render_table_sink_batches(
    batches: Batches<'_>,
    spec: TableSinkSpec<'_>,
) -> (DoneFlag, TableSinkHandle) {
    let table = spec.table.name.clone();
    let (key, sink, mut stager) = open_sink(&spec, &table);
    let arrow_schema = spec.schema.to_arrow();
    let types = spec.schema.types();
    let writer = TableWriter::new(&spec, &table, &sink);
    let done: DoneFlag = Rc::new(Cell::new(false));
    let flag = done.clone();
    let mut pending: BTreeMap<Time, Vec<RecordBatch>> = BTreeMap::new();
    let write = move |writer: &TableWriter, batches: Vec<RecordBatch>| {
        for batch in batches {
            if batch.num_rows() == 0 {
                continue;
            }
            let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
            match RecordBatch::try_new_with_options(
                arrow_schema.clone(),
                batch.columns().to_vec(),
                &options,
            ) {
                Ok(batch) => writer.write_batch(&batch),
                // Same SQL types, another Arrow form: through rows.
                Err(_) => match crate::convert::batch_to_rows(&batch, &types, "Sink")
                    .and_then(|rows| rows_to_batch(&rows, &writer.schema, "Sink"))
                {
                    Ok(batch) => writer.write_batch(&batch),
                    Err(e) => writer.errors.raise(e),
                },
            }
        }
    };
    batches.sink(
        Pipeline,
        &format!("Sink({table})"),
        move |(input, frontier)| {
            input.for_each(|_cap, data| {
                for b in data.drain(..) {
                    pending.entry(b.time).or_default().push(b.batch);
                }
            });
            for (t, batches) in take_complete(&mut pending, frontier.frontier()) {
                stager.stage_through(t, &writer);
                write(&writer, batches);
            }
            stager.stage_passed(frontier.frontier(), &writer);
            if frontier.frontier().is_empty() && !flag.get() {
                let rest: Vec<RecordBatch> = std::mem::take(&mut pending)
                    .into_values()
                    .flatten()
                    .collect();
                write(&writer, rest);
                if !stager.checkpointed() {
                    writer.prepare(BOUNDED_EPOCH);
                }
                flag.set(true);
            }
        },
    );
    (done, TableSinkHandle { table, key, sink })
}

/// Gathered rows of one `Collect` output (on worker 0; empty elsewhere).
pub(crate) type Gathered = Rc<RefCell<BTreeMap<Row, Diff>>>;

/// Gathers every row of `rows` on worker 0.
pub(crate) fn render_collect(rows: Rows<'_>, name: &str) -> (DoneFlag, Gathered) {
    let gathered: Gathered = Rc::new(RefCell::new(BTreeMap::new()));
    let done: DoneFlag = Rc::new(Cell::new(false));
    let (into, flag) = (gathered.clone(), done.clone());
    rows.inner.sink(
        Exchange::new(|_: &(Row, Time, Diff)| 0u64),
        name,
        move |(input, frontier)| {
            input.for_each(|_cap, data| {
                let mut into = into.borrow_mut();
                for (row, _t, d) in data.drain(..) {
                    *into.entry(row).or_default() += d;
                }
            });
            if frontier.frontier().is_empty() {
                flag.set(true);
            }
        },
    );
    (done, gathered)
}

/// Raises every error of `errs` (positive multiplicity) in the error slot.
pub(crate) fn render_error_sink(errs: Errs<'_>, errors: ErrorSlot) -> DoneFlag {
    let done: DoneFlag = Rc::new(Cell::new(false));
    let flag = done.clone();
    errs.inner
        .sink(Pipeline, "ErrorSink", move |(input, frontier)| {
            input.for_each(|_cap, data| {
                for (e, _t, d) in data.drain(..) {
                    if d > 0 {
                        errors.raise(e);
                    }
                }
            });
            if frontier.frontier().is_empty() {
                flag.set(true);
            }
        });
    done
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sluice_compiler::Datum;
    use std::collections::BTreeSet;

    fn row(k: i64, v: i64) -> Row {
        vec![Datum::Int(k), Datum::Int(v)]
    }

    /// The changes from result `old` to result `new` (multisets of rows).
    fn diff(old: &BTreeMap<Row, Diff>, new: &BTreeMap<Row, Diff>) -> Vec<(Row, Diff)> {
        let rows: BTreeSet<&Row> = old.keys().chain(new.keys()).collect();
        rows.into_iter()
            .map(|r| {
                let d = new.get(r).copied().unwrap_or(0) - old.get(r).copied().unwrap_or(0);
                (r.clone(), d)
            })
            .filter(|(_, d)| *d != 0)
            .collect()
    }

    /// Applies a time's sink output to a compacted view (key → last row written).
    fn apply(view: &mut BTreeMap<Row, Row>, deletes: Vec<Row>, upserts: Vec<Row>) {
        for r in deletes {
            view.remove(&key_row(&r, &[0]));
        }
        for r in upserts {
            view.insert(key_row(&r, &[0]), r);
        }
    }

    proptest! {
        /// Incremental against from scratch: after every time, the view built from the
        /// sink's upserts and deletes holds exactly the keys of the result, each with
        /// its row (unique keys) or one of its live rows (repeated keys).
        #[test]
        fn upserts_keep_a_compacted_view_equal_to_the_result(
            times in prop::collection::vec(
                prop::collection::vec((0i64..5, 0i64..4, 1isize..3), 0..6), 1..12),
        ) {
            let (mut old_u, mut old_m) = (BTreeMap::new(), BTreeMap::new());
            let (mut view_u, mut view_m) = (BTreeMap::new(), BTreeMap::new());
            let mut live = PackedMap::default();
            for rows in times {
                // Unique by key: the last row drawn for each key.
                let mut by_key: BTreeMap<i64, i64> = BTreeMap::new();
                for (k, v, _) in &rows {
                    by_key.insert(*k, *v);
                }
                let new_u: BTreeMap<Row, Diff> =
                    by_key.iter().map(|(k, v)| (row(*k, *v), 1)).collect();
                let (d, u) = upserts_of_unique(net_changes(diff(&old_u, &new_u)), &[0]);
                apply(&mut view_u, d, u);
                let want: BTreeMap<Row, Row> =
                    new_u.keys().map(|r| (key_row(r, &[0]), r.clone())).collect();
                prop_assert_eq!(&view_u, &want);
                old_u = new_u;

                // Keys repeat, rows repeat.
                let mut new_m: BTreeMap<Row, Diff> = BTreeMap::new();
                for (k, v, n) in &rows {
                    *new_m.entry(row(*k, *v)).or_default() += n;
                }
                let (d, u) = upserts_of_live(net_changes(diff(&old_m, &new_m)), &[0], &mut live);
                apply(&mut view_m, d, u);
                let keys: BTreeSet<Row> = new_m.keys().map(|r| key_row(r, &[0])).collect();
                prop_assert_eq!(view_m.keys().cloned().collect::<BTreeSet<_>>(), keys);
                for r in view_m.values() {
                    prop_assert!(new_m.contains_key(r), "{:?} is not live", r);
                }
                prop_assert_eq!(live.len(), view_m.len());
                old_m = new_m;
            }
        }
    }

    #[test]
    fn a_changelog_lists_retractions_then_insertions_as_often_as_counted() {
        let (d, i) = changelog(net_changes(vec![
            (row(1, 1), -2),
            (row(2, 2), 1),
            (row(3, 3), 1),
            (row(3, 3), -1),
        ]));
        assert_eq!(d, vec![row(1, 1), row(1, 1)]);
        assert_eq!(i, vec![row(2, 2)]);
    }
}
