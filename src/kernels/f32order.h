/*
 * f32order.h: products of F32 weight matrices with F32 activations, summed
 * in exactly the order llama.cpp's CPU backend sums them (AVX-512 build), so
 * an F32 model gives the same logits bit for bit.
 *
 * Why it matters: llama.cpp keeps K and V in F16 and accumulates attention in
 * F16 (see attend() in model/llama.c). Every F16 rounding turns a one-ulp
 * difference upstream into a 2^-11 relative one, and over a few decode steps
 * that grows to ~1e-3 in the log-probabilities. Matching llama.cpp to 1e-3
 * therefore needs its F32 sums reproduced exactly, not just accurately.
 *
 * llama.cpp uses two orders for the same matrix:
 *  - batched (a ubatch of >= 2 tokens, K % 16 == 0 and rows % 4 == 0):
 *    llamafile's tinyBLAS: 16 lanes, lane l accumulates elements l, l+16, ...
 *    with fused multiply-adds, then a pairwise tree over the 16 lanes;
 *  - otherwise (one token, or K % 16 != 0): ggml_vec_dot_f32: 4 x 16 lanes
 *    over blocks of 64 elements, the four vectors added pairwise, the tree,
 *    then the leftover elements added one by one (in 16- and 8-element runs
 *    of rounded products, then fused multiply-adds, as GCC compiles it).
 * The caller picks per token (see ig_matmul_f32_ordered and ig_batch.prefill):
 * llama.cpp decides by the size of the whole batch, which makes its numbers
 * depend on chunking; a per-token choice keeps each token's result its own.
 */
#ifndef IG_KERNELS_F32ORDER_H
#define IG_KERNELS_F32ORDER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/threadpool.h"
#include "kernels/ops.h"

/* w . x over n values in tinyBLAS order; n must be a multiple of 16. */
float ig_dot_f32_lanes(const float *w, const float *x, int64_t n);

/* w . x over n values in ggml_vec_dot_f32 order (any n). */
float ig_dot_f32_blocks(const float *w, const float *x, int64_t n);

/* The same two orders with AVX2 + FMA (src/kernels/x86/f32order_avx2.c, x86-64
 * builds only; the caller checks the CPU level): bit for bit equal to the above. */
float ig__dot_f32_lanes_avx2(const float *w, const float *x, int64_t n);
float ig__dot_f32_blocks_avx2(const float *w, const float *x, int64_t n);

/*
 * y[t][r] = W[r] . x[t] for an F32 matrix W (w->type must be IG_TYPE_F32).
 * batched[t] != 0 selects the tinyBLAS order for token t where llama.cpp
 * could use it (n_cols % 16 == 0 and n_rows % 4 == 0); batched may be NULL
 * (all tokens in the one-token order). Rows are split across the pool.
 */
void ig_matmul_f32_ordered(ig_pool *pool, const ig_matrix *w, const float *x, int n_tokens,
                           const uint8_t *batched, float *y);

#endif
