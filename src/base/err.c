/*
 * err.c -- the one table of kappa result codes and the error-filling helpers.
 *
 * The table maps each code to its wire name (the JSON "code" of the HTTP API), its HTTP
 * status and its CLI exit status, so no layer invents its own mapping.
 */
#include "base/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
	int code;
	const char *name;
	int http;
	int exit;
} codes[] = {
	{KAPPA_OK, "ok", 200, 0},
	{KAPPA_EINVAL, "invalid_argument", 400, 2},
	{KAPPA_ETOOBIG, "too_large", 413, 2},
	{KAPPA_ENOMEM, "out_of_memory", 503, 1},
	{KAPPA_EIO, "io_error", 500, 1},
	{KAPPA_ENOSPC, "disk_full", 507, 1},
	{KAPPA_ECORRUPT, "corrupt", 500, 3},
	{KAPPA_EFATAL, "log_failed", 503, 1},
	{KAPPA_ELOCKED, "locked", 503, 4},
	{KAPPA_ERANGE, "out_of_range", 416, 2},
	{KAPPA_ECLOSED, "closed", 503, 1},
	{KAPPA_ENOTFOUND, "not_found", 404, 2},
	{KAPPA_EWRONG_VERSION, "wrong_expected_version", 409, 5},
	{KAPPA_EREQUEST_REUSED, "request_id_reused", 409, 5},
	{KAPPA_ECLAIM_TAKEN, "claim_taken", 409, 5},
	{KAPPA_ETIMEOUT, "timeout", 504, 1},
	{KAPPA_EBUSY, "busy", 503, 1},
	{KAPPA_EFORGOTTEN, "subject_forgotten", 410, 5},
	{KAPPA_EKEY, "wrong_key", 500, 4},
};

static int
code_index(int code)
{
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i].code == code)
			return (int)i;
	return -1;
}

const char *
kappa_strerror(int code)
{
	int i = code_index(code);
	return i < 0 ? "unknown_error" : codes[i].name;
}

const char *
kappa_version(void)
{
	return KAPPA_VERSION_STRING;
}

int
kp_err_http_status(int code)
{
	int i = code_index(code);
	return i < 0 ? 500 : codes[i].http;
}

int
kp_err_exit_status(int code)
{
	int i = code_index(code);
	return i < 0 ? 1 : codes[i].exit;
}

int
kp_err_from_errno(int eno)
{
	switch (eno) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return KAPPA_ENOSPC;
	case ENOMEM:
		return KAPPA_ENOMEM;
	default:
		return KAPPA_EIO;
	}
}

int
kp_err_set(kappa_err *err, int code, int sys_errno, const char *file, int line, const char *fmt,
	   ...)
{
	if (!err)
		return code;
	err->code = code;
	err->sys_errno = sys_errno;
	err->file = file;
	err->line = line;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (sys_errno && n >= 0 && (size_t)n < sizeof(err->msg))
		snprintf(err->msg + n, sizeof(err->msg) - (size_t)n, ": %s", strerror(sys_errno));
	return code;
}

void
kp_emit(void (*fn)(void *ctx, const char *line), void *ctx, const char *fmt, ...)
{
	if (!fn)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fn(ctx, line);
}

void
kp_err_clear(kappa_err *err)
{
	if (!err)
		return;
	err->code = KAPPA_OK;
	err->sys_errno = 0;
	err->msg[0] = '\0';
	err->file = NULL;
	err->line = 0;
}

void
kp_err_copy(kappa_err *dst, const kappa_err *src)
{
	if (dst && src && dst != src)
		*dst = *src;
}
