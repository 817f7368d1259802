/*
 * gen_model.h: write a Llama-architecture GGUF with random weights in a named
 * real shape (TinyLlama, Llama 2 7B, ...) and any supported weight type, for
 * benchmarks and tests. Speed does not depend on the weights' values, so such
 * a file stands in for the real model; the tokenizer (every tokenizer.* key)
 * is copied from a vocabulary GGUF, whose size sets the vocabulary.
 *
 * Weights: row r of tensor i is drawn from its own PRNG stream seeded by
 * (seed, i, r), so the file does not depend on the number of threads.
 * Matrices are approximately N(0, 1/fan_in) (a sum of four uniforms), norm
 * weights 1 ± 0.05. Rows are generated a few at a time by every thread of the
 * pool and written straight to the file (gguf_writer.h), so memory stays
 * small whatever the model size. Quantized matrices are, by default, built
 * from a pool of quantized random blocks (128 Ki values) per (type, fan_in), each block
 * of each row picked at random: every block is a genuine quantized random
 * block, and a TinyLlama file takes seconds instead of minutes (the
 * reference quantizers search every block's scale). is_exact quantizes every
 * row instead.
 *
 * Weight types: a plain type name (f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k
 * q3_k q4_k q5_k q6_k) puts every matrix in that type ("pure"); norms are
 * always f32. `q4_k_m` follows llama.cpp's Q4_K_M preset: q4_K everywhere
 * except output.weight and, in the layers the use-more-bits rule picks (the
 * first and last eighth of the layers and every third one between), attn_v
 * and ffn_down, which are q6_K. A k-quant matrix whose rows are not a whole
 * number of 256-value blocks (qwen2-0.5b's 896) falls back as llama.cpp does:
 * q4_K → q5_0, q5_K → q5_1, q6_K → q8_0, q2_K/q3_K → q4_0 (llama.cpp uses
 * IQ4_NL, which Ignis does not run).
 */
#ifndef IG_MODEL_GEN_MODEL_H
#define IG_MODEL_GEN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/threadpool.h"
#include "ignis.h"

typedef struct ig_gen_shape {
    const char *name;  /* "tinyllama-1.1b" */
    int32_t n_layer;   /* transformer blocks */
    int32_t n_embd;    /* hidden size */
    int32_t n_ff;      /* feed-forward size */
    int32_t n_head;    /* query heads */
    int32_t n_head_kv; /* key/value heads */
    int32_t n_ctx;     /* context_length written to the file */
    float rope_base;   /* rope.freq_base */
    float rms_eps;     /* attention.layer_norm_rms_epsilon */
    bool is_tied;      /* no output.weight: the output reuses token_embd */
    const char *about; /* one line for --help */
} ig_gen_shape;

/* The named shapes, in a fixed order: i in [0, ig_gen_shape_count()). */
size_t ig_gen_shape_count(void);
const ig_gen_shape *ig_gen_shape_at(size_t i);
/* The shape called `name` (case-insensitive), or NULL. */
const ig_gen_shape *ig_gen_shape_find(const char *name);

/* Whether `name` is a weight type gen-model can write (see above; case-insensitive). */
bool ig_gen_wtype_is_valid(const char *name);

/*
 * The ig_type that `wtype` gives matrix `tensor` ("blk.3.attn_v.weight",
 * "output.weight", ...) of a model with n_layer layers whose rows hold n_cols
 * values, after the fallbacks above. `wtype` must be valid.
 */
uint32_t ig_gen_tensor_type(const char *wtype, const char *tensor, int32_t n_layer, int64_t n_cols);

typedef struct ig_gen_model_params {
    const ig_gen_shape *shape; /* borrowed */
    const char *wtype;         /* weight type name, as above */
    const char *vocab_path;    /* GGUF holding the tokenizer.* keys */
    const char *out_path;      /* created or overwritten */
    uint64_t seed;             /* PRNG seed */
    bool is_exact;             /* quantize every row instead of drawing blocks from a pool */
} ig_gen_model_params;

/*
 * Write the model. `pool` may be NULL (one thread). Errors: IG_EINVAL (NULL
 * or unknown parameters), the reader's errors for the vocabulary file,
 * IG_EFORMAT (it has no tokenizer.ggml.tokens array), IG_EIO (writing),
 * IG_ENOMEM. On failure no output file is left behind.
 */
ig_status ig_gen_model(const ig_gen_model_params *p, ig_pool *pool, ig_error *err);

#endif
