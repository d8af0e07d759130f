//! Query binding: `SELECT` blocks, `FROM` (tables, views, CTEs, subqueries, joins,
//! window table functions), aggregation, set operations, `VALUES`, `ORDER BY`/`LIMIT`.

use super::expr::{
    constant_interval, contains_aggregate, function_name, pos_of, AggState, ExprBinder,
    LegacyWindow,
};
use super::scope::{Scope, ScopeColumn};
use super::types::{coerce, coerce_comparison, common_type};
use crate::error::{CompileError, Position};
use crate::plan::{JoinKind, LogicalPlan, WindowKind, WINDOW_COLUMNS};
use sluice_catalogs::{Catalog, Field, Schema, SqlType};
use sluice_expr::datum::Datum;
use sluice_expr::expr::{BinaryOp, ScalarExpr, SortKey};
use sqlparser::ast::{
    Distinct, Expr, FunctionArg, FunctionArgExpr, GroupByExpr, Join, JoinConstraint, JoinOperator,
    LimitClause, ObjectName, ObjectNamePart, OrderBy, OrderByKind, OrderBySort, Query, Select,
    SelectItem, SelectItemQualifiedWildcardKind, SetExpr, SetOperator, SetQuantifier, TableAlias,
    TableFactor, TableFunctionArgs, TableWithJoins, Value, Values, WildcardAdditionalOptions,
};
use std::collections::BTreeMap;

/// Common table expressions in scope: lower-cased name → bound plan.
pub type Ctes = BTreeMap<String, LogicalPlan>;

/// A bound query with its top-level ORDER BY / LIMIT / OFFSET still pending.
#[derive(Clone, Debug)]
pub struct BoundQuery {
    /// The plan; its last `hidden` columns exist only for sorting.
    pub plan: LogicalPlan,
    /// ORDER BY keys over the plan's columns.
    pub order: Vec<SortKey>,
    /// LIMIT.
    pub limit: Option<u64>,
    /// OFFSET.
    pub offset: u64,
    /// Number of trailing sort-only columns.
    pub hidden: usize,
}

impl BoundQuery {
    /// The plan with ORDER BY / LIMIT applied as a `Sort` node (subqueries, INSERT).
    pub fn into_plan(self) -> LogicalPlan {
        if self.order.is_empty() && self.limit.is_none() && self.offset == 0 {
            return drop_hidden(self.plan, self.hidden);
        }
        let sorted = LogicalPlan::Sort {
            input: Box::new(self.plan),
            keys: self.order,
            limit: self.limit,
            offset: self.offset,
        };
        drop_hidden(sorted, self.hidden)
    }
}

/// Project away the last `hidden` columns.
fn drop_hidden(plan: LogicalPlan, hidden: usize) -> LogicalPlan {
    if hidden == 0 {
        return plan;
    }
    let schema = plan.schema();
    let keep = schema.len().saturating_sub(hidden);
    LogicalPlan::Project {
        exprs: (0..keep).map(ScalarExpr::Column).collect(),
        names: schema
            .fields
            .iter()
            .take(keep)
            .map(|f| f.name.clone())
            .collect(),
        input: Box::new(plan),
    }
}

/// Binds queries against a catalog and the views declared so far.
pub struct QueryBinder<'a> {
    /// Tables.
    pub catalog: &'a dyn Catalog,
    /// Views: lower-cased name → bound plan.
    pub views: &'a BTreeMap<String, LogicalPlan>,
}

fn ident_of(name: &ObjectName) -> Option<&sqlparser::ast::Ident> {
    match name.0.last() {
        Some(ObjectNamePart::Identifier(id)) => Some(id),
        _ => None,
    }
}

/// Rename a plan's output columns (a projection that passes every column through).
fn rename(plan: LogicalPlan, names: Vec<String>) -> LogicalPlan {
    LogicalPlan::Project {
        exprs: (0..names.len()).map(ScalarExpr::Column).collect(),
        names,
        input: Box::new(plan),
    }
}

/// Apply `AS alias(c1, c2, …)` column aliases.
fn apply_column_aliases(
    plan: LogicalPlan,
    alias: Option<&TableAlias>,
) -> Result<LogicalPlan, CompileError> {
    let Some(alias) = alias else {
        return Ok(plan);
    };
    if alias.columns.is_empty() {
        return Ok(plan);
    }
    let schema = plan.schema();
    if alias.columns.len() > schema.len() {
        return Err(CompileError::plan(
            format!(
                "alias '{}' names {} columns but the relation has {}",
                alias.name.value,
                alias.columns.len(),
                schema.len()
            ),
            crate::parse::span_pos(alias.name.span),
        ));
    }
    let names = schema
        .fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            alias
                .columns
                .get(i)
                .map(|c| c.name.value.clone())
                .unwrap_or_else(|| f.name.clone())
        })
        .collect();
    Ok(rename(plan, names))
}

fn check_wildcard_options(
    o: &WildcardAdditionalOptions,
    pos: Option<Position>,
) -> Result<(), CompileError> {
    if o.opt_ilike.is_some()
        || o.opt_exclude.is_some()
        || o.opt_except.is_some()
        || o.opt_replace.is_some()
        || o.opt_rename.is_some()
        || o.opt_alias.is_some()
    {
        return Err(CompileError::unsupported(
            "wildcard modifiers (EXCLUDE, REPLACE, …) are not supported",
            pos,
        ));
    }
    Ok(())
}

/// One SELECT list entry after `*` expansion.
enum Item<'q> {
    Expr(&'q Expr, String),
    Col(usize, String),
}

impl Item<'_> {
    fn name(&self) -> &str {
        match self {
            Item::Expr(_, n) | Item::Col(_, n) => n,
        }
    }
}

/// An entry of the GROUP BY list.
enum GroupItem<'q> {
    Ast(&'q Expr),
    Col(usize),
}

/// The name DuckDB-like engines give an unaliased select expression.
fn derive_name(e: &Expr) -> String {
    match e {
        Expr::Identifier(id) => id.value.clone(),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map(|p| p.value.clone()).unwrap_or_default()
        }
        Expr::Nested(x) => derive_name(x),
        other => other.to_string(),
    }
}

/// A non-negative integer constant (LIMIT / OFFSET).
fn const_u64(e: &Expr, what: &str) -> Result<u64, CompileError> {
    if let Expr::Value(v) = e {
        if let Value::Number(n, _) = &v.value {
            if let Ok(x) = n.to_string().parse::<u64>() {
                return Ok(x);
            }
        }
    }
    Err(CompileError::plan(
        format!("{what} must be a non-negative integer literal"),
        pos_of(e),
    ))
}

fn ordinal(e: &Expr) -> Option<u64> {
    if let Expr::Value(v) = e {
        if let Value::Number(n, _) = &v.value {
            return n.to_string().parse::<u64>().ok();
        }
    }
    None
}

/// Cast each input of a set operation to common column types.
/// Adds a branch to a run of `UNION ALL` inputs, splicing in the inputs of a branch that
/// is itself a `UNION ALL`.
fn push_union_input(run: &mut Vec<LogicalPlan>, p: LogicalPlan) {
    match p {
        LogicalPlan::Union { inputs } => run.extend(inputs),
        p => run.push(p),
    }
}

fn unify_inputs(
    inputs: Vec<LogicalPlan>,
    pos: Option<Position>,
) -> Result<Vec<LogicalPlan>, CompileError> {
    let schemas: Vec<Schema> = inputs.iter().map(|p| p.schema()).collect();
    let Some(first) = schemas.first() else {
        return Ok(inputs);
    };
    let n = first.len();
    if let Some(bad) = schemas.iter().find(|s| s.len() != n) {
        return Err(CompileError::plan(
            format!(
                "UNION inputs have different column counts ({n} and {})",
                bad.len()
            ),
            pos,
        ));
    }
    let mut types = first.types();
    for s in &schemas {
        for (i, f) in s.fields.iter().enumerate() {
            let cur = types.get(i).copied().unwrap_or(SqlType::Null);
            let t = common_type(cur, f.ty).ok_or_else(|| {
                CompileError::plan(
                    format!(
                        "UNION column {} has incompatible types {cur} and {}",
                        i + 1,
                        f.ty
                    ),
                    pos,
                )
            })?;
            if let Some(slot) = types.get_mut(i) {
                *slot = t;
            }
        }
    }
    Ok(inputs
        .into_iter()
        .zip(schemas)
        .map(|(p, s)| {
            if s.types() == types {
                return p;
            }
            let exprs = s
                .fields
                .iter()
                .zip(&types)
                .enumerate()
                .map(|(i, (f, t))| coerce(ScalarExpr::Column(i), f.ty, *t))
                .collect();
            LogicalPlan::Project {
                exprs,
                names: s.fields.iter().map(|f| f.name.clone()).collect(),
                input: Box::new(p),
            }
        })
        .collect())
}

/// `SELECT DISTINCT` over a plan: group by every column.
fn distinct(plan: LogicalPlan) -> LogicalPlan {
    let n = plan.schema().len();
    LogicalPlan::Aggregate {
        input: Box::new(plan),
        group_by: (0..n).collect(),
        aggs: vec![],
    }
}

impl QueryBinder<'_> {
    /// Bind a query, leaving its ORDER BY / LIMIT / OFFSET pending (top level).
    #[recursive::recursive]
    pub fn bind_query(&self, q: &Query, outer: &Ctes) -> Result<BoundQuery, CompileError> {
        let pos = pos_of(q);
        if q.fetch.is_some()
            || !q.locks.is_empty()
            || q.for_clause.is_some()
            || q.settings.is_some()
            || q.format_clause.is_some()
            || !q.pipe_operators.is_empty()
        {
            return Err(CompileError::unsupported(
                "FETCH / FOR / SETTINGS / FORMAT / pipe clauses are not supported",
                pos,
            ));
        }
        let mut ctes = outer.clone();
        if let Some(with) = &q.with {
            if with.recursive {
                return Err(CompileError::unsupported(
                    "WITH RECURSIVE is not supported",
                    with.cte_tables
                        .first()
                        .and_then(|c| crate::parse::span_pos(c.alias.name.span))
                        .or(pos),
                ));
            }
            for cte in &with.cte_tables {
                let plan = self.bind_query(&cte.query, &ctes)?.into_plan();
                let plan = apply_column_aliases(plan, Some(&cte.alias))?;
                ctes.insert(cte.alias.name.value.to_lowercase(), plan);
            }
        }
        let (limit, offset) = match &q.limit_clause {
            None => (None, 0),
            Some(LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                if let Some(e) = limit_by.first() {
                    return Err(CompileError::unsupported(
                        "LIMIT BY is not supported",
                        pos_of(e),
                    ));
                }
                let limit = match limit {
                    Some(e) => Some(const_u64(e, "LIMIT")?),
                    None => None,
                };
                let offset = match offset {
                    Some(o) => const_u64(&o.value, "OFFSET")?,
                    None => 0,
                };
                (limit, offset)
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => (
                Some(const_u64(limit, "LIMIT")?),
                const_u64(offset, "OFFSET")?,
            ),
        };
        let order_by = q.order_by.as_ref();
        let (plan, order, hidden) = match q.body.as_ref() {
            SetExpr::Select(s) => self.bind_select(s, &ctes, order_by)?,
            body => {
                let plan = self.bind_set_expr(body, &ctes)?;
                let order = match order_by {
                    Some(ob) => self.order_by_output(ob, &plan.schema())?,
                    None => vec![],
                };
                (plan, order, 0)
            }
        };
        Ok(BoundQuery {
            plan,
            order,
            limit,
            offset,
            hidden,
        })
    }

    /// ORDER BY over the output columns of a set operation (names and ordinals only).
    fn order_by_output(&self, ob: &OrderBy, schema: &Schema) -> Result<Vec<SortKey>, CompileError> {
        let exprs = match &ob.kind {
            OrderByKind::Expressions(e) => e,
            OrderByKind::All(_) => {
                return Err(CompileError::unsupported(
                    "ORDER BY ALL is not supported",
                    None,
                ))
            }
        };
        let mut keys = Vec::new();
        for o in exprs {
            let (descending, nulls_first) = sort_options(o)?;
            let column = if let Some(n) = ordinal(&o.expr) {
                ordinal_index(n, schema.len(), pos_of(&o.expr))?
            } else {
                let name = match &o.expr {
                    Expr::Identifier(id) => id.value.clone(),
                    _ => {
                        return Err(CompileError::unsupported(
                            "ORDER BY of a UNION must name an output column or ordinal",
                            pos_of(&o.expr),
                        ))
                    }
                };
                schema.index_of(&name).ok_or_else(|| {
                    CompileError::plan(
                        format!("unknown column '{name}' in ORDER BY"),
                        pos_of(&o.expr),
                    )
                })?
            };
            keys.push(SortKey {
                column,
                descending,
                nulls_first,
            });
        }
        Ok(keys)
    }

    fn bind_set_expr(&self, body: &SetExpr, ctes: &Ctes) -> Result<LogicalPlan, CompileError> {
        match body {
            SetExpr::Select(s) => {
                let (plan, _, hidden) = self.bind_select(s, ctes, None)?;
                Ok(drop_hidden(plan, hidden))
            }
            SetExpr::Query(q) => Ok(self.bind_query(q, ctes)?.into_plan()),
            SetExpr::SetOperation { .. } => self.bind_set_operations(body, ctes),
            SetExpr::Values(v) => self.bind_values(v),
            other => Err(CompileError::unsupported(
                format!("'{other}' is not supported as a query"),
                pos_of(other),
            )),
        }
    }

    /// A chain of set operations. `a UNION ALL b UNION ALL c …` parses left-deep, one
    /// level per operator, and generated SQL has thousands of branches: the chain is
    /// walked iteratively into one n-ary `Union` per run of `UNION ALL` (a `UNION`
    /// closes the run under a `Distinct`), so its length costs no stack.
    fn bind_set_operations(
        &self,
        body: &SetExpr,
        ctes: &Ctes,
    ) -> Result<LogicalPlan, CompileError> {
        // The operators from the innermost (leftmost) one out.
        let mut chain = Vec::new();
        let mut leftmost = body;
        while let SetExpr::SetOperation {
            left,
            op,
            set_quantifier,
            right,
        } = leftmost
        {
            chain.push((op, set_quantifier, right.as_ref()));
            leftmost = left.as_ref();
        }
        chain.reverse();
        // Errors about the chain point at its start, as the span of the whole chain does.
        let pos = pos_of(leftmost);
        let mut run: Vec<LogicalPlan> = Vec::new();
        push_union_input(&mut run, self.bind_set_expr(leftmost, ctes)?);
        for (op, set_quantifier, right) in chain {
            if *op != SetOperator::Union {
                return Err(CompileError::unsupported(
                    format!("{op} is not supported (only UNION [ALL])"),
                    pos,
                ));
            }
            let is_distinct = match set_quantifier {
                SetQuantifier::All => false,
                SetQuantifier::Distinct | SetQuantifier::None => true,
                other => {
                    return Err(CompileError::unsupported(
                        format!("UNION {other} is not supported"),
                        pos,
                    ))
                }
            };
            push_union_input(&mut run, self.bind_set_expr(right, ctes)?);
            if is_distinct {
                let inputs = unify_inputs(std::mem::take(&mut run), pos)?;
                run.push(distinct(LogicalPlan::Union { inputs }));
            }
        }
        if run.len() == 1 {
            if let Some(only) = run.pop() {
                return Ok(only);
            }
        }
        let inputs = unify_inputs(run, pos)?;
        Ok(LogicalPlan::Union { inputs })
    }

    fn bind_values(&self, v: &Values) -> Result<LogicalPlan, CompileError> {
        let scope = Scope::default();
        let mut rows: Vec<Vec<(ScalarExpr, SqlType, Option<Position>)>> = Vec::new();
        let mut width = None;
        for row in &v.rows {
            let mut eb = ExprBinder::new(&scope, "VALUES");
            let mut out = Vec::new();
            for e in &row.content {
                let (x, t) = eb.bind(e)?;
                out.push((x, t, pos_of(e)));
            }
            match width {
                None => width = Some(out.len()),
                Some(w) if w != out.len() => {
                    return Err(CompileError::plan(
                        "VALUES rows have different lengths",
                        out.first().and_then(|c| c.2),
                    ))
                }
                _ => {}
            }
            rows.push(out);
        }
        let width = width.unwrap_or(0);
        let mut types = vec![SqlType::Null; width];
        for row in &rows {
            for (i, (_, t, p)) in row.iter().enumerate() {
                let cur = types.get(i).copied().unwrap_or(SqlType::Null);
                let nt = common_type(cur, *t).ok_or_else(|| {
                    CompileError::plan(format!("VALUES column {} mixes {cur} and {t}", i + 1), *p)
                })?;
                if let Some(slot) = types.get_mut(i) {
                    *slot = nt;
                }
            }
        }
        let names: Vec<String> = (0..width).map(|i| format!("col{i}")).collect();
        let coerced: Vec<Vec<ScalarExpr>> = rows
            .into_iter()
            .map(|row| {
                row.into_iter()
                    .zip(&types)
                    .map(|((x, t, _), ct)| coerce(x, t, *ct))
                    .collect()
            })
            .collect();
        let all_literal = coerced
            .iter()
            .all(|r| r.iter().all(|x| matches!(x, ScalarExpr::Literal(..))));
        if all_literal {
            let schema = Schema::new(
                names
                    .iter()
                    .zip(&types)
                    .map(|(n, t)| Field::new(n.clone(), *t))
                    .collect(),
            );
            let rows = coerced
                .into_iter()
                .map(|r| {
                    r.into_iter()
                        .map(|x| match x {
                            ScalarExpr::Literal(d, _) => d,
                            _ => Datum::Null,
                        })
                        .collect()
                })
                .collect();
            return Ok(LogicalPlan::Values { schema, rows });
        }
        // Rows with computed cells: a projection over one empty row each.
        let inputs = coerced
            .into_iter()
            .map(|exprs| LogicalPlan::Project {
                input: Box::new(one_empty_row()),
                exprs,
                names: names.clone(),
            })
            .collect::<Vec<_>>();
        Ok(match inputs.len() {
            1 => inputs.into_iter().next().unwrap_or_else(one_empty_row),
            _ => LogicalPlan::Union { inputs },
        })
    }

    /// Resolve a table name: CTE, then view, then catalog table.
    fn resolve_relation(
        &self,
        name: &ObjectName,
        ctes: &Ctes,
        pos: Option<Position>,
    ) -> Result<(LogicalPlan, String), CompileError> {
        let Some(id) = ident_of(name) else {
            return Err(CompileError::plan(
                format!("invalid table name {name}"),
                pos,
            ));
        };
        let key = id.value.to_lowercase();
        if name.0.len() == 1 {
            if let Some(p) = ctes.get(&key) {
                return Ok((p.clone(), id.value.clone()));
            }
        }
        if let Some(p) = self.views.get(&key) {
            return Ok((p.clone(), id.value.clone()));
        }
        match self
            .catalog
            .table(&id.value)
            .map_err(|e| CompileError::from(e).at(pos))?
        {
            Some(table) => {
                let n = table.schema.len();
                Ok((
                    LogicalPlan::Scan {
                        table,
                        projection: (0..n).collect(),
                        filters: vec![],
                    },
                    id.value.clone(),
                ))
            }
            None => Err(CompileError::plan(format!("unknown table '{name}'"), pos)),
        }
    }

    fn bind_from(
        &self,
        from: &[TableWithJoins],
        ctes: &Ctes,
    ) -> Result<(LogicalPlan, Scope), CompileError> {
        let mut acc: Option<(LogicalPlan, Scope)> = None;
        for twj in from {
            let (p, s) = self.bind_table_with_joins(twj, ctes)?;
            acc = Some(match acc {
                None => (p, s),
                Some((lp, ls)) => (
                    LogicalPlan::Join {
                        left: Box::new(lp),
                        right: Box::new(p),
                        kind: JoinKind::Inner,
                        on: vec![],
                        filter: None,
                    },
                    ls.concat(&s),
                ),
            });
        }
        Ok(acc.unwrap_or_else(|| (one_empty_row(), Scope::default())))
    }

    fn bind_table_with_joins(
        &self,
        twj: &TableWithJoins,
        ctes: &Ctes,
    ) -> Result<(LogicalPlan, Scope), CompileError> {
        let mut acc = self.bind_factor(&twj.relation, ctes)?;
        for j in &twj.joins {
            acc = self.bind_join(acc, j, ctes)?;
        }
        Ok(acc)
    }

    fn bind_join(
        &self,
        (lp, ls): (LogicalPlan, Scope),
        j: &Join,
        ctes: &Ctes,
    ) -> Result<(LogicalPlan, Scope), CompileError> {
        let pos = pos_of(&j.relation);
        let (rp, rs) = self.bind_factor(&j.relation, ctes)?;
        let (kind, constraint) = match &j.join_operator {
            JoinOperator::Join(c) | JoinOperator::Inner(c) => (JoinKind::Inner, c),
            JoinOperator::Left(c) | JoinOperator::LeftOuter(c) => (JoinKind::Left, c),
            JoinOperator::Right(c) | JoinOperator::RightOuter(c) => (JoinKind::Right, c),
            JoinOperator::FullOuter(c) => (JoinKind::Full, c),
            JoinOperator::CrossJoin(c) => (JoinKind::Inner, c),
            _ => {
                return Err(CompileError::unsupported(
                    "this join type is not supported (INNER, LEFT, RIGHT, FULL and CROSS are)",
                    pos,
                ))
            }
        };
        let nl = ls.cols.len();
        let mut scope = ls.concat(&rs);
        match constraint {
            JoinConstraint::On(e) => {
                let mut eb = ExprBinder::new(&scope, "ON");
                let filter = eb.bind_bool(e)?;
                let plan = LogicalPlan::Join {
                    left: Box::new(lp),
                    right: Box::new(rp),
                    kind,
                    on: vec![],
                    filter: Some(filter),
                };
                Ok((plan, scope))
            }
            JoinConstraint::None => {
                if kind != JoinKind::Inner {
                    return Err(CompileError::plan("an outer join needs ON or USING", pos));
                }
                let plan = LogicalPlan::Join {
                    left: Box::new(lp),
                    right: Box::new(rp),
                    kind,
                    on: vec![],
                    filter: None,
                };
                Ok((plan, scope))
            }
            JoinConstraint::Natural => Err(CompileError::unsupported(
                "NATURAL JOIN is not supported",
                pos,
            )),
            JoinConstraint::Using(names) => {
                let mut conds = Vec::new();
                let mut pairs = Vec::new();
                for n in names {
                    let Some(id) = ident_of(n) else {
                        return Err(CompileError::plan("invalid USING column", pos));
                    };
                    let p = crate::parse::span_pos(id.span).or(pos);
                    let li = ls.resolve(None, &id.value, p)?;
                    let ri = rs.resolve(None, &id.value, p)?;
                    let lt = ls.cols.get(li).map(|c| c.ty).unwrap_or(SqlType::Null);
                    let rt = rs.cols.get(ri).map(|c| c.ty).unwrap_or(SqlType::Null);
                    let (a, b) = coerce_comparison(
                        ScalarExpr::Column(li),
                        lt,
                        ScalarExpr::Column(nl + ri),
                        rt,
                        p,
                    )?;
                    conds.push(ScalarExpr::binary(BinaryOp::Eq, a, b));
                    pairs.push((li, nl + ri, lt, rt));
                }
                let join = LogicalPlan::Join {
                    left: Box::new(lp),
                    right: Box::new(rp),
                    kind,
                    on: vec![],
                    filter: ScalarExpr::and_all(conds),
                };
                match kind {
                    JoinKind::Inner | JoinKind::Left | JoinKind::Right => {
                        for &(li, ri, _, _) in &pairs {
                            let hide = if kind == JoinKind::Right { li } else { ri };
                            if let Some(c) = scope.cols.get_mut(hide) {
                                c.hidden = true;
                            }
                        }
                        Ok((join, scope))
                    }
                    JoinKind::Full => {
                        let n = scope.cols.len();
                        let mut exprs: Vec<ScalarExpr> = (0..n).map(ScalarExpr::Column).collect();
                        for &(li, ri, lt, rt) in &pairs {
                            let t = common_type(lt, rt).unwrap_or(lt);
                            if let Some(slot) = exprs.get_mut(li) {
                                *slot = ScalarExpr::Coalesce(vec![
                                    coerce(ScalarExpr::Column(li), lt, t),
                                    coerce(ScalarExpr::Column(ri), rt, t),
                                ]);
                            }
                            if let Some(c) = scope.cols.get_mut(li) {
                                c.ty = t;
                            }
                            if let Some(c) = scope.cols.get_mut(ri) {
                                c.hidden = true;
                            }
                        }
                        let names = scope.cols.iter().map(|c| c.name.clone()).collect();
                        Ok((
                            LogicalPlan::Project {
                                input: Box::new(join),
                                exprs,
                                names,
                            },
                            scope,
                        ))
                    }
                }
            }
        }
    }

    fn bind_factor(
        &self,
        tf: &TableFactor,
        ctes: &Ctes,
    ) -> Result<(LogicalPlan, Scope), CompileError> {
        let pos = pos_of(tf);
        match tf {
            TableFactor::Table {
                name, alias, args, ..
            } => {
                if let Some(args) = args {
                    return self.bind_window_tvf(name, args, alias.as_ref(), ctes, pos);
                }
                let (plan, default_q) = self.resolve_relation(name, ctes, pos)?;
                let plan = apply_column_aliases(plan, alias.as_ref())?;
                let q = alias
                    .as_ref()
                    .map(|a| a.name.value.clone())
                    .unwrap_or(default_q);
                let scope = Scope::from_schema(&plan.schema(), Some(&q));
                Ok((plan, scope))
            }
            TableFactor::Derived {
                lateral,
                subquery,
                alias,
                ..
            } => {
                if *lateral {
                    return Err(CompileError::unsupported("LATERAL is not supported", pos));
                }
                let plan = self.bind_query(subquery, ctes)?.into_plan();
                let plan = apply_column_aliases(plan, alias.as_ref())?;
                let q = alias.as_ref().map(|a| a.name.value.clone());
                let scope = Scope::from_schema(&plan.schema(), q.as_deref());
                Ok((plan, scope))
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                let (plan, mut scope) = self.bind_table_with_joins(table_with_joins, ctes)?;
                if let Some(a) = alias {
                    for c in &mut scope.cols {
                        c.qualifier = Some(a.name.value.to_lowercase());
                    }
                }
                Ok((plan, scope))
            }
            TableFactor::Function { lateral: true, .. } => {
                Err(CompileError::unsupported("LATERAL is not supported", pos))
            }
            other => Err(CompileError::unsupported(
                format!("table expression '{other}' is not supported"),
                pos,
            )),
        }
    }

    /// `TUMBLE(t, DESCRIPTOR(ts), size)`, `HOP(t, DESCRIPTOR(ts), slide, size)`,
    /// `SESSION(t, PARTITION_BY(k…), DESCRIPTOR(ts), gap)`.
    fn bind_window_tvf(
        &self,
        name: &ObjectName,
        args: &TableFunctionArgs,
        alias: Option<&TableAlias>,
        ctes: &Ctes,
        pos: Option<Position>,
    ) -> Result<(LogicalPlan, Scope), CompileError> {
        let fname = ident_of(name)
            .map(|i| i.value.to_uppercase())
            .unwrap_or_default();
        match fname.as_str() {
            "TUMBLE" | "HOP" | "SESSION" => {}
            "CUMULATE" => {
                return Err(CompileError::unsupported(
                    "the CUMULATE window is not supported",
                    pos,
                ))
            }
            _ => {
                return Err(CompileError::unsupported(
                    format!("table function {name} is not supported"),
                    pos,
                ))
            }
        }
        let mut exprs: Vec<&Expr> = Vec::new();
        for a in &args.args {
            match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => exprs.push(e),
                _ => {
                    return Err(CompileError::unsupported(
                        format!("named arguments to {fname} are not supported"),
                        pos,
                    ))
                }
            }
        }
        let mut partition_exprs: Vec<&Expr> = Vec::new();
        exprs.retain(|e| match e {
            Expr::Function(f) if function_name(f) == "PARTITION_BY" => {
                partition_exprs.extend(super::expr::children(e));
                false
            }
            _ => true,
        });
        let usage = match fname.as_str() {
            "TUMBLE" => "TUMBLE(TABLE t, DESCRIPTOR(ts), size)",
            "HOP" => "HOP(TABLE t, DESCRIPTOR(ts), slide, size)",
            _ => "SESSION(TABLE t [PARTITION BY k], DESCRIPTOR(ts), gap)",
        };
        let bad = || CompileError::plan(format!("expected {usage}"), pos);
        let table_name: ObjectName = match exprs.first() {
            Some(Expr::Identifier(id)) => ObjectName::from(vec![id.clone()]),
            Some(Expr::CompoundIdentifier(ids)) => ObjectName::from(ids.clone()),
            _ => return Err(bad()),
        };
        let (input, default_q) = self.resolve_relation(&table_name, ctes, pos)?;
        let q = alias.map(|a| a.name.value.clone()).unwrap_or(default_q);
        let in_scope = Scope::from_schema(&input.schema(), Some(&q));
        let time_col = match exprs.get(1) {
            Some(Expr::Function(f)) if function_name(f) == "DESCRIPTOR" => {
                let d = super::expr::children(exprs.get(1).copied().ok_or_else(bad)?);
                let [col] = d.as_slice() else {
                    return Err(bad());
                };
                let (x, t) = ExprBinder::new(&in_scope, "DESCRIPTOR").bind(col)?;
                match (x, t) {
                    (ScalarExpr::Column(i), SqlType::Timestamp) => i,
                    (_, t) => {
                        return Err(CompileError::plan(
                            format!("the window time column must be TIMESTAMP(3), not {t}"),
                            pos_of(*col),
                        ))
                    }
                }
            }
            _ => return Err(bad()),
        };
        let rest: Vec<&Expr> = exprs.iter().skip(2).copied().collect();
        let kind = match (fname.as_str(), rest.as_slice()) {
            ("TUMBLE", [size]) => WindowKind::Tumble {
                size_ms: constant_interval(size, "the TUMBLE size")?,
            },
            ("HOP", [slide, size]) => WindowKind::Hop {
                slide_ms: constant_interval(slide, "the HOP slide")?,
                size_ms: constant_interval(size, "the HOP size")?,
            },
            ("SESSION", [gap]) => WindowKind::Session {
                gap_ms: constant_interval(gap, "the SESSION gap")?,
            },
            _ => return Err(bad()),
        };
        let mut partition_by = Vec::new();
        for e in partition_exprs {
            match ExprBinder::new(&in_scope, "PARTITION BY").bind(e)? {
                (ScalarExpr::Column(i), _) => partition_by.push(i),
                _ => {
                    return Err(CompileError::plan(
                        "PARTITION BY must list columns",
                        pos_of(e),
                    ))
                }
            }
        }
        let plan = apply_column_aliases(
            LogicalPlan::Window {
                input: Box::new(input),
                kind,
                time_col,
                partition_by,
            },
            alias,
        )?;
        let scope = Scope::from_schema(&plan.schema(), Some(&q));
        Ok((plan, scope))
    }

    /// Bind one SELECT block. Returns the plan (with `hidden` trailing sort-only
    /// columns) and the ORDER BY keys over it.
    fn bind_select(
        &self,
        s: &Select,
        ctes: &Ctes,
        order_by: Option<&OrderBy>,
    ) -> Result<(LogicalPlan, Vec<SortKey>, usize), CompileError> {
        let pos = span_of_select(s);
        if s.top.is_some()
            || s.into.is_some()
            || !s.lateral_views.is_empty()
            || s.prewhere.is_some()
            || s.qualify.is_some()
            || !s.named_window.is_empty()
            || !s.connect_by.is_empty()
            || !s.cluster_by.is_empty()
            || !s.distribute_by.is_empty()
            || !s.sort_by.is_empty()
            || s.exclude.is_some()
        {
            return Err(CompileError::unsupported(
                "this SELECT clause (TOP, INTO, QUALIFY, WINDOW, LATERAL VIEW, …) is not supported",
                pos,
            ));
        }
        let is_distinct = match &s.distinct {
            None | Some(Distinct::All) => false,
            Some(Distinct::Distinct) => true,
            Some(Distinct::On(_)) => {
                return Err(CompileError::unsupported(
                    "DISTINCT ON is not supported",
                    pos,
                ))
            }
        };
        let (mut plan, mut scope) = self.bind_from(&s.from, ctes)?;
        if let Some(w) = &s.selection {
            let predicate = ExprBinder::new(&scope, "WHERE").bind_bool(w)?;
            // `rn <= N` on a ROW_NUMBER() of the FROM becomes that Top-N's limit.
            let (folded, rest) = super::rank::fold_rank_filter(plan, predicate);
            plan = folded;
            if let Some(predicate) = rest {
                plan = LogicalPlan::Filter {
                    input: Box::new(plan),
                    predicate,
                };
            }
        }
        // SELECT list, with * expanded.
        let mut items: Vec<Item> = Vec::new();
        for si in &s.projection {
            match si {
                SelectItem::UnnamedExpr(e) => {
                    // A bare column reference takes the column's declared spelling.
                    let declared = match e {
                        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => {
                            match ExprBinder::new(&scope, "SELECT").bind(e) {
                                Ok((ScalarExpr::Column(i), _)) => {
                                    scope.cols.get(i).map(|c| c.name.clone())
                                }
                                _ => None,
                            }
                        }
                        _ => None,
                    };
                    items.push(Item::Expr(e, declared.unwrap_or_else(|| derive_name(e))))
                }
                SelectItem::ExprWithAlias { expr, alias } => {
                    items.push(Item::Expr(expr, alias.value.clone()))
                }
                SelectItem::Wildcard(o) => {
                    check_wildcard_options(o, pos)?;
                    for i in scope.star(None, pos)? {
                        let name = scope
                            .cols
                            .get(i)
                            .map(|c| c.name.clone())
                            .unwrap_or_default();
                        items.push(Item::Col(i, name));
                    }
                }
                SelectItem::QualifiedWildcard(kind, o) => {
                    check_wildcard_options(o, pos)?;
                    let q = match kind {
                        SelectItemQualifiedWildcardKind::ObjectName(n) => ident_of(n)
                            .map(|i| i.value.clone())
                            .ok_or_else(|| CompileError::plan("invalid qualifier", pos))?,
                        SelectItemQualifiedWildcardKind::Expr(e) => {
                            return Err(CompileError::unsupported(
                                "expr.* is not supported",
                                pos_of(e),
                            ))
                        }
                    };
                    for i in scope.star(Some(&q), pos)? {
                        let name = scope
                            .cols
                            .get(i)
                            .map(|c| c.name.clone())
                            .unwrap_or_default();
                        items.push(Item::Col(i, name));
                    }
                }
                SelectItem::ExprWithAliases { expr, .. } => {
                    return Err(CompileError::unsupported(
                        "multiple aliases are not supported",
                        pos_of(expr),
                    ))
                }
            }
        }
        let group_exprs: &[Expr] = match &s.group_by {
            GroupByExpr::Expressions(exprs, mods) => {
                if !mods.is_empty() {
                    return Err(CompileError::unsupported(
                        "GROUP BY modifiers (ROLLUP, CUBE, …) are not supported",
                        pos,
                    ));
                }
                exprs
            }
            GroupByExpr::All(_) => {
                return Err(CompileError::unsupported(
                    "GROUP BY ALL is not supported",
                    pos,
                ))
            }
        };
        let order_exprs = match order_by.map(|o| &o.kind) {
            None => &[][..],
            Some(OrderByKind::Expressions(e)) => e.as_slice(),
            Some(OrderByKind::All(_)) => {
                return Err(CompileError::unsupported(
                    "ORDER BY ALL is not supported",
                    pos,
                ))
            }
        };
        let aggregating = !group_exprs.is_empty()
            || s.having.is_some()
            || items
                .iter()
                .any(|i| matches!(i, Item::Expr(e, _) if contains_aggregate(e)))
            || order_exprs.iter().any(|o| contains_aggregate(&o.expr));

        if aggregating {
            // Resolve GROUP BY ordinals and select aliases.
            let mut group_items: Vec<GroupItem> = Vec::new();
            for g in group_exprs {
                if let Some(n) = ordinal(g) {
                    let idx = ordinal_index(n, items.len(), pos_of(g))?;
                    match items.get(idx) {
                        Some(Item::Expr(e, _)) => {
                            if contains_aggregate(e) {
                                return Err(CompileError::plan(
                                    "GROUP BY cannot refer to an aggregate",
                                    pos_of(g),
                                ));
                            }
                            group_items.push(GroupItem::Ast(e))
                        }
                        Some(Item::Col(i, _)) => group_items.push(GroupItem::Col(*i)),
                        None => {
                            return Err(CompileError::plan(
                                "GROUP BY ordinal out of range",
                                pos_of(g),
                            ))
                        }
                    }
                    continue;
                }
                if let Expr::Identifier(id) = g {
                    if scope.resolve(None, &id.value, None).is_err() {
                        let alias = items.iter().find_map(|it| match it {
                            Item::Expr(e, n) if n.eq_ignore_ascii_case(&id.value) => Some(*e),
                            _ => None,
                        });
                        if let Some(e) = alias {
                            group_items.push(GroupItem::Ast(e));
                            continue;
                        }
                    }
                }
                group_items.push(GroupItem::Ast(g));
            }
            // Legacy group window.
            let mut window: Option<(usize, &'static str, &Expr)> = None;
            for (k, gi) in group_items.iter().enumerate() {
                if let GroupItem::Ast(e @ Expr::Function(f)) = gi {
                    let n = function_name(f);
                    let name: &'static str = match n.as_str() {
                        "TUMBLE" => "TUMBLE",
                        "HOP" => "HOP",
                        "SESSION" => "SESSION",
                        _ => continue,
                    };
                    if window.is_some() {
                        return Err(CompileError::plan(
                            "at most one group window per GROUP BY",
                            pos_of(f),
                        ));
                    }
                    window = Some((k, name, e));
                }
            }
            let mut groups: Vec<ScalarExpr> = Vec::new();
            let mut group_names: Vec<String> = Vec::new();
            let mut legacy: Option<LegacyWindow> = None;
            if let Some((k, wname, wexpr)) = window {
                let fpos = pos_of(wexpr);
                let args = super::expr::children(wexpr);
                let Some(ts) = args.first() else {
                    return Err(CompileError::plan(
                        format!("{wname} needs a time column"),
                        fpos,
                    ));
                };
                let time_col = match ExprBinder::new(&scope, "GROUP BY").bind(ts)? {
                    (ScalarExpr::Column(i), SqlType::Timestamp) => i,
                    (_, t) => {
                        return Err(CompileError::plan(
                            format!(
                                "the window time column must be a TIMESTAMP(3) column, not {t}"
                            ),
                            pos_of(*ts),
                        ))
                    }
                };
                let rest: Vec<&Expr> = args.iter().skip(1).copied().collect();
                let kind = match (wname, rest.as_slice()) {
                    ("TUMBLE", [size]) => WindowKind::Tumble {
                        size_ms: constant_interval(size, "the TUMBLE size")?,
                    },
                    ("HOP", [slide, size]) => WindowKind::Hop {
                        slide_ms: constant_interval(slide, "the HOP slide")?,
                        size_ms: constant_interval(size, "the HOP size")?,
                    },
                    ("SESSION", [gap]) => WindowKind::Session {
                        gap_ms: constant_interval(gap, "the SESSION gap")?,
                    },
                    _ => {
                        return Err(CompileError::plan(
                            format!("wrong arguments for group window {wname}"),
                            fpos,
                        ))
                    }
                };
                let mut partition_by = Vec::new();
                if wname == "SESSION" {
                    for (j, gi) in group_items.iter().enumerate() {
                        if j == k {
                            continue;
                        }
                        let x = match gi {
                            GroupItem::Col(i) => ScalarExpr::Column(*i),
                            GroupItem::Ast(e) => ExprBinder::new(&scope, "GROUP BY").bind(e)?.0,
                        };
                        if let ScalarExpr::Column(i) = x {
                            partition_by.push(i);
                        }
                    }
                }
                plan = LogicalPlan::Window {
                    input: Box::new(plan),
                    kind,
                    time_col,
                    partition_by,
                };
                for name in WINDOW_COLUMNS {
                    scope.cols.push(ScopeColumn {
                        qualifier: None,
                        name: name.to_string(),
                        ty: SqlType::Timestamp,
                        hidden: true,
                    });
                }
                // group indexes are set below, once the group order is known
                legacy = Some(LegacyWindow {
                    name: wname,
                    start_group: 0,
                    end_group: 0,
                });
            }
            let n_before_window =
                scope
                    .cols
                    .len()
                    .saturating_sub(if legacy.is_some() { 3 } else { 0 });
            for (k, gi) in group_items.iter().enumerate() {
                if window.map(|(w, _, _)| w) == Some(k) {
                    for (off, name) in [(0usize, "window_start"), (1, "window_end")] {
                        let x = ScalarExpr::Column(n_before_window + off);
                        let idx = push_group(&mut groups, &mut group_names, x, name.to_string());
                        if let Some(l) = legacy.as_mut() {
                            if off == 0 {
                                l.start_group = idx;
                            } else {
                                l.end_group = idx;
                            }
                        }
                    }
                    continue;
                }
                let (x, _) = match gi {
                    GroupItem::Col(i) => (
                        ScalarExpr::Column(*i),
                        scope.cols.get(*i).map(|c| c.ty).unwrap_or(SqlType::Null),
                    ),
                    GroupItem::Ast(e) => ExprBinder::new(&scope, "GROUP BY").bind(e)?,
                };
                let name = match &x {
                    ScalarExpr::Column(i) => scope
                        .cols
                        .get(*i)
                        .map(|c| c.name.clone())
                        .unwrap_or_default(),
                    _ => format!("$group{}", groups.len()),
                };
                push_group(&mut groups, &mut group_names, x, name);
            }
            let types = scope.types();
            let group_types = groups.iter().map(|g| g.ty(&types)).collect();
            let mut agg_state = Some(AggState {
                groups,
                group_types,
                args: vec![],
                aggs: vec![],
                window: legacy,
            });
            // keep names for the pre-projection
            if let Some(st) = agg_state.as_mut() {
                st.group_types = st.groups.iter().map(|g| g.ty(&types)).collect();
            }
            return self.finish_select(
                plan,
                &scope,
                items,
                agg_state,
                group_names,
                s,
                order_exprs,
                is_distinct,
            );
        }
        // Aggregates OVER a frame of rows: one node appending their values, which the
        // items read.
        let over: Vec<(usize, &sqlparser::ast::Function, Option<Position>)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| match it {
                Item::Expr(e, _) => super::over::over_call(e).map(|f| (i, f, pos_of(*e))),
                Item::Col(..) => None,
            })
            .collect();
        if !over.is_empty() {
            let width = plan.schema().len();
            if scope.cols.len() != width {
                return Err(CompileError::internal(
                    "the SELECT scope does not match its input's columns",
                ));
            }
            let calls: Vec<(&sqlparser::ast::Function, Option<Position>)> =
                over.iter().map(|(_, f, p)| (*f, *p)).collect();
            plan = super::over::bind_over(&calls, &scope, plan)?;
            let types = plan.schema().types();
            for (k, (i, _, _)) in over.iter().enumerate() {
                scope.cols.push(ScopeColumn {
                    qualifier: None,
                    name: format!("$over{k}"),
                    ty: types.get(width + k).copied().unwrap_or(SqlType::Null),
                    hidden: true,
                });
                if let Some(it) = items.get_mut(*i) {
                    *it = Item::Col(width + k, it.name().to_string());
                }
            }
        }
        // ROW_NUMBER() OVER (...) items: a Top-N node whose row number the item reads.
        let mut row_number_seen = false;
        for it in items.iter_mut() {
            let Item::Expr(e, name) = it else {
                continue;
            };
            let Some(f) = super::rank::row_number_call(e) else {
                continue;
            };
            let fpos = pos_of(*e);
            if row_number_seen {
                return Err(CompileError::unsupported(
                    "only one ROW_NUMBER() per SELECT is supported",
                    fpos,
                ));
            }
            row_number_seen = true;
            let width = plan.schema().len();
            if scope.cols.len() != width {
                return Err(CompileError::internal(
                    "the SELECT scope does not match its input's columns",
                ));
            }
            plan = super::rank::bind_row_number(f, &scope, plan, fpos)?;
            scope.cols.push(ScopeColumn {
                qualifier: None,
                name: crate::plan::ROW_NUMBER_COLUMN.to_string(),
                ty: SqlType::BigInt,
                hidden: true,
            });
            *it = Item::Col(width, name.clone());
        }
        self.finish_select(
            plan,
            &scope,
            items,
            None,
            vec![],
            s,
            order_exprs,
            is_distinct,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_select(
        &self,
        plan: LogicalPlan,
        scope: &Scope,
        items: Vec<Item>,
        mut agg_state: Option<AggState>,
        group_names: Vec<String>,
        s: &Select,
        order_exprs: &[sqlparser::ast::OrderByExpr],
        is_distinct: bool,
    ) -> Result<(LogicalPlan, Vec<SortKey>, usize), CompileError> {
        let mut exprs: Vec<ScalarExpr> = Vec::new();
        let names: Vec<String> = items.iter().map(|i| i.name().to_string()).collect();
        let mut having = None;
        let mut keys = Vec::new();
        let mut hidden: Vec<ScalarExpr> = Vec::new();
        {
            let mut eb = ExprBinder {
                scope,
                agg: agg_state.as_mut(),
                clause: "SELECT",
                depth: 0,
            };
            for it in &items {
                let x = match it {
                    Item::Expr(e, _) => eb.bind(e)?.0,
                    Item::Col(i, name) => {
                        let x = ScalarExpr::Column(*i);
                        match eb.agg.as_deref() {
                            None => x,
                            Some(st) => match st.groups.iter().position(|g| *g == x) {
                                Some(k) => ScalarExpr::Column(k),
                                None => {
                                    return Err(CompileError::plan(
                                        format!("column '{name}' must appear in the GROUP BY clause or be used in an aggregate function"),
                                        span_of_select(s),
                                    ))
                                }
                            },
                        }
                    }
                };
                exprs.push(x);
            }
            if let Some(h) = &s.having {
                eb.clause = "HAVING";
                having = Some(eb.bind_bool(h)?);
            }
            eb.clause = "ORDER BY";
            for o in order_exprs {
                let (descending, nulls_first) = sort_options(o)?;
                let mut column = None;
                if let Some(n) = ordinal(&o.expr) {
                    column = Some(ordinal_index(n, exprs.len(), pos_of(&o.expr))?);
                } else if let Expr::Identifier(id) = &o.expr {
                    let matches: Vec<usize> = names
                        .iter()
                        .enumerate()
                        .filter(|(_, n)| n.eq_ignore_ascii_case(&id.value))
                        .map(|(i, _)| i)
                        .collect();
                    if let Some(&first) = matches.first() {
                        let same = matches.iter().all(|&m| exprs.get(m) == exprs.get(first));
                        if !same {
                            return Err(CompileError::plan(
                                format!("ORDER BY '{}' is ambiguous", id.value),
                                pos_of(&o.expr),
                            ));
                        }
                        column = Some(first);
                    }
                }
                let column = match column {
                    Some(c) => c,
                    None => {
                        let (x, _) = eb.bind(&o.expr)?;
                        match exprs.iter().position(|e| *e == x) {
                            Some(c) => c,
                            None => match hidden.iter().position(|e| *e == x) {
                                Some(h) => exprs.len() + h,
                                None => {
                                    hidden.push(x);
                                    exprs.len() + hidden.len() - 1
                                }
                            },
                        }
                    }
                };
                keys.push(SortKey {
                    column,
                    descending,
                    nulls_first,
                });
            }
        }
        let mut plan = plan;
        if let Some(st) = agg_state {
            let ng = st.groups.len();
            let mut pre_names = group_names;
            pre_names.extend((0..st.args.len()).map(|i| format!("$arg{i}")));
            let mut pre_exprs = st.groups;
            pre_exprs.extend(st.args);
            plan = LogicalPlan::Project {
                input: Box::new(plan),
                exprs: pre_exprs,
                names: pre_names,
            };
            plan = LogicalPlan::Aggregate {
                input: Box::new(plan),
                group_by: (0..ng).collect(),
                aggs: st.aggs,
            };
            if let Some(h) = having {
                plan = LogicalPlan::Filter {
                    input: Box::new(plan),
                    predicate: h,
                };
            }
        }
        let n_hidden = hidden.len();
        if is_distinct && n_hidden > 0 {
            return Err(CompileError::plan(
                "with SELECT DISTINCT, ORDER BY expressions must appear in the select list",
                order_exprs.first().and_then(|o| pos_of(&o.expr)),
            ));
        }
        let mut all_names = names;
        all_names.extend((0..n_hidden).map(|i| format!("$order{i}")));
        exprs.extend(hidden);
        plan = LogicalPlan::Project {
            input: Box::new(plan),
            exprs,
            names: all_names,
        };
        if is_distinct {
            plan = distinct(plan);
        }
        Ok((plan, keys, n_hidden))
    }
}

fn push_group(
    groups: &mut Vec<ScalarExpr>,
    names: &mut Vec<String>,
    x: ScalarExpr,
    name: String,
) -> usize {
    match groups.iter().position(|g| *g == x) {
        Some(i) => i,
        None => {
            groups.push(x);
            names.push(name);
            groups.len() - 1
        }
    }
}

fn sort_options(o: &sqlparser::ast::OrderByExpr) -> Result<(bool, bool), CompileError> {
    if o.with_fill.is_some() {
        return Err(CompileError::unsupported(
            "WITH FILL is not supported",
            pos_of(&o.expr),
        ));
    }
    let descending = match &o.options.sort {
        None | Some(OrderBySort::Asc) => false,
        Some(OrderBySort::Desc) => true,
        Some(OrderBySort::Using(_)) => {
            return Err(CompileError::unsupported(
                "ORDER BY … USING is not supported",
                pos_of(&o.expr),
            ))
        }
    };
    Ok((descending, o.options.nulls_first.unwrap_or(false)))
}

fn ordinal_index(n: u64, len: usize, pos: Option<Position>) -> Result<usize, CompileError> {
    if n == 0 || n > len as u64 {
        return Err(CompileError::plan(
            format!("ordinal {n} is out of range (1 to {len})"),
            pos,
        ));
    }
    Ok((n - 1) as usize)
}

fn span_of_select(s: &Select) -> Option<Position> {
    crate::parse::span_pos(s.select_token.0.span)
}

/// A plan producing exactly one row with no columns (`SELECT` without `FROM`).
pub fn one_empty_row() -> LogicalPlan {
    LogicalPlan::Values {
        schema: Schema::default(),
        rows: vec![vec![]],
    }
}
