//! `Source`: one timely source operator per table per worker, polling the connector's
//! [`Source`] for at most `batch_size` rows per activation and re-activating itself
//! (so the worker stays responsive between polls). It emits Arrow batches
//! ([`TimedBatch`]); the stateless stages after it run on those batches.
//!
//! Time: with a watermark, batches are emitted at the current capability, which is
//! then downgraded to `event time - delay` (never backwards), where the event time is
//! the largest seen, or, for a connector that tracks it per split (Kafka partitions),
//! the smallest over the splits of the largest each has read; without one,
//! bounded input is emitted at time 0 and unbounded input at processing-time epochs
//! (ms since the run started). The capability is dropped when the source is finished
//! (or the run is cancelled).
//!
//! Bad records follow the table's `'format.on-error'` policy: `fail` emits
//! [`ExecutionError::BadRecord`] into the errs collection, `skip` counts them,
//! `dead-letter` counts them and appends them to `'dead-letter.path'`. With
//! `'scan.late-records' = 'dead-letter'`, records whose event time is behind the
//! source's watermark when read go to the same dead letters, not downstream.

use super::{fallible_operator, Batches, Context, Time, TimedBatch};
use crate::checkpoint::epoch_time;
use crate::errors::{ErrorSlot, ExecutionError};
use crate::progress::Progress;
use arrow::record_batch::RecordBatch;
use sluice_catalogs::TableDescriptor;
use sluice_compiler::ScalarExpr;
use sluice_connectors::{
    late_records_policy, on_error_policy, BadRecord, DeadLetterWriter, LateRecords, OnError,
    Source, SourcePoll, WorkerContext,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::generic::source as timely_source;

/// What a source operator emits: a batch, or an error at a time.
type SourceItem = Result<TimedBatch, (ExecutionError, Time)>;

/// How bad records are handled.
enum BadRecordSink {
    Fail,
    Skip,
    DeadLetter(DeadLetterWriter),
}

/// Per-worker state of one source operator.
struct SourceState {
    table: String,
    reader: Box<dyn Source>,
    bad: BadRecordSink,
    /// Position of the watermark column in the projected row, and the delay.
    watermark: Option<(usize, i64)>,
    max_event_time: Option<i64>,
    progress: Arc<Progress>,
    /// `reader.rows_filtered()` as last added to the progress counters.
    filtered: u64,
    /// `'scan.late-records' = 'dead-letter'`: records behind the watermark go to the
    /// dead letters (this writer, or the bad records' one when they share it).
    late: Option<LateSink>,
}

/// Where late records go.
enum LateSink {
    /// The bad records' dead-letter writer (one writer per target and worker).
    Shared,
    Own(DeadLetterWriter),
}

impl SourceState {
    fn open(
        ctx: &Context<'_>,
        table: &TableDescriptor,
        projection: &[usize],
        filters: &[ScalarExpr],
        worker: WorkerContext,
    ) -> Result<SourceState, ExecutionError> {
        let connector = |e: sluice_connectors::ConnectorError| ExecutionError::Connector {
            table: table.name.clone(),
            message: e.to_string(),
        };
        let (policy, _) = on_error_policy(table).map_err(connector)?;
        let bad = match policy {
            OnError::Fail => BadRecordSink::Fail,
            OnError::Skip => BadRecordSink::Skip,
            OnError::DeadLetter => {
                match DeadLetterWriter::for_table(table, worker.worker).map_err(connector)? {
                    Some(writer) => BadRecordSink::DeadLetter(writer),
                    None => {
                        return Err(ExecutionError::Connector {
                            table: table.name.clone(),
                            message: "'format.on-error' = 'dead-letter' needs 'dead-letter.path' \
                                  or 'dead-letter.topic'"
                                .into(),
                        })
                    }
                }
            }
        };
        let late = match late_records_policy(table).map_err(connector)? {
            LateRecords::Process => None,
            LateRecords::DeadLetter if matches!(bad, BadRecordSink::DeadLetter(_)) => {
                Some(LateSink::Shared)
            }
            LateRecords::DeadLetter => DeadLetterWriter::for_table(table, worker.worker)
                .map_err(connector)?
                .map(LateSink::Own),
        };
        let reader = ctx
            .registry
            .create_source(table, projection, filters, worker)
            .map_err(connector)?;
        let watermark = table.watermark.as_ref().and_then(|w| {
            projection
                .iter()
                .position(|&c| c == w.column)
                .map(|pos| (pos, w.delay_ms))
        });
        Ok(SourceState {
            table: table.name.clone(),
            reader,
            bad,
            watermark,
            max_event_time: None,
            progress: ctx.progress.clone(),
            filtered: 0,
            late,
        })
    }

    /// `'scan.late-records' = 'dead-letter'`: the rows of `batch` whose event time is
    /// behind `watermark` (the source's, before this batch) are written to the dead
    /// letters, counted, and left out of the batch returned.
    fn divert_late(
        &mut self,
        batch: RecordBatch,
        watermark: Option<Time>,
    ) -> Result<RecordBatch, ExecutionError> {
        use arrow::array::{Array, AsArray, BooleanArray};
        use arrow::datatypes::TimestampMillisecondType;
        let (Some(late), Some((col, _)), Some(wm)) = (&mut self.late, self.watermark, watermark)
        else {
            return Ok(batch);
        };
        let wm = i64::try_from(wm).unwrap_or(i64::MAX);
        let Some(times) = batch
            .columns()
            .get(col)
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        else {
            return Ok(batch);
        };
        let is_late = |i: usize| times.is_valid(i) && times.value(i) < wm;
        let late_rows: Vec<usize> = (0..times.len()).filter(|&i| is_late(i)).collect();
        if late_rows.is_empty() {
            return Ok(batch);
        }
        let writer = match late {
            LateSink::Own(w) => w,
            LateSink::Shared => match &mut self.bad {
                BadRecordSink::DeadLetter(w) => w,
                _ => return Ok(batch),
            },
        };
        let table = self.table.clone();
        let connector = |e: sluice_connectors::ConnectorError| ExecutionError::Connector {
            table: table.clone(),
            message: format!("dead-letter: {e}"),
        };
        let watermark_text = sluice_connectors::values::format_timestamp(wm);
        for &i in &late_rows {
            let record = BadRecord {
                position: format!("behind the watermark {watermark_text}"),
                error: format!(
                    "late: event time {} is behind the watermark {watermark_text}",
                    sluice_connectors::values::format_timestamp(times.value(i))
                ),
                raw: sluice_connectors::values::row_json(&batch, i).into_bytes(),
            };
            writer.write(&self.table, &record).map_err(connector)?;
        }
        writer.flush().map_err(connector)?;
        let n = late_rows.len() as u64;
        self.progress.add_late_rows(n);
        self.progress.add_dead_lettered(n);
        let keep: BooleanArray = (0..times.len()).map(|i| Some(!is_late(i))).collect();
        arrow::compute::filter_record_batch(&batch, &keep)
            .map_err(|e| ExecutionError::Internal(format!("dropping late rows: {e}")))
    }

    /// Applies the bad-record policy; `fail` yields the errors to emit.
    fn bad_records(&mut self, bad: Vec<BadRecord>) -> Vec<ExecutionError> {
        if bad.is_empty() {
            return Vec::new();
        }
        self.progress.add_bad_records(bad.len() as u64);
        let connector =
            |table: &str, e: sluice_connectors::ConnectorError| ExecutionError::Connector {
                table: table.to_string(),
                message: format!("dead-letter: {e}"),
            };
        match &mut self.bad {
            BadRecordSink::Skip => Vec::new(),
            BadRecordSink::Fail => bad
                .into_iter()
                .map(|b| ExecutionError::BadRecord {
                    table: self.table.clone(),
                    position: b.position,
                    error: b.error,
                })
                .collect(),
            BadRecordSink::DeadLetter(writer) => {
                for b in &bad {
                    if let Err(e) = writer.write(&self.table, b) {
                        return vec![connector(&self.table, e)];
                    }
                }
                if let Err(e) = writer.flush() {
                    return vec![connector(&self.table, e)];
                }
                self.progress.add_dead_lettered(bad.len() as u64);
                Vec::new()
            }
        }
    }

    /// Tracks the largest event time of `batch`.
    fn observe(&mut self, batch: &RecordBatch) {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::TimestampMillisecondType;
        let Some((col, _)) = self.watermark else {
            return;
        };
        let Some(times) = batch
            .columns()
            .get(col)
            .and_then(|c| c.as_primitive_opt::<TimestampMillisecondType>())
        else {
            return;
        };
        let max = (0..times.len())
            .filter(|&i| times.is_valid(i))
            .map(|i| times.value(i))
            .max();
        if let Some(m) = max {
            self.max_event_time = Some(self.max_event_time.map_or(m, |old| old.max(m)));
        }
    }

    /// The event time minus the delay: per split when the connector tracks it (the
    /// smallest over its splits, see [`Source::event_time`]), else the largest event
    /// time of the batches so far.
    fn watermark(&self) -> Option<Time> {
        let (_, delay) = self.watermark?;
        let max = if self.reader.tracks_event_time() {
            self.reader.event_time()?
        } else {
            self.max_event_time?
        };
        Some(max.saturating_sub(delay).max(0) as Time)
    }
}

/// Keeps [`Progress::source_started`] / [`Progress::source_exhausted`] paired: counted
/// from [`Waiting::start`] until [`Waiting::end`] (or the drop, whichever is first);
/// within that span, keeps the operator's share of [`Progress::input_waiting`]: counted
/// as backlogged from the start until a poll finds it caught up, and again whenever a
/// poll gives rows or finds input it has not read.
struct Waiting {
    progress: Option<Arc<Progress>>,
    backlogged: bool,
}

impl Waiting {
    fn start(progress: Arc<Progress>) -> Self {
        progress.source_started();
        progress.source_backlogged(true);
        Waiting {
            progress: Some(progress),
            backlogged: true,
        }
    }

    /// The last poll gave rows or found unread input (`true`), or found the source
    /// caught up (`false`).
    fn backlogged(&mut self, backlogged: bool) {
        if let Some(progress) = &self.progress {
            if backlogged != self.backlogged {
                progress.source_backlogged(backlogged);
                self.backlogged = backlogged;
            }
        }
    }

    fn end(&mut self) {
        self.backlogged(false);
        if let Some(progress) = self.progress.take() {
            progress.source_exhausted();
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.end();
    }
}

/// Renders a `Source` node into batches (errors go to `ctx.errs`).
pub(crate) fn render_source<'s>(
    ctx: &mut Context<'s>,
    table: &TableDescriptor,
    projection: &[usize],
    filters: &[ScalarExpr],
) -> Batches<'s> {
    let name = format!("Source({})", table.name);
    // Its checkpoint key: the table's stable id and how often it was read before
    // (`sluice_compiler::state::layout` counts the same way); format-2 records used
    // the render order.
    let id = sluice_compiler::state::source_id(table);
    let reads = ctx.source_reads.entry(id.clone()).or_default();
    let key = sluice_compiler::state::source_key(&id, *reads);
    *reads += 1;
    let legacy_key = crate::checkpoint::legacy_source_key(ctx.source_seq, &table.name);
    ctx.source_seq += 1;
    let worker = ctx.worker;
    let ckpt = ctx.ckpt.clone();
    if let Some(c) = &ckpt {
        c.register_source(&key, worker.worker);
    }
    let mut opened = SourceState::open(ctx, table, projection, filters, ctx.worker);
    if let (Ok(state), Some(restored)) = (&mut opened, &ctx.restored) {
        match crate::checkpoint::restored_position(restored, &key, &legacy_key, worker) {
            Ok(Some(position)) => {
                if let Err(e) = state.reader.seek(&position) {
                    opened = Err(ExecutionError::Connector {
                        table: table.name.clone(),
                        message: format!("restoring its position from the checkpoint: {e}"),
                    });
                }
            }
            Ok(None) => {}
            Err(why) => {
                if worker.worker == 0 {
                    tracing::warn!(
                        "source '{}': {why}; it reads from its start position",
                        table.name
                    );
                }
            }
        }
    }
    let bounded = table.capabilities.bounded;
    let batch_size = ctx.batch_size.max(1);
    let errors: ErrorSlot = ctx.errors.clone();
    let start: Instant = ctx.start;
    let scope = ctx.scope;
    let progress = ctx.progress.clone();
    // The stateful operators this source feeds report what they have taken in here.
    let flow = std::rc::Rc::new(super::flow::SourceFlow::default());
    ctx.last_source = Some(std::rc::Rc::clone(&flow));
    // An event-time source keeps in step with the job's other event-time sources (in
    // processing-time epochs the timestamps are not event times).
    let epochs_mode = ctx
        .ckpt
        .as_ref()
        .is_some_and(|c| c.mode() == crate::checkpoint::Barriers::Epochs);
    let alignment = std::rc::Rc::clone(&ctx.alignment);
    let aligned = (table.watermark.is_some() && !epochs_mode).then(|| alignment.member());

    let stream = timely_source::<_, CapacityContainerBuilder<Vec<SourceItem>>, _, _>(
        scope,
        &name,
        move |capability, info| {
            let activator = scope.activator_for(info.address);
            let mut capability = Some(capability);
            // Counted from now until the capability is dropped (or the operator is).
            let mut waiting = Waiting::start(progress);
            let (mut state, mut pending_error) = match opened {
                Ok(state) => (Some(state), None),
                Err(e) => (None, Some(e)),
            };
            let mut epoch = ckpt.as_ref().map_or(0, |c| c.first_epoch());
            // Processing-time epochs in the timestamps (else event time, or no checkpoints).
            let epochs = ckpt
                .as_ref()
                .is_some_and(|c| c.mode() == crate::checkpoint::Barriers::Epochs);
            let now_ms = move || start.elapsed().as_millis() as u64;
            move |output| {
                let Some(cap) = capability.as_mut() else {
                    // Ended (finished, failed or cancelled): holds no source back.
                    if let Some(a) = &aligned {
                        a.report(None);
                    }
                    return;
                };
                // Checkpointed: record the position at each requested barrier, then move
                // past it (everything read so far is below the barrier's time).
                // Event time: record the position before the first data at or above a
                // requested barrier (restored: the time starts at the record's barrier).
                // Across processes it may have to hold while a barrier is chosen.
                let mut hold = false;
                if let (Some(c), Some(state)) = (&ckpt, state.as_mut()) {
                    if epochs {
                        let requested = c.requested();
                        if requested >= epoch {
                            c.source_position(
                                requested,
                                &key,
                                worker.worker,
                                state.reader.position(),
                            );
                            epoch = requested + 1;
                        }
                        let t = epoch_time(epoch, if bounded { 0 } else { now_ms() });
                        if t > *cap.time() {
                            cap.downgrade(&t);
                        }
                        hold = !c.may_emit(*cap.time());
                    } else {
                        let floor = c.restored_barrier();
                        if floor > *cap.time() {
                            cap.downgrade(&floor);
                        }
                        let reader = &state.reader;
                        hold = !c.event_source_step(&key, worker.worker, *cap.time(), || {
                            reader.position()
                        });
                    }
                }
                let time = *cap.time();
                if let Some(e) = pending_error.take() {
                    output.session(&*cap).give(Err((e, time)));
                    capability = None;
                    waiting.end();
                    return;
                }
                let Some(state) = state.as_mut() else {
                    capability = None;
                    waiting.end();
                    return;
                };
                if errors.is_cancelled() || state.progress.is_cancelled() {
                    capability = None;
                    waiting.end();
                    return;
                }
                if hold {
                    waiting.backlogged(true);
                    activator.activate_after(Duration::from_millis(1));
                    return;
                }
                // Flow control: no reading while the stateful operators this source
                // feeds are more than `FLOW_LAG` behind it (on any worker).
                let ahead = flow.aligns()
                    && aligned
                        .as_ref()
                        .is_some_and(|a| alignment.ahead(a, *cap.time()));
                if ahead || super::flow::pause(*cap.time(), flow.consumed()) {
                    waiting.backlogged(true);
                    activator.activate_after(Duration::from_millis(1));
                    return;
                }
                // The watermark as it stands before this poll's rows arrive.
                let watermark_before = if state.late.is_some() {
                    state.watermark()
                } else {
                    None
                };
                match state.reader.poll(batch_size) {
                    Ok(SourcePoll::Batch { batch, bad }) => {
                        waiting.backlogged(true);
                        state.progress.add_rows_in(batch.num_rows() as u64);
                        let batch = match state.divert_late(batch, watermark_before) {
                            Ok(batch) => batch,
                            Err(e) => {
                                output.session(&*cap).give(Err((e, time)));
                                capability = None;
                                waiting.end();
                                return;
                            }
                        };
                        let filtered = state.reader.rows_filtered();
                        state
                            .progress
                            .add_rows_filtered(filtered.saturating_sub(state.filtered));
                        state.filtered = filtered;
                        state.observe(&batch);
                        let bad = state.bad_records(bad);
                        let mut session = output.session(&*cap);
                        if batch.num_rows() > 0 {
                            session.give(Ok(TimedBatch { batch, time }));
                        }
                        for e in bad {
                            session.give(Err((e, time)));
                        }
                        drop(session);
                        let next = match state.watermark {
                            _ if epochs => None,
                            Some(_) => state.watermark(),
                            None if !bounded => Some(start.elapsed().as_millis() as Time),
                            None => None,
                        };
                        if let Some(next) = next {
                            if next > *cap.time() {
                                cap.downgrade(&next);
                            }
                        }
                        if let Some(a) = &aligned {
                            a.report(flow.aligns().then_some(*cap.time()));
                        }
                        activator.activate();
                    }
                    Ok(SourcePoll::Idle) => {
                        // Caught up: holds no other source back.
                        if let Some(a) = &aligned {
                            a.report(None);
                        }
                        waiting.backlogged(!state.reader.caught_up());
                        if state.watermark.is_none() && !bounded && !epochs {
                            let now = start.elapsed().as_millis() as Time;
                            if now > *cap.time() {
                                cap.downgrade(&now);
                            }
                        }
                        // Per-split event time moves on idle too (a split that went
                        // idle stops holding it back).
                        if !epochs && state.reader.tracks_event_time() {
                            if let Some(next) = state.watermark() {
                                if next > *cap.time() {
                                    cap.downgrade(&next);
                                }
                            }
                        }
                        activator.activate_after(Duration::from_millis(1));
                    }
                    Ok(SourcePoll::Finished) => {
                        if let Some(a) = &aligned {
                            a.report(None);
                        }
                        if let Some(c) = &ckpt {
                            c.source_finished(&key, worker.worker, state.reader.position());
                        }
                        capability = None;
                        waiting.end();
                    }
                    Err(e) => {
                        let error = ExecutionError::Connector {
                            table: state.table.clone(),
                            message: e.to_string(),
                        };
                        output.session(&*cap).give(Err((error, time)));
                        capability = None;
                        waiting.end();
                    }
                }
            }
        },
    );
    let (batches, errs) = fallible_operator(
        stream,
        &format!("{name}: split errors"),
        |item: SourceItem, oks, errs| match item {
            Ok(b) => oks.push(b),
            Err((e, t)) => errs.push((e, t, 1)),
        },
    );
    ctx.errs.push(errs);
    batches
}
