-- @view audit
-- Logins and sensitive actions per user, and the users that look suspicious now: seen from
-- more than 5 distinct IP addresses in the last 24 hours, or having done a sensitive action
-- without two-factor authentication in the last 24 hours. "Now" is the newest event the
-- view has applied (clock.newest), never the wall clock, so a rebuild answers the same.

CREATE TABLE clock (id INTEGER PRIMARY KEY CHECK (id = 1), newest TEXT);
INSERT INTO clock VALUES (1, NULL);

CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT) WITHOUT ROWID;

CREATE TABLE logins (
	position INTEGER PRIMARY KEY,
	user_id TEXT NOT NULL,
	at TEXT NOT NULL, -- event time
	ip TEXT,
	user_agent TEXT,
	two_factor INTEGER NOT NULL
);
CREATE INDEX logins_user ON logins (user_id, position);

-- One row per (user, address): when it was first and last seen, and how many logins.
CREATE TABLE user_ips (
	user_id TEXT NOT NULL,
	ip TEXT NOT NULL,
	first_seen TEXT NOT NULL,
	last_seen TEXT NOT NULL,
	logins INTEGER NOT NULL,
	PRIMARY KEY (user_id, ip)
) WITHOUT ROWID;
CREATE INDEX user_ips_last_seen ON user_ips (last_seen);

CREATE TABLE sensitive_actions (
	position INTEGER PRIMARY KEY,
	user_id TEXT NOT NULL,
	at TEXT NOT NULL, -- event time
	action TEXT,
	two_factor INTEGER NOT NULL
);
CREATE INDEX sensitive_user ON sensitive_actions (user_id, position);
CREATE INDEX sensitive_without_2fa ON sensitive_actions (at) WHERE two_factor = 0;

-- @on *
UPDATE clock SET newest = max(coalesce(newest, :time), :time) WHERE id = 1;

-- @on UserRegistered
INSERT INTO users (id, username)
SELECT u, :data->>'$.username'
  FROM (SELECT CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT) AS u) WHERE u IS NOT NULL
ON CONFLICT (id) DO UPDATE SET username = excluded.username;

-- @on LoggedIn
-- A missing two_factor counts as without.
INSERT INTO logins (position, user_id, at, ip, user_agent, two_factor)
SELECT :position, u, :time, :data->>'$.ip', :data->>'$.user_agent',
       coalesce(:data->>'$.two_factor', 0) <> 0
  FROM (SELECT CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT) AS u) WHERE u IS NOT NULL
ON CONFLICT DO NOTHING;
INSERT INTO user_ips (user_id, ip, first_seen, last_seen, logins)
SELECT u, ip, :time, :time, 1
  FROM (SELECT CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT) AS u,
	       CAST(:data->>'$.ip' AS TEXT) AS ip)
 WHERE u IS NOT NULL AND ip IS NOT NULL
ON CONFLICT (user_id, ip) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen),
	logins = logins + 1;

-- @on SensitiveAction
INSERT INTO sensitive_actions (position, user_id, at, action, two_factor)
SELECT :position, u, :time, :data->>'$.action', coalesce(:data->>'$.two_factor', 0) <> 0
  FROM (SELECT CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT) AS u) WHERE u IS NOT NULL
ON CONFLICT DO NOTHING;

-- @on AccountDeleted
DELETE FROM logins WHERE user_id = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM user_ips WHERE user_id = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM sensitive_actions WHERE user_id = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM users WHERE id = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);

-- @forget
DELETE FROM logins WHERE user_id = :subject;
DELETE FROM user_ips WHERE user_id = :subject;
DELETE FROM sensitive_actions WHERE user_id = :subject;
DELETE FROM users WHERE id = :subject;

-- @export
SELECT 'user' AS kind, id, username FROM users WHERE id = :subject;
SELECT 'login' AS kind, position, at, ip, user_agent, two_factor
  FROM logins WHERE user_id = :subject ORDER BY position;
SELECT 'sensitive_action' AS kind, position, at, action, two_factor
  FROM sensitive_actions WHERE user_id = :subject ORDER BY position;

-- @query suspicious()
-- One row per flagged user; reasons: 'many_ips' (> 5 distinct addresses in the 24 hours up
-- to the newest event), 'sensitive_without_2fa' (such an action in those 24 hours).
WITH ips AS (
	SELECT user_id, count(*) AS n, max(last_seen) AS last
	  FROM user_ips INDEXED BY user_ips_last_seen
	 WHERE last_seen >= (SELECT strftime('%Y-%m-%dT%H:%M:%fZ', newest, '-1 day') FROM clock WHERE id = 1)
	 GROUP BY user_id
), sens AS (
	SELECT user_id, count(*) AS n, max(at) AS last
	  FROM sensitive_actions INDEXED BY sensitive_without_2fa
	 WHERE two_factor = 0
	   AND at >= (SELECT strftime('%Y-%m-%dT%H:%M:%fZ', newest, '-1 day') FROM clock WHERE id = 1)
	 GROUP BY user_id
), flagged(user_id) AS (
	SELECT user_id FROM ips WHERE n > 5 UNION SELECT user_id FROM sens
)
SELECT f.user_id, u.username,
       coalesce(i.n, 0) AS distinct_ips,
       coalesce(s.n, 0) AS sensitive_without_2fa,
       CASE WHEN coalesce(i.n, 0) > 5 AND s.n > 0 THEN 'many_ips,sensitive_without_2fa'
	    WHEN coalesce(i.n, 0) > 5 THEN 'many_ips'
	    ELSE 'sensitive_without_2fa' END AS reasons,
       max(coalesce(i.last, ''), coalesce(s.last, '')) AS last_seen
  FROM flagged f
  LEFT JOIN ips i ON i.user_id = f.user_id
  LEFT JOIN sens s ON s.user_id = f.user_id
  LEFT JOIN users u ON u.id = f.user_id
 ORDER BY f.user_id;

-- @query user_logins(user, limit)
SELECT position, at, ip, user_agent, two_factor FROM logins
 WHERE user_id = :user ORDER BY position DESC LIMIT max(min(:limit, 1000), 0);

-- @query user_sensitive_actions(user, limit)
SELECT position, at, action, two_factor FROM sensitive_actions
 WHERE user_id = :user ORDER BY position DESC LIMIT max(min(:limit, 1000), 0);
