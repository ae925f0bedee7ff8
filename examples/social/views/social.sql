-- @view social
-- The social network's main read model: users with their counts, follows, posts, comments,
-- likes, and home timelines. See examples/social/README.md for the events and the design.
--
-- Home timelines are hybrid (fan-out on write for ordinary authors, merge on read for
-- celebrities), decided once per post, when the post is applied:
--   * an author with fewer followers than settings.celebrity_threshold is "ordinary": the
--     post is copied into the timeline of every current follower (posts.fanned_out = 1);
--   * otherwise the post is not copied anywhere (fanned_out = 0) and home_timeline merges it
--     in at read time, through merge_follows (who follows an author that has such posts).
-- A post is either in the fan-out table or found by the merge, never both, so an author who
-- crosses the threshold (up or down) cannot duplicate or lose an entry.
-- Invariant kept by the triggers: a timeline row (owner, author) exists only while owner
-- follows author (fan-out and backfill add rows for followers, unfollow deletes them).

-- One row of settings, changed only by SettingChanged events so that a rebuild from the
-- log decides every post exactly as the live view did.
CREATE TABLE settings (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	celebrity_threshold INTEGER NOT NULL, -- authors with >= this many followers are merged on read
	follow_backfill INTEGER NOT NULL      -- a new follow copies this many fanned-out posts of the followee
);
INSERT INTO settings VALUES (1, 1000, 100);

CREATE TABLE users (
	id TEXT PRIMARY KEY,
	username TEXT,
	name TEXT,
	bio TEXT,
	consent_marketing INTEGER NOT NULL DEFAULT 0,
	consent_analytics INTEGER NOT NULL DEFAULT 0,
	registered_at TEXT,           -- the UserRegistered event's time
	follower_count INTEGER NOT NULL DEFAULT 0,
	followee_count INTEGER NOT NULL DEFAULT 0,
	post_count INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX users_username ON users (lower(username));

CREATE TABLE follows (
	follower TEXT NOT NULL,
	followee TEXT NOT NULL,
	since INTEGER NOT NULL, -- position of the UserFollowed event
	PRIMARY KEY (follower, followee)
) WITHOUT ROWID;
CREATE INDEX follows_followee ON follows (followee, since);
CREATE INDEX follows_follower ON follows (follower, since);

CREATE TABLE posts (
	position INTEGER PRIMARY KEY, -- of the PostCreated event: timeline order and paging cursor
	post_id TEXT NOT NULL UNIQUE,
	author TEXT NOT NULL,
	body TEXT NOT NULL,
	at TEXT NOT NULL,             -- the client's "at" (the event time if absent)
	fanned_out INTEGER NOT NULL,  -- 1: copied into followers' timelines; 0: merged on read
	like_count INTEGER NOT NULL DEFAULT 0,
	comment_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX posts_author ON posts (author, position);
CREATE INDEX posts_unfanned ON posts (author, position) WHERE fanned_out = 0;

CREATE TABLE comments (
	position INTEGER PRIMARY KEY,
	comment_id TEXT NOT NULL UNIQUE,
	post_id TEXT NOT NULL,
	author TEXT NOT NULL,
	body TEXT NOT NULL,
	at TEXT NOT NULL              -- the CommentAdded event's time
);
CREATE INDEX comments_post ON comments (post_id, position);
CREATE INDEX comments_author ON comments (author);

CREATE TABLE likes (
	post_id TEXT NOT NULL,
	user_id TEXT NOT NULL,
	position INTEGER NOT NULL,
	PRIMARY KEY (post_id, user_id)
) WITHOUT ROWID;
CREATE INDEX likes_user ON likes (user_id);

-- Fan-out on write: the posts of ordinary authors, per follower.
CREATE TABLE timeline (
	owner TEXT NOT NULL,
	position INTEGER NOT NULL, -- posts.position
	author TEXT NOT NULL,
	PRIMARY KEY (owner, position)
) WITHOUT ROWID;
CREATE INDEX timeline_author ON timeline (owner, author);

-- Merge on read: authors with at least one post that was not fanned out, and which of them
-- each user follows (a user's few celebrities, without walking all of the user's follows).
CREATE TABLE merge_authors (
	author TEXT PRIMARY KEY,
	since INTEGER NOT NULL -- position of the author's first post that was not fanned out
) WITHOUT ROWID;
CREATE TABLE merge_follows (
	follower TEXT NOT NULL,
	author TEXT NOT NULL,
	PRIMARY KEY (follower, author)
) WITHOUT ROWID;
CREATE INDEX merge_follows_author ON merge_follows (author);

CREATE TRIGGER follows_added AFTER INSERT ON follows BEGIN
	UPDATE users SET follower_count = follower_count + 1 WHERE id = NEW.followee;
	UPDATE users SET followee_count = followee_count + 1 WHERE id = NEW.follower;
	INSERT OR IGNORE INTO merge_follows (follower, author)
		SELECT NEW.follower, NEW.followee
		WHERE EXISTS (SELECT 1 FROM merge_authors WHERE author = NEW.followee);
	-- Backfill: the followee's newest fanned-out posts (its other posts come by the merge).
	INSERT OR IGNORE INTO timeline (owner, position, author)
		SELECT NEW.follower, p.position, p.author FROM posts p
		WHERE p.author = NEW.followee AND p.fanned_out = 1
		ORDER BY p.position DESC
		LIMIT (SELECT follow_backfill FROM settings WHERE id = 1);
END;

CREATE TRIGGER follows_removed AFTER DELETE ON follows BEGIN
	UPDATE users SET follower_count = follower_count - 1 WHERE id = OLD.followee;
	UPDATE users SET followee_count = followee_count - 1 WHERE id = OLD.follower;
	DELETE FROM merge_follows WHERE follower = OLD.follower AND author = OLD.followee;
	DELETE FROM timeline WHERE owner = OLD.follower AND author = OLD.followee;
END;

CREATE TRIGGER posts_added AFTER INSERT ON posts BEGIN
	UPDATE users SET post_count = post_count + 1 WHERE id = NEW.author;
	-- an ordinary author: fan out to every current follower
	INSERT OR IGNORE INTO timeline (owner, position, author)
		SELECT follower, NEW.position, NEW.author FROM follows
		WHERE followee = NEW.author AND NEW.fanned_out = 1;
	-- a celebrity's first post that is not fanned out: its followers start merging it
	INSERT OR IGNORE INTO merge_follows (follower, author)
		SELECT follower, NEW.author FROM follows
		WHERE followee = NEW.author AND NEW.fanned_out = 0
		  AND NOT EXISTS (SELECT 1 FROM merge_authors WHERE author = NEW.author);
	INSERT OR IGNORE INTO merge_authors (author, since)
		SELECT NEW.author, NEW.position WHERE NEW.fanned_out = 0;
END;

CREATE TRIGGER posts_removed AFTER DELETE ON posts BEGIN
	UPDATE users SET post_count = post_count - 1 WHERE id = OLD.author;
	DELETE FROM timeline WHERE position = OLD.position
		AND owner IN (SELECT follower FROM follows WHERE followee = OLD.author);
	DELETE FROM comments WHERE post_id = OLD.post_id;
	DELETE FROM likes WHERE post_id = OLD.post_id;
END;

CREATE TRIGGER likes_added AFTER INSERT ON likes BEGIN
	UPDATE posts SET like_count = like_count + 1 WHERE post_id = NEW.post_id;
END;
CREATE TRIGGER likes_removed AFTER DELETE ON likes BEGIN
	UPDATE posts SET like_count = like_count - 1 WHERE post_id = OLD.post_id;
END;
CREATE TRIGGER comments_added AFTER INSERT ON comments BEGIN
	UPDATE posts SET comment_count = comment_count + 1 WHERE post_id = NEW.post_id;
END;
CREATE TRIGGER comments_removed AFTER DELETE ON comments BEGIN
	UPDATE posts SET comment_count = comment_count - 1 WHERE post_id = OLD.post_id;
END;

-- @on SettingChanged
UPDATE settings SET celebrity_threshold = CAST(:data->>'$.value' AS INTEGER)
 WHERE id = 1 AND :data->>'$.key' = 'social.celebrity_threshold'
   AND :data->>'$.value' = CAST(:data->>'$.value' AS INTEGER)
   AND CAST(:data->>'$.value' AS INTEGER) >= 1;
UPDATE settings SET follow_backfill = CAST(:data->>'$.value' AS INTEGER)
 WHERE id = 1 AND :data->>'$.key' = 'social.follow_backfill'
   AND :data->>'$.value' = CAST(:data->>'$.value' AS INTEGER)
   AND CAST(:data->>'$.value' AS INTEGER) >= 0;

-- @on UserRegistered
-- Counts start from what is already there, in case follows or posts came first.
INSERT INTO users (id, username, name, consent_marketing, consent_analytics, registered_at,
		   follower_count, followee_count, post_count)
SELECT u, :data->>'$.username', :data->>'$.name',
       coalesce(:data->>'$.consent.marketing', 0), coalesce(:data->>'$.consent.analytics', 0),
       :time,
       (SELECT count(*) FROM follows WHERE followee = u),
       (SELECT count(*) FROM follows WHERE follower = u),
       (SELECT count(*) FROM posts WHERE author = u)
  FROM (SELECT CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT) AS u)
 WHERE u IS NOT NULL
ON CONFLICT (id) DO UPDATE SET username = excluded.username, name = excluded.name,
	consent_marketing = excluded.consent_marketing,
	consent_analytics = excluded.consent_analytics;

-- @on ProfileUpdated
UPDATE users SET name = coalesce(:data->>'$.name', name), bio = coalesce(:data->>'$.bio', bio)
 WHERE id = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);

-- @on UserFollowed
-- Following twice is a no-op (the row exists: no trigger, no count); so is following oneself.
INSERT INTO follows (follower, followee, since)
SELECT f, e, :position
  FROM (SELECT CAST(:data->>'$.follower' AS TEXT) AS f, CAST(:data->>'$.followee' AS TEXT) AS e)
 WHERE f IS NOT NULL AND e IS NOT NULL AND f <> e
ON CONFLICT DO NOTHING;

-- @on UserUnfollowed
-- Unfollowing someone not followed deletes nothing: no trigger, no count.
DELETE FROM follows
 WHERE follower = CAST(:data->>'$.follower' AS TEXT) AND followee = CAST(:data->>'$.followee' AS TEXT);

-- @on PostCreated
-- The fan-out decision is made here, once, with the author's follower count and the
-- threshold as of this event; the posts_added trigger does the rest.
INSERT INTO posts (position, post_id, author, body, at, fanned_out, like_count, comment_count)
SELECT :position, pid, a, coalesce(:data->>'$.body', ''), coalesce(:data->>'$.at', :time),
       coalesce((SELECT follower_count FROM users WHERE id = a),
		(SELECT count(*) FROM follows WHERE followee = a))
	 < (SELECT celebrity_threshold FROM settings WHERE id = 1),
       (SELECT count(*) FROM likes WHERE post_id = pid),
       (SELECT count(*) FROM comments WHERE post_id = pid)
  FROM (SELECT CAST(:data->>'$.post_id' AS TEXT) AS pid,
	       CAST(coalesce(:data->>'$.author', :subject) AS TEXT) AS a)
 WHERE pid IS NOT NULL AND a IS NOT NULL
ON CONFLICT DO NOTHING;

-- @on CommentAdded
INSERT INTO comments (position, comment_id, post_id, author, body, at)
SELECT :position, cid, pid, a, coalesce(:data->>'$.body', ''), :time
  FROM (SELECT CAST(:data->>'$.comment_id' AS TEXT) AS cid, CAST(:data->>'$.post_id' AS TEXT) AS pid,
	       CAST(coalesce(:data->>'$.author', :subject) AS TEXT) AS a)
 WHERE cid IS NOT NULL AND pid IS NOT NULL AND a IS NOT NULL
ON CONFLICT DO NOTHING;

-- @on PostLiked
INSERT INTO likes (post_id, user_id, position)
SELECT pid, u, :position
  FROM (SELECT CAST(:data->>'$.post_id' AS TEXT) AS pid,
	       CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT) AS u)
 WHERE pid IS NOT NULL AND u IS NOT NULL
ON CONFLICT DO NOTHING;

-- @on PostUnliked
DELETE FROM likes
 WHERE post_id = CAST(:data->>'$.post_id' AS TEXT)
   AND user_id = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);

-- @on AccountDeleted
-- For now the same as @forget below: everything derived about the user goes, and the
-- triggers put the other users' counts and timelines right.
DELETE FROM likes WHERE user_id = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM comments WHERE author = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM follows WHERE follower = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM follows WHERE followee = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM posts WHERE author = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM timeline WHERE owner = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM merge_follows WHERE follower = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM merge_follows WHERE author = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM merge_authors WHERE author = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM users WHERE id = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);

-- @forget
DELETE FROM likes WHERE user_id = :subject;
DELETE FROM comments WHERE author = :subject;
DELETE FROM follows WHERE follower = :subject;
DELETE FROM follows WHERE followee = :subject;
DELETE FROM posts WHERE author = :subject;
DELETE FROM timeline WHERE owner = :subject;
DELETE FROM merge_follows WHERE follower = :subject;
DELETE FROM merge_follows WHERE author = :subject;
DELETE FROM merge_authors WHERE author = :subject;
DELETE FROM users WHERE id = :subject;

-- @export
SELECT 'user' AS kind, id, username, name, bio, consent_marketing, consent_analytics,
       registered_at, follower_count, followee_count, post_count
  FROM users WHERE id = :subject;
SELECT 'post' AS kind, post_id, body, at, position, like_count, comment_count
  FROM posts WHERE author = :subject ORDER BY position;
SELECT 'comment' AS kind, comment_id, post_id, body, at, position
  FROM comments WHERE author = :subject ORDER BY position;
SELECT 'like' AS kind, post_id, position FROM likes WHERE user_id = :subject ORDER BY position;
SELECT 'follows' AS kind, followee, since FROM follows WHERE follower = :subject ORDER BY since;
SELECT 'followed_by' AS kind, follower, since FROM follows WHERE followee = :subject ORDER BY since;

-- @query home_timeline(user, limit, before?)
-- Newest first, by log position. before: a position (the last row's, for the next page), or
-- empty for the newest. Three sources, disjoint by construction: the fan-out table, the
-- user's own posts, and the posts of followed celebrities that were not fanned out (at most
-- 'limit' of each celebrity, walked backwards on the posts_unfanned index).
WITH a(lim, bef) AS (
	SELECT max(min(:limit, 1000), 0), coalesce(nullif(:before, ''), 9223372036854775807)
), ids(position) AS (
	SELECT * FROM (SELECT t.position FROM timeline t
		WHERE t.owner = :user AND t.position < (SELECT bef FROM a)
		ORDER BY t.position DESC LIMIT (SELECT lim FROM a))
	UNION ALL
	SELECT * FROM (SELECT o.position FROM posts o
		WHERE o.author = :user AND o.position < (SELECT bef FROM a)
		ORDER BY o.position DESC LIMIT (SELECT lim FROM a))
	UNION ALL
	SELECT c.position FROM merge_follows m
	  JOIN posts c ON c.author = m.author AND c.fanned_out = 0
	 WHERE m.follower = :user AND c.position < (SELECT bef FROM a)
	   AND c.position >= coalesce((SELECT k.position FROM posts k
		WHERE k.author = m.author AND k.fanned_out = 0 AND k.position < (SELECT bef FROM a)
		ORDER BY k.position DESC LIMIT 1 OFFSET (SELECT lim FROM a) - 1), -1)
)
SELECT p.post_id, p.author, u.username, p.body, p.at, p.position, p.like_count, p.comment_count
  FROM (SELECT position FROM ids ORDER BY position DESC LIMIT (SELECT lim FROM a)) i
  JOIN posts p ON p.position = i.position
  LEFT JOIN users u ON u.id = p.author
 ORDER BY p.position DESC;

-- @query user_posts(user, limit, before?)
SELECT p.post_id, p.author, u.username, p.body, p.at, p.position, p.like_count, p.comment_count
  FROM posts p LEFT JOIN users u ON u.id = p.author
 WHERE p.author = :user AND p.position < coalesce(nullif(:before, ''), 9223372036854775807)
 ORDER BY p.position DESC LIMIT max(min(:limit, 1000), 0);

-- @query post_with_comments(post_id)
-- One row per comment, oldest first, each with the post's columns; one row with null comment
-- columns for a post without comments; none for an unknown post.
SELECT p.post_id, p.author, u.username, p.body, p.at, p.position, p.like_count, p.comment_count,
       c.comment_id, c.author AS comment_author, cu.username AS comment_username,
       c.body AS comment_body, c.at AS comment_at
  FROM posts p
  LEFT JOIN users u ON u.id = p.author
  LEFT JOIN comments c ON c.post_id = p.post_id
  LEFT JOIN users cu ON cu.id = c.author
 WHERE p.post_id = :post_id
 ORDER BY c.position;

-- @query followers(user, limit)
-- Newest follower first.
SELECT f.follower AS user_id, u.username, u.name, f.since
  FROM follows f LEFT JOIN users u ON u.id = f.follower
 WHERE f.followee = :user
 ORDER BY f.since DESC LIMIT max(min(:limit, 1000), 0);

-- @query following(user, limit)
SELECT f.followee AS user_id, u.username, u.name, f.since
  FROM follows f LEFT JOIN users u ON u.id = f.followee
 WHERE f.follower = :user
 ORDER BY f.since DESC LIMIT max(min(:limit, 1000), 0);

-- @query who_to_follow(user, limit)
-- Friends of friends: users followed by the people 'user' follows (the 200 most recent of
-- them, to bound the work), not 'user' and not already followed, by how many of the
-- people 'user' follows follow them, then by their follower count.
WITH mine AS (
	SELECT followee FROM follows WHERE follower = :user ORDER BY since DESC LIMIT 200
), cand AS (
	SELECT f.followee AS id, count(*) AS mutuals
	  FROM mine JOIN follows f ON f.follower = mine.followee
	 WHERE f.followee <> CAST(:user AS TEXT)
	   AND NOT EXISTS (SELECT 1 FROM follows x WHERE x.follower = :user AND x.followee = f.followee)
	 GROUP BY f.followee
)
SELECT c.id AS user_id, u.username, u.name, c.mutuals, coalesce(u.follower_count, 0) AS follower_count
  FROM cand c LEFT JOIN users u ON u.id = c.id
 ORDER BY c.mutuals DESC, follower_count DESC, c.id
 LIMIT max(min(:limit, 1000), 0);

-- @query user(user)
SELECT id AS user_id, username, name, bio, registered_at, follower_count, followee_count, post_count
  FROM users WHERE id = :user;

-- @query user_by_username(username)
SELECT id AS user_id, username, name, bio, registered_at, follower_count, followee_count, post_count
  FROM users WHERE lower(username) = lower(:username);

-- @query settings()
SELECT celebrity_threshold, follow_backfill FROM settings WHERE id = 1;
