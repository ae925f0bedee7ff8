/*
 * cmd_verify.c -- `kappa verify DIR [--digest FILE]`: recompute the audit hash chain of a
 * data directory without changing it, and with a digest saved earlier (the JSON of GET
 * /audit/digest) prove that the log still extends it and that its signature is the node's.
 * Exit 0 when sound, 3 on a break or a digest the log does not extend, 2 on bad usage, 1
 * on other errors.
 */
#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "cli/cli.h"
#include "kappa.h"

static void
print_line(void *ctx, const char *line)
{
	(void)ctx;
	printf("%s\n", line);
}

/* Read a digest saved from GET /audit/digest. Returns 0, or -1 with a message printed. */
static int
load_digest(const char *path, kappa_digest *d, int *signed_ok)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	int parsed = j != NULL;
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	kappa_err err;
	int rc = kappa_digest_from_json(text, d, signed_ok, &err);
	free(text);
	if (rc)
		fprintf(stderr, "kappa verify: %s: %s\n", path, parsed ? err.msg : je.text);
	return rc ? -1 : 0;
}

int
kp_cmd_verify(int argc, char **argv)
{
	const char *dir = NULL, *digest_file = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: kappa verify DIR [--digest FILE]\n\n"
			       "Recompute the audit hash chain of every batch in DIR. With "
			       "--digest "
			       "(a file\nsaved from GET /audit/digest), also prove the log still "
			       "extends it.\n");
			return 0;
		}
		if (!strcmp(argv[i], "--digest") && i + 1 < argc)
			digest_file = argv[++i];
		else if (argv[i][0] != '-' && !dir)
			dir = argv[i];
		else
			dir = NULL, i = argc;
	}
	if (!dir) {
		fprintf(stderr, "usage: kappa verify DIR [--digest FILE]\n");
		return 2;
	}
	kappa_digest d;
	int signed_ok = -1;
	if (digest_file && load_digest(digest_file, &d, &signed_ok) < 0)
		return 2;
	kappa_verify_result res;
	kappa_err err;
	int rc = kappa_verify(dir, digest_file ? &d : NULL, print_line, NULL, &res, &err);
	double mb = (double)res.bytes / 1e6;
	printf("%s: %llu batches, %llu events, positions [%llu, %llu), %.1f MB in %.3f s "
	       "(%.0f MB/s)\n",
	       rc ? "broken" : "ok", (unsigned long long)res.batches,
	       (unsigned long long)res.events, (unsigned long long)res.first_position,
	       (unsigned long long)res.end_position, mb, res.seconds,
	       res.seconds > 0 ? mb / res.seconds : 0.0);
	if (rc) {
		fprintf(stderr, "kappa verify: %s\n", err.msg);
		return kp_err_exit_status(rc);
	}
	char hex[65];
	printf("chain at %llu: %s\n", (unsigned long long)res.end_position,
	       sodium_bin2hex(hex, sizeof(hex), res.chain, 32));
	if (digest_file) {
		printf("extends the digest at position %llu%s\n", (unsigned long long)d.position,
		       signed_ok == 1	? " (signature valid)"
		       : signed_ok == 0 ? " (SIGNATURE INVALID)"
					: " (unsigned)");
		if (signed_ok == 0) {
			fprintf(stderr, "kappa verify: the digest's signature does not match its "
					"public key\n");
			return kp_err_exit_status(KAPPA_ECORRUPT);
		}
	}
	return 0;
}
