/*
 * cmd_serve.c -- `kappa serve --data DIR [--views DIR] [--listen 127.0.0.1:7070]
 * [--fsync always|interval:MS|never]`: open the database and serve it over HTTP until
 * SIGINT or SIGTERM; SIGHUP reloads the view definitions. One key=value line per start,
 * stop, reload and notice on stderr.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "cli/cli.h"
#include "kappa.h"
#include "server/server.h"

static void
log_notice(void *ctx, const char *line)
{
	(void)ctx;
	fprintf(stderr, "kappa: %s\n", line);
}

static int
usage(void)
{
	fprintf(stderr, "usage: kappa serve --data DIR [--views DIR] [--listen 127.0.0.1:7070]\n"
			"                   [--fsync always|interval:MS|never]\n");
	return 2;
}

int
kp_cmd_serve(int argc, char **argv)
{
	const char *data = NULL, *views = NULL, *fsync = "always";
	kp_server_options so;
	kp_server_options_init(&so);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return usage();
		if (!strcmp(a, "--data"))
			data = v;
		else if (!strcmp(a, "--views"))
			views = v;
		else if (!strcmp(a, "--listen"))
			so.listen = v;
		else if (!strcmp(a, "--fsync"))
			fsync = v;
		else
			return usage();
		i++;
	}
	if (!data)
		return usage();
	kappa_options o;
	kappa_options_init(&o);
	o.views_dir = views;
	o.notice = log_notice;
	if (!strcmp(fsync, "always")) {
		o.fsync = KAPPA_FSYNC_ALWAYS;
	} else if (!strcmp(fsync, "never")) {
		o.fsync = KAPPA_FSYNC_NEVER;
	} else if (!strncmp(fsync, "interval:", 9) && atoi(fsync + 9) > 0) {
		o.fsync = KAPPA_FSYNC_INTERVAL;
		o.fsync_interval_ms = (uint32_t)atoi(fsync + 9);
	} else {
		fprintf(stderr, "kappa serve: --fsync must be always, never or interval:MS\n");
		return 2;
	}

	/* Every thread kappa starts inherits this mask; the signals are taken by sigwait. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	kappa_db *db;
	kappa_err err;
	int rc = kappa_open(data, &o, &db, &err);
	if (rc) {
		fprintf(stderr, "kappa: event=start_failed data=%s error=\"%s\"\n", data, err.msg);
		return kp_err_exit_status(rc);
	}
	kp_server *srv;
	if ((rc = kp_server_start(db, &so, &srv, &err))) {
		fprintf(stderr, "kappa: event=start_failed listen=%s error=\"%s\"\n", so.listen,
			err.msg);
		kappa_close(db);
		return kp_err_exit_status(rc);
	}
	fprintf(stderr, "kappa: event=listening listen=%s data=%s views=%s fsync=%s head=%llu\n",
		so.listen, data, views ? views : "-", fsync, (unsigned long long)kappa_head(db));
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			rc = views ? kappa_views_reload(db, &err) : KAPPA_OK;
			fprintf(stderr, "kappa: event=views_reloaded result=%s%s%s%s\n",
				kappa_strerror(rc), rc ? " error=\"" : "", rc ? err.msg : "",
				rc ? "\"" : "");
			continue;
		}
		fprintf(stderr, "kappa: event=stopping signal=%d\n", sig);
		break;
	}
	kp_server_stop(srv);
	kappa_close(db);
	fprintf(stderr, "kappa: event=stopped\n");
	return 0;
}
