/*
 * server.h -- `kappa serve`: libkappa over HTTP/JSON (libmicrohttpd + jansson).
 *
 * Appends never hold a thread while they wait for their group commit: the connection is
 * suspended, the append goes in with kappa_append_async, and the answer resumes it.
 */
#ifndef KP_SERVER_H
#define KP_SERVER_H

#include <stdint.h>

#include "kappa.h"

typedef struct kp_server kp_server;

typedef struct kp_server_options {
	const char *listen;	  /* "127.0.0.1:7070" */
	uint64_t max_body_bytes;  /* default 16 MiB */
	unsigned max_connections; /* default 1024 */
	unsigned idle_timeout_s;  /* default 30 */
	unsigned threads;	  /* request threads (default 4) */
} kp_server_options;

void kp_server_options_init(kp_server_options *o);

/* Start serving 'db' (not owned). Errors: KAPPA_EINVAL (bad or non-loopback address: the
 * server has no authentication yet), KAPPA_EIO (cannot listen). */
int kp_server_start(kappa_db *db, const kp_server_options *o, kp_server **out, kappa_err *err);
/* Stop accepting, finish what is in flight, and free the server. */
void kp_server_stop(kp_server *s);

#endif
