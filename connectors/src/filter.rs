//! Filter push-down into sources: a source that declared `filter_pushdown` applies the
//! compiler's pushed-down predicates to each batch before it leaves the source, with
//! the same columnar kernels the dataflow's `Calc` stage uses. Rows failing a filter
//! are never converted, exchanged or counted downstream.

use crate::{ConnectorError, Result, Source, SourcePoll};
use sluice_catalogs::{SqlType, TableDescriptor};
use sluice_columnar::{ColumnarKernels, CpuKernels};
use sluice_expr::ScalarExpr;

/// A source wrapped so that only rows satisfying every pushed-down filter come out.
pub struct FilteredSource {
    inner: Box<dyn Source>,
    predicate: ScalarExpr,
    types: Vec<SqlType>,
    table: String,
    /// Rows the predicate dropped so far.
    filtered: u64,
}

/// Wrap `source` so that it applies `filters` (over the projected columns of `table`);
/// returns it unchanged when there are none.
pub fn with_filters(
    source: Box<dyn Source>,
    table: &TableDescriptor,
    projection: &[usize],
    filters: &[ScalarExpr],
) -> Box<dyn Source> {
    match ScalarExpr::and_all(filters.to_vec()) {
        None => source,
        Some(predicate) => Box::new(FilteredSource {
            inner: source,
            predicate,
            types: projection
                .iter()
                .filter_map(|&i| table.schema.fields.get(i).map(|f| f.ty))
                .collect(),
            table: table.name.clone(),
            filtered: 0,
        }),
    }
}

impl Source for FilteredSource {
    fn poll(&mut self, max_rows: usize) -> Result<SourcePoll> {
        match self.inner.poll(max_rows)? {
            SourcePoll::Batch { batch, bad } => {
                let read = batch.num_rows();
                let batch = CpuKernels
                    .filter(&self.predicate, &batch, &self.types)
                    .map_err(|e| {
                        ConnectorError::Format(format!(
                            "table '{}': cannot evaluate a pushed-down filter: {e}",
                            self.table
                        ))
                    })?;
                self.filtered += (read - batch.num_rows()) as u64;
                Ok(SourcePoll::Batch { batch, bad })
            }
            other => Ok(other),
        }
    }

    fn position(&self) -> serde_json::Value {
        self.inner.position()
    }

    fn seek(&mut self, position: &serde_json::Value) -> Result<()> {
        self.inner.seek(position)
    }

    fn commit_position(&mut self, position: &serde_json::Value) -> Result<()> {
        self.inner.commit_position(position)
    }

    fn caught_up(&self) -> bool {
        self.inner.caught_up()
    }

    fn event_time(&self) -> Option<i64> {
        self.inner.event_time()
    }

    fn tracks_event_time(&self) -> bool {
        self.inner.tracks_event_time()
    }

    fn rows_filtered(&self) -> u64 {
        self.filtered + self.inner.rows_filtered()
    }
}
