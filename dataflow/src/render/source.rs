//! `Source`: one timely source operator per table per worker, polling the connector's
//! [`Source`] for at most `batch_size` rows per activation and re-activating itself
//! (so the worker stays responsive between polls).
//!
//! Time: with a watermark, rows are emitted at the current capability, which is then
//! downgraded to `max event time seen - delay` (never backwards); without one, bounded
//! input is emitted at time 0 and unbounded input at processing-time epochs (ms since
//! the run started). The capability is dropped when the source is finished.

use super::{split_results, Context, Diff, Rows, Time};
use crate::convert::batch_to_rows;
use crate::errors::{ErrorSlot, ExecutionError};
use crate::progress::Progress;
use differential_dataflow::AsCollection;
use sluice_catalogs::TableDescriptor;
use sluice_compiler::{Datum, Row, ScalarExpr};
use sluice_connectors::{BadRecord, Source, SourcePoll};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::source as timely_source;

/// What to do with records a source cannot decode (`'format.on-error'`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BadRecordPolicy {
    /// End the run with [`ExecutionError::BadRecord`] (the default).
    Fail,
    /// Count and drop.
    Skip,
}

impl BadRecordPolicy {
    /// The policy of `table`.
    pub(crate) fn of(table: &TableDescriptor) -> Result<Self, ExecutionError> {
        match table.option("format.on-error").unwrap_or("fail") {
            "fail" => Ok(BadRecordPolicy::Fail),
            "skip" => Ok(BadRecordPolicy::Skip),
            other => Err(ExecutionError::Connector {
                table: table.name.clone(),
                message: format!(
                    "unsupported 'format.on-error' policy '{other}' (supported: fail, skip)"
                ),
            }),
        }
    }
}

type Update = (Result<Row, ExecutionError>, Time, Diff);

/// Per-worker state of one source operator.
struct SourceState {
    table: String,
    reader: Option<Box<dyn Source>>,
    policy: BadRecordPolicy,
    /// Position of the watermark column in the projected row, and the delay.
    watermark: Option<(usize, i64)>,
    max_event_time: Option<i64>,
    progress: Arc<Progress>,
}

impl SourceState {
    fn bad_records(&self, bad: Vec<BadRecord>, time: Time, out: &mut Vec<Update>) {
        if bad.is_empty() {
            return;
        }
        self.progress.add_bad_records(bad.len() as u64);
        if self.policy == BadRecordPolicy::Fail {
            for b in bad {
                let error = ExecutionError::BadRecord {
                    table: self.table.clone(),
                    position: b.position,
                    error: b.error,
                };
                out.push((Err(error), time, 1));
            }
        }
    }

    /// The new watermark after `rows`, if it moved.
    fn observe(&mut self, rows: &[Row]) {
        if let Some((col, _)) = self.watermark {
            for r in rows {
                if let Some(Datum::Timestamp(ts)) = r.get(col) {
                    self.max_event_time = Some(self.max_event_time.map_or(*ts, |m| m.max(*ts)));
                }
            }
        }
    }

    fn watermark(&self) -> Option<Time> {
        let (_, delay) = self.watermark?;
        let max = self.max_event_time?;
        Some(max.saturating_sub(delay).max(0) as Time)
    }
}

/// Renders a `Source` node.
pub(crate) fn render_source<'s>(
    ctx: &mut Context<'s>,
    table: &TableDescriptor,
    projection: &[usize],
    filters: &[ScalarExpr],
) -> Rows<'s> {
    let name = format!("Source({})", table.name);
    let created = BadRecordPolicy::of(table).and_then(|policy| {
        ctx.registry
            .create_source(table, projection, filters, ctx.worker)
            .map(|reader| (policy, reader))
            .map_err(|e| ExecutionError::Connector {
                table: table.name.clone(),
                message: e.to_string(),
            })
    });
    let watermark = table.watermark.as_ref().and_then(|w| {
        projection
            .iter()
            .position(|&c| c == w.column)
            .map(|pos| (pos, w.delay_ms))
    });
    let bounded = table.capabilities.bounded;
    let batch_size = ctx.batch_size.max(1);
    let errors: ErrorSlot = ctx.errors.clone();
    let start: Instant = ctx.start;
    let progress = ctx.progress.clone();
    let table_name = table.name.clone();
    let scope = ctx.scope;

    let stream = timely_source::<_, CapacityContainerBuilder<Vec<Update>>, _, _>(
        scope,
        &name,
        move |capability, info| {
            let activator = scope.activator_for(info.address);
            let mut capability = Some(capability);
            let mut pending_error = None;
            let mut state = match created {
                Ok((policy, reader)) => Some(SourceState {
                    table: table_name.clone(),
                    reader: Some(reader),
                    policy,
                    watermark,
                    max_event_time: None,
                    progress,
                }),
                Err(e) => {
                    pending_error = Some(e);
                    None
                }
            };
            let mut buffer: Vec<Update> = Vec::new();
            move |output| {
                let Some(cap) = capability.as_mut() else {
                    return;
                };
                let time = *cap.time();
                if let Some(e) = pending_error.take() {
                    output.session(&*cap).give((Err(e), time, 1));
                    capability = None;
                    return;
                }
                let Some(state) = state.as_mut() else {
                    capability = None;
                    return;
                };
                if errors.is_cancelled() {
                    capability = None;
                    return;
                }
                let Some(reader) = state.reader.as_mut() else {
                    capability = None;
                    return;
                };
                match reader.poll(batch_size) {
                    Ok(SourcePoll::Batch { batch, bad }) => {
                        match batch_to_rows(&batch) {
                            Ok(rows) => {
                                state.progress.add_rows_in(rows.len() as u64);
                                state.observe(&rows);
                                buffer.extend(rows.into_iter().map(|r| (Ok(r), time, 1)));
                            }
                            Err(e) => buffer.push((Err(e), time, 1)),
                        }
                        state.bad_records(bad, time, &mut buffer);
                        if !buffer.is_empty() {
                            output.session(&*cap).give_iterator(buffer.drain(..));
                        }
                        if let Some(w) = state.watermark() {
                            if w > *cap.time() {
                                cap.downgrade(&w);
                            }
                        }
                        activator.activate();
                    }
                    Ok(SourcePoll::Idle) => {
                        if state.watermark.is_none() && !bounded {
                            let now = start.elapsed().as_millis() as Time;
                            if now > *cap.time() {
                                cap.downgrade(&now);
                            }
                        }
                        activator.activate_after(Duration::from_millis(1));
                    }
                    Ok(SourcePoll::Finished) => {
                        state.reader = None;
                        capability = None;
                    }
                    Err(e) => {
                        let error = ExecutionError::Connector {
                            table: state.table.clone(),
                            message: e.to_string(),
                        };
                        output.session(&*cap).give((Err(error), time, 1));
                        state.reader = None;
                        capability = None;
                    }
                }
            }
        },
    );
    let (oks, errs) = split_results(
        stream.as_collection().inner,
        &format!("{name}: split errors"),
    );
    ctx.errs.push(errs);
    oks
}
