//! The exactly-once kafka sink's recovery: what closes the gap between a checkpoint's
//! record and the commit of its Kafka transaction.
//!
//! A checkpoint's record is written after every sink prepared its epoch and before
//! the sinks commit. A Kafka transaction does not survive its producer: when a worker
//! dies after the record but before `commit_transaction`, the next producer of the same
//! `transactional.id` aborts it, and the restored run starts reading after the epoch —
//! its messages would be lost. So each epoch's messages are also written ahead, beside
//! the record (`Sink::write_ahead`), and every transaction commits, atomically with its
//! messages, an **epoch marker**: the offset `epoch` of partition 0 of the sink's topic,
//! for the consumer group `<transactional.id>.sluice-epochs.<run token>`
//! (`send_offsets_to_transaction`, as Kafka Streams commits its input offsets; the token
//! is the sink's, new at each start, so a marker speaks only of its own run's epochs —
//! in the group id rather than in the offset's metadata, which some Kafka-protocol
//! brokers do not keep). A restore then, per transactional id of the record:
//! 1. `init_transactions` — the broker finishes (commits or aborts) whatever the dead
//!    producer left, and fences it;
//! 2. reads the marker with `read_committed` (stable offsets only);
//! 3. for each pending epoch, oldest first: the marker of the epoch's run is at or
//!    above it → committed, nothing to do; else → the write-ahead copy is sent again in
//!    a new transaction with that epoch's marker ([`decide`]).
//!
//! Each step is idempotent, so a crash during a restore is followed by the same
//! restore. librdkafka's mock cluster accepts `TxnOffsetCommit` but stores nothing and
//! does not isolate transactions: the protocol is verified against a real
//! Kafka-protocol broker (`docs/kafka-exactly-once.md`).

use super::sink::SinkContext;
use super::{kafka_error, KafkaContext, KafkaOptions, REQUEST_TIMEOUT};
use crate::{ConnectorError, PendingCommit, Result};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::Duration;

/// One encoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rec {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) timestamp: Option<i64>,
}

const HAS_KEY: u8 = 1;
const HAS_VALUE: u8 = 2;
const HAS_TIMESTAMP: u8 = 4;

/// Appends `rec` to a write-ahead copy: a flag byte, then each present part (the
/// timestamp as 8 bytes, key and value as a 4-byte length and the bytes; little endian).
pub(crate) fn encode(out: &mut Vec<u8>, rec: &Rec) {
    let flags = rec.key.as_ref().map_or(0, |_| HAS_KEY)
        | rec.value.as_ref().map_or(0, |_| HAS_VALUE)
        | rec.timestamp.map_or(0, |_| HAS_TIMESTAMP);
    out.push(flags);
    if let Some(t) = rec.timestamp {
        out.extend_from_slice(&t.to_le_bytes());
    }
    for part in [&rec.key, &rec.value].into_iter().flatten() {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
        out.extend_from_slice(part);
    }
}

/// The messages of a write-ahead copy, in order.
pub(crate) fn decode(bytes: &[u8]) -> Result<Vec<Rec>> {
    let bad = || ConnectorError::Internal("a kafka sink's write-ahead copy is truncated".into());
    let mut out = Vec::new();
    let mut rest = bytes;
    let take = |rest: &mut &[u8], n: usize| -> Result<Vec<u8>> {
        if rest.len() < n {
            return Err(bad());
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Ok(head.to_vec())
    };
    while let Some((&flags, tail)) = rest.split_first() {
        rest = tail;
        let timestamp = if flags & HAS_TIMESTAMP != 0 {
            let b: [u8; 8] = take(&mut rest, 8)?.try_into().map_err(|_| bad())?;
            Some(i64::from_le_bytes(b))
        } else {
            None
        };
        let part = |present: bool, rest: &mut &[u8]| -> Result<Option<Vec<u8>>> {
            if !present {
                return Ok(None);
            }
            let n: [u8; 4] = take(rest, 4)?.try_into().map_err(|_| bad())?;
            take(rest, u32::from_le_bytes(n) as usize).map(Some)
        };
        let key = part(flags & HAS_KEY != 0, &mut rest)?;
        let value = part(flags & HAS_VALUE != 0, &mut rest)?;
        out.push(Rec {
            key,
            value,
            timestamp,
        });
    }
    Ok(out)
}

/// The consumer group whose committed offset is the epoch marker of a transactional id
/// in the run of `token`.
pub(crate) fn marker_group(transactional_id: &str, token: &str) -> String {
    format!("{transactional_id}.sluice-epochs.{token}")
}

/// The marker committed with the transaction of `epoch`: offset `epoch` of partition 0
/// of `topic`.
pub(crate) fn marker_offsets(topic: &str, epoch: u64) -> Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::new();
    let offset = i64::try_from(epoch)
        .map_err(|_| ConnectorError::Internal(format!("epoch {epoch} is out of range")))?;
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .map_err(|e| ConnectorError::Internal(format!("epoch marker: {e}")))?;
    Ok(tpl)
}

/// What a restore does with one pending epoch of a transactional id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Its transaction committed: nothing.
    Committed,
    /// Its transaction was aborted (or never reached the broker): send its
    /// write-ahead copy again, with its marker.
    Resend,
}

/// A pending epoch, given the marker of its run (the newest epoch committed, if any):
/// committed if the marker is at this epoch or a later one (a run commits its
/// transactions in epoch order).
pub(crate) fn decide(marker: Option<u64>, epoch: u64) -> Action {
    match marker {
        Some(m) if m >= epoch => Action::Committed,
        _ => Action::Resend,
    }
}

/// The pending commit of one epoch of one worker (what `pending_commit` recorded).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Pending {
    pub(crate) transactional_id: String,
    pub(crate) epoch: u64,
    pub(crate) token: String,
}

/// A consumer that only names the marker group (never subscribes, never polls).
pub(crate) fn marker_consumer(
    opts: &KafkaOptions,
    table: &str,
    transactional_id: &str,
    token: &str,
) -> Result<BaseConsumer<KafkaContext>> {
    let mut config = opts.client_config();
    config
        .set("group.id", marker_group(transactional_id, token))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
    config
        .create_with_context(KafkaContext::new(table, &opts.secrets))
        .map_err(|e| kafka_error("cannot create a Kafka consumer", &e, &opts.secrets))
}

/// The marker group's metadata for `send_offsets_to_transaction`.
pub(crate) fn group_metadata(
    consumer: &BaseConsumer<KafkaContext>,
) -> Result<ConsumerGroupMetadata> {
    consumer.group_metadata().ok_or_else(|| {
        ConnectorError::Internal("the epoch marker's consumer has no group metadata".into())
    })
}

/// The marker of the consumer's group on `topic` (stable: waits for transactions that
/// are being completed), `None` when none was committed.
pub(crate) fn read_marker(
    consumer: &BaseConsumer<KafkaContext>,
    topic: &str,
    secrets: &[String],
) -> Result<Option<u64>> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let deadline = std::time::Instant::now() + REQUEST_TIMEOUT;
    let got = loop {
        match consumer.committed_offsets(tpl.clone(), REQUEST_TIMEOUT) {
            Ok(got) => break got,
            // The coordinator is still writing a transaction's markers.
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::debug!("reading an epoch marker: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(kafka_error("cannot read the epoch marker", &e, secrets)),
        }
    };
    Ok(got.find_partition(topic, 0).and_then(|e| match e.offset() {
        Offset::Offset(n) if n >= 0 => Some(n as u64),
        _ => None,
    }))
}

/// A restore: finishes the pending epochs of every transactional id in `pending`
/// (see the module's doc), writing to `topic` with `opts`' clients.
pub(crate) fn recover(
    opts: &KafkaOptions,
    table: &str,
    topic: &str,
    pending: &[PendingCommit],
) -> Result<()> {
    let bad = |v: &serde_json::Value| {
        ConnectorError::Internal(format!(
            "table '{table}': bad pending kafka commit in checkpoint: {v}"
        ))
    };
    // By transactional id, then run token (a record's pending epochs are of one run).
    type Epochs<'a> = Vec<(Pending, Option<&'a [u8]>)>;
    let mut by_id: BTreeMap<(String, String), Epochs<'_>> = BTreeMap::new();
    for p in pending {
        let parsed: Pending =
            serde_json::from_value(p.commit.clone()).map_err(|_| bad(&p.commit))?;
        by_id
            .entry((parsed.transactional_id.clone(), parsed.token.clone()))
            .or_default()
            .push((parsed, p.write_ahead.as_deref()));
    }
    for ((id, token), mut epochs) in by_id {
        epochs.sort_by_key(|(p, _)| p.epoch);
        let mut config = opts.client_config();
        config.set("transactional.id", &id);
        let producer: ThreadedProducer<SinkContext> = config
            .create_with_context(SinkContext::new(table, &opts.secrets))
            .map_err(|e| kafka_error("cannot create a Kafka producer", &e, &opts.secrets))?;
        // Finishes what the dead producer left (and fences it).
        producer
            .init_transactions(REQUEST_TIMEOUT)
            .map_err(|e| kafka_error("cannot initialize Kafka transactions", &e, &opts.secrets))?;
        let consumer = marker_consumer(opts, table, &id, &token)?;
        let mut marker = read_marker(&consumer, topic, &opts.secrets)?;
        for (p, wal) in epochs {
            let messages = match wal {
                Some(bytes) => decode(bytes)?,
                None => Vec::new(),
            };
            if messages.is_empty() || decide(marker, p.epoch) == Action::Committed {
                continue;
            }
            tracing::warn!(
                "table '{table}': the Kafka transaction of epoch {} ({id}) did not commit before the crash; sending its {} messages again from the checkpoint's write-ahead copy",
                p.epoch,
                messages.len()
            );
            let txn = |e: rdkafka::error::KafkaError| {
                kafka_error(
                    &format!("table '{table}': cannot resend epoch {}", p.epoch),
                    &e,
                    &opts.secrets,
                )
            };
            producer.begin_transaction().map_err(txn)?;
            for rec in &messages {
                send_blocking(&producer, topic, rec).map_err(txn)?;
            }
            producer
                .send_offsets_to_transaction(
                    &marker_offsets(topic, p.epoch)?,
                    &group_metadata(&consumer)?,
                    REQUEST_TIMEOUT,
                )
                .map_err(txn)?;
            producer.commit_transaction(REQUEST_TIMEOUT).map_err(txn)?;
            marker = Some(p.epoch);
        }
    }
    Ok(())
}

/// Sends one message, waiting while the producer's queue is full.
pub(crate) fn send_blocking(
    producer: &ThreadedProducer<SinkContext>,
    topic: &str,
    rec: &Rec,
) -> std::result::Result<(), rdkafka::error::KafkaError> {
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;
    let mut record = BaseRecord::<[u8], [u8]>::to(topic);
    if let Some(k) = &rec.key {
        record = record.key(k.as_slice());
    }
    if let Some(v) = &rec.value {
        record = record.payload(v.as_slice());
    }
    if let Some(ts) = rec.timestamp {
        record = record.timestamp(ts);
    }
    let deadline = std::time::Instant::now() + REQUEST_TIMEOUT;
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r))
                if std::time::Instant::now() < deadline =>
            {
                record = r;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_ahead_copies_round_trip() {
        let recs = vec![
            Rec {
                key: Some(b"k".to_vec()),
                value: Some(b"{\"a\":1}".to_vec()),
                timestamp: Some(-5),
            },
            Rec {
                key: Some(Vec::new()),
                value: None,
                timestamp: None,
            },
            Rec {
                key: None,
                value: Some(vec![0, 255, 7]),
                timestamp: Some(i64::MAX),
            },
        ];
        let mut bytes = Vec::new();
        for r in &recs {
            encode(&mut bytes, r);
        }
        assert_eq!(decode(&bytes).unwrap(), recs);
        assert!(decode(&[]).unwrap().is_empty());
        for cut in 1..bytes.len() {
            // Every truncation is an error or a shorter prefix, never a wrong message.
            if let Ok(got) = decode(&bytes[..cut]) {
                assert!(recs.starts_with(&got), "cut at {cut}");
                assert!(got.len() < recs.len());
            }
        }
    }

    #[test]
    fn a_pending_epoch_is_committed_when_its_runs_marker_is_at_or_after_it() {
        assert_eq!(decide(None, 1), Action::Resend);
        assert_eq!(decide(Some(4), 4), Action::Committed);
        assert_eq!(decide(Some(5), 4), Action::Committed);
        assert_eq!(decide(Some(3), 4), Action::Resend);
        // Another run's marker is another group's: never read for this run's epochs.
        assert_ne!(marker_group("p-0", "run-a"), marker_group("p-0", "run-b"));
    }
}
