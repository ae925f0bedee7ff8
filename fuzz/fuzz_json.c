/*
 * fuzz_json.c -- libFuzzer target: kp_json_check against jansson (tests/lib/json_diff.h).
 *
 * Invariants, checked on every input (abort on a mismatch): kp_json_check accepts exactly
 * what json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES) accepts, but for the NUL byte
 * jansson skips after a number or literal (json.h); on accepted text the top span, object
 * and array iteration, decoded strings and integers agree with jansson's tree; and
 * kp_json_escape of the input bytes is a string both accept (when they hold no NUL) that
 * decodes back to them, with U+FFFD for each byte that is not UTF-8.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../tests/lib/json_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msg[512];
	const char *d = jd_check((const char *)data, size, msg, sizeof(msg));
	if (!d)
		d = jd_escape((const char *)data, size, msg, sizeof(msg));
	if (d) {
		fprintf(stderr, "fuzz_json: %s\n", d);
		abort();
	}
	return 0;
}
