/*
 * store_append.c -- benchmark of the event store's cost over the raw log: kappa_append
 * against kp_log_append of the same event, with the same fsync policy and thread counts.
 *
 * For each number of concurrent threads, a fresh database (kappa_open, default options:
 * fsync always) is opened in its own subdirectory, and every thread appends one event of
 * exactly 100 bytes of JSON data per kappa_append to its own stream "bench-<tid>", with a
 * unique request id "<tid>-<seq>" and the exact expected version (KAPPA_NO_STREAM first,
 * then the version the previous append returned), timing each call. Any result but
 * KAPPA_OK is a bug: it is counted and reported, and the exit status is then 1.
 * Then, as the baseline, a fresh log (kp_log_open, the log options kappa_open derives from
 * the same defaults) gets batches of the same event (stream, type, 100-byte data, and the
 * subject when --subjects is given) behind a 60-byte attributes section, about what the
 * store's request id and content hash take, from the same number of threads for the same
 * duration. Each log thread builds its batch once and appends it again and again (the log
 * seals the header on every append); the store encodes, hashes and validates every call,
 * which is part of what it costs. Both start 250 ms after their open, so the zero-fill
 * thread has filled its first prealloc_bytes.
 * --subjects sets each event's subject to "user-<tid>" in both runs.
 *
 * Output: a human-readable table on stdout, then one JSON object per figure, one per line,
 * and nothing after them. Progress goes to stderr while measuring. Latencies are in
 * microseconds; a ratio is store / log-only.
 *
 * Usage: store_append [--dir DIR] [--seconds S] [--quick] [--threads 1,16,64] [--subjects]
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchlib.h"
#include "kappa.h"
#include "log/batch.h"
#include "log/log.h"
#include "store/store.h" /* only for db->log, to read the store's log statistics */

#define DATA_BYTES 100 /* JSON data of every event */
#define ATTRS_BYTES 60 /* attributes section of a log-only batch */
#define TARGET_THREADS 64
#define TARGET_RATIO 0.85 /* the store keeps at least this share of log-only appends/s */

/* One appending thread: to a kappa_db (db) or to a bare log (log). */
typedef struct worker {
	int tid;
	int subjects;
	kappa_db *db;
	kp_log *log;
	const kp_batch_limits *limits;
	kb_team *team;
	kb_lat lat;
	uint64_t errors;
	int first_rc; /* the first error, or KAPPA_OK */
	kappa_err first_err;
} worker;

/* The figures of one run (store or log-only) at one thread count. */
typedef struct run_result {
	double seconds; /* measured window */
	uint64_t appends, errors;
	double appends_per_s, p50_us, p99_us;
	double batches_per_group, syncs_per_s, sync_us;
	int first_rc;
	char first_msg[sizeof(((kappa_err *)0)->msg)];
} run_result;

typedef struct config_result {
	int threads;
	run_result store, log;
} config_result;

/* Write the event data {"n":N,"pad":"xx..."}, exactly DATA_BYTES bytes, into 'out'
 * (DATA_BYTES + 1 bytes, NUL-terminated). */
static void
make_data(char *out, uint64_t n)
{
	int k = snprintf(out, DATA_BYTES + 1, "{\"n\":%" PRIu64 ",\"pad\":\"", n);
	if (k < 0 || k > DATA_BYTES - 2)
		kb_die("event data prefix too long");
	memset(out + k, 'x', (size_t)(DATA_BYTES - 2 - k));
	memcpy(out + DATA_BYTES - 2, "\"}", 3);
}

/* ---- options ------------------------------------------------------------------------ */

/* The long options: the shared ones, then the program's own (own_option). */
static const struct option longopts[] = {
	KB_LONGOPTS,
	{"subjects", no_argument, NULL, 'j'},
	{"async", no_argument, NULL, 'a'},
	{NULL, 0, NULL, 0},
};

/* --async: appends from one submitting thread, N in flight (see run_async). */
static int async_mode;

/* Handle --subjects (sets the int at 'ctx') and --async for kb_opts_parse. */
static bool
own_option(int c, const char *arg, void *ctx)
{
	(void)arg;
	if (c == 'a') {
		async_mode = 1;
		return true;
	}
	if (c != 'j')
		return false;
	*(int *)ctx = 1;
	return true;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: store_append [--dir DIR] [--seconds S] [--quick] [--threads 1,16,64]\n"
		   "                    [--subjects] [--async]\n");
}

/* ---- the threads -------------------------------------------------------------------- */

static void
worker_error(worker *w, int rc, const kappa_err *err)
{
	if (w->errors++ == 0) {
		w->first_rc = rc;
		w->first_err = *err;
	}
}

/* kappa_append of one event per call, exact expected versions, a new request id each. */
static void *
store_main(void *arg)
{
	worker *w = arg;
	char stream[32], subject[32], request[48], data[DATA_BYTES + 1];
	snprintf(stream, sizeof(stream), "bench-%d", w->tid);
	snprintf(subject, sizeof(subject), "user-%d", w->tid);
	kappa_event_in ev = {"Bench", data, DATA_BYTES, w->subjects ? subject : NULL, NULL, 0, 0};
	kappa_append_result res;
	kappa_err err;
	int64_t expected = KAPPA_NO_STREAM;

	kb_team_wait(w->team);
	for (uint64_t seq = 0; !kb_team_stopped(w->team); seq++) {
		make_data(data, seq);
		snprintf(request, sizeof(request), "%d-%" PRIu64, w->tid, seq);
		uint64_t t0 = kb_mono_ns();
		int rc =
			kappa_append(w->db, stream, expected, request, &ev, 1, NULL, 0, &res, &err);
		uint64_t t1 = kb_mono_ns();
		if (rc == KAPPA_OK) {
			kb_lat_push(&w->lat, t1 - t0);
			if (res.deduplicated) { /* a fresh id can never be a retry */
				kappa_err e = {.code = KAPPA_EREQUEST_REUSED};
				snprintf(e.msg, sizeof(e.msg), "request %s answered as a retry",
					 request);
				worker_error(w, KAPPA_EREQUEST_REUSED, &e);
			}
			expected = (int64_t)res.version;
			continue;
		}
		worker_error(w, rc, &err);
		if (rc == KAPPA_EWRONG_VERSION) /* carry on from where the stream really is */
			expected = res.actual_version >= 0 ? res.actual_version : KAPPA_NO_STREAM;
		else if (rc != KAPPA_EINVAL && rc != KAPPA_EREQUEST_REUSED && rc != KAPPA_EBUSY)
			break; /* fatal, closed, I/O: every later call would fail the same way */
	}
	return NULL;
}

/* kp_log_append of a batch of the same event behind ATTRS_BYTES of attributes. */
static void *
log_main(void *arg)
{
	worker *w = arg;
	char stream[32], subject[32], data[DATA_BYTES + 1];
	uint8_t attrs[ATTRS_BYTES];
	snprintf(stream, sizeof(stream), "bench-%d", w->tid);
	snprintf(subject, sizeof(subject), "user-%d", w->tid);
	make_data(data, 0);
	for (size_t i = 0; i < sizeof(attrs); i++)
		attrs[i] = (uint8_t)(i * 37 + (size_t)w->tid + 1);

	kp_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.stream = (kp_bytes){(const uint8_t *)stream, strlen(stream)};
	ev.type = (kp_bytes){(const uint8_t *)"Bench", 5};
	ev.data = (kp_bytes){(const uint8_t *)data, DATA_BYTES};
	if (w->subjects)
		ev.subject = (kp_bytes){(const uint8_t *)subject, strlen(subject)};
	kp_batch b;
	kappa_err err;
	int rc = kp_batch_init(&b, w->limits, attrs, sizeof(attrs), &err);
	if (rc == KAPPA_OK && (rc = kp_batch_add(&b, &ev, &err)) != KAPPA_OK)
		kp_batch_release(&b);

	kb_team_wait(w->team);
	if (rc != KAPPA_OK) {
		worker_error(w, rc, &err);
		return NULL;
	}
	while (!kb_team_stopped(w->team)) {
		uint64_t pos, t0 = kb_mono_ns();
		rc = kp_log_append(w->log, &b, &pos, &err);
		uint64_t t1 = kb_mono_ns();
		if (rc != KAPPA_OK) {
			worker_error(w, rc, &err);
			break;
		}
		kb_lat_push(&w->lat, t1 - t0);
	}
	kp_batch_release(&b);
	return NULL;
}

/* ---- --async: one submitting thread keeps N appends in flight ----------------------------
 * The way a server appends: no thread per request. Each of the N slots has its own stream;
 * when its append is answered (from kappa's thread) the slot is queued, and the submitting
 * thread sends its next append, with the exact expected version the answer gave. The
 * log-only baseline does the same with kp_log_submit. */

typedef struct slot {
	struct async_run *run;
	int id;
	uint64_t seq, t0;
	int64_t version; /* last version of its stream, -1 none */
	kp_batch batch;	 /* log-only */
	kp_log_req req;	 /* log-only */
} slot;

typedef struct async_run {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int *ready;
	size_t nready;
	kb_lat lat;
	uint64_t errors, outstanding;
	int first_rc;
	char first_msg[sizeof(((kappa_err *)0)->msg)];
} async_run;

static void
slot_answered(slot *sl, int rc, int64_t version, const kappa_err *err)
{
	async_run *a = sl->run;
	uint64_t now = kb_mono_ns();
	pthread_mutex_lock(&a->lock);
	kb_lat_push(&a->lat, now - sl->t0);
	if (rc == KAPPA_OK) {
		sl->version = version;
	} else if (a->errors++ == 0) {
		a->first_rc = rc;
		snprintf(a->first_msg, sizeof(a->first_msg), "%s", err ? err->msg : "");
	}
	a->outstanding--;
	a->ready[a->nready++] = sl->id;
	pthread_cond_signal(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

static void
store_answered(void *ctx, int rc, const kappa_append_result *res, const kappa_err *err)
{
	slot_answered(ctx, rc, rc == KAPPA_OK ? (int64_t)res->version : -1, err);
}

static void
log_answered(kp_log_req *req, int rc)
{
	slot_answered(req->ctx, rc, 0, &req->err);
}

/* Send the slot's next append. The caller counted it in 'outstanding' (under the lock) and
 * must take it back if this fails. */
static int
submit(kappa_db *db, kp_log *log, slot *sl, int subjects, kappa_err *err)
{
	sl->t0 = kb_mono_ns();
	if (log) {
		sl->req = (kp_log_req){.batch = &sl->batch, .done = log_answered, .ctx = sl};
		kp_log_submit(log, &sl->req);
		return KAPPA_OK;
	}
	char stream[32], subject[32], request[48], data[DATA_BYTES + 1];
	snprintf(stream, sizeof(stream), "bench-%d", sl->id);
	snprintf(subject, sizeof(subject), "user-%d", sl->id);
	snprintf(request, sizeof(request), "%d-%" PRIu64, sl->id, sl->seq);
	make_data(data, sl->seq++);
	kappa_event_in ev = {"Bench", data, DATA_BYTES, subjects ? subject : NULL, NULL, 0, 0};
	return kappa_append_async(db, stream, sl->version < 0 ? KAPPA_NO_STREAM : sl->version,
				  request, &ev, 1, NULL, 0, store_answered, sl, err);
}

static void
run_async(kappa_db *db, kp_log *log, const kp_batch_limits *limits, int n, int subjects,
	  double seconds, run_result *r)
{
	static const kp_batch_limits unused; /* the store path builds no log batch */
	if (!limits)
		limits = &unused;
	async_run a;
	memset(&a, 0, sizeof(a));
	pthread_mutex_init(&a.lock, NULL);
	pthread_cond_init(&a.cond, NULL);
	a.ready = kb_calloc((size_t)n, sizeof(int), "slots");
	slot *sl = kb_calloc((size_t)n, sizeof(slot), "slots");
	uint8_t attrs[ATTRS_BYTES];
	memset(attrs, 7, sizeof(attrs));
	char data[DATA_BYTES + 1], stream[32], subject[32];
	make_data(data, 0);
	for (int i = 0; i < n; i++) {
		sl[i] = (slot){.run = &a, .id = i, .version = -1};
		if (log) {
			kp_event ev;
			memset(&ev, 0, sizeof(ev));
			snprintf(stream, sizeof(stream), "bench-%d", i);
			snprintf(subject, sizeof(subject), "user-%d", i);
			ev.stream = (kp_bytes){(const uint8_t *)stream, strlen(stream)};
			ev.type = (kp_bytes){(const uint8_t *)"Bench", 5};
			ev.data = (kp_bytes){(const uint8_t *)data, DATA_BYTES};
			if (subjects)
				ev.subject = (kp_bytes){(const uint8_t *)subject, strlen(subject)};
			kappa_err err;
			if (kp_batch_init(&sl[i].batch, limits, attrs, sizeof(attrs), &err) ||
			    kp_batch_add(&sl[i].batch, &ev, &err))
				kb_die("batch: %s", err.msg);
		}
	}
	kb_sleep_ns(250000000u);
	kp_log *stats_log = log ? log : db->log;
	kp_log_stats before, after;
	kp_log_get_stats(stats_log, &before);
	uint64_t t0 = kb_mono_ns(), end = t0 + (uint64_t)(seconds * 1e9);
	kappa_err err;
	pthread_mutex_lock(&a.lock);
	a.outstanding = (uint64_t)n;
	pthread_mutex_unlock(&a.lock);
	for (int i = 0; i < n; i++)
		if (submit(db, log, &sl[i], subjects, &err) != KAPPA_OK)
			kb_die("submit: %s", err.msg);
	pthread_mutex_lock(&a.lock);
	uint64_t done_at_end = 0;
	while (kb_mono_ns() < end) {
		while (a.nready == 0)
			pthread_cond_wait(&a.cond, &a.lock);
		while (a.nready > 0) {
			slot *x = &sl[a.ready[--a.nready]];
			a.outstanding++;
			pthread_mutex_unlock(&a.lock);
			int rc = submit(db, log, x, subjects, &err);
			pthread_mutex_lock(&a.lock);
			if (rc != KAPPA_OK) {
				a.outstanding--;
				if (a.errors++ == 0) {
					a.first_rc = rc;
					snprintf(a.first_msg, sizeof(a.first_msg), "%s", err.msg);
				}
			}
		}
	}
	double elapsed = (double)(kb_mono_ns() - t0) / 1e9;
	done_at_end = a.lat.n;
	while (a.outstanding > 0)
		pthread_cond_wait(&a.cond, &a.lock);
	pthread_mutex_unlock(&a.lock);
	kp_log_get_stats(stats_log, &after);

	memset(r, 0, sizeof(*r));
	r->seconds = elapsed;
	r->appends = done_at_end;
	r->errors = a.errors;
	r->first_rc = a.first_rc;
	snprintf(r->first_msg, sizeof(r->first_msg), "%s", a.first_msg);
	r->appends_per_s = (double)done_at_end / elapsed;
	kb_lat_sort(&a.lat);
	r->p50_us = kb_percentile_us(&a.lat, 0.50);
	r->p99_us = kb_percentile_us(&a.lat, 0.99);
	uint64_t groups = after.groups - before.groups, syncs = after.syncs - before.syncs;
	r->batches_per_group =
		groups ? (double)(after.appends - before.appends) / (double)groups : 0;
	r->syncs_per_s = (double)syncs / elapsed;
	r->sync_us = syncs ? (double)(after.sync_ns_total - before.sync_ns_total) / (double)syncs /
				     1000.0
			   : 0;
	kb_lat_free(&a.lat);
	for (int i = 0; log && i < n; i++)
		kp_batch_release(&sl[i].batch);
	free(sl);
	free(a.ready);
}

/* Start 'n' threads on 'db' or 'log', let them append for 'seconds', gather their figures
 * into 'r'. 'log' is also the log whose statistics are read (the store's for a db). */
static void
run_threads(kappa_db *db, kp_log *log, const kp_batch_limits *limits, int n, int subjects,
	    double seconds, run_result *r)
{
	worker *ws = kb_calloc((size_t)n, sizeof(*ws), "threads");
	kb_team team;
	for (int i = 0; i < n; i++) {
		ws[i].tid = i;
		ws[i].subjects = subjects;
		ws[i].db = db;
		ws[i].log = log;
		ws[i].limits = limits;
		ws[i].team = &team;
	}
	kb_team_start(&team, n, db ? store_main : log_main, ws, sizeof(*ws));

	kp_log_stats before, after;
	uint64_t window_ns = kb_team_run(&team, log, seconds, &before, &after);

	kb_lat all = {NULL, 0, 0};
	memset(r, 0, sizeof(*r));
	for (int i = 0; i < n; i++) {
		kb_lat_merge(&all, &ws[i].lat);
		if (ws[i].errors && r->errors == 0) {
			r->first_rc = ws[i].first_rc;
			snprintf(r->first_msg, sizeof(r->first_msg), "%s", ws[i].first_err.msg);
		}
		r->errors += ws[i].errors;
	}
	free(ws);
	kb_lat_sort(&all);
	size_t total = all.n;

	r->seconds = (double)window_ns / 1e9;
	r->appends = total;
	r->appends_per_s = (double)total / r->seconds;
	r->p50_us = kb_percentile_us(&all, 0.50);
	r->p99_us = kb_percentile_us(&all, 0.99);
	uint64_t groups = after.groups - before.groups, syncs = after.syncs - before.syncs;
	r->batches_per_group =
		groups ? (double)(after.appends - before.appends) / (double)groups : 0;
	r->syncs_per_s = (double)syncs / r->seconds;
	uint64_t sync_ns = after.sync_ns_total - before.sync_ns_total;
	r->sync_us = syncs ? (double)sync_ns / (double)syncs / 1000.0 : 0;
	kb_lat_free(&all);
}

static void
run_store(const char *dir, const kappa_options *ko, int threads, int subjects, double seconds,
	  run_result *r)
{
	kappa_db *db;
	kappa_err err;
	int rc = kappa_open(dir, ko, &db, &err);
	if (rc != KAPPA_OK)
		kb_die("kappa_open %s: %s (%s)", dir, err.msg, kappa_strerror(rc));
	if (async_mode)
		run_async(db, NULL, NULL, threads, subjects, seconds, r);
	else
		run_threads(db, db->log, NULL, threads, subjects, seconds, r);
	kappa_close(db);
}

static void
run_log(const char *dir, const kp_log_options *lo, int threads, int subjects, double seconds,
	run_result *r)
{
	kp_log *log;
	kappa_err err;
	int rc = kp_log_open(dir, lo, &log, &err);
	if (rc != KAPPA_OK)
		kb_die("kp_log_open %s: %s (%s)", dir, err.msg, kappa_strerror(rc));
	if (async_mode)
		run_async(NULL, log, &lo->limits, threads, subjects, seconds, r);
	else
		run_threads(NULL, log, &lo->limits, threads, subjects, seconds, r);
	kp_log_close(log);
}

/* The log options kappa_open derives from 'ko' (src/store/db.c), without the store's hooks. */
static void
log_options_like_store(const kappa_options *ko, kp_log_options *lo)
{
	kp_log_options_init(lo);
	lo->fsync_mode = (kp_fsync_mode)ko->fsync;
	lo->fsync_interval_ms = ko->fsync_interval_ms;
	lo->segment_bytes = ko->segment_bytes;
	lo->retention_ms = ko->retention_ms;
	lo->retention_bytes = ko->retention_bytes;
	lo->limits.max_event_bytes = ko->max_event_bytes;
	lo->limits.max_batch_bytes = ko->max_append_bytes;
	lo->limits.max_events = ko->max_append_events;
	if (lo->max_group_bytes < lo->limits.max_batch_bytes)
		lo->max_group_bytes = lo->limits.max_batch_bytes;
}

/* ---- output ------------------------------------------------------------------------- */

static const char *
mode_name(int subjects)
{
	return async_mode ? (subjects ? "subjects, async" : "no subjects, async")
			  : (subjects ? "subjects" : "no subjects");
}

static void
print_table(const config_result *rs, size_t n, const kb_bench_dir *dir, double seconds,
	    int subjects)
{
	printf("kappa store_append: kappa_append vs kp_log_append, fsync=always, 1 event of %d B "
	       "JSON per append, %s, %.1f s per run\n",
	       DATA_BYTES, mode_name(subjects), seconds);
	printf("dir %s (%s%s), %ld CPUs online\n", dir->path, dir->fs,
	       dir->is_tmpfs ? ": NOT A DISK, fsync is free" : "", sysconf(_SC_NPROCESSORS_ONLN));
	printf("store: own stream per thread, exact expected version, unique request id; "
	       "log-only: same event + %d B attrs\n",
	       ATTRS_BYTES);
	printf("latencies in microseconds; ratio = store / log-only; b/grp = batches per group "
	       "commit\n\n");

	printf("%4s | %10s %9s %9s %6s %6s | %10s %9s %9s %6s | %6s %6s %6s\n", "thr", "store ap/s",
	       "p50 us", "p99 us", "b/grp", "errors", "log ap/s", "p50 us", "p99 us", "b/grp",
	       "ap/s", "p50", "p99");
	for (size_t i = 0; i < n; i++) {
		const config_result *c = &rs[i];
		const run_result *s = &c->store, *l = &c->log;
		printf("%4d | %10.0f %9.1f %9.1f %6.2f %6" PRIu64 " | %10.0f %9.1f %9.1f %6.2f | "
		       "%6.3f %6.3f %6.3f\n",
		       c->threads, s->appends_per_s, s->p50_us, s->p99_us, s->batches_per_group,
		       s->errors, l->appends_per_s, l->p50_us, l->p99_us, l->batches_per_group,
		       kb_ratio(s->appends_per_s, l->appends_per_s), kb_ratio(s->p50_us, l->p50_us),
		       kb_ratio(s->p99_us, l->p99_us));
	}

	printf("\nsyncs (store | log-only)\n");
	printf("%4s | %9s %9s | %9s %9s\n", "thr", "syncs/s", "sync us", "syncs/s", "sync us");
	for (size_t i = 0; i < n; i++) {
		const config_result *c = &rs[i];
		printf("%4d | %9.0f %9.1f | %9.0f %9.1f\n", c->threads, c->store.syncs_per_s,
		       c->store.sync_us, c->log.syncs_per_s, c->log.sync_us);
	}

	printf("\n");
	for (size_t i = 0; i < n; i++) {
		const config_result *c = &rs[i];
		if (c->store.errors)
			printf("ERRORS: store, %d threads: %" PRIu64 ", first: %s (%s)\n",
			       c->threads, c->store.errors, c->store.first_msg,
			       kappa_strerror(c->store.first_rc));
		if (c->log.errors)
			printf("ERRORS: log-only, %d threads: %" PRIu64 ", first: %s (%s)\n",
			       c->threads, c->log.errors, c->log.first_msg,
			       kappa_strerror(c->log.first_rc));
		if (c->threads == TARGET_THREADS) {
			double q = kb_ratio(c->store.appends_per_s, c->log.appends_per_s);
			printf("target: store >= %.2f x log-only appends/s at %d threads: %.3f, "
			       "%s\n",
			       TARGET_RATIO, TARGET_THREADS, q,
			       q >= TARGET_RATIO ? "met" : "NOT met");
		}
	}
	printf("\n");
}

static void
json_compared(const config_result *c, const char *metric, double value, double base,
	      const char *unit, int subjects)
{
	printf("{\"bench\":\"store_append\",\"metric\":\"%s\",\"threads\":%d,\"value\":%.3f,"
	       "\"baseline\":%.3f,\"ratio\":%.3f,\"unit\":\"%s\",\"subjects\":%s,\"async\":%s}\n",
	       metric, c->threads, value, base, kb_ratio(value, base), unit,
	       subjects ? "true" : "false", async_mode ? "true" : "false");
}

static void
print_json(const config_result *rs, size_t n, int subjects)
{
	for (size_t i = 0; i < n; i++) {
		const config_result *c = &rs[i];
		const run_result *s = &c->store, *l = &c->log;
		json_compared(c, "appends_per_s", s->appends_per_s, l->appends_per_s, "appends/s",
			      subjects);
		json_compared(c, "p50_us", s->p50_us, l->p50_us, "us", subjects);
		json_compared(c, "p99_us", s->p99_us, l->p99_us, "us", subjects);
		printf("{\"bench\":\"store_append\",\"metric\":\"errors\",\"threads\":%d,"
		       "\"value\":%" PRIu64 ",\"baseline\":%" PRIu64 ",\"unit\":\"errors\","
		       "\"subjects\":%s,\"async\":%s}\n",
		       c->threads, s->errors, l->errors, subjects ? "true" : "false",
		       async_mode ? "true" : "false");
	}
}

/* ---- main --------------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	kb_init("store_append");
	kb_opts opts = {.seconds = 3, .threads = {1, 16, 64}, .nthreads = 3, .suffixes = false};
	int subjects = 0;
	kb_opts_parse(&opts, argc, argv, longopts, own_option, &subjects, usage);

	kappa_options ko;
	kappa_options_init(&ko);
	ko.fsync = KAPPA_FSYNC_ALWAYS;
	kp_log_options lo;
	log_options_like_store(&ko, &lo);

	kb_bench_dir dir;
	kb_bench_dir_create(&dir, opts.dir);

	config_result *rs = kb_calloc(opts.nthreads, sizeof(*rs), NULL);
	char path[PATH_MAX + 64]; /* dir.path (< PATH_MAX) + a short name */
	uint64_t errors = 0;
	for (size_t i = 0; i < opts.nthreads; i++) {
		config_result *r = &rs[i];
		r->threads = (int)opts.threads[i];
		fprintf(stderr, "store_append: %d threads (%s): store...", r->threads,
			mode_name(subjects));
		snprintf(path, sizeof(path), "%s/store-%d", dir.path, r->threads);
		kb_rm_tree(path);
		run_store(path, &ko, r->threads, subjects, opts.seconds, &r->store);
		kb_rm_tree(path);

		fprintf(stderr, " %.0f/s; log-only...", r->store.appends_per_s);
		snprintf(path, sizeof(path), "%s/log-%d", dir.path, r->threads);
		kb_rm_tree(path);
		run_log(path, &lo, r->threads, subjects, opts.seconds, &r->log);
		kb_rm_tree(path);
		fprintf(stderr, " %.0f/s: ratio %.3f\n", r->log.appends_per_s,
			kb_ratio(r->store.appends_per_s, r->log.appends_per_s));
		errors += r->store.errors + r->log.errors;
	}
	kb_bench_dir_remove(&dir);
	if (errors)
		fprintf(stderr, "store_append: %" PRIu64 " append errors (see the table)\n",
			errors);

	fflush(stderr);
	print_table(rs, opts.nthreads, &dir, opts.seconds, subjects);
	print_json(rs, opts.nthreads, subjects);
	free(rs);
	return errors ? 1 : 0;
}
