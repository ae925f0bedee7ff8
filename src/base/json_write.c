/*
 * json_write.c -- writing JSON values into a kp_buf without building a tree: strings
 * (kp_json_escape for valid UTF-8, kp_json_text for any bytes), integers and reals, in the
 * same form jansson's compact output gives them, so answers read the same either way.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/json_int.h"

int
kp_json_escape(kp_buf *out, const char *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	if (kp_buf_reserve(out, n + 2) < 0)
		return -1;
	out->data[out->len++] = '"';
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		char esc[6] = {'\\', (char)c, 0, 0, 0, 0};
		size_t len = 2;
		switch (c) {
		case '"':
		case '\\':
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			len = 6;
		}
		if (kp_buf_append(out, p + run, i - run) < 0 || kp_buf_append(out, esc, len) < 0)
			return -1;
		run = i + 1;
	}
	if (kp_buf_append(out, p + run, n - run) < 0 || kp_buf_append(out, "\"", 1) < 0)
		return -1;
	return 0;
}

size_t
kp_utf8_prefix(const char *p, size_t n)
{
	const char *s = p, *e = p + n;
	while (s < e) {
		if ((unsigned char)*s < 0x80) {
			s++;
			continue;
		}
		const char *t = kp_jutf8_seq(s, e);
		if (!t)
			break;
		s = t;
	}
	return (size_t)(s - p);
}

int
kp_json_text(kp_buf *out, const char *p, size_t n)
{
	size_t ok = kp_utf8_prefix(p, n);
	if (ok == n)
		return kp_json_escape(out, p, n);
	if (n > SIZE_MAX / 3)
		return -1;
	char *o = malloc(3 * n), *w = o;
	if (!o)
		return -1;
	for (size_t i = 0; i < n;) {
		size_t k = kp_utf8_prefix(p + i, n - i);
		memcpy(w, p + i, k);
		w += k;
		i += k;
		if (i < n) {
			memcpy(w, "\xef\xbf\xbd", 3); /* U+FFFD for the byte that does not decode */
			w += 3;
			i++;
		}
	}
	int rc = kp_json_escape(out, o, (size_t)(w - o));
	free(o);
	return rc;
}

int
kp_json_i64(kp_buf *out, int64_t v)
{
	char tmp[20], *t = tmp + sizeof(tmp);
	uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
	do
		*--t = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--t = '-';
	return kp_buf_append(out, t, (size_t)(tmp + sizeof(tmp) - t));
}

int
kp_json_real(kp_buf *out, double v)
{
	if (!isfinite(v))
		return kp_buf_append(out, "null", 4);
	char b[40];
	int n = snprintf(b, sizeof(b) - 2, "%.17g", v);
	if (n < 0 || (size_t)n >= sizeof(b) - 2)
		return -1;
	if (!strchr(b, '.') && !strchr(b, 'e')) { /* stays a real when read back */
		memcpy(b + n, ".0", 3);
		n += 2;
	}
	char *x = strchr(b, 'e');
	if (x) { /* "1e+20" -> "1e20", "1e-05" -> "1e-5" */
		char *d = x + 1, *s = d;
		if (*s == '+')
			s++;
		else if (*s == '-')
			d = ++s;
		while (*s == '0' && s[1])
			s++;
		memmove(d, s, strlen(s) + 1);
		n = (int)strlen(b);
	}
	return kp_buf_append(out, b, (size_t)n);
}
