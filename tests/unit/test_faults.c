/*
 * test_faults.c -- I/O failures injected through the kp_io interface: a failed sync or
 * write latches the log (nothing unsynced is acknowledged, reopen recovers), a full disk is
 * answered and survived without a restart, and a fault loop fails every I/O call in turn
 * and checks that every acknowledged append survives and nothing half-written shows.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "testlib.h"

static kp_log_options
fopts(kt_faults *f)
{
	kp_log_options o;
	kp_log_options_init(&o);
	o.segment_bytes = 8192;
	o.index_interval_bytes = 1024;
	o.prealloc_bytes = 0; /* the zero-fill thread would make call counts racy */
	o.io = f ? &f->io : NULL;
	return o;
}

static int
try_append(kp_log *log, const kp_log_options *o, uint64_t seed, uint64_t *pos, kappa_err *err)
{
	kp_batch b;
	kt_batch(&b, o, "s", 2, 200, seed);
	int rc = kp_log_append(log, &b, pos, err);
	kp_batch_release(&b);
	return rc;
}

/* Reopen without faults and check every acknowledged batch (seed -> position) is there,
 * intact, positions dense, every present event belongs to a whole batch, and the audit
 * chain verifies. */
static void
verify(const char *dir, const uint64_t *acked_pos, const int *acked, int n)
{
	kp_log_options o = fopts(NULL);
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &log, &err), KAPPA_OK, "reopen: %s", err.msg);
	kt_event *ev;
	size_t cnt = kt_read_all(log, 0, &ev);
	cr_assert_eq(cnt % 2, 0, "half a batch is visible");
	for (size_t i = 0; i < cnt; i++)
		cr_assert_eq(ev[i].position, i);
	for (int s = 0; s < n; s++) {
		if (!acked[s])
			continue;
		uint64_t p = acked_pos[s];
		cr_assert_lt(p + 1, cnt, "acknowledged batch %d lost", s);
		for (int k = 0; k < 2; k++) {
			uint8_t *want = kt_data((uint64_t)s, k, 200);
			cr_assert_eq(memcmp(ev[p + (uint64_t)k].data, want, 200), 0,
				     "acknowledged batch %d damaged", s);
			free(want);
		}
	}
	kt_free_events(ev, cnt);
	kp_log_close(log);
	/* Whatever failed, the audit chain has no break: a group refused for lack of space
	 * gives back the chain value it had taken. */
	kp_log_verify_result vr;
	cr_assert_eq(kp_log_verify(dir, NULL, UINT64_MAX, NULL, NULL, NULL, &vr, &err), KAPPA_OK,
		     "audit chain: %s", err.msg);
	cr_assert_eq(vr.end_position, cnt);
}

Test(faults, a_failed_fdatasync_latches_the_log_until_reopen)
{
	char *dir = kt_tmpdir("fsync");
	kt_faults f;
	kt_faults_init(&f);
	kp_log_options o = fopts(&f);
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &log, &err), KAPPA_OK);
	uint64_t pos[10];
	int acked[10] = {0};
	for (int i = 0; i < 3; i++)
		acked[i] = try_append(log, &o, (uint64_t)i, &pos[i], &err) == KAPPA_OK;
	kt_faults_arm(&f, KT_FDATASYNC, 1, EIO);
	cr_assert_eq(try_append(log, &o, 3, &pos[3], &err), KAPPA_EFATAL);
	cr_assert(strstr(err.msg, "fdatasync"), "%s", err.msg);
	/* the page cache can no longer be trusted: no retry, everything fails from now on */
	for (int i = 4; i < 6; i++) {
		cr_assert_eq(try_append(log, &o, (uint64_t)i, &pos[i], &err), KAPPA_EFATAL);
		cr_assert(strstr(err.msg, "fdatasync"), "%s", err.msg);
	}
	cr_assert_eq(kp_log_head(log), 6, "the unsynced batch must not become readable");
	cr_assert_eq(kp_log_wait(log, 100, 10), KAPPA_EFATAL);
	kp_log_close(log);
	verify(dir, pos, acked, 6);
	kt_rmdir(dir);
}

Test(faults, a_failed_write_latches_the_log)
{
	char *dir = kt_tmpdir("write");
	kt_faults f;
	kt_faults_init(&f);
	kp_log_options o = fopts(&f);
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &log, &err), KAPPA_OK);
	uint64_t pos[4];
	int acked[4] = {0};
	acked[0] = try_append(log, &o, 0, &pos[0], &err) == KAPPA_OK;
	f.short_write = 1; /* half the batch lands, then EIO */
	kt_faults_arm(&f, KT_PWRITEV, 1, EIO);
	cr_assert_eq(try_append(log, &o, 1, &pos[1], &err), KAPPA_EFATAL);
	cr_assert_eq(try_append(log, &o, 2, &pos[2], &err), KAPPA_EFATAL);
	kp_log_close(log);
	verify(dir, pos, acked, 3);
	kt_rmdir(dir);
}

Test(faults, a_full_disk_is_answered_and_appends_resume_without_restart)
{
	char *dir = kt_tmpdir("enospc");
	kt_faults f;
	kt_faults_init(&f);
	kp_log_options o = fopts(&f);
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &log, &err), KAPPA_OK);
	uint64_t pos[6];
	int acked[6] = {0};
	for (int i = 0; i < 2; i++)
		acked[i] = try_append(log, &o, (uint64_t)i, &pos[i], &err) == KAPPA_OK;
	f.short_write = 1;
	kt_faults_arm(&f, KT_PWRITEV, 1, ENOSPC);
	cr_assert_eq(try_append(log, &o, 2, &pos[2], &err), KAPPA_ENOSPC);
	cr_assert_eq(kp_log_head(log), 4);
	/* space is back: the next append succeeds and takes the freed position */
	acked[3] = try_append(log, &o, 3, &pos[3], &err) == KAPPA_OK;
	cr_assert(acked[3], "%s", err.msg);
	cr_assert_eq(pos[3], 4);
	kp_log_close(log);
	verify(dir, pos, acked, 4);
	kt_rmdir(dir);
}

/* Fail the Nth call of one kind, for N = 1, 2, ... until a run sees no fault. Each run:
 * open, 12 appends (rolling 8 KiB segments), close; then verify with a clean reopen. */
static void
fault_loop(enum kt_op op, int eno)
{
	for (long nth = 1; nth < 400; nth++) {
		char *dir = kt_tmpdir("loop");
		kt_faults f;
		kt_faults_init(&f);
		kt_faults_arm(&f, op, nth, eno);
		f.persist = nth % 2; /* alternate one-off and persistent faults */
		kp_log_options o = fopts(&f);
		kp_log *log;
		kappa_err err;
		uint64_t pos[12];
		int acked[12] = {0};
		int rc = kp_log_open(dir, &o, &log, &err);
		if (rc == KAPPA_OK) {
			for (int i = 0; i < 12; i++) {
				rc = try_append(log, &o, (uint64_t)i, &pos[i], &err);
				acked[i] = rc == KAPPA_OK;
				cr_assert(rc == KAPPA_OK || rc == KAPPA_EFATAL ||
						  rc == KAPPA_ENOSPC,
					  "unexpected %s: %s", kappa_strerror(rc), err.msg);
			}
			kp_log_close(log);
		} else {
			cr_assert(rc == KAPPA_EIO || rc == KAPPA_ENOSPC, "open: %s", err.msg);
		}
		int fired = f.calls[op] >= nth;
		verify(dir, pos, acked, 12);
		kt_rmdir(dir);
		if (!fired)
			return; /* the operation completed with no fault left to inject */
	}
	cr_assert_fail("fault loop did not converge");
}

Test(faults, every_failing_write_keeps_acknowledged_data, .timeout = 120)
{
	fault_loop(KT_PWRITEV, EIO);
}

Test(faults, every_failing_sync_keeps_acknowledged_data, .timeout = 120)
{
	fault_loop(KT_FDATASYNC, EIO);
}

Test(faults, every_failing_directory_sync_or_open_keeps_acknowledged_data, .timeout = 120)
{
	fault_loop(KT_FSYNC, EIO);
	fault_loop(KT_OPEN, EIO);
}

Test(faults, every_failing_write_with_a_full_disk_keeps_acknowledged_data, .timeout = 120)
{
	fault_loop(KT_PWRITEV, ENOSPC);
}
