//! Record formats shared by every connector that reads or writes bytes: the CSV
//! splitter and field writer ([`csv`]), JSON values decoded per column ([`json`]), the
//! malformed-record policy (`'format.on-error'`, [`OnError`]) and the Arrow batch
//! builder. The filesystem connector (files) and the Kafka connector (messages) both
//! decode through here, so a value reads the same from a file as from a topic.

pub(crate) mod csv;
pub(crate) mod json;

use crate::options::choice;
use crate::{ConnectorError, Result};
use arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use sluice_catalogs::TableDescriptor;
use std::collections::BTreeMap;

/// Raw bytes kept in a [`crate::BadRecord`] at most.
pub(crate) const MAX_RAW_BYTES: usize = 64 << 10;

/// What to do with a record that cannot be decoded (the `'format.on-error'` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnError {
    /// Fail the job (default).
    #[default]
    Fail,
    /// Drop the record (and count it).
    Skip,
    /// Write it to the `'dead-letter.path'` with a [`DeadLetterWriter`] and go on.
    DeadLetter,
}

/// A table's `'format.on-error'` policy and `'dead-letter.path'` (a `'dead-letter.topic'`
/// is the alternative to the path: see [`DeadLetterWriter::for_table`]) (for the dataflow,
/// which applies it to the [`crate::BadRecord`]s sources return). Any connector's
/// table may set these two options.
pub fn on_error_policy(table: &TableDescriptor) -> Result<(OnError, Option<String>)> {
    parse_on_error(&table.options)
}

pub(crate) fn parse_on_error(
    options: &BTreeMap<String, String>,
) -> Result<(OnError, Option<String>)> {
    let policy =
        match choice(options, "format.on-error", &["fail", "skip", "dead-letter"])?.as_deref() {
            Some("skip") => OnError::Skip,
            Some("dead-letter") => OnError::DeadLetter,
            _ => OnError::Fail,
        };
    let path = options.get("dead-letter.path").cloned();
    let topic = options.get("dead-letter.topic");
    if policy == OnError::DeadLetter && path.is_none() && topic.is_none() {
        return Err(ConnectorError::Config(
            "'format.on-error' = 'dead-letter' needs option 'dead-letter.path' or 'dead-letter.topic'"
                .into(),
        ));
    }
    if path.is_some() && topic.is_some() {
        return Err(ConnectorError::Config(
            "options 'dead-letter.path' and 'dead-letter.topic' exclude each other".into(),
        ));
    }
    Ok((policy, path))
}

/// What a source does with a record whose event time is behind its watermark when it
/// is read (`'scan.late-records'`, tables with a `WATERMARK` only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LateRecords {
    /// `process` (the default): it flows on; a window it is too late for leaves it out
    /// and counts it as a late row.
    Process,
    /// `dead-letter`: it is written to the table's dead-letter target (`'dead-letter.path'`
    /// or `'dead-letter.topic'`) with the watermark it missed, counted as late and
    /// dead-lettered, and not processed.
    DeadLetter,
}

/// `'scan.late-records'` among a table's options: its value, and the dead-letter target
/// that `dead-letter` needs.
pub(crate) fn check_late_records(options: &BTreeMap<String, String>) -> Result<LateRecords> {
    let policy = match choice(options, "scan.late-records", &["process", "dead-letter"])?.as_deref()
    {
        Some("dead-letter") => LateRecords::DeadLetter,
        _ => LateRecords::Process,
    };
    if policy == LateRecords::DeadLetter
        && !options.contains_key("dead-letter.path")
        && !options.contains_key("dead-letter.topic")
    {
        return Err(ConnectorError::Config(
            "'scan.late-records' = 'dead-letter' needs option 'dead-letter.path' or \
             'dead-letter.topic'"
                .into(),
        ));
    }
    Ok(policy)
}

/// A table's `'scan.late-records'` policy (any connector's table may set it).
pub fn late_records_policy(table: &TableDescriptor) -> Result<LateRecords> {
    let policy = check_late_records(&table.options)?;
    if policy == LateRecords::DeadLetter && table.watermark.is_none() {
        return Err(ConnectorError::Config(format!(
            "table '{}': 'scan.late-records' = 'dead-letter' needs a WATERMARK (a record is \
             late when its event time is behind the watermark)",
            table.name
        )));
    }
    Ok(policy)
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
