/*
 * segments.c -- kappa_log_segments: the log's segment files through the public API (for
 * GET /log/segments and the console's disk-use chart).
 */
#include "store/store.h"

size_t
kappa_log_segments(kappa_db *db, kappa_segment_info *out, size_t max)
{
	return kp_log_segments(db->log, out, max);
}
