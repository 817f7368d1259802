/*
 * test_kernels_float.c: the SIMD kernels for float weights (f16, bf16, f32;
 * src/kernels/x86/float_*.c) at every CPU level this machine supports,
 * against the scalar reference kernels of the type traits.
 *
 * - activation converters f32 -> f16 / bf16: bit-identical to the scalar
 *   ones on special values (zeros, subnormals, halfway cases, the overflow
 *   edge, inf, NaN payloads), on a sweep of 2^32 / 251 bit patterns, and at
 *   every length 0..40 (the partial last vector);
 * - vec_dot_q against the scalar vec_dot_q (sum in double) on random rows of
 *   odd lengths: |fast - ref| <= (n / 8 + 6) * 2^-24 * sum |w_k x_k|, the
 *   classic bound for a sum of that many f32 additions in the kernels'
 *   order (n / lanes terms per lane, then log2(lanes) additions; products
 *   are exact in f32 for f16 and bf16, and FMA rounds once for f32), taken
 *   with 8 lanes so that it covers both AVX2 and AVX-512;
 * - gemm_q against vec_dot_q of the same level bit for bit, for every tile
 *   shape from 1 x 1 up to 13 x 13 and larger odd ones, at every position;
 * - ig_matmul: batches of 1, 7 and 64 tokens (and threads) give the same
 *   bits for each token (batch invariance).
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
#include "tensor/types.h"
#include "testutil.h"

static const uint32_t TYPES[] = {IG_TYPE_F16, IG_TYPE_BF16, IG_TYPE_F32};
#define N_TYPES (sizeof TYPES / sizeof TYPES[0])

/* The highest level to test: the machine's, or IGNIS_CPU's cap (each test runs in its own process).
 */
static int max_level(void) {
    return (int)ig_cpu_level_get();
}

static size_t elt_size(uint32_t t) {
    return t == IG_TYPE_F32 ? 4 : 2;
}

/* A random row of n values of type t (weights ~ N(0, scale^2)); w gets the values as floats. */
static void *random_row(uint32_t t, int64_t n, double scale, uint64_t *s, float *w) {
    void *row = malloc((size_t)n * elt_size(t) + 64);
    cr_assert_not_null(row);
    for (int64_t i = 0; i < n; i++) {
        const float v = (float)(ig_test_rng_gauss(s) * scale);
        if (t == IG_TYPE_F16) {
            ((uint16_t *)row)[i] = ig_fp32_to_fp16(v);
            w[i] = ig_fp16_to_fp32(((uint16_t *)row)[i]);
        } else if (t == IG_TYPE_BF16) {
            ((uint16_t *)row)[i] = ig_fp32_to_bf16(v);
            w[i] = ig_bf16_to_fp32(((uint16_t *)row)[i]);
        } else {
            ((float *)row)[i] = v;
            w[i] = v;
        }
    }
    return row;
}

/* ---------------------------------------------------------- converters */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Convert x[0..n) at level l and with the scalar converter; expect the same bits. */
static void expect_same_conversion(uint32_t t, int l, const float *x, int64_t n) {
    const ig_dot_kernel *ref = ig_dot_kernel_get(t, IG_CPU_SCALAR),
                        *fast = ig_dot_kernel_get(t, (ig_cpu_level)l);
    uint16_t *a = calloc((size_t)n + 1, 2), *b = calloc((size_t)n + 1, 2);
    a[n] = b[n] = 0xbeef; /* the converter must not write past n */
    ref->quantize_act(x, a, n);
    fast->quantize_act(x, b, n);
    cr_expect_eq(b[n], 0xbeef, "%s level %d n=%lld: wrote past the end", ig_type_name(t), l,
                 (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (a[i] != b[i]) {
            cr_expect_eq(b[i], a[i], "%s level %d: x=%a (bits %08x) -> %04x, scalar %04x",
                         ig_type_name(t), l, (double)x[i], f32_bits(x[i]), b[i], a[i]);
            break;
        }
    free(a);
    free(b);
}

Test(kernels_float, converters_are_bit_identical_to_scalar) {
    static const uint32_t special[] = {
        0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x00400000, /* zeros, f32 subnormals */
        0x33000000, 0x33000001, 0x337fffff, 0x33800000, 0x33c00000, /* around half's smallest
                                                                       subnormal */
        0x38800000, 0x387fffff, 0x387fe000, 0x387ff000, 0x38801000, /* half's normal edge */
        0x3f800000, 0x3f801000, 0x3f803000, 0x3f800fff, 0x3f808000, 0x3f818000, /* ties */
        0x477fe000, 0x477fefff, 0x477ff000, 0x477fffff, 0x47800000, /* half's overflow edge */
        0x7f7fffff, 0xff7fffff, 0x7f7f8000, 0x7f7f7fff, 0x7f800000, 0xff800000, /* bf16 edge, inf */
        0x7fc00000, 0xffc00001, 0x7f800001, 0x7fa00000, 0xff812345, 0x7fffffff, /* NaNs */
    };
    const int n_special = sizeof special / sizeof special[0];
    float x[64];
    const int hw = max_level();
    for (size_t k = 0; k < 2; k++) {
        const uint32_t t = TYPES[k];
        for (int l = IG_CPU_SCALAR + 1; l <= hw; l++) {
            for (int i = 0; i < n_special; i++) x[i] = bits_f32(special[i]);
            expect_same_conversion(t, l, x, n_special);
            /* every length 0..40: the partial last vector */
            uint64_t s = 11;
            for (int i = 0; i < 64; i++) x[i] = (float)ig_test_rng_gauss(&s);
            for (int n = 0; n <= 40; n++) expect_same_conversion(t, l, x, n);
            /* a sweep over the bit patterns */
            enum { CHUNK = 4096 };
            float *buf = malloc(CHUNK * sizeof *buf);
            uint64_t u = 0;
            while (u < (1ull << 32)) {
                int n = 0;
                for (; n < CHUNK && u < (1ull << 32); n++, u += 251) buf[n] = bits_f32((uint32_t)u);
                expect_same_conversion(t, l, buf, n);
            }
            free(buf);
        }
    }
}

/* ----------------------------------------------------------- vec_dot_q */

Test(kernels_float, vec_dot_q_matches_scalar_within_the_f32_summation_bound) {
    static const int64_t sizes[] = {1,  2,  7,  8,   9,   15,  16,   17,   31,
                                    32, 33, 63, 100, 255, 257, 1000, 2053, 5632};
    const int hw = max_level();
    uint64_t s = 7;
    for (size_t k = 0; k < N_TYPES; k++) {
        const uint32_t t = TYPES[k];
        const ig_dot_kernel *ref = ig_dot_kernel_get(t, IG_CPU_SCALAR);
        for (int l = IG_CPU_SCALAR; l <= hw; l++) {
            const ig_dot_kernel *fast = ig_dot_kernel_get(t, (ig_cpu_level)l);
            cr_assert(fast && fast->act_type == ref->act_type, "%s level %d", ig_type_name(t), l);
            double worst = 0;
            for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
                const int64_t n = sizes[si];
                float *w = malloc(n * sizeof *w), *xf = malloc(n * sizeof *xf),
                      *xd = malloc(n * sizeof *xd);
                for (int rep = 0; rep < 6; rep++) {
                    void *row = random_row(t, n, 0.02 * (rep + 1), &s, w);
                    for (int64_t i = 0; i < n; i++)
                        xf[i] = (float)(ig_test_rng_gauss(&s) * (rep % 3 == 2 ? 30 : 1));
                    void *xq = malloc((size_t)n * elt_size(t) + 64);
                    ref->quantize_act(xf, xq, n);
                    ig_type_get(t)->to_float(xq, xd, n);
                    double mag = 0;
                    for (int64_t i = 0; i < n; i++) mag += fabs((double)w[i] * xd[i]);
                    const double a = ref->vec_dot_q(row, xq, n), b = fast->vec_dot_q(row, xq, n);
                    const double lim = ((double)n / 8 + 6) * ldexp(1, -24) * mag + 1e-37;
                    if (l == IG_CPU_SCALAR) cr_expect_eq(a, b);
                    cr_expect(fabs(a - b) <= lim,
                              "%s level %d n=%lld: %.9g vs scalar %.9g (bound %.3g)",
                              ig_type_name(t), l, (long long)n, b, a, lim);
                    if (fabs(a - b) / lim > worst) worst = fabs(a - b) / lim;
                    free(row);
                    free(xq);
                }
                free(w);
                free(xf);
                free(xd);
            }
            cr_log_info("%-4s %-6s: worst |fast - scalar| / bound = %.3f", ig_type_name(t),
                        ig_cpu_level_name((ig_cpu_level)l), worst);
        }
    }
}

/* ------------------------------------------------------------- gemm_q */

/* One (nr x nc) tile through gemm_q, each output against vec_dot_q bit for bit. */
static void check_tile(uint32_t t, int l, int64_t n, int nr, int nc, uint64_t *s) {
    const ig_dot_kernel *k = ig_dot_kernel_get(t, (ig_cpu_level)l);
    const size_t wrb = (size_t)n * elt_size(t) + 6; /* odd strides: nothing may assume packing */
    const size_t xrb = (size_t)n * elt_size(t) + 10;
    uint8_t *w = malloc(wrb * nr), *xq = malloc(xrb * nc);
    float *tmp = malloc((size_t)n * sizeof *tmp);
    for (int r = 0; r < nr; r++) {
        void *row = random_row(t, n, 0.05, s, tmp);
        memcpy(w + r * wrb, row, (size_t)n * elt_size(t));
        free(row);
    }
    for (int c = 0; c < nc; c++) {
        for (int64_t i = 0; i < n; i++) tmp[i] = (float)ig_test_rng_gauss(s);
        k->quantize_act(tmp, xq + c * xrb, n);
    }
    const size_t ldy = (size_t)nr + 3;
    float *y = malloc(ldy * nc * sizeof *y);
    for (size_t i = 0; i < ldy * nc; i++) y[i] = -12345.0f;
    k->gemm_q(n, w, wrb, nr, xq, xrb, nc, y, ldy);
    for (int c = 0; c < nc; c++) {
        for (int r = 0; r < nr; r++) {
            const float want = k->vec_dot_q(w + r * wrb, xq + c * xrb, n);
            const float got = y[c * ldy + r];
            if (memcmp(&want, &got, sizeof got) != 0) {
                cr_expect(0, "%s level %d n=%lld tile %dx%d: (%d,%d) = %.9g, vec_dot_q %.9g",
                          ig_type_name(t), l, (long long)n, nr, nc, r, c, got, want);
                goto done;
            }
        }
        for (size_t r = (size_t)nr; r < ldy; r++)
            if (y[c * ldy + r] != -12345.0f) {
                cr_expect(0, "%s level %d tile %dx%d: wrote outside the tile", ig_type_name(t), l,
                          nr, nc);
                goto done;
            }
    }
done:
    free(w);
    free(xq);
    free(tmp);
    free(y);
}

Test(kernels_float, gemm_q_equals_vec_dot_q_bit_for_bit_for_every_tile_shape) {
    const int hw = max_level();
    uint64_t s = 99;
    for (size_t k = 0; k < N_TYPES; k++) {
        const uint32_t t = TYPES[k];
        for (int l = IG_CPU_SCALAR + 1; l <= hw; l++) {
            if (!ig_dot_kernel_get(t, (ig_cpu_level)l)->gemm_q) continue;
            for (int nr = 1; nr <= 13; nr++)
                for (int nc = 1; nc <= 13; nc++) check_tile(t, l, nr * 7 + nc, nr, nc, &s);
            check_tile(t, l, 2048, 37, 67, &s);
            check_tile(t, l, 33, 64, 1, &s);
            check_tile(t, l, 4096, 17, 1, &s);
        }
    }
}

/* ------------------------------------------------------------- matmul */

Test(kernels_float, matmul_is_batch_invariant_at_every_level) {
    ig_pool *pool = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_pool_new(2, &pool, &err), IG_OK);
    const ig_cpu_level was = ig_cpu_level_get();
    const int hw = max_level();
    uint64_t s = 5;
    const int64_t n_cols = 328, n_rows = 83; /* neither a multiple of any vector width or tile */
    enum { N_TOK = 64 };
    float *x = malloc(N_TOK * n_cols * sizeof *x), *y = malloc(N_TOK * n_rows * sizeof *y);
    float *y1 = malloc(N_TOK * n_rows * sizeof *y1), *y7 = malloc(7 * n_rows * sizeof *y7);
    float *tmp = malloc(n_cols * sizeof *tmp);
    for (int64_t i = 0; i < N_TOK * n_cols; i++) x[i] = (float)ig_test_rng_gauss(&s);
    for (size_t k = 0; k < N_TYPES; k++) {
        const uint32_t t = TYPES[k];
        ig_matrix w = {t, n_cols, n_rows, (size_t)n_cols * elt_size(t), NULL, false};
        uint8_t *data = malloc(w.row_bytes * n_rows);
        for (int64_t r = 0; r < n_rows; r++) {
            void *row = random_row(t, n_cols, 0.05, &s, tmp);
            memcpy(data + r * w.row_bytes, row, w.row_bytes);
            free(row);
        }
        w.data = data;
        void *scratch = malloc(ig_matmul_scratch_bytes(&w, N_TOK) + 64);
        for (int l = IG_CPU_SCALAR; l <= hw; l++) {
            ig_cpu_level_set((ig_cpu_level)l);
            ig_matmul(pool, &w, x, N_TOK, y, scratch);
            for (int tk = 0; tk < N_TOK; tk++)
                ig_matmul(NULL, &w, x + tk * n_cols, 1, y1 + tk * n_rows, scratch);
            cr_expect(memcmp(y, y1, N_TOK * n_rows * sizeof *y) == 0,
                      "%s level %d: batch of 64 != one by one", ig_type_name(t), l);
            ig_matmul(pool, &w, x + 20 * n_cols, 7, y7,
                      scratch); /* tokens 20..26: other tile positions */
            cr_expect(memcmp(y7, y + 20 * n_rows, 7 * n_rows * sizeof *y) == 0,
                      "%s level %d: batch of 7 differs", ig_type_name(t), l);
        }
        ig_cpu_level_set(was);
        free(scratch);
        free(data);
    }
    free(x);
    free(y);
    free(y1);
    free(y7);
    free(tmp);
    ig_pool_free(pool);
}
