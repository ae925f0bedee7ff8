/*
 * sse_reader.h -- the client side of Server-Sent Events for `kappa tail`: bytes in as
 * they arrive, whole events out. Lines are "field: value"; "data" lines add to the event,
 * "id", "event" and "retry" set its fields, lines starting with ':' are comments, and an
 * empty line ends the event. Bounded: a line or event over 'max' bytes is an error.
 */
#ifndef KP_CLI_SSE_READER_H
#define KP_CLI_SSE_READER_H

#include <stddef.h>

#include "base/buf.h"

/* Called for each complete event with data: 'event' ("" when the server named none), 'id'
 * ("" when none), and 'data' (NUL-terminated, 'len' bytes, data lines joined by '\n').
 * Returns 0 to go on, anything else to stop (kp_sse_reader_feed returns it). */
typedef int (*kp_sse_event_fn)(void *ctx, const char *event, const char *id, const char *data,
			       size_t len);

typedef struct kp_sse_reader {
	kp_sse_event_fn on_event;
	void *ctx;
	size_t max;	/* longest line and event, in bytes */
	long retry_ms;	/* the last "retry:" the server sent, -1 before any */
	kp_buf line;	/* the line being received */
	kp_buf data;	/* the data of the event being received */
	char id[32];	/* its id ("" if none) */
	char event[32]; /* its event type ("" if none) */
	int skip_lf;	/* the last line ended with '\r': a '\n' right after belongs to it */
} kp_sse_reader;

void kp_sse_reader_init(kp_sse_reader *r, kp_sse_event_fn fn, void *ctx, size_t max);
/* Forget a half-received event, as after a reconnection. */
void kp_sse_reader_reset(kp_sse_reader *r);
void kp_sse_reader_release(kp_sse_reader *r);

/* Take 'n' bytes. Returns 0, -1 (a line or event over 'max', or out of memory), or what
 * on_event returned when it stopped. */
int kp_sse_reader_feed(kp_sse_reader *r, const char *p, size_t n);

#endif
