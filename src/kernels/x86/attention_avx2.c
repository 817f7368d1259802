/*
 * attention_avx2.c: AVX2 + FMA + F16C attention over an F16 KV cache (see
 * kernels/attention.h for the rounding points it keeps). Compiled with the
 * AVX2 flags (CMakeLists.txt); only reached through kernels/attention.c.
 * The same scheme as attention_avx512.c with 8-lane vectors: the heads that
 * share a KV head go together, K and V rows widened once per position, q.k
 * in double (4 + 4 lanes), scalar ig_expf (kernels/expf.h), the F16 accumulator kept as f32
 * values that every update rounds through vcvtps2ph.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/attention.h"
#include "kernels/expf.h"

enum { GROUP = 8, MAX_VEC = 512 / 8 };

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

static void attend_group(const ig_attn_kv *kv, int hd, int n_pos, const float *q, int n_q,
                         float *out) {
    const int nv = (hd + 7) / 8;
    const float scale = 1.0f / sqrtf((float)hd);
    __m256 qv[GROUP][MAX_VEC], acc[GROUP][MAX_VEC], kb[MAX_VEC], vb[MAX_VEC];
    float M[GROUP], S[GROUP];
    for (int h = 0; h < n_q; h++) {
        float tmp[512 + 8] = {0};
        memcpy(tmp, q + (size_t)h * hd, (size_t)hd * sizeof *tmp);
        for (int c = 0; c < nv; c++) {
            qv[h][c] = f16_round(_mm256_loadu_ps(tmp + 8 * c)); /* q rounded to F16, zero-padded */
            acc[h][c] = _mm256_setzero_ps();
        }
        M[h] = -INFINITY;
        S[h] = 0.0f;
    }
    for (int j = 0; j < n_pos; j++) {
        widen(row_at(kv, kv->k, j), hd, nv, kb);
        widen(row_at(kv, kv->v, j), hd, nv, vb);
        for (int h = 0; h < n_q; h++) {
            __m256d d0 = _mm256_setzero_pd(), d1 = _mm256_setzero_pd();
            for (int c = 0; c < nv; c++) {
                const __m256 p = _mm256_mul_ps(qv[h][c], kb[c]); /* exact: F16 x F16 */
                d0 = _mm256_add_pd(d0, _mm256_cvtps_pd(_mm256_castps256_ps128(p)));
                d1 = _mm256_add_pd(d1, _mm256_cvtps_pd(_mm256_extractf128_ps(p, 1)));
            }
            const __m256d d = _mm256_add_pd(d0, d1);
            const __m128d e = _mm_add_pd(_mm256_castpd256_pd128(d), _mm256_extractf128_pd(d, 1));
            const double dot = _mm_cvtsd_f64(_mm_add_sd(e, _mm_unpackhi_pd(e, e)));
            const float s = (float)dot * scale;
            float ms = 1.0f, vs = 1.0f;
            if (s > M[h]) {
                ms = ig_expf(M[h] - s);
                M[h] = s;
                const __m256 msv = _mm256_set1_ps(ms);
                for (int c = 0; c < nv; c++) acc[h][c] = f16_round(_mm256_mul_ps(acc[h][c], msv));
            } else {
                vs = ig_expf(s - M[h]);
            }
            const __m256 vsv = _mm256_set1_ps(vs);
            for (int c = 0; c < nv; c++)
                acc[h][c] = f16_round(_mm256_fmadd_ps(vb[c], vsv, acc[h][c]));
            S[h] = fmaf(S[h], ms, vs);
        }
    }
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
