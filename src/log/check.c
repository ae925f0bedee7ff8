/*
 * check.c -- kp_log_check: verify every batch of a log without changing anything.
 *
 * This is what `kappa check DIR` runs. It reads every segment in full (unlike open, which
 * reads only the unindexed tail), checks each batch's CRC and event framing, that positions
 * are dense across segments, and classifies the last segment's tail exactly as recovery
 * would, so the two never disagree.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "log/log_int.h"

int
kp_log_check(const char *dir, void (*report)(void *ctx, const char *line), void *ctx,
	     uint64_t *events, uint64_t *batches, kappa_err *err)
{
	const kp_io *io = kp_io_posix();
	uint64_t *firsts;
	size_t n;
	uint64_t ev_total = 0, b_total = 0;
	int rc = kp_seg_list(dir, &firsts, &n, err);
	if (rc)
		return rc;
	int bad = 0;
	for (size_t i = 0; i < n && rc == KAPPA_OK; i++) {
		char *path = kp_seg_path(dir, firsts[i]);
		if (!path) {
			rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
			break;
		}
		int fd = io->open(io, path, O_RDONLY, 0);
		if (fd < 0) {
			rc = KP_ERR_SYS(err, KAPPA_EIO, -fd, "cannot open %s", path);
			free(path);
			break;
		}
		int last = i + 1 == n;
		uint64_t limit = last ? UINT64_MAX : firsts[i + 1];
		kp_scan r;
		rc = kp_seg_scan(io, fd, 0, firsts[i], limit, 1, NULL, NULL, &r, err);
		io->close(io, fd);
		if (rc) {
			free(path);
			break;
		}
		ev_total += r.events;
		b_total += r.batches;
		if (!last && r.end_pos != limit) {
			kp_emit(report, ctx,
				"corrupt: segment %s at offset %" PRIu64 " (position %" PRIu64
				"): %s; the next segment starts at position %" PRIu64,
				path, r.end_off, r.end_pos, r.why[0] ? r.why : "data ends early",
				limit);
			bad = 1;
		} else if (!last && r.tail != KP_SCAN_CLEAN) {
			kp_emit(report, ctx,
				"corrupt: segment %s has %" PRIu64
				" unexpected bytes after its last "
				"batch at offset %" PRIu64,
				path, r.tail_bytes, r.end_off);
			bad = 1;
		} else if (r.tail == KP_SCAN_CORRUPT) {
			kp_emit(report, ctx,
				"corrupt: segment %s at offset %" PRIu64 " (position %" PRIu64
				"): %s",
				path, r.end_off, r.end_pos, r.why);
			bad = 1;
		} else if (r.tail == KP_SCAN_TORN) {
			kp_emit(report, ctx,
				"torn tail: segment %s at offset %" PRIu64 " (position %" PRIu64
				"): %s; an open would cut %" PRIu64 " bytes",
				path, r.end_off, r.end_pos, r.why, r.file_size - r.end_off);
		}
		kp_emit(report, ctx,
			"segment %s: positions %" PRIu64 "..%" PRIu64 ", %" PRIu64
			" batches, %" PRIu64 " bytes",
			path, firsts[i], r.end_pos, r.batches, r.end_off);
		free(path);
	}
	free(firsts);
	if (events)
		*events = ev_total;
	if (batches)
		*batches = b_total;
	if (rc == KAPPA_OK && bad)
		rc = KP_ERR(err, KAPPA_ECORRUPT, "the log in %s is corrupt", dir);
	return rc;
}
