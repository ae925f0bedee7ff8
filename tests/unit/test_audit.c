/*
 * test_audit.c -- the audit hash chain through the public API: a fresh log verifies; the
 * chain continues across reopen, segment rolls and a torn tail cut by recovery; signed
 * digests check out and a forged one does not; one flipped payload byte is named by
 * verify (segment, offset, position); a rewrite of history with correct CRCs (truncate and
 * append different events) passes a plain CRC check but fails verification against a
 * digest saved before; a digest beyond the log or older than retention is refused.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kappa.h"
#include "testlib.h"

TestSuite(audit, .timeout = 120);

static kappa_db *
open_db(const char *dir, uint64_t segment_bytes)
{
	kappa_options o;
	kappa_options_init(&o);
	if (segment_bytes)
		o.segment_bytes = segment_bytes;
	kappa_db *db;
	kappa_err err;
	int rc = kappa_open(dir, &o, &db, &err);
	cr_assert_eq(rc, KAPPA_OK, "open %s: %s", dir, err.msg);
	return db;
}

static void
append_n(kappa_db *db, const char *stream, int n, const char *tag)
{
	for (int i = 0; i < n; i++) {
		char data[128];
		snprintf(data, sizeof(data), "{\"i\":%d,\"tag\":\"%s\"}", i, tag);
		kappa_event_in e = {.type = "Noted", .data = data};
		kappa_append_result r;
		kappa_err err;
		cr_assert_eq(kappa_append(db, stream, KAPPA_ANY, NULL, &e, 1, NULL, 0, &r, &err),
			     KAPPA_OK, "%s", err.msg);
	}
}

typedef struct lines {
	char text[4096];
} lines;

static void
collect(void *ctx, const char *line)
{
	lines *l = ctx;
	strncat(l->text, line, sizeof(l->text) - strlen(l->text) - 2);
	strcat(l->text, "\n");
}

static int
verify(const char *dir, const kappa_digest *d, kappa_verify_result *res, kappa_err *err, lines *l)
{
	memset(l, 0, sizeof(*l));
	return kappa_verify(dir, d, collect, l, res, err);
}

Test(audit, fresh_log_verifies_and_digests_are_signed)
{
	char *dir = kt_tmpdir("audit-fresh");
	kappa_db *db = open_db(dir, 0);
	kappa_digest d0;
	kappa_err err;
	cr_assert_eq(kappa_audit_digest(db, &d0, &err), KAPPA_OK);
	cr_assert_eq(d0.position, 0);
	append_n(db, "a", 50, "x");
	kappa_digest d;
	cr_assert_eq(kappa_audit_digest(db, &d, &err), KAPPA_OK);
	cr_assert_eq(d.position, 50);
	cr_assert(memcmp(d.chain, d0.chain, 32) != 0, "the chain moves with appends");
	uint8_t pk[32];
	kappa_audit_public_key(db, pk);
	cr_assert(kappa_digest_signed_by(&d, pk));
	kappa_digest forged = d;
	forged.position = 49;
	cr_assert(!kappa_digest_signed_by(&forged, pk), "a changed digest fails its signature");
	forged = d;
	forged.chain[0] ^= 1;
	cr_assert(!kappa_digest_signed_by(&forged, pk));

	kappa_verify_result res;
	cr_assert_eq(kappa_audit_verify(db, &d, NULL, NULL, &res, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(res.events, 50);
	cr_assert(res.digest_checked);
	cr_assert_eq(memcmp(res.chain, d.chain, 32), 0);
	kappa_close(db);

	lines l;
	cr_assert_eq(verify(dir, &d0, &res, &err, &l), KAPPA_OK, "%s", err.msg);
	cr_assert(res.digest_checked, "a digest of the empty log is the genesis value");
	cr_assert_eq(verify(dir, &d, &res, &err, &l), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(res.end_position, 50);
	cr_assert_eq(res.batches, 50);
	kt_rmdir(dir);
}

Test(audit, chain_continues_across_reopen_rolls_and_a_torn_tail)
{
	char *dir = kt_tmpdir("audit-reopen");
	kappa_db *db = open_db(dir, 64 * 1024); /* small segments: many rolls */
	append_n(db, "a", 600, "first");
	kappa_close(db);
	db = open_db(dir, 64 * 1024);
	append_n(db, "b", 600, "second");
	kappa_digest d;
	kappa_err err;
	cr_assert_eq(kappa_audit_digest(db, &d, &err), KAPPA_OK);
	kappa_close(db);

	/* Garbage after the last batch, as a crash mid-write leaves: the next open cuts it,
	 * and the chain goes on from the last whole batch. */
	char logdir[512];
	snprintf(logdir, sizeof(logdir), "%s/log", dir);
	uint64_t last = 0;
	for (uint64_t p = 0; p < 1200; p++) {
		char *f = kt_seg_file(logdir, p, "log");
		struct stat st;
		if (stat(f, &st) == 0)
			last = p;
		free(f);
	}
	char *seg = kt_seg_file(logdir, last, "log");
	int fd = open(seg, O_RDWR);
	cr_assert(fd >= 0);
	uint64_t end = 0;
	for (;;) { /* walk the batches to the end of the data (zeros follow) */
		uint8_t h[80];
		if (pread(fd, h, sizeof(h), (off_t)end) != (ssize_t)sizeof(h) || h[0] == 0)
			break;
		end += (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 |
		       (uint32_t)h[11] << 24;
	}
	uint8_t junk[100];
	memset(junk, 0xab, sizeof(junk));
	cr_assert_eq(pwrite(fd, junk, sizeof(junk), (off_t)end), (ssize_t)sizeof(junk));
	free(seg);
	close(fd);
	db = open_db(dir, 64 * 1024);
	append_n(db, "c", 10, "third");
	kappa_close(db);

	kappa_verify_result res;
	lines l;
	cr_assert_eq(verify(dir, &d, &res, &err, &l), KAPPA_OK, "%s\n%s", err.msg, l.text);
	cr_assert_eq(res.end_position, 1210);
	cr_assert(res.digest_checked);
	kt_rmdir(dir);
}

/* The segment file holding 'pos' and the file offset of its batch (one event per batch). */
static char *
batch_at(const char *dir, uint64_t pos, uint64_t *off)
{
	char logdir[512];
	snprintf(logdir, sizeof(logdir), "%s/log", dir);
	char *f = kt_seg_file(logdir, 0, "log");
	int fd = open(f, O_RDONLY);
	cr_assert(fd >= 0);
	uint64_t o = 0;
	for (uint64_t p = 0; p < pos; p++) {
		uint8_t h[80];
		cr_assert_eq(pread(fd, h, sizeof(h), (off_t)o), (ssize_t)sizeof(h));
		uint32_t len = (uint32_t)h[8] | (uint32_t)h[9] << 8 | (uint32_t)h[10] << 16 |
			       (uint32_t)h[11] << 24;
		o += len;
	}
	close(fd);
	*off = o;
	return f;
}

Test(audit, a_flipped_byte_is_named)
{
	char *dir = kt_tmpdir("audit-flip");
	kappa_db *db = open_db(dir, 0);
	append_n(db, "a", 20, "x");
	kappa_close(db);
	uint64_t off;
	char *seg = batch_at(dir, 7, &off);
	kt_flip_byte(seg, off + 80 + 40); /* inside batch 7's payload */
	kappa_verify_result res;
	kappa_err err;
	lines l;
	cr_assert_eq(verify(dir, NULL, &res, &err, &l), KAPPA_ECORRUPT);
	char want[64];
	snprintf(want, sizeof(want), "offset %" PRIu64 " position 7", off);
	cr_assert(strstr(err.msg, want) && strstr(err.msg, "00000000000000000000.log"),
		  "the break is named: %s", err.msg);
	cr_assert_eq(res.end_position, 7, "verified up to the break");
	free(seg);
	kt_rmdir(dir);
}

/* Rewrite history the way an attacker with the files would: cut the log at position 10
 * and append different events through kappa itself, so every CRC and every later link is
 * right. A plain check passes; only a digest saved before tells. */
Test(audit, a_rewrite_fails_against_an_earlier_digest)
{
	char *dir = kt_tmpdir("audit-rewrite");
	kappa_db *db = open_db(dir, 0);
	append_n(db, "a", 20, "true");
	kappa_digest before;
	kappa_err err;
	cr_assert_eq(kappa_audit_digest(db, &before, &err), KAPPA_OK);
	kappa_close(db);

	uint64_t off;
	char *seg = batch_at(dir, 10, &off);
	kt_truncate(seg, off);
	char idx[600];
	snprintf(idx, sizeof(idx), "%.*sidx", (int)(strlen(seg) - 3), seg);
	unlink(idx); /* the index points past the cut: let open rebuild it */
	db = open_db(dir, 0);
	append_n(db, "a", 10, "forged");
	kappa_close(db);
	free(seg);

	kappa_verify_result res;
	lines l;
	cr_assert_eq(verify(dir, NULL, &res, &err, &l), KAPPA_OK, "the rewrite is self-consistent");
	cr_assert_eq(res.end_position, 20);
	cr_assert_eq(verify(dir, &before, &res, &err, &l), KAPPA_ECORRUPT);
	cr_assert(strstr(err.msg, "rewritten"), "%s", err.msg);

	kappa_digest beyond = before;
	beyond.position = 1000;
	cr_assert_eq(verify(dir, &beyond, &res, &err, &l), KAPPA_ECORRUPT);
	cr_assert(strstr(err.msg, "ends before"), "%s", err.msg);
	kt_rmdir(dir);
}

Test(audit, a_missing_genesis_or_node_key_damage_is_refused)
{
	char *dir = kt_tmpdir("audit-genesis");
	kappa_db *db = open_db(dir, 0);
	append_n(db, "a", 3, "x");
	kappa_close(db);
	char p[600];
	snprintf(p, sizeof(p), "%s/node.key", dir);
	struct stat st;
	cr_assert_eq(stat(p, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "the node key is private");
	kt_flip_byte(p, 10);
	kappa_options o;
	kappa_options_init(&o);
	kappa_err err;
	cr_assert_eq(kappa_open(dir, &o, &db, &err), KAPPA_ECORRUPT);
	cr_assert(strstr(err.msg, "node.key"), "%s", err.msg);
	kt_flip_byte(p, 10);
	snprintf(p, sizeof(p), "%s/log/genesis", dir);
	unlink(p);
	cr_assert_eq(kappa_open(dir, &o, &db, &err), KAPPA_ECORRUPT);
	cr_assert(strstr(err.msg, "genesis"), "%s", err.msg);
	kappa_verify_result res;
	cr_assert_eq(kappa_verify(dir, NULL, NULL, NULL, &res, &err), KAPPA_ECORRUPT);
	kt_rmdir(dir);
}
