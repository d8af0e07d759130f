-- expect: 5:19
-- An unknown column in WHERE, on the third line.
SELECT id,
       k
FROM events WHERE vv > 1;
