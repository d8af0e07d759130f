//! Timely execution: `workers` threads in this process, each rendering the same
//! dataflow from the plan and stepping it until every terminal operator is done.
//! Sinks are committed after all workers are done and no error was raised.

use crate::errors::{ErrorSlot, ExecutionError};
use crate::progress::Progress;
use crate::render::sink::{self, DoneFlag, Gathered, TableSinkHandle, TableSinkSpec};
use crate::render::topn::top_rows;
use crate::render::{Context, Diff, Time};
use crate::{CollectedResult, RunOptions, RunOutput};
use sluice_compiler::{DataflowPlan, Row, SinkTarget};
use sluice_connectors::WorkerContext;
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Runs `plan` to completion.
pub(crate) fn execute(
    plan: &DataflowPlan,
    options: RunOptions,
    progress: Arc<Progress>,
) -> Result<RunOutput, ExecutionError> {
    let workers = options.workers.max(1);
    let errors = ErrorSlot::default();
    let barrier = Arc::new(Barrier::new(workers));
    let start = Instant::now();
    let shared_plan = Arc::new(plan.clone());
    let registry = options.registry.clone();
    let batch_size = options.batch_size;
    let kernels = options.kernels.clone();
    let worker_errors = errors.clone();
    let worker_progress = progress.clone();

    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let plan = shared_plan.clone();
        let errors = worker_errors.clone();
        let ctx_worker = WorkerContext {
            worker: worker.index(),
            workers: worker.peers(),
        };
        let registry = registry.clone();
        let progress = worker_progress.clone();
        let (done, gathered, sinks) = worker.dataflow_named::<Time, _, _>("Sluice", |scope| {
            let mut ctx = Context {
                scope,
                worker: ctx_worker,
                registry: registry.clone(),
                batch_size,
                progress: progress.clone(),
                errors: errors.clone(),
                start,
                kernels: kernels.clone(),
                errs: Vec::new(),
            };
            let mut done: Vec<DoneFlag> = Vec::new();
            let mut gathered: Vec<Gathered> = Vec::new();
            let mut sinks: Vec<TableSinkHandle> = Vec::new();
            for (i, output) in plan.outputs.iter().enumerate() {
                let rows = ctx.render(&output.plan);
                match &output.target {
                    SinkTarget::Table(table) => {
                        let (flag, handle) = sink::render_table_sink(
                            rows,
                            TableSinkSpec {
                                table,
                                schema: &output.schema,
                                updating: output.updating,
                                registry: &registry,
                                worker: ctx_worker,
                                errors: errors.clone(),
                                progress: progress.clone(),
                            },
                        );
                        done.push(flag);
                        sinks.push(handle);
                    }
                    SinkTarget::Collect { .. } => {
                        let (flag, rows) = sink::render_collect(rows, &format!("Collect({i})"));
                        done.push(flag);
                        gathered.push(rows);
                    }
                }
            }
            let errs = differential_dataflow::collection::concatenate(scope, ctx.errs.drain(..));
            done.push(sink::render_error_sink(errs, errors.clone()));
            (done, gathered, sinks)
        });
        while !done.iter().all(|d| d.get()) {
            worker.step_or_park(Some(Duration::from_millis(1)));
        }
        // Every worker's sinks have prepared (or the run failed): commit only if no
        // worker raised an error.
        barrier.wait();
        if errors.first().is_none() && !progress.is_cancelled() {
            if let Err(e) = sink::commit_epoch(&sinks, sink::BOUNDED_EPOCH) {
                errors.raise(e);
            }
        }
        gathered
            .into_iter()
            .map(|g| g.borrow().iter().map(|(r, d)| (r.clone(), *d)).collect())
            .collect::<Vec<Vec<(Row, Diff)>>>()
    })
    .map_err(|e| ExecutionError::Internal(format!("starting workers: {e}")))?;

    let mut per_output: Vec<BTreeMap<Row, Diff>> = Vec::new();
    for result in guards.join() {
        let gathered =
            result.map_err(|e| ExecutionError::Internal(format!("worker failed: {e}")))?;
        for (i, rows) in gathered.into_iter().enumerate() {
            if per_output.len() <= i {
                per_output.resize_with(i + 1, BTreeMap::new);
            }
            for (row, d) in rows {
                *per_output[i].entry(row).or_default() += d;
            }
        }
    }
    if let Some(e) = errors.first() {
        return Err(e);
    }
    if progress.is_cancelled() {
        return Err(ExecutionError::Cancelled);
    }

    let mut collected = Vec::new();
    let mut gathered = per_output.into_iter();
    for output in &plan.outputs {
        if let SinkTarget::Collect {
            order,
            limit,
            offset,
        } = &output.target
        {
            let rows = gathered.next().unwrap_or_default();
            if let Some((row, _)) = rows.iter().find(|(_, d)| **d < 0) {
                return Err(ExecutionError::Internal(format!(
                    "collected result holds a net retraction of {row:?}"
                )));
            }
            let kept = top_rows(rows.iter().map(|(r, d)| (r, *d)), order, *limit, *offset);
            // Rows may carry trailing sort-only columns (ORDER BY on an expression that
            // is not selected): cut them once the rows are in order.
            let width = output.schema.len();
            let rows: Vec<Row> = kept
                .into_iter()
                .flat_map(|(row, n)| std::iter::repeat_n(row, n as usize))
                .map(|mut row| {
                    row.truncate(width);
                    row
                })
                .collect();
            progress.add_rows_out(rows.len() as u64);
            collected.push(CollectedResult {
                schema: output.schema.clone(),
                rows,
            });
        }
    }
    Ok(RunOutput {
        collected,
        metrics: progress.snapshot(),
    })
}
