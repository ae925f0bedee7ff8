/*
 * fuzz_segment.c -- libFuzzer target: a log segment file as read by recovery and
 * `kappa check` (kp_seg_scan with event checks), each accepted batch's events
 * (kp_batch_iter) and its store attributes (kp_attrs_decode).
 *
 * The input is one byte of mode and then the segment's bytes, served from memory through a
 * kp_io. With mode bit 0 set, the batches' positions and CRCs are made right first, so the
 * fuzzer reaches the event framing and the attributes behind the checksum. Invariants:
 * every accepted batch lies inside the file, positions are dense, nothing reads outside
 * the input (AddressSanitizer).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "log/log_int.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct memfile {
	uint8_t *p;
	size_t n;
} memfile;

static ssize_t
m_pread(const kp_io *io, int fd, void *buf, size_t n, off_t off)
{
	const memfile *f = io->ctx;
	(void)fd;
	if (off < 0)
		return -EINVAL;
	if ((uint64_t)off >= f->n)
		return 0;
	size_t k = f->n - (size_t)off < n ? f->n - (size_t)off : n;
	memcpy(buf, f->p + off, k);
	return (ssize_t)k;
}

static int
m_size(const kp_io *io, int fd, uint64_t *size)
{
	(void)fd;
	*size = ((const memfile *)io->ctx)->n;
	return 0;
}

typedef struct scan_ctx {
	const memfile *f;
	uint64_t next_pos;
	uint64_t end_off;
	kp_attrs *attrs;
} scan_ctx;

static int
on_batch(void *ctx, const kp_batch_hdr *h, uint64_t off)
{
	scan_ctx *c = ctx;
	if (off != c->end_off || off + h->length > c->f->n || h->first_position != c->next_pos)
		abort(); /* the scan accepted a batch that is not where it should be */
	const uint8_t *p = c->f->p + off;
	kp_batch_iter it;
	kp_event ev;
	kappa_err err;
	int rc;
	kp_batch_iter_init(&it, p, h);
	while ((rc = kp_batch_iter_next(&it, &ev, &err)) == 1) {
		kp_check_name(ev.stream.p, ev.stream.len, KP_MAX_STREAM, "stream", &err);
		kp_check_name(ev.type.p, ev.type.len, KP_MAX_TYPE, "type", &err);
	}
	if (rc != 0)
		abort(); /* the scan checked the events: they must iterate cleanly */
	kp_attrs_decode((kp_bytes){p + KP_BATCH_HEADER, h->attrs_len}, c->attrs, &err);
	uint8_t prev[32] = {0}, out[32];
	kp_batch_chain(p, h->length, prev, out);
	c->next_pos += h->count;
	c->end_off = off + h->length;
	return 0;
}

/* Give each well-framed batch the position that follows the previous one and its CRC. */
static uint64_t
fix_up(uint8_t *p, size_t n)
{
	uint64_t first = 0, pos = 0;
	size_t off = 0;
	while (n - off >= KP_BATCH_HEADER) {
		kp_batch_hdr h;
		if (kp_batch_hdr_decode(p + off, &h,
					(uint32_t)(n - off > UINT32_MAX ? UINT32_MAX : n - off),
					NULL))
			break;
		if (off == 0)
			first = pos = h.first_position;
		kp_put_u64(p + off + 16, pos);
		kp_put_u32(p + off + 4, kp_crc32c(0, p + off + 8, h.length - 8));
		pos += h.count;
		off += h.length;
	}
	return first;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int mode = data[0];
	memfile f = {malloc(size), size - 1};
	if (!f.p)
		return 0;
	memcpy(f.p, data + 1, size - 1);
	uint64_t first = 0;
	if (mode & 1)
		first = fix_up(f.p, f.n);
	else if (f.n >= 24)
		first = kp_get_u64(f.p + 16);
	if (first > UINT64_MAX / 2)
		first = 0;
	kp_io io = {.pread = m_pread, .fstat_size = m_size, .ctx = &f};
	scan_ctx c = {&f, first, 0, kp_attrs_new(KP_MAX_CLAIMS_DECODED)};
	if (c.attrs) {
		kp_scan r;
		kappa_err err;
		int rc = kp_seg_scan(&io, 0, 0, first, UINT64_MAX, 1, on_batch, &c, &r, &err);
		if (rc == KAPPA_OK &&
		    (r.end_off != c.end_off || r.end_pos != c.next_pos || r.end_off > f.n))
			abort(); /* the scan's summary disagrees with the batches it accepted */
	}
	free(c.attrs);
	free(f.p);
	return 0;
}
