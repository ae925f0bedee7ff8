/*
 * cmd_append.c -- `kappa append STREAM TYPE JSON`: one event appended over HTTP
 * (POST /streams/STREAM), with the expected version, request id, subject, metadata and
 * claims of the HTTP API. Prints the server's answer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"

static const char usage_text[] =
	"usage: kappa append STREAM TYPE JSON [--expect V|any|no_stream|exists]\n"
	"                    [--request-id ID] [--subject S] [--metadata JSON]\n"
	"                    [--claim KEY]... [--release KEY]... [--url URL] [--table]\n"
	"\n"
	"Append one event of type TYPE with data JSON (an object) to STREAM.\n"
	"  --expect V        the stream's current version must be V (a number), or any,\n"
	"                    no_stream (it must not exist) or exists\n"
	"  --request-id ID   retrying with the same ID appends nothing twice\n"
	"  --subject S       the data subject the event is about (for forgetting)\n"
	"  --metadata JSON   an object stored beside the data\n"
	"  --claim KEY       take a uniqueness claim; --release KEY frees one\n"
	"  --url URL         the server (default $KAPPA_URL or " KP_DEFAULT_URL ")\n"
	"  --table           a table instead of JSON\n"
	"The token in $KAPPA_TOKEN is sent as a bearer token.\n"
	"Exit: 0 appended (or deduplicated), 1 error from the server, 2 usage.\n";

/* Parse 'text' as a JSON object for option 'what'. NULL (after a message) if it is not. */
static json_t *
json_object_arg(const char *what, const char *text)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	if (!json_is_object(j)) {
		fprintf(stderr, "kappa append: %s must be a JSON object%s%s\n", what, j ? "" : ": ",
			j ? "" : je.text);
		json_decref(j);
		return NULL;
	}
	return j;
}

/* The expected_version of --expect 'v', or NULL when it is not one. */
static json_t *
expect_arg(const char *v)
{
	unsigned long long n;
	if (!strcmp(v, "any") || !strcmp(v, "no_stream") || !strcmp(v, "exists"))
		return json_string(v);
	if (!kp_parse_u64(v, &n) && n <= (unsigned long long)INT64_MAX)
		return json_integer((json_int_t)n);
	return NULL;
}

/* The request body; NULL after a message (a usage error) or when out of memory ('*oom'). */
static json_t *
build(const char *type, const char *data, const char *expect, const char *rid, const char *subject,
      const char *meta, const char **claims, size_t nclaims, const char **releases,
      size_t nreleases, int *oom)
{
	*oom = 0;
	json_t *d = json_object_arg("JSON", data);
	json_t *m = meta ? json_object_arg("--metadata", meta) : NULL;
	json_t *exp = expect ? expect_arg(expect) : NULL;
	if (!d || (meta && !m) || (expect && !exp)) {
		if (expect && !exp)
			fprintf(stderr, "kappa append: --expect takes a version number, any, "
					"no_stream or exists\n");
		json_decref(d);
		json_decref(m);
		json_decref(exp);
		return NULL;
	}
	json_t *ev = json_pack("{s:s, s:o}", "type", type, "data", d);
	json_t *body = ev ? json_pack("{s:[o]}", "events", ev) : NULL;
	int bad = !body;
	if (!bad && subject)
		bad |= json_object_set_new(json_array_get(json_object_get(body, "events"), 0),
					   "subject", json_string(subject));
	if (!bad && m) {
		bad |= json_object_set_new(json_array_get(json_object_get(body, "events"), 0),
					   "metadata", m);
		m = NULL;
	}
	if (!bad && exp) {
		bad |= json_object_set_new(body, "expected_version", exp);
		exp = NULL;
	}
	if (!bad && rid)
		bad |= json_object_set_new(body, "request_id", json_string(rid));
	if (!bad && nclaims + nreleases) {
		json_t *cl = json_array();
		bad |= !cl || json_object_set_new(body, "claims", cl);
		for (size_t i = 0; !bad && i < nclaims + nreleases; i++) {
			int rel = i >= nclaims;
			bad |= json_array_append_new(
				cl, json_pack("{s:s}", rel ? "release" : "claim",
					      rel ? releases[i - nclaims] : claims[i]));
		}
	}
	json_decref(m);
	json_decref(exp);
	if (bad) {
		json_decref(body);
		*oom = 1;
		return NULL;
	}
	return body;
}

/* Is every argument that goes into the body as a string valid UTF-8? */
static int
texts_ok(const char **pos, const char *rid, const char *subject, const char **claims,
	 size_t nclaims, const char **releases, size_t nreleases)
{
	const char *one[] = {pos[1], rid, subject};
	for (size_t i = 0; i < 3 + nclaims + nreleases; i++) {
		const char *s = i < 3		  ? one[i]
				: i < 3 + nclaims ? claims[i - 3]
						  : releases[i - 3 - nclaims];
		json_t *j = s ? json_string(s) : NULL;
		if (s && !j) {
			fprintf(stderr, "kappa append: '%s' is not valid UTF-8\n", s);
			return 0;
		}
		json_decref(j);
	}
	return 1;
}

int
kp_cmd_append(int argc, char **argv)
{
	kp_client c;
	kp_client_defaults(&c);
	const char *expect = NULL, *rid = NULL, *subject = NULL, *meta = NULL, *pos[3];
	const char **claims = calloc((size_t)argc, sizeof(char *));
	const char **releases = calloc((size_t)argc, sizeof(char *));
	size_t nclaims = 0, nreleases = 0;
	if (!claims || !releases) {
		free(claims);
		free(releases);
		return kp_client_oom();
	}
	const kp_opt opts[] = {{"--expect", &expect, NULL, NULL, NULL},
			       {"--request-id", &rid, NULL, NULL, NULL},
			       {"--subject", &subject, NULL, NULL, NULL},
			       {"--metadata", &meta, NULL, NULL, NULL},
			       {"--claim", NULL, claims, &nclaims, NULL},
			       {"--release", NULL, releases, &nreleases, NULL},
			       {NULL, NULL, NULL, NULL, NULL}};
	int n = kp_client_args(&c, argc, argv, opts, pos, 3), rc;
	json_t *body = NULL;
	char *text = NULL;
	kp_buf path = KP_BUF_INIT;
	if (n == -KP_ARG_HELP) {
		rc = kp_usage(usage_text, 1);
		goto out;
	}
	if (n != 3) {
		if (n >= 0)
			fprintf(stderr, "kappa append: needs STREAM, TYPE and JSON\n");
		rc = kp_usage(usage_text, 0);
		goto out;
	}
	if (!texts_ok(pos, rid, subject, claims, nclaims, releases, nreleases)) {
		rc = KP_EXIT_USAGE;
		goto out;
	}
	int oom;
	body = build(pos[1], pos[2], expect, rid, subject, meta, claims, nclaims, releases,
		     nreleases, &oom);
	if (!body) {
		rc = oom ? kp_client_oom() : KP_EXIT_USAGE;
		goto out;
	}
	if ((rc = kp_client_open(&c)))
		goto out;
	if (!(text = json_dumps(body, JSON_COMPACT)) || kp_buff(&path, "/streams/") ||
	    kp_client_escape(&c, &path, pos[0])) {
		rc = kp_client_oom();
		goto out;
	}
	rc = kp_client_call_ok(&c, "POST", (const char *)path.data, text);
	if (!rc)
		rc = kp_client_print(&c, NULL);
out:
	kp_buf_release(&path);
	free(text);
	json_decref(body);
	free(claims);
	free(releases);
	kp_client_close(&c);
	return rc;
}
