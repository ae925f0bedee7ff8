/*
 * test_views.c -- SQL views through the public API only (kappa.h): definition files loaded
 * from views_dir, handlers applied to the log with their named parameters, named queries
 * with read-your-writes (min_position), parse errors naming file and line, a failing
 * handler stopping only its view, rebuilds (explicit, on a changed definition, on a deleted
 * view database) answering the same as the live view, restarts from the checkpoint, ad-hoc
 * read-only SQL with its refusals, time limit and row limit, and the SQLite-to-JSON mapping.
 *
 * Each test has its own directory: TMP/views holds the definitions, TMP/db the database
 * (whose view databases live in TMP/db/views/NAME.db).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kappa.h"
#include "testlib.h"

/* One time limit for the whole suite (see test_store.c for why not per test). */
TestSuite(views, .timeout = 120);

#define WAIT_MS 30000 /* how long a test waits for a view to catch up or change state */

/* ---- small helpers ---------------------------------------------------------------------- */

/* The ISO-8601 UTC text a handler's :time holds for 'ms' since the epoch. */
static void
iso_time(int64_t ms, char *out, size_t n)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* ---- a test's directories and database ---------------------------------------------------- */

typedef struct {
	char *tmp;
	char views[4200]; /* the definition files */
	char data[4200];  /* the database directory */
	kappa_options o;
	kappa_db *db;
} env;

static void
env_init(env *e, const char *tag)
{
	memset(e, 0, sizeof(*e));
	e->tmp = kt_tmpdir(tag);
	snprintf(e->views, sizeof(e->views), "%s/views", e->tmp);
	snprintf(e->data, sizeof(e->data), "%s/db", e->tmp);
	cr_assert_eq(mkdir(e->views, 0755), 0, "mkdir %s", e->views);
	kappa_options_init(&e->o);
	e->o.views_dir = e->views;
}

static void
env_open(env *e)
{
	e->db = kt_open_ok(e->data, &e->o);
}

static void
env_close(env *e)
{
	kappa_close(e->db);
	e->db = NULL;
}

static void
env_done(env *e)
{
	env_close(e);
	kt_rmdir(e->tmp);
	e->tmp = NULL;
}

/* Write a definition file: written beside the views directory, then renamed into it. */
static void
write_view(const env *e, const char *file, const char *text)
{
	char tmp[4400], path[4400];
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", e->tmp, file);
	snprintf(path, sizeof(path), "%s/%s", e->views, file);
	FILE *f = fopen(tmp, "w");
	cr_assert_not_null(f, "cannot create %s", tmp);
	cr_assert(fputs(text, f) >= 0);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(rename(tmp, path), 0, "rename %s -> %s", tmp, path);
}

static void
remove_view(const env *e, const char *file)
{
	char path[4400];
	snprintf(path, sizeof(path), "%s/%s", e->views, file);
	cr_assert_eq(unlink(path), 0, "unlink %s", path);
}

/* DATA/views/NAME.db and its WAL companions. */
static void
view_db_path(const env *e, const char *view, const char *suffix, char *out, size_t n)
{
	snprintf(out, n, "%s/views/%s.db%s", e->data, view, suffix);
}

static void
reload_ok(kappa_db *db)
{
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_views_reload(db, &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_views_reload: %s: %s", kappa_strerror(rc), err.msg);
}

/* ---- appending -------------------------------------------------------------------------- */

static kappa_event_in
evx(const char *type, const char *data, const char *subject, const char *metadata)
{
	kappa_event_in e;
	memset(&e, 0, sizeof(e));
	e.type = type;
	e.data = data;
	e.subject = subject;
	e.metadata = metadata;
	return e;
}

static kappa_append_result
append_ok(kappa_db *db, const char *stream, const kappa_event_in *ev, size_t n)
{
	kappa_append_result r;
	kappa_err err;
	memset(&r, 0, sizeof(r));
	memset(&err, 0, sizeof(err));
	int rc = kappa_append(db, stream, KAPPA_ANY, NULL, ev, n, NULL, 0, &r, &err);
	cr_assert_eq(rc, KAPPA_OK, "append to %s: %s: %s", stream, kappa_strerror(rc), err.msg);
	return r;
}

/* One event of 'type' with data {"n":amount}. */
static kappa_append_result
append_n(kappa_db *db, const char *stream, const char *type, int64_t amount)
{
	char data[64];
	snprintf(data, sizeof(data), "{\"n\":%" PRId64 "}", amount);
	kappa_event_in e = evx(type, data, NULL, NULL);
	return append_ok(db, stream, &e, 1);
}

/* ---- results ------------------------------------------------------------------------------ */

/* Parse a result and check its shape: {"rows":[{...}, ...], "position": P|null} (and
 * "truncated": bool for kappa_sql). */
static json_t *
parse_result(const char *text, int is_sql)
{
	cr_assert_not_null(text, "a successful call returned no result");
	json_error_t je;
	json_t *j = json_loads(text, 0, &je);
	cr_assert_not_null(j, "the result is not JSON (%s at %d): %.400s", je.text, je.position,
			   text);
	cr_assert(json_is_object(j), "the result is not an object: %.400s", text);
	json_t *rows = json_object_get(j, "rows");
	cr_assert(json_is_array(rows), "the result has no \"rows\" array: %.400s", text);
	for (size_t i = 0; i < json_array_size(rows); i++)
		cr_assert(json_is_object(json_array_get(rows, i)),
			  "row %zu is not an object: %.400s", i, text);
	json_t *pos = json_object_get(j, "position");
	cr_assert(json_is_null(pos) || (json_is_integer(pos) && json_integer_value(pos) >= 0),
		  "\"position\" is neither null nor a position: %.400s", text);
	if (is_sql)
		cr_assert(json_is_boolean(json_object_get(j, "truncated")),
			  "kappa_sql's result has no \"truncated\" boolean: %.400s", text);
	return j;
}

static json_t *
rows_of(json_t *j)
{
	return json_object_get(j, "rows");
}

/* The position a result reflects; -1 for null. */
static int64_t
pos_of(json_t *j)
{
	json_t *p = json_object_get(j, "position");
	return json_is_integer(p) ? (int64_t)json_integer_value(p) : -1;
}

static json_t *
col(json_t *row, const char *name)
{
	json_t *v = json_object_get(row, name);
	cr_assert_not_null(v, "a row has no column \"%s\"", name);
	return v;
}

static int64_t
col_int(json_t *row, const char *name)
{
	json_t *v = col(row, name);
	cr_assert(json_is_integer(v), "column \"%s\" is not a JSON integer", name);
	return (int64_t)json_integer_value(v);
}

static const char *
col_str(json_t *row, const char *name)
{
	json_t *v = col(row, name);
	cr_assert(json_is_string(v), "column \"%s\" is not a JSON string", name);
	return json_string_value(v);
}

/* NULL for a JSON null. */
static const char *
col_str_or_null(json_t *row, const char *name)
{
	json_t *v = col(row, name);
	if (json_is_null(v))
		return NULL;
	cr_assert(json_is_string(v), "column \"%s\" is neither a string nor null", name);
	return json_string_value(v);
}

static char *
dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	cr_assert_not_null(s);
	return s;
}

static void
assert_json_eq(json_t *a, json_t *b, const char *what)
{
	if (json_equal(a, b))
		return;
	char *x = dump(a), *y = dump(b);
	cr_assert_fail("%s differ:\n  %.700s\nvs\n  %.700s", what, x, y);
}

/* Run 'query' of 'view', waiting for min_pos; assert it succeeds with a well-formed result
 * reflecting at least min_pos. The caller json_decref()s the answer. */
static json_t *
query_ok(kappa_db *db, const char *view, const char *query, const char *params, uint64_t min_pos)
{
	char *out = NULL;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_query(db, view, query, params, min_pos, WAIT_MS, &out, &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_query(%s, %s, %s, min_position %" PRId64 "): %s: %s",
		     view, query, params ? params : "NULL",
		     min_pos == KAPPA_NO_POSITION ? (int64_t)-1 : (int64_t)min_pos,
		     kappa_strerror(rc), err.msg);
	json_t *j = parse_result(out, 0);
	kappa_free(out);
	if (min_pos != KAPPA_NO_POSITION)
		cr_assert(pos_of(j) >= (int64_t)min_pos,
			  "%s.%s waited for position %" PRIu64 " and answered as of %" PRId64, view,
			  query, min_pos, pos_of(j));
	cr_assert(pos_of(j) < (int64_t)kappa_head(db),
		  "%s.%s answered as of %" PRId64 ", past the head %" PRIu64, view, query,
		  pos_of(j), kappa_head(db));
	return j;
}

/* A call expected to fail: returns its code after checking err and that no result came. */
static int
query_rc(kappa_db *db, const char *view, const char *query, const char *params, uint64_t min_pos,
	 int64_t timeout_ms, kappa_err *err)
{
	char *out = NULL;
	memset(err, 0, sizeof(*err));
	int rc = kappa_query(db, view, query, params, min_pos, timeout_ms, &out, err);
	if (rc != KAPPA_OK) {
		cr_assert_null(out, "kappa_query(%s, %s) failed (%s) but returned a result", view,
			       query, kappa_strerror(rc));
		cr_assert_eq(err->code, rc, "err.code %d, returned %d", err->code, rc);
		cr_assert_neq(err->msg[0], '\0', "kappa_query(%s, %s): %s with no message", view,
			      query, kappa_strerror(rc));
	} else {
		json_decref(parse_result(out, 0));
	}
	kappa_free(out);
	return rc;
}

static json_t *
sql_ok(kappa_db *db, const char *view, const char *sql, const char *params, uint64_t max_rows)
{
	char *out = NULL;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_sql(db, view, sql, params, max_rows, 5000, &out, &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_sql(%s, \"%s\"): %s: %s", view, sql, kappa_strerror(rc),
		     err.msg);
	json_t *j = parse_result(out, 1);
	kappa_free(out);
	return j;
}

static int
sql_rc(kappa_db *db, const char *view, const char *sql, const char *params, uint64_t max_rows,
       int64_t timeout_ms, kappa_err *err)
{
	char *out = NULL;
	memset(err, 0, sizeof(*err));
	int rc = kappa_sql(db, view, sql, params, max_rows, timeout_ms, &out, err);
	if (rc != KAPPA_OK) {
		cr_assert_null(out, "kappa_sql(\"%s\") failed (%s) but returned a result", sql,
			       kappa_strerror(rc));
		cr_assert_eq(err->code, rc, "err.code %d, returned %d", err->code, rc);
		cr_assert_neq(err->msg[0], '\0', "kappa_sql(\"%s\"): %s with no message", sql,
			      kappa_strerror(rc));
	} else {
		json_decref(parse_result(out, 1));
	}
	kappa_free(out);
	return rc;
}

/* ---- view status ---------------------------------------------------------------------------- */

static kappa_view_status
status_of(kappa_db *db, const char *view)
{
	kappa_view_status st;
	kappa_err err;
	memset(&st, 0, sizeof(st));
	memset(&err, 0, sizeof(err));
	int rc = kappa_view_status_get(db, view, &st, &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_view_status_get(%s): %s: %s", view, kappa_strerror(rc),
		     err.msg);
	cr_assert_str_eq(st.name, view);
	return st;
}

static const char *
state_name(kappa_view_state s)
{
	return kappa_view_state_name(s);
}

/* Poll until 'view' is live and has applied the whole log. */
static kappa_view_status
wait_live(kappa_db *db, const char *view)
{
	int64_t t0 = kt_mono_ms();
	for (;;) {
		kappa_view_status st = status_of(db, view);
		uint64_t head = kappa_head(db);
		if (st.state == KAPPA_VIEW_LIVE && st.position >= head) {
			cr_assert_eq(st.position, head,
				     "%s applied up to %" PRIu64 ", past the head %" PRIu64, view,
				     st.position, head);
			return st;
		}
		cr_assert_neq(st.state, KAPPA_VIEW_FAILED, "%s failed at %" PRIu64 " (%s): %s",
			      view, st.error_position, st.error_type, st.error);
		cr_assert(kt_mono_ms() - t0 < WAIT_MS,
			  "%s is still %s at %" PRIu64 " of %" PRIu64
			  " after %d ms (rebuild at %" PRIu64 ", load_error \"%s\")",
			  view, state_name(st.state), st.position, head, WAIT_MS,
			  st.rebuild_position, st.load_error);
		kt_sleep_ms(2);
	}
}

static kappa_view_status
wait_state(kappa_db *db, const char *view, kappa_view_state want)
{
	int64_t t0 = kt_mono_ms();
	for (;;) {
		kappa_view_status st = status_of(db, view);
		if (st.state == want)
			return st;
		cr_assert(kt_mono_ms() - t0 < WAIT_MS, "%s is %s after %d ms, expected %s", view,
			  state_name(st.state), WAIT_MS, state_name(want));
		kt_sleep_ms(2);
	}
}

typedef struct {
	kappa_view_status v[16];
	size_t n;
} status_list;

static void
collect_status(void *ctx, const kappa_view_status *st)
{
	status_list *l = ctx;
	if (l->n < 16)
		l->v[l->n] = *st;
	l->n++;
}

static status_list
list_views(kappa_db *db)
{
	status_list l;
	kappa_err err;
	memset(&l, 0, sizeof(l));
	memset(&err, 0, sizeof(err));
	int rc = kappa_views_list(db, collect_status, &l, &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_views_list: %s: %s", kappa_strerror(rc), err.msg);
	return l;
}

/* ---- a per-stream tally, as the counting view keeps it --------------------------------- */

typedef struct {
	char stream[32];
	int64_t n, total;
} tally;

typedef struct {
	tally v[64];
	size_t n;
} tallies;

/* Count an event of 'stream' adding 'amount', keeping the streams sorted. */
static void
tally_add(tallies *t, const char *stream, int64_t amount)
{
	size_t i = 0;
	while (i < t->n && strcmp(t->v[i].stream, stream) < 0)
		i++;
	if (i == t->n || strcmp(t->v[i].stream, stream) != 0) {
		cr_assert_lt(t->n, 64);
		memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof(t->v[0]));
		memset(&t->v[i], 0, sizeof(t->v[0]));
		snprintf(t->v[i].stream, sizeof(t->v[i].stream), "%s", stream);
		t->n++;
	}
	t->v[i].n++;
	t->v[i].total += amount;
}

/* The counting view: per stream, how many Deposited and Withdrawn events and the sum of their
 * n (negative for Withdrawn); three statements per handler; 'seen' lists what it applied. */
static const char COUNTS_SQL[] =
	"-- @view counts\n"
	"CREATE TABLE counts (stream TEXT PRIMARY KEY, n_events INTEGER NOT NULL,\n"
	"                     total INTEGER NOT NULL);\n"
	"CREATE TABLE seen (position INTEGER PRIMARY KEY, type TEXT NOT NULL);\n"
	"\n"
	"-- @on Deposited Withdrawn\n"
	"INSERT INTO counts (stream, n_events, total) VALUES (:stream, 0, 0)\n"
	"  ON CONFLICT(stream) DO NOTHING;\n"
	"UPDATE counts SET n_events = n_events + 1,\n"
	"  total = total + CASE :type WHEN 'Withdrawn' THEN -(:data->>'$.n') ELSE :data->>'$.n' "
	"END\n"
	"  WHERE stream = :stream;\n"
	"INSERT INTO seen (position, type) VALUES (:position, :type);\n"
	"\n"
	"-- @query by_stream(stream)\n"
	"SELECT stream, n_events, total FROM counts WHERE stream = :stream;\n"
	"\n"
	"-- @query totals()\n"
	"SELECT stream, n_events, total FROM counts ORDER BY stream;\n"
	"\n"
	"-- @query seen()\n"
	"SELECT position, type FROM seen ORDER BY position;\n"
	"\n"
	"-- @query seen_since(after?, type?)\n"
	"SELECT position, type FROM seen WHERE position > coalesce(:after, -1)\n"
	"  AND (:type IS NULL OR type = :type) ORDER BY position;\n";

/* Assert the counting view 'view' answers totals() as 't' once it reflects min_pos. */
static void
assert_totals(kappa_db *db, const char *view, const tallies *t, uint64_t min_pos)
{
	json_t *j = query_ok(db, view, "totals", NULL, min_pos);
	json_t *rows = rows_of(j);
	cr_assert_eq(json_array_size(rows), t->n, "%s.totals has %zu streams, expected %zu", view,
		     json_array_size(rows), t->n);
	for (size_t i = 0; i < t->n; i++) {
		json_t *r = json_array_get(rows, i);
		cr_assert_str_eq(col_str(r, "stream"), t->v[i].stream, "%s.totals row %zu", view,
				 i);
		cr_assert_eq(col_int(r, "n_events"), t->v[i].n,
			     "%s: %s counted %" PRId64 " events, expected %" PRId64, view,
			     t->v[i].stream, col_int(r, "n_events"), t->v[i].n);
		cr_assert_eq(col_int(r, "total"), t->v[i].total,
			     "%s: %s sums to %" PRId64 ", expected %" PRId64, view, t->v[i].stream,
			     col_int(r, "total"), t->v[i].total);
	}
	json_decref(j);
}

/* ==== 1. load, apply, query ================================================================== */

/* Every event, with every parameter a handler gets. */
static const char ALLEV_SQL[] =
	"-- @view allev\n"
	"CREATE TABLE ev (position INTEGER PRIMARY KEY, stream TEXT NOT NULL,\n"
	"  version INTEGER NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, time TEXT NOT NULL,\n"
	"  subject TEXT, metadata TEXT, meta_by TEXT, n INTEGER,\n"
	"  t_position TEXT, t_version TEXT, t_time TEXT);\n"
	"-- @on *\n"
	"INSERT INTO ev VALUES (:position, :stream, :version, :type, :data, :time, :subject,\n"
	"  :metadata, :metadata->>'$.by', :data->>'$.n', typeof(:position), typeof(:version),\n"
	"  typeof(:time));\n"
	"-- @query all()\n"
	"SELECT * FROM ev ORDER BY position;\n";

/* An FTS5 table, a plain comment inside a handler, ';' and '--' inside a string literal. */
static const char NOTES_SQL[] =
	"-- @view notes\n"
	"CREATE VIRTUAL TABLE docs USING fts5(body);\n"
	"CREATE TABLE marks (position INTEGER PRIMARY KEY, note TEXT NOT NULL);\n"
	"-- @on Noted\n"
	"-- a plain comment, not a directive\n"
	"INSERT INTO docs (rowid, body) VALUES (:position, :data->>'$.text');\n"
	"INSERT INTO marks (position, note) VALUES (:position, 'semi;colon -- not a comment');\n"
	"-- @query search(q)\n"
	"SELECT rowid AS position, body FROM docs WHERE docs MATCH :q ORDER BY rowid;\n"
	"-- @query marks()\n"
	"SELECT position, note FROM marks ORDER BY position;\n";

static void
assert_positions(json_t *j, const char *name, const int64_t *want, size_t n)
{
	json_t *rows = rows_of(j);
	cr_assert_eq(json_array_size(rows), n, "%s: %zu rows, expected %zu", name,
		     json_array_size(rows), n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(col_int(json_array_get(rows, i), "position"), want[i],
			     "%s row %zu: position %" PRId64 ", expected %" PRId64, name, i,
			     col_int(json_array_get(rows, i), "position"), want[i]);
}

/* Compare allev's rows with the log, column by column. */
static void
assert_allev_matches_log(kappa_db *db)
{
	uint64_t head = kappa_head(db);
	json_t *j = query_ok(db, "allev", "all", NULL, head - 1);
	json_t *rows = rows_of(j);
	cr_assert_eq(json_array_size(rows), head, "allev holds %zu events, the log %" PRIu64,
		     json_array_size(rows), head);
	kappa_iter *it = NULL;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_read_log(db, 0, UINT64_MAX, &it, &err), KAPPA_OK, "%s", err.msg);
	kappa_event ev;
	size_t i = 0;
	int rc;
	while ((rc = kappa_iter_next(it, &ev, &err)) == 1) {
		json_t *r = json_array_get(rows, i);
		cr_assert_not_null(r);
		char *stream = kt_dupn(ev.stream, ev.stream_len),
		     *type = kt_dupn(ev.type, ev.type_len);
		char *data = kt_dupn(ev.data, ev.data_len),
		     *subj = kt_dupn(ev.subject, ev.subject_len);
		char *meta = kt_dupn(ev.metadata, ev.metadata_len), when[64];
		iso_time(ev.time_ms, when, sizeof(when));
		cr_assert_eq(col_int(r, "position"), (int64_t)ev.position, "row %zu: :position", i);
		cr_assert_eq(col_int(r, "version"), (int64_t)ev.version,
			     "event %" PRIu64 ": :version", ev.position);
		cr_assert_str_eq(col_str(r, "stream"), stream, "event %" PRIu64 ": :stream",
				 ev.position);
		cr_assert_str_eq(col_str(r, "type"), type, "event %" PRIu64 ": :type", ev.position);
		cr_assert_str_eq(col_str(r, "data"), data, "event %" PRIu64 ": :data", ev.position);
		cr_assert_str_eq(col_str(r, "time"), when,
				 "event %" PRIu64 ": :time is \"%s\", time_ms %" PRId64
				 " is \"%s\"",
				 ev.position, col_str(r, "time"), ev.time_ms, when);
		cr_assert(kt_streq_null(col_str_or_null(r, "subject"), subj),
			  "event %" PRIu64 ": :subject is %s, expected %s", ev.position,
			  col_str_or_null(r, "subject") ? col_str_or_null(r, "subject") : "NULL",
			  subj ? subj : "NULL");
		cr_assert(kt_streq_null(col_str_or_null(r, "metadata"), meta),
			  "event %" PRIu64 ": :metadata is %s, expected %s", ev.position,
			  col_str_or_null(r, "metadata") ? col_str_or_null(r, "metadata") : "NULL",
			  meta ? meta : "NULL");
		cr_assert_str_eq(col_str(r, "t_position"), "integer",
				 ":position is not an integer");
		cr_assert_str_eq(col_str(r, "t_version"), "integer", ":version is not an integer");
		cr_assert_str_eq(col_str(r, "t_time"), "text", ":time is not text");
		free(stream);
		free(type);
		free(data);
		free(subj);
		free(meta);
		i++;
	}
	cr_assert_eq(rc, 0, "kappa_iter_next: %s", err.msg);
	kappa_iter_free(it);
	json_decref(j);
}

Test(views, load_apply_and_query_with_every_parameter)
{
	env e;
	env_init(&e, "views-apply");
	write_view(&e, "counts.sql", COUNTS_SQL);
	write_view(&e, "allev.sql", ALLEV_SQL);
	write_view(&e, "notes.sql", NOTES_SQL);
	env_open(&e);
	kappa_db *db = e.db;

	/* before any event: the views exist, the queries answer with nothing */
	json_t *j = query_ok(db, "counts", "totals", NULL, KAPPA_NO_POSITION);
	cr_assert_eq(json_array_size(rows_of(j)), 0);
	cr_assert_eq(pos_of(j), -1, "an empty log answered as of position %" PRId64, pos_of(j));
	json_decref(j);

	/* several events per append, types the counting view handles and one it does not,
	 * subject and metadata on some */
	kappa_event_in a1[2] = {evx("Deposited", "{\"n\":5}", NULL, NULL),
				evx("Deposited", "{\"n\":7}", NULL, NULL)};
	kappa_append_result r1 = append_ok(db, "acct-1", a1, 2);
	kappa_event_in a2 = evx("Withdrawn", "{\"n\":3}", "user-9", "{\"by\":\"teller\",\"k\":1}");
	append_ok(db, "acct-2", &a2, 1);
	kappa_event_in a3 = evx("Noted", "{\"text\":\"hello brave new world\"}", NULL, NULL);
	kappa_append_result r3 = append_ok(db, "acct-1", &a3, 1);
	cr_assert_eq(r1.first_position, 0);
	cr_assert_eq(r3.last_position, 3);

	/* optional parameters (NAME?) may be left out and are NULL; required ones may not */
	j = query_ok(db, "counts", "seen_since", NULL, r3.last_position);
	cr_assert_eq(json_array_size(rows_of(j)), 3, "no parameters: every row");
	json_decref(j);
	j = query_ok(db, "counts", "seen_since", "{\"after\":0,\"type\":\"Deposited\"}",
		     KAPPA_NO_POSITION);
	cr_assert_eq(json_array_size(rows_of(j)), 1);
	json_decref(j);
	{
		char *res = NULL;
		kappa_err qe;
		cr_assert_eq(kappa_query(db, "counts", "by_stream", "{}", KAPPA_NO_POSITION, 0,
					 &res, &qe),
			     KAPPA_EINVAL);
		cr_assert(strstr(qe.msg, "missing parameter stream"), "%s", qe.msg);
		cr_assert_eq(kappa_view_wait(db, "counts", r3.last_position, 1000, &qe), KAPPA_OK);
		cr_assert_eq(kappa_view_wait(db, "nope", 0, 1000, &qe), KAPPA_ENOTFOUND);
	}

	/* waiting for an event the view has no handler for still returns */
	j = query_ok(db, "counts", "by_stream", "{\"stream\":\"acct-1\"}", r3.last_position);
	cr_assert_eq(json_array_size(rows_of(j)), 1);
	cr_assert_eq(col_int(json_array_get(rows_of(j), 0), "n_events"), 2);
	cr_assert_eq(col_int(json_array_get(rows_of(j), 0), "total"), 12);
	json_decref(j);

	kappa_append_result r4 = append_n(db, "acct-1", "Withdrawn", 2);
	kappa_event_in a5 = evx("Deposited", "{\"n\":40,\"who\":\"Zo\xc3\xab \\u2713\"}", "user-1",
				"{\"src\":\"import\"}");
	append_ok(db, "acct-3", &a5, 1);
	kappa_event_in a6 = evx("Noted", "{\"text\":\"quiet evening\"}", NULL, NULL);
	kappa_append_result r6 = append_ok(db, "acct-2", &a6, 1);
	cr_assert_eq(r4.last_position, 4);
	cr_assert_eq(r6.last_position, 6);

	tallies t;
	memset(&t, 0, sizeof(t));
	tally_add(&t, "acct-1", 5);
	tally_add(&t, "acct-1", 7);
	tally_add(&t, "acct-2", -3);
	tally_add(&t, "acct-1", -2);
	tally_add(&t, "acct-3", 40);
	assert_totals(db, "counts", &t, r6.last_position);

	j = query_ok(db, "counts", "by_stream", "{\"stream\":\"acct-2\"}", r4.last_position);
	cr_assert_eq(json_array_size(rows_of(j)), 1);
	cr_assert_str_eq(col_str(json_array_get(rows_of(j), 0), "stream"), "acct-2");
	cr_assert_eq(col_int(json_array_get(rows_of(j), 0), "total"), -3);
	json_decref(j);
	j = query_ok(db, "counts", "by_stream", "{\"stream\":\"nobody\"}", KAPPA_NO_POSITION);
	cr_assert_eq(json_array_size(rows_of(j)), 0);
	json_decref(j);

	/* every statement of the handler ran, once per event of either type */
	static const int64_t handled[] = {0, 1, 2, 4, 5};
	static const char *const handled_types[] = {"Deposited", "Deposited", "Withdrawn",
						    "Withdrawn", "Deposited"};
	j = query_ok(db, "counts", "seen", NULL, r6.last_position);
	assert_positions(j, "counts.seen", handled, 5);
	for (size_t i = 0; i < 5; i++)
		cr_assert_str_eq(col_str(json_array_get(rows_of(j), i), "type"), handled_types[i]);
	json_decref(j);

	/* @on *: every event, every parameter as documented */
	assert_allev_matches_log(db);
	j = query_ok(db, "allev", "all", NULL, r6.last_position);
	json_t *row2 = json_array_get(rows_of(j), 2), *row5 = json_array_get(rows_of(j), 5);
	cr_assert_str_eq(col_str(row2, "meta_by"), "teller", ":metadata->>'$.by'");
	cr_assert_eq(col_int(row2, "n"), 3, ":data->>'$.n'");
	cr_assert(json_is_null(col(json_array_get(rows_of(j), 0), "meta_by")));
	cr_assert(json_is_null(col(json_array_get(rows_of(j), 3), "n")));
	cr_assert_eq(col_int(json_array_get(rows_of(j), 1), "version"), 1);
	cr_assert_eq(col_int(row5, "version"), 0);
	cr_assert_str_eq(col_str(row5, "subject"), "user-1");
	json_decref(j);

	/* FTS5, a comment in a handler, ';' and '--' in a literal */
	static const int64_t noted[] = {3, 6};
	j = query_ok(db, "notes", "marks", NULL, r6.last_position);
	assert_positions(j, "notes.marks", noted, 2);
	cr_assert_str_eq(col_str(json_array_get(rows_of(j), 0), "note"),
			 "semi;colon -- not a comment");
	json_decref(j);
	j = query_ok(db, "notes", "search", "{\"q\":\"brave\"}", r6.last_position);
	assert_positions(j, "notes.search(brave)", noted, 1);
	cr_assert_str_eq(col_str(json_array_get(rows_of(j), 0), "body"), "hello brave new world");
	json_decref(j);
	j = query_ok(db, "notes", "search", "{\"q\":\"quiet OR hello\"}", KAPPA_NO_POSITION);
	assert_positions(j, "notes.search(quiet OR hello)", noted, 2);
	json_decref(j);

	/* status and listing */
	static const char *const names[] = {"allev", "counts", "notes"};
	for (size_t i = 0; i < 3; i++) {
		kappa_view_status st = wait_live(db, names[i]);
		char file[64];
		snprintf(file, sizeof(file), "%s.sql", names[i]);
		cr_assert_not_null(strstr(st.file, file), "%s: file is \"%s\"", names[i], st.file);
		cr_assert_eq(st.lag, 0, "%s: lag %" PRIu64 " when caught up", names[i], st.lag);
		cr_assert_eq(st.error[0], '\0', "%s: error \"%s\"", names[i], st.error);
		cr_assert_eq(st.load_error[0], '\0', "%s: load_error \"%s\"", names[i],
			     st.load_error);
	}
	status_list l = list_views(db);
	cr_assert_eq(l.n, 3, "kappa_views_list listed %zu views", l.n);
	for (size_t i = 0; i < 3; i++)
		cr_assert_str_eq(l.v[i].name, names[i], "views are listed in name order");
	char path[4400];
	view_db_path(&e, "counts", "", path, sizeof(path));
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0, "%s does not exist", path);

	kappa_view_status st;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_view_status_get(db, "nosuch", &st, &err), KAPPA_ENOTFOUND);
	cr_assert_str_eq(kappa_view_state_name(KAPPA_VIEW_CATCHING_UP), "catching_up");
	cr_assert_str_eq(kappa_view_state_name(KAPPA_VIEW_LIVE), "live");
	cr_assert_str_eq(kappa_view_state_name(KAPPA_VIEW_REBUILDING), "rebuilding");
	cr_assert_str_eq(kappa_view_state_name(KAPPA_VIEW_FAILED), "failed");
	cr_assert_str_eq(kappa_view_state_name(KAPPA_VIEW_STOPPED), "stopped");
	env_done(&e);
}

/* ==== 2. read-your-writes ======================================================================
 */

Test(views, read_your_writes_for_a_thousand_appends)
{
	env e;
	env_init(&e, "views-ryw");
	write_view(&e, "counts.sql", COUNTS_SQL);
	env_open(&e);
	tallies t;
	memset(&t, 0, sizeof(t));
	uint64_t s = 42;
	int64_t t0 = kt_mono_ms(), slowest = 0;
	for (int i = 0; i < 1000; i++) {
		char stream[32], params[64];
		snprintf(stream, sizeof(stream), "s-%d", (int)(kt_rng_next(&s) % 7));
		snprintf(params, sizeof(params), "{\"stream\":\"%s\"}", stream);
		int64_t amount = (int64_t)(kt_rng_next(&s) % 1000) - 300;
		int withdraw = kt_rng_next(&s) % 4 == 0;
		kappa_append_result r;
		if (i % 10 == 9) {
			/* an event the view does not handle: the wait must still end */
			kappa_event_in n = evx("Noted", "{\"x\":1}", NULL, NULL);
			r = append_ok(e.db, stream, &n, 1);
		} else {
			r = append_n(e.db, stream, withdraw ? "Withdrawn" : "Deposited", amount);
			tally_add(&t, stream, withdraw ? -amount : amount);
		}
		int64_t q0 = kt_mono_ms();
		json_t *j = query_ok(e.db, "counts", "by_stream", params, r.last_position);
		if (kt_mono_ms() - q0 > slowest)
			slowest = kt_mono_ms() - q0;
		json_t *rows = rows_of(j);
		size_t k = 0;
		while (k < t.n && strcmp(t.v[k].stream, stream) != 0)
			k++;
		if (k == t.n) {
			cr_assert_eq(json_array_size(rows), 0);
		} else {
			cr_assert_eq(json_array_size(rows), 1, "pair %d: %s has no row", i, stream);
			json_t *row = json_array_get(rows, 0);
			cr_assert_eq(col_int(row, "n_events"), t.v[k].n,
				     "pair %d (position %" PRIu64 "): %s counted %" PRId64
				     ", expected %" PRId64,
				     i, r.last_position, stream, col_int(row, "n_events"),
				     t.v[k].n);
			cr_assert_eq(col_int(row, "total"), t.v[k].total, "pair %d: %s total", i,
				     stream);
		}
		json_decref(j);
	}
	cr_log_info("1000 append+query pairs in %" PRId64 " ms, slowest query %" PRId64 " ms",
		    kt_mono_ms() - t0, slowest);
	assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);
	env_done(&e);
}

struct ryw_thread {
	kappa_db *db;
	int id, pairs;
	int bad_pair; /* -1: none */
	int rc;	      /* of the first failing call */
	int64_t got, want;
	char msg[256];
};

static void *
ryw_main(void *arg)
{
	struct ryw_thread *a = arg;
	char stream[32], params[64], data[64];
	snprintf(stream, sizeof(stream), "t-%d", a->id);
	snprintf(params, sizeof(params), "{\"stream\":\"%s\"}", stream);
	for (int i = 0; i < a->pairs; i++) {
		snprintf(data, sizeof(data), "{\"n\":%d}", i);
		kappa_event_in ev = evx("Deposited", data, NULL, NULL);
		kappa_append_result r;
		kappa_err err;
		memset(&err, 0, sizeof(err));
		int rc = kappa_append(a->db, stream, KAPPA_ANY, NULL, &ev, 1, NULL, 0, &r, &err);
		char *out = NULL;
		if (rc == KAPPA_OK)
			rc = kappa_query(a->db, "counts", "by_stream", params, r.last_position,
					 WAIT_MS, &out, &err);
		if (rc != KAPPA_OK) {
			a->bad_pair = i;
			a->rc = rc;
			snprintf(a->msg, sizeof(a->msg), "%s", err.msg);
			return NULL;
		}
		json_t *j = json_loads(out, 0, NULL);
		kappa_free(out);
		json_t *row = json_array_get(json_object_get(j, "rows"), 0);
		int64_t n = (int64_t)json_integer_value(json_object_get(row, "n_events"));
		json_decref(j);
		if (n != i + 1) {
			a->bad_pair = i;
			a->got = n;
			a->want = i + 1;
			return NULL;
		}
	}
	return NULL;
}

struct late_query {
	kappa_db *db;
	uint64_t min_pos;
	int rc;
	int64_t ms;
	int64_t n;
};

static void *
late_query_main(void *arg)
{
	struct late_query *q = arg;
	char *out = NULL;
	kappa_err err;
	int64_t t0 = kt_mono_ms();
	q->rc = kappa_query(q->db, "counts", "by_stream", "{\"stream\":\"late\"}", q->min_pos,
			    WAIT_MS, &out, &err);
	q->ms = kt_mono_ms() - t0;
	if (q->rc == KAPPA_OK) {
		json_t *j = json_loads(out, 0, NULL);
		json_t *row = json_array_get(json_object_get(j, "rows"), 0);
		q->n = row ? (int64_t)json_integer_value(json_object_get(row, "n_events")) : 0;
		json_decref(j);
	}
	kappa_free(out);
	return NULL;
}

Test(views, read_your_writes_from_concurrent_threads_and_waits_for_future_positions)
{
	env e;
	env_init(&e, "views-ryw-mt");
	write_view(&e, "counts.sql", COUNTS_SQL);
	env_open(&e);
	enum { NT = 4, PAIRS = 150 };
	struct ryw_thread a[NT];
	pthread_t th[NT];
	for (int i = 0; i < NT; i++) {
		a[i] = (struct ryw_thread){e.db, i, PAIRS, -1, 0, 0, 0, {0}};
		cr_assert_eq(pthread_create(&th[i], NULL, ryw_main, &a[i]), 0);
	}
	for (int i = 0; i < NT; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NT; i++)
		cr_assert_eq(a[i].bad_pair, -1,
			     "thread %d pair %d: %s (%s); counted %" PRId64 ", expected %" PRId64,
			     i, a[i].bad_pair, kappa_strerror(a[i].rc), a[i].msg, a[i].got,
			     a[i].want);

	/* a query waiting for a position not yet appended returns once it is */
	struct late_query q = {e.db, kappa_head(e.db), 0, 0, 0};
	pthread_t lt;
	cr_assert_eq(pthread_create(&lt, NULL, late_query_main, &q), 0);
	kt_sleep_ms(150);
	append_n(e.db, "late", "Deposited", 1);
	pthread_join(lt, NULL);
	cr_assert_eq(q.rc, KAPPA_OK, "a query waiting for the next position: %s",
		     kappa_strerror(q.rc));
	cr_assert_eq(q.n, 1, "the waiting query did not see the event it waited for");
	cr_assert(q.ms >= 100 && q.ms < 10000, "the waiting query returned after %" PRId64 " ms",
		  q.ms);
	env_done(&e);
}

/* ==== 3. parse errors ==========================================================================
 */

static const char GOOD_SQL[] = "-- @view good\n"
			       "CREATE TABLE hits (stream TEXT PRIMARY KEY, k INTEGER NOT NULL);\n"
			       "-- @on *\n"
			       "INSERT INTO hits (stream, k) VALUES (:stream, 1)\n"
			       "  ON CONFLICT(stream) DO UPDATE SET k = k + 1;\n"
			       "-- @query get(stream)\n"
			       "SELECT stream, k FROM hits WHERE stream = :stream;\n";

/* Whether 'msg' names 'file' and one of 'lines' as a number of its own, once every copy of
 * the path 'dir' is taken out of it (temporary paths hold digits). */
static int
msg_names(const char *msg, const char *dir, const char *file, const int *lines, int nlines)
{
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", msg);
	size_t dl = strlen(dir);
	for (char *p; (p = strstr(buf, dir)) != NULL;)
		memmove(p, p + dl, strlen(p + dl) + 1);
	if (!strstr(msg, file))
		return 0;
	/* the file's own name holds no digits in these tests */
	for (const char *p = buf; *p;) {
		if (*p < '0' || *p > '9') {
			p++;
			continue;
		}
		long v = strtol(p, NULL, 10);
		for (int k = 0; k < nlines; k++)
			if (v == lines[k])
				return 1;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	return 0;
}

struct bad_def {
	const char *file;
	const char *text;
	int lines[2]; /* the line the error should name (either) */
	int nlines;
	const char *view, *query; /* a view name and query the file has, if any */
};

static const struct bad_def BAD[] = {
	{"noview.sql",
	 "-- @on Deposited\n"
	 "INSERT INTO t (x) VALUES (:position);\n",
	 {1},
	 1,
	 NULL,
	 NULL},
	{"upper.sql", "-- @view Upper\nCREATE TABLE t (x INTEGER);\n", {1}, 1, NULL, NULL},
	{"leadingdigit.sql", "-- @view 9lives\nCREATE TABLE t (x INTEGER);\n", {1}, 1, NULL, NULL},
	{"dash.sql", "-- @view has-dash\nCREATE TABLE t (x INTEGER);\n", {1}, 1, NULL, NULL},
	{"underscore.sql", "-- @view _under\nCREATE TABLE t (x INTEGER);\n", {1}, 1, NULL, NULL},
	{"empty.sql", "-- @view\nCREATE TABLE t (x INTEGER);\n", {1}, 1, NULL, NULL},
	{"twowords.sql", "-- @view two words\nCREATE TABLE t (x INTEGER);\n", {1}, 1, NULL, NULL},
	{"toolong.sql",
	 "-- @view abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcd\n"
	 "CREATE TABLE t (x INTEGER);\n",
	 {1},
	 1,
	 NULL,
	 NULL},
	{"unknown.sql",
	 "-- @view unknown\n"
	 "CREATE TABLE t (x INTEGER);\n"
	 "-- @frobnicate t\n"
	 "SELECT x FROM t;\n",
	 {3},
	 1,
	 "unknown",
	 NULL},
	{"writer.sql",
	 "-- @view writer\n"
	 "CREATE TABLE t (x INTEGER);\n"
	 "-- @on Deposited\n"
	 "INSERT INTO t (x) VALUES (:position);\n"
	 "-- @query wipe()\n"
	 "DELETE FROM t;\n",
	 {5, 6},
	 2,
	 "writer",
	 "wipe"},
	{"badsql.sql",
	 "-- @view badsql\n"
	 "CREATE TABLE t (x INTEGER);\n"
	 "-- @on Deposited\n"
	 "INSERT INTO t (x) VALUES (:position);\n"
	 "INSERTT INTO t (x) VALUES (:position);\n"
	 "-- @query everything()\n"
	 "SELECT x FROM t;\n",
	 {5, 3},
	 2,
	 "badsql",
	 "everything"},
	{"dupq.sql",
	 "-- @view dupq\n"
	 "CREATE TABLE t (x INTEGER);\n"
	 "-- @query q()\n"
	 "SELECT x FROM t;\n"
	 "-- @query q()\n"
	 "SELECT x AS y FROM t;\n",
	 {5},
	 1,
	 "dupq",
	 "q"},
	{"twice.sql",
	 "-- @view twice\n"
	 "CREATE TABLE t (x INTEGER);\n"
	 "-- @view twice\n",
	 {3},
	 1,
	 "twice",
	 NULL},
};
#define NBAD (sizeof(BAD) / sizeof(BAD[0]))

/* The good view still loads, follows and answers. */
static void
assert_good_answers(kappa_db *db, const char *stream)
{
	kappa_append_result r = append_n(db, stream, "Deposited", 1);
	char params[96];
	snprintf(params, sizeof(params), "{\"stream\":\"%s\"}", stream);
	json_t *j = query_ok(db, "good", "get", params, r.last_position);
	cr_assert_eq(json_array_size(rows_of(j)), 1, "good.get(%s) has no row", stream);
	cr_assert_eq(col_int(json_array_get(rows_of(j), 0), "k"), 1);
	json_decref(j);
}

/* A view that must not have loaded: no query of it answers. */
static void
assert_not_loaded(kappa_db *db, const struct bad_def *b)
{
	if (!b->view)
		return;
	kappa_err err;
	if (b->query) {
		int rc = query_rc(db, b->view, b->query, NULL, KAPPA_NO_POSITION, 1000, &err);
		cr_expect_neq(rc, KAPPA_OK,
			      "%s: query %s.%s of a file that failed to load answered", b->file,
			      b->view, b->query);
	}
	kappa_view_status st;
	memset(&err, 0, sizeof(err));
	if (kappa_view_status_get(db, b->view, &st, &err) == KAPPA_OK)
		cr_expect(
			st.load_error[0] && strstr(st.load_error, b->file),
			"%s: view %s has status but its load_error (\"%s\") does not name the file",
			b->file, b->view, st.load_error);
}

Test(views, parse_errors_name_file_and_line_and_other_views_still_load)
{
	env e;
	env_init(&e, "views-parse");
	write_view(&e, "good.sql", GOOD_SQL);
	env_open(&e);
	kappa_db *db = e.db;
	assert_good_answers(db, "g-first");

	/* one bad file at a time: reload names it, its line, and the good view goes on */
	for (size_t i = 0; i < NBAD; i++) {
		const struct bad_def *b = &BAD[i];
		write_view(&e, b->file, b->text);
		kappa_err err;
		memset(&err, 0, sizeof(err));
		int rc = kappa_views_reload(db, &err);
		cr_expect_eq(rc, KAPPA_EINVAL,
			     "%s: kappa_views_reload returned %s, expected invalid", b->file,
			     kappa_strerror(rc));
		if (rc == KAPPA_EINVAL) {
			cr_log_info("%s: %s", b->file, err.msg);
			cr_expect_eq(err.code, KAPPA_EINVAL);
			cr_expect(msg_names(err.msg, e.views, b->file, b->lines, b->nlines),
				  "%s: the message does not name the file and line %d: \"%s\"",
				  b->file, b->lines[0], err.msg);
		}
		assert_not_loaded(db, b);
		char stream[64];
		snprintf(stream, sizeof(stream), "g-%zu", i);
		assert_good_answers(db, stream);
		cr_expect_eq(status_of(db, "good").state, KAPPA_VIEW_LIVE);
		remove_view(&e, b->file);
		memset(&err, 0, sizeof(err));
		rc = kappa_views_reload(db, &err);
		cr_expect_eq(rc, KAPPA_OK, "after removing %s, reload: %s: %s", b->file,
			     kappa_strerror(rc), err.msg);
	}

	/* all of them at once, present at open: the open succeeds and the good view loads */
	env_close(&e);
	for (size_t i = 0; i < NBAD; i++)
		write_view(&e, BAD[i].file, BAD[i].text);
	env_open(&e);
	db = e.db;
	assert_good_answers(db, "g-reopened");
	for (size_t i = 0; i < NBAD; i++)
		assert_not_loaded(db, &BAD[i]);
	kappa_err err;
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_views_reload(db, &err), KAPPA_EINVAL);
	int named = 0;
	for (size_t i = 0; i < NBAD; i++)
		named |= strstr(err.msg, BAD[i].file) != NULL;
	cr_assert(named, "reload with bad files names none of them: \"%s\"", err.msg);

	/* fixing one file loads it even though others still fail */
	write_view(&e, "dupq.sql",
		   "-- @view dupq\n"
		   "CREATE TABLE t (x INTEGER);\n"
		   "-- @on Deposited\n"
		   "INSERT INTO t (x) VALUES (:data->>'$.n');\n"
		   "-- @query q()\n"
		   "SELECT sum(x) AS s FROM t;\n"
		   "-- @query r()\n"
		   "SELECT count(*) AS c FROM t;\n");
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_views_reload(db, &err), KAPPA_EINVAL);
	json_t *j = query_ok(db, "dupq", "r", NULL, kappa_head(db) - 1);
	cr_assert_eq(col_int(json_array_get(rows_of(j), 0), "c"), (int64_t)kappa_head(db),
		     "the fixed view counted %" PRId64 " of %" PRIu64 " events",
		     col_int(json_array_get(rows_of(j), 0), "c"), kappa_head(db));
	json_decref(j);
	for (size_t i = 0; i < NBAD; i++)
		if (strcmp(BAD[i].file, "dupq.sql") != 0)
			remove_view(&e, BAD[i].file);
	reload_ok(db);

	/* a view whose file breaks keeps running its previous version, with load_error set */
	write_view(&e, "good.sql",
		   "-- @view good\n"
		   "CREATE TABLE hits (stream TEXT PRIMARY KEY, k INTEGER NOT NULL);\n"
		   "-- @frobnicate\n");
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_views_reload(db, &err), KAPPA_EINVAL);
	int line3[] = {3};
	cr_assert(msg_names(err.msg, e.views, "good.sql", line3, 1),
		  "a broken good.sql: the message does not name file and line 3: \"%s\"", err.msg);
	kappa_view_status st = status_of(db, "good");
	cr_assert_neq(st.load_error[0], '\0', "the previous version runs but load_error is empty");
	cr_assert_not_null(strstr(st.load_error, "good.sql"), "load_error: \"%s\"", st.load_error);
	cr_assert_neq(st.state, KAPPA_VIEW_FAILED);
	cr_assert_neq(st.state, KAPPA_VIEW_STOPPED);
	assert_good_answers(db, "g-broken-file");
	write_view(&e, "good.sql", GOOD_SQL);
	reload_ok(db);
	st = wait_live(db, "good");
	cr_assert_eq(st.load_error[0], '\0', "load_error stays \"%s\" after a good reload",
		     st.load_error);
	assert_good_answers(db, "g-fixed");

	/* the longest name allowed: 63 characters */
	static const char LONGEST[] =
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij_z9";
	cr_assert_eq(strlen(LONGEST), 63);
	char text[512];
	snprintf(text, sizeof(text),
		 "-- @view %s\nCREATE TABLE t (x INTEGER);\n-- @on Deposited\n"
		 "INSERT INTO t (x) VALUES (:position);\n-- @query c()\nSELECT count(*) AS c FROM "
		 "t;\n",
		 LONGEST);
	write_view(&e, "longest.sql", text);
	reload_ok(db);
	j = query_ok(db, LONGEST, "c", NULL, kappa_head(db) - 1);
	cr_assert_eq(json_array_size(rows_of(j)), 1);
	json_decref(j);
	env_done(&e);
}

/* ==== 4. a failing handler =====================================================================
 */

static const char UNIQ_SQL[] =
	"-- @view uniq\n"
	"CREATE TABLE emails (email TEXT PRIMARY KEY, stream TEXT NOT NULL);\n"
	"-- @on Registered\n"
	"INSERT INTO emails (email, stream) VALUES (:data->>'$.email', :stream);\n"
	"-- @query all()\n"
	"SELECT email, stream FROM emails ORDER BY email;\n";

/* The fix: the latest registration of an address wins. */
static const char UNIQ_FIXED_SQL[] =
	"-- @view uniq\n"
	"CREATE TABLE emails (email TEXT PRIMARY KEY, stream TEXT NOT NULL);\n"
	"-- @on Registered\n"
	"INSERT INTO emails (email, stream) VALUES (:data->>'$.email', :stream)\n"
	"  ON CONFLICT(email) DO UPDATE SET stream = excluded.stream;\n"
	"-- @query all()\n"
	"SELECT email, stream FROM emails ORDER BY email;\n";

static kappa_append_result
register_email(kappa_db *db, const char *stream, const char *email)
{
	char data[128];
	snprintf(data, sizeof(data), "{\"email\":\"%s\"}", email);
	kappa_event_in e = evx("Registered", data, NULL, NULL);
	return append_ok(db, stream, &e, 1);
}

/* Appends the scenario; returns the position of the duplicate registration. */
static uint64_t
failing_workload(kappa_db *db, tallies *t)
{
	register_email(db, "u-1", "a@example.com");
	append_n(db, "u-1", "Deposited", 10);
	tally_add(t, "u-1", 10);
	register_email(db, "u-2", "b@example.com");
	kappa_append_result dup = register_email(db, "u-3", "a@example.com");
	append_n(db, "u-3", "Deposited", 5);
	tally_add(t, "u-3", 5);
	return dup.first_position;
}

static kappa_view_status
wait_failed(kappa_db *db, uint64_t at)
{
	kappa_view_status st = wait_state(db, "uniq", KAPPA_VIEW_FAILED);
	cr_assert_eq(st.error_position, at,
		     "uniq failed at %" PRIu64 ", the duplicate is at %" PRIu64, st.error_position,
		     at);
	cr_assert_str_eq(st.error_type, "Registered");
	cr_assert_not_null(strstr(st.error, "UNIQUE constraint failed"),
			   "the error does not carry SQLite's message: \"%s\"", st.error);
	cr_assert_leq(st.position, at, "uniq failed at %" PRIu64 " but applied up to %" PRIu64, at,
		      st.position);
	/* that it stops exactly at error_position: a_failure_mid_batch_keeps_the_events_before_it
	 */
	return st;
}

/* With the other view going on, the failed one stays failed and a query waiting on it ends. */
static void
assert_failure_contained(kappa_db *db, tallies *t, uint64_t at, uint64_t stopped)
{
	for (int i = 0; i < 20; i++) {
		kappa_append_result r = append_n(db, "u-4", "Deposited", i);
		tally_add(t, "u-4", i);
		assert_totals(db, "counts", t, r.last_position);
	}
	register_email(db, "u-5", "c@example.com");
	kappa_view_status st = status_of(db, "uniq");
	cr_assert_eq(st.state, KAPPA_VIEW_FAILED, "uniq is %s", state_name(st.state));
	cr_assert_eq(st.error_position, at);
	cr_assert_eq(st.position, stopped, "a failed view moved from %" PRIu64 " to %" PRIu64,
		     stopped, st.position);
	wait_live(db, "counts");
	kappa_err err;
	int64_t t0 = kt_mono_ms();
	int rc = query_rc(db, "uniq", "all", NULL, kappa_head(db) - 1, 10000, &err);
	cr_assert_eq(rc, KAPPA_EFATAL, "waiting on a failed view: %s (%s), expected fatal",
		     kappa_strerror(rc), err.msg);
	cr_assert_lt(kt_mono_ms() - t0, 5000, "waiting on a failed view took %" PRId64 " ms",
		     kt_mono_ms() - t0);
}

static void
assert_emails_fixed(kappa_db *db)
{
	json_t *j = query_ok(db, "uniq", "all", NULL, kappa_head(db) - 1);
	json_t *want = json_loads("[{\"email\":\"a@example.com\",\"stream\":\"u-3\"},"
				  "{\"email\":\"b@example.com\",\"stream\":\"u-2\"},"
				  "{\"email\":\"c@example.com\",\"stream\":\"u-5\"}]",
				  0, NULL);
	assert_json_eq(rows_of(j), want, "uniq.all after the fix");
	json_decref(want);
	json_decref(j);
}

Test(views, a_failing_handler_stops_only_its_view_until_fixed_and_reloaded)
{
	env e;
	env_init(&e, "views-fail");
	write_view(&e, "counts.sql", COUNTS_SQL);
	write_view(&e, "uniq.sql", UNIQ_SQL);
	env_open(&e);
	tallies t;
	memset(&t, 0, sizeof(t));
	uint64_t at = failing_workload(e.db, &t);
	kappa_view_status failed = wait_failed(e.db, at);
	assert_failure_contained(e.db, &t, at, failed.position);

	/* the failure survives a restart */
	env_close(&e);
	env_open(&e);
	wait_failed(e.db, at);

	/* fix the file and reload: it rebuilds or resumes, then answers correctly */
	write_view(&e, "uniq.sql", UNIQ_FIXED_SQL);
	reload_ok(e.db);
	kappa_view_status st = wait_live(e.db, "uniq");
	cr_assert_eq(st.error[0], '\0', "a live view still reports error \"%s\"", st.error);
	assert_emails_fixed(e.db);
	append_n(e.db, "u-6", "Deposited", 1);
	tally_add(&t, "u-6", 1);
	register_email(e.db, "u-6", "a@example.com");
	json_t *j = query_ok(e.db, "uniq", "all", NULL, kappa_head(e.db) - 1);
	cr_assert_str_eq(col_str(json_array_get(rows_of(j), 0), "stream"), "u-6");
	json_decref(j);
	assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);
	env_done(&e);
}

Test(views, rebuilding_an_unfixed_view_fails_again_and_the_fixed_one_recovers)
{
	env e;
	env_init(&e, "views-fail-rebuild");
	write_view(&e, "counts.sql", COUNTS_SQL);
	write_view(&e, "uniq.sql", UNIQ_SQL);
	env_open(&e);
	tallies t;
	memset(&t, 0, sizeof(t));
	uint64_t at = failing_workload(e.db, &t);
	wait_failed(e.db, at);
	register_email(e.db, "u-5", "c@example.com");

	/* the same definition fails at the same event */
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_view_rebuild(e.db, "uniq", &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_view_rebuild(uniq): %s: %s", kappa_strerror(rc), err.msg);
	int64_t t0 = kt_mono_ms();
	kappa_view_status st;
	do {
		st = status_of(e.db, "uniq");
		cr_assert(kt_mono_ms() - t0 < WAIT_MS, "uniq stays %s after a rebuild",
			  state_name(st.state));
		cr_assert_neq(st.state, KAPPA_VIEW_LIVE, "a rebuild with a duplicate went live");
		kt_sleep_ms(2);
	} while (st.state != KAPPA_VIEW_FAILED);
	wait_failed(e.db, at);

	/* fixed and reloaded, then rebuilt on request as well (asking for the rebuild while the
	 * reload's rebuild runs: a_rebuild_requested_while_a_new_definition_builds_...) */
	write_view(&e, "uniq.sql", UNIQ_FIXED_SQL);
	reload_ok(e.db);
	wait_live(e.db, "uniq");
	assert_emails_fixed(e.db);
	memset(&err, 0, sizeof(err));
	rc = kappa_view_rebuild(e.db, "uniq", &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_view_rebuild after the fix: %s: %s", kappa_strerror(rc),
		     err.msg);
	wait_live(e.db, "uniq");
	assert_emails_fixed(e.db);
	assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_view_rebuild(e.db, "nosuch", &err), KAPPA_ENOTFOUND);
	env_done(&e);
}

/* The events before the failing one are applied even when they share its batch: the view
 * stops exactly at error_position. (Appended with no views loaded, then projected at the
 * reopen, they all land in one batch.) */
Test(views, a_failure_mid_batch_keeps_the_events_before_it)
{
	env e;
	env_init(&e, "views-fail-batch");
	write_view(&e, "uniq.sql", UNIQ_SQL);
	e.o.views_dir = NULL;
	env_open(&e);
	tallies t;
	memset(&t, 0, sizeof(t));
	uint64_t at = failing_workload(e.db, &t);
	env_close(&e);
	e.o.views_dir = e.views;
	env_open(&e);
	kappa_view_status st = wait_state(e.db, "uniq", KAPPA_VIEW_FAILED);
	cr_assert_eq(st.error_position, at);
	json_t *j = query_ok(e.db, "uniq", "all", NULL, KAPPA_NO_POSITION);
	char *rows = dump(rows_of(j));
	cr_assert_eq(st.position, at,
		     "uniq failed at %" PRIu64 " but reports events below %" PRIu64
		     " applied; it answers as of %" PRId64 ": %s",
		     at, st.position, pos_of(j), rows);
	json_t *want = json_loads("[{\"email\":\"a@example.com\",\"stream\":\"u-1\"},"
				  "{\"email\":\"b@example.com\",\"stream\":\"u-2\"}]",
				  0, NULL);
	assert_json_eq(rows_of(j), want, "uniq.all of the view failed at the duplicate");
	cr_assert_eq(pos_of(j), (int64_t)at - 1);
	json_decref(want);
	free(rows);
	json_decref(j);
	env_done(&e);
}

/* ==== 5. rebuilds answer as the live view did =============================================== */

#define ACCT_TABLES                                                                                \
	"-- @view acct\n"                                                                          \
	"CREATE TABLE accounts (stream TEXT PRIMARY KEY, balance INTEGER NOT NULL DEFAULT 0,\n"    \
	"  deposits INTEGER NOT NULL DEFAULT 0, withdrawals INTEGER NOT NULL DEFAULT 0,\n"         \
	"  name TEXT, last_version INTEGER%s);\n"                                                  \
	"CREATE INDEX accounts_by_balance ON accounts (balance);\n"                                \
	"CREATE TABLE by_type (type TEXT PRIMARY KEY, n INTEGER NOT NULL);\n"

#define ACCT_HANDLERS                                                                              \
	"-- @on Deposited\n"                                                                       \
	"INSERT INTO accounts (stream) VALUES (:stream) ON CONFLICT(stream) DO NOTHING;\n"         \
	"UPDATE accounts SET balance = balance + (:data->>'$.n'), deposits = deposits + 1,\n"      \
	"  last_version = :version%s WHERE stream = :stream;\n"                                    \
	"INSERT INTO by_type (type, n) VALUES (:type, 1) ON CONFLICT(type) DO UPDATE SET n = n + " \
	"1;\n"                                                                                     \
	"-- @on Withdrawn\n"                                                                       \
	"INSERT INTO accounts (stream) VALUES (:stream) ON CONFLICT(stream) DO NOTHING;\n"         \
	"UPDATE accounts SET balance = balance - (:data->>'$.n'),\n"                               \
	"  withdrawals = withdrawals + 1, last_version = :version WHERE stream = :stream;\n"       \
	"INSERT INTO by_type (type, n) VALUES (:type, 1) ON CONFLICT(type) DO UPDATE SET n = n + " \
	"1;\n"                                                                                     \
	"-- @on Renamed\n"                                                                         \
	"INSERT INTO accounts (stream, name, last_version)\n"                                      \
	"  VALUES (:stream, :data->>'$.name', :version)\n"                                         \
	"  ON CONFLICT(stream) DO UPDATE SET name = excluded.name,\n"                              \
	"  last_version = excluded.last_version;\n"                                                \
	"INSERT INTO by_type (type, n) VALUES (:type, 1) ON CONFLICT(type) DO UPDATE SET n = n + " \
	"1;\n"                                                                                     \
	"-- @query accounts()\n"                                                                   \
	"SELECT stream, balance, deposits, withdrawals, name, last_version\n"                      \
	"  FROM accounts ORDER BY stream;\n"                                                       \
	"-- @query types()\n"                                                                      \
	"SELECT type, n FROM by_type ORDER BY type;\n"                                             \
	"-- @query rich(min)\n"                                                                    \
	"SELECT stream, balance FROM accounts WHERE balance >= :min ORDER BY balance DESC, "       \
	"stream;\n"

#define NACCT 12

typedef struct {
	int64_t balance, deposits, withdrawals, largest, last_version;
	char name[32];
	int exists;
} acct_model;

typedef struct {
	acct_model a[NACCT];
	uint64_t versions[NACCT];
	uint64_t rng;
} acct_world;

/* Append 'appends' random appends of 1..8 events to the acct-NN streams, tracking the model. */
static void
acct_workload(kappa_db *db, acct_world *w, int appends)
{
	for (int k = 0; k < appends; k++) {
		int s = (int)(kt_rng_next(&w->rng) % NACCT);
		char stream[32];
		snprintf(stream, sizeof(stream), "acct-%02d", s);
		size_t n = 1 + (size_t)(kt_rng_next(&w->rng) % 8);
		kappa_event_in ev[8];
		char data[8][96];
		for (size_t i = 0; i < n; i++) {
			uint64_t r = kt_rng_next(&w->rng) % 100;
			int64_t amount = 1 + (int64_t)(kt_rng_next(&w->rng) % 1000);
			acct_model *m = &w->a[s];
			int64_t version = (int64_t)w->versions[s]++;
			if (r < 50) {
				snprintf(data[i], sizeof(data[i]), "{\"n\":%" PRId64 "}", amount);
				ev[i] = evx("Deposited", data[i], NULL, NULL);
				m->balance += amount;
				m->deposits++;
				if (amount > m->largest)
					m->largest = amount;
			} else if (r < 75) {
				snprintf(data[i], sizeof(data[i]), "{\"n\":%" PRId64 "}", amount);
				ev[i] = evx("Withdrawn", data[i], "owner", NULL);
				m->balance -= amount;
				m->withdrawals++;
			} else if (r < 85) {
				snprintf(m->name, sizeof(m->name), "name-%" PRId64, amount);
				snprintf(data[i], sizeof(data[i]), "{\"name\":\"%s\"}", m->name);
				ev[i] = evx("Renamed", data[i], NULL, "{\"by\":\"ops\"}");
			} else {
				snprintf(data[i], sizeof(data[i]),
					 "{\"text\":\"note %" PRId64 "\"}", amount);
				ev[i] = evx("Noted", data[i], NULL, NULL);
				continue; /* no handler: no row, no last_version */
			}
			m->exists = 1;
			m->last_version = version;
		}
		append_ok(db, stream, ev, n);
	}
}

/* accounts() as the model says it should be. */
static json_t *
acct_expected(const acct_world *w, int with_largest)
{
	json_t *rows = json_array();
	for (int s = 0; s < NACCT; s++) {
		const acct_model *m = &w->a[s];
		if (!m->exists)
			continue;
		char stream[32];
		snprintf(stream, sizeof(stream), "acct-%02d", s);
		json_t *r = json_pack("{s:s, s:I, s:I, s:I, s:o, s:I}", "stream", stream, "balance",
				      (json_int_t)m->balance, "deposits", (json_int_t)m->deposits,
				      "withdrawals", (json_int_t)m->withdrawals, "name",
				      m->name[0] ? json_string(m->name) : json_null(),
				      "last_version", (json_int_t)m->last_version);
		if (with_largest)
			json_object_set_new(r, "largest", json_integer(m->largest));
		json_array_append_new(rows, r);
	}
	return rows;
}

static void
assert_accounts(kappa_db *db, const acct_world *w, uint64_t min_pos, const char *what)
{
	json_t *j = query_ok(db, "acct", "accounts", NULL, min_pos);
	json_t *want = acct_expected(w, 0);
	assert_json_eq(rows_of(j), want, what);
	json_decref(want);
	json_decref(j);
}

static void
acct_write(const env *e, int v2)
{
	char text[8192];
	snprintf(text, sizeof(text), ACCT_TABLES ACCT_HANDLERS "%s",
		 v2 ? ", largest INTEGER NOT NULL DEFAULT 0" : "",
		 v2 ? ", largest = max(largest, :data->>'$.n')" : "",
		 v2 ? "-- @query largest()\n"
		      "SELECT stream, balance, deposits, withdrawals, name, last_version, largest\n"
		      "  FROM accounts ORDER BY stream;\n"
		    : "");
	write_view(e, "acct.sql", text);
}

/* Snapshot of every query's answer, for comparing. */
typedef struct {
	json_t *accounts, *types, *rich;
	int64_t position;
} acct_answers;

static acct_answers
acct_snapshot(kappa_db *db, uint64_t min_pos)
{
	acct_answers a;
	json_t *j = query_ok(db, "acct", "accounts", NULL, min_pos);
	a.position = pos_of(j);
	a.accounts = json_incref(rows_of(j));
	json_decref(j);
	j = query_ok(db, "acct", "types", NULL, min_pos);
	a.types = json_incref(rows_of(j));
	json_decref(j);
	j = query_ok(db, "acct", "rich", "{\"min\":500}", min_pos);
	a.rich = json_incref(rows_of(j));
	json_decref(j);
	return a;
}

static void
acct_answers_free(acct_answers *a)
{
	json_decref(a->accounts);
	json_decref(a->types);
	json_decref(a->rich);
}

Test(views, a_rebuild_answers_as_the_live_view_and_a_changed_definition_rebuilds)
{
	env e;
	env_init(&e, "views-rebuild");
	e.o.fsync = KAPPA_FSYNC_NEVER;
	acct_write(&e, 0);
	env_open(&e);
	acct_world w;
	memset(&w, 0, sizeof(w));
	w.rng = 7;
	acct_workload(e.db, &w, 2500);
	uint64_t head = kappa_head(e.db);
	cr_log_info("rebuild test: %" PRIu64 " events", head);

	acct_answers live = acct_snapshot(e.db, head - 1);
	assert_accounts(e.db, &w, head - 1, "live accounts() vs the model");
	cr_assert_eq(live.position, (int64_t)head - 1);
	cr_assert_gt(json_array_size(live.types), 0);
	cr_assert_gt(json_array_size(live.rich), 0);

	/* an explicit rebuild: the live copy answers meanwhile; the new one answers the same */
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_view_rebuild(e.db, "acct", &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_view_rebuild: %s: %s", kappa_strerror(rc), err.msg);
	int saw_rebuilding = 0, answered = 0;
	int64_t t0 = kt_mono_ms();
	for (;;) {
		kappa_view_status st = status_of(e.db, "acct");
		if (st.state == KAPPA_VIEW_LIVE)
			break;
		cr_assert_eq(st.state, KAPPA_VIEW_REBUILDING, "acct is %s during a rebuild",
			     state_name(st.state));
		cr_assert(st.rebuild_position <= head, "rebuild_position %" PRIu64 " > head",
			  st.rebuild_position);
		saw_rebuilding = 1;
		json_t *j = query_ok(e.db, "acct", "accounts", NULL, KAPPA_NO_POSITION);
		assert_json_eq(rows_of(j), live.accounts, "accounts() during the rebuild");
		json_decref(j);
		answered++;
		cr_assert(kt_mono_ms() - t0 < WAIT_MS, "the rebuild did not finish");
	}
	wait_live(e.db, "acct");
	cr_log_info("explicit rebuild: %" PRId64 " ms, rebuilding seen %d, %d queries meanwhile",
		    kt_mono_ms() - t0, saw_rebuilding, answered);
	acct_answers rebuilt = acct_snapshot(e.db, head - 1);
	assert_json_eq(rebuilt.accounts, live.accounts, "accounts() rebuilt vs live");
	assert_json_eq(rebuilt.types, live.types, "types() rebuilt vs live");
	assert_json_eq(rebuilt.rich, live.rich, "rich(500) rebuilt vs live");
	cr_assert_eq(rebuilt.position, live.position);
	acct_answers_free(&rebuilt);

	/* the definition changes (a column, a query): reload rebuilds; old queries answer and
	 * follow new events meanwhile; then the new query works */
	acct_write(&e, 1);
	reload_ok(e.db);
	saw_rebuilding = 0;
	answered = 0;
	t0 = kt_mono_ms();
	for (;;) {
		kappa_view_status st = status_of(e.db, "acct");
		char *out = NULL;
		int qrc = kappa_query(e.db, "acct", "largest", NULL, KAPPA_NO_POSITION, 1000, &out,
				      &err);
		kappa_free(out);
		if (st.state == KAPPA_VIEW_LIVE && qrc == KAPPA_OK)
			break;
		cr_assert(st.state == KAPPA_VIEW_REBUILDING || st.state == KAPPA_VIEW_LIVE,
			  "acct is %s after its definition changed", state_name(st.state));
		cr_assert(kt_mono_ms() - t0 < WAIT_MS,
			  "the new definition never answered largest()");
		if (st.state == KAPPA_VIEW_REBUILDING) {
			saw_rebuilding = 1;
			if (answered < 20) {
				acct_workload(e.db, &w, 1);
				assert_accounts(e.db, &w, kappa_head(e.db) - 1,
						"accounts() of the old version during the rebuild");
				answered++;
			}
		}
		kt_sleep_ms(1);
	}
	wait_live(e.db, "acct");
	cr_log_info("definition change: %" PRId64 " ms, rebuilding seen %d, %d appends meanwhile",
		    kt_mono_ms() - t0, saw_rebuilding, answered);
	acct_workload(e.db, &w, 50);
	head = kappa_head(e.db);
	assert_accounts(e.db, &w, head - 1, "accounts() of the new version");
	json_t *j = query_ok(e.db, "acct", "largest", NULL, head - 1);
	json_t *want = acct_expected(&w, 1);
	assert_json_eq(rows_of(j), want, "largest() of the new version vs the model");
	json_decref(want);
	json_decref(j);
	acct_answers_free(&live);
	env_done(&e);
}

/* A rebuild asked for while a changed definition is being built uses the new definition. */
static const char BIG_V1[] = "-- @view big\n"
			     "CREATE TABLE n (stream TEXT PRIMARY KEY, k INTEGER NOT NULL);\n"
			     "-- @on Deposited\n"
			     "INSERT INTO n (stream, k) VALUES (:stream, 1)\n"
			     "  ON CONFLICT(stream) DO UPDATE SET k = k + 1;\n"
			     "-- @query total()\n"
			     "SELECT sum(k) AS k FROM n;\n";

Test(views, a_rebuild_requested_while_a_new_definition_builds_keeps_the_new_definition)
{
	env e;
	env_init(&e, "views-rebuild-race");
	e.o.fsync = KAPPA_FSYNC_NEVER;
	write_view(&e, "big.sql", BIG_V1);
	env_open(&e);
	kappa_event_in ev[100];
	for (int i = 0; i < 100; i++)
		ev[i] = evx("Deposited", "{\"n\":1}", NULL, NULL);
	for (int i = 0; i < 600; i++) {
		char stream[32];
		snprintf(stream, sizeof(stream), "b-%d", i % 50);
		append_ok(e.db, stream, ev, 100);
	}
	uint64_t head = kappa_head(e.db);
	wait_live(e.db, "big");

	char v2[2048];
	snprintf(v2, sizeof(v2), "%s-- @query streams()\nSELECT count(*) AS c FROM n;\n", BIG_V1);
	write_view(&e, "big.sql", v2);
	reload_ok(e.db);
	/* the new version is being built */
	int64_t t0 = kt_mono_ms();
	kappa_view_status st;
	for (;;) {
		st = status_of(e.db, "big");
		if (st.state == KAPPA_VIEW_REBUILDING && st.rebuild_position > 0)
			break;
		cr_assert(st.state == KAPPA_VIEW_REBUILDING,
			  "the rebuild of %" PRIu64 " events ended before it was seen (%s)", head,
			  state_name(st.state));
		cr_assert_lt(kt_mono_ms() - t0, WAIT_MS);
		kt_sleep_ms(1);
	}
	cr_log_info("kappa_view_rebuild at %" PRIu64 " of %" PRIu64 " rebuilt", st.rebuild_position,
		    head);
	kappa_err err;
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_view_rebuild(e.db, "big", &err), KAPPA_OK, "%s", err.msg);
	wait_live(e.db, "big");
	t0 = kt_mono_ms();
	int rc;
	while ((rc = query_rc(e.db, "big", "streams", NULL, KAPPA_NO_POSITION, 1000, &err)) !=
	       KAPPA_OK) {
		cr_assert_lt(kt_mono_ms() - t0, 5000,
			     "big went live after the rebuild but streams(), from its new "
			     "definition, does not answer (%s: %s): the old definition was rebuilt",
			     kappa_strerror(rc), err.msg);
		kt_sleep_ms(5);
	}
	json_t *j = query_ok(e.db, "big", "streams", NULL, head - 1);
	cr_assert_eq(col_int(json_array_get(rows_of(j), 0), "c"), 50);
	json_decref(j);
	j = query_ok(e.db, "big", "total", NULL, head - 1);
	cr_assert_eq(col_int(json_array_get(rows_of(j), 0), "k"), (int64_t)head);
	json_decref(j);
	env_done(&e);
}

/* ==== 6. restarts ==============================================================================
 */

static void
deposit_many(kappa_db *db, tallies *t, int n, uint64_t *rng)
{
	for (int i = 0; i < n; i++) {
		char stream[32];
		snprintf(stream, sizeof(stream), "r-%d", (int)(kt_rng_next(rng) % 5));
		int64_t amount = (int64_t)(kt_rng_next(rng) % 100);
		append_n(db, stream, "Deposited", amount);
		tally_add(t, stream, amount);
	}
}

static void
rm_view_db(const env *e, const char *view)
{
	static const char *const suffix[] = {"", "-wal", "-shm"};
	char path[4400];
	view_db_path(e, view, "", path, sizeof(path));
	struct stat sb;
	cr_assert_eq(stat(path, &sb), 0, "%s does not exist: views should live there", path);
	for (int i = 0; i < 3; i++) {
		view_db_path(e, view, suffix[i], path, sizeof(path));
		cr_assert(unlink(path) == 0 || errno == ENOENT, "unlink %s", path);
	}
}

/* Assert 'seen' lists each handled position once: no event applied twice or skipped. */
static void
assert_seen_all(kappa_db *db)
{
	uint64_t head = kappa_head(db);
	json_t *j = query_ok(db, "counts", "seen", NULL, head - 1);
	json_t *rows = rows_of(j);
	cr_assert_eq(json_array_size(rows), head, "seen holds %zu positions, the log %" PRIu64,
		     json_array_size(rows), head);
	for (size_t i = 0; i < head; i++)
		cr_assert_eq(col_int(json_array_get(rows, i), "position"), (int64_t)i);
	json_decref(j);
}

Test(views, a_restart_continues_from_the_checkpoint_and_a_deleted_view_is_rebuilt)
{
	env e;
	env_init(&e, "views-restart");
	write_view(&e, "counts.sql", COUNTS_SQL);
	env_open(&e);
	tallies t;
	memset(&t, 0, sizeof(t));
	uint64_t rng = 99;
	deposit_many(e.db, &t, 300, &rng);
	assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);

	/* closing right after appends, reopening: nothing counted twice, nothing lost */
	deposit_many(e.db, &t, 50, &rng);
	env_close(&e);
	env_open(&e);
	assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);
	kappa_view_status st = wait_live(e.db, "counts");
	cr_assert_eq(st.position, kappa_head(e.db));
	deposit_many(e.db, &t, 100, &rng);
	assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);
	assert_seen_all(e.db);

	/* several reopens in a row with no events between */
	for (int i = 0; i < 3; i++) {
		env_close(&e);
		env_open(&e);
		assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);
	}

	/* the view's database deleted: rebuilt from the log at open */
	env_close(&e);
	rm_view_db(&e, "counts");
	env_open(&e);
	assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);
	assert_seen_all(e.db);
	wait_live(e.db, "counts");
	deposit_many(e.db, &t, 20, &rng);
	assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);

	/* the definition changed while closed: rebuilt at open; the new query answers */
	env_close(&e);
	char v2[4096];
	snprintf(v2, sizeof(v2), "%s-- @query streams()\nSELECT count(*) AS n FROM counts;\n",
		 COUNTS_SQL);
	write_view(&e, "counts.sql", v2);
	env_open(&e);
	int64_t t0 = kt_mono_ms();
	kappa_err err;
	while (query_rc(e.db, "counts", "streams", NULL, KAPPA_NO_POSITION, 1000, &err) !=
	       KAPPA_OK) {
		cr_assert_lt(kt_mono_ms() - t0, WAIT_MS, "streams() never answered: %s", err.msg);
		kt_sleep_ms(5);
	}
	wait_live(e.db, "counts");
	json_t *j = query_ok(e.db, "counts", "streams", NULL, kappa_head(e.db) - 1);
	cr_assert_eq(col_int(json_array_get(rows_of(j), 0), "n"), (int64_t)t.n);
	json_decref(j);
	assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);
	assert_seen_all(e.db);
	env_done(&e);
}

Test(views, a_removed_file_stops_its_view_and_a_restored_one_catches_up)
{
	env e;
	env_init(&e, "views-stop");
	write_view(&e, "counts.sql", COUNTS_SQL);
	write_view(&e, "good.sql", GOOD_SQL);
	env_open(&e);
	tallies t;
	memset(&t, 0, sizeof(t));
	uint64_t rng = 5;
	deposit_many(e.db, &t, 50, &rng);
	assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);
	wait_live(e.db, "counts");

	remove_view(&e, "counts.sql");
	reload_ok(e.db);
	kappa_view_status st = wait_state(e.db, "counts", KAPPA_VIEW_STOPPED);
	uint64_t stopped_at = st.position;
	deposit_many(e.db, &t, 30, &rng);
	assert_good_answers(e.db, "while-stopped");
	tally_add(&t, "while-stopped", 1);
	kt_sleep_ms(200);
	st = status_of(e.db, "counts");
	cr_assert_eq(st.state, KAPPA_VIEW_STOPPED);
	cr_assert_eq(st.position, stopped_at, "a stopped view moved from %" PRIu64 " to %" PRIu64,
		     stopped_at, st.position);
	status_list l = list_views(e.db);
	cr_assert_eq(l.n, 2, "a stopped view is still listed (%zu views)", l.n);

	/* stays stopped across a restart (the file is still gone) */
	env_close(&e);
	env_open(&e);
	kappa_err err;
	memset(&err, 0, sizeof(err));
	kappa_view_status st2;
	int rc = kappa_view_status_get(e.db, "counts", &st2, &err);
	if (rc == KAPPA_OK)
		cr_assert_neq(st2.state, KAPPA_VIEW_LIVE, "a view without a file is live");

	write_view(&e, "counts.sql", COUNTS_SQL);
	reload_ok(e.db);
	wait_live(e.db, "counts");
	assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);
	assert_seen_all(e.db);
	env_done(&e);
}

/* ==== 7. ad-hoc SQL and errors ================================================================ */

static const char SLOW_SQL[] = "-- @view slow\n"
			       "CREATE TABLE t (x INTEGER);\n"
			       "-- @query forever()\n"
			       "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
			       "SELECT count(*) AS n FROM c;\n"
			       "-- @query plus(a)\n"
			       "SELECT :a + 1 AS v;\n";

#define RUNAWAY                                                                                    \
	"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c"

Test(views, ad_hoc_sql_is_read_only_time_limited_and_row_limited)
{
	env e;
	env_init(&e, "views-sql");
	write_view(&e, "counts.sql", COUNTS_SQL);
	env_open(&e);
	tallies t;
	memset(&t, 0, sizeof(t));
	for (int i = 0; i < 50; i++) {
		char stream[32];
		snprintf(stream, sizeof(stream), "q-%02d", i);
		append_n(e.db, stream, "Deposited", i);
		tally_add(&t, stream, i);
	}
	assert_totals(e.db, "counts", &t, kappa_head(e.db) - 1);
	kappa_db *db = e.db;

	json_t *j =
		sql_ok(db, "counts", "SELECT stream, total FROM counts ORDER BY stream", NULL, 0);
	cr_assert_eq(json_array_size(rows_of(j)), 50);
	cr_assert(json_is_false(json_object_get(j, "truncated")));
	cr_assert_eq(pos_of(j), 49);
	cr_assert_str_eq(col_str(json_array_get(rows_of(j), 7), "stream"), "q-07");
	json_decref(j);
	j = sql_ok(db, "counts", "SELECT :a + 1 AS v, :s AS s", "{\"a\":41,\"s\":\"x\"}", 0);
	cr_assert_eq(col_int(json_array_get(rows_of(j), 0), "v"), 42);
	cr_assert_str_eq(col_str(json_array_get(rows_of(j), 0), "s"), "x");
	json_decref(j);

	/* max_rows */
	j = sql_ok(db, "counts", "SELECT stream FROM counts ORDER BY stream", NULL, 10);
	cr_assert_eq(json_array_size(rows_of(j)), 10);
	cr_assert(json_is_true(json_object_get(j, "truncated")), "10 of 50 rows, not truncated");
	cr_assert_str_eq(col_str(json_array_get(rows_of(j), 9), "stream"), "q-09");
	json_decref(j);
	j = sql_ok(db, "counts", "SELECT stream FROM counts", NULL, 50);
	cr_assert_eq(json_array_size(rows_of(j)), 50);
	cr_assert(json_is_false(json_object_get(j, "truncated")), "exactly max_rows is truncated");
	json_decref(j);
	j = sql_ok(db, "counts",
		   "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 20000) "
		   "SELECT x FROM c",
		   NULL, 0);
	cr_assert_eq(json_array_size(rows_of(j)), 10000, "max_rows 0 gave %zu rows, not 10,000",
		     json_array_size(rows_of(j)));
	cr_assert(json_is_true(json_object_get(j, "truncated")));
	json_decref(j);

	/* refusals */
	char vacuum_into[4600], vacuum_sql[4700];
	snprintf(vacuum_into, sizeof(vacuum_into), "%s/copy.db", e.tmp);
	snprintf(vacuum_sql, sizeof(vacuum_sql), "VACUUM INTO '%s'", vacuum_into);
	const char *const refused[] = {
		"INSERT INTO counts VALUES ('evil', 1, 1)",
		"REPLACE INTO counts VALUES ('q-00', 1, 1)",
		"UPDATE counts SET total = 0",
		"DELETE FROM counts",
		"WITH x AS (SELECT 1) DELETE FROM counts",
		"CREATE TABLE evil (x)",
		"CREATE TEMP TABLE evil (x)",
		"CREATE INDEX evil ON counts (total)",
		"DROP TABLE counts",
		"ALTER TABLE counts ADD COLUMN evil TEXT",
		"ATTACH DATABASE ':memory:' AS evil",
		"DETACH DATABASE main",
		"PRAGMA user_version = 7",
		"PRAGMA journal_mode = DELETE",
		"PRAGMA query_only = 0",
		"SELECT load_extension('libnosuch')",
		"BEGIN",
		"BEGIN IMMEDIATE",
		"COMMIT",
		"SAVEPOINT s",
		"VACUUM",
		vacuum_sql,
		"SELECT 1; DELETE FROM counts",
		"SELEC 1",
		"",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		kappa_err err;
		int rc = sql_rc(db, "counts", refused[i], NULL, 0, 2000, &err);
		cr_expect_eq(rc, KAPPA_EINVAL,
			     "kappa_sql(\"%s\") returned %s (%s), expected invalid", refused[i],
			     kappa_strerror(rc), err.msg);
	}
	struct stat sb;
	cr_expect_neq(stat(vacuum_into, &sb), 0, "VACUUM INTO wrote %s", vacuum_into);
	/* nothing changed */
	assert_totals(db, "counts", &t, kappa_head(db) - 1);
	j = sql_ok(db, "counts", "SELECT name FROM sqlite_master WHERE name LIKE 'evil%'", NULL, 0);
	cr_assert_eq(json_array_size(rows_of(j)), 0, "a refused statement created something");
	json_decref(j);
	j = sql_ok(db, "counts", "SELECT count(*) AS n FROM counts", NULL, 0);
	cr_assert_eq(col_int(json_array_get(rows_of(j), 0), "n"), 50);
	json_decref(j);
	/* and the view still applies events */
	kappa_append_result r = append_n(db, "q-00", "Deposited", 1000);
	tally_add(&t, "q-00", 1000);
	assert_totals(db, "counts", &t, r.last_position);

	/* the time limit */
	kappa_err err;
	int64_t t0 = kt_mono_ms();
	int rc = sql_rc(db, "counts", RUNAWAY, NULL, 0, 300, &err);
	int64_t took = kt_mono_ms() - t0;
	cr_assert_eq(rc, KAPPA_ETIMEOUT, "a runaway CTE with a 300 ms limit: %s (%s)",
		     kappa_strerror(rc), err.msg);
	cr_assert(took >= 250 && took < 3000,
		  "a 300 ms limit stopped the query after %" PRId64 " ms", took);
	t0 = kt_mono_ms();
	rc = sql_rc(db, "counts", RUNAWAY, NULL, 0, 0, &err);
	took = kt_mono_ms() - t0;
	cr_assert_eq(rc, KAPPA_ETIMEOUT, "a runaway CTE with the default limit: %s (%s)",
		     kappa_strerror(rc), err.msg);
	cr_assert(took >= 1500 && took < 8000,
		  "the default 2 s limit stopped the query after %" PRId64 " ms", took);
	/* the connection is usable after a timeout */
	j = sql_ok(db, "counts", "SELECT count(*) AS n FROM counts", NULL, 0);
	json_decref(j);
	env_done(&e);
}

Test(views, query_errors_unknown_names_bad_params_and_timeouts)
{
	env e;
	env_init(&e, "views-qerr");
	write_view(&e, "counts.sql", COUNTS_SQL);
	write_view(&e, "slow.sql", SLOW_SQL);
	env_open(&e);
	kappa_db *db = e.db;
	append_n(db, "a", "Deposited", 1);
	assert_totals(db, "counts", &(tallies){{{"a", 1, 1}}, 1}, 0);
	kappa_err err;

	cr_assert_eq(query_rc(db, "nosuch", "totals", NULL, KAPPA_NO_POSITION, 1000, &err),
		     KAPPA_ENOTFOUND);
	cr_assert_eq(query_rc(db, "counts", "nosuch", NULL, KAPPA_NO_POSITION, 1000, &err),
		     KAPPA_ENOTFOUND);
	cr_assert_eq(sql_rc(db, "nosuch", "SELECT 1", NULL, 0, 1000, &err), KAPPA_ENOTFOUND);
	static const char *const bad_params[] = {"{\"stream\":", "[\"a\"]", "\"a\"", "42",
						 "{\"stream\":\"a\"} trailing"};
	for (size_t i = 0; i < sizeof(bad_params) / sizeof(bad_params[0]); i++) {
		int rc = query_rc(db, "counts", "by_stream", bad_params[i], KAPPA_NO_POSITION, 1000,
				  &err);
		cr_expect_eq(rc, KAPPA_EINVAL, "params %s: %s, expected invalid", bad_params[i],
			     kappa_strerror(rc));
	}
	int rc = sql_rc(db, "counts", "SELECT :a AS a", "{oops", 0, 1000, &err);
	cr_expect_eq(rc, KAPPA_EINVAL, "kappa_sql with bad params: %s", kappa_strerror(rc));

	/* parameters: numbers as numbers, booleans as 0/1 */
	json_t *j = query_ok(db, "slow", "plus", "{\"a\":41}", KAPPA_NO_POSITION);
	cr_assert_eq(col_int(json_array_get(rows_of(j), 0), "v"), 42);
	json_decref(j);
	j = query_ok(db, "slow", "plus", "{\"a\":true}", KAPPA_NO_POSITION);
	cr_assert_eq(col_int(json_array_get(rows_of(j), 0), "v"), 2);
	json_decref(j);
	j = query_ok(db, "slow", "plus", "{\"a\":1.5}", KAPPA_NO_POSITION);
	cr_assert(json_is_real(col(json_array_get(rows_of(j), 0), "v")));
	cr_assert_float_eq(json_real_value(col(json_array_get(rows_of(j), 0), "v")), 2.5, 1e-12);
	json_decref(j);

	/* a position never reached */
	int64_t t0 = kt_mono_ms();
	rc = query_rc(db, "counts", "totals", NULL, kappa_head(db) + 1000, 300, &err);
	int64_t took = kt_mono_ms() - t0;
	cr_assert_eq(rc, KAPPA_ETIMEOUT, "min_position past the head: %s", kappa_strerror(rc));
	cr_assert(took >= 250 && took < 3000, "a 300 ms wait returned after %" PRId64 " ms", took);

	/* a named query past its time limit */
	t0 = kt_mono_ms();
	rc = query_rc(db, "slow", "forever", NULL, KAPPA_NO_POSITION, 300, &err);
	took = kt_mono_ms() - t0;
	cr_assert_eq(rc, KAPPA_ETIMEOUT, "a runaway named query: %s (%s)", kappa_strerror(rc),
		     err.msg);
	cr_assert_lt(took, 10000, "a runaway named query stopped after %" PRId64 " ms", took);
	j = query_ok(db, "slow", "plus", "{\"a\":1}", KAPPA_NO_POSITION);
	json_decref(j);

	/* no views at all */
	env_close(&e);
	e.o.views_dir = NULL;
	env_open(&e);
	cr_assert_eq(query_rc(e.db, "counts", "totals", NULL, KAPPA_NO_POSITION, 1000, &err),
		     KAPPA_ENOTFOUND);
	status_list l = list_views(e.db);
	cr_assert_eq(l.n, 0);
	env_done(&e);
}

Test(views, null_out_pointers_are_invalid)
{
	env e;
	env_init(&e, "views-null");
	write_view(&e, "counts.sql", COUNTS_SQL);
	env_open(&e);
	kappa_err err;
	memset(&err, 0, sizeof(err));
	cr_assert_eq(
		kappa_query(e.db, "counts", "totals", NULL, KAPPA_NO_POSITION, 1000, NULL, &err),
		KAPPA_EINVAL);
	cr_assert_eq(kappa_sql(e.db, "counts", "SELECT 1", NULL, 0, 1000, NULL, &err),
		     KAPPA_EINVAL);
	cr_assert_eq(kappa_view_status_get(e.db, "counts", NULL, &err), KAPPA_EINVAL);
	kappa_free(NULL);
	env_done(&e);
}

/* ==== 8. SQLite values as JSON ============================================================== */

static const char TYPES_SQL[] =
	"-- @view types\n"
	"CREATE TABLE vals (position INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB,\n"
	"  z TEXT);\n"
	"-- @on Typed\n"
	"INSERT INTO vals VALUES (:position, :data->>'$.i', :data->>'$.r', :data->>'$.t',\n"
	"  CAST(:data->>'$.t' AS BLOB), :data->>'$.missing');\n"
	"-- @query vals()\n"
	"SELECT i, r, t, b, z, typeof(b) AS tb FROM vals ORDER BY position;\n"
	"-- @query literals()\n"
	"SELECT 42 AS i, -7 AS neg, 9007199254740993 AS big, 9223372036854775807 AS max,\n"
	"  -9223372036854775808 AS min, 1.5 AS r, 2.0 AS whole, 0.1 AS tenth,\n"
	"  3.141592653589793 AS pi, 1e300 AS huge, -2.5e-300 AS tiny, 'hi' AS t, '' AS empty,\n"
	"  'a\"b\\c' || char(10) || char(9) || char(1) || 'Zo\xc3\xab \xe2\x9c\x93' AS esc,\n"
	"  NULL AS z, x'00ff' AS b, x'' AS b0, x'000102' AS b3, x'fffefd7e' AS b4;\n"
	"-- @query echo(i, r, t, f)\n"
	"SELECT :i AS i, :r AS r, :t AS t, :f AS f, typeof(:i) AS ti, typeof(:r) AS tr,\n"
	"  typeof(:t) AS tt, typeof(:f) AS tf;\n";

static void
expect_int(json_t *row, const char *name, json_int_t want)
{
	json_t *v = col(row, name);
	if (!json_is_integer(v) || json_integer_value(v) != want) {
		char *d = dump(v);
		cr_expect(0, "%s: expected the integer %lld, got %s", name, (long long)want, d);
		free(d);
	}
}

static void
expect_real(json_t *row, const char *name, double want)
{
	json_t *v = col(row, name);
	if (!json_is_real(v) || json_real_value(v) != want) {
		char *d = dump(v);
		cr_expect(0, "%s: expected the real %.17g, got %s", name, want, d);
		free(d);
	}
}

static void
expect_str(json_t *row, const char *name, const char *want)
{
	json_t *v = col(row, name);
	if (!json_is_string(v) || strcmp(json_string_value(v), want) != 0) {
		char *d = dump(v);
		cr_expect(0, "%s: expected the string \"%s\", got %s", name, want, d);
		free(d);
	}
}

Test(views, sqlite_values_map_to_json_types)
{
	env e;
	env_init(&e, "views-types");
	write_view(&e, "types.sql", TYPES_SQL);
	env_open(&e);
	kappa_db *db = e.db;

	json_t *j = query_ok(db, "types", "literals", NULL, KAPPA_NO_POSITION);
	cr_assert_eq(json_array_size(rows_of(j)), 1);
	json_t *r = json_array_get(rows_of(j), 0);
	expect_int(r, "i", 42);
	expect_int(r, "neg", -7);
	expect_int(r, "big", 9007199254740993LL);
	expect_int(r, "max", INT64_MAX);
	expect_int(r, "min", INT64_MIN);
	expect_real(r, "r", 1.5);
	expect_real(r, "whole", 2.0);
	expect_real(r, "tenth", 0.1);
	expect_real(r, "pi", 3.141592653589793);
	expect_real(r, "huge", 1e300);
	expect_real(r, "tiny", -2.5e-300);
	expect_str(r, "t", "hi");
	expect_str(r, "empty", "");
	expect_str(r, "esc", "a\"b\\c\n\t\x01Zo\xc3\xab \xe2\x9c\x93");
	cr_expect(json_is_null(col(r, "z")), "NULL is not null");
	expect_str(r, "b", "AP8=");
	expect_str(r, "b0", "");
	expect_str(r, "b3", "AAEC");
	expect_str(r, "b4", "//79fg==");
	json_decref(j);

	/* the same through kappa_sql */
	j = sql_ok(db, "types",
		   "SELECT 7 AS i, 2.0 AS whole, 'x' AS t, NULL AS z, x'00ff' AS b, "
		   "1e999 AS inf",
		   NULL, 0);
	r = json_array_get(rows_of(j), 0);
	expect_int(r, "i", 7);
	expect_real(r, "whole", 2.0);
	expect_str(r, "t", "x");
	cr_expect(json_is_null(col(r, "z")));
	expect_str(r, "b", "AP8=");
	json_decref(j); /* inf: any valid JSON will do */

	/* values a handler stored from :data */
	kappa_event_in ev[2] = {
		evx("Typed", "{\"i\":-12,\"r\":0.25,\"t\":\"hi\"}", NULL, NULL),
		evx("Typed", "{\"i\":4611686018427387904,\"r\":-1e-7,\"t\":\"\\u00e9\\n\"}", NULL,
		    NULL),
	};
	kappa_append_result res = append_ok(db, "typed", ev, 2);
	j = query_ok(db, "types", "vals", NULL, res.last_position);
	cr_assert_eq(json_array_size(rows_of(j)), 2);
	r = json_array_get(rows_of(j), 0);
	expect_int(r, "i", -12);
	expect_real(r, "r", 0.25);
	expect_str(r, "t", "hi");
	expect_str(r, "b", "aGk=");
	expect_str(r, "tb", "blob");
	cr_expect(json_is_null(col(r, "z")));
	r = json_array_get(rows_of(j), 1);
	expect_int(r, "i", 4611686018427387904LL);
	expect_real(r, "r", -1e-7);
	expect_str(r, "t", "\xc3\xa9\n");
	expect_str(r, "b", "w6kK");
	json_decref(j);

	/* parameters in: strings as text, numbers as numbers, booleans as 1 and 0 */
	j = query_ok(db, "types", "echo", "{\"i\":42,\"r\":2.5,\"t\":\"h\\u00e9\\\"\",\"f\":false}",
		     KAPPA_NO_POSITION);
	r = json_array_get(rows_of(j), 0);
	expect_int(r, "i", 42);
	expect_real(r, "r", 2.5);
	expect_str(r, "t", "h\xc3\xa9\"");
	expect_int(r, "f", 0);
	expect_str(r, "ti", "integer");
	expect_str(r, "tr", "real");
	expect_str(r, "tt", "text");
	expect_str(r, "tf", "integer");
	json_decref(j);
	env_done(&e);
}
