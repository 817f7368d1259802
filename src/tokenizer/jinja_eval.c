/*
 * jinja_eval.c: renders a parsed template (see jinja.h).
 *
 * Scopes follow jinja2: a for loop's body gets a fresh scope on every
 * iteration (so `set` inside a loop is not seen by the next iteration nor
 * after the loop; use namespace() for that), `if` opens no scope, and a macro
 * call gets a scope whose parent is the scope the macro was defined in.
 * Frames live in the render arena, so a macro's closure stays valid; a loop
 * reuses one frame for all its iterations, emptied at the start of each.
 *
 * Undefined values behave like jinja2's default Undefined: falsy, printed as
 * "", iterated as empty, but an attribute, item, arithmetic or comparison on
 * one is an error naming what was undefined.
 *
 * Every statement, loop iteration and call counts one step against
 * limits->max_steps; evaluation depth (expressions, statements, macro calls)
 * is capped by limits->max_depth, so hostile templates end with an error.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/jinja.h"

struct ig__jframe {
    ig__jframe *parent;
    size_t n, cap;
    const char **names;
    ig__jv *vals;
};

int ig__jfail(ig__jctx *c, const ig__jnode *n, ig_status code, const char *fmt, ...) {
    if (c->status) return -1;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->status = code;
    if (n)
        ig_errorf(c->err, code, "chat template line %u, column %u: %s", n->line, n->col, msg);
    else
        ig_errorf(c->err, code, "chat template: %s", msg);
    return -1;
}

int ig__jstep(ig__jctx *c, const ig__jnode *at) {
    if (++c->n_steps > c->limits->max_steps)
        return ig__jfail(c, at, IG_ERANGE, "template ran more than %llu steps",
                         (unsigned long long)c->limits->max_steps);
    return 0;
}

static ig__jframe *frame_new(ig__jctx *c, ig__jframe *parent) {
    ig__jframe *f = ig__ja_alloc(&c->arena, sizeof *f);
    if (!f) {
        ig__jfail(c, NULL, IG_ENOMEM, "template used more than %zu bytes of memory",
                  c->limits->max_memory);
        return NULL;
    }
    f->parent = parent;
    return f;
}

static int frame_set(ig__jctx *c, ig__jframe *f, const char *name, ig__jv v) {
    for (size_t i = 0; i < f->n; i++) {
        if (!strcmp(f->names[i], name)) {
            f->vals[i] = v;
            return 0;
        }
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        const char **names = ig__ja_alloc(&c->arena, cap * sizeof *names);
        ig__jv *vals = ig__ja_alloc(&c->arena, cap * sizeof *vals);
        if (!names || !vals)
            return ig__jfail(c, NULL, IG_ENOMEM, "template used more than %zu bytes of memory",
                             c->limits->max_memory);
        if (f->n) {
            memcpy(names, f->names, f->n * sizeof *names);
            memcpy(vals, f->vals, f->n * sizeof *vals);
        }
        f->names = names;
        f->vals = vals;
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n] = v;
    f->n++;
    return 0;
}

static ig__jv *lookup(ig__jframe *f, const char *name) {
    for (; f; f = f->parent)
        for (size_t i = f->n; i-- > 0;)
            if (!strcmp(f->names[i], name)) return &f->vals[i];
    return NULL;
}

int ig__jctx_set_global(ig__jctx *c, const char *name, ig__jv v) {
    if (!c->globals) {
        c->globals = frame_new(c, NULL);
        if (!c->globals) return -1;
        c->scope = c->globals;
    }
    return frame_set(c, c->globals, name, v);
}

int ig__jundef_fail(ig__jctx *c, const ig__jnode *at, ig__jv v) {
    return ig__jfail(c, at, IG_EINVAL, "%s",
                     v.u.undef_hint ? v.u.undef_hint : "value is undefined");
}

static const char *hintf(ig__jctx *c, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    size_t len = (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1;
    char *s = ig__ja_alloc(&c->arena, len + 1);
    if (s) memcpy(s, tmp, len);
    return s;
}

static int emit(ig__jctx *c, const char *p, size_t n) {
    ig__jbuf b = {c->out, c->out_len, c->out_cap};
    int rc = ig__jbuf_put(c, &b, p, n);
    c->out = b.p;
    c->out_len = b.n;
    c->out_cap = b.cap;
    return rc;
}

static int emit_value(ig__jctx *c, ig__jv v) {
    ig__jbuf b = {c->out, c->out_len, c->out_cap};
    int rc = ig__jv_write_str(c, &b, v, 0);
    c->out = b.p;
    c->out_len = b.n;
    c->out_cap = b.cap;
    return rc;
}

/* ---- expressions ---------------------------------------------------------------------- */

static int eval(ig__jctx *c, const ig__jnode *n, ig__jv *out);
static int exec_body(ig__jctx *c, ig__jnode *const *body, size_t n);

static int eval_args(ig__jctx *c, const ig__jnode *n, ig__jv **args, ig__jv **kw) {
    *args = *kw = NULL;
    if (n->n_items) {
        *args = ig__ja_alloc(&c->arena, n->n_items * sizeof **args);
        if (!*args) return ig__jfail(c, n, IG_ENOMEM, "out of memory");
        for (size_t i = 0; i < n->n_items; i++)
            if (eval(c, n->items[i], &(*args)[i])) return -1;
    }
    if (n->n_items2) {
        *kw = ig__ja_alloc(&c->arena, n->n_items2 * sizeof **kw);
        if (!*kw) return ig__jfail(c, n, IG_ENOMEM, "out of memory");
        for (size_t i = 0; i < n->n_items2; i++)
            if (eval(c, n->items2[i], &(*kw)[i])) return -1;
    }
    return 0;
}

static bool as_int(ig__jv v, int64_t *i) {
    if (v.type == IG_JV_INT)
        *i = v.u.i;
    else if (v.type == IG_JV_BOOL)
        *i = v.u.b;
    else
        return false;
    return true;
}

static bool as_num(ig__jv v, double *f) {
    if (v.type == IG_JV_FLOAT)
        *f = v.u.f;
    else if (v.type == IG_JV_INT)
        *f = (double)v.u.i;
    else if (v.type == IG_JV_BOOL)
        *f = v.u.b;
    else
        return false;
    return true;
}

static int type_error(ig__jctx *c, const ig__jnode *at, const char *op, ig__jv a, ig__jv b) {
    if (a.type == IG_JV_UNDEF) return ig__jundef_fail(c, at, a);
    if (b.type == IG_JV_UNDEF) return ig__jundef_fail(c, at, b);
    return ig__jfail(c, at, IG_EINVAL, "unsupported operand types for %s: '%s' and '%s'", op,
                     ig__jv_type_name(a), ig__jv_type_name(b));
}

static int concat_lists(ig__jctx *c, ig__jv a, ig__jv b, ig__jv *out) {
    ig__jlist *l = ig__jlist_new(c, a.u.l->n + b.u.l->n);
    if (!l) return -1;
    if (a.u.l->n) memcpy(l->items, a.u.l->items, a.u.l->n * sizeof *l->items);
    if (b.u.l->n) memcpy(l->items + a.u.l->n, b.u.l->items, b.u.l->n * sizeof *l->items);
    l->n = a.u.l->n + b.u.l->n;
    *out = ig__jv_list(l);
    out->is_tuple = a.is_tuple;
    return 0;
}

static int repeat(ig__jctx *c, const ig__jnode *at, ig__jv seq, int64_t k, ig__jv *out) {
    if (k < 0) k = 0;
    if (seq.type == IG_JV_STR) {
        if (seq.u.s.n && (uint64_t)k > c->limits->max_output_len / seq.u.s.n)
            return ig__jfail(c, at, IG_ERANGE, "string repetition too large");
        size_t total = seq.u.s.n * (size_t)k;
        char *s = ig__ja_alloc(&c->arena, total + 1);
        if (!s) return ig__jfail(c, at, IG_ENOMEM, "out of memory");
        for (int64_t i = 0; i < k; i++) memcpy(s + (size_t)i * seq.u.s.n, seq.u.s.p, seq.u.s.n);
        *out = ig__jv_str(s, total);
        return 0;
    }
    if (seq.u.l->n && (uint64_t)k > c->limits->max_steps / seq.u.l->n)
        return ig__jfail(c, at, IG_ERANGE, "list repetition too large");
    ig__jlist *l = ig__jlist_new(c, seq.u.l->n * (size_t)k);
    if (!l) return -1;
    for (int64_t i = 0; i < k; i++)
        for (size_t j = 0; j < seq.u.l->n; j++) l->items[l->n++] = seq.u.l->items[j];
    *out = ig__jv_list(l);
    out->is_tuple = seq.is_tuple;
    return 0;
}

static int compare_depth(ig__jctx *c, const ig__jnode *at, ig__jv a, ig__jv b, int *cmp, int depth);

static int compare(ig__jctx *c, const ig__jnode *at, ig__jv a, ig__jv b, int *cmp) {
    return compare_depth(c, at, a, b, cmp, 0);
}

static int compare_depth(ig__jctx *c, const ig__jnode *at, ig__jv a, ig__jv b, int *cmp,
                         int depth) {
    if (depth > 256) return ig__jfail(c, at, IG_ERANGE, "comparing values nested too deeply");
    double fa, fb;
    if (as_num(a, &fa) && as_num(b, &fb)) {
        int64_t ia = 0, ib = 0;
        if (as_int(a, &ia) && as_int(b, &ib))
            *cmp = ia < ib ? -1 : ia > ib;
        else
            *cmp = fa < fb ? -1 : fa > fb;
        return 0;
    }
    if (a.type == IG_JV_STR && b.type == IG_JV_STR) {
        size_t n = a.u.s.n < b.u.s.n ? a.u.s.n : b.u.s.n;
        int r = n ? memcmp(a.u.s.p, b.u.s.p, n) : 0;
        *cmp = r ? (r < 0 ? -1 : 1) : (a.u.s.n < b.u.s.n ? -1 : a.u.s.n > b.u.s.n);
        return 0;
    }
    if (a.type == IG_JV_LIST && b.type == IG_JV_LIST) {
        size_t n = a.u.l->n < b.u.l->n ? a.u.l->n : b.u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (ig__jv_equal(a.u.l->items[i], b.u.l->items[i])) continue;
            return compare_depth(c, at, a.u.l->items[i], b.u.l->items[i], cmp, depth + 1);
        }
        *cmp = a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n;
        return 0;
    }
    return type_error(c, at, "comparison", a, b);
}

static int contains(ig__jctx *c, const ig__jnode *at, ig__jv needle, ig__jv hay, bool *out) {
    switch (hay.type) {
    case IG_JV_STR:
        if (needle.type != IG_JV_STR)
            return ig__jfail(c, at, IG_EINVAL,
                             "'in <string>' requires string as left operand, not %s",
                             ig__jv_type_name(needle));
        *out = needle.u.s.n == 0 || memmem(hay.u.s.p, hay.u.s.n, needle.u.s.p, needle.u.s.n);
        return 0;
    case IG_JV_LIST:
        *out = false;
        for (size_t i = 0; i < hay.u.l->n && !*out; i++)
            *out = ig__jv_equal(needle, hay.u.l->items[i]);
        return 0;
    case IG_JV_DICT:
    case IG_JV_NS:
        *out = ig__jdict_get(hay.u.d, needle) != NULL;
        return 0;
    case IG_JV_UNDEF:
        *out = false;
        return 0;
    default:
        return ig__jfail(c, at, IG_EINVAL, "argument of type '%s' is not iterable",
                         ig__jv_type_name(hay));
    }
}

int ig__jbinop(ig__jctx *c, const ig__jnode *at, int op, ig__jv a, ig__jv b, ig__jv *out) {
    int64_t ia = 0, ib = 0;
    double fa = 0, fb = 0;
    bool ints = as_int(a, &ia) && as_int(b, &ib);
    bool nums = as_num(a, &fa) && as_num(b, &fb);
    switch (op) {
    case IG_JOP_ADD:
        if (ints) {
            int64_t r;
            if (__builtin_add_overflow(ia, ib, &r))
                return ig__jfail(c, at, IG_ERANGE, "integer overflow");
            *out = ig__jv_int(r);
        } else if (nums) {
            *out = ig__jv_float(fa + fb);
        } else if (a.type == IG_JV_STR && b.type == IG_JV_STR) {
            size_t n = a.u.s.n + b.u.s.n;
            char *s = ig__ja_alloc(&c->arena, n + 1);
            if (!s)
                return ig__jfail(c, at, IG_ENOMEM, "template used more than %zu bytes of memory",
                                 c->limits->max_memory);
            memcpy(s, a.u.s.p, a.u.s.n);
            memcpy(s + a.u.s.n, b.u.s.p, b.u.s.n);
            *out = ig__jv_str(s, n);
        } else if (a.type == IG_JV_LIST && b.type == IG_JV_LIST) {
            return concat_lists(c, a, b, out);
        } else {
            return type_error(c, at, "+", a, b);
        }
        return 0;
    case IG_JOP_SUB:
        if (ints) {
            int64_t r;
            if (__builtin_sub_overflow(ia, ib, &r))
                return ig__jfail(c, at, IG_ERANGE, "integer overflow");
            *out = ig__jv_int(r);
        } else if (nums) {
            *out = ig__jv_float(fa - fb);
        } else {
            return type_error(c, at, "-", a, b);
        }
        return 0;
    case IG_JOP_MUL:
        if (ints) {
            int64_t r;
            if (__builtin_mul_overflow(ia, ib, &r))
                return ig__jfail(c, at, IG_ERANGE, "integer overflow");
            *out = ig__jv_int(r);
        } else if (nums) {
            *out = ig__jv_float(fa * fb);
        } else if ((a.type == IG_JV_STR || a.type == IG_JV_LIST) && as_int(b, &ib)) {
            return repeat(c, at, a, ib, out);
        } else if ((b.type == IG_JV_STR || b.type == IG_JV_LIST) && as_int(a, &ia)) {
            return repeat(c, at, b, ia, out);
        } else {
            return type_error(c, at, "*", a, b);
        }
        return 0;
    case IG_JOP_DIV:
        if (!nums) return type_error(c, at, "/", a, b);
        if (fb == 0) return ig__jfail(c, at, IG_EINVAL, "division by zero");
        *out = ig__jv_float(fa / fb);
        return 0;
    case IG_JOP_FLOORDIV:
    case IG_JOP_MOD:
        if (!nums) {
            if (op == IG_JOP_MOD && a.type == IG_JV_STR) return ig__jstr_percent(c, at, a, b, out);
            return type_error(c, at, op == IG_JOP_MOD ? "%" : "//", a, b);
        }
        if (fb == 0) return ig__jfail(c, at, IG_EINVAL, "integer division or modulo by zero");
        if (ints) {
            if (ia == INT64_MIN && ib == -1) return ig__jfail(c, at, IG_ERANGE, "integer overflow");
            int64_t q = ia / ib, r = ia % ib;
            if (r != 0 && ((r < 0) != (ib < 0))) {
                q -= 1;
                r += ib;
            }
            *out = ig__jv_int(op == IG_JOP_MOD ? r : q);
        } else {
            double r = fmod(fa, fb);
            if (r != 0 && ((r < 0) != (fb < 0))) r += fb;
            *out = ig__jv_float(op == IG_JOP_MOD ? r : floor(fa / fb));
        }
        return 0;
    case IG_JOP_POW:
        if (!nums) return type_error(c, at, "**", a, b);
        if (ints && ib >= 0) {
            int64_t r = 1, base = ia;
            for (int64_t e = ib; e > 0; e >>= 1) {
                if ((e & 1) && __builtin_mul_overflow(r, base, &r))
                    return ig__jfail(c, at, IG_ERANGE, "integer overflow");
                if (e > 1 && __builtin_mul_overflow(base, base, &base))
                    return ig__jfail(c, at, IG_ERANGE, "integer overflow");
            }
            *out = ig__jv_int(r);
        } else {
            *out = ig__jv_float(pow(fa, fb));
        }
        return 0;
    case IG_JOP_CONCAT: {
        ig__jbuf buf = {0};
        if (ig__jv_write_str(c, &buf, a, 0) || ig__jv_write_str(c, &buf, b, 0)) {
            free(buf.p);
            return -1;
        }
        return ig__jbuf_finish(c, &buf, out);
    }
    case IG_JOP_EQ:
        *out = ig__jv_bool(ig__jv_equal(a, b));
        return 0;
    case IG_JOP_NE:
        *out = ig__jv_bool(!ig__jv_equal(a, b));
        return 0;
    case IG_JOP_LT:
    case IG_JOP_GT:
    case IG_JOP_LE:
    case IG_JOP_GE: {
        int cmp;
        if (compare(c, at, a, b, &cmp)) return -1;
        bool r = op == IG_JOP_LT   ? cmp < 0
                 : op == IG_JOP_GT ? cmp > 0
                 : op == IG_JOP_LE ? cmp <= 0
                                   : cmp >= 0;
        *out = ig__jv_bool(r);
        return 0;
    }
    case IG_JOP_IN:
    case IG_JOP_NOTIN: {
        bool r = false;
        if (contains(c, at, a, b, &r)) return -1;
        *out = ig__jv_bool(op == IG_JOP_IN ? r : !r);
        return 0;
    }
    }
    return ig__jfail(c, at, IG_EINTERNAL, "unknown operator");
}

static int loop_attr(ig__jctx *c, const ig__jloop *l, const char *name, ig__jv *out, bool *found) {
    *found = true;
    if (!strcmp(name, "index"))
        *out = ig__jv_int(l->index0 + 1);
    else if (!strcmp(name, "index0"))
        *out = ig__jv_int(l->index0);
    else if (!strcmp(name, "revindex"))
        *out = ig__jv_int(l->length - l->index0);
    else if (!strcmp(name, "revindex0"))
        *out = ig__jv_int(l->length - l->index0 - 1);
    else if (!strcmp(name, "first"))
        *out = ig__jv_bool(l->index0 == 0);
    else if (!strcmp(name, "last"))
        *out = ig__jv_bool(l->index0 == l->length - 1);
    else if (!strcmp(name, "length"))
        *out = ig__jv_int(l->length);
    else if (!strcmp(name, "depth"))
        *out = ig__jv_int(l->depth);
    else if (!strcmp(name, "depth0"))
        *out = ig__jv_int(l->depth - 1);
    else if (!strcmp(name, "previtem"))
        *out = l->has_prev ? l->prev : ig__jv_undef("there is no previous item");
    else if (!strcmp(name, "nextitem"))
        *out = l->has_next ? l->next : ig__jv_undef("there is no next item");
    else if (!strcmp(name, "cycle")) {
        ig__jfunc *fn = ig__ja_alloc(&c->arena, sizeof *fn);
        if (!fn) return ig__jfail(c, NULL, IG_ENOMEM, "out of memory");
        fn->builtin = IG_JB_CYCLE;
        fn->name = "loop.cycle";
        fn->self.type = IG_JV_LOOP;
        fn->self.u.loop = (ig__jloop *)l;
        out->type = IG_JV_FUNC;
        out->u.fn = fn;
    } else
        *found = false;
    return 0;
}

int ig__jgetattr(ig__jctx *c, const ig__jnode *at, ig__jv obj, const char *name, ig__jv *out) {
    bool found = false;
    switch (obj.type) {
    case IG_JV_UNDEF:
        return ig__jundef_fail(c, at, obj);
    case IG_JV_DICT:
    case IG_JV_STR:
    case IG_JV_LIST:
        if (ig__jmethod(c, obj, name, out, &found)) return -1;
        if (found) return 0;
        if (obj.type == IG_JV_DICT) {
            ig__jv *v = ig__jdict_get_str(obj.u.d, name, strlen(name));
            if (v) {
                *out = *v;
                return 0;
            }
        }
        break;
    case IG_JV_NS: {
        ig__jv *v = ig__jdict_get_str(obj.u.d, name, strlen(name));
        if (v) {
            *out = *v;
            return 0;
        }
        break;
    }
    case IG_JV_LOOP:
        if (loop_attr(c, obj.u.loop, name, out, &found)) return -1;
        if (found) return 0;
        break;
    default:
        break;
    }
    const char *tn = obj.type == IG_JV_NONE ? "None" : ig__jv_type_name(obj);
    *out = ig__jv_undef(hintf(c, "'%s object' has no attribute '%s'", tn, name));
    return 0;
}

/* Python's slice.indices(): clamp start/stop for a sequence of length n. */
static void slice_indices(int64_t n, ig__jv vs, ig__jv ve, int64_t step, int64_t *start,
                          int64_t *stop) {
    int64_t lo = step < 0 ? -1 : 0, hi = step < 0 ? n - 1 : n;
    int64_t s, e;
    if (vs.type == IG_JV_NONE || vs.type == IG_JV_UNDEF)
        s = step < 0 ? hi : lo;
    else {
        s = vs.type == IG_JV_BOOL ? vs.u.b : vs.u.i;
        if (s < 0)
            s = s + n < lo ? lo : s + n;
        else if (s > hi)
            s = hi;
    }
    if (ve.type == IG_JV_NONE || ve.type == IG_JV_UNDEF)
        e = step < 0 ? lo : hi;
    else {
        e = ve.type == IG_JV_BOOL ? ve.u.b : ve.u.i;
        if (e < 0)
            e = e + n < lo ? lo : e + n;
        else if (e > hi)
            e = hi;
    }
    *start = s;
    *stop = e;
}

static int eval_slice(ig__jctx *c, const ig__jnode *n, ig__jv obj, ig__jv *out) {
    ig__jv parts[3] = {ig__jv_none(), ig__jv_none(), ig__jv_none()};
    for (int i = 0; i < 3; i++) {
        if (n->items[i] && eval(c, n->items[i], &parts[i])) return -1;
        if (parts[i].type != IG_JV_NONE && parts[i].type != IG_JV_INT &&
            parts[i].type != IG_JV_BOOL)
            return ig__jfail(c, n, IG_EINVAL, "slice indices must be integers or None");
    }
    int64_t step = parts[2].type == IG_JV_NONE ? 1 : parts[2].u.i;
    if (step == 0) return ig__jfail(c, n, IG_EINVAL, "slice step cannot be zero");
    if (obj.type == IG_JV_UNDEF) return ig__jundef_fail(c, n, obj);
    if (obj.type == IG_JV_LIST) {
        int64_t len = (int64_t)obj.u.l->n, s, e;
        slice_indices(len, parts[0], parts[1], step, &s, &e);
        ig__jlist *l = ig__jlist_new(c, 0);
        if (!l) return -1;
        for (int64_t i = s; step > 0 ? i < e : i > e; i += step)
            if (ig__jlist_push(c, l, obj.u.l->items[i])) return -1;
        *out = ig__jv_list(l);
        out->is_tuple = obj.is_tuple;
        return 0;
    }
    if (obj.type == IG_JV_STR) {
        /* Index by character: offsets of each character first. */
        size_t nch = ig__jutf8_count(obj.u.s.p, obj.u.s.n);
        size_t *offs = ig__ja_alloc(&c->arena, (nch + 1) * sizeof *offs);
        char *buf = ig__ja_alloc(&c->arena, obj.u.s.n + 1);
        if (!offs || !buf) return ig__jfail(c, n, IG_ENOMEM, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < obj.u.s.n;) {
            int32_t cp;
            offs[k++] = i;
            i += ig__jutf8_decode(obj.u.s.p + i, obj.u.s.n - i, &cp);
        }
        offs[k] = obj.u.s.n;
        int64_t s, e;
        slice_indices((int64_t)nch, parts[0], parts[1], step, &s, &e);
        size_t o = 0;
        for (int64_t i = s; step > 0 ? i < e : i > e; i += step) {
            size_t len = offs[i + 1] - offs[i];
            memcpy(buf + o, obj.u.s.p + offs[i], len);
            o += len;
        }
        *out = ig__jv_str(buf, o);
        return 0;
    }
    return ig__jfail(c, n, IG_EINVAL, "'%s' object is not subscriptable", ig__jv_type_name(obj));
}

int ig__jgetitem(ig__jctx *c, const ig__jnode *at, ig__jv obj, ig__jv key, ig__jv *out) {
    int64_t i;
    switch (obj.type) {
    case IG_JV_UNDEF:
        return ig__jundef_fail(c, at, obj);
    case IG_JV_DICT:
    case IG_JV_NS: {
        ig__jv *v = ig__jdict_get(obj.u.d, key);
        if (v) {
            *out = *v;
            return 0;
        }
        if (key.type == IG_JV_STR && obj.type == IG_JV_DICT) {
            /* jinja2 falls back to attributes: x['items'] is the method. */
            bool found = false;
            char name[64];
            if (key.u.s.n < sizeof name) {
                memcpy(name, key.u.s.p, key.u.s.n);
                name[key.u.s.n] = '\0';
                if (ig__jmethod(c, obj, name, out, &found)) return -1;
                if (found) return 0;
            }
        }
        break;
    }
    case IG_JV_LIST:
        if (as_int(key, &i)) {
            int64_t len = (int64_t)obj.u.l->n;
            if (i < 0) i += len;
            if (i >= 0 && i < len) {
                *out = obj.u.l->items[i];
                return 0;
            }
            *out = ig__jv_undef(hintf(c, "%s object has no element %lld", ig__jv_type_name(obj),
                                      (long long)(key.type == IG_JV_INT ? key.u.i : key.u.b)));
            return 0;
        }
        break;
    case IG_JV_STR:
        if (as_int(key, &i)) {
            int64_t len = (int64_t)ig__jutf8_count(obj.u.s.p, obj.u.s.n);
            if (i < 0) i += len;
            if (i >= 0 && i < len) {
                size_t off = ig__jutf8_offset(obj.u.s.p, obj.u.s.n, i);
                int32_t cp;
                size_t k = ig__jutf8_decode(obj.u.s.p + off, obj.u.s.n - off, &cp);
                *out = ig__jv_str(obj.u.s.p + off, k);
                return 0;
            }
            *out = ig__jv_undef("string index out of range");
            return 0;
        }
        break;
    case IG_JV_LOOP:
        if (key.type == IG_JV_STR && key.u.s.n < 32) {
            char name[32];
            memcpy(name, key.u.s.p, key.u.s.n);
            name[key.u.s.n] = '\0';
            bool found;
            if (loop_attr(c, obj.u.loop, name, out, &found)) return -1;
            if (found) return 0;
        }
        break;
    default:
        break;
    }
    if (key.type == IG_JV_STR)
        *out = ig__jv_undef(hintf(c, "'%s object' has no attribute '%.*s'", ig__jv_type_name(obj),
                                  (int)(key.u.s.n > 64 ? 64 : key.u.s.n), key.u.s.p));
    else
        *out = ig__jv_undef(hintf(c, "'%s object' has no such item", ig__jv_type_name(obj)));
    return 0;
}

int ig__jiterate(ig__jctx *c, const ig__jnode *at, ig__jv v, ig__jlist **out) {
    switch (v.type) {
    case IG_JV_UNDEF:
        *out = ig__jlist_new(c, 0);
        return *out ? 0 : -1;
    case IG_JV_LIST:
        *out = v.u.l;
        return 0;
    case IG_JV_DICT: {
        ig__jlist *l = ig__jlist_new(c, v.u.d->n);
        if (!l) return -1;
        if (v.u.d->n) memcpy(l->items, v.u.d->keys, v.u.d->n * sizeof *l->items);
        l->n = v.u.d->n;
        *out = l;
        return 0;
    }
    case IG_JV_STR: {
        ig__jlist *l = ig__jlist_new(c, 0);
        if (!l) return -1;
        for (size_t i = 0; i < v.u.s.n;) {
            int32_t cp;
            size_t k = ig__jutf8_decode(v.u.s.p + i, v.u.s.n - i, &cp);
            if (ig__jlist_push(c, l, ig__jv_str(v.u.s.p + i, k))) return -1;
            i += k;
        }
        *out = l;
        return 0;
    }
    default:
        return ig__jfail(c, at, IG_EINVAL, "'%s' object is not iterable", ig__jv_type_name(v));
    }
}

static int call_macro(ig__jctx *c, const ig__jnode *at, const ig__jfunc *fn, ig__jv *args,
                      size_t n_args, const char **kw_names, ig__jv *kw_vals, size_t n_kw,
                      ig__jv *out) {
    const ig__jnode *m = fn->macro;
    if (n_args > m->n_names)
        return ig__jfail(c, at, IG_EINVAL, "macro '%s' takes %zu arguments, %zu given", m->name,
                         m->n_names, n_args);
    ig__jframe *f = frame_new(c, fn->closure);
    if (!f) return -1;
    for (size_t k = 0; k < n_kw; k++) {
        bool ok = false;
        for (size_t p = 0; p < m->n_names; p++) ok |= !strcmp(m->names[p], kw_names[k]);
        if (!ok)
            return ig__jfail(c, at, IG_EINVAL, "macro '%s' has no argument '%s'", m->name,
                             kw_names[k]);
    }
    ig__jframe *saved_scope = c->scope;
    c->scope = f; /* defaults see earlier parameters */
    for (size_t p = 0; p < m->n_names; p++) {
        ig__jv v = ig__jv_undef(hintf(c, "'%s' is undefined", m->names[p]));
        bool set = false;
        if (p < n_args) {
            v = args[p];
            set = true;
        }
        for (size_t k = 0; k < n_kw; k++)
            if (!strcmp(m->names[p], kw_names[k])) {
                v = kw_vals[k];
                set = true;
            }
        if (!set && m->items2[p] && eval(c, m->items2[p], &v)) {
            c->scope = saved_scope;
            return -1;
        }
        if (frame_set(c, f, m->names[p], v)) {
            c->scope = saved_scope;
            return -1;
        }
    }
    char *saved_out = c->out;
    size_t saved_len = c->out_len, saved_cap = c->out_cap;
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    int rc = exec_body(c, m->items, m->n_items);
    ig__jbuf b = {c->out, c->out_len, c->out_cap};
    c->out = saved_out;
    c->out_len = saved_len;
    c->out_cap = saved_cap;
    c->scope = saved_scope;
    c->flow = 0;
    if (rc) {
        free(b.p);
        return -1;
    }
    return ig__jbuf_finish(c, &b, out);
}

int ig__jcall(ig__jctx *c, const ig__jnode *at, ig__jv fn, ig__jv *args, size_t n_args,
              const char **kw_names, ig__jv *kw_vals, size_t n_kw, ig__jv *out) {
    if (fn.type == IG_JV_UNDEF) return ig__jundef_fail(c, at, fn);
    if (fn.type != IG_JV_FUNC)
        return ig__jfail(c, at, IG_EINVAL, "'%s' object is not callable", ig__jv_type_name(fn));
    if (ig__jstep(c, at)) return -1;
    if (fn.u.fn->builtin < 0)
        return call_macro(c, at, fn.u.fn, args, n_args, kw_names, kw_vals, n_kw, out);
    return ig__jcall_builtin(c, at, fn.u.fn, args, n_args, kw_names, kw_vals, n_kw, out);
}

static int eval_inner(ig__jctx *c, const ig__jnode *n, ig__jv *out) {
    ig__jv a, b;
    switch ((ig__jkind)n->kind) {
    case IG_JE_LIT:
        *out = n->lit;
        return 0;
    case IG_JE_NAME: {
        ig__jv *v = lookup(c->scope, n->name);
        if (v)
            *out = *v;
        else if (!ig__jglobal_func(n->name, out))
            *out = ig__jv_undef(hintf(c, "'%s' is undefined", n->name));
        return 0;
    }
    case IG_JE_LIST: {
        ig__jlist *l = ig__jlist_new(c, n->n_items);
        if (!l) return -1;
        for (size_t i = 0; i < n->n_items; i++)
            if (eval(c, n->items[i], &l->items[i])) return -1;
        l->n = n->n_items;
        *out = ig__jv_list(l);
        out->is_tuple = n->op;
        return 0;
    }
    case IG_JE_DICT: {
        ig__jdict *d = ig__jdict_new(c, n->n_items);
        if (!d) return -1;
        for (size_t i = 0; i < n->n_items; i++) {
            if (eval(c, n->items[i], &a) || eval(c, n->items2[i], &b) || ig__jdict_set(c, d, a, b))
                return -1;
        }
        *out = ig__jv_dict(d);
        return 0;
    }
    case IG_JE_ATTR:
        if (eval(c, n->a, &a)) return -1;
        return ig__jgetattr(c, n, a, n->name, out);
    case IG_JE_INDEX:
        if (eval(c, n->a, &a) || eval(c, n->b, &b)) return -1;
        return ig__jgetitem(c, n, a, b, out);
    case IG_JE_SLICE:
        if (eval(c, n->a, &a)) return -1;
        return eval_slice(c, n, a, out);
    case IG_JE_CALL: {
        ig__jv *args, *kw;
        if (eval(c, n->a, &a) || eval_args(c, n, &args, &kw)) return -1;
        return ig__jcall(c, n, a, args, n->n_items, n->names, kw, n->n_items2, out);
    }
    case IG_JE_FILTER: {
        ig__jv *args, *kw;
        if (!n->a) return ig__jfail(c, n, IG_EINTERNAL, "filter without operand");
        if (eval(c, n->a, &a) || eval_args(c, n, &args, &kw)) return -1;
        return ig__jfilter(c, n, n->name, a, args, n->n_items, n->names, kw, n->n_items2, out);
    }
    case IG_JE_TEST: {
        ig__jv *args, *kw;
        bool r;
        if (eval(c, n->a, &a) || eval_args(c, n, &args, &kw)) return -1;
        if (ig__jtest(c, n, n->name, a, args, n->n_items, &r)) return -1;
        *out = ig__jv_bool(n->op ? !r : r);
        return 0;
    }
    case IG_JE_BINOP:
        if (eval(c, n->a, &a) || eval(c, n->b, &b)) return -1;
        return ig__jbinop(c, n, n->op, a, b, out);
    case IG_JE_AND:
        if (eval(c, n->a, &a)) return -1;
        if (!ig__jv_truthy(a)) {
            *out = a;
            return 0;
        }
        return eval(c, n->b, out);
    case IG_JE_OR:
        if (eval(c, n->a, &a)) return -1;
        if (ig__jv_truthy(a)) {
            *out = a;
            return 0;
        }
        return eval(c, n->b, out);
    case IG_JE_NOT:
        if (eval(c, n->a, &a)) return -1;
        *out = ig__jv_bool(!ig__jv_truthy(a));
        return 0;
    case IG_JE_NEG:
    case IG_JE_POS:
        if (eval(c, n->a, &a)) return -1;
        if (a.type == IG_JV_INT || a.type == IG_JV_BOOL) {
            int64_t i = a.type == IG_JV_BOOL ? a.u.b : a.u.i;
            if (n->kind == IG_JE_NEG && i == INT64_MIN)
                return ig__jfail(c, n, IG_ERANGE, "integer overflow");
            *out = ig__jv_int(n->kind == IG_JE_NEG ? -i : i);
        } else if (a.type == IG_JV_FLOAT) {
            *out = ig__jv_float(n->kind == IG_JE_NEG ? -a.u.f : a.u.f);
        } else if (a.type == IG_JV_UNDEF) {
            return ig__jundef_fail(c, n, a);
        } else {
            return ig__jfail(c, n, IG_EINVAL, "bad operand type for unary %c: '%s'",
                             n->kind == IG_JE_NEG ? '-' : '+', ig__jv_type_name(a));
        }
        return 0;
    case IG_JE_COND:
        if (eval(c, n->a, &a)) return -1;
        if (ig__jv_truthy(a)) return eval(c, n->b, out);
        if (n->c) return eval(c, n->c, out);
        *out = ig__jv_undef("the conditional expression had no else branch");
        return 0;
    default:
        return ig__jfail(c, n, IG_EINTERNAL, "statement where an expression was expected");
    }
}

static int eval(ig__jctx *c, const ig__jnode *n, ig__jv *out) {
    if (++c->depth > c->limits->max_depth) {
        c->depth--;
        return ig__jfail(c, n, IG_ERANGE, "template nested or recursed more than %d levels",
                         c->limits->max_depth);
    }
    int rc = eval_inner(c, n, out);
    c->depth--;
    return rc;
}

/* ---- statements ----------------------------------------------------------------------- */

static int assign(ig__jctx *c, const ig__jnode *at, ig__jframe *f, const char **names, size_t n,
                  ig__jv v) {
    if (n == 1) return frame_set(c, f, names[0], v);
    ig__jlist *l;
    if (v.type == IG_JV_LIST)
        l = v.u.l;
    else if (ig__jiterate(c, at, v, &l))
        return -1;
    if (l->n != n)
        return ig__jfail(c, at, IG_EINVAL, "cannot unpack %zu values into %zu names", l->n, n);
    for (size_t i = 0; i < n; i++)
        if (frame_set(c, f, names[i], l->items[i])) return -1;
    return 0;
}

static int exec_for(ig__jctx *c, const ig__jnode *n) {
    ig__jv seq;
    ig__jlist *items;
    if (eval(c, n->a, &seq) || ig__jiterate(c, n, seq, &items)) return -1;
    ig__jframe *outer = c->scope;
    if (n->c) { /* for x in y if cond: filter first, so loop.length counts what stays */
        ig__jlist *kept = ig__jlist_new(c, 0);
        if (!kept) return -1;
        ig__jframe *f = frame_new(c, outer);
        if (!f) return -1;
        for (size_t i = 0; i < items->n; i++) {
            ig__jv keep;
            f->n = 0;
            if (ig__jstep(c, n) || assign(c, n, f, n->names, n->n_names, items->items[i]))
                return -1;
            c->scope = f;
            int rc = eval(c, n->c, &keep);
            c->scope = outer;
            if (rc) return -1;
            if (ig__jv_truthy(keep) && ig__jlist_push(c, kept, items->items[i])) return -1;
        }
        items = kept;
    }
    ig__jloop *lp = ig__ja_alloc(&c->arena, sizeof *lp);
    if (!lp) return ig__jfail(c, n, IG_ENOMEM, "out of memory");
    lp->length = (int64_t)items->n;
    lp->depth = 1; /* only recursive loops (unsupported) go deeper in jinja2 */
    ig__jv loopv = {.type = IG_JV_LOOP};
    loopv.u.loop = lp;
    ig__jframe *f = frame_new(c, outer);
    if (!f) return -1;
    for (size_t i = 0; i < items->n; i++) {
        if (ig__jstep(c, n)) return -1;
        lp->index0 = (int64_t)i;
        lp->has_prev = i > 0;
        lp->prev = i > 0 ? items->items[i - 1] : ig__jv_undef(NULL);
        lp->has_next = i + 1 < items->n;
        lp->next = i + 1 < items->n ? items->items[i + 1] : ig__jv_undef(NULL);
        f->n = 0; /* a fresh scope per iteration, reusing the storage */
        if (frame_set(c, f, "loop", loopv) ||
            assign(c, n, f, n->names, n->n_names, items->items[i]))
            return -1;
        c->scope = f;
        int rc = exec_body(c, n->items, n->n_items);
        c->scope = outer;
        if (rc) return -1;
        int flow = c->flow;
        c->flow = 0;
        if (flow == IG_JS_BREAK) break;
    }
    if (items->n == 0 && n->n_items2) return exec_body(c, n->items2, n->n_items2);
    return 0;
}

static int capture(ig__jctx *c, ig__jnode *const *body, size_t n, ig__jv *out) {
    char *saved_out = c->out;
    size_t saved_len = c->out_len, saved_cap = c->out_cap;
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    int rc = exec_body(c, body, n);
    ig__jbuf b = {c->out, c->out_len, c->out_cap};
    c->out = saved_out;
    c->out_len = saved_len;
    c->out_cap = saved_cap;
    if (rc) {
        free(b.p);
        return -1;
    }
    return ig__jbuf_finish(c, &b, out);
}

/* Apply a filter chain whose innermost operand is NULL (the captured text). */
static int apply_filters(ig__jctx *c, const ig__jnode *f, ig__jv v, ig__jv *out) {
    if (!f) {
        *out = v;
        return 0;
    }
    if (++c->depth > c->limits->max_depth) {
        c->depth--;
        return ig__jfail(c, f, IG_ERANGE, "more than %d filters in a chain", c->limits->max_depth);
    }
    ig__jv inner, *args, *kw;
    int rc = apply_filters(c, f->a, v, &inner) || eval_args(c, f, &args, &kw) ||
             ig__jfilter(c, f, f->name, inner, args, f->n_items, f->names, kw, f->n_items2, out);
    c->depth--;
    return rc ? -1 : 0;
}

static int exec_stmt(ig__jctx *c, const ig__jnode *n) {
    ig__jv v;
    if (ig__jstep(c, n)) return -1;
    switch ((ig__jkind)n->kind) {
    case IG_JS_DATA:
        return emit(c, n->lit.u.s.p, n->lit.u.s.n);
    case IG_JS_OUTPUT:
        if (eval(c, n->a, &v)) return -1;
        return emit_value(c, v);
    case IG_JS_IF:
        if (eval(c, n->a, &v)) return -1;
        if (ig__jv_truthy(v)) return exec_body(c, n->items, n->n_items);
        return exec_body(c, n->items2, n->n_items2);
    case IG_JS_FOR:
        return exec_for(c, n);
    case IG_JS_SET:
        if (eval(c, n->a, &v)) return -1;
        if (n->b) {
            ig__jv obj;
            if (eval(c, n->b, &obj)) return -1;
            if (obj.type != IG_JV_NS)
                return ig__jfail(c, n, IG_EINVAL,
                                 "cannot assign attribute on a non-namespace object");
            ig__jv key;
            if (ig__jv_strdup(c, n->name, strlen(n->name), &key)) return -1;
            return ig__jdict_set(c, obj.u.d, key, v);
        }
        return assign(c, n, c->scope, n->names, n->n_names, v);
    case IG_JS_SETBLOCK:
        if (capture(c, n->items, n->n_items, &v) || apply_filters(c, n->c, v, &v)) return -1;
        return frame_set(c, c->scope, n->name, v);
    case IG_JS_SCOPE:
        if (!n->c) return exec_body(c, n->items, n->n_items);
        if (capture(c, n->items, n->n_items, &v) || apply_filters(c, n->c, v, &v)) return -1;
        return emit_value(c, v);
    case IG_JS_MACRO: {
        ig__jfunc *fn = ig__ja_alloc(&c->arena, sizeof *fn);
        if (!fn) return ig__jfail(c, n, IG_ENOMEM, "out of memory");
        fn->builtin = -1;
        fn->name = n->name;
        fn->macro = n;
        fn->closure = c->scope;
        ig__jv mv = {.type = IG_JV_FUNC};
        mv.u.fn = fn;
        return frame_set(c, c->scope, n->name, mv);
    }
    case IG_JS_BREAK:
    case IG_JS_CONTINUE:
        c->flow = n->kind;
        return 0;
    default:
        return ig__jfail(c, n, IG_EINTERNAL, "expression where a statement was expected");
    }
}

static int exec_body(ig__jctx *c, ig__jnode *const *body, size_t n) {
    if (++c->depth > c->limits->max_depth) {
        c->depth--;
        return ig__jfail(c, n ? body[0] : NULL, IG_ERANGE,
                         "template nested or recursed more than %d levels", c->limits->max_depth);
    }
    int rc = 0;
    for (size_t i = 0; i < n && !c->flow; i++) {
        if (exec_stmt(c, body[i])) {
            rc = -1;
            break;
        }
    }
    c->depth--;
    return rc;
}

int ig__jinja_render(ig__jctx *c, const ig__jprog *prog) {
    if (!c->globals && ig__jctx_set_global(c, "__unused__", ig__jv_none())) return -1;
    c->scope = c->globals;
    return exec_body(c, prog->body, prog->n_body);
}
