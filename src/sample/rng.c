/*
 * rng.c: xoshiro256** seeded through splitmix64, written from the published
 * algorithm descriptions (see rng.h). Stateless apart from the ig_rng the
 * caller passes in.
 */
#include "sample/rng.h"

#include <stdint.h>
#include <sys/random.h>
#include <time.h>

uint64_t ig_splitmix64_next(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void ig_rng_seed(ig_rng *rng, uint64_t seed) {
    uint64_t sm = seed;
    for (int i = 0; i < 4; i++) rng->s[i] = ig_splitmix64_next(&sm);
    /* splitmix64 is a bijection of distinct counters, so four outputs are
     * never all zero; no fix-up needed. */
}

void ig_rng_set_state(ig_rng *rng, const uint64_t state[4]) {
    if ((state[0] | state[1] | state[2] | state[3]) == 0) {
        ig_rng_seed(rng, 0);
        return;
    }
    for (int i = 0; i < 4; i++) rng->s[i] = state[i];
}

static inline uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

uint64_t ig_rng_next(ig_rng *rng) {
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ig_rng_uniform(ig_rng *rng) {
    /* Top 53 bits scaled by 2^-53: every value is a multiple of 2^-53 in [0, 1). */
    return (double)(ig_rng_next(rng) >> 11) * 0x1.0p-53;
}

uint64_t ig_rng_entropy_seed(void) {
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t mix = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        mix ^= (uint64_t)(uintptr_t)&ts;
        seed = ig_splitmix64_next(&mix);
    }
    if (seed == UINT64_MAX) seed = 0;
    return seed;
}
