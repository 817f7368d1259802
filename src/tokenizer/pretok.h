/*
 * pretok.h: the regex pre-tokenizer of byte-level BPE vocabularies
 * (tokenizer.ggml.pre). Internal to the tokenizer.
 *
 * Model of use
 * ------------
 * A pre-tokenizer cuts text into pieces ("words") before BPE merges run, so
 * no merge ever crosses a piece boundary. Each tokenizer.ggml.pre name selects
 * an ordered list of regexes; the first regex cuts the whole text, and each
 * following regex cuts every piece the previous one produced. A regex cuts a
 * piece into its matches *and* the unmatched gaps between them: nothing is
 * ever dropped, so concatenating the pieces gives back the (normalized) text.
 *
 * ig__pretok_new() compiles the list once (PCRE2, JIT when available); the
 * compiled object is immutable, so any number of threads may split with it
 * at once (each call allocates its own match state).
 *
 * The matching follows llama.cpp's pre-tokenizer exactly, including how it
 * treats Unicode (see pretok.c's opening comment): the input is decoded
 * leniently (each byte that does not start a well-formed sequence becomes
 * U+FFFD), and the pieces are returned as UTF-8 re-encoded from the decoded
 * code points.
 */
#ifndef IG_TOKENIZER_PRETOK_H
#define IG_TOKENIZER_PRETOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"

typedef struct ig_pretok ig_pretok;

/*
 * Compile the pre-tokenizer named `name` (a tokenizer.ggml.pre value such as
 * "gpt-2", "llama-bpe", "qwen2"; "default" for a vocabulary that names none).
 * On success *out owns it (free with ig__pretok_free). Errors:
 * IG_EUNSUPPORTED for a name we do not know ("pre-tokenizer 'X' is not
 * supported"), IG_ENOMEM, IG_EINTERNAL if a built-in regex fails to compile.
 */
ig_status ig__pretok_new(const char *name, ig_pretok **out, ig_error *err);
void ig__pretok_free(ig_pretok *p);

/*
 * Compile a pre-tokenizer from a NULL-terminated list of regexes in
 * llama.cpp's dialect (\p{N}, \p{L}, \p{P}, \p{M}, \p{S} collapsed as
 * described in pretok.c), with IG_PRETOK_* flags; `name` is for messages.
 * For tests and experiments; the same errors as ig__pretok_new (a regex that
 * does not compile gives IG_EINTERNAL naming it and the offset).
 */
ig_status ig__pretok_new_regexes(const char *name, const char *const *regexes, unsigned flags,
                                 ig_pretok **out, ig_error *err);

/*
 * What else llama.cpp ties to a pre-tokenizer name (flags, or-ed):
 * IG_PRETOK_IGNORE_MERGES: a piece that is itself a token skips the merges
 * (llama3, tekken, ...); IG_PRETOK_ADD_BOS: the vocabulary adds BOS unless
 * its GGUF says otherwise; IG_PRETOK_NO_BOS: it has no BOS token unless its
 * GGUF names one.
 */
enum {
    IG_PRETOK_IGNORE_MERGES = 1u << 0,
    IG_PRETOK_ADD_BOS = 1u << 1,
    IG_PRETOK_NO_BOS = 1u << 2,
};
unsigned ig__pretok_flags(const ig_pretok *p);

/* The pieces of one text. Zero-initialise; free with ig__pretok_pieces_free. */
typedef struct ig_pretok_pieces {
    char *text;      /* the normalized UTF-8 text, NUL-terminated (owned) */
    size_t text_len; /* bytes */
    size_t *ends;    /* [n] byte offset in `text` where piece i ends; piece i starts at ends[i-1] */
    size_t n;        /* pieces (none is empty) */
} ig_pretok_pieces;

/*
 * Split `len` bytes of `text` (any bytes) into pieces, replacing whatever
 * *out held (its buffers are reused). Returns IG_OK, IG_ENOMEM, or
 * IG_ERANGE when the regex engine gives up on a pathological input (PCRE2's
 * match limit), leaving *out with no pieces.
 */
ig_status ig__pretok_split(const ig_pretok *p, const char *text, size_t len, ig_pretok_pieces *out);
void ig__pretok_pieces_free(ig_pretok_pieces *pieces);

/*
 * Decode one code point from s[0..len) (len >= 1) leniently, as the splitter
 * does: a byte that does not start a complete sequence gives U+FFFD, as does
 * a value past U+10FFFF. Returns the bytes consumed (>= 1).
 */
size_t ig__utf8_decode(const unsigned char *s, size_t len, uint32_t *cp);
/* Encode cp (<= U+10FFFF; surrogates too) into out[0..4); returns the bytes written. */
size_t ig__utf8_encode(uint32_t cp, char *out);

#endif
