//! The compile driver: bind every statement of a script, then optimize and lower each
//! output, and render EXPLAIN text.

use crate::bind::{bind_statements, BoundOutput};
use crate::error::CompileError;
use crate::explain::{explain_logical, explain_physical};
use crate::limits::on_compile_stack;
use crate::lower;
use crate::optimizer;
use crate::parse::ExplainStage;
use crate::physical::{DataflowPlan, Output, PhysicalPlan, SinkTarget};
use crate::plan::LogicalPlan;
use sluice_catalogs::{Catalog, ConnectorValidator, TableDescriptor};

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
        ExplainStage::Physical => ensure_newline(explain_physical(&q.physical)),
        ExplainStage::All => format!(
            "== Logical Plan ==\n{}\n== Optimized Logical Plan ==\n{}\n== Physical Plan ==\n{}",
            ensure_newline(explain_logical(&q.logical)),
            ensure_newline(explain_logical(&q.optimized)),
            ensure_newline(explain_physical(&q.physical)),
        ),
    }
}

fn compile_output(out: BoundOutput) -> Result<(CompiledQuery, Output), CompileError> {
    let optimized = optimizer::optimize(out.logical.clone())?;
    let physical = lower::lower(&optimized)?;
    let updating = lower::is_updating(&physical);
    let output = Output {
        target: out.target.clone(),
        plan: physical.clone(),
        schema: out.schema,
        updating,
    };
    Ok((
        CompiledQuery {
            target: out.target,
            logical: out.logical,
            optimized,
            physical,
            updating,
        },
        output,
    ))
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
