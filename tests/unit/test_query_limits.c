/*
 * test_query_limits.c -- what a query may make the server hold: no string or blob over
 * KP_VIEW_MAX_ANSWER on the read connections, no answer over it (ad-hoc SQL is cut off and
 * says "truncated", a named query fails with KAPPA_ETOOBIG), and text that is not valid
 * UTF-8 answered with U+FFFD instead of a missing column. Found by the bad-input matrix
 * (tests/scripts/server_matrix.py): SELECT zeroblob(1000000000) took 1.3 GB.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kappa.h"
#include "testlib.h"
#include "view/view.h"

TestSuite(query_limits, .timeout = 120);

static const char BIG_SQL[] =
	"-- @view big\n"
	"CREATE TABLE t (x INTEGER);\n"
	"-- @on T\n"
	"INSERT INTO t VALUES (1);\n"
	"-- @query blobs(n)\n"
	"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n)\n"
	"SELECT zeroblob(100000) AS b FROM c;\n";

static kappa_db *
open_big(char **tmp)
{
	char views[KT_PATH], data[KT_PATH];
	*tmp = kt_tmpdir("query-limits");
	kt_write_view(*tmp, "big", BIG_SQL, views);
	snprintf(data, sizeof(data), "%s/db", *tmp);
	kappa_options o;
	kappa_options_init(&o);
	o.views_dir = views;
	o.index_map_bytes = 1u << 30; /* valgrind (make valgrind) cannot map the 64 GiB default */
	kappa_db *db;
	kappa_err err;
	int rc = kappa_open(data, &o, &db, &err);
	cr_assert_eq(rc, KAPPA_OK, "kappa_open: %s", err.msg);
	return db;
}

static int
sql(kappa_db *db, const char *text, json_t **out, kappa_err *err)
{
	char *res = NULL;
	int rc = kappa_sql(db, "big", text, NULL, 0, 20000, &res, err);
	*out = res ? json_loads(res, 0, NULL) : NULL;
	if (rc == KAPPA_OK)
		cr_assert_not_null(*out, "kappa_sql answered no JSON: %s", res ? res : "(null)");
	kappa_free(res);
	return rc;
}

Test(query_limits, a_value_over_the_limit_is_refused_not_built)
{
	char *tmp;
	kappa_db *db = open_big(&tmp);
	json_t *j;
	kappa_err err;
	int rc = sql(db, "SELECT zeroblob(1000000000)", &j, &err);
	cr_assert_eq(rc, KAPPA_EINVAL, "a 1 GB blob: %s (%s)", kappa_strerror(rc), err.msg);
	cr_assert(strstr(err.msg, "too big"), "message: %s", err.msg);
	rc = sql(db, "SELECT length(replace(hex(zeroblob(10000000)), '0', 'aa'))", &j, &err);
	cr_assert_eq(rc, KAPPA_EINVAL, "a 40 MB intermediate string: %s", kappa_strerror(rc));
	/* just under the limit is fine */
	rc = sql(db, "SELECT length(zeroblob(16000000)) AS n", &j, &err);
	cr_assert_eq(rc, KAPPA_OK, "%s", err.msg);
	cr_assert_eq(json_integer_value(
			     json_object_get(json_array_get(json_object_get(j, "rows"), 0), "n")),
		     16000000);
	json_decref(j);
	kappa_close(db);
	kt_rmdir(tmp);
}

Test(query_limits, an_answer_over_the_limit_is_cut_off_or_refused)
{
	char *tmp;
	kappa_db *db = open_big(&tmp);
	json_t *j;
	kappa_err err;
	/* 1,000 rows of 100 kB: 100 MB of values, over the 16 MiB an answer may hold */
	int rc = sql(db,
		     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < "
		     "1000) SELECT zeroblob(100000) AS b FROM c",
		     &j, &err);
	cr_assert_eq(rc, KAPPA_OK, "%s", err.msg);
	size_t n = json_array_size(json_object_get(j, "rows"));
	cr_assert(json_is_true(json_object_get(j, "truncated")), "not marked truncated");
	cr_assert(n > 0 && n * 100000 <= KP_VIEW_MAX_ANSWER, "%zu rows of 100 kB answered", n);
	json_decref(j);

	char *res = NULL;
	rc = kappa_query(db, "big", "blobs", "{\"n\":1000}", KAPPA_NO_POSITION, 20000, &res, &err);
	cr_assert_eq(rc, KAPPA_ETOOBIG, "a 100 MB named query: %s", kappa_strerror(rc));
	cr_assert_null(res);
	rc = kappa_query(db, "big", "blobs", "{\"n\":10}", KAPPA_NO_POSITION, 20000, &res, &err);
	cr_assert_eq(rc, KAPPA_OK, "a 1 MB named query: %s", err.msg);
	j = json_loads(res, 0, NULL);
	cr_assert_eq(json_array_size(json_object_get(j, "rows")), 10);
	json_decref(j);
	kappa_free(res);
	kappa_close(db);
	kt_rmdir(tmp);
}

Test(query_limits, text_that_is_not_utf8_is_answered_with_replacement_characters)
{
	char *tmp;
	kappa_db *db = open_big(&tmp);
	json_t *j;
	kappa_err err;
	int rc = sql(db, "SELECT CAST(x'61ff62f09f9880' AS TEXT) AS t, 1 AS one", &j, &err);
	cr_assert_eq(rc, KAPPA_OK, "%s", err.msg);
	json_t *row = json_array_get(json_object_get(j, "rows"), 0);
	const char *t = json_string_value(json_object_get(row, "t"));
	cr_assert_not_null(t, "the column is missing from the row");
	cr_assert_str_eq(t, "a\xef\xbf\xbd"
			    "b\xf0\x9f\x98\x80");
	cr_assert_eq(json_integer_value(json_object_get(row, "one")), 1);
	json_decref(j);
	kappa_close(db);
	kt_rmdir(tmp);
}
