/*
 * log.c -- opening (lock, segment discovery, recovery), closing, the committed head,
 * failure latching, retention and statistics of a kappa log.
 *
 * Recovery reads only the last segment, from its last index entry (a known-synced batch)
 * to the end: opening a log of any size reads at most one segment's unindexed tail.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "base/clock.h"
#include "base/crc32c.h"
#include "log/log_int.h"

void
kp_log_options_init(kp_log_options *o)
{
	memset(o, 0, sizeof(*o));
	o->fsync_mode = KP_FSYNC_ALWAYS;
	o->fsync_interval_ms = 100;
	o->segment_bytes = 256u << 20;
	o->index_interval_bytes = 4096;
	o->prealloc_bytes = 16u << 20;
	o->limits.max_event_bytes = 1u << 20;
	o->limits.max_batch_bytes = 16u << 20;
	o->limits.max_events = 100000;
	o->max_group_bytes = 64u << 20;
}

void
kp_log_publish(kp_log *log, uint64_t head, const uint8_t chain[32])
{
	pthread_mutex_lock(&log->head_lock);
	memcpy(log->pub_chain, chain, 32);
	atomic_store_explicit(&log->head, head, memory_order_release);
	pthread_cond_broadcast(&log->head_cond);
	pthread_mutex_unlock(&log->head_lock);
}

void
kp_log_chain_head(kp_log *log, uint64_t *head, uint8_t chain[32])
{
	pthread_mutex_lock(&log->head_lock);
	*head = atomic_load(&log->head);
	memcpy(chain, log->pub_chain, 32);
	pthread_mutex_unlock(&log->head_lock);
}

void
kp_log_fail(kp_log *log, const kappa_err *why)
{
	if (atomic_load(&log->failed))
		return;
	log->fail_err = *why;
	log->fail_err.code = KAPPA_EFATAL;
	kp_log_notice(log, "event=log_failed error=\"%s\"", why->msg);
	pthread_mutex_lock(&log->head_lock);
	atomic_store(&log->failed, 1);
	pthread_cond_broadcast(&log->head_cond);
	pthread_mutex_unlock(&log->head_lock);
}

static int
check_options(const kp_log_options *o, kappa_err *err)
{
	if (o->fsync_mode > KP_FSYNC_NEVER)
		return KP_ERR(err, KAPPA_EINVAL, "unknown fsync mode %d", (int)o->fsync_mode);
	if (o->fsync_mode == KP_FSYNC_INTERVAL &&
	    (o->fsync_interval_ms < 1 || o->fsync_interval_ms > 60000))
		return KP_ERR(err, KAPPA_EINVAL, "fsync interval must be 1..60000 ms");
	if (o->segment_bytes < 4096 || o->segment_bytes > (1u << 30))
		return KP_ERR(err, KAPPA_EINVAL, "segment size must be 4 KiB..1 GiB");
	if (o->index_interval_bytes < 64 || o->index_interval_bytes > (64u << 20))
		return KP_ERR(err, KAPPA_EINVAL, "index interval must be 64 B..64 MiB");
	if (o->limits.max_event_bytes < KP_EVENT_HEADER + 2 ||
	    o->limits.max_event_bytes > o->limits.max_batch_bytes)
		return KP_ERR(err, KAPPA_EINVAL, "event size limit out of range");
	if (o->limits.max_batch_bytes < KP_BATCH_HEADER + KP_EVENT_HEADER + 2 ||
	    o->limits.max_batch_bytes > (256u << 20))
		return KP_ERR(err, KAPPA_EINVAL, "batch size limit must be at most 256 MiB");
	if (o->limits.max_events < 1)
		return KP_ERR(err, KAPPA_EINVAL, "events per batch limit must be at least 1");
	if (o->max_group_bytes < o->limits.max_batch_bytes)
		return KP_ERR(err, KAPPA_EINVAL, "group size must be at least the batch size");
	if (o->retention_ms < 0)
		return KP_ERR(err, KAPPA_EINVAL, "retention time must not be negative");
	return KAPPA_OK;
}

static int
take_lock(kp_log *log, kappa_err *err)
{
	size_t n = strlen(log->dir) + 8;
	char *path = malloc(n);
	if (!path)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	snprintf(path, n, "%s/LOCK", log->dir);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		free(path);
		return KP_ERR_SYS(err, kp_err_from_errno(e), e, "cannot open lock file in %s",
				  log->dir);
	}
	free(path);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		char pid[32] = "";
		ssize_t r = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[r > 0 ? r : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK)
			return KP_ERR(err, KAPPA_ELOCKED,
				      "log %s is in use by another handle or process (pid %s)",
				      log->dir, pid[0] ? pid : "unknown");
		return KP_ERR_SYS(err, KAPPA_EIO, e, "cannot lock %s", log->dir);
	}
	char pid[32];
	int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)len, 0) != len) {
		/* the pid is only informative */
	}
	log->lock_fd = fd;
	return KAPPA_OK;
}

static int
segs_push(kp_log *log, kp_segment *s)
{
	if (log->nsegs == log->segs_cap) {
		size_t nc = log->segs_cap ? log->segs_cap * 2 : 16;
		kp_segment **ns = realloc(log->segs, nc * sizeof(*ns));
		if (!ns)
			return KAPPA_ENOMEM;
		log->segs = ns;
		log->segs_cap = nc;
	}
	log->segs[log->nsegs++] = s;
	return KAPPA_OK;
}

int
kp_log_create_segment(kp_log *log, uint64_t first_pos, kp_segment **out, kappa_err *err)
{
	const kp_io *io = log->io;
	*out = NULL;
	kp_segment *s = kp_seg_new(log->dir, first_pos);
	if (!s)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	int rc;
	s->fd = io->open(io, s->path, O_RDWR | O_CREAT | O_EXCL, 0644);
	if (s->fd < 0) {
		rc = KP_ERR_SYS(err, kp_err_from_errno(-s->fd), -s->fd, "cannot create %s",
				s->path);
		goto fail;
	}
	s->idx_fd = io->open(io, s->idx_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (s->idx_fd < 0) {
		rc = KP_ERR_SYS(err, kp_err_from_errno(-s->idx_fd), -s->idx_fd, "cannot create %s",
				s->idx_path);
		goto fail;
	}
	uint8_t hdr[KP_IDX_HEADER];
	kp_idx_encode_header(hdr, first_pos);
	struct iovec v = {hdr, sizeof(hdr)};
	int r = kp_io_pwritev_full(io, s->idx_fd, &v, 1, 0);
	if (r == 0)
		r = kp_io_fsync_dir(io, log->dir);
	if (r < 0) {
		rc = KP_ERR_SYS(err, kp_err_from_errno(-r), -r, "cannot create segment %s",
				s->path);
		goto fail;
	}
	s->idx_loaded = 1;
	*out = s;
	return KAPPA_OK;
fail:
	if (s->fd >= 0)
		io->unlink(io, s->path);
	kp_seg_unref(s, io);
	return rc;
}

/*
 * Recover the last segment: start from its last index entry that matches the segment,
 * scan to the end, cut a torn tail, fail on corruption, make everything kept durable, and
 * leave it open as the active segment.
 */
static int
recover_active(kp_log *log, kp_segment *s, kappa_err *err)
{
	const kp_io *io = log->io;
	int rc;
	s->fd = io->open(io, s->path, O_RDWR, 0);
	if (s->fd < 0)
		return KP_ERR_SYS(err, kp_err_from_errno(-s->fd), -s->fd, "cannot open %s",
				  s->path);
	kp_idx_entry seal;
	int has_seal;
	if ((rc = kp_seg_idx_read(io, s, &seal, &has_seal, err)))
		return rc;
	size_t loaded = s->idx_n;

	/* Walk back over entries that do not match the segment (a stale index). */
	uint64_t start_off = 0, start_pos = s->first_pos;
	while (s->idx_n > 0) {
		kp_idx_entry *e = &s->idx[s->idx_n - 1];
		uint8_t hb[KP_BATCH_HEADER];
		kp_batch_hdr h;
		ssize_t r = kp_io_pread_full(io, s->fd, hb, sizeof(hb), e->off);
		if (r < 0)
			return KP_ERR_SYS(err, KAPPA_EIO, (int)-r, "cannot read %s", s->path);
		if (r == (ssize_t)sizeof(hb) &&
		    kp_batch_hdr_decode(hb, &h, UINT32_MAX, NULL) == 0 &&
		    h.first_position == e->pos) {
			start_off = e->off;
			start_pos = e->pos;
			break;
		}
		s->idx_n--;
	}
	/* The last entry's batch is rescanned below and re-indexed, so drop it. */
	if (s->idx_n > 0)
		s->idx_n--;
	int rewrite = s->idx_n != loaded || has_seal;
	if (loaded && s->idx_n + 1 < loaded)
		kp_log_notice(log, "event=index_stale segment=%s kept=%zu of=%zu", s->path,
			      s->idx_n, loaded);

	/* Scan from the recovery point. */
	kp_scan r;
	if ((rc = kp_seg_scan(io, s->fd, start_off, start_pos, UINT64_MAX, 0, NULL, NULL, &r, err)))
		return rc;
	if (r.tail == KP_SCAN_CORRUPT)
		return KP_ERR(err, KAPPA_ECORRUPT,
			      "segment %s is corrupt at offset %" PRIu64 " (position %" PRIu64
			      "): %s",
			      s->path, r.end_off, r.end_pos, r.why);
	if (r.tail == KP_SCAN_TORN) {
		kp_log_notice(log,
			      "event=torn_tail_cut segment=%s offset=%" PRIu64 " bytes=%" PRIu64
			      " position=%" PRIu64 " reason=\"%s\" later_valid_batches=%" PRIu64,
			      s->path, r.end_off, r.file_size - r.end_off, r.end_pos, r.why,
			      r.later_valid);
		int t = io->ftruncate(io, s->fd, (off_t)r.end_off);
		if (t < 0)
			return KP_ERR_SYS(err, KAPPA_EIO, -t, "cannot cut the tail of %s", s->path);
		r.file_size = r.end_off;
	}
	/* Whatever we keep may not have been synced before the crash: sync it now, so the
	 * index entries written below are for durable data (design note 4). */
	int t = io->fdatasync(io, s->fd);
	if (t < 0)
		return KP_ERR_SYS(err, KAPPA_EIO, -t, "cannot sync %s", s->path);

	/* Re-index the scanned part. */
	if (r.batches > 0) {
		uint64_t off = start_off, pos = start_pos, since = log->o.index_interval_bytes;
		while (pos < r.end_pos) {
			uint8_t hb[KP_BATCH_HEADER];
			kp_batch_hdr h;
			ssize_t n = kp_io_pread_full(io, s->fd, hb, sizeof(hb), (off_t)off);
			if (n != (ssize_t)sizeof(hb) ||
			    kp_batch_hdr_decode(hb, &h, UINT32_MAX, NULL) != 0)
				return KP_ERR(err, KAPPA_EIO, "segment %s changed during recovery",
					      s->path);
			if (since >= log->o.index_interval_bytes) {
				kp_idx_entry e = {h.first_position, h.timestamp_ms, (uint32_t)off};
				if (kp_seg_idx_push(s, &e))
					return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
				since = 0;
				rewrite = 1;
			}
			since += h.length;
			off += h.length;
			pos += h.count;
		}
		log->idx_bytes = since;
		log->last_time_ms = r.last_time_ms;
	} else if (s->idx_n > 0) {
		log->last_time_ms = s->idx[s->idx_n - 1].time_ms;
	}
	if (rewrite && (rc = kp_seg_idx_rewrite(io, log->dir, s, NULL, err)))
		return rc;
	s->idx_fd = io->open(io, s->idx_path, O_RDWR | O_CREAT, 0644);
	if (s->idx_fd < 0)
		return KP_ERR_SYS(err, KAPPA_EIO, -s->idx_fd, "cannot open %s", s->idx_path);
	if (!rewrite && loaded == 0) {
		/* no index file yet (or an unreadable one): write a header */
		if ((rc = kp_seg_idx_rewrite(io, log->dir, s, NULL, err)))
			return rc;
	}
	s->idx_written = s->idx_n;
	s->idx_loaded = 1;
	atomic_store(&s->end_off, r.end_off);
	atomic_store(&s->end_pos, r.end_pos);
	log->pa.zeroed_end = r.file_size; /* a clean tail is zeros we wrote and synced */
	return KAPPA_OK;
}

/* ---- the audit chain's genesis and tail -------------------------------------------- */

int
kp_log_read_genesis(const kp_io *io, const char *dir, uint8_t out[32], kappa_err *err)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/" KP_GENESIS_FILE, dir);
	int fd = io->open(io, path, O_RDONLY, 0);
	if (fd < 0)
		return fd == -ENOENT
			       ? KP_ERR(err, KAPPA_ECORRUPT,
					"%s is missing: the log's audit chain has no start", path)
			       : KP_ERR_SYS(err, KAPPA_EIO, -fd, "cannot open %s", path);
	uint8_t b[KP_GENESIS_BYTES];
	ssize_t n = kp_io_pread_full(io, fd, b, sizeof(b), 0);
	io->close(io, fd);
	if (n < 0)
		return KP_ERR_SYS(err, KAPPA_EIO, (int)-n, "cannot read %s", path);
	if (n != (ssize_t)sizeof(b) || kp_get_u32(b) != KP_GENESIS_MAGIC ||
	    kp_get_u32(b + 36) != kp_crc32c(0, b, 36))
		return KP_ERR(err, KAPPA_ECORRUPT, "%s is damaged", path);
	memcpy(out, b + 4, 32);
	return KAPPA_OK;
}

/* A new log's genesis: 32 random bytes, written durably before its first segment. */
static int
create_genesis(kp_log *log, kappa_err *err)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof(path), "%s/" KP_GENESIS_FILE, log->dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	uint8_t b[KP_GENESIS_BYTES];
	kp_put_u32(b, KP_GENESIS_MAGIC);
	randombytes_buf(b + 4, 32);
	kp_put_u32(b + 36, kp_crc32c(0, b, 36));
	const kp_io *io = log->io;
	int fd = io->open(io, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return KP_ERR_SYS(err, KAPPA_EIO, -fd, "cannot create %s", tmp);
	struct iovec v = {b, sizeof(b)};
	int r = kp_io_pwritev_full(io, fd, &v, 1, 0);
	if (r == 0)
		r = io->fdatasync(io, fd);
	io->close(io, fd);
	if (r == 0)
		r = io->rename(io, tmp, path);
	if (r == 0)
		r = kp_io_fsync_dir(io, log->dir);
	if (r < 0)
		return KP_ERR_SYS(err, kp_err_from_errno(-r), -r, "cannot write %s", path);
	memcpy(log->genesis, b + 4, 32);
	return KAPPA_OK;
}

static int
last_header_cb(void *ctx, const kp_batch_hdr *h, uint64_t off)
{
	(void)off;
	memcpy(ctx, h->chain, 32);
	return 0;
}

/* The chain value the next batch follows: the last batch's, or the genesis value. */
static int
tail_chain(kp_log *log, uint8_t out[32], kappa_err *err)
{
	memcpy(out, log->genesis, 32);
	for (size_t i = log->nsegs; i-- > 0;) {
		kp_segment *s = log->segs[i];
		if (atomic_load(&s->end_pos) == s->first_pos)
			continue;
		int rc = kp_seg_idx_load(log, s, err);
		if (rc)
			return rc;
		uint64_t off = 0, pos = s->first_pos;
		if (s->idx_n) {
			off = s->idx[s->idx_n - 1].off;
			pos = s->idx[s->idx_n - 1].pos;
		}
		kp_scan r;
		if ((rc = kp_seg_scan(log->io, s->fd, off, pos, UINT64_MAX, 0, last_header_cb, out,
				      &r, err)))
			return rc;
		if (r.batches == 0)
			return KP_ERR(err, KAPPA_ECORRUPT,
				      "segment %s: no batch where its index points", s->path);
		return KAPPA_OK;
	}
	return KAPPA_OK;
}

int
kp_log_open(const char *dir, const kp_log_options *opts, kp_log **out, kappa_err *err)
{
	*out = NULL;
	kp_log_options o;
	if (opts)
		o = *opts;
	else
		kp_log_options_init(&o);
	int rc = check_options(&o, err);
	if (rc)
		return rc;
	if (!dir || !*dir)
		return KP_ERR(err, KAPPA_EINVAL, "no log directory given");

	kp_log *log = calloc(1, sizeof(*log));
	if (!log)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	log->o = o;
	log->io = o.io ? o.io : kp_io_posix();
	log->lock_fd = -1;
	log->dir = strdup(dir);
	pthread_mutex_init(&log->seg_lock, NULL);
	pthread_mutex_init(&log->head_lock, NULL);
	kp_cond_init_monotonic(&log->head_cond);
	pthread_mutex_init(&log->w.lock, NULL);
	kp_cond_init_monotonic(&log->w.cond);
	pthread_mutex_init(&log->pa.lock, NULL);
	kp_cond_init_monotonic(&log->pa.cond);
	pthread_mutex_init(&log->c.lock, NULL);
	kp_cond_init_monotonic(&log->c.cond);
	log->last_time_ms = 0;
	if (!log->dir) {
		rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		goto fail;
	}

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		rc = KP_ERR_SYS(err, kp_err_from_errno(errno), errno, "cannot create %s", dir);
		goto fail;
	}
	if ((rc = take_lock(log, err)))
		goto fail;

	uint64_t *firsts;
	size_t n;
	if ((rc = kp_seg_list(dir, &firsts, &n, err)))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		kp_segment *s = kp_seg_new(dir, firsts[i]);
		if (!s || segs_push(log, s)) {
			if (s)
				kp_seg_unref(s, log->io);
			free(firsts);
			rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
			goto fail;
		}
	}
	free(firsts);

	/* Sealed segments: open read-only; their end is the next one's start. */
	for (size_t i = 0; i + 1 < log->nsegs; i++) {
		kp_segment *s = log->segs[i];
		s->fd = log->io->open(log->io, s->path, O_RDONLY, 0);
		if (s->fd < 0) {
			rc = KP_ERR_SYS(err, KAPPA_EIO, -s->fd, "cannot open %s", s->path);
			goto fail;
		}
		atomic_store(&s->end_pos, log->segs[i + 1]->first_pos);
		atomic_store(&s->sealed, 1);
		log->io->fstat_size(log->io, s->fd, &s->file_bytes);
	}

	if (log->nsegs == 0) {
		kp_segment *s;
		if ((rc = create_genesis(log, err)) ||
		    (rc = kp_log_create_segment(log, 0, &s, err)))
			goto fail;
		if (segs_push(log, s)) {
			kp_seg_unref(s, log->io);
			rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
			goto fail;
		}
	} else if ((rc = kp_log_read_genesis(log->io, dir, log->genesis, err)) ||
		   (rc = recover_active(log, log->segs[log->nsegs - 1], err))) {
		goto fail;
	}
	if ((rc = tail_chain(log, log->chain, err)))
		goto fail;
	memcpy(log->pub_chain, log->chain, 32);

	kp_segment *act = log->segs[log->nsegs - 1];
	uint64_t end = atomic_load(&act->end_pos);
	atomic_store(&log->first_pos, log->segs[0]->first_pos);
	atomic_store(&log->head, end);
	log->next_pos = end;
	log->durable_pos = end;
	log->pa.seg = act;
	if ((rc = kp_writer_start(log, err)))
		goto fail;
	*out = log;
	return KAPPA_OK;
fail:
	kp_log_close(log);
	return rc;
}

void
kp_log_close(kp_log *log)
{
	if (!log)
		return;
	atomic_store(&log->closing, 1);
	kp_writer_stop(log);
	pthread_mutex_lock(&log->head_lock);
	pthread_cond_broadcast(&log->head_cond);
	pthread_mutex_unlock(&log->head_lock);
	for (size_t i = 0; i < log->nsegs; i++)
		kp_seg_unref(log->segs[i], log->io);
	free(log->segs);
	if (log->lock_fd >= 0)
		close(log->lock_fd); /* releases the flock */
	pthread_mutex_destroy(&log->seg_lock);
	pthread_mutex_destroy(&log->head_lock);
	pthread_cond_destroy(&log->head_cond);
	pthread_mutex_destroy(&log->w.lock);
	pthread_cond_destroy(&log->w.cond);
	pthread_mutex_destroy(&log->pa.lock);
	pthread_cond_destroy(&log->pa.cond);
	pthread_mutex_destroy(&log->c.lock);
	pthread_cond_destroy(&log->c.cond);
	free(log->dir);
	free(log);
}

uint64_t
kp_log_head(kp_log *log)
{
	return atomic_load_explicit(&log->head, memory_order_acquire);
}

uint64_t
kp_log_first(kp_log *log)
{
	return atomic_load(&log->first_pos);
}

int
kp_log_wait(kp_log *log, uint64_t position, int64_t timeout_ms)
{
	struct timespec dl = kp_deadline_ms(timeout_ms < 0 ? 0 : timeout_ms);
	int rc = KAPPA_OK;
	pthread_mutex_lock(&log->head_lock);
	while (atomic_load(&log->head) <= position) {
		if (atomic_load(&log->failed)) {
			rc = KAPPA_EFATAL;
			break;
		}
		if (atomic_load(&log->closing)) {
			rc = KAPPA_ECLOSED;
			break;
		}
		if (timeout_ms < 0) {
			pthread_cond_wait(&log->head_cond, &log->head_lock);
		} else if (pthread_cond_timedwait(&log->head_cond, &log->head_lock, &dl) ==
			   ETIMEDOUT) {
			rc = atomic_load(&log->head) > position ? KAPPA_OK : KAPPA_ETIMEOUT;
			break;
		}
	}
	pthread_mutex_unlock(&log->head_lock);
	return rc;
}

const uint64_t kp_log_sync_bucket_ns[KP_LOG_BUCKETS - 1] = {
	100000,	  250000,   500000,   1000000,	 2500000,   5000000,
	10000000, 25000000, 50000000, 100000000, 1000000000};
const uint64_t kp_log_group_bucket[KP_LOG_BUCKETS - 1] = {1,  2,   4,	8,   16,  32,
							  64, 128, 256, 512, 1024};

size_t
kp_log_bucket(const uint64_t *bounds, uint64_t v)
{
	size_t i = 0;
	while (i < KP_LOG_BUCKETS - 1 && v > bounds[i])
		i++;
	return i;
}

void
kp_log_get_stats(kp_log *log, kp_log_stats *st)
{
	st->appends = atomic_load(&log->st_appends);
	st->events = atomic_load(&log->st_events);
	st->bytes = atomic_load(&log->st_bytes);
	st->groups = atomic_load(&log->st_groups);
	st->syncs = atomic_load(&log->st_syncs);
	st->sync_ns_total = atomic_load(&log->st_sync_ns);
	st->rolls = atomic_load(&log->st_rolls);
	st->prealloc_waits = atomic_load(&log->st_prealloc_waits);
	for (size_t i = 0; i < KP_LOG_BUCKETS; i++) {
		st->sync_buckets[i] = atomic_load(&log->st_sync_buckets[i]);
		st->group_buckets[i] = atomic_load(&log->st_group_buckets[i]);
	}
	st->first_pos = atomic_load(&log->first_pos);
	st->head = atomic_load(&log->head);
	st->disk_bytes = 0;
	pthread_mutex_lock(&log->seg_lock);
	st->segments = log->nsegs;
	for (size_t i = 0; i < log->nsegs; i++) {
		const kp_segment *g = log->segs[i];
		st->disk_bytes += atomic_load(&g->sealed) && g->file_bytes
					  ? g->file_bytes
					  : atomic_load(&g->end_off);
	}
	pthread_mutex_unlock(&log->seg_lock);
}

/* Newest batch time of a sealed segment, loading its index if needed. */
static int64_t
seg_last_time(kp_log *log, kp_segment *s)
{
	if (s->last_time_ms >= 0)
		return s->last_time_ms;
	kappa_err e;
	if (kp_seg_idx_load(log, s, &e) != KAPPA_OK) {
		kp_log_notice(log, "event=retention_skipped segment=%s error=\"%s\"", s->path,
			      e.msg);
		return INT64_MAX;
	}
	return s->last_time_ms;
}

int
kp_log_retention(kp_log *log, kappa_err *err)
{
	(void)err;
	if (!log->o.retention_ms && !log->o.retention_bytes)
		return KAPPA_OK;
	int64_t now = kp_now_ms();
	for (;;) {
		pthread_mutex_lock(&log->seg_lock);
		/* The segment before an empty active one holds the chain's tail: keep it. */
		kp_segment *last = log->segs[log->nsegs - 1];
		if (log->nsegs < 2 ||
		    (log->nsegs == 2 && atomic_load(&last->end_pos) == last->first_pos)) {
			pthread_mutex_unlock(&log->seg_lock);
			break;
		}
		kp_segment *old = log->segs[0];
		uint64_t total = 0;
		for (size_t i = 0; i + 1 < log->nsegs; i++)
			total += log->segs[i]->file_bytes;
		total += atomic_load(&log->segs[log->nsegs - 1]->end_off);
		kp_seg_ref(old);
		pthread_mutex_unlock(&log->seg_lock);

		int drop = log->o.retention_bytes && total > log->o.retention_bytes;
		if (!drop && log->o.retention_ms)
			drop = seg_last_time(log, old) < now - log->o.retention_ms;
		if (!drop) {
			kp_seg_unref(old, log->io);
			break;
		}
		pthread_mutex_lock(&log->seg_lock);
		if (log->nsegs < 2 || log->segs[0] != old) { /* another caller removed it */
			pthread_mutex_unlock(&log->seg_lock);
			kp_seg_unref(old, log->io);
			continue;
		}
		memmove(log->segs, log->segs + 1, (log->nsegs - 1) * sizeof(*log->segs));
		log->nsegs--;
		atomic_store(&log->first_pos, log->segs[0]->first_pos);
		pthread_mutex_unlock(&log->seg_lock);
		log->io->unlink(log->io, old->path);
		log->io->unlink(log->io, old->idx_path);
		kp_log_notice(log,
			      "event=segment_removed segment=%s first=%" PRIu64 " next=%" PRIu64
			      " reason=%s",
			      old->path, old->first_pos, atomic_load(&old->end_pos),
			      log->o.retention_bytes && total > log->o.retention_bytes ? "bytes"
										       : "age");
		kp_seg_unref(old, log->io); /* our ref */
		kp_seg_unref(old, log->io); /* the list's ref; readers may still hold theirs */
	}
	kp_io_fsync_dir(log->io, log->dir);
	return KAPPA_OK;
}
