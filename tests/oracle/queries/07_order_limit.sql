-- ORDER BY (ASC/DESC, multiple keys, expressions, NULL placement) and LIMIT.  Orders are total
-- (ties impossible) so the comparison can be ordered.

-- name: order_by_id
SELECT id, k, v FROM events ORDER BY id

-- name: order_by_desc
SELECT id, ts FROM events ORDER BY ts DESC, id DESC

-- name: order_by_two_keys
SELECT k, id FROM events ORDER BY k, id

-- name: order_by_mixed_directions
SELECT k, id, v FROM events ORDER BY k DESC, id ASC

-- name: order_by_nulls_default_asc
SELECT id, v FROM events WHERE id < 300 ORDER BY v, id

-- name: order_by_nulls_default_desc
SELECT id, v FROM events WHERE id < 300 ORDER BY v DESC, id

-- name: order_by_nulls_first_explicit
SELECT id, k FROM events WHERE id < 200 ORDER BY k NULLS FIRST, id

-- name: order_by_desc_nulls_last_explicit
SELECT id, name FROM events WHERE id < 200 ORDER BY name DESC NULLS LAST, id

-- name: order_by_string
SELECT name, id FROM events WHERE name IS NOT NULL ORDER BY name, id

-- name: order_by_expression
SELECT id, k FROM events WHERE k IS NOT NULL ORDER BY MOD(k, 5), id

-- name: order_by_alias
SELECT id, v * 2 AS dv FROM events WHERE v IS NOT NULL ORDER BY dv DESC, id

-- name: order_by_decimal
SELECT id, amount FROM events ORDER BY amount, id

-- name: order_by_date
SELECT o_orderkey, o_orderdate FROM orders ORDER BY o_orderdate DESC, o_orderkey

-- name: order_by_bool
SELECT id, flag FROM events WHERE id < 100 ORDER BY flag, id

-- name: order_limit_top
SELECT id, v FROM events WHERE v IS NOT NULL ORDER BY v DESC, id LIMIT 10

-- name: order_limit_bottom
SELECT id, amount FROM events WHERE amount IS NOT NULL ORDER BY amount, id LIMIT 7

-- name: order_limit_with_nulls
SELECT id, k FROM events ORDER BY k DESC, id LIMIT 25

-- name: order_limit_aggregate
SELECT k, COUNT(*) AS c FROM events GROUP BY k ORDER BY c DESC, k LIMIT 5

-- name: order_limit_join
SELECT e.id, d.label FROM events e JOIN dims d ON e.k = d.k ORDER BY e.id, d.label LIMIT 20

-- name: order_limit_one
SELECT id, ts FROM events ORDER BY ts, id LIMIT 1

-- name: order_limit_zero
-- empty
SELECT id FROM events ORDER BY id LIMIT 0

-- name: order_limit_more_than_rows
SELECT r_regionkey, r_name FROM region ORDER BY r_name LIMIT 100

-- name: order_limit_tpch_orders
SELECT o_orderkey, o_totalprice, o_orderdate FROM orders WHERE o_orderstatus = 'F' ORDER BY o_totalprice DESC, o_orderkey LIMIT 12

-- name: order_by_unicode_strings
SELECT DISTINCT name FROM events WHERE name IS NOT NULL ORDER BY name

-- name: order_by_timestamp_limit
SELECT cid, k, ts FROM clicks ORDER BY ts, cid LIMIT 30

-- name: order_by_union
SELECT k, label FROM dims WHERE k IS NOT NULL UNION ALL SELECT n_nationkey, n_name FROM nation ORDER BY k, label
