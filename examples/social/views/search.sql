-- @view search
-- Full-text search over posts and comments (SQLite FTS5, bm25 ranking, snippets).
-- docs holds the text; docs_fts is an external-content FTS5 index over it kept in step by
-- triggers, so deleting a user's docs (AccountDeleted, forget) also removes them from the
-- index.

CREATE TABLE users (id TEXT PRIMARY KEY, username TEXT) WITHOUT ROWID;

CREATE TABLE docs (
	position INTEGER PRIMARY KEY, -- of the PostCreated / CommentAdded event
	kind TEXT NOT NULL,           -- 'post' or 'comment'
	doc_id TEXT NOT NULL,         -- post_id or comment_id
	post_id TEXT NOT NULL,        -- the post (itself, or the one commented on)
	author TEXT NOT NULL,
	body TEXT NOT NULL,
	at TEXT NOT NULL,
	UNIQUE (kind, doc_id)
);
CREATE INDEX docs_author ON docs (author);
CREATE INDEX docs_post ON docs (post_id, kind);

CREATE VIRTUAL TABLE docs_fts USING fts5(
	body, content = 'docs', content_rowid = 'position',
	tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TRIGGER docs_added AFTER INSERT ON docs BEGIN
	INSERT INTO docs_fts (rowid, body) VALUES (NEW.position, NEW.body);
END;
CREATE TRIGGER docs_removed AFTER DELETE ON docs BEGIN
	INSERT INTO docs_fts (docs_fts, rowid, body) VALUES ('delete', OLD.position, OLD.body);
END;

-- @on UserRegistered
INSERT INTO users (id, username)
SELECT u, :data->>'$.username'
  FROM (SELECT CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT) AS u) WHERE u IS NOT NULL
ON CONFLICT (id) DO UPDATE SET username = excluded.username;

-- @on PostCreated
INSERT INTO docs (position, kind, doc_id, post_id, author, body, at)
SELECT :position, 'post', pid, pid, a, coalesce(:data->>'$.body', ''), coalesce(:data->>'$.at', :time)
  FROM (SELECT CAST(:data->>'$.post_id' AS TEXT) AS pid,
	       CAST(coalesce(:data->>'$.author', :subject) AS TEXT) AS a)
 WHERE pid IS NOT NULL AND a IS NOT NULL
ON CONFLICT DO NOTHING;

-- @on CommentAdded
-- Only comments on an indexed post: a comment on the post of a forgotten user is not
-- searchable, whether the view saw the post before the forget or not (a rebuild).
INSERT INTO docs (position, kind, doc_id, post_id, author, body, at)
SELECT :position, 'comment', cid, pid, a, coalesce(:data->>'$.body', ''), :time
  FROM (SELECT CAST(:data->>'$.comment_id' AS TEXT) AS cid, CAST(:data->>'$.post_id' AS TEXT) AS pid,
	       CAST(coalesce(:data->>'$.author', :subject) AS TEXT) AS a)
 WHERE cid IS NOT NULL AND pid IS NOT NULL AND a IS NOT NULL
   AND EXISTS (SELECT 1 FROM docs WHERE kind = 'post' AND doc_id = pid)
ON CONFLICT DO NOTHING;

-- @on AccountDeleted
-- The user's posts (with every comment on them) and comments leave the index.
DELETE FROM docs WHERE kind = 'comment' AND post_id IN (SELECT doc_id FROM docs
	WHERE author = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT) AND kind = 'post');
DELETE FROM docs WHERE author = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);
DELETE FROM users WHERE id = CAST(coalesce(:data->>'$.user_id', :subject) AS TEXT);

-- @forget
DELETE FROM docs WHERE kind = 'comment' AND post_id IN (SELECT doc_id FROM docs
	WHERE author = :subject AND kind = 'post');
DELETE FROM docs WHERE author = :subject;
DELETE FROM users WHERE id = :subject;
-- An FTS5 delete only marks the rows' tokens deleted in the index; merging every segment
-- into one drops them, and secure_delete zeroes the pages they were on.
INSERT INTO docs_fts(docs_fts) VALUES ('optimize');

-- @export
SELECT 'user' AS kind, id, username FROM users WHERE id = :subject;
SELECT kind, doc_id, post_id, body, at, position FROM docs WHERE author = :subject ORDER BY position;

-- @query search(q, limit)
-- Every whitespace-separated word of q becomes a quoted FTS5 string ("" inside for a "),
-- and all must match: nothing a user types is FTS5 syntax (AND, OR, NOT, NEAR, *, ^, :,
-- parentheses are plain words or ignored punctuation), and an empty q matches nothing.
-- Best match first (bm25; lower is better), then newest; snippet marks hits with [ ].
SELECT d.kind, d.doc_id AS id, d.post_id, d.author, u.username, d.at,
       snippet(docs_fts, 0, '[', ']', '…', 12) AS snippet, bm25(docs_fts) AS score
  FROM docs_fts
  JOIN docs d ON d.position = docs_fts.rowid
  LEFT JOIN users u ON u.id = d.author
 WHERE docs_fts MATCH '"' || replace(replace(replace(replace(replace(
	coalesce(:q, ''), '"', '""'), char(9), ' '), char(10), ' '), char(13), ' '), ' ', '" "') || '"'
 ORDER BY docs_fts.rank, d.position DESC
 LIMIT max(min(:limit, 100), 0);
