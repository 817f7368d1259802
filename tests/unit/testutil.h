/* testutil.h: shared helpers for the unit tests. */
#ifndef IG_TESTUTIL_H
#define IG_TESTUTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A seeded random stream for test inputs (splitmix64): the next 64 bits. */
static inline uint64_t ig_test_rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in (0, 1), never 0 or 1. */
static inline double ig_test_rng_unit(uint64_t *s) {
    return ((double)(ig_test_rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

/* Standard normal (Box-Muller). */
static inline double ig_test_rng_gauss(uint64_t *s) {
    return sqrt(-2.0 * log(ig_test_rng_unit(s))) * cos(6.283185307179586 * ig_test_rng_unit(s));
}

/* Path of a file under the test data directory (IGNIS_TEST_DATA, default ../shared). */
static inline const char *ig_test_path(const char *rel) {
    static __thread char buf[4096];
    const char *root = getenv("IGNIS_TEST_DATA");
    if (!root || !*root) root = "../shared";
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    return buf;
}

/* Read a whole file into a NUL-terminated malloc'd buffer; NULL if unreadable. */
static inline char *ig_test_read_file(const char *path, size_t *len_out) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len_out) *len_out = (size_t)n;
    }
    return buf;
}

/*
 * IG_TSAN: defined in a ThreadSanitizer build. Criterion's runner cannot
 * start under TSan (its shared arena collides with TSan's memory layout),
 * so the threaded tests give such a build their own main().
 */
#if defined(__SANITIZE_THREAD__)
#define IG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define IG_TSAN 1
#endif
#endif

#endif
