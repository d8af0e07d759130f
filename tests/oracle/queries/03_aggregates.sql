-- Aggregation: global and grouped COUNT/SUM/AVG/MIN/MAX, COUNT(DISTINCT), HAVING, SELECT DISTINCT.

-- name: agg_count_star
SELECT COUNT(*) AS c FROM events

-- name: agg_count_columns
SELECT COUNT(*) AS c, COUNT(k) AS ck, COUNT(v) AS cv, COUNT(name) AS cn, COUNT(flag) AS cf, COUNT(amount) AS ca FROM events

-- name: agg_global_all
SELECT SUM(k) AS sk, SUM(v) AS sv, SUM(amount) AS sa, MIN(k) AS mink, MAX(k) AS maxk, MIN(v) AS minv, MAX(v) AS maxv, AVG(v) AS av FROM events

-- name: agg_min_max_types
SELECT MIN(name) AS mn, MAX(name) AS mx, MIN(ts) AS mint, MAX(ts) AS maxt, MIN(amount) AS mina, MAX(amount) AS maxa FROM events

-- name: agg_min_max_dates
SELECT MIN(o_orderdate) AS mind, MAX(o_orderdate) AS maxd, MIN(o_ts) AS mints, MAX(o_ts) AS maxts, MIN(o_comment) AS minc FROM orders

-- name: agg_count_distinct_global
SELECT COUNT(DISTINCT k) AS dk, COUNT(DISTINCT name) AS dn, COUNT(DISTINCT flag) AS df FROM events

-- name: agg_group_by_key
SELECT k, COUNT(*) AS c, SUM(v) AS sv, SUM(amount) AS sa FROM events GROUP BY k

-- name: agg_group_by_null_key
SELECT k, COUNT(*) AS c FROM events WHERE k IS NULL OR k = 7 GROUP BY k

-- name: agg_group_by_two_keys
SELECT k, flag, COUNT(*) AS c, MIN(v) AS mn, MAX(v) AS mx FROM events GROUP BY k, flag

-- name: agg_group_by_string
SELECT name, COUNT(*) AS c, COUNT(DISTINCT k) AS dk FROM events GROUP BY name

-- name: agg_group_by_expression
SELECT MOD(k, 10) AS bucket, COUNT(*) AS c, SUM(k) AS s FROM events GROUP BY MOD(k, 10)

-- name: agg_group_by_case
SELECT CASE WHEN v < 100 THEN 'low' WHEN v < 500 THEN 'mid' WHEN v >= 500 THEN 'high' ELSE 'null' END AS band, COUNT(*) AS c, AVG(v) AS av FROM events GROUP BY CASE WHEN v < 100 THEN 'low' WHEN v < 500 THEN 'mid' WHEN v >= 500 THEN 'high' ELSE 'null' END

-- name: agg_group_by_bool
SELECT flag, COUNT(*) AS c, COUNT(v) AS cv, SUM(amount) AS sa FROM events GROUP BY flag

-- name: agg_group_by_date
SELECT o_orderdate, COUNT(*) AS c, SUM(o_totalprice) AS s FROM orders GROUP BY o_orderdate

-- name: agg_group_by_decimal
SELECT l_discount, COUNT(*) AS c, SUM(l_quantity) AS q FROM lineitem GROUP BY l_discount

-- name: agg_avg_int_is_double
SELECT k, AVG(id) AS a FROM events GROUP BY k

-- name: agg_avg_double
SELECT flag, AVG(v) AS av, AVG(CAST(amount AS DOUBLE)) AS aa FROM events GROUP BY flag

-- name: agg_sum_int_bigint
SELECT l_returnflag, SUM(l_quantity) AS q, SUM(l_linenumber) AS ln, SUM(l_orderkey) AS ok FROM lineitem GROUP BY l_returnflag

-- name: agg_sum_decimal
SELECT l_shipmode, SUM(l_extendedprice) AS ep, SUM(l_discount) AS d, SUM(l_extendedprice * l_discount) AS rev FROM lineitem GROUP BY l_shipmode

-- name: agg_count_distinct_grouped
SELECT k, COUNT(DISTINCT name) AS dn, COUNT(DISTINCT flag) AS df, COUNT(*) AS c FROM events GROUP BY k

-- name: agg_count_distinct_and_plain
SELECT o_orderstatus, COUNT(DISTINCT o_custkey) AS dc, COUNT(o_custkey) AS cc, SUM(o_totalprice) AS s FROM orders GROUP BY o_orderstatus

-- name: agg_having_count
SELECT k, COUNT(*) AS c FROM events GROUP BY k HAVING COUNT(*) > 20

-- name: agg_having_sum
SELECT o_custkey, SUM(o_totalprice) AS s FROM orders GROUP BY o_custkey HAVING SUM(o_totalprice) > 2000000

-- name: agg_having_not_in_select
SELECT k FROM events GROUP BY k HAVING MAX(v) > 990 OR MIN(v) < 0

-- name: agg_having_avg
SELECT c_nationkey, AVG(CAST(c_acctbal AS DOUBLE)) AS ab, COUNT(*) AS c FROM customer GROUP BY c_nationkey HAVING AVG(CAST(c_acctbal AS DOUBLE)) > 4500

-- name: agg_all_null_group
SELECT k, SUM(v) AS sv, MIN(name) AS mn, COUNT(v) AS cv FROM events WHERE v IS NULL GROUP BY k

-- name: agg_sum_case
SELECT k, SUM(CASE WHEN flag THEN 1 ELSE 0 END) AS t, SUM(CASE WHEN NOT flag THEN 1 ELSE 0 END) AS f, SUM(CASE WHEN flag IS NULL THEN 1 ELSE 0 END) AS n FROM events GROUP BY k

-- name: agg_arith_over_aggs
SELECT k, MAX(v) - MIN(v) AS spread, SUM(v) / COUNT(v) AS mean, COUNT(*) * 2 AS c2 FROM events GROUP BY k HAVING COUNT(v) > 0

-- name: agg_group_only_no_aggs
SELECT c_mktsegment, c_nationkey FROM customer GROUP BY c_mktsegment, c_nationkey

-- name: agg_min_max_string_grouped
SELECT k, MIN(name) AS mn, MAX(name) AS mx FROM events GROUP BY k

-- name: agg_min_max_ts_grouped
SELECT k, MIN(ts) AS first_ts, MAX(ts) AS last_ts FROM events GROUP BY k

-- name: agg_group_by_extract
SELECT EXTRACT(HOUR FROM ts) AS h, COUNT(*) AS c, SUM(amount) AS s FROM events GROUP BY EXTRACT(HOUR FROM ts)

-- name: agg_filtered_group
SELECT c_mktsegment, COUNT(*) AS c, MIN(c_acctbal) AS mn, MAX(c_acctbal) AS mx, SUM(c_acctbal) AS s FROM customer WHERE c_acctbal > 0 GROUP BY c_mktsegment

-- name: agg_many_groups
SELECT l_orderkey, COUNT(*) AS c, SUM(l_quantity) AS q, MAX(l_shipdate) AS last_ship FROM lineitem GROUP BY l_orderkey

-- name: distinct_single
SELECT DISTINCT k FROM events

-- name: distinct_multi
SELECT DISTINCT k, flag FROM events

-- name: distinct_strings
SELECT DISTINCT name FROM events

-- name: distinct_expression
SELECT DISTINCT MOD(id, 7) AS m, flag FROM events

-- name: distinct_tpch
SELECT DISTINCT l_returnflag, l_linestatus FROM lineitem

-- name: distinct_dates
SELECT DISTINCT l_shipmode, EXTRACT(YEAR FROM l_shipdate) AS y FROM lineitem
