/*
 * fuzz_http.c -- libFuzzer target: the connection engine's request parsing state machine
 * (src/server/http_parse.c) fed arbitrary bytes, split at arbitrary points, the way a
 * connection feeds it: each request in turn, the next one parsed only after the previous
 * one is done, until an error ends the connection.
 *
 * The first two input bytes seed the split sizes (1 byte to 64 bytes per piece); the rest is
 * what the client sends. Invariants: a feed takes no more than it was given and always takes
 * something unless it stops at an event; after the headers, the method, path, headers and
 * arguments are NUL-terminated strings within the limits; a body never exceeds the body
 * limit; an error carries a status and a message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/http_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HEADER 2048
#define MAX_BODY 4096

static int
visit(void *ctx, const char *k, const char *v)
{
	size_t *n = ctx;
	*n += strlen(k) + (v ? strlen(v) : 0);
	return 0;
}

static void
check_headers(kp_hreq *q)
{
	if (!kp_hreq_method(q) || strlen(kp_hreq_path(q)) > MAX_HEADER)
		abort();
	const char *names[] = {"Host",	 "Content-Type", "Content-Length", "Transfer-Encoding",
			       "Expect", "Connection"};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *v = kp_hreq_header(q, names[i]);
		if (v && strlen(v) > MAX_HEADER)
			abort();
	}
	size_t bytes = 0;
	if (kp_hreq_args(q, visit, &bytes) > KP_HREQ_MAX_ARGS || bytes > MAX_HEADER)
		abort();
	(void)kp_hreq_arg(q, "from");
	(void)kp_hreq_content_length(q);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	uint32_t seed = (uint32_t)data[0] << 8 | data[1];
	data += 2;
	size -= 2;
	kp_hreq q;
	kp_hreq_init(&q, MAX_HEADER, MAX_BODY);
	size_t off = 0;
	int requests = 0;
	while (off < size) {
		seed = seed * 1103515245u + 12345u;
		size_t piece = 1 + (seed >> 16) % 64;
		if (piece > size - off)
			piece = size - off;
		size_t used = 0;
		int ev = kp_hreq_feed(&q, (const char *)data + off, piece, &used);
		if (used > piece || (ev == KP_HREQ_MORE && used != piece))
			abort();
		off += used;
		if (q.blen > MAX_BODY)
			abort();
		if (ev == KP_HREQ_HEADERS) {
			check_headers(&q);
		} else if (ev == KP_HREQ_DONE) {
			check_headers(&q);
			requests++;
			kp_hreq_next(&q);
		} else if (ev == KP_HREQ_ERROR) {
			if (q.err_status < 400 || q.err_status > 599 || !q.err_msg)
				abort();
			break;
		}
	}
	(void)requests;
	kp_hreq_release(&q);
	return 0;
}
