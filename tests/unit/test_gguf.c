/*
 * test_gguf.c: the GGUF reader against the real files in the test data, a
 * round trip through a tiny in-test writer, and corrupted images (truncations
 * and hand-broken fields) that must fail cleanly with a message.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "tensor/types.h"
#include "testutil.h"

/* ---- a tiny GGUF writer -------------------------------------------------- */

typedef struct wbuf {
    uint8_t *b;
    size_t n, cap;
} wbuf;

static void w_bytes(wbuf *w, const void *p, size_t n) {
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + n) cap *= 2;
        w->b = realloc(w->b, cap);
        cr_assert_not_null(w->b);
        w->cap = cap;
    }
    if (n) memcpy(w->b + w->n, p, n);
    w->n += n;
}
static void w_le(wbuf *w, uint64_t v, int n) {
    uint8_t b[8];
    for (int i = 0; i < n; i++) b[i] = (uint8_t)(v >> (8 * i));
    w_bytes(w, b, (size_t)n);
}
static void w_u8(wbuf *w, uint8_t v) {
    w_le(w, v, 1);
}
static void w_u16(wbuf *w, uint16_t v) {
    w_le(w, v, 2);
}
static void w_u32(wbuf *w, uint32_t v) {
    w_le(w, v, 4);
}
static void w_u64(wbuf *w, uint64_t v) {
    w_le(w, v, 8);
}
static void w_f32(wbuf *w, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    w_u32(w, u);
}
static void w_f64(wbuf *w, double f) {
    uint64_t u;
    memcpy(&u, &f, 8);
    w_u64(w, u);
}
static void w_str(wbuf *w, const char *s) {
    w_u64(w, strlen(s));
    w_bytes(w, s, strlen(s));
}
static void w_header(wbuf *w, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    w_bytes(w, "GGUF", 4);
    w_u32(w, version);
    w_u64(w, n_tensors);
    w_u64(w, n_kv);
}
static void w_key(wbuf *w, const char *key, ig_gguf_type t) {
    w_str(w, key);
    w_u32(w, (uint32_t)t);
}
static void w_tensor(wbuf *w, const char *name, uint32_t n_dims, const int64_t *ne, uint32_t type,
                     uint64_t offset) {
    w_str(w, name);
    w_u32(w, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) w_u64(w, (uint64_t)ne[d]);
    w_u32(w, type);
    w_u64(w, offset);
}
static void w_pad(wbuf *w, size_t align) {
    while (w->n % align) w_u8(w, 0);
}

/* Open an image, expecting failure with one of the given codes and a message. */
static void expect_fail(const void *data, size_t len, ig_status want1, ig_status want2) {
    ig_gguf *g = NULL;
    ig_error err = {0};
    ig_status st = ig_gguf_open_memory(data, len, &g, &err);
    cr_assert(st == want1 || st == want2, "len %zu: got %s (%s)", len, ig_errname(st), err.message);
    cr_assert_null(g);
    cr_assert_eq(err.code, st);
    cr_assert_gt(strlen(err.message), 0, "len %zu: empty message", len);
}

static ig_gguf *open_ok(const void *data, size_t len) {
    ig_gguf *g = NULL;
    ig_error err = {0};
    ig_status st = ig_gguf_open_memory(data, len, &g, &err);
    cr_assert_eq(st, IG_OK, "%s: %s", ig_errname(st), err.message);
    cr_assert_not_null(g);
    return g;
}

/* ---- real files ---------------------------------------------------------- */

Test(gguf, stories260K) {
    ig_gguf *g = NULL;
    ig_error err = {0};
    ig_status st = ig_gguf_open(ig_test_path("models/stories260K.gguf"), &g, &err);
    cr_assert_eq(st, IG_OK, "%s", err.message);
    cr_assert_eq(ig_gguf_version(g), 3);
    cr_assert_eq(ig_gguf_alignment(g), 32);
    ig_str arch;
    cr_assert_eq(ig_gguf_get_str(g, "general.architecture", &arch), IG_OK);
    cr_assert(ig_str_eq(arch, "llama"));
    uint32_t ctx;
    cr_assert_eq(ig_gguf_get_u32(g, "llama.context_length", &ctx), IG_OK);
    cr_assert_eq(ctx, 2048);
    int64_t ctx64;
    cr_assert_eq(ig_gguf_get_i64(g, "llama.context_length", &ctx64), IG_OK);
    cr_assert_eq(ctx64, 2048);
    float f;
    cr_assert_eq(ig_gguf_get_f32(g, "llama.context_length", &f), IG_ETYPE);
    cr_assert_eq(ig_gguf_get_u32(g, "no.such.key", &ctx), IG_ENOTFOUND);
    cr_assert_null(ig_gguf_find(g, "no.such.key"));
    cr_assert_null(ig_gguf_find(g, ""));

    const ig_gguf_value *tokens;
    cr_assert_eq(ig_gguf_get_arr(g, "tokenizer.ggml.tokens", &tokens), IG_OK);
    cr_assert_eq(tokens->v.arr.elem_type, IG_GGUF_STRING);
    cr_assert_eq(tokens->v.arr.n, 512);
    for (uint64_t i = 0; i < tokens->v.arr.n; i++)
        cr_assert_eq(tokens->v.arr.items[i].type, IG_GGUF_STRING);
    cr_assert(ig_str_eq(tokens->v.arr.items[0].v.str, "<unk>"));
    cr_assert_eq(ig_gguf_get_str(g, "tokenizer.ggml.tokens", &arch), IG_ETYPE);

    const ig_gguf_value *scores;
    cr_assert_eq(ig_gguf_get_arr(g, "tokenizer.ggml.scores", &scores), IG_OK);
    cr_assert_eq(scores->v.arr.elem_type, IG_GGUF_FLOAT32);
    cr_assert_eq(scores->v.arr.n, 512);
    (void)ig_gguf_arr_f64(scores, 511);

    cr_assert_eq(ig_gguf_n_tensors(g), 48);
    for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++) {
        const ig_gguf_tensor *t = ig_gguf_tensor_at(g, i);
        cr_assert_eq(t->type, IG_TYPE_F32);
        cr_assert_eq(ig_gguf_find_tensor(g, "x"), NULL);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        cr_assert_eq(ig_gguf_find_tensor(g, name), t, "%s", name);
        int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        cr_assert_eq(t->nbytes, (size_t)n * 4);
        cr_assert_eq(((uintptr_t)t->data) % 32, 0);
    }
    cr_assert_null(ig_gguf_tensor_at(g, 48));
    cr_assert_null(ig_gguf_tensor_at(g, -1));
    const ig_gguf_tensor *emb = ig_gguf_find_tensor(g, "token_embd.weight");
    cr_assert_not_null(emb);
    cr_assert_eq(emb->n_dims, 2);
    cr_assert_eq(emb->ne[0], 64);
    cr_assert_eq(emb->ne[1], 512);
    cr_assert_eq(emb->ne[2], 1);
    const ig_gguf_tensor *q = ig_gguf_find_tensor(g, "blk.0.attn_q.weight");
    cr_assert_not_null(q);
    cr_assert_eq(q->ne[0], 64);
    cr_assert_eq(q->ne[1], 64);
    const ig_gguf_tensor *norm = ig_gguf_find_tensor(g, "output_norm.weight");
    cr_assert_not_null(norm);
    cr_assert_eq(norm->n_dims, 1);
    cr_assert_eq(norm->ne[0], 64);
    cr_assert_null(ig_gguf_find_tensor(g, "blk.99.attn_q.weight"));
    ig_gguf_free(g);
}

/* Open every .gguf file in a test-data directory; returns how many. */
static int open_all(const char *rel_dir) {
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", ig_test_path(rel_dir));
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 5, ".gguf") != 0) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ig_gguf *g = NULL;
        ig_error err = {0};
        ig_status st = ig_gguf_open(path, &g, &err);
        cr_assert_eq(st, IG_OK, "%s: %s", path, err.message);
        cr_assert_gt(ig_gguf_n_kv(g), 0);
        for (int64_t i = 0; i < ig_gguf_n_kv(g); i++) {
            const ig_gguf_kv *kv = ig_gguf_kv_at(g, i);
            char key[256];
            snprintf(key, sizeof key, "%.*s", (int)kv->key.len, kv->key.ptr);
            cr_assert_eq(ig_gguf_find(g, key), &kv->value, "%s: %s", path, key);
        }
        ig_gguf_free(g);
        n++;
    }
    closedir(d);
    return n;
}

Test(gguf, all_synth_models) {
    cr_assert_geq(open_all("models/synth"), 14);
    ig_gguf *g = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_gguf_open(ig_test_path("models/synth/synth-q4_k_m.gguf"), &g, &err), IG_OK);
    bool has_q4k = false;
    for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++)
        if (ig_gguf_tensor_at(g, i)->type == IG_TYPE_Q4_K) has_q4k = true;
    cr_assert(has_q4k);
    ig_gguf_free(g);
}

Test(gguf, all_vocab_files) {
    cr_assert_geq(open_all("vocab"), 10);
}

Test(gguf, missing_file) {
    ig_gguf *g = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_gguf_open("/nonexistent/x.gguf", &g, &err), IG_ENOTFOUND);
    cr_assert_null(g);
    cr_assert_gt(strlen(err.message), 0);
    ig_error err2 = {0};
    cr_assert_eq(ig_gguf_open(ig_test_path("models"), &g, &err2), IG_EIO);
}

/* ---- round trip ---------------------------------------------------------- */

Test(gguf, round_trip_every_type) {
    wbuf w = {0};
    w_header(&w, 3, 3, 18);
    w_key(&w, "u8", IG_GGUF_UINT8), w_u8(&w, 200);
    w_key(&w, "i8", IG_GGUF_INT8), w_u8(&w, (uint8_t)-5);
    w_key(&w, "u16", IG_GGUF_UINT16), w_u16(&w, 60000);
    w_key(&w, "i16", IG_GGUF_INT16), w_u16(&w, (uint16_t)-30000);
    w_key(&w, "u32", IG_GGUF_UINT32), w_u32(&w, 4000000000u);
    w_key(&w, "i32", IG_GGUF_INT32), w_u32(&w, (uint32_t)-2000000000);
    w_key(&w, "f32", IG_GGUF_FLOAT32), w_f32(&w, 1.5f);
    w_key(&w, "bool", IG_GGUF_BOOL), w_u8(&w, 1);
    w_key(&w, "str", IG_GGUF_STRING), w_str(&w, "hello");
    w_key(&w, "u64", IG_GGUF_UINT64), w_u64(&w, UINT64_MAX);
    w_key(&w, "i64", IG_GGUF_INT64), w_u64(&w, (uint64_t)INT64_MIN);
    w_key(&w, "f64", IG_GGUF_FLOAT64), w_f64(&w, -3.25);
    w_key(&w, "arr.i16", IG_GGUF_ARRAY), w_u32(&w, IG_GGUF_INT16), w_u64(&w, 3);
    w_u16(&w, 1), w_u16(&w, (uint16_t)-2), w_u16(&w, 300);
    w_key(&w, "arr.str", IG_GGUF_ARRAY), w_u32(&w, IG_GGUF_STRING), w_u64(&w, 3);
    w_str(&w, "a"), w_str(&w, ""), w_str(&w, "ccc");
    /* [[1, 2], [3]] of uint32, and [[["x"]], []] */
    w_key(&w, "arr.arr", IG_GGUF_ARRAY), w_u32(&w, IG_GGUF_ARRAY), w_u64(&w, 2);
    w_u32(&w, IG_GGUF_UINT32), w_u64(&w, 2), w_u32(&w, 1), w_u32(&w, 2);
    w_u32(&w, IG_GGUF_UINT32), w_u64(&w, 1), w_u32(&w, 3);
    w_key(&w, "arr.arr.arr", IG_GGUF_ARRAY), w_u32(&w, IG_GGUF_ARRAY), w_u64(&w, 2);
    w_u32(&w, IG_GGUF_ARRAY), w_u64(&w, 1), w_u32(&w, IG_GGUF_STRING), w_u64(&w, 1), w_str(&w, "x");
    w_u32(&w, IG_GGUF_FLOAT64), w_u64(&w, 0);
    w_key(&w, "arr.f32", IG_GGUF_ARRAY), w_u32(&w, IG_GGUF_FLOAT32), w_u64(&w, 2);
    w_f32(&w, 0.25f), w_f32(&w, -8.0f);
    w_key(&w, "general.alignment", IG_GGUF_UINT32), w_u32(&w, 64);
    int64_t ne_a[2] = {4, 2}, ne_b[1] = {8}, ne_c[3] = {32, 1, 3};
    w_tensor(&w, "a", 2, ne_a, IG_TYPE_F32, 0);
    w_tensor(&w, "b", 1, ne_b, IG_TYPE_F16, 64);
    w_tensor(&w, "c", 3, ne_c, IG_TYPE_Q4_0, 128);
    w_pad(&w, 64);
    size_t data_start = w.n;
    for (int i = 0; i < 128 + 18 * 3; i++) w_u8(&w, (uint8_t)i);

    ig_gguf *g = open_ok(w.b, w.n);
    cr_assert_eq(ig_gguf_version(g), 3);
    cr_assert_eq(ig_gguf_alignment(g), 64);
    cr_assert_eq(ig_gguf_file_size(g), w.n);
    cr_assert_eq(ig_gguf_n_kv(g), 18);
    cr_assert(ig_str_eq(ig_gguf_kv_at(g, 0)->key, "u8"));
    cr_assert(ig_str_eq(ig_gguf_kv_at(g, 17)->key, "general.alignment"));
    cr_assert_null(ig_gguf_kv_at(g, 18));

    uint32_t u32;
    int64_t i64;
    float f;
    bool b;
    ig_str s;
    cr_assert_eq(ig_gguf_get_u32(g, "u8", &u32), IG_OK);
    cr_assert_eq(u32, 200);
    cr_assert_eq(ig_gguf_get_i64(g, "i8", &i64), IG_OK);
    cr_assert_eq(i64, -5);
    cr_assert_eq(ig_gguf_get_u32(g, "i8", &u32), IG_ETYPE);
    cr_assert_eq(ig_gguf_get_u32(g, "u16", &u32), IG_OK);
    cr_assert_eq(u32, 60000);
    cr_assert_eq(ig_gguf_get_i64(g, "i16", &i64), IG_OK);
    cr_assert_eq(i64, -30000);
    cr_assert_eq(ig_gguf_get_u32(g, "u32", &u32), IG_OK);
    cr_assert_eq(u32, 4000000000u);
    cr_assert_eq(ig_gguf_get_i64(g, "i32", &i64), IG_OK);
    cr_assert_eq(i64, -2000000000);
    cr_assert_eq(ig_gguf_get_f32(g, "f32", &f), IG_OK);
    cr_assert_eq(f, 1.5f);
    cr_assert_eq(ig_gguf_get_bool(g, "bool", &b), IG_OK);
    cr_assert(b);
    cr_assert_eq(ig_gguf_get_bool(g, "u8", &b), IG_ETYPE);
    cr_assert_eq(ig_gguf_get_str(g, "str", &s), IG_OK);
    cr_assert(ig_str_eq(s, "hello"));
    cr_assert_eq(ig_gguf_get_i64(g, "u64", &i64), IG_ETYPE);
    cr_assert_eq(ig_gguf_get_u32(g, "u64", &u32), IG_ETYPE);
    cr_assert_eq(ig_gguf_find(g, "u64")->v.u64, UINT64_MAX);
    cr_assert_eq(ig_gguf_get_i64(g, "i64", &i64), IG_OK);
    cr_assert_eq(i64, INT64_MIN);
    cr_assert_eq(ig_gguf_get_f32(g, "f64", &f), IG_OK);
    cr_assert_eq(f, -3.25f);
    cr_assert_eq(ig_gguf_find(g, "f64")->type, IG_GGUF_FLOAT64);

    const ig_gguf_value *a;
    cr_assert_eq(ig_gguf_get_arr(g, "arr.i16", &a), IG_OK);
    cr_assert_eq(a->v.arr.elem_type, IG_GGUF_INT16);
    cr_assert_eq(a->v.arr.n, 3);
    cr_assert_eq(ig_gguf_arr_i64(a, 0), 1);
    cr_assert_eq(ig_gguf_arr_i64(a, 1), -2);
    cr_assert_eq(ig_gguf_arr_i64(a, 2), 300);
    cr_assert_eq(ig_gguf_arr_f64(a, 1), -2.0);
    cr_assert_eq(ig_gguf_get_arr(g, "str", &a), IG_ETYPE);

    cr_assert_eq(ig_gguf_get_arr(g, "arr.str", &a), IG_OK);
    cr_assert_eq(a->v.arr.n, 3);
    cr_assert(ig_str_eq(a->v.arr.items[0].v.str, "a"));
    cr_assert(ig_str_eq(a->v.arr.items[1].v.str, ""));
    cr_assert(ig_str_eq(a->v.arr.items[2].v.str, "ccc"));

    cr_assert_eq(ig_gguf_get_arr(g, "arr.arr", &a), IG_OK);
    cr_assert_eq(a->v.arr.elem_type, IG_GGUF_ARRAY);
    cr_assert_eq(a->v.arr.n, 2);
    const ig_gguf_value *a0 = &a->v.arr.items[0], *a1 = &a->v.arr.items[1];
    cr_assert_eq(a0->type, IG_GGUF_ARRAY);
    cr_assert_eq(a0->v.arr.elem_type, IG_GGUF_UINT32);
    cr_assert_eq(a0->v.arr.n, 2);
    cr_assert_eq(ig_gguf_arr_i64(a0, 0), 1);
    cr_assert_eq(ig_gguf_arr_i64(a0, 1), 2);
    cr_assert_eq(a1->v.arr.n, 1);
    cr_assert_eq(ig_gguf_arr_i64(a1, 0), 3);

    cr_assert_eq(ig_gguf_get_arr(g, "arr.arr.arr", &a), IG_OK);
    const ig_gguf_value *x = &a->v.arr.items[0].v.arr.items[0];
    cr_assert_eq(x->v.arr.elem_type, IG_GGUF_STRING);
    cr_assert(ig_str_eq(x->v.arr.items[0].v.str, "x"));
    cr_assert_eq(a->v.arr.items[1].v.arr.n, 0);
    cr_assert_eq(a->v.arr.items[1].v.arr.elem_type, IG_GGUF_FLOAT64);

    cr_assert_eq(ig_gguf_get_arr(g, "arr.f32", &a), IG_OK);
    cr_assert_eq(ig_gguf_arr_f64(a, 0), 0.25);
    cr_assert_eq(ig_gguf_arr_f64(a, 1), -8.0);

    cr_assert_eq(ig_gguf_n_tensors(g), 3);
    const ig_gguf_tensor *ta = ig_gguf_find_tensor(g, "a");
    const ig_gguf_tensor *tb = ig_gguf_find_tensor(g, "b");
    const ig_gguf_tensor *tc = ig_gguf_find_tensor(g, "c");
    cr_assert(ta && tb && tc);
    cr_assert_eq(ta, ig_gguf_tensor_at(g, 0));
    cr_assert_eq(ta->n_dims, 2);
    cr_assert_eq(ta->ne[0], 4);
    cr_assert_eq(ta->ne[1], 2);
    cr_assert_eq(ta->ne[3], 1);
    cr_assert_eq(ta->nbytes, 32);
    cr_assert_eq((const uint8_t *)ta->data, w.b + data_start);
    cr_assert_eq(tb->nbytes, 16);
    cr_assert_eq((const uint8_t *)tb->data, w.b + data_start + 64);
    cr_assert_eq(tc->type, IG_TYPE_Q4_0);
    cr_assert_eq(tc->nbytes, 18 * 3);
    cr_assert_eq(tc->offset, 128);
    cr_assert_eq(((const uint8_t *)tc->data)[0], 128);
    cr_assert_null(ig_gguf_find_tensor(g, "d"));
    cr_assert_null(ig_gguf_find_tensor(g, ""));
    ig_gguf_free(g);
    free(w.b);
}

Test(gguf, version2_and_no_tensors) {
    wbuf w = {0};
    w_header(&w, 2, 0, 1);
    w_key(&w, "k", IG_GGUF_STRING), w_str(&w, "v");
    ig_gguf *g = open_ok(w.b, w.n); /* no padding needed without tensors */
    cr_assert_eq(ig_gguf_version(g), 2);
    cr_assert_eq(ig_gguf_n_tensors(g), 0);
    cr_assert_null(ig_gguf_find_tensor(g, "k"));
    ig_gguf_free(g);
    free(w.b);
}

Test(gguf, empty_tensor_at_end) {
    wbuf w = {0};
    w_header(&w, 3, 1, 0);
    int64_t ne[2] = {0, 7};
    w_tensor(&w, "empty", 2, ne, IG_TYPE_F32, 0);
    w_pad(&w, 32);
    ig_gguf *g = open_ok(w.b, w.n);
    cr_assert_eq(ig_gguf_tensor_at(g, 0)->nbytes, 0);
    ig_gguf_free(g);
    free(w.b);
}

/* ---- corruption ---------------------------------------------------------- */

Test(gguf, bad_magic_and_versions) {
    wbuf w = {0};
    w_header(&w, 3, 0, 0);
    ig_gguf_free(open_ok(w.b, w.n));
    memcpy(w.b, "GGUG", 4);
    expect_fail(w.b, w.n, IG_EFORMAT, IG_EFORMAT);
    memcpy(w.b, "GGUF", 4);
    uint32_t versions[] = {0, 1, 4, 99, 0x03000000u, 0xffffffffu};
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        for (int k = 0; k < 4; k++) w.b[4 + k] = (uint8_t)(versions[i] >> (8 * k));
        ig_gguf *g = NULL;
        ig_error err = {0};
        cr_assert_eq(ig_gguf_open_memory(w.b, w.n, &g, &err), IG_EUNSUPPORTED);
        cr_assert_gt(strlen(err.message), 0);
        if (versions[i] == 1 || versions[i] == 99) {
            char want[16];
            snprintf(want, sizeof want, "%u", versions[i]);
            cr_assert(strstr(err.message, want), "%s", err.message);
        }
    }
    expect_fail(w.b, 0, IG_EFORMAT, IG_EFORMAT);
    expect_fail(w.b, 3, IG_EFORMAT, IG_EFORMAT);
    free(w.b);
}
