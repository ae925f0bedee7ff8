/*
 * seglist.c -- kp_log_segments: a copy of the log's segment list (first and end position,
 * bytes on disk, sealed or active, oldest and newest event time when known without I/O)
 * taken under the log's segment lock, for operators' tools (GET /log/segments, the
 * console).
 */
#include "log/log_int.h"

/* Times from what is already in memory: never loads an index or reads a file. */
static void
seg_times(kp_segment *g, int sealed, kappa_segment_info *out)
{
	out->oldest_time_ms = -1;
	out->newest_time_ms = -1;
	pthread_mutex_lock(&g->idx_lock);
	/* The first batch of a segment is always indexed, with the time of the group it was
	 * committed in. */
	if (g->idx_loaded && g->idx_n && g->idx[0].pos == g->first_pos)
		out->oldest_time_ms = g->idx[0].time_ms;
	if (sealed && g->last_time_ms >= 0)
		out->newest_time_ms = g->last_time_ms;
	pthread_mutex_unlock(&g->idx_lock);
}

size_t
kp_log_segments(kp_log *log, kappa_segment_info *out, size_t max)
{
	pthread_mutex_lock(&log->seg_lock);
	size_t n = log->nsegs;
	for (size_t i = 0; i < n && i < max; i++) {
		kp_segment *g = log->segs[i];
		int sealed = atomic_load(&g->sealed);
		out[i].first_position = g->first_pos;
		out[i].end_position = atomic_load(&g->end_pos);
		out[i].bytes = sealed && g->file_bytes ? g->file_bytes : atomic_load(&g->end_off);
		out[i].active = !sealed;
		seg_times(g, sealed, &out[i]);
	}
	pthread_mutex_unlock(&log->seg_lock);
	return n;
}
