//! The binder: parsed statements to [`LogicalPlan`]s, resolving names through the
//! catalog (plus the tables and views the script itself declares) and typing every
//! expression.
//!
//! - [`scope`]: name resolution;
//! - [`types`]: SQL type names and implicit coercions;
//! - [`expr`]: expressions, aggregates, legacy group-window functions;
//! - [`query`]: SELECT / FROM / joins / window TVFs / set operations / ORDER BY;
//! - [`rank`]: `ROW_NUMBER() OVER (…)` filtered by the enclosing query (Top-N);
//! - [`ddl`]: CREATE TABLE.
//!
//! The entry point is [`bind_script`]; [`crate::compile()`] runs the later stages.

pub mod ddl;
pub mod expr;
pub mod over;
pub mod query;
pub mod rank;
pub mod scope;
pub mod types;

use crate::error::{CompileError, Position};
use crate::limits::{on_compile_stack, MAX_PLAN_DEPTH};
use crate::parse::{parse_script, ExplainStage, ParsedStatement};
use crate::physical::SinkTarget;
use crate::plan::LogicalPlan;
use query::{Ctes, QueryBinder};
use sluice_catalogs::{Catalog, ConnectorValidator, MemoryCatalog, Schema, TableDescriptor};
use sluice_expr::expr::ScalarExpr;
use sqlparser::ast::{Insert, ObjectNamePart, Statement, TableObject};
use std::collections::BTreeMap;

pub use sluice_expr::options::OVERWRITE_OPTION;

/// One bound output: an `INSERT INTO` or the final `SELECT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundOutput {
    /// Where the rows go.
    pub target: SinkTarget,
    /// The bound logical plan (for a table target, its types equal the table's).
    pub logical: LogicalPlan,
    /// The output schema (the table's schema for a table target). For the final SELECT
    /// the plan may have extra trailing sort-only columns (see `Output::schema`).
    pub schema: Schema,
    /// A short description (`INSERT INTO t`, `SELECT`) for EXPLAIN headers.
    pub label: String,
    /// Where the statement names its target table (else where it starts), for errors
    /// found after binding (e.g. a sink that cannot take the result).
    pub position: Option<Position>,
}

/// A bound script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundScript {
    /// Tables declared by `CREATE TABLE`, in order.
    pub tables: Vec<TableDescriptor>,
    /// Outputs in script order.
    pub outputs: Vec<BoundOutput>,
    /// The last `EXPLAIN`'s stage and statement, if any.
    pub explain: Option<(ExplainStage, BoundOutput)>,
    /// `SET 'key' = 'value'` settings (the last one of a key wins).
    pub settings: std::collections::BTreeMap<String, String>,
}

/// Parse and bind a script (on a stack of its own, see [`crate::limits`]).
pub fn bind_script(
    sql: &str,
    catalog: &dyn Catalog,
    connectors: &dyn ConnectorValidator,
) -> Result<BoundScript, CompileError> {
    on_compile_stack(|| bind_statements(sql, catalog, connectors, false))
}

/// Bind a script of table declarations only (`CREATE TABLE`, `SET`): what a catalog
/// stores. Any other statement is an error at its position.
pub fn bind_tables(
    sql: &str,
    catalog: &dyn Catalog,
    connectors: &dyn ConnectorValidator,
) -> Result<Vec<TableDescriptor>, CompileError> {
    on_compile_stack(|| Ok(bind_statements(sql, catalog, connectors, true)?.tables))
}

/// Binds a script; the caller provides the stack (see [`crate::compile()`]).
pub(crate) fn bind_statements(
    sql: &str,
    catalog: &dyn Catalog,
    connectors: &dyn ConnectorValidator,
    tables_only: bool,
) -> Result<BoundScript, CompileError> {
    // The parser, the binder and span computations recurse on the AST: make sure every
    // `#[recursive]` function (sqlparser's and ours) starts with at least 1 MiB of stack,
    // growing it on the heap in 8 MiB segments when needed.
    recursive::set_minimum_stack_size(1 << 20);
    recursive::set_stack_allocation_size(8 << 20);
    let stmts = parse_script(sql)?;
    let mut cat = MemoryCatalog::layered(catalog);
    let mut views: BTreeMap<String, LogicalPlan> = BTreeMap::new();
    let mut tables = Vec::new();
    let mut outputs = Vec::new();
    let mut explain = None;
    let mut select_seen: Option<Option<Position>> = None;
    let mut explain_seen: Option<Option<Position>> = None;
    let mut settings = std::collections::BTreeMap::new();
    for st in &stmts {
        if tables_only
            && !matches!(
                st,
                ParsedStatement::Set { .. } | ParsedStatement::CreateTable { .. }
            )
        {
            return Err(CompileError::plan(
                "only CREATE TABLE statements are allowed here",
                statement_position(st),
            ));
        }
        if let (Some(first), false) = (explain_seen, matches!(st, ParsedStatement::Set { .. })) {
            return Err(CompileError::plan(
                "EXPLAIN must be the last statement of a script",
                statement_position(st).or(first),
            ));
        }
        if let Some(first) = select_seen {
            return Err(CompileError::plan(
                "a SELECT must be the last statement of a script",
                statement_position(st).or(first),
            ));
        }
        match st {
            ParsedStatement::Set { setting } => {
                if let Some((k, v)) = setting {
                    settings.insert(k.clone(), v.clone());
                }
            }
            ParsedStatement::CreateTable {
                stmt,
                options,
                option_positions,
                watermark,
                metadata,
                proctime,
                position,
            } => {
                let key = table_key(stmt);
                if views.contains_key(&key) {
                    return Err(CompileError::plan(
                        format!("a view named '{key}' already exists"),
                        *position,
                    ));
                }
                if let Statement::CreateTable(ct) = stmt.as_ref() {
                    let exists = cat
                        .table(&key)
                        .map_err(|e| CompileError::from(e).at(*position))?
                        .is_some();
                    if ct.if_not_exists && exists {
                        continue;
                    }
                }
                let desc = ddl::bind_create_table(
                    stmt,
                    options,
                    option_positions,
                    watermark.as_ref(),
                    metadata,
                    connectors,
                    *position,
                )?;
                cat.register(desc.clone())
                    .map_err(|e| CompileError::plan(e.to_string(), *position))?;
                if let Some(p) = proctime {
                    if tables_only {
                        return Err(CompileError::unsupported(
                            "a PROCTIME() column is only supported in a job's own script \
                             (declare it in the job's CREATE TABLE)",
                            p.position,
                        ));
                    }
                    views.insert(key, with_proctime_column(&desc, p)?);
                }
                tables.push(desc);
            }
            ParsedStatement::Explain {
                stage,
                stmt,
                position,
            } => {
                let qb = QueryBinder {
                    catalog: &cat,
                    views: &views,
                };
                let out = bind_output(&qb, connectors, stmt, *position)?;
                explain = Some((*stage, out));
                explain_seen = Some(*position);
            }
            ParsedStatement::Other { stmt, position } => {
                let qb = QueryBinder {
                    catalog: &cat,
                    views: &views,
                };
                match stmt.as_ref() {
                    Statement::CreateView(cv) => {
                        let name = match cv.name.0.last() {
                            Some(ObjectNamePart::Identifier(id)) => id.value.clone(),
                            _ => return Err(CompileError::plan("invalid view name", *position)),
                        };
                        let key = name.to_lowercase();
                        let exists = views.contains_key(&key)
                            || cat
                                .table(&name)
                                .map_err(|e| CompileError::from(e).at(*position))?
                                .is_some();
                        if exists && !cv.or_replace {
                            return Err(CompileError::plan(
                                format!("'{name}' already exists"),
                                *position,
                            ));
                        }
                        let mut plan = qb.bind_query(&cv.query, &Ctes::new())?.into_plan();
                        if !cv.columns.is_empty() {
                            let schema = plan.schema();
                            if cv.columns.len() != schema.len() {
                                return Err(CompileError::plan(
                                    format!(
                                        "view '{name}' names {} columns but its query has {}",
                                        cv.columns.len(),
                                        schema.len()
                                    ),
                                    *position,
                                ));
                            }
                            plan = LogicalPlan::Project {
                                exprs: (0..schema.len()).map(ScalarExpr::Column).collect(),
                                names: cv.columns.iter().map(|c| c.name.value.clone()).collect(),
                                input: Box::new(plan),
                            };
                        }
                        check_plan_depth(&plan, *position)?;
                        views.insert(key, plan);
                    }
                    Statement::Insert(_) | Statement::Query(_) => {
                        if matches!(stmt.as_ref(), Statement::Query(_)) {
                            select_seen = Some(*position);
                        }
                        outputs.push(bind_output(&qb, connectors, stmt, *position)?);
                    }
                    other => {
                        let kind = other.to_string();
                        let head: String = kind
                            .split_whitespace()
                            .take(2)
                            .collect::<Vec<_>>()
                            .join(" ");
                        return Err(CompileError::unsupported(
                            format!("statement '{head} …' is not supported"),
                            *position,
                        ));
                    }
                }
            }
        }
    }
    if tables_only {
        if tables.is_empty() {
            return Err(CompileError::plan(
                "the script has no CREATE TABLE statement",
                None,
            ));
        }
    } else if outputs.is_empty() && explain.is_none() {
        return Err(CompileError::plan(
            "the script has no INSERT INTO, SELECT or EXPLAIN statement",
            None,
        ));
    }
    Ok(BoundScript {
        tables,
        outputs,
        explain,
        settings,
    })
}

/// A table with a `col AS PROCTIME()` column, as the queries see it: the table's
/// columns with `PROCTIME()` computed at the declared place (a view of the same name,
/// so the connector never reads the column and the table cannot be written to).
fn with_proctime_column(
    table: &TableDescriptor,
    p: &crate::parse::ProctimeColumn,
) -> Result<LogicalPlan, CompileError> {
    if table.schema.index_of(&p.column).is_some() {
        return Err(CompileError::plan(
            format!("duplicate column '{}'", p.column),
            p.position,
        ));
    }
    let n = table.schema.len();
    let mut exprs: Vec<ScalarExpr> = (0..n).map(ScalarExpr::Column).collect();
    let mut names: Vec<String> = table.schema.fields.iter().map(|f| f.name.clone()).collect();
    let at = p.index.min(n);
    exprs.insert(
        at,
        ScalarExpr::Call {
            func: sluice_expr::expr::Func::ProcTime,
            args: vec![],
        },
    );
    names.insert(at, p.column.clone());
    Ok(LogicalPlan::Project {
        input: Box::new(LogicalPlan::Scan {
            table: table.clone(),
            projection: (0..n).collect(),
            filters: vec![],
        }),
        exprs,
        names,
    })
}

/// Refuses a plan deeper than [`MAX_PLAN_DEPTH`] (iterative: safe on any depth), so that
/// the later stages, which recurse on the plan, are never handed one.
fn check_plan_depth(plan: &LogicalPlan, position: Option<Position>) -> Result<(), CompileError> {
    let mut stack = vec![(plan, 1usize)];
    while let Some((node, depth)) = stack.pop() {
        if depth > MAX_PLAN_DEPTH {
            return Err(CompileError::unsupported(
                format!(
                    "the query is nested too deeply (its plan has more than {MAX_PLAN_DEPTH} \
                     levels of subqueries, views, joins and distinct unions)"
                ),
                position,
            ));
        }
        stack.extend(node.inputs().into_iter().map(|i| (i, depth + 1)));
    }
    Ok(())
}

/// Where a statement starts (`None` for an ignored `SET`).
fn statement_position(st: &ParsedStatement) -> Option<Position> {
    match st {
        ParsedStatement::Set { .. } => None,
        ParsedStatement::CreateTable { position, .. }
        | ParsedStatement::Explain { position, .. }
        | ParsedStatement::Other { position, .. } => *position,
    }
}

fn table_key(stmt: &Statement) -> String {
    match stmt {
        Statement::CreateTable(ct) => match ct.name.0.last() {
            Some(ObjectNamePart::Identifier(id)) => id.value.to_lowercase(),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// Bind an INSERT or a query statement to an output.
fn bind_output(
    qb: &QueryBinder<'_>,
    connectors: &dyn ConnectorValidator,
    stmt: &Statement,
    position: Option<Position>,
) -> Result<BoundOutput, CompileError> {
    let out = bind_output_unchecked(qb, connectors, stmt, position)?;
    rank::check_filtered(&out.logical, position)?;
    Ok(out)
}

fn bind_output_unchecked(
    qb: &QueryBinder<'_>,
    connectors: &dyn ConnectorValidator,
    stmt: &Statement,
    position: Option<Position>,
) -> Result<BoundOutput, CompileError> {
    match stmt {
        Statement::Query(q) => {
            let bq = qb.bind_query(q, &Ctes::new())?;
            // The visible columns; sort-only (hidden) columns stay at the end of the
            // plan's rows so that the Collect can order by them (see `Output::schema`).
            let full = bq.plan.schema();
            let visible = full.len().saturating_sub(bq.hidden);
            let schema = Schema::new(full.fields.into_iter().take(visible).collect());
            let target = SinkTarget::Collect {
                order: bq.order,
                limit: bq.limit,
                offset: bq.offset,
            };
            let logical = bq.plan;
            check_plan_depth(&logical, position)?;
            Ok(BoundOutput {
                target,
                logical,
                schema,
                label: "SELECT".to_string(),
                position,
            })
        }
        Statement::Insert(ins) => bind_insert(qb, connectors, ins, position),
        _ => Err(CompileError::unsupported(
            "only SELECT and INSERT INTO can be explained or run",
            position,
        )),
    }
}

/// Binds `INSERT INTO t [(cols)] query` and `INSERT OVERWRITE [TABLE] t query` (Flink's
/// syntax: the committed result replaces what the table held; only connectors whose
/// [`ConnectorValidator::can_overwrite`] says so accept it).
fn bind_insert(
    qb: &QueryBinder<'_>,
    connectors: &dyn ConnectorValidator,
    ins: &Insert,
    position: Option<Position>,
) -> Result<BoundOutput, CompileError> {
    if ins.on.is_some()
        || ins.returning.is_some()
        || ins.partitioned.is_some()
        || !ins.assignments.is_empty()
        || ins.or.is_some()
        || ins.ignore
        || ins.replace_into
    {
        return Err(CompileError::unsupported(
            "only plain INSERT INTO table [(cols)] query and INSERT OVERWRITE table query are supported",
            position,
        ));
    }
    let TableObject::TableName(name) = &ins.table else {
        return Err(CompileError::unsupported(
            "INSERT INTO a table function is not supported",
            position,
        ));
    };
    let name_pos = expr::pos_of(name).or(position);
    let tname = match name.0.last() {
        Some(ObjectNamePart::Identifier(id)) => id.value.clone(),
        _ => return Err(CompileError::plan("invalid table name", name_pos)),
    };
    if qb.views.contains_key(&tname.to_lowercase()) {
        return Err(CompileError::plan(
            format!("cannot INSERT INTO view '{tname}'"),
            name_pos,
        ));
    }
    let table = qb
        .catalog
        .table(&tname)
        .map_err(|e| CompileError::from(e).at(name_pos))?
        .ok_or_else(|| CompileError::plan(format!("unknown table '{tname}'"), name_pos))?;
    if ins.overwrite && !connectors.can_overwrite(&table.connector) {
        return Err(CompileError::plan(
            format!(
                "INSERT OVERWRITE cannot replace the contents of table '{tname}': connector '{}' \
                 can only be appended to (use INSERT INTO)",
                table.connector
            ),
            name_pos,
        ));
    }
    let Some(source) = &ins.source else {
        return Err(CompileError::plan("INSERT needs a query", position));
    };
    let src_pos = expr::pos_of(source.as_ref()).or(position);
    let plan = qb.bind_query(source, &Ctes::new())?.into_plan();
    let src = plan.schema();
    let dst = &table.schema;
    // Which source column feeds each table column (None: NULL).
    let mapping: Vec<Option<usize>> = if ins.columns.is_empty() {
        if src.len() != dst.len() {
            return Err(CompileError::plan(
                format!(
                    "table '{tname}' has {} columns but the query produces {}",
                    dst.len(),
                    src.len()
                ),
                src_pos,
            ));
        }
        (0..dst.len()).map(Some).collect()
    } else {
        if ins.columns.len() != src.len() {
            return Err(CompileError::plan(
                format!(
                    "INSERT names {} columns but the query produces {}",
                    ins.columns.len(),
                    src.len()
                ),
                src_pos,
            ));
        }
        let mut m = vec![None; dst.len()];
        for (i, c) in ins.columns.iter().enumerate() {
            let cname = c.to_string();
            let cpos = expr::pos_of(c).or(position);
            let j = dst
                .index_of(cname.trim_matches(|ch| ch == '"' || ch == '`'))
                .ok_or_else(|| {
                    CompileError::plan(format!("table '{tname}' has no column '{cname}'"), cpos)
                })?;
            match m.get_mut(j) {
                Some(slot @ None) => *slot = Some(i),
                _ => {
                    return Err(CompileError::plan(
                        format!("column '{cname}' is listed twice"),
                        cpos,
                    ))
                }
            }
        }
        m
    };
    let mut exprs = Vec::with_capacity(dst.len());
    for (j, f) in dst.fields.iter().enumerate() {
        let e = match mapping.get(j).copied().flatten() {
            Some(i) => {
                let from = src.fields.get(i).map(|f| f.ty).unwrap_or(f.ty);
                if !types::can_assign(from, f.ty) {
                    return Err(CompileError::plan(
                        format!(
                            "cannot insert {from} into column '{}' of type {}",
                            f.name, f.ty
                        ),
                        select_item_pos(source, i).or(src_pos),
                    ));
                }
                types::coerce(ScalarExpr::Column(i), from, f.ty)
            }
            None => ScalarExpr::Literal(sluice_expr::datum::Datum::Null, f.ty),
        };
        exprs.push(e);
    }
    let identity = exprs
        .iter()
        .enumerate()
        .all(|(j, e)| *e == ScalarExpr::Column(j))
        && src.len() == dst.len()
        && src
            .fields
            .iter()
            .zip(&dst.fields)
            .all(|(a, b)| a.name == b.name);
    let logical = if identity {
        plan
    } else {
        LogicalPlan::Project {
            input: Box::new(plan),
            exprs,
            names: dst.fields.iter().map(|f| f.name.clone()).collect(),
        }
    };
    check_plan_depth(&logical, position)?;
    let mut target = table.clone();
    if ins.overwrite {
        target
            .options
            .insert(OVERWRITE_OPTION.to_string(), "true".to_string());
    }
    Ok(BoundOutput {
        position: name_pos,
        schema: table.schema.clone(),
        logical,
        label: format!(
            "INSERT {} {}",
            if ins.overwrite { "OVERWRITE" } else { "INTO" },
            table.name
        ),
        target: SinkTarget::Table(target),
    })
}

/// The position of the `i`-th select item of a plain `SELECT` query, when it has one.
fn select_item_pos(q: &sqlparser::ast::Query, i: usize) -> Option<Position> {
    use sqlparser::ast::{SelectItem, SetExpr};
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    if s.projection.iter().any(|p| {
        matches!(
            p,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) {
        return None;
    }
    match s.projection.get(i)? {
        SelectItem::UnnamedExpr(e) => expr::pos_of(e),
        SelectItem::ExprWithAlias { expr: e, .. } => expr::pos_of(e),
        _ => None,
    }
}
