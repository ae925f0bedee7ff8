/*
 * query.c -- reading views: named queries (with read-your-writes through min_position) and
 * guarded ad-hoc SQL, both on borrowed read-only connections, with results as JSON.
 *
 * Each answer runs in one read transaction that also reads the view's checkpoint, so the
 * "position" it reports is exactly what the rows reflect. Ad-hoc SQL runs under an
 * authorizer (reads only: no writes, ATTACH, state-changing PRAGMA, transactions or
 * load_extension) and a progress handler that stops it at its deadline. An answer holds at
 * most KP_VIEW_MAX_ANSWER bytes of values (view.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "view/view.h"

#define DEFAULT_TIMEOUT_MS 2000
#define DEFAULT_MAX_ROWS 10000

void
kappa_free(void *p)
{
	free(p);
}

typedef struct run_ctx {
	uint64_t deadline_ns;
	int timed_out;
	char denied[160];
} run_ctx;

static int
progress(void *arg)
{
	run_ctx *r = arg;
	if (kp_mono_ns() > r->deadline_ns) {
		r->timed_out = 1;
		return 1;
	}
	return 0;
}

static int
authorize(void *arg, int action, const char *a1, const char *a2, const char *db, const char *trig)
{
	run_ctx *r = arg;
	(void)db;
	(void)trig;
	switch (action) {
	case SQLITE_SELECT:
	case SQLITE_READ:
	case SQLITE_RECURSIVE:
		return SQLITE_OK;
	case SQLITE_FUNCTION:
		if (a2 && (!strcmp(a2, "load_extension") || !strcmp(a2, "readfile") ||
			   !strcmp(a2, "writefile") || !strcmp(a2, "edit")))
			break;
		return SQLITE_OK;
	case SQLITE_PRAGMA:
		/* Only pragmas that describe the schema, without a value. */
		if (!a2 && a1 &&
		    (!strcmp(a1, "table_info") || !strcmp(a1, "table_xinfo") ||
		     !strcmp(a1, "index_list") || !strcmp(a1, "index_info") ||
		     !strcmp(a1, "table_list") || !strcmp(a1, "foreign_key_list")))
			return SQLITE_OK;
		break;
	default:
		break;
	}
	if (!r->denied[0]) {
		const char *what = action == SQLITE_PRAGMA     ? "PRAGMA"
				   : action == SQLITE_ATTACH   ? "ATTACH"
				   : action == SQLITE_DETACH   ? "DETACH"
				   : action == SQLITE_FUNCTION ? "function"
				   : action == SQLITE_TRANSACTION || action == SQLITE_SAVEPOINT
					   ? "transactions"
					   : "writing or changing the schema";
		const char *name = action == SQLITE_PRAGMA     ? a1
				   : action == SQLITE_FUNCTION ? a2
							       : NULL;
		snprintf(r->denied, sizeof(r->denied), "%s%s%s", what, name ? " " : "",
			 name ? name : "");
	}
	return SQLITE_DENY;
}

/* A query's parameters: the members of a checked JSON object, borrowed from its text. */
typedef struct qparams {
	size_t n;
	kp_jval *keys, *vals;
	char *scratch; /* a decoded string */
} qparams;

static void
params_release(qparams *p)
{
	free(p->keys);
	free(p->scratch);
	memset(p, 0, sizeof(*p));
}

static const kp_jval *
params_get(const qparams *p, const char *name)
{
	for (size_t i = p->n; i-- > 0;)
		if (kp_jstr_eq(&p->keys[i], name))
			return &p->vals[i];
	return NULL;
}

static int
bind_one(sqlite3_stmt *st, int i, const kp_jval *v, qparams *p)
{
	int64_t n;
	switch (v->type) {
	case KP_JSTRING: {
		size_t len = kp_jstr_decode(v, p->scratch);
		return sqlite3_bind_text(st, i, p->scratch, (int)len, SQLITE_TRANSIENT);
	}
	case KP_JNUMBER:
		if (kp_jint(v, &n) == 0)
			return sqlite3_bind_int64(st, i, n);
		return sqlite3_bind_double(st, i, strtod(v->p, NULL));
	case KP_JTRUE:
	case KP_JFALSE:
		return sqlite3_bind_int(st, i, v->type == KP_JTRUE);
	case KP_JNULL:
		return sqlite3_bind_null(st, i);
	default:
		return SQLITE_MISMATCH;
	}
}

static int
bind_params(sqlite3_stmt *st, qparams *params, const kp_query_def *q, kappa_err *err)
{
	for (int i = 1; i <= sqlite3_bind_parameter_count(st); i++) {
		const char *name = sqlite3_bind_parameter_name(st, i);
		if (!name || (name[0] != ':' && name[0] != '@' && name[0] != '$'))
			return KP_ERR(err, KAPPA_EINVAL, "only named :parameters can be bound");
		const kp_jval *v = params_get(params, name + 1);
		if (!v) {
			int optional = !q;
			for (size_t k = 0; q && k < q->nparams; k++)
				optional |= q->optional[k] && !strcmp(q->params[k], name + 1);
			if (!optional)
				return KP_ERR(err, KAPPA_EINVAL, "missing parameter %s", name + 1);
			sqlite3_bind_null(st, i);
			continue;
		}
		int rc = bind_one(st, i, v, params);
		if (rc == SQLITE_MISMATCH)
			return KP_ERR(err, KAPPA_EINVAL,
				      "parameter %s must be a string, number, boolean or null",
				      name + 1);
		if (rc != SQLITE_OK)
			return KP_ERR(err, KAPPA_EINVAL, "cannot bind %s", name + 1);
	}
	return KAPPA_OK;
}

/* Run 'sql' (one statement) on 'c' inside a read transaction; build the JSON answer. */
/* A statement the reader keeps for its next queries (prepared on first use). */
static sqlite3_stmt *
kept(sqlite3 *c, sqlite3_stmt **slot, const char *sql)
{
	if (!*slot)
		sqlite3_prepare_v3(c, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL);
	return *slot;
}

/* Run one statement and reset it; SQLITE_DONE or SQLITE_ROW on success. */
static int
step_once(sqlite3_stmt *st)
{
	int s = st ? sqlite3_step(st) : SQLITE_ERROR;
	if (st)
		sqlite3_reset(st);
	return s;
}

static int
run(kp_reader *rd, const char *sql, qparams *params, const kp_query_def *q, size_t qi, int adhoc,
    uint64_t max_rows, uint64_t deadline_ns, char **out_json, kappa_err *err)
{
	sqlite3 *c = rd->c;
	run_ctx r = {deadline_ns, 0, ""};
	sqlite3_stmt *st = NULL, *cp;
	kp_buf out = {0};
	int rc = KAPPA_OK, truncated = 0, few[16], *plan = NULL; /* few: most answers' columns */
	uint64_t nrows = 0;
	sqlite3_progress_handler(c, 1000, progress, &r);
	if (step_once(kept(c, &rd->begin, "BEGIN")) != SQLITE_DONE) {
		rc = KP_ERR(err, KAPPA_EIO, "cannot begin a read: %s", sqlite3_errmsg(c));
		goto out;
	}
	sqlite3_int64 pos = 0;
	cp = kept(c, &rd->checkpoint, "SELECT position FROM kappa_checkpoint WHERE id = 1");
	if (cp && sqlite3_step(cp) == SQLITE_ROW)
		pos = sqlite3_column_int64(cp, 0);
	if (cp)
		sqlite3_reset(cp);
	const char *tail = NULL;
	int prc;
	if (adhoc) {
		sqlite3_set_authorizer(c, authorize, &r);
		prc = sqlite3_prepare_v2(c, sql, -1, &st, &tail);
		sqlite3_set_authorizer(c, NULL, NULL);
	} else {
		st = kept(c, &rd->queries[qi], sql);
		prc = st ? SQLITE_OK : sqlite3_errcode(c);
	}
	if (prc != SQLITE_OK || !st) {
		if (r.denied[0])
			rc = KP_ERR(err, KAPPA_EINVAL, "not allowed in read-only SQL: %s",
				    r.denied);
		else
			rc = KP_ERR(err, KAPPA_EINVAL, "%s",
				    st || prc ? sqlite3_errmsg(c) : "no SQL statement");
		goto rollback;
	}
	if (adhoc) {
		sqlite3_stmt *extra = NULL;
		if (tail && *tail && sqlite3_prepare_v2(c, tail, -1, &extra, NULL) == SQLITE_OK &&
		    extra) {
			sqlite3_finalize(extra);
			rc = KP_ERR(err, KAPPA_EINVAL, "only one statement is allowed");
			goto rollback;
		}
		if (!sqlite3_stmt_readonly(st)) {
			rc = KP_ERR(err, KAPPA_EINVAL, "not allowed in read-only SQL: writing");
			goto rollback;
		}
	}
	if ((rc = bind_params(st, params, q, err)))
		goto rollback;
	int s, ncol = sqlite3_column_count(st);
	size_t bytes = 0; /* of the values so far (KP_VIEW_MAX_ANSWER) */
	if (!(plan = ncol <= 16 ? few : malloc(sizeof(int) * (size_t)ncol)) ||
	    kp_buf_append(&out, "{\"rows\":[", 9) < 0) {
		rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		goto rollback;
	}
	kp_row_plan(st, plan);
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		if (nrows >= max_rows) {
			truncated = 1;
			break;
		}
		size_t mark = out.len;
		if ((nrows && kp_buf_append(&out, ",", 1) < 0) ||
		    kp_row_write(&out, st, plan, ncol, &bytes) < 0) {
			rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
			goto rollback;
		}
		if (bytes > KP_VIEW_MAX_ANSWER) {
			out.len = mark;
			if (adhoc) {
				truncated = 1;
				break;
			}
			rc = KP_ERR(err, KAPPA_ETOOBIG, "the answer is over %zu bytes",
				    KP_VIEW_MAX_ANSWER);
			goto rollback;
		}
		nrows++;
	}
	if (s != SQLITE_ROW && s != SQLITE_DONE) {
		if (r.timed_out)
			rc = KP_ERR(err, KAPPA_ETIMEOUT, "the query ran past its time limit");
		else
			rc = KP_ERR(err, KAPPA_EINVAL, "%s", sqlite3_errmsg(c));
		goto rollback;
	}
	if (kp_buf_append(&out, "],\"position\":", 13) < 0 ||
	    (pos > 0 ? kp_json_i64(&out, pos - 1) : kp_buf_append(&out, "null", 4)) < 0 ||
	    (adhoc && (truncated ? kp_buf_append(&out, ",\"truncated\":true", 17)
				 : kp_buf_append(&out, ",\"truncated\":false", 18)) < 0) ||
	    kp_buf_append(&out, "}", 2) < 0) { /* with its NUL */
		rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		goto rollback;
	}
	*out_json = (char *)out.data;
	out = (kp_buf){0};
rollback:
	if (adhoc) {
		sqlite3_finalize(st);
	} else if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
	if (step_once(kept(c, &rd->commit, "COMMIT")) != SQLITE_DONE)
		sqlite3_exec(c, "ROLLBACK", NULL, NULL, NULL);
out:
	sqlite3_progress_handler(c, 0, NULL, NULL);
	kp_buf_release(&out);
	if (plan != few)
		free(plan);
	return rc;
}

static int
parse_params(const char *params_json, qparams *out, kappa_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!params_json || !*params_json)
		return KAPPA_OK;
	size_t len = strlen(params_json);
	kp_jval top, k, v;
	char why[64];
	if (kp_json_check(params_json, len, &top, why, sizeof(why), NULL) < 0 ||
	    top.type != KP_JOBJECT)
		return KP_ERR(err, KAPPA_EINVAL, "parameters must be a JSON object%s%s",
			      top.type ? "" : ": ", top.type ? "" : why);
	kp_jiter it;
	size_t n = 0;
	for (kp_jiter_init(&it, &top); kp_jiter_member(&it, &k, &v);)
		n++;
	if (!n)
		return KAPPA_OK;
	if (!(out->keys = malloc(2 * n * sizeof(kp_jval))) || !(out->scratch = malloc(len + 1))) {
		params_release(out);
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	}
	out->vals = out->keys + n;
	for (kp_jiter_init(&it, &top);
	     kp_jiter_member(&it, &out->keys[out->n], &out->vals[out->n]);)
		out->n++;
	return KAPPA_OK;
}

static int
query_common(kappa_db *db, const char *view, const char *query, const char *sql,
	     const char *params_json, uint64_t min_position, uint64_t max_rows, int64_t timeout_ms,
	     char **result, kappa_err *err)
{
	if (!result)
		return KP_ERR(err, KAPPA_EINVAL, "no result pointer");
	*result = NULL;
	if (!db || !view)
		return KP_ERR(err, KAPPA_EINVAL, "no database or view");
	kp_view *v = kp_views_find(db, view);
	if (!v)
		return KP_ERR(err, KAPPA_ENOTFOUND, "no view named %s", view);
	if (timeout_ms <= 0)
		timeout_ms = DEFAULT_TIMEOUT_MS;
	uint64_t deadline = kp_mono_ns() + (uint64_t)timeout_ms * 1000000u;
	qparams params;
	int rc = parse_params(params_json, &params, err);
	if (rc)
		return rc;
	if (min_position != KAPPA_NO_POSITION &&
	    (rc = kp_view_wait(v, min_position, timeout_ms, err))) {
		params_release(&params);
		return rc;
	}
	kp_reader *rd;
	kp_gen *g;
	if ((rc = kp_view_borrow(v, &rd, &g, err))) {
		params_release(&params);
		return rc;
	}
	const kp_query_def *q = NULL;
	if (query) {
		q = kp_view_def_query(g->def, query);
		if (!q)
			rc = KP_ERR(err, KAPPA_ENOTFOUND, "view %s has no query named %s", view,
				    query);
		else
			sql = q->sql;
	}
	if (!rc)
		rc = run(rd, sql, &params, q, q ? (size_t)(q - g->def->queries) : 0, !query,
			 max_rows, deadline, result, err);
	kp_view_give_back(v, g, rd);
	params_release(&params);
	return rc;
}

int
kappa_query(kappa_db *db, const char *view, const char *query, const char *params_json,
	    uint64_t min_position, int64_t timeout_ms, char **result_json, kappa_err *err)
{
	if (!query)
		return KP_ERR(err, KAPPA_EINVAL, "no query name");
	return query_common(db, view, query, NULL, params_json, min_position, UINT64_MAX,
			    timeout_ms, result_json, err);
}

int
kappa_view_wait(kappa_db *db, const char *view, uint64_t position, int64_t timeout_ms,
		kappa_err *err)
{
	if (!db || !view)
		return KP_ERR(err, KAPPA_EINVAL, "no database or view");
	kp_view *v = kp_views_find(db, view);
	if (!v)
		return KP_ERR(err, KAPPA_ENOTFOUND, "no view named %s", view);
	return kp_view_wait(v, position, timeout_ms <= 0 ? DEFAULT_TIMEOUT_MS : timeout_ms, err);
}

int
kappa_sql(kappa_db *db, const char *view, const char *sql, const char *params_json,
	  uint64_t max_rows, int64_t timeout_ms, char **result_json, kappa_err *err)
{
	if (!sql)
		return KP_ERR(err, KAPPA_EINVAL, "no SQL");
	return query_common(db, view, NULL, sql, params_json, KAPPA_NO_POSITION,
			    max_rows ? max_rows : DEFAULT_MAX_ROWS, timeout_ms, result_json, err);
}
