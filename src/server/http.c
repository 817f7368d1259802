/*
 * http.c: the libmicrohttpd daemon: start and graceful stop, the access
 * handler (body collection with a size limit, routing, API keys), response
 * helpers, and the request-completed callback that ends a request's life.
 *
 * Threads: MHD runs the access handler, the SSE reader and the completed
 * callback on its internal epoll thread(s); one connection is only ever
 * handled by one of them at a time. See server_internal.h for how request
 * contexts are shared with the engine thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "server/server_internal.h"

int64_t ig__now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

bool ig__sbuf_add(ig_sbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) return false;
        b->buf = nb;
        b->cap = cap;
    }
    if (n) memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return true;
}

void ig__sbuf_free(ig_sbuf *b) {
    free(b->buf);
    memset(b, 0, sizeof *b);
}

ig_server_config ig_server_config_default(void) {
    ig_server_config c = {0};
    c.host = "127.0.0.1";
    c.port = 8080;
    c.max_body_bytes = 8u << 20;
    c.max_connections = 256;
    c.max_inflight = 256;
    c.idle_timeout_s = 30;
    c.http_threads = 1;
    c.drain_ms = 10000;
    c.max_jobs = 1024;
    c.log_level = IG_SERVER_LOG_INFO;
    c.engine = ig_engine_config_default();
    return c;
}

void ig__new_id(ig_server *s, const char *prefix, char *out, size_t cap) {
    uint64_t seq = atomic_fetch_add(&s->next_seq, 1);
    /* Unique per process run: start time, a sequence number, and a mix of both. */
    uint64_t x =
        (uint64_t)s->created_unix * 0x9E3779B97F4A7C15ull ^ (seq + 1) * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 31;
    snprintf(out, cap, "%s%016llx%04llx", prefix, (unsigned long long)x,
             (unsigned long long)(seq & 0xffff));
}

/* RFC 9110 token characters (header names). */
static bool is_token_char(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* ---- responses ---- */

/*
 * CORS, as vLLM (Starlette's middleware) and llama-server do it: a request
 * whose Origin is in server.cors_origins (or any Origin, with "*") gets
 * Access-Control-Allow-Origin on its answer, whatever the status: "*" for
 * the wildcard, else the Origin itself plus "Vary: Origin" so caches keep
 * answers to different origins apart. A preflight (OPTIONS with
 * Access-Control-Request-Method) is answered 204 before routing and without
 * the API key (browsers never send credentials on preflights). No origins
 * configured: no CORS headers, and OPTIONS is an unknown method (405/404).
 */
static const char *cors_origin(req_ctx *c) {
    ig_server *s = c->srv;
    if (s->n_cors_origins == 0) return NULL;
    const char *o = MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Origin");
    if (!o || !*o) return NULL;
    if (s->is_cors_any) return "*";
    for (size_t i = 0; i < s->n_cors_origins; i++)
        if (!strcmp(s->cors_origins[i], o)) return o;
    return NULL;
}

void ig__add_common_headers(req_ctx *c, struct MHD_Response *r) {
    MHD_add_response_header(r, "x-request-id", c->request_id);
    const char *o = c->conn ? cors_origin(c) : NULL;
    if (!o) return;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", o);
    MHD_add_response_header(r, "Access-Control-Expose-Headers", "x-request-id, Retry-After");
    if (strcmp(o, "*") != 0) MHD_add_response_header(r, "Vary", "Origin");
}

/* Header names a preflight may ask for: tokens separated by commas and spaces. */
static bool is_header_list(const char *h) {
    if (strlen(h) > 512) return false;
    for (const char *p = h; *p; p++)
        if (!is_token_char(*p) && *p != ',' && *p != ' ') return false;
    return true;
}

static enum MHD_Result cors_preflight(req_ctx *c) {
    if (!cors_origin(c)) {
        ig_oai_error e;
        ig_oai_fail(&e, 403, NULL, "cors_origin_not_allowed",
                    "this Origin is not allowed (server.cors_origins)");
        return ig__respond_error(c, &e);
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!r) return MHD_NO;
    ig__add_common_headers(c, r);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    /* The usual ones, plus whatever the browser asks for (the OpenAI SDKs
     * send their own x-stainless-* headers), as Starlette's allow_headers=*. */
    const char *want =
        MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    char allow[640];
    snprintf(allow, sizeof allow, "Authorization, Content-Type, X-Request-Id%s%s",
             want && *want && is_header_list(want) ? ", " : "",
             want && *want && is_header_list(want) ? want : "");
    MHD_add_response_header(r, "Access-Control-Allow-Headers", allow);
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    c->status = 204;
    enum MHD_Result ok = MHD_queue_response(c->conn, 204, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result ig__respond(req_ctx *c, int status, char *body, const char *content_type) {
    if (!body) {
        status = 500;
        body = strdup("{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                      "\"param\":null,\"code\":null}}");
        if (!body) return MHD_NO;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", content_type);
    ig__add_common_headers(c, r);
    if (status == 503 || status == 429) MHD_add_response_header(r, "Retry-After", "1");
    if (status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    c->status = status;
    enum MHD_Result ok = MHD_queue_response(c->conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result ig__respond_json(req_ctx *c, int status, json_t *obj) {
    char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(obj);
    return ig__respond(c, status, s, "application/json");
}

enum MHD_Result ig__respond_error(req_ctx *c, const ig_oai_error *e) {
    free(c->error_msg);
    c->error_msg = strdup(e->message);
    return ig__respond(c, e->http_status, ig_oai_error_json(e), "application/json");
}

/* ---- contexts ---- */

static void ctx_free(req_ctx *c) {
    ig__ctx_free_gen(c);
    ig__sbuf_free(&c->body);
    free(c->error_msg);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

void ig__ctx_unref(req_ctx *c) {
    pthread_mutex_lock(&c->mu);
    int refs = --c->refs;
    pthread_mutex_unlock(&c->mu);
    if (refs == 0) ctx_free(c);
}

static bool is_id_char(char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_' || ch == '.';
}

static req_ctx *ctx_new(ig_server *s, struct MHD_Connection *conn, const char *url,
                        const char *method) {
    req_ctx *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->refs = 1;
    c->srv = s;
    c->conn = conn;
    c->fd = -1;
    c->start_us = ig__now_us();
    c->created_unix = (int64_t)time(NULL);
    c->route = IG_ROUTE_OTHER;
    snprintf(c->method, sizeof c->method, "%s", method);
    snprintf(c->path, sizeof c->path, "%s", url);
    /* A client's own X-Request-Id is kept when it is short and plain. */
    const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t n = rid ? strlen(rid) : 0;
    bool ok = n > 0 && n < 64;
    for (size_t i = 0; ok && i < n; i++) ok = is_id_char(rid[i]);
    if (ok)
        memcpy(c->request_id, rid, n + 1);
    else
        ig__new_id(s, "req-", c->request_id, sizeof c->request_id);
    return c;
}

/* ---- routing ---- */

static enum MHD_Result respond_simple_error(req_ctx *c, int status, const char *param,
                                            const char *code, const char *msg) {
    ig_oai_error e;
    ig_oai_fail(&e, status, param, code, "%s", msg);
    return ig__respond_error(c, &e);
}

static bool path_is(const char *path, const char *p) {
    if (!strcmp(path, p)) return true;
    /* also without the /v1 prefix, as llama-server accepts */
    return !strncmp(p, "/v1/", 4) && !strcmp(path, p + 3);
}

static enum MHD_Result dispatch(req_ctx *c) {
    ig_server *s = c->srv;
    const char *p = c->path;
    bool is_get = !strcmp(c->method, "GET") || !strcmp(c->method, "HEAD");
    bool is_post = !strcmp(c->method, "POST");
    const char *want = NULL; /* the method the route takes */
    ig_route r = IG_ROUTE_OTHER;
    const char *model_id = NULL;
    if (path_is(p, "/v1/completions"))
        r = IG_ROUTE_COMPLETIONS, want = "POST";
    else if (path_is(p, "/v1/chat/completions"))
        r = IG_ROUTE_CHAT, want = "POST";
    else if (path_is(p, "/v1/models"))
        r = IG_ROUTE_MODELS, want = "GET";
    else if (!strncmp(p, "/v1/models/", 11))
        r = IG_ROUTE_MODELS, want = "GET", model_id = p + 11;
    else if (!strcmp(p, "/health") || !strcmp(p, "/v1/health"))
        r = IG_ROUTE_HEALTH, want = "GET";
    else if (!strcmp(p, "/ping"))
        r = IG_ROUTE_PING, want = "GET";
    else if (!strcmp(p, "/metrics"))
        r = IG_ROUTE_METRICS, want = "GET";
    else if (!strcmp(p, "/tokenize"))
        r = IG_ROUTE_TOKENIZE, want = "POST";
    else if (!strcmp(p, "/detokenize"))
        r = IG_ROUTE_DETOKENIZE, want = "POST";
    else if (!strcmp(p, "/inference"))
        r = IG_ROUTE_INFERENCE, want = "POST";
    else if (!strcmp(p, "/results"))
        r = IG_ROUTE_RESULTS, want = "GET";
    c->route = r;
    if (!strcmp(c->method, "OPTIONS") && s->n_cors_origins > 0 &&
        MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Access-Control-Request-Method"))
        return cors_preflight(c);
    if (!want) {
        char msg[256];
        snprintf(msg, sizeof msg, "no route for %s %.160s", c->method, p);
        return respond_simple_error(c, 404, NULL, "unknown_url", msg);
    }
    if (c->is_too_big) {
        char msg[160];
        snprintf(msg, sizeof msg, "the request body is larger than the limit of %zu bytes",
                 s->cfg.max_body_bytes);
        return respond_simple_error(c, 413, NULL, "request_too_large", msg);
    }
    if ((!strcmp(want, "GET") && !is_get) || (!strcmp(want, "POST") && !is_post)) {
        char msg[200];
        snprintf(msg, sizeof msg, "%.160s takes %s, not %s", p, want, c->method);
        return respond_simple_error(c, 405, NULL, "method_not_allowed", msg);
    }
    if (r != IG_ROUTE_HEALTH && r != IG_ROUTE_PING &&
        !ig_auth_check(s->auth,
                       MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, "Authorization")))
        return respond_simple_error(c, 401, NULL, "invalid_api_key",
                                    "invalid or missing API key (send Authorization: Bearer KEY)");
    switch (r) {
    case IG_ROUTE_COMPLETIONS:
        return ig__gen_start(c, IG_OAI_KIND_COMPLETION);
    case IG_ROUTE_CHAT:
        return ig__gen_start(c, IG_OAI_KIND_CHAT);
    case IG_ROUTE_MODELS:
        return ig__route_models(c, model_id);
    case IG_ROUTE_HEALTH:
        return ig__route_health(c);
    case IG_ROUTE_PING:
        return ig__respond(c, 200, strdup("{\"status\":\"ok\"}"), "application/json");
    case IG_ROUTE_METRICS:
        return ig__route_metrics(c);
    case IG_ROUTE_TOKENIZE:
        return ig__route_tokenize(c);
    case IG_ROUTE_DETOKENIZE:
        return ig__route_detokenize(c);
    case IG_ROUTE_INFERENCE:
        return ig__jobs_submit(c);
    case IG_ROUTE_RESULTS:
        return ig__jobs_results(c);
    default:
        return MHD_NO;
    }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls) {
    ig_server *s = cls;
    req_ctx *c = *con_cls;
    if (!c) {
        c = ctx_new(s, conn, url, method);
        if (!c) return MHD_NO;
        *con_cls = c;
        int open = atomic_fetch_add(&s->n_open, 1) + 1;
        if (open > s->cfg.max_connections) {
            c->is_dispatched = true;
            c->is_too_busy = true;
            return respond_simple_error(c, 503, NULL, "server_is_overloaded",
                                        "too many open connections; retry after a moment");
        }
        /* A declared length over the limit is refused before reading the body. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body_bytes) {
            c->is_too_big = true;
            c->is_dispatched = true;
            return dispatch(c);
        }
        return MHD_YES;
    }
    if (!c->is_dispatched) {
        if (*upload_size) {
            if (!c->is_too_big && c->body.len + *upload_size > s->cfg.max_body_bytes) {
                c->is_too_big = true;
                ig__sbuf_free(&c->body);
            }
            if (!c->is_too_big && !ig__sbuf_add(&c->body, upload, *upload_size)) return MHD_NO;
            *upload_size = 0;
            return MHD_YES;
        }
        c->is_dispatched = true;
        if (!c->body.buf && !ig__sbuf_add(&c->body, "", 0)) return MHD_NO;
        return dispatch(c);
    }
    if (*upload_size) { /* body bytes after an early answer (413): drop them */
        *upload_size = 0;
        return MHD_YES;
    }
    if (c->is_gen && !c->is_stream && c->status == 0) return ig__gen_resume(c);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    ig_server *s = cls;
    req_ctx *c = *con_cls;
    if (!c) return;
    *con_cls = NULL;
    ig__gen_on_completed(c, toe);
    ig_metrics_http(&s->metrics, c->route, c->status ? c->status : 499);
    ig_log_request lr = {
        .request_id = c->request_id,
        .method = c->method,
        .path = c->path,
        .status = c->status ? c->status : 499,
        .n_prompt_tokens = -1,
        .ttft_ms = -1,
        .duration_ms = (double)(ig__now_us() - c->start_us) / 1e3,
        .error = c->error_msg,
    };
    if (c->is_gen) {
        lr.model = s->model_id;
        lr.is_stream = c->is_stream;
        lr.n_prompt_tokens = c->n_prompt;
        pthread_mutex_lock(&c->mu);
        for (int i = 0; i < c->n_choices; i++) {
            const choice *ch = &c->choices[i];
            if (!ch->is_finished) continue;
            lr.n_generated_tokens += ch->stats.n_generated_tokens;
            if (i == 0) {
                lr.n_cached_tokens = ch->stats.n_cached_tokens;
                lr.ttft_ms = ch->stats.ttft_us >= 0 ? (double)ch->stats.ttft_us / 1e3 : -1;
                lr.finish = ig_oai_finish_reason(ch->finish);
            }
        }
        if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && !lr.error)
            lr.error = "client disconnected";
        ig_log_request_line(&lr);
        pthread_mutex_unlock(&c->mu);
    } else {
        ig_log_request_line(&lr);
    }
    atomic_fetch_sub(&s->n_open, 1);
    ig__ctx_unref(c);
}

/* ---- lifecycle ---- */

static ig_status load_template(ig_server *s, ig_error *err) {
#if IG_SERVER_HAS_CHAT_TEMPLATE
    const char *name = s->cfg.chat_template;
    const char *src = NULL;
    size_t len = 0;
    char *file = NULL;
    ig_status st = IG_OK;
    if (name && *name) {
        src = ig_chat_template_builtin(name);
        if (src) {
            len = strlen(src);
            snprintf(s->tmpl_name, sizeof s->tmpl_name, "builtin:%s", name);
        } else {
            FILE *f = fopen(name, "rb");
            if (!f)
                return ig_errorf(err, IG_EINVAL,
                                 "--chat-template: '%s' is neither a builtin (chatml, llama2, "
                                 "llama3, mistral, zephyr) nor a readable file",
                                 name);
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            fseek(f, 0, SEEK_SET);
            file = n >= 0 ? malloc((size_t)n + 1) : NULL;
            if (!file || fread(file, 1, (size_t)n, f) != (size_t)n) {
                fclose(f);
                free(file);
                return ig_errorf(err, IG_EIO, "--chat-template: cannot read '%s'", name);
            }
            fclose(f);
            src = file;
            len = (size_t)n;
            snprintf(s->tmpl_name, sizeof s->tmpl_name, "file");
        }
    } else if (s->model->gguf) {
        ig_str t;
        if (ig_gguf_get_str(s->model->gguf, "tokenizer.chat_template", &t) == IG_OK) {
            src = t.ptr;
            len = (size_t)t.len;
            snprintf(s->tmpl_name, sizeof s->tmpl_name, "model");
        }
    }
    if (src) {
        st = ig_chat_template_new(src, len, &s->tmpl, err);
        if (st) ig_errorf(err, st, "chat template (%s): %s", s->tmpl_name, err ? err->message : "");
    } else {
        snprintf(s->tmpl_name, sizeof s->tmpl_name, "none");
    }
    free(file);
    return st;
#else
    (void)err;
    snprintf(s->tmpl_name, sizeof s->tmpl_name, "unavailable");
    return IG_OK;
#endif
}

static char *token_text(const ig_vocab *v, int32_t id) {
    if (!v || id < 0 || id >= v->n_tokens) return NULL;
    return strndup(v->text[id], v->text_len[id]);
}

ig_status ig_server_new(const ig_server_config *cfg, ig_model *model, ig_server **out,
                        ig_error *err) {
    ig_status st = IG_ENOMEM;
    ig_server *s = calloc(1, sizeof *s);
    if (!s) return ig_errorf(err, IG_ENOMEM, "server: out of memory");
    s->cfg = *cfg;
    s->model = model;
    s->created_unix = (int64_t)time(NULL);
    ig_metrics_init(&s->metrics);
    pthread_mutex_init(&s->jobs_mu, NULL);
    ig_log_set_level(cfg->log_level);
    ig_log_set_format(cfg->log_text);
    if (cfg->log_file && *cfg->log_file && (st = ig_log_open_file(cfg->log_file, err)) != IG_OK)
        goto fail;
    if (!model || !model->vocab) {
        st = ig_errorf(err, IG_EINVAL, "server: the model has no tokenizer");
        goto fail;
    }
    if (cfg->model_id && *cfg->model_id) {
        snprintf(s->model_id, sizeof s->model_id, "%s", cfg->model_id);
    } else {
        const char *base = cfg->model_path ? strrchr(cfg->model_path, '/') : NULL;
        base = base ? base + 1 : (cfg->model_path ? cfg->model_path : model->desc.name);
        snprintf(s->model_id, sizeof s->model_id, "%s", base);
        size_t n = strlen(s->model_id);
        if (n > 5 && !strcmp(s->model_id + n - 5, ".gguf")) s->model_id[n - 5] = '\0';
    }
    s->jobs = calloc((size_t)(cfg->max_jobs > 0 ? cfg->max_jobs : 1), sizeof *s->jobs);
    if (!s->jobs) goto fail;
    if ((st = ig_auth_new(cfg->api_keys, cfg->n_api_keys, &s->auth, err))) goto fail;
    if (cfg->n_cors_origins) {
        s->cors_origins = calloc(cfg->n_cors_origins, sizeof *s->cors_origins);
        if (!s->cors_origins) goto fail;
        for (size_t i = 0; i < cfg->n_cors_origins; i++) {
            if (!(s->cors_origins[i] = strdup(cfg->cors_origins[i]))) goto fail;
            s->n_cors_origins = i + 1;
            s->is_cors_any |= !strcmp(cfg->cors_origins[i], "*");
        }
    }
    s->cfg.cors_origins = NULL; /* the copies above are used */
    if ((st = load_template(s, err))) goto fail;
    s->bos_text = token_text(model->vocab, model->vocab->bos_id);
    s->eos_text = token_text(model->vocab, model->vocab->eos_id);
    s->n_vocab = model->desc.n_vocab;
    s->n_ctx = cfg->engine.n_ctx > 0 ? cfg->engine.n_ctx : model->desc.n_ctx_train;

    ig_engine_config ec = cfg->engine;
    ec.model = model;
    ec.on_event = ig__gen_on_event;
    ec.on_event_user = s;
    if ((st = ig_engine_new(&ec, &s->engine, err))) goto fail;

    /* Resolve the bind address (IPv4 or IPv6). */
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host && *cfg->host ? cfg->host : NULL, port, &hints, &ai);
    if (gai) {
        st = ig_errorf(err, IG_EINVAL, "server: cannot resolve host '%s': %s", cfg->host,
                       gai_strerror(gai));
        goto fail;
    }
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    s->mhd = MHD_start_daemon(
        flags, (uint16_t)cfg->port, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)(cfg->max_connections > 0 ? cfg->max_connections * 2 + 16 : 528),
        MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(cfg->idle_timeout_s > 0 ? cfg->idle_timeout_s : 0), MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned)(cfg->http_threads > 1 ? cfg->http_threads : 0),
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    int bind_errno = errno;
    freeaddrinfo(ai);
    if (!s->mhd) {
        st = ig_errorf(err, IG_EIO, "server: cannot listen on %s:%d (%s)", cfg->host, cfg->port,
                       strerror(bind_errno));
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : cfg->port;
    *out = s;
    return IG_OK;
fail:
    if (st == IG_ENOMEM) ig_errorf(err, IG_ENOMEM, "server: out of memory");
    ig_server_free(s);
    return st;
}

int ig_server_port(const ig_server *s) {
    return s->port;
}

void ig_server_block_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int ig_server_wait_signal(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
    }
    return sig;
}

void ig_server_shutdown(ig_server *s) {
    if (!s || s->is_shut) return;
    s->is_shut = true;
    atomic_store(&s->is_draining, true);
    if (s->mhd) {
        MHD_socket fd = MHD_quiesce_daemon(s->mhd); /* stop accepting */
        if (fd != MHD_INVALID_SOCKET) close(fd);
    }
    if (s->engine) {
        ig_status st = ig_engine_drain(s->engine, s->cfg.drain_ms);
        if (st != IG_OK)
            ig_log_event(IG_SERVER_LOG_WARN, "shutdown",
                         "drain timed out after %lld ms: cancelling what is left",
                         (long long)s->cfg.drain_ms);
        ig_engine_stop(s->engine); /* cancels the rest; their connections get answers */
    }
    /* Let answered connections finish writing (bounded: 3 s). */
    for (int i = 0; i < 300 && atomic_load(&s->n_open) > 0; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (s->mhd) {
        MHD_stop_daemon(s->mhd);
        s->mhd = NULL;
    }
}

void ig_server_free(ig_server *s) {
    if (!s) return;
    ig_server_shutdown(s);
    ig_engine_free(s->engine);
    s->engine = NULL;
    ig__jobs_clear(s);
    free(s->jobs);
#if IG_SERVER_HAS_CHAT_TEMPLATE
    ig_chat_template_free(s->tmpl);
#endif
    free(s->bos_text);
    free(s->eos_text);
    ig_auth_free(s->auth);
    for (size_t i = 0; i < s->n_cors_origins; i++) free(s->cors_origins[i]);
    free(s->cors_origins);
    ig_metrics_deinit(&s->metrics);
    pthread_mutex_destroy(&s->jobs_mu);
    free(s);
}
