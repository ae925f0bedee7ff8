/*
 * writer.c -- the log's single writer thread (group commit, rolling, retention) and the
 * zero-fill thread that keeps pre-written space ahead of it.
 *
 * Group commit: callers queue requests; the writer takes everything queued, runs each
 * request's 'prepare' in position order, seals the batches, and writes them with one
 * pwritev and one fdatasync. While it syncs, the next group queues up. Callers are answered
 * only after the sync returned (in 'always' mode).
 *
 * Zero-fill ahead: overwriting blocks that were already written and synced needs no
 * metadata update, so fdatasync is a pure data flush. The zero-fill thread keeps up to
 * prealloc_bytes of synced zeros ahead of the write offset in the active segment; the
 * writer never writes into a range being zero-filled, and grows the file itself if it
 * outruns the zero-fill (correct, just slower).
 */
#include <errno.h>
#include <inttypes.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "log/log_int.h"

#define ZERO_CHUNK (64u << 10)
#define ZERO_ALIGN (1u << 20)

static const uint8_t zeros[ZERO_CHUNK];

/* ---- zero-fill ahead ----------------------------------------------------------------- */

static int
prealloc_needed(kp_log *log)
{
	kp_prealloc *pa = &log->pa;
	uint64_t half = log->o.prealloc_bytes / 2;
	return pa->seg && !pa->failed && pa->zeroed_end < pa->want + half &&
	       pa->zeroed_end < log->o.segment_bytes;
}

static void *
prealloc_main(void *arg)
{
	kp_log *log = arg;
	kp_prealloc *pa = &log->pa;
	const kp_io *io = log->io;
	pthread_mutex_lock(&pa->lock);
	for (;;) {
		while (!pa->stopping && !prealloc_needed(log))
			pthread_cond_wait(&pa->cond, &pa->lock);
		if (pa->stopping)
			break;
		uint64_t from = pa->zeroed_end;
		uint64_t to = (pa->want + log->o.prealloc_bytes + ZERO_ALIGN - 1) / ZERO_ALIGN *
			      ZERO_ALIGN;
		if (to > log->o.segment_bytes)
			to = log->o.segment_bytes;
		if (to <= from) {
			pa->failed = 1;
			continue;
		}
		kp_segment *seg = pa->seg;
		kp_seg_ref(seg);
		pa->busy = 1;
		pa->busy_from = from;
		pthread_mutex_unlock(&pa->lock);

		int r = 0;
		struct iovec v[16];
		for (int i = 0; i < 16; i++)
			v[i] = (struct iovec){(void *)zeros, ZERO_CHUNK};
		for (uint64_t off = from; off < to && r == 0;) {
			uint64_t n = to - off;
			int cnt = n >= 16 * ZERO_CHUNK ? 16
						       : (int)((n + ZERO_CHUNK - 1) / ZERO_CHUNK);
			uint64_t bytes = (uint64_t)cnt * ZERO_CHUNK;
			if (bytes > n) {
				v[cnt - 1].iov_len = ZERO_CHUNK - (size_t)(bytes - n);
				bytes = n;
			}
			r = kp_io_pwritev_full(io, seg->fd, v, cnt, (off_t)off);
			v[cnt - 1].iov_len = ZERO_CHUNK;
			off += bytes;
		}
		if (r == 0)
			r = io->fdatasync(io, seg->fd);

		pthread_mutex_lock(&pa->lock);
		pa->busy = 0;
		if (r == 0 && pa->seg == seg && to > pa->zeroed_end)
			pa->zeroed_end = to;
		else if (r != 0) {
			pa->failed = 1; /* not fatal: the writer grows the file itself */
			kp_log_notice(log, "event=prealloc_failed segment=%s error=%d", seg->path,
				      -r);
		}
		pthread_cond_broadcast(&pa->cond);
		pthread_mutex_unlock(&pa->lock);
		kp_seg_unref(seg, io);
		pthread_mutex_lock(&pa->lock);
	}
	pthread_mutex_unlock(&pa->lock);
	return NULL;
}

/* Before writing [off, off + len) in the active segment. */
static void
prealloc_before_write(kp_log *log, uint64_t off, uint64_t len)
{
	if (!log->o.prealloc_bytes)
		return;
	kp_prealloc *pa = &log->pa;
	pthread_mutex_lock(&pa->lock);
	while (pa->busy && off + len > pa->busy_from)
		pthread_cond_wait(&pa->cond, &pa->lock);
	if (off + len > pa->zeroed_end) {
		pa->zeroed_end = off + len;
		atomic_fetch_add(&log->st_prealloc_waits, 1);
	}
	pa->want = off + len;
	if (prealloc_needed(log))
		pthread_cond_signal(&pa->cond);
	pthread_mutex_unlock(&pa->lock);
}

/* Point the zero-fill at a new active segment (NULL: none), after it finished its work. */
static void
prealloc_switch(kp_log *log, kp_segment *seg, uint64_t zeroed_end)
{
	kp_prealloc *pa = &log->pa;
	pthread_mutex_lock(&pa->lock);
	while (pa->busy)
		pthread_cond_wait(&pa->cond, &pa->lock);
	pa->seg = seg;
	pa->zeroed_end = zeroed_end;
	pa->want = zeroed_end;
	pa->failed = 0;
	if (log->o.prealloc_bytes && prealloc_needed(log))
		pthread_cond_signal(&pa->cond);
	pthread_mutex_unlock(&pa->lock);
}

/* ---- answering callers ----------------------------------------------------------------
 * Waking a caller costs a futex call and, on a small machine, a context switch that
 * competes with the writer for a CPU. Small groups are answered inline (lowest latency for
 * a lone appender); larger ones are handed to the completer thread so the writer can issue
 * the next write and sync at once. Order is kept: once anything is queued to the completer,
 * everything goes through it until it has caught up. */

#define INLINE_ANSWERS 4

/* Call each request's done() in order (each carries its result in err.code). */
static void
answer_now(kp_log_req *list)
{
	while (list) {
		kp_log_req *r = list;
		list = r->next;
		r->next = NULL;
		r->done(r, r->err.code);
	}
}

static void *
completer_main(void *arg)
{
	kp_log *log = arg;
	kp_completer *c = &log->c;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->head && !c->stopping)
			pthread_cond_wait(&c->cond, &c->lock);
		if (!c->head)
			break;
		kp_log_req *list = c->head;
		c->head = c->tail = NULL;
		pthread_mutex_unlock(&c->lock);
		answer_now(list);
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Answer 'n' requests (linked by ->next, each with err.code set) in order. */
static void
answer(kp_log *log, kp_log_req *list, kp_log_req *last, size_t n)
{
	if (!list)
		return;
	kp_completer *c = &log->c;
	if (c->started) {
		pthread_mutex_lock(&c->lock);
		if (n > INLINE_ANSWERS || c->head) {
			if (c->tail)
				c->tail->next = list;
			else
				c->head = list;
			c->tail = last;
			pthread_cond_signal(&c->cond);
			pthread_mutex_unlock(&c->lock);
			return;
		}
		pthread_mutex_unlock(&c->lock);
	}
	answer_now(list);
}

/* ---- the writer ---------------------------------------------------------------------- */

static kp_segment *
active(kp_log *log)
{
	pthread_mutex_lock(&log->seg_lock); /* retention may move the array under us */
	kp_segment *s = log->segs[log->nsegs - 1];
	pthread_mutex_unlock(&log->seg_lock);
	return s;
}

static void
fail_req(kp_log *log, kp_log_req *r, int code, const kappa_err *why)
{
	(void)log;
	if (why)
		r->err = *why;
	r->err.code = code;
	r->done(r, code);
}

static void
take_skips(kp_log *log, kp_log_req **head, kp_log_req **tail, size_t *n)
{
	for (kp_log_req *r = log->g_skip_head; r; r = r->next)
		(*n)++;
	*head = log->g_skip_head;
	*tail = log->g_skip_tail;
	log->g_skip_head = log->g_skip_tail = NULL;
}

static void
fail_group(kp_log *log, int code, const kappa_err *why)
{
	if (log->g_prepared && log->o.group_abort && log->g_n)
		log->o.group_abort(log->o.hook_ctx, log->g_req[0]->first_position);
	else if (log->g_prepared && log->o.group_commit)
		log->o.group_commit(log->o.hook_ctx, log->next_pos);
	log->g_prepared = 0;
	for (size_t i = 0; i < log->g_n; i++)
		fail_req(log, log->g_req[i], code, why);
	kp_log_req *sh, *st;
	size_t sn = 0;
	take_skips(log, &sh, &st, &sn);
	while (sh) {
		kp_log_req *r = sh;
		sh = r->next;
		r->next = NULL;
		fail_req(log, r, code, why);
	}
	log->g_n = 0;
	log->g_bytes = 0;
}

static void
fatal(kp_log *log, int eno, const char *what)
{
	kappa_err e;
	KP_ERR_SYS(&e, KAPPA_EFATAL, eno, "%s failed", what);
	kp_log_fail(log, &e);
}

/* Write the index entries of the active segment that are not yet in its file. Entries are
 * only for synced batches (design note 4), so call this after a sync. */
static void
write_index(kp_log *log, kp_segment *s, const kp_idx_entry *seal)
{
	pthread_mutex_lock(&s->idx_lock);
	size_t from = s->idx_written, to = s->idx_n;
	size_t n = to - from + (seal ? 1 : 0);
	uint8_t stack[64 * KP_IDX_ENTRY];
	uint8_t *buf = n <= 64 ? stack : malloc(n * KP_IDX_ENTRY);
	if (!buf) {
		pthread_mutex_unlock(&s->idx_lock);
		return; /* the index is rebuildable; try again after the next sync */
	}
	for (size_t i = from; i < to; i++)
		kp_idx_encode_entry(buf + (i - from) * KP_IDX_ENTRY, &s->idx[i], KP_IDX_BATCH);
	pthread_mutex_unlock(&s->idx_lock);
	if (seal)
		kp_idx_encode_entry(buf + (to - from) * KP_IDX_ENTRY, seal, KP_IDX_SEAL);
	if (n) {
		struct iovec v = {buf, n * KP_IDX_ENTRY};
		int r = kp_io_pwritev_full(log->io, s->idx_fd, &v, 1,
					   (off_t)(KP_IDX_HEADER + from * KP_IDX_ENTRY));
		if (r < 0)
			kp_log_notice(log, "event=index_write_failed segment=%s error=%d", s->path,
				      -r);
		else
			s->idx_written = to;
	}
	if (buf != stack)
		free(buf);
}

static int
do_sync(kp_log *log, kp_segment *s)
{
	uint64_t t0 = kp_mono_ns();
	int r = log->io->fdatasync(log->io, s->fd);
	uint64_t t1 = kp_mono_ns();
	atomic_fetch_add(&log->st_syncs, 1);
	atomic_fetch_add(&log->st_sync_ns, t1 - t0);
	atomic_fetch_add(&log->st_sync_buckets[kp_log_bucket(kp_log_sync_bucket_ns, t1 - t0)], 1);
	log->last_sync_ns = t1;
	if (r < 0) {
		fatal(log, -r, "fdatasync of the active segment");
		return -1;
	}
	log->durable_pos = log->next_pos;
	log->unsynced = 0;
	return 0;
}

static int
sync_due(kp_log *log)
{
	if (log->o.fsync_mode == KP_FSYNC_ALWAYS)
		return 1;
	if (log->o.fsync_mode == KP_FSYNC_NEVER)
		return 0;
	return kp_mono_ns() - log->last_sync_ns >= (uint64_t)log->o.fsync_interval_ms * 1000000u;
}

/* Write, sync (per policy), publish and answer the group under construction. */
static void
flush_group(kp_log *log)
{
	if (log->g_n == 0) {
		/* Nothing to write: everything before is durable, so skipped requests (retries
		 * of earlier appends) can be answered now. */
		if (log->g_prepared && log->o.group_commit)
			log->o.group_commit(log->o.hook_ctx, log->next_pos);
		log->g_prepared = 0;
		kp_log_req *sh, *st;
		size_t sn = 0;
		take_skips(log, &sh, &st, &sn);
		answer(log, sh, st, sn);
		return;
	}
	kp_segment *s = active(log);
	uint64_t off = atomic_load(&s->end_off);
	uint64_t first = log->g_req[0]->first_position;
	prealloc_before_write(log, off, log->g_bytes);
	int r = kp_io_pwritev_full(log->io, s->fd, log->g_iov, (int)log->g_n, (off_t)off);
	if (r == -ENOSPC || r == -EDQUOT || r == -EFBIG) {
		/* Nothing of this group was acknowledged; cut what may have landed and go on. */
		int t = log->io->ftruncate(log->io, s->fd, (off_t)off);
		if (t < 0) {
			fatal(log, -t, "cutting back a write that ran out of space");
			fail_group(log, KAPPA_EFATAL, &log->fail_err);
		} else {
			kappa_err e;
			KP_ERR_SYS(&e, KAPPA_ENOSPC, -r, "cannot append to %s", s->path);
			log->next_pos = first;
			memcpy(log->chain, log->g_chain_start, 32);
			prealloc_switch(log, s, off);
			pthread_mutex_lock(&log->pa.lock);
			log->pa.failed = 1; /* no zero-filling on a full disk */
			pthread_mutex_unlock(&log->pa.lock);
			fail_group(log, KAPPA_ENOSPC, &e);
		}
		return;
	}
	if (r < 0) {
		fatal(log, -r, "write to the active segment");
		fail_group(log, KAPPA_EFATAL, &log->fail_err);
		return;
	}
	int synced = 0;
	if (sync_due(log)) {
		if (do_sync(log, s) < 0) {
			fail_group(log, KAPPA_EFATAL, &log->fail_err);
			return;
		}
		synced = 1;
	} else {
		log->unsynced = 1;
	}
	/* Index entries, one per index_interval_bytes of data. */
	uint64_t boff = off;
	uint64_t events = 0;
	for (size_t i = 0; i < log->g_n; i++) {
		kp_log_req *q = log->g_req[i];
		if (log->idx_bytes >= log->o.index_interval_bytes) {
			kp_idx_entry e = {q->first_position, log->last_time_ms, (uint32_t)boff};
			if (kp_seg_idx_push(s, &e) == KAPPA_OK)
				log->idx_bytes = 0;
		}
		log->idx_bytes += q->batch->buf.len;
		boff += q->batch->buf.len;
		events += q->batch->count;
	}
	atomic_store(&s->end_off, off + log->g_bytes);
	atomic_store(&s->end_pos, log->next_pos);
	atomic_fetch_add(&log->st_appends, log->g_n);
	atomic_fetch_add(&log->st_events, events);
	atomic_fetch_add(&log->st_bytes, log->g_bytes);
	atomic_fetch_add(&log->st_groups, 1);
	atomic_fetch_add(&log->st_group_buckets[kp_log_bucket(kp_log_group_bucket, log->g_n)], 1);
	if (synced)
		write_index(log, s, NULL); /* before answering: keeps the I/O order fixed */
	if (log->g_prepared && log->o.group_commit)
		log->o.group_commit(log->o.hook_ctx, log->next_pos);
	log->g_prepared = 0;
	kp_log_publish(log, log->next_pos, log->chain);
	/* Answer: the group's requests, then the skipped ones, in one ordered list. */
	for (size_t i = 0; i + 1 < log->g_n; i++)
		log->g_req[i]->next = log->g_req[i + 1];
	kp_log_req *head = log->g_req[0], *tail = log->g_req[log->g_n - 1];
	size_t n = log->g_n;
	for (size_t i = 0; i < log->g_n; i++)
		log->g_req[i]->err.code = KAPPA_OK;
	kp_log_req *sh, *st;
	take_skips(log, &sh, &st, &n);
	if (sh) {
		tail->next = sh;
		tail = st;
	}
	tail->next = NULL;
	log->g_n = 0;
	log->g_bytes = 0;
	answer(log, head, tail, n);
}

/* Seal the active segment and start a new one at next_pos. */
static int
roll(kp_log *log)
{
	kp_segment *old = active(log);
	const kp_io *io = log->io;
	kappa_err e;
	if (log->unsynced && do_sync(log, old) < 0)
		return -1;
	uint64_t end_off = atomic_load(&old->end_off);
	kp_idx_entry seal = {log->next_pos, log->last_time_ms, (uint32_t)end_off};
	write_index(log, old, &seal);
	io->fdatasync(io, old->idx_fd); /* best effort: a lost seal only costs a rebuild */
	prealloc_switch(log, NULL, 0);
	/* Drop the tail beyond the last batch (zero-fill, or what a write that ran out of space
	 * left before it was cut back) and make that durable: recovery only scans the active
	 * segment, so bytes left after a sealed segment's last batch would stay there. */
	int t = io->ftruncate(io, old->fd, (off_t)end_off);
	if (t == 0)
		t = io->fdatasync(io, old->fd);
	if (t < 0) {
		/* The segment stays the active one: reopening cuts its tail (recovery). */
		fatal(log, -t, "trimming a segment before rolling it");
		return -1;
	}
	old->file_bytes = end_off;
	old->last_time_ms = log->last_time_ms;

	kp_segment *s;
	if (kp_log_create_segment(log, log->next_pos, &s, &e)) {
		kp_log_fail(log, &e);
		return -1;
	}
	pthread_mutex_lock(&log->seg_lock);
	if (log->nsegs == log->segs_cap) {
		size_t nc = log->segs_cap * 2;
		kp_segment **ns = realloc(log->segs, nc * sizeof(*ns));
		if (!ns) {
			pthread_mutex_unlock(&log->seg_lock);
			io->unlink(io, s->path);
			kp_seg_unref(s, io);
			KP_ERR(&e, KAPPA_ENOMEM, "out of memory rolling a segment");
			kp_log_fail(log, &e);
			return -1;
		}
		log->segs = ns;
		log->segs_cap = nc;
	}
	log->segs[log->nsegs++] = s;
	atomic_store(&old->sealed, 1);
	pthread_mutex_unlock(&log->seg_lock);
	io->close(io, old->idx_fd);
	old->idx_fd = -1;
	log->idx_bytes = log->o.index_interval_bytes; /* index the first batch */
	atomic_fetch_add(&log->st_rolls, 1);
	prealloc_switch(log, s, 0);
	kp_log_retention(log, NULL);
	return 0;
}

static int
group_push(kp_log *log, kp_log_req *r)
{
	if (log->g_n == log->g_cap) {
		size_t nc = log->g_cap ? log->g_cap * 2 : 64;
		struct iovec *ni = realloc(log->g_iov, nc * sizeof(*ni));
		if (ni)
			log->g_iov = ni;
		kp_log_req **nr = ni ? realloc(log->g_req, nc * sizeof(*nr)) : NULL;
		if (!nr)
			return -1;
		log->g_req = nr;
		log->g_cap = nc;
	}
	log->g_iov[log->g_n] = (struct iovec){r->batch->buf.data, r->batch->buf.len};
	log->g_req[log->g_n++] = r;
	log->g_bytes += r->batch->buf.len;
	return 0;
}

static void
process(kp_log *log, kp_log_req *list)
{
	while (list) {
		kp_log_req *r = list;
		list = r->next;
		r->next = NULL;
		if (atomic_load(&log->failed)) {
			fail_req(log, r, KAPPA_EFATAL, &log->fail_err);
			continue;
		}
		uint64_t len = r->batch->buf.len;
		kp_segment *s = active(log);
		uint64_t end = atomic_load(&s->end_off) + log->g_bytes;
		if (log->g_n > 0 && (log->g_bytes + len > log->o.max_group_bytes ||
				     end + len > log->o.segment_bytes))
			flush_group(log);
		if (atomic_load(&log->failed)) {
			fail_req(log, r, KAPPA_EFATAL, &log->fail_err);
			continue;
		}
		end = atomic_load(&active(log)->end_off);
		if (end > 0 && end + len > log->o.segment_bytes && roll(log) < 0) {
			fail_req(log, r, KAPPA_EFATAL, &log->fail_err);
			continue;
		}
		uint64_t pos = log->next_pos;
		if (r->prepare) {
			log->g_prepared = 1;
			int rc = r->prepare(r, pos, &r->err);
			if (rc == KP_PREPARE_SKIP) {
				r->err.code = KAPPA_OK;
				if (log->g_skip_tail)
					log->g_skip_tail->next = r;
				else
					log->g_skip_head = r;
				log->g_skip_tail = r;
				continue;
			}
			if (rc) {
				r->err.code = rc;
				r->done(r, rc);
				continue;
			}
		}
		int64_t now = kp_now_ms();
		if (now < log->last_time_ms)
			now = log->last_time_ms; /* a clock jump back never reorders time */
		log->last_time_ms = now;
		if (log->g_n == 0)
			memcpy(log->g_chain_start, log->chain, 32);
		uint8_t chain[32];
		kp_batch_seal(r->batch, pos, now, log->durable_pos, 0, log->chain, chain);
		r->first_position = pos;
		if (group_push(log, r) < 0) {
			kappa_err e;
			KP_ERR(&e, KAPPA_ENOMEM, "out of memory queuing a batch");
			fail_req(log, r, KAPPA_ENOMEM, &e);
			continue;
		}
		memcpy(log->chain, chain, 32);
		log->next_pos += r->batch->count;
	}
	flush_group(log);
}

/* Interval syncs and retention, when due. */
static void
periodic(kp_log *log)
{
	if (atomic_load(&log->failed))
		return;
	if (log->unsynced && log->o.fsync_mode == KP_FSYNC_INTERVAL && sync_due(log)) {
		kp_segment *s = active(log);
		if (do_sync(log, s) == 0)
			write_index(log, s, NULL);
	}
	if ((log->o.retention_ms || log->o.retention_bytes) &&
	    kp_mono_ns() - log->last_retention_ns > 1000000000u) {
		log->last_retention_ns = kp_mono_ns();
		kp_log_retention(log, NULL);
	}
}

static void *
writer_main(void *arg)
{
	kp_log *log = arg;
	kp_writer *w = &log->w;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		int idle_ms = -1, idled = 0;
		while (!w->head && !w->stopping) {
			if (log->o.idle && (!idled || w->kicked)) {
				w->kicked = 0;
				idled = 1;
				pthread_mutex_unlock(&w->lock);
				idle_ms = log->o.idle(log->o.hook_ctx);
				pthread_mutex_lock(&w->lock);
				continue;
			}
			int64_t wait_ms = idle_ms;
			if (log->unsynced && log->o.fsync_mode == KP_FSYNC_INTERVAL &&
			    (wait_ms < 0 || wait_ms > (int64_t)log->o.fsync_interval_ms))
				wait_ms = log->o.fsync_interval_ms;
			if (log->o.retention_ms || log->o.retention_bytes)
				wait_ms = wait_ms < 0 || wait_ms > 1000 ? 1000 : wait_ms;
			w->waiting = 1;
			if (wait_ms < 0) {
				pthread_cond_wait(&w->cond, &w->lock);
			} else {
				struct timespec dl = kp_deadline_ms(wait_ms);
				if (pthread_cond_timedwait(&w->cond, &w->lock, &dl) == ETIMEDOUT) {
					w->waiting = 0;
					pthread_mutex_unlock(&w->lock);
					periodic(log);
					pthread_mutex_lock(&w->lock);
					if (idle_ms >= 0)
						w->kicked =
							1; /* its timer ran out: call it again */
				}
			}
			w->waiting = 0;
		}
		if (!w->head)
			break; /* stopping, queue drained */
		kp_log_req *list = w->head;
		w->head = w->tail = NULL;
		w->queued_bytes = 0;
		pthread_mutex_unlock(&w->lock);
		process(log, list);
		periodic(log);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	/* Closing: make everything durable and indexed. */
	if (!atomic_load(&log->failed)) {
		kp_segment *s = active(log);
		if (log->unsynced)
			do_sync(log, s);
		if (!atomic_load(&log->failed))
			write_index(log, s, NULL);
	}
	if (log->o.idle)
		log->o.idle(log->o.hook_ctx);
	return NULL;
}

int
kp_writer_start(kp_log *log, kappa_err *err)
{
	log->last_sync_ns = kp_mono_ns();
	log->last_retention_ns = 0;
	if (log->idx_bytes == 0 && atomic_load(&active(log)->end_off) == 0)
		log->idx_bytes = log->o.index_interval_bytes;
	if (pthread_create(&log->c.thread, NULL, completer_main, log))
		return KP_ERR(err, KAPPA_ENOMEM, "cannot start the log completion thread");
	log->c.started = 1;
	if (pthread_create(&log->w.thread, NULL, writer_main, log)) {
		kp_writer_stop(log);
		return KP_ERR(err, KAPPA_ENOMEM, "cannot start the log writer thread");
	}
	log->w.started = 1;
	if (log->o.prealloc_bytes) {
		if (pthread_create(&log->pa.thread, NULL, prealloc_main, log)) {
			kp_writer_stop(log);
			return KP_ERR(err, KAPPA_ENOMEM, "cannot start the zero-fill thread");
		}
		log->pa.started = 1;
		prealloc_switch(log, active(log), log->pa.zeroed_end);
	}
	return KAPPA_OK;
}

void
kp_writer_stop(kp_log *log)
{
	if (log->w.started) {
		pthread_mutex_lock(&log->w.lock);
		log->w.stopping = 1;
		pthread_cond_signal(&log->w.cond);
		pthread_mutex_unlock(&log->w.lock);
		pthread_join(log->w.thread, NULL);
		log->w.started = 0;
	}
	if (log->c.started) { /* after the writer: it may still hand over answers */
		pthread_mutex_lock(&log->c.lock);
		log->c.stopping = 1;
		pthread_cond_signal(&log->c.cond);
		pthread_mutex_unlock(&log->c.lock);
		pthread_join(log->c.thread, NULL);
		log->c.started = 0;
	}
	if (log->pa.started) {
		pthread_mutex_lock(&log->pa.lock);
		log->pa.stopping = 1;
		pthread_cond_signal(&log->pa.cond);
		pthread_mutex_unlock(&log->pa.lock);
		pthread_join(log->pa.thread, NULL);
		log->pa.started = 0;
	}
	free(log->g_iov);
	free(log->g_req);
	log->g_iov = NULL;
	log->g_req = NULL;
	log->g_cap = 0;
}

/* ---- submitting ---------------------------------------------------------------------- */

void
kp_log_kick(kp_log *log)
{
	kp_writer *w = &log->w;
	pthread_mutex_lock(&w->lock);
	w->kicked = 1;
	if (w->waiting)
		pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void
kp_log_submit(kp_log *log, kp_log_req *req)
{
	kp_err_clear(&req->err);
	req->next = NULL;
	if (!req->batch || req->batch->count == 0) {
		KP_ERR(&req->err, KAPPA_EINVAL, "an append needs at least one event");
		req->done(req, KAPPA_EINVAL);
		return;
	}
	if (atomic_load(&log->failed)) {
		fail_req(log, req, KAPPA_EFATAL, &log->fail_err);
		return;
	}
	kp_writer *w = &log->w;
	pthread_mutex_lock(&w->lock);
	if (w->stopping || !w->started) {
		pthread_mutex_unlock(&w->lock);
		KP_ERR(&req->err, KAPPA_ECLOSED, "the log is closing");
		req->done(req, KAPPA_ECLOSED);
		return;
	}
	if (w->queued_bytes + req->batch->buf.len > 4 * log->o.max_group_bytes) {
		pthread_mutex_unlock(&w->lock);
		KP_ERR(&req->err, KAPPA_EBUSY, "too many appends are queued; retry later");
		req->done(req, KAPPA_EBUSY);
		return;
	}
	if (w->tail)
		w->tail->next = req;
	else
		w->head = req;
	w->tail = req;
	w->queued_bytes += req->batch->buf.len;
	if (w->waiting)
		pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

typedef struct waiter {
	kp_log_req req;
	sem_t sem;
	int rc;
} waiter;

static void
waiter_done(kp_log_req *r, int rc)
{
	waiter *wt = (waiter *)r;
	wt->rc = rc;
	sem_post(&wt->sem);
}

int
kp_log_append_prepared(kp_log *log, kp_batch *batch,
		       int (*prepare)(kp_log_req *, uint64_t, kappa_err *), void *ctx,
		       uint64_t *first_position, kappa_err *err)
{
	waiter wt;
	memset(&wt, 0, sizeof(wt));
	wt.req.batch = batch;
	wt.req.prepare = prepare;
	wt.req.done = waiter_done;
	wt.req.ctx = ctx;
	sem_init(&wt.sem, 0, 0);
	kp_log_submit(log, &wt.req);
	while (sem_wait(&wt.sem) < 0 && errno == EINTR)
		;
	sem_destroy(&wt.sem);
	if (wt.rc == KAPPA_OK) {
		if (first_position)
			*first_position = wt.req.first_position;
		return KAPPA_OK;
	}
	kp_err_copy(err, &wt.req.err);
	if (err)
		err->code = wt.rc;
	return wt.rc;
}

int
kp_log_append(kp_log *log, kp_batch *batch, uint64_t *first_position, kappa_err *err)
{
	return kp_log_append_prepared(log, batch, NULL, NULL, first_position, err);
}

int
kp_log_enforce_retention(kp_log *log, kappa_err *err)
{
	return kp_log_retention(log, err);
}
