/*
 * http_parse.h -- one HTTP/1.x request as it is read: the request line, headers, query
 * arguments and body, parsed by nodejs/http-parser (strict mode) plus kappa's own framing
 * checks. Pure: no sockets, no threads; fed bytes in pieces of any size (fuzz/fuzz_http.c).
 *
 * A connection owns one kp_hreq and reuses it for each of its requests: kp_hreq_feed
 * stops at the end of the headers (KP_HREQ_HEADERS) and at the end of the message
 * (KP_HREQ_DONE), so nothing of the next pipelined request is parsed before
 * kp_hreq_next is called.
 */
#ifndef KP_HTTP_PARSE_H
#define KP_HTTP_PARSE_H

#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define KP_HREQ_MAX_ARGS 512 /* query arguments of one request; beyond: 431 */

enum {
	KP_HREQ_MORE = 0, /* all bytes taken; the request needs more */
	KP_HREQ_HEADERS,  /* the headers are complete (and passed the checks) */
	KP_HREQ_DONE,	  /* the message (headers and body) is complete */
	KP_HREQ_ERROR	  /* refuse with err_status / err_msg and close */
};

typedef struct kp_hreq {
	http_parser p;
	unsigned max_header;
	uint64_t max_body;
	kp_buf hb;	    /* raw URL, header names and values, each NUL-terminated */
	kp_buf ab;	    /* the unescaped path and query arguments, each NUL-terminated */
	uint32_t (*hdr)[2]; /* offsets of a header's name and value in hb */
	size_t nhdr, hcap;
	uint32_t (*arg)[2]; /* offsets of an argument's key and value in ab (UINT32_MAX: none) */
	size_t narg, acap;
	char *body;
	size_t blen, bcap;
	int last;  /* the last piece seen: 0 none, 1 URL, 2 header name, 3 header value */
	int event; /* set by the parser's callbacks */
	unsigned err_status;
	const char *err_msg;
	unsigned n_cl, n_te, n_host;
	int keep_alive, has_body, expect_continue, head, nul_escape;
	int in_body; /* the headers are done: trailer fields are ignored */
} kp_hreq;

void kp_hreq_init(kp_hreq *q, unsigned max_header, uint64_t max_body);
void kp_hreq_release(kp_hreq *q);
/* Parse up to 'len' bytes; *used is how many were taken. Returns a KP_HREQ_* event. After
 * KP_HREQ_ERROR the connection must close: nothing more is parsed. */
int kp_hreq_feed(kp_hreq *q, const char *data, size_t len, size_t *used);
/* Forget the request (after KP_HREQ_DONE) and get ready for the connection's next one. */
void kp_hreq_next(kp_hreq *q);
/* Has the request started (any byte of it parsed)? */
int kp_hreq_started(const kp_hreq *q);

const char *kp_hreq_method(const kp_hreq *q);
const char *kp_hreq_path(const kp_hreq *q); /* unescaped, without the query */
/* The first header called 'name' (any case), or NULL. */
const char *kp_hreq_header(const kp_hreq *q, const char *name);
/* The first query argument called 'name', or NULL (also when it has no '='). */
const char *kp_hreq_arg(const kp_hreq *q, const char *name);
/* Call fn for each query argument (v NULL when it has no '='); returns how many there are.
 * fn returns nonzero to stop. */
size_t kp_hreq_args(const kp_hreq *q, int (*fn)(void *ctx, const char *k, const char *v),
		    void *ctx);
/* Content-Length, or UINT64_MAX when there is none. */
uint64_t kp_hreq_content_length(const kp_hreq *q);

#endif
