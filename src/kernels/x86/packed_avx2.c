/*
 * packed_avx2.c: AVX2 kernels for legacy block weights in the r16 layout
 * (tensor/pack.h), for CPUs without AVX-512. Compiled with -mavx2 -mfma
 * -mf16c; registered by kernels/dot.c at the AVX2 level.
 *
 * A packed 64-byte chunk holds 4 codes of each of 16 rows; its first 32
 * bytes are rows 0-7, the last 32 rows 8-15. So a group is two halves of 8
 * lanes, done one after the other (the second reads the group from cache).
 * Per half and block: plain loads, the nibble split, and per token
 * vpmaddubsw + vpmaddwd against the token's 4 codes broadcast, which leave
 * row i's exact integer block sum in lane i, with legacy_avx2.c's overflow
 * limits (nibbles summed over 8 groups in int16, 5-bit codes over 4, q8_0
 * one group at a time through the sign trick, so q8_0 takes no offset and
 * ignores ig_pack_aux.corr). Then, per (row, token) pair and block in
 * order, the same float steps as every other legacy kernel:
 *     acc = fma(d_w * d_x, (float)isum, acc);  [acc = fma(m_w, s_x, acc)]
 * so the result is the bits of the unpacked kernels, at any batch size.
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/dot.h"
#include "kernels/x86/packed_x86.h"
#include "tensor/blocks.h"
#include "tensor/pack.h"

enum { TG = 4 }; /* tokens per pass over a half group */

static inline __m256i bcast4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/*
 * Rows 8h .. 8h+7 of one group (nb blocks at g) times NC tokens; row 8h+i's
 * result for token c goes to y[c * ldy + 8h + i].
 */
static inline __attribute__((always_inline)) void
half_tile(wtype t, int NC, int h, int64_t nb, const uint8_t *g, const uint8_t *const x[TG],
          const ig_pack_aux *const a[TG], float *y, size_t ldy) {
    const size_t xs = xsize(t), pb = 16 * bsize(t);
    const __m256i m4 = _mm256_set1_epi8(0x0f), one8 = _mm256_set1_epi8(1);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[TG];
    for (int c = 0; c < NC; c++) acc[c] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = g + (size_t)b * pb;
        if (h == 0)
            for (size_t o = 0; o < pb; o += 64)
                _mm_prefetch((const char *)p + 8 * pb + o, _MM_HINT_T0);
        const __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * h)));
        p += 32;
        __m256 m = _mm256_setzero_ps();
        if (has_min(t)) {
            m = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16 * h)));
            p += 32;
        }
        __m256i qh = _mm256_setzero_si256();
        if (has_qh(t)) {
            qh = _mm256_loadu_si256((const __m256i *)(p + 32 * h));
            p += 64;
        }
        p += 32 * h; /* this half's 32 bytes of each chunk */
        if (t == T_Q8_0) {
            __m256i w[8], aw[8];
            for (int j = 0; j < 8; j++) {
                w[j] = _mm256_loadu_si256((const __m256i *)(p + 64 * j));
                aw[j] = _mm256_abs_epi8(w[j]);
            }
            for (int c = 0; c < NC; c++) {
                const uint8_t *xq = x[c] + (size_t)b * xs + xqs(t);
                __m256i s = _mm256_setzero_si256();
                for (int j = 0; j < 8; j++) {
                    const __m256i pr =
                        _mm256_maddubs_epi16(aw[j], _mm256_sign_epi8(bcast4(xq + 4 * j), w[j]));
                    s = _mm256_add_epi32(s, _mm256_madd_epi16(pr, ones));
                }
                const __m256 dd = _mm256_mul_ps(d, _mm256_set1_ps(a[c][b].d));
                acc[c] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(s), acc[c]);
            }
            continue;
        }
        __m256i u[8]; /* u[2j]: codes 4j..4j+3, u[2j+1]: codes 16+4j.. */
        for (int j = 0; j < 4; j++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(p + 64 * j));
            u[2 * j] = _mm256_and_si256(v, m4);
            u[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            if (has_qh(t)) {
                const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(qh, j), one8);
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(qh, 4 + j), one8);
                u[2 * j] = _mm256_or_si256(u[2 * j], _mm256_slli_epi16(lo, 4));
                u[2 * j + 1] = _mm256_or_si256(u[2 * j + 1], _mm256_slli_epi16(hi, 4));
            }
        }
        for (int c = 0; c < NC; c++) {
            const uint8_t *xq = x[c] + (size_t)b * xs + xqs(t);
            /* 4-bit codes: all 8 groups in one int16 sum; 5-bit: 4 groups each */
            __m256i s16a = _mm256_setzero_si256(), s16b = _mm256_setzero_si256();
            for (int j = 0; j < 4; j++) {
                const __m256i p0 = _mm256_maddubs_epi16(u[2 * j], bcast4(xq + 4 * j));
                const __m256i p1 = _mm256_maddubs_epi16(u[2 * j + 1], bcast4(xq + 16 + 4 * j));
                if (has_qh(t)) {
                    s16a = _mm256_add_epi16(s16a, p0);
                    s16b = _mm256_add_epi16(s16b, p1);
                } else {
                    s16a = _mm256_add_epi16(s16a, _mm256_add_epi16(p0, p1));
                }
            }
            __m256i s = _mm256_madd_epi16(s16a, ones);
            if (has_qh(t)) s = _mm256_add_epi32(s, _mm256_madd_epi16(s16b, ones));
            if (!has_min(t)) s = _mm256_add_epi32(s, _mm256_set1_epi32(a[c][b].corr));
            const __m256 dd = _mm256_mul_ps(d, _mm256_set1_ps(a[c][b].d));
            acc[c] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(s), acc[c]);
            if (has_min(t)) acc[c] = _mm256_fmadd_ps(m, _mm256_set1_ps(a[c][b].s), acc[c]);
        }
    }
    for (int c = 0; c < NC; c++) _mm256_storeu_ps(y + (size_t)c * ldy + 8 * h, acc[c]);
}

static inline __attribute__((always_inline)) void
gemm_t(wtype t, int64_t n, const void *w, size_t group_bytes, int n_groups, const void *xq,
       size_t xq_row_bytes, const void *aux, size_t aux_row_bytes, int nc, float *y, size_t ldy) {
    const int64_t nb = n / IG_QK;
    for (int gi = 0; gi < n_groups; gi++) {
        const uint8_t *g = (const uint8_t *)w + (size_t)gi * group_bytes;
        for (int c0 = 0; c0 < nc; c0 += TG) {
            const int cols = nc - c0 < TG ? nc - c0 : TG;
            const uint8_t *x[TG];
            const ig_pack_aux *a[TG];
            for (int c = 0; c < TG; c++) {
                const int cc = c0 + (c < cols ? c : cols - 1);
                x[c] = (const uint8_t *)xq + (size_t)cc * xq_row_bytes;
                a[c] = (const ig_pack_aux *)((const uint8_t *)aux + (size_t)cc * aux_row_bytes);
            }
            float *yt = y + (size_t)c0 * ldy + (size_t)gi * 16;
            for (int h = 0; h < 2; h++) {
                switch (cols) {
                case 1:
                    half_tile(t, 1, h, nb, g, x, a, yt, ldy);
                    break;
                case 2:
                    half_tile(t, 2, h, nb, g, x, a, yt, ldy);
                    break;
                case 3:
                    half_tile(t, 3, h, nb, g, x, a, yt, ldy);
                    break;
                default:
                    half_tile(t, 4, h, nb, g, x, a, yt, ldy);
                    break;
                }
            }
        }
    }
}

#define DEFINE(name, T)                                                                            \
    static void gemm_r16_##name(int64_t n, const void *w, size_t gb, int ng, const void *xq,       \
                                size_t xrb, const void *aux, size_t arb, int nc, float *y,         \
                                size_t ldy) {                                                      \
        gemm_t(T, n, w, gb, ng, xq, xrb, aux, arb, nc, y, ldy);                                    \
    }
DEFINE(q4_0, T_Q4_0)
DEFINE(q4_1, T_Q4_1)
DEFINE(q5_0, T_Q5_0)
DEFINE(q5_1, T_Q5_1)
DEFINE(q8_0, T_Q8_0)

void ig__dot_register_packed_avx2(ig_dot_kernel *table) {
    table[IG_TYPE_Q4_0].gemm_r16 = gemm_r16_q4_0;
    table[IG_TYPE_Q4_1].gemm_r16 = gemm_r16_q4_1;
    table[IG_TYPE_Q5_0].gemm_r16 = gemm_r16_q5_0;
    table[IG_TYPE_Q5_1].gemm_r16 = gemm_r16_q5_1;
    table[IG_TYPE_Q8_0].gemm_r16 = gemm_r16_q8_0;
}
