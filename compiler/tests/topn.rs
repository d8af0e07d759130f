//! Per-partition Top-N: `ROW_NUMBER() OVER (PARTITION BY … ORDER BY …)` filtered by the
//! enclosing query binds to a `TopK` node (EXPLAIN at every stage), lowering picks its
//! strategy from whether the input retracts, and every other use of a window function
//! fails with a positioned error.

mod common;

use common::{bind, compiled, err, out_schema, plan, shape};
use sluice_catalogs::SqlType::*;
use sluice_compiler::physical::TopKStrategy;
use sluice_compiler::{ExplainStage, LogicalPlan, PhysicalPlan};

/// Nexmark q19: the top 10 bids of each auction, row number kept.
const Q19: &str = "SELECT * FROM (\n\
    SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bid\n\
  ) WHERE rank_number <= 10";

/// Nexmark q18: the last bid of each (bidder, auction), row number projected away.
const Q18: &str = "SELECT auction, bidder, price, channel, url, dateTime, extra FROM (\n\
    SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dateTime DESC) AS rank_number\n\
    FROM bid\n\
  ) WHERE rank_number <= 1";

fn physical(sql: &str) -> PhysicalPlan {
    let c = compiled(sql);
    c.queries[0].physical.clone()
}

fn find_topk(p: &PhysicalPlan) -> Option<&PhysicalPlan> {
    if matches!(p, PhysicalPlan::TopK { .. }) {
        return Some(p);
    }
    p.inputs().into_iter().find_map(find_topk)
}

#[test]
fn q19_explain_at_every_stage() {
    let c = compiled(Q19);
    insta::assert_snapshot!(c.explain(ExplainStage::All), @r"
    -- query 1: SELECT
    == Logical Plan ==
    Project: auction, bidder, price, channel, url, dateTime, extra, rank_number
      Project: auction, bidder, price, channel, url, dateTime, extra, $row_number AS rank_number
        TopK: partition_by=[auction] order_by=[price DESC] limit=10 row_number
          Scan: bid projection=[auction, bidder, price, channel, url, dateTime, extra]

    == Optimized Logical Plan ==
    Project: auction, bidder, price, channel, url, dateTime, extra, $row_number AS rank_number
      TopK: partition_by=[auction] order_by=[price DESC] limit=10 row_number
        Scan: bid projection=[auction, bidder, price, channel, url, dateTime, extra]

    == Physical Plan ==
    Calc: project=[auction, bidder, price, channel, url, dateTime, extra, $row_number AS rank_number] device=cpu(row stage) [stateless]
      TopK: Monotonic partition_by=[auction] order_by=[price DESC] limit=10 row_number [state: top rows per partition]
        Source: bid projection=[auction, bidder, price, channel, url, dateTime, extra] [stateless]
    ");
    assert!(c.queries[0].updating, "a Top-N retracts rows it displaces");
    let schema = out_schema(Q19);
    assert_eq!(schema.len(), 8);
    assert_eq!(schema[7], ("rank_number".to_string(), BigInt));
}

#[test]
fn q18_dedup_drops_the_row_number() {
    let c = compiled(Q18);
    insta::assert_snapshot!(c.explain(ExplainStage::Physical), @r"
    -- query 1: SELECT
    TopK: Monotonic partition_by=[bidder, auction] order_by=[dateTime DESC] limit=1 [state: top rows per partition]
      Source: bid projection=[auction, bidder, price, channel, url, dateTime, extra] [stateless]
    ");
    assert_eq!(
        out_schema(Q18).iter().map(|(_, t)| *t).collect::<Vec<_>>(),
        vec![BigInt, BigInt, BigInt, Varchar, Varchar, Timestamp, Varchar]
    );
}

#[test]
fn filters_fold_into_the_limit() {
    // rn < N, rn = 1, mirrored, the smallest of several bounds; other conjuncts stay.
    let limit_of = |sql: &str| match find_topk(&physical(sql)) {
        Some(PhysicalPlan::TopK { limit, .. }) => *limit,
        _ => panic!("no TopK in {sql}"),
    };
    let q = |filter: &str| {
        format!(
            "SELECT auction, price FROM (SELECT auction, price, ROW_NUMBER() OVER \
             (PARTITION BY auction ORDER BY price) AS rn FROM bid) WHERE {filter}"
        )
    };
    assert_eq!(limit_of(&q("rn < 4")), 3);
    assert_eq!(limit_of(&q("rn = 1")), 1);
    assert_eq!(limit_of(&q("5 >= rn")), 5);
    assert_eq!(limit_of(&q("rn <= 7 AND rn < 3")), 2);
    assert_eq!(limit_of(&q("rn <= 0")), 0);
    // A conjunct on the partition column goes below the Top-N; one on another column
    // stays above it.
    let sql = q("rn <= 2 AND auction > 5 AND price > 10");
    insta::assert_snapshot!(compiled(&sql).explain(ExplainStage::Optimized), @r"
    -- query 1: SELECT
    Project: auction, price
      Filter: price > 10
        TopK: partition_by=[auction] order_by=[price] limit=2
          Filter: auction > 5
            Scan: bid projection=[auction, price, dateTime]
    ");
}

#[test]
fn strategy_follows_the_input() {
    // Over an inner join of append-only inputs (Nexmark q9's shape): monotonic.
    let q9 = "SELECT id, seller, price FROM (\
        SELECT A.id, A.seller, B.price, ROW_NUMBER() OVER (PARTITION BY A.id ORDER BY B.price DESC, B.dateTime ASC) AS rownum \
        FROM auction A, bid B WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires\
      ) WHERE rownum <= 1";
    assert!(matches!(
        find_topk(&physical(q9)),
        Some(PhysicalPlan::TopK {
            strategy: TopKStrategy::Monotonic,
            rank_column: false,
            ..
        })
    ));
    // Over an aggregate (updating): retracting, with the state of every row.
    let agg = "SELECT * FROM (SELECT auction, n, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY n DESC) AS rn \
        FROM (SELECT auction, bidder, COUNT(*) AS n FROM bid GROUP BY auction, bidder)) WHERE rn <= 3";
    insta::assert_snapshot!(compiled(agg).explain(ExplainStage::Physical), @r"
    -- query 1: SELECT
    Calc: project=[auction, n, $row_number AS rn] device=cpu(row stage) [stateless]
      TopK: Retracting partition_by=[auction] order_by=[n DESC] limit=3 row_number [state: all rows per partition]
        Calc: project=[auction, $agg0 AS n] device=cpu(row stage) [stateless]
          Reduce: group_by=[auction, bidder] aggs=[COUNT(*)] strategies=[accumulate] preaggregate=per-batch device=cpu(stateful) [state: one running state per group]
            Calc: project=[auction, bidder] device=cpu(columns only) [stateless]
              Source: bid projection=[auction, bidder, dateTime] [stateless]
    ");
}

#[test]
fn a_view_numbers_and_the_query_filters() {
    let sql = "CREATE VIEW ranked AS SELECT auction, price, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rn FROM bid;\n\
               SELECT auction, price, rn FROM ranked WHERE rn <= 2";
    let p = plan(sql);
    assert_eq!(shape(&p), "Project(Project(TopK(Scan:bid)))");
    assert!(bind(sql).is_ok());
}

#[test]
fn other_uses_of_window_functions_fail_with_positions() {
    // No filter on the row number.
    let text = err(
        "SELECT auction,\n  ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price) AS rn FROM bid",
    );
    assert!(
        text.starts_with("unsupported at line 2, column 3: ROW_NUMBER() OVER (…) without a filter"),
        "{text}"
    );
    // A filter that is not an upper bound (rn = 2, rn > 1) does not make it a Top-N.
    for filter in ["rn = 2", "rn > 1", "rn <= 3 OR auction = 1"] {
        let text = err(&format!(
            "SELECT * FROM (SELECT auction, ROW_NUMBER() OVER (ORDER BY price) AS rn FROM bid) WHERE {filter}"
        ));
        assert!(
            text.starts_with("unsupported at line 1, column 32: ROW_NUMBER()"),
            "{filter}: {text}"
        );
    }
    // Filtered in the same SELECT that defines it: the alias is not in scope (as Flink).
    let text =
        err("SELECT auction, ROW_NUMBER() OVER (ORDER BY price) AS rn FROM bid WHERE rn <= 3");
    assert!(text.contains("rn"), "{text}");
    // RANK, DENSE_RANK, aggregates OVER a window.
    for (sql, col) in [
        ("SELECT * FROM (SELECT auction, RANK() OVER (ORDER BY price) AS r FROM bid) WHERE r <= 3", 32),
        ("SELECT * FROM (SELECT auction, DENSE_RANK() OVER (ORDER BY price) AS r FROM bid) WHERE r <= 3", 32),
    ] {
        let text = err(sql);
        assert!(
            text.starts_with(&format!("unsupported at line 1, column {col}: window function")),
            "{sql}: {text}"
        );
        assert!(text.contains("only ROW_NUMBER()"), "{text}");
    }
    // An aggregate OVER a window without ORDER BY (so without a ROWS frame).
    let text = err("SELECT auction, SUM(price) OVER (PARTITION BY auction) FROM bid");
    assert!(
        text.starts_with("error at line 1, column 17: SUM(…) OVER needs an ORDER BY"),
        "{text}"
    );
    // ROW_NUMBER inside an expression, in an aggregating SELECT, twice, without ORDER BY,
    // over an expression.
    for (sql, prefix) in [
        (
            "SELECT * FROM (SELECT auction, ROW_NUMBER() OVER (ORDER BY price) + 1 AS rn FROM bid) WHERE rn <= 3",
            "unsupported at line 1, column 32: ROW_NUMBER() OVER (…) inside an expression",
        ),
        (
            "SELECT auction, COUNT(*), ROW_NUMBER() OVER (ORDER BY auction) FROM bid GROUP BY auction",
            "unsupported at line 1, column 27: ROW_NUMBER() OVER (…) inside an expression or an aggregating SELECT",
        ),
        (
            "SELECT * FROM (SELECT ROW_NUMBER() OVER (ORDER BY price) AS a, ROW_NUMBER() OVER (ORDER BY bidder) AS b FROM bid) WHERE a <= 1 AND b <= 1",
            "unsupported at line 1, column 64: only one ROW_NUMBER() per SELECT",
        ),
        (
            "SELECT * FROM (SELECT auction, ROW_NUMBER() OVER (PARTITION BY auction) AS rn FROM bid) WHERE rn <= 1",
            "error at line 1, column 32: ROW_NUMBER() OVER (…) needs an ORDER BY",
        ),
        (
            "SELECT * FROM (SELECT auction, ROW_NUMBER() OVER (ORDER BY price + 1) AS rn FROM bid) WHERE rn <= 1",
            "unsupported at line 1, column 60: ORDER BY of ROW_NUMBER() must list columns",
        ),
    ] {
        let text = err(sql);
        assert!(text.starts_with(prefix), "{sql}\n=> {text}");
    }
}

#[test]
fn the_logical_node_carries_the_row_number_type() {
    let p = plan(Q19);
    let LogicalPlan::Project { input, .. } = &p else {
        panic!("{}", shape(&p));
    };
    let LogicalPlan::Project { input, .. } = input.as_ref() else {
        panic!("{}", shape(&p));
    };
    let topk = input.schema();
    assert_eq!(
        topk.fields.last().map(|f| (f.ty, f.nullable)),
        Some((BigInt, false))
    );
}
