-- expect: 3:11
-- Aggregates OVER a window (Nexmark q6's AVG … OVER) are not supported.
SELECT k, AVG(v) OVER (PARTITION BY k ORDER BY ts ROWS BETWEEN 10 PRECEDING AND CURRENT ROW) FROM events;
