-- expect: 3:29 | 3:34
-- A VARCHAR operand of AND.
SELECT id FROM events WHERE name AND flag;
