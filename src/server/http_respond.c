/*
 * http_respond.c -- answers on the wire: the status line with its reason phrase, the Date
 * header (formatted once a second per event thread), Connection, the server's headers and
 * Content-Length or Transfer-Encoding: chunked.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/http_int.h"

const char *
kp_http_reason(unsigned status)
{
	switch (status) {
	case 100:
		return "Continue";
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 409:
		return "Conflict";
	case 410:
		return "Gone";
	case 411:
		return "Length Required";
	case 412:
		return "Precondition Failed";
	case 413:
		return "Content Too Large";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Content";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	case 504:
		return "Gateway Timeout";
	case 505:
		return "HTTP Version Not Supported";
	case 507:
		return "Insufficient Storage";
	default:
		return "Unknown";
	}
}

void
kp_http_date(kp_hloop *l)
{
	time_t now = time(NULL);
	if (now == l->date_s)
		return;
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(l->date, sizeof(l->date), "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
	l->date_s = now;
}

static int
add(kp_buf *b, const char *s)
{
	return kp_buf_append(b, s, strlen(s));
}

int
kp_http_head(kp_hconn *c, unsigned status, const kp_http_hdr *h, size_t nh, uint64_t len)
{
	kp_buf *b = &c->out;
	char line[96];
	int n = snprintf(line, sizeof(line), "HTTP/1.1 %u %s\r\n", status, kp_http_reason(status));
	kp_http_date(c->loop);
	int minor = c->q.p.http_minor;
	if (len == UINT64_MAX && minor == 0)
		c->close_after = 1; /* no chunked encoding in HTTP/1.0: EOF ends the answer */
	if (c->early && c->q.has_body)
		c->close_after = 1; /* the body stays unread: nothing after it can be trusted */
	if (kp_buf_append(b, line, (size_t)n) || add(b, c->loop->date))
		return -1;
	if (c->close_after || !c->q.keep_alive) {
		c->close_after = 1;
		if (add(b, "Connection: close\r\n"))
			return -1;
	} else if (minor == 0 && add(b, "Connection: Keep-Alive\r\n")) {
		return -1;
	}
	for (size_t i = 0; i < nh; i++)
		if (add(b, h[i].name) || add(b, ": ") || add(b, h[i].value) || add(b, "\r\n"))
			return -1;
	if (len != UINT64_MAX) {
		n = snprintf(line, sizeof(line), "Content-Length: %llu\r\n\r\n",
			     (unsigned long long)len);
		return kp_buf_append(b, line, (size_t)n);
	}
	if (minor == 0)
		return add(b, "\r\n");
	c->chunked = 1;
	return add(b, "Transfer-Encoding: chunked\r\n\r\n");
}
