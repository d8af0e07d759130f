-- expect: 4:3 | 4:10
-- An aggregate OVER the default frame (RANGE UNBOUNDED PRECEDING, ties counted as one row) is not supported, second line.
SELECT id,
  SUM(v) OVER (PARTITION BY k ORDER BY ts) AS running
FROM events;
