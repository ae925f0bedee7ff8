/*
 * workers.c -- named queries and SQL run on a pool of worker threads, not on the event
 * threads: the request's connection is suspended, a worker runs the query (including any
 * min_position wait) and resumes the connection with the answer. A slow search or a
 * read-your-writes wait then never stalls the other connections of an event thread.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "server/server_int.h"

struct kp_workers {
	kp_server *srv;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	kp_job *head, *tail;
	unsigned queued;
	int stopping;
	pthread_t th[KP_MAX_WORKERS];
	unsigned nth;
};

void
kp_job_free(kp_job *j)
{
	if (!j)
		return;
	free(j->view);
	free(j->query);
	free(j->sql);
	free(j->params);
	free(j);
}

static void
run_job(kp_server *s, kp_job *j)
{
	kp_request *r = j->r;
	kappa_err err;
	char *res = NULL;
	int64_t timeout = j->timeout_ms;
	int rc;
	if (j->sql) {
		rc = j->min_position != KAPPA_NO_POSITION
			     ? kappa_view_wait(s->db, j->view, j->min_position, timeout, &err)
			     : KAPPA_OK;
		if (!rc)
			rc = kappa_sql(s->db, j->view, j->sql, j->params, 0, timeout, &res, &err);
	} else {
		rc = kappa_query(s->db, j->view, j->query, j->params, j->min_position, timeout,
				 &res, &err);
	}
	if (rc) {
		r->status = (unsigned)kp_err_http_status(rc);
		r->resp = kp_error_body(rc, err.msg, NULL);
		kappa_free(res);
	} else {
		r->status = 200;
		r->resp = res;
	}
	r->answered = 1;
	kp_http_resume(r->conn);
	atomic_fetch_sub(&s->queries, 1);
}

static void *
worker_main(void *arg)
{
	kp_workers *w = arg;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->head && !w->stopping)
			pthread_cond_wait(&w->cond, &w->lock);
		kp_job *j = w->head;
		if (!j)
			break; /* stopping, and nothing left */
		w->head = j->next;
		if (!w->head)
			w->tail = NULL;
		w->queued--;
		pthread_mutex_unlock(&w->lock);
		run_job(w->srv, j);
		kp_job_free(j);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int
kp_workers_start(kp_server *s, unsigned n, kp_workers **out)
{
	kp_workers *w = calloc(1, sizeof(*w));
	if (!w)
		return KAPPA_ENOMEM;
	w->srv = s;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (n > KP_MAX_WORKERS)
		n = KP_MAX_WORKERS;
	for (; w->nth < n; w->nth++)
		if (pthread_create(&w->th[w->nth], NULL, worker_main, w) != 0)
			break;
	if (!w->nth) {
		kp_workers_stop(w);
		return KAPPA_ENOMEM;
	}
	*out = w;
	return KAPPA_OK;
}

void
kp_workers_stop(kp_workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
	for (unsigned i = 0; i < w->nth; i++)
		pthread_join(w->th[i], NULL);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
}

int
kp_workers_submit(kp_request *r, kp_job *j)
{
	kp_server *s = r->srv;
	kp_workers *w = s->workers;
	if (!kp_server_enter(s, &s->queries)) {
		kp_job_free(j);
		return kp_send_overloaded(r, 503, "closed", "the server is stopping");
	}
	pthread_mutex_lock(&w->lock);
	int full = w->queued >= s->o.max_queued_queries || w->stopping;
	if (full) {
		atomic_fetch_sub(&s->queries, 1);
	} else {
		j->r = r;
		kp_http_suspend(r->conn);
		if (w->tail)
			w->tail->next = j;
		else
			w->head = j;
		w->tail = j;
		w->queued++;
		pthread_cond_signal(&w->cond);
	}
	pthread_mutex_unlock(&w->lock);
	if (full) {
		kp_job_free(j);
		return kp_send_overloaded(r, 503, "busy",
					  "too many queries waiting: retry shortly");
	}
	return KP_HTTP_OK;
}
