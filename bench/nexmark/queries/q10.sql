-- Nexmark q10: log to file system (every bid, with its day and minute as strings).
-- Adapted from the Flink SQL of the public Nexmark benchmark (github.com/nexmark/nexmark,
-- nexmark-flink/src/main/resources/queries, Apache License 2.0).
-- Differences from Flink's text (both engines run this text): the sink is the
-- benchmark's blackhole, not a filesystem table PARTITIONED BY (dt, hm) with
-- partition-time commits, so the query measures the same projection and DATE_FORMATs on
-- both engines without either one's file writer (Sluice's partitioned file sink is
-- tested in tests/tests/partitioned.rs).
CREATE TABLE nexmark_q10 (
  auction  BIGINT,
  bidder  BIGINT,
  price  BIGINT,
  dateTime  TIMESTAMP(3),
  extra  VARCHAR,
  dt VARCHAR,
  hm VARCHAR
) WITH (
  'connector' = 'blackhole'
);

INSERT INTO nexmark_q10
SELECT auction, bidder, price, dateTime, extra, DATE_FORMAT(dateTime, 'yyyy-MM-dd'), DATE_FORMAT(dateTime, 'HH:mm')
FROM bid;
