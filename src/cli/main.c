/*
 * main.c -- the kappa command line: dispatches `kappa COMMAND ...` to cmd_<name>.c.
 * `kappa --help` lists the commands; `kappa COMMAND --help` prints one command's usage.
 * Exit statuses: 0 ok, 1 error, 2 usage (check and verify: 3 for corruption).
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "kappa.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
	int own_help; /* takes --help itself; for the others main prints the line above */
} commands[] = {
	{"serve", kp_cmd_serve,
	 "serve --data DIR [--views DIR] [--listen 127.0.0.1:7070] "
	 "[--fsync always|interval:MS|never] [--auth-file FILE]",
	 1},
	{"append", kp_cmd_append,
	 "append STREAM TYPE JSON [--expect V|any|no_stream|exists] [--request-id ID]\n"
	 "                   append one event",
	 1},
	{"read", kp_cmd_read,
	 "read STREAM [--from V] [--limit N] [--backward]\n"
	 "                   read a stream's events",
	 1},
	{"tail", kp_cmd_tail,
	 "tail [--from P]    follow the log as events are appended, like tail -f", 1},
	{"query", kp_cmd_query,
	 "query VIEW NAME [k=v ...] [--min-position P]\n"
	 "                   run a view's named query",
	 1},
	{"sql", kp_cmd_sql,
	 "sql VIEW \"SELECT ...\"\n"
	 "                   ad-hoc read-only SQL on a view",
	 1},
	{"views", kp_cmd_views, "views [VIEW]       the views, their state, position and lag", 1},
	{"rebuild", kp_cmd_rebuild, "rebuild VIEW       rebuild a view by replaying the log", 1},
	{"import", kp_cmd_import,
	 "import FILE.jsonl  bulk append from JSON Lines ('-': stdin); a re-run appends "
	 "nothing twice",
	 1},
	{"export-log", kp_cmd_export_log,
	 "export-log [--from P] [--to P] > FILE.jsonl\n"
	 "                   the log as JSON Lines, re-importable with import",
	 1},
	{"forget", kp_cmd_forget,
	 "forget SUBJECT     destroy a data subject's key: its data becomes unreadable (admin)", 1},
	{"export", kp_cmd_export,
	 "export SUBJECT     everything kappa holds about a data subject, as JSON (admin)", 1},
	{"check", kp_cmd_check, "check DIR          verify every batch of the log in DIR", 0},
	{"verify", kp_cmd_verify,
	 "verify DIR [--digest FILE]\n"
	 "                   recompute the audit hash chain; prove it extends a saved digest",
	 1},
	{"version", kp_cmd_version, "version            print the version", 0},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: kappa COMMAND [ARGS]   (kappa COMMAND --help for one command)\n\n"
		   "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s\n", commands[i].help);
	fprintf(f, "\nClient commands talk to --url URL (default $KAPPA_URL or "
		   "http://127.0.0.1:7070)\nwith the bearer token in $KAPPA_TOKEN; they print "
		   "JSON, or a table with --table.\n"
		   "Exit status: 0 ok, 1 error (from the server, or it could not be reached), "
		   "2 usage.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name)) {
			if (!commands[i].own_help && argc == 3 &&
			    (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
				printf("usage: kappa %s\n", commands[i].help);
				return 0;
			}
			return commands[i].run(argc - 1, argv + 1);
		}
	fprintf(stderr, "kappa: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
