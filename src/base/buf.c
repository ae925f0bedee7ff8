/*
 * buf.c -- growable byte buffers (see buf.h).
 */
#include "base/buf.h"

#include <stdlib.h>

int
kp_buf_reserve(kp_buf *b, size_t extra)
{
	if (extra <= b->cap - b->len)
		return 0;
	if (extra > SIZE_MAX / 2 - b->len)
		return -1;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < extra)
		cap *= 2;
	uint8_t *p = realloc(b->data, cap);
	if (!p)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int
kp_buf_append(kp_buf *b, const void *p, size_t n)
{
	if (kp_buf_reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void
kp_buf_release(kp_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
