/*
 * log.h: the server's structured log: one JSON object per line on stderr.
 *
 * Every HTTP request produces one "request" line at level info (warn for
 * 4xx, error for 5xx); server events (start, shutdown) are lines of their
 * own. Any thread may log; a line is written with one call under a lock,
 * so lines never interleave.
 */
#ifndef IG_SERVER_LOG_H
#define IG_SERVER_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "server/server.h"

typedef struct ig_log_request {
    const char *request_id;
    const char *method;
    const char *path;
    const char *model;       /* NULL when not a model request */
    int status;              /* HTTP status */
    int32_t n_prompt_tokens; /* -1: not a generation */
    int32_t n_cached_tokens;
    int32_t n_generated_tokens;
    double ttft_ms;     /* < 0: none */
    double duration_ms; /* request arrival to response complete (or abort) */
    const char *finish; /* finish_reason or NULL */
    const char *error;  /* error message or NULL */
    bool is_stream;
} ig_log_request;

void ig_log_set_level(ig_server_log_level level);
/* Plain text lines ("TS LEVEL event key=value ...") instead of JSON. */
void ig_log_set_format(bool is_text);
/* Append to this file instead of stderr. Errors: IG_EIO (cannot open it). */
ig_status ig_log_open_file(const char *path, ig_error *err);
void ig_log_request_line(const ig_log_request *r);
/* A server event line: {"level", "event", "msg"} plus optional extra JSON fields text. */
void ig_log_event(ig_server_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
