/*
 * append.c -- kappa_append: argument checks and encoding in the caller's thread, then the
 * serial validation (request ids, expected versions, claims) in the log's writer thread,
 * against the index transaction of the group being built (store.h, design note 2).
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <semaphore.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/json.h"
#include "store/keys.h"
#include "store/store.h"

/* One append in flight: owns copies of everything it needs, so the caller's arguments may
 * go away as soon as kappa_append_async returns. */
typedef struct append_ctx {
	kp_log_req req;
	kappa_db *db;
	char stream_buf[KAPPA_MAX_STREAM + 1];
	kp_bytes stream;
	int64_t expected;
	uint8_t hash[KP_HASH_BYTES];
	kp_batch batch;
	kp_attrs *attrs;
	kp_buf claim_keys; /* the claim keys in clear, NUL-separated, for error messages */
	kp_buf subjects;   /* distinct subjects of the events: u8 length, bytes */
	uint8_t *keys;	   /* one key per event with a subject (zeroed when freed) */
	const uint8_t **keyp;
	size_t nkeys;
	kappa_append_result result;
	void (*done)(void *ctx, int rc, const kappa_append_result *res, const kappa_err *err);
	void *user;
} append_ctx;

static int
check_json_object(const char *p, size_t len, const char *what, size_t i, kappa_err *err)
{
	kp_jval v;
	char why[96];
	size_t at = 0;
	if (kp_json_check(p, len, &v, why, sizeof(why), &at) < 0)
		return KP_ERR(err, strcmp(why, "out of memory") ? KAPPA_EINVAL : KAPPA_ENOMEM,
			      "event %zu: %s is not valid JSON: %s (at byte %zu)", i, what, why,
			      at);
	if (v.type != KP_JOBJECT)
		return KP_ERR(err, KAPPA_EINVAL, "event %zu: %s must be a JSON object", i, what);
	return KAPPA_OK;
}

static void
hash_part(crypto_generichash_state *st, const void *p, size_t len)
{
	uint8_t l[8];
	kp_put_u64(l, len);
	crypto_generichash_update(st, l, 8);
	if (len)
		crypto_generichash_update(st, p, len);
}

static int
put_attr(kp_buf *b, uint8_t tag, const void *p, size_t len)
{
	uint8_t h[5];
	h[0] = tag;
	kp_put_u32(h + 1, (uint32_t)len);
	return kp_buf_append(b, h, 5) || kp_buf_append(b, p, len) ? -1 : 0;
}

static const char *
expected_name(int64_t e, char *buf, size_t n)
{
	switch (e) {
	case KAPPA_ANY:
		return "any";
	case KAPPA_NO_STREAM:
		return "no_stream";
	case KAPPA_EXISTS:
		return "exists";
	default:
		snprintf(buf, n, "%" PRId64, e);
		return buf;
	}
}

static void
fail_index(kappa_db *db, int rc, const char *what)
{
	kappa_err e;
	kp_store_mdb_err(&e, rc, what);
	if (!atomic_load(&db->index_failed)) {
		db->index_err = e;
		atomic_store(&db->index_failed, 1);
		kp_store_index_published(db, atomic_load(&db->index_pos)); /* wake readers */
		if (db->o.notice) {
			char line[400];
			snprintf(line, sizeof(line), "event=index_failed error=\"%s\"", e.msg);
			db->o.notice(db->o.notice_ctx, line);
		}
	}
}

/* The index could not commit for lack of space (writer thread): what it held is in the
 * log, so it falls behind instead of failing, and catches up when space is back. */
static void
fall_behind(kappa_db *db, const char *why)
{
	if (!atomic_exchange(&db->index_behind, 1) && db->o.notice) {
		char line[400];
		snprintf(line, sizeof(line), "event=index_behind error=\"%s\"", why);
		db->o.notice(db->o.notice_ctx, line);
	}
}

/* Catch a fallen-behind index up with the log (writer thread, no transaction open).
 * Returns KAPPA_OK, KAPPA_ENOSPC (still no space) or KAPPA_EFATAL (the index failed). */
static int
catch_up_behind(kappa_db *db, kappa_err *err)
{
	kappa_err e;
	int rc = kp_store_catch_up(db, 0, &e);
	if (rc == KAPPA_EIO && kp_index_disk_full(&db->ix))
		rc = KAPPA_ENOSPC;
	if (rc == KAPPA_OK) {
		atomic_store(&db->index_behind, 0);
	} else if (rc != KAPPA_ENOSPC && !atomic_load(&db->index_failed)) {
		db->index_err = e;
		atomic_store(&db->index_failed, 1);
	}
	atomic_fetch_add(&db->index_attempts, 1);
	kp_store_index_published(db, atomic_load(&db->index_pos)); /* wake readers */
	if (rc == KAPPA_OK)
		return KAPPA_OK;
	return KP_ERR(err, rc == KAPPA_ENOSPC ? KAPPA_ENOSPC : KAPPA_EFATAL,
		      "the index cannot catch up with the log: %s", e.msg);
}

/* The writer-thread half: validate against the index as of every earlier append, then
 * record this one. */
static int
prepare(kp_log_req *req, uint64_t first_position, kappa_err *err)
{
	append_ctx *c = req->ctx;
	kappa_db *db = c->db;
	kp_index *ix = &db->ix;
	kappa_append_result *res = &c->result;
	int rc, found;
	if (atomic_load(&db->index_failed))
		return KP_ERR(err, KAPPA_EFATAL, "the index failed earlier (%s); reopen to recover",
			      db->index_err.msg);
	if (!db->wtxn && atomic_load(&db->index_behind) && (rc = catch_up_behind(db, err)))
		return rc;
	if (!db->wtxn && (rc = mdb_txn_begin(ix->env, NULL, 0, &db->wtxn))) {
		db->wtxn = NULL;
		fail_index(db, rc, "cannot begin a transaction");
		return KP_ERR(err, KAPPA_EFATAL, "%s", db->index_err.msg);
	}
	MDB_txn *txn = db->wtxn;

	if (c->attrs->request_id.len) {
		kp_request_rec rr;
		if ((rc = kp_index_request(ix, txn, c->attrs->request_id, &rr, &found)))
			goto index_error;
		if (found) {
			if (memcmp(rr.hash, c->hash, KP_HASH_BYTES) != 0)
				return KP_ERR(
					err, KAPPA_EREQUEST_REUSED,
					"request id %.*s was already used for a different append "
					"(at position %" PRIu64 ")",
					(int)c->attrs->request_id.len,
					(const char *)c->attrs->request_id.p, rr.first_position);
			res->first_position = rr.first_position;
			res->last_position = rr.last_position;
			res->version = rr.version;
			res->deduplicated = 1;
			return KP_PREPARE_SKIP; /* answered once the group holding it is durable */
		}
	}

	kp_stream_rec rec;
	if ((rc = kp_index_stream(ix, txn, c->stream, &rec, &found)))
		goto index_error;
	int ok;
	switch (c->expected) {
	case KAPPA_ANY:
		ok = 1;
		break;
	case KAPPA_NO_STREAM:
		ok = !found;
		break;
	case KAPPA_EXISTS:
		ok = found;
		break;
	default:
		ok = found && rec.last_version == (uint64_t)c->expected;
	}
	if (!ok) {
		char eb[32];
		res->actual_version = found ? (int64_t)rec.last_version : -1;
		if (found)
			return KP_ERR(err, KAPPA_EWRONG_VERSION,
				      "stream %.*s is at version %" PRIu64 ", expected %s",
				      (int)c->stream.len, (const char *)c->stream.p,
				      rec.last_version, expected_name(c->expected, eb, sizeof(eb)));
		return KP_ERR(err, KAPPA_EWRONG_VERSION, "stream %.*s does not exist, expected %s",
			      (int)c->stream.len, (const char *)c->stream.p,
			      expected_name(c->expected, eb, sizeof(eb)));
	}

	const char *ck = (const char *)c->claim_keys.data;
	for (size_t i = 0; i < c->attrs->nclaims; i++, ck += strlen(ck) + 1) {
		kp_bytes holder;
		uint8_t id[KP_CLAIM_HASH];
		int held;
		kp_claim_id(ix->claim_secret, &c->attrs->claims[i], id);
		if ((rc = kp_index_claim(ix, txn, id, &holder, &held)))
			goto index_error;
		if (held && (holder.len != c->stream.len ||
			     memcmp(holder.p, c->stream.p, holder.len) != 0)) {
			snprintf(res->claim_key, sizeof(res->claim_key), "%s", ck);
			snprintf(res->claim_holder, sizeof(res->claim_holder), "%.*s",
				 (int)holder.len, (const char *)holder.p);
			return KP_ERR(err, KAPPA_ECLAIM_TAKEN, "claim %s is held by stream %s",
				      res->claim_key, res->claim_holder);
		}
	}

	uint64_t first_version = found ? rec.last_version + 1 : 0;
	kp_batch_set_versions(&c->batch, first_version);
	kp_apply_batch ab = {first_position, kp_now_ms(),   c->batch.count,
			     c->stream,	     first_version, c->attrs};
	if ((rc = kp_index_apply(ix, txn, &db->ctr, &ab)))
		goto index_error;
	for (size_t off = 0; off < c->subjects.len; off += 1 + c->subjects.data[off]) {
		kp_bytes subj = {c->subjects.data + off + 1, c->subjects.data[off]};
		if ((rc = kp_index_subject(ix, txn, subj, c->stream)))
			goto index_error;
	}
	if (c->keyp)
		kp_seal_batch(&c->batch, c->keyp);
	db->txn_batches++;
	if (++db->appends_since_expiry >= 1024) {
		db->appends_since_expiry = 0;
		if ((rc = kp_index_expire(ix, txn, &db->ctr, kp_now_ms(), db->o.dedup_window_ms,
					  db->o.dedup_min_ids, 4096)))
			goto index_error;
	}
	res->first_position = first_position;
	res->last_position = first_position + c->batch.count - 1;
	res->version = first_version + c->batch.count - 1;
	res->deduplicated = 0;
	return KAPPA_OK;
index_error:
	fail_index(db, rc, "cannot validate an append");
	return KP_ERR(err, KAPPA_EFATAL, "%s", db->index_err.msg);
}

/* Commit the open index transaction and tell waiting readers (writer thread). */
static void
commit_index(kappa_db *db)
{
	if (!db->wtxn)
		return;
	int rc = kp_index_save_counters(&db->ix, db->wtxn, &db->ctr);
	if (rc) {
		mdb_txn_abort(db->wtxn);
		db->wtxn = NULL;
		fail_index(db, rc, "cannot save counters");
	} else {
		rc = mdb_txn_commit(db->wtxn);
		db->wtxn = NULL;
		if (rc == ENOSPC || (rc == EIO && kp_index_disk_full(&db->ix)))
			fall_behind(db, mdb_strerror(rc));
		else if (rc)
			fail_index(db, rc, "cannot commit");
	}
	db->last_commit_ns = kp_mono_ns();
	db->txn_batches = 0;
	kp_store_index_published(db, rc ? atomic_load(&db->index_pos) : db->txn_pos);
}

/*
 * Bound the index's share of RSS (writer thread, at most once a second): the map's pages
 * are clean page cache (no MDB_WRITEMAP), so dropping this process's mappings of them loses
 * nothing; readers fault them back in from the cache. Mapped file pages are read from
 * /proc/self/statm ("shared"), which here is essentially the index map.
 */
static void
trim_index_map(kappa_db *db)
{
	uint64_t now = kp_mono_ns();
	if (!db->o.index_rss_bytes || now - db->last_trim_check_ns < 1000000000u)
		return;
	db->last_trim_check_ns = now;
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size, resident, shared;
	int n = f ? fscanf(f, "%lu %lu %lu", &size, &resident, &shared) : 0;
	if (f)
		fclose(f);
	if (n != 3 || (uint64_t)shared * (uint64_t)sysconf(_SC_PAGESIZE) <= db->o.index_rss_bytes)
		return;
	if (db->map_addr)
		madvise(db->map_addr, db->map_len, MADV_DONTNEED);
}

#define COMMIT_EVERY_NS 3000000u /* under load (each commit stalls the writer: kept short) */
#define COMMIT_IDLE_NS 2000000u	 /* when the writer has nothing queued */

void
kp_store_group_commit(void *ctx, uint64_t end)
{
	kappa_db *db = ctx;
	db->txn_pos = end;
	trim_index_map(db);
	if (!db->wtxn) {
		if (atomic_load(&db->index_pos) < end && !atomic_load(&db->index_behind))
			kp_store_index_published(db, end); /* nothing to index in between */
		return;
	}
	if (atomic_load(&db->index_wanted) > atomic_load(&db->index_pos) ||
	    kp_mono_ns() - db->last_commit_ns >= COMMIT_EVERY_NS || db->txn_batches >= 20000)
		commit_index(db);
}

int
kp_store_idle(void *ctx)
{
	kappa_db *db = ctx;
	trim_index_map(db);
	if (!db->wtxn && atomic_load(&db->index_behind)) {
		/* try again now (a reader may be waiting), and every second */
		return catch_up_behind(db, NULL) == KAPPA_ENOSPC ? 1000 : -1;
	}
	if (!db->wtxn)
		return -1;
	uint64_t since = kp_mono_ns() - db->last_commit_ns;
	if (atomic_load(&db->index_wanted) > atomic_load(&db->index_pos) ||
	    since >= COMMIT_IDLE_NS || atomic_load(&db->index_failed)) {
		commit_index(db);
		return -1;
	}
	return (int)((COMMIT_IDLE_NS - since) / 1000000u) + 1;
}

void
kp_store_group_abort(void *ctx, uint64_t first)
{
	kappa_db *db = ctx;
	(void)first;
	if (db->wtxn)
		mdb_txn_abort(db->wtxn);
	db->wtxn = NULL;
	db->txn_batches = 0;
	/* The transaction also held durable appends of earlier groups: replay them. */
	kappa_err e;
	int rc = kp_store_catch_up(db, 0, &e);
	if (rc == KAPPA_ENOSPC || (rc == KAPPA_EIO && kp_index_disk_full(&db->ix))) {
		fall_behind(db, e.msg); /* the disk is full: catch up when space is back */
	} else if (rc != KAPPA_OK && !atomic_load(&db->index_failed)) {
		db->index_err = e;
		atomic_store(&db->index_failed, 1);
	}
	kp_store_index_published(db, atomic_load(&db->index_pos));
}

static void
ctx_free(append_ctx *c)
{
	if (!c)
		return;
	kp_batch_release(&c->batch);
	free(c->attrs);
	kp_buf_release(&c->claim_keys);
	kp_buf_release(&c->subjects);
	if (c->keys)
		sodium_memzero(c->keys, c->nkeys * KP_KEY_BYTES);
	free(c->keys);
	free(c->keyp);
	free(c);
}

/* A subject id may not look like an e-mail address: ids are stored in clear. */
static int
looks_like_email(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);
	return at && at > s && memchr(at + 1, '.', len - (size_t)(at + 1 - s)) != NULL;
}

/* Copy 'len' bytes of a field to be sealed into 'tmp' with room for nonce and tag around it
 * (seal.c fills them in the writer thread). */
static int
sealed_field(kp_buf *tmp, const char *p, size_t len, kp_bytes *out)
{
	static const uint8_t zero[KP_SEAL_OVERHEAD];
	tmp->len = 0;
	if (kp_buf_append(tmp, zero, KP_SEAL_NONCE) || kp_buf_append(tmp, p, len) ||
	    kp_buf_append(tmp, zero, KP_SEAL_TAG))
		return -1;
	*out = (kp_bytes){tmp->data, tmp->len};
	return 0;
}

/* The subject of event 'i': validate it and fetch its key (created and synced on first
 * use), reusing the previous event's when it has the same subject. */
static int
subject_key(append_ctx *c, const kappa_event_in *events, size_t n, size_t i, kappa_err *err)
{
	kappa_db *db = c->db;
	const char *s = events[i].subject;
	size_t len = strlen(s);
	int rc = kp_check_name((const uint8_t *)s, len, KAPPA_MAX_SUBJECT, "subject", err);
	if (rc)
		return rc;
	if (!db->o.allow_identifying_subject && looks_like_email(s, len))
		return KP_ERR(err, KAPPA_EINVAL,
			      "event %zu: subject %s looks like an e-mail address; subject ids "
			      "are stored in clear, so use an opaque id (or allow identifying "
			      "subjects)",
			      i, s);
	if (!c->keys) {
		c->keys = calloc(n, KP_KEY_BYTES);
		c->keyp = calloc(n, sizeof(*c->keyp));
		c->nkeys = n;
		if (!c->keys || !c->keyp)
			return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	}
	if (i > 0 && c->keyp[i - 1] && events[i - 1].subject && !strcmp(events[i - 1].subject, s)) {
		c->keyp[i] = c->keyp[i - 1];
		return KAPPA_OK;
	}
	uint8_t *key = c->keys + i * KP_KEY_BYTES;
	if ((rc = kp_keys_get(db->keys, (kp_bytes){(const uint8_t *)s, len}, key, err)))
		return rc;
	c->keyp[i] = key;
	uint8_t l = (uint8_t)len;
	if (kp_buf_append(&c->subjects, &l, 1) || kp_buf_append(&c->subjects, s, len))
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	return KAPPA_OK;
}

/* Check the arguments and encode the append into a new context (the caller's thread). With
 * 'forget', the append is kappa's own $subject_forgotten record. */
static int
build(kappa_db *db, const char *stream, int64_t expected_version, const char *request_id,
      const kappa_event_in *events, size_t n, const kappa_claim *claims, size_t m, kp_bytes forget,
      append_ctx **out, kappa_err *err)
{
	*out = NULL;
	int rc;
	if (!db)
		return KP_ERR(err, KAPPA_EINVAL, "no database");
	if (!stream)
		return KP_ERR(err, KAPPA_EINVAL, "no stream name");
	size_t slen = strlen(stream);
	if ((rc = kp_check_name((const uint8_t *)stream, slen, KAPPA_MAX_STREAM, "stream name",
				err)))
		return rc;
	if (stream[0] == '$' && !forget.len)
		return KP_ERR(err, KAPPA_EINVAL,
			      "stream names starting with '$' are reserved for kappa");
	if (n == 0 || !events)
		return KP_ERR(err, KAPPA_EINVAL, "an append needs at least one event");
	if (n > db->o.max_append_events)
		return KP_ERR(err, KAPPA_ETOOBIG, "%zu events in one append; the limit is %u", n,
			      db->o.max_append_events);
	if (expected_version < KAPPA_EXISTS)
		return KP_ERR(err, KAPPA_EINVAL, "expected version %" PRId64 " is not valid",
			      expected_version);
	size_t rlen = request_id ? strlen(request_id) : 0;
	if (request_id && (rc = kp_check_name((const uint8_t *)request_id, rlen,
					      KAPPA_MAX_REQUEST_ID, "request id", err)))
		return rc;
	if (m && !claims)
		return KP_ERR(err, KAPPA_EINVAL, "no claims given");
	if (m > db->o.max_append_claims)
		return KP_ERR(err, KAPPA_ETOOBIG, "%zu claims in one append; the limit is %u", m,
			      db->o.max_append_claims);
	for (size_t i = 0; i < m; i++) {
		if (!claims[i].key)
			return KP_ERR(err, KAPPA_EINVAL, "claim %zu has no key", i);
		if ((rc = kp_check_name((const uint8_t *)claims[i].key, strlen(claims[i].key),
					KAPPA_MAX_CLAIM, "claim key", err)))
			return rc;
	}

	/* Attributes, and the content hash that tells a retry from a reuse of its id. */
	append_ctx *cp = calloc(1, sizeof(*cp));
	kp_attrs *attrs = kp_attrs_new(m);
	kp_buf ab = KP_BUF_INIT, dtmp = KP_BUF_INIT, mtmp = KP_BUF_INIT;
	if (!cp || !attrs) {
		free(cp);
		free(attrs);
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	}
	append_ctx *c = cp;
	c->db = db;
	memcpy(c->stream_buf, stream, slen);
	c->stream = (kp_bytes){(const uint8_t *)c->stream_buf, slen};
	c->expected = expected_version;
	c->result.actual_version = -1;
	c->attrs = attrs;
	const uint8_t *claim_secret = kp_keys_claim_secret(db->keys);
	crypto_generichash_state hs;
	crypto_generichash_init(&hs, kp_keys_request_secret(db->keys), KP_KEY_BYTES, KP_HASH_BYTES);
	hash_part(&hs, stream, slen);
	uint8_t ev8[8];
	kp_put_u64(ev8, (uint64_t)expected_version);
	hash_part(&hs, ev8, 8);
	for (size_t i = 0; i < n; i++) {
		const kappa_event_in *e = &events[i];
		hash_part(&hs, e->type ? e->type : "", e->type ? strlen(e->type) : 0);
		size_t dl = e->data ? (e->data_len ? e->data_len : strlen(e->data)) : 0;
		hash_part(&hs, e->data ? e->data : "", dl);
		hash_part(&hs, e->subject ? e->subject : "", e->subject ? strlen(e->subject) : 0);
		size_t ml =
			e->metadata ? (e->metadata_len ? e->metadata_len : strlen(e->metadata)) : 0;
		hash_part(&hs, e->metadata ? e->metadata : "", ml);
		uint8_t sm = e->subject && e->seal_metadata ? 1 : 0;
		hash_part(&hs, &sm, 1);
	}
	int oom = 0;
	for (size_t i = 0; i < m; i++) {
		uint8_t op = claims[i].release ? 1 : 0, id[KP_CLAIM_HASH];
		size_t kl = strlen(claims[i].key);
		hash_part(&hs, &op, 1);
		hash_part(&hs, claims[i].key, kl);
		kp_claim_id_of_key(claim_secret, (kp_bytes){(const uint8_t *)claims[i].key, kl},
				   id);
		oom |= put_attr(&ab, claims[i].release ? KP_ATTR_RELEASE_ID : KP_ATTR_CLAIM_ID, id,
				KP_CLAIM_HASH);
		oom |= kp_buf_append(&c->claim_keys, claims[i].key, kl + 1);
	}
	crypto_generichash_final(&hs, c->hash, KP_HASH_BYTES);
	if (request_id)
		oom |= put_attr(&ab, KP_ATTR_REQUEST_ID, request_id, rlen) |
		       put_attr(&ab, KP_ATTR_REQUEST_HASH, c->hash, KP_HASH_BYTES);
	if (forget.len)
		oom |= put_attr(&ab, KP_ATTR_FORGET, forget.p, forget.len);
	if (oom) {
		rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		goto out;
	}

	kp_batch_limits lim = {db->o.max_event_bytes, db->o.max_append_bytes,
			       db->o.max_append_events};
	if ((rc = kp_batch_init(&c->batch, &lim, ab.data, ab.len, err)))
		goto out;
	for (size_t i = 0; i < n; i++) {
		const kappa_event_in *e = &events[i];
		if (!e->type) {
			rc = KP_ERR(err, KAPPA_EINVAL, "event %zu has no type", i);
			goto out;
		}
		if (!e->data) {
			rc = KP_ERR(err, KAPPA_EINVAL, "event %zu has no data", i);
			goto out;
		}
		if (e->subject && !e->subject[0]) {
			rc = KP_ERR(err, KAPPA_EINVAL, "event %zu has an empty subject", i);
			goto out;
		}
		size_t dl = e->data_len ? e->data_len : strlen(e->data);
		size_t ml =
			e->metadata ? (e->metadata_len ? e->metadata_len : strlen(e->metadata)) : 0;
		int seal_data = e->subject != NULL, seal_meta = seal_data && e->seal_metadata && ml;
		size_t size = dl + ml + KP_EVENT_HEADER + slen +
			      (seal_data ? KP_SEAL_OVERHEAD : 0) +
			      (seal_meta ? KP_SEAL_OVERHEAD : 0);
		if (size > db->o.max_event_bytes) {
			rc = KP_ERR(err, KAPPA_ETOOBIG,
				    "event %zu is %zu bytes%s; the limit is %" PRIu64, i, size,
				    seal_data ? " sealed" : "", db->o.max_event_bytes);
			goto out;
		}
		if ((rc = check_json_object(e->data, dl, "data", i, err)))
			goto out;
		if (e->metadata && (rc = check_json_object(e->metadata, ml, "metadata", i, err)))
			goto out;
		kp_event ev = {0};
		ev.stream = c->stream;
		ev.type = (kp_bytes){(const uint8_t *)e->type, strlen(e->type)};
		ev.data = (kp_bytes){(const uint8_t *)e->data, dl};
		if (e->metadata)
			ev.metadata = (kp_bytes){(const uint8_t *)e->metadata, ml};
		if (e->subject) {
			ev.subject = (kp_bytes){(const uint8_t *)e->subject, strlen(e->subject)};
			if ((rc = subject_key(c, events, n, i, err)))
				goto out;
			if (sealed_field(&dtmp, e->data, dl, &ev.data) ||
			    (seal_meta && sealed_field(&mtmp, e->metadata, ml, &ev.metadata))) {
				rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
				goto out;
			}
			ev.flags = KP_EV_SEALED_DATA | (seal_meta ? KP_EV_SEALED_META : 0);
		}
		if ((rc = kp_batch_add(&c->batch, &ev, err))) {
			/* name the event in the message */
			if (err) {
				char tmp[sizeof(err->msg)];
				snprintf(tmp, sizeof(tmp), "event %zu: %.200s", i, err->msg);
				memcpy(err->msg, tmp, sizeof(tmp));
			}
			goto out;
		}
	}
	/* The attributes live in the batch, whose buffer is final only now: decode them from
	 * there, so what is validated and indexed is exactly what is written. */
	if ((rc = kp_attrs_decode((kp_bytes){c->batch.buf.data + KP_BATCH_HEADER, ab.len}, attrs,
				  err)))
		goto out;
out:
	kp_buf_release(&ab);
	if (dtmp.data)
		sodium_memzero(dtmp.data, dtmp.cap);
	if (mtmp.data)
		sodium_memzero(mtmp.data, mtmp.cap);
	kp_buf_release(&dtmp);
	kp_buf_release(&mtmp);
	if (rc)
		ctx_free(c);
	else
		*out = c;
	return rc;
}

/* The writer has answered (or the log refused up front). */
static void
on_done(kp_log_req *req, int rc)
{
	append_ctx *c = req->ctx;
	if (rc == KAPPA_OK && !c->result.deduplicated &&
	    req->first_position != c->result.first_position)
		rc = KP_ERR(&req->err, KAPPA_EFATAL, "internal error: position mismatch");
	if (rc)
		req->err.code = rc;
	c->done(c->user, rc, &c->result, &req->err);
	ctx_free(c);
}

static int
submit(kappa_db *db, const char *stream, int64_t expected_version, const char *request_id,
       const kappa_event_in *events, size_t n, const kappa_claim *claims, size_t m, kp_bytes forget,
       void (*done)(void *ctx, int rc, const kappa_append_result *result, const kappa_err *err),
       void *ctx, kappa_err *err)
{
	if (!done)
		return KP_ERR(err, KAPPA_EINVAL, "no completion callback");
	append_ctx *c;
	int rc = build(db, stream, expected_version, request_id, events, n, claims, m, forget, &c,
		       err);
	if (rc)
		return rc;
	c->done = done;
	c->user = ctx;
	c->req.batch = &c->batch;
	c->req.prepare = prepare;
	c->req.done = on_done;
	c->req.ctx = c;
	kp_log_submit(db->log, &c->req);
	return KAPPA_OK;
}

int
kappa_append_async(kappa_db *db, const char *stream, int64_t expected_version,
		   const char *request_id, const kappa_event_in *events, size_t n,
		   const kappa_claim *claims, size_t m,
		   void (*done)(void *ctx, int rc, const kappa_append_result *result,
				const kappa_err *err),
		   void *ctx, kappa_err *err)
{
	return submit(db, stream, expected_version, request_id, events, n, claims, m,
		      (kp_bytes){NULL, 0}, done, ctx, err);
}

/* kappa_append: the asynchronous path and a wait. */
typedef struct waiter {
	sem_t sem;
	int rc;
	kappa_append_result *res;
	kappa_err *err;
} waiter;

static void
wake(void *arg, int rc, const kappa_append_result *res, const kappa_err *err)
{
	waiter *w = arg;
	w->rc = rc;
	if (w->res)
		*w->res = *res;
	if (rc && w->err)
		kp_err_copy(w->err, err);
	sem_post(&w->sem);
}

static int
append_wait(kappa_db *db, const char *stream, int64_t expected_version, const char *request_id,
	    const kappa_event_in *events, size_t n, const kappa_claim *claims, size_t m,
	    kp_bytes forget, kappa_append_result *result, kappa_err *err)
{
	if (result) {
		memset(result, 0, sizeof(*result));
		result->actual_version = -1;
	}
	waiter w = {.rc = KAPPA_OK, .res = result, .err = err};
	sem_init(&w.sem, 0, 0);
	int rc = submit(db, stream, expected_version, request_id, events, n, claims, m, forget,
			wake, &w, err);
	if (rc == KAPPA_OK) {
		while (sem_wait(&w.sem) < 0)
			;
		rc = w.rc;
	}
	sem_destroy(&w.sem);
	return rc;
}

int
kappa_append(kappa_db *db, const char *stream, int64_t expected_version, const char *request_id,
	     const kappa_event_in *events, size_t n, const kappa_claim *claims, size_t m,
	     kappa_append_result *result, kappa_err *err)
{
	return append_wait(db, stream, expected_version, request_id, events, n, claims, m,
			   (kp_bytes){NULL, 0}, result, err);
}

int
kp_append_forget(kappa_db *db, kp_bytes subject, const char *data, kappa_append_result *result,
		 kappa_err *err)
{
	kappa_event_in ev = {.type = KAPPA_FORGOTTEN_TYPE, .data = data};
	return append_wait(db, KAPPA_FORGOTTEN_STREAM, KAPPA_ANY, NULL, &ev, 1, NULL, 0, subject,
			   result, err);
}
