/*
 * error.h: filling an ig_error. Internal to the library.
 */
#ifndef IG_BASE_ERROR_H
#define IG_BASE_ERROR_H

#include "ignis.h"

#if defined(__GNUC__)
#define IG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define IG_PRINTF(a, b)
#endif

/*
 * Record a failure in `err` (which may be NULL) and return `code`, so that
 * `return ig_errorf(err, IG_EFORMAT, "bad magic");` reads naturally. The first
 * failure wins: a second call on an error that already holds a code leaves it.
 */
ig_status ig_errorf(ig_error *err, ig_status code, const char *fmt, ...) IG_PRINTF(3, 4);

/* Clear an error back to IG_OK with an empty message. */
void ig_error_clear(ig_error *err);

/* Always-on invariant check for our own bugs (never for bad input). */
#define IG_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) ig__assert_fail(#cond, __FILE__, __LINE__);                                   \
    } while (0)
_Noreturn void ig__assert_fail(const char *expr, const char *file, int line);

#endif
