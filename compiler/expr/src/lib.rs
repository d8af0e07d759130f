//! # sluice-expr: rows, values and bound expressions, with their evaluator
//!
//! ```text
//!              sluice-compiler ──binds SQL to──▶ ScalarExpr, AggregateCall ─┐
//!                                                                          ▼
//! connectors ──decode to──▶ Row / Arrow ──▶ columnar & GPU kernels, dataflow ──eval──▶ Row ──▶ sinks
//! ```
//!
//! The layer every part of Sluice's data path shares: what a value and a row are, what a
//! bound expression or aggregate call is, and what evaluating one means. The compiler
//! (`sluice-compiler`) produces these types from SQL text; the connectors
//! (`sluice-connectors`) decode records into rows and push filters into sources; the
//! columnar kernels (`sluice-columnar`, `sluice-gpu`) evaluate expressions on Arrow
//! batches and must agree with [`eval`]; the dataflow (`sluice-dataflow`) holds
//! [`Row`]s and [`PackedRow`]s in its state. None of them needs the SQL front end to do
//! so, which is why this crate stands apart from the compiler.
//!
//! It is pure: no I/O, no threads, no clocks, and no SQL parser (it does not depend on
//! sqlparser). Read in this order:
//!
//! 1. [`datum`]: values ([`Datum`]) and rows ([`Row`]); [`packed`]: the compact
//!    [`PackedRow`] stateful operators keep;
//! 2. [`expr`]: bound scalar expressions ([`ScalarExpr`]) and aggregate calls
//!    ([`AggregateCall`]), with their typing rules;
//! 3. [`eval`]: the row evaluator, the reference semantics (casts, `LIKE`, functions),
//!    and [`temporal`], the one parser and formatter of dates and timestamps;
//! 4. [`partial`]: the partial-row layout of pre-aggregation, the contract between the
//!    columnar kernels that produce partial rows and the `Reduce` that merges them;
//! 5. [`gpu_support`]: which expressions and aggregates the GPU kernels compute exactly
//!    as [`eval`] does, asked by both the compiler's placement and the GPU kernels;
//! 6. [`checkpoint`] (the records a checkpoint leaves) and [`options`] (option names and
//!    values): the small vocabulary the connectors share with the compiler and the
//!    runtime.

#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod datum;
pub mod eval;
pub mod expr;
pub mod gpu_support;
pub mod options;
pub mod packed;
pub mod partial;
pub mod temporal;

pub use datum::{Datum, Row, F64};
pub use eval::{EvalError, Evaluator};
pub use expr::{
    AggFunc, AggStrategy, AggregateCall, BinaryOp, Func, ScalarExpr, SortKey, TimeUnit,
};
pub use packed::PackedRow;
