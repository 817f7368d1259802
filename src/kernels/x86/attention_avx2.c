/*
 * attention_avx2.c: AVX2 + FMA + F16C attention over an F16 KV cache (see
 * kernels/attention.h for the rounding points it keeps). Compiled with the
 * AVX2 flags (CMakeLists.txt); only reached through kernels/attention.c.
 *
 * The scheme of attention_avx512.c with 8-lane float and 4-lane double
 * vectors: the heads that share a KV head go together over blocks of 8
 * positions; K rows widened once to double, V rows to float; each head's 8
 * scores by double FMA chains and a horizontal-add tree; the online softmax
 * on the 8 scores at once (prefix maximum, one vector ig_expf: expf8 below
 * does kernels/expf.h's double operations, the table read by a gather); the
 * sums S for all heads at once; then the F16 accumulators (f32 values that
 * every update rounds through vcvtps2ph), one head at a time.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/attention.h"
#include "kernels/expf.h"
#include "kernels/x86/transpose_x86.h"

enum { GROUP = 8, BLK = 8, MAX_VEC = 512 / 8 };

static inline __m256 f16_round(__m256 x) {
    return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

static inline const uint16_t *row_at(const ig_attn_kv *kv, const uint16_t *base, int j) {
    return base + (size_t)kv->block_table[j / kv->block_size] * kv->block_stride + kv->offset +
           (size_t)(j % kv->block_size) * kv->slot_stride;
}

/* Widen a row of hd F16 values into nv vectors (the last one zero-padded). */
static inline void widen(const uint16_t *src, int hd, int nv, __m256 *dst) {
    const int full = hd / 8;
    for (int c = 0; c < full; c++)
        dst[c] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 8 * c)));
    if (full < nv) {
        uint16_t tmp[8] = {0};
        memcpy(tmp, src + 8 * full, (size_t)(hd - 8 * full) * 2);
        dst[full] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)tmp));
    }
}

/* ig_expf (kernels/expf.h) on 4 lanes held as doubles. */
static inline __m128 expf4(__m128 c) {
    const __m256d z = _mm256_mul_pd(_mm256_cvtps_pd(c), _mm256_set1_pd(IG_EXPF_INV_LN2_8));
    const __m256d big = _mm256_add_pd(z, _mm256_set1_pd(IG_EXPF_SHIFT));
    const __m256d r = _mm256_sub_pd(z, _mm256_sub_pd(big, _mm256_set1_pd(IG_EXPF_SHIFT)));
    __m256d p = _mm256_fmadd_pd(_mm256_set1_pd(IG_EXPF_C5), r, _mm256_set1_pd(IG_EXPF_C4));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(IG_EXPF_C3));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(IG_EXPF_C2));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(IG_EXPF_C1));
    p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(1.0));
    const __m256i kb = _mm256_castpd_si256(big);
    const __m256i j = _mm256_and_si256(kb, _mm256_set1_epi64x(7));
    const __m256d y = _mm256_mul_pd(p, _mm256_i64gather_pd(ig_expf_table, j, 8));
    /* (zi >> 3) << 52 without a 64-bit arithmetic shift: zi << 49, low 52 bits cleared */
    const __m256i zi = _mm256_sub_epi64(kb, _mm256_set1_epi64x((long long)IG_EXPF_SHIFT_BITS));
    const __m256i k = _mm256_and_si256(_mm256_slli_epi64(zi, 49),
                                       _mm256_set1_epi64x((long long)~((1ull << 52) - 1)));
    return _mm256_cvtpd_ps(_mm256_castsi256_pd(_mm256_add_epi64(_mm256_castpd_si256(y), k)));
}

static inline __m256 expf8(__m256 x) {
    const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    const __m256 c =
        _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(IG_EXPF_LO)), _mm256_set1_ps(IG_EXPF_HI));
    const __m256 out =
        _mm256_set_m128(expf4(_mm256_extractf128_ps(c, 1)), expf4(_mm256_castps256_ps128(c)));
    return _mm256_blendv_ps(out, _mm256_add_ps(x, x), nan);
}

void ig__expf8_avx2(const float *x, float *y) {
    _mm256_storeu_ps(y, expf8(_mm256_loadu_ps(x)));
}

/* Lane p of the result = the sum of t[p]'s four lanes (p < 4). */
static inline __m256d reduce4(__m256d a, __m256d b, __m256d c, __m256d d) {
    const __m256d ab = _mm256_hadd_pd(a, b), cd = _mm256_hadd_pd(c, d);
    return _mm256_add_pd(_mm256_permute2f128_pd(ab, cd, 0x20),
                         _mm256_permute2f128_pd(ab, cd, 0x31));
}

/* Lanes moved up by `by` (a lane-crossing permute), the lowest `by` lanes -inf. */
static inline __m256 shift_up(__m256 x, int by) {
    const __m256i idx = _mm256_max_epi32(
        _mm256_sub_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(by)),
        _mm256_setzero_si256());
    const __m256 low = _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_set1_epi32(by), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    return _mm256_blendv_ps(_mm256_permutevar8x32_ps(x, idx), _mm256_set1_ps(-INFINITY), low);
}

static void attend_group(const ig_attn_kv *kv, int hd, int n_pos, const float *q, int n_q,
                         float *out) {
    const int nv = (hd + 7) / 8, nd = 2 * nv;
    const float scale = 1.0f / sqrtf((float)hd);
    __m256d qd[GROUP][2 * MAX_VEC];
    __m256d kd[BLK][2 * MAX_VEC];
    __m256 vf[BLK][MAX_VEC];
    __m256 acc[GROUP][MAX_VEC];
    _Alignas(32) float ms[GROUP][BLK], vs[GROUP][BLK];
    unsigned newm[GROUP];
    float M[GROUP];
    _Alignas(32) float S[GROUP];
    __m256 sv = _mm256_setzero_ps();
    for (int h = 0; h < n_q; h++) {
        float tmp[512 + 8] = {0};
        memcpy(tmp, q + (size_t)h * hd, (size_t)hd * sizeof *tmp);
        for (int c = 0; c < nv; c++) {
            const __m256 x = f16_round(_mm256_loadu_ps(tmp + 8 * c)); /* q as F16, zero-padded */
            qd[h][2 * c] = _mm256_cvtps_pd(_mm256_castps256_ps128(x));
            qd[h][2 * c + 1] = _mm256_cvtps_pd(_mm256_extractf128_ps(x, 1));
            acc[h][c] = _mm256_setzero_ps();
        }
        M[h] = -INFINITY;
    }
    const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 ninf = _mm256_set1_ps(-INFINITY), one = _mm256_set1_ps(1.0f);
    for (int j0 = 0; j0 < n_pos; j0 += BLK) {
        const int nb = n_pos - j0 < BLK ? n_pos - j0 : BLK;
        for (int p = 0; p < nb; p++) {
            __m256 k[MAX_VEC];
            widen(row_at(kv, kv->k, j0 + p), hd, nv, k);
            for (int c = 0; c < nv; c++) {
                kd[p][2 * c] = _mm256_cvtps_pd(_mm256_castps256_ps128(k[c]));
                kd[p][2 * c + 1] = _mm256_cvtps_pd(_mm256_extractf128_ps(k[c], 1));
            }
            widen(row_at(kv, kv->v, j0 + p), hd, nv, vf[p]);
        }
        for (int p = nb; p < BLK; p++)
            for (int c = 0; c < nd; c++) kd[p][c] = _mm256_setzero_pd();
        const __m256 valid = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(nb), iota));
        __m256 msr[GROUP], vsr[GROUP];
        for (int h = 0; h < n_q; h++) {
            __m256d t[BLK];
            for (int p = 0; p < BLK; p++) t[p] = _mm256_setzero_pd();
            for (int c = 0; c < nd; c++) {
                const __m256d qc = qd[h][c];
                for (int p = 0; p < BLK; p++) t[p] = _mm256_fmadd_pd(qc, kd[p][c], t[p]);
            }
            const __m256d lo = reduce4(t[0], t[1], t[2], t[3]),
                          hi = reduce4(t[4], t[5], t[6], t[7]);
            const __m256 s = _mm256_mul_ps(
                _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo)), _mm256_set1_ps(scale));
            /* running maximum before each position: NaN and absent lanes never raise it */
            const __m256 ord = _mm256_and_ps(_mm256_cmp_ps(s, s, _CMP_ORD_Q), valid);
            __m256 pm = _mm256_blendv_ps(ninf, s, ord);
            pm = _mm256_max_ps(pm, shift_up(pm, 1));
            pm = _mm256_max_ps(pm, shift_up(pm, 2));
            pm = _mm256_max_ps(pm, shift_up(pm, 4));
            const __m256 prev = _mm256_max_ps(shift_up(pm, 1), _mm256_set1_ps(M[h]));
            const __m256 nw = _mm256_and_ps(_mm256_cmp_ps(s, prev, _CMP_GT_OQ), valid);
            const __m256 e =
                expf8(_mm256_blendv_ps(_mm256_sub_ps(s, prev), _mm256_sub_ps(prev, s), nw));
            msr[h] = _mm256_blendv_ps(one, e, nw);
            vsr[h] = _mm256_blendv_ps(e, one, nw);
            _mm256_store_ps(ms[h], msr[h]);
            _mm256_store_ps(vs[h], vsr[h]);
            newm[h] = (unsigned)_mm256_movemask_ps(nw);
            const float top = _mm256_cvtss_f32(_mm256_permutevar8x32_ps(pm, _mm256_set1_epi32(7)));
            if (top > M[h]) M[h] = top;
        }
        /* S = S*ms + vs for every head at once: lane h is head h */
        for (int h = n_q; h < GROUP; h++) {
            msr[h] = _mm256_setzero_ps();
            vsr[h] = _mm256_setzero_ps();
        }
        transpose8(msr);
        transpose8(vsr);
        for (int p = 0; p < nb; p++) sv = _mm256_fmadd_ps(sv, msr[p], vsr[p]);
        /* the accumulators, position by position */
        for (int h = 0; h < n_q; h++) {
            for (int p = 0; p < nb; p++) {
                if (newm[h] >> p & 1u) {
                    const __m256 m = _mm256_set1_ps(ms[h][p]);
                    for (int c = 0; c < nv; c++) acc[h][c] = f16_round(_mm256_mul_ps(acc[h][c], m));
                }
                const __m256 w = _mm256_set1_ps(vs[h][p]);
                for (int c = 0; c < nv; c++)
                    acc[h][c] = f16_round(_mm256_fmadd_ps(vf[p][c], w, acc[h][c]));
            }
        }
    }
    _mm256_store_ps(S, sv);
    for (int h = 0; h < n_q; h++) {
        const __m256 inv = _mm256_set1_ps(S[h] == 0.0f ? 0.0f : 1.0f / S[h]);
        float tmp[512 + 8];
        for (int c = 0; c < nv; c++) _mm256_storeu_ps(tmp + 8 * c, _mm256_mul_ps(acc[h][c], inv));
        memcpy(out + (size_t)h * hd, tmp, (size_t)hd * sizeof *tmp);
    }
}

void ig__attend_f16_avx2(const ig_attn_kv *kv, int head_dim, int n_pos, const float *q, int n_q,
                         float *out) {
    for (int h = 0; h < n_q; h += GROUP) {
        const int g = n_q - h < GROUP ? n_q - h : GROUP;
        attend_group(kv, head_dim, n_pos, q + (size_t)h * head_dim, g, out + (size_t)h * head_dim);
    }
}
