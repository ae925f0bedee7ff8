/*
 * log_segments.c -- GET /log/segments (read scope): the log's segment files, oldest first,
 * with their positions, size on disk, state (sealed or active) and oldest and newest event
 * times when the server knows them without reading the disk. At most
 * KP_MAX_SEGMENTS_LISTED are listed ("truncated" says when there are more; "count" and
 * "bytes" always cover them all).
 */
#include <stdlib.h>

#include "base/clock.h"
#include "server/server_int.h"

#define KP_MAX_SEGMENTS_LISTED 10000

static json_t *
time_json(int64_t ms)
{
	if (ms < 0)
		return json_null();
	char iso[KP_TIME_TEXT];
	kp_format_time_ms(ms, iso);
	return json_string(iso);
}

int
kp_http_log_segments(kp_request *r)
{
	kappa_segment_info *segs = malloc(KP_MAX_SEGMENTS_LISTED * sizeof(*segs));
	if (!segs)
		return kp_send_error(r, 503, "out_of_memory", "out of memory");
	size_t n = kappa_log_segments(r->srv->db, segs, KP_MAX_SEGMENTS_LISTED);
	size_t shown = n < KP_MAX_SEGMENTS_LISTED ? n : KP_MAX_SEGMENTS_LISTED;
	kappa_stats st;
	kappa_stats_get(r->srv->db, &st);
	json_t *arr = json_array();
	for (size_t i = 0; arr && i < shown; i++) {
		const kappa_segment_info *g = &segs[i];
		json_t *o = json_pack(
			"{s:I, s:I, s:I, s:I, s:s, s:o, s:o}", "first_position",
			(json_int_t)g->first_position, "end_position", (json_int_t)g->end_position,
			"events", (json_int_t)(g->end_position - g->first_position), "bytes",
			(json_int_t)g->bytes, "state", g->active ? "active" : "sealed",
			"oldest_time", time_json(g->oldest_time_ms), "newest_time",
			time_json(g->newest_time_ms));
		if (!o || json_array_append_new(arr, o)) {
			json_decref(arr);
			arr = NULL;
		}
	}
	free(segs);
	json_t *body = arr ? json_pack("{s:o, s:I, s:b, s:I, s:I, s:I}", "segments", arr, "count",
				       (json_int_t)n, "truncated", n > shown, "bytes",
				       (json_int_t)st.disk_bytes, "first_position",
				       (json_int_t)st.first_position, "head", (json_int_t)st.head)
			   : NULL;
	return kp_send_json(r, 200, kp_dump(body));
}
