-- Sluice quickstart: Nexmark bids → filter → 10-second tumbling windows → Parquet files.
-- Run: cargo build --release && target/release/sluice run examples/quickstart.sql
-- Output: ./files/bid_stats/part-*.parquet (read it back with examples/top_auctions.sql)

CREATE TABLE bid (
    auction  BIGINT,
    bidder   BIGINT,
    price    BIGINT,
    channel  VARCHAR,
    dateTime TIMESTAMP(3),
    WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND
) WITH (
    'connector' = 'nexmark',
    'nexmark.table' = 'bid',
    'nexmark.events' = '1000000',
    'nexmark.seed' = '42',
    'nexmark.max-out-of-order' = '2000'
);

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

INSERT INTO bid_stats
SELECT window_start, window_end, auction, COUNT(*), MAX(price), AVG(price)
FROM TABLE(TUMBLE(TABLE bid, DESCRIPTOR(dateTime), INTERVAL '10' SECOND))
WHERE price > 100
GROUP BY window_start, window_end, auction;
