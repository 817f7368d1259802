/*
 * dot.h: which dot-product kernels a matmul runs, per weight type and CPU
 * level. This is the dispatch seam for the per-ISA kernels.
 *
 * A matmul over weights of type T converts each token's activations once to
 * act_type (T's vec_dot_type) with quantize_act, then computes every output
 * as vec_dot_q(weight row, converted activations). The scalar level holds
 * the reference functions from the type traits (tensor/types.h); a level
 * above it starts as a copy of the level below and replaces the entries it
 * has faster versions of. A faster kernel must take and produce the same
 * activation format as the reference (act_type is fixed per weight type), so
 * activations converted at one level can be fed to the dot of any level, and
 * every fast entry is tested against its scalar twin under a stated bound
 * (tests/unit/test_vec_dot_q.c).
 *
 * The tables are built once, on first use, and are read-only after that:
 * any thread may call ig_dot_kernel_get.
 */
#ifndef IG_KERNELS_DOT_H
#define IG_KERNELS_DOT_H

#include <stddef.h>
#include <stdint.h>

#include "base/cpu.h"
#include "tensor/types.h"

/*
 * A tile of outputs: for r < nr, c < nc,
 *   y[c * ldy + r] = vec_dot_q(w + r * w_row_bytes, xq + c * xq_row_bytes, n)
 * (y is token-major, like the matmul's output). nr, nc >= 1, any size: the
 * kernel blocks them in registers as it likes and handles the edges itself.
 * Batch invariance: every output must be bit-identical to what vec_dot_q of
 * the same level gives for that (row, token) pair, whatever nr, nc, and the
 * pair's position in the tile (the kernel accumulates each pair in the same
 * order as vec_dot_q; tests/unit/test_kernels_*.c check it).
 */
typedef void (*ig_gemm_q_fn)(int64_t n, const void *w, size_t w_row_bytes, int nr, const void *xq,
                             size_t xq_row_bytes, int nc, float *y, size_t ldy);

/*
 * The same over weights in the r16 layout (tensor/pack.h): n_groups groups of
 * 16 rows, the first at w, group_bytes apart, times nc tokens:
 *   y[c * ldy + 16 * g + i] = vec_dot_q(row 16g + i, xq + c * xq_row_bytes, n)
 * bit for bit, whatever n_groups and nc. aux: per token (aux_row_bytes
 * apart) the n / 32 ig_pack_aux terms of its activations.
 */
typedef void (*ig_gemm_r16_fn)(int64_t n, const void *w, size_t group_bytes, int n_groups,
                               const void *xq, size_t xq_row_bytes, const void *aux,
                               size_t aux_row_bytes, int nc, float *y, size_t ldy);

typedef struct ig_dot_kernel {
    uint32_t act_type;               /* ig_type the activations are converted to */
    ig_quantize_act_fn quantize_act; /* n floats -> n values of act_type */
    ig_vec_dot_q_fn vec_dot_q;       /* weight row . n converted activations */
    ig_gemm_q_fn gemm_q;             /* a tile of rows x tokens; NULL: loop vec_dot_q */
    ig_gemm_r16_fn gemm_r16;         /* r16-packed weights; NULL: none at this level */
} ig_dot_kernel;

/*
 * The kernels for weights of type `type` at CPU level `level` (a level above
 * what the hardware supports is the caller's bug). NULL when the type has no
 * dot product (unknown id, or not usable as weights).
 */
const ig_dot_kernel *ig_dot_kernel_get(uint32_t type, ig_cpu_level level);

/*
 * Registration of the per-ISA kernels (src/kernels/x86/, x86-64 builds only):
 * each ISA file has one function that overwrites the entries it has faster
 * versions of in `table` (indexed by ig_type; on entry a copy of the level
 * below). It checks the CPU features it needs beyond its level's baseline
 * (ig_cpu_features_get) and leaves entries alone when they are missing.
 * Called once, from dot.c's table build. Not for other callers.
 */
void ig__dot_register_legacy_avx2(ig_dot_kernel *table);
void ig__dot_register_legacy_avx512(ig_dot_kernel *table);
void ig__dot_register_kquant_avx2(ig_dot_kernel *table);
void ig__dot_register_kquant_avx512(ig_dot_kernel *table);
void ig__dot_register_float_avx2(ig_dot_kernel *table);
void ig__dot_register_float_avx512(ig_dot_kernel *table);
void ig__dot_register_packed_avx2(ig_dot_kernel *table);
void ig__dot_register_kpacked_avx2(ig_dot_kernel *table);
void ig__dot_register_packed_avx512(ig_dot_kernel *table);
void ig__dot_register_kpacked_avx512(ig_dot_kernel *table);

#endif
