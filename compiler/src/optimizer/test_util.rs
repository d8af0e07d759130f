//! Small builders for hand-made plans in unit tests (the binder is not used here).

#![allow(dead_code)] // a helper kit: not every test uses every builder

use crate::plan::{JoinKind, LogicalPlan, WindowKind};
use sluice_catalogs::{Field, Schema, SourceCapabilities, SqlType, TableDescriptor, Watermark};
use sluice_expr::datum::Datum;
use sluice_expr::expr::{AggFunc, AggregateCall, BinaryOp, ScalarExpr};
use std::collections::BTreeMap;

/// A table without watermark or pushdown capabilities.
pub fn table(name: &str, cols: &[(&str, SqlType)]) -> TableDescriptor {
    TableDescriptor {
        name: name.to_string(),
        schema: Schema::new(cols.iter().map(|(n, t)| Field::new(*n, *t)).collect()),
        connector: "test".to_string(),
        options: BTreeMap::new(),
        watermark: None,
        capabilities: SourceCapabilities::default(),
    }
}

/// `orders(o_orderkey BIGINT, o_custkey BIGINT, o_price DECIMAL(10,2), o_ts TIMESTAMP)`
/// with a watermark on `o_ts` and filter pushdown.
pub fn orders_table() -> TableDescriptor {
    let mut t = table(
        "orders",
        &[
            ("o_orderkey", SqlType::BigInt),
            ("o_custkey", SqlType::BigInt),
            ("o_price", dec_ty(10, 2)),
            ("o_ts", SqlType::Timestamp),
        ],
    );
    t.watermark = Some(Watermark {
        column: 3,
        delay_ms: 1000,
    });
    t.capabilities.filter_pushdown = true;
    t.capabilities.projection_pushdown = true;
    t
}

/// `customers(c_custkey BIGINT, c_name VARCHAR, c_ts TIMESTAMP)`: no watermark, no pushdown.
pub fn customers_table() -> TableDescriptor {
    table(
        "customers",
        &[
            ("c_custkey", SqlType::BigInt),
            ("c_name", SqlType::Varchar),
            ("c_ts", SqlType::Timestamp),
        ],
    )
}

/// A DECIMAL type.
pub fn dec_ty(precision: u8, scale: u8) -> SqlType {
    SqlType::Decimal { precision, scale }
}

/// Scan of every column.
pub fn scan(t: &TableDescriptor) -> LogicalPlan {
    LogicalPlan::Scan {
        table: t.clone(),
        projection: (0..t.schema.len()).collect(),
        filters: vec![],
    }
}

/// `Filter`.
pub fn filter(input: LogicalPlan, predicate: ScalarExpr) -> LogicalPlan {
    LogicalPlan::Filter {
        input: Box::new(input),
        predicate,
    }
}

/// `Project` of `(expr, name)` pairs.
pub fn project(input: LogicalPlan, exprs: Vec<(ScalarExpr, &str)>) -> LogicalPlan {
    let (exprs, names) = exprs.into_iter().map(|(e, n)| (e, n.to_string())).unzip();
    LogicalPlan::Project {
        input: Box::new(input),
        exprs,
        names,
    }
}

/// `Aggregate`.
pub fn aggregate(
    input: LogicalPlan,
    group_by: Vec<usize>,
    aggs: Vec<AggregateCall>,
) -> LogicalPlan {
    LogicalPlan::Aggregate {
        input: Box::new(input),
        group_by,
        aggs,
    }
}

/// `Join` with a residual filter only.
pub fn join(
    left: LogicalPlan,
    right: LogicalPlan,
    kind: JoinKind,
    filter: Option<ScalarExpr>,
) -> LogicalPlan {
    LogicalPlan::Join {
        left: Box::new(left),
        right: Box::new(right),
        kind,
        on: vec![],
        filter,
    }
}

/// A TUMBLE/HOP/SESSION `Window` without partitioning.
pub fn window(input: LogicalPlan, kind: WindowKind, time_col: usize) -> LogicalPlan {
    LogicalPlan::Window {
        input: Box::new(input),
        kind,
        time_col,
        partition_by: vec![],
    }
}

/// `COUNT(*)`.
pub fn count_star() -> AggregateCall {
    AggregateCall {
        func: AggFunc::Count,
        arg: None,
        distinct: false,
        ty: SqlType::BigInt,
    }
}

/// `SUM(col)` over a column of type `ty`.
pub fn sum(col: usize, ty: SqlType) -> AggregateCall {
    AggregateCall {
        func: AggFunc::Sum,
        arg: Some(col),
        distinct: false,
        ty: AggFunc::Sum.return_type(Some(ty)),
    }
}

/// Column reference.
pub fn col(i: usize) -> ScalarExpr {
    ScalarExpr::Column(i)
}

/// INT literal.
pub fn int(i: i64) -> ScalarExpr {
    ScalarExpr::Literal(Datum::Int(i), SqlType::Int)
}

/// BIGINT literal.
pub fn bigint(i: i64) -> ScalarExpr {
    ScalarExpr::Literal(Datum::Int(i), SqlType::BigInt)
}

/// DECIMAL literal with the given unscaled value and scale.
pub fn dec(unscaled: i128, scale: u8) -> ScalarExpr {
    ScalarExpr::Literal(Datum::Decimal(unscaled), dec_ty(10, scale))
}

/// VARCHAR literal.
pub fn str_lit(s: &str) -> ScalarExpr {
    ScalarExpr::Literal(Datum::Str(s.to_string()), SqlType::Varchar)
}

/// BOOLEAN literal.
pub fn boolean(b: bool) -> ScalarExpr {
    ScalarExpr::Literal(Datum::Bool(b), SqlType::Boolean)
}

/// `a + b`.
pub fn add(a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(BinaryOp::Add, a, b)
}

/// `a - b`.
pub fn sub(a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(BinaryOp::Sub, a, b)
}

/// `a * b`.
pub fn mul(a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(BinaryOp::Mul, a, b)
}

/// `a = b`.
pub fn eq(a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(BinaryOp::Eq, a, b)
}

/// `a > b`.
pub fn gt(a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(BinaryOp::Gt, a, b)
}

/// `a < b`.
pub fn lt(a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(BinaryOp::Lt, a, b)
}

/// `a AND b`.
pub fn and(a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(BinaryOp::And, a, b)
}

/// `a OR b`.
pub fn or(a: ScalarExpr, b: ScalarExpr) -> ScalarExpr {
    ScalarExpr::binary(BinaryOp::Or, a, b)
}

/// `NOT a`.
pub fn not(a: ScalarExpr) -> ScalarExpr {
    ScalarExpr::Not(Box::new(a))
}
