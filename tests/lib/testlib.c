/*
 * testlib.c -- helpers shared by kappa's test programs (see testlib.h).
 */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kappa.h"

static void
die(const char *what)
{
	fprintf(stderr, "testlib: %s\n", what);
	abort();
}

char *
kt_tmpdir(const char *tag)
{
	const char *base = getenv("TEST_TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	char *p = malloc(4096);
	if (!p)
		die("out of memory");
	snprintf(p, 4096, "%s/kt-%s-XXXXXX", base, tag);
	if (!mkdtemp(p))
		die("mkdtemp failed");
	return p;
}

void
kt_rmdir(char *dir)
{
	if (!dir)
		return;
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "testlib: cannot remove %s\n", dir);
	free(dir);
}

static uint64_t
mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

uint8_t *
kt_data(uint64_t seed, int i, size_t len)
{
	uint8_t *d = malloc(len);
	if (!d || len < 16)
		die("bad data length");
	int n = snprintf((char *)d, len, "{\"s\":%" PRIu64 ",\"i\":%d,\"f\":\"", seed % 100000, i);
	uint64_t x = mix(seed * 1000003u + (uint64_t)i);
	for (size_t k = (size_t)n; k < len; k++) {
		x = mix(x);
		d[k] = (uint8_t)('a' + x % 26);
	}
	d[len - 2] = '"';
	d[len - 1] = '}';
	return d;
}

void
kt_batch(kp_batch *b, const kp_log_options *o, const char *stream, int n, size_t data_len,
	 uint64_t seed)
{
	kappa_err err;
	if (kp_batch_init(b, &o->limits, NULL, 0, &err))
		die(err.msg);
	for (int i = 0; i < n; i++) {
		uint8_t *d = kt_data(seed, i, data_len);
		kp_event ev = {0};
		ev.version = (uint64_t)i;
		ev.stream = (kp_bytes){(const uint8_t *)stream, strlen(stream)};
		ev.type = (kp_bytes){(const uint8_t *)"TestEvent", 9};
		ev.data = (kp_bytes){d, data_len};
		if (kp_batch_add(b, &ev, &err))
			die(err.msg);
		free(d);
	}
}

/* ---- fault injection ------------------------------------------------------------------ */

static int
hit(const kp_io *io, enum kt_op op)
{
	kt_faults *f = io->ctx;
	long n = ++f->calls[op];
	if (f->fail_at[op] && (n == f->fail_at[op] || (f->persist && n > f->fail_at[op])))
		return f->fail_errno[op];
	return 0;
}

#define PX kp_io_posix()

static int
f_open(const kp_io *io, const char *path, int flags, mode_t mode)
{
	int e = hit(io, KT_OPEN);
	return e ? -e : PX->open(PX, path, flags, mode);
}
static int
f_close(const kp_io *io, int fd)
{
	(void)io;
	return PX->close(PX, fd);
}
static ssize_t
f_pread(const kp_io *io, int fd, void *buf, size_t n, off_t off)
{
	int e = hit(io, KT_PREAD);
	return e ? -e : PX->pread(PX, fd, buf, n, off);
}
static ssize_t
f_pwritev(const kp_io *io, int fd, const struct iovec *iov, int cnt, off_t off)
{
	kt_faults *f = io->ctx;
	int e = hit(io, KT_PWRITEV);
	if (e && f->short_write && iov[0].iov_len > 1) {
		f->short_write = 0;
		f->fail_at[KT_PWRITEV]++; /* fail the next call instead */
		struct iovec half = {iov[0].iov_base, iov[0].iov_len / 2};
		return PX->pwritev(PX, fd, &half, 1, off);
	}
	return e ? -e : PX->pwritev(PX, fd, iov, cnt, off);
}
static int
f_fdatasync(const kp_io *io, int fd)
{
	int e = hit(io, KT_FDATASYNC);
	return e ? -e : PX->fdatasync(PX, fd);
}
static int
f_fsync(const kp_io *io, int fd)
{
	int e = hit(io, KT_FSYNC);
	return e ? -e : PX->fsync(PX, fd);
}
static int
f_ftruncate(const kp_io *io, int fd, off_t len)
{
	int e = hit(io, KT_FTRUNCATE);
	return e ? -e : PX->ftruncate(PX, fd, len);
}
static int
f_fallocate(const kp_io *io, int fd, off_t off, off_t len)
{
	(void)io;
	return PX->fallocate(PX, fd, off, len);
}
static int
f_rename(const kp_io *io, const char *a, const char *b)
{
	int e = hit(io, KT_RENAME);
	return e ? -e : PX->rename(PX, a, b);
}
static int
f_unlink(const kp_io *io, const char *p)
{
	int e = hit(io, KT_UNLINK);
	return e ? -e : PX->unlink(PX, p);
}
static int
f_fstat_size(const kp_io *io, int fd, uint64_t *size)
{
	(void)io;
	return PX->fstat_size(PX, fd, size);
}

void
kt_faults_init(kt_faults *f)
{
	memset(f, 0, sizeof(*f));
	f->io = (kp_io){f_open,	     f_close,	  f_pread,  f_pwritev, f_fdatasync,  f_fsync,
			f_ftruncate, f_fallocate, f_rename, f_unlink,  f_fstat_size, f};
}

void
kt_faults_arm(kt_faults *f, enum kt_op op, long nth, int eno)
{
	f->fail_at[op] = f->calls[op] + nth;
	f->fail_errno[op] = eno;
}

/* ---- reading -------------------------------------------------------------------------- */

size_t
kt_read_all(kp_log *log, uint64_t from, kt_event **out)
{
	kp_log_iter *it;
	kappa_err err;
	if (kp_log_iter_open(log, from, &it, &err))
		die(err.msg);
	size_t n = 0, cap = 0;
	kt_event *v = NULL;
	kp_event ev;
	int rc;
	while ((rc = kp_log_iter_next(it, &ev, &err)) == 1) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = realloc(v, cap * sizeof(*v));
			if (!v)
				die("out of memory");
		}
		kt_event *e = &v[n++];
		e->position = ev.position;
		e->version = ev.version;
		e->stream = strndup((const char *)ev.stream.p, ev.stream.len);
		e->type = strndup((const char *)ev.type.p, ev.type.len);
		e->data = malloc(ev.data.len ? ev.data.len : 1);
		memcpy(e->data, ev.data.p, ev.data.len);
		e->data_len = ev.data.len;
	}
	if (rc < 0) {
		fprintf(stderr, "testlib: read failed: %s\n", err.msg);
		abort();
	}
	kp_log_iter_close(it);
	*out = v;
	return n;
}

void
kt_free_events(kt_event *ev, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(ev[i].stream);
		free(ev[i].type);
		free(ev[i].data);
	}
	free(ev);
}

void
kt_flip_byte(const char *path, uint64_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c;
	if (fd < 0 || pread(fd, &c, 1, (off_t)off) != 1)
		die("flip: cannot read");
	c ^= 0xff;
	if (pwrite(fd, &c, 1, (off_t)off) != 1)
		die("flip: cannot write");
	close(fd);
}

void
kt_truncate(const char *path, uint64_t len)
{
	if (truncate(path, (off_t)len) != 0)
		die("truncate failed");
}

uint64_t
kt_file_size(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		die("stat failed");
	return (uint64_t)st.st_size;
}

char *
kt_seg_file(const char *dir, uint64_t first, const char *ext)
{
	char *p = malloc(4200);
	if (!p)
		die("out of memory");
	snprintf(p, 4200, "%s/%020" PRIu64 ".%s", dir, first, ext);
	return p;
}
