-- expect: 3:8 | 3:12
-- SUM of a VARCHAR column.
SELECT SUM(name) AS s FROM events;
