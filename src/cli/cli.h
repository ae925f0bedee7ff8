/*
 * cli.h -- the kappa CLI's commands, one file each (cmd_<name>.c). Each takes the
 * arguments after the command name (argv[0] is the command) and returns the exit status.
 */
#ifndef KP_CLI_H
#define KP_CLI_H

int kp_cmd_check(int argc, char **argv);
int kp_cmd_version(int argc, char **argv);
int kp_cmd_serve(int argc, char **argv);

#endif
