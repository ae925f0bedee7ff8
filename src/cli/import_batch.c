/*
 * import_batch.c -- `kappa import`'s appends: consecutive event lines of one stream are
 * grouped (up to --batch events and IMP_BATCH_BYTES); a line with its own request id,
 * expected version or claims, or an append body, goes alone.
 *
 * Every append carries a request id, the line's own or "import-" + BLAKE2b-128 of what
 * identifies its lines: for an exported EVENT its position and content (stream, type, data,
 * subject, metadata: not its time), otherwise its line number and text. The same file
 * imported again (with the same --batch) makes the same appends with the same ids, and the
 * server answers them as deduplicated.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "cli/import.h"

void
imp_batch_free(imp_batch *b)
{
	if (!b)
		return;
	free(b->stream);
	free(b->body);
	free(b);
}

int
imp_batcher_init(imp_batcher *b, size_t max_events, imp_emit_fn emit, void *ctx)
{
	memset(b, 0, sizeof(*b));
	b->max_events = max_events;
	b->emit = emit;
	b->ctx = ctx;
	return sodium_init() < 0 ? -1 : 0;
}

void
imp_batcher_release(imp_batcher *b)
{
	free(b->stream);
	json_decref(b->events);
	b->stream = NULL;
	b->events = NULL;
}

/* The event to send for an event line: its type, data, subject and metadata. */
static json_t *
event_of(json_t *line)
{
	json_t *e = json_object();
	if (!e)
		return NULL;
	static const char *const keys[] = {"type", "data", "subject", "metadata"};
	for (size_t i = 0; i < 4; i++) {
		json_t *v = json_object_get(line, keys[i]);
		if (v && !json_is_null(v) && json_object_set(e, keys[i], v)) {
			json_decref(e);
			return NULL;
		}
	}
	return e;
}

/* Hash what identifies line 'lineno' into 'h'. Returns 0, or -1 when out of memory. */
static int
hash_line(crypto_generichash_state *h, const imp_line *l, json_t *event, unsigned long long lineno,
	  const char *text, size_t len)
{
	uint8_t head[17];
	char *canon = NULL;
	if (l->has_position) {
		/* what the event is, wherever it sits in whichever export */
		json_t *c = json_copy(event);
		if (!c || json_object_set_new(c, "stream", json_string(l->stream)) ||
		    !(canon = json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS))) {
			json_decref(c);
			return -1;
		}
		json_decref(c);
		text = canon;
		len = strlen(canon);
	}
	head[0] = l->has_position ? 'p' : 'l';
	kp_put_u64(head + 1, l->has_position ? l->position : lineno);
	kp_put_u64(head + 9, (uint64_t)len);
	crypto_generichash_update(h, head, sizeof(head));
	crypto_generichash_update(h, (const unsigned char *)text, len);
	free(canon);
	return 0;
}

/* "import-" and the hex of the hash. */
static json_t *
request_id(crypto_generichash_state *h)
{
	unsigned char d[16];
	char id[7 + 2 * sizeof(d) + 1] = "import-";
	crypto_generichash_final(h, d, sizeof(d));
	sodium_bin2hex(id + 7, sizeof(id) - 7, d, sizeof(d));
	return json_string(id);
}

/* Hand 'body' over as the append of lines 'first'..'last' to 'stream'. */
static int
emit(imp_batcher *b, const char *stream, json_t *body, size_t events, unsigned long long first,
     unsigned long long last)
{
	imp_batch *x = calloc(1, sizeof(*x));
	if (!x || !(x->stream = strdup(stream)) || !(x->body = json_dumps(body, JSON_COMPACT))) {
		json_decref(body);
		imp_batch_free(x);
		return -1;
	}
	json_decref(body);
	x->events = events;
	x->first_line = first;
	x->last_line = last;
	return b->emit(b->ctx, x);
}

int
imp_batcher_flush(imp_batcher *b)
{
	if (!b->events)
		return 0;
	json_t *events = b->events;
	char *stream = b->stream;
	b->events = NULL;
	b->stream = NULL;
	size_t n = json_array_size(events);
	json_t *body =
		json_pack("{s:o, s:o}", "request_id", request_id(&b->hash), "events", events);
	int rc = body ? emit(b, stream, body, n, b->first_line, b->last_line) : -1;
	free(stream);
	return rc;
}

/* A line that goes alone: an append body, or an event with its own append fields. */
static int
alone(imp_batcher *b, imp_line *l, unsigned long long lineno, const char *text, size_t len)
{
	json_t *events = l->events ? json_incref(l->events) : json_pack("[o]", event_of(l->root));
	json_t *body = events ? json_pack("{s:o}", "events", events) : NULL;
	if (!body)
		return -1;
	static const char *const keys[] = {"expected_version", "claims"};
	for (size_t i = 0; i < 2; i++) {
		json_t *v = json_object_get(l->root, keys[i]);
		if (v && !json_is_null(v) && json_object_set(body, keys[i], v))
			goto oom;
	}
	json_t *rid = json_object_get(l->root, "request_id");
	if (json_is_string(rid)) {
		if (json_object_set(body, "request_id", rid))
			goto oom;
	} else {
		crypto_generichash_state h;
		crypto_generichash_init(&h, NULL, 0, 16);
		if (hash_line(&h, l, json_array_get(events, 0), lineno, text, len) ||
		    json_object_set_new(body, "request_id", request_id(&h)))
			goto oom;
	}
	return emit(b, l->stream, body, json_array_size(events), lineno, lineno);
oom:
	json_decref(body);
	return -1;
}

int
imp_batcher_add(imp_batcher *b, imp_line *l, unsigned long long lineno, const char *text,
		size_t len)
{
	int rc;
	if (l->alone) {
		if ((rc = imp_batcher_flush(b)))
			return rc;
		return alone(b, l, lineno, text, len);
	}
	if (b->events && (strcmp(b->stream, l->stream) || b->bytes + len > IMP_BATCH_BYTES) &&
	    (rc = imp_batcher_flush(b)))
		return rc;
	json_t *e = event_of(l->root);
	if (!e)
		return -1;
	if (!b->events) {
		if (!(b->stream = strdup(l->stream)) || !(b->events = json_array())) {
			json_decref(e);
			imp_batcher_release(b);
			return -1;
		}
		b->bytes = 0;
		b->first_line = lineno;
		crypto_generichash_init(&b->hash, NULL, 0, 16);
	}
	if (hash_line(&b->hash, l, e, lineno, text, len)) {
		json_decref(e);
		return -1;
	}
	if (json_array_append_new(b->events, e))
		return -1;
	b->bytes += len;
	b->last_line = lineno;
	if (json_array_size(b->events) >= b->max_events)
		return imp_batcher_flush(b);
	return 0;
}
