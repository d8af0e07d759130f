-- expect: 3:12
-- An unknown column in the select list.
SELECT id, nope FROM events;
