/*
 * dot.c: the per-level dot-kernel tables (see dot.h). Built once under
 * pthread_once; read-only afterwards.
 */
#include "kernels/dot.h"

#include <pthread.h>

#define N_LEVELS (IG_CPU_AVX512 + 1)

static ig_dot_kernel g_table[N_LEVELS][IG_TYPE_COUNT];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void build(void) {
    for (uint32_t t = 0; t < IG_TYPE_COUNT; t++) {
        const ig_type_traits *tr = ig_type_get(t);
        if (!tr || !tr->vec_dot_q) continue;
        const ig_type_traits *act = ig_type_get(tr->vec_dot_type);
        if (!act || !act->quantize_act)
            continue; /* a traits-table bug; test_vec_dot_q catches it */
        g_table[IG_CPU_SCALAR][t] =
            (ig_dot_kernel){tr->vec_dot_type, act->quantize_act, tr->vec_dot_q};
    }
    /* Each level inherits the one below; per-ISA kernels override entries here. */
    for (int l = 1; l < N_LEVELS; l++)
        for (uint32_t t = 0; t < IG_TYPE_COUNT; t++) g_table[l][t] = g_table[l - 1][t];
}

const ig_dot_kernel *ig_dot_kernel_get(uint32_t type, ig_cpu_level level) {
    pthread_once(&g_once, build);
    if (type >= IG_TYPE_COUNT || (unsigned)level >= N_LEVELS) return NULL;
    const ig_dot_kernel *k = &g_table[level][type];
    return k->vec_dot_q ? k : NULL;
}
