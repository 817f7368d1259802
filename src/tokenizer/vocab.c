/*
 * vocab.c: loading a tokenizer vocabulary from GGUF metadata, the text -> id
 * index, the end-of-generation set and the growable token list.
 *
 * Everything a vocab needs is copied out of the GGUF file: all token texts
 * live in one allocation (`arena`, NUL after each), pointed into by text[].
 * After ig_vocab_load returns the vocab is never written again, so any number
 * of threads may use it.
 *
 * The loading order follows llama.cpp's llama_vocab::load, because several
 * steps change what later steps see: per-type defaults -> tokens, scores and
 * types -> text index -> BPE merges (which may set pre-specific defaults) ->
 * special ids and add_* keys from the file -> end-of-turn / FIM tokens found
 * by text (made CONTROL) -> EOG set -> special-token list (longest first) ->
 * per-model strip flags.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/vocab.h"

/* Open-addressing hash from token text to id; slots hold id + 1 (0 = empty). */
struct ig_vocab_index {
    uint32_t mask;  /* n_slots - 1 (a power of two) */
    int32_t *slots; /* [mask + 1] */
    char *arena;    /* all token texts, each followed by a NUL */
};

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

int32_t ig_vocab_find(const ig_vocab *v, const char *text, size_t len) {
    if (!v || !v->index || (!text && len)) return -1;
    const ig_vocab_index *ix = v->index;
    for (uint32_t i = (uint32_t)hash_bytes(text, len) & ix->mask;; i = (i + 1) & ix->mask) {
        int32_t s = ix->slots[i];
        if (s == 0) return -1;
        int32_t id = s - 1;
        if (v->text_len[id] == len && memcmp(v->text[id], text, len) == 0) return id;
    }
}

/* Insert id; an equal text already present is replaced (the later id wins, as in llama.cpp). */
static void index_put(ig_vocab *v, int32_t id) {
    ig_vocab_index *ix = v->index;
    const char *t = v->text[id];
    uint32_t n = v->text_len[id];
    for (uint32_t i = (uint32_t)hash_bytes(t, n) & ix->mask;; i = (i + 1) & ix->mask) {
        int32_t s = ix->slots[i];
        if (s == 0 || (v->text_len[s - 1] == n && memcmp(v->text[s - 1], t, n) == 0)) {
            ix->slots[i] = id + 1;
            return;
        }
    }
}

bool ig_vocab_is_eog(const ig_vocab *v, int32_t id) {
    if (!v || id < 0) return false;
    for (int32_t i = 0; i < v->n_eog; i++)
        if (v->eog_ids[i] == id) return true;
    return false;
}

ig_status ig_tokens_push(ig_tokens *t, int32_t id) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        int32_t *ids = realloc(t->ids, cap * sizeof *ids);
        if (!ids) return IG_ENOMEM;
        t->ids = ids;
        t->cap = cap;
    }
    t->ids[t->n++] = id;
    return IG_OK;
}

void ig_tokens_free(ig_tokens *t) {
    if (!t) return;
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

void ig_vocab_free(ig_vocab *v) {
    if (!v) return;
    if (v->bpe) ig__bpe_free(v->bpe);
    if (v->index) {
        free(v->index->slots);
        free(v->index->arena);
        free(v->index);
    }
    free(v->special_ids);
    free(v->eog_ids);
    free(v->strip);
    free(v->attr);
    free(v->scores);
    free(v->text_len);
    free(v->text);
    free(v);
}

/* Copy a GGUF string into a fixed NUL-terminated buffer, cutting if needed. */
static void copy_str(char *dst, size_t cap, ig_str s) {
    size_t n = s.len < cap - 1 ? (size_t)s.len : cap - 1;
    memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static bool is_integer_type(ig_gguf_type t) {
    return t == IG_GGUF_UINT8 || t == IG_GGUF_INT8 || t == IG_GGUF_UINT16 || t == IG_GGUF_INT16 ||
           t == IG_GGUF_UINT32 || t == IG_GGUF_INT32 || t == IG_GGUF_UINT64 || t == IG_GGUF_INT64;
}

/* Read an optional special-token id; values that are absent or outside the vocab leave *id. */
static void read_id(const ig_gguf *g, const char *key, int32_t n_tokens, int32_t *id) {
    int64_t x;
    if (ig_gguf_get_i64(g, key, &x) != IG_OK) {
        uint32_t u;
        if (ig_gguf_get_u32(g, key, &u) != IG_OK) return;
        x = u;
    }
    if (x >= 0 && x < n_tokens) *id = (int32_t)x;
}

static void read_bool(const ig_gguf *g, const char *key, bool *b) {
    bool x;
    if (ig_gguf_get_bool(g, key, &x) == IG_OK) *b = x;
}

static bool text_is(const ig_vocab *v, int32_t id, const char *s) {
    size_t n = strlen(s);
    return v->text_len[id] == n && memcmp(v->text[id], s, n) == 0;
}

static bool text_in(const ig_vocab *v, int32_t id, const char *const *list) {
    for (; *list; list++)
        if (text_is(v, id, *list)) return true;
    return false;
}

/* Token texts that mark a role, as llama.cpp recognises them (it has no GGUF key for most). */
static const char *const EOT_TEXTS[] = {"<|eot_id|>",
                                        "<|im_end|>",
                                        "<|end|>",
                                        "<end_of_turn>",
                                        "<|endoftext|>",
                                        "<|end_of_text|>",
                                        "<EOT>",
                                        "_<EOT>",
                                        "<\xef\xbd\x9c"
                                        "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                        "<end_of_utterance>",
                                        NULL};
static const char *const EOM_TEXTS[] = {"<|eom_id|>", NULL};
static const char *const FIM_PRE_TEXTS[] = {"<|fim_prefix|>",
                                            "<fim-prefix>",
                                            "<fim_prefix>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "begin\xef\xbd\x9c>",
                                            "<PRE>",
                                            "\xe2\x96\x81<PRE>",
                                            NULL};
static const char *const FIM_SUF_TEXTS[] = {"<|fim_suffix|>",
                                            "<fim-suffix>",
                                            "<fim_suffix>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81hole\xef\xbd\x9c>",
                                            "<SUF>",
                                            "\xe2\x96\x81<SUF>",
                                            NULL};
static const char *const FIM_MID_TEXTS[] = {"<|fim_middle|>",
                                            "<fim-middle>",
                                            "<fim_middle>",
                                            "<\xef\xbd\x9c"
                                            "fim\xe2\x96\x81"
                                            "end\xef\xbd\x9c>",
                                            "<MID>",
                                            "\xe2\x96\x81<MID>",
                                            NULL};
static const char *const FIM_PAD_TEXTS[] = {"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", NULL};
static const char *const FIM_REP_TEXTS[] = {"<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                            "<REPO>",       "<reponame>",    NULL};
static const char *const FIM_SEP_TEXTS[] = {"<|file_sep|>", "<file_sep>", NULL};
/* Texts that end generation whatever the role ids say. */
static const char *const EOG_TEXTS[] = {
    "<|eot_id|>",      "<|im_end|>",         "<|end|>",    "<|return|>", "<|call|>",
    "<end_of_turn>",   "<|endoftext|>",      "<|eom_id|>", "<EOT>",      "_<EOT>",
    "<|end_of_text|>", "<end_of_utterance>", NULL};

/* If *id is unset, take the first token (lowest id) whose text is in `list`; make it CONTROL. */
static void detect_role(ig_vocab *v, int32_t *id, const char *const *list) {
    if (*id >= 0) return;
    for (int32_t i = 0; i < v->n_tokens; i++) {
        if (text_in(v, i, list)) {
            *id = i;
            v->attr[i] = IG_TOKEN_CONTROL;
            return;
        }
    }
}

static ig_status eog_add(ig_vocab *v, int32_t id) {
    if (id < 0 || ig_vocab_is_eog(v, id)) return IG_OK;
    int32_t *ids = realloc(v->eog_ids, (size_t)(v->n_eog + 1) * sizeof *ids);
    if (!ids) return IG_ENOMEM;
    v->eog_ids = ids;
    int32_t i = v->n_eog++;
    while (i > 0 && ids[i - 1] > id) { /* keep ascending */
        ids[i] = ids[i - 1];
        i--;
    }
    ids[i] = id;
    return IG_OK;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static ig_status oom(ig_error *err) {
    return ig_errorf(err, IG_ENOMEM, "out of memory loading the vocab");
}

static bool contains(const char *hay, const char *needle) {
    return strstr(hay, needle) != NULL;
}

ig_status ig_vocab_load(const ig_gguf *g, ig_vocab **out, ig_error *err) {
    ig_status st = IG_OK;
    ig_vocab *v = NULL;
    if (!g || !out) return ig_errorf(err, IG_EINVAL, "ig_vocab_load: NULL argument");

    v = calloc(1, sizeof *v);
    if (!v) return oom(err);
    v->bos_id = v->eos_id = v->unk_id = v->sep_id = v->pad_id = v->mask_id = -1;
    v->eot_id = v->eom_id = -1;
    v->fim_pre_id = v->fim_suf_id = v->fim_mid_id = -1;
    v->fim_pad_id = v->fim_rep_id = v->fim_sep_id = -1;
    for (int i = 0; i < 256; i++) v->byte_ids[i] = -1;

    /* Model and pre-tokenizer names, and the per-type defaults. */
    ig_str model;
    if (ig_gguf_get_str(g, "tokenizer.ggml.model", &model) != IG_OK) {
        st = ig_errorf(err, IG_EFORMAT, "the file has no tokenizer.ggml.model string");
        goto fail;
    }
    copy_str(v->model_name, sizeof v->model_name, model);
    ig_str pre;
    if (ig_gguf_get_str(g, "tokenizer.ggml.pre", &pre) == IG_OK)
        copy_str(v->pre, sizeof v->pre, pre);
    else
        strcpy(v->pre, "default");

    if (ig_str_eq(model, "llama")) {
        v->type = IG_VOCAB_SPM;
        v->bos_id = 1, v->eos_id = 2, v->unk_id = 0;
        v->add_bos = true, v->add_space_prefix = true;
    } else if (ig_str_eq(model, "bert")) {
        v->type = IG_VOCAB_WPM;
        v->bos_id = 101, v->unk_id = 100, v->sep_id = 102, v->pad_id = 0, v->mask_id = 103;
        v->add_bos = true, v->add_sep = true;
    } else if (ig_str_eq(model, "gpt2")) {
        v->type = IG_VOCAB_BPE;
        v->bos_id = 11, v->eos_id = 11;
    } else {
        st = ig_errorf(err, IG_EUNSUPPORTED, "tokenizer model '%.*s' is not supported",
                       (int)(model.len > 64 ? 64 : model.len), model.ptr);
        goto fail;
    }
    read_bool(g, "tokenizer.ggml.add_space_prefix", &v->add_space_prefix);
    read_bool(g, "tokenizer.ggml.remove_extra_whitespaces", &v->remove_extra_whitespaces);

    /* Tokens, scores, types. */
    const ig_gguf_value *toks = NULL, *scores = NULL, *types = NULL;
    if (ig_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks) != IG_OK ||
        toks->v.arr.elem_type != IG_GGUF_STRING) {
        st = ig_errorf(err, IG_EFORMAT, "tokenizer.ggml.tokens is missing or not a string array");
        goto fail;
    }
    uint64_t n = toks->v.arr.n;
    if (n == 0 || n > INT32_MAX / 2) {
        st = ig_errorf(err, IG_EFORMAT, "tokenizer.ggml.tokens has %llu entries",
                       (unsigned long long)n);
        goto fail;
    }
    if (ig_gguf_find(g, "tokenizer.ggml.scores")) {
        if (ig_gguf_get_arr(g, "tokenizer.ggml.scores", &scores) != IG_OK ||
            (scores->v.arr.elem_type != IG_GGUF_FLOAT32 &&
             scores->v.arr.elem_type != IG_GGUF_FLOAT64) ||
            scores->v.arr.n != n) {
            st = ig_errorf(err, IG_EFORMAT,
                           "tokenizer.ggml.scores must be a float array of %llu entries",
                           (unsigned long long)n);
            goto fail;
        }
    }
    if (ig_gguf_find(g, "tokenizer.ggml.token_type")) {
        if (ig_gguf_get_arr(g, "tokenizer.ggml.token_type", &types) != IG_OK ||
            !is_integer_type(types->v.arr.elem_type) || types->v.arr.n != n) {
            st = ig_errorf(err, IG_EFORMAT,
                           "tokenizer.ggml.token_type must be an integer array of %llu entries",
                           (unsigned long long)n);
            goto fail;
        }
    }

    v->n_tokens = (int32_t)n;
    v->text = calloc(n, sizeof *v->text);
    v->text_len = calloc(n, sizeof *v->text_len);
    v->scores = calloc(n, sizeof *v->scores);
    v->attr = calloc(n, sizeof *v->attr);
    v->strip = calloc(n, sizeof *v->strip);
    v->index = calloc(1, sizeof *v->index);
    if (!v->text || !v->text_len || !v->scores || !v->attr || !v->strip || !v->index) {
        st = oom(err);
        goto fail;
    }

    /* Empty texts become "[EMPTY_<id>]" as in llama.cpp, so every token has a findable text. */
    size_t arena_len = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = toks->v.arr.items[i].v.str.len;
        if (len > UINT32_MAX - 32) {
            st = ig_errorf(err, IG_EFORMAT, "token %llu is too long", (unsigned long long)i);
            goto fail;
        }
        arena_len += (len ? len : 24) + 1;
    }
    char *arena = v->index->arena = malloc(arena_len);
    if (!arena) {
        st = oom(err);
        goto fail;
    }
    for (uint64_t i = 0; i < n; i++) {
        ig_str s = toks->v.arr.items[i].v.str;
        v->text[i] = arena;
        if (s.len == 0) {
            int k = snprintf(arena, 25, "[EMPTY_%llu]", (unsigned long long)i);
            v->text_len[i] = (uint32_t)k;
        } else {
            memcpy(arena, s.ptr, s.len);
            v->text_len[i] = (uint32_t)s.len;
        }
        arena[v->text_len[i]] = '\0';
        arena += v->text_len[i] + 1;
        if (v->text_len[i] > v->max_token_len) v->max_token_len = v->text_len[i];
        v->scores[i] = scores ? (float)ig_gguf_arr_f64(scores, i) : 0.0f;
        int64_t t = types ? ig_gguf_arr_i64(types, i) : IG_TOKEN_NORMAL;
        v->attr[i] =
            (t >= IG_TOKEN_UNDEFINED && t <= IG_TOKEN_BYTE) ? (uint8_t)t : IG_TOKEN_UNDEFINED;
    }

    uint32_t n_slots = 16;
    while (n_slots < 2 * n) n_slots *= 2;
    v->index->mask = n_slots - 1;
    v->index->slots = calloc(n_slots, sizeof *v->index->slots);
    if (!v->index->slots) {
        st = oom(err);
        goto fail;
    }
    for (int32_t i = 0; i < v->n_tokens; i++) index_put(v, i);

    if (v->type == IG_VOCAB_SPM) {
        static const char hex[] = "0123456789ABCDEF";
        for (int b = 0; b < 256; b++) {
            char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
            int32_t id = ig_vocab_find(v, name, 6);
            if (id < 0) {
                char c = (char)b;
                id = ig_vocab_find(v, &c, 1);
            }
            v->byte_ids[b] = id;
        }
    }

    if (v->type == IG_VOCAB_BPE) {
        st = ig__bpe_init(v, g, err);
        if (st != IG_OK) goto fail;
    }

    /* Special ids and flags the file states. */
    read_id(g, "tokenizer.ggml.cls_token_id", v->n_tokens, &v->bos_id);
    read_id(g, "tokenizer.ggml.bos_token_id", v->n_tokens, &v->bos_id);
    read_id(g, "tokenizer.ggml.eos_token_id", v->n_tokens, &v->eos_id);
    read_id(g, "tokenizer.ggml.eot_token_id", v->n_tokens, &v->eot_id);
    read_id(g, "tokenizer.ggml.eom_token_id", v->n_tokens, &v->eom_id);
    read_id(g, "tokenizer.ggml.unknown_token_id", v->n_tokens, &v->unk_id);
    read_id(g, "tokenizer.ggml.seperator_token_id", v->n_tokens, &v->sep_id);
    read_id(g, "tokenizer.ggml.padding_token_id", v->n_tokens, &v->pad_id);
    read_id(g, "tokenizer.ggml.mask_token_id", v->n_tokens, &v->mask_id);
    read_id(g, "tokenizer.ggml.prefix_token_id", v->n_tokens, &v->fim_pre_id);
    read_id(g, "tokenizer.ggml.suffix_token_id", v->n_tokens, &v->fim_suf_id);
    read_id(g, "tokenizer.ggml.middle_token_id", v->n_tokens, &v->fim_mid_id);
    read_id(g, "tokenizer.ggml.fim_pre_token_id", v->n_tokens, &v->fim_pre_id);
    read_id(g, "tokenizer.ggml.fim_suf_token_id", v->n_tokens, &v->fim_suf_id);
    read_id(g, "tokenizer.ggml.fim_mid_token_id", v->n_tokens, &v->fim_mid_id);
    read_id(g, "tokenizer.ggml.fim_pad_token_id", v->n_tokens, &v->fim_pad_id);
    read_id(g, "tokenizer.ggml.fim_rep_token_id", v->n_tokens, &v->fim_rep_id);
    read_id(g, "tokenizer.ggml.fim_sep_token_id", v->n_tokens, &v->fim_sep_id);
    /* A default id that does not exist in this vocab is no id at all. */
    int32_t *all_ids[] = {&v->bos_id, &v->eos_id, &v->unk_id, &v->sep_id, &v->pad_id, &v->mask_id};
    for (size_t i = 0; i < sizeof all_ids / sizeof all_ids[0]; i++)
        if (*all_ids[i] >= v->n_tokens) *all_ids[i] = -1;
    read_bool(g, "tokenizer.ggml.add_bos_token", &v->add_bos);
    read_bool(g, "tokenizer.ggml.add_eos_token", &v->add_eos);
    read_bool(g, "tokenizer.ggml.add_sep_token", &v->add_sep);

    /* Roles found by token text; such tokens are made CONTROL. */
    detect_role(v, &v->eot_id, EOT_TEXTS);
    detect_role(v, &v->eom_id, EOM_TEXTS);
    detect_role(v, &v->fim_pre_id, FIM_PRE_TEXTS);
    detect_role(v, &v->fim_suf_id, FIM_SUF_TEXTS);
    detect_role(v, &v->fim_mid_id, FIM_MID_TEXTS);
    detect_role(v, &v->fim_pad_id, FIM_PAD_TEXTS);
    detect_role(v, &v->fim_rep_id, FIM_REP_TEXTS);
    detect_role(v, &v->fim_sep_id, FIM_SEP_TEXTS);

    /* End of generation: FIM pad/repo/sep, the EOG texts, then eos, eot, eom. */
    int32_t eog_roles[] = {v->fim_pad_id, v->fim_rep_id, v->fim_sep_id};
    for (size_t i = 0; i < 3; i++)
        if ((st = eog_add(v, eog_roles[i])) != IG_OK) {
            st = oom(err);
            goto fail;
        }
    for (int32_t i = 0; i < v->n_tokens; i++) {
        if (text_in(v, i, EOG_TEXTS)) {
            if ((st = eog_add(v, i)) != IG_OK) {
                st = oom(err);
                goto fail;
            }
            v->attr[i] = IG_TOKEN_CONTROL;
        }
    }
    if (eog_add(v, v->eos_id) != IG_OK || eog_add(v, v->eot_id) != IG_OK ||
        eog_add(v, v->eom_id) != IG_OK) {
        st = oom(err);
        goto fail;
    }

    /* Tokens split out of raw text before tokenizing, longest first. */
    int32_t n_special = 0;
    for (int32_t i = 0; i < v->n_tokens; i++) {
        uint8_t a = v->attr[i];
        if (a == IG_TOKEN_CONTROL || a == IG_TOKEN_USER_DEFINED || a == IG_TOKEN_UNKNOWN)
            n_special++;
    }
    /* Sort keys: (UINT32_MAX - length) in the high half, id in the low half. */
    uint64_t *keys = malloc((size_t)(n_special ? n_special : 1) * sizeof *keys);
    v->special_ids = malloc((size_t)(n_special ? n_special : 1) * sizeof *v->special_ids);
    if (!keys || !v->special_ids) {
        free(keys);
        st = oom(err);
        goto fail;
    }
    for (int32_t i = 0; i < v->n_tokens; i++) {
        uint8_t a = v->attr[i];
        if (a == IG_TOKEN_CONTROL || a == IG_TOKEN_USER_DEFINED || a == IG_TOKEN_UNKNOWN)
            keys[v->n_special++] = ((uint64_t)(UINT32_MAX - v->text_len[i]) << 32) | (uint32_t)i;
    }
    qsort(keys, (size_t)v->n_special, sizeof *keys, cmp_u64);
    for (int32_t i = 0; i < v->n_special; i++) v->special_ids[i] = (int32_t)(keys[i] & 0xffffffffu);
    free(keys);

    /*
     * Per-model strip flags (GGUF has no key for them). llama.cpp: jina-v2
     * vocabs' "<mask>" eats the whitespace before it; Phi-3's special tokens
     * (and "</s>") eat the whitespace after them, except <unk>, <s>, <|endoftext|>.
     */
    char name[128] = "";
    ig_str gname;
    if (ig_gguf_get_str(g, "general.name", &gname) == IG_OK) copy_str(name, sizeof name, gname);
    for (char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    char arch[64] = "";
    ig_str garch;
    if (ig_gguf_get_str(g, "general.architecture", &garch) == IG_OK)
        copy_str(arch, sizeof arch, garch);
    if (contains(v->pre, "jina-v2-de") || contains(v->pre, "jina-v2-es") ||
        contains(v->pre, "jina-v2-code") || contains(arch, "nomic-bert-moe") ||
        contains(arch, "jina-bert-v3")) {
        int32_t id = ig_vocab_find(v, "<mask>", 6);
        if (id >= 0) v->strip[id] |= IG_TOKEN_LSTRIP;
    } else if (contains(name, "phi-3") || contains(name, "phi3")) {
        for (int32_t i = 0; i < v->n_special; i++) v->strip[v->special_ids[i]] |= IG_TOKEN_RSTRIP;
        int32_t id = ig_vocab_find(v, "</s>", 4);
        if (id >= 0) v->strip[id] |= IG_TOKEN_RSTRIP;
        const char *keep[] = {"<unk>", "<s>", "<|endoftext|>"};
        for (size_t i = 0; i < 3; i++) {
            id = ig_vocab_find(v, keep[i], strlen(keep[i]));
            if (id >= 0) v->strip[id] &= (uint8_t)~IG_TOKEN_RSTRIP;
        }
    }

    *out = v;
    return IG_OK;

fail:
    ig_vocab_free(v);
    return st;
}
