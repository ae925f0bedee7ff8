/*
 * cmd_rebuild.c -- `kappa rebuild VIEW`: ask the server to rebuild a view by replaying the
 * log (POST /views/VIEW/rebuild). The rebuild runs on in the server; this prints the view's
 * status as it starts.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char usage_text[] =
	"usage: kappa rebuild VIEW [--url URL] [--table]\n"
	"\n"
	"Rebuild VIEW from the log with its newest definition. Returns once the rebuild has\n"
	"started; `kappa views VIEW` shows its progress.\n"
	"  --url URL   the server (default $KAPPA_URL or " KP_DEFAULT_URL ")\n"
	"  --table     a table instead of JSON\n"
	"Exit: 0 started, 1 error from the server, 2 usage.\n";

int
kp_cmd_rebuild(int argc, char **argv)
{
	kp_client c;
	kp_client_defaults(&c);
	const char *pos[1];
	int n = kp_client_args(&c, argc, argv, NULL, pos, 1), rc;
	if (n == -KP_ARG_HELP)
		return kp_usage(usage_text, 1);
	if (n != 1) {
		if (n == 0)
			fprintf(stderr, "kappa rebuild: needs VIEW\n");
		return kp_usage(usage_text, 0);
	}
	kp_buf path = KP_BUF_INIT;
	if ((rc = kp_client_open(&c)) == 0) {
		if (kp_buff(&path, "/views/") || kp_client_escape(&c, &path, pos[0]) ||
		    kp_buff(&path, "/rebuild"))
			rc = kp_client_oom();
		else if ((rc = kp_client_call_ok(&c, "POST", (const char *)path.data, NULL)) == 0)
			rc = kp_client_print(&c, NULL);
	}
	kp_buf_release(&path);
	kp_client_close(&c);
	return rc;
}
