/* testutil.h: shared helpers for the unit tests. */
#ifndef IG_TESTUTIL_H
#define IG_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>

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

#endif
