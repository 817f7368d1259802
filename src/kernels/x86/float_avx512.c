/*
 * float_avx512.c: AVX-512 kernels for float weights: f16 (f16 activations),
 * bf16 (bf16 activations) and f32 (f32 activations): vec_dot_q, a gemm_q
 * tile, and the f32 -> f16 / bf16 activation converters. Compiled with the
 * AVX-512 flags (CMakeLists.txt); only reached through kernels/dot.c.
 *
 * Arithmetic (the same for vec_dot_q and every tile shape, which is what
 * makes the matmul batch invariant): each (row, token) pair has ONE 16-lane
 * f32 accumulator; lane l sums, in order of k, the products of elements
 * k = l (mod 16) with a fused multiply-add (f16 and bf16 are widened to f32
 * exactly first; a product of two halves or two bfloat16 is exact in f32);
 * a last partial step of 16 uses zero-masked loads (adding 0 * 0 changes
 * nothing); then the 16 lanes are summed by _mm512_reduce_add_ps. With the
 * AVX512-BF16 extension, bf16 uses vdpbf16ps instead: lane l accumulates the
 * pairs (2l, 2l + 1) of each 32-element step. This is the order llama.cpp's
 * x86 build uses for float weights with a batch of tokens (its tinyBLAS
 * kernels: one vector accumulator per output, fma or vdpbf16ps, then a
 * horizontal sum), so prompt logits agree with it closely; it differs from
 * the scalar reference (sum in double) by f32 rounding: at most about
 * (n / 16 + 4) * 2^-24 * sum |w_k x_k| (tests/unit/test_kernels_float.c).
 *
 * Tiles: the accumulators of TILE_R rows x TILE_C tokens live in registers;
 * per 16-element step each of the TILE_R weight vectors and TILE_C
 * activation vectors is loaded (and widened) once, then TILE_R * TILE_C
 * FMAs. Edges use smaller instances of the same code.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "base/cpu.h"
#include "kernels/dot.h"
#include "tensor/types.h"

#define AI static inline __attribute__((always_inline))

enum { KIND_F16, KIND_BF16, KIND_F32 };

/* 16 elements at p (element index k) widened to f32; `m` masks a partial step. */
AI __m512 load16(int kind, const void *p, int64_t k) {
    switch (kind) {
    case KIND_F16:
        return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + k)));
    case KIND_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)p + k))),
            16));
    default:
        return _mm512_loadu_ps((const float *)p + k);
    }
}

AI __m512 load16_mask(int kind, const void *p, int64_t k, __mmask16 m) {
    switch (kind) {
    case KIND_F16:
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + k));
    case KIND_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)p + k)), 16));
    default:
        return _mm512_maskz_loadu_ps(m, (const float *)p + k);
    }
}

/*
 * y[c * ldy + r] for r < RM, c < RN: the FMA path (all three kinds). RM and RN
 * are compile-time constants after inlining; acc stays in registers.
 */
AI void tile_fma(const int kind, const int RM, const int RN, int64_t n, const uint8_t *w,
                 size_t wrb, const uint8_t *x, size_t xrb, float *y, size_t ldy) {
    __m512 acc[8][6];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) acc[i][j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        __m512 wv[8];
        for (int i = 0; i < RM; i++) wv[i] = load16(kind, w + i * wrb, k);
        for (int j = 0; j < RN; j++) {
            const __m512 xv = load16(kind, x + j * xrb, k);
            for (int i = 0; i < RM; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    if (k < n) {
        const __mmask16 m = (__mmask16)((1u << (n - k)) - 1);
        __m512 wv[8];
        for (int i = 0; i < RM; i++) wv[i] = load16_mask(kind, w + i * wrb, k, m);
        for (int j = 0; j < RN; j++) {
            const __m512 xv = load16_mask(kind, x + j * xrb, k, m);
            for (int i = 0; i < RM; i++) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
        }
    }
    for (int j = 0; j < RN; j++)
        for (int i = 0; i < RM; i++) y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);
}

/* The vdpbf16ps path for bf16: 32 elements per step, lane l takes pairs (2l, 2l + 1). */
AI void tile_dpbf16(const int RM, const int RN, int64_t n, const uint8_t *w, size_t wrb,
                    const uint8_t *x, size_t xrb, float *y, size_t ldy) {
    __m512 acc[8][6];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) acc[i][j] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) {
        __m512bh wv[8];
        for (int i = 0; i < RM; i++)
            wv[i] = (__m512bh)_mm512_loadu_si512((const uint16_t *)(w + i * wrb) + k);
        for (int j = 0; j < RN; j++) {
            const __m512bh xv = (__m512bh)_mm512_loadu_si512((const uint16_t *)(x + j * xrb) + k);
            for (int i = 0; i < RM; i++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv[i], xv);
        }
    }
    if (k < n) {
        const __mmask32 m = (__mmask32)((1ull << (n - k)) - 1);
        __m512bh wv[8];
        for (int i = 0; i < RM; i++)
            wv[i] = (__m512bh)_mm512_maskz_loadu_epi16(m, (const uint16_t *)(w + i * wrb) + k);
        for (int j = 0; j < RN; j++) {
            const __m512bh xv =
                (__m512bh)_mm512_maskz_loadu_epi16(m, (const uint16_t *)(x + j * xrb) + k);
            for (int i = 0; i < RM; i++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], wv[i], xv);
        }
    }
    for (int j = 0; j < RN; j++)
        for (int i = 0; i < RM; i++) y[j * ldy + i] = _mm512_reduce_add_ps(acc[i][j]);
}

/* One tile of up to TILE_R x TILE_C, every edge shape a constant instance. */
enum { TILE_R = 4, TILE_C = 6 };

#define TILE_CASES(CALL)                                                                           \
    switch (rn) {                                                                                  \
    case 1:                                                                                        \
        CALL(1);                                                                                   \
        break;                                                                                     \
    case 2:                                                                                        \
        CALL(2);                                                                                   \
        break;                                                                                     \
    case 3:                                                                                        \
        CALL(3);                                                                                   \
        break;                                                                                     \
    case 4:                                                                                        \
        CALL(4);                                                                                   \
        break;                                                                                     \
    case 5:                                                                                        \
        CALL(5);                                                                                   \
        break;                                                                                     \
    default:                                                                                       \
        CALL(6);                                                                                   \
        break;                                                                                     \
    }

AI void gemm_generic(const int kind, const int dp, int64_t n, const void *w_, size_t wrb, int nr,
                     const void *xq_, size_t xrb, int nc, float *y, size_t ldy) {
    const uint8_t *w = w_, *xq = xq_;
    int r = 0;
    /* a single token (decode): 8 rows at a time, 8 independent accumulation chains */
    if (nc == 1) {
        for (; r + 8 <= nr; r += 8) {
            if (dp)
                tile_dpbf16(8, 1, n, w + r * wrb, wrb, xq, xrb, y + r, ldy);
            else
                tile_fma(kind, 8, 1, n, w + r * wrb, wrb, xq, xrb, y + r, ldy);
        }
    }
    for (; r < nr; r += TILE_R) {
        const uint8_t *wr = w + r * wrb;
        const int full = nr - r >= TILE_R;
        for (int c = 0; c < nc; c += TILE_C) {
            const int rn = nc - c < TILE_C ? nc - c : TILE_C;
            const uint8_t *xc = xq + c * xrb;
            float *yc = y + c * ldy + r;
            if (full) {
#define CALL4(RN)                                                                                  \
    if (dp)                                                                                        \
        tile_dpbf16(4, RN, n, wr, wrb, xc, xrb, yc, ldy);                                          \
    else                                                                                           \
        tile_fma(kind, 4, RN, n, wr, wrb, xc, xrb, yc, ldy)
                TILE_CASES(CALL4)
#undef CALL4
            } else {
                for (int i = r; i < nr; i++) {
#define CALL1(RN)                                                                                  \
    if (dp)                                                                                        \
        tile_dpbf16(1, RN, n, w + i * wrb, wrb, xc, xrb, yc + (i - r), ldy);                       \
    else                                                                                           \
        tile_fma(kind, 1, RN, n, w + i * wrb, wrb, xc, xrb, yc + (i - r), ldy)
                    TILE_CASES(CALL1)
#undef CALL1
                }
            }
        }
    }
}

/*
 * The blocked path for a batch (f16 and f32 weights). Going down the whole
 * row for each 4 x 6 tile streams 10 rows of n values from L2 per tile; for
 * n = 2048 that is more than L1 holds, and the loads, not the FMAs, set the
 * pace. So the tokens go in panels of TILE_C, k in blocks of KB: a panel's
 * block is widened once to f32 in `xbuf` (12 KiB, stays in L1) and every
 * row tile of up to 32 rows runs over it, its accumulators parked in `accst`
 * between blocks (12 KiB). Parking a vector and reloading it changes no bit,
 * and the blocks cut k at multiples of 16, so each pair still sees exactly
 * vec_dot_q's sequence of steps: full 16-element steps in order of k, the
 * masked partial step last, then the same horizontal sum.
 */
enum { KB = 512, ROW_GROUP = 32 };

/* RM rows x RN tokens over k in [k0, k1): acc[i * TILE_C + j] in memory on entry and exit. */
AI void ktile(const int kind, const int RM, const int RN, const uint8_t *w, size_t wrb,
              const float *const *xp, int64_t k0, int64_t k1, __m512 *acc, int first) {
    __m512 a[4][6];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) a[i][j] = first ? _mm512_setzero_ps() : acc[i * TILE_C + j];
    int64_t k = k0;
    for (; k + 16 <= k1; k += 16) {
        __m512 wv[4];
        for (int i = 0; i < RM; i++) wv[i] = load16(kind, w + i * wrb, k);
        for (int j = 0; j < RN; j++) {
            const __m512 xv = _mm512_loadu_ps(xp[j] + (k - k0));
            for (int i = 0; i < RM; i++) a[i][j] = _mm512_fmadd_ps(wv[i], xv, a[i][j]);
        }
    }
    if (k < k1) {
        const __mmask16 m = (__mmask16)((1u << (k1 - k)) - 1);
        __m512 wv[4];
        for (int i = 0; i < RM; i++) wv[i] = load16_mask(kind, w + i * wrb, k, m);
        for (int j = 0; j < RN; j++) {
            const __m512 xv = _mm512_maskz_loadu_ps(m, xp[j] + (k - k0));
            for (int i = 0; i < RM; i++) a[i][j] = _mm512_fmadd_ps(wv[i], xv, a[i][j]);
        }
    }
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) acc[i * TILE_C + j] = a[i][j];
}

AI void gemm_blocked(const int kind, int64_t n, const uint8_t *w, size_t wrb, int nr,
                     const uint8_t *xq, size_t xrb, int nc, float *y, size_t ldy) {
    _Alignas(64) float xbuf[TILE_C][KB];
    __m512 accst[ROW_GROUP * TILE_C];
    for (int c = 0; c < nc; c += TILE_C) {
        const int rn = nc - c < TILE_C ? nc - c : TILE_C;
        for (int r0 = 0; r0 < nr; r0 += ROW_GROUP) {
            const int rg = nr - r0 < ROW_GROUP ? nr - r0 : ROW_GROUP;
            for (int64_t k0 = 0; k0 < n; k0 += KB) {
                const int64_t k1 = n - k0 < KB ? n : k0 + KB;
                const float *xp[TILE_C];
                for (int j = 0; j < rn; j++) {
                    const uint8_t *xj = xq + (size_t)(c + j) * xrb;
                    if (kind == KIND_F32) {
                        xp[j] = (const float *)xj + k0;
                    } else {
                        int64_t k = k0;
                        for (; k + 16 <= k1; k += 16)
                            _mm512_store_ps(&xbuf[j][k - k0], load16(kind, xj, k));
                        if (k < k1)
                            _mm512_store_ps(
                                &xbuf[j][k - k0],
                                load16_mask(kind, xj, k, (__mmask16)((1u << (k1 - k)) - 1)));
                        xp[j] = xbuf[j];
                    }
                }
                const int first = k0 == 0;
                int r = 0;
                for (; r + 4 <= rg; r += 4) {
                    const uint8_t *wr = w + (size_t)(r0 + r) * wrb;
                    __m512 *acc = accst + r * TILE_C;
#define CALL4(RN) ktile(kind, 4, RN, wr, wrb, xp, k0, k1, acc, first)
                    TILE_CASES(CALL4)
#undef CALL4
                }
                for (; r < rg; r++) {
                    const uint8_t *wr = w + (size_t)(r0 + r) * wrb;
                    __m512 *acc = accst + r * TILE_C;
#define CALL1(RN) ktile(kind, 1, RN, wr, wrb, xp, k0, k1, acc, first)
                    TILE_CASES(CALL1)
#undef CALL1
                }
            }
            for (int j = 0; j < rn; j++)
                for (int r = 0; r < rg; r++)
                    y[(size_t)(c + j) * ldy + r0 + r] = _mm512_reduce_add_ps(accst[r * TILE_C + j]);
        }
    }
}

/* ------------------------------------------------------------ entry points */

static float vec_dot_f16(const void *row, const void *xq, int64_t n) {
    float y;
    tile_fma(KIND_F16, 1, 1, n, row, 0, xq, 0, &y, 0);
    return y;
}
static float vec_dot_bf16(const void *row, const void *xq, int64_t n) {
    float y;
    tile_fma(KIND_BF16, 1, 1, n, row, 0, xq, 0, &y, 0);
    return y;
}
static float vec_dot_bf16_dp(const void *row, const void *xq, int64_t n) {
    float y;
    tile_dpbf16(1, 1, n, row, 0, xq, 0, &y, 0);
    return y;
}
static float vec_dot_f32(const void *row, const void *xq, int64_t n) {
    float y;
    tile_fma(KIND_F32, 1, 1, n, row, 0, xq, 0, &y, 0);
    return y;
}

static void gemm_f16(int64_t n, const void *w, size_t wrb, int nr, const void *xq, size_t xrb,
                     int nc, float *y, size_t ldy) {
    if (nc >= 2)
        gemm_blocked(KIND_F16, n, w, wrb, nr, xq, xrb, nc, y, ldy);
    else
        gemm_generic(KIND_F16, 0, n, w, wrb, nr, xq, xrb, nc, y, ldy);
}
static void gemm_bf16(int64_t n, const void *w, size_t wrb, int nr, const void *xq, size_t xrb,
                      int nc, float *y, size_t ldy) {
    gemm_generic(KIND_BF16, 0, n, w, wrb, nr, xq, xrb, nc, y, ldy);
}
static void gemm_bf16_dp(int64_t n, const void *w, size_t wrb, int nr, const void *xq, size_t xrb,
                         int nc, float *y, size_t ldy) {
    gemm_generic(KIND_BF16, 1, n, w, wrb, nr, xq, xrb, nc, y, ldy);
}
static void gemm_f32(int64_t n, const void *w, size_t wrb, int nr, const void *xq, size_t xrb,
                     int nc, float *y, size_t ldy) {
    if (nc >= 2)
        gemm_blocked(KIND_F32, n, w, wrb, nr, xq, xrb, nc, y, ldy);
    else
        gemm_generic(KIND_F32, 0, n, w, wrb, nr, xq, xrb, nc, y, ldy);
}

/* f32 -> f16, round to nearest even: vcvtps2ph does exactly what ig_fp32_to_fp16 does (NaN
 * included). */
static void quantize_act_f16(const float *x, void *dst, int64_t n) {
    uint16_t *d = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256(
            (__m256i *)(d + i),
            _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(d + i, m,
                                 _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, x + i),
                                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
}

/*
 * f32 -> bf16 with ig_fp32_to_bf16's integer rounding (to nearest even on the
 * bits; NaN -> quiet NaN with the top payload bits). Not vcvtneps2bf16: it
 * flushes f32 subnormals to zero, and the converters must be bit-identical.
 */
AI __m256i bf16_round16(__m512i u) {
    const __m512i absx = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(absx, _mm512_set1_epi32(0x7f800000));
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    __m512i r = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
    r = _mm512_mask_mov_epi32(r, nan,
                              _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
    return _mm512_cvtepi32_epi16(r);
}

static void quantize_act_bf16(const float *x, void *dst, int64_t n) {
    uint16_t *d = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(d + i), bf16_round16(_mm512_loadu_si512(x + i)));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm256_mask_storeu_epi16(d + i, m, bf16_round16(_mm512_maskz_loadu_epi32(m, x + i)));
    }
}

void ig__dot_register_float_avx512(ig_dot_kernel *table) {
    const ig_cpu_features *f = ig_cpu_features_get();
    table[IG_TYPE_F16].vec_dot_q = vec_dot_f16;
    table[IG_TYPE_F16].gemm_q = gemm_f16;
    table[IG_TYPE_F16].quantize_act = quantize_act_f16;
    table[IG_TYPE_F32].vec_dot_q = vec_dot_f32;
    table[IG_TYPE_F32].gemm_q = gemm_f32;
    table[IG_TYPE_BF16].quantize_act = quantize_act_bf16;
    if (f->avx512_bf16) {
        table[IG_TYPE_BF16].vec_dot_q = vec_dot_bf16_dp;
        table[IG_TYPE_BF16].gemm_q = gemm_bf16_dp;
    } else {
        table[IG_TYPE_BF16].vec_dot_q = vec_dot_bf16;
        table[IG_TYPE_BF16].gemm_q = gemm_bf16;
    }
}
