/*
 * test_subjects.c -- crypto-shredding: data of an event with a subject is sealed at rest
 * and read back in clear on every path; forgetting destroys the key (subject A never
 * affects subject B), is idempotent, survives reopen, refuses the id afterwards and releases
 * the subject's claims; ciphertexts are bound to their event; claim keys never reach a file;
 * a wrong master key changes nothing; views run @forget, a rebuild after a forget equals the
 * live view, and the social example leaves no residue of a forgotten user anywhere under
 * DATA (log, index, keys, views, WAL): neither a marker string nor the key's bytes.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kappa.h"
#include "log/log.h"
#include "store/keys.h"
#include "store/store.h"
#include "testlib.h"

TestSuite(subjects, .timeout = 180);

static kappa_db *
open_with(const char *dir, const char *views, const char *master, kappa_err *err, int *rc)
{
	kappa_options o;
	kappa_options_init(&o);
	o.views_dir = views;
	o.master_key_file = master;
	kappa_db *db = NULL;
	*rc = kappa_open(dir, &o, &db, err);
	return db;
}

static kappa_db *
open_db(const char *dir, const char *views)
{
	kappa_err err;
	int rc;
	kappa_db *db = open_with(dir, views, NULL, &err, &rc);
	cr_assert_eq(rc, KAPPA_OK, "open %s: %s", dir, err.msg);
	return db;
}

static kappa_append_result
add(kappa_db *db, const char *stream, const char *type, const char *subject, const char *data)
{
	kappa_event_in e = {.type = type, .data = data, .subject = subject};
	kappa_append_result r;
	kappa_err err;
	int rc = kappa_append(db, stream, KAPPA_ANY, NULL, &e, 1, NULL, 0, &r, &err);
	cr_assert_eq(rc, KAPPA_OK, "append to %s: %s", stream, err.msg);
	return r;
}

/* Count occurrences of 'needle' in every file under 'dir' (recursively). */
static size_t
hits_under(const char *dir, const void *needle, size_t len, char *where, size_t wlen)
{
	size_t hits = 0;
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		struct stat st;
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			hits += hits_under(path, needle, len, where, wlen);
			continue;
		}
		if (!S_ISREG(st.st_mode) || st.st_size == 0)
			continue;
		FILE *f = fopen(path, "rb");
		cr_assert(f, "cannot read %s", path);
		char *buf = malloc((size_t)st.st_size);
		cr_assert(buf);
		size_t n = fread(buf, 1, (size_t)st.st_size, f);
		fclose(f);
		for (const char *p = buf; (p = memmem(p, n - (size_t)(p - buf), needle, len));
		     p++) {
			hits++;
			if (where && !where[0])
				snprintf(where, wlen, "%s at %zu", path, (size_t)(p - buf));
		}
		free(buf);
	}
	closedir(d);
	return hits;
}

static size_t
marker_hits(const char *dir, const char *marker, char *where, size_t wlen)
{
	if (where)
		where[0] = '\0';
	return hits_under(dir, marker, strlen(marker), where, wlen);
}

/* Read one event by stream and version. */
static kappa_event
read_one(kappa_db *db, const char *stream, uint64_t version, kappa_iter **it)
{
	kappa_err err;
	cr_assert_eq(kappa_read_stream(db, stream, version, 1, KAPPA_FORWARD, it, &err), KAPPA_OK);
	kappa_event e;
	cr_assert_eq(kappa_iter_next(*it, &e, &err), 1, "%s@%" PRIu64 ": %s", stream, version,
		     err.msg);
	return e;
}

Test(subjects, data_is_sealed_at_rest_and_read_in_clear)
{
	char *dir = kt_tmpdir("subj-seal");
	kappa_db *db = open_db(dir, NULL);
	add(db, "user-1", "Registered", "u1", "{\"name\":\"MARKER-ALICE-7f3a\"}");
	add(db, "note-1", "Noted", NULL, "{\"text\":\"MARKER-CLEAR-19b2\"}");
	kappa_event_in m = {.type = "Tagged",
			    .data = "{\"x\":1}",
			    .subject = "u1",
			    .metadata = "{\"ip\":\"MARKER-META-55c1\"}",
			    .seal_metadata = 1};
	kappa_err err;
	cr_assert_eq(kappa_append(db, "user-1", KAPPA_ANY, NULL, &m, 1, NULL, 0, NULL, &err),
		     KAPPA_OK, "%s", err.msg);

	kappa_iter *it;
	kappa_event e = read_one(db, "user-1", 0, &it);
	cr_assert_eq(e.forgotten, 0);
	cr_assert_eq(e.data_len, strlen("{\"name\":\"MARKER-ALICE-7f3a\"}"));
	cr_assert(!memcmp(e.data, "{\"name\":\"MARKER-ALICE-7f3a\"}", e.data_len));
	cr_assert(kt_streq_null(kt_dupn(e.subject, e.subject_len), "u1"));
	kappa_iter_free(it);
	e = read_one(db, "user-1", 1, &it);
	cr_assert_eq(e.metadata_len, strlen("{\"ip\":\"MARKER-META-55c1\"}"));
	cr_assert(!memcmp(e.metadata, "{\"ip\":\"MARKER-META-55c1\"}", e.metadata_len));
	kappa_iter_free(it);

	/* the log, index and keys hold no plaintext of sealed fields; clear data is there */
	char logdir[4096], where[4200];
	snprintf(logdir, sizeof(logdir), "%s/log", dir);
	cr_assert_eq(marker_hits(dir, "MARKER-ALICE-7f3a", where, sizeof(where)), 0, "found in %s",
		     where);
	cr_assert_eq(marker_hits(dir, "MARKER-META-55c1", where, sizeof(where)), 0, "found in %s",
		     where);
	cr_assert_gt(marker_hits(logdir, "MARKER-CLEAR-19b2", NULL, 0), 0,
		     "the scan does not see clear data");

	/* the same through a subscription, and after reopen */
	kappa_close(db);
	db = open_db(dir, NULL);
	kappa_sub *sub;
	cr_assert_eq(kappa_subscribe(db, 0, &sub, &err), KAPPA_OK);
	cr_assert_eq(kappa_sub_next(sub, &e, 1000, &err), 1);
	cr_assert(!memcmp(e.data, "{\"name\":\"MARKER-ALICE-7f3a\"}", e.data_len));
	kappa_sub_free(sub);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(subjects, forget_is_per_subject_idempotent_durable_and_final)
{
	char *dir = kt_tmpdir("subj-forget");
	kappa_db *db = open_db(dir, NULL);
	add(db, "user-a", "Registered", "a", "{\"name\":\"Ann\"}");
	add(db, "user-b", "Registered", "b", "{\"name\":\"Bob\"}");
	add(db, "user-a", "Renamed", "a", "{\"name\":\"Anna\"}");
	kappa_forget_result fr, fr2;
	kappa_err err;
	cr_assert_eq(kappa_forget(db, "nobody", &fr, &err), KAPPA_ENOTFOUND);
	cr_assert_eq(kappa_forget(db, "a", &fr, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(fr.already, 0);
	cr_assert_eq(fr.position, 3, "the forget record follows the three events");
	cr_assert_eq(kappa_subject_state(db, "a"), 2);
	cr_assert_eq(kappa_subject_state(db, "b"), 1);

	kappa_iter *it;
	kappa_event e = read_one(db, "user-a", 1, &it);
	cr_assert_eq(e.forgotten, 1);
	cr_assert_null(e.data);
	cr_assert_eq(e.subject_len, 1, "the subject id stays readable");
	kappa_iter_free(it);
	e = read_one(db, "user-b", 0, &it);
	cr_assert_eq(e.forgotten, 0);
	cr_assert(!memcmp(e.data, "{\"name\":\"Bob\"}", e.data_len));
	kappa_iter_free(it);
	e = read_one(db, KAPPA_FORGOTTEN_STREAM, 0, &it);
	cr_assert(!memcmp(e.type, KAPPA_FORGOTTEN_TYPE, e.type_len));
	cr_assert(!memcmp(e.data, "{\"subject\":\"a\"}", e.data_len));
	kappa_iter_free(it);

	/* idempotent: the same answer, no new record */
	cr_assert_eq(kappa_forget(db, "a", &fr2, &err), KAPPA_OK);
	cr_assert_eq(fr2.already, 1);
	cr_assert_eq(fr2.position, fr.position);
	cr_assert_eq(kappa_head(db), 4);
	/* the id cannot come back, and nobody may write kappa's own records */
	kappa_event_in again = {.type = "Registered", .data = "{}", .subject = "a"};
	cr_assert_eq(kappa_append(db, "user-a2", KAPPA_ANY, NULL, &again, 1, NULL, 0, NULL, &err),
		     KAPPA_EFORGOTTEN);
	kappa_event_in fake = {.type = KAPPA_FORGOTTEN_TYPE, .data = "{\"subject\":\"b\"}"};
	cr_assert_eq(kappa_append(db, KAPPA_FORGOTTEN_STREAM, KAPPA_ANY, NULL, &fake, 1, NULL, 0,
				  NULL, &err),
		     KAPPA_EINVAL);

	/* durable: reopen, still forgotten, same answer */
	kappa_close(db);
	db = open_db(dir, NULL);
	e = read_one(db, "user-a", 0, &it);
	cr_assert_eq(e.forgotten, 1);
	kappa_iter_free(it);
	cr_assert_eq(kappa_forget(db, "a", &fr2, &err), KAPPA_OK);
	cr_assert_eq(fr2.position, fr.position);
	e = read_one(db, "user-b", 0, &it);
	cr_assert_eq(e.forgotten, 0);
	kappa_iter_free(it);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(subjects, identifying_subjects_are_refused_unless_allowed)
{
	char *dir = kt_tmpdir("subj-email");
	kappa_db *db = open_db(dir, NULL);
	kappa_event_in e = {.type = "T", .data = "{}", .subject = "alice@example.com"};
	kappa_err err;
	cr_assert_eq(kappa_append(db, "s", KAPPA_ANY, NULL, &e, 1, NULL, 0, NULL, &err),
		     KAPPA_EINVAL);
	cr_assert(strstr(err.msg, "e-mail"), "%s", err.msg);
	cr_assert_eq(kappa_head(db), 0);
	kappa_close(db);
	kappa_options o;
	kappa_options_init(&o);
	o.allow_identifying_subject = 1;
	cr_assert_eq(kappa_open(dir, &o, &db, &err), KAPPA_OK);
	cr_assert_eq(kappa_append(db, "s", KAPPA_ANY, NULL, &e, 1, NULL, 0, NULL, &err), KAPPA_OK,
		     "%s", err.msg);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(subjects, claim_keys_never_reach_a_file_and_forget_releases_them)
{
	char *dir = kt_tmpdir("subj-claims");
	kappa_db *db = open_db(dir, NULL);
	kappa_event_in e = {.type = "Registered", .data = "{}", .subject = "u9"};
	kappa_claim c = {"email:carol-4d1e@example.org", 0};
	kappa_err err;
	cr_assert_eq(kappa_append(db, "user-9", KAPPA_NO_STREAM, NULL, &e, 1, &c, 1, NULL, &err),
		     KAPPA_OK, "%s", err.msg);
	kappa_event_in e2 = {.type = "Registered", .data = "{}"};
	kappa_append_result r;
	cr_assert_eq(kappa_append(db, "user-10", KAPPA_NO_STREAM, NULL, &e2, 1, &c, 1, &r, &err),
		     KAPPA_ECLAIM_TAKEN);
	cr_assert_str_eq(r.claim_key, c.key);
	cr_assert_str_eq(r.claim_holder, "user-9");
	kappa_close(db); /* the index is written out */
	char where[4200];
	cr_assert_eq(marker_hits(dir, "carol-4d1e", where, sizeof(where)), 0, "found in %s", where);

	db = open_db(dir, NULL);
	kappa_forget_result fr;
	cr_assert_eq(kappa_forget(db, "u9", &fr, &err), KAPPA_OK, "%s", err.msg);
	kappa_stream_info in;
	cr_assert_eq(kappa_stream_info_get(db, "user-9", &in, &err), KAPPA_OK);
	cr_assert_eq(in.claims_held, 0, "the forgotten subject's stream released its claims");
	cr_assert_eq(kappa_append(db, "user-10", KAPPA_NO_STREAM, NULL, &e2, 1, &c, 1, &r, &err),
		     KAPPA_OK, "%s", err.msg);
	/* a rebuilt index agrees: remove it and reopen */
	kappa_close(db);
	char ix[4200];
	snprintf(ix, sizeof(ix), "%s/index", dir);
	kt_rm_rf(ix);
	db = open_db(dir, NULL);
	cr_assert_eq(kappa_stream_info_get(db, "user-10", &in, &err), KAPPA_OK);
	cr_assert_eq(in.claims_held, 1);
	cr_assert_eq(kappa_stream_info_get(db, "user-9", &in, &err), KAPPA_OK);
	cr_assert_eq(in.claims_held, 0);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(subjects, a_ciphertext_only_opens_in_its_own_event)
{
	char *dir = kt_tmpdir("subj-ad");
	kappa_db *db = open_db(dir, NULL);
	add(db, "user-1", "Registered", "u1", "{\"name\":\"Zed\"}");
	kp_log_iter *li;
	kappa_err err;
	cr_assert_eq(kp_log_iter_open(db->log, 0, &li, &err), KAPPA_OK);
	kp_event ev;
	cr_assert_eq(kp_log_iter_next(li, &ev, &err), 1);
	cr_assert(ev.flags & KP_EV_SEALED_DATA);
	kp_buf plain = KP_BUF_INIT;
	int forgotten;
	kp_event ok = ev;
	cr_assert_eq(kp_store_unseal(db, &ok, &plain, &forgotten, &err), KAPPA_OK, "%s", err.msg);
	/* the same bytes claimed by another version, stream or type do not open */
	kp_event moved = ev;
	moved.version = 5;
	cr_assert_eq(kp_store_unseal(db, &moved, &plain, &forgotten, &err), KAPPA_ECORRUPT);
	moved = ev;
	moved.stream = (kp_bytes){(const uint8_t *)"user-2", 6};
	cr_assert_eq(kp_store_unseal(db, &moved, &plain, &forgotten, &err), KAPPA_ECORRUPT);
	moved = ev;
	moved.type = (kp_bytes){(const uint8_t *)"Renamed", 7};
	cr_assert_eq(kp_store_unseal(db, &moved, &plain, &forgotten, &err), KAPPA_ECORRUPT);
	kp_buf_release(&plain);
	kp_log_iter_close(li);
	kappa_close(db);
	kt_rmdir(dir);
}

Test(subjects, a_wrong_master_key_fails_the_open_and_changes_nothing)
{
	char *dir = kt_tmpdir("subj-master");
	char master[4200], other[4200], keys[4200];
	snprintf(master, sizeof(master), "%s.master", dir);
	snprintf(other, sizeof(other), "%s.other", dir);
	snprintf(keys, sizeof(keys), "%s/keys/subjects.keys", dir);
	kappa_err err;
	int rc;
	kappa_db *db = open_with(dir, NULL, master, &err, &rc);
	cr_assert_eq(rc, KAPPA_OK, "%s", err.msg);
	struct stat st;
	cr_assert_eq(stat(master, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "the master key file is created 0600");
	add(db, "user-1", "Registered", "u1", "{\"n\":1}");
	kappa_close(db);
	uint64_t keys_size = kt_file_size(keys);

	/* another (valid) master key: refused with a clear error */
	int fd = open(other, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert(write(fd, "0123456789abcdef0123456789abcdef", 32) == 32);
	close(fd);
	db = open_with(dir, NULL, other, &err, &rc);
	cr_assert_eq(rc, KAPPA_EKEY, "%s", kappa_strerror(rc));
	cr_assert(strstr(err.msg, "master key"), "%s", err.msg);
	cr_assert_null(db);
	cr_assert_eq(kt_file_size(keys), keys_size);
	/* a missing one is not silently replaced */
	char missing[4300];
	snprintf(missing, sizeof(missing), "%s.missing", dir);
	db = open_with(dir, NULL, missing, &err, &rc);
	cr_assert_eq(rc, KAPPA_EKEY, "%s", err.msg);
	cr_assert_neq(access(missing, F_OK), 0);
	/* one readable by others is refused */
	chmod(master, 0644);
	db = open_with(dir, NULL, master, &err, &rc);
	cr_assert_eq(rc, KAPPA_EKEY, "%s", err.msg);
	chmod(master, 0600);
	/* the right one still opens everything */
	db = open_with(dir, NULL, master, &err, &rc);
	cr_assert_eq(rc, KAPPA_OK, "%s", err.msg);
	kappa_iter *it;
	kappa_event e = read_one(db, "user-1", 0, &it);
	cr_assert_eq(e.forgotten, 0);
	cr_assert(!memcmp(e.data, "{\"n\":1}", e.data_len));
	kappa_iter_free(it);
	kappa_close(db);
	unlink(master);
	unlink(other);
	kt_rmdir(dir);
}

/* A view with @forget: rows go at the forget, and a rebuild afterwards equals the live view. */
static const char *notes_view = "-- @view notes\n"
				"CREATE TABLE notes (who TEXT, body TEXT);\n"
				"CREATE TABLE counts (n INTEGER);\n"
				"INSERT INTO counts VALUES (0);\n"
				"-- @on Noted\n"
				"INSERT INTO notes VALUES (:subject, :data->>'$.body');\n"
				"-- @forget\n"
				"DELETE FROM notes WHERE who = :subject;\n"
				"-- @export\n"
				"SELECT body FROM notes WHERE who = :subject;\n"
				"-- @query all()\n"
				"SELECT who, body FROM notes ORDER BY who, body;\n";

static char *
query_all(kappa_db *db)
{
	char *out = NULL;
	kappa_err err;
	int rc = kappa_query(db, "notes", "all", NULL, kappa_head(db) - 1, 5000, &out, &err);
	cr_assert_eq(rc, KAPPA_OK, "%s", err.msg);
	char *pos = strstr(out, ",\"position\"");
	if (pos)
		*pos = '\0'; /* compare rows only */
	return out;
}

static int
count_event(void *ctx, const kappa_event *e)
{
	(void)e;
	++*(int *)ctx;
	return 0;
}

static int
count_row(void *ctx, const char *view, const char *row, size_t len)
{
	(void)view;
	(void)row;
	(void)len;
	*(int *)ctx += 100;
	return 0;
}

Test(subjects, views_forget_and_a_rebuild_after_it_equals_the_live_view)
{
	char *dir = kt_tmpdir("subj-views");
	char vdir[4200];
	snprintf(vdir, sizeof(vdir), "%s-views", dir);
	mkdir(vdir, 0755);
	char vf[4300];
	snprintf(vf, sizeof(vf), "%s/notes.sql", vdir);
	FILE *f = fopen(vf, "w");
	fputs(notes_view, f);
	fclose(f);
	kappa_db *db = open_db(dir, vdir);
	add(db, "n-1", "Noted", "x", "{\"body\":\"VIEWMARK-x1-c0de\"}");
	add(db, "n-2", "Noted", "y", "{\"body\":\"y1\"}");
	add(db, "n-1", "Noted", "x", "{\"body\":\"VIEWMARK-x2-c0de\"}");
	char *before = query_all(db);
	cr_assert(strstr(before, "VIEWMARK-x1"), "%s", before);
	cr_assert_gt(marker_hits(dir, "VIEWMARK", NULL, 0), 0, "the scan sees the view's rows");
	int n = 0;
	kappa_err err;
	cr_assert_eq(kappa_export(db, "x", count_event, count_row, &n, &err), KAPPA_OK, "%s",
		     err.msg);
	cr_assert_eq(n, 2 + 200, "two events and two rows exported (%d)", n);

	kappa_forget_result fr;
	cr_assert_eq(kappa_forget(db, "x", &fr, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(kappa_view_wait(db, "notes", fr.position, 5000, &err), KAPPA_OK, "%s",
		     err.msg);
	char *live = query_all(db);
	cr_assert_null(strstr(live, "VIEWMARK"), "%s", live);
	cr_assert(strstr(live, "y1"), "%s", live);
	n = 0;
	cr_assert_eq(kappa_export(db, "x", count_event, count_row, &n, &err), KAPPA_OK);
	cr_assert_eq(n, 2, "after the forget: the events (forgotten), no rows (%d)", n);

	/* no residue in the view's files (database and WAL) once settled */
	char where[4200];
	size_t hits = 1;
	for (int i = 0; i < 100 && hits; i++) {
		kt_sleep_ms(50);
		hits = marker_hits(dir, "VIEWMARK", where, sizeof(where));
	}
	cr_assert_eq(hits, 0, "found in %s", where);

	/* rebuild: the same rows */
	kappa_close(db);
	char vdb[4300];
	snprintf(vdb, sizeof(vdb), "%s/views", dir);
	kt_rm_rf(vdb);
	db = open_db(dir, vdir);
	cr_assert_eq(kappa_view_wait(db, "notes", fr.position, 5000, &err), KAPPA_OK, "%s",
		     err.msg);
	char *rebuilt = query_all(db);
	cr_assert_str_eq(rebuilt, live);
	free(before);
	free(live);
	free(rebuilt);
	kappa_close(db);
	kt_rm_rf(vdir);
	kt_rmdir(dir);
}

/* The social example: a user whose name and posts carry a marker, projected by every
 * view, then forgotten: no file under DATA holds the marker or the user's key. */
Test(subjects, the_social_example_forgets_a_user_without_residue)
{
	char *dir = kt_tmpdir("subj-social");
	kappa_db *db = open_db(dir, "examples/social/views");
	const char *mark = "RESIDUE-zxqjw";
	char data[512];
	snprintf(data, sizeof(data),
		 "{\"user_id\":\"77\",\"username\":\"zoe77\",\"name\":\"Zoe %s\",\"bio\":\"b\"}",
		 mark);
	add(db, "user-77", "UserRegistered", "77", data);
	add(db, "user-5", "UserRegistered", "5",
	    "{\"user_id\":\"5\",\"username\":\"fred\",\"name\":\"Fred\"}");
	add(db, "user-5", "UserFollowed", "5", "{\"follower\":\"5\",\"followee\":\"77\"}");
	for (int i = 0; i < 3; i++) {
		char stream[32];
		snprintf(stream, sizeof(stream), "post-p77-%d", i);
		snprintf(data, sizeof(data),
			 "{\"post_id\":\"p77-%d\",\"author\":\"77\",\"body\":\"hello %s word%d\"}",
			 i, mark, i);
		add(db, stream, "PostCreated", "77", data);
	}
	add(db, "post-p77-0", "CommentAdded", "5",
	    "{\"comment_id\":\"c1\",\"post_id\":\"p77-0\",\"author\":\"5\",\"body\":\"nice\"}");
	kappa_err err;
	const char *views[] = {"social", "search", "analytics", "audit"};
	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(kappa_view_wait(db, views[i], kappa_head(db) - 1, 10000, &err),
			     KAPPA_OK, "%s: %s", views[i], err.msg);
	char *out = NULL;
	cr_assert_eq(kappa_sql(db, "social", "SELECT name FROM users WHERE id = '77'", NULL, 0,
			       2000, &out, &err),
		     KAPPA_OK, "%s", err.msg);
	cr_assert(strstr(out, mark), "the view projected the user: %s", out);
	free(out);
	uint8_t key[KP_KEY_BYTES];
	cr_assert_eq(kp_keys_lookup(db->keys, (kp_bytes){(const uint8_t *)"77", 2}, key),
		     KP_SUBJECT_LIVE);

	cr_assert_gt(marker_hits(dir, mark, NULL, 0), 0, "the scan sees the views' plaintext");
	cr_assert_gt(marker_hits(dir, "zxqjw", NULL, 0), 0, "the scan sees the search tokens");

	kappa_forget_result fr;
	cr_assert_eq(kappa_forget(db, "77", &fr, &err), KAPPA_OK, "%s", err.msg);
	for (size_t i = 0; i < 4; i++)
		cr_assert_eq(kappa_view_wait(db, views[i], fr.position, 10000, &err), KAPPA_OK,
			     "%s: %s", views[i], err.msg);
	char where[4200];
	size_t hits = 1, khits = 1;
	for (int i = 0; i < 100 && (hits || khits); i++) {
		kt_sleep_ms(50);
		hits = marker_hits(dir, mark, where, sizeof(where));
		if (!hits) /* full-text indexes keep tokens, lower-cased */
			hits = marker_hits(dir, "zxqjw", where, sizeof(where));
		khits = hits_under(dir, key, sizeof(key), NULL, 0);
	}
	cr_assert_eq(hits, 0, "the marker survives in %s", where);
	cr_assert_eq(khits, 0, "the key's bytes survive");
	kappa_close(db);
	/* ... and after a clean close too */
	cr_assert_eq(marker_hits(dir, mark, where, sizeof(where)), 0, "found in %s", where);
	kt_rmdir(dir);
}

/* Appends for a subject race its forget: each acknowledged event reads back either whole
 * (appended before) or forgotten, never damaged; afterwards every one reads forgotten and
 * new appends for the subject are refused. */
typedef struct racer {
	kappa_db *db;
	int id;
	int ok, refused, other;
} racer;

static void *
race_appends(void *arg)
{
	racer *r = arg;
	char stream[32];
	snprintf(stream, sizeof(stream), "racer-%d", r->id);
	for (int i = 0; i < 400; i++) {
		char data[64];
		snprintf(data, sizeof(data), "{\"i\":%d}", i);
		kappa_event_in e = {.type = "Tick", .data = data, .subject = "racy"};
		kappa_err err;
		int rc = kappa_append(r->db, stream, KAPPA_ANY, NULL, &e, 1, NULL, 0, NULL, &err);
		if (rc == KAPPA_OK)
			r->ok++;
		else if (rc == KAPPA_EFORGOTTEN)
			r->refused++;
		else
			r->other++; /* asserted by the test's own thread */
	}
	return NULL;
}

Test(subjects, a_forget_racing_appends_leaves_every_event_whole_or_forgotten)
{
	char *dir = kt_tmpdir("subj-race");
	kappa_db *db = open_db(dir, NULL);
	add(db, "racer-0", "Tick", "racy", "{\"i\":-1}");
	racer r[3];
	pthread_t t[3];
	for (int i = 0; i < 3; i++) {
		r[i] = (racer){db, i, 0, 0, 0};
		pthread_create(&t[i], NULL, race_appends, &r[i]);
	}
	kt_sleep_ms(20);
	kappa_forget_result fr;
	kappa_err err;
	cr_assert_eq(kappa_forget(db, "racy", &fr, &err), KAPPA_OK, "%s", err.msg);
	int ok = 1, refused = 0;
	for (int i = 0; i < 3; i++) {
		pthread_join(t[i], NULL);
		ok += r[i].ok;
		refused += r[i].refused;
		cr_assert_eq(r[i].other, 0, "appends failed otherwise than refused");
	}
	cr_assert_gt(refused, 0, "appends after the forget are refused");
	/* every acknowledged event is there, and all of them read forgotten now */
	kappa_iter *it;
	cr_assert_eq(kappa_read_log(db, 0, UINT64_MAX, &it, &err), KAPPA_OK);
	kappa_event e;
	int seen = 0, r2;
	while ((r2 = kappa_iter_next(it, &e, &err)) == 1) {
		if (e.subject_len != 4)
			continue;
		seen++;
		cr_assert_eq(e.forgotten, 1, "position %" PRIu64 " is still readable", e.position);
	}
	cr_assert_eq(r2, 0, "reading the log: %s", err.msg);
	kappa_iter_free(it);
	cr_assert_eq(seen, ok, "%d acknowledged, %d in the log", ok, seen);
	kappa_close(db);
	kt_rmdir(dir);
}

/* A crash after the key was destroyed but before the forget was recorded: the subject
 * reads forgotten at once, and forgetting again writes the record. */
Test(subjects, a_forget_cut_short_completes_when_retried)
{
	char *dir = kt_tmpdir("subj-cut");
	kappa_db *db = open_db(dir, NULL);
	add(db, "user-1", "Registered", "cut", "{\"n\":1}");
	int state;
	uint64_t pos;
	kappa_err err;
	cr_assert_eq(
		kp_keys_forget(db->keys, (kp_bytes){(const uint8_t *)"cut", 3}, &state, &pos, &err),
		KAPPA_OK);
	kappa_close(db); /* as if the process died here: no $subject_forgotten yet */
	db = open_db(dir, NULL);
	cr_assert_eq(kappa_head(db), 1);
	kappa_iter *it;
	kappa_event e = read_one(db, "user-1", 0, &it);
	cr_assert_eq(e.forgotten, 1);
	kappa_iter_free(it);
	kappa_forget_result fr;
	cr_assert_eq(kappa_forget(db, "cut", &fr, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_eq(fr.position, 1, "the retry writes the record");
	cr_assert_eq(kappa_head(db), 2);
	cr_assert_eq(kappa_forget(db, "cut", &fr, &err), KAPPA_OK);
	cr_assert_eq(fr.position, 1);
	cr_assert_eq(fr.already, 1);
	cr_assert_eq(kappa_head(db), 2);
	kappa_close(db);
	kt_rmdir(dir);
}

/* A torn slot write (the CRC does not match) reads as a forgotten subject, never as a key;
 * a torn last slot (created, never synced, never used) is dropped. */
Test(subjects, damaged_key_slots_fail_safe)
{
	char *dir = kt_tmpdir("subj-torn");
	kappa_db *db = open_db(dir, NULL);
	add(db, "a", "T", "sa", "{\"n\":1}");
	add(db, "b", "T", "sb", "{\"n\":2}");
	kappa_close(db);
	char keys[4200];
	snprintf(keys, sizeof(keys), "%s/keys/subjects.keys", dir);
	cr_assert_eq(kt_file_size(keys), 3 * 512);
	kt_flip_byte(keys, 512 + 100);	  /* slot 0: sa */
	kt_truncate(keys, 3 * 512 - 100); /* slot 1 (sb, the last) cut short */
	db = open_db(dir, NULL);
	cr_assert_eq(kappa_subject_state(db, "sa"), 2, "a damaged slot reads as forgotten");
	cr_assert_eq(kappa_subject_state(db, "sb"), 0, "a cut last slot is dropped");
	kappa_iter *it;
	kappa_event e = read_one(db, "a", 0, &it);
	cr_assert_eq(e.forgotten, 1);
	kappa_iter_free(it);
	kappa_close(db);
	cr_assert_eq(kt_file_size(keys), 2 * 512, "the cut slot is truncated away");
	kt_rmdir(dir);
}
