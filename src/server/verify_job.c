/*
 * verify_job.c -- verification of the audit chain as a background job with progress:
 * POST /audit/verify (admin) starts one (one at a time: 409 verify_running while one
 * runs), GET /audit/verify/status (admin) reports its state, positions and bytes done and
 * to do, and its result. The job's thread is stopped and joined by kp_server_stop before
 * the database can close (kp_verify_job_cancel, then kp_verify_job_free).
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "server/server_int.h"

typedef enum job_state { JOB_IDLE, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED } job_state;

static const char *const state_names[] = {"idle", "running", "done", "failed", "cancelled"};

struct kp_verify_job {
	kp_server *srv;
	pthread_mutex_t lock;
	pthread_t thread;
	int joinable;	   /* a thread was started and not joined yet */
	atomic_int cancel; /* the server is stopping: set once, never cleared */
	/* Under 'lock': */
	job_state state;
	uint64_t id; /* jobs started so far */
	kappa_digest digest;
	int has_digest;
	kappa_verify_progress p;
	int64_t started_ms;   /* wall clock */
	int64_t t0_ns, t1_ns; /* monotonic: start and end */
	json_t *result;	      /* done: the answer GET /audit/verify would give */
	int rc;		      /* failed: the code and message */
	char msg[256];
};

int
kp_verify_job_new(kp_server *s, kp_verify_job **out)
{
	kp_verify_job *j = calloc(1, sizeof(*j));
	if (!j)
		return KAPPA_ENOMEM;
	j->srv = s;
	pthread_mutex_init(&j->lock, NULL);
	*out = j;
	return KAPPA_OK;
}

void
kp_verify_job_cancel(kp_verify_job *j)
{
	if (j)
		atomic_store(&j->cancel, 1);
}

void
kp_verify_job_free(kp_verify_job *j)
{
	if (!j)
		return;
	atomic_store(&j->cancel, 1);
	if (j->joinable)
		pthread_join(j->thread, NULL);
	json_decref(j->result);
	pthread_mutex_destroy(&j->lock);
	free(j);
}

static int
on_progress(void *ctx, const kappa_verify_progress *p)
{
	kp_verify_job *j = ctx;
	pthread_mutex_lock(&j->lock);
	j->p = *p;
	pthread_mutex_unlock(&j->lock);
	return atomic_load(&j->cancel);
}

static void *
job_main(void *arg)
{
	kp_verify_job *j = arg;
	kappa_verify_result res;
	kappa_err err;
	memset(&err, 0, sizeof(err));
	int rc = kappa_audit_verify_progress(j->srv->db, j->has_digest ? &j->digest : NULL,
					     on_progress, j, &res, &err);
	json_t *result = NULL;
	if (rc == KAPPA_OK || rc == KAPPA_ECORRUPT)
		result = kp_verify_result_json(rc, &res, &err, j->has_digest);
	pthread_mutex_lock(&j->lock);
	j->t1_ns = (int64_t)kp_mono_ns();
	j->rc = rc;
	snprintf(j->msg, sizeof(j->msg), "%s", err.msg);
	if (result) {
		j->state = JOB_DONE;
		j->result = result;
		j->p.positions_done = res.end_position - res.first_position;
		j->p.bytes_done = res.bytes;
		if (j->p.bytes_total < res.bytes)
			j->p.bytes_total = res.bytes;
		j->p.positions_total = j->p.positions_done;
		j->p.batches = res.batches;
	} else {
		j->state =
			rc == KAPPA_ECLOSED && atomic_load(&j->cancel) ? JOB_CANCELLED : JOB_FAILED;
		if (!err.msg[0])
			snprintf(j->msg, sizeof(j->msg), "%s", kappa_strerror(rc));
	}
	uint64_t id = j->id;
	job_state st = j->state;
	pthread_mutex_unlock(&j->lock);
	kp_server_log(j->srv, "event=audit_verify_job id=%llu state=%s ok=%d",
		      (unsigned long long)id, state_names[st], rc == KAPPA_OK);
	return NULL;
}

/* The job's status as JSON (under the lock). */
static json_t *
status_json(kp_verify_job *j)
{
	char iso[KP_TIME_TEXT] = "";
	if (j->started_ms)
		kp_format_time_ms(j->started_ms, iso);
	int64_t end = j->state == JOB_RUNNING ? (int64_t)kp_mono_ns() : j->t1_ns;
	double seconds = j->t0_ns ? (double)(end - j->t0_ns) / 1e9 : 0.0;
	double pct = j->state == JOB_DONE ? 100.0
		     : j->p.bytes_total ? 100.0 * (double)j->p.bytes_done / (double)j->p.bytes_total
					: 0.0;
	json_t *o =
		json_pack("{s:s, s:I, s:o, s:f, s:I, s:I, s:I, s:I, s:I, s:f}", "state",
			  state_names[j->state], "id", (json_int_t)j->id, "started",
			  iso[0] ? json_string(iso) : json_null(), "seconds", seconds,
			  "positions_done", (json_int_t)j->p.positions_done, "positions_total",
			  (json_int_t)j->p.positions_total, "bytes_done",
			  (json_int_t)j->p.bytes_done, "bytes_total", (json_int_t)j->p.bytes_total,
			  "batches", (json_int_t)j->p.batches, "percent", pct);
	if (!o)
		return NULL;
	if (j->has_digest)
		json_object_set_new(o, "digest_position",
				    json_integer((json_int_t)j->digest.position));
	json_object_set_new(o, "result", j->result ? json_deep_copy(j->result) : json_null());
	json_object_set_new(
		o, "error",
		j->state == JOB_FAILED || j->state == JOB_CANCELLED
			? json_pack("{s:s, s:s}", "code", kappa_strerror(j->rc), "message", j->msg)
			: json_null());
	return o;
}

int
kp_http_verify_start(kp_request *r, const kappa_digest *d)
{
	kp_server *s = r->srv;
	kp_verify_job *j = s->verify;
	pthread_mutex_lock(&j->lock);
	if (j->state == JOB_RUNNING) {
		pthread_mutex_unlock(&j->lock);
		return kp_send_error(
			r, 409, "verify_running",
			"a verification is running: GET /audit/verify/status follows it");
	}
	if (atomic_load(&s->draining) || atomic_load(&j->cancel)) {
		pthread_mutex_unlock(&j->lock);
		return kp_send_overloaded(r, 503, "stopping", "the server is stopping");
	}
	if (j->joinable) { /* the previous job's thread has finished: reap it */
		pthread_join(j->thread, NULL);
		j->joinable = 0;
	}
	json_decref(j->result);
	j->result = NULL;
	memset(&j->p, 0, sizeof(j->p));
	j->has_digest = d != NULL;
	if (d)
		j->digest = *d;
	j->id++;
	j->state = JOB_RUNNING;
	j->started_ms = kp_now_ms();
	j->t0_ns = (int64_t)kp_mono_ns();
	j->t1_ns = 0;
	j->rc = 0;
	j->msg[0] = '\0';
	if (pthread_create(&j->thread, NULL, job_main, j) != 0) {
		j->state = JOB_IDLE;
		pthread_mutex_unlock(&j->lock);
		return kp_send_overloaded(r, 503, "busy", "cannot start a verification thread");
	}
	j->joinable = 1;
	json_t *o = status_json(j);
	uint64_t id = j->id;
	pthread_mutex_unlock(&j->lock);
	kp_server_log(s, "event=audit_verify_started id=%llu", (unsigned long long)id);
	return kp_send_json(r, 202, kp_dump(o));
}

int
kp_http_verify_status(kp_request *r)
{
	kp_verify_job *j = r->srv->verify;
	pthread_mutex_lock(&j->lock);
	json_t *o = status_json(j);
	pthread_mutex_unlock(&j->lock);
	return kp_send_json(r, 200, kp_dump(o));
}
