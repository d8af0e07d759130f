-- Nexmark q22: URL directories (SPLIT_INDEX on the bid's url).
-- Adapted from the Flink SQL of the public Nexmark benchmark (github.com/nexmark/nexmark,
-- nexmark-flink/src/main/resources/queries, Apache License 2.0).
-- Differences from Flink's text (bench/nexmark/flink/q22.sql is Flink's): Sluice has no
-- SPLIT_INDEX, so SPLIT_INDEX(url, '/', k) is spelled with POSITION and SUBSTRING: r1..r5
-- are what follows the 1st..5th '/', NULL when there is no such '/'; field k is rk up to
-- its next '/' (all of rk when there is none). That is SPLIT_INDEX's result for every
-- string (NULL past the last field). It does more string work than one SPLIT_INDEX call.
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
    CASE WHEN POSITION('/' IN r3) = 0 THEN r3 ELSE SUBSTRING(r3 FROM 1 FOR POSITION('/' IN r3) - 1) END AS dir1,
    CASE WHEN POSITION('/' IN r4) = 0 THEN r4 ELSE SUBSTRING(r4 FROM 1 FOR POSITION('/' IN r4) - 1) END AS dir2,
    CASE WHEN POSITION('/' IN r5) = 0 THEN r5 ELSE SUBSTRING(r5 FROM 1 FOR POSITION('/' IN r5) - 1) END AS dir3
FROM (
  SELECT auction, bidder, price, channel, r3, r4,
         CASE WHEN POSITION('/' IN r4) = 0 THEN NULL ELSE SUBSTRING(r4 FROM POSITION('/' IN r4) + 1) END AS r5
  FROM (
    SELECT auction, bidder, price, channel, r3,
           CASE WHEN POSITION('/' IN r3) = 0 THEN NULL ELSE SUBSTRING(r3 FROM POSITION('/' IN r3) + 1) END AS r4
    FROM (
      SELECT auction, bidder, price, channel,
             CASE WHEN POSITION('/' IN r2) = 0 THEN NULL ELSE SUBSTRING(r2 FROM POSITION('/' IN r2) + 1) END AS r3
      FROM (
        SELECT auction, bidder, price, channel,
               CASE WHEN POSITION('/' IN r1) = 0 THEN NULL ELSE SUBSTRING(r1 FROM POSITION('/' IN r1) + 1) END AS r2
        FROM (
          SELECT auction, bidder, price, channel,
                 CASE WHEN POSITION('/' IN url) = 0 THEN NULL ELSE SUBSTRING(url FROM POSITION('/' IN url) + 1) END AS r1
          FROM bid
        ) S1
      ) S2
    ) S3
  ) S4
) S5;
