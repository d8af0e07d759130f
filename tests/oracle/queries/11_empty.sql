-- Queries over the empty table (0 rows).

-- name: empty_select_all
-- empty
SELECT * FROM empty_events

-- name: empty_count_star
SELECT COUNT(*) AS c FROM empty_events

-- name: empty_global_aggregates
SELECT COUNT(*) AS c, COUNT(v) AS cv, SUM(v) AS sv, SUM(amount) AS sa, MIN(name) AS mn, MAX(ts) AS mx, AVG(v) AS av, COUNT(DISTINCT k) AS dk FROM empty_events

-- name: empty_group_by
-- empty
SELECT k, COUNT(*) AS c FROM empty_events GROUP BY k

-- name: empty_distinct
-- empty
SELECT DISTINCT k, name FROM empty_events

-- name: empty_order_limit
-- empty
SELECT id, v FROM empty_events ORDER BY id LIMIT 5

-- name: empty_left_join_from_empty
-- empty
SELECT x.id, d.label FROM empty_events x LEFT JOIN dims d ON x.k = d.k

-- name: empty_full_join
SELECT x.id, d.k, d.label FROM empty_events x FULL JOIN dims d ON x.k = d.k

-- name: empty_union_all_both
-- empty
SELECT id, k FROM empty_events UNION ALL SELECT id, k FROM empty_events

-- name: empty_subquery_aggregate
SELECT COUNT(*) AS groups_n FROM (SELECT k, COUNT(*) AS c FROM empty_events GROUP BY k) t

-- name: empty_having
-- empty
SELECT k, COUNT(*) AS c FROM empty_events GROUP BY k HAVING COUNT(*) > 0

-- name: empty_cte_join
-- empty
WITH e AS (SELECT k, COUNT(*) AS c FROM empty_events GROUP BY k) SELECT e.k, e.c, d.label FROM e JOIN dims d ON e.k = d.k

-- name: empty_filter_result_global_agg
SELECT COUNT(*) AS c, SUM(k) AS s, MAX(v) AS m FROM events WHERE k = -12345

-- name: empty_expressions
-- empty
SELECT id, k + 1 AS k1, UPPER(name) AS u, CASE WHEN flag THEN 1 ELSE 0 END AS f, CAST(ts AS DATE) AS d FROM empty_events
