/*
 * gguf_writer.c: the GGUF v3 writer (see gguf_writer.h; the layout is
 * described at the top of gguf.c).
 *
 * Metadata is serialised into a byte buffer as it is added, so a value
 * borrowed from a reader (strings pointing into its mapping) need not outlive
 * the call. Tensor infos are kept as a list; their offsets are assigned at
 * open time, when the alignment is final. Tensor data goes straight to the
 * file with pwrite(), so any number of threads can each write the rows they
 * produced; a running byte count (atomic) lets close() check that every byte
 * arrived. The bytes between tensors are never written: the file is sized
 * with ftruncate() at close and those holes read as zeros.
 */
#include "format/gguf_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/error.h"
#include "tensor/types.h"

#define WRITER_DEFAULT_ALIGNMENT 32u
#define WRITER_MAX_NAME          63 /* GGML keeps tensor names in 64-byte buffers */
#define WRITER_MAX_DEPTH         16 /* as the reader */

typedef struct {
    uint8_t *data;
    size_t len, cap;
} bytes;

typedef struct {
    char *name;
    uint32_t n_dims;
    int64_t ne[IG_GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t nbytes; /* data bytes */
    uint64_t offset; /* within the data section; set at open */
} tensor_info;

struct ig_gguf_writer {
    bytes kv;    /* serialised metadata */
    char **keys; /* [n_kv] copies, for duplicate detection */
    int64_t n_kv;
    tensor_info *tensors; /* [n_tensors] */
    int64_t n_tensors, cap_tensors;
    uint32_t alignment;         /* bytes, power of two */
    int fd;                     /* -1 until open */
    char *path;                 /* set at open; removed by free unless closed */
    uint64_t data_start;        /* file offset of the data section */
    uint64_t data_size;         /* bytes of the data section (padded) */
    uint64_t want_bytes;        /* sum of nbytes over tensors */
    _Atomic uint64_t n_written; /* tensor bytes written so far */
    bool is_closed;
};

static ig_status put(bytes *b, const void *src, size_t n) {
    if (n == 0) return IG_OK; /* src may be NULL then (an empty buffer) */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n) cap *= 2;
        uint8_t *nd = realloc(b->data, cap);
        if (!nd) return IG_ENOMEM;
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return IG_OK;
}

/* Little-endian helpers (the target is little-endian; gguf.c refuses big-endian files). */
static ig_status put_u32(bytes *b, uint32_t v) {
    return put(b, &v, 4);
}
static ig_status put_u64(bytes *b, uint64_t v) {
    return put(b, &v, 8);
}
static ig_status put_str(bytes *b, const char *s, uint64_t len) {
    ig_status st = put_u64(b, len);
    return st ? st : put(b, s, (size_t)len);
}

/* Bytes of one numeric/bool element; 0 for STRING/ARRAY and unknown types. */
static size_t scalar_size(ig_gguf_type t) {
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

/* Serialise a value (without its type tag, which the caller wrote). */
static ig_status put_value(bytes *b, const ig_gguf_value *v, int depth, const char *key,
                           ig_error *err) {
    ig_status st = IG_OK;
    switch (v->type) {
    case IG_GGUF_UINT8: {
        uint8_t x = (uint8_t)v->v.u64;
        st = put(b, &x, 1);
        break;
    }
    case IG_GGUF_INT8: {
        int8_t x = (int8_t)v->v.i64;
        st = put(b, &x, 1);
        break;
    }
    case IG_GGUF_UINT16: {
        uint16_t x = (uint16_t)v->v.u64;
        st = put(b, &x, 2);
        break;
    }
    case IG_GGUF_INT16: {
        int16_t x = (int16_t)v->v.i64;
        st = put(b, &x, 2);
        break;
    }
    case IG_GGUF_UINT32:
        st = put_u32(b, (uint32_t)v->v.u64);
        break;
    case IG_GGUF_INT32: {
        int32_t x = (int32_t)v->v.i64;
        st = put(b, &x, 4);
        break;
    }
    case IG_GGUF_FLOAT32: {
        float x = (float)v->v.f64;
        st = put(b, &x, 4);
        break;
    }
    case IG_GGUF_BOOL: {
        uint8_t x = v->v.b ? 1 : 0;
        st = put(b, &x, 1);
        break;
    }
    case IG_GGUF_STRING:
        if (!v->v.str.ptr && v->v.str.len)
            return ig_errorf(err, IG_EINVAL, "gguf writer: key '%s': NULL string", key);
        st = put_str(b, v->v.str.ptr, v->v.str.len);
        break;
    case IG_GGUF_UINT64:
        st = put_u64(b, v->v.u64);
        break;
    case IG_GGUF_INT64:
        st = put(b, &v->v.i64, 8);
        break;
    case IG_GGUF_FLOAT64:
        st = put(b, &v->v.f64, 8);
        break;
    case IG_GGUF_ARRAY: {
        ig_gguf_type et = v->v.arr.elem_type;
        if (depth >= WRITER_MAX_DEPTH)
            return ig_errorf(err, IG_EINVAL, "gguf writer: key '%s': arrays nested too deep", key);
        if ((unsigned)et >= IG_GGUF_TYPE_COUNT)
            return ig_errorf(err, IG_EINVAL, "gguf writer: key '%s': bad array element type %d",
                             key, (int)et);
        if ((st = put_u32(b, (uint32_t)et)) || (st = put_u64(b, v->v.arr.n))) break;
        size_t es = scalar_size(et);
        if (es) {
            if (v->v.arr.n && !v->v.arr.raw)
                return ig_errorf(err, IG_EINVAL, "gguf writer: key '%s': array without data", key);
            if (v->v.arr.n > SIZE_MAX / es)
                return ig_errorf(err, IG_EINVAL, "gguf writer: key '%s': array too long", key);
            st = put(b, v->v.arr.raw, (size_t)v->v.arr.n * es);
        } else {
            if (v->v.arr.n && !v->v.arr.items)
                return ig_errorf(err, IG_EINVAL, "gguf writer: key '%s': array without items", key);
            for (uint64_t i = 0; i < v->v.arr.n && !st; i++) {
                if (v->v.arr.items[i].type != et)
                    return ig_errorf(
                        err, IG_EINVAL,
                        "gguf writer: key '%s': element %llu is not of the array's type", key,
                        (unsigned long long)i);
                /* elements carry no type tag; a nested array writes its own type and count */
                st = put_value(b, &v->v.arr.items[i], depth + 1, key, err);
            }
        }
        break;
    }
    default:
        return ig_errorf(err, IG_EINVAL, "gguf writer: key '%s': unknown value type %d", key,
                         (int)v->type);
    }
    if (st == IG_ENOMEM) return ig_errorf(err, IG_ENOMEM, "gguf writer: out of memory");
    return st;
}

ig_status ig_gguf_writer_new(ig_gguf_writer **out, ig_error *err) {
    if (!out) return ig_errorf(err, IG_EINVAL, "gguf writer: NULL out");
    ig_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return ig_errorf(err, IG_ENOMEM, "gguf writer: out of memory");
    w->alignment = WRITER_DEFAULT_ALIGNMENT;
    w->fd = -1;
    atomic_init(&w->n_written, 0);
    *out = w;
    return IG_OK;
}

void ig_gguf_writer_free(ig_gguf_writer *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (w->path && !w->is_closed) unlink(w->path);
    free(w->path);
    for (int64_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    free(w->keys);
    for (int64_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    free(w->kv.data);
    free(w);
}

static ig_status check_adding(const ig_gguf_writer *w, ig_error *err) {
    if (w->fd >= 0 || w->path)
        return ig_errorf(err, IG_EINVAL, "gguf writer: cannot add after the file is opened");
    return IG_OK;
}

ig_status ig_gguf_writer_add_value(ig_gguf_writer *w, const char *key, const ig_gguf_value *v,
                                   ig_error *err) {
    ig_status st;
    if (!w || !key || !v) return ig_errorf(err, IG_EINVAL, "gguf writer: NULL argument");
    if ((st = check_adding(w, err))) return st;
    if (!key[0]) return ig_errorf(err, IG_EINVAL, "gguf writer: empty key");
    for (int64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key))
            return ig_errorf(err, IG_EINVAL, "gguf writer: duplicate key '%s'", key);
    uint32_t align = w->alignment;
    if (!strcmp(key, "general.alignment")) {
        if (v->type != IG_GGUF_UINT32 || v->v.u64 == 0 || v->v.u64 > UINT32_MAX ||
            (v->v.u64 & (v->v.u64 - 1)))
            return ig_errorf(err, IG_EINVAL,
                             "gguf writer: general.alignment must be a uint32 power of two");
        align = (uint32_t)v->v.u64;
    }
    char **keys = realloc(w->keys, (size_t)(w->n_kv + 1) * sizeof *keys);
    if (!keys) return ig_errorf(err, IG_ENOMEM, "gguf writer: out of memory");
    w->keys = keys;
    char *copy = strdup(key);
    if (!copy) return ig_errorf(err, IG_ENOMEM, "gguf writer: out of memory");
    size_t mark = w->kv.len;
    if ((st = put_str(&w->kv, key, strlen(key))) || (st = put_u32(&w->kv, (uint32_t)v->type)) ||
        (st = put_value(&w->kv, v, 0, key, err))) {
        w->kv.len = mark; /* drop the partial entry */
        free(copy);
        if (st == IG_ENOMEM) return ig_errorf(err, IG_ENOMEM, "gguf writer: out of memory");
        return st;
    }
    w->keys[w->n_kv++] = copy;
    w->alignment = align;
    return IG_OK;
}

ig_status ig_gguf_writer_add_u32(ig_gguf_writer *w, const char *key, uint32_t v, ig_error *err) {
    ig_gguf_value val = {.type = IG_GGUF_UINT32, .v.u64 = v};
    return ig_gguf_writer_add_value(w, key, &val, err);
}

ig_status ig_gguf_writer_add_f32(ig_gguf_writer *w, const char *key, float v, ig_error *err) {
    ig_gguf_value val = {.type = IG_GGUF_FLOAT32, .v.f64 = v};
    return ig_gguf_writer_add_value(w, key, &val, err);
}

ig_status ig_gguf_writer_add_bool(ig_gguf_writer *w, const char *key, bool v, ig_error *err) {
    ig_gguf_value val = {.type = IG_GGUF_BOOL, .v.b = v};
    return ig_gguf_writer_add_value(w, key, &val, err);
}

ig_status ig_gguf_writer_add_str(ig_gguf_writer *w, const char *key, const char *v, ig_error *err) {
    if (!v) return ig_errorf(err, IG_EINVAL, "gguf writer: key '%s': NULL string", key ? key : "");
    ig_gguf_value val = {.type = IG_GGUF_STRING, .v.str = {v, strlen(v)}};
    return ig_gguf_writer_add_value(w, key, &val, err);
}

ig_status ig_gguf_writer_add_tensor(ig_gguf_writer *w, const char *name, uint32_t n_dims,
                                    const int64_t *ne, uint32_t type, int64_t *idx, ig_error *err) {
    ig_status st;
    if (!w || !name || !ne) return ig_errorf(err, IG_EINVAL, "gguf writer: NULL argument");
    if ((st = check_adding(w, err))) return st;
    size_t name_len = strlen(name);
    if (name_len == 0 || name_len > WRITER_MAX_NAME)
        return ig_errorf(err, IG_EINVAL, "gguf writer: tensor name '%s' must be 1..%d bytes", name,
                         WRITER_MAX_NAME);
    if (n_dims < 1 || n_dims > IG_GGUF_MAX_DIMS)
        return ig_errorf(err, IG_EINVAL, "gguf writer: tensor '%s': %u dimensions", name, n_dims);
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name))
            return ig_errorf(err, IG_EINVAL, "gguf writer: duplicate tensor '%s'", name);
    const ig_type_traits *tr = ig_type_get(type);
    if (!tr)
        return ig_errorf(err, IG_EINVAL, "gguf writer: tensor '%s': unknown type %u", name, type);
    tensor_info t = {.n_dims = n_dims, .type = type};
    uint64_t rows = 1;
    for (uint32_t d = 0; d < IG_GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] <= 0 || t.ne[d] > (INT64_C(1) << 40))
            return ig_errorf(err, IG_EINVAL, "gguf writer: tensor '%s': bad dimension %u (%lld)",
                             name, d, (long long)t.ne[d]);
        if (d > 0) {
            if (rows > (UINT64_C(1) << 50) / (uint64_t)t.ne[d])
                return ig_errorf(err, IG_EINVAL, "gguf writer: tensor '%s' is too large", name);
            rows *= (uint64_t)t.ne[d];
        }
    }
    size_t row_bytes;
    if (!ig_type_row_size(type, t.ne[0], &row_bytes))
        return ig_errorf(err, IG_EINVAL,
                         "gguf writer: tensor '%s': %lld values per row is not a whole number of "
                         "%s blocks (%lld values)",
                         name, (long long)t.ne[0], tr->name, (long long)tr->blck_size);
    if (row_bytes && rows > (UINT64_C(1) << 52) / row_bytes)
        return ig_errorf(err, IG_EINVAL, "gguf writer: tensor '%s' is too large", name);
    t.nbytes = rows * row_bytes;
    if (w->n_tensors == w->cap_tensors) {
        int64_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
        tensor_info *nt = realloc(w->tensors, (size_t)cap * sizeof *nt);
        if (!nt) return ig_errorf(err, IG_ENOMEM, "gguf writer: out of memory");
        w->tensors = nt;
        w->cap_tensors = cap;
    }
    if (!(t.name = strdup(name))) return ig_errorf(err, IG_ENOMEM, "gguf writer: out of memory");
    if (idx) *idx = w->n_tensors;
    w->tensors[w->n_tensors++] = t;
    return IG_OK;
}

uint64_t ig_gguf_writer_tensor_nbytes(const ig_gguf_writer *w, int64_t idx) {
    if (!w || idx < 0 || idx >= w->n_tensors) return 0;
    return w->tensors[idx].nbytes;
}

/* Write all of buf at file offset off. */
static bool pwrite_all(int fd, const void *buf, size_t len, uint64_t off) {
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return true;
}

static uint64_t align_up(uint64_t x, uint64_t a) {
    return (x + a - 1) & ~(a - 1);
}

ig_status ig_gguf_writer_open(ig_gguf_writer *w, const char *path, ig_error *err) {
    ig_status st = IG_OK;
    bytes head = {0};
    if (!w || !path) return ig_errorf(err, IG_EINVAL, "gguf writer: NULL argument");
    if ((st = check_adding(w, err))) return st;

    /* lay out the data section */
    uint64_t off = 0;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        off = align_up(off, w->alignment);
        w->tensors[i].offset = off;
        off += w->tensors[i].nbytes;
        w->want_bytes += w->tensors[i].nbytes;
    }
    w->data_size = align_up(off, w->alignment);

    /* header, metadata, tensor infos, padding */
    static const char magic[4] = {'G', 'G', 'U', 'F'};
    if ((st = put(&head, magic, 4)) || (st = put_u32(&head, 3)) ||
        (st = put_u64(&head, (uint64_t)w->n_tensors)) || (st = put_u64(&head, (uint64_t)w->n_kv)) ||
        (st = put(&head, w->kv.data, w->kv.len)))
        goto nomem;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        const tensor_info *t = &w->tensors[i];
        if ((st = put_str(&head, t->name, strlen(t->name))) || (st = put_u32(&head, t->n_dims)))
            goto nomem;
        for (uint32_t d = 0; d < t->n_dims; d++)
            if ((st = put_u64(&head, (uint64_t)t->ne[d]))) goto nomem;
        if ((st = put_u32(&head, t->type)) || (st = put_u64(&head, t->offset))) goto nomem;
    }
    w->data_start = align_up(head.len, w->alignment);
    static const uint8_t zeros[64] = {0};
    while (head.len < w->data_start)
        if ((st = put(&head, zeros,
                      (size_t)(w->data_start - head.len) > sizeof zeros
                          ? sizeof zeros
                          : (size_t)(w->data_start - head.len))))
            goto nomem;

    if (!(w->path = strdup(path))) goto nomem;
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        st = ig_errorf(err, IG_EIO, "gguf writer: cannot create '%s': %s", path, strerror(errno));
        free(w->path);
        w->path = NULL;
        goto done;
    }
    if (!pwrite_all(w->fd, head.data, head.len, 0)) {
        st = ig_errorf(err, IG_EIO, "gguf writer: cannot write '%s': %s", path, strerror(errno));
        goto done;
    }
    goto done;
nomem:
    st = ig_errorf(err, IG_ENOMEM, "gguf writer: out of memory");
done:
    free(head.data);
    return st;
}

ig_status ig_gguf_writer_write(ig_gguf_writer *w, int64_t idx, uint64_t offset, const void *data,
                               size_t len, ig_error *err) {
    if (!w || (!data && len)) return ig_errorf(err, IG_EINVAL, "gguf writer: NULL argument");
    if (w->fd < 0) return ig_errorf(err, IG_EINVAL, "gguf writer: the file is not open");
    if (idx < 0 || idx >= w->n_tensors)
        return ig_errorf(err, IG_EINVAL, "gguf writer: no tensor %lld", (long long)idx);
    const tensor_info *t = &w->tensors[idx];
    if (offset > t->nbytes || len > t->nbytes - offset)
        return ig_errorf(err, IG_EINVAL,
                         "gguf writer: tensor '%s': bytes [%llu, +%zu) are outside its %llu bytes",
                         t->name, (unsigned long long)offset, len, (unsigned long long)t->nbytes);
    if (!pwrite_all(w->fd, data, len, w->data_start + t->offset + offset))
        return ig_errorf(err, IG_EIO, "gguf writer: cannot write '%s': %s", w->path,
                         strerror(errno));
    atomic_fetch_add(&w->n_written, (uint64_t)len);
    return IG_OK;
}

ig_status ig_gguf_writer_close(ig_gguf_writer *w, ig_error *err) {
    if (!w) return ig_errorf(err, IG_EINVAL, "gguf writer: NULL argument");
    if (w->fd < 0) return ig_errorf(err, IG_EINVAL, "gguf writer: the file is not open");
    uint64_t got = atomic_load(&w->n_written);
    if (got != w->want_bytes)
        return ig_errorf(err, IG_EINVAL,
                         "gguf writer: '%s': %llu of %llu tensor bytes were written", w->path,
                         (unsigned long long)got, (unsigned long long)w->want_bytes);
    int fd = w->fd;
    w->fd = -1;
    bool ok = ftruncate(fd, (off_t)(w->data_start + w->data_size)) == 0;
    int saved = errno;
    if (close(fd) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    if (!ok)
        return ig_errorf(err, IG_EIO, "gguf writer: cannot finish '%s': %s", w->path,
                         strerror(saved));
    w->is_closed = true;
    return IG_OK;
}
