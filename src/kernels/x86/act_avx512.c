/*
 * act_avx512.c: AVX-512 SwiGLU (a = silu(a) * b), bit-identical to
 * ig_silu_mul's scalar code (kernels/ops.c): the same exp polynomial with
 * the same fused multiply-adds in the same order, 16 lanes at a time. fmaf
 * and vfmadd both round once, correctly; ldexpf and vscalefps both scale by
 * an exact power of two with one correct rounding (also for results that
 * overflow or fall into the subnormals); the division and the product are
 * IEEE operations. So every lane equals the scalar result. The tail (n % 16
 * values) is left to the scalar code, which uses expf there as ggml does.
 * Compiled with the AVX-512 flags; called from ops.c at the AVX-512 level.
 */
#include <immintrin.h>

void ig__silu_mul_avx512(float *a, const float *b, int n);

void ig__silu_mul_avx512(float *a, const float *b, int n) {
    const __m512 shift = _mm512_set1_ps(0x1.8p23f), inv_ln2 = _mm512_set1_ps(0x1.715476p+0f);
    const __m512 ln2_hi = _mm512_set1_ps(0x1.62e4p-1f), ln2_lo = _mm512_set1_ps(0x1.7f7d1cp-20f);
    const __m512 c0 = _mm512_set1_ps(0x1.0e4020p-7f), c1 = _mm512_set1_ps(0x1.573e2ep-5f);
    const __m512 c2 = _mm512_set1_ps(0x1.555e66p-3f), c3 = _mm512_set1_ps(0x1.fffdb6p-2f);
    const __m512 c4 = _mm512_set1_ps(0x1.ffffecp-1f), one = _mm512_set1_ps(1.0f);
    const __m512 big = _mm512_set1_ps(192.0f), zero = _mm512_setzero_ps();
    const __m512 inf = _mm512_set1_ps(__builtin_inff());
    const __m512i sign = _mm512_set1_epi32((int)0x80000000u);
    for (int i = 0; i + 16 <= n; i += 16) {
        const __m512 av = _mm512_loadu_ps(a + i);
        const __m512 x = _mm512_sub_ps(zero, av); /* 0.0f - a, as the scalar code */
        const __m512 z = _mm512_fmadd_ps(x, inv_ln2, shift);
        const __m512 nn = _mm512_sub_ps(z, shift);
        const __m512 neg_n = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(nn), sign));
        const __m512 r = _mm512_fmadd_ps(neg_n, ln2_lo, _mm512_fmadd_ps(neg_n, ln2_hi, x));
        const __m512 u = _mm512_mul_ps(r, r);
        const __m512 j = _mm512_fmadd_ps(
            _mm512_fmadd_ps(_mm512_fmadd_ps(c0, r, c1), u, _mm512_fmadd_ps(c2, r, c3)), u,
            _mm512_fmadd_ps(c4, r, one));
        __m512 e = _mm512_scalef_ps(j, nn);
        /* |n| > 192: 0 or infinity, as the scalar code */
        const __m512 abs_n = _mm512_abs_ps(nn);
        const __mmask16 out = _mm512_cmp_ps_mask(abs_n, big, _CMP_GT_OQ);
        const __mmask16 nonpos = _mm512_cmp_ps_mask(nn, zero, _CMP_LE_OQ);
        e = _mm512_mask_blend_ps(out, e, _mm512_mask_blend_ps(nonpos, inf, zero));
        const __m512 s = _mm512_div_ps(av, _mm512_add_ps(one, e));
        _mm512_storeu_ps(a + i, _mm512_mul_ps(s, _mm512_loadu_ps(b + i)));
    }
}

/*
 * RoPE on adjacent pairs (x[2i], x[2i+1]) of one head, 8 pairs per vector,
 * bit-identical to ig_rope_apply's scalar loop: lane 2i computes
 * fma(x0, c, -(x1 * s)) and lane 2i+1 fma(x0, s, x1 * c), with x0, x1 the
 * pair (swapped within the pair for the odd lanes) and c, s from the table
 * (kernels/ops.h: each value stored for both lanes). Returns the pairs done.
 */
int ig__rope_pairs_avx512(float *x, int n_rot, const float *cs);

int ig__rope_pairs_avx512(float *x, int n_rot, const float *cs) {
    int e = 0;
    for (; e + 16 <= n_rot; e += 16) {
        const __m512 v = _mm512_loadu_ps(x + e);
        const __m512 sw = _mm512_permute_ps(v, 0xb1); /* (x1, x0) in each pair */
        const __m512 c = _mm512_loadu_ps(cs + e), s = _mm512_loadu_ps(cs + n_rot + e);
        const __m512 neg = _mm512_castsi512_ps(_mm512_xor_si512(
            _mm512_castps_si512(_mm512_mul_ps(sw, s)), _mm512_set1_epi32((int)0x80000000u)));
        const __m512 even = _mm512_fmadd_ps(v, c, neg); /* -(x1 * s): a sign flip, as in C */
        const __m512 odd = _mm512_fmadd_ps(sw, s, _mm512_mul_ps(v, c));
        _mm512_storeu_ps(x + e, _mm512_mask_blend_ps((__mmask16)0xaaaa, even, odd));
    }
    return e / 2;
}
