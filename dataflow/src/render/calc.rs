//! `Calc`: filter then project. On batches (right after a source) with the columnar
//! kernels; on rows (after a stateful operator) row-at-a-time with the row evaluator
//! (evaluators are built once per operator; plain column references and literals skip
//! evaluation).

use super::{fallible_operator, map_fallible, Batches, Context, Rows, TimedBatch};
use crate::convert::kernel_error;
use crate::errors::ExecutionError;
use sluice_catalogs::{Schema, SqlType};
use sluice_compiler::eval::Evaluator;
use sluice_compiler::{Datum, Row, ScalarExpr};

/// An expression prepared for row-at-a-time evaluation.
#[derive(Clone, Debug)]
pub(crate) enum RowExpr {
    /// A column, copied.
    Column(usize),
    /// A constant.
    Literal(Datum),
    /// Anything else, through the row evaluator.
    Eval(Evaluator),
}

impl RowExpr {
    /// Prepares `expr` for rows of `types`.
    pub(crate) fn new(expr: &ScalarExpr, types: &[SqlType]) -> Self {
        match expr {
            ScalarExpr::Column(i) => RowExpr::Column(*i),
            ScalarExpr::Literal(d, _) => RowExpr::Literal(d.clone()),
            other => RowExpr::Eval(Evaluator::new(other, types)),
        }
    }

    /// Evaluates on one row; `operator` names the failing operator in errors.
    pub(crate) fn eval(&self, row: &[Datum], operator: &str) -> Result<Datum, ExecutionError> {
        match self {
            RowExpr::Column(i) => row.get(*i).cloned().ok_or_else(|| {
                ExecutionError::Internal(format!(
                    "{operator}: column {i} of a row of {} columns",
                    row.len()
                ))
            }),
            RowExpr::Literal(d) => Ok(d.clone()),
            RowExpr::Eval(e) => e
                .eval(row)
                .map_err(|e| ExecutionError::eval(operator, e.message)),
        }
    }

    /// True when the predicate holds (NULL and FALSE reject).
    pub(crate) fn holds(&self, row: &[Datum], operator: &str) -> Result<bool, ExecutionError> {
        match self.eval(row, operator)? {
            Datum::Bool(b) => Ok(b),
            Datum::Null => Ok(false),
            other => Err(ExecutionError::Internal(format!(
                "{operator}: predicate returned the non-boolean {other}"
            ))),
        }
    }
}

/// A prepared filter + projection.
#[derive(Clone, Debug)]
pub(crate) struct CalcProgram {
    predicate: Option<RowExpr>,
    project: Option<Vec<RowExpr>>,
}

impl CalcProgram {
    /// Prepares a `Calc` over rows of `types`.
    pub(crate) fn new(
        predicate: Option<&ScalarExpr>,
        project: Option<&[ScalarExpr]>,
        types: &[SqlType],
    ) -> Self {
        CalcProgram {
            predicate: predicate.map(|p| RowExpr::new(p, types)),
            project: project.map(|ps| ps.iter().map(|p| RowExpr::new(p, types)).collect()),
        }
    }

    /// The output row, `None` when filtered out.
    pub(crate) fn apply(&self, row: Row, operator: &str) -> Result<Option<Row>, ExecutionError> {
        if let Some(p) = &self.predicate {
            if !p.holds(&row, operator)? {
                return Ok(None);
            }
        }
        match &self.project {
            None => Ok(Some(row)),
            Some(exprs) => exprs
                .iter()
                .map(|e| e.eval(&row, operator))
                .collect::<Result<Row, _>>()
                .map(Some),
        }
    }
}

/// Renders a `Calc` over a row collection.
pub(crate) fn render_calc<'s>(
    ctx: &mut Context<'s>,
    rows: Rows<'s>,
    predicate: Option<&ScalarExpr>,
    project: Option<&[ScalarExpr]>,
    types: &[SqlType],
) -> Rows<'s> {
    let program = CalcProgram::new(predicate, project, types);
    map_fallible(ctx, rows, "Calc", move |row, t, r, out| {
        match program.apply(row, "Calc") {
            Ok(Some(row)) => out.push((Ok(row), t, r)),
            Ok(None) => {}
            Err(e) => out.push((Err(e), t, r)),
        }
    })
}

/// Renders a `Calc` over batches with the columnar kernels.
pub(crate) fn render_calc_batches<'s>(
    ctx: &mut Context<'s>,
    batches: Batches<'s>,
    predicate: Option<ScalarExpr>,
    project: Option<Vec<ScalarExpr>>,
    input: Schema,
    output: Schema,
) -> Batches<'s> {
    let kernels = ctx.kernels.clone();
    let progress = ctx.progress.clone();
    let (out, errs) =
        fallible_operator(
            batches,
            "Calc",
            move |b: TimedBatch, oks, errs| match kernels.calc_metered(
                predicate.as_ref(),
                project.as_deref(),
                &b.batch,
                &input,
                &output,
                progress.device_metrics(),
            ) {
                Ok(batch) if batch.num_rows() == 0 => {}
                Ok(batch) => oks.push(TimedBatch {
                    batch,
                    time: b.time,
                }),
                Err(e) => errs.push((kernel_error("Calc", e), b.time, 1)),
            },
        );
    ctx.errs.push(errs);
    out
}
