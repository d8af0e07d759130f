//! The depth and size limits of `compile()` (`sluice_compiler::limits`): deep and wide
//! expressions, long `UNION ALL` chains and nested subqueries around and beyond the
//! limits compile or fail with a positioned error — they never overflow a stack, whatever
//! the calling thread's. What compiles at the limits also survives every later stage that
//! recurses on it (EXPLAIN, the plan's JSON round trip, the row evaluator) on a thread
//! with a tokio worker's 2 MiB of stack.

mod common;

use common::{catalog, AnyConnector};
use proptest::prelude::*;
use sluice_catalogs::Catalog;
use sluice_compiler::eval::Evaluator;
use sluice_compiler::instance::{plan_from_json, plan_to_json};
use sluice_compiler::{
    compile, CompileError, Compiled, DataflowPlan, Datum, ErrorKind, ExplainStage, PhysicalPlan,
    MAX_EXPR_DEPTH, MAX_PLAN_DEPTH, MAX_STATEMENT_TOKENS, PARSER_RECURSION_LIMIT,
};

/// A tokio worker's stack, the smallest any caller of the compiler or consumer of its
/// plans runs on.
const SMALL_STACK: usize = 2 << 20;

/// Runs `f` on a fresh thread with `stack` bytes of stack (an overflow aborts the test).
fn on_thread<R: Send + 'static>(stack: usize, f: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::Builder::new()
        .stack_size(stack)
        .spawn(f)
        .expect("spawn")
        .join()
        .expect("the thread panicked")
}

fn compile_sql(sql: &str) -> Result<Compiled, CompileError> {
    let cat = catalog();
    let c: &dyn Catalog = &cat;
    compile(sql, c, &AnyConnector)
}

/// Every stage after compilation that recurses on the plan.
fn exercise(compiled: &Compiled) {
    let _ = compiled.explain(ExplainStage::All);
    let json = plan_to_json(&compiled.plan).expect("encode");
    let back: DataflowPlan = plan_from_json(&json).expect("decode");
    assert_eq!(back, compiled.plan);
    for out in &compiled.plan.outputs {
        let mut stack = vec![&out.plan];
        while let Some(p) = stack.pop() {
            if let PhysicalPlan::Calc {
                input,
                predicate,
                project,
                ..
            } = p
            {
                let types = input.schema().types();
                let row = vec![Datum::Null; types.len()];
                for e in predicate.iter().chain(project.iter().flatten()) {
                    let _ = Evaluator::new(e, &types).eval(&row);
                }
            }
            stack.extend(p.inputs());
        }
    }
}

/// Compiles on a small stack (a tokio worker's: the compiler brings its own), checks
/// the outcome is a value or an error with a position, runs the later stages on what
/// compiled, and returns it.
fn check(sql: String) -> Result<(), CompileError> {
    on_thread(SMALL_STACK, move || {
        let r = compile_sql(&sql);
        match &r {
            Ok(c) => exercise(c),
            Err(e) => {
                assert_ne!(e.kind, ErrorKind::Internal, "{e}");
                assert!(e.position.is_some(), "no position: {e}");
            }
        }
        r.map(|_| ())
    })
}

fn chain(term: &str, op: &str, n: usize) -> String {
    vec![term; n].join(op)
}

fn nested(open: &str, inner: &str, close: &str, n: usize) -> String {
    format!("{}{inner}{}", open.repeat(n), close.repeat(n))
}

/// The shapes of deep input: each is a whole script built around a size `n`.
fn shape(kind: usize, n: usize) -> String {
    match kind % 13 {
        0 => format!("SELECT {} FROM t", chain("a", " + ", n)),
        1 => format!("SELECT a FROM t WHERE {}", chain("a > 0", " AND ", n)),
        2 => format!("SELECT a FROM t WHERE {}", chain("a = 1", " OR ", n)),
        3 => format!("SELECT {} FROM t", chain("s", " || ", n)),
        4 => format!("SELECT {} FROM t", chain("a * 2", " + ", n)),
        5 => format!(
            "SELECT {} FROM t",
            nested("CASE WHEN a > 0 THEN ", "a", " ELSE 0 END", n)
        ),
        6 => format!("SELECT {} FROM t", nested("(", "a", ")", n)),
        7 => format!("SELECT {} FROM t", nested("ABS(", "a", ")", n)),
        8 => chain("SELECT a FROM t", " UNION ALL ", n),
        9 => (0..n)
            .map(|i| format!("SELECT a, b FROM t WHERE a > {i}"))
            .collect::<Vec<_>>()
            .join(if n.is_multiple_of(2) {
                " UNION "
            } else {
                " UNION ALL "
            }),
        10 => {
            (0..n)
                .map(|_| "SELECT a FROM t")
                .enumerate()
                .map(|(i, s)| {
                    if i.is_multiple_of(2) {
                        format!("{s} UNION")
                    } else {
                        format!("{s} UNION ALL")
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
                + " SELECT a FROM t"
        }
        11 => format!("SELECT a FROM {}", nested("(SELECT a FROM ", "t", ") x", n)),
        _ => {
            let mut s = String::from("CREATE VIEW v0 AS SELECT a FROM t WHERE a > 0;\n");
            for i in 1..n {
                s.push_str(&format!(
                    "CREATE VIEW v{i} AS SELECT a FROM v{} WHERE a > {i};\n",
                    i - 1
                ));
            }
            s + &format!("SELECT a FROM v{}", n.saturating_sub(1))
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 20, ..ProptestConfig::default() })]

    /// Sizes around and beyond every limit (up to eight times the deepest one).
    #[test]
    fn deep_and_wide_inputs_compile_or_fail_with_a_position(
        kind in 0usize..13,
        n in prop_oneof![
            1usize..64,
            (PARSER_RECURSION_LIMIT - 8)..(PARSER_RECURSION_LIMIT + 8),
            (MAX_EXPR_DEPTH - 8)..(MAX_EXPR_DEPTH + 8),
            (MAX_PLAN_DEPTH / 2 - 4)..(MAX_PLAN_DEPTH / 2 + 4),
            (MAX_PLAN_DEPTH - 4)..(MAX_PLAN_DEPTH + 4),
            (MAX_EXPR_DEPTH + 8)..(8 * MAX_EXPR_DEPTH),
        ],
    ) {
        let _ = check(shape(kind, n));
    }
}

/// The inputs of the bug report (issue 12): each used to overflow a tokio worker's stack
/// and abort the master.
#[test]
fn the_reported_inputs_are_errors_at_a_position() {
    // The error points at the start of the expression (after `SELECT ` or `WHERE `).
    for (sql, column) in [
        (shape(0, 3000), 8),
        (shape(1, 5000), 23),
        (shape(2, 20_000), 23),
        (shape(3, 20_000), 8),
    ] {
        let e = check(sql).expect_err("too deep");
        assert!(e.to_string().contains("nested too deeply"), "{e}");
        assert_eq!(
            e.position.map(|p| (p.line, p.column)),
            Some((1, column)),
            "{e}"
        );
    }
}

#[test]
fn a_two_thousand_branch_union_all_compiles() {
    check(shape(8, 2000)).expect("a long UNION ALL is fine");
    let c = compile_sql(&shape(8, 2000)).expect("compiles");
    match &c.plan.outputs[0].plan {
        PhysicalPlan::Union { inputs } => assert_eq!(inputs.len(), 2000),
        other => panic!("expected one Union, got {other:?}"),
    }
}

#[test]
fn expressions_compile_up_to_the_depth_limit_and_not_beyond() {
    // `a + a` is one level below the projection; n terms are n - 1 levels of `+`.
    check(shape(0, MAX_EXPR_DEPTH)).expect("at the limit");
    // `a = 1 OR …`: each term is one level of `OR` over one of `=`.
    check(shape(2, MAX_EXPR_DEPTH - 1)).expect("at the limit");
    let e = check(shape(0, MAX_EXPR_DEPTH + 2)).expect_err("beyond the limit");
    assert_eq!(e.kind, ErrorKind::Unsupported);
}

#[test]
fn nesting_beyond_the_parser_limit_is_a_syntax_error_where_it_happens() {
    let e = check(shape(6, 2 * PARSER_RECURSION_LIMIT)).expect_err("too deep");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert!(e.message.contains("nested too deeply"), "{e}");
    // Not the statement's start: about where the parser gave up, inside the parentheses.
    assert!(e.position.is_some_and(|p| p.column > 8), "{e}");
}

#[test]
fn plans_deeper_than_the_limit_are_refused() {
    let e = check(shape(12, MAX_PLAN_DEPTH + 1)).expect_err("too deep");
    assert!(e.message.contains("nested too deeply"), "{e}");
    let e = check(shape(10, 2 * MAX_PLAN_DEPTH)).expect_err("too deep");
    assert!(e.message.contains("nested too deeply"), "{e}");
}

#[test]
fn the_longest_statement_is_refused_without_overflowing() {
    // Just within the token limit: the deepest syntax tree a statement can have, which
    // the compiler must reject and drop on its own stack.
    let terms = (MAX_STATEMENT_TOKENS - 8) / 2;
    let e = check(shape(2, terms / 3)).expect_err("too deep");
    assert!(e.message.contains("nested too deeply"), "{e}");
    let e = check(shape(0, terms)).expect_err("too deep");
    assert!(e.message.contains("nested too deeply"), "{e}");
    let e = check(shape(0, MAX_STATEMENT_TOKENS)).expect_err("too long");
    assert!(e.message.contains("tokens"), "{e}");
}
