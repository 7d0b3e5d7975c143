/* common/log.h: the process's log, one JSON object per line as etcd's zap logger writes them
 * ({"level":..,"ts":..,"caller":..,"msg":.., named fields}), so operators' log tooling for etcd reads
 * quorumd's lines unchanged. Any thread may log; lines never interleave. */
#ifndef QUORUMD_COMMON_LOG_H
#define QUORUMD_COMMON_LOG_H

#include <stddef.h>
#include <stdio.h>

/* --log-level (debug, info, warn, error) and --log-outputs (default, stderr, stdout or file paths, comma
 * separated). Returns 0, or -1 with a message naming the output that failed. Before it is called, lines
 * of level info and up go to stderr. */
int log_configure(const char *level, const char *outputs, char *err, size_t errlen);

/* One line. fields_format (printf) writes the named fields after "msg", without the leading comma:
 * "\"member-id\":\"%016" PRIx64 "\"". Field values that hold arbitrary text go through
 * log_json_escape first. */
void log_write(const char *level, const char *message, const char *fields_format, ...)
    __attribute__((format(printf, 3, 4)));

/* text as the contents of a JSON string (quotes, backslashes and control characters escaped) in out,
 * cut short to fit out_size; returns out. */
const char *log_json_escape(const char *text, char *out, size_t out_size);

#endif
