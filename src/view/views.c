/*
 * views.c -- the set of views of a database: loading the views directory at open and on
 * reload (new files start, changed ones rebuild, removed ones stop), kappa_open and
 * kappa_close (the store plus its views), and the status API.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "view/view.h"

#define MAX_DEF_BYTES (1u << 20)

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

kp_view *
kp_views_find(kappa_db *db, const char *name)
{
	struct kp_views *vs = db ? db->views : NULL;
	if (!vs || !name)
		return NULL;
	kp_view *found = NULL;
	pthread_mutex_lock(&vs->lock);
	for (size_t i = 0; i < vs->n && !found; i++)
		if (!strcmp(vs->v[i]->name, name))
			found = vs->v[i];
	pthread_mutex_unlock(&vs->lock);
	return found;
}

static char *
read_file(const char *path, kappa_err *err)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		KP_ERR_SYS(err, KAPPA_EIO, errno, "cannot read %s", path);
		return NULL;
	}
	char *buf = malloc(MAX_DEF_BYTES + 1);
	size_t n = buf ? fread(buf, 1, MAX_DEF_BYTES + 1, f) : 0;
	fclose(f);
	if (!buf) {
		KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		return NULL;
	}
	if (n > MAX_DEF_BYTES) {
		free(buf);
		KP_ERR(err, KAPPA_ETOOBIG, "%s is larger than 1 MiB", path);
		return NULL;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', n)) {
		free(buf);
		KP_ERR(err, KAPPA_EINVAL, "%s contains a NUL byte", path);
		return NULL;
	}
	return buf;
}

/* Load one file: 0 with *def, or an error. */
static int
load_def(const char *path, kp_view_def **def, kappa_err *err)
{
	char *text = read_file(path, err);
	if (!text)
		return err ? err->code : KAPPA_EIO;
	int rc = kp_view_def_parse(path, text, def, err);
	free(text);
	if (rc == KAPPA_OK && (rc = kp_view_def_check(*def, err))) {
		kp_view_def_free(*def);
		*def = NULL;
	}
	return rc;
}

static int
views_reload(struct kp_views *vs, kappa_err *err)
{
	kappa_db *db = vs->db;
	int first_rc = KAPPA_OK;
	char **files = NULL;
	size_t nf = 0;
	if (vs->dir) {
		DIR *d = opendir(vs->dir);
		if (!d)
			return KP_ERR_SYS(err, KAPPA_ENOTFOUND, errno,
					  "cannot read views directory %s", vs->dir);
		struct dirent *de;
		while ((de = readdir(d))) {
			size_t l = strlen(de->d_name);
			if (l < 5 || strcmp(de->d_name + l - 4, ".sql") || de->d_name[0] == '.')
				continue;
			char **nv = realloc(files, (nf + 1) * sizeof(*nv));
			size_t pl = strlen(vs->dir) + l + 2;
			char *p = malloc(pl);
			if (!nv || !p) {
				free(p);
				free(nv ? nv : files);
				closedir(d);
				return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
			}
			files = nv;
			snprintf(p, pl, "%s/%s", vs->dir, de->d_name);
			files[nf++] = p;
		}
		closedir(d);
		if (nf)
			qsort(files, nf, sizeof(*files), cmp_str);
	}
	char **seen = calloc(2 * nf + 1, sizeof(char *)); /* names, at most two per file */
	size_t nseen = 0;
	for (size_t i = 0; i < nf; i++) {
		kp_view_def *def = NULL;
		kappa_err e;
		int rc = load_def(files[i], &def, &e);
		kp_view *v = NULL;
		if (rc == KAPPA_OK) {
			for (size_t k = 0; k < nseen; k++)
				if (!strcmp(seen[k], def->name)) {
					rc = KP_ERR(
						&e, KAPPA_EINVAL,
						"%s: view %s is already defined by another file",
						files[i], def->name);
					kp_view_def_free(def);
					def = NULL;
					break;
				}
		}
		if (rc != KAPPA_OK) {
			kp_emit(db->o.notice, db->o.notice_ctx,
				"event=view_load_failed error=\"%s\"", e.msg);
			/* a view already running from this file keeps running, with the error */
			pthread_mutex_lock(&vs->lock);
			for (size_t k = 0; k < vs->n; k++) {
				kp_view *x = vs->v[k];
				pthread_mutex_lock(&x->lock);
				const kp_view_def *xd = x->pending ? x->pending
							: x->next  ? x->next->def
							: x->cur   ? x->cur->def
								   : NULL;
				if (xd && !strcmp(xd->file, files[i]) && nseen < 2 * nf) {
					snprintf(x->load_error, sizeof(x->load_error), "%s", e.msg);
					seen[nseen++] = strdup(x->name); /* keeps running */
				}
				pthread_mutex_unlock(&x->lock);
			}
			pthread_mutex_unlock(&vs->lock);
			if (first_rc == KAPPA_OK) {
				first_rc = rc == KAPPA_EINVAL ? rc : KAPPA_EINVAL;
				kp_err_copy(err, &e);
				if (err)
					err->code = first_rc;
			}
			continue;
		}
		seen[nseen++] = strdup(def->name);
		if ((v = kp_views_find(db, def->name))) {
			pthread_mutex_lock(&v->lock);
			v->load_error[0] = '\0';
			const kp_view_def *now = v->pending ? v->pending
						 : v->next  ? v->next->def
						 : v->cur   ? v->cur->def
							    : NULL;
			int same = now && !strcmp(now->text, def->text) && !v->failed;
			int was_stopped = v->stopped;
			v->stopped = 0;
			pthread_cond_broadcast(&v->cond);
			pthread_mutex_unlock(&v->lock);
			(void)was_stopped; /* unstopped above: it resumes from its checkpoint */
			if (!same)
				kp_view_request_rebuild(v, def);
			else
				kp_view_def_free(def);
			continue;
		}
		rc = kp_view_start(vs, def, &v, &e);
		if (rc == KAPPA_OK) {
			pthread_mutex_lock(&vs->lock);
			kp_view **nv = realloc(vs->v, (vs->n + 1) * sizeof(*nv));
			if (nv) {
				vs->v = nv;
				vs->v[vs->n++] = v;
			}
			pthread_mutex_unlock(&vs->lock);
			if (!nv)
				kp_view_stop(v);
		} else if (first_rc == KAPPA_OK) {
			first_rc = rc;
			kp_err_copy(err, &e);
		}
	}
	/* Views whose file is gone: stopped, database kept. */
	pthread_mutex_lock(&vs->lock);
	for (size_t k = 0; k < vs->n; k++) {
		int found = 0;
		for (size_t j = 0; j < nseen && !found; j++)
			found = seen[j] && !strcmp(seen[j], vs->v[k]->name);
		if (!found) {
			pthread_mutex_lock(&vs->v[k]->lock);
			vs->v[k]->stopped = 1;
			pthread_mutex_unlock(&vs->v[k]->lock);
		}
	}
	pthread_mutex_unlock(&vs->lock);
	for (size_t j = 0; j < nseen; j++)
		free(seen[j]);
	free(seen);
	for (size_t i = 0; i < nf; i++)
		free(files[i]);
	free(files);
	return first_rc;
}

int
kp_views_open(kappa_db *db, const char *dir, kappa_err *err)
{
	struct kp_views *vs = calloc(1, sizeof(*vs));
	if (!vs)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	pthread_mutex_init(&vs->lock, NULL);
	vs->db = db;
	db->views = vs;
	size_t n = strlen(db->dir) + 8;
	vs->dbdir = malloc(n);
	if (!vs->dbdir || (dir && !(vs->dir = strdup(dir))))
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	snprintf(vs->dbdir, n, "%s/views", db->dir);
	if (mkdir(vs->dbdir, 0755) < 0 && errno != EEXIST)
		return KP_ERR_SYS(err, kp_err_from_errno(errno), errno, "cannot create %s",
				  vs->dbdir);
	if (!dir)
		return KAPPA_OK;
	kappa_err e;
	int rc = views_reload(vs, &e);
	if (rc == KAPPA_ENOTFOUND || rc == KAPPA_ENOMEM || rc == KAPPA_EIO) {
		kp_err_copy(err, &e);
		return rc;
	}
	return KAPPA_OK; /* a bad definition does not stop the database: see its status */
}

void
kp_views_close(kappa_db *db)
{
	struct kp_views *vs = db->views;
	if (!vs)
		return;
	for (size_t i = 0; i < vs->n; i++)
		kp_view_stop(vs->v[i]);
	free(vs->v);
	free(vs->dir);
	free(vs->dbdir);
	pthread_mutex_destroy(&vs->lock);
	free(vs);
	db->views = NULL;
}

/* SQLite's allocation statistics take a global mutex on every allocation, which request
 * threads and projectors then contend for; kappa does not read them. Only possible before
 * SQLite initialises (if the embedding program already used SQLite, it stays as it is). */
static pthread_once_t sqlite_once = PTHREAD_ONCE_INIT;

static void
sqlite_setup(void)
{
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int
kappa_open(const char *dir, const kappa_options *options, kappa_db **out, kappa_err *err)
{
	pthread_once(&sqlite_once, sqlite_setup);
	int rc = kp_store_open(dir, options, out, err);
	if (rc)
		return rc;
	if ((rc = kp_views_open(*out, options ? options->views_dir : NULL, err))) {
		kappa_close(*out);
		*out = NULL;
	}
	return rc;
}

void
kappa_close(kappa_db *db)
{
	if (!db)
		return;
	kp_views_close(db); /* projectors read the log: stop them first */
	kp_store_close(db);
}

int
kappa_views_reload(kappa_db *db, kappa_err *err)
{
	if (!db || !db->views)
		return KP_ERR(err, KAPPA_EINVAL, "no database");
	if (!db->views->dir)
		return KP_ERR(err, KAPPA_EINVAL,
			      "the database was opened without a views directory");
	return views_reload(db->views, err);
}

const char *
kappa_view_state_name(kappa_view_state s)
{
	static const char *names[] = {"catching_up", "live", "rebuilding", "failed", "stopped"};
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

int
kappa_view_status_get(kappa_db *db, const char *view, kappa_view_status *st, kappa_err *err)
{
	kp_view *v = kp_views_find(db, view);
	if (!st)
		return KP_ERR(err, KAPPA_EINVAL, "no status pointer");
	if (!v)
		return KP_ERR(err, KAPPA_ENOTFOUND, "no view named %s", view ? view : "(null)");
	kp_view_status(v, st);
	return KAPPA_OK;
}

int
kappa_views_list(kappa_db *db, void (*cb)(void *ctx, const kappa_view_status *st), void *ctx,
		 kappa_err *err)
{
	if (!db || !db->views || !cb)
		return KP_ERR(err, KAPPA_EINVAL, "no database or callback");
	struct kp_views *vs = db->views;
	pthread_mutex_lock(&vs->lock);
	size_t n = vs->n;
	kappa_view_status *all = calloc(n ? n : 1, sizeof(*all));
	for (size_t i = 0; all && i < n; i++)
		kp_view_status(vs->v[i], &all[i]);
	pthread_mutex_unlock(&vs->lock);
	if (!all)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) /* sorted by name: views are loaded in file order */
		for (size_t k = i + 1; k < n; k++)
			if (strcmp(all[k].name, all[i].name) < 0) {
				kappa_view_status t = all[i];
				all[i] = all[k];
				all[k] = t;
			}
	for (size_t i = 0; i < n; i++)
		cb(ctx, &all[i]);
	free(all);
	return KAPPA_OK;
}

int
kappa_view_rebuild(kappa_db *db, const char *view, kappa_err *err)
{
	kp_view *v = kp_views_find(db, view);
	if (!v)
		return KP_ERR(err, KAPPA_ENOTFOUND, "no view named %s", view ? view : "(null)");
	kp_view_request_rebuild(v, NULL);
	return KAPPA_OK;
}
