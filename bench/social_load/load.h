/*
 * load.h -- the parts of bench/social_load, the load generator for the social example
 * (main.c has the options, the schedule and the report; ops.c builds each operation's
 * request and reads its answer). It drives a running `kappa serve` (the one `make run`
 * starts) over HTTP keep-alive connections with libcurl's multi interface, from one thread.
 */
#ifndef SL_LOAD_H
#define SL_LOAD_H

#include <curl/curl.h>
#include <stdint.h>

#include "benchlib.h"
#include "model.h"
#include "text.h"

/* The operations: the mix's five, then the freshness probe a post is followed by. */
enum {
	OP_TIMELINE, /* GET home_timeline of an active user */
	OP_POST,     /* POST a PostCreated to a new post-{id} (expected_version no_stream) */
	OP_LIKE,     /* POST a PostLiked to one of this run's recent posts */
	OP_FOLLOW,   /* POST a UserUnfollowed, or the UserFollowed that undoes an earlier one */
	OP_SEARCH,   /* GET search for a topic's word */
	N_MIX,
	OP_FRESH = N_MIX, /* GET a follower's home_timeline with min_position: is the post there? */
	N_OPS
};

extern const char *const sl_op_names[N_OPS];

/* A post of this run. */
typedef struct sl_post {
	uint32_t author;
	uint64_t position; /* its last_position, once acknowledged */
} sl_post;

/* An edge this run has unfollowed and will follow again. */
typedef struct sl_edge {
	uint32_t follower, followee;
} sl_edge;

/* A set of 64-bit keys (open addressing; 0 is never a key). */
typedef struct sl_set {
	uint64_t *v;
	size_t cap, n;
} sl_set;

int sl_set_has(const sl_set *s, uint64_t key);
void sl_set_add(sl_set *s, uint64_t key);
void sl_set_del(sl_set *s, uint64_t key);

/* One operation in flight or waiting for a connection. */
typedef struct sl_op {
	int kind;
	int measured;	    /* counts in the figures (after the warm-up) */
	uint64_t due_ns;    /* when it should have started (open loop) or was ready (closed) */
	uint64_t ack_ns;    /* OP_FRESH: when the post was acknowledged */
	uint32_t post;	    /* OP_POST, OP_LIKE, OP_FRESH: index into the run's posts */
	uint32_t user;	    /* the acting user (OP_FRESH: the follower who reads) */
	uint32_t other;	    /* OP_FOLLOW: the followee */
	int follow;	    /* OP_FOLLOW: 1 follow (back), 0 unfollow */
	int tries;	    /* OP_FRESH: probes so far */
	struct sl_op *next; /* in the waiting queue */
} sl_op;

/* A connection: one easy handle, reused, so its keep-alive connection is too. */
typedef struct sl_conn {
	CURL *h;
	sl_op *op; /* in flight, or NULL */
	sg_buf url, body, resp;
	char errbuf[CURL_ERROR_SIZE];
} sl_conn;

/* Figures of one operation. */
typedef struct sl_stats {
	kb_lat lat; /* of the successful ones, ns */
	uint64_t done, errors, skipped, missing;
} sl_stats;

/* The run. */
typedef struct sl_run {
	/* options */
	const char *url;
	double rate;	      /* ops/s of the mix, 0: closed loop */
	unsigned connections; /* at most in flight */
	double duration;      /* measured seconds */
	double warmup;	      /* seconds before the measurement */
	uint64_t max_ops;     /* of the mix, measured; 0: no bound */
	double mix[N_MIX];    /* weights */
	unsigned limit;	      /* rows per timeline read */
	int fresh_wait;	      /* probes use min_position (else they poll) */
	uint64_t seed;
	/* state */
	sg_model m;
	sg_rng rng;
	uint64_t run_id; /* post ids are p{run_id}-{n} */
	sl_post *posts;
	uint32_t nposts, capposts;
	sl_set liked;	   /* post index << 32 | user + 1 */
	sl_set unfollowed; /* follower << 32 | followee */
	sl_edge *pending;  /* unfollowed edges, oldest first, to follow again */
	uint32_t npending, cappending, pending_head;
	sl_stats st[N_OPS];
	uint64_t issued; /* mix operations started, measured ones */
	uint64_t fresh_probes;
	kb_lat start_lag; /* measured mix operations: from arrival to the request's start */
	int first_errors; /* error messages printed so far */
} sl_run;

/* Choose what the next operation of 'kind' does (fills 'op'); 0, or -1 when there is
 * nothing it can do now (a like before this run has any post). */
int sl_op_plan(sl_run *run, sl_op *op);
/* Set up c->h for c->op: URL, method, body. */
void sl_op_request(sl_run *run, sl_conn *c);
/* Read the answer of c->op (HTTP status 'status', 0 for a transport error, then
 * c->errbuf). Returns 1 when the operation succeeded, 0 when it failed. For a post that
 * succeeded, 'fresh' is filled with its freshness probe and *want_fresh set; for a probe that
 * did not find its post yet, *retry is set (probe again). */
int sl_op_answer(sl_run *run, sl_conn *c, long status, sl_op *fresh, int *want_fresh, int *retry);
/* Whether 'url' is http:// on a loopback address (127.0.0.0/8, localhost, [::1]). */
int sl_url_is_loopback(const char *url);

#endif
