//! EXPLAIN text for logical and physical plans.
//!
//! Both printers produce an indented tree, one node per line, children indented by
//! two spaces, in input order. Expressions print as SQL over the *names* of the
//! node's input columns (taken from the input schema), literals in SQL literal
//! syntax with their type (`1.50` for a `DECIMAL(p, 2)`, `TIMESTAMP '2024-01-01
//! 00:00:00.000'`, `INTERVAL '5000' MILLISECOND`). The output is a pure function of
//! the plan: nothing depends on hash order, addresses or time.
//!
//! Calc, aggregate and join nodes then say where they may run
//! (`device=gpu-eligible` or `device=cpu(<reason>)`, see [`crate::placement`]).
//! Physical nodes end with their state cost class in brackets (`[stateless]`,
//! `[state: one running state per group]`, …) so a reader sees at a glance what a job keeps in
//! memory.

use crate::physical::{AggStrategy, PhysicalPlan, TopKStrategy};
use crate::plan::{JoinKind, LogicalPlan, WindowKind};
use sluice_catalogs::{Schema, SqlType};
use sluice_expr::datum::Datum;
use sluice_expr::expr::{AggregateCall, BinaryOp, Func, ScalarExpr, SortKey};
use std::fmt::Write;

/// Rows of a `Values` node printed before the rest are elided.
const MAX_VALUES_ROWS: usize = 5;

/// Indented tree text of a logical plan, one node per line, expressions with column names.
pub fn explain_logical(plan: &LogicalPlan) -> String {
    let mut out = String::new();
    logical_node(plan, 0, &mut out);
    out
}

/// Indented tree text of a physical plan, each node with its state cost class.
pub fn explain_physical(plan: &PhysicalPlan) -> String {
    let mut out = String::new();
    let shared = plan.shared_subplans();
    physical_node(plan, 0, &shared, &mut out);
    out
}

/// The column names of a schema, as expressions over it are printed.
pub fn column_names(schema: &Schema) -> Vec<String> {
    schema.fields.iter().map(|f| f.name.clone()).collect()
}

/// Renders one expression as SQL over input columns named `names` (a column beyond
/// `names` prints as `#i`; literals carry their own type).
pub fn expr_to_sql(expr: &ScalarExpr, names: &[String]) -> String {
    let mut s = String::new();
    write_expr(expr, names, &mut s);
    s
}

/// Renders a literal of type `ty` in SQL literal syntax.
pub fn literal_to_sql(d: &Datum, ty: SqlType) -> String {
    match d {
        Datum::Null => "NULL".to_string(),
        Datum::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
        Datum::Int(i) => i.to_string(),
        Datum::Float(x) => format!("{:?}", x.0),
        Datum::Decimal(v) => {
            let scale = match ty {
                SqlType::Decimal { scale, .. } => scale,
                _ => 0,
            };
            format_decimal(*v, scale)
        }
        Datum::Str(s) => format!("'{}'", s.replace('\'', "''")),
        Datum::Date(days) => match chrono::NaiveDate::from_num_days_from_ce_opt(
            days.saturating_add(UNIX_EPOCH_DAYS_FROM_CE),
        ) {
            Some(date) => format!("DATE '{}'", date.format("%Y-%m-%d")),
            None => format!("DATE_FROM_DAYS({days})"),
        },
        Datum::Timestamp(ms) => match chrono::DateTime::from_timestamp_millis(*ms) {
            Some(ts) => format!(
                "TIMESTAMP '{}'",
                ts.naive_utc().format("%Y-%m-%d %H:%M:%S%.3f")
            ),
            None => format!("TIMESTAMP_FROM_MILLIS({ms})"),
        },
        Datum::Interval(ms) => interval_to_sql(*ms),
    }
}

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// `INTERVAL '<ms>' MILLISECOND`.
fn interval_to_sql(ms: i64) -> String {
    format!("INTERVAL '{ms}' MILLISECOND")
}

/// An unscaled DECIMAL value with `scale` fractional digits: `(150, 2)` → `1.50`.
fn format_decimal(unscaled: i128, scale: u8) -> String {
    let digits = unscaled.unsigned_abs().to_string();
    let sign = if unscaled < 0 { "-" } else { "" };
    let scale = scale as usize;
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// Binding strength of a binary operator (higher binds tighter).
fn precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Eq
        | BinaryOp::NotEq
        | BinaryOp::Lt
        | BinaryOp::LtEq
        | BinaryOp::Gt
        | BinaryOp::GtEq => 3,
        BinaryOp::Concat => 4,
        BinaryOp::Add | BinaryOp::Sub => 5,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 6,
    }
}

/// True for expressions that print as a single token or a call (no parentheses needed
/// as an operand of a unary operator).
fn is_atomic(e: &ScalarExpr) -> bool {
    matches!(
        e,
        ScalarExpr::Column(_)
            | ScalarExpr::Literal(..)
            | ScalarExpr::Call { .. }
            | ScalarExpr::Coalesce(_)
            | ScalarExpr::Cast { .. }
            | ScalarExpr::Case { .. }
    )
}

fn write_operand(e: &ScalarExpr, names: &[String], out: &mut String) {
    if is_atomic(e) {
        write_expr(e, names, out);
    } else {
        out.push('(');
        write_expr(e, names, out);
        out.push(')');
    }
}

fn write_list(exprs: &[ScalarExpr], names: &[String], out: &mut String) {
    for (i, e) in exprs.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_expr(e, names, out);
    }
}

fn write_column(i: usize, names: &[String], out: &mut String) {
    match names.get(i) {
        Some(n) => out.push_str(n),
        None => {
            let _ = write!(out, "#{i}");
        }
    }
}

fn write_expr(expr: &ScalarExpr, names: &[String], out: &mut String) {
    match expr {
        ScalarExpr::Column(i) => write_column(*i, names, out),
        ScalarExpr::Literal(d, ty) => out.push_str(&literal_to_sql(d, *ty)),
        ScalarExpr::Binary { op, left, right } => {
            let p = precedence(*op);
            let left_parens = matches!(**left, ScalarExpr::Binary { op: lop, .. } if precedence(lop) < p)
                || matches!(**left, ScalarExpr::Not(_) | ScalarExpr::IsNull { .. } | ScalarExpr::InList { .. } | ScalarExpr::Like { .. } if p > 2);
            let right_parens = matches!(**right, ScalarExpr::Binary { op: rop, .. } if precedence(rop) <= p)
                || matches!(**right, ScalarExpr::Not(_) | ScalarExpr::IsNull { .. } | ScalarExpr::InList { .. } | ScalarExpr::Like { .. } if p > 2);
            write_maybe_parens(left, left_parens, names, out);
            let _ = write!(out, " {} ", op.symbol());
            write_maybe_parens(right, right_parens, names, out);
        }
        ScalarExpr::Not(e) => {
            out.push_str("NOT ");
            write_operand(e, names, out);
        }
        ScalarExpr::Negate(e) => {
            out.push('-');
            write_operand(e, names, out);
        }
        ScalarExpr::IsNull { expr, negated } => {
            write_operand(expr, names, out);
            out.push_str(if *negated { " IS NOT NULL" } else { " IS NULL" });
        }
        ScalarExpr::Cast { expr, to } => {
            out.push_str("CAST(");
            write_expr(expr, names, out);
            let _ = write!(out, " AS {to})");
        }
        ScalarExpr::Case { whens, else_ } => {
            out.push_str("CASE");
            for (c, r) in whens {
                out.push_str(" WHEN ");
                write_expr(c, names, out);
                out.push_str(" THEN ");
                write_expr(r, names, out);
            }
            if let Some(e) = else_ {
                out.push_str(" ELSE ");
                write_expr(e, names, out);
            }
            out.push_str(" END");
        }
        ScalarExpr::Coalesce(args) => {
            out.push_str("COALESCE(");
            write_list(args, names, out);
            out.push(')');
        }
        ScalarExpr::InList {
            expr,
            list,
            negated,
        } => {
            write_operand(expr, names, out);
            out.push_str(if *negated { " NOT IN (" } else { " IN (" });
            write_list(list, names, out);
            out.push(')');
        }
        ScalarExpr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => {
            write_operand(expr, names, out);
            out.push(' ');
            if *negated {
                out.push_str("NOT ");
            }
            out.push_str(if *case_insensitive { "ILIKE " } else { "LIKE " });
            write_operand(pattern, names, out);
        }
        ScalarExpr::Call { func, args } => match func {
            Func::Extract(unit) => {
                let _ = write!(out, "EXTRACT({} FROM ", format!("{unit:?}").to_uppercase());
                write_list(args, names, out);
                out.push(')');
            }
            Func::DateTrunc(unit) => {
                let _ = write!(out, "DATE_TRUNC('{}', ", format!("{unit:?}").to_lowercase());
                write_list(args, names, out);
                out.push(')');
            }
            Func::DateCeil(unit) => {
                out.push_str("CEIL(");
                write_list(args, names, out);
                let _ = write!(out, " TO {})", format!("{unit:?}").to_uppercase());
            }
            other => {
                out.push_str(&other.name());
                out.push('(');
                write_list(args, names, out);
                out.push(')');
            }
        },
    }
}

fn write_maybe_parens(e: &ScalarExpr, parens: bool, names: &[String], out: &mut String) {
    if parens {
        out.push('(');
        write_expr(e, names, out);
        out.push(')');
    } else {
        write_expr(e, names, out);
    }
}

/// `[a, b + 1]`.
fn bracket_exprs(exprs: &[ScalarExpr], names: &[String]) -> String {
    let parts: Vec<String> = exprs.iter().map(|e| expr_to_sql(e, names)).collect();
    format!("[{}]", parts.join(", "))
}

/// `[a, b]` for column indexes.
fn bracket_columns(cols: &[usize], names: &[String]) -> String {
    let mut s = String::from("[");
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        write_column(*c, names, &mut s);
    }
    s.push(']');
    s
}

/// `a, b * 2 AS total`: an expression list with output names (`AS` omitted when the
/// expression is a column of the same name).
fn projection_list(exprs: &[ScalarExpr], out_names: &[String], names: &[String]) -> String {
    let parts: Vec<String> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let sql = expr_to_sql(e, names);
            match out_names.get(i) {
                Some(n) if *n != sql => format!("{sql} AS {n}"),
                _ => sql,
            }
        })
        .collect();
    parts.join(", ")
}

/// `SUM(price), COUNT(*), COUNT(DISTINCT x)`.
fn agg_list(aggs: &[AggregateCall], names: &[String]) -> String {
    let parts: Vec<String> = aggs
        .iter()
        .map(|a| {
            let func = format!("{:?}", a.func).to_uppercase();
            let arg = match a.arg {
                None => "*".to_string(),
                Some(c) => {
                    let mut s = String::new();
                    write_column(c, names, &mut s);
                    s
                }
            };
            let distinct = if a.distinct { "DISTINCT " } else { "" };
            format!("{func}({distinct}{arg})")
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// `a DESC NULLS FIRST, b` (ASC and NULLS LAST are the defaults and not printed).
fn sort_list(keys: &[SortKey], names: &[String]) -> String {
    let parts: Vec<String> = keys
        .iter()
        .map(|k| {
            let mut s = String::new();
            write_column(k.column, names, &mut s);
            if k.descending {
                s.push_str(" DESC");
            }
            if k.nulls_first {
                s.push_str(" NULLS FIRST");
            }
            s
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn limit_suffix(limit: Option<u64>, offset: u64) -> String {
    let mut s = String::new();
    if let Some(l) = limit {
        let _ = write!(s, " limit={l}");
    }
    if offset > 0 {
        let _ = write!(s, " offset={offset}");
    }
    s
}

fn window_text(kind: WindowKind, time_col: usize, names: &[String]) -> String {
    let mut t = String::new();
    write_column(time_col, names, &mut t);
    match kind {
        WindowKind::Tumble { size_ms } => {
            format!("TUMBLE(time_col={t}, size={})", interval_to_sql(size_ms))
        }
        WindowKind::Hop { slide_ms, size_ms } => format!(
            "HOP(time_col={t}, slide={}, size={})",
            interval_to_sql(slide_ms),
            interval_to_sql(size_ms)
        ),
        WindowKind::Session { gap_ms } => {
            format!("SESSION(time_col={t}, gap={})", interval_to_sql(gap_ms))
        }
    }
}

fn values_text(schema: &Schema, rows: &[sluice_expr::datum::Row]) -> String {
    let types = schema.types();
    let mut s = format!(
        "{} row{} {}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" },
        bracket_columns(
            &(0..schema.len()).collect::<Vec<_>>(),
            &column_names(schema)
        )
    );
    for (i, row) in rows.iter().enumerate() {
        if i == MAX_VALUES_ROWS {
            s.push_str(" …");
            break;
        }
        s.push_str(if i == 0 { ": (" } else { ", (" });
        for (j, d) in row.iter().enumerate() {
            if j > 0 {
                s.push_str(", ");
            }
            s.push_str(&literal_to_sql(
                d,
                types.get(j).copied().unwrap_or(SqlType::Null),
            ));
        }
        s.push(')');
    }
    s
}

fn join_kind_text(kind: JoinKind) -> &'static str {
    match kind {
        JoinKind::Inner => "Inner",
        JoinKind::Left => "Left",
        JoinKind::Right => "Right",
        JoinKind::Full => "Full",
    }
}

/// `[l = r, …]` for join key pairs, each side over its own input.
fn key_pairs(
    left: &[&ScalarExpr],
    right: &[&ScalarExpr],
    left_names: &[String],
    right_names: &[String],
) -> String {
    let parts: Vec<String> = left
        .iter()
        .zip(right)
        .map(|(l, r)| {
            format!(
                "{} = {}",
                expr_to_sql(l, left_names),
                expr_to_sql(r, right_names)
            )
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

fn indent(depth: usize, out: &mut String) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn logical_node(plan: &LogicalPlan, depth: usize, out: &mut String) {
    indent(depth, out);
    let input_names = |i: &LogicalPlan| column_names(&i.schema());
    match plan {
        LogicalPlan::Scan {
            table,
            projection,
            filters,
        } => {
            let table_names = column_names(&table.schema);
            let _ = write!(
                out,
                "Scan: {} projection={}",
                table.name,
                bracket_columns(projection, &table_names)
            );
            if !filters.is_empty() {
                let names = column_names(&plan.schema());
                let _ = write!(out, " filters={}", bracket_exprs(filters, &names));
            }
        }
        LogicalPlan::Values { schema, rows } => {
            let _ = write!(out, "Values: {}", values_text(schema, rows));
        }
        LogicalPlan::Filter { input, predicate } => {
            let _ = write!(
                out,
                "Filter: {}",
                expr_to_sql(predicate, &input_names(input))
            );
        }
        LogicalPlan::Project {
            input,
            exprs,
            names,
        } => {
            if exprs.is_empty() {
                out.push_str("Project: (no columns)");
            } else {
                let _ = write!(
                    out,
                    "Project: {}",
                    projection_list(exprs, names, &input_names(input))
                );
            }
        }
        LogicalPlan::Join {
            left,
            right,
            kind,
            on,
            filter,
        } => {
            let _ = write!(out, "Join: {}", join_kind_text(*kind));
            if !on.is_empty() {
                let l: Vec<&ScalarExpr> = on.iter().map(|(l, _)| l).collect();
                let r: Vec<&ScalarExpr> = on.iter().map(|(_, r)| r).collect();
                let _ = write!(
                    out,
                    " on={}",
                    key_pairs(&l, &r, &input_names(left), &input_names(right))
                );
            }
            if let Some(f) = filter {
                let _ = write!(
                    out,
                    " filter={}",
                    expr_to_sql(f, &column_names(&plan.schema()))
                );
            }
        }
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
        } => {
            let names = input_names(input);
            let _ = write!(
                out,
                "Aggregate: group_by={} aggs={}",
                bracket_columns(group_by, &names),
                agg_list(aggs, &names)
            );
        }
        LogicalPlan::Window {
            input,
            kind,
            time_col,
            partition_by,
        } => {
            let names = input_names(input);
            let _ = write!(out, "Window: {}", window_text(*kind, *time_col, &names));
            if !partition_by.is_empty() {
                let _ = write!(
                    out,
                    " partition_by={}",
                    bracket_columns(partition_by, &names)
                );
            }
        }
        LogicalPlan::Union { .. } => out.push_str("Union"),
        LogicalPlan::Sort {
            input,
            keys,
            limit,
            offset,
        } => {
            let _ = write!(
                out,
                "Sort: {}{}",
                sort_list(keys, &input_names(input)),
                limit_suffix(*limit, *offset)
            );
        }
        LogicalPlan::TopK {
            input,
            partition_by,
            order_by,
            limit,
            rank_column,
            ..
        } => {
            out.push_str("TopK:");
            top_k_text(
                &input_names(input),
                partition_by,
                order_by,
                *limit,
                *rank_column,
                out,
            );
        }
        LogicalPlan::Over {
            input,
            partition_by,
            order_by,
            aggs,
            preceding,
        } => {
            out.push_str("Over:");
            over_text(
                &input_names(input),
                partition_by,
                order_by,
                aggs,
                *preceding,
                out,
            );
        }
    }
    out.push('\n');
    for input in plan.inputs() {
        logical_node(input, depth + 1, out);
    }
}

/// A [`crate::physical::WindowStrategy`] as EXPLAIN PHYSICAL prints it.
fn window_strategy_text(strategy: &crate::physical::WindowStrategy) -> String {
    use crate::physical::WindowStrategy;
    match strategy {
        WindowStrategy::Tumble => "tumble".to_string(),
        WindowStrategy::Generic => "generic".to_string(),
        WindowStrategy::TimeKeyed => {
            "time-keyed(a group's rows all come at its window end: emitted once when the watermark passes it)".to_string()
        }
        WindowStrategy::Session { gap_ms, .. } => {
            format!("session(gap=INTERVAL '{gap_ms}' MILLISECOND, merged incrementally, no retractions)")
        }
        WindowStrategy::HopByPane {
            slide_ms,
            size_ms,
            pane_ms,
            ..
        } => format!(
            "hop-by-pane(pane=INTERVAL '{pane_ms}' MILLISECOND, panes per window={}, updates per row=1 instead of {})",
            size_ms / pane_ms.max(&1),
            (size_ms + slide_ms.max(&1) - 1) / slide_ms.max(&1)
        ),
    }
}

/// The state cost class of a physical node, as printed in brackets.
pub fn state_class(plan: &PhysicalPlan) -> &'static str {
    match plan {
        PhysicalPlan::Source { .. }
        | PhysicalPlan::Values { .. }
        | PhysicalPlan::Calc { .. }
        | PhysicalPlan::WindowAssign { .. }
        | PhysicalPlan::Union { .. } => "stateless",
        PhysicalPlan::SessionAssign { .. } => "state: rows per partition",
        PhysicalPlan::WindowAggregate {
            strategy: crate::physical::WindowStrategy::HopByPane { .. },
            ..
        } => "state: one accumulator per (pane, group) until the pane's last window closes",
        PhysicalPlan::WindowAggregate {
            strategy: crate::physical::WindowStrategy::Session { .. },
            ..
        } => "state: one accumulator per open (session, key)",
        PhysicalPlan::WindowAggregate { strategies, .. } => {
            if strategies.iter().all(|s| *s == AggStrategy::Accumulate) {
                "state: one running state per open (window, group)"
            } else {
                "state: per open (window, group), an entry per distinct value"
            }
        }
        PhysicalPlan::Reduce { strategies, .. } => {
            if strategies.iter().all(|s| *s == AggStrategy::Accumulate) {
                "state: one running state per group"
            } else {
                "state: per group, an entry per distinct value"
            }
        }
        PhysicalPlan::HashJoin {
            interval: Some(_), ..
        } => "state: each side's rows until the watermark passes the time bound",
        PhysicalPlan::HashJoin {
            append_only: true, ..
        } => "state: each side's rows by key until the other input completes",
        PhysicalPlan::HashJoin { .. } => "state: both inputs arranged by key",
        PhysicalPlan::TopN { .. } => "state: all rows on one worker",
        PhysicalPlan::TopK {
            strategy: TopKStrategy::Monotonic,
            ..
        } => "state: top rows per partition",
        PhysicalPlan::TopK {
            strategy: TopKStrategy::Retracting,
            ..
        } => "state: all rows per partition",
        PhysicalPlan::Over { .. } => {
            "state: all rows per partition and their last output; a changed partition is recomputed"
        }
    }
}

/// ` partition_by=[…] order_by=[…] aggs=[…] rows=N preceding` of an OVER aggregate.
fn over_text(
    names: &[String],
    partition_by: &[usize],
    order_by: &[SortKey],
    aggs: &[AggregateCall],
    preceding: Option<u64>,
    out: &mut String,
) {
    let _ = write!(
        out,
        " partition_by={} order_by={} aggs={} frame=rows({} preceding, current row)",
        bracket_columns(partition_by, names),
        sort_list(order_by, names),
        agg_list(aggs, names),
        preceding.map_or("unbounded".to_string(), |n| n.to_string())
    );
}

/// ` partition_by=[…] order_by=[…] limit=N[ row_number]` of a Top-N node.
fn top_k_text(
    names: &[String],
    partition_by: &[usize],
    order_by: &[SortKey],
    limit: Option<u64>,
    rank_column: bool,
    out: &mut String,
) {
    let _ = write!(
        out,
        " partition_by={} order_by={}",
        bracket_columns(partition_by, names),
        sort_list(order_by, names)
    );
    match limit {
        Some(n) => {
            let _ = write!(out, " limit={n}");
        }
        None => out.push_str(" limit=none"),
    }
    if rank_column {
        out.push_str(" row_number");
    }
}

fn physical_node(
    plan: &PhysicalPlan,
    depth: usize,
    shared: &[(&PhysicalPlan, usize)],
    out: &mut String,
) {
    indent(depth, out);
    let input_names = |i: &PhysicalPlan| column_names(&i.schema());
    match plan {
        PhysicalPlan::Source {
            table,
            projection,
            filters,
        } => {
            let table_names = column_names(&table.schema);
            let _ = write!(
                out,
                "Source: {} projection={}",
                table.name,
                bracket_columns(projection, &table_names)
            );
            if !filters.is_empty() {
                let names = column_names(&plan.schema());
                let _ = write!(out, " filters={}", bracket_exprs(filters, &names));
            }
        }
        PhysicalPlan::Values { schema, rows } => {
            let _ = write!(out, "Values: {}", values_text(schema, rows));
        }
        PhysicalPlan::Calc {
            input,
            predicate,
            project,
            names,
        } => {
            let in_names = input_names(input);
            out.push_str("Calc:");
            if let Some(p) = predicate {
                let _ = write!(out, " predicate={}", expr_to_sql(p, &in_names));
            }
            if let Some(exprs) = project {
                let _ = write!(
                    out,
                    " project=[{}]",
                    projection_list(exprs, names, &in_names)
                );
            }
        }
        PhysicalPlan::WindowAssign {
            input,
            kind,
            time_col,
        } => {
            let _ = write!(
                out,
                "WindowAssign: {}",
                window_text(*kind, *time_col, &input_names(input))
            );
        }
        PhysicalPlan::SessionAssign {
            input,
            partition_by,
            time_col,
            gap_ms,
        } => {
            let names = input_names(input);
            let _ = write!(
                out,
                "SessionAssign: {} partition_by={}",
                window_text(WindowKind::Session { gap_ms: *gap_ms }, *time_col, &names),
                bracket_columns(partition_by, &names)
            );
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
            let names = input_names(input);
            let mut end = String::new();
            write_column(*window_end_col, &names, &mut end);
            let strategies: Vec<&str> = strategies.iter().map(|s| s.name()).collect();
            let _ = write!(
                out,
                "WindowAggregate: group_by={} aggs={} window_end={end} strategy={} strategies=[{}]{}",
                bracket_columns(group_by, &names),
                agg_list(aggs, &names),
                window_strategy_text(strategy),
                strategies.join(", "),
                preaggregate_text(*preaggregate)
            );
        }
        PhysicalPlan::Reduce {
            input,
            group_by,
            aggs,
            strategies,
            preaggregate,
        } => {
            let names = input_names(input);
            let strategies: Vec<&str> = strategies.iter().map(|s| s.name()).collect();
            let _ = write!(
                out,
                "Reduce: group_by={} aggs={} strategies=[{}]{}",
                bracket_columns(group_by, &names),
                agg_list(aggs, &names),
                strategies.join(", "),
                preaggregate_text(*preaggregate)
            );
        }
        PhysicalPlan::HashJoin {
            left,
            right,
            kind,
            left_keys,
            right_keys,
            residual,
            interval,
            append_only,
        } => {
            let l: Vec<&ScalarExpr> = left_keys.iter().collect();
            let r: Vec<&ScalarExpr> = right_keys.iter().collect();
            let _ = write!(
                out,
                "HashJoin: {} keys={}",
                join_kind_text(*kind),
                key_pairs(&l, &r, &input_names(left), &input_names(right))
            );
            if let Some(f) = residual {
                let _ = write!(
                    out,
                    " residual={}",
                    expr_to_sql(f, &column_names(&plan.schema()))
                );
            }
            if let Some(b) = interval {
                let (ln, rn) = (input_names(left), input_names(right));
                let name = |names: &[String], c: usize| {
                    names.get(c).cloned().unwrap_or_else(|| format!("#{c}"))
                };
                let (l, r) = (name(&ln, b.left_time), name(&rn, b.right_time));
                let _ = write!(
                    out,
                    " strategy=interval({l} - {r} in [{}ms, {}ms]; left rows freed when the right watermark passes {l} + {}ms, right rows when the left watermark passes {r} + {}ms)",
                    b.lower_ms,
                    b.upper_ms,
                    -i128::from(b.lower_ms),
                    b.upper_ms,
                );
            }
            if *append_only {
                out.push_str(
                    " strategy=append-only(symmetric hash; a side's rows freed when the other input completes)",
                );
            }
        }
        PhysicalPlan::Union { .. } => out.push_str("Union:"),
        PhysicalPlan::TopN {
            input,
            keys,
            limit,
            offset,
        } => {
            let _ = write!(
                out,
                "TopN: {}{}",
                sort_list(keys, &input_names(input)),
                limit_suffix(*limit, *offset)
            );
        }
        PhysicalPlan::TopK {
            input,
            partition_by,
            order_by,
            limit,
            rank_column,
            strategy,
        } => {
            let _ = write!(out, "TopK: {strategy:?}");
            top_k_text(
                &input_names(input),
                partition_by,
                order_by,
                Some(*limit),
                *rank_column,
                out,
            );
        }
        PhysicalPlan::Over {
            input,
            partition_by,
            order_by,
            aggs,
            preceding,
        } => {
            out.push_str("Over:");
            over_text(
                &input_names(input),
                partition_by,
                order_by,
                aggs,
                *preceding,
                out,
            );
        }
    }
    if let Some(device) = crate::placement::gpu_eligibility(plan).explain() {
        let _ = write!(out, " {device}");
    }
    let _ = write!(out, " [{}]", state_class(plan));
    if let Some((_, n)) = shared.iter().find(|(p, _)| *p == plan) {
        let _ = write!(out, " shared ×{n}");
    }
    out.push('\n');
    for input in plan.inputs() {
        physical_node(input, depth + 1, shared, out);
    }
}

/// The EXPLAIN text of an aggregate's pre-aggregation (see `sluice_expr::partial`).
fn preaggregate_text(preaggregate: bool) -> &'static str {
    if preaggregate {
        " preaggregate=per-batch"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::test_util::*;

    #[test]
    fn decimal_formatting() {
        assert_eq!(format_decimal(150, 2), "1.50");
        assert_eq!(format_decimal(-5, 3), "-0.005");
        assert_eq!(format_decimal(0, 2), "0.00");
        assert_eq!(format_decimal(-1234, 0), "-1234");
        assert_eq!(format_decimal(i128::MIN, 2).len(), 41);
    }

    #[test]
    fn literal_formatting() {
        let dec = SqlType::Decimal {
            precision: 10,
            scale: 2,
        };
        assert_eq!(literal_to_sql(&Datum::Decimal(150), dec), "1.50");
        assert_eq!(
            literal_to_sql(&Datum::Str("it's".into()), SqlType::Varchar),
            "'it''s'"
        );
        assert_eq!(
            literal_to_sql(&Datum::Timestamp(1_704_067_200_123), SqlType::Timestamp),
            "TIMESTAMP '2024-01-01 00:00:00.123'"
        );
        assert_eq!(
            literal_to_sql(&Datum::Date(19_723), SqlType::Date),
            "DATE '2024-01-01'"
        );
        assert_eq!(
            literal_to_sql(&Datum::Interval(5000), SqlType::Interval),
            "INTERVAL '5000' MILLISECOND"
        );
        assert_eq!(
            literal_to_sql(&Datum::Float(crate::F64(1.5)), SqlType::Double),
            "1.5"
        );
        assert_eq!(literal_to_sql(&Datum::Null, SqlType::Int), "NULL");
        assert_eq!(
            literal_to_sql(&Datum::Timestamp(i64::MAX), SqlType::Timestamp),
            format!("TIMESTAMP_FROM_MILLIS({})", i64::MAX)
        );
    }

    #[test]
    fn expression_precedence() {
        let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let e = mul(add(col(0), col(1)), col(2));
        assert_eq!(expr_to_sql(&e, &names), "(a + b) * c");
        let e = add(col(0), mul(col(1), col(2)));
        assert_eq!(expr_to_sql(&e, &names), "a + b * c");
        let e = sub(col(0), sub(col(1), col(2)));
        assert_eq!(expr_to_sql(&e, &names), "a - (b - c)");
        let e = or(and(gt(col(0), int(1)), col(1)), not(col(2)));
        assert_eq!(expr_to_sql(&e, &names), "a > 1 AND b OR NOT c");
        let e = ScalarExpr::IsNull {
            expr: Box::new(add(col(0), int(1))),
            negated: true,
        };
        assert_eq!(expr_to_sql(&e, &names), "(a + 1) IS NOT NULL");
        assert_eq!(expr_to_sql(&col(7), &names), "#7");
        let e = ScalarExpr::Call {
            func: Func::Extract(sluice_expr::expr::TimeUnit::Year),
            args: vec![col(0)],
        };
        assert_eq!(expr_to_sql(&e, &names), "EXTRACT(YEAR FROM a)");
        let e = ScalarExpr::Case {
            whens: vec![(gt(col(0), int(0)), str_lit("pos"))],
            else_: Some(Box::new(str_lit("neg"))),
        };
        assert_eq!(
            expr_to_sql(&e, &names),
            "CASE WHEN a > 0 THEN 'pos' ELSE 'neg' END"
        );
    }

    #[test]
    fn logical_tree() {
        let orders = table(
            "orders",
            &[
                ("o_orderkey", SqlType::BigInt),
                (
                    "price",
                    SqlType::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                ),
                ("note", SqlType::Varchar),
            ],
        );
        let scan = LogicalPlan::Scan {
            table: orders,
            projection: vec![0, 1],
            filters: vec![gt(col(1), dec(500, 2))],
        };
        let agg = aggregate(
            scan,
            vec![0],
            vec![
                sum(
                    1,
                    SqlType::Decimal {
                        precision: 10,
                        scale: 2,
                    },
                ),
                count_star(),
            ],
        );
        let filter = filter(agg, gt(col(2), bigint(10)));
        let plan = project(
            filter,
            vec![(col(0), "o_orderkey"), (mul(col(1), dec(2, 0)), "total")],
        );
        insta::assert_snapshot!(explain_logical(&plan), @r"
        Project: o_orderkey, $agg0 * 2 AS total
          Filter: $agg1 > 10
            Aggregate: group_by=[o_orderkey] aggs=[SUM(price), COUNT(*)]
              Scan: orders projection=[o_orderkey, price] filters=[price > 5.00]
        ");
    }

    #[test]
    fn logical_join_window_sort_values() {
        let (l, r) = (scan(&orders_table()), scan(&customers_table()));
        let join = LogicalPlan::Join {
            left: Box::new(l),
            right: Box::new(r),
            kind: JoinKind::Left,
            on: vec![(col(1), col(0))],
            filter: Some(gt(col(0), col(4))),
        };
        let win = window(
            join,
            WindowKind::Hop {
                slide_ms: 1000,
                size_ms: 5000,
            },
            3,
        );
        let sorted = LogicalPlan::Sort {
            input: Box::new(win),
            keys: vec![SortKey {
                column: 0,
                descending: true,
                nulls_first: true,
            }],
            limit: Some(10),
            offset: 5,
        };
        let values = LogicalPlan::Values {
            schema: Schema::new(vec![sluice_catalogs::Field::new("x", SqlType::Int)]),
            rows: (0..7).map(|i| vec![Datum::Int(i)]).collect(),
        };
        let plan = LogicalPlan::Union {
            inputs: vec![project(sorted, vec![(col(0), "x")]), values],
        };
        insta::assert_snapshot!(explain_logical(&plan), @r"
        Union
          Project: o_orderkey AS x
            Sort: [o_orderkey DESC NULLS FIRST] limit=10 offset=5
              Window: HOP(time_col=o_ts, slide=INTERVAL '1000' MILLISECOND, size=INTERVAL '5000' MILLISECOND)
                Join: Left on=[o_custkey = c_custkey] filter=o_orderkey > c_custkey
                  Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
                  Scan: customers projection=[c_custkey, c_name, c_ts]
          Values: 7 rows [x]: (0), (1), (2), (3), (4) …
        ");
    }

    #[test]
    fn physical_tree_with_state_classes() {
        let src = PhysicalPlan::Source {
            table: orders_table(),
            projection: vec![0, 1, 2, 3],
            filters: vec![],
        };
        let calc = PhysicalPlan::Calc {
            input: Box::new(src),
            predicate: Some(gt(col(2), dec(150, 2))),
            project: Some(vec![col(0), col(1), col(3)]),
            names: vec!["o_orderkey".into(), "o_custkey".into(), "o_ts".into()],
        };
        let wa = PhysicalPlan::WindowAssign {
            input: Box::new(calc),
            kind: WindowKind::Tumble { size_ms: 60_000 },
            time_col: 2,
        };
        let wagg = PhysicalPlan::WindowAggregate {
            input: Box::new(wa),
            group_by: vec![1, 3, 4],
            aggs: vec![count_star()],
            window_end_col: 4,
            strategy: crate::physical::WindowStrategy::Tumble,
            strategies: vec![AggStrategy::Accumulate],
            preaggregate: false,
        };
        let cust = PhysicalPlan::Source {
            table: customers_table(),
            projection: vec![0, 1],
            filters: vec![],
        };
        let join = PhysicalPlan::HashJoin {
            left: Box::new(wagg),
            right: Box::new(cust),
            kind: JoinKind::Inner,
            left_keys: vec![col(0)],
            right_keys: vec![col(0)],
            residual: Some(gt(col(3), int(3))),
            interval: None,
            append_only: false,
        };
        let reduce = crate::lower::reduce(join, vec![5], vec![count_star()]);
        let top = PhysicalPlan::TopN {
            input: Box::new(reduce),
            keys: vec![SortKey {
                column: 1,
                descending: true,
                nulls_first: false,
            }],
            limit: Some(3),
            offset: 0,
        };
        insta::assert_snapshot!(explain_physical(&top), @r"
        TopN: [$agg0 DESC] limit=3 [state: all rows on one worker]
          Reduce: group_by=[c_name] aggs=[COUNT(*)] strategies=[accumulate] device=cpu(stateful; group-by kernel eligible) [state: one running state per group]
            HashJoin: Inner keys=[o_custkey = c_custkey] residual=$agg0 > 3 device=cpu(stateful; join-probe kernel eligible) [state: both inputs arranged by key]
              WindowAggregate: group_by=[o_custkey, window_start, window_end] aggs=[COUNT(*)] window_end=window_end strategy=tumble strategies=[accumulate] device=cpu(stateful) [state: one running state per open (window, group)]
                WindowAssign: TUMBLE(time_col=o_ts, size=INTERVAL '60000' MILLISECOND) [stateless]
                  Calc: predicate=o_price > 1.50 project=[o_orderkey, o_custkey, o_ts] device=cpu(DECIMAL(10, 2) > DECIMAL(10, 2)) [stateless]
                    Source: orders projection=[o_orderkey, o_custkey, o_price, o_ts] [stateless]
              Source: customers projection=[c_custkey, c_name] [stateless]
        ");
    }
}
