//! The logical plan: what a query computes, independent of how it runs.
//!
//! Produced by the binder ([`crate::bind`]), rewritten by the optimizer
//! ([`crate::optimizer`]), printed by `EXPLAIN LOGICAL` / `EXPLAIN OPTIMIZED`, and
//! lowered to a [`crate::physical::PhysicalPlan`]. Each variant documents the state it
//! costs when it runs as a streaming dataflow.
//!
//! Invariant: for every node, `schema()` is a pure function of the node and its inputs;
//! an optimizer rule must leave the schema of the node it rewrites unchanged (the
//! optimizer driver checks this after every rule).

use crate::error::Position;
use serde::{Deserialize, Serialize};
use sluice_catalogs::{Field, Schema, SqlType, TableDescriptor};
use sluice_expr::datum::Row;
use sluice_expr::expr::{AggregateCall, ScalarExpr, SortKey};

/// Join kinds. Semi/anti joins are not exposed in SQL yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum JoinKind {
    /// Matching pairs only.
    Inner,
    /// All left rows; right columns NULL when unmatched.
    Left,
    /// All right rows; left columns NULL when unmatched.
    Right,
    /// All rows of both sides.
    Full,
}

/// Window table functions (and the legacy `GROUP BY TUMBLE(...)` forms they bind to).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WindowKind {
    /// `TUMBLE(size)`: windows `[k*size, (k+1)*size)`.
    Tumble {
        /// Window length in ms.
        size_ms: i64,
    },
    /// `HOP(slide, size)`: each row lands in `size/slide` windows (size a multiple of slide is not required).
    Hop {
        /// Distance between window starts, in ms.
        slide_ms: i64,
        /// Window length in ms.
        size_ms: i64,
    },
    /// `SESSION(gap)`: per partition, rows closer than `gap` share a window that spans
    /// `[first ts, last ts + gap)`.
    Session {
        /// Inactivity gap in ms.
        gap_ms: i64,
    },
}

/// A logical plan node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogicalPlan {
    /// Read a table. Output: the table's columns at `projection`, in that order.
    /// `filters` (over the output columns) were pushed into the source and are applied
    /// before any row leaves it. State: none (sources keep only their position).
    Scan {
        /// The table read.
        table: TableDescriptor,
        /// Indexes of the table columns read.
        projection: Vec<usize>,
        /// Predicates the source applies (conjuncts, all must hold).
        filters: Vec<ScalarExpr>,
    },
    /// Literal rows (`VALUES`, `SELECT` without `FROM`). State: none.
    Values {
        /// Output schema.
        schema: Schema,
        /// The rows.
        rows: Vec<Row>,
    },
    /// Keep rows where `predicate` is TRUE (NULL and FALSE drop the row). State: none.
    Filter {
        /// Input.
        input: Box<LogicalPlan>,
        /// BOOLEAN predicate over the input.
        predicate: ScalarExpr,
    },
    /// Compute one output column per expression. State: none.
    Project {
        /// Input.
        input: Box<LogicalPlan>,
        /// Output expressions over the input.
        exprs: Vec<ScalarExpr>,
        /// Output column names, one per expression.
        names: Vec<String>,
    },
    /// Join two inputs. Output: left columns then right columns (the outer side's
    /// columns become nullable). `on` holds equi-join key pairs (left expr over the left
    /// input, right expr over the right input; NULL keys never match); `filter` is the
    /// rest of the condition, over the concatenated row. State: both inputs, arranged by
    /// the key (with no keys, everything on one worker).
    Join {
        /// Left input.
        left: Box<LogicalPlan>,
        /// Right input.
        right: Box<LogicalPlan>,
        /// Join kind.
        kind: JoinKind,
        /// Equality key pairs.
        on: Vec<(ScalarExpr, ScalarExpr)>,
        /// Residual condition over `left ++ right`.
        filter: Option<ScalarExpr>,
    },
    /// Group by `group_by` columns and compute `aggs`. Output: the group columns, then one
    /// column per aggregate. With no group columns, exactly one row (even on empty input).
    /// State: every input row of every live group (event-time windowed groups are freed
    /// once the watermark passes the window end).
    Aggregate {
        /// Input.
        input: Box<LogicalPlan>,
        /// Group-by column indexes of the input.
        group_by: Vec<usize>,
        /// The aggregates.
        aggs: Vec<AggregateCall>,
    },
    /// A window table function: output is the input's columns followed by `window_start`,
    /// `window_end` and `window_time` (= `window_end - 1 ms`), all TIMESTAMP(3); HOP emits
    /// one row per window a row falls in. State: none for TUMBLE/HOP; SESSION holds the
    /// rows of each partition.
    Window {
        /// Input.
        input: Box<LogicalPlan>,
        /// The window function.
        kind: WindowKind,
        /// The TIMESTAMP(3) column windows are computed on.
        time_col: usize,
        /// SESSION only: `PARTITION BY` columns.
        partition_by: Vec<usize>,
    },
    /// `UNION ALL` of inputs with identical column types. State: none.
    Union {
        /// The inputs; the output takes the first input's names.
        inputs: Vec<LogicalPlan>,
    },
    /// `ORDER BY … [LIMIT n] [OFFSET m]`. Only meaningful on bounded input or with a
    /// limit (top-N). State: the top `offset + limit` rows (all rows without a limit),
    /// on one worker.
    Sort {
        /// Input.
        input: Box<LogicalPlan>,
        /// Sort keys (may be empty for a bare LIMIT).
        keys: Vec<SortKey>,
        /// Maximum number of rows.
        limit: Option<u64>,
        /// Rows skipped first.
        offset: u64,
    },
    /// Per-partition Top-N: `ROW_NUMBER() OVER (PARTITION BY partition_by ORDER BY
    /// order_by)` where the enclosing query keeps `rn <= limit` (Flink's Top-N; with
    /// `limit = 1`, its deduplication). Output: the input's columns, then the row number
    /// (`BIGINT`, from 1) when `rank_column`; only rows numbered `1..=limit`. Ties in
    /// `order_by` are broken by the whole input row (the columns projection pruning
    /// left it), so the numbering is deterministic at any worker count.
    /// Updating: a row entering a partition's top retracts the row it displaces (and,
    /// with the rank column, the rows whose number changes). State: on append-only
    /// input the current top `limit` rows per partition; otherwise every input row.
    ///
    /// `limit` is `None` only between binding the `ROW_NUMBER()` select item and the
    /// enclosing query's filter on it; the binder refuses a plan that still has one.
    TopK {
        /// Input.
        input: Box<LogicalPlan>,
        /// `PARTITION BY` columns of the input (may be empty: one partition).
        partition_by: Vec<usize>,
        /// `ORDER BY` keys over the input.
        order_by: Vec<SortKey>,
        /// Rows kept per partition.
        limit: Option<u64>,
        /// Whether the row number is an output column.
        rank_column: bool,
        /// Where the `ROW_NUMBER()` call is in the SQL text (for the binder's errors).
        #[serde(skip)]
        position: Option<Position>,
    },
    /// Aggregates over a frame of rows: `AGG(x) OVER (PARTITION BY partition_by ORDER BY
    /// order_by ROWS BETWEEN n PRECEDING AND CURRENT ROW)` (Flink's OVER aggregate).
    /// Output: every input row, then one column per aggregate, computed over the row's
    /// frame: itself and the `preceding` rows before it in its partition, in `order_by`
    /// order with ties broken by the whole input row (every row from the partition's
    /// first when `preceding` is `None`: `UNBOUNDED PRECEDING`). Updating: a row arriving
    /// or leaving changes the values of the rows after it in its partition. State: every
    /// input row, per partition.
    Over {
        /// Input.
        input: Box<LogicalPlan>,
        /// `PARTITION BY` columns of the input (may be empty: one partition).
        partition_by: Vec<usize>,
        /// `ORDER BY` keys over the input.
        order_by: Vec<SortKey>,
        /// The aggregates (arguments are input columns).
        aggs: Vec<AggregateCall>,
        /// Rows before the current one in the frame; `None`: all of them.
        preceding: Option<u64>,
    },
}

/// Names of the three columns a window table function appends.
pub const WINDOW_COLUMNS: [&str; 3] = ["window_start", "window_end", "window_time"];

impl LogicalPlan {
    /// The output schema of this node.
    pub fn schema(&self) -> Schema {
        match self {
            LogicalPlan::Scan {
                table, projection, ..
            } => Schema::new(
                projection
                    .iter()
                    .map(|&i| table.schema.fields[i].clone())
                    .collect(),
            ),
            LogicalPlan::Values { schema, .. } => schema.clone(),
            LogicalPlan::Filter { input, .. } => input.schema(),
            LogicalPlan::Project {
                input,
                exprs,
                names,
            } => {
                let types = input.schema().types();
                Schema::new(
                    exprs
                        .iter()
                        .zip(names)
                        .map(|(e, n)| Field::new(n.clone(), e.ty(&types)))
                        .collect(),
                )
            }
            LogicalPlan::Join { left, right, .. } => concat_schemas(left.schema(), right.schema()),
            LogicalPlan::Aggregate {
                input,
                group_by,
                aggs,
            } => aggregate_schema(&input.schema(), group_by, aggs),
            LogicalPlan::Window { input, .. } => with_window_columns(input.schema()),
            LogicalPlan::Union { inputs } => inputs.first().map(|i| i.schema()).unwrap_or_default(),
            LogicalPlan::Sort { input, .. } => input.schema(),
            LogicalPlan::TopK {
                input, rank_column, ..
            } => with_rank_column(input.schema(), *rank_column),
            LogicalPlan::Over { input, aggs, .. } => with_over_columns(input.schema(), aggs),
        }
    }

    /// The direct inputs of this node.
    pub fn inputs(&self) -> Vec<&LogicalPlan> {
        match self {
            LogicalPlan::Scan { .. } | LogicalPlan::Values { .. } => vec![],
            LogicalPlan::Filter { input, .. }
            | LogicalPlan::Project { input, .. }
            | LogicalPlan::Aggregate { input, .. }
            | LogicalPlan::Window { input, .. }
            | LogicalPlan::Sort { input, .. }
            | LogicalPlan::TopK { input, .. }
            | LogicalPlan::Over { input, .. } => vec![input],
            LogicalPlan::Join { left, right, .. } => vec![left, right],
            LogicalPlan::Union { inputs } => inputs.iter().collect(),
        }
    }
}

/// The output schema of an aggregation: the group columns, then one `$agg{i}` column
/// per aggregate (shared by the logical and physical aggregate nodes).
pub fn aggregate_schema(input: &Schema, group_by: &[usize], aggs: &[AggregateCall]) -> Schema {
    let mut fields: Vec<Field> = group_by
        .iter()
        .filter_map(|&i| input.fields.get(i).cloned())
        .collect();
    for (i, a) in aggs.iter().enumerate() {
        fields.push(Field::new(format!("$agg{i}"), a.ty));
    }
    Schema::new(fields)
}

/// `input` followed by the three TIMESTAMP(3) columns a window function appends.
pub fn with_window_columns(input: Schema) -> Schema {
    let mut fields = input.fields;
    for name in WINDOW_COLUMNS {
        fields.push(Field {
            name: name.to_string(),
            ty: SqlType::Timestamp,
            nullable: false,
        });
    }
    Schema::new(fields)
}

/// Name of the row-number column a [`LogicalPlan::TopK`] appends (the select item's
/// alias names it in the query's own projection).
pub const ROW_NUMBER_COLUMN: &str = "$row_number";

/// `input` followed, when `rank_column`, by the non-null BIGINT row number of a Top-N.
pub fn with_rank_column(input: Schema, rank_column: bool) -> Schema {
    let mut fields = input.fields;
    if rank_column {
        fields.push(Field {
            name: ROW_NUMBER_COLUMN.to_string(),
            ty: SqlType::BigInt,
            nullable: false,
        });
    }
    Schema::new(fields)
}

/// `input` followed by one `$over{i}` column per aggregate of an OVER aggregate.
pub fn with_over_columns(input: Schema, aggs: &[AggregateCall]) -> Schema {
    let mut fields = input.fields;
    for (i, a) in aggs.iter().enumerate() {
        fields.push(Field::new(format!("$over{i}"), a.ty));
    }
    Schema::new(fields)
}

/// The columns of `left` then those of `right` (a join's output).
pub fn concat_schemas(left: Schema, right: Schema) -> Schema {
    let mut fields = left.fields;
    fields.extend(right.fields);
    Schema::new(fields)
}
