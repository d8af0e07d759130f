//! The filesystem source: one worker's share of a table's files.

use super::partition::Partitioning;
use super::{block_on, io, no_panic, FileFormat, FsOptions, Location};
use crate::format::csv::{Field as CsvField, Reader as CsvReader, MAX_RECORD_BYTES, UNTERMINATED};
use crate::format::json::{decode_raw, into_owned, RawObject};
use crate::format::{make_batch, MAX_RAW_BYTES};
use crate::values::{parse_text, ColumnBuilder, Value};
use crate::{check_ctx, check_projection};
use crate::{BadRecord, ConnectorError, Result, Source, SourcePoll, WorkerContext};
use arrow::array::{new_null_array, ArrayRef};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Schema as ArrowSchema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Buf;
use bytes::Bytes;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::{FooterTail, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::reader::{ChunkReader, Length};
use sluice_catalogs::{SqlType, TableDescriptor};
use sluice_expr::eval::Evaluator;
use sluice_expr::{Datum, ScalarExpr};
use std::ops::Range;
use std::sync::Arc;

/// What one poll has decoded so far.
struct Acc {
    builders: Vec<ColumnBuilder>,
    rows: usize,
    bad: Vec<BadRecord>,
    max_rows: usize,
}

impl Acc {
    /// Enough rows (or bad records) for one poll.
    fn full(&self) -> bool {
        self.rows >= self.max_rows || self.bad.len() >= self.max_rows
    }
}

/// Bytes of a text file are fetched this many at a time.
const CHUNK_BYTES: usize = 8 << 20;

/// Where reading a text file stands.
struct TextState {
    /// A window of the file, starting at file offset `base`.
    buf: Bytes,
    base: u64,
    /// Offset in `buf` of the next record, and the line it starts on.
    pos: usize,
    line: usize,
    /// The file's size.
    size: u64,
    /// Dropping the rest of an over-long record up to the next line break.
    skipping: bool,
}

impl TextState {
    /// Whether `buf` reaches the end of the file.
    fn eof(&self) -> bool {
        self.base + self.buf.len() as u64 >= self.size
    }
}

/// How far a read of a text buffer got.
enum Step {
    /// The poll has enough rows.
    Full,
    /// The buffer ends inside a record: fetch more.
    NeedMore,
    /// The file is exhausted.
    Eof,
}

/// An open file being read.
enum Open {
    /// CSV or JSON, read a window at a time.
    Text(TextState),
    /// Parquet: a reader, the number of rows handed out so far, and the rest of a
    /// batch larger than a poll's `max_rows`.
    Parquet {
        reader: ParquetRecordBatchReader,
        rows: usize,
        leftover: Option<RecordBatch>,
    },
}

/// A unit of work: a whole file, or one row group of a Parquet file.
#[derive(Clone, Debug)]
pub(crate) struct Split {
    path: Path,
    /// For Parquet: the file's metadata, size and the row group.
    parquet: Option<ParquetSplit>,
    /// A partitioned table: the file's partition values (from its directories).
    partition: Vec<Value<'static>>,
}

/// One row group of a Parquet file.
#[derive(Clone, Debug)]
struct ParquetSplit {
    meta: Arc<ParquetMetaData>,
    size: u64,
    row_group: usize,
}

/// The column chunks of one row group, fetched, as a [`ChunkReader`].
struct Chunks {
    size: u64,
    /// (file offset, bytes), one per fetched column chunk.
    parts: Vec<(u64, Bytes)>,
}

impl Chunks {
    fn slice(&self, start: u64, len: Option<usize>) -> parquet::errors::Result<Bytes> {
        for (s, b) in &self.parts {
            if start < *s {
                continue;
            }
            let off = (start - s) as usize;
            match len {
                None if off < b.len() => return Ok(b.slice(off..)),
                Some(l) if off.checked_add(l).is_some_and(|e| e <= b.len()) => {
                    return Ok(b.slice(off..off + l))
                }
                _ => {}
            }
        }
        Err(parquet::errors::ParquetError::General(format!(
            "bytes {start}+{} of the file were not fetched",
            len.unwrap_or(0)
        )))
    }
}

impl Length for Chunks {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for Chunks {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, Some(length))
    }
}

/// The metadata (from the footer) and size of a Parquet object.
async fn parquet_metadata(loc: &Location, path: &Path) -> Result<(Arc<ParquetMetaData>, u64)> {
    let bad = |e: String| {
        ConnectorError::Format(format!(
            "cannot read Parquet file {}: {e}",
            loc.display(path)
        ))
    };
    let size = loc.store.head(path).await.map_err(io)?.size;
    if size < 8 {
        return Err(bad("too small to be a Parquet file".into()));
    }
    let tail = loc
        .store
        .get_range(path, size - 8..size)
        .await
        .map_err(io)?;
    let footer = FooterTail::try_from(tail.as_ref()).map_err(|e| bad(e.to_string()))?;
    let len = footer.metadata_length() as u64;
    if len + 8 > size {
        return Err(bad("footer length is larger than the file".into()));
    }
    let buf = loc
        .store
        .get_range(path, size - 8 - len..size - 8)
        .await
        .map_err(io)?;
    let md = no_panic(&loc.display(path), || {
        ParquetMetaDataReader::decode_metadata(&buf).map_err(|e| bad(e.to_string()))
    })?;
    Ok((Arc::new(md), size))
}

/// Reads this worker's splits. Splits are the files in sorted order (for Parquet,
/// each row group of each file); split `i` goes to worker `i % workers`.
pub(crate) struct FileSource {
    loc: Location,
    opts: FsOptions,
    table: String,
    /// This worker's splits, in order.
    pub(crate) files: Vec<Split>,
    /// How many bytes of a text file are fetched at a time.
    pub(crate) chunk: usize,
    /// Projected data columns: their positions in the files' columns (CSV fields).
    projection: Vec<usize>,
    /// Projected column names and types.
    names: Vec<String>,
    types: Vec<SqlType>,
    /// Number of columns of the table (CSV records must have this many fields).
    width: usize,
    out_schema: SchemaRef,
    /// A partitioned table: where each projected partition column goes in the output
    /// (`(output position, partition column)`), and the output schema with them.
    partition_slots: Vec<(usize, usize)>,
    full_schema: SchemaRef,
    full_types: Vec<SqlType>,
    /// Index into `files` of the file being (or next to be) read.
    file: usize,
    open: Option<Open>,
    /// What turns a listed path into this worker's splits.
    planner: SplitPlanner,
    /// `'source.monitor-interval'`: the directory is listed again this often and new
    /// files are read (an unbounded source).
    continuous: Option<Continuous>,
}

/// Turns listed files into splits (partition values, pruning, Parquet row groups).
struct SplitPlanner {
    partitioning: Partitioning,
    partition_slots: Vec<(usize, usize)>,
    partition_filters: Vec<Evaluator>,
    pruner: super::prune::Pruner,
    projected: usize,
    root_parts: usize,
}

/// The state of a continuous (directory-monitoring) source.
struct Continuous {
    interval: std::time::Duration,
    last_listed: std::time::Instant,
    /// Paths ever listed here (their splits are queued or not this worker's).
    known: std::collections::BTreeSet<String>,
    /// Splits read before the restore (by any worker): kept in every position, so
    /// positions merged over another worker count still have them.
    done_before: std::collections::BTreeSet<String>,
    worker: WorkerContext,
}

/// A split's identity in positions: its path, and `#<row group>` for Parquet.
fn split_id(s: &Split) -> String {
    match &s.parquet {
        Some(p) => format!("{}#{}", s.path, p.row_group),
        None => s.path.to_string(),
    }
}

/// Which worker reads a split of a continuous source: a hash of its id (stable when
/// files are added, unlike positions in a listing).
fn owner(id: &str, workers: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % workers.max(1) as u64) as usize
}

impl SplitPlanner {
    /// The splits of `path` (none when partition pruning excludes it).
    fn splits(&self, loc: &Location, opts: &FsOptions, path: Path) -> Result<Vec<Split>> {
        let partition = if self.partitioning.is_partitioned() {
            let segments: Vec<String> = path
                .parts()
                .skip(self.root_parts)
                .map(|p| p.as_ref().to_string())
                .collect();
            let values = self.partitioning.values_of(
                segments
                    .iter()
                    .take(segments.len().saturating_sub(1))
                    .map(String::as_str),
                &loc.display(&path),
            )?;
            if !self.partition_filters.is_empty() {
                let mut row = vec![Datum::Null; self.projected];
                for (out, k) in &self.partition_slots {
                    row[*out] = to_datum(&values[*k], self.partitioning.types[*k]);
                }
                if !self
                    .partition_filters
                    .iter()
                    .all(|f| !matches!(f.eval(&row), Ok(Datum::Bool(false) | Datum::Null)))
                {
                    return Ok(Vec::new());
                }
            }
            values
        } else {
            Vec::new()
        };
        if opts.format != FileFormat::Parquet {
            return Ok(vec![Split {
                path,
                parquet: None,
                partition,
            }]);
        }
        let (meta, size) = block_on(parquet_metadata(loc, &path))??;
        Ok((0..meta.num_row_groups())
            .filter(|&g| self.pruner.may_match(&meta, g))
            .map(|g| Split {
                path: path.clone(),
                parquet: Some(ParquetSplit {
                    meta: meta.clone(),
                    size,
                    row_group: g,
                }),
                partition: partition.clone(),
            })
            .collect())
    }
}

impl FileSource {
    /// This worker's share of `table`'s splits. Parquet row groups that `filters`
    /// (pushed-down predicates over the projected columns) provably exclude are
    /// dropped before splits are dealt out (see [`super::prune`]).
    pub(crate) fn new(
        table: &TableDescriptor,
        projection: &[usize],
        filters: &[ScalarExpr],
        ctx: WorkerContext,
    ) -> Result<FileSource> {
        check_ctx(ctx)?;
        check_projection(table, projection)?;
        let opts = FsOptions::parse(&table.options)?;
        let loc = Location::parse_with(&opts.path, &opts.storage)?;
        let partitioning = Partitioning::new(&opts.partition_columns, &table.schema)?;
        let all = match block_on(loc.list_files())? {
            Ok(all) => all,
            // A monitored directory may appear later.
            Err(ConnectorError::Io(_)) if opts.monitor_interval_ms.is_some() => Vec::new(),
            Err(e) => return Err(e),
        };
        let listed: std::collections::BTreeSet<String> =
            all.iter().map(|p| p.to_string()).collect();
        let all_names: Vec<String> = projection
            .iter()
            .filter_map(|&i| table.schema.fields.get(i))
            .map(|f| f.name.clone())
            .collect();
        let all_types: Vec<SqlType> = projection
            .iter()
            .filter_map(|&i| table.schema.fields.get(i))
            .map(|f| f.ty)
            .collect();
        // Projected partition columns come from the directories, the others from the
        // files (whose columns are the table's data columns).
        let mut partition_slots = Vec::new();
        let mut data_projection = Vec::new();
        let mut data_fields = Vec::new();
        for (out, &c) in projection.iter().enumerate() {
            match partitioning.columns.iter().position(|&p| p == c) {
                Some(k) => partition_slots.push((out, k)),
                None => {
                    let file_pos = partitioning.data.iter().position(|&d| d == c).unwrap_or(c);
                    data_projection.push(file_pos);
                    data_fields.push(table.schema.fields[c].clone());
                }
            }
        }
        let data_names: Vec<String> = data_fields.iter().map(|f| f.name.clone()).collect();
        let data_types: Vec<SqlType> = data_fields.iter().map(|f| f.ty).collect();
        let pruner = super::prune::Pruner::new(filters, &all_names, &all_types);
        // Pushed-down conjuncts over partition columns only decide whole files.
        let partition_filters: Vec<Evaluator> = filters
            .iter()
            .filter(|f| {
                let cols = f.columns();
                !partitioning.columns.is_empty()
                    && !cols.is_empty()
                    && cols
                        .iter()
                        .all(|c| partition_slots.iter().any(|(out, _)| out == c))
            })
            .map(|f| Evaluator::new(f, &all_types))
            .collect();
        let planner = SplitPlanner {
            partitioning,
            partition_slots: partition_slots.clone(),
            partition_filters,
            pruner,
            projected: projection.len(),
            root_parts: loc.root.parts().count(),
        };
        let mut splits = Vec::new();
        for path in all {
            splits.extend(planner.splits(&loc, &opts, path)?);
        }
        let continuous = opts.monitor_interval_ms.map(|ms| Continuous {
            interval: std::time::Duration::from_millis(ms),
            last_listed: std::time::Instant::now(),
            known: listed,
            done_before: Default::default(),
            worker: ctx,
        });
        let files = match &continuous {
            // Continuous: by a hash of the split (new files do not move old ones).
            Some(_) => splits
                .into_iter()
                .filter(|s| owner(&split_id(s), ctx.workers) == ctx.worker)
                .collect(),
            None => splits
                .into_iter()
                .enumerate()
                .filter(|(i, _)| i % ctx.workers == ctx.worker)
                .map(|(_, p)| p)
                .collect(),
        };
        let arrow_schema = |names: &[String], types: &[SqlType]| {
            Arc::new(ArrowSchema::new(
                names
                    .iter()
                    .zip(types)
                    .map(|(n, t)| arrow::datatypes::Field::new(n, t.to_arrow(), true))
                    .collect::<Vec<_>>(),
            ))
        };
        Ok(FileSource {
            loc,
            opts,
            table: table.name.clone(),
            files,
            chunk: CHUNK_BYTES,
            projection: data_projection,
            out_schema: arrow_schema(&data_names, &data_types),
            full_schema: arrow_schema(&all_names, &all_types),
            full_types: all_types.clone(),
            names: data_names,
            types: data_types,
            width: planner.partitioning.data.len(),
            partition_slots,
            file: 0,
            open: None,
            planner,
            continuous,
        })
    }

    /// A batch of file `file`'s data columns with the projected partition columns
    /// inserted (constant over the batch).
    fn with_partition_columns(&self, batch: RecordBatch, file: usize) -> Result<RecordBatch> {
        if self.partition_slots.is_empty() {
            return Ok(batch);
        }
        let rows = batch.num_rows();
        let mut data = batch.columns().iter().cloned();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.full_schema.fields().len());
        for (out, &ty) in self.full_types.iter().enumerate() {
            match self.partition_slots.iter().find(|(o, _)| *o == out) {
                Some((_, k)) => {
                    let mut b = ColumnBuilder::new(ty, rows);
                    let v = self
                        .files
                        .get(file)
                        .and_then(|s| s.partition.get(*k))
                        .cloned()
                        .unwrap_or(Value::Null);
                    for _ in 0..rows {
                        b.append(&v);
                    }
                    columns.push(b.finish());
                }
                None => columns.push(data.next().ok_or_else(|| {
                    ConnectorError::Internal("partitioned batch lacks a data column".into())
                })?),
            }
        }
        make_batch(&self.full_schema, columns, rows)
    }

    fn open_file(&mut self, max_rows: usize, skip: usize) -> Result<Open> {
        let split = self.files[self.file].clone();
        let path = &split.path;
        let Some(pq) = &split.parquet else {
            // Text: `skip` is a byte offset.
            let size = block_on(self.loc.store.head(path))?.map_err(io)?.size;
            let base = (skip as u64).min(size);
            let buf = self.fetch(path, base, size.min(base + self.chunk as u64))?;
            return Ok(Open::Text(TextState {
                buf,
                base,
                pos: 0,
                line: 1,
                size,
                skipping: false,
            }));
        };
        let fmt = |e: parquet::errors::ParquetError| {
            ConnectorError::Format(format!(
                "cannot read Parquet file {}: {e}",
                self.loc.display(path)
            ))
        };
        let arrow_md = ArrowReaderMetadata::try_new(pq.meta.clone(), ArrowReaderOptions::new())
            .map_err(fmt)?;
        let file_schema = arrow_md.schema().clone();
        let mut roots = Vec::new();
        for name in &self.names {
            let idx = find_field(&file_schema, name).ok_or_else(|| {
                ConnectorError::Format(format!(
                    "Parquet file {} has no column '{name}' (table '{}'; it has: {})",
                    self.loc.display(path),
                    self.table,
                    file_schema
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            roots.push(idx);
        }
        let mask = ProjectionMask::roots(pq.meta.file_metadata().schema_descr(), roots);
        // Fetch only the projected column chunks of this row group.
        let ranges: Vec<Range<u64>> = pq
            .meta
            .row_group(pq.row_group)
            .columns()
            .iter()
            .enumerate()
            .filter(|(i, _)| mask.leaf_included(*i))
            .map(|(_, c)| {
                let (start, len) = c.byte_range();
                start..start.saturating_add(len)
            })
            .collect();
        if ranges.iter().any(|r| r.end > pq.size) {
            return Err(ConnectorError::Format(format!(
                "cannot read Parquet file {}: a column chunk lies past the end of the file",
                self.loc.display(path)
            )));
        }
        let parts = block_on(self.loc.store.get_ranges(path, &ranges))?.map_err(io)?;
        let chunks = Chunks {
            size: pq.size,
            parts: ranges.iter().map(|r| r.start).zip(parts).collect(),
        };
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, arrow_md)
            .with_row_groups(vec![pq.row_group])
            .with_projection(mask)
            .with_batch_size(max_rows.max(1))
            .with_offset(skip)
            .build()
            .map_err(fmt)?;
        Ok(Open::Parquet {
            reader,
            rows: skip,
            leftover: None,
        })
    }

    /// Bytes `start..end` of an object.
    fn fetch(&self, path: &Path, start: u64, end: u64) -> Result<Bytes> {
        if start >= end {
            return Ok(Bytes::new());
        }
        block_on(self.loc.store.get_range(path, start..end))?.map_err(io)
    }

    /// Keep the unread part of the window and append the next chunk of the file.
    fn refill(&self, st: &mut TextState) -> Result<()> {
        let path = self.files[self.file].path.clone();
        let keep = st.buf.slice(st.pos..);
        let start = st.base + st.buf.len() as u64;
        // Grow at least geometrically, so a long record costs O(n log n) copying.
        let want = if st.skipping {
            self.chunk.max(MAX_RECORD_BYTES)
        } else {
            self.chunk.max(keep.len())
        };
        let end = st.size.min(start + want as u64);
        let more = self.fetch(&path, start, end)?;
        if more.is_empty() {
            // The object shrank since it was listed: treat what we have as the end.
            st.size = start;
        }
        let mut v = Vec::with_capacity(keep.len() + more.len());
        v.extend_from_slice(&keep);
        v.extend_from_slice(&more);
        st.base += st.pos as u64;
        st.buf = Bytes::from(v);
        st.pos = 0;
        Ok(())
    }

    /// Convert a Parquet batch (columns of the file's types, in file order) to the
    /// projected table columns.
    fn convert_parquet(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let path = &self.files[self.file].path;
        let schema = batch.schema();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(self.names.len());
        for (name, ty) in self.names.iter().zip(&self.types) {
            let idx = find_field(&schema, name).ok_or_else(|| {
                ConnectorError::Internal(format!("projected column '{name}' missing"))
            })?;
            let col = batch.column(idx);
            cols.push(convert_column(col, *ty).map_err(|e| {
                ConnectorError::Format(format!(
                    "Parquet file {}, column '{name}': {e}",
                    self.loc.display(path)
                ))
            })?);
        }
        make_batch(&self.out_schema, cols, batch.num_rows())
    }

    fn bad(&self, line: usize, error: String, raw: &[u8]) -> BadRecord {
        BadRecord {
            position: format!("{}:{line}", self.loc.display(&self.files[self.file].path)),
            error,
            raw: raw[..raw.len().min(MAX_RAW_BYTES)].to_vec(),
        }
    }

    /// Decode text records from the open file into `builders` until `max_rows` rows
    /// or bad records; returns whether the file is exhausted.
    fn read_text(&self, st: &mut TextState, acc: &mut Acc) -> Step {
        match self.opts.format {
            FileFormat::Csv => self.read_csv(st, acc),
            _ => self.read_json(st, acc),
        }
    }

    /// In skipping mode, drop bytes up to and including the next line break.
    /// Returns what to do when the buffer ran out first.
    fn skip_rest_of_line(st: &mut TextState) -> Option<Step> {
        if !st.skipping {
            return None;
        }
        match memchr_newline(&st.buf[st.pos..]) {
            Some(i) => {
                st.pos += i + 1;
                st.line += 1;
                st.skipping = false;
                None
            }
            None => {
                st.pos = st.buf.len();
                Some(if st.eof() { Step::Eof } else { Step::NeedMore })
            }
        }
    }

    fn read_csv(&self, st: &mut TextState, acc: &mut Acc) -> Step {
        if let Some(step) = Self::skip_rest_of_line(st) {
            return step;
        }
        let data = st.buf.clone();
        let eof = st.eof();
        // The buffer's text is checked for UTF-8 once (the longest valid prefix): a field
        // inside it is then a sub-slice (`sub_str`); only fields past it, or unescaped
        // into a copy, are checked one by one.
        let text: &str = match std::str::from_utf8(&data[st.pos..]) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&data[st.pos..st.pos + e.valid_up_to()]).unwrap_or(""),
        };
        let mut reader = CsvReader::resume(&data, st.pos, st.line, self.opts.delimiter);
        let mut fields: Vec<CsvField<'_>> = Vec::new();
        let mut values: Vec<Value<'_>> = Vec::with_capacity(self.projection.len());
        let null = self.opts.null_literal.as_bytes();
        let mut step = Step::Full;
        while !acc.full() {
            let (p0, l0) = (reader.position(), reader.line());
            let at_start = st.base + p0 as u64 == 0;
            let Some(meta) = reader.next_record(&mut fields) else {
                step = if eof { Step::Eof } else { Step::NeedMore };
                break;
            };
            if !eof && reader.position() == data.len() {
                // The record may go on past the buffer.
                if data.len() - p0 > MAX_RECORD_BYTES && memchr_newline(&data[p0..]).is_some() {
                    // A quoted field over several lines past the limit: an unterminated
                    // quote, most likely. One bad record (its first line), then on at
                    // the next line rather than past everything the quote took.
                    let raw = reader.resync(p0, l0);
                    acc.bad.push(self.bad(
                        l0,
                        format!(
                            "record is larger than the limit of {MAX_RECORD_BYTES} bytes \
                             (an unterminated quote?); reading resumes at the next line"
                        ),
                        raw,
                    ));
                    continue;
                }
                if data.len() - p0 > MAX_RECORD_BYTES {
                    acc.bad.push(self.bad(
                        l0,
                        format!("record is larger than the limit of {MAX_RECORD_BYTES} bytes"),
                        meta.raw,
                    ));
                    st.pos = data.len();
                    st.line = reader.line();
                    st.skipping = true;
                } else {
                    st.pos = p0;
                    st.line = l0;
                }
                return Step::NeedMore;
            }
            if meta.error.as_deref() == Some(UNTERMINATED) {
                // At the end of the file: the quote took every later line. Report the
                // record's first line and read on from the next.
                let raw = reader.resync(p0, l0);
                let e = format!("{UNTERMINATED}; reading resumes at the next line");
                acc.bad.push(self.bad(l0, e, raw));
                continue;
            }
            if let Some(e) = meta.error {
                acc.bad.push(self.bad(meta.line, e, meta.raw));
                continue;
            }
            if at_start && self.opts.header {
                continue;
            }
            if fields.len() != self.width {
                acc.bad.push(self.bad(
                    meta.line,
                    format!("expected {} fields, found {}", self.width, fields.len()),
                    meta.raw,
                ));
                continue;
            }
            values.clear();
            let mut error = None;
            for ((&c, name), &ty) in self.projection.iter().zip(&self.names).zip(&self.types) {
                let f = &fields[c];
                if !f.quoted
                    && (f.bytes.as_ref() == null || (f.bytes.is_empty() && ty != SqlType::Varchar))
                {
                    values.push(Value::Null);
                    continue;
                }
                let parsed = sub_str(text, &f.bytes)
                    .map_or_else(|| std::str::from_utf8(&f.bytes), Ok)
                    .map_err(|e| format!("invalid UTF-8: {e}"))
                    .and_then(|s| parse_text(s, ty))
                    .map(into_owned);
                match parsed {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        error = Some(format!("column '{name}': {e}"));
                        break;
                    }
                }
            }
            match error {
                Some(e) => acc.bad.push(self.bad(meta.line, e, meta.raw)),
                None => {
                    for (b, v) in acc.builders.iter_mut().zip(&values) {
                        b.append(v);
                    }
                    acc.rows += 1;
                }
            }
        }
        st.pos = reader.position();
        st.line = reader.line();
        step
    }

    fn read_json(&self, st: &mut TextState, acc: &mut Acc) -> Step {
        let data = st.buf.clone();
        let eof = st.eof();
        let mut values: Vec<Value<'_>> = Vec::with_capacity(self.projection.len());
        while !acc.full() {
            if let Some(step) = Self::skip_rest_of_line(st) {
                return step;
            }
            if st.pos >= data.len() {
                return if eof { Step::Eof } else { Step::NeedMore };
            }
            let rest = &data[st.pos..];
            let (len, next) = match memchr_newline(rest) {
                Some(i) => (i, i + 1),
                None if eof => (rest.len(), rest.len()),
                None if rest.len() > MAX_RECORD_BYTES => {
                    acc.bad.push(self.bad(
                        st.line,
                        format!("line is larger than the limit of {MAX_RECORD_BYTES} bytes"),
                        rest,
                    ));
                    st.pos = data.len();
                    st.skipping = true;
                    continue;
                }
                None => return Step::NeedMore,
            };
            let mut raw = &rest[..len];
            if raw.last() == Some(&b'\r') {
                raw = &raw[..raw.len() - 1];
            }
            let this_line = st.line;
            st.pos += next;
            st.line += 1;
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if raw.len() > MAX_RECORD_BYTES {
                acc.bad.push(self.bad(
                    this_line,
                    format!(
                        "line of {} bytes is larger than the limit of {MAX_RECORD_BYTES}",
                        raw.len()
                    ),
                    raw,
                ));
                continue;
            }
            let text = match std::str::from_utf8(raw) {
                Ok(t) => t,
                Err(e) => {
                    acc.bad
                        .push(self.bad(this_line, format!("invalid UTF-8: {e}"), raw));
                    continue;
                }
            };
            if !text.trim_start().starts_with('{') {
                acc.bad
                    .push(self.bad(this_line, "expected a JSON object".into(), raw));
                continue;
            }
            // Values stay unparsed text until a projected column asks for them.
            let obj = match serde_json::from_str::<RawObject<'_>>(text) {
                Ok(o) => o,
                Err(e) => {
                    acc.bad
                        .push(self.bad(this_line, format!("invalid JSON: {e}"), raw));
                    continue;
                }
            };
            values.clear();
            let mut error = None;
            for (name, &ty) in self.names.iter().zip(&self.types) {
                let v = obj.get(name.as_str()).or_else(|| {
                    obj.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case(name))
                        .map(|(_, v)| v)
                });
                match v.map(|v| decode_raw(v.get(), ty)) {
                    None => values.push(Value::Null),
                    Some(Ok(v)) => values.push(v),
                    Some(Err(e)) => {
                        error = Some(format!("column '{name}': {e}"));
                        break;
                    }
                }
            }
            match error {
                Some(e) => acc.bad.push(self.bad(this_line, e, raw)),
                None => {
                    for (b, v) in acc.builders.iter_mut().zip(&values) {
                        b.append(v);
                    }
                    acc.rows += 1;
                }
            }
        }
        if eof && st.pos >= data.len() {
            Step::Eof
        } else {
            Step::Full
        }
    }
}

/// A partition value as a SQL value of its column's type (for partition pruning).
fn to_datum(v: &Value<'_>, ty: SqlType) -> Datum {
    match (v, ty) {
        (Value::Null, _) => Datum::Null,
        (Value::Bool(b), _) => Datum::Bool(*b),
        (Value::Int(i), SqlType::Date) => Datum::Date(*i as i32),
        (Value::Int(i), SqlType::Timestamp) => Datum::Timestamp(*i),
        (Value::Int(i), SqlType::Interval) => Datum::Interval(*i),
        (Value::Int(i), _) => Datum::Int(*i),
        (Value::Float(x), _) => Datum::Float(sluice_expr::F64(*x)),
        (Value::Decimal(d), _) => Datum::Decimal(*d),
        (Value::Str(s), _) => Datum::Str(s.to_string()),
    }
}

/// `bytes` as a slice of `text` when it lies within it on character boundaries (it
/// is then valid UTF-8 without another check), else `None`.
fn sub_str<'t>(text: &'t str, bytes: &[u8]) -> Option<&'t str> {
    let start = (bytes.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    text.get(start..start.checked_add(bytes.len())?)
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

/// The index of the field named `name` (exact match first, then case-insensitive).
fn find_field(schema: &ArrowSchema, name: &str) -> Option<usize> {
    schema
        .fields()
        .iter()
        .position(|f| f.name() == name)
        .or_else(|| {
            schema
                .fields()
                .iter()
                .position(|f| f.name().eq_ignore_ascii_case(name))
        })
}

/// Cast a Parquet column to the Arrow type of a SQL type, refusing lossy conversions.
fn convert_column(col: &ArrayRef, ty: SqlType) -> std::result::Result<ArrayRef, String> {
    let target = ty.to_arrow();
    let from = col.data_type();
    if *from == target {
        return Ok(col.clone());
    }
    if *from == DataType::Null {
        return Ok(new_null_array(&target, col.len()));
    }
    use DataType as D;
    let allowed = match (&target, from) {
        (
            D::Int32,
            D::Int8 | D::Int16 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64,
        ) => true,
        (
            D::Int64,
            D::Int8 | D::Int16 | D::Int32 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64,
        ) => true,
        (
            D::Float64,
            D::Float16
            | D::Float32
            | D::Int8
            | D::Int16
            | D::Int32
            | D::UInt8
            | D::UInt16
            | D::UInt32,
        ) => true,
        (
            D::Decimal128(_, ts),
            D::Decimal128(_, fs) | D::Decimal64(_, fs) | D::Decimal32(_, fs),
        ) => ts >= fs,
        (D::Decimal128(_, _), D::Int8 | D::Int16 | D::Int32 | D::Int64) => true,
        (D::Utf8, D::LargeUtf8 | D::Utf8View) => true,
        (D::Date32, D::Date64) => true,
        (D::Timestamp(_, None), D::Timestamp(_, _)) => true,
        (D::Duration(_), D::Duration(_)) => true,
        _ => false,
    };
    if !allowed {
        return Err(format!("cannot read a column of type {from} as {ty}"));
    }
    let opts = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(col, &target, &opts)
        .map_err(|e| format!("cannot convert {from} to {ty} without loss: {e}"))
}

impl FileSource {
    /// Continuous: when every queued split is read and the interval has passed, lists
    /// the directory again and queues this worker's splits of files not seen before.
    fn discover(&mut self) -> Result<()> {
        let Some(c) = self.continuous.as_mut() else {
            return Ok(());
        };
        if self.file < self.files.len() || c.last_listed.elapsed() < c.interval {
            return Ok(());
        }
        c.last_listed = std::time::Instant::now();
        for done in self.files.drain(..) {
            c.done_before.insert(split_id(&done));
        }
        self.file = 0;
        self.open = None;
        let listed = match block_on(self.loc.list_files())? {
            Ok(l) => l,
            // The directory may not exist yet.
            Err(ConnectorError::Io(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        for path in listed {
            let p = path.to_string();
            if c.known.contains(&p) {
                continue;
            }
            c.known.insert(p);
            for split in self.planner.splits(&self.loc, &self.opts, path)? {
                let id = split_id(&split);
                if owner(&id, c.worker.workers) == c.worker.worker && !c.done_before.contains(&id) {
                    self.files.push(split);
                }
            }
        }
        Ok(())
    }

    /// Continuous: `{split id: "done" | {"offset", "line"}}` (keyed, so positions of
    /// any worker count merge).
    fn continuous_position(&self, offset: usize, line: usize) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if let Some(c) = &self.continuous {
            for id in &c.done_before {
                m.insert(id.clone(), "done".into());
            }
        }
        for s in self.files.iter().take(self.file) {
            m.insert(split_id(s), "done".into());
        }
        if let (Some(_), Some(s)) = (&self.open, self.files.get(self.file)) {
            m.insert(
                split_id(s),
                serde_json::json!({ "offset": offset, "line": line }),
            );
        }
        serde_json::Value::Object(m)
    }

    /// Continuous: skips the splits `position` says are read, resumes the one in
    /// progress, and remembers every id (for the positions this worker writes).
    fn continuous_seek(&mut self, position: &serde_json::Value) -> Result<()> {
        let map = position.as_object().ok_or_else(|| {
            ConnectorError::Internal(format!("bad filesystem source position {position}"))
        })?;
        let mut resume = None;
        let mut rest = Vec::new();
        for split in std::mem::take(&mut self.files) {
            match map.get(&split_id(&split)) {
                Some(serde_json::Value::String(d)) if d == "done" => {}
                Some(serde_json::Value::Object(o)) if resume.is_none() => {
                    let get = |k: &str| o.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
                    resume = Some((split, get("offset") as usize, get("line").max(1) as usize));
                }
                _ => rest.push(split),
            }
        }
        if let Some(c) = self.continuous.as_mut() {
            for (id, v) in map {
                if v.as_str() == Some("done") {
                    c.done_before.insert(id.clone());
                }
            }
        }
        self.file = 0;
        self.open = None;
        match resume {
            Some((split, offset, line)) => {
                self.files = std::iter::once(split).chain(rest).collect();
                if offset > 0 {
                    self.open = Some(match self.open_file(8192, offset)? {
                        Open::Text(mut st) => {
                            st.line = line;
                            Open::Text(st)
                        }
                        parquet => parquet,
                    });
                }
            }
            None => self.files = rest,
        }
        Ok(())
    }
}

impl Source for FileSource {
    fn poll(&mut self, max_rows: usize) -> Result<SourcePoll> {
        self.discover()?;
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
        let mut parts: Vec<RecordBatch> = Vec::new();
        // The file the batch's rows come from (one per batch for a partitioned table).
        let mut from = self.file;
        let partitioned = !self.partition_slots.is_empty();
        while !acc.full() {
            if self.file >= self.files.len() {
                break;
            }
            if partitioned && self.file != from && (acc.rows > 0 || !acc.bad.is_empty()) {
                break;
            }
            from = self.file;
            let open = match self.open.take() {
                Some(o) => o,
                None => self.open_file(max_rows, 0)?,
            };
            match open {
                Open::Text(mut st) => match self.read_text(&mut st, &mut acc) {
                    Step::Eof => self.file += 1,
                    Step::Full => self.open = Some(Open::Text(st)),
                    Step::NeedMore => {
                        self.refill(&mut st)?;
                        self.open = Some(Open::Text(st));
                    }
                },
                Open::Parquet {
                    mut reader,
                    rows: read,
                    leftover,
                } => match no_panic(&self.loc.display(&self.files[self.file].path), || {
                    Ok(leftover.map(Ok).or_else(|| reader.next()))
                })? {
                    None => self.file += 1,
                    Some(Err(e)) => {
                        return Err(ConnectorError::Format(format!(
                            "cannot read Parquet file {}: {e}",
                            self.loc.display(&self.files[self.file].path)
                        )))
                    }
                    Some(Ok(b)) => {
                        let take = b.num_rows().min(max_rows);
                        let rest =
                            (take < b.num_rows()).then(|| b.slice(take, b.num_rows() - take));
                        parts.push(self.convert_parquet(&b.slice(0, take))?);
                        acc.rows += take;
                        self.open = Some(Open::Parquet {
                            reader,
                            rows: read + take,
                            leftover: rest,
                        });
                        // A Parquet batch is handed out alone.
                        break;
                    }
                },
            }
        }
        if acc.rows == 0 && acc.bad.is_empty() && self.file >= self.files.len() {
            return Ok(if self.continuous.is_some() {
                SourcePoll::Idle
            } else {
                SourcePoll::Finished
            });
        }
        let batch = match parts.pop() {
            Some(b) => b,
            None => {
                let cols = acc.builders.iter_mut().map(ColumnBuilder::finish).collect();
                make_batch(&self.out_schema, cols, acc.rows)?
            }
        };
        let batch = self.with_partition_columns(batch, from)?;
        Ok(SourcePoll::Batch {
            batch,
            bad: acc.bad,
        })
    }

    fn position(&self) -> serde_json::Value {
        let offset = match &self.open {
            None => 0,
            Some(Open::Text(st)) => (st.base + st.pos as u64) as usize,
            Some(Open::Parquet { rows, .. }) => *rows,
        };
        let line = match &self.open {
            Some(Open::Text(st)) => st.line,
            _ => 1,
        };
        if self.continuous.is_some() {
            return self.continuous_position(offset, line);
        }
        serde_json::json!({ "file": self.file, "offset": offset, "line": line })
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        if self.continuous.is_some() {
            return self.continuous_seek(position);
        }
        let get = |k: &str| {
            position
                .get(k)
                .and_then(serde_json::Value::as_u64)
                .map(|v| v as usize)
                .ok_or_else(|| {
                    ConnectorError::Internal(format!("bad filesystem source position {position}"))
                })
        };
        let (file, offset, line) = (get("file")?, get("offset")?, get("line")?);
        self.file = file;
        self.open = None;
        if file >= self.files.len() || offset == 0 {
            return Ok(());
        }
        self.open = Some(match self.open_file(8192, offset)? {
            Open::Text(mut st) => {
                if offset as u64 > st.size {
                    return Err(ConnectorError::Internal(format!(
                        "position {offset} is past the end of {}",
                        self.loc.display(&self.files[file].path)
                    )));
                }
                st.line = line;
                Open::Text(st)
            }
            parquet => parquet,
        });
        Ok(())
    }
}

#[cfg(test)]
mod sub_str_tests {
    use super::sub_str;

    #[test]
    fn a_field_inside_the_checked_text_is_a_slice_of_it_else_none() {
        let data = "a,é,b\n".as_bytes();
        let text = std::str::from_utf8(&data[..4]).unwrap(); // "a,é" (é is 2 bytes)
        assert_eq!(sub_str(text, &data[2..4]), Some("é"));
        assert_eq!(sub_str(text, &data[0..1]), Some("a"));
        // Past the checked prefix, on a non-boundary, or in another buffer: not taken.
        assert_eq!(sub_str(text, &data[4..5]), None);
        assert_eq!(sub_str(text, &data[3..4]), None);
        assert_eq!(sub_str(text, b"a"), None);
    }
}
