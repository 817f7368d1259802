/*
 * legacy_avx2.c: AVX2 kernels for the legacy block types (q4_0, q4_1, q5_0,
 * q5_1, q8_0 weights with q8_0 / q8_1 activations), and the q8_0 / q8_1
 * activation quantizers. Compiled with -mavx2 -mfma -mf16c (CMakeLists.txt);
 * only reached through kernels/dot.c.
 *
 * The layout of the work is legacy_avx512.c's with 8 rows per vector: for
 * each block the 8 rows' codes are transposed into 8 vectors U[g] (lane i =
 * 4 consecutive codes of row i), one token's 4 matching activation codes are
 * broadcast, and vpmaddubsw + vpmaddwd leave row i's integer block sum in
 * lane i. The transpose is shared by up to 4 tokens.
 *
 * Overflow: vpmaddubsw adds two u8 x s8 products in int16 with saturation,
 * so the codes it sees must keep every partial sum inside int16: nibble
 * codes (<= 15) are summed over all 8 groups in int16 (16 products <= 16 *
 * 15 * 127 = 30480); 5-bit codes (<= 31) over 4 groups (8 * 31 * 127 =
 * 31496); q8_0 weights stay signed and go through the sign trick
 * (|w| x sign(x, w): a pair is at most 2 * 128 * 127 = 32512), one group at
 * a time.
 *
 * Batch invariance: per (row, token) pair, per block in order,
 *     acc = fma(d_w * d_x, (float)isum, acc); [acc = fma(m_w, s_x, acc)]
 * from acc = 0, in the tile and in vec_dot_q alike (see legacy_avx512.c).
 */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "kernels/dot.h"
#include "kernels/x86/packed_x86.h"
#include "tensor/blocks.h"
#include "tensor/fp16.h"

/* ------------------------------------------------------- quantizers */

/*
 * One block of 32 activations, exactly as act_quant.c's q8_block: amax over
 * |x| (NaN ignored), d = amax / 127, codes round_half_even(x * 127 / amax)
 * clamped to [-127, 127], NaN products to 0. Returns d; *sum = sum of codes.
 */
static inline float q8_block(const float *x, int8_t *qs, int *sum) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[4], mx = _mm256_setzero_ps();
    for (int i = 0; i < 4; i++) {
        v[i] = _mm256_loadu_ps(x + 8 * i);
        mx = _mm256_max_ps(_mm256_andnot_ps(sign, v[i]), mx); /* NaN: keeps mx */
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float amax = _mm_cvtss_f32(m);
    const float d = amax / 127.0f;
    const __m256 id = _mm256_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    __m256i q[4];
    for (int i = 0; i < 4; i++) {
        __m256 p = _mm256_mul_ps(v[i], id);
        p = _mm256_and_ps(p, _mm256_cmp_ps(p, p, _CMP_ORD_Q)); /* NaN -> 0 */
        p = _mm256_min_ps(_mm256_max_ps(p, lo), hi);
        q[i] =
            _mm256_cvtps_epi32(_mm256_round_ps(p, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4e));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0xb1));
    *sum = _mm_cvtsi128_si32(s4);
    /* packs interleave the 128-bit lanes: 0 1 4 5 | 2 3 6 7 in dwords of 4 codes */
    const __m256i p16a = _mm256_packs_epi32(q[0], q[1]), p16b = _mm256_packs_epi32(q[2], q[3]);
    const __m256i p8 = _mm256_packs_epi16(p16a, p16b);
    const __m256i out = _mm256_permutevar8x32_epi32(p8, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, out);
    return d;
}

static void quantize_q8_0(const float *x, void *dst, int64_t n) {
    ig_block_q8_0 *b = dst;
    for (int64_t k = 0; k < n / IG_QK; k++, b++, x += IG_QK) {
        int sum;
        b->d = ig_fp32_to_fp16(q8_block(x, b->qs, &sum));
    }
}

static void quantize_q8_1(const float *x, void *dst, int64_t n) {
    ig_block_q8_1 *b = dst;
    for (int64_t k = 0; k < n / IG_QK; k++, b++, x += IG_QK) {
        int sum;
        const float d = q8_block(x, b->qs, &sum);
        b->d = ig_fp32_to_fp16(d);
        b->s = ig_fp32_to_fp16(d * (float)sum);
    }
}

/* ------------------------------------------------------------ per type */

/* unsigned offset of nibble codes (q8_0 codes are used signed) */
static inline int code_off(wtype t) {
    return t == T_Q4_0 ? 8 : t == T_Q5_0 ? 16 : 0;
}

/* activation code offsets of U[g] (see legacy_avx512.c) */
static const int XOFF[8] = {0, 16, 4, 20, 8, 24, 12, 28};

static inline void transpose4(__m256i a, __m256i b, __m256i c, __m256i d, __m256i out[4]) {
    const __m256i t0 = _mm256_unpacklo_epi32(a, b), t1 = _mm256_unpackhi_epi32(a, b);
    const __m256i t2 = _mm256_unpacklo_epi32(c, d), t3 = _mm256_unpackhi_epi32(c, d);
    out[0] = _mm256_unpacklo_epi64(t0, t2);
    out[1] = _mm256_unpackhi_epi64(t0, t2);
    out[2] = _mm256_unpacklo_epi64(t1, t3);
    out[3] = _mm256_unpackhi_epi64(t1, t3);
}

/* 16 bytes of rows j and 4+j in the two 128-bit lanes; after transpose4 lane i is row i */
static inline __m256i load2(const uint8_t *const p[8], int j, size_t off) {
    return _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(p[j] + off))),
        _mm_loadu_si128((const __m128i *)(p[4 + j] + off)), 1);
}

static inline void load_rows8(const uint8_t *const p[8], size_t off, __m256i T[4]) {
    transpose4(load2(p, 0, off), load2(p, 1, off), load2(p, 2, off), load2(p, 3, off), T);
}

typedef struct {
    __m256i u[8]; /* codes (unsigned nibble codes; q8_0: |w|) */
    __m256i s[8]; /* q8_0 only: the weights, for the sign trick */
    __m256 d, m;
} wblock;

static inline void load_block(wtype t, const uint8_t *const p[8], __m256i vidx, wblock *wb) {
    const __m256i dm = _mm256_i32gather_epi32((const int *)p[0], vidx, 1);
    /* low halves of the 8 dwords -> 8 halves */
    const __m256i sh16 = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1,
                                          0, 1, 4, 5, 8, 9, 12, 13, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i h = _mm256_shuffle_epi8(dm, sh16);
    h = _mm256_permute4x64_epi64(h, 0x08);
    wb->d = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    if (has_min(t)) {
        __m256i hm = _mm256_shuffle_epi8(_mm256_srli_epi32(dm, 16), sh16);
        hm = _mm256_permute4x64_epi64(hm, 0x08);
        wb->m = _mm256_cvtph_ps(_mm256_castsi256_si128(hm));
    }
    __m256i T[4];
    if (t == T_Q8_0) {
        __m256i H[4];
        load_rows8(p, 2, T);
        load_rows8(p, 18, H);
        for (int j = 0; j < 4; j++) {
            wb->s[2 * j] = T[j], wb->s[2 * j + 1] = H[j];
            wb->u[2 * j] = _mm256_abs_epi8(T[j]);
            wb->u[2 * j + 1] = _mm256_abs_epi8(H[j]);
        }
        return;
    }
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    load_rows8(p, wqs(t), T);
    for (int j = 0; j < 4; j++) {
        wb->u[2 * j] = _mm256_and_si256(T[j], m4);
        wb->u[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(T[j], 4), m4);
    }
    if (has_qh(t)) {
        const __m256i qh = _mm256_i32gather_epi32((const int *)(p[0] + wqs(t) - 4), vidx, 1);
        const __m256i base = _mm256_setr_epi8(0, 0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12, 0,
                                              0, 0, 0, 4, 4, 4, 4, 8, 8, 8, 8, 12, 12, 12, 12);
        for (int g = 0; g < 8; g++) {
            const int first = XOFF[g];
            const __m256i by =
                _mm256_shuffle_epi8(qh, _mm256_add_epi8(base, _mm256_set1_epi8((char)(first / 8))));
            const __m256i bit = _mm256_set1_epi32((int)(0x08040201u << (first % 8)));
            /* 16 where the bit is set */
            const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(by, bit), bit);
            wb->u[g] = _mm256_or_si256(wb->u[g], _mm256_and_si256(set, _mm256_set1_epi8(16)));
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

static inline int hsum8(__m256i s) {
    __m128i v = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
    v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
    return _mm_cvtsi128_si32(v);
}

static inline int sum_codes(const uint8_t *qs) {
    const __m256i x = _mm256_loadu_si256((const __m256i *)qs);
    const __m256i p = _mm256_maddubs_epi16(_mm256_set1_epi8(1), x);
    return hsum8(_mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

/* lane i: exact integer dot of row i's block codes with one token's block codes */
static inline __m256i block_isum(wtype t, const wblock *wb, const uint8_t *xq) {
    const __m256i ones = _mm256_set1_epi16(1);
    if (t == T_Q8_0) {
        __m256i s = _mm256_setzero_si256();
        for (int g = 0; g < 8; g++) {
            const __m256i x = _mm256_set1_epi32(load_i32(xq + XOFF[g]));
            const __m256i p = _mm256_maddubs_epi16(wb->u[g], _mm256_sign_epi8(x, wb->s[g]));
            s = _mm256_add_epi32(s, _mm256_madd_epi16(p, ones));
        }
        return s;
    }
    __m256i s16[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int g = 0; g < 8; g++) {
        const __m256i x = _mm256_set1_epi32(load_i32(xq + XOFF[g]));
        const int a = has_qh(t) ? g / 4 : 0;
        s16[a] = _mm256_add_epi16(s16[a], _mm256_maddubs_epi16(wb->u[g], x));
    }
    __m256i s = _mm256_madd_epi16(s16[0], ones);
    if (has_qh(t)) s = _mm256_add_epi32(s, _mm256_madd_epi16(s16[1], ones));
    const int off = code_off(t);
    if (off) s = _mm256_sub_epi32(s, _mm256_set1_epi32(off * sum_codes(xq)));
    return s;
}

static inline __attribute__((always_inline)) void tile8(wtype t, int NC, int64_t nb,
                                                        const uint8_t *const p0[8],
                                                        const uint8_t *const x[4], int nr, float *y,
                                                        size_t ldy) {
    const size_t ws = bsize(t), xs = xsize(t);
    int32_t idx[8];
    for (int i = 0; i < 8; i++) idx[i] = (int32_t)(p0[i] - p0[0]);
    const __m256i vidx = _mm256_loadu_si256((const __m256i *)idx);
    __m256 acc[4];
    for (int c = 0; c < NC; c++) acc[c] = _mm256_setzero_ps();
    const uint8_t *p[8];
    for (int i = 0; i < 8; i++) p[i] = p0[i];
    for (int64_t b = 0; b < nb; b++) {
        if (NC == 1 && (b & 3) == 0)
            for (int i = 0; i < 8; i++) _mm_prefetch((const char *)p[i] + 16 * ws, _MM_HINT_T0);
        wblock wb;
        load_block(t, p, vidx, &wb);
        for (int c = 0; c < NC; c++) {
            const uint8_t *xb = x[c] + (size_t)b * xs;
            const __m256i s = block_isum(t, &wb, xb + xqs(t));
            const __m256 dd = _mm256_mul_ps(wb.d, _mm256_set1_ps(h2f(xb)));
            acc[c] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(s), acc[c]);
            if (has_min(t)) acc[c] = _mm256_fmadd_ps(wb.m, _mm256_set1_ps(h2f(xb + 2)), acc[c]);
        }
        for (int i = 0; i < 8; i++) p[i] += ws;
    }
    for (int c = 0; c < NC; c++) {
        if (nr == 8) {
            _mm256_storeu_ps(y + (size_t)c * ldy, acc[c]);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, acc[c]);
            memcpy(y + (size_t)c * ldy, tmp, (size_t)nr * sizeof(float));
        }
    }
}

static inline __attribute__((always_inline)) void gemm_t(wtype t, int64_t n, const void *w,
                                                         size_t w_row_bytes, int nr, const void *xq,
                                                         size_t xq_row_bytes, int nc, float *y,
                                                         size_t ldy) {
    const int64_t nb = n / IG_QK;
    for (int r0 = 0; r0 < nr; r0 += 8) {
        const int rows = nr - r0 < 8 ? nr - r0 : 8;
        const uint8_t *p[8];
        for (int i = 0; i < 8; i++)
            p[i] = (const uint8_t *)w + (size_t)(r0 + (i < rows ? i : rows - 1)) * w_row_bytes;
        for (int c0 = 0; c0 < nc; c0 += 4) {
            const int cols = nc - c0 < 4 ? nc - c0 : 4;
            const uint8_t *x[4];
            for (int c = 0; c < 4; c++)
                x[c] =
                    (const uint8_t *)xq + (size_t)(c0 + (c < cols ? c : cols - 1)) * xq_row_bytes;
            float *yt = y + (size_t)c0 * ldy + r0;
            switch (cols) {
            case 1:
                tile8(t, 1, nb, p, x, rows, yt, ldy);
                break;
            case 2:
                tile8(t, 2, nb, p, x, rows, yt, ldy);
                break;
            case 3:
                tile8(t, 3, nb, p, x, rows, yt, ldy);
                break;
            default:
                tile8(t, 4, nb, p, x, rows, yt, ldy);
                break;
            }
        }
    }
}

/* One pair, the same per-block float sequence as tile8. */
static inline __attribute__((always_inline)) float dot_t(wtype t, const void *row, const void *xqv,
                                                         int64_t n) {
    const size_t ws = bsize(t), xs = xsize(t);
    const uint8_t *w = row, *x = xqv;
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    float acc = 0.0f;
    for (int64_t b = 0; b < n / IG_QK; b++, w += ws, x += xs) {
        const uint8_t *xq = x + xqs(t);
        const __m256i xv = _mm256_loadu_si256((const __m256i *)xq);
        __m256i s;
        if (t == T_Q8_0) {
            const __m256i wv = _mm256_loadu_si256((const __m256i *)(w + 2));
            s = _mm256_madd_epi16(
                _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv)), ones);
        } else {
            const __m128i q = _mm_loadu_si128((const __m128i *)(w + wqs(t)));
            __m256i u = _mm256_and_si256(
                _mm256_inserti128_si256(_mm256_castsi128_si256(q), _mm_srli_epi16(q, 4), 1), m4);
            if (has_qh(t)) {
                /* byte k gets bit k of qh as 16 */
                uint32_t qh;
                memcpy(&qh, w + wqs(t) - 4, 4);
                const __m256i rep = _mm256_shuffle_epi8(
                    _mm256_set1_epi32((int)qh),
                    _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2,
                                     2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
                const __m256i bit = _mm256_set1_epi64x(0x8040201008040201LL);
                const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(rep, bit), bit);
                u = _mm256_or_si256(u, _mm256_and_si256(set, _mm256_set1_epi8(16)));
            }
            s = _mm256_madd_epi16(_mm256_maddubs_epi16(u, xv), ones);
        }
        int isum = hsum8(s);
        if (code_off(t)) isum -= code_off(t) * sum_codes(xq);
        acc = fmaf(h2f(w) * h2f(x), (float)isum, acc);
        if (has_min(t)) acc = fmaf(h2f(w + 2), h2f(x + 2), acc);
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

void ig__dot_register_legacy_avx2(ig_dot_kernel *table) {
    table[IG_TYPE_Q4_0] = (ig_dot_kernel){IG_TYPE_Q8_0, quantize_q8_0, dot_q4_0, gemm_q4_0, NULL};
    table[IG_TYPE_Q4_1] = (ig_dot_kernel){IG_TYPE_Q8_1, quantize_q8_1, dot_q4_1, gemm_q4_1, NULL};
    table[IG_TYPE_Q5_0] = (ig_dot_kernel){IG_TYPE_Q8_0, quantize_q8_0, dot_q5_0, gemm_q5_0, NULL};
    table[IG_TYPE_Q5_1] = (ig_dot_kernel){IG_TYPE_Q8_1, quantize_q8_1, dot_q5_1, gemm_q5_1, NULL};
    table[IG_TYPE_Q8_0] = (ig_dot_kernel){IG_TYPE_Q8_0, quantize_q8_0, dot_q8_0, gemm_q8_0, NULL};
}
