/*
 * fuzz_route.c -- libFuzzer target: what the server makes of a request line before any
 * handler runs: URL unescaping, the route, a stream name taken from the path (and the
 * library's name check), the /views/... path, numeric query arguments, query parameters
 * and a token's stream prefixes.
 *
 * The input is NUL-separated: method, URL, an argument value, a stream prefix. Invariants:
 * split view paths fit their buffers and hold no '/' in the name, clamped numbers stay
 * within their maximum, a route name always exists.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log/batch.h"
#include "base/json.h"
#include "server/server_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The next NUL-separated part of [*p, end), malloc'ed and NUL-terminated. */
static char *
part(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *z = memchr(*p, 0, (size_t)(end - *p));
	size_t n = z ? (size_t)(z - *p) : (size_t)(end - *p);
	char *s = strndup((const char *)*p, n);
	*p = z ? z + 1 : end;
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;
	char *method = part(&p, end), *url = part(&p, end), *arg = part(&p, end),
	     *prefix = part(&p, end);
	if (!method || !url || !arg || !prefix)
		goto out;
	int nul;
	size_t n = kp_url_unescape(url, &nul);
	if (n != strlen(url) && !nul)
		abort(); /* a NUL came through unreported */
	kp_route r = kp_route_of(url, method);
	if (!kp_route_name(r))
		abort();
	if (r == KP_R_APPEND || r == KP_R_READ_STREAM) {
		const char *name = url + 9;
		kappa_err err;
		if (!kp_bad_stream_path(name))
			kp_check_name((const uint8_t *)name, strlen(name), KP_MAX_STREAM, "stream",
				      &err);
		char *pf[1] = {prefix};
		kp_token t = {.prefixes = pf, .nprefixes = 1};
		kp_stream_allowed(&t, name, strlen(name));
	}
	if (r == KP_R_VIEWS || r == KP_R_VIEW || r == KP_R_QUERY || r == KP_R_SQL ||
	    r == KP_R_REBUILD) {
		char name[KP_PATH_NAME], sub[KP_PATH_SUB], q[KP_PATH_NAME];
		if (kp_split_view_path(url[6] ? url + 7 : "", name, sub, q) == 0 &&
		    (strlen(name) >= KP_PATH_NAME || strlen(sub) >= KP_PATH_SUB ||
		     strlen(q) >= KP_PATH_NAME || strchr(name, '/') || strchr(sub, '/')))
			abort();
	}
	uint64_t v;
	if (kp_parse_arg_u64(arg, 7, 10000, &v) == 0 && v > 10000)
		abort();
	if (kp_parse_arg_u64(arg, 0, UINT64_MAX, &v) == 0 && *arg &&
	    strspn(arg, "0123456789") != strlen(arg))
		abort();
	const char *keys[2] = {arg, "k"}, *vals[2] = {arg, NULL};
	kp_buf params = {0};
	if (kp_params_json(&params, keys, vals, 2) == 0 &&
	    kp_json_check((const char *)params.data, params.len - 1, NULL, NULL, 0, NULL) < 0)
		abort(); /* the parameters are always one JSON object */
	kp_buf_release(&params);
out:
	free(method);
	free(url);
	free(arg);
	free(prefix);
	return 0;
}
