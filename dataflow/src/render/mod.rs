//! Rendering: one [`PhysicalPlan`] tree into timely/differential operators on one worker.
//!
//! A source and the stateless nodes right after it (`Calc`, TUMBLE/HOP `WindowAssign`)
//! render to a stream of Arrow batches ([`Rendered::Batches`], evaluated with the
//! columnar kernels, never exchanged); every other node renders to an "oks" collection
//! of [`Row`]s (time `u64`, diff `isize`), and a batch stream becomes rows where a
//! row operator needs them (`BatchToRows`). Failures go to "errs" collections kept in
//! the [`Context`] and drained by the error sink (see [`crate::errors`]). Stateless
//! nodes over rows evaluate row-at-a-time; stateful nodes exchange rows by key hash.

pub(crate) mod calc;
pub(crate) mod flow;
pub(crate) mod hop_panes;
pub(crate) mod interval_join;
pub(crate) mod join;
pub(crate) mod keep;
pub(crate) mod keyed_snapshots;
pub(crate) mod over;
pub(crate) mod reduce;
pub(crate) mod sessions;
pub(crate) mod sink;
pub(crate) mod source;
mod topk;
pub(crate) mod topn;
pub(crate) mod window;

use crate::convert::batch_to_rows;
use crate::errors::{ErrorSlot, ExecutionError};
use crate::progress::Progress;
use arrow::record_batch::RecordBatch;
use differential_dataflow::{AsCollection, VecCollection};
use sluice_compiler::physical::TopKStrategy;
use sluice_compiler::{Datum, PhysicalPlan, Row};
use sluice_connectors::{Registry, WorkerContext};
use sluice_gpu::ColumnarKernels;
use std::sync::Arc;
use std::time::Instant;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::{source as timely_source, Operator, OutputBuilder};
use timely::dataflow::{Scope, Stream};
use timely::progress::operate::FrontierInterest;

/// Timely time: event time in ms for watermarked sources, else 0 or processing-time ms.
pub(crate) type Time = u64;
/// Differential multiplicity.
pub(crate) type Diff = isize;
/// A collection of rows.
pub(crate) type Rows<'s> = VecCollection<'s, Time, Row, Diff>;
/// A collection of errors.
pub(crate) type Errs<'s> = VecCollection<'s, Time, ExecutionError, Diff>;

/// An Arrow batch with the timely time its rows carry.
#[derive(Clone, Debug)]
pub(crate) struct TimedBatch {
    /// The rows.
    pub(crate) batch: RecordBatch,
    /// Their time.
    pub(crate) time: Time,
}

/// A stream of batches (stateless stages right after a source; never exchanged).
pub(crate) type Batches<'s> = Stream<'s, Time, Vec<TimedBatch>>;

/// A rendered node: still columnar, or rows.
pub(crate) enum Rendered<'s> {
    /// Batches of the node's schema.
    Batches(Batches<'s>),
    /// A row collection.
    Rows(Rows<'s>),
}

/// A stream of results: rows (or other data) and errors, before the split.
pub(crate) type ResultStream<'s, D> =
    Stream<'s, Time, Vec<(Result<D, ExecutionError>, Time, Diff)>>;
/// An output handle of updates of `D`.
type UpdateOutput<D> = OutputBuilder<Time, CapacityContainerBuilder<Vec<(D, Time, Diff)>>>;

/// What every operator of one worker's dataflow shares.
pub(crate) struct Context<'s> {
    /// The dataflow scope.
    pub(crate) scope: Scope<'s, Time>,
    /// Which worker of how many.
    pub(crate) worker: WorkerContext,
    /// Connectors.
    pub(crate) registry: Registry,
    /// Rows per source poll.
    pub(crate) batch_size: usize,
    /// The process exits when the run ends: state is left to the OS ([`release`]).
    pub(crate) exit_after_run: bool,
    /// Live counters.
    pub(crate) progress: Arc<Progress>,
    /// Errors raised outside the errs collections, and the cancel flag.
    pub(crate) errors: ErrorSlot,
    /// When the run started (processing-time epochs).
    pub(crate) start: Instant,
    /// Columnar kernels for the batch stages.
    pub(crate) kernels: Arc<dyn ColumnarKernels>,
    /// Every errs collection rendered so far.
    pub(crate) errs: Vec<Errs<'s>>,
    /// The run's checkpoint coordinator (checkpointed runs only).
    pub(crate) ckpt: Option<Arc<crate::checkpoint::Coordinator>>,
    /// The checkpoint the run restores from.
    pub(crate) restored: Option<Arc<crate::checkpoint::Restored>>,
    /// The stateful operators rebuilt at a restore from what their inputs re-emit, with
    /// no checkpoint of their own (`sluice_compiler::state::rebuilt_operators`).
    pub(crate) rebuilt: Arc<std::collections::BTreeSet<String>>,
    /// The output being rendered (its index in the plan) and the EXPLAIN PHYSICAL
    /// position of the next node rendered in it: the key of each node's row counter
    /// (`instance::operator_key`).
    pub(crate) output_index: usize,
    pub(crate) node_seq: usize,
    /// Source operators rendered so far on this worker (format-2 checkpoint keys).
    pub(crate) source_seq: usize,
    /// Reads of each source id so far on this worker (their checkpoint keys).
    pub(crate) source_reads: std::collections::BTreeMap<String, usize>,
    /// Stateful operators rendered so far on this worker (their checkpoint keys).
    pub(crate) state_seq: usize,
    /// Row sub-plans rendered so far, with their rows: a sub-plan that occurs again
    /// (structurally equal, see `PhysicalPlan::shared_subplans`) reuses them, so its
    /// sources and state exist once (and take one `source_seq`/`state_seq` each, the
    /// same on every run of the plan).
    pub(crate) shared: Vec<(PhysicalPlan, Rows<'s>)>,
    /// The flow-control handle of the source rendered last ([`Context::render_fed`]).
    pub(crate) last_source: Option<std::rc::Rc<flow::SourceFlow>>,
    /// This worker's event-time sources, aligned (see `flow`).
    pub(crate) alignment: std::rc::Rc<flow::Alignment>,
}

/// The nodes of `plan` as EXPLAIN PHYSICAL prints them (every occurrence).
fn plan_nodes(plan: &PhysicalPlan) -> usize {
    1 + plan.inputs().into_iter().map(plan_nodes).sum::<usize>()
}

/// A pre-aggregated window aggregate's columns in its partial rows (which hold its
/// group columns in order): the window end's, and the strategy with its pane columns
/// renumbered. `None` when a window column is not grouped by (`lower` then does not
/// pre-aggregate).
fn partial_layout(
    group_by: &[usize],
    window_end_col: usize,
    strategy: sluice_compiler::WindowStrategy,
) -> Option<(usize, sluice_compiler::WindowStrategy)> {
    use sluice_compiler::WindowStrategy;
    let at = |c: usize| group_by.iter().position(|g| *g == c);
    let end = at(window_end_col)?;
    let strategy = match strategy {
        WindowStrategy::HopByPane {
            slide_ms,
            size_ms,
            pane_ms,
            start_col,
            time_col,
        } => WindowStrategy::HopByPane {
            slide_ms,
            size_ms,
            pane_ms,
            start_col: at(start_col)?,
            time_col: match time_col {
                Some(c) => Some(at(c)?),
                None => None,
            },
        },
        WindowStrategy::Tumble | WindowStrategy::Generic => strategy,
        WindowStrategy::TimeKeyed | WindowStrategy::Session { .. } => return None,
    };
    Some((end, strategy))
}

/// Lets go of an operator's state once its input is complete: dropped, or, when the
/// process exits after the run (`exit_after_run`), left to the OS without freeing its
/// entries one by one.
pub(crate) fn release<T>(state: T, exit_after_run: bool) {
    if exit_after_run {
        std::mem::forget(state);
    } else {
        drop(state);
    }
}

impl<'s> Context<'s> {
    /// Renders the stateful operator `state_key` with `f`: as in a run without
    /// checkpoints when it is rebuilt at a restore (it registers, snapshots and restores
    /// nothing; its inputs, rendered before, checkpoint as usual).
    fn checkpointed_unless_rebuilt<R>(
        &mut self,
        state_key: &str,
        f: impl FnOnce(&mut Self) -> R,
    ) -> R {
        if !self.rebuilt.contains(state_key) {
            return f(self);
        }
        let ckpt = self.ckpt.take();
        let restored = self.restored.take();
        let out = f(self);
        self.ckpt = ckpt;
        self.restored = restored;
        out
    }

    /// A stateful operator whose checkpoint key is `key`: registers it with the run's
    /// checkpoints (its sequence number names its snapshot objects) and decodes the
    /// snapshots it restores — every old worker's with `all_workers` (the operator
    /// keeps the keys this worker owns at the new worker count), else this worker's
    /// share. A snapshot that cannot be decoded is raised as an error and skipped.
    pub(crate) fn stateful<S: serde::de::DeserializeOwned>(
        &mut self,
        key: &str,
        operator: &str,
        version: u32,
        all_workers: bool,
    ) -> (usize, Vec<S>) {
        self.stateful_chains(key, all_workers, |chain| {
            crate::checkpoint::decode_whole(operator, version, chain)
        })
    }

    /// [`Context::stateful`] for an operator that also writes incremental snapshots:
    /// `decode` turns each old worker's snapshot chain (a full snapshot, then deltas)
    /// into its state.
    pub(crate) fn stateful_chains<S>(
        &mut self,
        key: &str,
        all_workers: bool,
        decode: impl Fn(&[&[u8]]) -> Result<S, ExecutionError>,
    ) -> (usize, Vec<S>) {
        let seq = self.state_seq;
        self.state_seq += 1;
        if let Some(c) = &self.ckpt {
            c.register_state(key, self.worker.worker);
        }
        let share = if all_workers {
            WorkerContext {
                worker: 0,
                workers: 1,
            }
        } else {
            self.worker
        };
        let mut restored = Vec::new();
        if let Some(r) = &self.restored {
            for chain in r.state_for(key, "", share) {
                match decode(&chain) {
                    Ok(s) => restored.push(s),
                    Err(e) => self.errors.raise(e),
                }
            }
        }
        (seq, restored)
    }

    /// Renders `plan` as rows, returning its oks (errs go to `self.errs`).
    pub(crate) fn render(&mut self, plan: &PhysicalPlan) -> Rows<'s> {
        let rendered = self.render_any(plan);
        self.rows_of(rendered, plan)
    }

    /// The pre-aggregation of a `Reduce`'s input (see `reduce`): each batch grouped by
    /// the columnar kernels into partial rows; an input already in rows (not planned
    /// so, but handled) becomes one partial row per row.
    fn render_partial(
        &mut self,
        input: Rendered<'s>,
        group_by: &[usize],
        aggs: &[sluice_compiler::AggregateCall],
        types: &[sluice_catalogs::SqlType],
    ) -> Rows<'s> {
        match input {
            Rendered::Batches(batches) => {
                let kernels = self.kernels.clone();
                let progress = self.progress.clone();
                let partial_types = sluice_compiler::partial::partial_types(types, group_by, aggs);
                let (group_by, aggs, types) = (group_by.to_vec(), aggs.to_vec(), types.to_vec());
                let (rows, errs) = fallible_operator(
                    batches,
                    "PartialAggregate",
                    move |b: TimedBatch, oks, errs| {
                        let partial = kernels
                            .partial_aggregate(
                                &b.batch,
                                &group_by,
                                &aggs,
                                &types,
                                progress.device_metrics(),
                            )
                            .map_err(|e| crate::convert::kernel_error("PartialAggregate", e))
                            .and_then(|p| batch_to_rows(&p, &partial_types, "PartialAggregate"));
                        match partial {
                            Ok(rows) => oks.extend(rows.into_iter().map(|r| (r, b.time, 1))),
                            Err(e) => errs.push((e, b.time, 1)),
                        }
                    },
                );
                self.errs.push(errs);
                rows.as_collection()
            }
            Rendered::Rows(rows) => {
                let aggregates = crate::accum::Aggregates::new(aggs, types);
                let group_by = group_by.to_vec();
                rows.map(move |row| aggregates.partial_of_row(&row, &group_by))
            }
        }
    }

    /// A rendered `plan` as rows.
    fn rows_of(&mut self, rendered: Rendered<'s>, plan: &PhysicalPlan) -> Rows<'s> {
        match rendered {
            Rendered::Rows(rows) => rows,
            Rendered::Batches(batches) => {
                let types = plan.schema().types();
                let (rows, errs) =
                    fallible_operator(batches, "BatchToRows", move |b: TimedBatch, oks, errs| {
                        match batch_to_rows(&b.batch, &types, "BatchToRows") {
                            Ok(rows) => oks.extend(rows.into_iter().map(|r| (r, b.time, 1))),
                            Err(e) => errs.push((e, b.time, 1)),
                        }
                    });
                self.errs.push(errs);
                rows.as_collection()
            }
        }
    }

    /// Renders `plan`: sources and the stateless stages after them stay columnar. Every
    /// node's output is counted (rows, all workers: `Progress::operator_counter`) under
    /// its EXPLAIN PHYSICAL position, one counter add per batch.
    pub(crate) fn render_any(&mut self, plan: &PhysicalPlan) -> Rendered<'s> {
        use timely::dataflow::operators::core::Inspect;
        let key = sluice_compiler::instance::operator_key(self.output_index, self.node_seq);
        self.node_seq += 1;
        let rendered = self.render_node(plan);
        let counter = self.progress.operator_counter(key);
        match rendered {
            Rendered::Batches(batches) => Rendered::Batches(batches.inspect_core(move |event| {
                if let Ok((_, data)) = event {
                    let n: usize = data.iter().map(|b| b.batch.num_rows()).sum();
                    counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
            })),
            Rendered::Rows(rows) => Rendered::Rows(rows.inspect_batch(move |_, data| {
                counter.fetch_add(data.len() as u64, std::sync::atomic::Ordering::Relaxed);
            })),
        }
    }

    /// [`Context::render_any`] of one node, uncounted.
    fn render_node(&mut self, plan: &PhysicalPlan) -> Rendered<'s> {
        match plan {
            PhysicalPlan::Source {
                table,
                projection,
                filters,
            } => Rendered::Batches(source::render_source(self, table, projection, filters)),
            PhysicalPlan::Calc {
                input,
                predicate,
                project,
                ..
            } => {
                let input_schema = input.schema();
                match self.render_any(input) {
                    Rendered::Batches(batches) => Rendered::Batches(calc::render_calc_batches(
                        self,
                        batches,
                        predicate.clone(),
                        project.clone(),
                        input_schema,
                        plan.schema(),
                    )),
                    Rendered::Rows(rows) => Rendered::Rows(calc::render_calc(
                        self,
                        rows,
                        predicate.as_ref(),
                        project.as_deref(),
                        &input_schema.types(),
                    )),
                }
            }
            PhysicalPlan::WindowAssign {
                input,
                kind,
                time_col,
            } => match self.render_any(input) {
                Rendered::Batches(batches) => {
                    Rendered::Batches(window::render_window_assign_batches(
                        self,
                        batches,
                        *kind,
                        *time_col,
                        plan.schema(),
                    ))
                }
                Rendered::Rows(rows) => {
                    Rendered::Rows(window::render_window_assign(self, rows, *kind, *time_col))
                }
            },
            other => Rendered::Rows(self.render_stateful(other)),
        }
    }

    /// Renders a node that runs on rows, once per distinct sub-plan.
    fn render_stateful(&mut self, plan: &PhysicalPlan) -> Rows<'s> {
        if let Some((_, rows)) = self.shared.iter().find(|(p, _)| p == plan) {
            // Rendered (and counted) where it first occurs; EXPLAIN prints it again.
            self.node_seq += plan_nodes(plan).saturating_sub(1);
            return rows.clone();
        }
        let rows = self.render_stateful_once(plan);
        if plan.is_shareable() {
            self.shared.push((plan.clone(), rows.clone()));
        }
        rows
    }

    /// Renders the input of a stateful operator, with a [`flow::FlowConsumer`] of the
    /// source feeding it when that is exactly one source through stateless stages
    /// (see `flow`): a rendered input reused from [`Context::shared`] has none.
    /// `frees_by_event_time`: the operator frees its state as the watermark passes (its
    /// source then aligns with the job's other event-time sources).
    fn render_fed(
        &mut self,
        plan: &PhysicalPlan,
        frees_by_event_time: bool,
    ) -> (Rows<'s>, Option<flow::FlowConsumer>) {
        let (rendered, consumer) = self.render_fed_any(plan, frees_by_event_time);
        (self.rows_of(rendered, plan), consumer)
    }

    /// [`Context::render_fed`], leaving a columnar input as batches.
    fn render_fed_any(
        &mut self,
        plan: &PhysicalPlan,
        frees_by_event_time: bool,
    ) -> (Rendered<'s>, Option<flow::FlowConsumer>) {
        fn one_source_statelessly(plan: &PhysicalPlan) -> bool {
            match plan {
                PhysicalPlan::Source { .. } => true,
                PhysicalPlan::Calc { input, .. }
                | PhysicalPlan::WindowAssign { input, .. }
                | PhysicalPlan::SessionAssign { input, .. } => one_source_statelessly(input),
                _ => false,
            }
        }
        self.last_source = None;
        let rows = self.render_any(plan);
        let consumer = self
            .last_source
            .take()
            .filter(|_| one_source_statelessly(plan))
            .map(|source| source.consumer(frees_by_event_time));
        (rows, consumer)
    }

    fn render_stateful_once(&mut self, plan: &PhysicalPlan) -> Rows<'s> {
        match plan {
            PhysicalPlan::Source { .. }
            | PhysicalPlan::Calc { .. }
            | PhysicalPlan::WindowAssign { .. } => self.render(plan),
            PhysicalPlan::Values { rows, .. } => {
                let rows = rows.clone();
                constant(self.scope, "Values", rows)
            }
            PhysicalPlan::SessionAssign {
                input,
                partition_by,
                time_col,
                gap_ms,
            } => {
                let rows = self.render(input);
                window::render_session_assign(rows, partition_by.clone(), *time_col, *gap_ms)
            }
            PhysicalPlan::WindowAggregate {
                input,
                group_by,
                aggs,
                window_end_col,
                strategy,
                strategies,
                preaggregate,
            } => {
                let types = input.schema().types();
                // Decided by `lower`; a plan serialized before the field existed has none.
                let strategies = if strategies.len() == aggs.len() {
                    strategies.clone()
                } else {
                    sluice_compiler::lower::agg_strategies(
                        aggs,
                        &types,
                        !sluice_compiler::lower::is_updating(input),
                    )
                };
                let state_key = sluice_compiler::state::operator_id(plan);
                // Pre-aggregated: the operator reads partial rows, whose columns are the
                // group columns (the window columns among them) in order.
                let partial = if *preaggregate {
                    partial_layout(group_by, *window_end_col, *strategy)
                } else {
                    None
                };
                let (rows, flow, group_by, window_end_col, strategy, fold) = match partial {
                    Some((end, strategy)) => {
                        let (input, flow) = self.render_fed_any(input, true);
                        let rows = self.render_partial(input, group_by, aggs, &types);
                        let fold = crate::accum::Fold::Partial {
                            width: group_by.len(),
                        };
                        (
                            rows,
                            flow,
                            (0..group_by.len()).collect(),
                            end,
                            strategy,
                            fold,
                        )
                    }
                    None => {
                        let (rows, flow) = self.render_fed(input, true);
                        let fold = crate::accum::Fold::Rows;
                        (
                            rows,
                            flow,
                            group_by.clone(),
                            *window_end_col,
                            *strategy,
                            fold,
                        )
                    }
                };
                window::render_window_aggregate(
                    self,
                    &state_key,
                    rows,
                    flow,
                    group_by,
                    aggs,
                    window_end_col,
                    &types,
                    &strategies,
                    strategy,
                    fold,
                )
            }
            PhysicalPlan::Reduce {
                input,
                group_by,
                aggs,
                strategies,
                preaggregate,
            } => {
                let types = input.schema().types();
                let state_key = sluice_compiler::state::operator_id(plan);
                let (rows, flow, group_by) = if *preaggregate {
                    let (input, flow) = self.render_fed_any(input, false);
                    let rows = self.render_partial(input, group_by, aggs, &types);
                    (rows, flow, (0..group_by.len()).collect())
                } else {
                    let (rows, flow) = self.render_fed(input, false);
                    (rows, flow, group_by.clone())
                };
                self.checkpointed_unless_rebuilt(&state_key, |ctx| {
                    reduce::render_reduce(
                        ctx,
                        &state_key,
                        rows,
                        flow,
                        reduce::ReduceSpec {
                            group_by,
                            aggs,
                            strategies,
                            types: &types,
                            partial: *preaggregate,
                        },
                    )
                })
            }
            PhysicalPlan::HashJoin {
                left,
                right,
                kind,
                left_keys,
                right_keys,
                residual,
                interval,
                ..
            } => {
                let state_key = sluice_compiler::state::operator_id(plan);
                let left_types = left.schema().types();
                let right_types = right.schema().types();
                // A time-bounded join frees rows as the watermarks pass.
                let bounded = interval.is_some();
                let (l, left_flow) = self.render_fed(left, bounded);
                let (r, right_flow) = self.render_fed(right, bounded);
                let sides = join::JoinSides {
                    left: l,
                    right: r,
                    left_types,
                    right_types,
                    flows: (left_flow, right_flow),
                };
                if plan.is_symmetric_join() {
                    // Interval bound or append-only inputs: the symmetric hash join.
                    interval_join::render_symmetric_join(
                        self,
                        &state_key,
                        sides,
                        left_keys,
                        right_keys,
                        residual.as_ref(),
                        *interval,
                    )
                } else {
                    // Checkpointed as its inputs (see `keep`).
                    let sides =
                        self.checkpointed_unless_rebuilt(&state_key, |ctx| join::JoinSides {
                            left: keep::render_keep(ctx, &state_key, 0, sides.left),
                            right: keep::render_keep(ctx, &state_key, 1, sides.right),
                            ..sides
                        });
                    join::render_join(self, sides, *kind, left_keys, right_keys, residual.as_ref())
                }
            }
            PhysicalPlan::Union { inputs } => {
                let rendered: Vec<Rows<'s>> = inputs.iter().map(|i| self.render(i)).collect();
                differential_dataflow::collection::concatenate(self.scope, rendered)
            }
            PhysicalPlan::TopN {
                input,
                keys,
                limit,
                offset,
            } => {
                let state_key = sluice_compiler::state::operator_id(plan);
                let rows = self.render(input);
                let rows = self.checkpointed_unless_rebuilt(&state_key, |ctx| {
                    keep::render_keep(ctx, &state_key, 0, rows)
                });
                topn::render_topn(rows, keys.clone(), *limit, *offset)
            }
            PhysicalPlan::TopK {
                input,
                partition_by,
                order_by,
                limit,
                rank_column,
                strategy,
            } => {
                let state_key = sluice_compiler::state::operator_id(plan);
                let (rows, flow) = self.render_fed(input, false);
                let spec = topk::TopKSpec {
                    partition_by: partition_by.clone(),
                    order_by: order_by.clone(),
                    limit: *limit,
                    rank_column: *rank_column,
                };
                self.checkpointed_unless_rebuilt(&state_key, |ctx| {
                    let rows = match strategy {
                        TopKStrategy::Retracting => keep::render_keep(ctx, &state_key, 0, rows),
                        TopKStrategy::Monotonic => rows,
                    };
                    topk::render_topk(ctx, &state_key, rows, flow, spec, *strategy)
                })
            }
            PhysicalPlan::Over {
                input,
                partition_by,
                order_by,
                aggs,
                preceding,
            } => {
                let state_key = sluice_compiler::state::operator_id(plan);
                let input_types = input.schema().types();
                let rows = self.render(input);
                let rows = self.checkpointed_unless_rebuilt(&state_key, |ctx| {
                    keep::render_keep(ctx, &state_key, 0, rows)
                });
                let spec = over::OverSpec {
                    partition_by: partition_by.clone(),
                    order_by: order_by.clone(),
                    aggs: aggs.clone(),
                    preceding: preceding.unwrap_or(u64::MAX),
                    input_types,
                };
                over::render_over(self, rows, spec)
            }
        }
    }
}

/// The key made of columns `cols` of `row` (NULL for a column it lacks): its hash is
/// [`key_hash`] of the same columns.
pub(crate) fn key_row(row: &[Datum], cols: &[usize]) -> Row {
    cols.iter()
        .map(|&c| row.get(c).cloned().unwrap_or(Datum::Null))
        .collect()
}

/// The exchange hash of the key made of `cols` of `row`: equal to
/// `differential_dataflow::Hashable::hashed` of that key as a [`Row`] (so routing, and
/// the checkpointed state keyed by it, do not change), without building the key.
pub(crate) fn key_hash(row: &[Datum], cols: &[usize]) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = foldhash::quality::FixedState::with_seed(0).build_hasher();
    // As `<[Datum]>::hash` does: the length, then each element.
    h.write_usize(cols.len());
    for &c in cols {
        row.get(c).unwrap_or(&Datum::Null).hash(&mut h);
    }
    h.finish()
}

/// A hash map keyed by packed rows, probed with the bytes of a packed key
/// (`sluice_compiler::packed::pack_columns` into a reused buffer).
pub(crate) type PackedMap<V> =
    hashbrown::HashMap<sluice_compiler::PackedRow, V, rustc_hash::FxBuildHasher>;

/// A collection holding `rows` once, emitted by worker 0 at time 0.
pub(crate) fn constant<'s>(scope: Scope<'s, Time>, name: &str, rows: Vec<Row>) -> Rows<'s> {
    let worker = scope.index();
    timely_source::<_, CapacityContainerBuilder<Vec<(Row, Time, Diff)>>, _, _>(
        scope,
        name,
        move |capability, _info| {
            let mut capability = Some(capability);
            let mut rows = Some(rows);
            move |output| {
                if let Some(cap) = capability.take() {
                    if worker == 0 {
                        if let Some(rows) = rows.take() {
                            output
                                .session(&cap)
                                .give_iterator(rows.into_iter().map(|r| (r, 0, 1)));
                        }
                    }
                }
            }
        },
    )
    .as_collection()
}

/// A named operator applying `logic` to every update of `input` (times and diffs are
/// the logic's to set; it may emit any number of updates of any type).
pub(crate) fn map_updates<'s, D1, D2, L>(
    input: VecCollection<'s, Time, D1, Diff>,
    name: &str,
    mut logic: L,
) -> VecCollection<'s, Time, D2, Diff>
where
    D1: Clone + 'static,
    D2: Clone + 'static,
    L: FnMut(D1, Time, Diff, &mut Vec<(D2, Time, Diff)>) + 'static,
{
    input
        .inner
        .unary::<CapacityContainerBuilder<Vec<(D2, Time, Diff)>>, _, _, _>(
            Pipeline,
            name,
            move |_cap, _info| {
                let mut buffer = Vec::new();
                move |input, output| {
                    input.for_each_stamp(|cap, data| {
                        for (d, t, r) in data.flat_map(|d| d.drain(..)) {
                            logic(d, t, r, &mut buffer);
                        }
                        if !buffer.is_empty() {
                            output.session(&cap).give_iterator(buffer.drain(..));
                        }
                    });
                }
            },
        )
        .as_collection()
}

/// A named operator with two outputs: `logic` maps each input item to any number of
/// output items and errors.
pub(crate) fn fallible_operator<'s, D1, D2, L>(
    input: Stream<'s, Time, Vec<D1>>,
    name: &str,
    mut logic: L,
) -> (Stream<'s, Time, Vec<D2>>, Errs<'s>)
where
    D1: Clone + 'static,
    D2: Clone + 'static,
    L: FnMut(D1, &mut Vec<D2>, &mut Vec<(ExecutionError, Time, Diff)>) + 'static,
{
    let mut builder = OperatorBuilder::new(name.to_owned(), input.scope());
    let mut input = builder.new_input(input, Pipeline);
    builder.set_notify_for(0, FrontierInterest::Never);
    let (oks, oks_stream) = builder.new_output::<Vec<D2>>();
    let (errs, errs_stream) = builder.new_output::<Vec<(ExecutionError, Time, Diff)>>();
    let mut oks: OutputBuilder<Time, CapacityContainerBuilder<Vec<D2>>> = OutputBuilder::from(oks);
    let mut errs: UpdateOutput<ExecutionError> = OutputBuilder::from(errs);
    builder.build(move |_capabilities| {
        let mut ok_buffer = Vec::new();
        let mut err_buffer = Vec::new();
        move |_frontiers| {
            let mut oks = oks.activate();
            let mut errs = errs.activate();
            input.for_each_stamp(|cap, data| {
                for d in data.flat_map(|d| d.drain(..)) {
                    logic(d, &mut ok_buffer, &mut err_buffer);
                }
                if !ok_buffer.is_empty() {
                    oks.session(&cap).give_iterator(ok_buffer.drain(..));
                }
                if !err_buffer.is_empty() {
                    errs.session(&cap).give_iterator(err_buffer.drain(..));
                }
            });
        }
    });
    (oks_stream, errs_stream.as_collection())
}

/// A named operator splitting results into an oks and an errs collection.
pub(crate) fn split_results<'s, D>(
    input: ResultStream<'s, D>,
    name: &str,
) -> (VecCollection<'s, Time, D, Diff>, Errs<'s>)
where
    D: Clone + 'static,
{
    let (oks, errs) = fallible_operator(input, name, |(d, t, r), oks, errs| match d {
        Ok(d) => oks.push((d, t, r)),
        Err(e) => errs.push((e, t, r)),
    });
    (oks.as_collection(), errs)
}

/// [`map_updates`] producing results, split into oks and errs (errs kept in `ctx`).
pub(crate) fn map_fallible<'s, D1, D2, L>(
    ctx: &mut Context<'s>,
    input: VecCollection<'s, Time, D1, Diff>,
    name: &str,
    logic: L,
) -> VecCollection<'s, Time, D2, Diff>
where
    D1: Clone + 'static,
    D2: Clone + 'static,
    L: FnMut(D1, Time, Diff, &mut Vec<(Result<D2, ExecutionError>, Time, Diff)>) + 'static,
{
    let results = map_updates(input, name, logic);
    let (oks, errs) = split_results(results.inner, &format!("{name}: split errors"));
    ctx.errs.push(errs);
    oks
}

#[cfg(test)]
mod tests {
    use super::key_hash;
    use differential_dataflow::Hashable;
    use sluice_compiler::{Datum, Row, F64};

    #[test]
    fn key_hash_is_the_hash_of_the_key_row() {
        let row: Row = vec![
            Datum::Int(7),
            Datum::Str("bid".into()),
            Datum::Null,
            Datum::Float(F64(0.5)),
            Datum::Timestamp(1_700_000_000_000),
        ];
        for cols in [
            vec![],
            vec![0],
            vec![1, 0],
            vec![4, 2, 3],
            vec![0, 1, 2, 3, 4],
        ] {
            let key: Row = cols.iter().map(|&c| row[c].clone()).collect();
            assert_eq!(key_hash(&row, &cols), key.hashed(), "{cols:?}");
        }
    }

    /// A map keyed by packed rows finds a key through the packed columns of an input
    /// row, and only that key.
    #[test]
    fn packed_probes_find_their_key_rows() {
        use super::{key_row, PackedMap};
        use sluice_compiler::packed::pack_columns;
        use sluice_compiler::PackedRow;
        let rows: Vec<Row> = (0..50)
            .map(|i| {
                vec![
                    Datum::Int(i % 7),
                    Datum::Str(format!("k{}", i % 5)),
                    if i % 3 == 0 {
                        Datum::Null
                    } else {
                        Datum::Int(i)
                    },
                ]
            })
            .collect();
        let mut probe = Vec::new();
        for cols in [vec![], vec![0], vec![1, 0], vec![2, 1, 0]] {
            let mut map: PackedMap<usize> = PackedMap::default();
            for (i, row) in rows.iter().enumerate() {
                map.entry(PackedRow::pack(&key_row(row, &cols)))
                    .or_insert(i);
            }
            for row in &rows {
                let key = PackedRow::pack(&key_row(row, &cols));
                pack_columns(row, &cols, &mut probe);
                assert_eq!(map.get(probe.as_slice()), map.get(&key), "{cols:?} {row:?}");
                assert!(map.get(probe.as_slice()).is_some());
            }
            let absent = vec![Datum::Int(99), Datum::Str("none".into()), Datum::Int(-1)];
            pack_columns(&absent, &cols, &mut probe);
            assert_eq!(map.get(probe.as_slice()).is_some(), cols.is_empty());
        }
    }
}
