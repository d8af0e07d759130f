//! [`DeadLetterWriter`]: where `'format.on-error' = 'dead-letter'` puts bad records.

use super::{block_on, io, Location};
use crate::{BadRecord, ConnectorError, Result};
use base64::Engine as _;
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use std::collections::BTreeMap;

/// Appends [`BadRecord`]s as JSON lines
/// `{"table","position","error","raw","raw_base64"}` (`raw` is the record as lossy
/// UTF-8, `raw_base64` its exact bytes) to files
/// `<dir>/dead-letter-<worker>-<seq>.json` under a directory or URL. A
/// [`DeadLetterWriter::flush`] (re)writes the current file with everything written to
/// it so far (object stores cannot append); once a file passes 8 MiB the next flush
/// starts a new one. Numbering continues after the files this worker already has
/// there, so an earlier run's files are never overwritten.
pub struct DeadLetterWriter {
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

impl DeadLetterWriter {
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
            loc,
            worker,
            buf: String::new(),
            flushed: 0,
            seq,
        })
    }

    /// Buffer one bad record of `table`.
    pub fn write(&mut self, table: &str, record: &BadRecord) -> Result<()> {
        let line = serde_json::json!({
            "table": table,
            "position": record.position,
            "error": record.error,
            "raw": String::from_utf8_lossy(&record.raw),
            "raw_base64": base64::engine::general_purpose::STANDARD.encode(&record.raw),
        });
        let text = serde_json::to_string(&line)
            .map_err(|e| ConnectorError::Internal(format!("dead letter encoding: {e}")))?;
        self.buf.push_str(&text);
        self.buf.push('\n');
        Ok(())
    }

    /// Make everything written so far durable.
    pub fn flush(&mut self) -> Result<()> {
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
