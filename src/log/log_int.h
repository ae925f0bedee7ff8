/*
 * log_int.h -- the log's internal structures, shared by its implementation files only
 * (segment.c, log.c, writer.c, reader.c, check.c). Nothing outside src/log/ includes it.
 */
#ifndef KP_LOG_INT_H
#define KP_LOG_INT_H

#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>

#include "base/err.h"
#include "log/log.h"

/* ---- sparse index ---------------------------------------------------------------------
 * Index file "<first position>.idx" (little-endian):
 *   header, 32 bytes: magic "KPIX", version u32, segment first position u64, 12 reserved
 *                     bytes, crc32c of bytes [0, 28) u32
 *   entries, 32 bytes each: position u64, time_ms i64, offset u32, kind u32, reserved u32,
 *                     crc32c of bytes [0, 28) u32
 * kind 1: a batch starts at 'offset' with first position 'position'.
 * kind 2 (seal, last): the segment ends at 'offset' / 'position'; 'time_ms' is its last
 *                     batch's timestamp.
 * Entries are only ever written for synced batches; the file itself is never fsynced except
 * when sealed. Readers trust an entry only after the batch header at its offset matches. */
#define KP_IDX_MAGIC 0x5849504bu /* "KPIX" */
#define KP_IDX_VERSION 1
#define KP_IDX_HEADER 32
#define KP_IDX_ENTRY 32
#define KP_IDX_BATCH 1
#define KP_IDX_SEAL 2

typedef struct kp_idx_entry {
	uint64_t pos;
	int64_t time_ms;
	uint32_t off;
} kp_idx_entry;

typedef struct kp_segment {
	uint64_t first_pos;
	char *path;	/* segment file */
	char *idx_path; /* index file */
	int fd;
	atomic_int refs;
	/* End of committed data. For the active segment the writer advances these; for a
	 * sealed segment end_pos is the next segment's first position and end_off is known
	 * only if it was scanned or sealed by this process (0 otherwise). */
	_Atomic uint64_t end_pos;
	_Atomic uint64_t end_off;
	atomic_int sealed;
	int64_t last_time_ms; /* newest batch time, -1 unknown (sealed segments) */
	uint64_t file_bytes;  /* size on disk, for retention by bytes (sealed segments) */
	/* Sparse index: entries in memory, loaded lazily for sealed segments. */
	pthread_mutex_t idx_lock;
	kp_idx_entry *idx;
	size_t idx_n, idx_cap;
	int idx_loaded;
	size_t idx_written; /* entries already in the file (active segment) */
	int idx_fd;	    /* active segment: the index file, open for appending */
} kp_segment;

/* The result of scanning a segment's batches. */
typedef struct kp_scan {
	uint64_t end_off;     /* just after the last valid batch */
	uint64_t end_pos;     /* position after the last valid batch */
	int64_t last_time_ms; /* timestamp of the last valid batch (-1: none) */
	uint64_t batches, events;
	uint64_t file_size;
	enum { KP_SCAN_CLEAN, KP_SCAN_TORN, KP_SCAN_CORRUPT } tail;
	uint64_t tail_bytes;  /* non-zero bytes after end_off (KP_SCAN_TORN) */
	uint64_t later_valid; /* valid batches found after a torn tail (cut with it) */
	char why[160];	      /* what was wrong at end_off */
} kp_scan;

/* Called for each valid batch during a scan; return non-zero to stop with that error. */
typedef int (*kp_scan_cb)(void *ctx, const kp_batch_hdr *h, uint64_t off);

/* A queued append and the writer's view of the queue. */
typedef struct kp_writer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* the writer waits here for work */
	kp_log_req *head, *tail;
	uint64_t queued_bytes;
	int waiting; /* the writer is in cond_wait */
	int kicked;  /* kp_log_kick asked for the idle hook */
	int stopping;
	int started;
} kp_writer;

/* Zero-filling ahead of the writer in the active segment (see writer.c). */
typedef struct kp_prealloc {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	kp_segment *seg;     /* the segment being prepared (active) */
	uint64_t zeroed_end; /* [write end, zeroed_end) is known zero-filled and synced */
	uint64_t want;	     /* the writer's end offset when it last asked */
	int busy;	     /* zero-filling [busy_from, ...) right now */
	uint64_t busy_from;
	int failed; /* the last zero-fill failed (e.g. disk full): wait for a roll */
	int stopping;
	int started;
} kp_prealloc;

/* Answers callers of large groups so the writer can start the next write at once. */
typedef struct kp_completer {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	kp_log_req *head, *tail; /* each with err.code holding its result */
	int stopping;
	int started;
} kp_completer;

struct kp_log {
	char *dir;
	kp_log_options o;
	const kp_io *io;
	int lock_fd;

	/* Segments, oldest first; the last one is active. Guarded by seg_lock. */
	pthread_mutex_t seg_lock;
	kp_segment **segs;
	size_t nsegs, segs_cap;
	_Atomic uint64_t first_pos; /* first retained position */

	/* Committed state, published by the writer. */
	_Atomic uint64_t head; /* next position to commit: readers see [first_pos, head) */
	pthread_mutex_t head_lock;
	pthread_cond_t head_cond; /* broadcast when head moves or the log fails/closes */

	/* Writer-thread state (touched by the writer only after open). */
	uint64_t next_pos;     /* next position to assign (>= head while a group is in flight) */
	uint64_t durable_pos;  /* positions below this are synced */
	int64_t last_time_ms;  /* timestamps never go backwards */
	uint64_t idx_bytes;    /* bytes since the last index entry in the active segment */
	uint64_t last_sync_ns; /* interval mode: when we last synced */
	int unsynced;	       /* bytes written since the last sync */
	uint64_t last_retention_ns;

	/* Audit chain. 'chain' is the value of the last batch sealed into a group (writer
	 * thread); 'g_chain_start' its value before the group (restored when a group fails
	 * without latching); 'pub_chain' the value at 'head' (under head_lock). */
	uint8_t genesis[32];
	uint8_t chain[32];
	uint8_t g_chain_start[32];
	uint8_t pub_chain[32];

	_Atomic int failed; /* KAPPA_EFATAL latched: an earlier write or sync failed */
	_Atomic int closing;
	kappa_err fail_err; /* why it failed (written once, before 'failed' is set) */

	kp_writer w;
	kp_prealloc pa;
	kp_completer c;
	struct iovec *g_iov; /* the writer's group under construction */
	kp_log_req **g_req;
	size_t g_n, g_cap;
	uint64_t g_bytes;
	kp_log_req *g_skip_head, *g_skip_tail; /* answered with the group, nothing written */
	int g_prepared;			       /* prepare ran since the last group hook */

	/* Statistics. */
	_Atomic uint64_t st_appends, st_events, st_bytes, st_groups, st_syncs, st_sync_ns, st_rolls,
		st_prealloc_waits;
	_Atomic uint64_t st_sync_buckets[KP_LOG_BUCKETS], st_group_buckets[KP_LOG_BUCKETS];
};

/* ---- segment.c ------------------------------------------------------------------------ */

/* File names for a segment of 'first_pos' in 'dir' (malloc'ed; NULL on allocation failure). */
char *kp_seg_path(const char *dir, uint64_t first_pos);
char *kp_seg_idx_path(const char *dir, uint64_t first_pos);

/* A segment struct for an existing or new file (does not open it). NULL: out of memory. */
kp_segment *kp_seg_new(const char *dir, uint64_t first_pos);
void kp_seg_ref(kp_segment *s);
void kp_seg_unref(kp_segment *s, const kp_io *io);

/* Scan batches of the segment file 'fd' from 'off' (expected first position 'pos') to the
 * end, verifying each CRC (and each event's framing when 'check_events'), and classify what
 * follows the last valid batch (see log.h, design note 5). 'limit_pos' stops the scan
 * cleanly when reached (UINT64_MAX: no limit). Returns KAPPA_OK (see r->tail), or an I/O
 * or allocation error. */
int kp_seg_scan(const kp_io *io, int fd, uint64_t off, uint64_t pos, uint64_t limit_pos,
		int check_events, kp_scan_cb cb, void *ctx, kp_scan *r, kappa_err *err);

/* Load the index of a segment into memory (lazily, once), rebuilding and rewriting it from
 * the segment if it is missing or invalid. Takes s->idx_lock. */
int kp_seg_idx_load(kp_log *log, kp_segment *s, kappa_err *err);

/* Read the index file entries that pass their checks (no validation against the segment).
 * Sets *seal when the last entry is a seal. */
int kp_seg_idx_read(const kp_io *io, kp_segment *s, kp_idx_entry *seal, int *has_seal,
		    kappa_err *err);

/* Rewrite the index file of 's' from its in-memory entries (+ a seal if 'seal'), via a
 * temporary file and rename. */
int kp_seg_idx_rewrite(const kp_io *io, const char *dir, kp_segment *s, const kp_idx_entry *seal,
		       kappa_err *err);

/* Encode an index entry or header. */
void kp_idx_encode_entry(uint8_t *p, const kp_idx_entry *e, uint32_t kind);
void kp_idx_encode_header(uint8_t *p, uint64_t first_pos);

/* Append an entry to the in-memory index of 's' (takes idx_lock). */
int kp_seg_idx_push(kp_segment *s, const kp_idx_entry *e);

/* Find the index entry to start reading 'pos' from: the greatest entry <= pos. Sets *off
 * and *at (the entry's position); 0 and s->first_pos when none. Takes idx_lock. */
void kp_seg_idx_find(kp_segment *s, uint64_t pos, uint64_t *off, uint64_t *at);

/* Parse a segment file name "<20 digits>.log"; returns 1 and sets *first_pos if it is one. */
int kp_seg_parse_name(const char *name, uint64_t *first_pos);

/* List segment first positions in 'dir', sorted. *out is malloc'ed. */
int kp_seg_list(const char *dir, uint64_t **out, size_t *n, kappa_err *err);

/* ---- log.c ---------------------------------------------------------------------------- */

#define kp_log_notice(log, ...) kp_emit((log)->o.notice, (log)->o.notice_ctx, __VA_ARGS__)
/* Publish 'head' and the chain value of the batch just below it. */
void kp_log_publish(kp_log *log, uint64_t head, const uint8_t chain[32]);
/* The histogram bucket of 'v' for 'bounds' (KP_LOG_BUCKETS - 1 ascending upper bounds). */
size_t kp_log_bucket(const uint64_t *bounds, uint64_t v);
void kp_log_fail(kp_log *log, const kappa_err *why);
/* Create the file and index of a new, empty active segment at 'first_pos' (and sync the
 * directory). */
int kp_log_create_segment(kp_log *log, uint64_t first_pos, kp_segment **out, kappa_err *err);

/* ---- writer.c ------------------------------------------------------------------------- */

int kp_writer_start(kp_log *log, kappa_err *err);
void kp_writer_stop(kp_log *log);
/* Retention, run by the writer (and kp_log_enforce_retention). */
int kp_log_retention(kp_log *log, kappa_err *err);

#endif
