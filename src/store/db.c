/*
 * db.c -- opening and closing a kappa database: the data directory layout, the log, and
 * the indexes with their trust rules (store.h, design note 3) and catch-up from the log.
 *
 *   DATA/log/     the log (src/log)
 *   DATA/node.key the node's Ed25519 key, which signs audit digests (audit.c)
 *   DATA/index/   LMDB indexes, plus "state": "open BOOT_ID" while open, "clean" after close
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "store/keys.h"
#include "store/store.h"

void
kappa_options_init(kappa_options *o)
{
	/* The log's own defaults, where they are defined once; then the store's. */
	kp_log_options lo;
	kp_log_options_init(&lo);
	memset(o, 0, sizeof(*o));
	o->fsync = (kappa_fsync)lo.fsync_mode;
	o->fsync_interval_ms = lo.fsync_interval_ms;
	o->segment_bytes = lo.segment_bytes;
	o->max_event_bytes = lo.limits.max_event_bytes;
	o->max_append_bytes = lo.limits.max_batch_bytes;
	o->dedup_window_ms = 7LL * 24 * 3600 * 1000;
	o->dedup_min_ids = 10000000;
	o->max_append_events = 10000; /* tighter than the log's per-batch limit */
	o->max_append_claims = 100;
	o->index_map_bytes = sizeof(size_t) >= 8 ? 64ull << 30 : 1u << 30;
	o->index_rss_bytes = 256u << 20;
}

#define notice(db, ...) kp_emit((db)->o.notice, (db)->o.notice_ctx, __VA_ARGS__)

static char *
path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

/* Find where the index file is mapped (LMDB does not say unless the map is fixed). */
static void
find_index_map(kappa_db *db, const char *ixdir)
{
	char *data = path_join(ixdir, "data.mdb");
	char real[4096], line[4600];
	FILE *f = NULL;
	if (!data || !realpath(data, real) || !(f = fopen("/proc/self/maps", "r")))
		goto out;
	size_t rl = strlen(real);
	while (fgets(line, sizeof(line), f)) {
		size_t ll = strcspn(line, "\n");
		line[ll] = '\0';
		unsigned long lo, hi;
		if (ll >= rl && !strcmp(line + ll - rl, real) &&
		    sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
			db->map_addr = (void *)lo;
			db->map_len = hi - lo;
			break;
		}
	}
out:
	if (f)
		fclose(f);
	free(data);
}

static void
boot_id(char *out, size_t n)
{
	snprintf(out, n, "unknown");
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	if (!f)
		return;
	if (fgets(out, (int)n, f))
		out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

/* Write the index state file durably (temp file, fsync, rename, fsync dir). */
static int
write_state(const char *ixdir, const char *content, kappa_err *err)
{
	char *path = path_join(ixdir, "state"), *tmp = path_join(ixdir, "state.tmp");
	int rc = KAPPA_OK;
	if (!path || !tmp) {
		rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		goto out;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t len = strlen(content);
	if (fd < 0 || write(fd, content, len) != (ssize_t)len || fsync(fd) < 0 || close(fd) < 0 ||
	    rename(tmp, path) < 0 || kp_io_fsync_dir(kp_io_posix(), ixdir) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		rc = KP_ERR_SYS(err, kp_err_from_errno(e), e, "cannot write %s", path);
	}
out:
	free(path);
	free(tmp);
	return rc;
}

/* Decide whether the index on disk can be trusted (1) or must be rebuilt (0). */
static int
index_trusted(kappa_db *db, const char *ixdir, const char *boot)
{
	char *data = path_join(ixdir, "data.mdb"), *state = path_join(ixdir, "state");
	struct stat st;
	int trusted = 0;
	const char *why = "no index yet";
	if (data && state && stat(data, &st) == 0) {
		char buf[128] = "";
		FILE *f = fopen(state, "r");
		if (f) {
			if (!fgets(buf, sizeof(buf), f))
				buf[0] = '\0';
			fclose(f);
		}
		buf[strcspn(buf, "\n")] = '\0';
		if (!strcmp(buf, "clean")) {
			trusted = 1;
		} else if (!strncmp(buf, "open ", 5) && !strcmp(buf + 5, boot) &&
			   strcmp(boot, "unknown") != 0) {
			trusted = 1; /* the process died, the machine did not: page cache intact */
		} else {
			why = buf[0] ? "it was open when the machine stopped"
				     : "its state is unknown";
			notice(db, "event=index_rebuild dir=%s reason=\"%s\"", ixdir, why);
			char *lock = path_join(ixdir, "lock.mdb");
			unlink(data);
			if (lock)
				unlink(lock);
			free(lock);
		}
	}
	free(data);
	free(state);
	return trusted;
}

/* One batch from the log, as read by an iterator positioned at its first event; 'a' is
 * scratch space for its attributes, reused from batch to batch. */
static int
apply_from_log(kappa_db *db, MDB_txn *txn, kp_index_counters *ctr, const kp_event *ev, kp_attrs *a,
	       kappa_err *err)
{
	int rc = kp_attrs_decode(ev->batch_attrs, a, err);
	if (rc == KAPPA_OK) {
		kp_apply_batch b = {ev->position, ev->time_ms, ev->batch_count,
				    ev->stream,	  ev->version, a};
		int m = kp_index_apply(&db->ix, txn, ctr, &b);
		if (m)
			rc = kp_store_mdb_err(err, m, "cannot index the log");
	}
	return rc;
}

static int
commit_counters(kappa_db *db, MDB_txn *txn, const kp_index_counters *ctr, kappa_err *err)
{
	int m = kp_index_save_counters(&db->ix, txn, ctr);
	if (m) {
		mdb_txn_abort(txn);
		return kp_store_mdb_err(err, m, "cannot save counters");
	}
	if ((m = mdb_txn_commit(txn)))
		return kp_store_mdb_err(err, m, "cannot commit");
	return KAPPA_OK;
}

/*
 * Apply the log from the index's position to the head, in transactions of 10,000 batches
 * (or everything from the first retained position when rebuilding). Leaves db->ctr and
 * db->index_pos matching what was committed.
 */
int
kp_store_catch_up(kappa_db *db, int rebuild, kappa_err *err)
{
	kp_index *ix = &db->ix;
	MDB_txn *txn;
	int m = mdb_txn_begin(ix->env, NULL, 0, &txn);
	if (m)
		return kp_store_mdb_err(err, m, "cannot begin");
	int rc = KAPPA_OK;
	kp_index_counters ctr;
	if ((m = kp_index_load_counters(ix, txn, &ctr))) {
		mdb_txn_abort(txn);
		return kp_store_mdb_err(err, m, "cannot read the counters");
	}
	uint64_t first = kp_log_first(db->log), head = kp_log_head(db->log);
	if (!rebuild && (ctr.position > head || ctr.position < first)) {
		notice(db,
		       "event=index_rebuild reason=\"index at position %" PRIu64
		       " is outside the log [%" PRIu64 ", %" PRIu64 ")\"",
		       ctr.position, first, head);
		rebuild = 1;
	}
	if (rebuild) {
		if ((rc = kp_index_clear(ix, txn, err))) {
			mdb_txn_abort(txn);
			return rc;
		}
		memset(&ctr, 0, sizeof(ctr));
		ctr.position = first;
	}
	uint64_t t0 = kp_mono_ns(), batches = 0, from = ctr.position;
	if (ctr.position < head) {
		kp_log_iter *it;
		kp_attrs *attrs = kp_attrs_new(KP_MAX_CLAIMS_DECODED);
		if (!attrs) {
			mdb_txn_abort(txn);
			return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		}
		if ((rc = kp_log_iter_open(db->log, ctr.position, &it, err))) {
			free(attrs);
			mdb_txn_abort(txn);
			return rc;
		}
		kp_event ev;
		int r, live = 1; /* 'txn' is open */
		while ((r = kp_log_iter_next(it, &ev, err)) == 1 && ev.position < head) {
			if (ev.subject.len &&
			    (m = kp_index_subject(ix, txn, ev.subject, ev.stream))) {
				rc = kp_store_mdb_err(err, m, "cannot index the log");
				break;
			}
			if (ev.batch_index != 0)
				continue;
			if ((rc = apply_from_log(db, txn, &ctr, &ev, attrs, err)))
				break;
			if (++batches % 10000 == 0) {
				live = 0;
				if ((rc = commit_counters(db, txn, &ctr, err)))
					break;
				if ((m = mdb_txn_begin(ix->env, NULL, 0, &txn))) {
					rc = kp_store_mdb_err(err, m, "cannot begin");
					break;
				}
				live = 1;
			}
		}
		kp_log_iter_close(it);
		free(attrs);
		if (r < 0 && rc == KAPPA_OK)
			rc = r;
		if (rc) {
			if (live)
				mdb_txn_abort(txn);
			return rc;
		}
	}
	if ((rc = commit_counters(db, txn, &ctr, err)))
		return rc;
	db->ctr = ctr;
	db->txn_pos = ctr.position;
	kp_store_index_published(db, ctr.position);
	if (batches)
		notice(db,
		       "event=index_caught_up from=%" PRIu64 " to=%" PRIu64 " batches=%" PRIu64
		       " seconds=%.3f rebuild=%d",
		       from, ctr.position, batches, (double)(kp_mono_ns() - t0) / 1e9, rebuild);
	return KAPPA_OK;
}

void
kp_store_index_published(kappa_db *db, uint64_t pos)
{
	pthread_mutex_lock(&db->index_lock);
	if (pos > atomic_load(&db->index_pos))
		atomic_store(&db->index_pos, pos);
	pthread_cond_broadcast(&db->index_cond);
	pthread_mutex_unlock(&db->index_lock);
}

int
kp_store_index_wait(kappa_db *db, kappa_err *err)
{
	uint64_t want = kp_log_head(db->log);
	if (atomic_load(&db->index_pos) >= want)
		return KAPPA_OK;
	pthread_mutex_lock(&db->index_lock);
	if (atomic_load(&db->index_wanted) < want)
		atomic_store(&db->index_wanted, want);
	uint64_t attempts = atomic_load(&db->index_attempts);
	pthread_mutex_unlock(&db->index_lock);
	kp_log_kick(db->log);
	int rc = KAPPA_OK;
	struct timespec dl = kp_deadline_ms(30000);
	pthread_mutex_lock(&db->index_lock);
	while (atomic_load(&db->index_pos) < want) {
		if (atomic_load(&db->index_failed)) {
			rc = KP_ERR(err, KAPPA_EFATAL, "the index failed (%s); reopen to recover",
				    db->index_err.msg);
			break;
		}
		if (atomic_load(&db->index_behind) &&
		    atomic_load(&db->index_attempts) != attempts) {
			rc = KP_ERR(err, KAPPA_ENOSPC,
				    "the index is behind the log and the disk is full");
			break;
		}
		if (pthread_cond_timedwait(&db->index_cond, &db->index_lock, &dl) == ETIMEDOUT) {
			rc = KP_ERR(err, KAPPA_ETIMEOUT, "the index did not catch up with the log");
			break;
		}
	}
	pthread_mutex_unlock(&db->index_lock);
	return rc;
}

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ok;

static void
sodium_start(void)
{
	sodium_ok = sodium_init() >= 0;
}

static int
check_options(const kappa_options *o, kappa_err *err)
{
	if (o->fsync > KAPPA_FSYNC_NEVER)
		return KP_ERR(err, KAPPA_EINVAL, "unknown fsync mode %d", (int)o->fsync);
	if (o->dedup_window_ms < 0)
		return KP_ERR(err, KAPPA_EINVAL, "the dedup window must not be negative");
	if (o->max_append_events < 1 || o->max_append_events > 100000)
		return KP_ERR(err, KAPPA_EINVAL, "events per append must be 1..100000");
	if (o->max_append_claims > KP_MAX_CLAIMS_DECODED)
		return KP_ERR(err, KAPPA_EINVAL, "claims per append must be at most %d",
			      KP_MAX_CLAIMS_DECODED);
	if (o->index_map_bytes < (1u << 20))
		return KP_ERR(err, KAPPA_EINVAL, "the index map must be at least 1 MiB");
	return KAPPA_OK;
}

int
kp_store_open(const char *dir, const kappa_options *options, kappa_db **out, kappa_err *err)
{
	return kp_store_open_io(dir, options, NULL, out, err);
}

int
kp_store_open_io(const char *dir, const kappa_options *options, const kp_store_io *sio,
		 kappa_db **out, kappa_err *err)
{
	if (out)
		*out = NULL;
	if (!out)
		return KP_ERR(err, KAPPA_EINVAL, "no place to return the database");
	if (!dir || !*dir)
		return KP_ERR(err, KAPPA_EINVAL, "no data directory given");
	pthread_once(&sodium_once, sodium_start);
	if (!sodium_ok)
		return KP_ERR(err, KAPPA_EIO, "libsodium failed to initialise");
	kappa_db *db = calloc(1, sizeof(*db));
	if (!db)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	pthread_mutex_init(&db->index_lock, NULL);
	pthread_mutex_init(&db->forget_lock, NULL);
	kp_cond_init_monotonic(&db->index_cond);
	if (options)
		db->o = *options;
	else
		kappa_options_init(&db->o);
	int rc = check_options(&db->o, err);
	char *logdir = NULL, *ixdir = NULL;
	if (rc)
		goto fail;
	db->dir = strdup(dir);
	logdir = path_join(dir, "log");
	ixdir = path_join(dir, "index");
	if (!db->dir || !logdir || !ixdir) {
		rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
		goto fail;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		rc = KP_ERR_SYS(err, kp_err_from_errno(errno), errno, "cannot create %s", dir);
		goto fail;
	}

	kp_log_options lo;
	kp_log_options_init(&lo);
	lo.fsync_mode = (kp_fsync_mode)db->o.fsync;
	lo.fsync_interval_ms = db->o.fsync_interval_ms;
	lo.segment_bytes = db->o.segment_bytes;
	lo.retention_ms = db->o.retention_ms;
	lo.retention_bytes = db->o.retention_bytes;
	lo.limits.max_event_bytes = db->o.max_event_bytes;
	lo.limits.max_batch_bytes = db->o.max_append_bytes;
	lo.limits.max_events = db->o.max_append_events;
	if (lo.max_group_bytes < lo.limits.max_batch_bytes)
		lo.max_group_bytes = lo.limits.max_batch_bytes;
	lo.notice = db->o.notice;
	lo.notice_ctx = db->o.notice_ctx;
	lo.group_commit = kp_store_group_commit;
	lo.group_abort = kp_store_group_abort;
	lo.idle = kp_store_idle;
	lo.hook_ctx = db;
	if (sio && sio->io)
		lo.io = sio->io;
	if (sio && sio->no_prealloc)
		lo.prealloc_bytes = 0;
	/* The key store first, which changes nothing when the master key is wrong; then the log,
	 * which takes the directory lock. */
	if ((rc = kp_keys_open(db->dir, db->o.master_key_file, sio ? sio->io : NULL, db->o.notice,
			       db->o.notice_ctx, &db->keys, err)))
		goto fail;
	if ((rc = kp_log_open(logdir, &lo, &db->log, err)) || (rc = kp_audit_load_key(db, err)))
		goto fail;

	char boot[64];
	boot_id(boot, sizeof(boot));
	if (mkdir(ixdir, 0755) < 0 && errno != EEXIST) {
		rc = KP_ERR_SYS(err, kp_err_from_errno(errno), errno, "cannot create %s", ixdir);
		goto fail;
	}
	int trusted = index_trusted(db, ixdir, boot);
	rc = kp_index_open(&db->ix, ixdir, db->o.index_map_bytes, err);
	db->ix.claim_secret = kp_keys_claim_secret(db->keys);
	if (rc == KAPPA_ECORRUPT) {
		notice(db, "event=index_rebuild dir=%s reason=\"%s\"", ixdir, err ? err->msg : "");
		char *data = path_join(ixdir, "data.mdb"), *lock = path_join(ixdir, "lock.mdb");
		if (data)
			unlink(data);
		if (lock)
			unlink(lock);
		free(data);
		free(lock);
		trusted = 0;
		rc = kp_index_open(&db->ix, ixdir, db->o.index_map_bytes, err);
		db->ix.claim_secret = kp_keys_claim_secret(db->keys);
	}
	if (rc)
		goto fail;
	int dead;
	mdb_reader_check(db->ix.env, &dead);
	find_index_map(db, ixdir);
	char state[80];
	snprintf(state, sizeof(state), "open %s\n", boot);
	if ((rc = write_state(ixdir, state, err)))
		goto fail;
	if ((rc = kp_store_catch_up(db, !trusted, err)))
		goto fail;
	db->last_commit_ns = kp_mono_ns();
	free(logdir);
	free(ixdir);
	*out = db;
	return KAPPA_OK;
fail:
	free(logdir);
	free(ixdir);
	kp_store_close(db);
	return rc;
}

void
kp_store_close(kappa_db *db)
{
	if (!db)
		return;
	/* The log drains its queue and runs the last group hook before it returns. */
	kp_log_close(db->log);
	db->log = NULL;
	if (db->wtxn)
		mdb_txn_abort(db->wtxn);
	db->wtxn = NULL;
	if (db->ix.env) {
		int clean = !atomic_load(&db->index_failed) && mdb_env_sync(db->ix.env, 1) == 0;
		char *ixdir = db->ix.dir ? strdup(db->ix.dir) : NULL;
		kp_index_close(&db->ix);
		if (clean && ixdir)
			write_state(ixdir, "clean\n", NULL);
		free(ixdir);
	}
	kp_keys_close(db->keys);
	pthread_mutex_destroy(&db->index_lock);
	pthread_mutex_destroy(&db->forget_lock);
	pthread_cond_destroy(&db->index_cond);
	sodium_memzero(db->node_sk, sizeof(db->node_sk));
	free(db->dir);
	free(db);
}

void
kappa_stats_get(kappa_db *db, kappa_stats *st)
{
	kp_log_stats ls;
	kp_log_get_stats(db->log, &ls);
	memset(st, 0, sizeof(*st));
	st->head = ls.head;
	st->first_position = ls.first_pos;
	st->appends = ls.appends;
	st->events = ls.events;
	st->bytes = ls.bytes;
	st->group_commits = ls.groups;
	st->syncs = ls.syncs;
	st->sync_seconds = (double)ls.sync_ns_total / 1e9;
	st->segments = ls.segments;
	st->disk_bytes = ls.disk_bytes;
	st->index_position = atomic_load(&db->index_pos);
	for (size_t i = 0; i < KAPPA_STATS_BUCKETS; i++) {
		int last = i == KAPPA_STATS_BUCKETS - 1;
		st->sync_le_seconds[i] = last ? INFINITY : (double)kp_log_sync_bucket_ns[i] / 1e9;
		st->group_le_appends[i] = last ? INFINITY : (double)kp_log_group_bucket[i];
		st->sync_count[i] = ls.sync_buckets[i];
		st->group_count[i] = ls.group_buckets[i];
	}
}

uint64_t
kappa_head(kappa_db *db)
{
	return db ? kp_log_head(db->log) : 0;
}

int
kappa_wait_position(kappa_db *db, uint64_t position, int64_t timeout_ms)
{
	return db ? kp_log_wait(db->log, position, timeout_ms) : KAPPA_EINVAL;
}
