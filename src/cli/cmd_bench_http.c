/*
 * cmd_bench_http.c: `ignis bench --url URL`: an HTTP load generator for
 * `ignis serve` (or any OpenAI-compatible server). For each concurrency
 * level C it opens C keep-alive connections, one thread each, and every
 * connection sends POST /v1/completions back to back (a short prompt, a few
 * tokens, streaming or not) for a duration or until a total count of
 * requests is done; then it prints requests/s, generated tokens/s and the
 * latency percentiles, with the 1-minute load average read at the end of the
 * level (the machine may be shared).
 *
 * The client is plain HTTP/1.1 over blocking sockets: it writes a request,
 * reads the status line and headers, then a Content-Length body or a chunked
 * one (SSE streams). Generated tokens are read from the answer's
 * "completion_tokens" (streams ask for stream_options.include_usage). A
 * request counts as an error when the connection fails or the status is not
 * 200; the connection is then opened again.
 *
 * Threads: the main thread parses options, starts the workers of a level and
 * joins them; a worker owns its socket and its latency array, and shares
 * only the atomic request counters with the others.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

static const char HELP[] =
    "usage: ignis bench --url URL [--parallel N,..] [--duration S | --requests N]\n"
    "                   [--mode plain|stream|both] [-n N] [--prompt TEXT] [--temperature T]\n"
    "                   [--api-key KEY] [-o md|json]\n"
    "\n"
    "HTTP load test of an OpenAI-compatible server (e.g. `ignis serve`). For each level, open\n"
    "that many keep-alive connections; each sends POST /v1/completions back to back (after one\n"
    "untimed warm-up request) for --duration seconds or until --requests requests are done in\n"
    "all. Reports requests/s, generated tokens/s (from usage.completion_tokens), latency\n"
    "percentiles (request sent to answer complete), time to the first streamed byte (stream\n"
    "mode), errors (failed connections or a status other than 200) and the 1-minute load\n"
    "average at the end of the level. Exits 1 if any request failed.\n"
    "  --url URL              http://HOST:PORT[/PATH] (PATH default /v1/completions)\n"
    "  --parallel N,..        concurrent connections per level (default 1,4,16,64)\n"
    "  --duration S           seconds per level (default 10)\n"
    "  --requests N           instead: exactly N timed requests per level\n"
    "  --mode M               plain (default), stream, or both\n"
    "  -n, --n-gen N          max_tokens of each request (default 8)\n"
    "  --prompt TEXT          the prompt (default \"Once upon a time\")\n"
    "  --temperature T        sampling temperature (default 0)\n"
    "  --api-key KEY          send Authorization: Bearer KEY\n"
    "  -o, --output FORMAT    md (markdown table, default) or json\n"
    "  -h, --help             this help\n";

#define MAX_LEVELS  32
#define MAX_CONNS   1024
#define MAX_HEADERS 16384

typedef struct {
    char host[256];
    char port[16];
    char path[512];
    char *request; /* the whole HTTP request, sent as is */
    size_t request_len;
    bool is_stream;
    /* per level */
    atomic_long n_left; /* --requests mode: requests still to start */
    bool is_count;      /* --requests mode */
    int64_t end_us;     /* --duration mode: start no request after this; set before go */
    /* The gate: workers count themselves ready after their warm-up request
     * and wait for `is_go`, so the timed part starts together. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int n_ready;
    bool is_go;
    atomic_int n_error_msgs;
} bench;

typedef struct {
    bench *b;
    pthread_t thread;
    int fd;
    double *lat_ms, *ttft_ms; /* per completed request */
    size_t n_lat, cap_lat;
    long n_ok, n_err;
    long n_tokens;
    char *buf; /* receive buffer */
    size_t buf_len, buf_cap;
} worker;

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double load_avg_1m(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

/* Print the first few failures (to stderr), so a failing run says why. */
static void note_error(bench *b, const char *fmt, const char *arg) {
    if (atomic_fetch_add(&b->n_error_msgs, 1) >= 3) return;
    fprintf(stderr, "ignis: bench: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
}

static int parse_url(const char *url, bench *b) {
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0) {
        ig_cli_fail("--url: '%s' must start with http://", url);
        return 0;
    }
    p += 7;
    size_t hl;
    if (*p == '[') { /* [IPv6]:port */
        const char *e = strchr(p, ']');
        if (!e) {
            ig_cli_fail("--url: '%s': unclosed '['", url);
            return 0;
        }
        hl = (size_t)(e - p - 1);
        if (hl >= sizeof b->host) hl = sizeof b->host - 1;
        memcpy(b->host, p + 1, hl);
        b->host[hl] = '\0';
        p = e + 1;
    } else {
        hl = strcspn(p, ":/");
        if (hl == 0 || hl >= sizeof b->host) {
            ig_cli_fail("--url: '%s' has no host", url);
            return 0;
        }
        memcpy(b->host, p, hl);
        b->host[hl] = '\0';
        p += hl;
    }
    snprintf(b->port, sizeof b->port, "80");
    if (*p == ':') {
        size_t pl = strcspn(p + 1, "/");
        if (pl == 0 || pl >= sizeof b->port) {
            ig_cli_fail("--url: '%s' has a bad port", url);
            return 0;
        }
        memcpy(b->port, p + 1, pl);
        b->port[pl] = '\0';
        p += 1 + pl;
    }
    snprintf(b->path, sizeof b->path, "%s", *p && strcmp(p, "/") ? p : "/v1/completions");
    return 1;
}

/* Build the request (once per mode). */
static int build_request(bench *b, const char *prompt, long n_gen, double temperature,
                         const char *api_key) {
    int ok = 0;
    json_t *body = json_pack("{s:s,s:i,s:f,s:b}", "prompt", prompt, "max_tokens", (int)n_gen,
                             "temperature", temperature, "stream", b->is_stream);
    if (body && b->is_stream)
        json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
    char *js = body ? json_dumps(body, JSON_COMPACT) : NULL;
    char auth[600] = "";
    if (api_key) snprintf(auth, sizeof auth, "Authorization: Bearer %.500s\r\n", api_key);
    if (!js) goto out;
    size_t cap = strlen(js) + strlen(auth) + strlen(b->path) + strlen(b->host) + 256;
    free(b->request);
    b->request = malloc(cap);
    if (!b->request) goto out;
    int n = snprintf(b->request, cap,
                     "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                     "Accept: %s\r\n%sContent-Length: %zu\r\n\r\n%s",
                     b->path, b->host, b->port,
                     b->is_stream ? "text/event-stream" : "application/json", auth, strlen(js), js);
    if (n < 0 || (size_t)n >= cap) goto out;
    b->request_len = (size_t)n;
    ok = 1;
out:
    free(js);
    json_decref(body);
    return ok;
}

static int open_conn(bench *b) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int fd = -1;
    if (getaddrinfo(b->host, b->port, &hints, &ai) != 0) return -1;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd >= 0) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = {.tv_sec = 600};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    return fd;
}

/* Read more bytes into w->buf; false on EOF or error. */
static bool fill(worker *w) {
    if (w->buf_cap - w->buf_len < 4096) {
        size_t cap = w->buf_cap ? w->buf_cap * 2 : 16384;
        char *nb = realloc(w->buf, cap);
        if (!nb) return false;
        w->buf = nb;
        w->buf_cap = cap;
    }
    ssize_t n;
    do n = recv(w->fd, w->buf + w->buf_len, w->buf_cap - w->buf_len - 1, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0) return false;
    w->buf_len += (size_t)n;
    w->buf[w->buf_len] = '\0';
    return true;
}

static void consume(worker *w, size_t n) {
    memmove(w->buf, w->buf + n, w->buf_len - n);
    w->buf_len -= n;
    if (w->buf) w->buf[w->buf_len] = '\0';
}

/* A header's value (case-insensitive name) within hdr[0, len), or NULL. */
static const char *header(const char *hdr, size_t len, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = hdr; p && p < hdr + len;) {
        const char *eol = strstr(p, "\r\n");
        if (!eol) break;
        if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* The last "completion_tokens": N in s[0, len), or 0. */
static long completion_tokens(const char *s, size_t len) {
    static const char key[] = "\"completion_tokens\":";
    long n = 0;
    for (const char *p = s;
         p < s + len && (p = memmem(p, (size_t)(s + len - p), key, sizeof key - 1)) != NULL;
         p += sizeof key - 1)
        n = strtol(p + sizeof key - 1, NULL, 10);
    return n;
}

/*
 * One request/response on w->fd. Returns 1 on a 200 answer (tokens and
 * times filled), 0 on another status (the connection stays usable unless
 * *is_closed), -1 on a connection failure.
 */
static int exchange(worker *w, int64_t t0, double *ttft_ms, long *tokens, bool *is_closed) {
    bench *b = w->b;
    size_t off = 0;
    *ttft_ms = -1;
    *tokens = 0;
    *is_closed = false;
    while (off < b->request_len) {
        ssize_t n = send(w->fd, b->request + off, b->request_len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        off += (size_t)n;
    }
    /* status line and headers */
    char *end;
    while (!w->buf || !(end = strstr(w->buf, "\r\n\r\n"))) {
        if (w->buf_len > MAX_HEADERS || !fill(w)) return -1;
    }
    size_t hlen = (size_t)(end - w->buf) + 4;
    int status = 0;
    if (sscanf(w->buf, "HTTP/1.%*d %d", &status) != 1) return -1;
    const char *cl = header(w->buf, hlen, "Content-Length");
    const char *te = header(w->buf, hlen, "Transfer-Encoding");
    const char *cn = header(w->buf, hlen, "Connection");
    bool is_chunked = te && !strncasecmp(te, "chunked", 7);
    *is_closed = cn && !strncasecmp(cn, "close", 5);
    long long content_len = cl ? strtoll(cl, NULL, 10) : -1;
    consume(w, hlen);
    if (is_chunked) {
        /* Chunks are moved to the front of buf as they complete (the body
         * accumulates in buf[0, body)); tokens are read from it at the end. */
        size_t body = 0;
        for (;;) {
            char *eol;
            while (!(eol = strstr(w->buf + body, "\r\n")))
                if (!fill(w)) return -1;
            unsigned long long sz = strtoull(w->buf + body, NULL, 16);
            size_t line = (size_t)(eol - (w->buf + body)) + 2;
            while (w->buf_len - body < line + sz + 2)
                if (!fill(w)) return -1;
            if (sz > 0 && *ttft_ms < 0) *ttft_ms = (double)(now_us() - t0) / 1e3;
            memmove(w->buf + body, w->buf + body + line, sz);
            memmove(w->buf + body + sz, w->buf + body + line + sz + 2,
                    w->buf_len - body - line - sz - 2);
            w->buf_len -= line + 2;
            w->buf[w->buf_len] = '\0';
            body += sz;
            if (sz == 0) break; /* no trailers are sent by the servers we test */
        }
        *tokens = completion_tokens(w->buf, body);
        consume(w, body);
    } else if (content_len >= 0) {
        while (w->buf_len < (size_t)content_len)
            if (!fill(w)) return -1;
        *tokens = completion_tokens(w->buf, (size_t)content_len);
        consume(w, (size_t)content_len);
    } else {
        while (fill(w)) { /* body until close */
        }
        *tokens = completion_tokens(w->buf, w->buf_len);
        consume(w, w->buf_len);
        *is_closed = true;
    }
    if (status != 200) {
        char msg[32];
        snprintf(msg, sizeof msg, "%d", status);
        note_error(b, "HTTP status %s", msg);
        return 0;
    }
    return 1;
}

static bool push_lat(worker *w, double lat, double ttft) {
    if (w->n_lat == w->cap_lat) {
        size_t cap = w->cap_lat ? w->cap_lat * 2 : 1024;
        double *a = realloc(w->lat_ms, cap * sizeof *a);
        if (!a) return false;
        w->lat_ms = a;
        double *t = realloc(w->ttft_ms, cap * sizeof *t);
        if (!t) return false;
        w->ttft_ms = t;
        w->cap_lat = cap;
    }
    w->lat_ms[w->n_lat] = lat;
    w->ttft_ms[w->n_lat] = ttft;
    w->n_lat++;
    return true;
}

/* One request, reconnecting first if needed; counts it. */
static void one_request(worker *w, bool is_timed) {
    if (w->fd < 0) {
        w->fd = open_conn(w->b);
        w->buf_len = 0;
        if (w->fd < 0) {
            note_error(w->b, "cannot connect to %s", w->b->host);
            if (is_timed) w->n_err++;
            struct timespec ts = {0, 10 * 1000 * 1000}; /* don't spin on a dead server */
            nanosleep(&ts, NULL);
            return;
        }
    }
    int64_t t0 = now_us();
    double ttft;
    long tokens;
    bool is_closed;
    int r = exchange(w, t0, &ttft, &tokens, &is_closed);
    double lat = (double)(now_us() - t0) / 1e3;
    if (r < 0) note_error(w->b, "connection failed (%s)", strerror(errno));
    if (r < 0 || is_closed) {
        close(w->fd);
        w->fd = -1;
    }
    if (!is_timed) return;
    if (r == 1) {
        w->n_ok++;
        w->n_tokens += tokens;
        if (!push_lat(w, lat, ttft)) w->n_err++;
    } else {
        w->n_err++;
    }
}

static void *worker_main(void *arg) {
    worker *w = arg;
    bench *b = w->b;
    one_request(w, false); /* warm-up: connect, touch the path */
    pthread_mutex_lock(&b->mu);
    b->n_ready++;
    pthread_cond_broadcast(&b->cond);
    while (!b->is_go) pthread_cond_wait(&b->cond, &b->mu);
    pthread_mutex_unlock(&b->mu);
    for (;;) {
        if (b->is_count) {
            if (atomic_fetch_sub(&b->n_left, 1) <= 0) break;
        } else if (now_us() >= b->end_us) {
            break;
        }
        one_request(w, true);
    }
    if (w->fd >= 0) close(w->fd);
    w->fd = -1;
    return NULL;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted x[n]. */
static double pct(const double *x, size_t n, double p) {
    if (n == 0) return 0;
    size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return x[k - 1];
}

typedef struct {
    const char *mode;
    long conns;
    long n_ok, n_err, n_tokens;
    double secs, load1;
    double lat[4], ttft[3]; /* p50 p95 p99 max; p50 p95 p99 (ms) */
} level_result;

/* Run one level; false on an internal failure (memory, threads). */
static bool run_level(bench *b, long conns, long n_requests, double duration_s, level_result *res) {
    bool ok = false;
    worker *ws = calloc((size_t)conns, sizeof *ws);
    double *all = NULL, *tt = NULL;
    long started = 0;
    if (!ws) goto out;
    b->is_count = n_requests > 0;
    atomic_store(&b->n_left, n_requests);
    b->end_us = INT64_MAX;
    b->n_ready = 0;
    b->is_go = false;
    for (long i = 0; i < conns; i++) {
        ws[i].b = b;
        ws[i].fd = -1;
        if (pthread_create(&ws[i].thread, NULL, worker_main, &ws[i])) break;
        started++;
    }
    if (started < conns) { /* let the started ones go at once: no request is left */
        ig_cli_fail("bench: cannot start %ld threads", conns);
        b->is_count = true;
        atomic_store(&b->n_left, 0);
    }
    pthread_mutex_lock(&b->mu);
    while (b->n_ready < started) pthread_cond_wait(&b->cond, &b->mu);
    int64_t t0 = now_us();
    b->end_us = t0 + (int64_t)(duration_s * 1e6);
    b->is_go = true;
    pthread_cond_broadcast(&b->cond);
    pthread_mutex_unlock(&b->mu);
    for (long i = 0; i < started; i++) pthread_join(ws[i].thread, NULL);
    res->secs = (double)(now_us() - t0) / 1e6;
    res->load1 = load_avg_1m();
    if (started < conns) goto out;
    size_t n = 0;
    res->conns = conns;
    res->n_ok = res->n_err = res->n_tokens = 0;
    for (long i = 0; i < conns; i++) {
        n += ws[i].n_lat;
        res->n_ok += ws[i].n_ok;
        res->n_err += ws[i].n_err;
        res->n_tokens += ws[i].n_tokens;
    }
    all = malloc((n ? n : 1) * sizeof *all);
    tt = malloc((n ? n : 1) * sizeof *tt);
    if (!all || !tt) goto out;
    size_t k = 0, nt = 0;
    for (long i = 0; i < conns; i++)
        for (size_t j = 0; j < ws[i].n_lat; j++) {
            all[k++] = ws[i].lat_ms[j];
            if (ws[i].ttft_ms[j] >= 0) tt[nt++] = ws[i].ttft_ms[j];
        }
    qsort(all, n, sizeof *all, cmp_double);
    qsort(tt, nt, sizeof *tt, cmp_double);
    res->lat[0] = pct(all, n, 50);
    res->lat[1] = pct(all, n, 95);
    res->lat[2] = pct(all, n, 99);
    res->lat[3] = n ? all[n - 1] : 0;
    res->ttft[0] = nt ? pct(tt, nt, 50) : -1;
    res->ttft[1] = nt ? pct(tt, nt, 95) : -1;
    res->ttft[2] = nt ? pct(tt, nt, 99) : -1;
    ok = true;
out:
    for (long i = 0; ws && i < conns; i++) {
        free(ws[i].lat_ms);
        free(ws[i].ttft_ms);
        free(ws[i].buf);
    }
    free(ws);
    free(all);
    free(tt);
    return ok;
}

static void md_header(void) {
    printf("| mode | conns | requests | errors | secs | req/s | tok/s | p50 ms | p95 ms | p99 ms "
           "| max ms | ttft p50 ms | ttft p95 ms | load1 |\n");
    printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
           "---: | ---: |\n");
}

static void md_row(const level_result *r) {
    char t50[32] = "-", t95[32] = "-";
    if (r->ttft[0] >= 0) {
        snprintf(t50, sizeof t50, "%.2f", r->ttft[0]);
        snprintf(t95, sizeof t95, "%.2f", r->ttft[1]);
    }
    printf("| %s | %ld | %ld | %ld | %.2f | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f | %s | %s | "
           "%.2f |\n",
           r->mode, r->conns, r->n_ok, r->n_err, r->secs, r->secs > 0 ? r->n_ok / r->secs : 0,
           r->secs > 0 ? r->n_tokens / r->secs : 0, r->lat[0], r->lat[1], r->lat[2], r->lat[3], t50,
           t95, r->load1);
    fflush(stdout);
}

static json_t *json_row(const level_result *r, const bench *b, long n_gen) {
    json_t *ttft = r->ttft[0] >= 0 ? json_pack("{s:f,s:f,s:f}", "p50", r->ttft[0], "p95",
                                               r->ttft[1], "p99", r->ttft[2])
                                   : json_null();
    return json_pack(
        "{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:{s:f,s:f,s:f,s:f},s:o,s:f}", "host",
        b->host, "path", b->path, "mode", r->mode, "concurrency", (json_int_t)r->conns,
        "max_tokens", (json_int_t)n_gen, "requests", (json_int_t)r->n_ok, "errors",
        (json_int_t)r->n_err, "tokens", (json_int_t)r->n_tokens, "duration_s", r->secs, "req_per_s",
        r->secs > 0 ? r->n_ok / r->secs : 0.0, "tokens_per_s",
        r->secs > 0 ? r->n_tokens / r->secs : 0.0, "latency_ms", "p50", r->lat[0], "p95", r->lat[1],
        "p99", r->lat[2], "max", r->lat[3], "ttft_ms", ttft, "loadavg_1m", r->load1);
}

static int parse_levels(const char *s, long *out, int *n) {
    *n = 0;
    for (const char *p = s;;) {
        char buf[32];
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= sizeof buf || *n == MAX_LEVELS) {
            ig_cli_fail("--parallel: '%s' is not a comma-separated list of numbers", s);
            return 0;
        }
        memcpy(buf, p, len);
        buf[len] = '\0';
        if (!ig_cli_parse_int("--parallel", buf, 1, MAX_CONNS, &out[*n])) return 0;
        (*n)++;
        if (p[len] == '\0') return 1;
        p += len + 1;
    }
}

int ig_cli_bench_http(int argc, char **argv) {
    enum {
        OPT_URL = 256,
        OPT_PARALLEL,
        OPT_DURATION,
        OPT_REQUESTS,
        OPT_MODE,
        OPT_PROMPT,
        OPT_TEMP,
        OPT_KEY
    };
    static const struct option opts[] = {
        {"url", required_argument, 0, OPT_URL},
        {"parallel", required_argument, 0, OPT_PARALLEL},
        {"duration", required_argument, 0, OPT_DURATION},
        {"requests", required_argument, 0, OPT_REQUESTS},
        {"mode", required_argument, 0, OPT_MODE},
        {"n-gen", required_argument, 0, 'n'},
        {"prompt", required_argument, 0, OPT_PROMPT},
        {"temperature", required_argument, 0, OPT_TEMP},
        {"api-key", required_argument, 0, OPT_KEY},
        {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    bench b = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    long levels[MAX_LEVELS] = {1, 4, 16, 64};
    int n_levels = 4;
    long n_requests = 0, n_gen = 8;
    double duration = 10, temperature = 0;
    const char *url = NULL, *prompt = "Once upon a time", *api_key = NULL;
    bool json = false, do_plain = true, do_stream = false;
    int rc = 2, c;
    json_t *rows = NULL;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":n:o:h", opts, NULL)) != -1) {
        switch (c) {
        case OPT_URL:
            url = optarg;
            break;
        case OPT_PARALLEL:
            if (!parse_levels(optarg, levels, &n_levels)) goto out;
            break;
        case OPT_DURATION:
            if (!ig_cli_parse_float("--duration", optarg, 0.01, 86400, &duration)) goto out;
            break;
        case OPT_REQUESTS:
            if (!ig_cli_parse_int("--requests", optarg, 1, 1L << 40, &n_requests)) goto out;
            break;
        case OPT_MODE:
            do_plain = !strcmp(optarg, "plain") || !strcmp(optarg, "both");
            do_stream = !strcmp(optarg, "stream") || !strcmp(optarg, "both");
            if (!do_plain && !do_stream) {
                ig_cli_fail("--mode: '%s' is not plain, stream or both", optarg);
                goto out;
            }
            break;
        case 'n':
            if (!ig_cli_parse_int("--n-gen", optarg, 1, 1 << 20, &n_gen)) goto out;
            break;
        case OPT_PROMPT:
            prompt = optarg;
            break;
        case OPT_TEMP:
            if (!ig_cli_parse_float("--temperature", optarg, 0, 2, &temperature)) goto out;
            break;
        case OPT_KEY:
            api_key = optarg;
            break;
        case 'o':
            if (strcmp(optarg, "json") && strcmp(optarg, "md")) {
                ig_cli_fail("--output: '%s' is not md or json", optarg);
                goto out;
            }
            json = !strcmp(optarg, "json");
            break;
        case 'h':
            fputs(HELP, stdout);
            rc = 0;
            goto out;
        case ':':
            ig_cli_fail("bench: %s needs a value", argv[optind - 1]);
            goto out;
        default:
            ig_cli_fail("bench: unknown option '%s' with --url (try --url x --help)",
                        argv[optind - 1]);
            goto out;
        }
    }
    if (optind < argc) {
        ig_cli_fail("bench: unexpected argument '%s'", argv[optind]);
        goto out;
    }
    if (!url) {
        ig_cli_fail("bench: --url is required for the HTTP load test");
        goto out;
    }
    if (!parse_url(url, &b)) goto out;
    rc = 1;
    rows = json_array();
    if (!rows) goto out;
    if (!json) md_header();
    bool any_error = false;
    for (int m = 0; m < 2; m++) {
        if ((m == 0 && !do_plain) || (m == 1 && !do_stream)) continue;
        b.is_stream = m == 1;
        if (!build_request(&b, prompt, n_gen, temperature, api_key)) {
            ig_cli_fail("bench: out of memory");
            goto out;
        }
        for (int l = 0; l < n_levels; l++) {
            level_result r = {.mode = b.is_stream ? "stream" : "plain"};
            if (!run_level(&b, levels[l], n_requests, duration, &r)) {
                ig_cli_fail("bench: out of memory");
                goto out;
            }
            any_error |= r.n_err > 0;
            if (json)
                json_array_append_new(rows, json_row(&r, &b, n_gen));
            else
                md_row(&r);
        }
    }
    if (json) {
        char *s = json_dumps(rows, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
        if (s) puts(s);
        free(s);
    }
    rc = any_error ? 1 : 0;
out:
    json_decref(rows);
    free(b.request);
    return rc;
}
