/* common/text_buffer.h: a string that grows as printf-style pieces are appended, for texts built in
 * many small steps (metrics pages, JSON bodies) whose length is not known ahead. */
#ifndef QUORUMD_COMMON_TEXT_BUFFER_H
#define QUORUMD_COMMON_TEXT_BUFFER_H

#include <stddef.h>

/* data is malloc'd (the caller frees it) and NUL-terminated once anything was appended; {0} is empty. */
struct text_buffer {
	char *data;
	size_t length;
	size_t capacity;
};

/* Appends the formatted text, growing data through alloc.h (so it cannot fail for lack of memory). A
 * format vsnprintf refuses appends nothing. */
void text_buffer_append(struct text_buffer *text, const char *format, ...) __attribute__((format(printf, 2, 3)));

#endif
