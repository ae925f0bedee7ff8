/*
 * redis.c -- bench/peers against Redis 7 Streams through hiredis: every client is a
 * non-blocking connection, all driven from one thread with poll() (closed loop).
 *
 *   append   XADD bench * d PAYLOAD
 *   batch    MULTI, 'batch' x XADD, EXEC in one pipeline (atomic, like one kappa request)
 *   read     XRANGE r ID ID of a random filled entry (IDs are <key+1>-0)
 *   catchup  XRANGE r (LAST + COUNT page from the start until 'events' entries were read
 *   fill     XADD r <k+1>-0 d PAYLOAD for k below 'events', pipelined 1000 at a time
 *   reset    DEL bench r
 * Redis has no idempotent append (XADD * always adds), so there is no retry workload.
 */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peers.h"

#define FILL_CHUNK 1000

typedef struct slot {
	redisContext *c;
	uint64_t t0;
	int want, got; /* replies expected and received for the current operation */
	bool ok;
} slot;

static redisContext *
connect_to(const pl_cfg *cfg, bool blocking)
{
	int port = atoi(cfg->target);
	redisContext *c = blocking ? redisConnect("127.0.0.1", port)
				   : redisConnectNonBlock("127.0.0.1", port);
	if (!c || c->err)
		kb_die("redis on port %d: %s", port, c ? c->errstr : "out of memory");
	return c;
}

static redisReply *
command(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	redisReply *r = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (!r || r->type == REDIS_REPLY_ERROR)
		kb_die("redis: %s", r ? r->str : c->errstr);
	return r;
}

static void
fill(const pl_cfg *cfg, pl_tally *out)
{
	redisContext *c = connect_to(cfg, true);
	for (uint64_t k = 0; k < cfg->events;) {
		uint64_t n = cfg->events - k < FILL_CHUNK ? cfg->events - k : FILL_CHUNK;
		uint64_t t0 = kb_mono_ns();
		for (uint64_t i = 0; i < n; i++)
			redisAppendCommand(c, "XADD r %" PRIu64 "-0 d %b", k + i + 1, cfg->payload,
					   cfg->size);
		for (uint64_t i = 0; i < n; i++) {
			redisReply *r;
			if (redisGetReply(c, (void **)&r) != REDIS_OK)
				kb_die("redis: %s", c->errstr);
			if (r->type == REDIS_REPLY_ERROR)
				kb_die("redis: %s", r->str);
			freeReplyObject(r);
		}
		k += n;
		pl_window w = {0, 0, UINT64_MAX};
		pl_tally_op(out, &w, t0, kb_mono_ns(), n);
	}
	redisFree(c);
}

static void
catchup(const pl_cfg *cfg, pl_tally *out)
{
	redisContext *c = connect_to(cfg, true);
	char last[64] = "-";
	pl_window w = {0, 0, UINT64_MAX};
	uint64_t got = 0;
	while (got < cfg->events) {
		uint64_t t0 = kb_mono_ns();
		redisReply *r = command(c, "XRANGE r %s + COUNT %d", last, cfg->page);
		if (r->type != REDIS_REPLY_ARRAY || !r->elements)
			kb_die("redis: XRANGE from %s answered no entries after %" PRIu64, last,
			       got);
		redisReply *e = r->element[r->elements - 1];
		snprintf(last, sizeof(last), "(%s", e->element[0]->str);
		got += r->elements;
		pl_tally_op(out, &w, t0, kb_mono_ns(), r->elements);
		freeReplyObject(r);
	}
	redisFree(c);
}

/* Queue the slot's next operation. */
static void
send_op(const pl_cfg *cfg, slot *s, const char *cmd, size_t len, uint64_t *rng)
{
	s->t0 = kb_mono_ns();
	s->got = 0;
	s->ok = true;
	if (cfg->workload == PL_READ) {
		uint64_t k = pl_rand_below(rng, cfg->events) + 1;
		redisAppendCommand(s->c, "XRANGE r %" PRIu64 "-0 %" PRIu64 "-0", k, k);
		s->want = 1;
	} else {
		redisAppendFormattedCommand(s->c, cmd, len);
		s->want = cfg->workload == PL_BATCH ? cfg->batch + 2 : 1;
	}
	int done = 0;
	if (redisBufferWrite(s->c, &done) != REDIS_OK)
		kb_die("redis: %s", s->c->errstr);
}

/* Whether reply number s->got (0-based) of the operation is what it should be. */
static bool
reply_ok(const pl_cfg *cfg, const slot *s, const redisReply *r)
{
	if (r->type == REDIS_REPLY_ERROR)
		return false;
	switch (cfg->workload) {
	case PL_READ:
		return r->type == REDIS_REPLY_ARRAY && r->elements == 1;
	case PL_BATCH:
		return s->got != s->want - 1 ||
		       (r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)cfg->batch);
	default:
		return r->type == REDIS_REPLY_STRING;
	}
}

/* The formatted command(s) of one append or batch. */
static char *
format_ops(const pl_cfg *cfg, size_t *len)
{
	const char *argv[] = {"XADD", "bench", "*", "d", cfg->payload};
	size_t argl[] = {4, 5, 1, 1, cfg->size};
	char *one, *multi, *exec;
	int n1 = redisFormatCommandArgv(&one, 5, argv, argl);
	if (cfg->workload != PL_BATCH) {
		*len = (size_t)n1;
		return one;
	}
	int nm = redisFormatCommand(&multi, "MULTI");
	int ne = redisFormatCommand(&exec, "EXEC");
	size_t total = (size_t)nm + (size_t)n1 * (size_t)cfg->batch + (size_t)ne;
	char *p = kb_calloc(total + 1, 1, "commands"), *q = p;
	memcpy(q, multi, (size_t)nm);
	q += nm;
	for (int i = 0; i < cfg->batch; i++, q += n1)
		memcpy(q, one, (size_t)n1);
	memcpy(q, exec, (size_t)ne);
	redisFreeCommand(one);
	redisFreeCommand(multi);
	redisFreeCommand(exec);
	*len = total;
	return p;
}

void
pl_redis_run(const pl_cfg *cfg, pl_tally *out)
{
	if (cfg->workload == PL_RESET) {
		redisContext *c = connect_to(cfg, true);
		freeReplyObject(command(c, "DEL bench r"));
		redisFree(c);
		return;
	}
	if (cfg->workload == PL_FILL)
		return fill(cfg, out);
	if (cfg->workload == PL_CATCHUP)
		return catchup(cfg, out);
	int n = cfg->clients;
	size_t len = 0;
	char *cmd = cfg->workload == PL_READ ? NULL : format_ops(cfg, &len);
	slot *slots = kb_calloc((size_t)n, sizeof(*slots), "clients");
	struct pollfd *fds = kb_calloc((size_t)n, sizeof(*fds), "clients");
	uint64_t rng = 0x2545f4914f6cdd1dull ^ cfg->nonce;
	for (int i = 0; i < n; i++) {
		slots[i].c = connect_to(cfg, false);
		fds[i].fd = slots[i].c->fd;
	}
	pl_window w;
	pl_window_open(&w, cfg);
	int active = n;
	for (int i = 0; i < n; i++)
		send_op(cfg, &slots[i], cmd, len, &rng);
	while (active > 0) {
		for (int i = 0; i < n; i++) {
			fds[i].events = slots[i].want ? POLLIN : 0;
			if (slots[i].c->obuf && slots[i].c->obuf[0])
				fds[i].events |= POLLOUT;
		}
		if (poll(fds, (nfds_t)n, 1000) < 0)
			kb_die("poll failed");
		for (int i = 0; i < n; i++) {
			slot *s = &slots[i];
			if (fds[i].revents & POLLOUT) {
				int done;
				if (redisBufferWrite(s->c, &done) != REDIS_OK)
					kb_die("redis: %s", s->c->errstr);
			}
			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (redisBufferRead(s->c) != REDIS_OK)
				kb_die("redis: %s", s->c->errstr);
			redisReply *r;
			while (s->want && redisGetReply(s->c, (void **)&r) == REDIS_OK && r) {
				if (!reply_ok(cfg, s, r) && s->ok) {
					s->ok = false;
					pl_tally_error(out, "redis: %s",
						       r->type == REDIS_REPLY_ERROR
							       ? r->str
							       : "unexpected reply");
				}
				freeReplyObject(r);
				if (++s->got < s->want)
					continue;
				s->want = 0;
				if (pl_op_ended(out, &w, cfg, s->t0, s->ok))
					send_op(cfg, s, cmd, len, &rng);
				else
					active--;
			}
		}
	}
	for (int i = 0; i < n; i++)
		redisFree(slots[i].c);
	free(slots);
	free(fds);
	free(cmd);
}
