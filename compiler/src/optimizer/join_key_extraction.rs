//! [`JoinKeyExtraction`]: turn equality conjuncts of a join's condition into hash keys.
//!
//! A conjunct `l = r` of `Join.filter` where one side reads only left columns and the
//! other only right columns becomes a key pair in `Join.on` (the right expression
//! re-indexed to the right input), so the join runs as a hash join on that key
//! instead of a cross product filtered afterwards. `Join.filter` is the join's own
//! condition (the ON clause), so this is valid for every join kind; WHERE conditions
//! above an outer join are never pulled into it (that is [`super::filter_pushdown`]'s
//! business, and it only merges them into inner joins).
//!
//! A conjunct is left in the filter when a side reads no column (`a = 1` is a filter,
//! not a key) or when the two sides differ in type (DECIMALs of different scales
//! compare equal by value but would not hash equal by their unscaled integers).

use super::util::{shift_down, transform_up};
use super::Rule;
use crate::error::CompileError;
use crate::plan::LogicalPlan;
use sluice_catalogs::SqlType;
use sluice_expr::expr::{BinaryOp, ScalarExpr};

/// Moves cross-side equality conjuncts of `Join.filter` into `Join.on`.
pub struct JoinKeyExtraction;

impl Rule for JoinKeyExtraction {
    fn name(&self) -> &'static str {
        "join_key_extraction"
    }

    fn rewrite(&self, plan: LogicalPlan) -> Result<LogicalPlan, CompileError> {
        transform_up(plan, &mut |node| Ok(extract(node)))
    }
}

/// Which input(s) an expression reads.
enum Side {
    Left,
    Right,
    Neither,
    Both,
}

fn side(e: &ScalarExpr, left_width: usize) -> Side {
    let cols = e.columns();
    match (cols.first(), cols.last()) {
        (None, _) | (_, None) => Side::Neither,
        (Some(_), Some(&hi)) if hi < left_width => Side::Left,
        (Some(&lo), Some(_)) if lo >= left_width => Side::Right,
        _ => Side::Both,
    }
}

fn extract(node: LogicalPlan) -> LogicalPlan {
    let LogicalPlan::Join {
        left,
        right,
        kind,
        mut on,
        filter: Some(filter),
    } = node
    else {
        return node;
    };
    let left_schema = left.schema().types();
    let right_schema = right.schema().types();
    let width = left_schema.len();
    let all: Vec<SqlType> = left_schema.iter().chain(&right_schema).copied().collect();
    let mut rest = Vec::new();
    let keys_before = on.len();
    for conjunct in filter.clone().conjuncts() {
        let key = match &conjunct {
            ScalarExpr::Binary {
                op: BinaryOp::Eq,
                left: a,
                right: b,
            } if a.ty(&all) == b.ty(&all) => match (side(a, width), side(b, width)) {
                (Side::Left, Side::Right) => Some(((**a).clone(), shift_down(b, width))),
                (Side::Right, Side::Left) => Some(((**b).clone(), shift_down(a, width))),
                _ => None,
            },
            _ => None,
        };
        match key {
            Some(pair) if !on.contains(&pair) => on.push(pair),
            Some(_) => {}
            None => rest.push(conjunct),
        }
    }
    // Leave the condition exactly as it was when nothing moved.
    let filter = if on.len() == keys_before && rest.len() == filter.clone().conjuncts().len() {
        Some(filter)
    } else {
        ScalarExpr::and_all(rest)
    };
    LogicalPlan::Join {
        left,
        right,
        kind,
        on,
        filter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::explain_logical;
    use crate::optimizer::optimize_with;
    use crate::optimizer::test_util::*;
    use crate::plan::JoinKind;

    fn run(plan: LogicalPlan) -> String {
        let out = optimize_with(plan, &[Box::new(JoinKeyExtraction)]).unwrap();
        explain_logical(&out)
    }

    fn orders_customers(kind: JoinKind, filter: ScalarExpr) -> LogicalPlan {
        join(
            scan(&orders_table()),
            scan(&customers_table()),
            kind,
            Some(filter),
        )
    }

    #[test]
    fn extracts_equalities_in_either_order() {
        // o_custkey = c_custkey AND c_custkey + 1 = o_orderkey AND o_orderkey > c_custkey
        let plan = orders_customers(
            JoinKind::Inner,
            and(
                and(eq(col(1), col(4)), eq(add(col(4), bigint(1)), col(0))),
                gt(col(0), col(4)),
            ),
        );
        insta::assert_snapshot!(explain_logical(&plan), @r"
        Join: Inner filter=o_custkey = c_custkey AND c_custkey + 1 = o_orderkey AND o_orderkey > c_custkey
          Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
          Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
        insta::assert_snapshot!(run(plan), @r"
        Join: Inner on=[o_custkey = c_custkey, o_orderkey = c_custkey + 1] filter=o_orderkey > c_custkey
          Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
          Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
    }

    #[test]
    fn applies_to_outer_join_conditions() {
        let plan = orders_customers(JoinKind::Left, eq(col(1), col(4)));
        insta::assert_snapshot!(run(plan), @r"
        Join: Left on=[o_custkey = c_custkey]
          Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
          Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
    }

    #[test]
    fn does_not_fire_on_one_sided_constant_or_mixed_equalities() {
        // o_custkey = o_orderkey (left only), c_custkey = 5 (constant side),
        // o_custkey + c_custkey = o_orderkey (mixed), o_custkey = c_custkey OR … (not a conjunct).
        let plan = orders_customers(
            JoinKind::Inner,
            and(
                and(eq(col(1), col(0)), eq(col(4), bigint(5))),
                and(
                    eq(add(col(1), col(4)), col(0)),
                    or(eq(col(1), col(4)), gt(col(0), bigint(1))),
                ),
            ),
        );
        let before = explain_logical(&plan);
        let after = run(plan);
        assert_eq!(before, after);
        insta::assert_snapshot!(after, @r"
        Join: Inner filter=o_custkey = o_orderkey AND c_custkey = 5 AND (o_custkey + c_custkey = o_orderkey AND (o_custkey = c_custkey OR o_orderkey > 1))
          Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
          Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
    }

    #[test]
    fn does_not_key_on_decimals_of_different_scales() {
        let l = project(scan(&orders_table()), vec![(col(2), "p2")]);
        let r = project(
            scan(&orders_table()),
            vec![(
                ScalarExpr::Cast {
                    expr: Box::new(col(2)),
                    to: dec_ty(12, 3),
                },
                "p3",
            )],
        );
        let plan = join(l, r, JoinKind::Inner, Some(eq(col(0), col(1))));
        insta::assert_snapshot!(run(plan), @r"
        Join: Inner filter=p2 = p3
          Project: o_price AS p2
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
          Project: CAST(o_price AS DECIMAL(12, 3)) AS p3
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
        ");
    }
}
