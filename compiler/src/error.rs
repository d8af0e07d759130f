//! [`CompileError`]: every way a script can fail to compile, with a source position.

use std::fmt;

/// A 1-based line and column in the SQL text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Line, from 1.
    pub line: u64,
    /// Column, from 1.
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// The class of a compile error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The text does not parse.
    Syntax,
    /// It parses but does not mean anything: unknown table or column, type mismatch,
    /// misplaced aggregate, bad connector option…
    Plan,
    /// Valid SQL that Sluice does not support (yet).
    Unsupported,
    /// The catalog failed.
    Catalog,
    /// A bug in the compiler; please report it.
    Internal,
}

/// A compile error: one line of text, with the position it refers to when known.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct CompileError {
    /// The class.
    pub kind: ErrorKind,
    /// Human-readable message, no trailing period, no newline.
    pub message: String,
    /// Where in the SQL text, when known.
    pub position: Option<Position>,
}

impl CompileError {
    /// A syntax error.
    pub fn syntax(message: impl Into<String>, position: Option<Position>) -> Self {
        CompileError {
            kind: ErrorKind::Syntax,
            message: message.into(),
            position,
        }
    }
    /// A planning (name/type) error.
    pub fn plan(message: impl Into<String>, position: Option<Position>) -> Self {
        CompileError {
            kind: ErrorKind::Plan,
            message: message.into(),
            position,
        }
    }
    /// An unsupported feature.
    pub fn unsupported(message: impl Into<String>, position: Option<Position>) -> Self {
        CompileError {
            kind: ErrorKind::Unsupported,
            message: message.into(),
            position,
        }
    }
    /// A compiler bug.
    pub fn internal(message: impl Into<String>) -> Self {
        CompileError {
            kind: ErrorKind::Internal,
            message: message.into(),
            position: None,
        }
    }
    /// Attach a position if none is set yet.
    pub fn at(mut self, position: Option<Position>) -> Self {
        if self.position.is_none() {
            self.position = position;
        }
        self
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            ErrorKind::Syntax => "syntax error",
            ErrorKind::Plan => "error",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Catalog => "catalog error",
            ErrorKind::Internal => "internal error (a bug in Sluice, please report it)",
        };
        match self.position {
            Some(p) => write!(
                f,
                "{kind} at line {}, column {}: {}",
                p.line, p.column, self.message
            ),
            None => write!(f, "{kind}: {}", self.message),
        }
    }
}

impl From<sluice_catalogs::CatalogError> for CompileError {
    fn from(e: sluice_catalogs::CatalogError) -> Self {
        CompileError {
            kind: ErrorKind::Catalog,
            message: e.to_string(),
            position: None,
        }
    }
}
