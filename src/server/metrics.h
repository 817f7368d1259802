/*
 * metrics.h: the server's counters and latency histograms, rendered in the
 * Prometheus text format (version 0.0.4) for GET /metrics.
 *
 * One ig_metrics per server; every function may be called from any thread
 * (a mutex guards the counters; each update is a few additions).
 */
#ifndef IG_SERVER_METRICS_H
#define IG_SERVER_METRICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"

/* The routes requests are counted under (the `route` label). */
typedef enum ig_route {
    IG_ROUTE_COMPLETIONS = 0,
    IG_ROUTE_CHAT,
    IG_ROUTE_MODELS,
    IG_ROUTE_HEALTH,
    IG_ROUTE_PING,
    IG_ROUTE_METRICS,
    IG_ROUTE_TOKENIZE,
    IG_ROUTE_DETOKENIZE,
    IG_ROUTE_INFERENCE,
    IG_ROUTE_RESULTS,
    IG_ROUTE_OTHER,
    IG_ROUTE_COUNT_,
} ig_route;

const char *ig_route_name(ig_route r); /* "/v1/completions", ..., "other" */

#define IG_HIST_MAX_BUCKETS 20

typedef struct ig_hist {
    const double *bounds; /* [n_bounds] upper bounds, ascending (static) */
    int n_bounds;
    uint64_t counts[IG_HIST_MAX_BUCKETS + 1]; /* per bucket, not cumulative; last: +Inf */
    double sum;
    uint64_t count;
} ig_hist;

typedef struct ig_metrics {
    pthread_mutex_t mu;
    int64_t start_us;                    /* CLOCK_MONOTONIC at creation */
    uint64_t http[IG_ROUTE_COUNT_][600]; /* responses by route and status code */
    uint64_t finished[6];                /* generation requests by ig_finish_kind */
    uint64_t prompt_tokens, cached_tokens, generation_tokens;
    ig_hist e2e, ttft, itl, queue; /* seconds */
    uint64_t active_requests;      /* being generated now */
} ig_metrics;

void ig_metrics_init(ig_metrics *m);
void ig_metrics_deinit(ig_metrics *m);

/* One HTTP response sent. */
void ig_metrics_http(ig_metrics *m, ig_route route, int status);
/* One engine request finished (its telemetry). */
void ig_metrics_request(ig_metrics *m, const ig_request_stats *st);

/* Resident set size of this process in bytes (0 if unknown). */
uint64_t ig_process_rss_bytes(void);

/*
 * The whole exposition: counters above plus a snapshot of the engine's
 * gauges. malloc'd NUL-terminated text (NULL on ENOMEM). `labels` is the
 * model label set, e.g. `model_name="stories260K"` (borrowed).
 */
char *ig_metrics_render(ig_metrics *m, const ig_engine_stats *es, const char *model_name,
                        int64_t n_connections);

#endif
