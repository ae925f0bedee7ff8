/*
 * append_parse.c -- the body of POST /streams/{s}: JSON text to the library's append
 * arguments (expected version, request id, events, claims).
 *
 * The body is checked once by kp_json_check (jansson's rules, no tree built) and then
 * walked in place: each event's data and metadata are copied without the whitespace between
 * their tokens, and the short strings (type, subject, request id, claim keys) decoded, into
 * one buffer the size of the body (what is copied out of the body is never longer than the
 * parts of the body it comes from). Checks the shape and the types only;
 * names, sizes and limits are the library's to check (kappa_append answers those itself).
 * Pure: no sockets, no I/O (fuzz/ calls it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "server/server_int.h"

/* Decode string 's' into the next free bytes of a->strings (decoding never grows a string). */
static const char *
take_string(kp_append_in *a, const kp_jval *s)
{
	char *out = a->strings + a->used;
	a->used += kp_jstr_decode(s, out) + 1;
	return out;
}

/* Compact the JSON value 'v' into a->strings: the same data sent with other spacing (a
 * retry) is the same bytes, so its request id is recognised as the same request. */
static const char *
take_json(kp_append_in *a, const kp_jval *v, size_t *len)
{
	char *out = a->strings + a->used;
	*len = kp_json_compact(v, out);
	a->used += *len;
	return out;
}

/* expected_version: absent/null, "any", "no_stream", "exists" or an integer >= 0. */
static const char *
parse_expected(const kp_jval *v, int64_t *out)
{
	*out = KAPPA_ANY;
	if (!v->type || v->type == KP_JNULL)
		return NULL;
	if (v->type == KP_JSTRING) {
		if (kp_jstr_eq(v, "any"))
			*out = KAPPA_ANY;
		else if (kp_jstr_eq(v, "no_stream"))
			*out = KAPPA_NO_STREAM;
		else if (kp_jstr_eq(v, "exists"))
			*out = KAPPA_EXISTS;
		else
			return "expected_version must be \"any\", \"no_stream\", \"exists\" or "
			       "an integer";
		return NULL;
	}
	if (v->type == KP_JNUMBER && kp_jint(v, out) == 0)
		return *out < 0 ? "expected_version must not be negative" : NULL;
	return "expected_version must be a string or an integer";
}

/* The member named 'name' of object 'o' (type 0 when absent). */
static kp_jval
member(const kp_jval *o, const char *name)
{
	kp_jiter it;
	kp_jval k, v;
	kp_jiter_init(&it, o);
	while (kp_jiter_member(&it, &k, &v))
		if (kp_jstr_eq(&k, name))
			return v;
	return (kp_jval){0, NULL, 0};
}

static size_t
count(const kp_jval *arr)
{
	kp_jiter it;
	kp_jval v;
	size_t n = 0;
	kp_jiter_init(&it, arr);
	while (kp_jiter_elem(&it, &v))
		n++;
	return n;
}

static const char *
parse_event(kp_append_in *a, const kp_jval *e, kappa_event_in *ev)
{
	if (e->type != KP_JOBJECT)
		return "every event needs a string \"type\"";
	kp_jval type = {0, NULL, 0}, data = type, subj = type, meta = type, seal = type, k, v;
	kp_jiter it;
	kp_jiter_init(&it, e);
	while (kp_jiter_member(&it, &k, &v)) {
		if (kp_jstr_eq(&k, "type"))
			type = v;
		else if (kp_jstr_eq(&k, "data"))
			data = v;
		else if (kp_jstr_eq(&k, "subject"))
			subj = v;
		else if (kp_jstr_eq(&k, "metadata"))
			meta = v;
		else if (kp_jstr_eq(&k, "seal_metadata"))
			seal = v;
	}
	if (type.type != KP_JSTRING)
		return "every event needs a string \"type\"";
	if (data.type != KP_JOBJECT)
		return "every event's \"data\" must be a JSON object";
	if (subj.type && subj.type != KP_JNULL && subj.type != KP_JSTRING)
		return "\"subject\" must be a string without NUL bytes";
	if (meta.type && meta.type != KP_JNULL && meta.type != KP_JOBJECT)
		return "\"metadata\" must be a JSON object";
	if (seal.type && seal.type != KP_JTRUE && seal.type != KP_JFALSE)
		return "\"seal_metadata\" must be true or false";
	ev->type = take_string(a, &type);
	ev->data = take_json(a, &data, &ev->data_len);
	ev->subject = subj.type == KP_JSTRING ? take_string(a, &subj) : NULL;
	if (meta.type == KP_JOBJECT)
		ev->metadata = take_json(a, &meta, &ev->metadata_len);
	ev->seal_metadata = seal.type == KP_JTRUE;
	return NULL;
}

static const char *
parse_claim(kp_append_in *a, const kp_jval *x, kappa_claim *cl)
{
	static const char *why = "each claim is {\"claim\": KEY} or {\"release\": KEY}";
	if (x->type != KP_JOBJECT)
		return why;
	kp_jiter it;
	kp_jval k, v;
	int n = 0, release = 0;
	kp_jval key = {0, NULL, 0};
	kp_jiter_init(&it, x);
	while (kp_jiter_member(&it, &k, &v)) {
		n++;
		if (kp_jstr_eq(&k, "claim") || (release = kp_jstr_eq(&k, "release")))
			key = v;
	}
	if (n != 1 || key.type != KP_JSTRING)
		return why;
	cl->key = take_string(a, &key);
	cl->release = release;
	return NULL;
}

/* Check the body and build the library's arguments. Returns NULL or why not. */
static const char *
parse_append(const kp_jval *body, size_t len, kp_append_in *a)
{
	kp_jval ev = member(body, "expected_version"), rid = member(body, "request_id");
	kp_jval events = member(body, "events"), claims = member(body, "claims");
	const char *why = parse_expected(&ev, &a->expected);
	if (why)
		return why;
	if (rid.type && rid.type != KP_JNULL && rid.type != KP_JSTRING)
		return "request_id must be a string without NUL bytes";
	if (events.type != KP_JARRAY || !(a->n = count(&events)))
		return "events must be a non-empty array";
	if (claims.type && claims.type != KP_JNULL && claims.type != KP_JARRAY)
		return "claims must be an array";
	a->m = claims.type == KP_JARRAY ? count(&claims) : 0;
	/* Counts past the library's limits are refused by it (413); these only bound memory. */
	if (a->n > 1000000 || a->m > 100000)
		return "too many events or claims";
	a->ev = calloc(a->n, sizeof(*a->ev));
	a->cl = calloc(a->m ? a->m : 1, sizeof(*a->cl));
	a->strings = malloc(len + 1); /* every decoded string fits in the body's length */
	if (!a->ev || !a->cl || !a->strings)
		return "out of memory";
	a->request_id = rid.type == KP_JSTRING ? take_string(a, &rid) : NULL;
	kp_jiter it;
	kp_jval v;
	size_t i = 0;
	kp_jiter_init(&it, &events);
	while (kp_jiter_elem(&it, &v))
		if ((why = parse_event(a, &v, &a->ev[i++])))
			return why;
	i = 0;
	kp_jiter_init(&it, &claims);
	while (a->m && kp_jiter_elem(&it, &v))
		if ((why = parse_claim(a, &v, &a->cl[i++])))
			return why;
	return NULL;
}

void
kp_append_in_release(kp_append_in *a)
{
	free(a->ev);
	free(a->cl);
	free(a->strings);
	memset(a, 0, sizeof(*a));
}

const char *
kp_append_parse(const char *text, size_t len, kp_append_in *a, char *msg, size_t msglen)
{
	memset(a, 0, sizeof(*a));
	a->expected = KAPPA_ANY;
	kp_jval body;
	char why[96];
	size_t at = 0;
	if (kp_json_check(text ? text : "", len, &body, why, sizeof(why), &at) < 0) {
		snprintf(msg, msglen, "the body must be a JSON object: %s (at byte %zu)", why, at);
		return msg;
	}
	if (body.type != KP_JOBJECT) {
		snprintf(msg, msglen, "the body must be a JSON object");
		return msg;
	}
	const char *w = parse_append(&body, len, a);
	if (w) {
		snprintf(msg, msglen, "%s", w);
		kp_append_in_release(a);
		return msg;
	}
	return NULL;
}
