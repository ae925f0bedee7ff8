/*
 * fuzz_sse.c -- libFuzzer target: Server-Sent Events parsing on both ends: the server's
 * Last-Event-ID and ?types= parsers (src/server/parse.c) and the client's event stream
 * reader used by `kappa tail` (src/cli/sse_reader.c), fed in pieces.
 *
 * The input is NUL-separated: the Last-Event-ID value, the types list, then the event
 * stream (its first byte chooses the piece size). Invariants: a resume position is the id
 * plus one, parsed types are 1-100 bytes without commas, events never exceed the reader's
 * bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/sse_reader.h"
#include "server/server_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_EVENT 4096

static int
on_event(void *ctx, const char *event, const char *id, const char *d, size_t len)
{
	(void)ctx;
	if (len > MAX_EVENT || strlen(d) > len || strlen(event) >= 32 || strlen(id) >= 32)
		abort();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *end = data + size, *p = data;
	const uint8_t *z1 = memchr(p, 0, size);
	const uint8_t *z2 = z1 ? memchr(z1 + 1, 0, (size_t)(end - z1 - 1)) : NULL;
	char *last = strndup((const char *)p, z1 ? (size_t)(z1 - p) : size);
	char *types = z1 ? strndup((const char *)z1 + 1,
				   z2 ? (size_t)(z2 - z1 - 1) : (size_t)(end - z1 - 1))
			 : strdup("");
	if (!last || !types)
		goto out;
	uint64_t from = 0;
	if (kp_parse_last_event_id(last, &from) == 1 &&
	    (from == 0 || from - 1 != strtoull(last, NULL, 10)))
		abort();
	char *tv[32];
	size_t nt = 0;
	kp_parse_types(types, tv, 32, &nt);
	for (size_t i = 0; i < nt; i++) {
		size_t l = strlen(tv[i]);
		if (l == 0 || l > KAPPA_MAX_TYPE || strchr(tv[i], ','))
			abort();
		free(tv[i]);
	}
	if (z2 && z2 + 1 < end) {
		const char *s = (const char *)z2 + 1;
		size_t n = (size_t)(end - z2 - 1), step = 1 + (unsigned char)s[0] % 64;
		kp_sse_reader r;
		kp_sse_reader_init(&r, on_event, NULL, MAX_EVENT);
		for (size_t off = 0; off < n; off += step)
			if (kp_sse_reader_feed(&r, s + off, n - off < step ? n - off : step))
				kp_sse_reader_reset(&r);
		kp_sse_reader_release(&r);
	}
out:
	free(last);
	free(types);
	return 0;
}
