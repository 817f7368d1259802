/*
 * auth.c: bearer API keys (see auth.h). The comparison never branches on
 * key bytes: differences are OR-ed together and looked at once at the end.
 */
#include "server/auth.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"

struct ig_auth {
    size_t n;
    char **keys;
    size_t *lens;
};

ig_status ig_auth_new(const char *const *keys, size_t n, ig_auth **out, ig_error *err) {
    ig_status st = IG_ENOMEM;
    ig_auth *a = calloc(1, sizeof *a);
    if (!a) goto fail;
    if (n) {
        a->keys = calloc(n, sizeof *a->keys);
        a->lens = calloc(n, sizeof *a->lens);
        if (!a->keys || !a->lens) goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        if (!keys[i] || !keys[i][0]) {
            st = ig_errorf(err, IG_EINVAL, "api key %zu is empty", i + 1);
            goto fail;
        }
        a->keys[i] = strdup(keys[i]);
        if (!a->keys[i]) goto fail;
        a->lens[i] = strlen(keys[i]);
        a->n = i + 1;
    }
    *out = a;
    return IG_OK;
fail:
    if (st == IG_ENOMEM) ig_errorf(err, IG_ENOMEM, "api keys: out of memory");
    ig_auth_free(a);
    return st;
}

void ig_auth_free(ig_auth *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n; i++) free(a->keys[i]);
    free(a->keys);
    free(a->lens);
    free(a);
}

bool ig_auth_enabled(const ig_auth *a) {
    return a && a->n > 0;
}

bool ig_auth_equal(const char *a, size_t a_len, const char *b, size_t b_len) {
    /* Walk the expected key's length whatever the candidate's length is. */
    volatile unsigned char diff = (unsigned char)(a_len != b_len);
    for (size_t i = 0; i < b_len; i++) {
        unsigned char x = i < a_len ? (unsigned char)a[i] : 0;
        diff |= (unsigned char)(x ^ (unsigned char)b[i]);
    }
    return diff == 0;
}

bool ig_auth_check(const ig_auth *a, const char *authorization) {
    if (!ig_auth_enabled(a)) return true;
    if (!authorization) return false;
    while (*authorization == ' ') authorization++;
    if (strncasecmp(authorization, "Bearer ", 7) != 0) return false;
    const char *key = authorization + 7;
    while (*key == ' ') key++;
    size_t len = strlen(key);
    while (len && key[len - 1] == ' ') len--;
    bool ok = false;
    for (size_t i = 0; i < a->n; i++) ok |= ig_auth_equal(key, len, a->keys[i], a->lens[i]);
    return ok;
}
