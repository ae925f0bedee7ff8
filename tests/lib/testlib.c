/*
 * testlib.c -- helpers shared by kappa's test programs (see testlib.h).
 */
#include "testlib.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
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
	if (kt_rm_rf(dir) != 0)
		fprintf(stderr, "testlib: cannot remove %s\n", dir);
	free(dir);
}

int
kt_rm_rf(const char *path)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd) == 0 ? 0 : -1;
}

static uint64_t
mix(uint64_t x)
{
	return kt_mix64(x + 0x9e3779b97f4a7c15ull);
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

/* ---- numbers, time, strings, files ------------------------------------------------------ */

uint64_t
kt_mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

uint64_t
kt_rng_next(uint64_t *s)
{
	*s += 0x9e3779b97f4a7c15ull;
	return kt_mix64(*s);
}

/* Clock 'c' in microseconds. */
static int64_t
clock_us(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
kt_now_us(void)
{
	return clock_us(CLOCK_MONOTONIC);
}

int64_t
kt_mono_ms(void)
{
	return clock_us(CLOCK_MONOTONIC) / 1000;
}

int64_t
kt_wall_ms(void)
{
	return clock_us(CLOCK_REALTIME) / 1000;
}

void
kt_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

int
kt_streq_null(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

char *
kt_dupn(const char *p, size_t n)
{
	if (!p)
		return NULL;
	char *s = malloc(n + 1);
	if (!s)
		die("out of memory");
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

void *
kt_grow(void *v, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return v;
	size_t c = *cap ? *cap * 2 : 256;
	while (c < need)
		c *= 2;
	void *p = realloc(v, c * size);
	if (!p) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	*cap = c;
	return p;
}

/* ---- kill -9 programs: settings, TAP and problems ---------------------------------------- */

uint64_t
kt_seed_from_env(void)
{
	const char *e = getenv("CRASH_SEED");
	return e && *e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
}

long
kt_crash_rounds(const char *own, long dflt, long divisor, int *explicit_rounds)
{
	const char *e = getenv(own);
	if (explicit_rounds)
		*explicit_rounds = 0;
	if (e && *e) {
		long r = strtol(e, NULL, 10);
		if (explicit_rounds)
			*explicit_rounds = 1;
		return r >= 1 && r <= 100000 ? r : dflt;
	}
	e = getenv("CRASH_ROUNDS");
	if (e && *e) {
		long r = strtol(e, NULL, 10) / divisor;
		return r < 1 ? 1 : r > dflt ? dflt : r;
	}
	return dflt;
}

static int tap_n;		    /* TAP lines printed */
static int cat_failed[KT_MAX_CATS]; /* which categories failed */
static int round_problems;	    /* problems found in the current round */
static char round_details[KT_MAX_DETAILS][512];

void
kt_tap(int ok, const char *fmt, ...)
{
	va_list ap;
	printf("%sok %d - ", ok ? "" : "not ", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

void
kt_tap_plan(void)
{
	printf("1..%d\n", tap_n);
}

void
kt_problem(int cat, const char *fmt, ...)
{
	cat_failed[cat] = 1;
	if (round_problems < KT_MAX_DETAILS) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(round_details[round_problems], sizeof(round_details[0]), fmt, ap);
		va_end(ap);
	}
	round_problems++;
}

void
kt_fail(int cat)
{
	cat_failed[cat] = 1;
}

int
kt_failed(int cat)
{
	return cat_failed[cat];
}

int
kt_all_passed(int ncat)
{
	for (int c = 0; c < ncat; c++)
		if (cat_failed[c])
			return 0;
	return 1;
}

void
kt_round_start(void)
{
	round_problems = 0;
}

int
kt_round_problems(void)
{
	return round_problems;
}

const char *
kt_round_detail(int k)
{
	return round_details[k];
}

void
kt_print_details(void)
{
	for (int k = 0; k < round_problems && k < KT_MAX_DETAILS; k++)
		printf("#   %s\n", round_details[k]);
	if (round_problems > KT_MAX_DETAILS)
		printf("#   ... and %d more\n", round_problems - KT_MAX_DETAILS);
}

void
kt_on_notice(void *ctx, const char *line)
{
	kt_notices *n = ctx;
	n->count++;
	snprintf(n->last, sizeof(n->last), "%s", line);
	if (n->verbose)
		printf("# recovery notice: %s\n", line);
}

/* ---- kill -9 programs: a child reporting through a pipe ---------------------------------- */

pid_t
kt_fork_piped(int *fd)
{
	pid_t self = getpid();
	int fds[2];
	if (pipe(fds) != 0) {
		perror("pipe");
		return -1;
	}
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork");
		return -1;
	}
	if (pid == 0) {
		close(fds[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != self)
			_exit(5);
		*fd = fds[1];
		return 0;
	}
	close(fds[1]);
	fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK);
	*fd = fds[0];
	return pid;
}

void
kt_send(int fd, const void *rec, size_t size)
{
	ssize_t n;
	do
		n = write(fd, rec, size);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)size)
		_exit(4); /* the parent is gone */
}

void
kt_pipe_init(kt_pipe *p, int fd, size_t rec_size, kt_rec_fn on_rec, void *ctx)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->rec_size = rec_size;
	p->on_rec = on_rec;
	p->ctx = ctx;
}

/* Read what is there without blocking, handing each whole record to p->on_rec. */
static void
pipe_drain(kt_pipe *p)
{
	while (!p->eof) {
		ssize_t n = read(p->fd, p->buf + p->len, sizeof(p->buf) - p->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			p->eof = 1;
			return;
		}
		p->len += (size_t)n;
		size_t off = 0;
		for (; p->len - off >= p->rec_size; off += p->rec_size) {
			if (p->on_rec(p, p->buf + off) == 0)
				p->acks++;
			else
				p->errs++;
		}
		memmove(p->buf, p->buf + off, p->len - off);
		p->len -= off;
	}
}

void
kt_pipe_wait(kt_pipe *p, int ms)
{
	if (p->eof)
		return;
	struct pollfd pf = {p->fd, POLLIN, 0};
	if (poll(&pf, 1, ms) < 0 && errno != EINTR) {
		perror("poll");
		exit(1);
	}
	pipe_drain(p);
}

int
kt_kill_child(kt_pipe *p, pid_t pid, int early, int delay_us, int first_ack_ms, int cat)
{
	int64_t t0 = kt_now_us(), deadline;
	if (early) {
		deadline = t0 + delay_us;
	} else {
		while (p->acks == 0 && !p->eof && p->errs == 0 &&
		       kt_now_us() - t0 < (int64_t)first_ack_ms * 1000)
			kt_pipe_wait(p, 100);
		if (p->acks == 0 && !p->eof && p->errs == 0)
			kt_problem(cat, "no acknowledgement within %d ms", first_ack_ms);
		deadline = kt_now_us() + delay_us;
	}
	for (int64_t left; !p->eof && (left = deadline - kt_now_us()) > 0;)
		kt_pipe_wait(p, (int)((left + 999) / 1000));
	kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	while (!p->eof)
		kt_pipe_wait(p, 1000);
	close(p->fd);
	return status;
}
