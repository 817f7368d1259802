/*
 * ignis.h: the public C API of Ignis, an LLM inference engine.
 *
 * Model of use
 * ------------
 * Every fallible function returns an ig_status: 0 (IG_OK) on success, a
 * negative code on failure. Functions that can fail for reasons worth telling
 * a person also take an optional `ig_error *` (may be NULL) which receives a
 * human-readable message. On failure no ownership moves: anything the caller
 * passed in is still the caller's, and no out-parameter is written.
 *
 * Handles are opaque; each has a matching _free. Unless a function says
 * otherwise, a handle may be used by one thread at a time.
 */
#ifndef IGNIS_H
#define IGNIS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* X(name, value, message): the single list of status codes. */
#define IG_STATUS_MAP(X)                                                                           \
    X(OK, 0, "ok")                                                                                 \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(EIO, -3, "input/output error")                                                               \
    X(EFORMAT, -4, "malformed data")                                                               \
    X(EUNSUPPORTED, -5, "not supported")                                                           \
    X(ERANGE, -6, "value out of range")                                                            \
    X(ENOTFOUND, -7, "not found")                                                                  \
    X(ETYPE, -8, "wrong type")                                                                     \
    X(ECONTEXT, -9, "context length exceeded")                                                     \
    X(EOVERLOADED, -10, "overloaded")                                                              \
    X(ECANCELLED, -11, "cancelled")                                                                \
    X(ETIMEDOUT, -12, "timed out")                                                                 \
    X(EINTERNAL, -13, "internal error")

typedef enum ig_status {
#define IG__STATUS_ENUM(name, value, msg) IG_##name = value,
    IG_STATUS_MAP(IG__STATUS_ENUM)
#undef IG__STATUS_ENUM
} ig_status;

/* A failure's code and message. Zero-initialise (`ig_error err = {0};`). */
typedef struct ig_error {
    ig_status code;   /* IG_OK until something fails */
    char message[512]; /* NUL-terminated, human readable */
} ig_error;

/* The fixed message for a code ("out of memory"); never NULL. */
const char *ig_strerror(ig_status status);
/* The code's name ("IG_ENOMEM"); never NULL. */
const char *ig_errname(ig_status status);

#ifdef __cplusplus
}
#endif
#endif /* IGNIS_H */
