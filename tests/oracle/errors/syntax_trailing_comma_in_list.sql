-- expect: 5:18
-- A syntax error on the third line of the query: ')' after a trailing comma.
SELECT id
FROM events
WHERE k IN (1, 2,);
