-- WHERE clauses: comparisons, IN, BETWEEN, LIKE, IS NULL, boolean logic with NULLs.

-- name: filter_int_eq
SELECT id, k, v FROM events WHERE k = 7

-- name: filter_int_range
SELECT id, k FROM events WHERE k > 10 AND k <= 60

-- name: filter_ne
SELECT id, k FROM events WHERE k <> 7 AND k <> 3

-- name: filter_double
SELECT id, v FROM events WHERE v > 990.0 OR v < 0

-- name: filter_decimal
SELECT id, amount FROM events WHERE amount >= 4900.00

-- name: filter_decimal_negative
SELECT id, amount FROM events WHERE amount < 0 AND amount > -50.5

-- name: filter_string_eq
SELECT id, name FROM events WHERE name = 'alice'

-- name: filter_string_range
SELECT id, name FROM events WHERE name >= 'a' AND name < 'c'

-- name: filter_unicode_eq
SELECT id, name FROM events WHERE name = '日本語' OR name = 'Zoë' OR name = 'naïve café'

-- name: filter_in_list_int
SELECT id, k FROM events WHERE k IN (3, 7, 42, 99)

-- name: filter_not_in_list
SELECT id, k FROM events WHERE k NOT IN (3, 7, 42)

-- name: filter_in_list_string
SELECT c_custkey, c_mktsegment FROM customer WHERE c_mktsegment IN ('BUILDING', 'MACHINERY')

-- name: filter_in_list_with_null
SELECT id, k FROM events WHERE k IN (1, 2, CAST(NULL AS INT))

-- name: filter_not_in_list_with_null
-- empty
SELECT id, k FROM events WHERE k NOT IN (1, 2, CAST(NULL AS INT))

-- name: filter_between_int
SELECT id, k FROM events WHERE k BETWEEN 20 AND 40

-- name: filter_not_between
SELECT id, k FROM events WHERE k NOT BETWEEN 2 AND 120

-- name: filter_between_dates
SELECT o_orderkey, o_orderdate FROM orders WHERE o_orderdate BETWEEN DATE '1996-01-01' AND DATE '1996-01-31'

-- name: filter_between_timestamps
SELECT id, ts FROM events WHERE ts BETWEEN TIMESTAMP '2024-03-10 06:00:00' AND TIMESTAMP '2024-03-10 06:30:00.000'

-- name: filter_between_decimal
SELECT id, amount FROM events WHERE amount BETWEEN 10.00 AND 20.00

-- name: filter_like_prefix
SELECT id, name FROM events WHERE name LIKE 'a%'

-- name: filter_like_contains
SELECT id, name FROM events WHERE name LIKE '%e%'

-- name: filter_like_underscore
SELECT id, name FROM events WHERE name LIKE '_ve%'

-- name: filter_like_exact_len
SELECT id, name FROM events WHERE name LIKE 'x_'

-- name: filter_not_like
SELECT id, name FROM events WHERE name NOT LIKE '%a%'

-- name: filter_like_case_sensitive
SELECT id, name FROM events WHERE name LIKE 'B%' OR name LIKE '%CASE%'

-- name: filter_like_special_chars
SELECT id, name FROM events WHERE name LIKE '%\%%' OR name LIKE '%,%' OR name LIKE '%"%'
-- duckdb:
SELECT id, name FROM events WHERE name LIKE '%\%%' ESCAPE '\' OR name LIKE '%,%' OR name LIKE '%"%'

-- name: filter_like_tpch_comment
SELECT o_orderkey, o_comment FROM orders WHERE o_comment LIKE '%special%requests%'

-- name: filter_is_null
SELECT id, k, v FROM events WHERE v IS NULL

-- name: filter_is_not_null_multi
SELECT id FROM events WHERE k IS NOT NULL AND name IS NOT NULL AND flag IS NOT NULL AND v IS NOT NULL AND amount IS NOT NULL

-- name: filter_bool_column
SELECT id, flag FROM events WHERE flag

-- name: filter_not_bool_column
SELECT id, flag FROM events WHERE NOT flag

-- name: filter_bool_eq_literal
SELECT id FROM events WHERE flag = true AND k = 3

-- name: filter_bool_null
SELECT id FROM events WHERE flag IS NULL

-- name: filter_or_with_nulls
SELECT id, k, v FROM events WHERE k = 7 OR v > 950

-- name: filter_not_of_null_condition
SELECT id, k FROM events WHERE NOT (k > 50)

-- name: filter_complex
SELECT id FROM events WHERE (k IN (3, 7) AND v > 500) OR (name LIKE 'B%' AND NOT flag) OR (amount < 0 AND k IS NULL)

-- name: filter_timestamp_range
SELECT id, ts FROM events WHERE ts >= TIMESTAMP '2024-03-10 23:00:00' AND ts < TIMESTAMP '2024-03-11 00:00:00'

-- name: filter_date_lt
SELECT o_orderkey, o_orderdate FROM orders WHERE o_orderdate < DATE '1995-01-15'

-- name: filter_expression_predicate
SELECT id, k FROM events WHERE MOD(k, 10) = 3 AND k * 2 > 20

-- name: filter_on_empty
-- empty
SELECT id, k FROM empty_events WHERE k > 0

-- name: filter_always_false
-- empty
SELECT id FROM events WHERE 1 = 0

-- name: filter_lineitem_dates
SELECT l_orderkey, l_linenumber FROM lineitem WHERE l_commitdate < l_receiptdate AND l_shipdate < l_commitdate AND l_shipmode = 'MAIL'
