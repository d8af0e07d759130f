-- expect: 3:11
-- ROW_NUMBER() with no filter on it in an enclosing query: not a Top-N.
SELECT k, ROW_NUMBER() OVER (PARTITION BY k ORDER BY id) AS rn FROM events;
