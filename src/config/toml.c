/*
 * toml.c: the TOML reader (see toml.h for what it accepts).
 *
 * A recursive-descent parser over the whole text in memory. The parser keeps
 * its first error (a byte offset turned into line:column, and a reason) and
 * stops there; everything built so far is freed by the caller of the loop.
 *
 * Tables remember how they came to be (`kind`), because TOML allows a table
 * to be opened only once and only one way:
 *   IMPLICIT  created as a parent of a header ([a] for [a.b]): a header may
 *             still define it once (then it becomes HEADER);
 *   HEADER    defined by its [header]: never again, and dotted keys from a
 *             parent may not reach into it;
 *   DOTTED    created by a dotted key (a.b = 1 creates a), or an IMPLICIT
 *             table that a dotted key reached: dotted keys may add to it,
 *             headers may open sub-tables below it, but not itself;
 *   INLINE    an inline table { ... }: closed, nothing may add to it;
 *   ROOT      the document.
 * Nesting is bounded (MAX_DEPTH arrays/inline tables, MAX_KEY_PARTS parts per
 * key), so the recursion here and in ig_toml_free stays shallow whatever the
 * input.
 */
#include "config/toml.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"

enum { KIND_ROOT = 1, KIND_IMPLICIT, KIND_HEADER, KIND_DOTTED, KIND_INLINE };

enum {
    MAX_DEPTH = 64,      /* arrays and inline tables inside each other */
    MAX_KEY_PARTS = 64,  /* parts of one dotted key or header */
    INDEX_MIN_KEYS = 16, /* tables with more keys than this get a hash index */
};

typedef struct parser {
    const char *s;    /* the text */
    size_t len;       /* bytes */
    size_t pos;       /* next byte to read */
    const char *name; /* for messages */
    ig_error *err;
    ig_status status;  /* IG_OK until the first error */
    int depth;         /* arrays and inline tables open now */
    size_t lc_pos;     /* line/column cache: offset ... */
    int lc_line;       /* ... its line ... */
    int lc_col;        /* ... and column (both 1-based) */
    char section[256]; /* the current [header]'s key, for messages ("" at the top) */
} parser;

/* One part of a key as written. */
typedef struct key_part {
    char *str;        /* owned until inserted into a table (then NULL) */
    const char *view; /* the same text, still readable once the table owns it */
    size_t len;       /* bytes */
    size_t pos;       /* offset where it was written */
    int line, col;    /* the same as a position */
    bool bare;        /* written without quotes */
} key_part;

typedef struct key_path {
    key_part parts[MAX_KEY_PARTS];
    int n;
} key_path;

typedef struct strbuf {
    char *p;
    size_t n, cap;
} strbuf;

/* ---- positions and errors ------------------------------------------------ */

static void linecol(parser *p, size_t at, int *line, int *col) {
    if (at < p->lc_pos) {
        p->lc_pos = 0;
        p->lc_line = 1;
        p->lc_col = 1;
    }
    if (at > p->len) at = p->len;
    for (size_t i = p->lc_pos; i < at; i++) {
        unsigned char c = (unsigned char)p->s[i];
        if (c == '\n') {
            if (p->lc_line < INT_MAX) p->lc_line++;
            p->lc_col = 1;
        } else if ((c & 0xC0) != 0x80 && p->lc_col < INT_MAX) {
            p->lc_col++;
        }
    }
    p->lc_pos = at;
    *line = p->lc_line;
    *col = p->lc_col;
}

static bool failed(const parser *p) {
    return p->status != IG_OK;
}

static void failv(parser *p, ig_status code, size_t at, const char *fmt, va_list ap) {
    if (failed(p)) return;
    char msg[400];
    vsnprintf(msg, sizeof msg, fmt, ap);
    int line, col;
    linecol(p, at, &line, &col);
    p->status = code;
    ig_errorf(p->err, code, "%s:%d:%d: %s", p->name, line, col, msg);
}

static void fail(parser *p, size_t at, const char *fmt, ...) IG_PRINTF(3, 4);
static void fail(parser *p, size_t at, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    failv(p, IG_EFORMAT, at, fmt, ap);
    va_end(ap);
}

static void fail_oom(parser *p) {
    if (failed(p)) return;
    int line, col;
    linecol(p, p->pos, &line, &col);
    p->status = IG_ENOMEM;
    ig_errorf(p->err, IG_ENOMEM, "%s:%d:%d: out of memory", p->name, line, col);
}

/* A short description of the byte at `at` for messages: 'x', end of line,
 * end of file, or U+XXXX / byte 0xXX. */
static const char *describe(const parser *p, size_t at, char buf[32]) {
    if (at >= p->len) return "end of file";
    unsigned char c = (unsigned char)p->s[at];
    if (c == '\n' || (c == '\r' && at + 1 < p->len && p->s[at + 1] == '\n')) return "end of line";
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, 32, "'%c'", c);
    else if (c < 0x80)
        snprintf(buf, 32, "U+%04X", c);
    else
        snprintf(buf, 32, "byte 0x%02X", c);
    return buf;
}

/* Copy a key for a message: printable ASCII and UTF-8 as they are, quotes
 * around keys that were not bare, other bytes as '?'. */
static void key_display(const key_part *k, char *out, size_t cap) {
    size_t o = 0;
    if (!k->bare && o + 1 < cap) out[o++] = '"';
    for (size_t i = 0; i < k->len && o + 4 < cap; i++) {
        unsigned char c = (unsigned char)k->view[i];
        out[o++] = (c >= 0x20 && c != 0x7f) ? (char)c : '?';
    }
    if (!k->bare && o + 1 < cap) out[o++] = '"';
    out[o] = '\0';
}

/* "a.b.c" for the first `n` parts of a path. */
static void path_display(const key_path *kp, int n, char *out, size_t cap) {
    size_t o = 0;
    out[0] = '\0';
    for (int i = 0; i < n && o + 1 < cap; i++) {
        if (i) out[o++] = '.';
        key_display(&kp->parts[i], out + o, cap - o);
        o += strlen(out + o);
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* ---- UTF-8 check ---------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return len;
}

static bool check_utf8(parser *p) {
    const unsigned char *s = (const unsigned char *)p->s;
    for (size_t i = 0; i < p->len;) {
        size_t k = utf8_seq(s + i, p->len - i);
        if (!k) {
            fail(p, i, "invalid UTF-8 (byte 0x%02X)", s[i]);
            return false;
        }
        i += k;
    }
    return true;
}

/* ---- strings ---------------------------------------------------------------- */

static bool sb_reserve(parser *p, strbuf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 32;
    while (cap < b->n + extra + 1) cap *= 2;
    char *q = realloc(b->p, cap);
    if (!q) {
        fail_oom(p);
        return false;
    }
    b->p = q;
    b->cap = cap;
    return true;
}

static bool sb_putc(parser *p, strbuf *b, char c) {
    if (!sb_reserve(p, b, 1)) return false;
    b->p[b->n++] = c;
    b->p[b->n] = '\0';
    return true;
}

/* Hand the buffer over as a NUL-terminated string (an empty one if nothing
 * was added). */
static char *sb_finish(parser *p, strbuf *b, size_t *len) {
    if (!sb_reserve(p, b, 0)) {
        free(b->p);
        b->p = NULL;
        return NULL;
    }
    b->p[b->n] = '\0';
    *len = b->n;
    char *s = b->p;
    b->p = NULL;
    return s;
}

static bool is_ws(char c) {
    return c == ' ' || c == '\t';
}

static bool is_control(unsigned char c) {
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

static bool at_newline(const parser *p, size_t at) {
    if (at >= p->len) return false;
    if (p->s[at] == '\n') return true;
    return p->s[at] == '\r' && at + 1 < p->len && p->s[at + 1] == '\n';
}

/* Consume a newline (LF or CRLF) if one is next. */
static bool eat_newline(parser *p) {
    if (p->pos < p->len && p->s[p->pos] == '\n') {
        p->pos++;
        return true;
    }
    if (p->pos + 1 < p->len && p->s[p->pos] == '\r' && p->s[p->pos + 1] == '\n') {
        p->pos += 2;
        return true;
    }
    return false;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool put_utf8(parser *p, strbuf *b, uint32_t cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (!sb_reserve(p, b, n)) return false;
    memcpy(b->p + b->n, u, n);
    b->n += n;
    return true;
}

/* An escape in a basic string; p->pos is at the backslash. */
static bool parse_escape(parser *p, strbuf *b) {
    size_t at = p->pos;
    if (at + 1 >= p->len) {
        fail(p, at, "unterminated escape at end of file");
        return false;
    }
    char c = p->s[at + 1];
    p->pos += 2;
    switch (c) {
    case 'b':
        return sb_putc(p, b, '\b');
    case 't':
        return sb_putc(p, b, '\t');
    case 'n':
        return sb_putc(p, b, '\n');
    case 'f':
        return sb_putc(p, b, '\f');
    case 'r':
        return sb_putc(p, b, '\r');
    case '"':
        return sb_putc(p, b, '"');
    case '\\':
        return sb_putc(p, b, '\\');
    case 'u':
    case 'U': {
        int nd = c == 'u' ? 4 : 8;
        uint32_t cp = 0;
        for (int i = 0; i < nd; i++) {
            int h = p->pos < p->len ? hexval(p->s[p->pos]) : -1;
            if (h < 0) {
                fail(p, at, "\\%c needs %d hexadecimal digits", c, nd);
                return false;
            }
            cp = (cp << 4) | (uint32_t)h;
            p->pos++;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            fail(p, at, "\\%c%0*X is not a Unicode scalar value", c, nd, cp);
            return false;
        }
        return put_utf8(p, b, cp);
    }
    default: {
        char d[32];
        p->pos = at + 1;
        fail(p, at, "unknown escape '\\' followed by %s", describe(p, at + 1, d));
        return false;
    }
    }
}

/* "..." or '...' on one line; p->pos is at the opening quote. */
static char *parse_line_string(parser *p, size_t *len) {
    size_t open = p->pos;
    char q = p->s[p->pos++];
    strbuf b = {0};
    for (;;) {
        if (p->pos >= p->len || at_newline(p, p->pos)) {
            fail(p, open, "unterminated string (a %s string ends on its line)",
                 q == '"' ? "\"...\"" : "'...'");
            break;
        }
        char c = p->s[p->pos];
        if (c == q) {
            p->pos++;
            return sb_finish(p, &b, len);
        }
        if (q == '"' && c == '\\') {
            if (!parse_escape(p, &b)) break;
            continue;
        }
        if (is_control((unsigned char)c)) {
            fail(p, p->pos, "control character U+%04X in a string%s", (unsigned char)c,
                 q == '"' ? " (write it as an escape)" : "");
            break;
        }
        if (!sb_putc(p, &b, c)) break;
        p->pos++;
    }
    free(b.p);
    return NULL;
}

/* """...""" or '''...'''; p->pos is at the first of the three quotes. */
static char *parse_ml_string(parser *p, size_t *len) {
    size_t open = p->pos;
    char q = p->s[p->pos];
    p->pos += 3;
    eat_newline(p); /* a newline right after the opening quotes is not part of it */
    strbuf b = {0};
    for (;;) {
        if (p->pos >= p->len) {
            fail(p, open, "unterminated multi-line string");
            break;
        }
        char c = p->s[p->pos];
        if (c == q) {
            size_t run = 0;
            while (p->pos + run < p->len && p->s[p->pos + run] == q) run++;
            if (run >= 3) {
                /* Up to two quotes may stand right before the closing three. */
                size_t keep = run - 3 > 2 ? 2 : run - 3;
                bool ok = true;
                for (size_t i = 0; i < keep && ok; i++) ok = sb_putc(p, &b, q);
                if (!ok) break;
                p->pos += keep + 3;
                return sb_finish(p, &b, len);
            }
            bool ok = true;
            for (size_t i = 0; i < run && ok; i++) ok = sb_putc(p, &b, q);
            if (!ok) break;
            p->pos += run;
            continue;
        }
        if (at_newline(p, p->pos)) {
            eat_newline(p);
            if (!sb_putc(p, &b, '\n')) break;
            continue;
        }
        if (q == '"' && c == '\\') {
            /* A backslash ending a line (spaces may follow it) joins the
             * line to the next text that is not white space or newline. */
            size_t j = p->pos + 1;
            while (j < p->len && is_ws(p->s[j])) j++;
            if (at_newline(p, j)) {
                p->pos = j;
                for (;;) {
                    if (p->pos < p->len && is_ws(p->s[p->pos]))
                        p->pos++;
                    else if (!eat_newline(p))
                        break;
                }
                continue;
            }
            if (!parse_escape(p, &b)) break;
            continue;
        }
        if (is_control((unsigned char)c)) {
            fail(p, p->pos, "control character U+%04X in a string%s", (unsigned char)c,
                 q == '"' ? " (write it as an escape)" : "");
            break;
        }
        if (!sb_putc(p, &b, c)) break;
        p->pos++;
    }
    free(b.p);
    return NULL;
}

/* ---- tables ----------------------------------------------------------------- */

/* A node at line:col. Positions are always asked for in increasing order
 * (linecol's cache makes that linear), so callers look theirs up before
 * reading further. */
static ig_toml_value *new_value(parser *p, ig_toml_type type, int line, int col) {
    ig_toml_value *v = calloc(1, sizeof *v);
    if (!v) {
        fail_oom(p);
        return NULL;
    }
    v->type = type;
    v->line = line;
    v->col = col;
    return v;
}

static ig_toml_value *new_table(parser *p, unsigned kind, int line, int col) {
    ig_toml_value *t = new_value(p, IG_TOML_TYPE_TABLE, line, col);
    if (t) t->u.table.kind = kind;
    return t;
}

static uint32_t hash_key(const char *k, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

static ig_toml_entry *table_find(const ig_toml_value *t, const char *k, size_t n) {
    if (t->u.table.index) {
        size_t mask = t->u.table.index_cap - 1;
        for (size_t i = hash_key(k, n) & mask;; i = (i + 1) & mask) {
            uint32_t slot = t->u.table.index[i];
            if (!slot) return NULL;
            ig_toml_entry *e = &t->u.table.items[slot - 1];
            if (e->key_len == n && !memcmp(e->key, k, n)) return e;
        }
    }
    for (size_t i = 0; i < t->u.table.n; i++) {
        ig_toml_entry *e = &t->u.table.items[i];
        if (e->key_len == n && !memcmp(e->key, k, n)) return e;
    }
    return NULL;
}

static void index_put(ig_toml_value *t, size_t item) {
    ig_toml_entry *e = &t->u.table.items[item];
    size_t mask = t->u.table.index_cap - 1;
    size_t i = hash_key(e->key, e->key_len) & mask;
    while (t->u.table.index[i]) i = (i + 1) & mask;
    t->u.table.index[i] = (uint32_t)(item + 1);
}

/* Keep the hash index at most half full once the table is big enough. */
static bool index_update(parser *p, ig_toml_value *t) {
    size_t n = t->u.table.n;
    if (n <= INDEX_MIN_KEYS) return true;
    if (t->u.table.index && n * 2 <= t->u.table.index_cap) {
        index_put(t, n - 1);
        return true;
    }
    size_t cap = t->u.table.index_cap ? t->u.table.index_cap * 2 : 64;
    while (cap < n * 2) cap *= 2;
    uint32_t *idx = calloc(cap, sizeof *idx);
    if (!idx) {
        fail_oom(p);
        return false;
    }
    free(t->u.table.index);
    t->u.table.index = idx;
    t->u.table.index_cap = cap;
    for (size_t i = 0; i < n; i++) index_put(t, i);
    return true;
}

/* Add key `k` (ownership of its string moves in on success) with value `v`
 * (likewise). */
static bool table_insert(parser *p, ig_toml_value *t, key_part *k, ig_toml_value *v) {
    if (t->u.table.n == t->u.table.cap) {
        size_t cap = t->u.table.cap ? t->u.table.cap * 2 : 4;
        if (cap > UINT32_MAX / 2) {
            fail(p, k->pos, "too many keys in one table");
            return false;
        }
        ig_toml_entry *items = realloc(t->u.table.items, cap * sizeof *items);
        if (!items) {
            fail_oom(p);
            return false;
        }
        t->u.table.items = items;
        t->u.table.cap = cap;
    }
    ig_toml_entry *e = &t->u.table.items[t->u.table.n++];
    e->key = k->str;
    e->key_len = k->len;
    e->line = k->line;
    e->col = k->col;
    e->value = v;
    k->str = NULL;
    return index_update(p, t);
}

/* Close an inline table: it and the tables its dotted keys made. */
static void seal(ig_toml_value *t) {
    t->u.table.kind = KIND_INLINE;
    for (size_t i = 0; i < t->u.table.n; i++) {
        ig_toml_value *v = t->u.table.items[i].value;
        if (v->type == IG_TOML_TYPE_TABLE && v->u.table.kind == KIND_DOTTED) seal(v);
    }
}

static const char *kind_how(unsigned kind) {
    switch (kind) {
    case KIND_HEADER:
        return "by its [header]";
    case KIND_DOTTED:
        return "by dotted keys";
    case KIND_INLINE:
        return "as an inline table";
    default:
        return "implicitly";
    }
}

/* ---- keys ------------------------------------------------------------------- */

static bool is_bare(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

static void skip_ws(parser *p) {
    while (p->pos < p->len && is_ws(p->s[p->pos])) p->pos++;
}

static void key_path_free(key_path *kp) {
    for (int i = 0; i < kp->n; i++) free(kp->parts[i].str);
    kp->n = 0;
}

/* key = simple-key *( ws "." ws simple-key ). */
static bool parse_key(parser *p, key_path *kp) {
    kp->n = 0;
    for (;;) {
        if (kp->n == MAX_KEY_PARTS) {
            fail(p, p->pos, "key has more than %d dotted parts", MAX_KEY_PARTS);
            return false;
        }
        key_part *k = &kp->parts[kp->n];
        k->pos = p->pos;
        linecol(p, k->pos, &k->line, &k->col);
        k->bare = false;
        char c = p->pos < p->len ? p->s[p->pos] : '\0';
        if (c == '"' || c == '\'') {
            if (p->pos + 2 < p->len && p->s[p->pos + 1] == c && p->s[p->pos + 2] == c) {
                fail(p, p->pos, "a key cannot be a multi-line string");
                return false;
            }
            k->str = parse_line_string(p, &k->len);
            if (!k->str) return false;
        } else if (p->pos < p->len && is_bare(c)) {
            size_t start = p->pos;
            while (p->pos < p->len && is_bare(p->s[p->pos])) p->pos++;
            k->len = p->pos - start;
            k->str = malloc(k->len + 1);
            if (!k->str) {
                fail_oom(p);
                return false;
            }
            memcpy(k->str, p->s + start, k->len);
            k->str[k->len] = '\0';
            k->bare = true;
        } else {
            char d[32];
            fail(p, p->pos, "expected a key, found %s", describe(p, p->pos, d));
            return false;
        }
        k->view = k->str;
        kp->n++;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == '.') {
            p->pos++;
            skip_ws(p);
            continue;
        }
        return true;
    }
}

/* ---- values ----------------------------------------------------------------- */

static ig_toml_value *parse_value(parser *p);
static bool parse_keyval(parser *p, ig_toml_value *table, const char *where);

/* White space, newlines and comments between array elements. */
static void skip_comment(parser *p);
static void skip_ws_nl(parser *p) {
    for (;;) {
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == '#') skip_comment(p);
        if (failed(p) || !eat_newline(p)) return;
    }
}

static void skip_comment(parser *p) {
    p->pos++; /* '#' */
    while (p->pos < p->len && !at_newline(p, p->pos)) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (is_control(c)) {
            fail(p, p->pos, "control character U+%04X in a comment", c);
            return;
        }
        p->pos++;
    }
}

static bool digit_of(char c, int base) {
    int v = hexval(c);
    return v >= 0 && v < base;
}

/* Copy digits of `base` from t[0..n) into out without the underscores, which
 * must each stand between two digits. False if that is not what t holds. */
static bool strip_digits(const char *t, size_t n, int base, char *out, size_t *on) {
    size_t o = 0;
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '_') {
            if (i == 0 || i + 1 == n || !digit_of(t[i - 1], base) || !digit_of(t[i + 1], base))
                return false;
            continue;
        }
        if (!digit_of(t[i], base)) return false;
        out[o++] = t[i];
    }
    *on = o;
    return true;
}

static bool is_token_char(char c) {
    return is_bare(c) || c == '+' || c == '.' || c == ':';
}

/* Integers, floats, inf and nan; p->pos is at the first character. */
static ig_toml_value *parse_number(parser *p) {
    size_t start = p->pos;
    int line, col;
    linecol(p, start, &line, &col);
    while (p->pos < p->len && is_token_char(p->s[p->pos])) p->pos++;
    const char *t = p->s + start;
    size_t n = p->pos - start;
    char shown[48];
    snprintf(shown, sizeof shown, "%.*s%s", (int)(n > 32 ? 32 : n), t, n > 32 ? "..." : "");
    if ((n >= 5 && digit_of(t[0], 10) && digit_of(t[1], 10) && digit_of(t[2], 10) &&
         digit_of(t[3], 10) && t[4] == '-') ||
        (n >= 3 && digit_of(t[0], 10) && digit_of(t[1], 10) && t[2] == ':')) {
        fail(p, start, "dates and times are not supported ('%s')", shown);
        return NULL;
    }
    char *buf = malloc(n + 2);
    if (!buf) {
        fail_oom(p);
        return NULL;
    }
    ig_toml_value *v = NULL;
    size_t i = 0, o = 0;
    bool neg = false, has_sign = false;
    if (n && (t[0] == '+' || t[0] == '-')) {
        neg = t[0] == '-';
        has_sign = true;
        i = 1;
    }
    const char *r = t + i;
    size_t rn = n - i;
    if ((rn == 3 && !memcmp(r, "inf", 3)) || (rn == 3 && !memcmp(r, "nan", 3))) {
        v = new_value(p, IG_TOML_TYPE_FLOAT, line, col);
        if (v) v->u.real = r[0] == 'i' ? (neg ? -INFINITY : INFINITY) : (neg ? -NAN : NAN);
        goto done;
    }
    if (rn >= 2 && r[0] == '0' && (r[1] == 'x' || r[1] == 'o' || r[1] == 'b')) {
        int base = r[1] == 'x' ? 16 : r[1] == 'o' ? 8 : 2;
        if (has_sign) {
            fail(p, start, "a sign is not allowed on a 0%c integer ('%s')", r[1], shown);
            goto done;
        }
        if (!strip_digits(r + 2, rn - 2, base, buf, &o)) {
            fail(p, start, "'%s' is not a valid base-%d integer", shown, base);
            goto done;
        }
        buf[o] = '\0';
        errno = 0;
        unsigned long long u = strtoull(buf, NULL, base);
        if (errno || u > INT64_MAX) {
            fail(p, start, "integer '%s' does not fit in 64 bits", shown);
            goto done;
        }
        v = new_value(p, IG_TOML_TYPE_INTEGER, line, col);
        if (v) v->u.integer = (int64_t)u;
        goto done;
    }
    /* Decimal: int-part [ "." digits ] [ e [sign] digits ]. */
    size_t j = 0;
    while (j < rn && (digit_of(r[j], 10) || r[j] == '_')) j++;
    size_t int_end = j, frac_start = 0, frac_end = 0, exp_start = 0;
    bool is_float = false;
    if (j < rn && r[j] == '.') {
        is_float = true;
        frac_start = ++j;
        while (j < rn && (digit_of(r[j], 10) || r[j] == '_')) j++;
        frac_end = j;
    }
    if (j < rn && (r[j] == 'e' || r[j] == 'E')) {
        is_float = true;
        j++;
        if (j < rn && (r[j] == '+' || r[j] == '-')) j++;
        exp_start = j;
        while (j < rn && (digit_of(r[j], 10) || r[j] == '_')) j++;
    }
    if (j != rn || int_end == 0) {
        if (!has_sign && n && ((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z')))
            fail(p, start, "'%s' is not a value (strings need quotes)", shown);
        else
            fail(p, start, "'%s' is not a valid number", shown);
        goto done;
    }
    if (int_end > 1 && r[0] == '0') {
        fail(p, start, "leading zeros are not allowed ('%s')", shown);
        goto done;
    }
    if (neg) buf[o++] = '-';
    size_t k;
    if (!strip_digits(r, int_end, 10, buf + o, &k)) goto bad;
    o += k;
    if (frac_start) {
        buf[o++] = '.';
        if (!strip_digits(r + frac_start, frac_end - frac_start, 10, buf + o, &k)) goto bad;
        o += k;
    }
    if (exp_start) {
        size_t e0 = frac_start ? frac_end : int_end;
        buf[o++] = 'e';
        if (e0 + 1 < rn && (r[e0 + 1] == '-' || r[e0 + 1] == '+')) buf[o++] = r[e0 + 1];
        if (!strip_digits(r + exp_start, rn - exp_start, 10, buf + o, &k)) goto bad;
        o += k;
    }
    buf[o] = '\0';
    errno = 0;
    if (is_float) {
        double d = strtod(buf, NULL);
        if (isinf(d)) {
            fail(p, start, "float '%s' is out of range", shown);
            goto done;
        }
        v = new_value(p, IG_TOML_TYPE_FLOAT, line, col);
        if (v) v->u.real = d;
    } else {
        long long x = strtoll(buf, NULL, 10);
        if (errno == ERANGE) {
            fail(p, start, "integer '%s' does not fit in 64 bits", shown);
            goto done;
        }
        v = new_value(p, IG_TOML_TYPE_INTEGER, line, col);
        if (v) v->u.integer = x;
    }
    goto done;
bad:
    fail(p, start, "'%s' is not a valid number%s", shown,
         memchr(t, '_', n) ? " (an underscore must stand between two digits)" : "");
done:
    free(buf);
    return v;
}

static void value_free(ig_toml_value *v);

static ig_toml_value *parse_array(parser *p) {
    size_t open = p->pos++;
    int line, col;
    linecol(p, open, &line, &col);
    ig_toml_value *a = new_value(p, IG_TOML_TYPE_ARRAY, line, col);
    if (!a) return NULL;
    for (;;) {
        skip_ws_nl(p);
        if (failed(p)) break;
        if (p->pos < p->len && p->s[p->pos] == ']') {
            p->pos++;
            return a;
        }
        if (p->pos >= p->len) {
            fail(p, open, "unterminated array");
            break;
        }
        ig_toml_value *v = parse_value(p);
        if (!v) break;
        if (a->u.array.n == a->u.array.cap) {
            size_t cap = a->u.array.cap ? a->u.array.cap * 2 : 4;
            ig_toml_value **items = realloc(a->u.array.items, cap * sizeof *items);
            if (!items) {
                value_free(v);
                fail_oom(p);
                break;
            }
            a->u.array.items = items;
            a->u.array.cap = cap;
        }
        a->u.array.items[a->u.array.n++] = v;
        skip_ws_nl(p);
        if (failed(p)) break;
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == ']') {
            p->pos++;
            return a;
        }
        char d[32];
        if (p->pos >= p->len)
            fail(p, open, "unterminated array");
        else
            fail(p, p->pos, "expected ',' or ']' in an array, found %s", describe(p, p->pos, d));
        break;
    }
    value_free(a);
    return NULL;
}

static ig_toml_value *parse_inline_table(parser *p) {
    size_t open = p->pos++;
    int line, col;
    linecol(p, open, &line, &col);
    ig_toml_value *t = new_table(p, KIND_DOTTED, line, col);
    if (!t) return NULL;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
        seal(t);
        return t;
    }
    for (;;) {
        if (!parse_keyval(p, t, "")) break;
        skip_ws(p);
        char d[32];
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == '}') {
                fail(p, p->pos, "a trailing comma is not allowed in an inline table");
                break;
            }
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == '}') {
            p->pos++;
            seal(t);
            return t;
        }
        if (p->pos >= p->len || at_newline(p, p->pos))
            fail(p, p->pos, "unterminated inline table (it must close on the line it opens)");
        else
            fail(p, p->pos, "expected ',' or '}' in an inline table, found %s",
                 describe(p, p->pos, d));
        break;
    }
    value_free(t);
    return NULL;
}

static ig_toml_value *parse_value(parser *p) {
    size_t at = p->pos;
    char d[32];
    int line, col;
    linecol(p, at, &line, &col);
    if (at >= p->len || at_newline(p, at)) {
        fail(p, at, "expected a value, found %s", describe(p, at, d));
        return NULL;
    }
    char c = p->s[at];
    if (c == '"' || c == '\'') {
        bool ml = at + 2 < p->len && p->s[at + 1] == c && p->s[at + 2] == c;
        size_t len;
        char *s = ml ? parse_ml_string(p, &len) : parse_line_string(p, &len);
        if (!s) return NULL;
        ig_toml_value *v = new_value(p, IG_TOML_TYPE_STRING, line, col);
        if (!v) {
            free(s);
            return NULL;
        }
        v->u.str.ptr = s;
        v->u.str.len = len;
        return v;
    }
    if (c == '[' || c == '{') {
        if (p->depth >= MAX_DEPTH) {
            fail(p, at, "arrays and inline tables nest more than %d deep", MAX_DEPTH);
            return NULL;
        }
        p->depth++;
        ig_toml_value *v = c == '[' ? parse_array(p) : parse_inline_table(p);
        p->depth--;
        return v;
    }
    for (int b = 0; b < 2; b++) {
        const char *w = b ? "true" : "false";
        size_t wl = strlen(w);
        if (p->len - at >= wl && !memcmp(p->s + at, w, wl) &&
            (at + wl == p->len || !is_token_char(p->s[at + wl]))) {
            ig_toml_value *v = new_value(p, IG_TOML_TYPE_BOOL, line, col);
            if (v) v->u.boolean = b;
            p->pos += wl;
            return v;
        }
    }
    if (is_token_char(c) && c != '.' && c != ':') return parse_number(p);
    fail(p, at, "expected a value, found %s", describe(p, at, d));
    return NULL;
}

/* ---- key/value pairs and headers -------------------------------------------- */

/* key = value into `table` (the current section, or an inline table);
 * `where` is the table's own key for messages ("" for none). */
static bool parse_keyval(parser *p, ig_toml_value *table, const char *where) {
    key_path kp;
    bool ok = false;
    char shown[256], d[32];
    size_t wl = strlen(where);
    if (wl > sizeof shown / 2) wl = sizeof shown / 2;
    if (!parse_key(p, &kp)) goto cleanup;
    if (p->pos >= p->len || p->s[p->pos] != '=') {
        path_display(&kp, kp.n, shown, sizeof shown);
        fail(p, p->pos, "expected '=' after the key %s, found %s", shown, describe(p, p->pos, d));
        goto cleanup;
    }
    p->pos++;
    skip_ws(p);
    /* Walk (and create) the tables of a dotted key before reading the value,
     * so a redefinition is reported at the key. */
    ig_toml_value *t = table;
    for (int i = 0; i < kp.n - 1; i++) {
        key_part *k = &kp.parts[i];
        ig_toml_entry *e = table_find(t, k->str, k->len);
        if (!e) {
            ig_toml_value *nt = new_table(p, KIND_DOTTED, k->line, k->col);
            if (!nt) goto cleanup;
            if (!table_insert(p, t, k, nt)) {
                value_free(nt);
                goto cleanup;
            }
            t = nt;
            continue;
        }
        snprintf(shown, sizeof shown, "%.*s%s", (int)wl, where, wl ? "." : "");
        path_display(&kp, i + 1, shown + strlen(shown), sizeof shown - strlen(shown));
        if (e->value->type != IG_TOML_TYPE_TABLE) {
            fail(p, k->pos, "%s is already a value of type %s (line %d), not a table", shown,
                 ig_toml_type_name(e->value->type), e->line);
            goto cleanup;
        }
        /* A table that exists only as the parent of a [header] may still be
         * given keys this way (it then counts as made by dotted keys). */
        if (e->value->u.table.kind == KIND_IMPLICIT) e->value->u.table.kind = KIND_DOTTED;
        if (e->value->u.table.kind != KIND_DOTTED) {
            fail(p, k->pos, "cannot add keys with a dotted key to table %s, defined %s (line %d)",
                 shown, kind_how(e->value->u.table.kind), e->value->line);
            goto cleanup;
        }
        t = e->value;
    }
    key_part *last = &kp.parts[kp.n - 1];
    ig_toml_entry *dup = table_find(t, last->str, last->len);
    if (dup) {
        snprintf(shown, sizeof shown, "%.*s%s", (int)wl, where, wl ? "." : "");
        path_display(&kp, kp.n, shown + strlen(shown), sizeof shown - strlen(shown));
        fail(p, last->pos, "duplicate key %s (first defined at line %d)", shown, dup->line);
        goto cleanup;
    }
    ig_toml_value *v = parse_value(p);
    if (!v) goto cleanup;
    if (!table_insert(p, t, last, v)) {
        value_free(v);
        goto cleanup;
    }
    ok = true;
cleanup:
    key_path_free(&kp);
    return ok;
}

/* [a.b.c]; returns the table that following keys go into. */
static ig_toml_value *parse_header(parser *p, ig_toml_value *root) {
    size_t open = p->pos;
    key_path kp;
    ig_toml_value *result = NULL;
    char shown[256], d[32];
    int line, col;
    linecol(p, open, &line, &col);
    kp.n = 0;
    if (p->pos + 1 < p->len && p->s[p->pos + 1] == '[') {
        fail(p, open, "arrays of tables ([[...]]) are not supported");
        return NULL;
    }
    p->pos++;
    skip_ws(p);
    if (!parse_key(p, &kp)) goto cleanup;
    if (p->pos >= p->len || p->s[p->pos] != ']') {
        fail(p, p->pos, "expected ']' to close the table header, found %s", describe(p, p->pos, d));
        goto cleanup;
    }
    p->pos++;
    ig_toml_value *t = root;
    for (int i = 0; i < kp.n; i++) {
        key_part *k = &kp.parts[i];
        bool is_last = i == kp.n - 1;
        ig_toml_entry *e = table_find(t, k->str, k->len);
        if (!e) {
            ig_toml_value *nt = new_table(p, is_last ? KIND_HEADER : KIND_IMPLICIT, line, col);
            if (!nt) goto cleanup;
            if (!table_insert(p, t, k, nt)) {
                value_free(nt);
                goto cleanup;
            }
            t = nt;
            continue;
        }
        ig_toml_value *v = e->value;
        path_display(&kp, i + 1, shown, sizeof shown);
        if (v->type != IG_TOML_TYPE_TABLE) {
            fail(p, k->pos, "%s is already a value of type %s (line %d), not a table", shown,
                 ig_toml_type_name(v->type), e->line);
            goto cleanup;
        }
        unsigned kind = v->u.table.kind;
        if (!is_last) {
            if (kind == KIND_INLINE) {
                fail(p, k->pos, "cannot add to %s, an inline table (line %d)", shown, v->line);
                goto cleanup;
            }
        } else if (kind == KIND_IMPLICIT) {
            v->u.table.kind = KIND_HEADER;
            v->line = line;
            v->col = col;
        } else {
            fail(p, open, "table [%s] is defined twice (first %s, line %d)", shown, kind_how(kind),
                 v->line);
            goto cleanup;
        }
        t = v;
    }
    result = t;
    path_display(&kp, kp.n, p->section, sizeof p->section);
cleanup:
    key_path_free(&kp);
    return result;
}

/* ---- the document ----------------------------------------------------------- */

static void value_free(ig_toml_value *v) {
    if (!v) return;
    switch (v->type) {
    case IG_TOML_TYPE_STRING:
        free(v->u.str.ptr);
        break;
    case IG_TOML_TYPE_ARRAY:
        for (size_t i = 0; i < v->u.array.n; i++) value_free(v->u.array.items[i]);
        free(v->u.array.items);
        break;
    case IG_TOML_TYPE_TABLE:
        for (size_t i = 0; i < v->u.table.n; i++) {
            free(v->u.table.items[i].key);
            value_free(v->u.table.items[i].value);
        }
        free(v->u.table.items);
        free(v->u.table.index);
        break;
    default:
        break;
    }
    free(v);
}

void ig_toml_free(ig_toml_value *root) {
    value_free(root);
}

ig_status ig_toml_parse(const char *text, size_t len, const char *name, ig_toml_value **out_root,
                        ig_error *err) {
    parser p = {.s = text, .len = len, .name = name ? name : "<input>", .err = err};
    p.lc_line = p.lc_col = 1;
    if (!text && len) return ig_errorf(err, IG_EINVAL, "%s: no text", p.name);
    if (!text) p.s = "";
    ig_toml_value *root = new_table(&p, KIND_ROOT, 1, 1);
    if (!root) return p.status;
    ig_toml_value *cur = root;
    if (!check_utf8(&p)) goto cleanup;
    if (p.len >= 3 && !memcmp(p.s, "\xEF\xBB\xBF", 3)) p.pos = 3; /* a byte-order mark */
    while (!failed(&p)) {
        skip_ws(&p);
        if (p.pos >= p.len) break;
        char c = p.s[p.pos];
        if (c == '[') {
            cur = parse_header(&p, root);
        } else if (c != '#' && !at_newline(&p, p.pos)) {
            parse_keyval(&p, cur, p.section);
        }
        if (failed(&p)) break;
        skip_ws(&p);
        if (p.pos < p.len && p.s[p.pos] == '#') skip_comment(&p);
        if (failed(&p) || p.pos >= p.len) break;
        if (!eat_newline(&p)) {
            char d[32];
            fail(&p, p.pos, "expected the end of the line, found %s", describe(&p, p.pos, d));
        }
    }
cleanup:
    if (failed(&p)) {
        value_free(root);
        return p.status;
    }
    *out_root = root;
    return IG_OK;
}

const ig_toml_value *ig_toml_get(const ig_toml_value *table, const char *key) {
    if (!table || table->type != IG_TOML_TYPE_TABLE || !key) return NULL;
    ig_toml_entry *e = table_find(table, key, strlen(key));
    return e ? e->value : NULL;
}

const char *ig_toml_type_name(ig_toml_type type) {
    switch (type) {
    case IG_TOML_TYPE_STRING:
        return "string";
    case IG_TOML_TYPE_INTEGER:
        return "integer";
    case IG_TOML_TYPE_FLOAT:
        return "float";
    case IG_TOML_TYPE_BOOL:
        return "boolean";
    case IG_TOML_TYPE_ARRAY:
        return "array";
    case IG_TOML_TYPE_TABLE:
        return "table";
    }
    return "value";
}
