-- UNION ALL, subqueries in FROM, WITH (CTEs).

-- name: union_all_same_table
SELECT id, k FROM events WHERE k = 3 UNION ALL SELECT id, k FROM events WHERE k = 42

-- name: union_all_duplicates_kept
SELECT k FROM dims UNION ALL SELECT k FROM dims

-- name: union_all_two_tables
SELECT k, ts, 'event' AS src FROM events WHERE k = 7 UNION ALL SELECT k, ts, 'click' AS src FROM clicks WHERE k = 7

-- name: union_all_three_branches
SELECT r_name AS nm, r_regionkey AS key_id FROM region UNION ALL SELECT n_name, n_nationkey FROM nation UNION ALL SELECT label, k FROM dims

-- name: union_all_with_null_literals
SELECT id, k, CAST(NULL AS VARCHAR) AS label FROM events WHERE k = 99 UNION ALL SELECT CAST(NULL AS BIGINT), k, label FROM dims

-- name: union_all_then_aggregate
SELECT src, COUNT(*) AS c, COUNT(DISTINCT k) AS dk FROM (SELECT k, 'e' AS src FROM events UNION ALL SELECT k, 'c' AS src FROM clicks) u GROUP BY src

-- name: union_all_then_group_by_key
SELECT k, COUNT(*) AS c FROM (SELECT k FROM events UNION ALL SELECT k FROM clicks UNION ALL SELECT k FROM dims) u GROUP BY k

-- name: union_all_distinct_over
SELECT DISTINCT k FROM (SELECT k FROM dims UNION ALL SELECT k FROM clicks WHERE k < 20) u

-- name: union_all_with_empty
SELECT id, name FROM events WHERE k = 99 UNION ALL SELECT id, name FROM empty_events

-- name: union_all_type_widening
SELECT k AS x FROM dims UNION ALL SELECT CAST(id AS BIGINT) AS x FROM events WHERE id < 10

-- name: union_all_decimals
SELECT amount AS m FROM events WHERE id < 50 UNION ALL SELECT c_acctbal FROM customer WHERE c_custkey < 50

-- name: union_all_in_join
SELECT u.k, u.src, d.label FROM (SELECT k, 'e' AS src FROM events WHERE id < 200 UNION ALL SELECT k, 'c' AS src FROM clicks WHERE cid < 200) u JOIN dims d ON u.k = d.k

-- name: subquery_from_simple
SELECT t.id, t.double_v FROM (SELECT id, v * 2 AS double_v FROM events WHERE k = 3) t WHERE t.double_v > 1000

-- name: subquery_from_nested
SELECT x.k, x.c FROM (SELECT k, c FROM (SELECT k, COUNT(*) AS c FROM events GROUP BY k) y WHERE c > 5) x

-- name: subquery_aggregate_of_aggregate
SELECT MAX(c) AS max_c, MIN(c) AS min_c, SUM(c) AS total, COUNT(*) AS groups_n FROM (SELECT k, COUNT(*) AS c FROM events GROUP BY k) t

-- name: subquery_projection_rename
SELECT a, b, a + b AS s FROM (SELECT k AS a, CAST(id AS INT) AS b FROM events WHERE id < 100) t

-- name: subquery_filter_on_aggregate
SELECT * FROM (SELECT o_custkey, COUNT(*) AS n, MAX(o_totalprice) AS mx FROM orders GROUP BY o_custkey) t WHERE n >= 15

-- name: subquery_join_two_derived
SELECT a.k, a.sv, b.n FROM (SELECT k, SUM(v) AS sv FROM events GROUP BY k) a JOIN (SELECT k, COUNT(*) AS n FROM dims GROUP BY k) b ON a.k = b.k

-- name: subquery_distinct_in_from
SELECT COUNT(*) AS distinct_pairs FROM (SELECT DISTINCT k, flag FROM events) t

-- name: cte_simple
WITH hot AS (SELECT id, k, v FROM events WHERE k IN (3, 7, 42)) SELECT k, COUNT(*) AS c, SUM(v) AS sv FROM hot GROUP BY k

-- name: cte_two_ctes
WITH e AS (SELECT k, COUNT(*) AS c FROM events GROUP BY k), c AS (SELECT k, COUNT(*) AS c FROM clicks GROUP BY k) SELECT e.k, e.c AS ec, c.c AS cc FROM e JOIN c ON e.k = c.k

-- name: cte_referenced_twice
WITH t AS (SELECT k, COUNT(*) AS c FROM events GROUP BY k) SELECT a.k, a.c, b.c AS c_next FROM t a JOIN t b ON a.k + 1 = b.k

-- name: cte_chained
WITH a AS (SELECT id, k, v FROM events WHERE v IS NOT NULL), b AS (SELECT k, MAX(v) AS mv FROM a GROUP BY k), c AS (SELECT k, mv FROM b WHERE mv > 900) SELECT k, mv FROM c

-- name: cte_union_all
WITH x AS (SELECT k FROM events WHERE k < 5), y AS (SELECT k FROM clicks WHERE k < 5) SELECT k, COUNT(*) AS c FROM (SELECT k FROM x UNION ALL SELECT k FROM y) u GROUP BY k

-- name: cte_with_order_limit
WITH s AS (SELECT k, SUM(amount) AS total FROM events WHERE k IS NOT NULL GROUP BY k) SELECT k, total FROM s ORDER BY total DESC, k LIMIT 5

-- name: cte_tpch_join
WITH big_orders AS (SELECT o_orderkey, o_custkey FROM orders WHERE o_totalprice > 300000) SELECT c.c_mktsegment, COUNT(*) AS n FROM big_orders b JOIN customer c ON b.o_custkey = c.c_custkey GROUP BY c.c_mktsegment
