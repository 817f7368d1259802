/*
 * test_ops_simd.c: the element-wise ops that have per-ISA versions give the
 * same bits as their scalar code at every CPU level the machine has.
 *
 * - ig_silu_mul on random rows and on the inputs where the exp polynomial
 *   takes its special paths: 0, -0, infinities, NaN, results that overflow
 *   or fall into the subnormals, |n| > 192; rows whose length is not a
 *   multiple of 16 (the tail is scalar at every level). The AVX2 code hands
 *   blocks with a lane outside 2^-125..2^127 to the scalar code; the wide
 *   random rows cross that edge.
 * - ig_rope_apply (normal and NeoX pairing) on random heads and on special
 *   values, for head sizes whose pairs do and do not fill whole vectors.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "kernels/ops.h"
#include "testutil.h"

static bool same(float a, float b) {
    return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0;
}

Test(ops_simd, silu_mul_same_bits_at_every_level) {
    static const float special[] = {
        0.0f,    -0.0f,  INFINITY, -INFINITY, NAN,     1.0f,   -1.0f,   88.0f,
        -88.0f,  88.75f, -88.75f,  89.0f,     -89.0f,  103.0f, -103.0f, 104.5f,
        -104.5f, 130.0f, -130.0f,  150.0f,    -150.0f, 200.0f, -200.0f, 1e30f,
        -1e30f,  1e-40f, -1e-40f,  86.9f,     -86.9f,  87.4f,  -87.4f,  133.3f};
    const int n_special = (int)(sizeof special / sizeof special[0]);
    const int n = 16 * 40 + 7;
    uint64_t s = 5;
    float *a0 = malloc(n * sizeof *a0), *b = malloc(n * sizeof *b);
    float *want = malloc(n * sizeof *want), *got = malloc(n * sizeof *got);
    const ig_cpu_level saved = ig_cpu_level_get();
    for (int trial = 0; trial < 20; trial++) {
        for (int i = 0; i < n; i++) {
            const double u = (double)(ig_test_rng_next(&s) >> 11) / 9007199254740992.0;
            /* trial 0: special values spread over the row; others random, wide */
            a0[i] = trial == 0 ? special[i % n_special] : (float)((u - 0.5) * (trial * 20.0));
            b[i] = (float)((double)(ig_test_rng_next(&s) >> 40) / 16777216.0 - 0.5) * 4.0f;
        }
        ig_cpu_level_set(IG_CPU_SCALAR);
        memcpy(want, a0, n * sizeof *want);
        ig_silu_mul(want, b, n);
        for (int l = IG_CPU_SCALAR + 1; l <= (int)saved; l++) {
            ig_cpu_level_set((ig_cpu_level)l);
            memcpy(got, a0, n * sizeof *got);
            ig_silu_mul(got, b, n);
            for (int i = 0; i < n; i++)
                cr_assert(same(want[i], got[i]), "level %s, trial %d, a=%a b=%a: got %a, scalar %a",
                          ig_cpu_level_name((ig_cpu_level)l), trial, (double)a0[i], (double)b[i],
                          (double)got[i], (double)want[i]);
        }
    }
    ig_cpu_level_set(saved);
    free(a0);
    free(b);
    free(want);
    free(got);
}

Test(ops_simd, rope_same_bits_at_every_level) {
    static const int n_rots[] = {64, 128, 40, 18, 6, 2};
    static const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-40f, -3e38f};
    uint64_t s = 17;
    const ig_cpu_level saved = ig_cpu_level_get();
    float cs[2 * IG_ROPE_MAX_ROT], x0[160], want[160], got[160];
    float factors[64];
    for (int i = 0; i < 64; i++) factors[i] = 1.0f + (float)i / 16.0f;
    int n_cases = 0;
    for (size_t r = 0; r < sizeof n_rots / sizeof n_rots[0]; r++) {
        const int n_rot = n_rots[r], hd = n_rot + (n_rot < 128 ? 16 : 0);
        for (int trial = 0; trial < 40; trial++) {
            const int pos = (int)(ig_test_rng_next(&s) % 40000);
            ig_rope_table(cs, n_rot, pos, trial % 2 ? 500000.0f : 10000.0f,
                          trial % 3 ? 1.0f : 0.25f,
                          trial % 4 == 3 && n_rot <= 128 ? factors : NULL);
            for (int i = 0; i < hd; i++)
                x0[i] = trial == 0 ? special[i % 7] : (float)(ig_test_rng_gauss(&s) * 3.0);
            for (int neox = 0; neox <= 1; neox++) {
                ig_cpu_level_set(IG_CPU_SCALAR);
                memcpy(want, x0, sizeof x0);
                ig_rope_apply(want, hd, n_rot, cs, neox);
                for (int l = IG_CPU_SCALAR + 1; l <= (int)saved; l++) {
                    ig_cpu_level_set((ig_cpu_level)l);
                    memcpy(got, x0, sizeof x0);
                    ig_rope_apply(got, hd, n_rot, cs, neox);
                    for (int i = 0; i < hd; i++)
                        cr_assert(
                            same(want[i], got[i]) && signbit(want[i]) == signbit(got[i]),
                            "level %s, n_rot %d, neox %d, pos %d, x[%d]=%a: got %a, scalar %a",
                            ig_cpu_level_name((ig_cpu_level)l), n_rot, neox, pos, i, (double)x0[i],
                            (double)got[i], (double)want[i]);
                    n_cases++;
                }
            }
        }
    }
    ig_cpu_level_set(saved);
    cr_log_info("%d (level, head) cases compared", n_cases);
}
