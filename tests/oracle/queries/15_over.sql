-- Aggregates over a frame of rows: AGG(x) OVER (PARTITION BY … ORDER BY … ROWS BETWEEN n
-- PRECEDING AND CURRENT ROW) (Flink's OVER aggregate, Nexmark q6). The events are out of
-- order in the files; every ORDER BY ends with the unique id, so frames have no ties.

-- name: over_avg_of_the_last_three
SELECT k, id, AVG(amount) OVER (PARTITION BY k ORDER BY ts, id ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS a
FROM events

-- name: over_several_aggregates_one_window
SELECT k, id,
  COUNT(*) OVER (PARTITION BY k ORDER BY id ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS n,
  COUNT(v) OVER (PARTITION BY k ORDER BY id ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS nv,
  SUM(id) OVER (PARTITION BY k ORDER BY id ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS s,
  MIN(name) OVER (PARTITION BY k ORDER BY id ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS lo,
  MAX(ts) OVER (PARTITION BY k ORDER BY id ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS hi
FROM events

-- name: over_descending_with_nulls_and_short_frame
SELECT id, flag, SUM(amount) OVER (PARTITION BY flag ORDER BY k DESC NULLS FIRST, id ROWS 1 PRECEDING) AS s
FROM events WHERE id < 400

-- name: over_current_row_only_and_no_partition
SELECT id, MAX(v) OVER (ORDER BY id ROWS BETWEEN CURRENT ROW AND CURRENT ROW) AS m
FROM events WHERE k = 42

-- name: over_filter_before_and_after
SELECT * FROM (
  SELECT k, id, COUNT(*) OVER (PARTITION BY k ORDER BY ts, id ROWS BETWEEN 9 PRECEDING AND CURRENT ROW) AS n
  FROM events WHERE amount > 100
) WHERE n > 5 AND k IS NOT NULL

-- name: over_an_aggregate
SELECT m, k, SUM(c) OVER (PARTITION BY m ORDER BY k ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s
FROM (SELECT MOD(k, 3) AS m, k, COUNT(*) AS c FROM events WHERE k IS NOT NULL GROUP BY k)

-- name: over_a_top_n_like_nexmark_q6
SELECT o_custkey, AVG(o_totalprice) OVER (PARTITION BY o_custkey ORDER BY o_orderdate, o_orderkey ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) AS a
FROM (
  SELECT * FROM (
    SELECT o_orderkey, o_custkey, o_totalprice, o_orderdate,
      ROW_NUMBER() OVER (PARTITION BY o_orderkey ORDER BY o_totalprice DESC) AS rn
    FROM orders
  ) WHERE rn <= 1
)
