//! The filesystem source: one worker's share of a table's files.

use super::csv::{Field as CsvField, Reader as CsvReader, MAX_RECORD_BYTES};
use super::{block_on, check_ctx, check_projection, io, FileFormat, FsOptions, Location};
use crate::values::{parse_decimal, parse_json, parse_text, ColumnBuilder, Value};
use crate::{BadRecord, ConnectorError, Result, Source, SourcePoll, WorkerContext};
use arrow::array::{new_null_array, ArrayRef};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Schema as ArrowSchema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use bytes::Bytes;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::file::metadata::{FooterTail, ParquetMetaDataReader};
use serde_json::value::RawValue;
use sluice_catalogs::{SqlType, TableDescriptor};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Raw bytes kept in a [`BadRecord`] at most.
const MAX_RAW_BYTES: usize = 64 << 10;

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

/// An open file being read.
enum Open {
    /// CSV or JSON: the whole object, the byte offset and line number to continue at.
    Text {
        data: Bytes,
        pos: usize,
        line: usize,
    },
    /// Parquet: a reader and the number of rows read so far.
    Parquet {
        reader: ParquetRecordBatchReader,
        rows: usize,
    },
}

/// A unit of work: a whole file, or one row group of a Parquet file.
#[derive(Clone, Debug)]
struct Split {
    path: Path,
    row_group: Option<usize>,
}

/// The number of row groups of a Parquet object, from its footer.
async fn parquet_row_groups(loc: &Location, path: &Path) -> Result<usize> {
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
    let md = ParquetMetaDataReader::decode_metadata(&buf).map_err(|e| bad(e.to_string()))?;
    Ok(md.num_row_groups())
}

/// Reads this worker's splits. Splits are the files in sorted order (for Parquet,
/// each row group of each file); split `i` goes to worker `i % workers`.
pub(crate) struct FileSource {
    loc: Location,
    opts: FsOptions,
    table: String,
    /// This worker's splits, in order.
    files: Vec<Split>,
    /// The last object read (row groups of one file are often read one after another).
    cache: Option<(Path, Bytes)>,
    /// Projected column indices in the table schema.
    projection: Vec<usize>,
    /// Projected column names and types.
    names: Vec<String>,
    types: Vec<SqlType>,
    /// Number of columns of the table (CSV records must have this many fields).
    width: usize,
    out_schema: SchemaRef,
    /// Index into `files` of the file being (or next to be) read.
    file: usize,
    open: Option<Open>,
}

impl FileSource {
    pub(crate) fn new(
        table: &TableDescriptor,
        projection: &[usize],
        ctx: WorkerContext,
    ) -> Result<FileSource> {
        check_ctx(ctx)?;
        check_projection(table, projection)?;
        let opts = FsOptions::parse(&table.options)?;
        let loc = Location::parse(&opts.path)?;
        let all = block_on(loc.list_files())??;
        let mut splits = Vec::new();
        for path in all {
            if opts.format == FileFormat::Parquet {
                let groups = block_on(parquet_row_groups(&loc, &path))??;
                splits.extend((0..groups).map(|g| Split {
                    path: path.clone(),
                    row_group: Some(g),
                }));
            } else {
                splits.push(Split {
                    path,
                    row_group: None,
                });
            }
        }
        let files = splits
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % ctx.workers == ctx.worker)
            .map(|(_, p)| p)
            .collect();
        let fields: Vec<_> = projection
            .iter()
            .map(|&i| table.schema.fields[i].clone())
            .collect();
        let out_schema = Arc::new(ArrowSchema::new(
            fields
                .iter()
                .map(|f| arrow::datatypes::Field::new(&f.name, f.ty.to_arrow(), true))
                .collect::<Vec<_>>(),
        ));
        Ok(FileSource {
            loc,
            opts,
            table: table.name.clone(),
            files,
            cache: None,
            projection: projection.to_vec(),
            names: fields.iter().map(|f| f.name.clone()).collect(),
            types: fields.iter().map(|f| f.ty).collect(),
            width: table.schema.len(),
            out_schema,
            file: 0,
            open: None,
        })
    }

    fn open_file(&mut self, max_rows: usize, skip: usize) -> Result<Open> {
        let split = self.files[self.file].clone();
        let path = &split.path;
        let data = match &self.cache {
            Some((p, data)) if p == path => data.clone(),
            _ => {
                let data = block_on(async { self.loc.store.get(path).await?.bytes().await })?
                    .map_err(io)?;
                self.cache = Some((path.clone(), data.clone()));
                data
            }
        };
        match self.opts.format {
            FileFormat::Csv | FileFormat::Json => Ok(Open::Text {
                data,
                pos: 0,
                line: 1,
            }),
            FileFormat::Parquet => {
                let fmt = |e: parquet::errors::ParquetError| {
                    ConnectorError::Format(format!(
                        "cannot read Parquet file {}: {e}",
                        self.loc.display(path)
                    ))
                };
                let builder = ParquetRecordBatchReaderBuilder::try_new(data).map_err(fmt)?;
                let file_schema = builder.schema().clone();
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
                let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
                let builder = match split.row_group {
                    Some(g) => builder.with_row_groups(vec![g]),
                    None => builder,
                };
                let reader = builder
                    .with_projection(mask)
                    .with_batch_size(max_rows.max(1))
                    .with_offset(skip)
                    .build()
                    .map_err(fmt)?;
                Ok(Open::Parquet { reader, rows: skip })
            }
        }
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
    fn read_text(&self, data: &Bytes, pos: &mut usize, line: &mut usize, acc: &mut Acc) -> bool {
        match self.opts.format {
            FileFormat::Csv => self.read_csv(data, pos, line, acc),
            _ => self.read_json(data, pos, line, acc),
        }
    }

    fn read_csv(&self, data: &Bytes, pos: &mut usize, line: &mut usize, acc: &mut Acc) -> bool {
        let mut reader = CsvReader::resume(data, *pos, *line, self.opts.delimiter);
        let mut fields: Vec<CsvField<'_>> = Vec::new();
        let mut values: Vec<Value<'_>> = Vec::with_capacity(self.projection.len());
        let null = self.opts.null_literal.as_bytes();
        let mut done = false;
        while !acc.full() {
            let at_start = reader.position() == 0;
            let Some(meta) = reader.next_record(&mut fields) else {
                done = true;
                break;
            };
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
                let parsed = std::str::from_utf8(&f.bytes)
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
        *pos = reader.position();
        *line = reader.line();
        done
    }

    fn read_json(&self, data: &Bytes, pos: &mut usize, line: &mut usize, acc: &mut Acc) -> bool {
        let mut values: Vec<Value<'_>> = Vec::with_capacity(self.projection.len());
        while !acc.full() {
            if *pos >= data.len() {
                return true;
            }
            let rest = &data[*pos..];
            let (len, next) = match memchr_newline(rest) {
                Some(i) => (i, i + 1),
                None => (rest.len(), rest.len()),
            };
            let mut raw = &rest[..len];
            if raw.last() == Some(&b'\r') {
                raw = &raw[..raw.len() - 1];
            }
            let this_line = *line;
            *pos += next;
            *line += 1;
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
        *pos >= data.len()
    }
}

/// A JSON object with its values left as JSON text.
type RawObject<'a> = BTreeMap<Cow<'a, str>, &'a RawValue>;

/// Decode one JSON value (as text) for a column of `ty`. DECIMAL numbers are read
/// from their text, so no precision is lost through `f64`.
fn decode_raw(raw: &str, ty: SqlType) -> std::result::Result<Value<'static>, String> {
    if let SqlType::Decimal { precision, scale } = ty {
        if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return parse_decimal(raw, precision, scale)
                .map(Value::Decimal)
                .map_err(|e| format!("{raw} as {ty}: {e}"));
        }
    }
    let v: serde_json::Value =
        serde_json::from_str(raw).map_err(|e| format!("invalid JSON: {e}"))?;
    parse_json(&v, ty).map(into_owned)
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn into_owned(v: Value<'_>) -> Value<'static> {
    match v {
        Value::Null => Value::Null,
        Value::Bool(b) => Value::Bool(b),
        Value::Int(i) => Value::Int(i),
        Value::Float(f) => Value::Float(f),
        Value::Decimal(d) => Value::Decimal(d),
        Value::Str(s) => Value::Str(std::borrow::Cow::Owned(s.into_owned())),
    }
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

/// A batch of `cols` with `rows` rows (also when there are no columns).
pub(crate) fn make_batch(
    schema: &SchemaRef,
    cols: Vec<ArrayRef>,
    rows: usize,
) -> Result<RecordBatch> {
    RecordBatch::try_new_with_options(
        schema.clone(),
        cols,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| ConnectorError::Internal(format!("cannot build a batch: {e}")))
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

impl Source for FileSource {
    fn poll(&mut self, max_rows: usize) -> Result<SourcePoll> {
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
        while !acc.full() {
            if self.file >= self.files.len() {
                break;
            }
            let open = match self.open.take() {
                Some(o) => o,
                None => self.open_file(max_rows, 0)?,
            };
            match open {
                Open::Text {
                    data,
                    mut pos,
                    mut line,
                } => {
                    let done = self.read_text(&data, &mut pos, &mut line, &mut acc);
                    if done {
                        self.file += 1;
                    } else {
                        self.open = Some(Open::Text { data, pos, line });
                    }
                }
                Open::Parquet {
                    mut reader,
                    rows: read,
                } => match reader.next() {
                    None => self.file += 1,
                    Some(Err(e)) => {
                        return Err(ConnectorError::Format(format!(
                            "cannot read Parquet file {}: {e}",
                            self.loc.display(&self.files[self.file].path)
                        )))
                    }
                    Some(Ok(b)) => {
                        let n = b.num_rows();
                        parts.push(self.convert_parquet(&b)?);
                        acc.rows += n;
                        self.open = Some(Open::Parquet {
                            reader,
                            rows: read + n,
                        });
                        // A Parquet batch has up to max_rows rows: hand it out alone.
                        break;
                    }
                },
            }
        }
        if self.file >= self.files.len() {
            self.cache = None;
        }
        if acc.rows == 0 && acc.bad.is_empty() && self.file >= self.files.len() {
            return Ok(SourcePoll::Finished);
        }
        let batch = match parts.pop() {
            Some(b) => b,
            None => {
                let cols = acc.builders.iter_mut().map(ColumnBuilder::finish).collect();
                make_batch(&self.out_schema, cols, acc.rows)?
            }
        };
        Ok(SourcePoll::Batch {
            batch,
            bad: acc.bad,
        })
    }

    fn position(&self) -> serde_json::Value {
        let offset = match &self.open {
            None => 0,
            Some(Open::Text { pos, .. }) => *pos,
            Some(Open::Parquet { rows, .. }) => *rows,
        };
        let line = match &self.open {
            Some(Open::Text { line, .. }) => *line,
            _ => 1,
        };
        serde_json::json!({ "file": self.file, "offset": offset, "line": line })
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
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
            Open::Text { data, .. } => {
                if offset > data.len() {
                    return Err(ConnectorError::Internal(format!(
                        "position {offset} is past the end of {}",
                        self.loc.display(&self.files[file].path)
                    )));
                }
                Open::Text {
                    data,
                    pos: offset,
                    line,
                }
            }
            parquet => parquet,
        });
        Ok(())
    }
}
