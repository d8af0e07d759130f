//! The compile driver: bind every statement of a script, then optimize and lower each
//! output, and render EXPLAIN text.

use crate::bind::{bind_statements, BoundOutput};
use crate::error::CompileError;
use crate::explain::{explain_logical, explain_physical};
use crate::limits::on_compile_stack;
use crate::lower;
use crate::optimizer;
use crate::parse::ExplainStage;
use crate::physical::{DataflowPlan, Output, PhysicalPlan, SinkMode, SinkTarget};
use crate::plan::LogicalPlan;
use sluice_catalogs::{Catalog, ConnectorValidator, SinkKind, TableDescriptor};

/// One compiled output (an `INSERT INTO` or the final `SELECT`) at every plan stage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledQuery {
    /// Where the rows go.
    pub target: SinkTarget,
    /// The bound logical plan.
    pub logical: LogicalPlan,
    /// The optimized logical plan.
    pub optimized: LogicalPlan,
    /// The physical plan.
    pub physical: PhysicalPlan,
    /// True when the physical plan may retract rows (see [`Output::updating`]).
    pub updating: bool,
    /// How a table sink writes the rows (see [`Output::sink`]).
    pub sink: SinkMode,
}

/// A compiled script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Compiled {
    /// Tables declared by `CREATE TABLE` in this script, in order.
    pub tables: Vec<TableDescriptor>,
    /// The outputs in script order (an explained statement is not among them: EXPLAIN
    /// does not run it).
    pub queries: Vec<CompiledQuery>,
    /// The job: one [`Output`] per query, in order.
    pub plan: DataflowPlan,
    /// When the script contains `EXPLAIN …`: the text of the stage it asks for (the last
    /// EXPLAIN wins).
    pub explain: Option<String>,
    /// `SET 'key' = 'value'` settings of the script (e.g.
    /// `execution.checkpointing.interval`), the last one of a key winning.
    pub settings: std::collections::BTreeMap<String, String>,
}

impl Compiled {
    /// The plans of every query at `stage`, each under a header naming the query.
    pub fn explain(&self, stage: ExplainStage) -> String {
        let mut out = String::new();
        for (i, q) in self.queries.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let label = match &q.target {
                SinkTarget::Table(t) if t.options.contains_key(crate::bind::OVERWRITE_OPTION) => {
                    format!("INSERT OVERWRITE {}", t.name)
                }
                SinkTarget::Table(t) => format!("INSERT INTO {}", t.name),
                SinkTarget::Collect { .. } => "SELECT".to_string(),
            };
            out.push_str(&format!("-- query {}: {label}\n", i + 1));
            out.push_str(&stage_text(q, stage));
        }
        out
    }
}

fn ensure_newline(mut s: String) -> String {
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// The EXPLAIN text of one query at one stage.
fn stage_text(q: &CompiledQuery, stage: ExplainStage) -> String {
    match stage {
        ExplainStage::Logical => ensure_newline(explain_logical(&q.logical)),
        ExplainStage::Optimized => ensure_newline(explain_logical(&q.optimized)),
        ExplainStage::Physical => sink_line(q) + &ensure_newline(explain_physical(&q.physical)),
        ExplainStage::All => format!(
            "== Logical Plan ==\n{}\n== Optimized Logical Plan ==\n{}\n== Physical Plan ==\n{}",
            ensure_newline(explain_logical(&q.logical)),
            ensure_newline(explain_logical(&q.optimized)),
            sink_line(q) + &ensure_newline(explain_physical(&q.physical)),
        ),
    }
}

/// EXPLAIN PHYSICAL's line for a table sink that does more than append: how it writes
/// an updating result and what state it keeps.
fn sink_line(q: &CompiledQuery) -> String {
    let SinkTarget::Table(table) = &q.target else {
        return String::new();
    };
    let names = |cols: &[usize]| -> String {
        cols.iter()
            .map(|&c| table.schema.fields.get(c).map_or("?", |f| f.name.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let what = match &q.sink {
        SinkMode::Append => return String::new(),
        SinkMode::Final => "mode=final(updating result consolidated, written once when the input is complete) [state: one count per result row]".to_string(),
        SinkMode::Upsert { key, unique: true } => format!(
            "mode=upsert(key=[{}]; per changed key its new row or a delete, as each time completes) [state: none, rows are unique by the key]",
            names(key)
        ),
        SinkMode::Upsert { key, unique: false } => format!(
            "mode=upsert(key=[{}]; per changed key its latest live row or a delete, as each time completes) [state: each key's live rows]",
            names(key)
        ),
        SinkMode::Changelog => "mode=changelog(each time's retractions, then insertions) [stateless]".to_string(),
    };
    format!("Sink: {} {what}\n", table.name)
}

fn compile_output(out: BoundOutput) -> Result<(CompiledQuery, Output), CompileError> {
    let optimized = optimizer::optimize(out.logical.clone())?;
    let physical = lower::lower(&optimized)?;
    let updating = lower::is_updating(&physical);
    let sink = sink_mode(&out.target, &physical, updating).map_err(|e| e.at(out.position))?;
    let output = Output {
        target: out.target.clone(),
        plan: physical.clone(),
        schema: out.schema,
        updating,
        sink: sink.clone(),
    };
    Ok((
        CompiledQuery {
            target: out.target,
            logical: out.logical,
            optimized,
            physical,
            updating,
            sink,
        },
        output,
    ))
}

/// How the sink of `target` takes the rows of `plan`: see [`SinkMode`]. An updating
/// result of an unbounded source into a sink that only appends is an error (it could
/// only be written when its input ends, which is never).
fn sink_mode(
    target: &SinkTarget,
    plan: &PhysicalPlan,
    updating: bool,
) -> Result<SinkMode, CompileError> {
    let SinkTarget::Table(table) = target else {
        return Ok(SinkMode::Final);
    };
    if !updating {
        return Ok(SinkMode::Append);
    }
    match &table.capabilities.sink {
        SinkKind::Discard => Ok(SinkMode::Append),
        SinkKind::Changelog => Ok(SinkMode::Changelog),
        SinkKind::Upsert(key) => {
            let unique = lower::unique_key(plan).is_some_and(|u| u.iter().all(|c| key.contains(c)));
            Ok(SinkMode::Upsert {
                key: key.clone(),
                unique,
            })
        }
        SinkKind::Append => match first_unbounded_source(plan) {
            None => Ok(SinkMode::Final),
            Some(source) => Err(CompileError::plan(
                format!(
                    "table '{}' (connector '{}') only appends rows, but this query's result \
                     is updating (an aggregate without a window, an outer join or a Top-N \
                     changes rows it already emitted) and its source '{source}' is \
                     unbounded, so the result would never be complete; aggregate over \
                     TUMBLE/HOP/SESSION windows, or write it to a keyed sink (a kafka table \
                     with 'sink.key.fields' or a PRIMARY KEY takes it as upserts)",
                    table.name, table.connector
                ),
                None,
            )),
        },
    }
}

/// The name of the first source table of `plan` that is not bounded.
fn first_unbounded_source(plan: &PhysicalPlan) -> Option<String> {
    if let PhysicalPlan::Source { table, .. } = plan {
        if !table.capabilities.bounded {
            return Some(table.name.clone());
        }
    }
    plan.inputs().into_iter().find_map(first_unbounded_source)
}

/// Compile a SQL script: every `CREATE TABLE`/`CREATE VIEW`/`SET`/`INSERT INTO`/`SELECT`/
/// `EXPLAIN` statement, separated by `;`. See the crate docs for the stages.
///
/// Runs on a stack of its own ([`crate::limits::COMPILE_STACK_BYTES`]), so any thread
/// may call it with any input: inputs beyond the [`crate::limits`] are errors.
pub fn compile(
    sql: &str,
    catalog: &dyn Catalog,
    connectors: &dyn ConnectorValidator,
) -> Result<Compiled, CompileError> {
    on_compile_stack(|| compile_here(sql, catalog, connectors))
}

fn compile_here(
    sql: &str,
    catalog: &dyn Catalog,
    connectors: &dyn ConnectorValidator,
) -> Result<Compiled, CompileError> {
    let bound = bind_statements(sql, catalog, connectors, false)?;
    let mut queries = Vec::with_capacity(bound.outputs.len());
    let mut outputs = Vec::with_capacity(bound.outputs.len());
    for out in bound.outputs {
        let (q, o) = compile_output(out)?;
        queries.push(q);
        outputs.push(o);
    }
    let explain = match bound.explain {
        Some((stage, out)) => {
            let (q, _) = compile_output(out)?;
            Some(stage_text(&q, stage))
        }
        None => None,
    };
    Ok(Compiled {
        tables: bound.tables,
        queries,
        plan: DataflowPlan { outputs },
        explain,
        settings: bound.settings,
    })
}

/// Compile a script of table declarations only (`CREATE TABLE …; …`), as a catalog that
/// stores tables does: the descriptors in order, or the first error with its position.
/// Like [`compile()`], on a stack of its own.
pub fn compile_tables(
    sql: &str,
    catalog: &dyn Catalog,
    connectors: &dyn ConnectorValidator,
) -> Result<Vec<TableDescriptor>, CompileError> {
    crate::bind::bind_tables(sql, catalog, connectors)
}
