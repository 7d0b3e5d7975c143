/* tests/wal/test_crc32c.c: CRC32C against published vectors (RFC 3720 B.4 and the "123456789" check
 * value), and the SSE4.2 and table implementations against each other. */
#include "crc32c.h"
#include "helpers.h"

#include <string.h>

static void check_vector(const void *data, size_t length, uint32_t expected)
{
	CHECK(crc32c(0, data, length) == expected);
	CHECK(crc32c_software(0, data, length) == expected);
	if (crc32c_has_hardware())
		CHECK(crc32c_hardware(0, data, length) == expected);
}

int main(void)
{
	check_vector("123456789", 9, 0xE3069283u);
	check_vector("", 0, 0);
	uint8_t block[32];
	memset(block, 0, sizeof block);
	check_vector(block, sizeof block, 0x8A9136AAu);
	memset(block, 0xff, sizeof block);
	check_vector(block, sizeof block, 0x62A8AB43u);
	for (int i = 0; i < 32; i++)
		block[i] = (uint8_t)i;
	check_vector(block, sizeof block, 0x46DD794Eu);
	for (int i = 0; i < 32; i++)
		block[i] = (uint8_t)(31 - i);
	check_vector(block, sizeof block, 0x113FDB5Cu);

	/* Every length and misalignment, whole and in two pieces. */
	uint8_t data[300];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	for (size_t start = 0; start < 9; start++) {
		for (size_t length = 0; start + length <= sizeof data; length += 7) {
			uint32_t whole = crc32c_software(0, data + start, length);
			if (crc32c_has_hardware())
				CHECK(crc32c_hardware(0, data + start, length) == whole);
			size_t half = length / 2;
			CHECK(crc32c(crc32c(0, data + start, half), data + start + half, length - half) == whole);
		}
	}
	printf("crc32c: hardware %s, vectors ok\n", crc32c_has_hardware() ? "used" : "absent");
	return 0;
}
