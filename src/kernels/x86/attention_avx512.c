/*
 * attention_avx512.c: AVX-512 attention over an F16 KV cache (see
 * kernels/attention.h for the rounding points it keeps). Compiled with the
 * AVX-512 flags (CMakeLists.txt); only reached through kernels/attention.c.
 *
 * The query heads that share a KV head go together, up to GROUP at a time,
 * over blocks of BLK = 8 positions. Per block:
 *  - the K rows are widened once to double (kd) and the V rows to float (vf),
 *    for all the heads;
 *  - scores, per head: q (rounded to F16, held in double) . k as one chain of
 *    double FMAs per position (the products are exact, so each FMA is the
 *    reference's exact product added in double), the eight chains reduced
 *    together by a transposing add tree, so lane p holds position p's sum;
 *  - online softmax, per head, on the eight lanes at once: the running
 *    maximum before each position is a prefix-max scan, a position is "new"
 *    where its score exceeds it, and one vector ig_expf (expf8, the same
 *    double operations as kernels/expf.h) gives ms or vs for every position;
 *    the sums S = S*ms + vs, one fused multiply-add per position in order,
 *    run for all the heads at once (lane h of a vector is head h);
 *  - the accumulators, per position in order: a rescale where the position is
 *    new, then acc = f16(v * vs + acc). The heads' chains are independent, so
 *    four (head_dim 64) or two (128) heads are held in registers and updated
 *    together. The accumulator holds f32 values that are always F16 (every
 *    update goes through vcvtps2ph / vcvtph2ps, round to nearest even), as in
 *    the reference.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/attention.h"
#include "kernels/expf.h"
#include "kernels/x86/transpose_x86.h"

enum { GROUP = 8, BLK = 8, MAX_VEC = 512 / 16 };

static inline __m512 f16_round(__m512 x) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

static inline const uint16_t *row_at(const ig_attn_kv *kv, const uint16_t *base, int j) {
    return base + (size_t)kv->block_table[j / kv->block_size] * kv->block_stride + kv->offset +
           (size_t)(j % kv->block_size) * kv->slot_stride;
}

static inline __mmask16 tail_mask(int hd, int c) {
    const int left = hd - 16 * c;
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
}

static inline __m512d lo_pd(__m512 x) {
    return _mm512_cvtps_pd(_mm512_castps512_ps256(x));
}
static inline __m512d hi_pd(__m512 x) {
    return _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
}

/* ig_expf (kernels/expf.h) on 8 lanes: the same operations in the same order. */
static inline __m256 expf8(__m256 x) {
    const __mmask8 nan = _mm256_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    const __m256 c =
        _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(IG_EXPF_LO)), _mm256_set1_ps(IG_EXPF_HI));
    const __m512d z = _mm512_mul_pd(_mm512_cvtps_pd(c), _mm512_set1_pd(IG_EXPF_INV_LN2_8));
    const __m512d big = _mm512_add_pd(z, _mm512_set1_pd(IG_EXPF_SHIFT));
    const __m512d r = _mm512_sub_pd(z, _mm512_sub_pd(big, _mm512_set1_pd(IG_EXPF_SHIFT)));
    __m512d p = _mm512_fmadd_pd(_mm512_set1_pd(IG_EXPF_C5), r, _mm512_set1_pd(IG_EXPF_C4));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(IG_EXPF_C3));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(IG_EXPF_C2));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(IG_EXPF_C1));
    p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(1.0));
    const __m512i kb = _mm512_castpd_si512(big);
    const __m512d y = _mm512_mul_pd(p, _mm512_permutexvar_pd(kb, _mm512_loadu_pd(ig_expf_table)));
    const __m512i k = _mm512_slli_epi64(
        _mm512_srai_epi64(_mm512_sub_epi64(kb, _mm512_set1_epi64((long long)IG_EXPF_SHIFT_BITS)),
                          3),
        52);
    const __m256 out =
        _mm512_cvtpd_ps(_mm512_castsi512_pd(_mm512_add_epi64(_mm512_castpd_si512(y), k)));
    return _mm256_mask_blend_ps(nan, out, _mm256_add_ps(x, x));
}

void ig__expf8_avx512(const float *x, float *y) {
    _mm256_storeu_ps(y, expf8(_mm256_loadu_ps(x)));
}

/* Lane p of the result = the sum of t[p]'s eight lanes. */
static inline __m512d reduce8(const __m512d t[8]) {
    __m512d u[4], v[2];
    for (int i = 0; i < 4; i++)
        u[i] = _mm512_add_pd(_mm512_unpacklo_pd(t[2 * i], t[2 * i + 1]),
                             _mm512_unpackhi_pd(t[2 * i], t[2 * i + 1]));
    for (int i = 0; i < 2; i++)
        v[i] = _mm512_add_pd(_mm512_shuffle_f64x2(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f64x2(u[2 * i], u[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));
    return _mm512_add_pd(_mm512_shuffle_f64x2(v[0], v[1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f64x2(v[0], v[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

typedef struct {
    float ms[BLK], vs[BLK];
    unsigned newm;
} head_step;

/*
 * The accumulator updates of heads h0..h0+NH-1 over the block's nb positions,
 * with NH * NV accumulators held in registers (NH and NV are constants at
 * each call, so the loops unroll).
 */
static inline __attribute__((always_inline)) void update_fixed(const int NH, const int NV,
                                                               __m512 (*acc)[MAX_VEC],
                                                               const __m512 (*vf)[MAX_VEC],
                                                               const head_step *st, int nb) {
    __m512 a[NH * NV];
    for (int h = 0; h < NH; h++)
        for (int c = 0; c < NV; c++) a[h * NV + c] = acc[h][c];
    unsigned any = 0;
    for (int h = 0; h < NH; h++) any |= st[h].newm;
    for (int p = 0; p < nb; p++) {
        for (int h = 0; h < NH; h++) {
            if (any && (st[h].newm >> p & 1u)) {
                const __m512 m = _mm512_set1_ps(st[h].ms[p]);
                for (int c = 0; c < NV; c++)
                    a[h * NV + c] = f16_round(_mm512_mul_ps(a[h * NV + c], m));
            }
            const __m512 w = _mm512_set1_ps(st[h].vs[p]);
            for (int c = 0; c < NV; c++)
                a[h * NV + c] = f16_round(_mm512_fmadd_ps(vf[p][c], w, a[h * NV + c]));
        }
    }
    for (int h = 0; h < NH; h++)
        for (int c = 0; c < NV; c++) acc[h][c] = a[h * NV + c];
}

/* The same for one head and any number of vectors, in memory. */
static void update_any(int nv, __m512 *acc, const __m512 (*vf)[MAX_VEC], const head_step *st,
                       int nb) {
    for (int p = 0; p < nb; p++) {
        if (st->newm >> p & 1u) {
            const __m512 m = _mm512_set1_ps(st->ms[p]);
            for (int c = 0; c < nv; c++) acc[c] = f16_round(_mm512_mul_ps(acc[c], m));
        }
        const __m512 w = _mm512_set1_ps(st->vs[p]);
        for (int c = 0; c < nv; c++) acc[c] = f16_round(_mm512_fmadd_ps(vf[p][c], w, acc[c]));
    }
}

static void attend_group(const ig_attn_kv *kv, int hd, int n_pos, const float *q, int n_q,
                         float *out) {
    const int nv = (hd + 15) / 16, nd = 2 * nv;
    const float scale = 1.0f / sqrtf((float)hd);
    _Alignas(64) __m512d qd[GROUP][2 * MAX_VEC];
    _Alignas(64) __m512d kd[BLK][2 * MAX_VEC];
    _Alignas(64) __m512 vf[BLK][MAX_VEC];
    _Alignas(64) __m512 acc[GROUP][MAX_VEC];
    head_step st[GROUP];
    float M[GROUP];
    _Alignas(32) float S[GROUP];
    __m256 sv = _mm256_setzero_ps();
    for (int h = 0; h < n_q; h++) {
        /* q rounded to F16 (zero-padded), held in double */
        for (int c = 0; c < nv; c++) {
            const __m512 x = _mm512_cvtph_ps(_mm512_cvtps_ph(
                _mm512_maskz_loadu_ps(tail_mask(hd, c), q + (size_t)h * hd + 16 * c),
                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
            qd[h][2 * c] = lo_pd(x);
            qd[h][2 * c + 1] = hi_pd(x);
            acc[h][c] = _mm512_setzero_ps();
        }
        M[h] = -INFINITY;
    }
    const __m256i idx1 = _mm256_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6);
    const __m256i idx2 = _mm256_setr_epi32(0, 0, 0, 1, 2, 3, 4, 5);
    const __m256i idx4 = _mm256_setr_epi32(0, 0, 0, 0, 0, 1, 2, 3);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (int j0 = 0; j0 < n_pos; j0 += BLK) {
        const int nb = n_pos - j0 < BLK ? n_pos - j0 : BLK;
        for (int p = 0; p < nb; p++) {
            const uint16_t *kr = row_at(kv, kv->k, j0 + p), *vr = row_at(kv, kv->v, j0 + p);
            for (int c = 0; c < nv; c++) {
                const __mmask16 m = tail_mask(hd, c);
                const __m512 k = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, kr + 16 * c));
                kd[p][2 * c] = lo_pd(k);
                kd[p][2 * c + 1] = hi_pd(k);
                vf[p][c] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, vr + 16 * c));
            }
        }
        for (int p = nb; p < BLK; p++)
            for (int c = 0; c < nd; c++) kd[p][c] = _mm512_setzero_pd();
        const __mmask8 valid = (__mmask8)((1u << nb) - 1);
        __m256 msr[GROUP], vsr[GROUP];

        for (int h = 0; h < n_q; h++) {
            __m512d t[BLK];
            for (int p = 0; p < BLK; p++) t[p] = _mm512_setzero_pd();
            for (int c = 0; c < nd; c++) {
                const __m512d qc = qd[h][c];
                for (int p = 0; p < BLK; p++) t[p] = _mm512_fmadd_pd(qc, kd[p][c], t[p]);
            }
            const __m256 s = _mm256_mul_ps(_mm512_cvtpd_ps(reduce8(t)), _mm256_set1_ps(scale));
            /* running maximum before each position: NaN and absent lanes never raise it */
            const __mmask8 ord = _mm256_mask_cmp_ps_mask(valid, s, s, _CMP_ORD_Q);
            __m256 pm = _mm256_mask_blend_ps(ord, ninf, s);
            pm = _mm256_max_ps(pm, _mm256_mask_permutexvar_ps(ninf, 0xfe, idx1, pm));
            pm = _mm256_max_ps(pm, _mm256_mask_permutexvar_ps(ninf, 0xfc, idx2, pm));
            pm = _mm256_max_ps(pm, _mm256_mask_permutexvar_ps(ninf, 0xf0, idx4, pm));
            const __m256 m_in = _mm256_set1_ps(M[h]);
            const __m256 prev =
                _mm256_max_ps(_mm256_mask_permutexvar_ps(ninf, 0xfe, idx1, pm), m_in);
            const __mmask8 nw = _mm256_mask_cmp_ps_mask(valid, s, prev, _CMP_GT_OQ);
            const __m256 e =
                expf8(_mm256_mask_blend_ps(nw, _mm256_sub_ps(s, prev), _mm256_sub_ps(prev, s)));
            const __m256 one = _mm256_set1_ps(1.0f);
            msr[h] = _mm256_mask_blend_ps(nw, one, e);
            vsr[h] = _mm256_mask_blend_ps(nw, e, one);
            _mm256_storeu_ps(st[h].ms, msr[h]);
            _mm256_storeu_ps(st[h].vs, vsr[h]);
            st[h].newm = nw;
            const float top = _mm256_cvtss_f32(_mm256_permutexvar_ps(_mm256_set1_epi32(7), pm));
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

        int h = 0;
        if (nv == 4) {
            for (; h + 4 <= n_q; h += 4) update_fixed(4, 4, acc + h, vf, st + h, nb);
            for (; h < n_q; h++) update_fixed(1, 4, acc + h, vf, st + h, nb);
        } else if (nv == 8) {
            for (; h + 2 <= n_q; h += 2) update_fixed(2, 8, acc + h, vf, st + h, nb);
        }
        for (; h < n_q; h++) update_any(nv, acc[h], vf, st + h, nb);
    }
    _mm256_store_ps(S, sv);
    for (int h = 0; h < n_q; h++) {
        const __m512 inv = _mm512_set1_ps(S[h] == 0.0f ? 0.0f : 1.0f / S[h]);
        for (int c = 0; c < nv; c++)
            _mm512_mask_storeu_ps(out + (size_t)h * hd + 16 * c, tail_mask(hd, c),
                                  _mm512_mul_ps(acc[h][c], inv));
    }
}

void ig__attend_f16_avx512(const ig_attn_kv *kv, int head_dim, int n_pos, const float *q, int n_q,
                           float *out) {
    for (int h = 0; h < n_q; h += GROUP) {
        const int g = n_q - h < GROUP ? n_q - h : GROUP;
        attend_group(kv, head_dim, n_pos, q + (size_t)h * head_dim, g, out + (size_t)h * head_dim);
    }
}
