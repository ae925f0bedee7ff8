/*
 * segment.c -- segment files and their sparse indexes: naming, listing, scanning with
 * torn-tail classification, and loading, rebuilding and rewriting index files.
 *
 * Scanning is the one place that decides what bytes on disk mean; recovery, index rebuild
 * and `kappa check` all go through kp_seg_scan so they cannot disagree.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "log/log_int.h"

#define SCAN_CHUNK (1u << 20)

static char *
name_path(const char *dir, uint64_t first_pos, const char *ext)
{
	size_t n = strlen(dir) + 32;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%020" PRIu64 ".%s", dir, first_pos, ext);
	return p;
}

char *
kp_seg_path(const char *dir, uint64_t first_pos)
{
	return name_path(dir, first_pos, "log");
}

char *
kp_seg_idx_path(const char *dir, uint64_t first_pos)
{
	return name_path(dir, first_pos, "idx");
}

kp_segment *
kp_seg_new(const char *dir, uint64_t first_pos)
{
	kp_segment *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->first_pos = first_pos;
	s->path = kp_seg_path(dir, first_pos);
	s->idx_path = kp_seg_idx_path(dir, first_pos);
	if (!s->path || !s->idx_path) {
		free(s->path);
		free(s->idx_path);
		free(s);
		return NULL;
	}
	s->fd = -1;
	s->idx_fd = -1;
	s->last_time_ms = -1;
	atomic_init(&s->refs, 1);
	atomic_init(&s->end_pos, first_pos);
	atomic_init(&s->end_off, 0);
	atomic_init(&s->sealed, 0);
	pthread_mutex_init(&s->idx_lock, NULL);
	return s;
}

void
kp_seg_ref(kp_segment *s)
{
	atomic_fetch_add(&s->refs, 1);
}

void
kp_seg_unref(kp_segment *s, const kp_io *io)
{
	if (atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	if (s->fd >= 0)
		io->close(io, s->fd);
	if (s->idx_fd >= 0)
		io->close(io, s->idx_fd);
	pthread_mutex_destroy(&s->idx_lock);
	free(s->idx);
	free(s->path);
	free(s->idx_path);
	free(s);
}

int
kp_seg_parse_name(const char *name, uint64_t *first_pos)
{
	if (strlen(name) != 24 || strcmp(name + 20, ".log") != 0)
		return 0;
	uint64_t v = 0;
	for (int i = 0; i < 20; i++) {
		if (name[i] < '0' || name[i] > '9')
			return 0;
		unsigned d = (unsigned)(name[i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	*first_pos = v;
	return 1;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int
kp_seg_list(const char *dir, uint64_t **out, size_t *n, kappa_err *err)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return KP_ERR_SYS(err, kp_err_from_errno(errno), errno, "cannot list %s", dir);
	uint64_t *v = NULL;
	size_t len = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		uint64_t fp;
		if (!kp_seg_parse_name(de->d_name, &fp))
			continue;
		if (len == cap) {
			size_t nc = cap ? cap * 2 : 16;
			uint64_t *nv = realloc(v, nc * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(d);
				return KP_ERR(err, KAPPA_ENOMEM, "out of memory listing %s", dir);
			}
			v = nv;
			cap = nc;
		}
		v[len++] = fp;
	}
	closedir(d);
	if (len)
		qsort(v, len, sizeof(*v), cmp_u64);
	*out = v;
	*n = len;
	return KAPPA_OK;
}

/* ---- scanning ------------------------------------------------------------------------ */

/* A forward reader over a file with a window buffer. */
typedef struct window {
	const kp_io *io;
	int fd;
	uint64_t size;
	uint8_t *buf;
	size_t cap;
	uint64_t off; /* file offset of buf[0] */
	size_t len;   /* valid bytes in buf */
} window;

/* Make [off, off + n) available; *got is how much of it exists (less at end of file). */
static int
win_get(window *w, uint64_t off, size_t n, const uint8_t **p, size_t *got, kappa_err *err)
{
	if (off >= w->off && off + n <= w->off + w->len) {
		*p = w->buf + (off - w->off);
		*got = n;
		return KAPPA_OK;
	}
	size_t want = n > SCAN_CHUNK ? n : SCAN_CHUNK;
	if (want > w->cap) {
		uint8_t *nb = realloc(w->buf, want);
		if (!nb)
			return KP_ERR(err, KAPPA_ENOMEM, "out of memory reading a segment");
		w->buf = nb;
		w->cap = want;
	}
	if (off >= w->size) {
		*got = 0;
		*p = w->buf;
		return KAPPA_OK;
	}
	uint64_t avail = w->size - off;
	size_t rd = avail < want ? (size_t)avail : want;
	ssize_t r = kp_io_pread_full(w->io, w->fd, w->buf, rd, (off_t)off);
	if (r < 0)
		return KP_ERR_SYS(err, kp_err_from_errno((int)-r), (int)-r, "read failed");
	w->off = off;
	w->len = (size_t)r;
	*p = w->buf;
	*got = w->len < n ? w->len : n;
	return KAPPA_OK;
}

/* Is there a valid batch at 'off'? Fills 'h' if so. */
static int
valid_batch_at(window *w, uint64_t off, kp_batch_hdr *h, int *valid, kappa_err *err)
{
	const uint8_t *p;
	size_t got;
	int rc;
	*valid = 0;
	if ((rc = win_get(w, off, KP_BATCH_HEADER, &p, &got, err)))
		return rc;
	if (got < KP_BATCH_HEADER)
		return KAPPA_OK;
	uint64_t room = w->size - off;
	if (kp_batch_hdr_decode(p, h, room > UINT32_MAX ? UINT32_MAX : (uint32_t)room, NULL))
		return KAPPA_OK;
	if ((rc = win_get(w, off, h->length, &p, &got, err)))
		return rc;
	if (got < h->length)
		return KAPPA_OK;
	*valid = kp_batch_crc_ok(p, h);
	return KAPPA_OK;
}

static int
check_events(const uint8_t *p, const kp_batch_hdr *h, kappa_err *err)
{
	kp_batch_iter it;
	kp_event ev;
	int rc;
	kp_batch_iter_init(&it, p, h);
	while ((rc = kp_batch_iter_next(&it, &ev, err)) == 1)
		;
	return rc;
}

/*
 * After the last valid batch at 'bad' (expected position 'pos'): look at the rest of the
 * file. Only zeros: clean end. Anything else is a torn tail unless some valid batch after
 * it says position 'pos' had been synced (durable_below > pos): then it is corruption.
 */
static int
classify_tail(window *w, uint64_t bad, uint64_t pos, kp_scan *r, kappa_err *err)
{
	uint64_t off = bad;
	int rc;
	r->tail = KP_SCAN_CLEAN;
	while (off < w->size) {
		const uint8_t *p;
		size_t got;
		size_t n = w->size - off > SCAN_CHUNK ? SCAN_CHUNK : (size_t)(w->size - off);
		if ((rc = win_get(w, off, n, &p, &got, err)))
			return rc;
		if (got == 0)
			break;
		/* Find non-zero bytes and, among them, candidate batch magics. */
		for (size_t i = 0; i < got; i++) {
			if (p[i] == 0)
				continue;
			if (r->tail == KP_SCAN_CLEAN) {
				r->tail = KP_SCAN_TORN;
				r->tail_bytes = w->size - (off + i);
			}
			if (p[i] != (KP_BATCH_MAGIC & 0xff) || off + i == bad)
				continue;
			if (got - i >= 4 && kp_get_u32(p + i) != KP_BATCH_MAGIC)
				continue;
			kp_batch_hdr h;
			int valid;
			uint64_t at = off + i;
			if ((rc = valid_batch_at(w, at, &h, &valid, err)))
				return rc;
			if (!valid) {
				/* the window may have moved: re-get the chunk */
				if ((rc = win_get(w, off, n, &p, &got, err)))
					return rc;
				continue;
			}
			r->later_valid++;
			if (h.durable_below > pos) {
				r->tail = KP_SCAN_CORRUPT;
				snprintf(r->why + strlen(r->why), sizeof(r->why) - strlen(r->why),
					 "; a batch at offset %" PRIu64 " proves position %" PRIu64
					 " was synced",
					 at, pos);
				return KAPPA_OK;
			}
			if ((rc = win_get(w, off, n, &p, &got, err)))
				return rc;
		}
		off += got;
	}
	return KAPPA_OK;
}

int
kp_seg_scan(const kp_io *io, int fd, uint64_t off, uint64_t pos, uint64_t limit_pos, int check_ev,
	    kp_scan_cb cb, void *ctx, kp_scan *r, kappa_err *err)
{
	memset(r, 0, sizeof(*r));
	r->last_time_ms = -1;
	window w = {.io = io, .fd = fd};
	int rc = io->fstat_size(io, fd, &w.size);
	if (rc < 0)
		return KP_ERR_SYS(err, KAPPA_EIO, -rc, "cannot stat segment");
	r->file_size = w.size;
	for (;;) {
		if (pos >= limit_pos)
			goto bad; /* not bad: classify_tail checks the rest is clean */
		const uint8_t *p;
		size_t got;
		if ((rc = win_get(&w, off, KP_BATCH_HEADER, &p, &got, err)))
			goto out;
		if (got == 0)
			goto bad; /* end of file: clean */
		kp_batch_hdr h;
		kappa_err why;
		kp_err_clear(&why);
		if (got < KP_BATCH_HEADER) {
			snprintf(r->why, sizeof(r->why), "a partial batch header");
			goto bad;
		}
		uint64_t room = w.size - off;
		if (kp_batch_hdr_decode(p, &h, room > UINT32_MAX ? UINT32_MAX : (uint32_t)room,
					&why)) {
			snprintf(r->why, sizeof(r->why), "%.150s", why.msg);
			goto bad;
		}
		if (h.first_position != pos) {
			snprintf(r->why, sizeof(r->why),
				 "batch holds position %" PRIu64 ", expected %" PRIu64,
				 h.first_position, pos);
			goto bad;
		}
		if ((rc = win_get(&w, off, h.length, &p, &got, err)))
			goto out;
		if (!kp_batch_crc_ok(p, &h)) {
			snprintf(r->why, sizeof(r->why), "crc mismatch");
			goto bad;
		}
		if (check_ev && check_events(p, &h, &why)) {
			snprintf(r->why, sizeof(r->why), "%.150s", why.msg);
			goto bad;
		}
		if (cb && (rc = cb(ctx, &h, off)))
			goto out;
		off += h.length;
		pos += h.count;
		r->batches++;
		r->events += h.count;
		r->last_time_ms = h.timestamp_ms;
	}
bad:
	/* A header of zeros is the clean end (preallocated space); anything else after the
	 * last valid batch is classified by what follows it. */
	r->end_off = off;
	r->end_pos = pos;
	rc = classify_tail(&w, off, pos, r, err);
	if (rc == KAPPA_OK && r->tail == KP_SCAN_CLEAN)
		r->why[0] = '\0';
	else if (rc == KAPPA_OK && !r->why[0])
		snprintf(r->why, sizeof(r->why), "non-zero bytes after the last batch");
out:
	free(w.buf);
	return rc;
}

/* ---- index files --------------------------------------------------------------------- */

void
kp_idx_encode_header(uint8_t *p, uint64_t first_pos)
{
	memset(p, 0, KP_IDX_HEADER);
	kp_put_u32(p, KP_IDX_MAGIC);
	kp_put_u32(p + 4, KP_IDX_VERSION);
	kp_put_u64(p + 8, first_pos);
	kp_put_u32(p + 28, kp_crc32c(0, p, 28));
}

void
kp_idx_encode_entry(uint8_t *p, const kp_idx_entry *e, uint32_t kind)
{
	memset(p, 0, KP_IDX_ENTRY);
	kp_put_u64(p, e->pos);
	kp_put_u64(p + 8, (uint64_t)e->time_ms);
	kp_put_u32(p + 16, e->off);
	kp_put_u32(p + 20, kind);
	kp_put_u32(p + 28, kp_crc32c(0, p, 28));
}

int
kp_seg_idx_push(kp_segment *s, const kp_idx_entry *e)
{
	pthread_mutex_lock(&s->idx_lock);
	if (s->idx_n == s->idx_cap) {
		size_t nc = s->idx_cap ? s->idx_cap * 2 : 64;
		kp_idx_entry *ni = realloc(s->idx, nc * sizeof(*ni));
		if (!ni) {
			pthread_mutex_unlock(&s->idx_lock);
			return KAPPA_ENOMEM;
		}
		s->idx = ni;
		s->idx_cap = nc;
	}
	s->idx[s->idx_n++] = *e;
	pthread_mutex_unlock(&s->idx_lock);
	return KAPPA_OK;
}

void
kp_seg_idx_find(kp_segment *s, uint64_t pos, uint64_t *off, uint64_t *at)
{
	*off = 0;
	*at = s->first_pos;
	pthread_mutex_lock(&s->idx_lock);
	size_t lo = 0, hi = s->idx_n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (s->idx[mid].pos <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo > 0) {
		*off = s->idx[lo - 1].off;
		*at = s->idx[lo - 1].pos;
	}
	pthread_mutex_unlock(&s->idx_lock);
}

int
kp_seg_idx_read(const kp_io *io, kp_segment *s, kp_idx_entry *seal, int *has_seal, kappa_err *err)
{
	*has_seal = 0;
	s->idx_n = 0;
	int fd = io->open(io, s->idx_path, O_RDONLY, 0);
	if (fd == -ENOENT)
		return KAPPA_OK;
	if (fd < 0)
		return KP_ERR_SYS(err, KAPPA_EIO, -fd, "cannot open %s", s->idx_path);
	uint64_t size;
	int rc = io->fstat_size(io, fd, &size);
	if (rc < 0) {
		io->close(io, fd);
		return KP_ERR_SYS(err, KAPPA_EIO, -rc, "cannot stat %s", s->idx_path);
	}
	uint8_t *buf = size ? malloc(size) : NULL;
	if (size && !buf) {
		io->close(io, fd);
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory loading %s", s->idx_path);
	}
	ssize_t r = size ? kp_io_pread_full(io, fd, buf, size, 0) : 0;
	io->close(io, fd);
	if (r < 0) {
		free(buf);
		return KP_ERR_SYS(err, KAPPA_EIO, (int)-r, "cannot read %s", s->idx_path);
	}
	size = (uint64_t)r;
	rc = KAPPA_OK;
	if (size < KP_IDX_HEADER || kp_get_u32(buf) != KP_IDX_MAGIC ||
	    kp_get_u32(buf + 4) != KP_IDX_VERSION || kp_get_u64(buf + 8) != s->first_pos ||
	    kp_get_u32(buf + 28) != kp_crc32c(0, buf, 28))
		goto done; /* unusable: treated as missing */
	for (uint64_t off = KP_IDX_HEADER; off + KP_IDX_ENTRY <= size; off += KP_IDX_ENTRY) {
		const uint8_t *p = buf + off;
		if (kp_get_u32(p + 28) != kp_crc32c(0, p, 28))
			break;
		kp_idx_entry e = {kp_get_u64(p), (int64_t)kp_get_u64(p + 8), kp_get_u32(p + 16)};
		uint32_t kind = kp_get_u32(p + 20);
		uint64_t prev_pos = s->idx_n ? s->idx[s->idx_n - 1].pos : 0;
		uint32_t prev_off = s->idx_n ? s->idx[s->idx_n - 1].off : 0;
		if (s->idx_n && (e.pos <= prev_pos || e.off <= prev_off))
			break;
		if (e.pos < s->first_pos)
			break;
		if (kind == KP_IDX_SEAL) {
			*seal = e;
			*has_seal = 1;
			break;
		}
		if (kind != KP_IDX_BATCH)
			break;
		if ((rc = kp_seg_idx_push(s, &e)))
			break;
	}
	if (rc)
		rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory loading %s", s->idx_path);
done:
	free(buf);
	return rc;
}

int
kp_seg_idx_rewrite(const kp_io *io, const char *dir, kp_segment *s, const kp_idx_entry *seal,
		   kappa_err *err)
{
	size_t n = s->idx_n + (seal ? 1 : 0);
	size_t size = KP_IDX_HEADER + n * KP_IDX_ENTRY;
	uint8_t *buf = malloc(size);
	char *tmp = malloc(strlen(s->idx_path) + 5);
	int rc = KAPPA_OK, fd = -1;
	if (!buf || !tmp) {
		rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory writing an index");
		goto out;
	}
	sprintf(tmp, "%s.tmp", s->idx_path);
	kp_idx_encode_header(buf, s->first_pos);
	for (size_t i = 0; i < s->idx_n; i++)
		kp_idx_encode_entry(buf + KP_IDX_HEADER + i * KP_IDX_ENTRY, &s->idx[i],
				    KP_IDX_BATCH);
	if (seal)
		kp_idx_encode_entry(buf + KP_IDX_HEADER + s->idx_n * KP_IDX_ENTRY, seal,
				    KP_IDX_SEAL);
	fd = io->open(io, tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		rc = KP_ERR_SYS(err, kp_err_from_errno(-fd), -fd, "cannot create %s", tmp);
		goto out;
	}
	struct iovec v = {buf, size};
	int r = kp_io_pwritev_full(io, fd, &v, 1, 0);
	if (r == 0)
		r = io->fdatasync(io, fd);
	if (r == 0)
		r = io->rename(io, tmp, s->idx_path);
	if (r == 0)
		r = kp_io_fsync_dir(io, dir);
	if (r < 0) {
		rc = KP_ERR_SYS(err, kp_err_from_errno(-r), -r, "cannot write %s", s->idx_path);
		io->unlink(io, tmp);
	}
out:
	if (fd >= 0)
		io->close(io, fd);
	free(tmp);
	free(buf);
	return rc;
}

/* Index rebuild: collect an entry every index_interval_bytes. */
typedef struct rebuild_ctx {
	kp_segment *s;
	uint32_t interval;
	uint64_t since;
	int first;
} rebuild_ctx;

static int
rebuild_cb(void *ctx, const kp_batch_hdr *h, uint64_t off)
{
	rebuild_ctx *c = ctx;
	if (c->first || c->since >= c->interval) {
		kp_idx_entry e = {h->first_position, h->timestamp_ms, (uint32_t)off};
		if (kp_seg_idx_push(c->s, &e))
			return KAPPA_ENOMEM;
		c->since = 0;
		c->first = 0;
	}
	c->since += h->length;
	return 0;
}

int
kp_seg_idx_load(kp_log *log, kp_segment *s, kappa_err *err)
{
	/* The active segment's index is built by recovery and the writer: always loaded. */
	pthread_mutex_lock(&s->idx_lock);
	int loaded = s->idx_loaded;
	pthread_mutex_unlock(&s->idx_lock);
	if (loaded)
		return KAPPA_OK;

	/* Build into a private segment struct, then install it; concurrent loaders of the
	 * same segment may both build, the first to install wins. */
	kp_segment tmp = *s;
	tmp.idx = NULL;
	tmp.idx_n = tmp.idx_cap = 0;
	pthread_mutex_init(&tmp.idx_lock, NULL);
	kp_idx_entry seal;
	int has_seal, rc;
	if ((rc = kp_seg_idx_read(log->io, &tmp, &seal, &has_seal, err)))
		goto out;
	uint64_t end_pos = atomic_load(&s->end_pos);
	int valid = has_seal && seal.pos == end_pos;
	if (!valid) {
		/* Missing, stale or unsealed: rebuild from the segment itself. */
		tmp.idx_n = 0;
		rebuild_ctx c = {&tmp, log->o.index_interval_bytes, 0, 1};
		kp_scan r;
		if ((rc = kp_seg_scan(log->io, s->fd, 0, s->first_pos, end_pos, 0, rebuild_cb, &c,
				      &r, err)))
			goto out;
		if (r.end_pos != end_pos) {
			rc = KP_ERR(err, KAPPA_ECORRUPT,
				    "segment %s: %s at offset %" PRIu64 " (position %" PRIu64
				    "); the segment should end at position %" PRIu64,
				    s->path, r.why[0] ? r.why : "data ends early", r.end_off,
				    r.end_pos, end_pos);
			goto out;
		}
		seal = (kp_idx_entry){r.end_pos, r.last_time_ms, (uint32_t)r.end_off};
		kappa_err werr;
		if (kp_seg_idx_rewrite(log->io, log->dir, &tmp, &seal, &werr) == KAPPA_OK)
			kp_log_notice(log, "event=index_rebuilt segment=%s entries=%zu", s->path,
				      tmp.idx_n);
		else
			kp_log_notice(log, "event=index_rewrite_failed segment=%s error=\"%s\"",
				      s->path, werr.msg);
	}
	pthread_mutex_lock(&s->idx_lock);
	if (!s->idx_loaded) {
		free(s->idx);
		s->idx = tmp.idx;
		s->idx_n = tmp.idx_n;
		s->idx_cap = tmp.idx_cap;
		tmp.idx = NULL;
		if (s->last_time_ms < 0)
			s->last_time_ms = seal.time_ms;
		atomic_store(&s->end_off, seal.off);
		s->idx_loaded = 1;
	}
	pthread_mutex_unlock(&s->idx_lock);
out:
	free(tmp.idx);
	pthread_mutex_destroy(&tmp.idx_lock);
	return rc;
}
