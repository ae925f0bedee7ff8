/*
 * server_int.h -- what the server's files share: the server, one request, answers, routes.
 *
 * server.c owns the connection engine (http.h) and the housekeeping thread; respond.c builds
 * answers; route.c maps a request to its handler and checks access; streams.c, views_http.c,
 * sse.c and metrics.c answer their routes; auth.c reads tokens.
 */
#ifndef KP_SERVER_INT_H
#define KP_SERVER_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "base/buf.h"
#include "kappa.h"
#include "server/auth.h"
#include "server/http.h"
#include "server/server.h"

/* Routes, for access checks and metrics. */
typedef enum kp_route {
	KP_R_HEALTH = 0,
	KP_R_READY,
	KP_R_APPEND,
	KP_R_READ_STREAM,
	KP_R_READ_LOG,
	KP_R_SUBSCRIBE,
	KP_R_VIEWS,
	KP_R_VIEW,
	KP_R_QUERY,
	KP_R_SQL,
	KP_R_REBUILD,
	KP_R_METRICS,
	KP_R_AUDIT_DIGEST,
	KP_R_AUDIT_KEY,
	KP_R_AUDIT_VERIFY,
	KP_R_SUBJECT_FORGET,
	KP_R_SUBJECT_EXPORT,
	KP_R_LOG_SEGMENTS,
	KP_R_OTHER,
	KP_R_COUNT
} kp_route;

const char *kp_route_name(kp_route r);

/* Answer statuses counted by metrics; anything else counts as the last. */
#define KP_STATUS_SLOTS 22
extern const unsigned kp_status_slot_codes[KP_STATUS_SLOTS];
#define KP_LATENCY_BUCKETS 12
extern const double kp_latency_bounds[KP_LATENCY_BUCKETS]; /* seconds; the last is +Inf */

typedef struct kp_server_metrics {
	_Atomic uint64_t requests[KP_R_COUNT][KP_STATUS_SLOTS];
	_Atomic uint64_t latency[KP_R_COUNT][KP_LATENCY_BUCKETS];
	_Atomic uint64_t latency_us_sum[KP_R_COUNT];
	_Atomic uint64_t reaped;     /* connections closed for a slow request */
	_Atomic uint64_t overloaded; /* answers 503/429 for lack of capacity */
	_Atomic uint64_t sse_events; /* events sent to subscribers */
} kp_server_metrics;

typedef struct kp_sse_hub kp_sse_hub;
typedef struct kp_workers kp_workers;
typedef struct kp_verify_job kp_verify_job;

struct kp_server {
	kappa_db *db;
	kp_server_options o;
	kp_http *http; /* the connection engine */
	kp_auth *auth; /* NULL: open (loopback only) */
	kp_sse_hub *sse;
	kp_server_metrics m;
	kp_workers *workers;	/* run queries off the event threads */
	atomic_int inflight;	/* appends waiting for their answer */
	atomic_int queries;	/* queries handed to the workers, not yet answered */
	atomic_int exports;	/* subject exports being written (subjects_http.c) */
	kp_verify_job *verify;	/* the background verification (verify_job.c) */
	atomic_int connections; /* open connections */
	atomic_int stopping;
	atomic_int draining; /* stopping: no new suspended requests (kp_server_enter) */
	int64_t started_ms;  /* wall clock */

	pthread_t tick;
	int tick_started;
	pthread_mutex_t tick_lock;
	pthread_cond_t tick_cond;
};

/* One request (the engine's connection holds it from on_headers to on_done). */
typedef struct kp_request {
	kp_server *srv;
	kp_hconn *conn;
	kp_route route;
	const kp_token *tok; /* the caller's token (NULL: open server) */
	int64_t start_ns;
	const char *body; /* the engine's (kp_http_body), once the request is in */
	size_t len;
	int answered; /* an async answer is ready in status/resp */
	unsigned status;
	char *resp;
	unsigned sent_status; /* for metrics */
	const char *allow;    /* a 405's Allow header (static text) */
	int close;	      /* answer with Connection: close (the framing is not trusted) */
} kp_request;

/* ---- respond.c ----------------------------------------------------------------------- */

/* Queue 'body' (malloc'ed, taken; NULL: out of memory) as JSON with 'status'. */
int kp_send_json(kp_request *r, unsigned status, char *body);
/* {"error":{"code","message"}} with 'status'. */
int kp_send_error(kp_request *r, unsigned status, const char *code, const char *msg);
/* The same for a kappa code, with the status of the code. */
int kp_send_kappa_error(kp_request *r, int rc, const kappa_err *err);
/* 405 with an Allow header listing 'allow' (static text, e.g. "GET, HEAD"). */
int kp_send_not_allowed(kp_request *r, const char *allow);
/* 503/429 with Retry-After. */
int kp_send_overloaded(kp_request *r, unsigned status, const char *code, const char *msg);
/* The error body for kappa code 'rc', with details from an append result (or NULL). */
char *kp_error_body(int rc, const char *msg, const kappa_append_result *res);
/* Serialize 'j' compactly and release it (NULL stays NULL). */
char *kp_dump(json_t *j);
/* An event (DESIGN.md: EVENT) as compact JSON text appended to 'out', written directly: the
 * stored data and metadata are spliced in as they are (they were checked when appended),
 * not parsed and serialised again. Returns 0 or -1 (out of memory). */
int kp_event_write(kp_buf *out, const kappa_event *e);
/* An optional unsigned query argument: 0, or -1 if present and not a number. Values above
 * 'max' are clamped. */
int kp_arg_u64(kp_hconn *c, const char *name, uint64_t def, uint64_t max, uint64_t *out);
/* Does 'stream' (len bytes) pass the token's stream prefixes? (No token: yes.) */
int kp_stream_allowed(const kp_token *t, const char *stream, size_t len);

/* ---- parse.c (pure: no sockets, no I/O; fuzzed by fuzz/) ------------------------------- */

#define KP_PATH_NAME 128 /* a view or query name in a path, NUL included */
#define KP_PATH_SUB 16	 /* "queries", "sql", "rebuild" */

/* Decode %XX escapes of 's' in place (a NUL-terminated URL or argument); returns the new
 * length. A %00 becomes '?' and sets *nul (the caller refuses the request). */
size_t kp_url_unescape(char *s, int *nul);
/* Why a stream name taken from a URL path cannot be one ('/', "." or ".."), or NULL. */
const char *kp_bad_stream_path(const char *name);
/* Split what follows "/views/" ("", "NAME", "NAME/SUB" or "NAME/SUB/Q") into its parts.
 * Returns 0, -1 when the view name is too long, -2 when SUB or Q is. */
int kp_split_view_path(const char *rest, char name[KP_PATH_NAME], char sub[KP_PATH_SUB],
		       char q[KP_PATH_NAME]);
/* An unsigned query argument 'v' (NULL: absent, *out = def): 0, or -1 when it is not 1-20
 * digits within uint64_t. Values above 'max' are clamped. */
int kp_parse_arg_u64(const char *v, uint64_t def, uint64_t max, uint64_t *out);
/* A named query's parameters from query-string arguments (keys[i], vals[i]; a value is
 * NULL without '='): a JSON object appended to 'out' and NUL-terminated, a value an integer
 * when it reads back the same ("42", "-7"; not "007"), else a string. When a name repeats,
 * its last value counts; a name or value that is not UTF-8 is left out. Returns 0 or -1
 * (out of memory). */
int kp_params_json(kp_buf *out, const char *const *keys, const char *const *vals, size_t n);
/* A Last-Event-ID header: 0 when absent or empty, 1 with *from set to the position after
 * it, -1 when it is not an event position (1-19 digits). */
int kp_parse_last_event_id(const char *v, uint64_t *from);
/* ?types=A,B: append malloc'ed types to types[*n..max). Returns NULL or why not (what was
 * added before the failure stays in 'types' for the caller to free). */
const char *kp_parse_types(const char *t, char **types, size_t max, size_t *n);

/* ---- route.c ------------------------------------------------------------------------- */

/* Decide the route of a request (before its body) and answer it once the body is in. */
kp_route kp_route_of(const char *url, const char *method);
/* 0 if the caller may use r->route (and r->tok is set); otherwise the 401/403 answer has
 * been queued and *ret is what the handler returns to the engine. */
int kp_access_denied(kp_request *r, const char *url, int *ret);
int kp_dispatch(kp_request *r, const char *url, const char *method);

/* ---- streams.c ----------------------------------------------------------------------- */

int kp_http_append(kp_request *r, const char *stream);
int kp_http_read_stream(kp_request *r, const char *stream);
int kp_http_read_log(kp_request *r);

/* ---- append_parse.c ------------------------------------------------------------------ */

/* An append body, parsed: the library's arguments. Data and metadata borrow from the body
 * text (which must outlive the append call); the decoded strings are in 'strings', owned
 * here; kp_append_in_release frees them all. */
typedef struct kp_append_in {
	int64_t expected;
	const char *request_id; /* NULL: none */
	kappa_event_in *ev;
	kappa_claim *cl;
	size_t n, m;   /* events, claims */
	char *strings; /* types, subjects, request id and claim keys, decoded */
	size_t used;
} kp_append_in;

/* Parse the JSON body 'text' ('len' bytes) into 'a'. Returns NULL, or why not (in 'msg',
 * for a 400 invalid_argument; 'a' then holds nothing). Shape and types only: names, sizes
 * and limits are the library's to check. */
const char *kp_append_parse(const char *text, size_t len, kp_append_in *a, char *msg,
			    size_t msglen);
void kp_append_in_release(kp_append_in *a);

/* ---- views_http.c -------------------------------------------------------------------- */

int kp_http_views(kp_request *r, const char *method, const char *rest);
int kp_http_ready(kp_request *r);

/* ---- sse.c --------------------------------------------------------------------------- */

int kp_sse_hub_new(kp_server *s, kp_sse_hub **out);
/* Resume subscribers with something to send (new events, a heartbeat due, or stopping). */
void kp_sse_hub_wake(kp_sse_hub *h, int stopping);
/* Subscribers still open. */
int kp_sse_hub_count(kp_sse_hub *h);
/* Wake the housekeeping thread (server.c): a first subscriber, or the server stopping. */
void kp_server_tick_kick(kp_server *s);
void kp_sse_hub_free(kp_sse_hub *h);
int kp_http_subscribe(kp_request *r);

/* ---- audit_http.c -------------------------------------------------------------------- */

int kp_http_audit_digest(kp_request *r);
int kp_http_audit_key(kp_request *r);
/* /audit/verify (GET: now; POST: as a job) and /audit/verify/status. */
int kp_http_audit_verify(kp_request *r, const char *url, const char *method);
/* GET /audit/verify's answer for a verification that returned 'rc'. */
json_t *kp_verify_result_json(int rc, const kappa_verify_result *res, const kappa_err *err,
			      int with_digest);

/* ---- verify_job.c --------------------------------------------------------------------- */

int kp_verify_job_new(kp_server *s, kp_verify_job **out);
/* Ask a running job to stop (the server is stopping); no new job starts after this. */
void kp_verify_job_cancel(kp_verify_job *j);
/* Stop and join the job's thread, and free it. */
void kp_verify_job_free(kp_verify_job *j);
/* Start a job (202 with its status), or 409 verify_running. 'd': a digest to check or NULL. */
int kp_http_verify_start(kp_request *r, const kappa_digest *d);
int kp_http_verify_status(kp_request *r);

/* ---- log_segments.c ------------------------------------------------------------------- */

int kp_http_log_segments(kp_request *r);

/* ---- subjects_http.c ------------------------------------------------------------------ */

int kp_http_forget(kp_request *r, const char *subject);
int kp_http_export(kp_request *r, const char *subject);

/* ---- stream_info.c ------------------------------------------------------------------ */

/* If 'path' (after "/streams/") is "NAME/info", copy NAME into 'name' (cap bytes) and
 * return it; else NULL. */
const char *kp_stream_info_name(const char *path, char *name, size_t cap);
int kp_http_stream_info(kp_request *r, const char *stream);

/* ---- console.c ----------------------------------------------------------------------- */

/* Is 'url' the console's ("/" or under "/console/")? Such requests need no token. */
int kp_console_path(const char *url);
/* Serve a console file (compiled in; see scripts/embed-console), or 404. */
int kp_http_console(kp_request *r, const char *url, const char *method);

/* ---- workers.c ----------------------------------------------------------------------- */

#define KP_MAX_WORKERS 64

/* A query for the workers: a named query (query set) or SQL (sql set) of 'view'. */
typedef struct kp_job {
	kp_request *r;
	char *view, *query, *sql, *params; /* owned */
	uint64_t min_position;		   /* KAPPA_NO_POSITION: none */
	int64_t timeout_ms;
	struct kp_job *next;
} kp_job;

int kp_workers_start(kp_server *s, unsigned n, kp_workers **out);
/* Run what is queued, then stop the threads. */
void kp_workers_stop(kp_workers *w);
/* Suspend r's connection and queue 'j' (taken over); answers 503 busy when the queue is
 * full. */
int kp_workers_submit(kp_request *r, kp_job *j);
void kp_job_free(kp_job *j);

/* ---- metrics.c ----------------------------------------------------------------------- */

void kp_metrics_count(kp_server *s, kp_route route, unsigned status, int64_t ns);
int kp_http_metrics(kp_request *r);

/* ---- server.c ------------------------------------------------------------------------ */

/* Count a request that will suspend its connection in 'counter', unless the server is
 * draining: returns 0 then (and counts nothing). The stop sets 'draining' and then waits for
 * the counters to reach zero, so nothing resumes a connection after the engine stops. */
int kp_server_enter(kp_server *s, atomic_int *counter);

/* One structured line to the server's log. */
void kp_server_log(kp_server *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
