-- More coverage for the less common functions and join types, incl. NULL-heavy inputs and the
-- empty table.

-- name: fn_abs_nullable
SELECT id, ABS(v) AS av, ABS(k - 100) AS ak, ABS(amount - 2500.00) AS aa FROM events WHERE v IS NULL OR k IS NULL OR amount IS NULL

-- name: fn_abs_group
SELECT ABS(MOD(k, 5) - 2) AS dist, COUNT(*) AS c FROM events GROUP BY ABS(MOD(k, 5) - 2)

-- name: fn_abs_acctbal
SELECT c_custkey, c_acctbal, ABS(c_acctbal) AS a FROM customer WHERE c_acctbal < 0

-- name: fn_ceil_floor_decimal_negative
SELECT c_custkey, FLOOR(c_acctbal) AS f, CEIL(c_acctbal) AS c FROM customer

-- name: fn_floor_ceil_group
SELECT FLOOR(v / 100) AS bucket, COUNT(*) AS c, CEIL(MAX(v)) AS top FROM events WHERE v IS NOT NULL GROUP BY FLOOR(v / 100)

-- name: fn_ceil_on_aggregates
SELECT k, CEIL(SUM(amount)) AS cs, FLOOR(AVG(v)) AS fa, ROUND(AVG(v), 2) AS ra FROM events GROUP BY k

-- name: fn_round_decimal_negative_values
SELECT c_custkey, ROUND(c_acctbal, 1) AS r1, ROUND(c_acctbal, 0) AS r0 FROM customer WHERE c_acctbal < 100

-- name: fn_round_sum_decimal
SELECT l_returnflag, ROUND(SUM(l_extendedprice * (1 - l_discount)), 1) AS rev FROM lineitem GROUP BY l_returnflag

-- name: fn_nullif_in_aggregate
SELECT k, COUNT(NULLIF(flag, false)) AS trues, SUM(NULLIF(k, 7)) AS s FROM events GROUP BY k

-- name: fn_nullif_strings
SELECT c_mktsegment, COUNT(*) AS c FROM customer GROUP BY c_mktsegment, NULLIF(c_mktsegment, 'BUILDING')

-- name: fn_mod_group
SELECT MOD(o_orderkey, 4) AS m, COUNT(*) AS c, SUM(o_totalprice) AS s FROM orders GROUP BY MOD(o_orderkey, 4)

-- name: fn_floor_ts_to_second_day
SELECT FLOOR(ts TO DAY) AS d, COUNT(*) AS c FROM clicks GROUP BY FLOOR(ts TO DAY)
-- duckdb:
SELECT date_trunc('day', ts) AS d, COUNT(*) AS c FROM clicks GROUP BY date_trunc('day', ts)

-- name: fn_floor_ts_to_minute_burst
SELECT FLOOR(ts TO MINUTE) AS m, COUNT(*) AS c FROM events WHERE name LIKE 'burst%' GROUP BY FLOOR(ts TO MINUTE)
-- duckdb:
SELECT date_trunc('minute', ts) AS m, COUNT(*) AS c FROM events WHERE name LIKE 'burst%' GROUP BY date_trunc('minute', ts)

-- name: fn_floor_ts_nullable
SELECT o_orderkey, FLOOR(o_ts TO HOUR) AS h FROM orders WHERE o_orderkey < 400
-- duckdb:
SELECT o_orderkey, date_trunc('hour', o_ts) AS h FROM orders WHERE o_orderkey < 400

-- name: fn_date_trunc_nullable_group
SELECT DATE_TRUNC('year', o_ts) AS y, COUNT(*) AS c, COUNT(o_ts) AS cts FROM orders GROUP BY DATE_TRUNC('year', o_ts)

-- name: fn_functions_on_empty
SELECT COUNT(*) AS c, MAX(ABS(v)) AS mav, MIN(ROUND(amount, 1)) AS mra, MAX(UPPER(name)) AS mu, MIN(DATE_TRUNC('hour', ts)) AS mh FROM empty_events

-- name: join_right_customer_orders
SELECT c.c_custkey, o.o_orderkey FROM orders o RIGHT JOIN customer c ON o.o_custkey = c.c_custkey WHERE c.c_custkey > 480

-- name: join_right_unmatched_only
SELECT n.n_nationkey, n.n_name FROM customer c RIGHT JOIN nation n ON c.c_nationkey = n.n_nationkey AND c.c_acctbal > 9900 WHERE c.c_custkey IS NULL

-- name: join_right_outer_agg
SELECT d.k, d.label, COUNT(e.id) AS c FROM events e RIGHT OUTER JOIN dims d ON e.k = d.k GROUP BY d.k, d.label

-- name: join_right_null_keys
SELECT e.id, d.label FROM events e RIGHT JOIN dims d ON e.k = d.k WHERE d.k IS NULL
