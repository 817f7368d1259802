/*
 * dot.c: the per-level dot-kernel tables (see dot.h). Built once under
 * pthread_once; read-only afterwards.
 */
#include "kernels/dot.h"

#include <pthread.h>

#define N_LEVELS (IG_CPU_AVX512 + 1)

static ig_dot_kernel g_table[N_LEVELS][IG_TYPE_COUNT];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/*
 * One call per ISA file (see dot.h); files of one level are independent of
 * each other (they fill different types), so the order within a level does
 * not matter.
 */
static void register_level(ig_cpu_level level, ig_dot_kernel *table) {
#ifdef IG_HAVE_X86_KERNELS
    switch (level) {
    case IG_CPU_AVX2:
        ig__dot_register_legacy_avx2(table);
        ig__dot_register_kquant_avx2(table);
        ig__dot_register_float_avx2(table);
        ig__dot_register_packed_avx2(table);
        ig__dot_register_kpacked_avx2(table);

        break;
    case IG_CPU_AVX512:
        ig__dot_register_legacy_avx512(table);
        ig__dot_register_kquant_avx512(table);
        ig__dot_register_float_avx512(table);
        ig__dot_register_packed_avx512(table);
        ig__dot_register_kpacked_avx512(table);

        break;
    default:
        break;
    }
#else
    (void)level;
    (void)table;
#endif
}

static void build(void) {
    for (uint32_t t = 0; t < IG_TYPE_COUNT; t++) {
        const ig_type_traits *tr = ig_type_get(t);
        if (!tr || !tr->vec_dot_q) continue;
        const ig_type_traits *act = ig_type_get(tr->vec_dot_type);
        if (!act || !act->quantize_act)
            continue; /* a traits-table bug; test_vec_dot_q catches it */
        g_table[IG_CPU_SCALAR][t] =
            (ig_dot_kernel){tr->vec_dot_type, act->quantize_act, tr->vec_dot_q, NULL, NULL};
    }
    /* Each level inherits the one below; per-ISA kernels override entries. */
    for (int l = 1; l < N_LEVELS; l++) {
        for (uint32_t t = 0; t < IG_TYPE_COUNT; t++) g_table[l][t] = g_table[l - 1][t];
        register_level((ig_cpu_level)l, g_table[l]);
    }
}

const ig_dot_kernel *ig_dot_kernel_get(uint32_t type, ig_cpu_level level) {
    pthread_once(&g_once, build);
    if (type >= IG_TYPE_COUNT || (unsigned)level >= N_LEVELS) return NULL;
    const ig_dot_kernel *k = &g_table[level][type];
    return k->vec_dot_q ? k : NULL;
}
