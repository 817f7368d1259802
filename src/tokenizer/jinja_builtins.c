/*
 * jinja_builtins.c: the filters, tests, global functions and str/dict methods
 * that chat templates call, each behaving like its jinja2 (3.1) or Python
 * namesake, plus Hugging Face's additions: tojson (json.dumps with
 * ensure_ascii=False), raise_exception and strftime_now.
 *
 * Unknown filters and tests are errors, as in jinja2 (which reports them when
 * compiling; we report them when first used).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/error.h"
#include "tokenizer/jinja.h"

/* Argument `pos` (positional) or keyword `name`; NULL when not given. */
static ig__jv *arg(ig__jv *args, size_t n_args, const char **kw_names, ig__jv *kw_vals, size_t n_kw,
                   size_t pos, const char *name) {
    if (pos < n_args) return &args[pos];
    for (size_t i = 0; name && i < n_kw; i++)
        if (!strcmp(kw_names[i], name)) return &kw_vals[i];
    return NULL;
}

#define ARG(pos, name) arg(args, n_args, kw_names, kw_vals, n_kw, pos, name)

static int need_str(ig__jctx *c, const ig__jnode *at, ig__jv v, const char *what) {
    if (v.type == IG_JV_STR) return 0;
    return ig__jfail(c, at, IG_EINVAL, "%s expects a string, got '%s'", what, ig__jv_type_name(v));
}

static int64_t int_or(ig__jv *v, int64_t dflt) {
    if (!v) return dflt;
    if (v->type == IG_JV_INT) return v->u.i;
    if (v->type == IG_JV_BOOL) return v->u.b;
    if (v->type == IG_JV_FLOAT) return (int64_t)v->u.f;
    return dflt;
}

/* ---- string helpers ------------------------------------------------------------------- */

static bool cp_in(int32_t cp, ig__jv *chars) {
    if (!chars || chars->type != IG_JV_STR) return ig__py_isspace(cp);
    for (size_t i = 0; i < chars->u.s.n;) {
        int32_t x;
        i += ig__jutf8_decode(chars->u.s.p + i, chars->u.s.n - i, &x);
        if (x == cp) return true;
    }
    return false;
}

static ig__jv do_strip(ig__jv s, ig__jv *chars, bool left, bool right) {
    const char *p = s.u.s.p;
    size_t b = 0, e = s.u.s.n;
    if (left) {
        while (b < e) {
            int32_t cp;
            size_t k = ig__jutf8_decode(p + b, e - b, &cp);
            if (!cp_in(cp, chars)) break;
            b += k;
        }
    }
    if (right) {
        while (e > b) {
            size_t st = e - 1;
            while (st > b && e - st < 4 && ((unsigned char)p[st] & 0xC0) == 0x80) st--;
            int32_t cp;
            size_t k = ig__jutf8_decode(p + st, e - st, &cp);
            if (st + k != e) {
                st = e - 1;
                cp = (unsigned char)p[st];
            }
            if (!cp_in(cp, chars)) break;
            e = st;
        }
    }
    return ig__jv_str(p + b, e - b);
}

/* mode: 0 upper, 1 lower, 2 capitalize (Python), 3 title (Python str.title), 4 jinja title */
static int do_case(ig__jctx *c, ig__jv s, int mode, ig__jv *out) {
    ig__jbuf b = {0};
    bool prev_cased = false, first = true;
    for (size_t i = 0; i < s.u.s.n;) {
        int32_t cp;
        size_t k = ig__jutf8_decode(s.u.s.p + i, s.u.s.n - i, &cp);
        int32_t r = cp;
        switch (mode) {
        case 0:
            r = utf8proc_toupper(cp);
            break;
        case 1:
            r = utf8proc_tolower(cp);
            break;
        case 2:
            r = first ? utf8proc_toupper(cp) : utf8proc_tolower(cp);
            break;
        case 3:
            r = prev_cased ? utf8proc_tolower(cp) : utf8proc_toupper(cp);
            break;
        case 4:
            r = prev_cased ? utf8proc_tolower(cp) : utf8proc_toupper(cp);
            break;
        }
        if (mode == 3) {
            prev_cased = utf8proc_tolower(cp) != cp || utf8proc_toupper(cp) != cp;
        } else if (mode == 4) {
            prev_cased = !(ig__py_isspace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' ||
                           cp == '<');
        }
        first = false;
        char enc[4];
        size_t m = ig__jutf8_encode(r, enc);
        if (ig__jbuf_put(c, &b, r == cp ? s.u.s.p + i : enc, r == cp ? k : m)) {
            free(b.p);
            return -1;
        }
        i += k;
    }
    return ig__jbuf_finish(c, &b, out);
}

static int do_replace(ig__jctx *c, ig__jv s, ig__jv from, ig__jv to, int64_t count, ig__jv *out) {
    ig__jbuf b = {0};
    size_t i = 0;
    int64_t done = 0;
    int rc = 0;
    if (from.u.s.n == 0) {
        /* Python: insert `to` between characters (and at both ends). */
        while (rc == 0 && i <= s.u.s.n) {
            if (count < 0 || done < count) {
                rc = ig__jbuf_put(c, &b, to.u.s.p, to.u.s.n);
                done++;
            }
            if (i == s.u.s.n) break;
            int32_t cp;
            size_t k = ig__jutf8_decode(s.u.s.p + i, s.u.s.n - i, &cp);
            if (!rc) rc = ig__jbuf_put(c, &b, s.u.s.p + i, k);
            i += k;
        }
    } else {
        while (rc == 0 && i < s.u.s.n) {
            const char *hit = (count < 0 || done < count)
                                  ? memmem(s.u.s.p + i, s.u.s.n - i, from.u.s.p, from.u.s.n)
                                  : NULL;
            if (!hit) {
                rc = ig__jbuf_put(c, &b, s.u.s.p + i, s.u.s.n - i);
                break;
            }
            size_t at = (size_t)(hit - s.u.s.p);
            rc = ig__jbuf_put(c, &b, s.u.s.p + i, at - i);
            if (!rc) rc = ig__jbuf_put(c, &b, to.u.s.p, to.u.s.n);
            i = at + from.u.s.n;
            done++;
        }
    }
    if (rc) {
        free(b.p);
        return -1;
    }
    return ig__jbuf_finish(c, &b, out);
}

static int do_split(ig__jctx *c, const ig__jnode *at, ig__jv s, ig__jv *sep, int64_t maxsplit,
                    ig__jv *out) {
    ig__jlist *l = ig__jlist_new(c, 0);
    if (!l) return -1;
    const char *p = s.u.s.p;
    size_t n = s.u.s.n;
    if (!sep || sep->type == IG_JV_NONE) {
        size_t i = 0;
        int64_t done = 0;
        for (;;) {
            while (i < n) { /* skip whitespace */
                int32_t cp;
                size_t k = ig__jutf8_decode(p + i, n - i, &cp);
                if (!ig__py_isspace(cp)) break;
                i += k;
            }
            if (i >= n) break;
            if (maxsplit >= 0 && done >= maxsplit) {
                ig__jv rest = do_strip(ig__jv_str(p + i, n - i), NULL, false, true);
                if (ig__jlist_push(c, l, rest)) return -1;
                break;
            }
            size_t st = i;
            while (i < n) {
                int32_t cp;
                size_t k = ig__jutf8_decode(p + i, n - i, &cp);
                if (ig__py_isspace(cp)) break;
                i += k;
            }
            if (ig__jlist_push(c, l, ig__jv_str(p + st, i - st))) return -1;
            done++;
        }
    } else {
        if (need_str(c, at, *sep, "split()")) return -1;
        if (sep->u.s.n == 0) return ig__jfail(c, at, IG_EINVAL, "split(): empty separator");
        size_t i = 0;
        int64_t done = 0;
        for (;;) {
            const char *hit = (maxsplit < 0 || done < maxsplit)
                                  ? memmem(p + i, n - i, sep->u.s.p, sep->u.s.n)
                                  : NULL;
            if (!hit) {
                if (ig__jlist_push(c, l, ig__jv_str(p + i, n - i))) return -1;
                break;
            }
            size_t k = (size_t)(hit - p);
            if (ig__jlist_push(c, l, ig__jv_str(p + i, k - i))) return -1;
            i = k + sep->u.s.n;
            done++;
            if (ig__jstep(c, at)) return -1;
        }
    }
    *out = ig__jv_list(l);
    return 0;
}

static int str_of(ig__jctx *c, ig__jv v, ig__jv *out) {
    return ig__jv_to_str(c, v, out);
}

/* ---- string formatting ---------------------------------------------------------------- */

/*
 * Python's str.format() for the forms templates use: "{}", "{0}", "{name}",
 * "{{" and "}}". Format specs and conversions ("{:>5}", "{!r}") are refused.
 */
int ig__jstr_format(ig__jctx *c, const ig__jnode *at, ig__jv fmt, ig__jv *args, size_t n_args,
                    const char **kw_names, ig__jv *kw_vals, size_t n_kw, ig__jv *out) {
    ig__jbuf b = {0};
    const char *p = fmt.u.s.p;
    size_t n = fmt.u.s.n, next_auto = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = 0;
        if (p[i] == '}') {
            if (i + 1 < n && p[i + 1] == '}')
                i++;
            else {
                free(b.p);
                return ig__jfail(c, at, IG_EINVAL, "format(): single '}' in format string");
            }
            rc = ig__jbuf_putc(c, &b, '}');
        } else if (p[i] != '{') {
            rc = ig__jbuf_putc(c, &b, p[i]);
        } else if (i + 1 < n && p[i + 1] == '{') {
            i++;
            rc = ig__jbuf_putc(c, &b, '{');
        } else {
            const char *close = memchr(p + i, '}', n - i);
            if (!close) {
                free(b.p);
                return ig__jfail(c, at, IG_EINVAL, "format(): unclosed '{' in format string");
            }
            const char *field = p + i + 1;
            size_t flen = (size_t)(close - field);
            ig__jv *v = NULL;
            if (memchr(field, ':', flen) || memchr(field, '!', flen) || memchr(field, '.', flen) ||
                memchr(field, '[', flen)) {
                free(b.p);
                return ig__jfail(c, at, IG_EUNSUPPORTED,
                                 "format(): only {}, {N} and {name} are supported");
            }
            if (flen == 0) {
                if (next_auto < n_args) v = &args[next_auto];
                next_auto++;
            } else if (field[0] >= '0' && field[0] <= '9') {
                size_t k = 0;
                for (size_t j = 0; j < flen && k < 1000000; j++)
                    k = k * 10 + (size_t)(field[j] - '0');
                if (k < n_args) v = &args[k];
            } else {
                for (size_t j = 0; j < n_kw; j++)
                    if (strlen(kw_names[j]) == flen && !memcmp(kw_names[j], field, flen))
                        v = &kw_vals[j];
            }
            if (!v) {
                free(b.p);
                return ig__jfail(c, at, IG_EINVAL, "format(): no argument for {%.*s}",
                                 (int)(flen > 40 ? 40 : flen), field);
            }
            rc = ig__jv_write_str(c, &b, *v, 0);
            i = (size_t)(close - p);
        }
        if (rc) {
            free(b.p);
            return -1;
        }
    }
    return ig__jbuf_finish(c, &b, out);
}

/*
 * Python's printf-style `str % args`: conversions s, r, d, i, f, x and %%,
 * with flags "-0 +", a width and a precision. `args` is a tuple or one value.
 */
int ig__jstr_percent(ig__jctx *c, const ig__jnode *at, ig__jv fmt, ig__jv argv, ig__jv *out) {
    ig__jv one[1] = {argv};
    ig__jv *args = one;
    size_t n_args = 1, next = 0;
    if (argv.type == IG_JV_LIST && argv.is_tuple) {
        args = argv.u.l->items;
        n_args = argv.u.l->n;
    }
    ig__jbuf b = {0};
    const char *p = fmt.u.s.p;
    size_t n = fmt.u.s.n;
    for (size_t i = 0; i < n; i++) {
        int rc;
        if (p[i] != '%') {
            rc = ig__jbuf_putc(c, &b, p[i]);
        } else if (i + 1 < n && p[i + 1] == '%') {
            i++;
            rc = ig__jbuf_putc(c, &b, '%');
        } else {
            char spec[32] = "%";
            size_t k = 1, j = i + 1;
            while (j < n && strchr("-0 +", p[j]) && k < 8) spec[k++] = p[j++];
            while (j < n && p[j] >= '0' && p[j] <= '9' && k < 14) spec[k++] = p[j++];
            if (j < n && p[j] == '.') {
                spec[k++] = p[j++];
                while (j < n && p[j] >= '0' && p[j] <= '9' && k < 20) spec[k++] = p[j++];
            }
            if (j >= n || !strchr("srdifx", p[j])) {
                free(b.p);
                return ig__jfail(c, at, IG_EUNSUPPORTED, "unsupported '%%' format in string");
            }
            if (next >= n_args) {
                free(b.p);
                return ig__jfail(c, at, IG_EINVAL, "not enough arguments for format string");
            }
            ig__jv v = args[next++];
            char conv = p[j];
            char tmp[512];
            if (conv == 's' || conv == 'r') {
                ig__jbuf sb = {0};
                rc = conv == 's' ? ig__jv_write_str(c, &sb, v, 0) : ig__jv_write_repr(c, &sb, v, 0);
                if (!rc) {
                    /* Width/precision count characters: pad by hand. */
                    int width = 0, prec = -1;
                    bool left = strchr(spec, '-') != NULL;
                    const char *q = spec + 1;
                    while (*q && strchr("-0 +", *q)) q++;
                    width = atoi(q);
                    const char *dot = strchr(spec, '.');
                    if (dot) prec = atoi(dot + 1);
                    size_t len = sb.n;
                    if (prec >= 0) len = ig__jutf8_offset(sb.p ? sb.p : "", sb.n, prec);
                    size_t nch = ig__jutf8_count(sb.p ? sb.p : "", len);
                    for (size_t pad = nch; !left && (int)pad < width && !rc; pad++)
                        rc = ig__jbuf_putc(c, &b, ' ');
                    if (!rc) rc = ig__jbuf_put(c, &b, sb.p, len);
                    for (size_t pad = nch; left && (int)pad < width && !rc; pad++)
                        rc = ig__jbuf_putc(c, &b, ' ');
                }
                free(sb.p);
            } else if (conv == 'f') {
                double f;
                if (v.type == IG_JV_FLOAT)
                    f = v.u.f;
                else if (v.type == IG_JV_INT || v.type == IG_JV_BOOL)
                    f = (double)int_or(&v, 0);
                else {
                    free(b.p);
                    return ig__jfail(c, at, IG_EINVAL, "%%f format: a number is required");
                }
                spec[k++] = 'f';
                spec[k] = '\0';
                int m = snprintf(tmp, sizeof tmp, spec, f);
                rc = ig__jbuf_put(c, &b, tmp,
                                  m < 0                    ? 0
                                  : (size_t)m < sizeof tmp ? (size_t)m
                                                           : sizeof tmp - 1);
            } else {
                long long x;
                if (v.type == IG_JV_INT || v.type == IG_JV_BOOL)
                    x = int_or(&v, 0);
                else if (v.type == IG_JV_FLOAT && isfinite(v.u.f) && fabs(v.u.f) < 9.2e18)
                    x = (long long)v.u.f;
                else {
                    free(b.p);
                    return ig__jfail(c, at, IG_EINVAL, "%%%c format: a number is required", conv);
                }
                spec[k++] = 'l';
                spec[k++] = 'l';
                spec[k++] = conv == 'x' ? 'x' : 'd';
                spec[k] = '\0';
                int m = snprintf(tmp, sizeof tmp, spec, x);
                rc = ig__jbuf_put(c, &b, tmp,
                                  m < 0                    ? 0
                                  : (size_t)m < sizeof tmp ? (size_t)m
                                                           : sizeof tmp - 1);
            }
            i = j;
        }
        if (rc) {
            free(b.p);
            return -1;
        }
    }
    if (next < n_args && argv.type == IG_JV_LIST && argv.is_tuple) {
        free(b.p);
        return ig__jfail(c, at, IG_EINVAL, "not all arguments converted during string formatting");
    }
    return ig__jbuf_finish(c, &b, out);
}

/* ---- global functions and methods ----------------------------------------------------- */

typedef struct method_def {
    const char *name;
    uint8_t self_type; /* IG_JV_STR or IG_JV_DICT */
} method_def;

static const method_def methods[] = {
    {"strip", IG_JV_STR},      {"lstrip", IG_JV_STR},     {"rstrip", IG_JV_STR},
    {"startswith", IG_JV_STR}, {"endswith", IG_JV_STR},   {"split", IG_JV_STR},
    {"rsplit", IG_JV_STR},     {"upper", IG_JV_STR},      {"lower", IG_JV_STR},
    {"title", IG_JV_STR},      {"capitalize", IG_JV_STR}, {"replace", IG_JV_STR},
    {"find", IG_JV_STR},       {"count", IG_JV_STR},      {"join", IG_JV_STR},
    {"splitlines", IG_JV_STR}, {"isdigit", IG_JV_STR},    {"isspace", IG_JV_STR},
    {"isalpha", IG_JV_STR},    {"format", IG_JV_STR},     {"get", IG_JV_DICT},
    {"items", IG_JV_DICT},     {"keys", IG_JV_DICT},      {"values", IG_JV_DICT},
};
#define N_METHODS (sizeof methods / sizeof methods[0])

int ig__jmethod(ig__jctx *c, ig__jv self, const char *name, ig__jv *out, bool *found) {
    *found = false;
    for (size_t k = 0; k < N_METHODS; k++) {
        if (methods[k].self_type != self.type || strcmp(methods[k].name, name)) continue;
        ig__jfunc *fn = ig__ja_alloc(&c->arena, sizeof *fn);
        if (!fn) return ig__jfail(c, NULL, IG_ENOMEM, "out of memory");
        fn->builtin = IG_JB_METHOD + (int)k;
        fn->self = self;
        fn->name = methods[k].name;
        *out = (ig__jv){.type = IG_JV_FUNC};
        out->u.fn = fn;
        *found = true;
        return 0;
    }
    return 0;
}

bool ig__jglobal_func(const char *name, ig__jv *out) {
    /* Constant, never written: shared by every render on every thread. */
    static const ig__jfunc funcs[] = {
        {.builtin = IG_JB_RANGE, .name = "range"},
        {.builtin = IG_JB_NAMESPACE, .name = "namespace"},
        {.builtin = IG_JB_RAISE, .name = "raise_exception"},
        {.builtin = IG_JB_STRFTIME, .name = "strftime_now"},
        {.builtin = IG_JB_DICT, .name = "dict"},
    };
    for (size_t k = 0; k < sizeof funcs / sizeof funcs[0]; k++) {
        if (strcmp(funcs[k].name, name)) continue;
        *out = (ig__jv){.type = IG_JV_FUNC};
        out->u.fn = (ig__jfunc *)&funcs[k];
        return true;
    }
    return false;
}

static int call_method(ig__jctx *c, const ig__jnode *at, size_t k, ig__jv self, ig__jv *args,
                       size_t n_args, const char **kw_names, ig__jv *kw_vals, size_t n_kw,
                       ig__jv *out) {
    const char *name = methods[k].name;
    ig__jv *a0 = ARG(0, NULL), *a1 = ARG(1, NULL);
    if (self.type == IG_JV_DICT) {
        const ig__jdict *d = self.u.d;
        if (!strcmp(name, "get")) {
            if (!a0) return ig__jfail(c, at, IG_EINVAL, "get() needs a key");
            ig__jv *v = ig__jdict_get(d, *a0);
            *out = v ? *v : a1 ? *a1 : ig__jv_none();
            return 0;
        }
        ig__jlist *l = ig__jlist_new(c, d->n);
        if (!l) return -1;
        for (size_t i = 0; i < d->n; i++) {
            if (!strcmp(name, "items")) {
                ig__jlist *pair = ig__jlist_new(c, 2);
                if (!pair) return -1;
                pair->items[0] = d->keys[i];
                pair->items[1] = d->vals[i];
                pair->n = 2;
                l->items[i] = ig__jv_list(pair);
                l->items[i].is_tuple = 1;
            } else {
                l->items[i] = !strcmp(name, "keys") ? d->keys[i] : d->vals[i];
            }
        }
        l->n = d->n;
        *out = ig__jv_list(l);
        return 0;
    }
    /* str methods */
    const char *p = self.u.s.p;
    size_t n = self.u.s.n;
    if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
        ig__jv *chars = a0 && a0->type != IG_JV_NONE ? a0 : NULL;
        if (chars && need_str(c, at, *chars, name)) return -1;
        *out = do_strip(self, chars, name[0] != 'r', name[0] != 'l');
        return 0;
    }
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
        if (!a0) return ig__jfail(c, at, IG_EINVAL, "%s() needs an argument", name);
        bool starts = name[0] == 's', r = false;
        ig__jv one[1] = {*a0};
        ig__jv *cands = one;
        size_t nc = 1;
        if (a0->type == IG_JV_LIST) {
            cands = a0->u.l->items;
            nc = a0->u.l->n;
        }
        for (size_t i = 0; i < nc && !r; i++) {
            if (need_str(c, at, cands[i], name)) return -1;
            size_t m = cands[i].u.s.n;
            r = m <= n && memcmp(starts ? p : p + n - m, cands[i].u.s.p, m) == 0;
        }
        *out = ig__jv_bool(r);
        return 0;
    }
    if (!strcmp(name, "split") || !strcmp(name, "rsplit")) {
        ig__jv *sep = ARG(0, "sep");
        int64_t maxsplit = int_or(ARG(1, "maxsplit"), -1);
        if (name[0] == 'r' && maxsplit >= 0)
            return ig__jfail(c, at, IG_EUNSUPPORTED, "rsplit() with maxsplit is not supported");
        return do_split(c, at, self, sep, maxsplit, out);
    }
    if (!strcmp(name, "upper")) return do_case(c, self, 0, out);
    if (!strcmp(name, "lower")) return do_case(c, self, 1, out);
    if (!strcmp(name, "capitalize")) return do_case(c, self, 2, out);
    if (!strcmp(name, "title")) return do_case(c, self, 3, out);
    if (!strcmp(name, "replace")) {
        if (!a0 || !a1 || need_str(c, at, *a0, "replace()") || need_str(c, at, *a1, "replace()"))
            return a0 && a1 ? -1 : ig__jfail(c, at, IG_EINVAL, "replace() needs two arguments");
        return do_replace(c, self, *a0, *a1, int_or(ARG(2, "count"), -1), out);
    }
    if (!strcmp(name, "find") || !strcmp(name, "count")) {
        if (!a0 || need_str(c, at, *a0, name))
            return a0 ? -1 : ig__jfail(c, at, IG_EINVAL, "%s() needs an argument", name);
        const char *hit = memmem(p, n, a0->u.s.p, a0->u.s.n);
        if (name[0] == 'f') {
            *out = ig__jv_int(hit ? (int64_t)ig__jutf8_count(p, (size_t)(hit - p)) : -1);
            return 0;
        }
        int64_t cnt = 0;
        if (a0->u.s.n == 0)
            cnt = (int64_t)ig__jutf8_count(p, n) + 1;
        else
            for (size_t i = 0; (hit = memmem(p + i, n - i, a0->u.s.p, a0->u.s.n)) != NULL; cnt++)
                i = (size_t)(hit - p) + a0->u.s.n;
        *out = ig__jv_int(cnt);
        return 0;
    }
    if (!strcmp(name, "join")) {
        ig__jlist *l;
        if (!a0 || ig__jiterate(c, at, *a0, &l))
            return a0 ? -1 : ig__jfail(c, at, IG_EINVAL, "join() needs an argument");
        ig__jbuf b = {0};
        for (size_t i = 0; i < l->n; i++) {
            if ((i && ig__jbuf_put(c, &b, p, n)) || need_str(c, at, l->items[i], "join()") ||
                ig__jbuf_put(c, &b, l->items[i].u.s.p, l->items[i].u.s.n)) {
                free(b.p);
                return -1;
            }
        }
        return ig__jbuf_finish(c, &b, out);
    }
    if (!strcmp(name, "splitlines")) {
        ig__jlist *l = ig__jlist_new(c, 0);
        if (!l) return -1;
        size_t st = 0;
        for (size_t i = 0; i < n; i++) {
            if (p[i] != '\n' && p[i] != '\r') continue;
            if (ig__jlist_push(c, l, ig__jv_str(p + st, i - st))) return -1;
            if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') i++;
            st = i + 1;
        }
        if (st < n && ig__jlist_push(c, l, ig__jv_str(p + st, n - st))) return -1;
        *out = ig__jv_list(l);
        return 0;
    }
    if (!strcmp(name, "format"))
        return ig__jstr_format(c, at, self, args, n_args, kw_names, kw_vals, n_kw, out);
    /* isdigit / isspace / isalpha */
    bool r = n > 0;
    for (size_t i = 0; i < n && r;) {
        int32_t cp;
        i += ig__jutf8_decode(p + i, n - i, &cp);
        utf8proc_category_t cat = utf8proc_category(cp);
        if (name[2] == 'd')
            r = cat == UTF8PROC_CATEGORY_ND;
        else if (name[2] == 's')
            r = ig__py_isspace(cp);
        else
            r = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
    }
    *out = ig__jv_bool(r);
    return 0;
}

int ig__jcall_builtin(ig__jctx *c, const ig__jnode *at, const ig__jfunc *fn, ig__jv *args,
                      size_t n_args, const char **kw_names, ig__jv *kw_vals, size_t n_kw,
                      ig__jv *out) {
    switch (fn->builtin) {
    case IG_JB_RANGE: {
        int64_t start = 0, stop, step = 1;
        for (size_t i = 0; i < n_args; i++)
            if (args[i].type != IG_JV_INT && args[i].type != IG_JV_BOOL)
                return ig__jfail(c, at, IG_EINVAL, "range() arguments must be integers");
        if (n_args == 1)
            stop = int_or(&args[0], 0);
        else if (n_args == 2 || n_args == 3) {
            start = int_or(&args[0], 0);
            stop = int_or(&args[1], 0);
            if (n_args == 3) step = int_or(&args[2], 1);
        } else
            return ig__jfail(c, at, IG_EINVAL, "range() takes 1 to 3 arguments");
        if (step == 0) return ig__jfail(c, at, IG_EINVAL, "range() step must not be zero");
        ig__jlist *l = ig__jlist_new(c, 0);
        if (!l) return -1;
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
            if (l->n >= 100000)
                return ig__jfail(c, at, IG_ERANGE, "range too big (more than 100000 items)");
            if (ig__jlist_push(c, l, ig__jv_int(i))) return -1;
            if (__builtin_add_overflow(i, step, &i)) break;
            i -= step;
        }
        *out = ig__jv_list(l);
        return 0;
    }
    case IG_JB_NAMESPACE:
    case IG_JB_DICT: {
        ig__jdict *d = ig__jdict_new(c, n_kw);
        if (!d) return -1;
        for (size_t i = 0; i < n_args; i++) {
            if (args[i].type != IG_JV_DICT && args[i].type != IG_JV_NS)
                return ig__jfail(c, at, IG_EINVAL, "%s() takes keyword arguments or a dict",
                                 fn->name);
            for (size_t k = 0; k < args[i].u.d->n; k++)
                if (ig__jdict_set(c, d, args[i].u.d->keys[k], args[i].u.d->vals[k])) return -1;
        }
        for (size_t i = 0; i < n_kw; i++)
            if (ig__jdict_set(c, d, ig__jv_str(kw_names[i], strlen(kw_names[i])), kw_vals[i]))
                return -1;
        *out = ig__jv_dict(d);
        if (fn->builtin == IG_JB_NAMESPACE) out->type = IG_JV_NS;
        return 0;
    }
    case IG_JB_RAISE: {
        ig__jv msg = ig__jv_str("", 0);
        if (n_args && str_of(c, args[0], &msg)) return -1;
        if (!c->status) {
            c->status = IG_EINVAL;
            ig_errorf(c->err, IG_EINVAL, "%.*s", (int)(msg.u.s.n > 500 ? 500 : msg.u.s.n),
                      msg.u.s.p);
        }
        return -1;
    }
    case IG_JB_STRFTIME: {
        if (n_args != 1 || need_str(c, at, args[0], "strftime_now()"))
            return n_args != 1 ? ig__jfail(c, at, IG_EINVAL, "strftime_now() takes one argument")
                               : -1;
        if (args[0].u.s.n > 200)
            return ig__jfail(c, at, IG_EINVAL, "strftime_now(): format too long");
        char fmt[256], res[1024];
        memcpy(fmt, args[0].u.s.p, args[0].u.s.n);
        fmt[args[0].u.s.n] = '\0';
        struct tm tm;
        time_t t = c->now;
        localtime_r(&t, &tm);
        size_t m = fmt[0] ? strftime(res, sizeof res, fmt, &tm) : 0;
        return ig__jv_strdup(c, res, m, out);
    }
    case IG_JB_CYCLE: {
        if (n_args == 0) return ig__jfail(c, at, IG_EINVAL, "loop.cycle() needs arguments");
        *out = args[fn->self.u.loop->index0 % (int64_t)n_args];
        return 0;
    }
    default:
        if (fn->builtin >= IG_JB_METHOD && fn->builtin < IG_JB_METHOD + (int)N_METHODS)
            return call_method(c, at, (size_t)(fn->builtin - IG_JB_METHOD), fn->self, args, n_args,
                               kw_names, kw_vals, n_kw, out);
        return ig__jfail(c, at, IG_EINTERNAL, "unknown builtin");
    }
}

/* ---- tests ---------------------------------------------------------------------------- */

int ig__jtest(ig__jctx *c, const ig__jnode *at, const char *name, ig__jv v, ig__jv *args,
              size_t n_args, bool *out) {
    ig__jv *a0 = n_args ? &args[0] : NULL;
    int t = v.type;
    if (!strcmp(name, "defined"))
        *out = t != IG_JV_UNDEF;
    else if (!strcmp(name, "undefined"))
        *out = t == IG_JV_UNDEF;
    else if (!strcmp(name, "none"))
        *out = t == IG_JV_NONE;
    else if (!strcmp(name, "boolean"))
        *out = t == IG_JV_BOOL;
    else if (!strcmp(name, "true"))
        *out = t == IG_JV_BOOL && v.u.b;
    else if (!strcmp(name, "false"))
        *out = t == IG_JV_BOOL && !v.u.b;
    else if (!strcmp(name, "integer"))
        *out = t == IG_JV_INT;
    else if (!strcmp(name, "float"))
        *out = t == IG_JV_FLOAT;
    else if (!strcmp(name, "number"))
        *out = t == IG_JV_INT || t == IG_JV_FLOAT || t == IG_JV_BOOL;
    else if (!strcmp(name, "string"))
        *out = t == IG_JV_STR;
    else if (!strcmp(name, "mapping"))
        *out = t == IG_JV_DICT;
    else if (!strcmp(name, "iterable"))
        *out = t == IG_JV_STR || t == IG_JV_LIST || t == IG_JV_DICT || t == IG_JV_UNDEF;
    else if (!strcmp(name, "sequence"))
        *out = t == IG_JV_STR || t == IG_JV_LIST || t == IG_JV_DICT || t == IG_JV_UNDEF;
    else if (!strcmp(name, "callable"))
        *out = t == IG_JV_FUNC;
    else if (!strcmp(name, "escaped"))
        *out = false;
    else if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        ig__jv conv;
        if (t != IG_JV_STR) {
            *out = false;
            return 0;
        }
        if (do_case(c, v, name[0] == 'l' ? 1 : 0, &conv)) return -1;
        *out = ig__jv_equal(conv, v);
    } else if (!strcmp(name, "odd") || !strcmp(name, "even") || !strcmp(name, "divisibleby")) {
        int64_t x = int_or(&v, 0), d = !strcmp(name, "divisibleby") ? int_or(a0, 0) : 2;
        if (t != IG_JV_INT && t != IG_JV_BOOL)
            return ig__jfail(c, at, IG_EINVAL, "test '%s' needs an integer", name);
        if (d == 0) return ig__jfail(c, at, IG_EINVAL, "divisibleby(0)");
        int64_t r = d == -1 ? 0 : x % d;
        *out = name[0] == 'o' ? r != 0 : r == 0;
    } else if (!strcmp(name, "sameas")) {
        if (!a0) return ig__jfail(c, at, IG_EINVAL, "test 'sameas' needs an argument");
        *out = (t == IG_JV_NONE || t == IG_JV_BOOL || t == IG_JV_UNDEF)
                   ? a0->type == t && ig__jv_equal(v, *a0)
                   : a0->type == t && ig__jv_equal(v, *a0);
    } else if (!strcmp(name, "in")) {
        if (!a0) return ig__jfail(c, at, IG_EINVAL, "test 'in' needs an argument");
        ig__jv r;
        if (ig__jbinop(c, at, IG_JOP_IN, v, *a0, &r)) return -1;
        *out = r.u.b;
    } else {
        static const struct {
            const char *names[3];
            int op;
        } cmp[] = {
            {{"eq", "equalto", "=="}, IG_JOP_EQ},    {{"ne", "!=", NULL}, IG_JOP_NE},
            {{"lt", "lessthan", "<"}, IG_JOP_LT},    {{"le", "<=", NULL}, IG_JOP_LE},
            {{"gt", "greaterthan", ">"}, IG_JOP_GT}, {{"ge", ">=", NULL}, IG_JOP_GE},
        };
        for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
            for (int j = 0; j < 3; j++) {
                if (!cmp[i].names[j] || strcmp(cmp[i].names[j], name)) continue;
                if (!a0) return ig__jfail(c, at, IG_EINVAL, "test '%s' needs an argument", name);
                ig__jv r;
                if (ig__jbinop(c, at, cmp[i].op, v, *a0, &r)) return -1;
                *out = r.u.b;
                return 0;
            }
        }
        return ig__jfail(c, at, IG_EINVAL, "no test named '%s'", name);
    }
    return 0;
}

/* ---- filters -------------------------------------------------------------------------- */

static int html_escape(ig__jctx *c, ig__jv s, ig__jv *out) {
    ig__jbuf b = {0};
    int rc = 0;
    for (size_t i = 0; i < s.u.s.n && !rc; i++) {
        char ch = s.u.s.p[i];
        switch (ch) {
        case '&':
            rc = ig__jbuf_put(c, &b, "&amp;", 5);
            break;
        case '<':
            rc = ig__jbuf_put(c, &b, "&lt;", 4);
            break;
        case '>':
            rc = ig__jbuf_put(c, &b, "&gt;", 4);
            break;
        case '"':
            rc = ig__jbuf_put(c, &b, "&#34;", 5);
            break;
        case '\'':
            rc = ig__jbuf_put(c, &b, "&#39;", 5);
            break;
        default:
            rc = ig__jbuf_putc(c, &b, ch);
            break;
        }
    }
    if (rc) {
        free(b.p);
        return -1;
    }
    return ig__jbuf_finish(c, &b, out);
}

static int do_indent(ig__jctx *c, ig__jv s, ig__jv *width, bool first, bool blank, ig__jv *out) {
    ig__jv ind;
    char spaces[64];
    if (width && width->type == IG_JV_STR) {
        ind = *width;
    } else {
        int64_t w = int_or(width, 4);
        if (w < 0) w = 0;
        if (w > (int64_t)sizeof spaces) w = sizeof spaces;
        memset(spaces, ' ', (size_t)w);
        ind = ig__jv_str(spaces, (size_t)w);
    }
    ig__jbuf b = {0};
    int rc = 0;
    if (first) rc = ig__jbuf_put(c, &b, ind.u.s.p, ind.u.s.n);
    /* Lines as str.splitlines() of s + "\n" splits them. */
    const char *p = s.u.s.p;
    size_t n = s.u.s.n, st = 0;
    bool first_line = true;
    for (size_t i = 0; i <= n && !rc; i++) {
        if (i < n && p[i] != '\n' && p[i] != '\r') continue;
        if (i == n && st == n && !first_line) break;
        size_t len = i - st;
        if (!first_line) {
            rc = ig__jbuf_putc(c, &b, '\n');
            if (!rc && (len || blank)) rc = ig__jbuf_put(c, &b, ind.u.s.p, ind.u.s.n);
        }
        if (!rc) rc = ig__jbuf_put(c, &b, p + st, len);
        first_line = false;
        if (i < n && p[i] == '\r' && i + 1 < n && p[i + 1] == '\n') i++;
        st = i + 1;
    }
    if (rc) {
        free(b.p);
        return -1;
    }
    return ig__jbuf_finish(c, &b, out);
}

static int select_items(ig__jctx *c, const ig__jnode *at, ig__jv v, ig__jv *args, size_t n_args,
                        bool by_attr, bool keep, ig__jv *out) {
    ig__jlist *l, *res;
    if (ig__jiterate(c, at, v, &l) || !(res = ig__jlist_new(c, 0))) return -1;
    size_t first_test = by_attr ? 1 : 0;
    if (by_attr && (n_args < 1 || args[0].type != IG_JV_STR))
        return ig__jfail(c, at, IG_EINVAL, "selectattr/rejectattr need an attribute name");
    for (size_t i = 0; i < l->n; i++) {
        ig__jv item = l->items[i];
        if (ig__jstep(c, at)) return -1;
        if (by_attr) {
            char name[128];
            size_t k = args[0].u.s.n < sizeof name - 1 ? args[0].u.s.n : sizeof name - 1;
            memcpy(name, args[0].u.s.p, k);
            name[k] = '\0';
            ig__jv attr;
            /* Dotted paths (a.b) walk attributes, as jinja2's make_attrgetter does. */
            char *save = NULL, *part = strtok_r(name, ".", &save);
            attr = item;
            while (part) {
                if (attr.type == IG_JV_UNDEF) break;
                if (ig__jgetattr(c, at, attr, part, &attr)) return -1;
                part = strtok_r(NULL, ".", &save);
            }
            item = attr;
        }
        bool r;
        if (n_args > first_test) {
            if (args[first_test].type != IG_JV_STR)
                return ig__jfail(c, at, IG_EINVAL, "test name must be a string");
            char tname[64];
            size_t k = args[first_test].u.s.n < sizeof tname - 1 ? args[first_test].u.s.n
                                                                 : sizeof tname - 1;
            memcpy(tname, args[first_test].u.s.p, k);
            tname[k] = '\0';
            if (ig__jtest(c, at, tname, item, args + first_test + 1, n_args - first_test - 1, &r))
                return -1;
        } else {
            r = ig__jv_truthy(item);
        }
        if (r == keep && ig__jlist_push(c, res, l->items[i])) return -1;
    }
    *out = ig__jv_list(res);
    return 0;
}

static int sort_cmp(ig__jctx *c, const ig__jnode *at, ig__jv a, ig__jv b, bool ci, int *r) {
    if (ci && a.type == IG_JV_STR && b.type == IG_JV_STR) {
        if (do_case(c, a, 1, &a) || do_case(c, b, 1, &b)) return -1;
    }
    ig__jv lt;
    if (ig__jbinop(c, at, IG_JOP_LT, a, b, &lt)) return -1;
    if (lt.u.b) {
        *r = -1;
        return 0;
    }
    if (ig__jbinop(c, at, IG_JOP_LT, b, a, &lt)) return -1;
    *r = lt.u.b ? 1 : 0;
    return 0;
}

int ig__jfilter(ig__jctx *c, const ig__jnode *at, const char *name, ig__jv v, ig__jv *args,
                size_t n_args, const char **kw_names, ig__jv *kw_vals, size_t n_kw, ig__jv *out) {
    ig__jv s;
    if (!strcmp(name, "safe")) {
        *out = v;
        return 0;
    }
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        ig__jv *dflt = ARG(0, "default_value"), *boolean = ARG(1, "boolean");
        bool use =
            v.type == IG_JV_UNDEF || (boolean && ig__jv_truthy(*boolean) && !ig__jv_truthy(v));
        *out = use ? (dflt ? *dflt : ig__jv_str("", 0)) : v;
        return 0;
    }
    if (!strcmp(name, "trim")) {
        ig__jv *chars = ARG(0, "chars");
        if (str_of(c, v, &s)) return -1;
        if (chars && chars->type == IG_JV_NONE) chars = NULL;
        if (chars && need_str(c, at, *chars, "trim")) return -1;
        *out = do_strip(s, chars, true, true);
        return 0;
    }
    if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "capitalize") ||
        !strcmp(name, "title")) {
        if (str_of(c, v, &s)) return -1;
        int mode = name[0] == 'u' ? 0 : name[0] == 'l' ? 1 : name[0] == 'c' ? 2 : 4;
        return do_case(c, s, mode, out);
    }
    if (!strcmp(name, "string")) return str_of(c, v, out);
    if (!strcmp(name, "e") || !strcmp(name, "escape") || !strcmp(name, "forceescape")) {
        if (str_of(c, v, &s)) return -1;
        return html_escape(c, s, out);
    }
    if (!strcmp(name, "length") || !strcmp(name, "count")) {
        switch (v.type) {
        case IG_JV_UNDEF:
            *out = ig__jv_int(0);
            return 0;
        case IG_JV_STR:
            *out = ig__jv_int((int64_t)ig__jutf8_count(v.u.s.p, v.u.s.n));
            return 0;
        case IG_JV_LIST:
            *out = ig__jv_int((int64_t)v.u.l->n);
            return 0;
        case IG_JV_DICT:
            *out = ig__jv_int((int64_t)v.u.d->n);
            return 0;
        default:
            return ig__jfail(c, at, IG_EINVAL, "object of type '%s' has no len()",
                             ig__jv_type_name(v));
        }
    }
    if (!strcmp(name, "first") || !strcmp(name, "last")) {
        ig__jlist *l;
        if (ig__jiterate(c, at, v, &l)) return -1;
        if (l->n == 0)
            *out = ig__jv_undef(name[0] == 'f' ? "No first item, sequence was empty."
                                               : "No last item, sequence was empty.");
        else
            *out = l->items[name[0] == 'f' ? 0 : l->n - 1];
        return 0;
    }
    if (!strcmp(name, "list")) {
        ig__jlist *l;
        if (ig__jiterate(c, at, v, &l)) return -1;
        if (v.type == IG_JV_LIST) { /* a copy, as list() makes */
            ig__jlist *copy = ig__jlist_new(c, l->n);
            if (!copy) return -1;
            if (l->n) memcpy(copy->items, l->items, l->n * sizeof *l->items);
            copy->n = l->n;
            l = copy;
        }
        *out = ig__jv_list(l);
        return 0;
    }
    if (!strcmp(name, "reverse")) {
        if (v.type == IG_JV_STR) {
            ig__jlist *chars;
            if (ig__jiterate(c, at, v, &chars)) return -1;
            char *buf = ig__ja_alloc(&c->arena, v.u.s.n + 1);
            if (!buf) return ig__jfail(c, at, IG_ENOMEM, "out of memory");
            size_t o = 0;
            for (size_t i = chars->n; i-- > 0;) {
                memcpy(buf + o, chars->items[i].u.s.p, chars->items[i].u.s.n);
                o += chars->items[i].u.s.n;
            }
            *out = ig__jv_str(buf, o);
            return 0;
        }
        ig__jlist *l, *r;
        if (ig__jiterate(c, at, v, &l) || !(r = ig__jlist_new(c, l->n))) return -1;
        for (size_t i = 0; i < l->n; i++) r->items[i] = l->items[l->n - 1 - i];
        r->n = l->n;
        *out = ig__jv_list(r);
        return 0;
    }
    if (!strcmp(name, "items")) {
        if (v.type == IG_JV_UNDEF) {
            ig__jlist *l = ig__jlist_new(c, 0);
            if (!l) return -1;
            *out = ig__jv_list(l);
            return 0;
        }
        if (v.type != IG_JV_DICT)
            return ig__jfail(c, at, IG_EINVAL, "items filter expects a mapping, got '%s'",
                             ig__jv_type_name(v));
        bool found;
        ig__jv method;
        if (ig__jmethod(c, v, "items", &method, &found)) return -1;
        return ig__jcall_builtin(c, at, method.u.fn, NULL, 0, NULL, NULL, 0, out);
    }
    if (!strcmp(name, "join")) {
        ig__jv *sep = ARG(0, "d"), *attr = ARG(1, "attribute");
        ig__jlist *l;
        if (ig__jiterate(c, at, v, &l)) return -1;
        ig__jv sepv = ig__jv_str("", 0);
        if (sep && str_of(c, *sep, &sepv)) return -1;
        ig__jbuf b = {0};
        for (size_t i = 0; i < l->n; i++) {
            ig__jv item = l->items[i];
            if (attr) {
                char an[128];
                if (attr->type != IG_JV_STR || attr->u.s.n >= sizeof an)
                    return ig__jfail(c, at, IG_EINVAL, "join: bad attribute");
                memcpy(an, attr->u.s.p, attr->u.s.n);
                an[attr->u.s.n] = '\0';
                if (ig__jgetattr(c, at, item, an, &item)) goto join_fail;
            }
            if ((i && ig__jbuf_put(c, &b, sepv.u.s.p, sepv.u.s.n)) ||
                ig__jv_write_str(c, &b, item, 0))
                goto join_fail;
        }
        return ig__jbuf_finish(c, &b, out);
    join_fail:
        free(b.p);
        return -1;
    }
    if (!strcmp(name, "tojson")) {
        ig__jv *ascii = ARG(0, "ensure_ascii"), *indent = ARG(1, "indent"),
               *seps = ARG(2, "separators"), *sortk = ARG(3, "sort_keys");
        if (ascii && ig__jv_truthy(*ascii))
            return ig__jfail(c, at, IG_EUNSUPPORTED, "tojson(ensure_ascii=True) is not supported");
        if (seps && seps->type != IG_JV_NONE)
            return ig__jfail(c, at, IG_EUNSUPPORTED, "tojson(separators=...) is not supported");
        int ind = -1;
        if (indent && indent->type != IG_JV_NONE) {
            if (indent->type != IG_JV_INT)
                return ig__jfail(c, at, IG_EUNSUPPORTED, "tojson: indent must be an integer");
            ind = indent->u.i < 0 ? 0 : indent->u.i > 64 ? 64 : (int)indent->u.i;
        }
        ig__jbuf b = {0};
        if (ig__jv_write_json(c, &b, v, ind, sortk && ig__jv_truthy(*sortk), 0)) {
            free(b.p);
            return -1;
        }
        return ig__jbuf_finish(c, &b, out);
    }
    if (!strcmp(name, "int")) {
        ig__jv *dflt = ARG(0, "default");
        int64_t d = int_or(dflt, 0);
        if (v.type == IG_JV_INT || v.type == IG_JV_BOOL)
            *out = ig__jv_int(int_or(&v, 0));
        else if (v.type == IG_JV_FLOAT)
            *out = isfinite(v.u.f) && fabs(v.u.f) < 9.2e18 ? ig__jv_int((int64_t)v.u.f)
                                                           : ig__jv_int(d);
        else if (v.type == IG_JV_STR) {
            char tmp[64];
            size_t k = 0;
            for (size_t i = 0; i < v.u.s.n && k < sizeof tmp - 1; i++)
                if (v.u.s.p[i] != '_') tmp[k++] = v.u.s.p[i];
            tmp[k] = '\0';
            char *end;
            long long x = strtoll(tmp, &end, 10);
            while (*end == ' ' || *end == '\t' || *end == '\n') end++;
            if (end != tmp && *end == '\0' && v.u.s.n < sizeof tmp)
                *out = ig__jv_int(x);
            else {
                double f = strtod(tmp, &end);
                while (*end == ' ' || *end == '\t' || *end == '\n') end++;
                *out = end != tmp && *end == '\0' && isfinite(f) && fabs(f) < 9.2e18
                           ? ig__jv_int((int64_t)f)
                           : ig__jv_int(d);
            }
        } else
            *out = ig__jv_int(d);
        return 0;
    }
    if (!strcmp(name, "float")) {
        ig__jv *dflt = ARG(0, "default");
        double d = dflt && dflt->type == IG_JV_FLOAT ? dflt->u.f : (double)int_or(dflt, 0);
        if (v.type == IG_JV_FLOAT)
            *out = v;
        else if (v.type == IG_JV_INT || v.type == IG_JV_BOOL)
            *out = ig__jv_float((double)int_or(&v, 0));
        else if (v.type == IG_JV_STR && v.u.s.n < 64) {
            char tmp[64], *end;
            memcpy(tmp, v.u.s.p, v.u.s.n);
            tmp[v.u.s.n] = '\0';
            double f = strtod(tmp, &end);
            *out = ig__jv_float(end != tmp && *end == '\0' ? f : d);
        } else
            *out = ig__jv_float(d);
        return 0;
    }
    if (!strcmp(name, "abs")) {
        if (v.type == IG_JV_INT && v.u.i != INT64_MIN)
            *out = ig__jv_int(v.u.i < 0 ? -v.u.i : v.u.i);
        else if (v.type == IG_JV_FLOAT)
            *out = ig__jv_float(fabs(v.u.f));
        else
            return ig__jfail(c, at, IG_EINVAL, "bad operand type for abs()");
        return 0;
    }
    if (!strcmp(name, "round")) {
        int64_t prec = int_or(ARG(0, "precision"), 0);
        ig__jv *method = ARG(1, "method");
        double f;
        if (v.type == IG_JV_FLOAT)
            f = v.u.f;
        else if (v.type == IG_JV_INT || v.type == IG_JV_BOOL)
            f = (double)int_or(&v, 0);
        else
            return ig__jfail(c, at, IG_EINVAL, "round expects a number");
        if (prec < -20 || prec > 20) return ig__jfail(c, at, IG_EINVAL, "round: bad precision");
        double scale = pow(10.0, (double)prec), x = f * scale, r;
        if (!method || (method->type == IG_JV_STR && method->u.s.n == 6 &&
                        !memcmp(method->u.s.p, "common", 6)))
            r = nearbyint(x); /* Python's round(): half to even */
        else if (method->type == IG_JV_STR && method->u.s.n == 4 &&
                 !memcmp(method->u.s.p, "ceil", 4))
            r = ceil(x);
        else if (method->type == IG_JV_STR && method->u.s.n == 5 &&
                 !memcmp(method->u.s.p, "floor", 5))
            r = floor(x);
        else
            return ig__jfail(c, at, IG_EINVAL, "round: method must be common, ceil or floor");
        *out = ig__jv_float(r / scale);
        return 0;
    }
    if (!strcmp(name, "replace")) {
        ig__jv *from = ARG(0, "old"), *to = ARG(1, "new");
        if (!from || !to) return ig__jfail(c, at, IG_EINVAL, "replace needs two arguments");
        ig__jv fs, ts;
        if (str_of(c, v, &s) || str_of(c, *from, &fs) || str_of(c, *to, &ts)) return -1;
        return do_replace(c, s, fs, ts, int_or(ARG(2, "count"), -1), out);
    }
    if (!strcmp(name, "indent")) {
        ig__jv *first = ARG(1, "first"), *blank = ARG(2, "blank");
        if (str_of(c, v, &s)) return -1;
        return do_indent(c, s, ARG(0, "width"), first && ig__jv_truthy(*first),
                         blank && ig__jv_truthy(*blank), out);
    }
    if (!strcmp(name, "selectattr") || !strcmp(name, "rejectattr"))
        return select_items(c, at, v, args, n_args, true, name[0] == 's', out);
    if (!strcmp(name, "select") || !strcmp(name, "reject"))
        return select_items(c, at, v, args, n_args, false, name[0] == 's', out);
    if (!strcmp(name, "map")) {
        ig__jlist *l, *res;
        if (ig__jiterate(c, at, v, &l) || !(res = ig__jlist_new(c, l->n))) return -1;
        ig__jv *attr = ARG(SIZE_MAX, "attribute"), *dflt = ARG(SIZE_MAX, "default");
        char fname[128];
        if (attr) {
            if (attr->type != IG_JV_STR || attr->u.s.n >= sizeof fname)
                return ig__jfail(c, at, IG_EINVAL, "map: bad attribute");
            memcpy(fname, attr->u.s.p, attr->u.s.n);
            fname[attr->u.s.n] = '\0';
        } else {
            if (n_args < 1 || args[0].type != IG_JV_STR || args[0].u.s.n >= sizeof fname)
                return ig__jfail(c, at, IG_EINVAL, "map needs a filter name or attribute=");
            memcpy(fname, args[0].u.s.p, args[0].u.s.n);
            fname[args[0].u.s.n] = '\0';
        }
        for (size_t i = 0; i < l->n; i++) {
            if (ig__jstep(c, at)) return -1;
            ig__jv r;
            if (attr) {
                if (ig__jgetattr(c, at, l->items[i], fname, &r)) return -1;
                if (r.type == IG_JV_UNDEF && dflt) r = *dflt;
            } else if (ig__jfilter(c, at, fname, l->items[i], args + 1, n_args - 1, NULL, NULL, 0,
                                   &r)) {
                return -1;
            }
            res->items[res->n++] = r;
        }
        *out = ig__jv_list(res);
        return 0;
    }
    if (!strcmp(name, "sort")) {
        ig__jv *rev = ARG(0, "reverse"), *cs = ARG(1, "case_sensitive"),
               *attr = ARG(2, "attribute");
        bool reverse = rev && ig__jv_truthy(*rev), ci = !(cs && ig__jv_truthy(*cs));
        ig__jlist *l, *res;
        if (ig__jiterate(c, at, v, &l) || !(res = ig__jlist_new(c, l->n))) return -1;
        ig__jv *keys = ig__ja_alloc(&c->arena, (l->n + 1) * sizeof *keys);
        if (!keys) return ig__jfail(c, at, IG_ENOMEM, "out of memory");
        char an[128] = "";
        if (attr) {
            if (attr->type != IG_JV_STR || attr->u.s.n >= sizeof an)
                return ig__jfail(c, at, IG_EINVAL, "sort: bad attribute");
            memcpy(an, attr->u.s.p, attr->u.s.n);
            an[attr->u.s.n] = '\0';
        }
        /* Insertion sort: stable, like Python's sort; lists here are short. */
        for (size_t i = 0; i < l->n; i++) {
            ig__jv key = l->items[i];
            if (attr && ig__jgetattr(c, at, key, an, &key)) return -1;
            size_t j = i;
            while (j > 0) {
                int r;
                if (ig__jstep(c, at) || sort_cmp(c, at, keys[j - 1], key, ci, &r)) return -1;
                if (reverse ? r >= 0 : r <= 0) break;
                keys[j] = keys[j - 1];
                res->items[j] = res->items[j - 1];
                j--;
            }
            keys[j] = key;
            res->items[j] = l->items[i];
        }
        res->n = l->n;
        *out = ig__jv_list(res);
        return 0;
    }
    if (!strcmp(name, "dictsort")) {
        ig__jv *cs = ARG(0, "case_sensitive"), *by = ARG(1, "by"), *rev = ARG(2, "reverse");
        bool ci = !(cs && ig__jv_truthy(*cs)), reverse = rev && ig__jv_truthy(*rev);
        int pos = 0;
        if (by) {
            if (by->type == IG_JV_STR && by->u.s.n == 5 && !memcmp(by->u.s.p, "value", 5))
                pos = 1;
            else if (!(by->type == IG_JV_STR && by->u.s.n == 3 && !memcmp(by->u.s.p, "key", 3)))
                return ig__jfail(c, at, IG_EINVAL, "dictsort: 'by' must be 'key' or 'value'");
        }
        if (v.type != IG_JV_DICT)
            return ig__jfail(c, at, IG_EINVAL, "dictsort expects a mapping, got '%s'",
                             ig__jv_type_name(v));
        bool found;
        ig__jv pairs;
        if (ig__jmethod(c, v, "items", &pairs, &found) ||
            ig__jcall_builtin(c, at, pairs.u.fn, NULL, 0, NULL, NULL, 0, &pairs))
            return -1;
        ig__jlist *l = pairs.u.l;
        /* Insertion sort on the chosen half of each pair: stable, like sorted(). */
        for (size_t i = 1; i < l->n; i++) {
            ig__jv item = l->items[i];
            size_t j = i;
            while (j > 0) {
                int r;
                if (ig__jstep(c, at) ||
                    sort_cmp(c, at, l->items[j - 1].u.l->items[pos], item.u.l->items[pos], ci, &r))
                    return -1;
                if (reverse ? r >= 0 : r <= 0) break;
                l->items[j] = l->items[j - 1];
                j--;
            }
            l->items[j] = item;
        }
        *out = pairs;
        return 0;
    }
    if (!strcmp(name, "sum")) {
        ig__jlist *l;
        if (ig__jiterate(c, at, v, &l)) return -1;
        ig__jv *attr = ARG(0, "attribute"), *start = ARG(1, "start");
        ig__jv acc = start ? *start : ig__jv_int(0);
        for (size_t i = 0; i < l->n; i++) {
            ig__jv item = l->items[i];
            if (attr) {
                char an[128];
                if (attr->type != IG_JV_STR || attr->u.s.n >= sizeof an)
                    return ig__jfail(c, at, IG_EINVAL, "sum: bad attribute");
                memcpy(an, attr->u.s.p, attr->u.s.n);
                an[attr->u.s.n] = '\0';
                if (ig__jgetattr(c, at, item, an, &item)) return -1;
            }
            if (ig__jbinop(c, at, IG_JOP_ADD, acc, item, &acc)) return -1;
        }
        *out = acc;
        return 0;
    }
    if (!strcmp(name, "min") || !strcmp(name, "max")) {
        ig__jlist *l;
        if (ig__jiterate(c, at, v, &l)) return -1;
        ig__jv *cs = ARG(0, "case_sensitive");
        bool ci = !(cs && ig__jv_truthy(*cs)), want_max = name[1] == 'a';
        if (l->n == 0) {
            *out = ig__jv_undef("No aggregated item, sequence was empty.");
            return 0;
        }
        ig__jv best = l->items[0];
        for (size_t i = 1; i < l->n; i++) {
            int r;
            if (sort_cmp(c, at, l->items[i], best, ci, &r)) return -1;
            if (want_max ? r > 0 : r < 0) best = l->items[i];
        }
        *out = best;
        return 0;
    }
    if (!strcmp(name, "unique")) {
        ig__jlist *l, *res;
        if (ig__jiterate(c, at, v, &l) || !(res = ig__jlist_new(c, 0))) return -1;
        for (size_t i = 0; i < l->n; i++) {
            bool seen = false;
            for (size_t j = 0; j < res->n && !seen; j++) {
                int r;
                if (ig__jstep(c, at)) return -1;
                if (l->items[i].type == IG_JV_STR && res->items[j].type == IG_JV_STR) {
                    if (sort_cmp(c, at, l->items[i], res->items[j], true, &r)) return -1;
                    seen = r == 0;
                } else {
                    seen = ig__jv_equal(l->items[i], res->items[j]);
                }
            }
            if (!seen && ig__jlist_push(c, res, l->items[i])) return -1;
        }
        *out = ig__jv_list(res);
        return 0;
    }
    if (!strcmp(name, "attr")) {
        ig__jv *a0 = ARG(0, "name");
        char an[128];
        if (!a0 || a0->type != IG_JV_STR || a0->u.s.n >= sizeof an)
            return ig__jfail(c, at, IG_EINVAL, "attr needs a name");
        memcpy(an, a0->u.s.p, a0->u.s.n);
        an[a0->u.s.n] = '\0';
        return ig__jgetattr(c, at, v, an, out);
    }
    if (!strcmp(name, "wordcount")) {
        ig__jv words;
        if (str_of(c, v, &s) || do_split(c, at, s, NULL, -1, &words)) return -1;
        *out = ig__jv_int((int64_t)words.u.l->n);
        return 0;
    }
    return ig__jfail(c, at, IG_EINVAL, "no filter named '%s'", name);
}
