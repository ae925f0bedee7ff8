/*
 * cmd_sql.c -- `kappa sql VIEW "SELECT ..."`: ad-hoc read-only SQL on a view over HTTP
 * (POST /views/VIEW/sql {"sql": ...}). Prints {"rows": [...], "position": P, "truncated": B}
 * or the rows as a table.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char usage_text[] =
	"usage: kappa sql VIEW \"SELECT ...\" [--url URL] [--table]\n"
	"\n"
	"Run one read-only SQL statement on VIEW's tables (the server refuses writes).\n"
	"  --url URL   the server (default $KAPPA_URL or " KP_DEFAULT_URL ")\n"
	"  --table     the rows as a table instead of JSON\n"
	"Exit: 0 ok, 1 error from the server, 2 usage.\n";

int
kp_cmd_sql(int argc, char **argv)
{
	kp_client c;
	kp_client_defaults(&c);
	const char *pos[2];
	int n = kp_client_args(&c, argc, argv, NULL, pos, 2), rc;
	if (n == -KP_ARG_HELP)
		return kp_usage(usage_text, 1);
	if (n != 2) {
		if (n >= 0)
			fprintf(stderr, "kappa sql: needs VIEW and one SQL statement\n");
		return kp_usage(usage_text, 0);
	}
	json_t *sql = json_string(pos[1]);
	if (!sql) {
		fprintf(stderr, "kappa sql: the SQL is not valid UTF-8\n");
		return KP_EXIT_USAGE;
	}
	json_t *body = json_pack("{s:o}", "sql", sql);
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
	kp_buf path = KP_BUF_INIT;
	if ((rc = kp_client_open(&c)) == 0) {
		if (!text || kp_buff(&path, "/views/") || kp_client_escape(&c, &path, pos[0]) ||
		    kp_buff(&path, "/sql"))
			rc = kp_client_oom();
		else if ((rc = kp_client_call_ok(&c, "POST", (const char *)path.data, text)) == 0)
			rc = kp_client_print(&c, "rows");
	}
	kp_buf_release(&path);
	free(text);
	kp_client_close(&c);
	return rc;
}
