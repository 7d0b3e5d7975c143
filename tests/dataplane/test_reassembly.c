/* tests/dataplane/test_reassembly.c: fragments out of order and duplicated, delivery exactly once,
 * timeouts on a caller-supplied clock, the memory bound (oldest first), mismatched fragments, and the
 * per-sender duplicate window. */
#include "reassembly.h"
#include "helpers.h"

#define MS 1000000ull

struct fragments {
	size_t count;
	uint8_t frames[64][256];
	size_t sizes[64];
	uint8_t message[64 * 256];
	size_t length;
};

/* Splits a message of length bytes (content from seed) from sender `from` into frames of <= 200 bytes (128 payload bytes). */
static void make(struct fragments *f, uint64_t from, uint64_t message_id, size_t length, uint64_t seed)
{
	struct frame_address a = {.cluster_id = 1, .from = from, .to = 9, .message_id = message_id};
	f->length = length;
	test_fill(f->message, length, seed);
	f->count = frame_count(length, 200);
	CHECK(f->count > 0 && f->count <= 64);
	for (size_t i = 0; i < f->count; i++) {
		f->sizes[i] = frame_encode(&a, f->message, length, (uint16_t)f->count, (uint16_t)i, f->frames[i],
			sizeof f->frames[i]);
		CHECK(f->sizes[i] > 0);
	}
}

static enum reassembly_result add(struct reassembly *r, const struct fragments *f, size_t i, uint64_t now,
	struct reassembly_message *out)
{
	struct frame_header h;
	const uint8_t *payload;
	enum frame_error e = frame_parse(f->frames[i], f->sizes[i], 1u << 20, &h, &payload);
	CHECK(e == FRAME_OK, "%s", frame_error_message(e));
	return reassembly_add(r, &h, payload, now, out);
}

static struct reassembly *create(size_t memory, uint64_t timeout_ns)
{
	struct reassembly_config c = {.memory_limit = memory, .timeout_ns = timeout_ns};
	struct reassembly *r = NULL;
	CHECK(reassembly_create(&c, &r) == 0);
	return r;
}

static void expect_message(const struct reassembly_message *m, const struct fragments *f, uint64_t from,
	uint64_t id)
{
	CHECK_EQ(m->from, from);
	CHECK_EQ(m->message_id, id);
	CHECK_EQ(m->length, f->length);
	CHECK(memcmp(m->data, f->message, f->length) == 0, "message content differs");
}

static void test_out_of_order(void)
{
	static struct fragments f;
	make(&f, 1, 100, 2000, 1);
	CHECK_EQ(f.count, 16);
	struct reassembly *r = create(1 << 20, 1000 * MS);
	/* Every permutation class we care about: reversed, and a seeded shuffle. */
	for (int pass = 0; pass < 2; pass++) {
		size_t order[64];
		for (size_t i = 0; i < f.count; i++)
			order[i] = pass == 0 ? f.count - 1 - i : i;
		uint64_t state = 77;
		if (pass == 1)
			for (size_t i = f.count - 1; i > 0; i--) {
				size_t j = test_random(&state) % (i + 1);
				size_t t = order[i];
				order[i] = order[j];
				order[j] = t;
			}
		uint64_t id = 100 + (uint64_t)pass;
		make(&f, 1, id, 2000, 1);
		struct reassembly_message m;
		for (size_t k = 0; k + 1 < f.count; k++)
			CHECK(add(r, &f, order[k], 0, &m) == REASSEMBLY_PENDING, "pass %d fragment %zu", pass, k);
		CHECK(add(r, &f, order[f.count - 1], 0, &m) == REASSEMBLY_COMPLETE);
		expect_message(&m, &f, 1, id);
	}
	struct reassembly_counters c;
	reassembly_counters(r, &c);
	CHECK_EQ(c.completed, 2);
	CHECK_EQ(c.pending, 0);
	CHECK_EQ(c.memory_used, 0);
	reassembly_destroy(r);
}

static void test_duplicates(void)
{
	static struct fragments f;
	make(&f, 2, 500, 1000, 2);
	struct reassembly *r = create(1 << 20, 1000 * MS);
	struct reassembly_message m;
	int complete = 0, duplicate = 0;
	/* Each fragment twice in a row, then the whole message again. */
	for (size_t i = 0; i < f.count; i++) {
		for (int k = 0; k < 2; k++) {
			enum reassembly_result res = add(r, &f, i, 0, &m);
			if (res == REASSEMBLY_COMPLETE) {
				complete++;
				expect_message(&m, &f, 2, 500);
			}
			duplicate += res == REASSEMBLY_DUPLICATE;
		}
	}
	for (size_t i = 0; i < f.count; i++)
		duplicate += add(r, &f, i, 0, &m) == REASSEMBLY_DUPLICATE;
	CHECK_EQ(complete, 1);
	CHECK_EQ(duplicate, 2 * f.count);
	struct reassembly_counters c;
	reassembly_counters(r, &c);
	CHECK_EQ(c.duplicates, 2 * f.count);
	CHECK_EQ(c.pending, 0);

	/* A single-frame message delivered once, its duplicate refused; the same id from another sender
	 * is another message. */
	static struct fragments one, other;
	make(&one, 2, 501, 50, 3);
	make(&other, 3, 501, 50, 4);
	CHECK_EQ(one.count, 1);
	CHECK(add(r, &one, 0, 0, &m) == REASSEMBLY_COMPLETE);
	expect_message(&m, &one, 2, 501);
	CHECK(add(r, &one, 0, 0, &m) == REASSEMBLY_DUPLICATE);
	CHECK(add(r, &other, 0, 0, &m) == REASSEMBLY_COMPLETE);
	expect_message(&m, &other, 3, 501);
	reassembly_destroy(r);
}

static void test_interleaved(void)
{
	static struct fragments a, b;
	make(&a, 1, 7, 900, 5);
	make(&b, 1, 8, 900, 6);
	struct reassembly *r = create(1 << 20, 1000 * MS);
	struct reassembly_message m;
	int done = 0;
	for (size_t i = 0; i < a.count; i++) {
		if (add(r, &b, a.count - 1 - i, 0, &m) == REASSEMBLY_COMPLETE) {
			expect_message(&m, &b, 1, 8);
			done++;
		}
		if (add(r, &a, i, 0, &m) == REASSEMBLY_COMPLETE) {
			expect_message(&m, &a, 1, 7);
			done++;
		}
	}
	CHECK_EQ(done, 2);
	reassembly_destroy(r);
}

static void test_timeout(void)
{
	static struct fragments f;
	make(&f, 4, 1, 500, 7);
	struct reassembly *r = create(1 << 20, 100 * MS);
	struct reassembly_message m;
	CHECK_EQ(reassembly_next_expiry(r), UINT64_MAX);
	CHECK(add(r, &f, 0, 10 * MS, &m) == REASSEMBLY_PENDING);
	CHECK(add(r, &f, 1, 50 * MS, &m) == REASSEMBLY_PENDING);
	CHECK_EQ(reassembly_next_expiry(r), 110 * MS);
	reassembly_expire(r, 110 * MS - 1);
	struct reassembly_counters c;
	reassembly_counters(r, &c);
	CHECK_EQ(c.pending, 1);
	CHECK_EQ(c.timeouts, 0);
	reassembly_expire(r, 110 * MS);
	reassembly_counters(r, &c);
	CHECK_EQ(c.pending, 0);
	CHECK_EQ(c.timeouts, 1);
	CHECK_EQ(c.memory_used, 0);
	/* The rest arrives too late: it starts over and cannot complete without fragments 0 and 1. */
	for (size_t i = 2; i < f.count; i++)
		CHECK(add(r, &f, i, 120 * MS, &m) == REASSEMBLY_PENDING);
	/* Expiry happens inside add as well. */
	static struct fragments g;
	make(&g, 4, 2, 50, 8);
	CHECK(add(r, &g, 0, 220 * MS, &m) == REASSEMBLY_COMPLETE);
	reassembly_counters(r, &c);
	CHECK_EQ(c.timeouts, 2);
	CHECK_EQ(c.pending, 0);
	reassembly_destroy(r);
}

static void test_memory_bound(void)
{
	static struct fragments a, b, c3, huge;
	make(&a, 1, 1, 3000, 10);
	make(&b, 1, 2, 3000, 11);
	make(&c3, 1, 3, 3000, 12);
	/* Room for two incomplete 3000-byte messages, not three. */
	struct reassembly *r = create(7000, 1000 * MS);
	struct reassembly_message m;
	CHECK(add(r, &a, 0, 1, &m) == REASSEMBLY_PENDING);
	CHECK(add(r, &b, 0, 2, &m) == REASSEMBLY_PENDING);
	struct reassembly_counters c;
	reassembly_counters(r, &c);
	CHECK_EQ(c.pending, 2);
	CHECK(c.memory_used > 6000 && c.memory_used <= 7000, "memory used %llu", (unsigned long long)c.memory_used);
	CHECK(add(r, &c3, 0, 3, &m) == REASSEMBLY_PENDING);
	reassembly_counters(r, &c);
	CHECK_EQ(c.memory_drops, 1);   /* a, the oldest, went */
	CHECK_EQ(c.pending, 2);
	CHECK(c.memory_used <= 7000);
	/* b and c complete; a starts over and evicts nothing that it need not. */
	int done = 0;
	for (size_t i = 1; i < b.count; i++) {
		if (add(r, &b, i, 4, &m) == REASSEMBLY_COMPLETE) {
			expect_message(&m, &b, 1, 2);
			done++;
		}
		if (add(r, &c3, i, 4, &m) == REASSEMBLY_COMPLETE) {
			expect_message(&m, &c3, 1, 3);
			done++;
		}
	}
	CHECK_EQ(done, 2);
	for (size_t i = 1; i < a.count; i++)
		CHECK(add(r, &a, i, 5, &m) == REASSEMBLY_PENDING, "a lost fragment 0, cannot complete");
	reassembly_counters(r, &c);
	CHECK_EQ(c.memory_drops, 1);
	CHECK_EQ(c.pending, 1);
	/* A message that alone exceeds the bound is refused. */
	make(&huge, 1, 4, 7000, 13);
	CHECK(add(r, &huge, 0, 6, &m) == REASSEMBLY_DROPPED);
	reassembly_counters(r, &c);
	CHECK_EQ(c.memory_drops, 2);
	CHECK_EQ(c.pending, 1);
	reassembly_destroy(r);
}

static void test_mismatch(void)
{
	static struct fragments a, b;
	make(&a, 1, 9, 1000, 20);
	make(&b, 1, 9, 1500, 21);   /* same key, other length: a forged or buggy sender */
	struct reassembly *r = create(1 << 20, 1000 * MS);
	struct reassembly_message m;
	CHECK(add(r, &a, 0, 0, &m) == REASSEMBLY_PENDING);
	CHECK(add(r, &b, 1, 0, &m) == REASSEMBLY_DROPPED);
	struct reassembly_counters c;
	reassembly_counters(r, &c);
	CHECK_EQ(c.mismatched, 1);
	reassembly_destroy(r);
}

static void test_window(void)
{
	struct reassembly *r = create(1 << 20, 1000 * MS);
	struct reassembly_message m;
	static struct fragments f;
	for (uint64_t id = 1; id <= 3000; id++) {
		make(&f, 5, id, 10, id);
		CHECK(add(r, &f, 0, 0, &m) == REASSEMBLY_COMPLETE, "id %llu", (unsigned long long)id);
	}
	/* Inside the window: remembered. */
	make(&f, 5, 3000 - REASSEMBLY_WINDOW + 1, 10, 1);
	CHECK(add(r, &f, 0, 0, &m) == REASSEMBLY_DUPLICATE);
	make(&f, 5, 2500, 10, 1);
	CHECK(add(r, &f, 0, 0, &m) == REASSEMBLY_DUPLICATE);
	/* Below it: not remembered, treated as new (documented). */
	make(&f, 5, 3000 - REASSEMBLY_WINDOW, 10, 1);
	CHECK(add(r, &f, 0, 0, &m) == REASSEMBLY_COMPLETE);
	/* Gaps: ids never seen inside the window are new. */
	make(&f, 5, 5000, 10, 1);
	CHECK(add(r, &f, 0, 0, &m) == REASSEMBLY_COMPLETE);
	make(&f, 5, 4999, 10, 1);
	CHECK(add(r, &f, 0, 0, &m) == REASSEMBLY_COMPLETE);
	CHECK(add(r, &f, 0, 0, &m) == REASSEMBLY_DUPLICATE);
	make(&f, 5, 4000, 10, 1);
	CHECK(add(r, &f, 0, 0, &m) == REASSEMBLY_COMPLETE);
	reassembly_destroy(r);
}

int main(void)
{
	test_name = "reassembly";
	RUN(test_out_of_order);
	RUN(test_duplicates);
	RUN(test_interleaved);
	RUN(test_timeout);
	RUN(test_memory_bound);
	RUN(test_mismatch);
	RUN(test_window);
	fprintf(stderr, "ok\n");
	return 0;
}
