/*
 * peers.h -- the load driver of bench/peers (peers_load): one measurement of one workload
 * against kappa or one of the systems users would pick instead (Redis Streams, PostgreSQL,
 * NATS JetStream, SQLite, raw write+fdatasync). main.c parses the options and prints the
 * results; each system's file (kappa.c, redis.c, pg.c, nats.c, sqlite.c, raw.c) speaks its
 * protocol through its own client library. Built only by `make bench-peers`.
 */
#ifndef PL_PEERS_H
#define PL_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "benchlib.h"

/* What one run does. */
typedef enum pl_workload {
	PL_RESET,   /* empty the system's bench data (fresh table, stream, ...) */
	PL_FILL,    /* write 'events' events (keys 0..events-1 for reads and catch-up) */
	PL_APPEND,  /* durable single-event appends */
	PL_BATCH,   /* 'batch' events per request / transaction / pipeline */
	PL_READ,    /* point reads of a random key among the filled ones */
	PL_CATCHUP, /* read the 'events' filled events from the start, in pages */
	PL_RETRY,   /* the same idempotent request again and again */
	PL_NWORKLOADS
} pl_workload;

extern const char *const pl_workload_names[PL_NWORKLOADS];

/* The options of one run. */
typedef struct pl_cfg {
	const char *system;   /* kappa, redis, pg, nats, sqlite, raw */
	const char *config;   /* the label of the configuration (redis-always, ...) */
	const char *target;   /* where the system is: URL, port, conninfo or directory */
	pl_workload workload; /* what to do */
	size_t size;	      /* payload bytes per event */
	int clients;	      /* concurrent clients of this measurement */
	double seconds;	      /* measured window */
	double warmup;	      /* before the window */
	int batch;	      /* events per request in PL_BATCH */
	uint64_t events;      /* PL_FILL / PL_CATCHUP count, PL_READ key space */
	int page;	      /* events per page in PL_CATCHUP */
	const char *payload;  /* 'size' bytes: a JSON object {"p":"..."} */
	uint32_t nonce;	      /* distinguishes request ids of different runs */
} pl_cfg;

/* What each client (thread or connection) counts; merged into one at the end. */
typedef struct pl_tally {
	kb_lat lat;	 /* latencies of the operations completed in the window */
	uint64_t ops;	 /* operations completed in the window */
	uint64_t events; /* events written or read by them */
	uint64_t errors; /* operations that failed (any time) */
	char first_error[200];
} pl_tally;

/* The measured window: operations completing in [start, end) count. */
typedef struct pl_window {
	uint64_t begin; /* warm-up starts */
	uint64_t start; /* window opens */
	uint64_t end;	/* window closes; no new operation starts after it */
} pl_window;

/* Open a window for 'cfg' (warm-up then seconds), starting now. */
void pl_window_open(pl_window *w, const pl_cfg *cfg);
/* Count one operation that began at 't0' (ns) and ended at 't1' with 'events' events. */
void pl_tally_op(pl_tally *t, const pl_window *w, uint64_t t0, uint64_t t1, uint64_t events);
/* Events in one operation of 'cfg' that writes: its batch for PL_BATCH, else 1. */
uint64_t pl_op_events(const pl_cfg *cfg);
/* The operation that began at 't0' has just ended: count it (with pl_op_events) if 'ok'.
 * Returns whether the window is still open, i.e. whether the client sends its next one. */
bool pl_op_ended(pl_tally *t, const pl_window *w, const pl_cfg *cfg, uint64_t t0, bool ok);
/* Count a failed operation with its message (the first one is kept). */
void pl_tally_error(pl_tally *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Move 'src' into 'dst'. */
void pl_tally_merge(pl_tally *dst, pl_tally *src);

/* A per-run unique request id for client 'client', operation 'seq', into 'buf'. */
void pl_request_id(const pl_cfg *cfg, char *buf, size_t cap, int client, uint64_t seq);
/* A uniformly random number below 'n' from the state 's' (xorshift). */
uint64_t pl_rand_below(uint64_t *s, uint64_t n);

/* One thread per client (clients.c): start cfg->clients threads, open the window once all
 * are ready, call 'fn' in thread i with its own tally (it runs operations until one ends
 * at or after w->end), join them and merge their tallies into 'out'. */
typedef void (*pl_client_fn)(void *ctx, int i, const pl_window *w, pl_tally *t);
void pl_threads_run(const pl_cfg *cfg, pl_client_fn fn, void *ctx, pl_tally *out);

/* Each system: run 'cfg' and count into 'out'. Returns 0, or dies on a setup error
 * (connection refused, unsupported workload is checked by main.c before). */
typedef void (*pl_system_fn)(const pl_cfg *cfg, pl_tally *out);

void pl_kappa_run(const pl_cfg *cfg, pl_tally *out);
void pl_redis_run(const pl_cfg *cfg, pl_tally *out);
void pl_pg_run(const pl_cfg *cfg, pl_tally *out);
void pl_nats_run(const pl_cfg *cfg, pl_tally *out);
void pl_sqlite_run(const pl_cfg *cfg, pl_tally *out);
void pl_raw_run(const pl_cfg *cfg, pl_tally *out);

#endif
