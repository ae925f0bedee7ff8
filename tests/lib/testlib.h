/*
 * testlib.h -- helpers shared by kappa's test programs: temporary directories, building
 * batches, and a kp_io that injects faults.
 */
#ifndef KP_TESTLIB_H
#define KP_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

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

#endif
