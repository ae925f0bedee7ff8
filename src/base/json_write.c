/*
 * json_write.c -- writing JSON values into a kp_buf without building a tree: strings
 * (any bytes: what is not UTF-8 becomes U+FFFD), integers and reals, in the
 * same form jansson's compact output gives them, so answers read the same either way.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/json_int.h"

/* The escape of control byte or quote 'c' into 'esc'; returns its length. */
static size_t
escape_byte(unsigned char c, char esc[6])
{
	static const char hex[] = "0123456789ABCDEF";
	static const char short_of[] = {['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r',
					['\t'] = 't', ['"'] = '"',  ['\\'] = '\\'};
	esc[0] = '\\';
	if (c < sizeof(short_of) && short_of[c]) {
		esc[1] = short_of[c];
		return 2;
	}
	memcpy(esc + 1, "u00", 3);
	esc[4] = hex[c >> 4];
	esc[5] = hex[c & 15];
	return 6;
}

int
kp_json_escape(kp_buf *out, const char *p, size_t n)
{
	if (kp_buf_reserve(out, n + 2) < 0)
		return -1;
	out->data[out->len++] = '"';
	const char *run = p, *s = p, *e = p + n;
	while (s < e) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
			s++;
			continue;
		}
		if (c >= 0x80) {
			const char *t = kp_jutf8_seq(s, e);
			if (t) {
				s = t;
				continue;
			}
		}
		char esc[6];
		size_t len = c >= 0x80 ? (memcpy(esc, "\xef\xbf\xbd", 3), 3) /* U+FFFD */
				       : escape_byte(c, esc);
		if (kp_buf_append(out, run, (size_t)(s - run)) < 0 ||
		    kp_buf_append(out, esc, len) < 0)
			return -1;
		run = ++s;
	}
	if (kp_buf_append(out, run, (size_t)(e - run)) < 0 || kp_buf_append(out, "\"", 1) < 0)
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
