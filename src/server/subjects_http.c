/*
 * subjects_http.c -- POST /subjects/{s}/forget and GET /subjects/{s}/export (admin).
 *
 * An export can be large (every event of a subject, and the views' rows about it): a thread
 * runs kappa_export and writes the JSON document into a pipe that libmicrohttpd sends from
 * as the client reads, so memory stays bounded and a client that goes away stops the export
 * (its writes fail with EPIPE). The server waits for export threads before it stops.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/server_int.h"

enum MHD_Result
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
		r, MHD_HTTP_OK,
		kp_dump(json_pack("{s:s, s:b, s:I, s:b}", "subject", subject, "forgotten", 1,
				  "position", (json_int_t)fr.position, "already", fr.already)));
}

typedef struct export_job {
	kp_server *srv;
	int fd; /* the pipe's write end */
	char *subject;
	int failed;
	int nevents;
	char view[64]; /* the view whose rows are being written ('\0': none yet) */
} export_job;

static int
put(export_job *x, const char *p, size_t n)
{
	while (n && !x->failed) {
		ssize_t w = write(x->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			x->failed = 1; /* the client went away */
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	return x->failed;
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
	close(x->fd);
	atomic_fetch_sub(&x->srv->exports, 1);
	free(x->subject);
	free(x);
	return NULL;
}

enum MHD_Result
kp_http_export(kp_request *r, const char *subject)
{
	kp_server *s = r->srv;
	int st = kappa_subject_state(s->db, subject);
	if (st == 0)
		return kp_send_error(r, MHD_HTTP_NOT_FOUND, "not_found", "no such subject");
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return kp_send_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
				     "cannot start an export");
	export_job *x = calloc(1, sizeof(*x));
	if (!x || !(x->subject = strdup(subject)) || !kp_server_enter(s, &s->exports)) {
		if (x)
			free(x->subject);
		free(x);
		close(p[0]);
		close(p[1]);
		return kp_send_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
				     "the server is stopping");
	}
	x->srv = s;
	x->fd = p[1];
	struct MHD_Response *resp = MHD_create_response_from_pipe(p[0]);
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (!resp || pthread_create(&t, &at, export_thread, x) != 0) {
		pthread_attr_destroy(&at);
		if (resp)
			MHD_destroy_response(resp); /* closes p[0] */
		else
			close(p[0]);
		close(p[1]);
		atomic_fetch_sub(&s->exports, 1);
		free(x->subject);
		free(x);
		return kp_send_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "busy",
				     "cannot start an export");
	}
	pthread_attr_destroy(&at);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	r->sent_status = MHD_HTTP_OK;
	enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}
