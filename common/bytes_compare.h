/* common/bytes_compare.h: the order of two byte strings as etcd orders keys (bytes.Compare: byte by byte,
 * a prefix before the longer string), -1, 0 or 1. */
#ifndef QUORUMD_COMMON_BYTES_COMPARE_H
#define QUORUMD_COMMON_BYTES_COMPARE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline int bytes_compare(const uint8_t *a, size_t a_length, const uint8_t *b, size_t b_length)
{
	size_t common = a_length < b_length ? a_length : b_length;
	int order = common ? memcmp(a, b, common) : 0;
	if (order != 0)
		return order < 0 ? -1 : 1;
	return a_length < b_length ? -1 : a_length > b_length ? 1 : 0;
}

#endif
