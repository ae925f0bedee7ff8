/*
 * test_query_json.c -- the JSON of query answers (src/view/row_json.c, query.c): every
 * SQLite value type, text that is not UTF-8, blobs, non-finite reals and repeated column
 * names, checked against the same rows built as a jansson object and dumped (the form
 * answers had when jansson wrote them), and query parameters of every JSON type, with the
 * errors for the ones that cannot bind.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kappa.h"
#include "testlib.h"

TestSuite(query_json, .timeout = 60);

static const char def[] = "-- @view qj\n"
			  "CREATE TABLE t (k TEXT PRIMARY KEY, v);\n"
			  "-- @on Tick\n"
			  "INSERT INTO t VALUES (:stream, 1);\n"
			  "-- @query echo(s, i?, r?, b?, n?)\n"
			  "SELECT :s AS s, typeof(:s) AS ts, :i AS i, typeof(:i) AS ti, :r AS r,\n"
			  "  typeof(:r) AS tr, :b AS b, :n AS n, typeof(:n) AS tn;\n";

static kappa_db *
open_view(char **tmp)
{
	char views[KT_PATH], data[KT_PATH];
	*tmp = kt_tmpdir("queryjson");
	kt_write_view(*tmp, "qj", def, views);
	snprintf(data, sizeof(data), "%s/db", *tmp);
	kappa_options o;
	kappa_options_init(&o);
	o.views_dir = views;
	return kt_open_ok(data, &o);
}

/* A column as the answer's JSON used to be built: NULL for what jansson refuses. */
static json_t *
column_jansson(sqlite3_stmt *st, int i)
{
	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(st, i));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(st, i));
	case SQLITE_TEXT: {
		const char *p = (const char *)sqlite3_column_text(st, i);
		size_t n = (size_t)sqlite3_column_bytes(st, i), w = 0;
		json_t *j = json_stringn(p, n);
		if (j)
			return j;
		char *o = malloc(3 * n + 1);
		for (size_t k, at = 0; at < n;) {
			for (k = 4; k > 0 && (at + k > n || !(j = json_stringn(p + at, k))); k--)
				;
			if (k) {
				json_decref(j);
				memcpy(o + w, p + at, k);
				w += k;
				at += k;
			} else {
				memcpy(o + w, "\xef\xbf\xbd", 3);
				w += 3;
				at++;
			}
		}
		j = json_stringn(o, w);
		free(o);
		return j;
	}
	case SQLITE_BLOB: {
		size_t n = (size_t)sqlite3_column_bytes(st, i);
		size_t bl = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
		char *b = malloc(bl);
		sodium_bin2base64(b, bl, sqlite3_column_blob(st, i), n,
				  sodium_base64_VARIANT_ORIGINAL);
		json_t *j = json_string(b);
		free(b);
		return j;
	}
	default:
		return json_null();
	}
}

/* The rows of 'sql' run on a private in-memory database, dumped from jansson objects. */
static char *
rows_jansson(const char *sql)
{
	sqlite3 *c;
	sqlite3_stmt *st;
	cr_assert_eq(sqlite3_open(":memory:", &c), SQLITE_OK);
	cr_assert_eq(sqlite3_prepare_v2(c, sql, -1, &st, NULL), SQLITE_OK, "%s", sql);
	json_t *rows = json_array();
	while (sqlite3_step(st) == SQLITE_ROW) {
		json_t *row = json_object();
		for (int i = 0; i < sqlite3_column_count(st); i++)
			json_object_set_new(row, sqlite3_column_name(st, i), column_jansson(st, i));
		json_array_append_new(rows, row);
	}
	sqlite3_finalize(st);
	sqlite3_close(c);
	char *s = json_dumps(rows, JSON_COMPACT);
	json_decref(rows);
	return s;
}

/* The "rows" of kappa's answer to 'sql' (the answer starts with them, then the position). */
static char *
rows_kappa(kappa_db *db, const char *sql)
{
	char *json = NULL;
	kappa_err err;
	cr_assert_eq(kappa_sql(db, "qj", sql, NULL, 0, 0, &json, &err), KAPPA_OK, "%s: %s", sql,
		     err.msg);
	cr_assert(!strncmp(json, "{\"rows\":", 8), "%s", json);
	char *end = strstr(json, "],\"position\":");
	cr_assert(end, "%s", json);
	char *rows = kt_dupn(json + 8, (size_t)(end + 1 - (json + 8)));
	json_t *parsed = json_loads(json, JSON_ALLOW_NUL, NULL);
	cr_assert(parsed, "the answer is JSON: %s", json);
	json_decref(parsed);
	kappa_free(json);
	return rows;
}

Test(query_json, rows_read_as_jansson_wrote_them)
{
	static const char *const sqls[] = {
		"SELECT 1 AS a, -9223372036854775808 AS b, 9223372036854775807 AS c, 0 AS d",
		"SELECT 0.1 AS a, 2.0 AS b, 1e20 AS c, 1e-5 AS d, -0.0 AS e, 123456789.125 AS f,"
		" 1.5e300 AS g, -2.5e-300 AS h, 100.0 AS i, 1e16 AS j, 1e17 AS k",
		"SELECT 'plain' AS a, 'quote \" back \\ slash /' AS b, char(0, 1, 8, 9, 10, 12, 13,"
		" 31, 127) AS c, 'é€😀' AS d, '' AS e",
		"SELECT CAST(x'ff61c3' AS TEXT) AS a, CAST(x'e282' AS TEXT) AS b,"
		" CAST(x'eda080' AS TEXT) AS c, CAST(x'f4908080' AS TEXT) AS d,"
		" CAST(x'c0af41' AS TEXT) AS e, CAST(x'41f09f9880ff' AS TEXT) AS f",
		"SELECT x'' AS a, x'00ff10' AS b, zeroblob(5) AS c, x'deadbeefcafe' AS d",
		"SELECT NULL AS a, 1 AS b, 2 AS a, 3 AS c, 4 AS b",
		"SELECT 1 AS \"x\"\"y\", 2 AS \"é\", 3 AS \"a\\b\", 4 AS \"\"",
		"SELECT 1 AS c1, 2 AS c2, 3 AS c3, 4 AS c4, 5 AS c5, 6 AS c6, 7 AS c7, 8 AS c8,"
		" 9 AS c9, 10 AS c10, 11 AS c11, 12 AS c12, 13 AS c13, 14 AS c14, 15 AS c15,"
		" 16 AS c16, 17 AS c17, 18 AS c1, 19 AS c19, 'twenty' AS c20", /* over 16 columns */
		"SELECT value AS v, value * 0.5 AS h FROM generate_series(1, 40)",
		"WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 30)"
		" SELECT n, n * 1.1 AS f, printf('%.*c', n, 'x') AS t FROM s",
	};
	char *tmp;
	kappa_db *db = open_view(&tmp);
	for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		if (strstr(sqls[i], "generate_series") && sqlite3_libversion_number() < 3045000)
			continue; /* the table-valued function is not built in before 3.45 */
		char *want = rows_jansson(sqls[i]), *got = rows_kappa(db, sqls[i]);
		cr_expect_str_eq(got, want, "%s", sqls[i]);
		free(want);
		free(got);
	}
	kappa_close(db);
	kt_rmdir(tmp);
}

Test(query_json, non_finite_reals_are_null)
{
	char *tmp;
	kappa_db *db = open_view(&tmp);
	char *got = rows_kappa(db, "SELECT 1e308 * 10 AS inf, -1e308 * 10 AS ninf, 1 AS one");
	cr_assert_str_eq(got, "[{\"inf\":null,\"ninf\":null,\"one\":1}]");
	free(got);
	kappa_close(db);
	kt_rmdir(tmp);
}

static int
echo(kappa_db *db, const char *params, char **json, kappa_err *err)
{
	return kappa_query(db, "qj", "echo", params, KAPPA_NO_POSITION, 0, json, err);
}

Test(query_json, parameters_bind_by_type)
{
	char *tmp, *json = NULL;
	kappa_err err;
	kappa_db *db = open_view(&tmp);
	cr_assert_eq(echo(db,
			  " {\"s\": \"a\\u00e9\\n\\\"\\ud83d\\ude00\", \"i\": -42, \"r\": 1.5e2,"
			  " \"b\": true, \"n\": null} ",
			  &json, &err),
		     KAPPA_OK, "%s", err.msg);
	cr_assert_str_eq(json, "{\"rows\":[{\"s\":\"aé\\n\\\"😀\",\"ts\":\"text\",\"i\":-42,"
			       "\"ti\":\"integer\",\"r\":150.0,\"tr\":\"real\",\"b\":1,"
			       "\"n\":null,\"tn\":\"null\"}],\"position\":null}");
	kappa_free(json);
	cr_assert_eq(echo(db, "{\"s\": \"x\", \"b\": false, \"r\": 3}", &json, &err), KAPPA_OK,
		     "%s", err.msg);
	cr_assert(strstr(json, "\"b\":0,") && strstr(json, "\"r\":3,\"tr\":\"integer\"") &&
			  strstr(json, "\"i\":null,\"ti\":\"null\""),
		  "%s", json);
	kappa_free(json);

	static const struct {
		const char *params, *msg;
	} bad[] = {
		{"{\"i\": 1}", "missing parameter s"},
		{"{\"s\": [1]}", "parameter s must be a string, number, boolean or null"},
		{"{\"s\": {\"a\": 1}}", "parameter s must be a string, number, boolean or null"},
		{"[1]", "parameters must be a JSON object"},
		{"{\"s\": 1,", "parameters must be a JSON object: "},
		{"{\"s\": 1, \"s\": 2}", "parameters must be a JSON object: "},
		{"{\"s\": 99999999999999999999}", "parameters must be a JSON object: "},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json = (char *)"untouched";
		cr_expect_eq(echo(db, bad[i].params, &json, &err), KAPPA_EINVAL, "%s",
			     bad[i].params);
		cr_expect(!strncmp(err.msg, bad[i].msg, strlen(bad[i].msg)), "%s: %s",
			  bad[i].params, err.msg);
		cr_expect_null(json);
	}
	kappa_close(db);
	kt_rmdir(tmp);
}
