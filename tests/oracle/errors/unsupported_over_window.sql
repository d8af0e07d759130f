-- expect: 3:8 | 3:21
-- OVER windows are not supported.
SELECT ROW_NUMBER() OVER () AS rn FROM events;
