/*
 * cmd_version.c -- `kappa version`.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "kappa.h"

int
kp_cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("kappa %s\n", kappa_version());
	return 0;
}
