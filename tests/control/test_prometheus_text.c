/* tests/control/test_prometheus_text.c: a histogram in Prometheus' text format as client_golang writes it
 * for etcd 3.4.23: cumulative buckets with Go's bound spelling, le="+Inf" holding every observation, then
 * _sum (seconds) and _count; labels before le. The bounds of etcd's round-trip histogram
 * (ExponentialBuckets(0.0001, 2, 16)) are compared with the ones etcd 3.4.23 printed. */
#include <stdlib.h>
#include <string.h>

#include "prometheus_text.h"

#include "check.h"

static void expect_text(const char *what, struct text_buffer *text, const char *want)
{
	const char *got = text->data ? text->data : "";
	CHECK(strcmp(got, want) == 0, "%s:\n--- got\n%s--- want\n%s", what, got, want);
	free(text->data);
	*text = (struct text_buffer){0};
}

int main(void)
{
	struct text_buffer text = {0};
	struct histogram histogram;
	histogram_init(&histogram, 0.001, 2, 3);
	/* 0.5 ms and 1 ms (on the bound: counted in it), 3 ms, 2.5 s (above every bound). */
	histogram_observe_ns(&histogram, 500000);
	histogram_observe_ns(&histogram, 1000000);
	histogram_observe_ns(&histogram, 3000000);
	histogram_observe_ns(&histogram, 2500000000u);
	prometheus_histogram(&text, "etcd_disk_backend_commit_duration_seconds",
	                     "The latency distributions of commit called by backend.", NULL, &histogram);
	expect_text("histogram without labels", &text,
	            "# HELP etcd_disk_backend_commit_duration_seconds The latency distributions of commit called by backend.\n"
	            "# TYPE etcd_disk_backend_commit_duration_seconds histogram\n"
	            "etcd_disk_backend_commit_duration_seconds_bucket{le=\"0.001\"} 2\n"
	            "etcd_disk_backend_commit_duration_seconds_bucket{le=\"0.002\"} 2\n"
	            "etcd_disk_backend_commit_duration_seconds_bucket{le=\"0.004\"} 3\n"
	            "etcd_disk_backend_commit_duration_seconds_bucket{le=\"+Inf\"} 4\n"
	            "etcd_disk_backend_commit_duration_seconds_sum 2.5045\n"
	            "etcd_disk_backend_commit_duration_seconds_count 4\n");

	struct histogram empty;
	histogram_init(&empty, 0.5, 4, 2);
	prometheus_histogram_series(&text, "h", "To=\"5d0de24689f8ef95\"", &empty);
	expect_text("empty histogram with a label", &text,
	            "h_bucket{To=\"5d0de24689f8ef95\",le=\"0.5\"} 0\n"
	            "h_bucket{To=\"5d0de24689f8ef95\",le=\"2\"} 0\n"
	            "h_bucket{To=\"5d0de24689f8ef95\",le=\"+Inf\"} 0\n"
	            "h_sum{To=\"5d0de24689f8ef95\"} 0\n"
	            "h_count{To=\"5d0de24689f8ef95\"} 0\n");

	/* etcd_network_peer_round_trip_time_seconds' bounds as etcd 3.4.23 printed them. */
	struct histogram round_trip;
	histogram_init(&round_trip, 0.0001, 2, 16);
	histogram_observe_ns(&round_trip, 150000);
	prometheus_histogram_series(&text, "r", NULL, &round_trip);
	const char *etcd_bounds[] = {"0.0001", "0.0002", "0.0004", "0.0008", "0.0016", "0.0032", "0.0064", "0.0128",
	                             "0.0256", "0.0512", "0.1024", "0.2048", "0.4096", "0.8192", "1.6384", "3.2768", "+Inf"};
	const char *line = text.data;
	for (size_t k = 0; k < sizeof(etcd_bounds) / sizeof(etcd_bounds[0]); k++) {
		char want[64];
		snprintf(want, sizeof(want), "r_bucket{le=\"%s\"} %d\n", etcd_bounds[k], k == 0 ? 0 : 1);
		CHECK(line && strncmp(line, want, strlen(want)) == 0, "bucket %zu: want %s", k, want);
		line = line ? strchr(line, '\n') : NULL;
		line = line ? line + 1 : NULL;
	}
	CHECK(line && strcmp(line, "r_sum 0.00015\nr_count 1\n") == 0, "sum and count: %s", line ? line : "(none)");
	free(text.data);
	return failures != 0;
}
