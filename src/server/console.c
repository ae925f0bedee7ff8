/*
 * console.c -- the web console: GET / (console/index.html) and GET /console/... from the
 * files compiled into kappa (console_assets.h). Every answer carries a strict
 * Content-Security-Policy (scripts, styles and connections from this origin only, nothing
 * inline), nosniff, no referrer and no framing; files are revalidated on each load by their
 * ETag (Cache-Control: no-cache, 304 when unchanged), so a new kappa never runs an old
 * script. The files hold no data, so they need no token: the API calls they make do.
 */
#include <string.h>

#include "server/console_assets.h"
#include "server/server_int.h"

static const char csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
			  "img-src 'self' data: blob:; connect-src 'self'; "
			  "base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

int
kp_console_path(const char *url)
{
	return !strcmp(url, "/") || !strncmp(url, "/console/", 9);
}

static const kp_asset *
find(const char *url)
{
	const char *path = strcmp(url, "/") ? url : "/console/index.html";
	for (size_t i = 0; i < kp_console_nassets; i++)
		if (!strcmp(kp_console_assets[i].path, path))
			return &kp_console_assets[i];
	return NULL;
}

/* Does the If-None-Match header list 'etag' (or "*")? */
static int
etag_matches(const char *inm, const char *etag)
{
	size_t n = strlen(etag);
	for (const char *p = inm; p && *p;) {
		p += strspn(p, " ,\t");
		if (!strncmp(p, "W/", 2))
			p += 2;
		if (*p == '*' || (!strncmp(p, etag, n) && (!p[n] || strchr(" ,\t", p[n]))))
			return 1;
		p = strchr(p, ',');
	}
	return 0;
}

int
kp_http_console(kp_request *r, const char *url, const char *method)
{
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return kp_send_not_allowed(r, "GET, HEAD");
	const kp_asset *a = find(url);
	if (!a)
		return kp_send_error(r, 404, "not_found", "no such console file");
	const char *inm = kp_http_header(r->conn, "If-None-Match");
	unsigned status = inm && etag_matches(inm, a->etag) ? 304 : 200;
	const kp_http_hdr h[] = {
		{"Content-Type", a->type},
		{"ETag", a->etag},
		{"Cache-Control", "no-cache"},
		{"Content-Security-Policy", csp},
		{"X-Content-Type-Options", "nosniff"},
		{"Referrer-Policy", "no-referrer"},
		{"X-Frame-Options", "DENY"},
	};
	int ret = kp_http_respond(r->conn, status, h, sizeof(h) / sizeof(h[0]), a->data,
				  status == 200 ? a->len : 0);
	r->sent_status = status;
	return ret;
}
