/*
 * test_store.c -- the event store through the public API only (kappa.h): dense versions and
 * positions, expected versions, idempotent request ids, uniqueness claims, stream, log and
 * subscription reads, bad input for every argument, racing appenders and claimers, and the
 * index rebuilt from the log after DIR/index is deleted.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kappa.h"
#include "testlib.h"

/* One time limit for the whole suite: per-test .timeout values make Criterion 2.4's runner
 * leak under LeakSanitizer when two such tests overlap (-j2), and lose its TAP output. */
TestSuite(store, .timeout = 120);

/* ---- small helpers ---------------------------------------------------------------------- */

static kappa_event_in
evi(const char *type, const char *data)
{
	kappa_event_in e;
	memset(&e, 0, sizeof(e));
	e.type = type;
	e.data = data;
	return e;
}

static kappa_append_result
append_ok(kappa_db *db, const char *stream, int64_t expected, const char *rid,
	  const kappa_event_in *e, size_t n, const kappa_claim *c, size_t m)
{
	kappa_append_result r;
	kappa_err err;
	memset(&r, 0, sizeof(r));
	memset(&err, 0, sizeof(err));
	int rc = kappa_append(db, stream, expected, rid, e, n, c, m, &r, &err);
	cr_assert_eq(rc, KAPPA_OK, "append to %s (expected %" PRId64 ", id %s): %s: %s",
		     stream ? stream : "(null)", expected, rid ? rid : "-", kappa_strerror(rc),
		     err.msg);
	return r;
}

/* One event of type "Noted" with 'data'. */
static kappa_append_result
append1(kappa_db *db, const char *stream, int64_t expected, const char *rid, const char *data)
{
	kappa_event_in e = evi("Noted", data);
	return append_ok(db, stream, expected, rid, &e, 1, NULL, 0);
}

/* An append that must fail with 'want': checks the code, err.code, a message, and that
 * nothing was written (the head did not move). */
#define APPEND_FAILS(...) append_fails_at(__LINE__, __VA_ARGS__)

static kappa_append_result
append_fails_at(int line, kappa_db *db, int want, const char *stream, int64_t expected,
		const char *rid, const kappa_event_in *e, size_t n, const kappa_claim *c, size_t m)
{
	kappa_append_result r;
	kappa_err err;
	memset(&r, 0, sizeof(r));
	memset(&err, 0, sizeof(err));
	uint64_t head = kappa_head(db);
	int rc = kappa_append(db, stream, expected, rid, e, n, c, m, &r, &err);
	cr_assert_eq(rc, want, "line %d: append returned %d %s (\"%s\"), expected %s", line, rc,
		     kappa_strerror(rc), err.msg, kappa_strerror(want));
	cr_assert_eq(err.code, want, "line %d: err.code is %d, the call returned %d", line,
		     err.code, rc);
	cr_assert_neq(err.msg[0], '\0', "line %d: %s with an empty err.msg", line,
		      kappa_strerror(rc));
	cr_assert_eq(kappa_head(db), head,
		     "line %d: a failed append moved the head %" PRIu64 " -> %" PRIu64, line, head,
		     kappa_head(db));
	return r;
}

/* A JSON object of exactly 'len' (>= 12) bytes, malloc'ed. */
static char *
json_of_len(size_t len)
{
	char *p = malloc(len + 1);
	cr_assert_not_null(p);
	memcpy(p, "{\"pad\":\"", 8);
	memset(p + 8, 'x', len - 10);
	memcpy(p + len - 2, "\"}", 3);
	return p;
}

static kappa_stream_info
info_of(kappa_db *db, const char *stream)
{
	kappa_stream_info in;
	kappa_err err;
	memset(&in, 0, sizeof(in));
	memset(&err, 0, sizeof(err));
	int rc = kappa_stream_info_get(db, stream, &in, &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_stream_info_get(%s): %s: %s", stream, kappa_strerror(rc),
		     err.msg);
	return in;
}

static void
rm_index(const char *dir)
{
	char path[4200], cmd[4300];
	snprintf(path, sizeof(path), "%s/index", dir);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "%s does not exist: the indexes should live there", path);
	cr_assert(S_ISDIR(st.st_mode), "%s is not a directory", path);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	cr_assert_eq(system(cmd), 0);
	cr_assert_neq(stat(path, &st), 0);
}

/* ---- events read back, copied ------------------------------------------------------------ */

typedef struct {
	uint64_t position, version;
	int64_t time_ms;
	char *stream, *type, *data, *subject, *metadata; /* subject, metadata: NULL for none */
} xev;

typedef struct {
	xev *v;
	size_t n, cap;
} xevs;

static void
xevs_push(xevs *l, const kappa_event *e)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		cr_assert_not_null(l->v);
	}
	cr_assert(e->stream && e->type && e->data, "an event without stream, type or data");
	xev *x = &l->v[l->n++];
	x->position = e->position;
	x->version = e->version;
	x->time_ms = e->time_ms;
	x->stream = kt_dupn(e->stream, e->stream_len);
	x->type = kt_dupn(e->type, e->type_len);
	x->data = kt_dupn(e->data, e->data_len);
	x->subject = kt_dupn(e->subject, e->subject_len);
	x->metadata = kt_dupn(e->metadata, e->metadata_len);
}

static void
xevs_free(xevs *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].stream);
		free(l->v[i].type);
		free(l->v[i].data);
		free(l->v[i].subject);
		free(l->v[i].metadata);
	}
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static xevs
drain(kappa_iter *it)
{
	xevs l = {0};
	kappa_event e;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc;
	while ((rc = kappa_iter_next(it, &e, &err)) == 1)
		xevs_push(&l, &e);
	cr_assert_eq(rc, 0, "kappa_iter_next: %d %s: %s", rc, kappa_strerror(rc), err.msg);
	/* an exhausted iterator stays exhausted */
	cr_assert_eq(kappa_iter_next(it, &e, &err), 0);
	kappa_iter_free(it);
	return l;
}

static xevs
read_stream(kappa_db *db, const char *stream, uint64_t from, uint64_t max, int direction)
{
	kappa_iter *it = NULL;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_read_stream(db, stream, from, max, direction, &it, &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_read_stream(%s): %s: %s", stream, kappa_strerror(rc),
		     err.msg);
	cr_assert_not_null(it);
	return drain(it);
}

static xevs
read_log(kappa_db *db, uint64_t from, uint64_t max)
{
	kappa_iter *it = NULL;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_read_log(db, from, max, &it, &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_read_log(%" PRIu64 "): %s: %s", from, kappa_strerror(rc),
		     err.msg);
	cr_assert_not_null(it);
	return drain(it);
}

static void
xev_assert_eq(const xev *a, const xev *b, const char *what, size_t i)
{
	cr_assert_eq(a->position, b->position, "%s #%zu: position %" PRIu64 " vs %" PRIu64, what, i,
		     a->position, b->position);
	cr_assert_eq(a->version, b->version, "%s #%zu: version", what, i);
	cr_assert_eq(a->time_ms, b->time_ms, "%s #%zu: time_ms", what, i);
	cr_assert_str_eq(a->stream, b->stream, "%s #%zu: stream", what, i);
	cr_assert_str_eq(a->type, b->type, "%s #%zu: type", what, i);
	cr_assert_str_eq(a->data, b->data, "%s #%zu: data", what, i);
	cr_assert(kt_streq_null(a->subject, b->subject), "%s #%zu: subject", what, i);
	cr_assert(kt_streq_null(a->metadata, b->metadata), "%s #%zu: metadata", what, i);
}

static void
xevs_assert_eq(const xevs *a, const xevs *b, const char *what)
{
	cr_assert_eq(a->n, b->n, "%s: %zu events vs %zu", what, a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		xev_assert_eq(&a->v[i], &b->v[i], what, i);
}

/* ---- claim keys --------------------------------------------------------------------------- */

typedef struct {
	char **v;
	size_t n, cap;
} keyset;

static void
collect_key(void *ctx, const char *key, size_t len)
{
	keyset *k = ctx;
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 16;
		k->v = realloc(k->v, k->cap * sizeof(*k->v));
		if (!k->v)
			abort();
	}
	char *s = malloc(len + 1);
	if (!s)
		abort();
	memcpy(s, key, len);
	s[len] = '\0';
	k->v[k->n++] = s;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The keys 'stream' holds, sorted; asserts no key is listed twice. */
static keyset
claims_of(kappa_db *db, const char *stream)
{
	keyset k = {0};
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_stream_claims(db, stream, collect_key, &k, &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_stream_claims(%s): %s: %s", stream, kappa_strerror(rc),
		     err.msg);
	if (k.n > 1)
		qsort(k.v, k.n, sizeof(*k.v), cmp_str);
	for (size_t i = 1; i < k.n; i++)
		cr_assert_str_neq(k.v[i - 1], k.v[i], "%s lists claim %s twice", stream, k.v[i]);
	return k;
}

static int
keyset_has(const keyset *k, const char *key)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->v[i], key) == 0)
			return 1;
	return 0;
}

static void
keyset_free(keyset *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->v[i]);
	free(k->v);
	memset(k, 0, sizeof(*k));
}

static void
keyset_assert_eq(const keyset *a, const keyset *b, const char *what)
{
	cr_assert_eq(a->n, b->n, "%s: %zu claims vs %zu", what, a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		cr_assert_str_eq(a->v[i], b->v[i], "%s: claim #%zu", what, i);
}

/* Assert 'stream' holds exactly the 'n' keys given. */
static void
assert_claims(kappa_db *db, const char *stream, const char *const *keys, size_t n)
{
	keyset k = claims_of(db, stream);
	cr_assert_eq(k.n, n, "%s holds %zu claims, expected %zu", stream, k.n, n);
	for (size_t i = 0; i < n; i++) {
		char id[KAPPA_CLAIM_ID];
		kappa_claim_id(db, keys[i], id);
		cr_assert(keyset_has(&k, id), "%s does not hold %s", stream, keys[i]);
	}
	keyset_free(&k);
	cr_assert_eq(info_of(db, stream).claims_held, n, "%s: claims_held", stream);
}

/* ==== happy paths =========================================================================== */

static void
check_first_six(kappa_db *db, int64_t t0, int64_t t1)
{
	cr_assert_eq(kappa_head(db), 6);

	/* the whole log: dense positions, each stream's versions from 0 */
	static const char *const streams[6] = {"acct-a", "acct-a", "acct-a",
					       "acct-b", "acct-a", "acct-a"};
	static const uint64_t versions[6] = {0, 1, 2, 0, 3, 4};
	static const char *const types[6] = {"Opened", "Deposited", "Deposited",
					     "Noted",  "Withdrawn", "Closed"};
	static const char *const datas[6] = {"{\"n\":0}", "{\"n\":1}", "{\"n\":2}",
					     "{\"b\":0}", "{\"n\":3}", "{\"n\":4}"};
	xevs l = read_log(db, 0, UINT64_MAX);
	cr_assert_eq(l.n, 6);
	for (size_t i = 0; i < 6; i++) {
		cr_assert_eq(l.v[i].position, i);
		cr_assert_str_eq(l.v[i].stream, streams[i]);
		cr_assert_eq(l.v[i].version, versions[i], "event %zu: version %" PRIu64, i,
			     l.v[i].version);
		cr_assert_str_eq(l.v[i].type, types[i]);
		cr_assert_str_eq(l.v[i].data, datas[i]);
		cr_assert(l.v[i].time_ms >= t0 - 1000 && l.v[i].time_ms <= t1 + 1000,
			  "event %zu: time_ms %" PRId64 " not in [%" PRId64 ", %" PRId64 "]", i,
			  l.v[i].time_ms, t0, t1);
		if (i == 4) {
			cr_assert_str_eq(l.v[i].subject, "user-7");
			cr_assert_str_eq(l.v[i].metadata, "{\"by\":\"teller\"}");
		} else {
			cr_assert_null(l.v[i].subject, "event %zu has a subject", i);
			cr_assert_null(l.v[i].metadata, "event %zu has metadata", i);
		}
	}
	/* from the middle, bounded */
	xevs part = read_log(db, 4, 1);
	cr_assert_eq(part.n, 1);
	xev_assert_eq(&part.v[0], &l.v[4], "read_log(4, 1)", 0);
	xevs_free(&part);
	part = read_log(db, 6, 10);
	cr_assert_eq(part.n, 0, "reading the log at the head returned events");
	xevs_free(&part);

	/* a stream, forward */
	static const size_t a_idx[5] = {0, 1, 2, 4, 5};
	xevs s = read_stream(db, "acct-a", 0, UINT64_MAX, KAPPA_FORWARD);
	cr_assert_eq(s.n, 5);
	for (size_t i = 0; i < 5; i++) {
		cr_assert_eq(s.v[i].version, i);
		xev_assert_eq(&s.v[i], &l.v[a_idx[i]], "acct-a forward", i);
	}
	xevs_free(&s);
	s = read_stream(db, "acct-a", 2, 2, KAPPA_FORWARD);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.v[0].version, 2);
	cr_assert_eq(s.v[1].version, 3);
	cr_assert_eq(s.v[1].position, 4);
	xevs_free(&s);
	s = read_stream(db, "acct-a", 5, 10, KAPPA_FORWARD);
	cr_assert_eq(s.n, 0, "reading past the last version returned events");
	xevs_free(&s);

	/* backward: from the last, from a version, from past the end */
	s = read_stream(db, "acct-a", UINT64_MAX, 2, KAPPA_BACKWARD);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.v[0].version, 4);
	cr_assert_eq(s.v[1].version, 3);
	xev_assert_eq(&s.v[0], &l.v[5], "acct-a backward", 0);
	xevs_free(&s);
	s = read_stream(db, "acct-a", 1, 10, KAPPA_BACKWARD);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.v[0].version, 1);
	cr_assert_eq(s.v[1].version, 0);
	xevs_free(&s);
	s = read_stream(db, "acct-a", 100, UINT64_MAX, KAPPA_BACKWARD);
	cr_assert_eq(s.n, 5, "backward from past the end should start at the last version");
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(s.v[i].version, 4 - i);
	xevs_free(&s);

	s = read_stream(db, "acct-b", 0, UINT64_MAX, KAPPA_FORWARD);
	cr_assert_eq(s.n, 1);
	xev_assert_eq(&s.v[0], &l.v[3], "acct-b", 0);
	xevs_free(&s);

	/* a missing stream reads as empty, both ways */
	s = read_stream(db, "acct-missing", 0, UINT64_MAX, KAPPA_FORWARD);
	cr_assert_eq(s.n, 0);
	xevs_free(&s);
	s = read_stream(db, "acct-missing", UINT64_MAX, UINT64_MAX, KAPPA_BACKWARD);
	cr_assert_eq(s.n, 0);
	xevs_free(&s);
	xevs_free(&l);

	kappa_stream_info in = info_of(db, "acct-a");
	cr_assert_eq(in.exists, 1);
	cr_assert_eq(in.last_version, 4);
	cr_assert_eq(in.last_position, 5);
	cr_assert_eq(in.event_count, 5);
	cr_assert_eq(in.claims_held, 0);
	in = info_of(db, "acct-b");
	cr_assert_eq(in.exists, 1);
	cr_assert_eq(in.last_version, 0);
	cr_assert_eq(in.last_position, 3);
	cr_assert_eq(in.event_count, 1);
	in = info_of(db, "acct-missing");
	cr_assert_eq(in.exists, 0);
	cr_assert_eq(in.event_count, 0);
	cr_assert_eq(in.claims_held, 0);
}

Test(store, versions_and_positions_are_dense_and_read_back_across_reopen)
{
	char *dir = kt_tmpdir("store");
	kappa_db *db = kt_open_ok(dir, NULL);
	cr_assert_eq(kappa_head(db), 0);
	xevs l = read_log(db, 0, UINT64_MAX);
	cr_assert_eq(l.n, 0);
	xevs_free(&l);

	int64_t t0 = kt_wall_ms();
	kappa_event_in e3[3] = {evi("Opened", "{\"n\":0}"), evi("Deposited", "{\"n\":1}"),
				evi("Deposited", "{\"n\":2}")};
	kappa_append_result r = append_ok(db, "acct-a", KAPPA_NO_STREAM, NULL, e3, 3, NULL, 0);
	cr_assert_eq(r.first_position, 0);
	cr_assert_eq(r.last_position, 2);
	cr_assert_eq(r.version, 2);
	cr_assert_eq(r.deduplicated, 0);

	kappa_event_in eb = evi("Noted", "{\"b\":0}");
	r = append_ok(db, "acct-b", KAPPA_ANY, NULL, &eb, 1, NULL, 0);
	cr_assert_eq(r.first_position, 3);
	cr_assert_eq(r.last_position, 3);
	cr_assert_eq(r.version, 0);

	/* subject and metadata; an explicit data_len cuts trailing bytes off */
	kappa_event_in e2[2] = {evi("Withdrawn", "{\"n\":3}"), evi("Closed", "{\"n\":4}junk")};
	e2[0].subject = "user-7";
	e2[0].metadata = "{\"by\":\"teller\"}";
	e2[1].data_len = 7;
	r = append_ok(db, "acct-a", 2, NULL, e2, 2, NULL, 0);
	cr_assert_eq(r.first_position, 4);
	cr_assert_eq(r.last_position, 5);
	cr_assert_eq(r.version, 4);
	int64_t t1 = kt_wall_ms();

	check_first_six(db, t0, t1);
	kappa_close(db);
	db = kt_open_ok(dir, NULL);
	check_first_six(db, t0, t1);

	/* appends continue where they were */
	r = append1(db, "acct-a", 4, NULL, "{\"n\":5}");
	cr_assert_eq(r.first_position, 6);
	cr_assert_eq(r.version, 5);
	r = append1(db, "acct-c", KAPPA_NO_STREAM, NULL, "{}");
	cr_assert_eq(r.first_position, 7);
	cr_assert_eq(r.version, 0);
	cr_assert_eq(kappa_head(db), 8);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(store, unicode_and_maximal_names_are_accepted)
{
	char *dir = kt_tmpdir("names");
	kappa_db *db = kt_open_ok(dir, NULL);
	char name[KAPPA_MAX_STREAM + 1], type[KAPPA_MAX_TYPE + 1], rid[KAPPA_MAX_REQUEST_ID + 1];
	char key[KAPPA_MAX_CLAIM + 1];
	memset(name, 's', KAPPA_MAX_STREAM);
	name[KAPPA_MAX_STREAM] = '\0';
	memset(type, 't', KAPPA_MAX_TYPE);
	type[KAPPA_MAX_TYPE] = '\0';
	memset(rid, 'r', KAPPA_MAX_REQUEST_ID);
	rid[KAPPA_MAX_REQUEST_ID] = '\0';
	memset(key, 'k', KAPPA_MAX_CLAIM);
	key[KAPPA_MAX_CLAIM] = '\0';
	kappa_event_in e = evi(type, "{\"x\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}");
	kappa_claim c = {key, 0};
	kappa_append_result r = append_ok(db, name, KAPPA_NO_STREAM, rid, &e, 1, &c, 1);
	cr_assert_eq(r.version, 0);
	r = append1(db, "caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80 s p a c e", KAPPA_ANY, "x",
		    "{}");
	cr_assert_eq(r.first_position, 1);

	xevs s = read_stream(db, name, 0, 10, KAPPA_FORWARD);
	cr_assert_eq(s.n, 1);
	cr_assert_str_eq(s.v[0].stream, name);
	cr_assert_str_eq(s.v[0].type, type);
	cr_assert_str_eq(s.v[0].data, e.data);
	xevs_free(&s);
	s = read_stream(db, "caf\xc3\xa9/\xe2\x82\xac/\xf0\x9f\x98\x80 s p a c e", 0, 10,
			KAPPA_FORWARD);
	cr_assert_eq(s.n, 1);
	xevs_free(&s);
	const char *const keys[1] = {key};
	assert_claims(db, name, keys, 1);
	/* the same request again is deduplicated, with the longest id */
	r = append_ok(db, name, KAPPA_NO_STREAM, rid, &e, 1, &c, 1);
	cr_assert_eq(r.deduplicated, 1);
	cr_assert_eq(kappa_head(db), 2);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(store, expected_version_any_no_stream_exists_and_exact)
{
	char *dir = kt_tmpdir("ev");
	kappa_db *db = kt_open_ok(dir, NULL);
	kappa_event_in e = evi("Noted", "{}");
	kappa_append_result r;

	r = append_ok(db, "s", KAPPA_NO_STREAM, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.version, 0);
	r = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "s", KAPPA_NO_STREAM, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.actual_version, 0, "actual_version %" PRId64, r.actual_version);

	r = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "t", KAPPA_EXISTS, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.actual_version, -1, "actual_version %" PRId64, r.actual_version);
	cr_assert_eq(info_of(db, "t").exists, 0);
	r = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "t", 0, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.actual_version, -1);
	r = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "t", 5, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.actual_version, -1);
	cr_assert_eq(info_of(db, "t").exists, 0);

	r = append_ok(db, "s", KAPPA_EXISTS, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.version, 1);
	r = append_ok(db, "s", 1, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.version, 2);
	r = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "s", 1, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.actual_version, 2);
	r = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "s", 3, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.actual_version, 2);
	r = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "s", 0, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.actual_version, 2);
	r = append_ok(db, "s", KAPPA_ANY, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.version, 3);
	r = append_ok(db, "u", KAPPA_ANY, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.version, 0);
	r = append_ok(db, "s", 3, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.version, 4);

	/* a multi-event append moves the version by its count */
	kappa_event_in e4[4] = {e, e, e, e};
	r = append_ok(db, "s", 4, NULL, e4, 4, NULL, 0);
	cr_assert_eq(r.version, 8);
	cr_assert_eq(r.last_position - r.first_position, 3);
	r = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "s", 4, NULL, e4, 4, NULL, 0);
	cr_assert_eq(r.actual_version, 8);

	kappa_stream_info in = info_of(db, "s");
	cr_assert_eq(in.last_version, 8);
	cr_assert_eq(in.event_count, 9);
	cr_assert_eq(kappa_head(db), 10);

	/* versions survive a reopen */
	kappa_close(db);
	db = kt_open_ok(dir, NULL);
	r = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "s", 7, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.actual_version, 8);
	r = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "u", KAPPA_NO_STREAM, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.actual_version, 0);
	r = append_ok(db, "s", 8, NULL, &e, 1, NULL, 0);
	cr_assert_eq(r.version, 9);
	cr_assert_eq(r.first_position, 10);
	kappa_close(db);
	kt_rmdir(dir);
}

static void
assert_same_result(const kappa_append_result *a, const kappa_append_result *b, int line)
{
	cr_assert_eq(a->first_position, b->first_position,
		     "line %d: first_position %" PRIu64 " vs %" PRIu64, line, a->first_position,
		     b->first_position);
	cr_assert_eq(a->last_position, b->last_position, "line %d: last_position", line);
	cr_assert_eq(a->version, b->version, "line %d: version %" PRIu64 " vs %" PRIu64, line,
		     a->version, b->version);
}

Test(store, request_ids_deduplicate_retries_and_refuse_other_content)
{
	char *dir = kt_tmpdir("dedup");
	kappa_db *db = kt_open_ok(dir, NULL);
	append1(db, "other", KAPPA_ANY, NULL, "{}");

	kappa_event_in e[2] = {evi("Opened", "{\"a\":1}"), evi("Deposited", "{\"a\":2}")};
	e[1].subject = "user-1";
	e[1].metadata = "{\"m\":1}";
	kappa_claim c[1] = {{"email:a@example.com", 0}};
	kappa_append_result r1 = append_ok(db, "s", KAPPA_NO_STREAM, "req-1", e, 2, c, 1);
	cr_assert_eq(r1.deduplicated, 0);
	cr_assert_eq(r1.first_position, 1);
	cr_assert_eq(r1.version, 1);
	uint64_t head = kappa_head(db);

	kappa_append_result r = append_ok(db, "s", KAPPA_NO_STREAM, "req-1", e, 2, c, 1);
	cr_assert_eq(r.deduplicated, 1, "a retry was not deduplicated");
	assert_same_result(&r, &r1, __LINE__);
	cr_assert_eq(kappa_head(db), head, "a deduplicated retry wrote");

	/* the stream moves on; the retry still answers the original result (NO_STREAM would now
	 * fail: the request id is looked at first) */
	append1(db, "s", KAPPA_ANY, "req-2", "{\"a\":3}");
	head = kappa_head(db);
	r = append_ok(db, "s", KAPPA_NO_STREAM, "req-1", e, 2, c, 1);
	cr_assert_eq(r.deduplicated, 1);
	assert_same_result(&r, &r1, __LINE__);
	cr_assert_eq(kappa_head(db), head);

	/* the same id with other content, one difference at a time */
	kappa_event_in x[3] = {e[0], e[1], e[1]};
	kappa_claim xc[1] = {c[0]};
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s2", KAPPA_NO_STREAM, "req-1", e, 2, c, 1);
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_ANY, "req-1", e, 2, c, 1);
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", 0, "req-1", e, 2, c, 1);
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_NO_STREAM, "req-1", e, 1, c, 1);
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_NO_STREAM, "req-1", x, 3, c, 1);
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_NO_STREAM, "req-1", e, 2, NULL, 0);
	x[1].data = "{\"a\":9}";
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_NO_STREAM, "req-1", x, 2, c, 1);
	x[1] = e[1];
	x[1].type = "Withdrawn";
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_NO_STREAM, "req-1", x, 2, c, 1);
	x[1] = e[1];
	x[1].subject = "user-2";
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_NO_STREAM, "req-1", x, 2, c, 1);
	x[1] = e[1];
	x[1].subject = NULL;
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_NO_STREAM, "req-1", x, 2, c, 1);
	x[1] = e[1];
	x[1].metadata = NULL;
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_NO_STREAM, "req-1", x, 2, c, 1);
	x[1] = e[1];
	x[1].metadata = "{\"m\":2}";
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_NO_STREAM, "req-1", x, 2, c, 1);
	xc[0].key = "email:b@example.com";
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_NO_STREAM, "req-1", e, 2, xc, 1);
	xc[0] = c[0];
	xc[0].release = 1;
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_NO_STREAM, "req-1", e, 2, xc, 1);

	/* no id: a plain append, never deduplicated */
	r = append_ok(db, "s", KAPPA_ANY, NULL, e, 2, c, 1);
	cr_assert_eq(r.deduplicated, 0);
	cr_assert_eq(r.first_position, head);
	head = kappa_head(db);

	/* after a restart */
	kappa_close(db);
	db = kt_open_ok(dir, NULL);
	cr_assert_eq(kappa_head(db), head);
	r = append_ok(db, "s", KAPPA_NO_STREAM, "req-1", e, 2, c, 1);
	cr_assert_eq(r.deduplicated, 1, "a retry after a restart was not deduplicated");
	assert_same_result(&r, &r1, __LINE__);
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "s", KAPPA_NO_STREAM, "req-1", e, 1, c, 1);
	cr_assert_eq(kappa_head(db), head);

	/* a request that failed did not use up its id */
	kappa_event_in one = evi("Noted", "{\"q\":1}");
	APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "s", 99, "req-3", &one, 1, NULL, 0);
	r = append_ok(db, "s", KAPPA_ANY, "req-3", &one, 1, NULL, 0);
	cr_assert_eq(r.deduplicated, 0, "a failed request's id was remembered");
	cr_assert_eq(r.first_position, head);
	kappa_append_result r3 = r;
	r = append_ok(db, "s", KAPPA_ANY, "req-3", &one, 1, NULL, 0);
	cr_assert_eq(r.deduplicated, 1);
	assert_same_result(&r, &r3, __LINE__);

	/* the same id on another stream's first request is not confused with it: ids are
	 * global */
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "other", KAPPA_ANY, "req-3", &one, 1, NULL, 0);
	cr_assert_eq(kappa_head(db), head + 1);
	xevs s = read_stream(db, "s", 0, UINT64_MAX, KAPPA_FORWARD);
	cr_assert_eq(s.n, 6, "stream s has %zu events, expected 6", s.n);
	xevs_free(&s);
	kappa_close(db);
	kt_rmdir(dir);
}

/* Threads sending the same requests at once: one writes, the others are deduplicated. */
#define SAME_THREADS 8
#define SAME_REQS 40

typedef struct {
	kappa_db *db;
	kappa_append_result res[SAME_REQS];
	int rc[SAME_REQS];
	char msg[256];
} same_sender;

static void *
same_sender_main(void *arg)
{
	same_sender *s = arg;
	for (int i = 0; i < SAME_REQS; i++) {
		char rid[32], d0[64], d1[64];
		snprintf(rid, sizeof(rid), "same-%d", i);
		snprintf(d0, sizeof(d0), "{\"req\":%d,\"i\":0}", i);
		snprintf(d1, sizeof(d1), "{\"req\":%d,\"i\":1}", i);
		kappa_event_in e[2] = {evi("Paid", d0), evi("Paid", d1)};
		kappa_err err;
		memset(&err, 0, sizeof(err));
		s->rc[i] = kappa_append(s->db, i % 2 ? "odd" : "even", KAPPA_ANY, rid, e, 2, NULL,
					0, &s->res[i], &err);
		if (s->rc[i] != KAPPA_OK && !s->msg[0])
			snprintf(s->msg, sizeof(s->msg), "%s: %.200s", kappa_strerror(s->rc[i]),
				 err.msg);
	}
	return NULL;
}

Test(store, concurrent_retries_of_one_request_write_it_once)
{
	char *dir = kt_tmpdir("same");
	kappa_db *db = kt_open_ok(dir, NULL);
	same_sender *s = calloc(SAME_THREADS, sizeof(*s));
	pthread_t th[SAME_THREADS];
	for (int t = 0; t < SAME_THREADS; t++) {
		s[t].db = db;
		cr_assert_eq(pthread_create(&th[t], NULL, same_sender_main, &s[t]), 0);
	}
	for (int t = 0; t < SAME_THREADS; t++)
		pthread_join(th[t], NULL);
	for (int i = 0; i < SAME_REQS; i++) {
		int writers = 0;
		for (int t = 0; t < SAME_THREADS; t++) {
			cr_assert_eq(s[t].rc[i], KAPPA_OK, "thread %d: %s", t, s[t].msg);
			writers += !s[t].res[i].deduplicated;
			assert_same_result(&s[t].res[i], &s[0].res[i], __LINE__);
		}
		cr_assert_eq(writers, 1, "request %d was written %d times", i, writers);
	}
	cr_assert_eq(kappa_head(db), 2 * SAME_REQS);
	xevs l = read_log(db, 0, UINT64_MAX);
	cr_assert_eq(l.n, 2 * SAME_REQS);
	for (int i = 0; i < SAME_REQS; i++) {
		uint64_t p = s[0].res[i].first_position;
		char want[64];
		snprintf(want, sizeof(want), "{\"req\":%d,\"i\":0}", i);
		cr_assert_str_eq(l.v[p].data, want);
		snprintf(want, sizeof(want), "{\"req\":%d,\"i\":1}", i);
		cr_assert_str_eq(l.v[p + 1].data, want);
	}
	xevs_free(&l);
	cr_assert_eq(info_of(db, "odd").event_count, SAME_REQS);
	cr_assert_eq(info_of(db, "even").last_version, SAME_REQS - 1);
	free(s);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(store, claims_take_hold_release_and_conflict)
{
	char *dir = kt_tmpdir("claims");
	kappa_db *db = kt_open_ok(dir, NULL);
	kappa_event_in e = evi("Registered", "{}");
	const char *const mail = "email:a@example.com";
	kappa_claim take = {mail, 0}, release = {mail, 1};
	kappa_append_result r;

	append_ok(db, "user-a", KAPPA_NO_STREAM, NULL, &e, 1, &take, 1);
	assert_claims(db, "user-a", &mail, 1);
	/* claiming a key the stream holds again is fine */
	append_ok(db, "user-a", KAPPA_ANY, NULL, &e, 1, &take, 1);
	assert_claims(db, "user-a", &mail, 1);

	/* another stream: refused, naming the key and the holder, nothing written */
	r = APPEND_FAILS(db, KAPPA_ECLAIM_TAKEN, "user-b", KAPPA_ANY, NULL, &e, 1, &take, 1);
	cr_assert_str_eq(r.claim_key, mail);
	cr_assert_str_eq(r.claim_holder, "user-a");
	cr_assert_eq(info_of(db, "user-b").exists, 0);
	/* the whole append fails: a free key listed first is not taken either */
	kappa_claim two[2] = {{"email:free@example.com", 0}, {mail, 0}};
	r = APPEND_FAILS(db, KAPPA_ECLAIM_TAKEN, "user-b", KAPPA_ANY, NULL, &e, 1, two, 2);
	cr_assert_str_eq(r.claim_key, mail);
	cr_assert_str_eq(r.claim_holder, "user-a");
	cr_assert_eq(info_of(db, "user-b").exists, 0);
	keyset k = claims_of(db, "user-b");
	cr_assert_eq(k.n, 0);
	keyset_free(&k);
	/* ... and a version failure takes no claim */
	kappa_claim other = {"email:other@example.com", 0};
	APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "user-a", 0, NULL, &e, 1, &other, 1);
	assert_claims(db, "user-a", &mail, 1);

	/* another stream cannot release it */
	kappa_err err;
	memset(&err, 0, sizeof(err));
	memset(&r, 0, sizeof(r));
	int rc = kappa_append(db, "user-c", KAPPA_ANY, NULL, &e, 1, &release, 1, &r, &err);
	cr_assert(rc == KAPPA_OK || rc == KAPPA_ECLAIM_TAKEN, "%s: %s", kappa_strerror(rc),
		  err.msg);
	assert_claims(db, "user-a", &mail, 1);
	r = APPEND_FAILS(db, KAPPA_ECLAIM_TAKEN, "user-b", KAPPA_ANY, NULL, &e, 1, &take, 1);
	cr_assert_str_eq(r.claim_holder, "user-a");

	/* the holder releases it; then another stream takes it */
	append_ok(db, "user-a", KAPPA_ANY, NULL, &e, 1, &release, 1);
	assert_claims(db, "user-a", NULL, 0);
	append_ok(db, "user-b", KAPPA_NO_STREAM, NULL, &e, 1, two, 2);
	const char *const b_keys[2] = {"email:free@example.com", mail};
	assert_claims(db, "user-b", b_keys, 2);
	r = APPEND_FAILS(db, KAPPA_ECLAIM_TAKEN, "user-a", KAPPA_ANY, NULL, &e, 1, &take, 1);
	cr_assert_str_eq(r.claim_holder, "user-b");

	/* releasing a free key is fine */
	kappa_claim never = {"never-held", 1};
	append_ok(db, "user-a", KAPPA_ANY, NULL, &e, 1, &never, 1);

	/* several claims and releases in one append */
	kappa_claim mix[3] = {{"x1", 0}, {"x2", 0}, {"x3", 0}};
	append_ok(db, "user-d", KAPPA_ANY, NULL, &e, 1, mix, 3);
	kappa_claim mix2[3] = {{"x1", 1}, {"x4", 0}, {"x3", 1}};
	append_ok(db, "user-d", KAPPA_ANY, NULL, &e, 1, mix2, 3);
	const char *const d_keys[2] = {"x2", "x4"};
	assert_claims(db, "user-d", d_keys, 2);
	/* x1 and x3 are free again */
	kappa_claim x13[2] = {{"x1", 0}, {"x3", 0}};
	append_ok(db, "user-e", KAPPA_ANY, NULL, &e, 1, x13, 2);
	const char *const e_keys[2] = {"x1", "x3"};
	assert_claims(db, "user-e", e_keys, 2);

	/* claims survive a reopen */
	kappa_close(db);
	db = kt_open_ok(dir, NULL);
	assert_claims(db, "user-a", NULL, 0);
	assert_claims(db, "user-b", b_keys, 2);
	assert_claims(db, "user-d", d_keys, 2);
	assert_claims(db, "user-e", e_keys, 2);
	r = APPEND_FAILS(db, KAPPA_ECLAIM_TAKEN, "user-a", KAPPA_ANY, NULL, &e, 1, mix2 + 1, 1);
	cr_assert_str_eq(r.claim_key, "x4");
	cr_assert_str_eq(r.claim_holder, "user-d");
	assert_claims(db, "user-missing", NULL, 0);
	kappa_close(db);
	kt_rmdir(dir);
}

static void
assert_dense(kappa_db *db, const char *stream, const uint64_t *positions, size_t n)
{
	kappa_stream_info in = info_of(db, stream);
	cr_assert_eq(in.event_count, n, "%s: event_count %" PRIu64 ", expected %zu", stream,
		     in.event_count, n);
	cr_assert_eq(in.last_version, n - 1, "%s: last_version %" PRIu64 ", expected %zu", stream,
		     in.last_version, n - 1);
	cr_assert_eq(in.last_position, positions[n - 1]);
	xevs l = read_stream(db, stream, 0, UINT64_MAX, KAPPA_FORWARD);
	cr_assert_eq(l.n, n, "%s: read %zu events, expected %zu", stream, l.n, n);
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(l.v[i].version, i, "%s: version %" PRIu64 " at index %zu", stream,
			     l.v[i].version, i);
		cr_assert_eq(l.v[i].position, positions[i],
			     "%s v%zu: position %" PRIu64 ", expected %" PRIu64, stream, i,
			     l.v[i].position, positions[i]);
	}
	xevs_free(&l);
}

Test(store, claims_do_not_disturb_stream_versions)
{
	char *dir = kt_tmpdir("claimver");
	kappa_db *db = kt_open_ok(dir, NULL);
	kappa_event_in e = evi("Noted", "{}");
	kappa_append_result r;
	for (int i = 0; i < 3; i++)
		append_ok(db, "s", KAPPA_ANY, NULL, &e, 1, NULL, 0);
	/* an existing stream takes a free key */
	kappa_claim k = {"k", 0};
	r = append_ok(db, "s", KAPPA_ANY, NULL, &e, 1, &k, 1);
	cr_assert_eq(r.first_position, 3);
	cr_assert_eq(r.version, 3, "an append with a claim got version %" PRIu64 ", expected 3",
		     r.version);
	/* exact version, a release and a free key */
	kappa_claim k2[2] = {{"k", 1}, {"k2", 0}};
	r = append_ok(db, "s", 3, NULL, &e, 1, k2, 2);
	cr_assert_eq(r.version, 4);
	/* a new stream with a claim, then one it holds and a free one, then one it holds */
	kappa_claim k3 = {"k3", 0};
	r = append_ok(db, "t", KAPPA_NO_STREAM, NULL, &e, 1, &k3, 1);
	cr_assert_eq(r.version, 0);
	kappa_claim k34[2] = {{"k3", 0}, {"k4", 0}};
	kappa_event_in e2[2] = {e, e};
	r = append_ok(db, "t", 0, NULL, e2, 2, k34, 2);
	cr_assert_eq(r.version, 2);
	r = append_ok(db, "t", 2, NULL, &e, 1, k34 + 1, 1);
	cr_assert_eq(r.version, 3);
	static const uint64_t s_pos[5] = {0, 1, 2, 3, 4}, t_pos[4] = {5, 6, 7, 8};
	for (int pass = 0; pass < 3; pass++) {
		assert_dense(db, "s", s_pos, 5);
		assert_dense(db, "t", t_pos, 4);
		const char *const s_keys[1] = {"k2"}, *const t_keys[2] = {"k3", "k4"};
		assert_claims(db, "s", s_keys, 1);
		assert_claims(db, "t", t_keys, 2);
		kappa_close(db);
		if (pass == 1)
			rm_index(dir);
		db = kt_open_ok(dir, NULL);
	}
	kappa_close(db);
	kt_rmdir(dir);
}

/* ---- read your writes, from several threads ------------------------------------------------ */

#define RYW_THREADS 4
#define RYW_APPENDS 100

typedef struct {
	kappa_db *db;
	int id;
	int failures;
	char first[256];
} ryw_thread;

static void ryw_fail(ryw_thread *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
ryw_fail(ryw_thread *t, const char *fmt, ...)
{
	if (t->failures++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(t->first, sizeof(t->first), fmt, ap);
		va_end(ap);
	}
}

static void *
ryw_main(void *arg)
{
	ryw_thread *t = arg;
	char stream[32];
	snprintf(stream, sizeof(stream), "ryw-%d", t->id);
	for (int i = 0; i < RYW_APPENDS; i++) {
		char data[64];
		snprintf(data, sizeof(data), "{\"t\":%d,\"i\":%d}", t->id, i);
		kappa_event_in e = evi("Wrote", data);
		kappa_append_result r;
		kappa_err err;
		memset(&err, 0, sizeof(err));
		int rc = kappa_append(t->db, stream, i == 0 ? KAPPA_NO_STREAM : i - 1, NULL, &e, 1,
				      NULL, 0, &r, &err);
		if (rc != KAPPA_OK) {
			ryw_fail(t, "append %d: %s: %s", i, kappa_strerror(rc), err.msg);
			return NULL;
		}
		if (r.version != (uint64_t)i)
			ryw_fail(t, "append %d got version %" PRIu64, i, r.version);
		if (kappa_head(t->db) <= r.last_position)
			ryw_fail(t, "append %d: head %" PRIu64 " not past %" PRIu64, i,
				 kappa_head(t->db), r.last_position);
		kappa_stream_info in;
		if (kappa_stream_info_get(t->db, stream, &in, &err) != KAPPA_OK || !in.exists ||
		    in.last_version != (uint64_t)i || in.last_position != r.last_position)
			ryw_fail(t, "append %d: stream info does not show it", i);
		kappa_iter *it = NULL;
		kappa_event ev;
		if (kappa_read_stream(t->db, stream, UINT64_MAX, 1, KAPPA_BACKWARD, &it, &err) ||
		    kappa_iter_next(it, &ev, &err) != 1 || ev.version != (uint64_t)i ||
		    ev.position != r.last_position || ev.data_len != strlen(data) ||
		    memcmp(ev.data, data, ev.data_len) != 0)
			ryw_fail(t, "append %d: read_stream does not see it", i);
		if (it)
			kappa_iter_free(it);
		it = NULL;
		if (kappa_read_log(t->db, r.first_position, 1, &it, &err) ||
		    kappa_iter_next(it, &ev, &err) != 1 || ev.position != r.first_position ||
		    ev.stream_len != strlen(stream) || memcmp(ev.stream, stream, ev.stream_len))
			ryw_fail(t, "append %d: read_log does not see it", i);
		if (it)
			kappa_iter_free(it);
	}
	return NULL;
}

Test(store, reads_see_every_acknowledged_append)
{
	char *dir = kt_tmpdir("ryw");
	kappa_db *db = kt_open_ok(dir, NULL);
	ryw_thread t[RYW_THREADS];
	pthread_t th[RYW_THREADS];
	memset(t, 0, sizeof(t));
	for (int i = 0; i < RYW_THREADS; i++) {
		t[i].db = db;
		t[i].id = i;
		cr_assert_eq(pthread_create(&th[i], NULL, ryw_main, &t[i]), 0);
	}
	for (int i = 0; i < RYW_THREADS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < RYW_THREADS; i++)
		cr_assert_eq(t[i].failures, 0, "thread %d: %d failures, the first: %s", i,
			     t[i].failures, t[i].first);
	cr_assert_eq(kappa_head(db), RYW_THREADS * RYW_APPENDS);
	kappa_close(db);
	kt_rmdir(dir);
}

/* ---- subscriptions -------------------------------------------------------------------------- */

typedef struct {
	kappa_db *db;
	int n;
	int rc;
	char msg[256];
} live_appender;

static void *
live_appender_main(void *arg)
{
	live_appender *a = arg;
	for (int i = 0; i < a->n; i++) {
		char data[48];
		snprintf(data, sizeof(data), "{\"live\":%d}", i);
		kappa_event_in e = evi("Live", data);
		kappa_err err;
		memset(&err, 0, sizeof(err));
		a->rc = kappa_append(a->db, i % 3 ? "live-a" : "live-b", KAPPA_ANY, NULL, &e, 1,
				     NULL, 0, NULL, &err);
		if (a->rc != KAPPA_OK) {
			snprintf(a->msg, sizeof(a->msg), "%s", err.msg);
			return NULL;
		}
		if (i % 10 == 0)
			usleep(2000);
	}
	return NULL;
}

static void
sub_expect(kappa_sub *sub, uint64_t position, const char *data)
{
	kappa_event ev;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_sub_next(sub, &ev, 10000, &err);
	cr_assert_eq(rc, 1, "waiting for position %" PRIu64 ": %d %s: %s", position, rc,
		     kappa_strerror(rc), err.msg);
	cr_assert_eq(ev.position, position, "got position %" PRIu64 ", expected %" PRIu64,
		     ev.position, position);
	cr_assert_eq(ev.data_len, strlen(data), "position %" PRIu64, position);
	cr_assert_eq(memcmp(ev.data, data, ev.data_len), 0, "position %" PRIu64, position);
}

Test(store, subscriptions_catch_up_then_follow_live_appends)
{
	char *dir = kt_tmpdir("sub");
	kappa_db *db = kt_open_ok(dir, NULL);
	char data[48];
	for (int i = 0; i < 50; i++) {
		snprintf(data, sizeof(data), "{\"old\":%d}", i);
		append1(db, i % 2 ? "old-a" : "old-b", KAPPA_ANY, NULL, data);
	}
	kappa_sub *sub = NULL, *mid = NULL, *tail = NULL;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_subscribe(db, 0, &sub, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(kappa_subscribe(db, 20, &mid, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(kappa_subscribe(db, 50, &tail, &err), KAPPA_OK, "%s", err.msg);
	for (int i = 0; i < 50; i++) {
		snprintf(data, sizeof(data), "{\"old\":%d}", i);
		sub_expect(sub, (uint64_t)i, data);
	}
	/* caught up: a short wait times out */
	kappa_event ev;
	int64_t t0 = kt_mono_ms();
	cr_assert_eq(kappa_sub_next(sub, &ev, 50, &err), 0);
	cr_assert_geq(kt_mono_ms() - t0, 40, "the 50 ms wait returned early");
	cr_assert_eq(kappa_sub_next(tail, &ev, 0, &err), 0);

	live_appender la = {db, 200, 0, ""};
	pthread_t th;
	cr_assert_eq(pthread_create(&th, NULL, live_appender_main, &la), 0);
	for (int i = 0; i < 200; i++) {
		snprintf(data, sizeof(data), "{\"live\":%d}", i);
		sub_expect(sub, 50 + (uint64_t)i, data);
	}
	pthread_join(th, NULL);
	cr_assert_eq(la.rc, KAPPA_OK, "live appender: %s", la.msg);
	cr_assert_eq(kappa_sub_next(sub, &ev, 20, &err), 0);

	/* the others, read afterwards, see the same sequence from their start */
	for (int i = 20; i < 250; i++) {
		if (i < 50)
			snprintf(data, sizeof(data), "{\"old\":%d}", i);
		else
			snprintf(data, sizeof(data), "{\"live\":%d}", i - 50);
		sub_expect(mid, (uint64_t)i, data);
		if (i >= 50)
			sub_expect(tail, (uint64_t)i, data);
	}
	cr_assert_eq(kappa_sub_next(mid, &ev, 0, &err), 0);
	kappa_sub_free(sub);
	kappa_sub_free(mid);
	kappa_sub_free(tail);

	/* after a reopen, a subscription from 0 replays everything */
	kappa_close(db);
	db = kt_open_ok(dir, NULL);
	cr_assert_eq(kappa_subscribe(db, 0, &sub, &err), KAPPA_OK, "%s", err.msg);
	for (int i = 0; i < 250; i++) {
		cr_assert_eq(kappa_sub_next(sub, &ev, 5000, &err), 1, "event %d: %s", i, err.msg);
		cr_assert_eq(ev.position, (uint64_t)i);
	}
	cr_assert_eq(kappa_sub_next(sub, &ev, 0, &err), 0);
	kappa_sub_free(sub);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(store, wait_position_returns_once_committed)
{
	char *dir = kt_tmpdir("waitpos");
	kappa_db *db = kt_open_ok(dir, NULL);
	cr_assert_eq(kappa_wait_position(db, 0, 20), KAPPA_ETIMEOUT);
	append1(db, "w", KAPPA_ANY, NULL, "{}");
	cr_assert_eq(kappa_wait_position(db, 0, 20), KAPPA_OK);
	cr_assert_eq(kappa_wait_position(db, 1, 20), KAPPA_ETIMEOUT);
	kappa_close(db);
	kt_rmdir(dir);
}

/* ==== bad input =============================================================================== */

/* Stream names that are not 1..200 bytes of UTF-8 without control characters (NULL, too
 * long: tested apart). */
static const char *const BAD_NAMES[] = {
	"",
	"ctl\x01"
	"x",
	"tab\there",
	"nl\n",
	"\x1f",
	"del\x7f",
	"bad\xff",
	"trunc\xc3",
	"\xc3\x28",
	"over\xc0\xaf",
	"sur\xed\xa0\x80",
	"\x80lead",
};

Test(store, append_rejects_bad_streams_types_and_versions)
{
	char *dir = kt_tmpdir("badname");
	kappa_db *db = kt_open_ok(dir, NULL);
	append1(db, "s", KAPPA_ANY, NULL, "{}");
	kappa_event_in e = evi("Noted", "{}");
	char longname[KAPPA_MAX_STREAM + 2];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';

	APPEND_FAILS(db, KAPPA_EINVAL, NULL, KAPPA_ANY, NULL, &e, 1, NULL, 0);
	APPEND_FAILS(db, KAPPA_EINVAL, longname, KAPPA_ANY, NULL, &e, 1, NULL, 0);
	for (size_t i = 0; i < sizeof(BAD_NAMES) / sizeof(BAD_NAMES[0]); i++) {
		kappa_append_result r;
		kappa_err err;
		memset(&err, 0, sizeof(err));
		int rc = kappa_append(db, BAD_NAMES[i], KAPPA_ANY, NULL, &e, 1, NULL, 0, &r, &err);
		cr_assert_eq(rc, KAPPA_EINVAL, "bad stream name #%zu accepted (rc %s)", i,
			     kappa_strerror(rc));
		cr_assert_neq(err.msg[0], '\0');
		cr_assert_eq(kappa_head(db), 1, "bad stream name #%zu wrote", i);
	}

	/* types: NULL, empty, 101 bytes */
	char longtype[KAPPA_MAX_TYPE + 2];
	memset(longtype, 't', sizeof(longtype) - 1);
	longtype[sizeof(longtype) - 1] = '\0';
	kappa_event_in bad = e;
	bad.type = NULL;
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &bad, 1, NULL, 0);
	bad.type = "";
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &bad, 1, NULL, 0);
	bad.type = longtype;
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &bad, 1, NULL, 0);
	/* a bad second event fails the whole append */
	kappa_event_in pair[2] = {e, bad};
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, pair, 2, NULL, 0);
	/* subject: at most 200 bytes */
	bad = e;
	bad.subject = longname;
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &bad, 1, NULL, 0);

	/* expected_version below KAPPA_EXISTS */
	APPEND_FAILS(db, KAPPA_EINVAL, "s", -4, NULL, &e, 1, NULL, 0);
	APPEND_FAILS(db, KAPPA_EINVAL, "s", INT64_MIN, NULL, &e, 1, NULL, 0);
	APPEND_FAILS(db, KAPPA_EINVAL, "new", -4, NULL, &e, 1, NULL, 0);

	/* events: NULL with n > 0, n == 0 */
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, NULL, 1, NULL, 0);
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &e, 0, NULL, 0);
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, NULL, 0, NULL, 0);
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, "rid-n0", &e, 0, NULL, 0);

	/* request ids: empty, 129 bytes */
	char longrid[KAPPA_MAX_REQUEST_ID + 2];
	memset(longrid, 'r', sizeof(longrid) - 1);
	longrid[sizeof(longrid) - 1] = '\0';
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, "", &e, 1, NULL, 0);
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, longrid, &e, 1, NULL, 0);

	/* err may be NULL; the code is still returned */
	cr_assert_eq(kappa_append(db, NULL, KAPPA_ANY, NULL, &e, 1, NULL, 0, NULL, NULL),
		     KAPPA_EINVAL);
	cr_assert_eq(kappa_append(db, "s", 7, NULL, &e, 1, NULL, 0, NULL, NULL),
		     KAPPA_EWRONG_VERSION);
	/* result may be NULL on success */
	kappa_err err;
	cr_assert_eq(kappa_append(db, "s", KAPPA_ANY, NULL, &e, 1, NULL, 0, NULL, &err), KAPPA_OK,
		     "%s", err.msg);
	cr_assert_eq(kappa_head(db), 2);
	cr_assert_eq(info_of(db, "new").exists, 0);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(store, append_rejects_data_and_metadata_that_are_not_json_objects)
{
	char *dir = kt_tmpdir("badjson");
	kappa_db *db = kt_open_ok(dir, NULL);
	append1(db, "s", KAPPA_ANY, NULL, "{}");
	static const char *const bad_json[] = {
		"",
		"[]",
		"1",
		"nul",
		"null",
		"\"a string\"",
		"{bad",
		"{\"a\":}",
		"{}x",
		"{} {}",
		"{\"a\":\"\xff\"}",
		"{\"a\":\"\xc3\x28\"}",
		"{\"a\":\"\xed\xa0\x80\"}",
		"{\"\xc0\xaf\":1}",
		"{\"a\":\"raw\x01\"}",
	};
	kappa_event_in e = evi("Noted", "{}");
	kappa_event_in bad = e;
	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
		bad = e;
		bad.data = bad_json[i];
		kappa_append_result r;
		kappa_err err;
		memset(&err, 0, sizeof(err));
		int rc = kappa_append(db, "s", KAPPA_ANY, NULL, &bad, 1, NULL, 0, &r, &err);
		cr_assert_eq(rc, KAPPA_EINVAL, "data #%zu (%s) accepted: rc %s", i, bad_json[i],
			     kappa_strerror(rc));
		cr_assert_neq(err.msg[0], '\0');
		cr_assert_eq(kappa_head(db), 1, "data #%zu wrote", i);
		if (i == 0)
			continue; /* "" as metadata: metadata_len 0 means strlen, so "": no JSON */
		bad = e;
		bad.metadata = bad_json[i];
		memset(&err, 0, sizeof(err));
		rc = kappa_append(db, "s", KAPPA_ANY, NULL, &bad, 1, NULL, 0, &r, &err);
		cr_assert_eq(rc, KAPPA_EINVAL, "metadata #%zu (%s) accepted: rc %s", i, bad_json[i],
			     kappa_strerror(rc));
		cr_assert_neq(err.msg[0], '\0');
		cr_assert_eq(kappa_head(db), 1, "metadata #%zu wrote", i);
	}
	/* a NUL byte inside, within data_len */
	bad = e;
	bad.data = "{\"a\":\"x\0y\"}";
	bad.data_len = 11;
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &bad, 1, NULL, 0);
	/* data NULL */
	bad = e;
	bad.data = NULL;
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &bad, 1, NULL, 0);
	/* a data_len that cuts a valid object short */
	bad = e;
	bad.data = "{\"a\":1}";
	bad.data_len = 4;
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &bad, 1, NULL, 0);
	bad = e;
	bad.metadata = "{\"a\":1}";
	bad.metadata_len = 4;
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &bad, 1, NULL, 0);
	/* one bad event among good ones fails the batch */
	kappa_event_in three[3] = {e, e, e};
	three[2].data = "[1,2]";
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, three, 3, NULL, 0);
	cr_assert_eq(info_of(db, "s").event_count, 1);

	/* objects with nesting, escapes and unicode are fine */
	bad = e;
	bad.data = "{\"a\":[1,{\"b\":null}],\"c\":\"\\u00e9\\n\",\"d\":\"\xc3\xa9\"}";
	bad.metadata = "{}";
	append_ok(db, "s", KAPPA_ANY, NULL, &bad, 1, NULL, 0);
	cr_assert_eq(kappa_head(db), 2);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(store, append_rejects_bad_claims)
{
	char *dir = kt_tmpdir("badclaim");
	kappa_db *db = kt_open_ok(dir, NULL);
	append1(db, "s", KAPPA_ANY, NULL, "{}");
	kappa_event_in e = evi("Noted", "{}");
	char longkey[KAPPA_MAX_CLAIM + 2];
	memset(longkey, 'k', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	kappa_claim c = {NULL, 0};
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &e, 1, NULL, 1);
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &e, 1, &c, 1);
	c.key = "";
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &e, 1, &c, 1);
	c.key = longkey;
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &e, 1, &c, 1);
	c.release = 1;
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &e, 1, &c, 1);
	/* a bad claim after a good one: nothing taken */
	kappa_claim two[2] = {{"good", 0}, {"", 0}};
	APPEND_FAILS(db, KAPPA_EINVAL, "s", KAPPA_ANY, NULL, &e, 1, two, 2);
	assert_claims(db, "s", NULL, 0);
	/* more than max_append_claims (default 100) */
	kappa_claim *many = calloc(101, sizeof(*many));
	char(*keys)[16] = calloc(101, sizeof(*keys));
	for (int i = 0; i < 101; i++) {
		snprintf(keys[i], sizeof(keys[i]), "key-%d", i);
		many[i].key = keys[i];
	}
	APPEND_FAILS(db, KAPPA_ETOOBIG, "s", KAPPA_ANY, NULL, &e, 1, many, 101);
	assert_claims(db, "s", NULL, 0);
	append_ok(db, "s", KAPPA_ANY, NULL, &e, 1, many, 100);
	cr_assert_eq(info_of(db, "s").claims_held, 100);
	free(many);
	free(keys);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(store, append_limits_events_and_bytes)
{
	char *dir = kt_tmpdir("limits");
	kappa_options o;
	kappa_options_init(&o);
	cr_assert_eq(o.max_append_events, 10000, "default max_append_events");
	o.max_event_bytes = 4096;
	o.max_append_bytes = 16384;
	kappa_db *db = kt_open_ok(dir, &o);
	append1(db, "s", KAPPA_ANY, NULL, "{}");

	char *big = json_of_len(5000), *mid = json_of_len(3500);
	kappa_event_in e = evi("Big", big);
	APPEND_FAILS(db, KAPPA_ETOOBIG, "s", KAPPA_ANY, NULL, &e, 1, NULL, 0);
	/* 3,500 bytes each: one fits, five exceed the append limit, three fit */
	e.data = mid;
	kappa_event_in five[5] = {e, e, e, e, e};
	append_ok(db, "s", KAPPA_ANY, NULL, &e, 1, NULL, 0);
	APPEND_FAILS(db, KAPPA_ETOOBIG, "s", KAPPA_ANY, NULL, five, 5, NULL, 0);
	append_ok(db, "s", KAPPA_ANY, NULL, five, 3, NULL, 0);
	cr_assert_eq(kappa_head(db), 5);
	/* metadata counts towards the event */
	kappa_event_in m = evi("Small", "{}");
	m.metadata = big;
	APPEND_FAILS(db, KAPPA_ETOOBIG, "s", KAPPA_ANY, NULL, &m, 1, NULL, 0);
	free(mid);
	kappa_close(db);

	/* the event count limit, with the default byte limits */
	kappa_options_init(&o);
	db = kt_open_ok(dir, &o);
	size_t cnt = 10001;
	kappa_event_in *many = calloc(cnt, sizeof(*many));
	for (size_t i = 0; i < cnt; i++)
		many[i] = evi("T", "{}");
	APPEND_FAILS(db, KAPPA_ETOOBIG, "s", KAPPA_ANY, NULL, many, cnt, NULL, 0);
	kappa_append_result r = append_ok(db, "s", KAPPA_ANY, NULL, many, 10000, NULL, 0);
	cr_assert_eq(r.first_position, 5);
	cr_assert_eq(r.last_position, 10004);
	cr_assert_eq(r.version, 10004);
	cr_assert_eq(kappa_head(db), 10005);
	/* a lower limit is honoured */
	kappa_close(db);
	o.max_append_events = 10;
	db = kt_open_ok(dir, &o);
	APPEND_FAILS(db, KAPPA_ETOOBIG, "s", KAPPA_ANY, NULL, many, 11, NULL, 0);
	append_ok(db, "s", KAPPA_ANY, NULL, many, 10, NULL, 0);
	free(many);
	free(big);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(store, read_stream_and_info_reject_bad_arguments)
{
	char *dir = kt_tmpdir("badread");
	kappa_db *db = kt_open_ok(dir, NULL);
	append1(db, "s", KAPPA_ANY, NULL, "{}");
	char longname[KAPPA_MAX_STREAM + 2];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	kappa_iter *it;
	kappa_err err;

	const char *names[2 + sizeof(BAD_NAMES) / sizeof(BAD_NAMES[0])];
	size_t nn = 0;
	names[nn++] = NULL;
	names[nn++] = longname;
	for (size_t i = 0; i < sizeof(BAD_NAMES) / sizeof(BAD_NAMES[0]); i++)
		names[nn++] = BAD_NAMES[i];
	for (size_t i = 0; i < nn; i++) {
		memset(&err, 0, sizeof(err));
		it = NULL;
		int rc = kappa_read_stream(db, names[i], 0, 10, KAPPA_FORWARD, &it, &err);
		cr_assert_eq(rc, KAPPA_EINVAL, "read_stream: bad name #%zu: rc %s", i,
			     kappa_strerror(rc));
		cr_assert_eq(err.code, KAPPA_EINVAL);
		cr_assert_neq(err.msg[0], '\0');
		if (rc == KAPPA_OK)
			kappa_iter_free(it);
		kappa_stream_info in;
		memset(&err, 0, sizeof(err));
		rc = kappa_stream_info_get(db, names[i], &in, &err);
		cr_assert_eq(rc, KAPPA_EINVAL, "stream_info: bad name #%zu: rc %s", i,
			     kappa_strerror(rc));
		cr_assert_neq(err.msg[0], '\0');
	}
	static const int bad_dirs[] = {2, -1, 100};
	for (size_t i = 0; i < 3; i++) {
		memset(&err, 0, sizeof(err));
		it = NULL;
		int rc = kappa_read_stream(db, "s", 0, 10, bad_dirs[i], &it, &err);
		cr_assert_eq(rc, KAPPA_EINVAL, "direction %d: rc %s", bad_dirs[i],
			     kappa_strerror(rc));
		cr_assert_neq(err.msg[0], '\0');
		if (rc == KAPPA_OK)
			kappa_iter_free(it);
	}
	/* err may be NULL */
	cr_assert_eq(kappa_read_stream(db, NULL, 0, 10, KAPPA_FORWARD, &it, NULL), KAPPA_EINVAL);
	cr_assert_eq(kappa_head(db), 1);
	/* the good ones still work */
	xevs s = read_stream(db, "s", 0, 10, KAPPA_FORWARD);
	cr_assert_eq(s.n, 1);
	xevs_free(&s);
	kappa_close(db);
	kt_rmdir(dir);
}

/* Apart from the test above so that a crash here does not hide what that one checks. */
Test(store, read_stream_rejects_a_null_iterator_pointer)
{
	char *dir = kt_tmpdir("nullit");
	kappa_db *db = kt_open_ok(dir, NULL);
	append1(db, "s", KAPPA_ANY, NULL, "{}");
	kappa_err err;
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_read_stream(db, "s", 0, 10, KAPPA_FORWARD, NULL, &err), KAPPA_EINVAL);
	cr_assert_neq(err.msg[0], '\0');
	cr_assert_eq(kappa_head(db), 1);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(store, open_rejects_bad_arguments_and_a_second_handle)
{
	char *dir = kt_tmpdir("badopen");
	kappa_db *db = (kappa_db *)&db; /* not NULL: the failing calls must clear it */
	kappa_err err;
	kappa_options o;

	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_open(NULL, NULL, &db, &err), KAPPA_EINVAL);
	cr_assert_null(db);
	cr_assert_neq(err.msg[0], '\0');
	db = (kappa_db *)&db;
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_open("", NULL, &db, &err), KAPPA_EINVAL);
	cr_assert_null(db);
	cr_assert_neq(err.msg[0], '\0');
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_open(dir, NULL, NULL, &err), KAPPA_EINVAL);
	cr_assert_neq(err.msg[0], '\0');

	kappa_options_init(&o);
	o.segment_bytes = 1;
	db = (kappa_db *)&db;
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_open(dir, &o, &db, &err), KAPPA_EINVAL);
	cr_assert_null(db);
	cr_assert_eq(err.code, KAPPA_EINVAL);
	cr_assert_neq(err.msg[0], '\0');
	kappa_options_init(&o);
	o.fsync = (kappa_fsync)42;
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_open(dir, &o, &db, &err), KAPPA_EINVAL);
	cr_assert_neq(err.msg[0], '\0');

	/* a regular file where the directory should be */
	char file[4200];
	snprintf(file, sizeof(file), "%s/plain-file", dir);
	FILE *f = fopen(file, "w");
	cr_assert_not_null(f);
	fputs("x", f);
	fclose(f);
	db = (kappa_db *)&db;
	memset(&err, 0, sizeof(err));
	int rc = kappa_open(file, NULL, &db, &err);
	cr_assert_lt(rc, 0, "opened a regular file as a database");
	cr_assert_null(db);
	cr_assert_neq(err.msg[0], '\0');

	/* a good open, then a second handle on the same directory */
	char sub[4200];
	snprintf(sub, sizeof(sub), "%s/db", dir);
	db = kt_open_ok(sub, NULL);
	append1(db, "s", KAPPA_ANY, NULL, "{}");
	kappa_db *other = (kappa_db *)&other;
	memset(&err, 0, sizeof(err));
	cr_assert_eq(kappa_open(sub, NULL, &other, &err), KAPPA_ELOCKED);
	cr_assert_null(other);
	cr_assert_neq(err.msg[0], '\0');
	cr_assert_eq(kappa_head(db), 1);
	kappa_close(db);
	/* released on close; the bad opens changed nothing */
	db = kt_open_ok(sub, NULL);
	cr_assert_eq(kappa_head(db), 1);
	kappa_close(db);
	kt_rmdir(dir);
}

/* ==== races ====================================================================================
 */

#define RACE_THREADS 16
#define RACE_STREAMS 4
#define RACE_ATTEMPTS 200

typedef struct {
	kappa_db *db;
	int id;
	int wins[RACE_STREAMS], losses[RACE_STREAMS];
	uint64_t won_version[RACE_ATTEMPTS]; /* UINT64_MAX: lost */
	int won_stream[RACE_ATTEMPTS];
	int errors, bad_results;
	char first[256];
} racer;

static void
racer_fail(racer *r, int *counter, const char *what, int rc, const char *msg)
{
	if ((*counter)++ == 0 && !r->first[0])
		snprintf(r->first, sizeof(r->first), "%s: %s: %.180s", what, kappa_strerror(rc),
			 msg);
}

static void *
racer_main(void *arg)
{
	racer *r = arg;
	uint64_t rng = 0x1234567ull * (uint64_t)(r->id + 1);
	for (int a = 0; a < RACE_ATTEMPTS; a++) {
		int s = (int)(kt_rng_next(&rng) % RACE_STREAMS);
		char stream[32], data[64];
		snprintf(stream, sizeof(stream), "race-%d", s);
		snprintf(data, sizeof(data), "{\"t\":%d,\"a\":%d}", r->id, a);
		r->won_version[a] = UINT64_MAX;
		r->won_stream[a] = s;
		kappa_stream_info in;
		kappa_err err;
		memset(&err, 0, sizeof(err));
		int rc = kappa_stream_info_get(r->db, stream, &in, &err);
		if (rc != KAPPA_OK) {
			racer_fail(r, &r->errors, "stream info", rc, err.msg);
			continue;
		}
		int64_t expected = in.exists ? (int64_t)in.last_version : KAPPA_NO_STREAM;
		kappa_event_in e = evi("Raced", data);
		kappa_append_result res;
		memset(&res, 0, sizeof(res));
		rc = kappa_append(r->db, stream, expected, NULL, &e, 1, NULL, 0, &res, &err);
		if (rc == KAPPA_OK) {
			r->wins[s]++;
			r->won_version[a] = res.version;
			if (res.version != (uint64_t)(expected + 1) &&
			    !(expected == KAPPA_NO_STREAM && res.version == 0))
				racer_fail(r, &r->bad_results, "won with a wrong version", rc, "");
		} else if (rc == KAPPA_EWRONG_VERSION) {
			r->losses[s]++;
			/* versions only grow: the actual one is past what we saw */
			if (res.actual_version == expected ||
			    res.actual_version < (in.exists ? (int64_t)in.last_version : 0))
				racer_fail(r, &r->bad_results, "lost with a bad actual_version", rc,
					   err.msg);
		} else {
			racer_fail(r, &r->errors, "append", rc, err.msg);
		}
	}
	return NULL;
}

Test(store, racing_exact_expected_versions_have_one_winner_per_version)
{
	char *dir = kt_tmpdir("race");
	kappa_db *db = kt_open_ok(dir, NULL);
	racer *r = calloc(RACE_THREADS, sizeof(*r));
	pthread_t th[RACE_THREADS];
	int64_t t0 = kt_mono_ms();
	for (int t = 0; t < RACE_THREADS; t++) {
		r[t].db = db;
		r[t].id = t;
		cr_assert_eq(pthread_create(&th[t], NULL, racer_main, &r[t]), 0);
	}
	for (int t = 0; t < RACE_THREADS; t++)
		pthread_join(th[t], NULL);
	int total_wins = 0, total_losses = 0;
	for (int t = 0; t < RACE_THREADS; t++) {
		cr_assert_eq(r[t].errors, 0, "thread %d: %d unexpected errors, the first %s", t,
			     r[t].errors, r[t].first);
		cr_assert_eq(r[t].bad_results, 0, "thread %d: %d bad results, the first %s", t,
			     r[t].bad_results, r[t].first);
		for (int s = 0; s < RACE_STREAMS; s++) {
			total_wins += r[t].wins[s];
			total_losses += r[t].losses[s];
		}
	}
	cr_assert_eq(total_wins + total_losses, RACE_THREADS * RACE_ATTEMPTS);
	cr_assert_gt(total_losses, 0, "no append ever lost a race: nothing was tested");
	cr_assert_eq(kappa_head(db), (uint64_t)total_wins);

	for (int s = 0; s < RACE_STREAMS; s++) {
		char stream[32];
		snprintf(stream, sizeof(stream), "race-%d", s);
		int wins = 0;
		for (int t = 0; t < RACE_THREADS; t++)
			wins += r[t].wins[s];
		kappa_stream_info in = info_of(db, stream);
		cr_assert(in.exists);
		cr_assert_eq(in.last_version + 1, (uint64_t)wins,
			     "%s: last_version %" PRIu64 " but %d winners", stream, in.last_version,
			     wins);
		cr_assert_eq(in.event_count, (uint64_t)wins);
		/* versions dense from 0, each event the winner that was told that version */
		xevs l = read_stream(db, stream, 0, UINT64_MAX, KAPPA_FORWARD);
		cr_assert_eq(l.n, (size_t)wins);
		uint64_t prev_pos = 0;
		for (size_t i = 0; i < l.n; i++) {
			cr_assert_eq(l.v[i].version, i, "%s: version %" PRIu64 " at index %zu",
				     stream, l.v[i].version, i);
			cr_assert(i == 0 || l.v[i].position > prev_pos);
			prev_pos = l.v[i].position;
			int t, a;
			cr_assert_eq(sscanf(l.v[i].data, "{\"t\":%d,\"a\":%d}", &t, &a), 2);
			cr_assert(t >= 0 && t < RACE_THREADS && a >= 0 && a < RACE_ATTEMPTS);
			cr_assert_eq(r[t].won_stream[a], s);
			cr_assert_eq(r[t].won_version[a], i,
				     "%s v%zu is thread %d attempt %d, which was told %" PRIu64,
				     stream, i, t, a, r[t].won_version[a]);
		}
		xevs_free(&l);
	}
	cr_log_info("race: %d wins, %d losses in %" PRId64 " ms", total_wins, total_losses,
		    kt_mono_ms() - t0);
	free(r);
	kappa_close(db);
	kt_rmdir(dir);
}

#define CLAIM_THREADS 16
#define CLAIM_NAMES 1000

typedef struct {
	kappa_db *db;
	int id;
	char stream[32];
	int order[CLAIM_NAMES];
	uint8_t won[CLAIM_NAMES];
	int16_t named[CLAIM_NAMES]; /* losers: the holder the error named; -1 unknown */
	int wins, losses, errors, bad_keys;
	char first[256];
} claimer;

static void
claimer_name(int id, char *out, size_t n)
{
	snprintf(out, n, "claimer-%02d", id);
}

static void *
claimer_main(void *arg)
{
	claimer *c = arg;
	for (int k = 0; k < CLAIM_NAMES; k++) {
		int u = c->order[k];
		char key[32], data[64];
		snprintf(key, sizeof(key), "username:u%d", u);
		snprintf(data, sizeof(data), "{\"user\":%d}", u);
		kappa_event_in e = evi("UsernameClaimed", data);
		kappa_claim cl = {key, 0};
		kappa_append_result r;
		kappa_err err;
		memset(&r, 0, sizeof(r));
		memset(&err, 0, sizeof(err));
		int rc = kappa_append(c->db, c->stream, KAPPA_ANY, NULL, &e, 1, &cl, 1, &r, &err);
		if (rc == KAPPA_OK) {
			c->won[u] = 1;
			c->wins++;
		} else if (rc == KAPPA_ECLAIM_TAKEN) {
			c->losses++;
			if (strcmp(r.claim_key, key) != 0)
				c->bad_keys++;
			c->named[u] = -1;
			for (int t = 0; t < CLAIM_THREADS; t++) {
				char name[32];
				claimer_name(t, name, sizeof(name));
				if (strcmp(name, r.claim_holder) == 0)
					c->named[u] = (int16_t)t;
			}
		} else {
			if (c->errors++ == 0)
				snprintf(c->first, sizeof(c->first), "%s: %s: %.180s", key,
					 kappa_strerror(rc), err.msg);
		}
	}
	return NULL;
}

/* Assert the claims of the CLAIM_THREADS streams are exactly owner[] (-1: free). */
static void
assert_claim_map(kappa_db *db, const int *owner)
{
	int *seen = malloc(CLAIM_NAMES * sizeof(int));
	for (int u = 0; u < CLAIM_NAMES; u++)
		seen[u] = -1;
	for (int t = 0; t < CLAIM_THREADS; t++) {
		char name[32];
		claimer_name(t, name, sizeof(name));
		keyset k = claims_of(db, name);
		for (size_t i = 0; i < k.n; i++) {
			int u; /* claims are listed by id: find the name it is the id of */
			for (u = 0; u < CLAIM_NAMES; u++) {
				char key[32], id[KAPPA_CLAIM_ID];
				snprintf(key, sizeof(key), "username:u%d", u);
				kappa_claim_id(db, key, id);
				if (!strcmp(id, k.v[i]))
					break;
			}
			cr_assert(u < CLAIM_NAMES, "%s holds an unknown claim %s", name, k.v[i]);
			cr_assert_eq(seen[u], -1, "%s is held by claimer %d and %s", k.v[i],
				     seen[u], name);
			seen[u] = t;
		}
		uint64_t held = info_of(db, name).claims_held;
		cr_assert_eq(held, k.n, "%s: claims_held %" PRIu64 ", lists %zu", name, held, k.n);
		keyset_free(&k);
	}
	for (int u = 0; u < CLAIM_NAMES; u++)
		cr_assert_eq(seen[u], owner[u], "username:u%d is held by %d, expected %d", u,
			     seen[u], owner[u]);
	free(seen);
}

/* Claim username:u'u' for claimer 't'; returns the append's code, checks the holder named. */
static int
claim_as(kappa_db *db, int t, int u, int release, int want_holder)
{
	char name[32], key[32];
	claimer_name(t, name, sizeof(name));
	snprintf(key, sizeof(key), "username:u%d", u);
	kappa_event_in e = evi(release ? "UsernameReleased" : "UsernameClaimed", "{}");
	kappa_claim cl = {key, release};
	kappa_append_result r;
	kappa_err err;
	memset(&r, 0, sizeof(r));
	memset(&err, 0, sizeof(err));
	int rc = kappa_append(db, name, KAPPA_ANY, NULL, &e, 1, &cl, 1, &r, &err);
	if (rc == KAPPA_ECLAIM_TAKEN && want_holder >= 0) {
		char holder[32];
		claimer_name(want_holder, holder, sizeof(holder));
		cr_assert_str_eq(r.claim_key, key);
		cr_assert_str_eq(r.claim_holder, holder);
	}
	return rc;
}

Test(store, racing_claims_leave_one_holder_per_key_through_reopen_and_rebuild)
{
	char *dir = kt_tmpdir("claimrace");
	kappa_db *db = kt_open_ok(dir, NULL);
	claimer *c = calloc(CLAIM_THREADS, sizeof(*c));
	pthread_t th[CLAIM_THREADS];
	int64_t t0 = kt_mono_ms();
	for (int t = 0; t < CLAIM_THREADS; t++) {
		c[t].db = db;
		c[t].id = t;
		claimer_name(t, c[t].stream, sizeof(c[t].stream));
		uint64_t rng = 77 + (uint64_t)t;
		for (int u = 0; u < CLAIM_NAMES; u++)
			c[t].order[u] = u;
		for (int u = CLAIM_NAMES - 1; u > 0; u--) {
			int j = (int)(kt_rng_next(&rng) % (uint64_t)(u + 1));
			int x = c[t].order[u];
			c[t].order[u] = c[t].order[j];
			c[t].order[j] = x;
		}
	}
	for (int t = 0; t < CLAIM_THREADS; t++)
		cr_assert_eq(pthread_create(&th[t], NULL, claimer_main, &c[t]), 0);
	for (int t = 0; t < CLAIM_THREADS; t++)
		pthread_join(th[t], NULL);
	int64_t race_ms = kt_mono_ms() - t0;

	int owner[CLAIM_NAMES];
	int wins = 0;
	for (int t = 0; t < CLAIM_THREADS; t++) {
		cr_assert_eq(c[t].errors, 0, "claimer %d: %d errors, the first %s", t, c[t].errors,
			     c[t].first);
		cr_assert_eq(c[t].bad_keys, 0, "claimer %d: %d losses named another key", t,
			     c[t].bad_keys);
		cr_assert_eq(c[t].wins + c[t].losses, CLAIM_NAMES);
		wins += c[t].wins;
	}
	for (int u = 0; u < CLAIM_NAMES; u++) {
		owner[u] = -1;
		int n = 0;
		for (int t = 0; t < CLAIM_THREADS; t++)
			if (c[t].won[u]) {
				owner[u] = t;
				n++;
			}
		cr_assert_eq(n, 1, "username:u%d was won by %d claimers", u, n);
	}
	cr_assert_eq(wins, CLAIM_NAMES);
	for (int t = 0; t < CLAIM_THREADS; t++)
		for (int u = 0; u < CLAIM_NAMES; u++)
			if (!c[t].won[u])
				cr_assert_eq(c[t].named[u], owner[u],
					     "claimer %d lost username:u%d to %d, but %d holds it",
					     t, u, c[t].named[u], owner[u]);
	assert_claim_map(db, owner);
	for (int t = 0; t < CLAIM_THREADS; t++)
		cr_assert_eq(info_of(db, c[t].stream).event_count, (uint64_t)c[t].wins);
	cr_assert_eq(kappa_head(db), CLAIM_NAMES, "losing claims wrote events");

	/* release 0..14 from their holders; 0..9 are re-claimed by the next claimer */
	for (int u = 0; u < 15; u++) {
		int o = owner[u], n = (o + 1) % CLAIM_THREADS;
		cr_assert_eq(claim_as(db, n, u, 0, o), KAPPA_ECLAIM_TAKEN);
		cr_assert_eq(claim_as(db, o, u, 1, -1), KAPPA_OK);
		owner[u] = -1;
		if (u < 10) {
			cr_assert_eq(claim_as(db, n, u, 0, -1), KAPPA_OK);
			owner[u] = n;
		}
	}
	assert_claim_map(db, owner);

	/* claims survive a reopen */
	kappa_close(db);
	db = kt_open_ok(dir, NULL);
	assert_claim_map(db, owner);
	cr_assert_eq(claim_as(db, (owner[100] + 1) % CLAIM_THREADS, 100, 0, owner[100]),
		     KAPPA_ECLAIM_TAKEN);
	cr_assert_eq(claim_as(db, owner[3], 3, 0, -1), KAPPA_OK); /* held already: fine */

	/* ... and a rebuild of the index from the log */
	kappa_close(db);
	rm_index(dir);
	db = kt_open_ok(dir, NULL);
	assert_claim_map(db, owner);
	for (int u = 0; u < CLAIM_NAMES; u += 97)
		if (owner[u] >= 0)
			cr_assert_eq(claim_as(db, (owner[u] + 5) % CLAIM_THREADS, u, 0, owner[u]),
				     KAPPA_ECLAIM_TAKEN, "username:u%d after the rebuild", u);
	for (int u = 10; u < 15; u++) {
		cr_assert_eq(claim_as(db, 0, u, 0, -1), KAPPA_OK, "free username:u%d", u);
		owner[u] = 0;
	}
	assert_claim_map(db, owner);
	kappa_close(db);
	db = kt_open_ok(dir, NULL);
	assert_claim_map(db, owner);
	/* every claimer's stream: versions dense from 0 */
	for (int t = 0; t < CLAIM_THREADS; t++) {
		kappa_stream_info in = info_of(db, c[t].stream);
		xevs l = read_stream(db, c[t].stream, 0, UINT64_MAX, KAPPA_FORWARD);
		cr_assert_eq(l.n, in.event_count);
		if (in.event_count == 0) {
			/* a claimer that won no name in the race never wrote its stream */
			cr_assert_eq(in.exists, 0, "%s exists without events", c[t].stream);
			cr_assert_eq(c[t].wins, 0);
			xevs_free(&l);
			continue;
		}
		cr_assert_eq(in.last_version + 1, in.event_count,
			     "%s: last_version %" PRIu64 " with %" PRIu64 " events", c[t].stream,
			     in.last_version, in.event_count);
		for (size_t i = 0; i < l.n; i++)
			cr_assert_eq(l.v[i].version, i, "%s: version %" PRIu64 " at index %zu",
				     c[t].stream, l.v[i].version, i);
		xevs_free(&l);
	}
	cr_log_info("claim race: %d claims from %d threads in %" PRId64 " ms",
		    CLAIM_THREADS * CLAIM_NAMES, CLAIM_THREADS, race_ms);
	free(c);
	kappa_close(db);
	kt_rmdir(dir);
}

/* ==== the index rebuilt from the log ============================================================
 */

#define RB_STREAMS 6
#define RB_REQS 300

typedef struct {
	char stream[32], rid[32];
	int64_t expected;
	size_t n, m;
	kappa_event_in ev[3];
	char data[3][80], meta[64], subject[32];
	kappa_claim cl[2];
	char keys[2][32];
	kappa_append_result res;
} rbreq;

typedef struct {
	xevs log;
	xevs streams[RB_STREAMS];
	kappa_stream_info info[RB_STREAMS];
	keyset claims[RB_STREAMS];
} snapshot;

static void
rb_stream(int s, char *out, size_t n)
{
	snprintf(out, n, "rb-%d", s);
}

static void
snapshot_take(kappa_db *db, snapshot *sn)
{
	sn->log = read_log(db, 0, UINT64_MAX);
	cr_assert_eq(sn->log.n, kappa_head(db));
	for (int s = 0; s < RB_STREAMS; s++) {
		char name[32];
		rb_stream(s, name, sizeof(name));
		sn->streams[s] = read_stream(db, name, 0, UINT64_MAX, KAPPA_FORWARD);
		sn->info[s] = info_of(db, name);
		sn->claims[s] = claims_of(db, name);
		/* backward reads are the forward ones reversed */
		xevs b = read_stream(db, name, UINT64_MAX, UINT64_MAX, KAPPA_BACKWARD);
		cr_assert_eq(b.n, sn->streams[s].n);
		for (size_t i = 0; i < b.n; i++)
			xev_assert_eq(&b.v[i], &sn->streams[s].v[b.n - 1 - i], name, i);
		xevs_free(&b);
	}
}

static void
snapshot_free(snapshot *sn)
{
	xevs_free(&sn->log);
	for (int s = 0; s < RB_STREAMS; s++) {
		xevs_free(&sn->streams[s]);
		keyset_free(&sn->claims[s]);
	}
}

static void
snapshot_assert_eq(const snapshot *a, const snapshot *b)
{
	xevs_assert_eq(&a->log, &b->log, "the log");
	for (int s = 0; s < RB_STREAMS; s++) {
		char name[32];
		rb_stream(s, name, sizeof(name));
		xevs_assert_eq(&a->streams[s], &b->streams[s], name);
		const kappa_stream_info *x = &a->info[s], *y = &b->info[s];
		cr_assert_eq(x->exists, y->exists, "%s: exists", name);
		cr_assert_eq(x->last_version, y->last_version, "%s: last_version", name);
		cr_assert_eq(x->last_position, y->last_position, "%s: last_position", name);
		cr_assert_eq(x->event_count, y->event_count, "%s: event_count", name);
		cr_assert_eq(x->claims_held, y->claims_held, "%s: claims_held", name);
		keyset_assert_eq(&a->claims[s], &b->claims[s], name);
	}
}

/* Per stream, versions dense from 0 and consistent with the log. */
static void
snapshot_check(const snapshot *sn)
{
	for (int s = 0; s < RB_STREAMS; s++) {
		const xevs *l = &sn->streams[s];
		cr_assert_eq(sn->info[s].event_count, l->n);
		for (size_t i = 0; i < l->n; i++) {
			cr_assert_eq(l->v[i].version, i);
			cr_assert_lt(l->v[i].position, sn->log.n);
			xev_assert_eq(&l->v[i], &sn->log.v[l->v[i].position], "stream vs log", i);
		}
		if (l->n) {
			cr_assert_eq(sn->info[s].last_version, l->n - 1);
			cr_assert_eq(sn->info[s].last_position, l->v[l->n - 1].position);
		}
		cr_assert_eq(sn->info[s].claims_held, sn->claims[s].n);
	}
}

Test(store, a_deleted_index_is_rebuilt_from_the_log)
{
	char *dir = kt_tmpdir("rebuild");
	kappa_db *db = kt_open_ok(dir, NULL);
	rbreq *q = calloc(RB_REQS, sizeof(*q));
	int64_t last[RB_STREAMS];
	int key_owner[RB_REQS]; /* key "c:i": -1 never/released, else the stream */
	for (int s = 0; s < RB_STREAMS; s++)
		last[s] = -1;
	for (int i = 0; i < RB_REQS; i++)
		key_owner[i] = -1;
	uint64_t rng = 2024;
	kappa_event_in one = evi("Noted", "{}");

	/* a contested key, held by rb-0 */
	kappa_claim shared = {"shared:key", 0};
	append_ok(db, "rb-0", KAPPA_NO_STREAM, NULL, &one, 1, &shared, 1);
	last[0] = 0;

	for (int i = 0; i < RB_REQS; i++) {
		rbreq *r = &q[i];
		int s = (int)(kt_rng_next(&rng) % RB_STREAMS);
		rb_stream(s, r->stream, sizeof(r->stream));
		snprintf(r->rid, sizeof(r->rid), "rid-%d", i);
		int mode = (int)(kt_rng_next(&rng) % 3);
		if (mode == 0)
			r->expected = KAPPA_ANY;
		else if (last[s] < 0)
			r->expected = KAPPA_NO_STREAM;
		else
			r->expected = mode == 1 ? last[s] : KAPPA_EXISTS;
		r->n = 1 + (size_t)(kt_rng_next(&rng) % 3);
		for (size_t k = 0; k < r->n; k++) {
			snprintf(r->data[k], sizeof(r->data[k]), "{\"req\":%d,\"k\":%zu}", i, k);
			r->ev[k] = evi(i % 4 == 0 ? "Opened" : "Changed", r->data[k]);
			if ((i + (int)k) % 3 == 0) {
				snprintf(r->subject, sizeof(r->subject), "user-%d", i % 17);
				r->ev[k].subject = r->subject;
			}
			if ((i + (int)k) % 4 == 1) {
				snprintf(r->meta, sizeof(r->meta), "{\"corr\":\"c-%d\"}", i);
				r->ev[k].metadata = r->meta;
			}
		}
		if (i % 4 == 0) {
			snprintf(r->keys[r->m], sizeof(r->keys[0]), "c:%d", i);
			r->cl[r->m] = (kappa_claim){r->keys[r->m], 0};
			r->m++;
		}
		if (i % 5 == 0) {
			for (int j = 0; j < i; j++) {
				if (key_owner[j] == s) {
					snprintf(r->keys[r->m], sizeof(r->keys[0]), "c:%d", j);
					r->cl[r->m] = (kappa_claim){r->keys[r->m], 1};
					r->m++;
					break;
				}
			}
		}
		r->res = append_ok(db, r->stream, r->expected, r->rid, r->ev, r->n, r->cl, r->m);
		cr_assert_eq(r->res.version, (uint64_t)(last[s] + (int64_t)r->n),
			     "%s on %s (expected %" PRId64
			     ", %zu events, %zu claims): version %" PRIu64 ", expected %" PRId64
			     "; at %" PRIu64 "..%" PRIu64,
			     r->rid, r->stream, r->expected, r->n, r->m, r->res.version,
			     last[s] + (int64_t)r->n, r->res.first_position, r->res.last_position);
		last[s] += (int64_t)r->n;
		for (size_t k = 0; k < r->m; k++) {
			int j;
			cr_assert_eq(sscanf(r->keys[k], "c:%d", &j), 1);
			key_owner[j] = r->cl[k].release ? -1 : s;
		}
		/* failures in between change nothing */
		if (i % 10 == 9 && last[s] > 0) {
			kappa_append_result f = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, r->stream,
							     last[s] - 1, NULL, &one, 1, NULL, 0);
			cr_assert_eq(f.actual_version, last[s]);
			f = APPEND_FAILS(db, KAPPA_ECLAIM_TAKEN, "rb-1", KAPPA_ANY, NULL, &one, 1,
					 &shared, 1);
			cr_assert_str_eq(f.claim_holder, "rb-0");
		}
	}
	snapshot before;
	snapshot_take(db, &before);
	snapshot_check(&before);
	kappa_close(db);

	rm_index(dir);
	db = kt_open_ok(dir, NULL);
	snapshot after;
	snapshot_take(db, &after);
	snapshot_assert_eq(&before, &after);
	snapshot_free(&after);
	uint64_t head = kappa_head(db);

	/* every request id is remembered: retries are deduplicated with their results */
	for (int i = 0; i < RB_REQS; i++) {
		rbreq *r = &q[i];
		kappa_append_result d =
			append_ok(db, r->stream, r->expected, r->rid, r->ev, r->n, r->cl, r->m);
		cr_assert_eq(d.deduplicated, 1, "%s was not deduplicated after the rebuild",
			     r->rid);
		assert_same_result(&d, &r->res, __LINE__);
	}
	cr_assert_eq(kappa_head(db), head);
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, "rb-5", KAPPA_ANY, "rid-0", &one, 1, NULL, 0);
	cr_assert_gt(q[8].m, 0);
	APPEND_FAILS(db, KAPPA_EREQUEST_REUSED, q[8].stream, q[8].expected, "rid-8", q[8].ev,
		     q[8].n, NULL, 0);

	/* versions: stale, NO_STREAM, exact, missing */
	for (int s = 0; s < RB_STREAMS; s++) {
		char name[32];
		rb_stream(s, name, sizeof(name));
		cr_assert_geq(last[s], 0, "%s never got an event", name);
		kappa_append_result f;
		f = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, name, KAPPA_NO_STREAM, NULL, &one, 1,
				 NULL, 0);
		cr_assert_eq(f.actual_version, last[s]);
		if (last[s] > 0) {
			f = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, name, last[s] - 1, NULL, &one, 1,
					 NULL, 0);
			cr_assert_eq(f.actual_version, last[s]);
		}
		f = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, name, last[s] + 1, NULL, &one, 1, NULL,
				 0);
		cr_assert_eq(f.actual_version, last[s]);
		kappa_append_result ok = append_ok(db, name, last[s], NULL, &one, 1, NULL, 0);
		cr_assert_eq(ok.version, (uint64_t)(last[s] + 1));
		cr_assert_eq(ok.first_position, head++);
		last[s]++;
	}
	kappa_append_result f = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "rb-missing", KAPPA_EXISTS,
					     NULL, &one, 1, NULL, 0);
	cr_assert_eq(f.actual_version, -1);

	/* claims: held ones conflict, released ones are free */
	f = APPEND_FAILS(db, KAPPA_ECLAIM_TAKEN, "rb-2", KAPPA_ANY, NULL, &one, 1, &shared, 1);
	cr_assert_str_eq(f.claim_holder, "rb-0");
	int held = 0, freed = 0;
	for (int j = 0; j < RB_REQS; j += 4) {
		char key[32], holder[32];
		snprintf(key, sizeof(key), "c:%d", j);
		kappa_claim cl = {key, 0};
		if (key_owner[j] >= 0) {
			rb_stream(key_owner[j], holder, sizeof(holder));
			char other[32];
			rb_stream((key_owner[j] + 1) % RB_STREAMS, other, sizeof(other));
			f = APPEND_FAILS(db, KAPPA_ECLAIM_TAKEN, other, KAPPA_ANY, NULL, &one, 1,
					 &cl, 1);
			cr_assert_str_eq(f.claim_key, key);
			cr_assert_str_eq(f.claim_holder, holder);
			held++;
		} else {
			int s = (int)((unsigned)j / 4 % RB_STREAMS);
			char name[32];
			rb_stream(s, name, sizeof(name));
			append_ok(db, name, KAPPA_ANY, NULL, &one, 1, &cl, 1);
			key_owner[j] = s;
			last[s]++;
			head++;
			freed++;
		}
	}
	cr_assert_gt(held, 0);
	cr_assert_gt(freed, 0, "no claim was ever released: the test built nothing to check");
	cr_assert_eq(kappa_head(db), head);

	/* the rebuilt index is kept: a plain reopen sees the same; a second rebuild too */
	snapshot_free(&before);
	snapshot_take(db, &before);
	snapshot_check(&before);
	kappa_close(db);
	db = kt_open_ok(dir, NULL);
	snapshot_take(db, &after);
	snapshot_assert_eq(&before, &after);
	snapshot_free(&after);
	kappa_close(db);
	rm_index(dir);
	db = kt_open_ok(dir, NULL);
	snapshot_take(db, &after);
	snapshot_assert_eq(&before, &after);
	snapshot_free(&after);
	kappa_append_result d = append_ok(db, q[150].stream, q[150].expected, q[150].rid, q[150].ev,
					  q[150].n, q[150].cl, q[150].m);
	cr_assert_eq(d.deduplicated, 1);
	assert_same_result(&d, &q[150].res, __LINE__);
	snapshot_free(&before);
	free(q);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(store, a_stale_index_catches_up_from_the_log)
{
	char *dir = kt_tmpdir("stale");
	kappa_db *db = kt_open_ok(dir, NULL);
	kappa_event_in e = evi("Noted", "{\"a\":1}");
	kappa_claim c1 = {"stale:1", 0};
	kappa_append_result r0 = append_ok(db, "s", KAPPA_NO_STREAM, "id-0", &e, 1, &c1, 1);
	append_ok(db, "t", KAPPA_ANY, "id-1", &e, 1, NULL, 0);
	kappa_close(db);
	char cmd[8600];
	snprintf(cmd, sizeof(cmd), "cp -a '%s/index' '%s/index.old'", dir, dir);
	cr_assert_eq(system(cmd), 0, "%s/index cannot be copied", dir);

	/* more appends: ids, claims, releases, versions */
	db = kt_open_ok(dir, NULL);
	kappa_claim c2[2] = {{"stale:1", 1}, {"stale:2", 0}};
	kappa_append_result r2 = append_ok(db, "s", 0, "id-2", &e, 1, c2, 2);
	kappa_claim c3 = {"stale:1", 0};
	kappa_append_result r3 = append_ok(db, "t", 0, "id-3", &e, 1, &c3, 1);
	kappa_event_in e3[3] = {e, e, e};
	kappa_append_result r4 = append_ok(db, "u", KAPPA_NO_STREAM, "id-4", e3, 3, NULL, 0);
	xevs log_before = read_log(db, 0, UINT64_MAX);
	kappa_close(db);

	/* put the old index back: it knows only the first two appends */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/index' && mv '%s/index.old' '%s/index'", dir, dir,
		 dir);
	cr_assert_eq(system(cmd), 0);
	db = kt_open_ok(dir, NULL);
	xevs log_after = read_log(db, 0, UINT64_MAX);
	xevs_assert_eq(&log_before, &log_after, "the log after the stale index");
	xevs_free(&log_before);
	xevs_free(&log_after);
	static const uint64_t s_pos[2] = {0, 2}, t_pos[2] = {1, 3}, u_pos[3] = {4, 5, 6};
	assert_dense(db, "s", s_pos, 2);
	assert_dense(db, "t", t_pos, 2);
	assert_dense(db, "u", u_pos, 3);
	const char *const s_keys[1] = {"stale:2"}, *const t_keys[1] = {"stale:1"};
	assert_claims(db, "s", s_keys, 1);
	assert_claims(db, "t", t_keys, 1);
	kappa_append_result d = append_ok(db, "s", KAPPA_NO_STREAM, "id-0", &e, 1, &c1, 1);
	cr_assert_eq(d.deduplicated, 1);
	assert_same_result(&d, &r0, __LINE__);
	d = append_ok(db, "s", 0, "id-2", &e, 1, c2, 2);
	cr_assert_eq(d.deduplicated, 1, "an id the stale index did not know was not remembered");
	assert_same_result(&d, &r2, __LINE__);
	d = append_ok(db, "t", 0, "id-3", &e, 1, &c3, 1);
	cr_assert_eq(d.deduplicated, 1);
	assert_same_result(&d, &r3, __LINE__);
	d = append_ok(db, "u", KAPPA_NO_STREAM, "id-4", e3, 3, NULL, 0);
	cr_assert_eq(d.deduplicated, 1);
	assert_same_result(&d, &r4, __LINE__);
	kappa_append_result f =
		APPEND_FAILS(db, KAPPA_ECLAIM_TAKEN, "s", KAPPA_ANY, NULL, &e, 1, &c3, 1);
	cr_assert_str_eq(f.claim_holder, "t");
	f = APPEND_FAILS(db, KAPPA_EWRONG_VERSION, "u", 1, NULL, &e, 1, NULL, 0);
	cr_assert_eq(f.actual_version, 2);
	cr_assert_eq(kappa_head(db), 7);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(store, the_latest_request_ids_are_remembered_and_old_ones_expire)
{
	char *dir = kt_tmpdir("window");
	kappa_options o;
	kappa_options_init(&o);
	o.dedup_window_ms = 1;
	o.dedup_min_ids = 100;
	kappa_db *db = kt_open_ok(dir, &o);
	enum { N = 3000 };
	kappa_append_result *res = calloc(N, sizeof(*res));
	char rid[32], data[48];
	for (int i = 0; i < N; i++) {
		snprintf(rid, sizeof(rid), "w-%d", i);
		snprintf(data, sizeof(data), "{\"i\":%d}", i);
		res[i] = append1(db, "w", KAPPA_ANY, rid, data);
		if (i == 0)
			usleep(20000); /* w-0 is well past the window when ids expire */
	}
	/* the last dedup_min_ids are remembered whatever their age, also after a restart */
	usleep(5000);
	for (int pass = 0; pass < 2; pass++) {
		uint64_t head = kappa_head(db);
		for (int i = N - 100; i < N; i++) {
			snprintf(rid, sizeof(rid), "w-%d", i);
			snprintf(data, sizeof(data), "{\"i\":%d}", i);
			kappa_append_result d = append1(db, "w", KAPPA_ANY, rid, data);
			cr_assert_eq(d.deduplicated, 1, "w-%d was forgotten (pass %d)", i, pass);
			assert_same_result(&d, &res[i], __LINE__);
		}
		cr_assert_eq(kappa_head(db), head);
		kappa_close(db);
		db = kt_open_ok(dir, &o);
	}
	/* the oldest, long past the window and not among the latest, is forgotten: a retry
	 * appends again */
	kappa_append_result d = append1(db, "w", KAPPA_ANY, "w-0", "{\"i\":0}");
	cr_assert_eq(d.deduplicated, 0, "w-0 is still remembered %d ids and > 20 ms later", N);
	cr_assert_eq(d.first_position, N);
	free(res);
	kappa_close(db);
	kt_rmdir(dir);
}

/* ==== stream reads over batches of every size ===================================================
 * The version index keeps one range per batch: reads forward and backward, from any version,
 * in pages of any size, must see each version once, in order, at its position, across range
 * and page (256 positions) boundaries. */

Test(store, stream_reads_cross_batch_ranges_in_both_directions)
{
	char *dir = kt_tmpdir("store-ranges");
	kappa_db *db = kt_open_ok(dir, NULL);
	enum { MAXV = 3000 };
	uint64_t *pos = calloc(MAXV, sizeof(uint64_t)); /* the model: version -> position */
	uint64_t seed = 99, n = 0;
	static kappa_event_in ev[700];
	char(*data)[24] = calloc(700, 24);
	while (n < MAXV - 700) {
		size_t k = 1 + (size_t)(kt_rng_next(&seed) % (kt_rng_next(&seed) % 3 ? 8 : 600));
		for (size_t i = 0; i < k; i++) {
			snprintf(data[i], 24, "{\"v\":%" PRIu64 "}", n + i);
			ev[i] = (kappa_event_in){.type = "T", .data = data[i]};
		}
		kappa_append_result r;
		kappa_err err;
		cr_assert_eq(kappa_append(db, "ranged", KAPPA_ANY, NULL, ev, k, NULL, 0, &r, &err),
			     KAPPA_OK, "%s", err.msg);
		for (size_t i = 0; i < k; i++)
			pos[n + i] = r.first_position + i;
		n += k;
		kappa_event_in other = {.type = "T", .data = "{}"}; /* positions not contiguous */
		cr_assert_eq(
			kappa_append(db, "other", KAPPA_ANY, NULL, &other, 1, NULL, 0, NULL, &err),
			KAPPA_OK);
	}
	for (int pass = 0; pass < 2; pass++) { /* before and after an index rebuild */
		for (uint64_t from = 0; from < n + 3; from += 1 + kt_rng_next(&seed) % 97) {
			uint64_t max =
				kt_rng_next(&seed) % 3 ? UINT64_MAX : 1 + kt_rng_next(&seed) % 700;
			xevs f = read_stream(db, "ranged", from, max, KAPPA_FORWARD);
			uint64_t want = from >= n ? 0 : (n - from < max ? n - from : max);
			cr_assert_eq(f.n, want, "forward from %" PRIu64 " max %" PRIu64, from, max);
			for (size_t i = 0; i < f.n; i++) {
				cr_assert_eq(f.v[i].version, from + i);
				cr_assert_eq(f.v[i].position, pos[from + i]);
			}
			xevs_free(&f);
			xevs b = read_stream(db, "ranged", from, max, KAPPA_BACKWARD);
			uint64_t top = from >= n ? n - 1 : from;
			want = top + 1 < max ? top + 1 : max;
			cr_assert_eq(b.n, want, "backward from %" PRIu64 " max %" PRIu64, from,
				     max);
			for (size_t i = 0; i < b.n; i++) {
				cr_assert_eq(b.v[i].version, top - i);
				cr_assert_eq(b.v[i].position, pos[top - i]);
			}
			xevs_free(&b);
		}
		kappa_close(db);
		rm_index(dir);
		db = kt_open_ok(dir, NULL);
	}
	free(pos);
	free(data);
	kappa_close(db);
	kt_rmdir(dir);
}
