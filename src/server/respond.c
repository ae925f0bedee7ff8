/*
 * respond.c -- the server's answers: JSON bodies, errors, events as JSON, query arguments.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "server/server_int.h"

enum MHD_Result
kp_send_json(kp_request *r, unsigned status, char *body)
{
	if (!body) /* out of memory: close the connection rather than answer half */
		return MHD_NO;
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", "application/json");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"kappa\"");
	if (status == MHD_HTTP_SERVICE_UNAVAILABLE || status == MHD_HTTP_TOO_MANY_REQUESTS)
		MHD_add_response_header(resp, "Retry-After", "1");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED && r->allow)
		MHD_add_response_header(resp, "Allow", r->allow);
	if (r->close)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->sent_status = status;
	if (status >= 500)
		kp_server_log(r->srv, "level=error event=answer route=%s status=%u",
			      kp_route_name(r->route), status);
	return ret;
}

char *
kp_dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return s;
}

char *
kp_error_body(int rc, const char *msg, const kappa_append_result *res)
{
	json_t *e = json_pack("{s:s, s:s}", "code", kappa_strerror(rc), "message", msg ? msg : "");
	if (!e)
		return NULL;
	if (res && rc == KAPPA_EWRONG_VERSION)
		json_object_set_new(e, "actual_version",
				    res->actual_version < 0 ? json_null()
							    : json_integer(res->actual_version));
	if (res && rc == KAPPA_ECLAIM_TAKEN) {
		json_object_set_new(e, "claim", json_string(res->claim_key));
		json_object_set_new(e, "holder", json_string(res->claim_holder));
	}
	return kp_dump(json_pack("{s:o}", "error", e));
}

enum MHD_Result
kp_send_error(kp_request *r, unsigned status, const char *code, const char *msg)
{
	return kp_send_json(r, status,
			    kp_dump(json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
					      msg ? msg : "")));
}

enum MHD_Result
kp_send_kappa_error(kp_request *r, int rc, const kappa_err *err)
{
	return kp_send_json(r, (unsigned)kp_err_http_status(rc),
			    kp_error_body(rc, err ? err->msg : "", NULL));
}

enum MHD_Result
kp_send_not_allowed(kp_request *r, const char *allow)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "use %s", allow);
	r->allow = allow;
	return kp_send_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", msg);
}

enum MHD_Result
kp_send_overloaded(kp_request *r, unsigned status, const char *code, const char *msg)
{
	atomic_fetch_add(&r->srv->m.overloaded, 1);
	return kp_send_error(r, status, code, msg);
}

/* A stored JSON text as JSON (it is always valid; a string if not, rather than nothing). */
static json_t *
raw_json(const char *p, size_t n)
{
	json_t *j = json_loadb(p, n, JSON_DECODE_ANY, NULL);
	return j ? j : json_stringn(p, n);
}

json_t *
kp_event_json(const kappa_event *e)
{
	char iso[KP_TIME_TEXT];
	kp_format_time_ms(e->time_ms, iso);
	json_t *o = json_object();
	if (!o)
		return NULL;
	json_object_set_new(o, "position", json_integer((json_int_t)e->position));
	json_object_set_new(o, "stream", json_stringn(e->stream, e->stream_len));
	json_object_set_new(o, "version", json_integer((json_int_t)e->version));
	json_object_set_new(o, "type", json_stringn(e->type, e->type_len));
	json_object_set_new(o, "time", json_string(iso));
	json_object_set_new(o, "data", e->data ? raw_json(e->data, e->data_len) : json_null());
	if (e->subject)
		json_object_set_new(o, "subject", json_stringn(e->subject, e->subject_len));
	if (e->metadata)
		json_object_set_new(o, "metadata", raw_json(e->metadata, e->metadata_len));
	if (e->forgotten)
		json_object_set_new(o, "forgotten", json_true());
	return o;
}

int
kp_arg_u64(struct MHD_Connection *c, const char *name, uint64_t def, uint64_t max, uint64_t *out)
{
	return kp_parse_arg_u64(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name), def,
				max, out);
}

int
kp_stream_allowed(const kp_token *t, const char *stream, size_t len)
{
	if (!t || !t->nprefixes)
		return 1;
	for (size_t i = 0; i < t->nprefixes; i++) {
		size_t pl = strlen(t->prefixes[i]);
		if (pl <= len && !memcmp(stream, t->prefixes[i], pl))
			return 1;
	}
	return 0;
}
