//! # sluice-connectors: where rows come from and go to
//!
//! ```text
//! SQL text ─▶ … ─▶ DataflowPlan ─▶ running instance:  **sources** ─▶ operators ─▶ **sinks**
//! ```
//!
//! A [`Connector`] is registered by name in a [`Registry`]; a table's `'connector'` option
//! picks it. At compile time the registry validates a table's options
//! ([`sluice_catalogs::ConnectorValidator`]); at run time each worker asks the connector
//! for a [`Source`] (its share of the table's splits) or a [`Sink`].
//!
//! Sources emit Arrow record batches of the projected columns with pushed-down filters
//! already applied; records that cannot be decoded are returned beside the batch as
//! [`BadRecord`]s, never as errors, so the dataflow can apply the table's
//! `'format.on-error'` policy. Sinks are two-phase (write, then `prepare_commit` and
//! `commit` per epoch) so exactly-once delivery can be layered on checkpoints.
//!
//! Built in ([`Registry::builtin`]):
//!
//! | connector | module | reads | writes |
//! |---|---|---|---|
//! | `filesystem` | [`FilesystemConnector`] | CSV, JSON lines, Parquet files/directories | part files, staged until commit |
//! | `kafka` | [`KafkaConnector`] | JSON, CSV or raw messages of topics (bounded or not) | messages, at-least-once or in transactions |
//! | `nexmark` | [`NexmarkConnector`] | the Nexmark bid/auction/person streams | – |
//! | `datagen` | [`DatagenConnector`] | seeded random or sequential rows | – |
//! | `print` | [`PrintConnector`] | – | `<table>> +I[…]` lines on stdout |
//! | `blackhole` | [`BlackholeConnector`] | – | discards (counts) |
//!
//! The file, Kafka and generator sources declare `filter_pushdown` and `projection_pushdown`:
//! the compiler pushes predicates into them and they apply them batch by batch
//! ([`filter::with_filters`]) before any row leaves the source. Field text is parsed by [`values`], one module, so it
//! can later be replaced by the compiler's `eval::parse_datum`. Bad records of any
//! connector follow `'format.on-error'` ([`on_error_policy`], [`DeadLetterWriter`]).

#![forbid(unsafe_code)]

pub mod filter;

mod datagen;
mod format;
mod fs;
mod kafka;
mod nexmark;
mod options;
mod print;
pub mod values;

pub use datagen::DatagenConnector;
pub use format::{late_records_policy, on_error_policy, LateRecords, OnError};
pub use fs::{
    checkpoint_store, storage_options, DeadLetterWriter, FileFormat, FilesystemConnector,
    ObjectDir, STORAGE_KEYS,
};
pub use kafka::KafkaConnector;
pub use nexmark::{NexmarkConnector, NexmarkTable};
pub use print::{BlackholeConnector, PrintConnector};

use arrow::record_batch::RecordBatch;
use sluice_catalogs::{ConnectorValidator, Schema, SourceCapabilities, TableDescriptor};
use sluice_expr::ScalarExpr;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Errors raised by connectors.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// Bad or missing options (a user mistake).
    #[error("invalid connector configuration: {0}")]
    Config(String),
    /// The external system failed (I/O, network, object store).
    #[error("I/O error: {0}")]
    Io(String),
    /// A whole input could not be decoded (e.g. a corrupt Parquet file).
    #[error("format error: {0}")]
    Format(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Connector result.
pub type Result<T> = std::result::Result<T, ConnectorError>;

/// Which worker of how many is asking; sources use it to pick their splits and
/// sinks to name their files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerContext {
    /// This worker's index, `0..workers`.
    pub worker: usize,
    /// Total workers in the job.
    pub workers: usize,
}

/// A record a source could not decode. Its position lets a user find it again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRecord {
    /// Where it came from, e.g. `file:///data/x.json:17` (line) or `topic/3@1042`.
    pub position: String,
    /// Why it was rejected.
    pub error: String,
    /// The raw bytes (possibly truncated to a bounded size).
    pub raw: Vec<u8>,
}

/// What a [`Source::poll`] produced.
#[derive(Debug)]
pub enum SourcePoll {
    /// Rows (projected, filters applied) and the records that failed to decode.
    /// Either may be empty.
    Batch {
        /// Decoded rows.
        batch: RecordBatch,
        /// Undecodable records.
        bad: Vec<BadRecord>,
    },
    /// Nothing available now; poll again later (unbounded sources).
    Idle,
    /// This worker's share of the input is exhausted.
    Finished,
}

/// One worker's share of a table's input.
pub trait Source: Send {
    /// The next batch of at most about `max_rows` rows.
    fn poll(&mut self, max_rows: usize) -> Result<SourcePoll>;
    /// A serializable position to resume from (the checkpoint seam).
    fn position(&self) -> serde_json::Value;
    /// Resume from a position returned by [`Source::position`].
    fn seek(&mut self, position: &serde_json::Value) -> Result<()>;
    /// A checkpoint holding `position` (from [`Source::position`]) is complete: the
    /// source may report it to the system it reads (Kafka: commit the offsets to the
    /// consumer group, for monitoring). Never needed for correctness; default: nothing.
    fn commit_position(&mut self, position: &serde_json::Value) -> Result<()> {
        let _ = position;
        Ok(())
    }
    /// Asked after [`Source::poll`] returned [`SourcePoll::Idle`]: true when this source
    /// has read everything that is available now (an idle topic, a quiet directory, a
    /// generator waiting for its rate), false when input is available and not yet read
    /// (Kafka: some partition's position is below its high watermark). A job whose
    /// sources are all caught up is idle, not hung. Default: true (`Idle` means nothing
    /// is available).
    fn caught_up(&self) -> bool {
        true
    }
    /// Event time tracked per split (Kafka partition): the smallest, over the splits
    /// that can still hold it back, of the largest event time (the table's watermark
    /// column, ms) each has read, or `None` while one of them has read nothing. The
    /// dataflow derives the source's watermark from it (minus the delay), so splits far
    /// apart in event time never make each other's records late. Default: not tracked
    /// (`None`; the dataflow takes the largest event time of the batches).
    fn event_time(&self) -> Option<i64> {
        None
    }
    /// True when the source tracks [`Source::event_time`] per split.
    fn tracks_event_time(&self) -> bool {
        false
    }
    /// Rows read and then dropped inside the source by pushed-down filters, since it
    /// was created: rows read = rows emitted + this. Default: 0 (no filtering).
    fn rows_filtered(&self) -> u64 {
        0
    }
}

/// An id no other call returns, in any process (time, process id, a counter): a file
/// sink's part names, a run's checkpoint records.
pub fn unique_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{nanos:x}{:x}{:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One pending commit of an earlier run, as a restore hands it to [`Sink::recover`].
#[derive(Clone, Debug, PartialEq)]
pub struct PendingCommit {
    /// What [`Sink::pending_commit`] returned (never `null`).
    pub commit: serde_json::Value,
    /// What [`Sink::write_ahead`] returned for the same epoch, if anything.
    pub write_ahead: Option<Vec<u8>>,
}

/// One worker's writer for a table. Rows written between two commits become visible
/// together when `commit` succeeds.
pub trait Sink: Send {
    /// Buffer or stage rows (of the table's schema).
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;
    /// True for a sink that drops what it is given (`blackhole`): the dataflow then
    /// only counts the rows it would write ([`Sink::count`]), never building batches or
    /// consolidating an updating result. Default: false.
    fn discards(&self) -> bool {
        false
    }
    /// Counts `rows` rows as written (a [`Sink::discards`] sink only). Default: nothing.
    fn count(&mut self, rows: u64) {
        let _ = rows;
    }
    /// Removes rows of an updating result (the table's schema), written only where the
    /// table's [`SinkKind`](sluice_catalogs::SinkKind) is `Upsert` (each row's key is
    /// deleted: Kafka writes a tombstone) or `Changelog` (each row is shown retracted).
    /// Part of the open epoch like `write`. Default: refused.
    fn write_deletes(&mut self, batch: &RecordBatch) -> Result<()> {
        let _ = batch;
        Err(ConnectorError::Internal(
            "this sink only appends rows; it cannot delete".into(),
        ))
    }
    /// Phase one: make everything written so far durable but not yet visible.
    fn prepare_commit(&mut self, epoch: u64) -> Result<()>;
    /// Phase two: make what `prepare_commit(epoch)` staged visible. Idempotent.
    fn commit(&mut self, epoch: u64) -> Result<()>;
    /// What `commit(epoch)` will do, as data that a checkpoint stores (after
    /// `prepare_commit(epoch)`): the input of [`Sink::recover`] when a run is restored
    /// from that checkpoint. Default: nothing to record (`null`).
    fn pending_commit(&self, epoch: u64) -> serde_json::Value {
        let _ = epoch;
        serde_json::Value::Null
    }
    /// A write-ahead copy of what `commit(epoch)` will make visible, for a sink whose
    /// staged data does not survive a crash of the process (a Kafka transaction is
    /// aborted when its producer's id is used again): asked after
    /// `pending_commit(epoch)`, stored durably beside the checkpoint before its record
    /// is written, and handed back to [`Sink::recover`] with the pending commit.
    /// Default: none (what `prepare_commit` staged is durable by itself).
    fn write_ahead(&mut self, epoch: u64) -> Option<Vec<u8>> {
        let _ = epoch;
        None
    }
    /// Restore, before a run starts writing: finish the commits described by
    /// `pending` (values of [`Sink::pending_commit`] from any worker of an earlier run,
    /// recorded in the checkpoint restored from, each with its [`Sink::write_ahead`]
    /// copy). Idempotent, also when another instance of the job finishes the same
    /// commits at the same time. Called on one sink per table (the first worker's).
    /// Default: nothing to do.
    fn recover(&mut self, pending: &[PendingCommit]) -> Result<()> {
        let _ = pending;
        Ok(())
    }
    /// What earlier runs left staged that no checkpoint covers, as data, listed right
    /// after [`Sink::recover`] and before this run writes anything. The run aborts them
    /// ([`Sink::abort_leftovers`]) only once it owns the job, i.e. once its first
    /// checkpoint record is written: until then they may be the parts of another
    /// instance of the job that is still running (a stale master's), whose commit
    /// needs them. Default: nothing (`null`).
    fn leftovers(&mut self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }
    /// Deletes what [`Sink::leftovers`] listed (what is gone already is fine).
    /// Default: nothing to do.
    fn abort_leftovers(&mut self, leftovers: &serde_json::Value) -> Result<()> {
        let _ = leftovers;
        Ok(())
    }
}

/// A named crash point for reliability tests: when the environment variable
/// `SLUICE_FAILPOINT` names `point`, the process aborts here (as a `kill -9` would
/// end it). With `SLUICE_FAILPOINT_ONCE=FILE` it aborts only if it can create `FILE`,
/// so a restarted process passes the point; `SLUICE_FAILPOINT_SKIP=N` passes the first
/// N hits of the point in a process. Points: `sink.after_write`,
/// `checkpoint.start`, `checkpoint.before_commit`, `commit.mid`, `commit.after`,
/// `state.snapshot` (before an operator's snapshot is written), `state.restore`
/// (before a restored snapshot is read), `join.step` (a symmetric join's activation
/// with input, once it has snapshotted in this run).
pub fn failpoint(point: &str) {
    // Read once: some points are on the data path.
    static WANT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let want = WANT.get_or_init(|| std::env::var("SLUICE_FAILPOINT").ok());
    if want.as_deref() != Some(point) {
        return;
    }
    static HITS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let hit = HITS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let skip: u64 = std::env::var("SLUICE_FAILPOINT_SKIP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if hit < skip {
        return;
    }
    if let Ok(marker) = std::env::var("SLUICE_FAILPOINT_ONCE") {
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker);
        if created.is_err() {
            return;
        }
    }
    tracing::error!("failpoint {point}: aborting");
    std::process::abort();
}

/// A connector: validates options and creates sources and sinks.
pub trait Connector: Send + Sync {
    /// The `'connector'` option value that selects it.
    fn name(&self) -> &'static str;
    /// Check options against the table schema; say what a source of it can do.
    fn validate(
        &self,
        options: &BTreeMap<String, String>,
        schema: &Schema,
    ) -> Result<SourceCapabilities>;
    /// A source for one worker: reads `projection` columns of the table, applies
    /// `filters` (over the projected columns) when the connector declared filter push-down.
    fn create_source(
        &self,
        table: &TableDescriptor,
        projection: &[usize],
        filters: &[ScalarExpr],
        ctx: WorkerContext,
    ) -> Result<Box<dyn Source>> {
        let _ = (projection, filters, ctx);
        Err(ConnectorError::Config(format!(
            "connector '{}' cannot be read from (table '{}')",
            self.name(),
            table.name
        )))
    }
    /// Whether its sink honours `INSERT OVERWRITE` (the table option
    /// [`sluice_expr::options::OVERWRITE_OPTION`]): the first commit replaces what the
    /// table held. Default: no (the compiler then refuses `INSERT OVERWRITE`).
    fn can_overwrite(&self) -> bool {
        false
    }
    /// A sink for one worker.
    fn create_sink(&self, table: &TableDescriptor, ctx: WorkerContext) -> Result<Box<dyn Sink>> {
        let _ = ctx;
        Err(ConnectorError::Config(format!(
            "connector '{}' cannot be written to (table '{}')",
            self.name(),
            table.name
        )))
    }
}

/// Connectors by name. [`Registry::builtin`] has every built-in one; a third party
/// registers its own with [`Registry::register`].
#[derive(Clone, Default)]
pub struct Registry {
    connectors: BTreeMap<String, Arc<dyn Connector>>,
}

impl Registry {
    /// An empty registry.
    pub fn empty() -> Self {
        Registry::default()
    }

    /// A registry of every built-in connector: `filesystem`, `kafka`, `nexmark`,
    /// `datagen`, `print` and `blackhole`.
    pub fn builtin() -> Self {
        let mut r = Registry::empty();
        r.register(Arc::new(FilesystemConnector));
        r.register(Arc::new(KafkaConnector));
        r.register(Arc::new(NexmarkConnector));
        r.register(Arc::new(DatagenConnector));
        r.register(Arc::new(PrintConnector::default()));
        r.register(Arc::new(BlackholeConnector::default()));
        r
    }

    /// Add (or replace) a connector under its name.
    pub fn register(&mut self, connector: Arc<dyn Connector>) {
        self.connectors
            .insert(connector.name().to_string(), connector);
    }

    /// The connector of this name.
    pub fn get(&self, name: &str) -> Result<&Arc<dyn Connector>> {
        self.connectors.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.connectors.keys().map(String::as_str).collect();
            ConnectorError::Config(format!(
                "unknown connector '{name}' (known: {})",
                known.join(", ")
            ))
        })
    }

    /// A source for `table` on one worker.
    pub fn create_source(
        &self,
        table: &TableDescriptor,
        projection: &[usize],
        filters: &[ScalarExpr],
        ctx: WorkerContext,
    ) -> Result<Box<dyn Source>> {
        self.get(&table.connector)?
            .create_source(table, projection, filters, ctx)
    }

    /// A sink for `table` on one worker.
    pub fn create_sink(
        &self,
        table: &TableDescriptor,
        ctx: WorkerContext,
    ) -> Result<Box<dyn Sink>> {
        self.get(&table.connector)?.create_sink(table, ctx)
    }
}

impl ConnectorValidator for Registry {
    fn validate(
        &self,
        connector: &str,
        options: &BTreeMap<String, String>,
        schema: &Schema,
    ) -> std::result::Result<SourceCapabilities, String> {
        let c = self.get(connector).map_err(|e| e.to_string())?;
        let capabilities = c.validate(options, schema).map_err(|e| e.to_string())?;
        // Options any connector's table may set.
        format::check_late_records(options).map_err(|e| e.to_string())?;
        Ok(capabilities)
    }

    fn can_overwrite(&self, connector: &str) -> bool {
        self.get(connector).is_ok_and(|c| c.can_overwrite())
    }
}

/// The position of a generator source's worker: `{"<key>": n, "workers": W}`, the rows
/// (or events) it produced of its share of a generation split over `W` workers.
pub(crate) fn counter(key: &str, n: u64, workers: u64) -> serde_json::Value {
    serde_json::json!({ key: n, "workers": workers })
}

/// The counter `key` of a generator source's position written by [`counter`]. A
/// worker's count says which rows it produced only for the worker count it ran at:
/// resumed at another (`workers`), rows would be lost or repeated, so that is an error.
/// (Positions from before the worker count was recorded are taken as they are.)
pub(crate) fn counter_position(
    position: &serde_json::Value,
    key: &str,
    source: &str,
    workers: u64,
) -> Result<u64> {
    let bad = || ConnectorError::Internal(format!("bad {source} source position {position}"));
    let n = position
        .get(key)
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(bad)?;
    match position.get("workers").map(serde_json::Value::as_u64) {
        None => Ok(n),
        Some(Some(w)) if w == workers => Ok(n),
        Some(Some(w)) => Err(ConnectorError::Internal(format!(
            "a {source} source's checkpointed position is one of {w} workers' shares of the \
             generated rows: it cannot resume at {workers} workers (rows would be lost or \
             repeated); run the job at {w} workers, or start it without its checkpoint"
        ))),
        Some(None) => Err(bad()),
    }
}

/// Check a projection against a schema.
pub(crate) fn check_projection(table: &TableDescriptor, projection: &[usize]) -> Result<()> {
    match projection.iter().find(|&&i| i >= table.schema.len()) {
        Some(i) => Err(ConnectorError::Internal(format!(
            "projection column {i} out of range for table '{}' with {} columns",
            table.name,
            table.schema.len()
        ))),
        None => Ok(()),
    }
}

/// Check the worker context.
pub(crate) fn check_ctx(ctx: WorkerContext) -> Result<()> {
    if ctx.workers == 0 || ctx.worker >= ctx.workers {
        return Err(ConnectorError::Internal(format!(
            "worker {} of {} is not a valid worker",
            ctx.worker, ctx.workers
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_util {
    //! Helpers shared by the connectors' tests.

    use super::*;
    use crate::values::{write_cell, TextStyle};

    /// A table of `connector` with these columns and options.
    pub fn table(connector: &str, schema: Schema, options: &[(&str, &str)]) -> TableDescriptor {
        let mut o: BTreeMap<String, String> = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        o.insert("connector".into(), connector.into());
        TableDescriptor {
            name: "t".into(),
            schema,
            connector: connector.into(),
            options: o,
            watermark: None,
            capabilities: SourceCapabilities::default(),
        }
    }

    /// Every row a source yields, rendered as text (`None` for NULL).
    pub fn drain(src: &mut dyn Source, max_rows: usize) -> Vec<Vec<Option<String>>> {
        let mut rows = Vec::new();
        loop {
            match src.poll(max_rows).unwrap() {
                SourcePoll::Batch { batch, bad } => {
                    assert!(bad.is_empty());
                    assert!(batch.num_rows() <= max_rows);
                    for r in 0..batch.num_rows() {
                        rows.push(
                            batch
                                .columns()
                                .iter()
                                .map(|c| {
                                    let mut s = String::new();
                                    write_cell(&mut s, c.as_ref(), r, TextStyle::Plain).then_some(s)
                                })
                                .collect(),
                        );
                    }
                }
                SourcePoll::Idle => panic!("unexpected Idle"),
                SourcePoll::Finished => return rows,
            }
        }
    }

    /// All rows of a table read by `workers` workers, in worker order.
    pub fn read_workers(
        registry: &Registry,
        t: &TableDescriptor,
        projection: &[usize],
        workers: usize,
        max_rows: usize,
    ) -> Vec<Vec<Option<String>>> {
        let mut rows = Vec::new();
        for worker in 0..workers {
            let mut src = registry
                .create_source(t, projection, &[], WorkerContext { worker, workers })
                .unwrap();
            rows.extend(drain(src.as_mut(), max_rows));
        }
        rows
    }
}
