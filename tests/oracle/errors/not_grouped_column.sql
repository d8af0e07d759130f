-- expect: 3:11
-- A selected column that is neither grouped nor aggregated.
SELECT k, v FROM events GROUP BY k;
