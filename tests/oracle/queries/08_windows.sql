-- Windowed aggregation: TUMBLE / HOP / SESSION table-valued functions and the legacy
-- GROUP BY TUMBLE(...) syntax.  DuckDB has none of these, so every query has a DuckDB variant.
-- win_floor(ts, ms) is a DuckDB macro the harness defines: the epoch-aligned floor of ts to a
-- multiple of ms milliseconds (Flink windows are aligned to the epoch).
-- SESSION: Flink merges [ts, ts + gap) windows that overlap or touch, so a new session starts
-- when the distance to the previous row of the partition is > gap; window_end = last ts + gap.

-- name: tumble_10min_by_k
SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '10' MINUTE)) GROUP BY window_start, window_end, k
-- duckdb:
SELECT win_floor(ts, 600000) AS window_start, win_floor(ts, 600000) + INTERVAL '10' MINUTE AS window_end, k, COUNT(*) AS c FROM events GROUP BY win_floor(ts, 600000), k

-- name: tumble_1h_aggs
SELECT window_start, window_end, COUNT(*) AS c, SUM(v) AS sv, SUM(amount) AS sa, MIN(v) AS mn, MAX(amount) AS mx, AVG(v) AS av FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' HOUR)) GROUP BY window_start, window_end
-- duckdb:
SELECT win_floor(ts, 3600000) AS window_start, win_floor(ts, 3600000) + INTERVAL '1' HOUR AS window_end, COUNT(*) AS c, SUM(v) AS sv, SUM(amount) AS sa, MIN(v) AS mn, MAX(amount) AS mx, AVG(v) AS av FROM events GROUP BY win_floor(ts, 3600000)

-- name: tumble_1day_global
SELECT window_start, window_end, COUNT(*) AS c, COUNT(DISTINCT k) AS dk FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' DAY)) GROUP BY window_start, window_end
-- duckdb:
SELECT win_floor(ts, 86400000) AS window_start, win_floor(ts, 86400000) + INTERVAL '1' DAY AS window_end, COUNT(*) AS c, COUNT(DISTINCT k) AS dk FROM events GROUP BY win_floor(ts, 86400000)

-- name: tumble_30min_by_flag
SELECT window_start, window_end, flag, COUNT(*) AS c, SUM(amount) AS sa FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '30' MINUTE)) GROUP BY window_start, window_end, flag
-- duckdb:
SELECT win_floor(ts, 1800000) AS window_start, win_floor(ts, 1800000) + INTERVAL '30' MINUTE AS window_end, flag, COUNT(*) AS c, SUM(amount) AS sa FROM events GROUP BY win_floor(ts, 1800000), flag

-- name: tumble_where_filter
SELECT window_start, window_end, k, COUNT(*) AS c, MAX(v) AS mv FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '15' MINUTE)) WHERE k IN (3, 7, 42) AND v > 100 GROUP BY window_start, window_end, k
-- duckdb:
SELECT win_floor(ts, 900000) AS window_start, win_floor(ts, 900000) + INTERVAL '15' MINUTE AS window_end, k, COUNT(*) AS c, MAX(v) AS mv FROM events WHERE k IN (3, 7, 42) AND v > 100 GROUP BY win_floor(ts, 900000), k

-- name: tumble_count_distinct
SELECT window_start, window_end, COUNT(DISTINCT name) AS dn, COUNT(DISTINCT k) AS dk FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '2' HOUR)) GROUP BY window_start, window_end
-- duckdb:
SELECT win_floor(ts, 7200000) AS window_start, win_floor(ts, 7200000) + INTERVAL '2' HOUR AS window_end, COUNT(DISTINCT name) AS dn, COUNT(DISTINCT k) AS dk FROM events GROUP BY win_floor(ts, 7200000)

-- name: tumble_only_window_end
SELECT window_end, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '20' MINUTE)) GROUP BY window_start, window_end
-- duckdb:
SELECT win_floor(ts, 1200000) + INTERVAL '20' MINUTE AS window_end, COUNT(*) AS c FROM clicks GROUP BY win_floor(ts, 1200000)

-- name: tumble_7min_unaligned_size
SELECT window_start, window_end, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '7' MINUTE)) GROUP BY window_start, window_end
-- duckdb:
SELECT win_floor(ts, 420000) AS window_start, win_floor(ts, 420000) + INTERVAL '7' MINUTE AS window_end, COUNT(*) AS c FROM events GROUP BY win_floor(ts, 420000)

-- name: tumble_1min_burst
SELECT window_start, window_end, k, COUNT(*) AS c, SUM(amount) AS sa FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' MINUTE)) WHERE name LIKE 'burst%' GROUP BY window_start, window_end, k
-- duckdb:
SELECT win_floor(ts, 60000) AS window_start, win_floor(ts, 60000) + INTERVAL '1' MINUTE AS window_end, k, COUNT(*) AS c, SUM(amount) AS sa FROM events WHERE name LIKE 'burst%' GROUP BY win_floor(ts, 60000), k

-- name: tumble_seconds
SELECT window_start, window_end, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '90' SECOND)) WHERE k = 7 GROUP BY window_start, window_end
-- duckdb:
SELECT win_floor(ts, 90000) AS window_start, win_floor(ts, 90000) + INTERVAL '90' SECOND AS window_end, COUNT(*) AS c FROM clicks WHERE k = 7 GROUP BY win_floor(ts, 90000)

-- name: tumble_then_aggregate
SELECT k, COUNT(*) AS windows_n, MAX(c) AS max_c FROM (SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' HOUR)) GROUP BY window_start, window_end, k) t GROUP BY k
-- duckdb:
SELECT k, COUNT(*) AS windows_n, MAX(c) AS max_c FROM (SELECT win_floor(ts, 3600000) AS window_start, k, COUNT(*) AS c FROM events GROUP BY win_floor(ts, 3600000), k) t GROUP BY k

-- name: tumble_then_join_dims
SELECT t.window_start, t.k, t.c, d.label FROM (SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '3' HOUR)) GROUP BY window_start, window_end, k) t JOIN dims d ON t.k = d.k
-- duckdb:
SELECT t.window_start, t.k, t.c, d.label FROM (SELECT win_floor(ts, 10800000) AS window_start, k, COUNT(*) AS c FROM events GROUP BY win_floor(ts, 10800000), k) t JOIN dims d ON t.k = d.k

-- name: tumble_window_join_of_two_streams
SELECT e.window_start, e.k, e.c, c.n FROM (SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' HOUR)) GROUP BY window_start, window_end, k) e JOIN (SELECT window_start, window_end, k, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(ts), INTERVAL '1' HOUR)) GROUP BY window_start, window_end, k) c ON e.k = c.k AND e.window_start = c.window_start AND e.window_end = c.window_end
-- duckdb:
SELECT e.window_start, e.k, e.c, c.n FROM (SELECT win_floor(ts, 3600000) AS window_start, k, COUNT(*) AS c FROM events GROUP BY win_floor(ts, 3600000), k) e JOIN (SELECT win_floor(ts, 3600000) AS window_start, k, COUNT(*) AS n FROM clicks GROUP BY win_floor(ts, 3600000), k) c ON e.k = c.k AND e.window_start = c.window_start

-- name: hop_window_join_on_the_end_only_like_nexmark_q5
SELECT a.window_end, a.k, a.c FROM (SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '30' MINUTE, INTERVAL '2' HOUR)) GROUP BY window_start, window_end, k) a JOIN (SELECT window_start, window_end, COUNT(*) AS total FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '30' MINUTE, INTERVAL '2' HOUR)) GROUP BY window_start, window_end) b ON a.window_end = b.window_end AND a.c * 10 >= b.total
-- duckdb:
SELECT a.ws + INTERVAL '2' HOUR AS window_end, a.k, a.c FROM (SELECT ws, k, COUNT(*) AS c FROM (SELECT k, unnest(generate_series(win_floor(ts, 1800000) - INTERVAL '90' MINUTE, win_floor(ts, 1800000), INTERVAL '30' MINUTE)) AS ws FROM events) h GROUP BY ws, k) a JOIN (SELECT ws, COUNT(*) AS total FROM (SELECT unnest(generate_series(win_floor(ts, 1800000) - INTERVAL '90' MINUTE, win_floor(ts, 1800000), INTERVAL '30' MINUTE)) AS ws FROM events) h GROUP BY ws) b ON a.ws = b.ws AND a.c * 10 >= b.total

-- name: tumble_ordered
SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '4' HOUR)) WHERE k IS NOT NULL GROUP BY window_start, window_end, k ORDER BY window_start, c DESC, k
-- duckdb:
SELECT win_floor(ts, 14400000) AS window_start, win_floor(ts, 14400000) + INTERVAL '4' HOUR AS window_end, k, COUNT(*) AS c FROM events WHERE k IS NOT NULL GROUP BY win_floor(ts, 14400000), k ORDER BY window_start, c DESC, k

-- name: tumble_having
SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '1' HOUR)) GROUP BY window_start, window_end, k HAVING COUNT(*) >= 10
-- duckdb:
SELECT win_floor(ts, 3600000) AS window_start, win_floor(ts, 3600000) + INTERVAL '1' HOUR AS window_end, k, COUNT(*) AS c FROM events GROUP BY win_floor(ts, 3600000), k HAVING COUNT(*) >= 10

-- name: tumble_expression_in_select
SELECT window_start, k, SUM(v) / COUNT(*) AS mean_with_nulls_as_rows, SUM(CASE WHEN flag THEN 1 ELSE 0 END) AS flagged FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(ts), INTERVAL '6' HOUR)) GROUP BY window_start, window_end, k
-- duckdb:
SELECT win_floor(ts, 21600000) AS window_start, k, SUM(v) / COUNT(*) AS mean_with_nulls_as_rows, SUM(CASE WHEN flag THEN 1 ELSE 0 END) AS flagged FROM events GROUP BY win_floor(ts, 21600000), k

-- name: tumble_empty_table
-- empty
SELECT window_start, window_end, COUNT(*) AS c FROM TABLE(TUMBLE(TABLE empty_events, DESCRIPTOR(ts), INTERVAL '10' MINUTE)) GROUP BY window_start, window_end
-- duckdb:
SELECT win_floor(ts, 600000) AS window_start, win_floor(ts, 600000) + INTERVAL '10' MINUTE AS window_end, COUNT(*) AS c FROM empty_events GROUP BY win_floor(ts, 600000)

-- name: hop_5_15_by_k
SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '5' MINUTE, INTERVAL '15' MINUTE)) GROUP BY window_start, window_end, k
-- duckdb:
SELECT ws AS window_start, ws + INTERVAL '15' MINUTE AS window_end, k, COUNT(*) AS c FROM (SELECT k, unnest(generate_series(win_floor(ts, 300000) - INTERVAL '10' MINUTE, win_floor(ts, 300000), INTERVAL '5' MINUTE)) AS ws FROM events) h GROUP BY ws, k

-- name: hop_30m_1h_aggs
SELECT window_start, window_end, COUNT(*) AS c, SUM(amount) AS sa, MAX(v) AS mv FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '30' MINUTE, INTERVAL '1' HOUR)) GROUP BY window_start, window_end
-- duckdb:
SELECT ws AS window_start, ws + INTERVAL '1' HOUR AS window_end, COUNT(*) AS c, SUM(amount) AS sa, MAX(v) AS mv FROM (SELECT amount, v, unnest(generate_series(win_floor(ts, 1800000) - INTERVAL '30' MINUTE, win_floor(ts, 1800000), INTERVAL '30' MINUTE)) AS ws FROM events) h GROUP BY ws

-- name: hop_10m_30m_filter
SELECT window_start, window_end, k, SUM(v) AS sv FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '10' MINUTE, INTERVAL '30' MINUTE)) WHERE k IN (3, 7) GROUP BY window_start, window_end, k
-- duckdb:
SELECT ws AS window_start, ws + INTERVAL '30' MINUTE AS window_end, k, SUM(v) AS sv FROM (SELECT k, v, unnest(generate_series(win_floor(ts, 600000) - INTERVAL '20' MINUTE, win_floor(ts, 600000), INTERVAL '10' MINUTE)) AS ws FROM events WHERE k IN (3, 7)) h GROUP BY ws, k

-- name: hop_1h_2h_by_flag
SELECT window_start, window_end, flag, COUNT(*) AS c, COUNT(DISTINCT k) AS dk FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '1' HOUR, INTERVAL '2' HOUR)) GROUP BY window_start, window_end, flag
-- duckdb:
SELECT ws AS window_start, ws + INTERVAL '2' HOUR AS window_end, flag, COUNT(*) AS c, COUNT(DISTINCT k) AS dk FROM (SELECT flag, k, unnest(generate_series(win_floor(ts, 3600000) - INTERVAL '1' HOUR, win_floor(ts, 3600000), INTERVAL '1' HOUR)) AS ws FROM events) h GROUP BY ws, flag

-- name: hop_clicks_by_url
SELECT window_start, window_end, url, COUNT(*) AS c FROM TABLE(HOP(TABLE clicks, DESCRIPTOR(ts), INTERVAL '2' HOUR, INTERVAL '6' HOUR)) GROUP BY window_start, window_end, url
-- duckdb:
SELECT ws AS window_start, ws + INTERVAL '6' HOUR AS window_end, url, COUNT(*) AS c FROM (SELECT url, unnest(generate_series(win_floor(ts, 7200000) - INTERVAL '4' HOUR, win_floor(ts, 7200000), INTERVAL '2' HOUR)) AS ws FROM clicks) h GROUP BY ws, url

-- name: hop_then_max
SELECT k, MAX(c) AS peak FROM (SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(HOP(TABLE events, DESCRIPTOR(ts), INTERVAL '15' MINUTE, INTERVAL '1' HOUR)) GROUP BY window_start, window_end, k) t GROUP BY k
-- duckdb:
SELECT k, MAX(c) AS peak FROM (SELECT ws, k, COUNT(*) AS c FROM (SELECT k, unnest(generate_series(win_floor(ts, 900000) - INTERVAL '45' MINUTE, win_floor(ts, 900000), INTERVAL '15' MINUTE)) AS ws FROM events) h GROUP BY ws, k) t GROUP BY k

-- name: hop_empty_table
-- empty
SELECT window_start, window_end, COUNT(*) AS c FROM TABLE(HOP(TABLE empty_events, DESCRIPTOR(ts), INTERVAL '5' MINUTE, INTERVAL '10' MINUTE)) GROUP BY window_start, window_end
-- duckdb:
SELECT ws AS window_start, ws + INTERVAL '10' MINUTE AS window_end, COUNT(*) AS c FROM (SELECT unnest(generate_series(win_floor(ts, 300000) - INTERVAL '5' MINUTE, win_floor(ts, 300000), INTERVAL '5' MINUTE)) AS ws FROM empty_events) h GROUP BY ws

-- name: session_10min_by_k
SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(SESSION(TABLE events PARTITION BY k, DESCRIPTOR(ts), INTERVAL '10' MINUTE)) GROUP BY window_start, window_end, k
-- duckdb:
WITH s AS (SELECT *, CASE WHEN LAG(ts) OVER (PARTITION BY k ORDER BY ts) IS NULL OR ts - LAG(ts) OVER (PARTITION BY k ORDER BY ts) > INTERVAL '10' MINUTE THEN 1 ELSE 0 END AS new_s FROM events), g AS (SELECT *, SUM(new_s) OVER (PARTITION BY k ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM s) SELECT MIN(ts) AS window_start, MAX(ts) + INTERVAL '10' MINUTE AS window_end, k, COUNT(*) AS c FROM g GROUP BY k, sid

-- name: session_5min_aggs
SELECT window_start, window_end, k, COUNT(*) AS c, SUM(amount) AS sa, MIN(v) AS mn, MAX(v) AS mx FROM TABLE(SESSION(TABLE events PARTITION BY k, DESCRIPTOR(ts), INTERVAL '5' MINUTE)) GROUP BY window_start, window_end, k
-- duckdb:
WITH s AS (SELECT *, CASE WHEN LAG(ts) OVER (PARTITION BY k ORDER BY ts) IS NULL OR ts - LAG(ts) OVER (PARTITION BY k ORDER BY ts) > INTERVAL '5' MINUTE THEN 1 ELSE 0 END AS new_s FROM events), g AS (SELECT *, SUM(new_s) OVER (PARTITION BY k ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM s) SELECT MIN(ts) AS window_start, MAX(ts) + INTERVAL '5' MINUTE AS window_end, k, COUNT(*) AS c, SUM(amount) AS sa, MIN(v) AS mn, MAX(v) AS mx FROM g GROUP BY k, sid

-- name: session_30min_clicks
SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(SESSION(TABLE clicks PARTITION BY k, DESCRIPTOR(ts), INTERVAL '30' MINUTE)) GROUP BY window_start, window_end, k
-- duckdb:
WITH s AS (SELECT *, CASE WHEN LAG(ts) OVER (PARTITION BY k ORDER BY ts) IS NULL OR ts - LAG(ts) OVER (PARTITION BY k ORDER BY ts) > INTERVAL '30' MINUTE THEN 1 ELSE 0 END AS new_s FROM clicks), g AS (SELECT *, SUM(new_s) OVER (PARTITION BY k ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM s) SELECT MIN(ts) AS window_start, MAX(ts) + INTERVAL '30' MINUTE AS window_end, k, COUNT(*) AS c FROM g GROUP BY k, sid

-- name: session_no_partition
SELECT window_start, window_end, COUNT(*) AS c FROM TABLE(SESSION(TABLE events, DESCRIPTOR(ts), INTERVAL '2' MINUTE)) GROUP BY window_start, window_end
-- duckdb:
WITH s AS (SELECT *, CASE WHEN LAG(ts) OVER (ORDER BY ts) IS NULL OR ts - LAG(ts) OVER (ORDER BY ts) > INTERVAL '2' MINUTE THEN 1 ELSE 0 END AS new_s FROM events), g AS (SELECT *, SUM(new_s) OVER (ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM s) SELECT MIN(ts) AS window_start, MAX(ts) + INTERVAL '2' MINUTE AS window_end, COUNT(*) AS c FROM g GROUP BY sid

-- name: session_long_sessions_having
SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(SESSION(TABLE events PARTITION BY k, DESCRIPTOR(ts), INTERVAL '3' MINUTE)) GROUP BY window_start, window_end, k HAVING COUNT(*) >= 5
-- duckdb:
WITH s AS (SELECT *, CASE WHEN LAG(ts) OVER (PARTITION BY k ORDER BY ts) IS NULL OR ts - LAG(ts) OVER (PARTITION BY k ORDER BY ts) > INTERVAL '3' MINUTE THEN 1 ELSE 0 END AS new_s FROM events), g AS (SELECT *, SUM(new_s) OVER (PARTITION BY k ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM s) SELECT MIN(ts) AS window_start, MAX(ts) + INTERVAL '3' MINUTE AS window_end, k, COUNT(*) AS c FROM g GROUP BY k, sid HAVING COUNT(*) >= 5

-- name: session_then_aggregate
SELECT k, COUNT(*) AS sessions, MAX(c) AS longest FROM (SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(SESSION(TABLE events PARTITION BY k, DESCRIPTOR(ts), INTERVAL '20' MINUTE)) GROUP BY window_start, window_end, k) t GROUP BY k
-- duckdb:
WITH s AS (SELECT *, CASE WHEN LAG(ts) OVER (PARTITION BY k ORDER BY ts) IS NULL OR ts - LAG(ts) OVER (PARTITION BY k ORDER BY ts) > INTERVAL '20' MINUTE THEN 1 ELSE 0 END AS new_s FROM events), g AS (SELECT *, SUM(new_s) OVER (PARTITION BY k ORDER BY ts ROWS UNBOUNDED PRECEDING) AS sid FROM s), w AS (SELECT k, sid, COUNT(*) AS c FROM g GROUP BY k, sid) SELECT k, COUNT(*) AS sessions, MAX(c) AS longest FROM w GROUP BY k

-- name: session_empty_table
-- empty
SELECT window_start, window_end, k, COUNT(*) AS c FROM TABLE(SESSION(TABLE empty_events PARTITION BY k, DESCRIPTOR(ts), INTERVAL '10' MINUTE)) GROUP BY window_start, window_end, k
-- duckdb:
SELECT ts AS window_start, ts AS window_end, k, COUNT(*) AS c FROM empty_events GROUP BY ts, k

-- name: legacy_tumble_1h
SELECT TUMBLE_START(ts, INTERVAL '1' HOUR) AS ws, TUMBLE_END(ts, INTERVAL '1' HOUR) AS we, k, COUNT(*) AS c FROM events GROUP BY TUMBLE(ts, INTERVAL '1' HOUR), k
-- duckdb:
SELECT win_floor(ts, 3600000) AS ws, win_floor(ts, 3600000) + INTERVAL '1' HOUR AS we, k, COUNT(*) AS c FROM events GROUP BY win_floor(ts, 3600000), k

-- name: legacy_tumble_10min_sum
SELECT TUMBLE_START(ts, INTERVAL '10' MINUTE) AS ws, SUM(amount) AS sa, COUNT(v) AS cv FROM events GROUP BY TUMBLE(ts, INTERVAL '10' MINUTE)
-- duckdb:
SELECT win_floor(ts, 600000) AS ws, SUM(amount) AS sa, COUNT(v) AS cv FROM events GROUP BY win_floor(ts, 600000)

-- name: legacy_tumble_where
SELECT k, TUMBLE_END(ts, INTERVAL '30' MINUTE) AS we, MAX(v) AS mv FROM events WHERE flag GROUP BY k, TUMBLE(ts, INTERVAL '30' MINUTE)
-- duckdb:
SELECT k, win_floor(ts, 1800000) + INTERVAL '30' MINUTE AS we, MAX(v) AS mv FROM events WHERE flag GROUP BY k, win_floor(ts, 1800000)

-- name: legacy_tumble_clicks_day
SELECT TUMBLE_START(ts, INTERVAL '1' DAY) AS ws, TUMBLE_END(ts, INTERVAL '1' DAY) AS we, COUNT(*) AS c, COUNT(DISTINCT url) AS du FROM clicks GROUP BY TUMBLE(ts, INTERVAL '1' DAY)
-- duckdb:
SELECT win_floor(ts, 86400000) AS ws, win_floor(ts, 86400000) + INTERVAL '1' DAY AS we, COUNT(*) AS c, COUNT(DISTINCT url) AS du FROM clicks GROUP BY win_floor(ts, 86400000)

-- name: legacy_tumble_having
SELECT TUMBLE_START(ts, INTERVAL '2' HOUR) AS ws, k, COUNT(*) AS c FROM events GROUP BY TUMBLE(ts, INTERVAL '2' HOUR), k HAVING COUNT(*) > 15
-- duckdb:
SELECT win_floor(ts, 7200000) AS ws, k, COUNT(*) AS c FROM events GROUP BY win_floor(ts, 7200000), k HAVING COUNT(*) > 15
