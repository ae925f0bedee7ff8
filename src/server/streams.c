/*
 * streams.c -- POST /streams/{s} (append), GET /streams/{s} and GET /log (reads).
 *
 * An append is checked here (shape and types, by append_parse.c), then handed to kappa_append_async
 * with its connection suspended; the answer resumes the connection, so waiting for the group commit
 * holds no thread. Everything the library checks (names, versions, limits) it answers itself, with
 * nothing written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "server/server_int.h"

/* ---- reads -------------------------------------------------------------------------- */

/* A page of events, streamed: {"events":[...], then where the next page starts: "next" and
 * "head" (log) or "next_version" (stream; reading backward it counts down, and is null once
 * version 0 was read). The JSON is produced a block at a time as the client reads, so a
 * 10,000-event page neither holds a request thread while it is built nor sits whole in
 * memory for a slow reader. An error after the first block cuts the answer short (the
 * client sees invalid JSON); errors before it are ordinary answers. */
typedef struct page {
	kappa_iter *it;
	kappa_db *db;
	const kp_token *tok;
	int by_stream, backward, at_start, count, done;
	uint64_t next;
	kp_buf out;
	size_t off;
} page;

#define PAGE_BLOCK (64 * 1024) /* JSON produced ahead of the client, at most */

static int
page_fill(page *p)
{
	kappa_event e;
	kappa_err err;
	int rc = 1;
	for (int i = 0; i < 512 && p->out.len < PAGE_BLOCK; i++) {
		if ((rc = kappa_iter_next(p->it, &e, &err)) != 1)
			break;
		p->next = (p->by_stream ? e.version : e.position) + 1;
		if (p->backward) {
			p->at_start = e.version == 0;
			p->next = e.version - !p->at_start;
		}
		if (!kp_stream_allowed(p->tok, e.stream, e.stream_len))
			continue;
		if ((p->count++ && kp_buf_append(&p->out, ",", 1)) || kp_event_write(&p->out, &e))
			return -1;
	}
	if (rc < 0)
		return -1;
	if (rc == 0) {
		char tail[96];
		int n;
		if (p->by_stream && p->at_start)
			n = snprintf(tail, sizeof(tail), "],\"next_version\":null}");
		else if (p->by_stream)
			n = snprintf(tail, sizeof(tail), "],\"next_version\":%llu}",
				     (unsigned long long)p->next);
		else
			n = snprintf(tail, sizeof(tail), "],\"next\":%llu,\"head\":%llu}",
				     (unsigned long long)p->next,
				     (unsigned long long)kappa_head(p->db));
		if (kp_buf_append(&p->out, tail, (size_t)n) < 0)
			return -1;
		p->done = 1;
	}
	return 0;
}

static ssize_t
page_reader(void *cls, char *buf, size_t max)
{
	page *p = cls;
	while (p->off == p->out.len) {
		if (p->done)
			return KP_HTTP_END;
		p->out.len = p->off = 0;
		if (page_fill(p) < 0)
			return KP_HTTP_ABORT;
	}
	size_t n = p->out.len - p->off;
	if (n > max)
		n = max;
	memcpy(buf, p->out.data + p->off, n);
	p->off += n;
	return (ssize_t)n;
}

static void
page_free(void *cls)
{
	page *p = cls;
	kappa_iter_free(p->it);
	kp_buf_release(&p->out);
	free(p);
}

static int
send_events(kp_request *r, kappa_iter *it, int by_stream, int backward, uint64_t from)
{
	page *p = calloc(1, sizeof(*p));
	if (!p || kp_buf_append(&p->out, "{\"events\":[", 11) < 0) {
		if (p)
			kp_buf_release(&p->out);
		free(p);
		kappa_iter_free(it);
		return KP_HTTP_CLOSE;
	}
	p->it = it;
	p->db = r->srv->db;
	p->tok = r->tok;
	p->by_stream = by_stream;
	p->backward = backward;
	p->next = from;
	const kp_http_hdr h = {"Content-Type", "application/json"};
	r->sent_status = 200;
	return kp_http_respond_stream(r->conn, 200, &h, 1, page_reader, p, page_free);
}

int
kp_http_read_stream(kp_request *r, const char *stream)
{
	kp_hconn *c = r->conn;
	uint64_t from, limit;
	const char *dir = kp_http_arg(c, "direction");
	int backward = dir && !strcmp(dir, "backward");
	if (kp_arg_u64(c, "from_version", backward ? UINT64_MAX : 0, UINT64_MAX, &from) ||
	    kp_arg_u64(c, "limit", 100, 10000, &limit) ||
	    (dir && !backward && strcmp(dir, "forward")))
		return kp_send_error(r, 400, "invalid_argument",
				     "from_version and limit must be non-negative integers, "
				     "direction forward or backward");
	kappa_iter *it;
	kappa_err err;
	int rc = kappa_read_stream(r->srv->db, stream, from, limit,
				   backward ? KAPPA_BACKWARD : KAPPA_FORWARD, &it, &err);
	return rc ? kp_send_kappa_error(r, rc, &err) : send_events(r, it, 1, backward, from);
}

int
kp_http_read_log(kp_request *r)
{
	uint64_t from, limit;
	if (kp_arg_u64(r->conn, "from", 0, UINT64_MAX, &from) ||
	    kp_arg_u64(r->conn, "limit", 1000, 10000, &limit))
		return kp_send_error(r, 400, "invalid_argument",
				     "from and limit must be non-negative integers");
	kappa_iter *it;
	kappa_err err;
	int rc = kappa_read_log(r->srv->db, from, limit, &it, &err);
	return rc ? kp_send_kappa_error(r, rc, &err) : send_events(r, it, 0, 0, from);
}

/* ---- appends ------------------------------------------------------------------------ */

static void
appended(void *ctx, int rc, const kappa_append_result *res, const kappa_err *err)
{
	kp_request *r = ctx;
	kp_server *s = r->srv;
	if (rc == KAPPA_OK) {
		r->status = res->deduplicated ? 200 : 201;
		/* The hottest answer of the server: formatted directly, not through jansson. */
		if (asprintf(&r->resp,
			     "{\"first_position\":%llu,\"last_position\":%llu,\"version\":%llu,"
			     "\"deduplicated\":%s}",
			     (unsigned long long)res->first_position,
			     (unsigned long long)res->last_position,
			     (unsigned long long)res->version,
			     res->deduplicated ? "true" : "false") < 0)
			r->resp = NULL;
	} else {
		r->status = (unsigned)kp_err_http_status(rc);
		r->resp = kp_error_body(rc, err ? err->msg : "", res);
	}
	r->answered = 1;
	kp_http_resume(r->conn);
	atomic_fetch_sub(&s->inflight, 1);
}

int
kp_http_append(kp_request *r, const char *stream)
{
	kp_server *s = r->srv;
	if (atomic_load(&s->inflight) >= (int)s->o.max_inflight_appends)
		return kp_send_overloaded(r, 503, "busy",
					  "too many appends in flight: retry shortly");
	kp_append_in a;
	char msg[256];
	const char *why = kp_append_parse(r->body ? r->body : "", r->len, &a, msg, sizeof(msg));
	int ret = KP_HTTP_OK;
	if (why) {
		ret = kp_send_error(r, 400, "invalid_argument", why);
	} else if (!kp_server_enter(s, &s->inflight)) {
		ret = kp_send_overloaded(r, 503, "closed", "the server is stopping");
	} else {
		kappa_err err;
		kp_http_suspend(r->conn);
		int rc = kappa_append_async(s->db, stream, a.expected, a.request_id, a.ev, a.n,
					    a.cl, a.m, appended, r, &err);
		if (rc != KAPPA_OK) /* refused at once: answer through the same path */
			appended(r, rc, &(kappa_append_result){.actual_version = -1}, &err);
	}
	kp_append_in_release(&a);
	return ret;
}
