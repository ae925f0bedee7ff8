/*
 * cmd_query.c -- `kappa query VIEW NAME [k=v ...]`: run a view's named query over HTTP
 * (GET /views/VIEW/queries/NAME?k=v&min_position=P). Prints {"rows": [...], "position": P}
 * or the rows as a table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char usage_text[] =
	"usage: kappa query VIEW NAME [k=v ...] [--min-position P] [--timeout-ms MS]\n"
	"                   [--url URL] [--table]\n"
	"\n"
	"Run the named query NAME of VIEW with parameters k=v (numbers are passed as numbers).\n"
	"  --min-position P  wait until the view has applied position P (read your writes)\n"
	"  --timeout-ms MS   how long the server may wait for it (server default 2000)\n"
	"  --url URL         the server (default $KAPPA_URL or " KP_DEFAULT_URL ")\n"
	"  --table           the rows as a table instead of JSON\n"
	"Exit: 0 ok, 1 error from the server, 2 usage.\n";

/* Append "&k=v" (or "?k=v" first) with both sides URL-encoded. */
static int
add_param(kp_client *c, kp_buf *path, int *first, const char *k, size_t klen, const char *v)
{
	char key[256];
	if (klen >= sizeof(key))
		return -2;
	memcpy(key, k, klen);
	key[klen] = '\0';
	int rc = kp_buff(path, "%c", *first ? '?' : '&') || kp_client_escape(c, path, key) ||
		 kp_buff(path, "=") || kp_client_escape(c, path, v);
	*first = 0;
	return rc ? -1 : 0;
}

int
kp_cmd_query(int argc, char **argv)
{
	kp_client c;
	kp_client_defaults(&c);
	const char *minpos = NULL, *timeout = NULL;
	const char **pos = calloc((size_t)argc + 1, sizeof(char *));
	if (!pos)
		return kp_client_oom();
	const kp_opt opts[] = {{"--min-position", &minpos, NULL, NULL, NULL},
			       {"--timeout-ms", &timeout, NULL, NULL, NULL},
			       {NULL, NULL, NULL, NULL, NULL}};
	int n = kp_client_args(&c, argc, argv, opts, pos, argc), rc = KP_EXIT_OK;
	unsigned long long u;
	kp_buf path = KP_BUF_INIT;
	if (n == -KP_ARG_HELP) {
		rc = kp_usage(usage_text, 1);
		goto out;
	}
	if (n < 2 || (minpos && kp_parse_u64(minpos, &u)) ||
	    (timeout && kp_parse_u64(timeout, &u))) {
		if (n >= 0)
			fprintf(stderr, n < 2 ? "kappa query: needs VIEW and NAME\n"
					      : "kappa query: --min-position and --timeout-ms take "
						"a number\n");
		rc = kp_usage(usage_text, 0);
		goto out;
	}
	for (int i = 2; i < n; i++) {
		const char *eq = strchr(pos[i], '=');
		if (!eq || eq == pos[i]) {
			fprintf(stderr, "kappa query: a parameter is KEY=VALUE, not '%s'\n",
				pos[i]);
			rc = kp_usage(usage_text, 0);
			goto out;
		}
	}
	if ((rc = kp_client_open(&c)))
		goto out;
	int first = 1;
	int bad = kp_buff(&path, "/views/") || kp_client_escape(&c, &path, pos[0]) ||
		  kp_buff(&path, "/queries/") || kp_client_escape(&c, &path, pos[1]);
	for (int i = 2; i < n && !bad; i++) {
		const char *eq = strchr(pos[i], '=');
		int r = add_param(&c, &path, &first, pos[i], (size_t)(eq - pos[i]), eq + 1);
		if (r == -2) {
			fprintf(stderr, "kappa query: parameter name too long: %s\n", pos[i]);
			rc = KP_EXIT_USAGE;
			goto out;
		}
		bad = r != 0;
	}
	if (!bad && minpos)
		bad = add_param(&c, &path, &first, "min_position", 12, minpos) != 0;
	if (!bad && timeout)
		bad = add_param(&c, &path, &first, "timeout_ms", 10, timeout) != 0;
	if (bad) {
		rc = kp_client_oom();
		goto out;
	}
	rc = kp_client_call_ok(&c, "GET", (const char *)path.data, NULL);
	if (!rc)
		rc = kp_client_print(&c, "rows");
out:
	kp_buf_release(&path);
	free(pos);
	kp_client_close(&c);
	return rc;
}
