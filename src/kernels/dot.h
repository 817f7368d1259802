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

#include <stdint.h>

#include "base/cpu.h"
#include "tensor/types.h"

typedef struct ig_dot_kernel {
    uint32_t act_type;               /* ig_type the activations are converted to */
    ig_quantize_act_fn quantize_act; /* n floats -> n values of act_type */
    ig_vec_dot_q_fn vec_dot_q;       /* weight row . n converted activations */
} ig_dot_kernel;

/*
 * The kernels for weights of type `type` at CPU level `level` (a level above
 * what the hardware supports is the caller's bug). NULL when the type has no
 * dot product (unknown id, or not usable as weights).
 */
const ig_dot_kernel *ig_dot_kernel_get(uint32_t type, ig_cpu_level level);

#endif
