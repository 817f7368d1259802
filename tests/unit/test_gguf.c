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
    w_header(&w, 3, 3, 19);
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
    w_key(&w, "f64.big", IG_GGUF_FLOAT64), w_f64(&w, 1e300);
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
    cr_assert_eq(ig_gguf_n_kv(g), 19);
    cr_assert(ig_str_eq(ig_gguf_kv_at(g, 0)->key, "u8"));
    cr_assert(ig_str_eq(ig_gguf_kv_at(g, 17)->key, "general.alignment"));
    cr_assert_null(ig_gguf_kv_at(g, 19));

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
    cr_assert_eq(ig_gguf_get_f32(g, "f64.big", &f), IG_ETYPE);

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

/* The real model file, read into memory (fails the test if missing). */
static uint8_t *read_stories(size_t *len) {
    uint8_t *buf = (uint8_t *)ig_test_read_file(ig_test_path("models/stories260K.gguf"), len);
    cr_assert_not_null(buf, "cannot read stories260K.gguf");
    return buf;
}

/* End of the last tensor's data, relative to the start of the image. */
static size_t tensors_end(const ig_gguf *g, const uint8_t *base) {
    size_t end = 0;
    for (int64_t i = 0; i < ig_gguf_n_tensors(g); i++) {
        const ig_gguf_tensor *t = ig_gguf_tensor_at(g, i);
        size_t e = (size_t)((const uint8_t *)t->data - base) + t->nbytes;
        if (e > end) end = e;
    }
    return end;
}

Test(gguf, truncated_everywhere) {
    size_t size;
    uint8_t *buf = read_stories(&size);
    ig_gguf *g = open_ok(buf, size);
    size_t end = tensors_end(g, buf);
    /* The tensor infos end where the first tensor's data begins (minus padding). */
    size_t meta_end = (size_t)((const uint8_t *)ig_gguf_tensor_at(g, 0)->data - buf);
    ig_gguf_free(g);
    cr_assert_gt(meta_end, 4096);
    cr_assert_leq(end, size);
    /* Every byte through the header, metadata and tensor infos, then a spread. */
    for (size_t len = 0; len < meta_end + 64; len++) expect_fail(buf, len, IG_EFORMAT, IG_EFORMAT);
    for (size_t len = meta_end + 64; len < end; len += 4099)
        expect_fail(buf, len, IG_EFORMAT, IG_EFORMAT);
    expect_fail(buf, end - 1, IG_EFORMAT, IG_EFORMAT);
    free(buf);
}

/* Position of the first occurrence of a byte string in buf (fails if absent). */
static size_t find_bytes(const uint8_t *buf, size_t size, const char *s) {
    size_t n = strlen(s);
    for (size_t i = 0; i + n <= size; i++)
        if (memcmp(buf + i, s, n) == 0) return i;
    cr_assert_fail("'%s' not found", s);
    return 0;
}

Test(gguf, truncation_message_names_the_key) {
    size_t size;
    uint8_t *buf = read_stories(&size);
    /* key string: u64 length then bytes, then u32 type, then the value. */
    size_t key = find_bytes(buf, size, "llama.context_length");
    size_t value = key + strlen("llama.context_length") + 4;
    ig_gguf *g = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_gguf_open_memory(buf, value + 2, &g, &err), IG_EFORMAT);
    char want[64];
    snprintf(want, sizeof want, "truncated at byte %zu", value);
    cr_assert(strstr(err.message, want), "%s", err.message);
    cr_assert(strstr(err.message, "('llama.context_length') value"), "%s", err.message);
    free(buf);
}

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Copy the image, overwrite n little-endian bytes at off with v, expect failure. */
static void patch_fails(const uint8_t *buf, size_t size, size_t off, uint64_t v, int n,
                        ig_status want) {
    uint8_t *copy = malloc(size);
    cr_assert_not_null(copy);
    memcpy(copy, buf, size);
    put_le(copy + off, v, n);
    ig_gguf *g = NULL;
    ig_error err = {0};
    ig_status st = ig_gguf_open_memory(copy, size, &g, &err);
    cr_assert_eq(st, want, "patch %llu at %zu: got %s (%s)", (unsigned long long)v, off,
                 ig_errname(st), err.message);
    cr_assert_null(g);
    cr_assert_gt(strlen(err.message), 0);
    free(copy);
}

Test(gguf, corrupt_real_header_and_metadata) {
    size_t size;
    uint8_t *buf = read_stories(&size);
    patch_fails(buf, size, 0, 0x46554748, 4, IG_EFORMAT); /* "HGUF" */
    patch_fails(buf, size, 4, 1, 4, IG_EUNSUPPORTED);
    patch_fails(buf, size, 4, 99, 4, IG_EUNSUPPORTED);
    uint64_t huge[] = {UINT64_MAX, 1ull << 63, 1ull << 32, size, size / 13 + 1};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        patch_fails(buf, size, 8, huge[i], 8, IG_EFORMAT);  /* n_tensors */
        patch_fails(buf, size, 16, huge[i], 8, IG_EFORMAT); /* n_kv */
        patch_fails(buf, size, 24, huge[i], 8, IG_EFORMAT); /* first key's length */
    }
    /* tokenizer.ggml.tokens: key, u32 type (array), u32 element type, u64 count, strings. */
    size_t tok = find_bytes(buf, size, "tokenizer.ggml.tokens") + strlen("tokenizer.ggml.tokens");
    patch_fails(buf, size, tok, 13, 4, IG_EFORMAT);         /* unknown value type */
    patch_fails(buf, size, tok, UINT32_MAX, 4, IG_EFORMAT); /* unknown value type */
    patch_fails(buf, size, tok + 4, 13, 4, IG_EFORMAT);     /* unknown element type */
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        patch_fails(buf, size, tok + 8, huge[i], 8, IG_EFORMAT);  /* array count */
        patch_fails(buf, size, tok + 16, huge[i], 8, IG_EFORMAT); /* first string's length */
    }
    /* The array as an array of arrays: its first "element" reads as garbage. */
    patch_fails(buf, size, tok + 4, IG_GGUF_ARRAY, 4, IG_EFORMAT);
    free(buf);
}

Test(gguf, corrupt_real_tensor_infos) {
    size_t size;
    uint8_t *buf = read_stories(&size);
    ig_gguf *g = open_ok(buf, size);
    /* Locate tensor 0's and the last tensor's info fields through the parse. */
    int64_t last = ig_gguf_n_tensors(g) - 1;
    int64_t which[2] = {0, last};
    size_t info[2], ndims[2];
    uint32_t nd[2];
    for (int k = 0; k < 2; k++) {
        const ig_gguf_tensor *t = ig_gguf_tensor_at(g, which[k]);
        ndims[k] = (size_t)((const uint8_t *)t->name.ptr - buf) + t->name.len;
        info[k] = (size_t)((const uint8_t *)t->name.ptr - buf) - 8;
        nd[k] = t->n_dims;
    }
    ig_gguf_free(g);
    for (int k = 0; k < 2; k++) {
        size_t ne0 = ndims[k] + 4, type = ne0 + 8 * nd[k], off = type + 4;
        patch_fails(buf, size, info[k], UINT64_MAX, 8, IG_EFORMAT); /* name length */
        patch_fails(buf, size, ndims[k], 5, 4, IG_EFORMAT);
        patch_fails(buf, size, ndims[k], UINT32_MAX, 4, IG_EFORMAT);
        patch_fails(buf, size, ne0, (uint64_t)-1, 8, IG_EFORMAT);    /* negative */
        patch_fails(buf, size, ne0, 1ull << 62, 8, IG_EFORMAT);      /* too large */
        patch_fails(buf, size, ne0, INT64_MAX, 8, IG_EFORMAT);       /* product overflows */
        patch_fails(buf, size, ne0, size, 8, IG_EFORMAT);            /* past the end */
        patch_fails(buf, size, type, 4, 4, IG_EUNSUPPORTED);         /* removed Q4_2 */
        patch_fails(buf, size, type, 1000, 4, IG_EUNSUPPORTED);      /* never defined */
        patch_fails(buf, size, off, 4, 8, IG_EFORMAT);               /* misaligned */
        patch_fails(buf, size, off, 1ull << 40, 8, IG_EFORMAT);      /* past the end */
        patch_fails(buf, size, off, UINT64_MAX - 31, 8, IG_EFORMAT); /* overflowing */
    }
    free(buf);
}

/* A one-tensor image with the given alignment key payload and tensor fields. */
static void one_tensor(wbuf *w, uint32_t n_dims, const int64_t *ne, uint32_t type, uint64_t offset,
                       size_t data_len) {
    w_header(w, 3, 1, 1);
    w_key(w, "general.alignment", IG_GGUF_UINT32);
    w_u32(w, 32);
    w_tensor(w, "t", n_dims, ne, type, offset);
    w_pad(w, 32);
    for (size_t i = 0; i < data_len; i++) w_u8(w, 0);
}

Test(gguf, corrupt_built_tensors) {
    int64_t ne[5] = {8, 2, 1, 1, 1};
    wbuf w = {0};
    one_tensor(&w, 2, ne, IG_TYPE_F32, 0, 64);
    ig_gguf_free(open_ok(w.b, w.n));
    expect_fail(w.b, w.n - 1, IG_EFORMAT, IG_EFORMAT); /* last byte of data missing */
    free(w.b);

    struct {
        uint32_t n_dims;
        int64_t ne0, ne1;
        uint32_t type;
        uint64_t offset;
        ig_status want;
    } cases[] = {
        {5, 8, 2, IG_TYPE_F32, 0, IG_EFORMAT},
        {2, -1, 2, IG_TYPE_F32, 0, IG_EFORMAT},
        {2, 8, INT64_MIN, IG_TYPE_F32, 0, IG_EFORMAT},
        {2, INT64_MAX, 2, IG_TYPE_F32, 0, IG_EFORMAT},
        {2, 1ll << 32, 1ll << 32, IG_TYPE_F32, 0, IG_EFORMAT},
        {2, 1ll << 61, 1, IG_TYPE_F64, 0, IG_EFORMAT},
        {2, 8, 2, 40, 0, IG_EUNSUPPORTED},
        {2, 8, 2, UINT32_MAX, 0, IG_EUNSUPPORTED},
        {2, 31, 2, IG_TYPE_Q4_0, 0, IG_EFORMAT},
        {2, 8, 2, IG_TYPE_F32, 16, IG_EFORMAT},
        {2, 8, 2, IG_TYPE_F32, 32, IG_EFORMAT},
        {2, 8, 2, IG_TYPE_F32, 1ull << 63, IG_EFORMAT},
        {2, 8, 2, IG_TYPE_F32, UINT64_MAX & ~31ull, IG_EFORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wbuf c = {0};
        int64_t cne[5] = {cases[i].ne0, cases[i].ne1, 1, 1, 1};
        one_tensor(&c, cases[i].n_dims, cne, cases[i].type, cases[i].offset, 64);
        expect_fail(c.b, c.n, cases[i].want, cases[i].want);
        free(c.b);
    }
}

Test(gguf, past_end_message) {
    int64_t ne[2] = {8, 4}; /* 128 bytes, only 64 present */
    wbuf w = {0};
    one_tensor(&w, 2, ne, IG_TYPE_F32, 0, 64);
    ig_gguf *g = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_gguf_open_memory(w.b, w.n, &g, &err), IG_EFORMAT);
    char want[128];
    snprintf(want, sizeof want, "tensor 't': data [%zu, %zu) past end of file (size %zu)", w.n - 64,
             w.n + 64, w.n);
    cr_assert(strstr(err.message, want), "%s", err.message);
    free(w.b);
}

/* An image whose only content is one key of type t with the given payload. */
static void one_key(wbuf *w, const char *key, ig_gguf_type t) {
    w_header(w, 3, 0, 1);
    w_key(w, key, t);
}

Test(gguf, corrupt_built_metadata) {
    wbuf w = {0};
    /* alignment: zero, not a power of two, wrong type */
    uint32_t bad_align[] = {0, 3, 48, UINT32_MAX};
    for (size_t i = 0; i < 4; i++) {
        w.n = 0;
        one_key(&w, "general.alignment", IG_GGUF_UINT32);
        w_u32(&w, bad_align[i]);
        expect_fail(w.b, w.n, IG_EFORMAT, IG_EFORMAT);
    }
    w.n = 0;
    one_key(&w, "general.alignment", IG_GGUF_UINT64);
    w_u64(&w, 32);
    expect_fail(w.b, w.n, IG_EFORMAT, IG_EFORMAT);
    w.n = 0;
    one_key(&w, "general.alignment", IG_GGUF_STRING);
    w_str(&w, "32");
    expect_fail(w.b, w.n, IG_EFORMAT, IG_EFORMAT);

    /* unknown value types */
    w.n = 0;
    one_key(&w, "k", (ig_gguf_type)13);
    w_u64(&w, 0);
    expect_fail(w.b, w.n, IG_EFORMAT, IG_EFORMAT);
    w.n = 0;
    one_key(&w, "k", IG_GGUF_ARRAY);
    w_u32(&w, 1000), w_u64(&w, 0);
    expect_fail(w.b, w.n, IG_EFORMAT, IG_EFORMAT);

    /* huge counts and lengths, for every element kind */
    uint64_t huge[] = {UINT64_MAX, 1ull << 62, 1ull << 61, 100};
    for (size_t i = 0; i < 4; i++) {
        for (uint32_t et = 0; et < IG_GGUF_TYPE_COUNT; et++) {
            w.n = 0;
            one_key(&w, "k", IG_GGUF_ARRAY);
            w_u32(&w, et), w_u64(&w, huge[i]);
            expect_fail(w.b, w.n, IG_EFORMAT, IG_EFORMAT);
            /* nested: [[huge]] */
            w.n = 0;
            one_key(&w, "k", IG_GGUF_ARRAY);
            w_u32(&w, IG_GGUF_ARRAY), w_u64(&w, 1);
            w_u32(&w, et), w_u64(&w, huge[i]);
            w_u64(&w, 0);
            expect_fail(w.b, w.n, IG_EFORMAT, IG_EFORMAT);
        }
        w.n = 0;
        one_key(&w, "k", IG_GGUF_STRING);
        w_u64(&w, huge[i]), w_u64(&w, 0);
        expect_fail(w.b, w.n, IG_EFORMAT, IG_EFORMAT);
        w.n = 0;
        one_key(&w, "k", IG_GGUF_ARRAY);
        w_u32(&w, IG_GGUF_STRING), w_u64(&w, 2), w_str(&w, "ok"), w_u64(&w, huge[i]);
        expect_fail(w.b, w.n, IG_EFORMAT, IG_EFORMAT);
    }

    /* arrays nested too deep: 1000 levels of [x] */
    w.n = 0;
    one_key(&w, "k", IG_GGUF_ARRAY);
    for (int d = 0; d < 1000; d++) w_u32(&w, IG_GGUF_ARRAY), w_u64(&w, 1);
    w_u32(&w, IG_GGUF_UINT8), w_u64(&w, 0);
    expect_fail(w.b, w.n, IG_EFORMAT, IG_EFORMAT);
    /* ... but a few levels are fine */
    w.n = 0;
    one_key(&w, "k", IG_GGUF_ARRAY);
    for (int d = 0; d < 8; d++) w_u32(&w, IG_GGUF_ARRAY), w_u64(&w, 1);
    w_u32(&w, IG_GGUF_UINT8), w_u64(&w, 1), w_u8(&w, 7);
    ig_gguf_free(open_ok(w.b, w.n));

    /* duplicate keys */
    w.n = 0;
    w_header(&w, 3, 0, 3);
    w_key(&w, "a", IG_GGUF_UINT8), w_u8(&w, 1);
    w_key(&w, "b", IG_GGUF_UINT8), w_u8(&w, 1);
    w_key(&w, "a", IG_GGUF_STRING), w_str(&w, "x");
    ig_gguf *g = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_gguf_open_memory(w.b, w.n, &g, &err), IG_EFORMAT);
    cr_assert(strstr(err.message, "duplicate key 'a'"), "%s", err.message);

    /* key longer than the spec's 65535 bytes */
    w.n = 0;
    w_header(&w, 3, 0, 1);
    w_u64(&w, 70000);
    for (int i = 0; i < 70000; i++) w_u8(&w, 'k');
    w_u32(&w, IG_GGUF_UINT8), w_u8(&w, 1);
    expect_fail(w.b, w.n, IG_EFORMAT, IG_EFORMAT);
    free(w.b);
}

Test(gguf, duplicate_tensor_name) {
    int64_t ne[1] = {8};
    wbuf w = {0};
    w_header(&w, 3, 3, 0);
    w_tensor(&w, "x", 1, ne, IG_TYPE_F32, 0);
    w_tensor(&w, "y", 1, ne, IG_TYPE_F32, 32);
    w_tensor(&w, "x", 1, ne, IG_TYPE_F32, 64);
    w_pad(&w, 32);
    for (int i = 0; i < 96; i++) w_u8(&w, 0);
    ig_gguf *g = NULL;
    ig_error err = {0};
    cr_assert_eq(ig_gguf_open_memory(w.b, w.n, &g, &err), IG_EFORMAT);
    cr_assert(strstr(err.message, "duplicate tensor name 'x'"), "%s", err.message);
    cr_assert_null(g);
    free(w.b);
}

Test(gguf, null_arguments) {
    ig_gguf *g = NULL;
    cr_assert_eq(ig_gguf_open_memory(NULL, 10, &g, NULL), IG_EINVAL);
    cr_assert_eq(ig_gguf_open_memory("GGUF", 4, NULL, NULL), IG_EINVAL);
    cr_assert_eq(ig_gguf_open_memory(NULL, 0, &g, NULL), IG_EFORMAT);
    ig_gguf_free(NULL);
}
