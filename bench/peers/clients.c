/*
 * clients.c -- the thread-per-client runner of bench/peers (peers.h): for the systems whose
 * clients block (SQLite, which runs inside the driver, and NATS direct gets), each client is
 * a thread; all start together when the measured window opens.
 */
#include <pthread.h>
#include <stdlib.h>

#include "peers.h"

typedef struct client {
	pl_client_fn fn;
	void *ctx;
	int id;
	pthread_barrier_t *ready;
	pl_window *w;
	pl_tally t;
} client;

static void *
client_main(void *arg)
{
	client *c = arg;
	pthread_barrier_wait(c->ready); /* all threads exist */
	pthread_barrier_wait(c->ready); /* the window is open */
	c->fn(c->ctx, c->id, c->w, &c->t);
	return NULL;
}

void
pl_threads_run(const pl_cfg *cfg, pl_client_fn fn, void *ctx, pl_tally *out)
{
	int n = cfg->clients;
	client *cs = kb_calloc((size_t)n, sizeof(*cs), "clients");
	pthread_t *th = kb_calloc((size_t)n, sizeof(*th), "clients");
	pthread_barrier_t ready;
	pl_window w;
	if (pthread_barrier_init(&ready, NULL, (unsigned)n + 1))
		kb_die("pthread_barrier_init failed");
	for (int i = 0; i < n; i++) {
		cs[i] = (client){.fn = fn, .ctx = ctx, .id = i, .ready = &ready, .w = &w};
		if (pthread_create(&th[i], NULL, client_main, &cs[i]))
			kb_die("pthread_create failed");
	}
	pthread_barrier_wait(&ready);
	pl_window_open(&w, cfg);
	pthread_barrier_wait(&ready);
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		pl_tally_merge(out, &cs[i].t);
		kb_lat_free(&cs[i].t.lat);
	}
	pthread_barrier_destroy(&ready);
	free(cs);
	free(th);
}
