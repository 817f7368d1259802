/*
 * pack.h: weights repacked at load time in groups of 16 rows ("r16").
 *
 * Why: a decode matmul reads every weight once, so its speed is the speed of
 * streaming the weights. In the file's layout a kernel that computes 16 rows
 * at once (one row per 32-bit vector lane) reads 16 separate streams and
 * transposes every block in registers; in the r16 layout the same work reads
 * one sequential stream, already transposed, so the hardware prefetcher keeps
 * up and the kernel does no shuffles. Bytes are only moved, never changed:
 * a packed group takes exactly the bytes of its 16 rows, and the dot products
 * over it are bit-identical to the ones over the original rows.
 *
 * Layout: rows 16g .. 16g+15 form group g, at byte 16 * g * row_bytes. Within
 * a group, the 16 rows' block b (block size bs bytes) sit together at byte
 * 16 * b * bs, as:
 *   d[16]     the rows' f16 scales                       (32 bytes)
 *   m[16]     the rows' f16 mins (q4_1, q5_1)            (32 bytes)
 *   qh[16]    the rows' fifth bits (q5_0, q5_1), 4 bytes each, permuted:
 *             byte t, bit j   = fifth bit of code 4j + t       (j < 4)
 *             byte t, bit 4+j = fifth bit of code 16 + 4j + t
 *             so one byte test per 64-byte chunk gives the lanes' masks
 *   chunks    C 64-byte chunks (C = 4 for the 4/5-bit types, 8 for q8_0):
 *             chunk j holds, at byte 4i, bytes 4j .. 4j+3 of row i's qs
 * The last n_rows % 16 rows (if any) stay in the file's row layout after
 * the packed groups.
 *
 * K-quants (q4_K, q5_K, q6_K): the same scheme over the 256-value super-block:
 *   q4_K  d[16], dmin[16], then 35 chunks: 3 of the 12 scale bytes, 32 of
 *         the 128 code bytes (2304 bytes for 16 rows)
 *   q5_K  as q4_K with the 32 qh bytes (8 chunks) between scales and codes:
 *         43 chunks (2816 bytes)
 *   q6_K  d[16], then 52 chunks: 32 of ql, 16 of qh, 4 of the 16 int8
 *         scales (3360 bytes)
 * so a kernel with one row per lane reads everything with plain loads.
 *
 * Which types: the legacy block types (q4_0, q4_1, q5_0, q5_1, q8_0), q4_K,
 * q5_K and q6_K (the bulk of Q4_K_M and Q5_K_M files).
 */
#ifndef IG_TENSOR_PACK_H
#define IG_TENSOR_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { IG_PACK_ROWS = 16 };

/* Whether weights of `type` have an r16 layout. */
bool ig_pack_r16_supported(uint32_t type);

/*
 * Pack n_rows rows of `type` (row_bytes each, whole blocks) from src into
 * dst, which holds n_rows * row_bytes bytes: full groups packed, the tail
 * rows copied as they are. The type must be supported.
 */
void ig_pack_r16(uint32_t type, const void *src, size_t row_bytes, int64_t n_rows, void *dst);

/*
 * Row `row` of a matrix packed by ig_pack_r16 (n_rows rows), in the file's
 * layout: row_bytes bytes written to dst. _get_block: only its block `block`
 * (the type's block size in bytes).
 */
void ig_pack_r16_get_row(uint32_t type, const void *packed, size_t row_bytes, int64_t n_rows,
                         int64_t row, void *dst);
void ig_pack_r16_get_block(uint32_t type, const void *packed, size_t row_bytes, int64_t n_rows,
                           int64_t row, int64_t block, void *dst);

/*
 * Per-block terms of one token's converted activations that the r16 kernels
 * use for every row, computed once per matmul instead of once per 16 rows
 * (legacy types only; the K-quant kernels read q8_K's d and bsums directly):
 * the block scale as a float and either the offset correction (q4_0, q5_0,
 * q8_0 weights: their codes are made unsigned by an offset o, so the exact
 * integer dot is sum((w + o) * x) - o * sum(x); corr = -o * sum(x)) or, for
 * the types with a min (q4_1, q5_1; q8_1 activations), the f16 s as a float.
 */
typedef struct {
    float d;
    union {
        int32_t corr;
        float s;
    };
} ig_pack_aux;

/* aux[b] for the n / 32 blocks of activations xq (the vec_dot_type of `type`). */
void ig_pack_r16_act_aux(uint32_t type, const void *xq, int64_t n, ig_pack_aux *aux);

#endif
