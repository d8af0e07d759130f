-- expect: 3:14 | 3:16
-- A qualified column that its table does not have.
SELECT e.id, d.nothing FROM events e JOIN dims d ON e.k = d.k;
