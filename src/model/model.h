/*
 * model.h: a loaded model behind the model ops table, the batch that a
 * forward pass runs over, and the paged KV cache it reads and writes.
 *
 * Model of use
 * ------------
 * ig_model_load() opens a GGUF file (mmap: weights are never copied), picks the
 * architecture by `general.architecture`, binds and validates every weight
 * and loads the tokenizer. The model then answers `forward(batch)`: a ragged
 * batch of tokens from one or more sequences, each token with its position and
 * its sequence's KV block table; it writes each token's K and V into the
 * cache and returns logits for the tokens that ask for them.
 *
 * Threads: a model's weights are immutable and may be shared, but forward()
 * uses per-model scratch buffers, so one thread at a time calls forward() on a
 * given model (the engine thread). Kernel worker threads run only inside it.
 *
 * Custom models plug in by filling an ig_model_ops table (see ig_model_wrap).
 */
#ifndef IG_MODEL_MODEL_H
#define IG_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/threadpool.h"
#include "format/gguf.h"
#include "ignis.h"
#include "tokenizer/vocab.h"

/* What the scheduler and the command line need to know about a model. */
typedef struct ig_model_desc {
    char arch[32];         /* general.architecture */
    char name[128];        /* general.name, or the file name */
    int32_t n_vocab;       /* logits per token */
    int32_t n_layer;       /* transformer blocks */
    int32_t n_embd;        /* hidden size */
    int32_t n_ff;          /* feed-forward size */
    int32_t n_head;        /* query heads */
    int32_t n_head_kv;     /* key/value heads (GQA when < n_head) */
    int32_t head_dim;      /* values per head */
    int32_t n_ctx_train;   /* context length the model was trained for */
    int64_t n_params;      /* weights, counted in values */
    size_t weight_bytes;   /* bytes of all weights as stored */
    uint32_t file_type;    /* general.file_type, or UINT32_MAX if absent */
} ig_model_desc;

/*
 * The KV cache: a pool of fixed-size blocks. Block b holds, for every layer,
 * block_size token slots of kv_dim F16 values for K and likewise for V:
 * k[((b * n_layer + layer) * block_size + slot) * kv_dim + i].
 * Who allocates blocks to sequences is the caller's business (the engine's
 * block manager, or one contiguous table for a single sequence).
 */
typedef struct ig_kv_cache {
    int32_t n_layer;    /* layers */
    int32_t kv_dim;     /* n_head_kv * head_dim */
    int32_t block_size; /* token slots per block */
    int32_t n_blocks;   /* blocks in the pool */
    uint16_t *k;        /* F16 keys */
    uint16_t *v;        /* F16 values */
} ig_kv_cache;

ig_status ig_kv_cache_new(int32_t n_layer, int32_t kv_dim, int32_t block_size, int32_t n_blocks,
                          ig_kv_cache **out, ig_error *err);
void ig_kv_cache_free(ig_kv_cache *kv);

static inline size_t ig_kv_offset(const ig_kv_cache *kv, int32_t block, int32_t layer,
                                  int32_t slot) {
    return (((size_t)block * kv->n_layer + layer) * kv->block_size + slot) * kv->kv_dim;
}

/* One sequence's view of the cache: block_table[i] holds positions [i*bs, (i+1)*bs). */
typedef struct ig_batch_seq {
    const int32_t *block_table;
    int32_t n_blocks;
} ig_batch_seq;

/*
 * A ragged batch. Tokens of one sequence appear in increasing position order;
 * a token at position p attends to positions 0..p of its sequence (earlier
 * ones must already be in the cache or earlier in this batch).
 */
typedef struct ig_batch {
    int32_t n_tokens;
    const int32_t *tokens;     /* [n_tokens] token ids */
    const int32_t *pos;        /* [n_tokens] position within its sequence */
    const int32_t *seq;        /* [n_tokens] index into seqs */
    const uint8_t *want_logits; /* [n_tokens] 1: write this token's logits; NULL: last token only */
    int32_t n_seqs;
    const ig_batch_seq *seqs;  /* [n_seqs] */
    /* [n_tokens] or NULL (all 0). 1: compute this token as llama.cpp computes a
     * token of a multi-token prompt pass; 0: as it computes a one-token decode
     * step. It only changes the summation order of F32 weight matmuls (see
     * kernels/f32order.h), and it is what lets an F32 model match llama.cpp's
     * outputs bit for bit; a token's numbers depend on its own flag only, never
     * on the rest of the batch. Leave NULL when chunking invariance matters
     * more than matching llama.cpp (the engine does). */
    const uint8_t *prefill;
} ig_batch;

/* The seam every architecture (or user-supplied model) implements. */
typedef struct ig_model_ops {
    const char *name;
    /*
     * Run the batch: write K/V for every token into kv, and logits for each
     * token that wants them into `logits` ([n_out][n_vocab], in batch order).
     * Errors: IG_EINVAL for a token id, position or block outside its range.
     */
    ig_status (*forward)(void *impl, const ig_batch *batch, ig_kv_cache *kv, ig_pool *pool,
                         float *logits, ig_error *err);
    /* Release impl. */
    void (*free)(void *impl);
} ig_model_ops;

typedef struct ig_model {
    const ig_model_ops *ops;
    void *impl;
    ig_model_desc desc;
    ig_vocab *vocab; /* owned; NULL for a custom model without one */
    ig_gguf *gguf;   /* owned: the mapping the weights point into; NULL for custom */
} ig_model;

/* Load a GGUF model file. */
ig_status ig_model_load(const char *path, ig_model **out, ig_error *err);
void ig_model_free(ig_model *m);

/* Run a batch through the model (checks the batch, then calls ops->forward). */
ig_status ig_model_forward(ig_model *m, const ig_batch *batch, ig_kv_cache *kv, ig_pool *pool,
                           float *logits, ig_error *err);

/* ---- between the model's own files ---- */

/* An architecture's loader: bind weights of g into a new impl, fill desc. */
typedef ig_status (*ig_arch_load_fn)(const ig_gguf *g, const char *arch, ig_model_desc *desc,
                                     void **impl, ig_error *err);
ig_status ig__llama_load(const ig_gguf *g, const char *arch, ig_model_desc *desc, void **impl,
                         ig_error *err);
extern const ig_model_ops ig__llama_ops;

#endif
