//! # sluice-compiler: SQL text to dataflow plan
//!
//! ```text
//! SQL text ──parse──▶ AST ──bind(catalog)──▶ LogicalPlan ──optimize──▶ LogicalPlan' ──lower──▶ DataflowPlan
//! ```
//!
//! This crate is the whole left half of Sluice's data path and it is pure: no I/O, no
//! threads, no clocks. The entry point is [`compile()`]. The values, rows and bound
//! expressions it binds SQL to, and their evaluator, live in `sluice-expr` (shared with
//! the connectors, the columnar kernels and the dataflow, none of which needs the SQL
//! front end); they are re-exported here under their old paths. Read in this order:
//!
//! 1. [`datum`], [`expr`] (from `sluice-expr`): values and bound scalar expressions;
//! 2. [`plan`]: the logical plan, each variant with its state cost;
//! 3. [`physical`]: the dataflow plan that `sluice-dataflow` renders;
//! 4. [`state`]: what a plan keeps across restarts and SQL changes (stable ids);
//! 5. [`parse`] (Flink SQL to sqlparser statements), [`bind`] (statements to logical
//!    plans, with name resolution and type coercion) and [`mod@compile`] (the driver).
//!
//! Every error is a [`CompileError`] carrying a line and column when one is known; the
//! depth and size limits every input is held to are in [`limits`].

#![forbid(unsafe_code)]

pub mod bind;
pub mod compile;
pub mod error;
pub mod instance;
pub mod limits;
pub mod parse;
pub mod physical;
pub mod placement;
pub mod plan;
pub mod state;
pub mod window_plan;

pub use sluice_expr::{datum, eval, expr, packed, partial, temporal};

pub use bind::{bind_script, bind_tables, BoundOutput, BoundScript};
pub use compile::{compile, compile_tables, Compiled, CompiledQuery};
pub use datum::{Datum, Row, F64};
pub use error::{CompileError, ErrorKind, Position};
pub use expr::{AggFunc, AggregateCall, BinaryOp, Func, ScalarExpr, SortKey, TimeUnit};
pub use limits::{MAX_EXPR_DEPTH, MAX_PLAN_DEPTH, MAX_STATEMENT_TOKENS, PARSER_RECURSION_LIMIT};
pub use packed::PackedRow;
pub use parse::ExplainStage;
pub use physical::{
    AggStrategy, DataflowPlan, IntervalJoin, Output, PhysicalPlan, SinkTarget, WindowStrategy,
};
pub use plan::{JoinKind, LogicalPlan, WindowKind};
pub mod explain;
pub mod lower;
pub mod optimizer;
