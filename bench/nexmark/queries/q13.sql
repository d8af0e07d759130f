-- Nexmark q13: bounded side input join (stream enrichment).
-- Adapted from the Flink SQL of the public Nexmark benchmark (github.com/nexmark/nexmark,
-- nexmark-flink/src/main/resources/queries, Apache License 2.0).
-- Differences from Flink's text (both engines run this text): Flink's lookup join
-- `JOIN side_input FOR SYSTEM_TIME AS OF B.p_time` (a processing-time temporal join on
-- PROCTIME()) is a regular join: the side input is a static CSV file (10,000 rows
-- `key,value`, written by the harness as ${SIDE_INPUT}), so every bid meets the same
-- rows either way and the result is deterministic; the side table uses the current
-- 'filesystem' connector instead of the legacy 'connector.type' options.
CREATE TABLE side_input (
  key BIGINT,
  `value` VARCHAR
) WITH (
  'connector' = 'filesystem',
  'path' = '${SIDE_INPUT}',
  'format' = 'csv'
);

CREATE TABLE nexmark_q13 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  dateTime  TIMESTAMP(3),
  `value`  VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q13
SELECT
    B.auction,
    B.bidder,
    B.price,
    B.dateTime,
    S.`value`
FROM bid B
JOIN side_input AS S
ON mod(B.auction, 10000) = S.key;
