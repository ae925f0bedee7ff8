/*
 * index.c -- the event store's LMDB indexes: streams, stream versions, request ids and
 * claims, all derived from the log, and kp_index_apply, the one function that turns a
 * batch into index changes for both live appends and rebuilds.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "store/store.h"

#define SCHEMA_VERSION 3 /* 2: claim ids, subject_streams; 3: version ranges per batch */

int
kp_store_mdb_err(kappa_err *err, int rc, const char *what)
{
	int code = rc == ENOMEM				? KAPPA_ENOMEM
		   : rc == ENOSPC || rc == MDB_MAP_FULL ? KAPPA_ENOSPC
		   : rc == MDB_CORRUPTED || rc == MDB_INVALID || rc == MDB_PAGE_NOTFOUND
			   ? KAPPA_ECORRUPT
			   : KAPPA_EIO;
	return KP_ERR(err, code, "index: %s: %s", what, mdb_strerror(rc));
}

int
kp_index_disk_full(const kp_index *ix)
{
	struct statvfs st;
	return ix->dir && statvfs(ix->dir, &st) == 0 &&
	       (uint64_t)st.f_bavail * st.f_frsize < KP_INDEX_MIN_FREE;
}

void
kp_claim_id_of_key(const uint8_t secret[32], kp_bytes key, uint8_t out[KP_CLAIM_HASH])
{
	crypto_generichash(out, KP_CLAIM_HASH, key.p, key.len, secret, 32);
}

void
kp_claim_id(const uint8_t secret[32], const struct kp_attr_claim *c, uint8_t out[KP_CLAIM_HASH])
{
	if (c->is_id)
		memcpy(out, c->key.p, KP_CLAIM_HASH);
	else
		kp_claim_id_of_key(secret, c->key, out);
}

/* subject_streams key: subject | 0 | stream. */
static size_t
subject_key(uint8_t *k, kp_bytes subject, kp_bytes stream)
{
	memcpy(k, subject.p, subject.len);
	k[subject.len] = 0;
	memcpy(k + subject.len + 1, stream.p, stream.len);
	return subject.len + 1 + stream.len;
}

int
kp_index_subject(kp_index *ix, MDB_txn *txn, kp_bytes subject, kp_bytes stream)
{
	uint8_t k[KAPPA_MAX_SUBJECT + 1 + KAPPA_MAX_STREAM];
	if (subject.len > KAPPA_MAX_SUBJECT || stream.len > KAPPA_MAX_STREAM)
		return MDB_BAD_VALSIZE;
	MDB_val key = {subject_key(k, subject, stream), k}, v = {0, NULL};
	int rc = mdb_put(txn, ix->subject_streams, &key, &v, MDB_NOOVERWRITE);
	return rc == MDB_KEYEXIST ? 0 : rc;
}

int
kp_index_subject_streams(kp_index *ix, MDB_txn *txn, kp_bytes subject,
			 int (*cb)(void *ctx, kp_bytes stream), void *ctx)
{
	uint8_t k[KAPPA_MAX_SUBJECT + 1];
	if (subject.len > KAPPA_MAX_SUBJECT)
		return 0;
	size_t plen = subject_key(k, subject, (kp_bytes){(const uint8_t *)"", 0});
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, ix->subject_streams, &c);
	if (rc)
		return rc;
	MDB_val key = {plen, k}, v;
	rc = mdb_cursor_get(c, &key, &v, MDB_SET_RANGE);
	while (rc == 0 && key.mv_size > plen && memcmp(key.mv_data, k, plen) == 0) {
		int r = cb(ctx,
			   (kp_bytes){(const uint8_t *)key.mv_data + plen, key.mv_size - plen});
		if (r) {
			mdb_cursor_close(c);
			return r;
		}
		rc = mdb_cursor_get(c, &key, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	return rc == MDB_NOTFOUND || rc == 0 ? 0 : rc;
}

int
kp_index_open(kp_index *ix, const char *dir, uint64_t map_bytes, kappa_err *err)
{
	memset(ix, 0, sizeof(*ix));
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return KP_ERR_SYS(err, kp_err_from_errno(errno), errno, "cannot create %s", dir);
	ix->dir = strdup(dir);
	if (!ix->dir)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	int rc;
	MDB_txn *txn = NULL;
	if ((rc = mdb_env_create(&ix->env)))
		goto fail;
	mdb_env_set_maxdbs(ix->env, 16);
	mdb_env_set_maxreaders(ix->env, 1024);
	if ((rc = mdb_env_set_mapsize(ix->env, (size_t)map_bytes)))
		goto fail;
	if ((rc = mdb_env_open(ix->env, dir, MDB_NOSYNC | MDB_NOTLS | MDB_NORDAHEAD, 0644)))
		goto fail;
	if ((rc = mdb_txn_begin(ix->env, NULL, 0, &txn)))
		goto fail;
	struct {
		const char *name;
		MDB_dbi *dbi;
	} dbs[] = {{"meta", &ix->meta},
		   {"streams", &ix->streams},
		   {"versions", &ix->versions},
		   {"requests", &ix->requests},
		   {"req_order", &ix->req_order},
		   {"claims", &ix->claims},
		   {"stream_claims", &ix->stream_claims},
		   {"subject_streams", &ix->subject_streams}};
	for (size_t i = 0; i < sizeof(dbs) / sizeof(dbs[0]); i++)
		if ((rc = mdb_dbi_open(txn, dbs[i].name, MDB_CREATE, dbs[i].dbi)))
			goto fail;
	uint64_t schema;
	if ((rc = kp_index_get_u64(ix, txn, "schema", &schema)))
		goto fail;
	if (schema == 0) {
		if ((rc = kp_index_put_u64(ix, txn, "schema", SCHEMA_VERSION)))
			goto fail;
	} else if (schema != SCHEMA_VERSION) {
		mdb_txn_abort(txn);
		txn = NULL;
		kp_index_close(ix);
		return KP_ERR(err, KAPPA_ECORRUPT, "index: schema %llu is not %d",
			      (unsigned long long)schema, SCHEMA_VERSION);
	}
	if ((rc = mdb_txn_commit(txn))) {
		txn = NULL;
		goto fail;
	}
	return KAPPA_OK;
fail:
	if (txn)
		mdb_txn_abort(txn);
	kp_index_close(ix);
	return kp_store_mdb_err(err, rc, "cannot open");
}

void
kp_index_close(kp_index *ix)
{
	if (ix->env)
		mdb_env_close(ix->env);
	ix->env = NULL;
	free(ix->dir);
	ix->dir = NULL;
}

int
kp_index_clear(kp_index *ix, MDB_txn *txn, kappa_err *err)
{
	MDB_dbi all[] = {ix->streams, ix->versions,	 ix->requests,	     ix->req_order,
			 ix->claims,  ix->stream_claims, ix->subject_streams};
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		int rc = mdb_drop(txn, all[i], 0);
		if (rc)
			return kp_store_mdb_err(err, rc, "cannot clear");
	}
	const char *keys[] = {"position", "stream_seq", "req_seq", "req_count"};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		int rc = kp_index_put_u64(ix, txn, keys[i], 0);
		if (rc)
			return kp_store_mdb_err(err, rc, "cannot clear");
	}
	return KAPPA_OK;
}

int
kp_index_get_u64(kp_index *ix, MDB_txn *txn, const char *key, uint64_t *v)
{
	MDB_val k = {strlen(key), (void *)key}, d;
	*v = 0;
	int rc = mdb_get(txn, ix->meta, &k, &d);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (d.mv_size != 8)
		return MDB_CORRUPTED;
	*v = kp_get_u64(d.mv_data);
	return 0;
}

int
kp_index_put_u64(kp_index *ix, MDB_txn *txn, const char *key, uint64_t v)
{
	uint8_t b[8];
	kp_put_u64(b, v);
	MDB_val k = {strlen(key), (void *)key}, d = {8, b};
	return mdb_put(txn, ix->meta, &k, &d, 0);
}

static void
stream_encode(uint8_t *p, const kp_stream_rec *r)
{
	kp_put_u64(p, r->id);
	kp_put_u64(p + 8, r->last_version);
	kp_put_u64(p + 16, r->last_position);
	kp_put_u64(p + 24, r->event_count);
	kp_put_u64(p + 32, r->claims_held);
}

int
kp_index_stream(kp_index *ix, MDB_txn *txn, kp_bytes name, kp_stream_rec *r, int *found)
{
	MDB_val k = {name.len, (void *)name.p}, d;
	*found = 0;
	int rc = mdb_get(txn, ix->streams, &k, &d);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (d.mv_size != 40)
		return MDB_CORRUPTED;
	*found = 1;
	const uint8_t *p = d.mv_data;
	r->id = kp_get_u64(p);
	r->last_version = kp_get_u64(p + 8);
	r->last_position = kp_get_u64(p + 16);
	r->event_count = kp_get_u64(p + 24);
	r->claims_held = kp_get_u64(p + 32);
	return 0;
}

static void
request_encode(uint8_t *p, const kp_request_rec *r)
{
	memcpy(p, r->hash, KP_HASH_BYTES);
	kp_put_u64(p + 16, r->first_position);
	kp_put_u64(p + 24, r->last_position);
	kp_put_u64(p + 32, r->version);
	kp_put_u64(p + 40, (uint64_t)r->time_ms);
	kp_put_u64(p + 48, r->seq);
}

int
kp_index_request(kp_index *ix, MDB_txn *txn, kp_bytes id, kp_request_rec *r, int *found)
{
	MDB_val k = {id.len, (void *)id.p}, d;
	*found = 0;
	int rc = mdb_get(txn, ix->requests, &k, &d);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (d.mv_size != 56)
		return MDB_CORRUPTED;
	*found = 1;
	const uint8_t *p = d.mv_data;
	memcpy(r->hash, p, KP_HASH_BYTES);
	r->first_position = kp_get_u64(p + 16);
	r->last_position = kp_get_u64(p + 24);
	r->version = kp_get_u64(p + 32);
	r->time_ms = (int64_t)kp_get_u64(p + 40);
	r->seq = kp_get_u64(p + 48);
	return 0;
}

int
kp_index_claim(kp_index *ix, MDB_txn *txn, const uint8_t id[KP_CLAIM_HASH], kp_bytes *holder,
	       int *found)
{
	MDB_val k = {KP_CLAIM_HASH, (void *)id}, d;
	*found = 0;
	int rc = mdb_get(txn, ix->claims, &k, &d);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return rc;
	*holder = (kp_bytes){d.mv_data, d.mv_size};
	*found = 1;
	return 0;
}

int
kp_index_load_counters(kp_index *ix, MDB_txn *txn, kp_index_counters *c)
{
	int rc;
	if ((rc = kp_index_get_u64(ix, txn, "position", &c->position)) ||
	    (rc = kp_index_get_u64(ix, txn, "stream_seq", &c->stream_seq)) ||
	    (rc = kp_index_get_u64(ix, txn, "req_seq", &c->req_seq)) ||
	    (rc = kp_index_get_u64(ix, txn, "req_count", &c->req_count)))
		return rc;
	return 0;
}

int
kp_index_save_counters(kp_index *ix, MDB_txn *txn, const kp_index_counters *c)
{
	int rc;
	if ((rc = kp_index_put_u64(ix, txn, "position", c->position)) ||
	    (rc = kp_index_put_u64(ix, txn, "stream_seq", c->stream_seq)) ||
	    (rc = kp_index_put_u64(ix, txn, "req_seq", c->req_seq)) ||
	    (rc = kp_index_put_u64(ix, txn, "req_count", c->req_count)))
		return rc;
	return 0;
}

static int
apply_claims(kp_index *ix, MDB_txn *txn, const kp_apply_batch *b, kp_stream_rec *rec)
{
	int rc = 0;
	for (size_t i = 0; i < b->attrs->nclaims && rc == 0; i++) {
		uint8_t sk[8 + KP_CLAIM_HASH];
		kp_put_be64(sk, rec->id);
		kp_claim_id(ix->claim_secret, &b->attrs->claims[i], sk + 8);
		MDB_val ck = {KP_CLAIM_HASH, sk + 8}, cd;
		MDB_val sck = {sizeof(sk), sk};
		rc = mdb_get(txn, ix->claims, &ck, &cd);
		int held_here = rc == 0 && cd.mv_size == b->stream.len &&
				memcmp(cd.mv_data, b->stream.p, b->stream.len) == 0;
		if (rc && rc != MDB_NOTFOUND)
			return rc;
		rc = 0;
		if (!b->attrs->claims[i].release) {
			if (held_here)
				continue;
			MDB_val holder = {b->stream.len, (void *)b->stream.p};
			MDB_val keyv = {0, NULL};
			if ((rc = mdb_put(txn, ix->claims, &ck, &holder, 0)) == 0 &&
			    (rc = mdb_put(txn, ix->stream_claims, &sck, &keyv, 0)) == 0)
				rec->claims_held++;
		} else if (held_here) {
			if ((rc = mdb_del(txn, ix->claims, &ck, NULL)) == 0) {
				rc = mdb_del(txn, ix->stream_claims, &sck, NULL);
				if (rc == MDB_NOTFOUND)
					rc = 0;
				if (rec->claims_held)
					rec->claims_held--;
			}
		}
	}
	return rc;
}

/* Release every claim held by 'stream' (a stream of a forgotten subject). */
static int
release_stream_claims(void *arg, kp_bytes stream)
{
	void **a = arg;
	kp_index *ix = a[0];
	MDB_txn *txn = a[1];
	kp_stream_rec rec;
	int found, rc = kp_index_stream(ix, txn, stream, &rec, &found);
	if (rc || !found || !rec.claims_held)
		return rc;
	uint8_t pk[8];
	kp_put_be64(pk, rec.id);
	MDB_cursor *c;
	if ((rc = mdb_cursor_open(txn, ix->stream_claims, &c)))
		return rc;
	for (;;) { /* seek the stream's first claim again after each deletion */
		MDB_val k = {8, pk}, v;
		rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		if (rc || k.mv_size != 8 + KP_CLAIM_HASH || memcmp(k.mv_data, pk, 8) != 0)
			break;
		uint8_t key[8 + KP_CLAIM_HASH];
		memcpy(key, k.mv_data, sizeof(key));
		MDB_val ck = {KP_CLAIM_HASH, key + 8}, sck = {sizeof(key), key};
		if ((rc = mdb_del(txn, ix->claims, &ck, NULL)) && rc != MDB_NOTFOUND)
			break;
		if ((rc = mdb_del(txn, ix->stream_claims, &sck, NULL)))
			break;
	}
	mdb_cursor_close(c);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	rec.claims_held = 0;
	uint8_t sv[40];
	stream_encode(sv, &rec);
	MDB_val sk = {stream.len, (void *)stream.p}, sd = {40, sv};
	return mdb_put(txn, ix->streams, &sk, &sd, 0);
}

int
kp_index_apply(kp_index *ix, MDB_txn *txn, kp_index_counters *ctr, const kp_apply_batch *b)
{
	kp_stream_rec rec;
	int found;
	int rc = kp_index_stream(ix, txn, b->stream, &rec, &found);
	if (rc)
		return rc;
	if (!found) {
		memset(&rec, 0, sizeof(rec));
		rec.id = ctr->stream_seq++;
	}
	/* One range per batch (read.c, seek_range): its versions and positions are consecutive. */
	uint8_t vk[16], vd[12];
	kp_put_be64(vk, rec.id);
	kp_put_be64(vk + 8, b->first_version);
	kp_put_u64(vd, b->first_position);
	kp_put_u32(vd + 8, b->count);
	MDB_val vkey = {16, vk}, vval = {12, vd};
	if ((rc = mdb_put(txn, ix->versions, &vkey, &vval, 0)))
		return rc;
	rec.last_version = b->first_version + b->count - 1;
	rec.last_position = b->first_position + b->count - 1;
	rec.event_count += b->count;
	if ((rc = apply_claims(ix, txn, b, &rec)))
		return rc;
	if (b->attrs->forget.len) {
		void *arg[2] = {ix, txn};
		if ((rc = kp_index_subject_streams(ix, txn, b->attrs->forget, release_stream_claims,
						   arg)))
			return rc;
	}
	uint8_t sv[40];
	stream_encode(sv, &rec);
	MDB_val sk = {b->stream.len, (void *)b->stream.p}, sd = {40, sv};
	if ((rc = mdb_put(txn, ix->streams, &sk, &sd, 0)))
		return rc;

	if (b->attrs->request_id.len) {
		kp_request_rec rr, old;
		memset(&rr, 0, sizeof(rr));
		if (b->attrs->request_hash.len == KP_HASH_BYTES)
			memcpy(rr.hash, b->attrs->request_hash.p, KP_HASH_BYTES);
		rr.first_position = b->first_position;
		rr.last_position = rec.last_position;
		rr.version = rec.last_version;
		rr.time_ms = b->time_ms;
		int had;
		if ((rc = kp_index_request(ix, txn, b->attrs->request_id, &old, &had)))
			return rc;
		if (had) {
			/* an id seen again after it expired: replace its order entry */
			uint8_t ok[8];
			kp_put_be64(ok, old.seq);
			MDB_val k = {8, ok};
			mdb_del(txn, ix->req_order, &k, NULL);
			ctr->req_count--;
		}
		rr.seq = ctr->req_seq++;
		uint8_t rv[56], ok[8];
		request_encode(rv, &rr);
		kp_put_be64(ok, rr.seq);
		MDB_val rk = {b->attrs->request_id.len, (void *)b->attrs->request_id.p};
		MDB_val rd = {56, rv}, okv = {8, ok};
		if ((rc = mdb_put(txn, ix->requests, &rk, &rd, 0)) ||
		    (rc = mdb_put(txn, ix->req_order, &okv, &rk, 0)))
			return rc;
		ctr->req_count++;
	}
	ctr->position = b->first_position + b->count;
	return 0;
}

int
kp_index_expire(kp_index *ix, MDB_txn *txn, kp_index_counters *ctr, int64_t now_ms,
		int64_t window_ms, uint64_t min_ids, int max)
{
	uint64_t count = ctr->req_count;
	int rc;
	MDB_cursor *c;
	if ((rc = mdb_cursor_open(txn, ix->req_order, &c)))
		return rc;
	int n = 0;
	MDB_val k, d;
	while (count > min_ids && n < max && (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST)) == 0) {
		kp_request_rec rr;
		kp_bytes id = {d.mv_data, d.mv_size};
		int found;
		if ((rc = kp_index_request(ix, txn, id, &rr, &found)))
			break;
		if (found && rr.time_ms >= now_ms - window_ms)
			break; /* the oldest is still inside the window */
		if (found) {
			MDB_val rk = {d.mv_size, d.mv_data};
			if ((rc = mdb_del(txn, ix->requests, &rk, NULL)))
				break;
		}
		if ((rc = mdb_cursor_del(c, 0)))
			break;
		count--;
		n++;
	}
	mdb_cursor_close(c);
	if (rc == MDB_NOTFOUND)
		rc = 0;
	ctr->req_count = count;
	return rc;
}
