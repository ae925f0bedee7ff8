/*
 * view.c -- one view at run time: its projector thread, rebuilds beside the live database
 * with an atomic swap, status, and the pool of read-only connections queries borrow.
 *
 * The projector alternates between the live generation ('cur') and, during a rebuild, the
 * new one ('next'), so the live view keeps following the log while the new one replays it
 * from the start. When 'next' reaches the head it replaces 'cur': readers are drained, both
 * are closed, the new file is renamed over the old one, and it is reopened. Queries never
 * see a half-built view.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/clock.h"
#include "view/view.h"

/* One transaction applies up to BATCH_EVENTS events, and runs at most LIVE_NS when the view
 * is close to the head (so a query waiting on min_position sees its write soon) or
 * CATCH_UP_NS when far behind (fewer commits: each one writes every dirty page). */
#define BATCH_EVENTS 10000
#define LIVE_NS 20000000u      /* 20 ms */
#define CATCH_UP_NS 250000000u /* 250 ms */
#define FAR_BEHIND BATCH_EVENTS

static uint64_t
budget(kp_gen *g, kp_log *log)
{
	return kp_log_head(log) - atomic_load(&g->applied) > FAR_BEHIND ? CATCH_UP_NS : LIVE_NS;
}

static char *
db_path(kp_view *v, const char *suffix)
{
	size_t n = strlen(v->vs->dbdir) + strlen(v->name) + strlen(suffix) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s%s", v->vs->dbdir, v->name, suffix);
	return p;
}

static void
remove_db(const char *path)
{
	char buf[4200];
	unlink(path);
	snprintf(buf, sizeof(buf), "%s-wal", path);
	unlink(buf);
	snprintf(buf, sizeof(buf), "%s-shm", path);
	unlink(buf);
}

static void
set_fail(kp_view *v, const kp_apply_fail *f, const kappa_err *e)
{
	v->failed = 1;
	v->failed_full = e && e->code == KAPPA_ENOSPC;
	if (f && f->msg[0]) {
		v->fail = *f;
	} else {
		memset(&v->fail, 0, sizeof(v->fail));
		v->fail.position = v->cur ? atomic_load(&v->cur->applied) : 0;
		snprintf(v->fail.msg, sizeof(v->fail.msg), "%s", e ? e->msg : "failed");
	}
	if (v->vs->db->o.notice) {
		char line[400];
		snprintf(line, sizeof(line), "event=view_failed view=%s position=%llu error=\"%s\"",
			 v->name, (unsigned long long)v->fail.position, v->fail.msg);
		v->vs->db->o.notice(v->vs->db->o.notice_ctx, line);
	}
}

/* Replace 'cur' by 'next' (called by the projector with v->lock held). */
static int
swap(kp_view *v, kappa_err *err)
{
	v->swapping = 1;
	while (v->cur && v->cur->borrowed > 0)
		pthread_cond_wait(&v->cond, &v->lock);
	kp_gen *old = v->cur, *nx = v->next;
	kp_view_def *def = nx->def;
	nx->def = NULL;
	char *from = strdup(nx->path), *to = db_path(v, ".db");
	kp_gen_close(nx);
	kp_gen_close(old);
	v->cur = v->next = NULL;
	int rc = KAPPA_OK;
	if (!from || !to) {
		rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	} else {
		remove_db(to);
		if (rename(from, to) != 0)
			rc = KP_ERR_SYS(err, KAPPA_EIO, errno, "cannot swap in %s", from);
		else
			kp_io_fsync_dir(kp_io_posix(), v->vs->dbdir);
	}
	if (rc == KAPPA_OK) {
		rc = kp_gen_open(to, def, 0, &v->cur, err);
		def = NULL;
	}
	kp_view_def_free(def);
	if (rc == KAPPA_OK)
		v->failed = 0;
	else
		set_fail(v, NULL, err);
	v->swapping = 0;
	pthread_cond_broadcast(&v->cond);
	free(from);
	free(to);
	return rc;
}

/* Start building 'def' from the beginning of the log beside the live database. */
static void
start_rebuild(kp_view *v, kp_view_def *def)
{
	kappa_err e;
	char *path = db_path(v, ".rebuild.db");
	if (!path) {
		kp_view_def_free(def);
		return;
	}
	remove_db(path);
	kp_gen *g;
	if (kp_gen_open(path, def, kp_log_first(v->vs->db->log), &g, &e) != KAPPA_OK) {
		set_fail(v, NULL, &e);
	} else {
		kp_gen_close(v->next);
		v->next = g;
	}
	free(path);
}

static kp_view_def *
copy_def(const kp_view_def *d)
{
	kp_view_def *c = NULL;
	if (d)
		kp_view_def_parse(d->file, d->text, &c, NULL);
	return c;
}

static void *
projector(void *arg)
{
	kp_view *v = arg;
	kp_log *log = v->vs->db->log;
	uint64_t t_rate = kp_mono_ns(), n_rate = 0;
	pthread_mutex_lock(&v->lock);
	while (!v->stop) {
		if (v->pending || v->rebuild_requested) {
			/* the newest definition: pending, else the one being built, else live */
			kp_view_def *def = v->pending ? v->pending
					   : v->next  ? copy_def(v->next->def)
						      : copy_def(v->cur ? v->cur->def : NULL);
			v->pending = NULL;
			v->rebuild_requested = 0;
			if (def)
				start_rebuild(v, def);
			continue;
		}
		kp_gen *cur = v->cur, *next = v->next;
		int use_cur = cur && !v->failed && !v->stopped;
		pthread_mutex_unlock(&v->lock);

		int did = 0, n;
		kp_apply_fail f;
		kappa_err e;
		memset(&f, 0, sizeof(f));
		if (use_cur) {
			n = kp_gen_apply(cur, v->vs->db, BATCH_EVENTS, budget(cur, log), &f, &e);
			pthread_mutex_lock(&v->lock);
			if (n < 0)
				set_fail(v, &f, &e);
			if (n > 0) {
				did = 1;
				n_rate += (uint64_t)n;
			} else if (n == 0) {
				v->caught_up = 1;
			}
			pthread_cond_broadcast(&v->cond);
			pthread_mutex_unlock(&v->lock);
		}
		if (next) {
			memset(&f, 0, sizeof(f));
			n = kp_gen_apply(next, v->vs->db, BATCH_EVENTS, budget(next, log), &f, &e);
			pthread_mutex_lock(&v->lock);
			if (n < 0) {
				/* the new version fails: drop it, keep answering from the old */
				set_fail(v, &f, &e);
				char *p = strdup(next->path);
				kp_gen_close(next);
				v->next = next = NULL;
				if (p)
					remove_db(p);
				free(p);
			} else if (n > 0) {
				did = 1;
			} else if (atomic_load(&next->applied) >= kp_log_head(log)) {
				swap(v, &e);
				did = 1;
			}
			pthread_mutex_unlock(&v->lock);
		}
		uint64_t now = kp_mono_ns();
		if (now - t_rate >= 1000000000u) {
			pthread_mutex_lock(&v->lock);
			v->rate = (double)n_rate * 1e9 / (double)(now - t_rate);
			pthread_mutex_unlock(&v->lock);
			t_rate = now;
			n_rate = 0;
		}
		pthread_mutex_lock(&v->lock);
		if (!did && !v->stop && !v->pending && !v->rebuild_requested) {
			if (use_cur || next) {
				/* wait for new events (or a command, within 50 ms) */
				uint64_t at = use_cur ? atomic_load(&cur->applied) : UINT64_MAX;
				if (next && atomic_load(&next->applied) < at)
					at = atomic_load(&next->applied);
				pthread_mutex_unlock(&v->lock);
				kp_log_wait(log, at, 50);
				pthread_mutex_lock(&v->lock);
			} else {
				/* failed or stopped: nothing to apply until a command comes */
				struct timespec dl = kp_deadline_ms(1000);
				if (pthread_cond_timedwait(&v->cond, &v->lock, &dl) == ETIMEDOUT &&
				    v->failed && v->failed_full)
					v->failed = v->failed_full =
						0; /* space may be back: retry */
			}
		}
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

int
kp_view_start(struct kp_views *vs, kp_view_def *def, kp_view **out, kappa_err *err)
{
	*out = NULL;
	kp_view *v = calloc(1, sizeof(*v));
	if (!v) {
		kp_view_def_free(def);
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	}
	v->vs = vs;
	snprintf(v->name, sizeof(v->name), "%s", def->name);
	pthread_mutex_init(&v->lock, NULL);
	kp_cond_init_monotonic(&v->cond);

	char *path = db_path(v, ".db"), *rb = db_path(v, ".rebuild.db");
	int rc = KAPPA_OK;
	if (!path || !rb) {
		rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		kp_view_def_free(def);
		goto out;
	}
	remove_db(rb); /* a rebuild interrupted by a crash starts again */
	char *stored = NULL;
	uint64_t pos;
	kp_view_def *old = NULL;
	if (kp_gen_peek(path, &stored, &pos, NULL) == KAPPA_OK && strcmp(stored, def->text) != 0) {
		/* Built from another definition: keep answering from it while the new one is
		 * built, if it still parses; otherwise start afresh. */
		if (kp_view_def_parse(def->file, stored, &old, NULL) == KAPPA_OK) {
			v->pending = def;
			def = old;
		} else {
			remove_db(path);
		}
	} else if (!stored) {
		remove_db(path); /* absent, or without a checkpoint: create */
	}
	free(stored);
	if ((rc = kp_gen_open(path, def, kp_log_first(vs->db->log), &v->cur, err)))
		goto out;
	if (pthread_create(&v->thread, NULL, projector, v)) {
		rc = KP_ERR(err, KAPPA_ENOMEM, "cannot start a projector thread");
		goto out;
	}
	v->started = 1;
out:
	free(path);
	free(rb);
	if (rc) {
		kp_view_stop(v);
		return rc;
	}
	*out = v;
	return KAPPA_OK;
}

void
kp_view_stop(kp_view *v)
{
	if (!v)
		return;
	if (v->started) {
		pthread_mutex_lock(&v->lock);
		v->stop = 1;
		pthread_cond_broadcast(&v->cond);
		pthread_mutex_unlock(&v->lock);
		pthread_join(v->thread, NULL);
	}
	kp_gen_close(v->cur);
	kp_gen_close(v->next);
	kp_view_def_free(v->pending);
	pthread_mutex_destroy(&v->lock);
	pthread_cond_destroy(&v->cond);
	free(v);
}

void
kp_view_request_rebuild(kp_view *v, kp_view_def *def)
{
	pthread_mutex_lock(&v->lock);
	if (def) {
		kp_view_def_free(v->pending);
		v->pending = def;
	} else {
		v->rebuild_requested = 1;
	}
	v->stopped = 0;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
}

void
kp_view_status(kp_view *v, kappa_view_status *st)
{
	memset(st, 0, sizeof(*st));
	uint64_t head = kp_log_head(v->vs->db->log);
	pthread_mutex_lock(&v->lock);
	snprintf(st->name, sizeof(st->name), "%s", v->name);
	const kp_view_def *d = v->cur ? v->cur->def : v->next ? v->next->def : NULL;
	if (d)
		snprintf(st->file, sizeof(st->file), "%s", d->file);
	st->position = v->cur ? atomic_load(&v->cur->applied) : 0;
	st->lag = head > st->position ? head - st->position : 0;
	st->events_per_s = v->rate;
	st->rebuild_position = v->next ? atomic_load(&v->next->applied) : 0;
	if (v->stopped)
		st->state = KAPPA_VIEW_STOPPED;
	else if (v->next || v->pending || v->rebuild_requested)
		st->state = KAPPA_VIEW_REBUILDING;
	else if (v->failed)
		st->state = KAPPA_VIEW_FAILED;
	else if (!v->caught_up)
		st->state = KAPPA_VIEW_CATCHING_UP;
	else
		st->state = KAPPA_VIEW_LIVE;
	if (v->failed) {
		st->error_position = v->fail.position;
		snprintf(st->error_type, sizeof(st->error_type), "%s", v->fail.type);
		snprintf(st->error, sizeof(st->error), "%s", v->fail.msg);
	}
	snprintf(st->load_error, sizeof(st->load_error), "%s", v->load_error);
	pthread_mutex_unlock(&v->lock);
}

int
kp_view_wait(kp_view *v, uint64_t position, int64_t timeout_ms, kappa_err *err)
{
	struct timespec dl = kp_deadline_ms(timeout_ms < 0 ? 0 : timeout_ms);
	int rc = KAPPA_OK;
	pthread_mutex_lock(&v->lock);
	while (!v->cur || atomic_load(&v->cur->applied) <= position) {
		if (v->failed && !v->next) {
			rc = KP_ERR(err, KAPPA_EFATAL, "view %s failed at position %llu: %s",
				    v->name, (unsigned long long)v->fail.position, v->fail.msg);
			break;
		}
		if (pthread_cond_timedwait(&v->cond, &v->lock, &dl) == ETIMEDOUT &&
		    (!v->cur || atomic_load(&v->cur->applied) <= position)) {
			rc = KP_ERR(
				err, KAPPA_ETIMEOUT,
				"view %s has not reached position %llu (it is at %llu)", v->name,
				(unsigned long long)position,
				(unsigned long long)(v->cur ? atomic_load(&v->cur->applied) : 0));
			break;
		}
	}
	pthread_mutex_unlock(&v->lock);
	return rc;
}

void
kp_reader_close(kp_reader *r)
{
	if (!r)
		return;
	sqlite3_finalize(r->begin);
	sqlite3_finalize(r->commit);
	sqlite3_finalize(r->checkpoint);
	for (size_t i = 0; r->queries && i < r->nqueries; i++)
		sqlite3_finalize(r->queries[i]);
	free(r->queries);
	sqlite3_close(r->c);
	free(r);
}

/* A new read connection: read-only, memory-mapped reads, named-query slots. */
static int
reader_open(kp_view *v, kp_gen *g, kp_reader **out, kappa_err *err)
{
	kp_reader *r = calloc(1, sizeof(*r));
	if (r) {
		r->nqueries = g->def->nqueries;
		r->queries = calloc(r->nqueries ? r->nqueries : 1, sizeof(*r->queries));
	}
	if (!r || !r->queries) {
		kp_reader_close(r);
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	}
	if (sqlite3_open_v2(g->path, &r->c, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
	    SQLITE_OK) {
		int rc = KP_ERR(err, KAPPA_EIO, "cannot open view %s: %s", v->name,
				r->c ? sqlite3_errmsg(r->c) : "out of memory");
		kp_reader_close(r);
		return rc;
	}
	sqlite3_busy_timeout(r->c, 5000);
	sqlite3_limit(r->c, SQLITE_LIMIT_LENGTH, (int)KP_VIEW_MAX_ANSWER);
	sqlite3_exec(r->c, "PRAGMA mmap_size=268435456", NULL, NULL, NULL);
	*out = r;
	return KAPPA_OK;
}

int
kp_view_borrow(kp_view *v, kp_reader **rd, kp_gen **gen, kappa_err *err)
{
	*rd = NULL;
	*gen = NULL;
	pthread_mutex_lock(&v->lock);
	while (v->swapping)
		pthread_cond_wait(&v->cond, &v->lock);
	kp_gen *g = v->cur;
	if (!g) {
		pthread_mutex_unlock(&v->lock);
		return KP_ERR(err, KAPPA_ENOTFOUND, "view %s has no database", v->name);
	}
	kp_reader *r = g->npool ? g->pool[--g->npool] : NULL;
	g->borrowed++;
	pthread_mutex_unlock(&v->lock);
	int rc;
	if (!r && (rc = reader_open(v, g, &r, err)) != KAPPA_OK) {
		kp_view_give_back(v, g, NULL);
		return rc;
	}
	*rd = r;
	*gen = g;
	return KAPPA_OK;
}

void
kp_view_give_back(kp_view *v, kp_gen *g, kp_reader *r)
{
	pthread_mutex_lock(&v->lock);
	if (r && g == v->cur && g->npool < (int)(sizeof(g->pool) / sizeof(g->pool[0]))) {
		g->pool[g->npool++] = r;
		r = NULL;
	}
	g->borrowed--;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	kp_reader_close(r); /* outside the lock */
}
