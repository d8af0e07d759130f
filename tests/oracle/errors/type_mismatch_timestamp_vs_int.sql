-- expect: 3:29 | 3:32 | 3:34
-- Comparing a TIMESTAMP with an INT.
SELECT id FROM events WHERE ts > 5;
