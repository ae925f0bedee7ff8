/*
 * json_int.h -- what json.c (the validator), json_scan.c (the scanning helpers) and
 * json_write.c share: UTF-8 sequences, a byte-at-a-time decoder of the inside of a string
 * that kp_json_check accepted (so keys and literals are compared decoded without a buffer),
 * whitespace and a value's type. Not for use outside src/base/json*.c.
 */
#ifndef KP_JSON_INT_H
#define KP_JSON_INT_H

#include <stddef.h>
#include <stdint.h>

#include "base/json.h"

/* Decoding state over the bytes between a checked string's quotes. */
typedef struct kp_jdec {
	const char *p, *e;
	uint8_t buf[4]; /* the UTF-8 of the last \u escape (or pair) */
	unsigned bi, bn;
} kp_jdec;

static inline void
kp_jdec_init(kp_jdec *d, const char *p, size_t n)
{
	d->p = p;
	d->e = p + n;
	d->bi = d->bn = 0;
}

/* The value of four hex digits (checked already). */
static inline uint32_t
kp_jhex4(const char *p)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned c = (unsigned char)p[i];
		v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

/* One UTF-8 sequence at 's' (its first byte is 0x80 or more), as jansson's utf8_check_first
 * and utf8_check_full accept it: no overlong forms, no surrogates, nothing above U+10FFFF.
 * Returns the byte after it, or NULL. */
static inline const char *
kp_jutf8_seq(const char *s, const char *e)
{
	unsigned c = (unsigned char)s[0];
	size_t len;
	uint32_t cp;
	if (c < 0xc2 || c > 0xf4)
		return NULL;
	if (c < 0xe0) {
		len = 2;
		cp = c & 0x1f;
	} else if (c < 0xf0) {
		len = 3;
		cp = c & 0x0f;
	} else {
		len = 4;
		cp = c & 0x07;
	}
	if ((size_t)(e - s) < len)
		return NULL;
	for (size_t i = 1; i < len; i++) {
		unsigned b = (unsigned char)s[i];
		if (b < 0x80 || b > 0xbf)
			return NULL;
		cp = (cp << 6) | (b & 0x3f);
	}
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (len == 3 && cp < 0x800) ||
	    (len == 4 && cp < 0x10000))
		return NULL;
	return s + len;
}

/* Write code point 'cp' (at most U+10FFFF, no surrogate) as UTF-8; returns the length. */
static inline unsigned
kp_jutf8(uint32_t cp, uint8_t *o)
{
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xc0 | (cp >> 6));
		o[1] = (uint8_t)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xe0 | (cp >> 12));
		o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (uint8_t)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (uint8_t)(0xf0 | (cp >> 18));
	o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (uint8_t)(0x80 | (cp & 0x3f));
	return 4;
}

/* The next decoded byte, or -1 at the end. */
static inline int
kp_jdec_next(kp_jdec *d)
{
	if (d->bi < d->bn)
		return d->buf[d->bi++];
	if (d->p >= d->e)
		return -1;
	unsigned char c = (unsigned char)*d->p++;
	if (c != '\\')
		return c;
	c = (unsigned char)*d->p++;
	switch (c) {
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'u':
		break;
	default: /* " \ / */
		return c;
	}
	uint32_t cp = kp_jhex4(d->p);
	d->p += 4;
	if (cp >= 0xd800 && cp <= 0xdbff) { /* a checked high surrogate has its low one */
		cp = 0x10000 + ((cp - 0xd800) << 10) + (kp_jhex4(d->p + 2) - 0xdc00);
		d->p += 6;
	}
	d->bn = kp_jutf8(cp, d->buf);
	d->bi = 1;
	return d->buf[0];
}

/* Past JSON whitespace (space, LF, CR, tab). */
static inline const char *
kp_jskip_ws(const char *s, const char *e)
{
	while (s < e && (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t'))
		s++;
	return s;
}

/* The type of the value whose first byte is 'c' (of checked text). */
static inline int
kp_jtype_of(char c)
{
	switch (c) {
	case '{':
		return KP_JOBJECT;
	case '[':
		return KP_JARRAY;
	case '"':
		return KP_JSTRING;
	case 't':
		return KP_JTRUE;
	case 'f':
		return KP_JFALSE;
	case 'n':
		return KP_JNULL;
	default:
		return KP_JNUMBER;
	}
}

#endif
