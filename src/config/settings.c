/*
 * settings.c: the settings table (the single source for flags, environment
 * variables, TOML keys, defaults and help), the value store, and the checks
 * every value passes whatever its source.
 *
 * Adding a setting is adding a row to SETTINGS below; `ignis config
 * --markdown > docs/CONFIG.md` then regenerates the documentation (a unit
 * test fails until it is).
 */
#include "config/config_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const EVICTION_CHOICES[] = {"lru", "lfu", "fifo", NULL};
static const char *const LOG_LEVEL_CHOICES[] = {"debug", "info", "warn", "error", NULL};
static const char *const LOG_FORMAT_CHOICES[] = {"json", "text", NULL};

#define S_STRING IG_SETTING_TYPE_STRING
#define S_PATH   IG_SETTING_TYPE_PATH
#define S_INT    IG_SETTING_TYPE_INT
#define S_FLOAT  IG_SETTING_TYPE_FLOAT
#define S_BOOL   IG_SETTING_TYPE_BOOL
#define S_ENUM   IG_SETTING_TYPE_ENUM
#define S_LIST   IG_SETTING_TYPE_LIST

/* Row helpers: section, key, default, flag, short flag, env, metavar, help. */
#define STR(sec, k, def, fl, sh, env, mv, help)                                                    \
    { sec, k, sec "." k, S_STRING, def, 0, 0, 0, 0, NULL, fl, sh, env, mv, help }
#define PATHS(sec, k, def, fl, sh, env, mv, help)                                                  \
    { sec, k, sec "." k, S_PATH, def, 0, 0, 0, 0, NULL, fl, sh, env, mv, help }
#define INT(sec, k, def, lo, hi, fl, sh, env, mv, help)                                            \
    { sec, k, sec "." k, S_INT, def, lo, hi, 0, 0, NULL, fl, sh, env, mv, help }
#define FLT(sec, k, def, lo, hi, fl, sh, env, mv, help)                                            \
    { sec, k, sec "." k, S_FLOAT, def, 0, 0, lo, hi, NULL, fl, sh, env, mv, help }
#define BOOL(sec, k, def, fl, env, help)                                                           \
    { sec, k, sec "." k, S_BOOL, def, 0, 0, 0, 0, NULL, fl, 0, env, NULL, help }
#define ENUM(sec, k, def, ch, fl, env, mv, help)                                                   \
    { sec, k, sec "." k, S_ENUM, def, 0, 0, 0, 0, ch, fl, 0, env, mv, help }
#define LIST(sec, k, fl, env, mv, help)                                                            \
    { sec, k, sec "." k, S_LIST, "", 0, 0, 0, 0, NULL, fl, 0, env, mv, help }

static const ig_setting SETTINGS[] = {
    /* [server] */
    STR("server", "host", "127.0.0.1", "host", 0, "IGNIS_HOST", "ADDR",
        "Address to listen on (an IPv4 or IPv6 address or a host name; 0.0.0.0 for every "
        "interface)."),
    INT("server", "port", "8080", 0, 65535, "port", 0, "IGNIS_PORT", "PORT",
        "TCP port to listen on; 0 picks a free port (the server prints the one it got)."),
    LIST("server", "api_keys", "api-key", "IGNIS_API_KEYS", "KEY",
         "API keys accepted as `Authorization: Bearer KEY`; empty = no key needed. The flag "
         "repeats; the variable is comma-separated. /health and /ping stay open."),
    PATHS("server", "api_key_file", "", "api-key-file", 0, "IGNIS_API_KEY_FILE", "FILE",
          "File with more API keys, one per line (blank lines and lines starting with # are "
          "skipped)."),
    INT("server", "max_body_bytes", "8388608", 1024, 1073741824, "max-body-bytes", 0,
        "IGNIS_MAX_BODY_BYTES", "BYTES", "Largest request body accepted; larger requests get 413."),
    INT("server", "max_connections", "256", 1, 65536, "max-connections", 0, "IGNIS_MAX_CONNECTIONS",
        "N", "Most client connections open at once; more are refused with 503."),
    INT("server", "request_timeout_s", "600", 0, 86400, "request-timeout", 0,
        "IGNIS_REQUEST_TIMEOUT_S", "SECONDS",
        "A request still running after this long ends (finish reason `timeout`); 0 = never."),
    INT("server", "drain_timeout_s", "30", 0, 3600, "drain-timeout", 0, "IGNIS_DRAIN_TIMEOUT_S",
        "SECONDS",
        "On SIGINT/SIGTERM, how long in-flight requests may run before they are cancelled."),
    INT("server", "max_inflight", "256", 1, 1048576, "max-inflight", 0, "IGNIS_MAX_INFLIGHT", "N",
        "Most generation requests in progress (queued or running) at once; more get 503 with "
        "Retry-After."),
    INT("server", "idle_timeout_s", "30", 0, 86400, "idle-timeout", 0, "IGNIS_IDLE_TIMEOUT_S",
        "SECONDS",
        "Close a connection idle (or sending a request too slowly) for this long; 0 = never."),
    INT("server", "http_threads", "1", 1, 64, "http-threads", 0, "IGNIS_HTTP_THREADS", "N",
        "HTTP event-loop threads (libmicrohttpd, epoll)."),
    INT("server", "max_jobs", "1024", 1, 1048576, "max-jobs", 0, "IGNIS_MAX_JOBS", "N",
        "Background jobs (POST /inference) kept for GET /results; the oldest finished ones are "
        "dropped first."),
    LIST("server", "cors_origins", "cors-origin", "IGNIS_CORS_ORIGINS", "ORIGIN",
         "Origins allowed by CORS (`*` for any); empty = no CORS headers. The flag repeats; the "
         "variable is comma-separated."),

    /* [model] */
    PATHS("model", "path", "", "model", 'm', "IGNIS_MODEL_PATH", "FILE",
          "GGUF model file to load."),
    STR("model", "name", "", "alias", 0, "IGNIS_MODEL_NAME", "NAME",
        "The model's id in the API; empty = the file name without `.gguf`."),
    INT("model", "context", "0", 0, 16777216, "context", 'c', "IGNIS_CONTEXT", "TOKENS",
        "Context length per sequence, in tokens; 0 = the model's training context."),
    INT("model", "threads", "0", 0, 1024, "threads", 't', "IGNIS_THREADS", "N",
        "Threads for the model's kernels; 0 = one per CPU core."),
    STR("model", "chat_template", "", "chat-template", 0, "IGNIS_CHAT_TEMPLATE", "NAME",
        "Chat template: empty = the model's own (GGUF `tokenizer.chat_template`), or a "
        "built-in one by name: chatml, llama2, llama3, mistral, zephyr."),

    /* [cache] */
    INT("cache", "kv_cache_mb", "256", 1, 1048576, "kv-cache-mb", 0, "IGNIS_KV_CACHE_MB", "MIB",
        "Memory for the paged KV cache, in MiB."),
    INT("cache", "block_size", "16", 1, 256, "block-size", 0, "IGNIS_BLOCK_SIZE", "TOKENS",
        "Tokens per KV cache block (the unit of allocation and of prefix sharing)."),
    ENUM("cache", "eviction_policy", "lru", EVICTION_CHOICES, "eviction-policy",
         "IGNIS_EVICTION_POLICY", "POLICY",
         "Which cached prefix blocks are reused first when memory is short: least recently "
         "used, least frequently used, or oldest."),
    BOOL("cache", "prefix_caching", "true", "prefix-caching", "IGNIS_PREFIX_CACHING",
         "Reuse the KV blocks of prompt prefixes seen before."),
    INT("cache", "response_cache", "0", 0, 1048576, "response-cache", 0, "IGNIS_RESPONSE_CACHE",
        "N",
        "Finished deterministic responses (temperature 0, ended by a stop or the length limit) "
        "kept to answer an identical later request at once without computing it (same prompt "
        "tokens, sampling parameters, max_tokens, stop strings, logprobs); the least recently "
        "used is dropped first. 0 = off."),

    /* [scheduler] */
    INT("scheduler", "max_batch_tokens", "512", 1, 1048576, "max-batch-tokens", 0,
        "IGNIS_MAX_BATCH_TOKENS", "TOKENS",
        "Most tokens (prompt and generated) run in one engine step."),
    INT("scheduler", "max_seqs", "64", 1, 65536, "max-seqs", 0, "IGNIS_MAX_SEQS", "N",
        "Most sequences run in one engine step."),
    INT("scheduler", "max_queue", "256", 1, 1048576, "max-queue", 0, "IGNIS_MAX_QUEUE", "N",
        "Most requests waiting to start; beyond it requests get 503 with Retry-After."),
    INT("scheduler", "default_max_tokens", "0", 0, 16777216, "default-max-tokens", 0,
        "IGNIS_DEFAULT_MAX_TOKENS", "TOKENS",
        "Tokens to generate when a request gives no max_tokens; 0 = until the context is full."),
    BOOL("scheduler", "adaptive_budget", "false", "adaptive-budget", "IGNIS_ADAPTIVE_BUDGET",
         "Adjust the step's token budget to keep inter-token latency near target_itl_ms."),
    FLT("scheduler", "target_itl_ms", "50", 1, 10000, "target-itl-ms", 0, "IGNIS_TARGET_ITL_MS",
        "MS", "Inter-token latency the adaptive budget aims for, in milliseconds."),

    /* [log] */
    ENUM("log", "level", "info", LOG_LEVEL_CHOICES, "log-level", "IGNIS_LOG_LEVEL", "LEVEL",
         "Least severe log messages written."),
    ENUM("log", "format", "json", LOG_FORMAT_CHOICES, "log-format", "IGNIS_LOG_FORMAT", "FORMAT",
         "Log lines as JSON objects (one per line) or as plain text."),
    PATHS("log", "file", "", "log-file", 0, "IGNIS_LOG_FILE", "FILE",
          "Append logs to this file; empty = standard error."),
};

#define N_SETTINGS (sizeof SETTINGS / sizeof SETTINGS[0])

static const char *const OTHER_ENV[] = {
    "IGNIS_CONFIG",
    "the configuration file to read (like --config)",
    "IGNIS_MODEL",
    "default model for `ignis run`, `info`, `bench` and the tests",
    "IGNIS_TEST_DATA",
    "directory of the test data (models/, vocab/, reference/)",
    "IGNIS_CPU",
    "caps the CPU features the kernels use (testing)",
    "IGNIS_REPACK",
    "0: keep weights in the file's mapping and layout instead of moving (repacking) them at load "
    "(comparing)",
    "IGNIS_BIN",
    "the `ignis` program the integration tests run",
    NULL,
};

const ig_setting *ig_settings(void) {
    return SETTINGS;
}
size_t ig_settings_count(void) {
    return N_SETTINGS;
}
const char *const *ig_config_other_env(void) {
    return OTHER_ENV;
}

int ig__setting_index(const char *name) {
    if (!name) return -1;
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (!strcmp(SETTINGS[i].name, name)) return (int)i;
    return -1;
}

const ig_setting *ig_setting_find(const char *name) {
    int i = ig__setting_index(name);
    return i < 0 ? NULL : &SETTINGS[i];
}

const char *ig_config_src_name(ig_config_src src) {
    switch (src) {
    case IG_CONFIG_SRC_DEFAULT:
        return "default";
    case IG_CONFIG_SRC_FILE:
        return "file";
    case IG_CONFIG_SRC_ENV:
        return "env";
    case IG_CONFIG_SRC_FLAG:
        return "flag";
    }
    return "?";
}

char *ig__config_strdup(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* ---- values --------------------------------------------------------------- */

static void value_clear(ig__config_value *v) {
    free(v->s);
    for (size_t i = 0; i < v->n_list; i++) free(v->list[i]);
    free(v->list);
    free(v->origin);
    memset(v, 0, sizeof *v);
}

/* A text that is safe to quote in a message: at most 60 bytes of it. */
static void shown(const char *text, char out[80]) {
    size_t n = strlen(text);
    snprintf(out, 80, "%.*s%s", (int)(n > 60 ? 60 : n), text, n > 60 ? "..." : "");
}

static ig_status parse_int(const ig_setting *s, const char *text, const char *prefix, int64_t *out,
                           ig_error *err) {
    char sh[80];
    shown(text, sh);
    const char *t = text;
    if (*t == '+' || *t == '-') t++;
    if (!isdigit((unsigned char)*t))
        return ig_errorf(err, IG_ETYPE, "%s: '%s' is not an integer", prefix, sh);
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*end != '\0') return ig_errorf(err, IG_ETYPE, "%s: '%s' is not an integer", prefix, sh);
    if (errno == ERANGE || v < s->min || v > s->max)
        return ig_errorf(err, IG_ERANGE, "%s: %s is out of range [%lld, %lld]", prefix, sh,
                         (long long)s->min, (long long)s->max);
    *out = v;
    return IG_OK;
}

static ig_status parse_float(const ig_setting *s, const char *text, const char *prefix, double *out,
                             ig_error *err) {
    char sh[80];
    shown(text, sh);
    const char *t = text;
    if (*t == '+' || *t == '-') t++;
    if (!isdigit((unsigned char)*t) && !(*t == '.' && isdigit((unsigned char)t[1])))
        return ig_errorf(err, IG_ETYPE, "%s: '%s' is not a number", prefix, sh);
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (*end != '\0' || strchr(text, 'x') || strchr(text, 'X'))
        return ig_errorf(err, IG_ETYPE, "%s: '%s' is not a number", prefix, sh);
    if (errno == ERANGE || !isfinite(v) || v < s->fmin || v > s->fmax)
        return ig_errorf(err, IG_ERANGE, "%s: %s is out of range [%g, %g]", prefix, sh, s->fmin,
                         s->fmax);
    *out = v;
    return IG_OK;
}

static ig_status parse_bool(const char *text, const char *prefix, bool *out, ig_error *err) {
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (!strcasecmp(text, yes[i])) {
            *out = true;
            return IG_OK;
        }
        if (!strcasecmp(text, no[i])) {
            *out = false;
            return IG_OK;
        }
    }
    char sh[80];
    shown(text, sh);
    return ig_errorf(err, IG_ETYPE, "%s: '%s' is not a boolean (true or false)", prefix, sh);
}

static ig_status parse_enum(const ig_setting *s, const char *text, const char *prefix, int *out,
                            ig_error *err) {
    char all[200] = "";
    size_t o = 0;
    for (int i = 0; s->choices[i]; i++) {
        if (!strcasecmp(text, s->choices[i])) {
            *out = i;
            return IG_OK;
        }
        o += (size_t)snprintf(all + o, o < sizeof all ? sizeof all - o : 0, "%s%s", i ? ", " : "",
                              s->choices[i]);
        if (o >= sizeof all) o = sizeof all - 1;
    }
    char sh[80];
    shown(text, sh);
    return ig_errorf(err, IG_EINVAL, "%s: '%s' is not one of %s", prefix, sh, all);
}

/* `~/x` → $HOME/x; a relative path with a base directory → base/path. */
static ig_status resolve_path(const char *text, const char *base_dir, const char *prefix,
                              char **out, ig_error *err) {
    const char *home = getenv("HOME");
    char *p = NULL;
    if (text[0] == '~' && (text[1] == '/' || text[1] == '\0')) {
        if (!home || !*home)
            return ig_errorf(err, IG_EINVAL, "%s: cannot expand '~' in '%s': $HOME is not set",
                             prefix, text);
        if (asprintf(&p, "%s%s", home, text + 1) < 0) p = NULL;
    } else if (text[0] != '/' && text[0] != '\0' && base_dir && *base_dir &&
               strcmp(base_dir, ".")) {
        if (asprintf(&p, "%s/%s", base_dir, text) < 0) p = NULL;
    } else {
        p = ig__config_strdup(text);
    }
    if (!p) return ig_errorf(err, IG_ENOMEM, "%s: out of memory", prefix);
    *out = p;
    return IG_OK;
}

/* Split "a, b,,c" into trimmed non-empty items. */
static ig_status split_list(const char *text, char ***out, size_t *n_out) {
    size_t cap = 1;
    for (const char *c = text; *c; c++) cap += *c == ',';
    char **items = calloc(cap, sizeof *items);
    if (!items) return IG_ENOMEM;
    size_t n = 0;
    const char *p = text;
    for (;;) {
        const char *e = strchr(p, ',');
        if (!e) e = p + strlen(p);
        const char *a = p, *b = e;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        if (b > a) {
            items[n] = strndup(a, (size_t)(b - a));
            if (!items[n]) {
                for (size_t i = 0; i < n; i++) free(items[i]);
                free(items);
                return IG_ENOMEM;
            }
            n++;
        }
        if (!*e) break;
        p = e + 1;
    }
    *out = items;
    *n_out = n;
    return IG_OK;
}

/* Replace value idx with `nv` (whose strings move in), recording its source. */
static ig_status install(ig_config *cfg, size_t idx, ig__config_value *nv, ig_config_src src,
                         const char *origin, ig_error *err) {
    nv->src = src;
    nv->origin = ig__config_strdup(origin ? origin : "");
    if (!nv->origin) {
        value_clear(nv);
        return ig_errorf(err, IG_ENOMEM, "out of memory");
    }
    value_clear(&cfg->vals[idx]);
    cfg->vals[idx] = *nv;
    return IG_OK;
}

ig_status ig__config_set_text(ig_config *cfg, size_t idx, const char *text, ig_config_src src,
                              const char *origin, const char *prefix, const char *base_dir,
                              ig_error *err) {
    IG_ASSERT(cfg && idx < N_SETTINGS && text);
    const ig_setting *s = &SETTINGS[idx];
    ig__config_value nv = {0};
    ig_status st = IG_OK;
    switch (s->type) {
    case IG_SETTING_TYPE_INT:
        st = parse_int(s, text, prefix, &nv.i, err);
        break;
    case IG_SETTING_TYPE_FLOAT:
        st = parse_float(s, text, prefix, &nv.f, err);
        break;
    case IG_SETTING_TYPE_BOOL:
        st = parse_bool(text, prefix, &nv.b, err);
        break;
    case IG_SETTING_TYPE_ENUM:
        st = parse_enum(s, text, prefix, &nv.e, err);
        if (st == IG_OK && !(nv.s = ig__config_strdup(s->choices[nv.e])))
            st = ig_errorf(err, IG_ENOMEM, "out of memory");
        break;
    case IG_SETTING_TYPE_STRING:
        if (!(nv.s = ig__config_strdup(text))) st = ig_errorf(err, IG_ENOMEM, "out of memory");
        break;
    case IG_SETTING_TYPE_PATH:
        st = resolve_path(text, base_dir, prefix, &nv.s, err);
        break;
    case IG_SETTING_TYPE_LIST:
        st = split_list(text, &nv.list, &nv.n_list);
        if (st != IG_OK) ig_errorf(err, st, "out of memory");
        break;
    }
    if (st != IG_OK) {
        value_clear(&nv);
        return st;
    }
    return install(cfg, idx, &nv, src, origin, err);
}

ig_status ig__config_set_list(ig_config *cfg, size_t idx, const char *const *items, size_t n,
                              ig_config_src src, const char *origin, ig_error *err) {
    IG_ASSERT(cfg && idx < N_SETTINGS && SETTINGS[idx].type == IG_SETTING_TYPE_LIST);
    ig__config_value nv = {0};
    if (n) {
        nv.list = calloc(n, sizeof *nv.list);
        if (!nv.list) return ig_errorf(err, IG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        nv.list[i] = ig__config_strdup(items[i]);
        if (!nv.list[i]) {
            nv.n_list = i;
            value_clear(&nv);
            return ig_errorf(err, IG_ENOMEM, "out of memory");
        }
    }
    nv.n_list = n;
    return install(cfg, idx, &nv, src, origin, err);
}

ig_status ig_config_set(ig_config *cfg, const char *name, const char *text, ig_config_src src,
                        const char *origin, ig_error *err) {
    int idx = ig__setting_index(name);
    if (idx < 0) return ig_errorf(err, IG_ENOTFOUND, "no setting named '%s'", name ? name : "");
    if (!text) return ig_errorf(err, IG_EINVAL, "%s: no value", name);
    return ig__config_set_text(cfg, (size_t)idx, text, src, origin, origin ? origin : name, NULL,
                               err);
}

ig_status ig__config_warn(ig_config *cfg, const char *fmt, ...) {
    char **w = realloc(cfg->warnings, (cfg->n_warnings + 1) * sizeof *w);
    if (!w) return IG_ENOMEM;
    cfg->warnings = w;
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&w[cfg->n_warnings], fmt, ap);
    va_end(ap);
    if (r < 0) return IG_ENOMEM;
    cfg->n_warnings++;
    return IG_OK;
}

/* Edit distance counting a swap of two neighbours as one edit (optimal
 * string alignment), case-insensitive; words here are short. */
static size_t edit_distance(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    if (na > 63 || nb > 63) return 64;
    size_t d[64][64];
    for (size_t i = 0; i <= na; i++) d[i][0] = i;
    for (size_t j = 0; j <= nb; j++) d[0][j] = j;
    for (size_t i = 1; i <= na; i++) {
        for (size_t j = 1; j <= nb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            size_t best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[na][nb];
}

const char *ig__config_suggest(const char *word, const char *const *candidates, size_t n) {
    const char *best = NULL;
    size_t best_d = 3, len = strlen(word);
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, candidates[i]);
        if (d < best_d && d * 2 <= len) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

/* ---- the config ------------------------------------------------------------ */

ig_config *ig_config_new_defaults(void) {
    ig_config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) return NULL;
    cfg->vals = calloc(N_SETTINGS, sizeof *cfg->vals);
    if (!cfg->vals) goto fail;
    for (size_t i = 0; i < N_SETTINGS; i++) {
        /* A default that fails its own checks is a bug in the table. */
        ig_error e = {0};
        ig_status st = ig__config_set_text(cfg, i, SETTINGS[i].def, IG_CONFIG_SRC_DEFAULT, "",
                                           SETTINGS[i].name, NULL, &e);
        if (st == IG_ENOMEM) goto fail;
        IG_ASSERT(st == IG_OK);
    }
    return cfg;
fail:
    ig_config_free(cfg);
    return NULL;
}

void ig_config_free(ig_config *cfg) {
    if (!cfg) return;
    if (cfg->vals)
        for (size_t i = 0; i < N_SETTINGS; i++) value_clear(&cfg->vals[i]);
    free(cfg->vals);
    for (size_t i = 0; i < cfg->n_warnings; i++) free(cfg->warnings[i]);
    free(cfg->warnings);
    free(cfg->file);
    free(cfg);
}

static const ig__config_value *get(const ig_config *cfg, const char *name, ig_setting_type want,
                                   ig_setting_type also) {
    int idx = ig__setting_index(name);
    if (idx < 0 || (SETTINGS[idx].type != want && SETTINGS[idx].type != also)) {
        fprintf(stderr, "ignis: internal error: setting '%s' asked for as the wrong type\n",
                name ? name : "(null)");
        IG_ASSERT(!"setting asked for by a wrong name or type");
    }
    return &cfg->vals[idx];
}

int64_t ig_config_get_int(const ig_config *cfg, const char *name) {
    return get(cfg, name, IG_SETTING_TYPE_INT, IG_SETTING_TYPE_INT)->i;
}

double ig_config_get_float(const ig_config *cfg, const char *name) {
    return get(cfg, name, IG_SETTING_TYPE_FLOAT, IG_SETTING_TYPE_FLOAT)->f;
}

bool ig_config_get_bool(const ig_config *cfg, const char *name) {
    return get(cfg, name, IG_SETTING_TYPE_BOOL, IG_SETTING_TYPE_BOOL)->b;
}

const char *ig_config_get_string(const ig_config *cfg, const char *name) {
    int idx = ig__setting_index(name);
    if (idx >= 0 && SETTINGS[idx].type == IG_SETTING_TYPE_ENUM) return cfg->vals[idx].s;
    return get(cfg, name, IG_SETTING_TYPE_STRING, IG_SETTING_TYPE_PATH)->s;
}

int ig_config_get_enum(const ig_config *cfg, const char *name) {
    return get(cfg, name, IG_SETTING_TYPE_ENUM, IG_SETTING_TYPE_ENUM)->e;
}

const char *const *ig_config_get_list(const ig_config *cfg, const char *name, size_t *n) {
    const ig__config_value *v = get(cfg, name, IG_SETTING_TYPE_LIST, IG_SETTING_TYPE_LIST);
    if (n) *n = v->n_list;
    return (const char *const *)v->list;
}

ig_config_src ig_config_source(const ig_config *cfg, const char *name) {
    int idx = ig__setting_index(name);
    IG_ASSERT(idx >= 0);
    return cfg->vals[idx].src;
}

const char *ig_config_origin(const ig_config *cfg, const char *name) {
    int idx = ig__setting_index(name);
    IG_ASSERT(idx >= 0);
    return cfg->vals[idx].origin;
}

const char *ig_config_file(const ig_config *cfg) {
    return cfg->file;
}

size_t ig_config_n_warnings(const ig_config *cfg) {
    return cfg->n_warnings;
}

const char *ig_config_warning(const ig_config *cfg, size_t i) {
    return i < cfg->n_warnings ? cfg->warnings[i] : NULL;
}
