-- Nexmark q12: processing-time windows (bids per bidder per 10 s of processing time).
-- Adapted from the Flink SQL of the public Nexmark benchmark (github.com/nexmark/nexmark,
-- nexmark-flink/src/main/resources/queries, Apache License 2.0).
-- Differences from Flink's text: none. PROCTIME() is the wall clock when the row is
-- evaluated (TIMESTAMP(3)); the TUMBLE over it is grouped by a retracting Reduce, so on
-- the benchmark's bounded input the windows close when the input ends (Flink closes
-- them on a wall-clock timer). Results depend on the wall clock: the harness runs it
-- but does not compare the engines' rows.
CREATE TABLE nexmark_q12 (
  bidder BIGINT,
  bid_count BIGINT,
  starttime TIMESTAMP(3),
  endtime TIMESTAMP(3)
) WITH (
  'connector' = 'blackhole'
);

CREATE VIEW B AS SELECT *, PROCTIME() as p_time FROM bid;

INSERT INTO nexmark_q12
SELECT
    bidder,
    count(*) as bid_count,
    window_start AS starttime,
    window_end AS endtime
FROM TABLE(
        TUMBLE(TABLE B, DESCRIPTOR(p_time), INTERVAL '10' SECOND))
GROUP BY bidder, window_start, window_end;
