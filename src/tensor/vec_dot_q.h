/*
 * vec_dot_q.h: reference dot products of one weight row with activations
 * already converted to the weight type's vec_dot_type (act_quant.h), the
 * arithmetic llama.cpp's CPU backend uses:
 *
 *   q8_0, q4_0, q5_0 . q8_0:  sum over blocks of (d_w * d_x) * isum, where
 *        isum = sum of q_w * q_x over the block in integers (q_w centred:
 *        q4 - 8, q5 - 16) and d_w * d_x is a float product of the f16 scales;
 *   q4_1, q5_1 . q8_1:  (d_w * d_x) * sum(q_w * q_x) + m_w * s_x per block;
 *   q2_K .. q6_K, q8_K . q8_K: per super-block, integer sums per sub-block
 *        weighted by the integer sub-block scales, then times d_w * d_x; the
 *        min term of q2_K/q4_K/q5_K is (dmin_w * d_x) * sum(min_s * bsums_s);
 *   f32, f16, bf16 . same type: plain products.
 *
 * Each block's (or super-block's) float term is accumulated in double and
 * the sum rounded to float once, so the result differs from an exact dot
 * of the decoded row with the decoded activations only by that last
 * rounding (and, for q8_1, by the rounding of s to f16). Fast kernels may
 * accumulate in float and are compared with these under a stated bound.
 *
 * n is a multiple of the weight type's block size; xq holds n values in the
 * vec_dot_type. Pure functions: thread-safe, never fail.
 */
#ifndef IG_TENSOR_VEC_DOT_Q_H
#define IG_TENSOR_VEC_DOT_Q_H

#include <stdint.h>

#define IG__VEC_DOT_Q_DECL(t) float ig_vec_dot_q_##t(const void *row, const void *xq, int64_t n);

IG__VEC_DOT_Q_DECL(f32)
IG__VEC_DOT_Q_DECL(f16)
IG__VEC_DOT_Q_DECL(bf16)
IG__VEC_DOT_Q_DECL(q8_0)
IG__VEC_DOT_Q_DECL(q4_0)
IG__VEC_DOT_Q_DECL(q4_1)
IG__VEC_DOT_Q_DECL(q5_0)
IG__VEC_DOT_Q_DECL(q5_1)
IG__VEC_DOT_Q_DECL(q2_K)
IG__VEC_DOT_Q_DECL(q3_K)
IG__VEC_DOT_Q_DECL(q4_K)
IG__VEC_DOT_Q_DECL(q5_K)
IG__VEC_DOT_Q_DECL(q6_K)
IG__VEC_DOT_Q_DECL(q8_K)

#endif
