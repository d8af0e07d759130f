//! The kafka sink: at-least-once (flush on `prepare_commit`) or exactly-once (one
//! Kafka transaction per committed epoch, each with a write-ahead copy beside the
//! checkpoint and an epoch marker committed in the transaction: `eos.rs`).

use super::eos::{self, Rec};
use super::{
    kafka_error, scrub, scrub_error, ColumnKind, Delivery, KafkaContext, KafkaFormat, KafkaOptions,
    MetaKey, Topics, REQUEST_TIMEOUT,
};
use crate::check_ctx;
use crate::format::csv::write_field;
use crate::values::{write_cell, TextStyle};
use crate::{ConnectorError, PendingCommit, Result, Sink, WorkerContext};
use arrow::array::{Array, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use sluice_catalogs::TableDescriptor;
use std::sync::Mutex;

/// The producer's context: logs like the other clients and remembers the first
/// message that could not be delivered.
pub(crate) struct SinkContext {
    inner: KafkaContext,
    failure: Mutex<Option<String>>,
}

impl SinkContext {
    pub(crate) fn new(table: &str, secrets: &[String]) -> Self {
        SinkContext {
            inner: KafkaContext::new(table, secrets),
            failure: Mutex::new(None),
        }
    }
}

impl ClientContext for SinkContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.inner.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.inner.error(error, reason);
    }
}

impl ProducerContext for SinkContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            if let Ok(mut f) = self.failure.lock() {
                if f.is_none() {
                    *f = Some(e.to_string());
                }
            }
        }
    }
}

/// Where the transaction of an exactly-once sink stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Txn {
    /// No transaction open.
    Idle,
    /// Open, with messages sent since the last prepare.
    Open,
    /// Flushed by `prepare_commit(epoch)`, waiting for `commit(epoch)`.
    Prepared(u64),
}

/// One worker's kafka sink.
pub(crate) struct KafkaSink {
    table: String,
    topic: String,
    secrets: Vec<String>,
    producer: ThreadedProducer<SinkContext>,
    format: KafkaFormat,
    delimiter: u8,
    null_literal: String,
    width: usize,
    /// (table column, JSON-quoted name) of the value and key columns.
    value_columns: Vec<(usize, String)>,
    key_columns: Vec<(usize, String)>,
    timestamp_column: Option<usize>,
    /// The table's options (a restore creates its clients from them).
    opts: KafkaOptions,
    /// Exactly-once only.
    eos: Option<Eos>,
    txn: Txn,
}

/// An exactly-once sink's transaction bookkeeping.
struct Eos {
    transactional_id: String,
    /// This sink's run token: names its epoch markers' group.
    token: String,
    /// Names the marker group (`eos::marker_group`).
    marker: BaseConsumer<KafkaContext>,
    /// The write-ahead copy of the messages sent in the open transaction.
    open: Vec<u8>,
    /// The write-ahead copy of the prepared transaction (until its commit).
    prepared: Vec<u8>,
    /// Messages written while a transaction waits for its commit.
    held: Vec<Rec>,
    /// The epochs `prepare_commit` assigned held messages to, with the end (in `held`)
    /// of each one's messages; ascending.
    held_epochs: Vec<(u64, usize)>,
}

impl KafkaSink {
    pub(crate) fn new(table: &TableDescriptor, ctx: WorkerContext) -> Result<KafkaSink> {
        check_ctx(ctx)?;
        let opts = KafkaOptions::parse(&table.options, &table.schema)?;
        let secrets = opts.secrets.clone();
        Self::build(table, ctx, opts).map_err(|e| scrub_error(e, &secrets))
    }

    fn build(table: &TableDescriptor, ctx: WorkerContext, opts: KafkaOptions) -> Result<KafkaSink> {
        let topic = match &opts.topics {
            Topics::Names(names) if names.len() == 1 => names.first().cloned().unwrap_or_default(),
            _ => {
                return Err(ConnectorError::Config(format!(
                "table '{}': a kafka sink writes to one 'topic' (not a list or a 'topic-pattern')",
                table.name
            )))
            }
        };
        let mut config = opts.client_config();
        let transactional_id = match &opts.delivery {
            Delivery::AtLeastOnce => None,
            Delivery::ExactlyOnce { prefix } => {
                let id = format!("{prefix}-{}", ctx.worker);
                config.set("transactional.id", &id);
                Some(id)
            }
        };
        let producer: ThreadedProducer<SinkContext> = config
            .create_with_context(SinkContext::new(&table.name, &opts.secrets))
            .map_err(|e| kafka_error("cannot create a Kafka producer", &e, &opts.secrets))?;
        let eos = match transactional_id {
            None => None,
            Some(transactional_id) => {
                producer.init_transactions(REQUEST_TIMEOUT).map_err(|e| {
                    kafka_error("cannot initialize Kafka transactions", &e, &opts.secrets)
                })?;
                let token = crate::unique_id();
                Some(Eos {
                    marker: eos::marker_consumer(&opts, &table.name, &transactional_id, &token)?,
                    transactional_id,
                    token,
                    open: Vec::new(),
                    prepared: Vec::new(),
                    held: Vec::new(),
                    held_epochs: Vec::new(),
                })
            }
        };
        let quoted = |i: usize| {
            let name = table.schema.fields.get(i).map_or("", |f| f.name.as_str());
            (i, serde_json::Value::from(name).to_string())
        };
        Ok(KafkaSink {
            table: table.name.clone(),
            topic,
            secrets: opts.secrets.clone(),
            producer,
            format: opts.format,
            delimiter: opts.delimiter,
            null_literal: opts.null_literal.clone(),
            width: table.schema.len(),
            value_columns: opts.value_columns.iter().map(|&i| quoted(i)).collect(),
            key_columns: opts.key_columns.iter().map(|&i| quoted(i)).collect(),
            timestamp_column: opts
                .columns
                .iter()
                .position(|c| *c == ColumnKind::Meta(MetaKey::Timestamp)),
            opts,
            eos,
            txn: Txn::Idle,
        })
    }

    /// The columns `cols` of one row in the table's format; `None` for a raw NULL.
    fn encode(&self, batch: &RecordBatch, row: usize, cols: &[(usize, String)]) -> Option<Vec<u8>> {
        let mut out = String::new();
        match self.format {
            KafkaFormat::Json => {
                out.push('{');
                for (n, (c, name)) in cols.iter().enumerate() {
                    if n > 0 {
                        out.push(',');
                    }
                    out.push_str(name);
                    out.push(':');
                    let written = batch
                        .columns()
                        .get(*c)
                        .is_some_and(|a| write_cell(&mut out, a.as_ref(), row, TextStyle::Json));
                    if !written {
                        out.push_str("null");
                    }
                }
                out.push('}');
            }
            KafkaFormat::Csv => {
                let mut cell = String::new();
                for (n, (c, _)) in cols.iter().enumerate() {
                    if n > 0 {
                        out.push(self.delimiter as char);
                    }
                    cell.clear();
                    let written = batch
                        .columns()
                        .get(*c)
                        .is_some_and(|a| write_cell(&mut cell, a.as_ref(), row, TextStyle::Plain));
                    if written {
                        write_field(&mut out, &cell, self.delimiter, &self.null_literal);
                    } else {
                        out.push_str(&self.null_literal);
                    }
                }
            }
            KafkaFormat::Raw => {
                let (c, _) = cols.first()?;
                let a = batch.columns().get(*c)?;
                if !write_cell(&mut out, a.as_ref(), row, TextStyle::Plain) {
                    return None;
                }
            }
        }
        Some(out.into_bytes())
    }

    fn check_deliveries(&self) -> Result<()> {
        let failure = self
            .producer
            .context()
            .failure
            .lock()
            .ok()
            .and_then(|f| f.clone());
        match failure {
            None => Ok(()),
            Some(e) => Err(ConnectorError::Io(scrub(
                &format!(
                    "table '{}': a message could not be delivered to topic '{}': {e}",
                    self.table, self.topic
                ),
                &self.secrets,
            ))),
        }
    }

    fn send(&self, rec: &Rec) -> Result<()> {
        eos::send_blocking(&self.producer, &self.topic, rec).map_err(|e| {
            kafka_error(
                &format!(
                    "table '{}': cannot send to topic '{}'",
                    self.table, self.topic
                ),
                &e,
                &self.secrets,
            )
        })
    }

    /// Exactly-once: sends `rec` in the open transaction and appends it to its
    /// write-ahead copy.
    fn send_in_txn(&mut self, rec: &Rec) -> Result<()> {
        self.send(rec)?;
        if let Some(eos) = &mut self.eos {
            eos::encode(&mut eos.open, rec);
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.producer.flush(REQUEST_TIMEOUT).map_err(|e| {
            kafka_error(
                &format!(
                    "table '{}': cannot flush to topic '{}'",
                    self.table, self.topic
                ),
                &e,
                &self.secrets,
            )
        })?;
        self.check_deliveries()
    }

    fn begin(&mut self) -> Result<()> {
        self.producer
            .begin_transaction()
            .map_err(|e| kafka_error("cannot begin a Kafka transaction", &e, &self.secrets))?;
        self.txn = Txn::Open;
        Ok(())
    }

    /// Commits the transaction prepared for `epoch`, with its epoch marker.
    fn commit_open(&mut self, epoch: u64) -> Result<()> {
        let result = match &self.eos {
            Some(eos) => {
                let offsets = eos::marker_offsets(&self.topic, epoch)?;
                let group = eos::group_metadata(&eos.marker)?;
                self.producer
                    .send_offsets_to_transaction(&offsets, &group, REQUEST_TIMEOUT)
            }
            None => Ok(()),
        }
        .and_then(|()| {
            crate::failpoint("kafka.before_commit");
            self.producer.commit_transaction(REQUEST_TIMEOUT)
        });
        match result {
            Ok(()) => {
                self.txn = Txn::Idle;
                if let Some(eos) = &mut self.eos {
                    eos.prepared.clear();
                }
                Ok(())
            }
            Err(e) => {
                if let KafkaError::Transaction(t) = &e {
                    if t.txn_requires_abort() {
                        let _ = self.producer.abort_transaction(REQUEST_TIMEOUT);
                        self.txn = Txn::Idle;
                    }
                }
                Err(kafka_error(
                    &format!(
                        "table '{}': cannot commit the Kafka transaction",
                        self.table
                    ),
                    &e,
                    &self.secrets,
                ))
            }
        }
    }
}

impl KafkaSink {
    /// Sends one message per row of `batch`: the row's key and value, or with
    /// `tombstone` its key and no value (a delete of a keyed, compacted topic).
    fn send_rows(&mut self, batch: &RecordBatch, tombstone: bool) -> Result<()> {
        if batch.num_columns() != self.width {
            return Err(ConnectorError::Internal(format!(
                "sink batch has {} columns, the table has {}",
                batch.num_columns(),
                self.width
            )));
        }
        self.check_deliveries()?;
        let times = self
            .timestamp_column
            .and_then(|c| batch.columns().get(c))
            .and_then(|a| a.as_any().downcast_ref::<TimestampMillisecondArray>());
        for row in 0..batch.num_rows() {
            let rec = Rec {
                key: if self.key_columns.is_empty() {
                    None
                } else {
                    self.encode(batch, row, &self.key_columns)
                },
                value: if tombstone {
                    None
                } else {
                    self.encode(batch, row, &self.value_columns)
                },
                timestamp: times.filter(|t| t.is_valid(row)).map(|t| t.value(row)),
            };
            let Some(eos) = &mut self.eos else {
                self.send(&rec)?;
                continue;
            };
            match self.txn {
                Txn::Prepared(_) => eos.held.push(rec),
                Txn::Idle => {
                    self.begin()?;
                    self.send_in_txn(&rec)?;
                }
                Txn::Open => self.send_in_txn(&rec)?,
            }
        }
        Ok(())
    }
}

impl Sink for KafkaSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.send_rows(batch, false)
    }

    /// Tombstones: each row's key (`sink.key.fields`) with no value.
    fn write_deletes(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.key_columns.is_empty() {
            return Err(ConnectorError::Config(format!(
                "table '{}': deleting rows of an updating result needs 'sink.key.fields'",
                self.table
            )));
        }
        self.send_rows(batch, true)
    }

    fn prepare_commit(&mut self, epoch: u64) -> Result<()> {
        let Some(eos) = &mut self.eos else {
            return self.flush();
        };
        match self.txn {
            Txn::Idle => Ok(()),
            Txn::Open => {
                self.flush()?;
                crate::failpoint("kafka.after_prepare");
                self.txn = Txn::Prepared(epoch);
                if let Some(eos) = &mut self.eos {
                    eos.prepared = std::mem::take(&mut eos.open);
                }
                Ok(())
            }
            // The same epoch again (the final checkpoint of a run takes the epoch in
            // flight): what was held since belongs to it, in its transaction.
            Txn::Prepared(e) if e == epoch => {
                let held = std::mem::take(&mut eos.held);
                eos.held_epochs.clear();
                for rec in &held {
                    self.send_in_txn(rec)?;
                }
                self.flush()?;
                if let Some(eos) = &mut self.eos {
                    let open = std::mem::take(&mut eos.open);
                    eos.prepared.extend_from_slice(&open);
                }
                Ok(())
            }
            Txn::Prepared(_) => {
                let from = eos.held_epochs.last().map_or(0, |&(_, end)| end);
                if eos.held.len() > from {
                    eos.held_epochs.push((epoch, eos.held.len()));
                }
                Ok(())
            }
        }
    }

    fn commit(&mut self, epoch: u64) -> Result<()> {
        if self.eos.is_none() {
            return self.flush();
        }
        loop {
            match self.txn {
                Txn::Prepared(e) if e <= epoch => self.commit_open(e)?,
                // Nothing prepared at or before `epoch` (or already committed).
                _ => return Ok(()),
            }
            let Some(eos) = &mut self.eos else {
                return Ok(());
            };
            if eos.held.is_empty() {
                return Ok(());
            }
            // The messages held back while the transaction waited start the next one
            // (prepared for the newest epoch they were assigned to, if any).
            let held = std::mem::take(&mut eos.held);
            let newest = eos.held_epochs.last().map(|&(e, _)| e);
            eos.held_epochs.clear();
            self.begin()?;
            for rec in &held {
                self.send_in_txn(rec)?;
            }
            match newest {
                None => return Ok(()),
                Some(e) => {
                    self.flush()?;
                    self.txn = Txn::Prepared(e);
                    if let Some(eos) = &mut self.eos {
                        eos.prepared = std::mem::take(&mut eos.open);
                    }
                }
            }
        }
    }

    /// Exactly-once: the transactional id, the epoch and this sink's run token (every
    /// worker's, messages or not: a restore fences each id the run used).
    fn pending_commit(&self, epoch: u64) -> serde_json::Value {
        match &self.eos {
            None => serde_json::Value::Null,
            Some(eos) => serde_json::to_value(eos::Pending {
                transactional_id: eos.transactional_id.clone(),
                epoch,
                token: eos.token.clone(),
            })
            .unwrap_or(serde_json::Value::Null),
        }
    }

    /// Exactly-once: the messages `commit(epoch)` will make visible — the prepared
    /// transaction's, or those held for `epoch` while an earlier one waits.
    fn write_ahead(&mut self, epoch: u64) -> Option<Vec<u8>> {
        let eos = self.eos.as_ref()?;
        match self.txn {
            Txn::Prepared(e) if e == epoch => Some(eos.prepared.clone()),
            _ => {
                let i = eos.held_epochs.iter().position(|&(e, _)| e == epoch)?;
                let from = i.checked_sub(1).map_or(0, |j| eos.held_epochs[j].1);
                let mut out = Vec::new();
                for rec in &eos.held[from..eos.held_epochs[i].1] {
                    eos::encode(&mut out, rec);
                }
                Some(out)
            }
        }
    }

    /// Exactly-once: finishes every transactional id's pending epochs (`eos.rs`).
    fn recover(&mut self, pending: &[PendingCommit]) -> Result<()> {
        if self.eos.is_none() || pending.is_empty() {
            return Ok(());
        }
        eos::recover(&self.opts, &self.table, &self.topic, pending)
            .map_err(|e| scrub_error(e, &self.secrets))
    }
}
