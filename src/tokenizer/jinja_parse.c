/*
 * jinja_parse.c: tokens -> syntax tree (ig__jnode), by recursive descent with
 * jinja2's operator precedence, loosest first:
 *
 *   a if c else b  <  or  <  and  <  not  <  comparisons (== != < > <= >= in,
 *   not in; chained)  <  + -  <  ~  <  * / // %  <  **  <  unary - +  <
 *   primary with postfix (.x [i] [a:b:c] (args)) then filters (| f), tests
 *   (is t) and calls, applied left to right.
 *
 * So `'a' + x | trim` is `'a' + (x | trim)`, as in jinja2. Nesting is capped
 * (IG_JP_MAX_DEPTH) so that a hostile template cannot exhaust the C stack.
 * The first error is kept with its line and column.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "tokenizer/jinja.h"

#define IG_JP_MAX_DEPTH 200

typedef struct parser {
    ig__jtok *t;
    size_t n, i;
    ig__jarena *arena;
    ig_error *err;
    ig_status status;
    int depth;
    int loop_depth;
} parser;

#define CUR(P) (&(P)->t[(P)->i])

static void *palloc(parser *P, size_t n) {
    void *p = ig__ja_alloc(P->arena, n);
    if (!p && !P->status)
        P->status = ig_errorf(P->err, IG_ENOMEM, "out of memory parsing the chat template");
    return p;
}

static void *perr(parser *P, const ig__jtok *t, const char *fmt, ...) {
    if (P->status) return NULL;
    char msg[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    P->status =
        ig_errorf(P->err, IG_EFORMAT, "chat template line %u, column %u: %s", t->line, t->col, msg);
    return NULL;
}

static const char *tok_desc(const ig__jtok *t) {
    switch (t->kind) {
    case IG_JT_EOF:
        return "end of template";
    case IG_JT_DATA:
        return "template text";
    case IG_JT_VAR_BEGIN:
        return "'{{'";
    case IG_JT_VAR_END:
        return "'}}'";
    case IG_JT_BLOCK_BEGIN:
        return "'{%'";
    case IG_JT_BLOCK_END:
        return "'%}'";
    case IG_JT_STRING:
        return "a string";
    case IG_JT_INT:
    case IG_JT_FLOAT:
        return "a number";
    default:
        return t->text;
    }
}

static bool is_op(const ig__jtok *t, const char *op) {
    return t->kind == IG_JT_OP && strcmp(t->text, op) == 0;
}
static bool is_name(const ig__jtok *t, const char *name) {
    return t->kind == IG_JT_NAME && strcmp(t->text, name) == 0;
}
static bool accept_op(parser *P, const char *op) {
    if (!is_op(CUR(P), op)) return false;
    P->i++;
    return true;
}
static bool accept_name(parser *P, const char *name) {
    if (!is_name(CUR(P), name)) return false;
    P->i++;
    return true;
}
static bool expect_op(parser *P, const char *op) {
    if (accept_op(P, op)) return true;
    perr(P, CUR(P), "expected '%s', got %s", op, tok_desc(CUR(P)));
    return false;
}
static bool expect_kind(parser *P, int kind, const char *what) {
    if (CUR(P)->kind == kind) {
        P->i++;
        return true;
    }
    perr(P, CUR(P), "expected %s, got %s", what, tok_desc(CUR(P)));
    return false;
}

static ig__jnode *node(parser *P, int kind, const ig__jtok *at) {
    ig__jnode *n = palloc(P, sizeof *n);
    if (!n) return NULL;
    n->kind = (uint8_t)kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/* A growable array of node pointers (or names) in the arena. */
typedef struct vec {
    void **p;
    size_t n, cap;
} vec;

static bool vpush(parser *P, vec *v, void *x) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        void **np = palloc(P, cap * sizeof *np);
        if (!np) return false;
        if (v->n) memcpy(np, v->p, v->n * sizeof *np);
        v->p = np;
        v->cap = cap;
    }
    v->p[v->n++] = x;
    return true;
}

static ig__jnode *parse_expr(parser *P);
static ig__jnode *parse_or(parser *P);
static ig__jnode *parse_unary(parser *P, bool with_filter);
static ig__jnode *parse_primary(parser *P);
static ig__jnode *parse_postfix(parser *P, ig__jnode *n);

static bool enter(parser *P) {
    if (++P->depth > IG_JP_MAX_DEPTH) {
        perr(P, CUR(P), "template nested more than %d levels deep", IG_JP_MAX_DEPTH);
        return false;
    }
    return true;
}

/* Call arguments after '(' up to ')': positional into items, keyword into names/items2. */
static bool parse_args(parser *P, ig__jnode *n) {
    vec args = {0}, kwv = {0}, kwn = {0};
    while (!is_op(CUR(P), ")")) {
        if (args.n + kwv.n > 0 && !expect_op(P, ",")) return false;
        if (is_op(CUR(P), ")")) break; /* trailing comma */
        if (is_op(CUR(P), "*") || is_op(CUR(P), "**")) {
            perr(P, CUR(P), "*args and **kwargs in calls are not supported");
            return false;
        }
        if (CUR(P)->kind == IG_JT_NAME && is_op(&P->t[P->i + 1], "=")) {
            const char *name = CUR(P)->text;
            P->i += 2;
            ig__jnode *v = parse_expr(P);
            if (!v || !vpush(P, &kwn, (void *)name) || !vpush(P, &kwv, v)) return false;
        } else {
            if (kwv.n) {
                perr(P, CUR(P), "positional argument after keyword argument");
                return false;
            }
            ig__jnode *v = parse_expr(P);
            if (!v || !vpush(P, &args, v)) return false;
        }
    }
    P->i++; /* ')' */
    n->items = (ig__jnode **)args.p;
    n->n_items = args.n;
    n->items2 = (ig__jnode **)kwv.p;
    n->n_items2 = kwv.n;
    n->names = (const char **)kwn.p;
    n->n_names = kwn.n;
    return true;
}

/* A dotted name after '|' or 'is' (jinja allows `a.b`; we keep it whole). */
static const char *parse_dotted(parser *P) {
    const ig__jtok *t = CUR(P);
    if (t->kind != IG_JT_NAME) return perr(P, t, "expected a name, got %s", tok_desc(t));
    P->i++;
    return t->text;
}

static ig__jnode *parse_filter(parser *P, ig__jnode *operand) {
    const ig__jtok *at = CUR(P);
    const char *name = parse_dotted(P);
    if (!name) return NULL;
    ig__jnode *n = node(P, IG_JE_FILTER, at);
    if (!n) return NULL;
    n->a = operand;
    n->name = name;
    if (accept_op(P, "(") && !parse_args(P, n)) return NULL;
    return n;
}

static ig__jnode *parse_test(parser *P, ig__jnode *operand) {
    const ig__jtok *at = CUR(P);
    bool negated = accept_name(P, "not");
    const char *name = parse_dotted(P);
    if (!name) return NULL;
    ig__jnode *n = node(P, IG_JE_TEST, at);
    if (!n) return NULL;
    n->a = operand;
    n->name = name;
    n->op = negated;
    const ig__jtok *t = CUR(P);
    if (accept_op(P, "(")) {
        if (!parse_args(P, n)) return NULL;
    } else if ((t->kind == IG_JT_NAME || t->kind == IG_JT_STRING || t->kind == IG_JT_INT ||
                t->kind == IG_JT_FLOAT || is_op(t, "(") || is_op(t, "[") || is_op(t, "{")) &&
               !is_name(t, "else") && !is_name(t, "or") && !is_name(t, "and")) {
        if (is_name(t, "is")) return perr(P, t, "you cannot chain multiple tests with 'is'");
        ig__jnode *arg = parse_primary(P);
        if (!arg) return NULL;
        arg = parse_postfix(P, arg);
        if (!arg) return NULL;
        n->items = palloc(P, sizeof *n->items);
        if (!n->items) return NULL;
        n->items[0] = arg;
        n->n_items = 1;
    }
    return n;
}

static ig__jnode *parse_call(parser *P, ig__jnode *callee, const ig__jtok *at) {
    ig__jnode *n = node(P, IG_JE_CALL, at);
    if (!n) return NULL;
    n->a = callee;
    if (!parse_args(P, n)) return NULL;
    return n;
}

static ig__jnode *parse_subscript(parser *P, ig__jnode *obj, const ig__jtok *at) {
    /* After '[': an index, or a slice a:b:c with any part omitted. */
    ig__jnode *parts[3] = {NULL, NULL, NULL};
    int k = 0;
    bool is_slice = false;
    for (;;) {
        if (is_op(CUR(P), ":")) {
            is_slice = true;
            if (++k > 2) return perr(P, CUR(P), "too many ':' in slice");
            P->i++;
            continue;
        }
        if (is_op(CUR(P), "]")) break;
        if (parts[k]) return perr(P, CUR(P), "expected ']' or ':', got %s", tok_desc(CUR(P)));
        parts[k] = parse_expr(P);
        if (!parts[k]) return NULL;
        if (!is_slice && is_op(CUR(P), ","))
            return perr(P, CUR(P), "tuple indexes are not supported");
    }
    P->i++; /* ']' */
    if (!is_slice) {
        if (!parts[0]) return perr(P, at, "empty subscript");
        ig__jnode *n = node(P, IG_JE_INDEX, at);
        if (!n) return NULL;
        n->a = obj;
        n->b = parts[0];
        return n;
    }
    ig__jnode *n = node(P, IG_JE_SLICE, at);
    if (!n) return NULL;
    n->a = obj;
    n->items = palloc(P, 3 * sizeof *n->items);
    if (!n->items) return NULL;
    memcpy(n->items, parts, sizeof parts);
    n->n_items = 3;
    return n;
}

static ig__jnode *parse_postfix(parser *P, ig__jnode *n) {
    while (n) {
        const ig__jtok *at = CUR(P);
        if (accept_op(P, ".")) {
            const ig__jtok *t = CUR(P);
            if (t->kind == IG_JT_NAME) {
                P->i++;
                ig__jnode *a = node(P, IG_JE_ATTR, at);
                if (!a) return NULL;
                a->a = n;
                a->name = t->text;
                n = a;
            } else if (t->kind == IG_JT_INT) {
                P->i++;
                ig__jnode *k = node(P, IG_JE_LIT, t);
                ig__jnode *a = node(P, IG_JE_INDEX, at);
                if (!k || !a) return NULL;
                k->lit = ig__jv_int(t->i);
                a->a = n;
                a->b = k;
                n = a;
            } else {
                return perr(P, t, "expected an attribute name after '.', got %s", tok_desc(t));
            }
        } else if (accept_op(P, "[")) {
            n = parse_subscript(P, n, at);
        } else if (accept_op(P, "(")) {
            n = parse_call(P, n, at);
        } else {
            break;
        }
    }
    return n;
}

static ig__jnode *parse_filter_expr(parser *P, ig__jnode *n) {
    while (n) {
        const ig__jtok *at = CUR(P);
        if (accept_op(P, "|"))
            n = parse_filter(P, n);
        else if (accept_name(P, "is"))
            n = parse_test(P, n);
        else if (accept_op(P, "("))
            n = parse_call(P, n, at);
        else
            break;
    }
    return n;
}

static ig__jnode *parse_list_literal(parser *P, const ig__jtok *at, const char *close, bool tuple) {
    ig__jnode *n = node(P, IG_JE_LIST, at);
    if (!n) return NULL;
    n->op = tuple;
    vec items = {0};
    while (!is_op(CUR(P), close)) {
        if (items.n && !expect_op(P, ",")) return NULL;
        if (is_op(CUR(P), close)) break;
        ig__jnode *e = parse_expr(P);
        if (!e || !vpush(P, &items, e)) return NULL;
    }
    P->i++;
    n->items = (ig__jnode **)items.p;
    n->n_items = items.n;
    return n;
}

static ig__jnode *parse_primary(parser *P) {
    if (!enter(P)) return NULL;
    const ig__jtok *t = CUR(P);
    ig__jnode *n = NULL;
    switch (t->kind) {
    case IG_JT_NAME:
        P->i++;
        n = node(P, IG_JE_LIT, t);
        if (!n) break;
        if (!strcmp(t->text, "true") || !strcmp(t->text, "True"))
            n->lit = ig__jv_bool(true);
        else if (!strcmp(t->text, "false") || !strcmp(t->text, "False"))
            n->lit = ig__jv_bool(false);
        else if (!strcmp(t->text, "none") || !strcmp(t->text, "None"))
            n->lit = ig__jv_none();
        else {
            n->kind = IG_JE_NAME;
            n->name = t->text;
        }
        break;
    case IG_JT_STRING: {
        /* Adjacent literals concatenate: "a" "b" is "ab". */
        size_t total = 0, j = P->i;
        while (P->t[j].kind == IG_JT_STRING) total += P->t[j++].len;
        char *s = palloc(P, total + 1);
        n = node(P, IG_JE_LIT, t);
        if (!s || !n) break;
        size_t o = 0;
        while (CUR(P)->kind == IG_JT_STRING) {
            memcpy(s + o, CUR(P)->text, CUR(P)->len);
            o += CUR(P)->len;
            P->i++;
        }
        n->lit = ig__jv_str(s, o);
        break;
    }
    case IG_JT_INT:
    case IG_JT_FLOAT:
        P->i++;
        n = node(P, IG_JE_LIT, t);
        if (n) n->lit = t->kind == IG_JT_INT ? ig__jv_int(t->i) : ig__jv_float(t->f);
        break;
    case IG_JT_OP:
        if (accept_op(P, "(")) {
            if (accept_op(P, ")")) {
                n = node(P, IG_JE_LIST, t);
                if (n) n->op = 1;
                break;
            }
            ig__jnode *e = parse_expr(P);
            if (!e) break;
            if (is_op(CUR(P), ",")) {
                /* A tuple: (a, b, ...). */
                ig__jnode *tn = node(P, IG_JE_LIST, t);
                vec items = {0};
                if (!tn || !vpush(P, &items, e)) break;
                tn->op = 1;
                while (accept_op(P, ",")) {
                    if (is_op(CUR(P), ")")) break;
                    ig__jnode *x = parse_expr(P);
                    if (!x || !vpush(P, &items, x)) return NULL;
                }
                tn->items = (ig__jnode **)items.p;
                tn->n_items = items.n;
                e = tn;
            }
            if (!expect_op(P, ")")) break;
            n = e;
        } else if (accept_op(P, "[")) {
            n = parse_list_literal(P, t, "]", false);
        } else if (accept_op(P, "{")) {
            n = node(P, IG_JE_DICT, t);
            vec keys = {0}, vals = {0};
            if (!n) break;
            while (!is_op(CUR(P), "}")) {
                if (keys.n && !expect_op(P, ",")) return NULL;
                if (is_op(CUR(P), "}")) break;
                ig__jnode *k = parse_expr(P);
                if (!k || !expect_op(P, ":")) return NULL;
                ig__jnode *v = parse_expr(P);
                if (!v || !vpush(P, &keys, k) || !vpush(P, &vals, v)) return NULL;
            }
            P->i++;
            n->items = (ig__jnode **)keys.p;
            n->n_items = keys.n;
            n->items2 = (ig__jnode **)vals.p;
            n->n_items2 = vals.n;
        } else {
            perr(P, t, "unexpected %s", tok_desc(t));
        }
        break;
    default:
        perr(P, t, "unexpected %s", tok_desc(t));
        break;
    }
    P->depth--;
    return n;
}

static ig__jnode *parse_unary(parser *P, bool with_filter) {
    if (!enter(P)) return NULL;
    const ig__jtok *t = CUR(P);
    ig__jnode *n;
    if (accept_op(P, "-") || accept_op(P, "+")) {
        ig__jnode *operand = parse_unary(P, false);
        n = operand ? node(P, is_op(t, "-") ? IG_JE_NEG : IG_JE_POS, t) : NULL;
        if (n) n->a = operand;
    } else {
        n = parse_primary(P);
    }
    n = parse_postfix(P, n);
    if (with_filter) n = parse_filter_expr(P, n);
    P->depth--;
    return n;
}

static ig__jnode *binop(parser *P, const ig__jtok *at, int op, ig__jnode *a, ig__jnode *b) {
    if (!a || !b) return NULL;
    ig__jnode *n = node(P, IG_JE_BINOP, at);
    if (!n) return NULL;
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    return n;
}

static ig__jnode *parse_pow(parser *P) {
    ig__jnode *n = parse_unary(P, true);
    while (n && is_op(CUR(P), "**")) {
        const ig__jtok *at = CUR(P);
        P->i++;
        n = binop(P, at, IG_JOP_POW, n, parse_unary(P, true));
    }
    return n;
}

static ig__jnode *parse_math2(parser *P) {
    ig__jnode *n = parse_pow(P);
    while (n) {
        const ig__jtok *at = CUR(P);
        int op = is_op(at, "*")    ? IG_JOP_MUL
                 : is_op(at, "/")  ? IG_JOP_DIV
                 : is_op(at, "//") ? IG_JOP_FLOORDIV
                 : is_op(at, "%")  ? IG_JOP_MOD
                                   : 0;
        if (!op) break;
        P->i++;
        n = binop(P, at, op, n, parse_pow(P));
    }
    return n;
}

static ig__jnode *parse_concat(parser *P) {
    ig__jnode *n = parse_math2(P);
    while (n && is_op(CUR(P), "~")) {
        const ig__jtok *at = CUR(P);
        P->i++;
        n = binop(P, at, IG_JOP_CONCAT, n, parse_math2(P));
    }
    return n;
}

static ig__jnode *parse_math1(parser *P) {
    ig__jnode *n = parse_concat(P);
    while (n) {
        const ig__jtok *at = CUR(P);
        int op = is_op(at, "+") ? IG_JOP_ADD : is_op(at, "-") ? IG_JOP_SUB : 0;
        if (!op) break;
        P->i++;
        n = binop(P, at, op, n, parse_concat(P));
    }
    return n;
}

static ig__jnode *parse_compare(parser *P) {
    ig__jnode *first = parse_math1(P);
    ig__jnode *result = NULL, *left = first;
    while (left) {
        const ig__jtok *at = CUR(P);
        int op = is_op(at, "==")     ? IG_JOP_EQ
                 : is_op(at, "!=")   ? IG_JOP_NE
                 : is_op(at, "<")    ? IG_JOP_LT
                 : is_op(at, ">")    ? IG_JOP_GT
                 : is_op(at, "<=")   ? IG_JOP_LE
                 : is_op(at, ">=")   ? IG_JOP_GE
                 : is_name(at, "in") ? IG_JOP_IN
                                     : 0;
        if (!op && is_name(at, "not") && is_name(&P->t[P->i + 1], "in")) {
            op = IG_JOP_NOTIN;
            P->i++;
        }
        if (!op) break;
        P->i++;
        ig__jnode *right = parse_math1(P);
        ig__jnode *cmp = binop(P, at, op, left, right);
        if (!cmp) return NULL;
        if (!result) {
            result = cmp;
        } else { /* a < b < c: (a < b) and (b < c) */
            ig__jnode *both = node(P, IG_JE_AND, at);
            if (!both) return NULL;
            both->a = result;
            both->b = cmp;
            result = both;
        }
        left = right;
    }
    if (!left) return NULL;
    return result ? result : first;
}

static ig__jnode *parse_not(parser *P) {
    const ig__jtok *at = CUR(P);
    if (accept_name(P, "not")) {
        if (!enter(P)) return NULL;
        ig__jnode *operand = parse_not(P);
        P->depth--;
        ig__jnode *n = operand ? node(P, IG_JE_NOT, at) : NULL;
        if (n) n->a = operand;
        return n;
    }
    return parse_compare(P);
}

static ig__jnode *parse_and(parser *P) {
    ig__jnode *n = parse_not(P);
    while (n && is_name(CUR(P), "and")) {
        const ig__jtok *at = CUR(P);
        P->i++;
        ig__jnode *r = parse_not(P);
        ig__jnode *x = r ? node(P, IG_JE_AND, at) : NULL;
        if (!x) return NULL;
        x->a = n;
        x->b = r;
        n = x;
    }
    return n;
}

static ig__jnode *parse_or(parser *P) {
    ig__jnode *n = parse_and(P);
    while (n && is_name(CUR(P), "or")) {
        const ig__jtok *at = CUR(P);
        P->i++;
        ig__jnode *r = parse_and(P);
        ig__jnode *x = r ? node(P, IG_JE_OR, at) : NULL;
        if (!x) return NULL;
        x->a = n;
        x->b = r;
        n = x;
    }
    return n;
}

static ig__jnode *parse_expr(parser *P) {
    if (!enter(P)) return NULL;
    ig__jnode *n = parse_or(P);
    while (n && is_name(CUR(P), "if")) {
        const ig__jtok *at = CUR(P);
        P->i++;
        ig__jnode *cond = parse_or(P);
        if (!cond) return NULL;
        ig__jnode *other = NULL;
        if (accept_name(P, "else")) {
            other = parse_expr(P);
            if (!other) return NULL;
        }
        ig__jnode *x = node(P, IG_JE_COND, at);
        if (!x) return NULL;
        x->a = cond;
        x->b = n;
        x->c = other;
        n = x;
    }
    P->depth--;
    return n;
}

/* An expression, or a tuple when commas follow (`set a = 1, 2`). */
static ig__jnode *parse_tuple_expr(parser *P) {
    const ig__jtok *at = CUR(P);
    ig__jnode *e = parse_expr(P);
    if (!e || !is_op(CUR(P), ",")) return e;
    vec items = {0};
    if (!vpush(P, &items, e)) return NULL;
    while (accept_op(P, ",")) {
        if (CUR(P)->kind == IG_JT_BLOCK_END || CUR(P)->kind == IG_JT_VAR_END) break;
        ig__jnode *x = parse_expr(P);
        if (!x || !vpush(P, &items, x)) return NULL;
    }
    ig__jnode *n = node(P, IG_JE_LIST, at);
    if (!n) return NULL;
    n->op = 1;
    n->items = (ig__jnode **)items.p;
    n->n_items = items.n;
    return n;
}

/* ---- statements ----------------------------------------------------------------------- */

/* Parse statements until `{% <one of stop> ...`; leaves the stop name as the current token. */
static bool parse_body(parser *P, const char *const *stop, vec *out);

static bool end_block(parser *P) {
    return expect_kind(P, IG_JT_BLOCK_END, "'%}'");
}

static bool parse_targets(parser *P, vec *names) {
    bool paren = accept_op(P, "(");
    do {
        const ig__jtok *t = CUR(P);
        if (t->kind != IG_JT_NAME) {
            perr(P, t, "expected a variable name, got %s", tok_desc(t));
            return false;
        }
        P->i++;
        if (!vpush(P, names, (void *)t->text)) return false;
    } while (accept_op(P, ","));
    if (paren && !expect_op(P, ")")) return false;
    return true;
}

static ig__jnode *parse_for(parser *P, const ig__jtok *at) {
    ig__jnode *n = node(P, IG_JS_FOR, at);
    vec names = {0}, body = {0}, other = {0};
    if (!n || !parse_targets(P, &names)) return NULL;
    if (!accept_name(P, "in")) return perr(P, CUR(P), "expected 'in', got %s", tok_desc(CUR(P)));
    n->a = parse_or(P);
    if (!n->a) return NULL;
    if (accept_name(P, "if")) {
        n->c = parse_expr(P);
        if (!n->c) return NULL;
    }
    if (is_name(CUR(P), "recursive")) return perr(P, CUR(P), "recursive loops are not supported");
    if (!end_block(P)) return NULL;
    static const char *const stop1[] = {"endfor", "else", NULL};
    static const char *const stop2[] = {"endfor", NULL};
    P->loop_depth++;
    bool ok = parse_body(P, stop1, &body);
    P->loop_depth--;
    if (!ok) return NULL;
    if (accept_name(P, "else")) {
        if (!end_block(P) || !parse_body(P, stop2, &other)) return NULL;
    }
    P->i++; /* endfor */
    if (!end_block(P)) return NULL;
    n->names = (const char **)names.p;
    n->n_names = names.n;
    n->items = (ig__jnode **)body.p;
    n->n_items = body.n;
    n->items2 = (ig__jnode **)other.p;
    n->n_items2 = other.n;
    return n;
}

static ig__jnode *parse_if(parser *P, const ig__jtok *at) {
    static const char *const stop[] = {"elif", "else", "endif", NULL};
    static const char *const stop_else[] = {"endif", NULL};
    ig__jnode *n = node(P, IG_JS_IF, at);
    vec body = {0};
    if (!n || !(n->a = parse_tuple_expr(P)) || !end_block(P) || !parse_body(P, stop, &body))
        return NULL;
    n->items = (ig__jnode **)body.p;
    n->n_items = body.n;
    const ig__jtok *t = CUR(P);
    if (accept_name(P, "elif")) {
        if (!enter(P)) return NULL;
        ig__jnode *e = parse_if(P, t); /* consumes the shared endif */
        P->depth--;
        if (!e) return NULL;
        n->items2 = palloc(P, sizeof *n->items2);
        if (!n->items2) return NULL;
        n->items2[0] = e;
        n->n_items2 = 1;
        return n;
    }
    if (accept_name(P, "else")) {
        vec other = {0};
        if (!end_block(P) || !parse_body(P, stop_else, &other)) return NULL;
        n->items2 = (ig__jnode **)other.p;
        n->n_items2 = other.n;
    }
    P->i++; /* endif */
    if (!end_block(P)) return NULL;
    return n;
}

static ig__jnode *parse_set(parser *P, const ig__jtok *at) {
    ig__jnode *n = node(P, IG_JS_SET, at);
    if (!n) return NULL;
    const ig__jtok *t = CUR(P);
    if (t->kind == IG_JT_NAME && is_op(&P->t[P->i + 1], ".")) {
        /* set ns.attr = value */
        ig__jnode *obj = node(P, IG_JE_NAME, t);
        if (!obj) return NULL;
        obj->name = t->text;
        P->i += 2;
        if (CUR(P)->kind != IG_JT_NAME)
            return perr(P, CUR(P), "expected an attribute name, got %s", tok_desc(CUR(P)));
        n->b = obj;
        n->name = CUR(P)->text;
        P->i++;
    } else {
        vec names = {0};
        if (!parse_targets(P, &names)) return NULL;
        n->names = (const char **)names.p;
        n->n_names = names.n;
    }
    if (accept_op(P, "=")) {
        if (!(n->a = parse_tuple_expr(P)) || !end_block(P)) return NULL;
        return n;
    }
    /* {% set x %}...{% endset %}, optionally {% set x | filter %} */
    if (n->b || n->n_names != 1) return perr(P, CUR(P), "expected '='");
    n->kind = IG_JS_SETBLOCK;
    n->name = n->names[0];
    if (is_op(CUR(P), "|")) {
        ig__jnode *f = NULL;
        while (accept_op(P, "|")) {
            f = parse_filter(P, f);
            if (!f) return NULL;
        }
        n->c = f;
    }
    static const char *const stop[] = {"endset", NULL};
    vec body = {0};
    if (!end_block(P) || !parse_body(P, stop, &body)) return NULL;
    P->i++;
    if (!end_block(P)) return NULL;
    n->items = (ig__jnode **)body.p;
    n->n_items = body.n;
    return n;
}

static ig__jnode *parse_macro(parser *P, const ig__jtok *at) {
    ig__jnode *n = node(P, IG_JS_MACRO, at);
    if (!n) return NULL;
    const ig__jtok *t = CUR(P);
    if (t->kind != IG_JT_NAME) return perr(P, t, "expected a macro name, got %s", tok_desc(t));
    n->name = t->text;
    P->i++;
    if (!expect_op(P, "(")) return NULL;
    vec params = {0}, defaults = {0};
    while (!accept_op(P, ")")) {
        if (params.n && !expect_op(P, ",")) return NULL;
        if (accept_op(P, ")")) break;
        const ig__jtok *pt = CUR(P);
        if (pt->kind != IG_JT_NAME)
            return perr(P, pt, "expected a parameter name, got %s", tok_desc(pt));
        P->i++;
        ig__jnode *def = NULL;
        if (accept_op(P, "=")) {
            def = parse_expr(P);
            if (!def) return NULL;
        } else if (defaults.n && defaults.p[defaults.n - 1]) {
            return perr(P, pt, "non-default parameter follows default parameter");
        }
        if (!vpush(P, &params, (void *)pt->text) || !vpush(P, &defaults, def)) return NULL;
    }
    static const char *const stop[] = {"endmacro", NULL};
    vec body = {0};
    int saved_loop = P->loop_depth;
    P->loop_depth = 0;
    bool ok = end_block(P) && parse_body(P, stop, &body);
    P->loop_depth = saved_loop;
    if (!ok) return NULL;
    P->i++;
    if (!end_block(P)) return NULL;
    n->names = (const char **)params.p;
    n->n_names = params.n;
    n->items2 = (ig__jnode **)defaults.p;
    n->n_items2 = defaults.n;
    n->items = (ig__jnode **)body.p;
    n->n_items = body.n;
    return n;
}

/* {% generation %} (HF's assistant-mask marker) and {% filter f %}: render the body. */
static ig__jnode *parse_scope(parser *P, const ig__jtok *at, const char *end, bool filter) {
    ig__jnode *n = node(P, IG_JS_SCOPE, at);
    if (!n) return NULL;
    if (filter) {
        ig__jnode *f = NULL;
        do {
            f = parse_filter(P, f);
            if (!f) return NULL;
        } while (accept_op(P, "|"));
        n->c = f;
    }
    const char *stop[] = {end, NULL};
    vec body = {0};
    if (!end_block(P) || !parse_body(P, stop, &body)) return NULL;
    P->i++;
    if (!end_block(P)) return NULL;
    n->items = (ig__jnode **)body.p;
    n->n_items = body.n;
    return n;
}

static ig__jnode *parse_statement(parser *P) {
    const ig__jtok *t = CUR(P);
    if (t->kind != IG_JT_NAME) return perr(P, t, "expected a tag name, got %s", tok_desc(t));
    P->i++;
    const char *k = t->text;
    ig__jnode *n = NULL;
    if (!enter(P)) return NULL;
    if (!strcmp(k, "for"))
        n = parse_for(P, t);
    else if (!strcmp(k, "if"))
        n = parse_if(P, t);
    else if (!strcmp(k, "set"))
        n = parse_set(P, t);
    else if (!strcmp(k, "macro"))
        n = parse_macro(P, t);
    else if (!strcmp(k, "generation"))
        n = parse_scope(P, t, "endgeneration", false);
    else if (!strcmp(k, "filter"))
        n = parse_scope(P, t, "endfilter", true);
    else if (!strcmp(k, "break") || !strcmp(k, "continue")) {
        if (!P->loop_depth)
            n = perr(P, t, "'%s' outside of a loop", k);
        else if ((n = node(P, k[0] == 'b' ? IG_JS_BREAK : IG_JS_CONTINUE, t)) && !end_block(P))
            n = NULL;
    } else
        n = perr(P, t, "unknown or unsupported tag '%s'", k);
    P->depth--;
    return n;
}

static bool parse_body(parser *P, const char *const *stop, vec *out) {
    for (;;) {
        const ig__jtok *t = CUR(P);
        ig__jnode *n = NULL;
        switch (t->kind) {
        case IG_JT_EOF:
            if (stop) {
                const char *end = stop[0];
                for (size_t i = 0; stop[i]; i++)
                    if (!strncmp(stop[i], "end", 3)) end = stop[i];
                perr(P, t, "unexpected end of template: missing '{%% %s %%}'", end);
                return false;
            }
            return true;
        case IG_JT_DATA:
            P->i++;
            n = node(P, IG_JS_DATA, t);
            if (n) n->lit = ig__jv_str(t->text, t->len);
            break;
        case IG_JT_VAR_BEGIN:
            P->i++;
            n = node(P, IG_JS_OUTPUT, t);
            if (n && (!(n->a = parse_tuple_expr(P)) || !expect_kind(P, IG_JT_VAR_END, "'}}'")))
                n = NULL;
            break;
        case IG_JT_BLOCK_BEGIN: {
            P->i++;
            const ig__jtok *name = CUR(P);
            if (name->kind == IG_JT_NAME) {
                for (size_t i = 0; stop && stop[i]; i++)
                    if (!strcmp(name->text, stop[i])) return true;
                if (!strncmp(name->text, "end", 3) || !strcmp(name->text, "else") ||
                    !strcmp(name->text, "elif")) {
                    perr(P, name, "unexpected '%s'%s%s%s", name->text, stop ? " (expected '" : "",
                         stop ? stop[0] : "", stop ? "')" : "");
                    return false;
                }
            }
            n = parse_statement(P);
            break;
        }
        default:
            perr(P, t, "unexpected %s", tok_desc(t));
            return false;
        }
        if (!n || !vpush(P, out, n)) return false;
    }
}

ig_status ig__jinja_parse(const char *src, size_t len, ig__jprog **out, ig_error *err) {
    ig_status st = IG_OK;
    ig__jprog *prog = calloc(1, sizeof *prog);
    if (!prog) return ig_errorf(err, IG_ENOMEM, "out of memory parsing the chat template");
    parser P = {.arena = &prog->arena, .err = err};
    st = ig__jinja_lex(src, len, &prog->arena, &P.t, &P.n, err);
    if (st) goto fail;
    vec body = {0};
    if (!parse_body(&P, NULL, &body)) {
        st = P.status ? P.status : ig_errorf(err, IG_EFORMAT, "chat template: parse failed");
        goto fail;
    }
    prog->body = (ig__jnode **)body.p;
    prog->n_body = body.n;
    *out = prog;
    return IG_OK;
fail:
    ig__jinja_prog_free(prog);
    return st;
}

void ig__jinja_prog_free(ig__jprog *prog) {
    if (!prog) return;
    ig__ja_free(&prog->arena);
    free(prog);
}
