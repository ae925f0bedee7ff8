/*
 * sim_check.c -- the simulation's checker: reads the whole log of a reopened database and
 * holds it against the record of what the client was told.
 *
 * A content id ('cid', the index of the attempt that first sent that content) is carried by
 * every event, so each batch in the log names the append it came from. The checker replays
 * the log in order with its own copy of the store's rules (expected versions, claims,
 * request ids) and never asks kappa what they should have been; only afterwards does it
 * compare kappa's index (stream facts and claims) and the counter view with the replay.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "testlib.h"

const char *
sim_stream(int s)
{
	static const char *names[SIM_STREAMS] = {"s0", "s1", "s2", "s3"};
	return names[s];
}

static uint64_t
h(const sim_model *m, uint32_t cid, int i, uint64_t salt)
{
	return kt_mix64(m->seed * 31 + (uint64_t)cid * 1000003u + (uint64_t)i * 7919 + salt);
}

int
sim_value(const sim_model *m, uint32_t cid, int i)
{
	return (int)(h(m, cid, i, 1) % 201) - 100;
}

void
sim_event(const sim_model *m, uint32_t cid, int i, char *buf, size_t n, char *mbuf, size_t mn,
	  const char **meta)
{
	size_t pad = (size_t)(h(m, cid, i, 2) % SIM_MAX_PAD);
	int len = snprintf(buf, n, "{\"a\":%u,\"i\":%d,\"n\":%d,\"p\":\"", cid, i,
			   sim_value(m, cid, i));
	uint64_t x = h(m, cid, i, 3);
	for (size_t k = 0; k < pad && (size_t)len + k + 3 < n; k++) {
		x = kt_mix64(x);
		buf[len + (int)k] = (char)('a' + x % 26);
	}
	len += (int)pad;
	snprintf(buf + len, n - (size_t)len, "\"}");
	*meta = NULL;
	if (h(m, cid, i, 4) % 4 == 0) {
		snprintf(mbuf, mn, "{\"m\":%u}", cid);
		*meta = mbuf;
	}
}

const char *
sim_subject(const sim_model *m, uint32_t cid, int i, char *buf, size_t n, int *seal_metadata)
{
	uint64_t x = h(m, cid, i, 5);
	*seal_metadata = (int)(x >> 8) & 1;
	if (x % 3)
		return NULL;
	snprintf(buf, n, "s%u", (unsigned)((x >> 16) % 5));
	return buf;
}

/* ---- the replayed state --------------------------------------------------------------- */

typedef struct present {
	int found;
	uint64_t first, last, version; /* positions, last version */
} present;

typedef struct state {
	int64_t last[SIM_STREAMS]; /* -1: no such stream */
	uint64_t count[SIM_STREAMS], last_pos[SIM_STREAMS];
	int64_t total[SIM_STREAMS]; /* sum of "n": the counter view */
	int holder[SIM_KEYS];	    /* stream holding key k, -1 none */
	uint64_t held[SIM_STREAMS]; /* claims_held as kappa counts it */
} state;

/* Whether the expected version 'e' allows an append to a stream at 'last'. */
static int
expected_ok(int64_t e, int64_t last)
{
	switch (e) {
	case KAPPA_ANY:
		return 1;
	case KAPPA_NO_STREAM:
		return last < 0;
	case KAPPA_EXISTS:
		return last >= 0;
	default:
		return last >= 0 && last == e;
	}
}

/* The attempt that first sent content 'cid'. */
static const sim_attempt *
orig(const sim_model *m, uint32_t cid)
{
	return &m->a[cid];
}

/* Is a rejection of attempt 'a' justified by state 's' (the log below a->head_at), with
 * 'rid_cid' the content the log holds for its request id (-1 none)? */
static void
check_rejection(const sim_model *m, size_t idx, const state *s, long rid_cid)
{
	const sim_attempt *a = &m->a[idx];
	int st = a->stream;
	switch (a->rc) {
	case KAPPA_EREQUEST_REUSED:
		if (rid_cid < 0 || (uint32_t)rid_cid == a->cid)
			kt_problem(P_RULES,
				   "attempt %zu: request_id_reused, but request id %s was %s below "
				   "position %" PRIu64,
				   idx, a->rid,
				   rid_cid < 0 ? "not used" : "used for the same content",
				   a->head_at);
		break;
	case KAPPA_EWRONG_VERSION:
		if (rid_cid >= 0)
			kt_problem(P_RULES,
				   "attempt %zu: wrong version, but its request id is in "
				   "the log (a retry must be answered from it)",
				   idx);
		if (expected_ok(a->expected, s->last[st]) || a->res.actual_version != s->last[st])
			kt_problem(P_RULES,
				   "attempt %zu: wrong_expected_version (expected %" PRId64
				   ", told actual %" PRId64 ") but %s is at %" PRId64
				   " below position %" PRIu64,
				   idx, a->expected, a->res.actual_version, sim_stream(st),
				   s->last[st], a->head_at);
		break;
	case KAPPA_ECLAIM_TAKEN: {
		int k = a->claim;
		char key[8];
		snprintf(key, sizeof(key), "k%d", k);
		/* a release of a key another stream holds is refused the same way */
		if (k < 0 || s->holder[k] < 0 || s->holder[k] == st ||
		    strcmp(a->res.claim_key, key) != 0 ||
		    strcmp(a->res.claim_holder, sim_stream(s->holder[k])) != 0)
			kt_problem(P_RULES,
				   "attempt %zu: claim_taken (%s by %s) but below position %" PRIu64
				   " key %s is held by %d",
				   idx, a->res.claim_key, a->res.claim_holder, a->head_at, key,
				   k >= 0 ? s->holder[k] : -2);
		break;
	}
	default:
		break;
	}
}

/* Rejections to justify, in the order of the head they were answered at (qsort has no
 * context argument: the model being sorted is kept here for the comparison). */
static const sim_model *sort_model;

static int
by_head(const void *x, const void *y)
{
	uint64_t a = sort_model->a[*(const size_t *)x].head_at;
	uint64_t b = sort_model->a[*(const size_t *)y].head_at;
	return a < b ? -1 : a > b;
}

/* ---- reading the log ------------------------------------------------------------------ */

typedef struct logev {
	uint64_t position, version;
	int stream;
	uint32_t cid;
	int i;
} logev;

/* Read and check each event against the content its cid says; returns the events. */
static logev *
read_log(kappa_db *db, const sim_model *m, uint64_t *count)
{
	kappa_iter *it;
	kappa_err err;
	*count = 0;
	if (kappa_read_log(db, 0, UINT64_MAX, &it, &err) != KAPPA_OK) {
		kt_problem(P_OPEN, "cannot read the log: %s", err.msg);
		return NULL;
	}
	logev *v = NULL;
	size_t n = 0, cap = 0;
	kappa_event e;
	int rc;
	char want[SIM_MAX_PAD + 128], mbuf[64], got[SIM_MAX_PAD + 256];
	while ((rc = kappa_iter_next(it, &e, &err)) == 1) {
		v = kt_grow(v, &cap, n + 1, sizeof(*v));
		logev *l = &v[n++];
		memset(l, 0, sizeof(*l));
		l->position = e.position;
		l->version = e.version;
		l->stream = -1;
		snprintf(got, sizeof(got), "%.*s", (int)e.data_len, e.data);
		unsigned cid;
		int i;
		if (sscanf(got, "{\"a\":%u,\"i\":%d,", &cid, &i) != 2 || cid >= m->n || i < 0 ||
		    i >= SIM_MAX_EV) {
			kt_problem(P_HALF, "position %" PRIu64 ": data no append sent: %.60s",
				   e.position, got);
			continue;
		}
		l->cid = cid;
		l->i = i;
		const sim_attempt *o = orig(m, cid);
		const char *meta;
		sim_event(m, cid, i, want, sizeof(want), mbuf, sizeof(mbuf), &meta);
		const char *sn = sim_stream(o->stream);
		char sbuf[16];
		int sealm;
		const char *subj = sim_subject(m, cid, i, sbuf, sizeof(sbuf), &sealm);
		if (strcmp(got, want) != 0 || e.stream_len != strlen(sn) || e.forgotten ||
		    (subj == NULL) != (e.subject == NULL) ||
		    (subj && (e.subject_len != strlen(subj) ||
			      memcmp(e.subject, subj, e.subject_len) != 0)) ||
		    memcmp(e.stream, sn, e.stream_len) != 0 || e.type_len != 4 ||
		    memcmp(e.type, "Tick", 4) != 0 || (meta == NULL) != (e.metadata == NULL) ||
		    (meta && (e.metadata_len != strlen(meta) ||
			      memcmp(e.metadata, meta, e.metadata_len) != 0))) {
			kt_problem(P_LOST, "position %" PRIu64 ": event %d of append %u changed",
				   e.position, i, cid);
			continue;
		}
		l->stream = o->stream;
	}
	if (rc < 0)
		kt_problem(P_OPEN, "reading the log failed: %s", err.msg);
	kappa_iter_free(it);
	*count = n;
	return v;
}

/* ---- comparing kappa's index and view with the replay ---------------------------------- */

typedef struct claims_seen {
	int held[SIM_KEYS];
	int other;
	char ids[SIM_KEYS][KAPPA_CLAIM_ID]; /* kappa lists claims by id: those of k0, k1, ... */
} claims_seen;

static void
on_claim(void *ctx, const char *key, size_t len)
{
	claims_seen *c = ctx;
	for (int k = 0; k < SIM_KEYS; k++)
		if (len == strlen(c->ids[k]) && !memcmp(key, c->ids[k], len)) {
			c->held[k]++;
			return;
		}
	c->other++;
}

static void
check_index(kappa_db *db, const state *s)
{
	kappa_err err;
	for (int st = 0; st < SIM_STREAMS; st++) {
		kappa_stream_info info;
		if (kappa_stream_info_get(db, sim_stream(st), &info, &err) != KAPPA_OK) {
			kt_problem(P_INDEX, "stream info of %s: %s", sim_stream(st), err.msg);
			continue;
		}
		int exists = s->last[st] >= 0;
		if (info.exists != exists ||
		    (exists &&
		     (info.last_version != (uint64_t)s->last[st] ||
		      info.last_position != s->last_pos[st] || info.event_count != s->count[st] ||
		      info.claims_held != s->held[st])))
			kt_problem(P_INDEX,
				   "index says %s exists=%d last=%" PRIu64 " at %" PRIu64
				   " count=%" PRIu64 " claims=%" PRIu64 "; the log: last=%" PRId64
				   " at %" PRIu64 " count=%" PRIu64 " claims=%" PRIu64,
				   sim_stream(st), info.exists, info.last_version,
				   info.last_position, info.event_count, info.claims_held,
				   s->last[st], s->last_pos[st], s->count[st], s->held[st]);
		claims_seen c = {{0}, 0, {{0}}};
		for (int k = 0; k < SIM_KEYS; k++) {
			char key[16];
			snprintf(key, sizeof(key), "k%d", k);
			kappa_claim_id(db, key, c.ids[k]);
		}
		if (kappa_stream_claims(db, sim_stream(st), on_claim, &c, &err) != KAPPA_OK) {
			kt_problem(P_INDEX, "claims of %s: %s", sim_stream(st), err.msg);
			continue;
		}
		for (int k = 0; k < SIM_KEYS; k++)
			if (c.held[k] != (s->holder[k] == st))
				kt_problem(P_INDEX, "index: %s %s k%d; the log says held by %d",
					   sim_stream(st), c.held[k] ? "holds" : "does not hold", k,
					   s->holder[k]);
		if (c.other)
			kt_problem(P_INDEX, "index: %s holds %d unknown claims", sim_stream(st),
				   c.other);
	}
}

/* Compare the counter view's rows with the replay. */
static void
check_view_rows(kappa_db *db, const state *s, uint64_t head, const char *when)
{
	kappa_err err;
	char *json = NULL;
	if (head > 0 && kappa_view_wait(db, "counts", head - 1, 20000, &err) != KAPPA_OK) {
		kt_problem(P_VIEWS, "%s: the view did not reach position %" PRIu64 ": %s", when,
			   head - 1, err.msg);
		return;
	}
	if (kappa_query(db, "counts", "all", NULL, KAPPA_NO_POSITION, 5000, &json, &err) !=
	    KAPPA_OK) {
		kt_problem(P_VIEWS, "%s: query: %s", when, err.msg);
		return;
	}
	json_error_t je;
	json_t *root = json_loads(json, 0, &je), *rows = json_object_get(root, "rows");
	int64_t n[SIM_STREAMS] = {0}, total[SIM_STREAMS] = {0};
	size_t i;
	json_t *row;
	int bad = !json_is_array(rows);
	json_array_foreach(rows, i, row)
	{
		const char *st = json_string_value(json_object_get(row, "stream"));
		int k = st && st[0] == 's' ? st[1] - '0' : -1;
		if (k < 0 || k >= SIM_STREAMS || st[2]) {
			bad = 1;
			continue;
		}
		n[k] = json_integer_value(json_object_get(row, "n"));
		total[k] = json_integer_value(json_object_get(row, "total"));
	}
	for (int k = 0; k < SIM_STREAMS; k++)
		if (n[k] != (int64_t)s->count[k] || total[k] != s->total[k])
			bad = 1;
	if (bad)
		kt_problem(P_VIEWS,
			   "%s: the view answers %.200s; the log makes s0=%" PRIu64 "/%" PRId64
			   " s1=%" PRIu64 "/%" PRId64 " s2=%" PRIu64 "/%" PRId64 " s3=%" PRIu64
			   "/%" PRId64,
			   when, json, s->count[0], s->total[0], s->count[1], s->total[1],
			   s->count[2], s->total[2], s->count[3], s->total[3]);
	json_decref(root);
	kappa_free(json);
}

static void
check_rebuild(kappa_db *db, const state *s, uint64_t head)
{
	kappa_err err;
	if (kappa_view_rebuild(db, "counts", &err) != KAPPA_OK) {
		kt_problem(P_VIEWS, "rebuild: %s", err.msg);
		return;
	}
	int64_t t0 = kt_mono_ms();
	kappa_view_status st;
	for (;;) {
		if (kappa_view_status_get(db, "counts", &st, &err) != KAPPA_OK) {
			kt_problem(P_VIEWS, "status: %s", err.msg);
			return;
		}
		if (st.state == KAPPA_VIEW_LIVE && st.position >= head)
			break;
		if (st.state == KAPPA_VIEW_FAILED || kt_mono_ms() - t0 > 20000) {
			kt_problem(P_VIEWS, "rebuild did not finish: state %s: %s",
				   kappa_view_state_name(st.state), st.error);
			return;
		}
		kt_sleep_ms(1);
	}
	check_view_rows(db, s, head, "after a rebuild");
}

/* ---- the check ------------------------------------------------------------------------ */

uint64_t
sim_check(kappa_db *db, sim_model *m, int views, int rebuild)
{
	uint64_t nev;
	logev *ev = read_log(db, m, &nev);
	uint64_t head = kappa_head(db);
	if (nev != head)
		kt_problem(P_DENSE, "the log holds %" PRIu64 " events but its head is %" PRIu64,
			   nev, head);
	present *pr = calloc(m->n ? m->n : 1, sizeof(*pr));
	long *rid_cid = malloc((m->n ? m->n : 1) * sizeof(long)); /* by rid owner: see below */
	size_t *rej = malloc((m->n ? m->n : 1) * sizeof(size_t)), nrej = 0;
	if (!pr || !rid_cid || !rej) {
		fprintf(stderr, "sim: out of memory\n");
		exit(1);
	}
	/* Request ids are "r<cid of the attempt that first used it>": owner index. */
	for (size_t i = 0; i < m->n; i++)
		rid_cid[i] = -1;
	for (size_t i = 0; i < m->n; i++)
		if (m->a[i].outcome == A_ABSENT && m->a[i].rc != KAPPA_ENOSPC && !m->a[i].judged) {
			rej[nrej++] = i;
			m->a[i].judged = 1; /* once: the log below its head does not change */
		}
	sort_model = m;
	qsort(rej, nrej, sizeof(*rej), by_head);
	size_t rj = 0;

	state s;
	memset(&s, 0, sizeof(s));
	for (int k = 0; k < SIM_STREAMS; k++)
		s.last[k] = -1;
	for (int k = 0; k < SIM_KEYS; k++)
		s.holder[k] = -1;
	uint64_t next_ver[SIM_STREAMS] = {0};
	for (uint64_t p = 0; p < nev;) {
		/* rejections answered when the head was at p are judged by the log below p */
		for (; rj < nrej && m->a[rej[rj]].head_at <= p; rj++) {
			const sim_attempt *a = &m->a[rej[rj]];
			long owner = a->rid[0] ? strtol(a->rid + 1, NULL, 10) : -1;
			check_rejection(m, rej[rj], &s, owner >= 0 ? rid_cid[owner] : -1);
		}
		logev *e = &ev[p];
		if (e->position != p)
			kt_problem(P_DENSE, "event %" PRIu64 " has position %" PRIu64, p,
				   e->position);
		if (e->stream < 0) { /* already reported */
			p++;
			continue;
		}
		const sim_attempt *o = orig(m, e->cid);
		/* the whole append, in order, or nothing */
		uint64_t q = p;
		while (q < nev && ev[q].stream >= 0 && ev[q].cid == e->cid &&
		       ev[q].i == (int)(q - p))
			q++;
		if (e->i != 0 || q - p != (uint64_t)o->n) {
			kt_problem(P_HALF,
				   "append %u: events %d.. at %" PRIu64 ", %" PRIu64
				   " of %d in a row (half an append is visible)",
				   e->cid, e->i, p, q - p, o->n);
			p = q > p ? q : p + 1;
			continue;
		}
		int st = o->stream;
		if (pr[e->cid].found)
			kt_problem(P_HALF,
				   "append %u is in the log twice: at %" PRIu64 " and %" PRIu64,
				   e->cid, pr[e->cid].first, p);
		/* versions dense per stream */
		for (uint64_t r = p; r < q; r++)
			if (ev[r].version != next_ver[st] + (r - p))
				kt_problem(P_DENSE,
					   "position %" PRIu64 ": %s version %" PRIu64
					   ", expected %" PRIu64,
					   r, sim_stream(st), ev[r].version,
					   next_ver[st] + (r - p));
		/* the rules, replayed */
		if (o->rid[0]) {
			long owner = strtol(o->rid + 1, NULL, 10);
			if (rid_cid[owner] >= 0)
				kt_problem(P_RULES,
					   "request id %s applied twice: appends %ld and %u (at "
					   "%" PRIu64 ")",
					   o->rid, rid_cid[owner], e->cid, p);
			else
				rid_cid[owner] = e->cid;
		}
		if (!expected_ok(o->expected, s.last[st]))
			kt_problem(P_RULES,
				   "append %u at %" PRIu64 ": expected version %" PRId64
				   " but %s was at %" PRId64,
				   e->cid, p, o->expected, sim_stream(st), s.last[st]);
		if (o->claim >= 0) {
			int k = o->claim;
			if (!o->release) {
				if (s.holder[k] >= 0 && s.holder[k] != st)
					kt_problem(P_RULES,
						   "append %u at %" PRIu64 " took k%d held by %s",
						   e->cid, p, k, sim_stream(s.holder[k]));
				else if (s.holder[k] < 0) {
					s.holder[k] = st;
					s.held[st]++;
				}
			} else if (s.holder[k] >= 0 && s.holder[k] != st) {
				kt_problem(P_RULES,
					   "append %u at %" PRIu64 " released k%d held by %s",
					   e->cid, p, k, sim_stream(s.holder[k]));
			} else if (s.holder[k] == st) {
				s.holder[k] = -1;
				s.held[st]--;
			}
		}
		pr[e->cid] = (present){1, p, q - 1, next_ver[st] + (q - p) - 1};
		next_ver[st] += q - p;
		s.last[st] = (int64_t)next_ver[st] - 1;
		s.count[st] += q - p;
		s.last_pos[st] = q - 1;
		for (uint64_t r = p; r < q; r++)
			s.total[st] += sim_value(m, e->cid, ev[r].i);
		p = q;
	}
	for (; rj < nrej; rj++) {
		const sim_attempt *a = &m->a[rej[rj]];
		if (a->head_at > nev)
			kt_problem(P_LOST,
				   "attempt %zu was rejected when the head was %" PRIu64
				   ", but the log now ends at %" PRIu64,
				   rej[rj], a->head_at, nev);
		long owner = a->rid[0] ? strtol(a->rid + 1, NULL, 10) : -1;
		check_rejection(m, rej[rj], &s, owner >= 0 ? rid_cid[owner] : -1);
	}

	/* What the client was told, against what the log holds. */
	for (size_t i = 0; i < m->n; i++) {
		const sim_attempt *a = &m->a[i];
		const present *p = &pr[a->cid];
		if (a->outcome == A_ACKED) {
			if (!p->found || p->first != a->res.first_position ||
			    p->last != a->res.last_position || p->version != a->res.version)
				kt_problem(P_LOST,
					   "attempt %zu (append %u%s) acknowledged at %" PRIu64
					   "..%" PRIu64 " v%" PRIu64 "; the log: %s %" PRIu64
					   "..%" PRIu64 " v%" PRIu64,
					   i, a->cid, a->res.deduplicated ? ", deduplicated" : "",
					   a->res.first_position, a->res.last_position,
					   a->res.version, p->found ? "at" : "missing", p->first,
					   p->last, p->version);
		}
	}
	for (size_t c = 0; c < m->n; c++) {
		if (!pr[c].found)
			continue;
		/* present: some attempt with this content must not be a definite "no" */
		int may = 0;
		for (size_t i = c; i < m->n && !may; i++)
			may = m->a[i].cid == c && m->a[i].outcome != A_ABSENT;
		if (!may)
			kt_problem(P_HALF,
				   "append %zu is in the log at %" PRIu64
				   " though every attempt was refused",
				   c, pr[c].first);
	}
	for (int k = 0; k < SIM_STREAMS; k++)
		m->believed[k] = s.last[k];

	check_index(db, &s);
	kappa_verify_result vr;
	kappa_err err;
	if (kappa_audit_verify(db, NULL, NULL, NULL, &vr, &err) != KAPPA_OK)
		kt_problem(P_CHAIN, "the audit chain does not verify: %s", err.msg);
	else if (vr.end_position != head)
		kt_problem(P_CHAIN, "the audit chain ends at %" PRIu64 ", the log at %" PRIu64,
			   vr.end_position, head);
	if (views) {
		check_view_rows(db, &s, head, "after catch-up");
		if (rebuild)
			check_rebuild(db, &s, head);
	}
	free(ev);
	free(pr);
	free(rid_cid);
	free(rej);
	return nev;
}
