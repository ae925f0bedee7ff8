/*
 * auth.h -- bearer tokens for `kappa serve --auth-file FILE`.
 *
 * The file lists one token per line: TOKEN SCOPES [STREAM-PREFIX ...], where SCOPES is a
 * comma-separated subset of read, append and admin (admin implies the others). Prefixes,
 * when given, limit the streams the token may read and append to. An item subject=ID lets
 * the token export that one data subject (GET /subjects/ID/export) without the admin scope:
 * a token for the person the data is about. Blank lines and lines
 * starting with '#' are ignored. Tokens are kept only as BLAKE2b hashes and compared in
 * constant time.
 */
#ifndef KP_AUTH_H
#define KP_AUTH_H

#include <stddef.h>

#include "kappa.h"

#define KP_SCOPE_READ 1u
#define KP_SCOPE_APPEND 2u
#define KP_SCOPE_ADMIN 4u

#define KP_AUTH_MIN_TOKEN 16
#define KP_AUTH_MAX_TOKEN 256
#define KP_AUTH_MAX_TOKENS 10000
#define KP_AUTH_MAX_PREFIXES 64

typedef struct kp_token {
	unsigned char hash[32];
	unsigned scopes;
	char **prefixes; /* NULL: every stream */
	size_t nprefixes;
	char *subject; /* subject=ID: the one data subject it may export, or NULL */
	unsigned line; /* in the auth file, for logs */
} kp_token;

typedef struct kp_auth kp_auth;

/* Load 'path'. Errors: KAPPA_EINVAL (syntax: the message names the line; a file readable by
 * group or others), KAPPA_EIO, KAPPA_ENOMEM. */
int kp_auth_load(const char *path, kp_auth **out, kappa_err *err);
void kp_auth_free(kp_auth *a);
size_t kp_auth_count(const kp_auth *a);

/* The token whose text is 'token' (len bytes), or NULL. */
const kp_token *kp_auth_find(const kp_auth *a, const char *token, size_t len);

/* Does 't' hold 'scope' (admin holds every scope)? */
int kp_token_has(const kp_token *t, unsigned scope);

#endif
