/*
 * err.h -- raising errors into a caller-owned kappa_err, and the table of codes.
 *
 * Every layer reports failures the same way: return a KAPPA_E* code and, when the caller
 * passed a kappa_err, fill it with a message. KP_ERR records where the error was raised
 * (as SQLite's _BKPT does), which also gives a single place to set a breakpoint.
 */
#ifndef KP_ERR_H
#define KP_ERR_H

#include "kappa.h"

#if defined(__GNUC__)
#define KP_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define KP_PRINTF(a, b)
#endif

/* Fill 'err' (may be NULL) and return 'code'. 'sys_errno' is appended as strerror when set. */
int kp_err_set(kappa_err *err, int code, int sys_errno, const char *file, int line, const char *fmt,
	       ...) KP_PRINTF(6, 7);

#define KP_ERR(err, code, ...) kp_err_set((err), (code), 0, __FILE__, __LINE__, __VA_ARGS__)
#define KP_ERR_SYS(err, code, eno, ...)                                                            \
	kp_err_set((err), (code), (eno), __FILE__, __LINE__, __VA_ARGS__)

/* Format one line (at most 511 bytes) and hand it to 'fn' (nothing if 'fn' is NULL): how
 * every layer reports notices to the embedding program, which decides where they go. */
void kp_emit(void (*fn)(void *ctx, const char *line), void *ctx, const char *fmt, ...)
	KP_PRINTF(3, 4);

/* Reset 'err' to "no error". */
void kp_err_clear(kappa_err *err);

/* Copy 'src' into 'dst' (either may be NULL). */
void kp_err_copy(kappa_err *dst, const kappa_err *src);

/* Map an errno from an I/O call to a kappa code: ENOSPC/EDQUOT -> KAPPA_ENOSPC, ENOMEM ->
 * KAPPA_ENOMEM, anything else -> KAPPA_EIO. */
int kp_err_from_errno(int eno);

/* What each code means outside the library: HTTP status and CLI exit status. */
int kp_err_http_status(int code);
int kp_err_exit_status(int code);

#endif
