-- expect: 4:3 | 4:10
-- OVER windows are not supported, second line.
SELECT id,
  SUM(v) OVER (PARTITION BY k ORDER BY ts) AS running
FROM events;
