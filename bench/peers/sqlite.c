/*
 * sqlite.c -- bench/peers' embedded baseline: SQLite alone, in this process, WAL mode with
 * synchronous=FULL (each commit syncs the WAL). Writers share one connection behind a mutex
 * (SQLite has one writer at a time; a mutex queues them fairly where busy retries would
 * sleep); readers have a connection each. One thread per client.
 *
 *   append   INSERT INTO events(payload) VALUES (?) (its own transaction)
 *   batch    BEGIN, 'batch' INSERTs, COMMIT
 *   retry    INSERT INTO events(request_id, payload) ... ON CONFLICT DO NOTHING, each client
 *            with its own fixed request id
 *   read     SELECT payload FROM events WHERE id = ? (the rowid)
 *   catchup  SELECT id, payload FROM events ORDER BY id, 'page' rows per timed step
 *   fill     'events' rows in transactions of 10,000 (synchronous=OFF for the fill only)
 *   reset    a new database file
 * The database is DIR/bench.db (DIR: --target).
 */
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peers.h"

#define FILL_CHUNK 10000

typedef struct run {
	const pl_cfg *cfg;
	char path[4096];
	sqlite3 *wdb; /* the writers' connection */
	pthread_mutex_t mu;
} run;

static sqlite3 *
open_db(const run *r, bool readonly)
{
	sqlite3 *db;
	int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	if (sqlite3_open_v2(r->path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		kb_die("sqlite: %s: %s", r->path, sqlite3_errmsg(db));
	sqlite3_busy_timeout(db, 10000);
	return db;
}

static void
exec_ok(sqlite3 *db, const char *sql)
{
	char *msg = NULL;
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
		kb_die("sqlite: %s: %s", sql, msg);
}

static sqlite3_stmt *
prepare(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		kb_die("sqlite: %s: %s", sql, sqlite3_errmsg(db));
	return st;
}

/* Run a statement that returns no row, then reset it; false on error. */
static bool
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE;
}

static void
writer(void *ctx, int i, const pl_window *w, pl_tally *t)
{
	run *r = ctx;
	const pl_cfg *cfg = r->cfg;
	pthread_mutex_lock(&r->mu);
	sqlite3_stmt *ins =
		prepare(r->wdb, cfg->workload == PL_RETRY
					? "INSERT INTO events(request_id, payload) VALUES (?1, ?2) "
					  "ON CONFLICT (request_id) DO NOTHING"
					: "INSERT INTO events(payload) VALUES (?2)");
	sqlite3_stmt *begin = prepare(r->wdb, "BEGIN IMMEDIATE");
	sqlite3_stmt *commit = prepare(r->wdb, "COMMIT");
	char rid[64];
	pl_request_id(cfg, rid, sizeof(rid), i, 0);
	sqlite3_bind_text(ins, 1, rid, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 2, cfg->payload, (int)cfg->size, SQLITE_STATIC);
	pthread_mutex_unlock(&r->mu);
	int n = (int)pl_op_events(cfg);
	for (;;) {
		uint64_t t0 = kb_mono_ns();
		pthread_mutex_lock(&r->mu);
		bool ok = true;
		if (n > 1)
			ok = step_done(begin);
		for (int k = 0; ok && k < n; k++)
			ok = step_done(ins);
		if (n > 1)
			ok = step_done(commit) && ok;
		if (!ok) {
			pl_tally_error(t, "sqlite: %s", sqlite3_errmsg(r->wdb));
			sqlite3_exec(r->wdb, "ROLLBACK", NULL, NULL, NULL);
		}
		pthread_mutex_unlock(&r->mu);
		uint64_t t1 = kb_mono_ns();
		if (ok)
			pl_tally_op(t, w, t0, t1, (uint64_t)n);
		if (t1 >= w->end)
			break;
	}
	pthread_mutex_lock(&r->mu);
	sqlite3_finalize(ins);
	sqlite3_finalize(begin);
	sqlite3_finalize(commit);
	pthread_mutex_unlock(&r->mu);
}

static void
reader(void *ctx, int i, const pl_window *w, pl_tally *t)
{
	run *r = ctx;
	sqlite3 *db = open_db(r, true);
	sqlite3_stmt *get = prepare(db, "SELECT payload FROM events WHERE id = ?");
	uint64_t rng = (0x2545f4914f6cdd1dull ^ r->cfg->nonce) + (uint64_t)i * 7919;
	for (;;) {
		uint64_t t0 = kb_mono_ns();
		sqlite3_bind_int64(get, 1, (sqlite3_int64)pl_rand_below(&rng, r->cfg->events) + 1);
		int rc = sqlite3_step(get);
		bool ok = rc == SQLITE_ROW && (size_t)sqlite3_column_bytes(get, 0) == r->cfg->size;
		sqlite3_reset(get);
		uint64_t t1 = kb_mono_ns();
		if (ok)
			pl_tally_op(t, w, t0, t1, 1);
		else
			pl_tally_error(t, "sqlite: read: %s", sqlite3_errmsg(db));
		if (t1 >= w->end)
			break;
	}
	sqlite3_finalize(get);
	sqlite3_close(db);
}

static void
fill(run *r, pl_tally *out)
{
	const pl_cfg *cfg = r->cfg;
	exec_ok(r->wdb, "PRAGMA synchronous = OFF");
	sqlite3_stmt *ins = prepare(r->wdb, "INSERT INTO events(payload) VALUES (?)");
	sqlite3_bind_text(ins, 1, cfg->payload, (int)cfg->size, SQLITE_STATIC);
	pl_window w = {0, 0, UINT64_MAX};
	for (uint64_t k = 0; k < cfg->events;) {
		uint64_t n = cfg->events - k < FILL_CHUNK ? cfg->events - k : FILL_CHUNK;
		uint64_t t0 = kb_mono_ns();
		exec_ok(r->wdb, "BEGIN");
		for (uint64_t i = 0; i < n; i++)
			if (!step_done(ins))
				kb_die("sqlite: fill: %s", sqlite3_errmsg(r->wdb));
		exec_ok(r->wdb, "COMMIT");
		k += n;
		pl_tally_op(out, &w, t0, kb_mono_ns(), n);
	}
	sqlite3_finalize(ins);
	exec_ok(r->wdb, "PRAGMA wal_checkpoint(TRUNCATE)");
}

static void
catchup(run *r, pl_tally *out)
{
	const pl_cfg *cfg = r->cfg;
	sqlite3 *db = open_db(r, true);
	sqlite3_stmt *scan = prepare(db, "SELECT id, payload FROM events ORDER BY id");
	pl_window w = {0, 0, UINT64_MAX};
	uint64_t got = 0, bytes = 0;
	while (got < cfg->events) {
		uint64_t t0 = kb_mono_ns(), n = 0;
		while (n < (uint64_t)cfg->page && got + n < cfg->events) {
			if (sqlite3_step(scan) != SQLITE_ROW)
				kb_die("sqlite: the scan ended after %" PRIu64 " rows", got + n);
			bytes += (uint64_t)sqlite3_column_bytes(scan, 1);
			n++;
		}
		got += n;
		pl_tally_op(out, &w, t0, kb_mono_ns(), n);
	}
	if (bytes != got * cfg->size)
		kb_die("sqlite: the scan read %" PRIu64 " bytes, not %" PRIu64, bytes,
		       got * cfg->size);
	sqlite3_finalize(scan);
	sqlite3_close(db);
}

void
pl_sqlite_run(const pl_cfg *cfg, pl_tally *out)
{
	run r = {.cfg = cfg};
	snprintf(r.path, sizeof(r.path), "%s/bench.db", cfg->target);
	pthread_mutex_init(&r.mu, NULL);
	if (cfg->workload == PL_RESET) {
		char p[4200];
		unlink(r.path);
		snprintf(p, sizeof(p), "%s-wal", r.path);
		unlink(p);
		snprintf(p, sizeof(p), "%s-shm", r.path);
		unlink(p);
	}
	r.wdb = open_db(&r, false);
	exec_ok(r.wdb, "PRAGMA journal_mode = WAL");
	exec_ok(r.wdb, "PRAGMA synchronous = FULL");
	switch (cfg->workload) {
	case PL_RESET:
		exec_ok(r.wdb,
			"CREATE TABLE events (id INTEGER PRIMARY KEY, request_id TEXT UNIQUE,"
			" payload TEXT NOT NULL)");
		break;
	case PL_FILL:
		fill(&r, out);
		break;
	case PL_CATCHUP:
		catchup(&r, out);
		break;
	case PL_READ:
		pl_threads_run(cfg, reader, &r, out);
		break;
	default:
		pl_threads_run(cfg, writer, &r, out);
		break;
	}
	sqlite3_close(r.wdb);
	pthread_mutex_destroy(&r.mu);
}
