-- expect: 3:29
-- A WHERE condition that is not BOOLEAN.
SELECT id FROM events WHERE k;
