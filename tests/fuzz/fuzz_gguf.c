/*
 * fuzz_gguf.c: libFuzzer driver for the GGUF reader.
 *
 * Any input must either fail to open with a status and a message, or open and
 * then be safe to walk completely: every key, every (nested) array element,
 * every string and every tensor's data. Touching the first and last byte of
 * each string and tensor lets ASan prove the reader's bounds checks.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "format/gguf.h"

static volatile uint8_t sink;

static void touch(const void *p, uint64_t len) {
    if (len == 0) return;
    const volatile uint8_t *b = p;
    sink ^= b[0];
    sink ^= b[len - 1];
}

static void walk_value(const ig_gguf_value *v) {
    switch (v->type) {
    case IG_GGUF_STRING:
        touch(v->v.str.ptr, v->v.str.len);
        break;
    case IG_GGUF_ARRAY:
        if (v->v.arr.elem_type == IG_GGUF_STRING || v->v.arr.elem_type == IG_GGUF_ARRAY) {
            for (uint64_t i = 0; i < v->v.arr.n; i++) walk_value(&v->v.arr.items[i]);
        } else if (v->v.arr.elem_type == IG_GGUF_FLOAT32 || v->v.arr.elem_type == IG_GGUF_FLOAT64) {
            if (v->v.arr.n > 0) {
                sink ^= (uint8_t)ig_gguf_arr_f64(v, 0);
                sink ^= (uint8_t)ig_gguf_arr_f64(v, v->v.arr.n - 1);
            }
        } else if (v->v.arr.n > 0) {
            sink ^= (uint8_t)ig_gguf_arr_i64(v, 0);
            sink ^= (uint8_t)ig_gguf_arr_i64(v, v->v.arr.n - 1);
        }
        break;
    default:
        sink ^= (uint8_t)v->v.u64;
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ig_gguf *g = NULL;
    ig_error err = {0};
    ig_status st = ig_gguf_open_memory(data, size, &g, &err);
    if (st != IG_OK) {
        /* A failure must say why. */
        if (err.code != st || err.message[0] == '\0') __builtin_trap();
        return 0;
    }
    for (int64_t i = 0; i < ig_gguf_n_kv(g); i++) {
        const ig_gguf_kv *kv = ig_gguf_kv_at(g, i);
        touch(kv->key.ptr, kv->key.len);
        walk_value(&kv->value);
        char key[80];
        if (kv->key.len < sizeof key && !memchr(kv->key.ptr, 0, kv->key.len)) {
            memcpy(key, kv->key.ptr, kv->key.len);
            key[kv->key.len] = '\0';
            if (ig_gguf_find(g, key) != &kv->value) __builtin_trap();
        }
    }
    /* Lookup by name must find what iteration sees (for names a C string can spell). */
    for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++) {
        const ig_gguf_tensor *t = ig_gguf_tensor_at(g, i);
        touch(t->name.ptr, t->name.len);
        touch(t->data, t->nbytes);
        char name[80];
        if (t->name.len < sizeof name && !memchr(t->name.ptr, 0, t->name.len)) {
            memcpy(name, t->name.ptr, t->name.len);
            name[t->name.len] = '\0';
            if (ig_gguf_find_tensor(g, name) != t) __builtin_trap();
        }
    }
    uint32_t u32;
    int64_t i64;
    (void)ig_gguf_get_u32(g, "general.alignment", &u32);
    (void)ig_gguf_get_i64(g, "llama.context_length", &i64);
    ig_gguf_free(g);
    return 0;
}
