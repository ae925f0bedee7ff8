/*
 * model.h -- the social example's world, shared by kappa-social-gen and bench/social_load: a
 * seeded random generator, weighted and Zipf choice, and the users with their names, topics,
 * habits and follower graph. Everything here is a function of (seed, users, follows) alone,
 * so the load generator rebuilds exactly the graph a dataset was generated with. No I/O.
 */
#ifndef SG_MODEL_H
#define SG_MODEL_H

#include <stddef.h>
#include <stdint.h>

/* ---- random numbers ------------------------------------------------------------------ */

/* xoshiro256** seeded through splitmix64: fast, and the same sequence on every machine. */
typedef struct sg_rng {
	uint64_t s[4];
} sg_rng;

/* Seed 'r' for the independent sequence number 'stream' of 'seed'. */
void sg_rng_seed(sg_rng *r, uint64_t seed, uint64_t stream);
uint64_t sg_rng_next(sg_rng *r);
/* Uniform in [0, 1). */
double sg_rng_unit(sg_rng *r);
/* Uniform in [0, n); 0 when n is 0. */
uint32_t sg_rng_below(sg_rng *r, uint32_t n);
/* True with probability p. */
int sg_rng_chance(sg_rng *r, double p);
/* A standard normal deviate. */
double sg_rng_normal(sg_rng *r);
/* A Poisson-like count with mean 'mean' (exact Poisson below 30, normal above). */
uint32_t sg_rng_count(sg_rng *r, double mean);

/* Sequence numbers of sg_rng_seed, so that each part of the world has its own. */
enum {
	SG_STREAM_USERS = 1,
	SG_STREAM_GRAPH = 2,
	SG_STREAM_POST = 1u << 20,    /* + post number */
	SG_STREAM_SESSION = 1u << 28, /* + session number */
	SG_STREAM_MISC = 3,
};

/* ---- weighted choice ----------------------------------------------------------------- */

/* A discrete distribution over 0..n-1 by its cumulative weights. */
typedef struct sg_dist {
	double *cdf; /* n entries, the last is the total */
	uint32_t n;
} sg_dist;

/* From 'w' (n weights, not all zero). Returns 0, or -1 when out of memory. */
int sg_dist_init(sg_dist *d, const double *w, uint32_t n);
/* Zipf: weight (k + 1)^-s for k = 0..n-1. Returns 0, or -1 when out of memory. */
int sg_dist_zipf(sg_dist *d, uint32_t n, double s);
void sg_dist_release(sg_dist *d);
/* A value drawn from 'd'. */
uint32_t sg_dist_pick(const sg_dist *d, sg_rng *r);

/* ---- users --------------------------------------------------------------------------- */

#define SG_ZIPF_FOLLOW 1.1   /* exponent of the choice of whom to follow, by popularity */
#define SG_ZIPF_ACTIVITY 0.9 /* exponent of the choice of authors, by activity */

enum {
	SG_U_2FA = 1 << 0,     /* logs in with two-factor authentication */
	SG_U_ROAMING = 1 << 1, /* logs in from many addresses */
	SG_U_RISKY = 1 << 2,   /* sensitive actions without two-factor, from new addresses */
	SG_U_DELETED = 1 << 3, /* deletes the account at the end of the dataset */
	SG_U_CASED = 1 << 4,   /* username and e-mail written with capitals */
	SG_U_BIO = 1 << 5,     /* sets a bio after registering */
	SG_U_RENAMED = 1 << 6, /* changes the display name after registering */
};

typedef struct sg_user {
	uint32_t pop_rank;   /* 0: the most followed by design */
	uint16_t first;	     /* index into the first names */
	uint16_t last;	     /* index into the last names */
	uint8_t topics[2];   /* what the user writes about */
	uint8_t flags;	     /* SG_U_* */
	uint8_t agent;	     /* usual user agent */
	uint32_t ip;	     /* usual address */
	uint32_t followers;  /* in the final graph */
	uint32_t followees;  /* in the final graph */
	uint32_t unfollowed; /* followed, then unfollowed (not in the final graph) */
} sg_user;

/* The world. Users are numbered 0..n-1; user k is "u{k+1}". */
typedef struct sg_model {
	uint64_t seed;
	uint32_t n;
	double follows; /* average followees per user asked for */
	sg_user *users;
	uint32_t *by_pop; /* popularity rank -> user */
	/* The graph in compressed rows, each row sorted: the followees of u in the final
	 * graph are fe[fe_off[u] .. fe_off[u+1]), the ones u followed and then unfollowed
	 * un[un_off[u] .. un_off[u+1]), u's followers fr[fr_off[u] .. fr_off[u+1]). */
	uint32_t *fe_off, *fe;
	uint32_t *un_off, *un;
	uint32_t *fr_off, *fr;
	uint64_t edges;	 /* in the final graph */
	sg_dist authors; /* who writes: activity, with celebrities capped */
	sg_dist popular; /* Zipf over popularity rank (index into by_pop) */
} sg_model;

/* Build the world for 'seed' with 'n' users (1 .. 10^7) following 'follows' others on
 * average. Returns 0, or -1 when out of memory (nothing to release then). */
int sg_model_build(sg_model *m, uint64_t seed, uint32_t n, double follows);
void sg_model_release(sg_model *m);

/* Whether u follows v in the final graph (binary search: followees are sorted). */
int sg_model_follows(const sg_model *m, uint32_t u, uint32_t v);

/* ---- names --------------------------------------------------------------------------- */

#define SG_NAME_MAX 128
/* "u{k+1}". */
void sg_user_id(uint32_t k, char out[16]);
/* The display name ("Zoë Fischer"), its ASCII username ("zoefischer17", some with capitals),
 * the e-mail address ("zoe.fischer17@example.org", some with capitals); 'renamed' gives the
 * name a ProfileUpdated sets. */
void sg_user_name(const sg_model *m, uint32_t k, int renamed, char out[SG_NAME_MAX]);
void sg_user_username(const sg_model *m, uint32_t k, char out[SG_NAME_MAX]);
void sg_user_email(const sg_model *m, uint32_t k, char out[SG_NAME_MAX]);
/* The dotted quad of 'ip'. */
void sg_ip_text(uint32_t ip, char out[16]);

#endif
