/*
 * append_parse.c -- the body of POST /streams/{s}: JSON text to the library's append
 * arguments (expected version, request id, events, claims).
 *
 * Checks the shape and the types only; names, sizes and limits are the library's to check
 * (kappa_append answers those itself). Pure: no libmicrohttpd, no I/O (fuzz/ calls it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

/* expected_version: absent/null, "any", "no_stream", "exists" or an integer >= 0. */
static const char *
parse_expected(json_t *ev, int64_t *out)
{
	*out = KAPPA_ANY;
	if (!ev || json_is_null(ev))
		return NULL;
	if (json_is_string(ev)) {
		const char *s = json_string_value(ev);
		if (!strcmp(s, "any"))
			*out = KAPPA_ANY;
		else if (!strcmp(s, "no_stream"))
			*out = KAPPA_NO_STREAM;
		else if (!strcmp(s, "exists"))
			*out = KAPPA_EXISTS;
		else
			return "expected_version must be \"any\", \"no_stream\", \"exists\" or "
			       "an integer";
		return NULL;
	}
	if (json_is_integer(ev)) {
		*out = json_integer_value(ev);
		return *out < 0 ? "expected_version must not be negative" : NULL;
	}
	return "expected_version must be a string or an integer";
}

/* A JSON string member that must not contain NUL (which C strings would cut). */
static int
clean_string(json_t *s)
{
	return json_is_string(s) && strlen(json_string_value(s)) == json_string_length(s);
}

void
kp_append_in_release(kp_append_in *a)
{
	for (size_t i = 0; a->texts && i < 2 * a->n; i++)
		free(a->texts[i]);
	free(a->texts);
	free(a->ev);
	free(a->cl);
	json_decref(a->body);
	memset(a, 0, sizeof(*a));
}

/* Check the body and build the library's arguments. Returns NULL or why not. */
static const char *
parse_append(json_t *body, kp_append_in *a, int64_t *expected, const char **rid)
{
	const char *why = parse_expected(json_object_get(body, "expected_version"), expected);
	if (why)
		return why;
	json_t *jr = json_object_get(body, "request_id");
	*rid = NULL;
	if (jr && !json_is_null(jr)) {
		if (!clean_string(jr))
			return "request_id must be a string without NUL bytes";
		*rid = json_string_value(jr);
	}
	json_t *events = json_object_get(body, "events");
	json_t *claims = json_object_get(body, "claims");
	if (!json_is_array(events) || json_array_size(events) == 0)
		return "events must be a non-empty array";
	if (claims && !json_is_null(claims) && !json_is_array(claims))
		return "claims must be an array";
	a->n = json_array_size(events);
	a->m = json_is_array(claims) ? json_array_size(claims) : 0;
	/* Counts past the library's limits are refused by it (413); these only bound memory. */
	if (a->n > 1000000 || a->m > 100000)
		return "too many events or claims";
	a->ev = calloc(a->n, sizeof(*a->ev));
	a->texts = calloc(2 * a->n, sizeof(char *));
	a->cl = calloc(a->m ? a->m : 1, sizeof(*a->cl));
	if (!a->ev || !a->texts || !a->cl)
		return "out of memory";
	for (size_t i = 0; i < a->n; i++) {
		json_t *e = json_array_get(events, i);
		json_t *type = json_object_get(e, "type"), *data = json_object_get(e, "data");
		json_t *subj = json_object_get(e, "subject"),
		       *meta = json_object_get(e, "metadata");
		if (!json_is_object(e) || !json_is_string(type))
			return "every event needs a string \"type\"";
		if (!clean_string(type))
			return "\"type\" contains a NUL byte";
		if (!json_is_object(data))
			return "every event's \"data\" must be a JSON object";
		if (subj && !json_is_null(subj) && !clean_string(subj))
			return "\"subject\" must be a string without NUL bytes";
		if (meta && !json_is_null(meta) && !json_is_object(meta))
			return "\"metadata\" must be a JSON object";
		json_t *seal = json_object_get(e, "seal_metadata");
		if (seal && !json_is_boolean(seal))
			return "\"seal_metadata\" must be true or false";
		a->ev[i].seal_metadata = json_is_true(seal);
		a->ev[i].type = json_string_value(type);
		a->ev[i].subject = json_is_string(subj) ? json_string_value(subj) : NULL;
		if (!(a->ev[i].data = a->texts[2 * i] = json_dumps(data, JSON_COMPACT)))
			return "out of memory";
		if (json_is_object(meta) &&
		    !(a->ev[i].metadata = a->texts[2 * i + 1] = json_dumps(meta, JSON_COMPACT)))
			return "out of memory";
	}
	for (size_t i = 0; i < a->m; i++) {
		json_t *x = json_array_get(claims, i);
		json_t *k = json_object_get(x, "claim"), *rel = json_object_get(x, "release");
		if (!json_is_object(x) || json_object_size(x) != 1 ||
		    !(k ? clean_string(k) : clean_string(rel)))
			return "each claim is {\"claim\": KEY} or {\"release\": KEY}";
		a->cl[i].key = json_string_value(k ? k : rel);
		a->cl[i].release = k == NULL;
	}
	return NULL;
}

const char *
kp_append_parse(const char *text, size_t len, kp_append_in *a, char *msg, size_t msglen)
{
	memset(a, 0, sizeof(*a));
	a->expected = KAPPA_ANY;
	json_error_t je;
	json_t *body = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!body || !json_is_object(body)) {
		snprintf(msg, msglen, "the body must be a JSON object%s%s", body ? "" : ": ",
			 body ? "" : je.text);
		json_decref(body);
		return msg;
	}
	a->body = body;
	const char *why = parse_append(body, a, &a->expected, &a->request_id);
	if (why) {
		snprintf(msg, msglen, "%s", why);
		kp_append_in_release(a);
		return msg;
	}
	return NULL;
}
