/*
 * kquant_avx512.c: AVX-512 (BW/VL/VNNI) dot products of K-quant weight rows
 * (q2_K, q3_K, q4_K, q5_K, q6_K) with q8_K activations: one row . one token
 * (vec_dot_q) and the gemm_q entry: with fewer than 4 tokens (decode), 4
 * rows per pass over each token's activations (rows4); with more, a 4 x 4
 * (rows x tokens) tile kernel over chunks of 64 tokens.
 *
 * Measured (1 thread, weights in L2, noisy shared Zen 5, ns per super-block
 * of one row and one token): q4_K vec_dot 5.7, rows4 4.3, 64-token tile
 * 1.8; q6_K 4.2, 3.7, 1.7 (a timing loop over 512 rows of 2048 values).
 *
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni (and the AVX2
 * flags); called only when the CPU level is IG_CPU_AVX512.
 *
 * Arithmetic, and why it is bit-identical to the reference: for one
 * super-block of one (row, token) pair, the reference (tensor/vec_dot_q.c)
 * forms exact integer sums, isum = sum over sub-blocks of scale * (codes .
 * activations), and for q2_K/q4_K/q5_K isum_min = sum of min * bsums, then
 *     sum += (double)(d_w * d_x) * isum;  sum -= (double)(dmin_w * d_x) * isum_min;
 * and returns (float)sum. These kernels compute the same integers in a
 * different order (integers are exact, so the order does not matter) and
 * then do the same float and double operations in the same order per pair,
 * super-block after super-block. So every output equals the scalar
 * reference bit for bit, whatever the batch size, tile shape, thread count
 * or position of a token in a batch (batch invariance for free). The
 * translation unit is built in ISO C mode, where GCC does not contract a
 * multiply and an add into an FMA (-ffp-contract=off), which the double
 * steps rely on.
 *
 * The integers: a super-block is 4 "quarters" of 64 values. Each quarter of
 * weights is decoded to 64 unsigned codes u (q2: 0..3, q3: 0..7 = q + 4,
 * q4: 0..15, q5: 0..31, q6: 0..63 = q + 32) in value order, so the
 * activations are read as they lie in memory. vpmaddubsw gives the sums of
 * adjacent pairs u * x (at most 2 * 63 * 127, no saturation: q8_K codes are
 * in [-127, 127]); vpdpwssd multiplies those by the sub-block scale of each
 * pair lane and accumulates in int32. The offsets of the signed types (q3:
 * -4, q6: -32) and the mins of q2/q4/q5 multiply the activations' bsums
 * (sums of 16 codes) by a per-16-values coefficient: "bterm". This uses the
 * q8_K invariant bsums[g] = sum of qs[16g .. 16g+15], which quantize_act
 * guarantees.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "base/cpu.h"
#include "kernels/dot.h"
#include "kernels/x86/kquant_x86.h"
#include "tensor/blocks.h"

enum { KQ2, KQ3, KQ4, KQ5, KQ6 };

/* One decoded weight super-block. */
typedef struct {
    __m512i u[4]; /* codes of values 64q .. 64q+63 (u8) */
    __m512i s[4]; /* scale (int16) of each vpmaddubsw pair lane of quarter q */
    __m256i c;    /* coefficient (int16) of bsums[g], g = 0..15 */
    float d;      /* f32 of the f16 super-block scale */
    float dmin;   /* f32 of the f16 min scale (q2/q4/q5), else 0 */
} sb_w;

#define ALIGN64 __attribute__((aligned(64)))

/* lane i (0..31) -> sub-block of 32 values: 2q + (i >= 16) */
static const int16_t IDX32[4][32] ALIGN64 = {
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
     3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
     5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6,
     7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7},
};
/* lane i (0..31) -> group of 16 values: 4q + i / 8 */
static const int16_t IDX16[4][32] ALIGN64 = {
    {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
     2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5,
     6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
    {8,  8,  8,  8,  8,  8,  8,  8,  9,  9,  9,  9,  9,  9,  9,  9,
     10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
    {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13,
     14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15},
};
/* q4_K/q5_K: bsums[g] takes the min of sub-block g / 2 (lanes 8..15 hold the mins) */
static const int16_t IDXMIN[16] ALIGN64 = {8,  8,  9,  9,  10, 10, 11, 11,
                                           12, 12, 13, 13, 14, 14, 15, 15};

static inline __m512i idx32(int q) {
    return _mm512_load_si512(IDX32[q]);
}

/* The 4 activation vectors of a super-block (values 64q .. 64q+63). */
static inline void load_x(const int8_t *qs, __m512i xv[4]) {
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) xv[q] = _mm512_loadu_si512(qs + 64 * q);
}
static inline __m512i idx16(int q) {
    return _mm512_load_si512(IDX16[q]);
}

/* 16-bit shift counts: `lo` in the lower 256 bits, `hi` in the upper. */
static inline __m512i shifts(int lo, int hi) {
    return _mm512_inserti64x4(_mm512_set1_epi16((short)lo), _mm256_set1_epi16((short)hi), 1);
}
/* Bytes `lo` in the lower 256 bits, `hi` in the upper. */
static inline __m512i bytes2(int lo, int hi) {
    return _mm512_inserti64x4(_mm512_set1_epi8((char)lo), _mm256_set1_epi8((char)hi), 1);
}
/* 32 bytes at p in both halves of a 512-bit vector. */
static inline __m512i bcast32(const uint8_t *p) {
    return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p));
}
static inline float h2f(uint16_t h) {
    return _cvtsh_ss(h);
}

/* q4_K/q5_K: the 8 6-bit scales then the 8 6-bit mins, as int16 (layout in tensor/quant_ref.c). */
static inline __m256i k4_scales_mins(const uint8_t *s12) {
    uint32_t a, b, c;
    memcpy(&a, s12, 4);
    memcpy(&b, s12 + 4, 4);
    memcpy(&c, s12 + 8, 4);
    const uint32_t sc_lo = a & 0x3f3f3f3f, mn_lo = b & 0x3f3f3f3f;
    const uint32_t sc_hi = (c & 0x0f0f0f0f) | ((a >> 2) & 0x30303030);
    const uint32_t mn_hi = ((c >> 4) & 0x0f0f0f0f) | ((b >> 2) & 0x30303030);
    return _mm256_cvtepu8_epi16(_mm_set_epi32((int)mn_hi, (int)mn_lo, (int)sc_hi, (int)sc_lo));
}

/* q3_K: the 16 signed 6-bit scales (low 4 bits in bytes 0..7, high 2 bits in bytes 8..11). */
static inline __m256i k3_scales(const uint8_t *s12) {
    uint32_t a0, a1, c;
    memcpy(&a0, s12, 4);
    memcpy(&a1, s12 + 4, 4);
    memcpy(&c, s12 + 8, 4);
    const uint32_t s0 = (a0 & 0x0f0f0f0f) | ((c << 4) & 0x30303030);
    const uint32_t s1 = (a1 & 0x0f0f0f0f) | ((c << 2) & 0x30303030);
    const uint32_t s2 = ((a0 >> 4) & 0x0f0f0f0f) | (c & 0x30303030);
    const uint32_t s3 = ((a1 >> 4) & 0x0f0f0f0f) | ((c >> 2) & 0x30303030);
    const __m128i v =
        _mm_sub_epi8(_mm_set_epi32((int)s3, (int)s2, (int)s1, (int)s0), _mm_set1_epi8(32));
    return _mm256_cvtepi8_epi16(v);
}

/*
 * Decode super-block `blk` of type `type` (a constant after inlining). Every
 * quarter q covers values 64q .. 64q+63; see the reference for each layout.
 */
static inline __attribute__((always_inline)) void decode(int type, const void *blk, sb_w *o) {
    const __m512i m03 = _mm512_set1_epi8(3), m0f = _mm512_set1_epi8(0x0f);
    switch (type) {
    case KQ2: {
        const ig_block_q2_K *b = blk;
        const __m128i raw = _mm_loadu_si128((const __m128i *)b->scales);
        const __m256i sc = _mm256_cvtepu8_epi16(_mm_and_si128(raw, _mm_set1_epi8(0x0f)));
        o->c = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), _mm_set1_epi8(0x0f)));
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            o->s[q] = _mm512_permutexvar_epi16(idx16(q), _mm512_castsi256_si512(sc));
            /* value 32j + l is (qs[32 * (j / 4) + l] >> 2 * (j % 4)) & 3; j = 2q, 2q + 1 */
            const __m512i v = bcast32(b->qs + 32 * (q / 2));
            o->u[q] =
                _mm512_and_si512(_mm512_srlv_epi16(v, shifts(4 * (q % 2), 4 * (q % 2) + 2)), m03);
        }
        o->d = h2f(b->d);
        o->dmin = h2f(b->dmin);
        break;
    }
    case KQ3: {
        const ig_block_q3_K *b = blk;
        const __m256i sc = k3_scales(b->scales);
        const __m512i hm = bcast32(b->hmask);
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) {
            o->s[q] = _mm512_permutexvar_epi16(idx16(q), _mm512_castsi256_si512(sc));
            const __m512i v = bcast32(b->qs + 32 * (q / 2));
            const __m512i lo =
                _mm512_and_si512(_mm512_srlv_epi16(v, shifts(4 * (q % 2), 4 * (q % 2) + 2)), m03);
            /* high bit of value 32j + l is bit j of hmask[l]; j = 2q (lower half), 2q + 1 (upper)
             */
            const __mmask64 k = _mm512_test_epi8_mask(hm, bytes2(1 << (2 * q), 1 << (2 * q + 1)));
            o->u[q] = _mm512_mask_add_epi8(lo, k, lo, _mm512_set1_epi8(4));
        }
        o->c = sc;
        o->d = h2f(b->d);
        o->dmin = 0.0f;
        break;
    }
    case KQ4:
    case KQ5: {
        const ig_block_q4_K *b4 = blk;
        const ig_block_q5_K *b5 = blk;
        const uint8_t *scales = type == KQ4 ? b4->scales : b5->scales;
        const uint8_t *qs = type == KQ4 ? b4->qs : b5->qs;
        const __m256i sm = k4_scales_mins(scales);
        o->c = _mm256_permutexvar_epi16(_mm256_load_si256((const __m256i *)IDXMIN), sm);
        const __m512i sh = shifts(0, 4);
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++) /* sub-block 2q: low nibbles of qs[32q ..]; 2q + 1: high */
            o->u[q] = _mm512_and_si512(_mm512_srlv_epi16(bcast32(qs + 32 * q), sh), m0f);
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            o->s[q] = _mm512_permutexvar_epi16(idx32(q), _mm512_castsi256_si512(sm));
        if (type == KQ5) {
            /* bit 4 of value 32j + l is bit j of qh[l] */
            const __m512i qh = bcast32(b5->qh);
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                const int j = 2 * q, j2 = 2 * q + 1;
                const __mmask64 k = _mm512_test_epi8_mask(qh, bytes2(1 << j, 1 << j2));
                o->u[q] = _mm512_mask_add_epi8(o->u[q], k, o->u[q], _mm512_set1_epi8(16));
            }
        }
        o->d = h2f(type == KQ4 ? b4->d : b5->d);
        o->dmin = h2f(type == KQ4 ? b4->dmin : b5->dmin);
        break;
    }
    default: { /* KQ6 */
        const ig_block_q6_K *b = blk;
        const __m256i sc = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
#pragma GCC unroll 4
        for (int q = 0; q < 4; q++)
            o->s[q] = _mm512_permutexvar_epi16(idx16(q), _mm512_castsi256_si512(sc));
        const __m512i m30 = _mm512_set1_epi8(0x30);
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            /* values 128h + 32kq + l: low 4 bits from ql[64h + 32(kq & 1) + l] >> 4(kq >> 1),
             * high 2 bits from qh[32h + l] >> 2kq */
            const __m512i ql = _mm512_loadu_si512(b->ql + 64 * h);
            const __m512i qh = bcast32(b->qh + 32 * h);
            const __m512i h0 = _mm512_and_si512(_mm512_sllv_epi16(qh, shifts(4, 2)), m30);
            const __m512i h1 = _mm512_and_si512(_mm512_srlv_epi16(qh, shifts(0, 2)), m30);
            o->u[2 * h] = _mm512_or_si512(_mm512_and_si512(ql, m0f), h0);
            o->u[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m0f), h1);
        }
        o->c = sc;
        o->d = h2f(b->d);
        o->dmin = 0.0f;
        break;
    }
    }
}

static inline size_t block_bytes(int type) {
    switch (type) {
    case KQ2:
        return sizeof(ig_block_q2_K);
    case KQ3:
        return sizeof(ig_block_q3_K);
    case KQ4:
        return sizeof(ig_block_q4_K);
    case KQ5:
        return sizeof(ig_block_q5_K);
    default:
        return sizeof(ig_block_q6_K);
    }
}
/* log2 of the code offset folded into isum through bterm (q3: 4, q6: 32); 0: bterm is a min term */
static inline int offset_shift(int type) {
    return type == KQ3 ? 2 : type == KQ6 ? 5 : 0;
}

/* The 16 int32 lanes whose sum is sum over the super-block of scale * (u . x). */
static inline __m512i dot_codes(const sb_w *w, const __m512i xv[4]) {
    __m512i acc = _mm512_madd_epi16(_mm512_maddubs_epi16(w->u[0], xv[0]), w->s[0]);
#pragma GCC unroll 3
    for (int q = 1; q < 4; q++)
        acc = _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(w->u[q], xv[q]), w->s[q]);
    return acc;
}

static inline int hsum8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static inline __attribute__((always_inline)) float vec_dot(int type, const void *row,
                                                           const void *xq, int64_t n) {
    const uint8_t *w = row;
    const ig_block_q8_K *x = xq;
    const size_t bb = block_bytes(type);
    const int osh = offset_shift(type);
    double sum = 0;
    for (int64_t b = 0; b < n / IG_QK_K; b++, w += bb, x++) {
        sb_w sb;
        decode(type, w, &sb);
        __m512i xv[4];
        load_x(x->qs, xv);
        __m512i acc = dot_codes(&sb, xv);
        const __m256i bt = _mm256_madd_epi16(sb.c, _mm256_loadu_si256((const __m256i *)x->bsums));
        __m256i a8 =
            _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
        if (osh) {
            /* q3/q6: codes are offset by 2^osh; the offset times bsums leaves isum exactly */
            a8 = _mm256_sub_epi32(a8, _mm256_slli_epi32(bt, osh));
            sum += (double)(sb.d * x->d) * hsum8(a8);
        } else {
            /* both sums at once: [a01 a23 b01 b23 | a45 a67 b45 b67] */
            const __m256i h = _mm256_hadd_epi32(a8, bt);
            __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            s = _mm_hadd_epi32(s, s);
            const int isum = _mm_cvtsi128_si32(s), isum_min = _mm_extract_epi32(s, 1);
            sum += (double)(sb.d * x->d) * isum;
            sum -= (double)(sb.dmin * x->d) * isum_min;
        }
    }
    return (float)sum;
}

float ig__vec_dot_q2_K_avx512(const void *row, const void *xq, int64_t n) {
    return vec_dot(KQ2, row, xq, n);
}
float ig__vec_dot_q3_K_avx512(const void *row, const void *xq, int64_t n) {
    return vec_dot(KQ3, row, xq, n);
}
float ig__vec_dot_q4_K_avx512(const void *row, const void *xq, int64_t n) {
    return vec_dot(KQ4, row, xq, n);
}
float ig__vec_dot_q5_K_avx512(const void *row, const void *xq, int64_t n) {
    return vec_dot(KQ5, row, xq, n);
}
float ig__vec_dot_q6_K_avx512(const void *row, const void *xq, int64_t n) {
    return vec_dot(KQ6, row, xq, n);
}

/* ------------------------------------------------------------ 4 rows x 1 token */

/* software prefetch distance of the decode kernel, in super-blocks */
#ifndef KQ_PREFETCH
#define KQ_PREFETCH 8
#endif

/*
 * One token against 4 rows at once (the decode step, where the weights
 * stream from memory): each activation vector is loaded once for 4 rows,
 * and the horizontal sums and the double steps of the 4 rows share
 * instructions. Per row the operations are those of vec_dot, so out[r] is
 * the same bits as vec_dot(row r).
 */
static inline __attribute__((always_inline)) void rows4(int type, const uint8_t *w, size_t w_stride,
                                                        const ig_block_q8_K *x, int64_t n,
                                                        float out[4]) {
    const size_t bb = block_bytes(type);
    const int osh = offset_shift(type);
    __m256d sum = _mm256_setzero_pd();
    for (int64_t b = 0; b < n / IG_QK_K; b++, w += bb, x++) {
        /* one row decoded at a time (8 registers), against the 4 activation vectors */
        sb_w sw[4];
        __m512i a[4], xs[4];
        load_x(x->qs, xs);
        /* four row streams: the hardware prefetcher alone falls behind */
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++)
            for (size_t o = 0; o < bb; o += 64)
                _mm_prefetch((const char *)w + (size_t)r * w_stride + KQ_PREFETCH * bb + o,
                             _MM_HINT_T0);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            decode(type, w + (size_t)r * w_stride, &sw[r]);
            a[r] = dot_codes(&sw[r], xs);
        }
        /* bterm of row r: c_r . bsums (rows 0, 1 in m01; 2, 3 in m23) */
        const __m512i bs = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)x->bsums));
        const __m512i m01 =
            _mm512_madd_epi16(_mm512_inserti64x4(_mm512_castsi256_si512(sw[0].c), sw[1].c, 1), bs);
        const __m512i m23 =
            _mm512_madd_epi16(_mm512_inserti64x4(_mm512_castsi256_si512(sw[2].c), sw[3].c, 1), bs);
        /* 128-bit lane L of ia: 4 partial sums of a[L]; of bt: of the bterm of row L */
        const __m512i w02 = _mm512_add_epi32(_mm512_shuffle_i64x2(a[0], a[2], 0x44),
                                             _mm512_shuffle_i64x2(a[0], a[2], 0xee));
        const __m512i w13 = _mm512_add_epi32(_mm512_shuffle_i64x2(a[1], a[3], 0x44),
                                             _mm512_shuffle_i64x2(a[1], a[3], 0xee));
        /* w02 = [a0 a0 a2 a2], w13 = [a1 a1 a3 a3] (128-bit lanes) */
        const __m512i ia = _mm512_add_epi32(_mm512_shuffle_i64x2(w02, w13, 0x88),
                                            _mm512_shuffle_i64x2(w02, w13, 0xdd));
        /* ia = [a0 a2 a1 a3] */
        const __m512i bt = _mm512_add_epi32(_mm512_shuffle_i64x2(m01, m23, 0x88),
                                            _mm512_shuffle_i64x2(m01, m23, 0xdd));
        /* bt = [b0 b1 b2 b3] */
        __m512i z = _mm512_add_epi32(_mm512_unpacklo_epi32(ia, bt), _mm512_unpackhi_epi32(ia, bt));
        z = _mm512_add_epi32(z, _mm512_shuffle_epi32(z, (_MM_PERM_ENUM)0x4e));
        /* dword 0 of lane L: the sum of ia's lane L; dword 1: of bt's lane L */
        const __m512i g = _mm512_permutexvar_epi32(
            _mm512_setr_epi32(0, 8, 4, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0), z);
        __m128i isum = _mm512_castsi512_si128(g);
        const __m128i ibt = _mm512_extracti32x4_epi32(g, 1);
        const __m128 dx = _mm_set1_ps(x->d);
        if (osh) isum = _mm_sub_epi32(isum, _mm_slli_epi32(ibt, osh));
        const __m128 d = _mm_setr_ps(sw[0].d, sw[1].d, sw[2].d, sw[3].d);
        sum = _mm256_add_pd(
            sum, _mm256_mul_pd(_mm256_cvtps_pd(_mm_mul_ps(d, dx)), _mm256_cvtepi32_pd(isum)));
        if (!osh) {
            const __m128 dm = _mm_setr_ps(sw[0].dmin, sw[1].dmin, sw[2].dmin, sw[3].dmin);
            sum = _mm256_sub_pd(
                sum, _mm256_mul_pd(_mm256_cvtps_pd(_mm_mul_ps(dm, dx)), _mm256_cvtepi32_pd(ibt)));
        }
    }
    _mm_storeu_ps(out, _mm256_cvtpd_ps(sum));
}

/* ------------------------------------------------------------ batch (gemm) */

/*
 * The tile kernel: 4 rows x 4 tokens. For each super-block b it decodes the
 * 4 rows once, then walks every 4-token tile of a chunk of up to CHUNK
 * tokens (whose activations stay in L2), computing the 16 pairs' integer
 * sums and applying the per-pair float/double step of the reference to a
 * per-pair double accumulator. Pair (r, t) lives in lane 4r + t. Rows or
 * tokens past the end of a partial tile repeat the last one and are not
 * stored; lanes never mix, so this cannot change a stored value.
 */
#define CHUNK 64

/* lane i -> i / 4 (the row of the pair) and i % 4 (its token) */
static const int32_t IDX_ROW[16] ALIGN64 = {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3};
static const int32_t IDX_TOK[16] ALIGN64 = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
/* reduce16 leaves the sum of v[m] in lane FIX[m] (see there) */
static const int32_t IDX_FIX[16] ALIGN64 = {0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15};

/* Lane m of the result = sum of the 16 lanes of v[m]. */
static inline __m512i reduce16(const __m512i v[16]) {
    __m512i w[8], x[4], y[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) /* 256-bit halves: v[i] low, v[i + 8] high */
        w[i] = _mm512_add_epi32(_mm512_shuffle_i64x2(v[i], v[i + 8], 0x44),
                                _mm512_shuffle_i64x2(v[i], v[i + 8], 0xee));
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) /* 128-bit lanes: v[i], v[i + 8], v[i + 4], v[i + 12] */
        x[i] = _mm512_add_epi32(_mm512_shuffle_i64x2(w[i], w[i + 4], 0x88),
                                _mm512_shuffle_i64x2(w[i], w[i + 4], 0xdd));
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++)
        y[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(x[i], x[i + 2]),
                                _mm512_unpackhi_epi32(x[i], x[i + 2]));
    /* dword k of 128-bit lane L holds v[{0, 2, 1, 3}[k] + {0, 8, 4, 12}[L]] */
    const __m512i z =
        _mm512_add_epi32(_mm512_unpacklo_epi64(y[0], y[1]), _mm512_unpackhi_epi64(y[0], y[1]));
    return _mm512_permutexvar_epi32(_mm512_load_si512(IDX_FIX), z);
}

/* The decoded rows of a 4-row tile at one super-block. */
typedef struct {
    sb_w w[4];
    __m512i ck[8]; /* lane 4r + t: dword k of row r's bsum coefficients */
    __m512 d;      /* lane 4r + t: d of row r */
    __m512 dmin;   /* lane 4r + t: dmin of row r */
} tile_w;

static inline __attribute__((always_inline)) void
tile_decode(int type, const uint8_t *const rows[4], tile_w *tw) {
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++) decode(type, rows[r], &tw->w[r]);
    const __m512i c01 = _mm512_inserti64x4(_mm512_castsi256_si512(tw->w[0].c), tw->w[1].c, 1);
    const __m512i c23 = _mm512_inserti64x4(_mm512_castsi256_si512(tw->w[2].c), tw->w[3].c, 1);
    const __m512i base = _mm512_slli_epi32(_mm512_load_si512(IDX_ROW), 3); /* 8r */
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++)
        tw->ck[k] =
            _mm512_permutex2var_epi32(c01, _mm512_add_epi32(base, _mm512_set1_epi32(k)), c23);
    const __m512i ir = _mm512_load_si512(IDX_ROW);
    tw->d = _mm512_permutexvar_ps(
        ir, _mm512_castps128_ps512(_mm_set_ps(tw->w[3].d, tw->w[2].d, tw->w[1].d, tw->w[0].d)));
    tw->dmin =
        _mm512_permutexvar_ps(ir, _mm512_castps128_ps512(_mm_set_ps(tw->w[3].dmin, tw->w[2].dmin,
                                                                    tw->w[1].dmin, tw->w[0].dmin)));
}

/* The upper 8 floats (AVX-512F has no 256-bit float extract without DQ). */
static inline __m256 hi8(__m512 v) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

/* acc (16 pairs, 2 x 8 doubles) += this super-block's terms for the 4 tokens' blocks x[t]. */
static inline __attribute__((always_inline)) void
tile_step(int type, const tile_w *tw, const ig_block_q8_K *const x[4], __m512d acc[2]) {
    /* per quarter: the 4 rows' codes and scales and one token's activations in registers
     * (16 accumulators + 10), so each activation vector is loaded once per tile. The
     * empty asm makes the compiler load them per quarter rather than hoist all 32 of
     * them out of the token-tile loop (which made it spill the accumulators). */
    __m512i a[16];
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        const sb_w *wq = tw->w;
        __asm__("" : "+r"(wq));
        __m512i u[4], s[4];
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) u[r] = wq[r].u[q], s[r] = wq[r].s[q];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) {
            const __m512i xv = _mm512_loadu_si512(x[t]->qs + 64 * q);
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                const __m512i p = _mm512_maddubs_epi16(u[r], xv);
                a[4 * r + t] = q == 0 ? _mm512_madd_epi16(p, s[r])
                                      : _mm512_dpwssd_epi32(a[4 * r + t], p, s[r]);
            }
        }
    }
    __m512i isum = reduce16(a);

    /* bterm of pair (r, t) = sum over k of dword k of c_r times dword k of bsums_t (int16 pairs) */
    const __m512i b01 =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[0]->bsums)),
                           _mm256_loadu_si256((const __m256i *)x[1]->bsums), 1);
    const __m512i b23 =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)x[2]->bsums)),
                           _mm256_loadu_si256((const __m256i *)x[3]->bsums), 1);
    const __m512i base = _mm512_slli_epi32(_mm512_load_si512(IDX_TOK), 3); /* 8t */
    __m512i bt = _mm512_setzero_si512();
#pragma GCC unroll 8
    for (int k = 0; k < 8; k++)
        bt = _mm512_dpwssd_epi32(
            bt, tw->ck[k],
            _mm512_permutex2var_epi32(b01, _mm512_add_epi32(base, _mm512_set1_epi32(k)), b23));

    const __m512 dx = _mm512_permutexvar_ps(
        _mm512_load_si512(IDX_TOK),
        _mm512_castps128_ps512(_mm_set_ps(x[3]->d, x[2]->d, x[1]->d, x[0]->d)));
    const int osh = offset_shift(type);
    if (osh) isum = _mm512_sub_epi32(isum, _mm512_slli_epi32(bt, osh));
    /* per pair, as the reference: sum += (double)(d_w * d_x) * isum; sum -= (double)(dmin_w * d_x)
     * * isum_min */
    const __m512 p = _mm512_mul_ps(tw->d, dx);
    acc[0] = _mm512_add_pd(acc[0], _mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(p)),
                                                 _mm512_cvtepi32_pd(_mm512_castsi512_si256(isum))));
    acc[1] = _mm512_add_pd(acc[1],
                           _mm512_mul_pd(_mm512_cvtps_pd(hi8(p)),
                                         _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(isum, 1))));
    if (!osh) {
        const __m512 pm = _mm512_mul_ps(tw->dmin, dx);
        acc[0] =
            _mm512_sub_pd(acc[0], _mm512_mul_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(pm)),
                                                _mm512_cvtepi32_pd(_mm512_castsi512_si256(bt))));
        acc[1] = _mm512_sub_pd(acc[1],
                               _mm512_mul_pd(_mm512_cvtps_pd(hi8(pm)),
                                             _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(bt, 1))));
    }
}

static inline __attribute__((always_inline)) void gemm(int type, int64_t n, const void *w,
                                                       size_t w_stride, int64_t n_rows,
                                                       const void *xq, size_t x_stride,
                                                       int64_t n_tok, float *y, size_t y_stride) {
    const int64_t nb = n / IG_QK_K;
    const size_t bb = block_bytes(type);
    if (n_tok < 4) { /* decode: rows 4 at a time, each token alone */
        for (int64_t t = 0; t < n_tok; t++) {
            const ig_block_q8_K *x =
                (const ig_block_q8_K *)((const uint8_t *)xq + (size_t)t * x_stride);
            float *yt = y + (size_t)t * y_stride;
            int64_t r = 0;
            for (; r + 4 <= n_rows; r += 4)
                rows4(type, (const uint8_t *)w + (size_t)r * w_stride, w_stride, x, n, yt + r);
            for (; r < n_rows; r++)
                yt[r] = vec_dot(type, (const uint8_t *)w + (size_t)r * w_stride, x, n);
        }
        return;
    }
    for (int64_t t0 = 0; t0 < n_tok; t0 += CHUNK) {
        const int64_t nt = n_tok - t0 < CHUNK ? n_tok - t0 : CHUNK;
        const int n_tiles = (int)((nt + 3) / 4);
        for (int64_t r0 = 0; r0 < n_rows; r0 += 4) {
            const int64_t nr = n_rows - r0 < 4 ? n_rows - r0 : 4;
            __m512d acc[CHUNK / 4][2];
            for (int i = 0; i < n_tiles; i++) acc[i][0] = acc[i][1] = _mm512_setzero_pd();
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *rows[4];
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++)
                    rows[r] = (const uint8_t *)w + (size_t)(r0 + (r < nr ? r : nr - 1)) * w_stride +
                              (size_t)b * bb;
                tile_w tw;
                tile_decode(type, rows, &tw);
                for (int i = 0; i < n_tiles; i++) {
                    const ig_block_q8_K *x[4];
#pragma GCC unroll 4
                    for (int t = 0; t < 4; t++) {
                        const int64_t tt = 4 * i + t < nt ? 4 * i + t : nt - 1;
                        x[t] = (const ig_block_q8_K *)((const uint8_t *)xq +
                                                       (size_t)(t0 + tt) * x_stride) +
                               b;
                    }
                    tile_step(type, &tw, x, acc[i]);
                }
            }
            for (int i = 0; i < n_tiles; i++) {
                float out[16];
                _mm256_storeu_ps(out, _mm512_cvtpd_ps(acc[i][0]));
                _mm256_storeu_ps(out + 8, _mm512_cvtpd_ps(acc[i][1]));
                for (int r = 0; r < nr; r++)
                    for (int t = 0; t < 4 && 4 * i + t < nt; t++)
                        y[(size_t)(t0 + 4 * i + t) * y_stride + (size_t)(r0 + r)] = out[4 * r + t];
            }
        }
    }
}

#define GEMM_FN(name, type)                                                                        \
    void ig__gemm_##name##_avx512(int64_t n, const void *w, size_t w_row_bytes, int nr,            \
                                  const void *xq, size_t xq_row_bytes, int nc, float *y,           \
                                  size_t ldy) {                                                    \
        gemm(type, n, w, w_row_bytes, nr, xq, xq_row_bytes, nc, y, ldy);                           \
    }
GEMM_FN(q2_K, KQ2)
GEMM_FN(q3_K, KQ3)
GEMM_FN(q4_K, KQ4)
GEMM_FN(q5_K, KQ5)
GEMM_FN(q6_K, KQ6)

/* ------------------------------------------------------------ registration */

void ig__dot_register_kquant_avx512(ig_dot_kernel *table) {
    if (!ig_cpu_features_get()->avx512_vnni) return; /* vpdpwssd: the AVX2 kernels stay */
    static const struct {
        ig_type type;
        ig_vec_dot_q_fn vec_dot_q;
        ig_gemm_q_fn gemm_q;
    } K[] = {
        {IG_TYPE_Q2_K, ig__vec_dot_q2_K_avx512, ig__gemm_q2_K_avx512},
        {IG_TYPE_Q3_K, ig__vec_dot_q3_K_avx512, ig__gemm_q3_K_avx512},
        {IG_TYPE_Q4_K, ig__vec_dot_q4_K_avx512, ig__gemm_q4_K_avx512},
        {IG_TYPE_Q5_K, ig__vec_dot_q5_K_avx512, ig__gemm_q5_K_avx512},
        {IG_TYPE_Q6_K, ig__vec_dot_q6_K_avx512, ig__gemm_q6_K_avx512},
    };
    for (size_t i = 0; i < sizeof K / sizeof K[0]; i++) {
        table[K[i].type].vec_dot_q = K[i].vec_dot_q;
        table[K[i].type].gemm_q = K[i].gemm_q;
    }
}
