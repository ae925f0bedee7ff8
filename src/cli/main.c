/*
 * main.c -- the kappa command line: dispatches `kappa COMMAND ...` to cmd_<name>.c.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "kappa.h"

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} commands[] = {
	{"check", kp_cmd_check, "check DIR        verify every batch of the log in DIR"},
	{"serve", kp_cmd_serve,
	 "serve --data DIR [--views DIR] [--listen 127.0.0.1:7070] [--fsync "
	 "always|interval:MS|never]"},
	{"version", kp_cmd_version, "version          print the version"},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: kappa COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %s\n", commands[i].help);
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
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "kappa: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
