-- Reads what examples/quickstart.sql wrote and prints the busiest auctions.
-- Run: target/release/sluice run examples/top_auctions.sql

CREATE TABLE bid_stats (
    window_start TIMESTAMP(3),
    window_end   TIMESTAMP(3),
    auction      BIGINT,
    bids         BIGINT,
    max_price    BIGINT,
    avg_price    DOUBLE
) WITH (
    'connector' = 'filesystem',
    'path' = 'files/bid_stats',
    'format' = 'parquet'
);

SELECT auction, SUM(bids) AS bids, MAX(max_price) AS max_price, COUNT(*) AS windows
FROM bid_stats
GROUP BY auction
ORDER BY bids DESC, auction
LIMIT 10;
