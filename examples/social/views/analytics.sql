-- @view analytics
-- Sign-ups, posts, comments and likes per hour, and the top posts of the last 24 hours.
-- Every time here is an event's log time (:time, "YYYY-MM-DDTHH:MM:SS.mmmZ"), never the wall
-- clock: "the last 24 hours" ends at the newest event the view has applied (clock.newest),
-- so a rebuild from the log answers exactly as the live view did.

CREATE TABLE clock (id INTEGER PRIMARY KEY CHECK (id = 1), newest TEXT);
INSERT INTO clock VALUES (1, NULL);

-- hour: "YYYY-MM-DDTHH:00:00Z". Aggregates only: nothing here names a user.
CREATE TABLE hourly (
	hour TEXT PRIMARY KEY,
	signups INTEGER NOT NULL DEFAULT 0,
	posts INTEGER NOT NULL DEFAULT 0,
	comments INTEGER NOT NULL DEFAULT 0,
	likes INTEGER NOT NULL DEFAULT 0 -- new likes (a repeated like or an unlike does not count)
) WITHOUT ROWID;

CREATE TABLE signups (user_id TEXT PRIMARY KEY, at TEXT NOT NULL) WITHOUT ROWID;

-- Every post once (so a post counts once in hourly), and the ones of the last 24 hours with
-- their counts: a sliding window trimmed by every event as the clock advances, so that
-- top_posts reads the best 'limit' rows of an index instead of sorting a day of posts.
CREATE TABLE posts (
	post_id TEXT PRIMARY KEY,
	author TEXT NOT NULL,
	at TEXT NOT NULL -- event time
) WITHOUT ROWID;
CREATE INDEX posts_author ON posts (author);
CREATE TABLE recent (
	position INTEGER PRIMARY KEY,
	post_id TEXT NOT NULL UNIQUE,
	author TEXT NOT NULL,
	at TEXT NOT NULL,
	like_count INTEGER NOT NULL DEFAULT 0,
	comment_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX recent_at ON recent (at);
CREATE INDEX recent_author ON recent (author);
CREATE INDEX recent_top ON recent (like_count, comment_count, position);

CREATE TABLE likes (
	post_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	at TEXT NOT NULL,
	PRIMARY KEY (post_id, user_id)
) WITHOUT ROWID;
CREATE INDEX likes_user ON likes (user_id);

CREATE TABLE comments (
	comment_id TEXT PRIMARY KEY,
	post_id TEXT NOT NULL,
	author TEXT NOT NULL,
	at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX comments_post ON comments (post_id);
CREATE INDEX comments_author ON comments (author);

CREATE TRIGGER signups_added AFTER INSERT ON signups BEGIN
	INSERT INTO hourly (hour, signups) VALUES (substr(NEW.at, 1, 13) || ':00:00Z', 1)
	ON CONFLICT (hour) DO UPDATE SET signups = signups + 1;
END;
CREATE TRIGGER posts_removed AFTER DELETE ON posts BEGIN
	DELETE FROM recent WHERE post_id = OLD.post_id;
	DELETE FROM likes WHERE post_id = OLD.post_id;
	DELETE FROM comments WHERE post_id = OLD.post_id;
END;
CREATE TRIGGER likes_added AFTER INSERT ON likes BEGIN
	INSERT INTO hourly (hour, likes) VALUES (substr(NEW.at, 1, 13) || ':00:00Z', 1)
	ON CONFLICT (hour) DO UPDATE SET likes = likes + 1;
	UPDATE recent SET like_count = like_count + 1 WHERE post_id = NEW.post_id;
END;
CREATE TRIGGER likes_removed AFTER DELETE ON likes BEGIN
	UPDATE recent SET like_count = like_count - 1 WHERE post_id = OLD.post_id;
END;
CREATE TRIGGER comments_added AFTER INSERT ON comments BEGIN
	INSERT INTO hourly (hour, comments) VALUES (substr(NEW.at, 1, 13) || ':00:00Z', 1)
	ON CONFLICT (hour) DO UPDATE SET comments = comments + 1;
	UPDATE recent SET comment_count = comment_count + 1 WHERE post_id = NEW.post_id;
END;
CREATE TRIGGER comments_removed AFTER DELETE ON comments BEGIN
	UPDATE recent SET comment_count = comment_count - 1 WHERE post_id = OLD.post_id;
END;

-- @on *
-- The view's clock, and the end of the window: posts older than 24 hours before the newest
-- event leave 'recent' (an index range, usually empty).
UPDATE clock SET newest = max(coalesce(newest, :time), :time) WHERE id = 1;
DELETE FROM recent
 WHERE at < (SELECT strftime('%Y-%m-%dT%H:%M:%fZ', newest, '-1 day') FROM clock WHERE id = 1);

-- @on UserRegistered
INSERT INTO signups (user_id, at)
SELECT u, :time FROM (SELECT CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT) AS u)
 WHERE u IS NOT NULL
ON CONFLICT DO NOTHING;

-- @on PostCreated CommentAdded PostLiked
-- The event of a forgotten user (data NULL, :forgotten 1) still counts in its hour, as it
-- did when it was live: the hourly aggregates name nobody, and a rebuild after a forget
-- must count what the live view counted. (Repeated likes cannot be told apart then.)
INSERT INTO hourly (hour, posts, comments, likes)
SELECT substr(:time, 1, 13) || ':00:00Z', :type = 'PostCreated', :type = 'CommentAdded',
       :type = 'PostLiked'
 WHERE :forgotten
ON CONFLICT (hour) DO UPDATE SET posts = posts + excluded.posts,
	comments = comments + excluded.comments, likes = likes + excluded.likes;

-- @on PostCreated
-- A new post counts in its hour and enters the window (with any likes or comments that
-- came before it).
INSERT INTO hourly (hour, posts)
SELECT substr(:time, 1, 13) || ':00:00Z', 1
 WHERE NOT EXISTS (SELECT 1 FROM posts WHERE post_id = CAST(:data->>'$.post_id' AS TEXT))
   AND :data->>'$.post_id' IS NOT NULL AND coalesce(:data->>'$.author', :subject) IS NOT NULL
ON CONFLICT (hour) DO UPDATE SET posts = posts + 1;
INSERT INTO recent (position, post_id, author, at, like_count, comment_count)
SELECT :position, pid, a, :time,
       (SELECT count(*) FROM likes WHERE post_id = pid),
       (SELECT count(*) FROM comments WHERE post_id = pid)
  FROM (SELECT CAST(:data->>'$.post_id' AS TEXT) AS pid,
	       CAST(coalesce(:data->>'$.author', :subject) AS TEXT) AS a)
 WHERE pid IS NOT NULL AND a IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM posts WHERE post_id = pid)
ON CONFLICT DO NOTHING;
INSERT INTO posts (post_id, author, at)
SELECT pid, a, :time
  FROM (SELECT CAST(:data->>'$.post_id' AS TEXT) AS pid,
	       CAST(coalesce(:data->>'$.author', :subject) AS TEXT) AS a)
 WHERE pid IS NOT NULL AND a IS NOT NULL
ON CONFLICT DO NOTHING;

-- @on CommentAdded
INSERT INTO comments (comment_id, post_id, author, at)
SELECT cid, pid, a, :time
  FROM (SELECT CAST(:data->>'$.comment_id' AS TEXT) AS cid, CAST(:data->>'$.post_id' AS TEXT) AS pid,
	       CAST(coalesce(:data->>'$.author', :subject) AS TEXT) AS a)
 WHERE cid IS NOT NULL AND pid IS NOT NULL AND a IS NOT NULL
ON CONFLICT DO NOTHING;

-- @on PostLiked
INSERT INTO likes (post_id, user_id, at)
SELECT pid, u, :time
  FROM (SELECT CAST(:data->>'$.post_id' AS TEXT) AS pid,
	       CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT) AS u)
 WHERE pid IS NOT NULL AND u IS NOT NULL
ON CONFLICT DO NOTHING;

-- @on PostUnliked
DELETE FROM likes
 WHERE post_id = CAST(:data->>'$.post_id' AS TEXT)
   AND user_id = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);

-- @on AccountDeleted
-- The user's rows go (their posts leave top_posts, their likes and comments stop counting
-- there); the hourly aggregates, which name nobody, stay.
DELETE FROM likes WHERE user_id = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM comments WHERE author = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM posts WHERE author = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM signups WHERE user_id = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);

-- @forget
DELETE FROM likes WHERE user_id = :subject;
DELETE FROM comments WHERE author = :subject;
DELETE FROM posts WHERE author = :subject;
DELETE FROM signups WHERE user_id = :subject;

-- @export
SELECT 'signup' AS kind, user_id, at FROM signups WHERE user_id = :subject;
SELECT 'post' AS kind, post_id, at FROM posts WHERE author = :subject ORDER BY at, post_id;
SELECT 'like' AS kind, post_id, at FROM likes WHERE user_id = :subject ORDER BY at, post_id;
SELECT 'comment' AS kind, comment_id, post_id, at FROM comments WHERE author = :subject ORDER BY at, comment_id;

-- @query hourly(from, to)
-- Hours in [from, to), compared as text: from=2026-11-23T08 to=2026-11-24 works.
SELECT hour, signups, posts, comments, likes FROM hourly
 WHERE hour >= CAST(:from AS TEXT) AND hour < CAST(:to AS TEXT)
 ORDER BY hour;

-- @query top_posts(limit)
-- Posts created in the 24 hours up to the newest event, by likes, then comments, then newest:
-- the first 'limit' entries of the recent_top index, walked backwards.
SELECT p.post_id, p.author, p.at, p.like_count, p.comment_count
  FROM recent p
 WHERE p.at >= (SELECT strftime('%Y-%m-%dT%H:%M:%fZ', newest, '-1 day') FROM clock WHERE id = 1)
 ORDER BY p.like_count DESC, p.comment_count DESC, p.position DESC
 LIMIT max(min(:limit, 1000), 0);
