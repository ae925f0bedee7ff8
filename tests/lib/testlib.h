/*
 * testlib.h -- helpers shared by kappa's test programs: temporary directories, building
 * batches, a kp_io that injects faults, and the pieces of the kill -9 programs (TAP, problems,
 * a child reporting through a pipe).
 */
#ifndef KP_TESTLIB_H
#define KP_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/io.h"
#include "log/log.h"

/* A fresh directory under $TEST_TMPDIR (or /tmp); returns a malloc'ed path. Aborts on
 * failure. */
char *kt_tmpdir(const char *tag);
/* rm -rf 'dir' and free it. */
void kt_rmdir(char *dir);

/* Build a one-stream batch of 'n' events whose data is a JSON-ish string "{\"i\":K,...}"
 * made from 'seed' and the event index; 'data_len' bytes each (>= 16). Aborts on error. */
void kt_batch(kp_batch *b, const kp_log_options *o, const char *stream, int n, size_t data_len,
	      uint64_t seed);
/* The data kt_batch puts into event 'i' of batch 'seed' (malloc'ed, 'len' bytes). */
uint8_t *kt_data(uint64_t seed, int i, size_t len);

/* Fault injection. Count calls by kind; fail the Nth call of a kind with errno 'eno' (0 =
 * off). Short writes: when 'short_write' is set, pwritev writes only half of what it is
 * asked on the failing call, then fails the next. */
enum kt_op {
	KT_OPEN,
	KT_PREAD,
	KT_PWRITEV,
	KT_FDATASYNC,
	KT_FSYNC,
	KT_FTRUNCATE,
	KT_RENAME,
	KT_UNLINK,
	KT_OPS
};
typedef struct kt_faults {
	kp_io io;
	long calls[KT_OPS];
	long fail_at[KT_OPS]; /* 1-based call number to fail, 0: never */
	int fail_errno[KT_OPS];
	int persist; /* keep failing after the first failure */
	int short_write;
} kt_faults;

/* Initialise 'f' as a pass-through to POSIX with no faults armed. */
void kt_faults_init(kt_faults *f);
/* Arm: fail call number 'nth' (counted from now) of 'op' with 'eno'. */
void kt_faults_arm(kt_faults *f, enum kt_op op, long nth, int eno);

/* Read the whole log into a malloc'ed array of copies; returns count. Aborts on error. */
typedef struct kt_event {
	uint64_t position, version;
	char *stream, *type;
	uint8_t *data;
	size_t data_len;
} kt_event;
size_t kt_read_all(kp_log *log, uint64_t from, kt_event **out);
void kt_free_events(kt_event *ev, size_t n);

/* Flip one byte of a file at 'off' (xor 0xff), or truncate it to 'len'. */
void kt_flip_byte(const char *path, uint64_t off);
void kt_truncate(const char *path, uint64_t len);
/* Size of a file. */
uint64_t kt_file_size(const char *path);
/* Path of segment file 'first' in 'dir' (static buffer per call site is not safe: malloc'ed). */
char *kt_seg_file(const char *dir, uint64_t first, const char *ext);

/* ---- numbers, time, strings, files ------------------------------------------------------ */

/* The splitmix64 finalizer: a well-mixed 64-bit function of 'x'. */
uint64_t kt_mix64(uint64_t x);
/* The next number of the splitmix64 sequence whose state is '*s' (advances it). */
uint64_t kt_rng_next(uint64_t *s);
/* CLOCK_MONOTONIC in microseconds. */
int64_t kt_now_us(void);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t kt_mono_ms(void);
/* CLOCK_REALTIME in milliseconds since the epoch. */
int64_t kt_wall_ms(void);
/* Sleep 'ms' milliseconds, resuming after signals. */
void kt_sleep_ms(int ms);
/* 1 if 'a' and 'b' are the same string or both NULL. */
int kt_streq_null(const char *a, const char *b);
/* A malloc'ed NUL-terminated copy of 'n' bytes at 'p'; NULL if 'p' is NULL. Aborts when out
 * of memory. */
char *kt_dupn(const char *p, size_t n);
/* Make room in a growing array 'v' of '*cap' items of 'size' bytes for 'need' items: returns
 * the (maybe moved) array and updates '*cap'. Exits when out of memory. */
void *kt_grow(void *v, size_t *cap, size_t need, size_t size);
/* rm -rf 'path' (which stays allocated); 0, or -1 if it could not be removed. */
int kt_rm_rf(const char *path);

/* ---- kill -9 programs: settings, TAP and problems ---------------------------------------- */

/* The seed of a run: CRASH_SEED if set, else one made from the time and the pid. */
uint64_t kt_seed_from_env(void);
/* Rounds of a crash program: the variable 'own' if set (1..100000, else 'dflt'), else
 * CRASH_ROUNDS / 'divisor' clamped to 1..'dflt', else 'dflt'. '*explicit_rounds' (if not
 * NULL) says whether 'own' was set. */
long kt_crash_rounds(const char *own, long dflt, long divisor, int *explicit_rounds);

#define KT_MAX_DETAILS 8 /* detail lines kept per round */
#define KT_MAX_CATS 8	 /* problem categories of a program */

/* Print the next TAP line, "ok N - ..." or "not ok N - ...", and flush. */
void kt_tap(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print the TAP plan "1..N" for the lines printed so far. */
void kt_tap_plan(void);
/* Record a problem of category 'cat' (< KT_MAX_CATS) in the current round: the category
 * fails, and the first KT_MAX_DETAILS lines of a round are kept. */
void kt_problem(int cat, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Mark category 'cat' failed without a detail line. */
void kt_fail(int cat);
/* Whether category 'cat' failed. */
int kt_failed(int cat);
/* 1 if none of the categories 0..ncat-1 failed. */
int kt_all_passed(int ncat);
/* Start a round: forget the previous round's problems. */
void kt_round_start(void);
/* Problems recorded in the current round (also those past KT_MAX_DETAILS). */
int kt_round_problems(void);
/* Detail line 'k' (< KT_MAX_DETAILS) of the current round. */
const char *kt_round_detail(int k);
/* Print the round's detail lines as "#   ..." and how many more there were. */
void kt_print_details(void);

/* Recovery notices of a database or log: counted, the last kept, each printed if 'verbose'. */
typedef struct kt_notices {
	int verbose;
	uint64_t count;
	char last[256];
} kt_notices;
/* A notice callback; 'ctx' is a kt_notices. */
void kt_on_notice(void *ctx, const char *line);

/* ---- kill -9 programs: a child reporting through a pipe ---------------------------------- */

/* The parent's end of the pipe: fixed-size records, each handed to 'on_rec', which returns
 * 0 for an acknowledgement and nonzero for an error report (counted in 'acks' and 'errs'). */
typedef struct kt_pipe kt_pipe;
typedef int (*kt_rec_fn)(kt_pipe *p, const void *rec);
struct kt_pipe {
	int fd, eof;
	size_t rec_size;
	kt_rec_fn on_rec;
	void *ctx;
	uint64_t acks, errs;
	uint8_t buf[4096];
	size_t len;
};

/* Fork a child tied to the parent by a pipe. In the child: returns 0, '*fd' is the write end,
 * and the child dies with the parent. In the parent: returns the child's pid, '*fd' is the
 * non-blocking read end. -1 (after perror) if the pipe or the fork failed. */
pid_t kt_fork_piped(int *fd);
/* Child: write one record of 'size' bytes (<= PIPE_BUF, so atomic); _exit(4) if the parent
 * is gone. */
void kt_send(int fd, const void *rec, size_t size);
/* Set up 'p' to read records of 'rec_size' bytes from 'fd'. */
void kt_pipe_init(kt_pipe *p, int fd, size_t rec_size, kt_rec_fn on_rec, void *ctx);
/* Wait up to 'ms' for records (or the end of the pipe), then read all that is there. */
void kt_pipe_wait(kt_pipe *p, int ms);
/* Kill the child 'pid' with SIGKILL: 'delay_us' after now if 'early', else 'delay_us' after
 * its first acknowledgement (a problem of category 'cat' if none comes within
 * 'first_ack_ms'). Then reap it, read the pipe to its end and close it. Returns the child's
 * wait status. */
int kt_kill_child(kt_pipe *p, pid_t pid, int early, int delay_us, int first_ack_ms, int cat);

/* ---- Criterion tests only (criterion.h included before this header) --------------------- */
#ifdef CRITERION_H_
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "kappa.h"

/* Open the database in 'dir' with 'o', asserting that it opens. */
static inline kappa_db *
kt_open_ok(const char *dir, const kappa_options *o)
{
	kappa_db *db = NULL;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_open(dir, o, &db, &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_open(%s): %s: %s", dir, kappa_strerror(rc), err.msg);
	cr_assert_not_null(db);
	return db;
}

/* Write view definition 'text' to 'tmp'/views/'name'.sql (the directory is made on first
 * use); OUT: 'views' (KT_PATH bytes), the views directory. */
#define KT_PATH 4200
static inline void
kt_write_view(const char *tmp, const char *name, const char *text, char *views)
{
	char file[KT_PATH + 200];
	snprintf(views, KT_PATH, "%s/views", tmp);
	cr_assert(mkdir(views, 0755) == 0 || errno == EEXIST, "mkdir %s", views);
	snprintf(file, sizeof(file), "%s/%s.sql", views, name);
	FILE *f = fopen(file, "w");
	cr_assert_not_null(f, "%s", file);
	cr_assert(fputs(text, f) >= 0);
	cr_assert_eq(fclose(f), 0);
}
#endif

#endif
