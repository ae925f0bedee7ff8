/*
 * server.c -- the daemon: options, connections, the request life cycle, the housekeeping
 * thread (subscriber wake-ups, slow-request reaper) and a graceful stop.
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

/* libmicrohttpd's own messages, as structured lines. */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	kp_server *s = cls;
	if (!s->o.log)
		return;
	char msg[512], line[600];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	msg[strcspn(msg, "\r\n")] = '\0';
	for (char *p = msg; *p; p++)
		if (*p == '"')
			*p = '\'';
	snprintf(line, sizeof(line), "level=warn event=http message=\"%s\"", msg);
	s->o.log(s->o.log_ctx, line);
}

/* ---- connections -------------------------------------------------------------------- */

static void
conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
	    enum MHD_ConnectionNotificationCode code)
{
	kp_server *s = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		kp_conn *cn = calloc(1, sizeof(*cn));
		*socket_context = cn;
		int n = atomic_fetch_add(&s->connections, 1) + 1;
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		/* Over --max-connections: closed at once (see kp_server_start). */
		if (n > (int)s->o.max_connections && ci) {
			shutdown(ci->connect_fd, SHUT_RDWR);
			atomic_fetch_add(&s->m.overloaded, 1);
		}
		if (!cn)
			return; /* not tracked: only the reaper misses it */
		cn->srv = s;
		cn->conn = c;
		cn->fd = ci ? ci->connect_fd : -1;
		cn->since_ms = kp_mono_ms();
		pthread_mutex_lock(&s->conns_lock);
		cn->next = s->conns;
		if (s->conns)
			s->conns->prev = cn;
		s->conns = cn;
		pthread_mutex_unlock(&s->conns_lock);
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		kp_conn *cn = *socket_context;
		atomic_fetch_sub(&s->connections, 1);
		if (!cn)
			return;
		pthread_mutex_lock(&s->conns_lock);
		if (cn->prev)
			cn->prev->next = cn->next;
		else
			s->conns = cn->next;
		if (cn->next)
			cn->next->prev = cn->prev;
		pthread_mutex_unlock(&s->conns_lock);
		free(cn);
		*socket_context = NULL;
	}
}

/* Close connections whose request (headers and body) has not fully arrived within the
 * request timeout, counted from the connection's start or its previous request's end.
 * MHD has no call for this; shutting the socket down makes its next read fail and MHD
 * closes the connection itself (the fd stays valid: MHD closes it after CLOSED). */
static int
reap_slow(kp_server *s, int all)
{
	int64_t now = kp_mono_ms(), limit = (int64_t)s->o.request_timeout_s * 1000;
	int busy = 0;
	pthread_mutex_lock(&s->conns_lock);
	for (kp_conn *cn = s->conns; cn; cn = cn->next) {
		busy += cn->busy;
		if (cn->busy || cn->reaped || cn->fd < 0 || (!all && now - cn->since_ms < limit))
			continue;
		cn->reaped = 1;
		shutdown(cn->fd, SHUT_RDWR);
		if (!all)
			atomic_fetch_add(&s->m.reaped, 1);
	}
	pthread_mutex_unlock(&s->conns_lock);
	return busy;
}

static kp_conn *
conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

static void
conn_busy(kp_server *s, kp_conn *cn, int busy)
{
	if (!cn)
		return;
	pthread_mutex_lock(&s->conns_lock);
	cn->busy = busy;
	if (!busy)
		cn->since_ms = kp_mono_ms();
	pthread_mutex_unlock(&s->conns_lock);
}

/* Percent-decoding of the URL and its arguments, as libmicrohttpd's own, except that a
 * %00 (which would silently cut a name at the NUL) marks the request to be refused. */
static size_t
unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	int nul;
	size_t n = kp_url_unescape(s, &nul);
	kp_conn *cn = nul ? conn_of(c) : NULL;
	if (cn)
		cn->nul_escape = 1;
	return n;
}

/* ---- requests ----------------------------------------------------------------------- */

static enum MHD_Result
count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	size_t *n = cls;
	(void)kind;
	n[0] += !strcasecmp(key, "Content-Length");
	n[1] += !strcasecmp(key, "Transfer-Encoding");
	n[2] += !strcasecmp(key, "Host");
	n[3] += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

/* Request smuggling shapes (RFC 9112 6.1, 6.3, 3.2): Content-Length with Transfer-Encoding,
 * two Content-Lengths, Transfer-Encoding in HTTP/1.0, or two Hosts. Such a request is
 * refused and its connection closed, so that no part of it is read as another request
 * (libmicrohttpd alone would take the first Content-Length, or the chunks and then what
 * followed them). OUT: *header_bytes, the size of the headers and query arguments. */
static const char *
framing_problem(struct MHD_Connection *c, const char *version, size_t *header_bytes)
{
	size_t n[4] = {0, 0, 0, 0};
	size_t a[4] = {0, 0, 0, 0};
	MHD_get_connection_values(c, MHD_HEADER_KIND, count_framing, n);
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, count_framing, a);
	*header_bytes = n[3] + a[3];
	if (n[0] && n[1])
		return "a request cannot have both Content-Length and Transfer-Encoding";
	if (n[0] > 1)
		return "a request cannot have more than one Content-Length";
	if (n[1] && version && !strcmp(version, MHD_HTTP_VERSION_1_0))
		return "an HTTP/1.0 request cannot have Transfer-Encoding";
	if (n[2] > 1)
		return "a request cannot have more than one Host";
	return NULL;
}

static enum MHD_Result
first_call(kp_server *s, struct MHD_Connection *c, const char *url, const char *method,
	   const char *version, void **con_cls)
{
	kp_request *r = calloc(1, sizeof(*r));
	if (!r)
		return MHD_NO;
	r->srv = s;
	r->conn = c;
	r->cn = conn_of(c);
	r->route = kp_route_of(url, method);
	r->start_ns = (int64_t)kp_mono_ns();
	*con_cls = r;
	enum MHD_Result ret;
	size_t hbytes;
	const char *why = framing_problem(c, version, &hbytes);
	if (why) {
		r->close = 1;
		return kp_send_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument", why);
	}
	if (hbytes + strlen(url) > s->o.max_header_bytes) { /* the pool has room for twice it */
		r->close = 1;
		return kp_send_error(r, MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE, "too_large",
				     "the request line and headers are over the limit");
	}
	if (r->cn && r->cn->nul_escape) {
		r->cn->nul_escape = 0;
		return kp_send_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
				     "the URL holds a NUL byte (%00)");
	}
	if (kp_access_denied(r, url, &ret)) /* before any body is read */
		return ret;
	const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
	if (cl && strtoull(cl, NULL, 10) > s->o.max_body_bytes)
		return kp_send_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
				     "the request body is over the limit");
	return MHD_YES;
}

static enum MHD_Result
take_body(kp_request *r, const char *upload, size_t n)
{
	if (r->too_big || r->len + n > r->srv->o.max_body_bytes) {
		r->too_big = 1;
		return MHD_YES;
	}
	if (r->len + n > r->cap) {
		size_t nc = (r->len + n) * 2;
		if (nc > r->srv->o.max_body_bytes)
			nc = r->srv->o.max_body_bytes;
		char *nb = realloc(r->body, nc);
		if (!nb)
			return MHD_NO;
		r->body = nb;
		r->cap = nc;
	}
	memcpy(r->body + r->len, upload, n);
	r->len += n;
	return MHD_YES;
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	kp_server *s = cls;
	kp_request *r = *con_cls;
	if (!r)
		return first_call(s, c, url, method, version, con_cls);
	if (r->sent_status) /* answered early (auth, size): ignore the rest of the body */
		return (*upload_size = 0), MHD_YES;
	if (*upload_size) {
		enum MHD_Result ok = take_body(r, upload, *upload_size);
		*upload_size = 0;
		return ok;
	}
	if (r->answered) { /* resumed after an asynchronous append */
		char *resp = r->resp;
		r->resp = NULL;
		return kp_send_json(r, r->status, resp);
	}
	conn_busy(s, r->cn, 1);
	if (r->too_big)
		return kp_send_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "too_large",
				     "the request body is over the limit");
	if (r->len) {
		const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
		if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
		    (ct[16] && ct[16] != ';' && ct[16] != ' '))
			return kp_send_error(r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
					     "unsupported_media_type",
					     "the body must be application/json");
	}
	return kp_dispatch(r, url, method);
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)c;
	(void)toe;
	kp_server *s = cls;
	kp_request *r = *con_cls;
	if (!r)
		return;
	kp_metrics_count(s, r->route, r->sent_status, (int64_t)kp_mono_ns() - r->start_ns);
	conn_busy(s, r->cn, 0);
	free(r->body);
	free(r->resp);
	free(r);
	*con_cls = NULL;
}

/* ---- housekeeping ------------------------------------------------------------------- */

static void *
tick_main(void *arg)
{
	kp_server *s = arg;
	uint64_t seen = kappa_head(s->db);
	int64_t last_reap = kp_mono_ms();
	while (!atomic_load(&s->stopping)) {
		int rc = kappa_wait_position(s->db, seen, 250);
		if (rc != KAPPA_OK && rc != KAPPA_ETIMEOUT) { /* failed or closing: just poll */
			pthread_mutex_lock(&s->tick_lock);
			if (!atomic_load(&s->stopping)) {
				struct timespec ts = kp_deadline_ms(250);
				pthread_cond_timedwait(&s->tick_cond, &s->tick_lock, &ts);
			}
			pthread_mutex_unlock(&s->tick_lock);
		}
		seen = kappa_head(s->db);
		kp_sse_hub_wake(s->sse, 0);
		if (kp_mono_ms() - last_reap >= 1000) {
			reap_slow(s, 0);
			last_reap = kp_mono_ms();
		}
	}
	return NULL;
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
	pthread_mutex_destroy(&s->conns_lock);
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
	pthread_mutex_init(&s->conns_lock, NULL);
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
	/* At its connection limit libmicrohttpd stops accepting, and new connections wait in
	 * the kernel's queue, unanswered, until one closes. It gets some room above
	 * --max-connections instead, and conn_notify closes what is over it at once. */
	unsigned mhd_limit = o->max_connections + o->max_connections / 4 + 16;
	/* A connection's memory holds the request's bytes as they are read and a record of
	 * each header and query argument: with only --max-header, a 2 KB URL of 257 arguments
	 * ran it out, and libmicrohttpd closed the connection without an answer. */
	size_t pool_bytes = 2 * (size_t)o->max_header_bytes;
	s->d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG,
		ntohs(sa.sin_port), NULL, NULL, handle, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
		MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_UNESCAPE_CALLBACK, unescape, s,
		MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_NOTIFY_CONNECTION,
		conn_notify, s, MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
		MHD_OPTION_CONNECTION_TIMEOUT, o->idle_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, pool_bytes, MHD_OPTION_LISTENING_ADDRESS_REUSE,
		1, MHD_OPTION_THREAD_POOL_SIZE, o->threads, MHD_OPTION_END);
	if (!s->d) {
		free_server(s);
		return KP_ERR(err, KAPPA_EIO, "cannot listen on %s", o->listen);
	}
	if (pthread_create(&s->tick, NULL, tick_main, s) != 0) {
		MHD_stop_daemon(s->d);
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
	MHD_socket lsock = MHD_quiesce_daemon(s->d); /* no new connections */
	atomic_store(&s->draining, 1);		     /* no new suspended requests */
	kp_verify_job_cancel(s->verify);	     /* a verification stops at its next MiB */
	kp_sse_hub_wake(s->sse, 1);		     /* subscribers get their last line */
	reap_slow(s, 1); /* idle keep-alive connections and half-sent requests: close */
	/* In-flight appends finish, resume their connections and send their answers. */
	for (int i = 0; i < 1000; i++) {
		int busy = reap_slow(s, 1);
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
	pthread_mutex_lock(&s->tick_lock);
	pthread_cond_broadcast(&s->tick_cond);
	pthread_mutex_unlock(&s->tick_lock);
	if (s->tick_started)
		pthread_join(s->tick, NULL);
	MHD_stop_daemon(s->d);
	if (lsock != MHD_INVALID_SOCKET)
		close(lsock);
	/* Export threads write to pipes whose readers are gone now: they stop at once. */
	while (atomic_load(&s->exports))
		usleep(1000);
	free_server(s);
}
