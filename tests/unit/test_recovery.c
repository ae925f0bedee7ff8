/*
 * test_recovery.c -- what opening a log does with damaged files: a torn tail is cut and
 * reported, a zero-filled tail is the end, corruption of synced data stops the open (or
 * the read, or `kappa check`) naming segment, offset and position.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "log/log_int.h"
#include "testlib.h"

static char notices[8192];

static void
collect(void *ctx, const char *line)
{
	(void)ctx;
	strncat(notices, line, sizeof(notices) - strlen(notices) - 2);
	strcat(notices, "\n");
}

static kp_log_options
opts(kp_fsync_mode mode)
{
	kp_log_options o;
	kp_log_options_init(&o);
	o.fsync_mode = mode;
	o.prealloc_bytes = 0;
	o.index_interval_bytes = 1 << 20; /* only the first batch is indexed: scans cover all */
	o.notice = collect;
	notices[0] = 0;
	return o;
}

/* A log of 'n' batches of 2 events x 300 bytes; returns the batch offsets (malloc'ed). */
static uint64_t *
make_log(const char *dir, kp_log_options *o, int n)
{
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, o, &log, &err), KAPPA_OK, "%s", err.msg);
	uint64_t *offs = calloc((size_t)n + 1, sizeof(uint64_t));
	for (int i = 0; i < n; i++) {
		kp_batch b;
		kt_batch(&b, o, "s", 2, 300, (uint64_t)i);
		offs[i + 1] = offs[i] + b.buf.len;
		uint64_t pos;
		cr_assert_eq(kp_log_append(log, &b, &pos, &err), KAPPA_OK, "%s", err.msg);
		kp_batch_release(&b);
	}
	kp_log_close(log);
	return offs;
}

static void
expect_batches(kp_log *log, int n)
{
	kt_event *ev;
	size_t cnt = kt_read_all(log, 0, &ev);
	cr_assert_eq(cnt, (size_t)n * 2, "have %zu events, want %d", cnt, n * 2);
	for (size_t i = 0; i < cnt; i++) {
		uint8_t *want = kt_data(i / 2, (int)(i % 2), 300);
		cr_assert_eq(memcmp(ev[i].data, want, 300), 0);
		free(want);
	}
	kt_free_events(ev, cnt);
}

Test(recovery, a_batch_cut_mid_write_is_cut_and_reported)
{
	char *dir = kt_tmpdir("torn");
	kp_log_options o = opts(KP_FSYNC_ALWAYS);
	uint64_t *offs = make_log(dir, &o, 10);
	char *seg = kt_seg_file(dir, 0, "log");
	kt_truncate(seg, offs[9] + 100); /* inside the 10th batch */
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &log, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(kp_log_head(log), 18);
	char want[128];
	snprintf(want, sizeof(want), "offset=%" PRIu64 " bytes=100 position=18", offs[9]);
	cr_assert(strstr(notices, "event=torn_tail_cut"), "%s", notices);
	cr_assert(strstr(notices, want), "%s", notices);
	expect_batches(log, 9);
	/* appends continue right after the cut */
	kp_batch b;
	kt_batch(&b, &o, "s", 2, 300, 9);
	uint64_t pos;
	cr_assert_eq(kp_log_append(log, &b, &pos, &err), KAPPA_OK);
	cr_assert_eq(pos, 18);
	kp_batch_release(&b);
	expect_batches(log, 10);
	kp_log_close(log);
	cr_assert_eq(kt_file_size(seg), offs[10]);
	free(seg);
	free(offs);
	kt_rmdir(dir);
}

Test(recovery, a_cut_inside_the_header_is_a_torn_tail_too)
{
	char *dir = kt_tmpdir("tornh");
	kp_log_options o = opts(KP_FSYNC_ALWAYS);
	uint64_t *offs = make_log(dir, &o, 5);
	char *seg = kt_seg_file(dir, 0, "log");
	kt_truncate(seg, offs[4] + 10);
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &log, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(kp_log_head(log), 8);
	expect_batches(log, 4);
	kp_log_close(log);
	free(seg);
	free(offs);
	kt_rmdir(dir);
}

Test(recovery, a_zero_filled_tail_is_the_end_not_damage)
{
	char *dir = kt_tmpdir("zero");
	kp_log_options o = opts(KP_FSYNC_ALWAYS);
	uint64_t *offs = make_log(dir, &o, 6);
	char *seg = kt_seg_file(dir, 0, "log");
	kt_truncate(seg, offs[6] + 256 * 1024); /* like preallocated space */
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &log, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(kp_log_head(log), 12);
	cr_assert_null(strstr(notices, "torn"), "%s", notices);
	expect_batches(log, 6);
	kp_log_close(log);
	cr_assert_eq(kt_file_size(seg), offs[6] + 256 * 1024, "a clean tail must not be cut");
	free(seg);
	free(offs);
	kt_rmdir(dir);
}

Test(recovery, garbage_after_the_last_batch_is_cut)
{
	char *dir = kt_tmpdir("garb");
	kp_log_options o = opts(KP_FSYNC_ALWAYS);
	uint64_t *offs = make_log(dir, &o, 4);
	char *seg = kt_seg_file(dir, 0, "log");
	char cmd[4400];
	snprintf(cmd, sizeof(cmd), "head -c 5000 /dev/urandom >> '%s'", seg);
	cr_assert_eq(system(cmd), 0);
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &log, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(kp_log_head(log), 8);
	cr_assert(strstr(notices, "event=torn_tail_cut"), "%s", notices);
	kp_log_close(log);
	cr_assert_eq(kt_file_size(seg), offs[4]);
	free(seg);
	free(offs);
	kt_rmdir(dir);
}

Test(recovery, a_flipped_byte_in_synced_data_stops_the_open_and_names_it)
{
	char *dir = kt_tmpdir("flip");
	kp_log_options o = opts(KP_FSYNC_ALWAYS);
	uint64_t *offs = make_log(dir, &o, 10);
	char *seg = kt_seg_file(dir, 0, "log");
	kt_flip_byte(seg, offs[5] + 200); /* payload of batch 5 (positions 10, 11) */
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &log, &err), KAPPA_ECORRUPT);
	cr_assert_null(log);
	char want[64];
	snprintf(want, sizeof(want), "offset %" PRIu64 " (position 10)", offs[5]);
	cr_assert(strstr(err.msg, seg), "%s", err.msg);
	cr_assert(strstr(err.msg, want), "%s", err.msg);
	cr_assert(strstr(err.msg, "crc mismatch"), "%s", err.msg);
	/* nothing was changed: the file is as it was */
	cr_assert_eq(kt_file_size(seg), offs[10]);
	/* kappa check reports the same place */
	notices[0] = 0;
	cr_assert_eq(kp_log_check(dir, collect, NULL, NULL, NULL, &err), KAPPA_ECORRUPT);
	cr_assert(strstr(notices, want), "%s", notices);
	free(seg);
	free(offs);
	kt_rmdir(dir);
}

Test(recovery, unsynced_damage_in_never_mode_is_a_torn_tail)
{
	/* With fsync=never nothing after the last sync was promised durable, so a bad batch
	 * followed only by batches written before any later sync is cut, not an error. */
	char *dir = kt_tmpdir("never");
	kp_log_options o = opts(KP_FSYNC_NEVER);
	uint64_t *offs = make_log(dir, &o, 10);
	char *seg = kt_seg_file(dir, 0, "log");
	kt_flip_byte(seg, offs[5] + 200);
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &log, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(kp_log_head(log), 10);
	cr_assert(strstr(notices, "later_valid_batches=4"), "%s", notices);
	expect_batches(log, 5);
	kp_log_close(log);
	free(seg);
	free(offs);
	kt_rmdir(dir);
}

Test(recovery, damage_in_a_sealed_segment_fails_reads_and_check_naming_it)
{
	char *dir = kt_tmpdir("sealed");
	kp_log_options o = opts(KP_FSYNC_ALWAYS);
	o.segment_bytes = 8192;
	o.index_interval_bytes = 4096;
	uint64_t *offs = make_log(dir, &o, 30);
	char *seg = kt_seg_file(dir, 0, "log");
	kt_flip_byte(seg, 1500); /* inside the first segment's second batch */
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &log, &err), KAPPA_OK, "open reads only the tail: %s",
		     err.msg);
	kp_log_iter *it;
	kp_event ev;
	cr_assert_eq(kp_log_iter_open(log, 0, &it, &err), KAPPA_OK);
	int rc;
	while ((rc = kp_log_iter_next(it, &ev, &err)) == 1)
		;
	cr_assert_eq(rc, KAPPA_ECORRUPT);
	cr_assert(strstr(err.msg, seg), "%s", err.msg);
	cr_assert(strstr(err.msg, "position 2"), "%s", err.msg);
	kp_log_iter_close(it);
	/* reading past the damage, from the second segment, works */
	kt_event *evs;
	size_t cnt = kt_read_all(log, 20, &evs);
	cr_assert_eq(cnt, 40);
	kt_free_events(evs, cnt);
	kp_log_close(log);
	notices[0] = 0;
	cr_assert_eq(kp_log_check(dir, collect, NULL, NULL, NULL, &err), KAPPA_ECORRUPT);
	cr_assert(strstr(notices, "corrupt: segment"), "%s", notices);
	cr_assert(strstr(notices, "(position 2)"), "%s", notices);
	free(seg);
	free(offs);
	kt_rmdir(dir);
}

Test(recovery, check_passes_a_sound_log_and_reports_a_torn_tail_without_failing)
{
	char *dir = kt_tmpdir("check");
	kp_log_options o = opts(KP_FSYNC_ALWAYS);
	o.segment_bytes = 8192;
	uint64_t *offs = make_log(dir, &o, 30);
	kappa_err err;
	uint64_t events, batches;
	cr_assert_eq(kp_log_check(dir, collect, NULL, &events, &batches, &err), KAPPA_OK, "%s",
		     notices);
	cr_assert_eq(events, 60);
	cr_assert_eq(batches, 30);
	/* tear the active segment's tail */
	uint64_t *firsts;
	size_t n;
	cr_assert_eq(kp_seg_list(dir, &firsts, &n, &err), KAPPA_OK);
	char *last = kt_seg_file(dir, firsts[n - 1], "log");
	kt_truncate(last, kt_file_size(last) - 7);
	notices[0] = 0;
	cr_assert_eq(kp_log_check(dir, collect, NULL, &events, NULL, &err), KAPPA_OK);
	cr_assert(strstr(notices, "torn tail"), "%s", notices);
	cr_assert_eq(events, 58, "one batch (2 events) less");
	free(last);
	free(firsts);
	free(offs);
	kt_rmdir(dir);
}

Test(recovery, a_stale_index_entry_is_ignored)
{
	char *dir = kt_tmpdir("stale");
	kp_log_options o = opts(KP_FSYNC_ALWAYS);
	o.index_interval_bytes = 600;
	uint64_t *offs = make_log(dir, &o, 10);
	/* point the last index entry at a wrong offset (with a valid entry CRC) */
	char *idx = kt_seg_file(dir, 0, "idx");
	uint64_t size = kt_file_size(idx);
	cr_assert_geq(size, 32 + 2 * 32);
	FILE *f = fopen(idx, "r+b");
	uint8_t e[32];
	fseek(f, (long)(size - 32), SEEK_SET);
	cr_assert_eq(fread(e, 1, 32, f), 32);
	kp_put_u32(e + 16, kp_get_u32(e + 16) + 8);
	kp_put_u32(e + 28, kp_crc32c(0, e, 28));
	fseek(f, (long)(size - 32), SEEK_SET);
	fwrite(e, 1, 32, f);
	fclose(f);
	kp_log *log;
	kappa_err err;
	cr_assert_eq(kp_log_open(dir, &o, &log, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(kp_log_head(log), 20);
	expect_batches(log, 10);
	kp_log_close(log);
	free(idx);
	free(offs);
	kt_rmdir(dir);
}
