//! Row-at-a-time evaluation of [`ScalarExpr`] (SKELETON — owned by the expression work; replace).

use crate::datum::Datum;
use crate::expr::ScalarExpr;
use sluice_catalogs::SqlType;

/// A runtime evaluation error (bad cast, overflow…).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// What went wrong, one line.
    pub message: String,
}

/// An expression prepared for evaluation against rows of known column types.
#[derive(Clone, Debug)]
pub struct Evaluator {
    expr: ScalarExpr,
    input_types: Vec<SqlType>,
}

impl Evaluator {
    /// Prepare `expr` for rows whose columns have `input_types`.
    pub fn new(expr: &ScalarExpr, input_types: &[SqlType]) -> Evaluator {
        Evaluator {
            expr: expr.clone(),
            input_types: input_types.to_vec(),
        }
    }

    /// Evaluate on one row.
    pub fn eval(&self, row: &[Datum]) -> Result<Datum, EvalError> {
        let _ = (row, &self.expr, &self.input_types);
        Err(EvalError {
            message: "not implemented".into(),
        })
    }
}

/// A user-facing rendering of a datum of type `ty` (DECIMAL with its scale, TIMESTAMP as
/// `YYYY-MM-DD HH:MM:SS.mmm`, DATE as `YYYY-MM-DD`, NULL as `NULL`).
pub fn format_datum(d: &Datum, ty: SqlType) -> String {
    let _ = ty;
    d.to_string()
}
