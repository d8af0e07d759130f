-- String functions (UPPER, LOWER, SUBSTRING, CHAR_LENGTH, CONCAT, TRIM, LIKE) and date/time
-- functions (EXTRACT, DATE_TRUNC, FLOOR(ts TO unit), interval arithmetic).

-- name: str_upper_lower
SELECT id, name, UPPER(name) AS u, LOWER(name) AS l FROM events

-- name: str_upper_unicode
SELECT DISTINCT name, UPPER(name) AS u, LOWER(name) AS l FROM events WHERE name LIKE '%ï%' OR name LIKE '%ë%' OR name LIKE '%日%' OR name LIKE '%Ü%'

-- name: str_substring
SELECT id, name, SUBSTRING(name FROM 1 FOR 3) AS s1, SUBSTRING(name FROM 2 FOR 2) AS s2 FROM events

-- name: str_substring_no_for
SELECT id, SUBSTRING(name FROM 3) AS tail_part FROM events WHERE name IS NOT NULL

-- name: str_substring_past_end
SELECT c_custkey, SUBSTRING(c_name FROM 10 FOR 100) AS digits, SUBSTRING(c_phone FROM 4 FOR 3) AS mid FROM customer

-- name: str_char_length
SELECT id, name, CHAR_LENGTH(name) AS n FROM events

-- name: str_char_length_group
SELECT CHAR_LENGTH(o_comment) AS len, COUNT(*) AS c FROM orders GROUP BY CHAR_LENGTH(o_comment)

-- name: str_concat_two
SELECT c_custkey, CONCAT(c_name, c_phone) AS s FROM customer

-- name: str_concat_many
SELECT n_nationkey, CONCAT(n_name, ' (', CAST(n_regionkey AS VARCHAR), ')') AS s FROM nation

-- name: str_concat_with_null
SELECT id, CONCAT(name, '#', CAST(k AS VARCHAR)) AS s FROM events
-- duckdb:
SELECT id, name || '#' || CAST(k AS VARCHAR) AS s FROM events

-- name: str_concat_coalesce
SELECT id, CONCAT(COALESCE(name, '?'), '-', COALESCE(CAST(k AS VARCHAR), 'nokey')) AS s FROM events

-- name: str_trim
SELECT id, name, TRIM(name) AS t, CHAR_LENGTH(TRIM(name)) AS tl FROM events WHERE name LIKE ' %' OR name LIKE '% '

-- name: str_trim_all
SELECT id, TRIM(name) AS t FROM events

-- name: str_trim_both_char
SELECT n_nationkey, TRIM(BOTH 'A' FROM n_name) AS t FROM nation

-- name: str_like_on_function
SELECT id, name FROM events WHERE UPPER(name) LIKE '%ALICE%' OR LOWER(name) LIKE 'mixed%'

-- name: str_group_by_lower
SELECT LOWER(TRIM(name)) AS n, COUNT(*) AS c FROM events GROUP BY LOWER(TRIM(name))

-- name: str_case_on_substring
SELECT SUBSTRING(c_phone FROM 1 FOR 2) AS cc, COUNT(*) AS c FROM customer GROUP BY SUBSTRING(c_phone FROM 1 FOR 2)

-- name: str_nested_functions
SELECT id, UPPER(SUBSTRING(TRIM(name) FROM 1 FOR 4)) AS s, CHAR_LENGTH(CONCAT(TRIM(name), 'xyz')) AS n FROM events WHERE name IS NOT NULL

-- name: str_empty_string
SELECT id, name, CHAR_LENGTH(name) AS n, name = '' AS is_empty FROM events WHERE name = '' OR name IS NULL

-- name: date_extract_ts
SELECT id, ts, EXTRACT(YEAR FROM ts) AS y, EXTRACT(MONTH FROM ts) AS mo, EXTRACT(DAY FROM ts) AS d, EXTRACT(HOUR FROM ts) AS h, EXTRACT(MINUTE FROM ts) AS mi, EXTRACT(SECOND FROM ts) AS s FROM events

-- name: date_extract_date
SELECT o_orderkey, EXTRACT(YEAR FROM o_orderdate) AS y, EXTRACT(MONTH FROM o_orderdate) AS m, EXTRACT(DAY FROM o_orderdate) AS d, EXTRACT(QUARTER FROM o_orderdate) AS q FROM orders

-- name: date_extract_group
SELECT EXTRACT(YEAR FROM o_orderdate) AS y, EXTRACT(QUARTER FROM o_orderdate) AS q, COUNT(*) AS c FROM orders GROUP BY EXTRACT(YEAR FROM o_orderdate), EXTRACT(QUARTER FROM o_orderdate)

-- name: date_extract_order_ts
SELECT EXTRACT(HOUR FROM o_ts) AS h, COUNT(*) AS c FROM orders GROUP BY EXTRACT(HOUR FROM o_ts)

-- name: date_trunc_hour
SELECT id, ts, DATE_TRUNC('hour', ts) AS h FROM events

-- name: date_trunc_units
SELECT id, DATE_TRUNC('minute', ts) AS mi, DATE_TRUNC('day', ts) AS d, DATE_TRUNC('month', ts) AS mo, DATE_TRUNC('year', ts) AS y FROM events WHERE id < 500

-- name: date_trunc_group
SELECT DATE_TRUNC('hour', ts) AS h, COUNT(*) AS c, SUM(amount) AS sa FROM events GROUP BY DATE_TRUNC('hour', ts)

-- name: date_trunc_orders_month
SELECT DATE_TRUNC('month', o_ts) AS m, COUNT(*) AS c FROM orders GROUP BY DATE_TRUNC('month', o_ts)

-- name: floor_ts_to_hour
SELECT FLOOR(ts TO HOUR) AS h, COUNT(*) AS c FROM events GROUP BY FLOOR(ts TO HOUR)
-- duckdb:
SELECT date_trunc('hour', ts) AS h, COUNT(*) AS c FROM events GROUP BY date_trunc('hour', ts)

-- name: floor_ts_to_minute
SELECT id, FLOOR(ts TO MINUTE) AS m, FLOOR(ts TO DAY) AS d FROM events WHERE k = 42
-- duckdb:
SELECT id, date_trunc('minute', ts) AS m, date_trunc('day', ts) AS d FROM events WHERE k = 42

-- name: ts_plus_interval
SELECT id, ts, ts + INTERVAL '1' HOUR AS plus_h, ts - INTERVAL '30' MINUTE AS minus_m, ts + INTERVAL '15' SECOND AS plus_s FROM events

-- name: ts_plus_day_interval
SELECT cid, ts + INTERVAL '1' DAY AS next_day, ts - INTERVAL '2' DAY AS back FROM clicks

-- name: ts_compare_with_interval
SELECT id, ts FROM events WHERE ts + INTERVAL '10' MINUTE > TIMESTAMP '2024-03-11 00:00:00'

-- name: ts_literal_ms
SELECT id, ts FROM events WHERE ts > TIMESTAMP '2024-03-10 12:00:00.500' AND ts < TIMESTAMP '2024-03-10 12:05:00.250'

-- name: date_compare_columns
SELECT l_orderkey, l_linenumber, l_shipdate, l_receiptdate FROM lineitem WHERE l_receiptdate > l_commitdate AND l_orderkey < 100

-- name: date_cast_ts_group
SELECT CAST(o_ts AS DATE) AS d, COUNT(*) AS c FROM orders WHERE o_ts IS NOT NULL AND o_ts < TIMESTAMP '1995-03-01 00:00:00' GROUP BY CAST(o_ts AS DATE)

-- name: date_min_max_extract
SELECT EXTRACT(YEAR FROM MIN(l_shipdate)) AS y0, EXTRACT(YEAR FROM MAX(l_shipdate)) AS y1, MIN(l_receiptdate) AS r0 FROM lineitem
