/*
 * server.h -- `kappa serve`: libkappa over HTTP/JSON (kappa's own connection engine, http.h,
 * and jansson).
 *
 * Appends never hold a thread while they wait for their group commit: the connection is
 * suspended, the append goes in with kappa_append_async, and the answer resumes it.
 * Subscribers (/subscribe) likewise wait suspended; a housekeeping thread wakes them when
 * the log's head moves. The engine closes connections whose request takes longer than the
 * request timeout (slow or stalled clients cannot hold a connection slot for long).
 */
#ifndef KP_SERVER_H
#define KP_SERVER_H

#include <stdint.h>

#include "kappa.h"

typedef struct kp_server kp_server;

typedef struct kp_server_options {
	const char *listen;	       /* "127.0.0.1:7070" */
	const char *auth_file;	       /* tokens (see auth.h); NULL: open, loopback only */
	uint64_t max_body_bytes;       /* default 16 MiB */
	unsigned max_header_bytes;     /* request line and headers, default 16 KiB */
	unsigned max_connections;      /* default 1024 */
	unsigned max_inflight_appends; /* beyond: 503 busy (default 8192) */
	unsigned max_subscribers;      /* /subscribe streams (default 256) */
	unsigned idle_timeout_s;       /* a connection silent this long closes (default 30) */
	unsigned request_timeout_s;    /* headers + body must arrive within this (default 30) */
	unsigned query_timeout_ms;     /* named queries and SQL (default 5000) */
	unsigned heartbeat_s;	       /* subscriber keep-alive comment (default 15) */
	unsigned threads;	       /* event threads (default: one per core, 2 to 16) */
	unsigned query_threads;	       /* threads running queries (default 8) */
	unsigned max_queued_queries;   /* queries waiting for a thread; beyond: 503 (1024) */
	/* One line per start, stop and error, "key=value ...". NULL: silent. */
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
} kp_server_options;

void kp_server_options_init(kp_server_options *o);

/* Start serving 'db' (not owned). Errors: KAPPA_EINVAL (bad address or option; a
 * non-loopback address without an auth file; a bad auth file), KAPPA_EIO (cannot listen). */
int kp_server_start(kappa_db *db, const kp_server_options *o, kp_server **out, kappa_err *err);
/* Stop accepting, finish in-flight appends and their syncs, end subscriber streams with a
 * last comment line, and free the server. */
void kp_server_stop(kp_server *s);

#endif
