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
    /// The projection when it only picks columns, each at most once: they are moved
    /// out of the (owned) input row, not cloned. An identity projection (every column
    /// in order: a rename) is no projection at all.
    moves: Option<Vec<usize>>,
}

impl CalcProgram {
    /// Prepares a `Calc` over rows of `types`.
    pub(crate) fn new(
        predicate: Option<&ScalarExpr>,
        project: Option<&[ScalarExpr]>,
        types: &[SqlType],
    ) -> Self {
        let mut project: Option<Vec<RowExpr>> =
            project.map(|ps| ps.iter().map(|p| RowExpr::new(p, types)).collect());
        let columns: Option<Vec<usize>> = project.as_ref().and_then(|exprs| {
            exprs
                .iter()
                .map(|e| match e {
                    RowExpr::Column(i) if *i < types.len() => Some(*i),
                    _ => None,
                })
                .collect()
        });
        let mut moves = columns.filter(|cols| {
            let mut seen = vec![false; types.len()];
            cols.iter().all(|&c| !std::mem::replace(&mut seen[c], true))
        });
        if moves.as_ref().is_some_and(|cols| {
            cols.len() == types.len() && cols.iter().enumerate().all(|(i, &c)| i == c)
        }) {
            project = None;
            moves = None;
        }
        CalcProgram {
            predicate: predicate.map(|p| RowExpr::new(p, types)),
            project,
            moves,
        }
    }

    /// The output row, `None` when filtered out.
    pub(crate) fn apply(&self, row: Row, operator: &str) -> Result<Option<Row>, ExecutionError> {
        if let Some(p) = &self.predicate {
            if !p.holds(&row, operator)? {
                return Ok(None);
            }
        }
        if let Some(cols) = &self.moves {
            let mut row = row;
            if cols.iter().any(|&c| c >= row.len()) {
                return Err(ExecutionError::Internal(format!(
                    "{operator}: a projected column is past a row of {} columns",
                    row.len()
                )));
            }
            return Ok(Some(
                cols.iter()
                    .map(|&c| std::mem::replace(&mut row[c], Datum::Null))
                    .collect(),
            ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_compiler::BinaryOp;

    fn row() -> Row {
        vec![Datum::Int(1), Datum::Str("a".into()), Datum::Int(3)]
    }

    /// Picked columns are moved, repeated ones cloned, computed ones evaluated, an
    /// identity projection leaves the row as it is: the same rows in every case.
    #[test]
    fn projections_pick_move_clone_or_evaluate_with_the_same_result() {
        let types = [SqlType::BigInt, SqlType::Varchar, SqlType::BigInt];
        let col = ScalarExpr::col;
        let cases: Vec<(Vec<ScalarExpr>, Row)> = vec![
            (
                vec![col(2), col(1)],
                vec![Datum::Int(3), Datum::Str("a".into())],
            ),
            (
                vec![col(1), col(1)],
                vec![Datum::Str("a".into()), Datum::Str("a".into())],
            ),
            (vec![col(0), col(1), col(2)], row()),
            (
                vec![col(1), ScalarExpr::binary(BinaryOp::Add, col(0), col(2))],
                vec![Datum::Str("a".into()), Datum::Int(4)],
            ),
        ];
        for (project, expected) in cases {
            let p = CalcProgram::new(None, Some(&project), &types);
            assert_eq!(
                p.apply(row(), "Calc").unwrap(),
                Some(expected),
                "{project:?}"
            );
        }
        let identity = CalcProgram::new(None, Some(&[col(0), col(1), col(2)]), &types);
        assert!(identity.project.is_none() && identity.moves.is_none());
        let moved = CalcProgram::new(None, Some(&[col(2), col(0)]), &types);
        assert_eq!(moved.moves, Some(vec![2, 0]));
        // The predicate sees the whole row before columns are moved out of it.
        let pred = ScalarExpr::binary(BinaryOp::Gt, col(2), col(0));
        let p = CalcProgram::new(Some(&pred), Some(&[col(1)]), &types);
        assert_eq!(
            p.apply(row(), "Calc").unwrap(),
            Some(vec![Datum::Str("a".into())])
        );
    }
}
