/*
 * test_views_idle.c -- a view that has nothing to do (failed, or caught up) costs no CPU:
 * its projector waits instead of polling. A spinning projector burns a whole core, so the
 * process's CPU time over one idle second tells them apart.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "kappa.h"
#include "testlib.h"

TestSuite(views_idle, .timeout = 60);

static double
cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

Test(views_idle, failed_and_caught_up_views_do_not_spin)
{
	char *dir = kt_tmpdir("idle");
	char views[KT_PATH], data[KT_PATH];
	snprintf(data, sizeof(data), "%s/data", dir);
	kt_write_view(dir, "uniq",
		      "-- @view uniq\nCREATE TABLE u (k TEXT PRIMARY KEY);\n"
		      "-- @on *\nINSERT INTO u VALUES ('same');\n",
		      views);
	kt_write_view(dir, "fine",
		      "-- @view fine\nCREATE TABLE c (n INTEGER);\n"
		      "-- @on *\nINSERT INTO c VALUES (1);\n"
		      "-- @query count()\nSELECT count(*) AS n FROM c;\n",
		      views);
	kappa_options o;
	kappa_options_init(&o);
	o.views_dir = views;
	kappa_db *db;
	kappa_err err;
	cr_assert_eq(kappa_open(data, &o, &db, &err), KAPPA_OK, "%s", err.msg);
	kappa_event_in ev = {.type = "T", .data = "{}"};
	kappa_append_result res;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(kappa_append(db, "s", KAPPA_ANY, NULL, &ev, 1, NULL, 0, &res, &err),
			     KAPPA_OK);
	char *json;
	cr_assert_eq(kappa_query(db, "fine", "count", NULL, res.last_position, 5000, &json, &err),
		     KAPPA_OK, "%s", err.msg);
	kappa_free(json);
	kappa_view_status st;
	for (int i = 0; i < 200; i++) {
		kappa_view_status_get(db, "uniq", &st, &err);
		if (st.state == KAPPA_VIEW_FAILED)
			break;
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	cr_assert_eq(st.state, KAPPA_VIEW_FAILED);
	cr_assert_eq(st.position, 1, "the event before the failing one stays applied");

	double before = cpu_seconds();
	struct timespec one = {1, 0};
	nanosleep(&one, NULL);
	double used = cpu_seconds() - before;
	cr_assert_lt(used, 0.25, "%.2f s of CPU in one idle second: something spins", used);
	kappa_close(db);
	kt_rmdir(dir);
}
