/*
 * streams.c -- POST /streams/{s} (append), GET /streams/{s} and GET /log (reads).
 *
 * An append is checked here (shape, types, sizes), then handed to kappa_append_async with
 * its connection suspended; the answer resumes the connection, so waiting for the group
 * commit holds no thread. Everything the library checks (names, versions, limits) it
 * answers itself, with nothing written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "server/server_int.h"

/* ---- reads -------------------------------------------------------------------------- */

/* A page of events, streamed: {"events":[...], then where the next page starts: "next" and
 * "head" (log) or "next_version" (stream; reading backward it counts down, and is null once
 * version 0 was read). The JSON is produced a block at a time as the client reads, so a
 * 10,000-event page neither holds a request thread while it is built nor sits whole in
 * memory for a slow reader. An error after the first block cuts the answer short (the
 * client sees invalid JSON); errors before it are ordinary answers. */
typedef struct page {
	kappa_iter *it;
	kappa_db *db;
	const kp_token *tok;
	int by_stream, backward, at_start, count, done;
	uint64_t next;
	kp_buf out;
	size_t off;
} page;

#define PAGE_BLOCK (64 * 1024)

static int
page_fill(page *p)
{
	kappa_event e;
	kappa_err err;
	int rc = 1;
	for (int i = 0; i < 512 && p->out.len < PAGE_BLOCK; i++) {
		if ((rc = kappa_iter_next(p->it, &e, &err)) != 1)
			break;
		p->next = (p->by_stream ? e.version : e.position) + 1;
		if (p->backward) {
			p->at_start = e.version == 0;
			p->next = e.version - !p->at_start;
		}
		if (!kp_stream_allowed(p->tok, e.stream, e.stream_len))
			continue;
		char *text = kp_dump(kp_event_json(&e));
		int ok = text && (!p->count++ || kp_buf_append(&p->out, ",", 1) == 0) &&
			 kp_buf_append(&p->out, text, strlen(text)) == 0;
		free(text);
		if (!ok)
			return -1;
	}
	if (rc < 0)
		return -1;
	if (rc == 0) {
		char tail[96];
		int n;
		if (p->by_stream && p->at_start)
			n = snprintf(tail, sizeof(tail), "],\"next_version\":null}");
		else if (p->by_stream)
			n = snprintf(tail, sizeof(tail), "],\"next_version\":%llu}",
				     (unsigned long long)p->next);
		else
			n = snprintf(tail, sizeof(tail), "],\"next\":%llu,\"head\":%llu}",
				     (unsigned long long)p->next,
				     (unsigned long long)kappa_head(p->db));
		if (kp_buf_append(&p->out, tail, (size_t)n) < 0)
			return -1;
		p->done = 1;
	}
	return 0;
}

static ssize_t
page_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)pos;
	page *p = cls;
	while (p->off == p->out.len) {
		if (p->done)
			return MHD_CONTENT_READER_END_OF_STREAM;
		p->out.len = p->off = 0;
		if (page_fill(p) < 0)
			return MHD_CONTENT_READER_END_WITH_ERROR;
	}
	size_t n = p->out.len - p->off;
	if (n > max)
		n = max;
	memcpy(buf, p->out.data + p->off, n);
	p->off += n;
	return (ssize_t)n;
}

static void
page_free(void *cls)
{
	page *p = cls;
	kappa_iter_free(p->it);
	kp_buf_release(&p->out);
	free(p);
}

static enum MHD_Result
send_events(kp_request *r, kappa_iter *it, int by_stream, int backward, uint64_t from)
{
	page *p = calloc(1, sizeof(*p));
	struct MHD_Response *resp = NULL;
	if (p) {
		p->it = it;
		p->db = r->srv->db;
		p->tok = r->tok;
		p->by_stream = by_stream;
		p->backward = backward;
		p->next = from;
		if (kp_buf_append(&p->out, "{\"events\":[", 11) == 0)
			resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, PAGE_BLOCK,
								 page_reader, p, page_free);
	}
	if (!resp) {
		if (p)
			kp_buf_release(&p->out);
		free(p);
		kappa_iter_free(it);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	r->sent_status = MHD_HTTP_OK;
	return ret;
}

enum MHD_Result
kp_http_read_stream(kp_request *r, const char *stream)
{
	struct MHD_Connection *c = r->conn;
	uint64_t from, limit;
	const char *dir = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "direction");
	int backward = dir && !strcmp(dir, "backward");
	if (kp_arg_u64(c, "from_version", backward ? UINT64_MAX : 0, UINT64_MAX, &from) ||
	    kp_arg_u64(c, "limit", 100, 10000, &limit) ||
	    (dir && !backward && strcmp(dir, "forward")))
		return kp_send_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
				     "from_version and limit must be non-negative integers, "
				     "direction forward or backward");
	kappa_iter *it;
	kappa_err err;
	int rc = kappa_read_stream(r->srv->db, stream, from, limit,
				   backward ? KAPPA_BACKWARD : KAPPA_FORWARD, &it, &err);
	return rc ? kp_send_kappa_error(r, rc, &err) : send_events(r, it, 1, backward, from);
}

enum MHD_Result
kp_http_read_log(kp_request *r)
{
	uint64_t from, limit;
	if (kp_arg_u64(r->conn, "from", 0, UINT64_MAX, &from) ||
	    kp_arg_u64(r->conn, "limit", 1000, 10000, &limit))
		return kp_send_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument",
				     "from and limit must be non-negative integers");
	kappa_iter *it;
	kappa_err err;
	int rc = kappa_read_log(r->srv->db, from, limit, &it, &err);
	return rc ? kp_send_kappa_error(r, rc, &err) : send_events(r, it, 0, 0, from);
}

/* ---- appends ------------------------------------------------------------------------ */

static void
appended(void *ctx, int rc, const kappa_append_result *res, const kappa_err *err)
{
	kp_request *r = ctx;
	kp_server *s = r->srv;
	if (rc == KAPPA_OK) {
		r->status = res->deduplicated ? MHD_HTTP_OK : MHD_HTTP_CREATED;
		/* The hottest answer of the server: formatted directly, not through jansson. */
		if (asprintf(&r->resp,
			     "{\"first_position\":%llu,\"last_position\":%llu,\"version\":%llu,"
			     "\"deduplicated\":%s}",
			     (unsigned long long)res->first_position,
			     (unsigned long long)res->last_position,
			     (unsigned long long)res->version,
			     res->deduplicated ? "true" : "false") < 0)
			r->resp = NULL;
	} else {
		r->status = (unsigned)kp_err_http_status(rc);
		r->resp = kp_error_body(rc, err ? err->msg : "", res);
	}
	r->answered = 1;
	MHD_resume_connection(r->conn);
	atomic_fetch_sub(&s->inflight, 1);
}

/* expected_version: absent/null, "any", "no_stream", "exists" or an integer >= 0. */
static const char *
parse_expected(json_t *ev, int64_t *out)
{
	*out = KAPPA_ANY;
	if (!ev || json_is_null(ev))
		return NULL;
	if (json_is_string(ev)) {
		const char *s = json_string_value(ev);
		if (!strcmp(s, "any"))
			*out = KAPPA_ANY;
		else if (!strcmp(s, "no_stream"))
			*out = KAPPA_NO_STREAM;
		else if (!strcmp(s, "exists"))
			*out = KAPPA_EXISTS;
		else
			return "expected_version must be \"any\", \"no_stream\", \"exists\" or "
			       "an integer";
		return NULL;
	}
	if (json_is_integer(ev)) {
		*out = json_integer_value(ev);
		return *out < 0 ? "expected_version must not be negative" : NULL;
	}
	return "expected_version must be a string or an integer";
}

/* A JSON string member that must not contain NUL (which C strings would cut). */
static int
clean_string(json_t *s)
{
	return json_is_string(s) && strlen(json_string_value(s)) == json_string_length(s);
}

typedef struct append_in {
	kappa_event_in *ev;
	char **texts; /* 2 per event: data, metadata */
	kappa_claim *cl;
	size_t n, m;
} append_in;

static void
append_in_free(append_in *a)
{
	for (size_t i = 0; a->texts && i < 2 * a->n; i++)
		free(a->texts[i]);
	free(a->texts);
	free(a->ev);
	free(a->cl);
}

/* Check the body and build the library's arguments. Returns NULL or why not. */
static const char *
parse_append(json_t *body, append_in *a, int64_t *expected, const char **rid)
{
	const char *why = parse_expected(json_object_get(body, "expected_version"), expected);
	if (why)
		return why;
	json_t *jr = json_object_get(body, "request_id");
	*rid = NULL;
	if (jr && !json_is_null(jr)) {
		if (!clean_string(jr))
			return "request_id must be a string without NUL bytes";
		*rid = json_string_value(jr);
	}
	json_t *events = json_object_get(body, "events");
	json_t *claims = json_object_get(body, "claims");
	if (!json_is_array(events) || json_array_size(events) == 0)
		return "events must be a non-empty array";
	if (claims && !json_is_null(claims) && !json_is_array(claims))
		return "claims must be an array";
	a->n = json_array_size(events);
	a->m = json_is_array(claims) ? json_array_size(claims) : 0;
	/* Counts past the library's limits are refused by it (413); these only bound memory. */
	if (a->n > 1000000 || a->m > 100000)
		return "too many events or claims";
	a->ev = calloc(a->n, sizeof(*a->ev));
	a->texts = calloc(2 * a->n, sizeof(char *));
	a->cl = calloc(a->m ? a->m : 1, sizeof(*a->cl));
	if (!a->ev || !a->texts || !a->cl)
		return "out of memory";
	for (size_t i = 0; i < a->n; i++) {
		json_t *e = json_array_get(events, i);
		json_t *type = json_object_get(e, "type"), *data = json_object_get(e, "data");
		json_t *subj = json_object_get(e, "subject"),
		       *meta = json_object_get(e, "metadata");
		if (!json_is_object(e) || !json_is_string(type))
			return "every event needs a string \"type\"";
		if (!clean_string(type))
			return "\"type\" contains a NUL byte";
		if (!json_is_object(data))
			return "every event's \"data\" must be a JSON object";
		if (subj && !json_is_null(subj) && !clean_string(subj))
			return "\"subject\" must be a string without NUL bytes";
		if (meta && !json_is_null(meta) && !json_is_object(meta))
			return "\"metadata\" must be a JSON object";
		json_t *seal = json_object_get(e, "seal_metadata");
		if (seal && !json_is_boolean(seal))
			return "\"seal_metadata\" must be true or false";
		a->ev[i].seal_metadata = json_is_true(seal);
		a->ev[i].type = json_string_value(type);
		a->ev[i].subject = json_is_string(subj) ? json_string_value(subj) : NULL;
		if (!(a->ev[i].data = a->texts[2 * i] = json_dumps(data, JSON_COMPACT)))
			return "out of memory";
		if (json_is_object(meta) &&
		    !(a->ev[i].metadata = a->texts[2 * i + 1] = json_dumps(meta, JSON_COMPACT)))
			return "out of memory";
	}
	for (size_t i = 0; i < a->m; i++) {
		json_t *x = json_array_get(claims, i);
		json_t *k = json_object_get(x, "claim"), *rel = json_object_get(x, "release");
		if (!json_is_object(x) || json_object_size(x) != 1 ||
		    !(k ? clean_string(k) : clean_string(rel)))
			return "each claim is {\"claim\": KEY} or {\"release\": KEY}";
		a->cl[i].key = json_string_value(k ? k : rel);
		a->cl[i].release = k == NULL;
	}
	return NULL;
}

enum MHD_Result
kp_http_append(kp_request *r, const char *stream)
{
	kp_server *s = r->srv;
	if (atomic_load(&s->inflight) >= (int)s->o.max_inflight_appends)
		return kp_send_overloaded(r, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
					  "too many appends in flight: retry shortly");
	json_error_t je;
	json_t *body = json_loadb(r->body ? r->body : "", r->len, JSON_REJECT_DUPLICATES, &je);
	if (!body || !json_is_object(body)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "the body must be a JSON object%s%s", body ? "" : ": ",
			 body ? "" : je.text);
		json_decref(body);
		return kp_send_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument", msg);
	}
	append_in a = {0};
	int64_t expected;
	const char *rid;
	const char *why = parse_append(body, &a, &expected, &rid);
	enum MHD_Result ret = MHD_YES;
	if (why) {
		ret = kp_send_error(r, MHD_HTTP_BAD_REQUEST, "invalid_argument", why);
	} else if (!kp_server_enter(s, &s->inflight)) {
		ret = kp_send_overloaded(r, MHD_HTTP_SERVICE_UNAVAILABLE, "closed",
					 "the server is stopping");
	} else {
		kappa_err err;
		MHD_suspend_connection(r->conn);
		int rc = kappa_append_async(s->db, stream, expected, rid, a.ev, a.n, a.cl, a.m,
					    appended, r, &err);
		if (rc != KAPPA_OK) /* refused at once: answer through the same path */
			appended(r, rc, &(kappa_append_result){.actual_version = -1}, &err);
	}
	append_in_free(&a);
	json_decref(body);
	return ret;
}
