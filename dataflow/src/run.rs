//! Timely execution: `workers` threads in this process — and, when the run spans
//! several processes (timely's cluster mode, [`crate::RunOptions::with_cluster`]), as
//! many in each of them — each rendering the same dataflow from the plan and stepping it
//! until every terminal operator is done. Sinks are committed after all workers are
//! done and no worker of any process raised an error (agreed over the control stream,
//! [`crate::control`]). Process 0 leads the checkpoints: it finishes the last record's
//! commits before the others connect, and writes every record.

use crate::checkpoint::{self, Coordinator, Restored, Role};
use crate::control::Control;
use crate::errors::{ErrorSlot, ExecutionError};
use crate::progress::Progress;
use crate::render::sink::{self, DoneFlag, Gathered, TableSinkHandle, TableSinkSpec};
use crate::render::topn::top_rows;
use crate::render::{Context, Diff, Rendered, Time};
use crate::{CollectedResult, RunOptions, RunOutput};
use sluice_compiler::physical::SinkMode;
use sluice_compiler::{DataflowPlan, Row, SinkTarget};
use sluice_connectors::ObjectDir;
use sluice_connectors::WorkerContext;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the processes of a run may take to reach each other (a process that never
/// comes fails the run, which the watchdog restarts).
const CONNECT_WITHIN: Duration = Duration::from_secs(60);

/// Runs `plan` to completion.
pub(crate) fn execute(
    plan: &DataflowPlan,
    options: RunOptions,
    progress: Arc<Progress>,
) -> Result<RunOutput, ExecutionError> {
    let workers = options.workers.max(1);
    let (process, processes) = options
        .cluster
        .as_ref()
        .map_or((0, 1), |(p, peers)| (*p, peers.len().max(1)));
    let role = match (processes, process) {
        (1, _) => Role::Alone,
        (_, 0) => Role::Leader { processes },
        (_, process) => Role::Follower { process },
    };
    let total_workers = workers * processes;
    let errors = ErrorSlot::default();
    let start = Instant::now();
    let shared_plan = Arc::new(plan.clone());
    let registry = options.registry.clone();
    let batch_size = options.batch_size;
    let exit_after_run = options.exit_after_run;
    let kernels = options.kernels.clone();
    let worker_errors = errors.clone();
    let worker_progress = progress.clone();

    // Checkpointed runs: finish the decided commits, find the positions (what earlier
    // runs left is deleted once this run writes its first record).
    let mut coordinator: Option<Arc<Coordinator>> = None;
    let mut restored: Option<Arc<Restored>> = None;
    if let Some(cfg) = &options.checkpoint {
        match checkpoint::barriers(plan) {
            Err(why) => tracing::warn!(
                "checkpoints off: {why}; after a restart the job reads its sources from their start"
            ),
            Ok(mode) => {
                let dir = ObjectDir::open(&cfg.dir).map_err(|e| {
                    ExecutionError::Internal(format!("checkpoint directory {}: {e}", cfg.dir))
                })?;
                let restore_started = Instant::now();
                let (r, cleanup) = checkpoint::restore(
                    plan,
                    &dir,
                    &options.registry,
                    cfg.restore_from,
                    process == 0,
                )?;
                if let Some(r) = &r {
                    let (resumed, sources, states) = r.summary();
                    tracing::info!(
                        "restored from {} {} (written by {} workers) in {} ms: {resumed} of \
                         {sources} source reads resume at its positions, {states} operator \
                         states are kept{}",
                        if r.from_savepoint {
                            "savepoint"
                        } else {
                            "checkpoint"
                        },
                        r.record.epoch,
                        r.record.workers,
                        restore_started.elapsed().as_millis(),
                        if resumed < sources {
                            "; the others read from their start"
                        } else {
                            ""
                        }
                    );
                }
                coordinator = Some(Arc::new(Coordinator::new(
                    cfg,
                    dir,
                    plan,
                    (total_workers, role),
                    r.as_ref(),
                    cleanup,
                    mode,
                )));
                restored = r.map(Arc::new);
            }
        }
    }

    let rebuilt = Arc::new(sluice_compiler::state::rebuilt_operators(plan));
    // One process: threads. Several: the processes connect to each other first
    // (`cluster_net`), then timely's networking runs over those streams.
    let (builders, comms) = match &options.cluster {
        Some((process, peers)) if peers.len() > 1 => {
            let sockets =
                crate::cluster_net::connect(peers, *process, CONNECT_WITHIN).map_err(|e| {
                    ExecutionError::Internal(format!("connecting the run's processes: {e}"))
                })?;
            let hooks = timely_communication::Hooks::default();
            let local = timely_communication::allocator::ProcessBuilder::new_typed_vector(
                workers,
                hooks.refill.clone(),
                hooks.spill.clone(),
            );
            let (builders, guard) =
                timely_communication::allocator::zero_copy::initialize::initialize_networking_from_sockets(
                    local, sockets, *process, workers, hooks,
                )
                .map_err(|e| {
                    ExecutionError::Internal(format!("starting the run's networking: {e}"))
                })?;
            let builders: Vec<timely_communication::AllocatorBuilder> = builders
                .into_iter()
                .map(timely_communication::AllocatorBuilder::Tcp)
                .collect();
            (builders, Box::new(guard) as Box<dyn std::any::Any + Send>)
        }
        _ => timely::CommunicationConfig::Process(workers)
            .try_build()
            .map_err(|e| ExecutionError::Internal(format!("starting workers: {e}")))?,
    };
    let guards = timely::execute::execute_from(
        builders,
        comms,
        timely::WorkerConfig::default(),
        move |worker| {
        let plan = shared_plan.clone();
        let errors = worker_errors.clone();
        let ctx_worker = WorkerContext {
            worker: worker.index(),
            workers: worker.peers(),
        };
        let registry = registry.clone();
        let progress = worker_progress.clone();
        let ckpt = coordinator.clone();
        let restored = restored.clone();
        let rebuilt = rebuilt.clone();
        let (done, gathered, sinks) = worker.dataflow_named::<Time, _, _>("Sluice", |scope| {
            let mut ctx = Context {
                scope,
                worker: ctx_worker,
                registry: registry.clone(),
                batch_size,
                exit_after_run,
                progress: progress.clone(),
                errors: errors.clone(),
                start,
                kernels: kernels.clone(),
                errs: Vec::new(),
                ckpt: ckpt.clone(),
                restored: restored.clone(),
                rebuilt: rebuilt.clone(),
                output_index: 0,
                node_seq: 0,
                source_seq: 0,
                source_reads: BTreeMap::new(),
                state_seq: 0,
                shared: Vec::new(),
                last_source: None,
                alignment: Default::default(),
            };
            let mut done: Vec<DoneFlag> = Vec::new();
            let mut gathered: Vec<Gathered> = Vec::new();
            let mut sinks: Vec<TableSinkHandle> = Vec::new();
            for (i, output) in plan.outputs.iter().enumerate() {
                ctx.output_index = i;
                ctx.node_seq = 0;
                match &output.target {
                    SinkTarget::Table(table) => {
                        let spec = TableSinkSpec {
                            table,
                            schema: &output.schema,
                            // A plan stored before `sink` existed says `Append`.
                            mode: match &output.sink {
                                SinkMode::Append if output.updating => SinkMode::Final,
                                mode => mode.clone(),
                            },
                            registry: &registry,
                            worker: ctx_worker,
                            errors: errors.clone(),
                            progress: progress.clone(),
                            output: i,
                            ckpt: ckpt.clone(),
                        };
                        // Append-only and still columnar, of the table's own types:
                        // batches go to the sink as they are.
                        let columnar = !output.updating
                            && output.plan.schema().types() == output.schema.types();
                        let rendered = if columnar {
                            ctx.render_any(&output.plan)
                        } else {
                            Rendered::Rows(ctx.render(&output.plan))
                        };
                        let (flag, handle) = match rendered {
                            Rendered::Batches(batches) => {
                                sink::render_table_sink_batches(batches, spec)
                            }
                            Rendered::Rows(rows) => match spec.mode {
                                SinkMode::Upsert { .. } | SinkMode::Changelog => {
                                    sink::render_change_sink(rows, spec)
                                }
                                SinkMode::Append | SinkMode::Final => {
                                    sink::render_table_sink(rows, spec)
                                }
                            },
                        };
                        done.push(flag);
                        sinks.push(handle);
                    }
                    SinkTarget::Collect { .. } => {
                        let rows = ctx.render(&output.plan);
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
        let mut control = Control::new(worker, workers);
        if ckpt.is_some() {
            // Every operator (of every process) is registered before worker 0 asks
            // for a checkpoint.
            control.sync(worker, ckpt.as_deref(), true);
        }
        let mut committed = ckpt.as_ref().map_or(0, |c| c.completed());
        while !done.iter().all(|d| d.get()) {
            worker.step_or_park(Some(Duration::from_millis(1)));
            // Counted per thread of this process.
            progress.worker_stepped(worker.index() % workers);
            let Some(c) = &ckpt else { continue };
            control.pump(Some(c));
            if errors.first().is_some() || progress.is_cancelled() {
                continue;
            }
            if worker.index() == 0 {
                c.maybe_request();
                if let Err(e) = c.try_complete() {
                    errors.raise(e);
                }
            }
            let decided = c.completed();
            if decided > committed {
                match sink::commit_epoch(&sinks, decided) {
                    Ok(()) => {
                        committed = decided;
                        c.worker_committed(worker.index(), decided);
                    }
                    Err(e) => errors.raise(e),
                }
                sluice_connectors::failpoint("commit.after");
            }
        }
        // Every worker's sinks have prepared (or the run failed): commit only if no
        // worker of any process raised an error.
        let ok = errors.first().is_none() && !progress.is_cancelled();
        let ok = control.sync(worker, ckpt.as_deref(), ok);
        if !ok && errors.first().is_none() && !progress.is_cancelled() {
            errors.raise(ExecutionError::Internal(
                "a worker of another process of this run failed (its own log says why); this process commits nothing".into(),
            ));
        }
        match (&ckpt, ok) {
            (_, false) => {}
            (None, true) => {
                if let Err(e) = sink::commit_epoch(&sinks, sink::BOUNDED_EPOCH) {
                    errors.raise(e);
                }
            }
            (Some(c), true) => {
                // A checkpoint completed after this worker left its loop: commit it
                // here, so the last record decides only what no record decided yet.
                let decided = c.completed();
                if decided > committed {
                    match sink::commit_epoch(&sinks, decided) {
                        Ok(()) => c.worker_committed(worker.index(), decided),
                        Err(e) => errors.raise(e),
                    }
                }
                control.sync(worker, Some(c), true);
                // The input ended: one last checkpoint holds everything not yet
                // decided, with the sources' final positions.
                // (An epoch still in flight becomes that checkpoint: epochs stay
                // consecutive; a second prepare of an epoch adds to it.)
                let last = if c.requested() > c.completed() {
                    c.requested()
                } else {
                    c.completed() + 1
                };
                match sink::prepare_epoch(&sinks, last) {
                    Ok(list) => {
                        for (key, pending, write_ahead) in list {
                            if let Err(e) =
                                c.sink_prepared(last, &key, worker.index(), pending, write_ahead)
                            {
                                errors.raise(e);
                            }
                        }
                    }
                    Err(e) => errors.raise(e),
                }
                let prepared = control.sync(worker, Some(c), errors.first().is_none());
                if worker.index() == 0 && prepared {
                    c.request(last);
                    match c.complete_final() {
                        Ok(true) => {}
                        Ok(false) => errors.raise(ExecutionError::Internal(
                            "the final checkpoint is incomplete".into(),
                        )),
                        Err(e) => errors.raise(e),
                    }
                }
                let decided = control.sync(worker, Some(c), prepared && errors.first().is_none());
                if decided {
                    if let Err(e) = sink::commit_epoch(&sinks, last) {
                        errors.raise(e);
                    }
                }
            }
        }
        drop(control);
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
