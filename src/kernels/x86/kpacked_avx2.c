/*
 * kpacked_avx2.c: AVX2 kernels for q4_K, q5_K and q6_K weights in the r16 layout
 * (tensor/pack.h), with q8_K activations, for CPUs without AVX-512.
 * Compiled with -mavx2 -mfma -mf16c; registered by kernels/dot.c at the
 * AVX2 level.
 *
 * As kpacked_avx512.c, with 8 lanes: a group is two halves of 8 rows (the
 * first and last 32 bytes of every 64-byte chunk), done one after the
 * other. The integer sums use vpmaddubsw (u8 x s8 pairs into int16) and
 * vpmaddwd; the int16 partial sums stay below 2^15: q4_K sums one
 * sub-block of 32 codes <= 15 (16 products per int16), q5_K half a
 * sub-block of codes <= 31 (8 products), q6_K two chunks of codes <= 63 at
 * a time (4 products). The sums are exact, so they equal the
 * reference's, and each lane then does the reference's float and double
 * steps in its order, super-block after super-block:
 *     sum += (double)(d_w * d_x) * isum;  sum -= (double)(dmin_w * d_x) * isum_min;
 * storing (float)sum: the bits of the reference at any batch size.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/dot.h"
#include "kernels/x86/packed_x86.h"
#include "tensor/blocks.h"

enum { TG = 4 }; /* tokens per pass over a half group */

/* this half's 32 bytes of chunk k */
static inline __m256i chunk(const uint8_t *p, int h, int k) {
    return _mm256_loadu_si256((const __m256i *)(p + 64 * k + 32 * h));
}

static inline __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* The integer sums of one super-block at p, half h, for NC tokens. */
static inline __attribute__((always_inline)) void sb_sums(ktype t, int NC, int h, const uint8_t *p,
                                                          const ig_block_q8_K *const x[TG],
                                                          __m256i isum[TG], __m256i imin[TG]) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int c = 0; c < NC; c++) isum[c] = imin[c] = _mm256_setzero_si256();
    if (t == K4 || t == K5) {
        /* after d[16] and dmin[16]: 3 scale chunks, (q5_K) 8 qh chunks, the codes */
        const uint8_t *ch = p + 64;
        const int qs0 = t == K5 ? 11 : 3;
        const __m256i S0 = chunk(ch, h, 0), S1 = chunk(ch, h, 1), S2 = chunk(ch, h, 2);
        const __m256i m6 = _mm256_set1_epi32(63), m4 = _mm256_set1_epi32(15);
        const __m256i m3 = _mm256_set1_epi32(3), n4 = _mm256_set1_epi8(0x0f);
        __m256i mnv[8]; /* the mins, per sub-block */
        for (int s = 0; s < 8; s++) {
            __m256i sc, mn;
            if (s < 4) {
                sc = _mm256_and_si256(_mm256_srli_epi32(S0, 8 * s), m6);
                mn = _mm256_and_si256(_mm256_srli_epi32(S1, 8 * s), m6);
            } else {
                const int q = s - 4;
                sc = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi32(S2, 8 * q), m4),
                    _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(S0, 8 * q + 6), m3), 4));
                mn = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi32(S2, 8 * q + 4), m4),
                    _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(S1, 8 * q + 6), m3), 4));
            }
            /* int16 sums of 8 chunks of 4-bit codes, or 4 of 5-bit codes */
            __m256i s16[TG], s16b[TG];
            for (int c = 0; c < NC; c++) s16[c] = s16b[c] = _mm256_setzero_si256();
            for (int k = 0; k < 8; k++) {
                const __m256i v = chunk(ch, h, qs0 + 8 * (s / 2) + k);
                __m256i u = _mm256_and_si256((s & 1) ? _mm256_srli_epi16(v, 4) : v, n4);
                if (t == K5) { /* fifth bit of code l of sub-block s: bit s of qh[l] */
                    const __m256i bit = _mm256_and_si256(_mm256_srli_epi16(chunk(ch, h, 3 + k), s),
                                                         _mm256_set1_epi8(1));
                    u = _mm256_or_si256(u, _mm256_slli_epi16(bit, 4));
                }
                for (int c = 0; c < NC; c++) {
                    const __m256i pr = _mm256_maddubs_epi16(u, bcast4(x[c]->qs + 32 * s + 4 * k));
                    if (t == K5 && k >= 4)
                        s16b[c] = _mm256_add_epi16(s16b[c], pr);
                    else
                        s16[c] = _mm256_add_epi16(s16[c], pr);
                }
            }
            for (int c = 0; c < NC; c++) {
                __m256i si = _mm256_madd_epi16(s16[c], ones);
                if (t == K5) si = _mm256_add_epi32(si, _mm256_madd_epi16(s16b[c], ones));
                isum[c] = _mm256_add_epi32(isum[c], _mm256_mullo_epi32(sc, si));
            }
            mnv[s] = mn;
        }
        /* isum_min = sum_s mn_s * bs_s, bs_s = bsums[2s] + bsums[2s+1] (|bs_s| <= 4064):
         * as int16 pairs (mn_2k, mn_2k+1) . (bs_2k, bs_2k+1) with vpmaddwd */
        __m256i mnp[4];
        for (int k = 0; k < 4; k++)
            mnp[k] = _mm256_or_si256(mnv[2 * k], _mm256_slli_epi32(mnv[2 * k + 1], 16));
        for (int c = 0; c < NC; c++) {
            int16_t bs[8];
            for (int q = 0; q < 8; q++)
                bs[q] = (int16_t)(x[c]->bsums[2 * q] + x[c]->bsums[2 * q + 1]);
            for (int k = 0; k < 4; k++) {
                int32_t pair;
                memcpy(&pair, bs + 2 * k, 4);
                imin[c] =
                    _mm256_add_epi32(imin[c], _mm256_madd_epi16(mnp[k], _mm256_set1_epi32(pair)));
            }
        }
        return;
    }
    /* q6_K */
    const uint8_t *ch = p + 32; /* after d[16] */
    const __m256i n4 = _mm256_set1_epi8(0x0f), n2 = _mm256_set1_epi8(0x03);
    for (int s = 0; s < 16; s++) {
        const int hh = s / 8, kq = (s / 2) % 4, l0 = 16 * (s % 2);
        const int qlk = (64 * hh + 32 * (kq & 1) + l0) / 4, qhk = 32 + (32 * hh + l0) / 4;
        const int lshift = 4 * (kq >> 1), hshift = 2 * kq;
        const __m256i sv = chunk(ch, h, 48 + s / 4);
        const __m256i sc = _mm256_srai_epi32(_mm256_slli_epi32(sv, 24 - 8 * (s % 4)), 24);
        __m256i si[TG];
        for (int c = 0; c < NC; c++) si[c] = _mm256_set1_epi32(-32 * x[c]->bsums[s]);
        for (int k0 = 0; k0 < 4; k0 += 2) { /* two chunks per int16 sum */
            __m256i s16[TG];
            for (int c = 0; c < NC; c++) s16[c] = _mm256_setzero_si256();
            for (int k = k0; k < k0 + 2; k++) {
                const __m256i l4 =
                    _mm256_and_si256(_mm256_srli_epi16(chunk(ch, h, qlk + k), lshift), n4);
                const __m256i h2 =
                    _mm256_and_si256(_mm256_srli_epi16(chunk(ch, h, qhk + k), hshift), n2);
                const __m256i u = _mm256_or_si256(l4, _mm256_slli_epi16(h2, 4));
                for (int c = 0; c < NC; c++)
                    s16[c] = _mm256_add_epi16(
                        s16[c], _mm256_maddubs_epi16(u, bcast4(x[c]->qs + 16 * s + 4 * k)));
            }
            for (int c = 0; c < NC; c++)
                si[c] = _mm256_add_epi32(si[c], _mm256_madd_epi16(s16[c], ones));
        }
        for (int c = 0; c < NC; c++)
            isum[c] = _mm256_add_epi32(isum[c], _mm256_mullo_epi32(sc, si[c]));
    }
}

/* acc (8 lanes as 2 x 4 doubles) += or -= (double)(d * dx) * i */
static inline void acc_step(__m256d acc[2], __m256 d, float dx, __m256i i, int sub) {
    const __m256 dd = _mm256_mul_ps(d, _mm256_set1_ps(dx));
    const __m256d lo = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(dd)),
                                     _mm256_cvtepi32_pd(_mm256_castsi256_si128(i)));
    const __m256d hi = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(dd, 1)),
                                     _mm256_cvtepi32_pd(_mm256_extracti128_si256(i, 1)));
    if (sub) {
        acc[0] = _mm256_sub_pd(acc[0], lo);
        acc[1] = _mm256_sub_pd(acc[1], hi);
    } else {
        acc[0] = _mm256_add_pd(acc[0], lo);
        acc[1] = _mm256_add_pd(acc[1], hi);
    }
}

static inline __attribute__((always_inline)) void half_tile(ktype t, int NC, int h, int64_t nsb,
                                                            const uint8_t *g,
                                                            const uint8_t *const xr[TG], float *y,
                                                            size_t ldy) {
    const size_t pb = 16 * sb_bytes(t);
    __m256d acc[TG][2];
    for (int c = 0; c < NC; c++) acc[c][0] = acc[c][1] = _mm256_setzero_pd();
    for (int64_t b = 0; b < nsb; b++) {
        const uint8_t *p = g + (size_t)b * pb;
        if (h == 0)
            for (size_t o = 0; o < pb; o += 64)
                _mm_prefetch((const char *)p + 2 * pb + o, _MM_HINT_T0);
        const ig_block_q8_K *x[TG];
        for (int c = 0; c < NC; c++) x[c] = (const ig_block_q8_K *)xr[c] + b;
        __m256i isum[TG], imin[TG];
        sb_sums(t, NC, h, p, x, isum, imin);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * h)));
        for (int c = 0; c < NC; c++) acc_step(acc[c], d, x[c]->d, isum[c], 0);
        if (t != K6) {
            const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 32 + 16 * h)));
            for (int c = 0; c < NC; c++) acc_step(acc[c], dm, x[c]->d, imin[c], 1);
        }
    }
    for (int c = 0; c < NC; c++) {
        float *yc = y + (size_t)c * ldy + 8 * h;
        _mm_storeu_ps(yc, _mm256_cvtpd_ps(acc[c][0]));
        _mm_storeu_ps(yc + 4, _mm256_cvtpd_ps(acc[c][1]));
    }
}

static inline __attribute__((always_inline)) void gemm_t(ktype t, int64_t n, const void *w,
                                                         size_t group_bytes, int n_groups,
                                                         const void *xq, size_t xq_row_bytes,
                                                         int nc, float *y, size_t ldy) {
    const int64_t nsb = n / IG_QK_K;
    for (int gi = 0; gi < n_groups; gi++) {
        const uint8_t *g = (const uint8_t *)w + (size_t)gi * group_bytes;
        for (int c0 = 0; c0 < nc; c0 += TG) {
            const int cols = nc - c0 < TG ? nc - c0 : TG;
            const uint8_t *x[TG];
            for (int c = 0; c < TG; c++)
                x[c] =
                    (const uint8_t *)xq + (size_t)(c0 + (c < cols ? c : cols - 1)) * xq_row_bytes;
            float *yt = y + (size_t)c0 * ldy + (size_t)gi * 16;
            for (int h = 0; h < 2; h++) {
                switch (cols) {
                case 1:
                    half_tile(t, 1, h, nsb, g, x, yt, ldy);
                    break;
                case 2:
                    half_tile(t, 2, h, nsb, g, x, yt, ldy);
                    break;
                case 3:
                    half_tile(t, 3, h, nsb, g, x, yt, ldy);
                    break;
                default:
                    half_tile(t, 4, h, nsb, g, x, yt, ldy);
                    break;
                }
            }
        }
    }
}

static void gemm_r16_q4_K(int64_t n, const void *w, size_t gb, int ng, const void *xq, size_t xrb,
                          const void *aux, size_t arb, int nc, float *y, size_t ldy) {
    (void)aux;
    (void)arb;
    gemm_t(K4, n, w, gb, ng, xq, xrb, nc, y, ldy);
}

static void gemm_r16_q5_K(int64_t n, const void *w, size_t gb, int ng, const void *xq, size_t xrb,
                          const void *aux, size_t arb, int nc, float *y, size_t ldy) {
    (void)aux;
    (void)arb;
    gemm_t(K5, n, w, gb, ng, xq, xrb, nc, y, ldy);
}

static void gemm_r16_q6_K(int64_t n, const void *w, size_t gb, int ng, const void *xq, size_t xrb,
                          const void *aux, size_t arb, int nc, float *y, size_t ldy) {
    (void)aux;
    (void)arb;
    gemm_t(K6, n, w, gb, ng, xq, xrb, nc, y, ldy);
}

void ig__dot_register_kpacked_avx2(ig_dot_kernel *table) {
    table[IG_TYPE_Q4_K].gemm_r16 = gemm_r16_q4_K;
    table[IG_TYPE_Q5_K].gemm_r16 = gemm_r16_q5_K;
    table[IG_TYPE_Q6_K].gemm_r16 = gemm_r16_q6_K;
}
