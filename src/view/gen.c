/*
 * gen.c -- one SQLite database of a view ("generation"): creating it from the definition's
 * DDL, preparing the handlers, and applying batches of events, each batch and the
 * checkpoint row in one transaction so that a crash never applies an event twice or skips
 * one (the checkpoint is the position of the next event to apply).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "base/clock.h"
#include "view/view.h"

static const char *param_names[KP_HANDLER_PARAMS] = {":position", ":stream",   ":version",
						     ":type",	  ":data",     ":time",
						     ":subject",  ":metadata", ":forgotten"};

static int
sql_err(sqlite3 *c, kappa_err *err, const char *what, const char *path)
{
	int full = c && sqlite3_errcode(c) == SQLITE_FULL;
	return KP_ERR(err, full ? KAPPA_ENOSPC : KAPPA_EIO, "view database %s: %s: %s", path, what,
		      c ? sqlite3_errmsg(c) : "cannot open");
}

int
kp_gen_peek(const char *path, char **def_text, uint64_t *position, kappa_err *err)
{
	*def_text = NULL;
	sqlite3 *c = NULL;
	if (sqlite3_open_v2(path, &c, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
		sqlite3_close(c);
		return KP_ERR(err, KAPPA_ENOTFOUND, "no view database %s", path);
	}
	sqlite3_stmt *st = NULL;
	int rc = KAPPA_ENOTFOUND;
	if (sqlite3_prepare_v2(c, "SELECT position, definition FROM kappa_checkpoint WHERE id = 1",
			       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*position = (uint64_t)sqlite3_column_int64(st, 0);
		const char *t = (const char *)sqlite3_column_text(st, 1);
		*def_text = strdup(t ? t : "");
		rc = *def_text ? KAPPA_OK : KAPPA_ENOMEM;
	}
	if (rc == KAPPA_ENOTFOUND)
		KP_ERR(err, rc, "view database %s has no checkpoint", path);
	sqlite3_finalize(st);
	sqlite3_close(c);
	return rc;
}

/* Prepare every statement of 'sql' into *hs (*n of them). */
static int
prepare_statements(kp_gen *g, const char *sql, int line, kp_hstmt **hs, size_t *n, kappa_err *err)
{
	const char *tail = sql;
	while (tail && *tail) {
		sqlite3_stmt *st = NULL;
		if (sqlite3_prepare_v3(g->w, tail, -1, SQLITE_PREPARE_PERSISTENT, &st, &tail))
			return KP_ERR(err, KAPPA_EINVAL, "%s:%d: %s", g->def->file, line,
				      sqlite3_errmsg(g->w));
		if (!st)
			continue;
		kp_hstmt *nh = realloc(*hs, (*n + 1) * sizeof(*nh));
		if (!nh) {
			sqlite3_finalize(st);
			return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		}
		*hs = nh;
		kp_hstmt *h = &nh[(*n)++];
		h->st = st;
		for (int k = 0; k < KP_HANDLER_PARAMS; k++)
			h->idx[k] = sqlite3_bind_parameter_index(st, param_names[k]);
	}
	return KAPPA_OK;
}

static int
prepare_handlers(kp_gen *g, kappa_err *err)
{
	kp_view_def *d = g->def;
	g->hs = calloc(d->nhandlers ? d->nhandlers : 1, sizeof(*g->hs));
	g->nhs = calloc(d->nhandlers ? d->nhandlers : 1, sizeof(*g->nhs));
	if (!g->hs || !g->nhs)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	g->nh = d->nhandlers;
	int rc;
	for (size_t i = 0; i < d->nhandlers; i++)
		if ((rc = prepare_statements(g, d->handlers[i].sql, d->handlers[i].line, &g->hs[i],
					     &g->nhs[i], err)))
			return rc;
	if (d->forget_sql &&
	    (rc = prepare_statements(g, d->forget_sql, 0, &g->forget, &g->nforget, err)))
		return rc;
	if (sqlite3_prepare_v3(g->w, "UPDATE kappa_checkpoint SET position = ?1 WHERE id = 1", -1,
			       SQLITE_PREPARE_PERSISTENT, &g->checkpoint, NULL))
		return sql_err(g->w, err, "cannot prepare the checkpoint", g->path);
	return KAPPA_OK;
}

int
kp_gen_open(const char *path, kp_view_def *def, uint64_t first, kp_gen **out, kappa_err *err)
{
	*out = NULL;
	kp_gen *g = calloc(1, sizeof(*g));
	if (!g || !(g->path = strdup(path))) {
		free(g);
		kp_view_def_free(def);
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	}
	g->def = def;
	int rc;
	if (sqlite3_open_v2(path, &g->w,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		rc = sql_err(g->w, err, "cannot open", path);
		goto fail;
	}
	sqlite3_busy_timeout(g->w, 5000);
	char *msg = NULL;
	/* secure_delete: deleted rows are overwritten with zeros, so what @forget deletes
	 * leaves no copy in the database file (the WAL is truncated after each forget). */
	if (sqlite3_exec(g->w,
			 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA "
			 "cache_size=-65536; PRAGMA secure_delete=ON;",
			 NULL, NULL, &msg) != SQLITE_OK) {
		rc = KP_ERR(err, KAPPA_EIO, "view database %s: %s", path, msg ? msg : "pragma");
		sqlite3_free(msg);
		goto fail;
	}
	sqlite3_stmt *st = NULL;
	int have = sqlite3_prepare_v2(g->w, "SELECT position FROM kappa_checkpoint WHERE id = 1",
				      -1, &st, NULL) == SQLITE_OK &&
		   sqlite3_step(st) == SQLITE_ROW;
	if (have)
		g->applied = (uint64_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (!have) {
		/* A new database: the schema and the checkpoint in one transaction. */
		if (sqlite3_exec(g->w, "BEGIN IMMEDIATE", NULL, NULL, NULL) ||
		    sqlite3_exec(g->w, def->ddl ? def->ddl : "", NULL, NULL, &msg) ||
		    sqlite3_exec(
			    g->w,
			    "CREATE TABLE kappa_checkpoint (id INTEGER PRIMARY KEY CHECK (id = "
			    "1), position INTEGER NOT NULL, hash TEXT NOT NULL, definition "
			    "TEXT NOT NULL)",
			    NULL, NULL, &msg)) {
			rc = KP_ERR(err, KAPPA_EINVAL, "%s: creating the view failed: %s",
				    def->file, msg ? msg : sqlite3_errmsg(g->w));
			sqlite3_free(msg);
			sqlite3_exec(g->w, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
		if (sqlite3_prepare_v2(g->w, "INSERT INTO kappa_checkpoint VALUES (1, ?1, ?2, ?3)",
				       -1, &st, NULL) != SQLITE_OK) {
			rc = sql_err(g->w, err, "cannot create the checkpoint", path);
			sqlite3_exec(g->w, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
		sqlite3_bind_int64(st, 1, (sqlite3_int64)first);
		sqlite3_bind_text(st, 2, def->hash, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, def->text, -1, SQLITE_STATIC);
		int s1 = sqlite3_step(st);
		sqlite3_finalize(st);
		if (s1 != SQLITE_DONE || sqlite3_exec(g->w, "COMMIT", NULL, NULL, NULL)) {
			rc = sql_err(g->w, err, "cannot create the checkpoint", path);
			sqlite3_exec(g->w, "ROLLBACK", NULL, NULL, NULL);
			goto fail;
		}
		g->applied = first;
	}
	if ((rc = prepare_handlers(g, err)))
		goto fail;
	*out = g;
	return KAPPA_OK;
fail:
	kp_gen_close(g);
	return rc;
}

void
kp_gen_close(kp_gen *g)
{
	if (!g)
		return;
	if (g->hs)
		for (size_t i = 0; i < g->nh; i++) {
			for (size_t k = 0; k < g->nhs[i]; k++)
				sqlite3_finalize(g->hs[i][k].st);
			free(g->hs[i]);
		}
	free(g->hs);
	free(g->nhs);
	for (size_t k = 0; k < g->nforget; k++)
		sqlite3_finalize(g->forget[k].st);
	free(g->forget);
	if (g->plain.data)
		sodium_memzero(g->plain.data, g->plain.cap);
	kp_buf_release(&g->plain);
	sqlite3_finalize(g->checkpoint);
	for (int i = 0; i < g->npool; i++)
		kp_reader_close(g->pool[i]);
	if (g->w)
		sqlite3_close(g->w);
	kp_log_iter_close(g->it);
	kp_view_def_free(g->def);
	free(g->path);
	free(g);
}

static int
matches(const kp_handler *h, const kp_event *ev)
{
	if (h->all)
		return 1;
	for (size_t i = 0; i < h->ntypes; i++)
		if (strlen(h->types[i]) == ev->type.len &&
		    !memcmp(h->types[i], ev->type.p, ev->type.len))
			return 1;
	return 0;
}

static void
bind_event(kp_hstmt *h, const kp_event *ev, const char *iso, int forgotten)
{
	sqlite3_stmt *st = h->st;
	if (h->idx[8])
		sqlite3_bind_int(st, h->idx[8], forgotten);
	if (h->idx[0])
		sqlite3_bind_int64(st, h->idx[0], (sqlite3_int64)ev->position);
	if (h->idx[1])
		sqlite3_bind_text(st, h->idx[1], (const char *)ev->stream.p, (int)ev->stream.len,
				  SQLITE_STATIC);
	if (h->idx[2])
		sqlite3_bind_int64(st, h->idx[2], (sqlite3_int64)ev->version);
	if (h->idx[3])
		sqlite3_bind_text(st, h->idx[3], (const char *)ev->type.p, (int)ev->type.len,
				  SQLITE_STATIC);
	if (h->idx[4])
		sqlite3_bind_text(st, h->idx[4], (const char *)ev->data.p, (int)ev->data.len,
				  SQLITE_STATIC);
	if (h->idx[5])
		sqlite3_bind_text(st, h->idx[5], iso, -1, SQLITE_STATIC);
	if (h->idx[6]) {
		if (ev->subject.len)
			sqlite3_bind_text(st, h->idx[6], (const char *)ev->subject.p,
					  (int)ev->subject.len, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, h->idx[6]);
	}
	if (h->idx[7]) {
		if (ev->metadata.len)
			sqlite3_bind_text(st, h->idx[7], (const char *)ev->metadata.p,
					  (int)ev->metadata.len, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, h->idx[7]);
	}
}

static void
rollback(kp_gen *g)
{
	sqlite3_exec(g->w, "ROLLBACK", NULL, NULL, NULL);
	kp_log_iter_seek(g->it, g->applied, NULL);
}

/* Is 'ev' kappa's record of a forget? Only kappa appends to '$' streams. */
static int
is_forget_record(const kp_event *ev)
{
	return ev->stream.len == strlen(KAPPA_FORGOTTEN_STREAM) &&
	       !memcmp(ev->stream.p, KAPPA_FORGOTTEN_STREAM, ev->stream.len) &&
	       ev->type.len == strlen(KAPPA_FORGOTTEN_TYPE) &&
	       !memcmp(ev->type.p, KAPPA_FORGOTTEN_TYPE, ev->type.len);
}

/* Run the @forget statements for the subject named in a forget record. */
static int
run_forget(kp_gen *g, const kp_event *ev)
{
	json_t *j = json_loadb((const char *)ev->data.p, ev->data.len, 0, NULL);
	const char *subject = json_string_value(json_object_get(j, "subject"));
	int s = SQLITE_DONE;
	for (size_t k = 0; subject && k < g->nforget && s == SQLITE_DONE; k++) {
		kp_hstmt *h = &g->forget[k];
		if (h->idx[6])
			sqlite3_bind_text(h->st, h->idx[6], subject, -1, SQLITE_TRANSIENT);
		while ((s = sqlite3_step(h->st)) == SQLITE_ROW)
			;
		sqlite3_reset(h->st);
		sqlite3_clear_bindings(h->st);
	}
	json_decref(j);
	g->truncate_wal = 1;
	return s == SQLITE_DONE ? 0 : -1;
}

/* After a forget, no page of the WAL may keep what was deleted: truncate it once no reader
 * holds it (retried at every call until done). */
static void
settle_wal(kp_gen *g)
{
	if (g->truncate_wal && sqlite3_wal_checkpoint_v2(g->w, NULL, SQLITE_CHECKPOINT_TRUNCATE,
							 NULL, NULL) == SQLITE_OK)
		g->truncate_wal = 0;
}

int
kp_gen_apply(kp_gen *g, kappa_db *db, int max, uint64_t budget_ns, kp_apply_fail *fail,
	     kappa_err *err)
{
	int rc;
	kp_log *log = db->log;
	settle_wal(g);
	if (!g->it && (rc = kp_log_iter_open(log, g->applied, &g->it, err)))
		return rc;
	if (kp_log_iter_position(g->it) >= kp_log_head(log))
		return 0;
	if (sqlite3_exec(g->w, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return sql_err(g->w, err, "cannot begin", g->path);
	uint64_t t0 = kp_mono_ns(), pos = g->applied;
	int n = 0;
	char iso[KP_TIME_TEXT];
	kp_event ev;
	while (n < max) {
		rc = kp_log_iter_next(g->it, &ev, err);
		if (rc == 0)
			break;
		if (rc < 0) {
			rollback(g);
			return rc;
		}
		int forgotten;
		if ((rc = kp_store_unseal(db, &ev, &g->plain, &forgotten, err))) {
			rollback(g);
			return rc;
		}
		kp_format_time_ms(ev.time_ms, iso);
		if (is_forget_record(&ev) && run_forget(g, &ev) < 0) {
			fail->position = ev.position;
			snprintf(fail->type, sizeof(fail->type), "%s", KAPPA_FORGOTTEN_TYPE);
			snprintf(fail->msg, sizeof(fail->msg), "%s: @forget failed: %s",
				 g->def->file, sqlite3_errmsg(g->w));
			rollback(g);
			return KP_ERR(err, KAPPA_EFATAL, "%s", fail->msg);
		}
		for (size_t i = 0; i < g->def->nhandlers; i++) {
			if (!matches(&g->def->handlers[i], &ev))
				continue;
			for (size_t k = 0; k < g->nhs[i]; k++) {
				kp_hstmt *h = &g->hs[i][k];
				bind_event(h, &ev, iso, forgotten);
				int s;
				while ((s = sqlite3_step(h->st)) == SQLITE_ROW)
					;
				if (s != SQLITE_DONE) {
					fail->position = ev.position;
					snprintf(fail->type, sizeof(fail->type), "%.*s",
						 (int)ev.type.len, (const char *)ev.type.p);
					snprintf(fail->msg, sizeof(fail->msg),
						 "%s:%d: handler statement %zu failed: %s",
						 g->def->file, g->def->handlers[i].line, k + 1,
						 sqlite3_errmsg(g->w));
					sqlite3_reset(h->st);
					sqlite3_clear_bindings(h->st);
					rollback(g);
					/* Keep what came before the failing event: apply exactly
					 * those again, so the view stops right at it. */
					if (ev.position > g->applied) {
						kp_apply_fail again;
						kp_gen_apply(g, db, (int)(ev.position - g->applied),
							     UINT64_MAX, &again, NULL);
					}
					return KP_ERR(err,
						      sqlite3_errcode(g->w) == SQLITE_FULL
							      ? KAPPA_ENOSPC
							      : KAPPA_EFATAL,
						      "%s", fail->msg);
				}
				sqlite3_reset(h->st);
				sqlite3_clear_bindings(h->st);
			}
		}
		pos = ev.position + 1;
		n++;
		if ((n & 63) == 0 && kp_mono_ns() - t0 > budget_ns)
			break;
	}
	if (n == 0) {
		sqlite3_exec(g->w, "ROLLBACK", NULL, NULL, NULL);
		return 0;
	}
	sqlite3_bind_int64(g->checkpoint, 1, (sqlite3_int64)pos);
	int s = sqlite3_step(g->checkpoint);
	sqlite3_reset(g->checkpoint);
	if (s != SQLITE_DONE || sqlite3_exec(g->w, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = sql_err(g->w, err, "cannot commit", g->path);
		rollback(g);
		return rc;
	}
	g->applied = pos;
	settle_wal(g);
	return n;
}
