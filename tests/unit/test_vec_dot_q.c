/*
 * test_vec_dot_q.c: activation quantizers (src/tensor/act_quant.c), the
 * integer dot products (src/tensor/vec_dot_q.c), the dot-kernel dispatch
 * (src/kernels/dot.c) and the matmul built on them.
 *
 * - the activation quantizers on hand-made blocks: llama.cpp's scale, ties
 *   to even, q8_1's s field, q8_K's signed scale and bsums, zero blocks;
 * - exact cases: with power-of-two scales and integer activations every
 *   product and sum is exact, so vec_dot_q must equal the exact oracle
 *   vec_dot bit for bit (catches any unpacking or scaling mistake);
 * - random rows: vec_dot_q(row, quantize_act(x)) against the exact vec_dot
 *   (row, x) under a bound derived from the activation quantization step,
 *   and against vec_dot(row, decoded activations) under float rounding;
 * - every CPU level's kernels against the scalar ones;
 * - ig_matmul against a plain loop, with threads, and batch invariance.
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

/* ------------------------------------------------------------ helpers */

/* Every weight type with a dot product, and the activation type llama.cpp's CPU backend pairs with
 * it. */
static const struct {
    ig_type type, act;
} PAIRS[] = {
    {IG_TYPE_F32, IG_TYPE_F32},   {IG_TYPE_F16, IG_TYPE_F16},   {IG_TYPE_BF16, IG_TYPE_BF16},
    {IG_TYPE_Q8_0, IG_TYPE_Q8_0}, {IG_TYPE_Q4_0, IG_TYPE_Q8_0}, {IG_TYPE_Q5_0, IG_TYPE_Q8_0},
    {IG_TYPE_Q4_1, IG_TYPE_Q8_1}, {IG_TYPE_Q5_1, IG_TYPE_Q8_1}, {IG_TYPE_Q2_K, IG_TYPE_Q8_K},
    {IG_TYPE_Q3_K, IG_TYPE_Q8_K}, {IG_TYPE_Q4_K, IG_TYPE_Q8_K}, {IG_TYPE_Q5_K, IG_TYPE_Q8_K},
    {IG_TYPE_Q6_K, IG_TYPE_Q8_K}, {IG_TYPE_Q8_K, IG_TYPE_Q8_K},
};
#define N_PAIRS (sizeof PAIRS / sizeof PAIRS[0])

static void *row_alloc(uint32_t type, int64_t n) {
    size_t sz = 0;
    cr_assert(ig_type_row_size(type, n, &sz), "%s: %lld values", ig_type_name(type), (long long)n);
    void *p = malloc(sz ? sz : 1);
    cr_assert_not_null(p);
    return p;
}

/* Quantize x into the activation format of weight type t (a new buffer). */
static void *quantize_act(uint32_t t, const float *x, int64_t n) {
    const ig_type_traits *tr = ig_type_get(t), *act = ig_type_get(tr->vec_dot_type);
    void *xq = row_alloc(tr->vec_dot_type, n);
    act->quantize_act(x, xq, n);
    return xq;
}

/* Decode activations of type `act` back to floats (q8_1: d * q, s ignored). */
static void decode_act(uint32_t act, const void *xq, float *out, int64_t n) {
    ig_type_get(act)->to_float(xq, out, n);
}

/* Fill a weight row with random bytes, then give every block the given scales (f16 d, dmin/m). */
static void random_row(uint32_t t, void *row, int64_t n, float d, float dmin, uint64_t *s) {
    size_t sz = 0;
    ig_type_row_size(t, n, &sz);
    uint8_t *p = row;
    for (size_t i = 0; i < sz; i++) p[i] = (uint8_t)ig_test_rng_next(s);
    const uint16_t hd = ig_fp32_to_fp16(d), hm = ig_fp32_to_fp16(dmin);
    const int64_t nb = n / ig_type_get(t)->blck_size;
    for (int64_t b = 0; b < nb; b++) {
        switch (t) {
        case IG_TYPE_F32:
            ((float *)row)[b] = (float)((int)(ig_test_rng_next(s) % 15) - 7) * d;
            break;
        case IG_TYPE_F16:
            ((uint16_t *)row)[b] =
                ig_fp32_to_fp16((float)((int)(ig_test_rng_next(s) % 15) - 7) * d);
            break;
        case IG_TYPE_BF16:
            ((uint16_t *)row)[b] =
                ig_fp32_to_bf16((float)((int)(ig_test_rng_next(s) % 15) - 7) * d);
            break;
        case IG_TYPE_Q8_0:
            ((ig_block_q8_0 *)row)[b].d = hd;
            break;
        case IG_TYPE_Q4_0:
            ((ig_block_q4_0 *)row)[b].d = hd;
            break;
        case IG_TYPE_Q5_0:
            ((ig_block_q5_0 *)row)[b].d = hd;
            break;
        case IG_TYPE_Q4_1:
            ((ig_block_q4_1 *)row)[b].d = hd, ((ig_block_q4_1 *)row)[b].m = hm;
            break;
        case IG_TYPE_Q5_1:
            ((ig_block_q5_1 *)row)[b].d = hd, ((ig_block_q5_1 *)row)[b].m = hm;
            break;
        case IG_TYPE_Q2_K:
            ((ig_block_q2_K *)row)[b].d = hd, ((ig_block_q2_K *)row)[b].dmin = hm;
            break;
        case IG_TYPE_Q3_K:
            ((ig_block_q3_K *)row)[b].d = hd;
            break;
        case IG_TYPE_Q4_K:
            ((ig_block_q4_K *)row)[b].d = hd, ((ig_block_q4_K *)row)[b].dmin = hm;
            break;
        case IG_TYPE_Q5_K:
            ((ig_block_q5_K *)row)[b].d = hd, ((ig_block_q5_K *)row)[b].dmin = hm;
            break;
        case IG_TYPE_Q6_K:
            ((ig_block_q6_K *)row)[b].d = hd;
            break;
        case IG_TYPE_Q8_K: {
            ig_block_q8_K *k = &((ig_block_q8_K *)row)[b];
            k->d = d;
            for (int i = 0; i < IG_QK_K; i++)
                if (k->qs[i] == -128) k->qs[i] = -127; /* a real q8_K never holds -128 */
            break;
        }
        default:
            cr_assert_fail("no scales for %s", ig_type_name(t));
        }
    }
}

/*
 * For q4_1 / q5_1 weights, the part of vec_dot_q that is not a dot with the
 * decoded activations: sum over blocks of m * (s - d * sum(q)), s being the
 * f16 sum stored by the quantizer. Zero for every other type.
 */
static double q8_1_s_term(uint32_t t, const void *row, const void *xq, int64_t n) {
    if (t != IG_TYPE_Q4_1 && t != IG_TYPE_Q5_1) return 0;
    const ig_block_q8_1 *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK; b++) {
        const uint16_t m = t == IG_TYPE_Q4_1 ? ((const ig_block_q4_1 *)row)[b].m
                                             : ((const ig_block_q5_1 *)row)[b].m;
        int qsum = 0;
        for (int i = 0; i < IG_QK; i++) qsum += x[b].qs[i];
        sum += (double)ig_fp16_to_fp32(m) *
               ((double)ig_fp16_to_fp32(x[b].s) - (double)ig_fp16_to_fp32(x[b].d) * qsum);
    }
    return sum;
}

/* ------------------------------------------------------------ traits and dispatch */

Test(vec_dot_q, traits_pair_every_weight_type_with_llama_cpp_activation_type) {
    for (size_t k = 0; k < N_PAIRS; k++) {
        const ig_type_traits *tr = ig_type_get(PAIRS[k].type);
        cr_assert(tr && tr->vec_dot && tr->vec_dot_q, "%s", ig_type_name(PAIRS[k].type));
        cr_expect_eq(tr->vec_dot_type, (uint32_t)PAIRS[k].act,
                     "%s takes %s activations, expected %s", tr->name,
                     ig_type_name(tr->vec_dot_type), ig_type_name(PAIRS[k].act));
        const ig_type_traits *act = ig_type_get(tr->vec_dot_type);
        cr_assert(act && act->quantize_act && act->to_float, "%s: activation type %s lacks kernels",
                  tr->name, act ? act->name : "?");
        cr_expect_eq(tr->blck_size % act->blck_size, 0,
                     "%s: activation blocks must divide weight blocks", tr->name);
    }
    /* the converse: nothing else claims a dot product */
    int n = 0;
    for (uint32_t t = 0; t < IG_TYPE_COUNT; t++) {
        const ig_type_traits *tr = ig_type_get(t);
        if (tr && (tr->vec_dot_q || tr->vec_dot)) {
            n++;
            cr_expect(tr->vec_dot_q && tr->vec_dot, "%s: vec_dot and vec_dot_q come together",
                      tr->name);
        }
    }
    cr_expect_eq(n, (int)N_PAIRS);
}

Test(vec_dot_q, dispatch_gives_kernels_at_every_level) {
    for (int l = IG_CPU_SCALAR; l <= IG_CPU_AVX512; l++)
        for (size_t k = 0; k < N_PAIRS; k++) {
            const ig_dot_kernel *kk = ig_dot_kernel_get(PAIRS[k].type, (ig_cpu_level)l);
            cr_assert(kk && kk->quantize_act && kk->vec_dot_q, "%s at level %d",
                      ig_type_name(PAIRS[k].type), l);
            cr_expect_eq(kk->act_type, (uint32_t)PAIRS[k].act);
        }
    cr_expect_null(ig_dot_kernel_get(IG_TYPE_Q8_1, IG_CPU_SCALAR),
                   "q8_1 is an activation format only");
    cr_expect_null(ig_dot_kernel_get(IG_TYPE_IQ2_XXS, IG_CPU_SCALAR));
    cr_expect_null(ig_dot_kernel_get(IG_TYPE_COUNT + 5, IG_CPU_SCALAR));
}

/* ------------------------------------------------------------ activation quantizers */

Test(vec_dot_q, q8_0_scale_is_amax_over_127_and_ties_round_to_even) {
    /* amax 127 makes the multiplier exactly 1, so q = x rounded: halves go to even */
    float x[32] = {127.0f, 2.5f, -2.5f,  3.5f,    -3.5f, 0.5f,
                   -0.5f,  1.5f, 126.5f, -126.5f, 0.49f, -1.51f};
    ig_block_q8_0 b;
    ig_quantize_act_q8_0(x, &b, 32);
    cr_expect_eq(ig_fp16_to_fp32(b.d), 1.0f);
    const int want[12] = {127, 2, -2, 4, -4, 0, 0, 2, 126, -126, 0, -2};
    for (int i = 0; i < 12; i++)
        cr_expect_eq(b.qs[i], want[i], "x = %g: q %d, want %d", x[i], b.qs[i], want[i]);
    for (int i = 12; i < 32; i++) cr_expect_eq(b.qs[i], 0);

    /* the multiplier is 127/amax in float, and d is f16(amax/127) */
    float y[32];
    for (int i = 0; i < 32; i++) y[i] = (float)(i - 16) * 0.37f;
    y[5] = -9.0f; /* amax */
    ig_quantize_act_q8_0(y, &b, 32);
    cr_expect_eq(b.d, ig_fp32_to_fp16(9.0f / 127.0f));
    const float id = 127.0f / 9.0f;
    for (int i = 0; i < 32; i++) cr_expect_eq(b.qs[i], (int)nearbyintf(y[i] * id), "i = %d", i);
    cr_expect_eq(b.qs[5], -127);

    /* a zero block: d = 0, q = 0 */
    memset(y, 0, sizeof y);
    ig_quantize_act_q8_0(y, &b, 32);
    cr_expect_eq(b.d, 0);
    for (int i = 0; i < 32; i++) cr_expect_eq(b.qs[i], 0);
}

Test(vec_dot_q, q8_1_stores_d_times_sum_of_codes) {
    float x[64];
    uint64_t s = 11;
    for (int i = 0; i < 64; i++) x[i] = (float)ig_test_rng_gauss(&s);
    ig_block_q8_1 b[2];
    ig_block_q8_0 c[2];
    ig_quantize_act_q8_1(x, b, 64);
    ig_quantize_act_q8_0(x, c, 64);
    for (int k = 0; k < 2; k++) {
        float amax = 0;
        int sum = 0;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[32 * k + i]));
        cr_expect_eq(b[k].d, c[k].d, "q8_1 and q8_0 share d");
        cr_expect(memcmp(b[k].qs, c[k].qs, 32) == 0, "q8_1 and q8_0 share the codes");
        for (int i = 0; i < 32; i++) sum += b[k].qs[i];
        /* s uses the float d, not the f16-rounded one */
        cr_expect_eq(b[k].s, ig_fp32_to_fp16(amax / 127.0f * (float)sum), "block %d: s", k);
    }
    /* hand case: 127 and three 2s -> d = 1, s = 133 */
    float h[32] = {127.0f, 2.0f, 2.0f, 2.0f};
    ig_quantize_act_q8_1(h, b, 32);
    cr_expect_eq(ig_fp16_to_fp32(b[0].d), 1.0f);
    cr_expect_eq(ig_fp16_to_fp32(b[0].s), 133.0f);
}

Test(vec_dot_q, q8_K_uses_the_signed_max_and_fills_bsums) {
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = (float)((i * 37) % 101 - 50) * 0.5f; /* in [-25, 25] */
    x[70] = 63.5f; /* largest magnitude, positive: iscale = -127/63.5 = -2 */
    ig_block_q8_K b;
    ig_quantize_act_q8_K(x, &b, 256);
    cr_expect_eq(b.d, -0.5f, "d = 1/iscale keeps the sign of -max, got %g", b.d);
    cr_expect_eq(b.qs[70], -127);
    for (int i = 0; i < 256; i++)
        cr_expect_eq(b.qs[i], (int)(-2.0f * x[i]), "i = %d", i); /* exact: x*2 is an integer */
    for (int g = 0; g < 16; g++) {
        int sum = 0;
        for (int i = 0; i < 16; i++) sum += b.qs[16 * g + i];
        cr_expect_eq(b.bsums[g], sum, "bsums[%d]", g);
    }
    /* negative max: d > 0; halves of x*iscale round to even */
    for (int i = 0; i < 256; i++) x[i] = 0;
    x[3] = -127.0f;
    x[4] = 2.5f;
    x[5] = 3.5f;
    x[6] = -0.5f;
    x[200] = 127.0f; /* same magnitude later: the first one wins */
    ig_quantize_act_q8_K(x, &b, 256);
    cr_expect_eq(b.d, 1.0f);
    cr_expect_eq(b.qs[3], -127);
    cr_expect_eq(b.qs[4], 2);
    cr_expect_eq(b.qs[5], 4);
    cr_expect_eq(b.qs[6], 0);
    cr_expect_eq(b.qs[200], 127);
    cr_expect_eq(b.bsums[0], -127 + 2 + 4);
    cr_expect_eq(b.bsums[12], 127);
    /* zero block */
    memset(x, 0, sizeof x);
    memset(&b, 0x55, sizeof b);
    ig_quantize_act_q8_K(x, &b, 256);
    cr_expect_eq(b.d, 0.0f);
    for (int i = 0; i < 256; i++) cr_expect_eq(b.qs[i], 0);
    for (int g = 0; g < 16; g++) cr_expect_eq(b.bsums[g], 0);
}

Test(vec_dot_q, activation_quantizers_keep_non_finite_input_in_range) {
    float x[256];
    for (int i = 0; i < 256; i++) x[i] = (float)i - 100.0f;
    x[7] = NAN;
    x[9] = INFINITY;
    ig_block_q8_K k;
    ig_block_q8_0 c[8];
    ig_block_q8_1 o[8];
    ig_quantize_act_q8_K(x, &k, 256);
    ig_quantize_act_q8_0(x, c, 256);
    ig_quantize_act_q8_1(x, o, 256);
    for (int i = 0; i < 256; i++) {
        cr_expect(k.qs[i] >= -127 && k.qs[i] <= 127);
        cr_expect(c[i / 32].qs[i % 32] >= -127 && c[i / 32].qs[i % 32] <= 127);
        cr_expect(o[i / 32].qs[i % 32] >= -127 && o[i / 32].qs[i % 32] <= 127);
    }
}

/* ------------------------------------------------------------ dot products */

/*
 * Exact cases: weights with power-of-two scales (and an f16 min), integer
 * activations whose block maximum is 127 (so the activation scale is exactly
 * 1, or -1 for q8_K, and the codes are the integers themselves; q8_1 sums
 * stay under 2048 so s is exact). Every product and partial sum is then
 * exact, so both functions compute the same real number and round it once.
 */
Test(vec_dot_q, integer_cases_equal_the_exact_dot_bit_for_bit) {
    uint64_t s = 7;
    const int64_t n = 768; /* 3 K super-blocks, 24 legacy blocks */
    float *x = malloc(n * sizeof *x), *xd = malloc(n * sizeof *xd);
    for (size_t k = 0; k < N_PAIRS; k++) {
        const uint32_t t = PAIRS[k].type;
        const ig_type_traits *tr = ig_type_get(t);
        for (int rep = 0; rep < 20; rep++) {
            for (int64_t i = 0; i < n; i++) x[i] = (float)((int)(ig_test_rng_next(&s) % 121) - 60);
            const int64_t ablk = ig_type_get(PAIRS[k].act)->blck_size;
            if (ablk > 1)
                for (int64_t i = 0; i < n; i += ablk)
                    x[i + (int64_t)(ig_test_rng_next(&s) % (uint64_t)ablk)] = 127.0f;
            void *row = row_alloc(t, n);
            random_row(t, row, n, 0.0625f, rep % 2 ? -1.25f : 0.375f, &s);
            void *xq = quantize_act(t, x, n);
            decode_act(PAIRS[k].act, xq, xd, n);
            if (PAIRS[k].act != IG_TYPE_BF16 && PAIRS[k].act != IG_TYPE_F16 &&
                PAIRS[k].act != IG_TYPE_F32)
                for (int64_t i = 0; i < n; i++)
                    cr_assert_eq(xd[i], x[i], "%s: activation %lld not exact", tr->name,
                                 (long long)i);
            const float got = tr->vec_dot_q(row, xq, n);
            const float want = tr->vec_dot(row, x, n);
            cr_expect_eq(got, want, "%s rep %d: vec_dot_q %.9g, exact %.9g", tr->name, rep, got,
                         want);
            free(row);
            free(xq);
        }
    }
    free(x);
    free(xd);
}

/*
 * Random rows and activations. Two checks:
 *  (1) against the decoded activations: vec_dot_q = vec_dot(row, decoded)
 *      + the q8_1 s term, up to float rounding (1e-6 of sum |w x|);
 *  (2) against the float activations: the difference is bounded by
 *      sum |w_i| e_i, e_i the largest error the activation format can make
 *      on x_i: for q8_0/q8_1, half a step of amax/127 plus the f16
 *      rounding of d (2^-11 relative, times |q| <= 127); for q8_K half a
 *      step; for f16 / bf16 half an ulp (2^-11 / 2^-8 relative); plus the
 *      q8_1 s term and float rounding.
 */
static double act_error_bound(uint32_t act, const float *x, int64_t i, int64_t n) {
    const float ax = fabsf(x[i]);
    switch (act) {
    case IG_TYPE_F32:
        return 0;
    case IG_TYPE_F16:
        return ax * ldexp(1, -11);
    case IG_TYPE_BF16:
        return ax * ldexp(1, -8);
    default:
        break;
    }
    const int64_t blk = act == IG_TYPE_Q8_K ? IG_QK_K : IG_QK, b0 = i / blk * blk;
    (void)n;
    float amax = 0;
    for (int64_t j = b0; j < b0 + blk; j++) amax = fmaxf(amax, fabsf(x[j]));
    double e = amax * (0.5 / 127.0) * (1 + 1e-4); /* 1e-4: the float rounding of x * 127/amax */
    if (act != IG_TYPE_Q8_K) e += amax * ldexp(1, -11) * (1 + 1e-4);
    return e;
}

Test(vec_dot_q, random_rows_are_within_the_activation_quantization_bound) {
    uint64_t s = 99;
    const int64_t sizes[] = {256, 512, 1280};
    for (size_t k = 0; k < N_PAIRS; k++) {
        const uint32_t t = PAIRS[k].type, act = PAIRS[k].act;
        const ig_type_traits *tr = ig_type_get(t);
        double worst_ratio = 0;
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            const int64_t n = sizes[si];
            float *x = malloc(n * sizeof *x), *xd = malloc(n * sizeof *xd),
                  *w = malloc(n * sizeof *w);
            for (int rep = 0; rep < 8; rep++) {
                for (int64_t i = 0; i < n; i++)
                    x[i] = (float)(ig_test_rng_gauss(&s) *
                                   (rep % 4 == 3 && ig_test_rng_unit(&s) < 0.02 ? 20 : 1));
                void *row = row_alloc(t, n);
                random_row(t, row, n, 0.004f + 0.001f * rep, -0.03f, &s);
                tr->to_float(row, w, n);
                void *xq = quantize_act(t, x, n);
                decode_act(act, xq, xd, n);
                const double got = tr->vec_dot_q(row, xq, n);
                double mag = 0, magd = 0, bound = 0;
                for (int64_t i = 0; i < n; i++) {
                    mag += fabs((double)w[i] * x[i]);
                    magd += fabs((double)w[i] * xd[i]);
                    bound += fabs(w[i]) * act_error_bound(act, x, i, n);
                }
                const double sterm = q8_1_s_term(t, row, xq, n);
                /* (1) the integer arithmetic is the exact dot of what was quantized */
                const double tight = tr->vec_dot(row, xd, n) + sterm;
                cr_expect(fabs(got - tight) <= 1e-6 * magd + 1e-30,
                          "%s n=%lld: vec_dot_q %.9g vs decoded %.9g", tr->name, (long long)n, got,
                          tight);
                /* (2) the activation quantization error is within its bound */
                const double exact = tr->vec_dot(row, x, n);
                const double lim = bound + fabs(sterm) + 2e-6 * mag + 1e-30;
                cr_expect(fabs(got - exact) <= lim, "%s n=%lld: |%.9g - %.9g| > bound %.3g",
                          tr->name, (long long)n, got, exact, lim);
                if (lim > 0 && fabs(got - exact) / lim > worst_ratio)
                    worst_ratio = fabs(got - exact) / lim;
                /* and the bound is not vacuous: without outliers it is a small fraction of the dot
                 */
                if (rep % 4 != 3)
                    cr_expect(lim <= 0.05 * mag, "%s: bound %.3g is loose against |w||x| %.3g",
                              tr->name, lim, mag);
                free(row);
                free(xq);
            }
            free(x);
            free(xd);
            free(w);
        }
        cr_log_info("%-5s: worst |vec_dot_q - exact| / bound = %.2f", tr->name, worst_ratio);
    }
}

Test(vec_dot_q, every_cpu_level_agrees_with_scalar) {
    const ig_cpu_level hw = ig_cpu_level_get();
    uint64_t s = 5;
    const int64_t n = 768;
    float *x = malloc(n * sizeof *x), *w = malloc(n * sizeof *w);
    for (int l = IG_CPU_SCALAR + 1; l <= (int)hw; l++) {
        for (size_t k = 0; k < N_PAIRS; k++) {
            const uint32_t t = PAIRS[k].type;
            const ig_dot_kernel *ref = ig_dot_kernel_get(t, IG_CPU_SCALAR),
                                *fast = ig_dot_kernel_get(t, (ig_cpu_level)l);
            for (int rep = 0; rep < 4; rep++) {
                for (int64_t i = 0; i < n; i++) x[i] = (float)ig_test_rng_gauss(&s);
                void *row = row_alloc(t, n);
                random_row(t, row, n, 0.01f, -0.02f, &s);
                ig_type_get(t)->to_float(row, w, n);
                void *xa = row_alloc(ref->act_type, n), *xb = row_alloc(ref->act_type, n);
                size_t sz = 0;
                ig_type_row_size(ref->act_type, n, &sz);
                ref->quantize_act(x, xa, n);
                fast->quantize_act(x, xb, n);
                cr_expect(memcmp(xa, xb, sz) == 0, "%s level %d: activations differ from scalar",
                          ig_type_name(t), l);
                double mag = 0;
                for (int64_t i = 0; i < n; i++) mag += fabs((double)w[i] * x[i]);
                const double a = ref->vec_dot_q(row, xa, n), b = fast->vec_dot_q(row, xa, n);
                cr_expect(fabs(a - b) <= 1e-5 * mag, "%s level %d: %.9g vs scalar %.9g",
                          ig_type_name(t), l, b, a);
                free(row);
                free(xa);
                free(xb);
            }
        }
    }
    free(x);
    free(w);
}

/* ------------------------------------------------------------ matmul */

Test(vec_dot_q, matmul_equals_row_by_row_dots_with_threads_and_alone) {
    ig_pool *pool = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_pool_new(3, &pool, &err), IG_OK);
    uint64_t s = 3;
    const int n_tok = 5;
    const int64_t n_cols = 512, n_rows = 37;
    float *x = malloc(n_tok * n_cols * sizeof *x), *y = malloc(n_tok * n_rows * sizeof *y),
          *y1 = malloc(n_rows * sizeof *y1);
    for (int64_t i = 0; i < n_tok * n_cols; i++) x[i] = (float)ig_test_rng_gauss(&s);
    for (size_t k = 0; k < N_PAIRS; k++) {
        const uint32_t t = PAIRS[k].type;
        const ig_type_traits *tr = ig_type_get(t);
        ig_matrix w = {t, n_cols, n_rows, 0, NULL, false};
        cr_assert(ig_type_row_size(t, n_cols, &w.row_bytes));
        uint8_t *data = malloc(w.row_bytes * n_rows);
        for (int64_t r = 0; r < n_rows; r++)
            random_row(t, data + r * w.row_bytes, n_cols, 0.01f, -0.02f, &s);
        w.data = data;
        const size_t need = ig_matmul_scratch_bytes(&w, n_tok);
        cr_expect_eq(need == 0, t == IG_TYPE_F32, "%s: scratch %zu", tr->name, need);
        cr_expect_leq(ig_matmul_scratch_bytes(&w, 1), need);
        void *scratch = need ? malloc(need) : NULL;
        ig_matmul(pool, &w, x, n_tok, y, scratch);
        for (int tk = 0; tk < n_tok; tk++) {
            void *xq = quantize_act(t, x + tk * n_cols, n_cols);
            for (int64_t r = 0; r < n_rows; r++) {
                /* the level's own dot: fast kernels round differently from the scalar one */
                const float want = ig_dot_kernel_get(t, ig_cpu_level_get())
                                       ->vec_dot_q(data + r * w.row_bytes, xq, n_cols);
                cr_expect_eq(y[tk * n_rows + r], want, "%s token %d row %lld", tr->name, tk,
                             (long long)r);
            }
            free(xq);
            /* the same token alone, without the pool, gives the same bits */
            ig_matmul(NULL, &w, x + tk * n_cols, 1, y1, scratch);
            cr_expect(memcmp(y1, y + tk * n_rows, n_rows * sizeof *y1) == 0,
                      "%s token %d: batch changed it", tr->name, tk);
        }
        free(scratch);
        free(data);
    }
    free(x);
    free(y);
    free(y1);
    ig_pool_free(pool);
}
