/*
 * kappa.h -- the public API of libkappa, an event-log database.
 *
 * An immutable, durable event log is the single source of truth; views are derived from it.
 * This header is the only one a program embedding kappa includes. Everything declared here
 * is stable; everything under src/ is internal.
 *
 * Conventions
 *  - Functions that can fail return int: KAPPA_OK (0) or a negative KAPPA_E* code.
 *  - Details of a failure go into an optional caller-owned kappa_err: pass NULL if you only
 *    want the code. The library never prints and never allocates on the error path.
 */
#ifndef KAPPA_H
#define KAPPA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KAPPA_VERSION_MAJOR 0
#define KAPPA_VERSION_MINOR 1
#define KAPPA_VERSION_PATCH 0
#define KAPPA_VERSION_STRING "0.1.0"

/*
 * Result codes. Library codes sit in a reserved negative range (as LMDB does) so they never
 * collide with -errno values that internal layers pass around.
 */
enum kappa_code {
	KAPPA_OK = 0,
	KAPPA_EINVAL = -30900, /* a bad argument: name, size, count, format */
	KAPPA_ETOOBIG,	       /* an event, batch or request over its configured limit */
	KAPPA_ENOMEM,	       /* an allocation failed */
	KAPPA_EIO,	       /* an I/O call failed (the message names the file and call) */
	KAPPA_ENOSPC,	       /* the disk is full; nothing was written */
	KAPPA_ECORRUPT,	       /* stored bytes fail their checksum or format checks */
	KAPPA_EFATAL,	       /* an earlier write or sync failed: reopen to recover */
	KAPPA_ELOCKED,	       /* the data directory is in use by another handle or process */
	KAPPA_ERANGE,	 /* a position outside what the log holds (e.g. removed by retention) */
	KAPPA_ECLOSED,	 /* the handle is closing */
	KAPPA_ENOTFOUND, /* no such stream, view, query or subject */
	KAPPA_EWRONG_VERSION,  /* expected_version did not match the stream */
	KAPPA_EREQUEST_REUSED, /* a request id was reused with different content */
	KAPPA_ECLAIM_TAKEN,    /* a uniqueness claim is held by another stream */
	KAPPA_ETIMEOUT,	       /* a bounded wait ran out */
	KAPPA_EBUSY,	       /* overloaded: try again later */
	KAPPA_E_LAST	       /* not a code: one past the last */
};

/* Details of a failure, filled by the library when a function returns an error. */
typedef struct kappa_err {
	int code;	  /* the KAPPA_E* code also returned */
	int sys_errno;	  /* errno of the failing system call, or 0 */
	char msg[256];	  /* a lower-case message naming what failed, no trailing newline */
	const char *file; /* where in kappa the error was raised (for bug reports) */
	int line;
} kappa_err;

/* The short name of a code ("wrong_expected_version", "corrupt", ...). Never NULL. */
const char *kappa_strerror(int code);

/* The library version, e.g. "0.1.0". */
const char *kappa_version(void);

#ifdef __cplusplus
}
#endif
#endif /* KAPPA_H */
