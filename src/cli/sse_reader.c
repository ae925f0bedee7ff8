/*
 * sse_reader.c -- an incremental Server-Sent Events parser (see sse_reader.h), after the
 * WHATWG "event stream interpretation" rules, for the fields kappa's server sends.
 */
#include "cli/sse_reader.h"

#include <string.h>

void
kp_sse_reader_init(kp_sse_reader *r, kp_sse_event_fn fn, void *ctx, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->on_event = fn;
	r->ctx = ctx;
	r->max = max;
	r->retry_ms = -1;
}

void
kp_sse_reader_reset(kp_sse_reader *r)
{
	r->line.len = r->data.len = 0;
	r->id[0] = r->event[0] = '\0';
	r->skip_lf = 0;
}

void
kp_sse_reader_release(kp_sse_reader *r)
{
	kp_buf_release(&r->line);
	kp_buf_release(&r->data);
}

static void
set_field(char *dst, size_t cap, const char *v, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, v, n);
	dst[n] = '\0';
}

/* One complete line (without its end). */
static int
line(kp_sse_reader *r, const char *p, size_t n)
{
	if (n == 0) { /* dispatch */
		int rc = 0;
		if (r->data.len) {
			r->data.len--; /* the '\n' after the last data line */
			r->data.data[r->data.len] = '\0';
			rc = r->on_event(r->ctx, r->event, r->id, (const char *)r->data.data,
					 r->data.len);
		}
		r->data.len = 0;
		r->id[0] = r->event[0] = '\0';
		return rc;
	}
	if (p[0] == ':')
		return 0; /* a comment: greeting, heartbeat, goodbye */
	const char *colon = memchr(p, ':', n);
	size_t fl = colon ? (size_t)(colon - p) : n;
	const char *v = colon ? colon + 1 : p + n;
	size_t vl = n - (size_t)(v - p);
	if (vl && *v == ' ') {
		v++;
		vl--;
	}
	if (fl == 4 && !memcmp(p, "data", 4)) {
		if (r->data.len + vl + 2 > r->max)
			return -1;
		if (kp_buf_append(&r->data, v, vl) || kp_buf_append(&r->data, "\n\0", 2))
			return -1;
		r->data.len--; /* keep the NUL out of the length */
	} else if (fl == 2 && !memcmp(p, "id", 2)) {
		if (!memchr(v, '\0', vl))
			set_field(r->id, sizeof(r->id), v, vl);
	} else if (fl == 5 && !memcmp(p, "event", 5)) {
		set_field(r->event, sizeof(r->event), v, vl);
	} else if (fl == 5 && !memcmp(p, "retry", 5)) {
		long ms = 0;
		size_t i = 0;
		while (i < vl && i < 9 && v[i] >= '0' && v[i] <= '9')
			ms = ms * 10 + (v[i++] - '0');
		if (vl && i == vl)
			r->retry_ms = ms;
	}
	return 0; /* unknown fields are ignored */
}

int
kp_sse_reader_feed(kp_sse_reader *r, const char *p, size_t n)
{
	while (n) {
		if (r->skip_lf && *p == '\n') {
			p++;
			n--;
			r->skip_lf = 0;
			continue;
		}
		r->skip_lf = 0;
		size_t k = 0;
		while (k < n && p[k] != '\n' && p[k] != '\r')
			k++;
		if (k == n) { /* no end yet: keep the piece */
			if (r->line.len + n > r->max || kp_buf_append(&r->line, p, n))
				return -1;
			return 0;
		}
		int rc;
		if (r->line.len) {
			if (r->line.len + k > r->max || kp_buf_append(&r->line, p, k))
				return -1;
			rc = line(r, (const char *)r->line.data, r->line.len);
			r->line.len = 0;
		} else {
			rc = line(r, p, k);
		}
		r->skip_lf = p[k] == '\r';
		p += k + 1;
		n -= k + 1;
		if (rc)
			return rc;
	}
	return 0;
}
