/*
 * ops.h: the numeric operations of a transformer forward pass, reference
 * versions in plain C. Every function is a pure function of its inputs;
 * the matmul splits rows across a thread pool.
 *
 * Batch invariance: each output value is reduced in an order that depends
 * only on that row and that token, never on how many tokens are in the batch
 * or which thread computes it, so a sequence's numbers do not change with
 * what runs beside it.
 */
#ifndef IG_KERNELS_OPS_H
#define IG_KERNELS_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/threadpool.h"

/*
 * A weight matrix: n_rows rows of n_cols values of `type`, in the file's row
 * layout or, when `packed`, in the r16 layout of tensor/pack.h (same size).
 */
typedef struct ig_matrix {
    uint32_t type;    /* ig_type */
    int64_t n_cols;   /* inner dimension (GGUF ne[0]) */
    int64_t n_rows;   /* output dimension (GGUF ne[1]) */
    size_t row_bytes; /* bytes per row */
    const void *data; /* n_rows * row_bytes bytes */
    bool packed;      /* data is in the r16 layout */
} ig_matrix;

/*
 * Whether packing w (ig_pack_r16) pays at the current CPU level: its type
 * has an r16 layout, the level has a kernel for it, and it has at least one
 * full group of rows. A packed matrix still works at any level (a slow
 * unpacking path), so lowering the level later is safe.
 */
bool ig_matrix_pack_pays(const ig_matrix *w);

/*
 * y[t][r] = W[r] . x[t] for t < n_tokens; x is [n_tokens][n_cols], y is
 * [n_tokens][n_rows]. As llama.cpp does, each token's activations are first
 * converted to the weight type's vec_dot_type (8-bit blocks for quantized
 * weights, f16/bf16 for f16/bf16 weights; see kernels/dot.h), once per call,
 * into `scratch`; then each output is an integer (or half-precision) dot
 * product. `scratch` is caller-owned, at least ig_matmul_scratch_bytes(w,
 * n_tokens) bytes, 4-byte aligned (malloc's alignment is plenty); it may be
 * NULL when that size is 0 (f32 weights). Its contents are garbage after.
 * Threads of `pool` split the tokens for the conversion, then the rows.
 * Kernels are those of ig_cpu_level_get() at the time of the call.
 */
void ig_matmul(ig_pool *pool, const ig_matrix *w, const float *x, int n_tokens, float *y,
               void *scratch);

/*
 * ys[i] = ws[i] x for n_w (1 to 3) matrices that share the input x (Q, K and
 * V; gate and up): bit for bit what n_w ig_matmul calls give, with the
 * activations converted once and one pass of the pool over all the
 * matrices' rows (one thread wake-up instead of n_w). Matrices of different
 * types or widths fall back to separate calls. scratch: the largest
 * ig_matmul_scratch_bytes of the matrices.
 */
void ig_matmul_n(ig_pool *pool, int n_w, const ig_matrix *const *ws, const float *x, int n_tokens,
                 float *const *ys, void *scratch);

/* Scratch bytes ig_matmul needs for n_tokens tokens of weights w (0 for f32 weights). */
size_t ig_matmul_scratch_bytes(const ig_matrix *w, int n_tokens);

/* Copy row `row` of W into dst as floats (dst holds n_cols values). */
void ig_matrix_get_row(const ig_matrix *w, int64_t row, float *dst);

/*
 * out = x / sqrt(mean(x^2) + eps) * weight, over n values (out may alias x).
 * This and the two below round exactly as ggml's CPU ops do (see ops.c).
 */
void ig_rmsnorm(float *out, const float *x, const float *weight, int n, float eps);

/*
 * Rotary embedding of the heads at one position, in two steps. ig_rope_table
 * writes the table of cosines and sines (2 * n_rot floats, n_rot <=
 * IG_ROPE_MAX_ROT: each value twice, cosines first) of
 * theta_i = pos * freq_scale * base^(-2i/n_rot) / freq_factors[i] (factors
 * may be NULL); it depends only on the position, so it is computed once.
 * ig_rope_apply rotates one head vector of head_dim values with it: the
 * first n_rot dims in adjacent pairs (x[2i], x[2i+1]) ("normal" ordering,
 * what GGUF llama weights expect) or, with is_neox, pairs (x[i],
 * x[i + n_rot/2]); the same bits at every CPU level (the AVX-512 / AVX2
 * code rotates 8 / 4 pairs at once with the scalar code's fused
 * multiply-adds).
 */
enum { IG_ROPE_MAX_ROT = 512 };
void ig_rope_table(float *cs, int n_rot, int pos, float freq_base, float freq_scale,
                   const float *freq_factors);
void ig_rope_apply(float *x, int head_dim, int n_rot, const float *cs, int is_neox);

/* a[i] = silu(a[i]) * b[i] over one row of n values (ggml rounds whole
 * blocks of 16 differently from the tail, so call it once per row). */
void ig_silu_mul(float *a, const float *b, int n);
/* One element of ig_silu_mul's vector-exp path (for the x86 kernels' rare lanes). */
float ig__silu_mul_one(float a, float b);

#endif
