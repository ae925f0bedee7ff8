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

enum MHD_Result
kp_http_console(kp_request *r, const char *url, const char *method)
{
	if (strcmp(method, "GET") && strcmp(method, "HEAD"))
		return kp_send_not_allowed(r, "GET, HEAD");
	const kp_asset *a = find(url);
	if (!a)
		return kp_send_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such console file");
	const char *inm = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "If-None-Match");
	unsigned status = inm && etag_matches(inm, a->etag) ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK;
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		status == MHD_HTTP_OK ? a->len : 0, (void *)a->data, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", a->type);
	MHD_add_response_header(resp, "ETag", a->etag);
	MHD_add_response_header(resp, "Cache-Control", "no-cache");
	MHD_add_response_header(resp, "Content-Security-Policy", csp);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->sent_status = status;
	return ret;
}
