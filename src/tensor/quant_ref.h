/*
 * quant_ref.h: portable reference kernels for every supported weight type:
 * dequantize (to_float), quantize (from_float) and dot product with a float
 * vector (vec_dot). Bit layouts follow GGML's block formats exactly, since
 * they are what GGUF files hold; quant_ref.c describes each layout.
 *
 * n is always a multiple of the type's block size (callers check). Block
 * pointers need only the alignment of the block's widest field (2 bytes;
 * 4 for q8_K), which GGUF tensor data always has.
 *
 * ig_to_float_T(src, dst, n): decode n values; never fails (any bit pattern
 *   is a valid block; an f16 scale of inf/NaN decodes to inf/NaN).
 * ig_from_float_T(src, dst, n): the reference quantizer. Writes n/blck whole
 *   blocks; each sub-block scale is searched to minimise squared error, so
 *   results differ from llama.cpp's bytes (their error is as low or lower
 *   on random weights). q8_0 and q8_K never emit -128. Non-finite input
 *   gives unspecified (but well-defined, in-range) blocks.
 * ig_vec_dot_T(row, x, n): sum over i of to_float(row)[i] * x[i], the
 *   products and the sum taken in double, rounded to float once at the end.
 *   Fast kernels are compared with it under a relative bound.
 */
#ifndef IG_TENSOR_QUANT_REF_H
#define IG_TENSOR_QUANT_REF_H

#include <stdint.h>

#define IG__QUANT_REF_DECL(t)                                                                      \
    void ig_to_float_##t(const void *src, float *dst, int64_t n);                                  \
    void ig_from_float_##t(const float *src, void *dst, int64_t n);                                \
    float ig_vec_dot_##t(const void *row, const float *x, int64_t n);

IG__QUANT_REF_DECL(f32)
IG__QUANT_REF_DECL(f16)
IG__QUANT_REF_DECL(bf16)
IG__QUANT_REF_DECL(q8_0)
IG__QUANT_REF_DECL(q4_0)
IG__QUANT_REF_DECL(q4_1)
IG__QUANT_REF_DECL(q5_0)
IG__QUANT_REF_DECL(q5_1)
IG__QUANT_REF_DECL(q2_K)
IG__QUANT_REF_DECL(q3_K)
IG__QUANT_REF_DECL(q4_K)
IG__QUANT_REF_DECL(q5_K)
IG__QUANT_REF_DECL(q6_K)
IG__QUANT_REF_DECL(q8_K)

#endif
