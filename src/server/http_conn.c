/*
 * http_conn.c -- one connection's requests, on its event thread: read until EAGAIN, parse
 * (http_parse.c), hand the request to the server, send the answer with as few send calls
 * as it takes (partial writes wait for EPOLLOUT), produce streams as the client reads, then
 * the next request.
 *
 * Design notes:
 *  1. Phases: PARSE (reading a request) -> HANDLE (the server answers, maybe after a
 *     suspension) -> SEND (the answer, all of it, leaves) -> PARSE. Input that arrives
 *     meanwhile waits in c->in (bounded): pipelined requests are answered in order.
 *  2. A suspended connection is never freed: what would close it (a failed write) marks it
 *     dead, and it closes when resumed. Only the engine's stop frees it suspended.
 *  3. Memory per connection: the parser's pieces of the current request, at most
 *     KP_HTTP_IN_CAP bytes of unparsed input (none while idle: reads go to the thread's
 *     scratch buffer first), and the unsent answer; a stream is produced only while less
 *     than KP_HTTP_OUT_LOW bytes of it are unsent, so a slow reader holds it back.
 *  4. Fairness: a connection is served until it has no complete request buffered and its
 *     last read was short; its next request comes as a new readiness event, after the
 *     other connections that were ready before it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "server/http_int.h"

kp_hconn *
kp_hconn_new(kp_hloop *l, int fd)
{
	kp_hconn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->loop = l;
	c->fd = fd;
	kp_hreq_init(&c->q, l->h->cfg.max_header_bytes, l->h->cfg.max_body_bytes);
	c->since_ms = c->last_io_ms = kp_mono_ms();
	c->can_read = 1;
	c->next = l->conns;
	if (l->conns)
		l->conns->prev = c;
	l->conns = c;
	return c;
}

static void
set_busy(kp_hconn *c, int busy)
{
	if (c->busy != busy)
		atomic_fetch_add(&c->loop->h->busy, busy ? 1 : -1);
	c->busy = busy;
}

void
kp_hconn_close(kp_hconn *c)
{
	kp_hloop *l = c->loop;
	kp_http *h = l->h;
	if (c->suspended && !atomic_load(&h->stopping)) {
		c->dead = 1; /* a resume is owed: close then (design note 2) */
		return;
	}
	if (c->pfree)
		c->pfree(c->pctx);
	c->pfree = NULL;
	c->produce = NULL;
	if (c->in_request)
		h->cfg.on_done(h->cfg.ctx, c);
	c->in_request = 0;
	set_busy(c, 0);
	if (c->prev)
		c->prev->next = c->next;
	else
		l->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	close(c->fd); /* also leaves the epoll set */
	atomic_fetch_sub(h->cfg.connections, 1);
	kp_hreq_release(&c->q);
	free(c->in);
	kp_buf_release(&c->out);
	free(c);
}

void
kp_hconn_tick(kp_hconn *c, int64_t now)
{
	kp_http *h = c->loop->h;
	int64_t idle = (int64_t)h->cfg.idle_timeout_s * 1000;
	if (c->suspended || c->dead)
		return;
	if (c->phase == KP_PH_PARSE &&
	    now - c->since_ms >= (int64_t)h->cfg.request_timeout_s * 1000) {
		atomic_fetch_add(h->cfg.reaped, 1);
		kp_hconn_close(c);
	} else if ((c->phase == KP_PH_PARSE || c->out_off < c->out.len) &&
		   now - c->last_io_ms >= idle) {
		kp_hconn_close(c);
	}
}

/* ---- the current request, for the server ---------------------------------------------- */

const char *
kp_http_method(const kp_hconn *c)
{
	return kp_hreq_method(&c->q);
}

const char *
kp_http_path(const kp_hconn *c)
{
	return kp_hreq_path(&c->q);
}

int
kp_http_version_minor(const kp_hconn *c)
{
	return c->q.p.http_minor;
}

const char *
kp_http_header(const kp_hconn *c, const char *name)
{
	return kp_hreq_header(&c->q, name);
}

const char *
kp_http_arg(const kp_hconn *c, const char *name)
{
	return kp_hreq_arg(&c->q, name);
}

size_t
kp_http_args(const kp_hconn *c, int (*fn)(void *ctx, const char *k, const char *v), void *ctx)
{
	return kp_hreq_args(&c->q, fn, ctx);
}

const char *
kp_http_body(const kp_hconn *c, size_t *len)
{
	*len = c->q.blen;
	return c->q.blen ? c->q.body : NULL;
}

uint64_t
kp_http_content_length(const kp_hconn *c)
{
	return kp_hreq_content_length(&c->q);
}

void *
kp_http_user(const kp_hconn *c)
{
	return c->user;
}

void
kp_http_set_user(kp_hconn *c, void *user)
{
	c->user = user;
}

/* ---- answers -------------------------------------------------------------------------- */

static int
start_answer(kp_hconn *c, unsigned status, const kp_http_hdr *h, size_t nh, uint64_t len)
{
	if (c->answered)
		return KP_HTTP_CLOSE; /* a second answer to one request */
	if (atomic_load(&c->loop->h->draining))
		c->close_after = 1;
	if (kp_http_head(c, status, h, nh, len))
		return KP_HTTP_CLOSE;
	c->answered = 1;
	c->status = status;
	return KP_HTTP_OK;
}

int
kp_http_respond(kp_hconn *c, unsigned status, const kp_http_hdr *h, size_t nh, const void *body,
		size_t len)
{
	if (start_answer(c, status, h, nh, len))
		return KP_HTTP_CLOSE;
	if (!c->q.head && len && kp_buf_append(&c->out, body, len))
		return KP_HTTP_CLOSE;
	return KP_HTTP_OK;
}

int
kp_http_respond_stream(kp_hconn *c, unsigned status, const kp_http_hdr *h, size_t nh,
		       kp_http_producer fn, void *ctx, void (*free_ctx)(void *ctx))
{
	if (start_answer(c, status, h, nh, UINT64_MAX)) {
		free_ctx(ctx);
		return KP_HTTP_CLOSE;
	}
	if (c->q.head) {
		free_ctx(ctx);
		return KP_HTTP_OK;
	}
	c->produce = fn;
	c->pctx = ctx;
	c->pfree = free_ctx;
	return KP_HTTP_OK;
}

void
kp_http_close_after(kp_hconn *c)
{
	c->close_after = 1;
}

void
kp_http_suspend(kp_hconn *c)
{
	c->suspended = 1;
}

/* ---- the connection's work ------------------------------------------------------------ */

/* Read or parse one piece. Returns 1 (go on), 0 (wait for input) or -1 (closed). */
static int
parse_step(kp_hconn *c)
{
	kp_hloop *l = c->loop;
	kp_http *h = l->h;
	const char *data;
	size_t n;
	int from_in = c->in_off < c->in_len;
	if (from_in) {
		data = c->in + c->in_off;
		n = c->in_len - c->in_off;
	} else {
		if (!c->can_read) {
			if (c->read_closed)
				return kp_hconn_close(c), -1;
			return 0;
		}
		ssize_t r = recv(c->fd, l->scratch, sizeof(l->scratch), 0);
		if (r < 0 && errno == EINTR)
			return 1;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			c->can_read = 0;
			return 0;
		}
		if (r <= 0) { /* EOF or an error: a request not complete yet is dropped */
			c->read_closed = 1;
			return kp_hconn_close(c), -1;
		}
		/* A short read took all there was: what arrives later is a new edge. So the
		 * connection waits for it instead of trying another read (an EAGAIN), and the
		 * thread's other connections get their turn (design note 4). */
		if ((size_t)r < sizeof(l->scratch) && !c->hup)
			c->can_read = 0;
		c->last_io_ms = kp_mono_ms();
		data = l->scratch;
		n = (size_t)r;
	}
	size_t used = 0;
	int ev = kp_hreq_feed(&c->q, data, n, &used);
	if (from_in) {
		c->in_off += used;
		if (c->in_off == c->in_len)
			c->in_off = c->in_len = 0;
	} else if (used < n) { /* keep the rest for later (design note 1) */
		if (!c->in && !(c->in = malloc(KP_HTTP_IN_CAP)))
			return kp_hconn_close(c), -1;
		memcpy(c->in, data + used, n - used);
		c->in_off = 0;
		c->in_len = n - used;
	}
	switch (ev) {
	case KP_HREQ_HEADERS:
		c->in_request = 1;
		c->early = 1;
		int rc = h->cfg.on_headers(h->cfg.ctx, c);
		c->early = 0;
		if (rc != KP_HTTP_OK)
			return kp_hconn_close(c), -1;
		if (c->answered && c->q.has_body) {
			set_busy(c, 1);
			c->phase = KP_PH_SEND; /* the body is not read; the connection closes */
		} else if (!c->answered && c->q.expect_continue) {
			static const char go[] = "HTTP/1.1 100 Continue\r\n\r\n";
			if (kp_buf_append(&c->out, go, sizeof(go) - 1))
				return kp_hconn_close(c), -1;
		}
		return 1;
	case KP_HREQ_DONE:
		set_busy(c, 1);
		c->phase = KP_PH_HANDLE;
		return 1;
	case KP_HREQ_ERROR:
		c->in_request = 1;
		c->close_after = 1;
		if (!c->answered)
			h->cfg.on_error(h->cfg.ctx, c, c->q.err_status, c->q.err_msg);
		if (!c->answered)
			return kp_hconn_close(c), -1;
		set_busy(c, 1);
		c->phase = KP_PH_SEND;
		return 1;
	default:
		return 1;
	}
}

/* Send what is queued, producing more of a stream as it goes. Returns 1 (the answer is
 * all sent), 0 (wait: EPOLLOUT or a resume) or -1 (closed). */
static int
send_step(kp_hconn *c)
{
	kp_hloop *l = c->loop;
	for (;;) {
		while (c->produce && !c->suspended && c->out.len - c->out_off < KP_HTTP_OUT_LOW) {
			ssize_t r = c->produce(c->pctx, l->scratch, sizeof(l->scratch));
			char hex[24];
			int hn = 0;
			if (r > 0) {
				if (c->chunked)
					hn = snprintf(hex, sizeof(hex), "%zx\r\n", (size_t)r);
				if (kp_buf_append(&c->out, hex, (size_t)hn) ||
				    kp_buf_append(&c->out, l->scratch, (size_t)r) ||
				    (c->chunked && kp_buf_append(&c->out, "\r\n", 2)))
					return kp_hconn_close(c), -1;
			} else if (r == 0 && c->suspended) {
				break;
			} else if (r == KP_HTTP_END) {
				if (c->chunked && kp_buf_append(&c->out, "0\r\n\r\n", 5))
					return kp_hconn_close(c), -1;
				c->pfree(c->pctx);
				c->pfree = NULL;
				c->produce = NULL;
			} else { /* aborted (or nothing without a suspension): cut the answer */
				c->close_after = 1;
				c->pfree(c->pctx);
				c->pfree = NULL;
				c->produce = NULL;
				return kp_hconn_close(c), -1;
			}
		}
		if (c->out_off == c->out.len)
			return c->produce ? 0 : 1;
		ssize_t w = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (w <= 0)
			return kp_hconn_close(c), -1;
		c->last_io_ms = kp_mono_ms();
		c->out_off += (size_t)w;
		if (c->out_off == c->out.len)
			c->out.len = c->out_off = 0;
	}
}

/* The answer is sent: end the request. Returns 0 (ready for the next) or -1 (closed). */
static int
finish(kp_hconn *c)
{
	kp_http *h = c->loop->h;
	if (c->in_request)
		h->cfg.on_done(h->cfg.ctx, c);
	c->in_request = 0;
	c->user = NULL;
	set_busy(c, 0);
	c->answered = 0;
	c->status = 0;
	c->chunked = 0;
	c->since_ms = kp_mono_ms();
	if (c->close_after || atomic_load(&h->draining))
		return kp_hconn_close(c), -1;
	if (c->out.cap > 4 * KP_HTTP_OUT_LOW) { /* a large answer's memory goes */
		kp_buf_release(&c->out);
		c->out_off = 0;
	}
	kp_hreq_next(&c->q);
	c->phase = KP_PH_PARSE;
	return 0;
}

void
kp_hconn_run(kp_hconn *c)
{
	kp_http *h = c->loop->h;
	if (c->dead) {
		if (!c->suspended)
			kp_hconn_close(c);
		return;
	}
	for (;;) {
		switch (c->phase) {
		case KP_PH_PARSE:
			if (c->out_off < c->out.len) { /* a 100 Continue */
				ssize_t w = send(c->fd, c->out.data + c->out_off,
						 c->out.len - c->out_off, MSG_NOSIGNAL);
				if (w > 0) {
					c->out_off += (size_t)w;
					if (c->out_off == c->out.len)
						c->out.len = c->out_off = 0;
				} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
					kp_hconn_close(c);
					return;
				}
			}
			if (parse_step(c) <= 0)
				return;
			break;
		case KP_PH_HANDLE:
			if (c->suspended)
				return;
			if (!c->answered) {
				if (h->cfg.on_request(h->cfg.ctx, c) != KP_HTTP_OK) {
					kp_hconn_close(c);
					return;
				}
				if (!c->answered) {
					if (!c->suspended) /* neither answered nor waiting */
						kp_hconn_close(c);
					return;
				}
			}
			c->phase = KP_PH_SEND;
			break;
		case KP_PH_SEND:
			switch (send_step(c)) {
			case 1:
				if (finish(c) < 0)
					return;
				break;
			default:
				return;
			}
			break;
		}
	}
}
