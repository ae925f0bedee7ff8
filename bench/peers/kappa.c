/*
 * kappa.c -- bench/peers against `kappa serve` over HTTP/JSON: one libcurl multi handle
 * drives every client's keep-alive connection from one thread (closed loop: each client
 * sends its next request when the last one is answered).
 *
 *   append   POST /streams/s-<k> with one event and a unique request_id
 *   batch    the same with 'batch' events
 *   retry    each client POSTs its own fixed body and request_id again and again: after the
 *            first (201) every answer must be 200 with "deduplicated":true
 *   read     GET /views/bench/queries/get?id=<position> (the view bench/peers/bench.sql)
 *   catchup  GET /log?from=P&limit=page from 0 until 'events' events were read
 *   fill     'events' events in appends of 1000 from 4 connections, then wait until the
 *            view has applied them (when the server has it)
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peers.h"

#define STREAMS 10000
#define FILL_CHUNK 1000
#define FILL_CLIENTS 4
#define VIEW_WAIT_NS (600 * 1000000000ull)

typedef struct slot {
	CURL *h;
	int id;
	uint64_t seq;	/* requests sent */
	uint64_t t0;	/* when the current one was sent */
	uint64_t count; /* events in the current request */
	uint64_t from;	/* catchup: position asked for */
	char url[256];
	char *body; /* request body (owned) */
	size_t body_cap;
	char *resp; /* answer body */
	size_t resp_len, resp_cap;
} slot;

typedef struct run {
	const pl_cfg *cfg;
	CURLM *multi;
	struct curl_slist *headers;
	char *events_json; /* "{...},{...}" of 'batch' events */
	pl_window w;
	pl_tally *tally;
	uint64_t rng;
	uint64_t filled; /* fill: events handed out */
	uint64_t next;	 /* catchup: next position to ask for */
} run;

static size_t
on_data(char *ptr, size_t size, size_t n, void *ud)
{
	slot *s = ud;
	size_t len = size * n;
	if (s->resp_len + len + 1 > s->resp_cap) {
		size_t cap = (s->resp_len + len + 1) * 2;
		char *p = realloc(s->resp, cap);
		if (!p)
			return 0;
		s->resp = p;
		s->resp_cap = cap;
	}
	memcpy(s->resp + s->resp_len, ptr, len);
	s->resp_len += len;
	s->resp[s->resp_len] = '\0';
	return len;
}

/* "{"type":"Bench","data":PAYLOAD}" n times, comma-separated. */
static char *
events_json(const pl_cfg *cfg, int n)
{
	size_t one = cfg->size + 32;
	char *p = kb_calloc((size_t)n, one + 1, "a request body"), *q = p;
	for (int i = 0; i < n; i++)
		q += sprintf(q, "%s{\"type\":\"Bench\",\"data\":%s}", i ? "," : "", cfg->payload);
	return p;
}

static void
set_body(slot *s, const char *rid, const char *events)
{
	size_t need = strlen(events) + 200;
	if (need > s->body_cap) {
		free(s->body);
		s->body = kb_calloc(need, 1, "a request body");
		s->body_cap = need;
	}
	if (rid)
		snprintf(s->body, s->body_cap, "{\"request_id\":\"%s\",\"events\":[%s]}", rid,
			 events);
	else
		snprintf(s->body, s->body_cap, "{\"events\":[%s]}", events);
	curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->body);
	curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE, (long)strlen(s->body));
}

/* Prepare the slot's next request; false when there is none (fill or catch-up done). */
static bool
prepare(run *r, slot *s)
{
	const pl_cfg *cfg = r->cfg;
	const char *base = cfg->target;
	char rid[64];
	s->resp_len = 0;
	s->count = 1;
	switch (cfg->workload) {
	case PL_APPEND:
	case PL_BATCH:
		pl_request_id(cfg, rid, sizeof(rid), s->id, s->seq);
		snprintf(s->url, sizeof(s->url), "%s/streams/s-%" PRIu64, base,
			 pl_rand_below(&r->rng, STREAMS));
		set_body(s, rid, r->events_json);
		s->count = pl_op_events(cfg);
		break;
	case PL_RETRY:
		if (!s->seq) {
			snprintf(rid, sizeof(rid), "retry-%08" PRIx32 "-%d", cfg->nonce, s->id);
			snprintf(s->url, sizeof(s->url), "%s/streams/r-%d", base, s->id);
			set_body(s, rid, r->events_json);
		}
		break;
	case PL_READ:
		snprintf(s->url, sizeof(s->url), "%s/views/bench/queries/get?id=%" PRIu64, base,
			 pl_rand_below(&r->rng, cfg->events));
		curl_easy_setopt(s->h, CURLOPT_HTTPGET, 1L);
		break;
	case PL_FILL:
		if (r->filled >= cfg->events)
			return false;
		s->count =
			cfg->events - r->filled < FILL_CHUNK ? cfg->events - r->filled : FILL_CHUNK;
		r->filled += s->count;
		snprintf(s->url, sizeof(s->url), "%s/streams/f-%d", base, s->id);
		{
			char *ev = events_json(cfg, (int)s->count);
			set_body(s, NULL, ev);
			free(ev);
		}
		break;
	case PL_CATCHUP:
		if (r->next >= cfg->events)
			return false;
		s->from = r->next;
		snprintf(s->url, sizeof(s->url), "%s/log?from=%" PRIu64 "&limit=%d", base, s->from,
			 cfg->page);
		curl_easy_setopt(s->h, CURLOPT_HTTPGET, 1L);
		break;
	default:
		return false;
	}
	curl_easy_setopt(s->h, CURLOPT_URL, s->url);
	s->seq++;
	return true;
}

/* A number after "key": in the answer, or -1. */
static int64_t
json_num(const char *body, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	const char *p = strstr(body, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	return *p >= '0' && *p <= '9' ? strtoll(p, NULL, 10) : -1;
}

/* Check a finished request; the events it carried, or -1 (counted as an error). */
static int64_t
finish(run *r, slot *s, long status)
{
	const char *body = s->resp ? s->resp : "";
	switch (r->cfg->workload) {
	case PL_APPEND:
	case PL_BATCH:
	case PL_FILL:
		if (status != 201)
			break;
		return (int64_t)s->count;
	case PL_RETRY:
		if (s->seq == 1 ? status != 201
				: status != 200 || !strstr(body, "\"deduplicated\":true"))
			break;
		return 1;
	case PL_READ:
		if (status != 200 || !strstr(body, "\"rows\":[{"))
			break;
		return 1;
	case PL_CATCHUP: {
		int64_t next = json_num(body, "next");
		if (status != 200 || next <= (int64_t)s->from)
			break;
		r->next = (uint64_t)next;
		return next - (int64_t)s->from;
	}
	default:
		break;
	}
	pl_tally_error(r->tally, "HTTP %ld from %s: %.120s", status, s->url, body);
	return -1;
}

static void
start(run *r, slot *s)
{
	s->t0 = kb_mono_ns();
	CURLMcode mc = curl_multi_add_handle(r->multi, s->h);
	if (mc != CURLM_OK)
		kb_die("curl_multi_add_handle: %s", curl_multi_strerror(mc));
}

/* Wait until GET /views/bench says its position reached 'events'; nothing when the server
 * has no such view. */
static void
wait_view(run *r, slot *s)
{
	uint64_t deadline = kb_mono_ns() + VIEW_WAIT_NS;
	snprintf(s->url, sizeof(s->url), "%s/views/bench", r->cfg->target);
	curl_easy_setopt(s->h, CURLOPT_URL, s->url);
	curl_easy_setopt(s->h, CURLOPT_HTTPGET, 1L);
	for (;;) {
		long status = 0;
		s->resp_len = 0;
		CURLcode cc = curl_easy_perform(s->h);
		if (cc != CURLE_OK)
			kb_die("GET %s: %s", s->url, curl_easy_strerror(cc));
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
		if (status == 404)
			return;
		if (json_num(s->resp ? s->resp : "", "position") >= (int64_t)r->cfg->events)
			return;
		if (kb_mono_ns() > deadline)
			kb_die("the view bench did not catch up: %s", s->resp ? s->resp : "");
		kb_sleep_ns(100000000);
	}
}

void
pl_kappa_run(const pl_cfg *cfg, pl_tally *out)
{
	if (cfg->workload == PL_RESET)
		return; /* run.sh starts a server with a new data directory instead */
	run r = {.cfg = cfg, .tally = out, .rng = 0x2545f4914f6cdd1dull ^ cfg->nonce};
	int n = cfg->workload == PL_CATCHUP ? 1
		: cfg->workload == PL_FILL  ? FILL_CLIENTS
					    : cfg->clients;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	r.multi = curl_multi_init();
	if (!r.multi)
		kb_die("curl_multi_init failed");
	curl_multi_setopt(r.multi, CURLMOPT_MAXCONNECTS, (long)n);
	r.headers = curl_slist_append(NULL, "Content-Type: application/json");
	r.headers = curl_slist_append(r.headers, "Expect:"); /* no 100-continue round trip */
	r.events_json = events_json(cfg, (int)pl_op_events(cfg));
	slot *slots = kb_calloc((size_t)n, sizeof(*slots), "clients");
	for (int i = 0; i < n; i++) {
		slot *s = &slots[i];
		s->id = i;
		if (!(s->h = curl_easy_init()))
			kb_die("curl_easy_init failed");
		curl_easy_setopt(s->h, CURLOPT_PRIVATE, s);
		curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_data);
		curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
		curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, r.headers);
		curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, 60000L);
		curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(s->h, CURLOPT_TCP_NODELAY, 1L);
	}
	bool timed = cfg->workload != PL_FILL && cfg->workload != PL_CATCHUP;
	if (timed)
		pl_window_open(&r.w, cfg);
	else
		r.w = (pl_window){0, 0, UINT64_MAX};
	int active = 0;
	for (int i = 0; i < n; i++)
		if (prepare(&r, &slots[i])) {
			start(&r, &slots[i]);
			active++;
		}
	while (active > 0) {
		int running, left;
		CURLMcode mc = curl_multi_perform(r.multi, &running);
		if (mc != CURLM_OK)
			kb_die("curl_multi_perform: %s", curl_multi_strerror(mc));
		CURLMsg *msg;
		while ((msg = curl_multi_info_read(r.multi, &left))) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			slot *s;
			long status = 0;
			uint64_t t1 = kb_mono_ns();
			CURLcode cc = msg->data.result;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
			curl_multi_remove_handle(r.multi, s->h);
			if (cc != CURLE_OK) {
				pl_tally_error(out, "%s: %s", s->url, curl_easy_strerror(cc));
				if (!timed)
					kb_die("%s: %s", s->url, curl_easy_strerror(cc));
			} else {
				int64_t ev = finish(&r, s, status);
				if (ev >= 0)
					pl_tally_op(out, &r.w, s->t0, t1, (uint64_t)ev);
				else if (!timed)
					kb_die("%s failed: %s", pl_workload_names[cfg->workload],
					       out->first_error);
			}
			if ((!timed || t1 < r.w.end) && prepare(&r, s))
				start(&r, s);
			else
				active--;
		}
		if (active > 0 && (mc = curl_multi_poll(r.multi, NULL, 0, 100, NULL)) != CURLM_OK)
			kb_die("curl_multi_poll: %s", curl_multi_strerror(mc));
	}
	if (cfg->workload == PL_FILL)
		wait_view(&r, &slots[0]);
	for (int i = 0; i < n; i++) {
		curl_easy_cleanup(slots[i].h);
		free(slots[i].body);
		free(slots[i].resp);
	}
	free(slots);
	free(r.events_json);
	curl_slist_free_all(r.headers);
	curl_multi_cleanup(r.multi);
}
