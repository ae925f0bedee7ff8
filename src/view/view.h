/*
 * view.h -- derived views: SQL view definitions, their projectors, and queries.
 *
 * A view is one .sql file (see kp_view_def) kept in its own SQLite database,
 * DATA/views/NAME.db, maintained from the log by one projector thread per view. Every
 * applied batch of events and the view's checkpoint row are one SQLite transaction, so a
 * crash never applies an event twice or skips one. The checkpoint row also keeps the
 * definition the database was built with, so a changed file can be rebuilt beside the old
 * version while the old one keeps answering. Only src/view/ includes this.
 */
#ifndef KP_VIEW_H
#define KP_VIEW_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>

#include "store/store.h"

#define KP_VIEW_NAME_MAX 63

/* ---- definitions (def.c) ---------------------------------------------------------------- */

typedef struct kp_handler {
	char **types; /* event types, or none with 'all' */
	size_t ntypes;
	int all;
	char *sql; /* one or more statements */
	int line;  /* of the @on directive */
} kp_handler;

typedef struct kp_query_def {
	char *name;
	char **params;
	unsigned char *optional; /* per parameter: declared NAME?, bound NULL when left out */
	size_t nparams;
	char *sql;
	int line;
} kp_query_def;

/* Bytes of values in one query answer (rows past it are cut off: ad-hoc SQL says
 * "truncated", a named query fails with KAPPA_ETOOBIG), and SQLite's longest string or blob
 * on the read connections, so that no query can make the server hold gigabytes. */
#define KP_VIEW_MAX_ANSWER ((size_t)16 << 20)

typedef struct kp_view_def {
	char *name;
	char *file;
	char *text;    /* the whole definition, as read */
	char hash[33]; /* hex BLAKE2b-128 of 'text' */
	char *ddl;
	kp_handler *handlers;
	size_t nhandlers;
	char *forget_sql;
	char *export_sql;
	kp_query_def *queries;
	size_t nqueries;
} kp_view_def;

/* Parse a definition; errors name 'file', the line and the problem. */
int kp_view_def_parse(const char *file, const char *text, kp_view_def **out, kappa_err *err);
/* Compile every statement against an in-memory database built from the DDL: unknown
 * tables and columns, parameters handlers cannot have, and writing queries are errors. */
int kp_view_def_check(const kp_view_def *d, kappa_err *err);
void kp_view_def_free(kp_view_def *d);
const kp_query_def *kp_view_def_query(const kp_view_def *d, const char *name);

/* ---- one database of a view (gen.c) ----------------------------------------------------- */

/* One prepared handler statement and where its event parameters go (0: unused). */
#define KP_HANDLER_PARAMS 9 /* :position ... :metadata, :forgotten */
typedef struct kp_hstmt {
	sqlite3_stmt *st;
	int idx[KP_HANDLER_PARAMS];
} kp_hstmt;

/* A read-only connection to a generation, with the statements it has prepared kept for the
 * next query: a named query is parsed once per connection, not once per call. */
typedef struct kp_reader {
	sqlite3 *c;
	sqlite3_stmt *begin, *commit, *checkpoint;
	sqlite3_stmt **queries; /* one per named query of the generation's definition */
	size_t nqueries;
} kp_reader;

/* Finalize a reader's statements and close it (NULL: nothing). */
void kp_reader_close(kp_reader *r);

/* A generation: the live database of a view, or the one being rebuilt beside it. */
typedef struct kp_gen {
	kp_view_def *def; /* owned */
	char *path;
	sqlite3 *w;    /* the projector's connection */
	kp_hstmt **hs; /* per handler, its statements */
	size_t *nhs;
	size_t nh;		  /* handlers prepared */
	sqlite3_stmt *checkpoint; /* UPDATE kappa_checkpoint */
	kp_hstmt *forget;	  /* the @forget statements */
	size_t nforget;
	kp_buf plain;	  /* the current event's opened fields */
	int truncate_wal; /* a forget was applied: truncate the WAL (retried until it is) */
	kp_log_iter *it;
	_Atomic uint64_t applied; /* events below this position are applied */
	/* Readers: idle read-only connections, and how many are lent out. */
	kp_reader *pool[8];
	int npool;
	int borrowed;
} kp_gen;

/* Open (creating if needed, starting at position 'first') the database at 'path' for 'def',
 * which it takes over (freed on error too). */
int kp_gen_open(const char *path, kp_view_def *def, uint64_t first, kp_gen **out, kappa_err *err);
void kp_gen_close(kp_gen *g);
/* Read the definition text and position stored in an existing view database. */
int kp_gen_peek(const char *path, char **def_text, uint64_t *position, kappa_err *err);

/* What a failed handler left behind. */
typedef struct kp_apply_fail {
	uint64_t position;
	char type[KAPPA_MAX_TYPE + 1];
	char msg[256];
} kp_apply_fail;

/* Apply up to 'max' events (and at most 'budget_ns') from g->applied, in one transaction.
 * Returns the number applied (>= 0), or KAPPA_ECORRUPT/EIO (log) or KAPPA_EFATAL with
 * 'fail' filled (a handler failed; nothing of the batch is kept).
 * Events of a forgotten subject reach the handlers with :data (and sealed :metadata) NULL and
 * :forgotten 1; a $subject_forgotten record runs the @forget statements with :subject bound,
 * then the WAL is truncated. */
int kp_gen_apply(kp_gen *g, kappa_db *db, int max, uint64_t budget_ns, kp_apply_fail *fail,
		 kappa_err *err);

/* ---- a view and its projector (view.c) -------------------------------------------------- */

typedef struct kp_view {
	struct kp_views *vs;
	char name[KP_VIEW_NAME_MAX + 1];
	pthread_mutex_t lock;
	pthread_cond_t cond;  /* applied moved, state changed, a reader returned */
	kp_gen *cur;	      /* answers queries */
	kp_gen *next;	      /* being rebuilt, or NULL */
	kp_view_def *pending; /* a new definition to rebuild with */
	int rebuild_requested;
	int swapping;
	kappa_view_state state;
	int stopped;   /* file removed */
	int caught_up; /* the live database has reached the head since it was opened */
	kp_apply_fail fail;
	int failed;
	int failed_full; /* it failed for lack of disk space: retried every second */
	char load_error[256];
	double rate;
	int stop;
	pthread_t thread;
	int started;
} kp_view;

struct kp_views {
	kappa_db *db;
	char *dir;	      /* definitions */
	char *dbdir;	      /* DATA/views */
	pthread_mutex_t lock; /* the list */
	kp_view **v;
	size_t n;
};

int kp_view_start(struct kp_views *vs, kp_view_def *def, kp_view **out, kappa_err *err);
void kp_view_stop(kp_view *v);
/* Ask the projector to rebuild (with 'def' if not NULL, which it takes over). */
void kp_view_request_rebuild(kp_view *v, kp_view_def *def);
void kp_view_status(kp_view *v, kappa_view_status *st);

/* Borrow a read-only connection to the live database; *gen to give back. */
int kp_view_borrow(kp_view *v, kp_reader **rd, kp_gen **gen, kappa_err *err);
void kp_view_give_back(kp_view *v, kp_gen *gen, kp_reader *rd);
/* Wait until the view has applied 'position' (or failed / timed out). */
int kp_view_wait(kp_view *v, uint64_t position, int64_t timeout_ms, kappa_err *err);

/* Rows as JSON objects (row_json.c). kp_row_plan fills 'plan' (room for the statement's
 * column count) with which column's value each member takes (-1: none, the name came
 * before) and returns the column count; kp_row_write appends the current row as an object
 * and adds its values' bytes (+8 each) to '*bytes' (may be NULL). Returns 0 or -1 (out of
 * memory). */
int kp_row_plan(sqlite3_stmt *st, int *plan);
int kp_row_write(kp_buf *out, sqlite3_stmt *st, const int *plan, int ncol, size_t *bytes);

/* ---- the registry (views.c) ------------------------------------------------------------- */

int kp_views_open(kappa_db *db, const char *dir, kappa_err *err);
void kp_views_close(kappa_db *db);
kp_view *kp_views_find(kappa_db *db, const char *name);

#endif
