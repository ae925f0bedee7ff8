/*
 * test_log.c -- the log engine end to end in one process: append and read back, dense
 * positions across rolls and reopens, the sparse index, concurrent appenders and readers,
 * locking, fsync policies, retention, waiting, and bad input.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "log/log.h"
#include "testlib.h"

static kp_log_options
small_opts(void)
{
	kp_log_options o;
	kp_log_options_init(&o);
	o.segment_bytes = 16 << 10;
	o.index_interval_bytes = 512;
	o.prealloc_bytes = 8 << 10;
	return o;
}

static kp_log *
open_ok(const char *dir, const kp_log_options *o)
{
	kp_log *log;
	kappa_err err;
	int rc = kp_log_open(dir, o, &log, &err);
	cr_assert_eq(rc, KAPPA_OK, "open: %s", err.msg);
	return log;
}

static uint64_t
append_ok(kp_log *log, const kp_log_options *o, const char *stream, int n, size_t len,
	  uint64_t seed)
{
	kp_batch b;
	kt_batch(&b, o, stream, n, len, seed);
	uint64_t pos;
	kappa_err err;
	int rc = kp_log_append(log, &b, &pos, &err);
	cr_assert_eq(rc, KAPPA_OK, "append: %s", err.msg);
	kp_batch_release(&b);
	return pos;
}

/* Check events [from, ...) are the batches of seeds seed0.. with n events each. */
static void
check_batches(kp_log *log, uint64_t nbatches, int n, size_t len)
{
	kt_event *ev;
	size_t cnt = kt_read_all(log, 0, &ev);
	cr_assert_eq(cnt, nbatches * (uint64_t)n);
	for (size_t i = 0; i < cnt; i++) {
		cr_assert_eq(ev[i].position, i);
		uint8_t *want = kt_data(i / (size_t)n, (int)(i % (size_t)n), len);
		cr_assert_eq(ev[i].data_len, len);
		cr_assert_eq(memcmp(ev[i].data, want, len), 0, "event %zu differs", i);
		free(want);
	}
	kt_free_events(ev, cnt);
}

Test(log, append_read_reopen)
{
	char *dir = kt_tmpdir("log");
	kp_log_options o = small_opts();
	kp_log *log = open_ok(dir, &o);
	cr_assert_eq(kp_log_head(log), 0);
	for (uint64_t i = 0; i < 50; i++)
		cr_assert_eq(append_ok(log, &o, "s", 3, 100, i), i * 3);
	cr_assert_eq(kp_log_head(log), 150);
	check_batches(log, 50, 3, 100);
	kp_log_stats st;
	kp_log_get_stats(log, &st);
	cr_assert_eq(st.appends, 50);
	cr_assert_eq(st.events, 150);
	cr_assert_gt(st.rolls, 0, "16 KiB segments should have rolled");
	kp_log_close(log);

	log = open_ok(dir, &o);
	cr_assert_eq(kp_log_head(log), 150);
	check_batches(log, 50, 3, 100);
	for (uint64_t i = 50; i < 60; i++)
		cr_assert_eq(append_ok(log, &o, "s", 3, 100, i), i * 3);
	check_batches(log, 60, 3, 100);
	kp_log_close(log);
	kt_rmdir(dir);
}

Test(log, read_from_every_position_uses_the_index)
{
	char *dir = kt_tmpdir("idx");
	kp_log_options o = small_opts();
	kp_log *log = open_ok(dir, &o);
	for (uint64_t i = 0; i < 40; i++)
		append_ok(log, &o, "s", 4, 120, i);
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t from = 0; from < 160; from += 7) {
			kt_event *ev;
			size_t cnt = kt_read_all(log, from, &ev);
			cr_assert_eq(cnt, 160 - from);
			cr_assert_eq(ev[0].position, from);
			uint8_t *want = kt_data(from / 4, (int)(from % 4), 120);
			cr_assert_eq(memcmp(ev[0].data, want, 120), 0);
			free(want);
			kt_free_events(ev, cnt);
		}
		kp_log_close(log);
		log = open_ok(dir, &o); /* second pass: sealed segments load their index files */
	}
	kp_log_close(log);
	kt_rmdir(dir);
}

static int rebuilt_notices;

static void
count_rebuilds(void *ctx, const char *line)
{
	(void)ctx;
	if (strstr(line, "event=index_rebuilt"))
		rebuilt_notices++;
}

Test(log, missing_or_garbage_index_files_are_rebuilt)
{
	char *dir = kt_tmpdir("idxgone");
	kp_log_options o = small_opts();
	kp_log *log = open_ok(dir, &o);
	for (uint64_t i = 0; i < 200; i++)
		append_ok(log, &o, "s", 4, 120, i);
	kp_log_close(log);
	/* Sealed segments' indexes: remove two, append garbage to one, truncate one into its
	 * header. */
	char cmd[4300];
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s'; set -- $(ls *.idx); test $# -ge 6; rm -f $1 $2; "
		 "head -c 100 /dev/urandom >> $3; truncate -s 10 $4",
		 dir);
	cr_assert_eq(system(cmd), 0);
	o.notice = count_rebuilds;
	rebuilt_notices = 0;
	log = open_ok(dir, &o);
	check_batches(log, 200, 4, 120);
	cr_assert_geq(rebuilt_notices, 3, "only %d indexes rebuilt", rebuilt_notices);
	kp_log_close(log);
	/* rebuilt files are used as they are next time */
	rebuilt_notices = 0;
	log = open_ok(dir, &o);
	check_batches(log, 200, 4, 120);
	cr_assert_eq(rebuilt_notices, 0);
	kp_log_close(log);
	kt_rmdir(dir);
}

Test(log, empty_batches_and_bad_options_are_rejected)
{
	char *dir = kt_tmpdir("bad");
	kp_log_options o = small_opts();
	kappa_err err;
	kp_log *log;
	kp_log_options bad = o;
	bad.segment_bytes = 100;
	cr_assert_eq(kp_log_open(dir, &bad, &log, &err), KAPPA_EINVAL);
	cr_assert_null(log);
	bad = o;
	bad.fsync_mode = 7;
	cr_assert_eq(kp_log_open(dir, &bad, &log, &err), KAPPA_EINVAL);
	bad = o;
	bad.limits.max_batch_bytes = 1ull << 40;
	cr_assert_eq(kp_log_open(dir, &bad, &log, &err), KAPPA_EINVAL);
	cr_assert_eq(kp_log_open("", &o, &log, &err), KAPPA_EINVAL);

	log = open_ok(dir, &o);
	kp_batch b;
	kp_batch_init(&b, &o.limits, NULL, 0, NULL);
	uint64_t pos = 99;
	cr_assert_eq(kp_log_append(log, &b, &pos, &err), KAPPA_EINVAL);
	cr_assert(strstr(err.msg, "at least one event"));
	cr_assert_eq(pos, 99);
	kp_batch_release(&b);
	cr_assert_eq(kp_log_head(log), 0);
	kp_log_close(log);
	kt_rmdir(dir);
}

Test(log, a_second_open_of_the_same_directory_is_refused)
{
	char *dir = kt_tmpdir("lock");
	kp_log_options o = small_opts();
	kp_log *log = open_ok(dir, &o), *other;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &other, &err), KAPPA_ELOCKED);
	cr_assert(strstr(err.msg, "in use"), "%s", err.msg);
	pid_t pid = fork();
	if (pid == 0) {
		kp_log *l2;
		_exit(kp_log_open(dir, &o, &l2, NULL) == KAPPA_ELOCKED ? 0 : 1);
	}
	int status;
	waitpid(pid, &status, 0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "another process got the lock");
	kp_log_close(log);
	log = open_ok(dir, &o); /* released on close */
	kp_log_close(log);
	kt_rmdir(dir);
}

typedef struct {
	kp_log *log;
	kp_log_options *o;
	int id;
	int n;
	uint64_t *pos;
} appender;

static void *
appender_main(void *arg)
{
	appender *a = arg;
	char stream[32];
	snprintf(stream, sizeof(stream), "t%d", a->id);
	for (int i = 0; i < a->n; i++) {
		kp_batch b;
		kt_batch(&b, a->o, stream, 1 + i % 3, 50, (uint64_t)(a->id * 100000 + i));
		kappa_err err;
		if (kp_log_append(a->log, &b, &a->pos[i], &err) != KAPPA_OK)
			a->pos[i] = UINT64_MAX;
		kp_batch_release(&b);
	}
	return NULL;
}

typedef struct {
	kp_log *log;
	uint64_t target;
	int ok;
} tailer;

static void *
tailer_main(void *arg)
{
	tailer *t = arg;
	kp_log_iter *it;
	if (kp_log_iter_open(t->log, 0, &it, NULL))
		return NULL;
	uint64_t next = 0;
	kp_event ev;
	kappa_err err;
	while (next < t->target) {
		int rc = kp_log_iter_next(it, &ev, &err);
		if (rc < 0)
			break;
		if (rc == 0) {
			kp_log_wait(t->log, next, 1000);
			continue;
		}
		if (ev.position != next)
			break;
		next++;
	}
	t->ok = next == t->target;
	kp_log_iter_close(it);
	return NULL;
}

Test(log, concurrent_appenders_get_dense_unique_positions_while_a_reader_tails, .timeout = 120)
{
	char *dir = kt_tmpdir("conc");
	kp_log_options o = small_opts();
	o.segment_bytes = 64 << 10;
	kp_log *log = open_ok(dir, &o);
	enum { T = 8, N = 200 };
	uint64_t total = 0;
	for (int i = 0; i < N; i++)
		total += 1 + i % 3;
	total *= T;
	tailer tl = {log, total, 0};
	pthread_t tt;
	pthread_create(&tt, NULL, tailer_main, &tl);
	appender a[T];
	pthread_t th[T];
	for (int t = 0; t < T; t++) {
		a[t] = (appender){log, &o, t, N, calloc(N, sizeof(uint64_t))};
		pthread_create(&th[t], NULL, appender_main, &a[t]);
	}
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	pthread_join(tt, NULL);
	cr_assert(tl.ok, "the tailing reader did not see every event in order");
	cr_assert_eq(kp_log_head(log), total);
	/* every batch is where its append said, intact */
	uint8_t *seen = calloc(total, 1);
	kt_event *ev;
	size_t cnt = kt_read_all(log, 0, &ev);
	cr_assert_eq(cnt, total);
	for (int t = 0; t < T; t++) {
		for (int i = 0; i < N; i++) {
			uint64_t p = a[t].pos[i];
			cr_assert_neq(p, UINT64_MAX);
			for (int k = 0; k < 1 + i % 3; k++) {
				cr_assert_eq(seen[p + (uint64_t)k], 0, "position given twice");
				seen[p + (uint64_t)k] = 1;
				uint8_t *want = kt_data((uint64_t)(t * 100000 + i), k, 50);
				cr_assert_eq(memcmp(ev[p + (uint64_t)k].data, want, 50), 0);
				free(want);
			}
		}
		free(a[t].pos);
	}
	kp_log_stats st;
	kp_log_get_stats(log, &st);
	cr_assert_lt(st.groups, st.appends, "group commit never grouped anything");
	kt_free_events(ev, cnt);
	free(seen);
	kp_log_close(log);
	kt_rmdir(dir);
}

Test(log, fsync_policies_never_and_interval_keep_data_across_close)
{
	for (int mode = KP_FSYNC_INTERVAL; mode <= KP_FSYNC_NEVER; mode++) {
		char *dir = kt_tmpdir("mode");
		kp_log_options o = small_opts();
		o.fsync_mode = mode;
		o.fsync_interval_ms = 5;
		kp_log *log = open_ok(dir, &o);
		for (uint64_t i = 0; i < 30; i++)
			append_ok(log, &o, "s", 2, 200, i);
		usleep(20000);
		kp_log_stats st;
		kp_log_get_stats(log, &st);
		if (mode == KP_FSYNC_NEVER)
			cr_assert_lt(st.syncs, st.groups);
		kp_log_close(log);
		log = open_ok(dir, &o);
		check_batches(log, 30, 2, 200);
		kp_log_close(log);
		kt_rmdir(dir);
	}
}

Test(log, wait_returns_when_the_position_is_committed_or_times_out)
{
	char *dir = kt_tmpdir("wait");
	kp_log_options o = small_opts();
	kp_log *log = open_ok(dir, &o);
	uint64_t t0 = kp_mono_ns();
	cr_assert_eq(kp_log_wait(log, 0, 50), KAPPA_ETIMEOUT);
	cr_assert_geq(kp_mono_ns() - t0, 45000000u);
	append_ok(log, &o, "s", 1, 20, 1);
	cr_assert_eq(kp_log_wait(log, 0, 50), KAPPA_OK);
	cr_assert_eq(kp_log_wait(log, 1, 10), KAPPA_ETIMEOUT);
	kp_log_close(log);
	kt_rmdir(dir);
}

Test(log, retention_by_bytes_removes_whole_old_segments)
{
	char *dir = kt_tmpdir("retb");
	kp_log_options o = small_opts();
	o.retention_bytes = 40 << 10;
	kp_log *log = open_ok(dir, &o);
	for (uint64_t i = 0; i < 200; i++)
		append_ok(log, &o, "s", 2, 300, i);
	kappa_err err;
	cr_assert_eq(kp_log_enforce_retention(log, &err), KAPPA_OK);
	uint64_t first = kp_log_first(log);
	cr_assert_gt(first, 0, "nothing was removed");
	kp_log_stats st;
	kp_log_get_stats(log, &st);
	cr_assert_leq(st.segments, 4);
	/* below the first retained position: a clear error */
	kp_log_iter *it;
	cr_assert_eq(kp_log_iter_open(log, first - 1, &it, &err), KAPPA_ERANGE);
	cr_assert(strstr(err.msg, "retention"), "%s", err.msg);
	/* from it: everything to the head, intact */
	kt_event *ev;
	size_t cnt = kt_read_all(log, first, &ev);
	cr_assert_eq(cnt, 400 - first);
	for (size_t i = 0; i < cnt; i++) {
		uint8_t *want = kt_data((first + i) / 2, (int)((first + i) % 2), 300);
		cr_assert_eq(memcmp(ev[i].data, want, 300), 0);
		free(want);
	}
	kt_free_events(ev, cnt);
	kp_log_close(log);
	log = open_ok(dir, &o);
	cr_assert_eq(kp_log_first(log), first);
	cr_assert_eq(kp_log_head(log), 400);
	kp_log_close(log);
	kt_rmdir(dir);
}

Test(log, retention_by_age_keeps_the_active_segment)
{
	char *dir = kt_tmpdir("reta");
	kp_log_options o = small_opts();
	kp_log *log = open_ok(dir, &o);
	for (uint64_t i = 0; i < 100; i++)
		append_ok(log, &o, "s", 2, 300, i);
	kp_log_close(log);
	usleep(30000);
	o.retention_ms = 10;
	log = open_ok(dir, &o);
	kappa_err err;
	cr_assert_eq(kp_log_enforce_retention(log, &err), KAPPA_OK);
	kp_log_stats st;
	kp_log_get_stats(log, &st);
	cr_assert_eq(st.segments, 1, "every sealed segment is older than 10 ms");
	cr_assert_eq(kp_log_head(log), 200);
	cr_assert_gt(kp_log_first(log), 0);
	append_ok(log, &o, "s", 1, 100, 7);
	cr_assert_eq(kp_log_head(log), 201);
	kp_log_close(log);
	kt_rmdir(dir);
}

Test(log, oversize_batches_roll_into_their_own_segment)
{
	char *dir = kt_tmpdir("big");
	kp_log_options o = small_opts();
	o.segment_bytes = 4096;
	kp_log *log = open_ok(dir, &o);
	append_ok(log, &o, "s", 1, 100, 0);
	append_ok(log, &o, "s", 3, 3000, 1); /* 9 KiB batch > 4 KiB segment */
	append_ok(log, &o, "s", 1, 100, 2);
	kt_event *ev;
	size_t cnt = kt_read_all(log, 0, &ev);
	cr_assert_eq(cnt, 5);
	kt_free_events(ev, cnt);
	kp_log_close(log);
	log = open_ok(dir, &o);
	cr_assert_eq(kp_log_head(log), 5);
	kp_log_close(log);
	kt_rmdir(dir);
}
