/*
 * test_batch.c -- the batch codec: round trips, limits, name validation, and rejection of
 * malformed headers and events.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "base/buf.h"
#include "log/batch.h"
#include "log/log.h"

static kp_batch_limits lim = {1u << 20, 16u << 20, 10000};

static kp_event
ev_of(const char *stream, const char *type, const char *data)
{
	kp_event e = {0};
	e.stream = (kp_bytes){(const uint8_t *)stream, strlen(stream)};
	e.type = (kp_bytes){(const uint8_t *)type, strlen(type)};
	e.data = (kp_bytes){(const uint8_t *)data, strlen(data)};
	return e;
}

Test(batch, round_trip_all_fields)
{
	kp_batch b;
	kappa_err err;
	cr_assert_eq(kp_batch_init(&b, &lim, "attrs!", 6, &err), KAPPA_OK);
	kp_event e = ev_of("user-42", "UserRegistered", "{\"name\":\"Ada\"}");
	e.version = 7;
	e.flags = 3;
	e.subject = (kp_bytes){(const uint8_t *)"42", 2};
	e.metadata = (kp_bytes){(const uint8_t *)"{\"ip\":\"x\"}", 10};
	cr_assert_eq(kp_batch_add(&b, &e, &err), KAPPA_OK);
	kp_event e2 = ev_of("user-42", "ProfileUpdated", "{}");
	e2.version = 8;
	cr_assert_eq(kp_batch_add(&b, &e2, &err), KAPPA_OK);
	kp_batch_seal(&b, 1000, 123456789, 990, 0, NULL, NULL);

	kp_batch_hdr h;
	cr_assert_eq(kp_batch_hdr_decode(b.buf.data, &h, UINT32_MAX, &err), KAPPA_OK, "%s",
		     err.msg);
	cr_assert_eq(h.length, b.buf.len);
	cr_assert_eq(h.count, 2);
	cr_assert_eq(h.first_position, 1000);
	cr_assert_eq(h.timestamp_ms, 123456789);
	cr_assert_eq(h.durable_below, 990);
	cr_assert_eq(h.attrs_len, 6);
	cr_assert(kp_batch_crc_ok(b.buf.data, &h));

	kp_batch_iter it;
	kp_event out;
	kp_batch_iter_init(&it, b.buf.data, &h);
	cr_assert_eq(kp_batch_iter_next(&it, &out, &err), 1);
	cr_assert_eq(out.position, 1000);
	cr_assert_eq(out.version, 7);
	cr_assert_eq(out.flags, 3);
	cr_assert_eq(out.time_ms, 123456789);
	cr_assert_eq(out.stream.len, 7);
	cr_assert_eq(memcmp(out.stream.p, "user-42", 7), 0);
	cr_assert_eq(memcmp(out.type.p, "UserRegistered", 14), 0);
	cr_assert_eq(memcmp(out.subject.p, "42", 2), 0);
	cr_assert_eq(memcmp(out.metadata.p, "{\"ip\":\"x\"}", 10), 0);
	cr_assert_eq(memcmp(out.data.p, "{\"name\":\"Ada\"}", 14), 0);
	cr_assert_eq(out.batch_attrs.len, 6);
	cr_assert_eq(memcmp(out.batch_attrs.p, "attrs!", 6), 0);
	cr_assert_eq(out.batch_index, 0);
	cr_assert_eq(out.batch_count, 2);
	cr_assert_eq(kp_batch_iter_next(&it, &out, &err), 1);
	cr_assert_eq(out.position, 1001);
	cr_assert_eq(out.subject.len, 0);
	cr_assert_eq(out.metadata.len, 0);
	cr_assert_eq(kp_batch_iter_next(&it, &out, &err), 0);
	kp_batch_release(&b);
}

Test(batch, any_flipped_byte_fails_the_crc_or_header)
{
	kp_batch b;
	kp_batch_init(&b, &lim, NULL, 0, NULL);
	kp_event e = ev_of("s", "T", "{\"a\":1}");
	kp_batch_add(&b, &e, NULL);
	kp_batch_seal(&b, 5, 1, 0, 0, NULL, NULL);
	for (size_t i = 0; i < b.buf.len; i++) {
		b.buf.data[i] ^= 0x10;
		kp_batch_hdr h;
		int ok = kp_batch_hdr_decode(b.buf.data, &h, (uint32_t)b.buf.len, NULL) == 0 &&
			 kp_batch_crc_ok(b.buf.data, &h);
		cr_assert(!ok, "flip at byte %zu went unnoticed", i);
		b.buf.data[i] ^= 0x10;
	}
	kp_batch_release(&b);
}

Test(batch, header_rejects_bad_fields)
{
	kp_batch b;
	kp_batch_init(&b, &lim, NULL, 0, NULL);
	kp_event e = ev_of("s", "T", "{}");
	kp_batch_add(&b, &e, NULL);
	kp_batch_seal(&b, 0, 1, 0, 0, NULL, NULL);
	kp_batch_hdr h;
	kappa_err err;
	uint8_t *p = b.buf.data;
	cr_assert_eq(kp_batch_hdr_decode(p, &h, 10, &err), KAPPA_ECORRUPT); /* longer than room */
	kp_put_u16(p + 12, 9);
	cr_assert_eq(kp_batch_hdr_decode(p, &h, UINT32_MAX, &err), KAPPA_ECORRUPT);
	cr_assert(strstr(err.msg, "version"));
	kp_put_u16(p + 12, KP_BATCH_VERSION);
	kp_put_u16(p + 14, 0x8000);
	cr_assert_eq(kp_batch_hdr_decode(p, &h, UINT32_MAX, &err), KAPPA_ECORRUPT);
	kp_put_u16(p + 14, 0);
	kp_put_u32(p + 24, 0);
	cr_assert_eq(kp_batch_hdr_decode(p, &h, UINT32_MAX, &err), KAPPA_ECORRUPT);
	kp_put_u32(p + 24, 1000000);
	cr_assert_eq(kp_batch_hdr_decode(p, &h, UINT32_MAX, &err), KAPPA_ECORRUPT);
	kp_put_u32(p + 24, 1);
	memset(p, 0, 4);
	cr_assert_eq(kp_batch_hdr_decode(p, &h, UINT32_MAX, &err), KAPPA_ECORRUPT);
	kp_batch_release(&b);
}

Test(batch, events_that_do_not_fit_are_corrupt)
{
	kp_batch b;
	kp_batch_init(&b, &lim, NULL, 0, NULL);
	kp_event e = ev_of("s", "T", "{\"x\":1}");
	kp_batch_add(&b, &e, NULL);
	kp_batch_seal(&b, 0, 1, 0, 0, NULL, NULL);
	kp_put_u32(b.buf.data + KP_BATCH_HEADER + 24, 5000); /* data_len beyond the batch */
	kp_batch_hdr h;
	cr_assert_eq(kp_batch_hdr_decode(b.buf.data, &h, UINT32_MAX, NULL), 0);
	kp_batch_iter it;
	kp_event out;
	kappa_err err;
	kp_batch_iter_init(&it, b.buf.data, &h);
	cr_assert_eq(kp_batch_iter_next(&it, &out, &err), KAPPA_ECORRUPT);
	kp_batch_release(&b);
}

Test(batch, limits_are_enforced_and_leave_the_batch_unchanged)
{
	kp_batch_limits small = {200, 400, 3};
	kp_batch b;
	kappa_err err;
	cr_assert_eq(kp_batch_init(&b, &small, NULL, 0, &err), KAPPA_OK);
	char big[300];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	kp_event e = ev_of("s", "T", big);
	cr_assert_eq(kp_batch_add(&b, &e, &err), KAPPA_ETOOBIG);
	cr_assert(strstr(err.msg, "exceeds"));
	cr_assert_eq(b.count, 0);
	cr_assert_eq(b.buf.len, KP_BATCH_HEADER);
	kp_event small_ev = ev_of("s", "T", "{}");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(kp_batch_add(&b, &small_ev, &err), KAPPA_OK);
	cr_assert_eq(kp_batch_add(&b, &small_ev, &err), KAPPA_ETOOBIG); /* count */
	cr_assert_eq(b.count, 3);
	kp_batch_release(&b);

	kp_batch_limits bytes = {300, 600, 100};
	kp_batch_init(&b, &bytes, NULL, 0, NULL);
	char mid[200];
	memset(mid, 'y', sizeof(mid) - 1);
	mid[sizeof(mid) - 1] = 0;
	kp_event m = ev_of("s", "T", mid);
	cr_assert_eq(kp_batch_add(&b, &m, &err), KAPPA_OK);
	size_t len = b.buf.len;
	cr_assert_eq(kp_batch_add(&b, &m, &err), KAPPA_OK);
	cr_assert_eq(kp_batch_add(&b, &m, &err), KAPPA_ETOOBIG); /* batch bytes */
	cr_assert_gt(b.buf.len, len);
	kp_batch_release(&b);

	cr_assert_eq(kp_batch_init(&b, &bytes, big, 600, &err), KAPPA_ETOOBIG);
}

Test(batch, names_are_validated)
{
	kp_batch b;
	kappa_err err;
	kp_batch_init(&b, &lim, NULL, 0, NULL);
	char long_name[202];
	memset(long_name, 'n', 201);
	long_name[201] = 0;
	const char *bad_streams[] = {"",
				     long_name,
				     "a\nb",
				     "tab\there",
				     "del\x7f",
				     "\xc3\x28",	 /* bad continuation */
				     "\xe2\x82",	 /* cut short */
				     "\xc0\xaf",	 /* overlong */
				     "\xed\xa0\x80",	 /* surrogate */
				     "\xf4\x90\x80\x80", /* beyond U+10FFFF */
				     "\xc2\x85",	 /* C1 control */
				     "\xff"};
	for (size_t i = 0; i < sizeof(bad_streams) / sizeof(bad_streams[0]); i++) {
		kp_event e = ev_of(bad_streams[i], "T", "{}");
		cr_assert_eq(kp_batch_add(&b, &e, &err), KAPPA_EINVAL, "stream #%zu accepted", i);
		cr_assert(strstr(err.msg, "stream name"), "%s", err.msg);
	}
	kp_event t = ev_of("ok", "", "{}");
	cr_assert_eq(kp_batch_add(&b, &t, &err), KAPPA_EINVAL);
	cr_assert(strstr(err.msg, "event type"));
	char long_type[102];
	memset(long_type, 't', 101);
	long_type[101] = 0;
	t = ev_of("ok", long_type, "{}");
	cr_assert_eq(kp_batch_add(&b, &t, &err), KAPPA_EINVAL);
	const char *good[] = {"user-42", "ünïcödé-stream", "日本語", "emoji-😀", long_name + 1};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		kp_event e = ev_of(good[i], "T", "{}");
		cr_assert_eq(kp_batch_add(&b, &e, &err), KAPPA_OK, "%s: %s", good[i], err.msg);
	}
	cr_assert_eq(b.count, 5);
	kp_batch_release(&b);
}
