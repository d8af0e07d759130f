-- expect: 3:8
-- A qualifier that names no table of the FROM clause.
SELECT x.id FROM events e;
