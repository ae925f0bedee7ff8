/*
 * pg.c -- bench/peers against PostgreSQL as "database + outbox table" through libpq: every
 * client is its own connection (a server process), all driven from one thread with
 * asynchronous queries and poll() (closed loop). Each statement is its own transaction
 * (autocommit) and the server runs with synchronous_commit=on, so a commit returns after
 * its WAL is flushed.
 *
 *   append   INSERT INTO outbox(payload) VALUES ($1::jsonb)
 *   batch    one INSERT of 'batch' rows (one transaction)
 *   retry    INSERT INTO outbox(request_id, payload) ... ON CONFLICT (request_id) DO NOTHING
 *            with each client's own fixed request id
 *   read     SELECT payload FROM outbox WHERE id = $1 (the primary key)
 *   catchup  SELECT id, payload FROM outbox WHERE id > $1 ORDER BY id LIMIT page, from 0
 *   fill     'events' rows in INSERTs of 1000 (synchronous_commit=off for the fill only)
 *   reset    a new outbox table
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peers.h"

#define FILL_CHUNK 1000

typedef struct slot {
	PGconn *c;
	uint64_t t0;
	bool busy, ok;
	char rid[64];
	char key[24];
} slot;

static PGconn *
connect_to(const pl_cfg *cfg)
{
	PGconn *c = PQconnectdb(cfg->target);
	if (PQstatus(c) != CONNECTION_OK)
		kb_die("postgresql (%s): %s", cfg->target, PQerrorMessage(c));
	return c;
}

static void
exec_ok(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		kb_die("postgresql: %s: %s", sql, PQerrorMessage(c));
	PQclear(r);
}

/* "INSERT INTO outbox(payload) VALUES ($1::jsonb), ... ($n::jsonb)" */
static char *
insert_sql(int n)
{
	char *p = kb_calloc((size_t)n, 24, "a statement"), *q = p;
	q += sprintf(q, "INSERT INTO outbox(payload) VALUES ");
	for (int i = 1; i <= n; i++)
		q += sprintf(q, "%s($%d::jsonb)", i > 1 ? "," : "", i);
	return p;
}

static void
prepare(PGconn *c, const char *name, const char *sql, int nparams)
{
	PGresult *r = PQprepare(c, name, sql, nparams, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		kb_die("postgresql: prepare %s: %s", name, PQerrorMessage(c));
	PQclear(r);
}

static void
fill(const pl_cfg *cfg, pl_tally *out)
{
	PGconn *c = connect_to(cfg);
	exec_ok(c, "SET synchronous_commit = off");
	char *sql = insert_sql(FILL_CHUNK);
	prepare(c, "fill", sql, FILL_CHUNK);
	free(sql);
	const char **vals = kb_calloc(FILL_CHUNK, sizeof(*vals), "parameters");
	for (int i = 0; i < FILL_CHUNK; i++)
		vals[i] = cfg->payload;
	pl_window w = {0, 0, UINT64_MAX};
	for (uint64_t k = 0; k < cfg->events; k += FILL_CHUNK) {
		uint64_t t0 = kb_mono_ns();
		PGresult *r = PQexecPrepared(c, "fill", FILL_CHUNK, vals, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			kb_die("postgresql: fill: %s", PQerrorMessage(c));
		PQclear(r);
		pl_tally_op(out, &w, t0, kb_mono_ns(), FILL_CHUNK);
	}
	/* whole chunks only: delete what is past 'events' (ids start at 1) */
	char del[96];
	snprintf(del, sizeof(del), "DELETE FROM outbox WHERE id > %" PRIu64, cfg->events);
	exec_ok(c, del);
	exec_ok(c, "VACUUM ANALYZE outbox");
	free(vals);
	PQfinish(c);
}

static void
catchup(const pl_cfg *cfg, pl_tally *out)
{
	PGconn *c = connect_to(cfg);
	char sql[128];
	snprintf(sql, sizeof(sql),
		 "SELECT id, payload FROM outbox WHERE id > $1::bigint ORDER BY id LIMIT %d",
		 cfg->page);
	prepare(c, "scan", sql, 1);
	pl_window w = {0, 0, UINT64_MAX};
	uint64_t got = 0;
	char last[24] = "0";
	while (got < cfg->events) {
		const char *vals[1] = {last};
		uint64_t t0 = kb_mono_ns();
		PGresult *r = PQexecPrepared(c, "scan", 1, vals, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK)
			kb_die("postgresql: scan: %s", PQerrorMessage(c));
		int rows = PQntuples(r);
		if (!rows)
			kb_die("postgresql: the scan ended after %" PRIu64 " rows", got);
		snprintf(last, sizeof(last), "%s", PQgetvalue(r, rows - 1, 0));
		got += (uint64_t)rows;
		PQclear(r);
		pl_tally_op(out, &w, t0, kb_mono_ns(), (uint64_t)rows);
	}
	PQfinish(c);
}

static void
send_op(const pl_cfg *cfg, slot *s, const char **vals, uint64_t *rng)
{
	s->t0 = kb_mono_ns();
	s->ok = true;
	int rc;
	switch (cfg->workload) {
	case PL_APPEND:
		rc = PQsendQueryPrepared(s->c, "ins", 1, vals, NULL, NULL, 0);
		break;
	case PL_BATCH:
		rc = PQsendQueryPrepared(s->c, "insb", cfg->batch, vals, NULL, NULL, 0);
		break;
	case PL_RETRY: {
		const char *v[2] = {s->rid, cfg->payload};
		rc = PQsendQueryPrepared(s->c, "retry", 2, v, NULL, NULL, 0);
		break;
	}
	default: { /* PL_READ */
		snprintf(s->key, sizeof(s->key), "%" PRIu64, pl_rand_below(rng, cfg->events) + 1);
		const char *v[1] = {s->key};
		rc = PQsendQueryPrepared(s->c, "get", 1, v, NULL, NULL, 0);
		break;
	}
	}
	if (!rc)
		kb_die("postgresql: %s", PQerrorMessage(s->c));
	s->busy = true;
}

static bool
result_ok(const pl_cfg *cfg, PGresult *r)
{
	if (cfg->workload == PL_READ)
		return PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	return PQresultStatus(r) == PGRES_COMMAND_OK;
}

void
pl_pg_run(const pl_cfg *cfg, pl_tally *out)
{
	if (cfg->workload == PL_RESET) {
		PGconn *c = connect_to(cfg);
		exec_ok(c, "SET client_min_messages = warning");
		exec_ok(c, "DROP TABLE IF EXISTS outbox");
		exec_ok(c, "CREATE TABLE outbox (id bigserial PRIMARY KEY, request_id text UNIQUE,"
			   " payload jsonb NOT NULL)");
		PQfinish(c);
		return;
	}
	if (cfg->workload == PL_FILL)
		return fill(cfg, out);
	if (cfg->workload == PL_CATCHUP)
		return catchup(cfg, out);
	int n = cfg->clients;
	slot *slots = kb_calloc((size_t)n, sizeof(*slots), "clients");
	struct pollfd *fds = kb_calloc((size_t)n, sizeof(*fds), "clients");
	const char **vals = kb_calloc((size_t)cfg->batch, sizeof(*vals), "parameters");
	for (int i = 0; i < cfg->batch; i++)
		vals[i] = cfg->payload;
	char *batch_sql = insert_sql(cfg->batch);
	uint64_t rng = 0x2545f4914f6cdd1dull ^ cfg->nonce;
	for (int i = 0; i < n; i++) {
		slot *s = &slots[i];
		s->c = connect_to(cfg);
		switch (cfg->workload) {
		case PL_APPEND:
			prepare(s->c, "ins", "INSERT INTO outbox(payload) VALUES ($1::jsonb)", 1);
			break;
		case PL_BATCH:
			prepare(s->c, "insb", batch_sql, cfg->batch);
			break;
		case PL_RETRY:
			prepare(s->c, "retry",
				"INSERT INTO outbox(request_id, payload) VALUES ($1, $2::jsonb) "
				"ON CONFLICT (request_id) DO NOTHING",
				2);
			pl_request_id(cfg, s->rid, sizeof(s->rid), i, 0);
			break;
		default:
			prepare(s->c, "get", "SELECT payload FROM outbox WHERE id = $1::bigint", 1);
			break;
		}
		fds[i].fd = PQsocket(s->c);
		fds[i].events = POLLIN;
	}
	free(batch_sql);
	pl_window w;
	pl_window_open(&w, cfg);
	int active = n;
	for (int i = 0; i < n; i++)
		send_op(cfg, &slots[i], vals, &rng);
	while (active > 0) {
		if (poll(fds, (nfds_t)n, 1000) < 0)
			kb_die("poll failed");
		for (int i = 0; i < n; i++) {
			slot *s = &slots[i];
			if (!s->busy || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (!PQconsumeInput(s->c))
				kb_die("postgresql: %s", PQerrorMessage(s->c));
			PGresult *r;
			while (s->busy && !PQisBusy(s->c)) {
				if ((r = PQgetResult(s->c))) {
					if (!result_ok(cfg, r) && s->ok) {
						s->ok = false;
						pl_tally_error(out, "postgresql: %s",
							       PQresultErrorMessage(r));
					}
					PQclear(r);
					continue;
				}
				/* NULL: the query is complete */
				s->busy = false;
				if (pl_op_ended(out, &w, cfg, s->t0, s->ok))
					send_op(cfg, s, vals, &rng);
				else
					active--;
			}
		}
	}
	for (int i = 0; i < n; i++)
		PQfinish(slots[i].c);
	free(slots);
	free(fds);
	free(vals);
}
