//! [`FilterPushdown`]: move filter conjuncts as close to the sources as they can go.
//!
//! The rule walks the plan top-down carrying the conjuncts of the filters above the
//! current node, and at each node sends every conjunct as far down as is valid:
//!
//! - **Filter**: adjacent filters merge (their conjuncts join the carried ones).
//! - **Project**: through, with the projection's expressions substituted for columns
//!   (not a conjunct reading a `PROCTIME()` column: it must see the projected value).
//! - **Join**: first, an outer join becomes less outer when a WHERE conjunct can never
//!   be TRUE on a row NULL-padded on one side (`LEFT JOIN … WHERE r.x > 5` is an inner
//!   join: the padded rows fail `r.x > 5`). The analysis is conservative: only strict
//!   operators (not CASE, COALESCE, IS NULL or CONCAT) propagate the padded NULLs.
//!   Then (WHERE conjuncts) a conjunct over one side goes into that side when the
//!   side is not null-supplying (inner: both sides; LEFT: left; RIGHT: right; FULL:
//!   neither); a conjunct over both sides of an inner join merges into `Join.filter`;
//!   everything else stays above the join. The join's own condition (`Join.filter`,
//!   the ON clause) is split too: an ON conjunct over one side only goes into that
//!   side when it is the null-supplying side, or any side of an inner join.
//! - **Union**: into every input.
//! - **Window**: through, when the conjunct reads no window column (and, for SESSION,
//!   only `PARTITION BY` columns: dropping rows would change the sessions).
//! - **Aggregate**: through, when the conjunct reads only group columns (and there
//!   is at least one: a global aggregate emits a row even on empty input).
//! - **Sort**: through a plain ORDER BY, never below a LIMIT or OFFSET.
//! - **TopK**: through, when the conjunct reads only `PARTITION BY` columns (it keeps
//!   or drops whole partitions, so the numbering within a kept one is unchanged).
//! - **Scan**: into `Scan.filters` when the table's source can evaluate predicates
//!   (`capabilities.filter_pushdown`), else as a Filter right above the scan.
//!
//! Conjuncts that stop at a node are re-assembled (in their original order, without
//! duplicates) into one Filter above it.

use super::util::{shift_down, substitute};
use super::Rule;
use crate::error::CompileError;
use crate::plan::{JoinKind, LogicalPlan, WindowKind};
use sluice_expr::datum::Datum;
use sluice_expr::expr::{BinaryOp, Func, ScalarExpr};

/// Pushes filter conjuncts towards (and into) the scans.
pub struct FilterPushdown;

impl Rule for FilterPushdown {
    fn name(&self) -> &'static str {
        "filter_pushdown"
    }

    fn rewrite(&self, plan: LogicalPlan) -> Result<LogicalPlan, CompileError> {
        push(plan, Vec::new())
    }
}

/// `Filter(preds)` over `plan`, or `plan` when there are none.
fn wrap(plan: LogicalPlan, preds: Vec<ScalarExpr>) -> LogicalPlan {
    match ScalarExpr::and_all(dedup(preds)) {
        Some(predicate) => LogicalPlan::Filter {
            input: Box::new(plan),
            predicate,
        },
        None => plan,
    }
}

/// Removes repeated conjuncts, keeping the first occurrence.
fn dedup(preds: Vec<ScalarExpr>) -> Vec<ScalarExpr> {
    let mut out: Vec<ScalarExpr> = Vec::with_capacity(preds.len());
    for p in preds {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// Which join input(s) a conjunct over `left ++ right` reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    /// No column at all (a constant).
    Neither,
    Left,
    Right,
    Both,
}

fn side(e: &ScalarExpr, left_width: usize) -> Side {
    let cols = e.columns();
    match (cols.first(), cols.last()) {
        (Some(_), Some(&hi)) if hi < left_width => Side::Left,
        (Some(&lo), Some(_)) if lo >= left_width => Side::Right,
        (Some(_), Some(_)) => Side::Both,
        _ => Side::Neither,
    }
}

/// Returns a plan equivalent to `Filter(AND preds)` over `plan`, with the conjuncts
/// pushed down as far as they validly go and every input rewritten the same way.
fn push(plan: LogicalPlan, preds: Vec<ScalarExpr>) -> Result<LogicalPlan, CompileError> {
    match plan {
        LogicalPlan::Filter { input, predicate } => {
            let mut all = predicate.conjuncts();
            all.extend(preds);
            push(*input, all)
        }
        LogicalPlan::Project {
            input,
            exprs,
            names,
        } => {
            // A conjunct reading a non-deterministic column (`PROCTIME()`) stays above:
            // below, it would see another evaluation than the projected value.
            let (stay, go): (Vec<_>, Vec<_>) = preds.into_iter().partition(|p| {
                p.columns()
                    .iter()
                    .any(|&c| exprs.get(c).is_some_and(|e| !e.is_deterministic()))
            });
            let below = go
                .iter()
                .map(|p| substitute(p, &exprs))
                .collect::<Result<Vec<_>, _>>()?;
            let node = LogicalPlan::Project {
                input: Box::new(push(*input, below)?),
                exprs,
                names,
            };
            Ok(wrap(node, stay))
        }
        LogicalPlan::Join {
            left,
            right,
            kind,
            on,
            filter,
        } => push_join(*left, *right, kind, on, filter, preds),
        LogicalPlan::Union { inputs } => Ok(LogicalPlan::Union {
            inputs: inputs
                .into_iter()
                .map(|i| push(i, preds.clone()))
                .collect::<Result<_, _>>()?,
        }),
        LogicalPlan::Window {
            input,
            kind,
            time_col,
            partition_by,
        } => {
            let width = input.schema().len();
            let (below, above): (Vec<_>, Vec<_>) = preds.into_iter().partition(|p| {
                p.columns().iter().all(|&c| {
                    c < width
                        && (!matches!(kind, WindowKind::Session { .. })
                            || partition_by.contains(&c))
                })
            });
            let node = LogicalPlan::Window {
                input: Box::new(push(*input, below)?),
                kind,
                time_col,
                partition_by,
            };
            Ok(wrap(node, above))
        }
        LogicalPlan::Aggregate {
            input,
            group_by,
            aggs,
        } => {
            let groups = group_by.len();
            let (below, above): (Vec<_>, Vec<_>) = preds
                .into_iter()
                .partition(|p| groups > 0 && p.columns().iter().all(|&c| c < groups));
            let below = below
                .iter()
                .map(|p| p.remap_columns(&|c| group_by[c]))
                .collect();
            let node = LogicalPlan::Aggregate {
                input: Box::new(push(*input, below)?),
                group_by,
                aggs,
            };
            Ok(wrap(node, above))
        }
        LogicalPlan::TopK {
            input,
            partition_by,
            order_by,
            limit,
            rank_column,
            position,
        } => {
            let (below, above): (Vec<_>, Vec<_>) = preds.into_iter().partition(|p| {
                let cols = p.columns();
                !cols.is_empty() && cols.iter().all(|c| partition_by.contains(c))
            });
            let node = LogicalPlan::TopK {
                input: Box::new(push(*input, below)?),
                partition_by,
                order_by,
                limit,
                rank_column,
                position,
            };
            Ok(wrap(node, above))
        }
        // As for a Top-N: a predicate on partition columns only keeps or drops whole
        // partitions, so it may run first.
        LogicalPlan::Over {
            input,
            partition_by,
            order_by,
            aggs,
            preceding,
        } => {
            let (below, above): (Vec<_>, Vec<_>) = preds.into_iter().partition(|p| {
                let cols = p.columns();
                !cols.is_empty() && cols.iter().all(|c| partition_by.contains(c))
            });
            let node = LogicalPlan::Over {
                input: Box::new(push(*input, below)?),
                partition_by,
                order_by,
                aggs,
                preceding,
            };
            Ok(wrap(node, above))
        }
        LogicalPlan::Sort {
            input,
            keys,
            limit,
            offset,
        } => {
            let (below, above) = if limit.is_none() && offset == 0 {
                (preds, Vec::new())
            } else {
                (Vec::new(), preds)
            };
            let node = LogicalPlan::Sort {
                input: Box::new(push(*input, below)?),
                keys,
                limit,
                offset,
            };
            Ok(wrap(node, above))
        }
        LogicalPlan::Scan {
            table,
            projection,
            mut filters,
        } => {
            if table.capabilities.filter_pushdown && !preds.is_empty() {
                filters.extend(preds);
                Ok(LogicalPlan::Scan {
                    table,
                    projection,
                    filters: dedup(filters),
                })
            } else {
                Ok(wrap(
                    LogicalPlan::Scan {
                        table,
                        projection,
                        filters,
                    },
                    preds,
                ))
            }
        }
        values @ LogicalPlan::Values { .. } => Ok(wrap(values, preds)),
    }
}

fn push_join(
    left: LogicalPlan,
    right: LogicalPlan,
    kind: JoinKind,
    on: Vec<(ScalarExpr, ScalarExpr)>,
    filter: Option<ScalarExpr>,
    preds: Vec<ScalarExpr>,
) -> Result<LogicalPlan, CompileError> {
    let width = left.schema().len();
    let kind = simplify_outer_join(kind, &preds, width);
    let (mut to_left, mut to_right, mut join_filter, mut above) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // The join's own (ON) condition: a one-sided conjunct may filter the side it reads
    // before the join when that side's unmatched rows are not preserved.
    for c in filter.map(ScalarExpr::conjuncts).unwrap_or_default() {
        match (side(&c, width), kind) {
            (Side::Left, JoinKind::Inner | JoinKind::Right) => to_left.push(c),
            (Side::Right, JoinKind::Inner | JoinKind::Left) => to_right.push(shift_down(&c, width)),
            _ => join_filter.push(c),
        }
    }
    // WHERE conjuncts over the join's output: never below a null-supplying side.
    for p in preds {
        match (side(&p, width), kind) {
            (Side::Left | Side::Neither, JoinKind::Inner | JoinKind::Left) => to_left.push(p),
            (Side::Right, JoinKind::Inner | JoinKind::Right) => {
                to_right.push(shift_down(&p, width))
            }
            (Side::Neither, JoinKind::Right) => to_right.push(p),
            (Side::Both, JoinKind::Inner) => join_filter.push(p),
            _ => above.push(p),
        }
    }
    let node = LogicalPlan::Join {
        left: Box::new(push(left, to_left)?),
        right: Box::new(push(right, to_right)?),
        kind,
        on,
        filter: ScalarExpr::and_all(dedup(join_filter)),
    };
    Ok(wrap(node, above))
}

/// An outer join under a WHERE conjunct that can never be TRUE on a NULL-padded row of
/// a side loses that side's padded rows anyway: LEFT becomes INNER when the WHERE
/// rejects NULLs of the right side, FULL becomes LEFT/RIGHT/INNER, and so on.
fn simplify_outer_join(kind: JoinKind, preds: &[ScalarExpr], left_width: usize) -> JoinKind {
    let rejects = |left_side: bool| {
        preds
            .iter()
            .any(|p| never_true_when_null(p, &|c| (c < left_width) == left_side))
    };
    match kind {
        JoinKind::Inner => JoinKind::Inner,
        JoinKind::Left if rejects(false) => JoinKind::Inner,
        JoinKind::Right if rejects(true) => JoinKind::Inner,
        JoinKind::Full => match (rejects(true), rejects(false)) {
            (true, true) => JoinKind::Inner,
            (true, false) => JoinKind::Left,
            (false, true) => JoinKind::Right,
            (false, false) => JoinKind::Full,
        },
        other => other,
    }
}

/// True when `e` is FALSE or NULL (never TRUE) on every row whose `side` columns are
/// all NULL. Conservative: `false` when unsure.
fn never_true_when_null(e: &ScalarExpr, side: &impl Fn(usize) -> bool) -> bool {
    match e {
        ScalarExpr::Binary {
            op: BinaryOp::And,
            left,
            right,
        } => never_true_when_null(left, side) || never_true_when_null(right, side),
        ScalarExpr::Binary {
            op: BinaryOp::Or,
            left,
            right,
        } => never_true_when_null(left, side) && never_true_when_null(right, side),
        ScalarExpr::Literal(Datum::Bool(false), _) => true,
        ScalarExpr::IsNull {
            expr,
            negated: true,
        } => null_when_null(expr, side),
        _ => null_when_null(e, side),
    }
}

/// True when `e` is NULL on every row whose `side` columns are all NULL (it reads one
/// of them through strict operators only). Conservative: `false` when unsure.
fn null_when_null(e: &ScalarExpr, side: &impl Fn(usize) -> bool) -> bool {
    match e {
        ScalarExpr::Column(c) => side(*c),
        ScalarExpr::Literal(d, _) => d.is_null(),
        // NULL AND NULL and NULL OR NULL are NULL; every other operator is strict.
        ScalarExpr::Binary {
            op: BinaryOp::And | BinaryOp::Or,
            left,
            right,
        } => null_when_null(left, side) && null_when_null(right, side),
        ScalarExpr::Binary { left, right, .. } => {
            null_when_null(left, side) || null_when_null(right, side)
        }
        ScalarExpr::Not(x) | ScalarExpr::Negate(x) | ScalarExpr::Cast { expr: x, .. } => {
            null_when_null(x, side)
        }
        ScalarExpr::InList { expr, .. } => null_when_null(expr, side),
        ScalarExpr::Like { expr, pattern, .. } => {
            null_when_null(expr, side) || null_when_null(pattern, side)
        }
        // CONCAT skips NULL arguments; every other function is strict.
        ScalarExpr::Call {
            func: Func::Concat, ..
        } => false,
        ScalarExpr::Call { args, .. } => args.iter().any(|a| null_when_null(a, side)),
        ScalarExpr::IsNull { .. } | ScalarExpr::Case { .. } | ScalarExpr::Coalesce(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::explain_logical;
    use crate::optimizer::optimize_with;
    use crate::optimizer::test_util::*;
    use crate::plan::WindowKind;
    use sluice_expr::expr::SortKey;

    fn run(plan: LogicalPlan) -> String {
        let out = optimize_with(plan, &[Box::new(FilterPushdown)]).unwrap();
        explain_logical(&out)
    }

    #[test]
    fn through_project_into_scan_and_merging_filters() {
        let p = project(
            scan(&orders_table()),
            vec![(col(0), "k"), (mul(col(2), dec(2, 0)), "double_price")],
        );
        let plan = filter(filter(p, gt(col(1), dec(1000, 2))), lt(col(0), bigint(100)));
        insta::assert_snapshot!(explain_logical(&plan), @r"
        Filter: k < 100
          Filter: double_price > 10.00
            Project: o_orderkey AS k, o_price * 2 AS double_price
              Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
        ");
        insta::assert_snapshot!(run(plan), @r"
        Project: o_orderkey AS k, o_price * 2 AS double_price
          Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts] filters=[o_price * 2 > 10.00, o_orderkey < 100]
        ");
    }

    #[test]
    fn scan_without_pushdown_keeps_a_filter_above() {
        let plan = filter(scan(&customers_table()), gt(col(0), bigint(1)));
        let before = explain_logical(&plan);
        insta::assert_snapshot!(run(plan), @r"
        Filter: c_custkey > 1
          Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
        assert_eq!(
            before.trim_end(),
            "Filter: c_custkey > 1\n  Scan: customers projection=[c_custkey, c_name, c_ts]"
        );
    }

    #[test]
    fn inner_join_splits_conjuncts() {
        let j = join(
            scan(&orders_table()),
            scan(&customers_table()),
            JoinKind::Inner,
            Some(and(eq(col(1), col(4)), eq(col(5), str_lit("bob")))),
        );
        let plan = filter(
            j,
            and(
                and(gt(col(0), bigint(10)), lt(col(4), bigint(5))),
                gt(col(0), col(4)),
            ),
        );
        insta::assert_snapshot!(run(plan), @r"
        Join: Inner filter=o_custkey = c_custkey AND o_orderkey > c_custkey
          Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts] filters=[o_orderkey > 10]
          Filter: c_name = 'bob' AND c_custkey < 5
            Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
    }

    #[test]
    fn outer_joins_never_filter_the_null_supplying_side_with_where() {
        // LEFT JOIN ON o_custkey = c_custkey AND c_name = 'bob' AND o_orderkey > 1
        // WHERE o_orderkey < 100 AND c_custkey IS NULL
        let j = join(
            scan(&orders_table()),
            scan(&customers_table()),
            JoinKind::Left,
            Some(and(
                and(eq(col(1), col(4)), eq(col(5), str_lit("bob"))),
                gt(col(0), bigint(1)),
            )),
        );
        let is_null = |c| ScalarExpr::IsNull {
            expr: Box::new(col(c)),
            negated: false,
        };
        let plan = filter(j, and(lt(col(0), bigint(100)), is_null(4)));
        insta::assert_snapshot!(run(plan), @r"
        Filter: c_custkey IS NULL
          Join: Left filter=o_custkey = c_custkey AND o_orderkey > 1
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts] filters=[o_orderkey < 100]
            Filter: c_name = 'bob'
              Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
        // FULL with a WHERE that accepts NULLs on both sides: nothing moves at all.
        let j = join(
            scan(&orders_table()),
            scan(&customers_table()),
            JoinKind::Full,
            Some(and(eq(col(1), col(4)), eq(col(5), str_lit("bob")))),
        );
        let plan = filter(j, or(is_null(0), lt(col(4), bigint(3))));
        let before = explain_logical(&plan);
        assert_eq!(run(plan), before);
    }

    #[test]
    fn null_rejecting_where_makes_outer_joins_inner() {
        // LEFT JOIN … WHERE c_custkey < 5: padded rows fail it, so it is an inner join.
        let j = join(
            scan(&orders_table()),
            scan(&customers_table()),
            JoinKind::Left,
            Some(eq(col(1), col(4))),
        );
        let plan = filter(j, lt(col(4), bigint(5)));
        insta::assert_snapshot!(run(plan), @r"
        Join: Inner filter=o_custkey = c_custkey
          Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
          Filter: c_custkey < 5
            Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
        // FULL … WHERE o_orderkey + 1 > 100: rejects left-padded rows → LEFT.
        let j = join(
            scan(&orders_table()),
            scan(&customers_table()),
            JoinKind::Full,
            Some(eq(col(1), col(4))),
        );
        let plan = filter(j, gt(add(col(0), bigint(1)), bigint(100)));
        insta::assert_snapshot!(run(plan), @r"
        Join: Left filter=o_custkey = c_custkey
          Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts] filters=[o_orderkey + 1 > 100]
          Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
        // An OR with a conjunct on the other side does not reject: stays LEFT.
        let j = join(
            scan(&orders_table()),
            scan(&customers_table()),
            JoinKind::Left,
            Some(eq(col(1), col(4))),
        );
        let plan = filter(j, or(lt(col(4), bigint(5)), gt(col(0), bigint(1))));
        insta::assert_snapshot!(run(plan), @r"
        Filter: c_custkey < 5 OR o_orderkey > 1
          Join: Left filter=o_custkey = c_custkey
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
            Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
    }

    #[test]
    fn null_rejection_analysis() {
        let right = |c: usize| c >= 2;
        let is_not_null = ScalarExpr::IsNull {
            expr: Box::new(add(col(2), bigint(1))),
            negated: true,
        };
        assert!(never_true_when_null(&is_not_null, &right));
        assert!(never_true_when_null(&not(gt(col(3), col(0))), &right));
        assert!(never_true_when_null(
            &and(gt(col(0), bigint(1)), eq(col(2), bigint(1))),
            &right
        ));
        assert!(!never_true_when_null(&gt(col(0), bigint(1)), &right));
        let coalesce = ScalarExpr::Coalesce(vec![col(2), bigint(0)]);
        assert!(!never_true_when_null(&gt(coalesce, bigint(1)), &right));
        let concat = ScalarExpr::Call {
            func: Func::Concat,
            args: vec![col(2), str_lit("x")],
        };
        assert!(!never_true_when_null(&eq(concat, str_lit("x")), &right));
        let upper = ScalarExpr::Call {
            func: Func::Upper,
            args: vec![col(2)],
        };
        assert!(never_true_when_null(&eq(upper, str_lit("X")), &right));
        assert!(!never_true_when_null(
            &not(ScalarExpr::IsNull {
                expr: Box::new(col(2)),
                negated: false
            }),
            &right
        ));
    }

    #[test]
    fn right_join_mirrors_left() {
        let j = join(
            scan(&customers_table()),
            scan(&orders_table()),
            JoinKind::Right,
            Some(and(eq(col(0), col(4)), eq(col(1), str_lit("bob")))),
        );
        // c_custkey IS NULL accepts the NULL-padded rows: it stays above.
        let c_is_null = ScalarExpr::IsNull {
            expr: Box::new(col(0)),
            negated: false,
        };
        let plan = filter(j, and(gt(col(3), bigint(7)), c_is_null));
        insta::assert_snapshot!(run(plan), @r"
        Filter: c_custkey IS NULL
          Join: Right filter=c_custkey = o_custkey
            Filter: c_name = 'bob'
              Scan: customers projection=[c_custkey, c_name, c_ts]
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts] filters=[o_orderkey > 7]
        ");
    }

    #[test]
    fn aggregate_only_group_columns() {
        let agg = aggregate(scan(&orders_table()), vec![1], vec![count_star()]);
        let plan = filter(agg, and(gt(col(0), bigint(5)), gt(col(1), bigint(2))));
        insta::assert_snapshot!(run(plan), @r"
        Filter: $agg0 > 2
          Aggregate: group_by=[o_custkey] aggs=[COUNT(*)]
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts] filters=[o_custkey > 5]
        ");
        // A global aggregate emits a row on empty input: a constant FALSE stays above.
        let agg = aggregate(scan(&orders_table()), vec![], vec![count_star()]);
        let plan = filter(agg, boolean(false));
        let before = explain_logical(&plan);
        assert_eq!(run(plan), before);
    }

    #[test]
    fn never_below_a_limit_but_through_a_plain_sort() {
        let key = SortKey {
            column: 0,
            descending: false,
            nulls_first: false,
        };
        let limited = LogicalPlan::Sort {
            input: Box::new(scan(&orders_table())),
            keys: vec![key.clone()],
            limit: Some(10),
            offset: 0,
        };
        let plan = filter(limited, gt(col(0), bigint(5)));
        let before = explain_logical(&plan);
        insta::assert_snapshot!(run(plan), @r"
        Filter: o_orderkey > 5
          Sort: [o_orderkey] limit=10
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts]
        ");
        assert!(before.starts_with("Filter: o_orderkey > 5\n  Sort:"));
        let sorted = LogicalPlan::Sort {
            input: Box::new(scan(&orders_table())),
            keys: vec![key],
            limit: None,
            offset: 0,
        };
        insta::assert_snapshot!(run(filter(sorted, gt(col(0), bigint(5)))), @r"
        Sort: [o_orderkey]
          Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts] filters=[o_orderkey > 5]
        ");
    }

    #[test]
    fn windows_and_unions() {
        // TUMBLE: a conjunct on input columns goes below; one on window_start stays.
        let w = window(
            scan(&orders_table()),
            WindowKind::Tumble { size_ms: 1000 },
            3,
        );
        let plan = filter(w, and(gt(col(0), bigint(1)), gt(col(4), col(3))));
        insta::assert_snapshot!(run(plan), @r"
        Filter: window_start > o_ts
          Window: TUMBLE(time_col=o_ts, size=INTERVAL '1000' MILLISECOND)
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts] filters=[o_orderkey > 1]
        ");
        // SESSION: only partition columns go below.
        let s = LogicalPlan::Window {
            input: Box::new(scan(&orders_table())),
            kind: WindowKind::Session { gap_ms: 100 },
            time_col: 3,
            partition_by: vec![1],
        };
        let plan = filter(s, and(gt(col(0), bigint(1)), gt(col(1), bigint(2))));
        insta::assert_snapshot!(run(plan), @r"
        Filter: o_orderkey > 1
          Window: SESSION(time_col=o_ts, gap=INTERVAL '100' MILLISECOND) partition_by=[o_custkey]
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts] filters=[o_custkey > 2]
        ");
        // UNION ALL: into every input.
        let u = LogicalPlan::Union {
            inputs: vec![
                project(scan(&orders_table()), vec![(col(1), "k")]),
                project(scan(&customers_table()), vec![(col(0), "k")]),
            ],
        };
        insta::assert_snapshot!(run(filter(u, gt(col(0), bigint(3)))), @r"
        Union
          Project: o_custkey AS k
            Scan: orders projection=[o_orderkey, o_custkey, o_price, o_ts] filters=[o_custkey > 3]
          Project: c_custkey AS k
            Filter: c_custkey > 3
              Scan: customers projection=[c_custkey, c_name, c_ts]
        ");
    }
}
