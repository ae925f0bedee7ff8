/*
 * view_apply.c -- benchmark of views: how fast a view's projector applies the log, against
 * raw SQLite doing the same inserts; how long a rebuild of a large view takes; and named
 * point queries.
 *
 * 1. Apply rate. A log of N events is written with no view (fsync never, 100 events per
 *    kappa_append) and closed. Then the view's file is written and the database reopened with
 *    views_dir set; from just before kappa_open until the view's status shows it live at the
 *    head (polled every 5 ms) is the time, and events/s = N / time. Two views:
 *     insert: N Posted events, one INSERT INTO posts each;
 *     fanout: A * F Followed events (A authors, F followers each) filling a follows table,
 *             then N - A * F Posted events, each an INSERT ... SELECT of F timeline rows.
 *    Baseline, in the same run: the events read back with kappa_read_log are applied to a
 *    plain SQLite database (WAL, synchronous=NORMAL, the view's own DDL and handler SQL,
 *    prepared once, with the same :data and :time text bound) in transactions of 10,000
 *    events, the projector's largest. The :time text is formatted before the clock starts, so
 *    the baseline is SQLite's work alone. Ratio = kappa / raw.
 * 2. Rebuild. The insert view goes live on a log of R events; then kappa_view_rebuild, and
 *    the time until the status is live again at the head, having been seen rebuilding.
 * 3. Queries. On that view, "-- @query post(id)" through kappa_query (no min_position) with
 *    random ids, from each count of --threads threads (default 2) for --seconds.
 * Row counts of kappa's views and of the baselines are checked against what the events imply.
 *
 * Output: a table on stdout, then one JSON object per figure, one per line, and nothing
 * after them. Progress goes to stderr.
 *
 * Usage: view_apply [--dir DIR] [--seconds S] [--quick] [--threads 2] [--events N]
 *                   [--rebuild-events N] [--followers F]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "benchlib.h"
#include "base/clock.h"
#include "kappa.h"
#include "store/store.h" /* only for db->log, whose statistics kb_team_run reads */

#define APPEND_EVENTS 100	/* events per kappa_append while filling */
#define TXN_EVENTS 10000	/* events per baseline transaction: the projector's largest */
#define POLL_NS 5000000u	/* between two kappa_view_status_get */
#define STALL_NS 60000000000ull /* no progress in a view's status this long: it is stuck */
#define POSTS_PER_AUTHOR 200	/* authors = events / this */
#define DATA_MAX 256		/* bytes of one event's JSON data */
#define TARGET_RATIO 0.70	/* kappa keeps at least this share of raw SQLite's rate */
#define QUERY_TIMEOUT_MS 2000

/* ---- the views ---------------------------------------------------------------------- */

/* A view: its DDL, handler SQL and queries, kept apart so the baseline runs the same SQL. */
typedef struct view_spec {
	const char *kind; /* "insert" or "fanout" */
	const char *name; /* the view's name and file name */
	const char *ddl;
	const char *on_followed; /* NULL: no Followed handler */
	const char *on_posted;
	const char *queries; /* NULL: none */
} view_spec;

static const view_spec insert_view = {
	"insert",
	"posts",
	"CREATE TABLE posts (id INTEGER PRIMARY KEY, author INTEGER NOT NULL, body TEXT NOT NULL,\n"
	"  at TEXT NOT NULL);\n",
	NULL,
	"INSERT INTO posts (id, author, body, at)\n"
	"  VALUES (:data->>'$.id', :data->>'$.author', :data->>'$.body', :time);\n",
	"-- @query post(id)\n"
	"SELECT * FROM posts WHERE id = :id;\n",
};

static const view_spec fanout_view = {
	"fanout",
	"timeline",
	"CREATE TABLE follows (follower INTEGER NOT NULL, followee INTEGER NOT NULL,\n"
	"  PRIMARY KEY (followee, follower)) WITHOUT ROWID;\n"
	"CREATE TABLE timeline (owner INTEGER NOT NULL, post_id INTEGER NOT NULL,\n"
	"  at TEXT NOT NULL, PRIMARY KEY (owner, post_id)) WITHOUT ROWID;\n",
	"INSERT INTO follows (follower, followee)\n"
	"  VALUES (:data->>'$.follower', :data->>'$.followee');\n",
	"INSERT INTO timeline (owner, post_id, at)\n"
	"  SELECT follower, :data->>'$.id', :time FROM follows\n"
	"  WHERE followee = :data->>'$.author';\n",
	NULL,
};

/* Write the definition file of 'v' into the directory 'vdir' (created). */
static void
write_view_file(const char *vdir, const view_spec *v)
{
	char path[PATH_MAX + 128];
	if (mkdir(vdir, 0755) < 0)
		kb_die("mkdir %s: %s", vdir, strerror(errno));
	snprintf(path, sizeof(path), "%s/%s.sql", vdir, v->name);
	FILE *f = fopen(path, "w");
	if (!f) {
		kb_die("cannot create %s: %s", path, strerror(errno));
		return; /* not reached: for analysers that do not know kb_die */
	}
	fprintf(f, "-- @view %s\n%s", v->name, v->ddl);
	if (v->on_followed)
		fprintf(f, "\n-- @on Followed\n%s", v->on_followed);
	fprintf(f, "\n-- @on Posted\n%s", v->on_posted);
	if (v->queries)
		fprintf(f, "\n%s", v->queries);
	if (fclose(f) != 0)
		kb_die("cannot write %s: %s", path, strerror(errno));
}

/* ---- the events --------------------------------------------------------------------- */

/* What a log holds: A * F Followed events (author a is followed by users a+1 .. a+F, modulo
 * A), then the Posted events, post i by a pseudo-random author. */
typedef struct workload {
	uint64_t events;
	uint64_t authors;
	uint64_t followers; /* per author; 0: no Followed events */
	uint64_t follows;   /* Followed events: authors * followers */
	uint64_t posts;	    /* events - follows */
} workload;

static workload
workload_make(uint64_t events, uint64_t followers)
{
	workload w = {.events = events, .followers = followers};
	w.authors = events / POSTS_PER_AUTHOR;
	if (w.authors < followers + 1)
		w.authors = followers + 1; /* followers are other authors */
	w.follows = w.authors * followers;
	if (w.follows >= events)
		kb_die("%" PRIu64 " events are too few for %" PRIu64 " authors with %" PRIu64
		       " followers each",
		       events, w.authors, followers);
	w.posts = events - w.follows;
	return w;
}

/* splitmix64: the author of a post. */
static uint64_t
mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The type and JSON data of event 'i' of 'w'. */
static const char *
event_make(const workload *w, uint64_t i, char data[DATA_MAX])
{
	if (i < w->follows) {
		uint64_t followee = i / w->followers;
		uint64_t follower = (followee + 1 + i % w->followers) % w->authors;
		snprintf(data, DATA_MAX, "{\"follower\":%" PRIu64 ",\"followee\":%" PRIu64 "}",
			 follower, followee);
		return "Followed";
	}
	uint64_t id = i - w->follows, author = mix64(id) % w->authors;
	snprintf(data, DATA_MAX,
		 "{\"id\":%" PRIu64 ",\"author\":%" PRIu64 ",\"body\":\"post %" PRIu64
		 " by %" PRIu64 ": lorem ipsum dolor sit amet, consectetur adipiscing\"}",
		 id, author, id, author);
	return "Posted";
}

/* The events of a log as read back, for the baseline: data text and the :time text. */
typedef struct copy_event {
	int posted; /* Posted, else Followed */
	size_t off, len;
	char iso[KP_TIME_TEXT];
} copy_event;

typedef struct log_copy {
	copy_event *ev;
	size_t n, cap;
	char *text;
	size_t text_len, text_cap;
} log_copy;

/* ISO-8601 UTC with milliseconds, as the projector binds :time (src/view/gen.c). */
static void
copy_add(log_copy *c, const kappa_event *e)
{
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 65536;
		c->ev = realloc(c->ev, c->cap * sizeof(*c->ev));
		if (!c->ev)
			kb_die("out of memory for the events read back");
	}
	if (c->text_len + e->data_len > c->text_cap) {
		c->text_cap = c->text_cap ? c->text_cap * 2 : 16u << 20;
		if (c->text_cap < c->text_len + e->data_len)
			c->text_cap = c->text_len + e->data_len;
		c->text = realloc(c->text, c->text_cap);
		if (!c->text)
			kb_die("out of memory for the events read back");
	}
	copy_event *ce = &c->ev[c->n++];
	ce->posted = e->type_len == 6 && !memcmp(e->type, "Posted", 6);
	ce->off = c->text_len;
	ce->len = e->data_len;
	memcpy(c->text + c->text_len, e->data, e->data_len);
	c->text_len += e->data_len;
	kp_format_time_ms(e->time_ms, ce->iso);
}

static void
copy_free(log_copy *c)
{
	free(c->ev);
	free(c->text);
	memset(c, 0, sizeof(*c));
}

/* ---- kappa -------------------------------------------------------------------------- */

/* kappa's notices (recovery, a view that failed to load or failed) go to stderr. */
static void
notice(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "view_apply: kappa: %s\n", line);
}

static kappa_db *
open_db(const char *data, const char *views_dir)
{
	kappa_options ko;
	kappa_options_init(&ko);
	ko.fsync = KAPPA_FSYNC_NEVER;
	ko.views_dir = views_dir;
	ko.notice = notice;
	kappa_db *db;
	kappa_err err;
	int rc = kappa_open(data, &ko, &db, &err);
	if (rc != KAPPA_OK)
		kb_die("kappa_open %s: %s (%s)", data, err.msg, kappa_strerror(rc));
	return db;
}

/* Append the events of 'w' to a new database at 'data' with no views, APPEND_EVENTS per
 * kappa_append; read them back into 'copy' unless it is NULL. Returns the events/s of the
 * appends. */
static double
fill(const char *data, const workload *w, log_copy *copy)
{
	kappa_db *db = open_db(data, NULL);
	kappa_event_in evs[APPEND_EVENTS];
	static char bufs[APPEND_EVENTS][DATA_MAX];
	char stream[32];
	kappa_err err;
	uint64_t t0 = kb_mono_ns();
	for (uint64_t i = 0; i < w->events; i += APPEND_EVENTS) {
		size_t n = w->events - i < APPEND_EVENTS ? (size_t)(w->events - i) : APPEND_EVENTS;
		for (size_t k = 0; k < n; k++) {
			memset(&evs[k], 0, sizeof(evs[k]));
			evs[k].type = event_make(w, i + k, bufs[k]);
			evs[k].data = bufs[k];
		}
		snprintf(stream, sizeof(stream), "bench-%" PRIu64, (i / APPEND_EVENTS) % 16);
		int rc = kappa_append(db, stream, KAPPA_ANY, NULL, evs, n, NULL, 0, NULL, &err);
		if (rc != KAPPA_OK)
			kb_die("kappa_append of events %" PRIu64 "..: %s (%s)", i, err.msg,
			       kappa_strerror(rc));
	}
	double rate = (double)w->events * 1e9 / (double)(kb_mono_ns() - t0);
	if (kappa_head(db) != w->events)
		kb_die("the head is %" PRIu64 " after appending %" PRIu64 " events", kappa_head(db),
		       w->events);
	if (copy) {
		kappa_iter *it;
		kappa_event e;
		int rc = kappa_read_log(db, 0, UINT64_MAX, &it, &err);
		if (rc != KAPPA_OK)
			kb_die("kappa_read_log: %s (%s)", err.msg, kappa_strerror(rc));
		while ((rc = kappa_iter_next(it, &e, &err)) == 1)
			copy_add(copy, &e);
		if (rc < 0)
			kb_die("kappa_iter_next: %s (%s)", err.msg, kappa_strerror(rc));
		kappa_iter_free(it);
		if (copy->n != w->events)
			kb_die("read back %zu events of %" PRIu64, copy->n, w->events);
	}
	kappa_close(db);
	return rate;
}

static void
die_status(const kappa_view_status *st, uint64_t head, const char *why)
{
	kb_die("view %s %s: state %s, position %" PRIu64 " of head %" PRIu64
	       ", rebuild_position %" PRIu64 ", error_position %" PRIu64
	       ", error_type '%s', error '%s', load_error '%s'",
	       st->name, why, kappa_view_state_name(st->state), st->position, head,
	       st->rebuild_position, st->error_position, st->error_type, st->error, st->load_error);
}

/* Poll the status of 'view' every POLL_NS until it is live at position 'head' (with
 * 'rebuild': and has been seen rebuilding first). Returns when it saw that (kb_mono_ns).
 * Dies, with the status, when the view fails, stops, or its status stays the same for
 * STALL_NS. */
static uint64_t
wait_live(kappa_db *db, const char *view, uint64_t head, bool rebuild)
{
	kappa_view_status st, last;
	kappa_err err;
	bool rebuilding = false;
	uint64_t changed = kb_mono_ns();
	memset(&last, 0, sizeof(last));
	last.state = (kappa_view_state)-1;
	for (;;) {
		int rc = kappa_view_status_get(db, view, &st, &err);
		uint64_t now = kb_mono_ns();
		if (rc != KAPPA_OK)
			kb_die("kappa_view_status_get %s: %s (%s)", view, err.msg,
			       kappa_strerror(rc));
		if (st.state == KAPPA_VIEW_REBUILDING)
			rebuilding = true;
		if (st.state == KAPPA_VIEW_FAILED || st.state == KAPPA_VIEW_STOPPED)
			die_status(&st, head, "did not reach the head");
		if (st.state == KAPPA_VIEW_LIVE && st.position == head && (!rebuild || rebuilding))
			return now;
		if (st.state != last.state || st.position != last.position ||
		    st.rebuild_position != last.rebuild_position) {
			last = st;
			changed = now;
		} else if (now - changed > STALL_NS) {
			die_status(&st, head, "made no progress for 60 s");
		}
		kb_sleep_ns(POLL_NS);
	}
}

/* count(*) of 'table' in 'view' through kappa_sql. */
static uint64_t
kappa_count(kappa_db *db, const char *view, const char *table)
{
	char sql[128], *json = NULL;
	kappa_err err;
	snprintf(sql, sizeof(sql), "SELECT count(*) AS n FROM %s", table);
	int rc = kappa_sql(db, view, sql, NULL, 0, 10000, &json, &err);
	if (rc != KAPPA_OK)
		kb_die("kappa_sql %s on %s: %s (%s)", sql, view, err.msg, kappa_strerror(rc));
	const char *p = strstr(json, "\"n\":");
	if (!p)
		kb_die("kappa_sql %s on %s answered %s", sql, view, json);
	uint64_t n = strtoull(p + 4, NULL, 10);
	kappa_free(json);
	return n;
}

/* ---- raw SQLite --------------------------------------------------------------------- */

static void
raw_exec(sqlite3 *c, const char *sql, const char *path)
{
	char *msg = NULL;
	if (sqlite3_exec(c, sql, NULL, NULL, &msg) != SQLITE_OK)
		kb_die("sqlite %s: %.60s: %s", path, sql, msg ? msg : sqlite3_errmsg(c));
}

/* A prepared handler statement and where :data and :time go (0: not used). */
typedef struct raw_stmt {
	sqlite3_stmt *st;
	int data, time;
} raw_stmt;

static void
raw_prepare(sqlite3 *c, const char *sql, raw_stmt *r, const char *path)
{
	const char *tail = NULL;
	if (sqlite3_prepare_v3(c, sql, -1, SQLITE_PREPARE_PERSISTENT, &r->st, &tail) != SQLITE_OK)
		kb_die("sqlite %s: prepare: %s", path, sqlite3_errmsg(c));
	r->data = sqlite3_bind_parameter_index(r->st, ":data");
	r->time = sqlite3_bind_parameter_index(r->st, ":time");
}

static void
raw_apply_one(sqlite3 *c, raw_stmt *r, const log_copy *lc, const copy_event *e, const char *path)
{
	if (r->data)
		sqlite3_bind_text(r->st, r->data, lc->text + e->off, (int)e->len, SQLITE_STATIC);
	if (r->time)
		sqlite3_bind_text(r->st, r->time, e->iso, -1, SQLITE_STATIC);
	int s;
	while ((s = sqlite3_step(r->st)) == SQLITE_ROW)
		;
	if (s != SQLITE_DONE)
		kb_die("sqlite %s: insert: %s", path, sqlite3_errmsg(c));
	sqlite3_reset(r->st);
	sqlite3_clear_bindings(r->st);
}

static uint64_t
raw_count(sqlite3 *c, const char *table, const char *path)
{
	char sql[128];
	sqlite3_stmt *st;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	if (sqlite3_prepare_v2(c, sql, -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		kb_die("sqlite %s: %s: %s", path, sql, sqlite3_errmsg(c));
	uint64_t n = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Apply 'lc' with the SQL of 'v' to a new SQLite database at 'path'. Returns the seconds from
 * the open to the last commit; the row counts of 'tables' go to 'rows'. */
static double
raw_apply(const char *path, const view_spec *v, const log_copy *lc, const char *const *tables,
	  uint64_t *rows, size_t ntables)
{
	sqlite3 *c = NULL;
	raw_stmt posted = {NULL, 0, 0}, followed = {NULL, 0, 0};
	uint64_t t0 = kb_mono_ns();
	if (sqlite3_open_v2(path, &c,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK)
		kb_die("sqlite %s: open: %s", path, c ? sqlite3_errmsg(c) : "out of memory");
	raw_exec(c, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-65536;",
		 path);
	raw_exec(c, v->ddl, path);
	raw_prepare(c, v->on_posted, &posted, path);
	if (v->on_followed)
		raw_prepare(c, v->on_followed, &followed, path);
	for (size_t i = 0; i < lc->n; i++) {
		if (i % TXN_EVENTS == 0)
			raw_exec(c, "BEGIN IMMEDIATE", path);
		const copy_event *e = &lc->ev[i];
		if (e->posted)
			raw_apply_one(c, &posted, lc, e, path);
		else if (followed.st)
			raw_apply_one(c, &followed, lc, e, path);
		if ((i + 1) % TXN_EVENTS == 0 || i + 1 == lc->n)
			raw_exec(c, "COMMIT", path);
	}
	uint64_t t1 = kb_mono_ns();
	for (size_t i = 0; i < ntables; i++)
		rows[i] = raw_count(c, tables[i], path);
	sqlite3_finalize(posted.st);
	sqlite3_finalize(followed.st);
	sqlite3_close(c);
	return (double)(t1 - t0) / 1e9;
}

/* ---- 1. apply rate ------------------------------------------------------------------ */

#define MAX_TABLES 2

typedef struct apply_result {
	const view_spec *view;
	workload w;
	double fill_per_s;
	double open_s;	/* kappa_open with the view */
	double kappa_s; /* from before kappa_open until the view is live at the head */
	double raw_s;
	double kappa_per_s, raw_per_s;
	const char *tables[MAX_TABLES];
	uint64_t expect[MAX_TABLES], kappa_rows[MAX_TABLES], raw_rows[MAX_TABLES];
	size_t ntables;
	bool rows_ok;
} apply_result;

/* Open 'data' with the views in 'vdir' and time until 'view' is live at the head. Returns
 * the open database; the seconds go to *open_s and *live_s. */
static kappa_db *
open_until_live(const char *data, const char *vdir, const char *view, double *open_s,
		double *live_s)
{
	uint64_t t0 = kb_mono_ns();
	kappa_db *db = open_db(data, vdir);
	uint64_t t1 = kb_mono_ns();
	uint64_t t2 = wait_live(db, view, kappa_head(db), false);
	*open_s = (double)(t1 - t0) / 1e9;
	*live_s = (double)(t2 - t0) / 1e9;
	return db;
}

static void
run_apply(const kb_bench_dir *dir, const view_spec *v, uint64_t events, uint64_t followers,
	  apply_result *r)
{
	char base[PATH_MAX + 32], data[PATH_MAX + 64], vdir[PATH_MAX + 64], raw[PATH_MAX + 64];
	snprintf(base, sizeof(base), "%s/%s", dir->path, v->kind);
	snprintf(data, sizeof(data), "%s/data", base);
	snprintf(vdir, sizeof(vdir), "%s/views", base);
	snprintf(raw, sizeof(raw), "%s/raw.db", base);
	kb_rm_tree(base);
	if (mkdir(base, 0755) < 0)
		kb_die("mkdir %s: %s", base, strerror(errno));

	memset(r, 0, sizeof(*r));
	r->view = v;
	r->w = workload_make(events, followers);
	const workload *w = &r->w;
	if (v->on_followed) {
		r->tables[0] = "follows";
		r->expect[0] = w->follows;
		r->tables[1] = "timeline";
		r->expect[1] = w->posts * w->followers;
		r->ntables = 2;
	} else {
		r->tables[0] = "posts";
		r->expect[0] = w->posts;
		r->ntables = 1;
	}

	fprintf(stderr, "view_apply: %s: appending %" PRIu64 " events...", v->kind, w->events);
	log_copy lc = {0};
	r->fill_per_s = fill(data, w, &lc);
	fprintf(stderr, " %.0f/s; kappa view...", r->fill_per_s);

	write_view_file(vdir, v);
	kappa_db *db = open_until_live(data, vdir, v->name, &r->open_s, &r->kappa_s);
	for (size_t i = 0; i < r->ntables; i++)
		r->kappa_rows[i] = kappa_count(db, v->name, r->tables[i]);
	kappa_close(db);
	r->kappa_per_s = (double)w->events / r->kappa_s;
	fprintf(stderr, " %.3f s, %.0f/s; raw SQLite...", r->kappa_s, r->kappa_per_s);

	r->raw_s = raw_apply(raw, v, &lc, r->tables, r->raw_rows, r->ntables);
	r->raw_per_s = (double)w->events / r->raw_s;
	copy_free(&lc);
	fprintf(stderr, " %.3f s, %.0f/s: ratio %.3f\n", r->raw_s, r->raw_per_s,
		kb_ratio(r->kappa_per_s, r->raw_per_s));

	r->rows_ok = true;
	for (size_t i = 0; i < r->ntables; i++)
		if (r->kappa_rows[i] != r->expect[i] || r->raw_rows[i] != r->expect[i])
			r->rows_ok = false;
	kb_rm_tree(base);
}

/* ---- 2. rebuild, 3. queries --------------------------------------------------------- */

typedef struct query_result {
	int threads;
	double seconds, per_s, p50_us, p99_us;
	uint64_t queries, errors;
	int first_rc;
	char first_msg[256];
} query_result;

typedef struct rebuild_result {
	uint64_t events;
	double fill_per_s;
	double open_s, live_s; /* first catch-up */
	uint64_t rows;
	double rebuild_s, rebuild_per_s;
	uint64_t rows_after;
	query_result *q;
	size_t nq;
} rebuild_result;

/* One querying thread. */
typedef struct querier {
	int tid;
	kappa_db *db;
	uint64_t ids; /* posts 0 .. ids - 1 exist */
	kb_team *team;
	kb_lat lat;
	uint64_t errors;
	int first_rc;
	char first_msg[256];
} querier;

static void
querier_error(querier *q, int rc, const char *msg)
{
	if (q->errors++ == 0) {
		q->first_rc = rc;
		snprintf(q->first_msg, sizeof(q->first_msg), "%s", msg);
	}
}

static void *
querier_main(void *arg)
{
	querier *q = arg;
	uint64_t seed = mix64((uint64_t)q->tid + 1);
	char params[64], msg[256];
	kappa_err err;
	kb_team_wait(q->team);
	while (!kb_team_stopped(q->team)) {
		seed = mix64(seed);
		uint64_t id = seed % q->ids;
		snprintf(params, sizeof(params), "{\"id\":%" PRIu64 "}", id);
		char *json = NULL;
		uint64_t t0 = kb_mono_ns();
		int rc = kappa_query(q->db, "posts", "post", params, KAPPA_NO_POSITION,
				     QUERY_TIMEOUT_MS, &json, &err);
		uint64_t t1 = kb_mono_ns();
		if (rc != KAPPA_OK) {
			querier_error(q, rc, err.msg);
			continue;
		}
		kb_lat_push(&q->lat, t1 - t0);
		char want[48];
		snprintf(want, sizeof(want), "{\"rows\":[{\"id\":%" PRIu64 ",", id);
		if (strncmp(json, want, strlen(want)) != 0) {
			snprintf(msg, sizeof(msg), "post %" PRIu64 " answered %.200s", id, json);
			querier_error(q, KAPPA_OK, msg);
		}
		kappa_free(json);
	}
	return NULL;
}

static void
run_queries(kappa_db *db, uint64_t ids, int threads, double seconds, query_result *r)
{
	querier *qs = kb_calloc((size_t)threads, sizeof(*qs), "threads");
	kb_team team;
	for (int i = 0; i < threads; i++) {
		qs[i].tid = i;
		qs[i].db = db;
		qs[i].ids = ids;
		qs[i].team = &team;
	}
	kb_team_start(&team, threads, querier_main, qs, sizeof(*qs));
	kp_log_stats before, after;
	uint64_t window_ns = kb_team_run(&team, db->log, seconds, &before, &after);

	kb_lat all = {NULL, 0, 0};
	memset(r, 0, sizeof(*r));
	r->threads = threads;
	for (int i = 0; i < threads; i++) {
		kb_lat_merge(&all, &qs[i].lat);
		if (qs[i].errors && r->errors == 0) {
			r->first_rc = qs[i].first_rc;
			snprintf(r->first_msg, sizeof(r->first_msg), "%s", qs[i].first_msg);
		}
		r->errors += qs[i].errors;
	}
	free(qs);
	kb_lat_sort(&all);
	r->seconds = (double)window_ns / 1e9;
	r->queries = all.n;
	r->per_s = (double)all.n / r->seconds;
	r->p50_us = kb_percentile_us(&all, 0.50);
	r->p99_us = kb_percentile_us(&all, 0.99);
	kb_lat_free(&all);
}

static void
run_rebuild(const kb_bench_dir *dir, uint64_t events, const kb_opts *opts, rebuild_result *r)
{
	char base[PATH_MAX + 32], data[PATH_MAX + 64], vdir[PATH_MAX + 64];
	snprintf(base, sizeof(base), "%s/rebuild", dir->path);
	snprintf(data, sizeof(data), "%s/data", base);
	snprintf(vdir, sizeof(vdir), "%s/views", base);
	kb_rm_tree(base);
	if (mkdir(base, 0755) < 0)
		kb_die("mkdir %s: %s", base, strerror(errno));
	const view_spec *v = &insert_view;
	workload w = workload_make(events, 0);
	r->events = events;

	fprintf(stderr, "view_apply: rebuild: appending %" PRIu64 " events...", events);
	r->fill_per_s = fill(data, &w, NULL);
	fprintf(stderr, " %.0f/s; view...", r->fill_per_s);
	write_view_file(vdir, v);
	kappa_db *db = open_until_live(data, vdir, v->name, &r->open_s, &r->live_s);
	r->rows = kappa_count(db, v->name, "posts");
	fprintf(stderr, " live in %.3f s; rebuild...", r->live_s);

	uint64_t head = kappa_head(db);
	kappa_err err;
	uint64_t t0 = kb_mono_ns();
	int rc = kappa_view_rebuild(db, v->name, &err);
	if (rc != KAPPA_OK)
		kb_die("kappa_view_rebuild %s: %s (%s)", v->name, err.msg, kappa_strerror(rc));
	uint64_t t1 = wait_live(db, v->name, head, true);
	r->rebuild_s = (double)(t1 - t0) / 1e9;
	r->rebuild_per_s = (double)head / r->rebuild_s;
	r->rows_after = kappa_count(db, v->name, "posts");
	fprintf(stderr, " %.3f s, %.0f/s\n", r->rebuild_s, r->rebuild_per_s);

	r->nq = opts->nthreads;
	r->q = kb_calloc(r->nq, sizeof(*r->q), NULL);
	for (size_t i = 0; i < r->nq; i++) {
		int t = (int)opts->threads[i];
		fprintf(stderr, "view_apply: queries from %d threads...", t);
		run_queries(db, w.posts, t, opts->seconds, &r->q[i]);
		fprintf(stderr, " %.0f/s, p50 %.1f us, p99 %.1f us\n", r->q[i].per_s,
			r->q[i].p50_us, r->q[i].p99_us);
	}
	kappa_close(db);
	kb_rm_tree(base);
}

/* ---- options ------------------------------------------------------------------------ */

typedef struct own_opts {
	bool quick;
	uint64_t events, rebuild_events, followers; /* 0: the default */
} own_opts;

static const struct option longopts[] = {
	KB_LONGOPTS,
	{"events", required_argument, NULL, 'e'},
	{"rebuild-events", required_argument, NULL, 'r'},
	{"followers", required_argument, NULL, 'f'},
	{NULL, 0, NULL, 0},
};

/* Handle --events, --rebuild-events and --followers; note --quick but leave it to
 * kb_opts_parse too, which sets 1 s. */
static bool
own_option(int c, const char *arg, void *ctx)
{
	own_opts *o = ctx;
	uint64_t *to;
	const char *what;
	switch (c) {
	case 'e':
		to = &o->events;
		what = "--events";
		break;
	case 'r':
		to = &o->rebuild_events;
		what = "--rebuild-events";
		break;
	case 'f':
		to = &o->followers;
		what = "--followers";
		break;
	case 'q':
		o->quick = true;
		return false;
	default:
		return false;
	}
	*to = kb_parse_u64(arg, what, false);
	if (*to == 0)
		kb_die("%s must be positive", what);
	return true;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: view_apply [--dir DIR] [--seconds S] [--quick] [--threads 2]\n"
		   "                  [--events N] [--rebuild-events N] [--followers F]\n");
}

/* ---- output ------------------------------------------------------------------------- */

static void
print_table(const apply_result *a, size_t na, const rebuild_result *rb, const kb_bench_dir *dir)
{
	printf("kappa view_apply: a view's projector applying a log against raw SQLite doing the "
	       "same inserts; rebuild; named queries\n");
	printf("dir %s (%s%s), %ld CPUs online, SQLite %s\n", dir->path, dir->fs,
	       dir->is_tmpfs ? ": NOT A DISK" : "", sysconf(_SC_NPROCESSORS_ONLN),
	       sqlite3_libversion());
	printf("log written with no view first (fsync never, %d events per append); kappa time = "
	       "kappa_open with views_dir until the view is live at the head\n",
	       APPEND_EVENTS);
	printf("raw = plain SQLite (WAL, synchronous=NORMAL), same DDL and handler SQL, same bound "
	       "text, %d events per transaction; ratio = kappa / raw\n\n",
	       TXN_EVENTS);

	printf("%-6s | %8s %8s %8s | %8s %8s %10s | %8s %10s | %6s\n", "view", "events", "posts",
	       "follows", "open ms", "kappa s", "kappa ev/s", "raw s", "raw ev/s", "ratio");
	for (size_t i = 0; i < na; i++) {
		const apply_result *r = &a[i];
		printf("%-6s | %8" PRIu64 " %8" PRIu64 " %8" PRIu64 " | %8.1f %8.3f %10.0f | "
		       "%8.3f %10.0f | %6.3f\n",
		       r->view->kind, r->w.events, r->w.posts, r->w.follows, r->open_s * 1e3,
		       r->kappa_s, r->kappa_per_s, r->raw_s, r->raw_per_s,
		       kb_ratio(r->kappa_per_s, r->raw_per_s));
	}
	printf("\nrows (expected / kappa / raw); appends while filling\n");
	for (size_t i = 0; i < na; i++) {
		const apply_result *r = &a[i];
		printf("%-6s |", r->view->kind);
		for (size_t k = 0; k < r->ntables; k++)
			printf(" %s %" PRIu64 " / %" PRIu64 " / %" PRIu64 ";", r->tables[k],
			       r->expect[k], r->kappa_rows[k], r->raw_rows[k]);
		printf(" filled at %.0f events/s%s\n", r->fill_per_s,
		       r->rows_ok ? "" : "  ROWS DIFFER");
	}
	if (na > 1)
		printf("fanout: %" PRIu64 " authors, %" PRIu64
		       " followers each; each post writes %" PRIu64 " timeline rows\n",
		       a[1].w.authors, a[1].w.followers, a[1].w.followers);

	printf("\nrebuild of the insert view on %" PRIu64 " events (filled at %.0f events/s)\n",
	       rb->events, rb->fill_per_s);
	printf("first catch-up: %.3f s (open %.1f ms), %.0f events/s, %" PRIu64 " rows\n",
	       rb->live_s, rb->open_s * 1e3, (double)rb->events / rb->live_s, rb->rows);
	printf("kappa_view_rebuild until live at the head: %.3f s, %.0f events/s, %" PRIu64
	       " rows%s\n",
	       rb->rebuild_s, rb->rebuild_per_s, rb->rows_after,
	       rb->rows == rb->events && rb->rows_after == rb->events ? "" : "  ROWS DIFFER");

	printf("\nkappa_query posts.post(id), random ids of %" PRIu64 " posts, no min_position\n",
	       rb->events);
	printf("%4s | %10s %9s %9s %8s\n", "thr", "queries/s", "p50 us", "p99 us", "errors");
	for (size_t i = 0; i < rb->nq; i++) {
		const query_result *q = &rb->q[i];
		printf("%4d | %10.0f %9.1f %9.1f %8" PRIu64 "\n", q->threads, q->per_s, q->p50_us,
		       q->p99_us, q->errors);
	}
	for (size_t i = 0; i < rb->nq; i++)
		if (rb->q[i].errors)
			printf("ERRORS: queries, %d threads: %" PRIu64 ", first: %s (%s)\n",
			       rb->q[i].threads, rb->q[i].errors, rb->q[i].first_msg,
			       kappa_strerror(rb->q[i].first_rc));

	printf("\n");
	for (size_t i = 0; i < na; i++) {
		double q = kb_ratio(a[i].kappa_per_s, a[i].raw_per_s);
		printf("target: view apply >= %.2f x raw SQLite events/s (%s): %.3f, %s\n",
		       TARGET_RATIO, a[i].view->kind, q, q >= TARGET_RATIO ? "met" : "NOT met");
	}
	printf("\n");
}

static void
print_json(const apply_result *a, size_t na, const rebuild_result *rb)
{
	for (size_t i = 0; i < na; i++) {
		const apply_result *r = &a[i];
		printf("{\"bench\":\"view_apply\",\"metric\":\"apply_events_per_s\",\"view\":\"%"
		       "s\","
		       "\"events\":%" PRIu64 ",\"value\":%.3f,\"baseline\":%.3f,\"ratio\":%.3f,"
		       "\"unit\":\"events/s\"}\n",
		       r->view->kind, r->w.events, r->kappa_per_s, r->raw_per_s,
		       kb_ratio(r->kappa_per_s, r->raw_per_s));
	}
	printf("{\"bench\":\"view_apply\",\"metric\":\"rebuild_s\",\"events\":%" PRIu64
	       ",\"value\":%.3f,\"unit\":\"s\"}\n",
	       rb->events, rb->rebuild_s);
	printf("{\"bench\":\"view_apply\",\"metric\":\"rebuild_events_per_s\",\"events\":%" PRIu64
	       ",\"value\":%.3f,\"unit\":\"events/s\"}\n",
	       rb->events, rb->rebuild_per_s);
	for (size_t i = 0; i < rb->nq; i++) {
		const query_result *q = &rb->q[i];
		printf("{\"bench\":\"view_apply\",\"metric\":\"query_per_s\",\"threads\":%d,"
		       "\"value\":%.3f,\"unit\":\"queries/s\"}\n",
		       q->threads, q->per_s);
		printf("{\"bench\":\"view_apply\",\"metric\":\"query_p50_us\",\"threads\":%d,"
		       "\"value\":%.3f,\"unit\":\"us\"}\n",
		       q->threads, q->p50_us);
		printf("{\"bench\":\"view_apply\",\"metric\":\"query_p99_us\",\"threads\":%d,"
		       "\"value\":%.3f,\"unit\":\"us\"}\n",
		       q->threads, q->p99_us);
		printf("{\"bench\":\"view_apply\",\"metric\":\"query_errors\",\"threads\":%d,"
		       "\"value\":%" PRIu64 ",\"unit\":\"errors\"}\n",
		       q->threads, q->errors);
	}
}

/* ---- main --------------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	kb_init("view_apply");
	kb_opts opts = {.seconds = 3, .threads = {2}, .nthreads = 1, .suffixes = false};
	own_opts own = {0};
	kb_opts_parse(&opts, argc, argv, longopts, own_option, &own, usage);
	uint64_t events = own.events ? own.events : own.quick ? 50000 : 200000;
	uint64_t rebuild_events = own.rebuild_events ? own.rebuild_events
				  : own.quick	     ? 100000
						     : 1000000;
	uint64_t followers = own.followers ? own.followers : 10;
	workload_make(events, followers); /* dies now, not after the first part, if too few */

	kb_bench_dir dir;
	kb_bench_dir_create(&dir, opts.dir);

	apply_result apply[2];
	run_apply(&dir, &insert_view, events, 0, &apply[0]);
	run_apply(&dir, &fanout_view, events, followers, &apply[1]);
	rebuild_result rb;
	memset(&rb, 0, sizeof(rb));
	run_rebuild(&dir, rebuild_events, &opts, &rb);
	kb_bench_dir_remove(&dir);

	int bad = 0;
	for (size_t i = 0; i < 2; i++)
		bad |= !apply[i].rows_ok;
	bad |= rb.rows != rb.events || rb.rows_after != rb.events;
	for (size_t i = 0; i < rb.nq; i++)
		bad |= rb.q[i].errors != 0;
	if (bad)
		fprintf(stderr, "view_apply: errors or differing row counts (see the table)\n");

	fflush(stderr);
	print_table(apply, 2, &rb, &dir);
	print_json(apply, 2, &rb);
	free(rb.q);
	return bad ? 1 : 0;
}
