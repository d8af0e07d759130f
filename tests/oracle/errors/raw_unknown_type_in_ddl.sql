-- raw
-- expect: 4:26 | 4:24
-- An unknown column type in CREATE TABLE (this file is the whole script; @DATA@ is the data dir).
CREATE TABLE t (a INT, b NOSUCHTYPE) WITH ('connector' = 'filesystem', 'path' = '@DATA@/parquet/dims', 'format' = 'parquet');
SELECT a FROM t;
