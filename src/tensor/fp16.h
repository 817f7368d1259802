/*
 * fp16.h: IEEE half and bfloat16 <-> float conversions (portable C).
 * Rounding is to nearest, ties to even; NaN stays NaN, overflow gives inf.
 */
#ifndef IG_TENSOR_FP16_H
#define IG_TENSOR_FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t ig__f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float ig__bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline float ig_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0) {
        if (mant == 0) return ig__bits_f32(sign);
        /* subnormal: value = mant * 2^-24 */
        float f = (float)mant * (1.0f / 16777216.0f);
        return sign ? -f : f;
    }
    if (exp == 31) return ig__bits_f32(sign | 0x7f800000u | (mant << 13));
    return ig__bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static inline uint16_t ig_fp32_to_fp16(float f) {
    uint32_t x = ig__f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx > 0x7f800000u) return (uint16_t)(sign | 0x7e00 | ((absx >> 13) & 0x3ff)); /* NaN */
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to inf */
    if (absx < 0x38800000u) {
        /* result is subnormal or zero: scale to units of 2^-24 and round to even */
        float a = ig__bits_f32(absx) * 16777216.0f;
        uint32_t m = (uint32_t)a;
        float rem = a - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t exp = (absx >> 23) - 112;
    uint32_t mant = absx & 0x7fffff;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; /* may carry into exponent: fine */
    return (uint16_t)(sign | h);
}

static inline float ig_bf16_to_fp32(uint16_t b) { return ig__bits_f32((uint32_t)b << 16); }

static inline uint16_t ig_fp32_to_bf16(float f) {
    uint32_t x = ig__f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

#endif
