-- expect: 3:32
-- An unknown column in ORDER BY.
SELECT id FROM events ORDER BY zz;
