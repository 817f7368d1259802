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

static const ig_type PTYPES[] = {IG_TYPE_Q4_0, IG_TYPE_Q4_1, IG_TYPE_Q5_0, IG_TYPE_Q5_1,
                                 IG_TYPE_Q8_0, IG_TYPE_Q4_K, IG_TYPE_Q6_K};
#define N_PTYPES (sizeof PTYPES / sizeof PTYPES[0])

static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_unit(uint64_t *s) {
    return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}
static double rng_gauss(uint64_t *s) {
    return sqrt(-2.0 * log(rng_unit(s))) * cos(6.283185307179586 * rng_unit(s));
}

static size_t row_bytes(uint32_t t, int64_t n) {
    size_t sz = 0;
    cr_assert(ig_type_row_size(t, n, &sz));
    return sz;
}

static bool is_k(uint32_t t) {
    return t == IG_TYPE_Q4_K || t == IG_TYPE_Q6_K;
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
    const bool has_min = t == IG_TYPE_Q4_1 || t == IG_TYPE_Q5_1 || t == IG_TYPE_Q4_K;
    uint8_t *p = malloc(rb * (size_t)n_rows);
    cr_assert_not_null(p);
    for (size_t i = 0; i < rb * (size_t)n_rows; i++) p[i] = (uint8_t)rng_next(s);
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t b = 0; b < n / tr->blck_size; b++) {
            uint8_t *blk = p + r * rb + b * bs;
            const uint16_t d = ig_fp32_to_fp16((float)(rng_gauss(s) * 0.01));
            const uint16_t m = ig_fp32_to_fp16((float)(rng_gauss(s) * 0.02));
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
    cr_assert_not(ig_pack_r16_supported(IG_TYPE_Q5_K));
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
    for (size_t i = 0; i < (size_t)max_tok * n_max; i++) xf[i] = (float)rng_gauss(&s);
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
