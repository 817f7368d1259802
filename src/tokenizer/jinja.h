/*
 * jinja.h: the Jinja2 subset that chat templates use. Internal to the library;
 * the public face is chat_template.h.
 *
 * Pipeline
 * --------
 *   jinja_lex.c    template text -> tokens, applying Jinja's whitespace rules
 *                  (trim_blocks, lstrip_blocks, `-` and `+` markers, one
 *                  trailing newline dropped) exactly as jinja2's lexer does.
 *   jinja_parse.c  tokens -> a tree of ig__jnode (expressions and statements).
 *   jinja_value.c  values (Python's None/bool/int/float/str/list/dict), the
 *                  arena they live in, and str()/repr()/json.dumps() of them.
 *   jinja_eval.c   walks the tree: scopes, loops, macros, operators.
 *   jinja_builtins.c  filters, tests, global functions, str/dict methods.
 *
 * Memory
 * ------
 * Everything a template allocates lives in an arena (ig__jarena): the parsed
 * tree in the template's own arena (freed by ig_chat_template_free), every
 * value made while rendering in a per-render arena with a byte limit. Values
 * are never freed one by one; strings and lists are immutable once built,
 * except the dict behind a namespace() object.
 *
 * Threads
 * -------
 * A parsed tree is read-only while rendering, so several threads may render
 * one template at once, each with its own ig__jctx.
 */
#ifndef IG_TOKENIZER_JINJA_H
#define IG_TOKENIZER_JINJA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ignis.h"

/* ---- arena ---------------------------------------------------------------------------- */

typedef struct ig__jchunk ig__jchunk;
typedef struct ig__jarena {
    ig__jchunk *head; /* newest chunk first */
    size_t n_used;    /* bytes handed out plus chunk overhead, all chunks */
    size_t limit;     /* ig__ja_alloc fails past this many bytes (0: no limit) */
} ig__jarena;

/* Zeroed, 16-byte aligned memory, or NULL when the limit or malloc says no. */
void *ig__ja_alloc(ig__jarena *a, size_t n);
void ig__ja_free(ig__jarena *a);

/* ---- values --------------------------------------------------------------------------- */

typedef enum ig__jtype {
    IG_JV_UNDEF = 0, /* jinja2's default Undefined: falsy, prints as "" */
    IG_JV_NONE,
    IG_JV_BOOL,
    IG_JV_INT,
    IG_JV_FLOAT,
    IG_JV_STR,
    IG_JV_LIST, /* a Python list or tuple (is_tuple) */
    IG_JV_DICT,
    IG_JV_NS,   /* namespace(): a dict whose entries `set ns.x = ...` may change */
    IG_JV_FUNC, /* a callable: global function, bound method or macro */
    IG_JV_LOOP, /* the `loop` object of a for loop */
} ig__jtype;

typedef struct ig__jlist ig__jlist;
typedef struct ig__jdict ig__jdict;
typedef struct ig__jfunc ig__jfunc;
typedef struct ig__jloop ig__jloop;

typedef struct ig__jv {
    uint8_t type; /* ig__jtype */
    uint8_t is_tuple;
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p; /* UTF-8, not NUL-terminated; may point into the template */
            size_t n;      /* bytes */
        } s;
        ig__jlist *l;
        ig__jdict *d; /* DICT and NS */
        ig__jfunc *fn;
        ig__jloop *loop;
        const char *undef_hint; /* UNDEF: NUL-terminated reason for errors, or NULL */
    } u;
} ig__jv;

struct ig__jlist {
    size_t n, cap;
    ig__jv *items;
};

struct ig__jdict {
    size_t n, cap;
    ig__jv *keys; /* insertion order kept, as Python's dict does */
    ig__jv *vals;
};

struct ig__jloop {
    int64_t index0, length, depth;
    ig__jv prev, next; /* UNDEF where there is none */
    bool has_prev, has_next;
};

typedef struct ig__jnode ig__jnode;
typedef struct ig__jframe ig__jframe;

struct ig__jfunc {
    int builtin;            /* IG_JB_* id, or -1 for a macro */
    ig__jv self;            /* the receiver of a bound method */
    const char *name;       /* NUL-terminated, for messages */
    const ig__jnode *macro; /* IG_JS_MACRO node when builtin is -1 */
    ig__jframe *closure;    /* the scope a macro was defined in */
};

static inline ig__jv ig__jv_undef(const char *hint) {
    ig__jv v = {.type = IG_JV_UNDEF};
    v.u.undef_hint = hint;
    return v;
}
static inline ig__jv ig__jv_none(void) {
    return (ig__jv){.type = IG_JV_NONE};
}
static inline ig__jv ig__jv_bool(bool b) {
    ig__jv v = {.type = IG_JV_BOOL};
    v.u.b = b;
    return v;
}
static inline ig__jv ig__jv_int(int64_t i) {
    ig__jv v = {.type = IG_JV_INT};
    v.u.i = i;
    return v;
}
static inline ig__jv ig__jv_float(double f) {
    ig__jv v = {.type = IG_JV_FLOAT};
    v.u.f = f;
    return v;
}
static inline ig__jv ig__jv_str(const char *p, size_t n) {
    ig__jv v = {.type = IG_JV_STR};
    v.u.s.p = p;
    v.u.s.n = n;
    return v;
}

/* ---- syntax tree ---------------------------------------------------------------------- */

typedef enum ig__jkind {
    /* expressions */
    IG_JE_LIT,    /* lit */
    IG_JE_NAME,   /* name */
    IG_JE_LIST,   /* items[n] (tuple when op == 1) */
    IG_JE_DICT,   /* items[n] keys, items2[n] values */
    IG_JE_ATTR,   /* a.name */
    IG_JE_INDEX,  /* a[b] */
    IG_JE_SLICE,  /* a[items[0]:items[1]:items[2]], NULL entries omitted */
    IG_JE_CALL,   /* a(items..., names[k]=items2[k]...) */
    IG_JE_FILTER, /* a | name(items..., kwargs) */
    IG_JE_TEST,   /* a is [not: op] name(items...) */
    IG_JE_BINOP,  /* a op b */
    IG_JE_AND,    /* a and b */
    IG_JE_OR,     /* a or b */
    IG_JE_NOT,    /* not a */
    IG_JE_NEG,    /* -a */
    IG_JE_POS,    /* +a */
    IG_JE_COND,   /* b if a else c (c may be NULL) */
    /* statements */
    IG_JS_DATA,     /* lit: template text */
    IG_JS_OUTPUT,   /* {{ a }} */
    IG_JS_IF,       /* if a: items (body), else items2 */
    IG_JS_FOR,      /* for names[n_names] in a [if c]: items, else items2 */
    IG_JS_SET,      /* set names[...] = a; or set b.name = a (b set) */
    IG_JS_SETBLOCK, /* set name: items captured (then filtered through c if set) */
    IG_JS_MACRO,    /* macro name(names[k] [= items2[k]]): items */
    IG_JS_BREAK,
    IG_JS_CONTINUE,
    IG_JS_SCOPE, /* a block that only renders its body: items (generation, filter via c) */
} ig__jkind;

typedef enum ig__jop {
    IG_JOP_ADD = 1,
    IG_JOP_SUB,
    IG_JOP_MUL,
    IG_JOP_DIV,
    IG_JOP_FLOORDIV,
    IG_JOP_MOD,
    IG_JOP_POW,
    IG_JOP_CONCAT,
    IG_JOP_EQ,
    IG_JOP_NE,
    IG_JOP_LT,
    IG_JOP_GT,
    IG_JOP_LE,
    IG_JOP_GE,
    IG_JOP_IN,
    IG_JOP_NOTIN,
} ig__jop;

struct ig__jnode {
    uint8_t kind;       /* ig__jkind */
    uint8_t op;         /* ig__jop for BINOP; negation for TEST; tuple flag for LIST */
    uint32_t line, col; /* 1-based position in the template */
    ig__jv lit;         /* LIT, DATA */
    const char *name;   /* NUL-terminated: NAME, ATTR, FILTER, TEST, SET, MACRO */
    ig__jnode *a, *b, *c;
    ig__jnode **items; /* args, list items, body */
    size_t n_items;
    ig__jnode **items2; /* kwarg values, dict values, else-body, macro defaults */
    size_t n_items2;
    const char **names; /* kwarg names, loop/set targets, macro parameters */
    size_t n_names;
};

/* A parsed template: the statement list and the arena that holds it. */
typedef struct ig__jprog {
    ig__jarena arena;
    ig__jnode **body;
    size_t n_body;
} ig__jprog;

/* ---- lexer ---------------------------------------------------------------------------- */

typedef enum ig__jtok_kind {
    IG_JT_EOF = 0,
    IG_JT_DATA,        /* raw template text (already whitespace-trimmed) */
    IG_JT_VAR_BEGIN,   /* {{ */
    IG_JT_VAR_END,     /* }} */
    IG_JT_BLOCK_BEGIN, /* {% */
    IG_JT_BLOCK_END,   /* %} */
    IG_JT_NAME,
    IG_JT_STRING, /* text holds the decoded value */
    IG_JT_INT,
    IG_JT_FLOAT,
    IG_JT_OP, /* text holds the operator: "+", "//", "==", "(", ... */
} ig__jtok_kind;

typedef struct ig__jtok {
    uint8_t kind;
    uint32_t line, col;
    const char *text; /* NUL-terminated copy in the arena */
    size_t len;       /* bytes of text (strings may hold NULs) */
    int64_t i;        /* INT */
    double f;         /* FLOAT */
} ig__jtok;

/* Split `src` into tokens (in `arena`). Errors: IG_EFORMAT with line and column. */
ig_status ig__jinja_lex(const char *src, size_t len, ig__jarena *arena, ig__jtok **out,
                        size_t *n_out, ig_error *err);

/* ---- parser --------------------------------------------------------------------------- */

/* Parse a template. On success *out is the caller's, for ig__jinja_prog_free(). */
ig_status ig__jinja_parse(const char *src, size_t len, ig__jprog **out, ig_error *err);
void ig__jinja_prog_free(ig__jprog *prog);

/* ---- rendering ------------------------------------------------------------------------ */

typedef struct ig__jlimits {
    size_t max_output_len; /* bytes of rendered text */
    size_t max_memory;     /* bytes in the render arena */
    uint64_t max_steps;    /* loop iterations + macro calls + statements run */
    int max_depth;         /* nested evaluation (expressions, macro calls) */
} ig__jlimits;

typedef struct ig__jctx {
    ig__jarena arena;
    const ig__jlimits *limits;
    ig_error *err;
    ig_status status;  /* first failure, sticky */
    ig__jframe *scope; /* innermost scope */
    ig__jframe *globals;
    char *out; /* current output buffer (malloc'd) */
    size_t out_len, out_cap;
    uint64_t n_steps;
    int depth;
    int flow;   /* 0, or IG_JS_BREAK / IG_JS_CONTINUE while unwinding a loop body */
    time_t now; /* what strftime_now formats */
} ig__jctx;

/* Record an error at a node's position (or none when n is NULL); returns -1. */
int ig__jfail(ig__jctx *c, const ig__jnode *n, ig_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Bind a global variable before rendering. The name must outlive the render. */
int ig__jctx_set_global(ig__jctx *c, const char *name, ig__jv v);

/* Run the template; output accumulates in c->out. Returns 0 or -1 (see c->status). */
int ig__jinja_render(ig__jctx *c, const ig__jprog *prog);

/* ---- values (jinja_value.c) ----------------------------------------------------------- */

/* Builders: all return 0 or -1 with the error recorded in c. */
int ig__jv_strdup(ig__jctx *c, const char *p, size_t n, ig__jv *out);
ig__jlist *ig__jlist_new(ig__jctx *c, size_t cap);
int ig__jlist_push(ig__jctx *c, ig__jlist *l, ig__jv v);
ig__jdict *ig__jdict_new(ig__jctx *c, size_t cap);
int ig__jdict_set(ig__jctx *c, ig__jdict *d, ig__jv key, ig__jv val);
/* Lookup by key; NULL when absent. */
ig__jv *ig__jdict_get(const ig__jdict *d, ig__jv key);
ig__jv *ig__jdict_get_str(const ig__jdict *d, const char *key, size_t key_len);

static inline ig__jv ig__jv_list(ig__jlist *l) {
    ig__jv v = {.type = IG_JV_LIST};
    v.u.l = l;
    return v;
}
static inline ig__jv ig__jv_dict(ig__jdict *d) {
    ig__jv v = {.type = IG_JV_DICT};
    v.u.d = d;
    return v;
}

bool ig__jv_truthy(ig__jv v);
bool ig__jv_equal(ig__jv a, ig__jv b);
const char *ig__jv_type_name(ig__jv v); /* Python's name: "str", "dict", ... */

/* A growable byte string in malloc'd memory, bounded by c->limits->max_output_len. */
typedef struct ig__jbuf {
    char *p;
    size_t n, cap;
} ig__jbuf;
int ig__jbuf_put(ig__jctx *c, ig__jbuf *b, const char *p, size_t n);
int ig__jbuf_putc(ig__jctx *c, ig__jbuf *b, char ch);
/* Copy a buffer's bytes into the arena as a string value, then free the buffer. */
int ig__jbuf_finish(ig__jctx *c, ig__jbuf *b, ig__jv *out);

/* str(v) as Python writes it; strings are returned as themselves. */
int ig__jv_to_str(ig__jctx *c, ig__jv v, ig__jv *out);
/* Append str(v) / repr(v) to a buffer. */
int ig__jv_write_str(ig__jctx *c, ig__jbuf *b, ig__jv v, int depth);
int ig__jv_write_repr(ig__jctx *c, ig__jbuf *b, ig__jv v, int depth);
/* json.dumps(v, ensure_ascii=False, indent=indent (<0: None), sort_keys=sort_keys). */
int ig__jv_write_json(ig__jctx *c, ig__jbuf *b, ig__jv v, int indent, bool sort_keys, int level);
/* Python's repr() of a float. */
void ig__jfloat_repr(double f, char *buf, size_t cap);

/* UTF-8 helpers (invalid bytes count as one character each). */
size_t ig__jutf8_count(const char *p, size_t n);
/* Byte offset of character index `ci` (clamped to n). */
size_t ig__jutf8_offset(const char *p, size_t n, int64_t ci);
/* Decode one code point at p (n >= 1 bytes); returns bytes used (>= 1). */
size_t ig__jutf8_decode(const char *p, size_t n, int32_t *cp);
size_t ig__jutf8_encode(int32_t cp, char *out);
bool ig__py_isspace(int32_t cp);

/* ---- builtins (jinja_builtins.c) ------------------------------------------------------ */

enum {
    IG_JB_RANGE = 0,
    IG_JB_NAMESPACE,
    IG_JB_RAISE,
    IG_JB_STRFTIME,
    IG_JB_DICT,
    IG_JB_CYCLE, /* loop.cycle */
    IG_JB_METHOD /* IG_JB_METHOD + k: the k-th str/dict method, see jinja_builtins.c */
};

/* Call a builtin with evaluated arguments. */
int ig__jcall_builtin(ig__jctx *c, const ig__jnode *at, const ig__jfunc *fn, ig__jv *args,
                      size_t n_args, const char **kw_names, ig__jv *kw_vals, size_t n_kw,
                      ig__jv *out);
/* Apply filter `name`. */
int ig__jfilter(ig__jctx *c, const ig__jnode *at, const char *name, ig__jv v, ig__jv *args,
                size_t n_args, const char **kw_names, ig__jv *kw_vals, size_t n_kw, ig__jv *out);
/* Apply test `name`; *out is the boolean result. */
int ig__jtest(ig__jctx *c, const ig__jnode *at, const char *name, ig__jv v, ig__jv *args,
              size_t n_args, bool *out);
/* v.name for a str/dict/list: a bound method, or 0 with *found false when none. */
int ig__jmethod(ig__jctx *c, ig__jv self, const char *name, ig__jv *out, bool *found);
/* Python's str.format() ({}, {N}, {name}) and `str % args` (s r d i f x). */
int ig__jstr_format(ig__jctx *c, const ig__jnode *at, ig__jv fmt, ig__jv *args, size_t n_args,
                    const char **kw_names, ig__jv *kw_vals, size_t n_kw, ig__jv *out);
int ig__jstr_percent(ig__jctx *c, const ig__jnode *at, ig__jv fmt, ig__jv args, ig__jv *out);
/* Look a global function up by name (range, namespace, ...); false when none. */
bool ig__jglobal_func(const char *name, ig__jv *out);

/* Shared by eval and builtins. */
int ig__jbinop(ig__jctx *c, const ig__jnode *at, int op, ig__jv a, ig__jv b, ig__jv *out);
int ig__jgetattr(ig__jctx *c, const ig__jnode *at, ig__jv obj, const char *name, ig__jv *out);
int ig__jgetitem(ig__jctx *c, const ig__jnode *at, ig__jv obj, ig__jv key, ig__jv *out);
/* Turn an iterable into a list (str: characters, dict: keys, undefined: empty). */
int ig__jiterate(ig__jctx *c, const ig__jnode *at, ig__jv v, ig__jlist **out);
/* Call any callable value. */
int ig__jcall(ig__jctx *c, const ig__jnode *at, ig__jv fn, ig__jv *args, size_t n_args,
              const char **kw_names, ig__jv *kw_vals, size_t n_kw, ig__jv *out);
/* Raise the undefined value's error. */
int ig__jundef_fail(ig__jctx *c, const ig__jnode *at, ig__jv v);
/* Count one step against max_steps; -1 past it. */
int ig__jstep(ig__jctx *c, const ig__jnode *at);

#endif
