/*
 * legacy_avx512.c: AVX-512 VNNI kernels for the legacy block types (q4_0,
 * q4_1, q5_0, q5_1, q8_0 weights with q8_0 / q8_1 activations). Compiled with
 * the AVX-512 flags (CMakeLists.txt); only reached through kernels/dot.c,
 * which registers them when the CPU has AVX-512 VNNI.
 *
 * Layout of the work: 16 weight rows at a time. For each block, the 16 rows'
 * 32 codes are gathered into 8 vectors U[g], lane i of U[g] holding 4
 * consecutive codes of row i as unsigned bytes (a 16 x 8 transpose of
 * dwords). One token's matching 4 activation codes are broadcast to every
 * lane, so a vpdpbusd per g adds 4 products per row and after 8 of them
 * lane i holds row i's integer sum for the block: no horizontal reduction.
 * The transpose is done once per block and used by up to 8 tokens.
 *
 * Codes are made unsigned by an offset (q4_0: +8 already, q5_0: +16 already,
 * q8_0: +128 by flipping the sign bit), taken back as off * sum(x codes).
 *
 * Batch invariance: for every (row, token) pair the arithmetic is, per
 * block b in order,
 *     isum = exact integer dot of the block's codes
 *     acc  = fma(d_w * d_x, (float)isum, acc)        (d_w * d_x is exact)
 *     acc  = fma(m_w, s_x, acc)                      (q4_1 / q5_1 only)
 * starting from acc = 0: whatever lane, tile shape or token count, the
 * result is the same bits, and vec_dot_q (one pair) does the same sequence.
 */
#include <immintrin.h>
#include <string.h>

#include "base/cpu.h"
#include "kernels/dot.h"
#include "kernels/x86/packed_x86.h"
#include "tensor/blocks.h"

/* ------------------------------------------------------------ per type */

/* the unsigned offset of the codes (0 when the type has a min instead) */
static inline int code_off(wtype t) {
    switch (t) {
    case T_Q4_0:
        return 8;
    case T_Q5_0:
        return 16;
    case T_Q8_0:
        return 128;
    default:
        return 0;
    }
}

/*
 * Activation dword offsets matching U[g]: for nibble types U[2j] holds the
 * low nibbles of dword j (codes 4j..4j+3), U[2j+1] the high ones (codes
 * 16+4j..); for q8_0, U[2j] holds dword j and U[2j+1] dword 4+j.
 */
static const int XOFF[8] = {0, 16, 4, 20, 8, 24, 12, 28};

/* 4x4 transpose of dwords inside each 128-bit lane of a, b, c, d. */
static inline void transpose4(__m512i a, __m512i b, __m512i c, __m512i d, __m512i out[4]) {
    const __m512i t0 = _mm512_unpacklo_epi32(a, b), t1 = _mm512_unpackhi_epi32(a, b);
    const __m512i t2 = _mm512_unpacklo_epi32(c, d), t3 = _mm512_unpackhi_epi32(c, d);
    out[0] = _mm512_unpacklo_epi64(t0, t2);
    out[1] = _mm512_unpackhi_epi64(t0, t2);
    out[2] = _mm512_unpacklo_epi64(t1, t3);
    out[3] = _mm512_unpackhi_epi64(t1, t3);
}

/*
 * The 16 rows of a group: evenly spaced (base + i * rb: the common case, kept
 * in a few registers), or an array (a group of fewer than 16 rows, padded by
 * repeating the last). `uni` is a compile-time constant after inlining.
 */
typedef struct {
    const uint8_t *base;
    size_t rb;
    const uint8_t *const *p;
    int uni;
} rows16;

static inline const uint8_t *rp(rows16 R, int i) {
    return R.uni ? R.base + (size_t)i * R.rb : R.p[i];
}

/* 16 bytes of rows j, 4+j, 8+j, 12+j (at byte offset off) in the four 128-bit lanes */
static inline __m512i load4(rows16 R, int j, size_t off) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(rp(R, j) + off)));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rp(R, 4 + j) + off)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rp(R, 8 + j) + off)), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rp(R, 12 + j) + off)), 3);
}

/*
 * Lanes (4k + j) of T[g] come from row X_j's lane k, X_j holding rows j, 4+j,
 * 8+j, 12+j: so lane i is row i.
 */
static inline void load_rows16(rows16 R, size_t off, __m512i T[4]) {
    transpose4(load4(R, 0, off), load4(R, 1, off), load4(R, 2, off), load4(R, 3, off), T);
}

/* lane i: rp(R, i) - rp(R, 0), for the gathers */
static inline __m512i row_index(rows16 R) {
    if (R.uni)
        return _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            _mm512_set1_epi32((int)R.rb));
    int32_t idx[16];
    for (int i = 0; i < 16; i++) idx[i] = (int32_t)(R.p[i] - R.p[0]);
    return _mm512_loadu_si512(idx);
}

typedef struct {
    __m512i u[8]; /* unsigned codes, see XOFF */
    __m512 d, m;  /* per-row scale (and min) as floats */
} wblock;

/*
 * Decode the block at byte offset off of the 16 rows R. vidx: row_index(R)
 * (the gathers read each row's d / m / qh).
 */
static inline void load_block(wtype t, rows16 R, size_t off, __m512i vidx, wblock *wb) {
    const __m512i dm = _mm512_i32gather_epi32(vidx, (const void *)(rp(R, 0) + off), 1);
    wb->d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dm));
    if (has_min(t)) wb->m = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dm, 16)));
    __m512i T[4];
    if (t == T_Q8_0) {
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        __m512i H[4];
        load_rows16(R, off + 2, T);
        load_rows16(R, off + 18, H);
        for (int j = 0; j < 4; j++) {
            wb->u[2 * j] = _mm512_xor_si512(T[j], flip);
            wb->u[2 * j + 1] = _mm512_xor_si512(H[j], flip);
        }
        return;
    }
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    load_rows16(R, off + wqs(t), T);
    for (int j = 0; j < 4; j++) {
        wb->u[2 * j] = _mm512_and_si512(T[j], m4);
        wb->u[2 * j + 1] = _mm512_and_si512(_mm512_srli_epi16(T[j], 4), m4);
    }
    if (has_qh(t)) {
        /* qh bit k is code k's fifth bit: spread bits 4g'..4g'+3 (g' the
         * code group) over the 4 bytes of each lane and add 16 where set */
        const __m512i qh =
            _mm512_i32gather_epi32(vidx, (const void *)(rp(R, 0) + off + wqs(t) - 4), 1);
        const __m512i sixteen = _mm512_set1_epi8(16);
        /* byte q of a 128-bit lane: the first byte of its dword */
        const __m512i lane_base = _mm512_set1_epi64(0x0404040400000000LL);
        const __m512i base = _mm512_add_epi8(
            lane_base, _mm512_set_epi64(0x0808080808080808LL, 0, 0x0808080808080808LL, 0,
                                        0x0808080808080808LL, 0, 0x0808080808080808LL, 0));
        for (int g = 0; g < 8; g++) {
            const int first = XOFF[g]; /* code index of the group's first code */
            /* every byte of a dword gets that lane's qh byte first/8 ... */
            const __m512i by =
                _mm512_shuffle_epi8(qh, _mm512_add_epi8(base, _mm512_set1_epi8((char)(first / 8))));
            /* ... and byte i tests bit first%8 + i of it */
            const __m512i bit = _mm512_set1_epi32((int)(0x08040201u << (first % 8)));
            const __mmask64 k = _mm512_test_epi8_mask(by, bit);
            wb->u[g] = _mm512_mask_add_epi8(wb->u[g], k, wb->u[g], sixteen);
        }
    }
}

static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

static inline int32_t load_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* sum of the 32 activation codes of an 8-bit block */
static inline int sum_codes(const uint8_t *qs) {
    const __m256i x = _mm256_loadu_si256((const __m256i *)qs);
    const __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), x);
    __m128i v = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
    return _mm_cvtsi128_si32(v);
}

/*
 * Rows R times NC tokens x[0..NC-1]; lanes in mask k stored to y[c * ldy + i].
 * Always inlined with NC and R.uni constant.
 */
static inline __attribute__((always_inline)) void tile16(wtype t, int NC, int64_t nb, rows16 R,
                                                         const uint8_t *const x[8], __mmask16 k,
                                                         float *y, size_t ldy) {
    const size_t ws = bsize(t), xs = xsize(t);
    const int off = code_off(t);
    const __m512i vidx = row_index(R);
    __m512 acc[8];
    for (int c = 0; c < NC; c++) acc[c] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const size_t wo = (size_t)b * ws;
        if (NC == 1 && (b & 3) == 0)
            for (int i = 0; i < 16; i++)
                _mm_prefetch((const char *)rp(R, i) + wo + 16 * ws, _MM_HINT_T0);
        wblock wb;
        load_block(t, R, wo, vidx, &wb);
        for (int c = 0; c < NC; c++) {
            const uint8_t *xb = x[c] + (size_t)b * xs;
            const uint8_t *xq = xb + xqs(t);
            __m512i s = off ? _mm512_set1_epi32(-off * sum_codes(xq)) : _mm512_setzero_si512();
            for (int g = 0; g < 8; g++)
                s = _mm512_dpbusd_epi32(s, wb.u[g], _mm512_set1_epi32(load_i32(xq + XOFF[g])));
            const __m512 dd = _mm512_mul_ps(wb.d, _mm512_set1_ps(h2f(xb)));
            acc[c] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(s), acc[c]);
            if (has_min(t)) acc[c] = _mm512_fmadd_ps(wb.m, _mm512_set1_ps(h2f(xb + 2)), acc[c]);
        }
    }
    for (int c = 0; c < NC; c++) _mm512_mask_storeu_ps(y + (size_t)c * ldy, k, acc[c]);
}

/*
 * The 16-row groups of nr rows: group starts r0, the rows to keep (mask, in
 * lanes) and the addressing. A last group of fewer than 16 rows is moved back
 * to end at row nr when nr >= 16 (its first lanes recompute rows the previous
 * group has: not stored), else it repeats the last row.
 */
typedef struct {
    int r0;
    __mmask16 k;
    const uint8_t *pad[16];
} group16;

static inline rows16 group_rows(const void *w, size_t rb, int nr, int g0, group16 *g) {
    rows16 R = {0};
    const int rows = nr - g0 < 16 ? nr - g0 : 16;
    R.rb = rb;
    if (rows == 16 || nr >= 16) {
        g->r0 = rows == 16 ? g0 : nr - 16;
        g->k = (__mmask16)(0xffffu << (16 - rows));
        R.base = (const uint8_t *)w + (size_t)g->r0 * rb;
        R.uni = 1;
    } else {
        g->r0 = g0;
        g->k = (__mmask16)((1u << rows) - 1);
        for (int i = 0; i < 16; i++)
            g->pad[i] = (const uint8_t *)w + (size_t)(g0 + (i < rows ? i : rows - 1)) * rb;
        R.p = g->pad;
        R.uni = 0;
    }
    return R;
}

/*
 * Batches (4 tokens or more): the transposed blocks are kept for a run of
 * KB blocks of 16 rows, each token's per-block terms (d_x, s_x, the offset
 * correction) are computed once per run for all 16-row groups, and every
 * token of the call passes over the kept blocks TG at a time. y holds the
 * running sums between runs (a float stored and reloaded is the same float,
 * so the per-pair sequence is unchanged).
 */
enum { KB = 32, RS = 64, CB = 64, TG = 8 };

typedef struct {
    int32_t corr[CB][KB]; /* -off * sum of the token's block codes */
    float d[CB][KB], s[CB][KB];
} xinfo;

static inline __attribute__((always_inline)) void
run_tokens(wtype t, int NC, int kb, const wblock *wbuf, const xinfo *xi, int c0,
           const uint8_t *const x[TG], size_t xs, int first, __mmask16 k, float *y, size_t ldy) {
    __m512 acc[TG];
    for (int c = 0; c < NC; c++)
        acc[c] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(k, y + (size_t)c * ldy);
    for (int b = 0; b < kb; b++) {
        const wblock *wb = &wbuf[b];
        __m512i u[8];
        for (int g = 0; g < 8; g++) u[g] = wb->u[g];
        for (int c = 0; c < NC; c++) {
            const uint8_t *xq = x[c] + (size_t)b * xs + xqs(t);
            __m512i s =
                code_off(t) ? _mm512_set1_epi32(xi->corr[c0 + c][b]) : _mm512_setzero_si512();
            for (int g = 0; g < 8; g++)
                s = _mm512_dpbusd_epi32(s, u[g], _mm512_set1_epi32(load_i32(xq + XOFF[g])));
            const __m512 dd = _mm512_mul_ps(wb->d, _mm512_set1_ps(xi->d[c0 + c][b]));
            acc[c] = _mm512_fmadd_ps(dd, _mm512_cvtepi32_ps(s), acc[c]);
            if (has_min(t))
                acc[c] = _mm512_fmadd_ps(wb->m, _mm512_set1_ps(xi->s[c0 + c][b]), acc[c]);
        }
    }
    for (int c = 0; c < NC; c++) _mm512_mask_storeu_ps(y + (size_t)c * ldy, k, acc[c]);
}

static inline __attribute__((always_inline)) void gemm_batch(wtype t, int64_t n, const void *w,
                                                             size_t w_row_bytes, int nr,
                                                             const void *xq, size_t xq_row_bytes,
                                                             int nc, float *y, size_t ldy) {
    const int64_t nb = n / IG_QK;
    const size_t ws = bsize(t), xs = xsize(t);
    const int off = code_off(t);
    wblock wbuf[KB];
    xinfo xi;
    for (int cb = 0; cb < nc; cb += CB) {
        const int nct = nc - cb < CB ? nc - cb : CB;
        const uint8_t *xbase = (const uint8_t *)xq + (size_t)cb * xq_row_bytes;
        for (int rs = 0; rs < nr; rs += RS) {
            const int nrs = nr - rs < RS ? nr - rs : RS;
            for (int64_t k0 = 0; k0 < nb; k0 += KB) {
                const int kb = nb - k0 < KB ? (int)(nb - k0) : KB;
                for (int c = 0; c < nct; c++) {
                    const uint8_t *xb = xbase + (size_t)c * xq_row_bytes + (size_t)k0 * xs;
                    for (int b = 0; b < kb; b++, xb += xs) {
                        xi.d[c][b] = h2f(xb);
                        if (has_min(t)) xi.s[c][b] = h2f(xb + 2);
                        if (off) xi.corr[c][b] = -off * sum_codes(xb + xqs(t));
                    }
                }
                for (int g0 = rs; g0 < rs + nrs; g0 += 16) {
                    group16 grp;
                    const rows16 R = group_rows(w, w_row_bytes, nr, g0, &grp);
                    const int r0 = grp.r0;
                    const __mmask16 k = grp.k;
                    if (R.uni) {
                        const __m512i vidx = row_index(R);
                        for (int b = 0; b < kb; b++)
                            load_block(t, R, (size_t)(k0 + b) * ws, vidx, &wbuf[b]);
                    } else {
                        const __m512i vidx = row_index(R);
                        for (int b = 0; b < kb; b++)
                            load_block(t, R, (size_t)(k0 + b) * ws, vidx, &wbuf[b]);
                    }
                    for (int c0 = 0; c0 < nct; c0 += TG) {
                        const int cols = nct - c0 < TG ? nct - c0 : TG;
                        const uint8_t *x[TG];
                        for (int c = 0; c < TG; c++)
                            x[c] = xbase + (size_t)(c0 + (c < cols ? c : cols - 1)) * xq_row_bytes +
                                   (size_t)k0 * xs;
                        float *yt = y + (size_t)(cb + c0) * ldy + r0;
                        const int first = k0 == 0;
                        switch (cols) {
                        case 1:
                            run_tokens(t, 1, kb, wbuf, &xi, c0, x, xs, first, k, yt, ldy);
                            break;
                        case 2:
                            run_tokens(t, 2, kb, wbuf, &xi, c0, x, xs, first, k, yt, ldy);
                            break;
                        case 3:
                            run_tokens(t, 3, kb, wbuf, &xi, c0, x, xs, first, k, yt, ldy);
                            break;
                        case 4:
                            run_tokens(t, 4, kb, wbuf, &xi, c0, x, xs, first, k, yt, ldy);
                            break;
                        case 5:
                            run_tokens(t, 5, kb, wbuf, &xi, c0, x, xs, first, k, yt, ldy);
                            break;
                        case 6:
                            run_tokens(t, 6, kb, wbuf, &xi, c0, x, xs, first, k, yt, ldy);
                            break;
                        case 7:
                            run_tokens(t, 7, kb, wbuf, &xi, c0, x, xs, first, k, yt, ldy);
                            break;
                        default:
                            run_tokens(t, 8, kb, wbuf, &xi, c0, x, xs, first, k, yt, ldy);
                            break;
                        }
                    }
                }
            }
        }
    }
}

/* Decode-sized calls (1-3 tokens): each block transposed and used at once, weights streamed. */
static inline __attribute__((always_inline)) void gemm_t(wtype t, int64_t n, const void *w,
                                                         size_t w_row_bytes, int nr, const void *xq,
                                                         size_t xq_row_bytes, int nc, float *y,
                                                         size_t ldy) {
    if (nc >= 4) {
        gemm_batch(t, n, w, w_row_bytes, nr, xq, xq_row_bytes, nc, y, ldy);
        return;
    }
    const int64_t nb = n / IG_QK;
    const uint8_t *x[8];
    for (int c = 0; c < 8; c++)
        x[c] = (const uint8_t *)xq + (size_t)(c < nc ? c : nc - 1) * xq_row_bytes;
    for (int g0 = 0; g0 < nr; g0 += 16) {
        group16 grp;
        rows16 R = group_rows(w, w_row_bytes, nr, g0, &grp);
        float *yt = y + grp.r0;
        if (R.uni) {
            R.uni = 1; /* constant for the inlined copies below */
            switch (nc) {
            case 1:
                tile16(t, 1, nb, R, x, grp.k, yt, ldy);
                break;
            case 2:
                tile16(t, 2, nb, R, x, grp.k, yt, ldy);
                break;
            default:
                tile16(t, 3, nb, R, x, grp.k, yt, ldy);
                break;
            }
        } else {
            R.uni = 0;
            switch (nc) {
            case 1:
                tile16(t, 1, nb, R, x, grp.k, yt, ldy);
                break;
            case 2:
                tile16(t, 2, nb, R, x, grp.k, yt, ldy);
                break;
            default:
                tile16(t, 3, nb, R, x, grp.k, yt, ldy);
                break;
            }
        }
    }
}

/*
 * One pair: the same per-block sequence as tile16, one row at a time (the
 * integer sum computed differently, exactly).
 */
static inline __attribute__((always_inline)) float dot_t(wtype t, const void *row, const void *xqv,
                                                         int64_t n) {
    const size_t ws = bsize(t), xs = xsize(t);
    const int off = code_off(t);
    const uint8_t *w = row, *x = xqv;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    float acc = 0.0f;
    for (int64_t b = 0; b < n / IG_QK; b++, w += ws, x += xs) {
        const uint8_t *xq = x + xqs(t);
        const __m256i xv = _mm256_loadu_si256((const __m256i *)xq);
        __m256i u;
        if (t == T_Q8_0) {
            u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(w + 2)),
                                 _mm256_set1_epi8((char)0x80));
        } else {
            const __m128i q = _mm_loadu_si128((const __m128i *)(w + wqs(t)));
            u = _mm256_and_si256(
                _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1), m4);
            if (has_qh(t)) {
                /* code k's fifth bit is qh bit k: a byte mask from the 32 bits */
                uint32_t qh;
                memcpy(&qh, w + wqs(t) - 4, 4);
                u = _mm256_mask_add_epi8(u, (__mmask32)qh, u, _mm256_set1_epi8(16));
            }
        }
        __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, xv);
        __m128i v = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
        v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
        int isum = _mm_cvtsi128_si32(v);
        if (off) isum -= off * sum_codes(xq);
        acc = __builtin_fmaf(h2f(w) * h2f(x), (float)isum, acc);
        if (has_min(t)) acc = __builtin_fmaf(h2f(w + 2), h2f(x + 2), acc);
    }
    return acc;
}

#define DEFINE(name, T)                                                                            \
    static float dot_##name(const void *row, const void *xq, int64_t n) {                          \
        return dot_t(T, row, xq, n);                                                               \
    }                                                                                              \
    static void gemm_##name(int64_t n, const void *w, size_t wrb, int nr, const void *xq,          \
                            size_t xrb, int nc, float *y, size_t ldy) {                            \
        gemm_t(T, n, w, wrb, nr, xq, xrb, nc, y, ldy);                                             \
    }
DEFINE(q4_0, T_Q4_0)
DEFINE(q4_1, T_Q4_1)
DEFINE(q5_0, T_Q5_0)
DEFINE(q5_1, T_Q5_1)
DEFINE(q8_0, T_Q8_0)

void ig__dot_register_legacy_avx512(ig_dot_kernel *table) {
    const ig_cpu_features *f = ig_cpu_features_get();
    if (!f->avx512_vnni) return;
    table[IG_TYPE_Q4_0].vec_dot_q = dot_q4_0, table[IG_TYPE_Q4_0].gemm_q = gemm_q4_0;
    table[IG_TYPE_Q4_1].vec_dot_q = dot_q4_1, table[IG_TYPE_Q4_1].gemm_q = gemm_q4_1;
    table[IG_TYPE_Q5_0].vec_dot_q = dot_q5_0, table[IG_TYPE_Q5_0].gemm_q = gemm_q5_0;
    table[IG_TYPE_Q5_1].vec_dot_q = dot_q5_1, table[IG_TYPE_Q5_1].gemm_q = gemm_q5_1;
    table[IG_TYPE_Q8_0].vec_dot_q = dot_q8_0, table[IG_TYPE_Q8_0].gemm_q = gemm_q8_0;
}
