/* tests/dataplane/test_fault.c: the fault layer on its own, with a virtual clock: drop, duplicate,
 * reorder and delay do what the configuration says, and the same seed gives the same outcome. */
#include "fault.h"
#include "helpers.h"

#include <errno.h>
#include <stdbool.h>

#define MS 1000000ull
#define FRAMES 1000

struct sink {
	uint32_t ids[4 * FRAMES];
	size_t count;
};

static void collect(void *arg, const uint8_t *frame, size_t length)
{
	struct sink *s = arg;
	CHECK_EQ(length, 4);
	CHECK(s->count < 4 * FRAMES);
	uint32_t id;
	memcpy(&id, frame, 4);
	s->ids[s->count++] = id;
}

/* Feeds FRAMES 4-byte frames (their index) at 1 ms apart, draining as it goes, then drains the rest
 * a second later. */
static void run(const struct fault_config *config, struct sink *s, struct fault_counters *counters)
{
	struct fault *f = NULL;
	CHECK(fault_create(config, &f) == 0);
	memset(s, 0, sizeof *s);
	uint64_t now = 1000 * MS;
	for (uint32_t i = 0; i < FRAMES; i++) {
		fault_input(f, (const uint8_t *)&i, 4, now);
		fault_output(f, now, collect, s);
		now += MS;
	}
	now += 1000 * MS;
	fault_output(f, now, collect, s);
	CHECK_EQ(fault_next_release(f), UINT64_MAX);
	fault_counters(f, counters);
	fault_destroy(f);
}

static void check_each_once(const struct sink *s, int *seen, size_t expect_total)
{
	memset(seen, 0, FRAMES * sizeof *seen);
	for (size_t i = 0; i < s->count; i++) {
		CHECK(s->ids[i] < FRAMES);
		seen[s->ids[i]]++;
	}
	CHECK_EQ(s->count, expect_total);
}

static void test_passthrough(void)
{
	struct fault_config c = {.enabled = true, .seed = 1};
	struct sink s;
	struct fault_counters k;
	run(&c, &s, &k);
	CHECK_EQ(s.count, FRAMES);
	for (uint32_t i = 0; i < FRAMES; i++)
		CHECK_EQ(s.ids[i], i);
	CHECK_EQ(k.input, FRAMES);
	CHECK_EQ(k.output, FRAMES);
	CHECK_EQ(k.dropped + k.duplicated + k.reordered + k.overflow, 0);
}

static void test_drop(void)
{
	struct fault_config c = {.enabled = true, .seed = 7, .drop = 0.3};
	static struct sink s, again;
	struct fault_counters k, k2;
	run(&c, &s, &k);
	CHECK(k.dropped > 240 && k.dropped < 360, "dropped %llu of %d at p=0.3", (unsigned long long)k.dropped,
		FRAMES);
	CHECK_EQ(s.count, FRAMES - k.dropped);
	for (size_t i = 1; i < s.count; i++)
		CHECK(s.ids[i] > s.ids[i - 1], "drop alone keeps the order");
	/* Same seed, same losses. */
	run(&c, &again, &k2);
	CHECK_EQ(again.count, s.count);
	CHECK(memcmp(again.ids, s.ids, s.count * sizeof *s.ids) == 0, "same seed, different outcome");
	/* Another seed, other losses. */
	c.seed = 8;
	run(&c, &again, &k2);
	CHECK(again.count != s.count || memcmp(again.ids, s.ids, s.count * sizeof *s.ids) != 0,
		"seeds 7 and 8 gave the same outcome");
	/* p = 1 loses everything. */
	c.drop = 1.0;
	run(&c, &again, &k2);
	CHECK_EQ(again.count, 0);
	CHECK_EQ(k2.dropped, FRAMES);
}

static void test_duplicate(void)
{
	static int seen[FRAMES];
	static struct sink s;
	struct fault_counters k;
	struct fault_config c = {.enabled = true, .seed = 3, .duplicate = 1.0};
	run(&c, &s, &k);
	check_each_once(&s, seen, 2 * FRAMES);
	for (int i = 0; i < FRAMES; i++)
		CHECK_EQ(seen[i], 2);
	CHECK_EQ(k.duplicated, FRAMES);
	c.duplicate = 0.1;
	run(&c, &s, &k);
	CHECK(k.duplicated > 60 && k.duplicated < 140, "duplicated %llu", (unsigned long long)k.duplicated);
	check_each_once(&s, seen, FRAMES + k.duplicated);
}

static void test_reorder(void)
{
	static int seen[FRAMES];
	static struct sink s, again;
	struct fault_counters k, k2;
	struct fault_config c = {.enabled = true, .seed = 11, .reorder = 0.2};
	run(&c, &s, &k);
	check_each_once(&s, seen, FRAMES);
	for (int i = 0; i < FRAMES; i++)
		CHECK_EQ(seen[i], 1);
	size_t inversions = 0;
	for (size_t i = 1; i < s.count; i++)
		inversions += s.ids[i] < s.ids[i - 1];
	CHECK(k.reordered > 100 && k.reordered < 250, "reordered %llu", (unsigned long long)k.reordered);
	/* Each reordered frame is passed by the next one: one inversion each, except when the very last
	 * frame is the one held (nothing passes it; its hold runs out). */
	bool last_held = s.ids[s.count - 1] == FRAMES - 1 && k.reordered == inversions + 1;
	CHECK(inversions == k.reordered || last_held, "%zu inversions, %llu reordered", inversions,
		(unsigned long long)k.reordered);
	run(&c, &again, &k2);
	CHECK(memcmp(again.ids, s.ids, s.count * sizeof *s.ids) == 0, "same seed, different order");
}

static void test_delay(void)
{
	struct fault_config c = {.enabled = true, .seed = 1, .delay_ms = 20};
	struct fault *f = NULL;
	CHECK(fault_create(&c, &f) == 0);
	static struct sink s;
	memset(&s, 0, sizeof s);
	uint32_t a = 1, b = 2;
	fault_input(f, (const uint8_t *)&a, 4, 100 * MS);
	fault_input(f, (const uint8_t *)&b, 4, 105 * MS);
	CHECK_EQ(fault_next_release(f), 120 * MS);
	CHECK_EQ(fault_output(f, 120 * MS - 1, collect, &s), 0);
	CHECK_EQ(fault_output(f, 120 * MS, collect, &s), 1);
	CHECK_EQ(s.ids[0], 1);
	CHECK_EQ(fault_next_release(f), 125 * MS);
	CHECK_EQ(fault_output(f, 124 * MS, collect, &s), 0);
	CHECK_EQ(fault_output(f, 200 * MS, collect, &s), 1);
	CHECK_EQ(s.ids[1], 2);
	fault_destroy(f);

	/* Jitter on top of a delay: every frame comes out between delay and delay + jitter, some
	 * overtaken. */
	c.delay_ms = 10;
	c.jitter_ms = 30;
	static int seen[FRAMES];
	struct fault_counters k;
	run(&c, &s, &k);
	check_each_once(&s, seen, FRAMES);
	size_t inversions = 0;
	for (size_t i = 1; i < s.count; i++)
		inversions += s.ids[i] < s.ids[i - 1];
	CHECK(inversions > 0, "30 ms of jitter on 1 ms spacing must reorder");
}

static void test_overflow(void)
{
	struct fault_config c = {.enabled = true, .seed = 1, .delay_ms = 1000, .max_held = 10};
	struct fault *f = NULL;
	CHECK(fault_create(&c, &f) == 0);
	for (uint32_t i = 0; i < 15; i++)
		fault_input(f, (const uint8_t *)&i, 4, MS);
	struct fault_counters k;
	fault_counters(f, &k);
	CHECK_EQ(k.overflow, 5);
	static struct sink s;
	memset(&s, 0, sizeof s);
	CHECK_EQ(fault_output(f, 2000 * MS, collect, &s), 10);
	fault_destroy(f);
}

static void test_parse(void)
{
	struct fault_config c;
	char err[256];
	CHECK_OK(fault_config_parse("drop=0.05,dup=0.01,reorder=0.1,delay=20,jitter=5,seed=42", &c, err,
		sizeof err), err);
	CHECK(c.enabled && c.drop == 0.05 && c.duplicate == 0.01 && c.reorder == 0.1);
	CHECK_EQ(c.delay_ms, 20);
	CHECK_EQ(c.jitter_ms, 5);
	CHECK_EQ(c.seed, 42);
	CHECK_OK(fault_config_parse("duplicate=1", &c, err, sizeof err), err);
	CHECK(c.duplicate == 1.0 && c.drop == 0);
	const char *bad[] = {"drop=1.5", "drop=-0.1", "drop=x", "delay=-1", "loss=0.1", "drop", "seed=12x",
		"delay=99999999"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		err[0] = '\0';
		CHECK(fault_config_parse(bad[i], &c, err, sizeof err) == -EINVAL, "%s accepted", bad[i]);
		CHECK(strstr(err, "fault spec") != NULL, "%s: message '%s'", bad[i], err);
	}
	CHECK(strstr((fault_config_parse("loss=0.1", &c, err, sizeof err), err), "loss") != NULL);
	struct fault *f;
	struct fault_config invalid = {.enabled = true, .drop = 2};
	CHECK(fault_create(&invalid, &f) == -EINVAL);
}

int main(void)
{
	test_name = "fault";
	RUN(test_passthrough);
	RUN(test_drop);
	RUN(test_duplicate);
	RUN(test_reorder);
	RUN(test_delay);
	RUN(test_overflow);
	RUN(test_parse);
	fprintf(stderr, "ok\n");
	return 0;
}
