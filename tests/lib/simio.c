/*
 * simio.c -- the simulation kp_io (simio.h): seeded faults, and power cuts that put files
 * and directories back to what was last synced.
 *
 * Every call runs under one lock, so the record of unsynced changes matches the order in
 * which they reached the files. Syncs that succeed only update that record: durability is
 * modelled here, so the real fdatasync is not called.
 */
#include "simio.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

#define SECTOR 512

/* One change to a file since its last sync, with what it replaced. */
enum { U_WRITE, U_SIZE };
typedef struct undo {
	int kind;
	uint64_t off, len; /* U_WRITE: bytes written at off; U_SIZE: the new size in off */
	uint64_t old_size; /* the file's size before */
	uint8_t *old;	   /* bytes replaced: at off (U_WRITE) or at the new size (U_SIZE) */
	uint64_t old_len;  /* ... this many */
} undo;

/* A file written through the simulator, held by a private descriptor until the next reset
 * (so it can be restored even after it was renamed or unlinked). */
typedef struct sim_file {
	dev_t dev;
	ino_t ino;
	int fd;
	uint64_t size;
	undo *u;
	size_t nu, capu;
} sim_file;

/* A directory entry change since the directory's last fsync. */
enum { N_CREATE, N_RENAME, N_UNLINK };
typedef struct nsop {
	int kind;
	char *dir;   /* the directory whose fsync makes it durable */
	char *path;  /* created / renamed from / unlinked */
	char *path2; /* renamed to */
	char *grave; /* the file removed or replaced, kept aside; NULL: none */
} nsop;

/* What a descriptor handed to kappa is. */
typedef struct fd_ent {
	int used;
	char *dir; /* a directory: its real path */
	int file;  /* a file written through us: index in files, else -1 */
} fd_ent;

struct kt_sim {
	kp_io io;
	pthread_mutex_t lock;
	uint64_t seed, calls, cut_at, rng;
	kt_sim_faults f;
	int dead, enospc_left;
	char *grave_dir;
	uint64_t graves;
	sim_file *files;
	size_t nfiles, capfiles;
	nsop *ops;
	size_t nops, capops;
	fd_ent *fds;
	size_t capfds;
	kt_sim_stats st;
};

static void
oom(void)
{
	fprintf(stderr, "simio: out of memory\n");
	abort();
}

static char *
xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		oom();
	return p;
}

/* The real path of the directory holding 'path' (malloc'ed), or a copy of it. */
static char *
parent_of(const char *path)
{
	char *tmp = xstrdup(path), real[PATH_MAX];
	char *d = dirname(tmp);
	char *out = xstrdup(realpath(d, real) ? real : d);
	free(tmp);
	return out;
}

/* A number drawn for call 'n' and purpose 'salt': the same for the same seed. */
static uint64_t
draw(kt_sim *s, uint64_t salt)
{
	return kt_mix64(s->seed ^ (s->calls * 0x9e3779b97f4a7c15ull) ^ (salt << 56));
}

static int
roll(kt_sim *s, uint64_t salt, uint32_t ppm)
{
	return ppm && draw(s, salt) % 1000000u < ppm;
}

/* Count the call; 1 if it must fail with EIO (the power is off, or an EIO fault). */
static int
enter(kt_sim *s, int can_eio)
{
	pthread_mutex_lock(&s->lock);
	s->calls++;
	if (s->cut_at && s->calls >= s->cut_at && !s->dead) {
		s->dead = 1;
		s->st.cuts++;
	}
	if (s->dead)
		return 1;
	if (can_eio && roll(s, 1, s->f.eio_ppm)) {
		s->st.eio++;
		return 1;
	}
	return 0;
}

static fd_ent *
fd_slot(kt_sim *s, int fd)
{
	if ((size_t)fd >= s->capfds) {
		size_t old = s->capfds;
		s->fds = kt_grow(s->fds, &s->capfds, (size_t)fd + 1, sizeof(*s->fds));
		memset(s->fds + old, 0, (s->capfds - old) * sizeof(*s->fds));
	}
	return &s->fds[fd];
}

/* The record of the file open as 'fd', created on first use. */
static int
file_of(kt_sim *s, int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return -1;
	for (size_t i = 0; i < s->nfiles; i++)
		if (s->files[i].dev == st.st_dev && s->files[i].ino == st.st_ino)
			return (int)i;
	char proc[64];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	int own = open(proc, O_RDWR | O_CLOEXEC);
	if (own < 0)
		return -1;
	s->files = kt_grow(s->files, &s->capfiles, s->nfiles + 1, sizeof(*s->files));
	sim_file *f = &s->files[s->nfiles];
	memset(f, 0, sizeof(*f));
	f->dev = st.st_dev;
	f->ino = st.st_ino;
	f->fd = own;
	f->size = (uint64_t)st.st_size;
	return (int)s->nfiles++;
}

static undo *
undo_push(sim_file *f)
{
	f->u = kt_grow(f->u, &f->capu, f->nu + 1, sizeof(*f->u));
	undo *u = &f->u[f->nu++];
	memset(u, 0, sizeof(*u));
	return u;
}

/* Save the bytes of 'f' in [off, off + len) that exist into 'u'. */
static void
save_old(sim_file *f, undo *u, uint64_t off, uint64_t len)
{
	uint64_t end = off + len < f->size ? off + len : f->size;
	if (end <= off)
		return;
	u->old_len = end - off;
	u->old = malloc(u->old_len);
	if (!u->old)
		oom();
	if (pread(f->fd, u->old, u->old_len, (off_t)off) != (ssize_t)u->old_len) {
		fprintf(stderr, "simio: cannot read back %llu bytes\n",
			(unsigned long long)u->old_len);
		abort();
	}
}

static void
ops_push(kt_sim *s, int kind, char *dir, const char *path, const char *path2, char *grave)
{
	s->ops = kt_grow(s->ops, &s->capops, s->nops + 1, sizeof(*s->ops));
	nsop *o = &s->ops[s->nops++];
	o->kind = kind;
	o->dir = dir;
	o->path = xstrdup(path);
	o->path2 = path2 ? xstrdup(path2) : NULL;
	o->grave = grave;
}

/* Move 'path' aside into the grave directory; returns the new path or NULL. */
static char *
bury(kt_sim *s, const char *path)
{
	char g[PATH_MAX];
	snprintf(g, sizeof(g), "%s/g%llu", s->grave_dir, (unsigned long long)++s->graves);
	if (rename(path, g) != 0)
		return NULL;
	return xstrdup(g);
}

/* ---- the kp_io calls ------------------------------------------------------------------ */

#define SIM(io) ((kt_sim *)(io)->ctx)
#define LEAVE(s, v)                                                                                \
	do {                                                                                       \
		pthread_mutex_unlock(&(s)->lock);                                                  \
		return (v);                                                                        \
	} while (0)

static int
s_open(const kp_io *io, const char *path, int flags, mode_t mode)
{
	kt_sim *s = SIM(io);
	if (enter(s, 1))
		LEAVE(s, -EIO);
	if (flags & O_DIRECTORY) {
		int fd = open(path, flags | O_CLOEXEC, mode);
		if (fd < 0)
			LEAVE(s, -errno);
		char real[PATH_MAX];
		fd_ent *e = fd_slot(s, fd);
		e->used = 1;
		e->file = -1;
		e->dir = xstrdup(realpath(path, real) ? real : path);
		LEAVE(s, fd);
	}
	int existed = access(path, F_OK) == 0;
	int writable = (flags & O_ACCMODE) != O_RDONLY;
	if (existed && (flags & O_TRUNC) && writable) {
		/* the truncation is a change like any other: record what it removes */
		int tfd = open(path, O_RDONLY | O_CLOEXEC);
		int fi = tfd >= 0 ? file_of(s, tfd) : -1;
		if (tfd >= 0)
			close(tfd);
		if (fi >= 0 && s->files[fi].size) {
			sim_file *f = &s->files[fi];
			undo *u = undo_push(f);
			u->kind = U_SIZE;
			u->off = 0;
			u->old_size = f->size;
			save_old(f, u, 0, f->size);
			f->size = 0;
		}
	}
	int fd = open(path, flags | O_CLOEXEC, mode);
	if (fd < 0)
		LEAVE(s, -errno);
	if (!existed && (flags & O_CREAT))
		ops_push(s, N_CREATE, parent_of(path), path, NULL, NULL);
	fd_ent *e = fd_slot(s, fd);
	e->used = 1;
	e->dir = NULL;
	e->file = writable ? file_of(s, fd) : -1;
	LEAVE(s, fd);
}

static int
s_close(const kp_io *io, int fd)
{
	kt_sim *s = SIM(io);
	pthread_mutex_lock(&s->lock);
	if (fd >= 0 && (size_t)fd < s->capfds && s->fds[fd].used) {
		free(s->fds[fd].dir);
		memset(&s->fds[fd], 0, sizeof(s->fds[fd]));
	}
	int r = close(fd) < 0 && errno != EINTR ? -errno : 0;
	LEAVE(s, r);
}

/* Reads are not counted as calls: which reads happen depends on thread timing (view
 * projectors, the index catching up), and counting them would move every later fault.
 * Their faults are drawn from the count of other calls and what is read instead. */
static ssize_t
s_pread(const kp_io *io, int fd, void *buf, size_t n, off_t off)
{
	kt_sim *s = SIM(io);
	pthread_mutex_lock(&s->lock);
	if (s->dead)
		LEAVE(s, (ssize_t)-EIO);
	if (s->f.eio_ppm &&
	    kt_mix64(draw(s, 10) ^ ((uint64_t)off * 31 + n)) % 1000000u < s->f.eio_ppm) {
		s->st.eio++;
		LEAVE(s, (ssize_t)-EIO);
	}
	ssize_t r = pread(fd, buf, n, off);
	LEAVE(s, r < 0 ? (ssize_t)-errno : r);
}

static sim_file *
written_file(kt_sim *s, int fd)
{
	if (fd < 0 || (size_t)fd >= s->capfds || !s->fds[fd].used)
		return NULL;
	int fi = s->fds[fd].file;
	return fi >= 0 ? &s->files[fi] : NULL;
}

static ssize_t
s_pwritev(const kp_io *io, int fd, const struct iovec *iov, int cnt, off_t off)
{
	kt_sim *s = SIM(io);
	if (enter(s, 1))
		LEAVE(s, (ssize_t)-EIO);
	uint64_t total = 0;
	for (int i = 0; i < cnt; i++)
		total += iov[i].iov_len;
	uint64_t want = total;
	if (s->enospc_left > 0) {
		s->enospc_left--;
		s->st.enospc++;
		LEAVE(s, (ssize_t)-ENOSPC);
	}
	if (roll(s, 2, s->f.enospc_ppm)) {
		s->enospc_left = (int)(draw(s, 3) % 4);
		if (total < 2 || draw(s, 4) % 2) {
			s->st.enospc++;
			LEAVE(s, (ssize_t)-ENOSPC);
		}
		s->enospc_left++; /* part of it fits; the next write finds the disk full */
		want = 1 + draw(s, 5) % (total - 1);
		s->st.short_writes++;
	} else if (total > 1 && roll(s, 6, s->f.short_ppm)) {
		want = 1 + draw(s, 7) % (total - 1);
		s->st.short_writes++;
	}
	/* The part of the vector to write. */
	struct iovec v[64];
	int vn = 0;
	for (uint64_t left = want; vn < cnt && vn < 64 && left > 0; vn++) {
		v[vn] = iov[vn];
		if (v[vn].iov_len > left)
			v[vn].iov_len = (size_t)left;
		left -= v[vn].iov_len;
	}
	sim_file *f = written_file(s, fd);
	undo *u = NULL;
	if (f) {
		u = undo_push(f);
		u->kind = U_WRITE;
		u->off = (uint64_t)off;
		u->len = want;
		u->old_size = f->size;
		save_old(f, u, (uint64_t)off, want);
	}
	ssize_t r = pwritev(fd, v, vn, off);
	if (r < 0) {
		int e = errno;
		if (f) { /* nothing was written */
			free(u->old);
			f->nu--;
		}
		LEAVE(s, (ssize_t)-e);
	}
	if (f) {
		u->len = (uint64_t)r;
		if ((uint64_t)off + (uint64_t)r > f->size)
			f->size = (uint64_t)off + (uint64_t)r;
	}
	LEAVE(s, r);
}

static int
sync_common(kt_sim *s, int fd)
{
	if (enter(s, 1))
		LEAVE(s, -EIO);
	if (roll(s, 8, s->f.sync_ppm)) {
		s->st.sync_fails++;
		LEAVE(s, -EIO);
	}
	if (fd < 0 || (size_t)fd >= s->capfds || !s->fds[fd].used)
		LEAVE(s, -EBADF);
	fd_ent *e = &s->fds[fd];
	if (e->dir) {
		size_t k = 0;
		for (size_t i = 0; i < s->nops; i++) {
			nsop *o = &s->ops[i];
			if (strcmp(o->dir, e->dir) != 0) {
				s->ops[k++] = *o;
				continue;
			}
			if (o->grave)
				unlink(o->grave);
			free(o->dir);
			free(o->path);
			free(o->path2);
			free(o->grave);
		}
		s->nops = k;
	} else {
		int fi = e->file >= 0 ? e->file : file_of(s, fd);
		if (fi >= 0) {
			sim_file *f = &s->files[fi];
			for (size_t i = 0; i < f->nu; i++)
				free(f->u[i].old);
			f->nu = 0;
		}
	}
	LEAVE(s, 0);
}

static int
s_fdatasync(const kp_io *io, int fd)
{
	return sync_common(SIM(io), fd);
}

static int
s_fsync(const kp_io *io, int fd)
{
	return sync_common(SIM(io), fd);
}

static int
s_ftruncate(const kp_io *io, int fd, off_t len)
{
	kt_sim *s = SIM(io);
	if (enter(s, 1))
		LEAVE(s, -EIO);
	sim_file *f = written_file(s, fd);
	if (f) {
		undo *u = undo_push(f);
		u->kind = U_SIZE;
		u->off = (uint64_t)len;
		u->old_size = f->size;
		if ((uint64_t)len < f->size)
			save_old(f, u, (uint64_t)len, f->size - (uint64_t)len);
	}
	if (ftruncate(fd, len) != 0) {
		int e = errno;
		if (f) {
			free(f->u[f->nu - 1].old);
			f->nu--;
		}
		LEAVE(s, -e);
	}
	if (f)
		f->size = (uint64_t)len;
	LEAVE(s, 0);
}

static int
s_fallocate(const kp_io *io, int fd, off_t off, off_t len)
{
	kt_sim *s = SIM(io);
	if (enter(s, 1))
		LEAVE(s, -EIO);
	if (s->enospc_left > 0 || roll(s, 9, s->f.enospc_ppm)) {
		if (s->enospc_left > 0)
			s->enospc_left--;
		s->st.enospc++;
		LEAVE(s, -ENOSPC);
	}
	sim_file *f = written_file(s, fd);
	if (f && (uint64_t)(off + len) > f->size) {
		undo *u = undo_push(f);
		u->kind = U_SIZE;
		u->off = (uint64_t)(off + len);
		u->old_size = f->size;
	}
	int r = posix_fallocate(fd, off, len);
	if (r) {
		if (f && (uint64_t)(off + len) > f->size)
			f->nu--;
		LEAVE(s, -r);
	}
	if (f && (uint64_t)(off + len) > f->size)
		f->size = (uint64_t)(off + len);
	LEAVE(s, 0);
}

static int
s_rename(const kp_io *io, const char *from, const char *to)
{
	kt_sim *s = SIM(io);
	if (enter(s, 1))
		LEAVE(s, -EIO);
	if (access(from, F_OK) != 0)
		LEAVE(s, -errno);
	char *grave = NULL;
	if (access(to, F_OK) == 0 && !(grave = bury(s, to)))
		LEAVE(s, -errno);
	if (rename(from, to) != 0) {
		int e = errno;
		if (grave) {
			rename(grave, to);
			free(grave);
		}
		LEAVE(s, -e);
	}
	ops_push(s, N_RENAME, parent_of(to), from, to, grave);
	LEAVE(s, 0);
}

static int
s_unlink(const kp_io *io, const char *path)
{
	kt_sim *s = SIM(io);
	if (enter(s, 1))
		LEAVE(s, -EIO);
	char *grave = bury(s, path);
	if (!grave)
		LEAVE(s, -errno);
	ops_push(s, N_UNLINK, parent_of(path), path, NULL, grave);
	LEAVE(s, 0);
}

static int
s_fstat_size(const kp_io *io, int fd, uint64_t *size)
{
	kt_sim *s = SIM(io);
	if (enter(s, 1))
		LEAVE(s, -EIO);
	struct stat st;
	if (fstat(fd, &st) != 0)
		LEAVE(s, -errno);
	*size = (uint64_t)st.st_size;
	LEAVE(s, 0);
}

/* ---- set-up and power cuts ------------------------------------------------------------ */

kt_sim *
kt_sim_new(uint64_t seed, const char *grave_dir)
{
	kt_sim *s = calloc(1, sizeof(*s));
	if (!s)
		oom();
	pthread_mutex_init(&s->lock, NULL);
	s->seed = kt_mix64(seed ^ 0x51a10c0ffeeull);
	s->rng = s->seed;
	s->grave_dir = xstrdup(grave_dir);
	mkdir(grave_dir, 0755);
	s->io = (kp_io){s_open,	     s_close,	  s_pread,  s_pwritev, s_fdatasync,  s_fsync,
			s_ftruncate, s_fallocate, s_rename, s_unlink,  s_fstat_size, s};
	return s;
}

/* Forget every record (lock held). */
static void
forget(kt_sim *s)
{
	for (size_t i = 0; i < s->nfiles; i++) {
		for (size_t k = 0; k < s->files[i].nu; k++)
			free(s->files[i].u[k].old);
		free(s->files[i].u);
		close(s->files[i].fd);
	}
	s->nfiles = 0;
	for (size_t i = 0; i < s->nops; i++) {
		if (s->ops[i].grave)
			unlink(s->ops[i].grave);
		free(s->ops[i].dir);
		free(s->ops[i].path);
		free(s->ops[i].path2);
		free(s->ops[i].grave);
	}
	s->nops = 0;
	for (size_t i = 0; i < s->capfds; i++) /* kappa closed them all; just in case */
		if (s->fds[i].used) {
			free(s->fds[i].dir);
			memset(&s->fds[i], 0, sizeof(s->fds[i]));
		}
	memset(&s->f, 0, sizeof(s->f));
	s->cut_at = 0;
	s->dead = 0;
	s->enospc_left = 0;
}

void
kt_sim_free(kt_sim *s)
{
	if (!s)
		return;
	forget(s);
	free(s->files);
	free(s->ops);
	free(s->fds);
	free(s->grave_dir);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

const kp_io *
kt_sim_io(kt_sim *s)
{
	return &s->io;
}

void
kt_sim_set_faults(kt_sim *s, const kt_sim_faults *f)
{
	pthread_mutex_lock(&s->lock);
	s->f = *f;
	s->cut_at = f->cut_after ? s->calls + f->cut_after : 0;
	pthread_mutex_unlock(&s->lock);
}

void
kt_sim_cut_now(kt_sim *s)
{
	pthread_mutex_lock(&s->lock);
	if (!s->dead) {
		s->dead = 1;
		s->st.cuts++;
	}
	pthread_mutex_unlock(&s->lock);
}

int
kt_sim_is_cut(kt_sim *s)
{
	pthread_mutex_lock(&s->lock);
	int d = s->dead;
	pthread_mutex_unlock(&s->lock);
	return d;
}

static void
must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "simio: power cut: %s: %s\n", what, strerror(errno));
		abort();
	}
}

/* Undo 'u' on 'f' from byte 'from' of what it wrote on (0: all of it). */
static void
undo_one(sim_file *f, const undo *u, uint64_t from)
{
	if (u->kind == U_SIZE) {
		must(ftruncate(f->fd, (off_t)u->old_size) == 0, "ftruncate");
		if (u->old_len)
			must(pwrite(f->fd, u->old, u->old_len, (off_t)u->off) ==
				     (ssize_t)u->old_len,
			     "pwrite");
		f->size = u->old_size;
		return;
	}
	if (from < u->old_len)
		must(pwrite(f->fd, u->old + from, u->old_len - from, (off_t)(u->off + from)) ==
			     (ssize_t)(u->old_len - from),
		     "pwrite");
	uint64_t keep = u->off + from; /* the file keeps what was written below this */
	uint64_t size = u->off + u->len > u->old_size
				? (keep > u->old_size && from ? keep : u->old_size)
				: f->size;
	must(ftruncate(f->fd, (off_t)size) == 0, "ftruncate");
	f->size = size;
}

void
kt_sim_power_cut(kt_sim *s, enum kt_cut_mode mode)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nfiles; i++) {
		sim_file *f = &s->files[i];
		if (!f->nu)
			continue;
		s->st.files_restored++;
		/* tearing: half the time all unsynced writes, the last torn; else a prefix */
		uint64_t r = kt_rng_next(&s->rng);
		size_t keep = mode != KT_CUT_TEAR ? 0
			      : r % 2		  ? f->nu
						  : (size_t)((r >> 1) % (f->nu + 1));
		for (size_t k = f->nu; k > keep; k--)
			undo_one(f, &f->u[k - 1], 0);
		if (keep == 0)
			continue;
		const undo *last = &f->u[keep - 1];
		if (last->kind != U_WRITE)
			continue;
		/* Tear it: keep the bytes below a sector boundary inside the write. */
		uint64_t first_b = (last->off / SECTOR + 1) * SECTOR;
		uint64_t end = last->off + last->len;
		if (first_b >= end)
			continue;
		uint64_t nb = (end - first_b + SECTOR - 1) / SECTOR;
		uint64_t b = first_b + (kt_rng_next(&s->rng) % nb) * SECTOR;
		undo_one(f, last, b - last->off);
		s->st.torn++;
	}
	for (size_t k = s->nops; k > 0; k--) {
		nsop *o = &s->ops[k - 1];
		s->st.entries_reverted++;
		switch (o->kind) {
		case N_CREATE:
			must(unlink(o->path) == 0 || errno == ENOENT, "unlink");
			break;
		case N_RENAME:
			must(rename(o->path2, o->path) == 0, "rename back");
			if (o->grave) {
				must(rename(o->grave, o->path2) == 0, "restore replaced");
				free(o->grave);
				o->grave = NULL;
			}
			break;
		case N_UNLINK:
			must(rename(o->grave, o->path) == 0, "restore unlinked");
			free(o->grave);
			o->grave = NULL;
			break;
		}
	}
	forget(s);
	pthread_mutex_unlock(&s->lock);
}

void
kt_sim_reset(kt_sim *s)
{
	pthread_mutex_lock(&s->lock);
	forget(s);
	pthread_mutex_unlock(&s->lock);
}

void
kt_sim_get_stats(kt_sim *s, kt_sim_stats *st)
{
	pthread_mutex_lock(&s->lock);
	*st = s->st;
	st->calls = s->calls;
	pthread_mutex_unlock(&s->lock);
}
