/*
 * export.c -- kappa_export: everything kappa holds about one data subject. The subject's
 * events come from the streams the index lists for it (stream by stream, in version order),
 * opened with its key; then each view's @export statements run with :subject bound, on a
 * read-only connection like a query's.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/keys.h"
#include "view/view.h"

typedef struct names {
	char **v;
	size_t n, cap;
} names;

static int
add_name(void *arg, kp_bytes s)
{
	names *l = arg;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n] = strndup((const char *)s.p, s.len)))
		return ENOMEM;
	l->n++;
	return 0;
}

static void
names_free(names *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* The streams 'subject' has events in. */
static int
subject_streams(kappa_db *db, kp_bytes subject, names *out, kappa_err *err)
{
	int rc = kp_store_index_wait(db, err);
	if (rc)
		return rc;
	MDB_txn *txn;
	int m = mdb_txn_begin(db->ix.env, NULL, MDB_RDONLY, &txn);
	if (m == 0) {
		m = kp_index_subject_streams(&db->ix, txn, subject, add_name, out);
		mdb_txn_abort(txn);
	}
	return m == ENOMEM ? KP_ERR(err, KAPPA_ENOMEM, "out of memory")
	       : m	   ? kp_store_mdb_err(err, m, "cannot list a subject's streams")
			   : KAPPA_OK;
}

static int
export_events(kappa_db *db, const char *subject, const names *streams,
	      int (*on_event)(void *ctx, const kappa_event *e), void *ctx, kappa_err *err)
{
	size_t slen = strlen(subject);
	int rc = KAPPA_OK;
	for (size_t i = 0; i < streams->n && rc == KAPPA_OK; i++) {
		kappa_iter *it;
		if ((rc = kappa_read_stream(db, streams->v[i], 0, UINT64_MAX, KAPPA_FORWARD, &it,
					    err)))
			break;
		kappa_event e;
		int r;
		while ((r = kappa_iter_next(it, &e, err)) == 1) {
			if (e.subject_len != slen || memcmp(e.subject, subject, slen) != 0)
				continue;
			if (on_event(ctx, &e)) {
				r = KP_ERR(err, KAPPA_ECLOSED, "the export was stopped");
				break;
			}
		}
		kappa_iter_free(it);
		if (r < 0)
			rc = r;
	}
	return rc;
}

/* Run one view's @export statements. */
static int
export_view(kp_view *v, const char *subject,
	    int (*on_row)(void *ctx, const char *view, const char *row, size_t len), void *ctx,
	    kappa_err *err)
{
	kp_reader *rd;
	kp_gen *g;
	int rc = kp_view_borrow(v, &rd, &g, err);
	if (rc)
		return rc;
	const char *tail = g->def->export_sql;
	while (rc == KAPPA_OK && tail && *tail) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v2(rd->c, tail, -1, &st, &tail) != SQLITE_OK) {
			rc = KP_ERR(err, KAPPA_EIO, "view %s: @export: %s", v->name,
				    sqlite3_errmsg(rd->c));
			break;
		}
		if (!st)
			continue;
		int idx = sqlite3_bind_parameter_index(st, ":subject");
		if (idx)
			sqlite3_bind_text(st, idx, subject, -1, SQLITE_STATIC);
		int s, ncol = sqlite3_column_count(st);
		int *plan = malloc(sizeof(int) * (size_t)(ncol ? ncol : 1));
		kp_buf row = {0};
		if (!plan)
			rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		else
			kp_row_plan(st, plan);
		while (rc == KAPPA_OK && (s = sqlite3_step(st)) == SQLITE_ROW) {
			row.len = 0;
			if (kp_row_write(&row, st, plan, ncol, NULL) < 0)
				rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
			else if (on_row(ctx, v->name, (const char *)row.data, row.len))
				rc = KP_ERR(err, KAPPA_ECLOSED, "the export was stopped");
		}
		kp_buf_release(&row);
		free(plan);
		if (rc == KAPPA_OK && s != SQLITE_DONE)
			rc = KP_ERR(err, KAPPA_EIO, "view %s: @export: %s", v->name,
				    sqlite3_errmsg(rd->c));
		sqlite3_finalize(st);
	}
	kp_view_give_back(v, g, rd);
	return rc;
}

int
kappa_export(kappa_db *db, const char *subject, int (*on_event)(void *ctx, const kappa_event *e),
	     int (*on_row)(void *ctx, const char *view, const char *row_json, size_t len),
	     void *ctx, kappa_err *err)
{
	if (!db || !subject || !on_event || !on_row)
		return KP_ERR(err, KAPPA_EINVAL, "no database, subject or callback");
	kp_bytes s = {(const uint8_t *)subject, strlen(subject)};
	int rc = kp_check_name(s.p, s.len, KAPPA_MAX_SUBJECT, "subject", err);
	if (rc)
		return rc;
	if (kappa_subject_state(db, subject) == KP_SUBJECT_UNKNOWN)
		return KP_ERR(err, KAPPA_ENOTFOUND, "no subject %s", subject);
	names streams = {0}, views = {0};
	if ((rc = subject_streams(db, s, &streams, err)) == KAPPA_OK)
		rc = export_events(db, subject, &streams, on_event, ctx, err);
	struct kp_views *vs = db->views;
	if (rc == KAPPA_OK && vs) {
		pthread_mutex_lock(&vs->lock);
		for (size_t i = 0; i < vs->n && rc == KAPPA_OK; i++)
			if (add_name(&views, (kp_bytes){(const uint8_t *)vs->v[i]->name,
							strlen(vs->v[i]->name)}))
				rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		pthread_mutex_unlock(&vs->lock);
	}
	for (size_t i = 0; i < views.n && rc == KAPPA_OK; i++) {
		kp_view *v = kp_views_find(db, views.v[i]);
		if (!v)
			continue;
		pthread_mutex_lock(&v->lock);
		int has = v->cur && v->cur->def->export_sql != NULL;
		pthread_mutex_unlock(&v->lock);
		if (has)
			rc = export_view(v, subject, on_row, ctx, err);
	}
	names_free(&streams);
	names_free(&views);
	return rc;
}
