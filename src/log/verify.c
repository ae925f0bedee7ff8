/*
 * verify.c -- kp_log_verify: recompute the audit hash chain over the whole log.
 *
 * Reads every segment front to back, checks each batch's header, CRC and chain link, and
 * stops at the first break, naming segment, offset and position. With a digest saved
 * earlier it also proves that the log still extends it: the chain value recomputed at the
 * digest's position must equal the digest's. Nothing is modified and no lock is taken, so
 * it runs beside a live writer (bounded by 'limit_pos', the head when it started) or on a
 * copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "log/log_int.h"

typedef struct verifier {
	const kp_io *io;
	const kp_log_digest *digest;
	void (*report)(void *ctx, const char *line);
	void *ctx;
	int (*progress)(void *ctx, const kp_log_verify_result *so_far);
	void *pctx;
	uint64_t progress_bytes; /* res->bytes at the last progress call */
	kp_log_verify_result *res;
	uint8_t prev[32];
	int have_prev;
	uint8_t *buf;
	size_t cap;
} verifier;

static void __attribute__((format(printf, 2, 3))) say(verifier *v, const char *fmt, ...)
{
	if (!v->report)
		return;
	char line[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	v->report(v->ctx, line);
}

/* The digest check, at a batch boundary 'pos' whose chain value is 'chain'. */
static void
digest_at(verifier *v, uint64_t pos, const uint8_t chain[32])
{
	if (!v->digest || v->res->digest_checked || pos != v->digest->position)
		return;
	v->res->digest_checked = 1;
	v->res->digest_ok = !memcmp(chain, v->digest->chain, 32);
}

/* Read bytes [skip, n) of the batch at 'off' into v->buf at the same place (the first 'skip'
 * bytes are there already). Returns bytes now in v->buf (< n at end of file) or -errno. */
static ssize_t
read_at(verifier *v, int fd, size_t skip, size_t n, uint64_t off)
{
	if (n > v->cap) {
		uint8_t *nb = realloc(v->buf, n); /* keeps the bytes already read */
		if (!nb)
			return -ENOMEM;
		v->buf = nb;
		v->cap = n;
	}
	ssize_t r = kp_io_pread_full(v->io, fd, v->buf + skip, n - skip, (off_t)(off + skip));
	return r < 0 ? r : (ssize_t)skip + r;
}

/* Verify one segment. Returns KAPPA_OK, KAPPA_ECORRUPT (reported) or an I/O error. */
static int
verify_segment(verifier *v, const char *path, uint64_t first_pos, uint64_t next_first, int last,
	       uint64_t limit_pos, kappa_err *err)
{
	kp_log_verify_result *res = v->res;
	int fd = v->io->open(v->io, path, O_RDONLY, 0);
	if (fd < 0)
		return KP_ERR_SYS(err, KAPPA_EIO, -fd, "cannot open %s", path);
	uint64_t off = 0, pos = first_pos;
	int rc = KAPPA_OK;
	while (pos < limit_pos) {
		ssize_t n = read_at(v, fd, 0, KP_BATCH_HEADER, off);
		if (n < 0) {
			rc = KP_ERR_SYS(err, KAPPA_EIO, (int)-n, "cannot read %s", path);
			break;
		}
		kp_batch_hdr h;
		kappa_err why;
		if (n == 0 || (n == KP_BATCH_HEADER && kp_get_u32(v->buf) == 0))
			break; /* end of data (preallocated zeros) */
		if (n < KP_BATCH_HEADER ||
		    kp_batch_hdr_decode(v->buf, &h, UINT32_MAX, &why) != KAPPA_OK) {
			if (n < KP_BATCH_HEADER)
				snprintf(why.msg, sizeof(why.msg), "a batch header cut short");
			say(v, "break: %s offset %" PRIu64 " position %" PRIu64 ": %s", path, off,
			    pos, why.msg);
			rc = KP_ERR(err, KAPPA_ECORRUPT, "%s offset %" PRIu64 ": %s", path, off,
				    why.msg);
			break;
		}
		n = read_at(v, fd, KP_BATCH_HEADER, h.length, off); /* the rest of it */
		if (n < 0) {
			rc = KP_ERR_SYS(err, KAPPA_EIO, (int)-n, "cannot read %s", path);
			break;
		}
		const char *bad = NULL;
		uint8_t chain[32];
		if (n < (ssize_t)h.length)
			bad = "the batch is cut short";
		else if (h.first_position != pos)
			bad = "its position does not follow the previous batch's";
		else if (!kp_batch_crc_ok(v->buf, &h))
			bad = "its CRC does not match its bytes";
		else if (!(h.flags & KP_BATCH_CHAINED))
			bad = "it is not linked into the audit chain";
		if (!bad && !v->have_prev) {
			/* Retention removed what came before: this batch's link is taken on
			 * trust, every later one is verified. */
			memcpy(v->prev, h.chain, 32);
			memcpy(chain, h.chain, 32);
			say(v,
			    "note: the log starts at position %" PRIu64
			    " (retention); links are verified from there",
			    pos);
		} else if (!bad) {
			kp_batch_chain(v->buf, h.length, v->prev, chain);
			if (memcmp(chain, h.chain, 32))
				bad = "its chain value does not follow from the batch before it "
				      "(rewritten history)";
		}
		if (bad) {
			say(v, "break: %s offset %" PRIu64 " position %" PRIu64 ": %s", path, off,
			    pos, bad);
			rc = KP_ERR(err, KAPPA_ECORRUPT,
				    "%s offset %" PRIu64 " position %" PRIu64 ": %s", path, off,
				    pos, bad);
			break;
		}
		memcpy(v->prev, chain, 32);
		v->have_prev = 1;
		off += h.length;
		pos += h.count;
		res->batches++;
		res->events += h.count;
		res->bytes += h.length;
		res->end_position = pos;
		memcpy(res->chain, chain, 32);
		digest_at(v, pos, chain);
		if (v->progress && res->bytes - v->progress_bytes >= KP_VERIFY_PROGRESS_BYTES) {
			v->progress_bytes = res->bytes;
			if (v->progress(v->pctx, res)) {
				rc = KP_ERR(err, KAPPA_ECLOSED,
					    "verification stopped at position %" PRIu64, pos);
				break;
			}
		}
	}
	v->io->close(v->io, fd);
	if (rc == KAPPA_OK && !last && pos != next_first) {
		say(v,
		    "break: %s ends at position %" PRIu64
		    " but the next segment starts at %" PRIu64,
		    path, pos, next_first);
		rc = KP_ERR(err, KAPPA_ECORRUPT,
			    "%s ends at position %" PRIu64 ", the next segment starts at %" PRIu64,
			    path, pos, next_first);
	}
	return rc;
}

int
kp_log_verify(const char *dir, const kp_io *io, uint64_t limit_pos, const kp_log_digest *digest,
	      void (*report)(void *ctx, const char *line), void *ctx, kp_log_verify_result *res,
	      kappa_err *err)
{
	return kp_log_verify_progress(dir, io, limit_pos, digest, report, ctx, NULL, NULL, res,
				      err);
}

int
kp_log_verify_progress(const char *dir, const kp_io *io, uint64_t limit_pos,
		       const kp_log_digest *digest, void (*report)(void *ctx, const char *line),
		       void *ctx, int (*progress)(void *ctx, const kp_log_verify_result *so_far),
		       void *pctx, kp_log_verify_result *res, kappa_err *err)
{
	memset(res, 0, sizeof(*res));
	verifier v = {io ? io : kp_io_posix(),
		      digest,
		      report,
		      ctx,
		      progress,
		      pctx,
		      0,
		      res,
		      {0},
		      0,
		      NULL,
		      0};
	uint64_t t0 = kp_mono_ns();
	uint8_t genesis[32];
	int rc = kp_log_read_genesis(v.io, dir, genesis, err);
	if (rc)
		return rc;
	uint64_t *firsts;
	size_t n;
	if ((rc = kp_seg_list(dir, &firsts, &n, err)))
		return rc;
	if (n && firsts[0] == 0) {
		memcpy(v.prev, genesis, 32);
		v.have_prev = 1;
	}
	res->first_position = n ? firsts[0] : 0;
	res->end_position = res->first_position;
	memcpy(res->chain, genesis, 32);
	if (digest && digest->position == 0 && res->first_position == 0)
		digest_at(&v, 0, genesis);
	for (size_t i = 0; i < n && rc == KAPPA_OK; i++) {
		char *path = kp_seg_path(dir, firsts[i]);
		if (!path) {
			rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
			break;
		}
		rc = verify_segment(&v, path, firsts[i], i + 1 < n ? firsts[i + 1] : 0, i + 1 == n,
				    limit_pos, err);
		free(path);
	}
	free(firsts);
	free(v.buf);
	res->seconds = (double)(kp_mono_ns() - t0) / 1e9;
	if (rc)
		return rc;
	if (digest && !res->digest_checked) {
		const char *why = digest->position < res->first_position
					  ? "the digest is older than what retention kept"
				  : digest->position > res->end_position
					  ? "the log ends before the digest's position"
					  : "the digest's position is not a batch boundary";
		say(&v, "digest: cannot check position %" PRIu64 ": %s", digest->position, why);
		return KP_ERR(err, KAPPA_ECORRUPT, "digest at position %" PRIu64 ": %s",
			      digest->position, why);
	}
	if (digest && !res->digest_ok) {
		say(&v,
		    "digest: the chain at position %" PRIu64
		    " differs from the digest's: history was rewritten",
		    digest->position);
		return KP_ERR(err, KAPPA_ECORRUPT,
			      "the log does not extend the digest at position %" PRIu64
			      ": history was rewritten",
			      digest->position);
	}
	return KAPPA_OK;
}
