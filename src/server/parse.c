/*
 * parse.c -- the server's parsers of request pieces: URL unescaping, stream names in paths,
 * the /views/... path, numeric query arguments, query parameters, Last-Event-ID and the
 * subscription's type filter.
 *
 * Pure functions over C strings: no sockets, no I/O, nothing global. The handlers
 * call them with what the connection engine hands over, and fuzz/ calls them with anything.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "server/server_int.h"

static int
hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

size_t
kp_url_unescape(char *s, int *nul)
{
	char *w = s;
	*nul = 0;
	for (const char *p = s; *p; p++) {
		int hi, lo;
		if (*p == '%' && (hi = hexval(p[1])) >= 0 && (lo = hexval(p[2])) >= 0) {
			char ch = (char)(hi << 4 | lo);
			if (!ch) {
				*nul = 1;
				ch = '?';
			}
			*w++ = ch;
			p += 2;
		} else {
			*w++ = *p;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

const char *
kp_bad_stream_path(const char *name)
{
	if (strchr(name, '/'))
		return "a stream name used over HTTP cannot contain '/'";
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return "a stream name cannot be \".\" or \"..\"";
	return NULL;
}

int
kp_split_view_path(const char *rest, char name[KP_PATH_NAME], char sub[KP_PATH_SUB],
		   char q[KP_PATH_NAME])
{
	name[0] = sub[0] = q[0] = '\0';
	const char *slash = strchr(rest, '/');
	size_t nl = slash ? (size_t)(slash - rest) : strlen(rest);
	if (nl >= KP_PATH_NAME)
		return -1;
	memcpy(name, rest, nl);
	name[nl] = '\0';
	if (slash) {
		const char *s2 = strchr(slash + 1, '/');
		size_t sl = s2 ? (size_t)(s2 - slash - 1) : strlen(slash + 1);
		if (sl >= KP_PATH_SUB || (s2 && strlen(s2 + 1) >= KP_PATH_NAME))
			return -2;
		memcpy(sub, slash + 1, sl);
		sub[sl] = '\0';
		if (s2)
			snprintf(q, KP_PATH_NAME, "%s", s2 + 1);
	}
	return 0;
}

int
kp_parse_arg_u64(const char *v, uint64_t def, uint64_t max, uint64_t *out)
{
	*out = def;
	if (!v)
		return 0;
	size_t n = strlen(v);
	if (!n || strspn(v, "0123456789") != n || n > 20)
		return -1;
	errno = 0;
	unsigned long long x = strtoull(v, NULL, 10);
	if (errno == ERANGE)
		return -1;
	*out = x > max ? max : x;
	return 0;
}

/* Does 'v' read back the same as a 64-bit integer ("42", "-7"; not "007", "+1", "-0")? */
static int
integer_text(const char *v)
{
	size_t n = strlen(v), neg = v[0] == '-', d = strspn(v + neg, "0123456789");
	char back[32];
	return n && d && d + neg == n && n < 19 &&
	       snprintf(back, sizeof(back), "%lld", strtoll(v, NULL, 10)) > 0 && !strcmp(back, v);
}

int
kp_params_json(kp_buf *out, const char *const *keys, const char *const *vals, size_t n)
{
	char sep = '{';
	for (size_t i = 0; i < n; i++) {
		const char *k = keys[i], *v = vals[i] ? vals[i] : "";
		size_t kn = strlen(k), vn = strlen(v), later = 0;
		for (size_t j = i + 1; j < n && !later; j++)
			later = !strcmp(keys[j], k);
		if (later || kp_utf8_prefix(k, kn) != kn || kp_utf8_prefix(v, vn) != vn)
			continue; /* the last value of a name counts; text that is not UTF-8 none */
		if (kp_buf_append(out, &sep, 1) < 0 || kp_json_escape(out, k, kn) < 0 ||
		    kp_buf_append(out, ":", 1) < 0 ||
		    (integer_text(v) ? kp_buf_append(out, v, vn) : kp_json_escape(out, v, vn)) < 0)
			return -1;
		sep = ',';
	}
	return kp_buf_append(out, sep == '{' ? "{}" : "}", sep == '{' ? 3 : 2); /* with a NUL */
}

int
kp_parse_last_event_id(const char *v, uint64_t *from)
{
	if (!v || !*v)
		return 0;
	size_t n = strlen(v);
	if (strspn(v, "0123456789") != n || n > 19)
		return -1;
	*from = strtoull(v, NULL, 10) + 1;
	return 1;
}

const char *
kp_parse_types(const char *t, char **types, size_t max, size_t *n)
{
	while (t && *t) {
		size_t len = strcspn(t, ",");
		if (len == 0 || len > KAPPA_MAX_TYPE)
			return "types is a comma-separated list of event types";
		if (*n == max)
			return "at most 32 types";
		if (!(types[*n] = strndup(t, len)))
			return "out of memory";
		(*n)++;
		t += len + (t[len] == ',');
	}
	return NULL;
}
