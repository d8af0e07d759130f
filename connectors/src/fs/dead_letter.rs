//! [`DeadLetterWriter`]: where `'format.on-error' = 'dead-letter'` puts bad records —
//! JSON-lines files under `'dead-letter.path'`, or messages on `'dead-letter.topic'`.

use super::{block_on, io, Location};
use crate::{BadRecord, ConnectorError, Result};
use base64::Engine as _;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::BTreeMap;

/// Writes [`BadRecord`]s as JSON objects `{"table","position","error","raw","raw_base64"}`
/// (`raw` is the record as lossy UTF-8, `raw_base64` its exact bytes).
///
/// * **Files** (`'dead-letter.path'`): JSON lines in `<dir>/dead-letter-<worker>-<seq>.json`
///   under a directory or URL. A [`DeadLetterWriter::flush`] (re)writes the current file
///   with everything written to it so far (object stores cannot append); once a file
///   passes 8 MiB the next flush starts a new one. Numbering continues after the files
///   this worker already has there, so an earlier run's files are never overwritten.
/// * **Kafka** (`'dead-letter.topic'`): one message per bad record, keyed by its
///   position, produced idempotently; `flush` waits until every message is acknowledged.
///   The producer uses `'dead-letter.properties.*'`, or else the table's own
///   `'properties.*'` (a Kafka table's dead letters go to its own cluster).
pub struct DeadLetterWriter {
    target: Target,
}

enum Target {
    Files(FileDeadLetters),
    Kafka(crate::kafka::KafkaDeadLetters),
}

struct FileDeadLetters {
    loc: Location,
    worker: usize,
    /// The current file's whole content.
    buf: String,
    /// How much of `buf` is already in the store.
    flushed: usize,
    seq: u64,
}

/// Size after which a dead-letter file is closed and the next one begun.
const SEGMENT_BYTES: usize = 8 << 20;

/// One bad record of `table` as the JSON object dead letters carry.
pub(crate) fn dead_letter_json(table: &str, record: &BadRecord) -> Result<String> {
    let line = serde_json::json!({
        "table": table,
        "position": record.position,
        "error": record.error,
        "raw": String::from_utf8_lossy(&record.raw),
        "raw_base64": base64::engine::general_purpose::STANDARD.encode(&record.raw),
    });
    serde_json::to_string(&line)
        .map_err(|e| ConnectorError::Internal(format!("dead letter encoding: {e}")))
}

impl DeadLetterWriter {
    /// The dead-letter target of `table` for `worker`: its `'dead-letter.topic'` or its
    /// `'dead-letter.path'`; `None` when it has neither.
    pub fn for_table(
        table: &sluice_catalogs::TableDescriptor,
        worker: usize,
    ) -> Result<Option<Self>> {
        if let Some(topic) = table.options.get("dead-letter.topic") {
            let kafka = crate::kafka::KafkaDeadLetters::open(topic, &table.options)?;
            return Ok(Some(DeadLetterWriter {
                target: Target::Kafka(kafka),
            }));
        }
        match table.options.get("dead-letter.path") {
            Some(path) => Ok(Some(DeadLetterWriter::open_with(
                path,
                &super::storage_options(&table.options),
                worker,
            )?)),
            None => Ok(None),
        }
    }

    /// A writer for `worker` into the directory `path_or_url` (created on first flush).
    pub fn open(path_or_url: &str, worker: usize) -> Result<Self> {
        DeadLetterWriter::open_with(path_or_url, &BTreeMap::new(), worker)
    }

    /// [`DeadLetterWriter::open`] with the table's storage options (`s3.*`, `gs.*`,
    /// `az.*`: see [`storage_options`](crate::fs::storage_options)).
    pub fn open_with(
        path_or_url: &str,
        storage: &BTreeMap<String, String>,
        worker: usize,
    ) -> Result<Self> {
        let loc = Location::parse_with(path_or_url, storage)?;
        let prefix = format!("dead-letter-{worker}-");
        let listed: std::result::Result<Vec<_>, _> =
            block_on(loc.store.list(Some(&loc.root)).try_collect::<Vec<_>>())?;
        let metas = match listed {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(io(e)),
        };
        let seq = metas
            .iter()
            .filter_map(|m| {
                let name = m.location.filename()?;
                name.strip_prefix(&prefix)?
                    .strip_suffix(".json")?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .map_or(0, |s| s + 1);
        Ok(DeadLetterWriter {
            target: Target::Files(FileDeadLetters {
                loc,
                worker,
                buf: String::new(),
                flushed: 0,
                seq,
            }),
        })
    }

    /// Buffer one bad record of `table`.
    pub fn write(&mut self, table: &str, record: &BadRecord) -> Result<()> {
        let text = dead_letter_json(table, record)?;
        match &mut self.target {
            Target::Files(f) => {
                f.buf.push_str(&text);
                f.buf.push('\n');
                Ok(())
            }
            Target::Kafka(k) => k.send(&record.position, &text),
        }
    }

    /// Make everything written so far durable.
    pub fn flush(&mut self) -> Result<()> {
        match &mut self.target {
            Target::Files(f) => f.flush(),
            Target::Kafka(k) => k.flush(),
        }
    }
}

impl FileDeadLetters {
    fn flush(&mut self) -> Result<()> {
        if self.buf.len() == self.flushed {
            return Ok(());
        }
        let path = self
            .loc
            .child(&format!("dead-letter-{}-{:06}.json", self.worker, self.seq));
        let body = PutPayload::from(bytes::Bytes::copy_from_slice(self.buf.as_bytes()));
        block_on(self.loc.store.put(&path, body))?.map_err(io)?;
        self.flushed = self.buf.len();
        if self.buf.len() >= SEGMENT_BYTES {
            self.buf.clear();
            self.flushed = 0;
            self.seq += 1;
        }
        Ok(())
    }
}
