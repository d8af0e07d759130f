-- expect: 3:36
-- A syntax error: the second '=' is unexpected.
SELECT id, k FROM events WHERE k = = 1;
