/*
 * cmd_serve.c -- `kappa serve`: open the database and serve it over HTTP until SIGINT or
 * SIGTERM (a graceful stop: in-flight appends finish, subscribers get a last line); SIGHUP
 * reloads the view definitions. One key=value line per start, stop, reload, notice and
 * server error on stderr, each with its time.
 */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "cli/cli.h"
#include "kappa.h"
#include "server/server.h"

static void
log_line(void *ctx, const char *line)
{
	(void)ctx;
	char t[KP_TIME_TEXT];
	kp_format_time_ms(kp_now_ms(), t);
	fprintf(stderr, "time=%s %s\n", t, line);
}

static const char usage_text[] =
	"usage: kappa serve --data DIR [--views DIR] [--listen 127.0.0.1:7070]\n"
	"                   [--fsync always|interval:MS|never] [--auth-file FILE]\n"
	"                   [--max-body BYTES] [--max-header BYTES] [--max-connections N]\n"
	"                   [--max-subscribers N] [--max-inflight N] [--idle-timeout S]\n"
	"                   [--request-timeout S] [--query-timeout MS] [--heartbeat S]\n"
	"                   [--threads N] [--query-threads N] [--max-queued-queries N]\n"
	"                   [--segment-bytes BYTES] [--master-key-file FILE]\n"
	"                   [--allow-identifying-subject]\n"
	"\n"
	"Serves the database in DIR over HTTP/JSON (see docs/http.md). Without --auth-file the\n"
	"server is open and listens on loopback addresses only. SIGTERM or SIGINT stop it\n"
	"gracefully; SIGHUP reloads the view definitions.\n"
	"\n"
	"--master-key-file FILE  the 32-byte node master key sealing DATA/keys (default\n"
	"                        DIR/master.key; created 0600 on first start if absent)\n"
	"--allow-identifying-subject  accept subject ids that look like e-mail addresses\n";

static int
usage(FILE *f)
{
	fputs(usage_text, f);
	return f == stdout ? 0 : 2;
}

/* A positive integer option value, or -1. */
static long long
positive(const char *v)
{
	char *end;
	long long x = strtoll(v, &end, 10);
	return *v && !*end && x > 0 ? x : -1;
}

static const struct {
	const char *flag;
	size_t off;
	int u64;
} limits[] = {
	{"--max-body", offsetof(kp_server_options, max_body_bytes), 1},
	{"--max-header", offsetof(kp_server_options, max_header_bytes), 0},
	{"--max-connections", offsetof(kp_server_options, max_connections), 0},
	{"--max-subscribers", offsetof(kp_server_options, max_subscribers), 0},
	{"--max-inflight", offsetof(kp_server_options, max_inflight_appends), 0},
	{"--idle-timeout", offsetof(kp_server_options, idle_timeout_s), 0},
	{"--request-timeout", offsetof(kp_server_options, request_timeout_s), 0},
	{"--query-timeout", offsetof(kp_server_options, query_timeout_ms), 0},
	{"--heartbeat", offsetof(kp_server_options, heartbeat_s), 0},
	{"--threads", offsetof(kp_server_options, threads), 0},
	{"--query-threads", offsetof(kp_server_options, query_threads), 0},
	{"--max-queued-queries", offsetof(kp_server_options, max_queued_queries), 0},
};

/* Set a numeric limit from its flag. 1 if 'a' is one, 0 if not, -1 if its value is bad. */
static int
set_limit(kp_server_options *so, const char *a, const char *v)
{
	for (size_t i = 0; i < sizeof(limits) / sizeof(limits[0]); i++) {
		if (strcmp(a, limits[i].flag))
			continue;
		long long x = positive(v);
		if (x < 0 || (!limits[i].u64 && x > 1000000000))
			return -1;
		char *p = (char *)so + limits[i].off;
		if (limits[i].u64)
			*(uint64_t *)(void *)p = (uint64_t)x;
		else
			*(unsigned *)(void *)p = (unsigned)x;
		return 1;
	}
	return 0;
}

int
kp_cmd_serve(int argc, char **argv)
{
	const char *data = NULL, *views = NULL, *fsync = "always", *master = NULL;
	int identifying = 0;
	long long segment = 0; /* 0: the default */
	kp_server_options so;
	kp_server_options_init(&so);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h"))
			return usage(stdout);
		if (!strcmp(a, "--allow-identifying-subject")) {
			identifying = 1;
			continue;
		}
		if (!v)
			return usage(stderr);
		int lim = set_limit(&so, a, v);
		if (lim < 0) {
			fprintf(stderr, "kappa serve: %s needs a positive integer, got %s\n", a, v);
			return 2;
		}
		if (lim) {
			i++;
			continue;
		}
		if (!strcmp(a, "--data"))
			data = v;
		else if (!strcmp(a, "--views"))
			views = v;
		else if (!strcmp(a, "--listen"))
			so.listen = v;
		else if (!strcmp(a, "--fsync"))
			fsync = v;
		else if (!strcmp(a, "--auth-file"))
			so.auth_file = v;
		else if (!strcmp(a, "--master-key-file"))
			master = v;
		else if (!strcmp(a, "--segment-bytes") && (segment = positive(v)) > 0)
			;
		else
			return usage(stderr);
		i++;
	}
	if (!data)
		return usage(stderr);
	so.log = log_line;
	kappa_options o;
	kappa_options_init(&o);
	o.views_dir = views;
	o.master_key_file = master;
	o.allow_identifying_subject = identifying;
	o.notice = log_line;
	if (segment > 0)
		o.segment_bytes = (uint64_t)segment;
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
		char line[600];
		snprintf(line, sizeof(line), "event=start_failed data=%s error=\"%s\"", data,
			 err.msg);
		log_line(NULL, line);
		return kp_err_exit_status(rc);
	}
	kp_server *srv;
	if ((rc = kp_server_start(db, &so, &srv, &err))) {
		char line[600];
		snprintf(line, sizeof(line), "event=start_failed listen=%s error=\"%s\"", so.listen,
			 err.msg);
		log_line(NULL, line);
		kappa_close(db);
		return kp_err_exit_status(rc);
	}
	char line[512];
	snprintf(line, sizeof(line), "event=started data=%s views=%s fsync=%s head=%llu version=%s",
		 data, views ? views : "-", fsync, (unsigned long long)kappa_head(db),
		 kappa_version());
	log_line(NULL, line);
	for (;;) {
		int sig = 0;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			rc = views ? kappa_views_reload(db, &err) : KAPPA_OK;
			snprintf(line, sizeof(line), "event=views_reloaded result=%s%s%s%s",
				 kappa_strerror(rc), rc ? " error=\"" : "", rc ? err.msg : "",
				 rc ? "\"" : "");
			log_line(NULL, line);
			continue;
		}
		snprintf(line, sizeof(line), "event=stopping signal=%s",
			 sig == SIGTERM ? "TERM" : "INT");
		log_line(NULL, line);
		break;
	}
	kp_server_stop(srv);
	kappa_close(db);
	log_line(NULL, "event=stopped");
	return 0;
}
