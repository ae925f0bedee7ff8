/*
 * cmd_export_log.c -- `kappa export-log`: the log as JSON Lines on stdout, one EVENT per
 * line, paging through GET /log?from=&limit=10000 up to the head seen by the first page
 * (so a busy server does not keep it going). `kappa import` takes the output back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/table.h"

static const char usage_text[] =
	"usage: kappa export-log [--from P] [--to P] [--url URL] [--table] > FILE.jsonl\n"
	"\n"
	"Write the events with from <= position < to as JSON Lines, in log order, stopping at\n"
	"the head the server had when the export started. `kappa import FILE.jsonl` appends\n"
	"them again (to another server, say); importing the same lines twice appends nothing\n"
	"twice.\n"
	"  --from P    the first position (default 0)\n"
	"  --to P      stop before position P (default: the head at the start)\n"
	"  --url URL   the server (default $KAPPA_URL or " KP_DEFAULT_URL ")\n"
	"  --table     a table for people instead of JSON Lines\n"
	"Exit: 0 ok, 1 error from the server or writing stdout, 2 usage.\n";

static const char *const event_cols[] = {"position", "stream",	 "version", "type", "time",
					 "subject",  "metadata", "data",    NULL};

/* Print the events of one page below 'to'. Returns the count printed, or -1 (OOM). */
static long
print_page(kp_client *c, kp_table *t, json_t *events, unsigned long long to)
{
	size_t i, n = 0;
	json_t *e;
	json_array_foreach(events, i, e)
	{
		json_t *p = json_object_get(e, "position");
		if (json_is_integer(p) && (unsigned long long)json_integer_value(p) >= to)
			break;
		n++;
	}
	if (c->table) {
		json_t *rows = json_array();
		int bad = !rows;
		for (i = 0; i < n && !bad; i++)
			bad = json_array_append(rows, json_array_get(events, i));
		bad = bad || kp_table_print(t, rows, stdout);
		json_decref(rows);
		return bad ? -1 : (long)n;
	}
	for (i = 0; i < n; i++) {
		char *s = json_dumps(json_array_get(events, i), JSON_COMPACT);
		if (!s)
			return -1;
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	return (long)n;
}

static int export(kp_client *c, kp_table *t, unsigned long long from, unsigned long long to,
		  int has_to)
{
	int first = 1;
	while (from < to || first) {
		kp_buf path = KP_BUF_INIT;
		if (kp_buff(&path, "/log?from=%llu&limit=%d", from, KP_SERVER_PAGE))
			return kp_client_oom();
		int rc = kp_client_call_ok(c, "GET", (const char *)path.data, NULL);
		kp_buf_release(&path);
		if (rc)
			return rc;
		json_error_t je;
		json_t *o = json_loadb((const char *)c->resp.data, c->resp.len, 0, &je);
		json_t *events = json_object_get(o, "events");
		json_t *next = json_object_get(o, "next"), *head = json_object_get(o, "head");
		if (!json_is_array(events) || !json_is_integer(next) || !json_is_integer(head)) {
			fprintf(stderr, "kappa export-log: the server's answer has no events%s%s\n",
				o ? "" : ": ", o ? "" : je.text);
			json_decref(o);
			return KP_EXIT_ERROR;
		}
		if (first && (!has_to || (unsigned long long)json_integer_value(head) < to))
			to = (unsigned long long)json_integer_value(head);
		first = 0;
		long n = print_page(c, t, events, to);
		unsigned long long nx = (unsigned long long)json_integer_value(next);
		json_decref(o);
		if (n < 0)
			return kp_client_oom();
		if (ferror(stdout)) {
			fprintf(stderr, "kappa export-log: cannot write the output\n");
			return KP_EXIT_ERROR;
		}
		if (n == 0 || nx <= from)
			break; /* nothing more below 'to' (or the server did not move on) */
		from = nx;
	}
	return KP_EXIT_OK;
}

int
kp_cmd_export_log(int argc, char **argv)
{
	kp_client c;
	kp_client_defaults(&c);
	const char *from_arg = "0", *to_arg = NULL;
	const kp_opt opts[] = {{"--from", &from_arg, NULL, NULL, NULL},
			       {"--to", &to_arg, NULL, NULL, NULL},
			       {NULL, NULL, NULL, NULL, NULL}};
	int n = kp_client_args(&c, argc, argv, opts, NULL, 0), rc;
	unsigned long long from, to = 0;
	if (n == -KP_ARG_HELP)
		return kp_usage(usage_text, 1);
	if (n < 0 || kp_parse_u64(from_arg, &from) || (to_arg && kp_parse_u64(to_arg, &to))) {
		if (n >= 0)
			fprintf(stderr, "kappa export-log: --from and --to take a position\n");
		return kp_usage(usage_text, 0);
	}
	kp_table t;
	kp_table_init(&t);
	if ((rc = kp_client_open(&c)) == 0) {
		if (kp_table_columns(&t, event_cols, NULL))
			rc = kp_client_oom();
		else
			rc = export(&c, &t, from, to, to_arg != NULL);
	}
	if (fflush(stdout) && !rc) {
		fprintf(stderr, "kappa export-log: cannot write the output\n");
		rc = KP_EXIT_ERROR;
	}
	kp_table_release(&t);
	kp_client_close(&c);
	return rc;
}
