-- Combinations of features.

-- name: mixed_join_agg_having_order
SELECT d.label, COUNT(*) AS c, SUM(e.amount) AS sa FROM events e JOIN dims d ON e.k = d.k WHERE d.label IS NOT NULL GROUP BY d.label HAVING COUNT(*) > 10 ORDER BY c DESC, d.label

-- name: mixed_coalesce_join_key_matches_nulls
SELECT d.label, COUNT(*) AS c FROM events e JOIN dims d ON COALESCE(e.k, -1) = COALESCE(d.k, -1) GROUP BY d.label

-- name: mixed_distinct_after_join
SELECT DISTINCT d.label, e.flag FROM events e JOIN dims d ON e.k = d.k

-- name: mixed_full_join_coalesce_keys
SELECT COALESCE(a.k, b.k) AS k, COALESCE(a.c, 0) AS events_c, COALESCE(b.c, 0) AS clicks_c FROM (SELECT k, COUNT(*) AS c FROM events WHERE k IS NOT NULL GROUP BY k) a FULL JOIN (SELECT k, COUNT(*) AS c FROM clicks WHERE k IS NOT NULL GROUP BY k) b ON a.k = b.k

-- name: mixed_left_join_filter_on_right
SELECT e.id, d.weight FROM events e LEFT JOIN dims d ON e.k = d.k WHERE d.weight > 5 OR d.weight IS NULL

-- name: mixed_three_level_subquery
SELECT band, COUNT(*) AS keys_n, SUM(c) AS rows_n FROM (SELECT k, c, CASE WHEN c >= 100 THEN 'hot' WHEN c >= 10 THEN 'warm' ELSE 'cold' END AS band FROM (SELECT k, COUNT(*) AS c FROM (SELECT k FROM events WHERE k IS NOT NULL) x GROUP BY k) y) z GROUP BY band

-- name: mixed_join_of_aggregates_order_limit
SELECT a.k, a.total, b.n FROM (SELECT k, SUM(amount) AS total FROM events WHERE k IS NOT NULL GROUP BY k) a JOIN (SELECT k, COUNT(*) AS n FROM clicks GROUP BY k) b ON a.k = b.k ORDER BY a.total DESC, a.k LIMIT 8

-- name: mixed_between_columns
SELECT l_orderkey, l_linenumber FROM lineitem WHERE l_commitdate BETWEEN l_shipdate AND l_receiptdate AND l_orderkey < 300

-- name: mixed_group_by_boolean_expression
SELECT v > 500 AS high, flag, COUNT(*) AS c, SUM(amount) AS sa FROM events GROUP BY v > 500, flag

-- name: mixed_order_by_case
SELECT id, k FROM events WHERE id <= 120 ORDER BY CASE WHEN k IS NULL THEN 0 WHEN k < 10 THEN 1 ELSE 2 END, id DESC

-- name: mixed_case_aggregate_decimal
SELECT o_orderpriority, SUM(CASE WHEN o_orderstatus = 'F' THEN o_totalprice ELSE 0 END) AS finished, SUM(CASE WHEN o_orderstatus = 'O' THEN o_totalprice END) AS open_total, COUNT(CASE WHEN o_orderstatus = 'P' THEN 1 END) AS pending FROM orders GROUP BY o_orderpriority

-- name: mixed_strings_join_agg
SELECT UPPER(TRIM(e.name)) AS n, COUNT(DISTINCT e.k) AS dk, COUNT(*) AS c FROM events e JOIN dims d ON e.k = d.k GROUP BY UPPER(TRIM(e.name))

-- name: mixed_window_cte_join
WITH w AS (SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' HOUR)) GROUP BY window_start, window_end, k) SELECT w.window_start, d.label, SUM(w.c) AS c FROM w JOIN dims d ON w.k = d.k GROUP BY w.window_start, d.label
-- duckdb:
WITH w AS (SELECT win_floor(ts, 3600000) AS window_start, k, COUNT(*) AS c FROM events GROUP BY win_floor(ts, 3600000), k) SELECT w.window_start, d.label, SUM(w.c) AS c FROM w JOIN dims d ON w.k = d.k GROUP BY w.window_start, d.label

-- name: mixed_window_union_all
SELECT window_start, window_end, 'events' AS src, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '6' HOUR)) GROUP BY window_start, window_end UNION ALL SELECT window_start, window_end, 'clicks' AS src, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '6' HOUR)) GROUP BY window_start, window_end
-- duckdb:
SELECT win_floor(ts, 21600000) AS window_start, win_floor(ts, 21600000) + INTERVAL '6' HOUR AS window_end, 'events' AS src, COUNT(*) AS c FROM events GROUP BY win_floor(ts, 21600000) UNION ALL SELECT win_floor(ts, 21600000) AS window_start, win_floor(ts, 21600000) + INTERVAL '6' HOUR AS window_end, 'clicks' AS src, COUNT(*) AS c FROM clicks GROUP BY win_floor(ts, 21600000)

-- name: mixed_interval_join_then_agg_by_hour
SELECT EXTRACT(HOUR FROM e.ts) AS h, COUNT(*) AS matches, COUNT(DISTINCT c.cid) AS clicks_n FROM events e JOIN clicks c ON e.k = c.k AND c.ts BETWEEN e.ts AND e.ts + INTERVAL '10' MINUTE GROUP BY EXTRACT(HOUR FROM e.ts)

-- name: mixed_tpch_customer_segments_cte_order
WITH seg AS (SELECT c.c_mktsegment AS seg, o.o_orderstatus AS st, COUNT(*) AS n, SUM(o.o_totalprice) AS total FROM customer c JOIN orders o ON o.o_custkey = c.c_custkey WHERE c.c_mktsegment IS NOT NULL GROUP BY c.c_mktsegment, o.o_orderstatus) SELECT seg, st, n, total FROM seg ORDER BY seg, st

-- name: mixed_lineitem_self_join_same_order
SELECT a.l_orderkey, COUNT(*) AS pairs FROM lineitem a JOIN lineitem b ON a.l_orderkey = b.l_orderkey AND a.l_linenumber < b.l_linenumber WHERE a.l_orderkey < 500 GROUP BY a.l_orderkey

-- name: mixed_nullif_division_guard
SELECT k, SUM(v) / CAST(NULLIF(COUNT(v), 0) AS DOUBLE) AS mean_v FROM events GROUP BY k

-- name: mixed_in_list_and_like_and_between
SELECT id, name FROM events WHERE k IN (3, 42) AND name LIKE '%a%' AND amount BETWEEN 100.00 AND 4000.00 AND ts BETWEEN TIMESTAMP '2024-03-10 08:00:00' AND TIMESTAMP '2024-03-10 20:00:00'

-- name: mixed_union_all_of_joins
SELECT e.id AS x, d.label FROM events e JOIN dims d ON e.k = d.k WHERE e.id < 300 UNION ALL SELECT c.cid AS x, d.label FROM clicks c JOIN dims d ON c.k = d.k WHERE c.cid < 300
