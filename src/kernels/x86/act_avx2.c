/*
 * act_avx2.c: AVX2 + FMA SwiGLU (a = silu(a) * b), bit-identical to
 * ig_silu_mul's scalar code (kernels/ops.c), 8 lanes at a time: the same exp
 * polynomial with the same fused multiply-adds in the same order (fmaf and
 * vfmadd both round once, correctly). The scalar code scales by 2^n with
 * ldexpf; here a multiply by the float 2^n does it, which is the same
 * exact scaling while 2^n and the result are normal floats: n in
 * [-125, 127] (the polynomial's value is in [0.7, 1.5]). A block of 8 with
 * any lane outside that range (|a| > ~86, infinities, NaN) goes to the
 * scalar code whole. The tail (n % 8 values) is left to the caller.
 * Compiled with the AVX2 flags; called from ops.c at the AVX2 level.
 */
#include <immintrin.h>

#include "kernels/ops.h"

void ig__silu_mul_avx2(float *a, const float *b, int n) {
    const __m256 shift = _mm256_set1_ps(0x1.8p23f), inv_ln2 = _mm256_set1_ps(0x1.715476p+0f);
    const __m256 ln2_hi = _mm256_set1_ps(0x1.62e4p-1f), ln2_lo = _mm256_set1_ps(0x1.7f7d1cp-20f);
    const __m256 c0 = _mm256_set1_ps(0x1.0e4020p-7f), c1 = _mm256_set1_ps(0x1.573e2ep-5f);
    const __m256 c2 = _mm256_set1_ps(0x1.555e66p-3f), c3 = _mm256_set1_ps(0x1.fffdb6p-2f);
    const __m256 c4 = _mm256_set1_ps(0x1.ffffecp-1f), one = _mm256_set1_ps(1.0f);
    const __m256 lo = _mm256_set1_ps(-125.0f), hi = _mm256_set1_ps(127.0f);
    const __m256 zero = _mm256_setzero_ps(), sign = _mm256_set1_ps(-0.0f);
    for (int i = 0; i + 8 <= n; i += 8) {
        const __m256 av = _mm256_loadu_ps(a + i);
        const __m256 x = _mm256_sub_ps(zero, av); /* 0.0f - a, as the scalar code */
        const __m256 z = _mm256_fmadd_ps(x, inv_ln2, shift);
        const __m256 nn = _mm256_sub_ps(z, shift);
        const __m256 inside =
            _mm256_and_ps(_mm256_cmp_ps(nn, lo, _CMP_GE_OQ), _mm256_cmp_ps(nn, hi, _CMP_LE_OQ));
        if (_mm256_movemask_ps(inside) != 0xff) {
            for (int k = i; k < i + 8; k++) a[k] = ig__silu_mul_one(a[k], b[k]);
            continue;
        }
        const __m256 neg_n = _mm256_xor_ps(nn, sign);
        const __m256 r = _mm256_fmadd_ps(neg_n, ln2_lo, _mm256_fmadd_ps(neg_n, ln2_hi, x));
        const __m256 u = _mm256_mul_ps(r, r);
        const __m256 j = _mm256_fmadd_ps(
            _mm256_fmadd_ps(_mm256_fmadd_ps(c0, r, c1), u, _mm256_fmadd_ps(c2, r, c3)), u,
            _mm256_fmadd_ps(c4, r, one));
        const __m256i e2 =
            _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(nn), _mm256_set1_epi32(127)), 23);
        const __m256 e = _mm256_mul_ps(j, _mm256_castsi256_ps(e2));
        const __m256 s = _mm256_div_ps(av, _mm256_add_ps(one, e));
        _mm256_storeu_ps(a + i, _mm256_mul_ps(s, _mm256_loadu_ps(b + i)));
    }
}

/* RoPE on adjacent pairs, 4 pairs per vector: as ig__rope_pairs_avx512 (act_avx512.c). */
int ig__rope_pairs_avx2(float *x, int n_rot, const float *cs);

int ig__rope_pairs_avx2(float *x, int n_rot, const float *cs) {
    int e = 0;
    for (; e + 8 <= n_rot; e += 8) {
        const __m256 v = _mm256_loadu_ps(x + e);
        const __m256 sw = _mm256_permute_ps(v, 0xb1); /* (x1, x0) in each pair */
        const __m256 c = _mm256_loadu_ps(cs + e), s = _mm256_loadu_ps(cs + n_rot + e);
        const __m256 even = /* -(x1 * s): a sign flip, as in C */
            _mm256_fmadd_ps(v, c, _mm256_xor_ps(_mm256_mul_ps(sw, s), _mm256_set1_ps(-0.0f)));
        const __m256 odd = _mm256_fmadd_ps(sw, s, _mm256_mul_ps(v, c));
        _mm256_storeu_ps(x + e, _mm256_blend_ps(even, odd, 0xaa));
    }
    return e / 2;
}
