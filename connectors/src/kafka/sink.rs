//! The kafka sink: at-least-once (flush on `prepare_commit`) or exactly-once (one
//! Kafka transaction per committed epoch).

use super::{
    kafka_error, scrub, scrub_error, ColumnKind, Delivery, KafkaContext, KafkaFormat, KafkaOptions,
    MetaKey, Topics, REQUEST_TIMEOUT,
};
use crate::check_ctx;
use crate::format::csv::write_field;
use crate::values::{write_cell, TextStyle};
use crate::{ConnectorError, Result, Sink, WorkerContext};
use arrow::array::{Array, TimestampMillisecondArray};
use arrow::record_batch::RecordBatch;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use sluice_catalogs::TableDescriptor;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The producer's context: logs like the other clients and remembers the first
/// message that could not be delivered.
struct SinkContext {
    inner: KafkaContext,
    failure: Mutex<Option<String>>,
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

/// One encoded message.
struct Rec {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
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
    transactional: bool,
    txn: Txn,
    /// Exactly-once: messages written while a transaction waits for its commit.
    held: Vec<Rec>,
    /// The epoch a `prepare_commit` assigned the held messages to.
    held_epoch: Option<u64>,
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
        let transactional = match &opts.delivery {
            Delivery::AtLeastOnce => false,
            Delivery::ExactlyOnce { prefix } => {
                config.set("transactional.id", format!("{prefix}-{}", ctx.worker));
                true
            }
        };
        let context = SinkContext {
            inner: KafkaContext::new(&table.name, &opts.secrets),
            failure: Mutex::new(None),
        };
        let producer: ThreadedProducer<SinkContext> = config
            .create_with_context(context)
            .map_err(|e| kafka_error("cannot create a Kafka producer", &e, &opts.secrets))?;
        if transactional {
            producer.init_transactions(REQUEST_TIMEOUT).map_err(|e| {
                kafka_error("cannot initialize Kafka transactions", &e, &opts.secrets)
            })?;
        }
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
            transactional,
            txn: Txn::Idle,
            held: Vec::new(),
            held_epoch: None,
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
        let mut record = BaseRecord::<[u8], [u8]>::to(&self.topic);
        if let Some(k) = &rec.key {
            record = record.key(k.as_slice());
        }
        if let Some(v) = &rec.value {
            record = record.payload(v.as_slice());
        }
        if let Some(ts) = rec.timestamp {
            record = record.timestamp(ts);
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                    if Instant::now() < deadline =>
                {
                    record = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => {
                    return Err(kafka_error(
                        &format!(
                            "table '{}': cannot send to topic '{}'",
                            self.table, self.topic
                        ),
                        &e,
                        &self.secrets,
                    ))
                }
            }
        }
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

    fn commit_open(&mut self) -> Result<()> {
        match self.producer.commit_transaction(REQUEST_TIMEOUT) {
            Ok(()) => {
                self.txn = Txn::Idle;
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
            if !self.transactional {
                self.send(&rec)?;
                continue;
            }
            match self.txn {
                Txn::Prepared(_) => self.held.push(rec),
                Txn::Idle => {
                    self.begin()?;
                    self.send(&rec)?;
                }
                Txn::Open => self.send(&rec)?,
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
        if !self.transactional {
            return self.flush();
        }
        match self.txn {
            Txn::Idle => Ok(()),
            Txn::Open => {
                self.flush()?;
                self.txn = Txn::Prepared(epoch);
                Ok(())
            }
            Txn::Prepared(_) => {
                if !self.held.is_empty() {
                    self.held_epoch = Some(self.held_epoch.map_or(epoch, |e| e.max(epoch)));
                }
                Ok(())
            }
        }
    }

    fn commit(&mut self, epoch: u64) -> Result<()> {
        if !self.transactional {
            return self.flush();
        }
        loop {
            match self.txn {
                Txn::Prepared(e) if e <= epoch => self.commit_open()?,
                // Nothing prepared at or before `epoch` (or already committed).
                _ => return Ok(()),
            }
            if self.held.is_empty() {
                return Ok(());
            }
            // The messages held back while the transaction waited start the next one.
            self.begin()?;
            let held = std::mem::take(&mut self.held);
            for rec in &held {
                self.send(rec)?;
            }
            match self.held_epoch.take() {
                None => return Ok(()),
                Some(e) => {
                    self.flush()?;
                    self.txn = Txn::Prepared(e);
                }
            }
        }
    }
}
