/*
 * test_async.c -- kappa_append_async: many appends in flight from one thread, each answered
 * exactly once with what kappa_append would say; bad arguments refused at once without a
 * callback; conflicts reported through the callback; arguments free to go at return.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kappa.h"
#include "testlib.h"

TestSuite(async, .timeout = 60);

typedef struct tally {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int answered, ok, wrong_version, other;
	int *calls; /* per request: how many times answered */
	uint64_t *pos;
	int64_t *actual;
} tally;

typedef struct req {
	tally *t;
	int i;
} req;

static void
done(void *ctx, int rc, const kappa_append_result *res, const kappa_err *err)
{
	req *r = ctx;
	tally *t = r->t;
	pthread_mutex_lock(&t->lock);
	t->calls[r->i]++;
	t->answered++;
	if (rc == KAPPA_OK) {
		t->ok++;
		t->pos[r->i] = res->first_position;
	} else if (rc == KAPPA_EWRONG_VERSION) {
		t->wrong_version++;
		t->actual[r->i] = res->actual_version;
		cr_expect(err && err->msg[0], "a conflict comes with a message");
	} else {
		t->other++;
	}
	pthread_cond_broadcast(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void
wait_answers(tally *t, int n)
{
	pthread_mutex_lock(&t->lock);
	while (t->answered < n)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
}

Test(async, thousands_in_flight_from_one_thread_are_each_answered_once)
{
	char *dir = kt_tmpdir("async");
	kappa_db *db;
	kappa_err err;
	cr_assert_eq(kappa_open(dir, NULL, &db, &err), KAPPA_OK, "%s", err.msg);
	enum { N = 2000 };
	tally t = {PTHREAD_MUTEX_INITIALIZER,
		   PTHREAD_COND_INITIALIZER,
		   0,
		   0,
		   0,
		   0,
		   calloc(N, sizeof(int)),
		   calloc(N, sizeof(uint64_t)),
		   calloc(N, sizeof(int64_t))};
	req *rs = calloc(N, sizeof(req));
	for (int i = 0; i < N; i++) {
		/* arguments on the stack and freed right after the call */
		char *stream = malloc(32), *data = malloc(64), *rid = malloc(32);
		snprintf(stream, 32, "s-%d", i % 10);
		snprintf(data, 64, "{\"i\":%d}", i);
		snprintf(rid, 32, "r-%d", i);
		kappa_event_in ev = {.type = "T", .data = data};
		rs[i] = (req){&t, i};
		int rc = kappa_append_async(db, stream, KAPPA_ANY, rid, &ev, 1, NULL, 0, done,
					    &rs[i], &err);
		cr_assert_eq(rc, KAPPA_OK, "%s", err.msg);
		memset(data, 'x', 8); /* the call must have copied everything */
		free(stream);
		free(data);
		free(rid);
	}
	wait_answers(&t, N);
	cr_assert_eq(t.ok, N, "%d ok, %d conflicts, %d other", t.ok, t.wrong_version, t.other);
	uint8_t *seen = calloc(N, 1);
	for (int i = 0; i < N; i++) {
		cr_assert_eq(t.calls[i], 1, "request %d answered %d times", i, t.calls[i]);
		cr_assert_lt(t.pos[i], (uint64_t)N);
		cr_assert_eq(seen[t.pos[i]], 0, "position %llu given twice",
			     (unsigned long long)t.pos[i]);
		seen[t.pos[i]] = 1;
	}
	/* every event intact where its answer said */
	kappa_iter *it;
	kappa_event e;
	cr_assert_eq(kappa_read_log(db, 0, N, &it, &err), KAPPA_OK);
	int n = 0;
	while (kappa_iter_next(it, &e, &err) == 1) {
		int i = -1;
		sscanf(e.data, "{\"i\":%d}", &i);
		cr_assert(i >= 0 && i < N, "bad data %.*s", (int)e.data_len, e.data);
		cr_assert_eq(t.pos[i], e.position, "request %d is at %llu, answered %llu", i,
			     (unsigned long long)e.position, (unsigned long long)t.pos[i]);
		n++;
	}
	kappa_iter_free(it);
	cr_assert_eq(n, N);
	kappa_close(db);
	free(seen);
	free(rs);
	free(t.calls);
	free(t.pos);
	free(t.actual);
	kt_rmdir(dir);
}

Test(async, conflicts_come_through_the_callback_and_bad_arguments_come_back_at_once)
{
	char *dir = kt_tmpdir("async2");
	kappa_db *db;
	kappa_err err;
	cr_assert_eq(kappa_open(dir, NULL, &db, &err), KAPPA_OK, "%s", err.msg);
	enum { N = 50 };
	tally t = {PTHREAD_MUTEX_INITIALIZER,
		   PTHREAD_COND_INITIALIZER,
		   0,
		   0,
		   0,
		   0,
		   calloc(N, sizeof(int)),
		   calloc(N, sizeof(uint64_t)),
		   calloc(N, sizeof(int64_t))};
	req rs[N];
	kappa_event_in ev = {.type = "T", .data = "{}"};
	/* N racing no_stream appends to one stream: exactly one wins */
	for (int i = 0; i < N; i++) {
		rs[i] = (req){&t, i};
		cr_assert_eq(kappa_append_async(db, "only", KAPPA_NO_STREAM, NULL, &ev, 1, NULL, 0,
						done, &rs[i], &err),
			     KAPPA_OK);
	}
	wait_answers(&t, N);
	cr_assert_eq(t.ok, 1);
	cr_assert_eq(t.wrong_version, N - 1);
	for (int i = 0; i < N; i++) /* losers see the winner's version 0 (the winner keeps 0) */
		cr_assert_eq(t.actual[i], 0, "request %d saw actual version %lld", i,
			     (long long)t.actual[i]);
	/* bad arguments: an error now, and no callback ever */
	int before = t.answered;
	kappa_event_in bad = {.type = "T", .data = "[1]"};
	req extra = {&t, 0};
	cr_assert_eq(
		kappa_append_async(db, "s", KAPPA_ANY, NULL, &bad, 1, NULL, 0, done, &extra, &err),
		KAPPA_EINVAL);
	cr_assert_eq(
		kappa_append_async(db, "", KAPPA_ANY, NULL, &ev, 1, NULL, 0, done, &extra, &err),
		KAPPA_EINVAL);
	cr_assert_eq(
		kappa_append_async(db, "s", KAPPA_ANY, NULL, &ev, 1, NULL, 0, NULL, NULL, &err),
		KAPPA_EINVAL);
	kappa_close(db);
	cr_assert_eq(t.answered, before, "a refused append was answered through the callback");
	free(t.calls);
	free(t.pos);
	free(t.actual);
	kt_rmdir(dir);
}
