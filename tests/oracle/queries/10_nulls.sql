-- NULL semantics: three-valued logic, NULL-propagating operators, aggregates ignoring NULLs,
-- NULL grouping keys, NULL join keys.

-- name: null_arith_propagates
SELECT id, k + CAST(NULL AS INT) AS a, v * CAST(NULL AS DOUBLE) AS b, amount - CAST(NULL AS DECIMAL(10,2)) AS c FROM events WHERE id < 50

-- name: null_arith_nullable_columns
SELECT id, k + CAST(v AS INT) AS s, amount * k AS m FROM events WHERE v IS NULL OR k IS NULL
-- duckdb:
SELECT id, k + CAST(trunc(v) AS INT) AS s, amount * k AS m FROM events WHERE v IS NULL OR k IS NULL

-- name: null_comparison_is_null
SELECT id, k = CAST(NULL AS INT) AS eq, k <> CAST(NULL AS INT) AS ne, k > CAST(NULL AS INT) AS gt FROM events WHERE id < 20

-- name: null_three_valued_and_or
SELECT flag, flag AND CAST(NULL AS BOOLEAN) AS a_null, flag OR CAST(NULL AS BOOLEAN) AS o_null, flag AND false AS a_false, flag OR true AS o_true, NOT flag AS n FROM events GROUP BY flag

-- name: null_truth_table
SELECT a.flag AS x, b.flag AS y, a.flag AND b.flag AS x_and_y, a.flag OR b.flag AS x_or_y, NOT a.flag AS not_x FROM (SELECT DISTINCT flag, 1 AS j FROM events) a JOIN (SELECT DISTINCT flag, 1 AS j FROM events) b ON a.j = b.j

-- name: null_case_when_null_condition
SELECT id, CASE WHEN k > 50 THEN 'big' WHEN NOT (k > 50) THEN 'small' ELSE 'unknown' END AS c FROM events

-- name: null_simple_case_null_operand
SELECT id, CASE k WHEN CAST(NULL AS INT) THEN 'matched-null' WHEN 7 THEN 'seven' ELSE 'else' END AS c FROM events WHERE k IS NULL OR k = 7
-- duckdb:
SELECT id, CASE WHEN k = CAST(NULL AS INT) THEN 'matched-null' WHEN k = 7 THEN 'seven' ELSE 'else' END AS c FROM events WHERE k IS NULL OR k = 7

-- name: null_coalesce_chain
SELECT id, COALESCE(CAST(NULL AS INT), k, CAST(id AS INT)) AS a, COALESCE(name, CAST(NULL AS VARCHAR), 'none') AS b FROM events

-- name: null_nullif_then_coalesce
SELECT id, COALESCE(NULLIF(k, 7), 0) AS a, NULLIF(NULLIF(name, 'alice'), 'Bob') AS b FROM events

-- name: null_in_list_semantics
SELECT id, k, k IN (3, CAST(NULL AS INT)) AS in_with_null, k NOT IN (3, CAST(NULL AS INT)) AS not_in_with_null FROM events WHERE id < 100

-- name: null_between_semantics
SELECT id, v, v BETWEEN 100 AND 500 AS b FROM events WHERE v IS NULL OR id < 40

-- name: null_like_semantics
SELECT id, name LIKE 'a%' AS l, name NOT LIKE 'a%' AS nl FROM events WHERE name IS NULL OR id < 40

-- name: null_aggregates_skip_nulls
SELECT COUNT(v) AS cv, SUM(v) AS sv, AVG(v) AS av, MIN(v) AS mn, MAX(v) AS mx, COUNT(*) AS c FROM events

-- name: null_only_group_aggregates
SELECT COUNT(v) AS cv, SUM(v) AS sv, MAX(name) AS mn, AVG(v) AS av, COUNT(*) AS c FROM events WHERE v IS NULL

-- name: null_group_key_all_columns
SELECT k, flag, COUNT(*) AS c FROM events WHERE k IS NULL OR flag IS NULL GROUP BY k, flag

-- name: null_distinct_counts_null_once
SELECT DISTINCT flag FROM events

-- name: null_count_distinct_ignores_null
SELECT COUNT(DISTINCT k) AS dk, COUNT(DISTINCT name) AS dn, COUNT(DISTINCT v) AS dv FROM events WHERE k IS NULL OR name IS NULL

-- name: null_join_keys_left
SELECT d.label, e.id FROM dims d LEFT JOIN events e ON d.k = e.k WHERE d.k IS NULL

-- name: null_join_keys_full
SELECT d.label, e.id, e.k FROM dims d FULL JOIN (SELECT id, k FROM events WHERE k IS NULL) e ON d.k = e.k

-- name: null_orders_nullable_fk
SELECT o.o_orderkey, c.c_custkey FROM orders o LEFT JOIN customer c ON o.o_custkey = c.c_custkey WHERE o.o_custkey IS NULL

-- name: null_customer_nullable_columns
SELECT c_custkey, c_nationkey, c_acctbal, c_mktsegment FROM customer WHERE c_nationkey IS NULL OR c_acctbal IS NULL OR c_mktsegment IS NULL

-- name: null_sum_over_nullable_decimal
SELECT c_mktsegment, SUM(c_acctbal) AS s, COUNT(c_acctbal) AS n, COUNT(*) AS c FROM customer GROUP BY c_mktsegment

-- name: null_order_by_nulls
SELECT c_custkey, c_nationkey FROM customer WHERE c_custkey < 120 ORDER BY c_nationkey, c_custkey

-- name: null_where_not_null_expression
SELECT id FROM events WHERE NOT (v > 500 AND k < 10)

-- name: null_union_all_nulls
SELECT k, COUNT(*) AS c FROM (SELECT CAST(NULL AS INT) AS k FROM region UNION ALL SELECT k FROM dims) u GROUP BY k

-- name: null_string_functions
SELECT id, UPPER(name) AS u, CHAR_LENGTH(name) AS n, SUBSTRING(name FROM 1 FOR 2) AS s, TRIM(name) AS t FROM events WHERE name IS NULL

-- name: null_date_functions
SELECT o_orderkey, EXTRACT(YEAR FROM o_orderdate) AS y, CAST(o_orderdate AS VARCHAR) AS s, DATE_TRUNC('day', o_ts) AS d FROM orders WHERE o_orderdate IS NULL OR o_ts IS NULL
