/* cpu.c: cpuid-based feature detection (see cpu.h). */
#include "base/cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define IG_X86 1
#endif

static ig_cpu_features g_feat;
static ig_cpu_level g_hw_level = IG_CPU_SCALAR;
static ig_cpu_level g_level = IG_CPU_SCALAR;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#ifdef IG_X86
static unsigned long long xgetbv0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

static void detect(void) {
#ifdef IG_X86
    unsigned int a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        const bool osxsave = (c >> 27) & 1;
        const bool avx = (c >> 28) & 1;
        g_feat.fma = (c >> 12) & 1;
        g_feat.f16c = (c >> 29) & 1;
        unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
        const bool os_avx = (xcr0 & 0x6) == 0x6;
        const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            g_feat.avx2 = avx && os_avx && ((b >> 5) & 1);
            g_feat.avx512f = os_avx512 && ((b >> 16) & 1);
            g_feat.avx512bw = os_avx512 && ((b >> 30) & 1);
            g_feat.avx512vl = os_avx512 && ((b >> 31) & 1);
            g_feat.avx512_vnni = os_avx512 && ((c >> 11) & 1);
        }
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
            g_feat.avx_vnni = os_avx && ((a >> 4) & 1);
            g_feat.avx512_bf16 = os_avx512 && ((a >> 5) & 1);
        }
        if (!os_avx) g_feat.fma = g_feat.f16c = false;
    }
#endif
    if (g_feat.avx2 && g_feat.fma && g_feat.f16c) g_hw_level = IG_CPU_AVX2;
    if (g_hw_level == IG_CPU_AVX2 && g_feat.avx512f && g_feat.avx512bw && g_feat.avx512vl)
        g_hw_level = IG_CPU_AVX512;
    g_level = g_hw_level;
    const char *env = getenv("IGNIS_CPU");
    if (env && *env) {
        ig_cpu_level want;
        if (!strcmp(env, "scalar")) want = IG_CPU_SCALAR;
        else if (!strcmp(env, "avx2")) want = IG_CPU_AVX2;
        else if (!strcmp(env, "avx512")) want = IG_CPU_AVX512;
        else {
            fprintf(stderr, "ignis: IGNIS_CPU='%s' is not one of scalar, avx2, avx512; ignored\n", env);
            return;
        }
        if (want > g_hw_level)
            fprintf(stderr, "ignis: IGNIS_CPU=%s but this CPU supports only %s\n", env,
                    ig_cpu_level_name(g_hw_level));
        g_level = want < g_hw_level ? want : g_hw_level;
    }
}

const ig_cpu_features *ig_cpu_features_get(void) {
    pthread_once(&g_once, detect);
    return &g_feat;
}

ig_cpu_level ig_cpu_level_get(void) {
    pthread_once(&g_once, detect);
    return g_level;
}

ig_cpu_level ig_cpu_level_set(ig_cpu_level level) {
    pthread_once(&g_once, detect);
    g_level = level < g_hw_level ? level : g_hw_level;
    return g_level;
}

const char *ig_cpu_level_name(ig_cpu_level level) {
    switch (level) {
    case IG_CPU_SCALAR: return "scalar";
    case IG_CPU_AVX2: return "avx2";
    case IG_CPU_AVX512: return "avx512";
    }
    return "?";
}
