/*
 * http.h -- kappa's HTTP/1.1 connection engine: event threads, connections, requests and
 * answers. The server (server.c and the route files) sees only this interface.
 *
 * Each of 'threads' event threads has its own epoll set; they share one listening socket,
 * and a connection stays on the thread that accepted it, registered once,
 * edge-triggered. A request is handed over in two steps: on_headers when its headers are
 * in (the server may answer at once, before any body is read), on_request when its body is
 * in. Requests of a connection are answered in order: the next pipelined request is not
 * parsed before the current one is answered.
 *
 * An answer is a status, headers and a body (copied), or a stream: a producer called for
 * more as the client reads, sent with chunked transfer encoding. A handler that cannot
 * answer yet calls kp_http_suspend; any thread then calls kp_http_resume once, and the
 * connection's own thread calls on_request again (or the producer, for a stream). Resumes
 * reach their thread through a lock-free queue and an eventfd that is written only when the
 * thread may be asleep, so one wake-up serves a whole group commit.
 */
#ifndef KP_HTTP_H
#define KP_HTTP_H

#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct kp_http kp_http;
typedef struct kp_hconn kp_hconn;

#define KP_HTTP_OK 0	   /* a handler's result: carry on */
#define KP_HTTP_CLOSE (-1) /* a handler's result: close the connection (no answer) */

typedef struct kp_http_config {
	struct sockaddr_in addr;
	unsigned threads;
	unsigned max_connections; /* beyond: accepted and closed at once */
	unsigned idle_timeout_s;  /* a connection silent this long closes */
	/* A request's headers and body must arrive within this, counted from the connection's
	 * start or its previous answer; beyond, the connection closes (counted in 'reaped'). */
	unsigned request_timeout_s;
	unsigned max_header_bytes;
	uint64_t max_body_bytes;
	void *ctx;
	/* The headers are in. May answer (the body, if any, is then not read and the
	 * connection closes after the answer). Returns KP_HTTP_OK or KP_HTTP_CLOSE. */
	int (*on_headers)(void *ctx, kp_hconn *c);
	/* The body is in (or the connection was resumed): answer, or suspend. */
	int (*on_request)(void *ctx, kp_hconn *c);
	/* The request is refused by the engine (malformed, too large, ...): answer it with
	 * 'status' and 'msg'; the connection closes after the answer. */
	void (*on_error)(void *ctx, kp_hconn *c, unsigned status, const char *msg);
	/* The request is over: answered and sent, or its connection closed. */
	void (*on_done)(void *ctx, kp_hconn *c);
	/* A system call of the engine failed ('what', errno 'err'): accepting connections.
	 * At most once a second per event thread. */
	void (*on_fail)(void *ctx, const char *what, int err);
	atomic_int *connections;   /* open connections (kept by the engine) */
	_Atomic uint64_t *reaped;  /* connections closed by the request timeout */
	_Atomic uint64_t *refused; /* connections over max_connections */
} kp_http_config;

/* Bind the listening sockets and start the event threads. Returns 0, or -1 with errno. */
int kp_http_start(const kp_http_config *cfg, kp_http **out);
/* Stop accepting new connections (closes the listening sockets). */
void kp_http_quiesce(kp_http *h);
/* Close every connection that is not answering a request; those that are close after
 * their answer. */
void kp_http_drain(kp_http *h);
/* Connections answering a request now (received, not yet fully sent). */
int kp_http_busy(kp_http *h);
/* Stop the event threads and close every connection (on_done and stream frees run). */
void kp_http_stop(kp_http *h);

/* ---- the current request of a connection (valid from on_headers to on_done) ------------ */

const char *kp_http_method(const kp_hconn *c);
const char *kp_http_path(const kp_hconn *c); /* unescaped, without the query string */
int kp_http_version_minor(const kp_hconn *c);
const char *kp_http_header(const kp_hconn *c, const char *name);
const char *kp_http_arg(const kp_hconn *c, const char *name);
/* Each query argument to fn (v NULL without '='; fn returns nonzero to stop); returns how
 * many arguments the request has. */
size_t kp_http_args(const kp_hconn *c, int (*fn)(void *ctx, const char *k, const char *v),
		    void *ctx);
/* The body (NULL and 0 before on_request, or when there is none). */
const char *kp_http_body(const kp_hconn *c, size_t *len);
/* Content-Length, or UINT64_MAX (none, or a chunked body). */
uint64_t kp_http_content_length(const kp_hconn *c);
void *kp_http_user(const kp_hconn *c);
void kp_http_set_user(kp_hconn *c, void *user);

/* ---- answers (on the connection's thread) ---------------------------------------------- */

typedef struct kp_http_hdr {
	const char *name, *value;
} kp_http_hdr;

/* Queue the answer: 'body' (len bytes) is copied. Returns KP_HTTP_OK or KP_HTTP_CLOSE
 * (out of memory). Content-Length, Date and Connection are the engine's to add. */
int kp_http_respond(kp_hconn *c, unsigned status, const kp_http_hdr *h, size_t nh, const void *body,
		    size_t len);

#define KP_HTTP_END (-1)   /* a producer's result: the stream is complete */
#define KP_HTTP_ABORT (-2) /* a producer's result: cut the stream (the connection closes) */
/* Writes up to 'max' bytes to 'buf' and returns how many, or 0 after kp_http_suspend
 * (nothing now; called again after kp_http_resume), or KP_HTTP_END / KP_HTTP_ABORT. */
typedef ssize_t (*kp_http_producer)(void *ctx, char *buf, size_t max);
/* Queue a streamed answer (chunked; HTTP/1.0: until the connection closes). free_ctx runs
 * once, when the stream ends or its connection closes (also after HEAD, at once). */
int kp_http_respond_stream(kp_hconn *c, unsigned status, const kp_http_hdr *h, size_t nh,
			   kp_http_producer fn, void *ctx, void (*free_ctx)(void *ctx));
/* Close the connection after this answer (with Connection: close). */
void kp_http_close_after(kp_hconn *c);
/* The handler (or producer) will answer later: called on the connection's thread. */
void kp_http_suspend(kp_hconn *c);
/* Carry on with a suspended connection. Thread: any; once per kp_http_suspend. */
void kp_http_resume(kp_hconn *c);

#endif
