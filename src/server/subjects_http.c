/*
 * subjects_http.c -- POST /subjects/{s}/forget and GET /subjects/{s}/export (admin).
 *
 * An export can be large (every event of a subject, and the views' rows about it): a thread
 * runs kappa_export and writes the JSON document into a bounded buffer that the connection
 * streams from as the client reads (the thread waits while it is full, and resumes the
 * connection when it adds to an empty one), so memory stays bounded and a client that goes
 * away stops the export (its writes fail). The server waits for export threads before it
 * stops.
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server_int.h"

int
kp_http_forget(kp_request *r, const char *subject)
{
	kappa_forget_result fr;
	kappa_err err;
	int rc = kappa_forget(r->srv->db, subject, &fr, &err);
	if (rc)
		return kp_send_kappa_error(r, rc, &err);
	kp_server_log(r->srv, "event=subject_forgotten position=%llu already=%d",
		      (unsigned long long)fr.position, fr.already);
	return kp_send_json(
		r, 200,
		kp_dump(json_pack("{s:s, s:b, s:I, s:b}", "subject", subject, "forgotten", 1,
				  "position", (json_int_t)fr.position, "already", fr.already)));
}

#define EXPORT_BUF (64 * 1024) /* written by the thread, not yet sent, at most */

typedef struct export_job {
	kp_server *srv;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* the buffer has room, or the client went away */
	kp_buf buf;	     /* written, not yet taken by the connection */
	size_t off;
	kp_hconn *conn; /* NULL once the connection let go of the job */
	int waiting;	/* the connection is suspended for more */
	int finished;	/* the thread wrote its last byte */
	int refs;	/* the thread and the connection: the last one frees */
	char *subject;
	int failed;
	int nevents;
	char view[64]; /* the view whose rows are being written ('\0': none yet) */
} export_job;

static void
job_unref(export_job *x)
{
	int last = --x->refs == 0;
	pthread_mutex_unlock(&x->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&x->lock);
	pthread_cond_destroy(&x->cond);
	kp_buf_release(&x->buf);
	free(x->subject);
	free(x);
}

/* Wake the connection if it waits for what was just written (x->lock held). */
static void
job_wake(export_job *x)
{
	if (x->waiting && x->conn) {
		x->waiting = 0;
		kp_http_resume(x->conn);
	}
}

static int
put(export_job *x, const char *p, size_t n)
{
	pthread_mutex_lock(&x->lock);
	while (n && !x->failed) {
		while (x->conn && x->buf.len - x->off >= EXPORT_BUF)
			pthread_cond_wait(&x->cond, &x->lock);
		if (!x->conn) {
			x->failed = 1; /* the client went away */
			break;
		}
		if (x->off == x->buf.len)
			x->off = x->buf.len = 0;
		size_t k = EXPORT_BUF - (x->buf.len - x->off);
		k = k < n ? k : n;
		if (kp_buf_append(&x->buf, p, k)) {
			x->failed = 1;
			break;
		}
		p += k;
		n -= k;
		job_wake(x);
	}
	pthread_mutex_unlock(&x->lock);
	return x->failed;
}

/* The connection's producer: what the thread wrote, then the end. */
static ssize_t
take(void *ctx, char *buf, size_t max)
{
	export_job *x = ctx;
	ssize_t n = 0;
	pthread_mutex_lock(&x->lock);
	if (x->off < x->buf.len) {
		n = (ssize_t)(x->buf.len - x->off < max ? x->buf.len - x->off : max);
		memcpy(buf, x->buf.data + x->off, (size_t)n);
		x->off += (size_t)n;
		pthread_cond_signal(&x->cond);
	} else if (x->finished) {
		n = KP_HTTP_END;
	} else {
		x->waiting = 1;
		kp_http_suspend(x->conn);
	}
	pthread_mutex_unlock(&x->lock);
	return n;
}

static void
let_go(void *ctx)
{
	export_job *x = ctx;
	pthread_mutex_lock(&x->lock);
	x->conn = NULL;
	x->waiting = 0;
	pthread_cond_signal(&x->cond);
	job_unref(x);
}

static int
put_json(export_job *x, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(j);
	if (!s)
		return x->failed = 1;
	int rc = put(x, s, strlen(s));
	free(s);
	return rc;
}

static int
on_event(void *ctx, const kappa_event *e)
{
	export_job *x = ctx;
	if (x->nevents++ && put(x, ",", 1))
		return 1;
	kp_buf b = KP_BUF_INIT;
	int rc = kp_event_write(&b, e) ? (x->failed = 1) : put(x, (const char *)b.data, b.len);
	if (b.data)
		sodium_memzero(b.data, b.cap); /* personal data, decrypted */
	kp_buf_release(&b);
	return rc;
}

static int
on_row(void *ctx, const char *view, const char *row, size_t len)
{
	export_job *x = ctx;
	if (strcmp(view, x->view) != 0) {
		/* a new view: close the last one's array (or the events'), open this one's */
		const char *sep = x->view[0] ? "]," : "],\"views\":{";
		if (put(x, sep, strlen(sep)) || put_json(x, json_string(view)) || put(x, ":[", 2))
			return 1;
		snprintf(x->view, sizeof(x->view), "%s", view);
		return put(x, row, len);
	}
	return put(x, ",", 1) || put(x, row, len);
}

static void *
export_thread(void *arg)
{
	export_job *x = arg;
	kappa_err err;
	int st = kappa_subject_state(x->srv->db, x->subject);
	json_t *head = json_pack("{s:s, s:s}", "subject", x->subject, "state",
				 st == 2 ? "forgotten" : "live");
	char *h = head ? json_dumps(head, JSON_COMPACT) : NULL;
	json_decref(head);
	int rc = KAPPA_ENOMEM;
	if (h) {
		h[strlen(h) - 1] = '\0'; /* keep the object open */
		if (!put(x, h, strlen(h)) && !put(x, ",\"events\":[", 11)) {
			rc = kappa_export(x->srv->db, x->subject, on_event, on_row, x, &err);
		}
		free(h);
	}
	if (rc == KAPPA_OK) {
		if (x->view[0])
			put(x, "]}}\n", 4);
		else
			put(x, "],\"views\":{}}\n", 14);
	} else if (!x->failed) {
		/* The status line is gone: end the document so that it does not parse. */
		kp_server_log(x->srv, "event=export_failed error=\"%s\"",
			      rc == KAPPA_ENOMEM ? "out of memory" : err.msg);
		put(x, "\n!export failed\n", 16);
	}
	kp_server *s = x->srv;
	pthread_mutex_lock(&x->lock);
	x->finished = 1;
	job_wake(x);
	job_unref(x);
	atomic_fetch_sub(&s->exports, 1);
	return NULL;
}

int
kp_http_export(kp_request *r, const char *subject)
{
	kp_server *s = r->srv;
	int st = kappa_subject_state(s->db, subject);
	if (st == 0)
		return kp_send_error(r, 404, "not_found", "no such subject");
	export_job *x = calloc(1, sizeof(*x));
	if (!x || !(x->subject = strdup(subject)) || !kp_server_enter(s, &s->exports)) {
		if (x)
			free(x->subject);
		free(x);
		return kp_send_error(r, 503, "busy", "the server is stopping");
	}
	x->srv = s;
	x->conn = r->conn;
	x->refs = 2;
	pthread_mutex_init(&x->lock, NULL);
	pthread_cond_init(&x->cond, NULL);
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int started = pthread_create(&t, &at, export_thread, x) == 0;
	pthread_attr_destroy(&at);
	if (!started) {
		atomic_fetch_sub(&s->exports, 1);
		pthread_mutex_destroy(&x->lock);
		pthread_cond_destroy(&x->cond);
		free(x->subject);
		free(x);
		return kp_send_error(r, 503, "busy", "cannot start an export");
	}
	const kp_http_hdr h = {"Content-Type", "application/json"};
	r->sent_status = 200;
	return kp_http_respond_stream(r->conn, 200, &h, 1, take, x, let_go);
}
