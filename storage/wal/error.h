/* storage/wal/error.h: filling the caller's error buffer (redis anet.c style: say what failed and why). */
#ifndef QUORUMD_STORAGE_WAL_ERROR_H
#define QUORUMD_STORAGE_WAL_ERROR_H

#include <stddef.h>

/* Formats into err (if not NULL) and returns -error_number, so callers can `return wal_error(...)`. */
int wal_error(char *err, size_t errlen, int error_number, const char *format, ...)
	__attribute__((format(printf, 4, 5)));

#endif
