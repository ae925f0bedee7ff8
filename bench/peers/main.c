/*
 * main.c -- peers_load, the load driver of bench/peers: parses the options, builds the
 * payload, runs one workload against one system once per client count, and prints one JSON
 * object per measurement on stdout (progress on stderr). bench/peers/run.sh starts the
 * systems and calls it; bench/peers/report.py turns its lines into the table.
 *
 * usage: peers_load SYSTEM WORKLOAD --target T [--config NAME] [--size B] [--clients LIST]
 *                   [--seconds S] [--warmup S] [--batch N] [--events N] [--page N]
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "peers.h"

const char *const pl_workload_names[PL_NWORKLOADS] = {
	"reset", "fill", "append", "batch", "read", "catchup", "retry",
};

static const struct {
	const char *name;
	pl_system_fn run;
	unsigned workloads; /* bit per pl_workload it supports */
} systems[] = {
	{"kappa", pl_kappa_run, 0x7f},
	{"redis", pl_redis_run, 0x3f}, /* Redis has no idempotent append: no PL_RETRY */
	{"pg", pl_pg_run, 0x7f},
	{"nats", pl_nats_run, 0x7f},
	{"sqlite", pl_sqlite_run, 0x7f},
	{"raw", pl_raw_run, (1u << PL_RESET) | (1u << PL_APPEND) | (1u << PL_BATCH)},
};

static const char usage_text[] =
	"usage: peers_load SYSTEM WORKLOAD --target T [--config NAME] [--size B]\n"
	"                  [--clients LIST] [--seconds S] [--warmup S] [--batch N]\n"
	"                  [--events N] [--page N]\n"
	"  SYSTEM    kappa (T: URL), redis (T: port), pg (T: conninfo), nats (T: URL),\n"
	"            sqlite (T: directory), raw (T: directory)\n"
	"  WORKLOAD  reset, fill, append, batch, read, catchup, retry\n"
	"  --size B        payload bytes per event (default 100)\n"
	"  --clients LIST  concurrent clients, one measurement each (default 1,16,64)\n"
	"  --seconds S     measured seconds per measurement (default 3)\n"
	"  --warmup S      seconds before each measurement (default 0.5)\n"
	"  --batch N       events per request in batch (default 100)\n"
	"  --events N      events to fill, to read back in catchup, keys of read (default "
	"1000000)\n"
	"  --page N        events per page in catchup (default 1000)\n"
	"Prints one JSON object per measurement on stdout.\n";

static void
usage(FILE *f)
{
	fputs(usage_text, f);
}

/* ---- tallies ------------------------------------------------------------------------- */

void
pl_window_open(pl_window *w, const pl_cfg *cfg)
{
	w->begin = kb_mono_ns();
	w->start = w->begin + (uint64_t)(cfg->warmup * 1e9);
	w->end = w->start + (uint64_t)(cfg->seconds * 1e9);
}

void
pl_tally_op(pl_tally *t, const pl_window *w, uint64_t t0, uint64_t t1, uint64_t events)
{
	if (t1 < w->start || t1 >= w->end)
		return;
	kb_lat_push(&t->lat, t1 - t0);
	t->ops++;
	t->events += events;
}

uint64_t
pl_op_events(const pl_cfg *cfg)
{
	return cfg->workload == PL_BATCH ? (uint64_t)cfg->batch : 1;
}

bool
pl_op_ended(pl_tally *t, const pl_window *w, const pl_cfg *cfg, uint64_t t0, bool ok)
{
	uint64_t t1 = kb_mono_ns();
	if (ok)
		pl_tally_op(t, w, t0, t1, pl_op_events(cfg));
	return t1 < w->end;
}

void
pl_tally_error(pl_tally *t, const char *fmt, ...)
{
	if (!t->errors++) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(t->first_error, sizeof(t->first_error), fmt, ap);
		va_end(ap);
	}
}

void
pl_tally_merge(pl_tally *dst, pl_tally *src)
{
	kb_lat_merge(&dst->lat, &src->lat);
	dst->ops += src->ops;
	dst->events += src->events;
	if (src->errors && !dst->errors)
		memcpy(dst->first_error, src->first_error, sizeof(dst->first_error));
	dst->errors += src->errors;
	src->ops = src->events = src->errors = 0;
}

void
pl_request_id(const pl_cfg *cfg, char *buf, size_t cap, int client, uint64_t seq)
{
	snprintf(buf, cap, "%08" PRIx32 "-%d-%" PRIu64, cfg->nonce, client, seq);
}

uint64_t
pl_rand_below(uint64_t *s, uint64_t n)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return n ? x % n : 0;
}

/* ---- options ------------------------------------------------------------------------- */

/* The payload: a JSON object {"p":"..."} of exactly 'size' bytes (at least 10), its string
 * letters and digits from a fixed seed, so every system stores the same bytes. */
static char *
make_payload(size_t size)
{
	static const char alnum[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	char *p = kb_calloc(size + 1, 1, "the payload");
	uint64_t s = 0x9e3779b97f4a7c15ull;
	memcpy(p, "{\"p\":\"", 6);
	for (size_t i = 6; i < size - 2; i++)
		p[i] = alnum[pl_rand_below(&s, sizeof(alnum) - 1)];
	memcpy(p + size - 2, "\"}", 2);
	return p;
}

static double
parse_double(const char *s, const char *what, double lo, double hi)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end || !(v >= lo && v <= hi))
		kb_die("bad %s '%s'", what, s);
	return v;
}

int
main(int argc, char **argv)
{
	kb_init("peers_load");
	static const struct option longopts[] = {
		{"target", required_argument, NULL, 'T'},
		{"config", required_argument, NULL, 'C'},
		{"size", required_argument, NULL, 'z'},
		{"clients", required_argument, NULL, 'c'},
		{"seconds", required_argument, NULL, 's'},
		{"warmup", required_argument, NULL, 'w'},
		{"batch", required_argument, NULL, 'b'},
		{"events", required_argument, NULL, 'e'},
		{"page", required_argument, NULL, 'p'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	pl_cfg cfg = {.size = 100,
		      .seconds = 3,
		      .warmup = 0.5,
		      .batch = 100,
		      .events = 1000000,
		      .page = 1000};
	uint64_t clients[KB_MAX_LIST] = {1, 16, 64};
	size_t nclients = 3;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'T':
			cfg.target = optarg;
			break;
		case 'C':
			cfg.config = optarg;
			break;
		case 'z':
			cfg.size = kb_parse_u64(optarg, "--size", true);
			break;
		case 'c':
			nclients = kb_parse_list(optarg, clients, KB_MAX_LIST, "--clients", false);
			break;
		case 's':
			cfg.seconds = parse_double(optarg, "--seconds", 0.05, 3600);
			break;
		case 'w':
			cfg.warmup = parse_double(optarg, "--warmup", 0, 3600);
			break;
		case 'b':
			cfg.batch = (int)parse_double(optarg, "--batch", 1, 10000);
			break;
		case 'e':
			cfg.events = kb_parse_u64(optarg, "--events", true);
			break;
		case 'p':
			cfg.page = (int)parse_double(optarg, "--page", 1, 10000);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2 || !cfg.target) {
		usage(stderr);
		return 2;
	}
	size_t si;
	for (si = 0; si < sizeof(systems) / sizeof(systems[0]); si++)
		if (!strcmp(systems[si].name, argv[optind]))
			break;
	if (si == sizeof(systems) / sizeof(systems[0]))
		kb_die("unknown system '%s'", argv[optind]);
	int w;
	for (w = 0; w < PL_NWORKLOADS; w++)
		if (!strcmp(pl_workload_names[w], argv[optind + 1]))
			break;
	if (w == PL_NWORKLOADS)
		kb_die("unknown workload '%s'", argv[optind + 1]);
	if (!(systems[si].workloads & (1u << w)))
		kb_die("%s has no %s workload", argv[optind], argv[optind + 1]);
	if (cfg.size < 10 || cfg.size > 1 << 20)
		kb_die("--size must be 10 B to 1 MiB");
	if (cfg.events == 0)
		kb_die("--events must be positive");
	cfg.system = argv[optind];
	cfg.workload = (pl_workload)w;
	if (!cfg.config)
		cfg.config = cfg.system;
	cfg.payload = make_payload(cfg.size);
	cfg.nonce = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);

	/* reset, fill and catch-up run once, with the first client count. */
	if (w == PL_RESET || w == PL_FILL || w == PL_CATCHUP)
		nclients = 1;
	for (size_t i = 0; i < nclients; i++) {
		cfg.clients = (int)clients[i];
		cfg.nonce += 0x10000; /* request ids of one measurement are new to the next */
		pl_tally t = {0};
		uint64_t t0 = kb_mono_ns();
		systems[si].run(&cfg, &t);
		double wall = (double)(kb_mono_ns() - t0) / 1e9;
		if (w == PL_RESET)
			continue;
		/* fill and catch-up are measured over their whole run, not a window */
		double secs = (w == PL_FILL || w == PL_CATCHUP) ? wall : cfg.seconds;
		int batch = w == PL_BATCH ? cfg.batch : w == PL_CATCHUP ? cfg.page : 1;
		kb_lat_sort(&t.lat);
		double eps = (double)t.events / secs;
		printf("{\"system\":\"%s\",\"config\":\"%s\",\"workload\":\"%s\",\"size\":%zu,"
		       "\"clients\":%d,\"batch\":%d,\"seconds\":%.3f,\"ops\":%" PRIu64
		       ",\"events\":%" PRIu64 ",\"ops_per_s\":%.1f,\"events_per_s\":%.1f,"
		       "\"mb_per_s\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"errors\":%" PRIu64
		       "}\n",
		       cfg.system, cfg.config, pl_workload_names[w], cfg.size, cfg.clients, batch,
		       secs, t.ops, t.events, (double)t.ops / secs, eps,
		       eps * (double)cfg.size / 1e6, kb_percentile_us(&t.lat, 0.5),
		       kb_percentile_us(&t.lat, 0.99), t.errors);
		fflush(stdout);
		fprintf(stderr,
			"  %-16s %-8s %5zu B c%-3d %10.0f ops/s %11.0f ev/s p50 %8.0f us p99 %8.0f "
			"us%s%s\n",
			cfg.config, pl_workload_names[w], cfg.size, cfg.clients,
			(double)t.ops / secs, eps, kb_percentile_us(&t.lat, 0.5),
			kb_percentile_us(&t.lat, 0.99), t.errors ? "  errors: " : "",
			t.errors ? t.first_error : "");
		kb_lat_free(&t.lat);
		if (t.errors && (w == PL_FILL || w == PL_CATCHUP))
			kb_die("%s %s failed: %s", cfg.system, pl_workload_names[w], t.first_error);
	}
	free((char *)cfg.payload);
	return 0;
}
