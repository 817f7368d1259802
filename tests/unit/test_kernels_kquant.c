/*
 * test_kernels_kquant.c: the per-ISA kernels for K-quant weights (q2_K ..
 * q6_K) with q8_K activations (src/kernels/x86/kquant_*.c), through the
 * dispatch table at every CPU level the machine has.
 *
 * Bound: 0. The fast kernels form the same exact integer sums per
 * super-block as the scalar reference and then do the reference's float and
 * double steps in its order, so every result must equal the scalar one bit
 * for bit (a float bound would hide an unpacking slip that only moves a low
 * bit). Likewise the q8_K activation quantizer must write the same bytes.
 *
 * - vec_dot_q vs the scalar reference on random rows of odd lengths;
 * - gemm_q on odd tile shapes vs vec_dot_q per pair, and batch invariance:
 *   one token's outputs are the same bits alone, in a batch of 7 or 64, at
 *   any position, and for any row sub-range;
 * - quantize_act on random, tied, non-finite and zero blocks;
 * - ig_matmul with a thread pool, batch 1 vs 7 vs 64.
 * Run under IGNIS_CPU=scalar / avx2 too: levels above the cap are skipped.
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

static const ig_type KTYPES[] = {IG_TYPE_Q2_K, IG_TYPE_Q3_K, IG_TYPE_Q4_K, IG_TYPE_Q5_K,
                                 IG_TYPE_Q6_K};
#define N_KTYPES (sizeof KTYPES / sizeof KTYPES[0])

/* The highest level this machine (and IGNIS_CPU) allows. */
static ig_cpu_level top_level(void) {
    return ig_cpu_level_get();
}

static size_t row_bytes(uint32_t t, int64_t n) {
    size_t sz = 0;
    cr_assert(ig_type_row_size(t, n, &sz));
    return sz;
}

/* n_rows random rows: random bytes, then finite random f16 super-block scales. */
static uint8_t *random_rows(uint32_t t, int64_t n, int64_t n_rows, uint64_t *s) {
    const size_t rb = row_bytes(t, n);
    uint8_t *p = malloc(rb * (size_t)n_rows);
    cr_assert_not_null(p);
    for (size_t i = 0; i < rb * (size_t)n_rows; i++) p[i] = (uint8_t)ig_test_rng_next(s);
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t b = 0; b < n / IG_QK_K; b++) {
            const uint16_t d = ig_fp32_to_fp16((float)(ig_test_rng_gauss(s) * 0.01));
            const uint16_t dmin = ig_fp32_to_fp16((float)(ig_test_rng_gauss(s) * 0.01));
            uint8_t *blk = p + r * rb;
            switch (t) {
            case IG_TYPE_Q2_K:
                ((ig_block_q2_K *)blk)[b].d = d, ((ig_block_q2_K *)blk)[b].dmin = dmin;
                break;
            case IG_TYPE_Q3_K:
                ((ig_block_q3_K *)blk)[b].d = d;
                break;
            case IG_TYPE_Q4_K:
                ((ig_block_q4_K *)blk)[b].d = d, ((ig_block_q4_K *)blk)[b].dmin = dmin;
                break;
            case IG_TYPE_Q5_K:
                ((ig_block_q5_K *)blk)[b].d = d, ((ig_block_q5_K *)blk)[b].dmin = dmin;
                break;
            default:
                ((ig_block_q6_K *)blk)[b].d = d;
                break;
            }
        }
    }
    return p;
}

/* Random activations: gaussian, with a few outliers and an occasional all-zero block. */
static void random_acts(float *x, int64_t n, uint64_t *s) {
    for (int64_t i = 0; i < n; i++)
        x[i] = (float)(ig_test_rng_gauss(s) * (ig_test_rng_unit(s) < 0.01 ? 30 : 1) *
                       (1 + (i / 256) % 3));
    if (n >= 512 && ig_test_rng_unit(s) < 0.5) memset(x + 256, 0, 256 * sizeof *x);
}

/* Token rows of q8_K activations quantized by the scalar reference, rows `stride` bytes apart. */
static uint8_t *quantize_tokens(const float *x, int64_t n, int n_tok, size_t *stride) {
    *stride = (row_bytes(IG_TYPE_Q8_K, n) + 63) & ~(size_t)63;
    uint8_t *q = malloc(*stride * (size_t)n_tok);
    cr_assert_not_null(q);
    for (int t = 0; t < n_tok; t++) ig_quantize_act_q8_K(x + t * n, q + t * *stride, n);
    return q;
}

static uint32_t bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ------------------------------------------------------------ vec_dot_q */

Test(kernels_kquant, vec_dot_q_equals_scalar_bit_for_bit_at_every_level) {
    uint64_t s = 11;
    const int64_t sizes[] = {256, 768, 1792, 2816}; /* 1, 3, 7, 11 super-blocks */
    for (int l = IG_CPU_SCALAR + 1; l <= (int)top_level(); l++) {
        for (size_t k = 0; k < N_KTYPES; k++) {
            const uint32_t t = KTYPES[k];
            const ig_dot_kernel *ref = ig_dot_kernel_get(t, IG_CPU_SCALAR),
                                *fast = ig_dot_kernel_get(t, (ig_cpu_level)l);
            cr_assert(ref && fast);
            for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                const int64_t n = sizes[si];
                const int n_rows = 9;
                uint8_t *w = random_rows(t, n, n_rows, &s);
                float *x = malloc(n * sizeof *x);
                random_acts(x, n, &s);
                size_t stride;
                uint8_t *xq = quantize_tokens(x, n, 1, &stride);
                const size_t rb = row_bytes(t, n);
                for (int r = 0; r < n_rows; r++) {
                    const float a = ref->vec_dot_q(w + r * rb, xq, n);
                    const float b = fast->vec_dot_q(w + r * rb, xq, n);
                    cr_expect_eq(bits(a), bits(b), "%s level %s n=%lld row %d: %.9g vs scalar %.9g",
                                 ig_type_name(t), ig_cpu_level_name((ig_cpu_level)l), (long long)n,
                                 r, b, a);
                }
                free(w);
                free(x);
                free(xq);
            }
        }
    }
}

/* Extreme codes: all weight bytes 0xff (largest codes and scales), activations at +-127. */
Test(kernels_kquant, vec_dot_q_extreme_codes_equal_scalar) {
    const int64_t n = 512;
    float *x = malloc(n * sizeof *x);
    for (int sign = -1; sign <= 1; sign += 2) {
        for (int64_t i = 0; i < n; i++) x[i] = (float)(sign * (i % 7 == 0 ? -1 : 1)) * 3.0f;
        size_t stride;
        uint8_t *xq = quantize_tokens(x, n, 1, &stride);
        for (size_t k = 0; k < N_KTYPES; k++) {
            const uint32_t t = KTYPES[k];
            const size_t rb = row_bytes(t, n);
            uint8_t *w = malloc(rb);
            for (int fill = 0; fill < 2; fill++) {
                memset(w, fill ? 0xff : 0x00, rb);
                /* keep the f16 scales finite: 1.0 and 0.5 wherever a type stores them */
                for (int64_t b = 0; b < n / IG_QK_K; b++) {
                    uint8_t *blk = w + b * ig_type_get(t)->type_size;
                    const uint16_t one = ig_fp32_to_fp16(1.0f), half = ig_fp32_to_fp16(0.5f);
                    switch (t) {
                    case IG_TYPE_Q2_K:
                        ((ig_block_q2_K *)blk)->d = one, ((ig_block_q2_K *)blk)->dmin = half;
                        break;
                    case IG_TYPE_Q3_K:
                        ((ig_block_q3_K *)blk)->d = one;
                        break;
                    case IG_TYPE_Q4_K:
                        ((ig_block_q4_K *)blk)->d = one, ((ig_block_q4_K *)blk)->dmin = half;
                        break;
                    case IG_TYPE_Q5_K:
                        ((ig_block_q5_K *)blk)->d = one, ((ig_block_q5_K *)blk)->dmin = half;
                        break;
                    default:
                        ((ig_block_q6_K *)blk)->d = one;
                        break;
                    }
                }
                const float a = ig_dot_kernel_get(t, IG_CPU_SCALAR)->vec_dot_q(w, xq, n);
                for (int l = IG_CPU_SCALAR + 1; l <= (int)top_level(); l++) {
                    const ig_dot_kernel *fast = ig_dot_kernel_get(t, (ig_cpu_level)l);
                    const float b = fast->vec_dot_q(w, xq, n);
                    cr_expect_eq(bits(a), bits(b),
                                 "%s level %d fill %d sign %d: %.9g vs scalar %.9g",
                                 ig_type_name(t), l, fill, sign, b, a);
                }
            }
            free(w);
        }
        free(xq);
    }
    free(x);
}

/* ------------------------------------------------------------ gemm_q */

/* y[c * ldy + r] through the level's gemm_q, or vec_dot_q per pair when it has none. */
static void run_gemm(const ig_dot_kernel *k, int64_t n, const uint8_t *w, size_t rb, int nr,
                     const uint8_t *xq, size_t stride, int nc, float *y, size_t ldy) {
    if (k->gemm_q) {
        k->gemm_q(n, w, rb, nr, xq, stride, nc, y, ldy);
        return;
    }
    for (int r = 0; r < nr; r++)
        for (int c = 0; c < nc; c++) y[c * ldy + r] = k->vec_dot_q(w + r * rb, xq + c * stride, n);
}

Test(kernels_kquant, gemm_q_equals_vec_dot_q_on_odd_tiles) {
    uint64_t s = 21;
    const int shapes[][2] = {{1, 1}, {3, 7}, {5, 1}, {1, 5}, {13, 67}, {4, 64}, {6, 130}};
    const int64_t n = 768;
    for (int l = IG_CPU_SCALAR; l <= (int)top_level(); l++) {
        for (size_t k = 0; k < N_KTYPES; k++) {
            const uint32_t t = KTYPES[k];
            const ig_dot_kernel *ref = ig_dot_kernel_get(t, IG_CPU_SCALAR),
                                *fast = ig_dot_kernel_get(t, (ig_cpu_level)l);
            const size_t rb = row_bytes(t, n);
            for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
                const int nr = shapes[sh][0], nc = shapes[sh][1];
                uint8_t *w = random_rows(t, n, nr, &s);
                float *x = malloc((size_t)nc * n * sizeof *x);
                for (int c = 0; c < nc; c++) random_acts(x + c * n, n, &s);
                size_t stride;
                uint8_t *xq = quantize_tokens(x, n, nc, &stride);
                const size_t ldy = (size_t)nr + 3; /* a gap between tokens must stay untouched */
                float *y = malloc((size_t)nc * ldy * sizeof *y);
                for (size_t i = 0; i < (size_t)nc * ldy; i++) y[i] = -12345.0f;
                run_gemm(fast, n, w, rb, nr, xq, stride, nc, y, ldy);
                for (int c = 0; c < nc; c++) {
                    for (int r = 0; r < nr; r++) {
                        const float want = ref->vec_dot_q(w + r * rb, xq + c * stride, n);
                        cr_expect_eq(bits(y[c * ldy + r]), bits(want),
                                     "%s level %d tile %dx%d: (row %d, token %d) %.9g vs %.9g",
                                     ig_type_name(t), l, nr, nc, r, c, y[c * ldy + r], want);
                    }
                    for (size_t r = (size_t)nr; r < ldy; r++)
                        cr_expect_eq(y[c * ldy + r], -12345.0f, "%s: wrote past the tile",
                                     ig_type_name(t));
                }
                free(w);
                free(x);
                free(xq);
                free(y);
            }
        }
    }
}

Test(kernels_kquant, gemm_q_is_batch_invariant) {
    uint64_t s = 31;
    const int64_t n = 1280;
    const int nr = 11, n_tok = 64;
    for (int l = IG_CPU_SCALAR; l <= (int)top_level(); l++) {
        for (size_t k = 0; k < N_KTYPES; k++) {
            const uint32_t t = KTYPES[k];
            const ig_dot_kernel *fast = ig_dot_kernel_get(t, (ig_cpu_level)l);
            const size_t rb = row_bytes(t, n);
            uint8_t *w = random_rows(t, n, nr, &s);
            float *x = malloc((size_t)n_tok * n * sizeof *x);
            for (int c = 0; c < n_tok; c++) random_acts(x + c * n, n, &s);
            size_t stride;
            uint8_t *xq = quantize_tokens(x, n, n_tok, &stride);
            float *y64 = malloc((size_t)n_tok * nr * sizeof *y64),
                  *y7 = malloc(7 * nr * sizeof *y7), *y1 = malloc(nr * sizeof *y1);
            run_gemm(fast, n, w, rb, nr, xq, stride, n_tok, y64, nr);
            for (int c = 0; c < n_tok; c++) {
                /* alone */
                run_gemm(fast, n, w, rb, nr, xq + c * stride, stride, 1, y1, nr);
                for (int r = 0; r < nr; r++)
                    cr_expect_eq(bits(y1[r]), bits(y64[c * nr + r]),
                                 "%s level %d token %d row %d: alone %.9g vs in 64 %.9g",
                                 ig_type_name(t), l, c, r, y1[r], y64[c * nr + r]);
                /* in a batch of 7, at position c % 7 */
                const int first = c - c % 7 + 7 <= n_tok ? c - c % 7 : n_tok - 7;
                run_gemm(fast, n, w, rb, nr, xq + first * stride, stride, 7, y7, nr);
                for (int r = 0; r < nr; r++)
                    cr_expect_eq(bits(y7[(c - first) * nr + r]), bits(y64[c * nr + r]),
                                 "%s level %d token %d row %d: in 7 vs in 64", ig_type_name(t), l,
                                 c, r);
                /* one row alone, from an offset that shifts the row tiles */
                const int r0 = c % nr;
                run_gemm(fast, n, w + r0 * rb, rb, 1, xq + c * stride, stride, 1, y1, 1);
                cr_expect_eq(bits(y1[0]), bits(y64[c * nr + r0]),
                             "%s level %d token %d row %d alone", ig_type_name(t), l, c, r0);
            }
            free(w);
            free(x);
            free(xq);
            free(y64);
            free(y7);
            free(y1);
        }
    }
}

/* ------------------------------------------------------------ quantize_act */

static void expect_same_q8_K(const float *x, int64_t n, const char *what) {
    const size_t sz = row_bytes(IG_TYPE_Q8_K, n);
    uint8_t *a = malloc(sz), *b = malloc(sz);
    ig_quantize_act_q8_K(x, a, n);
    for (int l = IG_CPU_SCALAR + 1; l <= (int)top_level(); l++) {
        for (size_t k = 0; k < N_KTYPES; k++) {
            const ig_dot_kernel *fast = ig_dot_kernel_get(KTYPES[k], (ig_cpu_level)l);
            cr_assert_eq(fast->act_type, IG_TYPE_Q8_K);
            memset(b, 0xa5, sz);
            fast->quantize_act(x, b, n);
            size_t i = 0;
            while (i < sz && a[i] == b[i]) i++;
            cr_expect_eq(i, sz, "%s: %s level %d: byte %zu of %zu differs (%u vs scalar %u)", what,
                         ig_type_name(KTYPES[k]), l, i, sz, i < sz ? b[i] : 0, i < sz ? a[i] : 0);
        }
    }
    free(a);
    free(b);
}

Test(kernels_kquant, quantize_act_writes_the_scalar_bytes) {
    uint64_t s = 41;
    const int64_t n = 2048;
    float *x = malloc(n * sizeof *x);
    for (int rep = 0; rep < 20; rep++) {
        random_acts(x, n, &s);
        expect_same_q8_K(x, n, "random");
    }
    /* ties: integers and halves scaled so that iscale is exactly -1 (max = 127) */
    for (int64_t i = 0; i < n; i++) x[i] = (float)((int)(i % 255) - 127) * 0.5f;
    x[5] = 127.0f;
    expect_same_q8_K(x, n, "halves");
    /* the largest magnitude twice with both signs: the first one sets the sign */
    for (int64_t i = 0; i < n; i++) x[i] = (float)ig_test_rng_gauss(&s);
    x[100] = -9.0f, x[200] = 9.0f, x[256 + 3] = 9.0f, x[256 + 250] = -9.0f, x[1023] = 5.0f;
    expect_same_q8_K(x, n, "signed ties");
    /* zero blocks, -0, tiny values */
    memset(x, 0, n * sizeof *x);
    x[300] = -0.0f;
    x[600] = 1e-40f;
    x[1500] = -1e-38f;
    expect_same_q8_K(x, n, "zeros");
    /* non-finite: NaN ignored by the max, infinities */
    for (int64_t i = 0; i < n; i++) x[i] = (float)ig_test_rng_gauss(&s);
    x[3] = NAN;
    x[260] = INFINITY;
    x[520] = -INFINITY, x[530] = NAN;
    for (int64_t i = 768; i < 1024; i++) x[i] = NAN;
    x[1300] = 3e38f, x[1301] = -3e38f;
    expect_same_q8_K(x, n, "non-finite");
    free(x);
}

/* ------------------------------------------------------------ matmul */

Test(kernels_kquant, matmul_is_batch_invariant_with_threads) {
    ig_pool *pool = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_pool_new(2, &pool, &err), IG_OK);
    uint64_t s = 51;
    const int64_t n_cols = 768, n_rows = 29;
    const int n_tok = 64;
    float *x = malloc((size_t)n_tok * n_cols * sizeof *x);
    for (int c = 0; c < n_tok; c++) random_acts(x + c * n_cols, n_cols, &s);
    float *y64 = malloc((size_t)n_tok * n_rows * sizeof *y64),
          *y7 = malloc(7 * n_rows * sizeof *y7), *y1 = malloc(n_rows * sizeof *y1);
    for (size_t k = 0; k < N_KTYPES; k++) {
        const uint32_t t = KTYPES[k];
        ig_matrix w = {t, n_cols, n_rows, row_bytes(t, n_cols), NULL, false};
        uint8_t *data = random_rows(t, n_cols, n_rows, &s);
        w.data = data;
        void *scratch = malloc(ig_matmul_scratch_bytes(&w, n_tok));
        ig_matmul(pool, &w, x, n_tok, y64, scratch);
        for (int c = 0; c < n_tok; c += 9) {
            ig_matmul(pool, &w, x + c * n_cols, 1, y1, scratch);
            const int first = c + 7 <= n_tok ? c : n_tok - 7;
            ig_matmul(pool, &w, x + first * n_cols, 7, y7, scratch);
            size_t stride;
            uint8_t *xq = quantize_tokens(x + c * n_cols, n_cols, 1, &stride);
            for (int64_t r = 0; r < n_rows; r++) {
                const float want = ig_type_get(t)->vec_dot_q(data + r * w.row_bytes, xq, n_cols);
                cr_expect_eq(bits(y64[c * n_rows + r]), bits(want),
                             "%s token %d row %lld: batch 64", ig_type_name(t), c, (long long)r);
                cr_expect_eq(bits(y1[r]), bits(want), "%s token %d row %lld: alone",
                             ig_type_name(t), c, (long long)r);
                cr_expect_eq(bits(y7[(c - first) * n_rows + r]), bits(want),
                             "%s token %d row %lld: batch 7", ig_type_name(t), c, (long long)r);
            }
            free(xq);
        }
        free(scratch);
        free(data);
    }
    free(x);
    free(y64);
    free(y7);
    free(y1);
    ig_pool_free(pool);
}
