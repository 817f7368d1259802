/*
 * log.c: JSON-lines logging (see log.h). Lines are built with jansson (so
 * every string is escaped) and written with one fputs under a lock.
 */
#include "server/log.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"
#include "server/openai.h"

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static ig_server_log_level log_level = IG_SERVER_LOG_INFO;

void ig_log_set_level(ig_server_log_level level) {
    log_level = level;
}

static bool log_is_text;
static FILE *log_out; /* NULL: stderr */

void ig_log_set_format(bool is_text) {
    log_is_text = is_text;
}

ig_status ig_log_open_file(const char *path, ig_error *err) {
    FILE *f = fopen(path, "a");
    if (!f) return ig_errorf(err, IG_EIO, "log file '%s': %s", path, strerror(errno));
    pthread_mutex_lock(&log_mu);
    if (log_out) fclose(log_out);
    log_out = f;
    pthread_mutex_unlock(&log_mu);
    return IG_OK;
}

/* "k=v k=v" from a JSON object, for the text format (strings unquoted). */
static char *as_text(json_t *obj) {
    size_t cap = 256, len = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    buf[0] = '\0';
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        char *val = json_is_string(v) ? strdup(json_string_value(v))
                                      : json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(8));
        if (!val) continue;
        bool bare = !strcmp(key, "ts") || !strcmp(key, "level") || !strcmp(key, "event");
        size_t need = len + strlen(key) + strlen(val) + 4;
        if (need > cap) {
            while (cap < need) cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(val);
                break;
            }
            buf = nb;
        }
        if (bare)
            len += (size_t)snprintf(buf + len, cap - len, "%s%s", len ? " " : "", val);
        else
            len += (size_t)snprintf(buf + len, cap - len, "%s%s=%s", len ? " " : "", key, val);
        free(val);
    }
    return buf;
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
    char *s = !head         ? NULL
              : log_is_text ? as_text(head)
                            : json_dumps(head, JSON_COMPACT | JSON_REAL_PRECISION(8));
    if (s) {
        pthread_mutex_lock(&log_mu);
        FILE *out = log_out ? log_out : stderr;
        fputs(s, out);
        fputc('\n', out);
        fflush(out);
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
