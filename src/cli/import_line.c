/*
 * import_line.c -- `kappa import`'s input: JSON Lines read with a bounded line length, and
 * each line's shape checked the way the server checks an append, so a bad file can be
 * refused before anything is sent (see import.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/import.h"
#include "kappa.h"

#define READ_BLOCK (256 * 1024)

int
imp_reader_init(imp_reader *r, FILE *f)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
	r->buf = malloc(READ_BLOCK);
	return r->buf ? 0 : -1;
}

void
imp_reader_release(imp_reader *r)
{
	free(r->buf);
	kp_buf_release(&r->line);
	memset(r, 0, sizeof(*r));
}

int
imp_reader_next(imp_reader *r, const char **p, size_t *n)
{
	r->line.len = 0;
	int any = 0; /* some of a line was read: a last line without "\n" still counts */
	for (;;) {
		if (r->start == r->end) {
			if (r->eof)
				break;
			size_t got = fread(r->buf, 1, READ_BLOCK, r->f);
			r->start = 0;
			r->end = got;
			if (got == 0) {
				if (ferror(r->f))
					return -1;
				r->eof = 1;
				break;
			}
		}
		char *s = r->buf + r->start;
		size_t avail = r->end - r->start;
		char *nl = memchr(s, '\n', avail);
		size_t take = nl ? (size_t)(nl - s) : avail;
		if (r->line.len + take > IMP_MAX_LINE + 1) { /* +1: a '\r' before the '\n' */
			r->lineno++;
			return -2;
		}
		r->start += take + (nl != NULL);
		r->consumed += take + (nl != NULL);
		any = 1;
		if (nl && r->line.len == 0) { /* the whole line is in the buffer */
			*p = s;
			*n = take;
			break;
		}
		if (kp_buf_append(&r->line, s, take)) {
			errno = ENOMEM;
			return -1;
		}
		if (nl)
			break;
	}
	if (!any)
		return 0;
	if (r->line.len) {
		*p = (const char *)r->line.data;
		*n = r->line.len;
	}
	r->lineno++;
	if (*n && (*p)[*n - 1] == '\r')
		(*n)--;
	return *n > IMP_MAX_LINE ? -2 : 1;
}

void
imp_line_release(imp_line *l)
{
	json_decref(l->root);
	memset(l, 0, sizeof(*l));
}

/* Check one event object; NULL or why not. */
static const char *
check_event(json_t *e)
{
	json_t *type = json_object_get(e, "type"), *data = json_object_get(e, "data");
	json_t *subj = json_object_get(e, "subject"), *meta = json_object_get(e, "metadata");
	if (!json_is_string(type) || json_string_length(type) == 0)
		return "an event needs a string \"type\"";
	if (json_string_length(type) > KAPPA_MAX_TYPE)
		return "\"type\" is longer than 100 bytes";
	if (!json_is_object(data))
		return "an event's \"data\" must be a JSON object";
	if (subj && !json_is_null(subj) && !json_is_string(subj))
		return "\"subject\" must be a string";
	if (meta && !json_is_null(meta) && !json_is_object(meta))
		return "\"metadata\" must be a JSON object";
	return NULL;
}

/* Check the fields an append body may carry; NULL or why not. */
static const char *
check_append(json_t *o)
{
	json_t *ev = json_object_get(o, "expected_version");
	json_t *rid = json_object_get(o, "request_id"), *cl = json_object_get(o, "claims");
	if (json_is_string(ev)) {
		const char *s = json_string_value(ev);
		if (strcmp(s, "any") && strcmp(s, "no_stream") && strcmp(s, "exists"))
			return "\"expected_version\" must be \"any\", \"no_stream\", \"exists\" "
			       "or a version";
	} else if (json_is_integer(ev)) {
		if (json_integer_value(ev) < 0)
			return "\"expected_version\" must not be negative";
	} else if (ev && !json_is_null(ev)) {
		return "\"expected_version\" must be a string or an integer";
	}
	if (rid && !json_is_null(rid) &&
	    (!json_is_string(rid) || json_string_length(rid) == 0 ||
	     json_string_length(rid) > KAPPA_MAX_REQUEST_ID))
		return "\"request_id\" must be a string of 1 to 128 bytes";
	if (cl && !json_is_null(cl)) {
		if (!json_is_array(cl))
			return "\"claims\" must be an array";
		size_t i;
		json_t *x;
		json_array_foreach(cl, i, x)
		{
			json_t *k = json_object_get(x, "claim"), *r = json_object_get(x, "release");
			if (json_object_size(x) != 1 || !(json_is_string(k) || json_is_string(r)))
				return "each claim is {\"claim\": KEY} or {\"release\": KEY}";
		}
	}
	return NULL;
}

static int
is_set(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return v && !json_is_null(v);
}

int
imp_line_parse(const char *text, size_t len, imp_line *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof(out[0]));
	json_error_t je;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	const char *bad = NULL;
	if (!o) {
		snprintf(why, whylen, "not JSON: %s (column %d)", je.text, je.column);
		return -1;
	}
	json_t *stream = json_object_get(o, "stream"), *events = json_object_get(o, "events");
	json_t *pos = json_object_get(o, "position");
	/* An exported event of a forgotten subject has no data left to append, and streams
	 * named '$...' hold kappa's own records: neither can be imported, both are skipped. */
	if (json_is_true(json_object_get(o, "forgotten")) ||
	    (json_is_string(stream) && json_string_value(stream)[0] == '$')) {
		snprintf(why, whylen, "%s",
			 json_is_true(json_object_get(o, "forgotten")) ? "forgotten"
								       : "kappa's own");
		json_decref(o);
		return 1;
	}
	if (!json_is_object(o))
		bad = "a line must be a JSON object";
	else if (!json_is_string(stream) || json_string_length(stream) == 0 ||
		 strlen(json_string_value(stream)) != json_string_length(stream))
		bad = "a line needs a \"stream\" (a non-empty string)";
	else if (json_string_length(stream) > KAPPA_MAX_STREAM)
		bad = "\"stream\" is longer than 200 bytes";
	else if ((bad = check_append(o)))
		;
	else if (events) {
		if (!json_is_array(events) || json_array_size(events) == 0)
			bad = "\"events\" must be a non-empty array";
		size_t i;
		json_t *e;
		json_array_foreach(events, i, e)
		{
			if (bad || (bad = check_event(e)))
				break;
		}
	} else {
		bad = check_event(o);
	}
	if (bad) {
		snprintf(why, whylen, "%s", bad);
		json_decref(o);
		return -1;
	}
	out->root = o;
	out->stream = json_string_value(stream);
	out->events = events;
	out->alone = events || is_set(o, "request_id") || is_set(o, "expected_version") ||
		     is_set(o, "claims");
	if (!events && json_is_integer(pos) && json_integer_value(pos) >= 0) {
		out->has_position = 1;
		out->position = (unsigned long long)json_integer_value(pos);
	}
	return 0;
}
