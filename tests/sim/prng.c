/* tests/sim/prng.c: the simulation's only source of randomness and its hashes.
 *
 * xoshiro256** seeded through splitmix64 (both public-domain algorithms by Blackman and Vigna): fast,
 * good enough for schedules, and identical on every machine, so a seed replays exactly. Nothing in the
 * simulation calls rand() or reads a clock.
 */
#include "sim.h"

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotate_left(uint64_t value, int bits)
{
	return (value << bits) | (value >> (64 - bits));
}

void rng_seed(struct sim_rng *rng, uint64_t seed)
{
	uint64_t state = seed;
	for (int i = 0; i < 4; i++) {
		rng->state[i] = splitmix64(&state);
	}
}

uint64_t rng_next(struct sim_rng *rng)
{
	uint64_t *s = rng->state;
	uint64_t result = rotate_left(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotate_left(s[3], 45);
	return result;
}

uint64_t rng_below(struct sim_rng *rng, uint64_t bound)
{
	if (bound == 0) {
		return 0;
	}
	/* Multiply-shift: unbiased enough for test schedules and cheaper than a division. */
	return (uint64_t)(((unsigned __int128)rng_next(rng) * bound) >> 64);
}

uint64_t rng_range(struct sim_rng *rng, uint64_t low, uint64_t high)
{
	return high <= low ? low : low + rng_below(rng, high - low + 1);
}

bool rng_chance(struct sim_rng *rng, unsigned per_thousand)
{
	return rng_below(rng, 1000) < per_thousand;
}

uint64_t sim_mix(uint64_t a, uint64_t b)
{
	uint64_t state = a ^ rotate_left(b, 23) ^ 0x5851f42d4c957f2dULL;
	return splitmix64(&state) ^ b;
}

/* FNV-1a, finished with a mix so that short inputs spread over all 64 bits. */
uint64_t sim_hash_bytes(const void *data, size_t length)
{
	const uint8_t *bytes = data;
	uint64_t hash = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < length; i++) {
		hash = (hash ^ bytes[i]) * 0x100000001b3ULL;
	}
	return sim_mix(hash, length);
}
