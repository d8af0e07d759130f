//! The filesystem source: one worker's share of a table's files.

use super::csv::{Field as CsvField, Reader as CsvReader, MAX_RECORD_BYTES};
use super::{block_on, check_ctx, check_projection, io, FileFormat, FsOptions, Location};
use crate::values::{parse_json, parse_text, ColumnBuilder, Value};
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
use sluice_catalogs::{SqlType, TableDescriptor};
use std::sync::Arc;

/// Raw bytes kept in a [`BadRecord`] at most.
const MAX_RAW_BYTES: usize = 64 << 10;

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

/// Reads this worker's files (file `i` of the sorted list goes to worker `i % workers`).
pub(crate) struct FileSource {
    loc: Location,
    opts: FsOptions,
    table: String,
    /// This worker's files, in order.
    files: Vec<Path>,
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
        let files = all
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
            projection: projection.to_vec(),
            names: fields.iter().map(|f| f.name.clone()).collect(),
            types: fields.iter().map(|f| f.ty).collect(),
            width: table.schema.len(),
            out_schema,
            file: 0,
            open: None,
        })
    }

    fn open_file(&self, max_rows: usize, skip: usize) -> Result<Open> {
        let path = &self.files[self.file];
        let data =
            block_on(async { self.loc.store.get(path).await?.bytes().await })?.map_err(io)?;
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
        let path = &self.files[self.file];
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
            position: format!("{}:{line}", self.loc.display(&self.files[self.file])),
            error,
            raw: raw[..raw.len().min(MAX_RAW_BYTES)].to_vec(),
        }
    }

    /// Decode text records from the open file into `builders` until `max_rows` rows
    /// or bad records; returns whether the file is exhausted.
    fn read_text(
        &self,
        data: &Bytes,
        pos: &mut usize,
        line: &mut usize,
        builders: &mut [ColumnBuilder],
        rows: &mut usize,
        bad: &mut Vec<BadRecord>,
        max_rows: usize,
    ) -> bool {
        match self.opts.format {
            FileFormat::Csv => self.read_csv(data, pos, line, builders, rows, bad, max_rows),
            _ => self.read_json(data, pos, line, builders, rows, bad, max_rows),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read_csv(
        &self,
        data: &Bytes,
        pos: &mut usize,
        line: &mut usize,
        builders: &mut [ColumnBuilder],
        rows: &mut usize,
        bad: &mut Vec<BadRecord>,
        max_rows: usize,
    ) -> bool {
        let mut reader = CsvReader::resume(data, *pos, *line, self.opts.delimiter);
        let mut fields: Vec<CsvField<'_>> = Vec::new();
        let mut values: Vec<Value<'_>> = Vec::with_capacity(self.projection.len());
        let null = self.opts.null_literal.as_bytes();
        let mut done = false;
        while *rows < max_rows && bad.len() < max_rows {
            let at_start = reader.position() == 0;
            let Some(meta) = reader.next_record(&mut fields) else {
                done = true;
                break;
            };
            if let Some(e) = meta.error {
                bad.push(self.bad(meta.line, e, meta.raw));
                continue;
            }
            if at_start && self.opts.header {
                continue;
            }
            if fields.len() != self.width {
                bad.push(self.bad(
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
                Some(e) => bad.push(self.bad(meta.line, e, meta.raw)),
                None => {
                    for (b, v) in builders.iter_mut().zip(&values) {
                        b.append(v);
                    }
                    *rows += 1;
                }
            }
        }
        *pos = reader.position();
        *line = reader.line();
        done
    }

    #[allow(clippy::too_many_arguments)]
    fn read_json(
        &self,
        data: &Bytes,
        pos: &mut usize,
        line: &mut usize,
        builders: &mut [ColumnBuilder],
        rows: &mut usize,
        bad: &mut Vec<BadRecord>,
        max_rows: usize,
    ) -> bool {
        let mut values: Vec<Value<'_>> = Vec::with_capacity(self.projection.len());
        while *rows < max_rows && bad.len() < max_rows {
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
                bad.push(self.bad(
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
                    bad.push(self.bad(this_line, format!("invalid UTF-8: {e}"), raw));
                    continue;
                }
            };
            let obj = match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Object(o)) => o,
                Ok(_) => {
                    bad.push(self.bad(this_line, "expected a JSON object".into(), raw));
                    continue;
                }
                Err(e) => {
                    bad.push(self.bad(this_line, format!("invalid JSON: {e}"), raw));
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
                match v.map(|v| parse_json(v, ty)) {
                    None => values.push(Value::Null),
                    Some(Ok(v)) => values.push(into_owned(v)),
                    Some(Err(e)) => {
                        error = Some(format!("column '{name}': {e}"));
                        break;
                    }
                }
            }
            match error {
                Some(e) => bad.push(self.bad(this_line, e, raw)),
                None => {
                    for (b, v) in builders.iter_mut().zip(&values) {
                        b.append(v);
                    }
                    *rows += 1;
                }
            }
        }
        *pos >= data.len()
    }
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
        let mut builders: Vec<ColumnBuilder> = self
            .types
            .iter()
            .map(|&t| ColumnBuilder::new(t, max_rows.min(8192)))
            .collect();
        let mut rows = 0usize;
        let mut bad = Vec::new();
        let mut parts: Vec<RecordBatch> = Vec::new();
        while rows < max_rows && bad.len() < max_rows {
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
                    let done = self.read_text(
                        &data,
                        &mut pos,
                        &mut line,
                        &mut builders,
                        &mut rows,
                        &mut bad,
                        max_rows,
                    );
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
                            self.loc.display(&self.files[self.file])
                        )))
                    }
                    Some(Ok(b)) => {
                        let n = b.num_rows();
                        parts.push(self.convert_parquet(&b)?);
                        rows += n;
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
        if rows == 0 && bad.is_empty() && self.file >= self.files.len() {
            return Ok(SourcePoll::Finished);
        }
        let batch = match parts.pop() {
            Some(b) => b,
            None => {
                let cols = builders.iter_mut().map(ColumnBuilder::finish).collect();
                make_batch(&self.out_schema, cols, rows)?
            }
        };
        Ok(SourcePoll::Batch { batch, bad })
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
                        self.loc.display(&self.files[file])
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
