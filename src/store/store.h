/*
 * store.h -- the event store's internals: the kappa_db handle, its LMDB indexes, and the
 * batch attributes it keeps in the log. Only src/store/ includes this.
 *
 * Design notes:
 *  1. The log is the truth; the indexes (DATA/index, LMDB) are derived from it and carry the
 *     log position they reflect ("meta/position"). Opening catches them up from the log, or
 *     rebuilds them from the first retained position when they are missing or untrusted.
 *  2. Every append is validated in the log's writer thread, in position order (the 'prepare'
 *     callback), against one LMDB write transaction that stays open across groups, so
 *     validation sees every earlier append. It is committed when the writer goes idle,
 *     about every 3 ms under load, or at once when a reader needs it: committing per group
 *     copied every touched B-tree page per group and dominated the writer's time, while a
 *     commit stalls the writer for as long as it writes its pages, so longer intervals
 *     (10 ms) made fewer, longer stalls that showed in the appends' p99 latency. Readers
 *     of the index first wait until it covers every append acknowledged before their call
 *     (read-your-writes). A group that is not written (disk full) aborts the transaction,
 *     and the durable appends it held are replayed from the log: the log is the truth.
 *     Live appends and rebuilds apply a batch through the same function (kp_index_apply),
 *     so they cannot disagree.
 *  3. The environment runs with MDB_NOSYNC: a killed process leaves committed transactions
 *     in the page cache, so they survive. An operating-system crash may not; the index keeps
 *     a state file ("open BOOT_ID" while open, "clean" after a synced close), and an index
 *     found open under another boot id is rebuilt instead of trusted.
 */
#ifndef KP_STORE_H
#define KP_STORE_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>

#include "base/err.h"
#include "kappa.h"
#include "log/log.h"

#define KP_HASH_BYTES 16 /* request content hash (BLAKE2b-128) */
#define KP_CLAIM_HASH 32 /* claim key digest (BLAKE2b-256) */

/* Batch attribute tags (TLV: tag u8, length u32, bytes). */
enum {
	KP_ATTR_REQUEST_ID = 1,
	KP_ATTR_REQUEST_HASH = 2,
	KP_ATTR_CLAIM = 3,	/* a claim key in clear (logs written before claim ids) */
	KP_ATTR_RELEASE = 4,	/* ... and its release */
	KP_ATTR_CLAIM_ID = 5,	/* a claim id: keyed BLAKE2b-256 of the key (kp_claim_id) */
	KP_ATTR_RELEASE_ID = 6, /* ... and its release */
	KP_ATTR_FORGET = 7,	/* the subject a $subject_forgotten batch forgets */
};

/* Event flags (the log's per-event flags field, which it does not interpret). */
#define KP_EV_SEALED_DATA 0x0001u /* data is nonce || XChaCha20-Poly1305(data) || tag */
#define KP_EV_SEALED_META 0x0002u /* metadata likewise */
#define KP_SEAL_NONCE 24
#define KP_SEAL_TAG 16
#define KP_SEAL_OVERHEAD (KP_SEAL_NONCE + KP_SEAL_TAG)

/* Decoded attributes of one batch; pointers borrow from the batch. Room for 'cap' claims:
 * allocate with kp_attrs_new (an append needs room for its own claims only). */
#define KP_MAX_CLAIMS_DECODED 1024
typedef struct kp_attrs {
	kp_bytes request_id;
	kp_bytes request_hash;
	kp_bytes forget; /* KP_ATTR_FORGET's subject, or empty */
	size_t nclaims, cap;
	struct kp_attr_claim {
		kp_bytes key; /* the claim id (is_id), or a key in clear from an older log */
		int release;
		int is_id;
	} claims[];
} kp_attrs;

/* Attributes with room for 'cap' claims (free with free); NULL: out of memory. */
kp_attrs *kp_attrs_new(size_t cap);
/* Decode 'raw' into 'a'; more claims than a->cap is KAPPA_ECORRUPT. */
int kp_attrs_decode(kp_bytes raw, kp_attrs *a, kappa_err *err);

/* The LMDB indexes. */
typedef struct kp_index {
	MDB_env *env;
	MDB_dbi meta;		 /* "position", "stream_seq", "req_seq", "req_count", "schema" */
	MDB_dbi streams;	 /* name -> kp_stream_rec */
	MDB_dbi versions;	 /* stream id BE64 | first version BE64 -> first position
				  * LE64, count LE32: one range per batch */
	MDB_dbi requests;	 /* request id -> kp_request_rec */
	MDB_dbi req_order;	 /* seq BE64 -> request id (oldest first, for expiry) */
	MDB_dbi claims;		 /* claim id -> holder stream name */
	MDB_dbi stream_claims;	 /* stream id BE64 | claim id -> (empty) */
	MDB_dbi subject_streams; /* subject | 0 | stream name -> (empty) */
	const uint8_t *claim_secret; /* the node's key for claim ids (kp_keys) */
	char *dir;
} kp_index;

typedef struct kp_stream_rec {
	uint64_t id;
	uint64_t last_version;
	uint64_t last_position;
	uint64_t event_count;
	uint64_t claims_held;
} kp_stream_rec;

typedef struct kp_request_rec {
	uint8_t hash[KP_HASH_BYTES];
	uint64_t first_position;
	uint64_t last_position;
	uint64_t version;
	int64_t time_ms;
	uint64_t seq;
} kp_request_rec;

/* Counters kept in "meta", held in memory by the writer and saved once per commit. */
typedef struct kp_index_counters {
	uint64_t position; /* the log position the index reflects (next to apply) */
	uint64_t stream_seq;
	uint64_t req_seq;
	uint64_t req_count;
} kp_index_counters;

/* A decoded batch for kp_index_apply. */
typedef struct kp_apply_batch {
	uint64_t first_position;
	int64_t time_ms;
	uint32_t count;
	kp_bytes stream;	/* all events of a kappa batch share their stream */
	uint64_t first_version; /* version of the first event */
	kp_attrs *attrs;
} kp_apply_batch;

int kp_index_open(kp_index *ix, const char *dir, uint64_t map_bytes, kappa_err *err);
void kp_index_close(kp_index *ix);
/* Empty every table (inside 'txn'). */
int kp_index_clear(kp_index *ix, MDB_txn *txn, kappa_err *err);
/* Lookups return 0 or an LMDB error; absent values read as 0 / found = 0. */
int kp_index_get_u64(kp_index *ix, MDB_txn *txn, const char *key, uint64_t *v);
int kp_index_put_u64(kp_index *ix, MDB_txn *txn, const char *key, uint64_t v);
int kp_index_stream(kp_index *ix, MDB_txn *txn, kp_bytes name, kp_stream_rec *rec, int *found);
int kp_index_request(kp_index *ix, MDB_txn *txn, kp_bytes id, kp_request_rec *rec, int *found);
/* The holder of a claim ('holder' borrows from the txn). */
int kp_index_claim(kp_index *ix, MDB_txn *txn, const uint8_t id[KP_CLAIM_HASH], kp_bytes *holder,
		   int *found);
int kp_index_load_counters(kp_index *ix, MDB_txn *txn, kp_index_counters *c);
int kp_index_save_counters(kp_index *ix, MDB_txn *txn, const kp_index_counters *c);
/* Apply the effects of one batch: stream state, version map, claims, request record, and
 * the counters. Returns 0 or an LMDB error. */
int kp_index_apply(kp_index *ix, MDB_txn *txn, kp_index_counters *c, const kp_apply_batch *b);
/* Forget expired request ids (older than 'window_ms' and beyond the newest 'min_ids'), at
 * most 'max' of them. */
int kp_index_expire(kp_index *ix, MDB_txn *txn, kp_index_counters *c, int64_t now_ms,
		    int64_t window_ms, uint64_t min_ids, int max);
/* The claim id of a claim as decoded from a batch (an id, or a key in clear to hash). */
void kp_claim_id(const uint8_t secret[32], const struct kp_attr_claim *c,
		 uint8_t out[KP_CLAIM_HASH]);
/* The claim id of claim key 'key'. */
void kp_claim_id_of_key(const uint8_t secret[32], kp_bytes key, uint8_t out[KP_CLAIM_HASH]);
/* Record that 'subject' has events in 'stream'. */
int kp_index_subject(kp_index *ix, MDB_txn *txn, kp_bytes subject, kp_bytes stream);
/* Call 'cb' with each stream 'subject' has events in (borrowed from the txn); a non-zero
 * return stops the walk and is returned. */
int kp_index_subject_streams(kp_index *ix, MDB_txn *txn, kp_bytes subject,
			     int (*cb)(void *ctx, kp_bytes stream), void *ctx);
/* 1 if the index's filesystem has less than KP_INDEX_MIN_FREE bytes available: LMDB reports
 * a write that ran out of space part-way as EIO, and this tells the two apart. */
#define KP_INDEX_MIN_FREE (1u << 20)
int kp_index_disk_full(const kp_index *ix);

struct kp_views; /* the view layer's state (src/view), opaque here */

/* The database handle. */
struct kappa_db {
	struct kp_views *views; /* owned by the view layer, which opens and closes it */
	uint8_t node_sk[64];	/* Ed25519: signs audit digests (DATA/node.key) */
	uint8_t node_pk[32];
	char *dir;
	kappa_options o;
	kp_log *log;
	kp_index ix;
	struct kp_keys *keys;	     /* subject keys and node secrets (keys.h) */
	pthread_mutex_t forget_lock; /* one kappa_forget at a time */
	/* Writer thread only: the open index transaction, the counters as of it, the log
	 * position it reaches, and when the index was last committed. */
	MDB_txn *wtxn;
	kp_index_counters ctr;
	uint64_t txn_pos;
	uint32_t txn_batches;
	uint64_t last_commit_ns;
	uint64_t appends_since_expiry;
	uint64_t last_trim_check_ns;
	void *map_addr; /* the index's memory map, found at open (NULL: not found) */
	size_t map_len;
	/* Readers' view: the index holds every append below index_pos; a reader that needs
	 * more sets index_wanted and waits on index_cond. */
	_Atomic uint64_t index_pos;
	_Atomic uint64_t index_wanted;
	pthread_mutex_t index_lock;
	pthread_cond_t index_cond;
	/* Set when the index could not follow the log (an LMDB failure): appends are refused
	 * until reopen, which catches up from the log. */
	_Atomic int index_failed;
	kappa_err index_err;
	/* Set when the index could not commit for lack of disk space: the appends it held are
	 * durable in the log but not indexed. The writer catches the index up from the log
	 * before the next append (answered KAPPA_ENOSPC while that fails) and when idle;
	 * readers are answered KAPPA_ENOSPC once an attempt made after their call failed.
	 * 'index_attempts' counts those attempts. */
	_Atomic int index_behind;
	_Atomic uint64_t index_attempts;
};

/* Open the sealed fields of event 'ev' in place: with the subject's key, 'ev' is pointed
 * at plaintext in 'scratch' (valid until its next use); without it (forgotten), data and
 * sealed metadata become empty and *forgotten is set. KAPPA_ECORRUPT when a ciphertext
 * fails authentication. (seal.c) */
int kp_store_unseal(kappa_db *db, kp_event *ev, kp_buf *scratch, int *forgotten, kappa_err *err);
/* Seal, in the batch's own buffer, every event flagged KP_EV_SEALED_*: their fields hold
 * room for nonce and tag around the plaintext (build time); the versions are final. 'keys'
 * has one key per event (NULL entries for events without a subject). (seal.c) */
void kp_seal_batch(kp_batch *b, const uint8_t *const *keys);

/* Append internally (kappa_forget): like kappa_append_async with one event to a reserved
 * stream, and a KP_ATTR_FORGET attribute. (append.c) */
int kp_append_forget(kappa_db *db, kp_bytes subject, const char *data, kappa_append_result *result,
		     kappa_err *err);

/* Load DATA/node.key, creating it (mode 0600, durably) on first open (audit.c). */
int kp_audit_load_key(kappa_db *db, kappa_err *err);

/* Open and close the store (log + indexes); kappa_open/kappa_close (src/view) wrap these
 * with the views. */
int kp_store_open(const char *dir, const kappa_options *o, kappa_db **out, kappa_err *err);
void kp_store_close(kappa_db *db);
/* The same with the log's file I/O replaced ('sio' NULL: as kp_store_open), for tests that
 * inject faults and power cuts (tests/lib/simio.h). Only the log goes through 'io': the
 * index (LMDB), its state file, node.key and the views do their own I/O. */
typedef struct kp_store_io {
	const kp_io *io; /* NULL: POSIX */
	int no_prealloc; /* no zero-fill thread (its I/O would race the writer's) */
} kp_store_io;
int kp_store_open_io(const char *dir, const kappa_options *o, const kp_store_io *sio,
		     kappa_db **out, kappa_err *err);

/* Catch the index up with the log (or rebuild it). Called by kp_store_open. */
int kp_store_catch_up(kappa_db *db, int rebuild, kappa_err *err);
/* Log hooks (writer thread). */
void kp_store_group_commit(void *ctx, uint64_t end);
void kp_store_group_abort(void *ctx, uint64_t first);
int kp_store_idle(void *ctx);
/* Make the index cover every append acknowledged before the call (any thread).
 * Returns KAPPA_OK, KAPPA_EFATAL (the index failed) or KAPPA_ETIMEOUT. */
int kp_store_index_wait(kappa_db *db, kappa_err *err);
/* Publish index_pos (writer thread, or open). */
void kp_store_index_published(kappa_db *db, uint64_t pos);
/* Map an LMDB error. */
int kp_store_mdb_err(kappa_err *err, int rc, const char *what);

#endif
