//! [`ExecutionError`]: why a run failed.
//!
//! Errors are *data* while the dataflow runs: every operator that can fail on a row
//! emits the failure into an "errs" collection beside its "oks" collection (the
//! Materialize render style). All errs collections of a job are concatenated and
//! drained by one operator per worker that records them and raises the cancel flag;
//! sources then stop reading, the dataflow drains, and [`crate::run`] returns the
//! least recorded error (least in natural text order, so the reported error does not
//! depend on thread scheduling when several are raised).

use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// A failed run.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, thiserror::Error,
)]
pub enum ExecutionError {
    /// A connector failed (bad options at run time, I/O, a corrupt input file).
    #[error("connector error on table '{table}': {message}")]
    Connector {
        /// The table whose source or sink failed.
        table: String,
        /// The connector's message.
        message: String,
    },
    /// A record could not be decoded and the table's `'format.on-error'` policy is `fail`.
    #[error("bad record in table '{table}' at {position}: {error}")]
    BadRecord {
        /// The table.
        table: String,
        /// Where the record was (file and line, partition and offset…).
        position: String,
        /// Why it was rejected.
        error: String,
    },
    /// A data-dependent expression error (bad cast, overflow…).
    #[error("evaluation error in {operator}: {message}")]
    Eval {
        /// The operator that evaluated the expression, e.g. `Calc`.
        operator: String,
        /// What went wrong.
        message: String,
    },
    /// Another instance of the same job wrote the checkpoint record of an epoch this
    /// run was about to decide: this run stops without committing it (fencing).
    #[error(
        "superseded: checkpoint {epoch} of this job was written by another instance ({by}); \
         this instance stops without committing, so that only one instance writes the job's output"
    )]
    Superseded {
        /// The epoch both runs tried to decide.
        epoch: u64,
        /// The other run: its id and when its record was written.
        by: String,
    },
    /// The run was cancelled with [`crate::Progress::cancel`].
    #[error("the run was cancelled")]
    Cancelled,
    /// A bug: the plan or the runtime broke an invariant.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ExecutionError {
    /// An [`ExecutionError::Eval`] raised by `operator`.
    pub fn eval(operator: &str, message: impl Into<String>) -> Self {
        ExecutionError::Eval {
            operator: operator.to_string(),
            message: message.into(),
        }
    }
}

/// Shared by every worker of one run: the errors raised so far and the cancel flag
/// that stops sources.
#[derive(Clone, Default)]
pub(crate) struct ErrorSlot {
    errors: Arc<Mutex<Vec<ExecutionError>>>,
    cancelled: Arc<AtomicBool>,
}

impl ErrorSlot {
    /// Records an error and cancels the run.
    pub(crate) fn raise(&self, error: ExecutionError) {
        if let Ok(mut errors) = self.errors.lock() {
            errors.push(error);
        }
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// True once any error was raised.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// The least error raised, if any, in "natural" order of their text (so that
    /// `file.json:4` comes before `file.json:10`): independent of thread timing, and
    /// the first bad record of a file is the one reported.
    pub(crate) fn first(&self) -> Option<ExecutionError> {
        match self.errors.lock() {
            Ok(errors) => errors
                .iter()
                .min_by_key(|e| natural_key(&e.to_string()))
                .cloned(),
            Err(_) => Some(ExecutionError::Internal(
                "a worker panicked while recording an error".into(),
            )),
        }
    }
}

/// A sort key that orders digit runs by their numeric value.
fn natural_key(text: &str) -> Vec<(String, u128)> {
    let mut key = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (word, tail) = rest.split_at(split);
        let digits_end = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (digits, tail) = tail.split_at(digits_end);
        key.push((word.to_string(), digits.parse().unwrap_or(u128::MAX)));
        rest = tail;
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bad_record_of_a_file_is_reported() {
        let slot = ErrorSlot::default();
        for line in [10, 4, 27] {
            slot.raise(ExecutionError::BadRecord {
                table: "t".into(),
                position: format!("file:///x.json:{line}"),
                error: "bad".into(),
            });
        }
        match slot.first() {
            Some(ExecutionError::BadRecord { position, .. }) => {
                assert_eq!(position, "file:///x.json:4")
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
