/*
 * crash_store.c -- proves that idempotent appends survive kill -9 and can be retried safely.
 *
 * Each round forks a child that opens the store and appends requests with unique request ids
 * (KAPPA_ANY, a few streams, some with claims) from 2-4 threads, reporting every acknowledged
 * result through a pipe; the parent SIGKILLs it at a random moment, reopens, retries every
 * request it got no answer for and a sample of answered ones, and checks that each request
 * id is in the log exactly once, where it was acknowledged, and that stream versions are
 * dense. Every 5th round also deletes DIR/index before the reopen. Prints TAP.
 * STORE_CRASH_ROUNDS (default 30, else CRASH_ROUNDS / 4 up to 30) and CRASH_SEED tune a run.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kappa.h"
#include "testlib.h"

#define NSTREAMS 5
#define MAX_THREADS 4
#define MAX_EVENTS 3 /* events per request: 1..MAX_EVENTS */
#define MAX_PAD 300  /* filler bytes in an event's data */
#define SEGMENT_BYTES (256u << 10)
#define REBUILD_EVERY 5 /* every 5th round deletes DIR/index before the reopen */
#define FIRST_ACK_TIMEOUT_MS 30000
#define SAMPLE_ROUND 8 /* acknowledged requests of the round retried */
#define SAMPLE_OLD 8   /* ... and of earlier rounds */

/* ---- deterministic requests ------------------------------------------------------------ */

/* A request is named by (round, thread, sequence), packed into one key. */
static uint64_t
req_key(uint32_t round, uint32_t tid, uint64_t seq)
{
	return (uint64_t)round << 40 | (uint64_t)tid << 32 | (seq & 0xffffffffu);
}

struct req {
	uint64_t key;
	int stream;
	char stream_name[24];
	char rid[48];
	size_t n, m;
	kappa_event_in ev[MAX_EVENTS];
	char data[MAX_EVENTS][MAX_PAD + 128];
	char subject[24], meta[64];
	kappa_claim cl[1];
	char claim_key[64];
};

static const char TYPE[] = "Deposited";

/* Fill 'r' with the content of request 'key': the same every time, in child and parent. */
static void
build_req(uint64_t key, struct req *r)
{
	uint32_t round = (uint32_t)(key >> 40), tid = (uint32_t)(key >> 32) & 0xff;
	uint64_t seq = key & 0xffffffffu, h = kt_mix64(key ^ 0x5eed5eedull);
	memset(r, 0, sizeof(*r));
	r->key = key;
	r->stream = (int)(h % NSTREAMS);
	snprintf(r->stream_name, sizeof(r->stream_name), "acct-%d", r->stream);
	snprintf(r->rid, sizeof(r->rid), "r%u-t%u-s%" PRIu64, round, tid, seq);
	r->n = 1 + (size_t)((h >> 8) % MAX_EVENTS);
	if ((h >> 24) % 4 == 0)
		snprintf(r->subject, sizeof(r->subject), "user-%u", (unsigned)((h >> 40) % 100));
	if ((h >> 28) % 3 == 0)
		snprintf(r->meta, sizeof(r->meta), "{\"src\":\"crash\",\"round\":%u}", round);
	uint64_t s = h;
	for (size_t i = 0; i < r->n; i++) {
		size_t pad = (size_t)(kt_rng_next(&s) % MAX_PAD);
		char *d = r->data[i];
		int len =
			snprintf(d, sizeof(r->data[i]),
				 "{\"req\":\"%s\",\"i\":%zu,\"n\":%zu,\"pad\":\"", r->rid, i, r->n);
		for (size_t k = 0; k < pad; k++)
			d[(size_t)len + k] = (char)('a' + kt_rng_next(&s) % 26);
		memcpy(d + (size_t)len + pad, "\"}", 3);
		r->ev[i].type = TYPE;
		r->ev[i].data = d;
		r->ev[i].subject = r->subject[0] ? r->subject : NULL;
		r->ev[i].metadata = r->meta[0] ? r->meta : NULL;
	}
	if ((h >> 32) % 5 == 0) {
		snprintf(r->claim_key, sizeof(r->claim_key), "key:%s", r->rid);
		r->cl[0].key = r->claim_key;
		r->m = 1;
	}
}

static int
req_append(kappa_db *db, const struct req *r, kappa_append_result *res, kappa_err *err)
{
	memset(res, 0, sizeof(*res));
	memset(err, 0, sizeof(*err));
	return kappa_append(db, r->stream_name, KAPPA_ANY, r->rid, r->ev, r->n, r->m ? r->cl : NULL,
			    r->m, res, err);
}

/* ---- the child: appenders that acknowledge through a pipe ------------------------------ */

enum { REC_ACK = 1, REC_ERR = 2 };

/* One record per write() on the pipe: atomic, as it is far below PIPE_BUF. */
struct rec {
	uint32_t kind;
	uint32_t tid;
	uint64_t seq;
	uint64_t first, last, version;
	int32_t dedup;
	int32_t rc;
};
_Static_assert(sizeof(struct rec) == 48, "struct rec must be 48 bytes");

struct appender {
	kappa_db *db;
	int fd;
	uint32_t round, tid;
};

static void *
appender_main(void *arg)
{
	struct appender *a = arg;
	struct req *r = malloc(sizeof(*r));
	if (!r)
		_exit(6);
	for (uint64_t seq = 0; seq < 0xffffffffu; seq++) {
		build_req(req_key(a->round, a->tid, seq), r);
		kappa_append_result res;
		kappa_err err;
		int rc = req_append(a->db, r, &res, &err);
		struct rec rec = {
			REC_ACK,     a->tid,	       seq, res.first_position, res.last_position,
			res.version, res.deduplicated, rc};
		if (rc != KAPPA_OK) {
			rec.kind = REC_ERR;
			fprintf(stderr, "# round %u child thread %u seq %" PRIu64 ": %s: %s\n",
				a->round, a->tid, seq, kappa_strerror(rc), err.msg);
			kt_send(a->fd, &rec, sizeof(rec));
			free(r);
			return NULL;
		}
		kt_send(a->fd, &rec, sizeof(rec));
	}
	free(r);
	return NULL;
}

static void
child_main(const char *dir, const kappa_options *o, uint32_t round, uint32_t nthreads, int fd)
{
	kappa_db *db = NULL;
	kappa_err err = {0};
	int rc = kappa_open(dir, o, &db, &err);
	if (rc != KAPPA_OK) {
		struct rec r = {REC_ERR, MAX_THREADS, 0, 0, 0, 0, 0, rc};
		fprintf(stderr, "# round %u child: kappa_open: %s: %s\n", round, kappa_strerror(rc),
			err.msg);
		kt_send(fd, &r, sizeof(r));
		_exit(2);
	}
	pthread_t th[MAX_THREADS];
	struct appender a[MAX_THREADS];
	for (uint32_t t = 0; t < nthreads; t++) {
		a[t] = (struct appender){db, fd, round, t};
		if (pthread_create(&th[t], NULL, appender_main, &a[t]) != 0) {
			struct rec r = {REC_ERR, t, 0, 0, 0, 0, 0, KAPPA_ENOMEM};
			kt_send(fd, &r, sizeof(r));
			_exit(2);
		}
	}
	for (uint32_t t = 0; t < nthreads; t++)
		pthread_join(th[t], NULL);
	_exit(2); /* every appender stopped on an error */
}

/* ---- a map from request key to where it is ----------------------------------------------- */

struct place {
	uint64_t key; /* 0: an empty slot (real keys have round >= 1) */
	uint64_t first, last, version;
	uint32_t n, seen; /* events the request has, and seen in a scan */
	int stream;
	int claims;
};

struct map {
	struct place *v;
	size_t cap, n;
	uint64_t *keys; /* insertion order, for sampling */
};

static void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);
	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	return p;
}

static struct place *
map_slot(const struct map *m, uint64_t key)
{
	size_t i = (size_t)kt_mix64(key) & (m->cap - 1);
	while (m->v[i].key && m->v[i].key != key)
		i = (i + 1) & (m->cap - 1);
	return &m->v[i];
}

static struct place *
map_get(const struct map *m, uint64_t key)
{
	if (!m->cap)
		return NULL;
	struct place *p = map_slot(m, key);
	return p->key ? p : NULL;
}

/* Insert 'key' (zeroed) or return it if present. */
static struct place *
map_put(struct map *m, uint64_t key)
{
	if ((m->n + 1) * 2 > m->cap) {
		struct map g = {xcalloc(m->cap ? m->cap * 2 : 1024, sizeof(struct place)),
				m->cap ? m->cap * 2 : 1024, m->n, NULL};
		for (size_t i = 0; i < m->cap; i++)
			if (m->v[i].key)
				*map_slot(&g, m->v[i].key) = m->v[i];
		free(m->v);
		m->v = g.v;
		m->cap = g.cap;
		uint64_t *k = realloc(m->keys, m->cap * sizeof(*k));
		if (!k)
			exit(1);
		m->keys = k;
	}
	struct place *p = map_slot(m, key);
	if (!p->key) {
		memset(p, 0, sizeof(*p));
		p->key = key;
		m->keys[m->n++] = key;
	}
	return p;
}

static void
map_clear(struct map *m)
{
	if (m->cap)
		memset(m->v, 0, m->cap * sizeof(*m->v));
	m->n = 0;
}

static void
map_free(struct map *m)
{
	free(m->v);
	free(m->keys);
	memset(m, 0, sizeof(*m));
}

static void
key_name(uint64_t key, char *out, size_t n)
{
	snprintf(out, n, "r%u-t%u-s%" PRIu64, (uint32_t)(key >> 40), (uint32_t)(key >> 32) & 0xff,
		 key & 0xffffffffu);
}

/* ---- reporting ------------------------------------------------------------------------- */

enum { CAT_ROUND, CAT_LOST, CAT_RETRY, CAT_ONCE, NCAT };

/* ---- reading the pipe ------------------------------------------------------------------ */

/* What the child acknowledged, in order, and the first error it reported. */
struct acks {
	struct rec *v;
	size_t n, cap;
	struct rec first_err;
};

/* Pipe records: keep the acknowledgements in 'ctx' (a struct acks) and the first error. */
static int
on_rec(kt_pipe *p, const void *rec)
{
	struct acks *a = p->ctx;
	struct rec r;
	memcpy(&r, rec, sizeof(r));
	if (r.kind == REC_ACK) {
		a->v = kt_grow(a->v, &a->cap, a->n + 1, sizeof(*a->v));
		a->v[a->n++] = r;
		return 0;
	}
	if (p->errs == 0)
		a->first_err = r;
	return 1;
}

/* ---- verifying the store ----------------------------------------------------------------- */

/* The request an event's data names, and the event's index in it. */
static int
parse_event(const kappa_event *ev, uint64_t *key, uint32_t *idx)
{
	char buf[160];
	size_t len = ev->data_len < sizeof(buf) - 1 ? ev->data_len : sizeof(buf) - 1;
	memcpy(buf, ev->data, len);
	buf[len] = '\0';
	uint32_t round, tid, i;
	uint64_t seq;
	if (sscanf(buf, "{\"req\":\"r%u-t%u-s%" SCNu64 "\",\"i\":%u,", &round, &tid, &seq, &i) !=
		    4 ||
	    round == 0 || tid >= MAX_THREADS || i >= MAX_EVENTS)
		return -1;
	*key = req_key(round, tid, seq);
	*idx = i;
	return 0;
}

static int
bytes_eq(const char *p, size_t len, const char *s)
{
	if (!s)
		return p == NULL;
	return p && len == strlen(s) && memcmp(p, s, len) == 0;
}

/* Read the whole log into 'seen': every request once, whole, in order, as it was sent, and
 * each stream's versions dense. Returns the number of events read. */
static uint64_t
scan_log(kappa_db *db, struct map *seen, struct req *scratch)
{
	map_clear(seen);
	uint64_t head = kappa_head(db), pos = 0, next_version[NSTREAMS] = {0};
	kappa_iter *it = NULL;
	kappa_err err = {0};
	int rc = kappa_read_log(db, 0, UINT64_MAX, &it, &err);
	if (rc != KAPPA_OK) {
		kt_problem(CAT_ROUND, "kappa_read_log: %s: %s", kappa_strerror(rc), err.msg);
		return 0;
	}
	struct place *cur = NULL;
	kappa_event ev;
	char name[48];
	while ((rc = kappa_iter_next(it, &ev, &err)) == 1) {
		if (ev.position != pos)
			kt_problem(CAT_ONCE, "the log skips from %" PRIu64 " to %" PRIu64, pos,
				   ev.position);
		pos = ev.position + 1;
		uint64_t key;
		uint32_t idx;
		if (parse_event(&ev, &key, &idx) != 0) {
			kt_problem(CAT_ONCE, "event %" PRIu64 " is not one of ours", ev.position);
			cur = NULL;
			continue;
		}
		build_req(key, scratch);
		key_name(key, name, sizeof(name));
		if (!bytes_eq(ev.stream, ev.stream_len, scratch->stream_name) ||
		    !bytes_eq(ev.type, ev.type_len, TYPE) ||
		    !bytes_eq(ev.data, ev.data_len, scratch->data[idx]) ||
		    !bytes_eq(ev.subject, ev.subject_len, scratch->ev[idx].subject) ||
		    !bytes_eq(ev.metadata, ev.metadata_len, scratch->ev[idx].metadata))
			kt_problem(CAT_ONCE,
				   "event %" PRIu64 " (%s #%u) differs from what was sent",
				   ev.position, name, idx);
		int s = scratch->stream;
		if (ev.version != next_version[s])
			kt_problem(CAT_ONCE,
				   "event %" PRIu64 " of %s has version %" PRIu64
				   ", expected %" PRIu64,
				   ev.position, scratch->stream_name, ev.version, next_version[s]);
		next_version[s] = ev.version + 1;
		if (idx == 0) {
			if (cur && cur->seen != cur->n)
				kt_problem(CAT_ONCE, "request at %" PRIu64 " has %u of %u events",
					   cur->first, cur->seen, cur->n);
			struct place *p = map_get(seen, key);
			if (p) {
				kt_problem(CAT_ONCE,
					   "request %s is in the log twice: at %" PRIu64
					   " and at %" PRIu64,
					   name, p->first, ev.position);
				cur = NULL;
				continue;
			}
			p = map_put(seen, key);
			p->first = p->last = ev.position;
			p->version = ev.version;
			p->n = (uint32_t)scratch->n;
			p->seen = 1;
			p->stream = s;
			p->claims = (int)scratch->m;
			cur = p;
		} else if (!cur || cur->key != key || cur->seen != idx) {
			kt_problem(CAT_ONCE,
				   "event %" PRIu64 " (%s #%u) does not follow its request's"
				   " earlier events",
				   ev.position, name, idx);
			cur = NULL;
		} else {
			cur->seen++;
			cur->last = ev.position;
			cur->version = ev.version;
		}
	}
	if (rc < 0)
		kt_problem(CAT_ONCE, "reading the log at %" PRIu64 ": %s: %s", pos,
			   kappa_strerror(rc), err.msg);
	kappa_iter_free(it);
	if (cur && cur->seen != cur->n)
		kt_problem(CAT_ONCE, "the last request has %u of %u events", cur->seen, cur->n);
	if (pos != head)
		kt_problem(CAT_ONCE, "the log ends at %" PRIu64 ", the head is %" PRIu64, pos,
			   head);
	return pos;
}

static int
same_place(const struct place *a, const struct place *b)
{
	return a->first == b->first && a->last == b->last && a->version == b->version;
}

/* kappa lists claims by id (a keyed hash): the ids of every expected claim key, sorted, to
 * find a listed one's request. */
struct claim_id {
	char hex[KAPPA_CLAIM_ID];
	uint64_t key;
};

struct keycount {
	const struct map *expect;
	const struct claim_id *ids;
	size_t nids;
	int stream;
	uint64_t n, foreign;
};

static int
cmp_claim_id(const void *a, const void *b)
{
	return strcmp(((const struct claim_id *)a)->hex, ((const struct claim_id *)b)->hex);
}

static void
count_claim(void *ctx, const char *key, size_t len)
{
	struct keycount *kc = ctx;
	struct claim_id want = {{0}, 0};
	size_t l = len < sizeof(want.hex) - 1 ? len : sizeof(want.hex) - 1;
	memcpy(want.hex, key, l);
	kc->n++;
	const struct claim_id *id =
		bsearch(&want, kc->ids, kc->nids, sizeof(*kc->ids), cmp_claim_id);
	const struct place *p = id ? map_get(kc->expect, id->key) : NULL;
	if (!p || !p->claims || p->stream != kc->stream)
		kc->foreign++;
}

/* Per stream: read back forward, versions dense from 0, consistent with the stream's info
 * and claims. */
static void
check_streams(kappa_db *db, const struct map *expect)
{
	uint64_t total = 0, want_claims[NSTREAMS] = {0};
	struct claim_id *ids = xcalloc(expect->n + 1, sizeof(*ids));
	size_t nids = 0;
	for (size_t i = 0; i < expect->n; i++) {
		const struct place *p = map_get(expect, expect->keys[i]);
		if (p->claims) {
			want_claims[p->stream]++;
			struct req r;
			build_req(p->key, &r);
			kappa_claim_id(db, r.claim_key, ids[nids].hex);
			ids[nids++].key = p->key;
		}
	}
	qsort(ids, nids, sizeof(*ids), cmp_claim_id);
	for (int s = 0; s < NSTREAMS; s++) {
		char name[24];
		snprintf(name, sizeof(name), "acct-%d", s);
		kappa_iter *it = NULL;
		kappa_err err = {0};
		int rc = kappa_read_stream(db, name, 0, UINT64_MAX, KAPPA_FORWARD, &it, &err);
		if (rc != KAPPA_OK) {
			kt_problem(CAT_ONCE, "read_stream(%s): %s: %s", name, kappa_strerror(rc),
				   err.msg);
			continue;
		}
		kappa_event ev;
		uint64_t n = 0, last_pos = 0;
		while ((rc = kappa_iter_next(it, &ev, &err)) == 1) {
			if (ev.version != n)
				kt_problem(CAT_ONCE,
					   "%s: version %" PRIu64 " where %" PRIu64 " was expected",
					   name, ev.version, n);
			if (n > 0 && ev.position <= last_pos)
				kt_problem(CAT_ONCE, "%s: positions go back at version %" PRIu64,
					   name, ev.version);
			last_pos = ev.position;
			n++;
		}
		if (rc < 0)
			kt_problem(CAT_ONCE, "read_stream(%s): %s: %s", name, kappa_strerror(rc),
				   err.msg);
		kappa_iter_free(it);
		total += n;
		kappa_stream_info in;
		memset(&in, 0, sizeof(in));
		rc = kappa_stream_info_get(db, name, &in, &err);
		if (rc != KAPPA_OK || in.event_count != n || (n && !in.exists) ||
		    (n && (in.last_version != n - 1 || in.last_position != last_pos)))
			kt_problem(CAT_ONCE,
				   "%s: info says %" PRIu64 " events, last version %" PRIu64
				   ", last position %" PRIu64 "; read %" PRIu64
				   " events ending at %" PRIu64,
				   name, in.event_count, in.last_version, in.last_position, n,
				   last_pos);
		struct keycount kc = {expect, ids, nids, s, 0, 0};
		rc = kappa_stream_claims(db, name, count_claim, &kc, &err);
		if (rc != KAPPA_OK || kc.n != want_claims[s] || kc.foreign ||
		    in.claims_held != want_claims[s])
			kt_problem(CAT_ONCE,
				   "%s: holds %" PRIu64 " claims (%" PRIu64
				   " not its own; claims_held %" PRIu64 "), expected %" PRIu64,
				   name, kc.n, kc.foreign, in.claims_held, want_claims[s]);
	}
	free(ids);
	if (total != kappa_head(db))
		kt_problem(CAT_ONCE, "the streams hold %" PRIu64 " events, the log %" PRIu64, total,
			   kappa_head(db));
}

struct stats {
	uint64_t acked, retried_unanswered, landed_unanswered, sampled, fresh, kills[3];
	uint64_t max_log;
};

/* Retry 'key' expecting the result recorded in 'expect'. */
static void
retry_expect_dedup(kappa_db *db, const struct place *p, struct req *scratch, const char *why)
{
	char name[48];
	key_name(p->key, name, sizeof(name));
	build_req(p->key, scratch);
	uint64_t head = kappa_head(db);
	kappa_append_result res;
	kappa_err err;
	int rc = req_append(db, scratch, &res, &err);
	if (rc != KAPPA_OK)
		kt_problem(CAT_RETRY, "retry of %s %s: %s: %s", why, name, kappa_strerror(rc),
			   err.msg);
	else if (!res.deduplicated || res.first_position != p->first ||
		 res.last_position != p->last || res.version != p->version)
		kt_problem(CAT_RETRY,
			   "retry of %s %s: deduplicated=%d at %" PRIu64 "..%" PRIu64 " v%" PRIu64
			   ", expected deduplicated=1 at %" PRIu64 "..%" PRIu64 " v%" PRIu64,
			   why, name, res.deduplicated, res.first_position, res.last_position,
			   res.version, p->first, p->last, p->version);
	if (kappa_head(db) != head)
		kt_problem(CAT_RETRY, "retry of %s %s moved the head from %" PRIu64 " to %" PRIu64,
			   why, name, head, kappa_head(db));
}

/* After the kill: reopen, check, retry, check again. Returns -1 if the store won't open. */
static int
verify(const char *dir, const kappa_options *o, uint32_t round, uint32_t nthreads,
       const struct acks *rd, struct map *expect, struct map *seen, struct req *scratch,
       uint64_t *rng, struct stats *st)
{
	kappa_db *db = NULL;
	kappa_err err = {0};
	int rc = kappa_open(dir, o, &db, &err);
	if (rc != KAPPA_OK) {
		kt_problem(CAT_ROUND, "reopen failed: %s: %s", kappa_strerror(rc), err.msg);
		kt_fail(CAT_LOST);
		return -1;
	}
	/* the acknowledged results, in order per thread */
	uint64_t next_seq[MAX_THREADS] = {0};
	for (size_t k = 0; k < rd->n; k++) {
		const struct rec *a = &rd->v[k];
		if (a->tid >= nthreads || a->seq != next_seq[a->tid]) {
			kt_problem(CAT_ROUND, "acknowledgement of t%u s%" PRIu64 " out of order",
				   a->tid, a->seq);
			continue;
		}
		next_seq[a->tid]++;
		if (a->dedup || a->rc != KAPPA_OK)
			kt_problem(CAT_RETRY,
				   "first attempt of t%u s%" PRIu64 " said deduplicated=%d", a->tid,
				   a->seq, a->dedup);
		struct place *p = map_put(expect, req_key(round, a->tid, a->seq));
		build_req(p->key, scratch);
		p->first = a->first;
		p->last = a->last;
		p->version = a->version;
		p->stream = scratch->stream;
		p->claims = (int)scratch->m;
		p->n = (uint32_t)scratch->n;
		st->acked++;
	}

	/* (1) every request acknowledged, this round or before, is where it was */
	uint64_t events = scan_log(db, seen, scratch);
	uint64_t lost = 0;
	char name[48];
	for (size_t i = 0; i < expect->n; i++) {
		const struct place *e = map_get(expect, expect->keys[i]);
		const struct place *s = map_get(seen, e->key);
		key_name(e->key, name, sizeof(name));
		if (!s) {
			if (lost++ < 3)
				kt_problem(CAT_LOST,
					   "acknowledged request %s (%" PRIu64 "..%" PRIu64
					   ") is not in the log",
					   name, e->first, e->last);
		} else if (!same_place(s, e)) {
			kt_problem(CAT_LOST,
				   "request %s was acknowledged at %" PRIu64 "..%" PRIu64
				   " v%" PRIu64 " and is at %" PRIu64 "..%" PRIu64 " v%" PRIu64,
				   name, e->first, e->last, e->version, s->first, s->last,
				   s->version);
		}
	}
	if (lost)
		kt_problem(CAT_LOST, "%" PRIu64 " acknowledged requests lost", lost);
	/* ... and the only others are the ones in flight at the kill */
	for (size_t i = 0; i < seen->n; i++) {
		uint64_t key = seen->keys[i];
		uint32_t t = (uint32_t)(key >> 32) & 0xff;
		if (map_get(expect, key))
			continue;
		if ((uint32_t)(key >> 40) != round || t >= nthreads ||
		    (key & 0xffffffffu) != next_seq[t]) {
			key_name(key, name, sizeof(name));
			kt_problem(CAT_ONCE, "request %s is in the log but was never sent", name);
		}
	}

	/* (2) retry every unanswered request, the same id and content */
	for (uint32_t t = 0; t < nthreads; t++) {
		uint64_t key = req_key(round, t, next_seq[t]);
		const struct place *landed = map_get(seen, key);
		key_name(key, name, sizeof(name));
		build_req(key, scratch);
		uint64_t head = kappa_head(db);
		kappa_append_result res;
		rc = req_append(db, scratch, &res, &err);
		st->retried_unanswered++;
		if (rc != KAPPA_OK) {
			kt_problem(CAT_RETRY, "retry of unanswered %s: %s: %s", name,
				   kappa_strerror(rc), err.msg);
			continue;
		}
		if (landed) {
			st->landed_unanswered++;
			if (!res.deduplicated || res.first_position != landed->first ||
			    res.last_position != landed->last || res.version != landed->version)
				kt_problem(CAT_RETRY,
					   "retry of unanswered %s, which landed at %" PRIu64
					   "..%" PRIu64 " v%" PRIu64 ": deduplicated=%d at %" PRIu64
					   "..%" PRIu64 " v%" PRIu64,
					   name, landed->first, landed->last, landed->version,
					   res.deduplicated, res.first_position, res.last_position,
					   res.version);
			if (kappa_head(db) != head)
				kt_problem(CAT_RETRY, "retry of landed %s wrote", name);
		} else {
			st->fresh++;
			if (res.deduplicated || res.first_position != head ||
			    res.last_position != head + scratch->n - 1)
				kt_problem(CAT_RETRY,
					   "retry of unanswered %s, which had not landed: "
					   "deduplicated=%d"
					   " at %" PRIu64 "..%" PRIu64 ", head was %" PRIu64,
					   name, res.deduplicated, res.first_position,
					   res.last_position, head);
		}
		struct place *p = map_put(expect, key);
		p->first = res.first_position;
		p->last = res.last_position;
		p->version = res.version;
		p->stream = scratch->stream;
		p->claims = (int)scratch->m;
		p->n = (uint32_t)scratch->n;
		/* once more: now it must be deduplicated */
		retry_expect_dedup(db, p, scratch, "a retried");
	}

	/* (3) a sample of answered ones, this round's and earlier rounds' */
	for (int k = 0; k < SAMPLE_ROUND && rd->n; k++) {
		const struct rec *a = &rd->v[kt_rng_next(rng) % rd->n];
		const struct place *p = map_get(expect, req_key(round, a->tid, a->seq));
		if (p) {
			retry_expect_dedup(db, p, scratch, "acknowledged");
			st->sampled++;
		}
	}
	for (int k = 0; k < SAMPLE_OLD && expect->n; k++) {
		const struct place *p = map_get(expect, expect->keys[kt_rng_next(rng) % expect->n]);
		retry_expect_dedup(db, p, scratch, "an earlier");
		st->sampled++;
	}
	/* the same id with other content is refused */
	if (expect->n) {
		const struct place *p = map_get(expect, expect->keys[kt_rng_next(rng) % expect->n]);
		build_req(p->key, scratch);
		snprintf(scratch->stream_name, sizeof(scratch->stream_name), "acct-%d",
			 (scratch->stream + 1) % NSTREAMS);
		uint64_t head = kappa_head(db);
		kappa_append_result res;
		rc = req_append(db, scratch, &res, &err);
		if (rc != KAPPA_EREQUEST_REUSED || kappa_head(db) != head)
			kt_problem(CAT_RETRY,
				   "%s sent to another stream: %s, head %" PRIu64 " -> %" PRIu64,
				   scratch->rid, kappa_strerror(rc), head, kappa_head(db));
	}

	/* (4) now every request is in the log exactly once, where its answer said */
	events = scan_log(db, seen, scratch);
	if (seen->n != expect->n)
		kt_problem(CAT_ONCE, "the log holds %zu requests, %zu were answered", seen->n,
			   expect->n);
	for (size_t i = 0; i < expect->n; i++) {
		const struct place *e = map_get(expect, expect->keys[i]);
		const struct place *s = map_get(seen, e->key);
		if (!s || !same_place(s, e)) {
			key_name(e->key, name, sizeof(name));
			kt_problem(CAT_ONCE, "after the retries, %s is %s", name,
				   s ? "elsewhere than answered" : "not in the log");
		}
	}
	check_streams(db, expect);
	if (events > st->max_log)
		st->max_log = events;
	kappa_close(db);
	return 0;
}

/* ---- main ------------------------------------------------------------------------------ */

static const char *const MODE_NAME[3] = {"at the first ack", "1-100 ms after the first ack",
					 "0-5 ms after fork"};

int
main(void)
{
	long rounds = kt_crash_rounds("STORE_CRASH_ROUNDS", 30, 4, NULL);
	uint64_t seed = kt_seed_from_env();
	uint64_t rng = seed;
	char *dir = kt_tmpdir("crash_store");
	printf("# crash_store: %ld rounds, seed %" PRIu64 ", directory %s\n", rounds, seed, dir);
	fflush(stdout);

	kappa_options o;
	kappa_options_init(&o);
	o.fsync = KAPPA_FSYNC_ALWAYS;
	o.segment_bytes = SEGMENT_BYTES;
	kt_notices notes = {0};
	struct map expect = {0}, seen = {0};
	struct req *scratch = xcalloc(1, sizeof(*scratch));
	struct stats st;
	memset(&st, 0, sizeof(st));
	int failed_rounds = 0;
	int64_t t_start = kt_now_us();

	for (uint32_t round = 1; round <= (uint32_t)rounds; round++) {
		uint64_t r1 = kt_rng_next(&rng);
		int mode = r1 % 10 == 0 ? 0 : r1 % 10 == 1 ? 2 : 1;
		int delay_us = mode == 0   ? 0
			       : mode == 1 ? 1000 + (int)(kt_rng_next(&rng) % 99001)
					   : (int)(kt_rng_next(&rng) % 5001);
		uint32_t nthreads = 2 + (uint32_t)(kt_rng_next(&rng) % 3);
		st.kills[mode]++;
		kt_round_start();

		int fd;
		pid_t pid = kt_fork_piped(&fd);
		if (pid < 0)
			return 1;
		if (pid == 0) {
			child_main(dir, &o, round, nthreads, fd);
			_exit(3);
		}
		struct acks *rd = xcalloc(1, sizeof(*rd));
		kt_pipe p;
		kt_pipe_init(&p, fd, sizeof(struct rec), on_rec, rd);
		int status = kt_kill_child(&p, pid, mode == 2, delay_us, FIRST_ACK_TIMEOUT_MS,
					   CAT_ROUND);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
			kt_problem(CAT_ROUND, "the child ended before the kill (status %d)",
				   status);
		if (p.errs)
			kt_problem(CAT_ROUND,
				   "the child reported %d error(s), the first %s (t%u s%" PRIu64
				   ")",
				   (int)p.errs, kappa_strerror(rd->first_err.rc), rd->first_err.tid,
				   rd->first_err.seq);

		kappa_options vo = o;
		vo.notice = kt_on_notice;
		vo.notice_ctx = &notes;
		notes.last[0] = '\0';
		uint64_t before = st.landed_unanswered, fresh = st.fresh;
		int rebuild = round % REBUILD_EVERY == 0;
		if (rebuild) {
			char index_dir[4200];
			snprintf(index_dir, sizeof(index_dir), "%s/index", dir);
			if (kt_rm_rf(index_dir) != 0)
				kt_problem(CAT_ROUND, "cannot remove %s/index", dir);
		}
		int rc = verify(dir, &vo, round, nthreads, rd, &expect, &seen, scratch, &rng, &st);
		kt_tap(kt_round_problems() == 0,
		       "round %u: %u threads, kill %s (%d us),%s %zu acks, %u unanswered retried "
		       "(%" PRIu64 " had landed, %" PRIu64
		       " appended fresh), %zu requests in the log",
		       round, nthreads, MODE_NAME[mode], delay_us, rebuild ? " index deleted," : "",
		       rd->n, nthreads, st.landed_unanswered - before, st.fresh - fresh, expect.n);
		kt_print_details();
		if (kt_round_problems()) {
			failed_rounds++;
			if (notes.last[0])
				printf("#   last recovery notice: %s\n", notes.last);
			printf("#   rerun with CRASH_SEED=%" PRIu64 "\n", seed);
		}
		free(rd->v);
		free(rd);
		if (rc < 0)
			break; /* the store no longer opens: later rounds would say nothing new */
	}

	double secs = (double)(kt_now_us() - t_start) / 1e6;
	printf("# acknowledged=%" PRIu64 " unanswered_retried=%" PRIu64 " (landed=%" PRIu64
	       " fresh=%" PRIu64 ") sampled_retries=%" PRIu64 " requests=%zu largest_log=%" PRIu64
	       " events recovery_notices=%" PRIu64 " kills(first-ack/delayed/early)=%" PRIu64
	       "/%" PRIu64 "/%" PRIu64 " seed=%" PRIu64 " elapsed=%.1fs\n",
	       st.acked, st.retried_unanswered, st.landed_unanswered, st.fresh, st.sampled,
	       expect.n, st.max_log, notes.count, st.kills[0], st.kills[1], st.kills[2], seed,
	       secs);
	kt_tap(!kt_failed(CAT_ROUND), "%ld kill -9 rounds ran", rounds);
	kt_tap(!kt_failed(CAT_LOST), "no acknowledged request lost or moved (%" PRIu64 ")",
	       st.acked);
	kt_tap(!kt_failed(CAT_RETRY), "retries deduplicated or appended fresh as they should");
	kt_tap(!kt_failed(CAT_ONCE), "every request id exactly once in the log; versions dense");
	kt_tap_plan();

	if (failed_rounds)
		printf("# kept %s for inspection\n", dir);
	else
		kt_rmdir(dir);
	map_free(&expect);
	map_free(&seen);
	free(scratch);
	return kt_all_passed(NCAT) && !failed_rounds ? 0 : 1;
}
