/*
 * read.c -- reading a kappa database: stream reads (through the version index), log reads,
 * subscriptions (catch-up, then live), and stream facts. Readers never hold up the writer:
 * they use short LMDB read transactions and their own log iterators.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define POS_CHUNK 256

struct kappa_iter {
	kappa_db *db;
	kp_log_iter *li;
	uint64_t remaining;
	int by_stream;
	/* stream reads */
	uint64_t stream_id;
	int backward;
	uint64_t next_version; /* next version to look up */
	int exhausted;	       /* no more versions in the index */
	uint64_t pos[POS_CHUNK];
	size_t pos_n, pos_i;
	kp_buf plain; /* the current event's opened fields */
};

struct kappa_sub {
	kappa_db *db;
	kp_log_iter *li;
	kp_buf plain;
};

/* Zero and free an opened-fields buffer. */
static void
plain_release(kp_buf *b)
{
	if (b->data)
		sodium_memzero(b->data, b->cap);
	kp_buf_release(b);
}

/* Open a read event's sealed fields and convert it for the caller. */
static int deliver(kappa_db *db, kp_event *e, kp_buf *plain, kappa_event *o, kappa_err *err);

static void
to_public(const kp_event *e, kappa_event *o)
{
	o->position = e->position;
	o->version = e->version;
	o->time_ms = e->time_ms;
	o->stream = (const char *)e->stream.p;
	o->stream_len = e->stream.len;
	o->type = (const char *)e->type.p;
	o->type_len = e->type.len;
	o->data = (const char *)e->data.p;
	o->data_len = e->data.len;
	o->subject = e->subject.len ? (const char *)e->subject.p : NULL;
	o->subject_len = e->subject.len;
	o->metadata = e->metadata.len ? (const char *)e->metadata.p : NULL;
	o->metadata_len = e->metadata.len;
	o->forgotten = 0;
}

static int
deliver(kappa_db *db, kp_event *e, kp_buf *plain, kappa_event *o, kappa_err *err)
{
	int forgotten, rc = kp_store_unseal(db, e, plain, &forgotten, err);
	if (rc)
		return rc;
	to_public(e, o);
	o->forgotten = forgotten;
	return 1;
}

static int
read_txn(kappa_db *db, MDB_txn **txn, kappa_err *err)
{
	int m = mdb_txn_begin(db->ix.env, NULL, MDB_RDONLY, txn);
	return m ? kp_store_mdb_err(err, m, "cannot begin a read") : KAPPA_OK;
}

/* Look 'stream' up in the index as it stands after every append acknowledged before the
 * call. On success *txn is an open read transaction the caller aborts. */
static int
stream_lookup(kappa_db *db, const char *stream, MDB_txn **txn, kp_stream_rec *rec, int *found,
	      kappa_err *err)
{
	if (!stream)
		return KP_ERR(err, KAPPA_EINVAL, "no stream name");
	kp_bytes name = {(const uint8_t *)stream, strlen(stream)};
	int rc = kp_check_name(name.p, name.len, KAPPA_MAX_STREAM, "stream name", err);
	if (rc || (rc = kp_store_index_wait(db, err)) || (rc = read_txn(db, txn, err)))
		return rc;
	int m = kp_index_stream(&db->ix, *txn, name, rec, found);
	if (m) {
		mdb_txn_abort(*txn);
		return kp_store_mdb_err(err, m, "cannot read a stream");
	}
	return KAPPA_OK;
}

int
kappa_read_log(kappa_db *db, uint64_t from_position, uint64_t max, kappa_iter **out, kappa_err *err)
{
	if (!db || !out)
		return KP_ERR(err, KAPPA_EINVAL, "no database or iterator pointer");
	*out = NULL;
	kappa_iter *it = calloc(1, sizeof(*it));
	if (!it)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	int rc = kp_log_iter_open(db->log, from_position, &it->li, err);
	if (rc) {
		free(it);
		return rc;
	}
	it->db = db;
	it->remaining = max;
	*out = it;
	return KAPPA_OK;
}

int
kappa_read_stream(kappa_db *db, const char *stream, uint64_t from_version, uint64_t max,
		  int direction, kappa_iter **out, kappa_err *err)
{
	if (!db || !out)
		return KP_ERR(err, KAPPA_EINVAL, "no database or iterator pointer");
	*out = NULL;
	int rc;
	if (direction != KAPPA_FORWARD && direction != KAPPA_BACKWARD)
		return KP_ERR(err, KAPPA_EINVAL, "direction must be forward or backward");
	kappa_iter *it = calloc(1, sizeof(*it));
	if (!it)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	it->db = db;
	it->remaining = max;
	it->by_stream = 1;
	it->backward = direction == KAPPA_BACKWARD;
	MDB_txn *txn;
	kp_stream_rec rec;
	int found;
	if ((rc = stream_lookup(db, stream, &txn, &rec, &found, err))) {
		free(it);
		return rc;
	}
	mdb_txn_abort(txn);
	if (!found || (!it->backward && from_version > rec.last_version)) {
		it->exhausted = 1;
	} else {
		it->stream_id = rec.id;
		it->next_version = it->backward && from_version > rec.last_version
					   ? rec.last_version
					   : from_version;
	}
	if ((rc = kp_log_iter_open(db->log, kp_log_first(db->log), &it->li, err))) {
		free(it);
		return rc;
	}
	*out = it;
	return KAPPA_OK;
}

/*
 * The version index holds one range per appended batch: key stream id | first version
 * (big-endian), value first position (u64) and count (u32), versions and positions both
 * consecutive within a batch. seek_range puts the cursor on the range of stream 'id' that
 * holds version 'v' (the one with the largest first version <= v), or answers MDB_NOTFOUND.
 */
static int
seek_range(MDB_cursor *c, uint64_t id, uint64_t v, MDB_val *key, MDB_val *val)
{
	uint8_t k[16];
	kp_put_be64(k, id);
	kp_put_be64(k + 8, v);
	*key = (MDB_val){16, k};
	int m = mdb_cursor_get(c, key, val, MDB_SET_RANGE);
	if (m == 0 && key->mv_size == 16 && memcmp(key->mv_data, k, 16) == 0)
		return 0;
	if (m == MDB_NOTFOUND)
		m = mdb_cursor_get(c, key, val, MDB_LAST);
	else if (m == 0)
		m = mdb_cursor_get(c, key, val, MDB_PREV);
	if (m)
		return m;
	return key->mv_size == 16 && kp_get_be64(key->mv_data) == id ? 0 : MDB_NOTFOUND;
}

/* The range under the cursor; MDB_CORRUPTED if it does not decode. */
static int
range_of(const MDB_val *key, const MDB_val *val, uint64_t *first, uint64_t *pos, uint32_t *count)
{
	if (key->mv_size != 16 || val->mv_size != 12)
		return MDB_CORRUPTED;
	*first = kp_get_be64((const uint8_t *)key->mv_data + 8);
	*pos = kp_get_u64(val->mv_data);
	*count = kp_get_u32((const uint8_t *)val->mv_data + 8);
	return *count ? 0 : MDB_CORRUPTED;
}

/* Step to the next (or previous) range of the same stream. */
static int
step_range(MDB_cursor *c, uint64_t id, int backward, MDB_val *key, MDB_val *val)
{
	int m = mdb_cursor_get(c, key, val, backward ? MDB_PREV : MDB_NEXT);
	if (m == 0 && (key->mv_size != 16 || kp_get_be64(key->mv_data) != id))
		m = MDB_NOTFOUND;
	return m;
}

/* Fetch the next chunk of positions of the stream from the version index. */
static int
fill_positions(kappa_iter *it, kappa_err *err)
{
	it->pos_n = it->pos_i = 0;
	if (it->exhausted)
		return KAPPA_OK;
	MDB_txn *txn;
	int rc = read_txn(it->db, &txn, err);
	if (rc)
		return rc;
	MDB_cursor *c;
	int m = mdb_cursor_open(txn, it->db->ix.versions, &c);
	if (m) {
		mdb_txn_abort(txn);
		return kp_store_mdb_err(err, m, "cannot read a stream");
	}
	MDB_val key, val;
	m = seek_range(c, it->stream_id, it->next_version, &key, &val);
	while (m == 0 && it->pos_n < POS_CHUNK) {
		uint64_t first, pos;
		uint32_t count;
		if ((m = range_of(&key, &val, &first, &pos, &count)))
			break;
		uint64_t end = first + count; /* one past the range's last version */
		if (it->backward) {
			uint64_t v = it->next_version < end ? it->next_version : end - 1;
			for (;;) {
				it->pos[it->pos_n++] = pos + (v - first);
				if (v == first || it->pos_n == POS_CHUNK)
					break;
				v--;
			}
			if (v == 0) {
				m = MDB_NOTFOUND;
				break;
			}
			it->next_version = v - 1;
			if (v == first)
				m = step_range(c, it->stream_id, 1, &key, &val);
		} else {
			uint64_t v = it->next_version > first ? it->next_version : first;
			for (; v < end && it->pos_n < POS_CHUNK; v++)
				it->pos[it->pos_n++] = pos + (v - first);
			it->next_version = v;
			if (v == end)
				m = step_range(c, it->stream_id, 0, &key, &val);
		}
	}
	mdb_cursor_close(c);
	mdb_txn_abort(txn);
	if (m == MDB_NOTFOUND)
		it->exhausted = 1;
	else if (m)
		return kp_store_mdb_err(err, m, "cannot read a stream");
	return KAPPA_OK;
}

int
kappa_iter_next(kappa_iter *it, kappa_event *ev, kappa_err *err)
{
	if (!it || !ev)
		return KP_ERR(err, KAPPA_EINVAL, "no iterator or event");
	if (it->remaining == 0)
		return 0;
	kp_event e;
	int rc;
	if (it->by_stream) {
		if (it->pos_i == it->pos_n) {
			if ((rc = fill_positions(it, err)))
				return rc;
			if (it->pos_n == 0)
				return 0;
		}
		uint64_t p = it->pos[it->pos_i++];
		if ((rc = kp_log_iter_seek(it->li, p, err)))
			return rc;
		rc = kp_log_iter_next(it->li, &e, err);
		if (rc == 0)
			return KP_ERR(err, KAPPA_ECORRUPT,
				      "the index names position %llu, which the "
				      "log does not hold",
				      (unsigned long long)p);
	} else {
		rc = kp_log_iter_next(it->li, &e, err);
	}
	if (rc != 1)
		return rc;
	it->remaining--;
	return deliver(it->db, &e, &it->plain, ev, err);
}

void
kappa_iter_free(kappa_iter *it)
{
	if (!it)
		return;
	kp_log_iter_close(it->li);
	plain_release(&it->plain);
	free(it);
}

int
kappa_subscribe(kappa_db *db, uint64_t from_position, kappa_sub **out, kappa_err *err)
{
	if (!db || !out)
		return KP_ERR(err, KAPPA_EINVAL, "no database or subscription pointer");
	*out = NULL;
	kappa_sub *s = calloc(1, sizeof(*s));
	if (!s)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	int rc = kp_log_iter_open(db->log, from_position, &s->li, err);
	if (rc) {
		free(s);
		return rc;
	}
	s->db = db;
	*out = s;
	return KAPPA_OK;
}

int
kappa_sub_next(kappa_sub *s, kappa_event *ev, int64_t timeout_ms, kappa_err *err)
{
	if (!s || !ev)
		return KP_ERR(err, KAPPA_EINVAL, "no subscription or event");
	for (;;) {
		kp_event e;
		int rc = kp_log_iter_next(s->li, &e, err);
		if (rc == 1)
			return deliver(s->db, &e, &s->plain, ev, err);
		if (rc < 0)
			return rc;
		rc = kp_log_wait(s->db->log, kp_log_iter_position(s->li), timeout_ms);
		if (rc == KAPPA_ETIMEOUT)
			return 0;
		if (rc == KAPPA_ECLOSED)
			return KP_ERR(err, rc, "the database is closing");
		if (rc)
			return KP_ERR(err, rc, "the log failed; reopen the database");
	}
}

void
kappa_sub_free(kappa_sub *s)
{
	if (!s)
		return;
	kp_log_iter_close(s->li);
	plain_release(&s->plain);
	free(s);
}

int
kappa_stream_info_get(kappa_db *db, const char *stream, kappa_stream_info *info, kappa_err *err)
{
	if (!db || !info)
		return KP_ERR(err, KAPPA_EINVAL, "no database or info pointer");
	memset(info, 0, sizeof(*info));
	MDB_txn *txn;
	kp_stream_rec rec;
	int found, rc = stream_lookup(db, stream, &txn, &rec, &found, err);
	if (rc)
		return rc;
	mdb_txn_abort(txn);
	if (found) {
		info->exists = 1;
		info->last_version = rec.last_version;
		info->last_position = rec.last_position;
		info->event_count = rec.event_count;
		info->claims_held = rec.claims_held;
	}
	return KAPPA_OK;
}

int
kappa_stream_claims(kappa_db *db, const char *stream,
		    void (*cb)(void *ctx, const char *key, size_t len), void *ctx, kappa_err *err)
{
	if (!db || !cb)
		return KP_ERR(err, KAPPA_EINVAL, "no database or callback");
	MDB_txn *txn;
	kp_stream_rec rec;
	int found, m = 0, rc = stream_lookup(db, stream, &txn, &rec, &found, err);
	if (rc)
		return rc;
	MDB_cursor *c = NULL;
	if (found && (m = mdb_cursor_open(txn, db->ix.stream_claims, &c)) == 0) {
		uint8_t k[8];
		kp_put_be64(k, rec.id);
		MDB_val key = {8, k}, val;
		m = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
		while (m == 0 && key.mv_size > 8 && kp_get_be64(key.mv_data) == rec.id) {
			char hex[KAPPA_CLAIM_ID];
			sodium_bin2hex(hex, sizeof(hex), (const uint8_t *)key.mv_data + 8,
				       key.mv_size - 8 < 32 ? key.mv_size - 8 : 32);
			cb(ctx, hex, strlen(hex));
			m = mdb_cursor_get(c, &key, &val, MDB_NEXT);
		}
		if (m == MDB_NOTFOUND)
			m = 0;
		mdb_cursor_close(c);
	}
	mdb_txn_abort(txn);
	return m ? kp_store_mdb_err(err, m, "cannot read claims") : KAPPA_OK;
}
