/*
 * route.c -- which handler answers a request, and whether its token may ask.
 *
 * Access (with --auth-file): /health, /health/ready and /audit/key are open; reading
 * streams, the log, subscriptions, views, queries, SQL, metrics and /audit/digest need the
 * read scope (as does /log/segments); appends need append; rebuilds, /audit/verify (and
 * /audit/verify/status) and /subjects/{s}/forget|export
 * need admin. A token limited to stream
 * prefixes reads and appends only those streams, and sees only their events in /log and /subscribe.
 * The console's files (GET / and /console/...) are open: they hold no data.
 */
#include <stdio.h>
#include <string.h>

#include "server/server_int.h"

static const char *const route_names[KP_R_COUNT] = {
	[KP_R_HEALTH] = "health",
	[KP_R_READY] = "ready",
	[KP_R_APPEND] = "append",
	[KP_R_READ_STREAM] = "read_stream",
	[KP_R_READ_LOG] = "read_log",
	[KP_R_SUBSCRIBE] = "subscribe",
	[KP_R_VIEWS] = "views",
	[KP_R_VIEW] = "view",
	[KP_R_QUERY] = "query",
	[KP_R_SQL] = "sql",
	[KP_R_REBUILD] = "rebuild",
	[KP_R_METRICS] = "metrics",
	[KP_R_AUDIT_DIGEST] = "audit_digest",
	[KP_R_AUDIT_KEY] = "audit_key",
	[KP_R_AUDIT_VERIFY] = "audit_verify",
	[KP_R_SUBJECT_FORGET] = "subject_forget",
	[KP_R_SUBJECT_EXPORT] = "subject_export",
	[KP_R_LOG_SEGMENTS] = "log_segments",
	[KP_R_OTHER] = "other",
};

const char *
kp_route_name(kp_route r)
{
	return r < KP_R_COUNT ? route_names[r] : "other";
}

kp_route
kp_route_of(const char *url, const char *method)
{
	if (!strcmp(url, "/health"))
		return KP_R_HEALTH;
	if (!strcmp(url, "/health/ready"))
		return KP_R_READY;
	if (!strncmp(url, "/streams/", 9) && url[9])
		return !strcmp(method, "POST") ? KP_R_APPEND : KP_R_READ_STREAM;
	if (!strcmp(url, "/log"))
		return KP_R_READ_LOG;
	if (!strcmp(url, "/log/segments"))
		return KP_R_LOG_SEGMENTS;
	if (!strcmp(url, "/subscribe"))
		return KP_R_SUBSCRIBE;
	if (!strcmp(url, "/metrics"))
		return KP_R_METRICS;
	if (!strcmp(url, "/audit/digest"))
		return KP_R_AUDIT_DIGEST;
	if (!strcmp(url, "/audit/key"))
		return KP_R_AUDIT_KEY;
	if (!strcmp(url, "/audit/verify") || !strcmp(url, "/audit/verify/status"))
		return KP_R_AUDIT_VERIFY;
	if (!strncmp(url, "/subjects/", 10)) {
		const char *s = strrchr(url + 10, '/');
		if (s && s > url + 10 && !strcmp(s, "/forget"))
			return KP_R_SUBJECT_FORGET;
		if (s && s > url + 10 && !strcmp(s, "/export"))
			return KP_R_SUBJECT_EXPORT;
	}
	if (!strcmp(url, "/views") || !strcmp(url, "/views/"))
		return KP_R_VIEWS;
	if (!strncmp(url, "/views/", 7)) {
		const char *s = strchr(url + 7, '/');
		if (!s)
			return KP_R_VIEW;
		if (!strncmp(s, "/queries/", 9))
			return KP_R_QUERY;
		if (!strcmp(s, "/sql"))
			return KP_R_SQL;
		if (!strcmp(s, "/rebuild"))
			return KP_R_REBUILD;
	}
	return KP_R_OTHER;
}

static unsigned
scope_needed(kp_route r)
{
	switch (r) {
	case KP_R_HEALTH:
	case KP_R_READY:
	case KP_R_AUDIT_KEY:
	case KP_R_OTHER:
		return 0;
	case KP_R_APPEND:
		return KP_SCOPE_APPEND;
	case KP_R_REBUILD:
	case KP_R_AUDIT_VERIFY:
	case KP_R_SUBJECT_FORGET:
	case KP_R_SUBJECT_EXPORT:
		return KP_SCOPE_ADMIN;
	default:
		return KP_SCOPE_READ;
	}
}

/* 0 if the caller may use the route; otherwise the answer has been queued in *ret. */
int
kp_access_denied(kp_request *r, const char *url, int *ret)
{
	kp_server *s = r->srv;
	unsigned need = scope_needed(r->route);
	if (!s->auth || !need)
		return 0;
	const char *h = kp_http_header(r->conn, "Authorization");
	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		*ret = kp_send_error(r, 401, "unauthorized", "send Authorization: Bearer TOKEN");
		return 1;
	}
	const char *t = h + 7;
	t += strspn(t, " ");
	if (!(r->tok = kp_auth_find(s->auth, t, strlen(t)))) {
		*ret = kp_send_error(r, 401, "unauthorized", "unknown token");
		return 1;
	}
	if (r->route == KP_R_SUBJECT_EXPORT && r->tok->subject && !kp_token_has(r->tok, need)) {
		/* a token for one data subject exports that subject, and only that one */
		size_t n = strlen(r->tok->subject);
		if (!strncmp(url + 10, r->tok->subject, n) && !strcmp(url + 10 + n, "/export"))
			return 0;
	}
	if (!kp_token_has(r->tok, need)) {
		char msg[96];
		snprintf(msg, sizeof(msg), "this token lacks the %s scope",
			 need == KP_SCOPE_APPEND  ? "append"
			 : need == KP_SCOPE_ADMIN ? "admin"
						  : "read");
		*ret = kp_send_error(r, 403, "forbidden", msg);
		return 1;
	}
	if ((r->route == KP_R_APPEND || r->route == KP_R_READ_STREAM) &&
	    !kp_stream_allowed(r->tok, url + 9, strcspn(url + 9, "/"))) {
		*ret = kp_send_error(r, 403, "forbidden", "this token may not use this stream");
		return 1;
	}
	return 0;
}

int
kp_dispatch(kp_request *r, const char *url, const char *method)
{
	int get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
	const char *why;
	char info[KAPPA_MAX_STREAM + 2];
	switch (r->route) {
	case KP_R_HEALTH:
		return get ? kp_send_json(r, 200, strdup("{\"status\":\"ok\"}"))
			   : kp_send_not_allowed(r, "GET, HEAD");
	case KP_R_READY:
		return get ? kp_http_ready(r) : kp_send_not_allowed(r, "GET, HEAD");
	case KP_R_APPEND:
	case KP_R_READ_STREAM:
		if (!get && !post)
			return kp_send_not_allowed(r, "GET, HEAD, POST");
		if (get && kp_stream_info_name(url + 9, info, sizeof(info)))
			return kp_http_stream_info(r, info);
		if ((why = kp_bad_stream_path(url + 9)))
			return kp_send_error(r, 400, "invalid_argument", why);
		return post ? kp_http_append(r, url + 9) : kp_http_read_stream(r, url + 9);
	case KP_R_READ_LOG:
		return get ? kp_http_read_log(r) : kp_send_not_allowed(r, "GET, HEAD");
	case KP_R_SUBSCRIBE:
		return get ? kp_http_subscribe(r) : kp_send_not_allowed(r, "GET, HEAD");
	case KP_R_METRICS:
		return get ? kp_http_metrics(r) : kp_send_not_allowed(r, "GET, HEAD");
	case KP_R_AUDIT_DIGEST:
		return get ? kp_http_audit_digest(r) : kp_send_not_allowed(r, "GET, HEAD");
	case KP_R_AUDIT_KEY:
		return get ? kp_http_audit_key(r) : kp_send_not_allowed(r, "GET, HEAD");
	case KP_R_AUDIT_VERIFY:
		return kp_http_audit_verify(r, url, method);
	case KP_R_LOG_SEGMENTS:
		return get ? kp_http_log_segments(r) : kp_send_not_allowed(r, "GET, HEAD");
	case KP_R_SUBJECT_FORGET:
	case KP_R_SUBJECT_EXPORT: {
		/* /subjects/{s}/forget|export: the subject is what lies between */
		char subject[KAPPA_MAX_SUBJECT + 1];
		size_t n = strlen(url + 10) - 7;
		if (n > KAPPA_MAX_SUBJECT)
			return kp_send_error(r, 400, "invalid_argument",
					     "a subject id is at most 200 bytes");
		memcpy(subject, url + 10, n);
		subject[n] = '\0';
		if (r->route == KP_R_SUBJECT_FORGET)
			return post ? kp_http_forget(r, subject) : kp_send_not_allowed(r, "POST");
		return get ? kp_http_export(r, subject) : kp_send_not_allowed(r, "GET, HEAD");
	}
	case KP_R_VIEWS:
	case KP_R_VIEW:
	case KP_R_QUERY:
	case KP_R_SQL:
	case KP_R_REBUILD:
		return kp_http_views(r, method, url[6] ? url + 7 : "");
	default:
		if (kp_console_path(url))
			return kp_http_console(r, url, method);
		return kp_send_error(r, 404, "not_found", "no such route");
	}
}
