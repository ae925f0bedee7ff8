/*
 * fuzz_append.c -- libFuzzer target: POST /streams/{s} from the body's JSON to the event
 * store's checks: kp_append_parse (the server's parser), then kappa_append on a real
 * database, which validates names, sizes and JSON and encodes the batch.
 *
 * The input is the stream name, a newline, and the body. The append is made with an
 * expected version no stream can have, so every one that passes the checks is refused in
 * the writer with wrong_expected_version and nothing is ever written: runs stay
 * independent of each other. Invariant: a parsed append is either refused with a kappa
 * code or reaches the version check; nothing crashes or leaks.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "server/server_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static kappa_db *db;
static char dir[256];

static int
remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) ? -1 : 0;
}

static void
cleanup(void)
{
	kappa_close(db);
	if (nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
		fprintf(stderr, "fuzz_append: could not remove %s\n", dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	const char *tmp = getenv("TMPDIR");
	snprintf(dir, sizeof(dir), "%s/kappa-fuzz-append.XXXXXX", tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
	kappa_options o;
	kappa_options_init(&o);
	o.fsync = KAPPA_FSYNC_NEVER;
	kappa_err err;
	if (kappa_open(dir, &o, &db, &err) != KAPPA_OK) {
		fprintf(stderr, "fuzz_append: %s\n", err.msg);
		exit(1);
	}
	atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	size_t slen = nl ? (size_t)(nl - data) : 0;
	char *stream = strndup((const char *)data, slen); /* stops at a NUL, as a URL would */
	const char *body = nl ? (const char *)nl + 1 : (const char *)data;
	size_t blen = nl ? size - slen - 1 : size;
	if (!stream)
		return 0;
	kp_append_in a;
	char msg[256];
	if (!kp_append_parse(body, blen, &a, msg, sizeof(msg))) {
		if (a.n == 0 || !a.ev || (a.m && !a.cl))
			abort(); /* parsed, yet nothing to append */
		kappa_append_result res;
		kappa_err err;
		int rc = kappa_append(db, stream, (int64_t)1 << 62, a.request_id, a.ev, a.n, a.cl,
				      a.m, &res, &err);
		if (rc == KAPPA_OK || (rc != KAPPA_EWRONG_VERSION && kp_err_http_status(rc) >= 500))
			abort(); /* written, or refused as if the server had failed */
		kp_append_in_release(&a);
	} else if (!msg[0]) {
		abort(); /* refused without a reason */
	}
	free(stream);
	return 0;
}
