/*
 * test_f32order.c: the AVX2 + FMA versions of the llama.cpp F32 summation
 * orders (src/kernels/x86/f32order_avx2.c) give the same bits as the
 * portable ones (src/kernels/f32order.c), which the golden stories260K
 * tests tie to llama.cpp: the dots at every length 0..300 and some large
 * ones, and ig_matmul_f32_ordered with a mix of batched and unbatched
 * tokens at the scalar level and at the best level.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "base/threadpool.h"
#include "kernels/f32order.h"
#include "tensor/types.h"

static float rnd(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*s >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}

static bool have_avx2(void) {
#ifdef __x86_64__
    const ig_cpu_features *f = ig_cpu_features_get();
    return f->avx2 && f->fma && ig_cpu_level_get() >= IG_CPU_AVX2;
#else
    return false;
#endif
}

Test(f32order, avx2_dots_equal_portable_bit_for_bit) {
    if (!have_avx2()) cr_skip_test("no AVX2 + FMA here (or IGNIS_CPU caps it)");
#ifdef __x86_64__
    uint64_t seed = 7;
    const int64_t big[] = {1024, 4096 + 48, 5632, 11008 + 7};
    for (int k = 0; k < 301 + 4; k++) {
        int64_t n = k < 301 ? k : big[k - 301];
        float *w = malloc((size_t)(n + 1) * sizeof *w), *x = malloc((size_t)(n + 1) * sizeof *x);
        cr_assert(w && x);
        for (int64_t i = 0; i < n; i++) {
            w[i] = rnd(&seed);
            x[i] = rnd(&seed) * 3.0f;
        }
        float a = ig_dot_f32_blocks(w, x, n), b = ig__dot_f32_blocks_avx2(w, x, n);
        cr_assert(!memcmp(&a, &b, sizeof a), "blocks n=%lld: %a vs %a", (long long)n, a, b);
        if (n % 16 == 0) {
            a = ig_dot_f32_lanes(w, x, n);
            b = ig__dot_f32_lanes_avx2(w, x, n);
            cr_assert(!memcmp(&a, &b, sizeof a), "lanes n=%lld: %a vs %a", (long long)n, a, b);
        }
        free(w);
        free(x);
    }
#endif
}

Test(f32order, matmul_same_bits_at_every_level) {
    const int64_t shapes[][2] = {{64, 64}, {64, 172}, {172, 64}, {48, 20}, {100, 7}};
    const int n_tokens = 5;
    const uint8_t batched[5] = {1, 0, 1, 1, 0};
    ig_pool *pool = NULL;
    cr_assert(ig_pool_new(2, &pool, NULL) == IG_OK);
    uint64_t seed = 11;
    ig_cpu_level best = ig_cpu_level_get();
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t cols = shapes[s][0], rows = shapes[s][1];
        float *w = malloc((size_t)(cols * rows) * sizeof *w);
        float *x = malloc((size_t)(cols * n_tokens) * sizeof *x);
        float *y0 = malloc((size_t)(rows * n_tokens) * sizeof *y0);
        float *y1 = malloc((size_t)(rows * n_tokens) * sizeof *y1);
        cr_assert(w && x && y0 && y1);
        for (int64_t i = 0; i < cols * rows; i++) w[i] = rnd(&seed);
        for (int64_t i = 0; i < cols * n_tokens; i++) x[i] = rnd(&seed);
        ig_matrix m = {.type = IG_TYPE_F32,
                       .n_cols = cols,
                       .n_rows = rows,
                       .row_bytes = (size_t)cols * sizeof(float),
                       .data = w};
        ig_cpu_level_set(IG_CPU_SCALAR);
        ig_matmul_f32_ordered(pool, &m, x, n_tokens, batched, y0);
        ig_cpu_level_set(best);
        ig_matmul_f32_ordered(pool, &m, x, n_tokens, batched, y1);
        cr_assert(!memcmp(y0, y1, (size_t)(rows * n_tokens) * sizeof *y0),
                  "shape %lld x %lld differs between levels", (long long)cols, (long long)rows);
        free(w);
        free(x);
        free(y0);
        free(y1);
    }
    ig_pool_free(pool);
}
