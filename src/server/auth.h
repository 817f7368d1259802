/*
 * auth.h: bearer API keys, compared in constant time.
 *
 * The set is immutable after ig_auth_new(), so any thread may check keys.
 */
#ifndef IG_SERVER_AUTH_H
#define IG_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "ignis.h"

typedef struct ig_auth ig_auth;

/* Copy n keys (each non-empty). n == 0 makes a set that accepts everything.
 * Errors: IG_EINVAL (an empty key), IG_ENOMEM. */
ig_status ig_auth_new(const char *const *keys, size_t n, ig_auth **out, ig_error *err);
void ig_auth_free(ig_auth *a);

bool ig_auth_enabled(const ig_auth *a);

/*
 * Check an Authorization header value ("Bearer KEY"; NULL when absent).
 * True when auth is off or KEY equals one of the keys. Every key is compared,
 * and each comparison takes time that depends on the key's length only, never
 * on where the first difference is.
 */
bool ig_auth_check(const ig_auth *a, const char *authorization);

/* Constant-time equality of two byte strings (time depends on the lengths only). */
bool ig_auth_equal(const char *a, size_t a_len, const char *b, size_t b_len);

#endif
