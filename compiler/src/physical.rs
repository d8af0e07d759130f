//! The dataflow plan: how a compiled script runs. Serializable (serde), so the master
//! can store it and ship it to worker instances; `sluice-dataflow` renders it into a
//! timely/differential dataflow. Printed by `EXPLAIN PHYSICAL`.
//!
//! Execution model, which each variant's docs refer to:
//! - Rows carry a timely timestamp (`u64`). Sources with a declared watermark emit
//!   rows at the current watermark (event-time ms), so the frontier *is* the
//!   watermark; bounded sources without one emit at time 0; unbounded sources without
//!   one emit at processing-time epochs.
//! - Stateless variants run on Arrow record batches straight from sources (and on rows,
//!   converted to batches, after stateful ones); stateful ones run on differential
//!   collections of [`sluice_expr::datum::Row`], exchanged between workers by key hash.

use crate::plan::{
    aggregate_schema, concat_schemas, with_over_columns, with_rank_column, with_window_columns,
};
use crate::plan::{JoinKind, WindowKind};
use serde::{Deserialize, Serialize};
use sluice_catalogs::{Field, Schema, TableDescriptor};
use sluice_expr::datum::Row;
pub use sluice_expr::expr::AggStrategy;
use sluice_expr::expr::{AggregateCall, ScalarExpr, SortKey};

/// A whole job: every `INSERT INTO` of the script, and the final `SELECT` if any.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataflowPlan {
    /// Outputs in script order.
    pub outputs: Vec<Output>,
}

impl DataflowPlan {
    /// Calls `f` on every table the plan reads or writes (sources and sinks), in plan
    /// order: how secret option values are sealed and opened.
    pub fn for_each_table_mut(&mut self, f: &mut dyn FnMut(&mut TableDescriptor)) {
        fn walk(p: &mut PhysicalPlan, f: &mut dyn FnMut(&mut TableDescriptor)) {
            if let PhysicalPlan::Source { table, .. } = p {
                f(table);
            }
            for i in p.inputs_mut() {
                walk(i, f);
            }
        }
        for o in &mut self.outputs {
            walk(&mut o.plan, f);
            if let SinkTarget::Table(t) = &mut o.target {
                f(t);
            }
        }
    }
}

/// Where an output's rows go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SinkTarget {
    /// `INSERT INTO table`: the table's connector writes the rows.
    Table(TableDescriptor),
    /// A final `SELECT`: rows are gathered to the client, sorted by `order` and cut to
    /// `offset`/`limit` once the input is complete.
    Collect {
        /// ORDER BY keys over the output columns (empty: unordered).
        order: Vec<SortKey>,
        /// LIMIT.
        limit: Option<u64>,
        /// OFFSET.
        offset: u64,
    },
}

/// One output of a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// The destination.
    pub target: SinkTarget,
    /// The plan producing its rows.
    pub plan: PhysicalPlan,
    /// Its schema (for a table target, the table's schema: the plan's rows are cast to it).
    /// For a `Collect` target the plan's rows may carry extra trailing columns beyond
    /// `schema.len()`: sort-only columns of an `ORDER BY` on an expression that is not
    /// selected (`SELECT a FROM t ORDER BY b + 1`); `order` may refer to them, and they
    /// are dropped after sorting (only the first `schema.len()` columns are the result).
    pub schema: Schema,
    /// True when the plan may retract rows it emitted (non-windowed aggregates, outer
    /// joins). How a table sink then takes them is `sink`.
    pub updating: bool,
    /// How a table sink writes the rows, decided by the compiler from `updating`, the
    /// table's [`sluice_catalogs::SinkKind`] and whether every source is bounded.
    #[serde(default)]
    pub sink: SinkMode,
}

/// How a table sink writes its output (decided in `compile`; EXPLAIN PHYSICAL shows it
/// under the sink).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SinkMode {
    /// An append-only result (or a discarding sink): each time's rows are written once
    /// the input has passed that time. State: the rows of times not yet complete.
    #[default]
    Append,
    /// An updating result of bounded sources into a sink that only appends (files):
    /// consolidated as it arrives and written once, when the input is complete.
    /// State: one count per row of the current result.
    Final,
    /// An updating result into a keyed sink (Kafka with `sink.key.fields`): rows are
    /// exchanged by the key; when the input passes a time, each key whose rows changed
    /// at that time gets its new row (an upsert) or, when it has none left, a delete.
    Upsert {
        /// Key columns (indexes into the output/table schema).
        key: Vec<usize>,
        /// The plan's rows are unique by `key` (it contains the plan's unique key, e.g.
        /// the GROUP BY columns): a time's changes of a key say its new row, so the sink
        /// keeps no state. Otherwise the sink keeps each key's live rows (state:
        /// O(result)) and writes the latest one still live, or a delete.
        unique: bool,
    },
    /// An updating result into a sink that shows changes (`print`): when the input
    /// passes a time, its consolidated retractions are written as deletes, then its
    /// insertions. State: the rows of times not yet complete.
    Changelog,
}

/// How a [`PhysicalPlan::WindowAggregate`] keeps its state; decided in `lower`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WindowStrategy {
    /// TUMBLE: each input row carries its one window. State: one accumulator (or, for
    /// aggregates without a running state, one value multiset) per open (window, group).
    Tumble,
    /// An aggregate grouped by a column that says when its rows come: another window
    /// aggregate's `window_end`, at which that aggregate emits every row of the window
    /// (Nexmark q5's `MAX(num) … GROUP BY starttime, endtime` over a window aggregate).
    /// Each group's rows all arrive at that one time, so the group is complete once the
    /// watermark passes it: emitted once, state freed — an append-only aggregate instead
    /// of a retracting `Reduce` that would keep every group. State: as `Tumble`.
    TimeKeyed,
    /// Any window assignment, rows as assigned (a HOP `WindowAssign` copies each row
    /// into size/slide windows). State: one accumulator or value multiset per open
    /// (window, group): size/slide updates per row.
    #[default]
    Generic,
    /// HOP by pane: the `WindowAssign` below assigns each row to one pane (a TUMBLE of
    /// `pane_ms` = gcd(size, slide)), so the input's window columns hold the *pane*
    /// start/end; the operator keeps a running accumulator per (pane, group), assembles
    /// each window `[s, s + size)` from its size/pane panes when the watermark passes
    /// `s + size`, emits the window's own `window_start`/`window_end`/`window_time`, and
    /// frees panes no open window needs. Only for aggregates whose running states merge
    /// (COUNT, exact SUM/AVG, MIN/MAX on append-only input).
    /// State: one running accumulator per (open pane, group): size/pane panes per group.
    HopByPane {
        /// HOP slide in ms.
        slide_ms: i64,
        /// HOP size in ms.
        size_ms: i64,
        /// Pane length in ms: gcd(size, slide).
        pane_ms: i64,
        /// Input column holding the pane start (`window_end_col` holds the pane end).
        start_col: usize,
        /// Input column holding the pane's `window_time`, when grouped by.
        time_col: Option<usize>,
    },
    /// SESSION, incremental: the `Calc` below gives each row its own proto-session
    /// `[ts, ts + gap)` in the window columns (rows with a NULL time dropped); the
    /// operator, rows exchanged by the partition key (the group columns other than the
    /// window's), keeps per key its open sessions with running accumulators, merges a
    /// row's proto-session with every session it overlaps (a row bridging two sessions
    /// merges them), and emits each session once, with no retraction, when the watermark
    /// passes its end (last ts + gap), then frees it. A row whose proto-session ended
    /// at or before the watermark is late: counted and dropped. Only for aggregates
    /// whose running states merge, grouped by exactly the session's partition columns
    /// and its start and end.
    /// State: one running accumulator per open (session, partition key).
    Session {
        /// Inactivity gap in ms.
        gap_ms: i64,
        /// Input column holding the (proto-)session start (`window_end_col` its end).
        start_col: usize,
        /// Input column holding `window_time`, when grouped by.
        time_col: Option<usize>,
    },
}

/// The time bound of an interval join (an inner [`PhysicalPlan::HashJoin`]): its
/// residual implies
///
/// ```text
/// right[right_time] + lower_ms  <=  left[left_time]  <=  right[right_time] + upper_ms
/// ```
///
/// and both columns are *time-bounded*: on every row not behind the watermark, the
/// value (TIMESTAMP(3), ms) is at least the row's timely time (a watermarked source's
/// event-time column, a window end computed from one, a window aggregate's window end;
/// see `lower::time_bounded_columns`). So once the right input's frontier `F` passes
/// `l - lower_ms` (and `F > 0`), no future right row can match a left row with time `l`,
/// and it is freed; a right row with time `r` is freed once the left frontier passes
/// `r + upper_ms`. Rows behind the watermark (late) still probe what is held, but
/// pairs whose partner was already freed are not produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IntervalJoin {
    /// The left input's time column.
    pub left_time: usize,
    /// The right input's time column.
    pub right_time: usize,
    /// `left_time - right_time >= lower_ms`.
    pub lower_ms: i64,
    /// `left_time - right_time <= upper_ms`.
    pub upper_ms: i64,
}

/// A dataflow operator tree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhysicalPlan {
    /// Read a table through its connector; each worker reads its share of the splits.
    /// The source applies `projection` and `filters` (over the projected columns)
    /// before emitting batches. State: the source position only.
    Source {
        /// The table.
        table: TableDescriptor,
        /// Table column indexes read, in output order.
        projection: Vec<usize>,
        /// Pushed-down predicates over the projected columns.
        filters: Vec<ScalarExpr>,
    },
    /// Literal rows, emitted by worker 0 at time 0. State: none.
    Values {
        /// Output schema.
        schema: Schema,
        /// The rows.
        rows: Vec<Row>,
    },
    /// A fused stateless stage: keep rows where `predicate` is TRUE, then compute
    /// `project` (or pass columns through when `None`). Columnar on batches; may be
    /// placed on the GPU later. State: none.
    Calc {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Row filter.
        predicate: Option<ScalarExpr>,
        /// Output expressions, over the input.
        project: Option<Vec<ScalarExpr>>,
        /// Output names, one per `project` expression (empty when `project` is `None`).
        names: Vec<String>,
    },
    /// TUMBLE/HOP window assignment: appends `window_start`, `window_end`, `window_time`.
    /// State: none.
    WindowAssign {
        /// Input.
        input: Box<PhysicalPlan>,
        /// TUMBLE or HOP.
        kind: WindowKind,
        /// TIMESTAMP(3) column windows are computed on.
        time_col: usize,
    },
    /// SESSION window assignment: rows exchanged by `partition_by`, each partition's rows
    /// grouped into sessions; appends `window_start`, `window_end`, `window_time`.
    /// State: all rows of each partition (differential arrangement).
    SessionAssign {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Partition columns.
        partition_by: Vec<usize>,
        /// TIMESTAMP(3) column.
        time_col: usize,
        /// Inactivity gap in ms.
        gap_ms: i64,
    },
    /// Event-time window aggregate: groups by `group_by` (which includes the window's
    /// start and end columns); a group's row is emitted once, when the frontier
    /// (watermark) passes the value in `window_end_col`, and its state is then freed.
    /// Rows arriving after their window closed are late: counted and dropped.
    /// Output: group columns, then aggregates (as `Reduce`). Append-only.
    /// State: see [`WindowStrategy`], chosen in `lower`.
    WindowAggregate {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Group columns (window start/end included).
        group_by: Vec<usize>,
        /// Aggregates.
        aggs: Vec<AggregateCall>,
        /// Input column holding the window end (TIMESTAMP(3)).
        window_end_col: usize,
        /// How rows reach their windows and what state is kept.
        #[serde(default)]
        strategy: WindowStrategy,
        /// Per aggregate, the state it keeps per (window or pane, group), as `Reduce`'s
        /// (`accumulate`: a running state; otherwise a multiset of values), decided by
        /// `lower::agg_strategies` from whether the input retracts. Empty in plans
        /// serialized before it existed: the dataflow then derives it the same way.
        #[serde(default)]
        strategies: Vec<AggStrategy>,
        /// Set by `lower` as for [`PhysicalPlan::Reduce`]: every aggregate keeps a
        /// running state, the input is columnar and the window columns are grouped by
        /// (TUMBLE, HOP), so each input batch is grouped where it was read and one
        /// partial row per (batch, window or pane, group) is exchanged
        /// ([`sluice_expr::partial`]). Late rows are counted by the rows a partial row stands
        /// for. The state is the same either way.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        preaggregate: bool,
    },
    /// Incremental grouped aggregate with retractions: rows exchanged by the group key
    /// (all to worker 0 without group columns); per complete time, each changed group
    /// retracts the row it last emitted and emits its new one. Output: group columns,
    /// then aggregates; with no group columns one row even on empty input.
    /// State: per group, its last emitted row and one state per aggregate as
    /// `strategies` says (see [`AggStrategy`]): O(groups) when every strategy is
    /// `Accumulate`, else also O(distinct values per group).
    Reduce {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Group columns.
        group_by: Vec<usize>,
        /// Aggregates.
        aggs: Vec<AggregateCall>,
        /// How each aggregate keeps its state (one per `aggs` entry), decided by
        /// [`crate::lower::reduce`].
        strategies: Vec<AggStrategy>,
        /// Set by [`crate::lower::reduce`] when every aggregate keeps a running state
        /// and the input is columnar: each input batch is grouped where it was read
        /// and one partial row per (batch, group) is exchanged ([`sluice_expr::partial`]).
        /// The state is the same either way.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        preaggregate: bool,
    },
    /// Equi-join on arranged keys (both sides exchanged by key hash), then `residual` on
    /// the joined row; outer kinds add NULL-padded unmatched rows. NULL keys never match.
    /// No keys: both sides on one worker (a cross product). State: both inputs.
    HashJoin {
        /// Left input.
        left: Box<PhysicalPlan>,
        /// Right input.
        right: Box<PhysicalPlan>,
        /// Join kind.
        kind: JoinKind,
        /// Key expressions over the left input.
        left_keys: Vec<ScalarExpr>,
        /// Key expressions over the right input (same count and types).
        right_keys: Vec<ScalarExpr>,
        /// Residual condition over `left ++ right`.
        residual: Option<ScalarExpr>,
        /// Set by [`crate::lower`] for an inner join whose residual bounds one side's
        /// event time by the other's: then each side's rows are held only while a future
        /// row of the other side could still match, and freed as the watermark passes.
        /// State: the rows of each side within the time bound (see [`IntervalJoin`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        interval: Option<IntervalJoin>,
        /// Set by [`crate::lower`] for an inner join of two append-only inputs without an
        /// interval bound: a symmetric hash join, where each arriving row probes the
        /// other side's rows held by key and is then held itself, so every pair is
        /// produced once, by whichever row arrives second, with no sorting or merging.
        /// State: each side's rows by key, freed once the other input is complete (a
        /// bounded table joined with a stream holds only the table).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        append_only: bool,
    },
    /// Concatenation (UNION ALL). State: none.
    Union {
        /// Inputs with identical column types.
        inputs: Vec<PhysicalPlan>,
    },
    /// ORDER BY … LIMIT/OFFSET inside a query (top-N): all rows to one worker, sorted,
    /// cut. State: the input rows (differential reduce on a single key).
    TopN {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Sort keys.
        keys: Vec<SortKey>,
        /// LIMIT.
        limit: Option<u64>,
        /// OFFSET.
        offset: u64,
    },
    /// Per-partition Top-N (`ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)` kept where
    /// the row number is at most `limit`): rows exchanged by the hash of the
    /// `partition_by` columns; per partition, the rows ordered by `order_by` (ties broken
    /// by the whole row) numbered from 1, the first `limit` kept. Output: the input's
    /// columns, then the row number (BIGINT) when `rank_column`. Always updating: when
    /// a partition's top changes at a time, the rows that left it (or whose number
    /// changed) are retracted and the new ones emitted at that time. Without the rank
    /// column, a row entering the top only displaces the last one (no renumbering).
    /// State: see [`TopKStrategy`], chosen by lowering.
    TopK {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Partition columns (empty: one partition, on one worker).
        partition_by: Vec<usize>,
        /// Order within a partition.
        order_by: Vec<SortKey>,
        /// Rows kept per partition.
        limit: u64,
        /// Whether the row number is appended.
        rank_column: bool,
        /// How it runs.
        strategy: TopKStrategy,
    },
    /// OVER aggregate (see the logical node): rows exchanged by the hash of the
    /// `partition_by` columns; a keyed operator holds each partition's rows in order,
    /// and at each complete time recomputes the aggregates of every row of a changed
    /// partition from its frame (the row and up to `preceding` rows before it),
    /// emitting only the output rows that changed. Output: the input's columns, then one
    /// column per aggregate. Updating. State: every live input row and its last output,
    /// per partition (checkpointed as its input, replayed at a restore).
    Over {
        /// Input.
        input: Box<PhysicalPlan>,
        /// Partition columns (empty: one partition, on one worker).
        partition_by: Vec<usize>,
        /// Order within a partition (ties broken by the whole row).
        order_by: Vec<SortKey>,
        /// Aggregates over each row's frame.
        aggs: Vec<AggregateCall>,
        /// Rows before the current one in a frame; `None`: unbounded.
        preceding: Option<u64>,
    },
}

/// How a [`PhysicalPlan::TopK`] runs (Materialize's monotonic/general TopK split;
/// Flink's append-only vs. retract rank operators).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TopKStrategy {
    /// The input never retracts (append-only). A keyed operator processes each time once
    /// the frontier passes it and keeps, per partition, only the current top `limit`
    /// rows: an arriving row either enters (evicting the last) or is dropped at once.
    /// State: at most `limit` rows per partition seen so far.
    Monotonic,
    /// The input may retract: a retracted top row must be replaced by the next best, so
    /// a differential reduce per partition keeps the partition's whole multiset and
    /// recomputes its top at each time it changes. State: every live input row.
    Retracting,
}

impl PhysicalPlan {
    /// True for a `HashJoin` that runs as the symmetric hash join (an inner join with an
    /// interval bound, or of two append-only inputs): state is each side's held rows,
    /// and its output is append-only. Other joins run arranged.
    pub fn is_symmetric_join(&self) -> bool {
        matches!(
            self,
            PhysicalPlan::HashJoin {
                kind: JoinKind::Inner,
                interval,
                append_only,
                ..
            } if interval.is_some() || *append_only
        )
    }

    /// True for the nodes that run on row collections (all but `Source`, `Calc`,
    /// `WindowAssign`, which stay columnar after a source, and `Values`): the nodes a
    /// renderer can compute once and reuse (see [`PhysicalPlan::shared_subplans`]).
    pub fn is_shareable(&self) -> bool {
        !matches!(
            self,
            PhysicalPlan::Source { .. }
                | PhysicalPlan::Calc { .. }
                | PhysicalPlan::WindowAssign { .. }
                | PhysicalPlan::Values { .. }
        )
    }

    /// The common sub-plans of this plan: shareable nodes (see
    /// [`PhysicalPlan::is_shareable`]) that occur more than once, structurally equal,
    /// with their number of occurrences; maximal ones only (the inside of a shared
    /// sub-plan is not listed again). The renderer computes each once and feeds every
    /// occurrence from the same rows; EXPLAIN PHYSICAL marks them `shared ×N`.
    pub fn shared_subplans(&self) -> Vec<(&PhysicalPlan, usize)> {
        fn all<'a>(p: &'a PhysicalPlan, out: &mut Vec<&'a PhysicalPlan>) {
            out.push(p);
            for i in p.inputs() {
                all(i, out);
            }
        }
        fn maximal<'a>(
            p: &'a PhysicalPlan,
            nodes: &[&'a PhysicalPlan],
            out: &mut Vec<(&'a PhysicalPlan, usize)>,
        ) {
            if p.is_shareable() {
                let n = nodes.iter().filter(|q| **q == p).count();
                if n > 1 {
                    if !out.iter().any(|(q, _)| *q == p) {
                        out.push((p, n));
                    }
                    return;
                }
            }
            for i in p.inputs() {
                maximal(i, nodes, out);
            }
        }
        let mut nodes = Vec::new();
        all(self, &mut nodes);
        let mut out = Vec::new();
        maximal(self, &nodes, &mut out);
        out
    }

    /// The direct inputs of this node, mutably.
    pub fn inputs_mut(&mut self) -> Vec<&mut PhysicalPlan> {
        match self {
            PhysicalPlan::Source { .. } | PhysicalPlan::Values { .. } => vec![],
            PhysicalPlan::Calc { input, .. }
            | PhysicalPlan::WindowAssign { input, .. }
            | PhysicalPlan::SessionAssign { input, .. }
            | PhysicalPlan::WindowAggregate { input, .. }
            | PhysicalPlan::Reduce { input, .. }
            | PhysicalPlan::TopN { input, .. }
            | PhysicalPlan::TopK { input, .. }
            | PhysicalPlan::Over { input, .. } => vec![input],
            PhysicalPlan::HashJoin { left, right, .. } => vec![left, right],
            PhysicalPlan::Union { inputs } => inputs.iter_mut().collect(),
        }
    }

    /// The direct inputs of this node.
    pub fn inputs(&self) -> Vec<&PhysicalPlan> {
        match self {
            PhysicalPlan::Source { .. } | PhysicalPlan::Values { .. } => vec![],
            PhysicalPlan::Calc { input, .. }
            | PhysicalPlan::WindowAssign { input, .. }
            | PhysicalPlan::SessionAssign { input, .. }
            | PhysicalPlan::WindowAggregate { input, .. }
            | PhysicalPlan::Reduce { input, .. }
            | PhysicalPlan::TopN { input, .. }
            | PhysicalPlan::TopK { input, .. }
            | PhysicalPlan::Over { input, .. } => vec![input],
            PhysicalPlan::HashJoin { left, right, .. } => vec![left, right],
            PhysicalPlan::Union { inputs } => inputs.iter().collect(),
        }
    }

    /// The output schema of this node (names are for display; types are binding).
    pub fn schema(&self) -> Schema {
        match self {
            PhysicalPlan::Source {
                table, projection, ..
            } => Schema::new(
                projection
                    .iter()
                    .map(|&i| table.schema.fields[i].clone())
                    .collect(),
            ),
            PhysicalPlan::Values { schema, .. } => schema.clone(),
            PhysicalPlan::Calc {
                input,
                project,
                names,
                ..
            } => {
                let input_schema = input.schema();
                match project {
                    None => input_schema,
                    Some(exprs) => {
                        let types = input_schema.types();
                        Schema::new(
                            exprs
                                .iter()
                                .enumerate()
                                .map(|(i, e)| {
                                    let name =
                                        names.get(i).cloned().unwrap_or_else(|| format!("c{i}"));
                                    Field::new(name, e.ty(&types))
                                })
                                .collect(),
                        )
                    }
                }
            }
            PhysicalPlan::WindowAssign { input, .. }
            | PhysicalPlan::SessionAssign { input, .. } => with_window_columns(input.schema()),
            PhysicalPlan::WindowAggregate {
                input,
                group_by,
                aggs,
                ..
            }
            | PhysicalPlan::Reduce {
                input,
                group_by,
                aggs,
                ..
            } => aggregate_schema(&input.schema(), group_by, aggs),
            PhysicalPlan::HashJoin { left, right, .. } => {
                concat_schemas(left.schema(), right.schema())
            }
            PhysicalPlan::Union { inputs } => {
                inputs.first().map(|i| i.schema()).unwrap_or_default()
            }
            PhysicalPlan::TopN { input, .. } => input.schema(),
            PhysicalPlan::TopK {
                input, rank_column, ..
            } => with_rank_column(input.schema(), *rank_column),
            PhysicalPlan::Over { input, aggs, .. } => with_over_columns(input.schema(), aggs),
        }
    }
}
