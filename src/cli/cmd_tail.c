/*
 * cmd_tail.c -- `kappa tail`: follow the log like `tail -f` over Server-Sent Events
 * (GET /subscribe?from=P). Prints one EVENT per line (or a table row) as they come. When
 * the connection drops or the server restarts, it reconnects with backoff, sending
 * Last-Event-ID so it resumes after the last event printed: no gap, no duplicate. SIGINT
 * and SIGTERM stop it with exit status 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/sse_reader.h"
#include "cli/table.h"

static const char usage_text[] =
	"usage: kappa tail [--from P | --last N] [--types A,B] [--stream-prefix S]\n"
	"                  [--retry-for S] [--url URL] [--table]\n"
	"\n"
	"Follow the log: print each event as it is appended, one JSON object per line, until\n"
	"Ctrl-C (or SIGTERM). A dropped connection is retried with backoff and resumes after\n"
	"the last event printed.\n"
	"  --from P          start at position P (default: the head, i.e. new events only)\n"
	"  --last N          start N events before the head\n"
	"  --types A,B       only events of these types\n"
	"  --stream-prefix S only events of streams starting with S\n"
	"  --retry-for S     give up after S seconds without the server (default 60)\n"
	"  --url URL         the server (default $KAPPA_URL or " KP_DEFAULT_URL ")\n"
	"  --table           table rows instead of JSON\n"
	"Exit: 0 stopped by a signal, 1 error from the server or gave up, 2 usage.\n";

static const char *const tail_cols[] = {"position", "time",    "stream", "version",
					"type",	    "subject", "data",	 NULL};
static const size_t tail_widths[] = {8, 24, 16, 7, 16, 8, 0};

#define TAIL_ERR_MAX (64 * 1024) /* an error answer kept for its message */

static volatile sig_atomic_t stop_signal;

static void
on_signal(int sig)
{
	stop_signal = sig;
}

typedef struct tail {
	kp_client *c;
	CURL *h;
	kp_sse_reader sse;
	kp_table table;
	unsigned long long last; /* the position of the last event printed */
	int have_last;
	long status; /* of this connection, 0 before its headers */
	kp_buf err;  /* the body of a non-200 answer */
	int fatal;   /* an error event, or stdout failed: stop with exit 1 */
} tail;

static int
on_event(void *ctx, const char *event, const char *id, const char *data, size_t len)
{
	tail *t = ctx;
	if (!strcmp(event, "error")) {
		json_t *j = json_loadb(data, len, 0, NULL);
		json_t *code = json_object_get(j, "code");
		fprintf(stderr, "kappa: %s: the server ended the subscription\n",
			json_is_string(code) ? json_string_value(code) : data);
		json_decref(j);
		t->fatal = 1;
		return 1;
	}
	if (*event && strcmp(event, "message"))
		return 0; /* an event kind this client does not know */
	unsigned long long pos = 0;
	int has_pos = id[0] && !kp_parse_u64(id, &pos);
	if (has_pos && t->have_last && pos <= t->last)
		return 0; /* seen before the reconnection */
	if (t->c->table) {
		json_t *row = json_loadb(data, len, 0, NULL);
		json_t *rows = row ? json_pack("[o]", row) : NULL;
		int bad = !rows || kp_table_print(&t->table, rows, stdout);
		json_decref(rows);
		if (bad) {
			fprintf(stderr, "kappa tail: cannot show event %s as a row\n", id);
			t->fatal = 1;
			return 1;
		}
	} else {
		fwrite(data, 1, len, stdout);
		fputc('\n', stdout);
	}
	if (fflush(stdout)) {
		fprintf(stderr, "kappa tail: cannot write the output: %s\n", strerror(errno));
		t->fatal = 1;
		return 1;
	}
	if (has_pos) {
		t->last = pos;
		t->have_last = 1;
	}
	return 0;
}

static size_t
on_data(char *p, size_t size, size_t n, void *ctx)
{
	tail *t = ctx;
	size_t len = size * n;
	if (!t->status && curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &t->status) != CURLE_OK)
		return 0;
	if (t->status != 200) {
		size_t keep = TAIL_ERR_MAX - t->err.len < len ? TAIL_ERR_MAX - t->err.len : len;
		if (keep && kp_buf_append(&t->err, p, keep))
			return 0;
		return len;
	}
	if (kp_sse_reader_feed(&t->sse, p, len)) {
		if (!t->fatal)
			fprintf(stderr, "kappa tail: an event is larger than %zu MiB\n",
				KP_RESPONSE_MAX >> 20);
		t->fatal = 1;
		return 0;
	}
	return len;
}

/* The head of the log, where a tail without --from starts. Returns an exit status. */
static int
head(kp_client *c, unsigned long long *out)
{
	int rc = kp_client_call_ok(c, "GET", "/log?from=9223372036854775807&limit=1", NULL);
	if (rc)
		return rc;
	json_t *o = json_loadb((const char *)c->resp.data, c->resp.len, 0, NULL);
	json_t *h = json_object_get(o, "head");
	rc = json_is_integer(h) && json_integer_value(h) >= 0 ? 0 : KP_EXIT_ERROR;
	if (rc)
		fprintf(stderr, "kappa tail: the server's /log answer has no head\n");
	else
		*out = (unsigned long long)json_integer_value(h);
	json_decref(o);
	return rc;
}

/* Headers for /subscribe: the token, Accept and Last-Event-ID. NULL when out of memory. */
static struct curl_slist *
sse_headers(const tail *t)
{
	struct curl_slist *l = NULL, *n;
	char last[64];
	snprintf(last, sizeof(last), "Last-Event-ID: %llu", t->last);
	const char *mine[] = {"Accept: text/event-stream", t->have_last ? last : NULL};
	for (size_t i = 0; i < 2 && mine[i]; i++) {
		if (!(n = curl_slist_append(l, mine[i])))
			goto oom;
		l = n;
	}
	for (const struct curl_slist *h = t->c->headers; h; h = h->next) {
		if (strncmp(h->data, "Authorization:", 14))
			continue;
		if (!(n = curl_slist_append(l, h->data)))
			goto oom;
		l = n;
	}
	return l;
oom:
	curl_slist_free_all(l);
	return NULL;
}

enum outcome { T_STOPPED, T_DROPPED, T_REFUSED, T_FATAL };

/* One connection to /subscribe, followed until it ends. 'healthy' is set once the server
 * answered 200. */
static enum outcome
follow(tail *t, CURLM *m, const char *path_tail, unsigned long long start, int *healthy)
{
	kp_buf url = KP_BUF_INIT;
	struct curl_slist *hdrs = sse_headers(t);
	char errbuf[CURL_ERROR_SIZE] = "";
	t->status = 0;
	t->err.len = 0;
	kp_sse_reader_reset(&t->sse);
	*healthy = 0;
	if (!hdrs || kp_buff(&url, "%s/subscribe?from=%llu%s", t->c->url,
			     t->have_last ? t->last + 1 : start, path_tail)) {
		kp_client_oom();
		curl_slist_free_all(hdrs);
		kp_buf_release(&url);
		return T_FATAL;
	}
	CURL *h = t->h;
	int bad = curl_easy_setopt(h, CURLOPT_URL, (char *)url.data) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, t) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK;
	bad |= curl_multi_add_handle(m, h) != CURLM_OK;
	enum outcome out = T_DROPPED;
	CURLcode result = CURLE_OK;
	int running = !bad;
	while (running && !stop_signal) {
		if (curl_multi_perform(m, &running) != CURLM_OK)
			break;
		if (!t->status) /* the headers may come before any of the body */
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &t->status);
		if (t->status == 200)
			*healthy = 1;
		int left;
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(m, &left)))
			if (msg->msg == CURLMSG_DONE)
				result = msg->data.result;
		if (running && curl_multi_poll(m, NULL, 0, 200, NULL) != CURLM_OK)
			break;
	}
	if (!t->status)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &t->status);
	curl_multi_remove_handle(m, h);
	if (stop_signal) {
		out = T_STOPPED;
	} else if (bad || t->fatal) {
		out = T_FATAL;
		if (bad)
			fprintf(stderr, "kappa tail: cannot set up the request\n");
	} else if (t->status && t->status != 200) {
		/* busy or stopping: try again; any other answer is final */
		out = t->status == 503 || t->status == 429 ? T_REFUSED : T_FATAL;
		if (out == T_FATAL)
			kp_client_print_error(t->status, (const char *)t->err.data, t->err.len);
	} else if (!t->status) {
		/* refused or dropped before an answer: try again; a bad URL and such are final */
		out = kp_client_transient(result) ? T_REFUSED : T_FATAL;
		if (out == T_FATAL)
			kp_client_print_transport(t->c, result, errbuf);
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL); /* errbuf ends with this call */
	curl_slist_free_all(hdrs);
	kp_buf_release(&url);
	return out;
}

/* Sleep 'ms' unless a signal comes first. */
static void
nap(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (!stop_signal && nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int
run(tail *t, const char *path_tail, unsigned long long start, long retry_for_s)
{
	CURLM *m = curl_multi_init();
	if (!m || !(t->h = kp_client_easy(t->c))) {
		if (m)
			curl_multi_cleanup(m);
		return kp_client_oom();
	}
	long delay = 100;
	uint64_t down_since = 0; /* monotonic ns when the server was last lost, 0: it is up */
	int rc = KP_EXIT_OK;
	for (;;) {
		int healthy;
		enum outcome o = follow(t, m, path_tail, start, &healthy);
		if (o == T_STOPPED)
			break;
		if (o == T_FATAL) {
			rc = KP_EXIT_ERROR;
			break;
		}
		if (healthy) { /* it was up: start the backoff again */
			down_since = 0;
			delay = 100;
		}
		uint64_t now = kp_mono_ns();
		if (!down_since)
			down_since = now;
		if (now - down_since > (uint64_t)retry_for_s * 1000000000u) {
			fprintf(stderr, "kappa tail: gave up on %s after %ld s without it\n",
				t->c->url, retry_for_s);
			rc = KP_EXIT_ERROR;
			break;
		}
		nap(delay);
		if (stop_signal)
			break;
		delay = delay * 2 > 5000 ? 5000 : delay * 2;
	}
	curl_easy_cleanup(t->h);
	curl_multi_cleanup(m);
	return rc;
}

int
kp_cmd_tail(int argc, char **argv)
{
	kp_client c;
	kp_client_defaults(&c);
	const char *from = NULL, *lastn = NULL, *types = NULL, *prefix = NULL, *retry = "60";
	const kp_opt opts[] = {{"--from", &from, NULL, NULL, NULL},
			       {"--last", &lastn, NULL, NULL, NULL},
			       {"--types", &types, NULL, NULL, NULL},
			       {"--stream-prefix", &prefix, NULL, NULL, NULL},
			       {"--retry-for", &retry, NULL, NULL, NULL},
			       {NULL, NULL, NULL, NULL, NULL}};
	int n = kp_client_args(&c, argc, argv, opts, NULL, 0), rc;
	unsigned long long start = 0, back = 0, retry_s;
	if (n == -KP_ARG_HELP)
		return kp_usage(usage_text, 1);
	if (n < 0 || (from && kp_parse_u64(from, &start)) ||
	    (lastn && kp_parse_u64(lastn, &back)) || (from && lastn) ||
	    kp_parse_u64(retry, &retry_s) || retry_s > 86400 * 365) {
		if (n >= 0)
			fprintf(stderr, "kappa tail: --from, --last and --retry-for take a number "
					"(and only one of --from and --last)\n");
		return kp_usage(usage_text, 0);
	}
	tail t;
	memset(&t, 0, sizeof(t));
	t.c = &c;
	kp_sse_reader_init(&t.sse, on_event, &t, KP_RESPONSE_MAX);
	kp_table_init(&t.table);
	kp_buf filters = KP_BUF_INIT;
	if ((rc = kp_client_open(&c)))
		goto out;
	if (kp_table_columns(&t.table, tail_cols, tail_widths) || kp_buff(&filters, "%s", "") ||
	    (types && (kp_buff(&filters, "&types=") || kp_client_escape(&c, &filters, types))) ||
	    (prefix &&
	     (kp_buff(&filters, "&stream_prefix=") || kp_client_escape(&c, &filters, prefix)))) {
		rc = kp_client_oom();
		goto out;
	}
	if (!from) {
		unsigned long long h;
		if ((rc = head(&c, &h)))
			goto out;
		start = h > back ? h - back : 0;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	rc = run(&t, (const char *)filters.data, start, (long)retry_s);
out:
	kp_buf_release(&filters);
	kp_buf_release(&t.err);
	kp_sse_reader_release(&t.sse);
	kp_table_release(&t.table);
	kp_client_close(&c);
	return rc;
}
