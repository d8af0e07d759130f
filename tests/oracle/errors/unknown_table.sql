-- expect: 3:16
-- An unknown table.
SELECT id FROM no_such_table;
