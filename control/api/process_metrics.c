/* control/api/process_metrics.c: see process_metrics.h. The figures come from where Prometheus' procfs
 * library takes them, so dashboards built on etcd's process_* series read the same quantities. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "process_metrics.h"

static double limit_of(int resource)
{
	struct rlimit limit;
	if (getrlimit(resource, &limit) != 0)
		return 0;
	return limit.rlim_cur == RLIM_INFINITY ? 18446744073709551615.0 : (double)limit.rlim_cur;
}

/* Fields of /proc/self/stat after the command name (which may hold spaces and parentheses): field 3 is the
 * state, 14 utime, 15 stime, 22 starttime (clock ticks after boot), 23 vsize (bytes), 24 rss (pages). */
static int read_stat(struct process_metrics *out, char *err, size_t errlen)
{
	FILE *file = fopen("/proc/self/stat", "r");
	if (!file) {
		snprintf(err, errlen, "cannot open /proc/self/stat");
		return -1;
	}
	char line[1024];
	char *read = fgets(line, sizeof(line), file);
	fclose(file);
	char *fields = read ? strrchr(line, ')') : NULL;
	unsigned long long utime, stime, start_ticks, vsize;
	long long rss_pages;
	if (!fields || sscanf(fields + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
	                                  "%llu %llu %lld",
	                      &utime, &stime, &start_ticks, &vsize, &rss_pages) != 5) {
		snprintf(err, errlen, "cannot parse /proc/self/stat");
		return -1;
	}
	double ticks_per_second = (double)sysconf(_SC_CLK_TCK);
	out->cpu_seconds = (double)(utime + stime) / ticks_per_second;
	out->virtual_bytes = (double)vsize;
	out->resident_bytes = (double)rss_pages * (double)sysconf(_SC_PAGESIZE);

	file = fopen("/proc/stat", "r");
	unsigned long long boot_time = 0;
	while (file && fgets(line, sizeof(line), file))
		if (sscanf(line, "btime %llu", &boot_time) == 1)
			break;
	if (file)
		fclose(file);
	if (!boot_time) {
		snprintf(err, errlen, "no btime in /proc/stat");
		return -1;
	}
	out->start_time_seconds = (double)boot_time + (double)start_ticks / ticks_per_second;
	return 0;
}

int process_metrics_read(struct process_metrics *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	out->max_fds = limit_of(RLIMIT_NOFILE);
	out->virtual_max_bytes = limit_of(RLIMIT_AS);
	int status = read_stat(out, err, errlen);
	/* The directory's own descriptor is counted, as procfs (which lists it the same way) counts it. */
	DIR *directory = opendir("/proc/self/fd");
	if (!directory) {
		snprintf(err, errlen, "cannot list /proc/self/fd");
		return -1;
	}
	struct dirent *entry;
	while ((entry = readdir(directory)))
		if (entry->d_name[0] != '.')
			out->open_fds++;
	closedir(directory);
	return status;
}

void prometheus_number(double value, char *out, size_t out_length)
{
	if (isnan(value)) {
		snprintf(out, out_length, "NaN");
		return;
	}
	if (isinf(value)) {
		snprintf(out, out_length, value > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (value == 0) {
		snprintf(out, out_length, signbit(value) ? "-0" : "0");
		return;
	}
	/* The fewest significant digits that read back as the same double. */
	char scientific[40];
	int digits = 1;
	for (; digits < 17; digits++) {
		snprintf(scientific, sizeof(scientific), "%.*e", digits - 1, value);
		if (strtod(scientific, NULL) == value)
			break;
	}
	snprintf(scientific, sizeof(scientific), "%.*e", digits - 1, value);
	int exponent = atoi(strchr(scientific, 'e') + 1);
	if (exponent < -4 || exponent >= 6) {
		snprintf(out, out_length, "%s", scientific);
		return;
	}
	int decimals = digits - 1 - exponent;
	snprintf(out, out_length, "%.*f", decimals > 0 ? decimals : 0, value);
}
