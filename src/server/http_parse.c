/*
 * http_parse.c -- an HTTP/1.x request read in pieces: nodejs/http-parser does the syntax
 * (request line, headers, Content-Length, chunked bodies, keep-alive); this file keeps the
 * pieces, splits and unescapes the URL and adds kappa's checks: the request smuggling shapes
 * (Content-Length with Transfer-Encoding, two Content-Lengths, Transfer-Encoding in
 * HTTP/1.0, two Hosts), the header size limit (431), the body limit (413), %00 in the URL.
 *
 * Pure: no I/O, no globals but the parser's constant settings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/http_parse.h"
#include "server/server_int.h"

#define NONE UINT32_MAX

static const char *
framing(kp_hreq *q)
{
	unsigned cl = 0, te = 0, host = 0;
	for (size_t i = 0; i < q->nhdr; i++) {
		const char *k = (const char *)q->hb.data + q->hdr[i][0];
		cl += !strcasecmp(k, "Content-Length");
		te += !strcasecmp(k, "Transfer-Encoding");
		host += !strcasecmp(k, "Host");
	}
	if (cl && te)
		return "a request cannot have both Content-Length and Transfer-Encoding";
	if (cl > 1)
		return "a request cannot have more than one Content-Length";
	if (te && q->p.http_major == 1 && q->p.http_minor == 0)
		return "an HTTP/1.0 request cannot have Transfer-Encoding";
	if (host > 1)
		return "a request cannot have more than one Host";
	return NULL;
}

static int
fail(kp_hreq *q, unsigned status, const char *msg)
{
	q->err_status = status;
	q->err_msg = msg;
	q->event = KP_HREQ_ERROR;
	return -1;
}

static int
put(kp_hreq *q, const char *p, size_t n)
{
	if (q->hb.len + n > q->max_header)
		return fail(q, 431, "the request line and headers are over the limit");
	if (kp_buf_append(&q->hb, p, n))
		return fail(q, 503, "out of memory");
	return 0;
}

/* NUL-terminate the piece being read (a header name without a value gets ""). */
static int
end_piece(kp_hreq *q)
{
	if (q->last == 0)
		return 0;
	while (q->last == 3 && q->hb.len > q->hdr[q->nhdr - 1][1] &&
	       (q->hb.data[q->hb.len - 1] == ' ' || q->hb.data[q->hb.len - 1] == '\t'))
		q->hb.len--; /* trailing whitespace is not part of a value */
	if (put(q, "", 1))
		return -1;
	if (q->last == 2) {
		q->hdr[q->nhdr - 1][1] = (uint32_t)q->hb.len;
		if (put(q, "", 1))
			return -1;
	}
	q->last = 0;
	return 0;
}

static int
on_begin(http_parser *p)
{
	kp_hreq *q = p->data;
	q->last = 0;
	return 0;
}

static int
on_url(http_parser *p, const char *at, size_t n)
{
	kp_hreq *q = p->data;
	q->last = 1;
	return put(q, at, n);
}

/* RFC 9110 5.6.2 token characters. The library as Debian builds it (not HTTP_PARSER_STRICT)
 * and takes "Transfer-Encoding : chunked" as a header named "Transfer-Encoding ", which a
 * proxy in front may read otherwise: such a name is refused here. */
static int
is_tchar(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int
on_field(http_parser *p, const char *at, size_t n)
{
	kp_hreq *q = p->data;
	if (q->in_body)
		return 0; /* a chunked body's trailer fields are not kept */
	for (size_t i = 0; i < n; i++)
		if (!is_tchar((unsigned char)at[i]))
			return fail(q, 400, "a header name holds a character a token cannot have");
	if (q->last != 2) {
		if (end_piece(q))
			return -1;
		if (q->nhdr == q->hcap) {
			size_t nc = q->hcap ? q->hcap * 2 : 16;
			void *nh = realloc(q->hdr, nc * sizeof(*q->hdr));
			if (!nh)
				return fail(q, 503, "out of memory");
			q->hdr = nh;
			q->hcap = nc;
		}
		q->hdr[q->nhdr][0] = (uint32_t)q->hb.len;
		q->hdr[q->nhdr++][1] = NONE;
		q->last = 2;
	}
	return put(q, at, n);
}

static int
on_value(http_parser *p, const char *at, size_t n)
{
	kp_hreq *q = p->data;
	if (q->in_body)
		return 0;
	if (q->last != 3) {
		if (q->last != 2 || put(q, "", 1))
			return q->last != 2 ? fail(q, 400, "a header value without a name") : -1;
		q->hdr[q->nhdr - 1][1] = (uint32_t)q->hb.len;
		q->last = 3;
	}
	return put(q, at, n);
}

/* Add one unescaped argument 'k' (and 'v', or NULL) to ab. */
static int
add_arg(kp_hreq *q, char *k, char *v)
{
	if (q->narg == KP_HREQ_MAX_ARGS)
		return fail(q, 431, "the request line and headers are over the limit");
	if (q->narg == q->acap) {
		size_t nc = q->acap ? q->acap * 2 : 16;
		void *na = realloc(q->arg, nc * sizeof(*q->arg));
		if (!na)
			return fail(q, 503, "out of memory");
		q->arg = na;
		q->acap = nc;
	}
	int nul = 0, nul2 = 0;
	for (char *s = k; *s; s++)
		*s = *s == '+' ? ' ' : *s;
	kp_url_unescape(k, &nul);
	q->arg[q->narg][0] = (uint32_t)(k - (char *)q->ab.data);
	q->arg[q->narg][1] = NONE;
	if (v) {
		for (char *s = v; *s; s++)
			*s = *s == '+' ? ' ' : *s;
		kp_url_unescape(v, &nul2);
		q->arg[q->narg][1] = (uint32_t)(v - (char *)q->ab.data);
	}
	q->nul_escape |= nul | nul2;
	q->narg++;
	return 0;
}

/* The URL (the first piece of hb) into ab: the path, then key/value pairs, unescaped. */
static int
split_url(kp_hreq *q)
{
	const char *url = (const char *)q->hb.data;
	size_t n = strlen(url);
	q->ab.len = 0;
	if (kp_buf_reserve(&q->ab, n + 2))
		return fail(q, 503, "out of memory");
	char *a = (char *)q->ab.data;
	memcpy(a, url, n + 1);
	char *query = strchr(a, '?');
	if (query)
		*query++ = '\0';
	int nul = 0;
	kp_url_unescape(a, &nul);
	q->nul_escape = nul;
	q->ab.len = n + 1;
	for (char *s = query; s && *s;) {
		char *amp = strchr(s, '&');
		if (amp)
			*amp = '\0';
		if (*s) {
			char *eq = strchr(s, '=');
			if (eq)
				*eq++ = '\0';
			if (add_arg(q, s, eq))
				return -1;
		}
		s = amp ? amp + 1 : NULL;
	}
	return 0;
}

static int
on_headers(http_parser *p)
{
	kp_hreq *q = p->data;
	if (end_piece(q))
		return -1;
	if (p->http_major == 0)
		return fail(q, 400, "the request line has no HTTP version");
	if (p->http_major != 1)
		return fail(q, 505, "kappa speaks HTTP/1.0 and HTTP/1.1");
	const char *why = framing(q);
	if (why)
		return fail(q, 400, why);
	if (!q->hb.len || split_url(q))
		return q->event == KP_HREQ_ERROR ? -1 : fail(q, 400, "a request needs a URL");
	/* The limit counts what the request is made of, as parsed: path, header names and
	 * values, argument keys and values. */
	size_t bytes = strlen(kp_hreq_path(q));
	for (size_t i = 0; i < q->nhdr; i++)
		bytes += strlen((char *)q->hb.data + q->hdr[i][0]) +
			 strlen((char *)q->hb.data + q->hdr[i][1]) + 4;
	for (size_t i = 0; i < q->narg; i++)
		bytes += strlen((char *)q->ab.data + q->arg[i][0]) + 4 +
			 (q->arg[i][1] == NONE ? 0 : strlen((char *)q->ab.data + q->arg[i][1]));
	if (bytes > q->max_header)
		return fail(q, 431, "the request line and headers are over the limit");
	if (q->nul_escape)
		return fail(q, 400, "the URL holds a NUL byte (%00)");
	q->keep_alive = http_should_keep_alive(p);
	q->has_body = (p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length);
	const char *ex = kp_hreq_header(q, "Expect");
	q->expect_continue = ex && !strcasecmp(ex, "100-continue") && p->http_minor >= 1;
	q->head = p->method == HTTP_HEAD;
	q->event = KP_HREQ_HEADERS;
	q->in_body = 1;
	http_parser_pause(p, 1);
	return 0;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
	kp_hreq *q = p->data;
	if (q->blen + n > q->max_body)
		return fail(q, 413, "the request body is over the limit");
	if (q->blen + n > q->bcap) {
		size_t nc = (q->blen + n) * 2;
		if (nc > q->max_body)
			nc = q->max_body;
		char *nb = realloc(q->body, nc);
		if (!nb)
			return fail(q, 503, "out of memory");
		q->body = nb;
		q->bcap = nc;
	}
	memcpy(q->body + q->blen, at, n);
	q->blen += n;
	return 0;
}

static int
on_complete(http_parser *p)
{
	kp_hreq *q = p->data;
	q->event = KP_HREQ_DONE;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_begin,
	.on_url = on_url,
	.on_header_field = on_field,
	.on_header_value = on_value,
	.on_headers_complete = on_headers,
	.on_body = on_body,
	.on_message_complete = on_complete,
};

void
kp_hreq_init(kp_hreq *q, unsigned max_header, uint64_t max_body)
{
	memset(q, 0, sizeof(*q));
	http_parser_init(&q->p, HTTP_REQUEST);
	q->p.data = q;
	q->max_header = max_header;
	q->max_body = max_body;
}

void
kp_hreq_release(kp_hreq *q)
{
	kp_buf_release(&q->hb);
	kp_buf_release(&q->ab);
	free(q->hdr);
	free(q->arg);
	free(q->body);
	memset(q, 0, sizeof(*q));
}

void
kp_hreq_next(kp_hreq *q)
{
	q->hb.len = q->ab.len = 0;
	q->nhdr = q->narg = q->blen = 0;
	if (q->bcap > 65536) { /* a large body's memory goes; a small one's is kept */
		free(q->body);
		q->body = NULL;
		q->bcap = 0;
	}
	q->last = 0;
	q->event = KP_HREQ_MORE;
	q->err_status = 0;
	q->err_msg = NULL;
	q->keep_alive = q->has_body = q->expect_continue = q->head = q->nul_escape = 0;
	q->in_body = 0;
}

int
kp_hreq_started(const kp_hreq *q)
{
	return q->hb.len > 0 || q->last != 0;
}

int
kp_hreq_feed(kp_hreq *q, const char *data, size_t len, size_t *used)
{
	q->event = KP_HREQ_MORE;
	size_t n = http_parser_execute(&q->p, &settings, data, len);
	*used = n;
	enum http_errno e = HTTP_PARSER_ERRNO(&q->p);
	if (q->event == KP_HREQ_ERROR)
		return KP_HREQ_ERROR;
	if (e == HPE_PAUSED) {
		http_parser_pause(&q->p, 0);
		return q->event;
	}
	if (e != HPE_OK) {
		if (q->last >= 2 && kp_buf_append(&q->hb, "", 1) == 0)
			q->last = 0; /* the names framing() reads are terminated */
		const char *why = q->last ? NULL : framing(q);
		if (why)
			fail(q, 400, why);
		else if (e == HPE_HEADER_OVERFLOW)
			fail(q, 431, "the request line and headers are over the limit");
		else
			fail(q, 400, http_errno_description(e));
		return KP_HREQ_ERROR;
	}
	*used = len;
	return q->event;
}

const char *
kp_hreq_method(const kp_hreq *q)
{
	return http_method_str((enum http_method)q->p.method);
}

const char *
kp_hreq_path(const kp_hreq *q)
{
	return q->ab.len ? (const char *)q->ab.data : "";
}

const char *
kp_hreq_header(const kp_hreq *q, const char *name)
{
	for (size_t i = 0; i < q->nhdr; i++)
		if (q->hdr[i][1] != NONE &&
		    !strcasecmp((const char *)q->hb.data + q->hdr[i][0], name))
			return (const char *)q->hb.data + q->hdr[i][1];
	return NULL;
}

const char *
kp_hreq_arg(const kp_hreq *q, const char *name)
{
	for (size_t i = 0; i < q->narg; i++)
		if (!strcmp((const char *)q->ab.data + q->arg[i][0], name))
			return q->arg[i][1] == NONE ? NULL
						    : (const char *)q->ab.data + q->arg[i][1];
	return NULL;
}

size_t
kp_hreq_args(const kp_hreq *q, int (*fn)(void *ctx, const char *k, const char *v), void *ctx)
{
	for (size_t i = 0; i < q->narg; i++)
		if (fn(ctx, (const char *)q->ab.data + q->arg[i][0],
		       q->arg[i][1] == NONE ? NULL : (const char *)q->ab.data + q->arg[i][1]))
			break;
	return q->narg;
}

uint64_t
kp_hreq_content_length(const kp_hreq *q)
{
	return (q->p.flags & F_CONTENTLENGTH) ? q->p.content_length : UINT64_MAX;
}
