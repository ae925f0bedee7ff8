/*
 * crc32c.h -- CRC-32C (Castagnoli), the checksum of every log batch and index entry.
 *
 * Uses the SSE4.2 crc32 instruction when the CPU has it and a slicing-by-8 table otherwise;
 * both produce identical results and both are tested against known vectors.
 */
#ifndef KP_CRC32C_H
#define KP_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend 'crc' (0 to start) over 'len' bytes of 'buf'. Thread: safe. */
uint32_t kp_crc32c(uint32_t crc, const void *buf, size_t len);

/* The two implementations, exposed for tests and benchmarks. kp_crc32c_hw must only be
 * called when kp_crc32c_hw_available() is true. */
uint32_t kp_crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t kp_crc32c_hw(uint32_t crc, const void *buf, size_t len);
int kp_crc32c_hw_available(void);

#endif
