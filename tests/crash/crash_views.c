/*
 * crash_views.c -- proves that a view applies every event of the log exactly once across
 * kill -9.
 *
 * Each round forks a child that opens the database with a counting view (per stream: the
 * number of Deposited/Withdrawn events and the sum of their n; and every position it applied,
 * Noted events included) and appends from two threads while a third queries, so the projector
 * runs while the log grows. The parent SIGKILLs the child at a random moment (during the open,
 * at the first acknowledged append, or 1-100 ms later), reopens, waits until the view has
 * caught up (kappa_query with min_position = head - 1), and checks the view's answers against
 * the log read back with kappa_read_log: the same counts and sums per stream, and each position
 * applied once, none skipped.
 *
 * Some rounds add a crash point: the child asks for kappa_view_rebuild while appending (the
 * kill may land in the rebuild or its swap), the parent changes the definition before the child
 * opens (the child rebuilds at open), or the parent deletes DATA/views/counts.db before the
 * reopen (rebuilt from the log). A view still rebuilding at the reopen is checked twice: as
 * its old version answers, and once the new one is live. Prints TAP.
 * VIEW_CRASH_ROUNDS (else CRASH_ROUNDS / 2 up to 100, else 100) and CRASH_SEED tune a run;
 * without VIEW_CRASH_ROUNDS, no round starts after about 55 s.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kappa.h"
#include "testlib.h"

#define NSTREAMS 5
#define MAX_EVENTS 4 /* events per append: 1..MAX_EVENTS */
#define NAPPENDERS 2
#define FIRST_ACK_TIMEOUT_MS 30000
#define CATCH_UP_MS 60000	 /* how long the parent waits for the view after a reopen */
#define TIME_BUDGET_S 55	 /* without VIEW_CRASH_ROUNDS: no round starts after this */
#define REBUILD_IN_CHILD_EVERY 7 /* rounds where the child asks for a rebuild */
#define NEW_DEFINITION_EVERY 11	 /* rounds where the definition changes before the child */
#define DELETE_VIEW_EVERY 10	 /* rounds deleting DATA/views/counts.db after the kill */

/* ---- the view ------------------------------------------------------------------------- */

/* Variant 'k' of the counting view: the same tables and handlers, and a query variant()
 * answering k, so that a changed file rebuilds it and the parent can tell which is live. */
static void
write_definition(const char *views_dir, const char *tmp_dir, int k)
{
	char tmp[4400], path[4400];
	snprintf(tmp, sizeof(tmp), "%s/counts.sql.tmp", tmp_dir);
	snprintf(path, sizeof(path), "%s/counts.sql", views_dir);
	FILE *f = fopen(tmp, "w");
	if (!f) {
		perror(tmp);
		exit(1);
	}
	fprintf(f,
		"-- @view counts\n"
		"CREATE TABLE counts (stream TEXT PRIMARY KEY, n_events INTEGER NOT NULL,\n"
		"  total INTEGER NOT NULL);\n"
		"-- not unique: an event applied twice must show, not fail the view\n"
		"CREATE TABLE applied (position INTEGER NOT NULL);\n"
		"CREATE INDEX applied_by_position ON applied (position);\n"
		"-- @on Deposited Withdrawn\n"
		"INSERT INTO counts (stream, n_events, total) VALUES (:stream, 0, 0)\n"
		"  ON CONFLICT(stream) DO NOTHING;\n"
		"UPDATE counts SET n_events = n_events + 1, total = total +\n"
		"  CASE :type WHEN 'Withdrawn' THEN -(:data->>'$.n') ELSE :data->>'$.n' END\n"
		"  WHERE stream = :stream;\n"
		"INSERT INTO applied (position) VALUES (:position);\n"
		"-- @on Noted\n"
		"INSERT INTO applied (position) VALUES (:position);\n"
		"-- @query totals()\n"
		"SELECT stream, n_events, total FROM counts ORDER BY stream;\n"
		"-- @query applied()\n"
		"SELECT count(*) AS n, count(DISTINCT position) AS distinct_n,\n"
		"  coalesce(min(position), -1) AS lo, coalesce(max(position), -1) AS hi,\n"
		"  coalesce(sum(position), 0) AS possum FROM applied;\n"
		"-- @query variant()\n"
		"SELECT %d AS k;\n",
		k);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		perror(path);
		exit(1);
	}
}

/* ---- the child: appenders and a reader ------------------------------------------------- */

struct child {
	kappa_db *db;
	int fd;
	uint32_t round;
	int rebuild; /* ask for kappa_view_rebuild after a few appends */
};

struct appender {
	struct child *c;
	uint32_t tid;
};

static void *
appender_main(void *arg)
{
	struct appender *a = arg;
	uint64_t rng = (uint64_t)a->c->round << 8 | a->tid;
	char data[MAX_EVENTS][96], stream[16];
	kappa_event_in ev[MAX_EVENTS];
	for (uint64_t seq = 0;; seq++) {
		snprintf(stream, sizeof(stream), "s-%d", (int)(kt_rng_next(&rng) % NSTREAMS));
		size_t n = 1 + (size_t)(kt_rng_next(&rng) % MAX_EVENTS);
		for (size_t i = 0; i < n; i++) {
			uint64_t r = kt_rng_next(&rng) % 100;
			const char *type = r < 60 ? "Deposited" : r < 85 ? "Withdrawn" : "Noted";
			snprintf(data[i], sizeof(data[i]),
				 "{\"n\":%d,\"r\":%u,\"t\":%u,\"s\":%" PRIu64 "}",
				 1 + (int)(kt_rng_next(&rng) % 1000), a->c->round, a->tid, seq);
			memset(&ev[i], 0, sizeof(ev[i]));
			ev[i].type = type;
			ev[i].data = data[i];
		}
		kappa_append_result res;
		kappa_err err;
		memset(&err, 0, sizeof(err));
		int rc =
			kappa_append(a->c->db, stream, KAPPA_ANY, NULL, ev, n, NULL, 0, &res, &err);
		if (rc != KAPPA_OK) {
			fprintf(stderr, "# round %u child appender %u: %s: %s\n", a->c->round,
				a->tid, kappa_strerror(rc), err.msg);
			kt_send(a->c->fd, "E", 1);
			return NULL;
		}
		kt_send(a->c->fd, "A", 1);
		if (a->c->rebuild && a->tid == 0 && seq == 5) {
			rc = kappa_view_rebuild(a->c->db, "counts", &err);
			if (rc != KAPPA_OK) {
				fprintf(stderr, "# round %u child: kappa_view_rebuild: %s: %s\n",
					a->c->round, kappa_strerror(rc), err.msg);
				kt_send(a->c->fd, "E", 1);
			}
		}
	}
	return NULL;
}

/* Queries while the projector applies: readers in flight at the kill. */
static void *
reader_main(void *arg)
{
	struct child *c = arg;
	for (;;) {
		char *out = NULL;
		kappa_err err;
		int rc = kappa_query(c->db, "counts", "totals", NULL, KAPPA_NO_POSITION, 1000, &out,
				     &err);
		kappa_free(out);
		if (rc != KAPPA_OK && rc != KAPPA_ETIMEOUT) {
			fprintf(stderr, "# round %u child reader: %s: %s\n", c->round,
				kappa_strerror(rc), err.msg);
			kt_send(c->fd, "E", 1);
			return NULL;
		}
		struct timespec ts = {0, 500000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void
child_main(const char *data_dir, const kappa_options *o, uint32_t round, int rebuild, int fd)
{
	struct child c = {NULL, fd, round, rebuild};
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_open(data_dir, o, &c.db, &err);
	if (rc != KAPPA_OK) {
		fprintf(stderr, "# round %u child: kappa_open: %s: %s\n", round, kappa_strerror(rc),
			err.msg);
		kt_send(fd, "E", 1);
		_exit(2);
	}
	pthread_t th[NAPPENDERS + 1];
	struct appender a[NAPPENDERS];
	for (uint32_t t = 0; t < NAPPENDERS; t++) {
		a[t] = (struct appender){&c, t};
		if (pthread_create(&th[t], NULL, appender_main, &a[t]) != 0)
			_exit(2);
	}
	if (pthread_create(&th[NAPPENDERS], NULL, reader_main, &c) != 0)
		_exit(2);
	for (uint32_t t = 0; t < NAPPENDERS; t++)
		pthread_join(th[t], NULL);
	_exit(2); /* every appender stopped on an error */
}

/* ---- reporting ------------------------------------------------------------------------- */

enum { CAT_ROUND, CAT_CATCH_UP, CAT_ONCE, CAT_DEFINITION, NCAT };

/* ---- what the log says the view must hold ---------------------------------------------- */

struct expect {
	int64_t n[NSTREAMS], total[NSTREAMS];
	uint64_t events; /* the whole log */
};

static int
stream_index(const kappa_event *ev)
{
	if (ev->stream_len != 3 || memcmp(ev->stream, "s-", 2) != 0 || ev->stream[2] < '0' ||
	    ev->stream[2] >= '0' + NSTREAMS)
		return -1;
	return ev->stream[2] - '0';
}

static int
type_is(const kappa_event *ev, const char *t)
{
	return ev->type_len == strlen(t) && memcmp(ev->type, t, ev->type_len) == 0;
}

static void
scan_log(kappa_db *db, struct expect *x)
{
	memset(x, 0, sizeof(*x));
	kappa_iter *it = NULL;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_read_log(db, 0, UINT64_MAX, &it, &err);
	if (rc != KAPPA_OK) {
		kt_problem(CAT_ROUND, "kappa_read_log: %s: %s", kappa_strerror(rc), err.msg);
		return;
	}
	kappa_event ev;
	while ((rc = kappa_iter_next(it, &ev, &err)) == 1) {
		if (ev.position != x->events)
			kt_problem(CAT_ROUND, "the log skips from %" PRIu64 " to %" PRIu64,
				   x->events, ev.position);
		x->events = ev.position + 1;
		int s = stream_index(&ev);
		char buf[32];
		size_t l = ev.data_len < sizeof(buf) - 1 ? ev.data_len : sizeof(buf) - 1;
		memcpy(buf, ev.data, l);
		buf[l] = '\0';
		long long n;
		if (s < 0 || sscanf(buf, "{\"n\":%lld,", &n) != 1) {
			kt_problem(CAT_ROUND, "event %" PRIu64 " is not one of ours", ev.position);
			continue;
		}
		if (type_is(&ev, "Deposited")) {
			x->n[s]++;
			x->total[s] += n;
		} else if (type_is(&ev, "Withdrawn")) {
			x->n[s]++;
			x->total[s] -= n;
		} else if (!type_is(&ev, "Noted")) {
			kt_problem(CAT_ROUND, "event %" PRIu64 " has a type we never append",
				   ev.position);
		}
	}
	if (rc < 0)
		kt_problem(CAT_ROUND, "reading the log: %s: %s", kappa_strerror(rc), err.msg);
	kappa_iter_free(it);
	if (x->events != kappa_head(db))
		kt_problem(CAT_ROUND, "the log ends at %" PRIu64 ", the head is %" PRIu64,
			   x->events, kappa_head(db));
}

/* ---- checking the view ------------------------------------------------------------------- */

/* Run a query of counts; returns the parsed result or NULL (after recording a problem). */
static json_t *
query(kappa_db *db, const char *name, uint64_t min_pos, int64_t timeout_ms, int cat)
{
	char *out = NULL;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_query(db, "counts", name, NULL, min_pos, timeout_ms, &out, &err);
	if (rc != KAPPA_OK) {
		kt_problem(cat, "counts.%s (min_position %" PRId64 "): %s: %s", name,
			   min_pos == KAPPA_NO_POSITION ? (int64_t)-1 : (int64_t)min_pos,
			   kappa_strerror(rc), err.msg);
		return NULL;
	}
	json_error_t je;
	json_t *j = json_loads(out, 0, &je);
	if (!j || !json_is_array(json_object_get(j, "rows")))
		kt_problem(CAT_ROUND, "counts.%s answered something else than a result: %.200s",
			   name, out);
	kappa_free(out);
	return j;
}

static int64_t
get_int(json_t *row, const char *col)
{
	json_t *v = json_object_get(row, col);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : INT64_MIN;
}

/* The view's answers against the log; 'as' names which version answered. */
static void
check_view(kappa_db *db, const struct expect *x, const char *as)
{
	uint64_t head = x->events;
	json_t *j = query(db, "totals", KAPPA_NO_POSITION, 5000, CAT_ONCE);
	if (!j)
		return;
	json_t *pos = json_object_get(j, "position");
	int64_t p = json_is_integer(pos) ? (int64_t)json_integer_value(pos) : -1;
	if (p != (int64_t)head - 1)
		kt_problem(CAT_CATCH_UP,
			   "%s: totals answered as of %" PRId64 ", the log ends at %" PRId64, as, p,
			   (int64_t)head - 1);
	json_t *rows = json_object_get(j, "rows");
	int64_t got_n[NSTREAMS] = {0}, got_total[NSTREAMS] = {0};
	for (size_t i = 0; i < json_array_size(rows); i++) {
		json_t *r = json_array_get(rows, i);
		const char *s = json_string_value(json_object_get(r, "stream"));
		if (!s || strlen(s) != 3 || strncmp(s, "s-", 2) != 0 || s[2] < '0' ||
		    s[2] >= '0' + NSTREAMS) {
			kt_problem(CAT_ONCE, "%s: a row for stream %s", as, s ? s : "(none)");
			continue;
		}
		got_n[s[2] - '0'] = get_int(r, "n_events");
		got_total[s[2] - '0'] = get_int(r, "total");
	}
	for (int s = 0; s < NSTREAMS; s++)
		if (got_n[s] != x->n[s] || got_total[s] != x->total[s])
			kt_problem(CAT_ONCE,
				   "%s: s-%d has %" PRId64 " events summing to %" PRId64
				   "; the log has %" PRId64 " summing to %" PRId64,
				   as, s, got_n[s], got_total[s], x->n[s], x->total[s]);
	json_decref(j);

	j = query(db, "applied", KAPPA_NO_POSITION, 5000, CAT_ONCE);
	if (!j)
		return;
	json_t *r = json_array_get(json_object_get(j, "rows"), 0);
	int64_t n = get_int(r, "n"), distinct = get_int(r, "distinct_n"), lo = get_int(r, "lo"),
		hi = get_int(r, "hi"), sum = get_int(r, "possum");
	int64_t h = (int64_t)head;
	if (n != h || distinct != h || lo != (h ? 0 : -1) || hi != h - 1 || sum != h * (h - 1) / 2)
		kt_problem(CAT_ONCE,
			   "%s: applied %" PRId64 " events (%" PRId64
			   " distinct positions, %" PRId64 "..%" PRId64 ", sum %" PRId64
			   "); the log has %" PRId64 " (0..%" PRId64 ", sum %" PRId64 ")%s",
			   as, n, distinct, lo, hi, sum, h, h - 1, h * (h - 1) / 2,
			   n > distinct ? ": some applied twice"
			   : n < h	? ": some skipped"
					: "");
	json_decref(j);
}

static const char *
state_name(kappa_view_state s)
{
	return kappa_view_state_name(s);
}

static int
status(kappa_db *db, kappa_view_status *st)
{
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_view_status_get(db, "counts", st, &err);
	if (rc != KAPPA_OK)
		kt_problem(CAT_CATCH_UP, "kappa_view_status_get: %s: %s", kappa_strerror(rc),
			   err.msg);
	return rc;
}

struct stats {
	uint64_t acks, kills[3], rebuilding_at_reopen, child_rebuilds, new_definitions, deleted;
	uint64_t max_log;
	int64_t catch_up_us_max;
};

/* After the kill: reopen, wait for the view, compare it with the log. Returns -1 if the
 * database won't open. */
static int
verify(const char *data_dir, const kappa_options *o, int variant, struct stats *st)
{
	kappa_db *db = NULL;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_open(data_dir, o, &db, &err);
	if (rc != KAPPA_OK) {
		kt_problem(CAT_ROUND, "reopen failed: %s: %s", kappa_strerror(rc), err.msg);
		return -1;
	}
	struct expect x;
	scan_log(db, &x);
	if (x.events > st->max_log)
		st->max_log = x.events;

	/* caught up: a query waiting for the last event */
	int64_t t0 = kt_now_us();
	if (x.events > 0) {
		json_t *j = query(db, "totals", x.events - 1, CATCH_UP_MS, CAT_CATCH_UP);
		json_decref(j);
	}
	if (kt_now_us() - t0 > st->catch_up_us_max)
		st->catch_up_us_max = kt_now_us() - t0;
	kappa_view_status vs;
	memset(&vs, 0, sizeof(vs));
	if (status(db, &vs) == KAPPA_OK) {
		if (vs.state == KAPPA_VIEW_FAILED || vs.state == KAPPA_VIEW_STOPPED)
			kt_problem(CAT_CATCH_UP, "the view is %s at %" PRIu64 ": %s %s",
				   state_name(vs.state), vs.position, vs.error, vs.load_error);
		if (vs.position != x.events)
			kt_problem(CAT_CATCH_UP, "the view applied up to %" PRIu64 " of %" PRIu64,
				   vs.position, x.events);
		if (vs.state == KAPPA_VIEW_REBUILDING)
			st->rebuilding_at_reopen++;
	}
	check_view(db, &x,
		   vs.state == KAPPA_VIEW_REBUILDING ? "the version answering during a rebuild"
						     : "the view");

	/* once live (any rebuild done), the latest definition answers the same */
	t0 = kt_now_us();
	for (;;) {
		if (status(db, &vs) != KAPPA_OK)
			break;
		if (vs.state == KAPPA_VIEW_LIVE)
			break;
		if (vs.state == KAPPA_VIEW_FAILED || vs.state == KAPPA_VIEW_STOPPED ||
		    kt_now_us() - t0 > (int64_t)CATCH_UP_MS * 1000) {
			kt_problem(CAT_CATCH_UP,
				   "the view is %s, not live, %" PRId64 " ms after the reopen: %s",
				   state_name(vs.state), (kt_now_us() - t0) / 1000, vs.error);
			break;
		}
		struct timespec ts = {0, 2000000};
		nanosleep(&ts, NULL);
	}
	json_t *j = query(db, "variant", KAPPA_NO_POSITION, 5000, CAT_DEFINITION);
	if (j) {
		int64_t k = get_int(json_array_get(json_object_get(j, "rows"), 0), "k");
		if (k != variant)
			kt_problem(CAT_DEFINITION,
				   "the live view runs definition %" PRId64
				   ", the file is definition %d",
				   k, variant);
		json_decref(j);
	}
	check_view(db, &x, "the live view");
	kappa_close(db);
	return 0;
}

/* ---- main ------------------------------------------------------------------------------ */

/* Pipe records: one byte, 'A' for an acknowledged append, anything else for an error. */
static int
on_byte(kt_pipe *p, const void *rec)
{
	(void)p;
	return *(const char *)rec != 'A';
}

static const char *const MODE_NAME[3] = {"0-5 ms after fork", "at the first ack",
					 "1-100 ms after the first ack"};

static void
rm_view_db(const char *data_dir)
{
	static const char *const suffix[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		char path[4400];
		snprintf(path, sizeof(path), "%s/views/counts.db%s", data_dir, suffix[i]);
		if (unlink(path) != 0 && errno != ENOENT)
			kt_problem(CAT_ROUND, "cannot remove %s", path);
	}
}

int
main(void)
{
	int explicit_rounds;
	long rounds = kt_crash_rounds("VIEW_CRASH_ROUNDS", 100, 2, &explicit_rounds);
	uint64_t seed = kt_seed_from_env();
	uint64_t rng = seed;
	char *dir = kt_tmpdir("crash_views");
	char views_dir[4200], data_dir[4200];
	snprintf(views_dir, sizeof(views_dir), "%s/views", dir);
	snprintf(data_dir, sizeof(data_dir), "%s/db", dir);
	if (mkdir(views_dir, 0755) != 0) {
		perror(views_dir);
		return 1;
	}
	printf("# crash_views: %ld rounds, seed %" PRIu64 ", directory %s\n", rounds, seed, dir);
	fflush(stdout);

	int variant = 0;
	write_definition(views_dir, dir, variant);
	kappa_options o;
	kappa_options_init(&o);
	o.fsync = KAPPA_FSYNC_ALWAYS;
	o.segment_bytes = 1u << 20;
	o.views_dir = views_dir;
	kt_notices notes;
	memset(&notes, 0, sizeof(notes));
	struct stats st;
	memset(&st, 0, sizeof(st));
	int failed_rounds = 0;
	long ran = 0;
	int64_t t_start = kt_now_us();

	for (uint32_t round = 1; round <= (uint32_t)rounds; round++) {
		if (!explicit_rounds && kt_now_us() - t_start > (int64_t)TIME_BUDGET_S * 1000000) {
			printf("# time budget of %d s reached after %ld rounds\n", TIME_BUDGET_S,
			       ran);
			break;
		}
		ran++;
		uint64_t r1 = kt_rng_next(&rng);
		int mode = r1 % 10 == 0 ? 0 : r1 % 10 == 1 ? 1 : 2;
		int delay_us = mode == 0   ? (int)(kt_rng_next(&rng) % 5001)
			       : mode == 1 ? 0
					   : 1000 + (int)(kt_rng_next(&rng) % 99001);
		int child_rebuild = round % REBUILD_IN_CHILD_EVERY == 3;
		int new_definition = round % NEW_DEFINITION_EVERY == 5;
		int delete_view = round % DELETE_VIEW_EVERY == 0;
		st.kills[mode]++;
		kt_round_start();
		if (new_definition) {
			write_definition(views_dir, dir, ++variant);
			st.new_definitions++;
		}
		st.child_rebuilds += (uint64_t)child_rebuild;

		int fd;
		pid_t pid = kt_fork_piped(&fd);
		if (pid < 0)
			return 1;
		if (pid == 0) {
			child_main(data_dir, &o, round, child_rebuild, fd);
			_exit(3);
		}
		kt_pipe p;
		kt_pipe_init(&p, fd, 1, on_byte, NULL);
		int status_code = kt_kill_child(&p, pid, mode == 0, delay_us, FIRST_ACK_TIMEOUT_MS,
						CAT_ROUND);
		st.acks += p.acks;
		if (!WIFSIGNALED(status_code) || WTERMSIG(status_code) != SIGKILL)
			kt_problem(CAT_ROUND, "the child ended before the kill (status %d)",
				   status_code);
		if (p.errs)
			kt_problem(CAT_ROUND,
				   "the child reported %" PRIu64 " error(s) (see stderr)", p.errs);

		if (delete_view) {
			rm_view_db(data_dir);
			st.deleted++;
		}
		kappa_options vo = o;
		vo.notice = kt_on_notice;
		vo.notice_ctx = &notes;
		notes.last[0] = '\0';
		int rc = verify(data_dir, &vo, variant, &st);
		kt_tap(kt_round_problems() == 0,
		       "round %u: kill %s (%d us), %" PRIu64 " acks%s%s%s", round, MODE_NAME[mode],
		       delay_us, p.acks, child_rebuild ? ", rebuild in the child" : "",
		       new_definition ? ", new definition at the child's open" : "",
		       delete_view ? ", view database deleted" : "");
		kt_print_details();
		if (kt_round_problems()) {
			failed_rounds++;
			if (notes.last[0])
				printf("#   last notice: %s\n", notes.last);
			printf("#   rerun with CRASH_SEED=%" PRIu64 "\n", seed);
		}
		if (rc < 0)
			break; /* the database no longer opens: later rounds would say nothing new
				*/
	}

	double secs = (double)(kt_now_us() - t_start) / 1e6;
	printf("# rounds=%ld acks=%" PRIu64 " largest_log=%" PRIu64
	       " events kills(early/first-ack/delayed)=%" PRIu64 "/%" PRIu64 "/%" PRIu64
	       " child_rebuilds=%" PRIu64 " new_definitions=%" PRIu64 " deleted_view_dbs=%" PRIu64
	       " rebuilding_at_reopen=%" PRIu64 " slowest_catch_up=%.1fms notices=%" PRIu64
	       " seed=%" PRIu64 " elapsed=%.1fs\n",
	       ran, st.acks, st.max_log, st.kills[0], st.kills[1], st.kills[2], st.child_rebuilds,
	       st.new_definitions, st.deleted, st.rebuilding_at_reopen,
	       (double)st.catch_up_us_max / 1000.0, notes.count, seed, secs);
	kt_tap(!kt_failed(CAT_ROUND), "%ld kill -9 rounds ran", ran);
	kt_tap(!kt_failed(CAT_CATCH_UP), "after every reopen the view caught up with the log");
	kt_tap(!kt_failed(CAT_ONCE),
	       "every event applied exactly once: per-stream counts and sums match the log");
	kt_tap(!kt_failed(CAT_DEFINITION), "the live view runs the definition in its file");
	kt_tap_plan();

	if (failed_rounds)
		printf("# kept %s for inspection\n", dir);
	else
		kt_rmdir(dir);
	return kt_all_passed(NCAT) && !failed_rounds ? 0 : 1;
}
