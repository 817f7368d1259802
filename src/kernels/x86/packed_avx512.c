/*
 * packed_avx512.c: AVX-512 VNNI kernels for legacy block weights in the r16
 * layout (tensor/pack.h). Compiled with the AVX-512 flags; registered by
 * kernels/dot.c when the CPU has AVX-512 VNNI.
 *
 * A packed block of 16 rows is already what legacy_avx512.c builds with
 * gathers and shuffles: 64-byte chunks whose lane i holds 4 codes of row i.
 * So per block: one load of the 16 scales, plain vector loads of the codes,
 * a mask and shift for the nibbles, and per token a vpdpbusd per 4 codes
 * with the token's 4 activation codes broadcast to every lane. Lane i ends
 * the block with row i's exact integer sum.
 *
 * Per (row, token) pair the arithmetic is the sequence legacy_avx512.c and
 * the reference use, block by block from acc = 0:
 *     isum = exact integer dot (offset correction from ig_pack_aux)
 *     acc  = fma(d_w * d_x, (float)isum, acc)
 *     acc  = fma(m_w, s_x, acc)                  (q4_1 / q5_1)
 * so a packed matrix gives the same bits as the unpacked one, at any batch.
 *
 * Order of work: groups of 16 rows outer, tokens 8 at a time inner, so a
 * group's weights (18-50 KB for common widths) stay in L1/L2 while every
 * token of the call passes over them; with one token the weights stream
 * from memory in one sequential run.
 */
#include <immintrin.h>
#include <string.h>

#include "base/cpu.h"
#include "kernels/dot.h"
#include "kernels/x86/packed_x86.h"
#include "tensor/blocks.h"
#include "tensor/pack.h"

enum { TG = 8 }; /* tokens per pass over a group */

/* software prefetch distance in packed blocks (0: leave it to the hardware); 16 (4.5 KB
 * of q4_0, 8.5 KB of q8_0) beat 8 and 32 in 6 side-by-side TinyLlama tg runs */
#ifndef PREFETCH_BLOCKS
#define PREFETCH_BLOCKS 16
#endif

static inline int32_t load_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/*
 * One group of 16 rows (nb blocks at g) times NC tokens; row i's result for
 * token c goes to y[c * ldy + i]. Inlined with t and NC constant.
 */
static inline __attribute__((always_inline)) void
group_tile(wtype t, int NC, int64_t nb, const uint8_t *g, const uint8_t *const x[TG],
           const ig_pack_aux *const a[TG], float *y, size_t ldy) {
    const size_t xs = xsize(t), pb = 16 * bsize(t);
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 acc[TG];
    for (int c = 0; c < NC; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *p = g + (size_t)b * pb;
        if (PREFETCH_BLOCKS > 0)
            for (size_t o = 0; o < pb; o += 64)
                _mm_prefetch((const char *)p + PREFETCH_BLOCKS * pb + o, _MM_HINT_T0);
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
        p += 32;
        __m512 m = _mm512_setzero_ps();
        if (has_min(t)) {
            m = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
            p += 32;
        }
        __m512i qh = _mm512_setzero_si512();
        if (has_qh(t)) {
            qh = _mm512_loadu_si512(p);
            p += 64;
        }
        __m512i u[8];
        if (t == T_Q8_0) {
            const __m512i flip = _mm512_set1_epi8((char)0x80);
            for (int j = 0; j < 8; j++)
                u[j] = _mm512_xor_si512(_mm512_loadu_si512(p + 64 * j), flip);
        } else {
            for (int j = 0; j < 4; j++) {
                const __m512i v = _mm512_loadu_si512(p + 64 * j);
                u[2 * j] = _mm512_and_si512(v, m4);
                u[2 * j + 1] = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
                if (has_qh(t)) {
                    const __m512i sixteen = _mm512_set1_epi8(16);
                    const __mmask64 lo =
                        _mm512_test_epi8_mask(qh, _mm512_set1_epi8((char)(1 << j)));
                    const __mmask64 hi =
                        _mm512_test_epi8_mask(qh, _mm512_set1_epi8((char)(1 << (4 + j))));
                    u[2 * j] = _mm512_mask_add_epi8(u[2 * j], lo, u[2 * j], sixteen);
                    u[2 * j + 1] = _mm512_mask_add_epi8(u[2 * j + 1], hi, u[2 * j + 1], sixteen);
                }
            }
        }
        for (int c = 0; c < NC; c++) {
            const uint8_t *xq = x[c] + (size_t)b * xs + xqs(t);
            const ig_pack_aux *ax = &a[c][b];
            __m512i s = has_min(t) ? _mm512_setzero_si512() : _mm512_set1_epi32(ax->corr);
            if (t == T_Q8_0) {
                for (int j = 0; j < 8; j++)
                    s = _mm512_dpbusd_epi32(s, u[j], _mm512_set1_epi32(load_i32(xq + 4 * j)));
            } else {
                for (int j = 0; j < 4; j++) {
                    s = _mm512_dpbusd_epi32(s, u[2 * j], _mm512_set1_epi32(load_i32(xq + 4 * j)));
                    s = _mm512_dpbusd_epi32(s, u[2 * j + 1],
                                            _mm512_set1_epi32(load_i32(xq + 16 + 4 * j)));
                }
            }
            const __m512 dd = _mm512_mul_ps(d, _mm512_set1_ps(ax->d));
            acc[c] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(s), acc[c]);
            if (has_min(t)) acc[c] = _mm512_fmadd_ps(m, _mm512_set1_ps(ax->s), acc[c]);
        }
    }
    for (int c = 0; c < NC; c++) _mm512_storeu_ps(y + (size_t)c * ldy, acc[c]);
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
            switch (cols) {
            case 1:
                group_tile(t, 1, nb, g, x, a, yt, ldy);
                break;
            case 2:
                group_tile(t, 2, nb, g, x, a, yt, ldy);
                break;
            case 3:
                group_tile(t, 3, nb, g, x, a, yt, ldy);
                break;
            case 4:
                group_tile(t, 4, nb, g, x, a, yt, ldy);
                break;
            case 5:
                group_tile(t, 5, nb, g, x, a, yt, ldy);
                break;
            case 6:
                group_tile(t, 6, nb, g, x, a, yt, ldy);
                break;
            case 7:
                group_tile(t, 7, nb, g, x, a, yt, ldy);
                break;
            default:
                group_tile(t, 8, nb, g, x, a, yt, ldy);
                break;
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

void ig__dot_register_packed_avx512(ig_dot_kernel *table) {
    const ig_cpu_features *f = ig_cpu_features_get();
    if (!f->avx512_vnni) return;
    table[IG_TYPE_Q4_0].gemm_r16 = gemm_r16_q4_0;
    table[IG_TYPE_Q4_1].gemm_r16 = gemm_r16_q4_1;
    table[IG_TYPE_Q5_0].gemm_r16 = gemm_r16_q5_0;
    table[IG_TYPE_Q5_1].gemm_r16 = gemm_r16_q5_1;
    table[IG_TYPE_Q8_0].gemm_r16 = gemm_r16_q8_0;
}
