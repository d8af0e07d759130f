-- Joins: INNER/LEFT/RIGHT/FULL equi-joins with NULL keys and duplicates, multi-way joins,
-- residual predicates, self joins, interval joins.

-- name: join_inner_dims
SELECT e.id, e.k, d.label, d.weight FROM events e JOIN dims d ON e.k = d.k

-- name: join_inner_explicit
SELECT e.id, d.label FROM events e INNER JOIN dims d ON e.k = d.k WHERE e.flag

-- name: join_left_dims
SELECT e.id, e.k, d.label FROM events e LEFT JOIN dims d ON e.k = d.k

-- name: join_left_outer_keyword
SELECT e.id, d.weight FROM events e LEFT OUTER JOIN dims d ON e.k = d.k WHERE e.id <= 300

-- name: join_right_dims
SELECT e.id, d.k, d.label FROM events e RIGHT JOIN dims d ON e.k = d.k

-- name: join_full_dims
SELECT e.id, e.k AS ek, d.k AS dk, d.label FROM events e FULL OUTER JOIN dims d ON e.k = d.k

-- name: join_full_small
SELECT d.k AS dk, d.label, c.cid, c.k AS ck FROM dims d FULL JOIN clicks c ON d.k = c.k WHERE c.cid IS NULL OR c.cid < 60

-- name: join_left_unmatched_only
SELECT e.id, e.k FROM events e LEFT JOIN dims d ON e.k = d.k WHERE d.k IS NULL

-- name: join_null_keys_never_match
SELECT COUNT(*) AS c FROM events e JOIN dims d ON e.k = d.k WHERE e.k IS NULL

-- name: join_dims_self_duplicates
SELECT a.k, a.label AS l1, b.label AS l2 FROM dims a JOIN dims b ON a.k = b.k

-- name: join_events_self_on_name
SELECT a.id AS a_id, b.id AS b_id FROM events a JOIN events b ON a.name = b.name WHERE a.id < b.id AND a.k = 99

-- name: join_composite_key
SELECT l.l_orderkey, l.l_linenumber, l2.l_partkey FROM lineitem l JOIN lineitem l2 ON l.l_orderkey = l2.l_orderkey AND l.l_linenumber = l2.l_linenumber + 1 WHERE l.l_orderkey < 200

-- name: join_residual_predicate
SELECT e.id, d.label FROM events e JOIN dims d ON e.k = d.k AND e.v > d.weight * 100

-- name: join_left_with_on_filter
SELECT e.id, d.label FROM events e LEFT JOIN dims d ON e.k = d.k AND d.weight > 5

-- name: join_right_with_on_filter
SELECT e.id, d.k, d.label FROM events e RIGHT JOIN dims d ON e.k = d.k AND e.flag

-- name: join_full_with_on_filter
SELECT e.id, d.k, d.weight FROM events e FULL JOIN dims d ON e.k = d.k AND e.v < 100

-- name: join_expression_key
SELECT e.id, d.label FROM events e JOIN dims d ON e.k + 1 = d.k

-- name: join_string_key
SELECT o.o_orderkey, l.l_linenumber, o.o_orderstatus FROM orders o JOIN lineitem l ON o.o_orderstatus = l.l_linestatus WHERE o.o_orderkey < 5 AND l.l_orderkey < 4

-- name: join_string_key_nonempty
SELECT c.c_custkey, n.n_name FROM customer c JOIN nation n ON SUBSTRING(c.c_phone FROM 1 FOR 2) = CAST(n.n_nationkey + 10 AS VARCHAR)

-- name: join_then_aggregate
SELECT d.label, COUNT(*) AS c, SUM(e.v) AS sv FROM events e JOIN dims d ON e.k = d.k GROUP BY d.label

-- name: join_left_then_count
SELECT d.k, COUNT(e.id) AS c FROM dims d LEFT JOIN events e ON e.k = d.k GROUP BY d.k

-- name: join_orders_customer
SELECT o.o_orderkey, c.c_name, o.o_totalprice FROM orders o JOIN customer c ON o.o_custkey = c.c_custkey WHERE o.o_totalprice > 400000

-- name: join_left_orders_customer_dangling
SELECT o.o_orderkey, o.o_custkey, c.c_name FROM orders o LEFT JOIN customer c ON o.o_custkey = c.c_custkey WHERE c.c_custkey IS NULL

-- name: join_customer_nation_region
SELECT c.c_custkey, n.n_name, r.r_name FROM customer c JOIN nation n ON c.c_nationkey = n.n_nationkey JOIN region r ON n.n_regionkey = r.r_regionkey

-- name: join_four_way
SELECT r.r_name, COUNT(*) AS c, SUM(o.o_totalprice) AS s FROM orders o JOIN customer c ON o.o_custkey = c.c_custkey JOIN nation n ON c.c_nationkey = n.n_nationkey JOIN region r ON n.n_regionkey = r.r_regionkey GROUP BY r.r_name

-- name: join_left_chain
SELECT c.c_custkey, n.n_name, r.r_name FROM customer c LEFT JOIN nation n ON c.c_nationkey = n.n_nationkey LEFT JOIN region r ON n.n_regionkey = r.r_regionkey WHERE c.c_custkey <= 120

-- name: join_orders_lineitem_bigint
SELECT o.o_orderkey, o.o_orderdate, l.l_linenumber, l.l_quantity FROM orders o JOIN lineitem l ON o.o_orderkey = l.l_orderkey WHERE o.o_orderkey BETWEEN 100 AND 180

-- name: join_full_orders_lineitem
SELECT o.o_orderkey, l.l_orderkey, l.l_linenumber FROM orders o FULL JOIN lineitem l ON o.o_orderkey = l.l_orderkey WHERE o.o_orderkey IS NULL OR l.l_orderkey IS NULL

-- name: join_with_empty_inner
-- empty
SELECT e.id, x.id AS xid FROM events e JOIN empty_events x ON e.k = x.k

-- name: join_with_empty_left
SELECT e.id, x.name FROM events e LEFT JOIN empty_events x ON e.k = x.k WHERE e.k = 42

-- name: join_with_empty_right
SELECT d.k, x.id FROM empty_events x RIGHT JOIN dims d ON x.k = d.k

-- name: join_subquery_agg
SELECT e.k, e.c, d.label FROM (SELECT k, COUNT(*) AS c FROM events GROUP BY k) e JOIN dims d ON e.k = d.k

-- name: join_two_aggregates
SELECT a.k, a.c AS events_c, b.c AS clicks_c FROM (SELECT k, COUNT(*) AS c FROM events GROUP BY k) a FULL JOIN (SELECT k, COUNT(*) AS c FROM clicks GROUP BY k) b ON a.k = b.k

-- name: join_decimal_key
SELECT a.id, b.id AS bid, a.amount FROM events a JOIN events b ON a.amount = b.amount WHERE a.id < b.id

-- name: join_date_key
SELECT o.o_orderkey, l.l_orderkey, l.l_linenumber FROM orders o JOIN lineitem l ON o.o_orderdate = l.l_shipdate WHERE o.o_orderkey < 40

-- name: join_timestamp_key
SELECT a.id, b.cid FROM events a JOIN clicks b ON CAST(a.ts AS DATE) = CAST(b.ts AS DATE) AND a.k = b.k AND EXTRACT(HOUR FROM a.ts) = EXTRACT(HOUR FROM b.ts) WHERE a.k = 42

-- name: join_interval_basic
SELECT c.cid, e.id FROM clicks c JOIN events e ON c.k = e.k AND c.ts BETWEEN e.ts - INTERVAL '1' MINUTE AND e.ts

-- name: join_interval_symmetric
SELECT c.cid, e.id, c.ts AS click_ts, e.ts AS event_ts FROM clicks c JOIN events e ON c.k = e.k AND c.ts BETWEEN e.ts - INTERVAL '5' MINUTE AND e.ts + INTERVAL '5' MINUTE

-- name: join_interval_hour_agg
SELECT e.k, COUNT(*) AS c FROM events e JOIN clicks c ON e.k = c.k AND e.ts BETWEEN c.ts - INTERVAL '1' HOUR AND c.ts GROUP BY e.k

-- name: join_interval_strict_inequalities
SELECT c.cid, e.id FROM clicks c JOIN events e ON c.k = e.k AND c.ts > e.ts AND c.ts < e.ts + INTERVAL '2' MINUTE

-- name: join_interval_self
SELECT a.id AS a_id, b.id AS b_id FROM events a JOIN events b ON a.k = b.k AND a.ts BETWEEN b.ts - INTERVAL '10' SECOND AND b.ts WHERE a.id <> b.id

-- name: join_interval_seconds_filter
SELECT c.cid, e.id, e.v FROM clicks c JOIN events e ON c.k = e.k AND e.ts BETWEEN c.ts AND c.ts + INTERVAL '30' SECOND WHERE e.v > 100

-- name: join_interval_left
SELECT c.cid, e.id FROM clicks c LEFT JOIN events e ON c.k = e.k AND e.ts BETWEEN c.ts - INTERVAL '1' MINUTE AND c.ts WHERE c.k IN (3, 7, 42)
