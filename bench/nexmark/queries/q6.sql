-- Nexmark q6: average selling price per seller over the last 10 closed auctions.
-- Adapted from the Flink SQL of the public Nexmark benchmark (github.com/nexmark/nexmark,
-- nexmark-flink/src/main/resources/queries, Apache License 2.0).
-- Differences from Flink's text: Flink's text filters on the ROW_NUMBER alias in the same
-- SELECT that defines it (`SELECT *, ROW_NUMBER() ... AS rownum FROM (...) WHERE rownum
-- <= 1`), which neither engine accepts ("Column 'rownum' not found" / "unknown column
-- 'rownum'"); here the filter is one level out (Flink's Top-N form), and the ROW_NUMBER's
-- columns lose their A./B. prefixes (those aliases are not in scope there), so that each
-- engine reports what it really lacks; and the sink's seller column is BIGINT (Flink's text
-- declares VARCHAR, which Flink rejects: "Column types of query result and sink ... do not
-- match"). Sluice runs it: the inner ROW_NUMBER() is a per-partition Top-N (the winning bid
-- per auction) and the AVG(...) OVER (... ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) an OVER
-- aggregate over it. Flink refuses the OVER window ordered by a column that is no longer a
-- time attribute after the join ("Non-time attribute sort is not supported for bounded OVER
-- window"); the repository's own comment says Flink does not support this query.
CREATE TABLE nexmark_q6 (
  seller BIGINT,
  avg_price  BIGINT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q6
SELECT
    Q.seller,
    AVG(Q.price) OVER
        (PARTITION BY Q.seller ORDER BY Q.dateTime ROWS BETWEEN 10 PRECEDING AND CURRENT ROW)
FROM (
  SELECT * FROM (
    SELECT *, ROW_NUMBER() OVER (PARTITION BY id, seller ORDER BY price DESC) AS rownum
    FROM (SELECT A.id, A.seller, B.price, B.dateTime
        FROM auction AS A,
            bid AS B
        WHERE A.id = B.auction
            and B.dateTime between A.dateTime and A.expires)
  ) WHERE rownum <= 1
) AS Q;
