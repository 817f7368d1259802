/*
 * attention_avx512.c: AVX-512 attention over an F16 KV cache (see
 * kernels/attention.h for the rounding points it keeps). Compiled with the
 * AVX-512 flags (CMakeLists.txt); only reached through kernels/attention.c.
 *
 * The query heads that share a KV head go together, up to GROUP at a time:
 * per position the K and V rows are widened to f32 once (into kb / vb,
 * zero-padded to whole vectors), then each head takes its q.k (products in
 * f32, exact; summed in double, 8 + 8 lanes), its online-softmax step with
 * the scalar expf, and its accumulator update. The accumulator is kept in
 * f32 holding values that are always F16 (each update goes through
 * vcvtps2ph / vcvtph2ps, the same round-to-nearest-even as ig_fp32_to_fp16),
 * so it is the reference's F16 accumulator. The heads' softmax chains are
 * independent, so the core overlaps them.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#include "kernels/attention.h"

enum { GROUP = 8, MAX_VEC = 512 / 16 };

static inline __m512 f16_round(__m512 x) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

static inline const uint16_t *row_at(const ig_attn_kv *kv, const uint16_t *base, int j) {
    return base + (size_t)kv->block_table[j / kv->block_size] * kv->block_stride + kv->offset +
           (size_t)(j % kv->block_size) * kv->slot_stride;
}

/* Widen a row of hd F16 values into nv vectors (the last one zero-padded). */
static inline void widen(const uint16_t *src, int hd, int nv, __m512 *dst) {
    for (int c = 0; c < nv; c++) {
        const int left = hd - 16 * c;
        const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        dst[c] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + 16 * c));
    }
}

static void attend_group(const ig_attn_kv *kv, int hd, int n_pos, const float *q, int n_q,
                         float *out) {
    const int nv = (hd + 15) / 16;
    const float scale = 1.0f / sqrtf((float)hd);
    __m512 qv[GROUP][MAX_VEC], acc[GROUP][MAX_VEC], kb[MAX_VEC], vb[MAX_VEC];
    float M[GROUP], S[GROUP];
    for (int h = 0; h < n_q; h++) {
        /* q rounded to F16, zero-padded */
        for (int c = 0; c < nv; c++) {
            const int left = hd - 16 * c;
            const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            qv[h][c] = f16_round(_mm512_maskz_loadu_ps(m, q + (size_t)h * hd + 16 * c));
            acc[h][c] = _mm512_setzero_ps();
        }
        M[h] = -INFINITY;
        S[h] = 0.0f;
    }
    for (int j = 0; j < n_pos; j++) {
        widen(row_at(kv, kv->k, j), hd, nv, kb);
        widen(row_at(kv, kv->v, j), hd, nv, vb);
        for (int h = 0; h < n_q; h++) {
            __m512d d0 = _mm512_setzero_pd(), d1 = _mm512_setzero_pd();
            for (int c = 0; c < nv; c++) {
                const __m512 p = _mm512_mul_ps(qv[h][c], kb[c]); /* exact: F16 x F16 */
                d0 = _mm512_add_pd(d0, _mm512_cvtps_pd(_mm512_castps512_ps256(p)));
                d1 = _mm512_add_pd(d1, _mm512_cvtps_pd(_mm256_castpd_ps(
                                           _mm512_extractf64x4_pd(_mm512_castps_pd(p), 1))));
            }
            const float s = (float)_mm512_reduce_add_pd(_mm512_add_pd(d0, d1)) * scale;
            float ms = 1.0f, vs = 1.0f;
            if (s > M[h]) {
                ms = expf(M[h] - s);
                M[h] = s;
                const __m512 msv = _mm512_set1_ps(ms);
                for (int c = 0; c < nv; c++) acc[h][c] = f16_round(_mm512_mul_ps(acc[h][c], msv));
            } else {
                vs = expf(s - M[h]);
            }
            const __m512 vsv = _mm512_set1_ps(vs);
            for (int c = 0; c < nv; c++)
                acc[h][c] = f16_round(_mm512_fmadd_ps(vb[c], vsv, acc[h][c]));
            S[h] = fmaf(S[h], ms, vs);
        }
    }
    for (int h = 0; h < n_q; h++) {
        const __m512 inv = _mm512_set1_ps(S[h] == 0.0f ? 0.0f : 1.0f / S[h]);
        for (int c = 0; c < nv; c++) {
            const int left = hd - 16 * c;
            const __mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
            _mm512_mask_storeu_ps(out + (size_t)h * hd + 16 * c, m, _mm512_mul_ps(acc[h][c], inv));
        }
    }
}

void ig__attend_f16_avx512(const ig_attn_kv *kv, int head_dim, int n_pos, const float *q, int n_q,
                           float *out) {
    for (int h = 0; h < n_q; h += GROUP) {
        const int g = n_q - h < GROUP ? n_q - h : GROUP;
        attend_group(kv, head_dim, n_pos, q + (size_t)h * head_dim, g, out + (size_t)h * head_dim);
    }
}
