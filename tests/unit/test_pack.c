/*
 * test_pack.c: the r16 weight layout (tensor/pack.h) and the matmul over it.
 *
 * - pack then read back: every row and every block of a packed matrix, for
 *   every packable type and row counts with and without a tail, is the
 *   original bytes (so no byte is lost or moved to the wrong row);
 * - ig_matrix_get_row of the packed matrix gives the same floats;
 * - ig_matmul over the packed matrix gives the same bits as over the
 *   unpacked one, at every CPU level the machine has (levels without an r16
 *   kernel take the unpacking path), for 1..70 tokens (across the 64-token
 *   tile and the 8-token pass) and 1 to 3 threads;
 * - ig_matrix_pack_pays says no for types without a layout and for
 *   matrices with fewer than 16 rows.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "base/threadpool.h"
#include "kernels/dot.h"
#include "kernels/ops.h"
#include "tensor/fp16.h"
#include "tensor/pack.h"
#include "tensor/types.h"
#include "testutil.h"

static const ig_type PTYPES[] = {IG_TYPE_Q4_0, IG_TYPE_Q4_1, IG_TYPE_Q5_0, IG_TYPE_Q5_1,
                                 IG_TYPE_Q8_0, IG_TYPE_Q4_K, IG_TYPE_Q5_K, IG_TYPE_Q6_K};
#define N_PTYPES (sizeof PTYPES / sizeof PTYPES[0])

static size_t row_bytes(uint32_t t, int64_t n) {
    size_t sz = 0;
    cr_assert(ig_type_row_size(t, n, &sz));
    return sz;
}

static bool is_k(uint32_t t) {
    return t == IG_TYPE_Q4_K || t == IG_TYPE_Q5_K || t == IG_TYPE_Q6_K;
}

/* A row length in whole blocks of t: `blocks` blocks of 32 values, or of 256 for K-quants. */
static int64_t row_len(uint32_t t, int64_t blocks) {
    return blocks * (is_k(t) ? 256 : 32);
}

/* n_rows rows of random code bytes with finite random f16 scale (and min). */
static uint8_t *random_rows(uint32_t t, int64_t n, int64_t n_rows, uint64_t *s) {
    const ig_type_traits *tr = ig_type_get(t);
    const size_t rb = row_bytes(t, n), bs = tr->type_size;
    const size_t d_off = t == IG_TYPE_Q6_K ? 208 : 0;
    const bool has_min =
        t == IG_TYPE_Q4_1 || t == IG_TYPE_Q5_1 || t == IG_TYPE_Q4_K || t == IG_TYPE_Q5_K;
    uint8_t *p = malloc(rb * (size_t)n_rows);
    cr_assert_not_null(p);
    for (size_t i = 0; i < rb * (size_t)n_rows; i++) p[i] = (uint8_t)ig_test_rng_next(s);
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t b = 0; b < n / tr->blck_size; b++) {
            uint8_t *blk = p + r * rb + b * bs;
            const uint16_t d = ig_fp32_to_fp16((float)(ig_test_rng_gauss(s) * 0.01));
            const uint16_t m = ig_fp32_to_fp16((float)(ig_test_rng_gauss(s) * 0.02));
            memcpy(blk + d_off, &d, 2);
            if (has_min) memcpy(blk + 2, &m, 2);
        }
    return p;
}

static uint8_t *packed_copy(uint32_t t, const uint8_t *rows, size_t rb, int64_t n_rows) {
    uint8_t *p = malloc(rb * (size_t)n_rows);
    cr_assert_not_null(p);
    memset(p, 0xa5, rb * (size_t)n_rows);
    ig_pack_r16(t, rows, rb, n_rows, p);
    return p;
}

Test(pack, rows_and_blocks_read_back) {
    uint64_t s = 7;
    const int64_t counts[] = {16, 53, 64, 15};
    for (size_t ti = 0; ti < N_PTYPES; ti++) {
        const uint32_t t = PTYPES[ti];
        const int64_t n = row_len(t, 9);
        cr_assert(ig_pack_r16_supported(t));
        const size_t rb = row_bytes(t, n), bs = ig_type_get(t)->type_size;
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            const int64_t nr = counts[ci];
            uint8_t *rows = random_rows(t, n, nr, &s);
            uint8_t *packed = packed_copy(t, rows, rb, nr);
            if (nr >= 16)
                cr_assert(memcmp(rows, packed, rb * 16) != 0, "%s: packing moved nothing",
                          ig_type_name(t));
            uint8_t *row = malloc(rb), blk[256];
            for (int64_t r = 0; r < nr; r++) {
                ig_pack_r16_get_row(t, packed, rb, nr, r, row);
                cr_assert(memcmp(row, rows + r * rb, rb) == 0, "%s rows %lld: row %lld differs",
                          ig_type_name(t), (long long)nr, (long long)r);
                for (int64_t b = 0; b < n / ig_type_get(t)->blck_size; b += 4) {
                    ig_pack_r16_get_block(t, packed, rb, nr, r, b, blk);
                    cr_assert(memcmp(blk, rows + r * rb + b * bs, bs) == 0,
                              "%s: row %lld block %lld differs", ig_type_name(t), (long long)r,
                              (long long)b);
                }
            }
            /* and through the matrix API, as floats */
            const ig_matrix plain = {t, n, nr, rb, rows, false};
            const ig_matrix pk = {t, n, nr, rb, packed, true};
            float *a = malloc((size_t)n * sizeof *a), *b = malloc((size_t)n * sizeof *b);
            for (int64_t r = 0; r < nr; r += 5) {
                ig_matrix_get_row(&plain, r, a);
                ig_matrix_get_row(&pk, r, b);
                cr_assert(memcmp(a, b, (size_t)n * sizeof *a) == 0, "%s: get_row %lld differs",
                          ig_type_name(t), (long long)r);
            }
            free(a);
            free(b);
            free(row);
            free(packed);
            free(rows);
        }
    }
}

Test(pack, pays_only_where_it_can) {
    const ig_matrix f16 = {IG_TYPE_F16, 64, 64, 128, NULL, false};
    cr_assert_not(ig_matrix_pack_pays(&f16));
    cr_assert_not(ig_pack_r16_supported(IG_TYPE_Q3_K));
    const ig_matrix small = {IG_TYPE_Q4_0, 64, 15, 36, NULL, false};
    cr_assert_not(ig_matrix_pack_pays(&small));
}

Test(pack, matmul_same_bits_as_unpacked) {
    uint64_t s = 99;
    const int64_t n_max = row_len(IG_TYPE_Q4_K, 5);
    const int64_t counts[] = {83, 96};
    const int tok_counts[] = {1, 2, 3, 8, 9, 13, 64, 70};
    const int max_tok = 70;
    ig_pool *pools[3] = {NULL, NULL, NULL};
    ig_error err = {0};
    for (int p = 0; p < 3; p++) cr_assert_eq(ig_pool_new(p + 1, &pools[p], &err), IG_OK);
    const ig_cpu_level saved = ig_cpu_level_get();
    float *xf = malloc((size_t)max_tok * n_max * sizeof *xf);
    for (size_t i = 0; i < (size_t)max_tok * n_max; i++) xf[i] = (float)ig_test_rng_gauss(&s);
    for (size_t ti = 0; ti < N_PTYPES; ti++) {
        const uint32_t t = PTYPES[ti];
        const int64_t n = is_k(t) ? n_max : row_len(t, 37);
        const size_t rb = row_bytes(t, n);
        for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
            const int64_t nr = counts[ci];
            uint8_t *rows = random_rows(t, n, nr, &s);
            uint8_t *packed = packed_copy(t, rows, rb, nr);
            const ig_matrix plain = {t, n, nr, rb, rows, false};
            const ig_matrix pk = {t, n, nr, rb, packed, true};
            cr_assert_geq(ig_matmul_scratch_bytes(&pk, max_tok),
                          ig_matmul_scratch_bytes(&plain, max_tok));
            void *scratch = malloc(ig_matmul_scratch_bytes(&pk, max_tok));
            float *want = malloc((size_t)max_tok * nr * sizeof *want);
            float *got = malloc((size_t)max_tok * nr * sizeof *got);
            for (int l = IG_CPU_SCALAR; l <= (int)saved; l++) {
                ig_cpu_level_set((ig_cpu_level)l);
                for (size_t k = 0; k < sizeof tok_counts / sizeof tok_counts[0]; k++) {
                    const int nt = tok_counts[k];
                    const int p = (int)(k % 3);
                    const float *x = xf + (size_t)(max_tok - nt) * n;
                    ig_matmul(pools[p], &plain, x, nt, want, scratch);
                    memset(got, 0xff, (size_t)nt * nr * sizeof *got);
                    ig_matmul(pools[p], &pk, x, nt, got, scratch);
                    cr_assert(memcmp(want, got, (size_t)nt * nr * sizeof *got) == 0,
                              "%s, %lld rows, level %s, %d tokens, %d threads: packed differs",
                              ig_type_name(t), (long long)nr, ig_cpu_level_name((ig_cpu_level)l),
                              nt, p + 1);
                }
            }
            ig_cpu_level_set(saved);
            free(want);
            free(got);
            free(scratch);
            free(packed);
            free(rows);
        }
    }
    free(xf);
    for (int p = 0; p < 3; p++) ig_pool_free(pools[p]);
}

/* ig_matmul_n: the same bits as one ig_matmul per matrix, packed or not, same type or not. */
Test(pack, matmul_n_same_bits_as_separate_calls) {
    uint64_t s = 123;
    const int64_t n = 32 * 24;
    const int nt = 11;
    ig_pool *pool = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_pool_new(2, &pool, &err), IG_OK);
    float *xf = malloc((size_t)nt * n * sizeof *xf);
    for (size_t i = 0; i < (size_t)nt * n; i++) xf[i] = (float)ig_test_rng_gauss(&s);
    const struct {
        uint32_t t;
        int64_t rows;
        bool pack;
    } spec[2][3] = {
        {{IG_TYPE_Q4_0, 83, true}, {IG_TYPE_Q4_0, 96, false}, {IG_TYPE_Q4_0, 16, true}},
        {{IG_TYPE_Q8_0, 40, true}, {IG_TYPE_Q4_0, 33, true}, {IG_TYPE_Q8_0, 17, false}},
    };
    for (int set = 0; set < 2; set++) {
        ig_matrix w[3];
        uint8_t *bufs[3];
        float *want[3], *got[3];
        size_t need = 0;
        for (int i = 0; i < 3; i++) {
            const uint32_t t = spec[set][i].t;
            const int64_t nr = spec[set][i].rows;
            const size_t rb = row_bytes(t, n);
            uint8_t *rows = random_rows(t, n, nr, &s);
            bufs[i] = spec[set][i].pack ? packed_copy(t, rows, rb, nr) : rows;
            if (spec[set][i].pack) free(rows);
            w[i] = (ig_matrix){t, n, nr, rb, bufs[i], spec[set][i].pack};
            want[i] = malloc((size_t)nt * nr * sizeof(float));
            got[i] = malloc((size_t)nt * nr * sizeof(float));
            const size_t b = ig_matmul_scratch_bytes(&w[i], nt);
            if (b > need) need = b;
        }
        void *scratch = malloc(need);
        for (int i = 0; i < 3; i++) ig_matmul(pool, &w[i], xf, nt, want[i], scratch);
        const ig_matrix *ws[3] = {&w[0], &w[1], &w[2]};
        for (int k = 1; k <= 3; k++) {
            for (int i = 0; i < k; i++)
                memset(got[i], 0xff, (size_t)nt * w[i].n_rows * sizeof(float));
            ig_matmul_n(pool, k, ws, xf, nt, got, scratch);
            for (int i = 0; i < k; i++)
                cr_assert(memcmp(want[i], got[i], (size_t)nt * w[i].n_rows * sizeof(float)) == 0,
                          "set %d, %d matrices: matrix %d differs", set, k, i);
        }
        free(scratch);
        for (int i = 0; i < 3; i++) {
            free(bufs[i]);
            free(want[i]);
            free(got[i]);
        }
    }
    free(xf);
    ig_pool_free(pool);
}

/*
 * The largest integer sums: every code byte 0xff (the largest codes, and for
 * the K-quants the largest scales) against activations that all quantize to
 * +127 or -127, so every product has the same sign: the kernels' int16
 * partial sums must still not overflow (packed equals unpacked equals the
 * scalar level).
 */
Test(pack, matmul_extreme_codes_same_bits) {
    uint64_t s = 5;
    const int nt = 2;
    ig_pool *pool = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_pool_new(1, &pool, &err), IG_OK);
    const ig_cpu_level saved = ig_cpu_level_get();
    for (size_t ti = 0; ti < N_PTYPES; ti++) {
        const uint32_t t = PTYPES[ti];
        const int64_t n = row_len(t, 2), nr = 32;
        const size_t rb = row_bytes(t, n);
        uint8_t *rows = random_rows(t, n, nr, &s); /* for the finite scales */
        const ig_type_traits *tr = ig_type_get(t);
        const size_t d_off = t == IG_TYPE_Q6_K ? 208 : 0;
        const bool has_min =
            t == IG_TYPE_Q4_1 || t == IG_TYPE_Q5_1 || t == IG_TYPE_Q4_K || t == IG_TYPE_Q5_K;
        for (int64_t r = 0; r < nr; r++)
            for (int64_t b = 0; b < n / tr->blck_size; b++) {
                uint8_t *blk = rows + r * rb + b * tr->type_size;
                uint8_t keep[4];
                memcpy(keep, blk + d_off, 2);
                if (has_min) memcpy(keep + 2, blk + 2, 2);
                memset(blk, 0xff, tr->type_size);
                memcpy(blk + d_off, keep, 2);
                if (has_min) memcpy(blk + 2, keep + 2, 2);
            }
        uint8_t *packed = packed_copy(t, rows, rb, nr);
        const ig_matrix plain = {t, n, nr, rb, rows, false};
        const ig_matrix pk = {t, n, nr, rb, packed, true};
        float *x = malloc((size_t)nt * n * sizeof *x);
        for (int64_t i = 0; i < n; i++) {
            x[i] = 1.0f;
            x[n + i] = -1.0f;
        }
        void *scratch = malloc(ig_matmul_scratch_bytes(&pk, nt));
        float want[2 * 32], got[2 * 32], ref[2 * 32];
        ig_cpu_level_set(IG_CPU_SCALAR);
        ig_matmul(pool, &plain, x, nt, ref, scratch);
        for (int l = IG_CPU_SCALAR; l <= (int)saved; l++) {
            ig_cpu_level_set((ig_cpu_level)l);
            ig_matmul(pool, &plain, x, nt, want, scratch);
            ig_matmul(pool, &pk, x, nt, got, scratch);
            cr_assert(memcmp(want, got, sizeof got) == 0, "%s level %s: packed differs",
                      ig_type_name(t), ig_cpu_level_name((ig_cpu_level)l));
            /* exact integer sums give the reference's bits for the K-quants (double
             * steps) and within float rounding for the legacy types */
            for (int i = 0; i < 2 * 32; i++)
                cr_assert(fabsf(got[i] - ref[i]) <= 1e-3f * fabsf(ref[i]) + 1e-6f,
                          "%s level %s: output %d is %g, scalar %g", ig_type_name(t),
                          ig_cpu_level_name((ig_cpu_level)l), i, (double)got[i], (double)ref[i]);
        }
        ig_cpu_level_set(saved);
        free(scratch);
        free(x);
        free(packed);
        free(rows);
    }
    ig_pool_free(pool);
}
