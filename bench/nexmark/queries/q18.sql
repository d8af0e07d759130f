-- Nexmark q18: the last bid of each bidder on each auction (deduplication).
-- Adapted from the Flink SQL of the public Nexmark benchmark (github.com/nexmark/nexmark,
-- nexmark-flink/src/main/resources/queries, Apache License 2.0).
-- Differences from Flink's text: none. Sluice runs it as a per-partition Top-N with
-- limit 1 and no row-number column (EXPLAIN PHYSICAL: TopK … limit=1): per (bidder,
-- auction) one row of state, a later bid retracting the earlier one. Ties (two bids of
-- one bidder on one auction at the same ms) are broken by the whole row in Sluice and
-- by arrival order in Flink.
CREATE TABLE nexmark_q18 (
    auction  BIGINT,
    bidder  BIGINT,
    price  BIGINT,
    channel  VARCHAR,
    url  VARCHAR,
    dateTime  TIMESTAMP(3),
    extra  VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q18
SELECT auction, bidder, price, channel, url, dateTime, extra
 FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dateTime DESC) AS rank_number
       FROM bid)
 WHERE rank_number <= 1;
