/*
 * store_scale.c -- kappa with many streams: fill a database with N streams (one event
 * each), close it, then measure how long reopening takes and how much memory (RSS) kappa
 * needs to open it and serve appends to random existing streams with expected versions.
 *
 *   build/bench/store_scale [--streams N] [--quick] [--dir DIR] [--keep]
 *
 * The project's target: 10 million streams open and serve appends under 1 GiB RSS.
 * Ends with one JSON object per figure.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "benchlib.h"
#include "kappa.h"

#define FILL_THREADS 4

static uint64_t nstreams = 10000000;
static _Atomic uint64_t next_stream;
static _Atomic uint64_t fill_errors;
static kappa_db *db;

/* VmRSS or VmHWM of this process, in MiB. */
static double
status_mib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	double v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = strtod(line + n + 1, NULL) / 1024.0;
	if (f)
		fclose(f);
	return v;
}

static void *
filler(void *arg)
{
	(void)arg;
	char stream[32], data[96];
	for (;;) {
		uint64_t i = atomic_fetch_add(&next_stream, 1);
		if (i >= nstreams)
			break;
		snprintf(stream, sizeof(stream), "user-%" PRIu64, i);
		snprintf(data, sizeof(data), "{\"user_id\":\"%" PRIu64 "\",\"n\":1}", i);
		kappa_event_in ev = {.type = "UserRegistered", .data = data};
		kappa_err err;
		if (kappa_append(db, stream, KAPPA_NO_STREAM, NULL, &ev, 1, NULL, 0, NULL, &err))
			atomic_fetch_add(&fill_errors, 1);
		if (i % 1000000 == 0 && i)
			fprintf(stderr, "  %" PRIu64 " streams\n", i);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	kb_init("store_scale");
	char dir[4096] = "";
	int keep = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--streams") && i + 1 < argc)
			nstreams = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--quick"))
			nstreams = 200000;
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			snprintf(dir, sizeof(dir), "%s", argv[++i]);
		else if (!strcmp(argv[i], "--keep"))
			keep = 1;
		else {
			fprintf(stderr, "usage: store_scale [--streams N] [--quick] [--dir DIR] "
					"[--keep]\n");
			return 2;
		}
	}
	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/var/tmp/kappa-scale-XXXXXX");
		if (!mkdtemp(dir)) {
			perror("mkdtemp");
			return 1;
		}
	}
	kappa_options o;
	kappa_options_init(&o);
	kappa_err err;
	uint64_t existing = 0;

	/* Fill (skipped when DIR already holds the streams, e.g. with --keep). */
	if (kappa_open(dir, &o, &db, &err)) {
		fprintf(stderr, "open: %s\n", err.msg);
		return 1;
	}
	existing = kappa_head(db);
	double fill_s = 0;
	if (existing < nstreams) {
		kappa_close(db);
		o.fsync = KAPPA_FSYNC_NEVER; /* filling only: the measured part is durable */
		if (kappa_open(dir, &o, &db, &err)) {
			fprintf(stderr, "open: %s\n", err.msg);
			return 1;
		}
		atomic_store(&next_stream, existing);
		fprintf(stderr, "filling %" PRIu64 " streams in %s\n", nstreams - existing, dir);
		uint64_t t0 = kb_mono_ns();
		pthread_t th[FILL_THREADS];
		for (int t = 0; t < FILL_THREADS; t++)
			pthread_create(&th[t], NULL, filler, NULL);
		for (int t = 0; t < FILL_THREADS; t++)
			pthread_join(th[t], NULL);
		fill_s = (double)(kb_mono_ns() - t0) / 1e9;
	}
	kappa_close(db);
	if (atomic_load(&fill_errors)) {
		fprintf(stderr, "%" PRIu64 " fill errors\n", atomic_load(&fill_errors));
		return 1;
	}

	/* Measure: open, then durable appends to random existing streams. */
	o.fsync = KAPPA_FSYNC_ALWAYS;
	double rss0 = status_mib("VmRSS");
	uint64_t t0 = kb_mono_ns();
	if (kappa_open(dir, &o, &db, &err)) {
		fprintf(stderr, "reopen: %s\n", err.msg);
		return 1;
	}
	double open_s = (double)(kb_mono_ns() - t0) / 1e9;
	double rss_open = status_mib("VmRSS");
	enum { APPENDS = 20000 };
	uint64_t x = 88172645463325252ull, errors = 0;
	t0 = kb_mono_ns();
	for (int i = 0; i < APPENDS; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		char stream[32];
		snprintf(stream, sizeof(stream), "user-%" PRIu64, x % nstreams);
		kappa_stream_info info;
		kappa_event_in ev = {.type = "ProfileUpdated", .data = "{\"bio\":\"scale test\"}"};
		if (kappa_stream_info_get(db, stream, &info, &err) || !info.exists ||
		    kappa_append(db, stream, (int64_t)info.last_version, NULL, &ev, 1, NULL, 0,
				 NULL, &err))
			errors++;
	}
	double app_s = (double)(kb_mono_ns() - t0) / 1e9;
	double rss_serve = status_mib("VmRSS");
	double hwm = status_mib("VmHWM");
	double anon = status_mib("RssAnon"), filemap = status_mib("RssFile");
	kappa_close(db);

	printf("kappa store_scale: %" PRIu64 " streams in %s\n", nstreams, dir);
	if (fill_s > 0)
		printf("fill (fsync=never, %d threads): %.1f s, %.0f streams/s\n", FILL_THREADS,
		       fill_s, (double)(nstreams - existing) / fill_s);
	printf("reopen: %.3f s; RSS before open %.1f MiB, after open %.1f MiB\n", open_s, rss0,
	       rss_open);
	printf("%d durable appends to random streams (expected versions): %.0f/s, %" PRIu64
	       " errors; RSS %.1f MiB, peak %.1f MiB\n",
	       APPENDS, APPENDS / app_s, errors, rss_serve, hwm);
	printf("  of which kappa's own memory (RssAnon) %.1f MiB, mapped index pages (RssFile) "
	       "%.1f MiB\n",
	       anon, filemap);
	printf("{\"bench\":\"store_scale\",\"metric\":\"open_s\",\"streams\":%" PRIu64
	       ",\"value\":%.3f,\"unit\":\"s\"}\n",
	       nstreams, open_s);
	printf("{\"bench\":\"store_scale\",\"metric\":\"rss_after_open_mib\",\"streams\":%" PRIu64
	       ",\"value\":%.1f,\"unit\":\"MiB\"}\n",
	       nstreams, rss_open);
	printf("{\"bench\":\"store_scale\",\"metric\":\"rss_serving_mib\",\"streams\":%" PRIu64
	       ",\"value\":%.1f,\"baseline\":1024,\"ratio\":%.3f,\"unit\":\"MiB\"}\n",
	       nstreams, rss_serve, rss_serve / 1024.0);
	printf("{\"bench\":\"store_scale\",\"metric\":\"rss_anon_mib\",\"streams\":%" PRIu64
	       ",\"value\":%.1f,\"unit\":\"MiB\"}\n",
	       nstreams, anon);
	printf("{\"bench\":\"store_scale\",\"metric\":\"appends_per_s\",\"streams\":%" PRIu64
	       ",\"value\":%.1f,\"unit\":\"appends/s\"}\n",
	       nstreams, APPENDS / app_s);
	if (!keep)
		kb_rm_tree(dir);
	return errors ? 1 : 0;
}
