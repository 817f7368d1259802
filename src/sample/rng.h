/*
 * rng.h: the sampler's own pseudo-random generator, so that a seed gives the
 * same tokens on every platform and C library.
 *
 * Model of use
 * ------------
 * An ig_rng is plain data (four 64-bit words): copy it to fork a stream, store
 * it to resume one. It is xoshiro256** 1.0 (Blackman and Vigna), whose 256-bit
 * state is filled from a 64-bit seed by four outputs of splitmix64 (Steele, Lea
 * and Flood), as the xoshiro authors recommend. No function here allocates or
 * fails; one generator is used by one thread at a time.
 */
#ifndef IG_SAMPLE_RNG_H
#define IG_SAMPLE_RNG_H

#include <stdint.h>

typedef struct ig_rng {
    uint64_t s[4]; /* xoshiro256** state; never all zero */
} ig_rng;

/* One step of splitmix64: advance *state and return the next output. */
uint64_t ig_splitmix64_next(uint64_t *state);

/* Seed from 64 bits (splitmix64 of `seed`, four outputs). */
void ig_rng_seed(ig_rng *rng, uint64_t seed);

/* Set the raw state (for tests against published vectors). An all-zero state
 * is replaced by the seed-0 state, since xoshiro would output zeros forever. */
void ig_rng_set_state(ig_rng *rng, const uint64_t state[4]);

/* Next 64 random bits. */
uint64_t ig_rng_next(ig_rng *rng);

/* Uniform double in [0, 1) with 53 random bits. */
double ig_rng_uniform(ig_rng *rng);

/* A seed from the operating system (getrandom, else time and addresses). Not
 * reproducible, by design; never returns UINT64_MAX. */
uint64_t ig_rng_entropy_seed(void);

#endif
