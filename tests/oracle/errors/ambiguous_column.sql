-- expect: 3:8
-- A column name that two joined tables have.
SELECT k FROM events e JOIN dims d ON e.k = d.k;
