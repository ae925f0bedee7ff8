/*
 * cmd_check.c -- `kappa check DIR`: verify the log of a data directory without changing it.
 * Exit 0 when sound (a torn tail that the next open would cut is reported, not an error),
 * 3 on corruption, 2 on bad usage, 1 on other errors.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/clock.h"
#include "base/err.h"
#include "cli/cli.h"
#include "log/log.h"

static void
print_line(void *ctx, const char *line)
{
	(void)ctx;
	printf("%s\n", line);
}

int
kp_cmd_check(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: kappa check DIR\n");
		return 2;
	}
	/* DIR is a data directory (holding log/) or a log directory itself. */
	char logdir[4096];
	struct stat st;
	snprintf(logdir, sizeof(logdir), "%s/log", argv[1]);
	if (stat(logdir, &st) != 0 || !S_ISDIR(st.st_mode))
		snprintf(logdir, sizeof(logdir), "%s", argv[1]);
	if (stat(logdir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "kappa check: %s: no such directory\n", argv[1]);
		return 2;
	}
	kappa_err err;
	uint64_t events = 0, batches = 0;
	uint64_t t0 = kp_mono_ns();
	int rc = kp_log_check(logdir, print_line, NULL, &events, &batches, &err);
	double secs = (double)(kp_mono_ns() - t0) / 1e9;
	if (rc) {
		fprintf(stderr, "kappa check: %s\n", err.msg);
		return kp_err_exit_status(rc);
	}
	printf("ok: %llu events in %llu batches checked in %.3f s\n", (unsigned long long)events,
	       (unsigned long long)batches, secs);
	return 0;
}
