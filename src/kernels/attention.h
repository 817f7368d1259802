/*
 * attention.h: attention of query heads over an F16 KV cache, with the
 * rounding points of llama.cpp's CPU flash-attention kernel (the per-row
 * path: ggml_flash_attn_ext's "one_chunk"), so a model's logits match it.
 *
 * Rounding points, in order, for one query head over positions 0..n_pos-1:
 *  - q is rounded to F16 (the K type's dot type);
 *  - q.k sums the exact F16 x F16 products in double, rounded once to float,
 *    then times 1/sqrt(head_dim);
 *  - online softmax in float with ig_expf (kernels/expf.h; llama.cpp calls
 *    libm expf, which differs from it in the last bit for ~4 in 100,000
 *    arguments): on a new maximum M the accumulator is
 *    scaled by expf(M_old - M), otherwise v is weighted by expf(s - M);
 *  - the V accumulator is F16: every scale and every v*w + acc (one fused
 *    multiply-add) is rounded back to F16, as ggml_vec_mad_f16 does;
 *  - the sum S = S*ms + vs is one fused multiply-add;
 *  - the result is acc * (1/S) in float.
 * Masked (future) positions are simply not visited. Every level (the scalar
 * reference, AVX2, AVX-512) follows these points; the only freedom the fast
 * ones take is the order of the double sum in q.k. The products are exact
 * and a double holds their sum exactly unless they span more than ~25
 * binary orders of magnitude; then orders differ by an ulp of double, which
 * changes the float it rounds to with probability ~2^-29. The tests expect
 * bit-identical results on random data (tests/unit/test_attention.c).
 *
 * The fast kernels take the query heads that share one KV head (grouped-
 * query attention) together: each cached K and V row is read and widened
 * once for all of them, and their independent softmax chains overlap.
 * Thread-safe: pure functions of their arguments.
 */
#ifndef IG_KERNELS_ATTENTION_H
#define IG_KERNELS_ATTENTION_H

#include <stddef.h>
#include <stdint.h>

#include "base/cpu.h"

/*
 * Where one KV head's rows are: position j's K row (head_dim F16 values) is
 * at k + block_table[j / block_size] * block_stride + offset
 * + (j % block_size) * slot_stride, and its V row at the same offset from v.
 */
typedef struct ig_attn_kv {
    const uint16_t *k, *v;      /* cache bases (F16 bits) */
    const int32_t *block_table; /* block ids of the sequence, in position order */
    int block_size;             /* positions per block */
    size_t block_stride;        /* elements per block id */
    size_t offset;      /* elements from a block's start to slot 0 of this layer and KV head */
    size_t slot_stride; /* elements between consecutive slots */
} ig_attn_kv;

/*
 * For h < n_q: out[h * head_dim ..] = attention of the query head q[h * head_dim ..]
 * (head_dim floats) over positions 0..n_pos-1 (n_pos >= 1) of kv. head_dim <= 512.
 * Uses the kernels of ig_cpu_level_get().
 */
void ig_attend_f16(const ig_attn_kv *kv, int head_dim, int n_pos, const float *q, int n_q,
                   float *out);

/* The same at a given CPU level (tests, comparisons); a level above the hardware's is a bug. */
void ig_attend_f16_level(ig_cpu_level level, const ig_attn_kv *kv, int head_dim, int n_pos,
                         const float *q, int n_q, float *out);

/* The per-ISA kernels (src/kernels/x86/attention_*.c); only attention.c calls them. */
void ig__attend_f16_avx2(const ig_attn_kv *kv, int head_dim, int n_pos, const float *q, int n_q,
                         float *out);
void ig__attend_f16_avx512(const ig_attn_kv *kv, int head_dim, int n_pos, const float *q, int n_q,
                           float *out);
/*
 * y[i] = ig_expf(x[i]) (kernels/expf.h) for i < n, computed with the vector
 * code the attention kernel of that level uses (for tests: every level must
 * give ig_expf's bits).
 */
void ig_attn_expf_level(ig_cpu_level level, const float *x, size_t n, float *y);
/* ig_expf on x[0..7] into y[0..7] with the AVX-512 / AVX2 kernel's vector code. */
void ig__expf8_avx512(const float *x, float *y);
void ig__expf8_avx2(const float *x, float *y);

#endif
