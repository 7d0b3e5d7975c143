/* tests/benchtool/test_benchtool.c: quorum-bench's histogram math and flag parser, without a network.
 *
 * Histogram: every value lies inside its bucket, buckets tile the 64-bit range with no gap or overlap
 * and are at most 1/128 of their values wide; percentiles of known distributions are within 1%;
 * merging equals recording everything in one; the --cdf-out file is a proper CDF. Flags: etcd's published command lines and the issue's
 * spellings parse to the same configuration; each bad flag fails with a message naming it.
 * Run: build/tests/benchtool/test-benchtool (prints FAIL lines and exits 1 on a failure). */
#include "bench_flags.h"
#include "histogram.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

#define CHECK(condition, ...)                                                                     \
	do {                                                                                          \
		if (!(condition)) {                                                                       \
			failures++;                                                                           \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #condition);                           \
			printf(__VA_ARGS__);                                                                  \
			printf("\n");                                                                         \
		}                                                                                         \
	} while (0)

static uint64_t rng = 88172645463325252ull;
static uint64_t next_random(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_buckets(void)
{
	CHECK(hist_bucket_of(0) == 0, "0 in bucket %u", hist_bucket_of(0));
	CHECK(hist_bucket_of(255) == 255, "255 in bucket %u", hist_bucket_of(255));
	CHECK(hist_bucket_of(UINT64_MAX) == HIST_BUCKETS - 1, "max in bucket %u of %u", hist_bucket_of(UINT64_MAX),
	    HIST_BUCKETS);
	CHECK(hist_bucket_high(HIST_BUCKETS - 1) == UINT64_MAX, "top bucket ends at %llu",
	    (unsigned long long)hist_bucket_high(HIST_BUCKETS - 1));
	/* Tiling: each bucket starts right after the previous one ends; width <= low / 128. */
	for (unsigned b = 1; b < HIST_BUCKETS; b++) {
		uint64_t low = hist_bucket_low(b), high = hist_bucket_high(b);
		if (hist_bucket_high(b - 1) + 1 != low) {
			CHECK(0, "bucket %u starts at %llu, the previous ends at %llu", b, (unsigned long long)low,
			    (unsigned long long)hist_bucket_high(b - 1));
			break;
		}
		if (b >= 2 * HIST_SUB && (double)(high - low + 1) > (double)low / HIST_SUB) {
			CHECK(0, "bucket %u [%llu, %llu] is wider than 1/%u of its values", b, (unsigned long long)low,
			    (unsigned long long)high, HIST_SUB);
			break;
		}
		if (hist_bucket_of(low) != b || hist_bucket_of(high) != b) {
			CHECK(0, "bucket %u: its ends map to %u and %u", b, hist_bucket_of(low), hist_bucket_of(high));
			break;
		}
	}
	/* Random values of every magnitude fall inside their bucket. */
	for (int i = 0; i < 200000; i++) {
		uint64_t v = next_random() >> (next_random() % 64);
		unsigned b = hist_bucket_of(v);
		if (b >= HIST_BUCKETS || v < hist_bucket_low(b) || v > hist_bucket_high(b)) {
			CHECK(0, "%llu in bucket %u [%llu, %llu]", (unsigned long long)v, b,
			    (unsigned long long)hist_bucket_low(b), (unsigned long long)hist_bucket_high(b));
			break;
		}
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static bool within(uint64_t got, uint64_t want, double fraction)
{
	double d = fabs((double)got - (double)want);
	return d <= fraction * (double)want + 1;
}

static void test_percentiles(void)
{
	static struct histogram h, a, b, merged;
	hist_init(&h);
	CHECK(hist_percentile(&h, 50) == 0 && hist_mean(&h) == 0, "empty histogram");

	/* 1..100000 microseconds in ns, uniform: p50 = 50 ms etc. */
	for (uint64_t us = 1; us <= 100000; us++)
		hist_record(&h, us * 1000);
	CHECK(h.count == 100000, "count %llu", (unsigned long long)h.count);
	CHECK(h.min == 1000 && h.max == 100000000, "min %llu max %llu", (unsigned long long)h.min,
	    (unsigned long long)h.max);
	double ps[] = {50, 90, 99, 99.9};
	uint64_t want[] = {50000000, 90000000, 99000000, 99900000};
	for (int i = 0; i < 4; i++)
		CHECK(within(hist_percentile(&h, ps[i]), want[i], 0.01), "p%g = %llu, want %llu within 1%%", ps[i],
		    (unsigned long long)hist_percentile(&h, ps[i]), (unsigned long long)want[i]);
	CHECK(hist_percentile(&h, 100) == h.max, "p100 is the max");
	CHECK(fabs(hist_mean(&h) - 50000500.0) < 1, "mean %f", hist_mean(&h));

	/* A long-tailed random sample: each percentile within 1% of the exact order statistic. */
	enum { N = 100000 };
	static uint64_t values[N];
	hist_init(&a);
	hist_init(&b);
	hist_init(&merged);
	for (int i = 0; i < N; i++) {
		double u = (double)(next_random() >> 11) / 9007199254740992.0;
		values[i] = (uint64_t)(200000.0 / (1.0 - 0.999 * u)); /* 0.2 ms .. 200 ms, heavy tail */
		hist_record(i % 2 ? &a : &b, values[i]);
		hist_record(&merged, values[i]);
	}
	qsort(values, N, sizeof(values[0]), cmp_u64);
	hist_merge(&a, &b);
	for (int i = 0; i < 4; i++) {
		uint64_t exact = values[(size_t)ceil(ps[i] / 100 * N) - 1];
		CHECK(within(hist_percentile(&a, ps[i]), exact, 0.01), "tail p%g = %llu, exact %llu", ps[i],
		    (unsigned long long)hist_percentile(&a, ps[i]), (unsigned long long)exact);
		CHECK(hist_percentile(&a, ps[i]) == hist_percentile(&merged, ps[i]), "merge changes p%g", ps[i]);
	}
	CHECK(a.count == N && a.min == values[0] && a.max == values[N - 1], "merged count/min/max");

	/* One value: every percentile is that value exactly (clamped to min and max). */
	hist_init(&h);
	hist_record(&h, 1234567);
	CHECK(hist_percentile(&h, 50) == 1234567 && hist_percentile(&h, 99.9) == 1234567, "single value %llu",
	    (unsigned long long)hist_percentile(&h, 50));
}

/* The CDF file (--cdf-out): header, ascending X from min's bucket to max, non-decreasing F ending at exactly 1,
 * and F at the median near one half. */
static void test_cdf(void)
{
	static struct histogram h;
	hist_init(&h);
	FILE *f = tmpfile();
	CHECK(f != NULL, "tmpfile");
	if (!f)
		return;
	CHECK(hist_write_cdf(&h, 1e6, f) == 0, "empty CDF");
	rewind(f);
	char line[256];
	int lines = 0;
	while (fgets(line, sizeof(line), f))
		lines++;
	CHECK(lines == 1, "empty histogram: %d lines, want the header only", lines);
	fclose(f);

	for (uint64_t us = 1; us <= 100000; us++) /* 1 us .. 100 ms in ns */
		hist_record(&h, us * 1000);
	f = tmpfile();
	CHECK(f != NULL, "tmpfile");
	if (!f)
		return;
	CHECK(hist_write_cdf(&h, 1e6, f) == 0, "CDF write");
	rewind(f);
	CHECK(fgets(line, sizeof(line), f) && line[0] == '#' && strstr(line, "latency_ms fraction"), "header \"%s\"",
	    line);
	double x, fr, last_x = -1, last_f = 0, first_x = -1, f_at_median = -1;
	int points = 0;
	bool ascending = true;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lf %lf", &x, &fr) != 2) {
			CHECK(0, "bad line \"%s\"", line);
			break;
		}
		if (points++ == 0)
			first_x = x;
		if (x <= last_x || fr < last_f || fr > 1)
			ascending = false;
		if (f_at_median < 0 && x >= 50.0)
			f_at_median = fr;
		last_x = x;
		last_f = fr;
	}
	fclose(f);
	CHECK(ascending, "X strictly ascending and F non-decreasing within [0, 1]");
	CHECK(first_x >= 0.001 && first_x <= 0.001 * 1.01, "starts in min's bucket (0.001 ms), got %f", first_x);
	CHECK(fabs(last_x - 100.0) < 1e-9 && last_f == 1.0, "ends at max 100 ms with 1, got %f %f", last_x, last_f);
	CHECK(fabs(f_at_median - 0.5) < 0.01, "F(50 ms) = %f, want 0.5 within 1%%", f_at_median);
	CHECK(points > 100 && points < 2000, "%d points: one per non-empty bucket", points);
}

/* ---- flags ---- */

static int parse(struct bench_config *cfg, char *err, size_t errlen, ...)
{
	char *argv[64];
	int argc = 0;
	argv[argc++] = "quorum-bench";
	va_list ap;
	va_start(ap, errlen);
	char *a;
	while ((a = va_arg(ap, char *)) != NULL && argc < 63)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	FILE *devnull = fopen("/dev/null", "w");
	int rc = bench_parse_args(argc, argv, cfg, devnull, err, errlen);
	fclose(devnull);
	return rc;
}

#define PARSE_OK(cfg, ...)                                                                        \
	do {                                                                                          \
		char e_[512] = "";                                                                        \
		int rc_ = parse(cfg, e_, sizeof(e_), __VA_ARGS__, (char *)NULL);                          \
		CHECK(rc_ == 0, "parse failed: %s", e_);                                                  \
	} while (0)

/* The parse fails and the message mentions needle. */
#define PARSE_FAILS(needle, ...)                                                                  \
	do {                                                                                          \
		struct bench_config c_;                                                                   \
		char e_[512] = "";                                                                        \
		int rc_ = parse(&c_, e_, sizeof(e_), __VA_ARGS__, (char *)NULL);                          \
		CHECK(rc_ == -1 && strstr(e_, needle), "want an error naming %s, got rc %d \"%s\"", needle, rc_, e_); \
		bench_config_free(&c_);                                                                   \
	} while (0)

static void test_flags(void)
{
	struct bench_config c;

	/* etcd's published write benchmark, verbatim. */
	PARSE_OK(&c, "--endpoints=http://127.0.0.1:2379,127.0.0.1:22379,http://[::1]:32379", "--target-leader",
	    "--conns=100", "--clients=1000", "put", "--key-size=8", "--sequential-keys", "--total=100000",
	    "--val-size=256");
	CHECK(c.workload == BENCH_PUT, "workload %d", c.workload);
	CHECK(c.endpoint_count == 3, "%zu endpoints", c.endpoint_count);
	CHECK(!strcmp(c.endpoints[0].host, "127.0.0.1") && !strcmp(c.endpoints[0].port, "2379"), "endpoint 0 %s %s",
	    c.endpoints[0].host, c.endpoints[0].port);
	CHECK(!strcmp(c.endpoints[1].host, "127.0.0.1") && !strcmp(c.endpoints[1].port, "22379"), "endpoint 1");
	CHECK(!strcmp(c.endpoints[2].host, "::1") && !strcmp(c.endpoints[2].port, "32379"), "endpoint 2 %s",
	    c.endpoints[2].host);
	CHECK(c.target_leader && c.conns == 100 && c.clients == 1000, "globals");
	CHECK(c.key_size == 8 && c.val_size == 256 && c.sequential_keys && c.total == 100000, "put flags");
	CHECK(c.duration_ns == 0 && c.rate == 0 && !c.json, "defaults");
	bench_config_free(&c);

	/* The spelling, space-separated values, --json, --duration, --key-space. */
	PARSE_OK(&c, "--endpoints", "127.0.0.1:2379", "--conns", "32", "--clients=256", "--duration=15s", "put",
	    "--key-size=8", "--val-size", "256", "--key-space=100000", "--json");
	CHECK(c.conns == 32 && c.clients == 256 && c.duration_ns == 15000000000ull && c.total == 0, "issue globals");
	CHECK(c.key_space == 100000 && c.key_space_set && c.json, "key space %llu", (unsigned long long)c.key_space);
	bench_config_free(&c);

	/* etcd's --key-space-size and --output=json; defaults as etcd's. */
	PARSE_OK(&c, "put", "--key-space-size=1000", "--output=json", "--rate=500");
	CHECK(c.key_space == 1000 && c.json && c.rate == 500, "etcd spellings");
	CHECK(c.total == BENCH_DEFAULT_TOTAL && c.key_size == 8 && c.val_size == 8 && c.conns == 1 && c.clients == 1,
	    "etcd defaults");
	CHECK(!strcmp(c.endpoints[0].port, "2379"), "default endpoint");
	bench_config_free(&c);

	/* TLS: an https:// endpoint is TLS; etcd's --cacert/--cert/--key make every endpoint TLS. */
	PARSE_OK(&c, "--endpoints=https://127.0.0.1:2379,http://127.0.0.1:22379", "put");
	CHECK(c.endpoint_count == 2 && c.endpoints[0].tls && !c.endpoints[1].tls && !strcmp(c.endpoints[0].host,
	    "127.0.0.1"), "https endpoint");
	bench_config_free(&c);
	PARSE_OK(&c, "--endpoints=127.0.0.1:2379", "--cacert=ca.pem", "--cert", "c.pem", "--key=k.pem", "put");
	CHECK(c.endpoints[0].tls && !strcmp(c.ca_file, "ca.pem") && !strcmp(c.cert_file, "c.pem") &&
	    !strcmp(c.key_file, "k.pem"), "TLS flags");
	bench_config_free(&c);

	/* --endpoints twice: the second adds to the first (cobra's StringSlice). */
	PARSE_OK(&c, "--endpoints=127.0.0.1:1", "--endpoints", "127.0.0.1:2,127.0.0.1:3", "status");
	CHECK(c.endpoint_count == 3 && !strcmp(c.endpoints[2].port, "3"), "%zu endpoints", c.endpoint_count);
	bench_config_free(&c);

	/* range KEY [END] --consistency. */
	PARSE_OK(&c, "range", "foo", "--consistency=s");
	CHECK(c.workload == BENCH_RANGE && !strcmp(c.range_key, "foo") && !c.range_end && c.serializable, "range s");
	bench_config_free(&c);
	PARSE_OK(&c, "--clients=10", "range", "a", "z", "--consistency", "l", "--total=5");
	CHECK(!strcmp(c.range_end, "z") && !c.serializable && c.total == 5, "range l with end");
	bench_config_free(&c);

	/* txn: one key per client by default; mixed: --read-ratio and etcd's --rw-ratio. */
	PARSE_OK(&c, "--clients=64", "--conns=8", "txn");
	CHECK(c.workload == BENCH_TXN && c.key_space == 64, "txn key space %llu", (unsigned long long)c.key_space);
	bench_config_free(&c);
	PARSE_OK(&c, "mixed", "--read-ratio=0.9", "--consistency=s");
	CHECK(c.workload == BENCH_MIXED && fabs(c.read_ratio - 0.9) < 1e-12 && c.serializable, "mixed");
	bench_config_free(&c);
	PARSE_OK(&c, "mixed", "--rw-ratio=3");
	CHECK(fabs(c.read_ratio - 0.75) < 1e-12, "rw-ratio 3 = read ratio %f", c.read_ratio);
	bench_config_free(&c);

	/* Global flags after the workload (cobra's persistent flags); conns capped at clients. */
	PARSE_OK(&c, "put", "--conns=10", "--clients=4", "--target-leader=true", "--threads=8");
	CHECK(c.conns == 4 && c.clients == 4 && c.threads == 4 && c.target_leader, "caps: conns %u threads %u",
	    c.conns, c.threads);
	bench_config_free(&c);

	/* --cdf-out names a file (kept as given); absent it is NULL. */
	PARSE_OK(&c, "--rate=100", "put", "--cdf-out", "/tmp/x.cdf");
	CHECK(c.cdf_out && !strcmp(c.cdf_out, "/tmp/x.cdf") && c.rate == 100, "cdf-out %s", c.cdf_out ? c.cdf_out : "(null)");
	bench_config_free(&c);
	PARSE_OK(&c, "--cdf-out=a.dat", "range", "k");
	CHECK(c.cdf_out && !strcmp(c.cdf_out, "a.dat"), "cdf-out=");
	bench_config_free(&c);
	PARSE_OK(&c, "put");
	CHECK(c.cdf_out == NULL, "no cdf-out by default");
	bench_config_free(&c);

	/* Durations. */
	uint64_t ns;
	CHECK(bench_parse_duration("1m30s", &ns) == 0 && ns == 90000000000ull, "1m30s");
	CHECK(bench_parse_duration("500ms", &ns) == 0 && ns == 500000000ull, "500ms");
	CHECK(bench_parse_duration("1.5s", &ns) == 0 && ns == 1500000000ull, "1.5s");
	CHECK(bench_parse_duration("2", &ns) == 0 && ns == 2000000000ull, "bare seconds");
	CHECK(bench_parse_duration("10x", &ns) != 0 && bench_parse_duration("", &ns) != 0 &&
	          bench_parse_duration("-1s", &ns) != 0 && bench_parse_duration("1m30", &ns) != 0,
	    "bad durations");

	/* Keys as etcd's benchmark: Go varint of the index, zero padded. */
	uint8_t key[8];
	bench_make_key(key, 8, 0);
	CHECK(key[0] == 0 && key[7] == 0, "key 0");
	bench_make_key(key, 8, 1);
	CHECK(key[0] == 2 && key[1] == 0, "key 1 zig-zags to 2");
	bench_make_key(key, 8, 100000);
	CHECK(key[0] == (uint8_t)(0x80 | (200000 & 0x7f)) && key[1] == (uint8_t)(0x80 | ((200000 >> 7) & 0x7f)) &&
	          key[2] == (uint8_t)(200000 >> 14) && key[3] == 0,
	    "key 100000: %02x %02x %02x", key[0], key[1], key[2]);
	CHECK(bench_varint_length(63) == 1 && bench_varint_length(64) == 2, "varint lengths");

	/* Bad flags: each message names the flag. */
	PARSE_FAILS("--conns", "--conns=0", "put");
	PARSE_FAILS("--conns", "--conns=abc", "put");
	PARSE_FAILS("--clients", "--clients=-3", "put");
	PARSE_FAILS("--total", "--total=1x", "put");
	PARSE_FAILS("--duration", "--duration=fast", "put");
	PARSE_FAILS("--total and --duration", "--total=10", "--duration=1s", "put");
	PARSE_FAILS("--rate", "--rate=-1", "put");
	PARSE_FAILS("--endpoints", "--endpoints=127.0.0.1", "put");
	PARSE_FAILS("--endpoints", "--endpoints=unix:///tmp/etcd.sock", "put");
	PARSE_FAILS("--endpoints", "--endpoints=127.0.0.1:99999", "put");
	PARSE_FAILS("--bogus", "--bogus=1", "put");
	PARSE_FAILS("--key-size", "--key-size=8", "put"); /* a workload flag before the workload */
	PARSE_FAILS("--consistency", "put", "--consistency=s");
	PARSE_FAILS("--consistency", "range", "k", "--consistency=x");
	PARSE_FAILS("--read-ratio", "mixed", "--read-ratio=1.5");
	PARSE_FAILS("--key-size", "put", "--key-size=1", "--key-space-size=1000");
	PARSE_FAILS("--cert", "--cert=a.pem", "put"); /* without --key */
	PARSE_FAILS("--json", "--json=maybe", "put");
	PARSE_FAILS("--clients", "put", "--clients");
	PARSE_FAILS("needs KEY", "range");
	PARSE_FAILS("too many", "range", "a", "b", "c");
	PARSE_FAILS("unknown workload", "delete");
	PARSE_FAILS("no workload", "--conns=2");
	PARSE_FAILS("unexpected argument", "put", "extra");
	PARSE_FAILS("-x", "-x", "put");
	PARSE_FAILS("--cdf-out", "put", "--cdf-out=");
	PARSE_FAILS("--cdf-out", "put", "--cdf-out");
}

int main(void)
{
	test_buckets();
	test_percentiles();
	test_cdf();
	test_flags();
	if (failures) {
		printf("%d check(s) failed; rerun: build/tests/benchtool/test-benchtool\n", failures);
		return 1;
	}
	printf("ok: histogram and flag parser\n");
	return 0;
}
