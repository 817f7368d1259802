/*
 * act_quant.c: activation quantizers matching llama.cpp's x86 CPU backend
 * (see act_quant.h for the exact arithmetic each one follows).
 */
#include "tensor/act_quant.h"

#include <math.h>
#include <string.h>

#include "tensor/blocks.h"
#include "tensor/fp16.h"

/*
 * Round to the nearest integer, ties to even, clamped to [-127, 127] (NaN
 * gives 0). Inside the range, adding 1.5 * 2^23 leaves the integer in the low
 * mantissa bits, rounded by the FPU in its default mode (nearest-even), as
 * SSE's round-to-nearest does.
 */
static inline int8_t round_q8(float v) {
    if (v != v) return 0;
    if (v <= -127.0f) return -127;
    if (v >= 127.0f) return 127;
    const float t = v + 12582912.0f;
    uint32_t u;
    memcpy(&u, &t, sizeof u);
    return (int8_t)((int)(u & 0x7fffff) - 0x400000);
}

void ig_quantize_act_f32(const float *x, void *dst, int64_t n) {
    memcpy(dst, x, (size_t)n * sizeof(float));
}

void ig_quantize_act_f16(const float *x, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = ig_fp32_to_fp16(x[i]);
}

void ig_quantize_act_bf16(const float *x, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = ig_fp32_to_bf16(x[i]);
}

/* Shared by q8_0 and q8_1: the float scale, the block's codes, their sum. */
static float q8_block(const float *x, int8_t *qs, int *sum) {
    float amax = 0.0f;
    for (int i = 0; i < IG_QK; i++) amax = fmaxf(amax, fabsf(x[i]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int s = 0;
    for (int i = 0; i < IG_QK; i++) {
        qs[i] = round_q8(x[i] * id);
        s += qs[i];
    }
    *sum = s;
    return d;
}

void ig_quantize_act_q8_0(const float *x, void *dst, int64_t n) {
    ig_block_q8_0 *b = dst;
    for (int64_t k = 0; k < n / IG_QK; k++, b++, x += IG_QK) {
        int sum;
        b->d = ig_fp32_to_fp16(q8_block(x, b->qs, &sum));
    }
}

void ig_quantize_act_q8_1(const float *x, void *dst, int64_t n) {
    ig_block_q8_1 *b = dst;
    for (int64_t k = 0; k < n / IG_QK; k++, b++, x += IG_QK) {
        int sum;
        const float d = q8_block(x, b->qs, &sum);
        b->d = ig_fp32_to_fp16(d);
        b->s = ig_fp32_to_fp16(d * (float)sum);
    }
}

void ig_quantize_act_q8_K(const float *x, void *dst, int64_t n) {
    ig_block_q8_K *b = dst;
    for (int64_t k = 0; k < n / IG_QK_K; k++, b++, x += IG_QK_K) {
        float amax = 0.0f, max = 0.0f; /* max: the signed value of largest magnitude */
        for (int i = 0; i < IG_QK_K; i++) {
            if (fabsf(x[i]) > amax) {
                amax = fabsf(x[i]);
                max = x[i];
            }
        }
        if (amax == 0.0f) {
            memset(b, 0, sizeof *b);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int i = 0; i < IG_QK_K; i++) b->qs[i] = round_q8(iscale * x[i]);
        for (int g = 0; g < IG_QK_K / 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += b->qs[16 * g + i];
            b->bsums[g] = (int16_t)s;
        }
        b->d = 1.0f / iscale;
    }
}

void ig_to_float_q8_1(const void *src, float *dst, int64_t n) {
    const ig_block_q8_1 *b = src;
    for (int64_t k = 0; k < n / IG_QK; k++, b++, dst += IG_QK) {
        const float d = ig_fp16_to_fp32(b->d);
        for (int i = 0; i < IG_QK; i++) dst[i] = d * (float)b->qs[i];
    }
}
