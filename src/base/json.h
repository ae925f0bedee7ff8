/*
 * json.h -- a JSON validator and scanner for the hot paths (append bodies, event data):
 * kp_json_check accepts exactly the texts jansson's json_loadb(JSON_DECODE_ANY |
 * JSON_REJECT_DUPLICATES) accepts, without building a tree; the scanning helpers then walk
 * the checked text in place (no copies, no allocation); json_write.c writes values.
 *
 * The one deliberate difference from jansson 2.14: it skips a NUL byte right after a number
 * or a literal ("1\0", "[true\0]" load); kp_json_check rejects every NUL byte outside a
 * string, so checked text never carries one into the log. Inside strings both reject it.
 */
#ifndef KP_JSON_H
#define KP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

/* jansson's JSON_PARSER_MAX_DEPTH: the top value is at depth 1, each container adds one. */
#define KP_JSON_MAX_DEPTH 2048

enum {
	KP_JOBJECT = 1,
	KP_JARRAY,
	KP_JSTRING,
	KP_JNUMBER,
	KP_JTRUE,
	KP_JFALSE,
	KP_JNULL,
};

/* One value inside checked text: its type (0: none) and exact span, strings with their
 * quotes. Borrowed: valid as long as the text it points into. */
typedef struct kp_jval {
	int type;
	const char *p;
	size_t n;
} kp_jval;

/* Validate that the 'n' bytes at 'p' are exactly one JSON value with optional whitespace
 * (space, tab, CR, LF) around it, by jansson's rules: RFC 8259 grammar; strings of valid
 * UTF-8 without raw control bytes or \u0000 and with paired surrogates; integers that fit
 * int64_t and reals that do not overflow a double; at most KP_JSON_MAX_DEPTH levels; no
 * duplicate keys in an object (compared decoded). Time O(n log n) at worst; C stack under
 * 2 KiB. Allocates only when the objects open at once hold more than 64 keys (at most one
 * 24-byte entry per two bytes of input), and frees it before returning.
 * OUT: '*top' (may be NULL): the value's type and span. On failure returns -1, '*top' is
 * zeroed, 'why' (may be NULL; 'whylen' bytes) gets a short lower-case reason ("out of memory"
 * when an allocation failed) and '*at' (may be NULL) the byte offset where it was found.
 * Returns 0 when valid. Thread: safe. */
int kp_json_check(const char *p, size_t n, kp_jval *top, char *why, size_t whylen, size_t *at);

/* Iteration over the members of an object or the elements of an array of checked text. */
typedef struct kp_jiter {
	const char *p;	 /* next member or element (or whitespace and a comma before it) */
	const char *end; /* the closing bracket */
	int type;	 /* the container's type; 0 when the value was neither */
} kp_jiter;

/* Start iterating 'v', a value from checked text (an object or an array; anything else
 * iterates as empty). 'v' must stay valid while 'it' is used. */
void kp_jiter_init(kp_jiter *it, const kp_jval *v);
/* The next member of an object. OUT: '*key' (a string value) and '*val'. Returns 1, or 0
 * at the end (and for an iterator over an array). */
int kp_jiter_member(kp_jiter *it, kp_jval *key, kp_jval *val);
/* The next element of an array. OUT: '*val'. Returns 1, or 0 at the end (and for an
 * iterator over an object). */
int kp_jiter_elem(kp_jiter *it, kp_jval *val);

/* 1 if 's' is a string whose decoded bytes equal the C string 'lit', else 0. */
int kp_jstr_eq(const kp_jval *s, const char *lit);
/* Decode the string 's' into 'out' (room for s->n bytes is always enough) and NUL-terminate
 * it; the decoded string holds no NUL (\u0000 is rejected by kp_json_check). Returns its
 * length; 0 (and an empty 'out') when 's' is not a string. */
size_t kp_jstr_decode(const kp_jval *s, char *out);
/* OUT: '*out' the value of 'v' when it is an integer (no fraction, no exponent) that fits
 * int64_t. Returns 0, or -1 when it is not (and '*out' is untouched). */
int kp_jint(const kp_jval *v, int64_t *out);

/* Copy the checked value 'v' to 'out' (room for v->n bytes) without the whitespace between
 * its tokens (strings are copied as they are). Returns the length written. The same value
 * written with other spacing compacts to the same bytes. */
size_t kp_json_compact(const kp_jval *v, char *out);

/* Append the 'n' bytes at 'p' to 'out' as a JSON string: in quotes, with '"' and '\'
 * escaped, control bytes written as \b \f \n \r \t or \u00XX, valid UTF-8 passed
 * through and each byte that does not start a valid UTF-8 sequence (e.g. SQLite text, which
 * need not be UTF-8) written as U+FFFD, in one pass. Returns 0, or -1 when out of memory
 * ('out' may then hold part of the string). */
int kp_json_escape(kp_buf *out, const char *p, size_t n);
/* The length of the longest prefix of the 'n' bytes at 'p' that is valid UTF-8 (by the rules
 * kp_json_check applies to strings; NUL bytes count as valid): 'n' when all of it is. */
size_t kp_utf8_prefix(const char *p, size_t n);
/* Append 'v' as a JSON integer. Returns 0 or -1 (out of memory). */
int kp_json_i64(kp_buf *out, int64_t v);
/* Append 'v' as a JSON real as jansson writes it ("%.17g", with ".0" when it would read
 * back as an integer, exponents without '+' or leading zeros); null when not finite
 * (JSON has no NaN or infinity). Returns 0 or -1 (out of memory). */
int kp_json_real(kp_buf *out, double v);

#endif
