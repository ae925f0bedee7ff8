/*
 * test_json.c -- kp_json_check and the scanning helpers (src/base/json.h): every rule on both
 * sides of its limit, checked against jansson as well (tests/lib/json_diff.h), then
 * thousands of generated and mutated documents where the two must agree on every byte
 * string, the helpers must agree with jansson's tree, and kp_json_escape must round-trip.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "json_diff.h"

/* Check 'n' bytes: returns kp_json_check's result and asserts jansson agrees. */
static int
check_n(const char *p, size_t n, char *why, size_t *at)
{
	char msg[512];
	const char *d = jd_check(p, n, msg, sizeof(msg));
	cr_assert_null(d, "%.*s: %s", (int)(n > 200 ? 200 : n), p, d);
	char w[64];
	size_t a = 0;
	int rc = kp_json_check(p, n, NULL, w, sizeof(w), &a);
	if (why)
		strcpy(why, rc ? w : "");
	if (at)
		*at = a;
	return rc;
}

static void
ok(const char *s)
{
	char why[64];
	cr_assert_eq(check_n(s, strlen(s), why, NULL), 0, "rejected %s: %s", s, why);
}

/* Rejected, with 'reason' in the message. */
static void
bad(const char *s, const char *reason)
{
	char why[64];
	cr_assert_eq(check_n(s, strlen(s), why, NULL), -1, "accepted %s", s);
	cr_assert(strstr(why, reason), "%s: '%s', expected '%s'", s, why, reason);
}

/* ---- grammar ------------------------------------------------------------------------ */

Test(json, lone_values_and_their_spans)
{
	const struct {
		const char *text;
		int type;
		size_t off, len;
	} cases[] = {
		{"1", KP_JNUMBER, 0, 1},	 {" \t\r\n-0.5e+3\n", KP_JNUMBER, 4, 7},
		{"\"\"", KP_JSTRING, 0, 2},	 {" \"a b\" ", KP_JSTRING, 1, 5},
		{"true", KP_JTRUE, 0, 4},	 {"false ", KP_JFALSE, 0, 5},
		{"\nnull", KP_JNULL, 1, 4},	 {"{}", KP_JOBJECT, 0, 2},
		{"[ ]", KP_JARRAY, 0, 3},	 {"\r{ \"a\" : [ 1 , { } ] }\t", KP_JOBJECT, 1, 21},
		{"0", KP_JNUMBER, 0, 1},	 {"-0", KP_JNUMBER, 0, 2},
		{"1E5", KP_JNUMBER, 0, 3},	 {"1e-5", KP_JNUMBER, 0, 4},
		{"12.25E+01", KP_JNUMBER, 0, 9},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		kp_jval v;
		const char *t = cases[i].text;
		ok(t);
		cr_assert_eq(kp_json_check(t, strlen(t), &v, NULL, 0, NULL), 0);
		cr_assert_eq(v.type, cases[i].type, "%s", t);
		cr_assert_eq(v.p, t + cases[i].off, "%s", t);
		cr_assert_eq(v.n, cases[i].len, "%s", t);
	}
}

Test(json, malformed_text_is_rejected)
{
	bad("", "unexpected end of input");
	bad(" \n\t\r", "unexpected end of input");
	bad("01", "invalid number");
	bad("-01", "invalid number");
	bad("-", "invalid number");
	bad("--1", "invalid number");
	bad("1.", "invalid number");
	bad("1.e5", "invalid number");
	bad(".5", "invalid token");
	bad("+1", "invalid token");
	bad("1e", "invalid number");
	bad("1e+", "invalid number");
	bad("1E-x", "invalid number");
	bad("0x10", "end of input expected");
	bad("Infinity", "invalid token");
	bad("NaN", "invalid token");
	bad("tru", "invalid token");
	bad("truex", "end of input expected");
	bad("True", "invalid token");
	bad("nul", "invalid token");
	bad("fals", "invalid token");
	bad("[1,]", "invalid token");
	bad("[,1]", "invalid token");
	bad("{\"a\":1,}", "string or '}' expected");
	bad("{,}", "string or '}' expected");
	bad("[1 2]", "',' or ']' expected");
	bad("{\"a\" 1}", "':' expected");
	bad("{\"a\":1 \"b\":2}", "',' or '}' expected");
	bad("{1:2}", "string or '}' expected");
	bad("{'a':1}", "string or '}' expected");
	bad("{\"a\"}", "':' expected");
	bad("{\"a\":}", "invalid token");
	bad("[", "unexpected end of input");
	bad("[1", "unexpected end of input");
	bad("[1,", "unexpected end of input");
	bad("{", "string or '}' expected");
	bad("{\"a\"", "':' expected");
	bad("{\"a\":", "unexpected end of input");
	bad("{\"a\":1", "unexpected end of input");
	bad("]", "invalid token");
	bad("}", "invalid token");
	bad("[}", "invalid token");
	bad("[1}", "',' or ']' expected");
	bad("{\"a\":1]", "',' or '}' expected");
	bad("\"abc", "unexpected end of input");
	bad("\"abc\\", "unexpected end of input");
	bad("1 2", "end of input expected");
	bad("{}x", "end of input expected");
	bad("{}}", "end of input expected");
	bad("[] []", "end of input expected");
	bad("\"a\"\"b\"", "end of input expected");
	bad("/* c */ 1", "invalid token");
}

Test(json, only_four_whitespace_bytes)
{
	ok(" \t\r\n[ \t\r\n1 \t\r\n, \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n2 \t\r\n} \t\r\n] \t\r\n");
	bad("\f1", "invalid token");
	bad("1\f", "end of input expected");
	bad("\v1", "invalid token");
	bad("[1,\xc2\xa0"
	    "2]",
	    "invalid token");			       /* U+00A0 */
	bad("\xef\xbb\xbf{}", "invalid token");	       /* a byte order mark */
	bad("[1\xe2\x80\xa8]", "',' or ']' expected"); /* U+2028 */
}

Test(json, a_nul_byte_outside_strings_is_always_rejected)
{
	/* jansson skips a NUL right after a number or literal (json.h); kp_json_check does not */
	const struct {
		const char *p;
		size_t n;
	} cases[] = {
		{"1\0", 2}, {"true\0", 5}, {"[1\0]", 4}, {"{\"a\":null\0}", 11}, {"1.5\0 ", 5}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = json_loadb(cases[i].p, cases[i].n, JD_FLAGS, NULL);
		cr_assert_not_null(j, "case %zu: jansson no longer skips the NUL", i);
		json_decref(j);
		cr_assert_eq(kp_json_check(cases[i].p, cases[i].n, NULL, NULL, 0, NULL), -1);
		cr_assert(jd_nul_quirk(cases[i].p, cases[i].n));
	}
	cr_assert_eq(check_n("\0", 1, NULL, NULL), -1);
	cr_assert_eq(check_n("\"a\"\0", 4, NULL, NULL), -1);
	cr_assert_eq(check_n("\"a\0b\"", 5, NULL, NULL), -1);
	cr_assert_eq(check_n("1\0\0", 3, NULL, NULL), -1);
	cr_assert_eq(check_n("[1\0 2]", 6, NULL, NULL), -1);
}

Test(json, error_reports_name_the_offset)
{
	char why[64];
	size_t at = 99;
	kp_jval v = {KP_JARRAY, "x", 1};
	cr_assert_eq(kp_json_check("[1, 2, x]", 9, &v, why, sizeof(why), &at), -1);
	cr_assert_str_eq(why, "invalid token");
	cr_assert_eq(at, 7);
	cr_assert_eq(v.type, 0);
	cr_assert_null(v.p);
	cr_assert_eq(kp_json_check("{\"a\":1,\"a\":2}", 13, NULL, why, sizeof(why), &at), -1);
	cr_assert_str_eq(why, "duplicate object key");
	cr_assert_eq(at, 7);
	cr_assert_eq(kp_json_check("\"ab\x01\"", 5, NULL, why, sizeof(why), &at), -1);
	cr_assert_str_eq(why, "control character in string");
	cr_assert_eq(at, 3);
	/* a short buffer gets a truncated, terminated reason; NULL outputs are allowed */
	char small[8];
	cr_assert_eq(kp_json_check("[", 1, NULL, small, sizeof(small), NULL), -1);
	cr_assert_str_eq(small, "unexpec");
	cr_assert_eq(kp_json_check("[", 1, NULL, NULL, 0, NULL), -1);
	cr_assert_eq(kp_json_check(NULL, 0, NULL, why, sizeof(why), &at), -1);
	cr_assert_eq(at, 0);
}

/* ---- numbers ------------------------------------------------------------------------ */

Test(json, integers_must_fit_int64)
{
	kp_jval v;
	int64_t i;
	ok("9223372036854775807");
	ok("-9223372036854775808");
	ok("[0,-0,1,-1,1000000000000000000,-999999999999999999]");
	bad("9223372036854775808", "too big integer");
	bad("-9223372036854775809", "too big negative integer");
	bad("10000000000000000000", "too big integer");
	bad("[99999999999999999999999999999999]", "too big integer");
	bad("{\"a\":-99999999999999999999}", "too big negative integer");
	/* the same digits as a real are fine */
	ok("9223372036854775808.0");
	ok("9223372036854775808e0");
	ok("-99999999999999999999999999999999.5");

	cr_assert_eq(kp_json_check("9223372036854775807", 19, &v, NULL, 0, NULL), 0);
	cr_assert_eq(kp_jint(&v, &i), 0);
	cr_assert_eq(i, INT64_MAX);
	cr_assert_eq(kp_json_check("-9223372036854775808", 20, &v, NULL, 0, NULL), 0);
	cr_assert_eq(kp_jint(&v, &i), 0);
	cr_assert_eq(i, INT64_MIN);
	cr_assert_eq(kp_json_check("-0", 2, &v, NULL, 0, NULL), 0);
	cr_assert_eq(kp_jint(&v, &i), 0);
	cr_assert_eq(i, 0);
	i = 7;
	const char *not_int[] = {"1.0", "1e2", "-5E-1", "\"1\"", "true", "null", "[1]"};
	for (size_t k = 0; k < sizeof(not_int) / sizeof(not_int[0]); k++) {
		cr_assert_eq(kp_json_check(not_int[k], strlen(not_int[k]), &v, NULL, 0, NULL), 0);
		cr_assert_eq(kp_jint(&v, &i), -1, "%s", not_int[k]);
		cr_assert_eq(i, 7);
	}
}

/* A string of 'n' copies of 'c' (static, at most 4095). */
static const char *
rep(char c, size_t n)
{
	static char b[4][4096];
	static int k;
	char *s = b[k++ % 4];
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

Test(json, reals_must_not_overflow)
{
	char t[8192];
	ok("1e308");
	ok("-1e308");
	bad("1e309", "real number overflow");
	bad("-1e309", "real number overflow");
	ok("1.7976931348623157e308"); /* DBL_MAX */
	ok("1.7976931348623158e308"); /* rounds down to DBL_MAX */
	bad("1.7976931348623159e308", "real number overflow");
	bad("17976931348623159e292", "real number overflow");
	/* exactly halfway between DBL_MAX and 2^1024: the tie rounds to 2^1024, an overflow */
	const char *half = "1797693134862315807937289714053034150799341327100378269361737789"
			   "8044496829276475094664901797758720709633028641669288791094655554"
			   "7851940402630657488671505820681908902000708383676273854845817711"
			   "5317644757302700698555713669596228429148198608349364752927190741"
			   "68444365510704342711559699508093042880177904174497792";
	snprintf(t, sizeof(t), "%s.0", half);
	bad(t, "real number overflow");
	snprintf(t, sizeof(t), "%.308s1.0", half); /* one less in the last digit */
	ok(t);
	snprintf(t, sizeof(t), "%.308s1.%s9", half, rep('9', 400)); /* just below */
	ok(t);
	snprintf(t, sizeof(t), "%s.%s1", half, rep('0', 400)); /* just above */
	bad(t, "real number overflow");
	snprintf(t, sizeof(t), "0.%se309", half); /* the same value as 0.S x 10^309 */
	bad(t, "real number overflow");
	snprintf(t, sizeof(t), "0.%s%se%d", rep('0', 300), half, 309 + 300);
	bad(t, "real number overflow");
	snprintf(t, sizeof(t), "0.%s%.308s1e%d", rep('0', 300), half, 309 + 300);
	ok(t);
	/* underflow is accepted, as strtod's ERANGE towards zero is by jansson */
	ok("1e-400");
	ok("-4.9e-324");
	ok("2e-324");
	ok("1e-99999999999999999999999999");
	ok("0e99999999999999999999999999");
	ok("0.000e400");
	ok("-0.0");
	bad("1e99999999999999999999999999", "real number overflow");
	bad("0.1e311", "real number overflow");
	ok("0.1e309");
	ok("0.01e310");
	snprintf(t, sizeof(t), "%s.5e-100", rep('9', 400)); /* 400 digits down to 10^300 */
	ok(t);
	snprintf(t, sizeof(t), "%s.5", rep('9', 400));
	bad(t, "real number overflow");
	snprintf(t, sizeof(t), "0.%s1e700", rep('0', 400));
	ok(t);
	snprintf(t, sizeof(t), "0.%s1e720", rep('0', 400));
	bad(t, "real number overflow");
}

/* ---- strings ------------------------------------------------------------------------ */

Test(json, string_escapes)
{
	ok("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"");
	ok("\"\\u00e9\\u00E9\\uABCD\\uabcd\\u0001\\u001f\\uffff\"");
	bad("\"\\a\"", "invalid escape");
	bad("\"\\x41\"", "invalid escape");
	bad("\"\\'\"", "invalid escape");
	bad("\"\\U0041\"", "invalid escape");
	bad("\"\\u041\"", "invalid \\u escape");
	bad("\"\\u004g\"", "invalid \\u escape");
	bad("\"\\u", "invalid \\u escape");
	bad("\"\\u0000\"", "\\u0000 is not allowed");
	bad("\"a\\u0000b\"", "\\u0000 is not allowed");
	bad("{\"\\u0000\":1}", "\\u0000 is not allowed");
	ok("\"\\u0001\"");
}

Test(json, surrogates)
{
	ok("\"\\ud83d\\ude00\"");
	ok("\"\\uD800\\uDC00\\uDBFF\\uDFFF\"");
	bad("\"\\ud83d\"", "high surrogate without a low one");
	bad("\"\\ud83dx\"", "high surrogate without a low one");
	bad("\"\\ud83d\\n\"", "high surrogate without a low one");
	bad("\"\\ud83d\\\\ude00\"", "high surrogate without a low one");
	bad("\"\\ud83d\\u0041\"", "high surrogate without a low one");
	bad("\"\\ud83d\\ud83d\\ude00\"", "high surrogate without a low one");
	bad("\"\\ude00\"", "lone low surrogate");
	bad("\"\\ude00\\ud83d\"", "lone low surrogate");
	bad("\"\\ud83d\\ude00\\ude00\"", "lone low surrogate");
	bad("\"\\ud83d\\u", "high surrogate without a low one");
}

Test(json, raw_bytes_in_strings)
{
	char t[8];
	for (int c = 1; c < 0x20; c++) {
		snprintf(t, sizeof(t), "\"%c\"", c);
		bad(t, "control character in string");
	}
	ok("\"\x7f\"");
	ok("\" ~!#$%&'()*+,-./:;<=>?@[]^_`{|}\"");
	/* valid UTF-8 of each length, at the edges of each range */
	ok("\"\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xef\xbf\xbf\"");
	ok("\"\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	/* overlong forms */
	bad("\"\xc0\x80\"", "invalid utf-8");
	bad("\"\xc1\xbf\"", "invalid utf-8");
	bad("\"\xe0\x80\x80\"", "invalid utf-8");
	bad("\"\xe0\x9f\xbf\"", "invalid utf-8");
	bad("\"\xf0\x80\x80\x80\"", "invalid utf-8");
	bad("\"\xf0\x8f\xbf\xbf\"", "invalid utf-8");
	/* UTF-8-encoded surrogates and beyond U+10FFFF */
	bad("\"\xed\xa0\x80\"", "invalid utf-8");
	bad("\"\xed\xbf\xbf\"", "invalid utf-8");
	bad("\"\xf4\x90\x80\x80\"", "invalid utf-8");
	bad("\"\xf5\x80\x80\x80\"", "invalid utf-8");
	bad("\"\xf8\x88\x80\x80\x80\"", "invalid utf-8");
	bad("\"\xff\"", "invalid utf-8");
	bad("\"\xfe\"", "invalid utf-8");
	/* stray and missing continuation bytes */
	bad("\"\x80\"", "invalid utf-8");
	bad("\"\xbf\"", "invalid utf-8");
	bad("\"\xc3\"", "invalid utf-8");
	bad("\"\xc3", "invalid utf-8");
	bad("\"\xe2\x82\"", "invalid utf-8");
	bad("\"\xf0\x9f\x98\"", "invalid utf-8");
	bad("\"\xc3\xc3\xa9\"", "invalid utf-8");
	/* outside strings any byte above 0x7f is an invalid token */
	bad("\xc3\xa9", "invalid token");
	bad("[\xc3\xa9]", "invalid token");
	/* long strings take the 8-bytes-at-a-time path; each special byte at each offset */
	const char specials[] = {'"', '\\', '\x01', '\x1f', '\x80'};
	for (size_t k = 0; k < sizeof(specials); k++)
		for (int off = 0; off < 24; off++) {
			char s[40];
			memset(s, 'a', sizeof(s));
			s[0] = '"';
			s[1 + off] = specials[k];
			s[30] = '"';
			size_t at;
			cr_assert_eq(check_n(s, 31, NULL, &at), -1, "special %zu at %d", k, off);
			cr_assert_eq(at, specials[k] == '"' ? (size_t)off + 2 : (size_t)off + 1,
				     "special %zu at %d", k, off);
		}
}

/* ---- depth -------------------------------------------------------------------------- */

/* 'levels' nested arrays around 'inner' (or nested {"a": ...} objects). */
static char *
nest(size_t levels, const char *inner, int objects)
{
	size_t il = strlen(inner), n = levels * (objects ? 6 : 2) + il;
	char *s = malloc(n + 1), *p = s;
	cr_assert_not_null(s);
	for (size_t i = 0; i < levels; i++) {
		memcpy(p, objects ? "{\"a\":" : "[", objects ? 5 : 1);
		p += objects ? 5 : 1;
	}
	memcpy(p, inner, il);
	p += il;
	for (size_t i = 0; i < levels; i++)
		*p++ = objects ? '}' : ']';
	*p = '\0';
	return s;
}

Test(json, depth_limit_is_janssons)
{
	cr_assert_eq(KP_JSON_MAX_DEPTH, JSON_PARSER_MAX_DEPTH);
	const struct {
		size_t levels;
		const char *inner;
		int objects, valid;
	} cases[] = {
		{2047, "[]", 0, 1}, {2048, "", 0, 1},	{2049, "", 0, 0},   {2047, "1", 0, 1},
		{2048, "1", 0, 0},  {2047, "{}", 1, 1}, {2048, "{}", 1, 0}, {2047, "\"x\"", 1, 1},
		{2048, "0", 1, 0},  {2047, "[]", 1, 1}, {100000, "", 0, 0}, {100000, "1", 1, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *s = nest(cases[i].levels, cases[i].inner, cases[i].objects);
		char why[64];
		int rc = check_n(s, strlen(s), why, NULL);
		cr_assert_eq(rc, cases[i].valid ? 0 : -1, "case %zu", i);
		if (!cases[i].valid)
			cr_assert_str_eq(why, "maximum parsing depth reached", "case %zu", i);
		free(s);
	}
	/* unclosed and very deep: rejected at the limit, not at the end */
	char *s = malloc(1000000);
	cr_assert_not_null(s);
	memset(s, '[', 1000000);
	size_t at;
	cr_assert_eq(check_n(s, 1000000, NULL, &at), -1);
	cr_assert_eq(at, 2048);
	free(s);
}

/* ---- duplicate keys ----------------------------------------------------------------- */

Test(json, duplicate_keys)
{
	bad("{\"a\":1,\"a\":2}", "duplicate object key");
	bad("{\"a\":1,\"\\u0061\":2}", "duplicate object key");
	bad("{\"\\u0061\":1,\"\\u0061\":2}", "duplicate object key");
	bad("{\"\xc3\xa9\":1,\"\\u00e9\":2}", "duplicate object key");
	bad("{\"\\u00E9\":1,\"\\u00e9\":2}", "duplicate object key");
	bad("{\"\xf0\x9f\x98\x80\":1,\"\\ud83d\\ude00\":2}", "duplicate object key");
	bad("{\"a/b\":1,\"a\\/b\":2}", "duplicate object key");
	bad("{\"\\n\":1,\"\\u000a\":2}", "duplicate object key");
	bad("{\"\":1,\"\":2}", "duplicate object key");
	bad("{\"a\":1,\"b\":{\"c\":1},\"a\":2}", "duplicate object key");
	bad("[{\"x\":{\"y\":1,\"y\":2}}]", "duplicate object key");
	ok("{\"a\":1,\"A\":2,\"aa\":3,\"\":4,\"a \":5,\"\\u0062\":6}");
	ok("{\"a\":{\"a\":{\"a\":1}},\"b\":{\"a\":2}}");
	ok("[{\"a\":1},{\"a\":1},{\"a\":{\"a\":1}}]");
	ok("{\"\\u00e9\":1,\"e\\u0301\":2}"); /* no normalisation */
	ok("{\"\\ud83d\\ude00\":1,\"\\ud83d\\ude01\":2}");
}

/* An object with 'k' keys "kI" (escaped as \u006bI when 'escaped'); a duplicate of key
 * 'dup_of' is added at position 'dup_at' when dup_at >= 0. */
static char *
big_object(size_t k, long dup_at, size_t dup_of, int escaped)
{
	size_t cap = k * 32 + 64, n = 0;
	char *s = malloc(cap);
	cr_assert_not_null(s);
	s[n++] = '{';
	for (size_t i = 0; i <= k; i++) {
		if (dup_at >= 0 && (size_t)dup_at == i)
			n += (size_t)snprintf(s + n, cap - n, "%s\"%s%zu\":0", n > 1 ? "," : "",
					      escaped ? "\\u006b" : "k", dup_of);
		if (i < k)
			n += (size_t)snprintf(s + n, cap - n, "%s\"k%zu\":%zu", n > 1 ? "," : "", i,
					      i);
	}
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

Test(json, duplicate_keys_in_big_objects)
{
	const size_t k = 10000;
	char *s = big_object(k, -1, 0, 0);
	ok(s);
	kp_jval v, key, val;
	cr_assert_eq(kp_json_check(s, strlen(s), &v, NULL, 0, NULL), 0);
	kp_jiter it;
	size_t count = 0;
	kp_jiter_init(&it, &v);
	while (kp_jiter_member(&it, &key, &val)) {
		char want[32];
		int64_t i;
		snprintf(want, sizeof(want), "k%zu", count);
		cr_assert(kp_jstr_eq(&key, want));
		cr_assert_eq(kp_jint(&val, &i), 0);
		cr_assert_eq(i, (int64_t)count);
		count++;
	}
	cr_assert_eq(count, k);
	free(s);
	const long at[] = {0, 1, 5000, 9999, 10000};
	const size_t of[] = {0, 9999, 4999, 1, 5000};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		for (int esc = 0; esc < 2; esc++) {
			s = big_object(k, at[i], of[i], esc);
			bad(s, "duplicate object key");
			free(s);
		}
	/* many small objects inside a big one, and a big one at depth */
	char *b = malloc(400000);
	cr_assert_not_null(b);
	size_t n = 0;
	n += (size_t)sprintf(b + n, "[[{");
	for (int i = 0; i < 5000; i++)
		n += (size_t)sprintf(b + n, "%s\"o%d\":{\"a\":1,\"b\":[{\"a\":2}]}", i ? "," : "",
				     i);
	n += (size_t)sprintf(b + n, "}]]");
	ok(b);
	memcpy(b + n - 3, ",\"o7\":1}]]", 11);
	bad(b, "duplicate object key");
	free(b);
}

/* ---- scanning helpers --------------------------------------------------------------- */

Test(json, iteration)
{
	const char *t =
		" {\"a\" : 1 , \"b\":[true, false ,null,[],{}, \"x\\\"]\" ],\"c\":{\"d\":\"e\"},"
		"\"\\u0066\":-2.5e3 } ";
	kp_jval v, key, val, el;
	kp_jiter it, ai;
	cr_assert_eq(kp_json_check(t, strlen(t), &v, NULL, 0, NULL), 0);
	kp_jiter_init(&it, &v);
	cr_assert_eq(kp_jiter_elem(&it, &el), 0); /* an object has no elements */
	cr_assert(kp_jiter_member(&it, &key, &val));
	cr_assert(kp_jstr_eq(&key, "a"));
	cr_assert_eq(val.type, KP_JNUMBER);
	cr_assert_eq(val.n, 1);
	cr_assert(kp_jiter_member(&it, &key, &val));
	cr_assert(kp_jstr_eq(&key, "b"));
	cr_assert_eq(val.type, KP_JARRAY);
	const int types[] = {KP_JTRUE, KP_JFALSE, KP_JNULL, KP_JARRAY, KP_JOBJECT, KP_JSTRING};
	const size_t lens[] = {4, 5, 4, 2, 2, 6};
	size_t i = 0;
	kp_jiter_init(&ai, &val);
	cr_assert_eq(kp_jiter_member(&ai, &key, &el), 0); /* an array has no members */
	kp_jiter_init(&ai, &val);
	while (kp_jiter_elem(&ai, &el)) {
		cr_assert_lt(i, 6);
		cr_assert_eq(el.type, types[i]);
		cr_assert_eq(el.n, lens[i], "element %zu", i);
		i++;
	}
	cr_assert_eq(i, 6);
	cr_assert(kp_jstr_eq(&el, "x\"]"));
	cr_assert(kp_jiter_member(&it, &key, &val));
	cr_assert(kp_jstr_eq(&key, "c"));
	cr_assert_eq(val.type, KP_JOBJECT);
	cr_assert_eq(val.n, 9);
	cr_assert(kp_jiter_member(&it, &key, &val));
	cr_assert(kp_jstr_eq(&key, "f"));
	cr_assert_eq(val.n, 6);
	cr_assert_eq(kp_jiter_member(&it, &key, &val), 0);
	cr_assert_eq(kp_jiter_member(&it, &key, &val), 0);
	/* a scalar iterates as empty */
	kp_jval one = {KP_JNUMBER, "1", 1};
	kp_jiter_init(&it, &one);
	cr_assert_eq(kp_jiter_member(&it, &key, &val), 0);
	cr_assert_eq(kp_jiter_elem(&it, &val), 0);
}

Test(json, string_helpers)
{
	const char *t =
		"[\"plain\", \"a\\u00e9\\n\\\"\\\\\\/\\ud83d\\ude00z\", \"\", 5, \"\xc3\xa9\"]";
	kp_jval v, s;
	kp_jiter it;
	char out[64];
	cr_assert_eq(kp_json_check(t, strlen(t), &v, NULL, 0, NULL), 0);
	kp_jiter_init(&it, &v);
	cr_assert(kp_jiter_elem(&it, &s));
	cr_assert(kp_jstr_eq(&s, "plain"));
	cr_assert_not(kp_jstr_eq(&s, "plai"));
	cr_assert_not(kp_jstr_eq(&s, "plainx"));
	cr_assert_eq(kp_jstr_decode(&s, out), 5);
	cr_assert_str_eq(out, "plain");
	cr_assert(kp_jiter_elem(&it, &s));
	const char *want = "a\xc3\xa9\n\"\\/\xf0\x9f\x98\x80z";
	cr_assert(kp_jstr_eq(&s, want));
	cr_assert_not(kp_jstr_eq(&s, "a\xc3\xa9\n\"\\/\xf0\x9f\x98\x80"));
	cr_assert_not(kp_jstr_eq(&s, "a\xc3\xa9\n\"\\/\xf0\x9f\x98\x80zz"));
	cr_assert_eq(kp_jstr_decode(&s, out), strlen(want));
	cr_assert_str_eq(out, want);
	cr_assert_leq(strlen(want) + 1, s.n);
	cr_assert(kp_jiter_elem(&it, &s));
	cr_assert(kp_jstr_eq(&s, ""));
	cr_assert_not(kp_jstr_eq(&s, "a"));
	cr_assert_eq(kp_jstr_decode(&s, out), 0);
	cr_assert(kp_jiter_elem(&it, &s));
	cr_assert_not(kp_jstr_eq(&s, "5")); /* a number is not a string */
	out[0] = 'x';
	cr_assert_eq(kp_jstr_decode(&s, out), 0);
	cr_assert_eq(out[0], '\0');
	cr_assert(kp_jiter_elem(&it, &s));
	cr_assert(kp_jstr_eq(&s, "\xc3\xa9"));
}

Test(json, escape)
{
	kp_buf b = KP_BUF_INIT;
	cr_assert_eq(kp_json_escape(&b, "", 0), 0);
	cr_assert_eq(b.len, 2);
	cr_assert_eq(memcmp(b.data, "\"\"", 2), 0);
	b.len = 0;
	const char in[] = "a\"b\\c/\b\f\n\r\t\x01\x1f\x7f\xc3\xa9\xf0\x9f\x98\x80";
	const char want[] =
		"\"a\\\"b\\\\c/\\b\\f\\n\\r\\t\\u0001\\u001F\x7f\xc3\xa9\xf0\x9f\x98\x80\"";
	cr_assert_eq(kp_json_escape(&b, in, sizeof(in) - 1), 0);
	cr_assert_eq(b.len, sizeof(want) - 1, "%.*s", (int)b.len, (const char *)b.data);
	cr_assert_eq(memcmp(b.data, want, b.len), 0);
	/* appends after what is there */
	cr_assert_eq(kp_json_escape(&b, "x", 1), 0);
	cr_assert_eq(memcmp(b.data + b.len - 3, "\"x\"", 3), 0);
	/* bytes that are not UTF-8 (a stray continuation, a truncated sequence, an overlong form,
	 * a surrogate) each become U+FFFD; what decodes around them stays */
	b.len = 0;
	const char bad[] = "\x80"
			   "a\xc3\xc0\xaf\xed\xa0\x80\xc3\xa9\xe2\x82";
	const char fixed[] = "\"\xef\xbf\xbd"
			     "a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
			     "\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9\xef\xbf\xbd\xef\xbf\xbd\"";
	cr_assert_eq(kp_json_escape(&b, bad, sizeof(bad) - 1), 0);
	cr_assert_eq(b.len, sizeof(fixed) - 1, "%.*s", (int)b.len, (const char *)b.data);
	cr_assert_eq(memcmp(b.data, fixed, b.len), 0);
	kp_buf_release(&b);
	/* every byte value from 1 to 0x7f, and some UTF-8, through jansson and back */
	char all[160];
	for (int c = 1; c < 0x80; c++)
		all[c - 1] = (char)c;
	memcpy(all + 127, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
	char msg[512];
	const char *d = jd_escape(all, 136, msg, sizeof(msg));
	cr_assert_null(d, "%s", d);
}

/* ---- generated documents against jansson -------------------------------------------- */

static uint64_t rng_state;

static uint32_t
rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static void
put(kp_buf *b, const char *s)
{
	cr_assert_eq(kp_buf_append(b, s, strlen(s)), 0);
}

static void
gen_ws(kp_buf *b)
{
	static const char *ws[] = {"", "", "", " ", "\n", "\t", "\r\n  ", " \f", "\v"};
	put(b, ws[rnd(rnd(20) == 0 ? 9 : 7)]);
}

static void
gen_string(kp_buf *b, int key)
{
	static const char *pieces[] = {
		"a", "k", "e", "\xc3\xa9", "\\u00e9", "\\u0061", "\\n", "\\u000a", "\\\"", "\\\\",
		"\\/", "/", "\\ud83d\\ude00", "\xf0\x9f\x98\x80", "\\u00E9", "\\b\\f\\r\\t",
		"hello world", "\xe2\x82\xac", "\x7f", "0123456789abcdef",
		/* rarely: invalid ones */
		"\\u0000", "\\ud800", "\\udc00", "\x01", "\\x", "\xc0\x80", "\xed\xa0\x80",
		"\xf4\x90\x80\x80", "\xc3", "\\u12", "\x80", "\n"};
	put(b, "\"");
	size_t n = key ? rnd(3) : rnd(6);
	for (size_t i = 0; i < n; i++)
		put(b, pieces[rnd(100) < 95 ? rnd(20) : rnd(32)]);
	put(b, "\"");
}

static void
gen_number(kp_buf *b)
{
	static const char *edge[] = {"9223372036854775807",
				     "9223372036854775808",
				     "-9223372036854775808",
				     "-9223372036854775809",
				     "1e308",
				     "1e309",
				     "-1e309",
				     "1.7976931348623157e308",
				     "1.7976931348623159e308",
				     "1e-400",
				     "-0",
				     "0.0",
				     "4.9e-324",
				     "01",
				     "1.",
				     "-",
				     ".5",
				     "1e",
				     "0.000001e313",
				     "179769313486231580e291",
				     "179769313486231581e291"};
	if (rnd(4) == 0) {
		put(b, edge[rnd(sizeof(edge) / sizeof(edge[0]))]);
		return;
	}
	char t[64];
	int n = 0;
	if (rnd(3) == 0)
		t[n++] = '-';
	int digits = 1 + (int)rnd(rnd(4) == 0 ? 25 : 6);
	for (int i = 0; i < digits; i++)
		t[n++] = (char)('0' + (i == 0 && digits > 1 ? 1 + rnd(9) : rnd(10)));
	if (rnd(3) == 0) {
		t[n++] = '.';
		for (int i = 1 + (int)rnd(5); i > 0; i--)
			t[n++] = (char)('0' + rnd(10));
	}
	if (rnd(3) == 0) {
		t[n++] = rnd(2) ? 'e' : 'E';
		if (rnd(2))
			t[n++] = rnd(2) ? '-' : '+';
		n += snprintf(t + n, sizeof(t) - (size_t)n, "%u", rnd(rnd(2) ? 20 : 400));
	}
	t[n] = '\0';
	put(b, t);
}

static void
gen_value(kp_buf *b, int depth)
{
	static const char *lit[] = {"true", "false", "null"};
	int k = (int)rnd(depth > 6 ? 6 : 8);
	gen_ws(b);
	switch (k) {
	case 0:
	case 1:
		gen_string(b, 0);
		break;
	case 2:
	case 3:
		gen_number(b);
		break;
	case 4:
	case 5:
		put(b, lit[rnd(3)]);
		break;
	case 6: {
		put(b, "{");
		size_t n = rnd(rnd(10) == 0 ? 40 : 6);
		for (size_t i = 0; i < n; i++) {
			if (i)
				put(b, ",");
			gen_ws(b);
			gen_string(b, 1);
			gen_ws(b);
			put(b, ":");
			gen_value(b, depth + 1);
		}
		gen_ws(b);
		put(b, "}");
		break;
	}
	default: {
		put(b, "[");
		size_t n = rnd(6);
		for (size_t i = 0; i < n; i++) {
			if (i)
				put(b, ",");
			gen_value(b, depth + 1);
		}
		gen_ws(b);
		put(b, "]");
		break;
	}
	}
	gen_ws(b);
}

/* Change 'b' in a few random ways. */
static void
mutate(kp_buf *b)
{
	static const char bytes[] = "{}[],:\"\\ -+.eE0123456789tfnu\x00\x01\x7f\x80\xc3\xff\n\t";
	for (int m = 1 + (int)rnd(3); m > 0 && b->len > 0; m--) {
		size_t at = rnd((uint32_t)b->len);
		switch (rnd(5)) {
		case 0: /* replace a byte */
			b->data[at] = (uint8_t)bytes[rnd(sizeof(bytes) - 1)];
			break;
		case 1: /* flip a bit */
			b->data[at] ^= (uint8_t)(1u << rnd(8));
			break;
		case 2: /* delete a byte */
			memmove(b->data + at, b->data + at + 1, b->len - at - 1);
			b->len--;
			break;
		case 3: /* truncate */
			b->len = at;
			break;
		default: /* insert a byte */
			cr_assert_eq(kp_buf_reserve(b, 1), 0);
			memmove(b->data + at + 1, b->data + at, b->len - at);
			b->data[at] = (uint8_t)bytes[rnd(sizeof(bytes) - 1)];
			b->len++;
		}
	}
}

Test(json, differential_against_jansson, .timeout = 120)
{
	const int docs = 100000;
	int accepted = 0, rejected = 0, mismatches = 0;
	char msg[512];
	kp_buf b = KP_BUF_INIT;
	rng_state = 0x9e3779b97f4a7c15u;
	for (int i = 0; i < docs; i++) {
		b.len = 0;
		gen_value(&b, 0);
		if (rnd(3) == 0)
			mutate(&b);
		const char *p = b.len ? (const char *)b.data : "";
		const char *d = jd_check(p, b.len, msg, sizeof(msg));
		if (!d)
			d = jd_escape(p, b.len, msg, sizeof(msg));
		if (d) {
			if (mismatches++ < 20)
				printf("# mismatch on document %d (%zu bytes): %s\n#   %.*s\n", i,
				       b.len, d, (int)(b.len > 300 ? 300 : b.len), p);
			continue;
		}
		if (kp_json_check(p, b.len, NULL, NULL, 0, NULL) == 0)
			accepted++;
		else
			rejected++;
	}
	kp_buf_release(&b);
	printf("# %d documents: %d accepted, %d rejected, %d mismatches\n", docs, accepted,
	       rejected, mismatches);
	cr_assert_eq(mismatches, 0);
	/* both sides exercised */
	cr_assert_gt(accepted, docs / 5);
	cr_assert_gt(rejected, docs / 5);
}

Test(json, random_bytes_against_jansson)
{
	char msg[512], t[64];
	int mismatches = 0;
	static const char alphabet[] = "{}[],:\"\\ 0123456789-+.eEtrufalsn\xc3\xa9\x80\x00\x01\n";
	rng_state = 42;
	for (int i = 0; i < 50000; i++) {
		size_t n = rnd(12);
		for (size_t k = 0; k < n; k++)
			t[k] = rnd(4) ? alphabet[rnd(sizeof(alphabet) - 1)] : (char)rnd(256);
		const char *d = jd_check(t, n, msg, sizeof(msg));
		if (!d)
			d = jd_escape(t, n, msg, sizeof(msg));
		if (d && mismatches++ < 20)
			printf("# mismatch on %zu bytes: %s\n", n, d);
	}
	cr_assert_eq(mismatches, 0);
}

/* kp_json_compact: the compacted text is valid, holds the same value (compared with
 * jansson's tree of the original), keeps no whitespace outside strings, and is a fixed
 * point. */
Test(json, compact_keeps_the_value_and_drops_the_spacing)
{
	kp_buf b = KP_BUF_INIT;
	rng_state = 0x2545f4914f6cdd1du;
	int checked = 0;
	for (int i = 0; i < 20000; i++) {
		b.len = 0;
		gen_value(&b, 0);
		kp_jval v;
		if (kp_json_check((const char *)b.data, b.len, &v, NULL, 0, NULL) < 0)
			continue;
		char *out = malloc(v.n + 1), *again = malloc(v.n + 1);
		size_t n = kp_json_compact(&v, out);
		kp_jval c;
		cr_assert_eq(kp_json_check(out, n, &c, NULL, 0, NULL), 0, "compacted text: %.*s",
			     (int)n, out);
		cr_assert_eq(c.n, n, "whitespace around the compacted value");
		json_error_t je;
		json_t *j = json_loadb((const char *)b.data, b.len,
				       JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
		char msg[512];
		cr_assert(j && jd_compare(&c, j, msg, sizeof(msg)) == NULL, "%s", msg);
		json_decref(j);
		int in_string = 0;
		for (size_t k = 0; k < n; k++) {
			if (in_string && out[k] == '\\') {
				k++;
				continue;
			}
			if (out[k] == '"')
				in_string = !in_string;
			cr_assert(in_string || (out[k] != ' ' && out[k] != '\n' && out[k] != '\t' &&
						out[k] != '\r'),
				  "whitespace left at %zu: %.*s", k, (int)n, out);
		}
		cr_assert_eq(kp_json_compact(&c, again), n);
		cr_assert(!memcmp(out, again, n));
		free(out);
		free(again);
		checked++;
	}
	kp_buf_release(&b);
	cr_assert_gt(checked, 5000);
}
