/*
 * log.h -- kappa's durable, checksummed, segmented event log.
 *
 * A log is a directory of segment files named by the position of their first event, each a
 * sequence of record batches (batch.h), plus a sparse index file per segment. One writer
 * thread assigns dense positions from 0 and group-commits: every batch queued while the
 * previous sync ran goes out in one pwritev and one fdatasync, and each caller learns its
 * position only after that sync returned. Readers run concurrently and see only committed
 * batches. This layer knows nothing of streams' rules (expected versions, request ids,
 * claims): the store layer supplies a 'prepare' callback that the writer runs serially.
 *
 * Design notes (invariants):
 *  1. Positions are dense: batch N+1's first position is batch N's first position + count.
 *  2. A caller is told KAPPA_OK only after its bytes were written and, in 'always' mode,
 *     fdatasync returned. A failed write or sync latches the log into KAPPA_EFATAL: every
 *     pending and later append fails until the log is reopened (pages whose sync failed are
 *     never trusted again). A write refused with ENOSPC is cut back and answered
 *     KAPPA_ENOSPC without latching, so appends resume when space is freed.
 *  3. A group never spans two segments. A segment is rolled only between groups, after the
 *     previous group was synced, and the new file's directory entry is synced before
 *     anything in it is acknowledged.
 *  4. Index entries are written only for batches whose bytes are known to be synced, so the
 *     last index entry of the last segment is a recovery point: opening scans only from it.
 *  5. Recovery cuts a torn tail and nothing else. An invalid batch at position P after the
 *     recovery point is a torn tail unless a valid batch after it carries durable_below > P
 *     (written after a sync that covered P): then P had been synced, which is corruption,
 *     and the open stops naming segment, offset and position.
 *
 * Thread: kp_log_append, kp_log_submit, readers and kp_log_head may be called from any
 * thread at once. kp_log_close must not race any other call on the same log.
 */
#ifndef KP_LOG_H
#define KP_LOG_H

#include <stdint.h>

#include "base/io.h"
#include "kappa.h"
#include "log/batch.h"

typedef struct kp_log kp_log;

typedef enum kp_fsync_mode {
	KP_FSYNC_ALWAYS = 0, /* fdatasync every group before acknowledging it (default) */
	KP_FSYNC_INTERVAL,   /* acknowledge after write; fdatasync every fsync_interval_ms */
	KP_FSYNC_NEVER,	     /* acknowledge after write; sync only on roll and close */
} kp_fsync_mode;

typedef struct kp_log_options {
	kp_fsync_mode fsync_mode;
	uint32_t fsync_interval_ms;    /* KP_FSYNC_INTERVAL: at most this long unsynced */
	uint64_t segment_bytes;	       /* roll threshold, 4 KiB..1 GiB (default 256 MiB) */
	uint32_t index_interval_bytes; /* one index entry per this much data (default 4 KiB) */
	uint64_t prealloc_bytes;       /* zero-filled space kept ahead of the writer; 0 = off */
	kp_batch_limits limits;	       /* per event / per batch (defaults 1 MiB, 16 MiB, 100000) */
	uint64_t max_group_bytes;      /* cap on one group-commit write (default 64 MiB) */
	int64_t retention_ms;	       /* delete sealed segments older than this; 0 = off */
	uint64_t retention_bytes;      /* keep sealed segments under this total; 0 = off */
	const kp_io *io;	       /* file I/O; NULL = POSIX */
	/* Where the log reports what recovery did (cut tails, rebuilt indexes): one line per
	 * call, no newline. NULL = silent. The library itself never prints. */
	void (*notice)(void *ctx, const char *line);
	void *notice_ctx;
	/* Group hooks, called in the writer thread (both optional). group_commit: every batch
	 * prepared since the last hook call is now written and synced per the policy, just
	 * before the callers are answered; 'end' is the position after them. group_abort: the
	 * batches prepared since the last hook call (from position 'first' on) will never be
	 * written: undo what their prepare did. */
	void (*group_commit)(void *ctx, uint64_t end);
	void (*group_abort)(void *ctx, uint64_t first);
	/* Called in the writer thread when it has nothing queued, before it sleeps, and again
	 * when kp_log_kick wakes it. Returns -1, or in how many ms to call it again if the
	 * writer is still idle then. */
	int (*idle)(void *ctx);
	void *hook_ctx;
} kp_log_options;

/* A 'prepare' callback's "skip" answer: write nothing for this request, and answer it
 * KAPPA_OK together with the group being built (after that group's sync), e.g. a retry of a
 * request that is already in the log or in this group. */
#define KP_PREPARE_SKIP 1

/* Fill 'o' with the defaults. */
void kp_log_options_init(kp_log_options *o);

/* Open (creating if absent) the log in directory 'dir'.
 *  OUT: *out, the log (NULL on error).
 * Errors: KAPPA_EINVAL (bad options), KAPPA_ELOCKED (another handle or process has it open),
 * KAPPA_ECORRUPT (a bad batch before the tail: the message names segment, offset and
 * position), KAPPA_EIO / KAPPA_ENOSPC / KAPPA_ENOMEM. */
int kp_log_open(const char *dir, const kp_log_options *o, kp_log **out, kappa_err *err);

/* Stop the writer after it has finished every queued append, sync, and free the log. */
void kp_log_close(kp_log *log);

/* ---- appending ---------------------------------------------------------------------- */

/* An asynchronous append request. The caller owns it and keeps it (and its batch) alive
 * until 'done' was called. */
typedef struct kp_log_req kp_log_req;
struct kp_log_req {
	kp_batch *batch;
	/* Optional, run in the writer thread in position order just before the batch is placed
	 * at 'first_position'. Return KAPPA_OK to write it, KP_PREPARE_SKIP to write nothing but
	 * answer with the group, or an error (filled into 'err') to reject it; a rejected or
	 * skipped batch takes no position. It may rewrite the events' versions in the batch
	 * (kp_batch_set_versions) but not its size. It may not call into the log. */
	int (*prepare)(kp_log_req *req, uint64_t first_position, kappa_err *err);
	/* Called exactly once, from the writer thread (or from kp_log_submit itself when the
	 * request is refused up front), when the batch is durable per the fsync policy (rc ==
	 * KAPPA_OK, req->first_position set) or has failed (rc < 0, req->err filled). It must
	 * not block and must not call back into the log. */
	void (*done)(kp_log_req *req, int rc);
	void *ctx;
	/* Set by the log. */
	uint64_t first_position;
	kappa_err err;
	kp_log_req *next;
};

/* Queue 'req'. Errors are delivered through req->done, never returned. */
void kp_log_submit(kp_log *log, kp_log_req *req);

/* Append one batch and wait until it is durable (per the fsync policy).
 *  OUT: *first_position, the position of the batch's first event.
 * Errors: KAPPA_EINVAL (empty batch), KAPPA_EFATAL (the log failed earlier), KAPPA_ENOSPC,
 * KAPPA_EIO, KAPPA_ECLOSED, or whatever 'prepare' returned. */
int kp_log_append(kp_log *log, kp_batch *batch, uint64_t *first_position, kappa_err *err);

/* The same with a prepare callback and context (see kp_log_req). */
int kp_log_append_prepared(kp_log *log, kp_batch *batch,
			   int (*prepare)(kp_log_req *, uint64_t, kappa_err *), void *ctx,
			   uint64_t *first_position, kappa_err *err);

/* Wake the writer so that it runs its idle hook (if it is idle). Thread: any. */
void kp_log_kick(kp_log *log);

/* ---- reading ------------------------------------------------------------------------ */

/* The position the next appended event will get, counting only committed (readable)
 * events: the log holds [kp_log_first(log), kp_log_head(log)). */
uint64_t kp_log_head(kp_log *log);

/* The first position still held (above 0 once retention removed segments). */
uint64_t kp_log_first(kp_log *log);

/* Wait until kp_log_head(log) > 'position' or 'timeout_ms' passed (< 0: forever).
 * Returns KAPPA_OK, KAPPA_ETIMEOUT, KAPPA_ECLOSED or KAPPA_EFATAL. */
int kp_log_wait(kp_log *log, uint64_t position, int64_t timeout_ms);

/* A reader positioned in the log. Events it returns borrow from its buffer and stay valid
 * until the next kp_log_iter_next or kp_log_iter_close on it. One iterator is used by one
 * thread at a time; any number may exist at once. */
typedef struct kp_log_iter kp_log_iter;

/* Start reading at 'from'. Errors: KAPPA_ERANGE (below kp_log_first: removed by
 * retention), KAPPA_ENOMEM. 'from' at or past the head is allowed: the iterator returns
 * events as they are committed. */
int kp_log_iter_open(kp_log *log, uint64_t from, kp_log_iter **out, kappa_err *err);

/* Next event: 1 with 'ev' filled, 0 when no further committed event exists yet (call again
 * later), or an error: KAPPA_ECORRUPT (names segment, offset, position), KAPPA_ERANGE (the
 * next position was removed by retention before the reader got there; a segment it is
 * already reading stays readable until it moves on), KAPPA_EIO, KAPPA_ENOMEM. */
int kp_log_iter_next(kp_log_iter *it, kp_event *ev, kappa_err *err);

/* Move the iterator to 'position' (forwards or backwards); reuses its buffer. Errors as for
 * kp_log_iter_open. */
int kp_log_iter_seek(kp_log_iter *it, uint64_t position, kappa_err *err);

/* The position the next kp_log_iter_next would return. */
uint64_t kp_log_iter_position(const kp_log_iter *it);

void kp_log_iter_close(kp_log_iter *it);

/* Call 'cb' for up to 'max' committed events from 'from' (borrowed for the call only). 'cb'
 * returns 0 to continue or non-zero to stop (returned as is). Returns KAPPA_OK when it ran
 * out of events or reached 'max'. */
int kp_log_read(kp_log *log, uint64_t from, uint64_t max, int (*cb)(void *ctx, const kp_event *ev),
		void *ctx, kappa_err *err);

/* ---- maintenance -------------------------------------------------------------------- */

/* Apply retention now (the writer also does this on each roll and about once a second).
 * Returns KAPPA_OK or an I/O error. */
int kp_log_enforce_retention(kp_log *log, kappa_err *err);

/* Statistics, for metrics and benchmarks. */
#define KP_LOG_BUCKETS 12
typedef struct kp_log_stats {
	uint64_t appends;	 /* batches committed */
	uint64_t events;	 /* events committed */
	uint64_t bytes;		 /* batch bytes written */
	uint64_t groups;	 /* group-commit writes */
	uint64_t syncs;		 /* fdatasync calls on segments */
	uint64_t sync_ns_total;	 /* time spent in those */
	uint64_t rolls;		 /* segments rolled */
	uint64_t segments;	 /* segments currently held */
	uint64_t prealloc_waits; /* groups that outran the zero-filled space */
	uint64_t first_pos;	 /* first retained position */
	uint64_t head;		 /* next position to commit */
	uint64_t disk_bytes;	 /* bytes of segment files (sealed: size on disk) */
	/* Histograms, one count per bucket (not cumulative); bounds in kp_log_sync_bucket_ns
	 * and kp_log_group_bucket; the last bucket is unbounded. */
	uint64_t sync_buckets[KP_LOG_BUCKETS];
	uint64_t group_buckets[KP_LOG_BUCKETS];
} kp_log_stats;

/* Upper bounds of the histogram buckets (the last one, KP_LOG_BUCKETS - 1, has none). */
extern const uint64_t kp_log_sync_bucket_ns[KP_LOG_BUCKETS - 1]; /* fdatasync latency */
extern const uint64_t kp_log_group_bucket[KP_LOG_BUCKETS - 1];	 /* appends per group commit */

void kp_log_get_stats(kp_log *log, kp_log_stats *st);

/* Copy up to 'max' segments, oldest first, into 'out' under the segment lock (no I/O; see
 * kappa_segment_info in kappa.h). Returns how many segments the log holds (more than 'max'
 * when 'out' was too short). */
size_t kp_log_segments(kp_log *log, kappa_segment_info *out, size_t max);

/* ---- the audit chain ------------------------------------------------------------------ */

/* Every batch carries BLAKE2b-256(previous chain value || its header after the CRC, without
 * the chain field || its payload); the first follows a random genesis value kept in
 * DIR/genesis, written when the log is created. */
#define KP_GENESIS_FILE "genesis"
#define KP_GENESIS_MAGIC 0x4e47504bu /* "KPGN" */
#define KP_GENESIS_BYTES 40	     /* magic, 32-byte value, CRC-32C of the first 36 */

/* The committed head and the chain value of the batch just below it (the genesis value for
 * an empty log), read together. */
void kp_log_chain_head(kp_log *log, uint64_t *head, uint8_t chain[32]);
/* Read DIR/genesis. Errors: KAPPA_ECORRUPT (missing or damaged), KAPPA_EIO. */
int kp_log_read_genesis(const kp_io *io, const char *dir, uint8_t out[32], kappa_err *err);

/* A chain value at a position, saved to prove later that history was not rewritten. */
typedef struct kp_log_digest {
	uint64_t position; /* the events below it are covered */
	uint8_t chain[32]; /* the chain value of the batch ending there */
} kp_log_digest;

typedef struct kp_log_verify_result {
	uint64_t first_position, end_position; /* what was verified: [first, end) */
	uint64_t batches, events, bytes;
	uint8_t chain[32]; /* the chain value at end_position */
	int digest_checked, digest_ok;
	double seconds;
} kp_log_verify_result;

/* Recompute the audit chain of the log in 'dir' (read-only, no lock), up to 'limit_pos'
 * (UINT64_MAX: all), and with 'digest' also check that the log extends it. Calls 'report'
 * once per finding. Returns KAPPA_OK, KAPPA_ECORRUPT (the first break, named in 'err':
 * segment, offset, position; or a digest the log does not extend), or an I/O error. 'io':
 * NULL for POSIX. */
int kp_log_verify(const char *dir, const kp_io *io, uint64_t limit_pos, const kp_log_digest *digest,
		  void (*report)(void *ctx, const char *line), void *ctx, kp_log_verify_result *res,
		  kappa_err *err);

/* The same, and 'progress' (or NULL) is called with what was verified so far after about
 * every KP_VERIFY_PROGRESS_BYTES of batches; a non-zero answer stops the verification with
 * KAPPA_ECLOSED. */
#define KP_VERIFY_PROGRESS_BYTES (1u << 20)
int kp_log_verify_progress(const char *dir, const kp_io *io, uint64_t limit_pos,
			   const kp_log_digest *digest, void (*report)(void *ctx, const char *line),
			   void *ctx,
			   int (*progress)(void *ctx, const kp_log_verify_result *so_far),
			   void *pctx, kp_log_verify_result *res, kappa_err *err);

/* Verify every batch of every segment of the log in 'dir' without modifying anything and
 * without taking the lock. Calls 'report' once per finding (one line each). Returns
 * KAPPA_OK if the log is sound (a torn tail that an open would cut is reported but is not
 * an error), KAPPA_ECORRUPT if any batch before the tail is bad or positions have gaps, or
 * an I/O error. 'events' and 'batches' (may be NULL) receive what was checked. */
int kp_log_check(const char *dir, void (*report)(void *ctx, const char *line), void *ctx,
		 uint64_t *events, uint64_t *batches, kappa_err *err);

#endif
