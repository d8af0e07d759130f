-- expect: 3:11
-- An OVER frame must be bounded: UNBOUNDED PRECEDING would recompute a partition's whole history.
SELECT k, SUM(v) OVER (PARTITION BY k ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) FROM events;
