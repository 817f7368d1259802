/*
 * gen.c: generation requests: /v1/completions, /v1/chat/completions and the
 * background jobs of /inference + /results.
 *
 * A request is parsed and validated (openai.c), its prompt built (chat
 * template) and tokenized, checked against the context, and submitted to the
 * engine as n engine requests (one per choice). Events come back on the
 * engine thread (ig__gen_on_event), which appends text under the context's
 * mutex and resumes the connection. The HTTP thread then writes either the
 * whole response (non-streaming) or SSE chunks (streaming, an MHD content
 * reader that suspends itself when it has nothing to send).
 *
 * Generated text arrives as complete UTF-8 from the engine's streaming
 * detokenizer (bytes that can never be valid are U+FFFD there), so the
 * writers never see a partial character; token pieces shown in logprobs
 * are sanitized separately.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "server/server_internal.h"

#define RETRY_MSG "the server is overloaded; retry after a moment"

/* ---- engine callback (engine thread) ---- */

static bool push_lp(choice *ch, const ig_event *ev) {
    if (ch->n_lps == ch->cap_lps) {
        size_t cap = ch->cap_lps ? ch->cap_lps * 2 : 16;
        ig_oai_logprob *n = realloc(ch->lps, cap * sizeof *n);
        if (!n) return false;
        ch->lps = n;
        ch->cap_lps = cap;
    }
    ig_oai_logprob *lp = &ch->lps[ch->n_lps++];
    lp->token = ev->token;
    lp->logprob = ev->logprob;
    int32_t want = ch->ctx->req.top_logprobs;
    lp->n_top = ev->n_top < want ? ev->n_top : want;
    if (lp->n_top > 0) memcpy(lp->top, ev->top, (size_t)lp->n_top * sizeof *lp->top);
    return true;
}

/*
 * A suspended connection is out of libmicrohttpd's poll set, so a client
 * that gives up on a non-streaming answer would only be noticed when the
 * answer is written, after the whole generation. Instead the engine thread
 * probes the socket as tokens arrive (at most every PROBE_US per request):
 * recv(MSG_PEEK | MSG_DONTWAIT) returning 0 means the peer closed (a reset
 * gives an error); then every choice is cancelled, which frees its KV
 * blocks at the next step. A request still queued is probed from its first
 * token on. The fd stays open while the connection is suspended and not
 * completed (is_suspended && !is_gone, both under mu): MHD closes
 * connections only after resuming them or in its completed path.
 * (A client that half-closes its sending side and still waits would be
 * taken for gone, as llama-server and vLLM do.)
 */
#define PROBE_US 20000

/* mu held; true when the peer of a suspended non-streaming request closed. */
static bool client_gone(req_ctx *c) {
    if (c->is_stream || !c->conn || c->fd < 0 || !c->is_suspended || c->is_gone ||
        c->is_client_gone)
        return false;
    int64_t now = ig__now_us();
    if (now < c->next_probe_us) return false;
    c->next_probe_us = now + PROBE_US;
    char b;
    ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)))
        return false;
    c->is_client_gone = true;
    return true;
}

void ig__gen_on_event(void *user, const ig_event *ev) {
    ig_server *s = user;
    choice *ch = (choice *)ev->user_data;
    req_ctx *c = ch->ctx;
    ig_request_id live[IG_OAI_MAX_N];
    int n_live = 0;
    pthread_mutex_lock(&c->mu);
    if (ev->type == IG_EVENT_TOKEN && client_gone(c)) {
        for (int i = 0; i < c->n_choices; i++)
            if (!c->choices[i].is_finished && c->choices[i].id) live[n_live++] = c->choices[i].id;
    }
    if (ev->text_len) ig__sbuf_add(&ch->text, ev->text, ev->text_len);
    if (ev->type == IG_EVENT_TOKEN && c->req.logprobs) push_lp(ch, ev);
    bool all_done = false;
    if (ev->type == IG_EVENT_FINISHED) {
        ch->is_finished = true;
        ch->finish = ev->finish;
        ch->status = ev->status;
        snprintf(ch->message, sizeof ch->message, "%s", ev->message ? ev->message : "");
        if (ev->stats) {
            ch->stats = *ev->stats;
            double sum = 0;
            for (int32_t i = 0; ev->stats->itl_ms && i < ev->stats->n_itl; i++)
                sum += ev->stats->itl_ms[i];
            ch->itl_mean_ms = ev->stats->n_itl > 0 ? sum / ev->stats->n_itl : 0;
            ch->stats.itl_ms = NULL;
            ch->stats.n_itl = 0;
        }
        c->n_finished++;
        all_done = c->n_finished == c->n_choices;
    }
    /* Non-streaming waits for the end; streaming wants every token. */
    if (c->is_suspended && !c->is_gone && (c->is_stream || all_done)) {
        c->is_suspended = false;
        MHD_resume_connection(c->conn);
    }
    if (all_done && c->is_inflight) {
        c->is_inflight = false;
        atomic_fetch_sub(&s->n_inflight, 1);
    }
    pthread_mutex_unlock(&c->mu);
    if (n_live)
        ig_log_event(IG_SERVER_LOG_DEBUG, "disconnect",
                     "%s: the client closed while waiting; cancelling", c->request_id);
    for (int i = 0; i < n_live; i++) ig_engine_cancel(s->engine, live[i]);
    if (ev->type == IG_EVENT_FINISHED && ev->stats) ig_metrics_request(&s->metrics, ev->stats);
    if (ev->type == IG_EVENT_FINISHED) ig__ctx_unref(c); /* the engine's reference */
}

void ig__ctx_free_gen(req_ctx *c) {
    ig_oai_request_free(&c->req);
    free(c->echo_text);
    for (int i = 0; c->choices && i < c->n_choices; i++) {
        ig__sbuf_free(&c->choices[i].text);
        free(c->choices[i].lps);
    }
    free(c->choices);
    c->choices = NULL;
    ig__sbuf_free(&c->out);
}

static size_t piece_fn(void *user, int32_t tok, char *buf, size_t cap) {
    const ig_server *s = user;
    return ig_token_to_piece(s->model->vocab, tok, false, buf, cap);
}

/* ---- building the prompt (HTTP thread) ---- */

static ig_status tokenize(ig_server *s, const char *text, size_t len, bool add_special,
                          ig_tokens *toks, ig_oai_error *e) {
    ig_error err = {0};
    ig_tokenize_opts o = {.add_special = add_special, .parse_special = true};
    if (ig_tokenize(s->model->vocab, text, len, o, toks, &err) != IG_OK)
        return ig_oai_fail(e, err.code == IG_ENOMEM ? 500 : 400, NULL, NULL, "tokenizer: %s",
                           err.message);
    return IG_OK;
}

static ig_status build_prompt(req_ctx *c, ig_tokens *toks, ig_oai_error *e) {
    ig_server *s = c->srv;
    ig_oai_request *r = &c->req;
    if (r->kind == IG_OAI_KIND_CHAT) {
#if IG_SERVER_HAS_CHAT_TEMPLATE
        if (!s->tmpl)
            return ig_oai_fail(e, 400, "messages", "chat_template_missing",
                               "this model has no chat template; start the server with "
                               "--chat-template NAME (chatml, llama2, llama3, mistral, zephyr) "
                               "or use /v1/completions");
        char *text = NULL;
        size_t len = 0;
        ig_error err = {0};
        ig_status st = ig_chat_template_render(s->tmpl, r->messages, true, s->bos_text, s->eos_text,
                                               NULL, &text, &len, &err);
        if (st != IG_OK)
            return ig_oai_fail(e, st == IG_ENOMEM ? 500 : 400, "messages", NULL,
                               "chat template: %s", err.message);
        /* A template that writes the BOS text itself gets no second BOS. */
        size_t bl = s->bos_text ? strlen(s->bos_text) : 0;
        bool has_bos = bl > 0 && len >= bl && !memcmp(text, s->bos_text, bl);
        st = tokenize(s, text, len, !has_bos, toks, e);
        free(text);
        if (st) return st;
#else
        (void)toks;
        return ig_oai_fail(e, 400, "messages", "chat_template_missing",
                           "this build has no chat template support; use /v1/completions");
#endif
    } else if (r->prompt_ids) {
        for (size_t i = 0; i < r->n_prompt_ids; i++)
            if (ig_tokens_push(toks, r->prompt_ids[i]))
                return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
        if (r->echo && ig_detokenize(s->model->vocab, r->prompt_ids, r->n_prompt_ids, false,
                                     &c->echo_text, &c->echo_len) != IG_OK)
            return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
        if (c->echo_text) {
            char *clean = ig_oai_utf8_sanitize(c->echo_text, c->echo_len, &c->echo_len);
            free(c->echo_text);
            c->echo_text = clean;
            if (!clean) return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
        }
    } else {
        ig_status st = tokenize(s, r->prompt, r->prompt_len, true, toks, e);
        if (st) return st;
        if (r->echo) {
            c->echo_text = strndup(r->prompt, r->prompt_len);
            c->echo_len = r->prompt_len;
            if (!c->echo_text) return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
        }
    }
    if (toks->n == 0) {
        int32_t bos = s->model->vocab->bos_id;
        if (bos < 0) return ig_oai_fail(e, 400, "prompt", NULL, "the prompt is empty");
        if (ig_tokens_push(toks, bos)) return ig_oai_fail(e, 500, NULL, NULL, "out of memory");
    }
    return IG_OK;
}

/* Prompt and max_tokens against the context; returns the engine's max_tokens. */
static ig_status check_context(req_ctx *c, size_t n_prompt, int32_t *max_out, ig_oai_error *e) {
    int32_t n_ctx = c->srv->n_ctx;
    const char *pp = c->req.kind == IG_OAI_KIND_CHAT ? "messages" : "prompt";
    if (n_prompt >= (size_t)n_ctx)
        return ig_oai_fail(e, 400, pp, "context_length_exceeded",
                           "the prompt has %zu tokens, but the model's context length is %d "
                           "tokens (at least 1 must be left to generate)",
                           n_prompt, n_ctx);
    int32_t room = n_ctx - (int32_t)n_prompt;
    int32_t def = c->srv->cfg.default_max_tokens;
    if (c->req.has_max_tokens) {
        if ((int64_t)n_prompt + c->req.max_tokens > n_ctx)
            return ig_oai_fail(e, 400, "max_tokens", "context_length_exceeded",
                               "the prompt (%zu tokens) plus max_tokens (%d) is %lld tokens, "
                               "more than the model's context length of %d tokens",
                               n_prompt, c->req.max_tokens, (long long)n_prompt + c->req.max_tokens,
                               n_ctx);
        *max_out = c->req.max_tokens;
    } else if (def > 0) {
        *max_out = def < room ? def : room;
    } else if (c->req.kind == IG_OAI_KIND_COMPLETION) {
        *max_out = c->req.max_tokens < room ? c->req.max_tokens : room;
    } else {
        *max_out = room;
    }
    return IG_OK;
}

static ig_status submit_error(ig_status st, const ig_error *err, ig_oai_error *e) {
    switch (st) {
    case IG_EOVERLOADED:
        return ig_oai_fail(e, 503, NULL, "server_is_overloaded", RETRY_MSG " (%s)", err->message);
    case IG_ECONTEXT:
        return ig_oai_fail(e, 400, NULL, "context_length_exceeded", "%s", err->message);
    case IG_EINVAL:
        return ig_oai_fail(e, 400, NULL, NULL, "%s", err->message);
    default:
        return ig_oai_fail(e, 500, NULL, NULL, "%s", err->message);
    }
}

/*
 * Validate, build, submit. On success the engine holds one reference per
 * choice and the ctx is counted in n_inflight. On failure nothing is live
 * except choices already submitted, which are cancelled (they hold their
 * references until their FINISHED event).
 */
static ig_status gen_prepare(req_ctx *c, ig_oai_kind kind, ig_oai_error *e) {
    ig_server *s = c->srv;
    ig_tokens toks = {0};
    ig_status st = ig_oai_parse(kind, c->body.buf, c->body.len, s->n_vocab, &c->req, e);
    if (st) goto out;
    if (c->req.model && strcmp(c->req.model, s->model_id) != 0) {
        st = ig_oai_fail(e, 404, "model", "model_not_found",
                         "The model `%.200s` does not exist (this server has `%s`)", c->req.model,
                         s->model_id);
        goto out;
    }
    if (atomic_load(&s->is_draining)) {
        st = ig_oai_fail(e, 503, NULL, "server_shutting_down", "the server is shutting down");
        goto out;
    }
    if ((st = build_prompt(c, &toks, e))) goto out;
    int32_t max_tokens = 0;
    if ((st = check_context(c, toks.n, &max_tokens, e))) goto out;
    c->n_prompt = (int32_t)toks.n;
    if (atomic_fetch_add(&s->n_inflight, 1) >= s->cfg.max_inflight) {
        atomic_fetch_sub(&s->n_inflight, 1);
        st = ig_oai_fail(e, 503, NULL, "server_is_overloaded", RETRY_MSG " (%d requests in flight)",
                         s->cfg.max_inflight);
        goto out;
    }
    c->is_inflight = true;
    c->n_choices = c->req.n;
    c->choices = calloc((size_t)c->n_choices, sizeof *c->choices);
    if (!c->choices) {
        st = ig_oai_fail(e, 500, NULL, NULL, "out of memory");
        goto out;
    }
    for (int i = 0; i < c->n_choices; i++) {
        c->choices[i].ctx = c;
        c->choices[i].index = i;
    }
    ig__new_id(s, kind == IG_OAI_KIND_CHAT ? "chatcmpl-" : "cmpl-", c->cmpl_id, sizeof c->cmpl_id);
    for (int i = 0; i < c->n_choices; i++) {
        ig_sampler_params sp = c->req.sampling;
        if (c->req.has_seed) sp.seed = c->req.sampling.seed + (uint64_t)i;
        ig_request r = {
            .prompt = toks.ids,
            .n_prompt = toks.n,
            .sampling = &sp,
            .max_tokens = max_tokens,
            .stop = (const char *const *)c->req.stop,
            .n_stop = c->req.n_stop,
            .priority = c->req.priority,
            .timeout_ms = s->cfg.request_timeout_ms,
            .n_logprobs = c->req.logprobs ? (c->req.top_logprobs > 0 ? c->req.top_logprobs : 1) : 0,
            .user_data = (uintptr_t)&c->choices[i],
        };
        pthread_mutex_lock(&c->mu);
        c->refs++; /* the engine's, before it can call back */
        pthread_mutex_unlock(&c->mu);
        ig_error err = {0};
        ig_request_id id = 0;
        st = ig_engine_submit(s->engine, &r, &id, &err);
        if (st != IG_OK) {
            pthread_mutex_lock(&c->mu);
            c->refs--;
            c->n_choices = i; /* the rest never existed */
            bool all_done = c->n_finished == c->n_choices;
            if (all_done && c->is_inflight) {
                c->is_inflight = false;
                atomic_fetch_sub(&s->n_inflight, 1);
            }
            pthread_mutex_unlock(&c->mu);
            for (int k = 0; k < i; k++) ig_engine_cancel(s->engine, c->choices[k].id);
            submit_error(st, &err, e);
            goto out;
        }
        pthread_mutex_lock(&c->mu);
        c->choices[i].id = id;
        pthread_mutex_unlock(&c->mu);
    }
out:
    if (st && c->is_inflight && !c->choices) {
        c->is_inflight = false;
        atomic_fetch_sub(&s->n_inflight, 1);
    }
    ig_tokens_free(&toks);
    return st;
}

/* ---- JSON pieces ---- */

static json_t *chunk_head(req_ctx *c) {
    const char *obj = c->req.kind == IG_OAI_KIND_CHAT ? "chat.completion.chunk" : "text_completion";
    return json_pack("{s:s,s:s,s:I,s:s}", "id", c->cmpl_id, "object", obj, "created",
                     (json_int_t)c->created_unix, "model", c->srv->model_id);
}

static json_t *choice_logprobs(req_ctx *c, choice *ch, size_t offset0) {
    if (!c->req.logprobs) return json_null();
    json_t *j = ig_oai_logprobs_json(c->req.kind, ch->lps, ch->n_lps, piece_fn, c->srv, offset0);
    return j ? j : json_null();
}

static int64_t total_generated(req_ctx *c) {
    int64_t n = 0;
    for (int i = 0; i < c->n_choices; i++) n += c->choices[i].stats.n_generated_tokens;
    return n;
}

static json_t *usage_json(req_ctx *c) {
    return ig_oai_usage_json(c->n_prompt, total_generated(c),
                             c->n_choices ? c->choices[0].stats.n_cached_tokens : 0);
}

static bool sse_add(req_ctx *c, json_t *obj) {
    char *s = obj ? json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(obj);
    if (!s) return false;
    bool ok = ig__sbuf_add(&c->out, "data: ", 6) && ig__sbuf_add(&c->out, s, strlen(s)) &&
              ig__sbuf_add(&c->out, "\n\n", 2);
    free(s);
    return ok;
}

/* A chunk holding one choice (delta or text). */
static json_t *chunk_choice(req_ctx *c, choice *ch, json_t *text_or_delta, json_t *logprobs,
                            const char *finish) {
    json_t *head = chunk_head(c);
    json_t *cj;
    if (c->req.kind == IG_OAI_KIND_CHAT)
        cj = json_pack("{s:i,s:o,s:o,s:s?}", "index", ch->index, "delta", text_or_delta, "logprobs",
                       logprobs, "finish_reason", finish);
    else
        cj = json_pack("{s:i,s:o,s:o,s:s?}", "index", ch->index, "text", text_or_delta, "logprobs",
                       logprobs, "finish_reason", finish);
    if (!head || !cj) {
        json_decref(head);
        json_decref(cj);
        return NULL;
    }
    json_object_set_new(head, "choices", json_pack("[o]", cj));
    if (c->req.include_usage) json_object_set_new(head, "usage", json_null());
    return head;
}

/* Turn what the engine left since the last call into SSE bytes (mu held). */
static void sse_build(req_ctx *c) {
    bool all_sent = true;
    for (int i = 0; i < c->n_choices; i++) {
        choice *ch = &c->choices[i];
        if (ch->text.len || ch->n_lps) {
            json_t *piece = json_stringn(ch->text.buf ? ch->text.buf : "", ch->text.len);
            json_t *val =
                c->req.kind == IG_OAI_KIND_CHAT ? json_pack("{s:o}", "content", piece) : piece;
            sse_add(c, chunk_choice(c, ch, val, choice_logprobs(c, ch, ch->n_text_sent), NULL));
            ch->n_text_sent += ch->text.len;
            ch->text.len = 0;
            ch->n_lps = 0;
        }
        if (ch->is_finished && !ch->is_finish_sent) {
            if (ch->finish == IG_FINISH_KIND_ERROR) {
                ig_oai_error e;
                ig_oai_fail(&e, 500, NULL, NULL, "generation failed: %s", ch->message);
                char *ej = ig_oai_error_json(&e);
                if (ej) {
                    ig__sbuf_add(&c->out, "data: ", 6);
                    ig__sbuf_add(&c->out, ej, strlen(ej));
                    ig__sbuf_add(&c->out, "\n\n", 2);
                    free(ej);
                }
                free(c->error_msg);
                c->error_msg = strdup(ch->message);
            }
            json_t *val = c->req.kind == IG_OAI_KIND_CHAT ? json_object() : json_string("");
            sse_add(c, chunk_choice(c, ch, val, json_null(), ig_oai_finish_reason(ch->finish)));
            ch->is_finish_sent = true;
        }
        all_sent &= ch->is_finish_sent;
    }
    if (!all_sent || c->is_done_sent) return;
    if (c->req.include_usage && !c->is_usage_sent) {
        json_t *head = chunk_head(c);
        if (head) {
            json_object_set_new(head, "choices", json_array());
            json_object_set_new(head, "usage", usage_json(c));
        }
        sse_add(c, head);
        c->is_usage_sent = true;
    }
    ig__sbuf_add(&c->out, "data: [DONE]\n\n", 14);
    c->is_done_sent = true;
}

/* MHD content reader for SSE (HTTP thread). */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    req_ctx *c = cls;
    (void)pos;
    pthread_mutex_lock(&c->mu);
    if (c->out_off == c->out.len) {
        c->out.len = c->out_off = 0;
        sse_build(c);
    }
    ssize_t n;
    if (c->out.len > c->out_off) {
        size_t k = c->out.len - c->out_off;
        if (k > max) k = max;
        memcpy(buf, c->out.buf + c->out_off, k);
        c->out_off += k;
        n = (ssize_t)k;
    } else if (c->is_done_sent) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        c->is_suspended = true;
        MHD_suspend_connection(c->conn);
        n = 0;
    }
    pthread_mutex_unlock(&c->mu);
    return n;
}

static json_t *full_response(req_ctx *c) {
    bool is_chat = c->req.kind == IG_OAI_KIND_CHAT;
    json_t *choices = json_array();
    for (int i = 0; choices && i < c->n_choices; i++) {
        choice *ch = &c->choices[i];
        json_t *cj;
        const char *fr = ig_oai_finish_reason(ch->finish);
        if (is_chat) {
            json_t *msg = json_pack("{s:s,s:s%}", "role", "assistant", "content",
                                    ch->text.buf ? ch->text.buf : "", ch->text.len);
            cj = json_pack("{s:i,s:o,s:o,s:s?}", "index", i, "message", msg, "logprobs",
                           choice_logprobs(c, ch, 0), "finish_reason", fr);
        } else {
            ig_sbuf t = {0};
            if (c->echo_text) ig__sbuf_add(&t, c->echo_text, c->echo_len);
            ig__sbuf_add(&t, ch->text.buf ? ch->text.buf : "", ch->text.len);
            cj = json_pack("{s:i,s:s%,s:o,s:s?}", "index", i, "text", t.buf ? t.buf : "", t.len,
                           "logprobs", choice_logprobs(c, ch, c->echo_len), "finish_reason", fr);
            ig__sbuf_free(&t);
        }
        json_array_append_new(choices, cj);
    }
    json_t *head = json_pack("{s:s,s:s,s:I,s:s,s:o,s:o}", "id", c->cmpl_id, "object",
                             is_chat ? "chat.completion" : "text_completion", "created",
                             (json_int_t)c->created_unix, "model", c->srv->model_id, "choices",
                             choices, "usage", usage_json(c));
    return head;
}

/* All choices finished (non-streaming): the answer. */
static enum MHD_Result gen_answer(req_ctx *c) {
    pthread_mutex_lock(&c->mu);
    bool is_client_gone = c->is_client_gone;
    pthread_mutex_unlock(&c->mu);
    if (is_client_gone) { /* nobody to answer: close (logged as 499) */
        free(c->error_msg);
        c->error_msg = strdup("client disconnected");
        return MHD_NO;
    }
    for (int i = 0; i < c->n_choices; i++) {
        choice *ch = &c->choices[i];
        ig_oai_error e;
        if (ch->finish == IG_FINISH_KIND_ERROR) {
            ig_oai_fail(&e, 500, NULL, NULL, "generation failed: %s", ch->message);
            return ig__respond_error(c, &e);
        }
        if (ch->finish == IG_FINISH_KIND_CANCELLED && atomic_load(&c->srv->is_draining)) {
            ig_oai_fail(&e, 503, NULL, "server_shutting_down",
                        "the server is shutting down; the request was cancelled");
            return ig__respond_error(c, &e);
        }
    }
    return ig__respond_json(c, 200, full_response(c));
}

enum MHD_Result ig__gen_start(req_ctx *c, ig_oai_kind kind) {
    ig_oai_error e;
    c->is_gen = true;
    if (gen_prepare(c, kind, &e) != IG_OK) return ig__respond_error(c, &e);
    c->is_stream = c->req.stream;
    if (c->is_stream) {
        pthread_mutex_lock(&c->mu);
        if (kind == IG_OAI_KIND_CHAT)
            for (int i = 0; i < c->n_choices; i++)
                sse_add(c, chunk_choice(c, &c->choices[i],
                                        json_pack("{s:s,s:s}", "role", "assistant", "content", ""),
                                        json_null(), NULL));
        pthread_mutex_unlock(&c->mu);
        struct MHD_Response *r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, c, NULL);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        ig__add_common_headers(c, r);
        c->status = 200;
        enum MHD_Result ok = MHD_queue_response(c->conn, 200, r);
        MHD_destroy_response(r);
        return ok;
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    pthread_mutex_lock(&c->mu);
    c->fd = ci ? ci->connect_fd : -1;
    bool done = c->n_finished == c->n_choices;
    if (!done) {
        c->is_suspended = true;
        MHD_suspend_connection(c->conn);
    }
    pthread_mutex_unlock(&c->mu);
    return done ? gen_answer(c) : MHD_YES;
}

enum MHD_Result ig__gen_resume(req_ctx *c) {
    pthread_mutex_lock(&c->mu);
    bool done = c->n_finished == c->n_choices;
    if (!done) { /* a spurious call: wait again */
        c->is_suspended = true;
        MHD_suspend_connection(c->conn);
    }
    pthread_mutex_unlock(&c->mu);
    return done ? gen_answer(c) : MHD_YES;
}

void ig__gen_on_completed(req_ctx *c, enum MHD_RequestTerminationCode toe) {
    if (!c->is_gen) return;
    ig_request_id live[IG_OAI_MAX_N];
    int n_live = 0;
    pthread_mutex_lock(&c->mu);
    c->is_gone = true;
    for (int i = 0; i < c->n_choices; i++)
        if (!c->choices[i].is_finished && c->choices[i].id) live[n_live++] = c->choices[i].id;
    pthread_mutex_unlock(&c->mu);
    (void)toe;
    /* The client is gone before its answer: stop spending KV blocks on it. */
    for (int i = 0; i < n_live; i++) ig_engine_cancel(c->srv->engine, live[i]);
}

/* ---- background jobs ---- */

static const char *job_state(req_ctx *c) {
    if (c->n_finished == c->n_choices) {
        for (int i = 0; i < c->n_choices; i++)
            if (c->choices[i].finish == IG_FINISH_KIND_ERROR) return "failed";
        return "finished";
    }
    for (int i = 0; i < c->n_choices; i++)
        if (c->choices[i].text.len) return "running";
    return "queued";
}

/* A job as JSON (mu held). */
static json_t *job_json(req_ctx *c) {
    bool done = c->n_finished == c->n_choices;
    json_t *j = json_pack(
        "{s:s,s:s,s:s,s:s,s:I,s:s%}", "id", c->request_id, "object", "inference.result", "status",
        job_state(c), "model", c->srv->model_id, "created", (json_int_t)c->created_unix, "prompt",
        c->req.prompt ? c->req.prompt : "", c->req.prompt ? c->req.prompt_len : 0);
    if (!j || !done) return j;
    json_t *choices = json_array();
    double total_ms = 0, ttft_ms = -1, queue_ms = -1, itl = 0;
    for (int i = 0; i < c->n_choices; i++) {
        choice *ch = &c->choices[i];
        json_array_append_new(choices,
                              json_pack("{s:i,s:s%,s:s?,s:s?}", "index", i, "text",
                                        ch->text.buf ? ch->text.buf : "", ch->text.len,
                                        "finish_reason", ig_oai_finish_reason(ch->finish), "error",
                                        ch->finish == IG_FINISH_KIND_ERROR ? ch->message : NULL));
        double t = (double)ch->stats.total_us / 1e3;
        if (t > total_ms) total_ms = t;
        if (i == 0) {
            ttft_ms = ch->stats.ttft_us >= 0 ? (double)ch->stats.ttft_us / 1e3 : -1;
            queue_ms = ch->stats.queue_us >= 0 ? (double)ch->stats.queue_us / 1e3 : -1;
            itl = ch->itl_mean_ms;
        }
    }
    int64_t gen = total_generated(c);
    json_object_set_new(j, "choices", choices);
    json_object_set_new(j, "usage", usage_json(c));
    json_object_set_new(j, "telemetry",
                        json_pack("{s:I,s:f,s:o,s:o,s:f,s:i,s:i,s:I,s:f}", "started_at_ms",
                                  (json_int_t)c->job_created_ms, "duration_ms", total_ms,
                                  "queue_ms", queue_ms >= 0 ? json_real(queue_ms) : json_null(),
                                  "ttft_ms", ttft_ms >= 0 ? json_real(ttft_ms) : json_null(),
                                  "itl_mean_ms", itl, "prompt_tokens", c->n_prompt, "cached_tokens",
                                  c->n_choices ? c->choices[0].stats.n_cached_tokens : 0,
                                  "generated_tokens", (json_int_t)gen, "tokens_per_second",
                                  total_ms > 0 ? (double)gen * 1e3 / total_ms : 0.0));
    return j;
}

/* Make room in the ring: drop the oldest finished job (jobs_mu held). */
static bool jobs_make_room(ig_server *s) {
    int cap = s->cfg.max_jobs > 0 ? s->cfg.max_jobs : 1;
    if (s->n_jobs < cap) return true;
    for (int i = 0; i < s->n_jobs; i++) {
        req_ctx *j = s->jobs[i];
        pthread_mutex_lock(&j->mu);
        bool done = j->n_finished == j->n_choices;
        pthread_mutex_unlock(&j->mu);
        if (!done) continue;
        memmove(&s->jobs[i], &s->jobs[i + 1], (size_t)(s->n_jobs - i - 1) * sizeof *s->jobs);
        s->n_jobs--;
        ig__ctx_unref(j);
        return true;
    }
    return false;
}

enum MHD_Result ig__jobs_submit(req_ctx *c) {
    ig_server *s = c->srv;
    ig_oai_error e;
    req_ctx *j = calloc(1, sizeof *j);
    if (!j) {
        ig_oai_fail(&e, 500, NULL, NULL, "out of memory");
        return ig__respond_error(c, &e);
    }
    pthread_mutex_init(&j->mu, NULL);
    j->refs = 1; /* the jobs table's */
    j->srv = s;
    j->fd = -1;
    j->is_gen = j->is_job = true;
    j->route = IG_ROUTE_INFERENCE;
    j->start_us = ig__now_us();
    j->created_unix = (int64_t)time(NULL);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    j->job_created_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    ig__new_id(s, "job-", j->request_id, sizeof j->request_id);
    j->body = c->body; /* borrowed for parsing only */
    pthread_mutex_lock(&s->jobs_mu);
    bool room = jobs_make_room(s);
    pthread_mutex_unlock(&s->jobs_mu);
    ig_status st;
    if (!room)
        st = ig_oai_fail(&e, 503, NULL, "server_is_overloaded",
                         "the job table is full of unfinished jobs; retry later");
    else
        st = gen_prepare(j, IG_OAI_KIND_COMPLETION, &e);
    memset(&j->body, 0, sizeof j->body);
    if (st == IG_OK && j->req.stream) {
        /* jobs never stream; the flag is ignored */
        j->req.stream = false;
    }
    if (st != IG_OK) {
        ig__ctx_unref(j);
        return ig__respond_error(c, &e);
    }
    pthread_mutex_lock(&s->jobs_mu);
    if (!jobs_make_room(s)) { /* raced: keep it anyway, one over the cap */
    }
    int cap = s->cfg.max_jobs > 0 ? s->cfg.max_jobs : 1;
    if (s->n_jobs < cap) {
        s->jobs[s->n_jobs++] = j;
    } else {
        ig__ctx_unref(j); /* cannot happen after make_room; the job still runs and frees itself */
    }
    pthread_mutex_unlock(&s->jobs_mu);
    return ig__respond_json(c, 202,
                            json_pack("{s:s,s:s,s:s,s:I}", "id", j->request_id, "object",
                                      "inference.job", "status", "queued", "created",
                                      (json_int_t)j->created_unix));
}

enum MHD_Result ig__jobs_results(req_ctx *c) {
    ig_server *s = c->srv;
    const char *id = MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, "id");
    json_t *res = NULL;
    pthread_mutex_lock(&s->jobs_mu);
    if (id) {
        for (int i = 0; i < s->n_jobs && !res; i++) {
            req_ctx *j = s->jobs[i];
            if (strcmp(j->request_id, id) != 0) continue;
            pthread_mutex_lock(&j->mu);
            res = job_json(j);
            pthread_mutex_unlock(&j->mu);
            if (!res) res = json_null();
        }
    } else {
        json_t *list = json_array();
        for (int i = 0; list && i < s->n_jobs; i++) {
            req_ctx *j = s->jobs[i];
            pthread_mutex_lock(&j->mu);
            if (j->n_finished == j->n_choices) json_array_append_new(list, job_json(j));
            pthread_mutex_unlock(&j->mu);
        }
        res = json_pack("{s:s,s:o}", "object", "list", "data", list);
    }
    pthread_mutex_unlock(&s->jobs_mu);
    if (id && !res) {
        ig_oai_error e;
        ig_oai_fail(&e, 404, "id", "job_not_found", "no job with id '%.80s'", id);
        return ig__respond_error(c, &e);
    }
    return ig__respond_json(c, 200, res);
}

void ig__jobs_clear(ig_server *s) {
    pthread_mutex_lock(&s->jobs_mu);
    for (int i = 0; i < s->n_jobs; i++) ig__ctx_unref(s->jobs[i]);
    s->n_jobs = 0;
    pthread_mutex_unlock(&s->jobs_mu);
}
