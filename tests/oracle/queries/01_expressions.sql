-- Scalar expressions: arithmetic, comparison, CASE, CAST, COALESCE, NULLIF, math functions.

-- name: expr_int_arith
SELECT id, k, k + 1 AS a, k * 2 AS b, k - id AS c, -k AS d, id * 1000 + k AS e FROM events

-- name: expr_bigint_arith
SELECT o_orderkey, o_orderkey * 3 - 7 AS a, o_orderkey + o_custkey AS b, o_custkey - o_shippriority AS c FROM orders

-- name: expr_double_arith
SELECT id, v, v * 2.5 AS a, v + 1 AS b, v - 0.25 AS c, v / 4.0 AS d FROM events WHERE v IS NOT NULL

-- name: expr_decimal_arith
SELECT id, amount, amount + 1.50 AS a, amount - 0.01 AS b, amount * 2 AS c, amount * amount AS d FROM events

-- name: expr_decimal_mul_decimal
-- format: parquet
SELECT l_orderkey, l_linenumber, l_extendedprice * (1 - l_discount) AS disc_price, l_extendedprice * (1 - l_discount) * (1 + l_tax) AS charge FROM lineitem

-- name: expr_int_to_double_division
SELECT id, k, CAST(k AS DOUBLE) / 3 AS third, CAST(id AS DOUBLE) / CAST(k + 1000 AS DOUBLE) AS ratio FROM events

-- name: expr_precedence
SELECT id, k + id * 2 - 3 AS a, (k + id) * 2 AS b, k - id - 1 AS c, -(k - 5) * 3 AS d FROM events WHERE k IS NOT NULL

-- name: expr_mixed_numeric
SELECT id, k + v AS kv, amount + k AS ak, id * v AS iv FROM events

-- name: expr_comparisons
SELECT id, k > 10 AS gt, k >= 7 AS ge, k = 7 AS eq, k <> 3 AS ne, k < 42 AS lt, v <= 100 AS le FROM events

-- name: expr_compare_strings
SELECT id, name, name = 'alice' AS eq, name < 'M' AS lt, name > 'alice' AS gt, name <> 'Bob' AS ne FROM events

-- name: expr_compare_decimal_dates
SELECT o_orderkey, o_totalprice > 100000.00 AS big, o_orderdate < DATE '1996-06-30' AS early, o_orderdate = DATE '1997-01-01' AS newyear FROM orders

-- name: expr_bool_logic
SELECT id, flag, k > 20 AS big, flag AND k > 20 AS a, flag OR k > 20 AS o, NOT flag AS n FROM events

-- name: expr_bool_logic_nested
SELECT id, (flag OR v > 500) AND NOT (k = 7) AS x, NOT (flag AND v IS NULL) AS y, (flag AND k IS NULL) OR (NOT flag AND k > 100) AS z FROM events

-- name: expr_case_searched
SELECT id, CASE WHEN k IS NULL THEN 'none' WHEN k < 10 THEN 'small' WHEN k < 100 THEN 'medium' ELSE 'large' END AS bucket FROM events

-- name: expr_case_simple
SELECT id, CASE k WHEN 7 THEN 'seven' WHEN 3 THEN 'three' WHEN 42 THEN 'answer' ELSE 'other' END AS kname FROM events

-- name: expr_case_no_else
SELECT id, CASE WHEN v > 900 THEN v END AS hi, CASE flag WHEN true THEN 1 WHEN false THEN 0 END AS f FROM events

-- name: expr_case_numeric_result
SELECT id, CASE WHEN amount > 1000 THEN amount * 2 WHEN amount > 0 THEN amount ELSE 0 END AS adj FROM events

-- name: expr_case_nested
SELECT o_orderkey, CASE WHEN o_orderstatus = 'F' THEN CASE WHEN o_totalprice > 200000 THEN 'F-big' ELSE 'F-small' END WHEN o_orderstatus = 'O' THEN 'open' ELSE 'other' END AS cls FROM orders

-- name: expr_cast_numeric
SELECT id, CAST(k AS BIGINT) AS kb, CAST(k AS DOUBLE) AS kd, CAST(amount AS DOUBLE) AS ad, CAST(k AS DECIMAL(12,2)) AS kdec, CAST(id AS DECIMAL(20,2)) AS idec FROM events

-- name: expr_cast_to_varchar
SELECT id, CAST(k AS VARCHAR) AS ks, CAST(id AS VARCHAR) AS ids, CAST(amount AS VARCHAR) AS am FROM events

-- name: expr_cast_date_varchar
SELECT o_orderkey, CAST(o_orderdate AS VARCHAR) AS ds, CAST(CAST(o_orderdate AS VARCHAR) AS DATE) AS d2 FROM orders

-- name: expr_cast_string_literals
SELECT r_regionkey, CAST('42' AS INT) + r_regionkey AS a, CAST('2024-03-10' AS DATE) AS d, CAST('2024-03-10 12:34:56.789' AS TIMESTAMP(3)) AS t, CAST('12.50' AS DECIMAL(10,2)) AS m FROM region

-- name: expr_cast_ts_date
SELECT id, ts, CAST(ts AS DATE) AS d FROM events

-- name: expr_cast_date_to_ts
SELECT o_orderkey, CAST(o_orderdate AS TIMESTAMP(3)) AS t FROM orders

-- name: expr_cast_double_to_int_truncates
SELECT id, v, CAST(v AS INT) AS vi, CAST(v AS BIGINT) AS vb FROM events WHERE v IS NOT NULL
-- duckdb:
SELECT id, v, CAST(trunc(v) AS INT) AS vi, CAST(trunc(v) AS BIGINT) AS vb FROM events WHERE v IS NOT NULL

-- name: expr_cast_double_to_decimal
SELECT id, CAST(v AS DECIMAL(12,2)) AS vd FROM events WHERE v IS NOT NULL

-- name: expr_coalesce
SELECT id, COALESCE(k, -1) AS k2, COALESCE(name, 'anon') AS n2, COALESCE(v, CAST(amount AS DOUBLE), 0.0) AS v2 FROM events

-- name: expr_nullif
SELECT id, NULLIF(k, 7) AS k2, NULLIF(name, '') AS n2, NULLIF(flag, true) AS f2 FROM events

-- name: expr_abs
SELECT id, ABS(k - 50) AS a, ABS(v - 500) AS b, ABS(amount) AS c FROM events

-- name: expr_round
SELECT id, ROUND(amount, 1) AS r1, ROUND(amount, 0) AS r0, ROUND(amount * 1.5, 1) AS r2 FROM events

-- name: expr_round_double
SELECT id, ROUND(v, 2) AS r2, ROUND(v, 0) AS r0, ROUND(v / 7, 3) AS r3 FROM events WHERE v IS NOT NULL

-- name: expr_floor_ceil
SELECT id, FLOOR(v) AS fv, CEIL(v) AS cv, FLOOR(amount) AS fa, CEIL(amount) AS ca FROM events

-- name: expr_mod
SELECT id, k, MOD(k, 7) AS m7, MOD(id, 10) AS m10, MOD(k - 50, 7) AS mneg FROM events

-- name: expr_constants
SELECT r_regionkey, 1 + 2 * 3 AS c1, 10.5 - 0.25 AS c2, 'lit' AS c3, true AS c4, CAST(NULL AS INT) AS c5 FROM region

-- name: expr_in_select_list
SELECT id, k IN (3, 7, 42) AS hot, name IN ('alice', 'Bob') AS known, k BETWEEN 10 AND 20 AS mid FROM events

-- name: expr_tpch_price_math
SELECT o_orderkey, o_totalprice, o_totalprice * 0.9 AS discounted, ROUND(o_totalprice / 3, 2) AS third, FLOOR(o_totalprice / 1000) AS thousands FROM orders
