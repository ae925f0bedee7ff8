-- @view counts
-- A first view: how many events each stream has, and the sum of their "n".
CREATE TABLE counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL, total INTEGER NOT NULL);

-- @on *
INSERT INTO counts VALUES (:stream, 1, coalesce(:data->>'$.n', 0))
  ON CONFLICT(stream) DO UPDATE SET n = n + 1, total = total + excluded.total;

-- @query by_stream(stream)
SELECT stream, n, total FROM counts WHERE stream = :stream;

-- @query top(limit)
SELECT stream, n, total FROM counts ORDER BY n DESC, stream LIMIT :limit;
