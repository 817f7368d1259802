/*
 * cmd_serve.c: `ignis serve`: load a model and serve the OpenAI-compatible
 * HTTP API (src/server) until SIGINT or SIGTERM, then shut down gracefully
 * (stop accepting, drain in-flight requests within drain_timeout_s, exit 0).
 *
 * Options come from the settings table (src/config): flags, IGNIS_*
 * variables and `--config ignis.toml`, with flag > env > file > default.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/settings.h"
#include "model/model.h"
#include "server/log.h"
#include "server/server.h"

static const char HELP_HEAD[] =
    "usage: ignis serve [-m MODEL] [--config ignis.toml] [options]\n"
    "\n"
    "Serve the OpenAI-compatible HTTP API (docs/API.md) until SIGINT/SIGTERM.\n"
    "Every option is also an IGNIS_* variable and a TOML key (docs/CONFIG.md);\n"
    "precedence: flag > environment > config file > default.\n"
    "  -h, --help\n"
    "        this help\n";

enum { OPT_HELP = 1 };

static ig_status on_option(void *user, int id, const char *arg, ig_error *err) {
    (void)arg;
    (void)err;
    if (id == OPT_HELP) *(bool *)user = true;
    return IG_OK;
}

static bool add_key(char ***keys, size_t *n, const char *k) {
    char **nk = realloc(*keys, (*n + 1) * sizeof *nk);
    if (!nk) return false;
    *keys = nk;
    nk[*n] = strdup(k);
    if (!nk[*n]) return false;
    (*n)++;
    return true;
}

static bool read_key_file(const char *path, char ***keys, size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) {
        ig_cli_fail("serve: api_key_file: cannot open '%s'", path);
        return false;
    }
    char line[1024];
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        size_t l = strcspn(line, "\r\n");
        line[l] = '\0';
        if (l && line[0] != '#') ok = add_key(keys, n, line);
    }
    fclose(f);
    return ok;
}

int ig_cli_serve(int argc, char **argv) {
    static const ig_config_option extra[] = {{"help", 'h', false, OPT_HELP}};
    char **keys = NULL;
    size_t n_keys = 0;
    int rc = 2, first = argc;
    bool want_help = false;
    ig_model *m = NULL;
    ig_server *srv = NULL;
    ig_error err = {0};
    ig_config *cfg = ig_config_new_defaults();
    if (!cfg) goto out;
    if (ig_config_resolve_ex(cfg, argc, argv, NULL, extra, 1, on_option, &want_help, &first,
                             &err) != IG_OK) {
        ig_cli_fail("serve: %s", err.message);
        goto out;
    }
    if (want_help) {
        char *h = ig_config_help();
        fputs(HELP_HEAD, stdout);
        if (h) fputs(h, stdout);
        free(h);
        rc = 0;
        goto out;
    }
    if (first < argc) {
        ig_cli_fail("serve: unexpected argument '%s' (try --help)", argv[first]);
        goto out;
    }
    for (size_t i = 0; i < ig_config_n_warnings(cfg); i++)
        ig_log_event(IG_SERVER_LOG_WARN, "config", "%s", ig_config_warning(cfg, i));

    ig_server_config sc = ig_server_config_default();
    const char *path = ig_config_get_string(cfg, "model.path");
    if (!path || !*path) path = ig_cli_default_model();
    sc.model_path = path;
    sc.model_id = ig_config_get_string(cfg, "model.name");
    sc.chat_template = ig_config_get_string(cfg, "model.chat_template");
    sc.host = ig_config_get_string(cfg, "server.host");
    sc.port = (int)ig_config_get_int(cfg, "server.port");
    size_t nk = 0;
    const char *const *kl = ig_config_get_list(cfg, "server.api_keys", &nk);
    for (size_t i = 0; i < nk; i++)
        if (!add_key(&keys, &n_keys, kl[i])) goto out;
    const char *kf = ig_config_get_string(cfg, "server.api_key_file");
    if (kf && *kf && !read_key_file(kf, &keys, &n_keys)) goto out;
    sc.cors_origins = ig_config_get_list(cfg, "server.cors_origins", &sc.n_cors_origins);
    sc.api_keys = (const char *const *)keys;
    sc.n_api_keys = n_keys;
    sc.max_body_bytes = (size_t)ig_config_get_int(cfg, "server.max_body_bytes");
    sc.max_connections = (int)ig_config_get_int(cfg, "server.max_connections");
    sc.max_inflight = (int)ig_config_get_int(cfg, "server.max_inflight");
    sc.idle_timeout_s = (int)ig_config_get_int(cfg, "server.idle_timeout_s");
    sc.http_threads = (int)ig_config_get_int(cfg, "server.http_threads");
    sc.max_jobs = (int)ig_config_get_int(cfg, "server.max_jobs");
    sc.request_timeout_ms = ig_config_get_int(cfg, "server.request_timeout_s") * 1000;
    sc.drain_ms = ig_config_get_int(cfg, "server.drain_timeout_s") * 1000;
    sc.default_max_tokens = (int32_t)ig_config_get_int(cfg, "scheduler.default_max_tokens");
    const char *lvl = ig_config_get_string(cfg, "log.level");
    sc.log_level = !strcmp(lvl, "debug")   ? IG_SERVER_LOG_DEBUG
                   : !strcmp(lvl, "warn")  ? IG_SERVER_LOG_WARN
                   : !strcmp(lvl, "error") ? IG_SERVER_LOG_ERROR
                                           : IG_SERVER_LOG_INFO;
    sc.log_text = !strcmp(ig_config_get_string(cfg, "log.format"), "text");
    sc.log_file = ig_config_get_string(cfg, "log.file");
    sc.engine.n_ctx = (int32_t)ig_config_get_int(cfg, "model.context");
    sc.engine.n_threads = (int)ig_config_get_int(cfg, "model.threads");
    sc.engine.kv_cache_mb = (size_t)ig_config_get_int(cfg, "cache.kv_cache_mb");
    sc.engine.block_size = (int32_t)ig_config_get_int(cfg, "cache.block_size");
    sc.engine.eviction = (ig_engine_eviction)ig_config_get_enum(cfg, "cache.eviction_policy");
    sc.engine.prefix_caching = ig_config_get_bool(cfg, "cache.prefix_caching");
    sc.engine.response_cache = (int32_t)ig_config_get_int(cfg, "cache.response_cache");
    sc.engine.max_batch_tokens = (int32_t)ig_config_get_int(cfg, "scheduler.max_batch_tokens");
    sc.engine.max_seqs = (int32_t)ig_config_get_int(cfg, "scheduler.max_seqs");
    sc.engine.max_queue = (int32_t)ig_config_get_int(cfg, "scheduler.max_queue");
    if (ig_config_get_bool(cfg, "scheduler.adaptive_budget"))
        sc.engine.target_step_ms = ig_config_get_float(cfg, "scheduler.target_itl_ms");

    rc = 1;
    if (ig_model_load(path, &m, &err) != IG_OK) {
        ig_cli_fail("serve: %s", err.message);
        goto out;
    }
    /* Signals are taken by the main thread only (sigwait); every server
     * thread inherits the blocked mask. */
    ig_server_block_signals();
    if (ig_server_new(&sc, m, &srv, &err) != IG_OK) {
        ig_cli_fail("serve: %s", err.message);
        goto out;
    }
    ig_log_event(IG_SERVER_LOG_INFO, "listening", "http://%s:%d model=%s api_keys=%zu", sc.host,
                 ig_server_port(srv), path, n_keys);
    printf("ignis: serving %s on http://%s:%d\n", path, sc.host, ig_server_port(srv));
    fflush(stdout);
    int sig = ig_server_wait_signal();
    ig_log_event(IG_SERVER_LOG_INFO, "shutdown", "signal %d: draining (up to %lld ms)", sig,
                 (long long)sc.drain_ms);
    ig_server_shutdown(srv);
    ig_log_event(IG_SERVER_LOG_INFO, "stopped", "bye");
    rc = 0;
out:
    ig_server_free(srv);
    ig_model_free(m);
    for (size_t i = 0; i < n_keys; i++) free(keys[i]);
    free(keys);
    ig_config_free(cfg);
    return rc;
}
