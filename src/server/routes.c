/*
 * routes.c: the small endpoints: /v1/models, /health, /metrics, /tokenize,
 * /detokenize. Each answers at once on the HTTP thread.
 */
#include <stdlib.h>
#include <string.h>

#include "server/server_internal.h"

static json_t *model_json(ig_server *s) {
    return json_pack("{s:s,s:s,s:I,s:s,s:i,s:s}", "id", s->model_id, "object", "model", "created",
                     (json_int_t)s->created_unix, "owned_by", "ignis", "max_model_len", s->n_ctx,
                     "architecture", s->model->desc.arch);
}

enum MHD_Result ig__route_models(req_ctx *c, const char *id) {
    ig_server *s = c->srv;
    if (id) {
        if (strcmp(id, s->model_id) != 0) {
            ig_oai_error e;
            ig_oai_fail(&e, 404, "model", "model_not_found", "The model `%.200s` does not exist",
                        id);
            return ig__respond_error(c, &e);
        }
        return ig__respond_json(c, 200, model_json(s));
    }
    return ig__respond_json(c, 200,
                            json_pack("{s:s,s:[o]}", "object", "list", "data", model_json(s)));
}

enum MHD_Result ig__route_health(req_ctx *c) {
    ig_server *s = c->srv;
    ig_engine_stats es;
    ig_engine_stats_get(s->engine, &es);
    const char *status = "healthy";
    int code = 200;
    int inflight = atomic_load(&s->n_inflight);
    if (atomic_load(&s->is_draining) || es.state == IG_ENGINE_STATE_STOPPED ||
        es.state == IG_ENGINE_STATE_DRAINING) {
        status = "unhealthy";
        code = 503;
    } else if (es.kv_usage >= 0.95 || inflight * 4 >= s->cfg.max_inflight * 3 ||
               es.n_waiting * 4 >= s->cfg.engine.max_queue * 3) {
        status = "degraded";
    }
    json_t *j = json_pack(
        "{s:s,s:s,s:f,s:{s:I,s:I,s:i},s:i,s:i,s:{s:f,s:i,s:i,s:i},s:f,s:{s:I}}", "status", status,
        "model", s->model_id, "uptime_s", (double)(ig__now_us() - s->metrics.start_us) / 1e6,
        "requests", "total", (json_int_t)es.n_requests, "finished", (json_int_t)es.n_finished,
        "in_flight", inflight, "queue", es.n_waiting, "running", es.n_running, "kv_cache", "usage",
        es.kv_usage, "blocks_used", es.kv_blocks_used, "blocks_cached", es.kv_blocks_cached,
        "blocks_total", es.kv_blocks_total, "prefix_cache_hit_rate", es.prefix_hit_rate, "memory",
        "rss_bytes", (json_int_t)ig_process_rss_bytes());
    return ig__respond_json(c, code, j);
}

enum MHD_Result ig__route_metrics(req_ctx *c) {
    ig_server *s = c->srv;
    ig_engine_stats es;
    ig_engine_stats_get(s->engine, &es);
    char *text = ig_metrics_render(&s->metrics, &es, s->model_id, atomic_load(&s->n_open));
    return ig__respond(c, 200, text, "text/plain; version=0.0.4; charset=utf-8");
}

enum MHD_Result ig__route_tokenize(req_ctx *c) {
    ig_server *s = c->srv;
    ig_oai_error e;
    json_t *body = NULL;
    if (ig_oai_parse_object(c->body.buf, c->body.len, &body, &e)) return ig__respond_error(c, &e);
    const json_t *text = json_object_get(body, "content");
    if (!text) text = json_object_get(body, "prompt");
    const json_t *add = json_object_get(body, "add_special");
    const json_t *pieces = json_object_get(body, "with_pieces");
    if (!json_is_string(text)) {
        json_decref(body);
        ig_oai_fail(&e, 400, "content", NULL, "'content' (or 'prompt') must be a string");
        return ig__respond_error(c, &e);
    }
    if ((add && !json_is_boolean(add)) || (pieces && !json_is_boolean(pieces))) {
        json_decref(body);
        ig_oai_fail(&e, 400, add && !json_is_boolean(add) ? "add_special" : "with_pieces", NULL,
                    "must be a boolean");
        return ig__respond_error(c, &e);
    }
    ig_tokens toks = {0};
    ig_error err = {0};
    ig_tokenize_opts o = {.add_special = add ? json_is_true(add) : true, .parse_special = true};
    if (ig_tokenize(s->model->vocab, json_string_value(text), json_string_length(text), o, &toks,
                    &err)) {
        json_decref(body);
        ig_oai_fail(&e, 400, "content", NULL, "tokenizer: %s", err.message);
        return ig__respond_error(c, &e);
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < toks.n; i++) {
        if (pieces && json_is_true(pieces)) {
            char buf[256];
            size_t n = ig_token_to_piece(s->model->vocab, toks.ids[i], true, buf, sizeof buf);
            size_t cl;
            char *clean = ig_oai_utf8_sanitize(buf, n < sizeof buf ? n : sizeof buf, &cl);
            json_array_append_new(arr, json_pack("{s:i,s:s%}", "id", toks.ids[i], "piece",
                                                 clean ? clean : "", clean ? cl : 0));
            free(clean);
        } else {
            json_array_append_new(arr, json_integer(toks.ids[i]));
        }
    }
    size_t n = toks.n;
    ig_tokens_free(&toks);
    json_decref(body);
    return ig__respond_json(c, 200,
                            json_pack("{s:o,s:I,s:i}", "tokens", arr, "count", (json_int_t)n,
                                      "max_model_len", s->n_ctx));
}

enum MHD_Result ig__route_detokenize(req_ctx *c) {
    ig_server *s = c->srv;
    ig_oai_error e;
    json_t *body = NULL;
    if (ig_oai_parse_object(c->body.buf, c->body.len, &body, &e)) return ig__respond_error(c, &e);
    const json_t *arr = json_object_get(body, "tokens");
    if (!json_is_array(arr)) {
        json_decref(body);
        ig_oai_fail(&e, 400, "tokens", NULL, "'tokens' must be a list of token ids");
        return ig__respond_error(c, &e);
    }
    size_t n = json_array_size(arr);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    for (size_t i = 0; ids && i < n; i++) {
        const json_t *t = json_array_get(arr, i);
        if (!json_is_integer(t) || json_integer_value(t) < 0 ||
            json_integer_value(t) >= s->n_vocab) {
            free(ids);
            json_decref(body);
            ig_oai_fail(&e, 400, "tokens", NULL, "'tokens[%zu]' is not a token id in [0, %d)", i,
                        s->n_vocab);
            return ig__respond_error(c, &e);
        }
        ids[i] = (int32_t)json_integer_value(t);
    }
    json_decref(body);
    char *text = NULL;
    size_t len = 0;
    if (!ids || ig_detokenize(s->model->vocab, ids, n, false, &text, &len) != IG_OK) {
        free(ids);
        ig_oai_fail(&e, 500, NULL, NULL, "out of memory");
        return ig__respond_error(c, &e);
    }
    free(ids);
    size_t cl;
    char *clean = ig_oai_utf8_sanitize(text, len, &cl);
    free(text);
    if (!clean) {
        ig_oai_fail(&e, 500, NULL, NULL, "out of memory");
        return ig__respond_error(c, &e);
    }
    json_t *j = json_pack("{s:s%,s:s%}", "content", clean, cl, "prompt", clean, cl);
    free(clean);
    return ig__respond_json(c, 200, j);
}
