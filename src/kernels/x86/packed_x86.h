/*
 * packed_x86.h: the per-type facts the legacy-type kernels of every ISA
 * share (legacy_*.c on the file layout, packed_*.c on the r16 layout of
 * tensor/pack.h): which type, its block bytes and the offset of its codes,
 * whether it has a min or fifth bits, and its activation block (q8_1 for the
 * types with a min, else q8_0); for the K-quants (kpacked_*.c), which type
 * and its super-block bytes. Plain C, no ISA flags needed.
 */
#ifndef IG_KERNELS_X86_PACKED_X86_H
#define IG_KERNELS_X86_PACKED_X86_H

#include <stddef.h>

#include "tensor/blocks.h"

typedef enum { T_Q4_0, T_Q4_1, T_Q5_0, T_Q5_1, T_Q8_0 } wtype;

/* bytes of one weight block of t (a packed block of 16 rows is 16 times that) */
static inline size_t bsize(wtype t) {
    switch (t) {
    case T_Q4_0:
        return sizeof(ig_block_q4_0);
    case T_Q4_1:
        return sizeof(ig_block_q4_1);
    case T_Q5_0:
        return sizeof(ig_block_q5_0);
    case T_Q5_1:
        return sizeof(ig_block_q5_1);
    default:
        return sizeof(ig_block_q8_0);
    }
}
/* offset of the 16 nibble bytes (q8_0: of the 32 codes) in a weight block */
static inline size_t wqs(wtype t) {
    return t == T_Q4_1 ? 4 : t == T_Q5_0 ? 6 : t == T_Q5_1 ? 8 : 2;
}
static inline int has_min(wtype t) {
    return t == T_Q4_1 || t == T_Q5_1;
}
static inline int has_qh(wtype t) {
    return t == T_Q5_0 || t == T_Q5_1;
}
/* activation block bytes and the offset of its codes */
static inline size_t xsize(wtype t) {
    return has_min(t) ? sizeof(ig_block_q8_1) : sizeof(ig_block_q8_0);
}
static inline size_t xqs(wtype t) {
    return has_min(t) ? 4 : 2;
}

typedef enum { K4, K5, K6 } ktype;

/* bytes of one super-block of t */
static inline size_t sb_bytes(ktype t) {
    return t == K4   ? sizeof(ig_block_q4_K)
           : t == K5 ? sizeof(ig_block_q5_K)
                     : sizeof(ig_block_q6_K);
}

#endif
