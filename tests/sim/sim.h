/*
 * sim.h -- what the simulation test's driver (sim.c) and checker (sim_check.c) share: the
 * record of every append attempted in a scenario and the content each one carries.
 */
#ifndef KP_SIM_H
#define KP_SIM_H

#include <stdint.h>

#include "kappa.h"

#define SIM_STREAMS 4
#define SIM_KEYS 6   /* claim keys k0..k5 */
#define SIM_MAX_EV 3 /* events per append */
#define SIM_MAX_PAD 400

/* Problem categories (TAP lines). */
enum {
	P_LOST,	 /* an acknowledged append missing, moved or changed */
	P_HALF,	 /* something unacknowledged half-visible, duplicated, or not expected at all */
	P_DENSE, /* positions or per-stream versions not dense */
	P_RULES, /* expected versions, claims or request ids broken in log order, or a
		    rejection the log does not justify */
	P_INDEX, /* the store's index disagrees with the log, or a retry got a wrong answer */
	P_CHAIN, /* the audit chain does not verify */
	P_VIEWS, /* a view does not equal what its events make */
	P_OPEN,	 /* a fault-free open failed, or a call answered something it never may */
	P_NCATS
};

/* How an attempt ended, as far as the client knows. */
enum { A_ACKED, A_ABSENT, A_UNCERTAIN };

typedef struct sim_attempt {
	uint32_t cid;	  /* content id: the events' "a" (a retry repeats its original's) */
	int stream;	  /* s0..s3 */
	int n;		  /* events */
	int64_t expected; /* expected version */
	char rid[32];	  /* request id ("" none) */
	int claim;	  /* claim key index, -1 none */
	int release;	  /* the claim is a release */
	int outcome;	  /* A_* */
	int rc;		  /* what kappa_append returned */
	kappa_append_result res;
	uint64_t head_at; /* a rejection: the head when it was answered */
	int judged;	  /* the rejection was checked against the log */
} sim_attempt;

typedef struct sim_model {
	uint64_t seed; /* the scenario's seed: content depends on it */
	sim_attempt *a;
	size_t n, cap;
	int64_t believed[SIM_STREAMS]; /* last version the client saw (-1: none) */
} sim_model;

/* The data, type and metadata of event 'i' of content 'cid' (data in 'buf', NUL-terminated;
 * *meta NULL or a static-lifetime string in 'mbuf'). */
void sim_event(const sim_model *m, uint32_t cid, int i, char *buf, size_t n, char *mbuf, size_t mn,
	       const char **meta);
/* The data subject of event 'i' of attempt 'cid' (in 'buf'), or NULL: a third of the events
 * have one of five subjects, so their data is sealed; half of those seal the metadata too. */
const char *sim_subject(const sim_model *m, uint32_t cid, int i, char *buf, size_t n,
			int *seal_metadata);
/* The value "n" of event 'i' of content 'cid' (what the counter view sums). */
int sim_value(const sim_model *m, uint32_t cid, int i);
/* Stream name of index 's' ("s0"...). */
const char *sim_stream(int s);

/* Check the database against the model (see sim_check.c); problems go to kt_problem.
 * Also brings m->believed up to date with the log. 'views': check the counter view;
 * 'rebuild': also rebuild it and check again. Returns the number of events in the log. */
uint64_t sim_check(kappa_db *db, sim_model *m, int views, int rebuild);

#endif
