//! The `kafka` connector: reads and writes Apache Kafka topics with librdkafka
//! (through the `rdkafka` crate), with Flink's option names.
//!
//! ```sql
//! CREATE TABLE events (
//!   id BIGINT, name VARCHAR,
//!   ts TIMESTAMP(3) METADATA FROM 'timestamp',
//!   part INT METADATA FROM 'partition' VIRTUAL,
//!   WATERMARK FOR ts AS ts - INTERVAL '5' SECOND
//! ) WITH (
//!   'connector' = 'kafka', 'topic' = 'events', 'format' = 'json',
//!   'properties.bootstrap.servers' = 'localhost:9092',
//!   'scan.startup.mode' = 'earliest-offset'
//! );
//! ```
//!
//! Options:
//!
//! | key | meaning |
//! |-----|---------|
//! | `topic` | one topic, or a `;`-separated list (sources); exactly one topic (sinks) |
//! | `topic-pattern` | a regular expression (matching whole names) over the cluster's topics, resolved when a source starts; names starting with `__` (internal topics) are left out; sources only; excludes `topic` |
//! | `properties.bootstrap.servers` (required) | the brokers, `host:port[,host:port…]` |
//! | `properties.group.id` | the consumer group: read by `group-offsets`; sources never join it and never commit to it automatically |
//! | `properties.*` | any other librdkafka setting, passed through (`properties.security.protocol`, `properties.sasl.password`, …); `enable.auto.commit` is always `false` (setting it to `true` is an error: offsets live in checkpoints) and `transactional.id` is set by `sink.transactional-id-prefix` |
//! | `format` (required) | `json` (one JSON object per message), `csv` (one CSV record per message, columns in declaration order, no header) or `raw` (one `VARCHAR` column gets the value as UTF-8 text) |
//! | `csv.field-delimiter` | one ASCII character, default `,` |
//! | `csv.null-literal` | unquoted text that means NULL; default the empty field |
//! | `scan.startup.mode` | `earliest-offset` (default), `latest-offset`, `group-offsets` (the group's committed offsets; a partition without one starts where `properties.auto.offset.reset` says — `earliest` or `latest` — and is an error when that is not set) or `timestamp` |
//! | `scan.startup.timestamp-millis` | with `timestamp`: start at the first message whose timestamp is at least this many epoch milliseconds |
//! | `scan.bounded.mode` | `unbounded` (default) or `latest-offset`: the source reads up to the end offsets it saw when it started, then finishes |
//! | `scan.watermark.idle-timeout` | with a `WATERMARK`: the event time (and so the watermark) is tracked per partition and is the smallest over the partitions, so partitions far apart in event time never make each other's records late; a partition that has read all its available input stops holding it back this long after its last record (a duration, `30s`; default `0`: at once). A partition that has input it has not read yet always holds it back |
//! | `format.on-error` | `fail` (default), `skip` or `dead-letter`, for messages that cannot be decoded (as the filesystem connector) |
//! | `dead-letter.path` | where `dead-letter` writes bad records (JSON-lines files) |
//! | `dead-letter.topic` | or: the Kafka topic `dead-letter` produces them to, one message per record keyed by its position (`topic/partition@offset`); the producer takes `dead-letter.properties.*`, or else this table's `properties.*` |
//! | `sink.key.fields` | `;`-separated columns whose values form the message key (a JSON object or a CSV record per `format`; with `raw`, one column's text); when absent, the table's `PRIMARY KEY (…) NOT ENFORCED` columns, else no key. With a key the sink takes an *updating* result (an unwindowed `GROUP BY`, an outer join, a Top-N) as upserts: each time a key's row changes, its new row is written under the key, and a key whose row is gone gets a tombstone (the key, no value) — a compacted topic holds the current result |
//! | `sink.delivery-guarantee` | `at-least-once` (default) or `exactly-once` (Kafka transactions) |
//! | `sink.transactional-id-prefix` | required with `exactly-once`: worker `i` uses `transactional.id` = `<prefix>-<i>` |
//! | `metadata.<column>` | written by the compiler for `<column> <type> METADATA [FROM '<key>'] [VIRTUAL]`: the column is the message's `<key>` rather than part of its value |
//!
//! Metadata keys: `topic` (`VARCHAR`), `partition` (`INT`), `offset` (`BIGINT`),
//! `timestamp` (`TIMESTAMP(3)`, the message timestamp; usable in a `WATERMARK`), `key`
//! (`VARCHAR`, the key bytes as UTF-8) and `headers` (`VARCHAR`, a JSON object of header
//! name → UTF-8 value). Sinks write only the value columns; a `timestamp` metadata
//! column, when not NULL, sets the message timestamp, and the other metadata columns
//! are ignored (`VIRTUAL` or not: the compiler does not record `VIRTUAL`).
//!
//! **Sources.** The partitions of all the table's topics, sorted by (topic, partition),
//! are dealt to workers: partition `i` of that list is read by worker `i % workers`. A
//! worker assigns itself its partitions at explicit offsets (no group membership, no
//! rebalances) and never commits offsets. [`crate::Source::position`] is
//! `{"<topic>/<partition>": <next offset>, …}` for the worker's partitions;
//! [`crate::Source::seek`] takes such a map (or several workers' maps merged) and resumes
//! each of its partitions found there at that offset; with `properties.group.id`,
//! [`crate::Source::commit_position`] commits such a map's offsets to the group (for
//! monitoring: nothing reads them back but `group-offsets`). A message whose value cannot be
//! decoded is returned as a [`crate::BadRecord`] at position `<topic>/<partition>@<offset>`;
//! a message without a value (a tombstone) is skipped for `json` and `csv` and is a NULL
//! for `raw`. Pushed-down filters and projections are applied in the source.
//!
//! **Sinks.** `at-least-once`: messages are sent as rows arrive and
//! [`crate::Sink::prepare_commit`] waits until every one is acknowledged. `exactly-once`:
//! one transactional producer per worker (`init_transactions` when it is created, which
//! aborts what an earlier producer of the same id left open); a transaction begins with
//! the first row after a commit, `prepare_commit(epoch)` flushes it and `commit(epoch)`
//! commits it (again: a no-op). Rows written between `prepare_commit(e)` and `commit(e)`
//! are held in memory and sent in the next transaction. librdkafka cannot resume a
//! prepared transaction from another process, so one left uncommitted by a crash is
//! aborted when the sink is created again.
//!
//! Values of secret options (see [`sluice_catalogs::is_secret_option`], e.g.
//! `properties.sasl.password`) never appear in errors or log lines: every message that
//! could carry one (librdkafka's included) is scrubbed.

mod eos;
mod sink;
mod source;
#[cfg(test)]
mod tests;

use crate::options::{check_keys, choice, csv_delimiter, parsed, required, METADATA_PREFIX};
use crate::{Connector, ConnectorError, Result, Sink, Source, WorkerContext};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use sluice_catalogs::{
    is_secret_option, scrub_secrets, Schema, SinkKind, SourceCapabilities, SqlType, TableDescriptor,
};
use sluice_expr::ScalarExpr;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long metadata, offset and transaction requests may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Value formats of the kafka connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KafkaFormat {
    Json,
    Csv,
    Raw,
}

/// Where a source starts reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartupMode {
    Earliest,
    Latest,
    GroupOffsets,
    Timestamp(i64),
}

/// The topics a table names.
#[derive(Clone, Debug)]
pub(crate) enum Topics {
    /// Explicit names, in the order given.
    Names(Vec<String>),
    /// A pattern over the cluster's topic names (anchored at both ends).
    Pattern(regex::Regex),
}

/// A Kafka metadata key a column can be bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetaKey {
    Topic,
    Partition,
    Offset,
    Timestamp,
    Key,
    Headers,
}

impl MetaKey {
    const ALL: [(&'static str, MetaKey); 6] = [
        ("topic", MetaKey::Topic),
        ("partition", MetaKey::Partition),
        ("offset", MetaKey::Offset),
        ("timestamp", MetaKey::Timestamp),
        ("key", MetaKey::Key),
        ("headers", MetaKey::Headers),
    ];

    fn parse(s: &str) -> Option<MetaKey> {
        Self::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s.trim()))
            .map(|(_, k)| *k)
    }

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| n)
    }

    /// The SQL type a column bound to this key must have.
    fn ty(self) -> SqlType {
        match self {
            MetaKey::Topic | MetaKey::Key | MetaKey::Headers => SqlType::Varchar,
            MetaKey::Partition => SqlType::Int,
            MetaKey::Offset => SqlType::BigInt,
            MetaKey::Timestamp => SqlType::Timestamp,
        }
    }
}

/// What a table column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColumnKind {
    /// Field `i` of the message value (the `i`-th value column; a CSV field index).
    Value(usize),
    /// A metadata value of the message.
    Meta(MetaKey),
}

/// Sink delivery guarantees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Delivery {
    AtLeastOnce,
    ExactlyOnce { prefix: String },
}

/// The parsed, validated options of a kafka table.
#[derive(Clone, Debug)]
pub(crate) struct KafkaOptions {
    pub topics: Topics,
    /// librdkafka settings (the `properties.` prefix removed).
    pub properties: BTreeMap<String, String>,
    pub group_id: Option<String>,
    pub format: KafkaFormat,
    pub delimiter: u8,
    pub null_literal: String,
    pub startup: StartupMode,
    pub bounded: bool,
    /// `scan.watermark.idle-timeout` (default 0).
    pub idle_timeout: std::time::Duration,
    /// One per table column.
    pub columns: Vec<ColumnKind>,
    /// Table column indices of the value columns, in order.
    pub value_columns: Vec<usize>,
    /// Table column indices of `sink.key.fields`.
    pub key_columns: Vec<usize>,
    pub delivery: Delivery,
    /// Values of secret options, to scrub from messages.
    pub secrets: Vec<String>,
}

const KAFKA_KEYS: &[&str] = &[
    "topic",
    "topic-pattern",
    "format",
    "csv.field-delimiter",
    "csv.null-literal",
    "scan.startup.mode",
    "scan.startup.timestamp-millis",
    "scan.bounded.mode",
    "scan.watermark.idle-timeout",
    "scan.late-records",
    "format.on-error",
    "dead-letter.path",
    "dead-letter.topic",
    "sink.key.fields",
    "sink.delivery-guarantee",
    "sink.transactional-id-prefix",
];

const PROPERTIES: &str = "properties.";
const DEAD_LETTER_PROPERTIES: &str = "dead-letter.properties.";

/// Dead letters on a Kafka topic (`'dead-letter.topic'`): see
/// [`crate::DeadLetterWriter`].
pub(crate) struct KafkaDeadLetters {
    producer: rdkafka::producer::BaseProducer,
    topic: String,
    secrets: Vec<String>,
}

impl KafkaDeadLetters {
    /// A producer for `topic` from the table's `dead-letter.properties.*`, or else its
    /// `properties.*`.
    pub(crate) fn open(topic: &str, options: &BTreeMap<String, String>) -> Result<Self> {
        let secrets = secret_values(options);
        let own: Vec<(&String, &String)> = options
            .iter()
            .filter(|(k, _)| k.starts_with(DEAD_LETTER_PROPERTIES))
            .collect();
        let (prefix, props) = if own.is_empty() {
            (
                PROPERTIES,
                options
                    .iter()
                    .filter(|(k, _)| k.starts_with(PROPERTIES))
                    .collect::<Vec<_>>(),
            )
        } else {
            (DEAD_LETTER_PROPERTIES, own)
        };
        let mut config = ClientConfig::new();
        config.set("enable.idempotence", "true");
        for (k, v) in &props {
            config.set(&k[prefix.len()..], v.as_str());
        }
        if config.get("bootstrap.servers").is_none() {
            return Err(ConnectorError::Config(
                "'dead-letter.topic' needs 'dead-letter.properties.bootstrap.servers' \
                 (or the table's own 'properties.bootstrap.servers')"
                    .into(),
            ));
        }
        let producer = config
            .create()
            .map_err(|e| kafka_error("dead-letter producer", &e, &secrets))?;
        Ok(KafkaDeadLetters {
            producer,
            topic: topic.to_string(),
            secrets,
        })
    }

    /// Queues one dead letter (keyed by the record's position).
    pub(crate) fn send(&mut self, position: &str, json: &str) -> Result<()> {
        use rdkafka::producer::BaseRecord;
        let mut record = BaseRecord::to(&self.topic).key(position).payload(json);
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    self.producer.poll(std::time::Duration::from_millis(10));
                }
                Err((e, _)) => return Err(kafka_error("dead-letter send", &e, &self.secrets)),
            }
        }
    }

    /// Waits until every queued dead letter is acknowledged.
    pub(crate) fn flush(&mut self) -> Result<()> {
        use rdkafka::producer::Producer;
        self.producer
            .flush(std::time::Duration::from_secs(60))
            .map_err(|e| kafka_error("dead-letter flush", &e, &self.secrets))
    }
}

/// The values of the secret options in `options`.
pub(crate) fn secret_values(options: &BTreeMap<String, String>) -> Vec<String> {
    options
        .iter()
        .filter(|(k, v)| is_secret_option(k) && !v.is_empty())
        .map(|(_, v)| v.clone())
        .collect()
}

/// `text` with the secrets replaced.
pub(crate) fn scrub(text: &str, secrets: &[String]) -> String {
    let s: Vec<&str> = secrets.iter().map(String::as_str).collect();
    scrub_secrets(text, &s)
}

/// An error with the secrets scrubbed from its message.
pub(crate) fn scrub_error(e: ConnectorError, secrets: &[String]) -> ConnectorError {
    match e {
        ConnectorError::Config(m) => ConnectorError::Config(scrub(&m, secrets)),
        ConnectorError::Io(m) => ConnectorError::Io(scrub(&m, secrets)),
        ConnectorError::Format(m) => ConnectorError::Format(scrub(&m, secrets)),
        ConnectorError::Internal(m) => ConnectorError::Internal(scrub(&m, secrets)),
    }
}

/// A librdkafka error about `what`, scrubbed.
pub(crate) fn kafka_error(what: &str, e: &KafkaError, secrets: &[String]) -> ConnectorError {
    ConnectorError::Io(scrub(&format!("{what}: {e}"), secrets))
}

impl KafkaOptions {
    /// Parse and check a table's options against its schema. Error messages never hold
    /// a secret option's value.
    pub(crate) fn parse(options: &BTreeMap<String, String>, schema: &Schema) -> Result<Self> {
        let secrets = secret_values(options);
        Self::parse_inner(options, schema, secrets.clone()).map_err(|e| scrub_error(e, &secrets))
    }

    fn parse_inner(
        options: &BTreeMap<String, String>,
        schema: &Schema,
        secrets: Vec<String>,
    ) -> Result<Self> {
        check_keys(
            "kafka",
            options,
            KAFKA_KEYS,
            &[PROPERTIES, METADATA_PREFIX, DEAD_LETTER_PROPERTIES],
        )?;
        let topics = match (options.get("topic"), options.get("topic-pattern")) {
            (Some(_), Some(_)) => {
                return Err(ConnectorError::Config(
                    "options 'topic' and 'topic-pattern' exclude each other".into(),
                ))
            }
            (None, None) => {
                return Err(ConnectorError::Config(
                    "missing required option 'topic' (or 'topic-pattern')".into(),
                ))
            }
            (Some(t), None) => {
                let names: Vec<String> = t
                    .split(';')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if names.is_empty() {
                    return Err(ConnectorError::Config("option 'topic' is empty".into()));
                }
                if let Some(bad) = names.iter().find(|n| !valid_topic_name(n)) {
                    return Err(ConnectorError::Config(format!(
                        "option 'topic': '{bad}' is not a valid topic name (letters, digits, '.', '_' and '-', at most 249)"
                    )));
                }
                let mut seen = names.clone();
                seen.sort();
                seen.dedup();
                if seen.len() != names.len() {
                    return Err(ConnectorError::Config(
                        "option 'topic' names a topic twice".into(),
                    ));
                }
                Topics::Names(names)
            }
            (None, Some(p)) => {
                Topics::Pattern(regex::Regex::new(&format!("^(?:{p})$")).map_err(|e| {
                    ConnectorError::Config(format!("option 'topic-pattern' is invalid: {e}"))
                })?)
            }
        };
        let properties: BTreeMap<String, String> = options
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(PROPERTIES)
                    .map(|k| (k.to_string(), v.clone()))
            })
            .collect();
        if properties
            .get("bootstrap.servers")
            .is_none_or(|v| v.trim().is_empty())
        {
            return Err(ConnectorError::Config(
                "missing required option 'properties.bootstrap.servers'".into(),
            ));
        }
        if let Some(v) = properties.get("enable.auto.commit") {
            if !v.trim().eq_ignore_ascii_case("false") {
                return Err(ConnectorError::Config(
                    "option 'properties.enable.auto.commit' must be 'false' (or absent): Sluice keeps Kafka offsets in its checkpoints and never commits them automatically".into(),
                ));
            }
        }
        if properties.contains_key("transactional.id") {
            return Err(ConnectorError::Config(
                "option 'properties.transactional.id' is not allowed: use 'sink.delivery-guarantee' = 'exactly-once' with 'sink.transactional-id-prefix'".into(),
            ));
        }
        // librdkafka checks every property name and value (messages are scrubbed by `parse`).
        let mut probe = ClientConfig::new();
        for (k, v) in &properties {
            probe.set(k, v);
        }
        probe.create_native_config().map_err(|e| {
            ConnectorError::Config(format!("a 'properties.*' option is invalid: {e}"))
        })?;
        let group_id = properties.get("group.id").cloned();

        required(options, "format")?;
        let format = match choice(options, "format", &["json", "csv", "raw"])?.as_deref() {
            Some("csv") => KafkaFormat::Csv,
            Some("raw") => KafkaFormat::Raw,
            _ => KafkaFormat::Json,
        };
        let delimiter = csv_delimiter(options)?;
        let null_literal = options.get("csv.null-literal").cloned().unwrap_or_default();
        crate::format::parse_on_error(options)?;

        let startup = match choice(
            options,
            "scan.startup.mode",
            &["earliest-offset", "latest-offset", "group-offsets", "timestamp"],
        )?
        .as_deref()
        {
            Some("latest-offset") => StartupMode::Latest,
            Some("group-offsets") => StartupMode::GroupOffsets,
            Some("timestamp") => match parsed::<i64>(options, "scan.startup.timestamp-millis")? {
                Some(ts) if ts >= 0 => StartupMode::Timestamp(ts),
                Some(_) => {
                    return Err(ConnectorError::Config(
                        "option 'scan.startup.timestamp-millis' must not be negative".into(),
                    ))
                }
                None => {
                    return Err(ConnectorError::Config(
                        "'scan.startup.mode' = 'timestamp' needs option 'scan.startup.timestamp-millis'".into(),
                    ))
                }
            },
            _ => StartupMode::Earliest,
        };
        if !matches!(startup, StartupMode::Timestamp(_))
            && options.contains_key("scan.startup.timestamp-millis")
        {
            return Err(ConnectorError::Config(
                "option 'scan.startup.timestamp-millis' needs 'scan.startup.mode' = 'timestamp'"
                    .into(),
            ));
        }
        if startup == StartupMode::GroupOffsets && group_id.is_none() {
            return Err(ConnectorError::Config(
                "'scan.startup.mode' = 'group-offsets' needs option 'properties.group.id'".into(),
            ));
        }
        let bounded = choice(
            options,
            "scan.bounded.mode",
            &["unbounded", "latest-offset"],
        )?
        .as_deref()
            == Some("latest-offset");
        let idle_timeout = match options.get("scan.watermark.idle-timeout") {
            None => std::time::Duration::ZERO,
            Some(v) => std::time::Duration::from_millis(
                sluice_expr::options::parse_duration_ms(v).map_err(|e| {
                    ConnectorError::Config(format!("option 'scan.watermark.idle-timeout': {e}"))
                })?,
            ),
        };

        // Columns: metadata or value.
        let mut columns = vec![ColumnKind::Value(0); schema.len()];
        for (k, v) in options {
            let Some(col) = k.strip_prefix(METADATA_PREFIX) else {
                continue;
            };
            let Some(i) = schema.index_of(col) else {
                return Err(ConnectorError::Config(format!(
                    "option '{k}' names no column of the table"
                )));
            };
            let Some(key) = MetaKey::parse(v) else {
                return Err(ConnectorError::Config(format!(
                    "METADATA column '{col}' (option '{k}'): unknown kafka metadata key '{v}' (valid: {})",
                    MetaKey::ALL
                        .iter()
                        .map(|(n, _)| format!("'{n}'"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            let ty = schema.fields.get(i).map(|f| f.ty);
            if ty != Some(key.ty()) {
                return Err(ConnectorError::Config(format!(
                    "METADATA column '{col}' (option '{k}'): kafka metadata '{}' is {}, the column is {}",
                    key.name(),
                    key.ty(),
                    ty.unwrap_or(SqlType::Null)
                )));
            }
            columns[i] = ColumnKind::Meta(key);
        }
        let mut value_columns = Vec::new();
        for (i, c) in columns.iter_mut().enumerate() {
            if let ColumnKind::Value(v) = c {
                *v = value_columns.len();
                value_columns.push(i);
            }
        }
        if format == KafkaFormat::Raw {
            let ok = value_columns.len() == 1
                && value_columns
                    .first()
                    .and_then(|&i| schema.fields.get(i))
                    .is_some_and(|f| f.ty == SqlType::Varchar);
            if !ok {
                return Err(ConnectorError::Config(format!(
                    "'format' = 'raw' needs exactly one value column of type VARCHAR (the table has {} value column{} besides METADATA columns)",
                    value_columns.len(),
                    if value_columns.len() == 1 { "" } else { "s" }
                )));
            }
        }

        // The message key: `sink.key.fields`, else the table's PRIMARY KEY.
        let mut key_columns = Vec::new();
        let key_source = match options.get("sink.key.fields") {
            Some(fields) => Some(("option 'sink.key.fields'", fields)),
            None => options
                .get(sluice_catalogs::PRIMARY_KEY_OPTION)
                .map(|fields| ("the PRIMARY KEY", fields)),
        };
        if let Some((what, fields)) = key_source {
            for name in fields.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                let Some(i) = schema.index_of(name) else {
                    return Err(ConnectorError::Config(format!(
                        "{what}: unknown column '{name}'"
                    )));
                };
                if key_columns.contains(&i) {
                    return Err(ConnectorError::Config(format!(
                        "{what} names column '{name}' twice"
                    )));
                }
                key_columns.push(i);
            }
            if key_columns.is_empty() {
                return Err(ConnectorError::Config(format!("{what} is empty")));
            }
            if format == KafkaFormat::Raw && key_columns.len() != 1 {
                return Err(ConnectorError::Config(format!(
                    "with 'format' = 'raw', {what} must name one column"
                )));
            }
        }

        let delivery = match choice(
            options,
            "sink.delivery-guarantee",
            &["at-least-once", "exactly-once"],
        )?
        .as_deref()
        {
            Some("exactly-once") => {
                let prefix = options
                    .get("sink.transactional-id-prefix")
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| {
                        ConnectorError::Config(
                            "'sink.delivery-guarantee' = 'exactly-once' needs option 'sink.transactional-id-prefix'".into(),
                        )
                    })?;
                Delivery::ExactlyOnce { prefix }
            }
            _ => Delivery::AtLeastOnce,
        };
        Ok(KafkaOptions {
            topics,
            properties,
            group_id,
            format,
            delimiter,
            null_literal,
            startup,
            bounded,
            idle_timeout,
            columns,
            value_columns,
            key_columns,
            delivery,
            secrets,
        })
    }

    /// A librdkafka configuration with the table's properties.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c.set_log_level(RDKafkaLogLevel::Warning);
        c
    }
}

/// Kafka topic names: 1 to 249 of `[a-zA-Z0-9._-]`.
fn valid_topic_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 249
        && n != "."
        && n != ".."
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// The librdkafka client context of a table's clients: errors and warnings go to
/// standard error, prefixed with the table and with secrets scrubbed.
#[derive(Clone, Debug)]
pub(crate) struct KafkaContext {
    table: String,
    secrets: Vec<String>,
}

impl KafkaContext {
    pub(crate) fn new(table: &str, secrets: &[String]) -> Self {
        KafkaContext {
            table: table.to_string(),
            secrets: secrets.to_vec(),
        }
    }
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        if matches!(
            level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
        ) {
            tracing::warn!(
                "kafka (table '{}'): {fac}: {}",
                self.table,
                scrub(log_message, &self.secrets)
            );
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if let Some(line) = self.error_line(&error, reason) {
            tracing::error!("{line}");
        }
    }
}

impl KafkaContext {
    /// The line [`ClientContext::error`] prints for `error`, secrets scrubbed; `None` for
    /// a partition's end, which is how sources learn it (`enable.partition.eof`) and not
    /// an error. librdkafka reports it two ways: as a consumer event
    /// (`KafkaError::PartitionEOF`) and, on the main queue of a consumer without a
    /// `group.id`, as a global error (`KafkaError::Global(PartitionEOF)`, which rdkafka
    /// prints as "Global error: PartitionEOF").
    fn error_line(&self, error: &KafkaError, reason: &str) -> Option<String> {
        if is_partition_eof(error) {
            return None;
        }
        Some(format!(
            "kafka (table '{}'): {}",
            self.table,
            scrub(&format!("{error}: {reason}"), &self.secrets)
        ))
    }
}

/// Whether `error` only says that a partition has no more messages (for now).
pub(crate) fn is_partition_eof(error: &KafkaError) -> bool {
    matches!(
        error,
        KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF)
    ) || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
}

/// The `kafka` connector.
#[derive(Clone, Copy, Debug, Default)]
pub struct KafkaConnector;

impl Connector for KafkaConnector {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn validate(
        &self,
        options: &BTreeMap<String, String>,
        schema: &Schema,
    ) -> Result<SourceCapabilities> {
        if schema.is_empty() {
            return Err(ConnectorError::Config(
                "a kafka table needs at least one column".into(),
            ));
        }
        let o = KafkaOptions::parse(options, schema)?;
        Ok(SourceCapabilities {
            filter_pushdown: true,
            projection_pushdown: true,
            bounded: o.bounded,
            sink: if o.key_columns.is_empty() {
                SinkKind::Append
            } else {
                SinkKind::Upsert(o.key_columns.clone())
            },
        })
    }

    fn create_source(
        &self,
        table: &TableDescriptor,
        projection: &[usize],
        filters: &[ScalarExpr],
        ctx: WorkerContext,
    ) -> Result<Box<dyn Source>> {
        let source: Box<dyn Source> = Box::new(source::KafkaSource::new(table, projection, ctx)?);
        Ok(crate::filter::with_filters(
            source, table, projection, filters,
        ))
    }

    fn create_sink(&self, table: &TableDescriptor, ctx: WorkerContext) -> Result<Box<dyn Sink>> {
        Ok(Box::new(sink::KafkaSink::new(table, ctx)?))
    }
}
