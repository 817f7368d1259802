/* error.c: status names and messages, and ig_error helpers. */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *ig_strerror(ig_status status) {
    switch (status) {
#define IG__MSG(name, value, msg)                                                                  \
    case IG_##name: return msg;
        IG_STATUS_MAP(IG__MSG)
#undef IG__MSG
    }
    return "unknown status";
}

const char *ig_errname(ig_status status) {
    switch (status) {
#define IG__NAME(name, value, msg)                                                                 \
    case IG_##name: return "IG_" #name;
        IG_STATUS_MAP(IG__NAME)
#undef IG__NAME
    }
    return "IG_UNKNOWN";
}

ig_status ig_errorf(ig_error *err, ig_status code, const char *fmt, ...) {
    if (err && err->code == IG_OK) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

void ig_error_clear(ig_error *err) {
    if (!err) return;
    err->code = IG_OK;
    err->message[0] = '\0';
}

void ig__assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "ignis: internal error: assertion `%s` failed at %s:%d\n", expr, file, line);
    abort();
}
