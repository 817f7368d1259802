/*
 * quant_ref.c: portable reference kernels (dequantize, quantize, dot) for
 * GGML's weight types. These are the oracle every fast kernel is tested
 * against, so they favour clarity over speed.
 *
 * Block layouts (little-endian; "f16" is an IEEE half; value index i counts
 * from 0 within the block; sub-block scales always cover contiguous runs of
 * output values):
 *
 *   q8_0  (32 values, 34 B): f16 d; int8 qs[32].
 *         v[i] = d * qs[i].
 *   q4_0  (32, 18 B): f16 d; uint8 qs[16].
 *         q[i] = low nibble of qs[i] for i < 16, high nibble of qs[i-16]
 *         for i >= 16.  v[i] = d * (q[i] - 8).
 *   q4_1  (32, 20 B): f16 d, m; uint8 qs[16]. Nibbles as q4_0.
 *         v[i] = d * q[i] + m.
 *   q5_0  (32, 22 B): f16 d; uint8 qh[4]; uint8 qs[16]. Low 4 bits as
 *         q4_0; bit 4 of q[i] is bit i of the little-endian uint32 qh.
 *         v[i] = d * (q[i] - 16).
 *   q5_1  (32, 24 B): f16 d, m; uint8 qh[4]; uint8 qs[16]. Bits as q5_0.
 *         v[i] = d * q[i] + m.
 *
 * The K-quants hold 256 values ("super-block") in sub-blocks of 16 or 32.
 *
 *   q2_K  (84 B): uint8 scales[16]; uint8 qs[64]; f16 d, dmin.
 *         16 sub-blocks of 16: scales[s] = sc | (mn << 4), 4 bits each.
 *         i = 128*h + 32*j + l (h < 2, j < 4, l < 32):
 *         q[i] = (qs[32*h + l] >> (2*j)) & 3, sub-block s = i / 16,
 *         v[i] = d * sc[s] * q[i] - dmin * mn[s].
 *   q3_K  (110 B): uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; f16 d.
 *         16 sub-blocks of 16 with signed 6-bit scales sc[s] (stored +32):
 *         low 4 bits of sc[s] are the low nibble of scales[s] (s < 8) or
 *         the high nibble of scales[s-8] (s >= 8); its top 2 bits are bits
 *         2*(s/4) .. 2*(s/4)+1 of scales[8 + s%4].
 *         i = 128*h + 32*j + l: low 2 bits (qs[32*h + l] >> (2*j)) & 3,
 *         high bit = bit (4*h + j) of hmask[l];
 *         q[i] = low2 + 4*high - 4 (in -4..3), v[i] = d * (sc[i/16]-32) * q[i].
 *   q4_K  (144 B): f16 d, dmin; uint8 scales[12]; uint8 qs[128].
 *         8 sub-blocks of 32 with 6-bit scale sc[s] and min mn[s]:
 *         s < 4:  sc = scales[s] & 63,   mn = scales[s+4] & 63;
 *         s >= 4: sc = (scales[s+4] & 15) | (scales[s-4] >> 6) << 4,
 *                 mn = (scales[s+4] >> 4) | (scales[s]   >> 6) << 4.
 *         i = 64*c + 32*t + l (c < 4, t < 2, l < 32): q[i] is the low
 *         (t = 0) or high (t = 1) nibble of qs[32*c + l]; s = i / 32.
 *         v[i] = d * sc[s] * q[i] - dmin * mn[s].
 *   q5_K  (176 B): f16 d, dmin; uint8 scales[12]; uint8 qh[32]; qs[128].
 *         As q4_K, plus bit 4 of q[i] = bit (2*c + t) of qh[l]. q in 0..31.
 *   q6_K  (210 B): uint8 ql[128]; uint8 qh[64]; int8 scales[16]; f16 d.
 *         i = 128*h + 32*k + l (h < 2, k < 4, l < 32): low 4 bits of q[i]
 *         are the low (k = 0, 1) or high (k = 2, 3) nibble of
 *         ql[64*h + 32*(k & 1) + l]; bits 4-5 are bits 2*k .. 2*k+1 of
 *         qh[32*h + l].  v[i] = d * scales[i/16] * (q[i] - 32).
 *   q8_K  (292 B): float d; int8 qs[256]; int16 bsums[16].
 *         v[i] = d * qs[i]; bsums[g] = sum of qs[16*g .. 16*g+15].
 *
 * Quantizers: each sub-block's scale (and min) is chosen by a small search
 * over candidate scales with a least-squares refit, minimising the plain
 * squared error of the block; the super-block scales are then rounded to
 * their stored precision and the values re-quantized with the scales exactly
 * as they will be decoded. They do not reproduce llama.cpp's bytes.
 *
 * vec_dot: every value is decoded exactly as to_float decodes it (a float),
 * multiplied by x in double and accumulated in double; the sum is rounded to
 * float once at the end.
 */
#include "tensor/quant_ref.h"

#include <math.h>
#include <string.h>

#include "tensor/blocks.h"
#include "tensor/fp16.h"

#define QK   IG_QK
#define QK_K IG_QK_K

/* The layouts live in blocks.h (shared with the fast kernels). */
typedef ig_block_q8_0 block_q8_0;
typedef ig_block_q4_0 block_q4_0;
typedef ig_block_q4_1 block_q4_1;
typedef ig_block_q5_0 block_q5_0;
typedef ig_block_q5_1 block_q5_1;
typedef ig_block_q2_K block_q2_K;
typedef ig_block_q3_K block_q3_K;
typedef ig_block_q4_K block_q4_K;
typedef ig_block_q5_K block_q5_K;
typedef ig_block_q6_K block_q6_K;
typedef ig_block_q8_K block_q8_K;

/* ---------------------------------------------------------------- helpers */

static inline int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Round to nearest (halves away from zero), saturating far outside int range. */
static inline int roundi(float v) {
    if (!(v > -1e9f)) return -1000000000; /* also catches NaN */
    if (v > 1e9f) return 1000000000;
    return (int)lroundf(v);
}

/* Half-precision round trip: the value a stored f16 will decode to. */
static inline float f16_round(float v) {
    return ig_fp16_to_fp32(ig_fp32_to_fp16(v));
}

/*
 * Best scale for x ~= s * q with integer q in [qmin, qmax], qmin < 0 < qmax.
 * Tries scales that put the largest-magnitude value at or near qmin (that
 * side has one more level), refits s by least squares for the chosen q, and
 * keeps the pair with the smallest squared error after re-quantizing.
 */
static float fit_sym(const float *x, int n, int qmin, int qmax) {
    float amax = 0, vmax = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            vmax = x[i];
        }
    }
    if (amax == 0) return 0;
    float best_s = vmax / (float)qmin, best_err = INFINITY;
    for (int k = -10; k <= 10; k++) {
        float iscale = ((float)qmin - 0.1f * (float)k) / vmax;
        double sqx = 0, sqq = 0;
        for (int i = 0; i < n; i++) {
            int q = clampi(roundi(iscale * x[i]), qmin, qmax);
            sqx += (double)q * x[i];
            sqq += (double)q * q;
        }
        if (sqq == 0) continue;
        float cands[2] = {1.0f / iscale, (float)(sqx / sqq)};
        for (int c = 0; c < 2; c++) {
            float s = cands[c];
            if (s == 0 || !isfinite(s)) continue;
            double err = 0;
            for (int i = 0; i < n; i++) {
                int q = clampi(roundi(x[i] / s), qmin, qmax);
                double e = (double)s * q - x[i];
                err += e * e;
            }
            if (err < best_err) {
                best_err = (float)err;
                best_s = s;
            }
        }
    }
    return best_s;
}

/*
 * Best (s, b) for x ~= s * q + b with integer q in [0, qmax] and s >= 0.
 * When `nonpos_offset` is set, b is kept <= 0 (the K-quants store it as a
 * non-negative min that is subtracted). Candidate ranges around
 * [min(x), max(x)] are tried, each refitted by least squares.
 */
static void fit_asym(const float *x, int n, int qmax, int nonpos_offset, float *s_out,
                     float *b_out) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    if (nonpos_offset && lo > 0) lo = 0;
    if (!(hi > lo)) {
        *s_out = 0;
        *b_out = lo;
        return;
    }
    float best_s = (hi - lo) / (float)qmax, best_b = lo;
    double best_err = INFINITY;
    for (int k = -10; k <= 20; k++) {
        float iscale = ((float)qmax + 0.1f * (float)k) / (hi - lo);
        if (!(iscale > 0)) continue;
        double sq = 0, sqq = 0, sx = 0, sqx = 0;
        for (int i = 0; i < n; i++) {
            int q = clampi(roundi(iscale * (x[i] - lo)), 0, qmax);
            sq += q;
            sqq += (double)q * q;
            sx += x[i];
            sqx += (double)q * x[i];
        }
        float cs[2] = {1.0f / iscale, 0}, cb[2] = {lo, 0};
        double det = n * sqq - sq * sq;
        int nc = 1;
        if (det > 0) {
            double s = (n * sqx - sq * sx) / det;
            double b = (sqq * sx - sq * sqx) / det;
            if (nonpos_offset && b > 0) {
                b = 0;
                s = sqx / sqq;
            }
            if (s > 0) {
                cs[1] = (float)s;
                cb[1] = (float)b;
                nc = 2;
            }
        }
        for (int c = 0; c < nc; c++) {
            double err = 0;
            for (int i = 0; i < n; i++) {
                int q = clampi(roundi((x[i] - cb[c]) / cs[c]), 0, qmax);
                double e = (double)cs[c] * q + cb[c] - x[i];
                err += e * e;
            }
            if (err < best_err) {
                best_err = err;
                best_s = cs[c];
                best_b = cb[c];
            }
        }
    }
    *s_out = best_s;
    *b_out = best_b;
}

/* q = round(v / s) clamped to [lo, hi]; 0 clamped when s is 0. */
static inline int quant1(float v, float s, int lo, int hi) {
    return clampi(s != 0 ? roundi(v / s) : 0, lo, hi);
}

/* q = round((v + m) / s) clamped to [0, hi] (decoded as s*q - m). */
static inline int quant1m(float v, float s, float m, int hi) {
    return clampi(s != 0 ? roundi((v + m) / s) : 0, 0, hi);
}

/* Exact dot of the decoded row with x: decode a block at a time. */
#define DEFINE_VEC_DOT(t, BLK, BYTES)                                                              \
    float ig_vec_dot_##t(const void *row, const float *x, int64_t n) {                             \
        const uint8_t *p = row;                                                                    \
        float buf[BLK];                                                                            \
        double sum = 0;                                                                            \
        for (int64_t b = 0; b < n / (BLK); b++) {                                                  \
            ig_to_float_##t(p + (size_t)b * (BYTES), buf, BLK);                                    \
            for (int i = 0; i < (BLK); i++) sum += (double)buf[i] * x[b * (BLK) + i];              \
        }                                                                                          \
        return (float)sum;                                                                         \
    }

/* ------------------------------------------------------------ plain floats */

void ig_to_float_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}
void ig_from_float_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}
float ig_vec_dot_f32(const void *row, const float *x, int64_t n) {
    const float *r = row;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)r[i] * x[i];
    return (float)sum;
}

void ig_to_float_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = ig_fp16_to_fp32(s[i]);
}
void ig_from_float_f16(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = ig_fp32_to_fp16(src[i]);
}
float ig_vec_dot_f16(const void *row, const float *x, int64_t n) {
    const uint16_t *r = row;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)ig_fp16_to_fp32(r[i]) * x[i];
    return (float)sum;
}

void ig_to_float_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = ig_bf16_to_fp32(s[i]);
}
void ig_from_float_bf16(const float *src, void *dst, int64_t n) {
    uint16_t *d = dst;
    for (int64_t i = 0; i < n; i++) d[i] = ig_fp32_to_bf16(src[i]);
}
float ig_vec_dot_bf16(const void *row, const float *x, int64_t n) {
    const uint16_t *r = row;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)ig_bf16_to_fp32(r[i]) * x[i];
    return (float)sum;
}

/* -------------------------------------------------------------------- q8_0 */

void ig_to_float_q8_0(const void *src, float *dst, int64_t n) {
    const block_q8_0 *b = src;
    for (int64_t k = 0; k < n / QK; k++, b++, dst += QK) {
        float d = ig_fp16_to_fp32(b->d);
        for (int i = 0; i < QK; i++) dst[i] = d * (float)b->qs[i];
    }
}

/* Symmetric in [-127, 127] (never -128, so fast kernels may take abs()). */
void ig_from_float_q8_0(const float *src, void *dst, int64_t n) {
    block_q8_0 *b = dst;
    for (int64_t k = 0; k < n / QK; k++, b++, src += QK) {
        float amax = 0;
        for (int i = 0; i < QK; i++) amax = fmaxf(amax, fabsf(src[i]));
        b->d = ig_fp32_to_fp16(amax / 127.0f);
        float d = ig_fp16_to_fp32(b->d);
        for (int i = 0; i < QK; i++) b->qs[i] = (int8_t)quant1(src[i], d, -127, 127);
    }
}
DEFINE_VEC_DOT(q8_0, QK, sizeof(block_q8_0))

/* -------------------------------------------------------------------- q4_0 */

void ig_to_float_q4_0(const void *src, float *dst, int64_t n) {
    const block_q4_0 *b = src;
    for (int64_t k = 0; k < n / QK; k++, b++, dst += QK) {
        float d = ig_fp16_to_fp32(b->d);
        for (int j = 0; j < QK / 2; j++) {
            dst[j] = d * (float)((b->qs[j] & 0x0f) - 8);
            dst[j + QK / 2] = d * (float)((b->qs[j] >> 4) - 8);
        }
    }
}
void ig_from_float_q4_0(const float *src, void *dst, int64_t n) {
    block_q4_0 *b = dst;
    for (int64_t k = 0; k < n / QK; k++, b++, src += QK) {
        b->d = ig_fp32_to_fp16(fit_sym(src, QK, -8, 7));
        float d = ig_fp16_to_fp32(b->d);
        for (int j = 0; j < QK / 2; j++) {
            int lo = quant1(src[j], d, -8, 7) + 8;
            int hi = quant1(src[j + QK / 2], d, -8, 7) + 8;
            b->qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}
DEFINE_VEC_DOT(q4_0, QK, sizeof(block_q4_0))

/* -------------------------------------------------------------------- q4_1 */

void ig_to_float_q4_1(const void *src, float *dst, int64_t n) {
    const block_q4_1 *b = src;
    for (int64_t k = 0; k < n / QK; k++, b++, dst += QK) {
        float d = ig_fp16_to_fp32(b->d), m = ig_fp16_to_fp32(b->m);
        for (int j = 0; j < QK / 2; j++) {
            dst[j] = d * (float)(b->qs[j] & 0x0f) + m;
            dst[j + QK / 2] = d * (float)(b->qs[j] >> 4) + m;
        }
    }
}
void ig_from_float_q4_1(const float *src, void *dst, int64_t n) {
    block_q4_1 *b = dst;
    for (int64_t k = 0; k < n / QK; k++, b++, src += QK) {
        float s, off;
        fit_asym(src, QK, 15, 0, &s, &off);
        b->d = ig_fp32_to_fp16(s);
        b->m = ig_fp32_to_fp16(off);
        float d = ig_fp16_to_fp32(b->d), m = ig_fp16_to_fp32(b->m);
        for (int j = 0; j < QK / 2; j++) {
            int lo = quant1m(src[j], d, -m, 15);
            int hi = quant1m(src[j + QK / 2], d, -m, 15);
            b->qs[j] = (uint8_t)(lo | hi << 4);
        }
    }
}
DEFINE_VEC_DOT(q4_1, QK, sizeof(block_q4_1))

/* -------------------------------------------------------------------- q5_0 */

static inline uint32_t load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void store_u32le(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void ig_to_float_q5_0(const void *src, float *dst, int64_t n) {
    const block_q5_0 *b = src;
    for (int64_t k = 0; k < n / QK; k++, b++, dst += QK) {
        float d = ig_fp16_to_fp32(b->d);
        uint32_t qh = load_u32le(b->qh);
        for (int j = 0; j < QK / 2; j++) {
            int lo = (b->qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
            int hi = (b->qs[j] >> 4) | (int)((qh >> (j + QK / 2)) & 1) << 4;
            dst[j] = d * (float)(lo - 16);
            dst[j + QK / 2] = d * (float)(hi - 16);
        }
    }
}
void ig_from_float_q5_0(const float *src, void *dst, int64_t n) {
    block_q5_0 *b = dst;
    for (int64_t k = 0; k < n / QK; k++, b++, src += QK) {
        b->d = ig_fp32_to_fp16(fit_sym(src, QK, -16, 15));
        float d = ig_fp16_to_fp32(b->d);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            int lo = quant1(src[j], d, -16, 15) + 16;
            int hi = quant1(src[j + QK / 2], d, -16, 15) + 16;
            b->qs[j] = (uint8_t)((lo & 0x0f) | (hi & 0x0f) << 4);
            qh |= (uint32_t)(lo >> 4) << j | (uint32_t)(hi >> 4) << (j + QK / 2);
        }
        store_u32le(b->qh, qh);
    }
}
DEFINE_VEC_DOT(q5_0, QK, sizeof(block_q5_0))

/* -------------------------------------------------------------------- q5_1 */

void ig_to_float_q5_1(const void *src, float *dst, int64_t n) {
    const block_q5_1 *b = src;
    for (int64_t k = 0; k < n / QK; k++, b++, dst += QK) {
        float d = ig_fp16_to_fp32(b->d), m = ig_fp16_to_fp32(b->m);
        uint32_t qh = load_u32le(b->qh);
        for (int j = 0; j < QK / 2; j++) {
            int lo = (b->qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
            int hi = (b->qs[j] >> 4) | (int)((qh >> (j + QK / 2)) & 1) << 4;
            dst[j] = d * (float)lo + m;
            dst[j + QK / 2] = d * (float)hi + m;
        }
    }
}
void ig_from_float_q5_1(const float *src, void *dst, int64_t n) {
    block_q5_1 *b = dst;
    for (int64_t k = 0; k < n / QK; k++, b++, src += QK) {
        float s, off;
        fit_asym(src, QK, 31, 0, &s, &off);
        b->d = ig_fp32_to_fp16(s);
        b->m = ig_fp32_to_fp16(off);
        float d = ig_fp16_to_fp32(b->d), m = ig_fp16_to_fp32(b->m);
        uint32_t qh = 0;
        for (int j = 0; j < QK / 2; j++) {
            int lo = quant1m(src[j], d, -m, 31);
            int hi = quant1m(src[j + QK / 2], d, -m, 31);
            b->qs[j] = (uint8_t)((lo & 0x0f) | (hi & 0x0f) << 4);
            qh |= (uint32_t)(lo >> 4) << j | (uint32_t)(hi >> 4) << (j + QK / 2);
        }
        store_u32le(b->qh, qh);
    }
}
DEFINE_VEC_DOT(q5_1, QK, sizeof(block_q5_1))

/* ------------------------------------------------- K-quant shared helpers */

/*
 * Fit each of `nsub` sub-blocks of `len` values as s*q - m with q in
 * [0, qmax], then round the scales and mins to `levels`-step unsigned
 * integers of the super-block's f16 d and dmin. Writes the integer scales
 * and mins and the stored d, dmin; values are quantized later against the
 * decoded scales.
 */
static void fit_super_asym(const float *x, int nsub, int len, int qmax, int levels, uint8_t *ls,
                           uint8_t *lm, uint16_t *d_out, uint16_t *dmin_out) {
    float s[16], m[16], smax = 0, mmax = 0;
    for (int j = 0; j < nsub; j++) {
        float b;
        fit_asym(x + j * len, len, qmax, 1, &s[j], &b);
        m[j] = -b;
        smax = fmaxf(smax, s[j]);
        mmax = fmaxf(mmax, m[j]);
    }
    float d = f16_round(smax / (float)levels), dmin = f16_round(mmax / (float)levels);
    *d_out = ig_fp32_to_fp16(d);
    *dmin_out = ig_fp32_to_fp16(dmin);
    for (int j = 0; j < nsub; j++) {
        ls[j] = (uint8_t)quant1(s[j], d, 0, levels);
        lm[j] = (uint8_t)quant1(m[j], dmin, 0, levels);
    }
}

/*
 * Fit each sub-block as s*q with q in [qmin, qmax], then round the (signed)
 * scales to integers in [lmin, lmax] of the super-block's f16 d.
 */
static void fit_super_sym(const float *x, int nsub, int len, int qmin, int qmax, int lmin, int lmax,
                          int *ls, uint16_t *d_out) {
    float s[16];
    for (int j = 0; j < nsub; j++) s[j] = fit_sym(x + j * len, len, qmin, qmax);
    float d = f16_round(fit_sym(s, nsub, lmin, lmax));
    *d_out = ig_fp32_to_fp16(d);
    for (int j = 0; j < nsub; j++) ls[j] = quant1(s[j], d, lmin, lmax);
}

/* -------------------------------------------------------------------- q2_K */

void ig_to_float_q2_K(const void *src, float *dst, int64_t n) {
    const block_q2_K *b = src;
    for (int64_t k = 0; k < n / QK_K; k++, b++, dst += QK_K) {
        float d = ig_fp16_to_fp32(b->d), dmin = ig_fp16_to_fp32(b->dmin);
        for (int s = 0; s < 16; s++) { /* values 16s .. 16s+15 */
            float dl = d * (float)(b->scales[s] & 0x0f), ml = dmin * (float)(b->scales[s] >> 4);
            const uint8_t *q = b->qs + 32 * (s / 8) + 16 * (s % 2);
            int shift = 2 * ((s / 2) % 4);
            for (int l = 0; l < 16; l++) dst[16 * s + l] = dl * (float)((q[l] >> shift) & 3) - ml;
        }
    }
}
void ig_from_float_q2_K(const float *src, void *dst, int64_t n) {
    block_q2_K *b = dst;
    for (int64_t k = 0; k < n / QK_K; k++, b++, src += QK_K) {
        uint8_t ls[16], lm[16];
        fit_super_asym(src, 16, 16, 3, 15, ls, lm, &b->d, &b->dmin);
        float d = ig_fp16_to_fp32(b->d), dmin = ig_fp16_to_fp32(b->dmin);
        memset(b->qs, 0, sizeof b->qs);
        for (int s = 0; s < 16; s++) b->scales[s] = (uint8_t)(ls[s] | lm[s] << 4);
        for (int i = 0; i < QK_K; i++) {
            int s = i / 16, h = i / 128, j = (i / 32) % 4, l = i % 32;
            int q = quant1m(src[i], d * (float)ls[s], dmin * (float)lm[s], 3);
            b->qs[32 * h + l] |= (uint8_t)(q << (2 * j));
        }
    }
}
DEFINE_VEC_DOT(q2_K, QK_K, sizeof(block_q2_K))

/* -------------------------------------------------------------------- q3_K */

/* Signed scale of sub-block s (see the layout comment), in -32..31. */
static inline int q3_K_scale(const uint8_t *scales, int s) {
    int lo = s < 8 ? scales[s] & 0x0f : scales[s - 8] >> 4;
    int hi = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    return (lo | hi << 4) - 32;
}

void ig_to_float_q3_K(const void *src, float *dst, int64_t n) {
    const block_q3_K *b = src;
    for (int64_t k = 0; k < n / QK_K; k++, b++, dst += QK_K) {
        float d = ig_fp16_to_fp32(b->d);
        for (int s = 0; s < 16; s++) { /* values 16s .. 16s+15 */
            float dl = d * (float)q3_K_scale(b->scales, s);
            const uint8_t *q = b->qs + 32 * (s / 8) + 16 * (s % 2);
            const uint8_t *hm = b->hmask + 16 * (s % 2);
            int shift = 2 * ((s / 2) % 4), hbit = s / 2; /* hbit = 4*h + j */
            for (int l = 0; l < 16; l++) {
                int lo = (q[l] >> shift) & 3, hb = (hm[l] >> hbit) & 1;
                dst[16 * s + l] = dl * (float)(lo + 4 * hb - 4);
            }
        }
    }
}
void ig_from_float_q3_K(const float *src, void *dst, int64_t n) {
    block_q3_K *b = dst;
    for (int64_t k = 0; k < n / QK_K; k++, b++, src += QK_K) {
        int ls[16];
        fit_super_sym(src, 16, 16, -4, 3, -32, 31, ls, &b->d);
        float d = ig_fp16_to_fp32(b->d);
        memset(b->scales, 0, sizeof b->scales);
        for (int s = 0; s < 16; s++) {
            int u = ls[s] + 32;
            if (s < 8)
                b->scales[s] |= (uint8_t)(u & 0x0f);
            else
                b->scales[s - 8] |= (uint8_t)((u & 0x0f) << 4);
            b->scales[8 + s % 4] |= (uint8_t)((u >> 4) << (2 * (s / 4)));
        }
        memset(b->qs, 0, sizeof b->qs);
        memset(b->hmask, 0, sizeof b->hmask);
        for (int i = 0; i < QK_K; i++) {
            int h = i / 128, j = (i / 32) % 4, l = i % 32;
            int u = quant1(src[i], d * (float)ls[i / 16], -4, 3) + 4;
            b->qs[32 * h + l] |= (uint8_t)((u & 3) << (2 * j));
            b->hmask[l] |= (uint8_t)((u >> 2) << (4 * h + j));
        }
    }
}
DEFINE_VEC_DOT(q3_K, QK_K, sizeof(block_q3_K))

/* ------------------------------------------------------------- q4_K, q5_K */

/* 6-bit scale and min of sub-block s from the 12 packed bytes. */
static inline void k4_scale_min(const uint8_t *q, int s, int *sc, int *mn) {
    if (s < 4) {
        *sc = q[s] & 63;
        *mn = q[s + 4] & 63;
    } else {
        *sc = (q[s + 4] & 0x0f) | (q[s - 4] >> 6) << 4;
        *mn = (q[s + 4] >> 4) | (q[s] >> 6) << 4;
    }
}
static void k4_pack_scale_min(uint8_t *q, const uint8_t *ls, const uint8_t *lm) {
    for (int s = 0; s < 4; s++) {
        q[s] = (uint8_t)(ls[s] | (ls[s + 4] >> 4) << 6);
        q[s + 4] = (uint8_t)(lm[s] | (lm[s + 4] >> 4) << 6);
        q[s + 8] = (uint8_t)((ls[s + 4] & 0x0f) | (lm[s + 4] & 0x0f) << 4);
    }
}

void ig_to_float_q4_K(const void *src, float *dst, int64_t n) {
    const block_q4_K *b = src;
    for (int64_t k = 0; k < n / QK_K; k++, b++, dst += QK_K) {
        float d = ig_fp16_to_fp32(b->d), dmin = ig_fp16_to_fp32(b->dmin);
        for (int s = 0; s < 8; s++) { /* values 32s .. 32s+31 */
            int sc, mn;
            k4_scale_min(b->scales, s, &sc, &mn);
            float dl = d * (float)sc, ml = dmin * (float)mn;
            const uint8_t *q = b->qs + 32 * (s / 2);
            int shift = 4 * (s % 2);
            for (int l = 0; l < 32; l++)
                dst[32 * s + l] = dl * (float)((q[l] >> shift) & 0x0f) - ml;
        }
    }
}
void ig_from_float_q4_K(const float *src, void *dst, int64_t n) {
    block_q4_K *b = dst;
    for (int64_t k = 0; k < n / QK_K; k++, b++, src += QK_K) {
        uint8_t ls[8], lm[8];
        fit_super_asym(src, 8, 32, 15, 63, ls, lm, &b->d, &b->dmin);
        k4_pack_scale_min(b->scales, ls, lm);
        float d = ig_fp16_to_fp32(b->d), dmin = ig_fp16_to_fp32(b->dmin);
        memset(b->qs, 0, sizeof b->qs);
        for (int i = 0; i < QK_K; i++) {
            int s = i / 32, c = i / 64, t = (i / 32) % 2, l = i % 32;
            int q = quant1m(src[i], d * (float)ls[s], dmin * (float)lm[s], 15);
            b->qs[32 * c + l] |= (uint8_t)(q << (4 * t));
        }
    }
}
DEFINE_VEC_DOT(q4_K, QK_K, sizeof(block_q4_K))

void ig_to_float_q5_K(const void *src, float *dst, int64_t n) {
    const block_q5_K *b = src;
    for (int64_t k = 0; k < n / QK_K; k++, b++, dst += QK_K) {
        float d = ig_fp16_to_fp32(b->d), dmin = ig_fp16_to_fp32(b->dmin);
        for (int s = 0; s < 8; s++) { /* values 32s .. 32s+31; high bit = bit s of qh[l] */
            int sc, mn;
            k4_scale_min(b->scales, s, &sc, &mn);
            float dl = d * (float)sc, ml = dmin * (float)mn;
            const uint8_t *q = b->qs + 32 * (s / 2);
            int shift = 4 * (s % 2);
            for (int l = 0; l < 32; l++) {
                int v = ((q[l] >> shift) & 0x0f) | ((b->qh[l] >> s) & 1) << 4;
                dst[32 * s + l] = dl * (float)v - ml;
            }
        }
    }
}
void ig_from_float_q5_K(const float *src, void *dst, int64_t n) {
    block_q5_K *b = dst;
    for (int64_t k = 0; k < n / QK_K; k++, b++, src += QK_K) {
        uint8_t ls[8], lm[8];
        fit_super_asym(src, 8, 32, 31, 63, ls, lm, &b->d, &b->dmin);
        k4_pack_scale_min(b->scales, ls, lm);
        float d = ig_fp16_to_fp32(b->d), dmin = ig_fp16_to_fp32(b->dmin);
        memset(b->qs, 0, sizeof b->qs);
        memset(b->qh, 0, sizeof b->qh);
        for (int i = 0; i < QK_K; i++) {
            int s = i / 32, c = i / 64, t = (i / 32) % 2, l = i % 32;
            int q = quant1m(src[i], d * (float)ls[s], dmin * (float)lm[s], 31);
            b->qs[32 * c + l] |= (uint8_t)((q & 0x0f) << (4 * t));
            b->qh[l] |= (uint8_t)((q >> 4) << (2 * c + t));
        }
    }
}
DEFINE_VEC_DOT(q5_K, QK_K, sizeof(block_q5_K))

/* -------------------------------------------------------------------- q6_K */

void ig_to_float_q6_K(const void *src, float *dst, int64_t n) {
    const block_q6_K *b = src;
    for (int64_t k = 0; k < n / QK_K; k++, b++, dst += QK_K) {
        float d = ig_fp16_to_fp32(b->d);
        for (int s = 0; s < 16; s++) { /* values 16s .. 16s+15 */
            int h = s / 8, kq = (s / 2) % 4, l0 = 16 * (s % 2);
            float dl = d * (float)b->scales[s];
            const uint8_t *ql = b->ql + 64 * h + 32 * (kq & 1) + l0;
            const uint8_t *qh = b->qh + 32 * h + l0;
            int lshift = 4 * (kq >> 1), hshift = 2 * kq;
            for (int l = 0; l < 16; l++) {
                int v = ((ql[l] >> lshift) & 0x0f) | ((qh[l] >> hshift) & 3) << 4;
                dst[16 * s + l] = dl * (float)(v - 32);
            }
        }
    }
}
void ig_from_float_q6_K(const float *src, void *dst, int64_t n) {
    block_q6_K *b = dst;
    for (int64_t k = 0; k < n / QK_K; k++, b++, src += QK_K) {
        int ls[16];
        fit_super_sym(src, 16, 16, -32, 31, -128, 127, ls, &b->d);
        float d = ig_fp16_to_fp32(b->d);
        for (int s = 0; s < 16; s++) b->scales[s] = (int8_t)ls[s];
        memset(b->ql, 0, sizeof b->ql);
        memset(b->qh, 0, sizeof b->qh);
        for (int i = 0; i < QK_K; i++) {
            int h = i / 128, kq = (i / 32) % 4, l = i % 32;
            int u = quant1(src[i], d * (float)ls[i / 16], -32, 31) + 32;
            b->ql[64 * h + 32 * (kq & 1) + l] |= (uint8_t)((u & 0x0f) << (4 * (kq >> 1)));
            b->qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * kq));
        }
    }
}
DEFINE_VEC_DOT(q6_K, QK_K, sizeof(block_q6_K))

/* -------------------------------------------------------------------- q8_K */

void ig_to_float_q8_K(const void *src, float *dst, int64_t n) {
    const block_q8_K *b = src;
    for (int64_t k = 0; k < n / QK_K; k++, b++, dst += QK_K) {
        for (int i = 0; i < QK_K; i++) dst[i] = b->d * (float)b->qs[i];
    }
}

/* Symmetric in [-127, 127] with a float scale; bsums filled for fast kernels. */
void ig_from_float_q8_K(const float *src, void *dst, int64_t n) {
    block_q8_K *b = dst;
    for (int64_t k = 0; k < n / QK_K; k++, b++, src += QK_K) {
        float amax = 0;
        for (int i = 0; i < QK_K; i++) amax = fmaxf(amax, fabsf(src[i]));
        b->d = amax / 127.0f;
        for (int i = 0; i < QK_K; i++) b->qs[i] = (int8_t)quant1(src[i], b->d, -127, 127);
        for (int g = 0; g < QK_K / 16; g++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += b->qs[16 * g + i];
            b->bsums[g] = (int16_t)sum;
        }
    }
}
DEFINE_VEC_DOT(q8_K, QK_K, sizeof(block_q8_K))
