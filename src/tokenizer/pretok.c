/*
 * pretok.c: regex pre-tokenizers for byte-level BPE (see pretok.h).
 *
 * Why this emulates llama.cpp instead of running the models' regexes as is
 * ------------------------------------------------------------------------
 * The regexes come from the models' tokenizer.json files, written for a
 * Unicode-aware engine. llama.cpp (whose outputs are our test vectors) runs
 * them through C++ std::regex, which knows no Unicode categories, so it
 * rewrites them first; we reproduce that rewriting so that we cut exactly
 * where it does:
 *
 *  - "Collapsed" regexes (those that name \p{N}, \p{L}, \p{P}, \p{M} or
 *    \p{S}) run over a copy of the text in which every non-ASCII code point
 *    is replaced by one stand-in per class: a whitespace one becomes U+000B,
 *    a letter U+E0D2, a number U+E0D1, punctuation U+E0D3, a mark U+E0D4, a
 *    symbol U+E0D5, anything else U+E0D0. Each \p{X} in the regex becomes a
 *    class of X's stand-in plus the ASCII members of X as llama.cpp lists
 *    them (so, like llama.cpp, \p{S} does not match an ASCII '~').
 *  - Other regexes run over the code points as they are, except that
 *    non-ASCII whitespace becomes U+000B (and, because PCRE2 cannot take
 *    them, lone surrogates become U+E0D0, which no regex class names).
 *  - \s, \d, \w and \b are ASCII-only (no PCRE2_UCP), as in std::regex in the
 *    "C" locale; non-ASCII whitespace still matches \s through U+000B.
 *  - '$' matches only at the very end of the piece (PCRE2_DOLLAR_ENDONLY),
 *    and every regex sees one piece at a time as its whole subject, so
 *    look-arounds stop at piece edges.
 *  - An empty match splits the piece but yields no piece; after one, the
 *    next match is tried at the same place non-empty and anchored, then one
 *    code point further on (std::regex_iterator's rule).
 * llama.cpp also has hand-written splitters for the GPT-2 and Llama-3
 * regexes; they cut exactly where the regex does, so we need no equivalent.
 * Two regexes we run in a faster but equivalent form (tests check both
 * against llama.cpp's spelling on random text): the o200k letter classes
 * (CL_UP etc.) and superbpe's digit grouping (split_digit_threes).
 *
 * Cost: PCRE2 with JIT; a 1 MB single word or digit run splits in ~0.1-0.3 s.
 * Regexes that backtrack over long runs can still hit PCRE2's match limit,
 * which split() reports as IG_ERANGE rather than running unbounded.
 *
 * Unicode classes come from utf8proc; whitespace is the White_Space set
 * (the set llama.cpp's tables hold).
 *
 * Text is decoded leniently, as llama.cpp decodes it: a byte that does not
 * start a complete sequence becomes U+FFFD; overlong forms and surrogates are
 * accepted as the code point they spell; values past U+10FFFF become U+FFFD.
 *
 * A compiled ig_pretok is immutable; split() allocates its own match state.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "tokenizer/pretok.h"

#include <pcre2.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/error.h"

/* ---- the regex lists, by tokenizer.ggml.pre name ---- */

#define RE_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_GPT2         "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3                                                                                  \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"   \
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                                   \
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"        \
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_PORO " ?[^(\\s|.,!?…。，、।۔،)]+"
/*
 * o200k-style regexes want runs of "upper" then "lower" letters. llama.cpp
 * spells a letter that is not ASCII lowercase as ((?=[\p{L}])([^a-z])); on the
 * collapsed text that is exactly the class [L-stand-in A-Z] (and "not ASCII
 * uppercase" is [L-stand-in a-z]), which we write out directly: same matches,
 * but no capture group per character (which made PCRE2 run out of stack and
 * time on long words). UP/LO are those classes; \x{E0D2}/\x{E0D4} are the
 * letter/mark stand-ins (see "collapsed" above), so these regexes must also
 * name a \p{..} class to run collapsed, which they do.
 */
#define CL_UP   "[\\x{E0D2}A-Z]"
#define CL_LO   "[\\x{E0D2}a-z]"
#define CL_UP_M "[\\x{E0D2}\\x{E0D4}A-Z]"
#define CL_LO_M "[\\x{E0D2}\\x{E0D4}a-z]"
#define RE_O200K(UP, LO)                                                                           \
    "[^\\r\\n\\p{L}\\p{N}]?" UP "*" LO "+" RE_CONTRACTIONS "?|[^\\r\\n\\p{L}\\p{N}]?" UP "+" LO    \
    "*" RE_CONTRACTIONS                                                                            \
    "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

/* superbpe's second regex: cut digit runs into threes from the right. Run by split_digit_threes().
 */
#define RE_DIGIT_THREES "(?=(\\d{3})+(?!\\d))"

static const char *const re_default[] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+",
                                         "[0-9][0-9][0-9]", NULL};
static const char *const re_gpt2[] = {RE_GPT2, NULL};
static const char *const re_llama3[] = {RE_LLAMA3, NULL};
static const char *const re_jais2[] = {
    RE_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|"
    "\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}",
    NULL};
static const char *const re_deepseek_llm[] = {
    "[\r\n]",
    "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}"
    "\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}"
    "\\x{37F}\\x{386}\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}"
    "\\x{3F7}-\\x{481}\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}"
    "\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}\\x{1CBD}-\\x{1CBF}"
    "\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}"
    "\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}"
    "\\x{1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}"
    "\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}"
    "\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}"
    "\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}"
    "\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}\\x{213C}-\\x{213F}"
    "\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}"
    "\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}"
    "\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}"
    "\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}"
    "\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}"
    "\\x{10CC0}-\\x{10CF2}\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+",

    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
    NULL};
static const char *const re_deepseek_v3[] = {
    "\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./"
    ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
    " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_deepseek_coder[] = {
    "[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}", NULL};
static const char *const re_falcon[] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]",
                                        NULL};
static const char *const re_starcoder[] = {"\\p{N}", RE_GPT2, NULL};
static const char *const re_qwen2[] = {RE_QWEN2, NULL};
static const char *const re_qwen35[] = {
    RE_CONTRACTIONS
    "|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_poro[] = {RE_PORO, NULL};
static const char *const re_viking[] = {RE_PORO, "\\p{N}", NULL};
static const char *const re_tekken[] = {
    "[^\\r\\n\\p{L}\\p{N}]?" CL_UP "*" CL_LO "+|[^\\r\\n\\p{L}\\p{N}]?" CL_UP "+" CL_LO "*|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_chameleon[] = {"<sentinel:[0-9]+>",
                                           "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                                           "([\\t\\n]|    |  )",
                                           "\\p{N}",
                                           "[\\p{P}!-/:-@\\[-`{-~]",
                                           RE_GPT2,
                                           NULL};
static const char *const re_gpt4o[] = {RE_O200K(CL_UP, CL_LO), NULL};
static const char *const re_inkling[] = {RE_O200K(CL_UP_M, CL_LO_M), NULL};
static const char *const re_superbpe[] = {"\\p{N}+", RE_DIGIT_THREES, NULL};
static const char *const re_bailingmoe[] = {
    "'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_seed_coder[] = {
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|"
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_minicpm5[] = {
    "\\p{N}{1,3}",
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
    NULL};
static const char *const re_laguna[] = {"[^\\n]+|[\\n]+", RE_QWEN2, NULL};
static const char *const re_exaone_moe[] = {
    RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}|"
                    " ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+",
    NULL};

typedef struct pre_def {
    const char *names[20];      /* tokenizer.ggml.pre values, NULL-terminated */
    const char *const *regexes; /* applied in order, NULL-terminated */
    unsigned flags;             /* a piece that is a token skips the merges */
} pre_def;

static const pre_def pre_defs[] = {
    {{"default"}, re_default, 0},
    {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
      "jina-v5-nano"},
     re_llama3,
     IG_PRETOK_IGNORE_MERGES | IG_PRETOK_ADD_BOS},
    {{"dbrx", "smaug-bpe"}, re_llama3, 0},
    {{"glm4", "chatglm-bpe"}, re_llama3, IG_PRETOK_NO_BOS},
    {{"jais-2"}, re_jais2, 0},
    {{"deepseek-llm"}, re_deepseek_llm, 0},
    {{"deepseek-v3", "hunyuan-dense", "joyai-llm"}, re_deepseek_v3, 0},
    {{"deepseek-coder"}, re_deepseek_coder, 0},
    {{"falcon"}, re_falcon, 0},
    {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"},
     re_starcoder,
     0},
    {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
      "mellum", "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe", "exaone4", "mpt",
      "olmo", "jais", "trillion", "granite-docling"},
     re_gpt2,
     0},
    {{"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2", "hunyuan",
      "solar-open", "grok-2"},
     re_qwen2,
     0},
    {{"qwen35"}, re_qwen35, 0},
    {{"poro-chat", "bloom", "gpt3-finnish"}, re_poro, 0},
    {{"viking"}, re_viking, 0},
    {{"tekken"}, re_tekken, IG_PRETOK_IGNORE_MERGES | IG_PRETOK_ADD_BOS},
    {{"chameleon"}, re_chameleon, IG_PRETOK_ADD_BOS},
    {{"gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"}, re_gpt4o, 0},
    {{"inkling"}, re_inkling, 0},
    {{"granite-embed-multi-97m"}, re_inkling, IG_PRETOK_IGNORE_MERGES},
    {{"superbpe"}, re_superbpe, 0},
    {{"bailingmoe", "bailingmoe2", "llada-moe"}, re_bailingmoe, 0},
    {{"seed-coder"}, re_seed_coder, 0},
    {{"minicpm5"}, re_minicpm5, IG_PRETOK_IGNORE_MERGES},
    {{"laguna"}, re_laguna, 0},
    {{"exaone-moe"}, re_exaone_moe, 0},
};

/* ---- Unicode classes ---- */

enum { MODE_WIDE = 0, MODE_COLLAPSED = 1, N_MODES = 2 };

/* Stand-ins of the collapsed text (private-use code points). */
enum {
    CP_OTHER = 0xE0D0,
    CP_NUMBER = 0xE0D1,
    CP_LETTER = 0xE0D2,
    CP_PUNCT = 0xE0D3,
    CP_MARK = 0xE0D4,
    CP_SYMBOL = 0xE0D5,
};

static bool is_whitespace(uint32_t cp) {
    if (cp < 0x80) return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20;
    switch (cp) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

/* The collapsed stand-in of a non-ASCII code point. */
static uint32_t collapse_cp(uint32_t cp) {
    if (is_whitespace(cp)) return 0x0B;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
        return CP_LETTER;
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
        return CP_MARK;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
        return CP_NUMBER;
    case UTF8PROC_CATEGORY_PC:
    case UTF8PROC_CATEGORY_PD:
    case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI:
    case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return CP_PUNCT;
    case UTF8PROC_CATEGORY_SM:
    case UTF8PROC_CATEGORY_SC:
    case UTF8PROC_CATEGORY_SK:
    case UTF8PROC_CATEGORY_SO:
        return CP_SYMBOL;
    default:
        return CP_OTHER;
    }
}

/* The class body that replaces \p{X} in a collapsed regex, or NULL if X is not one we collapse. */
static const char *collapsed_class(char x) {
    switch (x) {
    case 'N':
        return "\\x{E0D1}0-9";
    case 'L':
        return "\\x{E0D2}A-Za-z";
    case 'P':
        return "\\x{E0D3}!-#%-*,-/:;?@\\[-\\]_\\{\\}";
    case 'M':
        return "\\x{E0D4}";
    case 'S':
        return "\\x{E0D5}\\$\\+<->\\^`\\|";
    default:
        return NULL;
    }
}

static bool names_collapsed_class(const char *re) {
    for (const char *p = re; (p = strstr(p, "\\p{")) != NULL; p += 3) {
        if (p[3] && p[4] == '}' && collapsed_class(p[3])) return true;
    }
    return false;
}

/* Rewrite each \p{X} of `re` for the collapsed text (malloc'd; NULL on OOM). */
static char *collapse_regex(const char *re) {
    size_t len = strlen(re);
    char *out = malloc(len * 8 + 1); /* each 5-byte \p{X} grows to at most 38 bytes */
    if (!out) return NULL;
    size_t o = 0;
    bool in_class = false;
    for (size_t i = 0; i < len; i++) {
        char c = re[i];
        if (c == '\\' && i + 1 < len) {
            const char *body = NULL;
            if (re[i + 1] == 'p' && i + 4 < len && re[i + 2] == '{' && re[i + 4] == '}')
                body = collapsed_class(re[i + 3]);
            if (body) {
                if (!in_class) out[o++] = '[';
                memcpy(out + o, body, strlen(body));
                o += strlen(body);
                if (!in_class) out[o++] = ']';
                i += 4;
            } else {
                out[o++] = c;
                out[o++] = re[++i];
            }
            continue;
        }
        if (c == '[' && !in_class)
            in_class = true;
        else if (c == ']' && in_class)
            in_class = false;
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

/* ---- UTF-8 ---- */

size_t ig__utf8_decode(const unsigned char *s, size_t len, uint32_t *cp) {
    unsigned char b = s[0];
    size_t n;
    uint32_t v;
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    if ((b & 0xE0) == 0xC0)
        n = 2, v = b & 0x1F;
    else if ((b & 0xF0) == 0xE0)
        n = 3, v = b & 0x0F;
    else if ((b & 0xF8) == 0xF0)
        n = 4, v = b & 0x07;
    else
        n = 0, v = 0;
    if (n == 0 || n > len) goto bad;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) goto bad;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v > 0x10FFFF) goto bad;
    *cp = v;
    return n;
bad:
    *cp = 0xFFFD;
    return 1;
}

size_t ig__utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- compiled pre-tokenizer ---- */

typedef struct compiled_re {
    pcre2_code *code; /* NULL for RE_DIGIT_THREES, which split_digit_threes() runs */
    int mode;         /* MODE_WIDE or MODE_COLLAPSED */
} compiled_re;

struct ig_pretok {
    unsigned flags;  /* IG_PRETOK_* */
    compiled_re *re; /* [n_re] */
    size_t n_re;
    bool uses_mode[N_MODES];
};

void ig__pretok_free(ig_pretok *p) {
    if (!p) return;
    for (size_t i = 0; i < p->n_re; i++) pcre2_code_free(p->re[i].code);
    free(p->re);
    free(p);
}

ig_status ig__pretok_new(const char *name, ig_pretok **out, ig_error *err) {
    for (size_t i = 0; i < sizeof pre_defs / sizeof pre_defs[0]; i++) {
        for (const char *const *n = pre_defs[i].names; *n; n++) {
            if (strcmp(*n, name) == 0)
                return ig__pretok_new_regexes(name, pre_defs[i].regexes, pre_defs[i].flags, out,
                                              err);
        }
    }
    return ig_errorf(err, IG_EUNSUPPORTED, "pre-tokenizer '%s' is not supported", name);
}

ig_status ig__pretok_new_regexes(const char *name, const char *const *regexes, unsigned flags,
                                 ig_pretok **out, ig_error *err) {
    ig_status st = IG_OK;
    ig_pretok *p = NULL;
    char *collapsed = NULL;

    p = calloc(1, sizeof *p);
    if (!p) goto oom;
    p->flags = flags;
    size_t n = 0;
    while (regexes[n]) n++;
    p->re = calloc(n ? n : 1, sizeof *p->re);
    if (!p->re) goto oom;

    for (size_t i = 0; i < n; i++) {
        const char *re = regexes[i];
        if (strcmp(re, RE_DIGIT_THREES) == 0) {
            p->n_re = i + 1; /* code stays NULL */
            continue;
        }
        int mode = names_collapsed_class(re) ? MODE_COLLAPSED : MODE_WIDE;
        if (mode == MODE_COLLAPSED) {
            collapsed = collapse_regex(re);
            if (!collapsed) goto oom;
            re = collapsed;
        }
        int errcode;
        PCRE2_SIZE erroff;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED,
                                         PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &errcode, &erroff, NULL);
        if (!code) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(errcode, msg, sizeof msg);
            st = ig_errorf(err, IG_EINTERNAL, "pre-tokenizer '%s': regex %zu: %s at offset %zu",
                           name, i, (const char *)msg, (size_t)erroff);
            goto fail;
        }
        /* JIT is an optimisation only: without it pcre2_match() interprets. */
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        p->re[i].code = code;
        p->re[i].mode = mode;
        p->n_re = i + 1;
        p->uses_mode[mode] = true;
        free(collapsed);
        collapsed = NULL;
    }
    *out = p;
    return IG_OK;

oom:
    st = ig_errorf(err, IG_ENOMEM, "out of memory compiling pre-tokenizer '%s'", name);
fail:
    free(collapsed);
    ig__pretok_free(p);
    return st;
}

unsigned ig__pretok_flags(const ig_pretok *p) {
    return p->flags;
}

/* ---- splitting ---- */

/* The text as one regex mode sees it. */
typedef struct mode_text {
    char *buf;    /* UTF-8 */
    size_t *boff; /* [n_cp + 1] byte offset of code point i */
} mode_text;

/* Growable list of piece ends, in code points. */
typedef struct ends_list {
    size_t *v;
    size_t n, cap;
} ends_list;

static bool ends_push(ends_list *l, size_t end) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        size_t *v = realloc(l->v, cap * sizeof *v);
        if (!v) return false;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = end;
    return true;
}

static bool build_mode_text(const uint32_t *cps, size_t n, int mode, mode_text *mt) {
    mt->buf = malloc(n * 4 + 1);
    mt->boff = malloc((n + 1) * sizeof *mt->boff);
    if (!mt->buf || !mt->boff) return false;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = cps[i];
        if (cp >= 0x80) {
            if (mode == MODE_COLLAPSED)
                cp = collapse_cp(cp);
            else if (is_whitespace(cp))
                cp = 0x0B;
            else if (cp >= 0xD800 && cp <= 0xDFFF)
                cp = CP_OTHER;
        }
        mt->boff[i] = o;
        o += ig__utf8_encode(cp, mt->buf + o);
    }
    mt->boff[n] = o;
    mt->buf[o] = '\0';
    return true;
}

/* Per-call match state (pcre2 match data and JIT stack are not shareable between threads). */
typedef struct matcher {
    pcre2_match_data *md;
    pcre2_match_context *mc;
    pcre2_jit_stack *js; /* NULL when JIT is unavailable */
} matcher;

/* JIT stack: PCRE2's default is 32 KiB on the machine stack; give it room to grow on the heap. */
enum { JIT_STACK_START = 32 * 1024, JIT_STACK_MAX = 1024 * 1024 };

static bool matcher_init(matcher *m) {
    m->md = pcre2_match_data_create(1, NULL);
    m->mc = pcre2_match_context_create(NULL);
    if (!m->md || !m->mc) return false;
    m->js = pcre2_jit_stack_create(JIT_STACK_START, JIT_STACK_MAX, NULL);
    if (m->js) pcre2_jit_stack_assign(m->mc, NULL, m->js);
    return true;
}

static void matcher_deinit(matcher *m) {
    pcre2_jit_stack_free(m->js);
    pcre2_match_context_free(m->mc);
    pcre2_match_data_free(m->md);
}

/* One pcre2_match, falling back to the interpreter if the JIT stack still runs out. */
static int run_match(const pcre2_code *code, const char *subj, size_t len, size_t start,
                     uint32_t opts, matcher *m) {
    opts |= PCRE2_NO_UTF_CHECK; /* we built the subject: valid UTF-8, no surrogates */
    int rc = pcre2_match(code, (PCRE2_SPTR)subj, len, start, opts, m->md, m->mc);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT)
        rc = pcre2_match(code, (PCRE2_SPTR)subj, len, start, opts | PCRE2_NO_JIT, m->md, m->mc);
    return rc;
}

/* The code point starting at byte `off` of mt; *cursor only moves forward (offsets rise). */
static size_t cp_at(const mode_text *mt, size_t *cursor, size_t off) {
    while (mt->boff[*cursor] < off) (*cursor)++;
    return *cursor;
}

/*
 * Cut the code points [cs, ce) (bytes [boff[cs], boff[ce]) of `mt`) with one
 * regex, appending piece ends to `out`.
 */
static ig_status split_chunk(const compiled_re *re, const mode_text *mt, size_t cs, size_t ce,
                             matcher *m, ends_list *out) {
    const char *subj = mt->buf + mt->boff[cs];
    const size_t base = mt->boff[cs], len = mt->boff[ce] - base;
    size_t cursor = cs; /* code point whose offset we look at next */
    size_t prev = 0;    /* end of the last match, bytes into subj */
    size_t pos = 0;
    bool after_empty = false;

    for (;;) {
        uint32_t opts = after_empty ? (PCRE2_NOTEMPTY_ATSTART | PCRE2_ANCHORED) : 0;
        int rc = run_match(re->code, subj, len, pos, opts, m);
        if (rc == PCRE2_ERROR_NOMATCH) {
            if (!after_empty) break;
            /* step one code point past the empty match and search again */
            after_empty = false;
            size_t cp_idx = cp_at(mt, &cursor, base + pos);
            pos = mt->boff[cp_idx + 1] - base;
            continue;
        }
        if (rc < 0) return rc == PCRE2_ERROR_NOMEMORY ? IG_ENOMEM : IG_ERANGE;
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > prev && !ends_push(out, cp_at(mt, &cursor, base + ms))) return IG_ENOMEM;
        if (me > ms && !ends_push(out, cp_at(mt, &cursor, base + me))) return IG_ENOMEM;
        prev = me;
        pos = me;
        after_empty = me == ms;
        if (after_empty && me == len) break;
    }
    if (prev < len && !ends_push(out, ce)) return IG_ENOMEM;
    return IG_OK;
}

/*
 * RE_DIGIT_THREES on code points [cs, ce): the lookahead matches (empty) at
 * each p where the ASCII-digit run starting at p has a length that is a
 * positive multiple of 3, and an empty match only cuts. Running the regex
 * would cost O(n) per position on a long run of digits, this costs O(n).
 */
static ig_status split_digit_threes(const uint32_t *cps, size_t cs, size_t ce, ends_list *out) {
    for (size_t p = cs; p < ce;) {
        if (cps[p] < '0' || cps[p] > '9') {
            p++;
            continue;
        }
        size_t e = p;
        while (e < ce && cps[e] >= '0' && cps[e] <= '9') e++;
        for (size_t q = p; q < e; q++)
            if (q > cs && (e - q) % 3 == 0 && !ends_push(out, q)) return IG_ENOMEM;
        p = e;
    }
    return ends_push(out, ce) ? IG_OK : IG_ENOMEM;
}

void ig__pretok_pieces_free(ig_pretok_pieces *pieces) {
    free(pieces->text);
    free(pieces->ends);
    memset(pieces, 0, sizeof *pieces);
}

ig_status ig__pretok_split(const ig_pretok *p, const char *text, size_t len,
                           ig_pretok_pieces *out) {
    ig_status st = IG_OK;
    uint32_t *cps = NULL;
    mode_text mt[N_MODES] = {{0}};
    ends_list cur = {0}, next = {0};
    matcher mm = {0};
    size_t n = 0;

    /* decode */
    cps = malloc((len + 1) * sizeof *cps);
    if (!cps) goto oom;
    for (size_t i = 0; i < len;) {
        i += ig__utf8_decode((const unsigned char *)text + i, len - i, &cps[n]);
        n++;
    }

    /* cut with each regex in turn */
    if (n > 0 && !ends_push(&cur, n)) goto oom;
    for (int m = 0; m < N_MODES; m++) {
        if (p->uses_mode[m] && n > 0 && !build_mode_text(cps, n, m, &mt[m])) goto oom;
    }
    if (!matcher_init(&mm)) goto oom;
    for (size_t r = 0; r < p->n_re && n > 0; r++) {
        next.n = 0;
        size_t cs = 0;
        for (size_t k = 0; k < cur.n; k++) {
            const compiled_re *re = &p->re[r];
            st = re->code ? split_chunk(re, &mt[re->mode], cs, cur.v[k], &mm, &next)
                          : split_digit_threes(cps, cs, cur.v[k], &next);
            if (st != IG_OK) goto fail;
            cs = cur.v[k];
        }
        ends_list t = cur;
        cur = next;
        next = t;
    }

    /* re-encode the code points and turn piece ends into byte offsets */
    char *buf = realloc(out->text, n * 4 + 1);
    if (!buf) goto oom;
    out->text = buf;
    size_t *ends = realloc(out->ends, (cur.n ? cur.n : 1) * sizeof *ends);
    if (!ends) goto oom;
    out->ends = ends;
    size_t o = 0, k = 0;
    for (size_t i = 0; i < n; i++) {
        o += ig__utf8_encode(cps[i], buf + o);
        if (k < cur.n && cur.v[k] == i + 1) ends[k++] = o;
    }
    buf[o] = '\0';
    out->text_len = o;
    out->n = cur.n;
    goto done;

oom:
    st = IG_ENOMEM;
fail:
    out->n = 0;
    out->text_len = 0;
done:
    matcher_deinit(&mm);
    free(cur.v);
    free(next.v);
    for (int m = 0; m < N_MODES; m++) {
        free(mt[m].buf);
        free(mt[m].boff);
    }
    free(cps);
    return st;
}
