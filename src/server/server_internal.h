/*
 * server_internal.h: the server's shared state and per-request context,
 * between http.c (daemon, routing, connection lifetime), gen.c (generation
 * requests, the engine callback, SSE, background jobs) and routes.c (the
 * small endpoints).
 *
 * Lifetime of a request context (req_ctx)
 * ---------------------------------------
 * A context is created by libmicrohttpd's first call of the access handler
 * for an HTTP request (or by POST /inference for a background job) and is
 * reference counted under its mutex `mu`:
 *   - the connection holds one reference until MHD's request-completed
 *     callback (which also cancels unfinished engine requests: a client that
 *     went away stops costing KV blocks);
 *   - each submitted engine request (choice) holds one until its FINISHED
 *     event;
 *   - the jobs table holds one for a background job until it is evicted.
 * Whoever drops the last reference frees it (which may be the engine thread).
 *
 * Connection suspension: while waiting for the engine, the connection is
 * suspended (MHD_suspend_connection from the access handler or the SSE
 * reader, always with `mu` held and `is_suspended` set), and the engine
 * callback resumes it (again under `mu`), so a resume can never come before
 * its suspend and no HTTP thread ever blocks on the engine.
 */
#ifndef IG_SERVER_INTERNAL_H
#define IG_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"
#include "server/auth.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/openai.h"
#include "server/server.h"

#if defined(__has_include)
#if __has_include("tokenizer/chat_template.h")
#include "tokenizer/chat_template.h"
#define IG_SERVER_HAS_CHAT_TEMPLATE 1
#endif
#endif
#ifndef IG_SERVER_HAS_CHAT_TEMPLATE
#define IG_SERVER_HAS_CHAT_TEMPLATE 0
typedef struct ig_chat_template ig_chat_template;
#endif

/* A growable byte buffer. */
typedef struct ig_sbuf {
    char *buf;
    size_t len, cap;
} ig_sbuf;

bool ig__sbuf_add(ig_sbuf *b, const char *s, size_t n); /* false on ENOMEM */
void ig__sbuf_free(ig_sbuf *b);

typedef struct req_ctx req_ctx;

/* One choice (n > 1 gives several) = one engine request. */
typedef struct choice {
    req_ctx *ctx;
    int index;
    ig_request_id id; /* 0 until submitted */
    bool is_finished;
    ig_sbuf text;        /* non-stream: all text; stream: text not yet sent */
    ig_oai_logprob *lps; /* same split as text */
    size_t n_lps, cap_lps;
    size_t n_text_sent; /* stream: bytes sent so far (completion logprobs text_offset) */
    ig_finish_kind finish;
    ig_status status;
    char message[256];
    bool is_finish_sent;    /* stream: the finish chunk went out */
    ig_request_stats stats; /* copy of the FINISHED telemetry (itl_ms cleared) */
    double itl_mean_ms;
} choice;

struct req_ctx {
    struct ig_server *srv;
    struct MHD_Connection *conn; /* NULL for a background job */
    pthread_mutex_t mu;
    int refs; /* guarded by mu */

    ig_route route;
    char method[8];
    char path[160];
    char request_id[72];
    int64_t start_us;     /* CLOCK_MONOTONIC at arrival */
    int64_t created_unix; /* wall clock at arrival, seconds */
    ig_sbuf body;
    bool is_too_big;
    bool is_too_busy; /* refused at once: too many open requests */
    bool is_dispatched;
    int status;      /* HTTP status queued (for the log) */
    char *error_msg; /* for the log */

    /* generation */
    bool is_gen, is_job, is_stream;
    ig_oai_request req;
    char cmpl_id[96];
    char *echo_text;
    size_t echo_len;
    int32_t n_prompt;
    int n_choices;
    choice *choices;
    int n_finished;    /* guarded by mu */
    bool is_suspended; /* guarded by mu */
    bool is_gone;      /* MHD completed the request; never resume; guarded by mu */
    bool is_inflight;  /* counted in srv->n_inflight */
    /* non-streaming: the connection's socket, probed for a closed peer while
     * suspended (gen.c, client_gone); -1 when unknown */
    int fd;
    int64_t next_probe_us; /* guarded by mu */
    bool is_client_gone;   /* the peer closed while we waited; guarded by mu */
    ig_sbuf out;           /* stream: bytes ready to send */
    size_t out_off;
    bool is_usage_sent, is_done_sent;
    int64_t job_created_ms; /* job: wall-clock ms at submit */
};

typedef struct ig_server {
    ig_server_config cfg;
    ig_model *model;
    ig_engine *engine;
    struct MHD_Daemon *mhd;
    ig_auth *auth;
    char **cors_origins; /* copies of cfg.cors_origins (cfg's pointer is not kept) */
    size_t n_cors_origins;
    bool is_cors_any; /* "*" is among them */
    ig_metrics metrics;
    ig_chat_template *tmpl; /* NULL: chat requests get a 400 */
    char tmpl_name[64];     /* where the template came from, for the log */
    char *bos_text, *eos_text;
    char model_id[256];
    int32_t n_ctx, n_vocab;
    int64_t created_unix;
    int port;
    atomic_int n_inflight; /* generation contexts not yet finished */
    atomic_int n_open;     /* HTTP requests not yet completed */
    atomic_bool is_draining;
    bool is_shut;
    atomic_uint_fast64_t next_seq; /* for ids */

    pthread_mutex_t jobs_mu;
    req_ctx **jobs; /* ring of background jobs, oldest first; guarded by jobs_mu */
    int n_jobs;
} ig_server;

/* http.c */
int64_t ig__now_us(void);
/* Queue a response with `body` (taken: freed by MHD). Adds content type,
 * x-request-id and, for 429/503, Retry-After. */
enum MHD_Result ig__respond(req_ctx *c, int status, char *body, const char *content_type);
enum MHD_Result ig__respond_json(req_ctx *c, int status, json_t *obj); /* takes obj */
enum MHD_Result ig__respond_error(req_ctx *c, const ig_oai_error *e);
void ig__ctx_unref(req_ctx *c);
/* Headers every response gets: x-request-id, and the CORS ones when the
 * request's Origin is allowed. */
void ig__add_common_headers(req_ctx *c, struct MHD_Response *r);
void ig__new_id(ig_server *s, const char *prefix, char *out, size_t cap);

/* gen.c */
enum MHD_Result ig__gen_start(req_ctx *c, ig_oai_kind kind);
enum MHD_Result ig__gen_resume(req_ctx *c); /* access handler called again after resume */
void ig__gen_on_event(void *user, const ig_event *ev);
void ig__gen_on_completed(req_ctx *c, enum MHD_RequestTerminationCode toe);
void ig__ctx_free_gen(req_ctx *c);
enum MHD_Result ig__jobs_submit(req_ctx *c);
enum MHD_Result ig__jobs_results(req_ctx *c);
void ig__jobs_clear(ig_server *s);

/* routes.c */
enum MHD_Result ig__route_models(req_ctx *c, const char *id);
enum MHD_Result ig__route_health(req_ctx *c);
enum MHD_Result ig__route_metrics(req_ctx *c);
enum MHD_Result ig__route_tokenize(req_ctx *c);
enum MHD_Result ig__route_detokenize(req_ctx *c);

#endif
