/* common/crc32c.c: CRC32C with the SSE4.2 crc32 instruction when the CPU has it, a table otherwise.
 * The choice is made once at run time, so one binary runs on any x86-64 (and on other architectures). */
#include <pthread.h>
#include <string.h>

#include "crc32c.h"

/* Reflected form of the Castagnoli polynomial 0x1EDC6F41. */
#define CASTAGNOLI_REFLECTED 0x82F63B78u

static uint32_t crc_table[256];
static bool use_hardware;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc32c_initialize(void)
{
	for (uint32_t byte = 0; byte < 256; byte++) {
		uint32_t crc = byte;
		for (int bit = 0; bit < 8; bit++)
			crc = (crc >> 1) ^ (CASTAGNOLI_REFLECTED & (0u - (crc & 1u)));
		crc_table[byte] = crc;
	}
	use_hardware = crc32c_has_hardware();
}

uint32_t crc32c_software(uint32_t crc, const void *data, size_t length)
{
	pthread_once(&crc_once, crc32c_initialize);
	const uint8_t *bytes = data;
	crc = ~crc;
	for (size_t i = 0; i < length; i++)
		crc = crc_table[(crc ^ bytes[i]) & 0xffu] ^ (crc >> 8);
	return ~crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
uint32_t crc32c_hardware(uint32_t crc, const void *data, size_t length)
{
	const uint8_t *bytes = data;
	uint64_t state = ~crc;
	while (length >= 8) {
		uint64_t word;
		memcpy(&word, bytes, sizeof word); /* unaligned-safe load */
		state = __builtin_ia32_crc32di(state, word);
		bytes += 8;
		length -= 8;
	}
	uint32_t narrow = (uint32_t)state;
	while (length-- > 0)
		narrow = __builtin_ia32_crc32qi(narrow, *bytes++);
	return ~narrow;
}

bool crc32c_has_hardware(void)
{
	return __builtin_cpu_supports("sse4.2");
}
#else
uint32_t crc32c_hardware(uint32_t crc, const void *data, size_t length)
{
	return crc32c_software(crc, data, length);
}

bool crc32c_has_hardware(void)
{
	return false;
}
#endif

uint32_t crc32c(uint32_t crc, const void *data, size_t length)
{
	pthread_once(&crc_once, crc32c_initialize);
	return use_hardware ? crc32c_hardware(crc, data, length) : crc32c_software(crc, data, length);
}
