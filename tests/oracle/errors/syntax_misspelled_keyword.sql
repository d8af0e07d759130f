-- expect: 3:16
-- A syntax error: FORM instead of FROM (events is then unexpected).
SELECT id FORM events;
