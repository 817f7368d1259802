/*
 * kquant_avx2.c: AVX2 kernels for K-quant weights (q2_K .. q6_K) with q8_K
 * activations, and the q8_K activation quantizer.
 *
 * Compiled with -mavx2 -mfma -mf16c; called only when the CPU level is
 * IG_CPU_AVX2 or above (the quantizer is inherited by the AVX-512 level).
 *
 * Dot products: bit-identical to the scalar reference (tensor/vec_dot_q.c)
 * for the reason given in kquant_avx512.c: the integer sums of a
 * super-block are exact whatever their order, and the float/double steps
 * per super-block are the reference's, in its order (ISO C mode: no FMA
 * contraction). Per 32 values j: vpmaddubsw of the unsigned codes u with
 * the activations (pairs, at most 2 * 63 * 127), vpmaddwd with the
 * sub-block scales, added in int32. Offsets (q3: -4, q6: -32) and mins
 * (q2/q4/q5) go through the activations' bsums.
 *
 * Quantizer: the bytes of ig_quantize_act_q8_K (tensor/act_quant.c) for
 * every input, NaN and infinities included: same maximum (NaN never wins,
 * first element of largest magnitude), same iscale and products, and the
 * same rounding (nearest, ties to even, after NaN -> 0 and clamping to
 * [-127, 127]).
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/dot.h"
#include "kernels/x86/kquant_x86.h"
#include "tensor/blocks.h"

enum { KQ2, KQ3, KQ4, KQ5, KQ6 };

static inline float h2f(uint16_t h) {
    return _cvtsh_ss(h);
}

static inline int hsum8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* int16 [s[2j] x 8, s[2j + 1] x 8] from 16 int8 scales (signed when is_signed). */
static inline __m256i scales16(__m128i s8, int j, int is_signed) {
    const __m128i idx = _mm_set_epi64x((long long)(0x0101010101010101ull * (uint64_t)(2 * j + 1)),
                                       (long long)(0x0101010101010101ull * (uint64_t)(2 * j)));
    const __m128i v = _mm_shuffle_epi8(s8, idx);
    return is_signed ? _mm256_cvtepi8_epi16(v) : _mm256_cvtepu8_epi16(v);
}

/* q4_K/q5_K: 8 scales then 8 mins, 6 bits each, as bytes (layout in tensor/quant_ref.c). */
static inline __m128i k4_scales_mins(const uint8_t *s12) {
    uint32_t a, b, c;
    memcpy(&a, s12, 4);
    memcpy(&b, s12 + 4, 4);
    memcpy(&c, s12 + 8, 4);
    const uint32_t sc_lo = a & 0x3f3f3f3f, mn_lo = b & 0x3f3f3f3f;
    const uint32_t sc_hi = (c & 0x0f0f0f0f) | ((a >> 2) & 0x30303030);
    const uint32_t mn_hi = ((c >> 4) & 0x0f0f0f0f) | ((b >> 2) & 0x30303030);
    return _mm_set_epi32((int)mn_hi, (int)mn_lo, (int)sc_hi, (int)sc_lo);
}

/* q3_K: the 16 signed 6-bit scales as bytes. */
static inline __m128i k3_scales(const uint8_t *s12) {
    uint32_t a0, a1, c;
    memcpy(&a0, s12, 4);
    memcpy(&a1, s12 + 4, 4);
    memcpy(&c, s12 + 8, 4);
    const uint32_t s0 = (a0 & 0x0f0f0f0f) | ((c << 4) & 0x30303030);
    const uint32_t s1 = (a1 & 0x0f0f0f0f) | ((c << 2) & 0x30303030);
    const uint32_t s2 = ((a0 >> 4) & 0x0f0f0f0f) | (c & 0x30303030);
    const uint32_t s3 = ((a1 >> 4) & 0x0f0f0f0f) | ((c >> 2) & 0x30303030);
    return _mm_sub_epi8(_mm_set_epi32((int)s3, (int)s2, (int)s1, (int)s0), _mm_set1_epi8(32));
}

/*
 * One super-block: *isum = sum of scale * (codes . activations) (offsets
 * folded in for q3/q6), *isum_min = sum of min * bsums (q2/q4/q5). Sets
 * *d and *dmin to the weight scales.
 */
static inline __attribute__((always_inline)) void sb_dot(int type, const void *blk,
                                                         const ig_block_q8_K *x, int *isum,
                                                         int *isum_min, float *d, float *dmin) {
    const __m256i m03 = _mm256_set1_epi8(3), m0f = _mm256_set1_epi8(0x0f);
    __m256i acc = _mm256_setzero_si256(), c;
    int osh = 0;
#define ACC(u, s)                                                                                  \
    acc = _mm256_add_epi32(                                                                        \
        acc, _mm256_madd_epi16(                                                                    \
                 _mm256_maddubs_epi16((u), _mm256_loadu_si256((const __m256i *)(x->qs + 32 * j))), \
                 (s)))
    switch (type) {
    case KQ2: {
        const ig_block_q2_K *b = blk;
        const __m128i raw = _mm_loadu_si128((const __m128i *)b->scales);
        const __m128i sc = _mm_and_si128(raw, _mm_set1_epi8(0x0f));
        c = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f)));
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            /* value 32j + l is (qs[32 * (j / 4) + l] >> 2 * (j % 4)) & 3 */
            const __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * (j / 4)));
            ACC(_mm256_and_si256(_mm256_srli_epi16(v, 2 * (j % 4)), m03), scales16(sc, j, 0));
        }
        *d = h2f(b->d);
        *dmin = h2f(b->dmin);
        break;
    }
    case KQ3: {
        const ig_block_q3_K *b = blk;
        const __m128i sc = k3_scales(b->scales);
        const __m256i hm = _mm256_loadu_si256((const __m256i *)b->hmask);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            /* value 32j + l: (qs[32 * (j / 4) + l] >> 2 * (j % 4)) & 3, + 4 if bit j of hmask[l] */
            const __m256i v = _mm256_loadu_si256((const __m256i *)(b->qs + 32 * (j / 4)));
            const __m256i bit = _mm256_set1_epi8((char)(1 << j));
            const __m256i hi = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(hm, bit), bit),
                                                _mm256_set1_epi8(4));
            ACC(_mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 2 * (j % 4)), m03), hi),
                scales16(sc, j, 1));
        }
        c = _mm256_cvtepi8_epi16(sc);
        osh = 2;
        *d = h2f(b->d);
        *dmin = 0.0f;
        break;
    }
    case KQ4:
    case KQ5: {
        const ig_block_q4_K *b4 = blk;
        const ig_block_q5_K *b5 = blk;
        const uint8_t *qs = type == KQ4 ? b4->qs : b5->qs;
        const __m128i sm = k4_scales_mins(type == KQ4 ? b4->scales : b5->scales);
        uint8_t scb[16];
        _mm_storeu_si128((__m128i *)scb, sm);
        /* bsums[g] takes the min of sub-block g / 2 (bytes 8..15) */
        c = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(
            sm, _mm_set_epi8(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8)));
        const __m256i qh =
            type == KQ5 ? _mm256_loadu_si256((const __m256i *)b5->qh) : _mm256_setzero_si256();
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            /* value 32j + l: nibble (j % 2) of qs[32 * (j / 2) + l]; q5: + 16 if bit j of qh[l] */
            const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2)));
            __m256i u = _mm256_and_si256(j % 2 ? _mm256_srli_epi16(v, 4) : v, m0f);
            if (type == KQ5) {
                const __m256i bit = _mm256_set1_epi8((char)(1 << j));
                u = _mm256_or_si256(
                    u, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit),
                                        _mm256_set1_epi8(16)));
            }
            ACC(u, _mm256_set1_epi16(scb[j]));
        }
        *d = h2f(type == KQ4 ? b4->d : b5->d);
        *dmin = h2f(type == KQ4 ? b4->dmin : b5->dmin);
        break;
    }
    default: { /* KQ6 */
        const ig_block_q6_K *b = blk;
        const __m128i sc = _mm_loadu_si128((const __m128i *)b->scales);
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            /* j = 4h + kq: low 4 bits from ql[64h + 32(kq & 1) + l] >> 4(kq >> 1),
             * high 2 bits from qh[32h + l] >> 2kq */
            const int h = j / 4, kq = j % 4;
            const __m256i ql =
                _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32 * (kq & 1)));
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
            const __m256i lo = _mm256_and_si256(kq >> 1 ? _mm256_srli_epi16(ql, 4) : ql, m0f);
            const __m256i hi =
                _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2 * kq), m03), 4);
            ACC(_mm256_or_si256(lo, hi), scales16(sc, j, 1));
        }
        c = _mm256_cvtepi8_epi16(sc);
        osh = 5;
        *d = h2f(b->d);
        *dmin = 0.0f;
        break;
    }
    }
#undef ACC
    const __m256i bt = _mm256_madd_epi16(c, _mm256_loadu_si256((const __m256i *)x->bsums));
    if (osh) {
        *isum = hsum8(_mm256_sub_epi32(acc, _mm256_slli_epi32(bt, osh)));
        *isum_min = 0;
    } else {
        *isum = hsum8(acc);
        *isum_min = hsum8(bt);
    }
}

static inline __attribute__((always_inline)) float vec_dot(int type, const void *row,
                                                           const void *xq, int64_t n) {
    const size_t bb = type == KQ2   ? sizeof(ig_block_q2_K)
                      : type == KQ3 ? sizeof(ig_block_q3_K)
                      : type == KQ4 ? sizeof(ig_block_q4_K)
                      : type == KQ5 ? sizeof(ig_block_q5_K)
                                    : sizeof(ig_block_q6_K);
    const uint8_t *w = row;
    const ig_block_q8_K *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK_K; b++, w += bb, x++) {
        int isum, isum_min;
        float d, dmin;
        sb_dot(type, w, x, &isum, &isum_min, &d, &dmin);
        /* the reference's steps, in its order */
        sum += (double)(d * x->d) * isum;
        if (type == KQ2 || type == KQ4 || type == KQ5) sum -= (double)(dmin * x->d) * isum_min;
    }
    return (float)sum;
}

/* The batch entry at this level: each pair through vec_dot (same values as one token at a time). */
#define KQ_FNS(name, type)                                                                         \
    float ig__vec_dot_##name##_avx2(const void *row, const void *xq, int64_t n) {                  \
        return vec_dot(type, row, xq, n);                                                          \
    }                                                                                              \
    void ig__gemm_##name##_avx2(int64_t n, const void *w, size_t w_row_bytes, int nr,              \
                                const void *xq, size_t xq_row_bytes, int nc, float *y,             \
                                size_t ldy) {                                                      \
        for (int r = 0; r < nr; r++)                                                               \
            for (int c = 0; c < nc; c++)                                                           \
                y[(size_t)c * ldy + (size_t)r] =                                                   \
                    vec_dot(type, (const uint8_t *)w + (size_t)r * w_row_bytes,                    \
                            (const uint8_t *)xq + (size_t)c * xq_row_bytes, n);                    \
    }
KQ_FNS(q2_K, KQ2)
KQ_FNS(q3_K, KQ3)
KQ_FNS(q4_K, KQ4)
KQ_FNS(q5_K, KQ5)
KQ_FNS(q6_K, KQ6)

/* ------------------------------------------------------------ q8_K quantizer */

void ig__quantize_q8_K_avx2(const float *x, void *dst, int64_t n) {
    ig_block_q8_K *b = dst;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t k = 0; k < n / IG_QK_K; k++, b++, x += IG_QK_K) {
        /* amax: vmaxps returns its second operand when either is NaN, so NaN inputs never count */
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < IG_QK_K; i += 8)
            m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), m);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0.0f) {
            memset(b, 0, sizeof *b);
            continue;
        }
        /* the first value whose magnitude is amax, with its sign */
        const __m256 va = _mm256_set1_ps(amax);
        int first = 0;
        for (int i = 0; i < IG_QK_K; i += 8) {
            const int mask = _mm256_movemask_ps(
                _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)), va, _CMP_EQ_OQ));
            if (mask) {
                first = i + __builtin_ctz((unsigned)mask);
                break;
            }
        }
        const float iscale = -127.0f / x[first];
        const __m256 vs = _mm256_set1_ps(iscale);
        const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
        const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
        __m256i part[8]; /* per 32 codes: 4 partial sums of each 16 */
        for (int g = 0; g < 8; g++) {
            __m256i q32[4];
            for (int i = 0; i < 4; i++) {
                __m256 v = _mm256_mul_ps(vs, _mm256_loadu_ps(x + 32 * g + 8 * i));
                v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q)); /* NaN -> 0 */
                v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
                q32[i] = _mm256_cvtps_epi32(v); /* nearest, ties to even */
            }
            /* packs work per 128-bit lane: restore value order with a dword permute */
            const __m256i p16a = _mm256_packs_epi32(q32[0], q32[1]),
                          p16b = _mm256_packs_epi32(q32[2], q32[3]);
            const __m256i p8 = _mm256_permutevar8x32_epi32(
                _mm256_packs_epi16(p16a, p16b), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(b->qs + 32 * g), p8);
            part[g] = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, p8), ones16);
        }
        /* part[g] = [4 partial sums of group 2g | 4 of group 2g + 1]; add them up in order */
        const __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(part[0], part[1]),
                                             _mm256_hadd_epi32(part[2], part[3]));
        const __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(part[4], part[5]),
                                             _mm256_hadd_epi32(part[6], part[7]));
        /* h0 = [g0 g2 g4 g6 | g1 g3 g5 g7], h1 = [g8 .. g14 | g9 .. g15] */
        const __m256i s16 = _mm256_packs_epi32(h0, h1); /* [g0 g2 .. g6 g8 .. g14 | g1 .. g15] */
        const __m128i e = _mm256_castsi256_si128(s16), o = _mm256_extracti128_si256(s16, 1);
        _mm_storeu_si128((__m128i *)b->bsums, _mm_unpacklo_epi16(e, o));
        _mm_storeu_si128((__m128i *)(b->bsums + 8), _mm_unpackhi_epi16(e, o));
        b->d = 1.0f / iscale;
    }
}

/* ------------------------------------------------------------ registration */

void ig__dot_register_kquant_avx2(ig_dot_kernel *table) {
    static const struct {
        ig_type type;
        ig_vec_dot_q_fn vec_dot_q;
        ig_gemm_q_fn gemm_q;
    } K[] = {
        {IG_TYPE_Q2_K, ig__vec_dot_q2_K_avx2, ig__gemm_q2_K_avx2},
        {IG_TYPE_Q3_K, ig__vec_dot_q3_K_avx2, ig__gemm_q3_K_avx2},
        {IG_TYPE_Q4_K, ig__vec_dot_q4_K_avx2, ig__gemm_q4_K_avx2},
        {IG_TYPE_Q5_K, ig__vec_dot_q5_K_avx2, ig__gemm_q5_K_avx2},
        {IG_TYPE_Q6_K, ig__vec_dot_q6_K_avx2, ig__gemm_q6_K_avx2},
    };
    for (size_t i = 0; i < sizeof K / sizeof K[0]; i++) {
        table[K[i].type].vec_dot_q = K[i].vec_dot_q;
        table[K[i].type].gemm_q = K[i].gemm_q;
    }
    /* every weight type that takes q8_K activations (q8_K weights too) gets the same bytes faster
     */
    for (uint32_t t = 0; t < IG_TYPE_COUNT; t++)
        if (table[t].vec_dot_q && table[t].act_type == IG_TYPE_Q8_K)
            table[t].quantize_act = ig__quantize_q8_K_avx2;
}
