/*
 * model.c -- the social example's world (model.h): random numbers, weighted choice, users
 * and the follower graph. Whom a user follows is a Zipf choice (exponent SG_ZIPF_FOLLOW)
 * over a popularity ranking, so a few users collect a large share of all follows; who
 * writes is a separate activity ranking, with the most followed users capped at the
 * activity of an ordinary regular so that fan-out on write stays affordable.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- random numbers ------------------------------------------------------------------ */

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void
sg_rng_seed(sg_rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t x = seed * 0xd1342543de82ef95ull + stream * 0x9e3779b97f4a7c15ull + 1;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
sg_rng_next(sg_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double
sg_rng_unit(sg_rng *r)
{
	return (double)(sg_rng_next(r) >> 11) * 0x1.0p-53;
}

uint32_t
sg_rng_below(sg_rng *r, uint32_t n)
{
	return n ? (uint32_t)(((sg_rng_next(r) >> 32) * (uint64_t)n) >> 32) : 0;
}

int
sg_rng_chance(sg_rng *r, double p)
{
	return sg_rng_unit(r) < p;
}

double
sg_rng_normal(sg_rng *r)
{
	double u = 1.0 - sg_rng_unit(r), v = sg_rng_unit(r);
	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

uint32_t
sg_rng_count(sg_rng *r, double mean)
{
	if (mean <= 0)
		return 0;
	if (mean >= 30) {
		double x = mean + sqrt(mean) * sg_rng_normal(r);
		return x < 0 ? 0 : (uint32_t)(x + 0.5);
	}
	double limit = exp(-mean), p = sg_rng_unit(r);
	uint32_t k = 0;
	while (p > limit) {
		p *= sg_rng_unit(r);
		k++;
	}
	return k;
}

/* ---- weighted choice ----------------------------------------------------------------- */

int
sg_dist_init(sg_dist *d, const double *w, uint32_t n)
{
	d->n = n;
	d->cdf = malloc((size_t)(n ? n : 1) * sizeof(*d->cdf));
	if (!d->cdf)
		return -1;
	double sum = 0;
	for (uint32_t k = 0; k < n; k++)
		d->cdf[k] = sum += w[k];
	return 0;
}

int
sg_dist_zipf(sg_dist *d, uint32_t n, double s)
{
	double *w = malloc((size_t)(n ? n : 1) * sizeof(*w));
	if (!w)
		return -1;
	for (uint32_t k = 0; k < n; k++)
		w[k] = pow((double)k + 1, -s);
	int rc = sg_dist_init(d, w, n);
	free(w);
	return rc;
}

void
sg_dist_release(sg_dist *d)
{
	free(d->cdf);
	d->cdf = NULL;
	d->n = 0;
}

uint32_t
sg_dist_pick(const sg_dist *d, sg_rng *r)
{
	if (d->n == 0)
		return 0;
	double x = sg_rng_unit(r) * d->cdf[d->n - 1];
	uint32_t lo = 0, hi = d->n - 1;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (d->cdf[mid] > x)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* ---- names --------------------------------------------------------------------------- */

/* Display form (UTF-8) and the ASCII form usernames and addresses are made of. */
typedef struct name_pair {
	const char *show, *ascii;
} name_pair;

static const name_pair first_names[] = {
	{"Ada", "ada"},		{"Alan", "alan"},	  {"Grace", "grace"},
	{"Linus", "linus"},	{"Margaret", "margaret"}, {"Dennis", "dennis"},
	{"Barbara", "barbara"}, {"Ken", "ken"},		  {"Frances", "frances"},
	{"Edsger", "edsger"},	{"Radia", "radia"},	  {"Donald", "donald"},
	{"Hedy", "hedy"},	{"Tim", "tim"},		  {"Katherine", "katherine"},
	{"John", "john"},	{"Sophie", "sophie"},	  {"Liam", "liam"},
	{"Olivia", "olivia"},	{"Noah", "noah"},	  {"Emma", "emma"},
	{"Mateo", "mateo"},	{"Chloé", "chloe"},	  {"Zoë", "zoe"},
	{"José", "jose"},	{"Søren", "soren"},	  {"Björn", "bjorn"},
	{"Łukasz", "lukasz"},	{"Ana", "ana"},		  {"Inès", "ines"},
	{"Mei", "mei"},		{"Hiroshi", "hiroshi"},	  {"Aiko", "aiko"},
	{"Priya", "priya"},	{"Arjun", "arjun"},	  {"Fatima", "fatima"},
	{"Omar", "omar"},	{"Amara", "amara"},	  {"Kwame", "kwame"},
	{"Chen", "chen"},	{"Ivan", "ivan"},	  {"Olga", "olga"},
	{"Nadia", "nadia"},	{"Pablo", "pablo"},	  {"Lucía", "lucia"},
	{"Giulia", "giulia"},	{"Marco", "marco"},	  {"Freya", "freya"},
	{"Oskar", "oskar"},	{"Elif", "elif"},	  {"Mehmet", "mehmet"},
	{"Yara", "yara"},	{"Tomás", "tomas"},	  {"Aoife", "aoife"},
	{"Seán", "sean"},	{"Nora", "nora"},	  {"Felix", "felix"},
	{"Hannah", "hannah"},	{"David", "david"},	  {"Sara", "sara"},
	{"Leo", "leo"},		{"Maya", "maya"},	  {"Ravi", "ravi"},
	{"Jin", "jin"},		{"Min-jun", "minjun"},	  {"Thandiwe", "thandiwe"},
	{"Kofi", "kofi"},	{"Eva", "eva"},		  {"Hugo", "hugo"},
	{"Camille", "camille"}, {"Anouk", "anouk"},	  {"Lars", "lars"},
	{"Ingrid", "ingrid"},	{"Mila", "mila"},	  {"Dmitri", "dmitri"},
	{"Rosa", "rosa"},	{"Diego", "diego"},	  {"Sakura", "sakura"},
	{"Ahmed", "ahmed"},	{"Layla", "layla"},	  {"Samuel", "samuel"},
};

static const name_pair last_names[] = {
	{"Lovelace", "lovelace"},
	{"Turing", "turing"},
	{"Hopper", "hopper"},
	{"Torvalds", "torvalds"},
	{"Hamilton", "hamilton"},
	{"Ritchie", "ritchie"},
	{"Liskov", "liskov"},
	{"Thompson", "thompson"},
	{"Allen", "allen"},
	{"Dijkstra", "dijkstra"},
	{"Perlman", "perlman"},
	{"Knuth", "knuth"},
	{"Lamarr", "lamarr"},
	{"Berners-Lee", "bernerslee"},
	{"Johnson", "johnson"},
	{"McCarthy", "mccarthy"},
	{"Wilson", "wilson"},
	{"Smith", "smith"},
	{"García", "garcia"},
	{"Müller", "muller"},
	{"Nguyen", "nguyen"},
	{"Kowalski", "kowalski"},
	{"Rossi", "rossi"},
	{"Dubois", "dubois"},
	{"Jensen", "jensen"},
	{"Larsson", "larsson"},
	{"Novák", "novak"},
	{"Sato", "sato"},
	{"Tanaka", "tanaka"},
	{"Kim", "kim"},
	{"Park", "park"},
	{"Wang", "wang"},
	{"Li", "li"},
	{"Patel", "patel"},
	{"Sharma", "sharma"},
	{"Okafor", "okafor"},
	{"Mensah", "mensah"},
	{"Haddad", "haddad"},
	{"Yılmaz", "yilmaz"},
	{"Ivanova", "ivanova"},
	{"Petrov", "petrov"},
	{"Silva", "silva"},
	{"Santos", "santos"},
	{"Fernández", "fernandez"},
	{"O'Brien", "obrien"},
	{"Murphy", "murphy"},
	{"Schmidt", "schmidt"},
	{"Fischer", "fischer"},
	{"Weber", "weber"},
	{"Van Dijk", "vandijk"},
	{"De Vries", "devries"},
	{"Bianchi", "bianchi"},
	{"Moreau", "moreau"},
	{"Lefèvre", "lefevre"},
	{"Andersen", "andersen"},
	{"Nielsen", "nielsen"},
	{"Horvat", "horvat"},
	{"Popescu", "popescu"},
	{"Cohen", "cohen"},
	{"Levi", "levi"},
	{"Abebe", "abebe"},
	{"Diallo", "diallo"},
	{"Chowdhury", "chowdhury"},
	{"Rahman", "rahman"},
	{"Singh", "singh"},
	{"Costa", "costa"},
	{"Pereira", "pereira"},
	{"Walker", "walker"},
	{"Young", "young"},
	{"King", "king"},
	{"Wright", "wright"},
	{"Scott", "scott"},
	{"Brown", "brown"},
	{"Taylor", "taylor"},
	{"Martin", "martin"},
	{"Clarke", "clarke"},
	{"Baker", "baker"},
	{"Hughes", "hughes"},
};

#define N_FIRST (sizeof(first_names) / sizeof(first_names[0]))
#define N_LAST (sizeof(last_names) / sizeof(last_names[0]))

static const char *const domains[] = {"example.org", "example.com", "example.net", "mail.example",
				      "post.example"};
#define N_DOMAINS (sizeof(domains) / sizeof(domains[0]))

void
sg_user_id(uint32_t k, char out[16])
{
	snprintf(out, 16, "u%u", k + 1);
}

void
sg_user_name(const sg_model *m, uint32_t k, int renamed, char out[SG_NAME_MAX])
{
	const sg_user *u = &m->users[k];
	const name_pair *f = &first_names[u->first], *l = &last_names[u->last];
	if (renamed) /* a double-barrelled name */
		snprintf(out, SG_NAME_MAX, "%s %s-%s", f->show, l->show,
			 last_names[(u->last + 7u) % N_LAST].show);
	else
		snprintf(out, SG_NAME_MAX, "%s %s", f->show, l->show);
}

/* 's' with its first letter in capitals. */
static void
cap_first(char *s)
{
	if (*s >= 'a' && *s <= 'z')
		*s = (char)(*s - 'a' + 'A');
}

void
sg_user_username(const sg_model *m, uint32_t k, char out[SG_NAME_MAX])
{
	const sg_user *u = &m->users[k];
	char f[32], l[32];
	snprintf(f, sizeof(f), "%s", first_names[u->first].ascii);
	snprintf(l, sizeof(l), "%s", last_names[u->last].ascii);
	if (u->flags & SG_U_CASED) {
		cap_first(f);
		cap_first(l);
	}
	snprintf(out, SG_NAME_MAX, "%s%s%u", f, l, k + 1);
}

void
sg_user_email(const sg_model *m, uint32_t k, char out[SG_NAME_MAX])
{
	const sg_user *u = &m->users[k];
	char f[32], l[32], d[32];
	snprintf(f, sizeof(f), "%s", first_names[u->first].ascii);
	snprintf(l, sizeof(l), "%s", last_names[u->last].ascii);
	snprintf(d, sizeof(d), "%s", domains[(k * 7u + u->last) % N_DOMAINS]);
	if (u->flags & SG_U_CASED) {
		cap_first(f);
		cap_first(l);
		cap_first(d);
	}
	snprintf(out, SG_NAME_MAX, "%s.%s%u@%s", f, l, k + 1, d);
}

void
sg_ip_text(uint32_t ip, char out[16])
{
	snprintf(out, 16, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255);
}

/* ---- the world ----------------------------------------------------------------------- */

#define FOLLOW_SIGMA 1.0      /* of the log-normal number of followees */
#define FOLLOW_MAX 5000	      /* followees of one user, at most */
#define UNFOLLOW_SHARE 0.04   /* of follows later undone */
#define DELETED_SHARE 0.001   /* of users who delete their account */
#define CELEBRITY_FACTOR 10.0 /* followers above this many times the average: capped activity */

/* A random public-looking IPv4 address (first octet 11..223, not 127). */
static uint32_t
random_ip(sg_rng *r)
{
	uint32_t a = 11 + sg_rng_below(r, 213);
	if (a == 127)
		a = 128;
	return (a << 24) | (sg_rng_below(r, 1u << 24));
}

static void
shuffle(uint32_t *v, uint32_t n, sg_rng *r)
{
	for (uint32_t i = n; i > 1; i--) {
		uint32_t j = sg_rng_below(r, i), t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static void
make_users(sg_model *m)
{
	sg_rng r;
	sg_rng_seed(&r, m->seed, SG_STREAM_USERS);
	for (uint32_t k = 0; k < m->n; k++) {
		sg_user *u = &m->users[k];
		u->first = (uint16_t)sg_rng_below(&r, N_FIRST);
		u->last = (uint16_t)sg_rng_below(&r, N_LAST);
		u->topics[0] = (uint8_t)sg_rng_below(&r, 255);
		u->topics[1] = (uint8_t)sg_rng_below(&r, 255);
		u->agent = (uint8_t)sg_rng_below(&r, 255);
		u->ip = random_ip(&r);
		u->flags = 0;
		if (sg_rng_chance(&r, 0.35))
			u->flags |= SG_U_2FA;
		if (sg_rng_chance(&r, 0.01))
			u->flags |= SG_U_ROAMING;
		if (!(u->flags & SG_U_2FA) && sg_rng_chance(&r, 0.03))
			u->flags |= SG_U_RISKY;
		if (sg_rng_chance(&r, 0.08))
			u->flags |= SG_U_CASED;
		if (sg_rng_chance(&r, 0.45))
			u->flags |= SG_U_BIO;
		if (sg_rng_chance(&r, 0.05))
			u->flags |= SG_U_RENAMED;
	}
}

/* Choose every user's followees (Zipf over popularity, no repeats, never oneself); the
 * last few of each user's become the unfollowed ones. Fills fe/un rows, sorted. */
static int
make_follows(sg_model *m, sg_rng *r)
{
	uint32_t n = m->n;
	uint32_t *want = calloc(n, sizeof(*want)), *mark = calloc(n, sizeof(*mark));
	uint64_t total = 0;
	if (!want || !mark)
		goto fail;
	double mu = log(m->follows) - FOLLOW_SIGMA * FOLLOW_SIGMA / 2;
	uint32_t cap = n - 1 < FOLLOW_MAX ? n - 1 : FOLLOW_MAX;
	for (uint32_t u = 0; u < n; u++) {
		double x = exp(mu + FOLLOW_SIGMA * sg_rng_normal(r));
		uint32_t k = x < 1 ? 1 : x > cap ? cap : (uint32_t)(x + 0.5);
		want[u] = n > 1 ? k : 0;
		total += want[u];
	}
	uint32_t *all = malloc((size_t)(total ? total : 1) * sizeof(*all));
	m->fe_off = calloc((size_t)n + 1, sizeof(uint32_t));
	m->un_off = calloc((size_t)n + 1, sizeof(uint32_t));
	if (!all || !m->fe_off || !m->un_off) {
		free(all);
		goto fail;
	}
	/* Pick into 'all' (each user's row at its running offset), then split. */
	uint64_t at = 0, net = 0, gone = 0;
	for (uint32_t u = 0; u < n; u++) {
		uint32_t got = 0;
		for (uint64_t tries = 0; got < want[u] && tries < 50ull * want[u] + 100; tries++) {
			uint32_t v = m->by_pop[sg_dist_pick(&m->popular, r)];
			if (v == u || mark[v] == u + 1)
				continue;
			mark[v] = u + 1;
			all[at + got++] = v;
		}
		uint32_t drop = 0;
		for (uint32_t i = 0; i < got; i++)
			drop += sg_rng_chance(r, UNFOLLOW_SHARE);
		if (drop >= got)
			drop = 0;
		/* The first got - drop stay; the rest are unfollowed later. */
		qsort(all + at, got - drop, sizeof(*all), cmp_u32);
		qsort(all + at + got - drop, drop, sizeof(*all), cmp_u32);
		m->users[u].followees = got - drop;
		m->users[u].unfollowed = drop;
		net += got - drop;
		gone += drop;
		at += got;
	}
	m->fe = malloc((size_t)(net ? net : 1) * sizeof(uint32_t));
	m->un = malloc((size_t)(gone ? gone : 1) * sizeof(uint32_t));
	if (!m->fe || !m->un) {
		free(all);
		goto fail;
	}
	at = 0;
	for (uint32_t u = 0; u < n; u++) {
		uint32_t keep = m->users[u].followees, drop = m->users[u].unfollowed;
		m->fe_off[u + 1] = m->fe_off[u] + keep;
		m->un_off[u + 1] = m->un_off[u] + drop;
		memcpy(m->fe + m->fe_off[u], all + at, keep * sizeof(uint32_t));
		memcpy(m->un + m->un_off[u], all + at + keep, drop * sizeof(uint32_t));
		at += keep + drop;
	}
	m->edges = net;
	free(all);
	free(want);
	free(mark);
	return 0;
fail:
	free(want);
	free(mark);
	return -1;
}

static int
make_followers(sg_model *m)
{
	uint32_t n = m->n;
	m->fr_off = calloc((size_t)n + 1, sizeof(uint32_t));
	m->fr = malloc((size_t)(m->edges ? m->edges : 1) * sizeof(uint32_t));
	uint32_t *fill = calloc(n, sizeof(uint32_t));
	if (!m->fr_off || !m->fr || !fill) {
		free(fill);
		return -1;
	}
	for (uint64_t i = 0; i < m->edges; i++)
		m->users[m->fe[i]].followers++;
	for (uint32_t v = 0; v < n; v++)
		m->fr_off[v + 1] = m->fr_off[v] + m->users[v].followers;
	/* Followers in ascending order: walk followers u in order. */
	for (uint32_t u = 0; u < n; u++)
		for (uint32_t i = m->fe_off[u]; i < m->fe_off[u + 1]; i++) {
			uint32_t v = m->fe[i];
			m->fr[m->fr_off[v] + fill[v]++] = u;
		}
	free(fill);
	return 0;
}

/* Who writes: a Zipf weight over a random activity ranking, capped for the most followed
 * users at the weight of the user ranked n/10 (celebrities post like regulars, not like the
 * most prolific posters, or a fan-out-on-write timeline would spend most of its time on
 * them). A few unpopular users also delete their accounts. */
static int
make_activity(sg_model *m, sg_rng *r)
{
	uint32_t n = m->n;
	uint32_t *order = malloc((size_t)n * sizeof(*order));
	double *w = malloc((size_t)n * sizeof(*w));
	if (!order || !w) {
		free(order);
		free(w);
		return -1;
	}
	for (uint32_t k = 0; k < n; k++)
		order[k] = k;
	shuffle(order, n, r);
	double cap = pow((double)n / 10 + 1, -SG_ZIPF_ACTIVITY);
	double celebrity = CELEBRITY_FACTOR * m->follows;
	for (uint32_t rank = 0; rank < n; rank++) {
		uint32_t k = order[rank];
		w[k] = pow((double)rank + 1, -SG_ZIPF_ACTIVITY);
		if (m->users[k].followers > celebrity && w[k] > cap)
			w[k] = cap;
	}
	int rc = sg_dist_init(&m->authors, w, n);
	uint32_t deleted = (uint32_t)((double)n * DELETED_SHARE + 0.5);
	for (uint32_t i = 0; i < deleted; i++) {
		uint32_t k = m->by_pop[n / 2 + sg_rng_below(r, n - n / 2)];
		m->users[k].flags |= SG_U_DELETED;
	}
	free(order);
	free(w);
	return rc;
}

int
sg_model_build(sg_model *m, uint64_t seed, uint32_t n, double follows)
{
	memset(m, 0, sizeof(*m));
	m->seed = seed;
	m->n = n;
	m->follows = follows;
	sg_rng r;
	sg_rng_seed(&r, seed, SG_STREAM_GRAPH);
	m->users = calloc(n, sizeof(*m->users));
	m->by_pop = malloc((size_t)n * sizeof(*m->by_pop));
	if (!m->users || !m->by_pop)
		goto fail;
	make_users(m);
	for (uint32_t k = 0; k < n; k++)
		m->by_pop[k] = k;
	shuffle(m->by_pop, n, &r);
	for (uint32_t rank = 0; rank < n; rank++)
		m->users[m->by_pop[rank]].pop_rank = rank;
	if (sg_dist_zipf(&m->popular, n, SG_ZIPF_FOLLOW) || make_follows(m, &r) ||
	    make_followers(m) || make_activity(m, &r))
		goto fail;
	return 0;
fail:
	sg_model_release(m);
	return -1;
}

void
sg_model_release(sg_model *m)
{
	free(m->users);
	free(m->by_pop);
	free(m->fe_off);
	free(m->fe);
	free(m->un_off);
	free(m->un);
	free(m->fr_off);
	free(m->fr);
	sg_dist_release(&m->authors);
	sg_dist_release(&m->popular);
	memset(m, 0, sizeof(*m));
}

int
sg_model_follows(const sg_model *m, uint32_t u, uint32_t v)
{
	uint32_t lo = m->fe_off[u], hi = m->fe_off[u + 1];
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (m->fe[mid] == v)
			return 1;
		if (m->fe[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}
