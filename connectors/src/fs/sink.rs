//! The filesystem sink: two-phase writes of CSV, JSON-lines or Parquet part files.
//!
//! Rows are encoded into an in-memory part; when it reaches the rolling size (or at
//! `prepare_commit`) it is put under `<path>/_staging/` (invisible to readers, which
//! skip `_` names). `prepare_commit(epoch)` assigns the staged parts their final
//! names `part-<worker>-<epoch>-<seq>-<token>.<ext>`; `commit(epoch)` renames them into
//! place and removes `_staging/` once it is empty. The token is unique to the sink object
//! (the `token` field): a bounded job always commits epoch 1, so without it a
//! second run would replace some files of the first and leave the others (a re-run at
//! fewer workers counted old and new rows together).
//! A partitioned table (`PARTITIONED BY`) keeps one open part per partition directory
//! (`dt=…/hr=…/`, see [`super::partition`]) and leaves the partition columns out of
//! the files.
//!
//! `INSERT OVERWRITE` (option `sink.overwrite`): the commit of epoch 1, the job's first
//! (a bounded run's only one; a job restored from a checkpoint continues at a later
//! epoch and never overwrites again), also deletes the data files that were there
//! before. Which ones: an unpartitioned table's every data file under `path` (worker 0
//! deletes them, so an empty result empties the table); a partitioned table's files in
//! the partition directories the job writes, each by the workers writing it (Flink's
//! dynamic partition overwrite: other partitions are kept). The files to delete are
//! listed at `prepare_commit(1)`, before any part of the run is visible, and recorded
//! in the pending commit as one-element arrays `[path]` beside the `[staged, final]`
//! renames, so a restore finishes them. An object store has no atomic directory swap:
//! while the commit runs, a reader may see old and new files side by side.

use super::partition::Partitioning;
use super::{block_on, io, FileFormat, FsOptions, Location, ParquetCompression};
use crate::check_ctx;
use crate::format::csv::write_field;
use crate::values::{write_cell, TextStyle};
use crate::{ConnectorError, PendingCommit, Result, Sink, WorkerContext};
use arrow::array::{Array, ArrayRef, UInt32Array};
use arrow::datatypes::{Field as ArrowField, Schema as ArrowSchema, SchemaRef};
use arrow::record_batch::RecordBatch;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use sluice_catalogs::TableDescriptor;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The part being written.
enum Part {
    Text { buf: String, rows: usize },
    Parquet(Box<ArrowWriter<Vec<u8>>>),
}

/// One worker's filesystem sink.
pub(crate) struct FileSink {
    loc: Location,
    opts: FsOptions,
    worker: usize,
    /// The schema of the files (the data columns of a partitioned table).
    schema: SchemaRef,
    /// The table's partition columns (none: one directory).
    partitioning: Partitioning,
    /// Open parts per partition directory (`""` when unpartitioned), with when each was
    /// opened (time rolling).
    parts: BTreeMap<String, (Part, std::time::Instant)>,
    /// Staged parts not yet assigned to an epoch, with their partition directory.
    staged: Vec<(Path, String)>,
    /// Parts prepared per epoch: (staged path, final path).
    prepared: BTreeMap<u64, Vec<(Path, Path)>>,
    /// Final names already used per epoch (so a second prepare of an epoch continues).
    next_seq: BTreeMap<u64, usize>,
    /// `INSERT OVERWRITE`: the old data files the commit of an epoch deletes.
    deletes: BTreeMap<u64, Vec<Path>>,
    /// Counter for staged object names.
    staged_count: u64,
    /// Unique to this sink object (process, time, counter): staged names of different
    /// runs never collide, so a restore that finishes an old run's commit renames that
    /// run's part and never a later run's part of the same number.
    token: String,
}

impl FileSink {
    pub(crate) fn new(table: &TableDescriptor, ctx: WorkerContext) -> Result<FileSink> {
        check_ctx(ctx)?;
        let opts = FsOptions::parse(&table.options)?;
        let loc = Location::parse_with(&opts.path, &opts.storage)?;
        let partitioning = Partitioning::new(&opts.partition_columns, &table.schema)?;
        let schema = Arc::new(ArrowSchema::new(
            table
                .schema
                .fields
                .iter()
                .enumerate()
                .filter(|(i, _)| !partitioning.columns.contains(i))
                .map(|(_, f)| ArrowField::new(&f.name, f.ty.to_arrow(), true))
                .collect::<Vec<_>>(),
        ));
        Ok(FileSink {
            loc,
            opts,
            worker: ctx.worker,
            schema,
            partitioning,
            parts: BTreeMap::new(),
            staged: Vec::new(),
            prepared: BTreeMap::new(),
            next_seq: BTreeMap::new(),
            deletes: BTreeMap::new(),
            staged_count: 0,
            token: crate::unique_id(),
        })
    }

    fn new_part(&self) -> Result<Part> {
        match self.opts.format {
            FileFormat::Csv => {
                let mut buf = String::new();
                if self.opts.header {
                    for (i, f) in self.schema.fields().iter().enumerate() {
                        if i > 0 {
                            buf.push(self.opts.delimiter as char);
                        }
                        write_field(&mut buf, f.name(), self.opts.delimiter, "");
                    }
                    buf.push('\n');
                }
                Ok(Part::Text { buf, rows: 0 })
            }
            FileFormat::Json => Ok(Part::Text {
                buf: String::new(),
                rows: 0,
            }),
            FileFormat::Parquet => {
                let compression = match self.opts.compression {
                    ParquetCompression::Snappy => Compression::SNAPPY,
                    ParquetCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
                    ParquetCompression::Uncompressed => Compression::UNCOMPRESSED,
                };
                let props = WriterProperties::builder()
                    .set_compression(compression)
                    .build();
                let w = ArrowWriter::try_new(Vec::new(), self.schema.clone(), Some(props))
                    .map_err(|e| ConnectorError::Internal(format!("parquet writer: {e}")))?;
                Ok(Part::Parquet(Box::new(w)))
            }
        }
    }

    /// Encode rows into the text part.
    fn encode_text(&self, buf: &mut String, batch: &RecordBatch) {
        let names: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| serde_json::Value::from(f.name().as_str()).to_string())
            .collect();
        let mut cell = String::new();
        for row in 0..batch.num_rows() {
            match self.opts.format {
                FileFormat::Json => {
                    buf.push('{');
                    for (c, col) in batch.columns().iter().enumerate() {
                        if c > 0 {
                            buf.push(',');
                        }
                        buf.push_str(&names[c]);
                        buf.push(':');
                        if !write_cell(buf, col.as_ref(), row, TextStyle::Json) {
                            buf.push_str("null");
                        }
                    }
                    buf.push_str("}\n");
                }
                _ => {
                    for (c, col) in batch.columns().iter().enumerate() {
                        if c > 0 {
                            buf.push(self.opts.delimiter as char);
                        }
                        cell.clear();
                        if write_cell(&mut cell, col.as_ref(), row, TextStyle::Plain) {
                            write_field(buf, &cell, self.opts.delimiter, &self.opts.null_literal);
                        } else {
                            buf.push_str(&self.opts.null_literal);
                        }
                    }
                    buf.push('\n');
                }
            }
        }
    }

    /// Finishes the open part of partition directory `dir` (if it has rows) and puts it
    /// under `_staging/`.
    fn roll(&mut self, dir: &str) -> Result<()> {
        let bytes = match self.parts.remove(dir).map(|(p, _)| p) {
            None => return Ok(()),
            Some(Part::Text { rows: 0, .. }) => return Ok(()),
            Some(Part::Text { buf, .. }) => buf.into_bytes(),
            Some(Part::Parquet(w)) => {
                if w.flushed_row_groups().is_empty() && w.in_progress_rows() == 0 {
                    return Ok(());
                }
                w.into_inner()
                    .map_err(|e| ConnectorError::Internal(format!("parquet writer: {e}")))?
            }
        };
        let name = format!(
            "_staging/part-{}-{}-s{}.{}",
            self.worker,
            self.token,
            self.staged_count,
            self.opts.format.extension()
        );
        let path = self.loc.child(&name);
        block_on(self.loc.store.put(&path, PutPayload::from(bytes)))?.map_err(io)?;
        self.staged_count += 1;
        self.staged.push((path, dir.to_string()));
        Ok(())
    }

    /// Rolls every open part.
    fn roll_all(&mut self) -> Result<()> {
        let dirs: Vec<String> = self.parts.keys().cloned().collect();
        for d in dirs {
            self.roll(&d)?;
        }
        Ok(())
    }

    /// Appends `batch` (data columns only) to the open part of `dir`, then rolls it
    /// when it is big or old enough.
    fn write_part(&mut self, dir: &str, batch: &RecordBatch) -> Result<()> {
        if !self.parts.contains_key(dir) {
            let part = self.new_part()?;
            self.parts
                .insert(dir.to_string(), (part, std::time::Instant::now()));
        }
        let Some((mut part, opened)) = self.parts.remove(dir) else {
            return Ok(());
        };
        match &mut part {
            Part::Text { buf, rows } => {
                self.encode_text(buf, batch);
                *rows += batch.num_rows();
            }
            Part::Parquet(w) => {
                let b = RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec())
                    .map_err(|e| {
                        ConnectorError::Internal(format!("sink batch does not fit the table: {e}"))
                    })?;
                w.write(&b)
                    .map_err(|e| ConnectorError::Io(format!("parquet write: {e}")))?;
            }
        }
        let size = part_size(&part);
        self.parts.insert(dir.to_string(), (part, opened));
        crate::failpoint("sink.after_write");
        let too_old = self
            .opts
            .roll_interval_ms
            .is_some_and(|ms| opened.elapsed().as_millis() >= u128::from(ms));
        if too_old || size >= self.opts.roll_size {
            self.roll(dir)?;
        }
        Ok(())
    }
}

/// Bytes a part holds so far.
fn part_size(part: &Part) -> u64 {
    match part {
        Part::Text { buf, .. } => buf.len() as u64,
        Part::Parquet(w) => (w.bytes_written() + w.in_progress_size()) as u64,
    }
}

impl Sink for FileSink {
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let width = self.schema.fields().len() + self.partitioning.columns.len();
        if batch.num_columns() != width {
            return Err(ConnectorError::Internal(format!(
                "sink batch has {} columns, the table has {width}",
                batch.num_columns(),
            )));
        }
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if !self.partitioning.is_partitioned() {
            return self.write_part("", batch);
        }
        // Rows by partition directory (directories in order, rows in input order).
        let keys: Vec<&dyn Array> = self
            .partitioning
            .columns
            .iter()
            .map(|&i| batch.column(i).as_ref())
            .collect();
        let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        for row in 0..batch.num_rows() {
            groups
                .entry(self.partitioning.dir_of(&keys, row))
                .or_default()
                .push(row as u32);
        }
        let data: Vec<ArrayRef> = self
            .partitioning
            .data
            .iter()
            .map(|&i| batch.column(i).clone())
            .collect();
        for (dir, rows) in groups {
            let indices = UInt32Array::from(rows);
            let columns = data
                .iter()
                .map(|c| arrow::compute::take(c.as_ref(), &indices, None))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| ConnectorError::Internal(format!("partitioning a batch: {e}")))?;
            let part = RecordBatch::try_new(self.schema.clone(), columns)
                .map_err(|e| ConnectorError::Internal(format!("partitioning a batch: {e}")))?;
            self.write_part(&dir, &part)?;
        }
        Ok(())
    }

    fn prepare_commit(&mut self, epoch: u64) -> Result<()> {
        self.roll_all()?;
        if self.opts.overwrite && epoch == OVERWRITE_EPOCH {
            let old = self.files_to_overwrite()?;
            let list = self.deletes.entry(epoch).or_default();
            for p in old {
                if !list.contains(&p) {
                    list.push(p);
                }
            }
        }
        let seq = self.next_seq.entry(epoch).or_insert(0);
        let list = self.prepared.entry(epoch).or_default();
        for (staged, dir) in self.staged.drain(..) {
            let name = format!(
                "{dir}{}part-{}-{epoch}-{}-{}.{}",
                if dir.is_empty() { "" } else { "/" },
                self.worker,
                *seq,
                self.token,
                self.opts.format.extension()
            );
            *seq += 1;
            list.push((staged, self.loc.child_encoded(&name)));
        }
        Ok(())
    }

    fn commit(&mut self, epoch: u64) -> Result<()> {
        let mut epochs: Vec<u64> = self.prepared.range(..=epoch).map(|(e, _)| *e).collect();
        epochs.extend(self.deletes.range(..=epoch).map(|(e, _)| *e));
        epochs.sort_unstable();
        epochs.dedup();
        for e in epochs {
            let moves = self.prepared.get(&e).cloned().unwrap_or_default();
            for (from, to) in moves {
                self.move_into_place(&from, &to)?;
                // Some parts of the checkpoint's commit are visible, others not yet.
                crate::failpoint("commit.mid");
            }
            self.prepared.remove(&e);
            for old in self.deletes.get(&e).cloned().unwrap_or_default() {
                self.delete(&old)?;
            }
            self.deletes.remove(&e);
        }
        self.remove_empty_staging();
        Ok(())
    }

    /// `[[staged, final], …, [deleted], …]`: the renames `commit(epoch)` does, then the
    /// old files an `INSERT OVERWRITE` deletes.
    fn pending_commit(&self, epoch: u64) -> serde_json::Value {
        let moves = self.prepared.get(&epoch).map(Vec::as_slice).unwrap_or(&[]);
        let deletes = self.deletes.get(&epoch).map(Vec::as_slice).unwrap_or(&[]);
        serde_json::Value::Array(
            moves
                .iter()
                .map(|(from, to)| serde_json::json!([from.as_ref(), to.as_ref()]))
                .chain(deletes.iter().map(|p| serde_json::json!([p.as_ref()])))
                .collect(),
        )
    }

    /// Finishes the recorded renames and deletes (idempotent: a part already moved, by
    /// an earlier interrupted commit or by a concurrent one, is fine).
    fn recover(&mut self, pending: &[PendingCommit]) -> Result<()> {
        let bad = |v: &serde_json::Value| {
            ConnectorError::Internal(format!("bad pending commit in checkpoint: {v}"))
        };
        for p in pending.iter().map(|p| &p.commit) {
            if p.is_null() {
                continue;
            }
            let entries = p.as_array().ok_or_else(|| bad(p))?;
            for m in entries {
                match m.as_array().map(Vec::as_slice) {
                    Some([from, to]) => {
                        let (Some(from), Some(to)) = (from.as_str(), to.as_str()) else {
                            return Err(bad(m));
                        };
                        self.move_into_place(&Path::from(from), &Path::from(to))?;
                    }
                    Some([_]) => {} // a delete: after every rename, below
                    _ => return Err(bad(m)),
                }
            }
            for m in entries {
                if let Some([old]) = m.as_array().map(Vec::as_slice) {
                    self.delete(&Path::from(old.as_str().ok_or_else(|| bad(m))?))?;
                }
            }
        }
        self.remove_empty_staging();
        Ok(())
    }

    /// Everything under `_staging/` now (parts of epochs no complete checkpoint covers:
    /// their rows are read again), as `[path, …]`. A local store also lists the
    /// temporary files of writes a crash cut short (`<name>#<n>`), which object-store
    /// listings do not show.
    fn leftovers(&mut self) -> Result<serde_json::Value> {
        let staging = self.loc.child("_staging");
        let mut names: Vec<String> = if let Some(dir) = &self.loc.local {
            match std::fs::read_dir(dir.join("_staging")) {
                Ok(entries) => entries
                    .flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .map(|n| format!("{staging}/{n}"))
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(ConnectorError::Io(format!("listing _staging: {e}"))),
            }
        } else {
            let store = self.loc.store.clone();
            block_on(async move {
                use futures::TryStreamExt;
                store
                    .list(Some(&staging))
                    .map_ok(|o| o.location.to_string())
                    .try_collect::<Vec<_>>()
                    .await
            })?
            .or_else(|e| match e {
                object_store::Error::NotFound { .. } => Ok(Vec::new()),
                e => Err(e),
            })
            .map_err(io)?
        };
        names.sort();
        Ok(serde_json::Value::from(names))
    }

    /// Deletes what [`Sink::leftovers`] listed (gone already: fine).
    fn abort_leftovers(&mut self, leftovers: &serde_json::Value) -> Result<()> {
        for name in leftovers.as_array().into_iter().flatten() {
            let Some(name) = name.as_str() else {
                return Err(ConnectorError::Internal(format!(
                    "bad staged leftover: {name}"
                )));
            };
            match &self.loc.local {
                // A temporary file (`#`) is not an object the store can name.
                Some(dir) => {
                    let file = name.rsplit('/').next().unwrap_or(name);
                    match std::fs::remove_file(dir.join("_staging").join(file)) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => {
                            return Err(ConnectorError::Io(format!("cleaning _staging: {e}")))
                        }
                    }
                }
                None => self.delete(&Path::from(name))?,
            }
        }
        self.remove_empty_staging();
        Ok(())
    }
}

/// The epoch whose commit an `INSERT OVERWRITE` sink replaces the old files at: the
/// first of the job (checkpoint epochs count from 1; a bounded run commits only 1).
const OVERWRITE_EPOCH: u64 = 1;

impl FileSink {
    /// `INSERT OVERWRITE`: the data files (not `_`/`.` names) this worker's commit of
    /// the first epoch deletes: all of an unpartitioned table's (worker 0), or those in
    /// the partition directories this worker has parts for. Called at prepare time,
    /// before any part of the run is visible.
    fn files_to_overwrite(&self) -> Result<Vec<Path>> {
        let dirs: Vec<Path> = if self.partitioning.is_partitioned() {
            let mut d: Vec<Path> = self
                .staged
                .iter()
                .map(|(_, dir)| self.loc.child_encoded(dir))
                .collect();
            d.sort();
            d.dedup();
            d
        } else if self.worker == 0 {
            vec![self.loc.root.clone()]
        } else {
            Vec::new()
        };
        if dirs.is_empty() {
            return Ok(Vec::new());
        }
        if self.loc.local.as_ref().is_some_and(|l| !l.exists()) {
            return Ok(Vec::new());
        }
        let files = block_on(self.loc.list_files())??;
        Ok(files
            .into_iter()
            .filter(|f| dirs.iter().any(|d| f.prefix_matches(d)))
            .collect())
    }

    /// Deletes an old file (already gone is fine).
    fn delete(&self, path: &Path) -> Result<()> {
        let store = &self.loc.store;
        block_on(async {
            match store.delete(path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            }
        })?
        .map_err(io)
    }

    /// Removes the local `_staging/` directory when nothing is staged in it (a
    /// directory still in use by another worker is not empty and stays). Object stores
    /// have no directories.
    fn remove_empty_staging(&self) {
        if let Some(dir) = &self.loc.local {
            // Not empty, or already gone: both fine.
            let _ = std::fs::remove_dir(dir.join("_staging"));
        }
    }

    /// Renames a staged part to its final name; a part already moved (by an earlier,
    /// interrupted commit) is fine.
    fn move_into_place(&self, from: &Path, to: &Path) -> Result<()> {
        let store = &self.loc.store;
        let res = block_on(async {
            match store.rename(from, to).await {
                Ok(()) => Ok(()),
                Err(object_store::Error::NotFound { .. }) if store.head(to).await.is_ok() => Ok(()),
                Err(e) => Err(e),
            }
        })?;
        res.map_err(io)
    }
}
