/*
 * llama.c: the Llama-family forward pass (Llama 2/3, TinyLlama, Mistral, the
 * stories models): token embedding, then per layer
 *   x += Wo * attn(rope(Wq * rmsnorm(x)), rope(Wk * ...), Wv * ...)   (GQA)
 *   x += Wdown * (silu(Wgate * rmsnorm(x)) * (Wup * rmsnorm(x)))
 * then rmsnorm and the output projection (tied to the embedding if the file
 * has no output.weight).
 *
 * This is the reference path: one loop over layers, each step as the maths
 * reads. It runs a ragged batch of tokens from several sequences; every
 * matmul covers the whole batch so weights are read once per step.
 *
 * Numerics reproduce llama.cpp's CPU backend (ggml, AVX-512 build, default
 * flash attention and F16 KV cache) bit for bit on F32 models: see
 * kernels/attention.h for the attention, kernels/f32order.h for the F32 matmul orders, and
 * kernels/ops.c for RMSNorm, RoPE and SwiGLU. The F16 roundings inside
 * attention amplify any one-ulp difference elsewhere, so "close" is not
 * enough to match its log-probabilities to 1e-3.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "base/error.h"
#include "kernels/attention.h"
#include "kernels/f32order.h"
#include "kernels/dot.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "tensor/pack.h"
#include "tensor/types.h"

typedef struct {
    const float *attn_norm; /* [n_embd] */
    ig_matrix wq;           /* [n_head*head_dim][n_embd] */
    ig_matrix wk;           /* [n_head_kv*head_dim][n_embd] */
    ig_matrix wv;           /* [n_head_kv*head_dim][n_embd] */
    ig_matrix wo;           /* [n_embd][n_head*head_dim] */
    const float *ffn_norm;  /* [n_embd] */
    ig_matrix w_gate;       /* [n_ff][n_embd] */
    ig_matrix w_up;         /* [n_ff][n_embd] */
    ig_matrix w_down;       /* [n_embd][n_ff] */
} llama_layer;

typedef struct {
    ig_model_desc d;
    int n_rot; /* dims rotated per head */
    float rms_eps;
    float rope_base;
    float rope_scale;          /* position multiplier (1 / linear scaling factor) */
    const float *rope_factors; /* [n_rot/2] per-frequency divisors (Llama 3.1), or NULL */
    ig_matrix tok_embd;        /* [n_vocab][n_embd] */
    const float *out_norm;     /* [n_embd] */
    ig_matrix output;          /* [n_vocab][n_embd] (may be tok_embd) */
    llama_layer *layers;

    /* scratch, grown to the largest batch seen */
    int cap_tokens;
    float *x, *xb, *q, *k, *v, *att_out, *h1, *h3;
    uint8_t *batched; /* [n_tokens] 1: sum F32 products in llama.cpp's batched order */
    int cap_seqs;
    int *seq_count;     /* [n_seqs] per-sequence count of tokens wanting logits */
    uint8_t *packed;    /* the repacked matrices, one buffer we own (tensor/pack.h) */
    void *act;          /* matmul scratch: activations converted for the integer dots */
    int cap_act_tokens; /* tokens `act` has room for in every matmul */
} llama_model;

/* ---- binding weights ---- */

static ig_status bind_matrix(const ig_gguf *g, const char *name, int64_t n_cols, int64_t n_rows,
                             ig_matrix *m, ig_error *err) {
    const ig_gguf_tensor *t = ig_gguf_find_tensor(g, name);
    if (!t) return ig_errorf(err, IG_EFORMAT, "model: missing tensor '%s'", name);
    if (t->n_dims != 2 || t->ne[0] != n_cols || t->ne[1] != n_rows)
        return ig_errorf(
            err, IG_EFORMAT, "model: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]",
            name, (long long)t->ne[0], (long long)t->ne[1], (long long)n_cols, (long long)n_rows);
    const ig_type_traits *tr = ig_type_get(t->type);
    if (!tr || !tr->vec_dot || !tr->to_float)
        return ig_errorf(err, IG_EUNSUPPORTED,
                         "model: tensor '%s' has type %s, which is not supported yet", name,
                         ig_type_name(t->type));
    m->type = t->type;
    m->n_cols = n_cols;
    m->n_rows = n_rows;
    m->data = t->data;
    if (!ig_type_row_size(t->type, n_cols, &m->row_bytes))
        return ig_errorf(err, IG_EFORMAT, "model: tensor '%s' rows do not fill whole blocks", name);
    return IG_OK;
}

static ig_status bind_vector(const ig_gguf *g, const char *name, int64_t n, bool optional,
                             const float **out, ig_error *err) {
    const ig_gguf_tensor *t = ig_gguf_find_tensor(g, name);
    if (!t) {
        if (optional) return IG_OK;
        return ig_errorf(err, IG_EFORMAT, "model: missing tensor '%s'", name);
    }
    if (t->type != IG_TYPE_F32)
        return ig_errorf(err, IG_EUNSUPPORTED, "model: tensor '%s' has type %s, expected f32", name,
                         ig_type_name(t->type));
    if (t->n_dims != 1 || t->ne[0] != n)
        return ig_errorf(err, IG_EFORMAT, "model: tensor '%s' should be a vector of %lld values",
                         name, (long long)n);
    if (((uintptr_t)t->data) % sizeof(float) != 0)
        return ig_errorf(err, IG_EFORMAT, "model: tensor '%s' is not 4-byte aligned", name);
    *out = t->data;
    return IG_OK;
}

/* Read "<arch>.<suffix>" as a u32; IG_ENOTFOUND when absent and !required. */
static ig_status get_u32(const ig_gguf *g, const char *arch, const char *suffix, bool required,
                         uint32_t *out, ig_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    ig_status st = ig_gguf_get_u32(g, key, out);
    if (st == IG_ENOTFOUND && !required) return IG_ENOTFOUND;
    if (st != IG_OK)
        return ig_errorf(err, IG_EFORMAT, "model: %s key '%s'",
                         st == IG_ENOTFOUND ? "missing" : "wrongly typed", key);
    return IG_OK;
}

static ig_status get_f32(const ig_gguf *g, const char *arch, const char *suffix, float def,
                         float *out, ig_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    ig_status st = ig_gguf_get_f32(g, key, out);
    if (st == IG_ENOTFOUND) {
        *out = def;
        return IG_OK;
    }
    if (st != IG_OK) return ig_errorf(err, IG_EFORMAT, "model: wrongly typed key '%s'", key);
    return IG_OK;
}

static void llama_free(void *impl) {
    llama_model *m = impl;
    if (!m) return;
    free(m->layers);
    free(m->x);
    free(m->xb);
    free(m->q);
    free(m->k);
    free(m->v);
    free(m->att_out);
    free(m->h1);
    free(m->h3);
    free(m->batched);
    free(m->seq_count);
    free(m->act);
    free(m->packed);
    free(m);
}

/*
 * Move the weight matrices out of the file mapping into one anonymous
 * buffer, 2 MiB-aligned and marked for transparent huge pages where the
 * kernel allows (madvise is only a hint): repacked into the r16 layout
 * (tensor/pack.h) where that pays at this CPU level, so that decode reads
 * each one as a single sequential stream; copied as they are otherwise
 * (f16, bf16, f32, q2_K, q3_K). Streaming from the file's page-cache
 * mapping was much slower than from anonymous memory: F16 TinyLlama decode
 * ran at 12-16 t/s (38-52% of the read bandwidth) from the mapping and 24.7
 * t/s (71-83%) from a copy, 4 runs each, A B B A. The file's pages of a
 * moved matrix are released (they stay readable from the file), so the
 * resident size does not grow. Results are bit-identical either way;
 * IGNIS_REPACK=0 leaves every matrix in the mapping (for comparing). Out of
 * memory leaves the weights as they are (slower, same results).
 */
static void pack_matrices(llama_model *m, const ig_gguf *g, ig_matrix *const *ws, int n) {
    const char *env = getenv("IGNIS_REPACK");
    if (env && strcmp(env, "0") == 0) return;
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += ((size_t)ws[i]->n_rows * ws[i]->row_bytes + 63) & ~(size_t)63;
    if (total == 0) return;
    const size_t huge = (size_t)2 << 20;
    total = (total + huge - 1) & ~(huge - 1);
    uint8_t *buf = aligned_alloc(huge, total);
    if (!buf) return;
#ifdef MADV_HUGEPAGE
    (void)madvise(buf, total, MADV_HUGEPAGE);
#endif
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        ig_matrix *w = ws[i];
        const size_t bytes = (size_t)w->n_rows * w->row_bytes;
        const bool repack = ig_matrix_pack_pays(w);
        if (repack)
            ig_pack_r16(w->type, w->data, w->row_bytes, w->n_rows, buf + at);
        else
            memcpy(buf + at, w->data, bytes);
        ig_gguf_release(g, w->data, bytes);
        w->data = buf + at;
        w->packed = repack;
        at += (bytes + 63) & ~(size_t)63;
    }
    m->packed = buf;
}

static void add_matrix_size(ig_model_desc *d, const ig_matrix *w) {
    d->n_params += w->n_cols * w->n_rows;
    d->weight_bytes += w->row_bytes * (size_t)w->n_rows;
}

ig_status ig__llama_load(const ig_gguf *g, const char *arch, ig_model_desc *desc, void **impl,
                         ig_error *err) {
    ig_status st;
    llama_model *m = calloc(1, sizeof *m);
    if (!m) return ig_errorf(err, IG_ENOMEM, "model: out of memory");
    ig_model_desc *d = &m->d;
    *d = *desc;

    uint32_t n_ctx, n_embd, n_layer, n_ff, n_head, n_head_kv, n_rot, key_len;
    if ((st = get_u32(g, arch, "context_length", true, &n_ctx, err)) ||
        (st = get_u32(g, arch, "embedding_length", true, &n_embd, err)) ||
        (st = get_u32(g, arch, "block_count", true, &n_layer, err)) ||
        (st = get_u32(g, arch, "feed_forward_length", true, &n_ff, err)) ||
        (st = get_u32(g, arch, "attention.head_count", true, &n_head, err)))
        goto fail;
    st = get_u32(g, arch, "attention.head_count_kv", false, &n_head_kv, err);
    if (st == IG_ENOTFOUND)
        n_head_kv = n_head;
    else if (st != IG_OK)
        goto fail;
    if (n_embd == 0 || n_layer == 0 || n_ff == 0 || n_head == 0 || n_head_kv == 0 ||
        n_embd > (1u << 20) || n_layer > 4096 || n_ff > (1u << 22) || n_head > 4096 ||
        n_head % n_head_kv != 0) {
        st = ig_errorf(err, IG_EFORMAT,
                       "model: implausible sizes (embd %u, layers %u, ff %u, heads %u/%u kv)",
                       n_embd, n_layer, n_ff, n_head, n_head_kv);
        goto fail;
    }
    uint32_t head_dim = n_embd / n_head;
    st = get_u32(g, arch, "attention.key_length", false, &key_len, err);
    if (st == IG_OK)
        head_dim = key_len;
    else if (st != IG_ENOTFOUND)
        goto fail;
    if (head_dim == 0 || head_dim > 512 || head_dim * n_head != n_embd) {
        st = ig_errorf(err, IG_EUNSUPPORTED, "model: head size %u x %u heads != embedding %u",
                       head_dim, n_head, n_embd);
        goto fail;
    }
    st = get_u32(g, arch, "rope.dimension_count", false, &n_rot, err);
    if (st == IG_ENOTFOUND)
        n_rot = head_dim;
    else if (st != IG_OK)
        goto fail;
    if (n_rot > head_dim || n_rot % 2) {
        st = ig_errorf(err, IG_EFORMAT, "model: rope dimension %u does not fit head size %u", n_rot,
                       head_dim);
        goto fail;
    }
    d->n_ctx_train = (int32_t)(n_ctx > INT32_MAX ? INT32_MAX : n_ctx);
    d->n_embd = (int32_t)n_embd;
    d->n_layer = (int32_t)n_layer;
    d->n_ff = (int32_t)n_ff;
    d->n_head = (int32_t)n_head;
    d->n_head_kv = (int32_t)n_head_kv;
    d->head_dim = (int32_t)head_dim;
    m->n_rot = (int)n_rot;
    if ((st = get_f32(g, arch, "attention.layer_norm_rms_epsilon", 1e-5f, &m->rms_eps, err)) ||
        (st = get_f32(g, arch, "rope.freq_base", 10000.0f, &m->rope_base, err)))
        goto fail;

    /* RoPE scaling: none or linear; YaRN and others are refused loudly. */
    m->rope_scale = 1.0f;
    {
        char key[128];
        ig_str type = {0};
        snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
        if (ig_gguf_get_str(g, key, &type) == IG_OK && !ig_str_eq(type, "none")) {
            if (!ig_str_eq(type, "linear")) {
                st = ig_errorf(err, IG_EUNSUPPORTED,
                               "model: rope scaling '%.*s' is not supported yet",
                               (int)(type.len > 32 ? 32 : type.len), type.ptr);
                goto fail;
            }
            float factor = 1.0f;
            if ((st = get_f32(g, arch, "rope.scaling.factor", 1.0f, &factor, err))) goto fail;
            if (!(factor > 0.0f)) {
                st = ig_errorf(err, IG_EFORMAT, "model: rope scaling factor %g", (double)factor);
                goto fail;
            }
            m->rope_scale = 1.0f / factor;
        }
    }
    if ((st = bind_vector(g, "rope_freqs.weight", n_rot / 2, true, &m->rope_factors, err)))
        goto fail;

    /* Weights. GGUF shapes are [n_cols (ne0), n_rows (ne1)]. */
    const ig_gguf_tensor *te = ig_gguf_find_tensor(g, "token_embd.weight");
    if (!te || te->n_dims != 2) {
        st = ig_errorf(err, IG_EFORMAT, "model: missing or malformed tensor 'token_embd.weight'");
        goto fail;
    }
    d->n_vocab = (int32_t)te->ne[1];
    if ((st = bind_matrix(g, "token_embd.weight", n_embd, d->n_vocab, &m->tok_embd, err)))
        goto fail;
    add_matrix_size(d, &m->tok_embd);
    if ((st = bind_vector(g, "output_norm.weight", n_embd, false, &m->out_norm, err))) goto fail;
    if (ig_gguf_find_tensor(g, "output.weight")) {
        if ((st = bind_matrix(g, "output.weight", n_embd, d->n_vocab, &m->output, err))) goto fail;
        add_matrix_size(d, &m->output);
    } else {
        m->output = m->tok_embd; /* tied embeddings */
    }
    m->layers = calloc(n_layer, sizeof *m->layers);
    if (!m->layers) {
        st = ig_errorf(err, IG_ENOMEM, "model: out of memory");
        goto fail;
    }
    const int64_t q_dim = (int64_t)n_head * head_dim, kv_dim = (int64_t)n_head_kv * head_dim;
    for (uint32_t l = 0; l < n_layer; l++) {
        llama_layer *L = &m->layers[l];
        char name[96];
#define NAME(s) (snprintf(name, sizeof name, "blk.%u.%s.weight", l, s), name)
        if ((st = bind_vector(g, NAME("attn_norm"), n_embd, false, &L->attn_norm, err)) ||
            (st = bind_matrix(g, NAME("attn_q"), n_embd, q_dim, &L->wq, err)) ||
            (st = bind_matrix(g, NAME("attn_k"), n_embd, kv_dim, &L->wk, err)) ||
            (st = bind_matrix(g, NAME("attn_v"), n_embd, kv_dim, &L->wv, err)) ||
            (st = bind_matrix(g, NAME("attn_output"), q_dim, n_embd, &L->wo, err)) ||
            (st = bind_vector(g, NAME("ffn_norm"), n_embd, false, &L->ffn_norm, err)) ||
            (st = bind_matrix(g, NAME("ffn_gate"), n_embd, n_ff, &L->w_gate, err)) ||
            (st = bind_matrix(g, NAME("ffn_up"), n_embd, n_ff, &L->w_up, err)) ||
            (st = bind_matrix(g, NAME("ffn_down"), n_ff, n_embd, &L->w_down, err)))
            goto fail;
#undef NAME
        if (ig_gguf_find_tensor(
                g, (snprintf(name, sizeof name, "blk.%u.ffn_gate_inp.weight", l), name))) {
            st = ig_errorf(err, IG_EUNSUPPORTED,
                           "model: mixture-of-experts llama models are not supported yet");
            goto fail;
        }
        add_matrix_size(d, &L->wq);
        add_matrix_size(d, &L->wk);
        add_matrix_size(d, &L->wv);
        add_matrix_size(d, &L->wo);
        add_matrix_size(d, &L->w_gate);
        add_matrix_size(d, &L->w_up);
        add_matrix_size(d, &L->w_down);
        d->n_params += 2 * n_embd;
        d->weight_bytes += 2 * n_embd * sizeof(float);
    }
    {
        ig_matrix **ws = calloc((size_t)n_layer * 7 + 1, sizeof *ws);
        if (!ws) {
            st = ig_errorf(err, IG_ENOMEM, "model: out of memory");
            goto fail;
        }
        int n_ws = 0;
        ws[n_ws++] = &m->output;
        for (uint32_t l = 0; l < n_layer; l++) {
            llama_layer *L = &m->layers[l];
            ig_matrix *lw[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
            for (int i = 0; i < 7; i++) ws[n_ws++] = lw[i];
        }
        pack_matrices(m, g, ws, n_ws);
        free(ws);
    }
    *desc = *d;
    *impl = m;
    return IG_OK;
fail:
    llama_free(m);
    return st;
}

/* ---- forward ---- */

static ig_status reserve(llama_model *m, int n_tokens, int n_seqs, ig_error *err) {
    const ig_model_desc *d = &m->d;
    if (n_tokens > m->cap_tokens) {
        const size_t n = (size_t)n_tokens;
        const size_t q_dim = (size_t)d->n_head * d->head_dim;
        const size_t kv_dim = (size_t)d->n_head_kv * d->head_dim;
        float *bufs[8] = {
            realloc(m->x, n * d->n_embd * sizeof(float)),
            realloc(m->xb, n * d->n_embd * sizeof(float)),
            realloc(m->q, n * q_dim * sizeof(float)),
            realloc(m->k, n * kv_dim * sizeof(float)),
            realloc(m->v, n * kv_dim * sizeof(float)),
            realloc(m->att_out, n * q_dim * sizeof(float)),
            realloc(m->h1, n * d->n_ff * sizeof(float)),
            realloc(m->h3, n * d->n_ff * sizeof(float)),
        };
        /* realloc either moved a buffer or left it: keep whatever we got so nothing leaks */
        float **slots[8] = {&m->x, &m->xb, &m->q, &m->k, &m->v, &m->att_out, &m->h1, &m->h3};
        bool ok = true;
        for (int i = 0; i < 8; i++) {
            if (bufs[i])
                *slots[i] = bufs[i];
            else
                ok = false;
        }
        uint8_t *bt = realloc(m->batched, n);
        if (bt) m->batched = bt;
        if (!ok || !bt)
            return ig_errorf(err, IG_ENOMEM, "forward: out of memory for %d tokens", n_tokens);
        m->cap_tokens = n_tokens;
    }
    if (n_seqs > m->cap_seqs) {
        int *c = realloc(m->seq_count, (size_t)n_seqs * sizeof(int));
        if (!c) return ig_errorf(err, IG_ENOMEM, "forward: out of memory for %d sequences", n_seqs);
        m->seq_count = c;
        m->cap_seqs = n_seqs;
    }
    if (n_tokens > m->cap_act_tokens) {
        size_t need = ig_matmul_scratch_bytes(&m->output, n_tokens), b;
        for (int l = 0; l < d->n_layer; l++) {
            const llama_layer *L = &m->layers[l];
            const ig_matrix *ws[7] = {&L->wq,     &L->wk,   &L->wv,    &L->wo,
                                      &L->w_gate, &L->w_up, &L->w_down};
            for (int i = 0; i < 7; i++)
                if ((b = ig_matmul_scratch_bytes(ws[i], n_tokens)) > need) need = b;
        }
        void *a = realloc(m->act, need ? need : 1);
        if (!a) return ig_errorf(err, IG_ENOMEM, "forward: out of memory for %d tokens", n_tokens);
        m->act = a;
        m->cap_act_tokens = n_tokens;
    }
    return IG_OK;
}

/*
 * Attention for the batch, as llama.cpp computes it on the CPU with its
 * defaults (flash attention "auto" resolves to on for the CPU backend; K and
 * V cached as F16). Its ggml_flash_attn_ext kernel takes the per-row path
 * ("one_chunk") here: the tiled path needs >= 64 queries in the ubatch and
 * head_dim a multiple of 16, and the split-KV decode path >= 512 cached
 * positions; the per-row path gives a token the same numbers in a prompt
 * batch and in decode. For the tiled and split paths (long prompts, long
 * contexts) llama.cpp keeps Q and the accumulator in F32; this path stays the
 * same for every token, so a token's result never depends on the batch
 * around it. The rounding points are listed in kernels/attention.h.
 *
 * Work items are (token, KV head) pairs: the query heads of one group share
 * each K and V row. Threads take them interleaved (a prompt's later tokens
 * attend to more positions, so contiguous ranges would be uneven).
 */
typedef struct {
    const llama_model *m;
    const ig_kv_cache *kv;
    const ig_batch *b;
    int layer;
} attn_job;

static void attn_worker(void *ctx, int ith, int nth) {
    const attn_job *j = ctx;
    const llama_model *m = j->m;
    const ig_kv_cache *kv = j->kv;
    const int hd = m->d.head_dim, n_kv_head = m->d.n_head_kv, group = m->d.n_head / n_kv_head;
    const size_t q_dim = (size_t)m->d.n_head * hd;
    const long n_items = (long)j->b->n_tokens * n_kv_head;
    for (long t = ith; t < n_items; t += nth) {
        const int i = (int)(t / n_kv_head), g = (int)(t % n_kv_head);
        const ig_batch_seq *s = &j->b->seqs[j->b->seq[i]];
        const ig_attn_kv view = {
            .k = kv->k,
            .v = kv->v,
            .block_table = s->block_table,
            .block_size = kv->block_size,
            .block_stride = (size_t)kv->n_layer * kv->block_size * kv->kv_dim,
            .offset = ((size_t)j->layer * kv->block_size) * kv->kv_dim + (size_t)g * hd,
            .slot_stride = (size_t)kv->kv_dim,
        };
        const size_t at = (size_t)i * q_dim + (size_t)g * group * hd;
        ig_attend_f16(&view, hd, j->b->pos[i] + 1, m->q + at, group, m->att_out + at);
    }
}

/*
 * y = W x for the batch. F32 weights sum in llama.cpp's orders: its batched
 * matmul (tinyBLAS) for tokens the caller marks as prefill, its one-token
 * order otherwise (see ig_batch.prefill). llama.cpp itself picks by the size
 * of the whole batch, so it is not invariant to chunking; here the choice is
 * the caller's, per token.
 */
static void project(llama_model *m, ig_pool *pool, const ig_matrix *w, const float *x, int n,
                    float *y) {
    if (w->type == IG_TYPE_F32)
        ig_matmul_f32_ordered(pool, w, x, n, m->batched, y);
    else
        ig_matmul(pool, w, x, n, y, m->act);
}

/*
 * The per-token steps between the matmuls (RMSNorm; RoPE and the K/V cache
 * write; SwiGLU), split over the pool by token: each token's numbers are
 * computed exactly as alone, so this changes no value, only which thread
 * computes it.
 */
typedef enum { TOK_ATTN_NORM, TOK_ROPE_KV, TOK_FFN_NORM, TOK_SWIGLU } tok_step;

typedef struct {
    llama_model *m;
    const ig_batch *b;
    ig_kv_cache *kv;
    const llama_layer *L;
    int layer;
    tok_step step;
} tok_job;

static void tok_range(const tok_job *j, long lo, long hi) {
    llama_model *m = j->m;
    const ig_model_desc *d = &m->d;
    const int E = d->n_embd, hd = d->head_dim;
    const int q_dim = d->n_head * hd, kv_dim = d->n_head_kv * hd;
    for (long i = lo; i < hi; i++) {
        switch (j->step) {
        case TOK_ATTN_NORM:
        case TOK_FFN_NORM:
            ig_rmsnorm(m->xb + (size_t)i * E, m->x + (size_t)i * E,
                       j->step == TOK_ATTN_NORM ? j->L->attn_norm : j->L->ffn_norm, E, m->rms_eps);
            break;
        case TOK_ROPE_KV: {
            const ig_batch *b = j->b;
            ig_kv_cache *kv = j->kv;
            float cs[2 * IG_ROPE_MAX_ROT]; /* n_rot <= head_dim <= 512 (checked at load) */
            ig_rope_table(cs, m->n_rot, b->pos[i], m->rope_base, m->rope_scale, m->rope_factors);
            for (int h = 0; h < d->n_head; h++)
                ig_rope_apply(m->q + (size_t)i * q_dim + h * hd, hd, m->n_rot, cs, 0);
            for (int h = 0; h < d->n_head_kv; h++)
                ig_rope_apply(m->k + (size_t)i * kv_dim + h * hd, hd, m->n_rot, cs, 0);
            /* write this token's K and V (F16) into its sequence's cache slot */
            const ig_batch_seq *s = &b->seqs[b->seq[i]];
            const int p = b->pos[i];
            const size_t off =
                ig_kv_offset(kv, s->block_table[p / kv->block_size], j->layer, p % kv->block_size);
            /* f32 -> F16 with the F16 weights' activation converter: ig_fp32_to_fp16's bits,
             * vcvtps2ph at the x86 levels */
            const ig_dot_kernel *f16 = ig_dot_kernel_get(IG_TYPE_F16, ig_cpu_level_get());
            f16->quantize_act(m->k + (size_t)i * kv_dim, kv->k + off, kv_dim);
            f16->quantize_act(m->v + (size_t)i * kv_dim, kv->v + off, kv_dim);
            break;
        }
        case TOK_SWIGLU:
            ig_silu_mul(m->h1 + (size_t)i * d->n_ff, m->h3 + (size_t)i * d->n_ff, d->n_ff);
            break;
        }
    }
}

static void tok_worker(void *ctx, int ith, int nth) {
    const tok_job *j = ctx;
    long lo, hi;
    ig_pool_range(j->b->n_tokens, ith, nth, &lo, &hi);
    tok_range(j, lo, hi);
}

static void per_token(ig_pool *pool, tok_job *j, tok_step step) {
    j->step = step;
    if (j->b->n_tokens == 1)
        tok_range(j, 0, 1); /* not worth waking the pool */
    else
        ig_pool_run(pool, tok_worker, j);
}

/* project() for matrices sharing the input x, in one pass of the pool where it can. */
static void project_n(llama_model *m, ig_pool *pool, int n_w, const ig_matrix *const *ws,
                      const float *x, int n, float *const *ys) {
    if (ws[0]->type == IG_TYPE_F32) {
        for (int i = 0; i < n_w; i++) project(m, pool, ws[i], x, n, ys[i]);
        return;
    }
    ig_matmul_n(pool, n_w, ws, x, n, ys, m->act);
}

static ig_status llama_forward(void *impl, const ig_batch *b, ig_kv_cache *kv, ig_pool *pool,
                               float *logits, ig_error *err) {
    llama_model *m = impl;
    const ig_model_desc *d = &m->d;
    const int n = b->n_tokens, E = d->n_embd;
    ig_status st = reserve(m, n, b->n_seqs, err);
    if (st != IG_OK) return st;

    /* per sequence: how many of its tokens want logits (llama.cpp's output
     * matmul is batched only for >= 2 rows) */
    int *n_want = m->seq_count;
    memset(n_want, 0, (size_t)b->n_seqs * sizeof(int));
    for (int i = 0; i < n; i++) {
        n_want[b->seq[i]] += b->want_logits ? b->want_logits[i] != 0 : i == n - 1;
        m->batched[i] = b->prefill && b->prefill[i];
    }

    /* x: [n, n_embd] token embeddings */
    for (int i = 0; i < n; i++) ig_matrix_get_row(&m->tok_embd, b->tokens[i], m->x + (size_t)i * E);

    for (int l = 0; l < d->n_layer; l++) {
        const llama_layer *L = &m->layers[l];
        tok_job tj = {m, b, kv, L, l, TOK_ATTN_NORM};
        /* attention block */
        per_token(pool, &tj, TOK_ATTN_NORM);
        /* q [n, n_head * hd], k and v [n, n_head_kv * hd] */
        const ig_matrix *qkv[3] = {&L->wq, &L->wk, &L->wv};
        float *qkv_out[3] = {m->q, m->k, m->v};
        project_n(m, pool, 3, qkv, m->xb, n, qkv_out);
        per_token(pool, &tj, TOK_ROPE_KV);
        attn_job aj = {m, kv, b, l};
        ig_pool_run(pool, attn_worker, &aj);            /* [n, n_head * hd] into att_out */
        project(m, pool, &L->wo, m->att_out, n, m->xb); /* [n, n_embd] */
        for (size_t j = 0; j < (size_t)n * E; j++) m->x[j] += m->xb[j];

        /* feed-forward block */
        per_token(pool, &tj, TOK_FFN_NORM);
        const ig_matrix *gu[2] = {&L->w_gate, &L->w_up}; /* [n, n_ff] each */
        float *gu_out[2] = {m->h1, m->h3};
        project_n(m, pool, 2, gu, m->xb, n, gu_out);
        per_token(pool, &tj, TOK_SWIGLU);
        project(m, pool, &L->w_down, m->h1, n, m->xb); /* [n, n_embd] */
        for (size_t j = 0; j < (size_t)n * E; j++) m->x[j] += m->xb[j];
    }

    /* final norm and logits, only for the tokens that want them; llama.cpp's
     * output matmul is batched when a sequence asks for >= 2 rows of logits */
    int n_out = 0;
    for (int i = 0; i < n; i++) {
        bool want = b->want_logits ? b->want_logits[i] != 0 : i == n - 1;
        if (!want) continue;
        ig_rmsnorm(m->xb + (size_t)n_out * E, m->x + (size_t)i * E, m->out_norm, E, m->rms_eps);
        m->batched[n_out] = b->prefill && b->prefill[i] && n_want[b->seq[i]] >= 2;
        n_out++;
    }
    if (n_out > 0) project(m, pool, &m->output, m->xb, n_out, logits); /* [n_out, n_vocab] */
    return IG_OK;
}

const ig_model_ops ig__llama_ops = {
    .name = "llama",
    .forward = llama_forward,
    .free = llama_free,
};
