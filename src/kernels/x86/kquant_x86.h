/*
 * kquant_x86.h: the x86 kernels for K-quant weights (q2_K .. q6_K) with q8_K
 * activations, defined in kquant_avx2.c and kquant_avx512.c (each compiled
 * with its own ISA flags: call a function only when ig_cpu_level_get() is at
 * least its level). kernels/dot.c puts them in the dispatch tables.
 *
 * Every function here gives results bit-identical to the scalar reference
 * of tensor/vec_dot_q.c and tensor/act_quant.c (see the .c files for why),
 * so the value for one (row, token) pair never depends on which function,
 * batch size or tile computed it. Pure functions: thread-safe, never fail.
 *
 * vec_dot: ig_vec_dot_q_fn (types.h): one row of n values (n a multiple of
 *   256) . n q8_K activations.
 * gemm: ig_gemm_q_fn (kernels/dot.h): y[c * ldy + r] = row r . token c for
 *   r < nr, c < nc; row r at w + r * w_row_bytes, token c's q8_K blocks at
 *   xq + c * xq_row_bytes.
 * quantize_q8_K: ig_quantize_act_fn, same bytes as ig_quantize_act_q8_K.
 */
#ifndef IG_KERNELS_X86_KQUANT_X86_H
#define IG_KERNELS_X86_KQUANT_X86_H

#include <stddef.h>
#include <stdint.h>

#define IG__KQ_DECL(isa)                                                                           \
    float ig__vec_dot_q2_K_##isa(const void *row, const void *xq, int64_t n);                      \
    float ig__vec_dot_q3_K_##isa(const void *row, const void *xq, int64_t n);                      \
    float ig__vec_dot_q4_K_##isa(const void *row, const void *xq, int64_t n);                      \
    float ig__vec_dot_q5_K_##isa(const void *row, const void *xq, int64_t n);                      \
    float ig__vec_dot_q6_K_##isa(const void *row, const void *xq, int64_t n);                      \
    void ig__gemm_q2_K_##isa(int64_t n, const void *w, size_t w_row_bytes, int nr, const void *xq, \
                             size_t xq_row_bytes, int nc, float *y, size_t ldy);                   \
    void ig__gemm_q3_K_##isa(int64_t n, const void *w, size_t w_row_bytes, int nr, const void *xq, \
                             size_t xq_row_bytes, int nc, float *y, size_t ldy);                   \
    void ig__gemm_q4_K_##isa(int64_t n, const void *w, size_t w_row_bytes, int nr, const void *xq, \
                             size_t xq_row_bytes, int nc, float *y, size_t ldy);                   \
    void ig__gemm_q5_K_##isa(int64_t n, const void *w, size_t w_row_bytes, int nr, const void *xq, \
                             size_t xq_row_bytes, int nc, float *y, size_t ldy);                   \
    void ig__gemm_q6_K_##isa(int64_t n, const void *w, size_t w_row_bytes, int nr, const void *xq, \
                             size_t xq_row_bytes, int nc, float *y, size_t ldy);

IG__KQ_DECL(avx2)
IG__KQ_DECL(avx512)

void ig__quantize_q8_K_avx2(const float *x, void *dst, int64_t n);

#endif
