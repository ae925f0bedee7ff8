/*
 * json_scan.c -- walking text that kp_json_check accepted (json.h): object and array
 * iteration, string comparison and decoding, and integers. The text is trusted to be
 * checked, so nothing here reports a syntax error; each walk still stops at the end of the
 * value it was given.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/json.h"
#include "base/json_int.h"

/* The byte after the string whose opening quote is at 's'. */
static const char *
skip_string(const char *s, const char *e)
{
	const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
	for (s++; s < e; s++) {
		while (e - s >= 8) { /* 8 bytes at a time up to a '"' or '\' */
			uint64_t x;
			memcpy(&x, s, 8);
			uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
			if ((((q - ones) & ~q) | ((b - ones) & ~b)) & high)
				break;
			s += 8;
		}
		if (s >= e)
			break;
		if (*s == '"')
			return s + 1;
		if (*s == '\\')
			s++;
	}
	return e;
}

/* Bytes that matter when skipping a container: quotes and brackets. */
static const uint8_t structural[256] = {
	['"'] = 1, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1,
};

/* The byte after the value that starts at 's'. */
static const char *
skip_value(const char *s, const char *e)
{
	size_t depth = 0;
	switch (*s) {
	case '"':
		return skip_string(s, e);
	case 't':
	case 'n':
		return s + 4 <= e ? s + 4 : e;
	case 'f':
		return s + 5 <= e ? s + 5 : e;
	case '{':
	case '[':
		while (s < e) {
			while (s < e && !structural[(unsigned char)*s])
				s++;
			if (s >= e)
				break;
			char c = *s;
			if (c == '"') {
				s = skip_string(s, e);
				continue;
			}
			if (c == '{' || c == '[')
				depth++;
			else if (--depth == 0)
				return s + 1;
			s++;
		}
		return e;
	default:
		while (s < e && ((*s >= '0' && *s <= '9') || *s == '-' || *s == '+' || *s == '.' ||
				 *s == 'e' || *s == 'E'))
			s++;
		return s;
	}
}

/* The value at 's' (its first byte) into 'v'; returns the byte after it. */
static const char *
take_value(const char *s, const char *e, kp_jval *v)
{
	const char *t = skip_value(s, e);
	*v = (kp_jval){kp_jtype_of(*s), s, (size_t)(t - s)};
	return t;
}

void
kp_jiter_init(kp_jiter *it, const kp_jval *v)
{
	if (v->type == KP_JOBJECT || v->type == KP_JARRAY) {
		it->p = v->p + 1;
		it->end = v->p + v->n - 1;
		it->type = v->type;
	} else {
		it->p = it->end = NULL;
		it->type = 0;
	}
}

/* Move to the next member or element of 'it'; returns it, or NULL at the end. */
static const char *
next_item(kp_jiter *it)
{
	const char *s = kp_jskip_ws(it->p, it->end);
	if (s < it->end && *s == ',')
		s = kp_jskip_ws(s + 1, it->end);
	return s < it->end ? s : NULL;
}

int
kp_jiter_member(kp_jiter *it, kp_jval *key, kp_jval *val)
{
	if (it->type != KP_JOBJECT)
		return 0;
	const char *s = next_item(it);
	if (!s)
		return 0;
	s = take_value(s, it->end, key);
	s = kp_jskip_ws(s, it->end);
	s = kp_jskip_ws(s + 1, it->end); /* the ':' */
	it->p = take_value(s, it->end, val);
	return 1;
}

int
kp_jiter_elem(kp_jiter *it, kp_jval *val)
{
	if (it->type != KP_JARRAY)
		return 0;
	const char *s = next_item(it);
	if (!s)
		return 0;
	it->p = take_value(s, it->end, val);
	return 1;
}

int
kp_jstr_eq(const kp_jval *s, const char *lit)
{
	if (s->type != KP_JSTRING)
		return 0;
	const char *p = s->p + 1;
	size_t n = s->n - 2;
	if (!memchr(p, '\\', n))
		return strlen(lit) == n && memcmp(p, lit, n) == 0;
	kp_jdec d;
	kp_jdec_init(&d, p, n);
	for (const unsigned char *l = (const unsigned char *)lit;; l++) {
		int c = kp_jdec_next(&d);
		if (c < 0)
			return *l == '\0';
		if (c != *l)
			return 0;
	}
}

size_t
kp_jstr_decode(const kp_jval *s, char *out)
{
	if (s->type != KP_JSTRING) {
		out[0] = '\0';
		return 0;
	}
	const char *p = s->p + 1, *e = s->p + s->n - 1;
	size_t o = 0;
	while (p < e) {
		const char *b = memchr(p, '\\', (size_t)(e - p));
		size_t run = (size_t)((b ? b : e) - p);
		memcpy(out + o, p, run);
		o += run;
		p += run;
		if (!b)
			break;
		/* one escape (a surrogate pair is one) */
		kp_jdec d;
		size_t len = b[1] != 'u' ? 2 : kp_jhex4(b + 2) - 0xd800u < 0x400u ? 12 : 6;
		kp_jdec_init(&d, b, len);
		for (int c; (c = kp_jdec_next(&d)) >= 0;)
			out[o++] = (char)c;
		p = b + len;
	}
	out[o] = '\0';
	return o;
}

int
kp_jint(const kp_jval *v, int64_t *out)
{
	if (v->type != KP_JNUMBER || v->n == 0)
		return -1;
	const char *p = v->p, *e = v->p + v->n;
	bool neg = *p == '-';
	if (neg)
		p++;
	if (p == e || e - p > 19)
		return -1;
	uint64_t u = 0;
	for (const char *d = p; d < e; d++) {
		if (*d < '0' || *d > '9')
			return -1;
		u = u * 10 + (uint64_t)(*d - '0');
	}
	if (u > (uint64_t)INT64_MAX + neg)
		return -1;
	*out = neg ? (int64_t)(0 - u) : (int64_t)u;
	return 0;
}

size_t
kp_json_compact(const kp_jval *v, char *out)
{
	size_t w = 0;
	int in_string = 0;
	for (size_t i = 0; i < v->n; i++) {
		char c = v->p[i];
		if (in_string) {
			out[w++] = c;
			if (c == '\\' && i + 1 < v->n)
				out[w++] = v->p[++i]; /* the escaped byte, '"' included */
			else if (c == '"')
				in_string = 0;
		} else if (c == '"') {
			out[w++] = c;
			in_string = 1;
		} else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
			out[w++] = c;
		}
	}
	return w;
}
