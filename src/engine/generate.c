/*
 * generate.c: single-sequence generation (see generate.h). The KV cache is
 * one pool whose blocks all belong to this sequence, in order.
 */
#include "engine/generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/error.h"

#define KV_BLOCK 16

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

ig_gen_params ig_gen_params_default(void) {
    ig_gen_params p = {0};
    p.n_predict = 128;
    p.sampling = ig_sampler_params_default();
    return p;
}

/* Text produced but not yet passed on, because it may begin a stop string. */
typedef struct {
    char *buf;
    size_t len, cap;
} text_buf;

static ig_status buf_append(text_buf *b, const char *s, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) return IG_ENOMEM;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    return IG_OK;
}

/* Bytes at the end of buf that are a proper prefix of some stop string. */
static size_t held_suffix(const text_buf *b, const char *const *stop, size_t n_stop) {
    size_t best = 0;
    for (size_t s = 0; s < n_stop; s++) {
        size_t sl = strlen(stop[s]);
        for (size_t k = sl > 0 ? sl - 1 : 0; k > best; k--)
            if (k <= b->len && memcmp(b->buf + b->len - k, stop[s], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

/* Index of the first stop string occurrence in buf, or -1. */
static long find_stop(const text_buf *b, const char *const *stop, size_t n_stop) {
    long first = -1;
    for (size_t s = 0; s < n_stop; s++) {
        size_t sl = strlen(stop[s]);
        if (sl == 0 || sl > b->len) continue;
        for (size_t i = 0; i + sl <= b->len; i++)
            if (memcmp(b->buf + i, stop[s], sl) == 0) {
                if (first < 0 || (long)i < first) first = (long)i;
                break;
            }
    }
    return first;
}

ig_status ig_generate(ig_model *m, ig_pool *pool, const int32_t *prompt, size_t n_prompt,
                      const ig_gen_params *p, ig_gen_text_fn on_text, void *user,
                      ig_gen_result *res, ig_error *err) {
    ig_status st = IG_OK;
    memset(res, 0, sizeof *res);
    const ig_model_desc *d = &m->desc;
    const int32_t n_ctx = p->n_ctx > 0 ? p->n_ctx : d->n_ctx_train;
    const int32_t n_batch = p->n_batch > 0 ? p->n_batch : 512;
    if (n_prompt == 0) return ig_errorf(err, IG_ECONTEXT, "generate: the prompt is empty");
    if (n_prompt >= (size_t)n_ctx)
        return ig_errorf(err, IG_ECONTEXT, "generate: prompt of %zu tokens does not fit the context of %d",
                         n_prompt, n_ctx);
    for (size_t i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || !p->stop[i][0])
            return ig_errorf(err, IG_EINVAL, "generate: stop string %zu is empty", i);

    ig_kv_cache *kv = NULL;
    ig_sampler *smp = NULL;
    int32_t *table = NULL, *pos = NULL, *seq = NULL;
    float *logits = NULL;
    text_buf pending = {0};
    const int32_t n_blocks = (n_ctx + KV_BLOCK - 1) / KV_BLOCK;
    if ((st = ig_sampler_new(&p->sampling, d->n_vocab, &smp, err))) goto done;
    res->seed = ig_sampler_seed(smp);
    if ((st = ig_kv_cache_new(d->n_layer, d->n_head_kv * d->head_dim, KV_BLOCK, n_blocks, &kv, err)))
        goto done;
    table = malloc((size_t)n_blocks * sizeof *table);
    pos = malloc((size_t)n_batch * sizeof *pos);
    seq = calloc((size_t)n_batch, sizeof *seq);
    logits = malloc((size_t)d->n_vocab * sizeof *logits);
    if (!table || !pos || !seq || !logits) {
        st = ig_errorf(err, IG_ENOMEM, "generate: out of memory");
        goto done;
    }
    for (int32_t i = 0; i < n_blocks; i++) table[i] = i;
    ig_batch_seq bseq = {table, n_blocks};
    if ((st = ig_sampler_accept_prompt(smp, prompt, n_prompt, err))) goto done;

    /* prefill in chunks of n_batch; logits of the last prompt token only */
    double t0 = now_ms();
    for (size_t done_n = 0; done_n < n_prompt;) {
        int32_t n = (int32_t)(n_prompt - done_n < (size_t)n_batch ? n_prompt - done_n : (size_t)n_batch);
        for (int32_t i = 0; i < n; i++) pos[i] = (int32_t)(done_n + i);
        ig_batch b = {.n_tokens = n, .tokens = prompt + done_n, .pos = pos, .seq = seq,
                      .want_logits = NULL, .n_seqs = 1, .seqs = &bseq};
        if ((st = ig_model_forward(m, &b, kv, pool, logits, err))) goto done;
        done_n += (size_t)n;
    }
    res->n_prompt = (int32_t)n_prompt;
    double t1 = now_ms();
    res->prompt_ms = t1 - t0;

    ig_detok dt;
    ig_detok_init(&dt, m->vocab, false);
    /* The continuation of a prompt keeps its leading space (" there"); only text
       that starts the output (a prompt of special tokens only, e.g. BOS) drops it. */
    for (size_t i = 0; i < n_prompt; i++)
        if (m->vocab->attr[prompt[i]] != IG_TOKEN_CONTROL) dt.at_start = false;
    char piece[256];
    int32_t cur_pos = (int32_t)n_prompt;
    for (;;) {
        if (p->n_predict >= 0 && res->n_gen >= p->n_predict) {
            res->finish = IG_FINISH_LENGTH;
            break;
        }
        int32_t tok;
        if ((st = ig_sampler_sample(smp, logits, &tok, err))) goto done;
        if ((st = ig_sampler_accept(smp, tok, err))) goto done;
        res->n_gen++;
        if (ig_vocab_is_eog(m->vocab, tok)) {
            res->finish = IG_FINISH_STOP;
            break;
        }
        size_t n = ig_detok_push(&dt, tok, piece, sizeof piece);
        if (n > 0 && buf_append(&pending, piece, n) != IG_OK) {
            st = ig_errorf(err, IG_ENOMEM, "generate: out of memory");
            goto done;
        }
        long at = find_stop(&pending, p->stop, p->n_stop);
        if (at >= 0) {
            pending.len = (size_t)at;
            res->finish = IG_FINISH_STOP;
            break;
        }
        size_t keep = held_suffix(&pending, p->stop, p->n_stop);
        if (pending.len > keep && on_text) {
            if (!on_text(user, pending.buf, pending.len - keep)) {
                pending.len = 0;
                res->finish = IG_FINISH_ABORTED;
                break;
            }
        }
        if (keep > 0) memmove(pending.buf, pending.buf + pending.len - keep, keep);
        pending.len = keep;
        if (cur_pos + 1 >= n_ctx) {
            res->finish = IG_FINISH_LENGTH;
            break;
        }
        pos[0] = cur_pos;
        ig_batch b = {.n_tokens = 1, .tokens = &tok, .pos = pos, .seq = seq, .want_logits = NULL,
                      .n_seqs = 1, .seqs = &bseq};
        if ((st = ig_model_forward(m, &b, kv, pool, logits, err))) goto done;
        cur_pos++;
    }
    if (res->finish != IG_FINISH_ABORTED) {
        size_t n = ig_detok_flush(&dt, piece, sizeof piece);
        if (n > 0 && buf_append(&pending, piece, n) != IG_OK) {
            st = ig_errorf(err, IG_ENOMEM, "generate: out of memory");
            goto done;
        }
        long at = find_stop(&pending, p->stop, p->n_stop);
        if (at >= 0) {
            pending.len = (size_t)at;
            res->finish = IG_FINISH_STOP;
        }
        if (pending.len > 0 && on_text) on_text(user, pending.buf, pending.len);
    }
    res->gen_ms = now_ms() - t1;
done:
    free(pending.buf);
    free(logits);
    free(seq);
    free(pos);
    free(table);
    ig_kv_cache_free(kv);
    ig_sampler_free(smp);
    return st;
}
