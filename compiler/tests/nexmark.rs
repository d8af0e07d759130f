//! Nexmark-style Flink queries (q0–q8, q11 and the tumbling-window count) bind, and
//! the ones using unsupported features fail with a clear, positioned error.

mod common;

use common::{bind, err, out_types, plan, shape};
use sluice_catalogs::SqlType::*;

#[test]
fn nexmark_queries_bind() {
    let queries = [
        // q0: pass-through
        "SELECT auction, bidder, price, dateTime, extra FROM bid",
        // q1: currency conversion
        "SELECT auction, bidder, 0.908 * price as price, dateTime, extra FROM bid",
        // q2: selection
        "SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0",
        // q3: local item suggestion
        "SELECT P.name, P.city, P.state, A.id FROM auction AS A INNER JOIN person AS P on A.seller = P.id \
         WHERE A.category = 10 and (P.state = 'OR' OR P.state = 'ID' OR P.state = 'CA')",
        // q4: average price per category
        "SELECT Q.category, AVG(Q.final) FROM (SELECT MAX(B.price) AS final, A.category FROM auction A, bid B \
         WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires GROUP BY A.id, A.category) Q \
         GROUP BY Q.category",
        // q5: hot items
        "SELECT AuctionBids.auction, AuctionBids.num FROM (\
           SELECT auction, count(*) AS num, window_start AS starttime, window_end AS endtime \
           FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) \
           GROUP BY auction, window_start, window_end) AS AuctionBids \
         JOIN (SELECT max(CountBids.num) AS maxn, CountBids.starttime, CountBids.endtime FROM (\
           SELECT count(*) AS num, window_start AS starttime, window_end AS endtime \
           FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) \
           GROUP BY auction, window_start, window_end) AS CountBids \
           GROUP BY CountBids.starttime, CountBids.endtime) AS MaxBids \
         ON AuctionBids.starttime = MaxBids.starttime AND AuctionBids.endtime = MaxBids.endtime \
         AND AuctionBids.num >= MaxBids.maxn",
        // q7: highest bid
        "SELECT B.auction, B.price, B.bidder, B.dateTime, B.extra from bid B JOIN (\
           SELECT MAX(price) AS maxprice, window_end as dateTime \
           FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) \
           GROUP BY window_start, window_end) B1 ON B.price = B1.maxprice \
         WHERE B.dateTime BETWEEN B1.dateTime - INTERVAL '10' SECOND AND B1.dateTime",
        // q8: monitor new users
        "SELECT P.id, P.name, P.starttime FROM (\
           SELECT id, name, window_start AS starttime, window_end AS endtime \
           FROM TABLE(TUMBLE(TABLE person, DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) \
           GROUP BY id, name, window_start, window_end) P \
         JOIN (SELECT seller, window_start AS starttime, window_end AS endtime \
           FROM TABLE(TUMBLE(TABLE auction, DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) \
           GROUP BY seller, window_start, window_end) A \
         ON P.id = A.seller AND P.starttime = A.starttime AND P.endtime = A.endtime",
        // q11: user sessions (legacy group window)
        "SELECT B.bidder, count(*) as bid_count, SESSION_START(B.dateTime, INTERVAL '10' SECOND) as starttime, \
         SESSION_END(B.dateTime, INTERVAL '10' SECOND) as endtime FROM bid B \
         GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND)",
        // q12-like: tumbling count per bidder
        "SELECT bidder, count(*) as bid_count, window_start, window_end \
         FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND)) \
         GROUP BY bidder, window_start, window_end",
        // q15-like: aggregates with FILTER
        "SELECT channel, count(*) AS total_bids, count(*) filter (where price < 10000) AS rank1_bids, \
         count(distinct bidder) filter (where price >= 10000) AS rank2_bidders, \
         sum(price) filter (where price > 5) AS s FROM bid GROUP BY channel",
        // q14-like: Flink time shorthands
        "SELECT auction, CASE WHEN HOUR(dateTime) >= 8 AND HOUR(dateTime) <= 18 THEN 'dayTime' \
         ELSE 'otherTime' END AS bidTimeType FROM bid WHERE 0.908 * price > 1000000",
    ];
    for q in queries {
        if let Err(e) = bind(q) {
            panic!("{q}\n=> {e}");
        }
    }
    assert_eq!(
        out_types(queries[1]),
        vec![
            BigInt,
            BigInt,
            Decimal {
                precision: 23,
                scale: 3
            },
            Timestamp,
            Varchar
        ]
    );
    assert_eq!(shape(&plan(queries[2])), "Project(Filter(Scan:bid))");
    assert_eq!(
        out_types(queries[9]),
        vec![BigInt, BigInt, Timestamp, Timestamp]
    );
    assert_eq!(
        out_types(queries[10]),
        vec![Varchar, BigInt, BigInt, BigInt, BigInt]
    );
}

#[test]
fn nexmark_queries_with_unsupported_features_fail_clearly() {
    // An aggregate OVER the default frame (RANGE UNBOUNDED PRECEDING).
    let text = err(
        "SELECT seller, AVG(initialBid) OVER (PARTITION BY seller ORDER BY dateTime) FROM auction",
    );
    assert!(
        text.starts_with("unsupported at line 1, column 16: AVG(…) OVER needs a ROWS frame"),
        "{text}"
    );
    // Two different windows in one SELECT.
    let text = err("SELECT seller, AVG(initialBid) OVER (PARTITION BY seller ORDER BY dateTime ROWS 2 PRECEDING), \
         MAX(initialBid) OVER (PARTITION BY seller ORDER BY dateTime ROWS 3 PRECEDING) FROM auction");
    assert!(
        text.starts_with("unsupported at line 1, column 95: every OVER aggregate of a SELECT must use the same window"),
        "{text}"
    );
    // A RANK() is still refused where it stands.
    let text = err("SELECT RANK() OVER (PARTITION BY seller ORDER BY dateTime) FROM auction");
    assert!(
        text.starts_with("unsupported at line 1, column 8: window function RANK"),
        "{text}"
    );
    let text = err(
        "SELECT channel, UPPER(channel) filter (where price < 10000) AS r FROM bid GROUP BY channel",
    );
    assert!(
        text.starts_with("error at line 1, column 17: FILTER is only allowed on aggregate"),
        "{text}"
    );
    let text = err("SELECT DATE_FORMAT(dateTime, 'YYYY-ww') FROM bid");
    assert!(
        text.starts_with("error at line 1, column 30: unsupported pattern letter 'Y'"),
        "{text}"
    );
}

/// The compiler picks each aggregate's state strategy and EXPLAIN PHYSICAL shows it:
/// COUNT(DISTINCT) keeps distinct-value counts (q15), MIN/MAX over a retracting input
/// and DOUBLE sums keep ordered multisets, plain counts and exact sums a running state.
#[test]
fn explain_physical_shows_each_aggregates_state_strategy() {
    let physical = |sql: &str| {
        let logical = sluice_compiler::optimizer::optimize(plan(sql)).unwrap();
        sluice_compiler::explain::explain_physical(
            &sluice_compiler::lower::lower(&logical).unwrap(),
        )
    };
    insta::assert_snapshot!(physical(
        "SELECT auction, count(*), count(distinct bidder), count(distinct bidder) filter (where price < 10000), \
         sum(price), min(price) FROM bid GROUP BY auction"
    ));
    // q4's shape: MAX over a join's rows (append-only), then AVG of those maxima per
    // category over a retracting input, and MIN of them.
    insta::assert_snapshot!(physical(
        "SELECT Q.category, AVG(Q.final), MIN(Q.final), SUM(CAST(Q.final AS DOUBLE)) FROM (\
           SELECT MAX(B.price) AS final, A.category FROM auction A, bid B \
           WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires GROUP BY A.id, A.category) Q \
         GROUP BY Q.category"
    ));
    // q17's shape: every aggregate keeps a running state and the input is columnar, so
    // each batch is pre-aggregated before the exchange; with one integer key the GPU
    // group-by kernel can compute the partial states.
    insta::assert_snapshot!(physical(
        "SELECT auction, count(*), count(*) filter (where price < 10000), min(price), \
         max(dateTime), avg(price), sum(price) FROM bid GROUP BY auction"
    ));
}

/// Nexmark q6 (average selling price per seller over its last 10 closed auctions): the
/// winning bid per auction is a Top-N of the join, and an OVER aggregate of 10 rows
/// before each one per seller runs over it, checkpointed as its input.
#[test]
fn nexmark_q6_runs_an_over_aggregate_of_a_top_n() {
    let logical = sluice_compiler::optimizer::optimize(plan(
        "SELECT Q.seller, AVG(Q.price) OVER \
           (PARTITION BY Q.seller ORDER BY Q.dateTime ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) \
         FROM (SELECT * FROM (\
           SELECT *, ROW_NUMBER() OVER (PARTITION BY id, seller ORDER BY price DESC) AS rownum \
           FROM (SELECT A.id, A.seller, B.price, B.dateTime FROM auction AS A, bid AS B \
             WHERE A.id = B.auction and B.dateTime between A.dateTime and A.expires)) \
           WHERE rownum <= 1) AS Q",
    ))
    .unwrap();
    let physical = sluice_compiler::lower::lower(&logical).unwrap();
    insta::assert_snapshot!(sluice_compiler::explain::explain_physical(&physical));
    assert!(sluice_compiler::state::is_kept_as_inputs(
        physical.inputs()[0]
    ));
}

/// The window strategy `lower` picks for Nexmark q5 (HOP, COUNT) and q11 (SESSION,
/// COUNT) over the watermarked `bid` table, as EXPLAIN PHYSICAL prints it.
#[test]
fn nexmark_q5_runs_hop_by_pane_and_q11_incremental_sessions() {
    let physical = |sql: &str| {
        let logical = sluice_compiler::optimizer::optimize(plan(sql)).unwrap();
        let lowered = sluice_compiler::lower::lower(&logical).unwrap();
        sluice_compiler::explain::explain_physical(&lowered)
    };
    let q5 = physical(
        "SELECT auction, count(*) AS num, window_start, window_end \
         FROM TABLE(HOP(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '2' SECOND, INTERVAL '10' SECOND)) \
         GROUP BY auction, window_start, window_end",
    );
    assert!(
        q5.contains("strategy=hop-by-pane(pane=INTERVAL '2000' MILLISECOND, panes per window=5"),
        "{q5}"
    );
    assert!(
        !q5.contains("HOP("),
        "the HOP assignment is a pane TUMBLE: {q5}"
    );
    let q11 = physical(
        "SELECT B.bidder, count(*) as bid_count, SESSION_START(B.dateTime, INTERVAL '10' SECOND) as starttime, \
         SESSION_END(B.dateTime, INTERVAL '10' SECOND) as endtime FROM bid B \
         GROUP BY B.bidder, SESSION(B.dateTime, INTERVAL '10' SECOND)",
    );
    assert!(
        q11.contains("strategy=session(gap=INTERVAL '10000' MILLISECOND"),
        "{q11}"
    );
    assert!(!q11.contains("SessionAssign"), "{q11}");
}
