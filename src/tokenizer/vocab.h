/*
 * vocab.h: a tokenizer vocabulary loaded from GGUF metadata (tokenizer.ggml.*),
 * and the tokenizer entry points.
 *
 * Model of use
 * ------------
 * ig_vocab_load() copies everything it needs out of the GGUF file, so the file
 * may be closed afterwards. A loaded vocab is immutable: any number of threads
 * may tokenize and detokenize with it at once.
 *
 * Token attributes follow GGUF's tokenizer.ggml.token_type values.
 */
#ifndef IG_TOKENIZER_VOCAB_H
#define IG_TOKENIZER_VOCAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/gguf.h"
#include "ignis.h"

typedef enum ig_vocab_type {
    IG_VOCAB_SPM,  /* tokenizer.ggml.model = "llama": SentencePiece-style BPE over scores */
    IG_VOCAB_BPE,  /* "gpt2": byte-level BPE with merges and a regex pre-tokenizer */
    IG_VOCAB_WPM,  /* "bert": WordPiece */
} ig_vocab_type;

typedef enum ig_token_attr {
    IG_TOKEN_UNDEFINED = 0,
    IG_TOKEN_NORMAL = 1,
    IG_TOKEN_UNKNOWN = 2,
    IG_TOKEN_CONTROL = 3,
    IG_TOKEN_USER_DEFINED = 4,
    IG_TOKEN_UNUSED = 5,
    IG_TOKEN_BYTE = 6,
} ig_token_attr;

typedef struct ig_bpe_data ig_bpe_data; /* private to bpe.c: merge ranks, pre-tokenizer */
typedef struct ig_vocab_index ig_vocab_index; /* private to vocab.c: text -> id hash */

typedef struct ig_vocab {
    ig_vocab_type type;
    char model_name[32];  /* tokenizer.ggml.model, e.g. "llama" */
    char pre[64];         /* tokenizer.ggml.pre, e.g. "llama3" ("default" if absent) */
    int32_t n_tokens;
    char **text;          /* [n_tokens] NUL-terminated token texts (may also hold NULs: use text_len) */
    uint32_t *text_len;   /* [n_tokens] bytes */
    float *scores;        /* [n_tokens] (0 where the file has none) */
    uint8_t *attr;        /* [n_tokens] ig_token_attr */

    int32_t bos_id, eos_id, unk_id, sep_id, pad_id, mask_id; /* -1 when absent */
    int32_t eot_id, eom_id;       /* end-of-turn / end-of-message, -1 when absent */
    bool add_bos, add_eos;        /* tokenizer.ggml.add_bos_token / add_eos_token (or defaults) */
    bool add_space_prefix;        /* SPM: prepend ' ' (shown as U+2581) before the first word */
    bool remove_extra_whitespaces;
    int32_t *eog_ids;             /* end-of-generation tokens (eos, eot, eom, ...) */
    int32_t n_eog;

    ig_vocab_index *index;        /* owned by vocab.c */
    ig_bpe_data *bpe;             /* owned by bpe.c; NULL unless type == IG_VOCAB_BPE */
} ig_vocab;

/* Load the vocabulary from GGUF metadata. IG_EUNSUPPORTED names an unknown model/pre. */
ig_status ig_vocab_load(const ig_gguf *g, ig_vocab **out, ig_error *err);
void ig_vocab_free(ig_vocab *v);

/* The id whose text is exactly these bytes, or -1. */
int32_t ig_vocab_find(const ig_vocab *v, const char *text, size_t len);

bool ig_vocab_is_eog(const ig_vocab *v, int32_t id);

/* Growable token list. */
typedef struct ig_tokens {
    int32_t *ids;
    size_t n, cap;
} ig_tokens;
ig_status ig_tokens_push(ig_tokens *t, int32_t id);
void ig_tokens_free(ig_tokens *t);

typedef struct ig_tokenize_opts {
    bool add_special;   /* add BOS/EOS (or CLS/SEP) as the vocab asks */
    bool parse_special; /* treat control/user-defined token texts in the input as those tokens */
} ig_tokenize_opts;

/* Tokenize UTF-8 text, appending ids to *out. */
ig_status ig_tokenize(const ig_vocab *v, const char *text, size_t len, ig_tokenize_opts opts,
                      ig_tokens *out, ig_error *err);

/*
 * The bytes one token stands for when detokenized (U+2581 -> ' ' for SPM,
 * byte tokens -> their byte, byte-level BPE unmapped to raw bytes). Control
 * tokens give no bytes unless `render_special`. Writes up to `cap` bytes into
 * buf and returns the full length (so a return > cap means it was cut).
 */
size_t ig_token_to_piece(const ig_vocab *v, int32_t id, bool render_special, char *buf, size_t cap);

/*
 * Detokenize a whole sequence into a malloc'd NUL-terminated string (*out, and
 * *out_len bytes). SPM drops the space prefix it added at the start.
 */
ig_status ig_detokenize(const ig_vocab *v, const int32_t *ids, size_t n, bool render_special,
                        char **out, size_t *out_len);

/*
 * Streaming detokenizer: feed tokens one at a time; it emits only complete
 * UTF-8 characters, holding back a partial sequence until it completes, and
 * turning bytes that can never form valid UTF-8 into U+FFFD.
 */
typedef struct ig_detok {
    const ig_vocab *vocab;
    bool render_special;
    bool at_start;       /* next piece is the first (SPM strips its leading space) */
    unsigned char pending[8];
    size_t n_pending;
} ig_detok;

void ig_detok_init(ig_detok *d, const ig_vocab *v, bool render_special);
/* Feed one token; writes complete text into buf (cap >= 64 recommended); returns bytes written. */
size_t ig_detok_push(ig_detok *d, int32_t id, char *buf, size_t cap);
/* End of stream: flushes any incomplete tail as U+FFFD; returns bytes written. */
size_t ig_detok_flush(ig_detok *d, char *buf, size_t cap);

/* ---- used between the tokenizer's own files ---- */

/* bpe.c: build the merge table and pre-tokenizer for v->pre (called by ig_vocab_load). */
ig_status ig__bpe_init(ig_vocab *v, const ig_gguf *g, ig_error *err);
void ig__bpe_free(ig_bpe_data *b);
/* bpe.c: tokenize one fragment of raw text that holds no special tokens. */
ig_status ig__bpe_encode(const ig_vocab *v, const char *text, size_t len, ig_tokens *out);
/*
 * bpe.c: byte-level BPE token text (GPT-2's printable byte alphabet) -> raw
 * bytes; characters outside the byte alphabet are kept as they are. Writes up
 * to `cap` bytes into out and returns the full length.
 */
size_t ig__bpe_unmap(const char *text, size_t len, char *out, size_t cap);
/* bpe.c: raw bytes -> byte-level BPE alphabet (the inverse of ig__bpe_unmap). Same contract. */
size_t ig__bpe_map(const char *bytes, size_t len, char *out, size_t cap);

#endif
