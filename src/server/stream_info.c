/*
 * stream_info.c -- GET /streams/{s}/info: what the index knows about one stream (whether
 * it exists, its last version and position, its event count) and the uniqueness claims it
 * holds, for the console's stream page and other clients. Reads the index only. Claims are
 * listed by id (kappa keeps claim keys only as keyed hashes); ?claim=KEY answers whether the
 * stream holds that key ("holds_claim").
 */
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

#define MAX_CLAIMS_LISTED 1000

typedef struct claims_ctx {
	json_t *arr;
	size_t n;
	int more;
	char want[KAPPA_CLAIM_ID]; /* the id of ?claim=KEY, or "" */
	int holds;
} claims_ctx;

static void
claim_cb(void *ctx, const char *key, size_t len)
{
	claims_ctx *c = ctx;
	if (c->want[0] && len == strlen(c->want) && !memcmp(key, c->want, len))
		c->holds = 1;
	if (c->n == MAX_CLAIMS_LISTED) {
		c->more = 1;
		return;
	}
	json_array_append_new(c->arr, json_stringn(key, len));
	c->n++;
}

const char *
kp_stream_info_name(const char *path, char *name, size_t cap)
{
	const char *slash = strchr(path, '/');
	size_t n = slash ? (size_t)(slash - path) : 0;
	if (!slash || strcmp(slash, "/info") != 0 || !n || n >= cap)
		return NULL;
	memcpy(name, path, n);
	name[n] = '\0';
	return name;
}

int
kp_http_stream_info(kp_request *r, const char *stream)
{
	kappa_stream_info info;
	kappa_err err;
	int rc = kappa_stream_info_get(r->srv->db, stream, &info, &err);
	if (rc)
		return kp_send_kappa_error(r, rc, &err);
	claims_ctx c = {.arr = json_array()};
	if (!c.arr)
		return KP_HTTP_CLOSE;
	const char *want = kp_http_arg(r->conn, "claim");
	if (want)
		kappa_claim_id(r->srv->db, want, c.want);
	if (info.exists && (rc = kappa_stream_claims(r->srv->db, stream, claim_cb, &c, &err))) {
		json_decref(c.arr);
		return kp_send_kappa_error(r, rc, &err);
	}
	json_t *o =
		json_pack("{s:s, s:b, s:o, s:o, s:I, s:o, s:b}", "stream", stream, "exists",
			  info.exists, "last_version",
			  info.exists ? json_integer((json_int_t)info.last_version) : json_null(),
			  "last_position",
			  info.exists ? json_integer((json_int_t)info.last_position) : json_null(),
			  "event_count", (json_int_t)info.event_count, "claims", c.arr,
			  "claims_truncated", c.more);
	if (o && want)
		json_object_set_new(o, "holds_claim", json_boolean(c.holds));
	return kp_send_json(r, 200, kp_dump(o));
}
