/*
 * fuzz_import.c -- libFuzzer target: `kappa import`'s input: JSON Lines read through the
 * bounded line reader (imp_reader_next), each line checked (imp_line_parse) and grouped
 * into appends (imp_batcher_add), whose request bodies must be JSON the server's append
 * parser accepts.
 *
 * Invariant: every append the importer would send parses as an append body on the server
 * side (kp_append_parse), so a file the importer accepts is never refused for its shape.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/import.h"
#include "server/server_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
emit(void *ctx, imp_batch *b)
{
	(void)ctx;
	kp_append_in a;
	char msg[256];
	if (kp_append_parse(b->body, strlen(b->body), &a, msg, sizeof(msg))) {
		fprintf(stderr, "the server would refuse %s: %s\n", b->body, msg);
		abort();
	}
	if (a.n != b->events)
		abort();
	kp_append_in_release(&a);
	imp_batch_free(b);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	FILE *f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	imp_reader r;
	imp_batcher b;
	if (imp_reader_init(&r, f) == 0 && imp_batcher_init(&b, 1 + size % 7, emit, NULL) == 0) {
		const char *p;
		size_t n;
		while (imp_reader_next(&r, &p, &n) == 1) {
			imp_line l;
			char why[256];
			if (imp_line_parse(p, n, &l, why, sizeof(why)) == 0) {
				imp_batcher_add(&b, &l, r.lineno, p, n);
				imp_line_release(&l);
			}
		}
		imp_batcher_flush(&b);
		imp_batcher_release(&b);
	}
	imp_reader_release(&r);
	fclose(f);
	return 0;
}
