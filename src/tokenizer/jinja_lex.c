/*
 * jinja_lex.c: template text -> tokens, with jinja2's whitespace rules as
 * Hugging Face's apply_chat_template configures them (trim_blocks=True,
 * lstrip_blocks=True, keep_trailing_newline=False).
 *
 * The rules, in the order jinja2's lexer applies them:
 *   - "\r\n" and "\r" become "\n"; one trailing "\n" of the template is dropped.
 *   - Text before a tag: `{%-`, `{{-`, `{#-` strip all whitespace before the
 *     tag; otherwise, for `{%` and `{#` (not `{{`, not `{%+`), spaces and tabs
 *     between the start of the line and the tag are removed (lstrip_blocks).
 *     "Start of the line" includes text that directly follows a match ending in
 *     "\n" (e.g. a `%}` that ate its newline).
 *   - After a tag: `-%}`, `-}}`, `-#}` eat all following whitespace; `%}` and
 *     `#}` eat one following "\n" (trim_blocks) unless written `+%}` / `+#}`.
 *   - `}}` and `%}` only close a tag when brackets inside it are balanced.
 *   - `{% raw %}...{% endraw %}` is copied verbatim.
 * String literals are decoded like Python's "unicode-escape" codec.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/jinja.h"

typedef struct lexer {
    const char *s; /* normalized source */
    size_t n;
    size_t pos;
    ig__jarena *arena;
    ig__jtok *toks;
    size_t n_toks, cap_toks;
    /* Incremental offset -> line/column. */
    size_t lc_off;
    uint32_t lc_line;
    size_t lc_line_start;
    ig_error *err;
    ig_status status;
} lexer;

static void position(lexer *L, size_t off, uint32_t *line, uint32_t *col) {
    if (off < L->lc_off) {
        L->lc_off = 0;
        L->lc_line = 1;
        L->lc_line_start = 0;
    }
    for (; L->lc_off < off && L->lc_off < L->n; L->lc_off++) {
        if (L->s[L->lc_off] == '\n') {
            L->lc_line++;
            L->lc_line_start = L->lc_off + 1;
        }
    }
    *line = L->lc_line;
    /* Columns count characters, not bytes. */
    *col = (uint32_t)ig__jutf8_count(L->s + L->lc_line_start, off - L->lc_line_start) + 1;
}

static int fail(lexer *L, size_t off, const char *msg) {
    uint32_t line, col;
    position(L, off, &line, &col);
    L->status =
        ig_errorf(L->err, IG_EFORMAT, "chat template line %u, column %u: %s", line, col, msg);
    return -1;
}

static ig__jtok *push(lexer *L, int kind, size_t off, const char *text, size_t len) {
    if (L->n_toks == L->cap_toks) {
        size_t cap = L->cap_toks ? L->cap_toks * 2 : 64;
        ig__jtok *t = ig__ja_alloc(L->arena, cap * sizeof *t);
        if (!t) {
            L->status = ig_errorf(L->err, IG_ENOMEM, "out of memory lexing the chat template");
            return NULL;
        }
        if (L->n_toks) memcpy(t, L->toks, L->n_toks * sizeof *t);
        L->toks = t;
        L->cap_toks = cap;
    }
    ig__jtok *t = &L->toks[L->n_toks++];
    memset(t, 0, sizeof *t);
    t->kind = (uint8_t)kind;
    position(L, off, &t->line, &t->col);
    if (text) {
        char *copy = ig__ja_alloc(L->arena, len + 1);
        if (!copy) {
            L->status = ig_errorf(L->err, IG_ENOMEM, "out of memory lexing the chat template");
            return NULL;
        }
        memcpy(copy, text, len);
        t->text = copy;
        t->len = len;
    }
    return t;
}

/* Length of Python whitespace (\s) starting at p, or 0. */
static size_t space_at(const char *p, size_t n) {
    int32_t cp;
    size_t k = ig__jutf8_decode(p, n, &cp);
    return ig__py_isspace(cp) ? k : 0;
}

static size_t skip_space(const lexer *L, size_t pos) {
    size_t k;
    while (pos < L->n && (k = space_at(L->s + pos, L->n - pos)) > 0) pos += k;
    return pos;
}

/* New length of text[0:len] after Python's rstrip(). */
static size_t rstrip_len(const char *p, size_t len) {
    while (len > 0) {
        size_t start = len - 1;
        while (start > 0 && len - start < 4 && ((unsigned char)p[start] & 0xC0) == 0x80) start--;
        int32_t cp;
        size_t k = ig__jutf8_decode(p + start, len - start, &cp);
        if (start + k != len) { /* a stray byte: only ASCII whitespace counts */
            start = len - 1;
            cp = (unsigned char)p[start];
            if (cp >= 0x80) break;
        }
        if (!ig__py_isspace(cp)) break;
        len = start;
    }
    return len;
}

/* Emit the text before a tag, trimmed per the tag's sign and kind. */
static int emit_text(lexer *L, size_t start, size_t end, char sign, char kind, bool line_starting) {
    const char *text = L->s + start;
    size_t len = end - start;
    if (sign == '-') {
        len = rstrip_len(text, len);
    } else if (sign != '+' && kind != '{') {
        size_t l_pos = len;
        while (l_pos > 0 && text[l_pos - 1] != '\n') l_pos--;
        if (l_pos > 0 || line_starting) {
            bool all_space = l_pos < len;
            for (size_t i = l_pos; i < len;) {
                size_t k = space_at(text + i, len - i);
                if (!k) {
                    all_space = false;
                    break;
                }
                i += k;
            }
            if (all_space) len = l_pos;
        }
    }
    if (len == 0) return 0;
    return push(L, IG_JT_DATA, start, text, len) ? 0 : -1;
}

/* After a block/comment end marker at `end_at` (pointing at '%' or '#'), return the new position.
 */
static size_t after_block_end(const lexer *L, size_t marker_start, char sign) {
    size_t p = marker_start + 2; /* past "%}" */
    if (sign == '-') return skip_space(L, p);
    if (sign == '+') return p;
    if (p < L->n && L->s[p] == '\n') p++;
    return p;
}

static bool is_name_start(unsigned char ch) {
    return isalpha(ch) || ch == '_';
}
static bool is_name_char(unsigned char ch) {
    return isalnum(ch) || ch == '_';
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Decode a string literal's body (between the quotes) like Python's unicode-escape. */
static int lex_string(lexer *L, size_t start) {
    char q = L->s[start];
    size_t p = start + 1;
    while (p < L->n && L->s[p] != q) {
        if (L->s[p] == '\\' && p + 1 < L->n) p++;
        p++;
    }
    if (p >= L->n) return fail(L, start, "unterminated string literal");
    size_t body = start + 1, body_len = p - body;
    char *out = ig__ja_alloc(L->arena, body_len + 1);
    if (!out) {
        L->status = ig_errorf(L->err, IG_ENOMEM, "out of memory lexing the chat template");
        return -1;
    }
    size_t o = 0;
    const char *s = L->s + body;
    for (size_t i = 0; i < body_len;) {
        if (s[i] != '\\' || i + 1 >= body_len) {
            out[o++] = s[i++];
            continue;
        }
        char e = s[i + 1];
        int32_t cp = -1;
        size_t used = 2;
        switch (e) {
        case '\n':
            used = 2;
            cp = -2;
            break;
        case '\\':
            cp = '\\';
            break;
        case '\'':
            cp = '\'';
            break;
        case '"':
            cp = '"';
            break;
        case 'a':
            cp = 7;
            break;
        case 'b':
            cp = 8;
            break;
        case 'f':
            cp = 12;
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'v':
            cp = 11;
            break;
        case 'x':
        case 'u':
        case 'U': {
            int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            int32_t v = 0;
            if (i + 2 + (size_t)nd > body_len) return fail(L, body + i, "truncated \\x/\\u escape");
            for (int k = 0; k < nd; k++) {
                int h = hexval(s[i + 2 + k]);
                if (h < 0) return fail(L, body + i, "bad \\x/\\u escape in string literal");
                v = v * 16 + h;
            }
            if (v > 0x10FFFF) return fail(L, body + i, "escape out of Unicode range");
            cp = v;
            used = 2 + (size_t)nd;
            break;
        }
        default:
            if (e >= '0' && e <= '7') {
                int32_t v = 0;
                size_t k = 1;
                while (k <= 3 && i + k < body_len && s[i + k] >= '0' && s[i + k] <= '7') {
                    v = v * 8 + (s[i + k] - '0');
                    k++;
                }
                cp = v;
                used = k;
            }
            break;
        }
        if (cp == -1) { /* unknown escape: kept as written */
            out[o++] = s[i++];
            continue;
        }
        if (cp >= 0) o += ig__jutf8_encode(cp, out + o);
        i += used;
    }
    ig__jtok *t = push(L, IG_JT_STRING, start, NULL, 0);
    if (!t) return -1;
    out[o] = '\0';
    t->text = out;
    t->len = o;
    L->pos = p + 1;
    return 0;
}

static const char *const ops2[] = {"//", "**", "==", "!=", ">=", "<="};
static const char ops1[] = "+-/*%~[](){}><=.:|,;";

/* Tokens inside {{ }} or {% %}, up to and including the end marker. */
static int lex_tag(lexer *L, char kind, size_t tag_start) {
    char stack[64];
    size_t depth = 0;
    for (;;) {
        L->pos = skip_space(L, L->pos);
        size_t p = L->pos;
        if (p >= L->n)
            return fail(L, tag_start,
                        kind == '{' ? "unclosed '{{': missing '}}'"
                                    : "unclosed '{%': missing '%}'");
        const char *s = L->s + p;
        size_t left = L->n - p;
        if (depth == 0) {
            char close = kind == '{' ? '}' : '%';
            char sign = 0;
            size_t m = p;
            if ((s[0] == '-' || (s[0] == '+' && kind == '%')) && left >= 3) {
                sign = s[0];
                m++;
            }
            if (L->n - m >= 2 && L->s[m] == close && L->s[m + 1] == '}') {
                if (!push(L, kind == '{' ? IG_JT_VAR_END : IG_JT_BLOCK_END, p, NULL, 0)) return -1;
                if (kind == '{')
                    L->pos = sign == '-' ? skip_space(L, m + 2) : m + 2;
                else
                    L->pos = after_block_end(L, m, sign);
                return 0;
            }
        }
        unsigned char ch = (unsigned char)s[0];
        if (isdigit(ch)) {
            size_t k = 0;
            bool is_float = false;
            while (k < left && (isdigit((unsigned char)s[k]) ||
                                (s[k] == '_' && k + 1 < left && isdigit((unsigned char)s[k + 1]))))
                k++;
            if (k + 1 < left && s[k] == '.' && isdigit((unsigned char)s[k + 1])) {
                is_float = true;
                k++;
                while (k < left && (isdigit((unsigned char)s[k]) || s[k] == '_')) k++;
            }
            if (k < left && (s[k] == 'e' || s[k] == 'E')) {
                size_t e = k + 1;
                if (e < left && (s[e] == '+' || s[e] == '-')) e++;
                if (e < left && isdigit((unsigned char)s[e])) {
                    is_float = true;
                    k = e;
                    while (k < left && isdigit((unsigned char)s[k])) k++;
                }
            }
            char num[64];
            size_t nn = 0;
            for (size_t i = 0; i < k && nn < sizeof num - 1; i++)
                if (s[i] != '_') num[nn++] = s[i];
            num[nn] = '\0';
            if (k >= sizeof num) return fail(L, p, "number literal too long");
            ig__jtok *t = push(L, is_float ? IG_JT_FLOAT : IG_JT_INT, p, s, k);
            if (!t) return -1;
            if (is_float) {
                t->f = strtod(num, NULL);
            } else {
                char *end;
                unsigned long long v = strtoull(num, &end, 10);
                if (v > INT64_MAX) return fail(L, p, "integer literal too large");
                t->i = (int64_t)v;
            }
            L->pos = p + k;
            continue;
        }
        if (is_name_start(ch)) {
            size_t k = 1;
            while (k < left && is_name_char((unsigned char)s[k])) k++;
            if (!push(L, IG_JT_NAME, p, s, k)) return -1;
            L->pos = p + k;
            continue;
        }
        if (ch == '\'' || ch == '"') {
            if (lex_string(L, p)) return -1;
            continue;
        }
        size_t oplen = 0;
        for (size_t i = 0; i < sizeof ops2 / sizeof ops2[0]; i++)
            if (left >= 2 && s[0] == ops2[i][0] && s[1] == ops2[i][1]) oplen = 2;
        if (!oplen && strchr(ops1, ch) && ch) oplen = 1;
        if (!oplen) {
            char msg[64];
            snprintf(msg, sizeof msg, "unexpected character '%c'", isprint(ch) ? ch : '?');
            return fail(L, p, msg);
        }
        if (oplen == 1 && (ch == '(' || ch == '[' || ch == '{')) {
            if (depth == sizeof stack) return fail(L, p, "brackets nested too deeply");
            stack[depth++] = ch == '(' ? ')' : ch == '[' ? ']' : '}';
        } else if (oplen == 1 && (ch == ')' || ch == ']' || ch == '}')) {
            if (depth == 0 || stack[depth - 1] != (char)ch) {
                char msg[64];
                snprintf(msg, sizeof msg, "unexpected '%c'", ch);
                return fail(L, p, msg);
            }
            depth--;
        }
        if (!push(L, IG_JT_OP, p, s, oplen)) return -1;
        L->pos = p + oplen;
    }
}

/* If a `{% raw %}` opens at `t` (pointing at '{'), return the position after it, else 0. */
static size_t raw_begin(const lexer *L, size_t t) {
    size_t p = t + 2;
    if (p < L->n && (L->s[p] == '-' || L->s[p] == '+')) p++;
    p = skip_space(L, p);
    if (L->n - p < 3 || memcmp(L->s + p, "raw", 3) != 0) return 0;
    p = skip_space(L, p + 3);
    if (L->n - p >= 3 && L->s[p] == '-' && L->s[p + 1] == '%' && L->s[p + 2] == '}')
        return skip_space(L, p + 3);
    if (L->n - p >= 2 && L->s[p] == '%' && L->s[p + 1] == '}') return p + 2;
    return 0;
}

static int lex_raw(lexer *L, size_t body, size_t tag_start) {
    for (size_t p = body; p + 1 < L->n; p++) {
        if (L->s[p] != '{' || L->s[p + 1] != '%') continue;
        size_t q = p + 2;
        char sign = 0;
        if (q < L->n && (L->s[q] == '-' || L->s[q] == '+')) sign = L->s[q++];
        q = skip_space(L, q);
        if (L->n - q < 6 || memcmp(L->s + q, "endraw", 6) != 0) continue;
        q = skip_space(L, q + 6);
        char esign = 0;
        if (q < L->n && (L->s[q] == '-' || L->s[q] == '+')) esign = L->s[q++];
        if (L->n - q < 2 || L->s[q] != '%' || L->s[q + 1] != '}') continue;
        bool line_starting = body > 0 && L->s[body - 1] == '\n';
        if (emit_text(L, body, p, sign, '%', line_starting)) return -1;
        L->pos = after_block_end(L, q, esign);
        return 0;
    }
    return fail(L, tag_start, "missing {% endraw %}");
}

ig_status ig__jinja_lex(const char *src, size_t len, ig__jarena *arena, ig__jtok **out,
                        size_t *n_out, ig_error *err) {
    lexer L = {.arena = arena, .err = err, .lc_line = 1};
    /* Normalize newlines and drop one trailing newline (keep_trailing_newline=False). */
    char *norm = ig__ja_alloc(arena, len + 1);
    if (!norm) return ig_errorf(err, IG_ENOMEM, "out of memory lexing the chat template");
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            norm[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            norm[n++] = src[i];
        }
    }
    if (n > 0 && norm[n - 1] == '\n') n--;
    norm[n] = '\0';
    L.s = norm;
    L.n = n;

    bool line_starting = true;
    while (L.pos < L.n) {
        size_t t = L.pos;
        while (t + 1 < L.n &&
               !(L.s[t] == '{' && (L.s[t + 1] == '{' || L.s[t + 1] == '%' || L.s[t + 1] == '#')))
            t++;
        if (t + 1 >= L.n) {
            if (!push(&L, IG_JT_DATA, L.pos, L.s + L.pos, L.n - L.pos)) goto out_fail;
            break;
        }
        char kind = L.s[t + 1];
        char sign = 0;
        if (t + 2 < L.n && (L.s[t + 2] == '-' || L.s[t + 2] == '+')) sign = L.s[t + 2];
        if (kind == '{' && sign == '+') sign = 0; /* "{{+" is not a marker */
        size_t body = t + 2 + (sign ? 1 : 0);
        if (kind == '%') {
            size_t rb = raw_begin(&L, t);
            if (rb) {
                if (emit_text(&L, L.pos, t, sign, kind, line_starting)) goto out_fail;
                if (lex_raw(&L, rb, t)) goto out_fail;
                line_starting = L.pos > 0 && L.s[L.pos - 1] == '\n';
                continue;
            }
        }
        if (emit_text(&L, L.pos, t, sign, kind, line_starting)) goto out_fail;
        if (kind == '#') {
            size_t e = body;
            while (e + 1 < L.n && !(L.s[e] == '#' && L.s[e + 1] == '}')) e++;
            if (e + 1 >= L.n) {
                fail(&L, t, "missing end of comment tag '#}'");
                goto out_fail;
            }
            char esign = 0;
            if (e > body && (L.s[e - 1] == '-' || L.s[e - 1] == '+')) esign = L.s[e - 1];
            L.pos = after_block_end(&L, e, esign);
        } else {
            if (!push(&L, kind == '{' ? IG_JT_VAR_BEGIN : IG_JT_BLOCK_BEGIN, t, NULL, 0))
                goto out_fail;
            L.pos = body;
            if (lex_tag(&L, kind, t)) goto out_fail;
        }
        line_starting = L.pos > 0 && L.s[L.pos - 1] == '\n';
    }
    if (!push(&L, IG_JT_EOF, L.n, NULL, 0)) goto out_fail;
    *out = L.toks;
    *n_out = L.n_toks;
    return IG_OK;
out_fail:
    return L.status ? L.status : ig_errorf(err, IG_EFORMAT, "chat template: lexing failed");
}
