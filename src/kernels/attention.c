/*
 * attention.c: the reference attention over an F16 KV cache (see
 * attention.h for the rounding points) and the dispatch to the per-ISA
 * kernels. The reference reads like the list of rounding points, one head
 * at a time; it is the oracle the fast kernels are tested against.
 */
#include "kernels/attention.h"

#include <math.h>

#include "base/error.h"
#include "kernels/expf.h"
#include "tensor/fp16.h"

static inline const uint16_t *row_at(const ig_attn_kv *kv, const uint16_t *base, int j) {
    return base + (size_t)kv->block_table[j / kv->block_size] * kv->block_stride + kv->offset +
           (size_t)(j % kv->block_size) * kv->slot_stride;
}

static void attend_one_ref(const ig_attn_kv *kv, int hd, int n_pos, const float *q_head,
                           float *out) {
    const float scale = 1.0f / sqrtf((float)hd);
    float q[512];
    uint16_t acc[512];
    for (int i = 0; i < hd; i++) {
        q[i] = ig_fp16_to_fp32(ig_fp32_to_fp16(q_head[i]));
        acc[i] = 0;
    }
    float M = -INFINITY, S = 0.0f;
    for (int j = 0; j < n_pos; j++) {
        const uint16_t *kj = row_at(kv, kv->k, j), *vj = row_at(kv, kv->v, j);
        double dot = 0.0;
        for (int i = 0; i < hd; i++) dot += (double)(q[i] * ig_fp16_to_fp32(kj[i]));
        const float s = (float)dot * scale;
        float ms = 1.0f, vs = 1.0f;
        if (s > M) {
            ms = ig_expf(M - s);
            M = s;
            for (int i = 0; i < hd; i++) acc[i] = ig_fp32_to_fp16(ig_fp16_to_fp32(acc[i]) * ms);
        } else {
            vs = ig_expf(s - M);
        }
        for (int i = 0; i < hd; i++)
            acc[i] = ig_fp32_to_fp16(fmaf(ig_fp16_to_fp32(vj[i]), vs, ig_fp16_to_fp32(acc[i])));
        S = fmaf(S, ms, vs);
    }
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int i = 0; i < hd; i++) out[i] = ig_fp16_to_fp32(acc[i]) * inv;
}

void ig_attend_f16_level(ig_cpu_level level, const ig_attn_kv *kv, int head_dim, int n_pos,
                         const float *q, int n_q, float *out) {
    IG_ASSERT(head_dim > 0 && head_dim <= 512 && n_pos >= 1);
#ifdef IG_HAVE_X86_KERNELS
    if (level >= IG_CPU_AVX512) {
        ig__attend_f16_avx512(kv, head_dim, n_pos, q, n_q, out);
        return;
    }
    if (level == IG_CPU_AVX2) {
        ig__attend_f16_avx2(kv, head_dim, n_pos, q, n_q, out);
        return;
    }
#else
    (void)level;
#endif
    for (int h = 0; h < n_q; h++)
        attend_one_ref(kv, head_dim, n_pos, q + (size_t)h * head_dim, out + (size_t)h * head_dim);
}

void ig_attn_expf_level(ig_cpu_level level, const float *x, size_t n, float *y) {
    size_t i = 0;
#ifdef IG_HAVE_X86_KERNELS
    if (level >= IG_CPU_AVX512)
        for (; i + 8 <= n; i += 8) ig__expf8_avx512(x + i, y + i);
    else if (level == IG_CPU_AVX2)
        for (; i + 8 <= n; i += 8) ig__expf8_avx2(x + i, y + i);
#else
    (void)level;
#endif
    for (; i < n; i++) y[i] = ig_expf(x[i]);
}

void ig_attend_f16(const ig_attn_kv *kv, int head_dim, int n_pos, const float *q, int n_q,
                   float *out) {
    ig_attend_f16_level(ig_cpu_level_get(), kv, head_dim, n_pos, q, n_q, out);
}
