/*
 * benchlib.h -- helpers shared by kappa's benchmark programs in bench/: error exit, clocks,
 * latency vectors and percentiles, the shared options, appending threads released together
 * for a measured window, and the benchmark directory under /var/tmp with its filesystem
 * check. Built into libkpbench.a and linked into every benchmark.
 */
#ifndef KB_BENCHLIB_H
#define KB_BENCHLIB_H

#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "log/log.h"

/* Set the program name (default "bench") that kb_die and the library's other messages start with:
 * the last component of 'name', so argv[0] or a literal like "log_append" both work. */
void kb_init(const char *name);
/* Print "<name>: <message>\n" on stderr and exit with status 1. */
void kb_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* calloc(n, size), dying with "out of memory for <what>" ("out of memory" when 'what' is
 * NULL) when that fails. */
void *kb_calloc(size_t n, size_t size, const char *what);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t kb_mono_ns(void);
/* Sleep 'ns' nanoseconds, resuming after signals. */
void kb_sleep_ns(uint64_t ns);

/* A growable array of latencies in nanoseconds; start it as {NULL, 0, 0}. */
typedef struct kb_lat {
	uint64_t *v;
	size_t n, cap;
} kb_lat;

/* Append 'ns' to 'l'; dies when out of memory. */
void kb_lat_push(kb_lat *l, uint64_t ns);
/* Move every latency of 'src' to the end of 'dst'; 'src' is freed and left empty. */
void kb_lat_merge(kb_lat *dst, kb_lat *src);
/* Sort 'l' in ascending order, as kb_percentile_us needs. */
void kb_lat_sort(kb_lat *l);
/* Free 'l' and leave it empty. */
void kb_lat_free(kb_lat *l);
/* Nearest-rank percentile (0 < p <= 1) of the sorted 'l', in microseconds; 0 when empty. */
double kb_percentile_us(const kb_lat *l, double p);

/* x / base, or 0 when 'base' is not positive. */
double kb_ratio(double x, double base);

/* Parse a non-negative decimal number for the option 'what'; with 'suffixes' a k/m/g suffix
 * multiplies it by 2^10/2^20/2^30. Dies with "bad <what> '<s>'" on anything else. */
uint64_t kb_parse_u64(const char *s, const char *what, bool suffixes);
/* Parse a comma-separated list of at most 'max' positive numbers (as kb_parse_u64) into
 * 'out'; returns how many. Dies on an empty, too long or bad list. */
size_t kb_parse_list(const char *s, uint64_t *out, size_t max, const char *what, bool suffixes);
/* Parse the argument of --seconds: more than 0 and at most 3600. */
double kb_parse_seconds(const char *s);

#define KB_SETTLE_NS 250000000u /* after a log's open, before kb_team_run releases the threads */
#define KB_MAX_LIST 16		/* numbers in a list option */
#define KB_MAX_THREADS 4096	/* in --threads */

/* The options the appending benchmarks share: --dir DIR, --seconds S, --quick (1 s) and
 * --threads LIST, with their getopt_long values 'd', 's', 'q' and 't' ('h' is --help). */
typedef struct kb_opts {
	const char *dir; /* NULL: a new directory under /var/tmp */
	double seconds;
	uint64_t threads[KB_MAX_LIST];
	size_t nthreads;
	bool suffixes; /* --threads takes k/m/g suffixes */
} kb_opts;

/* The getopt_long entries of the shared options and --help, to open a program's table. */
/* clang-format off */
#define KB_LONGOPTS                                         \
	{"dir", required_argument, NULL, 'd'},              \
	{"seconds", required_argument, NULL, 's'},          \
	{"quick", no_argument, NULL, 'q'},                  \
	{"threads", required_argument, NULL, 't'},          \
	{"help", no_argument, NULL, 'h'}
/* clang-format on */

/* Parse the command line with getopt_long and 'longopts' (KB_LONGOPTS then the program's own
 * entries): each result goes first to 'own' with its optarg and 'ctx', which returns false for
 * one it does not handle; a shared option is then stored in 'o', --help prints usage on stdout
 * and exits 0, anything else (an unknown option, an operand) prints usage on stderr and exits
 * 2. Dies when a --threads entry is above KB_MAX_THREADS. 'own' may be NULL. */
void kb_opts_parse(kb_opts *o, int argc, char **argv, const struct option *longopts,
		   bool (*own)(int c, const char *arg, void *ctx), void *ctx,
		   void (*usage)(FILE *f));

/* Threads that are released together and run until told to stop. Each thread waits in
 * kb_team_wait, then works until kb_team_stopped. */
typedef struct kb_team {
	int n;
	pthread_t *threads;
	pthread_barrier_t start;
	atomic_int stop;
} kb_team;

/* Start 'n' threads running 'fn', thread i with the argument 'args' + i * 'size' (an array of
 * 'n' elements of 'size' bytes). Dies on error. */
void kb_team_start(kb_team *t, int n, void *(*fn)(void *), void *args, size_t size);
/* In a thread: wait until kb_team_run releases the team. */
void kb_team_wait(kb_team *t);
/* The measured window of threads appending to 'log': let the log settle for KB_SETTLE_NS (its
 * zero-fill thread fills its first prealloc_bytes right after the open, so the window sees
 * the steady state of an open log), read its statistics into 'before', release the threads,
 * let them run for 'seconds', stop and join them all, and read 'after'. Returns the
 * nanoseconds from the release to the last join. */
uint64_t kb_team_run(kb_team *t, kp_log *log, double seconds, kp_log_stats *before,
		     kp_log_stats *after);

/* In a thread: whether kb_team_run has told the team to stop. */
static inline bool
kb_team_stopped(kb_team *t)
{
	return atomic_load_explicit(&t->stop, memory_order_relaxed);
}

/* The directory a benchmark works in. */
typedef struct kb_bench_dir {
	char path[PATH_MAX];
	bool own;	/* created here: kb_bench_dir_remove removes it */
	const char *fs; /* the filesystem's name: "ext4", "xfs", "tmpfs", ... */
	bool is_tmpfs;	/* tmpfs or ramfs, where fsync costs nothing */
} kb_bench_dir;

/* Use 'dir_opt' (created when missing; short enough for paths below it) or, when it is NULL,
 * a new /var/tmp/kappa-bench-XXXXXX; find its filesystem and warn on stderr when that is
 * tmpfs or ramfs. Dies on error. */
void kb_bench_dir_create(kb_bench_dir *d, const char *dir_opt);
/* Remove the directory and everything below it if kb_bench_dir_create created it. */
void kb_bench_dir_remove(const kb_bench_dir *d);
/* rm -rf 'path' (symbolic links are removed, not followed); failures are reported on stderr. */
void kb_rm_tree(const char *path);

#endif
