/*
 * cmd_verify.c -- `kappa verify DIR [--digest FILE]`: recompute the audit hash chain of a
 * data directory without changing it, and with a digest saved earlier (the JSON of GET
 * /audit/digest) prove that the log still extends it and that its signature is the node's.
 * Exit 0 when sound, 3 on a break or a digest the log does not extend, 2 on bad usage, 1
 * on other errors.
 */
#include <jansson.h>
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

static int
unhex(const char *s, uint8_t *out, size_t n)
{
	if (!s || strlen(s) != 2 * n)
		return -1;
	for (size_t i = 0; i < 2 * n; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9'   ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;
		if (v < 0)
			return -1;
		out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] << 4) | v : v);
	}
	return 0;
}

/* Read a digest saved from GET /audit/digest. Returns 0, or -1 with a message printed.
 * *signed_ok: 1 valid signature, 0 invalid, -1 none in the file. */
static int
load_digest(const char *path, kappa_digest *d, int *signed_ok)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	memset(d, 0, sizeof(*d));
	*signed_ok = -1;
	json_t *pos = json_object_get(j, "position"), *ch = json_object_get(j, "chain_hash");
	if (!json_is_integer(pos) || json_integer_value(pos) < 0 ||
	    unhex(json_string_value(ch), d->chain, 32) < 0) {
		fprintf(stderr, "kappa verify: %s: not a digest (%s)\n", path,
			j ? "needs \"position\" and a 64-digit \"chain_hash\"" : je.text);
		json_decref(j);
		return -1;
	}
	d->position = (uint64_t)json_integer_value(pos);
	json_t *sig = json_object_get(j, "signature"), *pk = json_object_get(j, "public_key"),
	       *t = json_object_get(j, "time_ms");
	uint8_t key[32];
	if (json_is_integer(t) && unhex(json_string_value(sig), d->signature, 64) == 0 &&
	    unhex(json_string_value(pk), key, 32) == 0) {
		d->time_ms = json_integer_value(t);
		*signed_ok = kappa_digest_signed_by(d, key);
	}
	json_decref(j);
	return 0;
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
	printf("chain at %llu: ", (unsigned long long)res.end_position);
	for (int i = 0; i < 32; i++)
		printf("%02x", res.chain[i]);
	printf("\n");
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
