//! [`ConstantFolding`]: evaluate column-free sub-expressions at compile time and
//! simplify boolean identities and trivial filters.
//!
//! - Every sub-expression that reads no column is evaluated with the row evaluator
//!   ([`sluice_expr::eval::Evaluator`]) and replaced by a literal of the same type. When the
//!   evaluation fails (`1 / 0` is NULL, but `CAST('x' AS INT)` fails) the expression is
//!   left as it is, so the error surfaces at runtime, with its context, only if the
//!   expression is actually evaluated.
//! - `x AND TRUE` → `x`, `x AND FALSE` → `FALSE`, `x OR TRUE` → `TRUE`,
//!   `x OR FALSE` → `x` (either operand order), `NOT NOT x` → `x`.
//! - `Filter TRUE` disappears; `Filter FALSE` / `Filter NULL` becomes an empty `Values`
//!   with the same schema. A join filter of `TRUE` is dropped; always-TRUE scan filters
//!   are dropped and an always-FALSE/NULL one empties the scan.

use super::Rule;
use crate::error::CompileError;
use crate::plan::LogicalPlan;
use sluice_catalogs::SqlType;
use sluice_expr::datum::Datum;
use sluice_expr::eval::Evaluator;
use sluice_expr::expr::{BinaryOp, ScalarExpr};

/// The constant folding rule (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConstantFolding;

impl Rule for ConstantFolding {
    fn name(&self) -> &'static str {
        "constant_folding"
    }

    fn rewrite(&self, plan: LogicalPlan) -> Result<LogicalPlan, CompileError> {
        Ok(fold_plan(plan))
    }
}

fn is_bool(e: &ScalarExpr, b: bool) -> bool {
    matches!(e, ScalarExpr::Literal(Datum::Bool(v), _) if *v == b)
}

fn is_null_or_false(e: &ScalarExpr) -> bool {
    matches!(
        e,
        ScalarExpr::Literal(Datum::Null, _) | ScalarExpr::Literal(Datum::Bool(false), _)
    )
}

/// Fold one expression over rows of `input` column types (bottom-up).
pub fn fold_expr(e: ScalarExpr, input: &[SqlType]) -> ScalarExpr {
    let e = fold_children(e, input);
    let e = simplify(e, input);
    if matches!(e, ScalarExpr::Literal(..)) {
        return e;
    }
    let mut reads_column = false;
    e.visit_columns(&mut |_| reads_column = true);
    if reads_column || !e.is_deterministic() {
        return e;
    }
    match Evaluator::new(&e, &[]).eval(&[]) {
        Ok(d) => {
            let ty = e.ty(&[]);
            ScalarExpr::Literal(d, ty)
        }
        Err(_) => e,
    }
}

/// `e` as a BOOLEAN operand that replaces a BOOLEAN expression: an untyped NULL gets
/// the BOOLEAN type so the plan's schema does not change.
fn as_boolean(e: ScalarExpr, input: &[SqlType]) -> ScalarExpr {
    match e.ty(input) {
        SqlType::Boolean => e,
        _ => match e {
            ScalarExpr::Literal(d, _) => ScalarExpr::Literal(d, SqlType::Boolean),
            other => ScalarExpr::Cast {
                expr: Box::new(other),
                to: SqlType::Boolean,
            },
        },
    }
}

fn simplify(e: ScalarExpr, input: &[SqlType]) -> ScalarExpr {
    match e {
        ScalarExpr::Binary {
            op: BinaryOp::And,
            left,
            right,
        } => {
            if is_bool(&right, true) {
                as_boolean(*left, input)
            } else if is_bool(&left, true) {
                as_boolean(*right, input)
            } else if is_bool(&left, false) || is_bool(&right, false) {
                ScalarExpr::Literal(Datum::Bool(false), SqlType::Boolean)
            } else {
                ScalarExpr::Binary {
                    op: BinaryOp::And,
                    left,
                    right,
                }
            }
        }
        ScalarExpr::Binary {
            op: BinaryOp::Or,
            left,
            right,
        } => {
            if is_bool(&right, false) {
                as_boolean(*left, input)
            } else if is_bool(&left, false) {
                as_boolean(*right, input)
            } else if is_bool(&left, true) || is_bool(&right, true) {
                ScalarExpr::Literal(Datum::Bool(true), SqlType::Boolean)
            } else {
                ScalarExpr::Binary {
                    op: BinaryOp::Or,
                    left,
                    right,
                }
            }
        }
        ScalarExpr::Not(inner) => match *inner {
            ScalarExpr::Not(x) => as_boolean(*x, input),
            other => ScalarExpr::Not(Box::new(other)),
        },
        other => other,
    }
}

/// Fold a boxed expression, reusing its allocation.
fn fold_box(mut b: Box<ScalarExpr>, input: &[SqlType]) -> Box<ScalarExpr> {
    let e = std::mem::replace(&mut *b, ScalarExpr::Column(0));
    *b = fold_expr(e, input);
    b
}

fn fold_children(e: ScalarExpr, input: &[SqlType]) -> ScalarExpr {
    let f = |e: ScalarExpr| fold_expr(e, input);
    let fb = |b: Box<ScalarExpr>| fold_box(b, input);
    match e {
        ScalarExpr::Column(_) | ScalarExpr::Literal(..) => e,
        ScalarExpr::Binary { op, left, right } => ScalarExpr::Binary {
            op,
            left: fb(left),
            right: fb(right),
        },
        ScalarExpr::Not(x) => ScalarExpr::Not(fb(x)),
        ScalarExpr::Negate(x) => ScalarExpr::Negate(fb(x)),
        ScalarExpr::IsNull { expr, negated } => ScalarExpr::IsNull {
            expr: fb(expr),
            negated,
        },
        ScalarExpr::Cast { expr, to } => ScalarExpr::Cast { expr: fb(expr), to },
        ScalarExpr::Case { whens, else_ } => ScalarExpr::Case {
            whens: whens.into_iter().map(|(c, r)| (f(c), f(r))).collect(),
            else_: else_.map(fb),
        },
        ScalarExpr::Coalesce(args) => ScalarExpr::Coalesce(args.into_iter().map(f).collect()),
        ScalarExpr::InList {
            expr,
            list,
            negated,
        } => ScalarExpr::InList {
            expr: fb(expr),
            list: list.into_iter().map(f).collect(),
            negated,
        },
        ScalarExpr::Like {
            expr,
            pattern,
            negated,
            case_insensitive,
        } => ScalarExpr::Like {
            expr: fb(expr),
            pattern: fb(pattern),
            negated,
            case_insensitive,
        },
        ScalarExpr::Call { func, args } => ScalarExpr::Call {
            func,
            args: args.into_iter().map(f).collect(),
        },
    }
}

/// Fold a boxed plan, reusing its allocation.
fn fold_box_plan(mut p: Box<LogicalPlan>) -> Box<LogicalPlan> {
    let plan = std::mem::replace(&mut *p, LogicalPlan::Union { inputs: Vec::new() });
    *p = fold_plan(plan);
    p
}

fn empty(plan: &LogicalPlan) -> LogicalPlan {
    LogicalPlan::Values {
        schema: plan.schema(),
        rows: vec![],
    }
}

fn fold_plan(plan: LogicalPlan) -> LogicalPlan {
    match plan {
        LogicalPlan::Scan {
            table,
            projection,
            filters,
        } => {
            let types: Vec<SqlType> = projection
                .iter()
                .map(|&i| table.schema.fields.get(i).map_or(SqlType::Null, |f| f.ty))
                .collect();
            let filters: Vec<ScalarExpr> = filters
                .into_iter()
                .map(|f| fold_expr(f, &types))
                .flat_map(ScalarExpr::conjuncts)
                .filter(|f| !is_bool(f, true))
                .collect();
            let never = filters.iter().any(is_null_or_false);
            let scan = LogicalPlan::Scan {
                table,
                projection,
                filters,
            };
            if never {
                empty(&scan)
            } else {
                scan
            }
        }
        LogicalPlan::Values { .. } => plan,
        LogicalPlan::Filter { input, predicate } => {
            let input = fold_plan(*input);
            let predicate = fold_expr(predicate, &input.schema().types());
            if is_bool(&predicate, true) {
                input
            } else if is_null_or_false(&predicate) {
                empty(&input)
            } else {
                LogicalPlan::Filter {
                    input: Box::new(input),
                    predicate,
                }
            }
        }
        LogicalPlan::Project {
            input,
            exprs,
            names,
        } => {
            let input = fold_box_plan(input);
            let types = input.schema().types();
            LogicalPlan::Project {
                exprs: exprs.into_iter().map(|e| fold_expr(e, &types)).collect(),
                input,
                names,
            }
        }
        LogicalPlan::Join {
            left,
            right,
            kind,
            on,
            filter,
        } => {
            let left = fold_box_plan(left);
            let right = fold_box_plan(right);
            let (lt, rt) = (left.schema().types(), right.schema().types());
            let both: Vec<SqlType> = lt.iter().chain(&rt).copied().collect();
            LogicalPlan::Join {
                on: on
                    .into_iter()
                    .map(|(l, r)| (fold_expr(l, &lt), fold_expr(r, &rt)))
                    .collect(),
                filter: filter
                    .map(|f| fold_expr(f, &both))
                    .filter(|f| !is_bool(f, true)),
                left,
                right,
                kind,
            }
        }
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
        } => LogicalPlan::Aggregate {
            input: fold_box_plan(input),
            group_by,
            aggs,
        },
        LogicalPlan::Window {
            input,
            kind,
            time_col,
            partition_by,
        } => LogicalPlan::Window {
            input: fold_box_plan(input),
            kind,
            time_col,
            partition_by,
        },
        LogicalPlan::Union { inputs } => LogicalPlan::Union {
            inputs: inputs.into_iter().map(fold_plan).collect(),
        },
        LogicalPlan::Sort {
            input,
            keys,
            limit,
            offset,
        } => LogicalPlan::Sort {
            input: fold_box_plan(input),
            keys,
            limit,
            offset,
        },
        LogicalPlan::TopK {
            input,
            partition_by,
            order_by,
            limit,
            rank_column,
            position,
        } => LogicalPlan::TopK {
            input: fold_box_plan(input),
            partition_by,
            order_by,
            limit,
            rank_column,
            position,
        },
        LogicalPlan::Over {
            input,
            partition_by,
            order_by,
            aggs,
            preceding,
        } => LogicalPlan::Over {
            input: fold_box_plan(input),
            partition_by,
            order_by,
            aggs,
            preceding,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizer::optimize_with;
    use sluice_catalogs::{Field, Schema};
    use sluice_expr::datum::F64;
    use sluice_expr::expr::Func;

    fn values() -> LogicalPlan {
        LogicalPlan::Values {
            schema: Schema::new(vec![
                Field::new("a", SqlType::BigInt),
                Field::new("b", SqlType::Boolean),
            ]),
            rows: vec![vec![Datum::Int(1), Datum::Bool(true)]],
        }
    }
    fn big(v: i64) -> ScalarExpr {
        ScalarExpr::lit(Datum::Int(v), SqlType::BigInt)
    }
    fn bool_lit(v: bool) -> ScalarExpr {
        ScalarExpr::lit(Datum::Bool(v), SqlType::Boolean)
    }
    fn fold(p: LogicalPlan) -> LogicalPlan {
        optimize_with(p, &[Box::new(ConstantFolding)]).expect("optimizes")
    }
    fn filter(predicate: ScalarExpr) -> LogicalPlan {
        LogicalPlan::Filter {
            input: Box::new(values()),
            predicate,
        }
    }
    fn project(exprs: Vec<ScalarExpr>) -> LogicalPlan {
        let names = (0..exprs.len()).map(|i| format!("c{i}")).collect();
        LogicalPlan::Project {
            input: Box::new(values()),
            exprs,
            names,
        }
    }

    #[test]
    fn folds_arithmetic_and_functions() {
        let e = ScalarExpr::binary(
            BinaryOp::Add,
            ScalarExpr::col(0),
            ScalarExpr::binary(BinaryOp::Mul, big(2), big(3)),
        );
        let upper = ScalarExpr::Call {
            func: Func::Upper,
            args: vec![ScalarExpr::lit(Datum::Str("ab".into()), SqlType::Varchar)],
        };
        let sqrt = ScalarExpr::Call {
            func: Func::Sqrt,
            args: vec![ScalarExpr::lit(Datum::Float(F64(4.0)), SqlType::Double)],
        };
        let plan = fold(project(vec![e, upper, sqrt]));
        insta::assert_snapshot!(format!("{plan:?}"), @r#"Project { input: Values { schema: Schema { fields: [Field { name: "a", ty: BigInt, nullable: true }, Field { name: "b", ty: Boolean, nullable: true }] }, rows: [[Int(1), Bool(true)]] }, exprs: [Binary { op: Add, left: Column(0), right: Literal(Int(6), BigInt) }, Literal(Str("AB"), Varchar), Literal(Float(F64(2.0)), Double)], names: ["c0", "c1", "c2"] }"#);
    }

    #[test]
    fn keeps_failing_expressions() {
        let bad = ScalarExpr::Cast {
            expr: Box::new(ScalarExpr::lit(Datum::Str("x".into()), SqlType::Varchar)),
            to: SqlType::Int,
        };
        let overflow = ScalarExpr::binary(BinaryOp::Add, big(i64::MAX), big(1));
        let plan = fold(project(vec![bad.clone(), overflow.clone()]));
        match plan {
            LogicalPlan::Project { exprs, .. } => assert_eq!(exprs, vec![bad, overflow]),
            other => panic!("unexpected plan {other:?}"),
        }
    }

    #[test]
    fn boolean_identities() {
        let b = || ScalarExpr::col(1);
        let and = |l, r| ScalarExpr::binary(BinaryOp::And, l, r);
        let or = |l, r| ScalarExpr::binary(BinaryOp::Or, l, r);
        let not = |e| ScalarExpr::Not(Box::new(e));
        let plan = fold(project(vec![
            and(b(), bool_lit(true)),
            and(bool_lit(true), b()),
            and(b(), bool_lit(false)),
            or(b(), bool_lit(true)),
            or(bool_lit(false), b()),
            not(not(b())),
            // (1 < 2) AND b → b
            and(ScalarExpr::binary(BinaryOp::Lt, big(1), big(2)), b()),
        ]));
        let LogicalPlan::Project { exprs, .. } = plan else {
            panic!("not a project")
        };
        insta::assert_snapshot!(format!("{exprs:?}"), @"[Column(1), Column(1), Literal(Bool(false), Boolean), Literal(Bool(true), Boolean), Column(1), Column(1), Column(1)]");
    }

    #[test]
    fn untyped_null_operands_keep_the_boolean_type() {
        let untyped = || ScalarExpr::lit(Datum::Null, SqlType::Null);
        let plan = fold(project(vec![
            ScalarExpr::binary(BinaryOp::And, untyped(), bool_lit(true)),
            ScalarExpr::binary(BinaryOp::Or, bool_lit(false), untyped()),
            ScalarExpr::Not(Box::new(ScalarExpr::Not(Box::new(untyped())))),
        ]));
        let LogicalPlan::Project { exprs, .. } = plan else {
            panic!("not a project")
        };
        insta::assert_snapshot!(format!("{exprs:?}"), @"[Literal(Null, Boolean), Literal(Null, Boolean), Literal(Null, Boolean)]");
    }

    #[test]
    fn removes_true_filter() {
        let pred = ScalarExpr::binary(BinaryOp::Eq, big(1), big(1));
        assert_eq!(fold(filter(pred)), values());
    }

    #[test]
    fn false_and_null_filters_become_empty_values() {
        let preds = [
            ScalarExpr::binary(BinaryOp::Eq, big(1), big(2)),
            ScalarExpr::lit(Datum::Null, SqlType::Boolean),
            ScalarExpr::Not(Box::new(ScalarExpr::binary(BinaryOp::Eq, big(1), big(1)))),
        ];
        let plans: Vec<LogicalPlan> = preds.into_iter().map(|p| fold(filter(p))).collect();
        assert!(plans.iter().all(|p| *p == plans[0]));
        insta::assert_snapshot!(format!("{:?}", plans[0]), @r#"Values { schema: Schema { fields: [Field { name: "a", ty: BigInt, nullable: true }, Field { name: "b", ty: Boolean, nullable: true }] }, rows: [] }"#);
    }

    #[test]
    fn join_and_scan_filters() {
        let join = LogicalPlan::Join {
            left: Box::new(values()),
            right: Box::new(values()),
            kind: crate::plan::JoinKind::Inner,
            on: vec![(
                ScalarExpr::col(0),
                ScalarExpr::binary(
                    BinaryOp::Add,
                    ScalarExpr::col(0),
                    ScalarExpr::binary(BinaryOp::Sub, big(2), big(2)),
                ),
            )],
            filter: Some(ScalarExpr::binary(BinaryOp::Lt, big(1), big(2))),
        };
        let LogicalPlan::Join { on, filter, .. } = fold(join) else {
            panic!("not a join")
        };
        insta::assert_snapshot!(format!("{on:?} {filter:?}"), @"[(Column(0), Binary { op: Add, left: Column(0), right: Literal(Int(0), BigInt) })] None");

        let table = sluice_catalogs::TableDescriptor {
            name: "t".into(),
            schema: Schema::new(vec![Field::new("a", SqlType::BigInt)]),
            connector: "test".into(),
            options: Default::default(),
            watermark: None,
            capabilities: Default::default(),
        };
        let scan = |filters| LogicalPlan::Scan {
            table: table.clone(),
            projection: vec![0],
            filters,
        };
        let keep = ScalarExpr::binary(BinaryOp::Gt, ScalarExpr::col(0), big(1));
        assert_eq!(
            fold(scan(vec![bool_lit(true), keep.clone()])),
            scan(vec![keep.clone()])
        );
        insta::assert_snapshot!(format!("{:?}", fold(scan(vec![keep, bool_lit(false)]))), @r#"Values { schema: Schema { fields: [Field { name: "a", ty: BigInt, nullable: true }] }, rows: [] }"#);
    }

    #[test]
    fn keeps_column_filters() {
        let pred = ScalarExpr::binary(
            BinaryOp::Gt,
            ScalarExpr::col(0),
            ScalarExpr::binary(BinaryOp::Sub, big(10), big(3)),
        );
        let plan = fold(filter(pred));
        insta::assert_snapshot!(format!("{plan:?}"), @r#"Filter { input: Values { schema: Schema { fields: [Field { name: "a", ty: BigInt, nullable: true }, Field { name: "b", ty: Boolean, nullable: true }] }, rows: [[Int(1), Bool(true)]] }, predicate: Binary { op: Gt, left: Column(0), right: Literal(Int(7), BigInt) } }"#);
    }
}
