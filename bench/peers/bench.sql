-- @view bench
-- bench/peers' view for point reads: every event's data by its log position.
CREATE TABLE ev (id INTEGER PRIMARY KEY, data TEXT NOT NULL);
-- @on Bench
INSERT INTO ev VALUES (:position, :data);
-- @query get(id)
SELECT data FROM ev WHERE id = :id;
