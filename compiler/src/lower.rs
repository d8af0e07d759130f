//! Lowering: `LogicalPlan' ──lower──▶ PhysicalPlan`.
//!
//! One pass, bottom-up. Most nodes map one-to-one; the interesting choices:
//!
//! - **Calc fusion.** `Filter` and `Project` become [`PhysicalPlan::Calc`] stages, and
//!   chains of them fuse into one: a Filter over a predicate-only Calc ANDs the
//!   predicates; a Project over a Calc without a projection sets it; a Project over a
//!   projecting Calc composes the two projections (by substitution) when that does not
//!   evaluate a non-trivial expression more than once; a Filter over a projecting Calc
//!   folds into its predicate when it reads only columns and literals of the projection.
//! - **Window aggregates.** An `Aggregate` becomes an append-only
//!   [`PhysicalPlan::WindowAggregate`] when both `window_start` and `window_end` of one
//!   TUMBLE/HOP `Window` are among its group columns (traced through Filters, column
//!   pass-through Projects and other Windows) and that window's time column is, traced
//!   the same way, the watermark column of a `Scan`. Then the frontier is the
//!   watermark and a window's groups can be emitted and freed when it passes the
//!   window end; its [`crate::physical::WindowStrategy`] is chosen by
//!   [`crate::window_plan`] (HOP by pane when the aggregates merge). An `Aggregate` over
//!   a SESSION `Window` on a watermark column, grouped by its start, end and partition
//!   columns, becomes an incremental session `WindowAggregate` (also
//!   [`crate::window_plan`]). Anything else becomes a retracting [`PhysicalPlan::Reduce`] (bounded
//!   batch semantics for tables without watermarks).
//! - **Aggregate state.** Each aggregate of a `Reduce` gets an [`AggStrategy`] here
//!   ([`agg_strategies`]): a running state, a distinct-value count feeding one, or an
//!   ordered multiset; the renderer follows it and EXPLAIN PHYSICAL prints it.
//!
//! - **Per-partition Top-N.** A `TopK` becomes [`PhysicalPlan::TopK`] with
//!   [`TopKStrategy::Monotonic`] when its input is append-only (it then keeps only the
//!   current top rows per partition) and [`TopKStrategy::Retracting`] otherwise; the
//!   choice is made here so that `EXPLAIN PHYSICAL` names the state that runs.
//!
//! - **Interval joins.** An inner `Join` of two inputs that never retract, whose
//!   condition bounds a time-bounded column of one side between a time-bounded column
//!   of the other plus INTERVAL literals ([`interval_bound`], [`time_bounded_columns`]),
//!   gets an [`IntervalJoin`] bound: its rows are freed as the watermark passes.
//!
//! Lowering checks that every column an expression reads exists in its input and
//! reports an internal error otherwise (the binder and the optimizer should never
//! produce such a plan).

use crate::error::CompileError;
use crate::optimizer::util::{is_trivial, substitute, substitution_is_cheap};
use crate::physical::{AggStrategy, IntervalJoin, PhysicalPlan, TopKStrategy, WindowStrategy};
use crate::plan::{JoinKind, LogicalPlan, WindowKind};
use sluice_catalogs::SqlType;
use sluice_expr::datum::Datum;
use sluice_expr::expr::ScalarExpr;
use sluice_expr::expr::{AggFunc, AggregateCall, BinaryOp};

/// Lower an optimized logical plan to a dataflow operator tree.
pub fn lower(plan: &LogicalPlan) -> Result<PhysicalPlan, CompileError> {
    match plan {
        LogicalPlan::Scan {
            table,
            projection,
            filters,
        } => {
            if let Some(&bad) = projection.iter().find(|&&i| i >= table.schema.len()) {
                return Err(CompileError::internal(format!(
                    "scan of '{}' projects column #{bad} of {}",
                    table.name,
                    table.schema.len()
                )));
            }
            for f in filters {
                check_columns(f, projection.len(), "Scan filter")?;
            }
            Ok(PhysicalPlan::Source {
                table: table.clone(),
                projection: projection.clone(),
                filters: filters.clone(),
            })
        }
        LogicalPlan::Values { schema, rows } => {
            if let Some(row) = rows.iter().find(|r| r.len() != schema.len()) {
                return Err(CompileError::internal(format!(
                    "VALUES row of {} columns for a schema of {}",
                    row.len(),
                    schema.len()
                )));
            }
            Ok(PhysicalPlan::Values {
                schema: schema.clone(),
                rows: rows.clone(),
            })
        }
        LogicalPlan::Filter { input, predicate } => {
            let input = lower(input)?;
            check_columns(predicate, input.schema().len(), "Filter")?;
            Ok(fuse_filter(input, predicate.clone()))
        }
        LogicalPlan::Project {
            input,
            exprs,
            names,
        } => {
            let input = lower(input)?;
            let width = input.schema().len();
            for e in exprs {
                check_columns(e, width, "Project")?;
            }
            fuse_project(input, exprs.clone(), names.clone())
        }
        LogicalPlan::Window {
            input,
            kind,
            time_col,
            partition_by,
        } => {
            let physical_input = lower(input)?;
            let width = physical_input.schema().len();
            if *time_col >= width || partition_by.iter().any(|&c| c >= width) {
                return Err(CompileError::internal(
                    "window column out of range of its input",
                ));
            }
            Ok(match *kind {
                WindowKind::Tumble { .. } | WindowKind::Hop { .. } => PhysicalPlan::WindowAssign {
                    input: Box::new(physical_input),
                    kind: *kind,
                    time_col: *time_col,
                },
                WindowKind::Session { gap_ms } => PhysicalPlan::SessionAssign {
                    input: Box::new(physical_input),
                    partition_by: partition_by.clone(),
                    time_col: *time_col,
                    gap_ms,
                },
            })
        }
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
        } => {
            let window_end_col = windowed_aggregate_end(input, group_by);
            let physical_input = Box::new(lower(input)?);
            let width = physical_input.schema().len();
            if group_by.iter().any(|&c| c >= width)
                || aggs.iter().any(|a| a.arg.is_some_and(|c| c >= width))
            {
                return Err(CompileError::internal(
                    "aggregate column out of range of its input",
                ));
            }
            Ok(match window_end_col {
                Some(window_end_col) => {
                    let (strategy, physical_input) = crate::window_plan::choose(
                        input,
                        group_by,
                        aggs,
                        window_end_col,
                        *physical_input,
                    )?;
                    window_aggregate(
                        physical_input,
                        group_by.clone(),
                        aggs.clone(),
                        window_end_col,
                        strategy,
                    )
                }
                None => match crate::window_plan::choose_session(
                    input,
                    group_by,
                    aggs,
                    &physical_input,
                )? {
                    Some((strategy, session_input, window_end_col)) => window_aggregate(
                        session_input,
                        group_by.clone(),
                        aggs.clone(),
                        window_end_col,
                        strategy,
                    ),
                    None => {
                        // Grouped by a column whose rows all come at its value (another
                        // window aggregate's end): closed by the watermark, append-only.
                        let keyed = time_keyed_columns(&physical_input);
                        match group_by.iter().find(|&&g| keyed.get(g) == Some(&true)) {
                            Some(&end) if !is_updating(&physical_input) => window_aggregate(
                                *physical_input,
                                group_by.clone(),
                                aggs.clone(),
                                end,
                                WindowStrategy::TimeKeyed,
                            ),
                            _ => reduce(*physical_input, group_by.clone(), aggs.clone()),
                        }
                    }
                },
            })
        }
        LogicalPlan::Join {
            left,
            right,
            kind,
            on,
            filter,
        } => {
            let left = lower(left)?;
            let right = lower(right)?;
            let (lw, rw) = (left.schema().len(), right.schema().len());
            for (l, r) in on {
                check_columns(l, lw, "Join key (left)")?;
                check_columns(r, rw, "Join key (right)")?;
            }
            if let Some(f) = filter {
                check_columns(f, lw + rw, "Join filter")?;
            }
            // A time bound from the residual, or from equal time-bounded key columns
            // (a window join: `A.window_end = B.window_end` bounds `A - B` to [0, 0]).
            let interval = match kind {
                JoinKind::Inner if !is_updating(&left) && !is_updating(&right) => {
                    let mut bounds: Vec<ScalarExpr> = on
                        .iter()
                        .filter_map(|(l, r)| match (l, r) {
                            (ScalarExpr::Column(a), ScalarExpr::Column(b)) => {
                                let (a, b) = (ScalarExpr::Column(*a), ScalarExpr::Column(lw + b));
                                Some(and(
                                    ScalarExpr::binary(BinaryOp::GtEq, a.clone(), b.clone()),
                                    ScalarExpr::binary(BinaryOp::LtEq, a, b),
                                ))
                            }
                            _ => None,
                        })
                        .collect();
                    bounds.extend(filter.clone());
                    ScalarExpr::and_all(bounds).and_then(|f| interval_bound(&left, &right, &f))
                }
                _ => None,
            };
            // Both inputs append-only and no time bound: the symmetric hash join
            // (no arrangement; a side is freed when the other completes).
            let append_only = *kind == JoinKind::Inner
                && interval.is_none()
                && !is_updating(&left)
                && !is_updating(&right);
            Ok(PhysicalPlan::HashJoin {
                left: Box::new(left),
                right: Box::new(right),
                kind: *kind,
                left_keys: on.iter().map(|(l, _)| l.clone()).collect(),
                right_keys: on.iter().map(|(_, r)| r.clone()).collect(),
                residual: filter.clone(),
                interval,
                append_only,
            })
        }
        LogicalPlan::Union { inputs } => {
            let inputs = inputs.iter().map(lower).collect::<Result<Vec<_>, _>>()?;
            if let Some(first) = inputs.first() {
                let types = first.schema().types();
                if inputs.iter().any(|i| i.schema().types() != types) {
                    return Err(CompileError::internal(
                        "UNION ALL inputs have different column types",
                    ));
                }
            }
            Ok(PhysicalPlan::Union { inputs })
        }
        LogicalPlan::Sort {
            input,
            keys,
            limit,
            offset,
        } => {
            let input = lower(input)?;
            if keys.iter().any(|k| k.column >= input.schema().len()) {
                return Err(CompileError::internal("sort key out of range of its input"));
            }
            Ok(PhysicalPlan::TopN {
                input: Box::new(input),
                keys: keys.clone(),
                limit: *limit,
                offset: *offset,
            })
        }
        LogicalPlan::TopK {
            input,
            partition_by,
            order_by,
            limit,
            rank_column,
            ..
        } => {
            let Some(limit) = *limit else {
                return Err(CompileError::internal(
                    "ROW_NUMBER() without a filter on it reached lowering",
                ));
            };
            let input = lower(input)?;
            let width = input.schema().len();
            if partition_by.iter().any(|&c| c >= width)
                || order_by.iter().any(|k| k.column >= width)
            {
                return Err(CompileError::internal(
                    "Top-N column out of range of its input",
                ));
            }
            let strategy = if is_updating(&input) {
                TopKStrategy::Retracting
            } else {
                TopKStrategy::Monotonic
            };
            Ok(PhysicalPlan::TopK {
                input: Box::new(input),
                partition_by: partition_by.clone(),
                order_by: order_by.clone(),
                limit,
                rank_column: *rank_column,
                strategy,
            })
        }
        LogicalPlan::Over {
            input,
            partition_by,
            order_by,
            aggs,
            preceding,
        } => {
            let input = lower(input)?;
            let width = input.schema().len();
            if partition_by.iter().any(|&c| c >= width)
                || order_by.iter().any(|k| k.column >= width)
                || aggs.iter().any(|a| a.arg.is_some_and(|c| c >= width))
            {
                return Err(CompileError::internal(
                    "OVER aggregate column out of range of its input",
                ));
            }
            Ok(PhysicalPlan::Over {
                input: Box::new(input),
                partition_by: partition_by.clone(),
                order_by: order_by.clone(),
                aggs: aggs.clone(),
                preceding: *preceding,
            })
        }
    }
}

/// Which output columns of `plan` are *time-bounded*: TIMESTAMP(3) columns whose value
/// is at least the row's timely time on every row not behind the watermark. A
/// watermarked source's event-time column (rows are emitted at the watermark, which
/// trails every on-time row's event time); a column passed through a `Calc`; a
/// TUMBLE/HOP window's end and time (after the row's time) over a time-bounded column;
/// a window aggregate's window-end group column (its rows are emitted at that time).
pub fn time_bounded_columns(plan: &PhysicalPlan) -> Vec<bool> {
    match plan {
        PhysicalPlan::Source {
            table, projection, ..
        } => projection
            .iter()
            .map(|&c| table.watermark.as_ref().is_some_and(|w| w.column == c))
            .collect(),
        PhysicalPlan::Calc {
            input,
            project: None,
            ..
        } => time_bounded_columns(input),
        PhysicalPlan::Calc {
            input,
            project: Some(exprs),
            ..
        } => passed_through(&time_bounded_columns(input), exprs),
        PhysicalPlan::WindowAssign {
            input, time_col, ..
        } => {
            let mut bounded = time_bounded_columns(input);
            let t = bounded.get(*time_col) == Some(&true);
            bounded.extend([false, t, t]); // window_start, window_end, window_time
            bounded
        }
        // Emitted at its window end: at least the row's time.
        PhysicalPlan::WindowAggregate { .. } => time_keyed_columns(plan),
        other => vec![false; other.schema().len()],
    }
}

/// A projection's output columns that pass on an input column holding `flags`.
fn passed_through(flags: &[bool], exprs: &[ScalarExpr]) -> Vec<bool> {
    exprs
        .iter()
        .map(|e| matches!(e, ScalarExpr::Column(c) if flags.get(*c) == Some(&true)))
        .collect()
}

/// Which output columns of `plan` say when their rows come: every row is emitted at
/// the time the column holds (a window aggregate's window-end group column: each
/// window's rows are emitted at its end), passed through projections. Rows sharing
/// such a value all arrive at one time.
pub fn time_keyed_columns(plan: &PhysicalPlan) -> Vec<bool> {
    match plan {
        PhysicalPlan::Calc {
            input,
            project: None,
            ..
        } => time_keyed_columns(input),
        PhysicalPlan::Calc {
            input,
            project: Some(exprs),
            ..
        } => passed_through(&time_keyed_columns(input), exprs),
        PhysicalPlan::WindowAggregate {
            group_by,
            aggs,
            window_end_col,
            ..
        } => group_by
            .iter()
            .map(|g| g == window_end_col)
            .chain(aggs.iter().map(|_| false))
            .collect(),
        other => vec![false; other.schema().len()],
    }
}

/// The interval-join bound of an inner join of `left` and `right` with `residual` (over
/// `left ++ right`), when the residual's conjuncts hold `L >= R + a` (or `>`) and
/// `L <= R + b` (or `<`) for one time-bounded TIMESTAMP column `L` of the left input,
/// one `R` of the right, and INTERVAL literals (`col`, `col ± INTERVAL`, either side of
/// the comparison). See [`IntervalJoin`] for what the renderer does with it.
pub fn interval_bound(
    left: &PhysicalPlan,
    right: &PhysicalPlan,
    residual: &ScalarExpr,
) -> Option<IntervalJoin> {
    let lw = left.schema().len();
    let types: Vec<SqlType> = left
        .schema()
        .types()
        .into_iter()
        .chain(right.schema().types())
        .collect();
    let bounded: Vec<bool> = time_bounded_columns(left)
        .into_iter()
        .chain(time_bounded_columns(right))
        .collect();
    let time_col =
        |c: usize| bounded.get(c) == Some(&true) && types.get(c) == Some(&SqlType::Timestamp);
    // `col ± INTERVAL 'n'` as (col, offset ms).
    fn shifted(e: &ScalarExpr) -> Option<(usize, i64)> {
        match e {
            ScalarExpr::Column(c) => Some((*c, 0)),
            ScalarExpr::Binary { op, left, right } => match (op, &**left, &**right) {
                (
                    BinaryOp::Add,
                    ScalarExpr::Column(c),
                    ScalarExpr::Literal(Datum::Interval(ms), _),
                )
                | (
                    BinaryOp::Add,
                    ScalarExpr::Literal(Datum::Interval(ms), _),
                    ScalarExpr::Column(c),
                ) => Some((*c, *ms)),
                (
                    BinaryOp::Sub,
                    ScalarExpr::Column(c),
                    ScalarExpr::Literal(Datum::Interval(ms), _),
                ) => Some((*c, ms.checked_neg()?)),
                _ => None,
            },
            _ => None,
        }
    }
    let mut conjuncts = Vec::new();
    let mut stack = vec![residual];
    while let Some(e) = stack.pop() {
        match e {
            ScalarExpr::Binary {
                op: BinaryOp::And,
                left,
                right,
            } => {
                stack.push(left);
                stack.push(right);
            }
            other => conjuncts.push(other),
        }
    }
    // (left col, right col) → (tightest lower, tightest upper) of left - right.
    /// (left column, right column), tightest lower and upper bound of left - right.
    type Bounds = ((usize, usize), Option<i64>, Option<i64>);
    let mut found: Vec<Bounds> = Vec::new();
    for c in conjuncts {
        let ScalarExpr::Binary {
            op,
            left: a,
            right: b,
        } = c
        else {
            continue;
        };
        let (Some((ca, oa)), Some((cb, ob))) = (shifted(a), shifted(b)) else {
            continue;
        };
        if !time_col(ca) || !time_col(cb) {
            continue;
        }
        // a + oa  op  b + ob, with one side left and the other right.
        let (l, r, lower) = match (ca < lw, cb < lw, op) {
            (true, false, BinaryOp::Gt | BinaryOp::GtEq) => (ca, cb, true),
            (true, false, BinaryOp::Lt | BinaryOp::LtEq) => (ca, cb, false),
            (false, true, BinaryOp::Gt | BinaryOp::GtEq) => (cb, ca, false),
            (false, true, BinaryOp::Lt | BinaryOp::LtEq) => (cb, ca, true),
            _ => continue,
        };
        // left - right (op) offset, the offset moved to the right's side.
        let Some(offset) = (if ca < lw {
            ob.checked_sub(oa)
        } else {
            oa.checked_sub(ob)
        }) else {
            continue;
        };
        let key = (l, r - lw);
        let i = match found.iter().position(|(k, _, _)| *k == key) {
            Some(i) => i,
            None => {
                found.push((key, None, None));
                found.len() - 1
            }
        };
        let entry = &mut found[i];
        if lower {
            entry.1 = Some(entry.1.map_or(offset, |o: i64| o.max(offset)));
        } else {
            entry.2 = Some(entry.2.map_or(offset, |o: i64| o.min(offset)));
        }
    }
    found.into_iter().find_map(|((l, r), lo, hi)| {
        Some(IntervalJoin {
            left_time: l,
            right_time: r,
            lower_ms: lo?,
            upper_ms: hi?,
        })
    })
}

/// A [`PhysicalPlan::Reduce`] of `input`, with each aggregate's state strategy
/// decided by [`agg_strategies`].
pub fn reduce(input: PhysicalPlan, group_by: Vec<usize>, aggs: Vec<AggregateCall>) -> PhysicalPlan {
    let types = input.schema().types();
    let strategies = agg_strategies(&aggs, &types, !is_updating(&input));
    let preaggregate = crate::placement::is_columnar(&input)
        && sluice_expr::partial::preaggregable(&aggs, &strategies, &types);
    PhysicalPlan::Reduce {
        input: Box::new(input),
        group_by,
        aggs,
        strategies,
        preaggregate,
    }
}

/// How each aggregate of a `Reduce` keeps its state (see [`AggStrategy`]), given the
/// input's column types and whether the input never retracts:
///
/// | aggregate | input | strategy |
/// |---|---|---|
/// | `COUNT`, `SUM`/`AVG` of exact numbers | any | `Accumulate` |
/// | `COUNT`/`SUM`/`AVG(DISTINCT)` of exact numbers | any | `Distinct` |
/// | `MIN`/`MAX` (DISTINCT or not) | append-only | `Accumulate` |
/// | `MIN`/`MAX` (DISTINCT or not) | retracting | `Ordered` |
/// | `SUM`/`AVG` of DOUBLE/REAL (DISTINCT or not) | any | `Ordered` |
pub fn agg_strategies(
    aggs: &[AggregateCall],
    input_types: &[SqlType],
    append_only: bool,
) -> Vec<AggStrategy> {
    aggs.iter()
        .map(|call| {
            let exact = match call.arg.and_then(|a| input_types.get(a)) {
                None => true, // COUNT(*)
                Some(ty) => {
                    call.func == AggFunc::Count
                        || matches!(
                            ty,
                            SqlType::Int
                                | SqlType::BigInt
                                | SqlType::Interval
                                | SqlType::Decimal { .. }
                        )
                }
            };
            match call.func {
                AggFunc::Min | AggFunc::Max if append_only => AggStrategy::Accumulate,
                AggFunc::Min | AggFunc::Max => AggStrategy::Ordered,
                _ if !exact => AggStrategy::Ordered,
                _ if call.distinct => AggStrategy::Distinct,
                _ => AggStrategy::Accumulate,
            }
        })
        .collect()
}

/// A `WindowAggregate` with each aggregate's state strategy decided from its input.
fn window_aggregate(
    input: PhysicalPlan,
    group_by: Vec<usize>,
    aggs: Vec<AggregateCall>,
    window_end_col: usize,
    strategy: crate::physical::WindowStrategy,
) -> PhysicalPlan {
    let types = input.schema().types();
    let strategies = agg_strategies(&aggs, &types, !is_updating(&input));
    let grouped = |c: &usize| group_by.contains(c);
    let windows_grouped = match strategy {
        crate::physical::WindowStrategy::Tumble | crate::physical::WindowStrategy::Generic => {
            grouped(&window_end_col)
        }
        crate::physical::WindowStrategy::HopByPane {
            start_col,
            time_col,
            ..
        } => {
            grouped(&window_end_col) && grouped(&start_col) && time_col.is_none_or(|c| grouped(&c))
        }
        // Time-keyed input is another operator's rows; session windows are assigned
        // by the operator itself.
        crate::physical::WindowStrategy::TimeKeyed
        | crate::physical::WindowStrategy::Session { .. } => false,
    };
    let preaggregate = windows_grouped
        && crate::placement::is_columnar(&input)
        && sluice_expr::partial::preaggregable(&aggs, &strategies, &types);
    PhysicalPlan::WindowAggregate {
        input: Box::new(input),
        group_by,
        aggs,
        window_end_col,
        strategy,
        strategies,
        preaggregate,
    }
}

/// True when the physical plan may retract rows it has emitted (see `Output::updating`).
pub fn is_updating(plan: &PhysicalPlan) -> bool {
    match plan {
        PhysicalPlan::Source { .. } | PhysicalPlan::Values { .. } => false,
        PhysicalPlan::Reduce { .. }
        | PhysicalPlan::TopN { .. }
        | PhysicalPlan::TopK { .. }
        | PhysicalPlan::Over { .. }
        | PhysicalPlan::SessionAssign { .. } => true,
        PhysicalPlan::HashJoin {
            kind: JoinKind::Left | JoinKind::Right | JoinKind::Full,
            ..
        } => true,
        PhysicalPlan::Calc { .. }
        | PhysicalPlan::WindowAssign { .. }
        | PhysicalPlan::WindowAggregate { .. }
        | PhysicalPlan::Union { .. }
        | PhysicalPlan::HashJoin { .. } => plan.inputs().into_iter().any(is_updating),
    }
}

/// A set of output columns of `plan` that no two of its rows share at any time (its
/// *unique key*), where one is known: an aggregate's group columns (none: at most one
/// row), a numbered Top-N's partition columns and row number, through filters and
/// projections that keep those columns. `None` when no key is known (the rows may
/// repeat). An upsert sink keyed by a superset of it needs no state of its own.
pub fn unique_key(plan: &PhysicalPlan) -> Option<Vec<usize>> {
    match plan {
        PhysicalPlan::Reduce { group_by, .. } | PhysicalPlan::WindowAggregate { group_by, .. } => {
            Some((0..group_by.len()).collect())
        }
        PhysicalPlan::TopK {
            input,
            partition_by,
            rank_column: true,
            ..
        } => {
            let mut key = partition_by.clone();
            key.push(input.schema().len());
            Some(key)
        }
        PhysicalPlan::Calc {
            input,
            project: None,
            ..
        } => unique_key(input),
        PhysicalPlan::Calc {
            input,
            project: Some(project),
            ..
        } => unique_key(input)?
            .into_iter()
            .map(|c| {
                project
                    .iter()
                    .position(|e| matches!(e, ScalarExpr::Column(i) if *i == c))
            })
            .collect(),
        _ => None,
    }
}

fn check_columns(expr: &ScalarExpr, width: usize, what: &str) -> Result<(), CompileError> {
    match expr.columns().last() {
        Some(&c) if c >= width => Err(CompileError::internal(format!(
            "{what} reads column #{c} of an input with {width} columns"
        ))),
        _ => Ok(()),
    }
}

fn and(a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(sluice_expr::expr::BinaryOp::And, a, b)
}

/// `Filter(predicate)` over an already lowered input, fused into a Calc below when
/// possible.
fn fuse_filter(input: PhysicalPlan, predicate: ScalarExpr) -> PhysicalPlan {
    match input {
        PhysicalPlan::Calc {
            input: inner,
            predicate: inner_pred,
            project: None,
            names,
        } => PhysicalPlan::Calc {
            input: inner,
            predicate: Some(match inner_pred {
                Some(p) => and(p, predicate),
                None => predicate,
            }),
            project: None,
            names,
        },
        PhysicalPlan::Calc {
            input: inner,
            predicate: inner_pred,
            project: Some(exprs),
            names,
        } if predicate
            .columns()
            .iter()
            .all(|&c| exprs.get(c).is_some_and(is_trivial)) =>
        {
            // The predicate reads the projection's outputs: rewrite it over the Calc's
            // input (checked in range by the caller, so substitution cannot fail).
            match substitute(&predicate, &exprs) {
                Ok(sub) => PhysicalPlan::Calc {
                    input: inner,
                    predicate: Some(match inner_pred {
                        Some(p) => and(p, sub),
                        None => sub,
                    }),
                    project: Some(exprs),
                    names,
                },
                Err(_) => PhysicalPlan::Calc {
                    input: Box::new(PhysicalPlan::Calc {
                        input: inner,
                        predicate: inner_pred,
                        project: Some(exprs),
                        names,
                    }),
                    predicate: Some(predicate),
                    project: None,
                    names: vec![],
                },
            }
        }
        other => PhysicalPlan::Calc {
            input: Box::new(other),
            predicate: Some(predicate),
            project: None,
            names: vec![],
        },
    }
}

/// `Project(exprs)` over an already lowered input, fused into a Calc below when possible.
fn fuse_project(
    input: PhysicalPlan,
    exprs: Vec<ScalarExpr>,
    names: Vec<String>,
) -> Result<PhysicalPlan, CompileError> {
    Ok(match input {
        PhysicalPlan::Calc {
            input: inner,
            predicate,
            project: None,
            ..
        } => PhysicalPlan::Calc {
            input: inner,
            predicate,
            project: Some(exprs),
            names,
        },
        PhysicalPlan::Calc {
            input: inner,
            predicate,
            project: Some(inner_exprs),
            names: inner_names,
        } => {
            let outer: Vec<&ScalarExpr> = exprs.iter().collect();
            if substitution_is_cheap(&outer, &inner_exprs) {
                let composed = exprs
                    .iter()
                    .map(|e| substitute(e, &inner_exprs))
                    .collect::<Result<Vec<_>, _>>()?;
                PhysicalPlan::Calc {
                    input: inner,
                    predicate,
                    project: Some(composed),
                    names,
                }
            } else {
                PhysicalPlan::Calc {
                    input: Box::new(PhysicalPlan::Calc {
                        input: inner,
                        predicate,
                        project: Some(inner_exprs),
                        names: inner_names,
                    }),
                    predicate: None,
                    project: Some(exprs),
                    names,
                }
            }
        }
        other => PhysicalPlan::Calc {
            input: Box::new(other),
            predicate: None,
            project: Some(exprs),
            names,
        },
    })
}

/// Where a column of some node comes from, traced through nodes that pass it through
/// unchanged.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lineage<'a> {
    /// Column `start + offset` of the window node (offset 0: `window_start`, 1:
    /// `window_end`, 2: `window_time`).
    WindowColumn(&'a LogicalPlan, usize),
    /// A column read by a scan: `(scan node, table column index)`.
    TableColumn(&'a LogicalPlan, usize),
}

/// Traces column `col` of `plan` down through Filters, Projects whose expression for
/// it is a bare column, and TUMBLE/HOP Windows (for input columns). These all lower to
/// stateless, append-only operators, so a traced column reaches its node with the
/// same rows and timestamps; anything stateful (a SESSION window, a Sort, a join, an
/// aggregate) stops the trace.
fn lineage(plan: &LogicalPlan, col: usize) -> Option<Lineage<'_>> {
    match plan {
        LogicalPlan::Scan { projection, .. } => {
            projection.get(col).map(|&t| Lineage::TableColumn(plan, t))
        }
        LogicalPlan::Filter { input, .. } => lineage(input, col),
        LogicalPlan::Project { input, exprs, .. } => match exprs.get(col)? {
            ScalarExpr::Column(c) => lineage(input, *c),
            _ => None,
        },
        LogicalPlan::Window { input, kind, .. } => {
            let width = input.schema().len();
            if col < width {
                if matches!(kind, WindowKind::Session { .. }) {
                    return None;
                }
                lineage(input, col)
            } else if col < width + 3 {
                Some(Lineage::WindowColumn(plan, col - width))
            } else {
                None
            }
        }
        _ => None,
    }
}

/// For `Aggregate { input, group_by }`: the input column holding `window_end` when the
/// aggregate is an event-time window aggregate (see the module docs), else `None`.
fn windowed_aggregate_end(input: &LogicalPlan, group_by: &[usize]) -> Option<usize> {
    let traced: Vec<(usize, Lineage<'_>)> = group_by
        .iter()
        .filter_map(|&g| lineage(input, g).map(|l| (g, l)))
        .collect();
    for &(end_col, l) in &traced {
        let Lineage::WindowColumn(window, 1) = l else {
            continue;
        };
        let has_start = traced
            .iter()
            .any(|(_, l)| matches!(l, Lineage::WindowColumn(w, 0) if std::ptr::eq(*w, window)));
        if has_start && window_has_watermark_time(window) {
            return Some(end_col);
        }
    }
    None
}

/// True when `window` is a TUMBLE/HOP whose time column is a scan's watermark column.
fn window_has_watermark_time(window: &LogicalPlan) -> bool {
    let LogicalPlan::Window {
        input,
        kind: WindowKind::Tumble { .. } | WindowKind::Hop { .. },
        time_col,
        ..
    } = window
    else {
        return false;
    };
    match lineage(input, *time_col) {
        Some(Lineage::TableColumn(LogicalPlan::Scan { table, .. }, c)) => {
            table.watermark.as_ref().is_some_and(|w| w.column == c)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::explain_physical;
    use crate::optimizer::test_util::*;
    use crate::physical::IntervalJoin;
    use sluice_catalogs::SqlType;
    use sluice_expr::expr::SortKey;

    fn lowered(plan: &LogicalPlan) -> String {
        explain_physical(&lower(plan).unwrap())
    }

    /// `orders` windowed by TUMBLE(o_ts, 1 min), then grouped by custkey and the window.
    fn tumble_agg(t: &sluice_catalogs::TableDescriptor) -> LogicalPlan {
        let w = window(scan(t), WindowKind::Tumble { size_ms: 60_000 }, 3);
        // o_orderkey, o_custkey, o_price, o_ts, window_start, window_end, window_time
        let p = project(
            w,
            vec![
                (col(1), "o_custkey"),
                (col(4), "window_start"),
                (col(5), "window_end"),
                (col(2), "o_price"),
            ],
        );
        aggregate(p, vec![0, 1, 2], vec![sum(3, dec_ty(10, 2))])
    }

    #[test]
    fn window_aggregate_with_watermark() {
        let plan = tumble_agg(&orders_table());
        insta::assert_snapshot!(lowered(&plan), @r"
        WindowAggregate: group_by=[o_custkey, window_start, window_end] aggs=[SUM(o_price)] window_end=window_end strategy=tumble strategies=[accumulate] preaggregate=per-batch device=cpu(stateful) [state: one running state per open (window, group)]
          Calc: project=[o_custkey, window_start, window_end, o_price] device=cpu(columns only) [stateless]
            WindowAssign: TUMBLE(time_col=o_ts, size=INTERVAL '60000' MILLISECOND) [stateless]
              Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
        ");
        assert!(!is_updating(&lower(&plan).unwrap()));
    }

    #[test]
    fn window_aggregate_without_watermark_is_reduce() {
        let mut t = orders_table();
        t.watermark = None;
        let plan = tumble_agg(&t);
        insta::assert_snapshot!(lowered(&plan), @r"
        Reduce: group_by=[o_custkey, window_start, window_end] aggs=[SUM(o_price)] strategies=[accumulate] preaggregate=per-batch device=cpu(stateful) [state: one running state per group]
          Calc: project=[o_custkey, window_start, window_end, o_price] device=cpu(columns only) [stateless]
            WindowAssign: TUMBLE(time_col=o_ts, size=INTERVAL '60000' MILLISECOND) [stateless]
              Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
        ");
        assert!(is_updating(&lower(&plan).unwrap()));
    }

    #[test]
    fn window_aggregate_needs_start_and_end() {
        // Grouping by window_end only (not window_start) is a plain Reduce.
        let w = window(
            scan(&orders_table()),
            WindowKind::Hop {
                slide_ms: 10,
                size_ms: 20,
            },
            3,
        );
        let plan = aggregate(w, vec![1, 5], vec![count_star()]);
        insta::assert_snapshot!(lowered(&plan), @r"
        Reduce: group_by=[o_custkey, window_end] aggs=[COUNT(*)] strategies=[accumulate] preaggregate=per-batch device=cpu(stateful) [state: one running state per group]
          WindowAssign: HOP(time_col=o_ts, slide=INTERVAL '10' MILLISECOND, size=INTERVAL '20' MILLISECOND) [stateless]
            Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
        ");
        // With both, through a Filter, in any order: a window aggregate.
        let w = window(
            scan(&orders_table()),
            WindowKind::Hop {
                slide_ms: 10,
                size_ms: 20,
            },
            3,
        );
        let f = filter(w, gt(col(2), dec(100, 2)));
        let plan = aggregate(f, vec![5, 4], vec![count_star()]);
        insta::assert_snapshot!(lowered(&plan), @r"
        WindowAggregate: group_by=[window_end, window_start] aggs=[COUNT(*)] window_end=window_end strategy=hop-by-pane(pane=INTERVAL '10' MILLISECOND, panes per window=2, updates per row=1 instead of 2) strategies=[accumulate] preaggregate=per-batch device=cpu(stateful) [state: one accumulator per (pane, group) until the pane's last window closes]
          Calc: predicate=o_price > 1.00 device=cpu(DECIMAL(10, 2) > DECIMAL(10, 2)) [stateless]
            WindowAssign: TUMBLE(time_col=o_ts, size=INTERVAL '10' MILLISECOND) [stateless]
              Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
        ");
    }

    #[test]
    fn session_aggregate_is_incremental_when_grouped_by_partition_and_session() {
        let session = || LogicalPlan::Window {
            input: Box::new(scan(&orders_table())),
            kind: WindowKind::Session { gap_ms: 10_000 },
            time_col: 3,
            partition_by: vec![1],
        };
        // Nexmark q11's shape: per custkey and session, COUNT(*).
        let plan = aggregate(session(), vec![1, 4, 5], vec![count_star()]);
        insta::assert_snapshot!(lowered(&plan), @r"
        WindowAggregate: group_by=[o_custkey, window_start, window_end] aggs=[COUNT(*)] window_end=window_end strategy=session(gap=INTERVAL '10000' MILLISECOND, merged incrementally, no retractions) strategies=[accumulate] device=cpu(stateful) [state: one accumulator per open (session, key)]
          Calc: predicate=o_ts IS NOT NULL project=[o_orderkey, o_custkey, o_price, o_ts, o_ts AS window_start, o_ts + INTERVAL '10000' MILLISECOND AS window_end, o_ts + INTERVAL '9999' MILLISECOND AS window_time] device=gpu-eligible [stateless]
            Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
        ");
        // Grouped by a column that is not a partition column: the generic path.
        let plan = aggregate(session(), vec![0, 4, 5], vec![count_star()]);
        insta::assert_snapshot!(lowered(&plan), @r"
        Reduce: group_by=[o_orderkey, window_start, window_end] aggs=[COUNT(*)] strategies=[accumulate] device=cpu(stateful) [state: one running state per group]
          SessionAssign: SESSION(time_col=o_ts, gap=INTERVAL '10000' MILLISECOND) partition_by=[o_custkey] [state: rows per partition]
            Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
        ");
    }

    #[test]
    fn hop_by_pane_only_for_merging_aggregates_and_unread_window_columns() {
        let hop = || {
            window(
                scan(&orders_table()),
                WindowKind::Hop {
                    slide_ms: 4_000,
                    size_ms: 10_000,
                },
                3,
            )
        };
        // COUNT and MAX on an append-only input merge: panes of gcd(10 s, 4 s) = 2 s.
        let max = sluice_expr::expr::AggregateCall {
            func: sluice_expr::expr::AggFunc::Max,
            arg: Some(2),
            distinct: false,
            ty: dec_ty(10, 2),
        };
        let plan = aggregate(hop(), vec![1, 4, 5], vec![count_star(), max.clone()]);
        insta::assert_snapshot!(lowered(&plan), @r"
        WindowAggregate: group_by=[o_custkey, window_start, window_end] aggs=[COUNT(*), MAX(o_price)] window_end=window_end strategy=hop-by-pane(pane=INTERVAL '2000' MILLISECOND, panes per window=5, updates per row=1 instead of 3) strategies=[accumulate, accumulate] preaggregate=per-batch device=cpu(stateful) [state: one accumulator per (pane, group) until the pane's last window closes]
          WindowAssign: TUMBLE(time_col=o_ts, size=INTERVAL '2000' MILLISECOND) [stateless]
            Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
        ");
        // A DISTINCT aggregate has no mergeable state: rows copied into their windows.
        let distinct = sluice_expr::expr::AggregateCall {
            distinct: true,
            ..max
        };
        let plan = aggregate(hop(), vec![1, 4, 5], vec![distinct]);
        insta::assert_snapshot!(lowered(&plan), @r"
        WindowAggregate: group_by=[o_custkey, window_start, window_end] aggs=[MAX(DISTINCT o_price)] window_end=window_end strategy=hop-by-pane(pane=INTERVAL '2000' MILLISECOND, panes per window=5, updates per row=1 instead of 3) strategies=[accumulate] device=cpu(stateful) [state: one accumulator per (pane, group) until the pane's last window closes]
          WindowAssign: TUMBLE(time_col=o_ts, size=INTERVAL '2000' MILLISECOND) [stateless]
            Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
        ");
        // A filter reading window_start needs each window's own row.
        let f = filter(hop(), gt(col(4), col(3)));
        let plan = aggregate(f, vec![1, 4, 5], vec![count_star()]);
        insta::assert_snapshot!(lowered(&plan), @r"
        WindowAggregate: group_by=[o_custkey, window_start, window_end] aggs=[COUNT(*)] window_end=window_end strategy=generic strategies=[accumulate] preaggregate=per-batch device=cpu(stateful) [state: one running state per open (window, group)]
          Calc: predicate=window_start > o_ts device=gpu-eligible [stateless]
            WindowAssign: HOP(time_col=o_ts, slide=INTERVAL '4000' MILLISECOND, size=INTERVAL '10000' MILLISECOND) [stateless]
              Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
        ");
    }

    #[test]
    fn window_on_computed_or_non_watermark_time_is_reduce() {
        // Window on c_ts of a table without watermark, and on a computed time column.
        let t = orders_table();
        let p = project(scan(&t), vec![(col(1), "k"), (col(3), "o_ts")]);
        let p = project(
            p,
            vec![
                (col(0), "k"),
                (
                    add(
                        col(1),
                        ScalarExpr::Literal(crate::Datum::Interval(5), SqlType::Interval),
                    ),
                    "ts",
                ),
            ],
        );
        let w = window(p, WindowKind::Tumble { size_ms: 1000 }, 1);
        let plan = aggregate(w, vec![0, 2, 3], vec![count_star()]);
        let physical = lower(&plan).unwrap();
        assert!(matches!(physical, PhysicalPlan::Reduce { .. }));
        // The watermark is on o_ts (table column 3), not on the window's time column.
        let mut t2 = orders_table();
        t2.schema
            .fields
            .push(sluice_catalogs::Field::new("other_ts", SqlType::Timestamp));
        let w = window(scan(&t2), WindowKind::Tumble { size_ms: 1000 }, 4);
        let plan = aggregate(w, vec![5, 6], vec![count_star()]);
        assert!(matches!(lower(&plan).unwrap(), PhysicalPlan::Reduce { .. }));
    }

    #[test]
    fn calc_fusion() {
        let s = scan(&customers_table());
        let f1 = filter(s, gt(col(0), bigint(1)));
        let f2 = filter(f1, lt(col(0), bigint(100)));
        let p1 = project(f2, vec![(col(1), "c_name"), (add(col(0), bigint(1)), "k1")]);
        let p2 = project(p1, vec![(col(1), "k1"), (col(0), "name")]);
        insta::assert_snapshot!(lowered(&p2), @r"
        Calc: predicate=c_custkey > 1 AND c_custkey < 100 project=[c_custkey + 1 AS k1, c_name AS name] device=gpu-eligible [stateless]
          Source: customers projection=[c_custkey, c_name, c_ts] [stateless]
        ");
    }

    #[test]
    fn filter_over_a_renaming_projection_fuses() {
        let s = scan(&customers_table());
        let p = project(s, vec![(col(1), "name"), (col(0), "k")]);
        let f = filter(p, gt(col(1), bigint(3)));
        insta::assert_snapshot!(lowered(&f), @r"
        Calc: predicate=c_custkey > 3 project=[c_name AS name, c_custkey AS k] device=gpu-eligible [stateless]
          Source: customers projection=[c_custkey, c_name, c_ts] [stateless]
        ");
    }

    #[test]
    fn tumble_over_a_session_window_is_not_a_window_aggregate() {
        // TUMBLE(o_ts) applied to the output of a SESSION window (updating): Reduce.
        let s = LogicalPlan::Window {
            input: Box::new(scan(&orders_table())),
            kind: WindowKind::Session { gap_ms: 10 },
            time_col: 3,
            partition_by: vec![1],
        };
        let t = window(s, WindowKind::Tumble { size_ms: 100 }, 3);
        // 0..4 orders, 4..7 session columns, 7..10 tumble columns.
        let plan = aggregate(t, vec![7, 8], vec![count_star()]);
        insta::assert_snapshot!(lowered(&plan), @r"
        Reduce: group_by=[window_start, window_end] aggs=[COUNT(*)] strategies=[accumulate] device=cpu(stateful) [state: one running state per group]
          WindowAssign: TUMBLE(time_col=o_ts, size=INTERVAL '100' MILLISECOND) [stateless]
            SessionAssign: SESSION(time_col=o_ts, gap=INTERVAL '10' MILLISECOND) partition_by=[o_custkey] [state: rows per partition]
              Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
        ");
        assert!(is_updating(&lower(&plan).unwrap()));
    }

    #[test]
    fn calc_fusion_stops_when_it_would_duplicate_work() {
        let s = scan(&customers_table());
        let p1 = project(s, vec![(mul(col(0), bigint(3)), "k3")]);
        let p2 = project(p1, vec![(add(col(0), col(0)), "k6")]);
        let f = filter(p2, gt(col(0), bigint(6)));
        insta::assert_snapshot!(lowered(&f), @r"
        Calc: predicate=k6 > 6 device=gpu-eligible [stateless]
          Calc: project=[k3 + k3 AS k6] device=gpu-eligible [stateless]
            Calc: project=[c_custkey * 3 AS k3] device=gpu-eligible [stateless]
              Source: customers projection=[c_custkey, c_name, c_ts] [stateless]
        ");
    }

    #[test]
    fn joins_and_updating() {
        let on = vec![(col(1), col(0))];
        let mk = |kind| LogicalPlan::Join {
            left: Box::new(scan(&orders_table())),
            right: Box::new(scan(&customers_table())),
            kind,
            on: on.clone(),
            filter: Some(gt(col(0), col(4))),
        };
        insta::assert_snapshot!(lowered(&mk(JoinKind::Inner)), @r"
        HashJoin: Inner keys=[o_custkey = c_custkey] residual=o_orderkey > c_custkey strategy=append-only(symmetric hash; a side's rows freed when the other input completes) device=cpu(stateful; join-probe kernel eligible) [state: each side's rows by key until the other input completes]
          Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
          Source: customers projection=[c_custkey, c_name, c_ts] [stateless]
        ");
        assert!(!is_updating(&lower(&mk(JoinKind::Inner)).unwrap()));
        for kind in [JoinKind::Left, JoinKind::Right, JoinKind::Full] {
            assert!(is_updating(&lower(&mk(kind)).unwrap()), "{kind:?}");
        }
        // An inner join over an updating input is updating.
        let agg = aggregate(scan(&customers_table()), vec![0], vec![count_star()]);
        let plan = join(scan(&orders_table()), agg, JoinKind::Inner, None);
        let lowered_plan = lower(&plan).unwrap();
        assert!(is_updating(&lowered_plan));
        // … and keeps the arranged strategy (the symmetric one never consolidates).
        assert!(matches!(
            lowered_plan,
            PhysicalPlan::HashJoin {
                append_only: false,
                ..
            }
        ));
        for kind in [JoinKind::Left, JoinKind::Right, JoinKind::Full] {
            assert!(matches!(
                lower(&mk(kind)).unwrap(),
                PhysicalPlan::HashJoin {
                    append_only: false,
                    ..
                }
            ));
        }
    }

    #[test]
    fn session_and_top_n() {
        let s = scan(&customers_table());
        let w = LogicalPlan::Window {
            input: Box::new(s),
            kind: WindowKind::Session { gap_ms: 30_000 },
            time_col: 2,
            partition_by: vec![1],
        };
        let sorted = LogicalPlan::Sort {
            input: Box::new(w),
            keys: vec![SortKey {
                column: 3,
                descending: true,
                nulls_first: false,
            }],
            limit: Some(5),
            offset: 0,
        };
        let physical = lower(&sorted).unwrap();
        insta::assert_snapshot!(explain_physical(&physical), @r"
        TopN: [window_start DESC] limit=5 [state: all rows on one worker]
          SessionAssign: SESSION(time_col=c_ts, gap=INTERVAL '30000' MILLISECOND) partition_by=[c_name] [state: rows per partition]
            Source: customers projection=[c_custkey, c_name, c_ts] [stateless]
        ");
        assert!(is_updating(&physical));
        let PhysicalPlan::TopN { input, .. } = physical else {
            unreachable!()
        };
        assert!(is_updating(&input));
    }

    #[test]
    fn union_values_and_append_only() {
        let a = project(scan(&customers_table()), vec![(col(0), "k")]);
        let b = LogicalPlan::Values {
            schema: sluice_catalogs::Schema::new(vec![sluice_catalogs::Field::new(
                "k",
                SqlType::BigInt,
            )]),
            rows: vec![vec![crate::Datum::Int(1)]],
        };
        let plan = LogicalPlan::Union { inputs: vec![a, b] };
        let physical = lower(&plan).unwrap();
        insta::assert_snapshot!(explain_physical(&physical), @r"
        Union: [stateless]
          Calc: project=[c_custkey AS k] device=cpu(columns only) [stateless]
            Source: customers projection=[c_custkey, c_name, c_ts] [stateless]
          Values: 1 row [k]: (1) [stateless]
        ");
        assert!(!is_updating(&physical));
    }

    #[test]
    fn bad_plans_are_internal_errors() {
        let plan = filter(scan(&customers_table()), gt(col(9), bigint(1)));
        let err = lower(&plan).unwrap_err();
        assert_eq!(err.kind, crate::error::ErrorKind::Internal);
        let plan = LogicalPlan::Union {
            inputs: vec![scan(&customers_table()), scan(&orders_table())],
        };
        assert!(lower(&plan).is_err());
        let plan = aggregate(scan(&customers_table()), vec![7], vec![]);
        assert!(lower(&plan).is_err());
    }

    /// `orders` joined with the order count of each 1 s TUMBLE window of `orders`, the
    /// order's time within the second before the window's end (Nexmark q7's shape).
    fn q7_shape(kind: JoinKind, t: &sluice_catalogs::TableDescriptor) -> LogicalPlan {
        let w = window(scan(t), WindowKind::Tumble { size_ms: 1000 }, 3);
        let counts = aggregate(w, vec![4, 5], vec![count_star()]);
        let counts = project(counts, vec![(col(2), "n"), (col(1), "wend")]);
        let ms = |n| ScalarExpr::Literal(crate::Datum::Interval(n), SqlType::Interval);
        let ge = |a, b| ScalarExpr::binary(sluice_expr::expr::BinaryOp::GtEq, a, b);
        let le = |a, b| ScalarExpr::binary(sluice_expr::expr::BinaryOp::LtEq, a, b);
        LogicalPlan::Join {
            left: Box::new(scan(t)),
            right: Box::new(counts),
            kind,
            on: vec![(col(1), col(0))],
            filter: Some(crate::optimizer::test_util::and(
                ge(col(3), sub(col(5), ms(1000))),
                le(col(3), col(5)),
            )),
        }
    }

    #[test]
    fn a_time_bounded_inner_join_is_an_interval_join() {
        let plan = q7_shape(JoinKind::Inner, &orders_table());
        insta::assert_snapshot!(lowered(&plan), @r"
        HashJoin: Inner keys=[o_custkey = n] residual=o_ts >= wend - INTERVAL '1000' MILLISECOND AND o_ts <= wend strategy=interval(o_ts - wend in [-1000ms, 0ms]; left rows freed when the right watermark passes o_ts + 1000ms, right rows when the left watermark passes wend + 0ms) device=cpu(stateful; join-probe kernel eligible) [state: each side's rows until the watermark passes the time bound]
          Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
          Calc: project=[$agg0 AS n, window_end AS wend] device=cpu(row stage) [stateless]
            WindowAggregate: group_by=[window_start, window_end] aggs=[COUNT(*)] window_end=window_end strategy=tumble strategies=[accumulate] preaggregate=per-batch device=cpu(stateful) [state: one running state per open (window, group)]
              WindowAssign: TUMBLE(time_col=o_ts, size=INTERVAL '1000' MILLISECOND) [stateless]
                Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
        ");
        let physical = lower(&plan).unwrap();
        let PhysicalPlan::HashJoin { interval, .. } = &physical else {
            unreachable!()
        };
        assert_eq!(
            *interval,
            Some(IntervalJoin {
                left_time: 3,
                right_time: 1,
                lower_ms: -1000,
                upper_ms: 0,
            })
        );
        assert!(!is_updating(&physical));
    }

    #[test]
    fn joins_without_a_time_bound_keep_the_regular_join() {
        let no_bound = |p: &LogicalPlan| {
            matches!(
                lower(p).unwrap(),
                PhysicalPlan::HashJoin { interval: None, .. }
            )
        };
        // Outer kinds keep today's path.
        assert!(no_bound(&q7_shape(JoinKind::Left, &orders_table())));
        // Without a watermark the time is not the frontier (and the aggregate retracts).
        let mut t = orders_table();
        t.watermark = None;
        assert!(no_bound(&q7_shape(JoinKind::Inner, &t)));
        // Only one side of the bound.
        let LogicalPlan::Join {
            left, right, on, ..
        } = q7_shape(JoinKind::Inner, &orders_table())
        else {
            unreachable!()
        };
        let half = LogicalPlan::Join {
            left,
            right,
            kind: JoinKind::Inner,
            on,
            filter: Some(lt(col(3), col(5))),
        };
        assert!(no_bound(&half));
    }

    #[test]
    fn a_repeated_sub_plan_is_marked_shared() {
        // Nexmark q5's shape: a window aggregate joined with an aggregate of itself.
        let counts = || {
            let w = window(
                scan(&orders_table()),
                WindowKind::Tumble { size_ms: 1000 },
                3,
            );
            aggregate(w, vec![1, 4, 5], vec![count_star()])
        };
        let max = aggregate(counts(), vec![1, 2], vec![sum(3, SqlType::BigInt)]);
        let plan = LogicalPlan::Join {
            left: Box::new(counts()),
            right: Box::new(max),
            kind: JoinKind::Inner,
            on: vec![(col(1), col(0)), (col(2), col(1))],
            filter: None,
        };
        insta::assert_snapshot!(lowered(&plan), @r"
        HashJoin: Inner keys=[window_start = window_start, window_end = window_end] strategy=interval(window_end - window_end in [0ms, 0ms]; left rows freed when the right watermark passes window_end + 0ms, right rows when the left watermark passes window_end + 0ms) device=cpu(stateful) [state: each side's rows until the watermark passes the time bound]
          WindowAggregate: group_by=[o_custkey, window_start, window_end] aggs=[COUNT(*)] window_end=window_end strategy=tumble strategies=[accumulate] preaggregate=per-batch device=cpu(stateful) [state: one running state per open (window, group)] shared ×2
            WindowAssign: TUMBLE(time_col=o_ts, size=INTERVAL '1000' MILLISECOND) [stateless]
              Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
          WindowAggregate: group_by=[window_start, window_end] aggs=[SUM($agg0)] window_end=window_end strategy=time-keyed(a group's rows all come at its window end: emitted once when the watermark passes it) strategies=[accumulate] device=cpu(stateful) [state: one running state per open (window, group)]
            WindowAggregate: group_by=[o_custkey, window_start, window_end] aggs=[COUNT(*)] window_end=window_end strategy=tumble strategies=[accumulate] preaggregate=per-batch device=cpu(stateful) [state: one running state per open (window, group)] shared ×2
              WindowAssign: TUMBLE(time_col=o_ts, size=INTERVAL '1000' MILLISECOND) [stateless]
                Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
        ");
    }
}
