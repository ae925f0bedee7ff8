/*
 * benchlib.c -- helpers shared by kappa's benchmark programs (see benchlib.h): one copy of
 * the error exit, clocks, latency vectors, shared options, thread team and benchmark
 * directory code that the programs in bench/ need.
 */
#include "benchlib.h"

#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

static const char *prog_name = "bench";

void
kb_init(const char *name)
{
	const char *slash = strrchr(name, '/');
	prog_name = slash ? slash + 1 : name;
}

void
kb_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", prog_name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

void *
kb_calloc(size_t n, size_t size, const char *what)
{
	void *p = calloc(n, size);
	if (!p && what)
		kb_die("out of memory for %s", what);
	if (!p)
		kb_die("out of memory");
	return p;
}

/* ---- clocks ------------------------------------------------------------------------- */

uint64_t
kb_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
kb_sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* ---- latencies ---------------------------------------------------------------------- */

/* Make room for 'cap' latencies in 'l'. */
static void
lat_grow(kb_lat *l, size_t cap)
{
	uint64_t *v = realloc(l->v, cap * sizeof(*v));
	if (!v)
		kb_die("out of memory for latencies");
	l->v = v;
	l->cap = cap;
}

void
kb_lat_push(kb_lat *l, uint64_t ns)
{
	if (l->n == l->cap)
		lat_grow(l, l->cap ? l->cap * 2 : 4096);
	l->v[l->n++] = ns;
}

void
kb_lat_merge(kb_lat *dst, kb_lat *src)
{
	if (!dst->v) { /* nothing to keep: take over src's array */
		*dst = *src;
		*src = (kb_lat){NULL, 0, 0};
		return;
	}
	size_t need = dst->n + src->n;
	if (need > dst->cap)
		lat_grow(dst, need > dst->cap * 2 ? need : dst->cap * 2);
	if (src->n)
		memcpy(dst->v + dst->n, src->v, src->n * sizeof(*src->v));
	dst->n = need;
	kb_lat_free(src);
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

void
kb_lat_sort(kb_lat *l)
{
	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), cmp_u64);
}

void
kb_lat_free(kb_lat *l)
{
	free(l->v);
	*l = (kb_lat){NULL, 0, 0};
}

double
kb_percentile_us(const kb_lat *l, double p)
{
	if (l->n == 0)
		return 0;
	size_t rank = (size_t)ceil(p * (double)l->n);
	if (rank < 1)
		rank = 1;
	if (rank > l->n)
		rank = l->n;
	return (double)l->v[rank - 1] / 1000.0;
}

double
kb_ratio(double x, double base)
{
	return base > 0 ? x / base : 0;
}

/* ---- options ------------------------------------------------------------------------ */

uint64_t
kb_parse_u64(const char *s, const char *what, bool suffixes)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		kb_die("bad %s '%s'", what, s);
	unsigned long long mul = 1;
	switch (suffixes ? *end : '\0') {
	case 'k':
	case 'K':
		mul = 1ull << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1ull << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1ull << 30;
		end++;
		break;
	default:
		break;
	}
	if (*end != '\0' || v > UINT64_MAX / mul)
		kb_die("bad %s '%s'", what, s);
	return (uint64_t)(v * mul);
}

size_t
kb_parse_list(const char *s, uint64_t *out, size_t max, const char *what, bool suffixes)
{
	char tmp[256];
	size_t n = 0;
	if (strlen(s) >= sizeof(tmp))
		kb_die("%s list too long", what);
	strcpy(tmp, s);
	char *save = NULL;
	for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == max)
			kb_die("at most %zu %s", max, what);
		out[n] = kb_parse_u64(tok, what, suffixes);
		if (out[n] == 0)
			kb_die("%s must be positive", what);
		n++;
	}
	if (n == 0)
		kb_die("empty %s list", what);
	return n;
}

double
kb_parse_seconds(const char *s)
{
	char *end;
	double seconds = strtod(s, &end);
	if (*end || !(seconds > 0) || seconds > 3600)
		kb_die("bad --seconds '%s'", s);
	return seconds;
}

/* Store the shared option 'c' in 'o'; exit on --help and on anything else. */
static void
opts_handle(kb_opts *o, int c, const char *arg, void (*usage)(FILE *f))
{
	switch (c) {
	case 'd':
		o->dir = arg;
		break;
	case 's':
		o->seconds = kb_parse_seconds(arg);
		break;
	case 'q':
		o->seconds = 1;
		break;
	case 't':
		o->nthreads = kb_parse_list(arg, o->threads, KB_MAX_LIST, "threads", o->suffixes);
		break;
	case 'h':
		usage(stdout);
		exit(0);
	default:
		usage(stderr);
		exit(2);
	}
}

void
kb_opts_parse(kb_opts *o, int argc, char **argv, const struct option *longopts,
	      bool (*own)(int c, const char *arg, void *ctx), void *ctx, void (*usage)(FILE *f))
{
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1)
		if (!own || !own(c, optarg, ctx))
			opts_handle(o, c, optarg, usage);
	if (optind != argc) {
		usage(stderr);
		exit(2);
	}
	for (size_t i = 0; i < o->nthreads; i++)
		if (o->threads[i] > KB_MAX_THREADS)
			kb_die("at most %d threads", KB_MAX_THREADS);
}

/* ---- threads ------------------------------------------------------------------------ */

void
kb_team_start(kb_team *t, int n, void *(*fn)(void *), void *args, size_t size)
{
	t->n = n;
	t->threads = kb_calloc((size_t)n, sizeof(*t->threads), "threads");
	pthread_barrier_init(&t->start, NULL, (unsigned)n + 1);
	atomic_init(&t->stop, 0);
	for (int i = 0; i < n; i++) {
		int rc = pthread_create(&t->threads[i], NULL, fn, (char *)args + (size_t)i * size);
		if (rc != 0)
			kb_die("pthread_create: %s", strerror(rc));
	}
}

void
kb_team_wait(kb_team *t)
{
	pthread_barrier_wait(&t->start);
}

uint64_t
kb_team_run(kb_team *t, kp_log *log, double seconds, kp_log_stats *before, kp_log_stats *after)
{
	kb_sleep_ns(KB_SETTLE_NS);
	kp_log_get_stats(log, before);
	pthread_barrier_wait(&t->start);
	uint64_t t0 = kb_mono_ns();
	kb_sleep_ns((uint64_t)(seconds * 1e9));
	atomic_store(&t->stop, 1);
	for (int i = 0; i < t->n; i++)
		pthread_join(t->threads[i], NULL);
	uint64_t t1 = kb_mono_ns();
	kp_log_get_stats(log, after);
	pthread_barrier_destroy(&t->start);
	free(t->threads);
	t->threads = NULL;
	return t1 - t0;
}

/* ---- the benchmark directory -------------------------------------------------------- */

/* The name of the filesystem holding 'dir'; sets *is_tmpfs for tmpfs and ramfs. */
static const char *
fs_name(const char *dir, bool *is_tmpfs)
{
	struct statfs sf;
	*is_tmpfs = false;
	if (statfs(dir, &sf) < 0)
		return "unknown";
	switch ((unsigned long)sf.f_type) {
	case 0xef53:
		return "ext4";
	case 0x58465342:
		return "xfs";
	case 0x9123683e:
		return "btrfs";
	case 0x794c7630:
		return "overlayfs";
	case 0x2fc12fc1:
		return "zfs";
	case 0x01021994:
		*is_tmpfs = true;
		return "tmpfs";
	case 0x858458f6:
		*is_tmpfs = true;
		return "ramfs";
	default:
		return "other";
	}
}

void
kb_bench_dir_create(kb_bench_dir *d, const char *dir_opt)
{
	d->own = false;
	if (dir_opt) {
		if (strlen(dir_opt) >= sizeof(d->path) - 64)
			kb_die("--dir path too long");
		strcpy(d->path, dir_opt);
		if (mkdir(d->path, 0755) == 0)
			d->own = true; /* created here: removed at the end like the default */
		else if (errno != EEXIST)
			kb_die("mkdir %s: %s", d->path, strerror(errno));
	} else {
		strcpy(d->path, "/var/tmp/kappa-bench-XXXXXX");
		if (!mkdtemp(d->path))
			kb_die("mkdtemp %s: %s", d->path, strerror(errno));
		d->own = true;
	}
	d->fs = fs_name(d->path, &d->is_tmpfs);
	if (d->is_tmpfs)
		fprintf(stderr,
			"%s: warning: %s is on %s: fsync costs nothing there, "
			"the figures do not describe a disk\n",
			prog_name, d->path, d->fs);
}

void
kb_bench_dir_remove(const kb_bench_dir *d)
{
	if (d->own)
		kb_rm_tree(d->path);
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		fprintf(stderr, "%s: cannot remove %s: %s\n", prog_name, path, strerror(errno));
	return 0;
}

void
kb_rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}
