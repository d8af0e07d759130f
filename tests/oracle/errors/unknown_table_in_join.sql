-- expect: 4:20
-- An unknown table on the second line.
SELECT e.id
FROM events e JOIN missing_dims d ON e.k = d.k;
