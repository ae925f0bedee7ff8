/*
 * json_diff.h -- the differential check of kp_json_check against jansson, shared by the unit
 * test (tests/unit/test_json.c) and the libFuzzer target (fuzz/fuzz_json.c): the same
 * accept/reject decision as json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES), and on
 * accepted text the scanning helpers (iteration, string decoding, integers, the top span)
 * agree with jansson's tree; kp_json_escape of the same bytes loads back to them.
 *
 * Header only (static inline), as the fuzz target is built apart from the test library.
 */
#ifndef KP_JSON_DIFF_H
#define KP_JSON_DIFF_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"

#define JD_FLAGS (JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)

/* Whether 'p' holds the one thing jansson 2.14 accepts and kp_json_check does not: a NUL
 * byte right after a number or a literal, which jansson skips (json.h). True when jansson
 * accepted 'p' and, with each NUL that follows a digit or a letter removed, kp_json_check
 * accepts it. */
static inline bool
jd_nul_quirk(const char *p, size_t n)
{
	if (!memchr(p, '\0', n))
		return false;
	char *q = malloc(n);
	if (!q)
		abort();
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		char prev = i ? p[i - 1] : ' ';
		bool alnum = (prev >= '0' && prev <= '9') ||
			     ((prev | 0x20) >= 'a' && (prev | 0x20) <= 'z');
		if (p[i] == '\0' && alnum)
			continue;
		q[m++] = p[i];
	}
	bool ok = kp_json_check(q, m, NULL, NULL, 0, NULL) == 0;
	free(q);
	return ok;
}

/* Compare the checked value 'v' with jansson's 'j'. Returns NULL when they agree, else what
 * differs (in 'msg'). */
static inline const char *
jd_compare(const kp_jval *v, json_t *j, char *msg, size_t len)
{
	int64_t iv;
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		if (v->type != KP_JOBJECT)
			goto type;
		kp_jiter it;
		kp_jval k, x;
		size_t count = 0;
		kp_jiter_init(&it, v);
		while (kp_jiter_member(&it, &k, &x)) {
			char *key = malloc(k.n + 1);
			if (!key)
				abort();
			size_t kl = kp_jstr_decode(&k, key);
			json_t *jx = json_object_getn(j, key, kl);
			free(key);
			if (k.type != KP_JSTRING || !jx) {
				snprintf(msg, len, "key %.*s not in jansson's object", (int)k.n,
					 k.p);
				return msg;
			}
			const char *d = jd_compare(&x, jx, msg, len);
			if (d)
				return d;
			count++;
		}
		if (count != json_object_size(j)) {
			snprintf(msg, len, "%zu members, jansson has %zu", count,
				 json_object_size(j));
			return msg;
		}
		kp_jiter_init(&it, v);
		if (kp_jiter_elem(&it, &x)) {
			snprintf(msg, len, "an object iterates as an array");
			return msg;
		}
		return NULL;
	}
	case JSON_ARRAY: {
		if (v->type != KP_JARRAY)
			goto type;
		kp_jiter it;
		kp_jval k, x;
		size_t i = 0;
		kp_jiter_init(&it, v);
		while (kp_jiter_elem(&it, &x)) {
			if (i >= json_array_size(j)) {
				snprintf(msg, len, "more elements than jansson's %zu", i);
				return msg;
			}
			const char *d = jd_compare(&x, json_array_get(j, i), msg, len);
			if (d)
				return d;
			i++;
		}
		if (i != json_array_size(j)) {
			snprintf(msg, len, "%zu elements, jansson has %zu", i, json_array_size(j));
			return msg;
		}
		kp_jiter_init(&it, v);
		if (kp_jiter_member(&it, &k, &x)) {
			snprintf(msg, len, "an array iterates as an object");
			return msg;
		}
		return NULL;
	}
	case JSON_STRING: {
		if (v->type != KP_JSTRING)
			goto type;
		char *s = malloc(v->n);
		if (!s)
			abort();
		size_t sl = kp_jstr_decode(v, s);
		bool same = sl == json_string_length(j) &&
			    memcmp(s, json_string_value(j), sl) == 0 && s[sl] == '\0' &&
			    kp_jstr_eq(v, json_string_value(j));
		free(s);
		if (!same) {
			snprintf(msg, len, "string %.*s decodes differently", (int)v->n, v->p);
			return msg;
		}
		return NULL;
	}
	case JSON_INTEGER:
		if (v->type != KP_JNUMBER)
			goto type;
		if (kp_jint(v, &iv) != 0 || iv != json_integer_value(j)) {
			snprintf(msg, len, "integer %.*s read differently", (int)v->n, v->p);
			return msg;
		}
		return NULL;
	case JSON_REAL:
		if (v->type != KP_JNUMBER)
			goto type;
		if (kp_jint(v, &iv) == 0) {
			snprintf(msg, len, "real %.*s taken for an integer", (int)v->n, v->p);
			return msg;
		}
		return NULL;
	case JSON_TRUE:
		return v->type == KP_JTRUE && v->n == 4 ? NULL : "not true";
	case JSON_FALSE:
		return v->type == KP_JFALSE && v->n == 5 ? NULL : "not false";
	case JSON_NULL:
		return v->type == KP_JNULL && v->n == 4 ? NULL : "not null";
	}
type:
	snprintf(msg, len, "type %d for %.*s, jansson's %d", v->type, (int)(v->n > 40 ? 40 : v->n),
		 v->p, (int)json_typeof(j));
	return msg;
}

/* The whole differential check of the 'n' bytes at 'p'. Returns NULL when kp_json_check and
 * jansson agree (and so do the helpers), else a description in 'msg'. */
static inline const char *
jd_check(const char *p, size_t n, char *msg, size_t len)
{
	kp_jval top;
	char why[64];
	size_t at = 0;
	int rc = kp_json_check(p, n, &top, why, sizeof(why), &at);
	json_error_t je;
	json_t *j = json_loadb(p, n, JD_FLAGS, &je);
	const char *d = NULL;
	if (rc == 0 && !j) {
		snprintf(msg, len, "kp_json_check accepts, jansson rejects: %s", je.text);
		return msg;
	}
	if (rc != 0 && j) {
		json_decref(j);
		if (jd_nul_quirk(p, n))
			return NULL;
		snprintf(msg, len, "kp_json_check rejects (%s at %zu), jansson accepts", why, at);
		return msg;
	}
	if (rc != 0) {
		if (at > n || !why[0]) {
			snprintf(msg, len, "bad error report: at %zu of %zu", at, n);
			return msg;
		}
		return NULL;
	}
	/* accepted by both: the top span is the text without its surrounding whitespace */
	size_t b = 0, e = n;
	while (b < n && strchr(" \t\r\n", p[b]) && p[b])
		b++;
	while (e > b && strchr(" \t\r\n", p[e - 1]) && p[e - 1])
		e--;
	if (top.p != p + b || top.n != e - b) {
		snprintf(msg, len, "top span [%zu, %zu), expected [%zu, %zu)", (size_t)(top.p - p),
			 (size_t)(top.p - p) + top.n, b, e);
		d = msg;
	} else {
		d = jd_compare(&top, j, msg, len);
	}
	json_decref(j);
	return d;
}

/* The 'n' bytes at 'p' with each byte that does not start a valid UTF-8 sequence replaced
 * by U+FFFD (malloc'ed; its length in *out_n): what kp_json_escape must write. */
static inline char *
jd_replaced(const char *p, size_t n, size_t *out_n)
{
	char *o = malloc(3 * n + 1), *w = o;
	if (!o)
		abort();
	for (size_t i = 0; i < n;) {
		size_t k = kp_utf8_prefix(p + i, n - i);
		memcpy(w, p + i, k);
		w += k;
		i += k;
		if (i < n) {
			memcpy(w, "\xef\xbf\xbd", 3);
			w += 3;
			i++;
		}
	}
	*out_n = (size_t)(w - o);
	return o;
}

/* kp_json_escape of the 'n' bytes at 'p': the result is one string that kp_json_check and
 * jansson agree on; when the bytes hold no NUL both accept it, and it decodes back to them,
 * with U+FFFD for each byte that is not UTF-8. Returns NULL or what went wrong. */
static inline const char *
jd_escape(const char *p, size_t n, char *msg, size_t len)
{
	kp_buf b = KP_BUF_INIT;
	if (kp_json_escape(&b, p, n) < 0)
		abort();
	const char *d = jd_check((const char *)b.data, b.len, msg, len);
	kp_jval v;
	size_t wn;
	char *want = jd_replaced(p, n, &wn);
	if (!d && kp_json_check((const char *)b.data, b.len, &v, NULL, 0, NULL) == 0) {
		char *s = malloc(v.n);
		if (!s)
			abort();
		size_t sl = kp_jstr_decode(&v, s);
		if (v.type != KP_JSTRING || sl != wn || memcmp(s, want, wn) != 0) {
			snprintf(msg, len, "escaped string decodes to other bytes");
			d = msg;
		}
		free(s);
	} else if (!d && !memchr(p, '\0', n)) {
		snprintf(msg, len, "escape of bytes without NUL rejected");
		d = msg;
	}
	free(want);
	kp_buf_release(&b);
	return d;
}

#endif
