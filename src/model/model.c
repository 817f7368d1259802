/*
 * model.c: loading a model file into the right architecture, the KV cache
 * pool, and batch validation in front of every forward pass.
 */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

typedef struct {
    const char *arch;
    ig_arch_load_fn load;
    const ig_model_ops *ops;
} arch_entry;

/* Architectures that share the Llama graph (Mistral files say "llama" too). */
static const arch_entry ARCHES[] = {
    {"llama", ig__llama_load, &ig__llama_ops},
};

ig_status ig_kv_cache_new(int32_t n_layer, int32_t kv_dim, int32_t block_size, int32_t n_blocks,
                          ig_kv_cache **out, ig_error *err) {
    if (n_layer <= 0 || kv_dim <= 0 || block_size <= 0 || n_blocks <= 0)
        return ig_errorf(err, IG_EINVAL, "kv cache: bad geometry (%d layers, kv_dim %d, block %d, %d blocks)",
                         n_layer, kv_dim, block_size, n_blocks);
    ig_kv_cache *kv = calloc(1, sizeof *kv);
    if (!kv) return ig_errorf(err, IG_ENOMEM, "kv cache: out of memory");
    size_t n = (size_t)n_blocks * n_layer * block_size * kv_dim;
    kv->k = calloc(n, sizeof *kv->k);
    kv->v = calloc(n, sizeof *kv->v);
    if (!kv->k || !kv->v) {
        ig_kv_cache_free(kv);
        return ig_errorf(err, IG_ENOMEM, "kv cache: cannot allocate %zu MiB",
                         2 * n * sizeof(uint16_t) >> 20);
    }
    kv->n_layer = n_layer;
    kv->kv_dim = kv_dim;
    kv->block_size = block_size;
    kv->n_blocks = n_blocks;
    *out = kv;
    return IG_OK;
}

void ig_kv_cache_free(ig_kv_cache *kv) {
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv);
}

static void set_name(ig_model_desc *d, const ig_gguf *g, const char *path) {
    ig_str s;
    if (ig_gguf_get_str(g, "general.name", &s) == IG_OK && s.len > 0) {
        snprintf(d->name, sizeof d->name, "%.*s", (int)(s.len < 127 ? s.len : 127), s.ptr);
        return;
    }
    const char *base = strrchr(path, '/');
    snprintf(d->name, sizeof d->name, "%s", base ? base + 1 : path);
}

ig_status ig_model_load(const char *path, ig_model **out, ig_error *err) {
    ig_status st;
    ig_model *m = calloc(1, sizeof *m);
    if (!m) return ig_errorf(err, IG_ENOMEM, "model: out of memory");
    if ((st = ig_gguf_open(path, &m->gguf, err)) != IG_OK) goto fail;

    ig_str arch_s;
    if (ig_gguf_get_str(m->gguf, "general.architecture", &arch_s) != IG_OK) {
        st = ig_errorf(err, IG_EFORMAT, "%s: no general.architecture key: not a model file", path);
        goto fail;
    }
    char arch[32];
    snprintf(arch, sizeof arch, "%.*s", (int)(arch_s.len < 31 ? arch_s.len : 31), arch_s.ptr);
    const arch_entry *ent = NULL;
    for (size_t i = 0; i < sizeof ARCHES / sizeof ARCHES[0]; i++)
        if (strcmp(ARCHES[i].arch, arch) == 0) ent = &ARCHES[i];
    if (!ent) {
        st = ig_errorf(err, IG_EUNSUPPORTED, "%s: architecture '%s' is not supported (supported: llama)",
                       path, arch);
        goto fail;
    }
    m->desc.file_type = UINT32_MAX;
    ig_gguf_get_u32(m->gguf, "general.file_type", &m->desc.file_type);
    snprintf(m->desc.arch, sizeof m->desc.arch, "%s", arch);
    set_name(&m->desc, m->gguf, path);
    if ((st = ent->load(m->gguf, arch, &m->desc, &m->impl, err)) != IG_OK) goto fail;
    m->ops = ent->ops;
    if ((st = ig_vocab_load(m->gguf, &m->vocab, err)) != IG_OK) goto fail;
    if (m->vocab->n_tokens != m->desc.n_vocab) {
        st = ig_errorf(err, IG_EFORMAT, "%s: tokenizer has %d tokens but the output layer has %d",
                       path, m->vocab->n_tokens, m->desc.n_vocab);
        goto fail;
    }
    *out = m;
    return IG_OK;
fail:
    ig_model_free(m);
    return st;
}

void ig_model_free(ig_model *m) {
    if (!m) return;
    if (m->ops && m->impl) m->ops->free(m->impl);
    ig_vocab_free(m->vocab);
    ig_gguf_free(m->gguf);
    free(m);
}

ig_status ig_model_forward(ig_model *m, const ig_batch *b, ig_kv_cache *kv, ig_pool *pool,
                           float *logits, ig_error *err) {
    if (!b || b->n_tokens <= 0 || !b->tokens || !b->pos || !b->seq || !b->seqs || b->n_seqs <= 0)
        return ig_errorf(err, IG_EINVAL, "forward: empty or incomplete batch");
    if (kv->n_layer != m->desc.n_layer || kv->kv_dim != m->desc.n_head_kv * m->desc.head_dim)
        return ig_errorf(err, IG_EINVAL, "forward: kv cache geometry does not fit the model");
    for (int32_t i = 0; i < b->n_tokens; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= m->desc.n_vocab)
            return ig_errorf(err, IG_EINVAL, "forward: token %d at index %d is outside the vocabulary (%d)",
                             b->tokens[i], i, m->desc.n_vocab);
        if (b->seq[i] < 0 || b->seq[i] >= b->n_seqs)
            return ig_errorf(err, IG_EINVAL, "forward: token %d names sequence %d of %d", i, b->seq[i],
                             b->n_seqs);
        const ig_batch_seq *s = &b->seqs[b->seq[i]];
        if (b->pos[i] < 0 || b->pos[i] >= s->n_blocks * kv->block_size)
            return ig_errorf(err, IG_EINVAL, "forward: position %d is outside its %d cache blocks",
                             b->pos[i], s->n_blocks);
    }
    for (int32_t s = 0; s < b->n_seqs; s++)
        for (int32_t j = 0; j < b->seqs[s].n_blocks; j++)
            if (b->seqs[s].block_table[j] < 0 || b->seqs[s].block_table[j] >= kv->n_blocks)
                return ig_errorf(err, IG_EINVAL, "forward: sequence %d names block %d of %d", s,
                                 b->seqs[s].block_table[j], kv->n_blocks);
    return m->ops->forward(m->impl, b, kv, pool, logits, err);
}
