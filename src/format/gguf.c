/*
 * gguf.c: the validating GGUF reader (see gguf.h for the model of use).
 *
 * Layout of a GGUF v2/v3 file (all integers little-endian, nothing aligned
 * until the data section):
 *
 *   header      magic "GGUF" (4 bytes), version u32, n_tensors u64, n_kv u64
 *   n_kv x      key: string, value type: u32, value
 *   n_tensors x name: string, n_dims: u32, ne: u64[n_dims], type: u32,
 *               offset: u64 (relative to the data section)
 *   padding     up to a multiple of general.alignment (default 32)
 *   data        tensor bytes; each tensor's offset is a multiple of the alignment
 *
 *   string      length u64, then that many bytes (no NUL)
 *   value       scalars: 1, 2, 4 or 8 bytes by type; string as above;
 *               array: element type u32, count u64, then count elements
 *               (arrays may hold arrays)
 *
 * Validation strategy. Every read goes through a cursor that checks the bytes
 * remain before touching them, so a truncated file fails with the byte offset
 * and what was being read. Every count read from the file is checked against
 * the bytes left before anything is allocated for it: an element of kind K
 * needs at least min_size(K) bytes in the file, so N elements need
 * N * min_size(K) <= remaining (tested as N <= remaining / min_size(K), which
 * cannot overflow). Hence the memory this reader allocates is bounded by a
 * small constant times the file size, whatever the counts claim: at worst
 * about 5 bytes per file byte (a 40-byte ig_gguf_value for each 8-byte empty
 * string in an array; 56 bytes per 13-byte key; 96 per 24-byte tensor). Array
 * nesting is limited to IG_GGUF_MAX_DEPTH so recursion depth is bounded too.
 *
 * Keys and tensor names are looked up by binary search over arrays of
 * pointers sorted by name, built once at open time; sorting also finds
 * duplicates (adjacent equal names). Sorting keeps the worst case
 * O(n log n) for hostile files, where a hash table could be driven to O(n^2).
 *
 * A parsed ig_gguf is never modified after open, so it can be shared freely.
 */
#include "format/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "tensor/types.h"

#define IG_GGUF_DEFAULT_ALIGNMENT 32u
#define IG_GGUF_MAX_DEPTH         16    /* arrays nested deeper than this are rejected */
#define IG_GGUF_MAX_KEY_LEN       65535 /* the GGUF spec's limit on key length */

struct ig_gguf {
    const uint8_t *base;                  /* the file's bytes */
    size_t size;                          /* bytes */
    void *map;                            /* mmap'ed region to unmap, or NULL (open_memory) */
    uint32_t version;                     /* 2 or 3 */
    uint32_t alignment;                   /* bytes, a power of two */
    uint64_t data_start;                  /* file offset of the data section (may equal size) */
    int64_t n_kv;                         /* entries in kvs */
    ig_gguf_kv *kvs;                      /* in file order */
    const ig_gguf_kv **kv_sorted;         /* n_kv pointers sorted by key */
    int64_t n_tensors;                    /* entries in tensors */
    ig_gguf_tensor *tensors;              /* in file order */
    const ig_gguf_tensor **tensor_sorted; /* n_tensors pointers sorted by name */
};

/* ---- the cursor ---------------------------------------------------------- */

/* Where the parser is, for error messages. */
typedef struct parser {
    const uint8_t *buf; /* the file */
    size_t size;        /* bytes in buf */
    size_t pos;         /* next byte to read */
    ig_error *err;
    const char *section; /* "header", "key", "tensor info" */
    int64_t idx;         /* index of the key or tensor, -1 for none */
    ig_str name;         /* name of the key or tensor once read (len 0 before) */
    const char *part;    /* what within the section: "name", "value", ... */
} parser;

/* Copy a name into buf for a message: at most ~60 bytes, non-printables as '?'. */
static const char *printable(ig_str s, char *buf, size_t cap) {
    size_t n = 0;
    size_t max = cap - 4;
    for (uint64_t i = 0; i < s.len && n < max; i++) {
        unsigned char c = (unsigned char)s.ptr[i];
        buf[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s.len > max) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* "key 5 ('llama.context_length') value" for the parser's current position. */
static const char *where(const parser *p, char *buf, size_t cap) {
    if (p->idx < 0) {
        snprintf(buf, cap, "%s %s", p->section, p->part);
    } else if (p->name.len > 0) {
        char nm[72];
        snprintf(buf, cap, "%s %lld ('%s') %s", p->section, (long long)p->idx,
                 printable(p->name, nm, sizeof nm), p->part);
    } else {
        snprintf(buf, cap, "%s %lld %s", p->section, (long long)p->idx, p->part);
    }
    return buf;
}

static ig_status truncated(parser *p, uint64_t need) {
    char w[160];
    return ig_errorf(p->err, IG_EFORMAT,
                     "gguf: truncated at byte %zu while reading %s (need %llu bytes, %zu left)",
                     p->pos, where(p, w, sizeof w), (unsigned long long)need, p->size - p->pos);
}

static size_t remaining(const parser *p) {
    return p->size - p->pos;
}

static ig_status take(parser *p, uint64_t n, const uint8_t **out) {
    if (n > remaining(p)) return truncated(p, n);
    *out = p->buf + p->pos;
    p->pos += (size_t)n;
    return IG_OK;
}

static uint64_t le(const uint8_t *b, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static ig_status read_u32(parser *p, uint32_t *out) {
    const uint8_t *b = NULL;
    ig_status st = take(p, 4, &b);
    if (st == IG_OK) *out = (uint32_t)le(b, 4);
    return st;
}

static ig_status read_u64(parser *p, uint64_t *out) {
    const uint8_t *b = NULL;
    ig_status st = take(p, 8, &b);
    if (st == IG_OK) *out = le(b, 8);
    return st;
}

static ig_status read_str(parser *p, ig_str *out) {
    uint64_t len;
    const uint8_t *b = NULL;
    ig_status st = read_u64(p, &len);
    if (st != IG_OK) return st;
    if (len > remaining(p)) {
        char w[160];
        return ig_errorf(p->err, IG_EFORMAT,
                         "gguf: string length %llu at byte %zu exceeds the %zu bytes left "
                         "while reading %s",
                         (unsigned long long)len, p->pos - 8, remaining(p), where(p, w, sizeof w));
    }
    st = take(p, len, &b);
    if (st != IG_OK) return st;
    out->ptr = (const char *)b;
    out->len = len;
    return IG_OK;
}

/* ---- metadata values ----------------------------------------------------- */

/* Bytes of one scalar element, 0 for STRING/ARRAY/unknown. */
static size_t scalar_size(uint32_t t) {
    switch (t) {
    case IG_GGUF_UINT8:
    case IG_GGUF_INT8:
    case IG_GGUF_BOOL:
        return 1;
    case IG_GGUF_UINT16:
    case IG_GGUF_INT16:
        return 2;
    case IG_GGUF_UINT32:
    case IG_GGUF_INT32:
    case IG_GGUF_FLOAT32:
        return 4;
    case IG_GGUF_UINT64:
    case IG_GGUF_INT64:
    case IG_GGUF_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

/* Fewest bytes one value of type t can take in a file (type known). */
static size_t min_size(uint32_t t) {
    if (t == IG_GGUF_STRING) return 8;    /* length */
    if (t == IG_GGUF_ARRAY) return 4 + 8; /* element type + count */
    return scalar_size(t);
}

static bool is_int_type(ig_gguf_type t) {
    return t == IG_GGUF_UINT8 || t == IG_GGUF_INT8 || t == IG_GGUF_UINT16 || t == IG_GGUF_INT16 ||
           t == IG_GGUF_UINT32 || t == IG_GGUF_INT32 || t == IG_GGUF_UINT64 || t == IG_GGUF_INT64;
}

static bool is_signed_type(ig_gguf_type t) {
    return t == IG_GGUF_INT8 || t == IG_GGUF_INT16 || t == IG_GGUF_INT32 || t == IG_GGUF_INT64;
}

/* Decode a scalar of type t from b (scalar_size(t) bytes) into v. */
static void decode_scalar(ig_gguf_type t, const uint8_t *b, ig_gguf_value *v) {
    v->type = t;
    switch (t) {
    case IG_GGUF_UINT8:
        v->v.u64 = b[0];
        break;
    case IG_GGUF_UINT16:
        v->v.u64 = le(b, 2);
        break;
    case IG_GGUF_UINT32:
        v->v.u64 = le(b, 4);
        break;
    case IG_GGUF_UINT64:
        v->v.u64 = le(b, 8);
        break;
    case IG_GGUF_INT8:
        v->v.i64 = (int8_t)b[0];
        break;
    case IG_GGUF_INT16:
        v->v.i64 = (int16_t)(uint16_t)le(b, 2);
        break;
    case IG_GGUF_INT32:
        v->v.i64 = (int32_t)(uint32_t)le(b, 4);
        break;
    case IG_GGUF_INT64:
        v->v.i64 = (int64_t)le(b, 8);
        break;
    case IG_GGUF_FLOAT32: {
        uint32_t bits = (uint32_t)le(b, 4);
        float f;
        memcpy(&f, &bits, sizeof f);
        v->v.f64 = f;
        break;
    }
    case IG_GGUF_FLOAT64: {
        uint64_t bits = le(b, 8);
        memcpy(&v->v.f64, &bits, sizeof v->v.f64);
        break;
    }
    case IG_GGUF_BOOL:
        v->v.b = b[0] != 0;
        break;
    default:
        IG_ASSERT(!"decode_scalar: not a scalar type");
    }
}

static void free_value(ig_gguf_value *v) {
    if (v->type != IG_GGUF_ARRAY || !v->v.arr.items) return;
    if (v->v.arr.elem_type == IG_GGUF_ARRAY) {
        for (uint64_t i = 0; i < v->v.arr.n; i++) free_value(&v->v.arr.items[i]);
    }
    free(v->v.arr.items);
    v->v.arr.items = NULL;
}

static ig_status read_value(parser *p, uint32_t type, int depth, ig_gguf_value *out);

static ig_status read_array(parser *p, int depth, ig_gguf_value *out) {
    ig_status st;
    uint32_t et;
    uint64_t n;
    char w[160];
    out->type = IG_GGUF_ARRAY;
    out->v.arr.items = NULL;
    out->v.arr.n = 0;
    if (depth >= IG_GGUF_MAX_DEPTH)
        return ig_errorf(p->err, IG_EFORMAT,
                         "gguf: arrays nested deeper than %d at byte %zu while reading %s",
                         IG_GGUF_MAX_DEPTH, p->pos, where(p, w, sizeof w));
    if ((st = read_u32(p, &et)) != IG_OK) return st;
    if (et >= IG_GGUF_TYPE_COUNT)
        return ig_errorf(p->err, IG_EFORMAT,
                         "gguf: unknown array element type %u at byte %zu while reading %s", et,
                         p->pos - 4, where(p, w, sizeof w));
    if ((st = read_u64(p, &n)) != IG_OK) return st;
    if (n > remaining(p) / min_size(et))
        return ig_errorf(p->err, IG_EFORMAT,
                         "gguf: array of %llu %s elements at byte %zu needs at least %llu bytes "
                         "per element but only %zu bytes are left (reading %s)",
                         (unsigned long long)n, ig_gguf_type_name((ig_gguf_type)et), p->pos - 8,
                         (unsigned long long)min_size(et), remaining(p), where(p, w, sizeof w));
    out->v.arr.elem_type = (ig_gguf_type)et;
    out->v.arr.raw = p->buf + p->pos;
    if (et != IG_GGUF_STRING && et != IG_GGUF_ARRAY) {
        const uint8_t *b;
        if ((st = take(p, n * scalar_size(et), &b)) != IG_OK) return st;
        out->v.arr.n = n;
        return IG_OK;
    }
    if (n == 0) return IG_OK;
    /* n <= file size / 8, so this allocation is bounded by the file. */
    ig_gguf_value *items = calloc((size_t)n, sizeof *items);
    if (!items)
        return ig_errorf(p->err, IG_ENOMEM, "gguf: out of memory for an array of %llu elements",
                         (unsigned long long)n);
    out->v.arr.items = items;
    out->v.arr.n = n; /* calloc'ed items are UINT8 zeros, which free_value skips */
    for (uint64_t i = 0; i < n; i++) {
        if ((st = read_value(p, et, depth + 1, &items[i])) != IG_OK) return st;
    }
    return IG_OK;
}

/* Read one value of a known type (the caller checked type < IG_GGUF_TYPE_COUNT). */
static ig_status read_value(parser *p, uint32_t type, int depth, ig_gguf_value *out) {
    if (type == IG_GGUF_STRING) {
        out->type = IG_GGUF_STRING;
        return read_str(p, &out->v.str);
    }
    if (type == IG_GGUF_ARRAY) return read_array(p, depth, out);
    const uint8_t *b = NULL;
    ig_status st = take(p, scalar_size(type), &b);
    if (st == IG_OK) decode_scalar((ig_gguf_type)type, b, out);
    return st;
}

/* ---- lookup tables ------------------------------------------------------- */

static int cmp_str(ig_str a, ig_str b) {
    uint64_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, (size_t)n) : 0;
    if (c != 0) return c;
    return (a.len > b.len) - (a.len < b.len);
}

static int cmp_kv_ptr(const void *a, const void *b) {
    const ig_gguf_kv *x = *(const ig_gguf_kv *const *)a;
    const ig_gguf_kv *y = *(const ig_gguf_kv *const *)b;
    int c = cmp_str(x->key, y->key);
    return c ? c : (x > y) - (x < y); /* stable: file order breaks ties */
}

static int cmp_tensor_ptr(const void *a, const void *b) {
    const ig_gguf_tensor *x = *(const ig_gguf_tensor *const *)a;
    const ig_gguf_tensor *y = *(const ig_gguf_tensor *const *)b;
    int c = cmp_str(x->name, y->name);
    return c ? c : (x > y) - (x < y);
}

static ig_status build_kv_index(ig_gguf *g, ig_error *err) {
    if (g->n_kv == 0) return IG_OK;
    g->kv_sorted = malloc((size_t)g->n_kv * sizeof *g->kv_sorted);
    if (!g->kv_sorted) return ig_errorf(err, IG_ENOMEM, "gguf: out of memory for the key index");
    for (int64_t i = 0; i < g->n_kv; i++) g->kv_sorted[i] = &g->kvs[i];
    qsort(g->kv_sorted, (size_t)g->n_kv, sizeof *g->kv_sorted, cmp_kv_ptr);
    for (int64_t i = 1; i < g->n_kv; i++) {
        const ig_gguf_kv *a = g->kv_sorted[i - 1], *b = g->kv_sorted[i];
        if (cmp_str(a->key, b->key) == 0) {
            char nm[72];
            return ig_errorf(err, IG_EFORMAT, "gguf: duplicate key '%s' (keys %lld and %lld)",
                             printable(a->key, nm, sizeof nm), (long long)(a - g->kvs),
                             (long long)(b - g->kvs));
        }
    }
    return IG_OK;
}

static ig_status build_tensor_index(ig_gguf *g, ig_error *err) {
    if (g->n_tensors == 0) return IG_OK;
    g->tensor_sorted = malloc((size_t)g->n_tensors * sizeof *g->tensor_sorted);
    if (!g->tensor_sorted)
        return ig_errorf(err, IG_ENOMEM, "gguf: out of memory for the tensor index");
    for (int64_t i = 0; i < g->n_tensors; i++) g->tensor_sorted[i] = &g->tensors[i];
    qsort(g->tensor_sorted, (size_t)g->n_tensors, sizeof *g->tensor_sorted, cmp_tensor_ptr);
    for (int64_t i = 1; i < g->n_tensors; i++) {
        const ig_gguf_tensor *a = g->tensor_sorted[i - 1], *b = g->tensor_sorted[i];
        if (cmp_str(a->name, b->name) == 0) {
            char nm[72];
            return ig_errorf(err, IG_EFORMAT,
                             "gguf: duplicate tensor name '%s' (tensors %lld and %lld)",
                             printable(a->name, nm, sizeof nm), (long long)(a - g->tensors),
                             (long long)(b - g->tensors));
        }
    }
    return IG_OK;
}

/* ---- sections ------------------------------------------------------------ */

static ig_status parse_header(parser *p, ig_gguf *g, uint64_t *n_tensors, uint64_t *n_kv) {
    ig_status st;
    const uint8_t *magic = NULL;
    p->section = "header";
    p->idx = -1;
    p->part = "magic";
    if ((st = take(p, 4, &magic)) != IG_OK) return st;
    if (memcmp(magic, "GGUF", 4) != 0) {
        char m[8];
        printable((ig_str){(const char *)magic, 4}, m, sizeof m);
        return ig_errorf(p->err, IG_EFORMAT, "gguf: bad magic '%s' (expected 'GGUF')", m);
    }
    p->part = "version";
    if ((st = read_u32(p, &g->version)) != IG_OK) return st;
    if (g->version != 2 && g->version != 3) {
        uint32_t v = g->version;
        uint32_t swapped = (v >> 24) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
        if (swapped == 2 || swapped == 3)
            return ig_errorf(p->err, IG_EUNSUPPORTED,
                             "gguf: big-endian GGUF (version %u) is not supported", swapped);
        return ig_errorf(p->err, IG_EUNSUPPORTED,
                         "gguf: unsupported version %u (only versions 2 and 3 are read)", v);
    }
    p->part = "tensor count";
    if ((st = read_u64(p, n_tensors)) != IG_OK) return st;
    p->part = "key/value count";
    if ((st = read_u64(p, n_kv)) != IG_OK) return st;
    /* Each key takes at least 8 (length) + 4 (type) + 1 (smallest value) bytes,
     * each tensor info at least 8 (name length) + 4 + 4 + 8. */
    const uint64_t kv_min = 13, ti_min = 24;
    size_t left = remaining(p);
    if (*n_kv > left / kv_min)
        return ig_errorf(p->err, IG_EFORMAT,
                         "gguf: header claims %llu keys but only %zu bytes follow "
                         "(each key needs at least %llu)",
                         (unsigned long long)*n_kv, left, (unsigned long long)kv_min);
    if (*n_tensors > left / ti_min || *n_kv * kv_min > left - *n_tensors * ti_min)
        return ig_errorf(p->err, IG_EFORMAT,
                         "gguf: header claims %llu tensors and %llu keys but only %zu bytes "
                         "follow (each tensor info needs at least %llu)",
                         (unsigned long long)*n_tensors, (unsigned long long)*n_kv, left,
                         (unsigned long long)ti_min);
    return IG_OK;
}

static ig_status parse_kvs(parser *p, ig_gguf *g, uint64_t n_kv) {
    ig_status st;
    char w[160];
    p->section = "key";
    if (n_kv == 0) return IG_OK;
    g->kvs = calloc((size_t)n_kv, sizeof *g->kvs); /* bounded: n_kv <= size / 13 */
    if (!g->kvs)
        return ig_errorf(p->err, IG_ENOMEM, "gguf: out of memory for %llu keys",
                         (unsigned long long)n_kv);
    g->n_kv = (int64_t)n_kv; /* calloc'ed values are UINT8 zeros, safe to free */
    for (uint64_t i = 0; i < n_kv; i++) {
        ig_gguf_kv *kv = &g->kvs[i];
        uint32_t type;
        p->idx = (int64_t)i;
        p->name.len = 0;
        p->part = "name";
        if ((st = read_str(p, &kv->key)) != IG_OK) return st;
        p->name = kv->key;
        if (kv->key.len > IG_GGUF_MAX_KEY_LEN)
            return ig_errorf(p->err, IG_EFORMAT, "gguf: %s is %llu bytes long (limit %d)",
                             where(p, w, sizeof w), (unsigned long long)kv->key.len,
                             IG_GGUF_MAX_KEY_LEN);
        p->part = "value type";
        if ((st = read_u32(p, &type)) != IG_OK) return st;
        if (type >= IG_GGUF_TYPE_COUNT)
            return ig_errorf(p->err, IG_EFORMAT,
                             "gguf: unknown value type %u at byte %zu while reading %s", type,
                             p->pos - 4, where(p, w, sizeof w));
        p->part = "value";
        if ((st = read_value(p, type, 0, &kv->value)) != IG_OK) return st;
    }
    return IG_OK;
}

static ig_status parse_alignment(parser *p, ig_gguf *g) {
    g->alignment = IG_GGUF_DEFAULT_ALIGNMENT;
    for (int64_t i = 0; i < g->n_kv; i++) {
        const ig_gguf_kv *kv = &g->kvs[i];
        if (!ig_str_eq(kv->key, "general.alignment")) continue;
        if (kv->value.type != IG_GGUF_UINT32)
            return ig_errorf(p->err, IG_EFORMAT,
                             "gguf: key %lld 'general.alignment' has type %s, expected uint32",
                             (long long)i, ig_gguf_type_name(kv->value.type));
        uint64_t a = kv->value.v.u64;
        if (a == 0 || (a & (a - 1)) != 0)
            return ig_errorf(p->err, IG_EFORMAT,
                             "gguf: general.alignment %llu is not a non-zero power of two",
                             (unsigned long long)a);
        g->alignment = (uint32_t)a;
    }
    return IG_OK;
}

static ig_status parse_tensor_infos(parser *p, ig_gguf *g, uint64_t n) {
    ig_status st;
    char w[160];
    p->section = "tensor info";
    p->name.len = 0;
    if (n == 0) return IG_OK;
    if (n > remaining(p) / 24) /* header check counted on all bytes; recheck after the keys */
        return ig_errorf(p->err, IG_EFORMAT,
                         "gguf: header claims %llu tensors but only %zu bytes follow the keys "
                         "(each tensor info needs at least 24)",
                         (unsigned long long)n, remaining(p));
    g->tensors = calloc((size_t)n, sizeof *g->tensors);
    if (!g->tensors)
        return ig_errorf(p->err, IG_ENOMEM, "gguf: out of memory for %llu tensors",
                         (unsigned long long)n);
    g->n_tensors = (int64_t)n;
    for (uint64_t i = 0; i < n; i++) {
        ig_gguf_tensor *t = &g->tensors[i];
        p->idx = (int64_t)i;
        p->name.len = 0;
        p->part = "name";
        if ((st = read_str(p, &t->name)) != IG_OK) return st;
        p->name = t->name;
        p->part = "n_dims";
        if ((st = read_u32(p, &t->n_dims)) != IG_OK) return st;
        if (t->n_dims > IG_GGUF_MAX_DIMS)
            return ig_errorf(p->err, IG_EFORMAT, "gguf: %s is %u (at most %d)",
                             where(p, w, sizeof w), t->n_dims, IG_GGUF_MAX_DIMS);
        p->part = "shape";
        for (int d = 0; d < IG_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne;
            if ((st = read_u64(p, &ne)) != IG_OK) return st;
            if (ne > INT64_MAX)
                return ig_errorf(p->err, IG_EFORMAT, "gguf: %s: ne[%u] = %lld is negative",
                                 where(p, w, sizeof w), d, (long long)(int64_t)ne);
            t->ne[d] = (int64_t)ne;
        }
        p->part = "type";
        if ((st = read_u32(p, &t->type)) != IG_OK) return st;
        p->part = "offset";
        if ((st = read_u64(p, &t->offset)) != IG_OK) return st;
    }
    return IG_OK;
}

/* Check a tensor's shape, type and extent against the data section; set data/nbytes. */
static ig_status check_tensor(ig_gguf *g, int64_t i, ig_error *err) {
    ig_gguf_tensor *t = &g->tensors[i];
    char nm[72];
    printable(t->name, nm, sizeof nm);
    int64_t n_elems = 1;
    for (int d = 0; d < IG_GGUF_MAX_DIMS; d++) {
        if (t->ne[d] != 0 && n_elems > INT64_MAX / t->ne[d])
            return ig_errorf(err, IG_EFORMAT,
                             "gguf: tensor '%s': shape [%lld, %lld, %lld, %lld] has more than "
                             "2^63 elements",
                             nm, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                             (long long)t->ne[3]);
        n_elems *= t->ne[d];
    }
    const ig_type_traits *tr = ig_type_get(t->type);
    if (!tr)
        return ig_errorf(err, IG_EUNSUPPORTED, "gguf: tensor '%s': unknown tensor type id %u", nm,
                         t->type);
    if (t->ne[0] % tr->blck_size != 0)
        return ig_errorf(err, IG_EFORMAT,
                         "gguf: tensor '%s': ne[0] = %lld is not a multiple of the block size "
                         "%lld of type %s",
                         nm, (long long)t->ne[0], (long long)tr->blck_size, tr->name);
    /* Row and total size, each step checked against the file so nothing overflows. */
    uint64_t avail = g->size; /* no tensor can be larger than the file */
    uint64_t blocks = (uint64_t)(t->ne[0] / tr->blck_size);
    size_t row = 0;
    bool too_big = blocks > avail / tr->type_size;
    if (!too_big && !ig_type_row_size(t->type, t->ne[0], &row)) too_big = true;
    uint64_t nbytes = row;
    for (int d = 1; d < IG_GGUF_MAX_DIMS && !too_big; d++) {
        uint64_t ne = (uint64_t)t->ne[d];
        if (ne != 0 && nbytes > avail / ne)
            too_big = true;
        else
            nbytes *= ne;
    }
    if (n_elems == 0) {
        too_big = false;
        nbytes = 0;
    }
    if (t->offset % g->alignment != 0)
        return ig_errorf(err, IG_EFORMAT,
                         "gguf: tensor '%s': offset %llu is not a multiple of the alignment %u", nm,
                         (unsigned long long)t->offset, g->alignment);
    uint64_t data_len = g->data_start <= g->size ? g->size - g->data_start : 0;
    if (too_big || g->data_start > g->size || t->offset > data_len ||
        nbytes > data_len - t->offset) {
        if (t->offset > data_len)
            return ig_errorf(err, IG_EFORMAT,
                             "gguf: tensor '%s': offset %llu past end of file (data section at "
                             "byte %llu, size %zu)",
                             nm, (unsigned long long)t->offset, (unsigned long long)g->data_start,
                             g->size);
        if (too_big)
            return ig_errorf(err, IG_EFORMAT,
                             "gguf: tensor '%s': shape [%lld, %lld, %lld, %lld] of type %s is "
                             "larger than the file (size %zu)",
                             nm, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2],
                             (long long)t->ne[3], tr->name, g->size);
        return ig_errorf(err, IG_EFORMAT,
                         "gguf: tensor '%s': data [%llu, %llu) past end of file (size %zu)", nm,
                         (unsigned long long)(g->data_start + t->offset),
                         (unsigned long long)(g->data_start + t->offset + nbytes), g->size);
    }
    t->nbytes = (size_t)nbytes;
    t->data = g->base + g->data_start + t->offset;
    return IG_OK;
}

/* ---- open/free ----------------------------------------------------------- */

static ig_status parse(ig_gguf *g, ig_error *err) {
    ig_status st;
    uint64_t n_tensors = 0, n_kv = 0;
    parser p = {.buf = g->base, .size = g->size, .err = err, .idx = -1};
    if ((st = parse_header(&p, g, &n_tensors, &n_kv)) != IG_OK) return st;
    if ((st = parse_kvs(&p, g, n_kv)) != IG_OK) return st;
    if ((st = parse_alignment(&p, g)) != IG_OK) return st;
    if ((st = parse_tensor_infos(&p, g, n_tensors)) != IG_OK) return st;
    uint64_t a = g->alignment;
    g->data_start = ((uint64_t)p.pos + a - 1) / a * a;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        if ((st = check_tensor(g, i, err)) != IG_OK) return st;
    }
    if ((st = build_kv_index(g, err)) != IG_OK) return st;
    if ((st = build_tensor_index(g, err)) != IG_OK) return st;
    return IG_OK;
}

void ig_gguf_free(ig_gguf *g) {
    if (!g) return;
    free(g->tensor_sorted);
    free(g->tensors);
    free(g->kv_sorted);
    for (int64_t i = 0; i < g->n_kv; i++) free_value(&g->kvs[i].value);
    free(g->kvs);
    if (g->map) munmap(g->map, g->size);
    free(g);
}

void ig_gguf_release(const ig_gguf *g, const void *p, size_t len) {
    if (!g || !g->map || !p) return;
    const uintptr_t lo = (uintptr_t)p, base = (uintptr_t)g->base;
    if (lo < base || len > g->size || lo - base > g->size - len) return;
    const long page_l = sysconf(_SC_PAGESIZE);
    const uintptr_t page = page_l > 0 ? (uintptr_t)page_l : 4096;
    const uintptr_t a = (lo + page - 1) & ~(page - 1), b = (lo + len) & ~(page - 1);
    if (b > a) (void)madvise((void *)a, b - a, MADV_DONTNEED); /* only a hint */
}

ig_status ig_gguf_open_memory(const void *data, size_t len, ig_gguf **out, ig_error *err) {
    if (!out || (!data && len > 0))
        return ig_errorf(err, IG_EINVAL, "gguf: open_memory: NULL argument");
    ig_gguf *g = calloc(1, sizeof *g);
    if (!g) return ig_errorf(err, IG_ENOMEM, "gguf: out of memory");
    g->base = data;
    g->size = len;
    ig_status st = parse(g, err);
    if (st != IG_OK) goto fail;
    *out = g;
    return IG_OK;
fail:
    ig_gguf_free(g);
    return st;
}

ig_status ig_gguf_open(const char *path, ig_gguf **out, ig_error *err) {
    ig_status st = IG_OK;
    ig_gguf *g = NULL;
    void *map = NULL;
    struct stat sb;
    if (!path || !out) return ig_errorf(err, IG_EINVAL, "gguf: open: NULL argument");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        st = ig_errorf(err, errno == ENOENT ? IG_ENOTFOUND : IG_EIO, "gguf: cannot open '%s': %s",
                       path, strerror(errno));
        goto done;
    }
    if (fstat(fd, &sb) != 0) {
        st = ig_errorf(err, IG_EIO, "gguf: cannot stat '%s': %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = ig_errorf(err, IG_EIO, "gguf: '%s' is not a regular file", path);
        goto done;
    }
    if (sb.st_size == 0) {
        st = ig_errorf(err, IG_EFORMAT, "gguf: '%s' is empty", path);
        goto done;
    }
    map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        map = NULL;
        st = ig_errorf(err, IG_EIO, "gguf: cannot map '%s': %s", path, strerror(errno));
        goto done;
    }
    g = calloc(1, sizeof *g);
    if (!g) {
        st = ig_errorf(err, IG_ENOMEM, "gguf: out of memory");
        goto done;
    }
    g->base = map;
    g->size = (size_t)sb.st_size;
    g->map = map;
    map = NULL; /* g owns it now */
    st = parse(g, err);
done:
    if (st != IG_OK) {
        ig_gguf_free(g);
        g = NULL;
    }
    if (map) munmap(map, (size_t)sb.st_size);
    if (fd >= 0) close(fd);
    if (st == IG_OK) *out = g;
    return st;
}

/* ---- accessors ----------------------------------------------------------- */

uint32_t ig_gguf_version(const ig_gguf *g) {
    return g->version;
}
uint32_t ig_gguf_alignment(const ig_gguf *g) {
    return g->alignment;
}
size_t ig_gguf_file_size(const ig_gguf *g) {
    return g->size;
}
int64_t ig_gguf_n_kv(const ig_gguf *g) {
    return g->n_kv;
}
int64_t ig_gguf_n_tensors(const ig_gguf *g) {
    return g->n_tensors;
}

const ig_gguf_kv *ig_gguf_kv_at(const ig_gguf *g, int64_t i) {
    return (i >= 0 && i < g->n_kv) ? &g->kvs[i] : NULL;
}

const ig_gguf_tensor *ig_gguf_tensor_at(const ig_gguf *g, int64_t i) {
    return (i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

const ig_gguf_value *ig_gguf_find(const ig_gguf *g, const char *key) {
    ig_str k = {key, strlen(key)};
    int64_t lo = 0, hi = g->n_kv;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = cmp_str(g->kv_sorted[mid]->key, k);
        if (c == 0) return &g->kv_sorted[mid]->value;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const ig_gguf_tensor *ig_gguf_find_tensor(const ig_gguf *g, const char *name) {
    ig_str k = {name, strlen(name)};
    int64_t lo = 0, hi = g->n_tensors;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = cmp_str(g->tensor_sorted[mid]->name, k);
        if (c == 0) return g->tensor_sorted[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* The value of an integer-typed v as a sign and magnitude; false if not an integer. */
static bool int_value(const ig_gguf_value *v, bool *neg, uint64_t *mag) {
    if (!is_int_type(v->type)) return false;
    if (is_signed_type(v->type) && v->v.i64 < 0) {
        *neg = true;
        *mag = (uint64_t)(-(v->v.i64 + 1)) + 1;
    } else {
        *neg = false;
        *mag = is_signed_type(v->type) ? (uint64_t)v->v.i64 : v->v.u64;
    }
    return true;
}

static ig_status lookup(const ig_gguf *g, const char *key, const ig_gguf_value **v) {
    *v = ig_gguf_find(g, key);
    return *v ? IG_OK : IG_ENOTFOUND;
}

ig_status ig_gguf_get_u32(const ig_gguf *g, const char *key, uint32_t *out) {
    const ig_gguf_value *v;
    bool neg;
    uint64_t mag;
    if (lookup(g, key, &v) != IG_OK) return IG_ENOTFOUND;
    if (!int_value(v, &neg, &mag) || neg || mag > UINT32_MAX) return IG_ETYPE;
    *out = (uint32_t)mag;
    return IG_OK;
}

ig_status ig_gguf_get_i64(const ig_gguf *g, const char *key, int64_t *out) {
    const ig_gguf_value *v;
    bool neg;
    uint64_t mag;
    if (lookup(g, key, &v) != IG_OK) return IG_ENOTFOUND;
    if (!int_value(v, &neg, &mag)) return IG_ETYPE;
    if (neg) {
        *out = v->v.i64;
        return IG_OK;
    }
    if (mag > INT64_MAX) return IG_ETYPE;
    *out = (int64_t)mag;
    return IG_OK;
}

ig_status ig_gguf_get_f32(const ig_gguf *g, const char *key, float *out) {
    const ig_gguf_value *v;
    if (lookup(g, key, &v) != IG_OK) return IG_ENOTFOUND;
    if (v->type != IG_GGUF_FLOAT32 && v->type != IG_GGUF_FLOAT64) return IG_ETYPE;
    double d = v->v.f64;
    if (isfinite(d) && (d > FLT_MAX || d < -FLT_MAX)) return IG_ETYPE; /* does not fit */
    *out = (float)d;
    return IG_OK;
}

ig_status ig_gguf_get_bool(const ig_gguf *g, const char *key, bool *out) {
    const ig_gguf_value *v;
    if (lookup(g, key, &v) != IG_OK) return IG_ENOTFOUND;
    if (v->type != IG_GGUF_BOOL) return IG_ETYPE;
    *out = v->v.b;
    return IG_OK;
}

ig_status ig_gguf_get_str(const ig_gguf *g, const char *key, ig_str *out) {
    const ig_gguf_value *v;
    if (lookup(g, key, &v) != IG_OK) return IG_ENOTFOUND;
    if (v->type != IG_GGUF_STRING) return IG_ETYPE;
    *out = v->v.str;
    return IG_OK;
}

ig_status ig_gguf_get_arr(const ig_gguf *g, const char *key, const ig_gguf_value **out) {
    const ig_gguf_value *v;
    if (lookup(g, key, &v) != IG_OK) return IG_ENOTFOUND;
    if (v->type != IG_GGUF_ARRAY) return IG_ETYPE;
    *out = v;
    return IG_OK;
}

/* Decode element i of a numeric/bool array into a scalar value. */
static void arr_elem(const ig_gguf_value *arr, uint64_t i, ig_gguf_value *e) {
    IG_ASSERT(arr && arr->type == IG_GGUF_ARRAY);
    ig_gguf_type t = arr->v.arr.elem_type;
    size_t sz = scalar_size(t);
    IG_ASSERT(sz > 0 && i < arr->v.arr.n);
    decode_scalar(t, arr->v.arr.raw + i * sz, e);
}

int64_t ig_gguf_arr_i64(const ig_gguf_value *arr, uint64_t i) {
    ig_gguf_value e;
    arr_elem(arr, i, &e);
    IG_ASSERT(is_int_type(e.type) || e.type == IG_GGUF_BOOL);
    if (e.type == IG_GGUF_BOOL) return e.v.b;
    return is_signed_type(e.type) ? e.v.i64 : (int64_t)e.v.u64;
}

double ig_gguf_arr_f64(const ig_gguf_value *arr, uint64_t i) {
    ig_gguf_value e;
    arr_elem(arr, i, &e);
    if (e.type == IG_GGUF_FLOAT32 || e.type == IG_GGUF_FLOAT64) return e.v.f64;
    IG_ASSERT(is_int_type(e.type));
    return is_signed_type(e.type) ? (double)e.v.i64 : (double)e.v.u64;
}

const char *ig_gguf_type_name(ig_gguf_type t) {
    switch (t) {
    case IG_GGUF_UINT8:
        return "uint8";
    case IG_GGUF_INT8:
        return "int8";
    case IG_GGUF_UINT16:
        return "uint16";
    case IG_GGUF_INT16:
        return "int16";
    case IG_GGUF_UINT32:
        return "uint32";
    case IG_GGUF_INT32:
        return "int32";
    case IG_GGUF_FLOAT32:
        return "float32";
    case IG_GGUF_BOOL:
        return "bool";
    case IG_GGUF_STRING:
        return "string";
    case IG_GGUF_ARRAY:
        return "array";
    case IG_GGUF_UINT64:
        return "uint64";
    case IG_GGUF_INT64:
        return "int64";
    case IG_GGUF_FLOAT64:
        return "float64";
    case IG_GGUF_TYPE_COUNT:
        break;
    }
    return "unknown";
}

bool ig_str_eq(ig_str s, const char *cstr) {
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}
