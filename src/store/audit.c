/*
 * audit.c -- the node's signing key, signed digests of the log's hash chain, and verifying
 * the chain (offline by directory, or on an open database up to its head).
 *
 * DATA/node.key holds "KPNK", the 64-byte Ed25519 secret key and a CRC-32C of the first 68
 * bytes; it is created with mode 0600 (temp file, fsync, rename, fsync dir) at first open.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/crc32c.h"
#include "store/store.h"

#define NODE_KEY_FILE "node.key"
#define NODE_KEY_MAGIC 0x4b4e504bu /* "KPNK" */
#define NODE_KEY_BYTES 72

static int
create_key(const char *path, kappa_db *db, kappa_err *err)
{
	uint8_t b[NODE_KEY_BYTES];
	kp_put_u32(b, NODE_KEY_MAGIC);
	crypto_sign_keypair(db->node_pk, b + 4);
	kp_put_u32(b + 68, kp_crc32c(0, b, 68));
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	int ok = fd >= 0 && write(fd, b, sizeof(b)) == (ssize_t)sizeof(b) && fsync(fd) == 0;
	int e = errno;
	if (fd >= 0)
		close(fd);
	if (ok && rename(tmp, path) < 0) {
		ok = 0;
		e = errno;
	}
	if (ok && kp_io_fsync_dir(kp_io_posix(), db->dir) < 0)
		ok = 0, e = EIO;
	if (!ok) {
		unlink(tmp);
		sodium_memzero(b, sizeof(b));
		return KP_ERR_SYS(err, kp_err_from_errno(e), e, "cannot create %s", path);
	}
	memcpy(db->node_sk, b + 4, 64);
	sodium_memzero(b, sizeof(b));
	return KAPPA_OK;
}

int
kp_audit_load_key(kappa_db *db, kappa_err *err)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/" NODE_KEY_FILE, db->dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return create_key(path, db, err);
	if (fd < 0)
		return KP_ERR_SYS(err, KAPPA_EIO, errno, "cannot open %s", path);
	uint8_t b[NODE_KEY_BYTES];
	ssize_t n = read(fd, b, sizeof(b));
	close(fd);
	int rc = KAPPA_OK;
	if (n != (ssize_t)sizeof(b) || kp_get_u32(b) != NODE_KEY_MAGIC ||
	    kp_get_u32(b + 68) != kp_crc32c(0, b, 68))
		rc = KP_ERR(err, KAPPA_ECORRUPT, "%s is damaged", path);
	else {
		memcpy(db->node_sk, b + 4, 64);
		crypto_sign_ed25519_sk_to_pk(db->node_pk, db->node_sk);
	}
	sodium_memzero(b, sizeof(b));
	return rc;
}

void
kappa_audit_public_key(kappa_db *db, uint8_t pk[32])
{
	memcpy(pk, db->node_pk, 32);
}

void
kappa_digest_message(const kappa_digest *d, uint8_t out[KAPPA_DIGEST_MESSAGE])
{
	static const char tag[16] = "kappa-digest-v1"; /* 15 characters and a NUL */
	memcpy(out, tag, 16);
	kp_put_u64(out + 16, d->position);
	kp_put_u64(out + 24, (uint64_t)d->time_ms);
	memcpy(out + 32, d->chain, 32);
}

int
kappa_digest_signed_by(const kappa_digest *d, const uint8_t pk[32])
{
	uint8_t m[KAPPA_DIGEST_MESSAGE];
	kappa_digest_message(d, m);
	return crypto_sign_verify_detached(d->signature, m, sizeof(m), pk) == 0;
}

/* Exactly 'n' bytes from 2n hex digits. */
static int
unhex(const char *s, uint8_t *out, size_t n)
{
	size_t len = 0;
	const char *end = NULL;
	return s && sodium_hex2bin(out, n, s, strlen(s), NULL, &len, &end) == 0 && len == n &&
			       *end == '\0'
		       ? 0
		       : -1;
}

char *
kappa_digest_to_json(const kappa_digest *d, const uint8_t pk[32])
{
	char chain[65], sig[129], key[65], t[KP_TIME_TEXT];
	sodium_bin2hex(chain, sizeof(chain), d->chain, 32);
	sodium_bin2hex(sig, sizeof(sig), d->signature, 64);
	sodium_bin2hex(key, sizeof(key), pk, 32);
	kp_format_time_ms(d->time_ms, t);
	json_t *j = json_pack("{s:I, s:s, s:s, s:I, s:s, s:s}", "position", (json_int_t)d->position,
			      "chain_hash", chain, "time", t, "time_ms", (json_int_t)d->time_ms,
			      "signature", sig, "public_key", key);
	char *out = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return out;
}

int
kappa_digest_from_json(const char *text, kappa_digest *d, int *signed_ok, kappa_err *err)
{
	memset(d, 0, sizeof(*d));
	*signed_ok = -1;
	json_error_t je;
	json_t *j = text ? json_loads(text, 0, &je) : NULL;
	json_t *pos = json_object_get(j, "position"), *ch = json_object_get(j, "chain_hash");
	if (!json_is_integer(pos) || json_integer_value(pos) < 0 ||
	    unhex(json_string_value(ch), d->chain, 32) < 0) {
		int rc = KP_ERR(err, KAPPA_EINVAL, "not a digest: %s",
				j ? "needs \"position\" and a 64-digit \"chain_hash\"" : je.text);
		json_decref(j);
		return rc;
	}
	d->position = (uint64_t)json_integer_value(pos);
	json_t *t = json_object_get(j, "time_ms");
	uint8_t key[32];
	if (json_is_integer(t) &&
	    unhex(json_string_value(json_object_get(j, "signature")), d->signature, 64) == 0 &&
	    unhex(json_string_value(json_object_get(j, "public_key")), key, 32) == 0) {
		d->time_ms = json_integer_value(t);
		*signed_ok = kappa_digest_signed_by(d, key);
	}
	json_decref(j);
	return KAPPA_OK;
}

int
kappa_audit_digest(kappa_db *db, kappa_digest *d, kappa_err *err)
{
	(void)err;
	memset(d, 0, sizeof(*d));
	kp_log_chain_head(db->log, &d->position, d->chain);
	d->time_ms = kp_now_ms();
	uint8_t m[KAPPA_DIGEST_MESSAGE];
	kappa_digest_message(d, m);
	crypto_sign_detached(d->signature, NULL, m, sizeof(m), db->node_sk);
	return KAPPA_OK;
}

/* Progress of kappa_audit_verify_progress, translated for its caller. */
typedef struct verify_progress {
	int (*cb)(void *ctx, const kappa_verify_progress *p);
	void *ctx;
	kappa_verify_progress p;
} verify_progress;

static int
on_progress(void *ctx, const kp_log_verify_result *so_far)
{
	verify_progress *vp = ctx;
	vp->p.positions_done = so_far->end_position - so_far->first_position;
	vp->p.bytes_done = so_far->bytes;
	vp->p.batches = so_far->batches;
	if (vp->p.bytes_total < vp->p.bytes_done)
		vp->p.bytes_total = vp->p.bytes_done;
	return vp->cb(vp->ctx, &vp->p);
}

static int
verify_dir(const char *logdir, uint64_t limit, const kappa_digest *against,
	   void (*report)(void *ctx, const char *line), void *ctx, verify_progress *vp,
	   kappa_verify_result *res, kappa_err *err)
{
	kp_log_digest d, *dp = NULL;
	if (against) {
		d.position = against->position;
		memcpy(d.chain, against->chain, 32);
		dp = &d;
	}
	kp_log_verify_result r;
	int rc = kp_log_verify_progress(logdir, NULL, limit, dp, report, ctx,
					vp ? on_progress : NULL, vp, &r, err);
	if (res) {
		memset(res, 0, sizeof(*res));
		res->first_position = r.first_position;
		res->end_position = r.end_position;
		res->batches = r.batches;
		res->events = r.events;
		res->bytes = r.bytes;
		memcpy(res->chain, r.chain, 32);
		res->digest_checked = r.digest_checked && r.digest_ok;
		res->seconds = r.seconds;
	}
	return rc;
}

int
kappa_verify(const char *dir, const kappa_digest *against,
	     void (*report)(void *ctx, const char *line), void *ctx, kappa_verify_result *res,
	     kappa_err *err)
{
	if (!dir || !*dir)
		return KP_ERR(err, KAPPA_EINVAL, "no data directory given");
	char logdir[4096];
	snprintf(logdir, sizeof(logdir), "%s/log", dir);
	struct stat st;
	if (stat(logdir, &st) < 0)
		return KP_ERR_SYS(err, errno == ENOENT ? KAPPA_ENOTFOUND : KAPPA_EIO, errno,
				  "%s is not a kappa data directory", dir);
	return verify_dir(logdir, UINT64_MAX, against, report, ctx, NULL, res, err);
}

int
kappa_audit_verify(kappa_db *db, const kappa_digest *against,
		   void (*report)(void *ctx, const char *line), void *ctx, kappa_verify_result *res,
		   kappa_err *err)
{
	char logdir[4096];
	snprintf(logdir, sizeof(logdir), "%s/log", db->dir);
	return verify_dir(logdir, kappa_head(db), against, report, ctx, NULL, res, err);
}

int
kappa_audit_verify_progress(kappa_db *db, const kappa_digest *against,
			    int (*progress)(void *ctx, const kappa_verify_progress *p), void *ctx,
			    kappa_verify_result *res, kappa_err *err)
{
	char logdir[4096];
	snprintf(logdir, sizeof(logdir), "%s/log", db->dir);
	/* The head first, then the size: the bytes below the head are all counted. */
	uint64_t head = kappa_head(db);
	kappa_stats st;
	kappa_stats_get(db, &st);
	verify_progress vp = {progress, ctx, {0}};
	vp.p.positions_total = head > st.first_position ? head - st.first_position : 0;
	vp.p.bytes_total = st.disk_bytes;
	return verify_dir(logdir, head, against, NULL, NULL, progress ? &vp : NULL, res, err);
}
