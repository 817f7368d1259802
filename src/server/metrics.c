/*
 * metrics.c: counters, histograms and the Prometheus text exposition.
 *
 * Names follow Prometheus conventions (snake_case, `_total` counters, base
 * units: seconds, bytes) with the `ignis_` prefix; every series carries
 * the model_name label, as vLLM's do. Histogram buckets are fixed at build
 * time; counts are kept per bucket and made cumulative when rendered.
 */
#include "server/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const double E2E_BOUNDS[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80};
static const double TTFT_BOUNDS[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25,
                                     0.5,   0.75,  1,    2.5,  5,    7.5,  10,   20};
static const double ITL_BOUNDS[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
                                    0.1,    0.15,  0.2,    0.3,   0.5,  1,     2.5};
static const double QUEUE_BOUNDS[] = {0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30};

#define N(a) ((int)(sizeof a / sizeof *a))

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *ig_route_name(ig_route r) {
    static const char *const names[IG_ROUTE_COUNT_] = {
        "/v1/completions", "/v1/chat/completions", "/v1/models", "/health",  "/ping", "/metrics",
        "/tokenize",       "/detokenize",          "/inference", "/results", "other"};
    return r >= 0 && r < IG_ROUTE_COUNT_ ? names[r] : "other";
}

static void hist_init(ig_hist *h, const double *bounds, int n) {
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
    h->n_bounds = n;
}

static void hist_add(ig_hist *h, double v) {
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

void ig_metrics_init(ig_metrics *m) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
    m->start_us = now_us();
    hist_init(&m->e2e, E2E_BOUNDS, N(E2E_BOUNDS));
    hist_init(&m->ttft, TTFT_BOUNDS, N(TTFT_BOUNDS));
    hist_init(&m->itl, ITL_BOUNDS, N(ITL_BOUNDS));
    hist_init(&m->queue, QUEUE_BOUNDS, N(QUEUE_BOUNDS));
}

void ig_metrics_deinit(ig_metrics *m) {
    pthread_mutex_destroy(&m->mu);
}

void ig_metrics_http(ig_metrics *m, ig_route route, int status) {
    if (route < 0 || route >= IG_ROUTE_COUNT_) route = IG_ROUTE_OTHER;
    if (status < 0 || status >= 600) status = 500;
    pthread_mutex_lock(&m->mu);
    m->http[route][status]++;
    pthread_mutex_unlock(&m->mu);
}

void ig_metrics_request(ig_metrics *m, const ig_request_stats *st) {
    pthread_mutex_lock(&m->mu);
    if (st->finish >= 0 && st->finish < 6) m->finished[st->finish]++;
    m->prompt_tokens += (uint64_t)(st->n_prompt_tokens > 0 ? st->n_prompt_tokens : 0);
    m->cached_tokens += (uint64_t)(st->n_cached_tokens > 0 ? st->n_cached_tokens : 0);
    m->generation_tokens += (uint64_t)(st->n_generated_tokens > 0 ? st->n_generated_tokens : 0);
    hist_add(&m->e2e, (double)st->total_us / 1e6);
    if (st->ttft_us >= 0) hist_add(&m->ttft, (double)st->ttft_us / 1e6);
    if (st->queue_us >= 0) hist_add(&m->queue, (double)st->queue_us / 1e6);
    for (int32_t i = 0; st->itl_ms && i < st->n_itl; i++) hist_add(&m->itl, st->itl_ms[i] / 1e3);
    pthread_mutex_unlock(&m->mu);
}

uint64_t ig_process_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, rss = 0;
    int n = fscanf(f, "%llu %llu", &size, &rss);
    fclose(f);
    if (n != 2) return 0;
    return (uint64_t)rss * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* A growable text buffer; on ENOMEM it stops growing and remembers. */
typedef struct out {
    char *buf;
    size_t len, cap;
    bool is_oom;
} out;

static void put(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out *o, const char *fmt, ...) {
    if (o->is_oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n + 1;
        char *b = realloc(o->buf, cap);
        if (!b) {
            o->is_oom = true;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
}

static void put_hist(out *o, const char *name, const char *help, const ig_hist *h,
                     const char *lbl) {
    put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < h->n_bounds; i++) {
        cum += h->counts[i];
        put(o, "%s_bucket{%s,le=\"%g\"} %llu\n", name, lbl, h->bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[h->n_bounds];
    put(o, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, lbl, (unsigned long long)cum);
    put(o, "%s_sum{%s} %.9g\n%s_count{%s} %llu\n", name, lbl, h->sum, name, lbl,
        (unsigned long long)h->count);
}

static void put_scalar(out *o, const char *type, const char *name, const char *help,
                       const char *lbl, double v) {
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s{%s} %.17g\n", name, help, name, type, name, lbl, v);
}

char *ig_metrics_render(ig_metrics *m, const ig_engine_stats *es, const char *model_name,
                        int64_t n_connections) {
    out o = {.cap = 16384};
    o.buf = malloc(o.cap);
    if (!o.buf) return NULL;
    o.buf[0] = '\0';
    char lbl[256];
    snprintf(lbl, sizeof lbl, "model_name=\"%s\"", model_name);

    pthread_mutex_lock(&m->mu);
    put(&o, "# HELP ignis_http_requests_total HTTP responses by route and status code.\n"
            "# TYPE ignis_http_requests_total counter\n");
    for (int r = 0; r < IG_ROUTE_COUNT_; r++)
        for (int s = 0; s < 600; s++)
            if (m->http[r][s])
                put(&o, "ignis_http_requests_total{%s,route=\"%s\",status=\"%d\"} %llu\n", lbl,
                    ig_route_name((ig_route)r), s, (unsigned long long)m->http[r][s]);
    put(&o, "# HELP ignis_request_success_total Generation requests finished, by reason.\n"
            "# TYPE ignis_request_success_total counter\n");
    for (int k = 1; k < 6; k++)
        put(&o, "ignis_request_success_total{%s,finished_reason=\"%s\"} %llu\n", lbl,
            ig_finish_kind_name((ig_finish_kind)k), (unsigned long long)m->finished[k]);
    put_scalar(&o, "counter", "ignis_prompt_tokens_total", "Prompt tokens of finished requests.",
               lbl, (double)m->prompt_tokens);
    put_scalar(&o, "counter", "ignis_prompt_tokens_cached_total",
               "Prompt tokens served from the prefix cache.", lbl, (double)m->cached_tokens);
    put_scalar(&o, "counter", "ignis_generation_tokens_total", "Generated tokens.", lbl,
               (double)m->generation_tokens);
    put_hist(&o, "ignis_e2e_request_latency_seconds", "Request latency, arrival to finish.",
             &m->e2e, lbl);
    put_hist(&o, "ignis_time_to_first_token_seconds", "Arrival to first generated token.", &m->ttft,
             lbl);
    put_hist(&o, "ignis_inter_token_latency_seconds", "Time between consecutive tokens.", &m->itl,
             lbl);
    put_hist(&o, "ignis_request_queue_time_seconds", "Arrival to first scheduled.", &m->queue, lbl);
    double uptime = (double)(now_us() - m->start_us) / 1e6;
    pthread_mutex_unlock(&m->mu);

    put_scalar(&o, "gauge", "ignis_num_requests_waiting", "Requests waiting (queue depth).", lbl,
               es->n_waiting);
    put_scalar(&o, "gauge", "ignis_num_requests_running", "Sequences holding KV blocks.", lbl,
               es->n_running);
    put_scalar(&o, "gauge", "ignis_kv_cache_usage_ratio", "KV blocks in use / total (0-1).", lbl,
               es->kv_usage);
    put_scalar(&o, "gauge", "ignis_kv_cache_blocks_total", "KV blocks in the pool.", lbl,
               es->kv_blocks_total);
    put_scalar(&o, "gauge", "ignis_kv_cache_blocks_used", "KV blocks held by running sequences.",
               lbl, es->kv_blocks_used);
    put_scalar(&o, "gauge", "ignis_kv_cache_blocks_cached",
               "Free KV blocks holding reusable prefixes.", lbl, es->kv_blocks_cached);
    put_scalar(&o, "gauge", "ignis_prefix_cache_hit_rate",
               "Cached prompt tokens / prompt tokens looked up (0-1).", lbl, es->prefix_hit_rate);
    put_scalar(&o, "counter", "ignis_preemptions_total", "Sequences preempted.", lbl,
               (double)es->n_preemptions);
    put_scalar(&o, "counter", "ignis_engine_rejected_total", "Submits refused: queue full.", lbl,
               (double)es->n_rejected);
    put_scalar(&o, "counter", "ignis_coalesced_total",
               "Requests that shared an identical running request's result.", lbl,
               (double)es->n_coalesced);
    put_scalar(&o, "counter", "ignis_response_cache_hits_total",
               "Requests answered from the response cache.", lbl,
               (double)es->n_response_cache_hits);
    put_scalar(&o, "gauge", "ignis_generation_tokens_per_second",
               "Generated tokens per second over the last second of steps.", lbl, es->tokens_per_s);
    put_scalar(&o, "gauge", "ignis_http_connections", "Open HTTP connections.", lbl,
               (double)n_connections);
    put_scalar(&o, "gauge", "ignis_process_resident_memory_bytes", "Resident memory.", lbl,
               (double)ig_process_rss_bytes());
    put_scalar(&o, "gauge", "ignis_uptime_seconds", "Seconds since the server started.", lbl,
               uptime);
    if (o.is_oom) {
        free(o.buf);
        return NULL;
    }
    return o.buf;
}
