-- raw
-- expect: 4:23
-- A syntax error inside CREATE TABLE: a missing comma between two columns.
CREATE TABLE t (k INT label VARCHAR, weight INT) WITH ('connector' = 'filesystem', 'path' = '@DATA@/csv/dims', 'format' = 'csv');
SELECT k FROM t;
