-- Per-partition Top-N: ROW_NUMBER() OVER (PARTITION BY … ORDER BY …) filtered by the
-- enclosing query (Flink's Top-N and deduplication patterns). The events are out of order
-- in the files; where the ORDER BY has ties, only columns equal among tied rows are
-- selected (the numbering of tied rows is arbitrary in DuckDB, by the whole row in Sluice).

-- name: topn_keep_row_number
SELECT k, id, ts, rn FROM (
  SELECT k, id, ts, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC, id) AS rn FROM events
) WHERE rn <= 3

-- name: topn_row_number_projected_away
SELECT k, id, v FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY k ORDER BY v DESC, id) AS rn FROM events
) WHERE rn <= 5

-- name: topn_strictly_less
SELECT k, id, rn FROM (
  SELECT k, id, ROW_NUMBER() OVER (PARTITION BY k ORDER BY amount, id) AS rn FROM events
) WHERE rn < 3

-- name: topn_dedup_first_row
SELECT id, k, ts FROM (
  SELECT id, k, ts, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts ASC, id) AS rownum FROM events
) WHERE rownum = 1

-- name: topn_dedup_last_row_keep_number
SELECT * FROM (
  SELECT cid, k, url, ts, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts DESC, cid) AS rn FROM clicks
) WHERE rn = 1

-- name: topn_ties_with_row_number
SELECT k, flag, rn FROM (
  SELECT k, flag, ROW_NUMBER() OVER (PARTITION BY k ORDER BY flag DESC) AS rn FROM events
) WHERE rn <= 4

-- name: topn_ties_without_row_number
SELECT k, flag FROM (
  SELECT k, flag, ROW_NUMBER() OVER (PARTITION BY k ORDER BY flag NULLS FIRST) AS rn FROM events
) WHERE rn < 6

-- name: topn_two_partition_columns
SELECT k, flag, id, rn FROM (
  SELECT k, flag, id, ROW_NUMBER() OVER (PARTITION BY k, flag ORDER BY id DESC) AS rn FROM events
) WHERE rn <= 2

-- name: topn_global_no_partition
SELECT id, v, rn FROM (
  SELECT id, v, ROW_NUMBER() OVER (ORDER BY v DESC, id) AS rn FROM events
) WHERE rn <= 7

-- name: topn_mirrored_filter_and_other_conjuncts
SELECT k, id, rn FROM (
  SELECT k, id, ROW_NUMBER() OVER (PARTITION BY k ORDER BY id) AS rn FROM events
) WHERE 2 >= rn AND k IS NOT NULL AND id > 10

-- name: topn_filter_before_numbering
SELECT k, id, rn FROM (
  SELECT k, id, ROW_NUMBER() OVER (PARTITION BY k ORDER BY id DESC) AS rn
  FROM events WHERE v > 100
) WHERE rn <= 2

-- name: topn_over_a_join
SELECT o_custkey, o_orderkey, c_name FROM (
  SELECT o.o_custkey, o.o_orderkey, c.c_name,
    ROW_NUMBER() OVER (PARTITION BY o.o_custkey ORDER BY o.o_totalprice DESC, o.o_orderkey) AS rn
  FROM orders o JOIN customer c ON o.o_custkey = c.c_custkey
) WHERE rn <= 1

-- name: topn_over_an_aggregate
SELECT m, k, c, rn FROM (
  SELECT m, k, c, ROW_NUMBER() OVER (PARTITION BY m ORDER BY c DESC, k) AS rn
  FROM (SELECT MOD(k, 3) AS m, k, COUNT(*) AS c FROM events WHERE k IS NOT NULL GROUP BY k)
) WHERE rn <= 2

-- name: topn_then_aggregate
SELECT k, COUNT(*) AS n, SUM(id) AS s FROM (
  SELECT k, id, ROW_NUMBER() OVER (PARTITION BY k ORDER BY ts) AS rn FROM events
) WHERE rn <= 3 GROUP BY k

-- name: topn_limit_zero
-- empty
SELECT k, id FROM (
  SELECT k, id, ROW_NUMBER() OVER (PARTITION BY k ORDER BY id) AS rn FROM events
) WHERE rn < 1
