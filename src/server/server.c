/*
 * server.c -- the server: options, the request life cycle (the connection engine's callbacks:
 * access and size checks on the headers, then the route's handler), the housekeeping thread
 * (subscriber wake-ups) and a graceful stop.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "server/server_int.h"

void
kp_server_options_init(kp_server_options *o)
{
	memset(o, 0, sizeof(*o));
	o->listen = "127.0.0.1:7070";
	o->max_body_bytes = 16u << 20;
	o->max_header_bytes = 16u << 10;
	o->max_connections = 1024;
	o->max_inflight_appends = 8192;
	o->max_subscribers = 256;
	o->idle_timeout_s = 30;
	o->request_timeout_s = 30;
	o->query_timeout_ms = 5000;
	o->heartbeat_s = 15;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	o->threads = ncpu < 2 ? 2 : ncpu > 16 ? 16 : (unsigned)ncpu; /* one per core */
	o->query_threads = 8;
	o->max_queued_queries = 1024;
}

void
kp_server_log(kp_server *s, const char *fmt, ...)
{
	if (!s->o.log)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->o.log(s->o.log_ctx, line);
}

/* ---- requests (the engine's callbacks, on the connection's event thread) ----------- */

static kp_request *
req_new(kp_server *s, kp_hconn *c)
{
	kp_request *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->srv = s;
	r->conn = c;
	r->route = kp_route_of(kp_http_path(c), kp_http_method(c));
	r->start_ns = (int64_t)kp_mono_ns();
	kp_http_set_user(c, r);
	return r;
}

/* The headers are in: access and size checks, before any body is read. */
static int
on_headers(void *ctx, kp_hconn *c)
{
	kp_server *s = ctx;
	kp_request *r = req_new(s, c);
	if (!r)
		return KP_HTTP_CLOSE;
	int ret;
	if (kp_access_denied(r, kp_http_path(c), &ret))
		return ret;
	uint64_t cl = kp_http_content_length(c);
	if (cl != UINT64_MAX && cl > s->o.max_body_bytes)
		return kp_send_error(r, 413, "too_large", "the request body is over the limit");
	return KP_HTTP_OK;
}

/* The engine refused the request (malformed, smuggling shapes, limits): the connection
 * closes after this answer, so that no part of the request is read as another. */
static void
on_error(void *ctx, kp_hconn *c, unsigned status, const char *msg)
{
	kp_server *s = ctx;
	kp_request *r = kp_http_user(c);
	if (!r && !(r = req_new(s, c)))
		return;
	r->close = 1;
	const char *code = status == 413 || status == 431 ? "too_large"
			   : status == 503		  ? "out_of_memory"
			   : status == 505		  ? "http_version_not_supported"
							  : "invalid_argument";
	kp_send_error(r, status, code, msg);
}

/* The body is in (or the connection was resumed after an asynchronous answer). */
static int
on_request(void *ctx, kp_hconn *c)
{
	(void)ctx;
	kp_request *r = kp_http_user(c);
	if (!r)
		return KP_HTTP_CLOSE;
	if (r->answered) { /* resumed after an asynchronous append or query */
		char *resp = r->resp;
		r->resp = NULL;
		return kp_send_json(r, r->status, resp);
	}
	r->body = kp_http_body(c, &r->len);
	if (r->len) {
		const char *ct = kp_http_header(c, "Content-Type");
		if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
		    (ct[16] && ct[16] != ';' && ct[16] != ' '))
			return kp_send_error(r, 415, "unsupported_media_type",
					     "the body must be application/json");
	}
	return kp_dispatch(r, kp_http_path(c), kp_http_method(c));
}

/* The engine's own failures (out of descriptors when accepting), as structured lines. */
static void
on_fail(void *ctx, const char *what, int err)
{
	kp_server_log(ctx, "level=warn event=http call=%s error=\"%s\"", what, strerror(err));
}

static void
on_done(void *ctx, kp_hconn *c)
{
	kp_server *s = ctx;
	kp_request *r = kp_http_user(c);
	if (!r)
		return;
	kp_metrics_count(s, r->route, r->sent_status, (int64_t)kp_mono_ns() - r->start_ns);
	kp_http_set_user(c, NULL);
	free(r->resp);
	free(r);
}

/* ---- housekeeping ------------------------------------------------------------------- */

/* Sleep on the tick condition for up to 'ms' (a stop or a first subscriber ends it). */
static void
tick_sleep(kp_server *s, int64_t ms, int while_no_subscribers)
{
	pthread_mutex_lock(&s->tick_lock);
	if (!atomic_load(&s->stopping) && (!while_no_subscribers || !kp_sse_hub_count(s->sse))) {
		struct timespec ts = kp_deadline_ms(ms);
		pthread_cond_timedwait(&s->tick_cond, &s->tick_lock, &ts);
	}
	pthread_mutex_unlock(&s->tick_lock);
}

/* The housekeeping thread: wakes subscribers when the head moves. Without subscribers it
 * does not follow the head at all, so appends do not wake it once per group commit. */
static void *
tick_main(void *arg)
{
	kp_server *s = arg;
	uint64_t seen = kappa_head(s->db);
	while (!atomic_load(&s->stopping)) {
		int rc = KAPPA_OK;
		if (!kp_sse_hub_count(s->sse))
			tick_sleep(s, 250, 1);
		else if ((rc = kappa_wait_position(s->db, seen, 250)) != KAPPA_OK &&
			 rc != KAPPA_ETIMEOUT)
			tick_sleep(s, 250, 0); /* failed or closing: just poll */
		seen = kappa_head(s->db);
		kp_sse_hub_wake(s->sse, 0); /* by the head now: none missed while asleep */
	}
	return NULL;
}

void
kp_server_tick_kick(kp_server *s)
{
	pthread_mutex_lock(&s->tick_lock);
	pthread_cond_broadcast(&s->tick_cond);
	pthread_mutex_unlock(&s->tick_lock);
}

/* ---- start and stop ----------------------------------------------------------------- */

static int
parse_listen(const char *listen, struct sockaddr_in *sa, kappa_err *err)
{
	char host[64];
	const char *colon = listen ? strrchr(listen, ':') : NULL;
	char *end = NULL;
	long port = colon ? strtol(colon + 1, &end, 10) : -1;
	if (!colon || (size_t)(colon - listen) >= sizeof(host) || port < 0 || port > 65535 ||
	    !end || *end || end == colon + 1)
		return KP_ERR(err, KAPPA_EINVAL, "listen address must be HOST:PORT, got %s",
			      listen ? listen : "nothing");
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return KP_ERR(err, KAPPA_EINVAL, "%s is not an IPv4 address", host);
	return KAPPA_OK;
}

static void
free_server(kp_server *s)
{
	kp_workers_stop(s->workers);
	kp_verify_job_free(s->verify); /* joins a running verification */
	kp_sse_hub_free(s->sse);
	kp_auth_free(s->auth);
	pthread_mutex_destroy(&s->tick_lock);
	pthread_cond_destroy(&s->tick_cond);
	free(s);
}

int
kp_server_start(kappa_db *db, const kp_server_options *o, kp_server **out, kappa_err *err)
{
	*out = NULL;
	struct sockaddr_in sa;
	int rc = parse_listen(o->listen, &sa, err);
	if (rc)
		return rc;
	int loopback = (ntohl(sa.sin_addr.s_addr) >> 24) == 127;
	if (!loopback && !o->auth_file)
		return KP_ERR(err, KAPPA_EINVAL,
			      "refusing to listen on %s without --auth-file: an open server "
			      "listens on loopback (127.0.0.0/8) only",
			      o->listen);
	if (!o->max_body_bytes || !o->max_connections || !o->max_header_bytes ||
	    !o->max_inflight_appends || !o->request_timeout_s || !o->heartbeat_s ||
	    !o->query_timeout_ms || !o->threads || !o->query_threads || !o->max_queued_queries)
		return KP_ERR(err, KAPPA_EINVAL, "server limits must be positive");
	kp_server *s = calloc(1, sizeof(*s));
	if (!s)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	s->db = db;
	s->o = *o;
	s->started_ms = kp_now_ms();
	pthread_mutex_init(&s->tick_lock, NULL);
	kp_cond_init_monotonic(&s->tick_cond);
	if (o->auth_file && (rc = kp_auth_load(o->auth_file, &s->auth, err)) != KAPPA_OK) {
		free_server(s);
		return rc;
	}
	if (kp_sse_hub_new(s, &s->sse) != KAPPA_OK ||
	    kp_verify_job_new(s, &s->verify) != KAPPA_OK ||
	    kp_workers_start(s, o->query_threads, &s->workers) != KAPPA_OK) {
		free_server(s);
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	}
	kp_http_config hc = {
		.addr = sa,
		.threads = o->threads,
		.max_connections = o->max_connections,
		.idle_timeout_s = o->idle_timeout_s ? o->idle_timeout_s : UINT32_MAX / 1000,
		.request_timeout_s = o->request_timeout_s,
		.max_header_bytes = o->max_header_bytes,
		.max_body_bytes = o->max_body_bytes,
		.ctx = s,
		.on_headers = on_headers,
		.on_request = on_request,
		.on_error = on_error,
		.on_done = on_done,
		.on_fail = on_fail,
		.connections = &s->connections,
		.reaped = &s->m.reaped,
		.refused = &s->m.overloaded,
	};
	if (kp_http_start(&hc, &s->http) < 0) {
		int e = errno;
		free_server(s);
		return KP_ERR(err, KAPPA_EIO, "cannot listen on %s: %s", o->listen, strerror(e));
	}
	if (pthread_create(&s->tick, NULL, tick_main, s) != 0) {
		kp_http_stop(s->http);
		free_server(s);
		return KP_ERR(err, KAPPA_ENOMEM, "cannot start the housekeeping thread");
	}
	s->tick_started = 1;
	kp_server_log(s, "event=listening listen=%s auth=%s tokens=%zu", o->listen,
		      s->auth ? "on" : "off", kp_auth_count(s->auth));
	*out = s;
	return KAPPA_OK;
}

int
kp_server_enter(kp_server *s, atomic_int *counter)
{
	atomic_fetch_add(counter, 1); /* first count, then look: pairs with the stop's order */
	if (!atomic_load(&s->draining))
		return 1;
	atomic_fetch_sub(counter, 1);
	return 0;
}

void
kp_server_stop(kp_server *s)
{
	if (!s)
		return;
	kp_http_quiesce(s->http);	 /* no new connections */
	atomic_store(&s->draining, 1);	 /* no new suspended requests */
	kp_verify_job_cancel(s->verify); /* a verification stops at its next MiB */
	kp_sse_hub_wake(s->sse, 1);	 /* subscribers get their last line */
	kp_http_drain(s->http); /* idle keep-alive connections and half-sent requests: close */
	/* In-flight appends finish, resume their connections and send their answers. */
	for (int i = 0; i < 1000; i++) {
		int busy = kp_http_busy(s->http);
		if (!busy && !atomic_load(&s->inflight) && !atomic_load(&s->queries) &&
		    !kp_sse_hub_count(s->sse))
			break;
		if (i >= 200 && !atomic_load(&s->inflight) && !atomic_load(&s->queries) &&
		    !kp_sse_hub_count(s->sse))
			break; /* only slow readers of answers are left: stopping cuts them */
		if (i % 10 == 0)
			kp_sse_hub_wake(s->sse, 1);
		usleep(5000);
	}
	atomic_store(&s->stopping, 1);
	kp_server_tick_kick(s);
	if (s->tick_started)
		pthread_join(s->tick, NULL);
	kp_http_stop(s->http);
	/* Export threads find their connections gone now: they stop at once. */
	while (atomic_load(&s->exports))
		usleep(1000);
	free_server(s);
}
