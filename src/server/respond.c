/*
 * respond.c -- the server's answers: JSON bodies, errors, events as JSON, query arguments
 * (through the connection engine, http.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "server/server_int.h"

int
kp_send_json(kp_request *r, unsigned status, char *body)
{
	if (!body) /* out of memory: close the connection rather than answer half */
		return KP_HTTP_CLOSE;
	kp_http_hdr h[2] = {{"Content-Type", "application/json"}};
	size_t nh = 1;
	if (status == 401)
		h[nh++] = (kp_http_hdr){"WWW-Authenticate", "Bearer realm=\"kappa\""};
	if (status == 503 || status == 429)
		h[nh++] = (kp_http_hdr){"Retry-After", "1"};
	if (status == 405 && r->allow)
		h[nh++] = (kp_http_hdr){"Allow", r->allow};
	if (r->close)
		kp_http_close_after(r->conn);
	int ret = kp_http_respond(r->conn, status, h, nh, body, strlen(body));
	free(body);
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

int
kp_send_error(kp_request *r, unsigned status, const char *code, const char *msg)
{
	return kp_send_json(r, status,
			    kp_dump(json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
					      msg ? msg : "")));
}

int
kp_send_kappa_error(kp_request *r, int rc, const kappa_err *err)
{
	return kp_send_json(r, (unsigned)kp_err_http_status(rc),
			    kp_error_body(rc, err ? err->msg : "", NULL));
}

int
kp_send_not_allowed(kp_request *r, const char *allow)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "use %s", allow);
	r->allow = allow;
	return kp_send_error(r, 405, "method_not_allowed", msg);
}

int
kp_send_overloaded(kp_request *r, unsigned status, const char *code, const char *msg)
{
	atomic_fetch_add(&r->srv->m.overloaded, 1);
	return kp_send_error(r, status, code, msg);
}

/* Append a stored JSON text (valid: checked when it was appended) as it is, but for CR and
 * LF, which valid JSON has only as whitespace between tokens: spaces keep every event on
 * one line (Server-Sent Events and JSON Lines need that). */
static int
put_raw(kp_buf *out, const char *p, size_t n)
{
	if (kp_buf_reserve(out, n))
		return -1;
	char *o = (char *)out->data + out->len;
	for (size_t i = 0; i < n; i++)
		o[i] = p[i] == '\n' || p[i] == '\r' ? ' ' : p[i];
	out->len += n;
	return 0;
}

int
kp_event_write(kp_buf *out, const kappa_event *e)
{
	char iso[KP_TIME_TEXT], num[96];
	kp_format_time_ms(e->time_ms, iso);
	int n = snprintf(num, sizeof(num),
			 "{\"position\":%llu,\"stream\":", (unsigned long long)e->position);
	if (kp_buf_append(out, num, (size_t)n) || kp_json_escape(out, e->stream, e->stream_len))
		return -1;
	n = snprintf(num, sizeof(num),
		     ",\"version\":%llu,\"type\":", (unsigned long long)e->version);
	if (kp_buf_append(out, num, (size_t)n) || kp_json_escape(out, e->type, e->type_len))
		return -1;
	n = snprintf(num, sizeof(num), ",\"time\":\"%s\",\"data\":", iso);
	if (kp_buf_append(out, num, (size_t)n) ||
	    (e->data ? put_raw(out, e->data, e->data_len) : kp_buf_append(out, "null", 4)))
		return -1;
	if (e->subject && (kp_buf_append(out, ",\"subject\":", 11) ||
			   kp_json_escape(out, e->subject, e->subject_len)))
		return -1;
	if (e->metadata && (kp_buf_append(out, ",\"metadata\":", 12) ||
			    put_raw(out, e->metadata, e->metadata_len)))
		return -1;
	if (e->forgotten && kp_buf_append(out, ",\"forgotten\":true", 17))
		return -1;
	return kp_buf_append(out, "}", 1);
}

int
kp_arg_u64(kp_hconn *c, const char *name, uint64_t def, uint64_t max, uint64_t *out)
{
	return kp_parse_arg_u64(kp_http_arg(c, name), def, max, out);
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
