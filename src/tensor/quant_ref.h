/*
 * quant_ref.h: portable reference kernels for every supported weight type:
 * dequantize (to_float), quantize (from_float) and dot product with a float
 * vector (vec_dot). Bit layouts follow GGML's block formats exactly, since
 * they are what GGUF files hold; quant_ref.c describes each layout.
 *
 * n is always a multiple of the type's block size (callers check).
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
