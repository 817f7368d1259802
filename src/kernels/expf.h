/*
 * expf.h: ig_expf, e^x for a float x, the one exponential of the attention
 * softmax at every CPU level. The vector kernels (x86/attention_*.c) compute
 * exactly these operations lane by lane, so every level gives the same bits;
 * libm's expf could not be matched that way (its algorithm and constants are
 * its own), and calling it per score was a tenth of a prompt's time.
 *
 * Method, in double:
 *  - x is clamped to [-150, 100] (e^-150 rounds to float 0 and e^100 to
 *    float infinity, so the clamp changes no result) and NaN returns x + x;
 *  - z = x * 8/ln2 = k*8 + j + r with integer k, j in 0..7 and |r| <= 1/2,
 *    rounded to the nearest integer by adding and subtracting 1.5 * 2^52;
 *  - 2^(r/8) = e^(r*ln2/8) by its Taylor series to degree 5 (|r*ln2/8| <=
 *    0.0434: the first term left out is below 1e-11 of the result);
 *  - times 2^(j/8) from a table (the nearest doubles, computed to 60
 *    digits), times 2^k by adding k to the exponent bits;
 *  - rounded once to float.
 * The double result is within about 1e-11 relative of e^x, so the float is
 * the correctly rounded one except when e^x lies that close to a midpoint
 * between two floats (a few in ten thousand inputs, off by one ulp).
 * Subnormal and overflowing floats come out right: the double holds them.
 */
#ifndef IG_KERNELS_EXPF_H
#define IG_KERNELS_EXPF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define IG_EXPF_LO         (-150.0f)
#define IG_EXPF_HI         100.0f
#define IG_EXPF_INV_LN2_8  0x1.71547652b82fep+3 /* 8 / ln 2 */
#define IG_EXPF_SHIFT      0x1.8p52             /* 1.5 * 2^52: rounds to an integer */
#define IG_EXPF_SHIFT_BITS 0x4338000000000000ull
/* (ln2/8)^n / n! */
#define IG_EXPF_C1 0x1.62e42fefa39efp-4
#define IG_EXPF_C2 0x1.ebfbdff82c58fp-9
#define IG_EXPF_C3 0x1.c6b08d704a0c0p-14
#define IG_EXPF_C4 0x1.3b2ab6fba4e77p-19
#define IG_EXPF_C5 0x1.5d87fe78a6731p-25

/* 2^(j/8), j = 0..7 */
static const double ig_expf_table[8] = {
    0x1.0000000000000p+0, 0x1.172b83c7d517bp+0, 0x1.306fe0a31b715p+0, 0x1.4bfdad5362a27p+0,
    0x1.6a09e667f3bcdp+0, 0x1.8ace5422aa0dbp+0, 0x1.ae89f995ad3adp+0, 0x1.d5818dcfba487p+0,
};

static inline float ig_expf(float x) {
    if (x != x) return x + x;
    const float c = x < IG_EXPF_LO ? IG_EXPF_LO : x > IG_EXPF_HI ? IG_EXPF_HI : x;
    const double z = (double)c * IG_EXPF_INV_LN2_8;
    const double big = z + IG_EXPF_SHIFT;
    const double r = z - (big - IG_EXPF_SHIFT);
    uint64_t kb;
    memcpy(&kb, &big, sizeof kb);
    double p = fma(IG_EXPF_C5, r, IG_EXPF_C4);
    p = fma(p, r, IG_EXPF_C3);
    p = fma(p, r, IG_EXPF_C2);
    p = fma(p, r, IG_EXPF_C1);
    p = fma(p, r, 1.0);
    double y = p * ig_expf_table[kb & 7];
    uint64_t yb;
    memcpy(&yb, &y, sizeof yb);
    /* k = (z rounded) >> 3, arithmetic; the bias bits cancel in the subtraction */
    const int64_t zi = (int64_t)(kb - IG_EXPF_SHIFT_BITS);
    yb += (uint64_t)(zi >> 3) << 52;
    memcpy(&y, &yb, sizeof y);
    return (float)y;
}

#endif
