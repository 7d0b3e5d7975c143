/* storage/wal/error.c: filling the caller's error buffer. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

int wal_error(char *err, size_t errlen, int error_number, const char *format, ...)
{
	if (err != NULL && errlen > 0) {
		va_list arguments;
		va_start(arguments, format);
		vsnprintf(err, errlen, format, arguments);
		va_end(arguments);
	}
	return error_number > 0 ? -error_number : error_number;
}
