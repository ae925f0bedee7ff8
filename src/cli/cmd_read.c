/*
 * cmd_read.c -- `kappa read STREAM`: a stream's events over HTTP
 * (GET /streams/STREAM?from_version=&limit=&direction=), following pages when --limit is
 * more than the server gives at once. Prints {"events":[...],"next_version":N} as the pages
 * come, so memory stays one page whatever the limit, or a table with --table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/table.h"

static const char usage_text[] =
	"usage: kappa read STREAM [--from V] [--limit N] [--backward] [--url URL] [--table]\n"
	"\n"
	"Print STREAM's events as {\"events\": [...], \"next_version\": N}.\n"
	"  --from V     start at version V (default: the first, or the last with --backward)\n"
	"  --limit N    at most N events (default 100; pages of 10,000 are followed)\n"
	"  --backward   newest first; next_version is then the version to continue from\n"
	"               (null once version 0 was read)\n"
	"  --url URL    the server (default $KAPPA_URL or " KP_DEFAULT_URL ")\n"
	"  --table      a table instead of JSON\n"
	"Exit: 0 ok, 1 error from the server, 2 usage.\n";

/* Columns of an event table, data last so it may run long. */
static const char *const event_cols[] = {"position", "stream",	 "version", "type", "time",
					 "subject",  "metadata", "data",    NULL};

/* What `read` carries from page to page. */
typedef struct reader {
	kp_client c;
	kp_table t;
	unsigned long long printed; /* events printed so far */
	int next_null;		    /* backward and version 0 was read */
	long long next;		    /* next_version to print */
} reader;

/* Print one page's events. Returns 0, or an exit status. */
static int
print_page(reader *r, json_t *events)
{
	if (r->c.table)
		return kp_table_print(&r->t, events, stdout) ? kp_client_oom() : 0;
	size_t i;
	json_t *e;
	json_array_foreach(events, i, e)
	{
		char *s = json_dumps(e, JSON_COMPACT);
		if (!s)
			return kp_client_oom();
		printf("%s%s", r->printed + i ? "," : "{\"events\":[", s);
		free(s);
	}
	return 0;
}

static int
read_pages(reader *r, const char *stream, const char *from_arg, unsigned long long limit,
	   int backward)
{
	unsigned long long from = 0, remaining = limit;
	int have_from = from_arg != NULL;
	if (from_arg && kp_parse_u64(from_arg, &from))
		return kp_usage(usage_text, 0);
	r->next = backward ? -1 : (long long)from;
	while (remaining > 0) {
		unsigned long long page = remaining < KP_SERVER_PAGE ? remaining : KP_SERVER_PAGE;
		kp_buf path = KP_BUF_INIT;
		int bad = kp_buff(&path, "/streams/") || kp_client_escape(&r->c, &path, stream) ||
			  kp_buff(&path, "?limit=%llu", page) ||
			  (have_from && kp_buff(&path, "&from_version=%llu", from)) ||
			  (backward && kp_buff(&path, "&direction=backward"));
		if (bad) {
			kp_buf_release(&path);
			return kp_client_oom();
		}
		int rc = kp_client_call_ok(&r->c, "GET", (const char *)path.data, NULL);
		kp_buf_release(&path);
		if (rc)
			return rc;
		json_error_t je;
		json_t *o = json_loadb((const char *)r->c.resp.data, r->c.resp.len, 0, &je);
		json_t *events = json_object_get(o, "events");
		json_t *next = json_object_get(o, "next_version");
		if (!json_is_array(events) || !(json_is_integer(next) || json_is_null(next))) {
			fprintf(stderr, "kappa read: the server's answer has no events%s%s\n",
				o ? "" : ": ", o ? "" : je.text);
			json_decref(o);
			return KP_EXIT_ERROR;
		}
		size_t n = json_array_size(events);
		rc = print_page(r, events);
		r->printed += n;
		remaining -= n < remaining ? n : remaining;
		if (backward && n) {
			/* reading backward, next_version counts down (null: version 0 read) */
			r->next_null = json_is_null(next);
			r->next = r->next_null ? -1 : json_integer_value(next);
			from = (unsigned long long)(r->next_null ? 0 : r->next);
			have_from = 1;
		} else if (!backward) {
			r->next = json_integer_value(next);
			from = (unsigned long long)r->next;
			have_from = 1;
		}
		json_decref(o);
		if (rc)
			return rc;
		if (n < page || r->next_null)
			break;
	}
	return 0;
}

int
kp_cmd_read(int argc, char **argv)
{
	reader r;
	memset(&r, 0, sizeof(r));
	kp_client_defaults(&r.c);
	kp_table_init(&r.t);
	const char *from = NULL, *limit_arg = "100", *pos[1];
	int backward = 0;
	const kp_opt opts[] = {{"--from", &from, NULL, NULL, NULL},
			       {"--limit", &limit_arg, NULL, NULL, NULL},
			       {"--backward", NULL, NULL, NULL, &backward},
			       {NULL, NULL, NULL, NULL, NULL}};
	int n = kp_client_args(&r.c, argc, argv, opts, pos, 1), rc;
	unsigned long long limit, first;
	if (n == -KP_ARG_HELP)
		return kp_usage(usage_text, 1);
	if (n != 1 || kp_parse_u64(limit_arg, &limit) || (from && kp_parse_u64(from, &first))) {
		if (n == 0)
			fprintf(stderr, "kappa read: needs STREAM\n");
		else if (n == 1)
			fprintf(stderr, "kappa read: --from and --limit take a number\n");
		return kp_usage(usage_text, 0);
	}
	if ((rc = kp_client_open(&r.c)) == 0 &&
	    (rc = kp_table_columns(&r.t, event_cols, NULL) ? kp_client_oom() : 0) == 0)
		rc = read_pages(&r, pos[0], from, limit, backward);
	if (!rc || r.printed) {
		if (r.c.table) {
			printf("(%llu event%s, next_version: ", r.printed,
			       r.printed == 1 ? "" : "s");
		} else {
			if (!r.printed)
				printf("{\"events\":[");
			printf("],\"next_version\":");
		}
		if (r.next_null || r.next < 0)
			printf("null");
		else
			printf("%lld", r.next);
		printf(r.c.table ? ")\n" : "}\n");
		if (fflush(stdout) && !rc)
			rc = KP_EXIT_ERROR;
	}
	kp_table_release(&r.t);
	kp_client_close(&r.c);
	return rc;
}
