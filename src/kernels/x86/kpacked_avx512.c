/*
 * kpacked_avx512.c: AVX-512 VNNI kernels for q4_K, q5_K and q6_K weights in the
 * r16 layout (tensor/pack.h), with q8_K activations. Compiled with the
 * AVX-512 flags; registered by kernels/dot.c when the CPU has AVX-512 VNNI.
 *
 * Lane i of every vector is row i of the 16-row group, so a super-block's
 * integer sums need no horizontal reduction: per sub-block, a vpdpbusd per
 * 4 codes (the token's 4 activation codes broadcast), then a vpmulld by the
 * lanes' sub-block scales.
 *   q4_K: isum = sum_s sc_s * (u . x over sub-block s), u the 4-bit codes
 *         (q5_K: 5-bit, the fifth bit from the qh chunks);
 *         isum_min = sum_s mn_s * (bsums[2s] + bsums[2s+1]).
 *   q6_K: isum = sum_s sc_s * ((u - 32) . x over the 16 values of s): the
 *         sub-block sum starts at -32 * bsums[s] and adds u . x (u = 0..63).
 * The sums are exact, so they equal the reference's (tensor/vec_dot_q.c),
 * and then each lane does the reference's float and double steps in its
 * order, super-block after super-block:
 *     sum += (double)(d_w * d_x) * isum;  sum -= (double)(dmin_w * d_x) * isum_min;
 * and stores (float)sum: every output is the scalar reference's bits, at any
 * batch size (like kquant_avx512.c, this relies on GCC not contracting the
 * double multiply and add in ISO C mode).
 *
 * Work order as in packed_avx512.c: groups outer, tokens 8 at a time inner.
 */
#include <immintrin.h>
#include <string.h>

#include "base/cpu.h"
#include "kernels/dot.h"
#include "kernels/x86/packed_x86.h"
#include "tensor/blocks.h"

enum { TG = 8 }; /* tokens per pass over a group */

static inline __m512i chunk(const uint8_t *p, int k) {
    return _mm512_loadu_si512(p + 64 * k);
}

static inline __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/*
 * The integer sums of one super-block (at p: the packed 16 rows) for NC
 * tokens; isum[c] and (q4_K) imin[c] receive them.
 */
static inline __attribute__((always_inline)) void sb_sums(ktype t, int NC, const uint8_t *p,
                                                          const ig_block_q8_K *const x[TG],
                                                          __m512i isum[TG], __m512i imin[TG]) {
    for (int c = 0; c < NC; c++) isum[c] = imin[c] = _mm512_setzero_si512();
    if (t == K4 || t == K5) {
        /* after d[16] and dmin[16]: 3 scale chunks, (q5_K) 8 qh chunks, the codes */
        const uint8_t *ch = p + 64;
        const int qs0 = t == K5 ? 11 : 3;
        const __m512i S0 = chunk(ch, 0), S1 = chunk(ch, 1), S2 = chunk(ch, 2);
        const __m512i m6 = _mm512_set1_epi32(63), m4 = _mm512_set1_epi32(15);
        const __m512i m3 = _mm512_set1_epi32(3), n4 = _mm512_set1_epi8(0x0f);
        __m512i mnv[8];               /* the mins, per sub-block */
        for (int j = 0; j < 4; j++) { /* sub-blocks 2j (low nibbles) and 2j+1 (high) */
            __m512i lo[8], hi[8];
            for (int k = 0; k < 8; k++) {
                const __m512i v = chunk(ch, qs0 + 8 * j + k);
                lo[k] = _mm512_and_si512(v, n4);
                hi[k] = _mm512_and_si512(_mm512_srli_epi16(v, 4), n4);
                if (t == K5) { /* fifth bit of code l of sub-block s: bit s of qh[l] */
                    const __m512i q = chunk(ch, 3 + k), one = _mm512_set1_epi8(1);
                    const __m512i b0 = _mm512_and_si512(_mm512_srli_epi16(q, 2 * j), one);
                    const __m512i b1 = _mm512_and_si512(_mm512_srli_epi16(q, 2 * j + 1), one);
                    lo[k] = _mm512_or_si512(lo[k], _mm512_slli_epi16(b0, 4));
                    hi[k] = _mm512_or_si512(hi[k], _mm512_slli_epi16(b1, 4));
                }
            }
            for (int h = 0; h < 2; h++) {
                const int s = 2 * j + h;
                __m512i sc, mn;
                if (s < 4) {
                    sc = _mm512_and_si512(_mm512_srli_epi32(S0, 8 * s), m6);
                    mn = _mm512_and_si512(_mm512_srli_epi32(S1, 8 * s), m6);
                } else {
                    const int q = s - 4;
                    sc = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi32(S2, 8 * q), m4),
                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(S0, 8 * q + 6), m3),
                                          4));
                    mn = _mm512_or_si512(
                        _mm512_and_si512(_mm512_srli_epi32(S2, 8 * q + 4), m4),
                        _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(S1, 8 * q + 6), m3),
                                          4));
                }
                const __m512i *u = h ? hi : lo;
                for (int c = 0; c < NC; c++) {
                    const int8_t *xs = x[c]->qs + 32 * s;
                    __m512i si = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u[0], bcast4(xs));
                    for (int k = 1; k < 8; k++)
                        si = _mm512_dpbusd_epi32(si, u[k], bcast4(xs + 4 * k));
                    isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(sc, si));
                }
                mnv[s] = mn;
            }
        }
        /* isum_min = sum_s mn_s * bs_s, bs_s = bsums[2s] + bsums[2s+1] (|bs_s| <= 4064):
         * as int16 pairs (mn_2k, mn_2k+1) . (bs_2k, bs_2k+1) with vpmaddwd */
        __m512i mnp[4];
        for (int k = 0; k < 4; k++)
            mnp[k] = _mm512_or_si512(mnv[2 * k], _mm512_slli_epi32(mnv[2 * k + 1], 16));
        for (int c = 0; c < NC; c++) {
            int16_t bs[8];
            for (int q = 0; q < 8; q++)
                bs[q] = (int16_t)(x[c]->bsums[2 * q] + x[c]->bsums[2 * q + 1]);
            for (int k = 0; k < 4; k++) {
                int32_t pair;
                memcpy(&pair, bs + 2 * k, 4);
                imin[c] =
                    _mm512_add_epi32(imin[c], _mm512_madd_epi16(mnp[k], _mm512_set1_epi32(pair)));
            }
        }
        return;
    }
    /* q6_K */
    const uint8_t *ch = p + 32; /* after d[16] */
    const __m512i n4 = _mm512_set1_epi8(0x0f), n2 = _mm512_set1_epi8(0x03);
    for (int s = 0; s < 16; s++) {
        const int hh = s / 8, kq = (s / 2) % 4, l0 = 16 * (s % 2);
        const int qlk = (64 * hh + 32 * (kq & 1) + l0) / 4, qhk = 32 + (32 * hh + l0) / 4;
        const int lshift = 4 * (kq >> 1), hshift = 2 * kq;
        __m512i u[4];
        for (int k = 0; k < 4; k++) {
            const __m512i l4 = _mm512_and_si512(_mm512_srli_epi16(chunk(ch, qlk + k), lshift), n4);
            const __m512i h2 = _mm512_and_si512(_mm512_srli_epi16(chunk(ch, qhk + k), hshift), n2);
            u[k] = _mm512_or_si512(l4, _mm512_slli_epi16(h2, 4));
        }
        /* int8 scale of sub-block s, sign-extended, per lane */
        const __m512i sv = chunk(ch, 48 + s / 4);
        const __m512i sc = _mm512_srai_epi32(_mm512_slli_epi32(sv, 24 - 8 * (s % 4)), 24);
        for (int c = 0; c < NC; c++) {
            const int8_t *xs = x[c]->qs + 16 * s;
            __m512i si = _mm512_set1_epi32(-32 * x[c]->bsums[s]);
            for (int k = 0; k < 4; k++) si = _mm512_dpbusd_epi32(si, u[k], bcast4(xs + 4 * k));
            isum[c] = _mm512_add_epi32(isum[c], _mm512_mullo_epi32(sc, si));
        }
    }
}

/* acc (16 lanes as 2 x 8 doubles) += (double)(d * dx) * i */
static inline void acc_step(__m512d acc[2], __m512 d, float dx, __m512i i, int sub) {
    const __m512 dd = _mm512_mul_ps(d, _mm512_set1_ps(dx));
    const __m512d lo = _mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(dd)),
                                     _mm512_cvtepi32_pd(_mm512_castsi512_si256(i)));
    const __m512d hi = _mm512_mul_pd(
        _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(dd), 1))),
        _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(i, 1)));
    if (sub) {
        acc[0] = _mm512_sub_pd(acc[0], lo);
        acc[1] = _mm512_sub_pd(acc[1], hi);
    } else {
        acc[0] = _mm512_add_pd(acc[0], lo);
        acc[1] = _mm512_add_pd(acc[1], hi);
    }
}

static inline __attribute__((always_inline)) void group_tile(ktype t, int NC, int64_t nsb,
                                                             const uint8_t *g,
                                                             const uint8_t *const xr[TG], float *y,
                                                             size_t ldy) {
    const size_t pb = 16 * sb_bytes(t);
    __m512d acc[TG][2];
    for (int c = 0; c < NC; c++) acc[c][0] = acc[c][1] = _mm512_setzero_pd();
    for (int64_t b = 0; b < nsb; b++) {
        const uint8_t *p = g + (size_t)b * pb;
        for (size_t o = 0; o < pb; o += 64) _mm_prefetch((const char *)p + 2 * pb + o, _MM_HINT_T0);
        const ig_block_q8_K *x[TG];
        for (int c = 0; c < NC; c++) x[c] = (const ig_block_q8_K *)xr[c] + b;
        __m512i isum[TG], imin[TG];
        sb_sums(t, NC, p, x, isum, imin);
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        for (int c = 0; c < NC; c++) acc_step(acc[c], d, x[c]->d, isum[c], 0);
        if (t != K6) {
            const __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 32)));
            for (int c = 0; c < NC; c++) acc_step(acc[c], dm, x[c]->d, imin[c], 1);
        }
    }
    for (int c = 0; c < NC; c++) {
        const __m256 lo = _mm512_cvtpd_ps(acc[c][0]), hi = _mm512_cvtpd_ps(acc[c][1]);
        _mm256_storeu_ps(y + (size_t)c * ldy, lo);
        _mm256_storeu_ps(y + (size_t)c * ldy + 8, hi);
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
            switch (cols) {
            case 1:
                group_tile(t, 1, nsb, g, x, yt, ldy);
                break;
            case 2:
                group_tile(t, 2, nsb, g, x, yt, ldy);
                break;
            case 3:
                group_tile(t, 3, nsb, g, x, yt, ldy);
                break;
            case 4:
                group_tile(t, 4, nsb, g, x, yt, ldy);
                break;
            case 5:
                group_tile(t, 5, nsb, g, x, yt, ldy);
                break;
            case 6:
                group_tile(t, 6, nsb, g, x, yt, ldy);
                break;
            case 7:
                group_tile(t, 7, nsb, g, x, yt, ldy);
                break;
            default:
                group_tile(t, 8, nsb, g, x, yt, ldy);
                break;
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

void ig__dot_register_kpacked_avx512(ig_dot_kernel *table) {
    const ig_cpu_features *f = ig_cpu_features_get();
    if (!f->avx512_vnni) return;
    table[IG_TYPE_Q4_K].gemm_r16 = gemm_r16_q4_K;
    table[IG_TYPE_Q5_K].gemm_r16 = gemm_r16_q5_K;
    table[IG_TYPE_Q6_K].gemm_r16 = gemm_r16_q6_K;
}
