/*
 * cmd_serve.c: `ignis serve`: load a model and serve the OpenAI-compatible
 * HTTP API (src/server) until SIGINT or SIGTERM, then shut down gracefully
 * (stop accepting, drain in-flight requests within --drain-timeout, exit 0).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "model/model.h"
#include "server/log.h"
#include "server/server.h"

static const char HELP[] =
    "usage: ignis serve [-m MODEL] [options]\n"
    "\n"
    "Serve the OpenAI-compatible HTTP API (see docs/API.md) until SIGINT/SIGTERM.\n"
    "  -m, --model MODEL        GGUF model file (default: $IGNIS_MODEL or stories260K)\n"
    "      --alias NAME         the model's id in the API (default: file name without .gguf)\n"
    "      --host HOST          address to listen on (default 127.0.0.1)\n"
    "      --port N             port (default 8080; 0: any free port, printed at start)\n"
    "      --api-key KEY        accept this bearer key (repeatable; default: no auth)\n"
    "      --api-key-file FILE  accept every non-empty line of FILE as a key\n"
    "      --chat-template NAME chatml, llama2, llama3, mistral, zephyr, or a Jinja file\n"
    "                           (default: the model's tokenizer.chat_template)\n"
    "  -c, --ctx-size N         context length per sequence (default: the model's)\n"
    "  -t, --threads N          kernel threads (default: all cores)\n"
    "      --kv-cache-mb N      KV cache size (default 256)\n"
    "      --max-seqs N         sequences per step (default 64)\n"
    "      --max-queue N        waiting requests before 503 (default 256)\n"
    "      --max-inflight N     requests in progress before 503 (default 256)\n"
    "      --max-connections N  concurrent connections (default 512)\n"
    "      --max-body N         request body limit in bytes (default 8388608)\n"
    "      --idle-timeout S     close idle or half-sent connections after S s (default 30)\n"
    "      --request-timeout MS end a generation after MS ms (default 0: none)\n"
    "      --drain-timeout MS   graceful shutdown budget (default 10000)\n"
    "      --http-threads N     HTTP event threads (default 1)\n"
    "      --log-level LEVEL    off, error, warn, info (default), debug\n"
    "  -h, --help               this help\n";

static char **read_key_file(const char *path, char **keys, size_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) {
        ig_cli_fail("serve: --api-key-file: cannot open '%s'", path);
        return NULL;
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        size_t l = strcspn(line, "\r\n");
        line[l] = '\0';
        if (!l || line[0] == '#') continue;
        char **nk = realloc(keys, (*n + 1) * sizeof *nk);
        if (!nk) break;
        keys = nk;
        keys[(*n)++] = strdup(line);
    }
    fclose(f);
    return keys;
}

int ig_cli_serve(int argc, char **argv) {
    enum {
        OPT_ALIAS = 256,
        OPT_HOST,
        OPT_PORT,
        OPT_KEY,
        OPT_KEY_FILE,
        OPT_TMPL,
        OPT_KV,
        OPT_SEQS,
        OPT_QUEUE,
        OPT_INFLIGHT,
        OPT_CONNS,
        OPT_BODY,
        OPT_IDLE,
        OPT_REQ_TIMEOUT,
        OPT_DRAIN,
        OPT_HTTP_THREADS,
        OPT_LOG
    };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},
        {"alias", required_argument, 0, OPT_ALIAS},
        {"host", required_argument, 0, OPT_HOST},
        {"port", required_argument, 0, OPT_PORT},
        {"api-key", required_argument, 0, OPT_KEY},
        {"api-key-file", required_argument, 0, OPT_KEY_FILE},
        {"chat-template", required_argument, 0, OPT_TMPL},
        {"ctx-size", required_argument, 0, 'c'},
        {"threads", required_argument, 0, 't'},
        {"kv-cache-mb", required_argument, 0, OPT_KV},
        {"max-seqs", required_argument, 0, OPT_SEQS},
        {"max-queue", required_argument, 0, OPT_QUEUE},
        {"max-inflight", required_argument, 0, OPT_INFLIGHT},
        {"max-connections", required_argument, 0, OPT_CONNS},
        {"max-body", required_argument, 0, OPT_BODY},
        {"idle-timeout", required_argument, 0, OPT_IDLE},
        {"request-timeout", required_argument, 0, OPT_REQ_TIMEOUT},
        {"drain-timeout", required_argument, 0, OPT_DRAIN},
        {"http-threads", required_argument, 0, OPT_HTTP_THREADS},
        {"log-level", required_argument, 0, OPT_LOG},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    ig_server_config cfg = ig_server_config_default();
    const char *path = NULL;
    char **keys = NULL;
    size_t n_keys = 0;
    long lv;
    int c, rc = 2;
    ig_model *m = NULL;
    ig_server *srv = NULL;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":m:c:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            path = optarg;
            break;
        case OPT_ALIAS:
            cfg.model_id = optarg;
            break;
        case OPT_HOST:
            cfg.host = optarg;
            break;
        case OPT_PORT:
            if (!ig_cli_parse_int("--port", optarg, 0, 65535, &lv)) goto out;
            cfg.port = (int)lv;
            break;
        case OPT_KEY: {
            char **nk = realloc(keys, (n_keys + 1) * sizeof *nk);
            if (!nk) goto out;
            keys = nk;
            keys[n_keys++] = strdup(optarg);
            break;
        }
        case OPT_KEY_FILE:
            keys = read_key_file(optarg, keys, &n_keys);
            if (!keys) goto out;
            break;
        case OPT_TMPL:
            cfg.chat_template = optarg;
            break;
        case 'c':
            if (!ig_cli_parse_int("--ctx-size", optarg, 0, 1 << 24, &lv)) goto out;
            cfg.engine.n_ctx = (int32_t)lv;
            break;
        case 't':
            if (!ig_cli_parse_int("--threads", optarg, 1, 512, &lv)) goto out;
            cfg.engine.n_threads = (int)lv;
            break;
        case OPT_KV:
            if (!ig_cli_parse_int("--kv-cache-mb", optarg, 1, 1 << 22, &lv)) goto out;
            cfg.engine.kv_cache_mb = (size_t)lv;
            break;
        case OPT_SEQS:
            if (!ig_cli_parse_int("--max-seqs", optarg, 1, 4096, &lv)) goto out;
            cfg.engine.max_seqs = (int32_t)lv;
            break;
        case OPT_QUEUE:
            if (!ig_cli_parse_int("--max-queue", optarg, 1, 1 << 20, &lv)) goto out;
            cfg.engine.max_queue = (int32_t)lv;
            break;
        case OPT_INFLIGHT:
            if (!ig_cli_parse_int("--max-inflight", optarg, 1, 1 << 20, &lv)) goto out;
            cfg.max_inflight = (int)lv;
            break;
        case OPT_CONNS:
            if (!ig_cli_parse_int("--max-connections", optarg, 1, 1 << 20, &lv)) goto out;
            cfg.max_connections = (int)lv;
            break;
        case OPT_BODY:
            if (!ig_cli_parse_int("--max-body", optarg, 64, 1L << 31, &lv)) goto out;
            cfg.max_body_bytes = (size_t)lv;
            break;
        case OPT_IDLE:
            if (!ig_cli_parse_int("--idle-timeout", optarg, 0, 86400, &lv)) goto out;
            cfg.idle_timeout_s = (int)lv;
            break;
        case OPT_REQ_TIMEOUT:
            if (!ig_cli_parse_int("--request-timeout", optarg, 0, 1L << 40, &lv)) goto out;
            cfg.request_timeout_ms = lv;
            break;
        case OPT_DRAIN:
            if (!ig_cli_parse_int("--drain-timeout", optarg, 0, 1L << 40, &lv)) goto out;
            cfg.drain_ms = lv;
            break;
        case OPT_HTTP_THREADS:
            if (!ig_cli_parse_int("--http-threads", optarg, 1, 64, &lv)) goto out;
            cfg.http_threads = (int)lv;
            break;
        case OPT_LOG: {
            static const char *const names[] = {"off", "error", "warn", "info", "debug"};
            int k = 0;
            while (k < 5 && strcmp(optarg, names[k]) != 0) k++;
            if (k == 5) {
                ig_cli_fail("--log-level: '%s' is not one of off, error, warn, info, debug",
                            optarg);
                goto out;
            }
            cfg.log_level = (ig_server_log_level)k;
            break;
        }
        case 'h':
            fputs(HELP, stdout);
            rc = 0;
            goto out;
        case ':':
            ig_cli_fail("serve: option '%s' needs a value", argv[optind - 1]);
            goto out;
        default:
            ig_cli_fail("serve: unknown option '%s' (try --help)", argv[optind - 1]);
            goto out;
        }
    }
    if (optind != argc) {
        ig_cli_fail("serve: unexpected argument '%s' (try --help)", argv[optind]);
        goto out;
    }
    if (!path) path = ig_cli_default_model();
    cfg.model_path = path;
    cfg.api_keys = (const char *const *)keys;
    cfg.n_api_keys = n_keys;

    rc = 1;
    ig_error err = {0};
    if (ig_model_load(path, &m, &err) != IG_OK) {
        ig_cli_fail("serve: %s", err.message);
        goto out;
    }
    /* Signals are taken by the main thread only (sigwait); every server
     * thread inherits the blocked mask. */
    ig_server_block_signals();
    if (ig_server_new(&cfg, m, &srv, &err) != IG_OK) {
        ig_cli_fail("serve: %s", err.message);
        goto out;
    }
    ig_log_event(IG_SERVER_LOG_INFO, "listening", "http://%s:%d model=%s keys=%zu", cfg.host,
                 ig_server_port(srv), path, n_keys);
    printf("ignis: serving %s on http://%s:%d\n", path, cfg.host, ig_server_port(srv));
    fflush(stdout);
    int sig = ig_server_wait_signal();
    ig_log_event(IG_SERVER_LOG_INFO, "shutdown", "signal %d: draining (up to %lld ms)", sig,
                 (long long)cfg.drain_ms);
    ig_server_shutdown(srv);
    ig_log_event(IG_SERVER_LOG_INFO, "stopped", "bye");
    rc = 0;
out:
    ig_server_free(srv);
    ig_model_free(m);
    for (size_t i = 0; i < n_keys; i++) free(keys[i]);
    free(keys);
    return rc;
}
