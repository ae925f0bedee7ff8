-- @view counts
-- bench/http's view for named point queries: one row per stream with its event count and
-- the sum of the events' data.n.
CREATE TABLE counts (stream TEXT PRIMARY KEY, n INTEGER NOT NULL, total INTEGER NOT NULL);
-- @on Tick
INSERT INTO counts VALUES (:stream, 1, :data->>'$.n')
  ON CONFLICT(stream) DO UPDATE SET n = n + 1, total = total + excluded.total;
-- @query by_stream(stream)
SELECT stream, n, total FROM counts WHERE stream = :stream;
