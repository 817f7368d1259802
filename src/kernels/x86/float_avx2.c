/*
 * float_avx2.c: AVX2 + FMA + F16C kernels for float weights: f16 (f16
 * activations), bf16 (bf16 activations) and f32 (f32 activations):
 * vec_dot_q, a gemm_q tile, and the f32 -> f16 / bf16 activation converters.
 * Compiled with the AVX2 flags (CMakeLists.txt); only reached through
 * kernels/dot.c.
 *
 * Arithmetic (the same for vec_dot_q and every tile shape, which is what
 * makes the matmul batch invariant): each (row, token) pair has ONE 8-lane
 * f32 accumulator; lane l sums, in order of k, the products of elements
 * k = l (mod 8) with a fused multiply-add (f16 and bf16 are widened to f32
 * exactly first); a last partial step of 8 reads zero-padded copies; then
 * the lanes are summed as (hi128 + lo128), then pairs, then the last two.
 * That is the order of llama.cpp's AVX2 tinyBLAS kernels for float weights.
 * It differs from the scalar reference (sum in double) by f32 rounding: at
 * most about (n / 8 + 3) * 2^-24 * sum |w_k x_k| (tests/unit/test_kernels_float.c).
 *
 * Tiles: the accumulators of TILE_R rows x TILE_C tokens live in the 16
 * registers; per 8-element step each weight and activation vector is loaded
 * (and widened) once, then TILE_R * TILE_C FMAs. Edges use smaller instances.
 */
#include <immintrin.h>
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "base/cpu.h"
#include "kernels/dot.h"
#include "tensor/types.h"

#define AI static inline __attribute__((always_inline))

enum { KIND_F16, KIND_BF16, KIND_F32 };

/* 8 elements at p (element index k) widened to f32. */
AI __m256 load8(int kind, const void *p, int64_t k) {
    switch (kind) {
    case KIND_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + k)));
    case KIND_BF16:
        return _mm256_castsi256_ps(_mm256_slli_epi32(
            _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + k))),
            16));
    default:
        return _mm256_loadu_ps((const float *)p + k);
    }
}

/* The last partial step: the remaining `left` (< 8) elements, zero-padded. */
AI __m256 load8_tail(int kind, const void *p, int64_t k, int left) {
    if (kind == KIND_F32) {
        float buf[8] = {0};
        memcpy(buf, (const float *)p + k, (size_t)left * 4);
        return _mm256_loadu_ps(buf);
    }
    uint16_t buf[8] = {0};
    memcpy(buf, (const uint16_t *)p + k, (size_t)left * 2);
    return load8(kind, buf, 0);
}

AI float hsum8(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_extractf128_ps(v, 1), _mm256_castps256_ps128(v));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/* y[c * ldy + r] for r < RM, c < RN (RM, RN constants after inlining). */
AI void tile(const int kind, const int RM, const int RN, int64_t n, const uint8_t *w, size_t wrb,
             const uint8_t *x, size_t xrb, float *y, size_t ldy) {
    __m256 acc[4][4];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) acc[i][j] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 wv[4];
        for (int i = 0; i < RM; i++) wv[i] = load8(kind, w + i * wrb, k);
        for (int j = 0; j < RN; j++) {
            const __m256 xv = load8(kind, x + j * xrb, k);
            for (int i = 0; i < RM; i++) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    if (k < n) {
        const int left = (int)(n - k);
        __m256 wv[4];
        for (int i = 0; i < RM; i++) wv[i] = load8_tail(kind, w + i * wrb, k, left);
        for (int j = 0; j < RN; j++) {
            const __m256 xv = load8_tail(kind, x + j * xrb, k, left);
            for (int i = 0; i < RM; i++) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    for (int j = 0; j < RN; j++)
        for (int i = 0; i < RM; i++) y[j * ldy + i] = hsum8(acc[i][j]);
}

enum { TILE_R = 3, TILE_C = 4 };

AI void gemm_generic(const int kind, int64_t n, const void *w_, size_t wrb, int nr, const void *xq_,
                     size_t xrb, int nc, float *y, size_t ldy) {
    const uint8_t *w = w_, *xq = xq_;
    int r = 0;
    if (nc == 1) /* a single token (decode): 4 rows at a time, 4 independent chains */
        for (; r + 4 <= nr; r += 4) tile(kind, 4, 1, n, w + r * wrb, wrb, xq, xrb, y + r, ldy);
    for (; r < nr; r += TILE_R) {
        const uint8_t *wr = w + r * wrb;
        const int rm = nr - r < TILE_R ? nr - r : TILE_R;
        for (int c = 0; c < nc; c += TILE_C) {
            const int rn = nc - c < TILE_C ? nc - c : TILE_C;
            const uint8_t *xc = xq + c * xrb;
            float *yc = y + c * ldy + r;
            if (rm == TILE_R) {
                switch (rn) {
                case 1:
                    tile(kind, 3, 1, n, wr, wrb, xc, xrb, yc, ldy);
                    break;
                case 2:
                    tile(kind, 3, 2, n, wr, wrb, xc, xrb, yc, ldy);
                    break;
                case 3:
                    tile(kind, 3, 3, n, wr, wrb, xc, xrb, yc, ldy);
                    break;
                default:
                    tile(kind, 3, 4, n, wr, wrb, xc, xrb, yc, ldy);
                    break;
                }
            } else {
                for (int i = 0; i < rm; i++) {
                    const uint8_t *wi = wr + i * wrb;
                    switch (rn) {
                    case 1:
                        tile(kind, 1, 1, n, wi, wrb, xc, xrb, yc + i, ldy);
                        break;
                    case 2:
                        tile(kind, 1, 2, n, wi, wrb, xc, xrb, yc + i, ldy);
                        break;
                    case 3:
                        tile(kind, 1, 3, n, wi, wrb, xc, xrb, yc + i, ldy);
                        break;
                    default:
                        tile(kind, 1, 4, n, wi, wrb, xc, xrb, yc + i, ldy);
                        break;
                    }
                }
            }
        }
    }
}

/* ------------------------------------------------------------ entry points */

#define ENTRY(NAME, KIND)                                                                          \
    static float vec_dot_##NAME(const void *row, const void *xq, int64_t n) {                      \
        float y;                                                                                   \
        tile(KIND, 1, 1, n, row, 0, xq, 0, &y, 0);                                                 \
        return y;                                                                                  \
    }                                                                                              \
    static void gemm_##NAME(int64_t n, const void *w, size_t wrb, int nr, const void *xq,          \
                            size_t xrb, int nc, float *y, size_t ldy) {                            \
        gemm_generic(KIND, n, w, wrb, nr, xq, xrb, nc, y, ldy);                                    \
    }
ENTRY(f16, KIND_F16)
ENTRY(bf16, KIND_BF16)
ENTRY(f32, KIND_F32)
#undef ENTRY

/* f32 -> f16, round to nearest even: vcvtps2ph does exactly what ig_fp32_to_fp16 does (NaN
 * included). */
static void quantize_act_f16(const float *x, void *dst, int64_t n) {
    uint16_t *d = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(
            (__m128i *)(d + i),
            _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (i < n) {
        float in[8] = {0};
        uint16_t out[8];
        memcpy(in, x + i, (size_t)(n - i) * 4);
        _mm_storeu_si128(
            (__m128i *)out,
            _mm256_cvtps_ph(_mm256_loadu_ps(in), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        memcpy(d + i, out, (size_t)(n - i) * 2);
    }
}

/* f32 -> bf16 with ig_fp32_to_bf16's integer rounding (nearest even on the bits; NaN -> quiet NaN).
 */
AI __m128i bf16_round8(__m256i u) {
    const __m256i absx = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    /* absx > 0x7f800000 as signed compare is right: absx is non-negative */
    const __m256i nan = _mm256_cmpgt_epi32(absx, _mm256_set1_epi32(0x7f800000));
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))), 16);
    const __m256i q = _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40));
    r = _mm256_blendv_epi8(r, q, nan);
    /* pack the 8 low halves: packus works per 128-bit lane, then fix the lane order */
    const __m256i p = _mm256_packus_epi32(r, r);
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(p, 0x08));
}

static void quantize_act_bf16(const float *x, void *dst, int64_t n) {
    uint16_t *d = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(d + i),
                         bf16_round8(_mm256_loadu_si256((const __m256i *)(x + i))));
    if (i < n) {
        float in[8] = {0};
        uint16_t out[8];
        memcpy(in, x + i, (size_t)(n - i) * 4);
        _mm_storeu_si128((__m128i *)out, bf16_round8(_mm256_loadu_si256((const __m256i *)in)));
        memcpy(d + i, out, (size_t)(n - i) * 2);
    }
}

void ig__dot_register_float_avx2(ig_dot_kernel *table) {
    table[IG_TYPE_F16].vec_dot_q = vec_dot_f16;
    table[IG_TYPE_F16].gemm_q = gemm_f16;
    table[IG_TYPE_F16].quantize_act = quantize_act_f16;
    table[IG_TYPE_BF16].vec_dot_q = vec_dot_bf16;
    table[IG_TYPE_BF16].gemm_q = gemm_bf16;
    table[IG_TYPE_BF16].quantize_act = quantize_act_bf16;
    table[IG_TYPE_F32].vec_dot_q = vec_dot_f32;
    table[IG_TYPE_F32].gemm_q = gemm_f32;
}
