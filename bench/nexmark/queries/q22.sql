-- Nexmark q22: URL directories (SPLIT_INDEX on the bid's url).
-- Adapted from the Flink SQL of the public Nexmark benchmark (github.com/nexmark/nexmark,
-- nexmark-flink/src/main/resources/queries, Apache License 2.0).
-- Differences from Flink's text: none.
CREATE TABLE nexmark_q22 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  channel  VARCHAR,
  dir1  VARCHAR,
  dir2  VARCHAR,
  dir3  VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q22
SELECT
    auction, bidder, price, channel,
    SPLIT_INDEX(url, '/', 3) as dir1,
    SPLIT_INDEX(url, '/', 4) as dir2,
    SPLIT_INDEX(url, '/', 5) as dir3 FROM bid;
