/*
 * log_append.c -- benchmark of the log engine's durable append path against raw
 * write()+fdatasync() on the same filesystem.
 *
 * For each event size (data payload bytes) and each number of concurrent appending threads,
 * a fresh log (fsync_mode always) is opened in its own subdirectory and every thread appends
 * batches of exactly one event with kp_log_append for the duration, timing each call. The
 * log's statistics before and after give the encoded bytes, the group commits and the syncs.
 * Each thread builds its batch once and appends it again and again. The threads start
 * 250 ms after the open, which gives the zero-fill thread time to fill its first
 * prealloc_bytes, so the window measures an open log in its steady state.
 * Then, on the same filesystem, one thread writes the same bytes with write()+fdatasync() at
 * kappa's average group size, for the same duration: (a) appending to a growing file and
 * (b) overwriting a region that was zero-filled and fdatasync'ed first (the stronger
 * baseline, used as "baseline" in the JSON); its per-sync latency is that of one
 * write()+fdatasync() pair. Last, 256 MiB written in 1 MiB write() calls and one fdatasync
 * give the large sequential figure.
 *
 * Output: a human-readable table on stdout, then one JSON object per figure, one per line,
 * and nothing after them. Progress goes to stderr while measuring. MB = 10^6 bytes;
 * latencies are in microseconds.
 *
 * Usage: log_append [--dir DIR] [--seconds S] [--quick] [--prealloc BYTES]
 *                   [--threads 1,8,64] [--sizes 100,1024]
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "kappa.h"
#include "log/batch.h"
#include "log/log.h"

#define MAX_LIST 16
#define SEQ_TOTAL (256u << 20)
#define SEQ_CHUNK (1u << 20)
#define ZERO_MIN (8u << 20)
#define ZERO_MAX (256u << 20)
#define SETTLE_NS 250000000u /* after kp_log_open, before the threads start */

/* A growable array of latencies in nanoseconds. */
typedef struct lat_vec {
	uint64_t *v;
	size_t n, cap;
} lat_vec;

/* One appending thread. */
typedef struct worker {
	pthread_t thread;
	int tid;
	kp_log *log;
	const kp_batch_limits *limits;
	size_t event_bytes;
	pthread_barrier_t *start;
	atomic_int *stop;
	lat_vec lat;
	int rc; /* first append error, or KAPPA_OK */
	kappa_err err;
} worker;

/* Results of one raw write()+fdatasync() run. */
typedef struct raw_result {
	double mb_per_s;
	double p50_us, p99_us;
	uint64_t syncs;
} raw_result;

/* Results of one configuration: kappa and its two raw baselines. */
typedef struct config_result {
	size_t event_bytes;
	int threads;
	double seconds;
	uint64_t events, bytes, groups, syncs, appends, sync_ns, rolls, prealloc_waits;
	double events_per_s, mb_per_s, p50_us, p99_us, group_bytes, batches_per_group;
	size_t raw_batch;
	raw_result grow, zero;
} config_result;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("log_append: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static uint64_t
mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
sleep_ns(uint64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void
lat_push(lat_vec *l, uint64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		uint64_t *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			die("out of memory for latencies");
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = ns;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile (0 < p <= 1) of sorted 'v', in microseconds. */
static double
percentile_us(const uint64_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	size_t rank = (size_t)ceil(p * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)v[rank - 1] / 1000.0;
}

static double
ratio(double x, double base)
{
	return base > 0 ? x / base : 0;
}

/* ---- options ------------------------------------------------------------------------ */

/* Parse a byte count with an optional k/m/g suffix (powers of 1024). */
static uint64_t
parse_bytes(const char *s, const char *what)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		die("bad %s '%s'", what, s);
	unsigned long long mul = 1;
	switch (*end) {
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
		die("bad %s '%s'", what, s);
	return (uint64_t)(v * mul);
}

/* Parse a comma-separated list of positive numbers into 'out'; returns how many. */
static size_t
parse_list(const char *s, uint64_t *out, const char *what)
{
	char tmp[256];
	size_t n = 0;
	if (strlen(s) >= sizeof(tmp))
		die("%s list too long", what);
	strcpy(tmp, s);
	char *save = NULL;
	for (char *tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == MAX_LIST)
			die("at most %d %s", MAX_LIST, what);
		out[n] = parse_bytes(tok, what);
		if (out[n] == 0)
			die("%s must be positive", what);
		n++;
	}
	if (n == 0)
		die("empty %s list", what);
	return n;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: log_append [--dir DIR] [--seconds S] [--quick] [--prealloc BYTES]\n"
		   "                  [--threads 1,8,64] [--sizes 100,1024]\n");
}

/* ---- files -------------------------------------------------------------------------- */

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	if (remove(path) < 0 && errno != ENOENT)
		fprintf(stderr, "log_append: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void
rm_tree(const char *path)
{
	nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *
fs_name(const char *dir, int *is_tmpfs)
{
	struct statfs sf;
	*is_tmpfs = 0;
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
		*is_tmpfs = 1;
		return "tmpfs";
	case 0x858458f6:
		*is_tmpfs = 1;
		return "ramfs";
	default:
		return "other";
	}
}

static void
write_all(int fd, const void *p, size_t n, const char *path)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("write %s: %s", path, strerror(errno));
		}
		c += w;
		n -= (size_t)w;
	}
}

static void
datasync(int fd, const char *path)
{
	if (fdatasync(fd) < 0)
		die("fdatasync %s: %s", path, strerror(errno));
}

/* Fill 'p' with non-zero pseudo-random bytes. */
static void
fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed | 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)(x | 1);
	}
}

/* ---- kappa -------------------------------------------------------------------------- */

static void *
worker_main(void *arg)
{
	worker *w = arg;
	char stream[32];
	kp_batch b;
	uint8_t *data = malloc(w->event_bytes);
	if (!data)
		die("out of memory for event data");
	fill_pattern(data, w->event_bytes, (uint32_t)w->tid + 1);
	snprintf(stream, sizeof(stream), "bench-%d", w->tid);

	kp_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.stream = (kp_bytes){(const uint8_t *)stream, strlen(stream)};
	ev.type = (kp_bytes){(const uint8_t *)"Bench", 5};
	ev.data = (kp_bytes){data, w->event_bytes};
	/* One batch per thread, built once: the log seals its header on every append, so the
	 * same batch can be appended again once kp_log_append returned. */
	w->rc = kp_batch_init(&b, w->limits, NULL, 0, &w->err);
	if (w->rc == KAPPA_OK) {
		w->rc = kp_batch_add(&b, &ev, &w->err);
		if (w->rc != KAPPA_OK)
			kp_batch_release(&b);
	}

	pthread_barrier_wait(w->start);
	if (w->rc != KAPPA_OK) {
		free(data);
		return NULL;
	}
	while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
		uint64_t pos, t0 = mono_ns();
		int rc = kp_log_append(w->log, &b, &pos, &w->err);
		uint64_t t1 = mono_ns();
		if (rc != KAPPA_OK) {
			w->rc = rc;
			break;
		}
		lat_push(&w->lat, t1 - t0);
	}
	kp_batch_release(&b);
	free(data);
	return NULL;
}

static void
run_kappa(const char *dir, const kp_log_options *o, config_result *r)
{
	kp_log *log;
	kappa_err err;
	int rc = kp_log_open(dir, o, &log, &err);
	if (rc != KAPPA_OK)
		die("kp_log_open %s: %s (%s)", dir, err.msg, kappa_strerror(rc));

	int n = r->threads;
	worker *ws = calloc((size_t)n, sizeof(*ws));
	if (!ws)
		die("out of memory for threads");
	pthread_barrier_t start;
	atomic_int stop = 0;
	pthread_barrier_init(&start, NULL, (unsigned)n + 1);
	for (int i = 0; i < n; i++) {
		ws[i].tid = i;
		ws[i].log = log;
		ws[i].limits = &o->limits;
		ws[i].event_bytes = r->event_bytes;
		ws[i].start = &start;
		ws[i].stop = &stop;
		if ((rc = pthread_create(&ws[i].thread, NULL, worker_main, &ws[i])) != 0)
			die("pthread_create: %s", strerror(rc));
	}

	/* Let the log settle (the zero-fill thread fills its first prealloc_bytes right after
	 * the open), so the window measures the steady state of a log that is already open. */
	sleep_ns(SETTLE_NS);
	kp_log_stats before, after;
	kp_log_get_stats(log, &before);
	pthread_barrier_wait(&start);
	uint64_t t0 = mono_ns();
	sleep_ns((uint64_t)(r->seconds * 1e9));
	atomic_store(&stop, 1);
	for (int i = 0; i < n; i++)
		pthread_join(ws[i].thread, NULL);
	uint64_t t1 = mono_ns();
	kp_log_get_stats(log, &after);
	pthread_barrier_destroy(&start);

	size_t total = 0;
	for (int i = 0; i < n; i++) {
		if (ws[i].rc != KAPPA_OK)
			die("thread %d: %s (%s)", i, ws[i].err.msg, kappa_strerror(ws[i].rc));
		total += ws[i].lat.n;
	}
	uint64_t *all = malloc((total ? total : 1) * sizeof(*all));
	if (!all)
		die("out of memory for latencies");
	size_t k = 0;
	for (int i = 0; i < n; i++) {
		if (ws[i].lat.n)
			memcpy(all + k, ws[i].lat.v, ws[i].lat.n * sizeof(*all));
		k += ws[i].lat.n;
		free(ws[i].lat.v);
	}
	free(ws);
	qsort(all, total, sizeof(*all), cmp_u64);

	double secs = (double)(t1 - t0) / 1e9;
	r->appends = after.appends - before.appends;
	r->events = after.events - before.events;
	r->bytes = after.bytes - before.bytes;
	r->groups = after.groups - before.groups;
	r->syncs = after.syncs - before.syncs;
	r->sync_ns = after.sync_ns_total - before.sync_ns_total;
	r->rolls = after.rolls - before.rolls;
	r->prealloc_waits = after.prealloc_waits - before.prealloc_waits;
	if (r->appends != total)
		fprintf(stderr, "log_append: note: %" PRIu64 " batches in stats, %zu timed\n",
			r->appends, total);
	r->events_per_s = (double)r->events / secs;
	r->mb_per_s = (double)r->bytes / secs / 1e6;
	r->p50_us = percentile_us(all, total, 0.50);
	r->p99_us = percentile_us(all, total, 0.99);
	r->group_bytes = r->groups ? (double)r->bytes / (double)r->groups : 0;
	r->batches_per_group = r->groups ? (double)r->appends / (double)r->groups : 0;
	free(all);
	kp_log_close(log);
}

/* ---- raw baselines ------------------------------------------------------------------ */

/* One thread: write() 'batch' bytes then fdatasync(), repeatedly for 'seconds'. With
 * 'zero_bytes' == 0 the file grows; otherwise a region of that size is zero-filled and
 * fdatasync'ed first, then overwritten from its start (wrapping around at its end). */
static void
run_raw(const char *path, size_t batch, double seconds, uint64_t zero_bytes, raw_result *r)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	uint8_t *buf = malloc(batch > SEQ_CHUNK ? batch : SEQ_CHUNK);
	if (!buf)
		die("out of memory for a write buffer");

	uint64_t region = 0;
	if (zero_bytes) {
		region = zero_bytes / batch * batch;
		if (region < batch)
			region = batch;
		memset(buf, 0, SEQ_CHUNK);
		for (uint64_t done = 0; done < region;) {
			size_t n = region - done < SEQ_CHUNK ? (size_t)(region - done) : SEQ_CHUNK;
			write_all(fd, buf, n, path);
			done += n;
		}
		datasync(fd, path);
		if (lseek(fd, 0, SEEK_SET) < 0)
			die("lseek %s: %s", path, strerror(errno));
	}
	fill_pattern(buf, batch, 7);

	lat_vec lat = {NULL, 0, 0};
	uint64_t bytes = 0, off = 0;
	uint64_t t0 = mono_ns(), end = t0 + (uint64_t)(seconds * 1e9), now = t0;
	while (now < end) {
		if (region && off + batch > region) {
			if (lseek(fd, 0, SEEK_SET) < 0)
				die("lseek %s: %s", path, strerror(errno));
			off = 0;
		}
		uint64_t s = mono_ns();
		write_all(fd, buf, batch, path);
		datasync(fd, path);
		now = mono_ns();
		lat_push(&lat, now - s);
		bytes += batch;
		off += batch;
	}
	qsort(lat.v, lat.n, sizeof(*lat.v), cmp_u64);
	r->mb_per_s = (double)bytes / ((double)(now - t0) / 1e9) / 1e6;
	r->p50_us = percentile_us(lat.v, lat.n, 0.50);
	r->p99_us = percentile_us(lat.v, lat.n, 0.99);
	r->syncs = lat.n;
	free(lat.v);
	free(buf);
	close(fd);
	unlink(path);
}

/* 256 MiB in 1 MiB write() calls, then one fdatasync. Returns MB/s. */
static double
run_seq(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	uint8_t *buf = malloc(SEQ_CHUNK);
	if (!buf)
		die("out of memory for a write buffer");
	fill_pattern(buf, SEQ_CHUNK, 11);
	uint64_t t0 = mono_ns();
	for (unsigned i = 0; i < SEQ_TOTAL / SEQ_CHUNK; i++)
		write_all(fd, buf, SEQ_CHUNK, path);
	datasync(fd, path);
	uint64_t t1 = mono_ns();
	free(buf);
	close(fd);
	unlink(path);
	return (double)SEQ_TOTAL / ((double)(t1 - t0) / 1e9) / 1e6;
}

/* ---- output ------------------------------------------------------------------------- */

static void
print_table(const config_result *rs, size_t n, double seq_mb, const char *dir, const char *fs,
	    int is_tmpfs, double seconds, const kp_log_options *o)
{
	printf("kappa log_append: fsync=always, 1 event per batch, %.1f s per configuration\n",
	       seconds);
	printf("dir %s (%s%s), prealloc_bytes %" PRIu64 ", %ld CPUs online\n", dir, fs,
	       is_tmpfs ? ": NOT A DISK, fsync is free" : "", o->prealloc_bytes,
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("MB = 10^6 bytes of encoded batches; latencies in microseconds\n\n");

	printf("kappa (kp_log_append from N threads)\n");
	printf("%6s %4s %10s %8s %9s %9s %9s %9s %9s %9s %6s\n", "event", "thr", "events/s", "MB/s",
	       "p50 us", "p99 us", "group B", "batch/grp", "syncs/s", "sync us", "pa-wt");
	for (size_t i = 0; i < n; i++) {
		const config_result *r = &rs[i];
		printf("%6zu %4d %10.0f %8.2f %9.1f %9.1f %9.0f %9.2f %9.0f %9.1f %6" PRIu64 "\n",
		       r->event_bytes, r->threads, r->events_per_s, r->mb_per_s, r->p50_us,
		       r->p99_us, r->group_bytes, r->batches_per_group,
		       (double)r->syncs / r->seconds,
		       r->syncs ? (double)r->sync_ns / (double)r->syncs / 1000.0 : 0,
		       r->prealloc_waits);
	}

	printf("\nraw (1 thread, write()+fdatasync() of kappa's average group size)\n");
	printf("%6s %4s %8s | %8s %9s %9s | %8s %9s %9s\n", "event", "thr", "batch B", "grow MB/s",
	       "p50 us", "p99 us", "zero MB/s", "p50 us", "p99 us");
	for (size_t i = 0; i < n; i++) {
		const config_result *r = &rs[i];
		printf("%6zu %4d %8zu | %9.2f %9.1f %9.1f | %9.2f %9.1f %9.1f\n", r->event_bytes,
		       r->threads, r->raw_batch, r->grow.mb_per_s, r->grow.p50_us, r->grow.p99_us,
		       r->zero.mb_per_s, r->zero.p50_us, r->zero.p99_us);
	}

	printf("\nratios (kappa / raw)\n");
	printf("%6s %4s %12s %12s %12s %12s\n", "event", "thr", "MB/s v zero", "MB/s v grow",
	       "p50 v zero", "p50 v grow");
	for (size_t i = 0; i < n; i++) {
		const config_result *r = &rs[i];
		printf("%6zu %4d %12.3f %12.3f", r->event_bytes, r->threads,
		       ratio(r->mb_per_s, r->zero.mb_per_s), ratio(r->mb_per_s, r->grow.mb_per_s));
		if (r->threads == 1)
			printf(" %12.3f %12.3f\n", ratio(r->p50_us, r->zero.p50_us),
			       ratio(r->p50_us, r->grow.p50_us));
		else
			printf(" %12s %12s\n", "-", "-");
	}
	printf("\nraw sequential: %u MiB in %u KiB write() calls + 1 fdatasync: %.1f MB/s\n\n",
	       SEQ_TOTAL >> 20, SEQ_CHUNK >> 10, seq_mb);
}

static void
json_metric(const config_result *r, const char *metric, double value, const char *unit)
{
	printf("{\"bench\":\"log_append\",\"metric\":\"%s\",\"threads\":%d,\"event_bytes\":%zu,"
	       "\"value\":%.3f,\"unit\":\"%s\"}\n",
	       metric, r->threads, r->event_bytes, value, unit);
}

static void
json_compared(const config_result *r, const char *metric, double value, double base,
	      double base_grow, const char *unit)
{
	printf("{\"bench\":\"log_append\",\"metric\":\"%s\",\"threads\":%d,\"event_bytes\":%zu,"
	       "\"value\":%.3f,\"baseline\":%.3f,\"ratio\":%.3f,\"baseline_grow\":%.3f,"
	       "\"ratio_grow\":%.3f,\"unit\":\"%s\"}\n",
	       metric, r->threads, r->event_bytes, value, base, ratio(value, base), base_grow,
	       ratio(value, base_grow), unit);
}

static void
print_json(const config_result *rs, size_t n, double seq_mb)
{
	for (size_t i = 0; i < n; i++) {
		const config_result *r = &rs[i];
		json_metric(r, "events_per_s", r->events_per_s, "events/s");
		json_compared(r, "mb_per_s", r->mb_per_s, r->zero.mb_per_s, r->grow.mb_per_s,
			      "MB/s");
		if (r->threads == 1)
			json_compared(r, "p50_us", r->p50_us, r->zero.p50_us, r->grow.p50_us, "us");
		else
			json_metric(r, "p50_us", r->p50_us, "us");
		json_metric(r, "p99_us", r->p99_us, "us");
		json_metric(r, "group_bytes", r->group_bytes, "bytes");
		json_metric(r, "batches_per_group", r->batches_per_group, "batches");
		json_metric(r, "raw_grow_mb_per_s", r->grow.mb_per_s, "MB/s");
		json_metric(r, "raw_zero_mb_per_s", r->zero.mb_per_s, "MB/s");
	}
	printf("{\"bench\":\"log_append\",\"metric\":\"raw_seq_mb_per_s\",\"threads\":1,"
	       "\"value\":%.3f,\"unit\":\"MB/s\"}\n",
	       seq_mb);
}

/* ---- main --------------------------------------------------------------------------- */

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"dir", required_argument, NULL, 'd'},
		{"seconds", required_argument, NULL, 's'},
		{"quick", no_argument, NULL, 'q'},
		{"prealloc", required_argument, NULL, 'p'},
		{"threads", required_argument, NULL, 't'},
		{"sizes", required_argument, NULL, 'z'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *dir_opt = NULL;
	double seconds = 3;
	int have_prealloc = 0;
	uint64_t prealloc = 0;
	uint64_t threads[MAX_LIST] = {1, 8, 64}, sizes[MAX_LIST] = {100, 1024};
	size_t nthreads = 3, nsizes = 2;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'd':
			dir_opt = optarg;
			break;
		case 's':
			seconds = strtod(optarg, &end);
			if (*end || !(seconds > 0) || seconds > 3600)
				die("bad --seconds '%s'", optarg);
			break;
		case 'q':
			seconds = 1;
			break;
		case 'p':
			prealloc = parse_bytes(optarg, "--prealloc");
			have_prealloc = 1;
			break;
		case 't':
			nthreads = parse_list(optarg, threads, "threads");
			break;
		case 'z':
			nsizes = parse_list(optarg, sizes, "sizes");
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	for (size_t i = 0; i < nthreads; i++)
		if (threads[i] > 4096)
			die("at most 4096 threads");

	char base[PATH_MAX];
	int own_dir = 0;
	if (dir_opt) {
		if (strlen(dir_opt) >= sizeof(base) - 64)
			die("--dir path too long");
		strcpy(base, dir_opt);
		if (mkdir(base, 0755) == 0)
			own_dir = 1; /* created here: removed at the end like the default */
		else if (errno != EEXIST)
			die("mkdir %s: %s", base, strerror(errno));
	} else {
		strcpy(base, "/var/tmp/kappa-bench-XXXXXX");
		if (!mkdtemp(base))
			die("mkdtemp %s: %s", base, strerror(errno));
		own_dir = 1;
	}
	int is_tmpfs;
	const char *fs = fs_name(base, &is_tmpfs);
	if (is_tmpfs)
		fprintf(stderr,
			"log_append: warning: %s is on %s: fsync costs nothing there, "
			"the figures do not describe a disk\n",
			base, fs);

	kp_log_options o;
	kp_log_options_init(&o);
	o.fsync_mode = KP_FSYNC_ALWAYS;
	if (have_prealloc)
		o.prealloc_bytes = prealloc;

	size_t n = nthreads * nsizes;
	config_result *rs = calloc(n, sizeof(*rs));
	if (!rs)
		die("out of memory");
	char path[PATH_MAX + 64]; /* base (< PATH_MAX) + a short name */
	size_t k = 0;
	for (size_t si = 0; si < nsizes; si++) {
		for (size_t ti = 0; ti < nthreads; ti++, k++) {
			config_result *r = &rs[k];
			r->event_bytes = (size_t)sizes[si];
			r->threads = (int)threads[ti];
			r->seconds = seconds;
			fprintf(stderr, "log_append: %zu B x %d threads: kappa...", r->event_bytes,
				r->threads);
			snprintf(path, sizeof(path), "%s/log-%zu-%d", base, r->event_bytes,
				 r->threads);
			rm_tree(path);
			run_kappa(path, &o, r);
			rm_tree(path);

			r->raw_batch = (size_t)llround(r->group_bytes);
			if (r->raw_batch == 0)
				r->raw_batch = 1;
			fprintf(stderr, " raw grow...");
			snprintf(path, sizeof(path), "%s/raw-grow", base);
			run_raw(path, r->raw_batch, seconds, 0, &r->grow);
			/* Zero-fill about twice what kappa wrote (the overwrite wraps around). */
			uint64_t zero = 2 * r->bytes;
			zero = zero < ZERO_MIN ? ZERO_MIN : zero > ZERO_MAX ? ZERO_MAX : zero;
			fprintf(stderr, " raw zero...");
			snprintf(path, sizeof(path), "%s/raw-zero", base);
			run_raw(path, r->raw_batch, seconds, zero, &r->zero);
			fprintf(stderr, " %.2f MB/s (grow %.2f, zero %.2f)\n", r->mb_per_s,
				r->grow.mb_per_s, r->zero.mb_per_s);
		}
	}
	fprintf(stderr, "log_append: sequential %u MiB...\n", SEQ_TOTAL >> 20);
	snprintf(path, sizeof(path), "%s/raw-seq", base);
	double seq_mb = run_seq(path);
	if (own_dir)
		rm_tree(base);

	fflush(stderr);
	print_table(rs, n, seq_mb, base, fs, is_tmpfs, seconds, &o);
	print_json(rs, n, seq_mb);
	free(rs);
	return 0;
}
