/*
 * log.c: JSON-lines logging (see log.h). Lines are built with jansson (so
 * every string is escaped) and written with one fputs under a lock.
 */
#include "server/log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/openai.h"

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static ig_server_log_level log_level = IG_SERVER_LOG_INFO;

void ig_log_set_level(ig_server_log_level level) {
    log_level = level;
}

static const char *level_name(ig_server_log_level l) {
    switch (l) {
    case IG_SERVER_LOG_ERROR:
        return "error";
    case IG_SERVER_LOG_WARN:
        return "warn";
    case IG_SERVER_LOG_DEBUG:
        return "debug";
    default:
        return "info";
    }
}

static void emit(json_t *line, ig_server_log_level level) {
    char ts[40];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);
    json_t *head = json_pack("{s:s,s:s}", "ts", ts, "level", level_name(level));
    if (head) json_object_update(head, line);
    char *s = head ? json_dumps(head, JSON_COMPACT | JSON_REAL_PRECISION(8)) : NULL;
    if (s) {
        pthread_mutex_lock(&log_mu);
        fputs(s, stderr);
        fputc('\n', stderr);
        fflush(stderr);
        pthread_mutex_unlock(&log_mu);
    }
    free(s);
    json_decref(head);
}

/* json string or null, sanitizing bytes that are not UTF-8. */
static json_t *str(const char *s) {
    if (!s) return json_null();
    size_t n;
    char *c = ig_oai_utf8_sanitize(s, strlen(s), &n);
    json_t *j = c ? json_stringn(c, n) : json_null();
    free(c);
    return j;
}

void ig_log_request_line(const ig_log_request *r) {
    ig_server_log_level lvl = r->status >= 500   ? IG_SERVER_LOG_ERROR
                              : r->status >= 400 ? IG_SERVER_LOG_WARN
                                                 : IG_SERVER_LOG_INFO;
    if (lvl > log_level) return;
    json_t *line =
        json_pack("{s:s,s:o,s:o,s:o,s:i,s:o,s:f}", "event", "request", "request_id",
                  str(r->request_id), "method", str(r->method), "path", str(r->path), "status",
                  r->status, "model", str(r->model), "duration_ms", r->duration_ms);
    if (!line) return;
    if (r->n_prompt_tokens >= 0) {
        json_object_set_new(line, "prompt_tokens", json_integer(r->n_prompt_tokens));
        json_object_set_new(line, "cached_tokens", json_integer(r->n_cached_tokens));
        json_object_set_new(line, "generated_tokens", json_integer(r->n_generated_tokens));
        json_object_set_new(line, "ttft_ms", r->ttft_ms >= 0 ? json_real(r->ttft_ms) : json_null());
        json_object_set_new(line, "stream", json_boolean(r->is_stream));
    }
    if (r->finish) json_object_set_new(line, "finish_reason", json_string(r->finish));
    if (r->error) json_object_set_new(line, "error", str(r->error));
    emit(line, lvl);
    json_decref(line);
}

void ig_log_event(ig_server_log_level level, const char *event, const char *fmt, ...) {
    if (level > log_level) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *line = json_pack("{s:s,s:o}", "event", event, "msg", str(msg));
    if (line) emit(line, level);
    json_decref(line);
}
