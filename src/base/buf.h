/*
 * buf.h -- growable byte buffers and little-endian field encoding.
 *
 * On-disk fields are always written one by one, little-endian; bytes are never cast to a
 * struct. A kp_buf owns its memory (kp_buf_release frees it); a kp_slice is a read-only view
 * that decoding consumes with bounds checks.
 */
#ifndef KP_BUF_H
#define KP_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct kp_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
} kp_buf;

/* Borrowed bytes; valid as long as whatever they point into. */
typedef struct kp_bytes {
	const uint8_t *p;
	size_t len;
} kp_bytes;

#define KP_BUF_INIT                                                                                \
	{                                                                                          \
		NULL, 0, 0                                                                         \
	}

/* Make room for 'extra' more bytes. Returns 0 or -1 (allocation failed; 'b' unchanged). */
int kp_buf_reserve(kp_buf *b, size_t extra);
/* Append bytes. Returns 0 or -1 on allocation failure. */
int kp_buf_append(kp_buf *b, const void *p, size_t n);
void kp_buf_release(kp_buf *b);

static inline void
kp_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void
kp_put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
kp_put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t
kp_get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t
kp_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

static inline uint64_t
kp_get_u64(const uint8_t *p)
{
	return (uint64_t)kp_get_u32(p) | ((uint64_t)kp_get_u32(p + 4) << 32);
}

/* Big-endian, for index keys that must sort by number. */
static inline void
kp_put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static inline uint64_t
kp_get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

#endif
