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
    IG_VOCAB_SPM, /* tokenizer.ggml.model = "llama": SentencePiece-style BPE over scores */
    IG_VOCAB_BPE, /* "gpt2": byte-level BPE with merges and a regex pre-tokenizer */
    IG_VOCAB_WPM, /* "bert": WordPiece */
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

typedef struct ig_bpe_data ig_bpe_data;       /* private to bpe.c: merge ranks, pre-tokenizer */
typedef struct ig_vocab_index ig_vocab_index; /* private to vocab.c: text -> id hash */

/* Extra per-token flags (ig_vocab.strip): whitespace a special token eats around it. */
enum {
    IG_TOKEN_LSTRIP = 1, /* when matched in text, drop the whitespace before it */
    IG_TOKEN_RSTRIP = 2, /* ... and/or after it */
};

typedef struct ig_vocab {
    ig_vocab_type type;
    char model_name[32]; /* tokenizer.ggml.model, e.g. "llama" */
    char pre[64];        /* tokenizer.ggml.pre, e.g. "llama3" ("default" if absent) */
    int32_t n_tokens;
    char **text; /* [n_tokens] NUL-terminated token texts (may also hold NULs: use text_len) */
    uint32_t *text_len;     /* [n_tokens] bytes */
    float *scores;          /* [n_tokens] (0 where the file has none) */
    uint8_t *attr;          /* [n_tokens] ig_token_attr */
    uint8_t *strip;         /* [n_tokens] IG_TOKEN_LSTRIP | IG_TOKEN_RSTRIP (0 for almost all) */
    uint32_t max_token_len; /* longest text_len, bytes */

    int32_t bos_id, eos_id, unk_id, sep_id, pad_id, mask_id; /* -1 when absent */
    int32_t eot_id, eom_id; /* end-of-turn / end-of-message, -1 when absent */
    int32_t fim_pre_id, fim_suf_id, fim_mid_id, fim_pad_id, fim_rep_id, fim_sep_id; /* -1 absent */
    bool add_bos, add_eos; /* tokenizer.ggml.add_bos_token / add_eos_token (or defaults) */
    bool add_sep;          /* WPM: append SEP (tokenizer.ggml.add_sep_token, default true) */
    bool add_space_prefix; /* SPM: prepend ' ' (shown as U+2581) before the first word */
    bool remove_extra_whitespaces; /* read from the file; not applied (llama.cpp ignores it too) */
    int32_t *eog_ids;              /* end-of-generation tokens (eos, eot, eom, ...), ascending */
    int32_t n_eog;

    /*
     * Tokens matched in raw text before the model tokenizer runs: CONTROL,
     * USER_DEFINED and UNKNOWN tokens, longest text first (ties: lower id
     * first). Without parse_special only the USER_DEFINED ones are matched.
     */
    int32_t *special_ids;
    int32_t n_special;
    int32_t byte_ids[256]; /* SPM: token for each byte (<0xNN>, else the byte itself), or -1 */

    ig_vocab_index *index; /* owned by vocab.c */
    ig_bpe_data *bpe;      /* owned by bpe.c; NULL unless type == IG_VOCAB_BPE */
} ig_vocab;

/*
 * Load the vocabulary from GGUF metadata (tokenizer.ggml.*). Borrows `g` only
 * for the call. On success *out is owned by the caller (ig_vocab_free).
 *
 * Defaults follow llama.cpp: SPM adds BOS and a space prefix; WPM adds CLS
 * (bos_id) and SEP; BPE adds neither unless its pre-tokenizer says so
 * (ig__bpe_init may change add_bos/add_eos before the file's own
 * tokenizer.ggml.add_bos_token / add_eos_token keys are applied). Special ids
 * that lie outside the vocab are ignored (the default stays). Tokens whose
 * text marks them as end-of-turn or FIM ("<|eot_id|>", "<|im_end|>",
 * "<|endoftext|>", "<end_of_turn>", "<fim_prefix>", ...) are made CONTROL and
 * the end-of-turn ones join the EOG set, as llama.cpp does.
 *
 * Errors: IG_EUNSUPPORTED for a tokenizer model other than llama/gpt2/bert
 * (or an unknown BPE pre-tokenizer, from bpe.c); IG_EFORMAT when the token
 * list is missing, empty, or the scores/token_type/merges arrays have the
 * wrong type or length; IG_ENOMEM. Nothing is returned on failure.
 */
ig_status ig_vocab_load(const ig_gguf *g, ig_vocab **out, ig_error *err);
void ig_vocab_free(ig_vocab *v); /* NULL is fine */

/* The id whose text is exactly these bytes, or -1. (Duplicate texts: the highest id wins.) */
int32_t ig_vocab_find(const ig_vocab *v, const char *text, size_t len);

bool ig_vocab_is_eog(const ig_vocab *v, int32_t id);

/* Growable token list. Zero-initialise; ig_tokens_free releases it (and leaves it empty). */
typedef struct ig_tokens {
    int32_t *ids;
    size_t n, cap;
} ig_tokens;
ig_status ig_tokens_push(ig_tokens *t, int32_t id); /* IG_ENOMEM leaves t unchanged */
void ig_tokens_free(ig_tokens *t);

typedef struct ig_tokenize_opts {
    bool add_special;   /* add BOS/EOS (or CLS/SEP) as the vocab asks */
    bool parse_special; /* treat control token texts in the input as those tokens */
} ig_tokenize_opts;

/*
 * Tokenize UTF-8 text, appending ids to *out (on failure *out keeps what it
 * had; ids may have been appended). Matches llama.cpp's llama_tokenize:
 * USER_DEFINED token texts are always split out first (longest first);
 * CONTROL and UNKNOWN ones only with parse_special. SPM prefixes a space to
 * the first text fragment and to every fragment that follows a special token.
 * Invalid UTF-8 never fails: SPM/BPE fall back to byte tokens, WPM drops it.
 * Errors: IG_EINVAL (NULL text with len > 0, or the vocab asks for a BOS/EOS
 * it does not have), IG_ENOMEM, or what bpe.c reports.
 */
ig_status ig_tokenize(const ig_vocab *v, const char *text, size_t len, ig_tokenize_opts opts,
                      ig_tokens *out, ig_error *err);

/*
 * The bytes one token stands for when detokenized (U+2581 -> ' ' for SPM and
 * WPM, byte tokens -> their byte, byte-level BPE unmapped to raw bytes).
 * CONTROL and UNKNOWN tokens give no bytes unless `render_special`; UNUSED
 * and UNDEFINED ones never do; USER_DEFINED ones give their text. Writes up
 * to `cap` bytes into buf (buf may be NULL when cap is 0) and returns the full
 * length (so a return > cap means it was cut). An id out of range gives 0.
 */
size_t ig_token_to_piece(const ig_vocab *v, int32_t id, bool render_special, char *buf, size_t cap);

/*
 * Detokenize a whole sequence into a malloc'd NUL-terminated string (*out, and
 * *out_len bytes; free() it). When the vocab adds a space prefix (SPM), or is
 * WPM (whose word-start pieces all begin with a space), the leading space of
 * the first piece that yields any bytes is dropped, so that for SPM
 * detokenize(tokenize(s)) == s. (llama.cpp drops it only when that piece is
 * the very first token, so after an unrendered BOS it keeps the space.) No
 * "clean spaces" rewriting is done, so for BPE and SPM (on valid UTF-8
 * holding no literal U+2581) detokenize(tokenize(s)) == s.
 * The bytes are joined as they are: invalid UTF-8 is passed through.
 * Errors: IG_ENOMEM (nothing is returned).
 */
ig_status ig_detokenize(const ig_vocab *v, const int32_t *ids, size_t n, bool render_special,
                        char **out, size_t *out_len);

/*
 * Streaming detokenizer: feed tokens one at a time; it emits only complete
 * UTF-8 characters, holding back a partial sequence until it completes, and
 * turning bytes that can never form valid UTF-8 into U+FFFD (one per maximal
 * invalid subpart, as the Unicode standard recommends: an invalid lead byte,
 * a stray continuation byte, an overlong or surrogate prefix, a sequence cut
 * short by a byte that cannot continue it).
 *
 * Like ig_detokenize it drops the leading space of the first piece that
 * yields bytes when the vocab adds a space prefix. To stream text that
 * continues earlier text (generated tokens after a prompt), set
 * `d->at_start = false` after ig_detok_init so that space is kept.
 *
 * The state is plain data: no allocation, nothing to free. One thread at a time.
 */
typedef struct ig_detok {
    const ig_vocab *vocab;
    bool render_special;
    bool at_start;            /* next piece is the first (SPM strips its leading space) */
    unsigned char pending[8]; /* an incomplete UTF-8 sequence held back (at most 3 bytes) */
    size_t n_pending;
} ig_detok;

void ig_detok_init(ig_detok *d, const ig_vocab *v, bool render_special);
/* A buffer size that is always enough for one ig_detok_push or ig_detok_flush. */
size_t ig_detok_bound(const ig_vocab *v);
/*
 * Feed one token; writes complete text into buf and returns bytes written.
 * If buf might be too small (cap < 3 * (held-back bytes + piece length); any
 * cap >= ig_detok_bound() is enough) it writes nothing, leaves the state as
 * it was and returns a size > cap to call again with.
 */
size_t ig_detok_push(ig_detok *d, int32_t id, char *buf, size_t cap);
/*
 * End of stream: an incomplete tail becomes one U+FFFD; returns bytes written
 * (0 or 3; with cap < 3 and a tail held, returns 3 and changes nothing).
 * The detokenizer is then ready for a new stream (at_start is left as it is).
 */
size_t ig_detok_flush(ig_detok *d, char *buf, size_t cap);

/* ---- used between the tokenizer's own files ---- */

/*
 * bpe.c: build the merge table and pre-tokenizer for v->pre (called by
 * ig_vocab_load after the tokens, scores, attributes and the text index are
 * loaded, and before the special token ids and add_bos/add_eos keys are read,
 * so it may set pre-specific defaults for add_bos/add_eos).
 */
ig_status ig__bpe_init(ig_vocab *v, const ig_gguf *g, ig_error *err);
void ig__bpe_free(ig_bpe_data *b);
/* bpe.c: tokenize one fragment of raw text that holds no special tokens. */
ig_status ig__bpe_encode(const ig_vocab *v, const char *text, size_t len, ig_tokens *out);
/*
 * bpe.c: map a byte-level BPE token text (GPT-2's bytes-to-unicode alphabet)
 * back to raw bytes. Writes up to `cap` bytes to out (out may be NULL when
 * cap is 0) and returns the full length. Characters outside the alphabet are
 * copied through unchanged, so the result is never longer than `len`.
 */
size_t ig__bpe_unmap(const char *text, size_t len, char *out, size_t cap);
/* bpe.c: raw bytes -> the byte-level BPE alphabet (inverse of ig__bpe_unmap); same contract. */
size_t ig__bpe_map(const char *bytes, size_t len, char *out, size_t cap);

/* spm.c / wpm.c: tokenize one fragment of raw text that holds no special tokens. */
ig_status ig__spm_encode(const ig_vocab *v, const char *text, size_t len, bool add_prefix,
                         ig_tokens *out);
ig_status ig__wpm_encode(const ig_vocab *v, const char *text, size_t len, ig_tokens *out);

#endif
