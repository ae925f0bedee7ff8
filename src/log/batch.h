/*
 * batch.h -- the on-disk record batch: encoding, header validation and event decoding.
 *
 * A batch is one atomic append: a fixed 80-byte header, an opaque attributes section (the
 * store layer keeps request ids and claims there), then the events. docs/format.md has the
 * byte tables; this file is where each field is defined.
 *
 * Batch header (little-endian):
 *   off size field
 *     0    4 magic          "KPLB" (0x424c504b)
 *     4    4 crc32c         CRC-32C of bytes [8, length): header rest + payload
 *     8    4 length         header + payload bytes
 *    12    2 version        format version (1)
 *    14    2 flags          KP_BATCH_CHAINED
 *    16    8 first_position position of the first event
 *    24    4 count          number of events (>= 1)
 *    28    4 attrs_len      bytes of the attributes section at the start of the payload
 *    32    8 timestamp_ms   append time, never less than the previous batch's
 *    40    8 durable_below  every position below this was synced when this batch was written
 *    48   32 chain          BLAKE2b-256(previous batch's chain || bytes [8, 48) || bytes
 *                           [80, length)): the audit hash chain (KP_BATCH_CHAINED)
 *    80      payload        attrs, then 'count' events
 *
 * 'durable_below' is what lets recovery tell a torn tail from corruption exactly, whatever
 * the fsync policy: if a bad batch at position P is followed by a valid batch whose
 * durable_below > P, the bad batch had been synced, so it is corruption, not a torn write.
 *
 * Event (little-endian):
 *     0    4 length         bytes of this event after this field
 *     4    8 version        stream version of this event
 *    12    2 stream_len     1..KP_MAX_STREAM
 *    14    2 type_len       1..KP_MAX_TYPE
 *    16    2 subject_len    0..KP_MAX_SUBJECT
 *    18    2 flags          event flags (opaque to the log)
 *    20    4 metadata_len
 *    24    4 data_len
 *    28      stream, type, subject, metadata, data bytes
 */
#ifndef KP_BATCH_H
#define KP_BATCH_H

#include <stdint.h>

#include "base/buf.h"
#include "kappa.h"

#define KP_BATCH_MAGIC 0x424c504bu /* "KPLB" little-endian */
#define KP_BATCH_VERSION 1
#define KP_BATCH_HEADER 80
#define KP_EVENT_HEADER 28

#define KP_BATCH_CHAINED 0x0001u /* 'chain' holds a hash chain value */
#define KP_BATCH_FLAGS_KNOWN (KP_BATCH_CHAINED)

#define KP_MAX_STREAM 200
#define KP_MAX_TYPE 100
#define KP_MAX_SUBJECT 200

/* One event, as appended (position and time unused) or as read (all fields set). Every
 * kp_bytes of a read event borrows from the reader's buffer: see the reader for lifetime. */
typedef struct kp_event {
	uint64_t position;
	uint64_t version;
	int64_t time_ms;
	uint16_t flags;
	kp_bytes stream;
	kp_bytes type;
	kp_bytes subject;  /* len 0: none */
	kp_bytes metadata; /* len 0: none */
	kp_bytes data;
	/* Read only: the batch this event came from. */
	kp_bytes batch_attrs;
	uint32_t batch_index; /* index of this event within its batch */
	uint32_t batch_count; /* events in the batch */
} kp_event;

/* Decoded batch header. */
typedef struct kp_batch_hdr {
	uint32_t crc;
	uint32_t length;
	uint16_t version;
	uint16_t flags;
	uint64_t first_position;
	uint32_t count;
	uint32_t attrs_len;
	int64_t timestamp_ms;
	uint64_t durable_below;
	uint8_t chain[32];
} kp_batch_hdr;

/* Limits applied while building a batch. */
typedef struct kp_batch_limits {
	size_t max_event_bytes; /* encoded size of one event */
	size_t max_batch_bytes; /* encoded size of the whole batch, header included */
	uint32_t max_events;
} kp_batch_limits;

/* A batch under construction. Owns 'buf'. */
typedef struct kp_batch {
	kp_buf buf;
	uint32_t count;
	uint32_t attrs_len;
	kp_batch_limits lim;
} kp_batch;

/* Start a batch with an attributes section (may be empty; copied). Returns KAPPA_OK,
 * KAPPA_ETOOBIG or KAPPA_ENOMEM. On error 'b' holds nothing to release. */
int kp_batch_init(kp_batch *b, const kp_batch_limits *lim, const void *attrs, size_t attrs_len,
		  kappa_err *err);

/* Validate and append one event (only version, flags, stream, type, subject, metadata and
 * data are used). Returns KAPPA_OK, KAPPA_EINVAL (bad name or type), KAPPA_ETOOBIG (event or
 * batch over its limit, or too many events) or KAPPA_ENOMEM. On error the batch is unchanged. */
int kp_batch_add(kp_batch *b, const kp_event *ev, kappa_err *err);

void kp_batch_release(kp_batch *b);

/* Set the version field of the batch's events to first_version, first_version + 1, ... */
void kp_batch_set_versions(kp_batch *b, uint64_t first_version);

/* Fill in the whole header (the fields known only when the batch is placed in the log among
 * them) and the CRC. With 'prev' (the chain value of the batch before it), also link it into
 * the audit chain: set KP_BATCH_CHAINED and the chain field, and store the value in
 * 'chain_out'. Called by the log's writer. */
void kp_batch_seal(kp_batch *b, uint64_t first_position, int64_t timestamp_ms,
		   uint64_t durable_below, uint16_t flags, const uint8_t *prev, uint8_t *chain_out);

/* The chain value of the whole batch at 'p' ('len' bytes, header filled in) that follows the
 * batch whose chain value is 'prev': BLAKE2b-256(prev || p[8, 48) || p[80, len)). */
void kp_batch_chain(const uint8_t *p, size_t len, const uint8_t prev[32], uint8_t out[32]);

/* Decode and check the fixed header in 'p' (at least KP_BATCH_HEADER bytes): magic, version,
 * flags, length bounds and count. Does not check the CRC. Returns KAPPA_OK or
 * KAPPA_ECORRUPT with the reason in 'err'. */
int kp_batch_hdr_decode(const uint8_t *p, kp_batch_hdr *h, uint32_t max_length, kappa_err *err);

/* Check the CRC of a whole batch of 'h->length' bytes at 'p'. Returns 1 if it matches. */
int kp_batch_crc_ok(const uint8_t *p, const kp_batch_hdr *h);

/* Iterate the events of a whole, CRC-checked batch. Usage:
 *   kp_batch_iter it; kp_batch_iter_init(&it, p, &h);
 *   while ((rc = kp_batch_iter_next(&it, &ev, err)) == 1) ...
 * Returns 1 with 'ev' filled (borrowing from 'p'), 0 at the end, or KAPPA_ECORRUPT if the
 * events do not fit the batch exactly or the count is wrong. */
typedef struct kp_batch_iter {
	const uint8_t *p;
	kp_batch_hdr h;
	size_t off;
	uint32_t i;
} kp_batch_iter;

void kp_batch_iter_init(kp_batch_iter *it, const uint8_t *p, const kp_batch_hdr *h);
int kp_batch_iter_next(kp_batch_iter *it, kp_event *ev, kappa_err *err);

/* Check a stream name: 1..KP_MAX_STREAM bytes of valid UTF-8 without control characters.
 * Returns KAPPA_OK or KAPPA_EINVAL with the reason. 'what' names the field in messages. */
int kp_check_name(const uint8_t *p, size_t len, size_t max, const char *what, kappa_err *err);

#endif
