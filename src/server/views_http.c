/*
 * views_http.c -- GET /views, GET /views/{v} (with its named queries and their
 * parameters), GET /views/{v}/queries/{q}, POST /views/{v}/sql, POST /views/{v}/rebuild and
 * GET /health/ready.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/crc32c.h"
#include "base/err.h"
#include "server/server_int.h"

static json_t *
status_json(const kappa_view_status *st)
{
	json_t *o =
		json_pack("{s:s, s:s, s:I, s:I, s:f}", "name", st->name, "state",
			  kappa_view_state_name(st->state), "position", (json_int_t)st->position,
			  "lag", (json_int_t)st->lag, "events_per_s", st->events_per_s);
	if (!o)
		return NULL;
	if (st->state == KAPPA_VIEW_REBUILDING)
		json_object_set_new(o, "rebuild_position",
				    json_integer((json_int_t)st->rebuild_position));
	if (st->state == KAPPA_VIEW_FAILED)
		json_object_set_new(o, "error",
				    json_pack("{s:I, s:s, s:s}", "position",
					      (json_int_t)st->error_position, "type",
					      st->error_type, "message", st->error));
	if (st->load_error[0])
		json_object_set_new(o, "load_error", json_string(st->load_error));
	return o;
}

static void
list_cb(void *ctx, const kappa_view_status *st)
{
	json_array_append_new(ctx, status_json(st));
}

static void
not_live_cb(void *ctx, const kappa_view_status *st)
{
	if (st->state != KAPPA_VIEW_LIVE && st->state != KAPPA_VIEW_STOPPED)
		json_array_append_new(ctx, status_json(st));
}

int
kp_http_ready(kp_request *r)
{
	kappa_err err;
	json_t *arr = json_array();
	kappa_views_list(r->srv->db, not_live_cb, arr, &err);
	int ready = json_array_size(arr) == 0;
	return kp_send_json(r, ready ? 200 : 503,
			    kp_dump(json_pack("{s:b, s:o}", "ready", ready, "not_live", arr)));
}

/* Query-string arguments become the query's parameters, except the ones the server itself
 * reads. */
#define MAX_PARAMS 256
typedef struct param_list {
	const char *keys[MAX_PARAMS], *vals[MAX_PARAMS];
	size_t n;
} param_list;

static int
add_param(void *ctx, const char *key, const char *value)
{
	param_list *pl = ctx;
	if (!strcmp(key, "min_position") || !strcmp(key, "timeout_ms") || pl->n == MAX_PARAMS)
		return 0;
	pl->keys[pl->n] = key;
	pl->vals[pl->n++] = value;
	return 0;
}

/*
 * Named queries are mostly point lookups of a few microseconds: handing them to a worker
 * thread (suspend, queue, wake, resume) costs more than running them. So a query without
 * min_position first runs right here, on the event thread, stopped after INLINE_MS of
 * execution; one that runs out of that budget goes to the workers with its full time limit,
 * and the query is remembered as slow for SLOW_FOR_MS (those go to the workers at once), so
 * a slow query costs an event thread INLINE_MS at most every SLOW_FOR_MS.
 */
#define INLINE_MS 2
#define SLOW_FOR_MS 10000
#define SLOW_SLOTS 64

static _Atomic int64_t slow_until[SLOW_SLOTS]; /* by hash of view and query: a monotonic ms */

static unsigned
slow_slot(const char *view, const char *q)
{
	return kp_crc32c(kp_crc32c(0, view, strlen(view) + 1), q, strlen(q)) % SLOW_SLOTS;
}

/* Try 'q' inline; 1 if answered (*ret set), 0 if it must go to the workers. */
static int
query_inline(kp_request *r, const char *view, const char *q, const char *params, int *ret)
{
	unsigned slot = slow_slot(view, q);
	int64_t now = kp_mono_ms();
	if (atomic_load(&slow_until[slot]) > now)
		return 0;
	char *res = NULL;
	kappa_err err;
	int rc = kappa_query(r->srv->db, view, q, params, KAPPA_NO_POSITION, INLINE_MS, &res, &err);
	if (rc == KAPPA_ETIMEOUT) {
		atomic_store(&slow_until[slot], now + SLOW_FOR_MS);
		return 0;
	}
	*ret = rc ? kp_send_kappa_error(r, rc, &err) : kp_send_json(r, 200, res);
	return 1;
}

static int
run_query(kp_request *r, const char *view, const char *q)
{
	kp_server *s = r->srv;
	uint64_t minpos, timeout;
	if (kp_arg_u64(r->conn, "min_position", KAPPA_NO_POSITION, UINT64_MAX, &minpos) ||
	    kp_arg_u64(r->conn, "timeout_ms", s->o.query_timeout_ms, s->o.query_timeout_ms,
		       &timeout))
		return kp_send_error(r, 400, "invalid_argument",
				     "min_position and timeout_ms must be non-negative integers");
	param_list pl;
	pl.n = 0;
	if (kp_http_args(r->conn, add_param, &pl) > MAX_PARAMS)
		return kp_send_error(r, 400, "invalid_argument", "too many query parameters");
	kp_buf params = {0};
	kp_job *j = calloc(1, sizeof(*j));
	if (!j || kp_params_json(&params, pl.keys, pl.vals, pl.n) < 0 ||
	    !(j->view = strdup(view)) || !(j->query = strdup(q))) {
		kp_buf_release(&params);
		kp_job_free(j);
		return KP_HTTP_CLOSE;
	}
	j->params = (char *)params.data;
	j->min_position = minpos;
	j->timeout_ms = (int64_t)timeout;
	int ret;
	if (minpos == KAPPA_NO_POSITION && query_inline(r, view, q, j->params, &ret)) {
		kp_job_free(j);
		return ret;
	}
	return kp_workers_submit(r, j);
}

static int
run_sql(kp_request *r, const char *view)
{
	json_t *b = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
	json_t *sql = json_object_get(b, "sql"), *params = json_object_get(b, "params");
	json_t *minpos = json_object_get(b, "min_position");
	if (!json_is_string(sql) || (params && !json_is_object(params)) ||
	    strlen(json_string_value(sql)) != json_string_length(sql) ||
	    (minpos && !json_is_null(minpos) &&
	     (!json_is_integer(minpos) || json_integer_value(minpos) < 0))) {
		json_decref(b);
		return kp_send_error(r, 400, "invalid_argument",
				     "the body must be {\"sql\": TEXT, \"params\": {...}, "
				     "\"min_position\": P}");
	}
	kp_job *j = calloc(1, sizeof(*j));
	int ok = j && (j->view = strdup(view)) && (j->sql = strdup(json_string_value(sql))) &&
		 (!params || (j->params = json_dumps(params, JSON_COMPACT)));
	if (ok) {
		j->min_position = json_is_integer(minpos) ? (uint64_t)json_integer_value(minpos)
							  : KAPPA_NO_POSITION;
		j->timeout_ms = (int64_t)r->srv->o.query_timeout_ms;
	}
	json_decref(b);
	if (!ok) {
		kp_job_free(j);
		return KP_HTTP_CLOSE;
	}
	return kp_workers_submit(r, j);
}

int
kp_http_views(kp_request *r, const char *method, const char *rest)
{
	kappa_db *db = r->srv->db;
	kappa_err err;
	char name[KP_PATH_NAME], sub[KP_PATH_SUB], q[KP_PATH_NAME];
	/* rest: "", "NAME", "NAME/queries/Q", "NAME/sql", "NAME/rebuild" */
	int split = kp_split_view_path(rest, name, sub, q);
	if (split == -1)
		return kp_send_error(r, 404, "not_found", "no such view");
	if (split)
		return kp_send_error(r, 404, "not_found", "no such route");
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
	if (!name[0]) {
		if (!get)
			return kp_send_not_allowed(r, "GET, HEAD");
		json_t *arr = json_array();
		kappa_views_list(db, list_cb, arr, &err);
		return kp_send_json(r, 200, kp_dump(json_pack("{s:o}", "views", arr)));
	}
	kappa_view_status st;
	if (!sub[0]) {
		if (!get)
			return kp_send_not_allowed(r, "GET, HEAD");
		int rc = kappa_view_status_get(db, name, &st, &err);
		char *queries = NULL;
		if (!rc)
			rc = kappa_view_queries(db, name, &queries, &err);
		if (rc)
			return kp_send_kappa_error(r, rc, &err);
		json_t *o = status_json(&st), *qs = json_loads(queries, 0, NULL);
		kappa_free(queries);
		if (!o || !qs || json_object_set_new(o, "queries", qs)) {
			if (!o)
				json_decref(qs); /* set_new releases qs itself when it fails */
			json_decref(o);
			return KP_HTTP_CLOSE;
		}
		return kp_send_json(r, 200, kp_dump(o));
	}
	if (!strcmp(sub, "queries") && q[0]) {
		if (!get)
			return kp_send_not_allowed(r, "GET, HEAD");
		return run_query(r, name, q);
	}
	if (!strcmp(sub, "sql") && !q[0]) {
		if (!post)
			return kp_send_not_allowed(r, "POST");
		return run_sql(r, name);
	}
	if (!strcmp(sub, "rebuild") && !q[0]) {
		if (!post)
			return kp_send_not_allowed(r, "POST");
		int rc = kappa_view_rebuild(db, name, &err);
		if (rc == KAPPA_OK && (rc = kappa_view_status_get(db, name, &st, &err)) == KAPPA_OK)
			return kp_send_json(r, 202, kp_dump(status_json(&st)));
		return kp_send_kappa_error(r, rc, &err);
	}
	return kp_send_error(r, 404, "not_found", "no such route");
}
