/*
 * test_segments.c -- the log's segment list and verification progress through the public
 * API: with small segments, kappa_log_segments lists every segment oldest first, contiguous
 * and in order, sealed ones with their size on disk (and times when sealed by this open), the
 * last one active, the
 * byte total equal to kappa_stats' disk use, a short array filled only to its length; the
 * list follows rolls and a reopen. kappa_audit_verify_progress reports growing positions
 * and bytes up to the totals, and stops when its callback says so.
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kappa.h"
#include "testlib.h"

TestSuite(segments, .timeout = 120);

static kappa_db *
open_db(const char *dir, uint64_t segment_bytes)
{
	kappa_options o;
	kappa_options_init(&o);
	o.segment_bytes = segment_bytes;
	kappa_db *db;
	kappa_err err;
	cr_assert_eq(kappa_open(dir, &o, &db, &err), KAPPA_OK, "open %s: %s", dir, err.msg);
	return db;
}

/* 'n' appends of one event with about 'size' bytes of data each. */
static void
append_n(kappa_db *db, int n, size_t size)
{
	char *data = malloc(size + 32);
	cr_assert(data);
	for (int i = 0; i < n; i++) {
		int k = snprintf(data, 32, "{\"i\":%d,\"pad\":\"", i);
		memset(data + k, 'x', size);
		strcpy(data + k + size, "\"}");
		kappa_event_in e = {.type = "Padded", .data = data};
		kappa_append_result r;
		kappa_err err;
		cr_assert_eq(kappa_append(db, "pad", KAPPA_ANY, NULL, &e, 1, NULL, 0, &r, &err),
			     KAPPA_OK, "%s", err.msg);
	}
	free(data);
}

/* 'rolled_here': every sealed segment was sealed by this open (its times are in memory;
 * after a reopen they are known only once something read its index). */
static void
check_list(kappa_db *db, int rolled_here, size_t *count)
{
	kappa_segment_info segs[256];
	size_t n = kappa_log_segments(db, segs, 256);
	cr_assert(n > 3 && n <= 256, "several segments (%zu)", n);
	kappa_stats st;
	kappa_stats_get(db, &st);
	cr_assert_eq(n, st.segments);
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		total += segs[i].bytes;
		cr_assert(segs[i].bytes > 0, "segment %zu holds bytes", i);
		cr_assert_lt(segs[i].first_position, segs[i].end_position,
			     "segment %zu holds events", i);
		if (i)
			cr_assert_eq(segs[i].first_position, segs[i - 1].end_position,
				     "segment %zu starts where %zu ends", i, i - 1);
		cr_assert_eq(segs[i].active, i + 1 == n, "only the last one is active (%zu)", i);
		if (!segs[i].active) {
			cr_assert(segs[i].bytes <= 16 * 1024 + 9000,
				  "a sealed segment is about "
				  "segment_bytes (%zu: %" PRIu64 ")",
				  i, segs[i].bytes);
			if (rolled_here)
				cr_assert_gt(segs[i].newest_time_ms, 0,
					     "a segment sealed by this open knows its newest time");
		}
		if (segs[i].oldest_time_ms >= 0 && segs[i].newest_time_ms >= 0)
			cr_assert_leq(segs[i].oldest_time_ms, segs[i].newest_time_ms);
	}
	cr_assert_eq(segs[0].first_position, st.first_position);
	cr_assert_eq(segs[n - 1].end_position, st.head);
	cr_assert_eq(total, st.disk_bytes, "the sizes add up to the log's disk use");
	/* A short array is filled to its length; the count is still the whole list. */
	kappa_segment_info two[3];
	memset(two, 0xab, sizeof(two));
	cr_assert_eq(kappa_log_segments(db, two, 2), n);
	cr_assert_eq(two[0].first_position, segs[0].first_position);
	cr_assert_eq(two[1].first_position, segs[1].first_position);
	cr_assert_eq(two[2].first_position, 0xababababababababull, "nothing past 'max'");
	cr_assert_eq(kappa_log_segments(db, NULL, 0), n);
	*count = n;
}

Test(segments, lists_every_segment_with_its_size_and_times)
{
	char *dir = kt_tmpdir("segments-list");
	kappa_db *db = open_db(dir, 16 * 1024);
	append_n(db, 200, 400); /* about 90 KB: several 16 KiB segments */
	size_t n1, n2, n3;
	check_list(db, 1, &n1);
	kappa_segment_info s[256];
	cr_assert_eq(kappa_log_segments(db, s, 256), n1);
	cr_assert_gt(s[0].oldest_time_ms, 0, "the first segment's index is in memory: its time");

	append_n(db, 100, 400);
	check_list(db, 1, &n2);
	cr_assert_gt(n2, n1, "rolls add segments (%zu, then %zu)", n1, n2);
	kappa_close(db);

	db = open_db(dir, 16 * 1024);
	check_list(db, 0, &n3);
	cr_assert_eq(n3, n2, "a reopen lists the same segments");
	kappa_close(db);
	kt_rmdir(dir);
}

typedef struct seen {
	int calls;
	int stop_after; /* 0: never stop */
	kappa_verify_progress last;
	int monotonic;
} seen;

static int
on_progress(void *ctx, const kappa_verify_progress *p)
{
	seen *s = ctx;
	if (s->calls &&
	    (p->bytes_done <= s->last.bytes_done || p->positions_done < s->last.positions_done ||
	     p->batches <= s->last.batches))
		s->monotonic = 0;
	if (p->bytes_done > p->bytes_total || p->positions_done > p->positions_total)
		s->monotonic = 0;
	s->last = *p;
	s->calls++;
	return s->stop_after && s->calls >= s->stop_after;
}

Test(segments, verification_reports_progress_and_can_be_stopped)
{
	char *dir = kt_tmpdir("segments-verify");
	kappa_db *db = open_db(dir, 256 * 1024);
	append_n(db, 500, 16 * 1024); /* about 8 MB: several progress reports */
	kappa_stats st;
	kappa_stats_get(db, &st);

	seen s = {.monotonic = 1};
	kappa_verify_result res;
	kappa_err err;
	cr_assert_eq(kappa_audit_verify_progress(db, NULL, on_progress, &s, &res, &err), KAPPA_OK,
		     "%s", err.msg);
	cr_assert(s.calls >= 5, "progress was reported %d times", s.calls);
	cr_assert(s.monotonic, "progress only grows and stays within its totals");
	cr_assert_eq(s.last.positions_total, 500);
	cr_assert_eq(s.last.bytes_total, st.disk_bytes);
	cr_assert_lt(s.last.bytes_done, s.last.bytes_total, "reports come during the run");
	cr_assert_eq(res.events, 500);
	cr_assert_eq(res.bytes, st.disk_bytes, "at the end every byte was verified");

	seen stop = {.stop_after = 2, .monotonic = 1};
	cr_assert_eq(kappa_audit_verify_progress(db, NULL, on_progress, &stop, &res, &err),
		     KAPPA_ECLOSED, "a callback's non-zero answer stops it");
	cr_assert_eq(stop.calls, 2);
	cr_assert_lt(res.events, 500, "it stopped before the end (%" PRIu64 ")", res.events);
	cr_assert_eq(kappa_audit_verify_progress(db, NULL, NULL, NULL, &res, &err), KAPPA_OK);
	cr_assert_eq(res.events, 500);
	kappa_close(db);
	kt_rmdir(dir);
}
