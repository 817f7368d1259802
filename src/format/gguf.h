/*
 * gguf.h: a validating GGUF (v2, v3) reader over a read-only memory map.
 *
 * Model of use
 * ------------
 * ig_gguf_open() maps a file, parses the header, every metadata key/value and
 * every tensor info, and validates each count, length, offset and size against
 * the file before anything is used. After a successful open every accessor is
 * safe: strings and tensor data point into the mapping and stay valid until
 * ig_gguf_free(). A truncated, corrupt or hostile file fails the open with
 * IG_EFORMAT (or IG_EUNSUPPORTED for a version or type we do not know) and a
 * message naming what is wrong and where; it never crashes.
 *
 * A parsed file is immutable, so it may be shared by any number of threads.
 *
 * Strings are not NUL-terminated (ig_str); they may contain any bytes.
 */
#ifndef IG_FORMAT_GGUF_H
#define IG_FORMAT_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ignis.h"

typedef enum ig_gguf_type {
    IG_GGUF_UINT8 = 0,
    IG_GGUF_INT8 = 1,
    IG_GGUF_UINT16 = 2,
    IG_GGUF_INT16 = 3,
    IG_GGUF_UINT32 = 4,
    IG_GGUF_INT32 = 5,
    IG_GGUF_FLOAT32 = 6,
    IG_GGUF_BOOL = 7,
    IG_GGUF_STRING = 8,
    IG_GGUF_ARRAY = 9,
    IG_GGUF_UINT64 = 10,
    IG_GGUF_INT64 = 11,
    IG_GGUF_FLOAT64 = 12,
    IG_GGUF_TYPE_COUNT
} ig_gguf_type;

typedef struct ig_str {
    const char *ptr; /* into the mapping; not NUL-terminated */
    uint64_t len;    /* bytes */
} ig_str;

/*
 * A metadata value. Scalars are decoded into the union. Arrays keep their
 * element type and count; numeric and bool elements are read with
 * ig_gguf_arr_*() (the raw data may be unaligned), string and array elements
 * are decoded into `items`.
 */
typedef struct ig_gguf_value {
    ig_gguf_type type;
    union {
        uint64_t u64; /* UINT8/16/32/64 */
        int64_t i64;  /* INT8/16/32/64 */
        double f64;   /* FLOAT32/64 */
        bool b;       /* BOOL */
        ig_str str;   /* STRING */
        struct {
            ig_gguf_type elem_type;
            uint64_t n;                  /* element count */
            const uint8_t *raw;          /* first element in the file; numeric/bool elements
                                            are packed little-endian there */
            struct ig_gguf_value *items; /* STRING/ARRAY elements (n of them), else NULL */
        } arr;
    } v;
} ig_gguf_value;

typedef struct ig_gguf_kv {
    ig_str key;
    ig_gguf_value value;
} ig_gguf_kv;

#define IG_GGUF_MAX_DIMS 4

typedef struct ig_gguf_tensor {
    ig_str name;
    uint32_t n_dims;
    int64_t ne[IG_GGUF_MAX_DIMS]; /* elements per dim, ne[0] fastest; unused dims are 1 */
    uint32_t type;                /* ig_type id */
    uint64_t offset;              /* relative to the data section */
    const void *data;             /* into the mapping (aligned as the file says) */
    size_t nbytes;                /* validated to lie inside the file */
} ig_gguf_tensor;

typedef struct ig_gguf ig_gguf;

/*
 * Map and parse a file. On success *out owns the mapping; free with
 * ig_gguf_free. Errors (nothing is returned, nothing stays mapped):
 *   IG_ENOTFOUND     the file does not exist
 *   IG_EIO           it cannot be opened, is not a regular file, or cannot be mapped
 *   IG_EFORMAT       bad magic, truncation, a count/length/shape/offset that does
 *                    not fit the file, an unknown metadata value type, arrays
 *                    nested deeper than 16, general.alignment not a uint32 power
 *                    of two, a misaligned tensor offset, duplicate keys or names
 *   IG_EUNSUPPORTED  a version other than 2 or 3, a big-endian file, or a
 *                    tensor type id Ignis has no row for (tensor/types.h)
 *   IG_ENOMEM        allocation failed (allocations are bounded by a small
 *                    multiple of the file size, whatever its counts claim)
 * The message names the byte offset and the key or tensor involved.
 */
ig_status ig_gguf_open(const char *path, ig_gguf **out, ig_error *err);

/*
 * Parse a GGUF image already in memory (for fuzzing and tests). Borrows
 * `data`, which must outlive the returned handle. Errors as ig_gguf_open,
 * plus IG_EINVAL for a NULL `out` or a NULL `data` with len > 0.
 */
ig_status ig_gguf_open_memory(const void *data, size_t len, ig_gguf **out, ig_error *err);

/* Release the handle and its mapping (NULL is fine). Borrowed pointers die with it. */
void ig_gguf_free(ig_gguf *g);

/*
 * A hint that bytes [p, p + len) of g's data will not be read again soon
 * (the model loader repacked them into memory of its own): for a mapped
 * file, the whole pages inside the range leave the process's resident
 * memory; reading them later still works (they come back from the file).
 * No-op for ig_gguf_open_memory images and ranges outside the file.
 */
void ig_gguf_release(const ig_gguf *g, const void *p, size_t len);

uint32_t ig_gguf_version(const ig_gguf *g);
uint32_t ig_gguf_alignment(const ig_gguf *g);
size_t ig_gguf_file_size(const ig_gguf *g);

/* Metadata, in file order. ig_gguf_kv_at returns NULL when i is out of range. */
int64_t ig_gguf_n_kv(const ig_gguf *g);
const ig_gguf_kv *ig_gguf_kv_at(const ig_gguf *g, int64_t i);
/* The value under `key` (NUL-terminated), or NULL if absent. O(log n_kv). */
const ig_gguf_value *ig_gguf_find(const ig_gguf *g, const char *key);

/*
 * Typed getters. Return IG_OK and write *out; IG_ENOTFOUND if the key is
 * absent; IG_ETYPE if present with an incompatible type or a value that does
 * not fit (integer getters accept any integer type whose value fits).
 */
ig_status ig_gguf_get_u32(const ig_gguf *g, const char *key, uint32_t *out);
ig_status ig_gguf_get_i64(const ig_gguf *g, const char *key, int64_t *out);
ig_status ig_gguf_get_f32(const ig_gguf *g, const char *key, float *out); /* FLOAT32/64 */
ig_status ig_gguf_get_bool(const ig_gguf *g, const char *key, bool *out);
ig_status ig_gguf_get_str(const ig_gguf *g, const char *key, ig_str *out);
/* An array value under `key` (IG_ETYPE if not an array). */
ig_status ig_gguf_get_arr(const ig_gguf *g, const char *key, const ig_gguf_value **out);

/*
 * Element i of a numeric/bool array. The value must be an array of that kind
 * and i < n: check arr->v.arr.elem_type first; a violation is a caller bug
 * and trips IG_ASSERT.
 */
int64_t ig_gguf_arr_i64(const ig_gguf_value *arr, uint64_t i); /* any integer or bool type */
double ig_gguf_arr_f64(const ig_gguf_value *arr, uint64_t i);  /* FLOAT32/64 or integer */

/* Tensors, in file order (NULL when i is out of range); find is O(log n_tensors). */
int64_t ig_gguf_n_tensors(const ig_gguf *g);
const ig_gguf_tensor *ig_gguf_tensor_at(const ig_gguf *g, int64_t i);
const ig_gguf_tensor *ig_gguf_find_tensor(const ig_gguf *g, const char *name);

/* Human-readable name of a metadata type ("uint32", "array", ...). */
const char *ig_gguf_type_name(ig_gguf_type t);

/* Compare an ig_str with a NUL-terminated string. */
bool ig_str_eq(ig_str s, const char *cstr);

#endif
