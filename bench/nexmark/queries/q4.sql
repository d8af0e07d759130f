-- Nexmark q4: average winning price per category (join + two-level aggregation).
-- Adapted from the Flink SQL of the public Nexmark benchmark (github.com/nexmark/nexmark,
-- nexmark-flink/src/main/resources/queries, Apache License 2.0).
-- Differences from Flink's text: AVG(Q.final) is wrapped in CAST(... AS BIGINT).
-- Sluice's AVG is DOUBLE (as DuckDB), Flink's AVG of a BIGINT is a BIGINT (truncated);
-- the cast keeps the sink's declared BIGINT column and Flink's value.
CREATE TABLE nexmark_q4 (
  id BIGINT,
  final BIGINT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q4
SELECT
    Q.category,
    CAST(AVG(Q.final) AS BIGINT)
FROM (
    SELECT MAX(B.price) AS final, A.category
    FROM auction A, bid B
    WHERE A.id = B.auction AND B.dateTime BETWEEN A.dateTime AND A.expires
    GROUP BY A.id, A.category
) Q
GROUP BY Q.category;
