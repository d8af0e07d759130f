-- expect: 3:30
-- RANK() is not supported (only ROW_NUMBER()).
SELECT * FROM (SELECT k, id, RANK() OVER (PARTITION BY k ORDER BY id) AS r FROM events) WHERE r <= 3;
