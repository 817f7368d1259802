/*
 * blocks.h: the byte layouts of GGML's block-quantized types as C structs,
 * shared by the reference kernels (quant_ref.c, act_quant.c, vec_dot_q.c),
 * the fast kernels and the tests. quant_ref.c describes what every field
 * means; this header only fixes the layout. All fields are little-endian
 * (Ignis runs on little-endian hosts only); "uint16_t" scales are IEEE
 * halves (tensor/fp16.h).
 *
 * Alignment: blocks need only the alignment of their widest field (2 bytes;
 * 4 for q8_K), which GGUF tensor data and malloc'd scratch always have.
 */
#ifndef IG_TENSOR_BLOCKS_H
#define IG_TENSOR_BLOCKS_H

#include <stdint.h>

#define IG_QK   32  /* values per legacy block (q4_0 .. q8_1) */
#define IG_QK_K 256 /* values per K-quant super-block */

typedef struct {
    uint16_t d;
    int8_t qs[IG_QK];
} ig_block_q8_0;
/* Activation format for q4_1 / q5_1 weights: s = d * sum(qs), both f16. */
typedef struct {
    uint16_t d, s;
    int8_t qs[IG_QK];
} ig_block_q8_1;
typedef struct {
    uint16_t d;
    uint8_t qs[IG_QK / 2];
} ig_block_q4_0;
typedef struct {
    uint16_t d, m;
    uint8_t qs[IG_QK / 2];
} ig_block_q4_1;
typedef struct {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[IG_QK / 2];
} ig_block_q5_0;
typedef struct {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[IG_QK / 2];
} ig_block_q5_1;
typedef struct {
    uint8_t scales[IG_QK_K / 16];
    uint8_t qs[IG_QK_K / 4];
    uint16_t d, dmin;
} ig_block_q2_K;
typedef struct {
    uint8_t hmask[IG_QK_K / 8];
    uint8_t qs[IG_QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} ig_block_q3_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[IG_QK_K / 2];
} ig_block_q4_K;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[IG_QK_K / 8];
    uint8_t qs[IG_QK_K / 2];
} ig_block_q5_K;
typedef struct {
    uint8_t ql[IG_QK_K / 2];
    uint8_t qh[IG_QK_K / 4];
    int8_t scales[IG_QK_K / 16];
    uint16_t d;
} ig_block_q6_K;
/* Activation format for the K-quants: float d; bsums[g] = sum of qs[16g .. 16g+15]. */
typedef struct {
    float d;
    int8_t qs[IG_QK_K];
    int16_t bsums[IG_QK_K / 16];
} ig_block_q8_K;

_Static_assert(sizeof(ig_block_q8_0) == 34, "q8_0 size");
_Static_assert(sizeof(ig_block_q8_1) == 36, "q8_1 size");
_Static_assert(sizeof(ig_block_q4_0) == 18, "q4_0 size");
_Static_assert(sizeof(ig_block_q4_1) == 20, "q4_1 size");
_Static_assert(sizeof(ig_block_q5_0) == 22, "q5_0 size");
_Static_assert(sizeof(ig_block_q5_1) == 24, "q5_1 size");
_Static_assert(sizeof(ig_block_q2_K) == 84, "q2_K size");
_Static_assert(sizeof(ig_block_q3_K) == 110, "q3_K size");
_Static_assert(sizeof(ig_block_q4_K) == 144, "q4_K size");
_Static_assert(sizeof(ig_block_q5_K) == 176, "q5_K size");
_Static_assert(sizeof(ig_block_q6_K) == 210, "q6_K size");
_Static_assert(sizeof(ig_block_q8_K) == 292, "q8_K size");

#endif
