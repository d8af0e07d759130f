//! Window strategies: which [`WindowStrategy`] a `WindowAggregate` runs with, chosen by
//! `lower` (`LogicalPlan ──lower──▶ PhysicalPlan`) once it has decided an `Aggregate`
//! is an event-time window aggregate.
//!
//! - TUMBLE windows: [`WindowStrategy::Tumble`] (one window per row).
//! - HOP windows: [`WindowStrategy::HopByPane`] when every aggregate has a running
//!   state that merges (see [`aggregates_merge`]) and the window's columns travel from
//!   the `Window` to the `Aggregate` unread (Filters and Projects neither compute nor
//!   test them, other Windows do not use them as time or partition columns) and are
//!   read by the aggregate only as group columns. Then the HOP `WindowAssign` is
//!   replaced by a TUMBLE of one pane (gcd(size, slide)): one row per input row instead
//!   of size/slide, and the operator assembles windows from panes. Otherwise
//!   [`WindowStrategy::Generic`].
//!
//! Invariant: the output of the aggregate is the same under every strategy; a pane
//! `[p, p + pane)` lies in exactly the windows `[s, s + size)` with `s ≡ 0 (mod slide)`,
//! `s ≤ p` and `p + pane ≤ s + size`, which are the windows of every time in the pane.

use crate::error::CompileError;
use crate::physical::AggStrategy;
use crate::physical::{PhysicalPlan, WindowStrategy};
use crate::plan::{LogicalPlan, WindowKind};
use sluice_catalogs::SqlType;
use sluice_expr::expr::{AggregateCall, ScalarExpr};
use std::collections::BTreeMap;

/// True when every aggregate keeps a running state that two partial states can be
/// merged from: each one's [`AggStrategy`] is `Accumulate` (COUNT, SUM/AVG of exact
/// types, MIN/MAX when the input never retracts; not COUNT/SUM/AVG DISTINCT).
pub fn aggregates_merge(
    aggs: &[AggregateCall],
    input_types: &[SqlType],
    append_only: bool,
) -> bool {
    crate::lower::agg_strategies(aggs, input_types, append_only)
        .iter()
        .all(|s| *s == AggStrategy::Accumulate)
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The strategy for a window aggregate over `input` (logical) grouped by `group_by`,
/// whose window end is input column `window_end_col`; `physical_input` is the lowered
/// input, rewritten (its HOP `WindowAssign` made a pane TUMBLE) for
/// [`WindowStrategy::HopByPane`].
pub(crate) fn choose(
    input: &LogicalPlan,
    group_by: &[usize],
    aggs: &[AggregateCall],
    window_end_col: usize,
    mut physical_input: PhysicalPlan,
) -> Result<(WindowStrategy, PhysicalPlan), CompileError> {
    let Some(window) = window_of(input, window_end_col) else {
        return Ok((WindowStrategy::Generic, physical_input));
    };
    let LogicalPlan::Window { kind, .. } = window else {
        return Ok((WindowStrategy::Generic, physical_input));
    };
    let (slide_ms, size_ms) = match *kind {
        WindowKind::Tumble { .. } => return Ok((WindowStrategy::Tumble, physical_input)),
        WindowKind::Hop { slide_ms, size_ms } if slide_ms > 0 && size_ms > 0 => (slide_ms, size_ms),
        _ => return Ok((WindowStrategy::Generic, physical_input)),
    };
    let pane_ms = gcd(size_ms, slide_ms);
    let types = physical_input.schema().types();
    let append_only = !crate::lower::is_updating(&physical_input);
    if pane_ms <= 0 || !aggregates_merge(aggs, &types, append_only) {
        return Ok((WindowStrategy::Generic, physical_input));
    }
    let Some((carried, depth)) = carried_window_columns(input, window) else {
        return Ok((WindowStrategy::Generic, physical_input));
    };
    // The aggregate reads window columns only as group columns, and groups by its
    // start and end.
    let reads_window = aggs
        .iter()
        .any(|a| a.arg.is_some_and(|c| carried.contains_key(&c)));
    let start_col = group_by
        .iter()
        .copied()
        .find(|c| carried.get(c) == Some(&0));
    let time_col = group_by
        .iter()
        .copied()
        .find(|c| carried.get(c) == Some(&2));
    let (Some(start_col), Some(&1)) = (start_col, carried.get(&window_end_col)) else {
        return Ok((WindowStrategy::Generic, physical_input));
    };
    if reads_window {
        return Ok((WindowStrategy::Generic, physical_input));
    }
    if !assign_panes(&mut physical_input, depth, pane_ms) {
        return Err(CompileError::internal(
            "HOP-by-pane: the window's WindowAssign was not found below the aggregate",
        ));
    }
    Ok((
        WindowStrategy::HopByPane {
            slide_ms,
            size_ms,
            pane_ms,
            start_col,
            time_col,
        },
        physical_input,
    ))
}

/// The `Window` node whose `window_end` is column `col` of `plan`, traced through
/// Filters, column Projects and TUMBLE/HOP Windows.
fn window_of(plan: &LogicalPlan, col: usize) -> Option<&LogicalPlan> {
    match plan {
        LogicalPlan::Filter { input, .. } => window_of(input, col),
        LogicalPlan::Project { input, exprs, .. } => match exprs.get(col)? {
            ScalarExpr::Column(c) => window_of(input, *c),
            _ => None,
        },
        LogicalPlan::Window { input, kind, .. } => {
            let width = input.schema().len();
            if col == width + 1 {
                Some(plan)
            } else if col < width && !matches!(kind, WindowKind::Session { .. }) {
                window_of(input, col)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Tracked columns `m` (input column → what it holds) carried through a projection:
/// the output positions that copy one, or `None` when an expression `reads` one (the
/// window's columns must travel unchanged).
fn project_carried<V: Copy>(
    exprs: &[ScalarExpr],
    m: &BTreeMap<usize, V>,
    reads: impl Fn(&ScalarExpr, &BTreeMap<usize, V>) -> bool,
) -> Option<BTreeMap<usize, V>> {
    let mut out = BTreeMap::new();
    for (i, e) in exprs.iter().enumerate() {
        match e {
            ScalarExpr::Column(c) if m.contains_key(c) => {
                out.insert(i, m[c]);
            }
            e if reads(e, m) => return None,
            _ => {}
        }
    }
    Some(out)
}

/// The columns of `plan` that carry a column of `window` unchanged, as column → offset
/// (0 `window_start`, 1 `window_end`, 2 `window_time`), and how many other Windows lie
/// between; `None` when `window` is not reached through Filters, Projects and TUMBLE/HOP
/// Windows, or when one of them reads a window column other than by passing it on.
fn carried_window_columns(
    plan: &LogicalPlan,
    window: &LogicalPlan,
) -> Option<(BTreeMap<usize, usize>, usize)> {
    let reads =
        |e: &ScalarExpr, m: &BTreeMap<usize, usize>| e.columns().iter().any(|c| m.contains_key(c));
    if std::ptr::eq(plan, window) {
        let LogicalPlan::Window { input, .. } = plan else {
            return None;
        };
        let w = input.schema().len();
        return Some(((0..3).map(|o| (w + o, o)).collect(), 0));
    }
    match plan {
        LogicalPlan::Filter { input, predicate } => {
            let (m, d) = carried_window_columns(input, window)?;
            (!reads(predicate, &m)).then_some((m, d))
        }
        LogicalPlan::Project { input, exprs, .. } => {
            let (m, d) = carried_window_columns(input, window)?;
            Some((project_carried(exprs, &m, reads)?, d))
        }
        LogicalPlan::Window {
            input,
            kind: WindowKind::Tumble { .. } | WindowKind::Hop { .. },
            time_col,
            partition_by,
        } => {
            let (m, d) = carried_window_columns(input, window)?;
            if m.contains_key(time_col) || partition_by.iter().any(|c| m.contains_key(c)) {
                return None;
            }
            Some((m, d + 1))
        }
        _ => None,
    }
}

/// Replaces the `depth`-th (from the top, 0-based) `WindowAssign` of the chain of
/// Calcs and WindowAssigns at `plan` by a TUMBLE of `pane_ms`; false if there is none.
fn assign_panes(plan: &mut PhysicalPlan, depth: usize, pane_ms: i64) -> bool {
    match plan {
        PhysicalPlan::Calc { input, .. } => assign_panes(input, depth, pane_ms),
        PhysicalPlan::WindowAssign { kind, .. } if depth == 0 => {
            *kind = WindowKind::Tumble { size_ms: pane_ms };
            true
        }
        PhysicalPlan::WindowAssign { input, .. } => assign_panes(input, depth - 1, pane_ms),
        _ => false,
    }
}

/// Where a column of the aggregate's input comes from, relative to a SESSION window.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum SessionColumn {
    /// The window's column `offset` (0 start, 1 end, 2 time).
    Window(usize),
    /// Column `c` of the window's input.
    Input(usize),
}

/// For an `Aggregate` over `input` grouped by `group_by` that is not a TUMBLE/HOP
/// window aggregate: an incremental [`WindowStrategy::Session`] when `input` is a
/// SESSION `Window` on a watermark column, reached through Filters, Projects and
/// TUMBLE/HOP Windows that do not read its window columns, grouped by exactly its
/// start, end (optionally time) and all its partition columns, with aggregates that
/// merge and read no window column. Returns the strategy, `physical_input` with its
/// `SessionAssign` replaced by a per-row proto-session `Calc`, and the end column.
pub(crate) fn choose_session(
    input: &LogicalPlan,
    group_by: &[usize],
    aggs: &[AggregateCall],
    physical_input: &PhysicalPlan,
) -> Result<Option<(WindowStrategy, PhysicalPlan, usize)>, CompileError> {
    let Some((window, carried, depth)) = session_columns(input) else {
        return Ok(None);
    };
    let LogicalPlan::Window {
        input: window_input,
        kind: WindowKind::Session { gap_ms },
        time_col,
        partition_by,
    } = window
    else {
        return Ok(None);
    };
    let gap_ms = *gap_ms;
    if gap_ms <= 0 || !is_watermark_column(window_input, *time_col) {
        return Ok(None);
    }
    let find = |want: SessionColumn| {
        group_by
            .iter()
            .copied()
            .find(|c| carried.get(c) == Some(&want))
    };
    let (Some(start_col), Some(end_col)) = (
        find(SessionColumn::Window(0)),
        find(SessionColumn::Window(1)),
    ) else {
        return Ok(None);
    };
    let time_col_out = find(SessionColumn::Window(2));
    // Every other group column is a partition column, and every partition column is
    // grouped by.
    let mut grouped_partition = Vec::new();
    for c in group_by {
        match carried.get(c) {
            Some(SessionColumn::Window(_)) => {}
            Some(SessionColumn::Input(i)) if partition_by.contains(i) => grouped_partition.push(*i),
            _ => return Ok(None),
        }
    }
    if !partition_by.iter().all(|p| grouped_partition.contains(p)) {
        return Ok(None);
    }
    let reads_window = aggs.iter().any(|a| {
        a.arg
            .is_some_and(|c| matches!(carried.get(&c), Some(SessionColumn::Window(_))))
    });
    if reads_window {
        return Ok(None);
    }
    let mut rewritten = physical_input.clone();
    if !assign_proto_sessions(&mut rewritten, depth) {
        return Ok(None);
    }
    let types = rewritten.schema().types();
    let append_only = !crate::lower::is_updating(&rewritten);
    if !aggregates_merge(aggs, &types, append_only) {
        return Ok(None);
    }
    Ok(Some((
        WindowStrategy::Session {
            gap_ms,
            start_col,
            time_col: time_col_out,
        },
        rewritten,
        end_col,
    )))
}

/// The SESSION `Window` below `plan` (through Filters, Projects and TUMBLE/HOP
/// Windows), the columns of `plan` that carry its window or input columns unchanged,
/// and how many Windows lie between; `None` when there is none or a node on the way
/// reads a window column other than by passing it on.
#[allow(clippy::type_complexity)]
fn session_columns(
    plan: &LogicalPlan,
) -> Option<(&LogicalPlan, BTreeMap<usize, SessionColumn>, usize)> {
    let reads = |e: &ScalarExpr, m: &BTreeMap<usize, SessionColumn>| {
        e.columns()
            .iter()
            .any(|c| matches!(m.get(c), Some(SessionColumn::Window(_))))
    };
    match plan {
        LogicalPlan::Window {
            input,
            kind: WindowKind::Session { .. },
            ..
        } => {
            let w = input.schema().len();
            let mut m: BTreeMap<usize, SessionColumn> =
                (0..w).map(|c| (c, SessionColumn::Input(c))).collect();
            m.extend((0..3).map(|o| (w + o, SessionColumn::Window(o))));
            Some((plan, m, 0))
        }
        LogicalPlan::Filter { input, predicate } => {
            let (win, m, d) = session_columns(input)?;
            (!reads(predicate, &m)).then_some((win, m, d))
        }
        LogicalPlan::Project { input, exprs, .. } => {
            let (win, m, d) = session_columns(input)?;
            Some((win, project_carried(exprs, &m, reads)?, d))
        }
        LogicalPlan::Window {
            input,
            kind: WindowKind::Tumble { .. } | WindowKind::Hop { .. },
            time_col,
            partition_by,
        } => {
            let (win, m, d) = session_columns(input)?;
            let is_window = |c: &usize| matches!(m.get(c), Some(SessionColumn::Window(_)));
            if is_window(time_col) || partition_by.iter().any(is_window) {
                return None;
            }
            Some((win, m, d + 1))
        }
        _ => None,
    }
}

/// True when column `col` of `plan` is, through Filters, column Projects and
/// TUMBLE/HOP Windows, a scan's watermark column.
fn is_watermark_column(plan: &LogicalPlan, col: usize) -> bool {
    match plan {
        LogicalPlan::Scan {
            table, projection, ..
        } => projection
            .get(col)
            .is_some_and(|&t| table.watermark.as_ref().is_some_and(|w| w.column == t)),
        LogicalPlan::Filter { input, .. } => is_watermark_column(input, col),
        LogicalPlan::Project { input, exprs, .. } => match exprs.get(col) {
            Some(ScalarExpr::Column(c)) => is_watermark_column(input, *c),
            _ => false,
        },
        LogicalPlan::Window {
            input,
            kind: WindowKind::Tumble { .. } | WindowKind::Hop { .. },
            ..
        } => col < input.schema().len() && is_watermark_column(input, col),
        _ => false,
    }
}

/// Replaces the `depth`-th (from the top, 0-based) window node of the chain of Calcs,
/// WindowAssigns and SessionAssigns at `plan`, which must be a `SessionAssign`, by a
/// `Calc` that drops rows with a NULL time and appends each row's proto-session
/// `[ts, ts + gap)` as `window_start`, `window_end`, `window_time`.
fn assign_proto_sessions(plan: &mut PhysicalPlan, depth: usize) -> bool {
    match plan {
        PhysicalPlan::Calc { input, .. } => assign_proto_sessions(input, depth),
        PhysicalPlan::WindowAssign { input, .. } if depth > 0 => {
            assign_proto_sessions(input, depth - 1)
        }
        PhysicalPlan::SessionAssign {
            input,
            time_col,
            gap_ms,
            ..
        } if depth == 0 => {
            let schema = input.schema();
            let t = ScalarExpr::col(*time_col);
            let plus = |ms: i64| {
                ScalarExpr::binary(
                    sluice_expr::expr::BinaryOp::Add,
                    t.clone(),
                    ScalarExpr::lit(sluice_expr::datum::Datum::Interval(ms), SqlType::Interval),
                )
            };
            let mut project: Vec<ScalarExpr> = (0..schema.len()).map(ScalarExpr::col).collect();
            project.extend([t.clone(), plus(*gap_ms), plus(gap_ms.saturating_sub(1))]);
            let mut names: Vec<String> = schema.fields.iter().map(|f| f.name.clone()).collect();
            names.extend(["window_start", "window_end", "window_time"].map(String::from));
            let input = std::mem::replace(
                input,
                Box::new(PhysicalPlan::Values {
                    schema: Default::default(),
                    rows: vec![],
                }),
            );
            *plan = PhysicalPlan::Calc {
                input,
                predicate: Some(ScalarExpr::IsNull {
                    expr: Box::new(t),
                    negated: true,
                }),
                project: Some(project),
                names,
            };
            true
        }
        _ => false,
    }
}
