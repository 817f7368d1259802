/* test_cpu.c: feature detection agrees with the compiler's view and with /proc/cpuinfo. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "base/cpu.h"

static bool cpuinfo_has(const char *flag) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return false;
    char line[8192];
    bool found = false;
    char pat[64];
    snprintf(pat, sizeof pat, " %s", flag);
    while (!found && fgets(line, sizeof line, f))
        if (!strncmp(line, "flags", 5)) {
            size_t n = strlen(line);
            if (n && line[n - 1] == '\n') line[n - 1] = ' ';
            char *p = line;
            while ((p = strstr(p, pat))) {
                char end = p[strlen(pat)];
                if (end == ' ' || end == '\0') { found = true; break; }
                p++;
            }
        }
    fclose(f);
    return found;
}

Test(cpu, features_match_proc_cpuinfo) {
    const ig_cpu_features *f = ig_cpu_features_get();
    cr_expect_eq(f->avx2, cpuinfo_has("avx2"));
    cr_expect_eq(f->fma, cpuinfo_has("fma"));
    cr_expect_eq(f->avx512f, cpuinfo_has("avx512f"));
    cr_expect_eq(f->avx512bw, cpuinfo_has("avx512bw"));
    cr_expect_eq(f->avx512_vnni, cpuinfo_has("avx512_vnni"));
    cr_expect_eq(f->avx512_bf16, cpuinfo_has("avx512_bf16"));
}

Test(cpu, level_can_be_capped_not_raised) {
    ig_cpu_level hw = ig_cpu_level_set(IG_CPU_AVX512);
    cr_assert_eq(ig_cpu_level_set(IG_CPU_SCALAR), IG_CPU_SCALAR);
    cr_assert_eq(ig_cpu_level_set(IG_CPU_AVX512), hw, "raising past the hardware must cap");
    cr_assert_str_eq(ig_cpu_level_name(IG_CPU_AVX2), "avx2");
}
