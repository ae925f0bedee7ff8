/*
 * sse.c -- GET /subscribe: the log as Server-Sent Events, catch-up first, then live.
 *
 * Each event is "id: POSITION\ndata: EVENT\n\n", so a client that reconnects with
 * Last-Event-ID resumes right after the last event it saw: no gap, no duplicate. Lines
 * starting with ':' are comments: a greeting, a heartbeat every heartbeat_s seconds of
 * silence, and a last line when the server stops.
 *
 * A subscriber holds no thread while it waits. Its content reader sends what the log has;
 * when there is nothing, it suspends the connection. The server's housekeeping thread
 * wakes (kp_sse_hub_wake) every suspended subscriber when the head moves, when a
 * heartbeat is due and when the server stops; it follows the head only while there are
 * subscribers, and the first one kicks it (kp_server_tick_kick). Suspending and waking
 * both happen under the hub's lock, and a reader checks the head under that lock before it
 * suspends, so a commit between its last read and its suspension is never missed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "server/server_int.h"

#define SSE_BLOCK (64 * 1024)
#define SSE_MAX_TYPES 32

typedef struct kp_sse kp_sse;

struct kp_sse_hub {
	kp_server *srv;
	pthread_mutex_t lock;
	kp_sse *list;
	int count;
	int stopping;
};

struct kp_sse {
	kp_sse_hub *hub;
	kp_hconn *conn;
	kappa_sub *sub;
	const kp_token *tok;
	uint64_t next_pos; /* the next position the subscription reads */
	char *prefix;	   /* ?stream_prefix= */
	char *types[SSE_MAX_TYPES];
	size_t ntypes;
	kp_buf out; /* formatted, not yet sent */
	size_t out_off;
	int64_t last_write_ms;
	int suspended; /* under hub->lock */
	int ended;     /* the last line was queued */
	kp_sse *prev, *next;
};

int
kp_sse_hub_new(kp_server *s, kp_sse_hub **out)
{
	kp_sse_hub *h = calloc(1, sizeof(*h));
	if (!h)
		return KAPPA_ENOMEM;
	h->srv = s;
	pthread_mutex_init(&h->lock, NULL);
	*out = h;
	return KAPPA_OK;
}

void
kp_sse_hub_free(kp_sse_hub *h)
{
	if (!h)
		return;
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int
kp_sse_hub_count(kp_sse_hub *h)
{
	pthread_mutex_lock(&h->lock);
	int n = h->count;
	pthread_mutex_unlock(&h->lock);
	return n;
}

void
kp_sse_hub_wake(kp_sse_hub *h, int stopping)
{
	int64_t now = kp_mono_ms();
	int64_t beat = (int64_t)h->srv->o.heartbeat_s * 1000;
	uint64_t head = kappa_head(h->srv->db);
	pthread_mutex_lock(&h->lock);
	if (stopping)
		h->stopping = 1;
	for (kp_sse *x = h->list; x; x = x->next)
		if (x->suspended &&
		    (h->stopping || head > x->next_pos || now - x->last_write_ms >= beat)) {
			x->suspended = 0;
			kp_http_resume(x->conn);
		}
	pthread_mutex_unlock(&h->lock);
}

static int
wanted(const kp_sse *x, const kappa_event *e)
{
	if (!kp_stream_allowed(x->tok, e->stream, e->stream_len))
		return 0;
	if (x->prefix) {
		size_t pl = strlen(x->prefix);
		if (pl > e->stream_len || memcmp(e->stream, x->prefix, pl))
			return 0;
	}
	if (!x->ntypes)
		return 1;
	for (size_t i = 0; i < x->ntypes; i++)
		if (strlen(x->types[i]) == e->type_len &&
		    !memcmp(x->types[i], e->type, e->type_len))
			return 1;
	return 0;
}

/* Append what the log has (up to about one block) to x->out. Returns 0, or a kappa code
 * when the subscription cannot go on (the text saying why is queued). */
static int
fill(kp_sse *x)
{
	kappa_event e;
	kappa_err err;
	int rc = 0;
	for (int i = 0; i < 1024 && x->out.len < SSE_BLOCK; i++) {
		rc = kappa_sub_next(x->sub, &e, 0, &err);
		if (rc <= 0)
			break;
		x->next_pos = e.position + 1;
		if (!wanted(x, &e))
			continue;
		char head[48];
		int hl = snprintf(head, sizeof(head),
				  "id: %llu\ndata: ", (unsigned long long)e.position);
		int ok = kp_buf_append(&x->out, head, (size_t)hl) == 0 &&
			 kp_event_write(&x->out, &e) == 0 && kp_buf_append(&x->out, "\n\n", 2) == 0;
		if (!ok) {
			rc = KAPPA_ENOMEM;
			break;
		}
		atomic_fetch_add(&x->hub->srv->m.sse_events, 1);
	}
	if (rc >= 0)
		return 0;
	if (rc != KAPPA_ECLOSED) {
		char line[400];
		int n = snprintf(line, sizeof(line), "event: error\ndata: {\"code\":\"%s\"}\n\n",
				 kappa_strerror(rc));
		kp_buf_append(&x->out, line, (size_t)n);
	}
	return rc;
}

static ssize_t
copy_out(kp_sse *x, char *buf, size_t max)
{
	size_t n = x->out.len - x->out_off;
	if (n > max)
		n = max;
	memcpy(buf, x->out.data + x->out_off, n);
	x->out_off += n;
	if (x->out_off == x->out.len)
		x->out.len = x->out_off = 0;
	x->last_write_ms = kp_mono_ms();
	return (ssize_t)n;
}

static ssize_t
reader(void *cls, char *buf, size_t max)
{
	kp_sse *x = cls;
	kp_sse_hub *h = x->hub;
	for (;;) {
		if (x->out_off < x->out.len)
			return copy_out(x, buf, max);
		if (x->ended)
			return KP_HTTP_END;
		pthread_mutex_lock(&h->lock);
		int stopping = h->stopping;
		pthread_mutex_unlock(&h->lock);
		if (stopping) {
			static const char bye[] = ": kappa is stopping; reconnect with "
						  "Last-Event-ID\n\n";
			kp_buf_append(&x->out, bye, sizeof(bye) - 1);
			x->ended = 1;
			continue;
		}
		if (fill(x) < 0) {
			x->ended = 1;
			continue;
		}
		if (x->out.len)
			continue;
		if (kp_mono_ms() - x->last_write_ms >= (int64_t)h->srv->o.heartbeat_s * 1000) {
			kp_buf_append(&x->out, ": keep-alive\n\n", 14);
			continue;
		}
		pthread_mutex_lock(&h->lock);
		if (!h->stopping && kappa_head(h->srv->db) <= x->next_pos) {
			x->suspended = 1;
			kp_http_suspend(x->conn);
			pthread_mutex_unlock(&h->lock);
			return 0; /* nothing now; woken by kp_sse_hub_wake */
		}
		pthread_mutex_unlock(&h->lock);
	}
}

/* Free a subscriber (already off the hub's list, or never on it). */
static void
sse_release(kp_sse *x)
{
	if (!x)
		return;
	kappa_sub_free(x->sub);
	for (size_t i = 0; i < x->ntypes; i++)
		free(x->types[i]);
	free(x->prefix);
	kp_buf_release(&x->out);
	free(x);
}

static void
sse_free(void *cls)
{
	kp_sse *x = cls;
	kp_sse_hub *h = x->hub;
	pthread_mutex_lock(&h->lock);
	if (x->prev)
		x->prev->next = x->next;
	else
		h->list = x->next;
	if (x->next)
		x->next->prev = x->prev;
	h->count--;
	pthread_mutex_unlock(&h->lock);
	sse_release(x);
}

/* ?types=A,B and ?stream_prefix=P. Returns NULL or why not. */
static const char *
parse_filters(kp_sse *x, kp_hconn *c)
{
	const char *p = kp_http_arg(c, "stream_prefix");
	if (p && *p) {
		if (strlen(p) > KAPPA_MAX_STREAM)
			return "stream_prefix is at most 200 bytes";
		if (!(x->prefix = strdup(p)))
			return "out of memory";
	}
	const char *t = kp_http_arg(c, "types");
	const char *why = kp_parse_types(t, x->types, SSE_MAX_TYPES, &x->ntypes);
	if (why)
		return why;
	return NULL;
}

int
kp_http_subscribe(kp_request *r)
{
	kp_server *s = r->srv;
	kp_sse_hub *h = s->sse;
	kp_hconn *c = r->conn;
	uint64_t from;
	if (kp_arg_u64(c, "from", 0, UINT64_MAX, &from))
		return kp_send_error(r, 400, "invalid_argument",
				     "from must be a non-negative integer");
	const char *last = kp_http_header(c, "Last-Event-ID");
	if (kp_parse_last_event_id(last, &from) < 0)
		return kp_send_error(r, 400, "invalid_argument",
				     "Last-Event-ID must be an event position");
	pthread_mutex_lock(&h->lock);
	int full = h->count >= (int)s->o.max_subscribers || h->stopping;
	int first = !full && h->count++ == 0; /* reserved; released by sse_free or below */
	pthread_mutex_unlock(&h->lock);
	if (full)
		return kp_send_overloaded(r, 503, "busy", "too many subscribers: retry shortly");
	if (first)
		kp_server_tick_kick(s); /* the housekeeping thread follows the head again */
	kp_sse *x = calloc(1, sizeof(*x));
	const char *why = x ? parse_filters(x, c) : "out of memory";
	kappa_err err;
	int rc = KAPPA_OK;
	if (!why && (rc = kappa_subscribe(s->db, from, &x->sub, &err)) != KAPPA_OK)
		why = err.msg;
	if (!why) {
		x->hub = h;
		x->conn = c;
		x->tok = r->tok;
		x->next_pos = from;
		x->last_write_ms = kp_mono_ms();
		char hello[96];
		int n = snprintf(hello, sizeof(hello),
				 "retry: 1000\n: kappa subscribe from %llu\n\n",
				 (unsigned long long)from);
		if (kp_buf_append(&x->out, hello, (size_t)n) < 0)
			why = "out of memory";
	}
	if (why) {
		pthread_mutex_lock(&h->lock);
		h->count--;
		pthread_mutex_unlock(&h->lock);
		sse_release(x);
		return rc ? kp_send_kappa_error(r, rc, &err)
			  : kp_send_error(r, 400, "invalid_argument", why);
	}
	pthread_mutex_lock(&h->lock); /* count was reserved above */
	x->next = h->list;
	if (h->list)
		h->list->prev = x;
	h->list = x;
	pthread_mutex_unlock(&h->lock);
	const kp_http_hdr hd[] = {{"Content-Type", "text/event-stream"},
				  {"Cache-Control", "no-cache"},
				  {"X-Accel-Buffering", "no"}};
	r->sent_status = 200;
	return kp_http_respond_stream(c, 200, hd, 3, reader, x, sse_free);
}
