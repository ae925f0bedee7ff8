/*
 * cmd_views.c -- `kappa views [VIEW]`: the server's views with their state, position and
 * lag (GET /views), or one view's status (GET /views/VIEW).
 */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char usage_text[] =
	"usage: kappa views [VIEW] [--url URL] [--table]\n"
	"\n"
	"List the views (name, state, position, lag, events_per_s), or the status of VIEW.\n"
	"  --url URL   the server (default $KAPPA_URL or " KP_DEFAULT_URL ")\n"
	"  --table     a table instead of JSON\n"
	"Exit: 0 ok, 1 error from the server, 2 usage.\n";

int
kp_cmd_views(int argc, char **argv)
{
	kp_client c;
	kp_client_defaults(&c);
	const char *pos[1];
	int n = kp_client_args(&c, argc, argv, NULL, pos, 1), rc;
	if (n == -KP_ARG_HELP)
		return kp_usage(usage_text, 1);
	if (n < 0)
		return kp_usage(usage_text, 0);
	kp_buf path = KP_BUF_INIT;
	if ((rc = kp_client_open(&c)) == 0) {
		if (kp_buff(&path, "/views") ||
		    (n == 1 && (kp_buff(&path, "/") || kp_client_escape(&c, &path, pos[0]))))
			rc = kp_client_oom();
		else if ((rc = kp_client_call_ok(&c, "GET", (const char *)path.data, NULL)) == 0)
			rc = kp_client_print(&c, n == 1 ? NULL : "views");
	}
	kp_buf_release(&path);
	kp_client_close(&c);
	return rc;
}
