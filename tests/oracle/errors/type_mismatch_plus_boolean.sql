-- expect: 3:8 | 3:10 | 3:12
-- Adding a BOOLEAN to an INT.
SELECT k + flag AS x FROM events;
