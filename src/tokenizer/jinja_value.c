/*
 * jinja_value.c: the arena, values and their text forms for the Jinja
 * renderer (see jinja.h).
 *
 * Text forms follow Python, since the reference renderer is jinja2: str() of
 * None is "None", of True "True", of a float its shortest round-trip repr
 * ("1.0", "1e+16"), of a list "['a', 1]"; json.dumps() as HF's tojson calls
 * it (ensure_ascii=False, separators ", " and ": ", or "," with an indent).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/jinja.h"

#define IG_JV_MAX_NEST 256 /* deepest container nesting that is compared or printed */

/* ---- arena ---------------------------------------------------------------------------- */

struct ig__jchunk {
    ig__jchunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

#define IG_JA_CHUNK (64 * 1024)

void *ig__ja_alloc(ig__jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    ig__jchunk *h = a->head;
    if (!h || h->cap - h->used < n) {
        size_t cap = n > IG_JA_CHUNK ? n : IG_JA_CHUNK;
        if (a->limit && (a->n_used + cap + sizeof *h > a->limit || cap > a->limit)) return NULL;
        h = malloc(sizeof *h + cap);
        if (!h) return NULL;
        h->used = 0;
        h->cap = cap;
        h->next = a->head;
        a->head = h;
        a->n_used += cap + sizeof *h;
    }
    void *p = h->data + h->used;
    h->used += n;
    memset(p, 0, n);
    return p;
}

void ig__ja_free(ig__jarena *a) {
    ig__jchunk *h = a->head;
    while (h) {
        ig__jchunk *next = h->next;
        free(h);
        h = next;
    }
    a->head = NULL;
    a->n_used = 0;
}

static void *jalloc(ig__jctx *c, size_t n) {
    void *p = ig__ja_alloc(&c->arena, n);
    if (!p)
        ig__jfail(c, NULL, IG_ENOMEM, "template used more than %zu bytes of memory",
                  c->limits->max_memory);
    return p;
}

/* ---- UTF-8 ---------------------------------------------------------------------------- */

size_t ig__jutf8_decode(const char *p, size_t n, int32_t *cp) {
    const unsigned char *s = (const unsigned char *)p;
    unsigned char b = s[0];
    size_t len;
    int32_t v;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if ((b & 0xE0) == 0xC0) {
        len = 2;
        v = b & 0x1F;
    } else if ((b & 0xF0) == 0xE0) {
        len = 3;
        v = b & 0x0F;
    } else if ((b & 0xF8) == 0xF0) {
        len = 4;
        v = b & 0x07;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    if (len > n) {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3F);
    }
    *cp = v;
    return len;
}

size_t ig__jutf8_encode(int32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0 || cp > 0x10FFFF) cp = 0xFFFD;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    } else if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    } else if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t ig__jutf8_count(const char *p, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        i += ig__jutf8_decode(p + i, n - i, &cp);
        count++;
    }
    return count;
}

size_t ig__jutf8_offset(const char *p, size_t n, int64_t ci) {
    size_t i = 0;
    for (int64_t k = 0; k < ci && i < n; k++) {
        int32_t cp;
        i += ig__jutf8_decode(p + i, n - i, &cp);
    }
    return i;
}

/* Python's str.isspace(): the characters str.strip() and str.split() remove. */
bool ig__py_isspace(int32_t cp) {
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F)) return true;
    if (cp < 0x85) return false;
    return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* ---- builders ------------------------------------------------------------------------- */

int ig__jv_strdup(ig__jctx *c, const char *p, size_t n, ig__jv *out) {
    char *s = jalloc(c, n + 1);
    if (!s) return -1;
    if (n) memcpy(s, p, n);
    *out = ig__jv_str(s, n);
    return 0;
}

ig__jlist *ig__jlist_new(ig__jctx *c, size_t cap) {
    ig__jlist *l = jalloc(c, sizeof *l);
    if (!l) return NULL;
    if (cap) {
        l->items = jalloc(c, cap * sizeof *l->items);
        if (!l->items) return NULL;
        l->cap = cap;
    }
    return l;
}

int ig__jlist_push(ig__jctx *c, ig__jlist *l, ig__jv v) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        ig__jv *items = jalloc(c, cap * sizeof *items);
        if (!items) return -1;
        if (l->n) memcpy(items, l->items, l->n * sizeof *items);
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = v;
    return 0;
}

ig__jdict *ig__jdict_new(ig__jctx *c, size_t cap) {
    ig__jdict *d = jalloc(c, sizeof *d);
    if (!d) return NULL;
    if (cap) {
        d->keys = jalloc(c, cap * sizeof *d->keys);
        d->vals = jalloc(c, cap * sizeof *d->vals);
        if (!d->keys || !d->vals) return NULL;
        d->cap = cap;
    }
    return d;
}

ig__jv *ig__jdict_get(const ig__jdict *d, ig__jv key) {
    for (size_t i = 0; i < d->n; i++)
        if (ig__jv_equal(d->keys[i], key)) return &d->vals[i];
    return NULL;
}

ig__jv *ig__jdict_get_str(const ig__jdict *d, const char *key, size_t key_len) {
    for (size_t i = 0; i < d->n; i++) {
        const ig__jv *k = &d->keys[i];
        if (k->type == IG_JV_STR && k->u.s.n == key_len && memcmp(k->u.s.p, key, key_len) == 0)
            return &d->vals[i];
    }
    return NULL;
}

int ig__jdict_set(ig__jctx *c, ig__jdict *d, ig__jv key, ig__jv val) {
    ig__jv *slot = ig__jdict_get(d, key);
    if (slot) {
        *slot = val;
        return 0;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        ig__jv *keys = jalloc(c, cap * sizeof *keys);
        ig__jv *vals = jalloc(c, cap * sizeof *vals);
        if (!keys || !vals) return -1;
        if (d->n) {
            memcpy(keys, d->keys, d->n * sizeof *keys);
            memcpy(vals, d->vals, d->n * sizeof *vals);
        }
        d->keys = keys;
        d->vals = vals;
        d->cap = cap;
    }
    d->keys[d->n] = key;
    d->vals[d->n] = val;
    d->n++;
    return 0;
}

/* ---- truth, equality, names ----------------------------------------------------------- */

bool ig__jv_truthy(ig__jv v) {
    switch ((ig__jtype)v.type) {
    case IG_JV_UNDEF:
    case IG_JV_NONE:
        return false;
    case IG_JV_BOOL:
        return v.u.b;
    case IG_JV_INT:
        return v.u.i != 0;
    case IG_JV_FLOAT:
        return v.u.f != 0.0;
    case IG_JV_STR:
        return v.u.s.n != 0;
    case IG_JV_LIST:
        return v.u.l->n != 0;
    case IG_JV_DICT:
        return v.u.d->n != 0;
    case IG_JV_NS:
    case IG_JV_FUNC:
    case IG_JV_LOOP:
        return true;
    }
    return false;
}

static bool is_number(ig__jv v, double *f) {
    if (v.type == IG_JV_INT)
        *f = (double)v.u.i;
    else if (v.type == IG_JV_BOOL)
        *f = v.u.b;
    else if (v.type == IG_JV_FLOAT)
        *f = v.u.f;
    else
        return false;
    return true;
}

static bool equal_depth(ig__jv a, ig__jv b, int depth);

bool ig__jv_equal(ig__jv a, ig__jv b) {
    return equal_depth(a, b, 0);
}

/* Containers nested deeper than IG_JV_MAX_NEST compare unequal (no C stack overflow). */
static bool equal_depth(ig__jv a, ig__jv b, int depth) {
    if (depth > IG_JV_MAX_NEST) return false;
    double fa, fb;
    if (is_number(a, &fa) && is_number(b, &fb)) {
        if (a.type != IG_JV_FLOAT && b.type != IG_JV_FLOAT) {
            int64_t ia = a.type == IG_JV_BOOL ? a.u.b : a.u.i;
            int64_t ib = b.type == IG_JV_BOOL ? b.u.b : b.u.i;
            return ia == ib;
        }
        return fa == fb;
    }
    if (a.type != b.type) return false;
    switch ((ig__jtype)a.type) {
    case IG_JV_UNDEF:
    case IG_JV_NONE:
        return true;
    case IG_JV_STR:
        return a.u.s.n == b.u.s.n && memcmp(a.u.s.p, b.u.s.p, a.u.s.n) == 0;
    case IG_JV_LIST:
        if (a.u.l->n != b.u.l->n || a.is_tuple != b.is_tuple) return false;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!equal_depth(a.u.l->items[i], b.u.l->items[i], depth + 1)) return false;
        return true;
    case IG_JV_DICT:
        if (a.u.d->n != b.u.d->n) return false;
        for (size_t i = 0; i < a.u.d->n; i++) {
            ig__jv *o = ig__jdict_get(b.u.d, a.u.d->keys[i]);
            if (!o || !equal_depth(a.u.d->vals[i], *o, depth + 1)) return false;
        }
        return true;
    case IG_JV_NS:
        return a.u.d == b.u.d;
    case IG_JV_FUNC:
        return a.u.fn == b.u.fn;
    case IG_JV_LOOP:
        return a.u.loop == b.u.loop;
    default:
        return false;
    }
}

const char *ig__jv_type_name(ig__jv v) {
    switch ((ig__jtype)v.type) {
    case IG_JV_UNDEF:
        return "Undefined";
    case IG_JV_NONE:
        return "NoneType";
    case IG_JV_BOOL:
        return "bool";
    case IG_JV_INT:
        return "int";
    case IG_JV_FLOAT:
        return "float";
    case IG_JV_STR:
        return "str";
    case IG_JV_LIST:
        return v.is_tuple ? "tuple" : "list";
    case IG_JV_DICT:
        return "dict";
    case IG_JV_NS:
        return "Namespace";
    case IG_JV_FUNC:
        return "function";
    case IG_JV_LOOP:
        return "LoopContext";
    }
    return "object";
}

/* ---- buffers -------------------------------------------------------------------------- */

int ig__jbuf_put(ig__jctx *c, ig__jbuf *b, const char *p, size_t n) {
    if (n == 0) return 0;
    size_t max = c->limits->max_output_len;
    if (b->n + n > max || b->n + n < b->n)
        return ig__jfail(c, NULL, IG_ERANGE, "template output is longer than %zu bytes", max);
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return ig__jfail(c, NULL, IG_ENOMEM, "out of memory");
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

int ig__jbuf_putc(ig__jctx *c, ig__jbuf *b, char ch) {
    return ig__jbuf_put(c, b, &ch, 1);
}

static int bprintf(ig__jctx *c, ig__jbuf *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof tmp) n = sizeof tmp - 1;
    return ig__jbuf_put(c, b, tmp, (size_t)n);
}

int ig__jbuf_finish(ig__jctx *c, ig__jbuf *b, ig__jv *out) {
    int rc = ig__jv_strdup(c, b->p ? b->p : "", b->n, out);
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    return rc;
}

/* ---- text forms ----------------------------------------------------------------------- */

void ig__jfloat_repr(double f, char *buf, size_t cap) {
    if (isnan(f)) {
        snprintf(buf, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(buf, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    /* The shortest %.Ne that reads back exactly, then Python's layout rules:
     * positional when -4 <= exponent < 16, else d.ddde+XX. */
    char digits[40];
    int prec;
    for (prec = 0; prec < 17; prec++) {
        snprintf(digits, sizeof digits, "%.*e", prec, f);
        if (strtod(digits, NULL) == f) break;
    }
    snprintf(digits, sizeof digits, "%.*e", prec, f);
    const char *e = strchr(digits, 'e');
    int exp10 = atoi(e + 1);
    char mant[40];
    size_t m = 0;
    bool neg = digits[0] == '-';
    for (const char *p = digits + neg; p < e; p++)
        if (*p != '.') mant[m++] = *p;
    mant[m] = '\0';
    char *o = buf;
    size_t left = cap;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(o, left, __VA_ARGS__);                                                   \
        if (k_ < 0 || (size_t)k_ >= left) return;                                                  \
        o += k_;                                                                                   \
        left -= (size_t)k_;                                                                        \
    } while (0)
    if (neg) PUT("-");
    if (exp10 < -4 || exp10 >= 16) {
        PUT("%c", mant[0]);
        if (m > 1) PUT(".%s", mant + 1);
        PUT("e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        PUT("0.");
        for (int i = 0; i < -exp10 - 1; i++) PUT("0");
        PUT("%s", mant);
    } else {
        for (int i = 0; i <= exp10; i++) PUT("%c", i < (int)m ? mant[i] : '0');
        PUT(".");
        if ((int)m > exp10 + 1)
            PUT("%s", mant + exp10 + 1);
        else
            PUT("0");
    }
#undef PUT
}

int ig__jv_write_str(ig__jctx *c, ig__jbuf *b, ig__jv v, int depth) {
    switch ((ig__jtype)v.type) {
    case IG_JV_UNDEF:
        return 0;
    case IG_JV_STR:
        return ig__jbuf_put(c, b, v.u.s.p, v.u.s.n);
    default:
        return ig__jv_write_repr(c, b, v, depth);
    }
}

static int write_str_repr(ig__jctx *c, ig__jbuf *b, const char *p, size_t n) {
    bool has_sq = memchr(p, '\'', n) != NULL, has_dq = memchr(p, '"', n) != NULL;
    char q = has_sq && !has_dq ? '"' : '\'';
    if (ig__jbuf_putc(c, b, q)) return -1;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        size_t k = ig__jutf8_decode(p + i, n - i, &cp);
        unsigned char ch = (unsigned char)p[i];
        int rc;
        if (ch == (unsigned char)q || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            rc = ig__jbuf_put(c, b, e, 2);
        } else if (ch == '\n')
            rc = ig__jbuf_put(c, b, "\\n", 2);
        else if (ch == '\r')
            rc = ig__jbuf_put(c, b, "\\r", 2);
        else if (ch == '\t')
            rc = ig__jbuf_put(c, b, "\\t", 2);
        else if (ch < 0x20 || ch == 0x7F)
            rc = bprintf(c, b, "\\x%02x", ch);
        else if (cp >= 0x80 && cp < 0xA0)
            rc = bprintf(c, b, "\\x%02x", (unsigned)cp);
        else
            rc = ig__jbuf_put(c, b, p + i, k);
        if (rc) return -1;
        i += k;
    }
    return ig__jbuf_putc(c, b, q);
}

int ig__jv_write_repr(ig__jctx *c, ig__jbuf *b, ig__jv v, int depth) {
    if (depth > IG_JV_MAX_NEST)
        return ig__jfail(c, NULL, IG_ERANGE, "value nested deeper than %d levels", IG_JV_MAX_NEST);
    switch ((ig__jtype)v.type) {
    case IG_JV_UNDEF:
        return 0;
    case IG_JV_NONE:
        return ig__jbuf_put(c, b, "None", 4);
    case IG_JV_BOOL:
        return v.u.b ? ig__jbuf_put(c, b, "True", 4) : ig__jbuf_put(c, b, "False", 5);
    case IG_JV_INT:
        return bprintf(c, b, "%lld", (long long)v.u.i);
    case IG_JV_FLOAT: {
        char tmp[64];
        ig__jfloat_repr(v.u.f, tmp, sizeof tmp);
        return ig__jbuf_put(c, b, tmp, strlen(tmp));
    }
    case IG_JV_STR:
        return write_str_repr(c, b, v.u.s.p, v.u.s.n);
    case IG_JV_LIST: {
        if (ig__jbuf_putc(c, b, v.is_tuple ? '(' : '[')) return -1;
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i && ig__jbuf_put(c, b, ", ", 2)) return -1;
            if (ig__jv_write_repr(c, b, v.u.l->items[i], depth + 1)) return -1;
        }
        if (v.is_tuple && v.u.l->n == 1 && ig__jbuf_putc(c, b, ',')) return -1;
        return ig__jbuf_putc(c, b, v.is_tuple ? ')' : ']');
    }
    case IG_JV_NS:
        if (ig__jbuf_put(c, b, "<Namespace ", 11)) return -1;
        /* fall through */
    case IG_JV_DICT: {
        if (ig__jbuf_putc(c, b, '{')) return -1;
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i && ig__jbuf_put(c, b, ", ", 2)) return -1;
            if (ig__jv_write_repr(c, b, v.u.d->keys[i], depth + 1)) return -1;
            if (ig__jbuf_put(c, b, ": ", 2)) return -1;
            if (ig__jv_write_repr(c, b, v.u.d->vals[i], depth + 1)) return -1;
        }
        if (ig__jbuf_putc(c, b, '}')) return -1;
        return v.type == IG_JV_NS ? ig__jbuf_putc(c, b, '>') : 0;
    }
    case IG_JV_FUNC:
        return bprintf(c, b, "<function %.40s>", v.u.fn->name);
    case IG_JV_LOOP:
        return ig__jbuf_put(c, b, "<LoopContext>", 13);
    }
    return 0;
}

int ig__jv_to_str(ig__jctx *c, ig__jv v, ig__jv *out) {
    if (v.type == IG_JV_STR) {
        *out = v;
        return 0;
    }
    if (v.type == IG_JV_UNDEF) {
        *out = ig__jv_str("", 0);
        return 0;
    }
    ig__jbuf b = {0};
    if (ig__jv_write_str(c, &b, v, 0)) {
        free(b.p);
        return -1;
    }
    return ig__jbuf_finish(c, &b, out);
}

static int write_json_str(ig__jctx *c, ig__jbuf *b, const char *p, size_t n) {
    if (ig__jbuf_putc(c, b, '"')) return -1;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        const char *esc = NULL;
        char tmp[8];
        if (ch == '"')
            esc = "\\\"";
        else if (ch == '\\')
            esc = "\\\\";
        else if (ch == '\n')
            esc = "\\n";
        else if (ch == '\r')
            esc = "\\r";
        else if (ch == '\t')
            esc = "\\t";
        else if (ch == '\b')
            esc = "\\b";
        else if (ch == '\f')
            esc = "\\f";
        else if (ch < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", ch);
            esc = tmp;
        }
        if (esc) {
            if (ig__jbuf_put(c, b, p + i - run, run) || ig__jbuf_put(c, b, esc, strlen(esc)))
                return -1;
            run = 0;
        } else {
            run++;
        }
    }
    if (ig__jbuf_put(c, b, p + n - run, run)) return -1;
    return ig__jbuf_putc(c, b, '"');
}

static int json_newline(ig__jctx *c, ig__jbuf *b, int indent, int level) {
    if (ig__jbuf_putc(c, b, '\n')) return -1;
    for (int i = 0; i < indent * level; i++)
        if (ig__jbuf_putc(c, b, ' ')) return -1;
    return 0;
}

static int cmp_keys(const void *x, const void *y) {
    const ig__jv *a = *(ig__jv *const *)x, *bb = *(ig__jv *const *)y;
    size_t n = a->u.s.n < bb->u.s.n ? a->u.s.n : bb->u.s.n;
    int r = memcmp(a->u.s.p, bb->u.s.p, n);
    if (r) return r;
    return a->u.s.n < bb->u.s.n ? -1 : a->u.s.n > bb->u.s.n;
}

int ig__jv_write_json(ig__jctx *c, ig__jbuf *b, ig__jv v, int indent, bool sort_keys, int level) {
    if (level > IG_JV_MAX_NEST)
        return ig__jfail(c, NULL, IG_ERANGE, "value nested deeper than %d levels", IG_JV_MAX_NEST);
    switch ((ig__jtype)v.type) {
    case IG_JV_NONE:
        return ig__jbuf_put(c, b, "null", 4);
    case IG_JV_BOOL:
        return v.u.b ? ig__jbuf_put(c, b, "true", 4) : ig__jbuf_put(c, b, "false", 5);
    case IG_JV_INT:
        return bprintf(c, b, "%lld", (long long)v.u.i);
    case IG_JV_FLOAT: {
        char tmp[64];
        if (isnan(v.u.f))
            snprintf(tmp, sizeof tmp, "NaN");
        else if (isinf(v.u.f))
            snprintf(tmp, sizeof tmp, v.u.f < 0 ? "-Infinity" : "Infinity");
        else
            ig__jfloat_repr(v.u.f, tmp, sizeof tmp);
        return ig__jbuf_put(c, b, tmp, strlen(tmp));
    }
    case IG_JV_STR:
        return write_json_str(c, b, v.u.s.p, v.u.s.n);
    case IG_JV_LIST: {
        if (ig__jbuf_putc(c, b, '[')) return -1;
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i && ig__jbuf_put(c, b, ", ", indent >= 0 ? 1 : 2)) return -1;
            if (indent >= 0 && json_newline(c, b, indent, level + 1)) return -1;
            if (ig__jv_write_json(c, b, v.u.l->items[i], indent, sort_keys, level + 1)) return -1;
        }
        if (indent >= 0 && v.u.l->n && json_newline(c, b, indent, level)) return -1;
        return ig__jbuf_putc(c, b, ']');
    }
    case IG_JV_NS:
    case IG_JV_DICT: {
        const ig__jdict *d = v.u.d;
        if (v.type == IG_JV_NS)
            return ig__jfail(c, NULL, IG_ETYPE,
                             "Object of type Namespace is not JSON serializable");
        ig__jv **order = NULL;
        for (size_t i = 0; i < d->n; i++) {
            if (d->keys[i].type != IG_JV_STR)
                return ig__jfail(c, NULL, IG_ETYPE, "tojson: dict keys must be strings here");
        }
        if (sort_keys && d->n > 1) {
            order = ig__ja_alloc(&c->arena, d->n * sizeof *order);
            if (!order) return ig__jfail(c, NULL, IG_ENOMEM, "out of memory");
            for (size_t i = 0; i < d->n; i++) order[i] = &d->keys[i];
            qsort(order, d->n, sizeof *order, cmp_keys);
        }
        if (ig__jbuf_putc(c, b, '{')) return -1;
        for (size_t i = 0; i < d->n; i++) {
            size_t k = order ? (size_t)(order[i] - d->keys) : i;
            if (i && ig__jbuf_put(c, b, ", ", indent >= 0 ? 1 : 2)) return -1;
            if (indent >= 0 && json_newline(c, b, indent, level + 1)) return -1;
            if (write_json_str(c, b, d->keys[k].u.s.p, d->keys[k].u.s.n)) return -1;
            if (ig__jbuf_put(c, b, ": ", 2)) return -1;
            if (ig__jv_write_json(c, b, d->vals[k], indent, sort_keys, level + 1)) return -1;
        }
        if (indent >= 0 && d->n && json_newline(c, b, indent, level)) return -1;
        return ig__jbuf_putc(c, b, '}');
    }
    case IG_JV_UNDEF:
    case IG_JV_FUNC:
    case IG_JV_LOOP:
        return ig__jfail(c, NULL, IG_ETYPE, "Object of type %s is not JSON serializable",
                         ig__jv_type_name(v));
    }
    return 0;
}
