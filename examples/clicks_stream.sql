-- An endless job for the master quick start: a throttled generator → filter → print.
-- Submit: sluice job submit clicks examples/clicks_stream.sql --parallelism 2
-- Its rows appear in the instance log: sluice job logs clicks

CREATE TABLE clicks (
    user_id BIGINT,
    url_id  BIGINT,
    latency DOUBLE
) WITH (
    'connector' = 'datagen',
    'rows-per-second' = '20',
    'fields.user_id.min' = '1',
    'fields.user_id.max' = '1000',
    'fields.url_id.min' = '1',
    'fields.url_id.max' = '50',
    'fields.latency.min' = '1',
    'fields.latency.max' = '500'
);

CREATE TABLE slow_clicks (
    user_id BIGINT,
    url_id  BIGINT,
    latency DOUBLE
) WITH ('connector' = 'print');

INSERT INTO slow_clicks
SELECT user_id, url_id, latency FROM clicks WHERE latency > 450;
