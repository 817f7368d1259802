/*
 * test_kernels_legacy.c: the per-ISA kernels for the legacy block types
 * (q4_0, q4_1, q5_0, q5_1, q8_0 weights with q8_0 / q8_1 activations;
 * src/kernels/x86/legacy_*.c), through the dispatch table at every CPU level
 * the machine has (levels above IGNIS_CPU's cap are skipped, so the file
 * also runs under IGNIS_CPU=scalar / avx2).
 *
 * - quantize_act (q8_0, q8_1): the same bytes as the scalar quantizer on
 *   random, tied (exact halves), zero, tiny and non-finite blocks;
 * - vec_dot_q vs the scalar reference on random rows of odd lengths. Bound:
 *   the fast kernels form the same exact integer sum per block but add the
 *   block terms (d_w d_x isum, and m_w s_x) in float where the reference
 *   adds them in double; each of the 2 nb float additions rounds once, so
 *   |fast - ref| <= (2 nb + 2) 2^-24 M, M = sum over blocks of |d_w d_x isum|
 *   + |m_w s_x| (bounded here by sum |w_i x_i| over the decoded values plus
 *   sum |m_w s_x|);
 * - gemm_q on odd tile shapes (rows and tokens not multiples of the kernel's
 *   blocking, lengths across its K runs): every output equals vec_dot_q of
 *   the same level bit for bit, and nothing outside the tile is written;
 * - ig_matmul with 1, 2 and 3 threads: a token's outputs are the same bits
 *   alone, in a batch of 7 or of 64, at any position.
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
#include "tensor/act_quant.h"
#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/types.h"
#include "testutil.h"

static const ig_type LTYPES[] = {IG_TYPE_Q4_0, IG_TYPE_Q4_1, IG_TYPE_Q5_0, IG_TYPE_Q5_1,
                                 IG_TYPE_Q8_0};
#define N_LTYPES (sizeof LTYPES / sizeof LTYPES[0])

static size_t row_bytes(uint32_t t, int64_t n) {
    size_t sz = 0;
    cr_assert(ig_type_row_size(t, n, &sz));
    return sz;
}

static int has_min(uint32_t t) {
    return t == IG_TYPE_Q4_1 || t == IG_TYPE_Q5_1;
}

/* Block size in bytes of weight type t (all legacy blocks start with d, then m if any). */
static size_t block_bytes(uint32_t t) {
    return ig_type_get(t)->type_size;
}

/* n_rows random rows: random code bytes (q8_0: -128 included), finite random f16 d (and m). */
static uint8_t *random_rows(uint32_t t, int64_t n, int64_t n_rows, uint64_t *s) {
    const size_t rb = row_bytes(t, n), bs = block_bytes(t);
    uint8_t *p = malloc(rb * (size_t)n_rows);
    cr_assert_not_null(p);
    for (size_t i = 0; i < rb * (size_t)n_rows; i++) p[i] = (uint8_t)ig_test_rng_next(s);
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t b = 0; b < n / IG_QK; b++) {
            uint8_t *blk = p + r * rb + b * bs;
            const uint16_t d = ig_fp32_to_fp16((float)(ig_test_rng_gauss(s) * 0.01));
            const uint16_t m = ig_fp32_to_fp16((float)(ig_test_rng_gauss(s) * 0.02));
            memcpy(blk, &d, 2);
            if (has_min(t)) memcpy(blk + 2, &m, 2);
        }
    return p;
}

static const ig_dot_kernel *kern(uint32_t t, int level) {
    const ig_dot_kernel *k = ig_dot_kernel_get(t, (ig_cpu_level)level);
    cr_assert_not_null(k, "%s level %d: no kernel", ig_type_name(t), level);
    return k;
}

/* Activations for weight type t: n_tok tokens of n random values, converted by the scalar
 * quantizer. */
static uint8_t *random_acts(uint32_t t, int64_t n, int n_tok, float *xf, uint64_t *s,
                            size_t *stride) {
    const ig_dot_kernel *k = kern(t, IG_CPU_SCALAR);
    *stride = row_bytes(k->act_type, n);
    uint8_t *xq = malloc(*stride * (size_t)n_tok);
    cr_assert_not_null(xq);
    for (int c = 0; c < n_tok; c++) {
        float *x = xf + (size_t)c * n;
        for (int64_t i = 0; i < n; i++) x[i] = (float)ig_test_rng_gauss(s);
        k->quantize_act(x, xq + (size_t)c * *stride, n);
    }
    return xq;
}

/* ------------------------------------------------------------ quantizers */

/* Fill 32 values per block with one of several kinds of content. */
static void fill_block(float *x, int kind, uint64_t *s) {
    switch (kind) {
    case 0: /* gaussian */
        for (int i = 0; i < IG_QK; i++) x[i] = (float)ig_test_rng_gauss(s);
        break;
    case 1: /* amax 127: x * 127/amax is x, so halves are exact ties */
        for (int i = 0; i < IG_QK; i++)
            x[i] = (float)((int)(ig_test_rng_next(s) % 253) - 126) + 0.5f;
        x[ig_test_rng_next(s) % IG_QK] = -127.0f;
        break;
    case 2: /* all zero, with signed zeros */
        for (int i = 0; i < IG_QK; i++) x[i] = i % 2 ? -0.0f : 0.0f;
        break;
    case 3: /* tiny and subnormal */
        for (int i = 0; i < IG_QK; i++) x[i] = (float)ig_test_rng_gauss(s) * 1e-40f;
        break;
    case 4: /* non-finite */
        for (int i = 0; i < IG_QK; i++) x[i] = (float)ig_test_rng_gauss(s);
        x[ig_test_rng_next(s) % IG_QK] = NAN;
        if (ig_test_rng_next(s) % 2) x[ig_test_rng_next(s) % IG_QK] = INFINITY;
        if (ig_test_rng_next(s) % 2) x[ig_test_rng_next(s) % IG_QK] = -INFINITY;
        break;
    default: /* huge */
        for (int i = 0; i < IG_QK; i++) x[i] = (float)ig_test_rng_gauss(s) * 3e37f;
        break;
    }
}

Test(kernels_legacy, activation_quantizers_write_the_scalar_bytes) {
    uint64_t s = 11;
    const int64_t n = 32 * 37;
    float *x = malloc(n * sizeof *x);
    uint8_t *a = malloc(n * 2), *b = malloc(n * 2);
    const uint32_t weight_for[2] = {IG_TYPE_Q4_0, IG_TYPE_Q4_1}; /* q8_0, q8_1 activations */
    for (int l = IG_CPU_SCALAR; l <= (int)ig_cpu_level_get(); l++)
        for (int w = 0; w < 2; w++) {
            const ig_dot_kernel *ref = kern(weight_for[w], IG_CPU_SCALAR),
                                *fast = kern(weight_for[w], l);
            cr_assert_eq(fast->act_type, ref->act_type);
            const size_t sz = row_bytes(ref->act_type, n);
            for (int rep = 0; rep < 20; rep++) {
                for (int64_t blk = 0; blk < n / IG_QK; blk++)
                    fill_block(x + blk * IG_QK, (int)((blk + rep) % 6), &s);
                memset(a, 0x5a, sz);
                memset(b, 0xa5, sz);
                ref->quantize_act(x, a, n);
                fast->quantize_act(x, b, n);
                cr_assert(memcmp(a, b, sz) == 0, "%s level %d rep %d: bytes differ",
                          ig_type_name(ref->act_type), l, rep);
            }
        }
    free(x);
    free(a);
    free(b);
}

/* ------------------------------------------------------------ vec_dot_q */

/* sum |w_i x_i| over decoded values, plus sum |m s| for q4_1 / q5_1 (see the bound above). */
static double magnitude(uint32_t t, const uint8_t *row, const uint8_t *xq, int64_t n) {
    float *w = malloc(n * sizeof *w), *x = malloc(n * sizeof *x);
    ig_type_get(t)->to_float(row, w, n);
    const uint32_t at = kern(t, IG_CPU_SCALAR)->act_type;
    if (at == IG_TYPE_Q8_1)
        ig_to_float_q8_1(xq, x, n);
    else
        ig_type_get(at)->to_float(xq, x, n);
    double m = 0;
    for (int64_t i = 0; i < n; i++) m += fabs((double)w[i] * x[i]);
    if (has_min(t))
        for (int64_t b = 0; b < n / IG_QK; b++) {
            uint16_t mw, sx;
            memcpy(&mw, row + b * block_bytes(t) + 2, 2);
            memcpy(&sx, xq + b * sizeof(ig_block_q8_1) + 2, 2);
            m += fabs((double)ig_fp16_to_fp32(mw) * ig_fp16_to_fp32(sx));
        }
    free(w);
    free(x);
    return m;
}

Test(kernels_legacy, vec_dot_q_is_within_the_float_summation_bound_of_scalar) {
    uint64_t s = 21;
    const int64_t lens[] = {32, 96, 224, 1056, 2080, 5632};
    for (size_t ti = 0; ti < N_LTYPES; ti++) {
        const uint32_t t = LTYPES[ti];
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            const int64_t n = lens[li], nb = n / IG_QK;
            float *xf = malloc(n * sizeof *xf);
            size_t stride;
            for (int rep = 0; rep < 4; rep++) {
                uint8_t *row = random_rows(t, n, 1, &s);
                uint8_t *xq = random_acts(t, n, 1, xf, &s, &stride);
                const double ref = kern(t, IG_CPU_SCALAR)->vec_dot_q(row, xq, n);
                const double bound = (2.0 * nb + 2) * ldexp(1, -24) * magnitude(t, row, xq, n);
                for (int l = IG_CPU_SCALAR + 1; l <= (int)ig_cpu_level_get(); l++) {
                    const double got = kern(t, l)->vec_dot_q(row, xq, n);
                    cr_expect(fabs(got - ref) <= bound,
                              "%s n=%lld level %d: %.9g vs scalar %.9g (bound %.3g)",
                              ig_type_name(t), (long long)n, l, got, ref, bound);
                }
                free(row);
                free(xq);
            }
            free(xf);
        }
    }
}

/* ------------------------------------------------------------ gemm_q */

/* Run gemm_q of level l on an nr x nc tile and compare every output with vec_dot_q. */
static void check_tile(uint32_t t, int l, int64_t n, int nr, int nc, uint64_t *s) {
    const ig_dot_kernel *k = kern(t, l);
    if (!k->gemm_q) return;
    const size_t rb = row_bytes(t, n);
    uint8_t *w = random_rows(t, n, nr, s);
    float *xf = malloc((size_t)nc * n * sizeof *xf);
    size_t stride;
    uint8_t *xq = random_acts(t, n, nc, xf, s, &stride);
    const size_t ldy = (size_t)nr + 3;
    float *y = malloc(ldy * nc * sizeof *y);
    for (size_t i = 0; i < ldy * nc; i++) y[i] = -12345.0f;
    k->gemm_q(n, w, rb, nr, xq, stride, nc, y, ldy);
    for (int c = 0; c < nc; c++) {
        for (int r = 0; r < nr; r++) {
            const float want = k->vec_dot_q(w + (size_t)r * rb, xq + (size_t)c * stride, n);
            const float got = y[(size_t)c * ldy + r];
            cr_assert(memcmp(&got, &want, sizeof got) == 0,
                      "%s level %d n=%lld tile %dx%d: (row %d, token %d) %.9g vs vec_dot_q %.9g",
                      ig_type_name(t), l, (long long)n, nr, nc, r, c, got, want);
        }
        for (size_t r = (size_t)nr; r < ldy; r++)
            cr_assert_eq(y[(size_t)c * ldy + r], -12345.0f, "%s: wrote outside the tile",
                         ig_type_name(t));
    }
    free(w);
    free(xf);
    free(xq);
    free(y);
}

Test(kernels_legacy, gemm_tiles_equal_vec_dot_q_bit_for_bit) {
    uint64_t s = 31;
    /* lengths across the kernels' K runs (32 blocks); shapes around their 8/16-row, 4/8-token
     * blocking */
    const struct {
        int64_t n;
        int nr, nc;
    } shapes[] = {{32, 1, 1},   {96, 5, 3},    {224, 16, 4},  {1056, 17, 5}, {2080, 33, 9},
                  {160, 7, 13}, {1088, 40, 8}, {64, 70, 67},  {2080, 3, 1},  {3136, 31, 2},
                  {96, 8, 64},  {480, 15, 7},  {5632, 19, 3}, {320, 1, 17}};
    for (size_t ti = 0; ti < N_LTYPES; ti++)
        for (int l = IG_CPU_SCALAR + 1; l <= (int)ig_cpu_level_get(); l++)
            for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
                check_tile(LTYPES[ti], l, shapes[i].n, shapes[i].nr, shapes[i].nc, &s);
}

/* ------------------------------------------------------------ ig_matmul */

Test(kernels_legacy, matmul_is_batch_and_thread_invariant) {
    uint64_t s = 41;
    const int64_t n = 2080; /* 65 blocks */
    const int64_t n_rows = 83;
    const int n_tok = 64;
    ig_pool *pools[3] = {NULL, NULL, NULL};
    ig_error err = {0};
    for (int p = 0; p < 3; p++) cr_assert_eq(ig_pool_new(p + 1, &pools[p], &err), IG_OK);
    const ig_cpu_level saved = ig_cpu_level_get();
    float *xf = malloc((size_t)n_tok * n * sizeof *xf);
    for (size_t i = 0; i < (size_t)n_tok * n; i++) xf[i] = (float)ig_test_rng_gauss(&s);
    float *y64 = malloc((size_t)n_tok * n_rows * sizeof *y64);
    float *y = malloc((size_t)n_tok * n_rows * sizeof *y);
    for (size_t ti = 0; ti < N_LTYPES; ti++) {
        const uint32_t t = LTYPES[ti];
        uint8_t *data = random_rows(t, n, n_rows, &s);
        const ig_matrix w = {t, n, n_rows, row_bytes(t, n), data, false};
        void *scratch = malloc(ig_matmul_scratch_bytes(&w, n_tok));
        for (int l = IG_CPU_SCALAR; l <= (int)saved; l++) {
            ig_cpu_level_set((ig_cpu_level)l);
            const ig_dot_kernel *k = kern(t, l);
            ig_matmul(pools[1], &w, xf, n_tok, y64, scratch);
            /* every output is the level's vec_dot_q of its pair */
            size_t stride = row_bytes(k->act_type, n);
            uint8_t *xq = malloc(stride);
            for (int c = 0; c < n_tok; c += 9) {
                k->quantize_act(xf + (size_t)c * n, xq, n);
                for (int64_t r = 0; r < n_rows; r++) {
                    const float want = k->vec_dot_q(data + r * w.row_bytes, xq, n);
                    cr_assert(memcmp(&want, &y64[(size_t)c * n_rows + r], sizeof want) == 0,
                              "%s level %d: token %d row %lld differs from vec_dot_q",
                              ig_type_name(t), l, c, (long long)r);
                }
            }
            free(xq);
            for (int p = 0; p < 3; p++) {
                /* all 64 at once */
                ig_matmul(pools[p], &w, xf, n_tok, y, scratch);
                cr_assert(memcmp(y, y64, (size_t)n_tok * n_rows * sizeof *y) == 0,
                          "%s level %d, %d threads: batch of 64 differs", ig_type_name(t), l,
                          p + 1);
                /* 7 tokens from an odd position */
                ig_matmul(pools[p], &w, xf + (size_t)23 * n, 7, y, scratch);
                cr_assert(memcmp(y, y64 + (size_t)23 * n_rows, (size_t)7 * n_rows * sizeof *y) == 0,
                          "%s level %d, %d threads: batch of 7 differs", ig_type_name(t), l, p + 1);
                /* single tokens */
                for (int c = p; c < n_tok; c += 13) {
                    ig_matmul(pools[p], &w, xf + (size_t)c * n, 1, y, scratch);
                    cr_assert(memcmp(y, y64 + (size_t)c * n_rows, (size_t)n_rows * sizeof *y) == 0,
                              "%s level %d, %d threads: token %d alone differs", ig_type_name(t), l,
                              p + 1, c);
                }
            }
        }
        ig_cpu_level_set(saved);
        free(scratch);
        free(data);
    }
    free(xf);
    free(y64);
    free(y);
    for (int p = 0; p < 3; p++) ig_pool_free(pools[p]);
}
