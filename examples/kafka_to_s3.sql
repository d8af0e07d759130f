-- Exactly-once Kafka → S3 Parquet: the pipeline most Sluice users run.
--
-- Run it under the master (it checkpoints every 5 s and restarts from the last
-- checkpoint after any crash; every record lands in S3 exactly once):
--   sluice serve --allow-endpoint http://127.0.0.1:5055 \
--     --allow-ambient-credentials http://127.0.0.1:5055 &
--   sluice job submit clicks-to-lake examples/kafka_to_s3.sql --parallelism 2
--   sluice job get clicks-to-lake
--   curl -s http://127.0.0.1:8080/api/v1/jobs/clicks-to-lake/commits   # lineage: offsets → objects
--
-- Against a local stand-in: `cargo run -p sluice-tests --bin kafka-mock -- clicks:4`
-- prints a bootstrap address (librdkafka's mock cluster) and
-- `.venv/bin/moto_server -p 5055` serves S3 (create the bucket with
-- `curl -X PUT http://127.0.0.1:5055/lake`). S3 credentials: 's3.auth' = 'ambient' below
-- takes them from the worker's environment, which under `sluice serve` is the master's:
-- `export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test` before `sluice serve`, not
-- before `sluice job submit` (or set 's3.access-key-id' and 's3.secret-access-key'
-- instead of 's3.auth'). A master lets jobs use a custom endpoint, and lends them its
-- own credentials, only when started with the two flags above. Replace the two
-- addresses below with yours.
SET 'execution.checkpointing.interval' = '5s';

CREATE TABLE clicks (
  user_id BIGINT,
  url VARCHAR,
  ts TIMESTAMP(3),
  part INT METADATA FROM 'partition' VIRTUAL,
  off BIGINT METADATA FROM 'offset' VIRTUAL
) WITH (
  'connector' = 'kafka',
  'topic' = 'clicks',
  'format' = 'json',
  'format.on-error' = 'dead-letter',
  'dead-letter.path' = 'files/clicks-dead-letter',
  'properties.bootstrap.servers' = '127.0.0.1:9092',
  'scan.startup.mode' = 'earliest-offset'
);

CREATE TABLE lake (
  user_id BIGINT,
  url VARCHAR,
  ts TIMESTAMP(3),
  part INT,
  off BIGINT
) WITH (
  'connector' = 'filesystem',
  'path' = 's3://lake/clicks',
  'format' = 'parquet',
  'parquet.compression' = 'zstd',
  's3.endpoint' = 'http://127.0.0.1:5055',
  's3.region' = 'us-east-1',
  's3.allow-http' = 'true',
  's3.auth' = 'ambient'
);

INSERT INTO lake
SELECT user_id, url, ts, part, off
FROM clicks
WHERE url NOT LIKE '%/health%';
