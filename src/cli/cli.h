/*
 * cli.h -- the kappa CLI's commands, one file each (cmd_<name>.c). Each takes the
 * arguments after the command name (argv[0] is the command) and returns the exit status:
 * 0 ok, 1 an error (from the server, or it could not be reached), 2 usage. check, verify
 * and serve work on a data directory; the others are HTTP clients of `kappa serve` (cli/client.h).
 */
#ifndef KP_CLI_H
#define KP_CLI_H

int kp_cmd_check(int argc, char **argv);
int kp_cmd_verify(int argc, char **argv);
int kp_cmd_version(int argc, char **argv);
int kp_cmd_serve(int argc, char **argv);

int kp_cmd_append(int argc, char **argv);
int kp_cmd_read(int argc, char **argv);
int kp_cmd_tail(int argc, char **argv);
int kp_cmd_query(int argc, char **argv);
int kp_cmd_sql(int argc, char **argv);
int kp_cmd_views(int argc, char **argv);
int kp_cmd_rebuild(int argc, char **argv);
int kp_cmd_forget(int argc, char **argv);
int kp_cmd_export(int argc, char **argv);
int kp_cmd_import(int argc, char **argv);
int kp_cmd_export_log(int argc, char **argv);

#endif
