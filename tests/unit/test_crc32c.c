/*
 * test_crc32c.c -- CRC-32C against known vectors (RFC 3720 appendix B.4 and the classic
 * "123456789"), for both the hardware and the table implementation, and their agreement on
 * every length and alignment.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "base/crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static void
vectors(crc_fn f)
{
	uint8_t buf[32];
	cr_assert_eq(f(0, "123456789", 9), 0xe3069283u);
	cr_assert_eq(f(0, "", 0), 0u);
	memset(buf, 0, 32);
	cr_assert_eq(f(0, buf, 32), 0x8a9136aau);
	memset(buf, 0xff, 32);
	cr_assert_eq(f(0, buf, 32), 0x62a8ab43u);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)i;
	cr_assert_eq(f(0, buf, 32), 0x46dd794eu);
	for (int i = 0; i < 32; i++)
		buf[i] = (uint8_t)(31 - i);
	cr_assert_eq(f(0, buf, 32), 0x113fdb5cu);
	/* incremental == one shot */
	cr_assert_eq(f(f(0, "1234", 4), "56789", 5), 0xe3069283u);
}

Test(crc32c, software_vectors)
{
	vectors(kp_crc32c_sw);
}

Test(crc32c, hardware_vectors)
{
	if (!kp_crc32c_hw_available())
		cr_skip_test("no SSE4.2 on this CPU");
	vectors(kp_crc32c_hw);
}

Test(crc32c, dispatch_vectors)
{
	vectors(kp_crc32c);
}

Test(crc32c, implementations_agree_on_all_lengths_and_alignments)
{
	if (!kp_crc32c_hw_available())
		cr_skip_test("no SSE4.2 on this CPU");
	static uint8_t buf[4096 + 16];
	uint64_t x = 88172645463325252ull;
	for (size_t i = 0; i < sizeof(buf); i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (uint8_t)x;
	}
	for (size_t align = 0; align < 8; align++)
		for (size_t len = 0; len <= 1100; len += (len < 80 ? 1 : 37))
			cr_assert_eq(kp_crc32c_sw(7, buf + align, len),
				     kp_crc32c_hw(7, buf + align, len), "len %zu align %zu", len,
				     align);
	cr_assert_eq(kp_crc32c_sw(0, buf, 4096), kp_crc32c_hw(0, buf, 4096));
}
