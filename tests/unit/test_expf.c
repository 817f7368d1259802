/*
 * test_expf.c: ig_expf (src/kernels/expf.h), the softmax exponential of the
 * attention kernels, and its vector forms.
 *
 * - it is within one ulp of e^x rounded from double (libm's exp), for
 *   random arguments over the whole range where the result is neither 0
 *   nor infinity, subnormal results included, and it is that rounding for
 *   all but a few in ten thousand of them;
 * - the edges: NaN stays NaN, -inf and large negative arguments give 0,
 *   +inf and large positive ones infinity, e^0 = 1;
 * - every CPU level's vector code gives ig_expf's bits, on random arguments
 *   and on the edges above.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/cpu.h"
#include "kernels/attention.h"
#include "kernels/expf.h"
#include "testutil.h"

/* The highest level to test: the machine's, or IGNIS_CPU's cap (each test runs in its own process).
 */
static int max_level(void) {
    return (int)ig_cpu_level_get();
}

/* Distance in floats between two non-negative, non-NaN floats. */
static int64_t ulps(float a, float b) {
    uint32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    return ia > ib ? (int64_t)ia - ib : (int64_t)ib - ia;
}

Test(expf, within_one_ulp_of_the_double_exponential) {
    uint64_t s = 77;
    long n = 0, off = 0;
    for (int i = 0; i < 2000000; i++) {
        const float x = (float)(-104.0 + 193.0 * ig_test_rng_unit(&s)); /* -104 .. 89 */
        const float got = ig_expf(x), want = (float)exp((double)x);
        const int64_t d = ulps(got, want);
        cr_assert_leq(d, 1, "ig_expf(%a) = %a, e^x rounds to %a", (double)x, (double)got,
                      (double)want);
        n++;
        off += d != 0;
    }
    cr_log_info("%ld of %ld one ulp off", off, n);
    cr_expect_lt(off * 1000, n, "%ld of %ld arguments not correctly rounded", off, n);
}

static const float edges[] = {0.0f,          -0.0f,    1.0f,       -1.0f,   0x1.62e42ep6f,
                              0x1.62e430p6f, 89.0f,    100.0f,     1e30f,   -87.3f,
                              -100.0f,       -103.9f,  -104.0f,    -149.0f, -151.0f,
                              -1e30f,        0x1p-30f, -0x1p-149f, 0.5f,    -0.5f};

Test(expf, edges) {
    cr_expect(isnan(ig_expf(NAN)));
    cr_expect_eq(ig_expf(-INFINITY), 0.0f);
    cr_expect(isinf(ig_expf(INFINITY)) && ig_expf(INFINITY) > 0);
    cr_expect_eq(ig_expf(0.0f), 1.0f);
    cr_expect_eq(ig_expf(-0.0f), 1.0f);
    cr_expect(isinf(ig_expf(89.0f)));
    cr_expect_eq(ig_expf(-1e30f), 0.0f);
    cr_expect_eq(ig_expf(-104.0f), 0.0f);
    const float sub = ig_expf(-100.0f);
    cr_expect(sub > 0.0f && sub < 0x1p-126f, "e^-100 = %a is a positive subnormal", (double)sub);
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        const float x = edges[i];
        if (fabsf(x) < 104.0f && !isinf((float)exp((double)x)))
            cr_expect_leq(ulps(ig_expf(x), (float)exp((double)x)), 1, "x = %a", (double)x);
    }
}

Test(expf, every_level_gives_the_scalar_bits) {
    enum { N = 4099 };
    static float x[N], want[N], got[N];
    uint64_t s = 5;
    size_t n = 0;
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) x[n++] = edges[i];
    x[n++] = NAN;
    x[n++] = -NAN;
    x[n++] = INFINITY;
    x[n++] = -INFINITY;
    while (n < N) {
        const double u = ig_test_rng_unit(&s);
        /* mostly the softmax's range, some far outside it */
        x[n] = (float)(n % 7 == 0 ? ig_test_rng_gauss(&s) * 200.0 : -110.0 * u + 10.0 * (u > 0.9));
        n++;
    }
    for (size_t i = 0; i < N; i++) want[i] = ig_expf(x[i]);
    for (int l = IG_CPU_SCALAR; l <= max_level(); l++) {
        memset(got, 0, sizeof got);
        ig_attn_expf_level((ig_cpu_level)l, x, N, got);
        for (size_t i = 0; i < N; i++)
            if (memcmp(&got[i], &want[i], 4) != 0) {
                cr_expect(0, "level %d: x = %a gives %a, ig_expf %a", l, (double)x[i],
                          (double)got[i], (double)want[i]);
                break;
            }
    }
}
