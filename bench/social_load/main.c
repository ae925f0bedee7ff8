/*
 * main.c -- social_load: a load generator for the social example. It drives a running
 * `kappa serve` with the example's views and dataset (what `make run` serves) over HTTP
 * keep-alive connections, with a Twitter-shaped mix: home-timeline reads far more often
 * than posts (60:1 by default), plus likes, follows and searches, the acting users a Zipf
 * choice by activity. Loopback servers only. `make bench` builds it but does not run it.
 *
 * Open loop (--rate R): operations start at Poisson arrival times of R per second whether
 * or not earlier ones finished (at most --connections in flight; the rest wait), and each
 * latency counts from the operation's arrival time, so a slow server cannot hide its queue
 * (no coordinated omission). Closed loop (no --rate): --connections connections, each
 * starting the next operation when its last one ends.
 *
 * Freshness: after each post is acknowledged, one of the author's followers reads their
 * home timeline with min_position = the post's last_position (the server answers once the
 * view has applied it; --poll reads without it, again every millisecond, instead); the time
 * from the acknowledgement to the answer that holds the post is the post's freshness.
 *
 * It rebuilds the dataset's users and follower graph with the generator's code from --users,
 * --seed and --follows (which must be the ones the data was generated with; checked against
 * the server), to know who follows whom. It changes the data only in ways a rerun tolerates:
 * new posts with ids of their own, likes of those posts, and unfollows that it follows back
 * before it exits.
 *
 * Output: a table, then one JSON object per figure per line, and nothing after them.
 *
 * Usage: social_load [--url URL] [--rate OPS] [--connections N] [--duration S] [--ops N]
 *                    [--warmup S] [--mix timeline=60,post=1,...] [--limit N] [--poll]
 *                    [--users N] [--seed S] [--follows F]
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#include "load.h"

#define DEFAULT_URL "http://127.0.0.1:7070"
#define FRESH_RETRY_NS 1000000ull      /* between two probes of one post */
#define FRESH_GIVE_UP_NS 2000000000ull /* a post not seen this long after its ack: missing */
#define REQUEST_TIMEOUT_MS 10000L
#define MAX_ERRORS_SHOWN 5

static volatile sig_atomic_t interrupted;

static void
on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static const char usage_text[] =
	"usage: social_load [--url URL] [--rate OPS] [--connections N] [--duration S] [--ops N]\n"
	"                   [--warmup S] [--mix LIST] [--limit N] [--poll]\n"
	"                   [--users N] [--seed S] [--follows F]\n"
	"\n"
	"Drive a running kappa server with the social example (start it with `make run`) and\n"
	"report ops/s, latencies and errors per operation, and post-to-timeline freshness.\n"
	"  --url URL        the server, on a loopback address (default $KAPPA_URL or\n"
	"                   " DEFAULT_URL ")\n"
	"  --rate OPS       open loop: OPS operations per second (Poisson arrivals); without it,\n"
	"                   closed loop\n"
	"  --connections N  at most N in flight (default 8 closed loop, 64 open loop)\n"
	"  --duration S     measure S seconds (default 30) ...\n"
	"  --ops N          ... or N operations of the mix, whichever comes first\n"
	"  --warmup S       run S seconds before measuring (default 2)\n"
	"  --mix LIST       weights (default timeline=60,post=1,like=3,follow=1,search=2)\n"
	"  --limit N        posts per home-timeline read (default 20)\n"
	"  --poll           freshness by reading again every ms instead of min_position\n"
	"  --users N, --seed S, --follows F\n"
	"                   those the data was generated with (kappa-social-gen's defaults)\n"
	"Exit: 0 done, 1 no server, not the social example's data, or an error, 2 bad usage.\n";

static void
usage(FILE *f)
{
	fputs(usage_text, f);
}

static void __attribute__((noreturn)) bad_usage(const char *fmt, const char *arg)
{
	fputs("social_load: ", stderr);
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	usage(stderr);
	exit(2);
}

static double
parse_num(const char *s, const char *what, double lo, double hi)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		bad_usage(what, s);
	return v;
}

static void
parse_mix(sl_run *run, const char *s)
{
	for (int k = 0; k < N_MIX; k++)
		run->mix[k] = 0;
	char *copy = strdup(s), *save = NULL;
	if (!copy)
		kb_die("out of memory");
	double total = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int k;
		if (!eq)
			bad_usage("bad --mix entry '%s' (want name=weight)", tok);
		*eq = '\0';
		for (k = 0; k < N_MIX && strcmp(sl_op_names[k], tok); k++)
			;
		if (k == N_MIX)
			bad_usage("unknown operation '%s' in --mix", tok);
		run->mix[k] = parse_num(eq + 1, "bad --mix weight '%s'", 0, 1e9);
		total += run->mix[k];
	}
	free(copy);
	if (total <= 0)
		bad_usage("--mix '%s' has no positive weight", s);
}

static void
parse_options(sl_run *run, int argc, char **argv, uint32_t *users, double *follows)
{
	static const struct option longopts[] = {
		{"url", required_argument, NULL, 'U'},
		{"rate", required_argument, NULL, 'r'},
		{"connections", required_argument, NULL, 'c'},
		{"duration", required_argument, NULL, 'd'},
		{"ops", required_argument, NULL, 'o'},
		{"warmup", required_argument, NULL, 'w'},
		{"mix", required_argument, NULL, 'm'},
		{"limit", required_argument, NULL, 'l'},
		{"poll", no_argument, NULL, 'P'},
		{"users", required_argument, NULL, 'u'},
		{"seed", required_argument, NULL, 's'},
		{"follows", required_argument, NULL, 'f'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *env = getenv("KAPPA_URL");
	run->url = env && *env ? env : DEFAULT_URL;
	run->duration = 30;
	run->warmup = 2;
	run->limit = 20;
	run->fresh_wait = 1;
	run->seed = 1;
	*users = 10000;
	*follows = 20;
	parse_mix(run, "timeline=60,post=1,like=3,follow=1,search=2");
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
		switch (c) {
		case 'U':
			run->url = optarg;
			break;
		case 'r':
			run->rate = parse_num(optarg, "bad --rate '%s'", 0.001, 1e7);
			break;
		case 'c':
			run->connections = (unsigned)parse_num(optarg,
							       "bad --connections '%s' (1 to "
							       "1000)",
							       1, 1000);
			break;
		case 'd':
			run->duration = parse_num(optarg, "bad --duration '%s'", 0.1, 86400);
			break;
		case 'o':
			run->max_ops = (uint64_t)parse_num(optarg, "bad --ops '%s'", 1, 1e12);
			break;
		case 'w':
			run->warmup = parse_num(optarg, "bad --warmup '%s'", 0, 3600);
			break;
		case 'm':
			parse_mix(run, optarg);
			break;
		case 'l':
			run->limit = (unsigned)parse_num(optarg, "bad --limit '%s' (1 to 1000)", 1,
							 1000);
			break;
		case 'P':
			run->fresh_wait = 0;
			break;
		case 'u':
			*users = (uint32_t)parse_num(optarg, "bad --users '%s'", 1, 2000000);
			break;
		case 's':
			run->seed = strtoull(optarg, NULL, 10);
			if (optarg[0] < '0' || optarg[0] > '9')
				bad_usage("bad --seed '%s'", optarg);
			break;
		case 'f':
			*follows = parse_num(optarg, "bad --follows '%s'", 1, 1000);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case ':':
			bad_usage("%s needs a value", argv[optind - 1]);
		default:
			bad_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind != argc)
		bad_usage("unexpected argument '%s'", argv[optind]);
	if (!run->connections)
		run->connections = run->rate > 0 ? 64 : 8;
	size_t n = strlen(run->url);
	while (n && run->url[n - 1] == '/') /* no trailing slash */
		n--;
	char *u = strndup(run->url, n);
	if (!u)
		kb_die("out of memory");
	run->url = u;
	if (!sl_url_is_loopback(run->url))
		bad_usage("refusing '%s': only http:// on a loopback address (127.0.0.0/8, "
			  "localhost, [::1])",
			  run->url);
}

/* ---- the checks before the load ------------------------------------------------------ */

static size_t
collect(char *p, size_t size, size_t n, void *ctx)
{
	sg_buf_put(ctx, p, size * n);
	return size * n;
}

/* GET url + path, synchronously: the HTTP status (0 when nothing answers) and the body. */
static long
get_json(const sl_run *run, const char *path, json_t **out)
{
	CURL *h = curl_easy_init();
	sg_buf url = {NULL, 0, 0}, body = {NULL, 0, 0};
	long status = 0;
	*out = NULL;
	if (!h)
		kb_die("curl_easy_init failed");
	sg_buf_printf(&url, "%s%s", run->url, path);
	curl_easy_setopt(h, CURLOPT_URL, sg_buf_str(&url));
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(h) == CURLE_OK) {
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		*out = json_loadb(body.p ? body.p : "", body.len, 0, NULL);
	}
	curl_easy_cleanup(h);
	sg_buf_free(&url);
	sg_buf_free(&body);
	return status;
}

/* The "username" of the first event of stream user-u{k+1}, or "" (owned by 'buf'). */
static const char *
first_username(const sl_run *run, uint32_t k, char buf[SG_NAME_MAX])
{
	char path[64];
	json_t *j;
	snprintf(path, sizeof(path), "/streams/user-u%u?from_version=0&limit=1", k + 1);
	buf[0] = '\0';
	if (get_json(run, path, &j) == 200) {
		json_t *ev = json_array_get(json_object_get(j, "events"), 0);
		const char *u =
			json_string_value(json_object_get(json_object_get(ev, "data"), "username"));
		snprintf(buf, SG_NAME_MAX, "%s", u ? u : "");
	}
	json_decref(j);
	return buf;
}

/* A server answers; the social and search views are live; the users are the model's. */
static void
preflight(const sl_run *run)
{
	json_t *j;
	if (get_json(run, "/health", &j) != 200)
		kb_die("no kappa server answers at %s: start one with `make run` (this program "
		       "drives a running server)",
		       run->url);
	json_decref(j);
	static const char *const views[] = {"social", "search"};
	for (size_t i = 0; i < 2; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/views/%s", views[i]);
		long st = get_json(run, path, &j);
		const char *state = json_string_value(json_object_get(j, "state"));
		if (st != 200 || !state || strcmp(state, "live")) {
			json_decref(j);
			kb_die("the view '%s' is %s at %s: serve the social example (make run) and "
			       "wait until its views are live",
			       views[i], st == 200 ? state ? state : "?" : "missing", run->url);
		}
		json_decref(j);
	}
	char want[SG_NAME_MAX], got[SG_NAME_MAX];
	uint32_t probe[2] = {0, run->m.n - 1};
	for (int i = 0; i < 2; i++) {
		sg_user_username(&run->m, probe[i], want);
		if (strcmp(first_username(run, probe[i], got), want))
			kb_die("the server's data is not kappa-social-gen --users %u --seed "
			       "%" PRIu64
			       " --follows %g: user u%u is '%s', expected '%s' (pass the options "
			       "the data was generated with)",
			       run->m.n, run->seed, run->m.follows, probe[i] + 1, got, want);
	}
	if (first_username(run, run->m.n, got)[0])
		kb_die("the server has more than --users %u users (u%u is '%s')", run->m.n,
		       run->m.n + 1, got);
}

/* ---- the loop ------------------------------------------------------------------------ */

typedef struct loop {
	sl_run *run;
	CURLM *multi;
	sl_conn *conns;
	unsigned nconns, busy;
	sl_op *head, *tail; /* waiting for a connection */
	sl_op **later;	    /* probes to send again at their due time */
	size_t nlater, caplater;
	double cum[N_MIX]; /* cumulative mix weights */
	struct curl_slist *headers;
} loop;

static sl_op *
op_new(int kind)
{
	sl_op *op = kb_calloc(1, sizeof(*op), "an operation");
	op->kind = kind;
	return op;
}

static void
enqueue(loop *l, sl_op *op)
{
	op->next = NULL;
	if (l->tail)
		l->tail->next = op;
	else
		l->head = op;
	l->tail = op;
}

static void
defer(loop *l, sl_op *op)
{
	if (l->nlater == l->caplater) {
		l->caplater = l->caplater ? l->caplater * 2 : 256;
		l->later = realloc(l->later, l->caplater * sizeof(*l->later));
		if (!l->later)
			kb_die("out of memory");
	}
	l->later[l->nlater++] = op;
}

static int
pick_kind(loop *l)
{
	double x = sg_rng_unit(&l->run->rng) * l->cum[N_MIX - 1];
	int k = 0;
	while (k < N_MIX - 1 && l->cum[k] <= x)
		k++;
	return k;
}

static size_t
on_data(char *p, size_t size, size_t n, void *ctx)
{
	sg_buf_put(&((sl_conn *)ctx)->resp, p, size * n);
	return size * n;
}

static void
conns_init(loop *l)
{
	l->conns = kb_calloc(l->nconns, sizeof(*l->conns), "connections");
	l->headers = curl_slist_append(NULL, "Content-Type: application/json");
	l->headers = curl_slist_append(l->headers, "Expect:");
	if (!l->headers)
		kb_die("out of memory");
	for (unsigned i = 0; i < l->nconns; i++) {
		sl_conn *c = &l->conns[i];
		c->h = curl_easy_init();
		if (!c->h)
			kb_die("curl_easy_init failed");
		curl_easy_setopt(c->h, CURLOPT_PRIVATE, c);
		curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
		curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, l->headers);
		curl_easy_setopt(c->h, CURLOPT_ERRORBUFFER, c->errbuf);
		curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
		curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
	}
}

/* Start waiting operations on free connections. */
static void
dispatch(loop *l)
{
	for (unsigned i = 0; i < l->nconns && l->head; i++) {
		sl_conn *c = &l->conns[i];
		if (c->op)
			continue;
		c->op = l->head;
		l->head = l->head->next;
		if (!l->head)
			l->tail = NULL;
		if (c->op->measured && c->op->kind != OP_FRESH)
			kb_lat_push(&l->run->start_lag, kb_mono_ns() - c->op->due_ns);
		sl_op_request(l->run, c);
		CURLMcode mc = curl_multi_add_handle(l->multi, c->h);
		if (mc != CURLM_OK)
			kb_die("curl_multi_add_handle: %s", curl_multi_strerror(mc));
		l->busy++;
	}
}

static void
record(sl_run *run, int kind, int measured, uint64_t ns, int ok)
{
	if (!measured)
		return;
	sl_stats *s = &run->st[kind];
	s->done++;
	if (ok)
		kb_lat_push(&s->lat, ns);
	else
		s->errors++;
}

/* An operation ended: count it, and follow a post with its probe. */
static void
finish(loop *l, sl_conn *c, CURLcode cc)
{
	sl_run *run = l->run;
	sl_op *op = c->op;
	uint64_t now = kb_mono_ns();
	long status = 0;
	if (cc == CURLE_OK)
		curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	sl_op fresh;
	int want_fresh, retry;
	int ok = sl_op_answer(run, c, status, &fresh, &want_fresh, &retry);
	if (!ok && !retry && op->measured && run->first_errors++ < MAX_ERRORS_SHOWN)
		fprintf(stderr, "social_load: %s %s: %s %.*s\n", sl_op_names[op->kind],
			sg_buf_str(&c->url), status ? "HTTP" : "error",
			status ? 200 : (int)strlen(c->errbuf),
			status ? sg_buf_str(&c->resp) : c->errbuf);
	if (op->kind == OP_FRESH) {
		run->fresh_probes++;
		if (retry && now - op->ack_ns < FRESH_GIVE_UP_NS) {
			op->due_ns = now + FRESH_RETRY_NS;
			defer(l, op);
			return;
		}
		if (retry) {
			run->st[OP_FRESH].missing += op->measured;
			record(run, OP_FRESH, op->measured, 0, 0);
		} else {
			record(run, OP_FRESH, op->measured, now - op->ack_ns, ok);
		}
	} else {
		record(run, op->kind, op->measured, now - op->due_ns, ok);
	}
	if (want_fresh) {
		sl_op *p = op_new(OP_FRESH);
		*p = fresh;
		p->ack_ns = p->due_ns = now;
		enqueue(l, p);
	}
	free(op);
}

/* Run until 'end_ns' (new operations of the mix stop then; 0: none at all) and everything
 * started has finished. Operations arriving before 'measure_ns' are not counted. */
static void
run_loop(loop *l, uint64_t measure_ns, uint64_t end_ns)
{
	sl_run *run = l->run;
	uint64_t next_due = kb_mono_ns();
	for (;;) {
		uint64_t now = kb_mono_ns();
		int stopping = !end_ns || now >= end_ns || interrupted ||
			       (run->max_ops && run->issued >= run->max_ops);
		if (!stopping) {
			if (run->rate > 0) {
				while (next_due <= now &&
				       !(run->max_ops && run->issued >= run->max_ops)) {
					sl_op *op = op_new(pick_kind(l));
					op->due_ns = next_due;
					op->measured = next_due >= measure_ns;
					if (sl_op_plan(run, op)) {
						run->st[op->kind].skipped += op->measured;
						free(op);
					} else {
						run->issued += op->measured;
						enqueue(l, op);
					}
					next_due += (uint64_t)(-log(1 - sg_rng_unit(&run->rng)) /
							       run->rate * 1e9);
				}
			} else {
				unsigned waiting = 0;
				for (sl_op *o = l->head; o; o = o->next)
					waiting++;
				for (unsigned i = l->busy + waiting; i < l->nconns; i++) {
					sl_op *op = op_new(pick_kind(l));
					op->due_ns = now;
					op->measured = now >= measure_ns;
					if (sl_op_plan(run, op)) {
						run->st[op->kind].skipped += op->measured;
						free(op);
						continue;
					}
					run->issued += op->measured;
					enqueue(l, op);
				}
			}
		}
		/* probes whose time has come */
		for (size_t i = 0; i < l->nlater;) {
			if (l->later[i]->due_ns <= now) {
				enqueue(l, l->later[i]);
				l->later[i] = l->later[--l->nlater];
			} else {
				i++;
			}
		}
		dispatch(l);
		if (stopping && !l->busy && !l->head && !l->nlater)
			return;
		int running;
		curl_multi_perform(l->multi, &running);
		CURLMsg *msg;
		int left;
		while ((msg = curl_multi_info_read(l->multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			sl_conn *c;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
			CURLcode cc = msg->data.result;
			curl_multi_remove_handle(l->multi, c->h);
			l->busy--;
			finish(l, c, cc);
			c->op = NULL;
		}
		dispatch(l);
		/* Sleep until a socket is ready, curl's timeout, the next arrival or probe. */
		now = kb_mono_ns();
		if (!stopping && run->rate <= 0 && l->busy < l->nconns)
			continue; /* closed loop: a connection is free for the next operation */
		uint64_t wake = now + 50000000u;
		if (!stopping && run->rate > 0 && next_due < wake)
			wake = next_due;
		for (size_t i = 0; i < l->nlater; i++)
			if (l->later[i]->due_ns < wake)
				wake = l->later[i]->due_ns;
		long curl_ms = -1;
		curl_multi_timeout(l->multi, &curl_ms);
		if (curl_ms >= 0 && now + (uint64_t)curl_ms * 1000000u < wake)
			wake = now + (uint64_t)curl_ms * 1000000u;
		if (wake <= now)
			continue;
		fd_set r, w, e;
		int maxfd = -1;
		FD_ZERO(&r);
		FD_ZERO(&w);
		FD_ZERO(&e);
		curl_multi_fdset(l->multi, &r, &w, &e, &maxfd);
		uint64_t ns = wake - now;
		struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
		if (maxfd < 0 && !l->busy)
			kb_sleep_ns(ns);
		else if (maxfd < 0) /* curl holds no socket right now: check again soon */
			kb_sleep_ns(ns < 100000 ? ns : 100000);
		else
			pselect(maxfd + 1, &r, &w, &e, &ts, NULL);
	}
}

/* ---- the report ---------------------------------------------------------------------- */

static void
json_line(const char *metric, double value, const char *unit)
{
	printf("{\"bench\":\"social_load\",\"metric\":\"%s\",\"value\":%.6g,\"unit\":\"%s\"}\n",
	       metric, value, unit);
}

static void
report(sl_run *run, double secs, double measured_secs)
{
	printf("social_load: %s, %s", run->url, run->rate > 0 ? "open loop" : "closed loop");
	if (run->rate > 0)
		printf(" at %.0f ops/s", run->rate);
	printf(", %u connections, %.1f s measured (+ %.1f s warm-up), mix", run->connections,
	       measured_secs, run->warmup);
	for (int k = 0; k < N_MIX; k++)
		printf("%s%s=%g", k ? "," : " ", sl_op_names[k], run->mix[k]);
	printf("\n\n%-10s %9s %9s %9s %9s %9s %9s %7s %7s\n", "operation", "done", "ops/s",
	       "p50 ms", "p95 ms", "p99 ms", "max ms", "errors", "skipped");
	for (int k = 0; k < N_OPS; k++) {
		sl_stats *s = &run->st[k];
		kb_lat_sort(&s->lat);
		if (k == OP_FRESH)
			printf("%-10s %9" PRIu64 " %9s", sl_op_names[k], s->done, "");
		else
			printf("%-10s %9" PRIu64 " %9.1f", sl_op_names[k], s->done,
			       (double)s->done / measured_secs);
		printf(" %9.2f %9.2f %9.2f %9.2f %7" PRIu64 " %7" PRIu64 "\n",
		       kb_percentile_us(&s->lat, 0.50) / 1000,
		       kb_percentile_us(&s->lat, 0.95) / 1000,
		       kb_percentile_us(&s->lat, 0.99) / 1000,
		       kb_percentile_us(&s->lat, 1.0) / 1000, s->errors,
		       k == OP_FRESH ? s->missing : s->skipped);
	}
	printf("\nfreshness: from a post's acknowledgement to a follower's home timeline holding "
	       "it (%s); %" PRIu64 " probes, %" PRIu64 " posts not seen within %.0f s (in the "
	       "skipped column)\n",
	       run->fresh_wait ? "one read with min_position = the post's position"
			       : "reads every ms",
	       run->fresh_probes, run->st[OP_FRESH].missing, FRESH_GIVE_UP_NS / 1e9);
	kb_lat_sort(&run->start_lag);
	printf("the generator itself: from an operation's arrival to its request's start p50 %.2f "
	       "ms, p99 %.2f ms, max %.2f ms (waiting for a connection included)\n",
	       kb_percentile_us(&run->start_lag, 0.5) / 1000,
	       kb_percentile_us(&run->start_lag, 0.99) / 1000,
	       kb_percentile_us(&run->start_lag, 1.0) / 1000);
	printf("total %.1f s\n\n", secs);
	uint64_t all = 0;
	for (int k = 0; k < N_MIX; k++)
		all += run->st[k].done;
	json_line("ops_per_s", (double)all / measured_secs, "ops/s");
	json_line("start_lag_p99", kb_percentile_us(&run->start_lag, 0.99) / 1000, "ms");
	for (int k = 0; k < N_OPS; k++) {
		sl_stats *s = &run->st[k];
		char m[64];
		if (!s->done)
			continue;
		const char *n = sl_op_names[k];
		if (k != OP_FRESH) {
			snprintf(m, sizeof(m), "%s_ops_per_s", n);
			json_line(m, (double)s->done / measured_secs, "ops/s");
		}
		static const double ps[] = {0.50, 0.95, 0.99, 1.0};
		static const char *const pn[] = {"p50", "p95", "p99", "max"};
		for (int i = 0; i < 4; i++) {
			snprintf(m, sizeof(m), "%s_%s", n, pn[i]);
			json_line(m, kb_percentile_us(&s->lat, ps[i]) / 1000, "ms");
		}
		snprintf(m, sizeof(m), "%s_errors", n);
		json_line(m, (double)s->errors, "count");
		if (k == OP_FRESH) {
			json_line("freshness_missing", (double)s->missing, "count");
		}
	}
}

int
main(int argc, char **argv)
{
	kb_init("social_load");
	sl_run run;
	memset(&run, 0, sizeof(run));
	uint32_t users;
	double follows;
	parse_options(&run, argc, argv, &users, &follows);
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		kb_die("curl_global_init failed");
	if (sg_model_build(&run.m, run.seed, users, follows))
		kb_die("out of memory for the model");
	preflight(&run);
	struct timespec wall;
	clock_gettime(CLOCK_REALTIME, &wall);
	run.run_id = (uint64_t)wall.tv_sec * 1000 + (uint64_t)getpid() % 1000;
	sg_rng_seed(&run.rng, run.run_id, 77);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	loop l;
	memset(&l, 0, sizeof(l));
	l.run = &run;
	l.nconns = run.connections;
	l.multi = curl_multi_init();
	if (!l.multi)
		kb_die("curl_multi_init failed");
	curl_multi_setopt(l.multi, CURLMOPT_MAXCONNECTS, (long)l.nconns);
	double sum = 0;
	for (int k = 0; k < N_MIX; k++)
		l.cum[k] = sum += run.mix[k];
	conns_init(&l);

	fprintf(stderr, "social_load: %.0f s warm-up, then %.0f s%s against %s\n", run.warmup,
		run.duration, run.max_ops ? " (or --ops)" : "", run.url);
	uint64_t t0 = kb_mono_ns(), measure = t0 + (uint64_t)(run.warmup * 1e9);
	uint64_t end = measure + (uint64_t)(run.duration * 1e9);
	run_loop(&l, measure, end);
	uint64_t t1 = kb_mono_ns();
	double measured_secs = ((t1 < end ? t1 : end) - measure) / 1e9;
	if (measured_secs <= 0)
		kb_die("stopped before the measurement began");

	/* Follow back what this run unfollowed, so the data is the dataset's graph again. */
	uint32_t back = 0;
	interrupted = 0;
	while (run.npending > run.pending_head) {
		sl_edge e = run.pending[run.pending_head++];
		sl_op *op = op_new(OP_FOLLOW);
		op->user = e.follower;
		op->other = e.followee;
		op->follow = 1;
		op->due_ns = kb_mono_ns();
		enqueue(&l, op);
		back++;
	}
	if (back) {
		fprintf(stderr, "social_load: following back %u unfollowed users\n", back);
		run_loop(&l, UINT64_MAX, 0);
	}
	if (run.unfollowed.n)
		fprintf(stderr, "social_load: %zu unfollows could not be undone\n",
			run.unfollowed.n);
	report(&run, (kb_mono_ns() - t0) / 1e9, measured_secs);
	for (unsigned i = 0; i < l.nconns; i++) {
		curl_easy_cleanup(l.conns[i].h);
		sg_buf_free(&l.conns[i].url);
		sg_buf_free(&l.conns[i].body);
		sg_buf_free(&l.conns[i].resp);
	}
	free(l.conns);
	free(l.later);
	curl_slist_free_all(l.headers);
	curl_multi_cleanup(l.multi);
	curl_global_cleanup();
	for (int k = 0; k < N_OPS; k++)
		kb_lat_free(&run.st[k].lat);
	kb_lat_free(&run.start_lag);
	free(run.posts);
	free(run.pending);
	free(run.liked.v);
	free(run.unfollowed.v);
	sg_model_release(&run.m);
	free((char *)run.url);
	return 0;
}
