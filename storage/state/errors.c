/* storage/state/errors.c: the status table and the caller-buffer error messages. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

static const char *const status_messages[] = {
#define STATE_STATUS_MESSAGE(name, message) [name] = message,
    STATE_STATUS_LIST(STATE_STATUS_MESSAGE)
#undef STATE_STATUS_MESSAGE
};

const char *state_status_message(int status)
{
    if (status < 0 || (size_t)status >= sizeof status_messages / sizeof status_messages[0])
        return "unknown status";
    return status_messages[status];
}

int state_fail(char *err, size_t errlen, int status, const char *format, ...)
{
    if (err == NULL || errlen == 0)
        return status;
    int used = snprintf(err, errlen, "%s", state_status_message(status));
    if (format != NULL && format[0] != '\0' && used >= 0 && (size_t)used + 2 < errlen) {
        snprintf(err + used, errlen - (size_t)used, ": ");
        va_list args;
        va_start(args, format);
        vsnprintf(err + used + 2, errlen - (size_t)used - 2, format, args);
        va_end(args);
    }
    return status;
}

int state_fail_rocksdb(char *err, size_t errlen, char *rocksdb_error, const char *what)
{
    int code = rocksdb_error != NULL && strstr(rocksdb_error, "No space left on device") != NULL ? STATE_ERR_NOSPACE
                                                                                                  : STATE_ERR_IO;
    int status = state_fail(err, errlen, code, "rocksdb %s: %s", what,
                            rocksdb_error != NULL ? rocksdb_error : "unknown error");
    rocksdb_free(rocksdb_error);
    return status;
}
