/*
 * auth.c -- reading the auth file and finding a caller's token (see auth.h).
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "server/auth.h"

struct kp_auth {
	kp_token *t;
	size_t n;
};

static void
token_free(kp_token *t)
{
	for (size_t i = 0; i < t->nprefixes; i++)
		free(t->prefixes[i]);
	free(t->prefixes);
	free(t->subject);
}

void
kp_auth_free(kp_auth *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		token_free(&a->t[i]);
	sodium_memzero(a->t, a->n * sizeof(*a->t));
	free(a->t);
	free(a);
}

size_t
kp_auth_count(const kp_auth *a)
{
	return a ? a->n : 0;
}

static void
token_hash(const char *token, size_t len, unsigned char out[32])
{
	crypto_generichash(out, 32, (const unsigned char *)token, len, NULL, 0);
}

static int
token_char_ok(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       strchr("-._~+/=", c) != NULL;
}

/* Parse the scopes "read,append" into *out. */
static int
parse_scopes(const char *s, unsigned *out)
{
	*out = 0;
	char buf[128];
	if (strlen(s) >= sizeof(buf))
		return -1;
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save))
		if (!strcmp(w, "read"))
			*out |= KP_SCOPE_READ;
		else if (!strcmp(w, "append"))
			*out |= KP_SCOPE_APPEND;
		else if (!strcmp(w, "admin"))
			*out |= KP_SCOPE_ADMIN;
		else
			return -1;
	return *out ? 0 : -1;
}

/* Parse one non-blank line into 't'. Returns NULL or why not. */
static const char *
parse_line(char *line, kp_token *t)
{
	char *save = NULL;
	char *tok = strtok_r(line, " \t", &save);
	char *scopes = strtok_r(NULL, " \t", &save);
	if (!tok || !scopes)
		return "expected TOKEN SCOPES [STREAM-PREFIX ...]";
	size_t len = strlen(tok);
	if (len < KP_AUTH_MIN_TOKEN || len > KP_AUTH_MAX_TOKEN)
		return "a token has 16 to 256 characters";
	for (size_t i = 0; i < len; i++)
		if (!token_char_ok((unsigned char)tok[i]))
			return "a token uses letters, digits and - . _ ~ + / = only";
	if (parse_scopes(scopes, &t->scopes) < 0)
		return "scopes are a comma-separated list of read, append, admin";
	token_hash(tok, len, t->hash);
	sodium_memzero(tok, len);
	for (char *p; (p = strtok_r(NULL, " \t", &save));) {
		if (!strncmp(p, "subject=", 8)) {
			if (t->subject)
				return "a token exports at most one subject (subject=ID)";
			if (!p[8] || strlen(p + 8) > KAPPA_MAX_SUBJECT)
				return "subject=ID needs an id of 1 to 200 bytes";
			if (!(t->subject = strdup(p + 8)))
				return "out of memory";
			continue;
		}
		if (t->nprefixes == KP_AUTH_MAX_PREFIXES)
			return "too many stream prefixes (at most 64)";
		if (strlen(p) > KAPPA_MAX_STREAM)
			return "a stream prefix is at most 200 bytes";
		char **np = realloc(t->prefixes, (t->nprefixes + 1) * sizeof(*np));
		if (!np)
			return "out of memory";
		t->prefixes = np;
		if (!(t->prefixes[t->nprefixes] = strdup(p)))
			return "out of memory";
		t->nprefixes++;
	}
	return NULL;
}

int
kp_auth_load(const char *path, kp_auth **out, kappa_err *err)
{
	*out = NULL;
	FILE *f = fopen(path, "r");
	if (!f)
		return KP_ERR(err, errno == ENOENT ? KAPPA_EINVAL : KAPPA_EIO,
			      "cannot open auth file %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077)) {
		fclose(f);
		return KP_ERR(err, KAPPA_EINVAL,
			      "auth file %s is readable by group or others: chmod 600 it", path);
	}
	kp_auth *a = calloc(1, sizeof(*a));
	if (!a) {
		fclose(f);
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory");
	}
	char line[8192];
	unsigned lineno = 0;
	int rc = KAPPA_OK;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t l = strlen(line);
		if (l == sizeof(line) - 1 && line[l - 1] != '\n') {
			rc = KP_ERR(err, KAPPA_EINVAL, "%s:%u: line too long", path, lineno);
			break;
		}
		line[strcspn(line, "\r\n")] = '\0';
		char *p = line + strspn(line, " \t");
		if (!*p || *p == '#')
			continue;
		if (a->n == KP_AUTH_MAX_TOKENS) {
			rc = KP_ERR(err, KAPPA_EINVAL, "%s: more than %d tokens", path,
				    KP_AUTH_MAX_TOKENS);
			break;
		}
		kp_token *nt = realloc(a->t, (a->n + 1) * sizeof(*nt));
		if (!nt) {
			rc = KP_ERR(err, KAPPA_ENOMEM, "out of memory");
			break;
		}
		a->t = nt;
		kp_token *t = &a->t[a->n++];
		memset(t, 0, sizeof(*t));
		t->line = lineno;
		const char *why = parse_line(p, t);
		if (why) {
			rc = KP_ERR(err, KAPPA_EINVAL, "%s:%u: %s", path, lineno, why);
			break;
		}
		for (size_t i = 0; i + 1 < a->n; i++)
			if (!sodium_memcmp(a->t[i].hash, t->hash, 32)) {
				rc = KP_ERR(err, KAPPA_EINVAL, "%s:%u: the token of line %u again",
					    path, lineno, a->t[i].line);
				break;
			}
		if (rc)
			break;
	}
	sodium_memzero(line, sizeof(line));
	if (rc == KAPPA_OK && ferror(f))
		rc = KP_ERR(err, KAPPA_EIO, "cannot read auth file %s", path);
	fclose(f);
	if (rc == KAPPA_OK && a->n == 0)
		rc = KP_ERR(err, KAPPA_EINVAL, "auth file %s lists no token", path);
	if (rc) {
		kp_auth_free(a);
		return rc;
	}
	*out = a;
	return KAPPA_OK;
}

const kp_token *
kp_auth_find(const kp_auth *a, const char *token, size_t len)
{
	if (!a || len < KP_AUTH_MIN_TOKEN || len > KP_AUTH_MAX_TOKEN)
		return NULL;
	unsigned char h[32];
	token_hash(token, len, h);
	const kp_token *found = NULL;
	for (size_t i = 0; i < a->n; i++) /* no early exit: time does not depend on which */
		if (!sodium_memcmp(a->t[i].hash, h, 32))
			found = &a->t[i];
	return found;
}

int
kp_token_has(const kp_token *t, unsigned scope)
{
	return t && ((t->scopes & scope) || (t->scopes & KP_SCOPE_ADMIN));
}
