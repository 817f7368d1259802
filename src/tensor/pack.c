/* pack.c: the r16 weight layout (see pack.h), in plain C. */
#include "tensor/pack.h"

#include <string.h>

#include "base/error.h"
#include "tensor/blocks.h"
#include "tensor/fp16.h"
#include "tensor/types.h"

/* Where a block's parts are in the file's layout, and how many chunks. */
typedef struct {
    size_t bs;    /* bytes per block */
    int d_off;    /* offset of the f16 scale */
    int m_off;    /* offset of the f16 min, or -1 */
    int qh_off;   /* offset of the 4 fifth-bit bytes, or -1 */
    int qs_off;   /* offset of the codes */
    int n_chunks; /* 64-byte chunks of codes in a packed block */
} block_layout;

static bool layout_of(uint32_t type, block_layout *l) {
    switch (type) {
    case IG_TYPE_Q4_0:
        *l = (block_layout){sizeof(ig_block_q4_0), 0, -1, -1, 2, 4};
        return true;
    case IG_TYPE_Q4_1:
        *l = (block_layout){sizeof(ig_block_q4_1), 0, 2, -1, 4, 4};
        return true;
    case IG_TYPE_Q5_0:
        *l = (block_layout){sizeof(ig_block_q5_0), 0, -1, 2, 6, 4};
        return true;
    case IG_TYPE_Q5_1:
        *l = (block_layout){sizeof(ig_block_q5_1), 0, 2, 4, 8, 4};
        return true;
    case IG_TYPE_Q8_0:
        *l = (block_layout){sizeof(ig_block_q8_0), 0, -1, -1, 2, 8};
        return true;
    case IG_TYPE_Q4_K: /* d, dmin, then 12 scale bytes and 128 code bytes as 35 chunks */
        *l = (block_layout){sizeof(ig_block_q4_K), 0, 2, -1, 4, 35};
        return true;
    case IG_TYPE_Q5_K: /* d, dmin, then 12 scale bytes, 32 qh bytes, 128 code bytes */
        *l = (block_layout){sizeof(ig_block_q5_K), 0, 2, -1, 4, 43};
        return true;
    case IG_TYPE_Q6_K: /* ql, qh, scales as 52 chunks, then d */
        *l = (block_layout){sizeof(ig_block_q6_K), 208, -1, -1, 0, 52};
        return true;
    default:
        return false;
    }
}

bool ig_pack_r16_supported(uint32_t type) {
    block_layout l;
    return layout_of(type, &l);
}

/* The qh permutation of pack.h, and its inverse. */
static uint32_t qh_permute(uint32_t h) {
    uint32_t q = 0;
    for (int t = 0; t < 4; t++)
        for (int j = 0; j < 4; j++) {
            q |= ((h >> (4 * j + t)) & 1u) << (8 * t + j);
            q |= ((h >> (16 + 4 * j + t)) & 1u) << (8 * t + 4 + j);
        }
    return q;
}

static uint32_t qh_unpermute(uint32_t q) {
    uint32_t h = 0;
    for (int t = 0; t < 4; t++)
        for (int j = 0; j < 4; j++) {
            h |= ((q >> (8 * t + j)) & 1u) << (4 * j + t);
            h |= ((q >> (8 * t + 4 + j)) & 1u) << (16 + 4 * j + t);
        }
    return h;
}

/* Unpack one block of 16 rows: the file block of row i goes to rows[i]. */
static void unpack_block(const block_layout *l, const uint8_t *packed, uint8_t *const rows[16]) {
    const uint8_t *p = packed;
    for (int i = 0; i < 16; i++) memcpy(rows[i] + l->d_off, p + 2 * i, 2);
    p += 32;
    if (l->m_off >= 0) {
        for (int i = 0; i < 16; i++) memcpy(rows[i] + l->m_off, p + 2 * i, 2);
        p += 32;
    }
    if (l->qh_off >= 0) {
        for (int i = 0; i < 16; i++) {
            uint32_t v;
            memcpy(&v, p + 4 * i, 4);
            v = qh_unpermute(v);
            memcpy(rows[i] + l->qh_off, &v, 4);
        }
        p += 64;
    }
    for (int j = 0; j < l->n_chunks; j++)
        for (int i = 0; i < 16; i++) memcpy(rows[i] + l->qs_off + 4 * j, p + 64 * j + 4 * i, 4);
}

/*
 * Packing (every weight of a model, at load): the inverse of unpack_block, a
 * group's 16 rows walked block by block (16 sequential read streams, one
 * write stream).
 */
static void pack_group(const block_layout *l, const uint8_t *s, size_t row_bytes, uint8_t *d) {
    const size_t nb = row_bytes / l->bs;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *r0 = s + b * l->bs;
        uint8_t *p = d + b * 16 * l->bs;
        for (int i = 0; i < 16; i++) memcpy(p + 2 * i, r0 + (size_t)i * row_bytes + l->d_off, 2);
        p += 32;
        if (l->m_off >= 0) {
            for (int i = 0; i < 16; i++)
                memcpy(p + 2 * i, r0 + (size_t)i * row_bytes + l->m_off, 2);
            p += 32;
        }
        if (l->qh_off >= 0) {
            for (int i = 0; i < 16; i++) {
                uint32_t v;
                memcpy(&v, r0 + (size_t)i * row_bytes + l->qh_off, 4);
                v = qh_permute(v);
                memcpy(p + 4 * i, &v, 4);
            }
            p += 64;
        }
        for (int i = 0; i < 16; i++) {
            const uint8_t *q = r0 + (size_t)i * row_bytes + l->qs_off;
            for (int j = 0; j < l->n_chunks; j++) memcpy(p + 64 * j + 4 * i, q + 4 * j, 4);
        }
    }
}

void ig_pack_r16(uint32_t type, const void *src, size_t row_bytes, int64_t n_rows, void *dst) {
    block_layout l;
    const bool ok = layout_of(type, &l);
    IG_ASSERT(ok && row_bytes % l.bs == 0);
    IG_ASSERT(32 * (1 + (l.m_off >= 0)) + 64 * (l.qh_off >= 0) + 64 * l.n_chunks == 16 * (int)l.bs);
    const int64_t n_groups = n_rows / IG_PACK_ROWS;
    const size_t gb = IG_PACK_ROWS * row_bytes;
    const uint8_t *s = src;
    uint8_t *d = dst;
    for (int64_t g = 0; g < n_groups; g++)
        pack_group(&l, s + (size_t)g * gb, row_bytes, d + (size_t)g * gb);
    const size_t done = (size_t)n_groups * gb;
    memcpy(d + done, s + done, (size_t)(n_rows - n_groups * IG_PACK_ROWS) * row_bytes);
}

void ig_pack_r16_get_block(uint32_t type, const void *packed, size_t row_bytes, int64_t n_rows,
                           int64_t row, int64_t block, void *dst) {
    block_layout l;
    const bool ok = layout_of(type, &l);
    IG_ASSERT(ok && row >= 0 && row < n_rows && block >= 0 && (size_t)block < row_bytes / l.bs);
    const int64_t g = row / IG_PACK_ROWS;
    const uint8_t *p = packed;
    if (g >= n_rows / IG_PACK_ROWS) { /* a tail row: as in the file */
        memcpy(dst, p + (size_t)row * row_bytes + (size_t)block * l.bs, l.bs);
        return;
    }
    const int want = (int)(row % IG_PACK_ROWS);
    uint8_t scratch[16][256]; /* the other 15 rows' blocks land here, unused */
    uint8_t *rows[16];
    for (int i = 0; i < 16; i++) rows[i] = i == want ? (uint8_t *)dst : scratch[i];
    const size_t at = (size_t)g * IG_PACK_ROWS * row_bytes + (size_t)block * 16 * l.bs;
    unpack_block(&l, p + at, rows);
}

void ig_pack_r16_get_row(uint32_t type, const void *packed, size_t row_bytes, int64_t n_rows,
                         int64_t row, void *dst) {
    block_layout l;
    const bool ok = layout_of(type, &l);
    IG_ASSERT(ok);
    const int64_t nb = (int64_t)(row_bytes / l.bs);
    for (int64_t b = 0; b < nb; b++)
        ig_pack_r16_get_block(type, packed, row_bytes, n_rows, row, b,
                              (uint8_t *)dst + (size_t)b * l.bs);
}

void ig_pack_r16_act_aux(uint32_t type, const void *xq, int64_t n, ig_pack_aux *aux) {
    if (type == IG_TYPE_Q4_K || type == IG_TYPE_Q5_K || type == IG_TYPE_Q6_K)
        return; /* the K-quant kernels read q8_K's d and bsums */
    const int64_t nb = n / IG_QK;
    if (type == IG_TYPE_Q4_1 || type == IG_TYPE_Q5_1) {
        const ig_block_q8_1 *x = xq;
        for (int64_t b = 0; b < nb; b++) {
            aux[b].d = ig_fp16_to_fp32(x[b].d);
            aux[b].s = ig_fp16_to_fp32(x[b].s);
        }
        return;
    }
    const int off = type == IG_TYPE_Q4_0 ? 8 : type == IG_TYPE_Q5_0 ? 16 : 128;
    IG_ASSERT(type == IG_TYPE_Q4_0 || type == IG_TYPE_Q5_0 || type == IG_TYPE_Q8_0);
    const ig_block_q8_0 *x = xq;
    for (int64_t b = 0; b < nb; b++) {
        int32_t sum = 0;
        for (int i = 0; i < IG_QK; i++) sum += x[b].qs[i];
        aux[b].d = ig_fp16_to_fp32(x[b].d);
        aux[b].corr = -off * sum;
    }
}
