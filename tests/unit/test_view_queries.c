/*
 * test_view_queries.c -- kappa_view_queries (kappa.h): a view's named queries and their
 * parameters as JSON, in definition order, optional parameters marked; no such view is
 * KAPPA_ENOTFOUND.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "kappa.h"
#include "testlib.h"

TestSuite(view_queries, .timeout = 60);

static const char def[] =
	"-- @view qv\n"
	"CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER);\n"
	"-- @on Tick\n"
	"INSERT INTO t VALUES (:stream, 1) ON CONFLICT(k) DO UPDATE SET n = n + 1;\n"
	"-- @query by_key(k)\n"
	"SELECT k, n FROM t WHERE k = :k;\n"
	"-- @query page(limit, after?)\n"
	"SELECT k FROM t WHERE :after IS NULL OR k > :after ORDER BY k LIMIT :limit;\n"
	"-- @query all()\n"
	"SELECT k FROM t;\n";

Test(view_queries, lists_queries_and_parameters)
{
	char *tmp = kt_tmpdir("viewq"), views[KT_PATH], data[KT_PATH];
	kt_write_view(tmp, "qv", def, views);
	snprintf(data, sizeof(data), "%s/db", tmp);
	kappa_options o;
	kappa_options_init(&o);
	o.views_dir = views;
	kappa_db *db = kt_open_ok(data, &o);
	char *json = NULL;
	kappa_err err;
	cr_assert_eq(kappa_view_queries(db, "qv", &json, &err), KAPPA_OK, "%s", err.msg);
	cr_assert_str_eq(json,
			 "[{\"name\":\"by_key\",\"params\":[{\"name\":\"k\",\"optional\":false}]},"
			 "{\"name\":\"page\",\"params\":[{\"name\":\"limit\",\"optional\":false},"
			 "{\"name\":\"after\",\"optional\":true}]},"
			 "{\"name\":\"all\",\"params\":[]}]");
	kappa_free(json);
	json = (char *)"not touched";
	cr_assert_eq(kappa_view_queries(db, "nope", &json, &err), KAPPA_ENOTFOUND);
	cr_assert_null(json, "the output is NULL on error");
	kappa_close(db);
	kt_rmdir(tmp);
}
