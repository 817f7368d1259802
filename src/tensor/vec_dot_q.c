/*
 * vec_dot_q.c: reference integer dot products of weight rows with quantized
 * activations (see vec_dot_q.h). The bit layouts are described in
 * quant_ref.c; each function unpacks a block's integer codes and scales the
 * way that comment defines them, sums in integers, then scales once per
 * block. Integer sums cannot overflow: the largest, q6_K's, is at most
 * 128 * 32 * 127 * 256 < 2^28 per super-block.
 */
#include "tensor/vec_dot_q.h"

#include "tensor/blocks.h"
#include "tensor/fp16.h"

static inline float h2f(uint16_t h) {
    return ig_fp16_to_fp32(h);
}

static inline uint32_t load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* ------------------------------------------------------------ plain floats */

float ig_vec_dot_q_f32(const void *row, const void *xq, int64_t n) {
    const float *r = row, *x = xq;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)r[i] * x[i];
    return (float)sum;
}

float ig_vec_dot_q_f16(const void *row, const void *xq, int64_t n) {
    const uint16_t *r = row, *x = xq;
    double sum = 0; /* each product of two halves is exact in float */
    for (int64_t i = 0; i < n; i++) sum += ig_fp16_to_fp32(r[i]) * ig_fp16_to_fp32(x[i]);
    return (float)sum;
}

float ig_vec_dot_q_bf16(const void *row, const void *xq, int64_t n) {
    const uint16_t *r = row, *x = xq;
    double sum = 0; /* each product of two bfloat16 is exact in float */
    for (int64_t i = 0; i < n; i++) sum += ig_bf16_to_fp32(r[i]) * ig_bf16_to_fp32(x[i]);
    return (float)sum;
}

/* ---------------------------------------------------- legacy . q8_0 / q8_1 */

float ig_vec_dot_q_q8_0(const void *row, const void *xq, int64_t n) {
    const ig_block_q8_0 *w = row;
    const ig_block_q8_0 *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK; b++) {
        int isum = 0;
        for (int i = 0; i < IG_QK; i++) isum += w[b].qs[i] * x[b].qs[i];
        sum += (double)(h2f(w[b].d) * h2f(x[b].d)) * isum;
    }
    return (float)sum;
}

float ig_vec_dot_q_q4_0(const void *row, const void *xq, int64_t n) {
    const ig_block_q4_0 *w = row;
    const ig_block_q8_0 *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK; b++) {
        int isum = 0;
        for (int j = 0; j < IG_QK / 2; j++) {
            isum += ((w[b].qs[j] & 0x0f) - 8) * x[b].qs[j];
            isum += ((w[b].qs[j] >> 4) - 8) * x[b].qs[j + IG_QK / 2];
        }
        sum += (double)(h2f(w[b].d) * h2f(x[b].d)) * isum;
    }
    return (float)sum;
}

float ig_vec_dot_q_q5_0(const void *row, const void *xq, int64_t n) {
    const ig_block_q5_0 *w = row;
    const ig_block_q8_0 *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK; b++) {
        const uint32_t qh = load_u32le(w[b].qh);
        int isum = 0;
        for (int j = 0; j < IG_QK / 2; j++) {
            const int lo = (w[b].qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
            const int hi = (w[b].qs[j] >> 4) | (int)((qh >> (j + IG_QK / 2)) & 1) << 4;
            isum += (lo - 16) * x[b].qs[j] + (hi - 16) * x[b].qs[j + IG_QK / 2];
        }
        sum += (double)(h2f(w[b].d) * h2f(x[b].d)) * isum;
    }
    return (float)sum;
}

float ig_vec_dot_q_q4_1(const void *row, const void *xq, int64_t n) {
    const ig_block_q4_1 *w = row;
    const ig_block_q8_1 *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK; b++) {
        int isum = 0;
        for (int j = 0; j < IG_QK / 2; j++) {
            isum += (w[b].qs[j] & 0x0f) * x[b].qs[j];
            isum += (w[b].qs[j] >> 4) * x[b].qs[j + IG_QK / 2];
        }
        sum += (double)(h2f(w[b].d) * h2f(x[b].d)) * isum;
        sum += (double)(h2f(w[b].m) * h2f(x[b].s)); /* m * sum of the decoded activations */
    }
    return (float)sum;
}

float ig_vec_dot_q_q5_1(const void *row, const void *xq, int64_t n) {
    const ig_block_q5_1 *w = row;
    const ig_block_q8_1 *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK; b++) {
        const uint32_t qh = load_u32le(w[b].qh);
        int isum = 0;
        for (int j = 0; j < IG_QK / 2; j++) {
            const int lo = (w[b].qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
            const int hi = (w[b].qs[j] >> 4) | (int)((qh >> (j + IG_QK / 2)) & 1) << 4;
            isum += lo * x[b].qs[j] + hi * x[b].qs[j + IG_QK / 2];
        }
        sum += (double)(h2f(w[b].d) * h2f(x[b].d)) * isum;
        sum += (double)(h2f(w[b].m) * h2f(x[b].s));
    }
    return (float)sum;
}

/* ------------------------------------------------------------ K . q8_K */

/* sum of q[l] * x[l] over 16 values, q given as (src[l] >> shift) & mask. */
static inline int dot16_bits(const uint8_t *src, int shift, int mask, const int8_t *x) {
    int s = 0;
    for (int l = 0; l < 16; l++) s += ((src[l] >> shift) & mask) * x[l];
    return s;
}

float ig_vec_dot_q_q2_K(const void *row, const void *xq, int64_t n) {
    const ig_block_q2_K *w = row;
    const ig_block_q8_K *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK_K; b++) {
        int isum = 0, isum_min = 0;
        for (int s = 0; s < 16; s++) { /* values 16s .. 16s+15 */
            const int sc = w[b].scales[s] & 0x0f, mn = w[b].scales[s] >> 4;
            const uint8_t *q = w[b].qs + 32 * (s / 8) + 16 * (s % 2);
            isum += sc * dot16_bits(q, 2 * ((s / 2) % 4), 3, x[b].qs + 16 * s);
            isum_min += mn * x[b].bsums[s];
        }
        sum += (double)(h2f(w[b].d) * x[b].d) * isum;
        sum -= (double)(h2f(w[b].dmin) * x[b].d) * isum_min;
    }
    return (float)sum;
}

float ig_vec_dot_q_q3_K(const void *row, const void *xq, int64_t n) {
    const ig_block_q3_K *w = row;
    const ig_block_q8_K *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK_K; b++) {
        const uint8_t *sc = w[b].scales;
        int isum = 0;
        for (int s = 0; s < 16; s++) { /* values 16s .. 16s+15 */
            const int lo4 = s < 8 ? sc[s] & 0x0f : sc[s - 8] >> 4;
            const int hi2 = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
            const int scale = (lo4 | hi2 << 4) - 32;
            const uint8_t *q = w[b].qs + 32 * (s / 8) + 16 * (s % 2);
            const uint8_t *hm = w[b].hmask + 16 * (s % 2);
            const int shift = 2 * ((s / 2) % 4), hbit = s / 2;
            const int8_t *xs = x[b].qs + 16 * s;
            int si = 0;
            for (int l = 0; l < 16; l++)
                si += (((q[l] >> shift) & 3) + 4 * ((hm[l] >> hbit) & 1) - 4) * xs[l];
            isum += scale * si;
        }
        sum += (double)(h2f(w[b].d) * x[b].d) * isum;
    }
    return (float)sum;
}

/* 6-bit scale and min of sub-block s of q4_K / q5_K (layout in quant_ref.c). */
static inline void k4_scale_min(const uint8_t *q, int s, int *sc, int *mn) {
    if (s < 4) {
        *sc = q[s] & 63;
        *mn = q[s + 4] & 63;
    } else {
        *sc = (q[s + 4] & 0x0f) | (q[s - 4] >> 6) << 4;
        *mn = (q[s + 4] >> 4) | (q[s] >> 6) << 4;
    }
}

float ig_vec_dot_q_q4_K(const void *row, const void *xq, int64_t n) {
    const ig_block_q4_K *w = row;
    const ig_block_q8_K *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK_K; b++) {
        int isum = 0, isum_min = 0;
        for (int s = 0; s < 8; s++) { /* values 32s .. 32s+31 */
            int sc, mn;
            k4_scale_min(w[b].scales, s, &sc, &mn);
            const uint8_t *q = w[b].qs + 32 * (s / 2);
            const int shift = 4 * (s % 2);
            const int8_t *xs = x[b].qs + 32 * s;
            int si = 0;
            for (int l = 0; l < 32; l++) si += ((q[l] >> shift) & 0x0f) * xs[l];
            isum += sc * si;
            isum_min += mn * (x[b].bsums[2 * s] + x[b].bsums[2 * s + 1]);
        }
        sum += (double)(h2f(w[b].d) * x[b].d) * isum;
        sum -= (double)(h2f(w[b].dmin) * x[b].d) * isum_min;
    }
    return (float)sum;
}

float ig_vec_dot_q_q5_K(const void *row, const void *xq, int64_t n) {
    const ig_block_q5_K *w = row;
    const ig_block_q8_K *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK_K; b++) {
        int isum = 0, isum_min = 0;
        for (int s = 0; s < 8; s++) { /* values 32s .. 32s+31; bit 4 = bit s of qh[l] */
            int sc, mn;
            k4_scale_min(w[b].scales, s, &sc, &mn);
            const uint8_t *q = w[b].qs + 32 * (s / 2);
            const int shift = 4 * (s % 2);
            const int8_t *xs = x[b].qs + 32 * s;
            int si = 0;
            for (int l = 0; l < 32; l++)
                si += (((q[l] >> shift) & 0x0f) | ((w[b].qh[l] >> s) & 1) << 4) * xs[l];
            isum += sc * si;
            isum_min += mn * (x[b].bsums[2 * s] + x[b].bsums[2 * s + 1]);
        }
        sum += (double)(h2f(w[b].d) * x[b].d) * isum;
        sum -= (double)(h2f(w[b].dmin) * x[b].d) * isum_min;
    }
    return (float)sum;
}

float ig_vec_dot_q_q6_K(const void *row, const void *xq, int64_t n) {
    const ig_block_q6_K *w = row;
    const ig_block_q8_K *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK_K; b++) {
        int isum = 0;
        for (int s = 0; s < 16; s++) { /* values 16s .. 16s+15 */
            const int h = s / 8, kq = (s / 2) % 4, l0 = 16 * (s % 2);
            const uint8_t *ql = w[b].ql + 64 * h + 32 * (kq & 1) + l0;
            const uint8_t *qh = w[b].qh + 32 * h + l0;
            const int lshift = 4 * (kq >> 1), hshift = 2 * kq;
            const int8_t *xs = x[b].qs + 16 * s;
            int si = 0;
            for (int l = 0; l < 16; l++)
                si += ((((ql[l] >> lshift) & 0x0f) | ((qh[l] >> hshift) & 3) << 4) - 32) * xs[l];
            isum += w[b].scales[s] * si;
        }
        sum += (double)(h2f(w[b].d) * x[b].d) * isum;
    }
    return (float)sum;
}

float ig_vec_dot_q_q8_K(const void *row, const void *xq, int64_t n) {
    const ig_block_q8_K *w = row;
    const ig_block_q8_K *x = xq;
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK_K; b++) {
        int isum = 0;
        for (int i = 0; i < IG_QK_K; i++) isum += w[b].qs[i] * x[b].qs[i];
        sum += (double)(w[b].d * x[b].d) * isum;
    }
    return (float)sum;
}
