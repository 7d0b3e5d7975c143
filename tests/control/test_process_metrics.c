/* tests/control/test_process_metrics.c: Prometheus' number format against what Go's client wrote for etcd
 * 3.4.23's /metrics, and the process figures against what this test process can check itself. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "process_metrics.h"

#include "check.h"

static void expect_number(double value, const char *want)
{
	char out[40];
	prometheus_number(value, out, sizeof(out));
	CHECK(strcmp(out, want) == 0, "%.17g printed as %s, want %s", value, out, want);
}

int main(void)
{
	/* Values seen in etcd 3.4.23's /metrics, and the edges of Go's 'g' with the shortest digits. */
	expect_number(0.01, "0.01");
	expect_number(20000, "20000");
	expect_number(19, "19");
	expect_number(24498176, "2.4498176e+07");
	expect_number(1796610087.15, "1.79661008715e+09");
	expect_number(11943866368, "1.1943866368e+10");
	expect_number(18446744073709551615.0, "1.8446744073709552e+19");
	expect_number(999999, "999999");
	expect_number(1000000, "1e+06");
	expect_number(0.0001, "0.0001");
	expect_number(0.00001, "1e-05");
	expect_number(0, "0");
	expect_number(1, "1");
	expect_number(0.1 + 0.2, "0.30000000000000004");
	expect_number(INFINITY, "+Inf");
	expect_number(NAN, "NaN");

	struct process_metrics process;
	char error[96] = "";
	CHECK(process_metrics_read(&process, error, sizeof(error)) == 0, "%s", error);
	struct rlimit files;
	getrlimit(RLIMIT_NOFILE, &files);
	CHECK(process.max_fds == (double)files.rlim_cur || files.rlim_cur == RLIM_INFINITY, "max fds %g", process.max_fds);
	/* stdin, stdout, stderr and the listing's own descriptor at least. */
	CHECK(process.open_fds >= 4, "open fds %g", process.open_fds);
	CHECK(process.resident_bytes > 100 * 1024 && process.resident_bytes < process.virtual_bytes,
	      "resident %g, virtual %g", process.resident_bytes, process.virtual_bytes);
	double now = (double)time(NULL);
	CHECK(process.start_time_seconds > now - 600 && process.start_time_seconds <= now + 1,
	      "start time %g, now %g", process.start_time_seconds, now);
	CHECK(process.cpu_seconds >= 0 && process.cpu_seconds < 600, "cpu %g", process.cpu_seconds);
	CHECK(process.virtual_max_bytes > 0, "virtual max %g", process.virtual_max_bytes);
	printf("%s\n", failures ? "FAILED" : "ok");
	return failures ? 1 : 0;
}
