/*
 * gen_model.c: random-weight Llama GGUF files in real shapes (see gen_model.h).
 *
 * Work is split per matrix: every thread of the pool takes a contiguous range
 * of its rows and, a chunk of rows at a time, draws them, quantizes them with
 * the reference quantizer and writes them at their place in the file. Only
 * the chunk buffers (about 256 KiB of floats per thread) are ever in memory.
 */
#include "model/gen_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"
#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "tensor/types.h"

/* Values per chunk of rows a thread draws and quantizes before writing. */
#define CHUNK_VALUES (64 * 1024)

static const ig_gen_shape SHAPES[] = {
    {"tiny", 2, 256, 768, 8, 2, 256, 10000.0f, 1e-5f, false,
     "2 layers, dim 256, ffn 768, 8/2 heads (like the synth test models)"},
    {"small", 4, 512, 1536, 8, 4, 512, 10000.0f, 1e-5f, false,
     "4 layers, dim 512, ffn 1536, 8/4 heads"},
    {"tinyllama-1.1b", 22, 2048, 5632, 32, 4, 2048, 10000.0f, 1e-5f, false,
     "TinyLlama 1.1B: 22 layers, dim 2048, ffn 5632, 32/4 heads"},
    {"llama-7b", 32, 4096, 11008, 32, 32, 4096, 10000.0f, 1e-5f, false,
     "Llama 2 7B: 32 layers, dim 4096, ffn 11008, 32/32 heads"},
    {"llama3-8b", 32, 4096, 14336, 32, 8, 8192, 500000.0f, 1e-5f, false,
     "Llama 3 8B: 32 layers, dim 4096, ffn 14336, 32/8 heads, rope base 500000"},
    {"qwen2-0.5b", 24, 896, 4864, 14, 2, 32768, 1000000.0f, 1e-6f, true,
     "Qwen2 0.5B's sizes as a llama file (no attention biases), tied output"},
};

size_t ig_gen_shape_count(void) {
    return sizeof SHAPES / sizeof SHAPES[0];
}

const ig_gen_shape *ig_gen_shape_at(size_t i) {
    return i < ig_gen_shape_count() ? &SHAPES[i] : NULL;
}

const ig_gen_shape *ig_gen_shape_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < ig_gen_shape_count(); i++)
        if (!strcasecmp(SHAPES[i].name, name)) return &SHAPES[i];
    return NULL;
}

/* A weight-type name, the ig_type of its matrices, and llama.cpp's general.file_type. */
typedef struct {
    const char *name;
    uint32_t type;
    uint32_t file_type; /* LLAMA_FTYPE_*: pure k-types get the nearest _S preset's number */
} wtype_row;

static const wtype_row WTYPES[] = {
    {"f32", IG_TYPE_F32, 0},    {"f16", IG_TYPE_F16, 1},      {"bf16", IG_TYPE_BF16, 32},
    {"q8_0", IG_TYPE_Q8_0, 7},  {"q4_0", IG_TYPE_Q4_0, 2},    {"q4_1", IG_TYPE_Q4_1, 3},
    {"q5_0", IG_TYPE_Q5_0, 8},  {"q5_1", IG_TYPE_Q5_1, 9},    {"q2_k", IG_TYPE_Q2_K, 10},
    {"q3_k", IG_TYPE_Q3_K, 11}, {"q4_k", IG_TYPE_Q4_K, 14},   {"q5_k", IG_TYPE_Q5_K, 16},
    {"q6_k", IG_TYPE_Q6_K, 18}, {"q4_k_m", IG_TYPE_Q4_K, 15},
};

static const wtype_row *wtype_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof WTYPES / sizeof WTYPES[0]; i++)
        if (!strcasecmp(WTYPES[i].name, name)) return &WTYPES[i];
    return NULL;
}

bool ig_gen_wtype_is_valid(const char *name) {
    return wtype_find(name) != NULL;
}

/* llama.cpp's use_more_bits: the first and last eighth of the layers, and every third between. */
static bool use_more_bits(int32_t i, int32_t n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* The layer number in "blk.N.xxx", or -1. */
static int32_t layer_of(const char *tensor) {
    int32_t l;
    if (sscanf(tensor, "blk.%d.", &l) == 1) return l;
    return -1;
}

uint32_t ig_gen_tensor_type(const char *wtype, const char *tensor, int32_t n_layer,
                            int64_t n_cols) {
    const wtype_row *w = wtype_find(wtype);
    IG_ASSERT(w);
    uint32_t t = w->type;
    if (!strcasecmp(w->name, "q4_k_m")) {
        int32_t l = layer_of(tensor);
        if (!strcmp(tensor, "output.weight"))
            t = IG_TYPE_Q6_K;
        else if (l >= 0 && (strstr(tensor, ".attn_v.") || strstr(tensor, ".ffn_down.")) &&
                 use_more_bits(l, n_layer))
            t = IG_TYPE_Q6_K;
    }
    const ig_type_traits *tr = ig_type_get(t);
    if (n_cols % tr->blck_size != 0) {
        switch (t) {
        case IG_TYPE_Q2_K:
        case IG_TYPE_Q3_K:
            t = IG_TYPE_Q4_0;
            break;
        case IG_TYPE_Q4_K:
            t = IG_TYPE_Q5_0;
            break;
        case IG_TYPE_Q5_K:
            t = IG_TYPE_Q5_1;
            break;
        case IG_TYPE_Q6_K:
            t = IG_TYPE_Q8_0;
            break;
        default:
            t = IG_TYPE_F16;
            break;
        }
        if (n_cols % ig_type_get(t)->blck_size != 0) t = IG_TYPE_F32;
    }
    return t;
}

/* ---- random numbers ---- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* The PRNG state for row `row` of tensor `tensor`: one independent stream per row. */
static uint64_t row_state(uint64_t seed, int64_t tensor, int64_t row) {
    uint64_t s = seed;
    uint64_t a = splitmix64(&s);
    s = a ^ ((uint64_t)tensor * UINT64_C(0xD1B54A32D192ED03));
    uint64_t b = splitmix64(&s);
    s = b ^ ((uint64_t)row * UINT64_C(0x8CB92BA72F3D8DD7));
    return splitmix64(&s);
}

/*
 * Approximately standard normal: the sum of four 16-bit uniforms (Irwin-Hall),
 * centred and scaled to unit variance. Cheap, which matters for a billion
 * values; the tails stop at ±3.46, which is fine for stand-in weights.
 */
static inline float approx_normal(uint64_t *s) {
    uint64_t r = splitmix64(s);
    uint32_t sum = (uint32_t)(r & 0xFFFF) + (uint32_t)((r >> 16) & 0xFFFF) +
                   (uint32_t)((r >> 32) & 0xFFFF) + (uint32_t)(r >> 48);
    return ((float)sum - 131070.0f) * (1.0f / 37837.23f);
}

/* ---- the tensors ---- */

typedef enum { KIND_MATRIX, KIND_NORM } tensor_kind;

typedef struct {
    char name[64];
    int64_t n_cols, n_rows;
    uint32_t type;
    tensor_kind kind;
} tensor_plan;

/* The tensors of the model, in file order; returns the count (at most 2 + 9 * n_layer + 1). */
static int64_t plan_tensors(const ig_gen_shape *s, const char *wtype, int64_t n_vocab,
                            tensor_plan *out) {
    const int64_t head_dim = s->n_embd / s->n_head;
    const int64_t q_dim = head_dim * s->n_head, kv_dim = head_dim * s->n_head_kv;
    int64_t n = 0;
#define ADD(nm, cols, rows, kd)                                                                    \
    do {                                                                                           \
        tensor_plan *t = &out[n++];                                                                \
        snprintf(t->name, sizeof t->name, "%s", nm);                                               \
        t->n_cols = (cols);                                                                        \
        t->n_rows = (rows);                                                                        \
        t->kind = (kd);                                                                            \
        t->type =                                                                                  \
            (kd) == KIND_NORM ? IG_TYPE_F32 : ig_gen_tensor_type(wtype, nm, s->n_layer, (cols));   \
    } while (0)
    char nm[64];
    ADD("token_embd.weight", s->n_embd, n_vocab, KIND_MATRIX);
    for (int32_t l = 0; l < s->n_layer; l++) {
#define LNAME(x) (snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, x), nm)
        ADD(LNAME("attn_norm"), s->n_embd, 1, KIND_NORM);
        ADD(LNAME("attn_q"), s->n_embd, q_dim, KIND_MATRIX);
        ADD(LNAME("attn_k"), s->n_embd, kv_dim, KIND_MATRIX);
        ADD(LNAME("attn_v"), s->n_embd, kv_dim, KIND_MATRIX);
        ADD(LNAME("attn_output"), q_dim, s->n_embd, KIND_MATRIX);
        ADD(LNAME("ffn_norm"), s->n_embd, 1, KIND_NORM);
        ADD(LNAME("ffn_gate"), s->n_embd, s->n_ff, KIND_MATRIX);
        ADD(LNAME("ffn_up"), s->n_embd, s->n_ff, KIND_MATRIX);
        ADD(LNAME("ffn_down"), s->n_ff, s->n_embd, KIND_MATRIX);
#undef LNAME
    }
    ADD("output_norm.weight", s->n_embd, 1, KIND_NORM);
    if (!s->is_tied) ADD("output.weight", s->n_embd, n_vocab, KIND_MATRIX);
#undef ADD
    return n;
}

/*
 * The block pool. Quantizing every row with the reference quantizers (which
 * search each block's scale) costs about 0.3-0.6 us per value on this
 * machine: some 250 s of two cores for TinyLlama in q4_K. Speed does not
 * depend on the weights' values, so by default a quantized matrix is built
 * from a pool of POOL_VALUES / block-size blocks (4096 of 32 values, 512 of
 * 256 for the k-quants), each a properly quantized block of
 * N(0, 1/fan_in) values, drawn at random for every block of every row
 * (row r of tensor i has its own PRNG stream, as above). Every block of the
 * file is then a genuine quantized random block and the whole model is
 * written in seconds; --exact quantizes every row instead.
 */
#define POOL_VALUES (128 * 1024)
#define MAX_POOLS   16

typedef struct {
    uint32_t type;
    int64_t n_cols;   /* fan_in: sets the values' scale */
    int64_t n_blocks; /* POOL_VALUES / block size */
    uint8_t *blocks;  /* [n_blocks][type_size] */
} block_pool;

typedef struct {
    block_pool *bp;
    uint64_t seed;
} pool_job;

static void fill_pool(void *ctx, int ith, int nth) {
    pool_job *j = ctx;
    const ig_type_traits *tr = ig_type_get(j->bp->type);
    float vals[256];
    long lo, hi;
    ig_pool_range((long)j->bp->n_blocks, ith, nth, &lo, &hi);
    const float scale = 1.0f / sqrtf((float)j->bp->n_cols);
    const int64_t key = (int64_t)j->bp->type << 40 | j->bp->n_cols;
    for (long b = lo; b < hi; b++) {
        uint64_t s = row_state(j->seed ^ UINT64_C(0x5bd1e995), key, b);
        for (int64_t c = 0; c < tr->blck_size; c++) vals[c] = approx_normal(&s) * scale;
        tr->from_float(vals, j->bp->blocks + (size_t)b * tr->type_size, tr->blck_size);
    }
}

/* One matrix being filled by the pool. */
typedef struct {
    ig_gguf_writer *w;
    const tensor_plan *t;
    int64_t idx; /* tensor index in the file */
    uint64_t seed;
    size_t row_bytes;
    const block_pool *bp; /* NULL: draw and quantize every row */
    ig_status *st;        /* [nth] per-thread status */
    ig_error *errs;       /* [nth] per-thread error */
} fill_job;

static void fill_rows(void *ctx, int ith, int nth) {
    fill_job *j = ctx;
    const tensor_plan *t = j->t;
    long lo, hi;
    ig_pool_range((long)t->n_rows, ith, nth, &lo, &hi);
    if (lo >= hi) return;
    int64_t chunk = CHUNK_VALUES / t->n_cols;
    if (chunk < 1) chunk = 1;
    float *vals = malloc((size_t)t->n_cols * sizeof *vals);
    uint8_t *q = malloc((size_t)chunk * j->row_bytes);
    if (!vals || !q) {
        j->st[ith] = ig_errorf(&j->errs[ith], IG_ENOMEM, "gen-model: out of memory");
        goto done;
    }
    const ig_type_traits *tr = ig_type_get(t->type);
    const int64_t n_blocks = t->n_cols / tr->blck_size;
    /* matrices ~ N(0, 1/fan_in); norms 1 +- 0.05 */
    const float scale = 1.0f / sqrtf((float)t->n_cols);
    for (int64_t r0 = lo; r0 < hi; r0 += chunk) {
        int64_t nr = hi - r0 < chunk ? hi - r0 : chunk;
        for (int64_t r = 0; r < nr; r++) {
            uint64_t s = row_state(j->seed, j->idx, r0 + r);
            uint8_t *qrow = q + (size_t)r * j->row_bytes;
            if (j->bp) {
                for (int64_t b = 0; b < n_blocks; b++) {
                    uint64_t k = ((splitmix64(&s) >> 32) * (uint64_t)j->bp->n_blocks) >> 32;
                    memcpy(qrow + (size_t)b * tr->type_size,
                           j->bp->blocks + (size_t)k * tr->type_size, tr->type_size);
                }
                continue;
            }
            if (t->kind == KIND_NORM)
                for (int64_t c = 0; c < t->n_cols; c++)
                    vals[c] = 1.0f + 0.05f * (float)((splitmix64(&s) >> 40) * 0x1p-23 - 1.0);
            else
                for (int64_t c = 0; c < t->n_cols; c++) vals[c] = approx_normal(&s) * scale;
            tr->from_float(vals, qrow, t->n_cols);
        }
        ig_status st = ig_gguf_writer_write(j->w, j->idx, (uint64_t)r0 * j->row_bytes, q,
                                            (size_t)nr * j->row_bytes, &j->errs[ith]);
        if (st) {
            j->st[ith] = st;
            goto done;
        }
    }
done:
    free(vals);
    free(q);
}

/* The block pool for matrix t (built on first use), or NULL when t is drawn row by row. */
static ig_status get_pool(block_pool *pools, int *n_pools, const tensor_plan *t, uint64_t seed,
                          ig_pool *pool, const block_pool **out, ig_error *err) {
    *out = NULL;
    const ig_type_traits *tr = ig_type_get(t->type);
    if (t->kind == KIND_NORM || !tr->is_quantized) return IG_OK;
    for (int i = 0; i < *n_pools; i++)
        if (pools[i].type == t->type && pools[i].n_cols == t->n_cols) {
            *out = &pools[i];
            return IG_OK;
        }
    if (*n_pools == MAX_POOLS) return IG_OK; /* unreachable for our shapes: fall back to exact */
    block_pool *bp = &pools[*n_pools];
    bp->type = t->type;
    bp->n_cols = t->n_cols;
    bp->n_blocks = POOL_VALUES / tr->blck_size;
    if (!(bp->blocks = malloc((size_t)bp->n_blocks * tr->type_size)))
        return ig_errorf(err, IG_ENOMEM, "gen-model: out of memory");
    (*n_pools)++;
    pool_job j = {bp, seed};
    ig_pool_run(pool, fill_pool, &j);
    *out = bp;
    return IG_OK;
}

ig_status ig_gen_model(const ig_gen_model_params *p, ig_pool *pool, ig_error *err) {
    ig_status st = IG_OK;
    ig_gguf *vocab = NULL;
    ig_gguf_writer *w = NULL;
    tensor_plan *plan = NULL;
    ig_status *tst = NULL;
    ig_error *terr = NULL;
    block_pool pools[MAX_POOLS] = {0};
    int n_pools = 0;
    if (!p || !p->shape || !p->vocab_path || !p->out_path)
        return ig_errorf(err, IG_EINVAL, "gen-model: missing parameters");
    const wtype_row *wt = wtype_find(p->wtype);
    if (!wt)
        return ig_errorf(err, IG_EINVAL, "gen-model: unknown weight type '%s'",
                         p->wtype ? p->wtype : "");
    const ig_gen_shape *s = p->shape;

    if ((st = ig_gguf_open(p->vocab_path, &vocab, err))) goto done;
    const ig_gguf_value *toks = ig_gguf_find(vocab, "tokenizer.ggml.tokens");
    if (!toks || toks->type != IG_GGUF_ARRAY || toks->v.arr.elem_type != IG_GGUF_STRING ||
        toks->v.arr.n == 0 || toks->v.arr.n > INT32_MAX) {
        st = ig_errorf(err, IG_EFORMAT, "gen-model: '%s' has no tokenizer.ggml.tokens array",
                       p->vocab_path);
        goto done;
    }
    const int64_t n_vocab = (int64_t)toks->v.arr.n;

    /* metadata: what a llama loader needs, then the vocabulary file's tokenizer */
    if ((st = ig_gguf_writer_new(&w, err))) goto done;
    char name[160];
    snprintf(name, sizeof name, "ignis gen-model %s %s (random weights, seed %llu)", s->name,
             wt->name, (unsigned long long)p->seed);
    const uint32_t head_dim = (uint32_t)(s->n_embd / s->n_head);
    if ((st = ig_gguf_writer_add_str(w, "general.architecture", "llama", err)) ||
        (st = ig_gguf_writer_add_str(w, "general.name", name, err)) ||
        (st = ig_gguf_writer_add_u32(w, "general.file_type", wt->file_type, err)) ||
        (st = ig_gguf_writer_add_u32(w, "general.quantization_version", 2, err)) ||
        (st = ig_gguf_writer_add_u32(w, "llama.context_length", (uint32_t)s->n_ctx, err)) ||
        (st = ig_gguf_writer_add_u32(w, "llama.embedding_length", (uint32_t)s->n_embd, err)) ||
        (st = ig_gguf_writer_add_u32(w, "llama.block_count", (uint32_t)s->n_layer, err)) ||
        (st = ig_gguf_writer_add_u32(w, "llama.feed_forward_length", (uint32_t)s->n_ff, err)) ||
        (st = ig_gguf_writer_add_u32(w, "llama.attention.head_count", (uint32_t)s->n_head, err)) ||
        (st = ig_gguf_writer_add_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_head_kv,
                                     err)) ||
        (st = ig_gguf_writer_add_u32(w, "llama.rope.dimension_count", head_dim, err)) ||
        (st = ig_gguf_writer_add_f32(w, "llama.rope.freq_base", s->rope_base, err)) ||
        (st = ig_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", s->rms_eps,
                                     err)) ||
        (st = ig_gguf_writer_add_u32(w, "llama.vocab_size", (uint32_t)n_vocab, err)))
        goto done;
    for (int64_t i = 0; i < ig_gguf_n_kv(vocab); i++) {
        const ig_gguf_kv *kv = ig_gguf_kv_at(vocab, i);
        if (kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10) != 0) continue;
        char key[256];
        if (kv->key.len >= sizeof key) continue;
        memcpy(key, kv->key.ptr, kv->key.len);
        key[kv->key.len] = '\0';
        if ((st = ig_gguf_writer_add_value(w, key, &kv->value, err))) goto done;
    }

    /* tensor infos */
    plan = calloc((size_t)(3 + 9 * (int64_t)s->n_layer), sizeof *plan);
    if (!plan) {
        st = ig_errorf(err, IG_ENOMEM, "gen-model: out of memory");
        goto done;
    }
    const int64_t n_tensors = plan_tensors(s, wt->name, n_vocab, plan);
    for (int64_t i = 0; i < n_tensors; i++) {
        const tensor_plan *t = &plan[i];
        int64_t ne[2] = {t->n_cols, t->n_rows};
        if ((st = ig_gguf_writer_add_tensor(w, t->name, t->kind == KIND_NORM ? 1 : 2, ne, t->type,
                                            NULL, err)))
            goto done;
    }
    if ((st = ig_gguf_writer_open(w, p->out_path, err))) goto done;

    /* tensor data, every matrix split across the pool */
    const int nth = pool ? ig_pool_size(pool) : 1;
    tst = calloc((size_t)nth, sizeof *tst);
    terr = calloc((size_t)nth, sizeof *terr);
    if (!tst || !terr) {
        st = ig_errorf(err, IG_ENOMEM, "gen-model: out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n_tensors; i++) {
        fill_job j = {.w = w, .t = &plan[i], .idx = i, .seed = p->seed, .st = tst, .errs = terr};
        if (!ig_type_row_size(plan[i].type, plan[i].n_cols, &j.row_bytes)) {
            st = ig_errorf(err, IG_EINTERNAL, "gen-model: bad row size for '%s'", plan[i].name);
            goto done;
        }
        if (!p->is_exact && (st = get_pool(pools, &n_pools, &plan[i], p->seed, pool, &j.bp, err)))
            goto done;
        ig_pool_run(pool, fill_rows, &j);
        for (int k = 0; k < nth; k++)
            if (tst[k]) {
                st = ig_errorf(err, tst[k], "%s", terr[k].message);
                goto done;
            }
    }
    st = ig_gguf_writer_close(w, err);
done:
    for (int i = 0; i < n_pools; i++) free(pools[i].blocks);
    free(terr);
    free(tst);
    free(plan);
    ig_gguf_writer_free(w);
    ig_gguf_free(vocab);
    return st;
}
