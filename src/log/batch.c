/*
 * batch.c -- encoding and decoding of log record batches (format in batch.h and
 * docs/format.md).
 *
 * Building validates every event against the limits before a byte is added, so a rejected
 * event leaves the batch as it was. Decoding trusts nothing: every length is checked against
 * what is left of the batch, as SQLite checks every value read from a page.
 */
#include "log/batch.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/err.h"

int
kp_check_name(const uint8_t *p, size_t len, size_t max, const char *what, kappa_err *err)
{
	if (len == 0)
		return KP_ERR(err, KAPPA_EINVAL, "%s is empty", what);
	if (len > max)
		return KP_ERR(err, KAPPA_EINVAL, "%s is %zu bytes, the limit is %zu", what, len,
			      max);
	for (size_t i = 0; i < len;) {
		uint8_t c = p[i];
		size_t n;
		uint32_t cp;
		if (c < 0x80) {
			if (c < 0x20 || c == 0x7f)
				return KP_ERR(err, KAPPA_EINVAL,
					      "%s contains a control character at byte %zu", what,
					      i);
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 4;
			cp = c & 0x07;
		} else {
			goto bad;
		}
		if (i + n > len)
			goto bad;
		for (size_t k = 1; k < n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = (cp << 6) | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates, beyond U+10FFFF, and C1 controls. */
		if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
		    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			goto bad;
		if (cp >= 0x80 && cp <= 0x9f)
			return KP_ERR(err, KAPPA_EINVAL,
				      "%s contains a control character at byte %zu", what, i);
		i += n;
		continue;
	bad:
		return KP_ERR(err, KAPPA_EINVAL, "%s is not valid UTF-8 at byte %zu", what, i);
	}
	return KAPPA_OK;
}

int
kp_batch_init(kp_batch *b, const kp_batch_limits *lim, const void *attrs, size_t attrs_len,
	      kappa_err *err)
{
	memset(b, 0, sizeof(*b));
	b->lim = *lim;
	if (attrs_len > UINT32_MAX || KP_BATCH_HEADER + attrs_len > lim->max_batch_bytes)
		return KP_ERR(err, KAPPA_ETOOBIG, "batch attributes of %zu bytes exceed the limit",
			      attrs_len);
	if (kp_buf_reserve(&b->buf, KP_BATCH_HEADER + attrs_len + 256) < 0)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory for a batch");
	memset(b->buf.data, 0, KP_BATCH_HEADER);
	b->buf.len = KP_BATCH_HEADER;
	kp_buf_append(&b->buf, attrs, attrs_len); /* cannot fail: reserved */
	b->attrs_len = (uint32_t)attrs_len;
	return KAPPA_OK;
}

void
kp_batch_release(kp_batch *b)
{
	kp_buf_release(&b->buf);
	b->count = 0;
}

int
kp_batch_add(kp_batch *b, const kp_event *ev, kappa_err *err)
{
	int rc;
	if ((rc = kp_check_name(ev->stream.p, ev->stream.len, KP_MAX_STREAM, "stream name", err)))
		return rc;
	if ((rc = kp_check_name(ev->type.p, ev->type.len, KP_MAX_TYPE, "event type", err)))
		return rc;
	if (ev->subject.len &&
	    (rc = kp_check_name(ev->subject.p, ev->subject.len, KP_MAX_SUBJECT, "subject", err)))
		return rc;
	if (ev->data.len > UINT32_MAX || ev->metadata.len > UINT32_MAX)
		return KP_ERR(err, KAPPA_ETOOBIG, "event data is too large");
	size_t size = KP_EVENT_HEADER + ev->stream.len + ev->type.len + ev->subject.len +
		      ev->metadata.len + ev->data.len;
	if (size > b->lim.max_event_bytes)
		return KP_ERR(err, KAPPA_ETOOBIG, "event of %zu bytes exceeds the limit of %zu",
			      size, b->lim.max_event_bytes);
	if (b->count >= b->lim.max_events)
		return KP_ERR(err, KAPPA_ETOOBIG, "batch exceeds the limit of %u events",
			      b->lim.max_events);
	if (b->buf.len + size > b->lim.max_batch_bytes)
		return KP_ERR(err, KAPPA_ETOOBIG, "batch exceeds the limit of %zu bytes",
			      b->lim.max_batch_bytes);
	if (kp_buf_reserve(&b->buf, size) < 0)
		return KP_ERR(err, KAPPA_ENOMEM, "out of memory for a batch");
	uint8_t *p = b->buf.data + b->buf.len;
	kp_put_u32(p, (uint32_t)(size - 4));
	kp_put_u64(p + 4, ev->version);
	kp_put_u16(p + 12, (uint16_t)ev->stream.len);
	kp_put_u16(p + 14, (uint16_t)ev->type.len);
	kp_put_u16(p + 16, (uint16_t)ev->subject.len);
	kp_put_u16(p + 18, ev->flags);
	kp_put_u32(p + 20, (uint32_t)ev->metadata.len);
	kp_put_u32(p + 24, (uint32_t)ev->data.len);
	p += KP_EVENT_HEADER;
	const kp_bytes *parts[] = {&ev->stream, &ev->type, &ev->subject, &ev->metadata, &ev->data};
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		if (parts[i]->len)
			memcpy(p, parts[i]->p, parts[i]->len);
		p += parts[i]->len;
	}
	b->buf.len += size;
	b->count++;
	return KAPPA_OK;
}

void
kp_batch_set_versions(kp_batch *b, uint64_t first_version)
{
	size_t off = KP_BATCH_HEADER + b->attrs_len;
	for (uint32_t i = 0; i < b->count; i++) {
		kp_put_u64(b->buf.data + off + 4, first_version + i);
		off += 4 + (size_t)kp_get_u32(b->buf.data + off);
	}
}

void
kp_batch_chain(const uint8_t *p, size_t len, const uint8_t prev[32], uint8_t out[32])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, prev, 32);
	crypto_generichash_update(&st, p + 8, 40);
	crypto_generichash_update(&st, p + KP_BATCH_HEADER, len - KP_BATCH_HEADER);
	crypto_generichash_final(&st, out, 32);
}

void
kp_batch_seal(kp_batch *b, uint64_t first_position, int64_t timestamp_ms, uint64_t durable_below,
	      uint16_t flags, const uint8_t *prev, uint8_t *chain_out)
{
	uint8_t *p = b->buf.data;
	if (prev)
		flags |= KP_BATCH_CHAINED;
	kp_put_u32(p, KP_BATCH_MAGIC);
	kp_put_u32(p + 8, (uint32_t)b->buf.len);
	kp_put_u16(p + 12, KP_BATCH_VERSION);
	kp_put_u16(p + 14, flags);
	kp_put_u64(p + 16, first_position);
	kp_put_u32(p + 24, b->count);
	kp_put_u32(p + 28, b->attrs_len);
	kp_put_u64(p + 32, (uint64_t)timestamp_ms);
	kp_put_u64(p + 40, durable_below);
	if (prev) {
		kp_batch_chain(p, b->buf.len, prev, p + 48);
		if (chain_out)
			memcpy(chain_out, p + 48, 32);
	}
	kp_put_u32(p + 4, kp_crc32c(0, p + 8, b->buf.len - 8));
}

int
kp_batch_hdr_decode(const uint8_t *p, kp_batch_hdr *h, uint32_t max_length, kappa_err *err)
{
	uint32_t magic = kp_get_u32(p);
	if (magic != KP_BATCH_MAGIC)
		return KP_ERR(err, KAPPA_ECORRUPT, "bad batch magic 0x%08x", magic);
	h->crc = kp_get_u32(p + 4);
	h->length = kp_get_u32(p + 8);
	h->version = kp_get_u16(p + 12);
	h->flags = kp_get_u16(p + 14);
	h->first_position = kp_get_u64(p + 16);
	h->count = kp_get_u32(p + 24);
	h->attrs_len = kp_get_u32(p + 28);
	h->timestamp_ms = (int64_t)kp_get_u64(p + 32);
	h->durable_below = kp_get_u64(p + 40);
	memcpy(h->chain, p + 48, 32);
	if (h->version != KP_BATCH_VERSION)
		return KP_ERR(err, KAPPA_ECORRUPT, "unknown batch format version %u", h->version);
	if (h->flags & ~KP_BATCH_FLAGS_KNOWN)
		return KP_ERR(err, KAPPA_ECORRUPT, "unknown batch flags 0x%04x", h->flags);
	if (h->length < KP_BATCH_HEADER || h->length > max_length)
		return KP_ERR(err, KAPPA_ECORRUPT, "batch length %u out of bounds", h->length);
	if (h->count == 0 || h->attrs_len > h->length - KP_BATCH_HEADER ||
	    (uint64_t)h->count * KP_EVENT_HEADER > h->length - KP_BATCH_HEADER - h->attrs_len)
		return KP_ERR(err, KAPPA_ECORRUPT, "batch count %u or attributes %u do not fit",
			      h->count, h->attrs_len);
	if (h->first_position > UINT64_MAX - h->count)
		return KP_ERR(err, KAPPA_ECORRUPT, "batch position %llu overflows",
			      (unsigned long long)h->first_position);
	return KAPPA_OK;
}

int
kp_batch_crc_ok(const uint8_t *p, const kp_batch_hdr *h)
{
	return kp_crc32c(0, p + 8, h->length - 8) == h->crc;
}

void
kp_batch_iter_init(kp_batch_iter *it, const uint8_t *p, const kp_batch_hdr *h)
{
	it->p = p;
	it->h = *h;
	it->off = KP_BATCH_HEADER + h->attrs_len;
	it->i = 0;
}

int
kp_batch_iter_next(kp_batch_iter *it, kp_event *ev, kappa_err *err)
{
	size_t end = it->h.length;
	if (it->i == it->h.count) {
		if (it->off != end)
			return KP_ERR(err, KAPPA_ECORRUPT, "%zu stray bytes after the last event",
				      end - it->off);
		return 0;
	}
	if (end - it->off < KP_EVENT_HEADER)
		return KP_ERR(err, KAPPA_ECORRUPT, "event %u is cut short", it->i);
	const uint8_t *p = it->p + it->off;
	uint64_t len = kp_get_u32(p);
	uint64_t parts = (uint64_t)kp_get_u16(p + 12) + kp_get_u16(p + 14) + kp_get_u16(p + 16) +
			 kp_get_u32(p + 20) + kp_get_u32(p + 24);
	if (len + 4 > end - it->off || len != KP_EVENT_HEADER - 4 + parts)
		return KP_ERR(err, KAPPA_ECORRUPT, "event %u has a bad length", it->i);
	ev->position = it->h.first_position + it->i;
	ev->time_ms = it->h.timestamp_ms;
	ev->version = kp_get_u64(p + 4);
	ev->flags = kp_get_u16(p + 18);
	const uint8_t *q = p + KP_EVENT_HEADER;
	ev->stream = (kp_bytes){q, kp_get_u16(p + 12)};
	q += ev->stream.len;
	ev->type = (kp_bytes){q, kp_get_u16(p + 14)};
	q += ev->type.len;
	ev->subject = (kp_bytes){q, kp_get_u16(p + 16)};
	q += ev->subject.len;
	ev->metadata = (kp_bytes){q, kp_get_u32(p + 20)};
	q += ev->metadata.len;
	ev->data = (kp_bytes){q, kp_get_u32(p + 24)};
	if (ev->stream.len == 0 || ev->type.len == 0)
		return KP_ERR(err, KAPPA_ECORRUPT, "event %u has an empty stream or type", it->i);
	ev->batch_attrs = (kp_bytes){it->p + KP_BATCH_HEADER, it->h.attrs_len};
	ev->batch_index = it->i;
	ev->batch_count = it->h.count;
	it->off += (size_t)len + 4;
	it->i++;
	return 1;
}
