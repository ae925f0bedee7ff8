/*
 * reader.c -- reading the log by position: iterators and kp_log_read.
 *
 * A reader finds the segment holding its position, starts at the nearest index entry at or
 * below it, and walks batches forward, checking each delivered batch's CRC. It never reads
 * past the committed end of the active segment, so it never sees a batch being written.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "log/log_int.h"

#define READ_WINDOW (256u << 10)

struct kp_log_iter {
	kp_log *log;
	uint64_t pos;	 /* next position to return */
	kp_segment *seg; /* current segment (a reference is held), or NULL */
	uint64_t off;	 /* offset of the next batch in seg */
	/* read window over seg */
	uint8_t *buf;
	size_t cap;
	uint64_t win_off;
	size_t win_len;
	/* the batch being returned */
	kp_batch_iter bi;
	int in_batch;
	uint64_t batch_off;
};

int
kp_log_iter_open(kp_log *log, uint64_t from, kp_log_iter **out, kappa_err *err)
{
	*out = NULL;
	if (from < kp_log_first(log))
		return KP_ERR(err, KAPPA_ERANGE,
			      "position %" PRIu64
			      " was removed by retention; the log starts at %" PRIu64,
			      from, kp_log_first(log));
	kp_log_iter *it = calloc(1, sizeof(*it));
	if (!it)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	it->log = log;
	it->pos = from;
	*out = it;
	return KAPPA_OK;
}

void
kp_log_iter_close(kp_log_iter *it)
{
	if (!it)
		return;
	if (it->seg)
		kp_seg_unref(it->seg, it->log->io);
	free(it->buf);
	free(it);
}

uint64_t
kp_log_iter_position(const kp_log_iter *it)
{
	return it->pos;
}

static void
drop_segment(kp_log_iter *it)
{
	if (it->seg)
		kp_seg_unref(it->seg, it->log->io);
	it->seg = NULL;
	it->win_len = 0;
}

int
kp_log_iter_seek(kp_log_iter *it, uint64_t position, kappa_err *err)
{
	if (position < kp_log_first(it->log))
		return KP_ERR(err, KAPPA_ERANGE,
			      "position %" PRIu64
			      " was removed by retention; the log starts at %" PRIu64,
			      position, kp_log_first(it->log));
	if (position == it->pos)
		return KAPPA_OK;
	/* Forward within the batch being returned: just skip; otherwise find it afresh, but
	 * keep the segment (and its read window) when the position is still in it. */
	it->in_batch = 0;
	int keep = it->seg && position >= it->seg->first_pos &&
		   (!atomic_load(&it->seg->sealed) || position < atomic_load(&it->seg->end_pos));
	it->pos = position;
	if (keep) {
		uint64_t at;
		kp_seg_idx_find(it->seg, position, &it->off, &at);
		/* batches between the index entry and the position are skipped by header */
	} else {
		drop_segment(it);
	}
	return KAPPA_OK;
}

static int
locate(kp_log_iter *it, kappa_err *err)
{
	kp_log *log = it->log;
	pthread_mutex_lock(&log->seg_lock);
	if (log->nsegs == 0 || it->pos < log->segs[0]->first_pos) {
		uint64_t first = log->nsegs ? log->segs[0]->first_pos : 0;
		pthread_mutex_unlock(&log->seg_lock);
		return KP_ERR(err, KAPPA_ERANGE,
			      "position %" PRIu64
			      " was removed by retention; the log starts at %" PRIu64,
			      it->pos, first);
	}
	size_t lo = 0, hi = log->nsegs;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (log->segs[mid]->first_pos <= it->pos)
			lo = mid;
		else
			hi = mid;
	}
	kp_segment *s = log->segs[lo];
	kp_seg_ref(s);
	pthread_mutex_unlock(&log->seg_lock);
	int rc;
	if (atomic_load(&s->sealed) && (rc = kp_seg_idx_load(log, s, err))) {
		kp_seg_unref(s, log->io);
		return rc;
	}
	uint64_t at;
	kp_seg_idx_find(s, it->pos, &it->off, &at);
	it->seg = s;
	it->win_len = 0;
	return KAPPA_OK;
}

/* Bytes [off, off + n) of the current segment, never past 'limit'. *got < n at the end. */
static int
get(kp_log_iter *it, uint64_t off, size_t n, uint64_t limit, const uint8_t **p, size_t *got,
    kappa_err *err)
{
	if (off >= it->win_off && off + n <= it->win_off + it->win_len) {
		*p = it->buf + (off - it->win_off);
		*got = n;
		return KAPPA_OK;
	}
	size_t want = n > READ_WINDOW ? n : READ_WINDOW;
	if (off >= limit) {
		*got = 0;
		return KAPPA_OK;
	}
	if (limit - off < want)
		want = (size_t)(limit - off);
	if (want > it->cap) {
		size_t nc = want > READ_WINDOW ? want : READ_WINDOW;
		uint8_t *nb = realloc(it->buf, nc);
		if (!nb)
			return KP_ERR(err, KAPPA_ENOMEM, "out of memory reading the log");
		it->buf = nb;
		it->cap = nc;
	}
	ssize_t r = kp_io_pread_full(it->log->io, it->seg->fd, it->buf, want, (off_t)off);
	if (r < 0)
		return KP_ERR_SYS(err, kp_err_from_errno((int)-r), (int)-r, "cannot read %s",
				  it->seg->path);
	it->win_off = off;
	it->win_len = (size_t)r;
	*p = it->buf;
	*got = it->win_len < n ? it->win_len : n;
	return KAPPA_OK;
}

static int
corrupt(kp_log_iter *it, uint64_t off, const char *why, kappa_err *err)
{
	return KP_ERR(err, KAPPA_ECORRUPT,
		      "segment %s is corrupt at offset %" PRIu64 " (position %" PRIu64 "): %s",
		      it->seg->path, off, it->pos, why);
}

int
kp_log_iter_next(kp_log_iter *it, kp_event *ev, kappa_err *err)
{
	kp_log *log = it->log;
	int rc;
	for (;;) {
		if (it->in_batch) {
			kappa_err why;
			rc = kp_batch_iter_next(&it->bi, ev, &why);
			if (rc == 1) {
				if (ev->position < it->pos)
					continue;
				it->pos++;
				return 1;
			}
			it->in_batch = 0;
			if (rc < 0)
				return corrupt(it, it->batch_off, why.msg, err);
			it->off = it->batch_off + it->bi.h.length;
			continue;
		}
		if (it->pos >= kp_log_head(log))
			return 0;
		if (it->pos < kp_log_first(log) && !it->seg)
			return KP_ERR(err, KAPPA_ERANGE,
				      "position %" PRIu64 " was removed by retention", it->pos);
		if (it->seg && atomic_load(&it->seg->sealed) &&
		    it->pos >= atomic_load(&it->seg->end_pos))
			drop_segment(it);
		if (!it->seg && (rc = locate(it, err)))
			return rc;
		kp_segment *s = it->seg;
		uint64_t limit = atomic_load(&s->sealed) ? UINT64_MAX : atomic_load(&s->end_off);
		const uint8_t *p;
		size_t got;
		if ((rc = get(it, it->off, KP_BATCH_HEADER, limit, &p, &got, err)))
			return rc;
		if (got < KP_BATCH_HEADER) {
			if (!atomic_load(&s->sealed)) {
				/* the writer moved on to a new segment since we looked */
				drop_segment(it);
				continue;
			}
			return corrupt(it, it->off, "the segment ends before its last position",
				       err);
		}
		kp_batch_hdr h;
		kappa_err why;
		if (kp_batch_hdr_decode(p, &h, UINT32_MAX, &why))
			return corrupt(it, it->off, why.msg, err);
		if (h.first_position > it->pos)
			return corrupt(it, it->off, "positions skip ahead", err);
		if (h.first_position + h.count <= it->pos) {
			it->off += h.length; /* before our position: skip unread */
			continue;
		}
		if ((rc = get(it, it->off, h.length, limit, &p, &got, err)))
			return rc;
		if (got < h.length)
			return corrupt(it, it->off, "the batch is cut short", err);
		if (!kp_batch_crc_ok(p, &h))
			return corrupt(it, it->off, "crc mismatch", err);
		kp_batch_iter_init(&it->bi, p, &h);
		it->batch_off = it->off;
		it->in_batch = 1;
	}
}

int
kp_log_read(kp_log *log, uint64_t from, uint64_t max, int (*cb)(void *ctx, const kp_event *ev),
	    void *ctx, kappa_err *err)
{
	kp_log_iter *it;
	int rc = kp_log_iter_open(log, from, &it, err);
	if (rc)
		return rc;
	kp_event ev;
	for (uint64_t n = 0; n < max; n++) {
		rc = kp_log_iter_next(it, &ev, err);
		if (rc <= 0)
			break;
		if ((rc = cb(ctx, &ev)) != 0)
			goto out; /* the callback's own value */
	}
	rc = rc < 0 ? rc : KAPPA_OK;
out:
	kp_log_iter_close(it);
	return rc;
}
