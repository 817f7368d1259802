/*
 * gguf_writer.h: writes GGUF v3 files, streaming tensor data to disk.
 *
 * Model of use
 * ------------
 * 1. ig_gguf_writer_new(), then add metadata (ig_gguf_writer_add_value or the
 *    typed helpers) and tensor infos (ig_gguf_writer_add_tensor), in the order
 *    they are to appear in the file.
 * 2. ig_gguf_writer_open(path) lays out the data section (each tensor at a
 *    multiple of the alignment: 32, or a uint32 "general.alignment" added as
 *    metadata) and writes the header, metadata and tensor infos. After it,
 *    nothing more can be added.
 * 3. ig_gguf_writer_write(idx, offset, bytes) puts bytes of tensor idx at
 *    `offset` within that tensor, in any order and from any number of threads
 *    at once (positioned writes; callers must not write a byte twice). The
 *    model is never held in memory: a generator quantizes a few rows, writes
 *    them, and reuses its buffer.
 * 4. ig_gguf_writer_close() checks that exactly every tensor byte was written,
 *    sizes the file (padding reads as zeros) and closes it.
 * ig_gguf_writer_free() releases the writer; a file opened but not closed
 * successfully is removed, so a failed run leaves no half-written model.
 *
 * Threads: steps 1, 2 and 4 belong to one thread; step 3 may run on many.
 *
 * Errors: IG_EINVAL for misuse or bad arguments (a duplicate key or tensor
 * name, an empty key, a tensor name of 64 bytes or more, a shape whose first
 * dimension is not a whole number of blocks, an unknown type id, adding after
 * open, writing outside a tensor, closing with bytes missing); IG_EIO when
 * the file cannot be created or written; IG_ENOMEM. The message names the
 * key, tensor or path.
 */
#ifndef IG_FORMAT_GGUF_WRITER_H
#define IG_FORMAT_GGUF_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/gguf.h"
#include "ignis.h"

typedef struct ig_gguf_writer ig_gguf_writer;

ig_status ig_gguf_writer_new(ig_gguf_writer **out, ig_error *err);

/* Release the writer (NULL is fine); removes the file if it was opened but not closed. */
void ig_gguf_writer_free(ig_gguf_writer *w);

/*
 * Add a metadata key (NUL-terminated) with a value shaped like the reader's
 * (gguf.h): scalars from the union (unsigned types from u64, signed from i64,
 * FLOAT32/64 from f64, truncated to the type's width), strings from str,
 * arrays from elem_type/n and either raw (numeric and bool elements, packed
 * little-endian) or items (STRING/ARRAY elements). A value read from a file
 * with ig_gguf_find() can be passed straight through. The value is copied.
 */
ig_status ig_gguf_writer_add_value(ig_gguf_writer *w, const char *key, const ig_gguf_value *v,
                                   ig_error *err);
ig_status ig_gguf_writer_add_u32(ig_gguf_writer *w, const char *key, uint32_t v, ig_error *err);
ig_status ig_gguf_writer_add_f32(ig_gguf_writer *w, const char *key, float v, ig_error *err);
ig_status ig_gguf_writer_add_bool(ig_gguf_writer *w, const char *key, bool v, ig_error *err);
ig_status ig_gguf_writer_add_str(ig_gguf_writer *w, const char *key, const char *v, ig_error *err);

/*
 * Declare a tensor: n_dims (1..4) dimensions, ne[0] fastest, of ig_type
 * `type`. Its index (0, 1, ... in the order added) goes to *idx if not NULL.
 */
ig_status ig_gguf_writer_add_tensor(ig_gguf_writer *w, const char *name, uint32_t n_dims,
                                    const int64_t *ne, uint32_t type, int64_t *idx, ig_error *err);

/* Bytes of tensor idx's data (0 for an index out of range). */
uint64_t ig_gguf_writer_tensor_nbytes(const ig_gguf_writer *w, int64_t idx);

/* Create (or truncate) the file and write everything but the tensor data. */
ig_status ig_gguf_writer_open(ig_gguf_writer *w, const char *path, ig_error *err);

/* Write len bytes of tensor idx at byte `offset` of that tensor. Thread-safe. */
ig_status ig_gguf_writer_write(ig_gguf_writer *w, int64_t idx, uint64_t offset, const void *data,
                               size_t len, ig_error *err);

/* Finish the file: every tensor byte must have been written. */
ig_status ig_gguf_writer_close(ig_gguf_writer *w, ig_error *err);

#endif
