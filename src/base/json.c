/*
 * json.c -- kp_json_check, the validator (json.h has the rules it enforces).
 *
 * One pass over the bytes, no recursion: the open containers are a bit per level (object or
 * array), and the keys of the objects still open sit on one stack of spans, each object's
 * after a mark that links to the enclosing object's mark. When an object closes its keys are
 * checked for duplicates (pairwise up to 16 keys, sorted above that) and popped, so memory is
 * bounded by what is open at once. Numbers are range-checked from their digits, exactly as
 * strtoll and strtod would round them, without converting them.
 */
#include "base/json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_int.h"

#define KEYS_INLINE 64	/* key stack entries on the C stack before it moves to the heap */
#define SMALL_OBJECT 16 /* objects with more keys are sorted to find duplicates */

/* A key of an open object: 'p' is the text inside its quotes, 'ne' its length times two plus
 * one when it holds a backslash. A mark (p == NULL) starts an object's keys; its 'ne' is the
 * index of the enclosing object's mark. */
typedef struct key_rec {
	const char *p;
	size_t ne;
} key_rec;

typedef struct parser {
	key_rec *keys; /* inline_keys, or the heap once that is full */
	size_t nkeys, cap;
	size_t mark; /* index of the innermost open object's mark */
	const char *why;
	const char *at;
	uint8_t is_obj[KP_JSON_MAX_DEPTH / 8]; /* bit per open level: an object */
	key_rec inline_keys[KEYS_INLINE];
} parser;

/* Whether byte 'c' stands for itself in a string. */
static bool
plain(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

static const char *
fail(parser *ps, const char *at, const char *why)
{
	ps->at = at;
	ps->why = why;
	return NULL;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
hex4_ok(const char *s)
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(s[i] | 0x20);
		if (!is_digit(s[i]) && !(c >= 'a' && c <= 'f'))
			return false;
	}
	return true;
}

/* ---- strings ------------------------------------------------------------------------ */

/* The escape whose backslash is at 's'. Returns the byte after it, or NULL. */
static const char *
scan_escape(parser *ps, const char *s, const char *e)
{
	if (e - s < 2)
		return fail(ps, e, "unexpected end of input");
	switch (s[1]) {
	case '"':
	case '\\':
	case '/':
	case 'b':
	case 'f':
	case 'n':
	case 'r':
	case 't':
		return s + 2;
	case 'u':
		break;
	default:
		return fail(ps, s, "invalid escape");
	}
	if (e - s < 6 || !hex4_ok(s + 2))
		return fail(ps, s, "invalid \\u escape");
	uint32_t cp = kp_jhex4(s + 2);
	if (cp == 0)
		return fail(ps, s, "\\u0000 is not allowed");
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return fail(ps, s, "lone low surrogate");
	if (cp < 0xd800 || cp > 0xdbff)
		return s + 6;
	if (e - s < 12 || s[6] != '\\' || s[7] != 'u' || !hex4_ok(s + 8))
		return fail(ps, s, "high surrogate without a low one");
	uint32_t lo = kp_jhex4(s + 8);
	if (lo < 0xdc00 || lo > 0xdfff)
		return fail(ps, s, "high surrogate without a low one");
	return s + 12;
}

/* Whether any of the 8 bytes in 'x' is special in a string: '"', '\', below 0x20 or above
 * 0x7f. Exact: the borrows of the subtractions only reach past a byte that matches. */
static bool
has_special(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
	uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
	return (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x) | x) & high;
}

/* The string whose opening quote is at 's'. OUT: '*esc' whether it holds an escape. Returns
 * the byte after the closing quote, or NULL. */
static const char *
scan_string(parser *ps, const char *s, const char *e, bool *esc)
{
	s++;
	for (;;) {
		while (e - s >= 8) {
			uint64_t x;
			memcpy(&x, s, 8);
			if (has_special(x))
				break;
			s += 8;
		}
		while (s < e && plain((unsigned char)*s))
			s++;
		if (s >= e)
			return fail(ps, e, "unexpected end of input");
		unsigned char c = (unsigned char)*s;
		if (c == '"')
			return s + 1;
		if (c == '\\') {
			*esc = true;
			s = scan_escape(ps, s, e);
		} else if (c < 0x20) {
			return fail(ps, s, "control character in string");
		} else if (c >= 0x80) {
			const char *t = kp_jutf8_seq(s, e);
			if (!t)
				return fail(ps, s, "invalid utf-8");
			s = t;
		}
		if (!s)
			return NULL;
	}
}

/* ---- numbers ------------------------------------------------------------------------ */

/* 2^1024 - 2^970, the midpoint between DBL_MAX and 2^1024: strtod rounds a decimal at or
 * above it to infinity (the tie goes to the even 2^1024), i.e. reports ERANGE overflow. */
static const char dbl_limit[] = "1797693134862315807937289714053034150799341327100378269361737789"
				"8044496829276475094664901797758720709633028641669288791094655554"
				"7851940402630657488671505820681908902000708383676273854845817711"
				"5317644757302700698555713669596228429148198608349364752927190741"
				"68444365510704342711559699508093042880177904174497792";

/* Whether the real with integer digits [ib, ie), fraction digits [fb, fe) (none: fb == fe)
 * and exponent 'ex' (saturated) overflows a double. */
static bool
real_overflows(const char *ib, const char *ie, const char *fb, const char *fe, int64_t ex)
{
	/* The value is 0.S x 10^x, S its digits from the first non-zero one: two runs of text,
	 * [seg[0], seg[1]) and [seg[2], seg[3]). */
	const char *seg[4] = {ib, ie, fb, fe};
	int64_t x = (int64_t)(ie - ib) + ex;
	if (*ib == '0') { /* the integer part is 0 (no other may start with one) */
		const char *d = fb;
		for (x--; d < fe && *d == '0'; d++)
			x--;
		if (d == fe)
			return false; /* zero */
		seg[0] = seg[1] = d;
		seg[2] = d;
	}
	if (x != 309)
		return x > 309;
	size_t i = 0, lim = sizeof(dbl_limit) - 1;
	for (int r = 0; r < 4; r += 2)
		for (const char *d = seg[r]; d < seg[r + 1]; d++, i++) {
			if (i == lim)
				return true; /* above */
			if (*d != dbl_limit[i])
				return *d > dbl_limit[i];
		}
	return i == lim; /* equal, or S ran out first: below (the limit ends in 2) */
}

/* The number whose first byte ('-' or a digit) is at 's'. Returns the byte after it, or
 * NULL. */
static const char *
scan_number(parser *ps, const char *s, const char *e)
{
	const char *start = s;
	bool neg = *s == '-';
	if (neg)
		s++;
	const char *ib = s;
	if (s == e || !is_digit(*s))
		return fail(ps, start, "invalid number");
	if (*s == '0') {
		s++;
		if (s < e && is_digit(*s))
			return fail(ps, start, "invalid number");
	} else {
		while (s < e && is_digit(*s))
			s++;
	}
	const char *ie = s, *fb = s, *fe = s;
	bool real = false;
	int64_t ex = 0;
	if (s < e && *s == '.') {
		s++;
		if (s == e || !is_digit(*s))
			return fail(ps, start, "invalid number");
		fb = s;
		while (s < e && is_digit(*s))
			s++;
		fe = s;
		real = true;
	}
	if (s < e && (*s == 'e' || *s == 'E')) {
		s++;
		bool eneg = s < e && *s == '-';
		if (s < e && (*s == '-' || *s == '+'))
			s++;
		if (s == e || !is_digit(*s))
			return fail(ps, start, "invalid number");
		for (; s < e && is_digit(*s); s++)
			if (ex < 1000000000000000)
				ex = ex * 10 + (*s - '0');
		if (eneg)
			ex = -ex;
		real = true;
	}
	if (real) {
		if (real_overflows(ib, ie, fb, fe, ex))
			return fail(ps, start, "real number overflow");
		return s;
	}
	size_t nd = (size_t)(ie - ib);
	if (nd > 19 ||
	    (nd == 19 && memcmp(ib, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0))
		return fail(ps, start, neg ? "too big negative integer" : "too big integer");
	return s;
}

/* ---- duplicate keys ----------------------------------------------------------------- */

static size_t
key_len(const key_rec *k)
{
	return k->ne >> 1;
}

/* Order of two keys by their decoded bytes. */
static int
key_cmp(const key_rec *a, const key_rec *b)
{
	if (!((a->ne | b->ne) & 1)) {
		size_t an = key_len(a), bn = key_len(b);
		int c = memcmp(a->p, b->p, an < bn ? an : bn);
		return c ? c : (an > bn) - (an < bn);
	}
	kp_jdec da, db;
	kp_jdec_init(&da, a->p, key_len(a));
	kp_jdec_init(&db, b->p, key_len(b));
	for (;;) {
		int ca = kp_jdec_next(&da), cb = kp_jdec_next(&db);
		if (ca != cb)
			return ca < cb ? -1 : 1;
		if (ca < 0)
			return 0;
	}
}

static bool
key_eq(const key_rec *a, const key_rec *b)
{
	if (!((a->ne | b->ne) & 1))
		return a->ne == b->ne && memcmp(a->p, b->p, key_len(a)) == 0;
	return key_cmp(a, b) == 0;
}

static void
sift_down(key_rec *k, size_t i, size_t n)
{
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			return;
		if (c + 1 < n && key_cmp(&k[c + 1], &k[c]) > 0)
			c++;
		if (key_cmp(&k[i], &k[c]) >= 0)
			return;
		key_rec t = k[i];
		k[i] = k[c];
		k[c] = t;
		i = c;
	}
}

/* Heapsort: O(n log n) comparisons whatever the keys, no allocation. */
static void
sort_keys(key_rec *k, size_t n)
{
	for (size_t i = n / 2; i-- > 0;)
		sift_down(k, i, n);
	for (size_t m = n; m > 1; m--) {
		key_rec t = k[0];
		k[0] = k[m - 1];
		k[m - 1] = t;
		sift_down(k, 0, m - 1);
	}
}

/* Check the 'n' keys at 'k' (one object's) for duplicates; may reorder them. Returns 0, or
 * -1 with the error set at the later of two equal keys. */
static int
check_keys(parser *ps, key_rec *k, size_t n)
{
	if (n <= SMALL_OBJECT) {
		for (size_t j = 1; j < n; j++)
			for (size_t i = 0; i < j; i++)
				if (key_eq(&k[i], &k[j])) {
					fail(ps, k[j].p - 1, "duplicate object key");
					return -1;
				}
		return 0;
	}
	sort_keys(k, n);
	for (size_t i = 1; i < n; i++)
		if (key_cmp(&k[i - 1], &k[i]) == 0) {
			const char *p = k[i - 1].p > k[i].p ? k[i - 1].p : k[i].p;
			fail(ps, p - 1, "duplicate object key");
			return -1;
		}
	return 0;
}

static int
push_key(parser *ps, const char *p, size_t ne, const char *at)
{
	if (ps->nkeys == ps->cap) {
		size_t cap = ps->cap * 2;
		key_rec *k;
		if (ps->keys == ps->inline_keys) {
			k = malloc(cap * sizeof(*k));
			if (k)
				memcpy(k, ps->keys, ps->nkeys * sizeof(*k));
		} else {
			k = realloc(ps->keys, cap * sizeof(*k));
		}
		if (!k) {
			fail(ps, at, "out of memory");
			return -1;
		}
		ps->keys = k;
		ps->cap = cap;
	}
	ps->keys[ps->nkeys++] = (key_rec){p, ne};
	return 0;
}

/* ---- the grammar -------------------------------------------------------------------- */

/* The whole text from 'p' to 'e'. Returns the end of the top value, or NULL. */
static const char *
parse(parser *ps, const char *s, const char *e)
{
	size_t depth = 0; /* open containers */
	const char *top_end = NULL;
	bool esc;
	s = kp_jskip_ws(s, e);
	if (s == e)
		return fail(ps, s, "unexpected end of input");
value: /* a value starts at 's' (not at the end) */
	if (depth >= KP_JSON_MAX_DEPTH)
		return fail(ps, s, "maximum parsing depth reached");
	switch (*s) {
	case '{':
		if (push_key(ps, NULL, ps->mark, s) < 0)
			return NULL;
		ps->mark = ps->nkeys - 1;
		ps->is_obj[depth / 8] |= (uint8_t)(1u << (depth % 8));
		depth++;
		s = kp_jskip_ws(s + 1, e);
		if (s < e && *s == '}')
			goto close;
		goto key;
	case '[':
		ps->is_obj[depth / 8] &= (uint8_t) ~(1u << (depth % 8));
		depth++;
		s = kp_jskip_ws(s + 1, e);
		if (s == e)
			return fail(ps, s, "unexpected end of input");
		if (*s == ']')
			goto close;
		goto value;
	case '"':
		s = scan_string(ps, s, e, &esc);
		break;
	case '-':
	case '0':
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
	case '6':
	case '7':
	case '8':
	case '9':
		s = scan_number(ps, s, e);
		break;
	case 't':
		s = e - s >= 4 && memcmp(s, "true", 4) == 0 ? s + 4 : fail(ps, s, "invalid token");
		break;
	case 'f':
		s = e - s >= 5 && memcmp(s, "false", 5) == 0 ? s + 5 : fail(ps, s, "invalid token");
		break;
	case 'n':
		s = e - s >= 4 && memcmp(s, "null", 4) == 0 ? s + 4 : fail(ps, s, "invalid token");
		break;
	default:
		return fail(ps, s, "invalid token");
	}
	if (!s)
		return NULL;
after: /* a value ended just before 's' */
	if (depth == 0) {
		top_end = s;
		s = kp_jskip_ws(s, e);
		if (s != e)
			return fail(ps, s, "end of input expected");
		return top_end;
	}
	s = kp_jskip_ws(s, e);
	if (s == e)
		return fail(ps, s, "unexpected end of input");
	if (ps->is_obj[(depth - 1) / 8] & (1u << ((depth - 1) % 8))) {
		if (*s == ',') {
			s = kp_jskip_ws(s + 1, e);
			goto key;
		}
		if (*s != '}')
			return fail(ps, s, "',' or '}' expected");
	} else {
		if (*s == ',') {
			s = kp_jskip_ws(s + 1, e);
			if (s == e)
				return fail(ps, s, "unexpected end of input");
			goto value;
		}
		if (*s != ']')
			return fail(ps, s, "',' or ']' expected");
	}
close: /* 's' is at the closing bracket of the innermost container */
	depth--;
	if (*s == '}') {
		size_t m = ps->mark;
		if (check_keys(ps, ps->keys + m + 1, ps->nkeys - m - 1) < 0)
			return NULL;
		ps->mark = ps->keys[m].ne;
		ps->nkeys = m;
	}
	s++;
	goto after;
key: /* a member starts at 's' */
	if (s == e || *s != '"')
		return fail(ps, s, "string or '}' expected");
	esc = false;
	const char *k = s;
	s = scan_string(ps, s, e, &esc);
	if (!s || push_key(ps, k + 1, (size_t)(s - k - 2) * 2 + esc, k) < 0)
		return NULL;
	s = kp_jskip_ws(s, e);
	if (s == e || *s != ':')
		return fail(ps, s, "':' expected");
	s = kp_jskip_ws(s + 1, e);
	if (s == e)
		return fail(ps, s, "unexpected end of input");
	goto value;
}

int
kp_json_check(const char *p, size_t n, kp_jval *top, char *why, size_t whylen, size_t *at)
{
	parser ps;
	ps.keys = ps.inline_keys;
	ps.nkeys = 0;
	ps.cap = KEYS_INLINE;
	ps.mark = 0;
	ps.why = NULL;
	ps.at = p;
	const char *s = p ? p : "";
	const char *e = parse(&ps, s, s + n);
	if (ps.keys != ps.inline_keys)
		free(ps.keys);
	if (!e) {
		if (top)
			*top = (kp_jval){0, NULL, 0};
		if (why && whylen) {
			size_t l = strlen(ps.why);
			l = l < whylen - 1 ? l : whylen - 1;
			memcpy(why, ps.why, l);
			why[l] = '\0';
		}
		if (at)
			*at = (size_t)(ps.at - s);
		return -1;
	}
	if (top) {
		const char *b = s;
		while (*b == ' ' || *b == '\n' || *b == '\r' || *b == '\t')
			b++;
		*top = (kp_jval){kp_jtype_of(*b), b, (size_t)(e - b)};
	}
	return 0;
}
