/*
 * server.c -- the HTTP/JSON server: routing, request bodies, answers and errors.
 *
 * Endpoints (DESIGN.md): POST/GET /streams/{stream}, GET /log, GET /views, GET /views/{v},
 * GET /views/{v}/queries/{q}, POST /views/{v}/sql, POST /views/{v}/rebuild, GET /health,
 * GET /health/ready. Errors are {"error":{"code","message"}} with the status of the
 * kappa code (base/err.c). An append suspends its connection and resumes it from the
 * answer of kappa_append_async, so waiting for a group commit holds no thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "server/server.h"

struct kp_server {
	kappa_db *db;
	kp_server_options o;
	struct MHD_Daemon *d;
	atomic_int inflight; /* appends waiting for their answer */
};

typedef struct request {
	kp_server *srv;
	struct MHD_Connection *conn;
	char *body;
	size_t len, cap;
	int too_big;
	int answered; /* an async answer is ready in status/resp */
	unsigned status;
	char *resp;
} request;

void
kp_server_options_init(kp_server_options *o)
{
	memset(o, 0, sizeof(*o));
	o->listen = "127.0.0.1:7070";
	o->max_body_bytes = 16u << 20;
	o->max_connections = 1024;
	o->idle_timeout_s = 30;
	o->threads = 4;
}

/* ---- answers ----------------------------------------------------------------------- */

static enum MHD_Result
send_json(struct MHD_Connection *c, unsigned status, char *body)
{
	if (!body)
		return MHD_NO;
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static char *
dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

/* The error body for 'rc' with 'msg', plus details from an append result. */
static char *
error_body(int rc, const char *msg, const kappa_append_result *res)
{
	json_t *e = json_pack("{s:s, s:s}", "code", kappa_strerror(rc), "message", msg ? msg : "");
	if (res && rc == KAPPA_EWRONG_VERSION)
		json_object_set_new(e, "actual_version",
				    res->actual_version < 0 ? json_null()
							    : json_integer(res->actual_version));
	if (res && rc == KAPPA_ECLAIM_TAKEN) {
		json_object_set_new(e, "claim", json_string(res->claim_key));
		json_object_set_new(e, "holder", json_string(res->claim_holder));
	}
	return dump(json_pack("{s:o}", "error", e));
}

static enum MHD_Result
send_error(struct MHD_Connection *c, unsigned status, int rc, const char *msg)
{
	return send_json(c, status, error_body(rc, msg, NULL));
}

static enum MHD_Result
send_kappa_error(struct MHD_Connection *c, int rc, const kappa_err *err)
{
	return send_error(c, (unsigned)kp_err_http_status(rc), rc, err->msg);
}

/* ---- events as JSON ----------------------------------------------------------------- */

static json_t *
raw_json(const char *p, size_t n)
{
	json_t *j = json_loadb(p, n, 0, NULL);
	return j ? j : json_stringn(p, n);
}

static json_t *
event_json(const kappa_event *e)
{
	char iso[KP_TIME_TEXT];
	kp_format_time_ms(e->time_ms, iso);
	json_t *o = json_object();
	json_object_set_new(o, "position", json_integer((json_int_t)e->position));
	json_object_set_new(o, "stream", json_stringn(e->stream, e->stream_len));
	json_object_set_new(o, "version", json_integer((json_int_t)e->version));
	json_object_set_new(o, "type", json_stringn(e->type, e->type_len));
	json_object_set_new(o, "time", json_string(iso));
	json_object_set_new(o, "data", raw_json(e->data, e->data_len));
	if (e->subject)
		json_object_set_new(o, "subject", json_stringn(e->subject, e->subject_len));
	if (e->metadata)
		json_object_set_new(o, "metadata", raw_json(e->metadata, e->metadata_len));
	return o;
}

/* Parse an optional unsigned query argument. Returns 0, or -1 if present and not a number. */
static int
arg_u64(struct MHD_Connection *c, const char *name, uint64_t def, uint64_t max, uint64_t *out)
{
	const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
	*out = def;
	if (!v)
		return 0;
	if (!*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 19)
		return -1;
	*out = strtoull(v, NULL, 10);
	if (*out > max)
		*out = max;
	return 0;
}

static enum MHD_Result
send_events(struct MHD_Connection *c, kappa_iter *it, int by_stream, uint64_t from, kappa_db *db)
{
	json_t *evs = json_array();
	kappa_event e;
	kappa_err err;
	int rc;
	uint64_t next = from;
	while ((rc = kappa_iter_next(it, &e, &err)) == 1) {
		json_array_append_new(evs, event_json(&e));
		next = (by_stream ? e.version : e.position) + 1;
	}
	kappa_iter_free(it);
	if (rc < 0) {
		json_decref(evs);
		return send_kappa_error(c, rc, &err);
	}
	json_t *o = json_pack("{s:o}", "events", evs);
	if (by_stream) {
		json_object_set_new(o, "next_version", json_integer((json_int_t)next));
	} else {
		json_object_set_new(o, "next", json_integer((json_int_t)next));
		json_object_set_new(o, "head", json_integer((json_int_t)kappa_head(db)));
	}
	return send_json(c, MHD_HTTP_OK, dump(o));
}

/* ---- appends ------------------------------------------------------------------------ */

static void
appended(void *ctx, int rc, const kappa_append_result *res, const kappa_err *err)
{
	request *r = ctx;
	if (rc == KAPPA_OK) {
		r->status = res->deduplicated ? MHD_HTTP_OK : MHD_HTTP_CREATED;
		r->resp = dump(json_pack(
			"{s:I, s:I, s:I, s:b}", "first_position", (json_int_t)res->first_position,
			"last_position", (json_int_t)res->last_position, "version",
			(json_int_t)res->version, "deduplicated", res->deduplicated));
	} else {
		r->status = (unsigned)kp_err_http_status(rc);
		r->resp = error_body(rc, err ? err->msg : "", res);
	}
	r->answered = 1;
	struct MHD_Connection *c = r->conn;
	kp_server *s = r->srv;
	MHD_resume_connection(c);
	atomic_fetch_sub(&s->inflight, 1);
}

static enum MHD_Result
append(request *r, const char *stream)
{
	struct MHD_Connection *c = r->conn;
	json_error_t je;
	json_t *body = json_loadb(r->body ? r->body : "", r->len, 0, &je);
	if (!body || !json_is_object(body)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "the body must be a JSON object%s%s", body ? "" : ": ",
			 body ? "" : je.text);
		json_decref(body);
		return send_error(c, MHD_HTTP_BAD_REQUEST, KAPPA_EINVAL, msg);
	}
	const char *why = NULL;
	int64_t expected = KAPPA_ANY;
	json_t *ev = json_object_get(body, "expected_version");
	if (json_is_string(ev)) {
		const char *s = json_string_value(ev);
		expected = !strcmp(s, "any")	     ? KAPPA_ANY
			   : !strcmp(s, "no_stream") ? KAPPA_NO_STREAM
			   : !strcmp(s, "exists")
				   ? KAPPA_EXISTS
				   : (why = "expected_version must be \"any\", "
					    "\"no_stream\", \"exists\" or an integer",
				      0);
	} else if (json_is_integer(ev)) {
		expected = json_integer_value(ev);
		if (expected < 0)
			why = "expected_version must not be negative";
	} else if (ev && !json_is_null(ev)) {
		why = "expected_version must be a string or an integer";
	}
	json_t *rid = json_object_get(body, "request_id");
	if (rid && !json_is_null(rid) && !json_is_string(rid))
		why = "request_id must be a string";
	json_t *events = json_object_get(body, "events");
	json_t *claims = json_object_get(body, "claims");
	if (!json_is_array(events) || json_array_size(events) == 0)
		why = "events must be a non-empty array";
	else if (json_array_size(events) > 100000)
		why = "too many events";
	if (claims && !json_is_null(claims) &&
	    (!json_is_array(claims) || json_array_size(claims) > 1024))
		why = "claims must be an array";
	size_t n = why ? 0 : json_array_size(events);
	size_t m = why || !json_is_array(claims) ? 0 : json_array_size(claims);
	kappa_event_in *in = calloc(n ? n : 1, sizeof(*in));
	char **texts = calloc(2 * n + 1, sizeof(char *));
	kappa_claim *cl = calloc(m ? m : 1, sizeof(*cl));
	for (size_t i = 0; !why && i < n; i++) {
		json_t *e = json_array_get(events, i);
		json_t *type = json_object_get(e, "type"), *data = json_object_get(e, "data");
		json_t *subj = json_object_get(e, "subject"),
		       *meta = json_object_get(e, "metadata");
		if (!json_is_object(e) || !json_is_string(type))
			why = "every event needs a string \"type\"";
		else if (!json_is_object(data))
			why = "every event's \"data\" must be a JSON object";
		else if (subj && !json_is_null(subj) && !json_is_string(subj))
			why = "\"subject\" must be a string";
		else if (meta && !json_is_null(meta) && !json_is_object(meta))
			why = "\"metadata\" must be a JSON object";
		if (why)
			break;
		in[i].type = json_string_value(type);
		in[i].data = texts[2 * i] = json_dumps(data, JSON_COMPACT);
		in[i].subject = json_is_string(subj) ? json_string_value(subj) : NULL;
		if (json_is_object(meta))
			in[i].metadata = texts[2 * i + 1] = json_dumps(meta, JSON_COMPACT);
		if (!in[i].data || (json_is_object(meta) && !in[i].metadata))
			why = "out of memory";
		if (in[i].type && strlen(in[i].type) != json_string_length(type))
			why = "\"type\" contains a NUL byte";
		if (in[i].subject && strlen(in[i].subject) != json_string_length(subj))
			why = "\"subject\" contains a NUL byte";
	}
	for (size_t i = 0; !why && i < m; i++) {
		json_t *x = json_array_get(claims, i);
		json_t *k = json_object_get(x, "claim"), *rel = json_object_get(x, "release");
		if (json_is_string(k) && !rel) {
			cl[i].key = json_string_value(k);
		} else if (json_is_string(rel) && !k) {
			cl[i].key = json_string_value(rel);
			cl[i].release = 1;
		} else {
			why = "each claim is {\"claim\": KEY} or {\"release\": KEY}";
		}
	}
	enum MHD_Result ret;
	if (why) {
		ret = send_error(c, MHD_HTTP_BAD_REQUEST, KAPPA_EINVAL, why);
	} else {
		kappa_err err;
		MHD_suspend_connection(c);
		atomic_fetch_add(&r->srv->inflight, 1);
		int rc = kappa_append_async(r->srv->db, stream, expected,
					    json_is_string(rid) ? json_string_value(rid) : NULL, in,
					    n, cl, m, appended, r, &err);
		if (rc != KAPPA_OK) /* refused at once: answer through the same path */
			appended(r, rc, &(kappa_append_result){.actual_version = -1}, &err);
		ret = MHD_YES;
	}
	for (size_t i = 0; i < 2 * n; i++)
		free(texts[i]);
	free(texts);
	free(in);
	free(cl);
	json_decref(body);
	return ret;
}

/* ---- views -------------------------------------------------------------------------- */

static json_t *
status_json(const kappa_view_status *st)
{
	json_t *o =
		json_pack("{s:s, s:s, s:I, s:I, s:f}", "name", st->name, "state",
			  kappa_view_state_name(st->state), "position", (json_int_t)st->position,
			  "lag", (json_int_t)st->lag, "events_per_s", st->events_per_s);
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

static enum MHD_Result
add_param(void *ctx, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	if (!strcmp(key, "min_position") || !strcmp(key, "timeout_ms"))
		return MHD_YES;
	const char *v = value ? value : "";
	size_t n = strlen(v), d = strspn(v + (v[0] == '-'), "0123456789");
	if (n && d && d + (v[0] == '-') == n && n < 19)
		json_object_set_new(ctx, key, json_integer(strtoll(v, NULL, 10)));
	else
		json_object_set_new(ctx, key, json_string(v));
	return MHD_YES;
}

static enum MHD_Result
views_route(request *r, const char *method, const char *rest)
{
	struct MHD_Connection *c = r->conn;
	kappa_db *db = r->srv->db;
	kappa_err err;
	char name[128] = "", sub[16] = "", q[128] = "";
	/* rest: "", "NAME", "NAME/queries/Q", "NAME/sql", "NAME/rebuild" */
	const char *slash = strchr(rest, '/');
	size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
	if (nl >= sizeof(name))
		return send_error(c, MHD_HTTP_NOT_FOUND, KAPPA_ENOTFOUND, "no such view");
	memcpy(name, rest, nl);
	if (slash) {
		const char *s2 = strchr(slash + 1, '/');
		size_t sl = s2 ? (size_t)(s2 - slash - 1) : strlen(slash + 1);
		if (sl >= sizeof(sub) || (s2 && strlen(s2 + 1) >= sizeof(q)))
			return send_error(c, MHD_HTTP_NOT_FOUND, KAPPA_ENOTFOUND, "no such route");
		memcpy(sub, slash + 1, sl);
		if (s2)
			snprintf(q, sizeof(q), "%s", s2 + 1);
	}
	int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	if (!name[0]) {
		if (!get)
			return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, KAPPA_EINVAL, "use GET");
		json_t *arr = json_array();
		kappa_views_list(db, list_cb, arr, &err);
		return send_json(c, MHD_HTTP_OK, dump(json_pack("{s:o}", "views", arr)));
	}
	kappa_view_status st;
	if (!sub[0]) {
		if (!get)
			return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, KAPPA_EINVAL, "use GET");
		int rc = kappa_view_status_get(db, name, &st, &err);
		return rc ? send_kappa_error(c, rc, &err)
			  : send_json(c, MHD_HTTP_OK, dump(status_json(&st)));
	}
	char *res = NULL;
	int rc;
	if (!strcmp(sub, "queries") && q[0]) {
		if (!get)
			return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, KAPPA_EINVAL, "use GET");
		uint64_t minpos, timeout;
		if (arg_u64(c, "min_position", KAPPA_NO_POSITION, UINT64_MAX, &minpos) ||
		    arg_u64(c, "timeout_ms", 2000, 30000, &timeout))
			return send_error(
				c, MHD_HTTP_BAD_REQUEST, KAPPA_EINVAL,
				"min_position and timeout_ms must be non-negative integers");
		json_t *params = json_object();
		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_param, params);
		char *ptext = dump(params);
		rc = kappa_query(db, name, q, ptext, minpos, (int64_t)timeout, &res, &err);
		free(ptext);
	} else if (!strcmp(sub, "sql") && !q[0]) {
		if (!post)
			return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, KAPPA_EINVAL, "use POST");
		json_t *b = json_loadb(r->body ? r->body : "", r->len, 0, NULL);
		json_t *sql = json_object_get(b, "sql"), *params = json_object_get(b, "params");
		if (!json_is_string(sql) || (params && !json_is_object(params))) {
			json_decref(b);
			return send_error(c, MHD_HTTP_BAD_REQUEST, KAPPA_EINVAL,
					  "the body must be {\"sql\": TEXT, \"params\": {...}}");
		}
		char *ptext = params ? json_dumps(params, JSON_COMPACT) : NULL;
		rc = kappa_sql(db, name, json_string_value(sql), ptext, 0, 0, &res, &err);
		free(ptext);
		json_decref(b);
	} else if (!strcmp(sub, "rebuild") && !q[0]) {
		if (!post)
			return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, KAPPA_EINVAL, "use POST");
		rc = kappa_view_rebuild(db, name, &err);
		if (rc == KAPPA_OK && (rc = kappa_view_status_get(db, name, &st, &err)) == KAPPA_OK)
			return send_json(c, MHD_HTTP_ACCEPTED, dump(status_json(&st)));
	} else {
		return send_error(c, MHD_HTTP_NOT_FOUND, KAPPA_ENOTFOUND, "no such route");
	}
	if (rc)
		return send_kappa_error(c, rc, &err);
	return send_json(c, MHD_HTTP_OK, res);
}

/* ---- routing ------------------------------------------------------------------------ */

static void
ready_cb(void *ctx, const kappa_view_status *st)
{
	if (st->state != KAPPA_VIEW_LIVE && st->state != KAPPA_VIEW_STOPPED)
		json_array_append_new(ctx, status_json(st));
}

static enum MHD_Result
route(request *r, const char *url, const char *method)
{
	struct MHD_Connection *c = r->conn;
	kappa_db *db = r->srv->db;
	kappa_err err;
	int get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	if (!strcmp(url, "/health"))
		return send_json(c, MHD_HTTP_OK, strdup("{\"status\":\"ok\"}"));
	if (!strcmp(url, "/health/ready")) {
		json_t *arr = json_array();
		kappa_views_list(db, ready_cb, arr, &err);
		int ready = json_array_size(arr) == 0;
		return send_json(c, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
				 dump(json_pack("{s:b, s:o}", "ready", ready, "not_live", arr)));
	}
	if (!strncmp(url, "/streams/", 9) && url[9]) {
		const char *stream = url + 9;
		if (post)
			return append(r, stream);
		if (!get)
			return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, KAPPA_EINVAL,
					  "use GET or POST");
		uint64_t from, limit;
		const char *dir =
			MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "direction");
		int backward = dir && !strcmp(dir, "backward");
		if (arg_u64(c, "from_version", backward ? UINT64_MAX : 0, UINT64_MAX, &from) ||
		    arg_u64(c, "limit", 100, 10000, &limit) ||
		    (dir && !backward && strcmp(dir, "forward")))
			return send_error(c, MHD_HTTP_BAD_REQUEST, KAPPA_EINVAL,
					  "from_version and limit must be non-negative integers, "
					  "direction forward or backward");
		kappa_iter *it;
		int rc = kappa_read_stream(db, stream, from, limit,
					   backward ? KAPPA_BACKWARD : KAPPA_FORWARD, &it, &err);
		return rc ? send_kappa_error(c, rc, &err) : send_events(c, it, 1, from, db);
	}
	if (!strcmp(url, "/log")) {
		if (!get)
			return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, KAPPA_EINVAL, "use GET");
		uint64_t from, limit;
		if (arg_u64(c, "from", 0, UINT64_MAX, &from) ||
		    arg_u64(c, "limit", 1000, 10000, &limit))
			return send_error(c, MHD_HTTP_BAD_REQUEST, KAPPA_EINVAL,
					  "from and limit must be non-negative integers");
		kappa_iter *it;
		int rc = kappa_read_log(db, from, limit, &it, &err);
		return rc ? send_kappa_error(c, rc, &err) : send_events(c, it, 0, from, db);
	}
	if (!strcmp(url, "/views") || !strncmp(url, "/views/", 7))
		return views_route(r, method, url[6] ? url + 7 : "");
	return send_error(c, MHD_HTTP_NOT_FOUND, KAPPA_ENOTFOUND, "no such route");
}

static enum MHD_Result
handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
       const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	(void)version;
	kp_server *s = cls;
	request *r = *con_cls;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		r->srv = s;
		r->conn = c;
		*con_cls = r;
		return MHD_YES;
	}
	if (*upload_size) {
		if (!r->too_big && r->len + *upload_size > s->o.max_body_bytes) {
			r->too_big = 1;
		} else if (!r->too_big) {
			if (r->len + *upload_size > r->cap) {
				size_t nc = (r->len + *upload_size) * 2;
				char *nb = realloc(r->body, nc);
				if (!nb)
					return MHD_NO;
				r->body = nb;
				r->cap = nc;
			}
			memcpy(r->body + r->len, upload, *upload_size);
			r->len += *upload_size;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->answered) { /* resumed after an asynchronous append */
		char *resp = r->resp;
		r->resp = NULL;
		return send_json(c, r->status, resp);
	}
	if (r->too_big)
		return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, KAPPA_ETOOBIG,
				  "the request body is too large");
	if (!strcmp(method, "POST") && r->len) {
		const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
		if (!ct || strncmp(ct, "application/json", 16) != 0)
			return send_error(c, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, KAPPA_EINVAL,
					  "the body must be application/json");
	}
	return route(r, url, method);
}

static void
completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)c;
	(void)toe;
	request *r = *con_cls;
	if (!r)
		return;
	free(r->body);
	free(r->resp);
	free(r);
	*con_cls = NULL;
}

int
kp_server_start(kappa_db *db, const kp_server_options *o, kp_server **out, kappa_err *err)
{
	*out = NULL;
	char host[64];
	const char *colon = o->listen ? strrchr(o->listen, ':') : NULL;
	long port = colon ? strtol(colon + 1, NULL, 10) : -1;
	if (!colon || (size_t)(colon - o->listen) >= sizeof(host) || port < 0 || port > 65535)
		return KP_ERR(err, KAPPA_EINVAL, "listen address must be HOST:PORT, got %s",
			      o->listen ? o->listen : "nothing");
	memcpy(host, o->listen, (size_t)(colon - o->listen));
	host[colon - o->listen] = '\0';
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (!strcmp(host, "localhost"))
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return KP_ERR(err, KAPPA_EINVAL, "%s is not an IPv4 address", host);
	if ((ntohl(sa.sin_addr.s_addr) >> 24) != 127)
		return KP_ERR(err, KAPPA_EINVAL,
			      "kappa serve has no authentication yet: it listens on loopback "
			      "(127.0.0.0/8) only, not %s",
			      host);
	kp_server *s = calloc(1, sizeof(*s));
	if (!s)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	s->db = db;
	s->o = *o;
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
					MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG,
				(uint16_t)port, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, &sa,
				MHD_OPTION_NOTIFY_COMPLETED, completed, s,
				MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
				MHD_OPTION_CONNECTION_TIMEOUT, o->idle_timeout_s,
				MHD_OPTION_THREAD_POOL_SIZE, o->threads, MHD_OPTION_END);
	if (!s->d) {
		free(s);
		return KP_ERR(err, KAPPA_EIO, "cannot listen on %s", o->listen);
	}
	*out = s;
	return KAPPA_OK;
}

void
kp_server_stop(kp_server *s)
{
	if (!s)
		return;
	MHD_quiesce_daemon(s->d);
	for (int i = 0; i < 500 && atomic_load(&s->inflight) > 0; i++)
		usleep(10000); /* appends in flight resume their connections: let them */
	MHD_stop_daemon(s->d);
	free(s);
}
