/*
 * kappa.h -- the public API of libkappa, an event-log database.
 *
 * An immutable, durable event log is the single source of truth; views are derived from it.
 * This header is the only one a program embedding kappa includes. Everything declared here
 * is stable; everything under src/ is internal.
 *
 * Conventions
 *  - Functions that can fail return int: KAPPA_OK (0) or a negative KAPPA_E* code.
 *  - Details of a failure go into an optional caller-owned kappa_err: pass NULL if you only
 *    want the code. The library never prints and never allocates on the error path.
 */
#ifndef KAPPA_H
#define KAPPA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KAPPA_VERSION_MAJOR 0
#define KAPPA_VERSION_MINOR 1
#define KAPPA_VERSION_PATCH 0
#define KAPPA_VERSION_STRING "0.1.0"

/*
 * Result codes. Library codes sit in a reserved negative range (as LMDB does) so they never
 * collide with -errno values that internal layers pass around.
 */
enum kappa_code {
	KAPPA_OK = 0,
	KAPPA_EINVAL = -30900, /* a bad argument: name, size, count, format */
	KAPPA_ETOOBIG,	       /* an event, batch or request over its configured limit */
	KAPPA_ENOMEM,	       /* an allocation failed */
	KAPPA_EIO,	       /* an I/O call failed (the message names the file and call) */
	KAPPA_ENOSPC,	       /* the disk is full; nothing was written */
	KAPPA_ECORRUPT,	       /* stored bytes fail their checksum or format checks */
	KAPPA_EFATAL,	       /* an earlier write or sync failed: reopen to recover */
	KAPPA_ELOCKED,	       /* the data directory is in use by another handle or process */
	KAPPA_ERANGE,	 /* a position outside what the log holds (e.g. removed by retention) */
	KAPPA_ECLOSED,	 /* the handle is closing */
	KAPPA_ENOTFOUND, /* no such stream, view, query or subject */
	KAPPA_EWRONG_VERSION,  /* expected_version did not match the stream */
	KAPPA_EREQUEST_REUSED, /* a request id was reused with different content */
	KAPPA_ECLAIM_TAKEN,    /* a uniqueness claim is held by another stream */
	KAPPA_ETIMEOUT,	       /* a bounded wait ran out */
	KAPPA_EBUSY,	       /* overloaded: try again later */
	KAPPA_EFORGOTTEN,      /* the data subject was forgotten: its id cannot be reused */
	KAPPA_EKEY,	       /* a key file is missing, exposed or does not match (master key) */
	KAPPA_E_LAST	       /* not a code: one past the last */
};

/* Details of a failure, filled by the library when a function returns an error. */
typedef struct kappa_err {
	int code;	  /* the KAPPA_E* code also returned */
	int sys_errno;	  /* errno of the failing system call, or 0 */
	char msg[256];	  /* a lower-case message naming what failed, no trailing newline */
	const char *file; /* where in kappa the error was raised (for bug reports) */
	int line;
} kappa_err;

/* The short name of a code ("wrong_expected_version", "corrupt", ...). Never NULL. */
const char *kappa_strerror(int code);

/* The library version, e.g. "0.1.0". */
const char *kappa_version(void);

/* ==== Opening a database ================================================================ */

typedef struct kappa_db kappa_db;

/* Durability of appends. */
typedef enum kappa_fsync {
	KAPPA_FSYNC_ALWAYS = 0, /* acknowledged means on disk (fdatasync): the default */
	KAPPA_FSYNC_INTERVAL,	/* acknowledged after write; synced every fsync_interval_ms */
	KAPPA_FSYNC_NEVER,	/* acknowledged after write; synced on segment roll and close */
} kappa_fsync;

/* Limits of kappa's names and sizes. */
#define KAPPA_MAX_STREAM 200	 /* bytes of a stream name */
#define KAPPA_MAX_TYPE 100	 /* bytes of an event type */
#define KAPPA_MAX_SUBJECT 200	 /* bytes of a subject id */
#define KAPPA_MAX_REQUEST_ID 128 /* bytes of a request id */
#define KAPPA_MAX_CLAIM 512	 /* bytes of a claim key */

typedef struct kappa_options {
	kappa_fsync fsync;
	uint32_t fsync_interval_ms; /* KAPPA_FSYNC_INTERVAL (default 100) */
	uint64_t segment_bytes;	    /* log segment size (default 256 MiB) */
	int64_t retention_ms;	    /* delete log segments older than this (0: keep all) */
	uint64_t retention_bytes;   /* keep the log under this size (0: no limit) */
	int64_t dedup_window_ms;    /* request ids are remembered this long (default 7 days) */
	uint64_t dedup_min_ids;	    /* ... and at least this many of the latest (10 million) */
	uint64_t max_event_bytes;   /* one event, encoded (default 1 MiB) */
	uint64_t max_append_bytes;  /* one append, encoded (default 16 MiB) */
	uint32_t max_append_events; /* events in one append (default 10,000) */
	uint32_t max_append_claims; /* claims in one append (default 100) */
	uint64_t index_map_bytes;   /* address space reserved for the index (default 64 GiB) */
	/* The index is memory-mapped; pages it touches count in the process's RSS (as clean,
	 * reclaimable page cache). When they pass this many bytes, kappa unmaps them (they stay
	 * cached and fault back in when needed). 0: never. Default 256 MiB. */
	uint64_t index_rss_bytes;
	/* Directory of view definitions (*.sql), loaded at open; NULL: no views. */
	const char *views_dir;
	/* Where kappa reports what recovery did (torn tails cut, indexes rebuilt), one line per
	 * call. NULL: silent. */
	void (*notice)(void *ctx, const char *line);
	void *notice_ctx;
	/* The node master key (32 bytes, mode 0600) that seals the subject key store
	 * (DATA/keys/) and the node's secrets. NULL: DATA/master.key. Created at first open
	 * if absent; keep it apart from the data (a backup of DATA alone then holds no key). */
	const char *master_key_file;
	/* Accept subject ids that look like e-mail addresses (refused by default: subject ids
	 * are stored in clear, so they should be opaque, e.g. "user-123"). */
	int allow_identifying_subject;
} kappa_options;

/* Fill 'o' with the defaults. */
void kappa_options_init(kappa_options *o);

/* Open (creating if needed) the database in directory 'dir'.
 *  options: NULL for the defaults.
 *  OUT: *db (NULL on error).
 * Errors: KAPPA_EINVAL (bad options), KAPPA_ELOCKED (open elsewhere), KAPPA_ECORRUPT (the
 * log is damaged before its tail; the message names segment, offset and position),
 * KAPPA_EIO, KAPPA_ENOSPC, KAPPA_ENOMEM. */
int kappa_open(const char *dir, const kappa_options *options, kappa_db **db, kappa_err *err);

/* Finish pending appends, make everything durable, and free 'db'. No other call on 'db'
 * may run concurrently or follow. */
void kappa_close(kappa_db *db);

/* ==== Appending ========================================================================= */

/* expected_version: one of these, or an exact version (>= 0), the stream's current last. */
#define KAPPA_ANY (-1)	     /* no check */
#define KAPPA_NO_STREAM (-2) /* the stream must not exist yet */
#define KAPPA_EXISTS (-3)    /* the stream must exist */

/* One event to append. 'data' is a JSON object (required); 'metadata' a JSON object or
 * NULL; 'subject' NULL or the data subject's id. Lengths of 0 mean strlen(). */
typedef struct kappa_event_in {
	const char *type;
	const char *data;
	size_t data_len;
	const char *subject;
	const char *metadata;
	size_t metadata_len;
	/* With a subject: also seal the metadata (the data always is). */
	int seal_metadata;
} kappa_event_in;

/* A uniqueness claim: take 'key' for the stream (release = 0) or give it up (release = 1). */
typedef struct kappa_claim {
	const char *key;
	int release;
} kappa_claim;

typedef struct kappa_append_result {
	uint64_t first_position; /* position of the first event appended */
	uint64_t last_position;	 /* and of the last */
	uint64_t version;	 /* the stream's version after the append */
	int deduplicated;	 /* a retry of an earlier request: nothing was written */
	/* On KAPPA_EWRONG_VERSION: the stream's actual last version (-1: no such stream). */
	int64_t actual_version;
	/* On KAPPA_ECLAIM_TAKEN: the claim and the stream holding it. */
	char claim_key[KAPPA_MAX_CLAIM + 1];
	char claim_holder[KAPPA_MAX_STREAM + 1];
} kappa_append_result;

/* Append 'n' events to 'stream' atomically: all land, in order, in one batch, or none do.
 * Returns only when the events are durable (per the fsync option).
 *  expected_version: KAPPA_ANY, KAPPA_NO_STREAM, KAPPA_EXISTS or an exact version.
 *  request_id: NULL, or 1..KAPPA_MAX_REQUEST_ID bytes. A retry with the same id and the same
 *      content (stream, expected version, events, claims) returns the original result with
 *      deduplicated = 1 and writes nothing, also after a restart and while the first attempt
 *      is still being synced; ids are remembered for dedup_window_ms and at least the last
 *      dedup_min_ids of them. Past that window an id is forgotten and a retry appends again.
 *  claims: 'm' claims and releases applied with the events.
 *  OUT: *result (may be NULL).
 * Errors: KAPPA_EINVAL (a bad name, type, id, claim or JSON), KAPPA_ETOOBIG (over a limit),
 * KAPPA_EWRONG_VERSION (result->actual_version), KAPPA_EREQUEST_REUSED (same id, other
 * content), KAPPA_ECLAIM_TAKEN (result->claim_key, ->claim_holder), KAPPA_ENOSPC,
 * KAPPA_EFATAL (an earlier write or sync failed: reopen), KAPPA_EBUSY, KAPPA_ECLOSED.
 * Nothing is written on any error.
 * Thread: safe; concurrent appends are validated one at a time in position order. */
int kappa_append(kappa_db *db, const char *stream, int64_t expected_version, const char *request_id,
		 const kappa_event_in *events, size_t n, const kappa_claim *claims, size_t m,
		 kappa_append_result *result, kappa_err *err);

/* The same without waiting: the arguments are checked and copied before it returns (the
 * caller may free them at once). Returns KAPPA_OK and later calls 'done' exactly once, from
 * a kappa thread, with what kappa_append would have returned ('result' and 'err' valid for
 * the call only; 'done' must not block or call kappa_append); or returns an error at once,
 * without calling 'done', when the arguments are bad. This is how a server keeps many
 * appends in flight without a thread each; they share group commits as usual. */
int kappa_append_async(kappa_db *db, const char *stream, int64_t expected_version,
		       const char *request_id, const kappa_event_in *events, size_t n,
		       const kappa_claim *claims, size_t m,
		       void (*done)(void *ctx, int rc, const kappa_append_result *result,
				    const kappa_err *err),
		       void *ctx, kappa_err *err);

/* ==== Reading =========================================================================== */

/* An event as read. Every pointer borrows from the iterator that returned it and stays
 * valid until the next call on that iterator or its release. Strings are not
 * NUL-terminated: use the lengths. */
typedef struct kappa_event {
	uint64_t position;
	uint64_t version;
	int64_t time_ms; /* append time, ms since the epoch */
	const char *stream;
	size_t stream_len;
	const char *type;
	size_t type_len;
	const char *data; /* a JSON object */
	size_t data_len;
	const char *subject; /* NULL: none */
	size_t subject_len;
	const char *metadata; /* NULL: none */
	size_t metadata_len;
	/* 1: the event's subject was forgotten; data (and sealed metadata) are NULL. */
	int forgotten;
} kappa_event;

typedef struct kappa_iter kappa_iter;

#define KAPPA_FORWARD 0
#define KAPPA_BACKWARD 1

/* Read up to 'max' events of 'stream' from version 'from_version' (KAPPA_FORWARD: that
 * version and later; KAPPA_BACKWARD: that version and earlier, UINT64_MAX meaning the
 * last). Sees every append acknowledged before the call. A stream that does not exist reads
 * as empty.
 * Errors: KAPPA_EINVAL (bad name or direction), KAPPA_ENOMEM. */
int kappa_read_stream(kappa_db *db, const char *stream, uint64_t from_version, uint64_t max,
		      int direction, kappa_iter **it, kappa_err *err);

/* Read up to 'max' events of the whole log from 'from_position', in order.
 * Errors: KAPPA_ERANGE (below the first retained position), KAPPA_ENOMEM. */
int kappa_read_log(kappa_db *db, uint64_t from_position, uint64_t max, kappa_iter **it,
		   kappa_err *err);

/* The next event: 1 (filled 'ev'), 0 (no more), or an error (KAPPA_ECORRUPT, KAPPA_EIO,
 * KAPPA_ERANGE). */
int kappa_iter_next(kappa_iter *it, kappa_event *ev, kappa_err *err);

void kappa_iter_free(kappa_iter *it);

/* ==== Subscribing ======================================================================= */

typedef struct kappa_sub kappa_sub;

/* Follow the log from 'from_position': first what is already there (catch-up), then every
 * event as it is committed. Each subscriber reads on its own; a slow one never holds up
 * appends. Errors: KAPPA_ERANGE, KAPPA_ENOMEM. */
int kappa_subscribe(kappa_db *db, uint64_t from_position, kappa_sub **sub, kappa_err *err);

/* Wait up to 'timeout_ms' (< 0: forever) for the next event: 1 (filled 'ev', valid until the
 * next call), 0 (timed out), or an error (KAPPA_ECLOSED when the database closes). */
int kappa_sub_next(kappa_sub *sub, kappa_event *ev, int64_t timeout_ms, kappa_err *err);

void kappa_sub_free(kappa_sub *sub);

/* The position the next appended event will get: the log holds [first, head). */
uint64_t kappa_head(kappa_db *db);

/* Wait until the event at 'position' is committed, up to 'timeout_ms' (< 0: forever).
 * Returns KAPPA_OK, KAPPA_ETIMEOUT, KAPPA_ECLOSED or KAPPA_EFATAL. */
int kappa_wait_position(kappa_db *db, uint64_t position, int64_t timeout_ms);

/* ==== Statistics ======================================================================= */

#define KAPPA_STATS_BUCKETS 12

/* Counters since the database was opened, and the log's current shape. */
typedef struct kappa_stats {
	uint64_t head;		 /* the next position */
	uint64_t first_position; /* the first position retention kept */
	uint64_t appends;	 /* appends committed */
	uint64_t events;	 /* events committed */
	uint64_t bytes;		 /* bytes written to the log */
	uint64_t group_commits;	 /* writes, each followed by at most one sync */
	uint64_t syncs;		 /* fdatasync calls */
	double sync_seconds;	 /* time spent in them */
	uint64_t segments;	 /* log segment files */
	uint64_t disk_bytes;	 /* their size */
	uint64_t index_position; /* the event index has applied events below this */
	/* Histograms: bucket i counts observations above bound i-1 and at most bound i; the
	 * last bound is infinity. */
	double sync_le_seconds[KAPPA_STATS_BUCKETS]; /* fdatasync latency */
	uint64_t sync_count[KAPPA_STATS_BUCKETS];
	double group_le_appends[KAPPA_STATS_BUCKETS]; /* appends per group commit */
	uint64_t group_count[KAPPA_STATS_BUCKETS];
} kappa_stats;

/* Fill 'st' (cheap: atomic counters and one short lock). */
void kappa_stats_get(kappa_db *db, kappa_stats *st);

/* One segment file of the log, oldest first in kappa_log_segments. */
typedef struct kappa_segment_info {
	uint64_t first_position; /* its first event's position (the file is named by it) */
	uint64_t end_position;	 /* the position after its last committed event */
	uint64_t bytes;		 /* its size on disk (the active one: its committed data) */
	int active;		 /* 1: the segment being written; 0: sealed */
	int64_t oldest_time_ms;	 /* its first batch's time, -1 when not known without I/O */
	int64_t newest_time_ms;	 /* its last batch's time (sealed segments), else -1 */
} kappa_segment_info;

/* Copy up to 'max' of the log's segments, oldest first, into 'out' (cheap: one short lock,
 * no I/O). Returns how many segments the log holds, which is more than 'max' when 'out' was
 * too short (the first 'max' were copied). */
size_t kappa_log_segments(kappa_db *db, kappa_segment_info *out, size_t max);

/* ==== Audit ============================================================================ */

/* Every batch of the log is hash-chained (BLAKE2b-256 over the previous chain value and the
 * batch's bytes, from a random genesis value): a digest taken now and kept elsewhere proves
 * later that history up to it was not rewritten. */
typedef struct kappa_digest {
	uint64_t position;     /* the events below it are covered */
	uint8_t chain[32];     /* the chain value there */
	int64_t time_ms;       /* when it was taken */
	uint8_t signature[64]; /* Ed25519, by the node's key, over kappa_digest_message() */
} kappa_digest;

/* A signed digest of the log as of every append acknowledged before the call. */
int kappa_audit_digest(kappa_db *db, kappa_digest *d, kappa_err *err);
/* The node's Ed25519 public key (its secret key is DATA/node.key, created at first open). */
void kappa_audit_public_key(kappa_db *db, uint8_t pk[32]);
/* The 64 bytes a digest's signature covers: "kappa-digest-v1\0", position and time_ms
 * (little-endian 64-bit), the chain value. */
#define KAPPA_DIGEST_MESSAGE 64
void kappa_digest_message(const kappa_digest *d, uint8_t out[KAPPA_DIGEST_MESSAGE]);
/* 1 if 'd' carries a valid signature by 'pk', else 0. */
int kappa_digest_signed_by(const kappa_digest *d, const uint8_t pk[32]);
/* A digest as JSON (the form GET /audit/digest answers and `kappa verify --digest` reads):
 * {"position", "chain_hash", "time", "time_ms", "signature", "public_key"}, hex for the
 * bytes; malloc'ed (free with kappa_free), NULL when out of memory. */
char *kappa_digest_to_json(const kappa_digest *d, const uint8_t pk[32]);
/* Read that JSON: "position" and "chain_hash" are required. *signed_ok: 1 if it carries a
 * valid signature by its "public_key", 0 if the signature is wrong, -1 if it has none.
 * Errors: KAPPA_EINVAL. */
int kappa_digest_from_json(const char *json, kappa_digest *d, int *signed_ok, kappa_err *err);

typedef struct kappa_verify_result {
	uint64_t first_position, end_position; /* verified: [first, end) */
	uint64_t batches, events, bytes;
	uint8_t chain[32]; /* the chain value at end_position */
	int digest_checked;
	double seconds;
} kappa_verify_result;

/* Recompute the whole audit chain of the database in 'dir' without changing anything; with
 * 'against' (or NULL), also prove the log still extends that digest. 'report' (or NULL) gets
 * one line per finding. Returns KAPPA_OK, or KAPPA_ECORRUPT naming the first break (segment,
 * offset, position) or the digest the log does not extend, or an I/O error. */
int kappa_verify(const char *dir, const kappa_digest *against,
		 void (*report)(void *ctx, const char *line), void *ctx, kappa_verify_result *res,
		 kappa_err *err);
/* The same on an open database, up to its head when the call starts. */
int kappa_audit_verify(kappa_db *db, const kappa_digest *against,
		       void (*report)(void *ctx, const char *line), void *ctx,
		       kappa_verify_result *res, kappa_err *err);

/* How far a verification has got: positions and bytes verified and to verify. */
typedef struct kappa_verify_progress {
	uint64_t positions_done, positions_total; /* events, from the first position kept */
	uint64_t bytes_done, bytes_total;	  /* batch bytes; the total is the log's size */
	uint64_t batches;			  /* batches verified */
} kappa_verify_progress;

/* kappa_audit_verify, calling 'progress' (or NULL) in the calling thread after about every
 * MiB verified. A non-zero answer from it stops the verification: KAPPA_ECLOSED. */
int kappa_audit_verify_progress(kappa_db *db, const kappa_digest *against,
				int (*progress)(void *ctx, const kappa_verify_progress *p),
				void *ctx, kappa_verify_result *res, kappa_err *err);

/* ==== Subjects (privacy) ================================================================ */

/* An event appended with a subject has its data (and, with seal_metadata, its metadata)
 * sealed with XChaCha20-Poly1305 under that subject's own key, bound to the event's stream,
 * version and type. Stream names, types, subject ids, positions and times stay in clear.
 * Forgetting a subject destroys its key: its events then read as forgotten everywhere. */

#define KAPPA_FORGOTTEN_TYPE "$subject_forgotten"
#define KAPPA_FORGOTTEN_STREAM "$subjects"

typedef struct kappa_forget_result {
	uint64_t position; /* of the $subject_forgotten event */
	int already;	   /* 1: the subject had been forgotten before this call */
} kappa_forget_result;

/* Forget 'subject': overwrite its key with zeros and sync, then append
 * {"subject": S} as a $subject_forgotten event to stream $subjects, which releases the
 * claims held by the streams the subject's events are in and makes each view run its
 * @forget statements. Idempotent: forgetting again answers the same position.
 * Errors: KAPPA_EINVAL, KAPPA_ENOTFOUND (no event ever had this subject), I/O errors. */
int kappa_forget(kappa_db *db, const char *subject, kappa_forget_result *res, kappa_err *err);

/* Everything kappa holds about 'subject', in order: each of its events (decrypted; streamed
 * through 'on_event'), then the rows each view's @export query returns ('on_row' gets the
 * view's name and one row as a JSON object). A callback returning non-zero stops the export
 * (KAPPA_ECLOSED). A forgotten subject's events come with forgotten = 1.
 * Errors: KAPPA_EINVAL, KAPPA_ENOTFOUND (unknown subject), read errors. */
int kappa_export(kappa_db *db, const char *subject,
		 int (*on_event)(void *ctx, const kappa_event *e),
		 int (*on_row)(void *ctx, const char *view, const char *row_json, size_t len),
		 void *ctx, kappa_err *err);

/* The subject's state: 0 unknown, 1 live (has a key), 2 forgotten. */
int kappa_subject_state(kappa_db *db, const char *subject);

/* ==== Streams =========================================================================== */

typedef struct kappa_stream_info {
	int exists;
	uint64_t last_version;	/* valid when exists */
	uint64_t last_position; /* valid when exists */
	uint64_t event_count;
	uint64_t claims_held;
} kappa_stream_info;

/* Facts about 'stream' as of every append acknowledged before the call.
 * Errors: KAPPA_EINVAL (bad name). A stream that does not exist has exists = 0. */
int kappa_stream_info_get(kappa_db *db, const char *stream, kappa_stream_info *info,
			  kappa_err *err);

/* Call 'cb' for each claim 'stream' holds, by claim id (see kappa_claim_id; borrowed for
 * the call): claim keys are personal data, so kappa keeps only their keyed hashes. */
int kappa_stream_claims(kappa_db *db, const char *stream,
			void (*cb)(void *ctx, const char *key, size_t len), void *ctx,
			kappa_err *err);

/* The id kappa keeps for claim 'key' on this node: 64 hex digits of its BLAKE2b-256 keyed
 * with the node's claim secret, and a NUL. */
#define KAPPA_CLAIM_ID 65
void kappa_claim_id(kappa_db *db, const char *key, char out[KAPPA_CLAIM_ID]);

/* ==== Views ============================================================================= */

/* The state of a view. */
typedef enum kappa_view_state {
	KAPPA_VIEW_CATCHING_UP = 0, /* has not yet reached the head since it was opened */
	KAPPA_VIEW_LIVE,	    /* caught up, following new events */
	KAPPA_VIEW_REBUILDING,	    /* a new version is being built beside the live one */
	KAPPA_VIEW_FAILED,	    /* a handler failed: stopped at 'error_position' */
	KAPPA_VIEW_STOPPED,	    /* its file was removed: kept, not maintained */
} kappa_view_state;

/* The name of a state: "catching_up", "live", "rebuilding", "failed", "stopped". */
const char *kappa_view_state_name(kappa_view_state s);

typedef struct kappa_view_status {
	char name[64];
	char file[256]; /* the definition file */
	kappa_view_state state;
	uint64_t position;	   /* events below this position are applied */
	uint64_t lag;		   /* head - position */
	double events_per_s;	   /* recent apply rate */
	uint64_t rebuild_position; /* while rebuilding: how far the new version got */
	/* While failed: where and why. */
	uint64_t error_position;
	char error_type[KAPPA_MAX_TYPE + 1];
	char error[256];
	/* The last load of its file failed (the previous version keeps running). */
	char load_error[256];
} kappa_view_status;

/* Reload the views directory: new files start, changed definitions rebuild beside the
 * running version and swap in when caught up, removed files stop (their database stays).
 * A file with errors is not loaded (kappa_view_status.load_error says why); others are.
 * Returns KAPPA_OK, or KAPPA_EINVAL when some file failed to load (err names the first). */
int kappa_views_reload(kappa_db *db, kappa_err *err);

/* Status of one view (KAPPA_ENOTFOUND if there is none by that name). */
int kappa_view_status_get(kappa_db *db, const char *view, kappa_view_status *st, kappa_err *err);

/* Call 'cb' with the status of each view, in name order. */
int kappa_views_list(kappa_db *db, void (*cb)(void *ctx, const kappa_view_status *st), void *ctx,
		     kappa_err *err);

/* Rebuild a view from the start of the log beside the live one; queries keep using the live
 * one until the new one has caught up, then it is swapped in. Also resumes a failed view. */
int kappa_view_rebuild(kappa_db *db, const char *view, kappa_err *err);

/* The named queries of 'view' (of the version answering queries), in definition order, as
 * JSON: [{"name": "home_timeline", "params": [{"name": "user", "optional": false}, ...]}].
 *  OUT: *queries_json, malloc'ed; free with kappa_free.
 * Errors: KAPPA_ENOTFOUND (no such view), KAPPA_ENOMEM. */
int kappa_view_queries(kappa_db *db, const char *view, char **queries_json, kappa_err *err);

/* No min_position for kappa_query. */
#define KAPPA_NO_POSITION UINT64_MAX

/* Run the named query 'query' of 'view'. 'params_json' is a JSON object (or NULL) whose
 * members bind the query's :parameters by name (strings as text, numbers as numbers, true
 * and false as 1 and 0). With min_position != KAPPA_NO_POSITION, first wait (up to
 * 'timeout_ms') until the view has applied that position: pass an append's last_position to
 * read your own write.
 *  OUT: *result_json, malloc'ed: {"rows":[{column: value, ...}], "position": P} where P is
 *       the last position the answer reflects (null if none); free with kappa_free.
 * Errors: KAPPA_ENOTFOUND (view or query), KAPPA_EINVAL (bad params), KAPPA_ETIMEOUT
 * (min_position not reached, or the query ran past its time limit), KAPPA_EFATAL (the view
 * failed). */
int kappa_query(kappa_db *db, const char *view, const char *query, const char *params_json,
		uint64_t min_position, int64_t timeout_ms, char **result_json, kappa_err *err);

/* Wait until 'view' has applied the event at 'position' (up to 'timeout_ms'; <= 0: 2 s).
 * Errors: KAPPA_ENOTFOUND, KAPPA_ETIMEOUT, KAPPA_EFATAL (the view failed). */
int kappa_view_wait(kappa_db *db, const char *view, uint64_t position, int64_t timeout_ms,
		    kappa_err *err);

/* Run ad-hoc read-only SQL on 'view': one statement, no writes, ATTACH, PRAGMA that
 * changes state, transactions or load_extension; stopped after 'timeout_ms' (<= 0: 2 s);
 * at most 'max_rows' rows (0: 10,000).
 *  OUT: *result_json: {"rows":[...], "position": P, "truncated": bool}; free with kappa_free.
 * Errors: KAPPA_ENOTFOUND, KAPPA_EINVAL (not allowed, or bad SQL: the message says why),
 * KAPPA_ETIMEOUT. */
int kappa_sql(kappa_db *db, const char *view, const char *sql, const char *params_json,
	      uint64_t max_rows, int64_t timeout_ms, char **result_json, kappa_err *err);

/* Free memory kappa returned (query results). */
void kappa_free(void *p);

#ifdef __cplusplus
}
#endif
#endif /* KAPPA_H */
