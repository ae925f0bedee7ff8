/*
 * client.c -- the HTTP side shared by the CLI's client commands (see client.h): options,
 * libcurl handles with the bearer token, bounded response bodies, error answers, and
 * printing answers as JSON or tables. Commands build paths and bodies; this file sends them.
 */
#include "cli/client.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/table.h"
#include "kappa.h"

void
kp_client_defaults(kp_client *c)
{
	memset(c, 0, sizeof(*c));
	const char *env = getenv("KAPPA_URL");
	snprintf(c->url, sizeof(c->url), "%s", env && *env ? env : KP_DEFAULT_URL);
}

int
kp_client_arg(kp_client *c, int argc, char **argv, int *i)
{
	const char *a = argv[*i];
	if (!strcmp(a, "--help") || !strcmp(a, "-h"))
		return KP_ARG_HELP;
	if (!strcmp(a, "--table")) {
		c->table = 1;
		return 1;
	}
	if (!strcmp(a, "--url")) {
		if (*i + 1 >= argc)
			return -1;
		snprintf(c->url, sizeof(c->url), "%s", argv[++*i]);
		return 1;
	}
	return 0;
}

int
kp_client_args(kp_client *c, int argc, char **argv, const kp_opt *opts, const char **pos,
	       int max_pos)
{
	int npos = 0, only_pos = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (only_pos || a[0] != '-' || !a[1]) {
			if (npos == max_pos) {
				fprintf(stderr, "kappa: unexpected argument '%s'\n", a);
				return -1;
			}
			pos[npos++] = a;
			continue;
		}
		if (!strcmp(a, "--")) {
			only_pos = 1;
			continue;
		}
		int r = kp_client_arg(c, argc, argv, &i);
		if (r == KP_ARG_HELP)
			return -KP_ARG_HELP;
		if (r < 0) {
			fprintf(stderr, "kappa: %s needs a value\n", a);
			return -1;
		}
		if (r)
			continue;
		const kp_opt *o = opts;
		while (o && o->name && strcmp(o->name, a))
			o++;
		if (!o || !o->name) {
			fprintf(stderr, "kappa: unknown option '%s'\n", a);
			return -1;
		}
		if (o->flag) {
			*o->flag = 1;
			continue;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "kappa: %s needs a value\n", a);
			return -1;
		}
		if (o->many)
			o->many[(*o->count)++] = argv[++i];
		else
			*o->value = argv[++i];
	}
	return npos;
}

int
kp_usage(const char *text, int help)
{
	fputs(text, help ? stdout : stderr);
	return help ? KP_EXIT_OK : KP_EXIT_USAGE;
}

int
kp_client_oom(void)
{
	fprintf(stderr, "kappa: out of memory\n");
	return KP_EXIT_ERROR;
}

int
kp_client_open(kp_client *c)
{
	size_t n = strlen(c->url);
	while (n && c->url[n - 1] == '/')
		c->url[--n] = '\0';
	if (strncmp(c->url, "http://", 7) && strncmp(c->url, "https://", 8)) {
		fprintf(stderr, "kappa: --url must start with http:// or https://, got '%s'\n",
			c->url);
		return KP_EXIT_USAGE;
	}
	if (n >= sizeof(c->url) - 1 || strpbrk(c->url, " \r\n")) {
		fprintf(stderr, "kappa: --url is not a URL: '%s'\n", c->url);
		return KP_EXIT_USAGE;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "kappa: cannot initialise libcurl\n");
		return KP_EXIT_ERROR;
	}
	c->curl_init = 1;
	const char *token = getenv("KAPPA_TOKEN");
	char auth[1024];
	if (token && *token) {
		if (strpbrk(token, "\r\n") || strlen(token) > 900) {
			fprintf(stderr,
				"kappa: KAPPA_TOKEN must be one line of at most 900 bytes\n");
			return KP_EXIT_USAGE;
		}
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	}
	const char *lines[] = {"Accept: application/json", "Content-Type: application/json",
			       "Expect:", token && *token ? auth : NULL};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]) && lines[i]; i++) {
		struct curl_slist *h = curl_slist_append(c->headers, lines[i]);
		if (!h)
			return kp_client_oom();
		c->headers = h;
	}
	if (!(c->curl = kp_client_easy(c)))
		return kp_client_oom();
	return KP_EXIT_OK;
}

void
kp_client_close(kp_client *c)
{
	if (c->curl)
		curl_easy_cleanup(c->curl);
	c->curl = NULL;
	curl_slist_free_all(c->headers);
	c->headers = NULL;
	kp_buf_release(&c->resp);
	if (c->curl_init)
		curl_global_cleanup();
	c->curl_init = 0;
}

CURL *
kp_client_easy(kp_client *c)
{
	CURL *h = curl_easy_init();
	if (!h)
		return NULL;
	int bad = 0;
	bad |= curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_USERAGENT, "kappa/" KAPPA_VERSION_STRING) != CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
	bad |= curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
#endif
	if (bad) {
		curl_easy_cleanup(h);
		return NULL;
	}
	return h;
}

static size_t
on_body(char *p, size_t size, size_t n, void *ctx)
{
	kp_client *c = ctx;
	size_t len = size * n;
	if (len > KP_RESPONSE_MAX - c->resp.len) {
		c->too_big = 1;
		return 0;
	}
	if (kp_buf_append(&c->resp, p, len)) {
		c->oom = 1;
		return 0;
	}
	return len;
}

int
kp_client_transient(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
	       rc == CURLE_GOT_NOTHING || rc == CURLE_OPERATION_TIMEDOUT ||
	       rc == CURLE_PARTIAL_FILE;
}

void
kp_client_print_transport(const kp_client *c, CURLcode rc, const char *errbuf)
{
	const char *why = errbuf && *errbuf ? errbuf : curl_easy_strerror(rc);
	if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST)
		fprintf(stderr, "kappa: cannot connect to %s: %s (is `kappa serve` running?)\n",
			c->url, why);
	else
		fprintf(stderr, "kappa: no answer from %s: %s\n", c->url, why);
}

int
kp_client_call(kp_client *c, const char *method, const char *path, const char *body)
{
	kp_buf url = KP_BUF_INIT;
	if (kp_buff(&url, "%s%s", c->url, path))
		return kp_client_oom();
	c->resp.len = 0;
	c->status = 0;
	c->too_big = c->oom = 0;
	c->errbuf[0] = '\0';
	CURL *h = c->curl;
	int bad = 0;
	bad |= curl_easy_setopt(h, CURLOPT_URL, (char *)url.data) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK;
	bad |= curl_easy_setopt(h, CURLOPT_WRITEDATA, c) != CURLE_OK;
	if (body) {
		bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, body) != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body)) !=
		       CURLE_OK;
	} else if (!strcmp(method, "POST")) {
		bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDS, "") != CURLE_OK;
		bad |= curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0) != CURLE_OK;
	} else {
		bad |= curl_easy_setopt(h, CURLOPT_HTTPGET, 1L) != CURLE_OK;
	}
	bad |= curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST,
				strcmp(method, "GET") && strcmp(method, "POST") ? method : NULL) !=
	       CURLE_OK;
	if (bad) {
		kp_buf_release(&url);
		fprintf(stderr, "kappa: cannot set up the request to %s\n", c->url);
		return KP_EXIT_ERROR;
	}
	CURLcode rc = curl_easy_perform(h);
	kp_buf_release(&url);
	if (c->too_big) {
		fprintf(stderr, "kappa: the answer from %s%s is larger than %zu MiB\n", c->url,
			path, KP_RESPONSE_MAX >> 20);
		return KP_EXIT_ERROR;
	}
	if (c->oom || kp_buf_reserve(&c->resp, 1))
		return kp_client_oom();
	c->resp.data[c->resp.len] = '\0';
	if (rc != CURLE_OK) {
		kp_client_print_transport(c, rc, c->errbuf);
		return KP_EXIT_ERROR;
	}
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status) != CURLE_OK) {
		fprintf(stderr, "kappa: no HTTP status from %s\n", c->url);
		return KP_EXIT_ERROR;
	}
	return KP_EXIT_OK;
}

int
kp_client_call_ok(kp_client *c, const char *method, const char *path, const char *body)
{
	int rc = kp_client_call(c, method, path, body);
	if (rc)
		return rc;
	if (c->status < 200 || c->status > 299) {
		kp_client_print_error(c->status, (const char *)c->resp.data, c->resp.len);
		return KP_EXIT_ERROR;
	}
	return KP_EXIT_OK;
}

void
kp_client_print_error(long status, const char *body, size_t len)
{
	json_t *j = body ? json_loadb(body, len, 0, NULL) : NULL;
	json_t *e = json_object_get(j, "error");
	json_t *code = json_object_get(e, "code"), *msg = json_object_get(e, "message");
	if (json_is_string(code) && json_is_string(msg)) {
		fprintf(stderr, "kappa: %s: %s\n", json_string_value(code), json_string_value(msg));
	} else {
		size_t n = len > 200 ? 200 : len;
		while (n && (body[n - 1] == '\n' || body[n - 1] == '\r'))
			n--;
		fprintf(stderr, "kappa: http_%ld: %.*s%s\n", status, (int)n, body ? body : "",
			n ? "" : "(no error message)");
	}
	json_decref(j);
}

/* " key: value" for every field of 'o' that is not an array or object. */
static int
footer(json_t *o, size_t rows)
{
	printf("(%zu row%s", rows, rows == 1 ? "" : "s");
	const char *key;
	json_t *v;
	json_object_foreach(o, key, v)
	{
		if (json_is_array(v) || json_is_object(v))
			continue;
		char *s = kp_table_cell(v);
		if (!s)
			return -1;
		printf(", %s: %s", key, s);
		free(s);
	}
	printf(")\n");
	return 0;
}

int
kp_client_print(kp_client *c, const char *rows_key)
{
	const char *body = (const char *)c->resp.data;
	if (!c->table) {
		size_t n = c->resp.len;
		if (n)
			fwrite(body, 1, n, stdout);
		if (!n || body[n - 1] != '\n')
			fputc('\n', stdout);
		return fflush(stdout) ? KP_EXIT_ERROR : KP_EXIT_OK;
	}
	json_error_t je;
	json_t *o = json_loadb(body ? body : "", c->resp.len, 0, &je);
	if (!o) {
		fprintf(stderr, "kappa: the answer is not JSON: %s\n", je.text);
		return KP_EXIT_ERROR;
	}
	json_t *rows = rows_key ? json_object_get(o, rows_key) : json_pack("[O]", o);
	int rc = KP_EXIT_OK;
	kp_table t;
	kp_table_init(&t);
	if (!rows_key && !rows) {
		rc = kp_client_oom();
	} else if (!json_is_array(rows)) {
		fprintf(stderr, "kappa: the answer has no \"%s\" array\n",
			rows_key ? rows_key : "rows");
		rc = KP_EXIT_ERROR;
	} else if (json_array_size(rows) && kp_table_print(&t, rows, stdout)) {
		rc = kp_client_oom();
	} else if (rows_key && footer(o, json_array_size(rows))) {
		rc = kp_client_oom();
	}
	kp_table_release(&t);
	if (!rows_key)
		json_decref(rows);
	json_decref(o);
	if (fflush(stdout))
		rc = KP_EXIT_ERROR;
	return rc;
}

int
kp_client_escape(kp_client *c, kp_buf *b, const char *s)
{
	char *e = curl_easy_escape(c->curl, s, (int)strlen(s));
	if (!e)
		return -1;
	int rc = kp_buff(b, "%s", e);
	curl_free(e);
	return rc;
}

int
kp_buff(kp_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || kp_buf_reserve(b, (size_t)n + 1))
		return -1;
	va_start(ap, fmt);
	vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

int
kp_parse_u64(const char *s, unsigned long long *out)
{
	size_t n = strlen(s);
	if (!n || n > 19 || strspn(s, "0123456789") != n)
		return -1;
	*out = strtoull(s, NULL, 10);
	return 0;
}
