/*
 * client.h -- what every client command of the kappa CLI shares: the --url/--table/--help
 * options, libcurl handles carrying the KAPPA_TOKEN bearer token, bounded responses, the
 * server's {"error":{...}} answers turned into "kappa: CODE: MESSAGE" and exit statuses, and
 * output as the server's JSON or an aligned table. It knows no command's routes.
 */
#ifndef KP_CLI_CLIENT_H
#define KP_CLI_CLIENT_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>

#include "base/buf.h"

/* Exit statuses of every client command. */
#define KP_EXIT_OK 0
#define KP_EXIT_ERROR 1 /* the server answered an error, or it could not be reached */
#define KP_EXIT_USAGE 2 /* bad arguments */

#define KP_DEFAULT_URL "http://127.0.0.1:7070"
#define KP_RESPONSE_MAX ((size_t)256 << 20) /* one response body at most */
#define KP_SERVER_PAGE 10000		    /* the server's cap on events per page */

/* kp_client_arg's answer for --help / -h. */
#define KP_ARG_HELP 2

typedef struct kp_client {
	char url[2048];		    /* base URL, no trailing slash */
	int table;		    /* --table: aligned tables instead of JSON */
	CURL *curl;		    /* the handle kp_client_call uses */
	struct curl_slist *headers; /* Accept, Content-Type, Authorization, Expect */
	char errbuf[CURL_ERROR_SIZE];
	kp_buf resp; /* the last response body, NUL-terminated (len excludes the NUL) */
	long status; /* the last response's HTTP status */
	int too_big; /* the last response passed KP_RESPONSE_MAX */
	int oom;     /* an allocation failed while receiving it */
	int curl_init;
} kp_client;

/* Defaults: URL from $KAPPA_URL or KP_DEFAULT_URL, JSON output. */
void kp_client_defaults(kp_client *c);

/* Take the shared option at argv[*i] if it is one: --url URL (advances *i past URL),
 * --table, --help/-h. Returns 1 (taken), 0 (not a shared option), KP_ARG_HELP, or -1
 * (--url without a value). */
int kp_client_arg(kp_client *c, int argc, char **argv, int *i);

/* A command's own option: '--name VALUE' sets *value (a later one wins) or, with 'many',
 * adds to many[*count] (the caller sizes 'many' for argc entries); '--name' alone sets
 * *flag = 1. */
typedef struct kp_opt {
	const char *name;
	const char **value;
	const char **many;
	size_t *count;
	int *flag;
} kp_opt;

/* Parse argv[1..]: shared options, 'opts' (ended by {NULL}) and at most 'max_pos'
 * positional arguments into 'pos' ("--" ends the options). Returns the number of positional
 * arguments, KP_ARG_HELP as -KP_ARG_HELP, or -1 for a usage error (printed). */
int kp_client_args(kp_client *c, int argc, char **argv, const kp_opt *opts, const char **pos,
		   int max_pos);

/* Print 'text' (a command's usage) to stdout for --help (returns KP_EXIT_OK) or to stderr
 * for a usage error (returns KP_EXIT_USAGE). */
int kp_usage(const char *text, int help);

/* Set libcurl up and check the URL and $KAPPA_TOKEN. Returns KP_EXIT_OK, or an exit
 * status after printing why (KP_EXIT_USAGE for a bad URL or token). */
int kp_client_open(kp_client *c);
void kp_client_close(kp_client *c);

/* A new easy handle with the shared options and headers, for callers that drive their own
 * transfers (tail, import). NULL when out of memory. The caller frees it; it must not
 * outlive 'c'. */
CURL *kp_client_easy(kp_client *c);

/* One request. 'path' starts with '/' and is already escaped; 'body' is JSON or NULL.
 * Returns KP_EXIT_OK with c->status and c->resp set (any HTTP status), or KP_EXIT_ERROR
 * after printing why no answer came (cannot connect, response too large, out of memory). */
int kp_client_call(kp_client *c, const char *method, const char *path, const char *body);

/* The same, then: a 2xx answer returns KP_EXIT_OK; anything else is printed by
 * kp_client_print_error and returns KP_EXIT_ERROR. */
int kp_client_call_ok(kp_client *c, const char *method, const char *path, const char *body);

/* Print an error answer ('status', 'body' of 'len' bytes) to stderr as "kappa: CODE:
 * MESSAGE" (or the status and the start of the body when it is not a kappa error). */
void kp_client_print_error(long status, const char *body, size_t len);

/* Print why a transfer on a handle got no answer, e.g. "kappa: cannot reach URL: ...". */
void kp_client_print_transport(const kp_client *c, CURLcode rc, const char *errbuf);

/* Is this libcurl result a dropped or refused connection (worth retrying)? */
int kp_client_transient(CURLcode rc);

/* Print c->resp: the JSON as it came (one line), or with --table the array under
 * 'rows_key' as a table (NULL: the whole object as one row) with a footer naming the
 * other scalar fields. Returns an exit status. */
int kp_client_print(kp_client *c, const char *rows_key);

/* Append 's' URL-encoded to 'b'. Returns 0, or -1 when out of memory. */
int kp_client_escape(kp_client *c, kp_buf *b, const char *s);

/* Append printf output to 'b', NUL-terminated (the NUL is not counted in b->len).
 * Returns 0, or -1 when out of memory. */
int kp_buff(kp_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Parse an unsigned decimal argument (no sign, at most 19 digits). Returns 0 or -1. */
int kp_parse_u64(const char *s, unsigned long long *out);

/* Print "kappa: out of memory" and return KP_EXIT_ERROR. */
int kp_client_oom(void);

#endif
