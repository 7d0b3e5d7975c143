/* common/log.c: see log.h. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "alloc.h"
#include "log.h"

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_outputs[8];
static size_t log_output_count;
static int log_threshold = 1; /* index in level_names: info */
static const char *const level_names[] = {"debug", "info", "warn", "error", "fatal"};

static int level_rank(const char *level)
{
	for (int k = 0; k < 5; k++)
		if (strcmp(level, level_names[k]) == 0)
			return k;
	return 1;
}

int log_configure(const char *level, const char *outputs, char *err, size_t errlen)
{
	log_threshold = level_rank(level);
	log_output_count = 0;
	char *list = xstrdup(outputs);
	int rc = 0;
	for (char *save = NULL, *item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		FILE *out;
		if (!strcmp(item, "default") || !strcmp(item, "stderr"))
			out = stderr;
		else if (!strcmp(item, "stdout"))
			out = stdout;
		else if (!(out = fopen(item, "ae"))) {
			snprintf(err, errlen, "--log-outputs: cannot open %s: %s", item, strerror(errno));
			rc = -1;
			break;
		}
		if (log_output_count < sizeof(log_outputs) / sizeof(log_outputs[0]))
			log_outputs[log_output_count++] = out;
	}
	free(list);
	return rc;
}

const char *log_json_escape(const char *text, char *out, size_t out_size)
{
	size_t used = 0;
	if (out_size == 0)
		return out;
	for (const unsigned char *c = (const unsigned char *)text; *c && used + 7 < out_size; c++) {
		if (*c == '"' || *c == '\\') {
			out[used++] = '\\';
			out[used++] = (char)*c;
		} else if (*c < 0x20) {
			used += (size_t)snprintf(out + used, out_size - used, "\\u%04x", *c);
		} else {
			out[used++] = (char)*c;
		}
	}
	out[used] = '\0';
	return out;
}

static void write_escaped(FILE *out, const char *text)
{
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(out, "\\u%04x", *c);
		else
			fputc(*c, out);
	}
}

void log_write(const char *level, const char *message, const char *fields_format, ...)
{
	if (level_rank(level) < log_threshold)
		return;
	struct timeval now;
	gettimeofday(&now, NULL);
	struct tm utc;
	gmtime_r(&now.tv_sec, &utc);
	char timestamp[64];
	strftime(timestamp, sizeof(timestamp), "%Y-%m-%dT%H:%M:%S", &utc);
	pthread_mutex_lock(&log_lock);
	size_t outputs = log_output_count ? log_output_count : 1;
	for (size_t k = 0; k < outputs; k++) {
		FILE *out = log_output_count ? log_outputs[k] : stderr;
		fprintf(out, "{\"level\":\"%s\",\"ts\":\"%s.%03ldZ\",\"caller\":\"quorumd\",\"msg\":\"", level, timestamp,
		        (long)(now.tv_usec / 1000));
		write_escaped(out, message);
		fputc('"', out);
		if (fields_format && *fields_format) {
			fputc(',', out);
			va_list arguments;
			va_start(arguments, fields_format);
			vfprintf(out, fields_format, arguments);
			va_end(arguments);
		}
		fputs("}\n", out);
		fflush(out);
	}
	pthread_mutex_unlock(&log_lock);
}
