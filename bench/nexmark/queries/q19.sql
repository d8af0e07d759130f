-- Nexmark q19: the 10 highest bids of each auction (Top-N, row number kept).
-- Adapted from the Flink SQL of the public Nexmark benchmark (github.com/nexmark/nexmark,
-- nexmark-flink/src/main/resources/queries, Apache License 2.0).
-- Differences from Flink's text: none. Sluice runs it as a per-partition Top-N keeping
-- the row number (EXPLAIN PHYSICAL: TopK … limit=10 row_number): per auction the 10
-- best bids, a better bid retracting the rows whose number it shifts. Equal prices are
-- common, and which of them ranks first is arbitrary (by the whole row in Sluice, by
-- arrival order in Flink), so the harness does not compare the two engines' rows.
CREATE TABLE nexmark_q19 (
    auction  BIGINT,
    bidder  BIGINT,
    price  BIGINT,
    channel  VARCHAR,
    url  VARCHAR,
    dateTime  TIMESTAMP(3),
    extra  VARCHAR,
    rank_number  BIGINT
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q19
SELECT * FROM
(SELECT *, ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) AS rank_number FROM bid)
WHERE rank_number <= 10;
