/*
 * cmd_subject.c -- `kappa forget SUBJECT` and `kappa export SUBJECT`: forget a data subject
 * (POST /subjects/S/forget) or fetch everything kappa holds about it (GET
 * /subjects/S/export). Both need an admin token.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char forget_usage[] =
	"usage: kappa forget SUBJECT [--url URL]\n"
	"\n"
	"Forget SUBJECT for good: its key is destroyed, its events read as forgotten, the claims\n"
	"of its streams are released and every view deletes what it derived about it. Forgetting\n"
	"again answers the same. Needs an admin token ($KAPPA_TOKEN).\n"
	"  --url URL   the server (default $KAPPA_URL or " KP_DEFAULT_URL ")\n"
	"Exit: 0 forgotten, 1 error from the server (unknown subject), 2 usage.\n";

static const char export_usage[] =
	"usage: kappa export SUBJECT [--url URL]\n"
	"\n"
	"Print everything kappa holds about SUBJECT as one JSON document: its events (decrypted;\n"
	"forgotten ones marked) and the rows each view's @export section returns. Needs an admin\n"
	"token ($KAPPA_TOKEN).\n"
	"  --url URL   the server (default $KAPPA_URL or " KP_DEFAULT_URL ")\n"
	"Exit: 0 ok, 1 error from the server (unknown subject), 2 usage.\n";

static int
subject_call(int argc, char **argv, const char *name, const char *usage, const char *method,
	     const char *action)
{
	kp_client c;
	kp_client_defaults(&c);
	const char *pos[1];
	int n = kp_client_args(&c, argc, argv, NULL, pos, 1), rc;
	if (n == -KP_ARG_HELP)
		return kp_usage(usage, 1);
	if (n != 1) {
		if (n == 0)
			fprintf(stderr, "kappa %s: needs SUBJECT\n", name);
		return kp_usage(usage, 0);
	}
	kp_buf path = KP_BUF_INIT;
	if ((rc = kp_client_open(&c)) == 0) {
		if (kp_buff(&path, "/subjects/") || kp_client_escape(&c, &path, pos[0]) ||
		    kp_buff(&path, "%s", action))
			rc = kp_client_oom();
		else if ((rc = kp_client_call_ok(&c, method, (const char *)path.data, NULL)) == 0)
			rc = kp_client_print(&c, NULL);
	}
	kp_buf_release(&path);
	kp_client_close(&c);
	return rc;
}

int
kp_cmd_forget(int argc, char **argv)
{
	return subject_call(argc, argv, "forget", forget_usage, "POST", "/forget");
}

int
kp_cmd_export(int argc, char **argv)
{
	return subject_call(argc, argv, "export", export_usage, "GET", "/export");
}
