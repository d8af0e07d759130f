-- expect: 3:8
-- A function that does not exist.
SELECT NO_SUCH_FN(k) AS x FROM events;
