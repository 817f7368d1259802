/*
 * cpu.h: what the processor can do, read once from cpuid (x86-64) and
 * optionally capped by IGNIS_CPU=scalar|avx2|avx512 for tests and
 * comparisons. Kernels are chosen from ig_cpu_level() at start-up.
 */
#ifndef IG_BASE_CPU_H
#define IG_BASE_CPU_H

#include <stdbool.h>

typedef enum ig_cpu_level {
    IG_CPU_SCALAR = 0, /* portable C only */
    IG_CPU_AVX2 = 1,   /* AVX2 + FMA + F16C */
    IG_CPU_AVX512 = 2, /* AVX-512 F/BW/VL (+ VNNI / BF16 flags below) */
} ig_cpu_level;

typedef struct ig_cpu_features {
    bool avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512_vnni, avx512_bf16;
    bool avx_vnni;
} ig_cpu_features;

/* What the hardware (and OS, via XGETBV) supports. */
const ig_cpu_features *ig_cpu_features_get(void);

/*
 * The level kernels should use: the best the hardware has, capped by
 * IGNIS_CPU if set. An unknown IGNIS_CPU value, or one above what the
 * hardware can do, is reported once on stderr and ignored / capped.
 */
ig_cpu_level ig_cpu_level_get(void);

/* Force a level (tests): capped at what the hardware supports; returns the level in effect. */
ig_cpu_level ig_cpu_level_set(ig_cpu_level level);

const char *ig_cpu_level_name(ig_cpu_level level);

#endif
