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
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchlib.h"
#include "kappa.h"
#include "log/batch.h"
#include "log/log.h"

#define SEQ_TOTAL (256u << 20)
#define SEQ_CHUNK (1u << 20)
#define ZERO_MIN (8u << 20)
#define ZERO_MAX (256u << 20)

/* One appending thread. */
typedef struct worker {
	int tid;
	kp_log *log;
	const kp_batch_limits *limits;
	size_t event_bytes;
	kb_team *team;
	kb_lat lat;
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

/* ---- options ------------------------------------------------------------------------ */

/* The options of log_append besides the shared ones (kb_opts). */
typedef struct own_opts {
	bool have_prealloc;
	uint64_t prealloc;
	uint64_t sizes[KB_MAX_LIST];
	size_t nsizes;
} own_opts;

/* The long options: the shared ones, then the program's own (own_option). */
static const struct option longopts[] = {
	KB_LONGOPTS,
	{"prealloc", required_argument, NULL, 'p'},
	{"sizes", required_argument, NULL, 'z'},
	{NULL, 0, NULL, 0},
};

/* Handle --prealloc and --sizes for kb_opts_parse. */
static bool
own_option(int c, const char *arg, void *ctx)
{
	own_opts *own = ctx;
	switch (c) {
	case 'p':
		own->prealloc = kb_parse_u64(arg, "--prealloc", true);
		own->have_prealloc = true;
		return true;
	case 'z':
		own->nsizes = kb_parse_list(arg, own->sizes, KB_MAX_LIST, "sizes", true);
		return true;
	default:
		return false;
	}
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: log_append [--dir DIR] [--seconds S] [--quick] [--prealloc BYTES]\n"
		   "                  [--threads 1,8,64] [--sizes 100,1024]\n");
}

/* ---- files -------------------------------------------------------------------------- */

static void
write_all(int fd, const void *p, size_t n, const char *path)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			kb_die("write %s: %s", path, strerror(errno));
		}
		c += w;
		n -= (size_t)w;
	}
}

static void
datasync(int fd, const char *path)
{
	if (fdatasync(fd) < 0)
		kb_die("fdatasync %s: %s", path, strerror(errno));
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
	uint8_t *data = kb_calloc(1, w->event_bytes, "event data");
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

	kb_team_wait(w->team);
	if (w->rc != KAPPA_OK) {
		free(data);
		return NULL;
	}
	while (!kb_team_stopped(w->team)) {
		uint64_t pos, t0 = kb_mono_ns();
		int rc = kp_log_append(w->log, &b, &pos, &w->err);
		uint64_t t1 = kb_mono_ns();
		if (rc != KAPPA_OK) {
			w->rc = rc;
			break;
		}
		kb_lat_push(&w->lat, t1 - t0);
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
		kb_die("kp_log_open %s: %s (%s)", dir, err.msg, kappa_strerror(rc));

	int n = r->threads;
	worker *ws = kb_calloc((size_t)n, sizeof(*ws), "threads");
	kb_team team;
	for (int i = 0; i < n; i++) {
		ws[i].tid = i;
		ws[i].log = log;
		ws[i].limits = &o->limits;
		ws[i].event_bytes = r->event_bytes;
		ws[i].team = &team;
	}
	kb_team_start(&team, n, worker_main, ws, sizeof(*ws));

	kp_log_stats before, after;
	uint64_t window_ns = kb_team_run(&team, log, r->seconds, &before, &after);

	kb_lat all = {NULL, 0, 0};
	for (int i = 0; i < n; i++) {
		if (ws[i].rc != KAPPA_OK)
			kb_die("thread %d: %s (%s)", i, ws[i].err.msg, kappa_strerror(ws[i].rc));
		kb_lat_merge(&all, &ws[i].lat);
	}
	free(ws);
	kb_lat_sort(&all);
	size_t total = all.n;

	double secs = (double)window_ns / 1e9;
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
	r->p50_us = kb_percentile_us(&all, 0.50);
	r->p99_us = kb_percentile_us(&all, 0.99);
	r->group_bytes = r->groups ? (double)r->bytes / (double)r->groups : 0;
	r->batches_per_group = r->groups ? (double)r->appends / (double)r->groups : 0;
	kb_lat_free(&all);
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
		kb_die("open %s: %s", path, strerror(errno));
	uint8_t *buf = kb_calloc(1, batch > SEQ_CHUNK ? batch : SEQ_CHUNK, "a write buffer");

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
			kb_die("lseek %s: %s", path, strerror(errno));
	}
	fill_pattern(buf, batch, 7);

	kb_lat lat = {NULL, 0, 0};
	uint64_t bytes = 0, off = 0;
	uint64_t t0 = kb_mono_ns(), end = t0 + (uint64_t)(seconds * 1e9), now = t0;
	while (now < end) {
		if (region && off + batch > region) {
			if (lseek(fd, 0, SEEK_SET) < 0)
				kb_die("lseek %s: %s", path, strerror(errno));
			off = 0;
		}
		uint64_t s = kb_mono_ns();
		write_all(fd, buf, batch, path);
		datasync(fd, path);
		now = kb_mono_ns();
		kb_lat_push(&lat, now - s);
		bytes += batch;
		off += batch;
	}
	kb_lat_sort(&lat);
	r->mb_per_s = (double)bytes / ((double)(now - t0) / 1e9) / 1e6;
	r->p50_us = kb_percentile_us(&lat, 0.50);
	r->p99_us = kb_percentile_us(&lat, 0.99);
	r->syncs = lat.n;
	kb_lat_free(&lat);
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
		kb_die("open %s: %s", path, strerror(errno));
	uint8_t *buf = kb_calloc(1, SEQ_CHUNK, "a write buffer");
	fill_pattern(buf, SEQ_CHUNK, 11);
	uint64_t t0 = kb_mono_ns();
	for (unsigned i = 0; i < SEQ_TOTAL / SEQ_CHUNK; i++)
		write_all(fd, buf, SEQ_CHUNK, path);
	datasync(fd, path);
	uint64_t t1 = kb_mono_ns();
	free(buf);
	close(fd);
	unlink(path);
	return (double)SEQ_TOTAL / ((double)(t1 - t0) / 1e9) / 1e6;
}

/* ---- output ------------------------------------------------------------------------- */

static void
print_table(const config_result *rs, size_t n, double seq_mb, const kb_bench_dir *dir,
	    double seconds, const kp_log_options *o)
{
	printf("kappa log_append: fsync=always, 1 event per batch, %.1f s per configuration\n",
	       seconds);
	printf("dir %s (%s%s), prealloc_bytes %" PRIu64 ", %ld CPUs online\n", dir->path, dir->fs,
	       dir->is_tmpfs ? ": NOT A DISK, fsync is free" : "", o->prealloc_bytes,
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
		       kb_ratio(r->mb_per_s, r->zero.mb_per_s),
		       kb_ratio(r->mb_per_s, r->grow.mb_per_s));
		if (r->threads == 1)
			printf(" %12.3f %12.3f\n", kb_ratio(r->p50_us, r->zero.p50_us),
			       kb_ratio(r->p50_us, r->grow.p50_us));
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
	       metric, r->threads, r->event_bytes, value, base, kb_ratio(value, base), base_grow,
	       kb_ratio(value, base_grow), unit);
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
	kb_init("log_append");
	kb_opts opts = {.seconds = 3, .threads = {1, 8, 64}, .nthreads = 3, .suffixes = true};
	own_opts own = {.sizes = {100, 1024}, .nsizes = 2};
	kb_opts_parse(&opts, argc, argv, longopts, own_option, &own, usage);

	kp_log_options o;
	kp_log_options_init(&o);
	o.fsync_mode = KP_FSYNC_ALWAYS;
	if (own.have_prealloc)
		o.prealloc_bytes = own.prealloc;

	kb_bench_dir dir;
	kb_bench_dir_create(&dir, opts.dir);

	size_t n = opts.nthreads * own.nsizes;
	config_result *rs = kb_calloc(n, sizeof(*rs), NULL);
	char path[PATH_MAX + 64]; /* dir.path (< PATH_MAX) + a short name */
	size_t k = 0;
	for (size_t si = 0; si < own.nsizes; si++) {
		for (size_t ti = 0; ti < opts.nthreads; ti++, k++) {
			config_result *r = &rs[k];
			r->event_bytes = (size_t)own.sizes[si];
			r->threads = (int)opts.threads[ti];
			r->seconds = opts.seconds;
			fprintf(stderr, "log_append: %zu B x %d threads: kappa...", r->event_bytes,
				r->threads);
			snprintf(path, sizeof(path), "%s/log-%zu-%d", dir.path, r->event_bytes,
				 r->threads);
			kb_rm_tree(path);
			run_kappa(path, &o, r);
			kb_rm_tree(path);

			r->raw_batch = (size_t)llround(r->group_bytes);
			if (r->raw_batch == 0)
				r->raw_batch = 1;
			fprintf(stderr, " raw grow...");
			snprintf(path, sizeof(path), "%s/raw-grow", dir.path);
			run_raw(path, r->raw_batch, opts.seconds, 0, &r->grow);
			/* Zero-fill about twice what kappa wrote (the overwrite wraps around). */
			uint64_t zero = 2 * r->bytes;
			zero = zero < ZERO_MIN ? ZERO_MIN : zero > ZERO_MAX ? ZERO_MAX : zero;
			fprintf(stderr, " raw zero...");
			snprintf(path, sizeof(path), "%s/raw-zero", dir.path);
			run_raw(path, r->raw_batch, opts.seconds, zero, &r->zero);
			fprintf(stderr, " %.2f MB/s (grow %.2f, zero %.2f)\n", r->mb_per_s,
				r->grow.mb_per_s, r->zero.mb_per_s);
		}
	}
	fprintf(stderr, "log_append: sequential %u MiB...\n", SEQ_TOTAL >> 20);
	snprintf(path, sizeof(path), "%s/raw-seq", dir.path);
	double seq_mb = run_seq(path);
	kb_bench_dir_remove(&dir);

	fflush(stderr);
	print_table(rs, n, seq_mb, &dir, opts.seconds, &o);
	print_json(rs, n, seq_mb);
	free(rs);
	return 0;
}
