-- TPC-H-shaped queries: multi-way joins with aggregation over region/nation/customer/orders/lineitem.

-- name: tpch_q1_pricing_summary
SELECT l_returnflag, l_linestatus, SUM(l_quantity) AS sum_qty, SUM(l_extendedprice) AS sum_base_price, SUM(l_extendedprice * (1 - l_discount)) AS sum_disc_price, SUM(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge, AVG(CAST(l_quantity AS DOUBLE)) AS avg_qty, AVG(CAST(l_extendedprice AS DOUBLE)) AS avg_price, AVG(CAST(l_discount AS DOUBLE)) AS avg_disc, COUNT(*) AS count_order FROM lineitem WHERE l_shipdate <= DATE '1998-09-02' GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus

-- name: tpch_q3_shipping_priority
SELECT l.l_orderkey, SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue, o.o_orderdate, o.o_shippriority FROM customer c JOIN orders o ON c.c_custkey = o.o_custkey JOIN lineitem l ON l.l_orderkey = o.o_orderkey WHERE c.c_mktsegment = 'BUILDING' AND o.o_orderdate < DATE '1997-03-15' AND l.l_shipdate > DATE '1997-03-15' GROUP BY l.l_orderkey, o.o_orderdate, o.o_shippriority ORDER BY revenue DESC, o.o_orderdate, l.l_orderkey LIMIT 10

-- name: tpch_q3_no_limit
SELECT l.l_orderkey, SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue, o.o_orderdate FROM customer c, orders o, lineitem l WHERE c.c_mktsegment = 'AUTOMOBILE' AND c.c_custkey = o.o_custkey AND l.l_orderkey = o.o_orderkey AND o.o_orderdate < DATE '1996-01-01' GROUP BY l.l_orderkey, o.o_orderdate

-- name: tpch_q4_order_priority
SELECT o.o_orderpriority, COUNT(*) AS order_count FROM orders o JOIN (SELECT DISTINCT l_orderkey FROM lineitem WHERE l_commitdate < l_receiptdate) l ON l.l_orderkey = o.o_orderkey WHERE o.o_orderdate >= DATE '1996-07-01' AND o.o_orderdate < DATE '1996-10-01' GROUP BY o.o_orderpriority ORDER BY o.o_orderpriority

-- name: tpch_q5_local_supplier_volume
SELECT n.n_name, SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue FROM customer c JOIN orders o ON c.c_custkey = o.o_custkey JOIN lineitem l ON l.l_orderkey = o.o_orderkey JOIN nation n ON c.c_nationkey = n.n_nationkey JOIN region r ON n.n_regionkey = r.r_regionkey WHERE r.r_name = 'ASIA' AND o.o_orderdate >= DATE '1996-01-01' AND o.o_orderdate < DATE '1997-01-01' GROUP BY n.n_name ORDER BY revenue DESC, n.n_name

-- name: tpch_q6_forecast_revenue
SELECT SUM(l_extendedprice * l_discount) AS revenue FROM lineitem WHERE l_shipdate >= DATE '1996-01-01' AND l_shipdate < DATE '1997-01-01' AND l_discount BETWEEN 0.05 AND 0.07 AND l_quantity < 24

-- name: tpch_q7_volume_by_year
SELECT n.n_name AS cust_nation, EXTRACT(YEAR FROM l.l_shipdate) AS l_year, SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue FROM lineitem l JOIN orders o ON o.o_orderkey = l.l_orderkey JOIN customer c ON c.c_custkey = o.o_custkey JOIN nation n ON c.c_nationkey = n.n_nationkey WHERE n.n_name IN ('FRANCE', 'GERMANY') AND l.l_shipdate BETWEEN DATE '1995-01-01' AND DATE '1996-12-31' GROUP BY n.n_name, EXTRACT(YEAR FROM l.l_shipdate) ORDER BY cust_nation, l_year

-- name: tpch_q9_like_profit
SELECT n.n_name AS nation, EXTRACT(YEAR FROM o.o_orderdate) AS o_year, SUM(l.l_extendedprice * (1 - l.l_discount) - l.l_quantity * 10.00) AS sum_profit FROM lineitem l JOIN orders o ON o.o_orderkey = l.l_orderkey JOIN customer c ON c.c_custkey = o.o_custkey JOIN nation n ON n.n_nationkey = c.c_nationkey WHERE l.l_comment LIKE '%final%' GROUP BY n.n_name, EXTRACT(YEAR FROM o.o_orderdate)

-- name: tpch_q10_returned_items
SELECT c.c_custkey, c.c_name, SUM(l.l_extendedprice * (1 - l.l_discount)) AS revenue, c.c_acctbal, n.n_name, c.c_phone FROM customer c JOIN orders o ON c.c_custkey = o.o_custkey JOIN lineitem l ON l.l_orderkey = o.o_orderkey JOIN nation n ON c.c_nationkey = n.n_nationkey WHERE o.o_orderdate >= DATE '1995-10-01' AND o.o_orderdate < DATE '1996-01-01' AND l.l_returnflag = 'R' GROUP BY c.c_custkey, c.c_name, c.c_acctbal, c.c_phone, n.n_name ORDER BY revenue DESC, c.c_custkey LIMIT 20

-- name: tpch_q12_shipmode_priority
SELECT l.l_shipmode, SUM(CASE WHEN o.o_orderpriority = '1-URGENT' OR o.o_orderpriority = '2-HIGH' THEN 1 ELSE 0 END) AS high_line_count, SUM(CASE WHEN o.o_orderpriority <> '1-URGENT' AND o.o_orderpriority <> '2-HIGH' THEN 1 ELSE 0 END) AS low_line_count FROM orders o JOIN lineitem l ON o.o_orderkey = l.l_orderkey WHERE l.l_shipmode IN ('MAIL', 'SHIP') AND l.l_commitdate < l.l_receiptdate AND l.l_shipdate < l.l_commitdate AND l.l_receiptdate >= DATE '1996-01-01' AND l.l_receiptdate < DATE '1998-01-01' GROUP BY l.l_shipmode ORDER BY l.l_shipmode

-- name: tpch_q13_customer_distribution
SELECT c_count, COUNT(*) AS custdist FROM (SELECT c.c_custkey, COUNT(o.o_orderkey) AS c_count FROM customer c LEFT JOIN orders o ON c.c_custkey = o.o_custkey AND o.o_comment NOT LIKE '%special%requests%' GROUP BY c.c_custkey) c_orders GROUP BY c_count ORDER BY custdist DESC, c_count DESC

-- name: tpch_q14_promo_revenue
SELECT 100.00 * CAST(SUM(CASE WHEN l_shipmode LIKE 'R%' THEN l_extendedprice * (1 - l_discount) ELSE 0 END) AS DOUBLE) / CAST(SUM(l_extendedprice * (1 - l_discount)) AS DOUBLE) AS promo_revenue FROM lineitem WHERE l_shipdate >= DATE '1996-09-01' AND l_shipdate < DATE '1996-10-01'

-- name: tpch_q18_large_volume_customer
SELECT c.c_name, c.c_custkey, o.o_orderkey, o.o_orderdate, o.o_totalprice, big.q FROM (SELECT l_orderkey, SUM(l_quantity) AS q FROM lineitem GROUP BY l_orderkey HAVING SUM(l_quantity) > 250) big JOIN orders o ON o.o_orderkey = big.l_orderkey JOIN customer c ON c.c_custkey = o.o_custkey ORDER BY o.o_totalprice DESC, o.o_orderkey

-- name: tpch_q19_discounted_revenue
SELECT SUM(l_extendedprice * (1 - l_discount)) AS revenue FROM lineitem WHERE (l_shipmode IN ('AIR', 'REG AIR') AND l_quantity BETWEEN 1 AND 11 AND l_shipinstruct = 'DELIVER IN PERSON') OR (l_shipmode IN ('AIR', 'REG AIR') AND l_quantity BETWEEN 10 AND 20 AND l_discount >= 0.05) OR (l_shipmode = 'TRUCK' AND l_quantity BETWEEN 20 AND 30)

-- name: tpch_revenue_by_segment_year
SELECT c.c_mktsegment, EXTRACT(YEAR FROM o.o_orderdate) AS y, COUNT(DISTINCT o.o_orderkey) AS orders_n, SUM(l.l_extendedprice) AS gross FROM customer c JOIN orders o ON c.c_custkey = o.o_custkey JOIN lineitem l ON l.l_orderkey = o.o_orderkey GROUP BY c.c_mktsegment, EXTRACT(YEAR FROM o.o_orderdate)

-- name: tpch_region_nation_customer_counts
SELECT r.r_name, n.n_name, COUNT(c.c_custkey) AS customers, SUM(c.c_acctbal) AS bal FROM region r JOIN nation n ON n.n_regionkey = r.r_regionkey LEFT JOIN customer c ON c.c_nationkey = n.n_nationkey GROUP BY r.r_name, n.n_name

-- name: tpch_orders_without_lineitems
SELECT o.o_orderstatus, COUNT(*) AS c FROM orders o LEFT JOIN lineitem l ON l.l_orderkey = o.o_orderkey WHERE l.l_orderkey IS NULL GROUP BY o.o_orderstatus

-- name: tpch_lineitem_order_totals
SELECT o.o_orderkey, o.o_totalprice, SUM(l.l_extendedprice) AS line_total, COUNT(*) AS line_n FROM orders o JOIN lineitem l ON l.l_orderkey = o.o_orderkey GROUP BY o.o_orderkey, o.o_totalprice HAVING COUNT(*) >= 6

-- name: tpch_customer_top_spenders
SELECT c.c_custkey, c.c_name, SUM(o.o_totalprice) AS spent, COUNT(*) AS n FROM customer c JOIN orders o ON o.o_custkey = c.c_custkey GROUP BY c.c_custkey, c.c_name ORDER BY spent DESC, c.c_custkey LIMIT 15

-- name: tpch_nation_shipmode_matrix
SELECT n.n_name, l.l_shipmode, COUNT(*) AS c, SUM(l.l_quantity) AS q FROM nation n JOIN customer c ON c.c_nationkey = n.n_nationkey JOIN orders o ON o.o_custkey = c.c_custkey JOIN lineitem l ON l.l_orderkey = o.o_orderkey WHERE n.n_regionkey = 3 GROUP BY n.n_name, l.l_shipmode

-- name: tpch_late_lineitems_by_priority
SELECT o.o_orderpriority, COUNT(*) AS late_lines, SUM(l.l_extendedprice * l.l_tax) AS tax FROM lineitem l JOIN orders o ON l.l_orderkey = o.o_orderkey WHERE l.l_receiptdate > l.l_commitdate GROUP BY o.o_orderpriority

-- name: tpch_cte_customer_order_stats
WITH cust_orders AS (SELECT o_custkey, COUNT(*) AS n, SUM(o_totalprice) AS total FROM orders GROUP BY o_custkey), cust_nation AS (SELECT c.c_custkey, n.n_name FROM customer c JOIN nation n ON c.c_nationkey = n.n_nationkey) SELECT cn.n_name, COUNT(*) AS customers, SUM(co.n) AS orders_n, SUM(co.total) AS total FROM cust_orders co JOIN cust_nation cn ON co.o_custkey = cn.c_custkey GROUP BY cn.n_name

-- name: tpch_monthly_revenue
SELECT EXTRACT(YEAR FROM l_shipdate) AS y, EXTRACT(MONTH FROM l_shipdate) AS m, SUM(l_extendedprice * (1 - l_discount)) AS rev, COUNT(*) AS c FROM lineitem WHERE l_shipdate IS NOT NULL GROUP BY EXTRACT(YEAR FROM l_shipdate), EXTRACT(MONTH FROM l_shipdate) ORDER BY y, m
