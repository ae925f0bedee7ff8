/*
 * import_send.c -- `kappa import`'s sending: appends queued in file order go out through
 * a libcurl multi handle, up to --parallel at once. A stream has at most one append in
 * flight and its appends leave in queue order, so no stream is reordered; appends of
 * other streams pass a blocked one. Busy answers (429, 503) and dropped connections are
 * retried with backoff (safe: every append carries a request id). A refused append fails
 * its stream: the stream's later appends are skipped, so a re-run appends them in order.
 * When the server cannot be reached at all, the import stops.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "cli/import.h"

#define IMP_RETRIES 6 /* 0.1 s, 0.2 s, ... 3.2 s: about 6 s in all */

struct imp_slot {
	CURL *h;
	imp_batch *b;	   /* in flight or waiting to be retried; NULL: free */
	uint64_t retry_at; /* monotonic ns to send it again; 0: in flight */
	int tries;
	int too_big;
	kp_buf resp;
	kp_buf url;
	char errbuf[CURL_ERROR_SIZE];
};

static size_t
on_body(char *p, size_t size, size_t n, void *ctx)
{
	imp_slot *x = ctx;
	size_t len = size * n;
	if (x->resp.len + len > (1u << 20)) { /* an append's answer is small */
		x->too_big = 1;
		return 0;
	}
	return kp_buf_append(&x->resp, p, len) ? 0 : len;
}

int
imp_sender_init(imp_sender *s, kp_client *c, size_t parallel)
{
	memset(s, 0, sizeof(*s));
	s->c = c;
	s->nslots = parallel;
	s->max_queued = 2 * parallel + 2;
	if (!(s->m = curl_multi_init()) || !(s->slots = calloc(parallel, sizeof(*s->slots))) ||
	    !(s->failed_streams = json_object()))
		return kp_client_oom();
	for (size_t i = 0; i < parallel; i++) {
		imp_slot *x = &s->slots[i];
		if (!(x->h = kp_client_easy(c)))
			return kp_client_oom();
		int bad = curl_easy_setopt(x->h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
		bad |= curl_easy_setopt(x->h, CURLOPT_WRITEDATA, x) != CURLE_OK;
		bad |= curl_easy_setopt(x->h, CURLOPT_PRIVATE, x) != CURLE_OK;
		bad |= curl_easy_setopt(x->h, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK;
		if (bad) {
			fprintf(stderr, "kappa import: cannot set up libcurl\n");
			return KP_EXIT_ERROR;
		}
	}
	return KP_EXIT_OK;
}

void
imp_sender_release(imp_sender *s)
{
	for (size_t i = 0; s->slots && i < s->nslots; i++) {
		imp_slot *x = &s->slots[i];
		if (x->h) {
			if (x->b && !x->retry_at)
				curl_multi_remove_handle(s->m, x->h);
			curl_easy_cleanup(x->h);
		}
		imp_batch_free(x->b);
		kp_buf_release(&x->resp);
		kp_buf_release(&x->url);
	}
	free(s->slots);
	while (s->head) {
		imp_batch *b = s->head;
		s->head = b->next;
		imp_batch_free(b);
	}
	if (s->m)
		curl_multi_cleanup(s->m);
	json_decref(s->failed_streams);
	memset(s, 0, sizeof(*s));
}

static void
record(imp_sender *s, const imp_batch *b, const char *what)
{
	if (s->nfailures == IMP_MAX_FAILURES)
		return;
	char *f = s->failures[s->nfailures++];
	if (b->first_line == b->last_line)
		snprintf(f, sizeof(s->failures[0]), "line %llu (stream %s): %s", b->first_line,
			 b->stream, what);
	else
		snprintf(f, sizeof(s->failures[0]), "lines %llu-%llu (stream %s): %s",
			 b->first_line, b->last_line, b->stream, what);
}

/* 'b' did not make it: count it, say why, and fail its stream. Takes 'b'. */
static void
fail(imp_sender *s, imp_batch *b, const char *what)
{
	s->st.failed += b->events;
	record(s, b, what);
	json_object_set_new(s->failed_streams, b->stream, json_true());
	imp_batch_free(b);
}

/* Send x->b. */
static void
start(imp_sender *s, imp_slot *x)
{
	x->url.len = 0;
	x->resp.len = 0;
	x->too_big = 0;
	x->errbuf[0] = '\0';
	x->retry_at = 0;
	int bad = kp_buff(&x->url, "%s/streams/", s->c->url) ||
		  kp_client_escape(s->c, &x->url, x->b->stream);
	bad = bad || curl_easy_setopt(x->h, CURLOPT_URL, (char *)x->url.data) != CURLE_OK;
	bad = bad || curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->b->body) != CURLE_OK;
	bad = bad || curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE_LARGE,
				      (curl_off_t)strlen(x->b->body)) != CURLE_OK;
	bad = bad || curl_multi_add_handle(s->m, x->h) != CURLM_OK;
	if (bad) {
		fail(s, x->b, "cannot set up the request (out of memory?)");
		x->b = NULL;
		return;
	}
	s->st.requests++;
}

static int
busy(const imp_sender *s, const char *stream)
{
	for (size_t i = 0; i < s->nslots; i++)
		if (s->slots[i].b && !strcmp(s->slots[i].b->stream, stream))
			return 1;
	return 0;
}

static imp_slot *
free_slot(imp_sender *s)
{
	for (size_t i = 0; i < s->nslots; i++)
		if (!s->slots[i].b)
			return &s->slots[i];
	return NULL;
}

/* Drop everything queued (after an abort), counting it as failed. */
static void
drop_queue(imp_sender *s)
{
	while (s->head) {
		imp_batch *b = s->head;
		s->head = b->next;
		s->st.failed += b->events;
		imp_batch_free(b);
	}
	s->tail = NULL;
	s->queued = 0;
}

/* Start due retries, then the first queued append of each stream that has none in
 * flight, while slots are free. */
static void
dispatch(imp_sender *s)
{
	uint64_t now = kp_mono_ns();
	for (size_t i = 0; i < s->nslots; i++) {
		imp_slot *x = &s->slots[i];
		if (x->b && x->retry_at && x->retry_at <= now)
			start(s, x);
	}
	if (s->aborted) {
		drop_queue(s);
		return;
	}
	const char *blocked[256]; /* streams of appends passed over in this scan */
	size_t nblocked = 0;
	imp_batch *prev = NULL, *b = s->head;
	while (b) {
		imp_batch *next = b->next;
		int failed = json_object_get(s->failed_streams, b->stream) != NULL;
		int is_blocked = !failed && busy(s, b->stream);
		for (size_t i = 0; i < nblocked && !is_blocked && !failed; i++)
			is_blocked = !strcmp(blocked[i], b->stream);
		if (is_blocked) {
			if (nblocked == sizeof(blocked) / sizeof(blocked[0]))
				break;
			blocked[nblocked++] = b->stream;
			prev = b;
			b = next;
			continue;
		}
		imp_slot *x = failed ? NULL : free_slot(s);
		if (!failed && !x)
			break;
		/* take b out of the queue */
		if (prev)
			prev->next = next;
		else
			s->head = next;
		if (s->tail == b)
			s->tail = prev;
		s->queued--;
		b->next = NULL;
		if (failed) {
			s->st.failed +=
				b->events; /* skipped after a failure earlier in its stream */
			imp_batch_free(b);
		} else {
			x->b = b;
			x->tries = 0;
			start(s, x);
		}
		b = next;
	}
}

/* An answer (or none) for x->b. */
static void
complete(imp_sender *s, imp_slot *x, CURLcode rc)
{
	long status = 0;
	curl_multi_remove_handle(s->m, x->h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &status);
	imp_batch *b = x->b;
	if (rc == CURLE_OK && (status == 200 || status == 201)) {
		json_t *o = json_loadb((const char *)x->resp.data, x->resp.len, 0, NULL);
		if (json_is_true(json_object_get(o, "deduplicated")))
			s->st.deduplicated += b->events;
		else
			s->st.appended += b->events;
		json_decref(o);
		imp_batch_free(b);
		x->b = NULL;
		return;
	}
	int again = rc == CURLE_OK ? status == 503 || status == 429
				   : kp_client_transient(rc) && !x->too_big;
	if (again && !s->aborted && x->tries < IMP_RETRIES) {
		x->retry_at = kp_mono_ns() + (100000000ull << x->tries);
		x->tries++;
		s->st.retries++;
		return;
	}
	char why[400];
	if (x->too_big) {
		snprintf(why, sizeof(why), "the answer is larger than 1 MiB");
	} else if (rc != CURLE_OK) {
		snprintf(why, sizeof(why), "no answer from %.150s: %.200s", s->c->url,
			 x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
		if (kp_client_transient(rc))
			s->aborted =
				1; /* the server is gone: stop instead of failing each append */
	} else {
		json_t *o = json_loadb((const char *)x->resp.data, x->resp.len, 0, NULL);
		json_t *e = json_object_get(o, "error");
		json_t *code = json_object_get(e, "code"), *msg = json_object_get(e, "message");
		if (json_is_string(code) && json_is_string(msg))
			snprintf(why, sizeof(why), "%s: %s", json_string_value(code),
				 json_string_value(msg));
		else
			snprintf(why, sizeof(why), "http_%ld", status);
		json_decref(o);
	}
	fail(s, b, why);
	x->b = NULL;
}

/* Once round: start what can start, move transfers on, take answers, then wait for the
 * network up to 'wait_ms' unless something finished. */
static void
step(imp_sender *s, int wait_ms)
{
	dispatch(s);
	int running = 0, done = 0, left;
	curl_multi_perform(s->m, &running);
	CURLMsg *msg;
	while ((msg = curl_multi_info_read(s->m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		imp_slot *x = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		CURLcode rc = msg->data.result;
		if (x && x->b)
			complete(s, x, rc);
		done = 1;
	}
	if (!done && wait_ms > 0)
		curl_multi_poll(s->m, NULL, 0, wait_ms, NULL);
	if (s->tick)
		s->tick(s->tick_ctx);
}

int
imp_sender_push(imp_sender *s, imp_batch *b)
{
	if (s->aborted) {
		s->st.failed += b->events;
		imp_batch_free(b);
		return -1;
	}
	b->next = NULL;
	if (s->tail)
		s->tail->next = b;
	else
		s->head = b;
	s->tail = b;
	s->queued++;
	step(s, 0);
	while (s->queued >= s->max_queued && !s->aborted)
		step(s, 20);
	return s->aborted ? -1 : 0;
}

static int
in_flight(const imp_sender *s)
{
	for (size_t i = 0; i < s->nslots; i++)
		if (s->slots[i].b)
			return 1;
	return 0;
}

void
imp_sender_drain(imp_sender *s)
{
	while (s->queued || in_flight(s))
		step(s, 20);
}
