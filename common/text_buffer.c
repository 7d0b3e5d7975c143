/* common/text_buffer.c: see text_buffer.h. */
#include "text_buffer.h"

#include <stdarg.h>
#include <stdio.h>

#include "alloc.h"

void text_buffer_append(struct text_buffer *text, const char *format, ...)
{
	/* Formats into the room left; when that is too small, vsnprintf said how much is needed, so one
	 * growth and a second pass suffice. */
	for (;;) {
		va_list arguments;
		va_start(arguments, format);
		size_t room = text->capacity - text->length;
		int written = vsnprintf(text->data ? text->data + text->length : NULL, room, format, arguments);
		va_end(arguments);
		if (written < 0)
			return;
		if ((size_t)written < room) {
			text->length += (size_t)written;
			return;
		}
		text->capacity = (text->capacity + (size_t)written + 1) * 2;
		text->data = xrealloc(text->data, text->capacity);
	}
}
