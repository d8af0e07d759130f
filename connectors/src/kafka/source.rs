//! The kafka source: one worker's share of a table's partitions, assigned at explicit
//! offsets, each partition read through its own queue.

use super::{
    kafka_error, scrub_error, ColumnKind, KafkaContext, KafkaFormat, KafkaOptions, MetaKey,
    StartupMode, Topics, REQUEST_TIMEOUT,
};
use crate::format::csv::{Field as CsvField, Reader as CsvReader};
use crate::format::json::{decode_raw, into_owned, RawObject};
use crate::format::{make_batch, MAX_RAW_BYTES};
use crate::values::{parse_text, ColumnBuilder, Value};
use crate::{check_ctx, check_projection};
use crate::{BadRecord, ConnectorError, Result, Source, SourcePoll, WorkerContext};
use arrow::datatypes::{Field as ArrowField, Schema as ArrowSchema, SchemaRef};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::base_consumer::PartitionQueue;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use sluice_catalogs::{SqlType, TableDescriptor};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// How long a poll waits for messages when none are ready.
const POLL_WAIT: Duration = Duration::from_millis(10);

impl ConsumerContext for KafkaContext {}

type KafkaConsumer = BaseConsumer<KafkaContext>;

/// One partition of this worker.
#[derive(Clone, Debug)]
struct Part {
    topic: String,
    partition: i32,
    /// The offset of the next message to read.
    next: i64,
    /// Bounded mode: the end offset (exclusive) seen when the source started.
    end: Option<i64>,
    /// Bounded mode: nothing more to read here.
    done: bool,
    /// The partition's queue reported its end (`PartitionEOF`: the position reached the
    /// broker's high watermark) and no message came after it. Until the first report
    /// the partition counts as having input available.
    at_end: bool,
    /// Event time (the table's watermark column): the largest value read here.
    max_event_ms: Option<i64>,
    /// When a row was last read here.
    last_row: Option<std::time::Instant>,
}

impl Part {
    fn key(&self) -> String {
        format!("{}/{}", self.topic, self.partition)
    }
}

/// One projected output column.
#[derive(Clone, Debug)]
enum Out {
    /// Value field `field` (a CSV field index) of column `name`.
    Value {
        field: usize,
        name: String,
        ty: SqlType,
    },
    /// A metadata value.
    Meta(MetaKey),
}

/// What one poll has decoded so far.
struct Acc {
    builders: Vec<ColumnBuilder>,
    rows: usize,
    bad: Vec<BadRecord>,
    max_rows: usize,
}

impl Acc {
    fn full(&self) -> bool {
        self.rows >= self.max_rows || self.bad.len() >= self.max_rows
    }

    fn is_empty(&self) -> bool {
        self.rows == 0 && self.bad.is_empty()
    }
}

/// Decodes messages into rows of the projected columns.
struct Decoder {
    format: KafkaFormat,
    delimiter: u8,
    null_literal: String,
    value_width: usize,
    outs: Vec<Out>,
    /// The position in `outs` of the table's watermark column, when projected.
    event_time_out: Option<usize>,
}

/// One worker's kafka source.
pub(crate) struct KafkaSource {
    table: String,
    /// `scan.watermark.idle-timeout`: how long a caught-up partition keeps holding
    /// the event time back after its last row.
    idle_timeout: Duration,
    secrets: Vec<String>,
    bounded: bool,
    /// Whether the table names a consumer group (`properties.group.id`).
    has_group: bool,
    config: ClientConfig,
    context: KafkaContext,
    decoder: Decoder,
    types: Vec<SqlType>,
    out_schema: SchemaRef,
    parts: Vec<Part>,
    consumer: Arc<KafkaConsumer>,
    /// One per part once assigned (`None` for parts not assigned: done ones).
    queues: Option<Vec<Option<PartitionQueue<KafkaContext>>>>,
    /// The consumer's own queue has been found empty since the partitions were
    /// assigned: messages fetched before a partition's queue was split off (earlier
    /// offsets) are all read, so the partition queues may be read. Reading a partition
    /// queue first would skip those earlier messages as "already read".
    main_queue_clear: bool,
    /// Where the next poll starts its round over the partitions.
    rr: usize,
}

impl KafkaSource {
    pub(crate) fn new(
        table: &TableDescriptor,
        projection: &[usize],
        ctx: WorkerContext,
    ) -> Result<KafkaSource> {
        check_ctx(ctx)?;
        check_projection(table, projection)?;
        let opts = KafkaOptions::parse(&table.options, &table.schema)?;
        let secrets = opts.secrets.clone();
        Self::build(table, projection, ctx, opts).map_err(|e| scrub_error(e, &secrets))
    }

    fn build(
        table: &TableDescriptor,
        projection: &[usize],
        ctx: WorkerContext,
        opts: KafkaOptions,
    ) -> Result<KafkaSource> {
        let secrets = opts.secrets.clone();
        let mut config = opts.client_config();
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true");
        // librdkafka assigns partitions only to a consumer with a group; this one never
        // joins it nor commits to it.
        if opts.group_id.is_none() {
            config.set("group.id", format!("sluice-{}", table.name));
        }
        let reset = opts.properties.get("auto.offset.reset").cloned();
        if reset.is_none() {
            config.set("auto.offset.reset", "earliest");
        }
        let context = KafkaContext::new(&table.name, &secrets);
        let consumer = create_consumer(&config, &context, &secrets)?;

        // Every partition of every topic, in (topic, partition) order; ours are every
        // `workers`-th.
        let all = list_partitions(&consumer, &opts.topics, &secrets)?;
        let mine: Vec<(String, i32)> = all
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % ctx.workers == ctx.worker)
            .map(|(_, p)| p)
            .collect();
        let parts = start_offsets(&consumer, &opts, reset.as_deref(), mine, &secrets)?;

        let mut outs = Vec::with_capacity(projection.len());
        let mut types = Vec::with_capacity(projection.len());
        let mut fields = Vec::with_capacity(projection.len());
        for &i in projection {
            let f = table.schema.fields.get(i).ok_or_else(|| {
                ConnectorError::Internal(format!("projection column {i} out of range"))
            })?;
            let kind = opts.columns.get(i).copied().ok_or_else(|| {
                ConnectorError::Internal(format!("projection column {i} out of range"))
            })?;
            outs.push(match kind {
                ColumnKind::Value(field) => Out::Value {
                    field,
                    name: f.name.clone(),
                    ty: f.ty,
                },
                ColumnKind::Meta(k) => Out::Meta(k),
            });
            types.push(f.ty);
            fields.push(ArrowField::new(&f.name, f.ty.to_arrow(), true));
        }
        Ok(KafkaSource {
            table: table.name.clone(),
            secrets,
            bounded: opts.bounded,
            has_group: opts.group_id.is_some(),
            config,
            context,
            decoder: Decoder {
                format: opts.format,
                delimiter: opts.delimiter,
                null_literal: opts.null_literal.clone(),
                value_width: opts.value_columns.len(),
                outs,
                event_time_out: table
                    .watermark
                    .as_ref()
                    .and_then(|w| projection.iter().position(|&i| i == w.column)),
            },
            idle_timeout: opts.idle_timeout,
            types,
            out_schema: Arc::new(ArrowSchema::new(fields)),
            parts,
            consumer: Arc::new(consumer),
            queues: None,
            main_queue_clear: false,
            rr: 0,
        })
    }

    /// Bounded and every partition read to its end.
    fn finished(&self) -> bool {
        self.bounded && self.parts.iter().all(|p| p.done)
    }

    /// Assign the partitions not yet done at their next offsets, each to its own queue.
    fn assign(&mut self) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for p in self.parts.iter().filter(|p| !p.done) {
            tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.next))
                .map_err(|e| kafka_error("cannot assign partitions", &e, &self.secrets))?;
        }
        self.consumer
            .assign(&tpl)
            .map_err(|e| kafka_error("cannot assign partitions", &e, &self.secrets))?;
        let mut queues = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            if p.done {
                queues.push(None);
                continue;
            }
            let q = self
                .consumer
                .split_partition_queue(&p.topic, p.partition)
                .ok_or_else(|| {
                    ConnectorError::Internal(format!(
                        "table '{}': no queue for partition {}",
                        self.table,
                        p.key()
                    ))
                })?;
            queues.push(Some(q));
        }
        self.queues = Some(queues);
        self.main_queue_clear = false;
        Ok(())
    }

    /// Stop fetching a partition that is done.
    fn pause(consumer: &KafkaConsumer, part: &Part) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&part.topic, part.partition);
        // Only saves fetching: messages past the end are dropped anyway.
        let _ = consumer.pause(&tpl);
    }

    /// Take ready messages from the partition queues, round-robin, until the poll is
    /// full or no queue has any.
    fn drain(&mut self, acc: &mut Acc) {
        if !self.main_queue_clear {
            return;
        }
        let Some(queues) = self.queues.as_ref() else {
            return;
        };
        let n = self.parts.len();
        if n == 0 {
            return;
        }
        let share = acc.max_rows.div_ceil(n).max(1);
        self.rr = (self.rr + 1) % n;
        loop {
            let mut progress = false;
            for k in 0..n {
                let i = (self.rr + k) % n;
                let (Some(Some(q)), Some(part)) = (queues.get(i), self.parts.get_mut(i)) else {
                    continue;
                };
                let mut taken = 0;
                while taken < share && !acc.full() && !part.done {
                    match q.poll(Duration::ZERO) {
                        None => break,
                        Some(Ok(m)) => {
                            taken += 1;
                            progress = true;
                            if on_message(part, &m, &self.decoder, acc) {
                                Self::pause(&self.consumer, part);
                            }
                        }
                        Some(Err(KafkaError::PartitionEOF(_))) => {
                            part.at_end = true;
                            if part.end.is_some() {
                                part.done = true;
                                progress = true;
                                Self::pause(&self.consumer, part);
                            }
                        }
                        // Transient fetch errors: librdkafka retries (and logs them).
                        Some(Err(_)) => break,
                    }
                }
                if acc.full() {
                    return;
                }
            }
            if !progress {
                return;
            }
        }
    }

    /// Serve the consumer's own queue (events, errors, and messages fetched before a
    /// partition's queue was split off), waiting up to `wait` for something.
    fn serve(&mut self, wait: Duration, acc: &mut Acc) -> Result<()> {
        let mut wait = wait;
        loop {
            let Some(event) = self.consumer.poll(wait) else {
                self.main_queue_clear = true;
                break;
            };
            wait = Duration::ZERO;
            match event {
                Ok(m) => {
                    let (topic, partition) = (m.topic(), m.partition());
                    if let Some(part) = self
                        .parts
                        .iter_mut()
                        .find(|p| p.partition == partition && p.topic == topic)
                    {
                        if !part.done && on_message(part, &m, &self.decoder, acc) {
                            Self::pause(&self.consumer, part);
                        }
                    }
                }
                Err(KafkaError::PartitionEOF(partition)) => {
                    // Only the partition number is known: act when it is unambiguous.
                    // The partition's own queue may still hold messages fetched before
                    // this event: only an EOF at the end offset itself ends it here (the
                    // queue's own EOF, in order, ends it otherwise).
                    let mut matching = self
                        .parts
                        .iter_mut()
                        .filter(|p| p.partition == partition && p.end.is_some());
                    if let (Some(part), None) = (matching.next(), matching.next()) {
                        if part.end.is_some_and(|e| part.next >= e) {
                            part.done = true;
                        }
                    }
                }
                Err(_) => {}
            }
            if acc.full() {
                break;
            }
        }
        if let Some((code, reason)) = self.consumer.client().fatal_error() {
            return Err(ConnectorError::Io(super::scrub(
                &format!(
                    "table '{}': the Kafka consumer failed: {reason} ({code:?})",
                    self.table
                ),
                &self.secrets,
            )));
        }
        Ok(())
    }
}

/// Handle one message of `part`; true when it made the partition done.
fn on_message(
    part: &mut Part,
    msg: &BorrowedMessage<'_>,
    decoder: &Decoder,
    acc: &mut Acc,
) -> bool {
    let offset = msg.offset();
    part.at_end = false;
    if offset < part.next {
        return false; // already read
    }
    if part.end.is_some_and(|end| offset >= end) {
        part.done = true;
        return true;
    }
    part.next = offset + 1;
    if let Some(t) = decoder.decode(msg, acc) {
        part.max_event_ms = Some(part.max_event_ms.map_or(t, |m| m.max(t)));
    }
    part.last_row = Some(std::time::Instant::now());
    if part.end.is_some_and(|end| part.next >= end) {
        part.done = true;
        return true;
    }
    false
}

impl Decoder {
    /// Append the row of one message to `acc`, or a bad record. Returns the row's event
    /// time (its watermark column), when it has one.
    fn decode(&self, msg: &BorrowedMessage<'_>, acc: &mut Acc) -> Option<i64> {
        let payload = msg.payload();
        let bad = |error: String| BadRecord {
            position: format!("{}/{}@{}", msg.topic(), msg.partition(), msg.offset()),
            error,
            raw: payload
                .map(|p| p[..p.len().min(MAX_RAW_BYTES)].to_vec())
                .unwrap_or_default(),
        };
        let mut values: Vec<Value<'_>> = Vec::with_capacity(self.outs.len());
        let result = match (self.format, payload) {
            // Tombstones carry no row.
            (KafkaFormat::Json | KafkaFormat::Csv, None) => return None,
            (KafkaFormat::Json, Some(p)) => self.decode_json(p, msg, &mut values),
            (KafkaFormat::Csv, Some(p)) => self.decode_csv(p, msg, &mut values),
            (KafkaFormat::Raw, p) => self.decode_raw_value(p, msg, &mut values),
        };
        match result {
            Err(e) => {
                acc.bad.push(bad(e));
                None
            }
            Ok(()) => {
                for (b, v) in acc.builders.iter_mut().zip(&values) {
                    b.append(v);
                }
                acc.rows += 1;
                self.event_time_out
                    .and_then(|k| acc.builders.get(k))
                    .and_then(ColumnBuilder::last_timestamp)
            }
        }
    }

    fn decode_json<'m>(
        &self,
        payload: &'m [u8],
        msg: &'m BorrowedMessage<'_>,
        values: &mut Vec<Value<'m>>,
    ) -> std::result::Result<(), String> {
        let text = std::str::from_utf8(payload).map_err(|e| format!("invalid UTF-8: {e}"))?;
        if !text.trim_start().starts_with('{') {
            return Err("expected a JSON object".into());
        }
        let obj = serde_json::from_str::<RawObject<'_>>(text)
            .map_err(|e| format!("invalid JSON: {e}"))?;
        for out in &self.outs {
            let v = match out {
                Out::Meta(k) => meta_value(*k, msg)?,
                Out::Value { name, ty, .. } => {
                    let raw = obj.get(name.as_str()).or_else(|| {
                        obj.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case(name))
                            .map(|(_, v)| v)
                    });
                    match raw {
                        None => Value::Null,
                        Some(r) => {
                            decode_raw(r.get(), *ty).map_err(|e| format!("column '{name}': {e}"))?
                        }
                    }
                }
            };
            values.push(v);
        }
        Ok(())
    }

    fn decode_csv<'m>(
        &self,
        payload: &'m [u8],
        msg: &'m BorrowedMessage<'_>,
        values: &mut Vec<Value<'m>>,
    ) -> std::result::Result<(), String> {
        let mut reader = CsvReader::resume(payload, 0, 1, self.delimiter);
        let mut fields: Vec<CsvField<'_>> = Vec::new();
        let Some(meta) = reader.next_record(&mut fields) else {
            return Err("empty message".into());
        };
        if let Some(e) = meta.error {
            return Err(e);
        }
        if fields.len() != self.value_width {
            return Err(format!(
                "expected {} fields, found {}",
                self.value_width,
                fields.len()
            ));
        }
        let mut rest = Vec::new();
        if reader.next_record(&mut rest).is_some() {
            return Err("the message holds more than one CSV record".into());
        }
        let null = self.null_literal.as_bytes();
        for out in &self.outs {
            let v = match out {
                Out::Meta(k) => meta_value(*k, msg)?,
                Out::Value { field, name, ty } => {
                    let f = fields
                        .get(*field)
                        .ok_or_else(|| format!("column '{name}': missing field"))?;
                    if !f.quoted
                        && (f.bytes.as_ref() == null
                            || (f.bytes.is_empty() && *ty != SqlType::Varchar))
                    {
                        Value::Null
                    } else {
                        std::str::from_utf8(&f.bytes)
                            .map_err(|e| format!("invalid UTF-8: {e}"))
                            .and_then(|s| parse_text(s, *ty))
                            .map(into_owned)
                            .map_err(|e| format!("column '{name}': {e}"))?
                    }
                }
            };
            values.push(v);
        }
        Ok(())
    }

    fn decode_raw_value<'m>(
        &self,
        payload: Option<&'m [u8]>,
        msg: &'m BorrowedMessage<'_>,
        values: &mut Vec<Value<'m>>,
    ) -> std::result::Result<(), String> {
        let text = match payload {
            None => None,
            Some(p) => Some(std::str::from_utf8(p).map_err(|e| format!("invalid UTF-8: {e}"))?),
        };
        for out in &self.outs {
            values.push(match out {
                Out::Meta(k) => meta_value(*k, msg)?,
                Out::Value { .. } => text.map_or(Value::Null, |t| Value::Str(Cow::Borrowed(t))),
            });
        }
        Ok(())
    }
}

/// A metadata value of a message.
fn meta_value<'m>(
    key: MetaKey,
    msg: &'m BorrowedMessage<'_>,
) -> std::result::Result<Value<'m>, String> {
    Ok(match key {
        MetaKey::Topic => Value::Str(Cow::Borrowed(msg.topic())),
        MetaKey::Partition => Value::Int(msg.partition().into()),
        MetaKey::Offset => Value::Int(msg.offset()),
        MetaKey::Timestamp => msg.timestamp().to_millis().map_or(Value::Null, Value::Int),
        MetaKey::Key => match msg.key() {
            None => Value::Null,
            Some(k) => Value::Str(Cow::Borrowed(
                std::str::from_utf8(k).map_err(|e| format!("the key is not valid UTF-8: {e}"))?,
            )),
        },
        MetaKey::Headers => match msg.headers() {
            None => Value::Null,
            Some(h) => {
                let mut map = serde_json::Map::new();
                for header in h.iter() {
                    let v = header.value.map_or(serde_json::Value::Null, |v| {
                        serde_json::Value::String(String::from_utf8_lossy(v).into_owned())
                    });
                    map.insert(header.key.to_string(), v);
                }
                Value::Str(Cow::Owned(serde_json::Value::Object(map).to_string()))
            }
        },
    })
}

fn create_consumer(
    config: &ClientConfig,
    context: &KafkaContext,
    secrets: &[String],
) -> Result<KafkaConsumer> {
    config
        .create_with_context(context.clone())
        .map_err(|e| kafka_error("cannot create a Kafka consumer", &e, secrets))
}

/// Every (topic, partition) of the table's topics, sorted.
fn list_partitions(
    consumer: &KafkaConsumer,
    topics: &Topics,
    secrets: &[String],
) -> Result<Vec<(String, i32)>> {
    let mut out = Vec::new();
    match topics {
        Topics::Names(names) => {
            for name in names {
                let md = consumer
                    .fetch_metadata(Some(name), REQUEST_TIMEOUT)
                    .map_err(|e| {
                        kafka_error(
                            &format!("cannot read the metadata of topic '{name}'"),
                            &e,
                            secrets,
                        )
                    })?;
                let t = md.topics().iter().find(|t| t.name() == name);
                match t {
                    Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                        out.extend(t.partitions().iter().map(|p| (name.clone(), p.id())));
                    }
                    Some(t) if t.error().is_some() => {
                        return Err(ConnectorError::Io(format!(
                            "topic '{name}' is not available: {:?}",
                            t.error().map(rdkafka::types::RDKafkaErrorCode::from)
                        )))
                    }
                    _ => return Err(ConnectorError::Io(format!("topic '{name}' does not exist"))),
                }
            }
        }
        Topics::Pattern(re) => {
            let md = consumer
                .fetch_metadata(None, REQUEST_TIMEOUT)
                .map_err(|e| kafka_error("cannot read the cluster's topics", &e, secrets))?;
            for t in md.topics() {
                if t.error().is_none() && !t.name().starts_with("__") && re.is_match(t.name()) {
                    out.extend(
                        t.partitions()
                            .iter()
                            .map(|p| (t.name().to_string(), p.id())),
                    );
                }
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The offsets this worker's partitions start at (and end at, when bounded).
fn start_offsets(
    consumer: &KafkaConsumer,
    opts: &KafkaOptions,
    reset: Option<&str>,
    mine: Vec<(String, i32)>,
    secrets: &[String],
) -> Result<Vec<Part>> {
    if mine.is_empty() {
        return Ok(Vec::new());
    }
    let mut tpl = TopicPartitionList::new();
    for (t, p) in &mine {
        let offset = match opts.startup {
            StartupMode::Timestamp(ts) => Offset::Offset(ts),
            _ => Offset::Invalid,
        };
        tpl.add_partition_offset(t, *p, offset)
            .map_err(|e| kafka_error("bad partition", &e, secrets))?;
    }
    let found = match opts.startup {
        StartupMode::Timestamp(_) => Some(
            consumer
                .offsets_for_times(tpl, REQUEST_TIMEOUT)
                .map_err(|e| kafka_error("cannot look offsets up by timestamp", &e, secrets))?,
        ),
        StartupMode::GroupOffsets => Some(
            consumer
                .committed_offsets(tpl, REQUEST_TIMEOUT)
                .map_err(|e| {
                    kafka_error("cannot read the group's committed offsets", &e, secrets)
                })?,
        ),
        _ => None,
    };
    let mut parts = Vec::with_capacity(mine.len());
    for (topic, partition) in mine {
        let key = format!("{topic}/{partition}");
        let (low, high) = consumer
            .fetch_watermarks(&topic, partition, REQUEST_TIMEOUT)
            .map_err(|e| kafka_error(&format!("cannot read the offsets of {key}"), &e, secrets))?;
        let looked_up = found
            .as_ref()
            .and_then(|f| f.find_partition(&topic, partition))
            .map(|e| e.offset());
        let next = start_offset(opts.startup, looked_up, low, high, reset).ok_or_else(|| {
            ConnectorError::Io(format!(
                "group '{}' has no committed offset for {key}: set 'properties.auto.offset.reset' to 'earliest' or 'latest' to start there instead",
                opts.group_id.as_deref().unwrap_or("")
            ))
        })?;
        let end = opts.bounded.then_some(high);
        parts.push(Part {
            topic,
            partition,
            next,
            end,
            done: end.is_some_and(|e| next >= e),
            at_end: false,
            max_event_ms: None,
            last_row: None,
        });
    }
    Ok(parts)
}

/// Where a partition with offsets `low..high` starts: `looked_up` is the broker's
/// answer for `timestamp` (the first offset at or after it) and `group-offsets` (the
/// committed offset); `reset` is `auto.offset.reset`. `None`: a group without a
/// committed offset and no reset policy.
pub(crate) fn start_offset(
    startup: StartupMode,
    looked_up: Option<Offset>,
    low: i64,
    high: i64,
    reset: Option<&str>,
) -> Option<i64> {
    let next = match (startup, looked_up) {
        (StartupMode::Earliest, _) => low,
        (StartupMode::Latest, _) => high,
        (StartupMode::Timestamp(_), Some(Offset::Offset(n))) if n >= 0 => n,
        // No message at or after the timestamp.
        (StartupMode::Timestamp(_), _) => high,
        (StartupMode::GroupOffsets, Some(Offset::Offset(n))) if n >= 0 => n,
        (StartupMode::GroupOffsets, _) => match reset.map(str::to_ascii_lowercase).as_deref() {
            Some("smallest" | "earliest" | "beginning") => low,
            Some("largest" | "latest" | "end") => high,
            _ => return None,
        },
    };
    Some(next.clamp(low, high.max(low)))
}

impl Source for KafkaSource {
    fn poll(&mut self, max_rows: usize) -> Result<SourcePoll> {
        if self.finished() {
            return Ok(SourcePoll::Finished);
        }
        if self.queues.is_none() {
            self.assign()?;
        }
        let max_rows = max_rows.max(1);
        let mut acc = Acc {
            builders: self
                .types
                .iter()
                .map(|&t| ColumnBuilder::new(t, max_rows.min(8192)))
                .collect(),
            rows: 0,
            bad: Vec::new(),
            max_rows,
        };
        // The consumer's queue first: events, and messages fetched before the split.
        self.serve(Duration::ZERO, &mut acc)?;
        self.drain(&mut acc);
        if acc.is_empty() {
            self.serve(POLL_WAIT, &mut acc)?;
            self.drain(&mut acc);
        }
        if acc.is_empty() {
            return Ok(if self.finished() {
                SourcePoll::Finished
            } else {
                SourcePoll::Idle
            });
        }
        let cols = acc.builders.iter_mut().map(ColumnBuilder::finish).collect();
        let batch = make_batch(&self.out_schema, cols, acc.rows)?;
        Ok(SourcePoll::Batch {
            batch,
            bad: acc.bad,
        })
    }

    /// The smallest, over the partitions that can still hold the event time back, of the
    /// largest event time each has read: a partition that is done, or caught up with
    /// no row for `scan.watermark.idle-timeout`, does not hold it back; one with unread
    /// input and no row yet holds it at nothing (`None`). When no partition holds it
    /// back, the largest event time read anywhere.
    fn tracks_event_time(&self) -> bool {
        self.decoder.event_time_out.is_some()
    }

    fn event_time(&self) -> Option<i64> {
        let now = std::time::Instant::now();
        let idle = |p: &Part| {
            p.done
                || (p.at_end
                    && p.last_row
                        .is_none_or(|t| now.duration_since(t) >= self.idle_timeout))
        };
        let mut active = self.parts.iter().filter(|p| !idle(p)).peekable();
        if active.peek().is_some() {
            active.map(|p| p.max_event_ms).min().flatten()
        } else {
            self.parts.iter().filter_map(|p| p.max_event_ms).max()
        }
    }

    /// Every partition reported its end since its last message: the topic is idle.
    fn caught_up(&self) -> bool {
        self.parts.iter().all(|p| p.done || p.at_end)
    }

    fn position(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.parts
                .iter()
                .map(|p| (p.key(), serde_json::Value::from(p.next)))
                .collect(),
        )
    }

    /// With `properties.group.id`: commit the offsets of this worker's partitions found
    /// in `position` to the group (asynchronously; for monitoring, e.g. consumer lag).
    fn commit_position(&mut self, position: &serde_json::Value) -> Result<()> {
        if !self.has_group {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for p in &self.parts {
            if let Some(n) = position.get(p.key()).and_then(serde_json::Value::as_i64) {
                tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(n))
                    .map_err(|e| kafka_error("bad position", &e, &self.secrets))?;
            }
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        self.consumer
            .commit(&tpl, CommitMode::Async)
            .map_err(|e| kafka_error("cannot commit offsets to the group", &e, &self.secrets))
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        let bad = || {
            ConnectorError::Internal(format!(
                "table '{}': bad kafka source position {position}",
                self.table
            ))
        };
        let obj = position.as_object().ok_or_else(bad)?;
        let mut next = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            next.push(match obj.get(&p.key()) {
                None => None,
                Some(v) => Some(v.as_i64().filter(|n| *n >= 0).ok_or_else(bad)?),
            });
        }
        for (p, n) in self.parts.iter_mut().zip(next) {
            if let Some(n) = n {
                p.next = n;
                p.done = p.end.is_some_and(|e| n >= e);
            }
        }
        if self.queues.is_some() {
            // Start over with a fresh consumer: nothing fetched for the old offsets
            // can come out afterwards.
            self.queues = None;
            self.consumer = Arc::new(create_consumer(&self.config, &self.context, &self.secrets)?);
        }
        Ok(())
    }
}
