/*
 * server.h: the OpenAI-compatible HTTP server (`ignis serve`).
 *
 * Model of use
 * ------------
 * ig_server_new() takes a loaded model (borrowed), starts an engine for it
 * and a libmicrohttpd daemon on host:port (an internal epoll thread, or a
 * small pool of them); requests are served at once. The caller's thread
 * then waits (ig_server_wait_signal() waits for SIGINT/SIGTERM) and calls
 * ig_server_shutdown() to stop gracefully: stop accepting, let in-flight
 * requests finish within drain_ms (then cancel them), close, and
 * ig_server_free().
 *
 * Endpoints: see docs/API.md. The HTTP threads parse, validate, render the
 * chat template and tokenize; the engine thread generates and hands events
 * to the connection through a per-request context, resuming the suspended
 * connection (the HTTP threads never block on the engine).
 *
 * Threads: ig_server_new/shutdown/free from one thread; the stats getters
 * from any.
 */
#ifndef IG_SERVER_SERVER_H
#define IG_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"

struct ig_model;

typedef enum ig_server_log_level {
    IG_SERVER_LOG_OFF = 0, /* nothing */
    IG_SERVER_LOG_ERROR,   /* failed requests (status >= 500) and server errors */
    IG_SERVER_LOG_WARN,    /* also 4xx */
    IG_SERVER_LOG_INFO,    /* one line per request (default) */
    IG_SERVER_LOG_DEBUG,   /* also request details */
} ig_server_log_level;

typedef struct ig_server_config {
    const char *host;            /* bind address; default "127.0.0.1" */
    int port;                    /* 0: any free port (see ig_server_port) */
    const char *model_id;        /* the model's name in the API; NULL: file name without .gguf */
    const char *model_path;      /* for the default model id and /v1/models */
    const char *const *api_keys; /* [n_api_keys] accepted bearer keys; none: no auth */
    size_t n_api_keys;
    const char *const *cors_origins; /* [n_cors_origins] origins allowed by CORS ("*": any),
                                        copied; none: no CORS headers */
    size_t n_cors_origins;
    const char *chat_template; /* builtin name or a file; NULL: the model's own */
    size_t max_body_bytes;     /* larger bodies get 413; default 8 MiB */
    int max_connections;       /* concurrent connections; default 512 */
    int max_inflight;          /* requests being generated at once before 503; default 256 */
    int idle_timeout_s; /* a connection idle (or half-sent) this long is closed; default 30 */
    int http_threads;   /* libmicrohttpd event threads; default 1 */
    int64_t drain_ms;   /* graceful shutdown: time for in-flight work; default 10000 */
    int64_t request_timeout_ms; /* per request generation limit; 0: none */
    int max_jobs;               /* background jobs kept for /results; default 1024 */
    int32_t default_max_tokens; /* tokens when a request gives none; 0: completions 16,
                                   chat until the context is full */
    ig_server_log_level log_level;
    bool log_text;           /* plain text lines instead of JSON */
    const char *log_file;    /* append logs here; NULL or "": stderr */
    ig_engine_config engine; /* model and on_event are set by the server */
} ig_server_config;

ig_server_config ig_server_config_default(void);

typedef struct ig_server ig_server;

/*
 * Start serving `model` (borrowed; must outlive the server). On success the
 * daemon is listening. Errors: IG_EINVAL (bad config, or a chat template
 * that fails to parse), IG_EIO (cannot bind host:port), IG_ENOMEM,
 * IG_EINTERNAL.
 */
ig_status ig_server_new(const ig_server_config *cfg, struct ig_model *model, ig_server **out,
                        ig_error *err);

/* The port actually bound (useful with port 0). */
int ig_server_port(const ig_server *s);

/* Block SIGINT and SIGTERM in the calling thread (call before ig_server_new
 * so the server's threads inherit the mask), then ig_server_wait_signal()
 * waits for one of them and returns its number. */
void ig_server_block_signals(void);
int ig_server_wait_signal(void);

/* Stop accepting connections, give in-flight requests cfg.drain_ms to
 * finish, cancel the rest, and close. Safe to call twice. */
void ig_server_shutdown(ig_server *s);

/* Shut down if needed and free. NULL is fine. */
void ig_server_free(ig_server *s);

#endif
