//! The size limits of one compilation: how deep and how long a script may be before
//! [`crate::compile()`] refuses it with a [`crate::CompileError`] at a position.
//!
//! Every stage after the parser (binder, optimizer rules, lowering, EXPLAIN, the row
//! evaluator, the columnar kernels, the GPU code generator, the JSON the plan travels
//! in) recurses on the expression and plan trees. These limits bound that recursion so
//! that no input — however deep or long — can overflow a thread's stack, and the stack
//! the compiler runs on ([`COMPILE_STACK_BYTES`]) is sized for the worst input the
//! limits let through (the tests in `compiler/tests/limits.rs` run each one).
//!
//! | limit | what it bounds | what a user sees |
//! |---|---|---|
//! | [`MAX_STATEMENT_TOKENS`] | tokens in one statement | `unsupported: the statement has more than … tokens` |
//! | [`PARSER_RECURSION_LIMIT`] | nesting of parentheses, subqueries, `CASE`, calls | `syntax error: … nested too deeply` |
//! | [`MAX_EXPR_DEPTH`] | depth of one expression (`a + b + …` is one level per `+`) | `unsupported: expression is nested too deeply` |
//! | [`MAX_PLAN_DEPTH`] | depth of a query's plan (subqueries, views over views, mixed `UNION`/`UNION ALL`) | `unsupported: the query is nested too deeply` |
//!
//! A `UNION ALL` chain of any length within [`MAX_STATEMENT_TOKENS`] compiles: the
//! binder walks it iteratively into one n-ary `Union`.

/// Tokens one statement may have (about 1 MiB of SQL text). The parser builds operator
/// chains (`a + b + …`, `x OR y OR …`, `UNION ALL`) without recursing, so only the
/// token count bounds how deep its syntax tree can be; this bound keeps even rejecting
/// and dropping such a tree within [`COMPILE_STACK_BYTES`].
pub const MAX_STATEMENT_TOKENS: usize = 250_000;

/// sqlparser's recursion limit (its own default): how deeply parentheses, subqueries,
/// `CASE` expressions and function calls may nest.
pub const PARSER_RECURSION_LIMIT: usize = 50;

/// The deepest expression the binder accepts (operator chains such as `a + b + c + …`
/// count one level per operator). The bound expression may be up to twice as deep
/// (implicit casts); every later stage is tested at that depth.
pub const MAX_EXPR_DEPTH: usize = 256;

/// The deepest logical plan a query may bind to (each plan node one level: filters,
/// projections, aggregates, joins, distinct unions, views expanded in place).
pub const MAX_PLAN_DEPTH: usize = 256;

/// The stack [`crate::compile()`] runs on (allocated for the call, only the pages used
/// are touched): enough for every recursive stage at the limits above, in a debug
/// build, whatever thread calls it (a tokio worker has 2 MiB).
pub const COMPILE_STACK_BYTES: usize = 256 << 20;

/// Runs `f` on a stack of [`COMPILE_STACK_BYTES`].
pub fn on_compile_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::grow(COMPILE_STACK_BYTES, f)
}
